//! The `/init` of simulated-TEE test images: prepares the simulated firmware, then `exec`s the
//! real next stage (`/sbin/sealgate`) so that it runs as PID 1, unmodified.
//!
//! 1. mounts proc, sysfs and devtmpfs (to read the command line, find and open the device);
//! 2. loads `configfs`, `tsm` and `tsm_sim` (with the `tsm_sim.*` kernel command line words as
//!    parameters) from `/lib/modules/<release>/`;
//! 3. starts `guest-sim daemon` and waits until it has the device open;
//! 4. unmounts what it mounted (lazily), so the next stage finds the system as the kernel left
//!    it and must mount what it needs itself;
//! 5. `exec`s the next stage. The daemon lives on as its child.

use crate::config::Config;
use rustix::mount::{MountFlags, UnmountFlags};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses the module itself.
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

/// What the wrapper mounts, in order.
const MOUNTS: [(&str, &str, &str); 3] = [
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
];

/// Runs the wrapper with the configuration `load` reads once /proc is mounted; returns only
/// with an error message (the caller powers off).
pub fn run(load: impl FnOnce() -> Result<Config, String>) -> String {
    let mut mounted = Vec::new();
    for (source, target, fstype) in MOUNTS {
        let _ = fs::create_dir_all(target);
        match rustix::mount::mount(source, target, fstype, MountFlags::empty(), None) {
            Ok(()) => mounted.push(target),
            Err(rustix::io::Errno::BUSY) => {}
            Err(e) => return format!("mount {fstype} on {target}: {e}"),
        }
    }
    let cfg = match load() {
        Ok(c) => c,
        Err(e) => return e,
    };
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let dir = PathBuf::from("/lib/modules").join(&release);
    let params = cfg.module_params.join(" ");
    for (name, params) in [("configfs", ""), ("tsm", ""), ("tsm_sim", params.as_str())] {
        if let Err(e) = load_module(&dir, name, params) {
            return e;
        }
    }
    eprintln!(
        "guest-sim: tsm_sim loaded ({}): simulated firmware, test keys only",
        if params.is_empty() {
            "defaults"
        } else {
            &params
        }
    );

    // The daemon reports "ready" on stdout once the device is open.
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return format!("cannot find my own executable: {e}"),
    };
    let mut daemon = match Command::new(&exe)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return format!("cannot start the daemon: {e}"),
    };
    let mut line = String::new();
    let ready = daemon
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line));
    if !matches!(ready, Some(Ok(_))) || line.trim() != "ready" {
        return "the simulator daemon did not start (see above)".into();
    }
    // The daemon stays a child of PID 1 (the next stage); the self-test needs its pid.
    let daemon_pid = daemon.id().to_string();

    for target in mounted.iter().rev() {
        if let Err(e) = rustix::mount::unmount(*target, UnmountFlags::DETACH) {
            eprintln!("guest-sim: warning: unmount {target}: {e}");
        }
    }
    let Some((prog, args)) = cfg.exec.split_first() else {
        return "sim.exec is empty".into();
    };
    let err = Command::new(prog)
        .args(args)
        .env("GUEST_SIM_DAEMON_PID", daemon_pid)
        .exec();
    format!("cannot exec {}: {err}", cfg.exec.join(" "))
}

/// `finit_module` of `<name>.ko` or `<name>.ko.xz` found under `dir`; already loaded is fine.
fn load_module(dir: &Path, name: &str, params: &str) -> Result<(), String> {
    let Some(path) = find_module(dir, name) else {
        return Err(format!("module {name} not found under {}", dir.display()));
    };
    let file = File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let flags = if path.extension().is_some_and(|e| e == "xz") {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    let params = std::ffi::CString::new(params).map_err(|_| "NUL in module parameters")?;
    match rustix::system::finit_module(&file, &params, flags) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(format!("load {}: {e}", path.display())),
    }
}

fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    let wanted = [format!("{name}.ko"), format!("{name}.ko.xz")];
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if let Some(found) = find_module(&path, name) {
                return Some(found);
            }
        } else if wanted.iter().any(|w| entry.file_name() == w.as_str()) {
            return Some(path);
        }
    }
    None
}
