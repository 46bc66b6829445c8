//! The HTTP/1.1 response parser (`sealgate_core::http::ResponseParser`): status line,
//! header section, interim responses, Content-Length, chunked and close-delimited bodies,
//! trailers; then the accessors the client uses (cookies, `Set-Cookie`, keep-alive).
//!
//! Input: byte 0 picks how the rest is cut into reads (the parser is incremental, so the
//! split points matter), the rest is what the connection delivers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::http::{Limits, Progress, ResponseParser, set_cookie_value};

fuzz_target!(|data: &[u8]| {
    let Some((&stride, stream)) = data.split_first() else {
        return;
    };
    // 0: everything in one read; otherwise reads of 1..=255 bytes.
    let stride = if stride == 0 {
        stream.len().max(1)
    } else {
        stride as usize
    };
    let mut parser = ResponseParser::new(Limits::default());
    let mut done = None;
    for chunk in stream.chunks(stride) {
        match parser.feed(chunk) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Complete(r)) => {
                done = Some(r);
                break;
            }
            Err(_) => return,
        }
    }
    if done.is_none() {
        if let Ok(Progress::Complete(r)) = parser.finish() {
            done = Some(r);
        }
    }
    let Some(response) = done else {
        return;
    };
    assert!((100..=599).contains(&response.status()));
    let _ = response.is_success();
    let _ = response.reason();
    let _ = response.minor_version();
    let _ = response.keep_alive();
    let _ = response.header_str("content-type");
    let _ = response.cookie("kbs-session-id");
    for value in response.header_values("set-cookie") {
        let _ = set_cookie_value(value, "kbs-session-id");
    }
    for (name, value) in response.headers() {
        let _ = (name.len(), value.len());
    }
    let body = response.into_body();
    assert!(body.len() <= Limits::default().max_body_bytes);
});
