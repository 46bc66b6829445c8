//! `/dev/sev-guest` (feature `device`): `SNP_GET_EXT_REPORT` with the certificate buffer
//! negotiation, and plain `SNP_GET_REPORT` (reference §1.2, §1.3; kernel
//! `drivers/virt/coco/sev-guest/sev-guest.c`).
//!
//! # Never make the kernel wipe the VMPCK
//! Every guest request consumes an AES-GCM sequence number shared with the PSP. When a request
//! fails in transport (anything but the host's INVALID_LEN answer), the kernel *disables the
//! VMPCK* and every later request fails with ENOTTY until the guest reboots. So:
//! - only INVALID_LEN (`exitinfo2 >> 32 == 1`) is retried, once, with the `certs_len` the kernel
//!   wrote back (the kernel has already re-issued a plain request to keep the IV unique);
//! - host BUSY is retried inside the kernel (up to 60 s, then ETIMEDOUT) and not again here;
//! - the fall-back to `SNP_GET_REPORT` happens only when the extended ioctl returned ENOTTY
//!   with `exitinfo2` untouched (0xff), i.e. no request reached the host;
//! - every other error is final.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use core::fmt;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Updater, ioctl};

use super::abi::{
    EXITINFO2_UNTOUCHED, PAGE_SIZE, RespError, SEV_FW_BLOB_MAX_SIZE, SNP_GET_EXT_REPORT,
    SNP_GET_REPORT, SnpExtReportReq, SnpGuestRequestIoctl, SnpReportReq, SnpReportResp,
    VMM_ERR_INVALID_LEN,
};
use super::certs::{CertTable, CertTableError};
use super::report::REPORT_LEN;

/// The device node.
pub const DEFAULT_DEVICE: &str = "/dev/sev-guest";

/// The certificate buffer offered first (the upstream kernel maximum, `SEV_FW_BLOB_MAX_SIZE`).
pub const INITIAL_CERTS_LEN: usize = SEV_FW_BLOB_MAX_SIZE;

/// The largest certificate buffer sealgate will offer on the INVALID_LEN retry.
pub const MAX_CERTS_LEN: usize = 64 * 1024;

/// Message version for report requests.
const MSG_VERSION: u8 = 1;

/// Why `/dev/sev-guest` gave no report.
#[derive(Debug, PartialEq, Eq)]
pub enum SevGuestError {
    /// The device could not be opened.
    Open {
        /// The path.
        path: String,
        /// The errno.
        errno: Errno,
    },
    /// The ioctl failed.
    Request {
        /// `SNP_GET_EXT_REPORT` or `SNP_GET_REPORT`.
        ioctl: &'static str,
        /// The errno.
        errno: Errno,
        /// `exitinfo2` as the kernel left it.
        exitinfo2: u64,
    },
    /// The extended request is not available (ENOTTY, nothing sent); use `SNP_GET_REPORT`.
    ExtendedUnsupported,
    /// The host asked for a certificate buffer sealgate will not offer.
    CertBufferRefused {
        /// The length the kernel wrote back.
        needed: u32,
    },
    /// The firmware answered with an error status or a bad response.
    Firmware(RespError),
    /// The host's certificate table is malformed.
    Certs(CertTableError),
}

