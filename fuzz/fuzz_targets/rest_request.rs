//! The REST API's request side (`sealgate_core::rest::RestConn` over
//! `sealgate_core::http_server::RequestParser`): request line, header fields,
//! Content-Length framing, Expect, keep-alive, pipelining, the query parameters and
//! routing, with a backend that answers every call.
//!
//! Input: byte 0 picks how the rest is cut into reads (the parser is incremental, so the
//! split points matter), byte 1 the features (and bit 2 a non-loopback peer), the rest is
//! what the connection delivers.
#![no_main]

use core::net::{IpAddr, Ipv4Addr};
use libfuzzer_sys::fuzz_target;
use sealgate_core::http_server::{MAX_BODY_BYTES, MAX_HEAD_BYTES};
use sealgate_core::rest::{AaelResult, BackendError, Features, RestBackend, RestConn, Step};
use zeroize::Zeroizing;

struct Backend;

impl RestBackend for Backend {
    fn get_resource(&mut self, uri: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        assert!(uri.starts_with("kbs:///"));
        Ok(Zeroizing::new(uri.as_bytes().to_vec()))
    }
    fn get_token(&mut self, _: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        Err(BackendError {
            message: "no token".into(),
        })
    }
    fn get_evidence(&mut self, data: &[u8]) -> Result<Vec<u8>, BackendError> {
        Ok(data.to_vec())
    }
    fn get_additional_evidence(&mut self, _: &[u8]) -> Result<Vec<u8>, BackendError> {
        Ok(Vec::new())
    }
    fn extend_runtime_measurement(
        &mut self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<AaelResult, BackendError> {
        Ok(AaelResult::NotEnabled)
    }
    fn tee_type(&self) -> String {
        "sample".into()
    }
    fn additional_tees(&self) -> Vec<String> {
        Vec::new()
    }
}

fuzz_target!(|data: &[u8]| {
    let [stride, mode, stream @ ..] = data else {
        return;
    };
    let stride = if *stride == 0 {
        stream.len().max(1)
    } else {
        *stride as usize
    };
    let features = match mode & 3 {
        0 => Features::Resource,
        1 => Features::Attestation,
        2 => Features::All,
        _ => Features::Neither,
    };
    let peer = if mode & 4 == 0 {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
    };
    let mut conn = RestConn::new(peer, features);
    let mut backend = Backend;
    let mut closed = false;
    let mut drive = |conn: &mut RestConn| -> bool {
        loop {
            match conn.step(&mut backend) {
                Step::Write(bytes) => assert!(bytes.starts_with(b"HTTP/1.1 ")),
                Step::NeedMore => return false,
                Step::Close => return true,
            }
        }
    };
    let mut rest = stream;
    while !rest.is_empty() && !closed {
        let take = rest.len().min(stride).min(conn.read_capacity());
        if take == 0 {
            // The parser holds a full head and body's worth: it must make progress or close.
            closed = drive(&mut conn);
            assert!(closed || conn.read_capacity() > 0);
            continue;
        }
        conn.feed(&rest[..take]);
        rest = &rest[take..];
        closed = drive(&mut conn);
        assert!(conn.read_capacity() <= MAX_HEAD_BYTES + MAX_BODY_BYTES);
    }
    if !closed {
        conn.feed_eof();
        assert!(drive(&mut conn));
    }
});
