//! The early mounts of the init stage: `/proc`, `/sys`, `/dev`, `/run`, and configfs on
//! `/sys/kernel/config` once its module is loaded.
//!
//! A target that already is a mount point (a wrapper `/init` or an initramfs generator
//! mounted it; the host's `/proc` in a test namespace) is left as it is, and so is one
//! where `mount(2)` answers `EBUSY`. "Is a mount point" means: a different device than its
//! parent directory. A failed mount is logged and the boot goes on; whatever needed it
//! fails later with a precise message (and the stage fails closed).

use crate::fs::exists;
use crate::time::Instant;
use crate::{debug, warn};
use alloc::vec::Vec;
use core::ffi::CStr;
use rustix::fs::{Mode, stat};
use rustix::io::Errno;
use rustix::mount::{MountFlags, mount};

/// One mount of the init stage.
struct Spec {
    target: &'static str,
    fstype: &'static str,
    flags: MountFlags,
    data: &'static CStr,
    /// Mode for the directory if it has to be created.
    dir_mode: u32,
}

/// Outcome of one mount.
#[derive(Debug, PartialEq, Eq)]
pub enum Mounted {
    /// Mounted now.
    Now,
    /// Something was mounted there already.
    Already,
    /// Not mounted (logged).
    Failed,
}

/// The parent directory of `path`, lexically (`/a/b/` -> `/a`, `a` -> `.`); `None` for `/`.
fn parent(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { Some(".") } else { None };
    }
    match trimmed.rfind('/') {
        None => Some("."),
        Some(i) => {
            let p = trimmed[..i].trim_end_matches('/');
            Some(if p.is_empty() { "/" } else { p })
        }
    }
}

/// Whether `path` is a mount point: its device differs from its parent's. `/` always is.
pub fn is_mount_point(path: &str) -> bool {
    let Some(parent) = parent(path) else {
        return true;
    };
    match (stat(path), stat(parent)) {
        (Ok(a), Ok(b)) => a.st_dev != b.st_dev,
        _ => false,
    }
}

fn mount_one(spec: &Spec) -> (Mounted, u128) {
    let t = Instant::now();
    let m = try_mount(spec);
    (m, t.elapsed().as_micros())
}

fn try_mount(spec: &Spec) -> Mounted {
    let target = spec.target;
    if is_mount_point(target) {
        return Mounted::Already;
    }
    if !exists(target)
        && let Err(e) = rustix::fs::mkdir(target, Mode::from_raw_mode(spec.dir_mode))
    {
        warn!("init: cannot create {}: {e}", spec.target, e = crate::os(e));
        return Mounted::Failed;
    }
    match mount(spec.fstype, target, spec.fstype, spec.flags, spec.data) {
        Ok(()) => Mounted::Now,
        Err(Errno::BUSY) => Mounted::Already,
        Err(e) => {
            warn!(
                "init: mount {} on {}: {e}",
                spec.fstype,
                spec.target,
                e = crate::os(e)
            );
            Mounted::Failed
        }
    }
}

const SAFE: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);

/// What [`early`] did, for the log once its level is known (the level may come from
/// the kernel command line, which needs `/proc`).
pub struct Early(Vec<(&'static str, &'static str, Mounted, u128)>);

impl Early {
    /// Logs each mount at debug level.
    pub fn log(&self) {
        for (fstype, target, m, us) in &self.0 {
            match m {
                Mounted::Now => debug!("init: mounted {fstype} on {target} ({us} us)"),
                Mounted::Already => debug!("init: {target} was mounted already"),
                Mounted::Failed => {}
            }
        }
    }
}

/// Mounts proc, sysfs, devtmpfs and a tmpfs on `/run`, each unless already mounted.
/// Failures are logged at once.
pub fn early() -> Early {
    let specs = [
        Spec {
            target: "/proc",
            fstype: "proc",
            flags: SAFE,
            data: c"",
            dir_mode: 0o555,
        },
        Spec {
            target: "/sys",
            fstype: "sysfs",
            flags: SAFE,
            data: c"",
            dir_mode: 0o555,
        },
        Spec {
            target: "/dev",
            fstype: "devtmpfs",
            flags: MountFlags::NOSUID.union(MountFlags::NOEXEC),
            data: c"mode=0755",
            dir_mode: 0o755,
        },
        Spec {
            target: "/run",
            fstype: "tmpfs",
            flags: MountFlags::NOSUID.union(MountFlags::NODEV),
            data: c"mode=0755",
            dir_mode: 0o755,
        },
    ];
    let mut done = Vec::new();
    for spec in &specs {
        let (m, us) = mount_one(spec);
        if m == Mounted::Failed && spec.target == "/dev" && !exists("/dev/null") {
            warn!("init: no devtmpfs: device nodes (TEE devices, init-data disks) will be missing");
        }
        done.push((spec.fstype, spec.target, m, us));
    }
    Early(done)
}

/// Mounts configfs on `/sys/kernel/config` if the kernel has it (the directory exists
/// once configfs is built in or loaded) and nothing is mounted there yet.
pub fn configfs() -> Mounted {
    if !exists("/sys/kernel/config") {
        debug!("init: no /sys/kernel/config: configfs is not available");
        return Mounted::Failed;
    }
    let (m, us) = mount_one(&Spec {
        target: "/sys/kernel/config",
        fstype: "configfs",
        flags: SAFE,
        data: c"",
        dir_mode: 0o755,
    });
    match m {
        Mounted::Now => debug!("init: mounted configfs on /sys/kernel/config ({us} us)"),
        Mounted::Already => debug!("init: /sys/kernel/config was mounted already"),
        Mounted::Failed => {}
    }
    m
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn mount_points_by_device() {
        assert!(is_mount_point("/"));
        assert!(
            is_mount_point("/proc"),
            "/proc is always its own mount here"
        );
        assert!(is_mount_point("/proc/"), "a trailing slash changes nothing");
        let dir = std::env::temp_dir();
        let sub = dir.join(std::format!("sealgate-mp-{}", std::process::id()));
        std::fs::create_dir_all(&sub).unwrap();
        assert!(!is_mount_point(sub.to_str().unwrap()));
        std::fs::remove_dir(&sub).unwrap();
        assert!(!is_mount_point("/no/such/dir"));
    }

    #[test]
    fn parents_lexically() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("//"), None);
        assert_eq!(parent("/proc"), Some("/"));
        assert_eq!(parent("/sys/kernel/config/"), Some("/sys/kernel"));
        assert_eq!(parent("/a//b"), Some("/a"));
        assert_eq!(parent("run"), Some("."));
    }
}
