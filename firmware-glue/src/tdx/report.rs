//! `TDREPORT_STRUCT` (1024 bytes), as `TDX_CMD_GET_REPORT0` returns it (Intel TDX Module ABI,
//! `TDG.MR.REPORT`; reference §2.1; guest-components `attester/src/tdx/report.rs`).

use core::fmt;

use crate::util::array;

/// Length of a TDREPORT.
pub const TDREPORT_LEN: usize = 1024;

/// Field offsets of the TDREPORT (REPORTMACSTRUCT 0..256, TEE_TCB_INFO 256..495, TDINFO 512..).
pub mod field {
    use core::ops::Range;

    /// REPORTTYPE: type (0x81 = TDX), subtype, version (0 TDX 1.0, 1 TDX 1.5), reserved.
    pub const REPORTTYPE: Range<usize> = 0..4;
    /// Reserved.
    pub const RESERVED_4: Range<usize> = 4..16;
    /// CPUSVN.
    pub const CPUSVN: Range<usize> = 16..32;
    /// TEE_TCB_INFO_HASH (SHA-384).
    pub const TEE_TCB_INFO_HASH: Range<usize> = 32..80;
    /// TEE_INFO_HASH (SHA-384 of TDINFO).
    pub const TEE_INFO_HASH: Range<usize> = 80..128;
    /// REPORTDATA (64 bytes), the guest-supplied data.
    pub const REPORTDATA: Range<usize> = 128..192;
    /// Reserved.
    pub const RESERVED_192: Range<usize> = 192..224;
    /// MAC over REPORTMACSTRUCT.
    pub const MAC: Range<usize> = 224..256;
    /// TEE_TCB_INFO (239 bytes).
    pub const TEE_TCB_INFO: Range<usize> = 256..495;
    /// Reserved.
    pub const RESERVED_495: Range<usize> = 495..512;
    /// TD ATTRIBUTES (TDINFO starts here).
    pub const ATTRIBUTES: Range<usize> = 512..520;
    /// XFAM.
    pub const XFAM: Range<usize> = 520..528;
    /// MRTD: build-time measurement.
    pub const MRTD: Range<usize> = 528..576;
    /// MRCONFIGID: host-set 48 bytes (CoCo: the init-data digest).
    pub const MRCONFIGID: Range<usize> = 576..624;
    /// MROWNER.
    pub const MROWNER: Range<usize> = 624..672;
    /// MROWNERCONFIG.
    pub const MROWNERCONFIG: Range<usize> = 672..720;
    /// RTMR0 (RTMR *i* is at `RTMR0.start + 48 * i`).
    pub const RTMR0: Range<usize> = 720..768;
    /// RTMR1.
    pub const RTMR1: Range<usize> = 768..816;
    /// RTMR2.
    pub const RTMR2: Range<usize> = 816..864;
    /// RTMR3.
    pub const RTMR3: Range<usize> = 864..912;
    /// SERVTD_HASH (TDX 1.5; reserved in 1.0).
    pub const SERVTD_HASH: Range<usize> = 912..960;
    /// Reserved.
    pub const RESERVED_960: Range<usize> = 960..1024;
}

/// REPORTTYPE.TYPE of a TDX report.
pub const REPORT_TYPE_TDX: u8 = 0x81;

/// Why bytes are not a TDREPORT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdReportError {
    /// Not 1024 bytes.
    Length {
        /// The length received.
        got: usize,
    },
    /// REPORTTYPE.TYPE is not 0x81.
    NotTdx {
        /// The type byte found.
        report_type: u8,
    },
}

impl fmt::Display for TdReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TdReportError::Length { got } => {
                write!(f, "TDREPORT is {got} bytes, expected {TDREPORT_LEN}")
            }
            TdReportError::NotTdx { report_type } => write!(
                f,
                "TDREPORT type is 0x{report_type:02x}, expected 0x81 (TDX)"
            ),
        }
    }
}

