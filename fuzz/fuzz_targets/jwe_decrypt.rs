//! KBS resource responses: `jwe::decrypt` (flattened JWE JSON, protected header, key
//! unwrapping, A256GCM) with fixed tee keys: the ephemeral P-256 and P-521 test keys of the
//! recorded Trustee vectors, so that the seeds (those recorded responses) decrypt and the
//! fuzzer starts from inputs that reach every step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::jwe;
use sealgate_core::teekey::{KeyAlgorithm, TeeKey};
use std::sync::LazyLock;

/// tests/vectors/trustee/p256-cookie.json, tee_key.private_scalar_hex.
const P256_SCALAR: &str = "8dd421716dce24e265895438293a100d9daaed3affe3f42ddd1440ed2685713f";
/// tests/vectors/trustee/p521-cookie.json, tee_key.private_scalar_hex.
const P521_SCALAR: &str = "00a12aa9cc547474ac8f02c9a35c2af3e2bcf6fa83addc489033fca7f8a4fb247198e8553ec325b3c87e23432755ade4185bb913894a806e5c783090569fae2057f2";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

static KEYS: LazyLock<[TeeKey; 2]> = LazyLock::new(|| {
    [
        TeeKey::import_ec(KeyAlgorithm::EcdhP256, &unhex(P256_SCALAR)).expect("P-256 key"),
        TeeKey::import_ec(KeyAlgorithm::EcdhP521, &unhex(P521_SCALAR)).expect("P-521 key"),
    ]
});

fuzz_target!(|data: &[u8]| {
    for key in KEYS.iter() {
        let _ = jwe::decrypt(key, data);
    }
});
