//! Simulated providers shared by the integration tests.

#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tsm_fuse::{Errno, Provider, Report, ReportRequest, TsmMount};

/// A stand-in for the kernel's `sev_guest` (or, with `tdx: true`, `tdx_guest`) provider:
/// 64-byte inblob or `EINVAL`; the outblob encodes what it was made from so tests can
/// check which configuration a blob belongs to.
pub struct FakeFirmware {
    pub tdx: bool,
    pub floor: u32,
    pub calls: AtomicUsize,
    /// When set, `report` fails with this errno.
    pub fail: Mutex<Option<Errno>>,
    /// When set, `report` returns this auxblob instead of the default (`Some(vec![])`: none).
    pub aux: Mutex<Option<Vec<u8>>>,
}

impl FakeFirmware {
    pub fn snp() -> Arc<Self> {
        Arc::new(Self {
            tdx: false,
            floor: 0,
            calls: AtomicUsize::new(0),
            fail: Mutex::new(None),
            aux: Mutex::new(None),
        })
    }

    pub fn tdx() -> Arc<Self> {
        Arc::new(Self {
            tdx: true,
            ..Arc::into_inner(Self::snp()).expect("fresh")
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn fail_with(&self, errno: Option<Errno>) {
        *self.fail.lock().unwrap() = errno;
    }
}

/// The outblob `FakeFirmware` makes for an inblob / privlevel / generation.
pub fn expected_outblob(inblob: &[u8], privlevel: u32, generation: u64) -> Vec<u8> {
    let mut out = b"REPORT:".to_vec();
    out.extend_from_slice(inblob);
    out.extend_from_slice(&privlevel.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out
}

/// The auxblob `FakeFirmware` makes by default: a one-entry GHCB cert table + fake DER.
pub fn expected_auxblob() -> Vec<u8> {
    let mut aux = Vec::new();
    // VCEK GUID 63da758d-e664-4564-adc5-f4b93be8accd, offset 48, length 4
    aux.extend_from_slice(&[
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ]);
    aux.extend_from_slice(&48u32.to_le_bytes());
    aux.extend_from_slice(&4u32.to_le_bytes());
    aux.extend_from_slice(&[0; 24]);
    aux.extend_from_slice(&[0x30, 0x02, 0x05, 0x00]);
    aux
}

impl Provider for FakeFirmware {
    fn name(&self) -> &str {
        if self.tdx { "tdx_guest" } else { "sev_guest" }
    }
    fn has_auxblob(&self) -> bool {
        !self.tdx
    }
    fn has_privlevel(&self) -> bool {
        !self.tdx
    }
    fn privlevel_floor(&self) -> u32 {
        self.floor
    }
    fn report(&self, req: &ReportRequest<'_>) -> Result<Report, Errno> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(errno) = *self.fail.lock().unwrap() {
            return Err(errno);
        }
        if req.inblob.len() != 64 {
            return Err(Errno::INVAL);
        }
        let report = Report::new(expected_outblob(req.inblob, req.privlevel, req.generation));
        if self.tdx {
            return Ok(report);
        }
        match self.aux.lock().unwrap().clone() {
            Some(aux) if aux.is_empty() => Ok(report),
            Some(aux) => Ok(report.with_auxblob(aux)),
            None => Ok(report.with_auxblob(expected_auxblob())),
        }
    }
}

/// Mounts with `provider` on a fresh temporary directory; panics (fails the test) with the
/// mount error, which names what is missing on this host.
pub fn mount(provider: Option<Arc<dyn Provider>>) -> TsmMount {
    match TsmMount::mount_temp(provider) {
        Ok(m) => m,
        Err(e) => panic!("cannot mount the configfs-tsm emulation: {e}"),
    }
}

/// The errno of an `io::Result`'s error (panics on success).
pub fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e
            .raw_os_error()
            .unwrap_or_else(|| panic!("not an OS error: {e}")),
    }
}

pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const EACCES: i32 = 13;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const ENOTDIR: i32 = 20;
pub const EINVAL: i32 = 22;
pub const EFBIG: i32 = 27;
pub const ERANGE: i32 = 34;
