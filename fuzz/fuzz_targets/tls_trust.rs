//! The configured certificates: `TlsTrust::from_pem` (PEM blocks, base64, each
//! certificate parsed as a trust anchor) and the validity-period reader of the pin mode
//! (`certificate_validity`, on the input as DER and on every certificate of the PEM).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_tls::{TlsTrust, certificate_validity, format_unix};

fuzz_target!(|data: &[u8]| {
    if let Some(v) = certificate_validity(data) {
        let _ = (format_unix(v.not_before), format_unix(v.not_after));
    }
    match TlsTrust::from_pem(data) {
        Ok(trust) => assert!(!trust.is_empty()),
        // Messages name positions and parse errors only.
        Err(e) => assert!(e.to_string().len() < 300),
    }
});
