//! The TDX event log on the platform: the firmware's CCEL, the attestation-agent event log
//! (AAEL) under `/run`, and RTMR extends through the kernel's sysfs ABI (Linux 6.16+,
//! `CONFIG_TSM_MEASUREMENTS`), with guest-components' write-ahead ordering. The byte formats
//! are `sealgate_core::eventlog`'s.
//!
//! - [`cc_eventlog`]: what the TDX evidence carries as `cc_eventlog` (CCEL cut at its end,
//!   then the AAEL, then the end marker; `None` when neither file exists).
//! - [`extend_runtime_measurement`]: the AA API's ExtendRuntimeMeasurement: NOT_ENABLED
//!   when the event log is off, NOT_SUPPORTED off TDX or without the sysfs RTMR files;
//!   else read the RTMR, write and fsync the WAL, extend, write the record at its offset
//!   in the AAEL and fsync, delete the WAL.
//! - [`recover`]: at start, finishes an extend a crash interrupted (a leftover WAL).
//!
//! Paths come from [`EventLogPaths`]: the sysfs root (`sysfs`, default `/sys`) and the
//! event-log directory (`eventlog_dir`, default `/run/attestation-agent`), both settings
//! that only measured sources may set (README, trust table).

use crate::prelude::*;
use core::fmt;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use sealgate_core::config::Config;
use sealgate_core::eventlog::{
    self as el, AaelEvent, EventLogError, MAX_AAEL, MAX_CCEL, MAX_EVENT_TEXT, SHA384_LEN, Wal,
};
use sealgate_core::rcar::Tee;
use sealgate_linux::fs::{self, ReadError};
use sealgate_linux::{info, warn};

/// The default event-log directory (guest-components' `/run/attestation-agent`).
pub const DEFAULT_EVENTLOG_DIR: &str = "/run/attestation-agent";
/// The default sysfs root.
pub const DEFAULT_SYSFS: &str = "/sys";
/// The AAEL file in the event-log directory.
pub const AAEL_FILE: &str = "eventlog";
/// The write-ahead record in the event-log directory.
pub const WAL_FILE: &str = ".wal_event_entry";
/// The CCEL log area under the sysfs root.
pub const CCEL_UNDER_SYSFS: &str = "firmware/acpi/tables/data/CCEL";
/// The TDX measurement files under the sysfs root.
pub const MEASUREMENTS_UNDER_SYSFS: &str = "devices/virtual/misc/tdx_guest/measurements";

/// Where the event-log files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogPaths {
    /// The sysfs root (`/sys`).
    pub sysfs: String,
    /// The event-log directory (`/run/attestation-agent`).
    pub dir: String,
}

