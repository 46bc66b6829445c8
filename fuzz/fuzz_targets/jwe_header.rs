//! The JWE protected header (`alg`, `enc`, `epk`, `zip`, `crit`) behind `jwe::decrypt`. The
//! input is the header JSON itself; it is base64url-encoded into the recorded P-256 Trustee
//! resource response (tests/vectors/trustee/p256-cookie.json) in place of the header the
//! server sent, and decrypted with that recording's tee key. The recorded header as input
//! decrypts; the fuzzer mutates the JSON directly instead of through base64.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::teekey::{KeyAlgorithm, TeeKey};
use sealgate_core::{b64, jwe};
use std::sync::LazyLock;

/// tests/vectors/trustee/p256-cookie.json, tee_key.private_scalar_hex.
const P256_SCALAR: [u8; 32] = [
    0x8d, 0xd4, 0x21, 0x71, 0x6d, 0xce, 0x24, 0xe2, 0x65, 0x89, 0x54, 0x38, 0x29, 0x3a, 0x10, 0x0d,
    0x9d, 0xaa, 0xed, 0x3a, 0xff, 0xe3, 0xf4, 0x2d, 0xdd, 0x14, 0x40, 0xed, 0x26, 0x85, 0x71, 0x3f,
];

static KEY: LazyLock<TeeKey> =
    LazyLock::new(|| TeeKey::import_ec(KeyAlgorithm::EcdhP256, &P256_SCALAR).expect("P-256 key"));

fuzz_target!(|header: &[u8]| {
    // The other members of the recorded response body, as sent.
    let body = format!(
        r#"{{"protected":"{}","encrypted_key":"o_GUFI4x3q3ux6xsScprS01OYuj2n7t_ob3c9JZ9gddtHLiK2v21OQ","iv":"6S2FUcw2RtPcSice","ciphertext":"kdrBaH3WvUaIPBRBgsvO425L","tag":"q6XmDpanylGz9nBoObJsGw"}}"#,
        b64::url_encode(header)
    );
    let _ = jwe::decrypt(&KEY, body.as_bytes());
});
