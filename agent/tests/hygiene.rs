//! Secret hygiene in memory (README, "Secret hygiene in memory"), checked from outside on a
//! running sealgate: caught mid-run while the test KBS holds back its answer to the
//! resource request (a `delay` fault), when sealgate holds its session key and token.
//!
//! - `/proc/<pid>/limits`: the soft core file size limit is 0.
//! - `/proc/<pid>/status`: `VmLck` is not 0 (memory locked).
//! - Not dumpable: the kernel has no `Dumpable` field in `status`, but it makes the
//!   `/proc/<pid>/` files of a non-dumpable process root's. So sealgate runs as an
//!   unprivileged uid (`setpriv`), and its `status` file must belong to uid 0, not to it.
//! - A lock the limit refuses (`RLIMIT_MEMLOCK` 0, unprivileged) is one warning, and the
//!   run still succeeds.
//!
//! Runs as root (it switches uid with `setpriv` and changes limits with `prlimit`).

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

const RESOURCE: &str = "default/hygiene/key";
const VALUE: &str = "hygiene-test-secret-5b0e47";
/// Long enough to read /proc while sealgate waits, far below the I/O timeout given.
const HOLD: Duration = Duration::from_secs(4);
/// An unprivileged uid and gid (`nobody`/`nogroup` on Debian).
const NOBODY: u32 = 65534;

/// What the test reads about a running sealgate.
struct Seen {
    /// `Uid:` (real) from `status`.
    uid: u32,
    /// Owner of `/proc/<pid>/status`.
    status_owner: u32,
    /// `VmLck:` in kB.
    locked_kb: u64,
    /// `Max core file size` soft limit, as printed.
    core_soft: String,
}

fn world() -> World {
    let w = World::new("hygiene");
    w.secret(RESOURCE, VALUE);
    w.kbs
        .add_fault(Fault::new(
            Step::Resource(Some(RESOURCE.into())),
            FaultKind::Delay(HOLD),
        ))
        .unwrap();
    w
}

fn get_resource(w: &World) -> Sealgate {
    w.get_resource(&format!("kbs:///{RESOURCE}")).args([
        "--io-timeout-ms",
        "30000",
        "--deadline",
        "50",
    ])
}

/// Starts `cmd`, waits until the KBS has read its resource request (sealgate is then
/// waiting for the held answer), reads /proc, and lets it finish.
fn caught_mid_run(w: &World, cmd: Sealgate) -> (Seen, Ran) {
    let running = cmd.spawn();
    let started = Instant::now();
    while w.kbs.stats().resource.requests == 0 {
        assert!(
            started.elapsed() < RUN_LIMIT,
            "sealgate never asked for the resource"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = running.id();
    let status_path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&status_path).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let status_owner = std::fs::metadata(&status_path).unwrap().uid();
    let field = |text: &str, name: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))[name.len()..]
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let seen = Seen {
        uid: field(&status, "Uid:")[0].parse().unwrap(),
        status_owner,
        locked_kb: field(&status, "VmLck:")[0].parse().unwrap(),
        core_soft: field(&limits, "Max core file size")[0].clone(),
    };
    let ran = running.wait();
    assert!(
        w.kbs.stats().resource.requests >= 1,
        "the run was caught before its resource request"
    );
    (seen, ran)
}

#[track_caller]
fn assert_got_the_secret(ran: &Ran) {
    ran.ok();
    assert_eq!(ran.stdout, VALUE.as_bytes(), "{}", ran.dump());
}

fn as_nobody(cmd: Sealgate) -> Sealgate {
    let id = NOBODY.to_string();
    cmd.wrapped_in(
        "setpriv",
        &[
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
        ],
    )
}

#[test]
fn a_running_sealgate_has_no_core_limit_and_locked_memory() {
    assert!(running_as_root(), "this test runs as root");
    let w = world();
    let (seen, ran) = caught_mid_run(&w, get_resource(&w));
    assert_got_the_secret(&ran);
    assert_eq!(seen.core_soft, "0", "soft RLIMIT_CORE");
    assert!(seen.locked_kb > 0, "VmLck is 0: memory not locked");
    ran.never_says(&["cannot lock", "could not be locked", "non-dumpable"]);
}

#[test]
fn a_running_sealgate_is_not_dumpable() {
    assert!(running_as_root(), "this test runs as root (to switch uid)");
    let w = world();
    let (seen, ran) = caught_mid_run(&w, as_nobody(get_resource(&w)));
    assert_got_the_secret(&ran);
    assert_eq!(seen.uid, NOBODY, "sealgate runs as the unprivileged uid");
    assert_eq!(
        seen.status_owner, 0,
        "/proc/<pid>/status belongs to root only when the process is not dumpable"
    );
    assert_eq!(seen.core_soft, "0", "soft RLIMIT_CORE");
    // Within the default RLIMIT_MEMLOCK: current mappings and heap segments locked.
    assert!(seen.locked_kb > 0, "VmLck is 0: memory not locked");
}

#[test]
fn a_refused_lock_is_one_warning_and_the_run_goes_on() {
    assert!(running_as_root(), "this test runs as root (to switch uid)");
    let w = world();
    let cmd = as_nobody(get_resource(&w)).wrapped_in("prlimit", &["--memlock=0:0"]);
    let (seen, ran) = caught_mid_run(&w, cmd);
    assert_got_the_secret(&ran);
    assert_eq!(seen.uid, NOBODY);
    assert_eq!(seen.locked_kb, 0);
    assert_eq!(seen.status_owner, 0, "still not dumpable");
    assert_eq!(seen.core_soft, "0", "still no core file");
    let warnings = ran.count("(mlock");
    assert_eq!(warnings, 1, "one warning about locking:\n{}", ran.dump());
    ran.says(&["cannot lock memory (mlockall)", "RLIMIT_MEMLOCK is 0 bytes"]);
}
