//! The RCAR handshake of the Trustee KBS, protocol 0.4.0, as the current Trustee code
//! speaks it (`../shared/reference/kbs-protocol.md`):
//!
//! ```text
//! POST /kbs/v0/auth    Request      -> Challenge {nonce, extra-params} + kbs-session-id cookie
//! POST /kbs/v0/attest  Attestation  -> {"token": "<EAR JWT>"}
//! GET  /kbs/v0/<plugin>/<path>      -> JWE encrypted to the tee key
//! ```
//!
//! This module is transport-agnostic: it builds request bodies and interprets statuses
//! and bodies; [`crate::kbs`] strings the steps together.

use crate::escape::escape;
use crate::jcs;
use crate::teekey::PublicJwk;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

/// The only protocol version Trustee accepts (`=0.4.0`).
pub const PROTOCOL_VERSION: &str = "0.4.0";

/// Upper bound for a challenge nonce (Trustee sends 44 characters).
pub const MAX_NONCE_LEN: usize = 1024;

/// Upper bound for an attestation token (an EAR JWT is a few KiB).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// TEE types as the KBS names them on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tee {
    /// The test-only sample TEE: no hardware, proves nothing.
    Sample,
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
}

impl Tee {
    /// The wire name (`sample`, `snp`, `tdx`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tee::Sample => "sample",
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
        }
    }

    /// Parses a wire name (case-sensitive, as the KBS is).
    pub fn parse(name: &str) -> Option<Tee> {
        match name {
            "sample" => Some(Tee::Sample),
            "snp" => Some(Tee::Snp),
            "tdx" => Some(Tee::Tdx),
            _ => None,
        }
    }
}

/// Hash algorithms for the runtime-data binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes), the default.
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgorithm {
    /// Parses `sha256`/`sha384`/`sha512` (already lower-cased).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Protocol errors: what the KBS sent could not be used. Never carries secret data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The challenge body is not `{"nonce": string, "extra-params": ...}`.
    BadChallenge(&'static str),
    /// The KBS selected a hash algorithm this client does not implement.
    UnsupportedHash(String),
    /// The attest response is not `{"token": "<JWT>"}` with a sane token.
    BadToken(&'static str),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadChallenge(why) => write!(f, "invalid challenge from the KBS: {why}"),
            Self::UnsupportedHash(h) => write!(
                f,
                "the KBS selected hash algorithm '{h}', which sealgate does not support"
            ),
            Self::BadToken(why) => write!(f, "invalid attestation token from the KBS: {why}"),
        }
    }
}

#[derive(Serialize)]
struct Request<'a> {
    version: &'a str,
    tee: &'a str,
    #[serde(rename = "extra-params")]
    extra_params: ExtraParams,
}

#[derive(Serialize)]
struct ExtraParams {
    #[serde(rename = "supported-hash-algorithms")]
    supported_hash_algorithms: [&'static str; 3],
}

/// The `/kbs/v0/auth` body: `{"version":"0.4.0","tee":..,"extra-params":{..}}`.
pub fn auth_body(tee: Tee) -> String {
    let req = Request {
        version: PROTOCOL_VERSION,
        tee: tee.as_str(),
        extra_params: ExtraParams {
            supported_hash_algorithms: ["sha256", "sha384", "sha512"],
        },
    };
    serde_json::to_string(&req).unwrap_or_default()
}

/// A parsed challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The nonce, an opaque string copied verbatim into the attestation.
    pub nonce: String,
    /// The binding hash: `extra-params.selected-hash-algorithm` if given, else SHA-384.
    pub hash: HashAlgorithm,
}

#[derive(Deserialize)]
struct ChallengeWire {
    nonce: String,
    #[serde(rename = "extra-params", default)]
    extra_params: Value,
}

