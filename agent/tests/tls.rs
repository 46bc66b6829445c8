//! HTTPS to the KBS, end to end: the real binary against the test KBS serving TLS
//! (rustls on ring: an independent implementation), with certificates made here.
//!
//! What fails closed, each with a clear error, nothing written and (for what retrying
//! cannot fix) no retry and no HTTP request at the KBS: a wrong CA, an expired and a
//! not-yet-valid certificate, a host name and an IP address the certificate does not name,
//! a self-signed `CA:true` certificate that is not pinned, a pinned certificate that does
//! not match, a server that drops the handshake or answers garbage, and `http://` when a
//! KBS certificate is configured (flags, init-data, or under a command-line URL).
//!
//! What works: TLS 1.2-only servers, a pinned self-signed `CA:true` certificate (what
//! `openssl req -x509` makes, which upstream's client rejects), init-data's certificate
//! (`sealctl initdata new --kbs-cert`), a CA bundle, session resumption on reconnect.
//!
//! The fault matrix, the deadline tests and the one-guest fleet tests (an L7 front that
//! terminates TLS, an L4 one that passes it through) run over HTTPS as well (faults.rs,
//! deadline.rs, fleet.rs).

mod common;

use common::*;
use std::time::Duration;
use test_kbs::certs::{self, Issued, TestCa, Validity};

const SECRET: &str = "default/tls/secret";
const VALUE: &str = "tls-test-value-7c1f04";

/// A world whose KBS serves `server` (TLS 1.2 only with `tls12_only`) and whose sealgate
/// trusts `trust` (PEM, as `--kbs-cert`).
fn world(tag: &str, server: &Issued, tls12_only: bool, trust: &str) -> World {
    let config = Config {
        tls: Some(tls_settings(server, tls12_only)),
        ..Config::default()
    };
    let w = World::over(tag, config, Scheme::Https);
    std::fs::write(w.kbs_cert.as_ref().unwrap(), trust).unwrap();
    w.secret(SECRET, VALUE);
    w.seed_sealed_dir();
    w
}

fn unseal(w: &World) -> Sealgate {
    w.unseal()
        .resource(&format!("kbs:///{SECRET}"), "tls/secret")
}

/// `w`'s KBS URL with `host` instead of 127.0.0.1.
fn url_with_host(w: &World, host: &str) -> String {
    format!("https://{host}:{}", w.kbs.addr().port())
}

#[track_caller]
fn assert_unsealed(w: &World, ran: &Ran) {
    ran.ok();
    assert_eq!(w.read("tls/secret"), VALUE.as_bytes(), "{}", ran.dump());
}

/// Refused for good: the error, no retry, no HTTP request reached the KBS, a handshake was
/// tried.
#[track_caller]
fn refused(w: &World, ran: &Ran, says: &[&str]) {
    ran.fails(1, says).never_says(&["retrying", "attested"]);
    let stats = w.kbs.stats();
    assert_eq!(
        stats.requests,
        0,
        "no HTTP request: {stats:?}{}",
        ran.dump()
    );
    assert!(stats.connections >= 1, "{stats:?}");
    assert_eq!(stats.tls_handshakes, 0, "{stats:?}");
}

const REJECTED: &str = "TLS server certificate rejected";

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let other = TestCa::new("sealgate tests CA");
    let w = world("wrong-ca", &test_pki().server, false, &other.cert_pem);
    let ran = unseal(&w).run();
    let url = w.url();
    refused(
        &w,
        &ran,
        &[&format!("KBS {url} ("), REJECTED, "nothing was written"],
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let ca = &test_pki().ca;
    for (validity, says) in [
        (Validity::Expired, "certificate expired at 2020-01-01"),
        (
            Validity::NotYetValid,
            "certificate not valid before 2090-01-01",
        ),
    ] {
        let server = ca.issue_with(&["127.0.0.1"], validity);
        let w = world("validity", &server, false, &ca.cert_pem);
        let ran = unseal(&w).run();
        refused(&w, &ran, &[REJECTED, says]);
    }
}

