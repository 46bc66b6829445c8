//! Real handshakes against an independent TLS server (rustls on ring) over loopback TCP:
//! versions, suites, key types, resumption, every verification failure and the stream's
//! failure modes.

mod common;

use common::*;
use std::sync::Arc;

use rustls::{CipherSuite, ProtocolVersion};
use sealgate_tls::{TlsClientConfig, TlsError, TlsStream, TlsTrust, Versions};

fn ok_body(out: &[u8], len: usize) {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
    assert!(
        out.starts_with(head.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&out[..out.len().min(80)])
    );
    assert_eq!(&out[head.len()..], &body(len)[..]);
}

fn roundtrip(
    ca_key: Key,
    leaf_key: Key,
    ver: Ver,
) -> (Option<ProtocolVersion>, Option<CipherSuite>) {
    let ca = Ca::new(ca_key, "test CA");
    let leaf = ca.issue(leaf_key, &["kbs.example"], Validity::Now);
    let (addr, server) = serve(server_config(&leaf, ver), Behave::Serve { body_len: 5 }, 1);
    let config = client_config(&[&ca.pem]);
    let (tls, out) = fetch(&config, "kbs.example", addr).unwrap();
    ok_body(&out, 5);
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(!tls.resumed());
    server.join().unwrap();
    (tls.protocol_version(), tls.cipher_suite())
}

/// Whether this build can verify these keys' signatures (RSA needs the `rsa` feature).
fn with_rsa(keys: &[Key]) -> bool {
    cfg!(feature = "rsa") || !keys.iter().any(|k| matches!(k, Key::Rsa2048))
}

