//! The `/dev/sev-guest` ioctl ABI (`include/uapi/linux/sev-guest.h`; reference §1.2, §1.3),
//! byte for byte, plus the response header and the firmware status codes.
//!
//! These are plain data (no_std) so layouts can be tested anywhere and simulated firmware can
//! fill the same structures; the calls themselves are `SevGuest`'s (feature `device`).

use core::fmt;

use super::report::REPORT_LEN;
use crate::ioc::iowr;
use crate::util::{array, u32_at};

/// `struct snp_report_req` (96 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpReportReq {
    /// @0: REPORT_DATA for the report.
    pub user_data: [u8; 64],
    /// @64: requested VMPL (>= the guest's VMPL, <= 3). sealgate always asks for 0.
    pub vmpl: u32,
    /// @68: must be zero.
    pub rsvd: [u8; 28],
}

/// `struct snp_ext_report_req` (112 bytes, 8-byte aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpExtReportReq {
    /// @0: the report request.
    pub data: SnpReportReq,
    /// @96: user address of the certificate buffer.
    pub certs_address: u64,
    /// @104: its length, a multiple of 4096; the kernel writes the required length back when the
    /// host answers INVALID_LEN.
    pub certs_len: u32,
    /// @108: tail padding of the C struct (kept explicit so no byte is uninitialised).
    pub pad: u32,
}

/// `struct snp_guest_request_ioctl` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpGuestRequestIoctl {
    /// @0: message version, must be non-zero (1 for reports).
    pub msg_version: u8,
    /// @1: padding of the C struct (explicit, zero).
    pub pad: [u8; 7],
    /// @8: user address of the request structure.
    pub req_data: u64,
    /// @16: user address of the response structure.
    pub resp_data: u64,
    /// @24: `exitinfo2`: bits 31:0 firmware error, bits 63:32 VMM (hypervisor) error.
    pub exitinfo2: u64,
}

impl SnpGuestRequestIoctl {
    /// Firmware error (low 32 bits of `exitinfo2`); `0xffff_ffff` means the request never
    /// reached the firmware.
    pub fn fw_error(&self) -> u32 {
        self.exitinfo2 as u32
    }

    /// VMM error (high 32 bits of `exitinfo2`): [`VMM_ERR_INVALID_LEN`], [`VMM_ERR_BUSY`].
    pub fn vmm_error(&self) -> u32 {
        (self.exitinfo2 >> 32) as u32
    }
}

/// `exitinfo2` as the kernel leaves it when the ioctl returns before issuing a request (it sets
/// 0xff on entry and copies the struct back only when it is non-zero).
pub const EXITINFO2_UNTOUCHED: u64 = 0xff;

/// VMM error: the certificate buffer is too small; `certs_len` holds the size needed.
pub const VMM_ERR_INVALID_LEN: u32 = 1;
/// VMM error: the host throttled the request (the kernel retries for 60 s, then ETIMEDOUT).
pub const VMM_ERR_BUSY: u32 = 2;

/// Largest certificate buffer upstream kernels accept (`SEV_FW_BLOB_MAX_SIZE`).
pub const SEV_FW_BLOB_MAX_SIZE: usize = 0x4000;

/// Page size the certificate length must be a multiple of.
pub const PAGE_SIZE: usize = 4096;

/// `struct snp_report_resp` (4000 bytes): the decrypted `MSG_REPORT_RSP`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpReportResp {
    /// Header (status, report_size, 24 reserved) then the report, zero padded.
    pub data: [u8; SNP_REPORT_RESP_LEN],
}

/// Size of [`SnpReportResp`].
pub const SNP_REPORT_RESP_LEN: usize = 4000;

/// Offsets inside the response (`struct snp_msg_report_resp_hdr` in sev-guest.c).
pub mod resp_field {
    use core::ops::Range;
    /// STATUS (u32): 0 = success, else a firmware status code.
    pub const STATUS: Range<usize> = 0..4;
    /// REPORT_SIZE (u32): 1184.
    pub const REPORT_SIZE: Range<usize> = 4..8;
    /// Reserved.
    pub const RESERVED: Range<usize> = 8..32;
    /// The attestation report.
    pub const REPORT: usize = 32;
}

