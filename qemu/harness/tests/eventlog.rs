//! The TDX runtime event log in a real guest under QEMU: `ExtendRuntimeMeasurement` through
//! the kernel's sysfs RTMR file (the v6.16 ABI, provided here by `tsm_sim`'s `tdx_guest`
//! device), recorded in the AAEL, sent as `cc_eventlog` and replayed by the test KBS.
//!
//! The simulated firmware's CCEL (`firmware_glue::sim::tdx::sample_ccel` of the seed the
//! daemon signs with) is published as TDVF publishes one (`qemu/run --ccel`: an ACPI CCEL
//! table and the log area in reserved RAM), so the guest kernel shows it at
//! `/sys/firmware/acpi/tables/data/CCEL`; the daemon's RTMR0..2 are that log's replay, so
//! the evidence is consistent from the first attestation on.
//!
//! The init stage attests with the CCEL alone and fetches one resource, then execs the
//! test image's `rtmr-check` (guest-sim), which starts `sealgate serve` (init-data's
//! `aa.toml` enables the event log; init-data is bound to MRCONFIGID), extends, checks the
//! register and the record, gets a token (the KBS replays CCEL + AAEL against the quote),
//! then extends RTMR3 behind sealgate's back, restarts the hub and shows the KBS refusing.

use sealgate_qemu::{Artifacts, Vm, VmConfig, image, work_dir};
use sha2::{Digest, Sha384};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use test_kbs::{Config, Server, Verifiers};

