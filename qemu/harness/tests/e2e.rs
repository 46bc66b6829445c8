//! End to end: sealgate as PID 1 of a real 6.12 guest under QEMU, attesting to the test KBS
//! on the host (reached at 10.0.2.2 through slirp) and unsealing secrets into its tmpfs.
//!
//! - the sample TEE (the plain image), over HTTPS with the KBS's CA certificate from
//!   init-data (`sealctl initdata new --kbs-url --kbs-cert`);
//! - simulated SEV-SNP and TDX through the guest kernel's real configfs-tsm code: the
//!   `tsm_sim` module registers as `sev_guest`/`tdx_guest` and `guest-sim` signs with the
//!   seed's test keys, which the KBS trusts (`Verifiers::sim`); the SNP case also checks
//!   the init-data disk against HOST_DATA (and fetches over HTTPS, the KBS's self-signed
//!   `CA:true` certificate pinned by init-data), TDX against MRCONFIGID; TDX boots get the
//!   simulated firmware's CCEL (`qemu/run --ccel`), which the KBS replays against the quote;
//! - faults: the KBS comes up only after the guest started asking; the KBS refuses by
//!   policy (fail closed, no next stage); init-data that does not match the TEE (refused
//!   before any KBS traffic).
//!
//! Each guest runs `sealgate.mode=report`: it prints `SEALGATE-REPORT` lines (path, size,
//! mode, owner and SHA-256 of every secret, the sealed dir's filesystem, timings) and
//! powers off; the host compares them with the secrets it served.

use sealgate_qemu::report::{Report, sha256_hex};
use sealgate_qemu::{Artifacts, Boot, Vm, VmConfig, image, work_dir};
use sha2::{Digest, Sha384};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use test_kbs::{Config, Policy, Server, Stats, Verifiers};

const SEED: &[u8] = b"sealgate test roots";
const KEY1: &[u8] = b"first secret\x00\x01\x02 with binary bytes";
const KEY2: &[u8] = b"second secret: 0123456789abcdef";
const SEALED_VALUE: &[u8] = b"db-password from the vault";
/// Kata's sealed-secret vector (vault, provider kbs): kid = KBS resource
/// `default/signing-key/sealed-secret` (the public JWK below), name =
/// `kbs:///default/sealed-secret/test`.
const KATA_VECTOR: &str = "sealed.eyJiNjQiOnRydWUsImFsZyI6IkVTMjU2Iiwia2lkIjoia2JzOi8vL2RlZmF1bHQvc2lnbmluZy1rZXkvc2VhbGVkLXNlY3JldCJ9.eyJ2ZXJzaW9uIjoiMC4xLjAiLCJ0eXBlIjoidmF1bHQiLCJuYW1lIjoia2JzOi8vL2RlZmF1bHQvc2VhbGVkLXNlY3JldC90ZXN0IiwicHJvdmlkZXIiOiJrYnMiLCJwcm92aWRlcl9zZXR0aW5ncyI6e30sImFubm90YXRpb25zIjp7fX0.ZI2fTv5ramHqHQa9DKBFD5hlJ_Mjf6cEIcpsNGshpyhEiKklML0abfH600TD7LAFHf53oDIJmEcVsDtJ20UafQ";
const KATA_JWK: &str = r#"{"alg":"ES256","crv":"P-256","kid":"sealed-secret-test-key","kty":"EC","use":"sig","x":"4jH376AuwTUCIx65AJ_56D7SZzWf7sGcEA7_Csq21UM","y":"rjdceysnSa5ZfzWOPGCURMUuHndxBAGUu4ISTIVN0yA"}"#;
/// Kata init-data naming the KBS (the guest uses it: init-data outranks the command line).
fn init_data(port: u16) -> String {
    format!(
        "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"cdh.toml\" = '''\n\
         [kbc]\nname = \"cc_kbc\"\nurl = \"http://10.0.2.2:{port}\"\n'''\n"
    )
}

