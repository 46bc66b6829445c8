//! The `sealed.` + JWS compact wrapper: parse, verify (ES256), unverified decode, seal.

use alloc::string::String;
use alloc::vec::Vec;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::{Signer, Verifier};
use serde_json::Value;

use super::error::{Part, SealedError};
use super::jwk::{PublicJwk, SigningJwk, json_string};
use super::payload::Secret;
use super::{KeySource, MAX_SEALED_LEN, PREFIX, key_source};
use crate::b64;

/// A structurally valid, not yet verified sealed secret.
///
/// Obtain the verification key named by [`kid`](Self::kid) (see
/// [`key_source`](Self::key_source)), then call [`verify`](Self::verify) to get the payload.
#[derive(Clone)]
pub struct SealedSecret {
    alg: String,
    kid: String,
    /// `header_b64 + "." + payload_b64`, exactly as received.
    signing_input: String,
    payload: Vec<u8>,
    signature: Signature,
}

impl core::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl SealedSecret {
    /// Parses a sealed secret for verification, as upstream CDH does with verification on:
    /// every leading `sealed.` is stripped, the rest must be a 3-part JWS compact
    /// serialization (unpadded base64url) whose protected header is a JSON object with
    /// `alg` = `ES256` and a non-empty string `kid`; the signature must be a raw 64-byte
    /// `r||s` with both scalars in range. Nothing is trimmed: surrounding whitespace fails.
    pub fn parse(input: &[u8]) -> Result<Self, SealedError> {
        let text = checked_text(input)?;
        let mut rest = text;
        while let Some(stripped) = rest.strip_prefix(PREFIX) {
            rest = stripped;
        }
        let parts: Vec<&str> = rest.split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts[..] else {
            return Err(SealedError::PartCount {
                expected: 3,
                found: parts.len(),
            });
        };

        let header = b64::url_decode(header_b64).map_err(|_| SealedError::Base64(Part::Header))?;
        let header = match serde_json::from_slice::<Value>(&header) {
            Ok(Value::Object(header)) => header,
            _ => return Err(SealedError::HeaderNotJson),
        };
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(SealedError::MissingAlg)?;
        if alg != "ES256" {
            return Err(SealedError::UnsupportedAlg(alg.into()));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|kid| !kid.is_empty())
            .ok_or(SealedError::MissingKid)?;

        let payload =
            b64::url_decode(payload_b64).map_err(|_| SealedError::Base64(Part::Payload))?;
        if payload.is_empty() {
            return Err(SealedError::EmptyPayload);
        }
        let signature =
            b64::url_decode(signature_b64).map_err(|_| SealedError::Base64(Part::Signature))?;
        if signature.len() != 64 {
            return Err(SealedError::SignatureLength(signature.len()));
        }
        let signature =
            Signature::from_slice(&signature).map_err(|_| SealedError::SignatureScalars)?;

        Ok(SealedSecret {
            alg: alg.into(),
            kid: kid.into(),
            signing_input: String::from(&rest[..header_b64.len() + 1 + payload_b64.len()]),
            payload,
            signature,
        })
    }

    /// The protected header's `alg` (always `ES256` once parsed).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// The protected header's `kid`: a KBS resource URI or a local key name.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Where the verification key named by `kid` lives; rejects malformed or unsafe kids.
    pub fn key_source(&self) -> Result<KeySource<'_>, SealedError> {
        key_source(&self.kid)
    }

    /// Verifies the ES256 signature over `header_b64.payload_b64` with `key`, then
    /// decodes and checks the payload.
    pub fn verify(&self, key: &PublicJwk) -> Result<Secret, SealedError> {
        key.verifying_key()
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| SealedError::BadSignature)?;
        Secret::from_json(&self.payload)
    }

    /// Decodes the payload **without** checking the signature. For display only (such as
    /// `sealctl inspect` without a key); never act on the result.
    pub fn payload_unverified(&self) -> Result<Secret, SealedError> {
        Secret::from_json(&self.payload)
    }
}

/// Decodes a sealed secret **without verifying it**, as upstream CDH does when
/// `SKIP_SEALED_SECRET_VERIFICATION=true`: the whole string must split on `.` into exactly
/// four parts, the third is the payload; the first, the header and the signature are
/// ignored (so legacy secrets with fake headers and signatures decode). Use only when the
/// operator explicitly allowed unsigned secrets.
pub fn parse_unverified(input: &[u8]) -> Result<Secret, SealedError> {
    let text = checked_text(input)?;
    let parts: Vec<&str> = text.split('.').collect();
    let [_, _, payload_b64, _] = parts[..] else {
        return Err(SealedError::PartCount {
            expected: 4,
            found: parts.len(),
        });
    };
    let payload = b64::url_decode(payload_b64).map_err(|_| SealedError::Base64(Part::Payload))?;
    Secret::from_json(&payload)
}

/// Signs `secret` with ES256 and returns `sealed.<header>.<payload>.<signature>`, byte for
/// byte what upstream's `secret seal` prints for the same key, kid and secret: header
/// `{"b64":true,"alg":"ES256","kid":<kid>}`, payload [`Secret::to_json`], RFC 6979
/// deterministic signature. The kid must be one [`key_source`](super::key_source) accepts.
pub fn seal(secret: &Secret, key: &SigningJwk, kid: &str) -> Result<String, SealedError> {
    key_source(kid)?;
    let header = alloc::format!(r#"{{"b64":true,"alg":"ES256","kid":{}}}"#, json_string(kid));
    let mut out = String::from(PREFIX);
    out.push_str(&b64::url_encode(header.as_bytes()));
    out.push('.');
    out.push_str(&b64::url_encode(secret.to_json().as_bytes()));
    let signature: Signature = key
        .signing_key()
        .try_sign(&out.as_bytes()[PREFIX.len()..])
        .map_err(|_| SealedError::SigningFailed)?;
    out.push('.');
    out.push_str(&b64::url_encode(&signature.to_bytes()));
    if out.len() > MAX_SEALED_LEN {
        return Err(SealedError::TooLarge { len: out.len() });
    }
    Ok(out)
}

fn checked_text(input: &[u8]) -> Result<&str, SealedError> {
    if input.len() > MAX_SEALED_LEN {
        return Err(SealedError::TooLarge { len: input.len() });
    }
    core::str::from_utf8(input).map_err(|_| SealedError::NotUtf8)
}
