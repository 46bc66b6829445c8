//! SNP and TDX evidence from firmware-glue's simulators through the whole RCAR protocol on
//! loopback (auth, attest, resource), verified by the test KBS against the simulators'
//! deterministic roots; and every way it must be refused. Each refusal is checked twice: on the
//! wire (Trustee's 401 `AttestationError`, no reason) and by calling the verifier directly
//! (the precise reason the KBS logs).

#![allow(
    clippy::field_reassign_with_default,
    reason = "configs read best as default + the knob under test"
)]

mod common;

use common::*;
use firmware_glue::sim::snp::{CertTableFault, SnpConfig, SnpSim};
use firmware_glue::sim::tdx::{TdxConfig, TdxSim};
use firmware_glue::sim::{self, DEFAULT_SEED};
use firmware_glue::snp::Generation;
use firmware_glue::tdx::BodyKind;
use sealgate_core::eventlog;
use serde_json::{Value, json};
use sha2::{Digest, Sha384};
use test_kbs::{
    Config, Expected, Server, SnpPolicy, SnpVerifier, TdxPolicy, TdxVerifier, Tee, Verifier,
    Verifiers,
};

const SECRET: &str = "/kbs/v0/resource/default/mysecret/secret";
const ATTEST_FAILED: &str = "Attestation error: RCAR handshake Attest failed";

const INIT_DATA: &str = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://127.0.0.1:8080\"\n'''\n";

fn init_data_digest() -> [u8; 48] {
    Sha384::digest(INIT_DATA.as_bytes()).into()
}

fn server_with(verifiers: Verifiers) -> Server {
    let server = Server::start(Config {
        verifiers,
        ..Config::default()
    })
    .expect("start");
    server
        .add_resource("default/mysecret/secret", b"tee-s3cret".to_vec())
        .unwrap();
    server
}

fn server() -> Server {
    server_with(Verifiers::sim(DEFAULT_SEED))
}

fn auth_as(client: &mut Client, tee: &str) -> Session {
    let body = format!(r#"{{"version":"0.4.0","tee":"{tee}","extra-params":{{}}}}"#);
    let r = client.post_json("/kbs/v0/auth", &[], &body).expect("auth");
    assert_eq!(r.status, 200, "{}", r.text());
    Session {
        cookie: r.session_cookie(),
        nonce: r.json()["nonce"].as_str().expect("nonce").to_owned(),
    }
}

/// REPORT_DATA for a session: SHA-384 of the JCS binding ‖ 16 zero bytes (kbs-protocol §4.1).
fn report_data(jwk: &str, nonce: &str) -> [u8; 64] {
    let digest = Sha384::digest(binding_jcs(jwk, nonce, Some("")).as_bytes());
    let mut out = [0u8; 64];
    out[..48].copy_from_slice(&digest);
    out
}

fn attestation_body(nonce: &str, jwk: &str, evidence: &Value, init_data: bool) -> String {
    let init = if init_data {
        json!({"format": "toml", "body": INIT_DATA})
    } else {
        Value::Null
    };
    format!(
        r#"{{"init-data":{init},"runtime-data":{{"nonce":{},"tee-pubkey":{jwk}}},"tee-evidence":{{"primary_evidence":{evidence},"additional_evidence":""}}}}"#,
        Value::from(nonce)
    )
}

/// One attestation: `make` builds the evidence from the session's REPORT_DATA.
fn attest_with(
    server: &Server,
    tee: &str,
    init_data: bool,
    make: impl FnOnce(&[u8; 64]) -> Value,
) -> (Client, Session, TeeKey, RawResponse) {
    let mut client = Client::connect(server.addr());
    let key = TeeKey::p256();
    let session = auth_as(&mut client, tee);
    let evidence = make(&report_data(&key.jwk(), &session.nonce));
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &attestation_body(&session.nonce, &key.jwk(), &evidence, init_data),
        )
        .expect("attest");
    (client, session, key, r)
}

fn expect_refused(
    server: &Server,
    tee: &str,
    init_data: bool,
    make: impl FnOnce(&[u8; 64]) -> Value,
) {
    let (_, _, _, r) = attest_with(server, tee, init_data, make);
    assert_error(&r, 401, "AttestationError", ATTEST_FAILED);
}

/// The reason the verifier gives (what the KBS logs), for evidence bound to a fixed digest.
fn reason(
    verifier: &dyn Verifier,
    init_data: bool,
    make: impl FnOnce(&[u8; 64]) -> Value,
) -> String {
    let digest = [0x11u8; 48];
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(&digest);
    let init = init_data_digest();
    let expected = Expected {
        report_data: &digest,
        init_data_digest: init_data.then_some(&init[..]),
    };
    verifier
        .verify(&make(&rd), &expected)
        .expect_err("must be refused")
}

