//! The attestation token: an EAR JWT (draft-ietf-rats-ear) shaped like the one Trustee's
//! built-in attestation service issues, signed ES256 by a P-256 key generated at start-up.
//!
//! Header `{"typ":"JWT","alg":"ES256","jwk":{"alg":"ES256","kty":"EC","crv":"P-256","x":..,"y":..}}`;
//! claims `eat_profile, iat, ear.verifier-id, submods{cpu0[, gpu0..]}, exp, iss` in that order.
//! Each submodule holds `ear.status`, `ear.trustworthiness-vector`, `ear.appraisal-policy-id` and
//! `ear.veraison.annotated-evidence` = `{<tee>: claims, report_data, runtime_data_claims[, init_data, init_data_claims]}`
//! (sorted keys, as Trustee emits them); `cpu0` also carries `ear.trustee.identifiers`.

use crate::rng;
use crate::verifier::{Appraisal, TrustVector};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use sealgate_core::b64;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// One verified piece of evidence, ready to become a submodule.
pub(crate) struct Submodule {
    pub tee: &'static str,
    pub appraisal: Appraisal,
    /// The runtime data object the evidence was bound to.
    pub runtime_data: Value,
    /// `init_data_claims`, when init-data was sent with this evidence.
    pub init_data_claims: Option<Value>,
}

impl Submodule {
    /// `ear.veraison.annotated-evidence`, built the way Trustee's EAR broker builds it.
    fn annotated_evidence(&self) -> Value {
        let mut tee_claims = self.appraisal.claims.clone();
        let mut out = Map::new();
        if let Some(init_data) = tee_claims.remove("init_data") {
            out.insert("init_data".into(), init_data);
            out.insert(
                "init_data_claims".into(),
                self.init_data_claims.clone().unwrap_or(Value::Null),
            );
        }
        if let Some(report_data) = tee_claims.remove("report_data") {
            out.insert("report_data".into(), report_data);
            out.insert("runtime_data_claims".into(), self.runtime_data.clone());
        }
        out.insert(self.tee.into(), Value::Object(tee_claims));
        let mut evidence = Value::Object(out);
        // Trustee emits it with sorted keys; so does serde_json's default map, but not when
        // `preserve_order` is switched on somewhere in the build.
        evidence.sort_all_objects();
        evidence
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    eat_profile: &'static str,
    iat: u64,
    #[serde(rename = "ear.verifier-id")]
    verifier_id: VerifierId,
    submods: BTreeMap<String, SubmodClaims<'a>>,
    exp: u64,
    iss: &'static str,
}

#[derive(Serialize)]
struct VerifierId {
    developer: &'static str,
    build: &'static str,
}

#[derive(Serialize)]
struct SubmodClaims<'a> {
    #[serde(rename = "ear.status")]
    status: &'static str,
    #[serde(rename = "ear.trustworthiness-vector")]
    trust_vector: &'a TrustVector,
    #[serde(rename = "ear.appraisal-policy-id")]
    policy_id: &'static str,
    #[serde(rename = "ear.veraison.annotated-evidence")]
    annotated_evidence: Value,
    #[serde(
        rename = "ear.trustee.identifiers",
        skip_serializing_if = "Option::is_none"
    )]
    identifiers: Option<Value>,
}

/// Issues and verifies tokens with one ephemeral P-256 key.
pub(crate) struct TokenService {
    key: SigningKey,
    header_b64: String,
    lifetime: Duration,
    leeway: Duration,
}

/// A token that failed verification (the reason is for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenError(pub &'static str);

impl TokenService {
    pub(crate) fn new(lifetime: Duration, leeway: Duration) -> Self {
        let key = SigningKey::generate_from_rng(&mut rng::os_rng());
        let point = key.verifying_key().to_sec1_point(false);
        let coord = |c: Option<&[u8]>| b64::url_encode(c.unwrap_or_default());
        let header = format!(
            r#"{{"typ":"JWT","alg":"ES256","jwk":{{"alg":"ES256","kty":"EC","crv":"P-256","x":"{}","y":"{}"}}}}"#,
            coord(point.x().map(|a| a.as_slice())),
            coord(point.y().map(|a| a.as_slice())),
        );
        TokenService {
            key,
            header_b64: b64::url_encode(header.as_bytes()),
            lifetime,
            leeway,
        }
    }