impl Default for EventLogPaths {
    fn default() -> Self {
        EventLogPaths {
            sysfs: DEFAULT_SYSFS.into(),
            dir: DEFAULT_EVENTLOG_DIR.into(),
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

impl EventLogPaths {
    /// The paths a resolved configuration names (`sysfs`, `eventlog_dir`).
    pub fn from_config(cfg: &Config) -> Self {
        EventLogPaths {
            sysfs: cfg.sysfs.clone(),
            dir: cfg.eventlog_dir.clone(),
        }
    }

    /// `<sysfs>/firmware/acpi/tables/data/CCEL`.
    pub fn ccel(&self) -> String {
        join(&self.sysfs, CCEL_UNDER_SYSFS)
    }

    /// `<sysfs>/devices/virtual/misc/tdx_guest/measurements`.
    pub fn measurements(&self) -> String {
        join(&self.sysfs, MEASUREMENTS_UNDER_SYSFS)
    }

    /// `<measurements>/rtmr<N>:sha384`.
    pub fn rtmr(&self, index: u32) -> String {
        join(&self.measurements(), &format!("rtmr{index}:sha384"))
    }

    /// `<dir>/eventlog`.
    pub fn aael(&self) -> String {
        join(&self.dir, AAEL_FILE)
    }

    /// `<dir>/.wal_event_entry`.
    pub fn wal(&self) -> String {
        join(&self.dir, WAL_FILE)
    }
}

/// The AA API's answer to ExtendRuntimeMeasurement (upstream `RuntimeMeasurementResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measurement {
    /// Extended and recorded (`OK`).
    Ok,
    /// This TEE has no runtime measurement register sealgate can extend (SNP, sample, TDX
    /// without the sysfs RTMR files) (`NOT_SUPPORTED`).
    NotSupported,
    /// The event log is not enabled (`NOT_ENABLED`).
    NotEnabled,
}

/// Why the event log could not be read or an extend not done. Messages name files and
/// errnos, never event content.
#[derive(Debug)]
pub enum EventLogFailure {
    /// A format error (see [`EventLogError`]).
    Format {
        /// Which file or input.
        what: String,
        /// Why.
        error: EventLogError,
    },
    /// A file could not be read.
    Read {
        /// The file.
        path: String,
        /// Why.
        error: ReadError,
    },
    /// A file could not be written, synced, created or removed.
    Write {
        /// The file.
        path: String,
        /// What was done.
        op: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// An RTMR file did not hold 48 bytes.
    RtmrLength {
        /// The file.
        path: String,
        /// Its length.
        got: usize,
    },
    /// A leftover WAL whose expected RTMR no register can reach with its event: the
    /// registers moved on without the record (or the WAL is not ours).
    WalMismatch {
        /// The WAL file.
        path: String,
    },
    /// After the extend the RTMR does not hold the value the WAL expects (the kernel or
    /// another writer extended it concurrently).
    ExtendMismatch {
        /// The RTMR file.
        path: String,
    },
}

impl fmt::Display for EventLogFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventLogFailure::Format { what, error } => write!(f, "{what}: {error}"),
            EventLogFailure::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            EventLogFailure::Write { path, op, errno } => {
                write!(f, "cannot {op} {path}: {}", sealgate_linux::os(errno))
            }
            EventLogFailure::RtmrLength { path, got } => {
                write!(f, "{path} holds {got} bytes, expected 48")
            }
            EventLogFailure::WalMismatch { path } => write!(
                f,
                "{path}: no RTMR holds, or reaches with its event, the value this write-ahead record expects; \
                 the event log and the RTMRs disagree (left in place for inspection)"
            ),
            EventLogFailure::ExtendMismatch { path } => write!(
                f,
                "{path} does not hold the expected value after the extend (another writer?)"
            ),
        }
    }
}

impl core::error::Error for EventLogFailure {}

fn read_optional(path: &str, limit: usize) -> Result<Option<Vec<u8>>, EventLogFailure> {
    match fs::read_file(path, limit) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(error) => Err(EventLogFailure::Read {
            path: path.into(),
            error,
        }),
    }
}

/// The `cc_eventlog` bytes (before base64) for TDX evidence, as guest-components builds
/// them: the CCEL log area (if the firmware published one) cut at its end, the AAEL (if
/// the file exists; upstream's header first when there is no CCEL), then 8×0xFF. `None`
/// when neither file exists (the evidence then says `null`). A malformed CCEL fails, as
/// upstream's GetEvidence does.
pub fn cc_eventlog(paths: &EventLogPaths) -> Result<Option<Vec<u8>>, EventLogFailure> {
    let ccel_path = paths.ccel();
    let ccel = read_optional(&ccel_path, MAX_CCEL)?;
    let aael_path = paths.aael();
    let aael = read_optional(&aael_path, MAX_AAEL)?;
    el::assemble(ccel.as_deref(), aael.as_deref()).map_err(|error| EventLogFailure::Format {
        what: if aael.is_some() && ccel.is_none() {
            aael_path
        } else {
            ccel_path
        },
        error,
    })
}

