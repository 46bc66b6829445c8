//! Malformed input never panics a server thread: mutated requests of every kind, from a
//! deterministic generator, while a panic hook watches.

mod common;

use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use test_kbs::{Config, Server};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let i = if out.is_empty() {
                0
            } else {
                self.below(out.len())
            };
            match self.below(5) {
                0 if !out.is_empty() => out[i] = self.next() as u8,
                1 => {
                    let specials = b"\"{}[]:,\\\x00\xff0e";
                    out.insert(i, specials[self.below(specials.len())]);
                }
                2 if !out.is_empty() => {
                    out.remove(i);
                }
                3 => out.truncate(i),
                _ => {
                    let j = self.below(out.len().max(1));
                    let copy = out[j.min(i)..j.max(i)].to_vec();
                    out.splice(i..i, copy);
                }
            }
        }
        out
    }
}

#[test]
fn mutated_requests_never_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let server = Server::start(Config {
        keep_alive: Duration::from_millis(200),
        ..Config::default()
    })
    .unwrap();
    server
        .add_resource("default/mysecret/secret", b"s3cret".to_vec())
        .unwrap();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let session = auth(&mut client);
    let good_attest = attestation(&session.nonce, &key.jwk());
    let (attested, token) = attest(&mut client, &key);
    let cookie = attested.cookie_header();
    let bearer = format!("Bearer {token}");

    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    for round in 0..1500 {
        let (method, path, headers, body): (&str, String, Vec<(String, String)>, Vec<u8>) =
            match round % 5 {
                0 => (
                    "POST",
                    "/kbs/v0/auth".into(),
                    vec![],
                    rng.mutate(AUTH_SAMPLE.as_bytes()),
                ),
                1 => (
                    "POST",
                    "/kbs/v0/attest".into(),
                    vec![("Cookie".into(), session.cookie_header())],
                    rng.mutate(good_attest.as_bytes()),
                ),
                2 => (
                    "GET",
                    String::from_utf8_lossy(
                        &rng.mutate(b"/kbs/v0/resource/default/mysecret/secret"),
                    )
                    .replace(['\r', '\n', ' '], "")
                    .to_string(),
                    vec![("Cookie".into(), cookie.clone())],
                    vec![],
                ),
                3 => (
                    "GET",
                    "/kbs/v0/resource/default/mysecret/secret".into(),
                    vec![(
                        "Authorization".into(),
                        String::from_utf8_lossy(&rng.mutate(bearer.as_bytes()))
                            .replace(['\r', '\n'], "")
                            .to_string(),
                    )],
                    vec![],
                ),
                _ => (
                    "GET",
                    "/kbs/v0/resource/default/mysecret/secret".into(),
                    vec![(
                        "Cookie".into(),
                        String::from_utf8_lossy(&rng.mutate(cookie.as_bytes()))
                            .replace(['\r', '\n'], "")
                            .to_string(),
                    )],
                    vec![],
                ),
            };
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (method == "POST").then_some(body.as_slice());
        match client.request(method, &path, &headers, body) {
            Ok(r) => assert!(matches!(r.status, 200 | 400 | 401 | 404), "{}", r.status),
            Err(_) => client = Client::connect(server.addr()),
        }
    }
    // Raw garbage on fresh connections.
    for _ in 0..200 {
        let mut c = Client::connect(server.addr());
        let raw = rng.mutate(&encode_request(
            "POST",
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            Some(good_attest.as_bytes()),
        ));
        let _ = c.send_raw(&raw);
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        let _ = c.read_to_close();
    }
    assert_eq!(
        Client::connect(server.addr())
            .get("/healthz", &[])
            .unwrap()
            .status,
        200
    );
    drop(server);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a server thread panicked");
}
