//! The evidence JSON a Trustee verifier reads (`snp::parse_evidence_json`,
//! `tdx::parse_evidence_json`), parsed the way the test KBS and sealctl read it.
#![no_main]

use firmware_glue::{snp, tdx};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(parsed) = snp::parse_evidence_json(&value) {
        let _ = snp::Report::new_checked(&parsed.report[..]);
    }
    let _ = snp::report_from_evidence_json(&value);
    if let Ok(parsed) = tdx::parse_evidence_json(&value) {
        let _ = tdx::Quote::new_checked(&parsed.quote[..]);
    }
});