/// Reading and extending RTMRs: the kernel's sysfs files ([`SysfsRtmrs`]), or a test's
/// in-memory registers.
pub trait Rtmrs {
    /// Whether the registers can be read and extended here.
    fn available(&self) -> bool;
    /// RTMR `index` (0..=3).
    fn read(&mut self, index: u32) -> Result<[u8; SHA384_LEN], EventLogFailure>;
    /// Extends RTMR `index` by `digest` (`SHA384(old || digest)`).
    fn extend(&mut self, index: u32, digest: &[u8; SHA384_LEN]) -> Result<(), EventLogFailure>;
}

/// The kernel's RTMR files under `<sysfs>/devices/virtual/misc/tdx_guest/measurements`.
pub struct SysfsRtmrs<'a> {
    paths: &'a EventLogPaths,
}

impl<'a> SysfsRtmrs<'a> {
    /// The files under `paths.sysfs`.
    pub fn new(paths: &'a EventLogPaths) -> Self {
        SysfsRtmrs { paths }
    }
}

impl Rtmrs for SysfsRtmrs<'_> {
    fn available(&self) -> bool {
        fs::exists(&self.paths.rtmr(3))
    }
    fn read(&mut self, index: u32) -> Result<[u8; SHA384_LEN], EventLogFailure> {
        read_rtmr(self.paths, index)
    }
    fn extend(&mut self, index: u32, digest: &[u8; SHA384_LEN]) -> Result<(), EventLogFailure> {
        extend_rtmr(self.paths, index, digest)
    }
}

/// Whether this guest can extend RTMRs the way sealgate does: TDX with the kernel's sysfs
/// measurement files (Linux 6.16+). The TDX_CMD_EXTEND_RTMR ioctl exists only as
/// out-of-tree patches, and configfs-tsm has no RTMR interface, so that is all.
pub fn supports_runtime_measurement(tee: Tee, paths: &EventLogPaths) -> bool {
    tee == Tee::Tdx && fs::exists(&paths.rtmr(3))
}

/// Reads RTMR `index` from `<measurements>/rtmr<index>:sha384` (48 raw bytes).
pub fn read_rtmr(paths: &EventLogPaths, index: u32) -> Result<[u8; SHA384_LEN], EventLogFailure> {
    let path = paths.rtmr(index);
    let raw = fs::read_file(&path, SHA384_LEN).map_err(|error| EventLogFailure::Read {
        path: path.clone(),
        error,
    })?;
    <[u8; SHA384_LEN]>::try_from(raw.as_slice()).map_err(|_| EventLogFailure::RtmrLength {
        path,
        got: raw.len(),
    })
}

