//! sealctl: host-side operator tool for CoCo sealed secrets.
//!
//! `keygen` makes an ES256 signing key pair (JWK files, as upstream's `secret keygen`),
//! `seal vault` signs a reference to a KBS resource into a `sealed.…` string (as upstream's
//! `secret seal … vault`), `inspect` decodes one and optionally verifies its signature,
//! `initdata` prints what the host binds for an init-data document.
//! Exit status: 0 success, 1 failure, 2 usage error.
#![forbid(unsafe_code)]

// The platform layer's logging and RNG (the rest of it is the guest agent's).
use sealgate_linux::{error, info, warn};
mod shell {
    pub(crate) use sealgate_linux::os_rng;
}

mod args;
mod initdata;
mod inspect;
mod keygen;
mod seal;

use std::io::Read;
use std::process::ExitCode;

use args::Failure;
use zeroize::Zeroizing;

const USAGE: &str = "\
Usage: sealctl <COMMAND> [OPTIONS]

Operator tool for Confidential Containers sealed secrets (sealed.<JWS>).

Commands:
  keygen        Generate an ES256 (EC P-256) signing key pair as JWK files
  seal vault    Sign a sealed secret that references a KBS resource
  inspect       Decode a sealed secret and optionally verify its signature
  initdata      Init-data digest, SNP HOST_DATA / TDX MRCONFIGID, kata disk image
  help          Show this help, or a command's help (sealctl help <COMMAND>)

Run 'sealctl <COMMAND> --help' for a command's options.
Exit status: 0 success, 1 failure, 2 usage error.
";

fn main() -> ExitCode {
    sealgate_linux::log::set_program(sealgate_linux::log::Program::Sealctl);
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(args) => args,
        Err(_) => {
            eprintln!("sealctl: arguments must be valid UTF-8");
            return ExitCode::from(2);
        }
    };
    if args.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage { command, message }) => {
            let help = if command.is_empty() {
                "sealctl --help".to_string()
            } else {
                format!("sealctl {command} --help")
            };
            eprintln!("sealctl: {message}\nTry '{help}'.");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            error!("{message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Failure::usage("", "no command given"));
    };
    match command.as_str() {
        "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        "help" => match rest.first().map(String::as_str) {
            None => {
                print!("{USAGE}");
                Ok(())
            }
            Some(command) => run(&[command.to_string(), "--help".to_string()]),
        },
        "-V" | "--version" => {
            println!("sealctl {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "keygen" => keygen::run(rest),
        "seal" => seal::run(rest),
        "inspect" => inspect::run(rest),
        "initdata" => initdata::run(rest),
        other => Err(Failure::usage(
            "",
            format!("unknown command '{}'", other.escape_debug()),
        )),
    }
}

/// Reads a whole file (or stdin for `-`), refusing more than `limit` bytes. The buffer is
/// wiped on drop since it may hold a private key.
fn read_limited(path: &str, limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let fail = |e: std::io::Error| Failure::failed(format!("cannot read {what} '{path}': {e}"));
    let mut buf = Zeroizing::new(Vec::with_capacity(4096));
    let taken = if path == "-" {
        std::io::stdin()
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
    } else {
        std::fs::File::open(path)
            .map_err(fail)?
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
    };
    taken.map_err(fail)?;
    if buf.len() > limit {
        return Err(Failure::failed(format!(
            "{what} '{path}' is larger than {limit} bytes"
        )));
    }
    Ok(buf)
}

/// An untrusted string made safe for a terminal: control characters escaped.
fn show(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
