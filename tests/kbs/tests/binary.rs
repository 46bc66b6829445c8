//! The `test-kbs` program: flags, readiness, logging.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Kills the child on drop, so a failed assertion does not leave a server running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serves_from_flags_and_logs_without_secrets() {
    let dir = TempDir::new("binary");
    dir.write("resources/default/mysecret/secret", b"binary-s3cret");
    dir.write("policy.toml", b"default = \"allow\"\n");
    let ready = dir.0.join("ready");
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_test-kbs"))
            .args(["--listen", "127.0.0.1:0", "--resources"])
            .arg(dir.0.join("resources"))
            .arg("--policy")
            .arg(dir.0.join("policy.toml"))
            .args(["--chunked", "--fault", "auth:status:503:1", "--ready-file"])
            .arg(&ready)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn test-kbs"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    assert_eq!(std::fs::read_to_string(&ready).unwrap(), format!("{url}\n"));
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    let mut client = Client::connect(addr);
    let r = client.post_json("/kbs/v0/auth", &[], AUTH_SAMPLE).unwrap();
    assert_eq!(r.status, 503);
    let key = TeeKey::p256();
    let (session, _) = attest(&mut client, &key);
    let r = client
        .get(
            "/kbs/v0/resource/default/mysecret/secret",
            &[("Cookie", &session.cookie_header())],
        )
        .unwrap();
    assert!(r.chunked);
    assert_eq!(key.decrypt(&r.body), b"binary-s3cret");
    let r = client
        .get(
            "/kbs/v0/resource/default/mysecret/nope",
            &[("Cookie", &session.cookie_header())],
        )
        .unwrap();
    assert_eq!(r.status, 401);

    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut log = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    for expected in [
        "test-kbs: POST /kbs/v0/auth -> 503 (fault)",
        "test-kbs: POST /kbs/v0/auth -> 200",
        "test-kbs: POST /kbs/v0/attest -> 200",
        "test-kbs: GET /kbs/v0/resource/default/mysecret/secret -> 200",
        "test-kbs: GET /kbs/v0/resource/default/mysecret/nope -> 401 (resource not found: default/mysecret/nope)",
    ] {
        assert!(log.contains(expected), "{expected:?} not in log:\n{log}");
    }
    assert!(!log.contains("s3cret"), "a secret reached the log:\n{log}");
    assert!(
        !log.contains(&session.cookie),
        "a session id reached the log"
    );
}

#[test]
fn rejects_bad_arguments() {
    for args in [
        &["--bogus"][..],
        &["--fault", "auth:nope"],
        &["--policy", "/nonexistent/policy.toml"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_test-kbs"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: test-kbs"));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_test-kbs"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--close-after-response"));
}
