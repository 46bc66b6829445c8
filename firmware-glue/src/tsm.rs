//! configfs-tsm report client (`/sys/kernel/config/tsm/report`; kernel
//! `drivers/virt/coco/guest/report.c`, formerly `tsm.c`; reference §3).
//!
//! One report is one directory: `mkdir` a unique entry, check `provider`, optionally write
//! `privlevel` (ASCII), write the 64-byte `inblob` in a single write, read `outblob` (and
//! optionally `auxblob`), check that `generation` equals the number of writes this process
//! made, and `rmdir` the entry whatever happened. If another writer touched the entry
//! (generation too high) the whole procedure is retried a bounded number of times.
//!
//! The procedure runs against a [`TsmFs`]: [`KernelFs`] (the default) makes the real system
//! calls; tests and simulated firmware implement the same five operations in process, because a
//! plain directory cannot behave like configfs (attributes appear on `mkdir`, `outblob` is
//! generated when read).

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;

use crate::sys;

/// Where the kernel exposes report instances.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// `inblob` size every provider requires (`TSM_REPORT_INBLOB_MAX`).
pub const INBLOB_LEN: usize = 64;
/// Largest `outblob`/`auxblob` the kernel produces (`TSM_REPORT_OUTBLOB_MAX`, 32 KiB).
pub const BLOB_MAX: usize = 32 * 1024;
/// Default number of attempts when another writer races us.
pub const DEFAULT_ATTEMPTS: u32 = 3;

const TEXT_MAX: usize = 64;
const EEXIST_RETRIES: u32 = 16;

/// The provider (`provider` attribute) a report must come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// AMD SEV-SNP (`sev_guest`): `outblob` = 1184-byte report, `auxblob` = certificate table.
    SevGuest,
    /// Intel TDX (`tdx_guest`): `outblob` = TD quote; no `auxblob` or `privlevel`.
    TdxGuest,
}

