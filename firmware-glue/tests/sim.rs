//! The simulators (feature `sim`): their output parses with the crate's own views, every
//! signature verifies with the crate's DER reader and p256/p384, the evidence JSON round trips,
//! and the deterministic roots are stable.

#![allow(
    clippy::field_reassign_with_default,
    reason = "configs read best as default + the knob under test"
)]

use firmware_glue::der::{self, Certificate, Reader, oid, tag};
use firmware_glue::sim::snp::{CertTableFault, SnpConfig, SnpSim};
use firmware_glue::sim::tdx::{TdxConfig, TdxSim, qe_report};
use firmware_glue::sim::{self, DEFAULT_SEED, SimError};
use firmware_glue::snp::{
    self, CertTable, CertTableError, CertType, Generation, Report, ReportError, ReportRepr,
    TcbVersion,
};
use firmware_glue::tdx::{self, BodyKind, Quote, QuoteError, TdReport};
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Ecdsa-Sig-Value` DER → fixed `r ‖ s` of `n` bytes each.
fn ecdsa_fixed(sig_der: &[u8], n: usize) -> Vec<u8> {
    let mut outer = Reader::new(sig_der);
    let seq = outer.expect(tag::SEQUENCE).unwrap();
    outer.finish().unwrap();
    let mut r = seq.reader();
    let mut out = Vec::new();
    for _ in 0..2 {
        let int = r.expect(tag::INTEGER).unwrap().value;
        let int = if int.len() > n && int[0] == 0 {
            &int[1..]
        } else {
            int
        };
        assert!(int.len() <= n);
        out.extend(std::iter::repeat_n(0, n - int.len()));
        out.extend_from_slice(int);
    }
    r.finish().unwrap();
    out
}

/// Checks `cert`'s signature with `issuer`'s key (P-384/SHA-384 or P-256/SHA-256).
fn verify_cert(cert: &Certificate<'_>, issuer: &Certificate<'_>) -> bool {
    if let Ok(point) = issuer.ec_public_key(oid::SECP384R1) {
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p384::ecdsa::Signature::from_slice(&ecdsa_fixed(cert.signature, 48)).unwrap();
        key.verify(cert.tbs.raw, &sig).is_ok()
    } else {
        let point = issuer.ec_public_key(oid::PRIME256V1).unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&ecdsa_fixed(cert.signature, 32)).unwrap();
        key.verify(cert.tbs.raw, &sig).is_ok()
    }
}

fn spl(cert: &Certificate<'_>, oid: &[u8]) -> u64 {
    cert.extension(oid)
        .unwrap()
        .unwrap()
        .value_tlv()
        .unwrap()
        .as_u64()
        .unwrap()
}

fn report_signature_ok(raw: &[u8], vcek_der: &[u8]) -> bool {
    let report = Report::new_checked(raw).unwrap();
    let cert = der::parse_certificate(vcek_der).unwrap();
    let key =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(cert.ec_public_key(oid::SECP384R1).unwrap())
            .unwrap();
    let fixed = report.signature().to_p384_fixed().unwrap();
    let sig = p384::ecdsa::Signature::from_slice(&fixed).unwrap();
    key.verify(report.signed_bytes(), &sig).is_ok()
}

#[test]
fn snp_report_layout_signature_and_chain() {
    for generation in [Generation::Milan, Generation::Genoa, Generation::Turin] {
        for version in [2, 3, 5] {
            let mut config = SnpConfig::from_seed(b"unit", generation);
            config.version = version;
            config.host_data = [0x44; 32];
            config.mit_vectors = (3, 7);
            let sim = SnpSim::new(config.clone());
            let user_data = [0x5a; 64];
            let raw = sim.report(&user_data, 0).unwrap();
            let r = Report::new_checked(&raw).unwrap();
            let what = format!("{generation:?} v{version}");
            assert_eq!(r.version(), version, "{what}");
            // v2 has no CPUID fields: Milan and Genoa share the layout the `sev` crate guesses
            let layout = match (version, generation) {
                (2, Generation::Milan) => Generation::Genoa,
                _ => generation,
            };
            assert_eq!(r.generation(), layout, "{what}");
            assert_eq!(r.report_data(), &user_data);
            assert_eq!(r.measurement(), &config.measurement);
            assert_eq!(r.host_data(), &[0x44; 32]);
            assert_eq!(r.vmpl(), 0);
            assert_eq!(r.sig_algo(), 1);
            assert_eq!(r.signing_key(), snp::SigningKey::Vcek);
            assert_eq!(r.reported_tcb(), config.tcb, "{what}");
            assert_eq!(r.chip_id(), &config.chip_id);
            assert_eq!(r.policy() & snp::policy::DEBUG, 0);
            assert_eq!(
                r.cpuid_fam_id().is_some(),
                version >= 3,
                "CPUID fields from v3"
            );
            assert_eq!(r.launch_mit_vector(), (version >= 5).then_some(3));
            assert!(report_signature_ok(&raw, sim.vcek_der()), "{what}");

            // the chain: ARK self-signed, ASK by ARK, VCEK by ASK, AMD-shaped extensions
            let ark = der::parse_certificate(sim.ark_der()).unwrap();
            let ask = der::parse_certificate(sim.ask_der()).unwrap();
            let vcek = der::parse_certificate(sim.vcek_der()).unwrap();
            assert!(verify_cert(&ark, &ark));
            assert!(verify_cert(&ask, &ark));
            assert!(verify_cert(&vcek, &ask));
            assert!(!verify_cert(&vcek, &ark));
            assert_eq!(ark.issuer.raw, ark.subject.raw);
            assert_eq!(ask.issuer.raw, ark.subject.raw);
            assert_eq!(vcek.issuer.raw, ask.subject.raw);
            let tcb = config.tcb;
            assert_eq!(spl(&vcek, oid::AMD_BL_SPL), u64::from(tcb.bootloader));
            assert_eq!(spl(&vcek, oid::AMD_TEE_SPL), u64::from(tcb.tee));
            assert_eq!(spl(&vcek, oid::AMD_SNP_SPL), u64::from(tcb.snp));
            assert_eq!(spl(&vcek, oid::AMD_UCODE_SPL), u64::from(tcb.microcode));
            let hw_id = vcek.extension(oid::AMD_HW_ID).unwrap().unwrap().value;
            if generation == Generation::Turin {
                assert_eq!(spl(&vcek, oid::AMD_FMC_SPL), u64::from(tcb.fmc.unwrap()));
                assert_eq!(hw_id, &config.chip_id[..8]);
            } else {
                assert!(vcek.extension(oid::AMD_FMC_SPL).unwrap().is_none());
                assert_eq!(hw_id, &config.chip_id[..]);
            }

            // evidence JSON round trip: Trustee re-encodes from JSON and must get the same bytes
            let ev = sim.evidence_json(&user_data).unwrap();
            let parsed = snp::parse_evidence_json(&ev).unwrap();
            assert_eq!(parsed.report, raw, "{what}");
            let chain = parsed.cert_chain.unwrap();
            assert_eq!(chain.len(), 1);
            assert_eq!(chain[0].cert_type, CertType::Vcek);
            assert_eq!(chain[0].data, sim.vcek_der());
        }
    }
}

#[test]
fn snp_cert_table_shapes_and_faults() {
    let mut config = SnpConfig::default();
    config.include_ca_certs = true;
    let mut sim = SnpSim::new(config);
    let table = sim.cert_table();
    let t = CertTable::new_checked(&table).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.find(CertType::Ark), Some(sim.ark_der()));
    assert_eq!(t.find(CertType::Ask), Some(sim.ask_der()));
    assert_eq!(t.find(CertType::Vcek), Some(sim.vcek_der()));
    assert_eq!(t.used_len(), table.len());

    sim.faults_mut().cert_table = CertTableFault::Missing;
    assert!(sim.cert_table().is_empty());
    let ev = sim.evidence_json(&[0; 64]).unwrap();
    assert!(ev["cert_chain"].is_null());

    sim.faults_mut().cert_table = CertTableFault::Malformed;
    assert!(matches!(
        CertTable::new_checked(&sim.cert_table()),
        Err(CertTableError::OutOfBounds { index: 2, .. })
    ));
    assert!(matches!(
        sim.evidence_json(&[0; 64]),
        Err(SimError::CertTable(_))
    ));

    sim.faults_mut().cert_table = CertTableFault::Oversized;
    let big = sim.cert_table();
    assert!(big.len() > 32 * 1024);
    assert_eq!(
        CertTable::new_checked(&big).unwrap().len(),
        4,
        "well-formed, just big"
    );
}

#[test]
fn snp_fault_knobs_and_vmpl() {
    let mut config = SnpConfig::default();
    config.vmpl_floor = 1;
    let mut sim = SnpSim::new(config);
    assert_eq!(
        sim.report(&[0; 64], 0),
        Err(SimError::Vmpl {
            requested: 0,
            floor: 1
        })
    );
    assert!(matches!(
        sim.report(&[0; 64], 4),
        Err(SimError::Vmpl { .. })
    ));
    let raw = sim.report(&[0; 64], 2).unwrap();
    assert_eq!(Report::new_checked(&raw).unwrap().vmpl(), 2);

    sim.faults_mut().force_vmpl = Some(0);
    let raw = sim.report(&[0; 64], 1).unwrap();
    assert_eq!(Report::new_checked(&raw).unwrap().vmpl(), 0);
    assert!(
        report_signature_ok(&raw, sim.vcek_der()),
        "signed as forced"
    );

    sim.faults_mut().force_version = Some(4);
    let raw = sim.report(&[0; 64], 1).unwrap();
    assert_eq!(Report::new_checked(&raw).unwrap().version(), 4);
    assert!(report_signature_ok(&raw, sim.vcek_der()));
    sim.faults_mut().force_version = Some(9);
    let raw = sim.report(&[0; 64], 1).unwrap();
    assert_eq!(
        Report::new_checked(&raw),
        Err(ReportError::UnsupportedVersion(9))
    );

    sim.faults_mut().force_version = None;
    sim.faults_mut().corrupt_signature = true;
    let raw = sim.report(&[0; 64], 1).unwrap();
    assert!(!report_signature_ok(&raw, sim.vcek_der()));

    let mut bad = SnpConfig::default();
    bad.version = 6;
    assert!(matches!(
        SnpSim::new(bad).report(&[0; 64], 0),
        Err(SimError::Report(ReportError::UnsupportedVersion(6)))
    ));
}

#[test]
fn explicit_keys_replace_the_seeded_ones() {
    let mut config = SnpConfig::default();
    config.keys.vcek = sim::keys::p384_key(b"elsewhere", "my-vcek");
    let sim = SnpSim::new(config.clone());
    let raw = sim.report(&[1; 64], 0).unwrap();
    assert!(report_signature_ok(&raw, sim.vcek_der()));
    let seeded = SnpSim::new(SnpConfig::default());
    assert_eq!(sim.ark_der(), seeded.ark_der(), "same ARK");
    assert!(!report_signature_ok(&raw, seeded.vcek_der()));
}

fn pem_certs(chain: &[u8]) -> Vec<Vec<u8>> {
    use base64ct::{Base64, Encoding};
    let text = std::str::from_utf8(chain.strip_suffix(&[0]).unwrap()).unwrap();
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body = block.split("-----END CERTIFICATE-----").next().unwrap();
            let b64: String = body.split_whitespace().collect();
            Base64::decode_vec(&b64).unwrap()
        })
        .collect()
}

fn p256_verify(point_xy: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(point_xy);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
    key.verify(msg, &sig).is_ok()
}

/// The cryptographic part of DCAP quote verification, with the crate's views.
fn dcap_check(raw: &[u8], root_der: &[u8]) -> Result<(), &'static str> {
    let q = Quote::new_checked(raw).map_err(|_| "parse")?;
    let certs = pem_certs(q.pck_cert_chain());
    if certs.len() != 3 || certs[2] != root_der {
        return Err("chain");
    }
    let parsed: Vec<Certificate<'_>> = certs
        .iter()
        .map(|c| der::parse_certificate(c).unwrap())
        .collect();
    if !(verify_cert(&parsed[0], &parsed[1])
        && verify_cert(&parsed[1], &parsed[2])
        && verify_cert(&parsed[2], &parsed[2]))
    {
        return Err("chain signature");
    }
    let pck = parsed[0].ec_public_key(oid::PRIME256V1).unwrap();
    if !p256_verify(&pck[1..], q.qe_report(), q.qe_report_signature()) {
        return Err("qe report signature");
    }
    let mut h = Sha256::new();
    h.update(q.attestation_key());
    h.update(q.qe_auth_data());
    let rd = &q.qe_report()[qe_report::REPORTDATA];
    if rd[..32] != h.finalize()[..] || rd[32..] != [0; 32] {
        return Err("qe binding");
    }
    if !p256_verify(q.attestation_key(), q.signed_bytes(), q.ecdsa_signature()) {
        return Err("quote signature");
    }
    Ok(())
}

#[test]
fn tdx_quotes_parse_and_verify() {
    for (version, body) in [
        (4, BodyKind::Tdx10),
        (5, BodyKind::Tdx10),
        (5, BodyKind::Tdx15),
    ] {
        let mut config = TdxConfig::from_seed(b"unit");
        config.quote_version = version;
        config.body = body;
        config.mr_config_id = [0x33; 48];
        let sim = TdxSim::new(config.clone());
        let report_data = [0x77; 64];
        let raw = sim.quote(&report_data);
        let q = Quote::new_checked(&raw).unwrap();
        assert_eq!(q.version(), version);
        assert_eq!(q.body_kind(), body);
        assert_eq!(q.len(), raw.len());
        assert_eq!(q.qe_vendor_id(), &sim::tdx::INTEL_QE_VENDOR_ID);
        assert_eq!(q.report_data(), &report_data);
        assert_eq!(q.mr_td(), &config.mr_td);
        assert_eq!(q.mr_config_id(), &[0x33; 48]);
        for i in 0..4 {
            assert_eq!(q.rtmr(i), Some(&config.rtmr[i]));
        }
        assert_eq!(q.qe_auth_data(), &config.qe_auth_data[..]);
        assert_eq!(q.pck_cert_chain().last(), Some(&0), "NUL-terminated");
        assert_eq!(dcap_check(&raw, sim.root_der()), Ok(()), "v{version}");

        let ev = sim.evidence_json(&report_data);
        assert!(ev["cc_eventlog"].is_null());
        assert_eq!(tdx::parse_evidence_json(&ev).unwrap().quote, raw);
    }
}

#[test]
fn tdx_fault_knobs() {
    let mut sim = TdxSim::new(TdxConfig::default());
    let root = sim.root_der().to_vec();
    sim.faults_mut().corrupt_quote_signature = true;
    assert_eq!(
        dcap_check(&sim.quote(&[0; 64]), &root),
        Err("quote signature")
    );
    *sim.faults_mut() = Default::default();
    sim.faults_mut().corrupt_qe_report_signature = true;
    assert_eq!(
        dcap_check(&sim.quote(&[0; 64]), &root),
        Err("qe report signature")
    );
    *sim.faults_mut() = Default::default();
    sim.faults_mut().unbound_attestation_key = true;
    assert_eq!(dcap_check(&sim.quote(&[0; 64]), &root), Err("qe binding"));
    *sim.faults_mut() = Default::default();
    sim.faults_mut().force_version = Some(3);
    assert_eq!(
        Quote::new_checked(&sim.quote(&[0; 64])),
        Err(QuoteError::UnsupportedVersion(3))
    );
    let other = TdxSim::new(TdxConfig::from_seed(b"another platform"));
    assert_eq!(dcap_check(&other.quote(&[0; 64]), &root), Err("chain"));
}

#[test]
fn pck_certificate_carries_sgx_extensions() {
    let sim = TdxSim::new(TdxConfig::default());
    let pck = der::parse_certificate(sim.pck_der()).unwrap();
    let sgx_oid = sim::der_writer::oid_content(sim::tdx::SGX_EXTENSIONS_OID);
    let ext = pck.extension(&sgx_oid).unwrap().expect("SGX extensions");
    let seq = ext.value_tlv().unwrap();
    let mut r = seq.reader();
    let mut count = 0;
    let mut fmspc = None;
    while !r.is_empty() {
        let item = r.expect(tag::SEQUENCE).unwrap();
        let mut i = item.reader();
        let id = i.expect(tag::OID).unwrap().value;
        if id.last() == Some(&4) {
            fmspc = Some(i.expect(tag::OCTET_STRING).unwrap().value.to_vec());
        }
        count += 1;
    }
    assert_eq!(
        count, 7,
        "ppid tcb pceid fmspc sgxType platformInstanceId configuration"
    );
    assert_eq!(fmspc.as_deref(), Some(&sim.config().pck_identity.fmspc[..]));
}

#[test]
fn tdreport_has_the_ioctl_layout() {
    let mut config = TdxConfig::default();
    config.mr_config_id = [0x21; 48];
    let sim = TdxSim::new(config.clone());
    let raw = sim.tdreport(&[0x42; 64]);
    let r = TdReport::new_checked(&raw).unwrap();
    assert_eq!(r.report_data(), &[0x42; 64]);
    assert_eq!(r.mrtd(), &config.mr_td);
    assert_eq!(r.mrconfigid(), &[0x21; 48]);
    assert_eq!(r.rtmr(2), Some(&config.rtmr[2]));
    assert_eq!(r.attributes(), &config.td_attributes);
    assert_eq!(r.tee_info_hash()[..], sha2::Sha384::digest(&raw[512..])[..]);
}

/// The deterministic roots never change: the KBS on the host and a simulator in a guest agree
/// on them from the seed alone. (A change here breaks every deployed test seed; bump the
/// derivation label instead.)
#[test]
fn deterministic_roots_are_stable() {
    let fingerprint = |der: &[u8]| hex(&Sha256::digest(der));
    let (ark, ask) = sim::snp::roots(DEFAULT_SEED, Generation::Genoa);
    assert_eq!(ark, SnpSim::new(SnpConfig::default()).ark_der());
    assert_eq!(
        fingerprint(&ark),
        "763396dc5e464bae9289c2dd0a7a217b584f39248f435bf43529da4b15727519"
    );
    assert_eq!(
        fingerprint(&ask),
        "81a8f37601f7c8c1390dd6ef24a3e0d51c82b0e9bc49d1c140aee9796f5ebf9d"
    );
    let root = sim::tdx::root(DEFAULT_SEED);
    assert_eq!(
        fingerprint(&root),
        "920b9532393c5a06eb6ff5961184708e9cd354f1c2765cc8996aeda606e50f34"
    );
    // different seeds, different roots
    assert_ne!(sim::snp::roots(b"x", Generation::Genoa).0, ark);
    assert_ne!(sim::snp::roots(DEFAULT_SEED, Generation::Milan).0, ark);
    // the TCB and chip do not change the roots
    let mut c = SnpConfig::default();
    c.tcb = TcbVersion { snp: 1, ..c.tcb };
    assert_eq!(SnpSim::new(c).ark_der(), ark);
}

/// A view checks once and then owns or borrows its buffer: owned, borrowed and array-backed
/// views of the same bytes agree, and `into_inner` gives the buffer back unchanged.
#[test]
fn views_own_or_borrow_their_buffer() {
    let sim = SnpSim::new(SnpConfig::default());
    let raw = sim.report(&[0x33; 64], 0).unwrap();
    let borrowed = Report::new_checked(&raw[..]).unwrap();
    let owned = Report::new_checked(raw.to_vec()).unwrap();
    let array = Report::new_checked(raw).unwrap();
    assert_eq!(owned.as_bytes(), borrowed.as_bytes());
    assert_eq!(array.report_data(), owned.report_data());
    assert_eq!(
        ReportRepr::parse(&borrowed),
        ReportRepr::parse(&owned),
        "same fields whatever the buffer"
    );
    assert_eq!(owned.into_inner(), raw.to_vec());
    assert_eq!(array.into_inner(), raw);

    let sim = TdxSim::new(TdxConfig::default());
    let mut quote = sim.quote(&[0x44; 64]);
    let len = quote.len();
    quote.extend_from_slice(&[0; 7]); // trailing bytes are tolerated and kept
    let owned = Quote::new_checked(quote.clone()).unwrap();
    assert_eq!(owned.len(), len);
    assert_eq!(owned.as_bytes(), &quote[..len]);
    assert_eq!(owned.report_data(), &[0x44; 64]);
    assert_eq!(
        Quote::new_checked(&quote[..]).unwrap().pck_cert_chain(),
        owned.pck_cert_chain()
    );
    assert_eq!(owned.into_inner(), quote);

    let raw = sim.tdreport(&[0x55; 64]);
    let report = TdReport::new_checked(raw).unwrap();
    assert_eq!(report.report_data(), &[0x55; 64]);
    assert_eq!(report.into_inner(), raw);
}
