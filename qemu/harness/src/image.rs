//! Guest images, built with the project's `image` crate (`mkinitramfs`'s library) as a user
//! would build them.
//!
//! - [`base`]: the sealgate image: `/sbin/sealgate` (static, as shipped), `/init` pointing at
//!   it, `/dev/console`, and the kernel modules sealgate loads (virtio-net and virtio-blk for
//!   the init-data disk, configfs, tsm) with their dependencies resolved at build time.
//! - [`sim_overlay`]: a second cpio archive appended to the base one (the kernel unpacks
//!   concatenated archives in order, later entries replacing earlier ones) whose `/init` is
//!   `guest-sim`, plus `tsm_sim.ko` and `/etc/guest-sim.conf`.

use crate::Artifacts;
use sealgate_image::build::{build, default_modinfo};
use sealgate_image::cpio::{Archive, Entry, Kind};
use sealgate_image::kmod::Request;
use sealgate_image::spec::{Compression, Spec};
use std::fs;
use std::path::Path;

/// Kernel modules every image carries and loads, in this order (dependencies are added by
/// the image builder): virtio-net, virtio-blk (the init-data disk), configfs, configfs-tsm.
pub const MODULES: [&str; 4] = ["virtio_net", "virtio_blk", "configfs", "tsm"];

/// The modules an image with encrypted volumes adds: device-mapper, dm-crypt and the XTS
/// template (AES itself is built into the Debian kernel; dm-crypt asks the crypto API for
/// `xts(aes)`, which would need a modprobe helper the image does not have).
pub const VOLUME_MODULES: [&str; 3] = ["dm_mod", "dm_crypt", "xts"];

/// The modules authenticated encryption (SecureMount's `dataIntegrity=true`) adds after
/// [`VOLUME_MODULES`]: dm-integrity and the `authenc` AEAD template (HMAC and SHA-256 are
/// built into the Debian kernel).
pub const INTEGRITY_MODULES: [&str; 2] = ["dm_integrity", "authenc"];

/// The sealgate image (see the module documentation), uncompressed so overlays can follow.
pub fn base(a: &Artifacts) -> Vec<u8> {
    base_with(a, &[])
}

/// [`base`] with `extra` modules loaded after [`MODULES`].
pub fn base_with(a: &Artifacts, extra: &[&str]) -> Vec<u8> {
    let spec = Spec {
        sealgate: Some(a.sealgate.clone()),
        modules_dir: Some(a.kernel.modules.clone()),
        kernel_version: Some(a.kernel.version.clone()),
        modules: MODULES
            .iter()
            .chain(extra)
            .map(|m| Request {
                module: m.to_string(),
                params: Vec::new(),
            })
            .collect(),
        compression: Some(Compression::None),
        ..Spec::default()
    };
    build(&spec, &default_modinfo)
        .unwrap_or_else(|e| panic!("building the guest image: {e}"))
        .bytes
}

fn file(data: Vec<u8>, perm: u32) -> Entry {
    Entry {
        kind: Kind::File(data),
        perm,
    }
}

fn overlay(entries: Vec<(String, Entry)>) -> Vec<u8> {
    let mut archive = Archive::new();
    for (path, entry) in entries {
        archive
            .add(&path, entry, false)
            .unwrap_or_else(|e| panic!("overlay {path}: {}", e.0));
    }
    archive.write(0)
}

fn host(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The simulated-TEE overlay: `/init` = guest-sim, `tsm_sim.ko`, the simulator's settings.
pub fn sim_overlay(a: &Artifacts, guest_sim_conf: &str) -> Vec<u8> {
    overlay(vec![
        ("/init".into(), file(host(&a.guest_sim), 0o755)),
        (
            format!("/lib/modules/{}/extra/tsm_sim.ko", a.kernel.version),
            file(host(&a.tsm_sim), 0o644),
        ),
        (
            "/etc/guest-sim.conf".into(),
            file(guest_sim_conf.as_bytes().to_vec(), 0o644),
        ),
    ])
}

/// The image config of the boots that drive sealgate through the kernel command line: it
/// opts in to trusting the command line (what an image whose command line is measured,
/// SNP kernel hashes or a TDX RTMR policy, does). Without it, the command line may set
/// only network bring-up, the log level, module parameters and a fallback KBS URL.
pub const TRUSTING_CONFIG: &str = "trust_kernel_cmdline = true\n";

/// An overlay holding `/etc/sealgate/config.toml`, the image's (measured) config file.
pub fn config(toml: &str) -> Vec<u8> {
    files(&[("/etc/sealgate/config.toml", 0o644, toml.as_bytes())])
}

/// An overlay of extra files: `(path, mode, contents)`; parents are created.
pub fn files(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    overlay(
        entries
            .iter()
            .map(|(p, m, d)| (p.to_string(), file(d.to_vec(), *m)))
            .collect(),
    )
}

/// Writes `parts` concatenated to `path`.
pub fn write(path: &Path, parts: &[&[u8]]) {
    fs::write(path, parts.concat()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// An overlay with the host's dynamically linked `program` installed at each of `dests`,
/// with the shared libraries and the loader `ldd` names at their host paths: a test image
/// gets the host's tool (e.g. Debian's `mke2fs` as `/sbin/mkfs.ext4`) without a package
/// manager. Test images only: sealgate's own image stays free of C.
pub fn host_program(program: &Path, dests: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("ldd")
        .arg(program)
        .output()
        .unwrap_or_else(|e| panic!("ldd {}: {e}", program.display()));
    assert!(out.status.success(), "ldd {}", program.display());
    let mut entries: Vec<(String, Entry)> = dests
        .iter()
        .map(|d| (d.to_string(), file(host(program), 0o755)))
        .collect();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            entries.push((path.to_string(), file(host(Path::new(path)), 0o755)));
        }
    }
    overlay(entries)
}
