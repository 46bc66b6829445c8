//! `/etc/hosts` text (`hosts::parse_hosts`, `hosts::lookup_hosts`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::hosts;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let entries = hosts::parse_hosts(text);
    for entry in &entries {
        assert!(!entry.names.is_empty());
    }
    if let Some(name) = entries.first().and_then(|e| e.names.last()) {
        assert!(
            !hosts::lookup_hosts(text, name).is_empty() || name.trim_end_matches('.').is_empty()
        );
    }
    let _ = hosts::lookup_hosts(text, "kbs.example.com");
    let _ = hosts::lookup_hosts(text, "localhost");
});
