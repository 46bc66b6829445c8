//! SEV-SNP against real hardware samples (`shared/vectors/upstream`, see its README):
//! parsing, signature verification with the VCEK/VLEK key found by the DER walker, the evidence
//! JSON round trip Trustee relies on, and malformed inputs.

use firmware_glue::der::{self, oid};
use firmware_glue::snp::{
    self, CertTable, CertType, FirmwareVersion, Generation, REPORT_LEN, Report, ReportError,
    ReportRepr, SigningKey, SnpEvidenceJson, TcbVersion, field,
};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature as P384Signature, VerifyingKey};
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

/// ECDSA P-384/SHA-384 over `signed`, signature as stored in the report (72-byte LE r, s),
/// public key from the certificate's SubjectPublicKeyInfo.
fn verify<T: AsRef<[u8]>>(report: &Report<T>, signed: &[u8], cert_der: &[u8]) -> bool {
    let cert = der::parse_certificate(cert_der).expect("certificate walks");
    let point = cert.ec_public_key(oid::SECP384R1).expect("P-384 key");
    let key = VerifyingKey::from_sec1_bytes(point).expect("valid point");
    let fixed = report.signature().to_p384_fixed().expect("48-byte scalars");
    let sig = P384Signature::from_slice(&fixed).expect("scalars in range");
    key.verify(signed, &sig).is_ok()
}

