//! The REST API (api-server-rest compatible) of the real `sealgate serve`, called with the
//! real `curl` (Debian package, installed by scripts/setup): every endpoint, every gating
//! mode (`resource` by default, `attestation`, `all`, and `none` refused as upstream
//! refuses it), upstream's statuses and bodies, keep-alive, HTTP/1.0, 100-continue,
//! pipelining, the size bounds and chunked refusal, and a non-loopback peer refused with
//! 403 (in a private network namespace, with a second, non-loopback address on `lo`).
//!
//! The server runs against the test KBS with the sample TEE; its stderr is checked for the
//! resources' values and any token (common harness) when it is stopped.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const SECRET: &str = "rest-api-secret-value-7f3a";
const DENIED: &str = "default/deny/me";

/// A free loopback port (bound and released: the kernel does not hand it out again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `sealgate serve` with its REST listener on a loopback port.
struct Server {
    running: Option<Running>,
    port: u16,
}

impl Server {
    fn start(world: &World, features: Option<&str>) -> Server {
        let port = free_port();
        let mut cmd = world.bare().arg("serve");
        cmd = cmd
            .arg("--attestation_sock")
            .arg(format!("unix://{}", s(&world.tmp.join("aa.sock"))))
            .arg("--cdh_sock")
            .arg(format!("unix://{}", s(&world.tmp.join("cdh.sock"))))
            .args(["--bind", &format!("127.0.0.1:{port}")]);
        if let Some(f) = features {
            cmd = cmd.args(["--features", f]);
        }
        let cmd = cmd
            .args(["--kbs", &world.url(), "--tee", "sample"])
            .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
            .args(["--log-level", "debug"]);
        let mut server = Server {
            running: Some(cmd.spawn()),
            port,
        };
        // Wait for the listener like a client would (a bound with a wide margin).
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                let ran = server.stop();
                panic!("the REST port {port} never opened{}", ran.dump());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server (SIGTERM) and applies the harness's checks to its output.
    fn stop(&mut self) -> Ran {
        let running = self.running.take().expect("running");
        let pid = rustix::process::Pid::from_raw(running.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        running.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

/// One curl transfer: status, content type, body.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn is(&self, status: u16, body: &str) -> &Self {
        assert_eq!(
            (self.status, self.text().as_str()),
            (status, body),
            "content type {:?}",
            self.content_type
        );
        self
    }

    #[track_caller]
    fn typed(&self, content_type: &str) -> &Self {
        assert_eq!(self.content_type, content_type, "body {:?}", self.text());
        self
    }
}

/// `curl -sS [args] URL`, the body to a file, status and content type from `-w`.
fn curl(world: &World, args: &[&str], url: &str) -> Reply {
    let body = world.tmp.join("curl-body");
    let _ = std::fs::remove_file(&body);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o", s(&body)])
        .args(["-w", "%{http_code}\n%{content_type}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs (scripts/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, content_type) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    Reply {
        status: status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {args:?} {url}: no status in {stdout:?}; stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        content_type: content_type.to_string(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn get(world: &World, server: &Server, path: &str) -> Reply {
    curl(world, &[], &server.url(path))
}

fn world() -> World {
    let world = World::with_kbs(
        "rest",
        Config {
            policy: deny_only(DENIED),
            ..Config::default()
        },
    );
    world.secret("default/key/1", SECRET);
    world.secret(DENIED, "denied-value-never-served");
    world
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", reply.text()))
}

/// The resource routes, as every mode that serves them answers them.
fn check_resource_routes(world: &World, server: &Server) {
    get(world, server, "/cdh/resource/default/key/1")
        .is(200, SECRET)
        .typed("application/octet-stream");
    // Any method, as upstream.
    curl(
        world,
        &["-X", "POST"],
        &server.url("/cdh/resource/default/key/1"),
    )
    .is(200, SECRET);
    let denied = get(world, server, &format!("/cdh/resource/{DENIED}"));
    assert_eq!(denied.status, 500, "{}", denied.text());
    assert!(!denied.text().contains("denied-value"));
    assert_eq!(denied.content_type, "");
    assert_eq!(
        get(world, server, "/cdh/resource/default/key/missing").status,
        500
    );
    get(world, server, "/cdh/resource").is(404, "URL NOT FOUND");
    get(world, server, "/cdh/other/a/b").is(404, "URL NOT FOUND");
}

/// The attestation routes, as every mode that serves them answers them.
fn check_attestation_routes(world: &World, server: &Server) {
    let token = get(world, server, "/aa/token?token_type=kbs");
    assert_eq!(token.status, 200, "{}", token.text());
    token.typed("application/octet-stream");
    let value = json(&token);
    assert!(
        value["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("eyJ"))
    );
    assert!(
        value["tee_keypair"]
            .as_str()
            .is_some_and(|k| k.contains("PRIVATE KEY"))
    );
    get(world, server, "/aa/token").is(400, "BAD REQUEST");
    curl(
        world,
        &["-X", "POST"],
        &server.url("/aa/token?token_type=kbs"),
    )
    .is(404, "URL NOT FOUND");

    // Raw bytes and URL-safe unpadded base64 bind the same runtime data.
    let raw = get(world, server, "/aa/evidence?runtime_data=hello");
    assert_eq!(raw.status, 200, "{}", raw.text());
    raw.typed("application/octet-stream");
    let b64 = get(
        world,
        server,
        "/aa/evidence?runtime_data=aGVsbG8&encoding=base64",
    );
    assert_eq!(json(&raw), json(&b64));
    // The runtime data is bound: other data, other evidence.
    let other = get(world, server, "/aa/evidence?runtime_data=hellp");
    assert_eq!(other.status, 200, "{}", other.text());
    assert_ne!(json(&raw), json(&other));
    // More than the 64-byte report data: the hub's error, as upstream's AA fails.
    let long = get(
        world,
        server,
        &format!("/aa/evidence?runtime_data={}", "a".repeat(65)),
    );
    assert_eq!(long.status, 500, "{}", long.text());
    get(
        world,
        server,
        "/aa/evidence?runtime_data=aGVsbG8=&encoding=base64",
    )
    .is(400, "BAD REQUEST");
    get(
        world,
        server,
        "/aa/evidence?runtime_data=aGVsbG8&encoding=hex",
    )
    .is(400, "BAD REQUEST");
    get(world, server, "/aa/evidence").is(400, "BAD REQUEST");
    // No additional attesters: an empty body, as upstream.
    get(world, server, "/aa/additional-evidence?runtime_data=hello")
        .is(200, "")
        .typed("application/octet-stream");
    get(world, server, "/aa/additional-evidence").is(400, "BAD REQUEST");

    let aael = curl(
        world,
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"domain":"example.org","operation":"start","content":"x"}"#,
        ],
        &server.url("/aa/aael"),
    );
    assert_eq!(aael.status, 200, "{}", aael.text());
    aael.typed("application/json");
    assert!(
        [
            r#"{"success":"true"}"#,
            r#"{"success":"false","message": "The platform does not support runtime measurement"}"#,
            r#"{"success":"false","message": "Attestation Agent does not enable eventlog recording"}"#,
        ]
        .contains(&aael.text().as_str()),
        "{}",
        aael.text()
    );
    let bad = curl(
        world,
        &["--data-binary", "{not json"],
        &server.url("/aa/aael"),
    );
    assert_eq!(bad.status, 500);
    assert!(
        bad.text().starts_with("Illegal AAEL eventry format: "),
        "{}",
        bad.text()
    );
    get(world, server, "/aa/aael").is(404, "URL NOT FOUND");
    get(world, server, "/aa/unknown").is(404, "URL NOT FOUND");
}

#[test]
fn resource_mode_is_the_default() {
    let world = world();
    let server = Server::start(&world, None);
    check_resource_routes(&world, &server);
    get(&world, &server, "/aa/token?token_type=kbs").is(404, "Attestation Feature Not Enabled");
    get(&world, &server, "/aa/evidence?runtime_data=x").is(404, "Attestation Feature Not Enabled");
    let info = get(&world, &server, "/info");
    info.typed("application/json");
    let value = json(&info);
    assert_eq!(value["feature"], "resource");
    assert!(value.get("tee").is_none(), "{value}");
    assert!(value["version"].is_string());
    curl(&world, &["-X", "POST"], &server.url("/info")).is(405, "Method Not Allowed");
    for path in ["/", "/aa", "/cdh", "/nothing/here"] {
        get(&world, &server, path).is(404, "URL NOT FOUND");
    }
}

#[test]
fn attestation_mode() {
    let world = world();
    let server = Server::start(&world, Some("attestation"));
    check_attestation_routes(&world, &server);
    get(&world, &server, "/cdh/resource/default/key/1").is(404, "Resource Feature Not Enabled");
    let value = json(&get(&world, &server, "/info"));
    assert_eq!(value["feature"], "attestation");
    assert_eq!(value["tee"], "sample");
}

#[test]
fn all_mode() {
    let world = world();
    let server = Server::start(&world, Some("all"));
    check_resource_routes(&world, &server);
    check_attestation_routes(&world, &server);
    assert_eq!(json(&get(&world, &server, "/info"))["feature"], "all");
}

#[test]
fn none_and_other_feature_values_are_refused() {
    // Upstream's api-server-rest exits 1 on any other --features value; `none` is not one.
    let dir = TempDir::new("rest-names");
    let link = dir.join("api-server-rest");
    std::os::unix::fs::symlink(sealgate_bin(), &link).unwrap();
    for bad in ["none", "All", ""] {
        let out = Command::new(&link)
            .args(["--features", bad])
            .output()
            .expect("run api-server-rest");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--features {bad:?}: {stderr}");
        assert!(stderr.contains("resource, attestation, all"), "{stderr}");
    }
    let world = world();
    world
        .bare()
        .args([
            "serve",
            "--features",
            "none",
            "--kbs",
            &world.url(),
            "--tee",
            "sample",
        ])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .run()
        .says(&["resource, attestation, all"]);
}

#[test]
fn connections_keep_alive_bounds_and_refusals() {
    let world = world();
    let server = Server::start(&world, Some("all"));
    // Two transfers in one curl: the second reuses the connection.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{num_connects}\n",
        ])
        .arg(server.url("/info"))
        .arg(server.url("/cdh/resource/default/key/1"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 1\n200 0\n");
    // HTTP/1.0.
    curl(&world, &["-0"], &server.url("/cdh/resource/default/key/1")).is(200, SECRET);
    // A body that makes curl wait for 100 Continue, near the 64 KiB bound.
    let content = "c".repeat(60 * 1024);
    let body = format!(r#"{{"domain":"d","operation":"o","content":"{content}"}}"#);
    let file = world.tmp.write("aael.json", &body);
    let reply = curl(
        &world,
        &[
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &format!("@{}", s(&file)),
        ],
        &server.url("/aa/aael"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Over the bound: 413; chunked: 411.
    let big = world.tmp.write("big.json", "x".repeat(64 * 1024 + 1));
    let reply = curl(
        &world,
        &["--data-binary", &format!("@{}", s(&big))],
        &server.url("/aa/aael"),
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    let reply = curl(
        &world,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &format!("@{}", s(&file)),
        ],
        &server.url("/aa/aael"),
    );
    assert_eq!(reply.status, 411, "{}", reply.text());
    // A head over 16 KiB: 431.
    let header = format!("X-Big: {}", "h".repeat(17 * 1024));
    let reply = curl(&world, &["-H", &header], &server.url("/info"));
    assert_eq!(reply.status, 431, "{}", reply.text());

    // Pipelining: three requests in one write, three answers in order.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(
            b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /cdh/resource/default/key/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "404", "200"], "{text}");
    assert!(text.ends_with(SECRET), "{text}");

    // A slow client holding a half-sent request does not stall the others.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"GET /info HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    get(&world, &server, "/cdh/resource/default/key/1").is(200, SECRET);
    drop(slow);
    get(&world, &server, "/info");
    // Every resource above came from one KBS session.
    let (auth, attest, _) = requests(&world.kbs.stats());
    assert_eq!(
        (auth, attest),
        (1, 1),
        "one attestation for every REST caller"
    );
}

#[test]
fn a_non_loopback_peer_gets_403() {
    // A private network namespace: lo up with a second address that is not loopback
    // (10.200.0.1/32), the server on 0.0.0.0. A connection to 10.200.0.1 comes from
    // 10.200.0.1: not loopback, so 403 (checked before anything else); 127.0.0.1 is served.
    assert!(
        running_as_root(),
        "this test needs root (network namespace)"
    );
    let world = world();
    let port = free_port();
    let script = format!(
        r#"set -e
ip link set lo up
ip addr add 10.200.0.1/32 dev lo
"$0" serve --attestation_sock unix://{dir}/aa.sock --cdh_sock unix://{dir}/cdh.sock \
    --bind 0.0.0.0:{port} --features all --kbs http://127.0.0.1:9 --tee sample \
    --kernel-cmdline /dev/null --config /dev/null 2>{dir}/serve.log &
pid=$!
i=0
until curl -s -o /dev/null http://127.0.0.1:{port}/info; do
    i=$((i+1)); [ $i -lt 1000 ] || {{ cat {dir}/serve.log; exit 3; }}; sleep 0.02
done
for host in 10.200.0.1 127.0.0.1; do
    for path in /info /aa/token?token_type=kbs /cdh/resource/default/key/1 /nothing; do
        # From 127.0.0.1 only what needs no KBS (it is unreachable in the namespace).
        case "$host$path" in 127.0.0.1/aa/* | 127.0.0.1/cdh/*) continue ;; esac
        curl -sS -w ' %{{http_code}} {{%{{content_type}}}}\n' "http://$host:{port}$path"
    done
done
kill $pid
"#,
        dir = s(world.tmp.path()),
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script, sealgate_bin()])
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["Forbidden 403 {}"; 4],
        "non-loopback peer: {stdout}"
    );
    // From 127.0.0.1 the same server answers.
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(lines[4].ends_with(" 200 {application/json}"), "{stdout}");
    assert!(lines[4].contains(r#""feature":"all""#), "{stdout}");
    assert_eq!(lines[5], "URL NOT FOUND 404 {}", "{stdout}");
}

/// api-server-rest as kata starts it (`--features` from `agent.guest_components_rest_api`,
/// which the host can set), handing its listener to a hub whose config file says
/// `config`; the parked api-server-rest process is returned with the server.
fn start_adopted(world: &World, features: &str, config: &str) -> (Server, std::process::Child) {
    let aa = world.tmp.join("adopt-aa.sock");
    let _ = std::fs::remove_file(&aa);
    let cfg = world.tmp.write("ceiling.toml", config);
    let hub = world
        .bare()
        .arg("serve")
        .arg("--attestation_sock")
        .arg(format!("unix://{}", s(&aa)))
        .arg("--no-rest")
        .args(["--kbs", &world.url(), "--tee", "sample"])
        .args(["--kernel-cmdline", "/dev/null", "--config", s(&cfg)])
        .spawn();
    let port = free_port();
    let mut server = Server {
        running: Some(hub),
        port,
    };
    let start = Instant::now();
    while !aa.exists() {
        if start.elapsed() > Duration::from_secs(20) {
            panic!("the hub's socket never appeared{}", server.stop().dump());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let link = world.tmp.join("api-server-rest");
    let _ = std::os::unix::fs::symlink(sealgate_bin(), &link);
    let rest = Command::new(&link)
        .args(["--features", features])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--aa_addr", &format!("unix://{}", s(&aa))])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("run api-server-rest");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            panic!("the REST port never opened{}", server.stop().dump());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, rest)
}

#[test]
fn kata_s_features_count_only_within_the_image_s_ceiling() {
    // rest_api_max (the image's config or init-data's sealgate.toml) bounds what kata's
    // unmeasured `--features` can open: by default `resource`.
    let world = world();
    for (config, asked, served) in [
        ("", "all", "resource"),
        ("", "attestation", "none"),
        ("rest_api_max = \"all\"\n", "all", "all"),
        ("rest_api_max = \"attestation\"\n", "all", "attestation"),
        ("rest_api_max = \"none\"\n", "resource", "none"),
    ] {
        let (mut server, mut rest) = start_adopted(&world, asked, config);
        let info = get(&world, &server, "/info");
        assert_eq!(info.status, 200, "{}", info.text());
        let info = json(&info);
        assert_eq!(info["feature"], served, "{config:?} --features {asked}");
        let aa = get(&world, &server, "/aa/token?token_type=kbs");
        let cdh = get(&world, &server, "/cdh/resource/default/key/1");
        if served == "all" || served == "attestation" {
            assert_eq!(aa.status, 200, "{}", aa.text());
        } else {
            aa.is(404, "Attestation Feature Not Enabled");
        }
        if served == "all" || served == "resource" {
            cdh.is(200, SECRET);
        } else {
            cdh.is(404, "Resource Feature Not Enabled");
        }
        let _ = rest.kill();
        let _ = rest.wait();
        let ran = server.stop();
        if served != asked {
            ran.says(&["asks for more than rest_api_max"]);
        }
    }
}