#[test]
fn a_host_name_or_address_the_certificate_does_not_name_is_refused() {
    let ca = &test_pki().ca;
    // DNS name: the certificate names kbs.test, sealgate connects to localhost.
    let server = ca.issue(&["kbs.test", "127.0.0.1"]);
    let w = world("name-mismatch", &server, false, &ca.cert_pem);
    let ran = unseal(&w)
        .args(["--kbs", &url_with_host(&w, "localhost")])
        .run();
    refused(
        &w,
        &ran,
        &[REJECTED, "not valid for name localhost", "kbs.test"],
    );
    // An IP address in the URL is checked against the certificate's IP SANs.
    let server = ca.issue(&["localhost", "127.0.0.2"]);
    let w = world("ip-mismatch", &server, false, &ca.cert_pem);
    let ran = unseal(&w).run();
    refused(
        &w,
        &ran,
        &[REJECTED, "not valid for name 127.0.0.1", "127.0.0.2"],
    );
    // The same certificate by its name works (it names localhost).
    let ran = unseal(&w)
        .args(["--kbs", &url_with_host(&w, "localhost")])
        .run();
    assert_unsealed(&w, &ran);
}

#[test]
fn a_self_signed_ca_certificate_is_accepted_only_when_it_is_the_configured_one() {
    // openssl req -x509's default shape: self-signed, CA:true. Pinned: accepted (upstream's
    // client fails here with CaUsedAsEndEntity).
    let own = certs::self_signed(&["127.0.0.1", "localhost"], true);
    let w = world("pinned-ca", &own, false, &own.cert_pem);
    let ran = unseal(&w).run();
    assert_unsealed(&w, &ran);
    ran.says(&["TLS 1.3 with"]);

    // Not pinned: the configured certificate is the test CA, not this one.
    let w = world("unpinned-ca", &own, false, &test_pki().ca.cert_pem);
    let ran = unseal(&w).run();
    refused(
        &w,
        &ran,
        &[REJECTED, "self-signed CA certificate is not pinned"],
    );
}

#[test]
fn a_pinned_certificate_that_does_not_match_is_refused() {
    // The configured certificate and the served one have the same names and subject, but
    // are two different certificates (another key).
    let pinned = certs::self_signed(&["127.0.0.1"], false);
    let served = certs::self_signed(&["127.0.0.1"], false);
    let w = world("pin-mismatch", &served, false, &pinned.cert_pem);
    let ran = unseal(&w).run();
    refused(&w, &ran, &[REJECTED]);
    // Named as a pin that does not match, or (same subject) as a signature that does not
    // verify against the configured certificate.
    assert!(
        ran.count("pinned certificate does not match") + ran.count("does not verify") > 0,
        "{}",
        ran.dump()
    );
    // The pin itself works.
    let w = world("pin-match", &served, false, &served.cert_pem);
    assert_unsealed(&w, &unseal(&w).run());
}

#[test]
fn a_tls_1_2_only_server_works() {
    let w = world("tls12", &test_pki().server, true, &test_pki().ca.cert_pem);
    let ran = unseal(&w).run();
    assert_unsealed(&w, &ran);
    ran.says(&["TLS 1.2 with https://127.0.0.1:", "full handshake"]);
    assert_eq!(w.kbs.stats().tls_handshakes, 1);
}

#[test]
fn reconnects_resume_the_session() {
    // A KBS that closes the connection after every response: three requests, three
    // connections, the second and third resumed.
    for tls12_only in [false, true] {
        let config = Config {
            close_after_response: true,
            tls: Some(tls_settings(&test_pki().server, tls12_only)),
            ..Config::default()
        };
        let w = World::over("resume", config, Scheme::Https);
        w.secret(SECRET, VALUE);
        let ran = unseal(&w).run();
        assert_unsealed(&w, &ran);
        let stats = w.kbs.stats();
        assert_eq!(
            (stats.connections, stats.tls_handshakes, stats.tls_resumed),
            (3, 3, 2),
            "TLS 1.2 only: {tls12_only}: {stats:?}{}",
            ran.dump()
        );
        assert_eq!(ran.count("session resumed"), 2, "{}", ran.dump());
        assert_eq!(ran.count("full handshake"), 1, "{}", ran.dump());
    }
}

