//! Assembling the image from a [`Spec`].
//!
//! Layout (modes in octal, everything owned by 0:0):
//!
//! ```text
//! /dev            0755  console c 5 1 (0600), null c 1 3 (0666)
//! /proc /sys      0555  mount points
//! /run /etc /sbin 0755
//! /sealed         0700  sealgate's tmpfs goes here
//! /tmp            1777
//! /sbin/sealgate  0755  the static binary
//! /init           -> sbin/sealgate (or the --init-wrapper program, 0755)
//! /etc/sealgate/config.toml     0644  --config
//! /etc/sealgate/initdata.toml   0644  --init-data
//! /etc/sealgate/modules         0644  the load list (--module, in order)
//! /lib/modules/<release>/modules.dep and the module files, unchanged (0644)
//! ... extra --dir, --symlink, --file entries
//! ```

use crate::cpio::{Archive, Entry, Kind};
use crate::kmod::{self, ModInfo, Tree};
use crate::spec::{Compression, Spec};
use crate::{gzip, sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A built image.
#[derive(Debug)]
pub struct Built {
    /// The image bytes (compressed if asked).
    pub bytes: Vec<u8>,
    /// Size of the cpio archive before compression.
    pub cpio_len: usize,
    /// Number of entries.
    pub entries: usize,
    /// The kernel release the modules are for, if any modules.
    pub kernel_release: Option<String>,
    /// Warnings for the user.
    pub warnings: Vec<String>,
}

impl Built {
    /// The image's SHA-256, hex.
    pub fn sha256(&self) -> String {
        sha256::hex(&self.bytes)
    }
}

fn dir(perm: u32) -> Entry {
    Entry {
        kind: Kind::Dir,
        perm,
    }
}

fn file(data: Vec<u8>, perm: u32) -> Entry {
    Entry {
        kind: Kind::File(data),
        perm,
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// Checks that `elf` is an ELF executable without a program interpreter (static or
/// static-pie): the image has no dynamic loader and no libraries.
pub fn check_static(elf: &[u8]) -> Result<(), String> {
    if !elf.starts_with(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF executable".into());
    }
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let phoff = u64_at(0x20).ok_or("truncated ELF header")? as usize;
    let phentsize = u16_at(0x36).ok_or("truncated ELF header")? as usize;
    let phnum = u16_at(0x38).ok_or("truncated ELF header")? as usize;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let ty = elf
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or("program header out of bounds")?;
        if ty == 3 {
            // PT_INTERP
            return Err(
                "dynamically linked (it has a program interpreter); build it with \
                 RUSTFLAGS=\"-C target-feature=+crt-static\" --target x86_64-unknown-linux-gnu"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Builds the image. `modinfo` reads a module file's `.modinfo` (normally
/// [`default_modinfo`]).
pub fn build(
    spec: &Spec,
    modinfo: &dyn Fn(&Path) -> Result<ModInfo, String>,
) -> Result<Built, String> {
    let mut a = Archive::new();
    let mut warnings = Vec::new();
    let add = |a: &mut Archive, path: &str, e: Entry| a.add(path, e, false).map_err(|e| e.0);

    for (path, perm) in [
        ("/dev", 0o755),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/run", 0o755),
        ("/etc", 0o755),
        ("/sbin", 0o755),
        ("/sealed", 0o700),
        ("/tmp", 0o1777),
    ] {
        add(&mut a, path, dir(perm))?;
    }
    for (path, major, minor, perm) in [("/dev/console", 5, 1, 0o600), ("/dev/null", 1, 3, 0o666)] {
        add(
            &mut a,
            path,
            Entry {
                kind: Kind::CharDev { major, minor },
                perm,
            },
        )?;
    }

    let sealgate = spec
        .sealgate
        .as_deref()
        .ok_or("no sealgate binary given (--sealgate PATH)")?;
    let bin = read(sealgate, "sealgate binary")?;
    check_static(&bin).map_err(|e| format!("sealgate binary {}: {e}", sealgate.display()))?;
    add(&mut a, "/sbin/sealgate", file(bin, 0o755))?;
    match &spec.init_wrapper {
        Some(w) => add(&mut a, "/init", file(read(w, "init wrapper")?, 0o755))?,
        None => add(
            &mut a,
            "/init",
            Entry {
                kind: Kind::Symlink("sbin/sealgate".into()),
                perm: 0o777,
            },
        )?,
    }
    if let Some(c) = &spec.config {
        add(
            &mut a,
            "/etc/sealgate/config.toml",
            file(read(c, "config")?, 0o644),
        )?;
    }
    if let Some(d) = &spec.init_data {
        add(
            &mut a,
            "/etc/sealgate/initdata.toml",
            file(read(d, "init-data")?, 0o644),
        )?;
    }

    let mut kernel_release = None;
    if !spec.modules.is_empty() {
        let tree = spec.modules_dir.as_deref().map(Tree::scan).transpose()?;
        let resolved = kmod::resolve(tree.as_ref(), &spec.modules, modinfo)?;
        let release = spec
            .kernel_version
            .clone()
            .or_else(|| {
                spec.modules_dir
                    .as_deref()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .or_else(|| resolved.release())
            .ok_or("cannot tell the kernel release: give --kernel-version")?;
        for m in &resolved.modules {
            if let Some(vm) = &m.vermagic
                && vm.split_whitespace().next() != Some(release.as_str())
            {
                warnings.push(format!(
                    "module {} was built for '{}', not {release}: the kernel will refuse it",
                    m.name,
                    vm.split_whitespace().next().unwrap_or("")
                ));
            }
            let data = read(&m.source, "module")?;
            add(
                &mut a,
                &format!("/lib/modules/{release}/{}", m.image_path),
                file(data, 0o644),
            )?;
        }
        add(
            &mut a,
            &format!("/lib/modules/{release}/modules.dep"),
            file(resolved.modules_dep().into_bytes(), 0o644),
        )?;
        let mut list = String::from(
            "# Written by mkinitramfs: sealgate init loads these modules in this order,\n\
             # dependencies first (from /lib/modules/<release>/modules.dep).\n",
        );
        for line in &resolved.load {
            list.push_str(line);
            list.push('\n');
        }
        add(
            &mut a,
            "/etc/sealgate/modules",
            file(list.into_bytes(), 0o644),
        )?;
        kernel_release = Some(release);
    }

    for (path, perm) in &spec.dirs {
        add(&mut a, path, dir(*perm))?;
    }
    for (path, target) in &spec.symlinks {
        add(
            &mut a,
            path,
            Entry {
                kind: Kind::Symlink(target.clone()),
                perm: 0o777,
            },
        )?;
    }
    for f in &spec.files {
        let data = read(&f.source, "file")?;
        let perm = match f.mode {
            Some(m) => m,
            None => {
                let md = std::fs::metadata(&f.source)
                    .map_err(|e| format!("file {}: {e}", f.source.display()))?;
                if md.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                }
            }
        };
        add(&mut a, &f.dest, file(data, perm)).map_err(|e| {
            format!(
                "{e} (--file {} collides with an entry of the image)",
                f.dest
            )
        })?;
    }

    let cpio = a.write(spec.effective_mtime()?);
    let cpio_len = cpio.len();
    let bytes = match spec.compression.unwrap_or(Compression::Gzip) {
        Compression::Gzip => gzip::compress(&cpio),
        Compression::None => cpio,
    };
    Ok(Built {
        bytes,
        cpio_len,
        entries: a.len(),
        kernel_release,
        warnings,
    })
}

/// Reads `.modinfo` of a module file on the host (decompressing it first).
pub fn default_modinfo(path: &Path) -> Result<ModInfo, String> {
    let elf = kmod::read_module(path)?;
    kmod::modinfo(&elf).map_err(|e| format!("{}: {e}", path.display()))
}

/// `cpio -tv`-style lines for an image (gzip or bare cpio).
pub fn list(image: &[u8]) -> Result<Vec<String>, String> {
    let cpio = if gzip::is_gzip(image) {
        gzip::decompress(image)?
    } else {
        image.to_vec()
    };
    let entries = crate::cpio::read(&cpio)?;
    Ok(entries
        .iter()
        .map(|e| {
            let size = match e.type_char() {
                'c' => format!("{}, {}", e.rdev.0, e.rdev.1),
                _ => e.data.len().to_string(),
            };
            let link = if e.type_char() == 'l' {
                format!(" -> {}", String::from_utf8_lossy(&e.data))
            } else {
                String::new()
            };
            format!(
                "{}{:04o} {}:{} {:>9} /{}{link}",
                e.type_char(),
                e.mode & 0o7777,
                e.uid,
                e.gid,
                size,
                e.name
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_check() {
        // ELF header with one PT_LOAD and, in the second case, a PT_INTERP.
        let mut elf = vec![0u8; 64 + 2 * 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        elf[120..124].copy_from_slice(&6u32.to_le_bytes()); // PT_PHDR
        assert_eq!(check_static(&elf), Ok(()));
        elf[120..124].copy_from_slice(&3u32.to_le_bytes());
        assert!(
            check_static(&elf)
                .unwrap_err()
                .contains("dynamically linked")
        );
        assert!(check_static(b"#!/bin/sh\n").is_err());
        elf[0x38..0x3a].copy_from_slice(&200u16.to_le_bytes());
        assert!(check_static(&elf).is_err(), "headers out of bounds");
    }
}
