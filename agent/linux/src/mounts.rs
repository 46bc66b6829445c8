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

/// `TMPFS_MAGIC`.
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `RAMFS_MAGIC`.
const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// The mounts the init stage made that the next root gets (moved, as util-linux's
/// `switch_root` moves them).
pub const MOVED_TO_NEW_ROOT: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// Why the switch to the new root failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchError {
    /// The step.
    pub step: alloc::string::String,
    /// The kernel's answer.
    pub errno: Errno,
}

impl core::fmt::Display for SwitchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "switch_root: {}: {}", self.step, crate::os(self.errno))
    }
}

impl core::error::Error for SwitchError {}

/// Makes the filesystem mounted on `new_root` the root, as util-linux's `switch_root`
/// does (the next init is then exec'ed by the caller):
/// 1. the mounts of [`MOVED_TO_NEW_ROOT`] and `keep` (the sealed directory) are moved
///    below `new_root` (`MS_MOVE`, their sub-mounts with them). A directory the new
///    root lacks is created for the `keep` mounts (the secrets must follow), while for
///    the others the mount is detached instead;
/// 2. if the old root is a ramfs or tmpfs (the initramfs), its files are deleted to free
///    the memory, never crossing into another filesystem;
/// 3. `new_root` is moved onto `/`, the process `chroot`s into it and `chdir`s to `/`.
pub fn switch_root(new_root: &str, keep: &[&str]) -> Result<(), SwitchError> {
    let fail = |step: &str, errno| SwitchError {
        step: step.into(),
        errno,
    };
    let root_st = stat("/").map_err(|e| fail("stat /", e))?;
    let new_st = stat(new_root).map_err(|e| fail(&alloc::format!("stat {new_root}"), e))?;
    if root_st.st_dev == new_st.st_dev {
        return Err(fail(
            &alloc::format!("{new_root} is not a mount point of its own"),
            Errno::INVAL,
        ));
    }
    let base = new_root.trim_end_matches('/');
    for m in MOVED_TO_NEW_ROOT.iter().chain(keep.iter()) {
        let must_keep = keep.contains(m);
        // A mount below the new root moves with it.
        if !is_mount_point(m) || m.strip_prefix(base).is_some_and(|r| r.starts_with('/')) {
            continue;
        }
        let target = alloc::format!("{base}{m}");
        if !exists(&target) {
            if must_keep {
                // Parents too (a volume mounted on /mnt/data of a root without /mnt).
                let mut at = alloc::string::String::from(base);
                for part in m.split('/').filter(|p| !p.is_empty()) {
                    at.push('/');
                    at.push_str(part);
                    match rustix::fs::mkdir(at.as_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(fail(&alloc::format!("create {at} for {m}"), e)),
                    }
                }
            } else {
                warn!("init: the new root has no {m}: detaching it instead of moving it");
                let _ = rustix::mount::unmount(*m, rustix::mount::UnmountFlags::DETACH);
                continue;
            }
        }
        rustix::mount::mount_move(*m, target.as_str())
            .map_err(|e| fail(&alloc::format!("move {m} to {target}"), e))?;
    }
    let old_root = crate::fs::retry(|| {
        rustix::fs::open(
            "/",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
    .map_err(|e| fail("open /", e))?;
    rustix::process::chdir(new_root).map_err(|e| fail(&alloc::format!("chdir {new_root}"), e))?;
    rustix::mount::mount_move(".", "/")
        .map_err(|e| fail(&alloc::format!("move {new_root} to /"), e))?;
    rustix::process::chroot(".").map_err(|e| fail("chroot", e))?;
    rustix::process::chdir("/").map_err(|e| fail("chdir /", e))?;
    let magic = rustix::fs::fstatfs(&old_root).map(|s| s.f_type as u64);
    if matches!(magic, Ok(TMPFS_MAGIC | RAMFS_MAGIC)) {
        let removed = remove_below(&old_root, root_st.st_dev, 0);
        debug!("init: removed {removed} entries of the old root");
    }
    Ok(())
}

/// Deletes everything below directory `dir` that lives on device `dev` (depth-first,
/// at most 64 levels); returns how many entries went. Failures are skipped: this only
/// frees memory.
fn remove_below(dir: &rustix::fd::OwnedFd, dev: u64, depth: u32) -> usize {
    use rustix::fs::{AtFlags, OFlags};
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
        return 0;
    };
    let mut names = Vec::new();
    for e in entries.flatten() {
        let name = alloc::borrow::ToOwned::to_owned(e.file_name());
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    let mut n = 0;
    for name in names {
        let Ok(st) = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if st.st_dev != dev {
            continue;
        }
        let is_dir =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
        if is_dir {
            if depth >= 64 {
                continue;
            }
            if let Ok(sub) = rustix::fs::openat(
                dir,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                n += remove_below(&sub, dev, depth + 1);
            }
        }
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        if rustix::fs::unlinkat(dir, &name, flags).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};

    /// Run by [`switch_root_moves_the_mounts_and_enters_the_new_root`] in a fresh test
    /// process inside a private mount namespace (`unshare`); a no-op in a normal run.
    /// Exits 0 when every check passed (a panic exits 101).
    #[test]
    fn switch_root_child() {
        let Ok(base) = std::env::var("SEALGATE_SWITCH_ROOT_TEST") else {
            return;
        };
        let new_root = std::format!("{base}/new");
        let keep = std::format!("{base}/sealed");
        for d in [&new_root, &keep] {
            std::fs::create_dir_all(d).unwrap();
            mount("tmpfs", d.as_str(), "tmpfs", MountFlags::empty(), c"").unwrap();
        }
        std::fs::write(std::format!("{keep}/secret"), "s").unwrap();
        std::fs::write(std::format!("{new_root}/marker"), "new root").unwrap();
        // The new root has /proc, /sys and /dev but no /run (detached instead of moved)
        // and nothing for the sealed directory (created, parents too).
        for d in ["proc", "sys", "dev"] {
            std::fs::create_dir(std::format!("{new_root}/{d}")).unwrap();
        }
        switch_root(&new_root, &[keep.as_str()]).unwrap();
        assert_eq!(std::fs::read_to_string("/marker").unwrap(), "new root");
        assert_eq!(std::env::current_dir().unwrap().to_str(), Some("/"));
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mount_points: std::vec::Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(ToString::to_string))
            .collect();
        for m in ["/", "/proc", "/sys", "/dev", keep.as_str()] {
            assert!(
                mount_points.iter().any(|p| p == m),
                "{m} in {mount_points:?}"
            );
        }
        assert!(!std::path::Path::new("/run").exists(), "/run was detached");
        assert_eq!(
            std::fs::read_to_string(std::format!("{keep}/secret")).unwrap(),
            "s"
        );
        std::process::exit(0);
    }

    /// A real switch_root, in a private mount namespace (nothing changes on the host): the
    /// early mounts and a kept tmpfs move into the new root, which becomes `/`.
    #[test]
    fn switch_root_moves_the_mounts_and_enters_the_new_root() {
        let base = std::env::temp_dir().join(std::format!("sealgate-sr-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let status = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "mounts::tests::switch_root_child", "--nocapture"])
            .env("SEALGATE_SWITCH_ROOT_TEST", &base)
            .status()
            .expect("util-linux's unshare (root, or user namespaces)");
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(
            status.code(),
            Some(0),
            "the child's checks failed (see its output)"
        );
    }

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
