//! SNP and TDX end to end on the host: the real `sealgate` binary gets its evidence through
//! its real configfs-tsm code from a FUSE mount with configfs-tsm's semantics, answered by
//! simulated firmware (test keys), and the test KBS verifies it as Trustee does (chain,
//! signature, binding, init-data, policy). Needs root and /dev/fuse.

mod common;

use common::*;
use firmware_glue::sim::DEFAULT_SEED;
use firmware_glue::sim::snp::{CertTableFault, SnpConfig, SnpSim};
use firmware_glue::sim::tdx::{TdxConfig, TdxSim};
use firmware_glue::snp::Generation;
use sealgate_core::initdata::InitData;
use std::sync::Arc;
use test_kbs::{Config, SnpPolicy, SnpVerifier, Verifiers};
use tsm_fuse::TsmMount;
use tsm_fuse::sim::{SnpProvider, TdxProvider};

const SECRET: &str = "default/tee/disk-key";
const VALUE: &str = "tee-disk-key-5f31c9a0";
const INIT_DATA: &str = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://10.0.2.2:8080\"\n'''\n";

fn kbs_config() -> Config {
    Config {
        verifiers: Verifiers::sim(DEFAULT_SEED),
        ..Config::default()
    }
}

fn world(tag: &str, config: Config) -> World {
    let w = World::with_kbs(tag, config);
    w.secret(SECRET, VALUE);
    w.seed_sealed_dir();
    w
}

fn mount(provider: Arc<dyn tsm_fuse::Provider>) -> TsmMount {
    TsmMount::mount_temp(Some(provider))
        .unwrap_or_else(|e| panic!("configfs-tsm emulation needs root and /dev/fuse: {e}"))
}

/// `sealgate unseal` with TEE auto-detection through the mount, no sample TEE.
fn unseal(w: &World, tsm: &TsmMount) -> Sealgate {
    w.bare()
        .args([
            "unseal",
            "--kbs",
            &w.url(),
            "--configfs-tsm",
            s(&tsm.report_dir()),
        ])
        .args([
            "--sealed-dir",
            s(&w.sealed),
            "--no-mount",
            "--insecure-allow-non-tmpfs",
        ])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .args(["--log-level", "debug", "--deadline", "5"])
        .resource(&format!("kbs:///{SECRET}"), "disk/key")
}

fn init_data_file(w: &World) -> String {
    s(&w.tmp.write("initdata.toml", INIT_DATA)).to_string()
}

fn digest() -> Vec<u8> {
    InitData::parse(INIT_DATA.as_bytes()).unwrap().digest()
}

fn snp(configure: impl FnOnce(&mut SnpConfig)) -> Arc<SnpProvider> {
    let mut config = SnpConfig::from_seed(DEFAULT_SEED, Generation::Genoa);
    configure(&mut config);
    Arc::new(SnpProvider::new(SnpSim::new(config)))
}

fn tdx(configure: impl FnOnce(&mut TdxConfig)) -> Arc<TdxProvider> {
    let mut config = TdxConfig::from_seed(DEFAULT_SEED);
    configure(&mut config);
    Arc::new(TdxProvider::new(TdxSim::new(config)))
}

#[track_caller]
fn assert_unsealed(w: &World, ran: &Ran) {
    ran.ok();
    assert_eq!(w.read("disk/key"), VALUE.as_bytes(), "{}", ran.dump());
    assert_eq!(requests(&w.kbs.stats()), (1, 1, 1), "{}", ran.dump());
}

#[test]
fn snp_through_configfs_with_init_data() {
    let w = world("snp-ok", kbs_config());
    let provider = snp(|c| c.host_data.copy_from_slice(&digest()[..32]));
    let tsm = mount(provider.clone());
    let ran = unseal(&w, &tsm)
        .args(["--init-data", &init_data_file(&w)])
        .run();
    assert_unsealed(&w, &ran);
    ran.says(&[
        "detected Snp",
        "init-data matches SNP HOST_DATA",
        "attested to the KBS as 'snp'",
    ]);
    // One report for the HOST_DATA check, one for the evidence (plus detection's probe,
    // which reads only `provider`).
    assert_eq!(provider.calls(), 2, "{}", ran.dump());
    assert_eq!(
        tsm.stats().live_entries,
        0,
        "every configfs entry removed{}",
        ran.dump()
    );
}