#[test]
fn a_ca_bundle_anchors_the_kbs_certificate() {
    // A bundle of several CAs (as a public one), the KBS's among them, given as
    // --kbs-ca-bundle alone.
    let others: Vec<TestCa> = (0..3)
        .map(|i| TestCa::new(&format!("other CA {i}")))
        .collect();
    let mut bundle: String = others.iter().map(|c| c.cert_pem.clone()).collect();
    bundle.push_str(&test_pki().ca.cert_pem);
    let w = world("bundle", &test_pki().server, false, "");
    let file = w.tmp.write("bundle.pem", &bundle);
    let ran = w
        .bare()
        .args(["unseal", "--kbs", &w.url(), "--tee", "sample"])
        .args(["--kbs-ca-bundle", s(&file)])
        .args(["--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .resource(&format!("kbs:///{SECRET}"), "tls/secret")
        .run();
    assert_unsealed(&w, &ran);
    ran.says(&["trusting kbs_ca_bundle file", "(4 certificate(s))"]);
}

#[test]
fn a_server_that_drops_the_handshake_is_retried_then_fails_at_the_deadline() {
    for (kind, says) in [
        (
            FaultKind::CloseMidResponse,
            "the server closed the connection during the handshake",
        ),
        (FaultKind::Reset, "Connection reset by peer"),
    ] {
        // Once: the retry succeeds (and the server never saw the first attempt's request).
        let w = world(
            "drop-once",
            &test_pki().server,
            false,
            &test_pki().ca.cert_pem,
        );
        w.kbs
            .add_fault(Fault::new(Step::Handshake, kind.clone()).times(1))
            .unwrap();
        let ran = unseal(&w).run();
        assert_unsealed(&w, &ran);
        ran.says(&[says, "; retrying in "]);
        let stats = w.kbs.stats();
        assert_eq!(
            (stats.tls_failed, stats.tls_handshakes),
            (1, 1),
            "{stats:?}"
        );
        // Always: retried until the deadline, then a clear error; nothing written.
        let w = world(
            "drop-always",
            &test_pki().server,
            false,
            &test_pki().ca.cert_pem,
        );
        w.kbs.add_fault(Fault::new(Step::Handshake, kind)).unwrap();
        let ran = unseal(&w).args(["--deadline", "2"]).run();
        ran.fails(1, &[says, "deadline of 2 s", "nothing was written"]);
        assert!(ran.count("; retrying in ") >= 1, "{}", ran.dump());
        assert_eq!(w.kbs.stats().requests, 0);
    }
}

#[test]
fn a_handshake_that_hangs_ends_at_the_deadline() {
    let w = world("hang", &test_pki().server, false, &test_pki().ca.cert_pem);
    w.kbs
        .add_fault(Fault::new(Step::Handshake, FaultKind::Hang))
        .unwrap();
    let ran = unseal(&w).args(["--deadline", "2"]).run();
    let url = w.url();
    ran.fails(
        1,
        &[
            &format!("deadline of 2 s passed while negotiating TLS with {url} ("),
            "nothing was written",
        ],
    );
    assert!(ran.elapsed < Duration::from_secs(9), "{}", ran.dump());
}

#[test]
fn a_server_that_answers_garbage_fails_closed() {
    // https:// to a plain-HTTP KBS: its answer to the ClientHello is not TLS.
    let w = World::new("garbage");
    w.secret(SECRET, VALUE);
    w.seed_sealed_dir();
    let ca = w.tmp.write("ca.pem", &test_pki().ca.cert_pem);
    let url = w.url().replace("http://", "https://");
    let ran = unseal(&w)
        .args(["--kbs", &url, "--kbs-cert", s(&ca), "--deadline", "2"])
        .run();
    ran.fails(
        1,
        &[
            &format!("KBS {url} ("),
            "TLS protocol error",
            "nothing was written",
        ],
    )
    .never_says(&["attested"]);
    assert_eq!(w.kbs.stats().requests, 0, "{}", ran.dump());
}

#[test]
fn plain_http_is_refused_when_a_kbs_certificate_is_configured() {
    let w = World::new("downgrade");
    w.secret(SECRET, VALUE);
    w.seed_sealed_dir();
    let ca = w.tmp.write("ca.pem", &test_pki().ca.cert_pem);
    // From the flags.
    let ran = unseal(&w).args(["--kbs-cert", s(&ca)]).run();
    ran.fails(1, &["is plain HTTP, but kbs_cert file", "use https://"]);
    // From the config file (the image's), with the URL from the kernel command line: the
    // host's URL cannot take the guest back to plain HTTP either.
    let config = w
        .tmp
        .write("config.toml", format!("kbs_cert = \"{}\"\n", s(&ca)));
    let cmdline = w
        .tmp
        .write("cmdline", format!("sealgate.kbs={}\n", w.url()));
    let ran = w
        .bare()
        .args(["unseal", "--tee", "sample", "--config", s(&config)])
        .args([
            "--kernel-cmdline",
            s(&cmdline),
            "--sealed-dir",
            s(&w.sealed),
        ])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .resource(&format!("kbs:///{SECRET}"), "tls/secret")
        .run();
    ran.fails(1, &["is plain HTTP, but kbs_cert file", "use https://"]);
    // From init-data: its certificate with an http:// URL (written by hand: sealctl
    // refuses to write it).
    let pem = test_pki().ca.cert_pem.trim_end();
    let init_data = w.tmp.write(
        "initdata.toml",
        format!(
            "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = '''\n\
             [token_configs.kbs]\nurl = \"{}\"\ncert = \"\"\"\n{pem}\n\"\"\"\n'''\n",
            w.url()
        ),
    );
    let ran = w
        .bare()
        .args(["unseal", "--tee", "sample", "--init-data", s(&init_data)])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .args([
            "--sealed-dir",
            s(&w.sealed),
            "--no-mount",
            "--insecure-allow-non-tmpfs",
        ])
        .resource(&format!("kbs:///{SECRET}"), "tls/secret")
        .run();
    ran.fails(
        1,
        &[
            "is plain HTTP, but init-data's KBS certificate",
            "use https://",
        ],
    );
    assert_eq!(w.kbs.stats().connections, 0, "nothing was sent");
    // And https:// with no certificate at all.
    let ran = unseal(&w)
        .args(["--kbs", &w.url().replace("http://", "https://")])
        .run();
    ran.fails(1, &["no KBS certificate is configured"]);
    assert_eq!(w.kbs.stats().connections, 0, "nothing was sent");
}

#[test]
fn init_data_carries_the_kbs_url_and_certificate() {
    // The operator's path: sealctl writes init-data with the URL and the certificate; the
    // guest has nothing else (no --kbs, no --kbs-cert).
    let w = world("init-data", &test_pki().server, false, "");
    let ca = w.tmp.write("ca.pem", &test_pki().ca.cert_pem);
    let init_data = w.tmp.join("initdata.toml");
    let printed = sealctl(&[
        "initdata",
        "new",
        "--kbs-url",
        &url_with_host(&w, "localhost"),
        "--kbs-cert",
        s(&ca),
        s(&init_data),
    ]);
    assert!(printed.contains("snp host_data:"), "{printed}");
    let ran = w
        .bare()
        .args(["unseal", "--tee", "sample", "--init-data", s(&init_data)])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .args([
            "--sealed-dir",
            s(&w.sealed),
            "--no-mount",
            "--insecure-allow-non-tmpfs",
        ])
        .resource(&format!("kbs:///{SECRET}"), "tls/secret")
        .run();
    assert_unsealed(&w, &ran);
    ran.says(&[
        "trusting init-data's KBS certificate",
        "TLS 1.3 with https://localhost:",
    ]);
}

#[test]
fn a_missing_or_unusable_certificate_file_is_a_clear_error_before_any_connection() {
    let w = World::over("bad-cert", Config::default(), Scheme::Https);
    w.secret(SECRET, VALUE);
    let missing = w.tmp.join("missing.pem");
    let ran = unseal(&w).args(["--kbs-cert", s(&missing)]).run();
    ran.fails(
        1,
        &[&format!("cannot read KBS certificate file {}", s(&missing))],
    );
    // A key where the certificate should be: named by the file, never quoted.
    let key = w.tmp.write("key.pem", &test_pki().server.key_pem);
    let ran = unseal(&w).args(["--kbs-cert", s(&key)]).run();
    ran.fails(1, &[&format!("kbs_cert file {}: TLS", s(&key))])
        .never_says(&["PRIVATE KEY"]);
    let garbage = w.tmp.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let ran = unseal(&w).args(["--kbs-cert", s(&garbage)]).run();
    ran.fails(1, &[&format!("kbs_cert file {}: TLS", s(&garbage))]);
    assert_eq!(w.kbs.stats().connections, 0, "nothing was sent");
}

#[test]
fn get_resource_works_over_https() {
    let w = World::over("get-resource", Config::default(), Scheme::Https);
    w.secret(SECRET, VALUE);
    let ran = w.get_resource(&format!("kbs:///{SECRET}")).run();
    ran.ok().says(&["TLS 1.3 with https://127.0.0.1:"]);
    assert_eq!(ran.stdout, VALUE.as_bytes(), "{}", ran.dump());
}
