//! Unit tests on headers built here (the known-answer tests on cryptsetup's own volumes
//! are agent/tests/luks2_kat.rs): a test-only writer makes well-formed LUKS2 metadata
//! and a real keyslot (PBKDF2 + AF split + aes-xts-plain64), which the tests then damage.

use super::*;
use crate::volume::kdf::{KdfError, KdfLimits};
use crate::volume::{SegmentError, keyring_key_ref};
use aes::cipher::KeyInit;
use serde_json::{Value, json};
use std::string::ToString;
use std::vec;

const MIB: u64 = 1 << 20;
const DEVICE: u64 = 32 * MIB;
const PASS: &[u8] = b"high-entropy passphrase from the KBS";
const VOLUME_KEY: [u8; 64] = {
    let mut k = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        k[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
        i += 1;
    }
    k
};

fn b64(b: &[u8]) -> String {
    Base64::encode_string(b)
}

fn digest_of(key: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    Hash::Sha256.pbkdf2(key, b"digest-salt-0123456789abcdef0123", 1000, &mut d);
    d
}

/// cryptsetup-shaped metadata: one keyslot (PBKDF2-SHA256, 1000 iterations) for a
/// 512-bit key, one dynamic segment at 16 MiB.
fn template() -> Value {
    json!({
        "keyslots": {"0": {
            "type": "luks2", "key_size": 64,
            "af": {"type": "luks1", "stripes": 4000, "hash": "sha256"},
            "area": {"type": "raw", "offset": "32768", "size": "258048",
                     "encryption": "aes-xts-plain64", "key_size": 64},
            "kdf": {"type": "pbkdf2", "hash": "sha256", "iterations": 1000,
                    "salt": b64(b"keyslot-salt-0123456789abcdef012")}
        }},
        "tokens": {},
        "segments": {"0": {"type": "crypt", "offset": "16777216", "size": "dynamic",
                           "iv_tweak": "0", "encryption": "aes-xts-plain64",
                           "sector_size": 512}},
        "digests": {"0": {"type": "pbkdf2", "keyslots": ["0"], "segments": ["0"],
                          "hash": "sha256", "iterations": 1000,
                          "salt": b64(b"digest-salt-0123456789abcdef0123"),
                          "digest": b64(&digest_of(&VOLUME_KEY))}},
        "config": {"json_size": "12288", "keyslots_size": "16744448"}
    })
}

/// Options of one header copy.
#[derive(Clone)]
struct CopyOpts {
    hdr_size: u64,
    seqid: u64,
    label: &'static str,
    checksum: &'static str,
    uuid: &'static str,
}

impl Default for CopyOpts {
    fn default() -> Self {
        CopyOpts {
            hdr_size: 16384,
            seqid: 3,
            label: "",
            checksum: "sha256",
            uuid: "0b3c2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d",
        }
    }
}

/// One copy: binary header + JSON area (the text then NULs), with its checksum.
fn copy_bytes(json_text: &[u8], o: &CopyOpts, secondary: bool) -> Vec<u8> {
    let mut c = vec![0u8; o.hdr_size as usize];
    c[..6].copy_from_slice(if secondary {
        b"SKUL\xba\xbe"
    } else {
        b"LUKS\xba\xbe"
    });
    c[6..8].copy_from_slice(&2u16.to_be_bytes());
    c[8..16].copy_from_slice(&o.hdr_size.to_be_bytes());
    c[16..24].copy_from_slice(&o.seqid.to_be_bytes());
    c[24..24 + o.label.len()].copy_from_slice(o.label.as_bytes());
    c[72..72 + o.checksum.len()].copy_from_slice(o.checksum.as_bytes());
    c[104..168].fill(if secondary { 0x5a } else { 0xa5 });
    c[168..168 + o.uuid.len()].copy_from_slice(o.uuid.as_bytes());
    let at: u64 = if secondary { o.hdr_size } else { 0 };
    c[256..264].copy_from_slice(&at.to_be_bytes());
    let n = json_text.len().min(c.len() - 4096);
    c[4096..4096 + n].copy_from_slice(&json_text[..n]);
    reseal(&mut c, o.checksum);
    c
}

/// Recomputes a copy's checksum (after a test changed it).
fn reseal(c: &mut [u8], alg: &str) {
    let hash = Hash::from_name(alg).unwrap_or(Hash::Sha256);
    c[448..512].fill(0);
    let mut sum = [0u8; 64];
    let (bin, area) = c.split_at(4096);
    hash.digest_into(&[bin, area], &mut sum[..hash.output_len()]);
    c[448..448 + hash.output_len()].copy_from_slice(&sum[..hash.output_len()]);
}