impl Provider {
    /// The name the kernel reports (without the trailing newline).
    pub fn name(self) -> &'static str {
        match self {
            Provider::SevGuest => "sev_guest",
            Provider::TdxGuest => "tdx_guest",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The errno a [`TsmFs`] reports for an attribute path that is not a regular file (a FIFO,
/// socket, device or directory where configfs has attribute files). [`KernelFs`] opens
/// attributes `O_NONBLOCK` and checks them with `fstat`, so such a file never blocks the agent.
pub const NOT_A_FILE: Errno = sys::WRONG_FILE_TYPE;

/// The five filesystem operations the procedure needs. Errors are raw errnos, because the
/// kernel's errnos carry the meaning (ENXIO: no provider, EINVAL: rejected inblob, …);
/// [`NOT_A_FILE`] for an attribute that is not a regular file.
pub trait TsmFs {
    /// Whether `path` exists.
    fn exists(&self, path: &str) -> bool;
    /// `mkdir(2)`.
    fn mkdir(&self, path: &str) -> Result<(), Errno>;
    /// `rmdir(2)`.
    fn rmdir(&self, path: &str) -> Result<(), Errno>;
    /// Reads a whole attribute (a regular file); `EFBIG` once it exceeds `limit` bytes.
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, Errno>;
    /// Writes `data` with a single `write(2)` on a fresh open (configfs binary attributes are
    /// committed when that file is closed).
    fn write(&self, path: &str, data: &[u8]) -> Result<(), Errno>;
}

impl<T: TsmFs + ?Sized> TsmFs for &T {
    fn exists(&self, path: &str) -> bool {
        (**self).exists(path)
    }
    fn mkdir(&self, path: &str) -> Result<(), Errno> {
        (**self).mkdir(path)
    }
    fn rmdir(&self, path: &str) -> Result<(), Errno> {
        (**self).rmdir(path)
    }
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, Errno> {
        (**self).read(path, limit)
    }
    fn write(&self, path: &str, data: &[u8]) -> Result<(), Errno> {
        (**self).write(path, data)
    }
}

/// The real filesystem, through `rustix`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelFs;

impl TsmFs for KernelFs {
    fn exists(&self, path: &str) -> bool {
        sys::exists(path)
    }
    fn mkdir(&self, path: &str) -> Result<(), Errno> {
        rustix::fs::mkdir(path, rustix::fs::Mode::RWXU)
    }
    fn rmdir(&self, path: &str) -> Result<(), Errno> {
        rustix::fs::rmdir(path)
    }
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, Errno> {
        sys::read_bounded(path, limit)
    }
    fn write(&self, path: &str, data: &[u8]) -> Result<(), Errno> {
        sys::write_once(path, data)
    }
}

/// What to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmRequest {
    /// The provider the entry must report.
    pub provider: Provider,
    /// The 64 bytes of REPORT_DATA.
    pub inblob: [u8; INBLOB_LEN],
    /// SNP only: the VMPL to request, written to `privlevel`. `None` leaves the kernel default
    /// (0) and saves a write.
    pub privlevel: Option<u32>,
    /// Also read `auxblob` (SNP: the certificate table).
    pub auxblob: bool,
}

/// What the kernel returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmReport {
    /// `outblob`.
    pub outblob: Vec<u8>,
    /// `auxblob`, `None` if not requested, absent or empty.
    pub auxblob: Option<Vec<u8>>,
    /// The `generation` the blobs belong to.
    pub generation: u64,
}

/// Why configfs-tsm did not produce a report.
#[derive(Debug, PartialEq, Eq)]
pub enum TsmError {
    /// The report root does not exist.
    NoConfigfsTsm {
        /// The root looked for.
        root: String,
    },
    /// `mkdir` failed with ENXIO: no provider is registered.
    NoProvider {
        /// The root.
        root: String,
    },
    /// The entry reports another provider.
    ProviderMismatch {
        /// The provider wanted.
        expected: Provider,
        /// The provider found.
        found: String,
    },
    /// Permission denied creating or using an entry.
    PermissionDenied {
        /// The path.
        path: String,
    },
    /// `privlevel` was refused (EINVAL: below `privlevel_floor` or above 3).
    PrivlevelRejected {
        /// The value written.
        privlevel: u32,
    },
    /// The provider has no `privlevel` attribute (TDX).
    PrivlevelUnsupported,
    /// Reading `outblob` failed with EINVAL: the provider rejected the request.
    InblobRejected {
        /// The provider.
        provider: Provider,
    },
    /// Reading a blob failed otherwise.
    ReportFailed {
        /// The provider.
        provider: Provider,
        /// The attribute (`outblob`, `auxblob`).
        attr: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// A blob larger than the kernel can produce.
    BlobTooLarge {
        /// The attribute.
        attr: &'static str,
    },
    /// An empty `outblob`.
    EmptyOutblob,
    /// `generation` is not a decimal number.
    BadGeneration {
        /// What was read.
        text: String,
    },
    /// Another writer changed the entry on every attempt.
    GenerationRace {
        /// Attempts made.
        attempts: u32,
        /// Writes this process made (the generation expected).
        expected: u64,
        /// The generation found on the last attempt.
        found: u64,
    },
    /// Another system call failed.
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// The errno.
        errno: Errno,
    },
    /// An attribute is not a regular file (see [`NOT_A_FILE`]).
    NotAFile {
        /// The path.
        path: String,
    },
    /// The report was obtained but its entry could not be removed.
    Cleanup {
        /// The entry.
        path: String,
        /// The errno.
        errno: Errno,
    },
}

impl fmt::Display for TsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsmError::NoConfigfsTsm { root } => write!(
                f,
                "configfs-tsm not found at {}: mount configfs (`mount -t configfs none /sys/kernel/config`) on a kernel with CONFIG_TSM_REPORTS (Linux 6.7+) and the TEE guest driver",
                root
            ),
            TsmError::NoProvider { root } => write!(
                f,
                "no configfs-tsm provider registered under {} (mkdir: ENXIO): the sev-guest or tdx-guest driver is not loaded, or this is not a confidential guest",
                root
            ),
            TsmError::ProviderMismatch { expected, found } => write!(
                f,
                "configfs-tsm provider is {found:?}, expected {expected:?}: this guest is not the TEE sealgate was configured for"
            ),
            TsmError::PermissionDenied { path } => write!(
                f,
                "permission denied on {}: configfs-tsm needs root (or CAP_SYS_ADMIN)",
                path
            ),
            TsmError::PrivlevelRejected { privlevel } => write!(
                f,
                "configfs-tsm refused privlevel {privlevel} (EINVAL): it must be between privlevel_floor (the guest's VMPL) and 3"
            ),
            TsmError::PrivlevelUnsupported => {
                f.write_str("this configfs-tsm provider has no privlevel attribute")
            }
            TsmError::InblobRejected { provider } => write!(
                f,
                "the {provider} provider rejected the report request (EINVAL reading outblob): inblob must be exactly 64 bytes; on SNP the firmware also answers INVALID_PARAM/INVALID_KEY for a VMPL below the guest's own"
            ),
            TsmError::ReportFailed {
                provider,
                attr,
                errno,
            } => {
                write!(
                    f,
                    "reading {attr} from the {provider} provider failed: {errno}",
                    errno = crate::util::os(errno)
                )?;
                f.write_str(match (provider, *errno) {
                    (Provider::SevGuest, Errno::NXIO) => {
                        " (the SNP firmware returned an error status, or the driver went away)"
                    }
                    (Provider::SevGuest, Errno::NOTTY) => {
                        " (the kernel disabled the VMPCK after an earlier failure; reboot the guest)"
                    }
                    (Provider::SevGuest, Errno::IO) => {
                        " (guest request transport failure; the kernel disables the VMPCK, so reboot the guest)"
                    }
                    (Provider::TdxGuest, Errno::IO) => {
                        " (quote generation failed: is the host's quote generation service reachable, e.g. QEMU tdx-guest quote-generation-socket?)"
                    }
                    (Provider::TdxGuest, Errno::BUSY) => {
                        " (a previous quote request is still in flight)"
                    }
                    (_, Errno::TIMEDOUT) => " (the host did not answer in time)",
                    (_, Errno::NXIO) => " (the provider was unregistered)",
                    _ => "",
                })
            }
            TsmError::BlobTooLarge { attr } => {
                write!(f, "configfs-tsm {attr} exceeds {BLOB_MAX} bytes")
            }
            TsmError::EmptyOutblob => f.write_str("configfs-tsm returned an empty outblob"),
            TsmError::BadGeneration { text } => {
                write!(f, "configfs-tsm generation is not a number: {text:?}")
            }
            TsmError::GenerationRace {
                attempts,
                expected,
                found,
            } => write!(
                f,
                "another process wrote to sealgate's configfs-tsm entry on each of {attempts} attempts (generation {found}, expected {expected}); refusing a report that may not carry our REPORT_DATA"
            ),
            TsmError::Io { op, path, errno } => {
                write!(
                    f,
                    "configfs-tsm {op} {} failed: {errno}",
                    path,
                    errno = crate::util::os(errno)
                )
            }
            TsmError::NotAFile { path } => write!(
                f,
                "{path} is not a regular file (FIFO, socket, device or directory): the configfs-tsm report root does not point at configfs; refused"
            ),
            TsmError::Cleanup { path, errno } => write!(
                f,
                "could not remove configfs-tsm entry {} ({errno}); remove it with rmdir",
                path,
                errno = crate::util::os(errno)
            ),
        }
    }
}

