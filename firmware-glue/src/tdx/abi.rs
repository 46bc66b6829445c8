//! The `/dev/tdx_guest` ioctl ABI (`include/uapi/linux/tdx-guest.h`; reference §2.1).

use super::report::TDREPORT_LEN;
use crate::ioc::iowr;

/// Length of REPORTDATA.
pub const TDX_REPORTDATA_LEN: usize = 64;

/// `struct tdx_report_req` (1088 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdxReportReq {
    /// @0: REPORTDATA for `TDG.MR.REPORT`.
    pub reportdata: [u8; TDX_REPORTDATA_LEN],
    /// @64: the TDREPORT the kernel writes back.
    pub tdreport: [u8; TDREPORT_LEN],
}

impl TdxReportReq {
    /// A request for `reportdata`, TDREPORT zeroed.
    pub const fn new(reportdata: &[u8; TDX_REPORTDATA_LEN]) -> Self {
        TdxReportReq {
            reportdata: *reportdata,
            tdreport: [0; TDREPORT_LEN],
        }
    }
}

const _: () = assert!(size_of::<TdxReportReq>() == 1088);

/// `TDX_CMD_GET_REPORT0` = `_IOWR('T', 1, struct tdx_report_req)` = 0xC4405401.
pub const TDX_CMD_GET_REPORT0: u32 = iowr(b'T', 1, size_of::<TdxReportReq>());

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout_and_number() {
        assert_eq!(size_of::<TdxReportReq>(), 1088);
        assert_eq!(offset_of!(TdxReportReq, reportdata), 0);
        assert_eq!(offset_of!(TdxReportReq, tdreport), 64);
        assert_eq!(TDX_CMD_GET_REPORT0, 0xC440_5401);
        assert_eq!(
            TDX_CMD_GET_REPORT0,
            (3 << 30) | (1088 << 16) | (0x54 << 8) | 1
        );
    }
}
