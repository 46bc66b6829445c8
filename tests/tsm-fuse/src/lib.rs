//! # tsm-fuse: configfs-tsm report semantics on a development host
//!
//! Test support for sealgate. A real confidential guest gets its hardware attestation
//! report through configfs-tsm (`/sys/kernel/config/tsm/report/`); a development host has
//! neither a TEE nor that interface. This crate mounts a small FUSE file system — speaking
//! the FUSE protocol directly over `/dev/fuse`, without libfuse and without `unsafe` —
//! that behaves like configfs-tsm, with the "firmware" behind it supplied from Rust as a
//! [`Provider`]. Code under test keeps using plain `mkdir`/`open`/`read`/`write`/`rmdir`.
//! Nothing here is meant to ship in a guest.
//!
//! ## Usage
//!
//! ```no_run
//! use std::sync::Arc;
//! use tsm_fuse::{Errno, Provider, Report, ReportRequest, TsmMount};
//!
//! struct FakeSnp;
//! impl Provider for FakeSnp {
//!     fn name(&self) -> &str { "sev_guest" }
//!     fn has_auxblob(&self) -> bool { true }
//!     fn has_privlevel(&self) -> bool { true }
//!     fn report(&self, req: &ReportRequest<'_>) -> Result<Report, Errno> {
//!         if req.inblob.len() != 64 { return Err(Errno::INVAL); }
//!         Ok(Report::new(req.inblob.to_vec()).with_auxblob(vec![0; 24]))
//!     }
//! }
//!
//! // Needs root and /dev/fuse; the error says which is missing.
//! let tsm = TsmMount::mount_temp(Some(Arc::new(FakeSnp))).expect("mount configfs-tsm emulation");
//! let entry = tsm.report_dir().join("e0");
//! std::fs::create_dir(&entry)?;
//! assert_eq!(std::fs::read_to_string(entry.join("provider"))?, "sev_guest\n");
//! std::fs::write(entry.join("inblob"), [7u8; 64])?;
//! let report = std::fs::read(entry.join("outblob"))?;
//! assert_eq!(std::fs::read_to_string(entry.join("generation"))?, "1\n");
//! std::fs::remove_dir(&entry)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Point the code under test at [`TsmMount::path`] where it would use
//! `/sys/kernel/config/tsm`. Dropping the [`TsmMount`] unmounts, also during a panic.
//!
//! ## What is emulated (as Linux `drivers/virt/coco/guest/report.c` + `fs/configfs`)
//!
//! * Tree: the mount root is `tsm/`, holding the default group `report/`. `mkdir report/<n>`
//!   creates an entry whose attribute files are those the registered provider makes visible
//!   (decided once, at `mkdir`): always `generation`, `provider`, `inblob`, `outblob`;
//!   `privlevel` + `privlevel_floor` if [`Provider::has_privlevel`]; `auxblob` if
//!   [`Provider::has_auxblob`]; `service_provider`, `service_guid`,
//!   `service_manifest_version`, `manifestblob` if [`Provider::has_service`] (SVSM).
//! * Modes as configfs shows them: read-only attributes `0444`, write-only `0200`,
//!   directories `0755`; text attributes report size 4096, bin attributes size 0.
//! * `mkdir` without a provider: `ENXIO`; existing name: `EEXIST`; `mkdir` anywhere else
//!   (mount root, inside an entry): `EPERM`. `rmdir report/<n>` removes the entry and its
//!   attribute files; `rmdir report`: `EPERM`. `unlink` of an attribute, `mknod`, `symlink`,
//!   `link`, `rename`: `EPERM`; creating a file (`open(O_CREAT)`): `EACCES`.
//! * Opening checks the attribute's own mode like configfs does, even for root: reading a
//!   write-only attribute or writing a read-only one (or `O_RDWR`) is `EACCES`.
//! * Bin attributes (`inblob`): writes are buffered per open file and grow up to 64 bytes —
//!   a write past that is `EFBIG` at `write(2)` time — and the buffer is committed when the
//!   file is released (last close). As in configfs, a failed write still marks the file
//!   written, so its (possibly empty) buffer is committed, and the commit's own result is
//!   ignored. Each commit advances `write_generation`.
//! * Text attributes: each `write(2)` is one store of at most 4095 bytes. `privlevel` is
//!   parsed with `kstrtouint(…, 0)` semantics (`+`, `0x`/octal prefixes, one trailing `\n`;
//!   `EINVAL`, `ERANGE` on overflow), `ENXIO` without a provider, range floor..=3 else
//!   `EINVAL`, then advances `write_generation`. `service_provider` (one trailing `\n`
//!   stripped), `service_guid` (`guid_parse`; the generation advances even when the GUID is
//!   malformed, as in the kernel) and `service_manifest_version` likewise.
//! * Every advance refuses to wrap onto `read_generation` (`EBUSY`), as
//!   `try_advance_write_generation()`.
//! * Reading `outblob`/`auxblob`/`manifestblob`: `EINVAL` while `inblob` is empty; the
//!   cached report if `read_generation == write_generation`; otherwise `ENXIO` without a
//!   provider, else the cache is dropped and the provider called once, its errno returned
//!   as the read error (the next read retries) or its report cached with
//!   `read_generation = write_generation`, so the three blobs always belong to one
//!   generation. A blob over 32 KiB reads as `EFBIG`; an absent/empty one reads as empty.
//!   Each open file snapshots its content at its first read (configfs fills its buffer once).
//! * `generation` reads `"{write_generation}\n"`, `provider` `"{name}\n"`, `privlevel_floor`
//!   `"{floor}\n"` (the latter two `ENXIO` without a provider).
//! * A file left open across `rmdir` of its entry reads/writes `ENOENT`, and its pending
//!   `inblob` commit is dropped (configfs `frag_dead`).
//! * TDX's sysfs measurement files (Linux 6.16+ `tsm-mr`, normally
//!   `/sys/devices/virtual/misc/tdx_guest/measurements`), only for a provider that has them
//!   ([`Provider::has_measurements`], e.g. `sim::TdxProvider::with_measurements`): a
//!   `measurements/` directory beside `report/` (point a `<sysfs>/.../measurements` symlink
//!   at it) with `mrconfigid` (0444) and `rtmr0:sha384`..`rtmr3:sha384` (0644), 48 bytes
//!   each; a write to an RTMR must be 48 bytes at offset 0 (`EINVAL` otherwise) and extends
//!   it (`SHA384(old || data)`), so the next quote carries it.
//! * Registration: [`TsmMount::set_provider`] follows `tsm_report_register()` (`EBUSY` with
//!   a provider registered or entries present) and `tsm_report_unregister()`.
//!
//! ## Where it differs from the kernel, and why that is acceptable
//!
//! * It is a FUSE mount (`/proc/mounts` type `fuse`), not configfs, at a directory of the
//!   test's choosing: sealgate must take the configfs root as a parameter, which it needs
//!   anyway to be testable.
//! * The commit of `inblob` happens when the kernel's FUSE `RELEASE` arrives. FUSE sends it
//!   asynchronously, but it is queued before `close(2)` returns and this server handles
//!   requests in order on one thread, so a read after `close` sees the commit — the same
//!   ordering a configfs client observes. A `dup`ed descriptor keeps the file open, as in
//!   configfs. The Rust-side calls ([`TsmMount::bump_generation`], [`TsmMount::stats`],
//!   [`TsmMount::set_provider`]) bypass the file system, so they first make one round trip
//!   through it to let the calling thread's queued requests (such as that `RELEASE`) land.
//! * `lseek` on bin attributes succeeds (configfs: `ESPIPE`); `pread`/`pwrite` behave the
//!   same. Nothing in the configfs-tsm procedure seeks.
//! * `chmod`/`chown`/`utimes`/`truncate` are accepted but not remembered (configfs stores
//!   them); the content of attributes is not affected in either. Timestamps are the mount
//!   or entry creation time. Inode numbers differ. `statfs` reports an empty FUSE file
//!   system. Extended attributes are unsupported.
//! * Requests are served one at a time, and the provider runs under the model's lock — as
//!   the kernel's report generation runs under the `tsm_rwsem` write lock — so a slow
//!   provider delays every other request of the mount, not only that entry's.
//! * A zero-length `write(2)` never reaches a FUSE server, so configfs' `EFAULT` for it is
//!   not reproduced. Text writes larger than FUSE's `max_write` (16 KiB) are split into
//!   several stores (configfs would store the first 4095 bytes once).
//! * Only one mount namespace and the calling user (root) are considered: the mount uses
//!   `default_permissions`, without `allow_other`.
//!
//! ## Providers
//!
//! [`Provider`] is the seam for simulated firmware (SNP `sev_guest`, TDX `tdx_guest`, …).
//! With feature `sim`, `sim::SnpProvider` and `sim::TdxProvider` are providers backed by
//! `firmware-glue`'s simulators: real report/quote layouts signed by deterministic test keys. `report` receives the entry's whole
//! configuration ([`ReportRequest`]) and returns the blobs or an errno, exactly what a
//! kernel provider's `report_new()` does.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod mount;
mod proto;
mod server;
#[cfg(feature = "sim")]
pub mod sim;
mod tsm;

