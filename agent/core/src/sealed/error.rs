//! The one error type of the sealed-secret module.
//!
//! Messages are short and never carry key material, signatures, DEKs or plaintext. The
//! few values echoed from the input (an algorithm name, a provider, a version) are
//! truncated and control characters escaped, so a hostile secret cannot flood or spoof a
//! log line.

use alloc::string::String;
use core::fmt;

use super::json::JsonError;
use super::payload::WrapType;

/// Which base64url part of the JWS compact form failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The protected header.
    Header,
    /// The payload.
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// Everything that can go wrong parsing, verifying, resolving or producing a sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealedError {
    /// The input exceeds [`MAX_SEALED_LEN`](super::MAX_SEALED_LEN).
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The input is not UTF-8.
    NotUtf8,
    /// The wrong number of `.`-separated parts.
    PartCount {
        /// Parts required (3 after `sealed.` when verifying, 4 in total when not).
        expected: usize,
        /// Parts found.
        found: usize,
    },
    /// A part is not unpadded base64url.
    Base64(Part),
    /// The protected header is not a JSON object.
    HeaderNotJson,
    /// The protected header has no `alg` string.
    MissingAlg,
    /// The protected header names an algorithm other than ES256.
    UnsupportedAlg(String),
    /// The protected header has no (non-empty) `kid` string.
    MissingKid,
    /// The signature is not 64 bytes (a DER signature, for instance).
    SignatureLength(usize),
    /// The signature's `r` or `s` is zero or not below the group order.
    SignatureScalars,
    /// The ES256 signature does not verify under the given key.
    BadSignature,
    /// The payload is empty.
    EmptyPayload,
    /// The payload is not a JSON object.
    PayloadNotJson(JsonError),
    /// A required payload member is absent.
    MissingField(&'static str),
    /// A payload member has the wrong JSON type.
    FieldType {
        /// The member.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `version` is not `0.1.0`.
    UnsupportedVersion(String),
    /// `type` is neither `vault` nor `envelope`.
    UnknownType(String),
    /// The envelope `wrap_type` is neither `A256GCM` nor `A256CTR`.
    UnknownWrapType(String),
    /// An envelope field is not standard (padded) base64.
    EnvelopeBase64(&'static str),
    /// The envelope IV has the wrong length for its wrap type.
    EnvelopeIvLength {
        /// The wrap type.
        wrap_type: WrapType,
        /// The IV length found.
        found: usize,
    },
    /// A256GCM `encrypted_data` is shorter than its 16-byte tag.
    EnvelopeDataTooShort,
    /// The envelope uses a wrap type sealgate does not decrypt.
    UnsupportedWrapType(WrapType),
    /// AES-GCM authentication failed: wrong DEK, IV or corrupted data.
    DecryptFailed,
    /// The provider is not one sealgate can unseal with.
    UnsupportedProvider(String),
    /// The vault `name` of a `kbs` secret is not a `kbs://` / `kbs+<plugin>://` resource URI.
    InvalidResourceUri,
    /// The `kid` is neither a well-formed KBS resource URI nor a safe local key name.
    InvalidKid(&'static str),
    /// A JWK is not a JSON object.
    JwkNotJson,
    /// A JWK lacks a required member (or it is not a string).
    JwkMissing(&'static str),
    /// A JWK `kty` other than `EC`.
    JwkKeyType(String),
    /// A JWK `crv` other than `P-256`.
    JwkCurve(String),
    /// A JWK coordinate or scalar is not 32 bytes of base64url.
    JwkEncoding(&'static str),
    /// The JWK `x`/`y` is not a point on P-256.
    JwkPoint,
    /// The JWK `d` is not a valid P-256 private scalar.
    JwkPrivateScalar,
    /// The JWK `d` does not belong to its `x`/`y`.
    JwkKeyMismatch,
    /// Signing failed (does not happen with a valid key).
    SigningFailed,
}

impl fmt::Display for SealedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SealedError::*;
        match self {
            TooLarge { len } => write!(
                f,
                "sealed secret is too large ({len} bytes, limit {})",
                super::MAX_SEALED_LEN
            ),
            NotUtf8 => f.write_str("sealed secret is not valid UTF-8"),
            PartCount { expected: 4, found } => write!(
                f,
                "unverified sealed secret must have exactly 4 '.'-separated parts, got {found}"
            ),
            PartCount { found, .. } => write!(
                f,
                "sealed secret must be 'sealed.' + JWS compact header.payload.signature, \
                 got {found} '.'-separated part(s) after the prefix"
            ),
            Base64(part) => write!(f, "sealed secret {part} is not valid unpadded base64url"),
            HeaderNotJson => f.write_str("JWS protected header is not a JSON object"),
            MissingAlg => f.write_str("JWS protected header has no alg"),
            UnsupportedAlg(alg) => write!(
                f,
                "JWS algorithm '{}' is not supported (sealed secrets use ES256)",
                Short(alg)
            ),
            MissingKid => f.write_str("JWS protected header has no kid"),
            SignatureLength(n) => write!(
                f,
                "ES256 signature must be raw 64-byte r||s, got {n} bytes (DER is not accepted)"
            ),
            SignatureScalars => f.write_str("ES256 signature r or s is out of range"),
            BadSignature => f.write_str(
                "sealed secret signature verification failed (wrong key or tampered secret)",
            ),
            EmptyPayload => f.write_str("sealed secret payload is empty"),
            PayloadNotJson(e) => write!(f, "sealed secret payload: {e}"),
            MissingField(name) => write!(f, "sealed secret payload has no '{name}' field"),
            FieldType { field, expected } => {
                write!(f, "sealed secret field '{field}' must be {expected}")
            }
            UnsupportedVersion(v) => write!(
                f,
                "sealed secret version '{}' is not supported (only {})",
                Short(v),
                super::VERSION
            ),
            UnknownType(t) => write!(
                f,
                "sealed secret type '{}' is unknown (expected vault or envelope)",
                Short(t)
            ),
            UnknownWrapType(w) => write!(
                f,
                "envelope wrap_type '{}' is unknown (expected A256GCM or A256CTR)",
                Short(w)
            ),
            EnvelopeBase64(field) => {
                write!(f, "envelope field '{field}' is not valid standard base64")
            }
            EnvelopeIvLength { wrap_type, found } => write!(
                f,
                "envelope iv must be {} bytes for {}, got {found}",
                wrap_type.iv_len(),
                wrap_type.as_str()
            ),
            EnvelopeDataTooShort => {
                f.write_str("envelope encrypted_data is shorter than the 16-byte GCM tag")
            }
            UnsupportedWrapType(w) => {
                write!(
                    f,
                    "envelope wrap_type {} is not supported by sealgate",
                    w.as_str()
                )
            }
            DecryptFailed => {
                f.write_str("envelope decryption failed (wrong key or corrupted data)")
            }
            UnsupportedProvider(p) => write!(
                f,
                "sealed secret provider '{}' is not supported by sealgate",
                Short(p)
            ),
            InvalidResourceUri => {
                f.write_str("vault secret name is not a kbs:///<repo>/<type>/<tag> resource URI")
            }
            InvalidKid(why) => write!(f, "sealed secret kid is invalid: {why}"),
            JwkNotJson => f.write_str("JWK is not a JSON object"),
            JwkMissing(name) => write!(f, "JWK has no '{name}' string member"),
            JwkKeyType(kty) => write!(
                f,
                "JWK kty '{}' is not supported (need an EC P-256 key)",
                Short(kty)
            ),
            JwkCurve(crv) => write!(f, "JWK crv '{}' is not supported (need P-256)", Short(crv)),
            JwkEncoding(name) => write!(f, "JWK '{name}' is not 32 bytes of base64url"),
            JwkPoint => f.write_str("JWK x/y is not a point on P-256"),
            JwkPrivateScalar => f.write_str("JWK 'd' is not a valid P-256 private key"),
            JwkKeyMismatch => f.write_str("JWK 'd' does not match its 'x'/'y'"),
            SigningFailed => f.write_str("ES256 signing failed"),
        }
    }
}

impl core::error::Error for SealedError {}

/// Displays an untrusted string truncated to 64 characters with control characters escaped.
pub(crate) struct Short<'a>(pub &'a str);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX {
                return f.write_str("...");
            }
            if c.is_control() || c == '\'' {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}
