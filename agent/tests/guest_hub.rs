//! The hub's one shared KBS session through the real server: `sealgate serve` (the guest
//! binary) with its AA and CDH sockets and the REST port, called with the real `ttrpc`
//! crate (0.9.0, kata's) and plain HTTP, against the test KBS on loopback.
//!
//! - 100 concurrent callers, each on its own connection, cost one attestation (the test KBS
//!   counts one `/kbs/v0/auth`);
//! - the KBS down, then up again: calls fail with a status that says so, then succeed;
//! - an expired token leads to one new attestation, before the KBS refuses it; a token the
//!   KBS refuses (401) leads to one new attestation and the caller is served;
//! - a denied resource gets each API's status (CDH ttrpc `INTERNAL "[CDH] [ERROR]: ..."`
//!   naming the denial, AA `GetToken` upstream's fixed `INTERNAL` text when the attestation
//!   is refused, REST `500` with the error text), and the server keeps serving.

mod common;

use common::guest::*;
use common::*;
use prost::Message;
use sealgate_core::sealed::{self, JsonObject, Secret, SigningJwk};
use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const SECRET: &str = "guest-hub-secret-3f7a";

/// A signing key whose public JWK the KBS holds at `default/keys/signer`.
fn signer(kbs: &Server) -> SigningJwk {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rng = sealgate_core::rng::FillRng(move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    });
    let key = SigningJwk::generate(&mut rng);
    kbs.add_resource(
        "default/keys/signer",
        key.public()
            .to_jwk_json("kbs:///default/keys/signer")
            .into_bytes(),
    )
    .unwrap();
    key
}

/// A vault secret naming `uri`, signed by `key` (`sealed.` JWS).
fn seal(key: &SigningJwk, uri: &str) -> String {
    let secret = Secret::vault(
        uri.into(),
        "kbs".into(),
        JsonObject::new(),
        JsonObject::new(),
    );
    sealed::seal(&secret, key, "kbs:///default/keys/signer").unwrap()
}

fn assert_no_secret_in_log(serve: &Serve) {
    let log = serve.log_text();
    assert!(!log.contains(SECRET), "the secret reached the log:\n{log}");
}

#[test]
fn a_hundred_concurrent_callers_cost_one_attestation() {
    let w = World::new("hub-100");
    w.secret("default/app/secret", SECRET);
    let signer = signer(&w.kbs);
    let sealed = seal(&signer, "kbs:///default/app/secret");
    let serve = Serve::start(&w, &w.url(), 30);

    // 100 callers, each on its own connection (CDH and AA sockets, and REST), released
    // together, while the hub has not attested yet.
    let go = Arc::new(Barrier::new(100));
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let go = go.clone();
            // One connection per caller (100 in all: under the server's 128).
            let cdh = (i % 4 < 2).then(|| serve.cdh());
            let aa = (i % 4 == 2).then(|| serve.aa());
            let rest = serve.rest;
            let sealed = sealed.clone();
            std::thread::spawn(move || {
                go.wait();
                match i % 4 {
                    0 => get_resource(cdh.as_ref().unwrap(), "kbs:///default/app/secret").unwrap(),
                    1 => {
                        let out = call(
                            cdh.as_ref().unwrap(),
                            "api.SealedSecretService",
                            "UnsealSecret",
                            &pb::UnsealSecretInput {
                                secret: sealed.into_bytes(),
                            },
                        )
                        .unwrap();
                        pb::UnsealSecretOutput::decode(&out[..]).unwrap().plaintext
                    }
                    2 => {
                        let out = call(
                            aa.as_ref().unwrap(),
                            "attestation_agent.AttestationAgentService",
                            "GetToken",
                            &pb::GetTokenRequest {
                                token_type: "kbs".into(),
                            },
                        )
                        .unwrap();
                        let t = pb::GetTokenResponse::decode(&out[..]).unwrap().token;
                        let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
                        assert!(v["tee_keypair"].as_str().unwrap().contains("PRIVATE KEY"));
                        SECRET.as_bytes().to_vec()
                    }
                    _ => {
                        let mut s = std::net::TcpStream::connect(rest).unwrap();
                        write!(
                            s,
                            "GET /cdh/resource/default/app/secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        )
                        .unwrap();
                        let mut text = String::new();
                        s.read_to_string(&mut text).unwrap();
                        assert!(text.starts_with("HTTP/1.1 200"), "{text:.80}");
                        text.split_once("\r\n\r\n").unwrap().1.as_bytes().to_vec()
                    }
                }
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), SECRET.as_bytes());
    }
    let stats = w.kbs.stats();
    assert_eq!(stats.auth.requests, 1, "one /kbs/v0/auth for 100 callers");
    assert_eq!(stats.attest.requests, 1);
    let auths = w
        .kbs
        .arrivals()
        .iter()
        .filter(|a| a.path == "/kbs/v0/auth")
        .count();
    assert_eq!(auths, 1);
    assert_no_secret_in_log(&serve);
}

