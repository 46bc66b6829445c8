//! TDX against real samples (`shared/vectors/upstream`): the TDREPORT from guest-components'
//! tests, the v4 and v5 quotes from Trustee's tests; lying lengths; evidence JSON.

use firmware_glue::tdx::{self, BodyKind, Quote, QuoteError, TdReport, TdReportError};
use serde_json::{Value, json};

fn vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/vectors/upstream/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn tdreport_sample() {
    let raw = vector("tdx_report_1.bin");
    let r = TdReport::new_checked(&raw).unwrap();
    assert_eq!(r.report_type(), &[0x81, 0x00, 0x01, 0x00]);
    assert_eq!(r.version(), 1, "TDX 1.5 module");
    // guest-components' get_runtime_measurement test values (PCR 1 -> RTMR0, PCR 2 -> RTMR1)
    assert_eq!(
        r.rtmr(0).unwrap().to_vec(),
        hex(
            "f4ec1a04670fe7926cd5de4aef9aaa7689ab4ceaa132d7c5242b47f67dfaaea64c372a17ad68fef9a6ac99aabbddabdc"
        )
    );
    assert_eq!(
        r.rtmr(1).unwrap().to_vec(),
        hex(
            "4e5f8826653198ab4bc5156fbe4bc99db054c0b8239a16c4b59249fb427f4acc50eed1b46a85c7d526c4e1e47621b14c"
        )
    );
    assert_eq!(r.rtmr(2).unwrap(), &[0u8; 48]);
    assert_eq!(r.rtmr(3).unwrap(), &[0u8; 48]);
    assert_eq!(r.rtmr(4), None);
    assert_eq!(
        r.mrtd().to_vec(),
        hex(
            "98bbc39e3e27b4cb27ed6d21870b187738f64ec44b9f3f93d603b35a84e610dcb45f1b6d79c648c7bf8e68f7a37b8ab5"
        )
    );
    assert_eq!(r.mrconfigid(), &[0u8; 48]);
    assert_eq!(r.report_data(), &[0u8; 64]);

    assert_eq!(
        TdReport::new_checked(&raw[..1023]),
        Err(TdReportError::Length { got: 1023 })
    );
    let mut b = raw.clone();
    b[0] = 0;
    assert_eq!(
        TdReport::new_checked(&b),
        Err(TdReportError::NotTdx { report_type: 0 })
    );
}

#[test]
fn quote_v4_sample() {
    let raw = vector("tdx_quote_4.dat");
    assert_eq!(raw.len(), 4936);
    let q = Quote::new_checked(&raw).unwrap();
    assert_eq!(q.version(), 4);
    assert_eq!(q.att_key_type(), 2);
    assert_eq!(q.tee_type(), 0x81);
    assert_eq!(
        q.qe_vendor_id().to_vec(),
        hex("939a7233f79c4ca9940a0db3957f0607")
    );
    assert_eq!(q.body_type(), None);
    assert_eq!(q.body_kind(), BodyKind::Tdx10);
    assert_eq!(q.body_offset(), 48);
    assert_eq!(q.body().as_bytes().len(), 584);
    // absolute offsets from the reference table: MRTD @184, MRCONFIGID @232, REPORTDATA @568
    assert_eq!(q.mr_td(), &raw[184..232]);
    assert_eq!(
        q.mr_td().to_vec(),
        hex(
            "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031"
        )
    );
    assert_eq!(q.mr_config_id(), &raw[232..280]);
    assert_eq!(q.rtmr(0).unwrap(), &raw[376..424]);
    assert_eq!(q.rtmr(3).unwrap(), &raw[520..568]);
    assert_eq!(q.report_data(), &raw[568..632]);
    assert_eq!(
        q.report_data().to_vec(),
        hex(
            "7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85b45c8a28fee1d3bdb38342bf96671501429"
        )
    );
    assert_eq!(q.body().tee_tcb_svn2(), None);
    assert_eq!(q.signed_bytes().len(), 632);
    // signature data: 4300 = 64 + 64 + 6 + 4166; 4166 = 384 + 64 + 2 + 32 + 6 + 3678
    assert_eq!(q.signature_data_len(), 4300);
    assert_eq!(q.qe_cert_data_size(), 4166);
    assert_eq!(q.qe_auth_data().len(), 32);
    assert_eq!(q.pck_cert_chain().len(), 3678);
    assert!(
        q.pck_cert_chain()
            .starts_with(b"-----BEGIN CERTIFICATE-----\n")
    );
    // PCK leaf, intermediate and root CA, and a C string terminator after the last PEM block
    assert!(
        q.pck_cert_chain()
            .ends_with(b"-----END CERTIFICATE-----\n\0")
    );
    let begins = q
        .pck_cert_chain()
        .windows(17)
        .filter(|w| w == b"BEGIN CERTIFICATE")
        .count();
    assert_eq!(begins, 3);
    assert_eq!(q.len(), 4936);
    assert_eq!(q.ecdsa_signature(), &raw[636..700]);
    assert_eq!(q.attestation_key(), &raw[700..764]);
}

