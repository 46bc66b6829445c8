//! The DER walker (`firmware_glue::der`): certificates as the VCEK/VLEK are read
//! (`parse_certificate`, the EC public key, the extensions and AMD's SPL values), and a
//! generic recursive walk of any element tree with `Reader`.
#![no_main]

use firmware_glue::der::{self, Reader, oid, tag};
use libfuzzer_sys::fuzz_target;

/// Walks every element, descending into constructed ones (bounded depth).
fn walk(mut reader: Reader<'_>, depth: usize) {
    while !reader.is_empty() {
        let Ok(tlv) = reader.read() else {
            return;
        };
        assert!(tlv.raw.len() >= tlv.value.len() + 2);
        let _ = tlv.as_u64();
        let _ = tlv.bit_string();
        if tlv.tag & 0x20 != 0 && depth < 32 {
            walk(tlv.reader(), depth + 1);
        }
    }
    let _ = reader.finish();
}

fuzz_target!(|data: &[u8]| {
    walk(Reader::new(data), 0);
    let mut reader = Reader::new(data);
    let _ = reader.optional(tag::SEQUENCE);
    let _ = reader.expect(tag::INTEGER);
    let _ = reader.peek_tag();

    let Ok(cert) = der::parse_certificate(data) else {
        return;
    };
    for curve in [oid::SECP384R1, oid::PRIME256V1] {
        if let Ok(point) = cert.ec_public_key(curve) {
            assert_eq!(point.first(), Some(&0x04));
        }
    }
    let mut n = 0;
    for ext in cert.extensions() {
        n += 1;
        assert!(n <= data.len(), "the extensions iterator must end");
        if let Ok(ext) = ext {
            if let Ok(v) = ext.value_tlv() {
                let _ = v.as_u64();
            }
        }
    }
    for id in [
        oid::AMD_BL_SPL,
        oid::AMD_TEE_SPL,
        oid::AMD_SNP_SPL,
        oid::AMD_UCODE_SPL,
        oid::AMD_FMC_SPL,
        oid::AMD_HW_ID,
    ] {
        if let Ok(Some(ext)) = cert.extension(id) {
            let _ = ext.value_tlv().and_then(|v| v.as_u64());
        }
    }
});
