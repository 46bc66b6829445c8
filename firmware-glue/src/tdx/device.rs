//! `/dev/tdx_guest` (feature `device`): `TDX_CMD_GET_REPORT0` (reference §2.1; kernel
//! `drivers/virt/coco/tdx-guest/tdx-guest.c`). Quotes come from configfs-tsm, not from here.

use alloc::borrow::ToOwned;
use alloc::string::String;

use core::fmt;

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Updater, ioctl};

use super::abi::{TDX_CMD_GET_REPORT0, TdxReportReq};
use super::report::TDREPORT_LEN;

/// The device node.
pub const DEFAULT_DEVICE: &str = "/dev/tdx_guest";

/// Why `/dev/tdx_guest` gave no TDREPORT.
#[derive(Debug, PartialEq, Eq)]
pub enum TdxGuestError {
    /// The device could not be opened.
    Open {
        /// The path.
        path: String,
        /// The errno.
        errno: Errno,
    },
    /// `TDX_CMD_GET_REPORT0` failed (EIO: the TDCALL failed).
    Ioctl {
        /// The errno.
        errno: Errno,
    },
}

impl fmt::Display for TdxGuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TdxGuestError::Open { path, errno } => {
                write!(
                    f,
                    "cannot open {path}: {errno}",
                    errno = crate::util::os(errno)
                )?;
                f.write_str(match *errno {
                    Errno::NOENT | Errno::NODEV | Errno::NXIO => {
                        " (not a TDX guest, or the tdx-guest driver is not loaded: modprobe tdx-guest)"
                    }
                    crate::sys::WRONG_FILE_TYPE => {
                        " (not a character device: something other than the tdx-guest driver put a file there; refused)"
                    }
                    Errno::ACCESS | Errno::PERM => " (run as root)",
                    _ => "",
                })
            }
            TdxGuestError::Ioctl { errno } => write!(
                f,
                "TDX_CMD_GET_REPORT0 failed: {errno}{}",
                if *errno == Errno::IO {
                    " (the TDG.MR.REPORT TDCALL failed)"
                } else {
                    ""
                },
                errno = crate::util::os(errno)
            ),
        }
    }
}

impl core::error::Error for TdxGuestError {}

/// An open `/dev/tdx_guest`.
#[derive(Debug)]
pub struct TdxGuest {
    fd: OwnedFd,
}

impl TdxGuest {
    /// Opens the device read-only, non-blocking and only if it is a character device.
    pub fn open(path: &str) -> Result<Self, TdxGuestError> {
        crate::sys::open_device(path)
            .map(|fd| TdxGuest { fd })
            .map_err(|errno| TdxGuestError::Open {
                path: path.to_owned(),
                errno,
            })
    }

    /// The TDREPORT for `report_data` (unparsed; see [`super::TdReport`]).
    #[allow(unsafe_code)]
    pub fn tdreport(&self, report_data: &[u8; 64]) -> Result<[u8; TDREPORT_LEN], TdxGuestError> {
        let mut req = TdxReportReq::new(report_data);
        // SAFETY: `TDX_CMD_GET_REPORT0` is `_IOWR('T', 1, struct tdx_report_req)` and `req` is a
        // `#[repr(C)]` copy of that 1088-byte struct (layout tested in `abi`) with no pointers:
        // the kernel reads `reportdata` and writes `tdreport` inside it, nothing else. `req` is
        // exclusively borrowed for the call and `[u8; N]` accepts any bit pattern.
        unsafe {
            ioctl(
                self.fd.as_fd(),
                Updater::<{ TDX_CMD_GET_REPORT0 as Opcode }, TdxReportReq>::new(&mut req),
            )
        }
        .map_err(|errno| TdxGuestError::Ioctl { errno })?;
        Ok(req.tdreport)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn opcode_matches_rustix_iowr() {
        assert_eq!(
            rustix::ioctl::opcode::read_write::<TdxReportReq>(b'T', 1),
            TDX_CMD_GET_REPORT0 as Opcode
        );
    }

    #[test]
    fn errors() {
        let err = TdxGuest::open("/nonexistent/tdx_guest").unwrap_err();
        assert!(err.to_string().contains("modprobe tdx-guest"), "{err}");
        let dev = TdxGuest::open("/dev/null").unwrap();
        assert_eq!(
            dev.tdreport(&[0; 64]),
            Err(TdxGuestError::Ioctl {
                errno: Errno::NOTTY
            })
        );
    }
}
