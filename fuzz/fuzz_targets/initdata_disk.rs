//! Kata's init-data block device (`initdata::from_block_device`: magic, length, gzip with
//! its bounded inflate), then the TOML it holds. Seeds are made with `to_block_device`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::initdata::{self, InitData, MAX_INITDATA_LEN};

fuzz_target!(|image: &[u8]| {
    let Ok(toml) = initdata::from_block_device(image) else {
        return;
    };
    assert!(toml.len() <= MAX_INITDATA_LEN);
    let _ = InitData::parse(&toml);
});
