//! AMD SEV-SNP: the attestation report, the host's certificate table, the evidence JSON Trustee
//! verifies, and (feature `device`) getting a report from the kernel.
//!
//! ```no_run
//! # #[cfg(feature = "device")] fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use firmware_glue::snp::{self, SnpSource};
//! let report_data = [0u8; 64]; // SHA-384 binding digest ‖ 16 zero bytes
//! let ev = snp::get_evidence(&SnpSource::Ioctl(snp::DEFAULT_DEVICE.into()), &report_data)?;
//! let json = ev.to_json(); // {"attestation_report": {...}, "cert_chain": [...] | null}
//! # let _ = json; Ok(()) }
//! ```

pub mod abi;
mod certs;
#[cfg(feature = "device")]
mod device;
mod json;
mod report;

pub use certs::{
    CertEntry, CertTable, CertTableError, CertType, ENTRY_LEN as CERT_TABLE_ENTRY_LEN,
    MAX_ENTRIES as CERT_TABLE_MAX_ENTRIES, guid,
};
#[cfg(feature = "device")]
pub use device::{
    DEFAULT_DEVICE, ExtReport, INITIAL_CERTS_LEN, MAX_CERTS_LEN, SevGuest, SevGuestError,
};
pub use json::{
    CertJson, OwnedCert, ParsedSnpEvidence, SnpEvidenceJson, evidence_json, parse_evidence_json,
    report_from_evidence_json,
};
pub use report::{
    FirmwareVersion, Generation, REPORT_LEN, Report, ReportError, ReportRepr, Signature,
    SignatureRepr, SigningKey, TcbVersion, field, policy, signature_fields_from_p384,
};

#[cfg(feature = "device")]
pub use evidence::*;

#[cfg(feature = "device")]
mod evidence {
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::fmt;

    use serde_json::Value;

    use super::{
        CertTable, CertTableError, DEFAULT_DEVICE, Report, ReportError, SevGuest, SevGuestError,
        evidence_json,
    };
    use crate::detect::Roots;
    use crate::tsm::{Provider, TsmClient, TsmError, TsmFs, TsmRequest};

