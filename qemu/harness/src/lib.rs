//! Boots sealgate's guest images under QEMU for the end-to-end tests and `qemu/boot-time`.
//!
//! - [`Artifacts`]: everything built once per test run: the Debian 6.12 cloud kernel
//!   (`qemu/fetch-kernel`), the `tsm_sim` module (`qemu/build-module`), the static `sealgate`
//!   (exactly as shipped) and the static test-only `guest-sim`.
//! - [`image`]: initramfs images: the plain sealgate image (the sample TEE), and the
//!   simulated-TEE image = the same plus an overlay whose `/init` is `guest-sim`, which loads
//!   `tsm_sim`, starts the simulator daemon and `exec`s `/sbin/sealgate`.
//! - [`Vm`]: one QEMU boot through `qemu/run` (TCG unless KVM works, serial console to a file,
//!   user networking with the host at 10.0.2.2, `-no-reboot`, hard timeout).
//! - [`console`]: what the guest printed.
//! - [`disk`]: LUKS2 and blank disk images for the volume boots.

pub mod console;
pub mod disk;
pub mod image;
pub mod report;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The rustc target of guest binaries.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// cargo's target directory, as scripts/lib.sh and qemu/lib.sh resolve it:
/// `$CARGO_TARGET_DIR` (those scripts export it absolute), else the outermost directory
/// above this executable that cargo tagged with `CACHEDIR.TAG`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .filter(|dir| dir.join("CACHEDIR.TAG").is_file())
                .last()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Scratch space for images and logs (under the target directory, git-ignored).
pub fn work_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("qemu-tests").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("work dir");
    dir
}

fn run_checked(cmd: &mut Command) -> String {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", out.status);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The kernel `qemu/fetch-kernel` provides.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// `uname -r`, e.g. `6.12.117+deb12-cloud-amd64`.
    pub version: String,
    /// The vmlinuz.
    pub image: PathBuf,
    /// `lib/modules/<version>` (modules are `.ko.xz`).
    pub modules: PathBuf,
}

impl Kernel {
    /// Runs `qemu/fetch-kernel` (cached after the first run) and reads its assignments.
    pub fn fetch() -> Kernel {
        let out = run_checked(&mut Command::new(repo_root().join("qemu/fetch-kernel")));
        let get = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.replace('\\', ""))
                .unwrap_or_else(|| panic!("fetch-kernel printed no {key}"))
        };
        Kernel {
            version: get("KERNEL_VERSION"),
            image: get("KERNEL_IMAGE").into(),
            modules: get("KERNEL_MODULES").into(),
        }
    }

    /// The path of module `name` (`.ko.xz`) in the unpacked tree.
    pub fn module(&self, name: &str) -> PathBuf {
        find_file(&self.modules.join("kernel"), &format!("{name}.ko.xz"))
            .unwrap_or_else(|| panic!("module {name} not in {}", self.modules.display()))
    }
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(p) = find_file(&path, name) {
                return Some(p);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

/// The RUSTFLAGS of a static build: none for sealgate, which starts itself without libc
/// (its build script links it with `-nostartfiles -static`; `+crt-static` would make it a
/// static-pie that origin does not relocate); static glibc for the test-only guest-sim.
fn static_rustflags(package: &str) -> &'static str {
    if package == "sealgate" {
        ""
    } else {
        "-C target-feature=+crt-static"
    }
}

/// `cargo build --release` of one binary, static for [`TARGET`], in its own cargo invocation
/// so that features are not unified with other packages (the shipped agent must not be built
/// with the simulator's features).
pub fn build_static(package: &str, bin: &str) -> PathBuf {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .env("RUSTFLAGS", static_rustflags(package))
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(["-p", package, "--bin", bin])
        .status()
        .expect("cargo");
    assert!(status.success(), "building {package} failed");
    target_dir().join(TARGET).join("release").join(bin)
}

/// `cargo build --release` of a host tool.
pub fn build_host(package: &str, bin: &str) -> PathBuf {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .status()
        .expect("cargo");
    assert!(status.success(), "building {bin} failed");
    target_dir().join("release").join(bin)
}

/// Everything the boots need, built once.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// The guest kernel.
    pub kernel: Kernel,
    /// The stand-in configfs-tsm provider built for it.
    pub tsm_sim: PathBuf,
    /// The static sealgate, as shipped.
    pub sealgate: PathBuf,
    /// The static test-only simulator and `/init` wrapper.
    pub guest_sim: PathBuf,
    /// The host's `sealctl` (init-data disks).
    pub sealctl: PathBuf,
}