pub use mount::TsmMount;
/// An errno value, as returned by providers and seen by clients (`rustix::io::Errno`).
pub use rustix::io::Errno;

/// The TSM provider behind the emulated configfs-tsm: what a kernel `struct
/// tsm_report_ops` is, with the simulated firmware behind it.
///
/// Called on the server thread; it may block (the caller's read waits), and a panic is
/// turned into an `EIO` read error.
pub trait Provider: Send + Sync + 'static {
    /// Provider name as the `provider` attribute shows it, without the trailing newline:
    /// `"sev_guest"`, `"tdx_guest"`, `"arm_cca_guest"` (the kernel's `KBUILD_MODNAME`).
    fn name(&self) -> &str;

    /// Whether entries get an `auxblob` attribute (SNP: the certificate table).
    fn has_auxblob(&self) -> bool {
        false
    }

    /// Whether entries get `privlevel` and `privlevel_floor` (SNP: the VMPL).
    fn has_privlevel(&self) -> bool {
        false
    }

    /// Lowest privilege level `privlevel` accepts (SNP: `vmpck_id`).
    fn privlevel_floor(&self) -> u32 {
        0
    }

    /// Whether entries get the SVSM attributes `service_provider`, `service_guid`,
    /// `service_manifest_version` and `manifestblob`.
    fn has_service(&self) -> bool {
        false
    }

    /// Whether the mount root also holds `measurements/`: TDX's sysfs measurement files
    /// (Linux 6.16+, `CONFIG_TSM_MEASUREMENTS`: `/sys/devices/virtual/misc/tdx_guest/
    /// measurements`), `mrconfigid` and `rtmr0:sha384`..`rtmr3:sha384`; see [`Register`].
    fn has_measurements(&self) -> bool {
        false
    }

    /// The 48-byte value of `register` (a read of its file).
    fn read_register(&self, register: Register) -> Result<[u8; 48], Errno> {
        let _ = register;
        Err(Errno::NODEV)
    }

    /// Extends RTMR `index` by `digest` (a 48-byte write at offset 0 of
    /// `rtmr<index>:sha384`; the file refuses any other write with `EINVAL` first).
    fn extend_rtmr(&self, index: u8, digest: &[u8; 48]) -> Result<(), Errno> {
        let _ = (index, digest);
        Err(Errno::NODEV)
    }

    /// Generates a report for the entry's current configuration (`report_new()`).
    ///
    /// `request.inblob` is never empty (an empty inblob fails with `EINVAL` before the
    /// provider is asked). Checking its length is the provider's business: the kernel's
    /// `sev_guest` and `tdx_guest` reject anything but 64 bytes with `EINVAL`. An error is
    /// returned to the reader of `outblob`/`auxblob`/`manifestblob` as that errno.
    fn report(&self, request: &ReportRequest<'_>) -> Result<Report, Errno>;
}