fn snp_verifier() -> SnpVerifier {
    SnpVerifier::from_sim_seed(DEFAULT_SEED, SnpPolicy::default())
}

fn tdx_verifier() -> TdxVerifier {
    TdxVerifier::from_sim_seed(DEFAULT_SEED, TdxPolicy::default())
}

fn snp_sim(edit: impl FnOnce(&mut SnpConfig)) -> SnpSim {
    let mut config = SnpConfig::default();
    config.host_data.copy_from_slice(&init_data_digest()[..32]);
    edit(&mut config);
    SnpSim::new(config)
}

fn tdx_sim(edit: impl FnOnce(&mut TdxConfig)) -> TdxSim {
    let mut config = TdxConfig::default();
    config.mr_config_id = init_data_digest();
    edit(&mut config);
    TdxSim::new(config)
}

fn annotated(token: &str) -> Value {
    claims(token)["submods"]["cpu0"]["ear.veraison.annotated-evidence"].clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------------------------------------------------------------------------
// SNP

#[test]
fn snp_attests_gets_a_token_with_claims_and_a_secret() {
    let server = server();
    let sim = snp_sim(|_| {});
    let (mut client, session, key, r) =
        attest_with(&server, "snp", true, |rd| sim.evidence_json(rd).unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let claims = claims(&token);
    assert_eq!(claims["submods"]["cpu0"]["ear.status"], "affirming");
    let ev = annotated(&token);
    let snp = &ev["snp"];
    assert_eq!(snp["measurement"], hex(&sim.config().measurement));
    assert_eq!(snp["chip_id"], hex(&sim.config().chip_id));
    assert_eq!(snp["reported_tcb_snp"], sim.config().tcb.snp);
    assert_eq!(snp["policy_debug_allowed"], false);
    assert_eq!(snp["policy_smt_allowed"], true);
    assert_eq!(
        ev["report_data"],
        hex(&report_data(&key.jwk(), &session.nonce))
    );
    assert_eq!(ev["init_data"], hex(&init_data_digest()[..32]));
    assert_eq!(
        ev["init_data_claims"]["aa.toml"]["token_configs"]["kbs"]["url"],
        "http://127.0.0.1:8080"
    );
    assert_eq!(ev["runtime_data_claims"]["nonce"], session.nonce.as_str());

    let secret = client
        .get(SECRET, &[("Cookie", &session.cookie_header())])
        .unwrap();
    assert_eq!(secret.status, 200, "{}", secret.text());
    assert_eq!(key.decrypt(&secret.body), b"tee-s3cret");
}

#[test]
fn snp_generations_versions_and_a_full_chain_attest() {
    let server = server();
    for generation in [Generation::Milan, Generation::Genoa, Generation::Turin] {
        for (version, include_ca_certs) in [(3, false), (5, true)] {
            let mut config = SnpConfig::from_seed(DEFAULT_SEED, generation);
            config.version = version;
            config.include_ca_certs = include_ca_certs;
            let sim = SnpSim::new(config);
            let (_, _, _, r) =
                attest_with(&server, "snp", false, |rd| sim.evidence_json(rd).unwrap());
            assert_eq!(r.status, 200, "{generation:?} v{version}: {}", r.text());
        }
    }
}

#[test]
fn snp_wrong_report_data_is_refused() {
    let server = server();
    let sim = snp_sim(|_| {});
    expect_refused(&server, "snp", true, |rd| {
        let mut other = *rd;
        other[0] ^= 1;
        sim.evidence_json(&other).unwrap()
    });
    let why = reason(&snp_verifier(), true, |rd| {
        sim.evidence_json(&[rd[0] ^ 1; 64]).unwrap()
    });
    assert!(why.starts_with("Report Data Mismatch"), "{why}");
}

#[test]
fn snp_tampered_report_or_signature_is_refused() {
    let server = server();
    let sim = snp_sim(|_| {});
    let tamper = |rd: &[u8; 64]| {
        let mut ev = sim.evidence_json(rd).unwrap();
        ev["attestation_report"]["measurement"][0] = json!(0);
        ev
    };
    expect_refused(&server, "snp", true, tamper);
    let why = reason(&snp_verifier(), true, tamper);
    assert!(why.starts_with("Report signature verification"), "{why}");

    let corrupt = snp_sim(|c| c.faults.corrupt_signature = true);
    expect_refused(&server, "snp", true, |rd| {
        corrupt.evidence_json(rd).unwrap()
    });
    let why = reason(&snp_verifier(), true, |rd| {
        corrupt.evidence_json(rd).unwrap()
    });
    assert!(why.contains("does not verify with the VEK"), "{why}");
}

#[test]
fn snp_host_data_must_bind_the_init_data() {
    let server = server();
    let sim = snp_sim(|c| c.host_data = [0x99; 32]);
    expect_refused(&server, "snp", true, |rd| sim.evidence_json(rd).unwrap());
    let why = reason(&snp_verifier(), true, |rd| sim.evidence_json(rd).unwrap());
    assert!(why.starts_with("Host Data Mismatch"), "{why}");
    // without init-data, HOST_DATA is not checked
    let (_, _, _, r) = attest_with(&server, "snp", false, |rd| sim.evidence_json(rd).unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn snp_version_2_and_vmpl_1_are_refused() {
    let server = server();
    let v2 = snp_sim(|c| c.version = 2);
    expect_refused(&server, "snp", true, |rd| v2.evidence_json(rd).unwrap());
    let why = reason(&snp_verifier(), true, |rd| v2.evidence_json(rd).unwrap());
    assert_eq!(
        why,
        "Attestation Report version is too old. Please update your firmware."
    );

    // a version the encoder does not know (the `sev` crate, and Trustee, refuse it likewise)
    let why = reason(&snp_verifier(), true, |rd| {
        let mut ev = snp_sim(|_| {}).evidence_json(rd).unwrap();
        ev["attestation_report"]["version"] = json!(6);
        ev
    });
    assert!(
        why.starts_with("Unexpected attestation report version"),
        "{why}"
    );

    let vmpl1 = snp_sim(|c| c.vmpl_floor = 1);
    expect_refused(&server, "snp", true, |rd| vmpl1.evidence_json(rd).unwrap());
    let why = reason(&snp_verifier(), true, |rd| vmpl1.evidence_json(rd).unwrap());
    assert_eq!(why, "VMPL Check Failed (VMPL 1)");
}

#[test]
fn snp_cert_chain_missing_or_from_another_ark_is_refused() {
    let server = server();
    let missing = snp_sim(|c| c.faults.cert_table = CertTableFault::Missing);
    expect_refused(&server, "snp", true, |rd| {
        missing.evidence_json(rd).unwrap()
    });
    let why = reason(&snp_verifier(), true, |rd| {
        missing.evidence_json(rd).unwrap()
    });
    assert!(why.contains("no KDS access"), "{why}");

    // a whole platform from another seed: its VCEK is signed by another ASK
    let foreign = SnpSim::new(SnpConfig::from_seed(b"another vendor", Generation::Genoa));
    expect_refused(&server, "snp", false, |rd| {
        foreign.evidence_json(rd).unwrap()
    });
    let why = reason(&snp_verifier(), false, |rd| {
        foreign.evidence_json(rd).unwrap()
    });
    assert!(
        why.contains("VEK signed by ASK: signature does not verify"),
        "{why}"
    );

    // ... and carrying its own ARK and ASK does not help: the ARK must be the trusted one
    let foreign_full = SnpSim::new(SnpConfig {
        include_ca_certs: true,
        ..SnpConfig::from_seed(b"another vendor", Generation::Genoa)
    });
    expect_refused(&server, "snp", false, |rd| {
        foreign_full.evidence_json(rd).unwrap()
    });
    let why = reason(&snp_verifier(), false, |rd| {
        foreign_full.evidence_json(rd).unwrap()
    });
    assert!(
        why.starts_with("Provided ARK has an invalid signature"),
        "{why}"
    );

    // a chain without VCEK/VLEK
    let why = reason(&snp_verifier(), false, |rd| {
        let mut ev = snp_sim(|_| {}).evidence_json(rd).unwrap();
        ev["cert_chain"][0]["cert_type"] = json!("ASK");
        ev
    });
    assert_eq!(
        why,
        "If a cert chain is provided, it must include a VCEK/VLEK"
    );

    // the KBS trusts nothing for SNP at all
    let empty = SnpVerifier::new(SnpPolicy::default());
    let why = reason(&empty, false, |rd| {
        snp_sim(|_| {}).evidence_json(rd).unwrap()
    });
    assert!(
        why.starts_with("Vendor certs not found for processor type: Genoa"),
        "{why}"
    );
}

#[test]
fn snp_tcb_and_chip_id_must_match_the_vcek() {
    let sim = snp_sim(|_| {});
    let why = reason(&snp_verifier(), false, |rd| {
        let mut ev = sim.evidence_json(rd).unwrap();
        ev["attestation_report"]["reported_tcb"]["snp"] = json!(1);
        ev
    });
    // the report signature covers REPORTED_TCB, so tampering is caught first
    assert!(why.starts_with("Report signature verification"), "{why}");
    // a VCEK for another TCB (the host serves a stale certificate)
    let stale = {
        let mut c = SnpConfig::default();
        c.tcb.snp -= 1;
        SnpSim::new(c)
    };
    let why = reason(&snp_verifier(), false, |rd| {
        let mut ev = sim.evidence_json(rd).unwrap();
        ev["cert_chain"][0]["data"] = json!(stale.vcek_der());
        ev
    });
    assert!(why.contains("SNP version mismatch"), "{why}");
    let other_chip = {
        let mut c = SnpConfig::default();
        c.chip_id[5] ^= 1;
        SnpSim::new(c)
    };
    let why = reason(&snp_verifier(), false, |rd| {
        let mut ev = sim.evidence_json(rd).unwrap();
        ev["cert_chain"][0]["data"] = json!(other_chip.vcek_der());
        ev
    });
    assert!(why.contains("Chip ID mismatch"), "{why}");
}

#[test]
fn snp_hw_id_may_be_a_der_octet_string() {
    use firmware_glue::der::oid;
    use firmware_glue::sim::der_writer as w;
    use firmware_glue::sim::snp::{SnpKeys, amd_name, vcek_oid};
    use firmware_glue::sim::x509::{self, CertSpec, Extension, IssuerKey, SubjectKey};
    let sim = snp_sim(|_| {});
    let keys = SnpKeys::from_seed(DEFAULT_SEED, Generation::Genoa);
    let vcek = |hw_id: Vec<u8>| {
        let tcb = sim.config().tcb;
        let int = |v: u8| w::integer_u64(u64::from(v));
        x509::certificate(
            &CertSpec {
                serial: &[1],
                issuer: &amd_name("SEV-Genoa"),
                subject: &amd_name("SEV-VCEK"),
                not_before: w::Time::date(2024, 1, 1),
                not_after: w::Time::date(2031, 1, 1),
                extensions: &[
                    Extension::new(vcek_oid::BL_SPL, int(tcb.bootloader)),
                    Extension::new(vcek_oid::TEE_SPL, int(tcb.tee)),
                    Extension::new(vcek_oid::SNP_SPL, int(tcb.snp)),
                    Extension::new(vcek_oid::UCODE_SPL, int(tcb.microcode)),
                    Extension::new(vcek_oid::HW_ID, hw_id),
                ],
            },
            SubjectKey::P384(keys.vcek.verifying_key()),
            IssuerKey::P384(&keys.ask),
        )
    };
    let chip = sim.config().chip_id;
    let sim = &sim;
    let with = |der: Vec<u8>| {
        move |rd: &[u8; 64]| {
            let mut ev = sim.evidence_json(rd).unwrap();
            ev["cert_chain"][0]["data"] = json!(der);
            ev
        }
    };
    let digest = [0x11u8; 48];
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(&digest);
    let expected = Expected {
        report_data: &digest,
        init_data_digest: None,
    };
    for good in [chip.to_vec(), w::octet_string(&chip)] {
        let ev = with(vcek(good))(&rd);
        snp_verifier().verify(&ev, &expected).expect("verifies");
    }
    let mut other = chip;
    other[63] ^= 1;
    let why = reason(&snp_verifier(), false, with(vcek(w::octet_string(&other))));
    assert!(why.contains("Chip ID mismatch"), "{why}");
    assert_eq!(oid::AMD_HW_ID, w::oid_content(vcek_oid::HW_ID));
}

#[test]
fn snp_measurement_policy() {
    let sim = snp_sim(|_| {});
    let mut policy = SnpPolicy::default();
    policy.allow_measurement_hex(&"ab".repeat(48)).unwrap();
    let strict = SnpVerifier::from_sim_seed(DEFAULT_SEED, policy.clone());
    let why = reason(&strict, true, |rd| sim.evidence_json(rd).unwrap());
    assert!(why.starts_with("policy: measurement"), "{why}");
    let mut verifiers = Verifiers::default();
    verifiers.insert(Tee::Snp, strict);
    let server = server_with(verifiers);
    expect_refused(&server, "snp", true, |rd| sim.evidence_json(rd).unwrap());

    policy
        .allow_measurement_hex(&hex(&sim.config().measurement))
        .unwrap();
    let mut verifiers = Verifiers::default();
    verifiers.insert(Tee::Snp, SnpVerifier::from_sim_seed(DEFAULT_SEED, policy));
    let server = server_with(verifiers);
    let (_, _, _, r) = attest_with(&server, "snp", true, |rd| sim.evidence_json(rd).unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn snp_malformed_or_oversized_certificates_are_refused() {
    let server = server();
    let sim = snp_sim(|_| {});
    let truncated = |rd: &[u8; 64]| {
        let mut ev = sim.evidence_json(rd).unwrap();
        let der = sim.vcek_der();
        ev["cert_chain"][0]["data"] = json!(&der[..der.len() - 10]);
        ev
    };
    expect_refused(&server, "snp", true, truncated);
    let why = reason(&snp_verifier(), true, truncated);
    assert!(why.starts_with("VCEK certificate is malformed"), "{why}");

    let huge = |rd: &[u8; 64]| {
        let mut ev = sim.evidence_json(rd).unwrap();
        ev["cert_chain"][0]["data"] = json!(vec![0x30u8; 40 * 1024]);
        ev
    };
    expect_refused(&server, "snp", true, huge);
    let why = reason(&snp_verifier(), true, huge);
    assert!(why.contains("at most 32768"), "{why}");

    let many = |rd: &[u8; 64]| {
        let mut ev = sim.evidence_json(rd).unwrap();
        let entry = ev["cert_chain"][0].clone();
        ev["cert_chain"] = Value::Array(vec![entry; 65]);
        ev
    };
    expect_refused(&server, "snp", true, many);
    let why = reason(&snp_verifier(), true, many);
    assert!(why.contains("65 entries"), "{why}");

    // a cert table that does not parse never becomes evidence: the simulator (like the agent)
    // refuses it before anything is sent
    let malformed = snp_sim(|c| c.faults.cert_table = CertTableFault::Malformed);
    assert!(malformed.evidence_json(&[0; 64]).is_err());
    // an oversized but well-formed one does, and the OTHER entry is ignored... unless too big
    let oversized = snp_sim(|c| c.faults.cert_table = CertTableFault::Oversized);
    expect_refused(&server, "snp", true, |rd| {
        oversized.evidence_json(rd).unwrap()
    });
    let why = reason(&snp_verifier(), true, |rd| {
        oversized.evidence_json(rd).unwrap()
    });
    assert!(why.contains("at most 32768"), "{why}");

    // not SNP evidence at all
    let why = reason(&snp_verifier(), false, |_| json!({"svn": "1"}));
    assert!(why.starts_with("Deserialize SNP Evidence failed"), "{why}");
}

// ------------------------------------------------------------------------------------------
// TDX

#[test]
fn tdx_attests_gets_a_token_with_claims_and_a_secret() {
    let server = server();
    for (version, body) in [
        (4, BodyKind::Tdx10),
        (5, BodyKind::Tdx10),
        (5, BodyKind::Tdx15),
    ] {
        let sim = tdx_sim(|c| {
            c.quote_version = version;
            c.body = body;
        });
        let (mut client, session, key, r) =
            attest_with(&server, "tdx", true, |rd| sim.evidence_json(rd));
        assert_eq!(r.status, 200, "v{version}: {}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        let ev = annotated(&token);
        let tdx = &ev["tdx"];
        assert_eq!(tdx["quote"]["body"]["mr_td"], hex(&sim.config().mr_td));
        assert_eq!(
            tdx["quote"]["header"]["version"],
            hex(&version.to_le_bytes())
        );
        assert_eq!(tdx["td_attributes"]["septve_disable"], true);
        assert_eq!(tdx["td_attributes"]["debug"], false);
        assert!(tdx["platform_instance_id"].is_string());
        assert_eq!(ev["init_data"], hex(&init_data_digest()));
        assert_eq!(
            ev["report_data"],
            hex(&report_data(&key.jwk(), &session.nonce))
        );
        if body == BodyKind::Tdx15 {
            assert!(tdx["quote"]["body"]["mr_servicetd"].is_string());
        }
        let secret = client
            .get(SECRET, &[("Cookie", &session.cookie_header())])
            .unwrap();
        assert_eq!(key.decrypt(&secret.body), b"tee-s3cret");
    }
}

#[test]
fn tdx_wrong_report_data_and_mrconfigid_are_refused() {
    let server = server();
    let sim = tdx_sim(|_| {});
    expect_refused(&server, "tdx", true, |rd| sim.evidence_json(&[rd[1]; 64]));
    let why = reason(&tdx_verifier(), true, |rd| sim.evidence_json(&[rd[1]; 64]));
    assert!(why.contains("REPORT_DATA is different"), "{why}");

    let other = tdx_sim(|c| c.mr_config_id = [0x42; 48]);
    expect_refused(&server, "tdx", true, |rd| other.evidence_json(rd));
    let why = reason(&tdx_verifier(), true, |rd| other.evidence_json(rd));
    assert!(why.contains("MRCONFIGID is different"), "{why}");
}

#[test]
fn tdx_tampered_or_badly_signed_quotes_are_refused() {
    let server = server();
    let sim = tdx_sim(|_| {});
    let tampered = |rd: &[u8; 64]| {
        let mut quote = sim.quote(rd);
        quote[48 + 136] ^= 1; // MRTD
        firmware_glue::tdx::evidence_json(&quote, None)
    };
    expect_refused(&server, "tdx", true, tampered);
    let why = reason(&tdx_verifier(), true, tampered);
    assert!(
        why.contains("quote signature (attestation key): the signature does not verify"),
        "{why}"
    );

    for (edit, expected) in [
        (
            (|c: &mut TdxConfig| c.faults.corrupt_quote_signature = true) as fn(&mut TdxConfig),
            "quote signature (attestation key)",
        ),
        (
            |c| c.faults.corrupt_qe_report_signature = true,
            "QE report signature (PCK key)",
        ),
        (
            |c| c.faults.unbound_attestation_key = true,
            "does not bind the attestation key",
        ),
        (|c| c.faults.force_version = Some(3), "got SGX quote (v3)"),
    ] {
        let bad = tdx_sim(edit);
        expect_refused(&server, "tdx", true, |rd| bad.evidence_json(rd));
        let why = reason(&tdx_verifier(), true, |rd| bad.evidence_json(rd));
        assert!(why.contains(expected), "{expected:?} not in {why}");
    }
}

#[test]
fn tdx_chain_from_another_root_is_refused() {
    let server = server();
    let foreign = TdxSim::new(TdxConfig::from_seed(b"another vendor"));
    expect_refused(&server, "tdx", false, |rd| foreign.evidence_json(rd));
    let why = reason(&tdx_verifier(), false, |rd| foreign.evidence_json(rd));
    assert!(why.contains("not the root CA the test KBS trusts"), "{why}");
}

#[test]
fn tdx_mrtd_and_rtmr_policy() {
    let sim = tdx_sim(|_| {});
    let mut policy = TdxPolicy::default();
    policy.allow_mr_td_hex(&"cd".repeat(48)).unwrap();
    let strict = TdxVerifier::from_sim_seed(DEFAULT_SEED, policy.clone());
    let why = reason(&strict, true, |rd| sim.evidence_json(rd));
    assert!(why.starts_with("policy: MRTD"), "{why}");
    let mut verifiers = Verifiers::default();
    verifiers.insert(Tee::Tdx, strict);
    expect_refused(&server_with(verifiers), "tdx", true, |rd| {
        sim.evidence_json(rd)
    });

    policy.allow_mr_td_hex(&hex(&sim.config().mr_td)).unwrap();
    policy.expect_rtmr_hex(3, &"00".repeat(48)).unwrap();
    let ok = TdxVerifier::from_sim_seed(DEFAULT_SEED, policy.clone());
    let mut verifiers = Verifiers::default();
    verifiers.insert(Tee::Tdx, ok);
    let (_, _, _, r) = attest_with(&server_with(verifiers), "tdx", true, |rd| {
        sim.evidence_json(rd)
    });
    assert_eq!(r.status, 200, "{}", r.text());

    policy.expect_rtmr_hex(0, &"00".repeat(48)).unwrap();
    let why = reason(
        &TdxVerifier::from_sim_seed(DEFAULT_SEED, policy),
        true,
        |rd| sim.evidence_json(rd),
    );
    assert!(why.starts_with("policy: RTMR0"), "{why}");
}

#[test]
fn tdx_malformed_evidence_is_refused() {
    let v = tdx_verifier();
    let why = reason(&v, false, |_| json!({"quote": ""}));
    assert_eq!(why, "TDX Quote is empty.");
    let why = reason(&v, false, |_| json!({"quote": "not base64!"}));
    assert!(why.contains("base64"), "{why}");
    let why = reason(&v, false, |_| json!({"cc_eventlog": null}));
    assert!(why.starts_with("Deserialize TDX Evidence failed"), "{why}");
    let sim = tdx_sim(|_| {});
    let why = reason(&v, false, |rd| {
        let quote = sim.quote(rd);
        firmware_glue::tdx::evidence_json(&quote[..quote.len() - 100], None)
    });
    assert!(why.contains("malformed TD quote"), "{why}");
    // an event log is parsed and replayed (issue 10): 3 bytes are no event log
    let digest = [0x11u8; 48];
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(&digest);
    let why = reason(&v, false, |rd| {
        firmware_glue::tdx::evidence_json(&sim.quote(rd), Some(b"log"))
    });
    assert!(why.starts_with("TDX Verifier: parse CCEL failed"), "{why}");
    let ev = sim.evidence_json(&rd);
    let appraisal = v
        .verify(
            &ev,
            &Expected {
                report_data: &digest,
                init_data_digest: None,
            },
        )
        .unwrap();
    assert!(
        appraisal.notes[0].contains("no event log"),
        "{:?}",
        appraisal.notes
    );
}

#[test]
fn sample_still_works_next_to_snp_and_tdx() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    let r = client
        .get(SECRET, &[("Cookie", &session.cookie_header())])
        .unwrap();
    assert_eq!(key.decrypt(&r.body), b"tee-s3cret");
    // evidence of one TEE does not pass as another's
    let sim = snp_sim(|_| {});
    expect_refused(&server, "tdx", false, |rd| sim.evidence_json(rd).unwrap());
}

/// Kills the child on drop, so a failed assertion does not leave a server running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_program_trusts_sim_roots_or_certificate_files_and_logs_the_reason() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = TempDir::new("tee-binary");
    let sim_snp = snp_sim(|_| {});
    dir.write("ark.der", sim_snp.ark_der());
    dir.write("ask.der", sim_snp.ask_der());
    dir.write("root.der", &sim::tdx::root(DEFAULT_SEED));
    let runs: [Vec<String>; 2] = [
        vec!["--trust-sim-roots".into(), "sealgate test roots".into()],
        vec![
            "--snp-ark".into(),
            dir.0.join("ark.der").display().to_string(),
            "--snp-ask".into(),
            dir.0.join("ask.der").display().to_string(),
            "--tdx-root".into(),
            dir.0.join("root.der").display().to_string(),
            "--tdx-mrtd".into(),
            hex(&TdxConfig::default().mr_td),
        ],
    ];
    for args in runs {
        let mut child = Running(
            Command::new(env!("CARGO_BIN_EXE_test-kbs"))
                .args(["--listen", "127.0.0.1:0"])
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn test-kbs"),
        );
        let mut line = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().trim_start_matches("http://").parse().unwrap();
        let connect = |tee: &str, evidence: &dyn Fn(&[u8; 64]) -> Value| {
            let mut client = Client::connect(addr);
            let key = TeeKey::p256();
            let session = auth_as(&mut client, tee);
            let ev = evidence(&report_data(&key.jwk(), &session.nonce));
            client
                .post_json(
                    "/kbs/v0/attest",
                    &[("Cookie", &session.cookie_header())],
                    &attestation_body(&session.nonce, &key.jwk(), &ev, true),
                )
                .unwrap()
        };
        let tdx = tdx_sim(|_| {});
        assert_eq!(
            connect("snp", &|rd| sim_snp.evidence_json(rd).unwrap()).status,
            200
        );
        assert_eq!(connect("tdx", &|rd| tdx.evidence_json(rd)).status, 200);
        let vmpl1 = snp_sim(|c| c.vmpl_floor = 1);
        let r = connect("snp", &|rd| vmpl1.evidence_json(rd).unwrap());
        assert_error(&r, 401, "AttestationError", ATTEST_FAILED);

        let _ = child.0.kill();
        let _ = child.0.wait();
        let mut log = String::new();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        for expected in [
            "POST /kbs/v0/attest -> 200 (snp: any measurement accepted)",
            "POST /kbs/v0/attest -> 200 (tdx: no event log (cc_eventlog null): RTMRs not replayed",
            "POST /kbs/v0/attest -> 401 (verify TEE evidence failed (snp): VMPL Check Failed (VMPL 1))",
        ] {
            assert!(
                log.contains(expected),
                "{expected:?} not in log ({args:?}):\n{log}"
            );
        }
    }
}

#[test]
fn the_program_rejects_incomplete_tee_flags() {
    for args in [
        &["--snp-measurement", "00"][..],
        &["--snp-ask", "/nonexistent"],
        &["--tdx-mrtd", &"00".repeat(48)],
        &["--snp-measurement", &"00".repeat(48)],
        &["--tdx-rtmr", "4:00"],
        &["--snp-ark", "/nonexistent/ark.der"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_test-kbs"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: test-kbs"));
    }
}

/// The firmware's CCEL (cut at its end) plus AAEL records, as sealgate's evidence carries it.
fn cc_eventlog(sim: &TdxSim, aael: &[u8]) -> Vec<u8> {
    let ccel = &sim.config().ccel;
    eventlog::assemble(Some(ccel), Some(aael)).unwrap().unwrap()
}

fn verify_with_log(
    v: &TdxVerifier,
    sim: &TdxSim,
    log: &[u8],
) -> Result<test_kbs::Appraisal, String> {
    let digest = [0x11u8; 48];
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(&digest);
    let ev = firmware_glue::tdx::evidence_json(&sim.quote(&rd), Some(log));
    v.verify(
        &ev,
        &Expected {
            report_data: &digest,
            init_data_digest: None,
        },
    )
}

#[test]
fn tdx_event_log_replays_against_the_rtmrs() {
    let v = tdx_verifier();
    let mut sim = tdx_sim(|_| {});
    // The firmware's log alone: RTMR0..2 replay, RTMR3 is zero.
    let log = cc_eventlog(&sim, &[]);
    let a = verify_with_log(&v, &sim, &log).unwrap();
    assert!(a.notes[0].contains("4 events, replayed"), "{:?}", a.notes);
    let events = a.claims["uefi_event_logs"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[1]["type_name"], "EV_EFI_BOOT_SERVICES_APPLICATION");
    assert_eq!(events[0]["digests"][0]["alg"], "SHA-384");
    assert_eq!(events[0]["digest_matches_event"], true);

    // An AAEL entry after an extend of RTMR3 replays.
    let e = eventlog::AaelEvent::new(
        "github.com/confidential-containers",
        "PullImage",
        "{\"image\":\"docker.io/library/busybox:latest\", \"digest\":\"sha256:00\"}",
        eventlog::pcr_to_mr(17),
    )
    .unwrap();
    sim.extend_rtmr(3, &e.digest());
    let log = cc_eventlog(&sim, &e.record());
    let a = verify_with_log(&v, &sim, &log).unwrap();
    let events = a.claims["uefi_event_logs"].as_array().unwrap();
    let aael = &events[3];
    assert_eq!(aael["index"], 4);
    assert_eq!(aael["type_name"], "EV_EVENT_TAG");
    assert_eq!(aael["details"]["unicode_name"], "AAEL");
    assert_eq!(aael["details"]["data"]["operation"], "PullImage");
    assert_eq!(
        aael["details"]["data"]["content"]["image"],
        "docker.io/library/busybox:latest"
    );
    // The quote's RTMR3 is now nonzero and in the claims.
    assert_eq!(
        a.claims["quote"]["body"]["rtmr_3"],
        json!(hex(&sim.config().rtmr[3]))
    );

    // The same log against a quote without the extend: RTMR3 mismatch.
    let fresh = tdx_sim(|_| {});
    let why = verify_with_log(&v, &fresh, &log).unwrap_err();
    assert!(
        why.starts_with("TDX Verifier: RTMR3 of the quote is"),
        "{why}"
    );

    // A tampered firmware event (one digest bit): RTMR0 mismatch, refused on the wire too.
    let mut bad = cc_eventlog(&sim, &e.record());
    let at = eventlog::spec_id_header(&[(eventlog::ALG_SHA384, 48)]).len() + 14;
    bad[at] ^= 1;
    let why = verify_with_log(&v, &sim, &bad).unwrap_err();
    assert!(
        why.starts_with("TDX Verifier: RTMR0 of the quote is"),
        "{why}"
    );
    let mut verifiers = Verifiers::default();
    verifiers.insert(Tee::Tdx, tdx_verifier());
    expect_refused(&server_with(verifiers.clone()), "tdx", true, |rd| {
        firmware_glue::tdx::evidence_json(&sim.quote(rd), Some(&bad))
    });
    let (_, _, _, r) = attest_with(&server_with(verifiers), "tdx", true, |rd| {
        firmware_glue::tdx::evidence_json(&sim.quote(rd), Some(&log))
    });
    assert_eq!(r.status, 200, "{}", r.text());

    // A tampered AAEL text: its digest no longer matches the event (reported), and the
    // record still replays its (unchanged) digest; changing the digest breaks RTMR3.
    let mut rec = e.record();
    let last = rec.len() - 1;
    rec[last] ^= 0x20;
    let a = verify_with_log(&v, &sim, &cc_eventlog(&sim, &rec)).unwrap();
    assert_eq!(
        a.claims["uefi_event_logs"][3]["digest_matches_event"],
        false
    );
    let mut rec = e.record();
    rec[20] ^= 1;
    let why = verify_with_log(&v, &sim, &cc_eventlog(&sim, &rec)).unwrap_err();
    assert!(
        why.starts_with("TDX Verifier: RTMR3 of the quote is"),
        "{why}"
    );

    // Unknown event type, missing end marker: parse errors.
    let mut log = cc_eventlog(&sim, &e.record());
    log.truncate(log.len() - 8);
    let why = verify_with_log(&v, &sim, &log).unwrap_err();
    assert!(why.contains("end marker"), "{why}");
}