    /// Where SNP reports come from.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum SnpSource {
        /// configfs-tsm, at this report root (usually [`crate::tsm::DEFAULT_ROOT`]).
        Tsm(String),
        /// The `/dev/sev-guest` ioctls, at this device path (usually [`DEFAULT_DEVICE`]).
        Ioctl(String),
    }

    impl SnpSource {
        /// The upstream choice: the ioctl device if it exists under `roots.dev`, else configfs.
        pub fn auto(roots: &Roots) -> Self {
            let dev = roots.sev_guest();
            if crate::sys::exists(&dev) {
                SnpSource::Ioctl(dev)
            } else {
                SnpSource::Tsm(roots.tsm_report.clone())
            }
        }
    }

    impl Default for SnpSource {
        fn default() -> Self {
            SnpSource::Ioctl(String::from(DEFAULT_DEVICE))
        }
    }

    /// A checked SNP report and the host's certificate table: the views themselves, so nothing
    /// is parsed twice.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SnpEvidence {
        report: Report<Vec<u8>>,
        certs: Option<CertTable<Vec<u8>>>,
    }

    impl SnpEvidence {
        /// Checks a report and table (both as the kernel returned them).
        pub fn new(report: Vec<u8>, certs: Option<Vec<u8>>) -> Result<Self, SnpError> {
            let report = Report::new_checked(report).map_err(SnpError::Report)?;
            let certs = match certs {
                Some(c) if !c.is_empty() => {
                    Some(CertTable::new_checked(c).map_err(SnpError::Certs)?)
                }
                _ => None,
            };
            Ok(SnpEvidence::from_checked(report, certs))
        }

        /// Evidence from views already checked; an empty table counts as none, a table is
        /// trimmed to its used length.
        pub fn from_checked(report: Report<Vec<u8>>, certs: Option<CertTable<Vec<u8>>>) -> Self {
            let certs = certs.filter(|t| !t.is_empty()).map(CertTable::into_trimmed);
            SnpEvidence { report, certs }
        }

        /// The report.
        pub fn report(&self) -> &Report<Vec<u8>> {
            &self.report
        }

        /// The GHCB certificate table, `None` when the host supplies no certificates.
        pub fn cert_table(&self) -> Option<&CertTable<Vec<u8>>> {
            self.certs.as_ref()
        }

        /// The report and the certificate table.
        pub fn into_parts(self) -> (Report<Vec<u8>>, Option<CertTable<Vec<u8>>>) {
            (self.report, self.certs)
        }

        /// The evidence JSON Trustee's `snp` verifier expects.
        pub fn to_json(&self) -> Value {
            evidence_json(&self.report, self.certs.as_ref())
        }
    }

    /// Why no SNP evidence could be produced.
    #[derive(Debug, PartialEq, Eq)]
    pub enum SnpError {
        /// configfs-tsm failed.
        Tsm(TsmError),
        /// `/dev/sev-guest` failed.
        Device(SevGuestError),
        /// The report is malformed.
        Report(ReportError),
        /// The certificate table is malformed.
        Certs(CertTableError),
        /// The report does not carry the REPORT_DATA asked for.
        ReportDataMismatch,
    }

    impl fmt::Display for SnpError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                SnpError::Tsm(e) => fmt::Display::fmt(e, f),
                SnpError::Device(e) => fmt::Display::fmt(e, f),
                SnpError::Report(e) => fmt::Display::fmt(e, f),
                SnpError::Certs(e) => fmt::Display::fmt(e, f),
                SnpError::ReportDataMismatch => {
                    f.write_str("the SNP report does not carry the REPORT_DATA that was requested")
                }
            }
        }
    }

    impl core::error::Error for SnpError {}

    impl SnpError {
        /// Whether trying again later may succeed (see [`TsmError::is_transient`] and
        /// [`SevGuestError::is_transient`]); a malformed or mismatching report is final.
        pub fn is_transient(&self) -> bool {
            match self {
                SnpError::Tsm(e) => e.is_transient(),
                SnpError::Device(e) => e.is_transient(),
                _ => false,
            }
        }
    }

    /// A report for `report_data` at VMPL 0, with the host's certificates: through
    /// `SNP_GET_EXT_REPORT` (falling back to `SNP_GET_REPORT` only where the extended request
    /// does not exist) or through configfs-tsm (`sev_guest`, `outblob` + `auxblob`).
    pub fn get_evidence(
        source: &SnpSource,
        report_data: &[u8; 64],
    ) -> Result<SnpEvidence, SnpError> {
        match source {
            SnpSource::Ioctl(path) => get_evidence_ioctl(path, report_data),
            SnpSource::Tsm(root) => get_evidence_tsm(&TsmClient::new(root.clone()), report_data),
        }
    }

    /// [`get_evidence`] through `/dev/sev-guest` at `path`.
    pub fn get_evidence_ioctl(path: &str, report_data: &[u8; 64]) -> Result<SnpEvidence, SnpError> {
        let dev = SevGuest::open(path).map_err(SnpError::Device)?;
        let ext = dev
            .ext_report_or_report(report_data)
            .map_err(SnpError::Device)?;
        let report = Report::new_checked(ext.report).map_err(SnpError::Report)?;
        checked(SnpEvidence::from_checked(report, ext.certs), report_data)
    }

    /// [`get_evidence`] through any configfs-tsm implementation (real or simulated).
    pub fn get_evidence_tsm<F: TsmFs>(
        client: &TsmClient<F>,
        report_data: &[u8; 64],
    ) -> Result<SnpEvidence, SnpError> {
        let out = client
            .generate(&TsmRequest {
                provider: Provider::SevGuest,
                inblob: *report_data,
                privlevel: None,
                auxblob: true,
            })
            .map_err(SnpError::Tsm)?;
        checked(SnpEvidence::new(out.outblob, out.auxblob)?, report_data)
    }

    fn checked(ev: SnpEvidence, report_data: &[u8; 64]) -> Result<SnpEvidence, SnpError> {
        if ev.report().report_data() != report_data {
            return Err(SnpError::ReportDataMismatch);
        }
        Ok(ev)
    }

    /// HOST_DATA (the init-data binding): from a fresh report with zero REPORT_DATA, through
    /// plain `SNP_GET_REPORT` (as guest-components does) or configfs-tsm without `auxblob`.
    pub fn host_data(source: &SnpSource) -> Result<[u8; 32], SnpError> {
        match source {
            SnpSource::Ioctl(path) => host_data_ioctl(path),
            SnpSource::Tsm(root) => host_data_tsm(&TsmClient::new(root.clone())),
        }
    }

    /// [`host_data`] through `/dev/sev-guest` at `path`.
    pub fn host_data_ioctl(path: &str) -> Result<[u8; 32], SnpError> {
        let report = SevGuest::open(path)
            .and_then(|d| d.report(&[0u8; 64]))
            .map_err(SnpError::Device)?;
        let report = Report::new_checked(report).map_err(SnpError::Report)?;
        Ok(*report.host_data())
    }

    /// [`host_data`] through any configfs-tsm implementation (real or simulated).
    pub fn host_data_tsm<F: TsmFs>(client: &TsmClient<F>) -> Result<[u8; 32], SnpError> {
        let report = client
            .generate(&TsmRequest {
                provider: Provider::SevGuest,
                inblob: [0u8; 64],
                privlevel: None,
                auxblob: false,
            })
            .map_err(SnpError::Tsm)?
            .outblob;
        let report = Report::new_checked(report).map_err(SnpError::Report)?;
        Ok(*report.host_data())
    }
}
