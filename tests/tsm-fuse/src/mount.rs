//! Mounting: `/dev/fuse`, `mount(2)`, the server thread and unmount on drop.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

use crate::server::{self, Outcome, READ_BUFFER, Server, lock};
use crate::tsm::Tsm;
use crate::{Provider, Stats};

/// How long [`TsmMount::mount`] waits for the kernel's INIT request.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dropping a [`TsmMount`] waits for the server thread after unmounting.
const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// A configfs-tsm emulation mounted with FUSE on a host directory.
///
/// The directory plays the role of `/sys/kernel/config/tsm`: report entries are made with
/// `mkdir <dir>/report/<name>` ([`TsmMount::report_dir`]). One server thread answers the
/// kernel; dropping the value unmounts (`umount2(MNT_DETACH)`) and stops the thread, also
/// while a test unwinds from a panic.
pub struct TsmMount {
    root: PathBuf,
    tsm: Arc<Mutex<Tsm>>,
    thread: Option<JoinHandle<()>>,
    remove_dir_on_drop: bool,
}

impl std::fmt::Debug for TsmMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsmMount")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl TsmMount {
    /// Mounts the emulation on the existing directory `dir` with `provider` registered
    /// (`None`: no TSM provider, so `mkdir` in `report/` fails with `ENXIO`), and starts the
    /// server thread. Returns once the kernel completed the FUSE INIT handshake.
    ///
    /// Needs `/dev/fuse` and the privilege to mount (root). Every failure is an
    /// [`io::Error`] whose message names what is missing; nothing is skipped silently.
    pub fn mount(dir: &Path, provider: Option<Arc<dyn Provider>>) -> io::Result<TsmMount> {
        Self::mount_inner(dir, provider, false)
    }

    /// Like [`TsmMount::mount`], on a fresh directory under [`std::env::temp_dir`] that is
    /// removed again when the mount is dropped.
    pub fn mount_temp(provider: Option<Arc<dyn Provider>>) -> io::Result<TsmMount> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tsm-fuse.{}.{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            server::unix_now(),
        ));
        std::fs::create_dir(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("tsm-fuse: cannot create mount point {}: {e}", dir.display()),
            )
        })?;
        Self::mount_inner(&dir, provider, true).inspect_err(|_| {
            let _ = std::fs::remove_dir(&dir);
        })
    }

    fn mount_inner(
        dir: &Path,
        provider: Option<Arc<dyn Provider>>,
        remove_dir_on_drop: bool,
    ) -> io::Result<TsmMount> {
        let meta = std::fs::metadata(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("tsm-fuse: mount point {}: {e}", dir.display()),
            )
        })?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("tsm-fuse: mount point {} is not a directory", dir.display()),
            ));
        }

        let fd = open_fuse_device()?;
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let options = format!(
            "fd={},rootmode=40000,user_id={uid},group_id={gid},default_permissions",
            fd.as_raw_fd()
        );
        let options = CString::new(options).map_err(io::Error::other)?;
        rustix::mount::mount(
            "tsm-fuse",
            dir,
            "fuse",
            MountFlags::NOSUID | MountFlags::NODEV,
            Some(options.as_c_str()),
        )
        .map_err(|e| mount_error(dir, e))?;

        let tsm = Arc::new(Mutex::new(Tsm::new(provider)));
        let server = Server::new(Arc::clone(&tsm), uid, gid, server::unix_now());
        let (ready_tx, ready_rx) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("tsm-fuse".into())
            .spawn(move || serve(fd, server, ready_tx));
        let mut mount = TsmMount {
            root: dir.to_path_buf(),
            tsm,
            thread: None,
            remove_dir_on_drop,
        };
        match spawned {
            Ok(t) => mount.thread = Some(t),
            Err(e) => {
                // Dropping `mount` unmounts; the fd went down with the closure.
                return Err(io::Error::new(
                    e.kind(),
                    format!("tsm-fuse: cannot spawn the server thread: {e}"),
                ));
            }
        }
        match ready_rx.recv_timeout(INIT_TIMEOUT) {
            Ok(Ok(())) => Ok(mount),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "tsm-fuse: the kernel did not complete the FUSE INIT handshake on {} within {:?}",
                    dir.display(),
                    INIT_TIMEOUT
                ),
            )),
        }
    }

    /// The mount point (the emulated `/sys/kernel/config/tsm`).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<mount point>/report`, the directory report entries are created in.
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }

    /// Fault injection: advances the `write_generation` of entry `entry` the way a
    /// concurrent writer to the same entry would (the configuration stays as it is, but
    /// `generation` moves and the next `outblob`/`auxblob` read regenerates the report).
    /// Returns the new generation; `NotFound` if there is no such entry, and `EBUSY` (as
    /// the kernel) if the counter would wrap onto the last read generation.
    pub fn bump_generation(&self, entry: &str) -> io::Result<u64> {
        self.sync();
        lock(&self.tsm)
            .bump_generation(entry.as_bytes())
            .map_err(|e| errno_error(e, &format!("tsm-fuse: bump_generation({entry:?})")))
    }

    /// Registers (`Some`) or unregisters (`None`) the TSM provider at run time, like a
    /// provider module loading or unloading. As `tsm_report_register()`, registering fails
    /// with `EBUSY` while a provider is registered or while entries exist. Entries keep the
    /// attribute files they were created with; reads that need a provider then fail with
    /// `ENXIO`.
    pub fn set_provider(&self, provider: Option<Arc<dyn Provider>>) -> io::Result<()> {
        self.sync();
        lock(&self.tsm)
            .set_provider(provider)
            .map_err(|e| errno_error(e, "tsm-fuse: set_provider"))
    }

    /// Counters since the mount was made.
    pub fn stats(&self) -> Stats {
        self.sync();
        lock(&self.tsm).stats()
    }

    /// Makes one synchronous round trip through the mount (`statfs`), so that whatever the
    /// calling thread already queued in the kernel is processed before we look at the model.
    /// This matters for the commit of an `inblob`: FUSE sends the `RELEASE` of a closed file
    /// asynchronously (queued, in order, before `close(2)` returns), so without this a test
    /// could observe the model before its own write was committed.
    fn sync(&self) {
        let _ = rustix::fs::statfs(&self.root);
    }
}

