//! Every fault kind, observed from a raw TCP client.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use test_kbs::{Config, Fault, FaultKind, Server, Step};

const SECRET: &str = "/kbs/v0/resource/default/mysecret/secret";

fn start(config: Config) -> Server {
    let server = Server::start(config).expect("start");
    server
        .add_resource("default/mysecret/secret", b"s3cret".to_vec())
        .unwrap();
    server
}

fn server() -> Server {
    start(Config::default())
}

/// Sends one request on a fresh connection and returns every byte until the server closes
/// (or the error that ended the read).
fn raw_exchange(server: &Server, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).map(|_| out)
}

fn auth_request() -> Vec<u8> {
    encode_request(
        "POST",
        "/kbs/v0/auth",
        &[("Content-Type", "application/json")],
        Some(AUTH_SAMPLE.as_bytes()),
    )
}

fn split_head(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((
        String::from_utf8(bytes[..end + 4].to_vec()).unwrap(),
        &bytes[end + 4..],
    ))
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn reset_then_a_retry_succeeds() {
    let server = server();
    server
        .set_faults(vec![Fault::new(Step::Auth, FaultKind::Reset).times(2)])
        .unwrap();
    for _ in 0..2 {
        let err = raw_exchange(&server, &auth_request()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    }
    let mut client = Client::connect(server.addr());
    auth(&mut client);
    let stats = server.stats();
    assert_eq!(stats.auth.requests, 3);
    assert_eq!(stats.auth.count(200), 1);
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.connections, 3);
    assert!(server.armed_faults().is_empty());
}

#[test]
fn close_mid_response() {
    let server = server();
    // A small response is cut in its head.
    server
        .add_fault(Fault::new(Step::Auth, FaultKind::CloseMidResponse).times(1))
        .unwrap();
    let bytes = raw_exchange(&server, &auth_request()).unwrap();
    assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(split_head(&bytes).is_none(), "cut inside the head");
    // The request was processed: a session exists, and the retry gets a new one.
    let mut client = Client::connect(server.addr());
    let session = auth(&mut client);

    // A JWE is cut in its body.
    let key = TeeKey::p256();
    client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &attestation(&session.nonce, &key.jwk()),
        )
        .unwrap();
    server
        .add_fault(Fault::new(Step::Resource(None), FaultKind::CloseMidResponse).times(1))
        .unwrap();
    let cookie = session.cookie_header();
    let request = encode_request("GET", SECRET, &[("Cookie", &cookie)], None);
    let bytes = raw_exchange(&server, &request).unwrap();
    let (head, body) = split_head(&bytes).expect("whole head");
    assert!(head.contains("connection: close\r\n"));
    assert!(!body.is_empty() && body.len() < content_length(&head));
    let retry = client.get(SECRET, &[("Cookie", &cookie)]).unwrap();
    assert_eq!(key.decrypt(&retry.body), b"s3cret");
}

#[test]
fn delay() {
    let server = server();
    server
        .add_fault(Fault::new(Step::Auth, FaultKind::Delay(Duration::from_millis(300))).times(1))
        .unwrap();
    let mut client = Client::connect(server.addr());
    let started = Instant::now();
    auth(&mut client);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(server.armed_faults().is_empty(), "spent after one request");
    auth(&mut client);
}

#[test]
fn server_errors_then_success() {
    let server = server();
    server
        .add_fault(Fault::new(Step::Auth, FaultKind::Status(503)).times(2))
        .unwrap();
    server
        .add_fault(Fault::new(Step::Auth, FaultKind::Status(502)).times(1))
        .unwrap();
    let mut client = Client::connect(server.addr());
    for status in [503, 503, 502] {
        let r = client.post_json("/kbs/v0/auth", &[], AUTH_SAMPLE).unwrap();
        assert_eq!(r.status, status);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(
            r.text()
                .starts_with(&format!("test-kbs injected fault: {status}"))
        );
        assert_eq!(r.header_count("set-cookie"), 0, "not processed");
    }
    auth(&mut client);
    let stats = server.stats();
    assert_eq!(stats.connections, 1, "5xx keep the connection");
    assert_eq!(
        (
            stats.auth.count(503),
            stats.auth.count(502),
            stats.auth.count(200)
        ),
        (2, 1, 1)
    );
}

