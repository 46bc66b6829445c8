//! `sealgate init`: sealgate as the first process of a confidential VM.
//!
//! Entered as `sealgate init [OPTIONS] [-- ARGS]`, or automatically as the kernel's PID 1
//! (the kernel started it as `/init`, or a wrapper exec'ed it), whatever its arguments:
//! they come from the unmeasured kernel command line and all belong to the next init
//! (see `sealgate_linux::process::is_kernel_init`). As a container's PID 1 it is entered
//! when the first argument is not a sealgate command. Steps, each
//! logged with its duration at debug level:
//!
//! 1. mount proc, sysfs, devtmpfs and a tmpfs on `/run`, unless already mounted
//!    ([`mounts`]);
//! 2. read the configuration (flags > config file > kernel command line > defaults, the
//!    command line cut down to what it may set: [`sealgate_core::trust`]; see
//!    [`sealgate_core::config::InitConfig`]) and load the kernel modules, dependencies first
//!    ([`modules`]);
//! 3. mount configfs on `/sys/kernel/config`;
//! 4. configure the network over rtnetlink ([`network`]);
//! 5. unseal: exactly `sealgate unseal` ([`crate::run::unseal`]) with the same
//!    configuration, init-data included (default `/etc/sealgate/initdata.toml` if it
//!    exists), retrying an unreachable KBS until the deadline;
//!    The same run opens the encrypted volumes (`[[volume]]`, [`crate::volume`]): mapped
//!    through device-mapper, mounted;
//! 6. exec the next init (`next_init`, default `/sbin/init`) with the remaining
//!    arguments, after switching into the root volume if one is declared (`root = true`:
//!    [`mounts::switch_root`], the next init is then looked up there), or in report mode
//!    print the [`report`] (volumes included) on the console and power off;
//! 7. on failure, print `SEALGATE-FAILED <reason>` and fail closed: power off (or halt);
//!    only `on_failure=continue` starts the next stage anyway, announced by a
//!    `SEALGATE-CONTINUING` line and an error in the log.
//!
//! Powering off (or halting) is done only by PID 1 (`reboot(2)`; in a PID namespace the
//! kernel turns that into the end of the namespace: its init is killed and the parent
//! sees it die of `SIGINT`, or `SIGHUP` for a restart). Run as any other process,
//! `sealgate init` exits instead: status 0 after a report, 1 after a failure.

pub mod report;

use crate::cli::Options;
use crate::run::{self, Failure};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;
use sealgate_core::config::{self, InitConfig, InitMode, OnFailure, Settings, parse_modules_file};
use sealgate_linux::process::{self, Shutdown};
use sealgate_linux::time::{self, Instant};
use sealgate_linux::{debug, error, info, warn};
use sealgate_linux::{modules, mounts, network};

/// Exit status after success (not PID 1).
const EXIT_OK: i32 = 0;
/// Exit status after a failure (not PID 1).
const EXIT_FAILED: i32 = 1;
/// The most of the modules file read.
const MODULES_FILE_LIMIT: usize = 64 << 10;

/// Writes one line to the console (stdout: the console when the kernel starts us),
/// in a single write so kernel messages do not split it.
fn console(line: &str) {
    sealgate_linux::println!("{line}");
}

/// The operator's reading of a failure (never secret material).
fn reason(failure: &Failure) -> String {
    failure.to_string()
}

/// Runs `f`, logging its duration at debug level.
fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    debug!(
        "init: step {name}: {} ms (boot time {} ms)",
        t.elapsed().as_millis(),
        report::boottime_us() / 1000
    );
    r
}

/// How the machine stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    PowerOff,
    Halt,
}

impl Stop {
    fn after_failure(policy: OnFailure) -> Stop {
        match policy {
            OnFailure::Halt => Stop::Halt,
            OnFailure::PowerOff | OnFailure::Continue => Stop::PowerOff,
        }
    }
}