/// Parses the `/auth` response body. `extra-params` may be a string (`""`, what Trustee
/// sends), null, absent, or an object with `selected-hash-algorithm`.
pub fn parse_challenge(body: &[u8]) -> Result<Challenge, ProtocolError> {
    let wire: ChallengeWire = serde_json::from_slice(body)
        .map_err(|_| ProtocolError::BadChallenge("not a JSON object with a string nonce"))?;
    if wire.nonce.is_empty() || wire.nonce.len() > MAX_NONCE_LEN {
        return Err(ProtocolError::BadChallenge("nonce is empty or too long"));
    }
    let hash = match wire.extra_params.get("selected-hash-algorithm") {
        Some(Value::String(name)) => {
            let lower = name.to_ascii_lowercase();
            // The KBS's string reaches the log: escaped and bounded.
            HashAlgorithm::parse(&lower)
                .ok_or_else(|| ProtocolError::UnsupportedHash(escape(&lower, 32)))?
        }
        _ => HashAlgorithm::Sha384,
    };
    Ok(Challenge {
        nonce: wire.nonce,
        hash,
    })
}

/// The object whose canonical JSON is hashed into the evidence (§4.1):
/// `{"additional-evidence": <string>, "nonce": <nonce>, "tee-pubkey": <JWK>}`.
pub fn runtime_data(nonce: &str, tee_pubkey: &PublicJwk, additional_evidence: &str) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(
        "tee-pubkey".to_string(),
        serde_json::to_value(tee_pubkey).unwrap_or(Value::Null),
    );
    map.insert("nonce".to_string(), Value::String(nonce.to_string()));
    map.insert(
        "additional-evidence".to_string(),
        Value::String(additional_evidence.to_string()),
    );
    Value::Object(map)
}

/// The binding digest: `hash(JCS(runtime_data))`. Sample evidence carries it raw;
/// SNP/TDX put it into their 64-byte REPORT_DATA followed by zeros.
pub fn binding_digest(
    challenge: &Challenge,
    tee_pubkey: &PublicJwk,
    additional_evidence: &str,
) -> Vec<u8> {
    let canonical = jcs::to_string(&runtime_data(
        &challenge.nonce,
        tee_pubkey,
        additional_evidence,
    ));
    challenge.hash.digest(canonical.as_bytes())
}

/// REPORT_DATA for hardware TEEs: the digest zero-padded (or truncated) to 64 bytes.
pub fn report_data_64(digest: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    let n = digest.len().min(64);
    out[..n].copy_from_slice(&digest[..n]);
    out
}

/// Evidence of the sample TEE: `{"svn":"1","report_data":"<base64 of the raw digest>"}`.
#[derive(Serialize, Debug)]
pub struct SampleEvidence {
    /// Always "1".
    pub svn: &'static str,
    /// Standard base64 of the binding digest, not padded to 64 bytes.
    pub report_data: String,
}

impl SampleEvidence {
    /// Sample evidence for a binding digest.
    pub fn new(digest: &[u8]) -> Self {
        SampleEvidence {
            svn: "1",
            report_data: crate::b64::std_encode(digest),
        }
    }
}

/// Init-data as sent in `/attest`.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct InitData<'a> {
    /// Always "toml" (the only format Trustee accepts).
    pub format: &'static str,
    /// The TOML text, exactly the bytes whose digest is in HOST_DATA/MRCONFIGID.
    pub body: &'a str,
}

#[derive(Serialize)]
struct Attestation<'a, E: Serialize> {
    #[serde(rename = "init-data")]
    init_data: Option<InitData<'a>>,
    #[serde(rename = "runtime-data")]
    runtime_data: RuntimeData<'a>,
    #[serde(rename = "tee-evidence")]
    tee_evidence: CompositeEvidence<'a, E>,
}

#[derive(Serialize)]
struct RuntimeData<'a> {
    nonce: &'a str,
    #[serde(rename = "tee-pubkey")]
    tee_pubkey: &'a PublicJwk,
}

#[derive(Serialize)]
struct CompositeEvidence<'a, E: Serialize> {
    primary_evidence: &'a E,
    additional_evidence: &'a str,
}