impl fmt::Display for SevGuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SevGuestError::Open { path, errno } => {
                write!(
                    f,
                    "cannot open {path}: {errno}",
                    errno = crate::util::os(errno)
                )?;
                f.write_str(match *errno {
                    Errno::NOENT | Errno::NODEV | Errno::NXIO => {
                        " (not an SEV-SNP guest, or the sev-guest driver is not loaded: modprobe sev-guest)"
                    }
                    crate::sys::WRONG_FILE_TYPE => {
                        " (not a character device: something other than the sev-guest driver put a file there; refused)"
                    }
                    Errno::ACCESS | Errno::PERM => " (run as root)",
                    _ => "",
                })
            }
            SevGuestError::Request {
                ioctl,
                errno,
                exitinfo2,
            } => {
                let fw = *exitinfo2 as u32;
                let vmm = (*exitinfo2 >> 32) as u32;
                write!(
                    f,
                    "{ioctl} failed: {errno} (exitinfo2 0x{exitinfo2:x}: firmware error 0x{fw:x}, VMM error {vmm})",
                    errno = crate::util::os(errno)
                )?;
                let issued = *exitinfo2 != EXITINFO2_UNTOUCHED;
                f.write_str(match *errno {
                    Errno::NOTTY => {
                        ": the kernel has disabled the VMPCK after an earlier failed request (or lacks this ioctl); SNP reports are unavailable until the guest reboots"
                    }
                    Errno::TIMEDOUT => {
                        ": the host kept throttling guest requests (VMM BUSY) for 60 s; retry later"
                    }
                    Errno::INVAL if !issued => {
                        ": the driver rejected the request before sending it (certificate buffer length or message version)"
                    }
                    Errno::FAULT | Errno::NOMEM => "",
                    _ if issued => {
                        ": the guest request failed in transport; the kernel disables the VMPCK to prevent IV reuse, so SNP reports are unavailable until the guest reboots (not retried)"
                    }
                    _ => "",
                })
            }
            SevGuestError::ExtendedUnsupported => f.write_str(
                "SNP_GET_EXT_REPORT is not supported by this kernel (ENOTTY before any request)",
            ),
            SevGuestError::CertBufferRefused { needed } => write!(
                f,
                "the host wants a {needed}-byte SNP certificate buffer; sealgate offers page multiples up to {MAX_CERTS_LEN} bytes"
            ),
            SevGuestError::Firmware(e) => fmt::Display::fmt(e, f),
            SevGuestError::Certs(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for SevGuestError {}

impl SevGuestError {
    /// Whether trying again later may succeed: only the host's 60 s of throttling
    /// (`ETIMEDOUT`). Every other failure is final, most because the kernel disabled the
    /// VMPCK (retrying would not help and is not attempted).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SevGuestError::Request {
                errno: Errno::TIMEDOUT,
                ..
            }
        )
    }
}

/// A report and, if the host supplied any, its certificate table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtReport {
    /// The 1184-byte report (not yet parsed).
    pub report: Vec<u8>,
    /// The certificate table (checked), trimmed to its used length, `None` if the host has none.
    pub certs: Option<CertTable<Vec<u8>>>,
}

/// An open `/dev/sev-guest`.
#[derive(Debug)]
pub struct SevGuest {
    fd: OwnedFd,
}

impl SevGuest {
    /// Opens the device read-only (ioctls work on an O_RDONLY descriptor), non-blocking and
    /// only if it is a character device.
    pub fn open(path: &str) -> Result<Self, SevGuestError> {
        crate::sys::open_device(path)
            .map(|fd| SevGuest { fd })
            .map_err(|errno| SevGuestError::Open {
                path: path.to_owned(),
                errno,
            })
    }

