//! # firmware-glue: sealgate's TEE firmware interfaces
//!
//! Byte-exact views of what AMD SEV-SNP and Intel TDX firmware return, the evidence JSON a
//! Trustee KBS verifies, and (feature `device`) the Linux interfaces that produce them. The
//! crate is `no_std` + `alloc` with every feature; device access makes its system calls
//! through `rustix` (raw Linux syscalls, no libc, no std).
//!
//! ## Always (no_std + alloc)
//! - [`snp`]: [`snp::Report`] (checked view of the 1184-byte ATTESTATION_REPORT, versions 2–5),
//!   [`snp::ReportRepr`] (owned form that re-encodes exactly like the `sev` crate),
//!   [`snp::CertTable`] (GHCB certificate table), [`snp::evidence_json`] /
//!   [`snp::parse_evidence_json`] (Trustee's `{"attestation_report", "cert_chain"}`), and the
//!   `/dev/sev-guest` ABI structs in [`snp::abi`].
//! - [`tdx`]: [`tdx::TdReport`] (TDREPORT), [`tdx::Quote`] (DCAP quote v4/v5),
//!   [`tdx::evidence_json`] / [`tdx::parse_evidence_json`] (`{"cc_eventlog", "quote"}`), and the
//!   `/dev/tdx_guest` ABI in [`tdx::abi`].
//!
//!   The views are generic over their buffer, as smoltcp's `Packet<T: AsRef<[u8]>>`:
//!   `new_checked(buf)` checks once, the accessors read through `&self`, `into_inner()` gives
//!   the buffer back. `Report<&[u8]>` is zero-copy; an owner keeps `Report<Vec<u8>>` (the
//!   proof that the bytes were checked) instead of a `Vec<u8>` it would have to parse again.
//! - [`der`]: a bounded DER walker for the VCEK/VLEK certificates (public key, extensions).
//! - [`Tee`]: the TEE names of the KBS protocol.
//!
//! ## With `sim` (tests only)
//! - `sim`: simulated SEV-SNP and TDX firmware (reports, quotes, certificate chains) signed by
//!   test keys derived from a seed, and the small DER writer they need.
//!
//! ## With `device`
//! Paths are Linux paths as `&str`/`String`. Attribute files (sysfs, configfs) are opened
//! `O_NONBLOCK` and must be regular files, device nodes character devices; reads are bounded.
//! - `evidence`: the `EvidenceProvider` trait (`tee()`, `evidence(binding)`,
//!   `init_data_binding()`) with its implementations `SnpIoctl` (`/dev/sev-guest`), `SnpTsm`
//!   and `TdxTsm` (configfs-tsm), and the typed `EvidenceError` (`is_transient()`).
//! - `tsm`: the configfs-tsm report procedure, over the `tsm::TsmFs` trait
//!   (`tsm::KernelFs` by default; an in-process fake or simulated firmware otherwise).
//! - `snp::get_evidence(&SnpSource, &[u8; 64]) -> SnpEvidence` (a checked `Report<Vec<u8>>`
//!   and `Option<CertTable<Vec<u8>>>`) through
//!   `SNP_GET_EXT_REPORT` (certificate negotiation, never a retry that would cost the VMPCK) or
//!   configfs-tsm; `snp::host_data(&SnpSource)` for the init-data check.
//! - `tdx::get_quote(tsm_root, &[u8; 64]) -> Quote<Vec<u8>>`,
//!   `tdx::tdreport(dev, ..) -> TdReport<[u8; 1024]>`,
//!   `tdx::mrconfigid(measurements_dir, dev)`.
//! - `detect`: which TEE this guest is in.
//!
//! ## With `test-double` (tests only)
//! - `tsm::fake::FakeTsm`: an in-process configfs-tsm (with fault knobs and pluggable
//!   firmware) behind the same `TsmFs` trait, so the providers and the agent's logic can be
//!   tested without FUSE or root.
//!
//! The agent's flow: `detect::detect` (or configuration) picks the TEE and its provider;
//! REPORT_DATA is the 48-byte SHA-384 binding digest followed by 16 zero bytes;
//! `EvidenceProvider::evidence` returns the `primary_evidence` JSON and
//! `EvidenceProvider::init_data_binding` the HOST_DATA / MRCONFIGID the init-data digest must
//! equal.
//!
//! `unsafe` exists only in the ioctl wrappers (`snp` and `tdx` device code), each with a
//! `SAFETY:` argument; everything else is `deny(unsafe_code)`.

#![no_std]
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

#[cfg(feature = "device")]
pub mod detect;
#[cfg(feature = "device")]
pub mod evidence;
#[cfg(feature = "device")]
mod sys;
#[cfg(feature = "device")]
pub mod tsm;

use alloc::string::String;
use core::fmt;

/// A TEE as the KBS protocol names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tee {
    /// The test-only sample TEE: no hardware, proves nothing. Detection never yields it; an
    /// agent uses it only when configured to.
    Sample,
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
}

impl Tee {
    /// The KBS protocol name (`"sample"`, `"snp"`, `"tdx"`).
    pub fn name(self) -> &'static str {
        match self {
            Tee::Sample => "sample",
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
        }
    }
}

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
