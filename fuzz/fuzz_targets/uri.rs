//! Resource URIs (`uri::ResourceUri::parse`: `kbs://`, `kbs+<plugin>://`, segments, query)
//! and the KBS base URL with its authority and host (`hosts::Url`, `Authority`, `Host`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::hosts::{Authority, Host, Url};
use sealgate_core::uri::ResourceUri;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = ResourceUri::parse(text) {
        let _ = uri.plugin();
        let _ = uri.query();
        let path = uri.kbs_path();
        // The path goes into a request line: no blank, no control character.
        assert!(!path.bytes().any(|b| b <= b' ' || b == 0x7f));
        assert!(!uri.segments().is_empty());
    }
    if let Ok(url) = Url::parse(text) {
        let _ = url.authority.host_header();
        let _ = url.host_header();
        let _ = url.to_string();
        let target = url.target("/kbs/v0/auth");
        assert!(!target.bytes().any(|b| b <= b' ' || b == 0x7f));
    }
    let _ = Authority::parse(text, 8080);
    let _ = Host::parse(text);
});