impl core::error::Error for TsmError {}

impl TsmError {
    /// Whether trying again later may succeed without anyone changing the guest: another
    /// writer raced this process on every attempt, the host did not answer in time, a
    /// previous request is still in flight, or (TDX) the host's quote generation service did
    /// not answer. An SNP transport failure (EIO) is not transient: the kernel disabled the
    /// VMPCK and only a reboot helps.
    pub fn is_transient(&self) -> bool {
        match self {
            TsmError::GenerationRace { .. } => true,
            TsmError::ReportFailed {
                provider, errno, ..
            } => matches!(
                (provider, *errno),
                (_, Errno::TIMEDOUT | Errno::BUSY | Errno::AGAIN) | (Provider::TdxGuest, Errno::IO)
            ),
            TsmError::Io { errno, .. } => matches!(*errno, Errno::BUSY | Errno::AGAIN),
            _ => false,
        }
    }
}

/// A configfs-tsm report client.
#[derive(Clone, Debug)]
pub struct TsmClient<F: TsmFs = KernelFs> {
    fs: F,
    root: String,
    attempts: u32,
}

impl TsmClient<KernelFs> {
    /// A client for the real configfs at `root` (usually [`DEFAULT_ROOT`]).
    pub fn new(root: impl Into<String>) -> Self {
        TsmClient::with_fs(KernelFs, root)
    }
}

impl Default for TsmClient<KernelFs> {
    fn default() -> Self {
        TsmClient::new(DEFAULT_ROOT)
    }
}

static ENTRY_COUNTER: AtomicU64 = AtomicU64::new(0);

enum Attempt {
    Done(Result<TsmReport, TsmError>),
    Race { expected: u64, found: u64 },
}

impl<F: TsmFs> TsmClient<F> {
    /// A client over another filesystem implementation (tests, simulated firmware).
    pub fn with_fs(fs: F, root: impl Into<String>) -> Self {
        TsmClient {
            fs,
            root: root.into(),
            attempts: DEFAULT_ATTEMPTS,
        }
    }

    /// Sets how many times the procedure runs when another writer races it (at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The report root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The filesystem.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// Runs the procedure (see the module documentation).
    pub fn generate(&self, req: &TsmRequest) -> Result<TsmReport, TsmError> {
        self.check_root()?;
        let mut last = (0, 0);
        for _ in 0..self.attempts {
            match self.attempt(req) {
                Attempt::Done(result) => return result,
                Attempt::Race { expected, found } => last = (expected, found),
            }
        }
        Err(TsmError::GenerationRace {
            attempts: self.attempts,
            expected: last.0,
            found: last.1,
        })
    }

    /// The registered provider's name (creates and removes an entry to read it).
    pub fn provider(&self) -> Result<String, TsmError> {
        self.check_root()?;
        let dir = self.create_entry()?;
        let result = self.read_provider(&dir);
        let cleanup = self.fs.rmdir(&dir);
        let name = result?;
        cleanup.map_err(|errno| TsmError::Cleanup { path: dir, errno })?;
        Ok(name)
    }

    fn check_root(&self) -> Result<(), TsmError> {
        if self.fs.exists(&self.root) {
            Ok(())
        } else {
            Err(TsmError::NoConfigfsTsm {
                root: self.root.clone(),
            })
        }
    }

    fn attempt(&self, req: &TsmRequest) -> Attempt {
        let dir = match self.create_entry() {
            Ok(dir) => dir,
            Err(e) => return Attempt::Done(Err(e)),
        };
        let outcome = self.run(&dir, req);
        let cleanup = self.fs.rmdir(&dir);
        match (outcome, cleanup) {
            (Attempt::Done(Ok(_)), Err(errno)) => {
                Attempt::Done(Err(TsmError::Cleanup { path: dir, errno }))
            }
            (outcome, _) => outcome,
        }
    }

