//! `--deadline` bounds the whole run, from the first DNS query to the last rename: against
//! peers that keep sealgate waiting without ever failing (a KBS that accepts and never
//! answers, one that drips its answers one byte at a time, one that answers every step just
//! under the I/O timeout, a nameserver that never answers), sealgate gives up with
//! "deadline of N s passed ..." within the deadline plus a wide margin, and writes nothing
//! (the harness checks the sealed directory after every failed run).
//!
//! Each runs over plain HTTP and over HTTPS (the waits are the socket's, under TLS too).
//!
//! The margin is generous on purpose: these are correctness checks (does the deadline cut
//! the wait at all?), not benchmarks. Without the deadline, each of these runs would take
//! 30 s or more (the I/O timeout, resolv.conf's `timeout` × `attempts`), or succeed late.

mod common;

use common::*;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

const A: &str = "default/deadline/a";
const B: &str = "default/deadline/b";
const A_VALUE: &str = "deadline-test-value-A-5e81c0";
const B_VALUE: &str = "deadline-test-value-B-93d2a4";

/// The deadline given to every run here, seconds.
const DEADLINE: u64 = 3;
/// How long after the deadline a run may still end: wide, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(7);

fn world(tag: &str, scheme: Scheme) -> World {
    let w = World::over(&format!("{tag}-{scheme:?}"), Config::default(), scheme);
    w.secret(A, A_VALUE);
    w.secret(B, B_VALUE);
    w.seed_sealed_dir();
    w
}

/// Unseals A then B with `--deadline 3` (the harness's 10 is replaced: the last flag wins).
fn unseal_a_b(w: &World, extra: &[&str]) -> Ran {
    w.unseal()
        .args(["--deadline", &DEADLINE.to_string()])
        .args(extra)
        .resource(&format!("kbs:///{A}"), "deadline/a")
        .resource(&format!("kbs:///{B}"), "deadline/b")
        .run()
}

#[track_caller]
fn ends_in_time(ran: &Ran) {
    assert!(
        ran.elapsed < Duration::from_secs(DEADLINE) + MARGIN,
        "the run outlived its deadline of {DEADLINE} s by more than {MARGIN:?}{}",
        ran.dump()
    );
}

/// Runs each scenario in its own thread (they wait on timers, not on the CPU).
fn in_parallel(scenarios: Vec<(String, Box<dyn FnOnce() + Send>)>) {
    let handles: Vec<_> = scenarios
        .into_iter()
        .map(|(name, f)| {
            let h = std::thread::Builder::new()
                .name(name.clone())
                .spawn(f)
                .unwrap();
            (name, h)
        })
        .collect();
    let failed: Vec<String> = handles
        .into_iter()
        .filter_map(|(name, h)| h.join().is_err().then_some(name))
        .collect();
    assert!(failed.is_empty(), "failed scenarios: {failed:?}");
}