impl Drop for TsmMount {
    fn drop(&mut self) {
        // Lazy unmount: succeeds even while a file is open; the kernel tears the connection
        // down (and our read gets ENODEV) once the last reference is gone.
        let _ = rustix::mount::unmount(&self.root, UnmountFlags::DETACH);
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(2));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
            // Otherwise files are still open on the detached mount: the thread keeps
            // serving them and ends on its own when they are closed.
        }
        if self.remove_dir_on_drop {
            let _ = std::fs::remove_dir(&self.root);
        }
    }
}

fn open_fuse_device() -> io::Result<OwnedFd> {
    rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        let why = match e {
            Errno::NOENT => {
                "/dev/fuse does not exist: load the fuse module (modprobe fuse) or create the \
                 device node (mknod /dev/fuse c 10 229)"
            }
            Errno::ACCESS | Errno::PERM => "no permission to open /dev/fuse: run the tests as root",
            Errno::NODEV | Errno::NXIO => "/dev/fuse has no driver: the kernel lacks FUSE support",
            _ => "cannot open /dev/fuse",
        };
        errno_error(e, &format!("tsm-fuse: {why}"))
    })
}

fn mount_error(dir: &Path, e: Errno) -> io::Error {
    let why = match e {
        Errno::PERM | Errno::ACCESS => {
            "refused: mounting FUSE needs root (CAP_SYS_ADMIN); run the tests as root"
        }
        Errno::NODEV => "the kernel has no \"fuse\" file system type (CONFIG_FUSE_FS)",
        Errno::NOENT | Errno::NOTDIR => "the mount point does not exist",
        _ => "failed",
    };
    errno_error(
        e,
        &format!("tsm-fuse: mount(2) of FUSE at {} {why}", dir.display()),
    )
}

/// An `io::Error` with the errno's kind and a message saying what failed.
fn errno_error(e: Errno, what: &str) -> io::Error {
    let os = io::Error::from_raw_os_error(e.raw_os_error());
    io::Error::new(os.kind(), format!("{what}: {os}"))
}

/// The server loop: read one request, handle it, write the reply, until the kernel tears
/// the connection down (`ENODEV`) or sends DESTROY. Dropping `fd` at the end aborts the
/// connection, so a client can never hang on a dead server.
fn serve(fd: OwnedFd, mut server: Server, ready: mpsc::Sender<io::Result<()>>) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut ready = Some(ready);
    loop {
        let n = match rustix::io::read(&fd, &mut buf[..]) {
            Ok(n) => n,
            // Interrupted, or the request was withdrawn before we got it.
            Err(Errno::INTR | Errno::AGAIN | Errno::NOENT) => continue,
            Err(e) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(errno_error(e, "tsm-fuse: reading /dev/fuse failed")));
                }
                break;
            }
        };
        let msg = &buf[..n];
        let outcome = catch_unwind(AssertUnwindSafe(|| server.handle(msg))).unwrap_or_else(|_| {
            // A provider (or a bug) panicked: answer EIO rather than leave the caller hanging.
            Outcome {
                reply: server::panic_reply(msg),
                stop: false,
            }
        });
        if let Some(reply) = &outcome.reply {
            // A failed write (ENOENT: the request was interrupted and is gone; ENODEV: the
            // connection was aborted) leaves nothing to do: the next read tells what follows.
            let _ = rustix::io::write(&fd, reply);
        }
        if let Some(tx) = ready.take_if(|_| outcome.reply.is_some()) {
            let _ = tx.send(if server.initialized() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "tsm-fuse: FUSE INIT failed: the kernel offers an unsupported protocol version",
                ))
            });
        }
        if outcome.stop {
            break;
        }
    }
}
