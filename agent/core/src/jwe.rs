//! Decryption of the resources a Trustee KBS returns: a JWE in flattened JSON
//! serialization (RFC 7516 §7.2.2), `enc` always `A256GCM`, the CEK wrapped with
//! `ECDH-ES+A256KW` (P-256/P-521) or `RSA-OAEP-256`, exactly as in
//! `../shared/reference/kbs-protocol.md` §5.
//!
//! The plaintext is returned in a zeroizing buffer and no error carries any byte of the
//! ciphertext, the keys or the plaintext.

use crate::b64;
use crate::teekey::{Key256, Secret, TeeKey};
use aes_gcm::aead::{AeadInOut, KeyInit};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Why a JWE was refused. The messages name the field or check, never its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JweError {
    /// The body is not a flattened-JSON JWE.
    NotJwe,
    /// A member is missing, not base64url or of the wrong length.
    Malformed(&'static str),
    /// The protected header is not a JSON object with `alg` and `enc`.
    BadHeader,
    /// `enc` is not `A256GCM`.
    UnsupportedEnc,
    /// `alg` does not match the tee key (e.g. RSA-OAEP-256 for an EC key).
    AlgMismatch,
    /// A header parameter this client does not implement (`zip`, `crit`).
    UnsupportedHeader(&'static str),
    /// The `epk` is missing, not on our curve, or not a valid point.
    BadEphemeralKey,
    /// AES key unwrap failed its integrity check (wrong key or tampered CEK).
    KeyUnwrap,
    /// RSA-OAEP decryption of the CEK failed.
    KeyDecrypt,
    /// AES-GCM authentication failed: tampered ciphertext, tag, iv or header.
    Decrypt,
}

impl fmt::Display for JweError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJwe => f.write_str("response is not a JWE in flattened JSON serialization"),
            Self::Malformed(field) => write!(f, "JWE member '{field}' is missing or malformed"),
            Self::BadHeader => {
                f.write_str("JWE protected header is not valid JSON with alg and enc")
            }
            Self::UnsupportedEnc => f.write_str("JWE enc is not A256GCM"),
            Self::AlgMismatch => f.write_str("JWE alg does not match the tee key"),
            Self::UnsupportedHeader(p) => write!(f, "JWE header parameter '{p}' is not supported"),
            Self::BadEphemeralKey => {
                f.write_str("JWE epk is missing, on another curve, or invalid")
            }
            Self::KeyUnwrap => f.write_str("JWE key unwrap failed (integrity check)"),
            Self::KeyDecrypt => f.write_str("JWE RSA-OAEP key decryption failed"),
            Self::Decrypt => f.write_str("JWE authentication failed (AES-GCM tag mismatch)"),
        }
    }
}

