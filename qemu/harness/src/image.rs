//! Guest images.
//!
//! - [`base`]: the sealgate image: `/sbin/sealgate` (static, as shipped), `/init` pointing at
//!   it, `/dev/console`, the kernel modules sealgate needs (virtio-net and its dependencies,
//!   configfs, tsm). **Stand-in** for the `image/` crate's `mkinitramfs` until it lands: the
//!   tests only depend on [`base`]'s result, so switching is local to this function.
//! - [`sim_overlay`]: a second cpio archive appended to the base one (the kernel unpacks
//!   concatenated archives in order, later entries replacing earlier ones) whose `/init` is
//!   `guest-sim`, plus `tsm_sim.ko` and `/etc/guest-sim.conf`.

use crate::Artifacts;
use crate::cpio::Cpio;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Kernel modules every image carries (dependencies first): virtio-net, virtio-blk (the
/// init-data disk), configfs and configfs-tsm.
pub const MODULES: [&str; 6] = [
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
    "configfs",
    "tsm",
];

/// A cpio archive that creates parent directories as needed.
struct Tree {
    cpio: Cpio,
    dirs: BTreeSet<String>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            cpio: Cpio::new(),
            dirs: BTreeSet::new(),
        }
    }

    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for part in &parts[..parts.len() - 1] {
            acc.push('/');
            acc.push_str(part);
            if self.dirs.insert(acc.clone()) {
                self.cpio.dir(&acc, 0o755);
            }
        }
    }

    fn dir(&mut self, path: &str) {
        self.parents(path);
        if self.dirs.insert(path.to_string()) {
            self.cpio.dir(path, 0o755);
        }
    }

    fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.parents(path);
        self.cpio.file(path, perm, data);
    }

    fn host_file(&mut self, path: &str, perm: u32, src: &Path) {
        let data = fs::read(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        self.file(path, perm, &data);
    }
}

/// The relative path of a module under `lib/modules/<version>/`.
fn module_path(a: &Artifacts, name: &str) -> (String, std::path::PathBuf) {
    let src = a.kernel.module(name);
    let rel = src
        .strip_prefix(&a.kernel.modules)
        .expect("module under the modules dir")
        .to_string_lossy()
        .into_owned();
    (format!("/lib/modules/{}/{rel}", a.kernel.version), src)
}

/// The sealgate image (see the module documentation).
pub fn base(a: &Artifacts) -> Vec<u8> {
    let mut t = Tree::new();
    for d in ["/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/sealed"] {
        t.dir(d);
    }
    t.cpio.char_dev("/dev/console", 0o600, 5, 1);
    t.host_file("/sbin/sealgate", 0o755, &a.sealgate);
    t.cpio.symlink("/init", "/sbin/sealgate");
    for m in MODULES {
        let (path, src) = module_path(a, m);
        t.host_file(&path, 0o644, &src);
    }
    // sealgate init's module list (dependencies first).
    t.file(
        "/etc/sealgate/modules",
        0o644,
        MODULES.join("\n").as_bytes(),
    );
    t.cpio.finish()
}

/// The simulated-TEE overlay: `/init` = guest-sim, `tsm_sim.ko`, the simulator's settings.
pub fn sim_overlay(a: &Artifacts, guest_sim_conf: &str) -> Vec<u8> {
    let mut t = Tree::new();
    t.host_file("/init", 0o755, &a.guest_sim);
    t.host_file(
        &format!("/lib/modules/{}/extra/tsm_sim.ko", a.kernel.version),
        0o644,
        &a.tsm_sim,
    );
    t.file("/etc/guest-sim.conf", 0o644, guest_sim_conf.as_bytes());
    t.cpio.finish()
}

/// An overlay of extra files: `(path, mode, contents)`; parents are created.
pub fn files(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut t = Tree::new();
    for (path, mode, data) in entries {
        t.file(path, *mode, data);
    }
    t.cpio.finish()
}

/// Writes `parts` concatenated to `path`.
pub fn write(path: &Path, parts: &[&[u8]]) {
    fs::write(path, parts.concat()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
