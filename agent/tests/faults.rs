//! Every fault the test KBS can inject, at every step it applies to, once (sealgate
//! recovers, and the recovery shows in the KBS counters and in sealgate's log) and for
//! good (sealgate gives up with a clear error within its deadline and writes nothing).
//!
//! Each run fetches two resources, A then B; resource-step faults hit only B, so a failed
//! run has A in memory when it gives up: all-or-nothing means A is not written either.
//! The harness (`common`) checks after every failed run that the sealed directory, seeded
//! with earlier content, is exactly as before, and that no secret reached the logs.
//!
//! Every scenario runs over plain HTTP and over HTTPS (the test KBS with a test CA's
//! certificate, sealgate with `--kbs-cert`): the same faults, the same recoveries, the same
//! counters. Scenarios of one test run concurrently (they wait on timers, not on the CPU).

mod common;

use common::*;
use std::time::Duration;

const A: &str = "default/fault/a";
const B: &str = "default/fault/b";
const A_VALUE: &str = "fault-test-value-A-61c2e9";
const B_VALUE: &str = "fault-test-value-B-0d7f3a";

/// Requests per step: (auth, attest, resource).
type Requests = (u64, u64, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Auth,
    Attest,
    ResourceB,
}

const STEPS: [At; 3] = [At::Auth, At::Attest, At::ResourceB];

impl At {
    fn step(self) -> Step {
        match self {
            At::Auth => Step::Auth,
            At::Attest => Step::Attest,
            At::ResourceB => Step::Resource(Some(B.into())),
        }
    }
}

fn world(tag: &str, config: Config, scheme: Scheme) -> World {
    let w = World::over(&format!("{tag}-{scheme:?}"), config, scheme);
    w.secret(A, A_VALUE);
    w.secret(B, B_VALUE);
    w.seed_sealed_dir();
    w
}

fn unseal_a_b(w: &World) -> Sealgate {
    w.unseal()
        .resource(&format!("kbs:///{A}"), "fault/a")
        .resource(&format!("kbs:///{B}"), "fault/b")
}

#[track_caller]
fn assert_written(w: &World, ran: &Ran) {
    assert_eq!(w.read("fault/a"), A_VALUE.as_bytes(), "{}", ran.dump());
    assert_eq!(w.read("fault/b"), B_VALUE.as_bytes(), "{}", ran.dump());
    assert_eq!(w.read("app/config"), b"previous-app-config");
}

/// Runs each scenario in its own named thread; fails naming every scenario that failed.
fn in_parallel<'a>(scenarios: Vec<(String, Box<dyn FnOnce() + Send + 'a>)>) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .into_iter()
            .map(|(name, f)| {
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, f)
                    .map(|h| (name, h))
                    .unwrap()
            })
            .collect();
        let failed: Vec<String> = handles
            .into_iter()
            .filter_map(|(name, h)| h.join().is_err().then_some(name))
            .collect();
        assert!(
            failed.is_empty(),
            "failed scenarios (their panic messages are above): {failed:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Transient faults: retried until the deadline

/// A transient fault kind and what a single occurrence costs at each step.
struct Transient {
    name: &'static str,
    kind: FaultKind,
    /// Extra sealgate flags (timeouts).
    flags: &'static [&'static str],
    /// The retry deadline of the "forever" runs, seconds (long enough for two attempts).
    deadline: &'static str,
    /// What stderr says when it happens.
    says: &'static str,
    /// KBS requests, sealgate-level retries and TCP connections after one occurrence at
    /// each step, in `STEPS` order.
    once: [(Requests, u32, u64); 3],
}

