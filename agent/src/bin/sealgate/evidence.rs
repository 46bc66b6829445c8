//! Evidence for the attestation: which TEE, and its primary evidence object for a given
//! binding digest.

use crate::run::Failure;
use crate::warn;
use sealgate::config::TeeChoice;
use sealgate::initdata::InitData;
use sealgate::rcar::{SampleEvidence, Tee};
use serde_json::Value;

/// The source of evidence for this run.
pub enum Attester {
    /// The sample TEE: no hardware, proves nothing (tests and demos).
    Sample,
}

impl Attester {
    /// The attester the configuration asks for. `auto` never falls back to sample.
    pub fn from_config(choice: TeeChoice) -> Result<Attester, Failure> {
        match choice {
            TeeChoice::Sample => {
                warn!("using the sample TEE: the KBS learns nothing trustworthy about this machine");
                Ok(Attester::Sample)
            }
            TeeChoice::Auto | TeeChoice::Snp | TeeChoice::Tdx => Err(Failure(
                "no supported TEE found: SNP and TDX evidence are not available in this build; use --tee sample for tests".into(),
            )),
        }
    }

    /// The TEE name sent in `/auth`.
    pub fn tee(&self) -> Tee {
        match self {
            Attester::Sample => Tee::Sample,
        }
    }

    /// Checks that the TEE was launched with this init-data (HOST_DATA / MRCONFIGID).
    /// The sample TEE has nowhere to bind it, so there is nothing to check.
    pub fn check_init_data(&mut self, _init_data: &InitData) -> Result<(), Failure> {
        match self {
            Attester::Sample => Ok(()),
        }
    }

    /// The primary evidence binding `digest`.
    pub fn evidence(&mut self, digest: &[u8]) -> Result<Value, String> {
        match self {
            Attester::Sample => {
                serde_json::to_value(SampleEvidence::new(digest)).map_err(|e| e.to_string())
            }
        }
    }
}
