//! TDX TDREPORT structures (`tdx::TdReport::new_checked`) and every accessor.
#![no_main]

use firmware_glue::tdx::{TDREPORT_LEN, TdReport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = TdReport::new_checked(data) else {
        return;
    };
    assert_eq!(data.len(), TDREPORT_LEN);
    let _ = (
        report.report_type(),
        report.version(),
        report.cpusvn(),
        report.tee_tcb_info_hash(),
    );
    let _ = (
        report.tee_info_hash(),
        report.report_data(),
        report.mac(),
        report.tee_tcb_info(),
    );
    let _ = (
        report.attributes(),
        report.xfam(),
        report.mrtd(),
        report.mrconfigid(),
    );
    let _ = (
        report.mrowner(),
        report.mrownerconfig(),
        report.servtd_hash(),
    );
    for i in 0..5 {
        assert_eq!(report.rtmr(i).is_some(), i < 4);
    }
});