impl SnpReportReq {
    /// A request for `report_data` at VMPL 0.
    pub fn vmpl0(report_data: &[u8; 64]) -> Self {
        SnpReportReq {
            user_data: *report_data,
            vmpl: 0,
            rsvd: [0; 28],
        }
    }
}

impl SnpReportResp {
    /// All zero.
    pub const fn zeroed() -> Self {
        SnpReportResp {
            data: [0; SNP_REPORT_RESP_LEN],
        }
    }

    /// The report, after checking the status and size in the header.
    pub fn report(&self) -> Result<&[u8; REPORT_LEN], RespError> {
        let status = u32_at(&self.data, resp_field::STATUS.start);
        if status != 0 {
            return Err(RespError::Status(FirmwareStatus(status)));
        }
        let size = u32_at(&self.data, resp_field::REPORT_SIZE.start);
        if size as usize != REPORT_LEN {
            return Err(RespError::ReportSize(size));
        }
        Ok(array(&self.data, resp_field::REPORT))
    }
}

/// A bad `MSG_REPORT_RSP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// The firmware refused the request.
    Status(FirmwareStatus),
    /// REPORT_SIZE is not 1184.
    ReportSize(u32),
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::Status(s) => write!(f, "SNP firmware refused the report request: {s}"),
            RespError::ReportSize(n) => write!(
                f,
                "SNP firmware response announces a {n}-byte report, expected {REPORT_LEN}"
            ),
        }
    }
}

impl core::error::Error for RespError {}

/// An SNP firmware status code (SEV-SNP ABI specification, "Status Codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareStatus(pub u32);

impl FirmwareStatus {
    /// The specification's name for the code.
    pub fn name(&self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "SUCCESS",
            0x01 => "INVALID_PLATFORM_STATE",
            0x02 => "INVALID_GUEST_STATE",
            0x03 => "INVALID_CONFIG",
            0x04 => "INVALID_LENGTH",
            0x05 => "ALREADY_OWNED",
            0x06 => "INVALID_CERTIFICATE",
            0x07 => "POLICY_FAILURE",
            0x08 => "INACTIVE",
            0x09 => "INVALID_ADDRESS",
            0x0A => "BAD_SIGNATURE",
            0x0B => "BAD_MEASUREMENT",
            0x0C => "ASID_OWNED",
            0x0D => "INVALID_ASID",
            0x0E => "WBINVD_REQUIRED",
            0x0F => "DFFLUSH_REQUIRED",
            0x10 => "INVALID_GUEST",
            0x11 => "INVALID_COMMAND",
            0x12 => "ACTIVE",
            0x13 => "HWERROR_PLATFORM",
            0x14 => "HWERROR_UNSAFE",
            0x15 => "UNSUPPORTED",
            0x16 => "INVALID_PARAM",
            0x17 => "RESOURCE_LIMIT",
            0x18 => "SECURE_DATA_INVALID",
            0x19 => "INVALID_PAGE_SIZE",
            0x1A => "INVALID_PAGE_STATE",
            0x1B => "INVALID_MDATA_ENTRY",
            0x1C => "INVALID_PAGE_OWNER",
            0x1D => "AEAD_OFLOW",
            0x1F => "RB_MODE_EXITED",
            0x20 => "RMP_INIT_REQUIRED",
            0x21 => "BAD_SVN",
            0x22 => "BAD_VERSION",
            0x23 => "SHUTDOWN_REQUIRED",
            0x24 => "UPDATE_FAILED",
            0x25 => "RESTORE_REQUIRED",
            0x26 => "RMP_INITIALIZATION_FAILED",
            0x27 => "INVALID_KEY",
            _ => return None,
        })
    }
}

impl fmt::Display for FirmwareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "status 0x{:02x} {n}", self.0)?,
            None => write!(f, "unknown status 0x{:x}", self.0)?,
        }
        match self.0 {
            0x16 => f.write_str(
                " (the requested VMPL is below the guest's own, e.g. the guest runs under an SVSM, or a reserved field is set)",
            ),
            0x27 => f.write_str(" (the VMPCK in use may not request reports at this VMPL)"),
            _ => Ok(()),
        }
    }
}