#[cfg(not(feature = "rsa"))]
#[test]
fn rsa_is_refused_without_the_rsa_feature() {
    // An RSA-signed chain: no algorithm to verify it.
    let ca = Ca::new(Key::Rsa2048, "test CA");
    let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    let (addr, server) = serve(
        server_config(&leaf, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(&client_config(&[&ca.pem]), "kbs.example", addr));
    assert!(
        m.contains("signature algorithm this client does not support"),
        "{m}"
    );
    server.join().unwrap();
    // An RSA server key: no common signature scheme / suite.
    let ca = Ca::new(Key::P256, "test CA");
    let leaf = ca.issue(Key::Rsa2048, &["kbs.example"], Validity::Now);
    let (addr, server) = serve(
        server_config(&leaf, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    assert!(matches!(
        fetch(&client_config(&[&ca.pem]), "kbs.example", addr),
        Err(TlsError::Protocol { .. })
    ));
    server.join().unwrap();
}

#[test]
fn tls13_with_ecdsa_p256_p384_and_rsa_servers() {
    for (ca, leaf) in [
        (Key::P256, Key::P256),
        (Key::P384, Key::P384),
        (Key::P256, Key::Rsa2048),
        (Key::Rsa2048, Key::P256),
    ] {
        if !with_rsa(&[ca, leaf]) {
            continue; // rsa_is_refused_without_the_rsa_feature
        }
        let (v, _) = roundtrip(ca, leaf, Ver::Tls13);
        assert_eq!(v, Some(ProtocolVersion::TLSv1_3), "{ca:?}/{leaf:?}");
    }
    // Both offered: TLS 1.3 wins.
    assert_eq!(
        roundtrip(Key::P256, Key::P256, Ver::Both).0,
        Some(ProtocolVersion::TLSv1_3)
    );
}

#[test]
fn tls12_only_server_with_ecdsa_and_rsa() {
    for (ca, leaf) in [
        (Key::P256, Key::P256),
        (Key::P384, Key::P384),
        (Key::Rsa2048, Key::Rsa2048),
    ] {
        if !with_rsa(&[ca, leaf]) {
            continue; // rsa_is_refused_without_the_rsa_feature
        }
        let (v, _) = roundtrip(ca, leaf, Ver::Tls12);
        assert_eq!(v, Some(ProtocolVersion::TLSv1_2), "{ca:?}/{leaf:?}");
    }
}

#[test]
fn every_cipher_suite_against_ring() {
    use rustls::crypto::ring::cipher_suite as cs;
    let ca = Ca::new(Key::P256, "test CA");
    let ecdsa = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    let rsa = ca.issue(Key::Rsa2048, &["kbs.example"], Validity::Now);
    let cases = [
        (cs::TLS13_AES_128_GCM_SHA256, &ecdsa, Ver::Tls13),
        (cs::TLS13_AES_256_GCM_SHA384, &ecdsa, Ver::Tls13),
        (
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            &ecdsa,
            Ver::Tls12,
        ),
        (
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            &ecdsa,
            Ver::Tls12,
        ),
        (cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, &rsa, Ver::Tls12),
        (cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, &rsa, Ver::Tls12),
    ];
    for (suite, leaf, ver) in cases {
        if !cfg!(feature = "rsa") && core::ptr::eq(leaf, &rsa) {
            continue; // rsa_is_refused_without_the_rsa_feature
        }
        for group in [
            rustls::crypto::ring::kx_group::SECP256R1,
            rustls::crypto::ring::kx_group::SECP384R1,
        ] {
            // A fresh client each time: a ticket from a server with other suites would make
            // the client offer it, and ring's rustls server rejects a second ClientHello
            // (after HelloRetryRequest) that drops the incompatible PSK, as RFC 8446
            // allows the client to do.
            let config = client_config(&[&ca.pem]);
            let provider = rustls::crypto::CryptoProvider {
                cipher_suites: vec![suite],
                kx_groups: vec![group],
                ..ring()
            };
            let (addr, server) = serve(
                server_config_with(leaf, ver, provider),
                Behave::Serve { body_len: 40_000 },
                1,
            );
            let (tls, out) = fetch(&config, "kbs.example", addr).unwrap();
            ok_body(&out, 40_000);
            assert_eq!(tls.cipher_suite(), Some(suite.suite()));
            server.join().unwrap();
        }
    }
}

#[test]
fn large_request_and_response_span_many_records() {
    use embedded_io::{Read, Write};
    let ca = Ca::new(Key::P256, "test CA");
    let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    let (addr, server) = serve(
        server_config(&leaf, Ver::Tls13),
        Behave::Serve { body_len: 300_000 },
        1,
    );
    let config = client_config(&[&ca.pem]);
    let mut tls = TlsStream::connect(&config, "kbs.example", tcp(addr)).unwrap();
    // A 50 KB request head (many records).
    let mut req = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    req.extend(std::iter::repeat_n(b'x', 50_000));
    req.extend_from_slice(b"\r\n\r\n");
    tls.write_all(&req).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    loop {
        let n = tls.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    ok_body(&out, 300_000);
    // After close_notify, reads keep returning 0.
    assert_eq!(tls.read(&mut buf).unwrap(), 0);
    server.join().unwrap();
}

#[test]
fn reconnect_resumes_tls13_and_tls12() {
    for ver in [Ver::Tls13, Ver::Tls12] {
        let ca = Ca::new(Key::P256, "test CA");
        let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
        let (addr, server) = serve(server_config(&leaf, ver), Behave::Serve { body_len: 5 }, 3);
        let config = client_config(&[&ca.pem]);
        let (mut first, _) = fetch(&config, "kbs.example", addr).unwrap();
        assert!(!first.resumed(), "{ver:?}");
        first.close();
        drop(first);
        let (mut second, out) = fetch(&config, "kbs.example", addr).unwrap();
        ok_body(&out, 5);
        assert!(
            second.resumed(),
            "{ver:?}: the second connection did not resume"
        );
        second.close();
        drop(second);
        // A new configuration has its own (empty) cache.
        let other = client_config(&[&ca.pem]);
        let (third, _) = fetch(&other, "kbs.example", addr).unwrap();
        assert!(!third.resumed(), "{ver:?}");
        server.join().unwrap();
    }
}

#[test]
fn client_version_restrictions() {
    let ca = Ca::new(Key::P256, "test CA");
    let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    let trust = TlsTrust::from_pem(ca.pem.as_bytes()).unwrap();
    let c12 = TlsClientConfig::with_versions(&trust, rng, now, Versions::Tls12Only).unwrap();
    let (addr, server) = serve(
        server_config(&leaf, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    assert_eq!(
        fetch(&c12, "kbs.example", addr)
            .unwrap()
            .0
            .protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    server.join().unwrap();
    // A TLS 1.3-only client against a TLS 1.2-only server: no common version.
    let c13 = TlsClientConfig::with_versions(&trust, rng, now, Versions::Tls13Only).unwrap();
    let (addr, server) = serve(
        server_config(&leaf, Ver::Tls12),
        Behave::Serve { body_len: 5 },
        1,
    );
    match fetch(&c13, "kbs.example", addr) {
        Err(e @ TlsError::Protocol { .. }) => assert!(!e.is_transient(), "{e}"),
        other => panic!("{:?}", other.map(|(_, o)| o)),
    }
    server.join().unwrap();
}

#[test]
fn wrong_ca_is_rejected() {
    let ca = Ca::new(Key::P256, "test CA");
    let other = Ca::new(Key::P256, "other CA");
    let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    let (addr, server) = serve(
        server_config(&leaf, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(&client_config(&[&other.pem]), "kbs.example", addr));
    assert!(
        m.starts_with("certificate not issued by a configured CA"),
        "{m}"
    );
    // The client hung up; the server saw the handshake fail.
    let errors = server.join().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn expired_and_not_yet_valid_are_rejected_with_dates() {
    let ca = Ca::new(Key::P256, "test CA");
    let config = client_config(&[&ca.pem]);
    for (validity, want) in [
        (
            Validity::Expired,
            "certificate expired at 2021-01-01T00:00:00Z (now 20",
        ),
        (
            Validity::Future,
            "certificate not valid before 2090-01-01T00:00:00Z (now 20",
        ),
    ] {
        let leaf = ca.issue(Key::P256, &["kbs.example"], validity);
        let (addr, server) = serve(
            server_config(&leaf, Ver::Both),
            Behave::Serve { body_len: 5 },
            1,
        );
        let m = cert_error(fetch(&config, "kbs.example", addr));
        assert!(m.starts_with(want), "{m}");
        server.join().unwrap();
    }
}

#[test]
fn hostname_mismatch_is_rejected() {
    let ca = Ca::new(Key::P256, "test CA");
    let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    let (addr, server) = serve(
        server_config(&leaf, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(&client_config(&[&ca.pem]), "other.example", addr));
    assert_eq!(
        m,
        "certificate not valid for name other.example (it names: DnsName(\"kbs.example\"))"
    );
    server.join().unwrap();
}

#[test]
fn ip_san_match_and_mismatch() {
    let ca = Ca::new(Key::P256, "test CA");
    let config = client_config(&[&ca.pem]);
    let good = ca.issue(Key::P256, &["127.0.0.1"], Validity::Now);
    let (addr, server) = serve(
        server_config(&good, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    ok_body(&fetch(&config, "127.0.0.1", addr).unwrap().1, 5);
    server.join().unwrap();

    let bad = ca.issue(Key::P256, &["127.0.0.2", "kbs.example"], Validity::Now);
    let (addr, server) = serve(
        server_config(&bad, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(&config, "127.0.0.1", addr));
    assert!(
        m.starts_with("certificate not valid for name 127.0.0.1 (it names: "),
        "{m}"
    );
    assert!(m.contains("127.0.0.2"), "{m}");
    server.join().unwrap();
}

#[test]
fn self_signed_ca_true_not_configured_is_rejected() {
    let server_cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let configured = Ca::new(Key::P256, "some other CA");
    let (addr, server) = serve(
        server_config(&server_cert, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(
        &client_config(&[&configured.pem]),
        "kbs.example",
        addr,
    ));
    assert!(
        m.starts_with("self-signed CA certificate is not pinned"),
        "{m}"
    );
    server.join().unwrap();
}

#[test]
fn pinned_self_signed_ca_true_is_accepted_tls13_and_tls12() {
    for ver in [Ver::Tls13, Ver::Tls12] {
        for key in [Key::P256, Key::Rsa2048] {
            if !with_rsa(&[key]) {
                continue; // rsa_is_refused_without_the_rsa_feature
            }
            let cert = self_signed(key, &["kbs.example", "127.0.0.1"], true, Validity::Now);
            let (addr, server) = serve(server_config(&cert, ver), Behave::Serve { body_len: 5 }, 2);
            let config = client_config(&[&cert.pem]);
            ok_body(&fetch(&config, "kbs.example", addr).unwrap().1, 5);
            ok_body(&fetch(&config, "127.0.0.1", addr).unwrap().1, 5);
            server.join().unwrap();
        }
    }
}

#[test]
fn pinned_certificate_still_checks_name_and_dates() {
    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let (addr, server) = serve(
        server_config(&cert, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(&client_config(&[&cert.pem]), "other.example", addr));
    assert!(
        m.starts_with("certificate not valid for name other.example"),
        "{m}"
    );
    server.join().unwrap();

    let old = self_signed(Key::P256, &["kbs.example"], true, Validity::Expired);
    let (addr, server) = serve(
        server_config(&old, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(&client_config(&[&old.pem]), "kbs.example", addr));
    assert!(
        m.starts_with("certificate expired at 2021-01-01T00:00:00Z (now 20"),
        "{m}"
    );
    assert!(m.ends_with("; pinned certificate)"), "{m}");
    server.join().unwrap();
}

#[test]
fn pinned_mismatch_is_rejected() {
    // Same names and subject, another key: not the configured certificate.
    let configured = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let presented = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let (addr, server) = serve(
        server_config(&presented, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    let m = cert_error(fetch(
        &client_config(&[&configured.pem]),
        "kbs.example",
        addr,
    ));
    assert!(m.starts_with("pinned certificate does not match"), "{m}");
    server.join().unwrap();
}

#[test]
fn a_ca_bundle_and_a_pin_together() {
    let ca = Ca::new(Key::P384, "bundle CA");
    let pinned = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let config = client_config(&[&format!("{}{}", ca.pem, pinned.pem)]);
    let leaf = ca.issue(Key::P256, &["kbs.example"], Validity::Now);
    for chain in [&leaf, &pinned] {
        let (addr, server) = serve(
            server_config(chain, Ver::Both),
            Behave::Serve { body_len: 5 },
            1,
        );
        ok_body(&fetch(&config, "kbs.example", addr).unwrap().1, 5);
        server.join().unwrap();
    }
}

#[test]
fn invalid_clock_is_an_error_never_a_bypass() {
    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let trust = TlsTrust::from_pem(cert.pem.as_bytes()).unwrap();
    fn none() -> Option<rustls::pki_types::UnixTime> {
        None
    }
    fn epoch() -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(5),
        ))
    }
    for (clock, want) in [
        (none as fn() -> _, "the system clock is unavailable"),
        (
            epoch,
            "the system clock reads 1970-01-01T00:00:05Z, before 2026-12-01T00:00:00Z",
        ),
    ] {
        let config = TlsClientConfig::new(&trust, rng, clock).unwrap();
        let (addr, server) = serve(
            server_config(&cert, Ver::Both),
            Behave::Serve { body_len: 5 },
            1,
        );
        match fetch(&config, "kbs.example", addr) {
            Err(TlsError::Clock(m)) => assert!(m.starts_with(want), "{m}"),
            other => panic!("{:?}", other.map(|(_, o)| o)),
        }
        server.join().unwrap();
    }
}

#[test]
fn server_drops_mid_handshake() {
    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let (addr, server) = serve(server_config(&cert, Ver::Both), Behave::DropMidHandshake, 1);
    match fetch(&client_config(&[&cert.pem]), "kbs.example", addr) {
        Err(e @ TlsError::Io(_)) => {
            assert!(e.is_transient());
            assert!(
                e.to_string()
                    .contains("closed the connection during the handshake")
                    || e.to_string().contains("reset"),
                "{e}"
            );
        }
        other => panic!("{:?}", other.map(|(_, o)| o)),
    }
    server.join().unwrap();
}

#[test]
fn server_answers_garbage() {
    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let (addr, server) = serve(server_config(&cert, Ver::Both), Behave::Garbage, 1);
    match fetch(&client_config(&[&cert.pem]), "kbs.example", addr) {
        Err(e @ TlsError::Protocol { .. }) => assert!(e.is_transient(), "{e}"),
        other => panic!("{:?}", other.map(|(_, o)| o)),
    }
    server.join().unwrap();
}

#[test]
fn truncated_response_is_an_error() {
    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    for ver in [Ver::Tls13, Ver::Tls12] {
        let (addr, server) = serve(server_config(&cert, ver), Behave::Truncate, 1);
        match fetch(&client_config(&[&cert.pem]), "kbs.example", addr) {
            Err(e @ TlsError::Io(_)) => {
                assert!(e.is_transient());
                assert!(e.to_string().contains("without close_notify"), "{e}");
            }
            other => panic!("{:?}", other.map(|(_, o)| o)),
        }
        server.join().unwrap();
    }
}

#[test]
fn trust_and_config_errors() {
    assert!(matches!(TlsTrust::from_pem(b""), Err(TlsError::Config(_))));
    assert!(matches!(
        TlsTrust::from_pem(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
        ),
        Err(TlsError::Config(_))
    ));
    let junk = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    match TlsTrust::from_pem(junk.as_bytes()) {
        Err(TlsError::Config(m)) => assert!(m.contains("certificate 1 of the PEM"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A malformed PEM's text is not quoted back (it could be a key file's line).
    match TlsTrust::from_pem(b"-----BEGIN CERTIFICATE-----\nMIIBSECRETSECRET\n") {
        Err(TlsError::Config(m)) => {
            assert_eq!(m, "certificate 1 of the PEM: a section has no END line");
        }
        other => panic!("{other:?}"),
    }
    let empty = TlsTrust::new();
    assert!(empty.is_empty());
    assert!(matches!(
        TlsClientConfig::new(&empty, rng, now),
        Err(TlsError::Config(_))
    ));
    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let mut trust = TlsTrust::from_pem(cert.pem.as_bytes()).unwrap();
    assert_eq!(trust.len(), 1);
    // A bad addition adds nothing.
    assert!(
        trust
            .add_pem(format!("{}{junk}", cert.pem).as_bytes())
            .is_err()
    );
    assert_eq!(trust.len(), 1);
    let config = TlsClientConfig::new(&trust, rng, now).unwrap();
    let (addr, server) = serve(
        server_config(&cert, Ver::Both),
        Behave::Serve { body_len: 5 },
        1,
    );
    match TlsStream::connect(&config, "not a name!", tcp(addr)) {
        Err(TlsError::Config(m)) => {
            assert!(m.contains("neither a DNS name nor an IP address"), "{m}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    server.join().unwrap();
}

/// A session recorded from a real server and replayed: with fixed randomness and clock the
/// client is deterministic, so the server's bytes alone replay the session. Fed in one read
/// (the answer and close_notify arrive with the end of the handshake), a byte at a time and
/// in between, it ends the same; cut anywhere before close_notify, it is an error, never a
/// short success. (The tls_client fuzz target's seeds include two such recordings.)
#[test]
fn recorded_sessions_replay_in_any_read_size() {
    use std::os::unix::net::UnixStream;
    use std::sync::Mutex;

    fn fixed_rng(buf: &mut [u8]) -> Result<(), ()> {
        buf.fill(0x5a);
        Ok(())
    }
    fn fixed_now() -> Option<rustls::pki_types::UnixTime> {
        // 2027-01-01T00:00:00Z
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(1_798_761_600),
        ))
    }

    /// The server's socket, recording what it writes.
    struct Tee(UnixStream, Arc<Mutex<Vec<u8>>>);
    impl std::io::Read for Tee {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            std::io::Read::read(&mut self.0, b)
        }
    }
    impl std::io::Write for Tee {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let n = std::io::Write::write(&mut self.0, b)?;
            self.1.lock().unwrap().extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            std::io::Write::flush(&mut self.0)
        }
    }

    /// The client's side: a live socket or a replay in `stride`-byte reads.
    enum Side {
        Live(UnixStream),
        Replay(Vec<u8>, usize, usize),
    }
    impl embedded_io::ErrorType for Side {
        type Error = IoError;
    }
    impl embedded_io::Read for Side {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
            match self {
                Side::Live(s) => std::io::Read::read(s, buf).map_err(|e| IoError(e.kind())),
                Side::Replay(data, pos, stride) => {
                    let n = buf.len().min(*stride).min(data.len() - *pos);
                    buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                    *pos += n;
                    Ok(n)
                }
            }
        }
    }
    impl embedded_io::Write for Side {
        fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
            match self {
                Side::Live(s) => std::io::Write::write(s, buf).map_err(|e| IoError(e.kind())),
                Side::Replay(..) => Ok(buf.len()),
            }
        }
        fn flush(&mut self) -> Result<(), IoError> {
            Ok(())
        }
    }

    fn session(trust: &TlsTrust, side: Side) -> Result<Vec<u8>, TlsError> {
        use embedded_io::{Read, Write};
        let config = TlsClientConfig::new(trust, fixed_rng, fixed_now).unwrap();
        let mut tls = TlsStream::connect(&config, "kbs.example", side)?;
        tls.write_all(b"GET / HTTP/1.1\r\n\r\n")?;
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = tls.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    let cert = self_signed(Key::P256, &["kbs.example"], true, Validity::Now);
    let trust = TlsTrust::from_pem(cert.pem.as_bytes()).unwrap();
    for ver in [Ver::Tls13, Ver::Tls12] {
        let config = Arc::new(server_config(&cert, ver));
        let (client, server) = UnixStream::pair().unwrap();
        let recording = Arc::new(Mutex::new(Vec::new()));
        let tee = Tee(server, Arc::clone(&recording));
        let thread = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tee);
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            tls.conn.send_close_notify();
            tls.flush().unwrap();
        });
        let live = session(&trust, Side::Live(client)).unwrap();
        thread.join().unwrap();
        assert_eq!(live, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let data = recording.lock().unwrap().clone();
        for stride in [usize::MAX, 1, 700] {
            let replayed = session(&trust, Side::Replay(data.clone(), 0, stride));
            assert_eq!(replayed.unwrap(), live, "{ver:?}, reads of {stride}");
            for cut in (0..data.len() - 24).step_by(61) {
                match session(&trust, Side::Replay(data[..cut].to_vec(), 0, stride)) {
                    Err(e) => assert!(e.is_transient(), "{ver:?}, cut at {cut}: {e}"),
                    Ok(out) => panic!("{ver:?}, cut at {cut}: {out:?}"),
                }
            }
        }
    }
}
