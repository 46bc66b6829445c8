//! Base64 as the KBS protocol uses it: STANDARD with padding for nonces, evidence and
//! sealed-secret envelopes; URL-safe without padding for everything JOSE (JWK, JWE, JWS).
//!
//! All encoders/decoders are the constant-time ones from `base64ct`, because several of
//! the values that pass through here are key material.

use alloc::string::String;
use alloc::vec::Vec;
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use core::fmt;

/// A base64 input that did not decode. Never carries the input (it may be secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid base64")
    }
}

/// RFC 4648 standard alphabet, with `=` padding.
pub fn std_encode(data: &[u8]) -> String {
    Base64::encode_string(data)
}

/// Decodes RFC 4648 standard alphabet, padding required (as Rust's `STANDARD` engine does).
pub fn std_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    Base64::decode_vec(text).map_err(|_| DecodeError)
}

/// RFC 4648 URL-safe alphabet without padding (JOSE `base64url`).
pub fn url_encode(data: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(data)
}

/// Decodes URL-safe base64 without padding; padding characters are rejected, as JOSE requires.
pub fn url_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| DecodeError)
}

/// Decodes URL-safe unpadded base64 into a buffer of exactly `N` bytes.
pub fn url_decode_array<const N: usize>(text: &str) -> Result<[u8; N], DecodeError> {
    let mut out = [0u8; N];
    let decoded = Base64UrlUnpadded::decode(text, &mut out).map_err(|_| DecodeError)?;
    if decoded.len() != N {
        return Err(DecodeError);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        assert_eq!(std_encode(b"xxxx"), "eHh4eA==");
        assert_eq!(std_decode("eHh4eA==").unwrap(), b"xxxx");
        assert!(
            std_decode("eHh4eA").is_err(),
            "standard decoding requires padding"
        );
        assert!(std_decode("eHh4e-==").is_err());
        assert_eq!(url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(url_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(url_decode("-_8=").is_err(), "JOSE base64url has no padding");
        assert!(url_decode("+/8").is_err());
        assert_eq!(url_decode_array::<2>("-_8").unwrap(), [0xfb, 0xff]);
        assert!(url_decode_array::<3>("-_8").is_err());
        assert!(url_decode_array::<1>("-_8").is_err());
    }
}
