//! Sealed secrets (`sealed.` + JWS compact serialization): `SealedSecret::parse` (size,
//! UTF-8, shape, header, `alg`, `kid`, signature encoding), the `kid` classification, the
//! unverified payload decoding, signature verification against a fixed key, and the
//! unsigned form `parse_unverified`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::sealed::{PublicJwk, SealedSecret, key_source, parse_unverified};
use std::sync::LazyLock;

/// A fixed P-256 verification key (the public half of RFC 7515 appendix A.3's example key).
static KEY: LazyLock<PublicJwk> = LazyLock::new(|| {
    PublicJwk::from_json(
        br#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
    )
    .expect("fixed JWK")
});

fuzz_target!(|data: &[u8]| {
    if let Ok(secret) = SealedSecret::parse(data) {
        let _ = secret.alg();
        let _ = key_source(secret.kid());
        let _ = secret.key_source();
        if let Ok(payload) = secret.payload_unverified() {
            let _ = payload.resolve();
            let _ = payload.to_json();
        }
        let _ = secret.verify(&KEY);
    }
    if let Ok(payload) = parse_unverified(data) {
        let _ = payload.resolve();
    }
});
