//! The server's bounds through the real `sealgate serve` (the guest binary), real sockets
//! and the real `ttrpc` client, against the test KBS: the loop serves everyone while some
//! clients misbehave.
//!
//! - pipelined requests whose replies exceed the queue mark (`OUT_HIGH`, 1 MiB) are all
//!   answered, on ttrpc and REST (the loop goes back to the buffered requests when the
//!   queue drains; no new input arrives to wake it);
//! - a client that sends many requests and never reads its replies stalls nobody else;
//! - the connection cap: more connections than `MAX_CONNECTIONS` (128) are closed at once,
//!   an existing kata-style connection keeps getting answers, and once some end, new ones
//!   are served;
//! - a low descriptor limit (`prlimit --nofile=40`) lowers the connection cap so that the
//!   hub keeps descriptors of its own: it never runs out in `accept`, and still reaches the
//!   KBS;
//! - `timeout_nano`: a request whose KBS call outlives it (the KBS hangs) gets
//!   `DEADLINE_EXCEEDED`, and the hub's calls for it stop there, so the next caller is
//!   served.
//!
//! No assertion is on time: every wait is a wide deadline (a read timeout of 60 s) that only
//! turns a stall into a failure instead of a hang.
//!
//! Elsewhere: a half-sent frame and a half-sent HTTP head held open (guest_api.rs,
//! rest_api.rs), an oversize frame (guest_api.rs), an oversize head and body (rest_api.rs).

mod common;

use common::guest::*;
use common::*;
use prost::Message;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The server's connection cap (`serve::MAX_CONNECTIONS`).
const MAX_CONNECTIONS: usize = 128;
/// A resource of 300 KiB: four replies pass the 1 MiB mark.
const BIG: usize = 300 << 10;
const BIG_PATH: &str = "default/app/big";

fn big_value() -> Vec<u8> {
    (0..BIG).map(|i| b'a' + (i % 26) as u8).collect()
}

fn world(tag: &str) -> World {
    let w = World::new(tag);
    w.kbs.add_resource(BIG_PATH, big_value()).unwrap();
    w.secret("default/app/small", "guest-limits-small-61d0");
    w
}

/// Reads one whole HTTP/1.1 response with a `Content-Length` body: (status, body).
fn read_http(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, body)
}

/// A ttrpc connection (the CDH socket) and a REST connection, each of which sent `n`
/// requests for the big resource in one write (ttrpc stream ids 1, 3, ...; HTTP/1.1
/// pipelining), its replies not read yet.
fn pipelined(serve: &Serve, n: u32) -> (UnixStream, TcpStream) {
    let uri = format!("kbs:///{BIG_PATH}");
    let mut raw = UnixStream::connect(&serve.cdh).unwrap();
    let all: Vec<u8> = (0..n)
        .flat_map(|i| get_resource_frame(2 * i + 1, &uri))
        .collect();
    raw.write_all(&all).unwrap();
    let mut rest = TcpStream::connect(serve.rest).unwrap();
    let get = format!("GET /cdh/resource/{BIG_PATH} HTTP/1.1\r\nHost: x\r\n\r\n");
    rest.write_all(get.repeat(n as usize).as_bytes()).unwrap();
    (raw, rest)
}

/// Reads the `n` replies on each of [`pipelined`]'s connections (60 s read timeouts): in
/// order, each the big resource.
fn expect_pipelined((raw, rest): &mut (UnixStream, TcpStream), n: u32) {
    for i in 0..n {
        let (id, kind, p) = read_frame(raw);
        assert_eq!((id, kind), (2 * i + 1, 2));
        assert_eq!(raw_status(&p).0, 0, "{:?}", raw_status(&p));
        let r = pb::GetResourceResponse::decode(&raw_payload(&p)[..]).unwrap();
        assert_eq!(r.resource.len(), BIG);
    }
    rest.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    for _ in 0..n {
        let (status, body) = read_http(rest);
        assert_eq!(status, 200);
        assert_eq!(body.len(), BIG);
    }
}

