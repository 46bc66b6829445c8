//! Kernel modules: which files to load in which order, and loading them with
//! `finit_module(2)`.
//!
//! Dependencies come from `modules.dep` in `/lib/modules/$(uname -r)` (depmod's format,
//! which `mkinitramfs` writes for the modules it packs): `path: dep dep ...`, paths
//! relative to that directory, each line listing the module's *whole* dependency
//! closure, to be loaded from the last to the first. The guest therefore never needs to
//! read `.modinfo` out of a compressed `.ko.xz`: the host resolved `depends=` when the
//! image was built. Without `modules.dep`, modules are found by name under the directory
//! and loaded in the configured order, dependencies not resolved.
//!
//! Compressed modules (`.ko.xz`, `.ko.gz`, `.ko.zst`) are passed with
//! `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses them itself
//! (`CONFIG_MODULE_DECOMPRESS`). Parameters come from the module spec and from the
//! kernel command line (`module.param=value`, as modprobe applies them, also to
//! dependencies). `EEXIST` (already loaded) is success, `ENODEV` (no such hardware: the
//! other TEE's driver) is logged as information. Failures are logged and the boot
//! goes on: a missing TEE driver surfaces later as "no TEE detected", a missing network
//! driver as an unreachable KBS, both failing closed.

use crate::time::Instant;
use crate::{debug, info, warn};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::ffi::CString;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sealgate_core::config::{ModuleSpec, module_name};

/// `MODULE_INIT_COMPRESSED_FILE` (`include/uapi/linux/module.h`).
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

/// The largest `modules.dep` read (a full distribution kernel's is about 1 MiB; an
/// initramfs's a few KiB).
const MODULES_DEP_LIMIT: usize = 16 << 20;

/// One entry of `modules.dep`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DepEntry {
    path: String,
    deps: Vec<String>,
}

/// `modules.dep`, indexed by module name and by path.
#[derive(Debug, Default)]
pub struct DepIndex {
    by_name: BTreeMap<String, DepEntry>,
    name_of_path: BTreeMap<String, String>,
}

impl DepIndex {
    /// Parses depmod's `modules.dep` text. Malformed lines are skipped.
    pub fn parse(text: &str) -> DepIndex {
        let mut index = DepIndex::default();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let name = module_name(path);
            index.name_of_path.insert(path.to_string(), name.clone());
            index.by_name.insert(
                name,
                DepEntry {
                    path: path.to_string(),
                    deps: deps.split_whitespace().map(String::from).collect(),
                },
            );
        }
        index
    }
}

/// One `finit_module` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    /// The module's name.
    pub name: String,
    /// The file, absolute or relative to the modules directory.
    pub path: String,
    /// The parameter string (`a=1 b=2`).
    pub params: String,
}

/// The planned loads, dependencies first, each module once; and what could not be found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Loads in order.
    pub loads: Vec<Load>,
    /// Requested modules found neither in `modules.dep` nor by `find`.
    pub missing: Vec<String>,
}

/// Orders the loads for `specs`. `options` are the kernel command line's module
/// parameters; `find` locates a module by name when `modules.dep` does not list it.
pub fn plan(
    specs: &[ModuleSpec],
    options: &[(String, String)],
    index: &DepIndex,
    find: &dyn Fn(&str) -> Option<String>,
) -> Plan {
    struct Walk<'a> {
        index: &'a DepIndex,
        options: &'a [(String, String)],
        done: BTreeSet<String>,
        active: BTreeSet<String>,
        plan: Plan,
    }
    impl Walk<'_> {
        fn params(&self, name: &str, own: &[String]) -> String {
            let mut p: Vec<&str> = own.iter().map(String::as_str).collect();
            p.extend(
                self.options
                    .iter()
                    .filter(|(m, _)| m == name)
                    .map(|(_, v)| v.as_str()),
            );
            p.join(" ")
        }
        fn push(&mut self, name: String, path: String, own: &[String]) {
            if self.done.insert(name.clone()) {
                let params = self.params(&name, own);
                self.plan.loads.push(Load { name, path, params });
            }
        }
        /// Loads `entry`'s dependencies (recursively, cycles cut), then `entry`.
        fn visit(&mut self, name: &str, own: &[String]) {
            if self.done.contains(name) || !self.active.insert(name.to_string()) {
                return;
            }
            if let Some(entry) = self.index.by_name.get(name).cloned() {
                for dep in entry.deps.iter().rev() {
                    let dep_name = self
                        .index
                        .name_of_path
                        .get(dep)
                        .cloned()
                        .unwrap_or_else(|| module_name(dep));
                    if self.index.by_name.contains_key(&dep_name) {
                        self.visit(&dep_name, &[]);
                    } else {
                        self.push(dep_name, dep.clone(), &[]);
                    }
                }
                self.push(name.to_string(), entry.path, own);
            }
            self.active.remove(name);
        }
    }

    let mut w = Walk {
        index,
        options,
        done: BTreeSet::new(),
        active: BTreeSet::new(),
        plan: Plan::default(),
    };
    for spec in specs {
        let name = spec.name();
        if spec.is_path() {
            w.push(name, spec.module.clone(), &spec.params);
        } else if index.by_name.contains_key(&name) {
            w.visit(&name, &spec.params);
        } else if let Some(path) = find(&name) {
            w.push(name, path, &spec.params);
        } else if !w.done.contains(&name) {
            w.plan.missing.push(name);
        }
    }
    w.plan
}

