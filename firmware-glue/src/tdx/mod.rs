//! Intel TDX: TDREPORT and TD quote views, the evidence JSON, and (feature `std`) quotes from
//! configfs-tsm, TDREPORTs from `/dev/tdx_guest`, MRCONFIGID for init-data checks.

pub mod abi;
mod json;
mod quote;
mod report;

pub use json::{ParsedTdxEvidence, TdxEvidenceJson, evidence_json, parse_evidence_json};
pub use quote::{
    ATT_KEY_TYPE_ECDSA_P256, BODY_LEN_TDX10, BODY_LEN_TDX15, BodyKind, CERT_DATA_PCK_CHAIN,
    CERT_DATA_QE_REPORT, HEADER_LEN, Quote, QuoteError, TEE_TYPE_TDX, TdQuoteBody, body, header,
    sig,
};
pub use report::{REPORT_TYPE_TDX, TDREPORT_LEN, TdReport, TdReportError, field};
