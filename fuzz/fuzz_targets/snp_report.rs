//! SEV-SNP attestation reports (`snp::Report::new_checked` and every accessor), their owned
//! form (`ReportRepr::parse`) and its re-encoding (`emit`, the `sev` crate's encoder).
#![no_main]

use firmware_glue::snp::{REPORT_LEN, Report, ReportRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = Report::new_checked(data) else {
        return;
    };
    assert_eq!(data.len(), REPORT_LEN);
    let _ = report.generation();
    let _ = report.signed_bytes();
    let _ = report.signing_key();
    let _ = report.current();
    let _ = report.committed();
    let sig = report.signature();
    let _ = sig.to_p384_fixed();
    let repr = ReportRepr::parse(&report);
    let _ = repr.generation();
    if let Ok(bytes) = repr.emit() {
        // What was re-encoded from a checked report is itself a valid report.
        let again = Report::new_checked(&bytes[..]).expect("emit gives a valid report");
        assert_eq!(again.report_data(), report.report_data());
        assert_eq!(again.host_data(), report.host_data());
        assert_eq!(again.measurement(), report.measurement());
    }
});
