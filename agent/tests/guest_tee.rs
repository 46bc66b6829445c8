//! The AA side of the server on (simulated) TEEs, through the real guest binary and the
//! real `ttrpc` client:
//!
//! - started as `attestation-agent` with kata's `--initdata-toml`, on a TDX whose
//!   MRCONFIGID (simulated firmware behind the FUSE configfs-tsm, as tests/tee.rs) does not
//!   hold the init-data's digest, the process exits non-zero before its socket exists, with
//!   a message that says why; with the matching init-data it serves (and attests as `tdx`);
//! - `ExtendRuntimeMeasurement` over ttrpc: `NOT_ENABLED` (status OK) without the event log,
//!   `NOT_SUPPORTED` (status OK) with it enabled by init-data's `aa.toml` on the sample TEE
//!   and on SNP, as upstream means those answers;
//! - on TDX with the kernel's sysfs measurement files (emulated by the same FUSE mount:
//!   reads give the simulator's registers, a 48-byte write extends its RTMR, so later quotes
//!   carry it), `OK`: the AAEL record is appended in upstream's binary format, RTMR3 got
//!   `SHA384(old || digest)`, and the next evidence's `cc_eventlog` (the firmware's CCEL, the
//!   record, the end marker) replays to the quote's RTMR3 in the test KBS's TDX verifier: the
//!   attestation that follows succeeds.
//!
//! Needs root and /dev/fuse (the configfs-tsm emulation).

mod common;

use common::guest::*;
use common::*;
use firmware_glue::sim::DEFAULT_SEED;
use firmware_glue::sim::snp::{SnpConfig, SnpSim};
use firmware_glue::sim::tdx::{TdxConfig, TdxSim};
use firmware_glue::snp::Generation;
use prost::Message;
use sealgate_core::initdata::InitData;
use sha2::Digest;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_kbs::Verifiers;
use tsm_fuse::TsmMount;
use tsm_fuse::sim::{SnpProvider, TdxProvider};

const SECRET: &str = "guest-tee-secret-c41a";

/// Init-data whose `aa.toml` names the KBS and enables the event log.
fn init_data(kbs_url: &str) -> String {
    format!(
        "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"{kbs_url}\"\n[eventlog_config]\nenable_eventlog = true\n'''\n"
    )
}

fn mount(provider: Arc<dyn tsm_fuse::Provider>) -> TsmMount {
    TsmMount::mount_temp(Some(provider))
        .unwrap_or_else(|e| panic!("configfs-tsm emulation needs root and /dev/fuse: {e}"))
}

fn tdx(mr_config_id: [u8; 48]) -> Arc<TdxProvider> {
    let mut config = TdxConfig::from_seed(DEFAULT_SEED);
    config.mr_config_id = mr_config_id;
    Arc::new(TdxProvider::new(TdxSim::new(config)))
}

fn world(tag: &str) -> World {
    let w = World::with_kbs(
        tag,
        Config {
            verifiers: Verifiers::sim(DEFAULT_SEED),
            ..Config::default()
        },
    );
    w.secret("default/app/secret", SECRET);
    w
}

/// `attestation-agent --attestation_sock unix://SOCK --initdata-toml FILE` (a symlink of
/// that name to the guest binary), its sealgate settings (the configfs-tsm mount) from
/// `SEALGATE_CONFIG`; waits for it to exit or its socket to appear (60 s at most):
/// (exit code if it exited, its output, the socket path).
fn attestation_agent(w: &World, tsm: &TsmMount, initdata: &Path) -> (Option<i32>, String, bool) {
    let bin = w.tmp.mkdir("bin");
    let aa = bin.join("attestation-agent");
    std::os::unix::fs::symlink(std::fs::canonicalize(sealgate_bin()).unwrap(), &aa).unwrap();
    let config = w.tmp.write(
        "sealgate.toml",
        format!("configfs_tsm = \"{}\"\n", s(&tsm.report_dir())),
    );
    let sock = w.tmp.join("run/attestation-agent/attestation-agent.sock");
    let log = w.tmp.join("aa.log");
    let args = [
        "--attestation_sock".to_string(),
        format!("unix://{}", sock.display()),
        "--initdata-toml".to_string(),
        s(initdata).to_string(),
    ];
    let mut child = spawn_upstream(&aa, &args, &config, &log);
    let end = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if sock.exists() {
            // Serving: ask it for a token (an attestation as tdx), then stop it.
            let client = ttrpc::Client::connect(&format!("unix://{}", sock.display())).unwrap();
            let token = call(
                &client,
                AA,
                "GetToken",
                &pb::GetTokenRequest {
                    token_type: "kbs".into(),
                },
            );
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap();
            token.unwrap_or_else(|e| panic!("GetToken: {e:?}\n{text}"));
            return (None, text, true);
        }
        assert!(Instant::now() < end, "neither exited nor served");
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&log).unwrap(), sock.exists())
}

