//! The RCAR wire messages as Trustee deserializes them (kbs-types 0.18 shapes), the
//! `=0.4.0` version rule, and the runtime-data binding digest (protocol notes §1–§4).
//!
//! The message structs are deserialized with serde derive, like Trustee's, so the edge cases
//! follow for free: unknown fields are ignored, duplicate fields and missing required fields
//! are errors, `init-data` may be absent or `null`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha384};
use std::fmt;

/// A TEE wire name (kbs-types `Tee`), matched case-sensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tee {
    /// `az-snp-vtpm`
    #[serde(rename = "az-snp-vtpm")]
    AzSnpVtpm,
    /// `az-tdx-vtpm`
    #[serde(rename = "az-tdx-vtpm")]
    AzTdxVtpm,
    /// `nvidia` (additional device)
    #[serde(rename = "nvidia")]
    Nvidia,
    /// `sgx`
    #[serde(rename = "sgx")]
    Sgx,
    /// `snp`
    #[serde(rename = "snp")]
    Snp,
    /// `tdx`
    #[serde(rename = "tdx")]
    Tdx,
    /// `cca`
    #[serde(rename = "cca")]
    Cca,
    /// `csv`
    #[serde(rename = "csv")]
    Csv,
    /// `se`
    #[serde(rename = "se")]
    Se,
    /// `hygondcu`
    #[serde(rename = "hygondcu")]
    HygonDcu,
    /// `nvidia-dpu` (`nvidiadpu` is accepted too)
    #[serde(rename = "nvidia-dpu", alias = "nvidiadpu")]
    NvidiaDpu,
    /// `tpm`
    #[serde(rename = "tpm")]
    Tpm,
    /// `sample` (test only)
    #[serde(rename = "sample")]
    Sample,
    /// `sampledevice` (test only, additional device)
    #[serde(rename = "sampledevice")]
    SampleDevice,
}

impl Tee {
    /// Every TEE, in kbs-types order.
    pub const ALL: [Tee; 14] = [
        Tee::AzSnpVtpm,
        Tee::AzTdxVtpm,
        Tee::Nvidia,
        Tee::Sgx,
        Tee::Snp,
        Tee::Tdx,
        Tee::Cca,
        Tee::Csv,
        Tee::Se,
        Tee::HygonDcu,
        Tee::NvidiaDpu,
        Tee::Tpm,
        Tee::Sample,
        Tee::SampleDevice,
    ];

    /// The canonical wire name.
    pub fn name(self) -> &'static str {
        match self {
            Tee::AzSnpVtpm => "az-snp-vtpm",
            Tee::AzTdxVtpm => "az-tdx-vtpm",
            Tee::Nvidia => "nvidia",
            Tee::Sgx => "sgx",
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
            Tee::Cca => "cca",
            Tee::Csv => "csv",
            Tee::Se => "se",
            Tee::HygonDcu => "hygondcu",
            Tee::NvidiaDpu => "nvidia-dpu",
            Tee::Tpm => "tpm",
            Tee::Sample => "sample",
            Tee::SampleDevice => "sampledevice",
        }
    }

    /// Parses a wire name exactly as the deserializer does (including the `nvidiadpu` alias).
    pub fn from_name(name: &str) -> Option<Tee> {
        serde_json::from_value(Value::String(name.to_owned())).ok()
    }
}

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `POST /kbs/v0/auth` body.
#[derive(Debug, Deserialize)]
pub(crate) struct Request {
    pub version: String,
    pub tee: Tee,
    #[serde(rename = "extra-params")]
    #[allow(
        dead_code,
        reason = "required on the wire, ignored (except by se/ITA upstream)"
    )]
    pub extra_params: Value,
}

/// The tee-pubkey JWK, reduced to the members Trustee keeps (kbs-types `TeePubKey`):
/// re-serializing it drops everything else (`kid`, `use`, ...), which is what the binding hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub(crate) enum TeePubKey {
    #[serde(rename = "RSA")]
    Rsa { alg: String, n: String, e: String },
    #[serde(rename = "EC")]
    Ec {
        crv: String,
        alg: String,
        x: String,
        y: String,
    },
    #[serde(rename = "AKP")]
    Akp {
        alg: String,
        #[serde(rename = "pub")]
        public: String,
    },
}

