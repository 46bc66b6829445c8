//! The ttrpc frame reader and request envelope (`sealgate_core::ttrpc`): arbitrary bytes
//! fed in arbitrary chunks, every frame decoded as a request and answered, with the
//! buffer bound checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::ttrpc::{self, Frame, FrameReader};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut r = FrameReader::new(MAX);
    for piece in data.chunks(chunk) {
        r.feed(piece);
        while let Some(f) = r.next_frame() {
            match f {
                Frame::Whole(h, payload) => {
                    assert!(payload.len() <= MAX);
                    if let Ok(req) = ttrpc::decode_request(&payload) {
                        let _ = ttrpc::ok_response(h.stream_id, &req.payload);
                    }
                }
                Frame::Oversize(h) => assert!(h.length as usize > MAX),
            }
        }
        assert!(r.buffered() < ttrpc::HEADER_LEN + MAX + chunk);
    }
});