    fn create_entry(&self) -> Result<String, TsmError> {
        let pid = rustix::process::getpid().as_raw_nonzero();
        for _ in 0..EEXIST_RETRIES {
            let n = ENTRY_COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = sys::join(&self.root, &format!("sealgate-{pid}-{n}"));
            match self.fs.mkdir(&dir) {
                Ok(()) => return Ok(dir),
                Err(Errno::EXIST) => continue,
                Err(Errno::NXIO) => {
                    return Err(TsmError::NoProvider {
                        root: self.root.clone(),
                    });
                }
                Err(Errno::NOENT) => {
                    return Err(TsmError::NoConfigfsTsm {
                        root: self.root.clone(),
                    });
                }
                Err(Errno::ACCESS | Errno::PERM) => {
                    return Err(TsmError::PermissionDenied { path: dir });
                }
                Err(errno) => {
                    return Err(TsmError::Io {
                        op: "mkdir",
                        path: dir,
                        errno,
                    });
                }
            }
        }
        Err(TsmError::Io {
            op: "mkdir",
            path: self.root.clone(),
            errno: Errno::EXIST,
        })
    }

    fn read_provider(&self, dir: &str) -> Result<String, TsmError> {
        let path = sys::join(dir, "provider");
        let raw = self.fs.read(&path, TEXT_MAX).map_err(|errno| match errno {
            Errno::NXIO => TsmError::NoProvider {
                root: self.root.clone(),
            },
            errno => io_error("read", &path, errno),
        })?;
        let text = String::from_utf8_lossy(&raw);
        Ok(text.strip_suffix('\n').unwrap_or(&text).into())
    }

    fn run(&self, dir: &str, req: &TsmRequest) -> Attempt {
        match self.run_inner(dir, req) {
            Ok(r) => Attempt::Done(Ok(r)),
            Err(Step::Race { expected, found }) => Attempt::Race { expected, found },
            Err(Step::Fail(e)) => Attempt::Done(Err(e)),
        }
    }

    fn run_inner(&self, dir: &str, req: &TsmRequest) -> Result<TsmReport, Step> {
        let found = self.read_provider(dir)?;
        if found != req.provider.name() {
            return Err(TsmError::ProviderMismatch {
                expected: req.provider,
                found,
            }
            .into());
        }

        let mut writes = 0u64;
        if let Some(privlevel) = req.privlevel {
            let path = sys::join(dir, "privlevel");
            self.fs
                .write(&path, format!("{privlevel}\n").as_bytes())
                .map_err(|errno| match errno {
                    Errno::INVAL => TsmError::PrivlevelRejected { privlevel },
                    Errno::NOENT => TsmError::PrivlevelUnsupported,
                    errno => io_error("write", &path, errno),
                })?;
            writes += 1;
        }

        let path = sys::join(dir, "inblob");
        self.fs
            .write(&path, &req.inblob)
            .map_err(|errno| io_error("write", &path, errno))?;
        writes += 1;

        let outblob = self.read_blob(dir, req.provider, "outblob")?;
        if outblob.is_empty() {
            return Err(TsmError::EmptyOutblob.into());
        }
        let generation = self.check_generation(dir, writes)?;

        let auxblob = if req.auxblob {
            let aux = match self.read_blob(dir, req.provider, "auxblob") {
                Err(Step::Fail(TsmError::Io {
                    errno: Errno::NOENT,
                    ..
                })) => Vec::new(),
                other => other?,
            };
            self.check_generation(dir, writes)?;
            (!aux.is_empty()).then_some(aux)
        } else {
            None
        };

        Ok(TsmReport {
            outblob,
            auxblob,
            generation,
        })
    }

    fn read_blob(
        &self,
        dir: &str,
        provider: Provider,
        attr: &'static str,
    ) -> Result<Vec<u8>, Step> {
        let path = sys::join(dir, attr);
        self.fs.read(&path, BLOB_MAX).map_err(|errno| {
            match errno {
                Errno::INVAL => TsmError::InblobRejected { provider },
                Errno::FBIG => TsmError::BlobTooLarge { attr },
                Errno::NOENT | Errno::ACCESS | Errno::PERM | NOT_A_FILE => {
                    io_error("read", &path, errno)
                }
                errno => TsmError::ReportFailed {
                    provider,
                    attr,
                    errno,
                },
            }
            .into()
        })
    }

    fn check_generation(&self, dir: &str, writes: u64) -> Result<u64, Step> {
        let path = sys::join(dir, "generation");
        let raw = self
            .fs
            .read(&path, TEXT_MAX)
            .map_err(|errno| io_error("read", &path, errno))?;
        let text = String::from_utf8_lossy(&raw);
        let generation: u64 =
            text.trim_end_matches('\n')
                .parse()
                .map_err(|_| TsmError::BadGeneration {
                    text: text.clone().into_owned(),
                })?;
        if generation != writes {
            return Err(Step::Race {
                expected: writes,
                found: generation,
            });
        }
        Ok(generation)
    }
}

