//! Evidence for the attestation: which TEE, and its primary evidence object for a given
//! binding digest.

use sealgate::rcar::{SampleEvidence, Tee};
use serde_json::Value;

/// The source of evidence for this run.
pub enum Attester {
    /// The sample TEE: no hardware, proves nothing (tests and demos).
    Sample,
}

impl Attester {
    /// The TEE name sent in `/auth`.
    pub fn tee(&self) -> Tee {
        match self {
            Attester::Sample => Tee::Sample,
        }
    }

    /// The primary evidence binding `digest`.
    pub fn evidence(&mut self, digest: &[u8]) -> Result<Value, String> {
        match self {
            Attester::Sample => serde_json::to_value(SampleEvidence::new(digest)).map_err(|e| e.to_string()),
        }
    }
}