/// A file of the emulated TDX `measurements/` directory ([`Provider::has_measurements`]), as
/// the kernel's `tsm-mr` shows them: `mrconfigid` (0444) and `rtmr<N>:sha384` (0644), each
/// 48 bytes. Reads return the register; a write to an RTMR must be 48 bytes at offset 0
/// (anything else is `EINVAL`, as the kernel ABI says) and extends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// `mrconfigid`.
    MrConfigId,
    /// `rtmr<N>:sha384`, N in 0..=3.
    Rtmr(u8),
}

/// The configuration of one report entry at the time a report is requested
/// (the kernel's `struct tsm_report_desc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportRequest<'a> {
    /// The committed `inblob` (1..=64 bytes).
    pub inblob: &'a [u8],
    /// Last value stored to `privlevel` (0 if never written).
    pub privlevel: u32,
    /// Last value stored to `service_provider` (without one trailing `\n`), if any.
    pub service_provider: Option<&'a [u8]>,
    /// Last `service_guid` in `guid_t` byte order (first three fields little-endian);
    /// all zero if never written or if the last write was malformed.
    pub service_guid: [u8; 16],
    /// Last value stored to `service_manifest_version` (0 if never written).
    pub service_manifest_version: u32,
    /// The entry's `write_generation` this report is made for.
    pub generation: u64,
}

impl<'a> ReportRequest<'a> {
    /// A request for `inblob` with every other field at its default; for unit-testing
    /// providers without a mount.
    pub fn new(inblob: &'a [u8]) -> Self {
        Self {
            inblob,
            privlevel: 0,
            service_provider: None,
            service_guid: [0; 16],
            service_manifest_version: 0,
            generation: 1,
        }
    }
}

/// The blobs a provider produces for one generation of an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Read through `outblob` (SNP: the 1184-byte report; TDX: the quote).
    pub outblob: Vec<u8>,
    /// Read through `auxblob` (SNP: GHCB certificate table); `None` reads as empty.
    pub auxblob: Option<Vec<u8>>,
    /// Read through `manifestblob` (SVSM service manifest); `None` reads as empty.
    pub manifestblob: Option<Vec<u8>>,
}

impl Report {
    /// A report with only an `outblob`.
    pub fn new(outblob: Vec<u8>) -> Self {
        Self {
            outblob,
            ..Self::default()
        }
    }

    /// Sets the `auxblob`.
    pub fn with_auxblob(mut self, auxblob: Vec<u8>) -> Self {
        self.auxblob = Some(auxblob);
        self
    }

    /// Sets the `manifestblob`.
    pub fn with_manifestblob(mut self, manifestblob: Vec<u8>) -> Self {
        self.manifestblob = Some(manifestblob);
        self
    }
}

/// Counters of a mount, for assertions in tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful `mkdir report/<name>`.
    pub entries_created: u64,
    /// Successful `rmdir report/<name>`.
    pub entries_removed: u64,
    /// Entries existing now.
    pub live_entries: u64,
    /// Committed `inblob` writes (each advanced a generation).
    pub inblob_commits: u64,
    /// Successful provider calls (reports generated and cached).
    pub reports_generated: u64,
    /// Provider calls that returned an error.
    pub report_failures: u64,
}
