//! # tsm-fuse: configfs-tsm report semantics on a development host
//!
//! Test support for sealgate (work in progress): the configfs-tsm report model and the
//! FUSE wire format it will be served with.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(dead_code)] // wired up to FUSE in the next commit

mod proto;
mod tsm;

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

    /// Generates a report for the entry's current configuration (`report_new()`).
    ///
    /// `request.inblob` is never empty (an empty inblob fails with `EINVAL` before the
    /// provider is asked). Checking its length is the provider's business: the kernel's
    /// `sev_guest` and `tdx_guest` reject anything but 64 bytes with `EINVAL`. An error is
    /// returned to the reader of `outblob`/`auxblob`/`manifestblob` as that errno.
    fn report(&self, request: &ReportRequest<'_>) -> Result<Report, Errno>;
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