    /// `SNP_GET_EXT_REPORT` at VMPL 0 with a 16 KiB certificate buffer, retried once with the
    /// kernel's length on INVALID_LEN (see the module documentation for the rules).
    pub fn ext_report(&self, report_data: &[u8; 64]) -> Result<ExtReport, SevGuestError> {
        let mut certs = vec![0u8; INITIAL_CERTS_LEN];
        let mut retried = false;
        loop {
            let mut req = SnpExtReportReq {
                data: SnpReportReq::vmpl0(report_data),
                certs_address: 0,
                certs_len: 0,
                pad: 0,
            };
            let mut resp = Box::new(SnpReportResp::zeroed());
            let (result, io) = get_ext_report(self.fd.as_fd(), &mut req, &mut certs, &mut resp);
            match result {
                Ok(()) => {
                    let report = resp.report().map_err(SevGuestError::Firmware)?.to_vec();
                    let table = CertTable::new_checked(certs).map_err(SevGuestError::Certs)?;
                    let certs = (!table.is_empty()).then(|| table.into_trimmed());
                    return Ok(ExtReport { report, certs });
                }
                Err(_) if !retried && io.vmm_error() == VMM_ERR_INVALID_LEN => {
                    let needed = req.certs_len;
                    let n = needed as usize;
                    if n <= certs.len() || !n.is_multiple_of(PAGE_SIZE) || n > MAX_CERTS_LEN {
                        return Err(SevGuestError::CertBufferRefused { needed });
                    }
                    certs = vec![0u8; n];
                    retried = true;
                }
                Err(Errno::NOTTY) if !retried && io.exitinfo2 == EXITINFO2_UNTOUCHED => {
                    return Err(SevGuestError::ExtendedUnsupported);
                }
                Err(errno) => {
                    return Err(SevGuestError::Request {
                        ioctl: "SNP_GET_EXT_REPORT",
                        errno,
                        exitinfo2: io.exitinfo2,
                    });
                }
            }
        }
    }

    /// `SNP_GET_REPORT` at VMPL 0 (no certificates). Not retried.
    pub fn report(&self, report_data: &[u8; 64]) -> Result<[u8; REPORT_LEN], SevGuestError> {
        let mut req = SnpReportReq::vmpl0(report_data);
        let mut resp = Box::new(SnpReportResp::zeroed());
        let (result, io) = get_report(self.fd.as_fd(), &mut req, &mut resp);
        result.map_err(|errno| SevGuestError::Request {
            ioctl: "SNP_GET_REPORT",
            errno,
            exitinfo2: io.exitinfo2,
        })?;
        resp.report().copied().map_err(SevGuestError::Firmware)
    }

    /// [`SevGuest::ext_report`], or [`SevGuest::report`] without certificates when the kernel
    /// does not support the extended request.
    pub fn ext_report_or_report(&self, report_data: &[u8; 64]) -> Result<ExtReport, SevGuestError> {
        match self.ext_report(report_data) {
            Err(SevGuestError::ExtendedUnsupported) => Ok(ExtReport {
                report: self.report(report_data)?.to_vec(),
                certs: None,
            }),
            other => other,
        }
    }
}

fn request_header(req_data: u64, resp_data: u64) -> SnpGuestRequestIoctl {
    SnpGuestRequestIoctl {
        msg_version: MSG_VERSION,
        pad: [0; 7],
        req_data,
        resp_data,
        exitinfo2: 0,
    }
}

/// One `SNP_GET_EXT_REPORT` call. Returns the ioctl result and the request header as the kernel
/// left it (`exitinfo2`); `req.certs_len` holds the kernel's length after INVALID_LEN.
#[allow(unsafe_code)]
fn get_ext_report(
    fd: BorrowedFd<'_>,
    req: &mut SnpExtReportReq,
    certs: &mut [u8],
    resp: &mut SnpReportResp,
) -> (Result<(), Errno>, SnpGuestRequestIoctl) {
    // The kernel checks the length against its own limit and page alignment; never claim more
    // than the buffer holds.
    let Ok(certs_len) = u32::try_from(certs.len()) else {
        return (Err(Errno::INVAL), request_header(0, 0));
    };
    req.certs_address = certs.as_mut_ptr() as u64;
    req.certs_len = certs_len;
    let mut io = request_header(
        core::ptr::from_mut(req) as u64,
        core::ptr::from_mut(resp) as u64,
    );
    // SAFETY: `SNP_GET_EXT_REPORT` is `_IOWR('S', 2, struct snp_guest_request_ioctl)` and `io`
    // is a `#[repr(C)]` copy of that 32-byte struct (layout tested in `abi`). The kernel
    // reads/writes only through the three addresses it contains, each derived just above from a
    // live exclusive borrow that outlives this call and is not touched until it returns:
    // `req` (a 112-byte `snp_ext_report_req`; the kernel reads it and may write `certs_len`
    // back), `resp` (the 4000-byte `snp_report_resp` it fills) and `certs` (it writes at most
    // `certs_len` = `certs.len()` bytes there). It writes `io` itself back (32 bytes). No other
    // memory is accessed, and every written type accepts any bit pattern.
    let result = unsafe {
        ioctl(
            fd,
            Updater::<{ SNP_GET_EXT_REPORT as Opcode }, SnpGuestRequestIoctl>::new(&mut io),
        )
    };
    (result, io)
}