/// How the KBS serves HTTPS in a case: the server certificate and what init-data names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Https {
    /// A test CA issues the KBS's certificate for 10.0.2.2; init-data carries the CA.
    Ca,
    /// The KBS's certificate is self-signed with CA:true (`openssl req -x509`'s shape);
    /// init-data carries it (a pin).
    SelfSigned,
}

/// The server certificate and the PEM init-data carries, for `https`.
fn https_certs(https: Https) -> (test_kbs::certs::Issued, String) {
    match https {
        Https::Ca => {
            let ca = test_kbs::certs::TestCa::new("sealgate QEMU test CA");
            (ca.issue(&["10.0.2.2"]), ca.cert_pem)
        }
        Https::SelfSigned => {
            let own = test_kbs::certs::self_signed(&["10.0.2.2"], true);
            let pem = own.cert_pem.clone();
            (own, pem)
        }
    }
}

/// Init-data naming `https://10.0.2.2:PORT` with `cert`, written by the operator's tool
/// (`sealctl initdata new --kbs-url URL --kbs-cert PEM`): aa.toml and cdh.toml.
fn https_init_data(
    sealctl: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    cert: &str,
) -> String {
    let pem = dir.join("kbs-cert.pem");
    let out = dir.join("initdata-https.toml");
    std::fs::write(&pem, cert).unwrap();
    let o = std::process::Command::new(sealctl)
        .args([
            "initdata",
            "new",
            "--kbs-url",
            &format!("https://10.0.2.2:{port}"),
            "--kbs-cert",
        ])
        .arg(&pem)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sealctl initdata new: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(&out).unwrap()
}
/// What the stand-in next stage prints (guest-sim as `/sbin/next-stage`).
const NEXT_STAGE_MARKER: &str = "GUEST-SIM-NEXT-STAGE-RAN";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tee {
    Sample,
    Snp,
    Tdx,
}

/// One scenario.
struct Case {
    name: &'static str,
    tee: Tee,
    /// Attach the init-data disk (and bind it in the simulated TEE).
    init_data: bool,
    /// Bind a different digest in the TEE than the disk's.
    wrong_binding: bool,
    /// Start the KBS this long after QEMU.
    kbs_late: Option<Duration>,
    /// Deny every resource.
    deny: bool,
    /// `sealgate.mode=exec` into the stand-in next stage instead of the report.
    exec_next: bool,
    /// SNP: the stand-in module also provides `/dev/sev-guest` (sealgate then prefers it).
    sev_ioctl: bool,
    /// Serve HTTPS, the certificate in init-data (which this implies).
    https: Option<Https>,
}

impl Case {
    fn new(name: &'static str, tee: Tee) -> Case {
        Case {
            name,
            tee,
            init_data: false,
            wrong_binding: false,
            kbs_late: None,
            deny: false,
            exec_next: false,
            sev_ioctl: false,
            https: None,
        }
    }
}

