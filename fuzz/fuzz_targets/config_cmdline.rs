//! The kernel command line (`config::kernel_params`, `config::parse_cmdline`): quoting,
//! `--`, and every `sealgate.*` and `agent.*` parameter with its value parser, trusted or not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::config;

fuzz_target!(|data: &[u8]| {
    let Ok(cmdline) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::kernel_params(cmdline);
    // Both trust levels: the untrusted one ignores forbidden keys before parsing their
    // values, the trusted one (an image that opted in) parses them all.
    let _ = config::parse_cmdline(cmdline, false);
    let _ = config::parse_cmdline(cmdline, true);
});
