//! Evidence verifiers, one per TEE, behind a small trait. The defaults verify the test TEEs
//! `sample` (the primary evidence) and `sampledevice` (an additional device); [`SnpVerifier`]
//! and [`TdxVerifier`] verify SEV-SNP and TDX evidence against configured trust anchors (for
//! instance the deterministic roots of `firmware_glue::sim`, see [`Verifiers::with_sim_roots`]);
//! a TEE without a verifier fails attestation.
//!
//! A verifier plays the part of Trustee's verifier *and* of the attestation-service policy
//! that turns claims into an EAR appraisal (status and trustworthiness vector).

use crate::rcar::Tee;
pub use crate::snp::{SnpPolicy, SnpRoots, SnpVerifier};
pub use crate::tdx::{TdxPolicy, TdxVerifier};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// What the evidence must be bound to.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// SHA-384 of the canonical runtime data (48 bytes). SNP and TDX carry it as REPORT_DATA
    /// zero-padded to 64 bytes; the sample evidence carries exactly these 48 bytes.
    pub report_data: &'a [u8],
    /// The digest of the init-data body, when init-data was sent (SNP HOST_DATA, TDX MRCONFIGID).
    pub init_data_digest: Option<&'a [u8]>,
}

/// EAR `ear.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarStatus {
    /// `none`
    None,
    /// `affirming`
    Affirming,
    /// `warning`
    Warning,
    /// `contraindicated`
    Contraindicated,
}

impl EarStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            EarStatus::None => "none",
            EarStatus::Affirming => "affirming",
            EarStatus::Warning => "warning",
            EarStatus::Contraindicated => "contraindicated",
        }
    }
}

/// EAR `ear.trustworthiness-vector` (AR4SI claims, serialized in Trustee's order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs, reason = "the AR4SI claim names")]
pub struct TrustVector {
    pub instance_identity: i8,
    pub configuration: i8,
    pub executables: i8,
    pub file_system: i8,
    pub hardware: i8,
    pub runtime_opaque: i8,
    pub storage_opaque: i8,
    pub sourced_data: i8,
}

/// The outcome of a successful verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Appraisal {
    /// The submodule class: `cpu` for the primary evidence, `gpu` etc. for devices.
    pub class: &'static str,
    /// The TEE's claims. As Trustee's EAR broker does, a `report_data` claim and an
    /// `init_data` claim are moved out of this object to the top of the annotated evidence.
    pub claims: Map<String, Value>,
    /// `ear.status`.
    pub status: EarStatus,
    /// `ear.trustworthiness-vector`.
    pub trust_vector: TrustVector,
    /// Remarks for the KBS log line of a successful attestation (never sent), e.g. "no event
    /// log replayed".
    pub notes: Vec<String>,
}

/// Verifies one TEE's evidence. The error is a reason for the server log (never sent).
pub trait Verifier: Send + Sync {
    /// Checks `evidence` and its binding to `expected`.
    fn verify(&self, evidence: &Value, expected: &Expected<'_>) -> Result<Appraisal, String>;
}

/// The verifiers by TEE. A TEE without one fails attestation.
#[derive(Clone)]
pub struct Verifiers(HashMap<Tee, Arc<dyn Verifier>>);

impl Verifiers {
    /// No verifier at all: every attestation fails.
    pub fn empty() -> Self {
        Verifiers(HashMap::new())
    }

    /// Adds or replaces the verifier for `tee`.
    pub fn insert(&mut self, tee: Tee, verifier: impl Verifier + 'static) -> &mut Self {
        self.0.insert(tee, Arc::new(verifier));
        self
    }

    /// The defaults (`sample`, `sampledevice`) plus [`Verifiers::with_sim_roots`]`(seed)`.
    pub fn sim(seed: &[u8]) -> Self {
        let mut v = Verifiers::default();
        v.with_sim_roots(seed);
        v
    }

    /// Adds `snp` and `tdx` verifiers trusting the roots `firmware_glue::sim` derives from
    /// `seed`, with default (accept-any-measurement) policies.
    pub fn with_sim_roots(&mut self, seed: &[u8]) -> &mut Self {
        self.insert(
            Tee::Snp,
            SnpVerifier::from_sim_seed(seed, SnpPolicy::default()),
        );
        self.insert(
            Tee::Tdx,
            TdxVerifier::from_sim_seed(seed, TdxPolicy::default()),
        );
        self
    }

    pub(crate) fn get(&self, tee: Tee) -> Option<&Arc<dyn Verifier>> {
        self.0.get(&tee)
    }
}

/// `sample` and `sampledevice`, with the appraisals the recorded server gave them.
impl Default for Verifiers {
    fn default() -> Self {
        let mut v = Verifiers::empty();
        v.insert(Tee::Sample, SampleVerifier::default());
        v.insert(Tee::SampleDevice, SampleDeviceVerifier::default());
        v
    }
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut tees: Vec<&str> = self.0.keys().map(|t| t.name()).collect();
        tees.sort_unstable();
        f.debug_tuple("Verifiers").field(&tees).finish()
    }
}