/// One occurrence: sealgate recovers, with exactly the expected extra requests.
fn transient_once(t: &Transient, at: At, scheme: Scheme) {
    let w = world(
        &format!("{}-once-{at:?}", t.name),
        Config::default(),
        scheme,
    );
    w.kbs
        .add_fault(Fault::new(at.step(), t.kind.clone()).times(1))
        .unwrap();
    let ran = unseal_a_b(&w).args(t.flags).run();
    ran.ok();
    assert_written(&w, &ran);
    let stats = w.kbs.stats();
    let i = STEPS.iter().position(|s| *s == at).unwrap();
    let (want_requests, want_retries, want_connections) = t.once[i];
    assert_eq!(stats.faults_injected, 1, "{stats:?}{}", ran.dump());
    assert_eq!(
        (requests(&stats), stats.connections),
        (want_requests, want_connections),
        "KBS requests (auth, attest, resource) and connections after one {} at {at:?}: {stats:?}{}",
        t.name,
        ran.dump()
    );
    assert_eq!(
        ran.summary(),
        Summary {
            secrets: 2,
            attestations: 1,
            connections: want_connections as u32,
            retries: want_retries,
        },
        "{}",
        ran.dump()
    );
    if scheme == Scheme::Https {
        // Every connection was TLS, and every reconnect resumed the session.
        assert_eq!(
            (stats.tls_handshakes, stats.tls_resumed, stats.tls_failed),
            (want_connections, want_connections - 1, 0),
            "TLS handshakes (all, resumed, failed): {stats:?}{}",
            ran.dump()
        );
        ran.says(&["TLS 1.3 with https://127.0.0.1:", "full handshake"]);
        if want_connections > 1 {
            ran.says(&["session resumed"]);
        }
    }
    if want_retries > 0 {
        ran.says(&[t.says, "; retrying in "]);
    } else {
        // Resent by the HTTP client on a fresh connection (the kept-alive one was reset
        // before any byte of the answer): invisible to the retry loop, visible to the KBS.
        ran.never_says(&["retrying"]);
    }
}

/// Forever: sealgate gives up once the (short) deadline has passed, writes nothing.
fn transient_forever(t: &Transient, at: At, scheme: Scheme) {
    let w = world(
        &format!("{}-forever-{at:?}", t.name),
        Config::default(),
        scheme,
    );
    w.kbs
        .add_fault(Fault::new(at.step(), t.kind.clone()))
        .unwrap();
    let ran = unseal_a_b(&w)
        .args(t.flags)
        .args(["--deadline", t.deadline])
        .run();
    // The last attempt ends either in a failure whose retry would end after the deadline,
    // or in a wait the deadline cut short: both name the deadline.
    ran.fails(
        1,
        &[
            t.says,
            &format!("deadline of {} s", t.deadline),
            "nothing was written",
        ],
    );
    assert!(
        ran.count("; retrying in ") >= 1,
        "retried before giving up{}",
        ran.dump()
    );
    let stats = w.kbs.stats();
    let at_step = match at {
        At::Auth => stats.auth.requests,
        At::Attest => stats.attest.requests,
        At::ResourceB => stats.resource.requests - 1,
    };
    assert!(at_step >= 2, "{at:?} tried more than once: {stats:?}");
    assert!(
        ran.elapsed < Duration::from_secs(15),
        "gave up long after the deadline{}",
        ran.dump()
    );
}

