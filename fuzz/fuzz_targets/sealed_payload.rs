//! The sealed-secret payload JSON (`Secret::from_json`: vault and envelope secrets), what
//! it resolves to, and the envelope's base64 members and lengths. Reached only after a
//! signature check, or with unsigned secrets allowed; fuzzed directly here so that the
//! fuzzer need not forge signatures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::sealed::{Secret, SecretContent};

fuzz_target!(|data: &[u8]| {
    let Ok(secret) = Secret::from_json(data) else {
        return;
    };
    let _ = secret.resolve();
    let _ = secret.version();
    let _ = secret.type_name();
    let json = secret.to_json();
    // What it serialises to parses again.
    assert!(Secret::from_json(json.as_bytes()).is_ok());
    if let SecretContent::Envelope(envelope) = &secret.content {
        if let Ok(parts) = envelope.decode() {
            let _ = parts.decrypt(&[0x42; 32]);
        }
    }
});
