//! KBS protocol bodies (`sealgate_core::rcar`): the `/auth` challenge, the `/attest` token,
//! and the error bodies of failed requests. Every body goes through all three parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::rcar::{KbsError, MAX_NONCE_LEN, parse_challenge, parse_token};

fuzz_target!(|body: &[u8]| {
    if let Ok(challenge) = parse_challenge(body) {
        assert!(!challenge.nonce.is_empty() && challenge.nonce.len() <= MAX_NONCE_LEN);
        let _ = challenge.hash.digest(b"runtime data");
    }
    if let Ok(token) = parse_token(body) {
        // It goes into an Authorization header: nothing that could end or add a header.
        assert!(token.bytes().all(|b| b.is_ascii_graphic()));
    }
    if let Some(error) = KbsError::parse(body) {
        // Both strings reach logs: no control characters, bounded. They are escaped
        // (`escape::escape`, 64 and 512 shown characters, then `…`), and one escaped
        // character shows as at most 8 (`\u{2028}`).
        for s in [&error.kind, &error.detail] {
            assert!(!s.chars().any(char::is_control));
            assert!(s.chars().count() <= 512 * 8 + 1);
        }
    }
});