// The kernel ABI sizes, also enforced at compile time (the tests check every offset).
const _: () = assert!(size_of::<SnpReportReq>() == 96);
const _: () = assert!(size_of::<SnpExtReportReq>() == 112);
const _: () = assert!(size_of::<SnpGuestRequestIoctl>() == 32);
const _: () = assert!(size_of::<SnpReportResp>() == SNP_REPORT_RESP_LEN);
const _: () = assert!(resp_field::REPORT + REPORT_LEN <= SNP_REPORT_RESP_LEN);

/// `SNP_GET_REPORT` = `_IOWR('S', 0x0, struct snp_guest_request_ioctl)` = 0xC0205300.
pub const SNP_GET_REPORT: u32 = iowr(b'S', 0x0, size_of::<SnpGuestRequestIoctl>());
/// `SNP_GET_DERIVED_KEY` = `_IOWR('S', 0x1, …)` = 0xC0205301 (not used by sealgate).
pub const SNP_GET_DERIVED_KEY: u32 = iowr(b'S', 0x1, size_of::<SnpGuestRequestIoctl>());
/// `SNP_GET_EXT_REPORT` = `_IOWR('S', 0x2, …)` = 0xC0205302.
pub const SNP_GET_EXT_REPORT: u32 = iowr(b'S', 0x2, size_of::<SnpGuestRequestIoctl>());

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts() {
        assert_eq!(size_of::<SnpReportReq>(), 96);
        assert_eq!(offset_of!(SnpReportReq, user_data), 0);
        assert_eq!(offset_of!(SnpReportReq, vmpl), 64);
        assert_eq!(offset_of!(SnpReportReq, rsvd), 68);

        assert_eq!(size_of::<SnpExtReportReq>(), 112);
        assert_eq!(align_of::<SnpExtReportReq>(), 8);
        assert_eq!(offset_of!(SnpExtReportReq, data), 0);
        assert_eq!(offset_of!(SnpExtReportReq, certs_address), 96);
        assert_eq!(offset_of!(SnpExtReportReq, certs_len), 104);

        assert_eq!(size_of::<SnpGuestRequestIoctl>(), 32);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, msg_version), 0);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, req_data), 8);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, resp_data), 16);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, exitinfo2), 24);

        assert_eq!(size_of::<SnpReportResp>(), 4000);
    }

    #[test]
    fn ioctl_numbers() {
        // The values the reference (and the kernel headers) give.
        assert_eq!(SNP_GET_REPORT, 0xC020_5300);
        assert_eq!(SNP_GET_DERIVED_KEY, 0xC020_5301);
        assert_eq!(SNP_GET_EXT_REPORT, 0xC020_5302);
        // _IOWR spelled out: dir RW (3) << 30 | size 0x20 << 16 | 'S' << 8 | nr
        assert_eq!(
            SNP_GET_EXT_REPORT,
            (3 << 30) | (0x20 << 16) | (0x53 << 8) | 2
        );
    }

    #[test]
    fn exitinfo2_split() {
        let r = SnpGuestRequestIoctl {
            msg_version: 1,
            pad: [0; 7],
            req_data: 0,
            resp_data: 0,
            exitinfo2: 1 << 32,
        };
        assert_eq!(r.vmm_error(), VMM_ERR_INVALID_LEN);
        assert_eq!(r.fw_error(), 0);
    }

    #[test]
    fn response_header() {
        let mut resp = SnpReportResp::zeroed();
        resp.data[4..8].copy_from_slice(&(REPORT_LEN as u32).to_le_bytes());
        resp.data[32] = 7;
        assert_eq!(resp.report().unwrap()[0], 7);
        resp.data[0] = 0x16;
        assert_eq!(resp.report(), Err(RespError::Status(FirmwareStatus(0x16))));
        let msg = alloc::format!("{}", RespError::Status(FirmwareStatus(0x16)));
        assert!(msg.contains("INVALID_PARAM"), "{msg}");
        resp.data[0] = 0;
        resp.data[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(resp.report(), Err(RespError::ReportSize(1000)));
    }
}