#[test]
fn pipelined_replies_over_the_mark_are_all_answered() {
    let w = world("limits-pipeline");
    let serve = Serve::start(&w, &w.url(), 30);
    // 16 requests on each API in one write (4.8 MiB of replies each), then their replies.
    let mut both = pipelined(&serve, 16);
    expect_pipelined(&mut both, 16);
    assert_eq!(w.kbs.stats().auth.requests, 1);
}

#[test]
fn a_client_that_never_reads_stalls_nobody() {
    let w = world("limits-noread");
    let serve = Serve::start(&w, &w.url(), 30);
    // A ttrpc client and a REST client each ask for 40 big resources and never read.
    let mut hogs = pipelined(&serve, 40);

    // Everyone else is served, over and over, on both APIs.
    let cdh = serve.cdh();
    for _ in 0..5 {
        assert_eq!(
            get_resource(&cdh, "kbs:///default/app/small").unwrap(),
            b"guest-limits-small-61d0"
        );
        let (status, body) = serve.rest_get("/cdh/resource/default/app/small");
        assert_eq!((status, body.as_str()), (200, "guest-limits-small-61d0"));
    }
    // The hogs were not read past their queue mark: at most a few of their 40 requests
    // each reached the KBS (40 + 40 + 10 if they had been).
    let fetched = w.kbs.stats().resource.requests;
    assert!(fetched < 40, "{fetched} resource requests reached the KBS");

    // They get their replies once they read.
    expect_pipelined(&mut hogs, 40);
}

/// Whether the server closed `s` without an answer: EOF or a reset.
fn closed_by_server(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("reading a refused connection: {e}"),
    }
}

/// A request on a new raw connection: answered (an unknown service's status), or closed.
fn try_new_connection(serve: &Serve) -> bool {
    let mut s = UnixStream::connect(&serve.cdh).unwrap();
    let req = frame(1, 1, &raw_request("api.NoSuchService", "X", b""));
    if s.write_all(&req).is_err() {
        return false;
    }
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut h = [0u8; 10];
    match s.read_exact(&mut h) {
        Ok(()) => true,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            false
        }
        Err(e) => panic!("{e}"),
    }
}

/// Opens `n` connections to the CDH socket and has each answered once, so each is surely
/// accepted; they are held open.
fn fill(serve: &Serve, n: usize) -> Vec<UnixStream> {
    (0..n)
        .map(|i| {
            let mut s = UnixStream::connect(&serve.cdh).unwrap();
            let (id, _, p) = raw_exchange(
                &mut s,
                &frame(1, 1, &raw_request("api.NoSuchService", "X", b"")),
            );
            assert_eq!((id, raw_status(&p).0), (1, 3), "connection {i}");
            s
        })
        .collect()
}

/// `n` more connections are closed at once, without an answer.
fn refused(serve: &Serve, n: usize) {
    for _ in 0..n {
        let mut s = UnixStream::connect(&serve.cdh).unwrap();
        let _ = s.write_all(&frame(1, 1, &raw_request("api.NoSuchService", "X", b"")));
        assert!(
            closed_by_server(&mut s),
            "a connection over the cap was served"
        );
    }
}