/// The sample evidence: `{"svn": string, "report_data": base64 standard}`.
#[derive(Deserialize)]
struct SampleEvidence {
    svn: String,
    #[serde(default)]
    report_data: String,
}

fn check_sample(evidence: &Value, expected: &Expected<'_>) -> Result<SampleEvidence, String> {
    let ev = SampleEvidence::deserialize(evidence)
        .map_err(|e| format!("Deserialize Quote failed: {e}"))?;
    let report_data = sealgate_core::b64::std_decode(&ev.report_data)
        .map_err(|_| "base64 decode report data for sample evidence failed".to_owned())?;
    if report_data != expected.report_data {
        return Err("REPORT_DATA is different from that in Sample Quote".into());
    }
    Ok(ev)
}

/// Trustee's `sample` verifier: `report_data` must decode to exactly the 48-byte binding
/// digest; init-data is not checked, only reported. Claims as upstream.
#[derive(Debug, Clone, Copy)]
pub struct SampleVerifier {
    /// The status it appraises to (default `affirming`, as on the recorded server).
    pub status: EarStatus,
    /// The vector it appraises to (default: the recorded one, configuration 2, executables 3, hardware 2).
    pub trust_vector: TrustVector,
}

impl Default for SampleVerifier {
    fn default() -> Self {
        SampleVerifier {
            status: EarStatus::Affirming,
            trust_vector: TrustVector {
                configuration: 2,
                executables: 3,
                hardware: 2,
                ..TrustVector::default()
            },
        }
    }
}

impl Verifier for SampleVerifier {
    fn verify(&self, evidence: &Value, expected: &Expected<'_>) -> Result<Appraisal, String> {
        let ev = check_sample(evidence, expected)?;
        let mut claims = Map::new();
        claims.insert("debug".into(), json!(false));
        claims.insert("launch_digest".into(), json!("abcde"));
        claims.insert("platform_version".into(), json!({"major": 1, "minor": 4}));
        claims.insert("report_data".into(), json!(ev.report_data));
        claims.insert("svn".into(), json!(ev.svn));
        if let Some(digest) = expected.init_data_digest {
            claims.insert(
                "init_data".into(),
                json!(sealgate_core::b64::std_encode(digest)),
            );
        }
        Ok(Appraisal {
            class: "cpu",
            claims,
            status: self.status,
            trust_vector: self.trust_vector,
            notes: Vec::new(),
        })
    }
}

/// Trustee's `sampledevice` verifier (an additional device, class `gpu`): same check as
/// `sample`, but against the device binding `{nonce, tee-pubkey}` without `additional-evidence`.
#[derive(Debug, Clone, Copy)]
pub struct SampleDeviceVerifier {
    /// Default `contraindicated`, as recorded.
    pub status: EarStatus,
    /// Default: the recorded one (configuration 36, executables 33, hardware 97).
    pub trust_vector: TrustVector,
}

impl Default for SampleDeviceVerifier {
    fn default() -> Self {
        SampleDeviceVerifier {
            status: EarStatus::Contraindicated,
            trust_vector: TrustVector {
                configuration: 36,
                executables: 33,
                hardware: 97,
                ..TrustVector::default()
            },
        }
    }
}

impl Verifier for SampleDeviceVerifier {
    fn verify(&self, evidence: &Value, expected: &Expected<'_>) -> Result<Appraisal, String> {
        let ev = check_sample(evidence, expected)?;
        let mut claims = Map::new();
        claims.insert("report_data".into(), json!(ev.report_data));
        claims.insert("svn".into(), json!(ev.svn));
        Ok(Appraisal {
            class: "gpu",
            claims,
            status: self.status,
            trust_vector: self.trust_vector,
            notes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_checks_the_exact_digest() {
        let digest = [7u8; 48];
        let expected = Expected {
            report_data: &digest,
            init_data_digest: None,
        };
        let good = json!({"svn": "1", "report_data": sealgate_core::b64::std_encode(&digest)});
        let appraisal = SampleVerifier::default()
            .verify(&good, &expected)
            .expect("binds");
        assert_eq!(appraisal.claims["svn"], "1");
        assert_eq!(appraisal.status, EarStatus::Affirming);

        let mut padded = digest.to_vec();
        padded.resize(64, 0);
        for bad in [
            json!({"svn": "1", "report_data": sealgate_core::b64::std_encode(&padded)}),
            json!({"svn": 1, "report_data": sealgate_core::b64::std_encode(&digest)}),
            json!({"svn": "1"}),
            json!("a string"),
        ] {
            assert!(
                SampleVerifier::default().verify(&bad, &expected).is_err(),
                "{bad}"
            );
        }
    }
}