#[test]
fn the_attestation_agent_exits_before_its_socket_on_an_init_data_mismatch() {
    let w = world("tee-aa-mismatch");
    let text = init_data(&w.url());
    let initdata = w.tmp.write("initdata.toml", &text);

    // MRCONFIGID holds something else: exit 1, no socket, the reason named.
    let tsm = mount(tdx([0x42; 48]));
    let (code, log, socket) = attestation_agent(&w, &tsm, &initdata);
    assert_eq!(code, Some(1), "{log}");
    assert!(!socket, "the socket was created:\n{log}");
    assert!(
        log.contains("init-data does not match this TEE") && log.contains("TDX MRCONFIGID"),
        "{log}"
    );
    assert_eq!(w.kbs.stats().connections, 0, "{log}");

    // The matching init-data: it serves, and the KBS accepts its TDX evidence.
    let w = world("tee-aa-match");
    let text = init_data(&w.url());
    let initdata = w.tmp.write("initdata.toml", &text);
    let tsm = mount(tdx(digest_of(&text)));
    let (code, log, socket) = attestation_agent(&w, &tsm, &initdata);
    assert_eq!(code, None, "{log}");
    assert!(socket);
    assert!(log.contains("init-data matches TDX MRCONFIGID"), "{log}");
    assert_eq!(w.kbs.stats().auth.requests, 1, "{log}");
}

fn digest_of(text: &str) -> [u8; 48] {
    InitData::parse(text.as_bytes()).unwrap().tdx_mrconfigid()
}

fn extend(serve: &Serve) -> Result<i32, (ttrpc::Code, String)> {
    call(
        &serve.aa(),
        AA,
        "ExtendRuntimeMeasurement",
        &pb::ExtendRuntimeMeasurementRequest {
            domain: PULL_IMAGE_EVENT.0.into(),
            operation: PULL_IMAGE_EVENT.1.into(),
            content: PULL_IMAGE_EVENT.2.into(),
            register_index: None,
        },
    )
    .map(|p| {
        pb::ExtendRuntimeMeasurementResponse::decode(&p[..])
            .unwrap()
            .result
    })
}

/// `sealgate serve` with init-data `text` (its `aa.toml` enables the event log), an
/// event-log directory of its own (returned) and `args`.
fn serve_with_event_log(w: &World, text: &str, args: &[&str]) -> (Serve, std::path::PathBuf) {
    let initdata = w.tmp.write("initdata.toml", text);
    let run = w.tmp.mkdir("eventlog");
    let mut all = vec!["--initdata-toml", s(&initdata), "--eventlog-dir", s(&run)];
    all.extend_from_slice(args);
    (Serve::start_with(w, &all), run)
}

#[test]
fn extend_runtime_measurement_not_enabled_and_not_supported() {
    // No event log: NOT_ENABLED (2), status OK.
    let w = world("tee-extend-off");
    let serve = Serve::start(&w, &w.url(), 10);
    assert_eq!(extend(&serve), Ok(2), "{}", serve.log_text());

    // Enabled by init-data on the sample TEE: NOT_SUPPORTED (1), status OK; nothing written.
    let w = world("tee-extend-sample");
    let (serve, run) = serve_with_event_log(&w, &init_data(&w.url()), &["--tee", "sample"]);
    assert_eq!(extend(&serve), Ok(1), "{}", serve.log_text());
    assert!(!run.join("eventlog").exists());

    // On SNP (simulated firmware, HOST_DATA bound to the init-data): NOT_SUPPORTED too.
    let w = world("tee-extend-snp");
    let text = init_data(&w.url());
    let mut config = SnpConfig::from_seed(DEFAULT_SEED, Generation::Genoa);
    config
        .host_data
        .copy_from_slice(&InitData::parse(text.as_bytes()).unwrap().digest()[..32]);
    let tsm = mount(Arc::new(SnpProvider::new(SnpSim::new(config))));
    let (serve, run) = serve_with_event_log(&w, &text, &["--configfs-tsm", s(&tsm.report_dir())]);
    assert_eq!(extend(&serve), Ok(1), "{}", serve.log_text());
    assert!(!run.join("eventlog").exists());
    // And the SNP hub attests.
    assert_eq!(
        get_resource(&serve.cdh(), "kbs:///default/app/secret").unwrap(),
        SECRET.as_bytes()
    );
}