#[test]
fn tdx_through_configfs_with_init_data() {
    let w = world("tdx-ok", kbs_config());
    let provider = tdx(|c| c.mr_config_id.copy_from_slice(&digest()));
    let tsm = mount(provider.clone());
    let ran = unseal(&w, &tsm)
        .args(["--init-data", &init_data_file(&w)])
        .run();
    assert_unsealed(&w, &ran);
    ran.says(&[
        "detected Tdx",
        "init-data matches TDX MRCONFIGID",
        "attested to the KBS as 'tdx'",
    ]);
    assert_eq!(tsm.stats().live_entries, 0, "{}", ran.dump());
}

#[test]
fn init_data_mismatch_stops_before_the_kbs_hears_anything() {
    for tee in ["snp", "tdx"] {
        let w = world(&format!("{tee}-initdata"), kbs_config());
        let provider: Arc<dyn tsm_fuse::Provider> = match tee {
            "snp" => snp(|c| c.host_data = [0x42; 32]),
            _ => tdx(|c| c.mr_config_id = [0x42; 48]),
        };
        let tsm = mount(provider);
        let ran = unseal(&w, &tsm)
            .args(["--init-data", &init_data_file(&w)])
            .run();
        ran.fails(
            1,
            &["init-data does not match this TEE", "refusing to attest"],
        );
        assert_eq!(
            w.kbs.stats().connections,
            0,
            "{tee}: the KBS saw a connection{}",
            ran.dump()
        );
    }
}

#[test]
fn evidence_the_kbs_rejects_fails_closed() {
    // Each row: a simulator fault the agent cannot see, which Trustee's checks catch.
    let cases: Vec<(&str, Arc<dyn tsm_fuse::Provider>)> = vec![
        (
            "snp: tampered report (signature)",
            snp(|c| c.faults.corrupt_signature = true),
        ),
        ("snp: report version 2", snp(|c| c.version = 2)),
        ("snp: VMPL 1", snp(|c| c.faults.force_vmpl = Some(1))),
        (
            "snp: no certificates (no KDS access)",
            snp(|c| c.faults.cert_table = CertTableFault::Missing),
        ),
        (
            "tdx: tampered quote (signature)",
            tdx(|c| c.faults.corrupt_quote_signature = true),
        ),
        (
            "tdx: QE report not signed by the PCK",
            tdx(|c| c.faults.corrupt_qe_report_signature = true),
        ),
        (
            "tdx: attestation key not bound by the QE",
            tdx(|c| c.faults.unbound_attestation_key = true),
        ),
    ];
    for (name, provider) in cases {
        let w = world("tee-rejected", kbs_config());
        let tsm = mount(provider);
        let ran = unseal(&w, &tsm).run();
        ran.fails(
            1,
            &[
                "the KBS refused the attest step with HTTP 401",
                "AttestationError",
                "nothing was written",
            ],
        );
        let (auth, attest, resource) = requests(&w.kbs.stats());
        assert_eq!(
            (auth, attest, resource),
            (3, 30, 0),
            "{name}: three handshakes of ten /attest sends each, no resource{}",
            ran.dump()
        );
    }
}

#[test]
fn measurement_policy_is_enforced_by_the_kbs() {
    let mut verifiers = Verifiers::sim(DEFAULT_SEED);
    let policy = SnpPolicy {
        measurements: vec![[0xaa; 48]],
        ..SnpPolicy::default()
    };
    verifiers.insert(
        test_kbs::Tee::Snp,
        SnpVerifier::from_sim_seed(DEFAULT_SEED, policy),
    );
    let w = world(
        "snp-measurement",
        Config {
            verifiers,
            ..Config::default()
        },
    );
    let tsm = mount(snp(|_| {}));
    unseal(&w, &tsm)
        .run()
        .fails(1, &["the KBS refused the attest step", "AttestationError"]);
}

#[test]
fn firmware_errors_and_bad_blobs_fail_closed_before_attest() {
    let cases: Vec<(&str, Arc<dyn tsm_fuse::Provider>, &str)> = vec![
        (
            "snp EIO",
            {
                let p = snp(|_| {});
                p.fail_with(Some(tsm_fuse::Errno::IO));
                p
            },
            "cannot get evidence",
        ),
        (
            "tdx EIO",
            {
                let p = tdx(|_| {});
                p.fail_with(Some(tsm_fuse::Errno::IO));
                p
            },
            "cannot get evidence",
        ),
        (
            "snp malformed certificate table",
            snp(|c| c.faults.cert_table = CertTableFault::Malformed),
            "cannot get evidence",
        ),
        (
            "snp oversized certificate table",
            snp(|c| c.faults.cert_table = CertTableFault::Oversized),
            "cannot get evidence",
        ),
    ];
    for (name, provider, needle) in cases {
        let w = world("tee-fw-error", kbs_config());
        let tsm = mount(provider);
        let ran = unseal(&w, &tsm).run();
        ran.fails(1, &[needle]);
        let (_, attest, resource) = requests(&w.kbs.stats());
        assert_eq!(
            (attest, resource),
            (0, 0),
            "{name}: no evidence may be sent{}",
            ran.dump()
        );
    }
}

