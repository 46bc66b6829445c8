//! `resolv.conf` text (`dns::ResolvConf::parse`) and the search list it gives a name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::dns::ResolvConf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let conf = ResolvConf::parse(text);
    for name in ["kbs", "kbs.example.com", "kbs.example.com.", "a.b"] {
        for candidate in conf.search_names(name) {
            assert!(candidate.len() <= 253);
        }
    }
});