#[test]
fn extend_runtime_measurement_on_tdx_is_logged_and_replayed_by_the_kbs() {
    let w = world("tee-extend-tdx");
    let text = init_data(&w.url());
    let mut config = TdxConfig::from_seed(DEFAULT_SEED);
    config.mr_config_id = digest_of(&text);
    let ccel = config.ccel.clone();
    let provider = Arc::new(TdxProvider::new(TdxSim::new(config)).with_measurements());
    let tsm = mount(provider.clone());
    // The guest's sysfs: the firmware's CCEL, and the measurement files (the mount's).
    let sysfs = w.tmp.mkdir("sys");
    w.tmp.write("sys/firmware/acpi/tables/data/CCEL", &ccel);
    let misc = w.tmp.mkdir("sys/devices/virtual/misc/tdx_guest");
    std::os::unix::fs::symlink(tsm.path().join("measurements"), misc.join("measurements")).unwrap();
    let rtmr3 = misc.join("measurements/rtmr3:sha384");
    let before = std::fs::read(&rtmr3).unwrap();
    assert_eq!(before.len(), 48);

    let (serve, run) = serve_with_event_log(
        &w,
        &text,
        &["--configfs-tsm", s(&tsm.report_dir()), "--sysfs", s(&sysfs)],
    );
    assert_eq!(extend(&serve), Ok(0), "{}", serve.log_text());

    // The record, in upstream's format (EV_EVENT_TAG "AAEL", MR index 4 for PCR 17).
    let event = pull_image_event();
    let record = std::fs::read(run.join("eventlog")).unwrap();
    assert_eq!(record, event.record());
    assert!(!run.join(".wal_event_entry").exists());
    // RTMR3 got the 48-byte extend.
    let mut h = sha2::Sha384::new();
    h.update(&before);
    h.update(event.digest());
    assert_eq!(std::fs::read(&rtmr3).unwrap(), h.finalize().to_vec());

    // GetEvidence's cc_eventlog: the CCEL (cut at its end), the record, the end marker.
    let p = call(
        &serve.aa(),
        AA,
        "GetEvidence",
        &pb::GetEvidenceRequest {
            runtime_data: b"guest-tee-nonce".to_vec(),
        },
    )
    .unwrap_or_else(|e| panic!("GetEvidence: {e:?}\n{}", serve.log_text()));
    let evidence: serde_json::Value =
        serde_json::from_slice(&pb::GetEvidenceResponse::decode(&p[..]).unwrap().evidence).unwrap();
    let log = sealgate_core::b64::std_decode(evidence["cc_eventlog"].as_str().unwrap()).unwrap();
    let mut tail = record.clone();
    tail.extend([0xff; 8]);
    assert!(
        log.ends_with(&tail),
        "cc_eventlog does not end with the record"
    );

    // The KBS replays it to the quote's RTMR3: the attestation succeeds.
    assert_eq!(
        get_resource(&serve.cdh(), "kbs:///default/app/secret")
            .unwrap_or_else(|e| panic!("{e:?}\n{}", serve.log_text())),
        SECRET.as_bytes()
    );
    assert_eq!(w.kbs.stats().auth.requests, 1);
    // A second extend is appended after the first.
    assert_eq!(extend(&serve), Ok(0));
    let mut two = event.record();
    two.extend(event.record());
    assert_eq!(std::fs::read(run.join("eventlog")).unwrap(), two);
}