#[derive(Deserialize)]
struct Flattened {
    protected: String,
    encrypted_key: String,
    iv: String,
    ciphertext: String,
    tag: String,
    #[serde(default)]
    aad: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    #[serde(default)]
    epk: Option<Epk>,
    #[serde(default)]
    zip: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Epk {
    kty: String,
    crv: String,
    x: String,
    y: String,
}

/// Decrypts a KBS resource response body with the tee key it was encrypted to.
pub fn decrypt(key: &TeeKey, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, JweError> {
    let jwe: Flattened = serde_json::from_slice(body).map_err(|_| JweError::NotJwe)?;
    let header_json =
        b64::url_decode(&jwe.protected).map_err(|_| JweError::Malformed("protected"))?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| JweError::BadHeader)?;
    if header.enc != "A256GCM" {
        return Err(JweError::UnsupportedEnc);
    }
    if header.zip.is_some() {
        return Err(JweError::UnsupportedHeader("zip"));
    }
    if header.crit.is_some() {
        return Err(JweError::UnsupportedHeader("crit"));
    }
    let encrypted_key =
        b64::url_decode(&jwe.encrypted_key).map_err(|_| JweError::Malformed("encrypted_key"))?;
    let iv: [u8; 12] = b64::url_decode_array(&jwe.iv).map_err(|_| JweError::Malformed("iv"))?;
    let tag: [u8; 16] = b64::url_decode_array(&jwe.tag).map_err(|_| JweError::Malformed("tag"))?;
    let ciphertext =
        b64::url_decode(&jwe.ciphertext).map_err(|_| JweError::Malformed("ciphertext"))?;

    let cek = unwrap_cek(key, &header, &encrypted_key)?;

    // RFC 7516 §5.2 step 14: AAD = ASCII(protected) [ '.' ASCII(aad) ]. The raw received
    // string is used, not a re-serialization of the header.
    let mut aad =
        Vec::with_capacity(jwe.protected.len() + 1 + jwe.aad.as_ref().map_or(0, String::len));
    aad.extend_from_slice(jwe.protected.as_bytes());
    if let Some(extra) = &jwe.aad {
        b64::url_decode(extra).map_err(|_| JweError::Malformed("aad"))?;
        aad.push(b'.');
        aad.extend_from_slice(extra.as_bytes());
    }

    let cipher = aes_gcm::Aes256Gcm::new_from_slice(cek.as_ref()).map_err(|_| JweError::Decrypt)?;
    let mut plaintext = Zeroizing::new(ciphertext);
    cipher
        .decrypt_inout_detached(
            &iv.into(),
            &aad,
            plaintext.as_mut_slice().into(),
            &tag.into(),
        )
        .map_err(|_| JweError::Decrypt)?;
    Ok(plaintext)
}

fn unwrap_cek(key: &TeeKey, header: &Header, encrypted_key: &[u8]) -> Result<Key256, JweError> {
    match &key.secret {
        Secret::P256(secret) => {
            let epk = ephemeral_point(header, "P-256", 32)?;
            let epk =
                p256::PublicKey::from_sec1_bytes(&epk).map_err(|_| JweError::BadEphemeralKey)?;
            let z = secret.diffie_hellman(&epk);
            aes_kw_unwrap(&concat_kdf_a256kw(z.raw_secret_bytes()), encrypted_key)
        }
        #[cfg(feature = "p521")]
        Secret::P521(secret) => {
            let epk = ephemeral_point(header, "P-521", 66)?;
            let epk =
                p521::PublicKey::from_sec1_bytes(&epk).map_err(|_| JweError::BadEphemeralKey)?;
            let z = secret.diffie_hellman(&epk);
            aes_kw_unwrap(&concat_kdf_a256kw(z.raw_secret_bytes()), encrypted_key)
        }
        #[cfg(feature = "rsa")]
        Secret::Rsa(secret) => {
            if header.alg != "RSA-OAEP-256" {
                return Err(JweError::AlgMismatch);
            }
            let cek = secret
                .decrypt(rsa::Oaep::<Sha256>::new(), encrypted_key)
                .map_err(|_| JweError::KeyDecrypt)?;
            let cek = Zeroizing::new(cek);
            let mut out = Key256::default();
            if cek.len() != out.len() {
                return Err(JweError::KeyDecrypt);
            }
            out.copy_from_slice(&cek);
            Ok(out)
        }
    }
}

/// Checks `alg`/`epk` for ECDH-ES+A256KW and returns the epk as an uncompressed SEC1 point.
fn ephemeral_point(header: &Header, crv: &str, coord_len: usize) -> Result<Vec<u8>, JweError> {
    if header.alg != "ECDH-ES+A256KW" {
        return Err(JweError::AlgMismatch);
    }
    let epk = header.epk.as_ref().ok_or(JweError::BadEphemeralKey)?;
    if epk.kty != "EC" || epk.crv != crv {
        return Err(JweError::BadEphemeralKey);
    }
    let x = b64::url_decode(&epk.x).map_err(|_| JweError::BadEphemeralKey)?;
    let y = b64::url_decode(&epk.y).map_err(|_| JweError::BadEphemeralKey)?;
    if x.len() != coord_len || y.len() != coord_len {
        return Err(JweError::BadEphemeralKey);
    }
    let mut point = Vec::with_capacity(1 + 2 * coord_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// RFC 7518 §4.6.2 Concat KDF with SHA-256 for `ECDH-ES+A256KW`: one round,
/// AlgorithmID = "ECDH-ES+A256KW", empty PartyUInfo/PartyVInfo, keydatalen 256.
pub fn concat_kdf_a256kw(z: &[u8]) -> Key256 {
    const ALG: &[u8] = b"ECDH-ES+A256KW";
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    h.update((ALG.len() as u32).to_be_bytes());
    h.update(ALG);
    h.update(0u32.to_be_bytes()); // apu
    h.update(0u32.to_be_bytes()); // apv
    h.update(256u32.to_be_bytes());
    let mut digest = h.finalize();
    let mut kek = Key256::default();
    kek.copy_from_slice(&digest);
    digest.zeroize();
    kek
}

fn aes_kw_unwrap(kek: &Key256, wrapped: &[u8]) -> Result<Key256, JweError> {
    if wrapped.len() != 40 {
        return Err(JweError::Malformed("encrypted_key"));
    }
    let kw = aes_kw::KwAes256::new_from_slice(kek.as_ref()).map_err(|_| JweError::KeyUnwrap)?;
    let mut cek = Key256::default();
    kw.unwrap_key(wrapped, cek.as_mut())
        .map_err(|_| JweError::KeyUnwrap)?;
    Ok(cek)
}
