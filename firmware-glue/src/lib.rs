//! # firmware-glue: sealgate's TEE firmware interfaces
//!
//! Byte-exact views of what AMD SEV-SNP and Intel TDX firmware return, the evidence JSON a
//! Trustee KBS verifies, and (feature `std`) the Linux interfaces that produce them.
//!
//! ## Without `std` (no_std + alloc)
//! - [`snp`]: [`snp::Report`] (checked view of the 1184-byte ATTESTATION_REPORT, versions 2–5),
//!   [`snp::ReportRepr`] (owned form that re-encodes exactly like the `sev` crate),
//!   [`snp::CertTable`] (GHCB certificate table), [`snp::evidence_json`] /
//!   [`snp::parse_evidence_json`] (Trustee's `{"attestation_report", "cert_chain"}`), and the
//!   `/dev/sev-guest` ABI structs in [`snp::abi`].
//! - [`tdx`]: [`tdx::TdReport`] (TDREPORT), [`tdx::Quote`] (DCAP quote v4/v5),
//!   [`tdx::evidence_json`] / [`tdx::parse_evidence_json`] (`{"cc_eventlog", "quote"}`), and the
//!   `/dev/tdx_guest` ABI in [`tdx::abi`].
//! - [`der`]: a bounded DER walker for the VCEK/VLEK certificates (public key, extensions).
//!
//! ## With `sim` (tests only)
//! - `sim`: simulated SEV-SNP and TDX firmware (reports, quotes, certificate chains) signed by
//!   test keys derived from a seed, and the small DER writer they need.
//!
//! ## With `std`
//! - `tsm`: the configfs-tsm report procedure, over the `tsm::TsmFs` trait
//!   (`tsm::KernelFs` by default; an in-process fake or simulated firmware otherwise).
//! - `snp::get_evidence(&SnpSource, &[u8; 64]) -> SnpEvidence { report, certs }` through
//!   `SNP_GET_EXT_REPORT` (certificate negotiation, never a retry that would cost the VMPCK) or
//!   configfs-tsm; `snp::host_data(&SnpSource)` for the init-data check.
//! - `tdx::get_quote(tsm_root, &[u8; 64])`, `tdx::tdreport(dev, ..)`,
//!   `tdx::mrconfigid(measurements_dir, dev)`.
//! - `detect`: which TEE this guest is in.
//!
//! The agent's flow: `detect::detect` (or configuration) picks the TEE; REPORT_DATA is the
//! 48-byte SHA-384 binding digest followed by 16 zero bytes; `snp::get_evidence(..)?.to_json()`
//! or `tdx::evidence_json(&tdx::get_quote(..)?, None)` is the `primary_evidence`.
//!
//! `unsafe` exists only in the two ioctl wrappers (`snp` and `tdx` device code), each with a
//! `SAFETY:` argument; everything else is `deny(unsafe_code)`.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod der;
pub mod ioc;
#[cfg(feature = "sim")]
pub mod sim;
pub mod snp;
pub mod tdx;
mod util;

#[cfg(feature = "std")]
pub mod detect;
#[cfg(feature = "std")]
mod sys;
#[cfg(feature = "std")]
pub mod tsm;

use alloc::string::String;
use core::fmt;

/// Why evidence JSON could not be read back (verifier side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceJsonError {
    /// The JSON does not have the evidence shape (serde's explanation).
    Shape {
        /// `"snp"` or `"tdx"`.
        tee: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The report fields cannot be encoded (version, CPU generation).
    Report(snp::ReportError),
    /// A field is not base64 STANDARD with padding.
    Base64 {
        /// The field.
        field: &'static str,
    },
}

impl fmt::Display for EvidenceJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceJsonError::Shape { tee, detail } => {
                write!(f, "{tee} evidence JSON is malformed: {detail}")
            }
            EvidenceJsonError::Report(e) => write!(f, "snp evidence JSON: {e}"),
            EvidenceJsonError::Base64 { field } => {
                write!(
                    f,
                    "tdx evidence JSON: {field} is not standard padded base64"
                )
            }
        }
    }
}

impl core::error::Error for EvidenceJsonError {}