/// Extends RTMR `index` by `digest`: one 48-byte write at offset 0 of
/// `<measurements>/rtmr<index>:sha384` (the kernel ABI: a partial write is EINVAL).
pub fn extend_rtmr(
    paths: &EventLogPaths,
    index: u32,
    digest: &[u8; SHA384_LEN],
) -> Result<(), EventLogFailure> {
    let path = paths.rtmr(index);
    let fail = |op, errno| EventLogFailure::Write {
        path: path.clone(),
        op,
        errno,
    };
    let fd = fs::retry(|| {
        rustix::fs::open(
            path.as_str(),
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
    .map_err(|e| fail("open", e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| fail("stat", e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(fail("extend (not a regular sysfs file)", Errno::MEDIUMTYPE));
    }
    let n = fs::retry(|| rustix::io::pwrite(&fd, digest, 0)).map_err(|e| fail("extend", e))?;
    if n != SHA384_LEN {
        return Err(fail("extend (short write)", Errno::IO));
    }
    Ok(())
}

fn create_dir_all(dir: &str) -> Result<(), EventLogFailure> {
    let mut path = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        match rustix::fs::mkdir(path.as_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => {
                return Err(EventLogFailure::Write {
                    path,
                    op: "create directory",
                    errno,
                });
            }
        }
    }
    Ok(())
}

/// Writes `data` at `offset` of `path` (created 0600 if missing; never through a symlink),
/// optionally truncating after it, then fsyncs.
fn write_at(path: &str, data: &[u8], offset: u64, truncate: bool) -> Result<(), EventLogFailure> {
    let fail = |op, errno| EventLogFailure::Write {
        path: path.into(),
        op,
        errno,
    };
    let fd = fs::retry(|| {
        rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    })
    .map_err(|e| fail("open", e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| fail("stat", e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(fail("write (not a regular file)", Errno::MEDIUMTYPE));
    }
    let mut done = 0;
    while done < data.len() {
        let n = fs::retry(|| rustix::io::pwrite(&fd, &data[done..], offset + done as u64))
            .map_err(|e| fail("write", e))?;
        if n == 0 {
            return Err(fail("write", Errno::IO));
        }
        done += n;
    }
    if truncate {
        rustix::fs::ftruncate(&fd, offset + data.len() as u64).map_err(|e| fail("truncate", e))?;
    }
    rustix::fs::fsync(&fd).map_err(|e| fail("fsync", e))
}

fn file_len(path: &str) -> Result<u64, EventLogFailure> {
    match rustix::fs::lstat(path) {
        Ok(st) => Ok(st.st_size as u64),
        Err(Errno::NOENT) => Ok(0),
        Err(errno) => Err(EventLogFailure::Write {
            path: path.into(),
            op: "stat",
            errno,
        }),
    }
}

fn remove(path: &str) -> Result<(), EventLogFailure> {
    match rustix::fs::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(errno) => Err(EventLogFailure::Write {
            path: path.into(),
            op: "remove",
            errno,
        }),
    }
}

/// ExtendRuntimeMeasurement, as the attestation agent answers it.
///
/// - `enabled == false` (`[eventlog_config] enable_eventlog`, upstream's default off):
///   [`Measurement::NotEnabled`];
/// - not TDX, or no sysfs RTMR files: [`Measurement::NotSupported`] (upstream's intended
///   answer on SNP; its code panics there);
/// - else the event `"<domain> <operation> <content>"` (no line feed in `content`) goes to
///   the register of PCR `register_index` (default 17: log MR index 4, RTMR3): read the
///   RTMR, write and fsync the WAL, extend, write the record at its offset in the AAEL and
///   fsync, delete the WAL. The record's MR index is the extended register's (upstream
///   records its configured PCR's even when `register_index` names another register).
pub fn extend_runtime_measurement(
    tee: Tee,
    paths: &EventLogPaths,
    enabled: bool,
    domain: &str,
    operation: &str,
    content: &str,
    register_index: Option<u64>,
) -> Result<Measurement, EventLogFailure> {
    extend_runtime_measurement_with(
        &mut SysfsRtmrs::new(paths),
        tee,
        paths,
        enabled,
        domain,
        operation,
        content,
        register_index,
    )
}

/// [`extend_runtime_measurement`] with the registers behind `rtmrs`.
#[allow(clippy::too_many_arguments)]
pub fn extend_runtime_measurement_with(
    rtmrs: &mut dyn Rtmrs,
    tee: Tee,
    paths: &EventLogPaths,
    enabled: bool,
    domain: &str,
    operation: &str,
    content: &str,
    register_index: Option<u64>,
) -> Result<Measurement, EventLogFailure> {
    if !enabled {
        return Ok(Measurement::NotEnabled);
    }
    if tee != Tee::Tdx || !rtmrs.available() {
        return Ok(Measurement::NotSupported);
    }
    let mr_index = el::pcr_to_mr(register_index.unwrap_or(el::DEFAULT_AAEL_PCR));
    let event = AaelEvent::new(domain, operation, content, mr_index).map_err(|error| {
        EventLogFailure::Format {
            what: "the event".into(),
            error,
        }
    })?;
    let rtmr = mr_index - 1;
    create_dir_all(&paths.dir)?;
    let aael = paths.aael();
    let wal_path = paths.wal();
    let current = rtmrs.read(rtmr)?;
    let digest = event.digest();
    let wal = Wal {
        offset: file_len(&aael)?,
        expected: el::extend(&current, &digest),
        text: event.text().into(),
    };
    write_at(&wal_path, &wal.encode(), 0, true)?;
    rtmrs.extend(rtmr, &digest)?;
    let after = rtmrs.read(rtmr)?;
    if after != wal.expected {
        return Err(EventLogFailure::ExtendMismatch {
            path: paths.rtmr(rtmr),
        });
    }
    write_at(&aael, &event.record(), wal.offset, true)?;
    remove(&wal_path)?;
    info!(
        "event log: extended RTMR{rtmr} and recorded the event (MR index {mr_index}, {} bytes of text)",
        event.text().len()
    );
    Ok(Measurement::Ok)
}

/// At start: if a WAL was left by an interrupted extend, finish it as upstream does: the
/// register whose value is the WAL's expected one was extended already; one from which
/// the event's digest reaches it is extended now; then the record is (re)written at the
/// saved offset and the WAL removed. No WAL: nothing to do. Off TDX (or without the sysfs
/// RTMR files) a WAL is left alone with a warning.
pub fn recover(tee: Tee, paths: &EventLogPaths) -> Result<(), EventLogFailure> {
    recover_with(&mut SysfsRtmrs::new(paths), tee, paths)
}

/// [`recover`] with the registers behind `rtmrs`.
pub fn recover_with(
    rtmrs: &mut dyn Rtmrs,
    tee: Tee,
    paths: &EventLogPaths,
) -> Result<(), EventLogFailure> {
    let wal_path = paths.wal();
    let Some(bytes) = read_optional(&wal_path, 8 + SHA384_LEN + MAX_EVENT_TEXT)? else {
        return Ok(());
    };
    if tee != Tee::Tdx || !rtmrs.available() {
        warn!("event log: {wal_path} exists but this guest cannot extend RTMRs; left alone");
        return Ok(());
    }
    let wal = Wal::decode(&bytes).map_err(|error| EventLogFailure::Format {
        what: wal_path.clone(),
        error,
    })?;
    let digest = el::digest_for_text(&wal.text);
    let mut found = None;
    for rtmr in 0..4u32 {
        let current = rtmrs.read(rtmr)?;
        if current == wal.expected {
            found = Some((rtmr, false));
            break;
        }
        if el::extend(&current, &digest) == wal.expected {
            found = Some((rtmr, true));
            break;
        }
    }
    let Some((rtmr, needs_extend)) = found else {
        return Err(EventLogFailure::WalMismatch { path: wal_path });
    };
    if needs_extend {
        rtmrs.extend(rtmr, &digest)?;
    }
    write_at(
        &paths.aael(),
        &el::record_for_text(rtmr + 1, &wal.text),
        wal.offset,
        true,
    )?;
    remove(&wal_path)?;
    warn!(
        "event log: finished an interrupted extend of RTMR{rtmr} ({})",
        if needs_extend {
            "extended now"
        } else {
            "already extended; record rewritten"
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealgate_core::eventlog::EventLog;

    /// A fake sysfs RTMR file is a plain file: a write replaces it. The tests emulate the
    /// kernel's extend by computing the expected value where they need it.
    fn tmp(name: &str) -> String {
        let d =
            std::env::temp_dir().join(format!("sealgate-eventlog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.to_str().unwrap().to_string()
    }

    #[test]
    fn not_enabled_and_not_supported() {
        let base = tmp("ns");
        let paths = EventLogPaths {
            sysfs: join(&base, "sys"),
            dir: join(&base, "run"),
        };
        let r = extend_runtime_measurement(Tee::Tdx, &paths, false, "d", "o", "c", None).unwrap();
        assert_eq!(r, Measurement::NotEnabled);
        let r = extend_runtime_measurement(Tee::Tdx, &paths, true, "d", "o", "c", None).unwrap();
        assert_eq!(r, Measurement::NotSupported, "no sysfs RTMR files");
        for tee in [Tee::Snp, Tee::Sample] {
            let r = extend_runtime_measurement(tee, &paths, true, "d", "o", "c", None).unwrap();
            assert_eq!(r, Measurement::NotSupported);
        }
        assert!(
            !std::path::Path::new(&paths.dir).exists(),
            "nothing written"
        );
        assert_eq!(cc_eventlog(&paths).unwrap(), None);
    }

    /// Registers in memory, extended as the TDX module does; `fail_extend` makes the next
    /// extend fail (a crash between the WAL and the extend).
    struct MemRtmrs {
        r: [[u8; 48]; 4],
        fail_extend: bool,
    }

    impl Rtmrs for MemRtmrs {
        fn available(&self) -> bool {
            true
        }
        fn read(&mut self, index: u32) -> Result<[u8; 48], EventLogFailure> {
            Ok(self.r[index as usize])
        }
        fn extend(&mut self, index: u32, digest: &[u8; 48]) -> Result<(), EventLogFailure> {
            if self.fail_extend {
                self.fail_extend = false;
                return Err(EventLogFailure::Write {
                    path: "mem".into(),
                    op: "extend",
                    errno: Errno::IO,
                });
            }
            let slot = &mut self.r[index as usize];
            *slot = el::extend(slot, digest);
            Ok(())
        }
    }

    fn ccel_area() -> Vec<u8> {
        let mut log = el::spec_id_header(&[(el::ALG_SHA384, 48)]);
        for (mr, text) in [(1u32, b"fw".as_slice()), (2, b"kernel"), (3, b"cmdline")] {
            let d: [u8; 48] = sha2::Sha384::digest(text).into();
            log.extend(el::event2(
                mr,
                el::EV_EVENT_TAG,
                &[(el::ALG_SHA384, &d)],
                text,
            ));
        }
        log.resize(log.len() + 64, 0xFF);
        log
    }

    use sha2::Digest;

    #[test]
    fn extend_records_and_the_log_replays_to_the_registers() {
        let base = tmp("extend");
        let paths = EventLogPaths {
            sysfs: join(&base, "sys"),
            dir: join(&base, "run/attestation-agent"),
        };
        let ccel = ccel_area();
        std::fs::create_dir_all(std::path::Path::new(&paths.ccel()).parent().unwrap()).unwrap();
        std::fs::write(paths.ccel(), &ccel).unwrap();
        let len = el::trim_ccel(&ccel).unwrap();
        let mut firmware = ccel[..len].to_vec();
        firmware.extend_from_slice(&el::EL_END_FLAG);
        let mut mem = MemRtmrs {
            r: EventLog::parse(&firmware).unwrap().replay(),
            fail_extend: false,
        };
        for (i, content) in ["{\"image\":\"a\"}", "second"].iter().enumerate() {
            let r = extend_runtime_measurement_with(
                &mut mem,
                Tee::Tdx,
                &paths,
                true,
                "github.com/confidential-containers",
                "PullImage",
                content,
                None,
            )
            .unwrap();
            assert_eq!(r, Measurement::Ok);
            assert!(!std::path::Path::new(&paths.wal()).exists(), "WAL removed");
            let log = cc_eventlog(&paths).unwrap().unwrap();
            let parsed = EventLog::parse(&log).unwrap();
            assert_eq!(parsed.events.len(), 4 + i + 1);
            assert_eq!(parsed.replay(), mem.r, "the log replays to the registers");
        }
        // Another register (PCR 8 -> MR 3 -> RTMR2): recorded under its own index.
        extend_runtime_measurement_with(&mut mem, Tee::Tdx, &paths, true, "d", "o", "c", Some(8))
            .unwrap();
        let parsed = EventLog::parse(&cc_eventlog(&paths).unwrap().unwrap()).unwrap();
        assert_eq!(parsed.events.last().unwrap().mr_index, 3);
        assert_eq!(parsed.replay(), mem.r);
        // A content with a line feed is refused before anything happens.
        let before = mem.r;
        let err = extend_runtime_measurement_with(
            &mut mem,
            Tee::Tdx,
            &paths,
            true,
            "d",
            "o",
            "a\nb",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("line feed"), "{err}");
        assert_eq!(mem.r, before);
        // Off TDX: NOT_SUPPORTED even with registers.
        assert_eq!(
            extend_runtime_measurement_with(&mut mem, Tee::Snp, &paths, true, "d", "o", "c", None)
                .unwrap(),
            Measurement::NotSupported
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_leftover_wal_is_finished_at_start() {
        let base = tmp("wal");
        let paths = EventLogPaths {
            sysfs: join(&base, "sys"),
            dir: join(&base, "run"),
        };
        let mut mem = MemRtmrs {
            r: [[1; 48], [2; 48], [3; 48], [0; 48]],
            fail_extend: false,
        };
        extend_runtime_measurement_with(&mut mem, Tee::Tdx, &paths, true, "d", "o", "one", None)
            .unwrap();
        // Crash after the WAL, before the extend.
        mem.fail_extend = true;
        assert!(
            extend_runtime_measurement_with(
                &mut mem,
                Tee::Tdx,
                &paths,
                true,
                "d",
                "o",
                "two",
                None
            )
            .is_err()
        );
        assert!(std::path::Path::new(&paths.wal()).exists());
        recover_with(&mut mem, Tee::Tdx, &paths).unwrap();
        assert!(!std::path::Path::new(&paths.wal()).exists());
        let log = EventLog::parse(&cc_eventlog(&paths).unwrap().unwrap()).unwrap();
        assert_eq!(log.events.len(), 3, "header, one, two");
        assert_eq!(log.events[2].aael_text(), Some("d o two"));
        // The AAEL alone replays RTMR3 (the CCEL is absent here).
        assert_eq!(log.replay()[3], mem.r[3]);

        // Crash after the extend, before the record: the register already holds the value.
        let wal = Wal {
            offset: std::fs::metadata(paths.aael()).unwrap().len(),
            expected: el::extend(&mem.r[3], &el::digest_for_text("d o three")),
            text: "d o three".into(),
        };
        std::fs::write(paths.wal(), wal.encode()).unwrap();
        mem.extend(3, &el::digest_for_text("d o three")).unwrap();
        let r3 = mem.r[3];
        recover_with(&mut mem, Tee::Tdx, &paths).unwrap();
        assert_eq!(mem.r[3], r3, "not extended twice");
        let log = EventLog::parse(&cc_eventlog(&paths).unwrap().unwrap()).unwrap();
        assert_eq!(log.replay()[3], mem.r[3]);

        // A WAL no register can reach is refused and left in place.
        let wal = Wal {
            offset: 0,
            expected: [7; 48],
            text: "x".into(),
        };
        std::fs::write(paths.wal(), wal.encode()).unwrap();
        let err = recover_with(&mut mem, Tee::Tdx, &paths).unwrap_err();
        assert!(matches!(err, EventLogFailure::WalMismatch { .. }), "{err}");
        assert!(std::path::Path::new(&paths.wal()).exists());
        // No WAL: nothing to do.
        std::fs::remove_file(paths.wal()).unwrap();
        recover_with(&mut mem, Tee::Tdx, &paths).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn cc_eventlog_from_files() {
        let base = tmp("cc");
        let paths = EventLogPaths {
            sysfs: join(&base, "sys"),
            dir: join(&base, "run"),
        };
        std::fs::create_dir_all(&paths.dir).unwrap();
        let rec = AaelEvent::new("d", "o", "c", 4).unwrap().record();
        std::fs::write(paths.aael(), &rec).unwrap();
        let log = cc_eventlog(&paths).unwrap().unwrap();
        assert_eq!(&log[..69], &el::EL_HEADER);
        assert_eq!(EventLog::parse(&log).unwrap().events.len(), 2);
        let ccel = paths.ccel();
        std::fs::create_dir_all(std::path::Path::new(&ccel).parent().unwrap()).unwrap();
        // A SpecID header whose size runs past the area.
        let mut bad = [0u8; 40];
        bad[4] = 3;
        bad[28] = 0xFF;
        std::fs::write(&ccel, bad).unwrap();
        let err = cc_eventlog(&paths).unwrap_err().to_string();
        assert!(err.contains("CCEL"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