impl TeePubKey {
    pub(crate) fn to_value(&self) -> Value {
        // Serializing plain strings into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `init-data` (only `format = "toml"` is accepted later, at verification).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InitData {
    pub format: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RuntimeData {
    pub nonce: String,
    #[serde(rename = "tee-pubkey")]
    pub tee_pubkey: TeePubKey,
}

/// Note the snake_case member names inside the kebab-case message.
#[derive(Debug, Deserialize)]
pub(crate) struct CompositeEvidence {
    pub primary_evidence: Value,
    pub additional_evidence: String,
}

/// `POST /kbs/v0/attest` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Attestation {
    pub init_data: Option<InitData>,
    pub runtime_data: RuntimeData,
    pub tee_evidence: CompositeEvidence,
}

/// Why `/auth` failed: the text Trustee puts after "RCAR handshake Auth failed: ".
pub(crate) fn check_request(body: &[u8]) -> Result<Request, String> {
    let request: Request =
        serde_json::from_slice(body).map_err(|_| "deserialize Request".to_owned())?;
    let version =
        SemVer::parse(&request.version).ok_or_else(|| "failed to parse KBS version".to_owned())?;
    if version.core != (0, 4, 0) || version.pre_release {
        return Err(format!(
            "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is {}",
            request.version
        ));
    }
    Ok(request)
}

/// The parts of a SemVer 2.0 version that `=0.4.0` looks at, parsed with the `semver` crate's
/// rules: no leading zeros in numeric identifiers, non-empty `[0-9A-Za-z-]` identifiers,
/// build metadata ignored, nothing else allowed (no `v`, no spaces, no missing patch).
struct SemVer {
    core: (u64, u64, u64),
    pre_release: bool,
}

impl SemVer {
    fn parse(text: &str) -> Option<SemVer> {
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut numbers = core.split('.').map(numeric_identifier);
        let (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) = (
            numbers.next(),
            numbers.next(),
            numbers.next(),
            numbers.next(),
        ) else {
            return None;
        };
        if let Some(pre) = pre {
            let valid = pre.split('.').all(|id| {
                is_identifier(id)
                    && !(id.len() > 1
                        && id.starts_with('0')
                        && id.bytes().all(|b| b.is_ascii_digit()))
            });
            if !valid {
                return None;
            }
        }
        if let Some(build) = build
            && !build.split('.').all(is_identifier)
        {
            return None;
        }
        Some(SemVer {
            core: (major, minor, patch),
            pre_release: pre.is_some(),
        })
    }
}

fn numeric_identifier(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The runtime data object Trustee builds for the primary evidence (`additional_evidence`
/// given) or for additional devices (`None`): `{tee-pubkey, nonce[, additional-evidence]}`.
pub(crate) fn runtime_data(
    tee_pubkey: &TeePubKey,
    nonce: &str,
    additional_evidence: Option<&str>,
) -> Value {
    let mut value = json!({ "tee-pubkey": tee_pubkey.to_value(), "nonce": nonce });
    if let (Some(extra), Value::Object(map)) = (additional_evidence, &mut value) {
        map.insert(
            "additional-evidence".into(),
            Value::String(extra.to_owned()),
        );
    }
    value
}

/// SHA-384 over the RFC 8785 canonical JSON of `runtime_data` (the hash is fixed to SHA-384
/// on the server for every TEE but `se`).
pub(crate) fn binding_digest(runtime_data: &Value) -> [u8; 48] {
    Sha384::digest(sealgate_core::jcs::to_string(runtime_data).as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_verdict(v: &str) -> Result<(), String> {
        let body = json!({"version": v, "tee": "sample", "extra-params": {}}).to_string();
        check_request(body.as_bytes()).map(|_| ())
    }

    #[test]
    fn version_rule_is_exact_0_4_0() {
        for ok in ["0.4.0", "0.4.0+abc", "0.4.0+build.01.x-y"] {
            assert_eq!(version_verdict(ok), Ok(()), "{ok}");
        }
        for mismatch in ["0.4.0-rc.1", "0.4.1", "0.3.0", "0.1.1", "1.0.0", "0.4.0-0"] {
            assert_eq!(
                version_verdict(mismatch),
                Err(format!(
                    "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is {mismatch}"
                )),
            );
        }
        for unparsable in [
            "0.4",
            "v0.4.0",
            "",
            " 0.4.0",
            "0.4.0 ",
            "00.4.0",
            "0.04.0",
            "0.4.0-",
            "0.4.0+",
            "0.4.0-01",
            "0.4.0-a..b",
            "0.4.0.0",
            "0.4.0-ä",
            "18446744073709551616.0.0",
        ] {
            assert_eq!(
                version_verdict(unparsable),
                Err("failed to parse KBS version".into()),
                "{unparsable:?}"
            );
        }
    }

    #[test]
    fn request_body_errors() {
        let bad = [
            &br#"{"version":"0.4.0","tee":"SNP","extra-params":{}}"#[..],
            br#"{"version":"0.4.0","tee":"azsnpvtpm","extra-params":{}}"#,
            br#"{"version":"0.4.0","tee":"sev","extra-params":{}}"#,
            br#"{"version":"0.4.0","tee":"sample"}"#,
            br#"{"version":0.4,"tee":"sample","extra-params":{}}"#,
            b"not json",
            b"",
        ];
        for body in bad {
            assert_eq!(
                check_request(body).map(|_| ()),
                Err("deserialize Request".into()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let ok = br#"{"version":"0.4.0","tee":"nvidiadpu","extra-params":"","unknown":1}"#;
        assert_eq!(check_request(ok).map(|r| r.tee), Ok(Tee::NvidiaDpu));
    }

    #[test]
    fn tee_names_round_trip() {
        for tee in Tee::ALL {
            assert_eq!(Tee::from_name(tee.name()), Some(tee));
        }
        assert_eq!(Tee::from_name("nvidiadpu"), Some(Tee::NvidiaDpu));
        assert_eq!(Tee::from_name("Sample"), None);
    }

    #[test]
    fn binding_matches_the_worked_example() {
        // Protocol notes §4.1.
        let key = TeePubKey::Ec {
            crv: "P-256".into(),
            alg: "ECDH-ES+A256KW".into(),
            x: "b_A7lJJBzh2t1DUZ5pYOCoW0GmmgXDKBA6orzhWUyhY".into(),
            y: "PE91OlW_AdxT9sCwx-7ni0DG_30lqW4igrmJzvccFEo".into(),
        };
        let rd = runtime_data(
            &key,
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            Some(""),
        );
        assert_eq!(
            sealgate_core::jcs::to_string(&rd),
            r#"{"additional-evidence":"","nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"b_A7lJJBzh2t1DUZ5pYOCoW0GmmgXDKBA6orzhWUyhY","y":"PE91OlW_AdxT9sCwx-7ni0DG_30lqW4igrmJzvccFEo"}}"#
        );
        assert_eq!(
            sealgate_core::b64::std_encode(&binding_digest(&rd)),
            "FJe0AynBBkcZt2VCpN4Kln3cRZjFlVFy1gVb8RSbtXdn+9iv7pEyJEHXO2gBPr8y"
        );
    }

    /// Every recorded case of `jcs-cases.json`, including the device binding (no
    /// `additional-evidence` member) of the sampledevice case.
    #[test]
    fn binding_matches_recorded_jcs_cases() {
        let path = format!(
            "{}/../vectors/trustee/jcs-cases.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for case in cases["cases"].as_array().unwrap() {
            let obj = &case["hashed_object"];
            let key: TeePubKey = serde_json::from_value(obj["tee-pubkey"].clone()).unwrap();
            let nonce = obj["nonce"].as_str().unwrap();
            let rd = runtime_data(&key, nonce, obj["additional-evidence"].as_str());
            assert_eq!(
                sealgate_core::jcs::to_string(&rd),
                case["jcs"],
                "{}",
                case["name"]
            );
            assert_eq!(
                hex(&binding_digest(&rd)),
                case["sha384_hex"],
                "{}",
                case["name"]
            );
            if let Some(device) = case.get("device_binding") {
                let rd = runtime_data(&key, nonce, None);
                assert_eq!(sealgate_core::jcs::to_string(&rd), device["jcs"]);
                assert_eq!(hex(&binding_digest(&rd)), device["sha384_hex"]);
            }
        }
    }

    #[test]
    fn extra_jwk_members_are_dropped() {
        let body = br#"{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"AQ","e":"AQAB","kid":"x","use":"enc"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}"#;
        let att: Attestation = serde_json::from_slice(body).expect("parses");
        assert!(att.init_data.is_none());
        assert_eq!(
            att.runtime_data.tee_pubkey.to_value(),
            json!({"kty":"RSA","alg":"RSA-OAEP-256","n":"AQ","e":"AQAB"})
        );
    }
}