/// The init stage. As PID 1 it does not return: it execs the next init or stops the
/// machine. Otherwise it returns the exit status (0 after a report, 1 after a failure).
///
/// `env` is the environment sealgate was started with (`NAME=value` entries); the next
/// init gets it unchanged.
pub fn main<E: AsRef<[u8]>>(
    mut opts: Options,
    next_args: Vec<String>,
    env: &[E],
    start_us: u64,
) -> i32 {
    let pid1 = process::is_init();
    info!(
        "init: sealgate {} init stage (pid {})",
        env!("CARGO_PKG_VERSION"),
        process::id()
    );
    // Timed by hand: the log level (maybe `sealgate.log=debug`) is known only once
    // /proc is mounted, so this step is logged afterwards.
    let t = Instant::now();
    let mounted = mounts::early();
    let mounts_ms = t.elapsed().as_millis();

    let (mut init, settings, sources) = match prepare(&opts) {
        Ok(v) => v,
        Err((reason, policy)) => {
            // Without a usable configuration nothing sensible can run next: stop, even
            // with on_failure=continue.
            return fail_and_stop(&reason, Stop::after_failure(policy), pid1);
        }
    };
    apply_log_level(&opts, &init, env);
    mounted.log();
    debug!("init: step mounts: {mounts_ms} ms");

    let specs = match &init.modules {
        Some(specs) => specs.clone(),
        None => modules_from_file(),
    };
    step("modules", || {
        modules::load_all(&specs, &init.module_options, &modules::modules_dir())
    });
    step("configfs", mounts::configfs);
    match &init.net {
        Some(plan) => step("network", || network::setup(plan)),
        None => debug!("init: network configuration is off"),
    }

    if settings.init_data.is_none() && sealgate_linux::fs::exists(config::DEFAULT_INIT_DATA_FILE) {
        info!("init: using init-data {}", config::DEFAULT_INIT_DATA_FILE);
        opts.flags.init_data = Some(config::DEFAULT_INIT_DATA_FILE.to_string());
    }
    // The layers read for the init settings are the ones unseal uses: read once. Loading
    // adds init-data (checked against the TEE first), whose sealgate.toml may set the
    // mode, the next init and the failure policy: they apply from here on.
    let mut sealed_dir = settings
        .sealed_dir
        .clone()
        .unwrap_or_else(|| config::DEFAULT_SEALED_DIR.to_string());
    let result = step("unseal", || {
        let started = sealgate_linux::time::Instant::now();
        let loaded = run::load_config(&opts, sources)?;
        match loaded.settings.resolve_init() {
            Ok(i) => {
                init.mode = i.mode;
                init.next_init = i.next_init;
                init.on_failure = i.on_failure;
            }
            Err(e) => return Err(Failure::Config(e)),
        }
        sealed_dir = loaded.config.sealed_dir.clone();
        run::unseal_loaded(loaded, started)
    });
    let secrets_us = result.is_ok().then(report::boottime_us);
    let mut volumes = Vec::new();
    let ok = match result {
        Ok(opened) => {
            volumes = opened;
            true
        }
        Err(failure) => {
            let reason = reason(&failure);
            console(&report::failed_line(&reason));
            error!("{reason}");
            if init.on_failure != OnFailure::Continue {
                return stop(Stop::after_failure(init.on_failure), pid1, EXIT_FAILED);
            }
            false
        }
    };

    let sealed_dir = sealed_dir.as_str();
    match init.mode {
        InitMode::Report => {
            if !ok {
                continuing("the report", &init);
            }
            let mut lines = report::build(sealed_dir, ok, start_us, secrets_us);
            // The volume lines go before the closing timing and end lines.
            let at = lines.len().saturating_sub(2);
            lines.splice(at..at, report::volume_lines(&volumes));
            for line in lines {
                console(&line);
            }
            stop(Stop::PowerOff, pid1, if ok { EXIT_OK } else { EXIT_FAILED })
        }
        InitMode::Exec => {
            if let Some(root) = volumes.iter().find(|v| v.root) {
                let new_root = root.mount.clone().unwrap_or_default();
                // The secrets and the other volumes follow into the new root.
                let keep: Vec<&str> = core::iter::once(sealed_dir)
                    .chain(
                        volumes
                            .iter()
                            .filter(|v| !v.root)
                            .filter_map(|v| v.mount.as_deref()),
                    )
                    .filter(|d| mounts::is_mount_point(d))
                    .collect();
                if let Err(e) = step("switch_root", || mounts::switch_root(&new_root, &keep)) {
                    // The next init is looked up on the new root: without the switch
                    // there is nothing sensible to start.
                    // (`on_failure = "continue"` powers off here too.)
                    return fail_and_stop(
                        &format!("volume '{}' as the new root: {e}", root.name),
                        Stop::after_failure(init.on_failure),
                        pid1,
                    );
                }
                info!(
                    "init: switched root to volume '{}' ({})",
                    root.name, root.node
                );
            }
            let next = match next_init(&init) {
                Ok(path) => path,
                Err(reason) => {
                    return fail_and_stop(&reason, Stop::after_failure(init.on_failure), pid1);
                }
            };
            if !ok {
                continuing(&next, &init);
            }
            info!(
                "init: boot to secrets {} ms (sealgate {} ms); exec {next}",
                secrets_us.map_or(-1, |s| (s / 1000) as i64),
                secrets_us.map_or(-1, |s| (s.saturating_sub(start_us) / 1000) as i64)
            );
            let argv: Vec<&str> = core::iter::once(next.as_str())
                .chain(next_args.iter().map(String::as_str))
                .collect();
            let e = process::exec(&next, &argv, env);
            fail_and_stop(
                &format!(
                    "cannot start the next init {next}: {}",
                    sealgate_linux::os(e)
                ),
                Stop::after_failure(init.on_failure),
                pid1,
            )
        }
    }
}

