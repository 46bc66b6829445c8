//! The AA and CDH messages sealgate decodes from callers (`sealgate_core::proto`), and the
//! ttrpc response envelope: arbitrary bytes through every decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sealgate_core::proto::{aa, cdh};
use sealgate_core::ttrpc;

fuzz_target!(|data: &[u8]| {
    let _ = cdh::UnsealSecretInput::decode(data);
    let _ = cdh::GetResourceRequest::decode(data);
    let _ = cdh::SecureMountRequest::decode(data);
    let _ = cdh::ImagePullRequest::decode(data);
    let _ = aa::GetEvidenceRequest::decode(data);
    let _ = aa::GetTokenRequest::decode(data);
    let _ = aa::ExtendRuntimeMeasurementRequest::decode(data);
    let _ = aa::Empty::decode(data);
    let _ = ttrpc::Response::decode(data);
});