struct Outcome {
    boot: Boot,
    report: Report,
    stats: Stats,
    arrivals: Vec<test_kbs::Arrival>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_kbs(port: u16, deny: bool, tls: Option<&test_kbs::certs::Issued>) -> Server {
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::start(Config {
        listen,
        tls: tls.map(|c| {
            test_kbs::TlsSettings::from_pem(c.cert_pem.as_bytes(), c.key_pem.as_bytes(), false)
                .unwrap()
        }),
        verifiers: Verifiers::sim(SEED),
        policy: if deny {
            Policy::deny_all()
        } else {
            Policy::default()
        },
        ..Config::default()
    })
    .expect("test KBS");
    server.add_resource("default/app/key1", KEY1).unwrap();
    server.add_resource("default/app/key2", KEY2).unwrap();
    server
        .add_resource("default/signing-key/sealed-secret", KATA_JWK.as_bytes())
        .unwrap();
    server
        .add_resource("default/sealed-secret/test", SEALED_VALUE)
        .unwrap();
    server
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(case: &Case) -> Outcome {
    let a = Artifacts::get();
    let dir = work_dir(case.name);
    let port = free_port();

    // The image: sealgate, the sealed secret to unseal, a stand-in next stage; for SNP/TDX
    // the simulator overlay.
    let mut parts = vec![
        image::base(a),
        // These boots drive sealgate through the kernel command line: the image trusts it.
        image::config(image::TRUSTING_CONFIG),
        image::files(&[
            ("/etc/sealed/db/password", 0o644, KATA_VECTOR.as_bytes()),
            (
                "/sbin/next-stage",
                0o755,
                &std::fs::read(&a.guest_sim).unwrap(),
            ),
        ]),
    ];
    let scheme = if case.https.is_some() {
        "https"
    } else {
        "http"
    };
    let mut append = format!(
        "sealgate.kbs={scheme}://10.0.2.2:{port} sealgate.resource=kbs:///default/app/key1 \
         sealgate.resource=kbs:///default/app/key2 sealgate.sealed_secrets=/etc/sealed \
         sealgate.deadline=60 sealgate.log=info"
    );
    append += if case.exec_next {
        " sealgate.mode=exec sealgate.next_init=/sbin/next-stage"
    } else {
        " sealgate.mode=report"
    };
    let tls = case.https.map(https_certs);
    let init_data = match &tls {
        Some((_, cert)) => https_init_data(&a.sealctl, &dir, port, cert),
        None => init_data(port),
    };
    let digest = Sha384::digest(init_data.as_bytes());
    let mut bound = digest.to_vec();
    if case.wrong_binding {
        bound[0] ^= 0xff;
    }
    match case.tee {
        Tee::Sample => append += " sealgate.tee=sample",
        Tee::Snp | Tee::Tdx => {
            parts.push(image::sim_overlay(a, ""));
            append += if case.tee == Tee::Snp {
                " tsm_sim.provider=sev_guest"
            } else {
                " tsm_sim.provider=tdx_guest"
            };
            if case.sev_ioctl {
                append += " tsm_sim.sev_ioctl=1";
            }
            if case.init_data {
                // SNP HOST_DATA = the digest truncated to 32 bytes, TDX MRCONFIGID = 48.
                append += &match case.tee {
                    Tee::Snp => format!(" sim.host_data={}", hex(&bound[..32])),
                    _ => format!(" sim.mrconfigid={}", hex(&bound)),
                };
            }
        }
    }
    let initdata = (case.init_data || case.https.is_some()).then(|| {
        append += " sealgate.init_data=scan";
        a.initdata_image(&dir, &init_data)
    });
    let initrd = dir.join("initrd.cpio");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    image::write(&initrd, &refs);

    let server_cert = tls.as_ref().map(|(c, _)| c);
    let mut server = case
        .kbs_late
        .is_none()
        .then(|| start_kbs(port, case.deny, server_cert));
    // TDX: the firmware publishes its CCEL, which the daemon's RTMR0..2 replay.
    let ccel = dir.join("ccel.bin");
    let ccel_arg = std::ffi::OsString::from("--ccel");
    let mut more: Vec<&std::ffi::OsStr> = Vec::new();
    if case.tee == Tee::Tdx {
        std::fs::write(&ccel, firmware_glue::sim::tdx::sample_ccel(SEED)).unwrap();
        more = vec![&ccel_arg, ccel.as_os_str()];
    }
    let mut vm = Vm::start_with(
        &VmConfig {
            kernel: a.kernel.image.clone(),
            initrd,
            initdata,
            disks: Vec::new(),
            append,
            log: dir.join("console.log"),
            timeout: Duration::from_secs(150),
        },
        &more,
    )
    .expect("qemu/run");
    if let Some(delay) = case.kbs_late {
        std::thread::sleep(delay);
        server = Some(start_kbs(port, case.deny, server_cert));
    }
    let _ = vm.wait_for("SEALGATE-", Duration::from_secs(150));
    let boot = vm.wait();
    let server = server.unwrap();
    let stats = server.stats();
    let arrivals = server.arrivals();
    server.shutdown();
    Outcome {
        report: Report::parse(&boot.console),
        boot,
        stats,
        arrivals,
    }
}

fn context(o: &Outcome) -> String {
    format!(
        "status {:?} after {:?}; KBS {:?}\n--- console ---\n{}",
        o.boot.status, o.boot.elapsed, o.stats, o.boot.console
    )
}

/// Everything a successful unseal must show.
fn assert_unsealed(o: &Outcome) {
    let ctx = context(o);
    let r = &o.report;
    assert!(
        o.boot.status.success(),
        "QEMU did not end with a poweroff: {ctx}"
    );
    assert!(r.failures.is_empty(), "{ctx}");
    assert_eq!(r.begin_status.as_deref(), Some("ok"), "{ctx}");
    assert_eq!(r.end_status.as_deref(), Some("ok"), "{ctx}");
    for (path, value) in [
        ("/sealed/default/app/key1", KEY1),
        ("/sealed/default/app/key2", KEY2),
        ("/sealed/db/password", SEALED_VALUE),
    ] {
        let s = r
            .secret(path)
            .unwrap_or_else(|| panic!("no report for {path}: {ctx}"));
        assert_eq!(s.size, value.len() as u64, "{path}: {ctx}");
        assert_eq!(s.mode, "0400", "{path}: {ctx}");
        assert_eq!(s.owner, "0:0", "{path}: {ctx}");
        assert_eq!(s.sha256, sha256_hex(value), "{path}: {ctx}");
    }
    assert_eq!(r.secrets.len(), 3, "{ctx}");
    assert_eq!(r.sealed_dir_tmpfs.as_deref(), Some("yes"), "{ctx}");
    assert_eq!(r.sealed_dir_fstype.as_deref(), Some("tmpfs"), "{ctx}");
    let t = r.boot_to_secret_us.expect("timing line");
    let share = r.sealgate_us.expect("timing line");
    assert!(share <= t && t > 0, "{ctx}");
    eprintln!(
        "boot-to-secret {} ms (sealgate {} ms), QEMU wall {} ms",
        t / 1000,
        share / 1000,
        o.boot.elapsed.as_millis()
    );
    assert!(o.stats.attest.count(200) >= 1, "{ctx}");
    // key1, key2, the sealed secret's verification key and its value.
    assert!(o.stats.resource.count(200) >= 4, "{ctx}");
}

fn assert_simulated(o: &Outcome, what: &str) {
    assert!(
        o.boot.console.contains(what),
        "the simulator answered no {what}: {}",
        context(o)
    );
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn sample_tee_unseals() {
    let o = run(&Case {
        https: Some(Https::Ca),
        ..Case::new("e2e-sample", Tee::Sample)
    });
    assert_unsealed(&o);
    assert_https(&o);
}

/// The secrets came over HTTPS (TLS 1.3, the KBS's certificate from init-data).
fn assert_https(o: &Outcome) {
    let ctx = context(o);
    assert!(
        o.boot
            .console
            .contains("trusting init-data's KBS certificate"),
        "{ctx}"
    );
    assert!(
        o.boot.console.contains("TLS 1.3 with https://10.0.2.2:"),
        "{ctx}"
    );
    assert!(o.stats.tls_handshakes >= 1, "{ctx}");
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn simulated_snp_through_configfs_tsm_unseals_with_init_data() {
    let o = run(&Case {
        init_data: true,
        https: Some(Https::SelfSigned),
        ..Case::new("e2e-snp", Tee::Snp)
    });
    assert_unsealed(&o);
    assert_https(&o);
    assert_simulated(&o, "SNP report via configfs-tsm");
    assert!(
        o.boot.console.contains("init-data matches SNP HOST_DATA"),
        "{}",
        context(&o)
    );
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn simulated_snp_through_dev_sev_guest_unseals_with_init_data() {
    // With /dev/sev-guest present, sealgate uses SNP_GET_EXT_REPORT (certificate-length
    // negotiation included) for both the HOST_DATA check and the evidence.
    let o = run(&Case {
        init_data: true,
        sev_ioctl: true,
        ..Case::new("e2e-snp-ioctl", Tee::Snp)
    });
    assert_unsealed(&o);
    assert_simulated(&o, "SNP report via /dev/sev-guest");
    assert!(
        !o.boot.console.contains("SNP report via configfs-tsm"),
        "sealgate should prefer the ioctl device: {}",
        context(&o)
    );
    assert!(
        o.boot.console.contains("init-data matches SNP HOST_DATA"),
        "{}",
        context(&o)
    );
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn simulated_tdx_through_configfs_tsm_unseals_with_init_data() {
    let o = run(&Case {
        init_data: true,
        ..Case::new("e2e-tdx", Tee::Tdx)
    });
    assert_unsealed(&o);
    assert_simulated(&o, "TDX quote via configfs-tsm");
    assert!(
        o.boot.console.contains("init-data matches TDX MRCONFIGID"),
        "{}",
        context(&o)
    );
    // The CCEL (SpecID header and 3 events) went as cc_eventlog and replayed.
    assert!(
        o.arrivals.iter().any(|a| a.path == "/kbs/v0/attest"
            && a.status == Some(200)
            && a.note
                .as_deref()
                .is_some_and(|n| n.contains("4 events, replayed to the quote's RTMR0..3"))),
        "{}",
        context(&o)
    );
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn kbs_that_comes_up_late_is_retried_until_it_answers() {
    let late = Duration::from_secs(12);
    let o = run(&Case {
        kbs_late: Some(late),
        ..Case::new("e2e-kbs-late", Tee::Sample)
    });
    assert_unsealed(&o);
    assert!(o.boot.elapsed > late, "{}", context(&o));
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn kbs_policy_refusal_fails_closed_without_next_stage() {
    let o = run(&Case {
        deny: true,
        exec_next: true,
        ..Case::new("e2e-policy-deny", Tee::Snp)
    });
    let ctx = context(&o);
    assert_eq!(
        o.report.failures.len(),
        1,
        "one SEALGATE-FAILED line: {ctx}"
    );
    assert!(o.stats.resource.count(401) >= 1, "the KBS refused: {ctx}");
    assert_eq!(o.stats.resource.count(200), 0, "{ctx}");
    assert!(
        !o.boot.console.contains(NEXT_STAGE_MARKER),
        "next stage ran: {ctx}"
    );
    assert!(o.report.secrets.is_empty(), "{ctx}");
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn init_data_mismatch_is_refused_before_any_kbs_request() {
    let o = run(&Case {
        init_data: true,
        wrong_binding: true,
        ..Case::new("e2e-initdata-mismatch", Tee::Snp)
    });
    let ctx = context(&o);
    assert_eq!(
        o.report.failures.len(),
        1,
        "one SEALGATE-FAILED line: {ctx}"
    );
    assert!(
        o.report.failures[0].contains("init-data does not match"),
        "{ctx}"
    );
    assert_eq!(
        o.stats.resource.requests, 0,
        "a resource was requested: {ctx}"
    );
    assert_eq!(o.stats.attest.requests, 0, "evidence was sent: {ctx}");
}

/// Every key that only a measured source may set, on the kernel command line of an image
/// that does not trust it, each with a value that would change or break the run if used.
const FORBIDDEN_ON_CMDLINE: &[&str] = &[
    "sealgate.config=/dev/null",
    "sealgate.owner=4242:4242",
    "sealgate.file_mode=0440",
    "sealgate.tee=snp",
    "sealgate.key=RSA-OAEP-256",
    "sealgate.resource=kbs:///default/app/key2=evil",
    "sealgate.sealed_dir=/evil",
    "sealgate.tmpfs_size=4k",
    "sealgate.sealed_secrets=/nonexistent",
    "sealgate.deadline=0",
    "sealgate.init_data=/nonexistent",
    "sealgate.configfs_tsm=/nonexistent",
    "sealgate.mode=exec",
    "sealgate.next_init=/sbin/next-stage",
    "sealgate.on_failure=continue",
    "sealgate.modules=evil",
];

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn untrusted_kernel_command_line_cannot_steer_sealgate() {
    // The image's config file (measured) names the KBS, the TEE, one resource and report
    // mode, and does not set trust_kernel_cmdline. The host's command line tries every
    // forbidden key, a wrong KBS (the lowest fallback: unused) and, after `--`, arguments
    // for PID 1 that would be a command with flags if sealgate parsed them.
    let a = Artifacts::get();
    let dir = work_dir("e2e-untrusted-cmdline");
    let port = free_port();
    let config = format!(
        "kbs_url = \"http://10.0.2.2:{port}\"\ntee = \"sample\"\ndeadline_secs = 60\n\
         [[resource]]\nuri = \"kbs:///default/app/key1\"\n[init]\nmode = \"report\"\n"
    );
    let parts = [
        image::base(a),
        image::config(&config),
        image::files(&[(
            "/sbin/next-stage",
            0o755,
            &std::fs::read(&a.guest_sim).unwrap(),
        )]),
    ];
    let initrd = dir.join("initrd.cpio");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    image::write(&initrd, &refs);
    let append = format!(
        "{} sealgate.kbs=http://10.0.2.2:1 sealgate.log=info \
         -- unseal --owner 4242:4242 --kbs http://10.0.2.2:1 --resource kbs:///default/app/key2",
        FORBIDDEN_ON_CMDLINE.join(" ")
    );
    let server = start_kbs(port, false, None);
    let mut vm = Vm::start(&VmConfig {
        kernel: a.kernel.image.clone(),
        initrd,
        initdata: None,
        disks: Vec::new(),
        append,
        log: dir.join("console.log"),
        timeout: Duration::from_secs(150),
    })
    .expect("qemu/run");
    let _ = vm.wait_for("SEALGATE-REPORT end", Duration::from_secs(150));
    let boot = vm.wait();
    let stats = server.stats();
    let arrivals = server.arrivals();
    server.shutdown();
    let o = Outcome {
        report: Report::parse(&boot.console),
        boot,
        stats,
        arrivals,
    };
    let ctx = context(&o);
    let r = &o.report;
    assert!(o.boot.status.success(), "no poweroff: {ctx}");
    assert!(r.failures.is_empty(), "{ctx}");
    assert_eq!(r.end_status.as_deref(), Some("ok"), "{ctx}");
    let s = r
        .secret("/sealed/default/app/key1")
        .unwrap_or_else(|| panic!("no key1: {ctx}"));
    assert_eq!(
        (s.mode.as_str(), s.owner.as_str()),
        ("0400", "0:0"),
        "{ctx}"
    );
    assert_eq!(s.sha256, sha256_hex(KEY1), "{ctx}");
    assert_eq!(r.secrets.len(), 1, "key2 was not fetched: {ctx}");
    assert_eq!(r.sealed_dir_fstype.as_deref(), Some("tmpfs"), "{ctx}");
    for param in FORBIDDEN_ON_CMDLINE {
        let key = param.split('=').next().unwrap();
        assert!(
            o.boot
                .console
                .contains(&format!("ignoring {key}= on the kernel command line")),
            "no warning for {key}: {ctx}"
        );
    }
    // PID 1's arguments went to the (unused) next init: the init stage ran, nothing
    // parsed them as a command or flags.
    assert!(o.boot.console.contains("init stage (pid 1)"), "{ctx}");
    assert!(!o.boot.console.contains("unknown option"), "{ctx}");
    assert!(!o.boot.console.contains(NEXT_STAGE_MARKER), "{ctx}");
    assert!(o.stats.resource.count(200) >= 1, "{ctx}");
}
