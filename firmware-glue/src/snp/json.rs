//! SNP evidence JSON, exactly as Trustee's `snp` verifier deserializes it: the serde form of
//! guest-components' `SnpEvidence { attestation_report: sev::AttestationReport,
//! cert_chain: Option<Vec<CertTableEntry>> }` (reference §1.7, kbs-protocol §10).
//!
//! Byte arrays are JSON arrays of integers, `policy`/`plat_info`/`key_info` plain integers, TCBs
//! `{"fmc","bootloader","tee","snp","microcode"}`, versions `{"major","minor","build"}`, absent
//! `Option`s `null`, and certificate entries `{"cert_type": "VCEK", "data": [...]}` (or
//! `{"OTHER": "<uuid>"}`) in the `sev` crate's sort order.

use alloc::string::ToString;
use alloc::vec::Vec;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::certs::{CertTable, CertType};
use super::report::{REPORT_LEN, Report, ReportRepr};
use crate::EvidenceJsonError;
use crate::util::{Guid, parse_guid};

/// The evidence object, serializing fields in the upstream (serde declaration) order.
///
/// Serialize this directly (`serde_json::to_vec`, or as the agent's `primary_evidence`) to keep
/// that order; a `serde_json::Value` (see [`evidence_json`]) sorts keys, which Trustee does not
/// mind either.
#[derive(Clone, Debug, Serialize)]
pub struct SnpEvidenceJson<'a> {
    /// The report, field for field.
    pub attestation_report: ReportRepr,
    /// The host's certificates (sorted as the `sev` crate sorts them), or `None`.
    pub cert_chain: Option<Vec<CertJson<'a>>>,
}

/// One `cert_chain` entry.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CertJson<'a> {
    /// `"ARK"`, `"ASK"`, `"VCEK"`, `"VLEK"`, `"CRL"` or `{"OTHER": "<uuid>"}`.
    pub cert_type: CertType,
    /// The certificate bytes as an integer array.
    pub data: &'a [u8],
}

impl<'a> SnpEvidenceJson<'a> {
    /// Evidence for a checked report and the host's certificate table. A missing or empty table
    /// becomes `"cert_chain": null` (Trustee rejects an empty list: a chain, if present, must
    /// contain a VCEK or VLEK; with `null` it fetches the VCEK itself).
    pub fn new<R: AsRef<[u8]>, C: AsRef<[u8]>>(
        report: &Report<R>,
        certs: Option<&'a CertTable<C>>,
    ) -> Self {
        let cert_chain = certs.filter(|t| !t.is_empty()).map(|t| {
            t.sorted()
                .into_iter()
                .map(|e| CertJson {
                    cert_type: e.cert_type,
                    data: e.data,
                })
                .collect()
        });
        SnpEvidenceJson {
            attestation_report: ReportRepr::parse(report),
            cert_chain,
        }
    }
}

/// The evidence as a JSON value (see [`SnpEvidenceJson`] for the shape).
pub fn evidence_json<R: AsRef<[u8]>, C: AsRef<[u8]>>(
    report: &Report<R>,
    certs: Option<&CertTable<C>>,
) -> Value {
    // Cannot fail: every map key is a string and there are no floats.
    serde_json::to_value(SnpEvidenceJson::new(report, certs)).unwrap_or(Value::Null)
}

impl Serialize for CertType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The `sev` crate's `CertType` variant indices: Empty, ARK, ASK, VCEK, VLEK, CRL, OTHER.
        let (index, name) = match self {
            CertType::Ark => (1, "ARK"),
            CertType::Ask => (2, "ASK"),
            CertType::Vcek => (3, "VCEK"),
            CertType::Vlek => (4, "VLEK"),
            CertType::Crl => (5, "CRL"),
            CertType::Other(g) => {
                return s.serialize_newtype_variant("CertType", 6, "OTHER", &GuidStr(g));
            }
        };
        s.serialize_unit_variant("CertType", index, name)
    }
}

struct GuidStr<'a>(&'a [u8; 16]);

impl Serialize for GuidStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Guid(self.0))
    }
}

/// A certificate carried in evidence JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedCert {
    /// Its type.
    pub cert_type: CertType,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// SNP evidence as a verifier reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedSnpEvidence {
    /// The report re-encoded from the JSON exactly as Trustee's `sev` encoder does: verify the
    /// signature over bytes 0..0x2A0 of this.
    pub report: [u8; REPORT_LEN],
    /// The report fields as sent.
    pub repr: ReportRepr,
    /// `cert_chain` (entries typed `"Empty"` are skipped, as Trustee ignores them).
    pub cert_chain: Option<Vec<OwnedCert>>,
}

#[derive(Deserialize)]
struct EvidenceWire {
    attestation_report: ReportRepr,
    cert_chain: Option<Vec<CertWire>>,
}

#[derive(Deserialize)]
struct CertWire {
    cert_type: CertTypeWire,
    data: Vec<u8>,
}

#[allow(clippy::upper_case_acronyms)] // the wire names
#[derive(Deserialize)]
enum CertTypeWire {
    Empty,
    ARK,
    ASK,
    VCEK,
    VLEK,
    CRL,
    OTHER(GuidWire),
}

struct GuidWire([u8; 16]);

impl<'de> Deserialize<'de> for GuidWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = alloc::string::String::deserialize(d)?;
        parse_guid(&s)
            .map(GuidWire)
            .ok_or_else(|| D::Error::custom("cert_type OTHER is not a hyphenated UUID"))
    }
}

/// Reads SNP evidence JSON the way Trustee's verifier does (serde semantics: unknown fields
/// ignored, missing `Option`s `None`, byte arrays of exact length) and re-encodes the report.
pub fn parse_evidence_json(v: &Value) -> Result<ParsedSnpEvidence, EvidenceJsonError> {
    let wire = EvidenceWire::deserialize(v).map_err(|e| EvidenceJsonError::Shape {
        tee: "snp",
        detail: e.to_string(),
    })?;
    let report = wire
        .attestation_report
        .emit()
        .map_err(EvidenceJsonError::Report)?;
    let cert_chain = wire.cert_chain.map(|chain| {
        chain
            .into_iter()
            .filter_map(|c| {
                let cert_type = match c.cert_type {
                    CertTypeWire::Empty => return None,
                    CertTypeWire::ARK => CertType::Ark,
                    CertTypeWire::ASK => CertType::Ask,
                    CertTypeWire::VCEK => CertType::Vcek,
                    CertTypeWire::VLEK => CertType::Vlek,
                    CertTypeWire::CRL => CertType::Crl,
                    // Like serde's `OTHER(uuid)`: kept as other even if the GUID is a known one.
                    CertTypeWire::OTHER(GuidWire(g)) => CertType::Other(g),
                };
                Some(OwnedCert {
                    cert_type,
                    data: c.data,
                })
            })
            .collect()
    });
    Ok(ParsedSnpEvidence {
        report,
        repr: wire.attestation_report,
        cert_chain,
    })
}

/// The raw report re-encoded from evidence JSON, exactly as Trustee's `sev` encoder does.
pub fn report_from_evidence_json(v: &Value) -> Result<[u8; REPORT_LEN], EvidenceJsonError> {
    parse_evidence_json(v).map(|p| p.report)
}