/// One `SNP_GET_REPORT` call.
#[allow(unsafe_code)]
fn get_report(
    fd: BorrowedFd<'_>,
    req: &mut SnpReportReq,
    resp: &mut SnpReportResp,
) -> (Result<(), Errno>, SnpGuestRequestIoctl) {
    let mut io = request_header(
        core::ptr::from_mut(req) as u64,
        core::ptr::from_mut(resp) as u64,
    );
    // SAFETY: `SNP_GET_REPORT` is `_IOWR('S', 0, struct snp_guest_request_ioctl)` and `io` is a
    // `#[repr(C)]` copy of that struct. The kernel reads the 96-byte `snp_report_req` at
    // `req_data` (from the exclusive borrow `req`), writes the 4000-byte `snp_report_resp` at
    // `resp_data` (from the exclusive borrow `resp`) and writes `io` back; both borrows outlive
    // the call and are not used during it; all written types accept any bit pattern.
    let result = unsafe {
        ioctl(
            fd,
            Updater::<{ SNP_GET_REPORT as Opcode }, SnpGuestRequestIoctl>::new(&mut io),
        )
    };
    (result, io)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn opcodes_match_rustix_iowr() {
        use rustix::ioctl::opcode::read_write;
        assert_eq!(
            read_write::<SnpGuestRequestIoctl>(b'S', 0x0),
            SNP_GET_REPORT as Opcode
        );
        assert_eq!(
            read_write::<SnpGuestRequestIoctl>(b'S', 0x2),
            SNP_GET_EXT_REPORT as Opcode
        );
    }

    #[test]
    fn open_missing_device_says_what_to_do() {
        let err = SevGuest::open("/nonexistent/sev-guest").unwrap_err();
        assert!(matches!(
            err,
            SevGuestError::Open {
                errno: Errno::NOENT,
                ..
            }
        ));
        assert!(err.to_string().contains("modprobe sev-guest"), "{err}");
        let err = SevGuest::open("/").unwrap_err();
        assert!(err.to_string().contains("not a character device"), "{err}");
    }

    #[test]
    fn ioctl_on_a_non_device_fails_cleanly() {
        // /dev/null does not implement the ioctl: ENOTTY, exitinfo2 untouched by any driver.
        let dev = SevGuest::open("/dev/null").unwrap();
        assert_eq!(
            dev.ext_report(&[0; 64]),
            Err(SevGuestError::Request {
                ioctl: "SNP_GET_EXT_REPORT",
                errno: Errno::NOTTY,
                exitinfo2: 0
            })
        );
        let err = dev.report(&[0; 64]).unwrap_err();
        assert!(matches!(
            err,
            SevGuestError::Request {
                errno: Errno::NOTTY,
                ..
            }
        ));
    }

    #[test]
    fn messages_name_the_consequence() {
        let e = SevGuestError::Request {
            ioctl: "SNP_GET_EXT_REPORT",
            errno: Errno::IO,
            exitinfo2: 0x0000_0000_ffff_ffff,
        };
        assert!(e.to_string().contains("disables the VMPCK"), "{e}");
        let e = SevGuestError::Request {
            ioctl: "SNP_GET_EXT_REPORT",
            errno: Errno::NOTTY,
            exitinfo2: 0xff,
        };
        assert!(e.to_string().contains("reboot"), "{e}");
    }
}