#[test]
fn truncated_body() {
    for chunked in [false, true] {
        let server = start(Config {
            chunked,
            ..Config::default()
        });
        server
            .add_fault(Fault::new(Step::Auth, FaultKind::TruncatedBody).times(1))
            .unwrap();
        let bytes = raw_exchange(&server, &auth_request()).unwrap();
        let (head, body) = split_head(&bytes).expect("whole head");
        if chunked {
            assert!(head.contains("transfer-encoding: chunked"));
            assert!(!body.ends_with(b"0\r\n\r\n"), "no last chunk");
        } else {
            assert_eq!(content_length(&head), 74);
            assert_eq!(body.len(), 37);
        }
        let mut client = Client::connect(server.addr());
        server
            .add_fault(Fault::new(Step::Auth, FaultKind::TruncatedBody).times(1))
            .unwrap();
        client.send_raw(&auth_request()).unwrap();
        let err = client.read_response().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }
}

#[test]
fn garbage_body() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    server
        .add_fault(Fault::new(Step::Resource(None), FaultKind::GarbageBody).times(1))
        .unwrap();
    let cookie = session.cookie_header();
    let r = client.get(SECRET, &[("Cookie", &cookie)]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    let r = client.get(SECRET, &[("Cookie", &cookie)]).unwrap();
    assert_eq!(key.decrypt(&r.body), b"s3cret");
}

#[test]
fn oversize_body() {
    for chunked in [false, true] {
        let server = start(Config {
            chunked,
            ..Config::default()
        });
        server
            .add_fault(Fault::new(Step::Auth, FaultKind::Oversize(1 << 20)).times(1))
            .unwrap();
        let mut client = Client::connect(server.addr());
        let r = client.post_json("/kbs/v0/auth", &[], AUTH_SAMPLE).unwrap();
        assert_eq!((r.status, r.chunked), (200, chunked));
        assert_eq!(r.body.len(), 1 << 20);
        assert!(r.body.starts_with(br#"{"token":"AAAA"#));
        assert!(r.body.ends_with(b"AAAA"));
        auth(&mut client);
    }
    // A client that stops reading a 64 MiB body and hangs up does not hurt the server.
    let server = server();
    server
        .add_fault("resource:oversize:64M:1".parse().unwrap())
        .unwrap();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(&encode_request("GET", SECRET, &[], None))
        .unwrap();
    let mut first = vec![0u8; 256 << 10];
    stream.read_exact(&mut first).unwrap();
    let (head, _) = split_head(&first).unwrap();
    assert!(head.contains(&format!("content-length: {}\r\n", 64 << 20)));
    drop(stream);
    let mut client = Client::connect(server.addr());
    assert_eq!(client.get("/healthz", &[]).unwrap().status, 200);
    let started = Instant::now();
    server.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn expire_session_at_each_step() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());

    // At resource: the cookie no longer works, a Bearer token still does.
    let (session, token) = attest(&mut client, &key);
    server
        .add_fault(Fault::new(Step::Resource(None), FaultKind::ExpireSession).times(1))
        .unwrap();
    let cookie = session.cookie_header();
    let r = client.get(SECRET, &[("Cookie", &cookie)]).unwrap();
    assert_error(&r, 401, "TokenNotFound", "Attestation Token not found");
    let r = client
        .get(
            SECRET,
            &[
                ("Cookie", &cookie),
                ("Authorization", &format!("Bearer {token}")),
            ],
        )
        .unwrap();
    assert_eq!(key.decrypt(&r.body), b"s3cret");

    // At attest: the attestation fails.
    let session = auth(&mut client);
    server
        .add_fault(Fault::new(Step::Attest, FaultKind::ExpireSession).times(1))
        .unwrap();
    let body = attestation(&session.nonce, &key.jwk());
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &body,
        )
        .unwrap();
    assert_error(
        &r,
        401,
        "AttestationError",
        "Attestation error: RCAR handshake Attest failed",
    );

    // At auth: the challenge comes back, but its session is already gone.
    server
        .add_fault(Fault::new(Step::Auth, FaultKind::ExpireSession).times(1))
        .unwrap();
    let session = auth(&mut client);
    let body = attestation(&session.nonce, &key.jwk());
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &body,
        )
        .unwrap();
    assert_eq!(r.status, 401);
    let (_, _) = attest(&mut client, &key);
}

