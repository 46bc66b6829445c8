//! TDX evidence JSON: the serde form of guest-components' `TdxEvidence { cc_eventlog:
//! Option<String>, quote: String }`, both base64 STANDARD with padding (reference §2.4).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EvidenceJsonError;

/// The evidence object, serializing in the upstream order (`cc_eventlog`, `quote`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxEvidenceJson {
    /// Base64 of the CCEL (+ appended AA event log), or `null`.
    pub cc_eventlog: Option<String>,
    /// Base64 of the TD quote.
    pub quote: String,
}

impl TdxEvidenceJson {
    /// Encodes a quote and an optional event log (an empty log becomes `null`, which Trustee
    /// treats the same way).
    pub fn new(quote: &[u8], cc_eventlog: Option<&[u8]>) -> Self {
        TdxEvidenceJson {
            cc_eventlog: cc_eventlog
                .filter(|l| !l.is_empty())
                .map(Base64::encode_string),
            quote: Base64::encode_string(quote),
        }
    }
}

/// The evidence as a JSON value: `{"cc_eventlog": <b64>|null, "quote": <b64>}`.
pub fn evidence_json(quote: &[u8], cc_eventlog: Option<&[u8]>) -> Value {
    // Cannot fail: two string-or-null fields.
    serde_json::to_value(TdxEvidenceJson::new(quote, cc_eventlog)).unwrap_or(Value::Null)
}

/// TDX evidence as a verifier reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTdxEvidence {
    /// The quote bytes (not parsed; see [`super::Quote::new_checked`]).
    pub quote: Vec<u8>,
    /// The event log bytes, if present and non-empty.
    pub cc_eventlog: Option<Vec<u8>>,
}

/// Reads TDX evidence JSON (unknown fields ignored, `cc_eventlog` optional).
pub fn parse_evidence_json(v: &Value) -> Result<ParsedTdxEvidence, EvidenceJsonError> {
    let wire = TdxEvidenceJson::deserialize(v).map_err(|e| EvidenceJsonError::Shape {
        tee: "tdx",
        detail: e.to_string(),
    })?;
    let quote = Base64::decode_vec(&wire.quote)
        .map_err(|_| EvidenceJsonError::Base64 { field: "quote" })?;
    let cc_eventlog = match wire.cc_eventlog.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            Base64::decode_vec(s).map_err(|_| EvidenceJsonError::Base64 {
                field: "cc_eventlog",
            })?,
        ),
    };
    Ok(ParsedTdxEvidence { quote, cc_eventlog })
}
