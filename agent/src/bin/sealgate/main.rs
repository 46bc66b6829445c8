//! sealgate: the guest agent. See `sealgate --help`.
#![forbid(unsafe_code)]

extern crate alloc;

use sealgate_linux as shell;
use sealgate_linux::error;

mod cli;
mod client;
mod evidence;
mod init;
mod initdata_source;
mod run;
mod transport;

use std::process::ExitCode;

fn main() -> ExitCode {
    let start_us = init::report::boottime_us();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // As PID 1 (the kernel's /init), every argument belongs to the next init, unless the
    // first one is a sealgate command (`sealgate unseal` as a container's entry point).
    if rustix::process::getpid().is_init()
        && args
            .first()
            .is_none_or(|a| !cli::COMMANDS.contains(&a.as_str()))
    {
        return init::main(cli::Options::default(), args, start_us);
    }
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sealgate: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        cli::Command::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        cli::Command::Version => {
            println!("sealgate {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        cli::Command::Unseal(opts) => with_log_level(&opts)
            .and_then(|()| run::read_sources(&opts))
            .and_then(|sources| run::unseal(&opts, sources)),
        cli::Command::GetResource(opts, uri) => {
            with_log_level(&opts).and_then(|()| run::get_resource(&opts, &uri))
        }
        cli::Command::Init(opts, next_args) => {
            if let Err(run::Failure(message)) = with_log_level(&opts) {
                eprintln!("sealgate: {message}");
                return ExitCode::from(2);
            }
            return init::main(opts, next_args, start_us);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(run::Failure(message)) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Applies the log level early (flag, else `SEALGATE_LOG`); the config file and kernel
/// command line can lower or raise it once loaded.
fn with_log_level(opts: &cli::Options) -> Result<(), run::Failure> {
    let level = opts
        .flags
        .log_level
        .clone()
        .or_else(|| std::env::var("SEALGATE_LOG").ok());
    if let Some(name) = level {
        let level = shell::log::Level::parse(&name).ok_or_else(|| {
            run::Failure(format!(
                "invalid log level '{name}' (error, warn, info or debug)"
            ))
        })?;
        shell::log::set_level(level);
    }
    Ok(())
}
