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

use crate::{debug, info, warn};
use sealgate_core::config::{ModuleSpec, module_name};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `MODULE_INIT_COMPRESSED_FILE` (`include/uapi/linux/module.h`).
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

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

/// Finds `name.ko[.xz|.gz|.zst]` below `dir` (any depth; `-` and `_` equivalent).
fn find_in_tree(dir: &Path, name: &str) -> Option<String> {
    fn walk(base: &Path, dir: &Path, name: &str, depth: u32) -> Option<String> {
        let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let ft = e.file_type().ok()?;
            if ft.is_dir() && depth < 8 {
                if let Some(found) = walk(base, &path, name, depth + 1) {
                    return Some(found);
                }
            } else if ft.is_file() {
                let file = e.file_name();
                let file = file.to_string_lossy();
                if file.contains(".ko") && module_name(&file) == name {
                    return path
                        .strip_prefix(base)
                        .ok()
                        .map(|p| p.to_string_lossy().into_owned());
                }
            }
        }
        None
    }
    walk(dir, dir, name, 0)
}

/// `/lib/modules/<running kernel release>`.
pub fn modules_dir() -> PathBuf {
    let uname = rustix::system::uname();
    PathBuf::from("/lib/modules").join(uname.release().to_string_lossy().as_ref())
}

/// Loads `specs` (with dependencies) from `dir`. Logs each module; never fails the boot.
pub fn load_all(specs: &[ModuleSpec], options: &[(String, String)], dir: &Path) {
    if specs.is_empty() {
        debug!("init: no kernel modules configured");
        return;
    }
    let index = match std::fs::read_to_string(dir.join("modules.dep")) {
        Ok(text) => DepIndex::parse(&text),
        Err(e) => {
            debug!(
                "init: {}/modules.dep: {e}; loading modules in the configured order",
                dir.display()
            );
            DepIndex::default()
        }
    };
    let plan = plan(specs, options, &index, &|name| find_in_tree(dir, name));
    for name in &plan.missing {
        if Path::new("/sys/module").join(name).exists() {
            debug!("init: module {name}: built in or already loaded");
        } else {
            warn!(
                "init: module {name} not found under {} (not built in either)",
                dir.display()
            );
        }
    }
    for load in &plan.loads {
        let path = dir.join(&load.path);
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
            Err(e) => warn!("init: module {} ({}): {e}", load.name, path.display()),
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

/// `finit_module` on `path`.
fn load_one(path: &Path, params: &str) -> Result<Outcome, String> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open: {e}"))?;
    let params = CString::new(params).map_err(|_| "NUL byte in the parameters".to_string())?;
    let name = path.to_string_lossy();
    let flags = if [".xz", ".gz", ".zst"].iter().any(|ext| name.ends_with(ext)) {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    match rustix::system::finit_module(&fd, &params, flags) {
        Ok(()) => Ok(Outcome::Loaded),
        Err(rustix::io::Errno::EXIST) => Ok(Outcome::Already),
        Err(rustix::io::Errno::NODEV) => Ok(Outcome::NoDevice),
        Err(rustix::io::Errno::OPNOTSUPP) if flags != 0 => Err(
            "the kernel cannot decompress modules (CONFIG_MODULE_DECOMPRESS); pack them uncompressed"
                .into(),
        ),
        Err(e) => Err(format!("finit_module: {e}")),
    }
}

#[cfg(test)]
mod tests {
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
        let dir = std::env::temp_dir().join(format!("sealgate-modtree-{}", std::process::id()));
        let sub = dir.join("kernel/drivers/net");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("net_failover.ko.xz"), b"").unwrap();
        std::fs::write(sub.join("virtio_net.ko"), b"").unwrap();
        assert_eq!(
            find_in_tree(&dir, "net_failover").as_deref(),
            Some("kernel/drivers/net/net_failover.ko.xz")
        );
        assert_eq!(
            find_in_tree(&dir, "virtio_net").as_deref(),
            Some("kernel/drivers/net/virtio_net.ko")
        );
        assert_eq!(find_in_tree(&dir, "failover"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
