//! TDX DCAP quotes v4/v5 (`tdx::Quote::new_checked`: header, TD body 1.0/1.5, signature
//! data, certification data) and every accessor.
#![no_main]

use firmware_glue::tdx::Quote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(quote) = Quote::new_checked(data) else {
        return;
    };
    let _ = (
        quote.version(),
        quote.att_key_type(),
        quote.tee_type(),
        quote.body_type(),
    );
    let _ = (quote.qe_vendor_id(), quote.user_data(), quote.body_kind());
    let body = quote.body();
    let _ = (
        body.tee_tcb_svn(),
        body.mr_seam(),
        body.mr_signer_seam(),
        body.seam_attributes(),
    );
    let _ = (
        body.td_attributes(),
        body.xfam(),
        body.mr_td(),
        body.mr_config_id(),
    );
    let _ = (body.mr_owner(), body.mr_owner_config(), body.report_data());
    let _ = (body.tee_tcb_svn2(), body.mr_servicetd());
    for i in 0..5 {
        assert_eq!(body.rtmr(i).is_some(), i < 4);
        assert_eq!(quote.rtmr(i).is_some(), i < 4);
    }
    assert!(quote.body_offset() + body.as_bytes().len() <= data.len());
    let _ = (
        quote.report_data(),
        quote.mr_td(),
        quote.mr_config_id(),
        quote.signed_bytes(),
    );
    let _ = (
        quote.signature_data_len(),
        quote.ecdsa_signature(),
        quote.attestation_key(),
    );
    let _ = (
        quote.qe_cert_data_size(),
        quote.qe_report(),
        quote.qe_report_signature(),
    );
    let _ = (quote.qe_auth_data(), quote.pck_cert_chain());
});