/// The `/kbs/v0/attest` body, field for field as the upstream client sends it.
pub fn attest_body<E: Serialize>(
    challenge: &Challenge,
    tee_pubkey: &PublicJwk,
    evidence: &E,
    additional_evidence: &str,
    init_data: Option<&str>,
) -> String {
    let body = Attestation {
        init_data: init_data.map(|body| InitData {
            format: "toml",
            body,
        }),
        runtime_data: RuntimeData {
            nonce: &challenge.nonce,
            tee_pubkey,
        },
        tee_evidence: CompositeEvidence {
            primary_evidence: evidence,
            additional_evidence,
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

#[derive(Deserialize)]
struct TokenWire {
    token: String,
}

/// Parses `{"token": "<JWT>"}`. The token is later sent in an `Authorization` header, so
/// it must be a compact JWS (base64url segments and dots only): anything else could
/// inject headers.
pub fn parse_token(body: &[u8]) -> Result<String, ProtocolError> {
    let wire: TokenWire = serde_json::from_slice(body)
        .map_err(|_| ProtocolError::BadToken("not a JSON object with a string token"))?;
    let t = wire.token;
    if t.is_empty() || t.len() > MAX_TOKEN_LEN {
        return Err(ProtocolError::BadToken("empty or too long"));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
    {
        return Err(ProtocolError::BadToken("not a compact JWT"));
    }
    if t.split('.').count() != 3 {
        return Err(ProtocolError::BadToken("not a compact JWT"));
    }
    Ok(t)
}

/// An RFC 7807-style KBS error body: `{"type": ".../errors/<Variant>", "detail": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KbsError {
    /// The variant name (last path segment of `type`), e.g. `PolicyDeny`.
    pub kind: String,
    /// The human-readable detail.
    pub detail: String,
}

impl KbsError {
    /// Parses an error body; `None` when it is not one (actix errors have plain bodies).
    /// Both strings are bounded and their control characters escaped
    /// ([`crate::escape`]), since they end up in sealgate's own messages and logs.
    pub fn parse(body: &[u8]) -> Option<KbsError> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            detail: String,
        }
        let wire: Wire = serde_json::from_slice(body).ok()?;
        let kind = wire.kind.rsplit('/').next().unwrap_or_default();
        Some(KbsError {
            kind: escape(kind, 64),
            detail: escape(&wire.detail, 512),
        })
    }
}

impl fmt::Display for KbsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kbs_strings_cannot_forge_log_lines() {
        let body = br#"{"nonce":"n","extra-params":{"selected-hash-algorithm":"sha1\n[INFO] unsealed\u001b[2K"}}"#;
        let e = parse_challenge(body).unwrap_err().to_string();
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert!(e.contains("sha1\\n[info] unsealed\\u{1b}[2k"), "{e}");
        let long = alloc::format!(
            r#"{{"nonce":"n","extra-params":{{"selected-hash-algorithm":"{}"}}}}"#,
            "x".repeat(100_000)
        );
        let e = parse_challenge(long.as_bytes()).unwrap_err().to_string();
        assert!(e.len() < 200, "bounded: {} bytes", e.len());
        let err = KbsError::parse(
            br#"{"type":"a/PolicyDeny\r\n","detail":"denied\n[ERROR] forged\u001b]0;t\u0007"}"#,
        )
        .unwrap()
        .to_string();
        assert!(!err.chars().any(char::is_control), "{err:?}");
        assert_eq!(
            err,
            "PolicyDeny\\r\\n: denied\\n[ERROR] forged\\u{1b}]0;t\\u{7}"
        );
    }

    /// Found by the `rcar` fuzz target: a detail of control characters grows when escaped
    /// (DEL shows as `\u{7f}`, 6 characters); it stays bounded by 512 shown characters.
    #[test]
    fn an_escaped_detail_of_control_characters_stays_bounded() {
        let body = alloc::format!(
            r#"{{"type":"a/AttestationError","detail":"x = {}"}}"#,
            "\\u007f".repeat(2000)
        );
        let e = KbsError::parse(body.as_bytes()).unwrap();
        assert!(!e.detail.chars().any(char::is_control));
        assert!(e.detail.starts_with("x = \\u{7f}"), "{}", e.detail);
        assert!(e.detail.ends_with('…'));
        assert_eq!(e.detail.matches("\\u{7f}").count(), 512 - "x = ".len());
        assert!(e.detail.chars().count() <= 512 * 8 + 1);
    }
}
