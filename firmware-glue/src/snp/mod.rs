//! AMD SEV-SNP: the attestation report, the host's certificate table, the evidence JSON Trustee
//! verifies, and (feature `std`) getting a report from the kernel.

pub mod abi;
mod certs;
mod json;
mod report;

pub use certs::{
    CertEntry, CertTable, CertTableError, CertType, ENTRY_LEN as CERT_TABLE_ENTRY_LEN,
    MAX_ENTRIES as CERT_TABLE_MAX_ENTRIES, guid,
};
pub use json::{
    CertJson, OwnedCert, ParsedSnpEvidence, SnpEvidenceJson, evidence_json, parse_evidence_json,
    report_from_evidence_json,
};
pub use report::{
    FirmwareVersion, Generation, REPORT_LEN, Report, ReportError, ReportRepr, Signature,
    SignatureRepr, SigningKey, TcbVersion, field, policy, signature_fields_from_p384,
};
