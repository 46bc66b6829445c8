//! LUKS2 metadata past the checksum, and keyslot opening: the input is a JSON text, a NUL,
//! then bytes for the keyslot areas. The target wraps the JSON in two valid header copies
//! (the fuzzer cannot forge SHA-256 checksums itself), parses them against a 64 MiB
//! device, and opens every keyslot with tiny KDF limits (so a run stays fast: costs above
//! them are refused, the rest computed) on areas filled from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::volume::kdf::KdfLimits;
use sealgate_core::volume::luks2::{self, Header};
use sha2::{Digest, Sha256};

const HDR: usize = 16384;

fn copy(json: &[u8], secondary: bool) -> Vec<u8> {
    let mut c = vec![0u8; HDR];
    c[..6].copy_from_slice(if secondary {
        b"SKUL\xba\xbe"
    } else {
        b"LUKS\xba\xbe"
    });
    c[6..8].copy_from_slice(&2u16.to_be_bytes());
    c[8..16].copy_from_slice(&(HDR as u64).to_be_bytes());
    c[16..24].copy_from_slice(&1u64.to_be_bytes());
    c[72..78].copy_from_slice(b"sha256");
    c[168..204].copy_from_slice(b"0b3c2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d");
    let at = if secondary { HDR as u64 } else { 0 };
    c[256..264].copy_from_slice(&at.to_be_bytes());
    c[4096..4096 + json.len()].copy_from_slice(json);
    let sum = Sha256::digest(&c);
    c[448..480].copy_from_slice(&sum);
    c
}

const LIMITS: KdfLimits = KdfLimits {
    max_memory_kib: 256,
    max_time_cost: 2,
    max_parallel: 4,
    max_pbkdf2_iterations: 64,
};

fuzz_target!(|data: &[u8]| {
    let (json, rest) = match data.iter().position(|&b| b == 0) {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (data, &[][..]),
    };
    if json.len() >= HDR - 4096 {
        return;
    }
    let mut metadata = copy(json, false);
    metadata.extend(copy(json, true));
    let Ok(h) = Header::parse(&metadata, 64 << 20) else {
        return;
    };
    let fill = |len: usize| -> Vec<u8> {
        if rest.is_empty() {
            vec![0u8; len]
        } else {
            rest.iter().copied().cycle().take(len).collect()
        }
    };
    for ks in h.keyslots() {
        let (_, len) = h.keyslot_area(ks.id).expect("keyslot has an area");
        let _ = luks2::open_keyslot(&h, ks.id, &fill(len), b"fuzz", &LIMITS);
        // A wrongly sized area is refused, not read past.
        let _ = luks2::open_keyslot(&h, ks.id, &fill(len / 2), b"fuzz", &LIMITS);
    }
    if let Err(e) = luks2::open(&h, b"fuzz", &LIMITS, |_, len| Ok::<_, &str>(fill(len))) {
        let _ = e.to_string();
    }
});