#[test]
fn v2_vcek_report_fields() {
    let raw = vector("snp-test-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    assert_eq!(r.version(), 2);
    assert_eq!(r.guest_svn(), 4);
    assert_eq!(r.policy(), 0x3001f);
    assert_eq!(r.policy() & snp::policy::DEBUG, 0);
    assert_eq!(r.family_id()[0], 1);
    assert_eq!(r.image_id()[0], 2);
    assert_eq!(r.vmpl(), 0);
    assert_eq!(r.sig_algo(), 1);
    assert_eq!(r.plat_info(), 1);
    assert_eq!(r.signing_key(), SigningKey::Vcek);
    // v2 rule: CHIP_ID bytes 8..64 are not zero -> the Milan/Genoa TCB layout
    assert_eq!(r.generation(), Generation::Genoa);
    let tcb = TcbVersion {
        fmc: None,
        bootloader: 3,
        tee: 0,
        snp: 8,
        microcode: 0x73,
    };
    // the running microcode is newer than the TCB the VCEK was derived for
    assert_eq!(
        r.current_tcb(),
        TcbVersion {
            microcode: 0xce,
            ..tcb
        }
    );
    assert_eq!(r.reported_tcb(), tcb);
    assert_eq!(r.committed_tcb(), tcb);
    assert_eq!(r.launch_tcb(), tcb);
    assert_eq!(r.cpuid_fam_id(), None);
    assert_eq!(r.cpuid_mod_id(), None);
    assert_eq!(r.cpuid_step(), None);
    assert_eq!(r.launch_mit_vector(), None);
    assert_eq!(r.current_mit_vector(), None);
    let v = FirmwareVersion {
        major: 1,
        minor: 52,
        build: 4,
    };
    assert_eq!(r.current(), v);
    assert_eq!(r.committed(), v);
    assert_eq!(
        &r.report_data()[..32],
        &hex("ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2")[..]
    );
    assert_eq!(&r.report_data()[32..], &[0u8; 32]);
    assert_eq!(
        r.measurement().to_vec(),
        hex(
            "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
        )
    );
    assert_eq!(r.host_data(), &[0u8; 32]);
    assert_eq!(r.report_id_ma(), &[0xff; 32]);
    assert_eq!(r.chip_id()[..4], [0xc3, 0x84, 0x27, 0xa3]);
    assert_eq!(r.signed_bytes().len(), 0x2A0);
    assert_eq!(r.signature().r[48..], [0u8; 24]);
}

#[test]
fn v3_vlek_report_fields() {
    let raw = vector("snp-test-vlek-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    assert_eq!(r.version(), 3);
    assert_eq!(
        r.vmpl(),
        1,
        "this sample was taken at VMPL 1 (Trustee would reject it)"
    );
    assert_eq!(r.signing_key(), SigningKey::Vlek);
    assert_eq!(r.key_info(), 4);
    assert_eq!(r.plat_info(), 0x27);
    assert_eq!(r.cpuid_fam_id(), Some(0x19));
    assert_eq!(r.cpuid_mod_id(), Some(0x01));
    assert_eq!(r.cpuid_step(), Some(0x01));
    assert_eq!(r.generation(), Generation::Milan);
    assert_eq!(r.chip_id(), &[0u8; 64], "VLEK reports mask CHIP_ID");
    let tcb = |ucode| TcbVersion {
        fmc: None,
        bootloader: 4,
        tee: 0,
        snp: 0x18,
        microcode: ucode,
    };
    assert_eq!(r.current_tcb(), tcb(0xdc));
    assert_eq!(r.reported_tcb(), tcb(0xd9));
    assert_eq!(r.committed_tcb(), tcb(0xdb));
    assert_eq!(r.launch_tcb(), tcb(0xdb));
    assert_eq!(
        r.current(),
        FirmwareVersion {
            major: 1,
            minor: 55,
            build: 29
        }
    );
    assert_eq!(r.launch_mit_vector(), None);
}

#[test]
fn signatures_verify_with_certificate_keys() {
    for (report, cert) in [
        ("snp-test-report.bin", "snp-test-vcek.der"),
        ("snp-test-vlek-report.bin", "snp-test-vlek.der"),
    ] {
        let raw = vector(report);
        let der = vector(cert);
        let r = Report::new_checked(&raw).unwrap();
        assert!(verify(&r, r.signed_bytes(), &der), "{report} with {cert}");
        // and a single flipped signed bit breaks it
        let mut tampered = r.signed_bytes().to_vec();
        tampered[0x50] ^= 1;
        assert!(!verify(&r, &tampered, &der), "{report} tampered");
    }
    // the wrong key does not verify
    let raw = vector("snp-test-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    assert!(!verify(&r, r.signed_bytes(), &vector("snp-test-vlek.der")));
}

#[test]
fn vcek_extensions_match_the_reported_tcb() {
    let der_bytes = vector("snp-test-vcek.der");
    let cert = der::parse_certificate(&der_bytes).unwrap();
    assert_eq!(
        cert.serial,
        &[0x00],
        "the VCEK serial is zero (not positive)"
    );
    let raw = vector("snp-test-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    let tcb = r.reported_tcb();
    let spl = |o: &[u8]| {
        cert.extension(o)
            .unwrap()
            .unwrap()
            .value_tlv()
            .unwrap()
            .as_u64()
            .unwrap()
    };
    assert_eq!(spl(oid::AMD_BL_SPL), u64::from(tcb.bootloader));
    assert_eq!(spl(oid::AMD_TEE_SPL), u64::from(tcb.tee));
    assert_eq!(spl(oid::AMD_SNP_SPL), u64::from(tcb.snp));
    assert_eq!(spl(oid::AMD_UCODE_SPL), u64::from(tcb.microcode));
    assert_eq!(cert.extension(oid::AMD_FMC_SPL).unwrap(), None);
    // hwID: the extnValue OCTET STRING holds the 64 raw CHIP_ID bytes (no nested DER)
    let hwid = cert.extension(oid::AMD_HW_ID).unwrap().unwrap();
    assert_eq!(hwid.value, r.chip_id());
    assert_eq!(cert.extensions().count(), 11);

    // The VLEK: same walk, TCB from its extensions matches the VLEK report.
    let vlek = vector("snp-test-vlek.der");
    let cert = der::parse_certificate(&vlek).unwrap();
    let raw = vector("snp-test-vlek-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    let ucode = cert.extension(oid::AMD_UCODE_SPL).unwrap().unwrap();
    assert_eq!(
        ucode.value_tlv().unwrap().as_u64().unwrap(),
        u64::from(r.reported_tcb().microcode)
    );
}

#[test]
fn der_walker_rejects_damaged_certificates() {
    let good = vector("snp-test-vcek.der");
    // every truncation fails cleanly
    for n in 0..good.len() {
        assert!(der::parse_certificate(&good[..n]).is_err(), "prefix {n}");
    }
    // trailing garbage is refused
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        der::parse_certificate(&long).err(),
        Some(der::DerError::TrailingData)
    );
    // asking for the wrong curve
    let cert = der::parse_certificate(&good).unwrap();
    assert_eq!(
        cert.ec_public_key(oid::PRIME256V1),
        Err(der::DerError::WrongKeyType)
    );
}

/// bytes -> evidence JSON -> bytes, and the signature over the re-encoding (Trustee's check).
#[test]
fn evidence_json_round_trip_on_real_reports() {
    for (report, cert, cert_type) in [
        ("snp-test-report.bin", "snp-test-vcek.der", CertType::Vcek),
        (
            "snp-test-vlek-report.bin",
            "snp-test-vlek.der",
            CertType::Vlek,
        ),
    ] {
        let raw = vector(report);
        let der = vector(cert);
        let r = Report::new_checked(&raw).unwrap();
        let table = CertTable::build(&[(cert_type, &der)]);
        let table = CertTable::new_checked(&table).unwrap();
        let v = snp::evidence_json(&r, Some(&table));

        // through text, as it travels
        let text = serde_json::to_string(&v).unwrap();
        let v2: Value = serde_json::from_str(&text).unwrap();
        let parsed = snp::parse_evidence_json(&v2).unwrap();
        assert_eq!(
            parsed.report.as_slice(),
            raw.as_slice(),
            "{report}: all 1184 bytes"
        );
        assert_eq!(parsed.repr, ReportRepr::parse(&r));
        let chain = parsed.cert_chain.unwrap();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].cert_type, cert_type);
        assert_eq!(chain[0].data, der);

        let re = Report::new_checked(&parsed.report).unwrap();
        assert!(verify(&re, &parsed.report[field::SIGNED], &chain[0].data));
    }
}

#[test]
fn evidence_json_shape_and_order() {
    let raw = vector("snp-test-report.bin");
    let der = vector("snp-test-vcek.der");
    let r = Report::new_checked(&raw).unwrap();
    let table_bytes = CertTable::build(&[(CertType::Ask, b"ask"), (CertType::Vcek, &der)]);
    let table = CertTable::new_checked(&table_bytes).unwrap();
    let text = serde_json::to_string(&SnpEvidenceJson::new(&r, Some(&table))).unwrap();

    // serde declaration order of sev's AttestationReport
    let keys = [
        "\"attestation_report\":{\"version\":2,",
        "\"guest_svn\":4,",
        "\"policy\":196639,",
        "\"family_id\":[1,0,",
        "\"image_id\":[2,0,",
        "\"vmpl\":0,",
        "\"sig_algo\":1,",
        "\"current_tcb\":{\"fmc\":null,\"bootloader\":3,\"tee\":0,\"snp\":8,\"microcode\":206},",
        "\"plat_info\":1,",
        "\"key_info\":0,",
        "\"report_data\":[236,108,",
        "\"measurement\":[161,243,",
        "\"host_data\":[0,",
        "\"id_key_digest\":[3,86,",
        "\"author_key_digest\":[0,",
        "\"report_id\":[56,94,",
        "\"report_id_ma\":[255,",
        "\"reported_tcb\":{\"fmc\":null,",
        "\"cpuid_fam_id\":null,\"cpuid_mod_id\":null,\"cpuid_step\":null,",
        "\"chip_id\":[195,132,",
        "\"committed_tcb\":{",
        "\"current\":{\"major\":1,\"minor\":52,\"build\":4},",
        "\"committed\":{\"major\":1,\"minor\":52,\"build\":4},",
        "\"launch_tcb\":{",
        "\"launch_mit_vector\":null,\"current_mit_vector\":null,",
        "\"signature\":{\"r\":[6,235,",
        "\"cert_chain\":[{\"cert_type\":\"VCEK\",\"data\":[48,130,5,76,",
        "{\"cert_type\":\"ASK\",\"data\":[97,115,107]}]}",
    ];
    let mut at = 0;
    for k in keys {
        let pos = text[at..]
            .find(k)
            .unwrap_or_else(|| panic!("{k} not found after byte {at}"));
        at += pos + k.len();
    }

    let v = snp::evidence_json(&r, Some(&table));
    let rep = &v["attestation_report"];
    assert_eq!(rep.as_object().unwrap().len(), 29);
    for (k, n) in [
        ("family_id", 16),
        ("report_data", 64),
        ("measurement", 48),
        ("host_data", 32),
        ("chip_id", 64),
    ] {
        assert_eq!(rep[k].as_array().unwrap().len(), n, "{k}");
    }
    assert_eq!(rep["signature"]["r"].as_array().unwrap().len(), 72);
    assert_eq!(rep["signature"]["s"].as_array().unwrap().len(), 72);

    // no table, or an empty one: null (Trustee rejects a chain without VCEK/VLEK)
    assert_eq!(
        snp::evidence_json(&r, None::<&CertTable<&[u8]>>)["cert_chain"],
        Value::Null
    );
    let empty = CertTable::build(&[]);
    let empty = CertTable::new_checked(&empty).unwrap();
    assert_eq!(
        snp::evidence_json(&r, Some(&empty))["cert_chain"],
        Value::Null
    );
}

#[test]
fn other_cert_types_use_the_uuid_form() {
    let raw = vector("snp-test-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    let g = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];
    let t = CertTable::build(&[(CertType::Other(g), b"x"), (CertType::Crl, b"crl")]);
    let t = CertTable::new_checked(&t).unwrap();
    let v = snp::evidence_json(&r, Some(&t));
    assert_eq!(
        v["cert_chain"],
        json!([
            {"cert_type": "CRL", "data": [99, 114, 108]},
            {"cert_type": {"OTHER": "01234567-89ab-cdef-0123-456789abcdef"}, "data": [120]},
        ])
    );
    let parsed = snp::parse_evidence_json(&v).unwrap();
    let chain = parsed.cert_chain.unwrap();
    assert_eq!(chain[1].cert_type, CertType::Other(g));
}

/// A v5 Turin report (synthesized from the v3 sample): FMC present, mitigation vectors present.
#[test]
fn turin_v5_round_trip() {
    let mut raw = vector("snp-test-vlek-report.bin");
    raw[0] = 5;
    raw[field::CPUID_FAM_ID] = 0x1A;
    raw[field::CPUID_MOD_ID] = 0x02;
    for (i, off) in [
        field::CURRENT_TCB.start,
        field::REPORTED_TCB.start,
        field::COMMITTED_TCB.start,
        field::LAUNCH_TCB.start,
    ]
    .into_iter()
    .enumerate()
    {
        raw[off..off + 8].copy_from_slice(&[9 + i as u8, 4, 0, 0x18, 0, 0, 0, 0xdc]);
    }
    raw[field::LAUNCH_MIT_VECTOR].copy_from_slice(&7u64.to_le_bytes());
    raw[field::CURRENT_MIT_VECTOR].copy_from_slice(&3u64.to_le_bytes());
    let r = Report::new_checked(&raw).unwrap();
    assert_eq!(r.generation(), Generation::Turin);
    assert_eq!(r.current_tcb().fmc, Some(9));
    assert_eq!(r.launch_tcb().fmc, Some(12));
    assert_eq!(r.launch_mit_vector(), Some(7));
    assert_eq!(r.current_mit_vector(), Some(3));
    let v = snp::evidence_json(&r, None::<&CertTable<&[u8]>>);
    assert_eq!(v["attestation_report"]["current_tcb"]["fmc"], 9);
    assert_eq!(v["attestation_report"]["launch_mit_vector"], 7);
    assert_eq!(v["attestation_report"]["cpuid_mod_id"], 2);
    assert_eq!(
        snp::report_from_evidence_json(&v).unwrap().as_slice(),
        raw.as_slice()
    );
}

#[test]
fn bad_reports_are_rejected() {
    let good = vector("snp-test-vlek-report.bin");
    let v2 = vector("snp-test-report.bin");
    assert_eq!(
        Report::new_checked(&good[..REPORT_LEN - 1]),
        Err(ReportError::Length { got: 1183 })
    );
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        Report::new_checked(&long),
        Err(ReportError::Length { got: 1185 })
    );
    assert_eq!(
        Report::new_checked(&[]),
        Err(ReportError::Length { got: 0 })
    );

    for version in [0u32, 1, 6, 0x0100_0003] {
        let mut b = good.clone();
        b[0..4].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            Report::new_checked(&b),
            Err(ReportError::UnsupportedVersion(version))
        );
    }

    // every reserved byte the sev decoder checks, v3
    for off in [
        0x04C, 0x04F, 0x18B, 0x19F, 0x1EB, 0x1EF, 0x1F8, 0x207, 0x208, 0x29F,
    ] {
        let mut b = good.clone();
        b[off] = 1;
        assert_eq!(
            Report::new_checked(&b),
            Err(ReportError::ReservedNonZero { offset: off }),
            "v3 {off:#x}"
        );
    }
    // v2: the CPUID bytes are reserved too
    for off in [0x188, 0x18A] {
        let mut b = v2.clone();
        b[off] = 1;
        assert_eq!(
            Report::new_checked(&b),
            Err(ReportError::ReservedNonZero { offset: off }),
            "v2 {off:#x}"
        );
    }
    // v5: the mitigation vectors are fields, the area after them is reserved
    let mut b = good.clone();
    b[0] = 5;
    b[0x1F8] = 1;
    b[0x207] = 1;
    assert!(Report::new_checked(&b).is_ok());
    b[0x208] = 1;
    assert_eq!(
        Report::new_checked(&b),
        Err(ReportError::ReservedNonZero { offset: 0x208 })
    );
    // the signature's reserved tail is not checked (not signed, not checked by sev)
    let mut b = good.clone();
    b[0x400] = 1;
    assert!(Report::new_checked(&b).is_ok());

    // unknown CPU for v3+
    let mut b = good.clone();
    b[field::CPUID_FAM_ID] = 0x17;
    assert_eq!(
        Report::new_checked(&b),
        Err(ReportError::UnknownCpu {
            family: 0x17,
            model: 0x01
        })
    );
    // Turin CPUID over Milan-layout TCB bytes: the layout does not fit
    let mut b = good.clone();
    b[field::CPUID_FAM_ID] = 0x1A;
    assert_eq!(
        Report::new_checked(&b),
        Err(ReportError::TcbUnusedBytes {
            offset: field::CURRENT_TCB.start
        })
    );
    // a Milan TCB with bytes in the unused middle
    let mut b = good.clone();
    b[field::LAUNCH_TCB.start + 3] = 1;
    assert_eq!(
        Report::new_checked(&b),
        Err(ReportError::TcbUnusedBytes {
            offset: field::LAUNCH_TCB.start
        })
    );
    // v2 with a masked CHIP_ID: generation unknown
    let mut b = v2.clone();
    b[field::CHIP_ID].fill(0);
    assert_eq!(Report::new_checked(&b), Err(ReportError::MaskedChipIdV2));
}

#[test]
fn evidence_json_inverse_follows_serde_semantics() {
    let raw = vector("snp-test-vlek-report.bin");
    let r = Report::new_checked(&raw).unwrap();
    let base = snp::evidence_json(&r, None::<&CertTable<&[u8]>>);

    // mit-vector keys and cert_chain may be absent (Trustee's e2e evidence.json omits them),
    // unknown keys are ignored
    let mut v = base.clone();
    let rep = v["attestation_report"].as_object_mut().unwrap();
    rep.remove("launch_mit_vector");
    rep.remove("current_mit_vector");
    rep.insert("something_new".into(), json!(1));
    v.as_object_mut().unwrap().remove("cert_chain");
    let p = snp::parse_evidence_json(&v).unwrap();
    assert_eq!(p.report.as_slice(), raw.as_slice());
    assert_eq!(p.cert_chain, None);

    let broken = |path: &[&str], value: Value| {
        let mut v = base.clone();
        let mut o = &mut v;
        for k in &path[..path.len() - 1] {
            o = &mut o[*k];
        }
        o[path[path.len() - 1]] = value;
        snp::parse_evidence_json(&v).unwrap_err()
    };
    let e = broken(&["attestation_report", "measurement"], json!([1, 2, 3]));
    assert!(e.to_string().contains("48 bytes"), "{e}");
    let e = broken(&["attestation_report", "vmpl"], json!(-1));
    assert!(
        matches!(e, firmware_glue::EvidenceJsonError::Shape { .. }),
        "{e}"
    );
    let mut long_sig = vec![0u8; 73];
    long_sig[0] = 1;
    broken(&["attestation_report", "signature", "r"], json!(long_sig));
    broken(&["attestation_report", "current_tcb", "snp"], json!(256));
    broken(&["attestation_report", "policy"], json!("196608"));
    broken(&["attestation_report", "host_data"], json!(null));
    let e = broken(&["attestation_report", "cpuid_fam_id"], json!(0x17));
    assert_eq!(
        e,
        firmware_glue::EvidenceJsonError::Report(ReportError::UnknownCpu {
            family: 0x17,
            model: 1
        })
    );
    // a v3 report without CPUID: the encoder uses 0 for what is missing (family 0: no CPU)
    let e = broken(&["attestation_report", "cpuid_fam_id"], Value::Null);
    assert!(matches!(
        e,
        firmware_glue::EvidenceJsonError::Report(ReportError::UnknownCpu { .. })
    ));
    // a missing model counts as 0, which for family 0x19 is Milan: it encodes (and the
    // signature would then fail), exactly like the sev encoder
    let mut v = base.clone();
    v["attestation_report"]["cpuid_mod_id"] = Value::Null;
    let p = snp::parse_evidence_json(&v).unwrap();
    assert_eq!(p.report[field::CPUID_MOD_ID], 0);
    broken(&["cert_chain"], json!([{"cert_type": "NOPE", "data": []}]));
    broken(
        &["cert_chain"],
        json!([{"cert_type": {"OTHER": "not-a-uuid"}, "data": []}]),
    );
    // "Empty" entries are accepted and skipped, as Trustee ignores them
    let mut v = base.clone();
    v["cert_chain"] =
        json!([{"cert_type": "Empty", "data": [1]}, {"cert_type": "VLEK", "data": [2]}]);
    let chain = snp::parse_evidence_json(&v).unwrap().cert_chain.unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].cert_type, CertType::Vlek);
    assert!(snp::parse_evidence_json(&json!([])).is_err());

    // version 2 in JSON uses the CHIP_ID rule; cpuid fields are ignored, not encoded
    let raw2 = vector("snp-test-report.bin");
    let r2 = Report::new_checked(&raw2).unwrap();
    let mut v = snp::evidence_json(&r2, None::<&CertTable<&[u8]>>);
    v["attestation_report"]["cpuid_fam_id"] = json!(0x19);
    assert_eq!(
        snp::report_from_evidence_json(&v).unwrap().as_slice(),
        raw2.as_slice()
    );
    v["attestation_report"]["chip_id"] = json!(vec![0u8; 64]);
    assert_eq!(
        snp::report_from_evidence_json(&v),
        Err(firmware_glue::EvidenceJsonError::Report(
            ReportError::MaskedChipIdV2
        ))
    );
}

