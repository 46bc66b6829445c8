//! Intel TDX: TDREPORT and TD quote views, the evidence JSON, and (feature `device`) quotes from
//! configfs-tsm, TDREPORTs from `/dev/tdx_guest`, MRCONFIGID for init-data checks.
//!
//! ```no_run
//! # #[cfg(feature = "device")] fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use firmware_glue::{tdx, tsm};
//! let report_data = [0u8; 64]; // SHA-384 binding digest ‖ 16 zero bytes
//! let quote = tdx::get_quote(tsm::DEFAULT_ROOT, &report_data)?;
//! let json = tdx::evidence_json(quote.as_bytes(), None); // {"cc_eventlog": null, "quote": "<b64>"}
//! # let _ = json; Ok(()) }
//! ```

pub mod abi;
#[cfg(feature = "device")]
mod device;
mod json;
mod quote;
mod report;

#[cfg(feature = "device")]
pub use device::{DEFAULT_DEVICE, TdxGuest, TdxGuestError};
pub use json::{ParsedTdxEvidence, TdxEvidenceJson, evidence_json, parse_evidence_json};
pub use quote::{
    ATT_KEY_TYPE_ECDSA_P256, BODY_LEN_TDX10, BODY_LEN_TDX15, BodyKind, CERT_DATA_PCK_CHAIN,
    CERT_DATA_QE_REPORT, HEADER_LEN, Quote, QuoteError, TEE_TYPE_TDX, TdQuoteBody, body, header,
    sig,
};
pub use report::{REPORT_TYPE_TDX, TDREPORT_LEN, TdReport, TdReportError, field};

#[cfg(feature = "device")]
pub use device_api::*;

#[cfg(feature = "device")]
mod device_api {
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::fmt;

    use rustix::io::Errno;

    use super::{
        Quote, QuoteError, TDREPORT_LEN, TdReport, TdReportError, TdxGuest, TdxGuestError,
    };
    use crate::sys::join;
    use crate::tsm::{KernelFs, Provider, TsmClient, TsmError, TsmFs, TsmRequest};

    /// Where kernels 6.16+ expose MRCONFIGID and the RTMRs.
    pub const DEFAULT_MEASUREMENTS: &str = "/sys/devices/virtual/misc/tdx_guest/measurements";

    /// Why no TDX evidence or measurement could be read.
    #[derive(Debug, PartialEq, Eq)]
    pub enum TdxError {
        /// configfs-tsm failed.
        Tsm(TsmError),
        /// The quote is malformed.
        Quote(QuoteError),
        /// The quote does not carry the REPORT_DATA asked for.
        ReportDataMismatch,
        /// `/dev/tdx_guest` failed.
        Device(TdxGuestError),
        /// The TDREPORT is malformed.
        TdReport(TdReportError),
        /// Reading a sysfs measurement failed.
        Sysfs {
            /// The file.
            path: String,
            /// The errno (`EFBIG` if longer than 48 bytes).
            errno: Errno,
        },
        /// A sysfs measurement that is not 48 bytes.
        SysfsLength {
            /// The file.
            path: String,
            /// Its length.
            got: usize,
        },
    }

    impl fmt::Display for TdxError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TdxError::Tsm(e) => fmt::Display::fmt(e, f),
                TdxError::Quote(e) => fmt::Display::fmt(e, f),
                TdxError::ReportDataMismatch => {
                    f.write_str("the TD quote does not carry the REPORT_DATA that was requested")
                }
                TdxError::Device(e) => fmt::Display::fmt(e, f),
                TdxError::TdReport(e) => fmt::Display::fmt(e, f),
                TdxError::Sysfs { path, errno } => {
                    write!(
                        f,
                        "cannot read {path}: {errno}",
                        errno = crate::util::os(errno)
                    )?;
                    if *errno == crate::sys::WRONG_FILE_TYPE {
                        f.write_str(" (not a regular sysfs file; refused)")?;
                    }
                    Ok(())
                }
                TdxError::SysfsLength { path, got } => {
                    write!(f, "{path} holds {got} bytes, expected 48")
                }
            }
        }
    }

    impl core::error::Error for TdxError {}

    impl TdxError {
        /// Whether trying again later may succeed (see [`TsmError::is_transient`]: a race,
        /// a busy or silent host, an unreachable quote generation service).
        pub fn is_transient(&self) -> bool {
            match self {
                TdxError::Tsm(e) => e.is_transient(),
                _ => false,
            }
        }
    }

    /// A TD quote for `report_data` from configfs-tsm (`tdx_guest`) at `tsm_root`, checked
    /// with [`Quote::new_checked`] and for its REPORTDATA. The view owns the whole `outblob`
    /// ([`Quote::into_inner`]; [`Quote::as_bytes`] leaves out bytes after the quote).
    pub fn get_quote(tsm_root: &str, report_data: &[u8; 64]) -> Result<Quote<Vec<u8>>, TdxError> {
        get_quote_tsm(&TsmClient::new(tsm_root), report_data)
    }

    /// [`get_quote`] through any configfs-tsm implementation (real or simulated).
    pub fn get_quote_tsm<F: TsmFs>(
        client: &TsmClient<F>,
        report_data: &[u8; 64],
    ) -> Result<Quote<Vec<u8>>, TdxError> {
        let out = client
            .generate(&TsmRequest {
                provider: Provider::TdxGuest,
                inblob: *report_data,
                privlevel: None,
                auxblob: false,
            })
            .map_err(TdxError::Tsm)?;
        let quote = Quote::new_checked(out.outblob).map_err(TdxError::Quote)?;
        if quote.report_data() != report_data {
            return Err(TdxError::ReportDataMismatch);
        }
        Ok(quote)
    }

    /// A TDREPORT for `report_data` through `TDX_CMD_GET_REPORT0` on `device`, checked.
    pub fn tdreport(
        device: &str,
        report_data: &[u8; 64],
    ) -> Result<TdReport<[u8; TDREPORT_LEN]>, TdxError> {
        let raw = TdxGuest::open(device)
            .and_then(|d| d.tdreport(report_data))
            .map_err(TdxError::Device)?;
        TdReport::new_checked(raw).map_err(TdxError::TdReport)
    }

    /// MRCONFIGID (the init-data binding): `<measurements>/mrconfigid` when the kernel exposes
    /// it (6.16+), else from a TDREPORT through `device`, as guest-components does.
    pub fn mrconfigid(measurements: &str, device: &str) -> Result<[u8; 48], TdxError> {
        mrconfigid_with(&KernelFs, measurements, device)
    }

    /// [`mrconfigid`] with the sysfs check and read through `fs` (a test double answers them;
    /// the TDREPORT ioctl always goes to the real `device`).
    pub fn mrconfigid_with<F: TsmFs>(
        fs: &F,
        measurements: &str,
        device: &str,
    ) -> Result<[u8; 48], TdxError> {
        let path = join(measurements, "mrconfigid");
        if fs.exists(&path) {
            let raw = fs.read(&path, 48).map_err(|errno| TdxError::Sysfs {
                path: path.clone(),
                errno,
            })?;
            return <[u8; 48]>::try_from(raw.as_slice()).map_err(|_| TdxError::SysfsLength {
                path,
                got: raw.len(),
            });
        }
        Ok(*tdreport(device, &[0u8; 64])?.mrconfigid())
    }
}