/// Reads the configuration layers and resolves the init settings; on failure, the
/// failure and the best-known failure policy.
fn prepare(opts: &Options) -> Result<(InitConfig, Settings, run::Sources), (String, OnFailure)> {
    let flags_policy = opts.flags.on_failure.unwrap_or(OnFailure::PowerOff);
    let sources = run::read_sources(opts).map_err(|f| (reason(&f), flags_policy))?;
    let merged = sources.merged(&opts.flags);
    let policy = merged.on_failure.unwrap_or(OnFailure::PowerOff);
    let init = merged.resolve_init().map_err(|e| (e.to_string(), policy))?;
    debug!("init: {init:?}");
    Ok((init, merged, sources))
}

/// The configured log level, unless a flag or `SEALGATE_LOG` set one already.
fn apply_log_level<E: AsRef<[u8]>>(opts: &Options, init: &InitConfig, env: &[E]) {
    if opts.flags.log_level.is_some() || process::env_var(env, "SEALGATE_LOG").is_some() {
        return;
    }
    if let Some(name) = &init.log_level {
        match sealgate_linux::log::Level::parse(name) {
            Some(level) => sealgate_linux::log::set_level(level),
            None => warn!("init: ignoring invalid log level '{name}'"),
        }
    }
}

fn modules_from_file() -> Vec<config::ModuleSpec> {
    match sealgate_linux::fs::read_file(config::DEFAULT_MODULES_FILE, MODULES_FILE_LIMIT) {
        Ok(bytes) => match core::str::from_utf8(&bytes) {
            Ok(text) => parse_modules_file(text).unwrap_or_else(|e| {
                warn!("init: {}: {e}", config::DEFAULT_MODULES_FILE);
                Vec::new()
            }),
            Err(_) => {
                warn!("init: {}: not UTF-8", config::DEFAULT_MODULES_FILE);
                Vec::new()
            }
        },
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => {
            warn!("init: {}: {e}", config::DEFAULT_MODULES_FILE);
            Vec::new()
        }
    }
}

fn next_init(init: &InitConfig) -> Result<String, String> {
    match &init.next_init {
        Some(path) => Ok(path.clone()),
        None if sealgate_linux::fs::exists(config::DEFAULT_NEXT_INIT) => {
            Ok(config::DEFAULT_NEXT_INIT.to_string())
        }
        None => Err(format!(
            "no next init: {} does not exist and none is configured (sealgate.next_init=, [init] next_init, --next-init), \
             or use sealgate.mode=report",
            config::DEFAULT_NEXT_INIT
        )),
    }
}

/// Announces, on the console and in the log, that the next stage starts without secrets.
fn continuing(what: &str, init: &InitConfig) {
    console(&format!(
        "{} {what} WITHOUT SECRETS (on_failure={})",
        report::CONTINUING,
        init.on_failure.name()
    ));
    error!(
        "INSECURE: attestation or unsealing failed and on_failure=continue: starting {what} without the secrets"
    );
}

fn fail_and_stop(reason: &str, how: Stop, pid1: bool) -> i32 {
    console(&report::failed_line(reason));
    error!("{reason}");
    stop(how, pid1, EXIT_FAILED)
}

/// Stops the machine if PID 1 (never returns then); otherwise returns `code`.
fn stop(how: Stop, pid1: bool, code: i32) -> i32 {
    if !pid1 {
        debug!("init: not PID 1: exiting instead of {how:?}");
        return code;
    }
    info!("init: {how:?}");
    let e = process::shutdown(match how {
        Stop::PowerOff => Shutdown::PowerOff,
        Stop::Halt => Shutdown::Halt,
    });
    // PID 1 must not exit (the kernel would panic, and with panic=N reboot into the same
    // failure again): sleep forever instead.
    error!("init: reboot(2) failed: {e:?}; sleeping forever");
    loop {
        time::sleep(Duration::from_secs(3600));
    }
}
