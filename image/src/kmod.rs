//! Kernel modules for the image, resolved on the build host.
//!
//! The guest cannot read the `.modinfo` of an `.xz` module without an xz decoder, so
//! the build does it: each requested module is decompressed on the host (`xz -dc`,
//! `zstd -dc`, or the built-in gzip reader), its ELF `.modinfo` section read, and its
//! `depends=` followed through the modules directory until the closure is complete.
//! The image then carries the module files unchanged (still compressed: the kernel
//! decompresses them in `finit_module`), a depmod-format `modules.dep` for exactly those
//! modules, and the requested load list; `sealgate init` needs nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `.modinfo` says about a module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=`.
    pub name: Option<String>,
    /// `depends=`, split at commas (empty entries dropped).
    pub depends: Vec<String>,
    /// `vermagic=` (starts with the kernel release).
    pub vermagic: Option<String>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads `.modinfo` from an (uncompressed) ELF64 little-endian module.
pub fn modinfo(elf: &[u8]) -> Result<ModInfo, String> {
    let bad = |what: &str| format!("not a kernel module: {what}");
    if !elf.starts_with(b"\x7fELF") {
        return Err(bad("no ELF magic"));
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(bad("only 64-bit little-endian ELF is supported"));
    }
    let shoff = le64(elf, 0x28).ok_or_else(|| bad("truncated ELF header"))? as usize;
    let shentsize = le16(elf, 0x3a).ok_or_else(|| bad("truncated ELF header"))? as usize;
    let shnum = le16(elf, 0x3c).ok_or_else(|| bad("truncated ELF header"))? as usize;
    let shstrndx = le16(elf, 0x3e).ok_or_else(|| bad("truncated ELF header"))? as usize;
    if shentsize < 64 {
        return Err(bad("section header entries too small"));
    }
    let section = |i: usize| -> Result<(u32, &[u8]), String> {
        let h = shoff
            .checked_add(i.checked_mul(shentsize).ok_or_else(|| bad("overflow"))?)
            .ok_or_else(|| bad("overflow"))?;
        let name = le32(elf, h).ok_or_else(|| bad("section header out of bounds"))?;
        let ty = le32(elf, h + 4).ok_or_else(|| bad("section header out of bounds"))?;
        let off = le64(elf, h + 0x18).ok_or_else(|| bad("section header out of bounds"))? as usize;
        let size = le64(elf, h + 0x20).ok_or_else(|| bad("section header out of bounds"))? as usize;
        // SHT_NOBITS has no bytes in the file.
        let data = if ty == 8 {
            &[][..]
        } else {
            off.checked_add(size)
                .and_then(|end| elf.get(off..end))
                .ok_or_else(|| bad("section out of bounds"))?
        };
        Ok((name, data))
    };
    let (_, shstrtab) = section(shstrndx)?;
    for i in 0..shnum {
        let (name_off, data) = section(i)?;
        let name = shstrtab
            .get(name_off as usize..)
            .and_then(|s| s.split(|b| *b == 0).next())
            .unwrap_or_default();
        if name == b".modinfo" {
            let mut info = ModInfo::default();
            for kv in data.split(|b| *b == 0) {
                let kv = String::from_utf8_lossy(kv);
                match kv.split_once('=') {
                    Some(("name", v)) => info.name = Some(v.to_string()),
                    Some(("depends", v)) => {
                        info.depends = v
                            .split(',')
                            .filter(|d| !d.is_empty())
                            .map(String::from)
                            .collect()
                    }
                    Some(("vermagic", v)) => info.vermagic = Some(v.to_string()),
                    _ => {}
                }
            }
            return Ok(info);
        }
    }
    Err(bad("no .modinfo section"))
}

/// A module's canonical name from its file name (`sev-guest.ko.xz` -> `sev_guest`).
pub fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let base = [".ko.xz", ".ko.gz", ".ko.zst", ".ko"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    base.replace('-', "_")
}

