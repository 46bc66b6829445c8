//! EC P-256 JWKs (RFC 7517/7518) for ES256: the public key that verifies a sealed secret
//! and the private key `sealctl` signs with.
//!
//! Only `kty`, `crv`, `x`, `y` (and `d` for a signing key) are read; other members such as
//! `alg`, `use`, `kid` are ignored, as upstream's `jose-jwk` conversion ignores them.

use alloc::string::String;
use base64ct::{Base64UrlUnpadded, Encoding};
use core::fmt;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::error::SealedError;
use crate::b64;

/// A P-256 public key read from a JWK; verifies ES256 sealed secrets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicJwk {
    key: VerifyingKey,
}

/// A P-256 private key read from (or generated as) a JWK; signs sealed secrets.
/// The scalar is wiped when this is dropped.
#[derive(Clone)]
pub struct SigningJwk {
    key: SigningKey,
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (x, y) = self.coordinates();
        write!(f, "PublicJwk(P-256 x={x} y={y})")
    }
}

impl fmt::Debug for SigningJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningJwk(P-256, private)")
    }
}

impl PublicJwk {
    /// Parses a JWK JSON text (`{"kty":"EC","crv":"P-256","x":..,"y":..}`). A private
    /// member `d`, if present, is ignored (upstream accepts private JWKs here too).
    pub fn from_json(json: &[u8]) -> Result<Self, SealedError> {
        let members = ec_members(json)?;
        Self::from_members(&members)
    }

    fn from_members(members: &Map<String, Value>) -> Result<Self, SealedError> {
        let x = b64::url_decode_array::<32>(member(members, "x")?)
            .map_err(|_| SealedError::JwkEncoding("x"))?;
        let y = b64::url_decode_array::<32>(member(members, "y")?)
            .map_err(|_| SealedError::JwkEncoding("y"))?;
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04;
        sec1[1..33].copy_from_slice(&x);
        sec1[33..].copy_from_slice(&y);
        let key = VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| SealedError::JwkPoint)?;
        Ok(PublicJwk { key })
    }

    /// The key for `p256` verification.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Base64url `x` and `y`.
    fn coordinates(&self) -> (String, String) {
        let point = self.key.to_sec1_point(false);
        let bytes = point.as_bytes();
        (
            b64::url_encode(&bytes[1..33]),
            b64::url_encode(&bytes[33..65]),
        )
    }

    /// The public JWK as upstream's `secret keygen` writes `<kid>-public.json`:
    /// pretty-printed, members `kty, crv, alg, use, kid, x, y`, trailing newline.
    pub fn to_jwk_json(&self, kid: &str) -> String {
        let (x, y) = self.coordinates();
        let kid = json_string(kid);
        let mut out = String::with_capacity(JWK_TEXT_LEN + kid.len());
        write_jwk(&mut out, &kid, None, &x, &y);
        out
    }
}

impl SigningJwk {
    /// Parses a private JWK JSON text; `d` is required and must match `x`/`y`.
    pub fn from_json(json: &[u8]) -> Result<Self, SealedError> {
        let members = WipeD(ec_members(json)?);
        let public = PublicJwk::from_members(&members.0)?;
        let d = Zeroizing::new(
            b64::url_decode_array::<32>(member(&members.0, "d")?)
                .map_err(|_| SealedError::JwkEncoding("d"))?,
        );
        let key = SigningKey::from_slice(&d[..]).map_err(|_| SealedError::JwkPrivateScalar)?;
        if *key.verifying_key() != public.key {
            return Err(SealedError::JwkKeyMismatch);
        }
        Ok(SigningJwk { key })
    }

    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        SigningJwk {
            key: SigningKey::generate_from_rng(rng),
        }
    }

    /// The matching public key.
    pub fn public(&self) -> PublicJwk {
        PublicJwk {
            key: *self.key.verifying_key(),
        }
    }

    /// The key for `p256` signing.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The private JWK as upstream's `secret keygen` writes `<kid>-private.json`:
    /// pretty-printed, members `kty, crv, alg, use, kid, d, x, y`, trailing newline.
    /// The returned text holds the private scalar and is wiped on drop.
    pub fn to_jwk_json(&self, kid: &str) -> Zeroizing<String> {
        let (x, y) = self.public().coordinates();
        let scalar = Zeroizing::new(self.key.to_bytes());
        let mut buf = Zeroizing::new([0u8; 43]);
        let d = Base64UrlUnpadded::encode(&scalar[..], &mut buf[..])
            .expect("32 bytes encode to 43 base64url characters");
        let kid = json_string(kid);
        let mut out = Zeroizing::new(String::with_capacity(JWK_TEXT_LEN + kid.len()));
        write_jwk(&mut out, &kid, Some(d), &x, &y);
        debug_assert!(out.len() <= JWK_TEXT_LEN + kid.len());
        out
    }
}

/// Wipes the `d` member of a parsed private JWK when dropped.
struct WipeD(Map<String, Value>);

impl Drop for WipeD {
    fn drop(&mut self) {
        if let Some(Value::String(d)) = self.0.get_mut("d") {
            d.zeroize();
        }
    }
}

/// Upper bound of a JWK text from [`write_jwk`] without its kid literal.
const JWK_TEXT_LEN: usize = 256;

/// Writes serde_json's pretty form of upstream's keygen `json!` map by hand, so the
/// private scalar goes into one pre-sized (never reallocated) buffer. `kid_json` is the
/// kid as a JSON string literal.
fn write_jwk(out: &mut String, kid_json: &str, d: Option<&str>, x: &str, y: &str) {
    out.push_str("{\n  \"kty\": \"EC\",\n  \"crv\": \"P-256\",\n  \"alg\": \"ES256\",\n");
    out.push_str("  \"use\": \"sig\",\n  \"kid\": ");
    out.push_str(kid_json);
    if let Some(d) = d {
        out.push_str(",\n  \"d\": \"");
        out.push_str(d);
        out.push('"');
    }
    out.push_str(",\n  \"x\": \"");
    out.push_str(x);
    out.push_str("\",\n  \"y\": \"");
    out.push_str(y);
    out.push_str("\"\n}\n");
}

/// A string as a JSON string literal, escaped exactly as `serde_json` does.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn ec_members(json: &[u8]) -> Result<Map<String, Value>, SealedError> {
    let members = match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(members)) => members,
        _ => return Err(SealedError::JwkNotJson),
    };
    let kty = member(&members, "kty")?;
    if kty != "EC" {
        return Err(SealedError::JwkKeyType(kty.into()));
    }
    let crv = member(&members, "crv")?;
    if crv != "P-256" {
        return Err(SealedError::JwkCurve(crv.into()));
    }
    Ok(members)
}

fn member<'a>(members: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, SealedError> {
    members
        .get(name)
        .and_then(Value::as_str)
        .ok_or(SealedError::JwkMissing(name))
}
