//! The kernel command line (`config::kernel_params`, `config::parse_cmdline`): quoting,
//! `--`, and every `sealgate.*` and `agent.*` parameter with its value parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::config;

fuzz_target!(|data: &[u8]| {
    let Ok(cmdline) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::kernel_params(cmdline);
    let _ = config::parse_cmdline(cmdline);
});