impl core::error::Error for TdReportError {}

/// A checked view of a TDREPORT, over any buffer that dereferences to bytes: `TdReport<&[u8]>`
/// borrows (zero-copy), `TdReport<[u8; TDREPORT_LEN]>` or `TdReport<Vec<u8>>` owns.
///
/// [`TdReport::new_checked`] checks the length and REPORTTYPE.TYPE once; an owner keeps the
/// `TdReport<T>` (the proof) rather than the bytes. `T::as_ref` must return the same bytes every
/// time (as slices, arrays, `Vec` and `Box` do); a buffer that changes under the view makes the
/// accessors panic, never read out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdReport<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TdReport<T> {
    /// Checks the length and REPORTTYPE.TYPE.
    pub fn new_checked(buf: T) -> Result<Self, TdReportError> {
        let bytes = buf.as_ref();
        let bytes: &[u8; TDREPORT_LEN] = bytes
            .try_into()
            .map_err(|_| TdReportError::Length { got: bytes.len() })?;
        if bytes[0] != REPORT_TYPE_TDX {
            return Err(TdReportError::NotTdx {
                report_type: bytes[0],
            });
        }
        Ok(TdReport { buf })
    }

    /// The buffer the view was made from.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The raw report.
    pub fn as_bytes(&self) -> &[u8; TDREPORT_LEN] {
        // Checked to be exactly TDREPORT_LEN bytes at construction.
        array(self.buf.as_ref(), 0)
    }

    /// REPORTTYPE `[type, subtype, version, reserved]`.
    pub fn report_type(&self) -> &[u8; 4] {
        array(self.as_bytes(), field::REPORTTYPE.start)
    }

    /// REPORTTYPE.VERSION: 0 for TDX 1.0, 1 for TDX 1.5.
    pub fn version(&self) -> u8 {
        self.as_bytes()[2]
    }

    /// CPUSVN.
    pub fn cpusvn(&self) -> &[u8; 16] {
        array(self.as_bytes(), field::CPUSVN.start)
    }

    /// TEE_TCB_INFO_HASH.
    pub fn tee_tcb_info_hash(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::TEE_TCB_INFO_HASH.start)
    }

    /// TEE_INFO_HASH.
    pub fn tee_info_hash(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::TEE_INFO_HASH.start)
    }

    /// REPORTDATA.
    pub fn report_data(&self) -> &[u8; 64] {
        array(self.as_bytes(), field::REPORTDATA.start)
    }

    /// MAC.
    pub fn mac(&self) -> &[u8; 32] {
        array(self.as_bytes(), field::MAC.start)
    }

    /// TEE_TCB_INFO.
    pub fn tee_tcb_info(&self) -> &[u8; 239] {
        array(self.as_bytes(), field::TEE_TCB_INFO.start)
    }

    /// TD ATTRIBUTES.
    pub fn attributes(&self) -> &[u8; 8] {
        array(self.as_bytes(), field::ATTRIBUTES.start)
    }

    /// XFAM.
    pub fn xfam(&self) -> &[u8; 8] {
        array(self.as_bytes(), field::XFAM.start)
    }

    /// MRTD.
    pub fn mrtd(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::MRTD.start)
    }

    /// MRCONFIGID.
    pub fn mrconfigid(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::MRCONFIGID.start)
    }

    /// MROWNER.
    pub fn mrowner(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::MROWNER.start)
    }

    /// MROWNERCONFIG.
    pub fn mrownerconfig(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::MROWNERCONFIG.start)
    }

    /// RTMR `index` (0..=3), `None` for other indices.
    pub fn rtmr(&self, index: usize) -> Option<&[u8; 48]> {
        (index < 4).then(|| array(self.as_bytes(), field::RTMR0.start + 48 * index))
    }

    /// SERVTD_HASH (meaningful for TDX 1.5).
    pub fn servtd_hash(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::SERVTD_HASH.start)
    }
}
