//! The TOML config file (`config::parse_file`), its resolution into a run configuration
//! and the init stage's configuration, and the modules file (`parse_modules_file`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = config::parse_file(text) {
        let _ = settings.resolve_init();
        let _ = settings.resolve();
    }
    let _ = config::parse_modules_file(text);
});