/// Whether a file name looks like a kernel module.
pub fn is_module_file(name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.gz", ".ko.zst"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The uncompressed bytes of a module file.
pub fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let name = path.to_string_lossy();
    let tool = |prog: &str, package: &str| -> Result<Vec<u8>, String> {
        let out = Command::new(prog)
            .arg("-dc")
            .arg(path)
            .output()
            .map_err(|e| format!("{prog} (from {package}) is needed to read {name}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{prog} -dc {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.stdout)
    };
    if name.ends_with(".xz") {
        tool("xz", "xz-utils")
    } else if name.ends_with(".zst") {
        tool("zstd", "zstd")
    } else if name.ends_with(".gz") {
        let raw = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        crate::gzip::decompress(&raw).map_err(|e| format!("{name}: {e}"))
    } else {
        std::fs::read(path).map_err(|e| format!("{name}: {e}"))
    }
}

/// The modules of an unpacked kernel, `lib/modules/<release>`, by name.
#[derive(Debug, Default)]
pub struct Tree {
    /// The directory.
    pub root: PathBuf,
    by_name: BTreeMap<String, String>,
}

impl Tree {
    /// Indexes every module file below `root` (relative paths, sorted walk).
    pub fn scan(root: &Path) -> Result<Tree, String> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), String> {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let path = e.path();
                let ft = e
                    .file_type()
                    .map_err(|err| format!("{}: {err}", path.display()))?;
                let file = e.file_name().to_string_lossy().into_owned();
                if ft.is_dir() {
                    walk(base, &path, out)?;
                } else if is_module_file(&file) {
                    let rel = path
                        .strip_prefix(base)
                        .expect("below the base")
                        .to_string_lossy()
                        .into_owned();
                    out.entry(module_name(&file)).or_insert(rel);
                }
            }
            Ok(())
        }
        let mut by_name = BTreeMap::new();
        walk(root, root, &mut by_name)?;
        Ok(Tree {
            root: root.to_path_buf(),
            by_name,
        })
    }

    /// The relative path of module `name` (`-`/`_` equivalent).
    pub fn find(&self, name: &str) -> Option<&str> {
        self.by_name.get(&module_name(name)).map(String::as_str)
    }
}

/// A module requested for the image: a name in the tree or a path to a module file,
/// with load parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Name or path.
    pub module: String,
    /// `param=value` words.
    pub params: Vec<String>,
}

impl Request {
    /// Parses `NAME|PATH [PARAM=VALUE ...]`.
    pub fn parse(s: &str) -> Result<Request, String> {
        let mut words = s.split_whitespace();
        let module = words
            .next()
            .ok_or_else(|| format!("module '{s}': expected NAME|PATH [PARAM=VALUE ...]"))?;
        if module.contains('=') {
            return Err(format!("module '{s}': the first word must be the module"));
        }
        Ok(Request {
            module: module.to_string(),
            params: words.map(String::from).collect(),
        })
    }

    /// Whether this names a file rather than a module of the tree.
    pub fn is_path(&self) -> bool {
        self.module.contains('/') || is_module_file(&self.module)
    }
}

/// One module going into the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    /// Canonical name.
    pub name: String,
    /// The file on the host.
    pub source: PathBuf,
    /// Its path below `/lib/modules/<release>` in the image.
    pub image_path: String,
    /// Canonical names of its direct dependencies.
    pub depends: Vec<String>,
    /// `vermagic=`, if present.
    pub vermagic: Option<String>,
}

/// The resolved module set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Every module, in a valid load order (dependencies first).
    pub modules: Vec<Included>,
    /// The load list for `/etc/sealgate/modules` (requested modules, in order).
    pub load: Vec<String>,
}

