//! `guest-sim`: the guest side of simulated SEV-SNP and TDX for sealgate's QEMU tests.
//! Test-only: it never goes into a shipped image.
//!
//! ```text
//! guest-sim init       the /init wrapper (also when run as PID 1 under any name)
//! guest-sim daemon     answer /dev/tsm_sim requests with the configured firmware
//! guest-sim selftest   check the tsm_sim module's ABI (echo firmware; powers off)
//! next-stage           (as argv[0]) a stand-in workload init: prints NEXT_STAGE_MARKER, what
//!                      its root is (GUEST-SIM-ROOT) and the SHA-256 of every file listed
//!                      in /etc/next-stage-files (GUEST-SIM-FILE), powers off
//! serve-check          (as argv[0]) the next stage of a serve boot: starts `sealgate serve`,
//!                      unseals over ttrpc and fetches over REST as a client, powers off
//! rtmr-check           (as argv[0]) the next stage of the event-log boot (simulated TDX):
//!                      ExtendRuntimeMeasurement, the RTMR3 and AAEL checks, the KBS's replay
//!                      accepting it and refusing a tampered RTMR3, powers off
//! ```
//!
//! Settings: see [`config`]; `/etc/guest-sim.conf`, then `sim.*` on the kernel command line.

mod config;
mod daemon;
mod firmware;
mod init;
mod proto;
mod rtmr_check;
mod selftest;
mod serve_check;

use config::Config;
use std::io::Write;

/// Where the harness puts the settings file.
const CONFIG_FILE: &str = "/etc/guest-sim.conf";

fn load_config() -> Result<Config, String> {
    let mut cfg = Config::default();
    if let Ok(text) = std::fs::read_to_string(CONFIG_FILE) {
        cfg.apply_file(&text)
            .map_err(|e| format!("{CONFIG_FILE}: {e}"))?;
    }
    // /proc may not be mounted yet when running as /init: the wrapper reads it after mounting.
    if let Ok(cmdline) = std::fs::read_to_string("/proc/cmdline") {
        cfg.apply_cmdline(&cmdline)
            .map_err(|e| format!("kernel command line: {e}"))?;
    }
    Ok(cfg)
}

/// As PID 1 there is nobody to report to: say why on the console and power off.
fn fail_as_init(msg: &str) -> ! {
    eprintln!("guest-sim: FAILED: {msg}");
    let _ = std::io::stderr().flush();
    rustix::fs::sync();
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    std::process::exit(1)
}

/// What the stand-in next stage prints: a test asserts it is absent after a failure.
const NEXT_STAGE_MARKER: &str = "GUEST-SIM-NEXT-STAGE-RAN";

/// What the stand-in next stage reports about the system it was started in: its root's
/// filesystem (from `/proc/self/mountinfo`, when /proc is there) and the digests of the
/// files `/etc/next-stage-files` lists (one path per line).
fn next_stage_report() {
    use sha2::{Digest, Sha256};
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let root = info.lines().rev().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.get(4) != Some(&"/") {
                return None;
            }
            Some(format!("fstype={} source={}", r.first()?, r.get(1)?))
        });
        println!(
            "GUEST-SIM-ROOT {}",
            root.unwrap_or_else(|| "unknown".into())
        );
        for mount in ["/proc", "/sys", "/dev", "/run", "/sealed"] {
            let moved = info.lines().any(|l| l.split(' ').nth(4) == Some(mount));
            println!(
                "GUEST-SIM-MOUNT path={mount} mounted={}",
                if moved { "yes" } else { "no" }
            );
        }
    } else {
        println!("GUEST-SIM-ROOT unknown (no /proc)");
    }
    let list = std::fs::read_to_string("/etc/next-stage-files").unwrap_or_default();
    for path in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match std::fs::read(path) {
            Ok(data) => {
                let hex: String = Sha256::digest(&data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                println!(
                    "GUEST-SIM-FILE path={path} size={} sha256={hex}",
                    data.len()
                );
            }
            Err(e) => println!("GUEST-SIM-FILE path={path} error={}", e.kind()),
        }
    }
    // The old root (the initramfs) is gone after switch_root: its sealgate binary too.
    println!(
        "GUEST-SIM-OLD-ROOT sealgate={}",
        if std::path::Path::new("/sbin/sealgate").exists() {
            "present"
        } else {
            "absent"
        }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pid1 = rustix::process::getpid().is_init();
    let mode = if args.first().is_some_and(|a| a.ends_with("next-stage")) {
        "next-stage"
    } else if args.first().is_some_and(|a| a.ends_with("serve-check")) {
        "serve-check"
    } else if args.first().is_some_and(|a| a.ends_with("rtmr-check")) {
        "rtmr-check"
    } else {
        args.get(1)
            .map(String::as_str)
            .unwrap_or(if pid1 { "init" } else { "" })
    };
    match mode {
        "init" => {
            let err = init::run(load_config);
            fail_as_init(&err)
        }
        "daemon" => {
            let cfg = load_config().unwrap_or_else(|e| {
                eprintln!("guest-sim: {e}");
                std::process::exit(2)
            });
            let mut fw = firmware::from_config(&cfg);
            let dev = daemon::open(daemon::DEVICE).unwrap_or_else(|e| {
                eprintln!("guest-sim: cannot open {}: {e}", daemon::DEVICE);
                std::process::exit(1)
            });
            eprintln!(
                "guest-sim: daemon for provider {}: {}",
                cfg.provider(),
                fw.describe()
            );
            println!("ready");
            let _ = std::io::stdout().flush();
            let err = daemon::serve(dev, fw.as_mut());
            eprintln!("guest-sim: daemon stopped: {err}");
            std::process::exit(1)
        }
        "selftest" => {
            let ok = selftest::run(load_config);
            eprintln!(
                "guest-sim: SELFTEST {}",
                if ok { "PASSED" } else { "FAILED" }
            );
            let _ = std::io::stderr().flush();
            if pid1 {
                let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
            }
            std::process::exit(if ok { 0 } else { 1 })
        }
        "serve-check" | "rtmr-check" => {
            let ok = if mode == "serve-check" {
                serve_check::run()
            } else {
                rtmr_check::run()
            };
            if pid1 {
                rustix::fs::sync();
                let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
            }
            std::process::exit(if ok { 0 } else { 1 })
        }
        "next-stage" => {
            println!("{NEXT_STAGE_MARKER}");
            next_stage_report();
            let _ = std::io::stdout().flush();
            if pid1 {
                let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
            }
            std::process::exit(0)
        }
        _ => {
            eprintln!("usage: guest-sim init|daemon|selftest (test-only; see the crate docs)");
            std::process::exit(2)
        }
    }
}