fn transient(t: Transient) {
    let t = &t;
    let mut scenarios: Vec<(String, Box<dyn FnOnce() + Send + '_>)> = Vec::new();
    for scheme in SCHEMES {
        for at in STEPS {
            scenarios.push((
                format!("{} once at {at:?} over {scheme:?}", t.name),
                Box::new(move || transient_once(t, at, scheme)),
            ));
            scenarios.push((
                format!("{} forever at {at:?} over {scheme:?}", t.name),
                Box::new(move || transient_forever(t, at, scheme)),
            ));
        }
    }
    in_parallel(scenarios);
}

// Handshake retries start over with /auth; a resource retry resends the GET only.
const HANDSHAKE_RETRIED: [(Requests, u32, u64); 3] =
    [((2, 1, 2), 1, 2), ((2, 2, 2), 1, 2), ((1, 1, 3), 1, 2)];

#[test]
fn connection_reset() {
    transient(Transient {
        name: "reset",
        kind: FaultKind::Reset,
        flags: &[],
        deadline: "2",
        says: "Connection reset by peer",
        // auth is the first request on a fresh connection: a failure for the retry loop.
        // attest and the GET of B go on the kept-alive connection and no answer byte came
        // back: the HTTP client resends them once on a new connection.
        once: [((2, 1, 2), 1, 2), ((1, 2, 2), 0, 2), ((1, 1, 3), 0, 2)],
    });
}

#[test]
fn connection_closed_mid_response() {
    transient(Transient {
        name: "close-mid-response",
        kind: FaultKind::CloseMidResponse,
        flags: &[],
        deadline: "2",
        says: "the server closed the connection",
        once: HANDSHAKE_RETRIED,
    });
}

#[test]
fn truncated_body() {
    transient(Transient {
        name: "truncated-body",
        kind: FaultKind::TruncatedBody,
        flags: &[],
        deadline: "2",
        says: "the server closed the connection after",
        once: HANDSHAKE_RETRIED,
    });
}

#[test]
fn answer_later_than_the_io_timeout() {
    transient(Transient {
        name: "delay",
        kind: FaultKind::Delay(Duration::from_millis(4_000)),
        flags: &["--io-timeout-ms", "1000"],
        // Each attempt takes the 1 s timeout: give up after the second or third.
        deadline: "3",
        says: "timed out after 1000 ms",
        once: HANDSHAKE_RETRIED,
    });
}

#[test]
fn server_error_5xx() {
    transient(Transient {
        name: "status-503",
        kind: FaultKind::Status(503),
        flags: &[],
        deadline: "2",
        says: "HTTP 503",
        // A 503 is a complete answer: the connection stays open and is reused.
        once: [((2, 1, 2), 1, 1), ((2, 2, 2), 1, 1), ((1, 1, 3), 1, 1)],
    });
}

#[test]
fn other_5xx_statuses_are_transient_too() {
    let mut scenarios: Vec<(String, Box<dyn FnOnce() + Send>)> = Vec::new();
    for (code, scheme) in [500u16, 502, 504]
        .into_iter()
        .flat_map(|c| SCHEMES.map(|s| (c, s)))
    {
        scenarios.push((
            format!("status {code} over {scheme:?}"),
            Box::new(move || {
                let w = world(&format!("status-{code}"), Config::default(), scheme);
                w.kbs
                    .add_fault(Fault::new(Step::Resource(None), FaultKind::Status(code)).times(2))
                    .unwrap();
                let ran = unseal_a_b(&w).run();
                ran.ok().says(&[&format!("HTTP {code}); retrying in ")]);
                assert_written(&w, &ran);
                assert_eq!(ran.summary().retries, 2, "{}", ran.dump());
                assert_eq!(requests(&w.kbs.stats()), (1, 1, 4));
            }),
        ));
    }
    in_parallel(scenarios);
}

// ---------------------------------------------------------------------------------------
// Faults retrying cannot fix: one request, a clear error, nothing written

fn non_retryable(name: &str, kind: FaultKind, config: Config, says: [&'static str; 3]) {
    let mut scenarios: Vec<(String, Box<dyn FnOnce() + Send>)> = Vec::new();
    for (i, at) in STEPS.into_iter().enumerate() {
        for (count, scheme) in [Some(1), None]
            .into_iter()
            .flat_map(|c| SCHEMES.map(|s| (c, s)))
        {
            let (kind, config, name) = (kind.clone(), config.clone(), name.to_string());
            scenarios.push((
                format!("{name} {count:?} at {at:?} over {scheme:?}"),
                Box::new(move || {
                    let w = world(&format!("{name}-{at:?}"), config, scheme);
                    let mut fault = Fault::new(at.step(), kind);
                    if let Some(n) = count {
                        fault = fault.times(n);
                    }
                    w.kbs.add_fault(fault).unwrap();
                    let ran = unseal_a_b(&w).run();
                    ran.fails(1, &[says[i], "nothing was written"])
                        .never_says(&["retrying"]);
                    let want = match at {
                        At::Auth => (1, 0, 0),
                        At::Attest => (1, 1, 0),
                        At::ResourceB => (1, 1, 2),
                    };
                    let stats = w.kbs.stats();
                    assert_eq!(
                        requests(&stats),
                        want,
                        "exactly one request at {at:?}, no retry: {stats:?}{}",
                        ran.dump()
                    );
                }),
            ));
        }
    }
    in_parallel(scenarios);
}

#[test]
fn garbage_body_is_a_protocol_error_not_retried() {
    // A 200 whose body is not the protocol: the KBS (or something in front of it) is
    // broken, not busy. Failing at once with the step named is the sensible answer.
    non_retryable(
        "garbage-body",
        FaultKind::GarbageBody,
        Config::default(),
        [
            "invalid challenge from the KBS: not a JSON object with a string nonce",
            "invalid attestation token from the KBS: not a JSON object with a string token",
            "kbs:///default/fault/b: response is not a JWE",
        ],
    );
}

#[test]
fn oversize_body_is_refused_at_the_limit_without_a_retry_storm() {
    let limit = "response body exceeds the 1048576-byte limit";
    // Content-Length framing: refused as soon as the head announces 64 MiB.
    non_retryable(
        "oversize",
        FaultKind::Oversize(64 << 20),
        Config::default(),
        [limit; 3],
    );
    // Chunked: nothing announced, refused once 1 MiB has arrived.
    non_retryable(
        "oversize-chunked",
        FaultKind::Oversize(64 << 20),
        Config {
            chunked: true,
            ..Config::default()
        },
        [limit; 3],
    );
}

// ---------------------------------------------------------------------------------------
// Sessions and tokens

#[test]
fn expired_session_at_resource_time_falls_back_to_the_bearer_token() {
    for scheme in SCHEMES {
        expired_session_at_resource_time(scheme);
    }
}

fn expired_session_at_resource_time(scheme: Scheme) {
    let w = world("expire-resource", Config::default(), scheme);
    // Every GET finds its session gone (as after Trustee's 5-minute session timeout).
    w.kbs
        .add_fault(Fault::new(Step::Resource(None), FaultKind::ExpireSession))
        .unwrap();
    let ran = unseal_a_b(&w).run();
    ran.ok().never_says(&["attesting again", "retrying"]);
    assert_written(&w, &ran);
    let stats = w.kbs.stats();
    assert_eq!(requests(&stats), (1, 1, 2), "{stats:?}");
    assert_eq!(stats.resource.count(200), 2);
    assert_eq!(stats.faults_injected, 2, "both GETs lost their session");
}

#[test]
fn expired_session_between_auth_and_attest_starts_a_new_handshake() {
    // The session dies between /auth and /attest (a KBS restart, or its timeout): Trustee
    // answers 401 AttestationError to /attest, the same answer as for evidence that does
    // not verify. sealgate first sends the attestation again on the same session (in a fleet
    // another replica may have answered), MAX_ATTEST_SENDS (10) sends per handshake, then
    // starts a new handshake, at most MAX_HANDSHAKE_ATTEMPTS (3) in all.
    let mut scenarios: Vec<(String, Box<dyn FnOnce() + Send>)> = Vec::new();
    for (step, scheme) in [Step::Auth, Step::Attest]
        .into_iter()
        .flat_map(|st| SCHEMES.map(|s| (st.clone(), s)))
    {
        scenarios.push((
            format!("expire-session at {step:?} once over {scheme:?}"),
            Box::new(move || {
                let w = world(&format!("expire-{step:?}"), Config::default(), scheme);
                w.kbs
                    .add_fault(Fault::new(step, FaultKind::ExpireSession).times(1))
                    .unwrap();
                let ran = unseal_a_b(&w).run();
                ran.ok()
                    .says(&["sending the attestation again", "starting a new handshake"]);
                assert_eq!(requests(&w.kbs.stats()), (2, 11, 2), "{}", ran.dump());
            }),
        ));
    }
    for scheme in SCHEMES {
        scenarios.push((
            format!("expire-session at Attest always over {scheme:?}"),
            Box::new(move || {
                let w = world("expire-always", Config::default(), scheme);
                w.kbs
                    .add_fault(Fault::new(Step::Attest, FaultKind::ExpireSession))
                    .unwrap();
                let ran = unseal_a_b(&w).run();
                ran.fails(
                    1,
                    &[
                        "the KBS refused the attest step with HTTP 401",
                        "AttestationError",
                        "nothing was written",
                    ],
                );
                assert_eq!(requests(&w.kbs.stats()), (3, 30, 0), "{}", ran.dump());
            }),
        ));
    }
    in_parallel(scenarios);
}

#[test]
fn invalid_token_makes_sealgate_attest_again() {
    let mut scenarios: Vec<(String, Box<dyn FnOnce() + Send>)> = Vec::new();
    for scheme in SCHEMES {
        // The GET of B is refused with TokenVerifierError once: attest again, GET again.
        scenarios.push((
            format!("resource once over {scheme:?}"),
            Box::new(move || {
                let w = world("token-resource-once", Config::default(), scheme);
                w.kbs
                    .add_fault(Fault::new(At::ResourceB.step(), FaultKind::InvalidToken).times(1))
                    .unwrap();
                let ran = unseal_a_b(&w).run();
                ran.ok()
                    .says(&["HTTP 401 TokenVerifierError", "attesting again"]);
                assert_written(&w, &ran);
                let stats = w.kbs.stats();
                assert_eq!(requests(&stats), (2, 2, 3), "{stats:?}{}", ran.dump());
                assert_eq!(stats.resource.count(401), 1);
                let sum = ran.summary();
                assert_eq!((sum.attestations, sum.connections), (2, 1), "{sum:?}");
            }),
        ));
        // /attest issues an already expired token once: the first GET is refused, the second
        // attestation's token works.
        scenarios.push((
            format!("attest once over {scheme:?}"),
            Box::new(move || {
                let w = world("token-attest-once", Config::default(), scheme);
                w.kbs
                    .add_fault(Fault::new(Step::Attest, FaultKind::InvalidToken).times(1))
                    .unwrap();
                let ran = unseal_a_b(&w).run();
                ran.ok()
                    .says(&["HTTP 401 TokenVerifierError", "attesting again"]);
                assert_written(&w, &ran);
                assert_eq!(requests(&w.kbs.stats()), (2, 2, 3), "{}", ran.dump());
                assert_eq!(ran.summary().attestations, 2);
            }),
        ));
        // Always invalid: three GETs of the resource, each after a fresh attestation, then a
        // clear error naming the KBS error type.
        for step in [At::ResourceB.step(), Step::Attest] {
            scenarios.push((
                format!("{step:?} forever over {scheme:?}"),
                Box::new(move || {
                    let w = world("token-forever", Config::default(), scheme);
                    let first_get_fails = step == Step::Attest;
                    w.kbs
                        .add_fault(Fault::new(step, FaultKind::InvalidToken))
                        .unwrap();
                    let ran = unseal_a_b(&w).run();
                    let uri = if first_get_fails {
                        "kbs:///default/fault/a"
                    } else {
                        "kbs:///default/fault/b"
                    };
                    ran.fails(
                        1,
                        &[
                            &format!("{uri}: refused after 3 attempts"),
                            "TokenVerifierError",
                        ],
                    )
                    .never_says(&["retrying"]);
                    let stats = w.kbs.stats();
                    assert_eq!(stats.resource.count(401), 3, "{stats:?}");
                    assert_eq!(
                        (stats.auth.requests, stats.attest.requests),
                        (3, 3),
                        "{stats:?}"
                    );
                }),
            ));
        }
    }
    in_parallel(scenarios);
}

// ---------------------------------------------------------------------------------------
// The KBS is not up yet

#[test]
fn kbs_that_comes_up_late_is_waited_for() {
    for scheme in SCHEMES {
        kbs_up_late(scheme);
    }
}

fn kbs_up_late(scheme: Scheme) {
    let w = World::over("late", Config::default(), scheme);
    w.seed_sealed_dir();
    w.remember(A_VALUE);
    // A port on which nothing listens (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let running = w
        .unseal()
        .args([
            "--kbs",
            &format!("{}://{addr}", scheme.name()),
            "--deadline",
            "8",
        ])
        .resource(&format!("kbs:///{A}"), "fault/a")
        .spawn();
    std::thread::sleep(Duration::from_millis(1_000));
    let late = start_kbs(scheme.serve(Config {
        listen: addr,
        resources: vec![(A.into(), A_VALUE.into())],
        ..Config::default()
    }));
    let ran = running.wait();
    ran.ok().says(&["Connection refused", "; retrying in "]);
    assert!(ran.summary().retries >= 1, "{}", ran.dump());
    assert_eq!(w.read("fault/a"), A_VALUE.as_bytes());
    assert_eq!(requests(&late.stats()), (1, 1, 1));
    assert_eq!(w.kbs.stats().requests, 0, "the world's own KBS is unused");
}

#[test]
fn kbs_that_never_comes_up_fails_at_the_deadline() {
    for scheme in SCHEMES {
        kbs_never_up(scheme);
    }
}

fn kbs_never_up(scheme: Scheme) {
    let w = World::over("never", Config::default(), scheme);
    w.seed_sealed_dir();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ran = w
        .unseal()
        .args([
            "--kbs",
            &format!("{}://{addr}", scheme.name()),
            "--deadline",
            "1",
        ])
        .resource("kbs:///default/x/y", "x")
        .run();
    ran.fails(
        1,
        &[
            &format!("connect to {addr}: Connection refused"),
            "deadline of 1 s",
        ],
    );
}
