//! The upstream components' config files as the server reads them
//! (`upstream::parse_aa`, `upstream::parse_cdh`): any text, either file (byte 0 picks).
//! Asserts: an error names a position inside the text, and a certificate kept is never
//! blank.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::upstream::{parse_aa, parse_cdh};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = core::str::from_utf8(rest) else {
        return;
    };
    let lines = text.lines().count() + 1;
    let (error, kbs) = if which & 1 == 0 {
        match parse_aa(text) {
            Ok(aa) => (None, aa.kbs),
            Err(e) => (Some(e), None),
        }
    } else {
        match parse_cdh(text) {
            Ok(cdh) => (None, cdh.kbs),
            Err(e) => (Some(e), None),
        }
    };
    if let Some(e) = error {
        assert!(e.error.line <= lines, "{e}");
    }
    if let Some(kbs) = kbs {
        assert!(kbs.cert.is_none_or(|c| !c.trim().is_empty()));
    }
});