enum Step {
    Race { expected: u64, found: u64 },
    Fail(TsmError),
}

impl From<TsmError> for Step {
    fn from(e: TsmError) -> Self {
        Step::Fail(e)
    }
}

fn io_error(op: &'static str, path: &str, errno: Errno) -> TsmError {
    match errno {
        NOT_A_FILE => TsmError::NotAFile {
            path: path.to_owned(),
        },
        Errno::ACCESS | Errno::PERM => TsmError::PermissionDenied {
            path: path.to_owned(),
        },
        errno => TsmError::Io {
            op,
            path: path.to_owned(),
            errno,
        },
    }
}

#[cfg(any(test, feature = "test-double"))]
pub mod fake {
    //! An in-process configfs-tsm (feature `test-double`; never in the shipped agent) that
    //! behaves like the kernel's `report.c`, with fault knobs, so that logic above the
    //! configfs-tsm procedure can be tested without FUSE or root.
    //!
    //! By default the "firmware" answers with a recognisable 100-byte dummy report
    //! ([`FakeTsm::report_for`]); [`FakeTsm::firmware`] plugs in real report bytes (for
    //! instance from the `sim` feature's simulated SEV-SNP or TDX firmware).

    use super::*;
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use core::cell::RefCell;

    /// What the firmware behind the fake returns for `(inblob, privlevel)`: `outblob` and
    /// `auxblob` (empty: none), or the errno reading `outblob` fails with.
    pub type Firmware = dyn Fn(&[u8], u32) -> Result<(Vec<u8>, Vec<u8>), Errno>;

    /// One report entry (a directory under the root).
    #[derive(Debug, Default)]
    pub struct Entry {
        /// Writes to `inblob`/`privlevel` so far (the kernel's `write_generation`).
        pub write_generation: u64,
        /// The generation the cached blobs belong to.
        pub read_generation: u64,
        /// The last `inblob` written.
        pub inblob: Vec<u8>,
        /// The last `privlevel` written.
        pub privlevel: u32,
        /// The cached `outblob`.
        pub outblob: Option<Vec<u8>>,
        /// The cached `auxblob`.
        pub auxblob: Vec<u8>,
    }

    /// The fake configfs-tsm report root. Paths outside it do not exist (unless listed in
    /// [`FakeTsm::files`]).
    pub struct FakeTsm {
        /// The report root (`/fake/tsm/report` by default).
        pub root: String,
        /// Whether the root exists (configfs mounted, `CONFIG_TSM_REPORTS`).
        pub root_exists: bool,
        /// The registered provider's name; `None`: none registered (`mkdir` fails ENXIO).
        pub provider: Option<&'static str>,
        /// The lowest `privlevel` accepted (SNP: the guest's VMPL).
        pub privlevel_floor: u32,
        /// The live entries.
        pub entries: RefCell<BTreeMap<String, Entry>>,
        /// Every `mkdir`, in order.
        pub mkdirs: RefCell<Vec<String>>,
        /// Every `rmdir`, in order.
        pub rmdirs: RefCell<Vec<String>>,
        /// Every `outblob` read pops one number: someone else writes that many times to the
        /// entry first (a concurrent writer).
        pub racing_writes: RefCell<Vec<u64>>,
        /// Fail `outblob` reads with this errno.
        pub outblob_errno: Option<Errno>,
        /// The `auxblob` of the default firmware (empty: none).
        pub auxblob: Vec<u8>,
        /// Fail `rmdir` with this errno.
        pub rmdir_errno: Option<Errno>,
        /// Entry names `mkdir` reports as already existing.
        pub taken_names: Vec<String>,
        /// Other regular files that exist outside the root (e.g. a sysfs `mrconfigid`),
        /// readable with [`TsmFs::read`].
        pub files: BTreeMap<String, Vec<u8>>,
        /// The firmware; `None`: [`FakeTsm::report_for`] and [`FakeTsm::auxblob`].
        pub firmware: Option<Box<Firmware>>,
    }