/// (the step the fault hits, how the failed call is named in the message)
fn steps() -> [(Step, &'static str); 3] {
    [
        (Step::Auth, "POST /kbs/v0/auth"),
        (Step::Attest, "POST /kbs/v0/attest"),
        (
            Step::Resource(Some(B.into())),
            "GET /kbs/v0/resource/default/deadline/b",
        ),
    ]
}

/// A KBS that reads the request and never answers (the connection stays open), with the
/// default 30 s I/O timeout: the deadline ends the wait.
#[test]
fn kbs_that_accepts_and_never_answers() {
    let scenarios = steps()
        .into_iter()
        .flat_map(|(step, call)| SCHEMES.map(|scheme| (step.clone(), call, scheme)))
        .map(|(step, call, scheme)| {
            let name = format!("hang at {step:?} over {scheme:?}");
            let f = move || {
                let w = world(&format!("hang-{}", call.split(' ').next_back().unwrap_or_default().len()), scheme);
                w.kbs.add_fault(Fault::new(step, FaultKind::Hang)).unwrap();
                let ran = unseal_a_b(&w, &[]);
                let peer = w.url().split_once("://").unwrap().1.to_string();
                ran.fails(
                    1,
                    &[
                        &format!(
                            "deadline of {DEADLINE} s passed while waiting for {peer} to answer ({call})"
                        ),
                        "nothing was written",
                    ],
                );
                ends_in_time(&ran);
                assert_eq!(w.kbs.stats().faults_injected, 1, "{}", ran.dump());
            };
            (name, Box::new(f) as Box<dyn FnOnce() + Send>)
        })
        .collect();
    in_parallel(scenarios);
}

/// A KBS that sends every answer one byte per 200 ms: no read ever waits near the I/O
/// timeout, and the exchange timeout (twice the I/O timeout) is far away; the deadline
/// ends it.
#[test]
fn kbs_that_drips_one_byte_at_a_time() {
    let scenarios = steps()
        .into_iter()
        .flat_map(|(step, call)| SCHEMES.map(|scheme| (step.clone(), call, scheme)))
        .map(|(step, call, scheme)| {
            let name = format!("drip at {step:?} over {scheme:?}");
            let f = move || {
                let w = world(&format!("drip-{}", call.split(' ').next_back().unwrap_or_default().len()), scheme);
                w.kbs
                    .add_fault(Fault::new(
                        step,
                        FaultKind::Drip(Duration::from_millis(200)),
                    ))
                    .unwrap();
                let ran = unseal_a_b(&w, &[]);
                let peer = w.url().split_once("://").unwrap().1.to_string();
                ran.fails(
                    1,
                    &[
                        &format!(
                            "deadline of {DEADLINE} s passed while waiting for {peer} to answer ({call})"
                        ),
                        "nothing was written",
                    ],
                );
                ends_in_time(&ran);
            };
            (name, Box::new(f) as Box<dyn FnOnce() + Send>)
        })
        .collect();
    in_parallel(scenarios);
}

/// Every step answered 1.2 s late, under the 1.5 s I/O timeout: no wait times out and no
/// step fails, but auth, attest and two GETs take 4.8 s, past the 3 s deadline. (Before
/// the deadline bounded the run, this succeeded late.)
#[test]
fn kbs_that_answers_every_step_just_under_the_io_timeout() {
    in_parallel(
        SCHEMES
            .map(|scheme| {
                let f = move || slow_steps(scheme);
                (
                    format!("slow over {scheme:?}"),
                    Box::new(f) as Box<dyn FnOnce() + Send>,
                )
            })
            .into(),
    );
}

fn slow_steps(scheme: Scheme) {
    let w = world("slow", scheme);
    for step in [Step::Auth, Step::Attest, Step::Resource(None)] {
        w.kbs
            .add_fault(Fault::new(
                step,
                FaultKind::Delay(Duration::from_millis(1_200)),
            ))
            .unwrap();
    }
    let ran = unseal_a_b(&w, &["--io-timeout-ms", "1500"]);
    ran.fails(
        1,
        &[
            &format!("deadline of {DEADLINE} s passed"),
            "nothing was written",
        ],
    )
    .never_says(&["timed out after", "retrying"]);
    ends_in_time(&ran);
}

/// `get-resource` is bounded the same way, and prints nothing.
#[test]
fn get_resource_is_bounded_too() {
    for scheme in SCHEMES {
        get_resource_bounded(scheme);
    }
}

fn get_resource_bounded(scheme: Scheme) {
    let w = world("get-resource", scheme);
    w.kbs
        .add_fault(Fault::new(Step::Auth, FaultKind::Hang))
        .unwrap();
    let ran = w
        .get_resource(&format!("kbs:///{A}"))
        .args(["--deadline", &DEADLINE.to_string()])
        .run();
    ran.fails(1, &[&format!("deadline of {DEADLINE} s passed")]);
    assert!(ran.stdout.is_empty(), "{}", ran.dump());
    ends_in_time(&ran);
}

// ---------------------------------------------------------------------------------------
// A nameserver that never answers. resolv.conf has no port, so the nameserver must listen
// on 127.0.0.1:53: the scenario runs in user, mount and network namespaces (`unshare`),
// with a tmpfs over /etc holding the resolv.conf and an empty hosts file.

const HELPER_ENV: &str = "SEALGATE_DEADLINE_DNS_HELPER";

#[test]
fn nameserver_that_never_answers() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--net", "--"])
        .arg(exe)
        .args([
            "--exact",
            "silent_nameserver_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux is needed): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!(
        "--- helper stdout\n{stdout}\n--- helper stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "helper failed ({}):\n{text}",
        out.status
    );
    assert!(
        stdout.contains("silent nameserver scenario passed"),
        "the helper did not run:\n{text}"
    );
}

/// Inside the namespaces (a no-op in a normal test run).
#[test]
fn silent_nameserver_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    sh("ip link set lo up && mount -t tmpfs -o mode=0755 tmpfs /etc");
    // resolv.conf's own bound is 30 s × 5 attempts: only the deadline can end this early.
    std::fs::write(
        "/etc/resolv.conf",
        "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n",
    )
    .unwrap();
    std::fs::write("/etc/hosts", "").unwrap();
    let dns = UdpSocket::bind("127.0.0.1:53").expect("bind 127.0.0.1:53 in the namespace");
    let queries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&queries);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        // Reads every query and never answers.
        while dns.recv_from(&mut buf).is_ok() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let w = world("dns", Scheme::Http);
    let ran = w
        .bare()
        .args(["unseal", "--kbs", "http://kbs.deadline.test:8080"])
        .args(["--tee", "sample", "--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .args(["--log-level", "debug", "--deadline", &DEADLINE.to_string()])
        .resource(&format!("kbs:///{A}"), "deadline/a")
        .run();
    ran.fails(
        1,
        &[
            &format!(
                "deadline of {DEADLINE} s passed while resolving kbs.deadline.test:8080 (asking 127.0.0.1) (POST /kbs/v0/auth)"
            ),
            "nothing was written",
        ],
    );
    ends_in_time(&ran);
    assert!(
        queries.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the nameserver was asked{}",
        ran.dump()
    );
    assert_eq!(w.kbs.stats().requests, 0);
    println!("silent nameserver scenario passed");
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