#[test]
fn quote_v5_sample() {
    let raw = vector("tdx_quote_5.dat");
    assert_eq!(raw.len(), 5006);
    let q = Quote::new_checked(&raw).unwrap();
    assert_eq!(q.version(), 5);
    assert_eq!(q.body_type(), Some(3));
    assert_eq!(q.body_kind(), BodyKind::Tdx15);
    assert_eq!(q.body_offset(), 54);
    assert_eq!(q.body().as_bytes().len(), 648);
    assert_eq!(q.mr_td(), &raw[54 + 136..54 + 184]);
    assert_eq!(q.mr_config_id(), &[0u8; 48]);
    assert_eq!(
        q.report_data().to_vec(),
        hex(
            "6d6ab13b046cff606ac0074be13981b07b6325dba10b5facc96febf551c0c3be2b75f92fe1f88f4bb996969ad0174b4b7a70261b7b85c844f4b33a4674fd049f"
        )
    );
    assert!(q.body().tee_tcb_svn2().is_some());
    assert!(q.body().mr_servicetd().is_some());
    assert_eq!(q.signed_bytes().len(), 702);
    assert_eq!(q.signature_data_len(), 4300);
    assert_eq!(q.qe_cert_data_size(), 4166);
    assert_eq!(q.qe_auth_data().len(), 32);
    assert_eq!(q.pck_cert_chain().len(), 3678);
    assert_eq!(q.len(), 5006);
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn quotes_with_lying_lengths() {
    let v4 = vector("tdx_quote_4.dat");
    let v5 = vector("tdx_quote_5.dat");
    const SIG: usize = 632; // v4 signature data length field
    const CD: usize = 636 + 130; // v4 QE certification data size field
    const AUTH: usize = 636 + 582; // v4 QE auth data size field
    const PCK: usize = 636 + 584 + 32 + 2; // v4 PCK chain size field

    // every truncation fails, none panics
    for q in [&v4, &v5] {
        for n in 0..q.len() {
            assert!(Quote::new_checked(&q[..n]).is_err(), "prefix {n}");
        }
    }
    // trailing bytes are tolerated and excluded from the quote
    let mut t = v4.clone();
    t.extend_from_slice(&[0; 16]);
    let q = Quote::new_checked(&t).unwrap();
    assert_eq!(q.len(), 4936);
    assert_eq!(q.as_bytes(), &v4[..]);

    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = v4.clone();
        f(&mut b);
        Quote::new_checked(&b).unwrap_err()
    };
    // signature data length: too long for the buffer, too short for its contents, absurd
    assert!(matches!(
        with(&|b| put_u32(b, SIG, 4301)),
        QuoteError::Truncated { .. }
    ));
    assert!(matches!(
        with(&|b| put_u32(b, SIG, 4299)),
        QuoteError::LengthMismatch { .. }
    ));
    assert!(matches!(
        with(&|b| put_u32(b, SIG, u32::MAX)),
        QuoteError::Truncated { .. }
    ));
    assert!(matches!(
        with(&|b| put_u32(b, SIG, 100)),
        QuoteError::Truncated { .. }
    ));
    // QE certification data size off by one either way
    for size in [4165, 4167, 0, u32::MAX] {
        assert!(
            matches!(
                with(&|b| put_u32(b, CD, size)),
                QuoteError::LengthMismatch { .. }
            ),
            "{size}"
        );
    }
    // QE auth data longer than what follows / shorter
    assert!(matches!(
        with(&|b| put_u16(b, AUTH, u16::MAX)),
        QuoteError::Truncated { .. }
    ));
    assert!(matches!(
        with(&|b| put_u16(b, AUTH, 31)),
        QuoteError::CertDataType { .. } | QuoteError::LengthMismatch { .. }
    ));
    // PCK chain size lies
    for size in [3677, 3679, u32::MAX] {
        assert!(
            matches!(
                with(&|b| put_u32(b, PCK, size)),
                QuoteError::LengthMismatch { .. }
            ),
            "{size}"
        );
    }
    // certification data types
    assert_eq!(
        with(&|b| put_u16(b, 636 + 128, 5)),
        QuoteError::CertDataType {
            expected: 6,
            found: 5
        }
    );
    assert_eq!(
        with(&|b| put_u16(b, PCK - 2, 6)),
        QuoteError::CertDataType {
            expected: 5,
            found: 6
        }
    );
    // header fields
    assert_eq!(
        with(&|b| put_u16(b, 0, 3)),
        QuoteError::UnsupportedVersion(3)
    );
    assert_eq!(with(&|b| put_u16(b, 2, 3)), QuoteError::AttKeyType(3));
    assert_eq!(with(&|b| put_u32(b, 4, 0)), QuoteError::TeeType(0));

    // v5 body descriptor
    let with5 = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = v5.clone();
        f(&mut b);
        Quote::new_checked(&b).unwrap_err()
    };
    assert_eq!(
        with5(&|b| put_u32(b, 50, 584)),
        QuoteError::BodySize {
            body_type: 3,
            size: 584
        }
    );
    assert_eq!(with5(&|b| put_u16(b, 48, 4)), QuoteError::BodyType(4));
    // a type-2 claim over a 648-byte body: the lengths no longer line up
    assert!(
        with5(&|b| {
            put_u16(b, 48, 2);
            put_u32(b, 50, 584);
        })
        .to_string()
        .starts_with("malformed TD quote")
    );
}