    impl fmt::Debug for FakeTsm {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("FakeTsm")
                .field("root", &self.root)
                .field("provider", &self.provider)
                .field("entries", &self.entries.borrow().len())
                .finish_non_exhaustive()
        }
    }

    impl FakeTsm {
        /// A fake whose provider is `provider` (`"sev_guest"`, `"tdx_guest"`, …).
        pub fn new(provider: &'static str) -> Self {
            FakeTsm {
                root: String::from("/fake/tsm/report"),
                root_exists: true,
                provider: Some(provider),
                privlevel_floor: 0,
                entries: RefCell::new(BTreeMap::new()),
                mkdirs: RefCell::new(Vec::new()),
                rmdirs: RefCell::new(Vec::new()),
                racing_writes: RefCell::new(Vec::new()),
                outblob_errno: None,
                auxblob: Vec::new(),
                rmdir_errno: None,
                taken_names: Vec::new(),
                files: BTreeMap::new(),
                firmware: None,
            }
        }

        /// Sets the firmware (see [`Firmware`]).
        pub fn with_firmware(
            mut self,
            firmware: impl Fn(&[u8], u32) -> Result<(Vec<u8>, Vec<u8>), Errno> + 'static,
        ) -> Self {
            self.firmware = Some(Box::new(firmware));
            self
        }

        /// Whether every entry created was removed again.
        pub fn is_clean(&self) -> bool {
            self.entries.borrow().is_empty() && *self.mkdirs.borrow() == *self.rmdirs.borrow()
        }

        fn split<'p>(&self, path: &'p str) -> Option<(&'p str, &'p str)> {
            path.rsplit_once('/')
        }

        /// The report the default fake firmware produces for an inblob: the inblob, then
        /// `0xAB` up to 100 bytes, the last byte being the privlevel.
        pub fn report_for(inblob: &[u8], privlevel: u32) -> Vec<u8> {
            let mut r = vec![0xAB; 100];
            r[..inblob.len()].copy_from_slice(inblob);
            r[99] = privlevel as u8;
            r
        }
    }

    impl TsmFs for FakeTsm {
        fn exists(&self, path: &str) -> bool {
            (path == self.root && self.root_exists)
                || self.entries.borrow().contains_key(path)
                || self.files.contains_key(path)
        }

        fn mkdir(&self, path: &str) -> Result<(), Errno> {
            if !self.root_exists || self.split(path).map(|(dir, _)| dir) != Some(&*self.root) {
                return Err(Errno::NOENT);
            }
            if self.provider.is_none() {
                return Err(Errno::NXIO);
            }
            if self.taken_names.iter().any(|p| p == path)
                || self.entries.borrow().contains_key(path)
            {
                return Err(Errno::EXIST);
            }
            self.mkdirs.borrow_mut().push(path.to_owned());
            self.entries
                .borrow_mut()
                .insert(path.to_owned(), Entry::default());
            Ok(())
        }

        fn rmdir(&self, path: &str) -> Result<(), Errno> {
            self.rmdirs.borrow_mut().push(path.to_owned());
            if let Some(e) = self.rmdir_errno {
                return Err(e);
            }
            self.entries
                .borrow_mut()
                .remove(path)
                .map(|_| ())
                .ok_or(Errno::NOENT)
        }

        fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, Errno> {
            if let Some(data) = self.files.get(path) {
                if data.len() > limit {
                    return Err(Errno::FBIG);
                }
                return Ok(data.clone());
            }
            let (dir, attr) = self.split(path).ok_or(Errno::NOENT)?;
            let mut entries = self.entries.borrow_mut();
            let e = entries.get_mut(dir).ok_or(Errno::NOENT)?;
            let data = match attr {
                "provider" => format!("{}\n", self.provider.ok_or(Errno::NXIO)?).into_bytes(),
                "generation" => format!("{}\n", e.write_generation).into_bytes(),
                "outblob" | "auxblob" => {
                    if attr == "auxblob" && self.provider == Some("tdx_guest") {
                        return Err(Errno::NOENT);
                    }
                    if e.inblob.is_empty() {
                        return Err(Errno::INVAL);
                    }
                    if attr == "outblob" {
                        let racing = self.racing_writes.borrow_mut().pop().unwrap_or(0);
                        e.write_generation += racing;
                    }
                    if e.outblob.is_none() || e.read_generation != e.write_generation {
                        if let Some(errno) = self.outblob_errno {
                            return Err(errno);
                        }
                        if e.inblob.len() != INBLOB_LEN {
                            return Err(Errno::INVAL);
                        }
                        let (out, aux) = match &self.firmware {
                            Some(fw) => fw(&e.inblob, e.privlevel)?,
                            None => (
                                Self::report_for(&e.inblob, e.privlevel),
                                self.auxblob.clone(),
                            ),
                        };
                        e.outblob = Some(out);
                        e.auxblob = aux;
                        e.read_generation = e.write_generation;
                    }
                    if attr == "outblob" {
                        e.outblob.clone().unwrap_or_default()
                    } else {
                        e.auxblob.clone()
                    }
                }
                _ => return Err(Errno::NOENT),
            };
            if data.len() > limit {
                return Err(Errno::FBIG);
            }
            Ok(data)
        }

        fn write(&self, path: &str, data: &[u8]) -> Result<(), Errno> {
            let (dir, attr) = self.split(path).ok_or(Errno::NOENT)?;
            let mut entries = self.entries.borrow_mut();
            let e = entries.get_mut(dir).ok_or(Errno::NOENT)?;
            match attr {
                "inblob" => {
                    if data.len() > INBLOB_LEN {
                        return Err(Errno::FBIG);
                    }
                    e.inblob = data.to_vec();
                    e.write_generation += 1;
                }
                "privlevel" if self.provider == Some("sev_guest") => {
                    let text = core::str::from_utf8(data).map_err(|_| Errno::INVAL)?;
                    let v: u32 = text.trim_end().parse().map_err(|_| Errno::INVAL)?;
                    if v < self.privlevel_floor || v > 3 {
                        return Err(Errno::INVAL);
                    }
                    e.privlevel = v;
                    e.write_generation += 1;
                }
                _ => return Err(Errno::NOENT),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::fake::FakeTsm;
    use super::*;
    use std::string::ToString;
    use std::vec;

    fn req(provider: Provider) -> TsmRequest {
        let mut inblob = [0u8; 64];
        inblob[..4].copy_from_slice(b"nonc");
        TsmRequest {
            provider,
            inblob,
            privlevel: None,
            auxblob: false,
        }
    }

    fn client(fake: &FakeTsm) -> TsmClient<&FakeTsm> {
        TsmClient::with_fs(fake, fake.root.clone())
    }

    fn assert_clean(fake: &FakeTsm) {
        assert!(fake.entries.borrow().is_empty(), "entry left behind");
        assert_eq!(*fake.mkdirs.borrow(), *fake.rmdirs.borrow());
        assert!(fake.is_clean());
    }

    #[test]
    fn happy_path_tdx() {
        let fake = FakeTsm::new("tdx_guest");
        let r = client(&fake).generate(&req(Provider::TdxGuest)).unwrap();
        assert_eq!(
            r.outblob,
            FakeTsm::report_for(&req(Provider::TdxGuest).inblob, 0)
        );
        assert_eq!(r.auxblob, None);
        assert_eq!(r.generation, 1);
        assert_clean(&fake);
        assert_eq!(fake.mkdirs.borrow().len(), 1);
    }

    #[test]
    fn snp_with_privlevel_and_auxblob() {
        let mut fake = FakeTsm::new("sev_guest");
        fake.auxblob = b"certs".to_vec();
        let mut r = req(Provider::SevGuest);
        r.privlevel = Some(2);
        r.auxblob = true;
        let out = client(&fake).generate(&r).unwrap();
        assert_eq!(out.generation, 2, "privlevel and inblob are two writes");
        assert_eq!(out.outblob[99], 2);
        assert_eq!(out.auxblob.as_deref(), Some(&b"certs"[..]));
        assert_clean(&fake);

        // empty auxblob = no certificates
        fake.auxblob.clear();
        let out = client(&fake).generate(&r).unwrap();
        assert_eq!(out.auxblob, None);
    }

    #[test]
    fn privlevel_below_floor_is_rejected_and_cleaned_up() {
        let mut fake = FakeTsm::new("sev_guest");
        fake.privlevel_floor = 1;
        let mut r = req(Provider::SevGuest);
        r.privlevel = Some(0);
        assert_eq!(
            client(&fake).generate(&r),
            Err(TsmError::PrivlevelRejected { privlevel: 0 })
        );
        assert_clean(&fake);
    }

    #[test]
    fn missing_root() {
        let mut fake = FakeTsm::new("tdx_guest");
        fake.root_exists = false;
        let err = client(&fake)
            .generate(&req(Provider::TdxGuest))
            .unwrap_err();
        assert_eq!(
            err,
            TsmError::NoConfigfsTsm {
                root: fake.root.clone()
            }
        );
        assert!(err.to_string().contains("mount -t configfs"));
    }

    #[test]
    fn no_provider_enxio() {
        let mut fake = FakeTsm::new("tdx_guest");
        fake.provider = None;
        let err = client(&fake)
            .generate(&req(Provider::TdxGuest))
            .unwrap_err();
        assert!(matches!(err, TsmError::NoProvider { .. }), "{err:?}");
        assert!(err.to_string().contains("ENXIO"));
        assert_clean(&fake);
    }

    #[test]
    fn provider_mismatch() {
        let fake = FakeTsm::new("sev_guest");
        let err = client(&fake)
            .generate(&req(Provider::TdxGuest))
            .unwrap_err();
        assert_eq!(
            err,
            TsmError::ProviderMismatch {
                expected: Provider::TdxGuest,
                found: "sev_guest".into()
            }
        );
        assert_clean(&fake);
    }

    #[test]
    fn einval_on_outblob() {
        let mut fake = FakeTsm::new("sev_guest");
        fake.outblob_errno = Some(Errno::INVAL);
        let err = client(&fake)
            .generate(&req(Provider::SevGuest))
            .unwrap_err();
        assert_eq!(
            err,
            TsmError::InblobRejected {
                provider: Provider::SevGuest
            }
        );
        assert_clean(&fake);
    }

    #[test]
    fn other_provider_failures_keep_their_errno() {
        let mut fake = FakeTsm::new("tdx_guest");
        fake.outblob_errno = Some(Errno::IO);
        let err = client(&fake)
            .generate(&req(Provider::TdxGuest))
            .unwrap_err();
        assert_eq!(
            err,
            TsmError::ReportFailed {
                provider: Provider::TdxGuest,
                attr: "outblob",
                errno: Errno::IO
            }
        );
        assert!(err.to_string().contains("quote generation"));
        assert_clean(&fake);
    }

    #[test]
    fn generation_race_is_retried_then_succeeds() {
        let fake = FakeTsm::new("tdx_guest");
        // first attempt: someone writes once more before our outblob read; second attempt clean
        *fake.racing_writes.borrow_mut() = vec![0, 1];
        let r = client(&fake).generate(&req(Provider::TdxGuest)).unwrap();
        assert_eq!(r.generation, 1);
        assert_eq!(fake.mkdirs.borrow().len(), 2, "a fresh entry per attempt");
        assert_clean(&fake);
    }

    #[test]
    fn generation_race_exhausted() {
        let fake = FakeTsm::new("tdx_guest");
        *fake.racing_writes.borrow_mut() = vec![1, 1, 1, 1];
        let err = client(&fake)
            .attempts(3)
            .generate(&req(Provider::TdxGuest))
            .unwrap_err();
        assert_eq!(
            err,
            TsmError::GenerationRace {
                attempts: 3,
                expected: 1,
                found: 2
            }
        );
        assert_eq!(fake.mkdirs.borrow().len(), 3);
        assert_clean(&fake);
    }

    #[test]
    fn name_collision_uses_next_name() {
        let mut fake = FakeTsm::new("tdx_guest");
        let pid = rustix::process::getpid().as_raw_nonzero();
        // Occupy the next few names this process would pick.
        let next = ENTRY_COUNTER.load(Ordering::Relaxed);
        fake.taken_names = (next..next + 64)
            .map(|n| sys::join(&fake.root, &format!("sealgate-{pid}-{n}")))
            .step_by(2)
            .collect();
        client(&fake).generate(&req(Provider::TdxGuest)).unwrap();
        assert_clean(&fake);
    }

    #[test]
    fn rmdir_failure_after_success_is_reported() {
        let mut fake = FakeTsm::new("tdx_guest");
        fake.rmdir_errno = Some(Errno::BUSY);
        let err = client(&fake)
            .generate(&req(Provider::TdxGuest))
            .unwrap_err();
        assert!(
            matches!(
                err,
                TsmError::Cleanup {
                    errno: Errno::BUSY,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn provider_probe() {
        let fake = FakeTsm::new("sev_guest");
        assert_eq!(client(&fake).provider().unwrap(), "sev_guest");
        assert_clean(&fake);
    }

    #[test]
    fn kernel_fs_on_a_plain_directory() {
        // KernelFs itself: bounded reads and single writes on ordinary files.
        let dir = std::env::temp_dir().join(format!("fwglue-tsm-{}", std::process::id()));
        let dir = dir.to_str().unwrap().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        KernelFs.mkdir(&dir).unwrap();
        assert!(KernelFs.exists(&dir));
        let f = sys::join(&dir, "blob");
        std::fs::write(&f, vec![7u8; 10_000]).unwrap();
        assert_eq!(KernelFs.read(&f, 10_000).unwrap().len(), 10_000);
        assert_eq!(KernelFs.read(&f, 9_999), Err(Errno::FBIG));
        let g = sys::join(&dir, "attr");
        std::fs::write(&g, b"").unwrap();
        KernelFs.write(&g, b"abc").unwrap();
        assert_eq!(std::fs::read(&g).unwrap(), b"abc");
        assert_eq!(
            KernelFs.write(&sys::join(&dir, "missing"), b"x"),
            Err(Errno::NOENT)
        );
        // A directory where an attribute belongs is refused, with a message.
        assert_eq!(KernelFs.read(&dir, 10), Err(NOT_A_FILE));
        let err = io_error("read", &dir, NOT_A_FILE);
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_file(&f).unwrap();
        std::fs::remove_file(&g).unwrap();
        KernelFs.rmdir(&dir).unwrap();
        assert!(!KernelFs.exists(&dir));
    }

    #[test]
    fn transient_errors() {
        let race = TsmError::GenerationRace {
            attempts: 3,
            expected: 1,
            found: 2,
        };
        assert!(race.is_transient());
        let failed = |provider, errno| TsmError::ReportFailed {
            provider,
            attr: "outblob",
            errno,
        };
        assert!(failed(Provider::TdxGuest, Errno::IO).is_transient());
        assert!(failed(Provider::SevGuest, Errno::TIMEDOUT).is_transient());
        assert!(!failed(Provider::SevGuest, Errno::IO).is_transient());
        assert!(!failed(Provider::SevGuest, Errno::NOTTY).is_transient());
        assert!(
            !TsmError::NoProvider {
                root: "/x".to_string()
            }
            .is_transient()
        );
    }

    #[test]
    fn fake_firmware_and_files() {
        let mut fake = FakeTsm::new("sev_guest")
            .with_firmware(|inblob, vmpl| Ok((inblob.to_vec(), vec![vmpl as u8])));
        fake.files.insert("/sys/x".to_string(), b"abc".to_vec());
        assert!(fake.exists("/sys/x"));
        assert_eq!(fake.read("/sys/x", 3).unwrap(), b"abc");
        assert_eq!(fake.read("/sys/x", 2), Err(Errno::FBIG));
        let mut r = req(Provider::SevGuest);
        r.auxblob = true;
        r.privlevel = Some(1);
        let out = client(&fake).generate(&r).unwrap();
        assert_eq!(out.outblob, r.inblob);
        assert_eq!(out.auxblob.as_deref(), Some(&[1u8][..]));
        assert_clean(&fake);
    }
}