/// Finds `name.ko[.xz|.gz|.zst]` below `dir` (any depth; `-` and `_` equivalent); the
/// path relative to `dir`. Symlinks are not followed; names that are not UTF-8 are skipped
/// (no module is called that).
fn find_in_tree(dir: &str, name: &str) -> Option<String> {
    fn open_dir<Fd: AsFd>(at: Fd, path: &str, follow: bool) -> Option<OwnedFd> {
        let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        crate::fs::retry(|| rustix::fs::openat(&at, path, flags, Mode::empty())).ok()
    }
    /// The entries of `fd` as (name, type), sorted by name, without `.` and `..`.
    fn entries(fd: &OwnedFd) -> Option<Vec<(String, FileType)>> {
        let mut out = Vec::new();
        for e in rustix::fs::Dir::read_from(fd).ok()?.flatten() {
            let Ok(file) = e.file_name().to_str() else {
                continue;
            };
            if file == "." || file == ".." {
                continue;
            }
            let ft = match e.file_type() {
                FileType::Unknown => {
                    let st = rustix::fs::statat(fd, file, AtFlags::SYMLINK_NOFOLLOW).ok()?;
                    FileType::from_raw_mode(st.st_mode)
                }
                ft => ft,
            };
            out.push((file.to_string(), ft));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
    fn walk(fd: &OwnedFd, rel: &str, name: &str, depth: u32) -> Option<String> {
        for (file, ft) in entries(fd)? {
            let path = if rel.is_empty() {
                file.clone()
            } else {
                format!("{rel}/{file}")
            };
            if ft == FileType::Directory && depth < 8 {
                if let Some(sub) = open_dir(fd, &file, false)
                    && let Some(found) = walk(&sub, &path, name, depth + 1)
                {
                    return Some(found);
                }
            } else if ft == FileType::RegularFile
                && file.contains(".ko")
                && module_name(&file) == name
            {
                return Some(path);
            }
        }
        None
    }
    // The directory itself may be a symlink (`/lib` is one on merged-/usr systems).
    let fd = open_dir(rustix::fs::CWD, dir, true)?;
    walk(&fd, "", name, 0)
}

/// `/lib/modules/<running kernel release>`.
pub fn modules_dir() -> String {
    let uname = rustix::system::uname();
    format!("/lib/modules/{}", uname.release().to_string_lossy())
}

/// `path` relative to `dir`, or `path` itself if absolute.
fn join(dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", dir.trim_end_matches('/'))
    }
}

/// Why `modules.dep` was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepFileError {
    /// It could not be read.
    Read(crate::fs::ReadError),
    /// It is not UTF-8 text.
    NotUtf8,
}

impl fmt::Display for DepFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepFileError::Read(e) => write!(f, "{e}"),
            DepFileError::NotUtf8 => f.write_str("not UTF-8"),
        }
    }
}

impl core::error::Error for DepFileError {}

/// Reads `modules.dep` in `dir`.
pub fn read_modules_dep(dir: &str) -> Result<DepIndex, DepFileError> {
    let bytes = crate::fs::read_file(&join(dir, "modules.dep"), MODULES_DEP_LIMIT)
        .map_err(DepFileError::Read)?;
    let text = core::str::from_utf8(&bytes).map_err(|_| DepFileError::NotUtf8)?;
    Ok(DepIndex::parse(text))
}