#[test]
fn the_connection_cap_closes_extra_connections_and_keeps_serving() {
    let w = world("limits-cap");
    let mut serve = Serve::start(&w, &w.url(), 30);
    // kata's one long-lived connection.
    let kata = serve.cdh();
    assert_eq!(
        get_resource(&kata, "kbs:///default/app/small").unwrap(),
        b"guest-limits-small-61d0"
    );
    let mut held = fill(&serve, MAX_CONNECTIONS - 1);
    refused(&serve, 5);
    // REST shares the cap.
    let mut r = TcpStream::connect(serve.rest).unwrap();
    r.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = r.write_all(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut b = Vec::new();
    match r.read_to_end(&mut b) {
        Ok(_) => assert!(b.is_empty(), "{}", String::from_utf8_lossy(&b)),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    // kata's connection is still answered.
    assert_eq!(
        get_resource(&kata, "kbs:///default/app/small").unwrap(),
        b"guest-limits-small-61d0"
    );
    assert!(
        serve
            .log_text()
            .contains("connections open: closing new ones until some end"),
        "{}",
        serve.log_text()
    );

    // Some end: new connections are served again (once the loop saw them close).
    held.truncate(MAX_CONNECTIONS - 11);
    let end = Instant::now() + Duration::from_secs(30);
    while !try_new_connection(&serve) {
        assert!(
            Instant::now() < end,
            "no new connection served after 10 ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = serve.rest_get("/cdh/resource/default/app/small");
    assert_eq!((status, body.as_str()), (200, "guest-limits-small-61d0"));
    assert!(serve.alive());
    drop(held);
}

#[test]
fn a_low_descriptor_limit_lowers_the_cap_and_leaves_the_hub_room() {
    // prlimit --nofile=40: 40 - FD_RESERVE (24) = 16 connections at once.
    const CAP: usize = 16;
    let w = world("limits-nofile");
    let mut serve = Serve::start_under(
        &w,
        &["prlimit", "--nofile=40", "--"],
        &["--kbs", &w.url(), "--tee", "sample", "--deadline", "30"],
    );
    assert!(
        serve
            .log_text()
            .contains("the descriptor limit (40) allows 16 connections at once"),
        "{}",
        serve.log_text()
    );
    let kata = serve.cdh();
    assert_eq!(
        get_resource(&kata, "kbs:///default/app/small").unwrap(),
        b"guest-limits-small-61d0"
    );
    let held = fill(&serve, CAP - 1);
    refused(&serve, 20);
    // The hub still has descriptors of its own: kata gets a resource it has not fetched.
    assert_eq!(
        get_resource(&kata, "kbs:///default/app/big").unwrap(),
        big_value()
    );
    let log = serve.log_text();
    assert!(!log.contains("accept failed"), "{log}");
    assert!(
        log.contains("16 connections open: closing new ones"),
        "{log}"
    );
    drop(held);
    assert!(serve.alive());
}

#[test]
fn timeout_nano_bounds_the_kbs_call_and_answers_deadline_exceeded() {
    let w = world("limits-deadline");
    w.secret("default/app/slow", "guest-limits-slow-2b7e");
    w.kbs
        .add_fault(Fault::new(
            Step::Resource(Some("default/app/slow".into())),
            FaultKind::Hang,
        ))
        .unwrap();
    // The hub's own deadline (30 s) is far longer than the caller's (1 s).
    let serve = Serve::start(&w, &w.url(), 30);
    let kata = serve.cdh();
    get_resource(&kata, "kbs:///default/app/small").unwrap();

    let mut raw = UnixStream::connect(&serve.cdh).unwrap();
    let slow =
        |id, timeout_nano| get_resource_frame_timeout(id, "kbs:///default/app/slow", timeout_nano);
    let (id, _, p) = raw_exchange(&mut raw, &slow(1, 1_000_000_000));
    assert_eq!(id, 1);
    assert_eq!(
        raw_status(&p),
        (4, "timeout".to_string()),
        "{}",
        serve.log_text()
    );
    // The hub stopped at the caller's deadline, not its own 30 s.
    let log = serve.log_text();
    assert!(!log.contains("deadline of 30 s"), "{log}");
    // The same connection and kata's are served right after.
    let (id, _, p) = raw_exchange(
        &mut raw,
        &frame(3, 1, &raw_request("api.NoSuchService", "X", b"")),
    );
    assert_eq!((id, raw_status(&p).0), (3, 3));
    assert_eq!(
        get_resource(&kata, "kbs:///default/app/small").unwrap(),
        b"guest-limits-small-61d0"
    );
    // A timeout the call fits in changes nothing.
    w.kbs.clear_faults();
    let (_, _, p) = raw_exchange(&mut raw, &slow(5, 20_000_000_000));
    assert_eq!(raw_status(&p).0, 0, "{:?}", raw_status(&p));
    let r = pb::GetResourceResponse::decode(&raw_payload(&p)[..]).unwrap();
    assert_eq!(r.resource, b"guest-limits-slow-2b7e");
}