#[test]
fn the_kbs_down_then_up() {
    let w = World::new("hub-down");
    // A KBS whose every response closes its connection, so that stopping it makes it
    // unreachable at once.
    let kbs = start_kbs(Config {
        close_after_response: true,
        ..Config::default()
    });
    let addr = kbs.addr();
    kbs.add_resource("default/app/secret", SECRET.as_bytes().to_vec())
        .unwrap();
    let serve = Serve::start(&w, &kbs.url(), 2);
    let cdh = serve.cdh();
    assert_eq!(
        get_resource(&cdh, "kbs:///default/app/secret").unwrap(),
        SECRET.as_bytes()
    );
    kbs.shutdown();

    let (code, message) = get_resource(&cdh, "kbs:///default/app/secret").unwrap_err();
    assert_eq!(code, ttrpc::Code::INTERNAL);
    assert!(message.starts_with("[CDH] [ERROR]: "), "{message}");
    assert!(message.contains("deadline"), "{message}");
    let (status, body) = serve.rest_get("/cdh/resource/default/app/secret");
    assert_eq!(status, 500, "{body}");

    let kbs = start_kbs(Config {
        listen: addr,
        ..Config::default()
    });
    kbs.add_resource("default/app/secret", SECRET.as_bytes().to_vec())
        .unwrap();
    // The same connection: kata never reconnects.
    assert_eq!(
        get_resource(&cdh, "kbs:///default/app/secret").unwrap(),
        SECRET.as_bytes()
    );
    assert_eq!(kbs.stats().auth.requests, 1, "a new KBS, one new handshake");
    assert_no_secret_in_log(&serve);
}

#[test]
fn token_expiry_leads_to_one_new_attestation() {
    let w = World::with_kbs(
        "hub-expiry",
        Config {
            token_lifetime: Duration::from_secs(2),
            ..Config::default()
        },
    );
    w.secret("default/app/secret", SECRET);
    let serve = Serve::start(&w, &w.url(), 30);
    let cdh = serve.cdh();
    for _ in 0..3 {
        get_resource(&cdh, "kbs:///default/app/secret").unwrap();
    }
    assert_eq!(w.kbs.stats().auth.requests, 1);
    std::thread::sleep(Duration::from_millis(2100));
    for _ in 0..3 {
        get_resource(&cdh, "kbs:///default/app/secret").unwrap();
    }
    let stats = w.kbs.stats();
    assert_eq!(
        stats.auth.requests, 2,
        "one new attestation after the token expired"
    );
    assert_eq!(
        stats.resource.count(401),
        0,
        "renewed before the KBS refused it"
    );
}

#[test]
fn a_401_leads_to_one_new_attestation() {
    let w = World::new("hub-401");
    w.secret("default/app/secret", SECRET);
    let serve = Serve::start(&w, &w.url(), 30);
    let cdh = serve.cdh();
    get_resource(&cdh, "kbs:///default/app/secret").unwrap();
    // The KBS refuses the next request's token (401 TokenVerifierError, as Trustee when it
    // no longer accepts it): the hub attests again and the caller gets the resource.
    w.kbs
        .add_fault(Fault::new(Step::Resource(None), FaultKind::InvalidToken).times(1))
        .unwrap();
    assert_eq!(
        get_resource(&cdh, "kbs:///default/app/secret").unwrap(),
        SECRET.as_bytes()
    );
    let (status, body) = serve.rest_get("/cdh/resource/default/app/secret");
    assert_eq!((status, body.as_str()), (200, SECRET));
    let stats = w.kbs.stats();
    assert_eq!(stats.auth.requests, 2, "one new attestation after the 401");
    assert_eq!(stats.resource.count(401), 1);
    assert_no_secret_in_log(&serve);
}

#[test]
fn a_denied_resource_gets_each_apis_status() {
    let w = World::with_kbs(
        "hub-denied",
        Config {
            policy: deny_only("default/app/denied"),
            ..Config::default()
        },
    );
    w.secret("default/app/secret", SECRET);
    w.secret("default/app/denied", "guest-hub-denied-value-91c2");
    let signer = signer(&w.kbs);
    let serve = Serve::start(&w, &w.url(), 30);
    let cdh = serve.cdh();

    // CDH GetResource and UnsealSecret: INTERNAL "[CDH] [ERROR]: ..." naming the refusal
    // (upstream's CDH answers every failure so).
    let (code, message) = get_resource(&cdh, "kbs:///default/app/denied").unwrap_err();
    assert_eq!(code, ttrpc::Code::INTERNAL);
    assert!(message.starts_with("[CDH] [ERROR]: "), "{message}");
    assert!(
        message.contains("default/app/denied") && message.contains("PolicyDeny"),
        "{message}"
    );
    let sealed = seal(&signer, "kbs:///default/app/denied");
    let (code, message) = call(
        &cdh,
        "api.SealedSecretService",
        "UnsealSecret",
        &pb::UnsealSecretInput {
            secret: sealed.into_bytes(),
        },
    )
    .unwrap_err();
    assert_eq!(code, ttrpc::Code::INTERNAL);
    assert!(message.contains("PolicyDeny"), "{message}");

    // REST: 500 with the error text.
    let (status, body) = serve.rest_get("/cdh/resource/default/app/denied");
    assert_eq!(status, 500);
    assert!(body.contains("PolicyDeny"), "{body}");

    // The server keeps serving, on the same connection.
    assert_eq!(
        get_resource(&cdh, "kbs:///default/app/secret").unwrap(),
        SECRET.as_bytes()
    );
    let log = serve.log_text();
    assert!(!log.contains("guest-hub-denied-value-91c2"));
    assert_no_secret_in_log(&serve);

    // AA GetToken when the KBS refuses the attestation itself: upstream's fixed text.
    let w2 = World::with_kbs(
        "hub-refused",
        Config {
            verifiers: test_kbs::Verifiers::empty(),
            ..Config::default()
        },
    );
    let serve = Serve::start(&w2, &w2.url(), 30);
    let (code, message) = call(
        &serve.aa(),
        "attestation_agent.AttestationAgentService",
        "GetToken",
        &pb::GetTokenRequest {
            token_type: "kbs".into(),
        },
    )
    .unwrap_err();
    assert_eq!(code, ttrpc::Code::INTERNAL);
    assert_eq!(message, "[ERROR:attestation-agent] AA-KBC get token failed");
    let (status, _) = serve.rest_get("/aa/token?token_type=kbs");
    assert_eq!(status, 500);
}
