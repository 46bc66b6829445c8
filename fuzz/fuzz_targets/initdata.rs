//! Init-data TOML (`initdata::InitData::parse`): version, algorithm, the `[data]` table;
//! then the KBS endpoint from its `aa.toml` entry, sealgate's own `sealgate.toml` settings
//! (the config parser, with init-data's rank), the digest and its HOST_DATA/MRCONFIGID forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::initdata::InitData;

fuzz_target!(|data: &[u8]| {
    let Ok(initdata) = InitData::parse(data) else {
        return;
    };
    assert_eq!(initdata.raw().as_bytes(), data);
    let _ = initdata.kbs();
    let _ = initdata.settings();
    let _ = initdata.entry("cdh.toml");
    let _ = initdata.snp_host_data();
    let _ = initdata.tdx_mrconfigid();
});