#[test]
fn evidence_json_round_trip() {
    let quote = vector("tdx_quote_4.dat");
    let v = tdx::evidence_json(&quote, None);
    assert_eq!(v["cc_eventlog"], Value::Null);
    // base64 STANDARD with padding; the reference's example prefix is this very quote
    let b64 = v["quote"].as_str().unwrap();
    assert!(b64.starts_with("BAACAIEAAAAAAAAAk5pyM/ecTKmUCg2zlX8GB9CZv+wKR3qoWmBdzqvysQgAAAAA"));
    assert_eq!(b64.len(), 4936usize.div_ceil(3) * 4);
    assert_eq!(
        serde_json::to_string(&tdx::TdxEvidenceJson::new(&quote, None)).unwrap()[..32],
        *"{\"cc_eventlog\":null,\"quote\":\"BAA"
    );
    let p = tdx::parse_evidence_json(&v).unwrap();
    assert_eq!(p.quote, quote);
    assert_eq!(p.cc_eventlog, None);

    let log = [0xffu8; 8];
    let v = tdx::evidence_json(&quote, Some(&log));
    assert_eq!(v["cc_eventlog"], "//////////8=");
    assert_eq!(
        tdx::parse_evidence_json(&v).unwrap().cc_eventlog.unwrap(),
        log
    );
    // an empty log is sent as null
    assert_eq!(
        tdx::evidence_json(&quote, Some(&[]))["cc_eventlog"],
        Value::Null
    );

    // inverse: missing cc_eventlog is fine, bad base64 or a missing quote is not
    assert!(tdx::parse_evidence_json(&json!({"quote": "AAAA"})).is_ok());
    assert!(tdx::parse_evidence_json(&json!({"quote": "AAA"})).is_err());
    assert!(tdx::parse_evidence_json(&json!({"quote": "AA-_"})).is_err());
    assert!(tdx::parse_evidence_json(&json!({"cc_eventlog": null})).is_err());
    assert!(tdx::parse_evidence_json(&json!({"quote": "AAAA", "cc_eventlog": "%"})).is_err());
}