#[test]
fn cert_table_truncations_never_panic() {
    let der = vector("snp-test-vcek.der");
    let blob = CertTable::build(&[(CertType::Ark, b"ark"), (CertType::Vcek, &der)]);
    for n in 0..blob.len() {
        assert!(CertTable::new_checked(&blob[..n]).is_err(), "prefix {n}");
    }
    assert_eq!(CertTable::new_checked(&blob).unwrap().len(), 2);
}

/// Whatever `Report::new` accepts re-encodes identically through the JSON (the property
/// Trustee's signature check depends on): mutate each byte of the signed range in turn.
#[test]
fn every_accepted_mutation_round_trips() {
    // rejected: v2 = 198 reserved + 16 TCB padding + 4 version bytes; v3 = 195 reserved + 16
    // TCB padding + 4 version + CPUID family and model (no such CPU)
    for (name, want_rejected) in [
        ("snp-test-report.bin", 218),
        ("snp-test-vlek-report.bin", 217),
    ] {
        let raw = vector(name);
        let (mut accepted, mut rejected) = (0, 0);
        for off in field::SIGNED {
            let mut b = raw.clone();
            b[off] ^= 0x5a;
            let Ok(r) = Report::new_checked(&b) else {
                rejected += 1;
                continue;
            };
            accepted += 1;
            let v = snp::evidence_json(&r, None::<&CertTable<&[u8]>>);
            let back = snp::report_from_evidence_json(&v).unwrap();
            assert_eq!(&back[..0x330], &b[..0x330], "{name} byte {off:#x}");
        }
        assert_eq!(
            (accepted, rejected),
            (0x2A0 - want_rejected, want_rejected),
            "{name}"
        );
    }
}