#[test]
fn explicit_tee_without_its_interface_fails_before_the_network() {
    let w = world("tee-absent", kbs_config());
    let missing = w.tmp.join("no-configfs");
    for tee in ["snp", "tdx"] {
        let ran = w
            .bare()
            .args([
                "unseal",
                "--kbs",
                &w.url(),
                "--tee",
                tee,
                "--configfs-tsm",
                s(&missing),
            ])
            .args([
                "--sealed-dir",
                s(&w.sealed),
                "--no-mount",
                "--insecure-allow-non-tmpfs",
            ])
            .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
            .resource(&format!("kbs:///{SECRET}"), "disk/key")
            .run();
        ran.fails(1, &["requested, but", "is not present"]);
    }
    assert_eq!(w.kbs.stats().connections, 0);
}

/// A sysfs tree with the simulated firmware's CCEL and an empty event-log directory:
/// `(sysfs, eventlog dir)`.
fn eventlog_dirs(w: &World, ccel: &[u8]) -> (std::path::PathBuf, std::path::PathBuf) {
    let sysfs = w.tmp.mkdir("sys");
    w.tmp.write("sys/firmware/acpi/tables/data/CCEL", ccel);
    (sysfs, w.tmp.mkdir("run/attestation-agent"))
}

#[test]
fn tdx_event_log_is_sent_and_replayed_by_the_kbs() {
    let ccel = TdxConfig::from_seed(DEFAULT_SEED).ccel;

    // The firmware's CCEL alone: RTMR0..2 replay.
    let w = world("tdx-ccel", kbs_config());
    let (sysfs, run) = eventlog_dirs(&w, &ccel);
    let provider = tdx(|_| {});
    let tsm = mount(provider.clone());
    let with_log = |w: &World, tsm: &TsmMount| {
        unseal(w, tsm).args(["--sysfs", s(&sysfs), "--eventlog-dir", s(&run)])
    };
    let ran = with_log(&w, &tsm).run();
    assert_unsealed(&w, &ran);
    ran.says(&["TDX event log: "]);

    // An AAEL entry after an extend of RTMR3 (as the hub's ExtendRuntimeMeasurement
    // writes it): the KBS replays RTMR3 too.
    let event = common::guest::pull_image_event();
    provider.with_sim(|sim| sim.extend_rtmr(3, &event.digest()));
    std::fs::write(run.join("eventlog"), event.record()).unwrap();
    let w2 = world("tdx-aael", kbs_config());
    let ran = with_log(&w2, &tsm).run();
    assert_unsealed(&w2, &ran);

    // A tampered AAEL record (its digest): RTMR3 does not replay, the KBS refuses.
    let mut bad = event.record();
    bad[20] ^= 1;
    std::fs::write(run.join("eventlog"), &bad).unwrap();
    let w3 = world("tdx-aael-bad", kbs_config());
    with_log(&w3, &tsm).run().fails(
        1,
        &[
            "the KBS refused the attest step with HTTP 401",
            "nothing was written",
        ],
    );

    // A log the firmware never wrote (the record without the extend): refused too.
    let w4 = world("tdx-aael-unextended", kbs_config());
    let fresh = mount(tdx(|_| {}));
    std::fs::write(run.join("eventlog"), event.record()).unwrap();
    let ran = unseal(&w4, &fresh)
        .args(["--sysfs", s(&sysfs), "--eventlog-dir", s(&run)])
        .run();
    ran.fails(1, &["HTTP 401", "nothing was written"]);

    // A malformed CCEL (cut inside its second event: no end marker): the evidence fails
    // here, before /attest, as upstream's GetEvidence does.
    let w5 = world("tdx-ccel-bad", kbs_config());
    std::fs::write(sysfs.join("firmware/acpi/tables/data/CCEL"), &ccel[..100]).unwrap();
    let ran = with_log(&w5, &tsm).run();
    ran.fails(1, &["TDX event log", "CCEL"]);
    assert_eq!(w5.kbs.stats().attest.requests, 0, "{}", ran.dump());
}
