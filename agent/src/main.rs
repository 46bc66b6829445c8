//! sealgate: the guest agent. See `sealgate --help`.
//!
//! A `no_std`, `no_main` program with no libc: `sealgate-rt` (origin) starts it, the
//! `sealgate` library holds the logic, and every system call goes through the platform
//! layer (`sealgate-linux`, on rustix).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use sealgate::{cli, init, run, serve};
use sealgate_linux::log::{self, Level};
use sealgate_linux::{eprintln, error, print, println};
use sealgate_rt::Process;

sealgate_rt::program!(main);

/// Exit statuses (README, "Exit status").
const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 2;

fn main(process: Process) -> i32 {
    let start_us = sealgate_linux::time::boottime_us();
    let args: Vec<String> = process.args.iter().skip(1).cloned().collect();
    // The kernel's PID 1: argv is the host's (the kernel passes on what it does not
    // parse from its unmeasured command line, everything after `--` included), so it
    // never selects a command or a flag: all of it belongs to the next init.
    if sealgate_linux::process::is_kernel_init() {
        return init::main(cli::Options::default(), args, &process.env, start_us);
    }
    // Started under an upstream guest-components name (kata's launch plan), or as
    // `sealgate serve`: the server (README, "Guest APIs").
    let role = process
        .args
        .first()
        .and_then(|a| serve::role_of(a))
        .map(|r| (r, &args[..]))
        .or_else(|| {
            (args.first().map(String::as_str) == Some("serve"))
                .then(|| (serve::Role::Serve, &args[1..]))
        });
    if let Some((role, rest)) = role {
        if let Some(level) = process.var("SEALGATE_LOG").and_then(Level::parse) {
            log::set_level(level);
        }
        // An unreadable /proc/cmdline (no /proc) leaves nothing the kernel could have set.
        let cmdline = sealgate_linux::fs::read_file("/proc/cmdline", 64 << 10).unwrap_or_default();
        let env = serve::Env::from_vars(|name| process.var(name), &cmdline);
        return serve::main(role, rest, env);
    }
    // A container's PID 1 (PID 1 of a PID namespace of its own) is started by its
    // runtime: `sealgate unseal ...` as its entry point works; anything else that is not
    // a command runs the init stage with every argument passed on.
    if sealgate_linux::process::is_init()
        && args
            .first()
            .is_none_or(|a| !cli::COMMANDS.contains(&a.as_str()))
    {
        return init::main(cli::Options::default(), args, &process.env, start_us);
    }
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sealgate: {e}");
            return EXIT_USAGE;
        }
    };
    let result = match command {
        cli::Command::Help => {
            print!("{}", cli::USAGE);
            return 0;
        }
        cli::Command::Version => {
            println!("sealgate {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        cli::Command::Unseal(opts) => with_log_level(&opts, &process)
            .map_err(|e| usage(&e))
            .and_then(|()| {
                run::read_sources(&opts)
                    .and_then(|sources| run::unseal(&opts, sources))
                    .map_err(|e| failed(&e))
            }),
        cli::Command::GetResource(opts, uri) => with_log_level(&opts, &process)
            .map_err(|e| usage(&e))
            .and_then(|()| run::get_resource(&opts, &uri).map_err(|e| failed(&e))),
        cli::Command::Exec(opts, spec) => with_log_level(&opts, &process)
            .map_err(|e| usage(&e))
            .and_then(|()| {
                let failure = match run::read_sources(&opts) {
                    Ok(sources) => run::exec(&opts, sources, &spec, &process.env),
                    Err(f) => f,
                };
                Err(failed(&failure))
            }),
        cli::Command::Init(opts, next_args) => {
            if let Err(e) = with_log_level(&opts, &process) {
                return usage(&e);
            }
            return init::main(opts, next_args, &process.env, start_us);
        }
    };
    match result {
        Ok(()) => 0,
        Err(status) => status,
    }
}

fn usage(message: &str) -> i32 {
    eprintln!("sealgate: {message}");
    EXIT_USAGE
}

fn failed(failure: &run::Failure) -> i32 {
    error!("{failure}");
    EXIT_FAILURE
}

/// Applies the log level early (flag, else `SEALGATE_LOG`); the config file and kernel
/// command line can lower or raise it once loaded.
fn with_log_level(opts: &cli::Options, process: &Process) -> Result<(), String> {
    let level = opts
        .flags
        .log_level
        .clone()
        .or_else(|| process.var("SEALGATE_LOG").map(String::from));
    if let Some(name) = level {
        let level = Level::parse(&name)
            .ok_or_else(|| format!("invalid log level '{name}' (error, warn, info or debug)"))?;
        log::set_level(level);
    }
    Ok(())
}