#[test]
fn invalid_tokens() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, token) = attest(&mut client, &key);
    server
        .add_fault(Fault::new(Step::Resource(None), FaultKind::InvalidToken).times(1))
        .unwrap();
    let cookie = session.cookie_header();
    let r = client.get(SECRET, &[("Cookie", &cookie)]).unwrap();
    assert_error(&r, 401, "TokenVerifierError", "Token Verifier error");
    assert_eq!(
        client.get(SECRET, &[("Cookie", &cookie)]).unwrap().status,
        200
    );

    // At attest: the token issued has expired already, by cookie and by Bearer.
    server
        .add_fault("attest:invalid-token:1".parse().unwrap())
        .unwrap();
    let (session, expired) = attest(&mut client, &key);
    let c = claims(&expired);
    assert!(c["exp"].as_u64().unwrap() < c["iat"].as_u64().unwrap());
    for header in [
        ("Cookie", session.cookie_header()),
        ("Authorization", format!("Bearer {expired}")),
    ] {
        let r = client.get(SECRET, &[(header.0, &header.1)]).unwrap();
        assert_error(&r, 401, "TokenVerifierError", "Token Verifier error");
    }
    let r = client
        .get(SECRET, &[("Authorization", &format!("Bearer {token}"))])
        .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn faults_can_target_one_resource_and_come_from_the_config() {
    let server = start(Config {
        faults: vec!["resource=default/keys/b:status:500:2".parse().unwrap()],
        ..Config::default()
    });
    server
        .add_resource("default/keys/a", b"a".to_vec())
        .unwrap();
    server
        .add_resource("default/keys/b", b"b".to_vec())
        .unwrap();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    let cookie = session.cookie_header();
    let mut get = |tag: &str| {
        client
            .get(
                &format!("/kbs/v0/resource/default/keys/{tag}"),
                &[("Cookie", &cookie)],
            )
            .unwrap()
    };
    assert_eq!(get("a").status, 200);
    assert_eq!(get("b").status, 500);
    assert_eq!(
        server.armed_faults(),
        vec!["resource=default/keys/b:status:500:1".parse().unwrap()]
    );
    assert_eq!(get("a").status, 200);
    assert_eq!(get("b").status, 500);
    assert_eq!(key.decrypt(&get("b").body), b"b");
    let stats = server.stats();
    assert_eq!(
        (stats.resource.count(200), stats.resource.count(500)),
        (3, 2)
    );
    assert_eq!(stats.faults_injected, 2);

    // Unlimited until cleared.
    server
        .set_faults(vec![Fault::new(
            Step::Resource(None),
            FaultKind::Status(503),
        )])
        .unwrap();
    for _ in 0..3 {
        assert_eq!(get("a").status, 503);
    }
    server.clear_faults();
    assert_eq!(get("a").status, 200);
    assert!(
        server
            .add_fault(Fault::new(Step::Auth, FaultKind::Status(404)))
            .is_err()
    );
    assert!(
        Server::start(Config {
            faults: vec![Fault::new(Step::Auth, FaultKind::InvalidToken)],
            ..Config::default()
        })
        .is_err()
    );
}