fn metadata_with(json: &Value, p: &CopyOpts, s: &CopyOpts) -> Vec<u8> {
    let text = serde_json::to_vec(json).unwrap();
    let mut m = copy_bytes(&text, p, false);
    m.extend(copy_bytes(&text, s, true));
    m
}

fn metadata(json: &Value) -> Vec<u8> {
    metadata_with(json, &CopyOpts::default(), &CopyOpts::default())
}

fn parse(json: &Value) -> Result<Header, HeaderError> {
    Header::parse(&metadata(json), DEVICE)
}

fn invalid_msg(json: &Value) -> String {
    match parse(json) {
        Err(HeaderError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn unsupported_msg(json: &Value) -> String {
    match parse(json) {
        Err(HeaderError::Unsupported(m)) => m,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

/// The keyslot area for `key` under `pass` with the template's keyslot parameters:
/// AF-split (deterministic filler stripes), then aes-xts-plain64 under the PBKDF2 key.
fn seal_area(key: &[u8], pass: &[u8]) -> Vec<u8> {
    let kb = key.len();
    let stripes = AF_STRIPES as usize;
    let mut material = vec![0u8; af_material_len(kb)];
    for (i, b) in material[..(stripes - 1) * kb].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add((i >> 8) as u8);
    }
    let mut d = vec![0u8; kb];
    for i in 0..stripes - 1 {
        for (a, b) in d.iter_mut().zip(&material[i * kb..(i + 1) * kb]) {
            *a ^= b;
        }
        super::keyslot::tests_diffuse(&mut d, Hash::Sha256);
    }
    for (j, b) in key.iter().enumerate() {
        material[(stripes - 1) * kb + j] = d[j] ^ b;
    }
    let mut area_key = [0u8; 64];
    Hash::Sha256.pbkdf2(
        pass,
        b"keyslot-salt-0123456789abcdef012",
        1000,
        &mut area_key,
    );
    let c1 = aes::Aes256::new_from_slice(&area_key[..32]).unwrap();
    let c2 = aes::Aes256::new_from_slice(&area_key[32..]).unwrap();
    xts_mode::Xts128::new(c1, c2).encrypt_area(&mut material, 512, 0, xts_mode::get_tweak_default);
    material
}

#[test]
fn a_well_formed_header_parses() {
    let h = parse(&template()).unwrap();
    assert_eq!(h.uuid(), "0b3c2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d");
    assert_eq!(h.seqid(), 3);
    assert_eq!(h.hdr_size(), 16384);
    assert_eq!(h.keyslots_size(), 16744448);
    assert_eq!(h.copy_used(), Copy::Primary);
    assert!(h.notes().is_empty());
    assert_eq!(h.open_order(), vec![0]);
    assert_eq!(h.keyslot_area(0), Some((32768, 256000)));
    assert_eq!(h.keyslot_area(1), None);
    assert_eq!(h.digest().id, 0);
    let seg = h.segment();
    assert_eq!(seg.offset_bytes, 16 * MIB);
    assert_eq!(seg.size, SegmentSize::Dynamic);
    assert_eq!(seg.key_bytes, 64);
    assert_eq!(seg.length_sectors(DEVICE), Ok(16 * MIB / 512));
    assert_eq!(
        h.keyring_description(),
        "cryptsetup:0b3c2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d-d0"
    );
    let key_ref = keyring_key_ref(64, "logon", &h.keyring_description());
    assert_eq!(
        seg.crypt_params(&key_ref, "253:0"),
        "aes-xts-plain64 :64:logon:cryptsetup:0b3c2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d-d0 0 \
         253:0 32768"
    );
    assert_eq!(metadata_read_len(&metadata(&template()), DEVICE), 32768);
    assert_eq!(metadata_read_len(&[0u8; 4096], DEVICE), MAX_METADATA_LEN);
    assert_eq!(metadata_read_len(&[0u8; 4096], 1 << 20), 1 << 20);
}

#[test]
fn a_keyslot_opens_and_a_wrong_passphrase_does_not() {
    let h = parse(&template()).unwrap();
    let area = seal_area(&VOLUME_KEY, PASS);
    let key = open_keyslot(&h, 0, &area, PASS, &KdfLimits::DEFAULT).unwrap();
    assert_eq!(key.as_bytes(), &VOLUME_KEY[..]);
    assert_eq!(std::format!("{key:?}"), "VolumeKey(64 bytes)");
    let err = open_keyslot(&h, 0, &area, b"wrong", &KdfLimits::DEFAULT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "keyslot did not open: keyslot 0: wrong passphrase"
    );
    let err = open(&h, b"wrong", &KdfLimits::DEFAULT, |o, l| {
        assert_eq!((o, l), (32768, 256000));
        Ok::<_, &str>(area.clone())
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "keyslot did not open: wrong passphrase for keyslot 0"
    );
    let opened = open(&h, PASS, &KdfLimits::DEFAULT, |_, _| {
        Ok::<_, &str>(area.clone())
    })
    .unwrap();
    assert_eq!(opened.slot, 0);
    // Area bytes of the wrong length are refused, not read past.
    let err = open_keyslot(&h, 0, &area[..1000], PASS, &KdfLimits::DEFAULT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "keyslot did not open: keyslot 0: 1000 area bytes given, 256000 needed"
    );
    assert_eq!(
        open_keyslot(&h, 7, &area, PASS, &KdfLimits::DEFAULT).unwrap_err(),
        OpenError::NoSuchKeyslot(7)
    );
    // A read error is reported with the slot.
    let err = open(&h, PASS, &KdfLimits::DEFAULT, |_, _| Err("I/O error")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "keyslot did not open: keyslot 0: reading its area failed: I/O error"
    );
}

#[test]
fn sha512_and_sha384_checksums() {
    for alg in ["sha512", "sha384"] {
        let o = CopyOpts {
            checksum: alg,
            ..CopyOpts::default()
        };
        let h = Header::parse(&metadata_with(&template(), &o, &o), DEVICE).unwrap();
        assert!(h.notes().is_empty());
    }
    let o = CopyOpts {
        checksum: "sha1",
        ..CopyOpts::default()
    };
    let err = Header::parse(&metadata_with(&template(), &o, &o), DEVICE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no valid LUKS2 header: primary: checksum algorithm \"sha1\" is not supported \
         (sha256, sha384, sha512); secondary: checksum algorithm \"sha1\" is not supported \
         (sha256, sha384, sha512)"
    );
}

#[test]
fn one_damaged_copy_the_other_is_used() {
    let mut m = metadata(&template());
    m[4096 + 20] ^= 1; // primary JSON: checksum mismatch
    let h = Header::parse(&m, DEVICE).unwrap();
    assert_eq!(h.copy_used(), Copy::Secondary);
    assert_eq!(
        h.notes(),
        &[HeaderNote::CopyInvalid {
            copy: Copy::Primary,
            error: CopyError::Checksum
        }]
    );
    assert!(h.notes()[0].to_string().contains("cryptsetup repair"));

    let mut m = metadata(&template());
    m[16384] = b'X'; // secondary magic
    let h = Header::parse(&m, DEVICE).unwrap();
    assert_eq!(h.copy_used(), Copy::Primary);
    assert_eq!(
        h.notes(),
        &[HeaderNote::CopyInvalid {
            copy: Copy::Secondary,
            error: CopyError::Magic
        }]
    );

    // The primary's size field damaged: the secondary is searched for and found.
    let mut m = metadata(&template());
    m[8..16].copy_from_slice(&(1u64 << 40).to_be_bytes());
    let h = Header::parse(&m, DEVICE).unwrap();
    assert_eq!(h.copy_used(), Copy::Secondary);

    // Both damaged: the secondary's error is the one at the primary's declared size.
    let mut m = metadata(&template());
    m[4096 + 20] ^= 1;
    m[16384 + 4096 + 20] ^= 1;
    assert_eq!(
        Header::parse(&m, DEVICE).unwrap_err(),
        HeaderError::NoValidCopy {
            primary: CopyError::Checksum,
            secondary: CopyError::Checksum
        }
    );
    // No size declared by the primary, and no secondary anywhere.
    let mut m = metadata(&template());
    m[0] = 0;
    m[16384] = 0;
    assert_eq!(
        Header::parse(&m, DEVICE).unwrap_err(),
        HeaderError::NoValidCopy {
            primary: CopyError::Magic,
            secondary: CopyError::NotFound
        }
    );
}

#[test]
fn the_newer_copy_wins() {
    let mut newer = template();
    newer["keyslots"]["0"]["priority"] = json!(2);
    let p = CopyOpts::default();
    let s = CopyOpts {
        seqid: 4,
        ..CopyOpts::default()
    };
    let mut m = copy_bytes(&serde_json::to_vec(&template()).unwrap(), &p, false);
    m.extend(copy_bytes(&serde_json::to_vec(&newer).unwrap(), &s, true));
    let h = Header::parse(&m, DEVICE).unwrap();
    assert_eq!(h.copy_used(), Copy::Secondary);
    assert_eq!(h.seqid(), 4);
    assert_eq!(h.keyslots()[0].priority, Priority::Prefer);
    assert_eq!(
        h.notes(),
        &[HeaderNote::CopyOlder {
            copy: Copy::Primary,
            seqid: 3,
            newer: 4
        }]
    );
}

#[test]
fn same_seqid_different_contents_is_refused() {
    let mut other = template();
    other["keyslots"]["0"]["priority"] = json!(2);
    let o = CopyOpts::default();
    let mut m = copy_bytes(&serde_json::to_vec(&template()).unwrap(), &o, false);
    m.extend(copy_bytes(&serde_json::to_vec(&other).unwrap(), &o, true));
    let err = Header::parse(&m, DEVICE).unwrap_err();
    assert_eq!(err, HeaderError::Inconsistent { seqid: 3 });
    assert!(err.to_string().contains("both have seqid 3 but differ"));
    // A different label alone, too.
    let s = CopyOpts {
        label: "other",
        ..CopyOpts::default()
    };
    let m = metadata_with(&template(), &o, &s);
    assert_eq!(
        Header::parse(&m, DEVICE).unwrap_err(),
        HeaderError::Inconsistent { seqid: 3 }
    );
}

#[test]
fn bad_binary_headers() {
    let t = template();
    // Truncated: fewer bytes than the primary's hdr_size.
    let m = metadata(&t);
    match Header::parse(&m[..10000], DEVICE).unwrap_err() {
        HeaderError::NoValidCopy { primary, .. } => assert_eq!(
            primary,
            CopyError::Truncated {
                need: 16384,
                have: 10000
            }
        ),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        Header::parse(&[], DEVICE),
        Err(HeaderError::NoValidCopy { .. })
    ));
    // Version 1 (LUKS1).
    let mut m = metadata(&t);
    m[7] = 1;
    m[16384 + 7] = 1;
    let e = Header::parse(&m, DEVICE).unwrap_err().to_string();
    assert!(e.contains("LUKS1 header (only LUKS2 is supported)"), "{e}");
    // A header size outside the allowed set.
    for bad in [8192u64, 12288, 8 << 20] {
        let o = CopyOpts {
            hdr_size: bad,
            ..CopyOpts::default()
        };
        let text = serde_json::to_vec(&t).unwrap();
        let m = copy_bytes(&text, &o, false);
        match Header::parse(&m, DEVICE).unwrap_err() {
            HeaderError::NoValidCopy { primary, .. } => {
                assert_eq!(primary, CopyError::HeaderSize(bad))
            }
            e => panic!("{e:?}"),
        }
    }
    // hdr_offset that lies.
    let mut m = metadata(&t);
    m[256..264].copy_from_slice(&4096u64.to_be_bytes());
    reseal(&mut m[..16384], "sha256");
    assert_eq!(
        Header::parse(&m, DEVICE).unwrap().notes(),
        &[HeaderNote::CopyInvalid {
            copy: Copy::Primary,
            error: CopyError::Offset { at: 0, says: 4096 }
        }]
    );
}

#[test]
fn bad_json_areas() {
    let o = CopyOpts::default();
    let cases: [(&[u8], &str); 6] = [
        (b" {}", "does not start with '{'"),
        // Trailing text before the NUL: serde_json's "trailing characters".
        (b"{\"a\":1}x", "not a valid JSON object"),
        (b"{\"a\":1,", "not a valid JSON object"),
        (b"{\"a\":1,\"a\":2}", "an object has a duplicate member"),
        (
            b"{\"a\":1}\0\0\0\0\0x",
            "bytes other than NUL after the JSON text",
        ),
        (b"{}", ""),
    ];
    for (text, why) in cases {
        let mut m = copy_bytes(text, &o, false);
        m.extend(copy_bytes(text, &o, true));
        let e = Header::parse(&m, DEVICE).unwrap_err();
        if why.is_empty() {
            // Well-formed JSON, wrong shape.
            assert_eq!(
                e,
                HeaderError::Invalid("the metadata has no \"config\"".into())
            );
        } else {
            assert_eq!(
                e,
                HeaderError::NoValidCopy {
                    primary: CopyError::Json(why),
                    secondary: CopyError::Json(why)
                },
                "{text:?}"
            );
        }
    }
    // Overlong: JSON filling the whole area, no NUL after it.
    let mut long = b"{\"x\":\"".to_vec();
    long.resize(16384 - 4096 - 2, b'a');
    long.extend(b"\"}");
    let mut m = copy_bytes(&long, &o, false);
    m.extend(copy_bytes(&long, &o, true));
    assert_eq!(
        Header::parse(&m, DEVICE).unwrap_err(),
        HeaderError::NoValidCopy {
            primary: CopyError::Json("no NUL byte after the JSON text"),
            secondary: CopyError::Json("no NUL byte after the JSON text")
        }
    );
    // Nested 5000 deep: serde_json's recursion limit, no stack overflow.
    let mut deep = vec![b'{'];
    deep.extend(b"\"a\":");
    deep.extend(b"[".repeat(5000));
    deep.extend(b"]".repeat(5000));
    deep.push(b'}');
    let m = copy_bytes(&deep, &o, false);
    assert!(matches!(
        Header::parse(&m, DEVICE),
        Err(HeaderError::NoValidCopy {
            primary: CopyError::Json("not a valid JSON object"),
            ..
        })
    ));
}

#[test]
fn config_checks() {
    let mut t = template();
    t["config"]["json_size"] = json!("4096");
    assert!(invalid_msg(&t).contains("json_size 4096 does not match"));
    let mut t = template();
    t["config"]["keyslots_size"] = json!("18446744073709551615");
    assert!(invalid_msg(&t).contains("keyslots_size"));
    let mut t = template();
    t["config"]["keyslots_size"] = json!("33554432");
    assert!(invalid_msg(&t).contains("the device has 33554432"));
    let mut t = template();
    t["config"]["keyslots_size"] = json!(16744448);
    assert!(invalid_msg(&t).contains("config.keyslots_size is not a string"));
    let mut t = template();
    t["config"]["requirements"] = json!({"mandatory": ["online-reencrypt-v2"]});
    assert!(unsupported_msg(&t).contains("online-reencrypt-v2"));
    // An empty list is fine.
    let mut t = template();
    t["config"]["requirements"] = json!({"mandatory": []});
    parse(&t).unwrap();
}

#[test]
fn segment_checks() {
    let mut t = template();
    t["segments"]["0"]["offset"] = json!("0");
    assert!(unsupported_msg(&t).contains("detached header"));
    let mut t = template();
    t["segments"]["0"]["offset"] = json!("1048576");
    assert!(invalid_msg(&t).contains("inside the keyslots region"));
    let mut t = template();
    t["segments"]["0"]["integrity"] =
        json!({"type": "hmac(sha256)", "journal_encryption": "none", "journal_integrity": "none"});
    assert!(unsupported_msg(&t).contains("integrity"));
    let mut t = template();
    t["segments"]["1"] = t["segments"]["0"].clone();
    assert!(unsupported_msg(&t).contains("2 data segments"));
    let mut t = template();
    t["segments"]["0"]["flags"] = json!(["backup-final"]);
    assert!(unsupported_msg(&t).contains("reencryption"));
    let mut t = template();
    t["segments"]["0"]["encryption"] = json!("serpent-xts-plain64");
    assert!(unsupported_msg(&t).contains("serpent-xts-plain64"));
    let mut t = template();
    t["segments"]["0"]["sector_size"] = json!(8192);
    assert!(invalid_msg(&t).contains("sector size 8192"));
    let mut t = template();
    t["segments"]["0"]["size"] = json!("16777728");
    assert!(invalid_msg(&t).contains("does not fit the device"));
    let mut t = template();
    t["segments"]["0"]["size"] = json!("18446744073709551615");
    assert!(invalid_msg(&t).contains("does not fit the device"));
    let mut t = template();
    t["segments"]["0"]["size"] = json!("1048576");
    assert_eq!(
        parse(&t).unwrap().segment().size,
        SegmentSize::Bytes(1 << 20)
    );
    let mut t = template();
    t["segments"]["0"]["type"] = json!("linear");
    assert!(unsupported_msg(&t).contains("linear"));
    // A device that ends at the segment's start.
    let e = Header::parse(&metadata(&template()), 16 * MIB).unwrap_err();
    assert!(e.to_string().contains("does not fit the device"), "{e}");
    let mut t = template();
    t["segments"]["0"]["sector_size"] = json!(4096);
    let h = parse(&t).unwrap();
    // Not a whole number of 4096-byte sectors.
    assert_eq!(
        h.segment().length_sectors(DEVICE + 512),
        Err(SegmentError::NotSectorAligned {
            len: 16 * MIB + 512,
            sector_size: 4096
        })
    );
}

#[test]
fn keyslot_area_checks() {
    let area = |offset: &str, size: &str| {
        let mut t = template();
        t["keyslots"]["0"]["area"]["offset"] = json!(offset);
        t["keyslots"]["0"]["area"]["size"] = json!(size);
        t
    };
    // Overlapping the headers, past the keyslots region, past the device, wrapping.
    assert!(invalid_msg(&area("0", "258048")).contains("outside the keyslots region"));
    assert!(invalid_msg(&area("16384", "258048")).contains("outside the keyslots region"));
    assert!(invalid_msg(&area("16777216", "258048")).contains("outside the keyslots region"));
    assert!(invalid_msg(&area("33554432", "258048")).contains("outside the keyslots region"));
    assert!(invalid_msg(&area("32768", "18446744073709551615")).contains("overflows"));
    // Too small for its stripes.
    assert!(invalid_msg(&area("32768", "4096")).contains("smaller than its 256000 bytes"));
    assert!(invalid_msg(&area("33280", "258048")).contains("not 4096-aligned"));
    // Overlapping another keyslot's area (any keyslot, assigned or not).
    let mut t = template();
    t["keyslots"]["1"] = t["keyslots"]["0"].clone();
    t["keyslots"]["1"]["area"]["offset"] = json!("65536");
    assert!(invalid_msg(&t).contains("overlaps keyslot"));
    // Huge or unusual stripes.
    for stripes in [json!(4_000_000), json!(1), json!(u64::MAX)] {
        let mut t = template();
        t["keyslots"]["0"]["af"]["stripes"] = stripes;
        let m = invalid_msg(&t);
        assert!(m.contains("stripes") || m.contains("uint32"), "{m}");
    }
    // Absurd key sizes.
    let mut t = template();
    t["keyslots"]["0"]["key_size"] = json!(1_000_000);
    assert!(invalid_msg(&t).contains("key size"));
    // The digest names a keyslot that does not exist.
    let mut t = template();
    t["digests"]["0"]["keyslots"] = json!(["0", "5"]);
    assert!(invalid_msg(&t).contains("keyslot 5, which does not exist"));
    // No keyslot for the segment.
    let mut t = template();
    t["digests"]["0"]["keyslots"] = json!([]);
    assert!(unsupported_msg(&t).contains("no keyslot"));
    let mut t = template();
    t["digests"]["0"]["segments"] = json!([]);
    assert!(unsupported_msg(&t).contains("no digest"));
    // Ids.
    let mut t = template();
    t["keyslots"]["32"] = t["keyslots"]["0"].clone();
    assert!(invalid_msg(&t).contains("keyslot id \"32\""));
}

#[test]
fn keyslots_sealgate_cannot_run_are_skipped_and_named() {
    let mut t = template();
    t["keyslots"]["0"]["kdf"]["type"] = json!("scrypt");
    assert!(unsupported_msg(&t).contains("keyslot 0: KDF \"scrypt\""));
    // With a usable keyslot beside it, it is skipped and named when nothing opens.
    let mut t = template();
    t["keyslots"]["1"] = t["keyslots"]["0"].clone();
    t["keyslots"]["1"]["area"]["offset"] = json!("290816");
    t["keyslots"]["1"]["af"]["hash"] = json!("whirlpool");
    t["digests"]["0"]["keyslots"] = json!(["0", "1"]);
    t["tokens"]["0"] = json!({"type": "systemd-tpm2", "keyslots": ["1"]});
    let h = parse(&t).unwrap();
    assert_eq!(h.open_order(), vec![0]);
    assert_eq!(h.tokens(), &["systemd-tpm2".to_string()]);
    let err = open(&h, b"wrong", &KdfLimits::DEFAULT, |_, _| {
        Ok::<_, &str>(seal_area(&VOLUME_KEY, PASS))
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "keyslot did not open: wrong passphrase for keyslot 0; keyslot 1 skipped: \
         anti-forensic hash \"whirlpool\" is not supported (sha256, sha384, sha512); \
         tokens present but not run by sealgate: systemd-tpm2"
    );
}

#[test]
fn priorities_order_the_keyslots() {
    let mut t = template();
    for (id, off, prio) in [("1", "290816", 1), ("2", "552960", 2), ("3", "815104", 0)] {
        t["keyslots"][id] = t["keyslots"]["0"].clone();
        t["keyslots"][id]["area"]["offset"] = json!(off);
        t["keyslots"][id]["priority"] = json!(prio);
    }
    t["digests"]["0"]["keyslots"] = json!(["0", "1", "2", "3"]);
    let h = parse(&t).unwrap();
    assert_eq!(h.open_order(), vec![2, 0, 1]);
    let mut t2 = t.clone();
    t2["keyslots"]["1"]["priority"] = json!(3);
    assert!(invalid_msg(&t2).contains("priority 3"));
    // Every slot holds the same area layout: slot 2 (preferred) opens first.
    let mut reads = Vec::new();
    let opened = open(&h, PASS, &KdfLimits::DEFAULT, |o, _| {
        reads.push(o);
        Ok::<_, &str>(seal_area(&VOLUME_KEY, PASS))
    })
    .unwrap();
    assert_eq!((opened.slot, reads), (2, vec![552960]));
}

#[test]
fn absurd_kdf_costs_are_refused_before_any_work() {
    // argon2 with 4 TiB, 2^32-1 passes, 2^24 lanes: refused at once (the test would
    // otherwise run out of memory or time).
    for (memory, time, cpus, what) in [
        (
            u32::MAX,
            4,
            1,
            "argon2 memory (KiB) 4294967295 is over the limit 1048576",
        ),
        (
            65536,
            u32::MAX,
            1,
            "argon2 time cost 4294967295 is over the limit 64",
        ),
        (
            65536,
            4,
            1 << 24,
            "argon2 parallel lanes 16777216 is over the limit 4",
        ),
        (4, 4, 1, "invalid KDF parameters: argon2 needs"),
    ] {
        let mut t = template();
        t["keyslots"]["0"]["kdf"] = json!({"type": "argon2id", "time": time, "memory": memory,
                                           "cpus": cpus, "salt": b64(&[7u8; 32])});
        let h = parse(&t).unwrap();
        let mut reads = 0;
        let err = open(&h, PASS, &KdfLimits::DEFAULT, |_, _| {
            reads += 1;
            Ok::<_, &str>(vec![0u8; 256000])
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(what), "{err}");
        assert_eq!(reads, 0, "refused before reading the area");
        let err = open_keyslot(&h, 0, &[0u8; 256000], PASS, &KdfLimits::DEFAULT).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
    let mut t = template();
    t["keyslots"]["0"]["kdf"]["iterations"] = json!(u32::MAX);
    let h = parse(&t).unwrap();
    let err = open_keyslot(&h, 0, &[0u8; 256000], PASS, &KdfLimits::DEFAULT).unwrap_err();
    assert_eq!(
        err,
        OpenError::Keyslot {
            slot: 0,
            why: SlotFailure::Kdf(KdfError::OverLimit {
                what: "PBKDF2 iterations",
                value: u32::MAX,
                limit: 20_000_000
            })
        }
    );
    let mut t = template();
    t["keyslots"]["0"]["kdf"]["iterations"] = json!(0);
    let h = parse(&t).unwrap();
    let err = open_keyslot(&h, 0, &[0u8; 256000], PASS, &KdfLimits::DEFAULT).unwrap_err();
    assert!(err.to_string().contains("0 iterations"), "{err}");
    // The digest's iterations too: no keyslot is tried.
    let mut t = template();
    t["digests"]["0"]["iterations"] = json!(4_000_000_000u32);
    let h = parse(&t).unwrap();
    let err = open(
        &h,
        PASS,
        &KdfLimits::DEFAULT,
        |_, _| -> Result<Vec<u8>, &str> { panic!("no area is read") },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the volume key digest is refused: PBKDF2 iterations 4000000000"),
        "{err}"
    );
}

#[test]
fn argon2_within_limits_runs() {
    // A real argon2id keyslot at a tiny cost, end to end through the KDF module.
    let kdf = crate::volume::kdf::Kdf::Argon2 {
        variant: crate::volume::kdf::Argon2Variant::Argon2id,
        time: 1,
        memory_kib: 64,
        parallel: 2,
        salt: vec![1u8; 32],
    };
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    crate::volume::kdf::derive(&kdf, PASS, &KdfLimits::DEFAULT, &mut a).unwrap();
    crate::volume::kdf::derive(&kdf, PASS, &KdfLimits::DEFAULT, &mut b).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, [0u8; 32]);
}

#[test]
fn the_largest_headers_are_bounded() {
    // 4 MiB copies (the largest size): a JSON area of ~2 million tiny values is refused
    // before it is parsed into a tree.
    let o = CopyOpts {
        hdr_size: 4 << 20,
        ..CopyOpts::default()
    };
    let mut text = b"{\"x\":[".to_vec();
    while text.len() < (4 << 20) - 4096 - 16 {
        text.extend(b"0,");
    }
    text.extend(b"0]}");
    let m = copy_bytes(&text, &o, false);
    assert_eq!(
        Header::parse(&m, 64 * MIB).unwrap_err(),
        HeaderError::NoValidCopy {
            primary: CopyError::Json("more than 65536 JSON values"),
            // Only the primary was given.
            secondary: CopyError::Truncated {
                need: (4 << 20) + 4096,
                have: 4 << 20
            }
        }
    );
    // Strings do not count: a 4 MiB header whose token carries a 3.6 MB string parses.
    let mut t = template();
    t["config"]["json_size"] = json!(((4u64 << 20) - 4096).to_string());
    t["config"]["keyslots_size"] = json!("8388608");
    t["keyslots"]["0"]["area"]["offset"] = json!("8388608");
    t["tokens"]["0"] = json!({"type": "x", "keyslots": [], "blob": "a,[{".repeat(900_000)});
    let m = metadata_with(&t, &o, &o);
    let h = Header::parse(&m, 64 * MIB).unwrap();
    assert_eq!(h.hdr_size(), 4 << 20);
    assert_eq!(h.tokens(), &["x".to_string()]);
    // Its secondary is at 4 MiB; with the primary damaged it is searched for and found.
    let mut m = m;
    m[0] = 0;
    assert_eq!(
        Header::parse(&m, 64 * MIB).unwrap().copy_used(),
        Copy::Secondary
    );
    assert_eq!(json_values(b"{\"a\\\",[\":[1,2],\"b\":{}}"), 8);
}

#[test]
fn unlock_reads_parses_and_opens() {
    let mut device = metadata(&template());
    device.resize(DEVICE as usize, 0);
    device[32768..32768 + 256000].copy_from_slice(&seal_area(&VOLUME_KEY, PASS));
    let mut reads = Vec::new();
    let u = unlock(DEVICE, PASS, &KdfLimits::DEFAULT, |o, l| {
        reads.push((o, l));
        Ok::<_, &str>(device[o as usize..o as usize + l].to_vec())
    })
    .unwrap();
    assert_eq!(reads, vec![(0, 4096), (0, 32768), (32768, 256000)]);
    assert_eq!((u.slot, u.key.as_bytes()), (0, &VOLUME_KEY[..]));
    let e = unlock(DEVICE, b"nope", &KdfLimits::DEFAULT, |o, l| {
        Ok::<_, &str>(device[o as usize..o as usize + l].to_vec())
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "keyslot did not open: wrong passphrase for keyslot 0"
    );
    let e = unlock(DEVICE, PASS, &KdfLimits::DEFAULT, |_, _| Err("EIO")).unwrap_err();
    assert_eq!(e.to_string(), "cannot read the LUKS2 header: EIO");
    let e = unlock(4096, PASS, &KdfLimits::DEFAULT, |_, l| {
        Ok::<_, &str>(vec![0u8; l])
    })
    .unwrap_err();
    assert!(matches!(
        e,
        UnlockError::Header(HeaderError::NoValidCopy { .. })
    ));
}

#[test]
fn one_open_does_at_most_the_work_of_one_keyslot_at_the_limits() {
    // Four argon2id keyslots of 64 KiB x 1 pass under limits of 64 KiB x 2 passes: the
    // first two are tried (wrong passphrase), the others would go over the budget.
    let mut t = template();
    t["keyslots"]["0"]["kdf"] = json!({"type": "argon2id", "time": 1, "memory": 64,
                                       "cpus": 1, "salt": b64(&[7u8; 32])});
    for (id, off) in [("1", "290816"), ("2", "552960"), ("3", "815104")] {
        t["keyslots"][id] = t["keyslots"]["0"].clone();
        t["keyslots"][id]["area"]["offset"] = json!(off);
    }
    t["digests"]["0"]["keyslots"] = json!(["0", "1", "2", "3"]);
    let h = parse(&t).unwrap();
    let limits = KdfLimits {
        max_memory_kib: 64,
        max_time_cost: 2,
        ..KdfLimits::DEFAULT
    };
    let mut reads = 0;
    let err = open(&h, PASS, &limits, |_, len| {
        reads += 1;
        Ok::<_, &str>(vec![0u8; len])
    })
    .unwrap_err();
    assert_eq!(reads, 2);
    let msg = err.to_string();
    assert!(msg.starts_with("keyslot did not open: wrong passphrase for keyslots 0, 1; keyslot 2: not tried: the keyslots before it used the KDF work"), "{msg}");
    assert!(msg.contains("keyslot 3: not tried"), "{msg}");
    // PBKDF2: keyslot and digest iterations count; the budget is twice the limit.
    let mut t = template();
    t["keyslots"]["0"]["kdf"]["iterations"] = json!(1000);
    t["keyslots"]["1"] = t["keyslots"]["0"].clone();
    t["keyslots"]["1"]["area"]["offset"] = json!("290816");
    t["digests"]["0"]["keyslots"] = json!(["0", "1"]);
    let h = parse(&t).unwrap();
    let limits = KdfLimits {
        max_pbkdf2_iterations: 1500,
        ..KdfLimits::DEFAULT
    };
    let msg = open(&h, PASS, &limits, |_, len| Ok::<_, &str>(vec![0u8; len]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("wrong passphrase for keyslot 0; keyslot 1: not tried"),
        "{msg}"
    );
}