    /// Signs a token for `submodules` (the first one becomes `cpu0`). With `expired`, the
    /// token's `exp` lies an hour in the past (fault injection).
    pub(crate) fn issue(&self, submodules: &[Submodule], now: SystemTime, expired: bool) -> String {
        let iat = crate::httpdate::unix_seconds(now);
        let exp = if expired {
            iat.saturating_sub(3600)
        } else {
            iat + self.lifetime.as_secs()
        };
        let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
        let mut submods = BTreeMap::new();
        for (i, sub) in submodules.iter().enumerate() {
            let index = per_class.entry(sub.appraisal.class).or_default();
            let name = format!("{}{}", sub.appraisal.class, index);
            *index += 1;
            submods.insert(
                name,
                SubmodClaims {
                    status: sub.appraisal.status.as_str(),
                    trust_vector: &sub.appraisal.trust_vector,
                    policy_id: "default",
                    annotated_evidence: sub.annotated_evidence(),
                    identifiers: (i == 0).then(|| json!({"validated": {}})),
                },
            );
        }
        let claims = Claims {
            eat_profile: "tag:github.com,2024:confidential-containers/Trustee",
            iat,
            verifier_id: VerifierId {
                developer: "https://confidentialcontainers.org",
                build: "attestation-service 0.1.0",
            },
            submods,
            exp,
            iss: "CoCo-Attestation-Service",
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!("{}.{}", self.header_b64, b64::url_encode(&payload));
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64::url_encode(&signature.to_bytes()))
    }

    /// Verifies signature (ES256, this server's key only), and `exp` with the leeway
    /// (jsonwebtoken's default is 60 s); returns the claims.
    pub(crate) fn verify(&self, token: &str, now: SystemTime) -> Result<Value, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError("not a JWS compact serialization"));
        };
        let header: Value = b64::url_decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError("bad header"))?;
        if header.get("alg") != Some(&json!("ES256")) {
            return Err(TokenError("alg is not ES256"));
        }
        let signature = b64::url_decode(signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or(TokenError("bad signature encoding"))?;
        let signing_input = &token[..header_len(token)];
        self.key
            .verifying_key()
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError("signature does not verify"))?;
        let claims: Value = b64::url_decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .filter(Value::is_object)
            .ok_or(TokenError("bad claims"))?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or(TokenError("no exp claim"))?;
        let now = crate::httpdate::unix_seconds(now) as f64;
        if exp < now - self.leeway.as_secs_f64() {
            return Err(TokenError("expired"));
        }
        Ok(claims)
    }
}

/// Length of `header.payload` in a token known to have exactly two dots.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::{EarStatus, SampleVerifier};

    fn submodule() -> Submodule {
        let mut claims = Map::new();
        claims.insert("svn".into(), json!("1"));
        claims.insert("report_data".into(), json!("cmQ="));
        Submodule {
            tee: "sample",
            appraisal: Appraisal {
                class: "cpu",
                claims,
                status: EarStatus::Affirming,
                trust_vector: SampleVerifier::default().trust_vector,
                notes: Vec::new(),
            },
            runtime_data: json!({"nonce": "n"}),
            init_data_claims: None,
        }
    }

    #[test]
    fn issues_verifiable_tokens_shaped_like_trustee() {
        let svc = TokenService::new(Duration::from_secs(300), Duration::from_secs(60));
        let now = SystemTime::now();
        let token = svc.issue(&[submodule()], now, false);
        let claims = svc.verify(&token, now).expect("verifies");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        let payload = b64::url_decode(token.split('.').nth(1).unwrap()).unwrap();
        let text = String::from_utf8(payload).unwrap();
        assert!(text.starts_with(
            r#"{"eat_profile":"tag:github.com,2024:confidential-containers/Trustee","iat":"#
        ));
        assert!(text.contains(r#""submods":{"cpu0":{"ear.status":"affirming","ear.trustworthiness-vector":{"instance-identity":0,"configuration":2,"executables":3,"file-system":0,"hardware":2,"runtime-opaque":0,"storage-opaque":0,"sourced-data":0},"ear.appraisal-policy-id":"default","ear.veraison.annotated-evidence":{"report_data":"cmQ=","runtime_data_claims":{"nonce":"n"},"sample":{"svn":"1"}},"ear.trustee.identifiers":{"validated":{}}}},"exp":"#));
        assert!(text.ends_with(r#","iss":"CoCo-Attestation-Service"}"#));
    }

    #[test]
    fn rejects_tampering_expiry_and_foreign_keys() {
        let svc = TokenService::new(Duration::from_secs(300), Duration::from_secs(60));
        let now = SystemTime::now();
        let token = svc.issue(&[submodule()], now, false);
        let later = now + Duration::from_secs(300 + 61);
        assert_eq!(svc.verify(&token, later), Err(TokenError("expired")));
        assert!(svc.verify(&token, now + Duration::from_secs(359)).is_ok());
        let expired = svc.issue(&[submodule()], now, true);
        assert_eq!(svc.verify(&expired, now), Err(TokenError("expired")));
        let other = TokenService::new(Duration::from_secs(300), Duration::from_secs(60));
        assert!(other.verify(&token, now).is_err());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'A');
        assert!(svc.verify(&tampered, now).is_err());
        for junk in ["", "a.b", "a.b.c.d", "..", "\u{00e9}.\u{00e9}.\u{00e9}"] {
            assert!(svc.verify(junk, now).is_err());
        }
    }
}