impl Artifacts {
    /// Writes the init-data TOML `text` into `dir` and makes the disk image the guest
    /// scans for it (`sealctl initdata image`); the image's path.
    pub fn initdata_image(&self, dir: &Path, text: &str) -> PathBuf {
        let toml = dir.join("initdata.toml");
        let disk = dir.join("initdata.img");
        std::fs::write(&toml, text).unwrap();
        let st = Command::new(&self.sealctl)
            .args(["initdata", "image"])
            .arg(&toml)
            .arg(&disk)
            .status()
            .unwrap();
        assert!(st.success(), "sealctl initdata image");
        disk
    }

    /// Fetches and builds everything (each step is cached by its own tool).
    pub fn build() -> Artifacts {
        let kernel = Kernel::fetch();
        let tsm_sim = run_checked(&mut Command::new(repo_root().join("qemu/build-module")));
        // SEALGATE_QEMU_SEALGATE: boot a sealgate built elsewhere (e.g. another branch).
        let sealgate = std::env::var_os("SEALGATE_QEMU_SEALGATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| build_static("sealgate", "sealgate"));
        Artifacts {
            kernel,
            tsm_sim: PathBuf::from(tsm_sim.trim()),
            sealgate,
            guest_sim: build_static("guest-sim", "guest-sim"),
            sealctl: build_host("sealctl", "sealctl"),
        }
    }

    /// [`Artifacts::build`] once per process.
    pub fn get() -> &'static Artifacts {
        static ONCE: std::sync::OnceLock<Artifacts> = std::sync::OnceLock::new();
        ONCE.get_or_init(Artifacts::build)
    }
}

/// How to boot.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// A kata init-data disk, attached read-only.
    pub initdata: Option<PathBuf>,
    /// Raw disk images attached read-write after it (`/dev/vdb`... with init-data, else
    /// from `/dev/vda`).
    pub disks: Vec<PathBuf>,
    /// Kernel command line words after `console=ttyS0 panic=-1 quiet`.
    pub append: String,
    /// Where the console goes.
    pub log: PathBuf,
    /// Hard limit for the whole boot.
    pub timeout: Duration,
}

/// A running QEMU.
pub struct Vm {
    child: Child,
    log: PathBuf,
    started: Instant,
}

/// A finished boot.
#[derive(Debug)]
pub struct Boot {
    /// `qemu/run`'s status: success after a guest poweroff, 124 after the timeout.
    pub status: ExitStatus,
    /// Everything the guest printed on the serial console.
    pub console: String,
    /// Wall time from starting QEMU to its exit.
    pub elapsed: Duration,
}

impl Boot {
    /// True if QEMU was killed by the timeout.
    pub fn timed_out(&self) -> bool {
        self.status.code() == Some(124)
    }
}

impl Vm {
    /// Starts `qemu/run`.
    pub fn start(cfg: &VmConfig) -> io::Result<Vm> {
        Vm::start_with(cfg, &[])
    }

    /// Starts `qemu/run` with more of its options (e.g. `--ccel FILE`).
    pub fn start_with(cfg: &VmConfig, more: &[&std::ffi::OsStr]) -> io::Result<Vm> {
        let mut cmd = Command::new(repo_root().join("qemu/run"));
        cmd.args(more);
        cmd.arg("--kernel")
            .arg(&cfg.kernel)
            .arg("--initrd")
            .arg(&cfg.initrd)
            .arg("--append")
            .arg(&cfg.append)
            .arg("--log")
            .arg(&cfg.log)
            .arg("--timeout")
            .arg(cfg.timeout.as_secs().max(1).to_string());
        if let Some(disk) = &cfg.initdata {
            cmd.arg("--initdata").arg(disk);
        }
        for disk in &cfg.disks {
            cmd.arg("--disk").arg(disk);
        }
        let child = cmd.stdin(Stdio::null()).spawn()?;
        Ok(Vm {
            child,
            log: cfg.log.clone(),
            started: Instant::now(),
        })
    }

    /// The console so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the console contains `needle` (true) or QEMU exits or `limit` passes.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.console().contains(needle) {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return self.console().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits for QEMU to exit (the timeout is `qemu/run`'s).
    pub fn wait(mut self) -> Boot {
        let status = self.child.wait().expect("wait for qemu/run");
        Boot {
            status,
            console: self.console(),
            elapsed: self.started.elapsed(),
        }
    }
}

/// Boots once and waits for the end.
pub fn boot(cfg: &VmConfig) -> Boot {
    Vm::start(cfg).expect("start qemu/run").wait()
}