/// Resolves `requests` and their dependency closure. `info` reads a module's
/// `.modinfo` (normally [`read_module`] + [`modinfo`]).
pub fn resolve(
    tree: Option<&Tree>,
    requests: &[Request],
    info: &dyn Fn(&Path) -> Result<ModInfo, String>,
) -> Result<Resolved, String> {
    struct Walk<'a> {
        tree: Option<&'a Tree>,
        info: &'a dyn Fn(&Path) -> Result<ModInfo, String>,
        done: BTreeMap<String, Included>,
        order: Vec<String>,
        active: BTreeSet<String>,
    }
    impl Walk<'_> {
        /// Includes the module and its closure; its canonical (`.modinfo`) name.
        fn visit(
            &mut self,
            name: String,
            source: PathBuf,
            image_path: String,
            chain: &str,
        ) -> Result<String, String> {
            if self.done.contains_key(&name) {
                return Ok(name);
            }
            if !self.active.insert(name.clone()) {
                return Err(format!("dependency cycle: {chain} -> {name}"));
            }
            let mi = (self.info)(&source)?;
            let canonical = mi.name.as_deref().map(module_name).unwrap_or(name.clone());
            let mut depends = Vec::new();
            for dep in mi.depends.iter().map(|d| module_name(d)) {
                let tree = self.tree.ok_or_else(|| {
                    format!("module {canonical} depends on {dep}: give the kernel's modules directory (--modules-dir)")
                })?;
                let rel = tree.find(&dep).ok_or_else(|| {
                    format!(
                        "module {canonical} depends on {dep}, which is not in {}",
                        tree.root.display()
                    )
                })?;
                let chain = format!("{chain} -> {canonical}");
                depends.push(self.visit(dep, tree.root.join(rel), rel.to_string(), &chain)?);
            }
            self.active.remove(&name);
            if !self.done.contains_key(&canonical) {
                self.order.push(canonical.clone());
                self.done.insert(
                    canonical.clone(),
                    Included {
                        name: canonical.clone(),
                        source,
                        image_path,
                        depends,
                        vermagic: mi.vermagic,
                    },
                );
            }
            Ok(canonical)
        }
    }

    let mut w = Walk {
        tree,
        info,
        done: BTreeMap::new(),
        order: Vec::new(),
        active: BTreeSet::new(),
    };
    let mut load = Vec::new();
    let mut load_seen = BTreeSet::new();
    for r in requests {
        let (name, source, image_path) = if r.is_path() {
            let source = PathBuf::from(&r.module);
            let file = source
                .file_name()
                .ok_or_else(|| format!("module path '{}' has no file name", r.module))?
                .to_string_lossy()
                .into_owned();
            (module_name(&file), source, format!("extra/{file}"))
        } else {
            let tree = tree.ok_or_else(|| {
                format!(
                    "module {}: give the kernel's modules directory (--modules-dir)",
                    r.module
                )
            })?;
            let rel = tree
                .find(&r.module)
                .ok_or_else(|| format!("module {} is not in {}", r.module, tree.root.display()))?;
            (module_name(&r.module), tree.root.join(rel), rel.to_string())
        };
        let recorded = w.visit(name, source, image_path, "requested")?;
        if !load_seen.insert(recorded.clone()) {
            return Err(format!("module {recorded} is requested twice"));
        }
        let mut line = recorded;
        for p in &r.params {
            line.push(' ');
            line.push_str(p);
        }
        load.push(line);
    }
    // Two different files claiming one image path would overwrite each other.
    let mut paths = BTreeMap::new();
    for name in &w.order {
        let m = &w.done[name];
        if let Some(other) = paths.insert(m.image_path.clone(), name.clone()) {
            return Err(format!(
                "modules {other} and {name} would both be /lib/modules/<release>/{}",
                m.image_path
            ));
        }
    }
    let modules = w.order.iter().map(|n| w.done[n].clone()).collect();
    Ok(Resolved { modules, load })
}