/// Loads `specs` (with dependencies) from `dir`. Logs each module; never fails the boot.
pub fn load_all(specs: &[ModuleSpec], options: &[(String, String)], dir: &str) {
    if specs.is_empty() {
        debug!("init: no kernel modules configured");
        return;
    }
    let index = match read_modules_dep(dir) {
        Ok(index) => index,
        Err(e) => {
            debug!("init: {dir}/modules.dep: {e}; loading modules in the configured order");
            DepIndex::default()
        }
    };
    let plan = plan(specs, options, &index, &|name| find_in_tree(dir, name));
    for name in &plan.missing {
        if crate::fs::exists(&format!("/sys/module/{name}")) {
            debug!("init: module {name}: built in or already loaded");
        } else {
            warn!("init: module {name} not found under {dir} (not built in either)");
        }
    }
    for load in &plan.loads {
        let path = join(dir, &load.path);
        let t = Instant::now();
        match load_one(&path, &load.params) {
            Ok(Outcome::Loaded) => info!(
                "init: loaded module {}{}{} ({} ms)",
                load.name,
                if load.params.is_empty() { "" } else { " " },
                load.params,
                t.elapsed().as_millis()
            ),
            Ok(Outcome::Already) => debug!("init: module {} already loaded", load.name),
            // A generic image carries the drivers of every TEE; the others say ENODEV.
            Ok(Outcome::NoDevice) => info!(
                "init: module {}: no such device here (not loaded)",
                load.name
            ),
            Err(e) => warn!("init: module {} ({path}): {e}", load.name),
        }
    }
}

/// What `finit_module` did.
enum Outcome {
    Loaded,
    /// `EEXIST`: loaded before.
    Already,
    /// `ENODEV`: the module's hardware is absent (e.g. sev-guest outside SNP).
    NoDevice,
}

/// Why a module did not load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The module file could not be opened.
    Open(Errno),
    /// The module path names no regular file (a FIFO, a device, ...): refused unopened.
    File(crate::fs::ReadError),
    /// The parameter string has a NUL byte.
    NulInParams,
    /// A compressed module, and the kernel cannot decompress modules.
    NoDecompression,
    /// `finit_module` refused the module.
    Load(Errno),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open(e) => write!(f, "open: {}", crate::os(e)),
            LoadError::File(e) => write!(f, "module file: {e}"),
            LoadError::NulInParams => f.write_str("NUL byte in the parameters"),
            LoadError::NoDecompression => f.write_str(
                "the kernel cannot decompress modules (CONFIG_MODULE_DECOMPRESS); pack them uncompressed",
            ),
            LoadError::Load(e) => write!(f, "finit_module: {}", crate::os(e)),
        }
    }
}

impl core::error::Error for LoadError {}