const SEED: &[u8] = b"sealgate test roots";
const KEY1: &[u8] = b"event-log boot: key1 for the init stage";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The single line of `console` that starts with `prefix`.
fn line<'a>(console: &'a str, prefix: &str) -> Option<&'a str> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| l.starts_with(prefix))
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn runtime_measurement_is_logged_extended_and_replayed_by_the_kbs() {
    let a = Artifacts::get();
    let dir = work_dir("eventlog-tdx");
    let port = free_port();

    // The firmware's log area, published to the guest as the CCEL.
    let ccel = firmware_glue::sim::tdx::sample_ccel(SEED);
    let ccel_rtmrs = firmware_glue::sim::tdx::ccel_rtmrs(&ccel);
    let ccel_path = dir.join("ccel.bin");
    std::fs::write(&ccel_path, &ccel).unwrap();

    // Init-data: the KBS, and aa.toml enabling the event log (RTMR3, PCR 17).
    let init_data = format!(
        "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\
         \"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://10.0.2.2:{port}\"\n\
         [eventlog_config]\nenable_eventlog = true\ninit_pcr = 17\n'''\n\
         \"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\nurl = \"http://10.0.2.2:{port}\"\n'''\n"
    );
    let disk = a.initdata_image(&dir, &init_data);
    let mrconfigid = Sha384::digest(init_data.as_bytes());

    // The image's (measured) config: init-data from the disk, one resource for the init
    // stage, then rtmr-check; the TEE is detected.
    let config = format!(
        "kbs_url = \"http://10.0.2.2:{port}\"\ndeadline_secs = 60\ninit_data = \"scan\"\n\
         [[resource]]\nuri = \"kbs:///default/app/key1\"\n\
         [init]\nmode = \"exec\"\nnext_init = \"/sbin/rtmr-check\"\n"
    );
    let parts = [
        image::base(a),
        image::config(&config),
        image::files(&[(
            "/sbin/rtmr-check",
            0o755,
            &std::fs::read(&a.guest_sim).unwrap(),
        )]),
        image::sim_overlay(a, ""),
    ];
    let initrd = dir.join("initrd.cpio");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    image::write(&initrd, &refs);

    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::start(Config {
        listen,
        verifiers: Verifiers::sim(SEED),
        ..Config::default()
    })
    .expect("test KBS");
    server.add_resource("default/app/key1", KEY1).unwrap();
    let ccel_arg = std::ffi::OsString::from("--ccel");
    let mut vm = Vm::start_with(
        &VmConfig {
            kernel: a.kernel.image.clone(),
            initrd,
            initdata: Some(disk),
            disks: Vec::new(),
            append: format!(
                "tsm_sim.provider=tdx_guest sim.mrconfigid={} sealgate.log=info",
                hex(&mrconfigid)
            ),
            log: dir.join("console.log"),
            timeout: Duration::from_secs(150),
        },
        &[&ccel_arg, ccel_path.as_os_str()],
    )
    .expect("qemu/run");
    let _ = vm.wait_for("RTMR-CHECK done", Duration::from_secs(150));
    let boot = vm.wait();
    let stats = server.stats();
    let arrivals = server.arrivals();
    server.shutdown();
    let ctx = format!(
        "status {:?} after {:?}; KBS {stats:?}\n--- console ---\n{}",
        boot.status, boot.elapsed, boot.console
    );
    let c = &boot.console;
    assert!(c.contains("RTMR-CHECK done ok"), "{ctx}");
    assert!(!c.contains("RTMR-CHECK FAILED"), "{ctx}");

    // The init stage: init-data bound through the sysfs MRCONFIGID, the key fetched after
    // an attestation whose log was the CCEL alone.
    assert!(c.contains("init-data matches TDX MRCONFIGID"), "{ctx}");
    assert!(stats.resource.count(200) >= 1, "{ctx}");

    // The extend: the register moved by SHA-384(old || digest) of exactly the recorded
    // event, starting from the CCEL's RTMR3 (zero: the firmware measures nothing there).
    let extend = line(c, "RTMR-CHECK extend ").unwrap_or_else(|| panic!("no extend line: {ctx}"));
    assert!(extend.contains("result=OK record=ok mr_index=4"), "{ctx}");
    assert!(
        extend.contains(&format!("rtmr3_old={}", hex(&ccel_rtmrs[3]))),
        "{ctx}"
    );
    let field = |l: &str, key: &str| {
        l.split(' ')
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {l:?}"))
            .to_string()
    };
    let digest = field(extend, "digest=");
    let new = field(extend, "rtmr3_new=");
    let mut h = Sha384::new();
    h.update(ccel_rtmrs[3]);
    h.update(hex_decode(&digest));
    assert_eq!(new, hex(&h.finalize()), "{ctx}");
    assert!(
        c.contains("guest-sim: RTMR3 extended"),
        "the daemon (the simulated TDX module) did the extend: {ctx}"
    );

    // GetEvidence: CCEL (3 events) + AAEL (1), replayed to the quote in the guest.
    let ev = line(c, "RTMR-CHECK evidence ").unwrap_or_else(|| panic!("no evidence: {ctx}"));
    assert!(
        ev.contains("ccel_events=3 aael_events=1 replay=matches-quote"),
        "{ctx}"
    );
    assert_eq!(field(ev, "rtmr3="), new, "{ctx}");

    // The KBS accepted the log; after the tampering it refused, naming the replay.
    assert!(line(c, "RTMR-CHECK token accepted").is_some(), "{ctx}");
    let refused = line(c, "RTMR-CHECK tampered token refused").unwrap_or_else(|| panic!("{ctx}"));
    assert!(
        refused.contains("status=13"),
        "INTERNAL, as upstream AA: {ctx}"
    );
    assert!(
        c.contains("AA-KBC get token failed: the KBS refused the attest step with HTTP 401"),
        "{ctx}"
    );
    // Attestations: the init stage, the hub after the extend (accepted); the hub after
    // the tampering, every try refused by the verifier's replay, naming RTMR3 and the
    // value the quote carries.
    assert_eq!(stats.attest.count(200), 2, "{ctx}");
    let accepted: Vec<&str> = arrivals
        .iter()
        .filter(|a| a.path == "/kbs/v0/attest" && a.status == Some(200))
        .map(|a| a.note.as_deref().unwrap_or_default())
        .collect();
    // The init stage's log: the SpecID header and the CCEL's 3 events; the hub's after the
    // extend: those and the AAEL record, all replayed against the quote.
    assert!(
        accepted[0].contains("4 events, replayed to the quote's RTMR0..3")
            && accepted[1].contains("5 events, replayed to the quote's RTMR0..3"),
        "{accepted:?}\n{ctx}"
    );
    let refused: Vec<_> = arrivals
        .iter()
        .filter(|a| a.path == "/kbs/v0/attest" && a.status == Some(401))
        .collect();
    assert!(!refused.is_empty(), "{ctx}");
    let tampered = field(
        line(c, "RTMR-CHECK tampered rtmr3=").unwrap_or_else(|| panic!("{ctx}")),
        "rtmr3=",
    );
    for a in &refused {
        assert_eq!(
            a.note.as_deref().unwrap_or_default(),
            format!(
                "verify TEE evidence failed (tdx): TDX Verifier: RTMR3 of the quote is \
                 {tampered}, the event log replays to {new}"
            ),
            "{ctx}"
        );
    }
    assert!(boot.status.success(), "no poweroff: {ctx}");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
