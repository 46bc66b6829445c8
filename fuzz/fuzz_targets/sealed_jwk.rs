//! JWK texts: the sealed-secret verification key a `kid` names (fetched from the KBS or read
//! from the local key directory), `PublicJwk::from_json`, and the private form
//! `SigningJwk::from_json` (read by sealctl).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::sealed::{PublicJwk, SigningJwk};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = PublicJwk::from_json(data) {
        let text = key.to_jwk_json("kid");
        assert!(PublicJwk::from_json(text.as_bytes()).is_ok());
    }
    if let Ok(key) = SigningJwk::from_json(data) {
        let _ = key.public();
    }
});
