//! HTTP/1.1 behaviour: keep-alive, chunked responses, closing, limits, timeouts.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use test_kbs::{Config, Server};

const SECRET: &str = "/kbs/v0/resource/default/mysecret/secret";

fn start(config: Config) -> Server {
    let server = Server::start(config).expect("start");
    server
        .add_resource("default/mysecret/secret", b"s3cret".to_vec())
        .unwrap();
    server
}

#[test]
fn keep_alive_reuses_one_connection_and_pipelines() {
    let server = start(Config::default());
    let mut client = Client::connect(server.addr());
    for _ in 0..3 {
        assert_eq!(client.get("/healthz", &[]).unwrap().status, 200);
    }
    // Two requests in one write: two responses, in order.
    let mut both = encode_request("GET", "/healthz", &[], None);
    both.extend(encode_request("GET", "/nope", &[], None));
    client.send_raw(&both).unwrap();
    assert_eq!(client.read_response().unwrap().status, 200);
    assert_eq!(client.read_response().unwrap().status, 404);
    let stats = server.stats();
    assert_eq!((stats.connections, stats.requests), (1, 5));
}

#[test]
fn chunked_mode_chunks_every_response() {
    let server = start(Config {
        chunked: true,
        ..Config::default()
    });
    let key = TeeKey::rsa();
    let mut client = Client::connect(server.addr());
    let auth_response = client.post_json("/kbs/v0/auth", &[], AUTH_SAMPLE).unwrap();
    assert!(auth_response.chunked);
    assert_eq!(auth_response.header("content-length"), None);
    assert_eq!(auth_response.header("transfer-encoding"), Some("chunked"));
    let (session, _) = attest(&mut client, &key);
    let r = client
        .get(SECRET, &[("Cookie", &session.cookie_header())])
        .unwrap();
    assert!(
        r.chunked && r.body.len() > 72,
        "four chunks or more: 1, 7, 64, ..."
    );
    assert_eq!(key.decrypt(&r.body), b"s3cret");
    let error = client.get("/kbs/v0/nosuch", &[]).unwrap();
    assert!(error.chunked);
    assert_error(&error, 404, "PluginNotFound", "Plugin nosuch not found");
    let health = client.get("/healthz", &[]).unwrap();
    assert!(health.chunked && health.body.is_empty());
    assert_eq!(server.stats().connections, 1);

    // The exact wire format of a small body: 1-byte chunk, then up to 7, then 64, ...
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.write_all(b"GET /kbs/v0/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut wire = Vec::new();
    raw.read_to_end(&mut wire).unwrap();
    let wire = String::from_utf8(wire).unwrap();
    let body = wire.split_once("\r\n\r\n").unwrap().1;
    assert!(
        body.starts_with("1\r\n{\r\n7\r\n\"type\":\r\n40\r\n"),
        "{body:?}"
    );
    assert!(body.ends_with("\r\n0\r\n\r\n"));
}

#[test]
fn close_after_response_mode() {
    let server = start(Config {
        close_after_response: true,
        ..Config::default()
    });
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let r = client.post_json("/kbs/v0/auth", &[], AUTH_SAMPLE).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(client.closed_within(Duration::from_secs(5)));
    // A client that reconnects for each request still completes the protocol.
    let session = auth(&mut Client::connect(server.addr()));
    let mut c = Client::connect(server.addr());
    let r = c
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &attestation(&session.nonce, &key.jwk()),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let r = Client::connect(server.addr())
        .get(SECRET, &[("Cookie", &session.cookie_header())])
        .unwrap();
    assert_eq!(key.decrypt(&r.body), b"s3cret");
    assert_eq!(server.stats().connections, 4);
}

#[test]
fn client_side_close_and_http_1_0() {
    let server = start(Config::default());
    let mut client = Client::connect(server.addr());
    let r = client
        .get("/healthz", &[("Connection", "keep-alive, close")])
        .unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(client.closed_within(Duration::from_secs(5)));

    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut wire = Vec::new();
    raw.read_to_end(&mut wire).unwrap();
    let wire = String::from_utf8(wire).unwrap();
    assert!(wire.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n"));
}

/// A response without a body, then the server closes.
fn bare_status_then_close(client: &mut Client, status: u16) {
    let r = client.read_response().unwrap();
    assert_eq!(r.status, status);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(client.closed_within(Duration::from_secs(5)));
}

#[test]
fn request_limits() {
    let server = start(Config::default());
    // Body over 2 MiB: 413 without a JSON body, before the body is sent.
    let mut client = Client::connect(server.addr());
    client
        .send_raw(b"POST /kbs/v0/auth HTTP/1.1\r\nHost: h\r\nContent-Length: 2097153\r\n\r\n")
        .unwrap();
    bare_status_then_close(&mut client, 413);
    // Exactly 2 MiB is read (and then rejected by the protocol, not the transport).
    let mut client = Client::connect(server.addr());
    let big = vec![b' '; 2 << 20];
    let r = client
        .request("POST", "/kbs/v0/auth", &[], Some(&big))
        .unwrap();
    assert_eq!(r.status, 401);
    // Head over 64 KiB: 431.
    let mut client = Client::connect(server.addr());
    let long = "a".repeat(70 << 10);
    client
        .send_raw(format!("GET /healthz HTTP/1.1\r\nX-Long: {long}\r\n\r\n").as_bytes())
        .unwrap();
    bare_status_then_close(&mut client, 431);
    // Not HTTP: 400. Chunked request bodies: 501. Conflicting lengths: 400.
    for (raw, status) in [
        (&b"\x16\x03\x01\x02\x00 hello TLS\r\n\r\n"[..], 400),
        (
            b"POST /kbs/v0/auth HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            b"POST /kbs/v0/auth HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
        ),
        (
            b"POST /kbs/v0/auth HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            400,
        ),
    ] {
        let mut client = Client::connect(server.addr());
        client.send_raw(raw).unwrap();
        bare_status_then_close(&mut client, status);
    }
}

#[test]
fn idle_and_slow_clients_time_out() {
    let server = start(Config {
        keep_alive: Duration::from_millis(300),
        ..Config::default()
    });
    // Idle keep-alive connection: closed quietly.
    let mut client = Client::connect(server.addr());
    assert_eq!(client.get("/healthz", &[]).unwrap().status, 200);
    assert!(client.closed_within(Duration::from_secs(5)));
    // A request that stops halfway: 408.
    let mut client = Client::connect(server.addr());
    client
        .send_raw(b"POST /kbs/v0/auth HTTP/1.1\r\nHost")
        .unwrap();
    bare_status_then_close(&mut client, 408);
    let mut client = Client::connect(server.addr());
    client
        .send_raw(b"POST /kbs/v0/auth HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"ver")
        .unwrap();
    bare_status_then_close(&mut client, 408);
}

#[test]
fn expect_100_continue() {
    let server = start(Config::default());
    let mut client = Client::connect(server.addr());
    client
        .send_raw(
            format!(
                "POST /kbs/v0/auth HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
                AUTH_SAMPLE.len()
            )
            .as_bytes(),
        )
        .unwrap();
    let mut interim = [0u8; 25];
    client.stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.send_raw(AUTH_SAMPLE.as_bytes()).unwrap();
    assert_eq!(client.read_response().unwrap().status, 200);
}

#[test]
fn health_and_paths_outside_the_api() {
    let server = start(Config::default());
    let mut client = Client::connect(server.addr());
    let health = client.get("/healthz", &[]).unwrap();
    assert_eq!((health.status, health.body.len()), (200, 0));
    assert_eq!(
        client
            .request("POST", "/healthz", &[], Some(b""))
            .unwrap()
            .status,
        405
    );
    for path in ["/", "/kbs/v0", "/kbs/v1/auth", "/healthz/x"] {
        let r = client.get(path, &[]).unwrap();
        assert_eq!((r.status, r.body.len()), (404, 0), "{path}");
    }
    assert_eq!(server.url(), format!("http://{}", server.addr()));
}

#[test]
fn shutdown_closes_connections_and_the_listener() {
    let server = start(Config::default());
    let addr = server.addr();
    let mut idle = Client::connect(addr);
    assert_eq!(idle.get("/healthz", &[]).unwrap().status, 200);
    let started = Instant::now();
    server.shutdown();
    assert!(idle.closed_within(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(TcpStream::connect(addr).is_err());
}
