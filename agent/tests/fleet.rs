//! sealgate against a KBS fleet (replicas with their own in-memory sessions behind a
//! round-robin front, as Trustee is scaled) and many guests at once.
//!
//! - One guest through a per-request round-robin: its `/attest` lands on a replica that
//!   never saw its `/auth` (401); sealgate sends the attestation again until it reaches the
//!   session's replica, and its resource GETs, which carry the token as Bearer, are served
//!   by the other replicas.
//! - A load run: [`GUESTS`] concurrent sealgate processes (each with its own sealed
//!   directory) against one test KBS and against a fleet: every one succeeds and writes
//!   exactly its secret; none leaves a partial file. `scripts/bench` runs 200.
//! - A KBS that answers 503 to most requests for a while: the guests' retries spread out
//!   (the jitter of each guest comes from its own random seed) instead of arriving in
//!   lockstep.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use test_kbs::{Balance, Fleet};

/// Concurrent guests of the load runs here (`SEALGATE_LOAD_GUESTS` overrides it).
/// 200 sealgate processes (debug build, sample TEE) take about 10 s a run on 2 cores, so the
/// default test runs fewer; `scripts/bench` runs 200.
const GUESTS: usize = 50;

fn guests() -> usize {
    std::env::var("SEALGATE_LOAD_GUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GUESTS)
}

/// `sealgate unseal` against `url` into `sealed`, one resource per `(uri, path)`.
fn unseal_at(
    w: &World,
    url: &str,
    sealed: &std::path::Path,
    resources: &[(String, String)],
) -> Sealgate {
    let mut cmd = w
        .bare()
        .watch(sealed)
        .args(["unseal", "--kbs", url, "--tee", "sample"])
        .args(w.cert_args())
        .args(["--sealed-dir", s(sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .args(["--log-level", "info", "--deadline", "50"]);
    for (uri, path) in resources {
        cmd = cmd.resource(uri, path);
    }
    cmd
}

fn fleet(replicas: usize, balance: Balance) -> Fleet {
    fleet_with(Config::default(), replicas, balance)
}

fn fleet_with(config: Config, replicas: usize, balance: Balance) -> Fleet {
    Fleet::start(config, replicas, balance)
        .unwrap_or_else(|e| panic!("cannot start the test KBS fleet: {e}"))
}

#[test]
fn one_guest_through_a_per_request_round_robin_of_three_replicas() {
    // Content-Length and chunked responses (the front relays both framings); over HTTPS
    // the front terminates TLS, as an L7 balancer does.
    for scheme in SCHEMES {
        for chunked in [false, true] {
            one_guest_per_request(
                Config {
                    chunked,
                    ..Config::default()
                },
                scheme,
            );
        }
    }
}

fn one_guest_per_request(config: Config, scheme: Scheme) {
    let w = World::over("fleet-one", Config::default(), scheme);
    let f = fleet_with(scheme.serve(config), 3, Balance::PerRequest);
    let mut resources = Vec::new();
    for i in 0..3 {
        let value = format!("fleet-secret-{i}-4be1c0");
        f.add_resource(&format!("default/fleet/s{i}"), value.clone())
            .unwrap();
        w.remember(&value);
        resources.push((format!("kbs:///default/fleet/s{i}"), format!("s{i}")));
    }
    let ran = unseal_at(&w, &f.url(), &w.sealed, &resources).run();
    // auth on replica 0, attest on 1 and 2 (strangers: 401), attest on 0 (its session).
    ran.ok().says(&["sending the attestation again"]);
    assert_eq!(
        ran.count("sending the attestation again"),
        2,
        "{}",
        ran.dump()
    );
    ran.never_says(&["starting a new handshake", "attesting again"]);
    for i in 0..3 {
        assert_eq!(
            w.read(&format!("s{i}")),
            format!("fleet-secret-{i}-4be1c0").as_bytes()
        );
    }
    assert_eq!(requests(&f.stats()), (1, 3, 3));
    let per_replica = f.replica_stats();
    assert_eq!(per_replica[0].attest.count(200), 1, "the session's replica");
    assert_eq!(
        per_replica.iter().map(|s| s.attest.count(401)).sum::<u64>(),
        2,
        "the strangers"
    );
    // The GETs went to three different replicas, two of which never saw the session: the
    // Bearer token is what they accepted.
    let served: Vec<u64> = per_replica.iter().map(|s| s.resource.count(200)).collect();
    assert_eq!(served, [1, 1, 1], "{per_replica:?}");
    assert_eq!(f.handed(), [3, 2, 2]);
    if scheme == Scheme::Https {
        assert_eq!(f.stats().tls_handshakes, 1, "one connection to the front");
    }
}

#[test]
fn one_guest_through_a_per_connection_round_robin() {
    for scheme in SCHEMES {
        one_guest_per_connection(scheme);
    }
}

fn one_guest_per_connection(scheme: Scheme) {
    // An L4 balancer: sealgate's keep-alive connection keeps the whole exchange on one
    // replica; nothing is refused. Over HTTPS the front passes TLS through to the replica.
    let w = World::over("fleet-conn", Config::default(), scheme);
    let f = fleet_with(scheme.serve(Config::default()), 3, Balance::PerConnection);
    f.add_resource("default/fleet/c", "fleet-conn-secret-77a1")
        .unwrap();
    w.remember("fleet-conn-secret-77a1");
    let resources = [("kbs:///default/fleet/c".to_string(), "c".to_string())];
    let ran = unseal_at(&w, &f.url(), &w.sealed, &resources).run();
    ran.ok()
        .never_says(&["sending the attestation again", "starting a new handshake"]);
    assert_eq!(w.read("c"), b"fleet-conn-secret-77a1");
    assert_eq!(requests(&f.stats()), (1, 1, 1));
    if scheme == Scheme::Https {
        assert_eq!(
            f.stats().tls_handshakes,
            1,
            "one connection, to one replica"
        );
    }
}

/// What one guest of a load run did.
struct Guest {
    elapsed: Duration,
    stderr: String,
}

/// Runs `n` sealgate processes at once against `url`, guest `i` fetching
/// `default/load<i>/secret` into its own sealed directory; checks that each succeeded and
/// wrote exactly its secret (the harness checks that none left a temporary).
fn load_run(w: &World, url: &str, n: usize, tag: &str) -> Vec<Guest> {
    let started = Instant::now();
    let running: Vec<_> = (0..n)
        .map(|i| {
            let sealed = w.tmp.mkdir(&format!("{tag}-{i}"));
            let resources = [(
                format!("kbs:///default/load{i}/secret"),
                "secret".to_string(),
            )];
            (
                sealed.clone(),
                unseal_at(w, url, &sealed, &resources).spawn(),
            )
        })
        .collect();
    let spawned = started.elapsed();
    // Waited for concurrently, so that each guest's time is its own (a run's time is
    // measured when its wait notices the exit).
    let guests: Vec<Guest> = std::thread::scope(|scope| {
        let waits: Vec<_> = running
            .into_iter()
            .enumerate()
            .map(|(i, (sealed, run))| {
                scope.spawn(move || {
                    let ran = run.wait();
                    ran.ok();
                    let tree = files(&snapshot(&sealed));
                    let want: BTreeMap<String, Vec<u8>> =
                        [("secret".to_string(), secret_of(i).into_bytes())].into();
                    assert_eq!(tree, want, "guest {i}: {}", ran.dump());
                    Guest {
                        elapsed: ran.elapsed,
                        stderr: ran.stderr.clone(),
                    }
                })
            })
            .collect();
        waits
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let slowest = guests.iter().map(|g| g.elapsed).max().unwrap_or_default();
    eprintln!(
        "{tag}: {n} guests, spawned in {spawned:?}, all done in {:?}, slowest guest {slowest:?}",
        started.elapsed()
    );
    guests
}

fn secret_of(i: usize) -> String {
    format!("load-secret-{i:03}-9d2e")
}

fn add_load_secrets(w: &World, n: usize, add: impl Fn(&str, String)) {
    for i in 0..n {
        add(&format!("default/load{i}/secret"), secret_of(i));
        w.remember(secret_of(i));
    }
}

#[test]
fn many_guests_against_one_kbs_and_against_a_fleet() {
    let n = guests();
    let w = World::new("load");
    add_load_secrets(&w, n, |p, v| w.kbs.add_resource(p, v).unwrap());
    load_run(&w, &w.url(), n, "one");
    let stats = w.kbs.stats();
    assert_eq!(
        requests(&stats),
        (n as u64, n as u64, n as u64),
        "{stats:?}"
    );

    let f = fleet(3, Balance::PerRequest);
    add_load_secrets(&w, n, |p, v| f.add_resource(p, v).unwrap());
    load_run(&w, &f.url(), n, "fleet");
    let stats = f.stats();
    assert_eq!(stats.resource.count(200), n as u64, "{stats:?}");
    assert_eq!(stats.attest.count(200), n as u64, "{stats:?}");
    // Where each /attest lands depends on the other guests' requests; every replica served
    // resources.
    for (i, s) in f.replica_stats().iter().enumerate() {
        assert!(s.resource.count(200) > 0, "replica {i}: {s:?}");
    }
}

#[test]
fn retries_after_a_storm_of_503s_spread_out() {
    // The KBS answers 503 to the first 3n resource GETs, then serves: every guest retries
    // a few times. Each guest's pauses come from its own random seed, so the gaps between a
    // guest's GETs at the KBS differ from guest to guest. In lockstep (the same pause for
    // everyone) they would all be equal up to scheduling noise.
    let n = guests();
    let w = World::new("storm");
    add_load_secrets(&w, n, |p, v| w.kbs.add_resource(p, v).unwrap());
    w.kbs
        .add_fault(Fault::new(Step::Resource(None), FaultKind::Status(503)).times(3 * n as u32))
        .unwrap();
    let guests = load_run(&w, &w.url(), n, "storm");
    let stats = w.kbs.stats();
    assert_eq!(stats.resource.count(503), 3 * n as u64, "{stats:?}");
    assert_eq!(stats.resource.count(200), n as u64);

    // The pauses the guests chose (from their logs): the first retry's pause, per guest.
    let first_pauses: Vec<u64> = guests
        .iter()
        .filter_map(|g| {
            let at = g.stderr.find("; retrying in ")?;
            let rest = &g.stderr[at + "; retrying in ".len()..];
            rest.split(' ').next()?.parse().ok()
        })
        .collect();
    // At the KBS: per guest (its resource path), the gap between its first and second GET.
    let mut by_guest: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for a in w.kbs.arrivals() {
        if a.path.starts_with("/kbs/v0/resource/") {
            by_guest.entry(a.path.clone()).or_default().push(a.at);
        }
    }
    let gaps_ms: Vec<f64> = by_guest
        .values()
        .filter(|t| t.len() >= 2)
        .map(|t| (t[1] - t[0]).as_secs_f64() * 1000.0)
        .collect();
    let spread = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        let min = v.iter().cloned().fold(f64::MAX, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        (mean, sd, min, max)
    };
    let pauses: Vec<f64> = first_pauses.iter().map(|&p| p as f64).collect();
    let (pm, psd, pmin, pmax) = spread(&pauses);
    let (gm, gsd, gmin, gmax) = spread(&gaps_ms);
    eprintln!(
        "first retry pause chosen by {} guests: mean {pm:.0} ms, sd {psd:.0}, min {pmin:.0}, max {pmax:.0}",
        pauses.len()
    );
    eprintln!(
        "gap between a guest's first two GETs at the KBS ({} guests): mean {gm:.0} ms, sd {gsd:.0}, min {gmin:.0}, max {gmax:.0}",
        gaps_ms.len()
    );
    // Every guest that met a 503 said how long it would wait; the pauses differ (the
    // first pause is drawn from 125..=250 ms: lockstep would make them all equal).
    let distinct: std::collections::BTreeSet<u64> = first_pauses.iter().copied().collect();
    assert!(pauses.len() >= n / 2, "{} guests retried", pauses.len());
    assert!(
        distinct.len() >= pauses.len() / 4,
        "only {} distinct first pauses among {}: {first_pauses:?}",
        distinct.len(),
        pauses.len()
    );
    assert!(pmax - pmin >= 50.0, "pauses {pmin}..{pmax} ms");
    // And at the KBS the retries arrive spread out, not as one wave.
    assert!(gaps_ms.len() >= n / 2);
    assert!(gsd >= 10.0, "gaps at the KBS: sd {gsd:.1} ms");
}