impl Resolved {
    /// depmod's `modules.dep` for these modules: `path: deps`, each line listing the
    /// whole dependency closure so that loading from the last to the first works.
    pub fn modules_dep(&self) -> String {
        let by_name: BTreeMap<&str, &Included> =
            self.modules.iter().map(|m| (m.name.as_str(), m)).collect();
        let mut out = String::new();
        for m in &self.modules {
            // Post-order walk: dependencies before dependents (a load order) ...
            fn walk<'a>(
                name: &'a str,
                by_name: &BTreeMap<&'a str, &'a Included>,
                seen: &mut BTreeSet<&'a str>,
                order: &mut Vec<&'a str>,
            ) {
                if !seen.insert(name) {
                    return;
                }
                if let Some(m) = by_name.get(name) {
                    for d in &m.depends {
                        walk(d, by_name, seen, order);
                    }
                }
                order.push(name);
            }
            let mut seen = BTreeSet::new();
            let mut order = Vec::new();
            walk(&m.name, &by_name, &mut seen, &mut order);
            order.pop(); // the module itself
            // ... reversed, as depmod writes it.
            out.push_str(&m.image_path);
            out.push(':');
            for d in order.iter().rev() {
                out.push(' ');
                out.push_str(&by_name[d].image_path);
            }
            out.push('\n');
        }
        out
    }

    /// The kernel release in the modules' `vermagic`, if they agree on one.
    pub fn release(&self) -> Option<String> {
        let mut releases = self
            .modules
            .iter()
            .filter_map(|m| m.vermagic.as_deref()?.split_whitespace().next());
        let first = releases.next()?;
        releases.all(|r| r == first).then(|| first.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE relocatable with a `.modinfo` section (what `mkinitramfs` needs
    /// of a module; real modules have many more sections).
    pub fn fake_module(modinfo: &str) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1; // little-endian
        elf[6] = 1;
        let modinfo_off = elf.len();
        elf.extend_from_slice(modinfo.as_bytes());
        let shstr_off = elf.len();
        elf.extend_from_slice(shstrtab);
        while !elf.len().is_multiple_of(8) {
            elf.push(0);
        }
        let shoff = elf.len();
        let mut sh = |name: u32, ty: u32, off: usize, size: usize| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0);
        sh(1, 1, modinfo_off, modinfo.len()); // .modinfo, PROGBITS
        sh(10, 3, shstr_off, shstrtab.len()); // .shstrtab, STRTAB
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        elf
    }

    #[test]
    fn reads_modinfo_and_rejects_garbage() {
        let elf = fake_module(
            "license=GPL\0depends=net_failover,failover\0name=virtio_net\0vermagic=6.12.43+deb12-cloud-amd64 SMP mod_unload\0",
        );
        let mi = modinfo(&elf).unwrap();
        assert_eq!(mi.name.as_deref(), Some("virtio_net"));
        assert_eq!(mi.depends, ["net_failover", "failover"]);
        assert!(
            mi.vermagic
                .unwrap()
                .starts_with("6.12.43+deb12-cloud-amd64 ")
        );
        assert_eq!(
            modinfo(&fake_module("depends=\0name=x\0")).unwrap().depends,
            Vec::<String>::new()
        );
        assert!(modinfo(b"\x7fELF").is_err());
        assert!(modinfo(b"hello").is_err());
        for cut in 0..elf.len() {
            let _ = modinfo(&elf[..cut]); // never panics
        }
        let mut bad = elf.clone();
        let n = bad.len();
        bad[n - 64 + 0x18] = 0xff; // .shstrtab offset out of bounds
        assert!(modinfo(&bad).is_err());
    }

    fn infos() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("failover.ko.xz", "name=failover\0depends=\0"),
            (
                "net_failover.ko.xz",
                "name=net_failover\0depends=failover\0",
            ),
            (
                "virtio_net.ko.xz",
                "name=virtio_net\0depends=net_failover,failover\0",
            ),
            ("configfs.ko.xz", "name=configfs\0depends=\0"),
            ("tsm.ko.xz", "name=tsm\0depends=configfs\0"),
            ("sev-guest.ko.xz", "name=sev_guest\0depends=tsm\0"),
            ("tsm_sim.ko", "name=tsm_sim\0depends=tsm\0"),
            ("loop_a.ko", "name=loop_a\0depends=loop_b\0"),
            ("loop_b.ko", "name=loop_b\0depends=loop_a\0"),
        ])
    }

    fn tree() -> Tree {
        let mut by_name = BTreeMap::new();
        for (file, dir) in [
            ("failover.ko.xz", "kernel/net/core"),
            ("net_failover.ko.xz", "kernel/drivers/net"),
            ("virtio_net.ko.xz", "kernel/drivers/net"),
            ("configfs.ko.xz", "kernel/fs/configfs"),
            ("tsm.ko.xz", "kernel/drivers/virt/coco"),
            ("sev-guest.ko.xz", "kernel/drivers/virt/coco/sev-guest"),
            ("loop_a.ko", "kernel/x"),
            ("loop_b.ko", "kernel/x"),
        ] {
            by_name.insert(module_name(file), format!("{dir}/{file}"));
        }
        Tree {
            root: PathBuf::from("/k/lib/modules/6.12.43"),
            by_name,
        }
    }

    fn fake_info(path: &Path) -> Result<ModInfo, String> {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = infos()[file.as_str()];
        modinfo(&fake_module(text))
    }

    fn req(s: &str) -> Request {
        Request::parse(s).unwrap()
    }

    #[test]
    fn closure_in_load_order_and_modules_dep() {
        let t = tree();
        let r = resolve(
            Some(&t),
            &[
                req("virtio_net"),
                req("/build/tsm_sim.ko provider=sev_guest"),
                req("sev-guest"),
            ],
            &fake_info,
        )
        .unwrap();
        let names: Vec<&str> = r.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "failover",
                "net_failover",
                "virtio_net",
                "configfs",
                "tsm",
                "tsm_sim",
                "sev_guest"
            ]
        );
        assert_eq!(
            r.load,
            ["virtio_net", "tsm_sim provider=sev_guest", "sev_guest"]
        );
        assert_eq!(r.modules[5].image_path, "extra/tsm_sim.ko");
        assert_eq!(r.modules[5].source, PathBuf::from("/build/tsm_sim.ko"));
        assert_eq!(
            r.modules[2].source,
            PathBuf::from("/k/lib/modules/6.12.43/kernel/drivers/net/virtio_net.ko.xz")
        );
        assert_eq!(
            r.modules_dep(),
            "kernel/net/core/failover.ko.xz:\n\
             kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz\n\
             kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\
             kernel/fs/configfs/configfs.ko.xz:\n\
             kernel/drivers/virt/coco/tsm.ko.xz: kernel/fs/configfs/configfs.ko.xz\n\
             extra/tsm_sim.ko: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz\n\
             kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz\n"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let t = tree();
        let e = resolve(Some(&t), &[req("nope")], &fake_info).unwrap_err();
        assert!(e.contains("nope is not in /k/lib/modules/6.12.43"), "{e}");
        let e = resolve(Some(&t), &[req("loop_a")], &fake_info).unwrap_err();
        assert!(e.contains("dependency cycle"), "{e}");
        let e = resolve(None, &[req("/b/tsm_sim.ko")], &fake_info).unwrap_err();
        assert!(e.contains("--modules-dir"), "{e}");
        let e = resolve(Some(&t), &[req("tsm"), req("tsm x=1")], &fake_info).unwrap_err();
        assert!(e.contains("requested twice"), "{e}");
        assert!(Request::parse("").is_err());
        assert!(Request::parse("a=b").is_err());
        assert!(req("tsm_sim.ko").is_path() && !req("tsm_sim").is_path());
    }
}