/// `finit_module` on `path` (opened read-only, only if it is a regular file: a FIFO
/// there would block the open, a device open could have side effects).
fn load_one(path: &str, params: &str) -> Result<Outcome, LoadError> {
    let fd = crate::fs::open_checked(path, crate::fs::Kind::Regular).map_err(|e| match e {
        crate::fs::ReadError::Os(e) => LoadError::Open(e),
        other => LoadError::File(other),
    })?;
    let params = CString::new(params).map_err(|_| LoadError::NulInParams)?;
    let flags = if [".xz", ".gz", ".zst"].iter().any(|ext| path.ends_with(ext)) {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    match rustix::system::finit_module(&fd, &params, flags) {
        Ok(()) => Ok(Outcome::Loaded),
        Err(Errno::EXIST) => Ok(Outcome::Already),
        Err(Errno::NODEV) => Ok(Outcome::NoDevice),
        Err(Errno::OPNOTSUPP) if flags != 0 => Err(LoadError::NoDecompression),
        Err(e) => Err(LoadError::Load(e)),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// What `mkinitramfs` writes for virtio_net and tsm_sim on the Debian 6.12 kernel
    /// (closures listed so that loading runs from the last entry to the first).
    const DEP: &str = "\
kernel/net/core/failover.ko.xz:
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/fs/configfs/configfs.ko.xz:
kernel/drivers/virt/coco/tsm.ko.xz: kernel/fs/configfs/configfs.ko.xz
kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz
extra/tsm_sim.ko: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz
";

    fn specs(s: &[&str]) -> Vec<ModuleSpec> {
        s.iter().map(|m| ModuleSpec::parse(m).unwrap()).collect()
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.loads.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn a_module_path_that_is_a_fifo_is_refused_without_blocking() {
        let dir =
            std::env::temp_dir().join(std::format!("sealgate-mod-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = std::format!("{}/virtio_net.ko", dir.to_str().unwrap());
        rustix::fs::mknodat(
            rustix::fs::CWD,
            f.as_str(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Opened without O_NONBLOCK, a FIFO blocks until a writer comes.
        assert!(matches!(
            load_one(&f, ""),
            Err(LoadError::File(crate::fs::ReadError::NotAFile("FIFO")))
        ));
        assert!(matches!(
            load_one("/dev/zero", ""),
            Err(LoadError::File(crate::fs::ReadError::NotAFile(_)))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dependencies_come_first_each_module_once() {
        let index = DepIndex::parse(DEP);
        let p = plan(
            &specs(&[
                "virtio_net",
                "sev-guest",
                "tsm_sim provider=sev_guest",
                "configfs",
            ]),
            &[
                ("tsm_sim".into(), "debug=1".into()),
                ("configfs".into(), "x=1".into()),
            ],
            &index,
            &|_| None,
        );
        assert_eq!(
            names(&p),
            [
                "failover",
                "net_failover",
                "virtio_net",
                "configfs",
                "tsm",
                "sev_guest",
                "tsm_sim"
            ]
        );
        assert!(p.missing.is_empty());
        let tsm_sim = &p.loads[6];
        assert_eq!(tsm_sim.path, "extra/tsm_sim.ko");
        assert_eq!(tsm_sim.params, "provider=sev_guest debug=1");
        assert_eq!(
            p.loads[3].params, "x=1",
            "command-line options reach dependencies too"
        );
        assert_eq!(
            p.loads[5].path,
            "kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz"
        );
    }

    #[test]
    fn without_modules_dep_the_configured_order_and_explicit_paths() {
        let p = plan(
            &specs(&[
                "net-failover",
                "/opt/m/tsm_sim.ko.xz provider=tdx_guest",
                "nope",
            ]),
            &[],
            &DepIndex::default(),
            &|name| {
                (name == "net_failover").then(|| "kernel/drivers/net/net_failover.ko.xz".into())
            },
        );
        assert_eq!(names(&p), ["net_failover", "tsm_sim"]);
        assert_eq!(p.loads[1].path, "/opt/m/tsm_sim.ko.xz");
        assert_eq!(p.loads[1].params, "provider=tdx_guest");
        assert_eq!(p.missing, ["nope"]);
    }

    #[test]
    fn a_dependency_cycle_terminates_and_unknown_deps_are_loaded_by_path() {
        let index = DepIndex::parse("a.ko: b.ko\nb.ko: a.ko\nc.ko: x/unlisted.ko.xz\n");
        let p = plan(&specs(&["a", "c"]), &[], &index, &|_| None);
        assert_eq!(names(&p), ["b", "a", "unlisted", "c"]);
        assert_eq!(p.loads[2].path, "x/unlisted.ko.xz");
    }

    #[test]
    fn finds_modules_by_name_in_a_tree() {
        let dir =
            std::env::temp_dir().join(std::format!("sealgate-modtree-{}", std::process::id()));
        let sub = dir.join("kernel/drivers/net");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("net_failover.ko.xz"), b"").unwrap();
        std::fs::write(sub.join("virtio_net.ko"), b"").unwrap();
        let d = dir.to_str().unwrap();
        assert_eq!(
            find_in_tree(d, "net_failover").as_deref(),
            Some("kernel/drivers/net/net_failover.ko.xz")
        );
        assert_eq!(
            find_in_tree(d, "virtio_net").as_deref(),
            Some("kernel/drivers/net/virtio_net.ko")
        );
        assert_eq!(find_in_tree(d, "failover"), None);
        // The modules directory may be a symlink; the tree below it is walked.
        let link = std::format!("{d}-link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(
            find_in_tree(&link, "virtio_net").as_deref(),
            Some("kernel/drivers/net/virtio_net.ko")
        );
        std::fs::remove_file(&link).unwrap();
        assert!(matches!(
            read_modules_dep(d),
            Err(DepFileError::Read(e)) if e.is_not_found()
        ));
        std::fs::write(dir.join("modules.dep"), DEP).unwrap();
        let index = read_modules_dep(d).unwrap();
        assert_eq!(index.by_name["virtio_net"].deps.len(), 2);
        std::fs::write(dir.join("modules.dep"), b"\xff: x.ko\n").unwrap();
        assert_eq!(read_modules_dep(d).err(), Some(DepFileError::NotUtf8));
        assert_eq!(
            find_in_tree(&std::format!("{d}/missing"), "virtio_net"),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn module_paths_join_the_directory_unless_absolute() {
        assert_eq!(
            join("/lib/modules/6.12", "kernel/a.ko"),
            "/lib/modules/6.12/kernel/a.ko"
        );
        assert_eq!(join("/lib/modules/6.12/", "a.ko"), "/lib/modules/6.12/a.ko");
        assert_eq!(join("/lib/modules/6.12", "/opt/m/a.ko"), "/opt/m/a.ko");
        assert!(modules_dir().starts_with("/lib/modules/"));
    }

    #[test]
    fn load_errors_are_typed_and_say_what_failed() {
        assert_eq!(
            load_one("/no/such/module.ko", "").err(),
            Some(LoadError::Open(Errno::NOENT))
        );
        assert_eq!(
            LoadError::NoDecompression.to_string(),
            "the kernel cannot decompress modules (CONFIG_MODULE_DECOMPRESS); pack them uncompressed"
        );
        assert_eq!(
            LoadError::Load(Errno::PERM).to_string(),
            std::format!("finit_module: {}", Errno::PERM)
        );
    }
}
