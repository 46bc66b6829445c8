//! The LUKS2 header (`volume::luks2::Header::parse`): both binary copies, their checksums,
//! the JSON areas, and the metadata checks against a device size; then everything the
//! platform layer asks of a parsed header. The input is the start of a device.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::volume::keyring_key_ref;
use sealgate_core::volume::luks2::{Header, metadata_read_len};

fuzz_target!(|data: &[u8]| {
    for device_size in [data.len() as u64, 64 << 20, u64::MAX] {
        let _ = metadata_read_len(data, device_size);
        let Ok(h) = Header::parse(data, device_size) else {
            continue;
        };
        for slot in h.open_order() {
            let (offset, len) = h.keyslot_area(slot).expect("an ordered slot has an area");
            assert!(offset >= 2 * h.hdr_size());
            assert!(offset + len as u64 <= 2 * h.hdr_size() + h.keyslots_size());
        }
        let seg = h.segment();
        assert!(seg.offset_bytes >= 2 * h.hdr_size() + h.keyslots_size());
        assert!(seg.length_sectors(device_size).is_ok());
        let key_ref = keyring_key_ref(seg.key_bytes, "logon", &h.keyring_description());
        let _ = seg.crypt_params(&key_ref, "/dev/vdb");
        for note in h.notes() {
            let _ = note.to_string();
        }
    }
});
