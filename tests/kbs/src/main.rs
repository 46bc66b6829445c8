//! `test-kbs`: the test KBS as a program, for the demo and for manual runs.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use test_kbs::{Config, Fault, Policy, Server};

const USAGE: &str = "\
usage: test-kbs [--listen ADDR] [--resources DIR] [--policy FILE]
                [--session-timeout SECS] [--token-lifetime SECS] [--token-leeway SECS]
                [--keep-alive SECS] [--chunked] [--close-after-response]
                [--fault STEP:KIND[:ARG][:COUNT]]... [--ready-file PATH] [--quiet]

A test Trustee KBS (RCAR 0.4.0) over plain HTTP/1.1.

  --listen ADDR            address to listen on (default 127.0.0.1:8080; port 0 = any free port)
  --resources DIR          serve DIR/<repo>/<type>/<tag> files as resources
  --policy FILE            resource policy (TOML; default: allow TEEs appraised 'affirming')
  --session-timeout SECS   session lifetime from /auth (default 300)
  --token-lifetime SECS    token exp - iat (default 300)
  --token-leeway SECS      accepted lateness of exp (default 60)
  --keep-alive SECS        idle timeout of persistent connections (default 5)
  --chunked                send responses with Transfer-Encoding: chunked
  --close-after-response   close the connection after every response
  --fault SPEC             inject a fault, e.g. resource:close-mid-response:1, auth:status:503:2,
                           attest:delay:500, resource=default/keys/k:oversize:64M:1
                           (kinds: reset close-mid-response delay:MS status:CODE truncated-body
                           garbage-body oversize:BYTES expire-session invalid-token)
  --ready-file PATH        once listening, write the URL to PATH
  --quiet                  do not log requests to stderr

Prints the URL (http://ADDR) on stdout once listening, then serves until killed.";

fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("test-kbs: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (config, ready_file) = config;
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("test-kbs: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    if let Some(path) = ready_file
        && let Err(e) = write_ready_file(&path, &url)
    {
        eprintln!("test-kbs: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{url}");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

/// Writes `url` to `path` atomically (a temporary file renamed), so a watcher never reads half.
fn write_ready_file(path: &PathBuf, url: &str) -> std::io::Result<()> {
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(&tmp, path)
}

type Parsed = (Config, Option<PathBuf>);

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Parsed>, String> {
    let mut config = Config {
        listen: ([127, 0, 0, 1], 8080).into(),
        log: true,
        ..Config::default()
    };
    let mut ready_file = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("--listen")?;
                config.listen = v.parse().map_err(|_| format!("bad address {v:?}"))?;
            }
            "--resources" => config.resources_dir = Some(value("--resources")?.into()),
            "--policy" => config.policy = Policy::load(&PathBuf::from(value("--policy")?))?,
            "--session-timeout" => config.session_timeout = seconds(&value(&arg)?)?,
            "--token-lifetime" => config.token_lifetime = seconds(&value(&arg)?)?,
            "--token-leeway" => config.token_leeway = seconds(&value(&arg)?)?,
            "--keep-alive" => config.keep_alive = seconds(&value(&arg)?)?,
            "--chunked" => config.chunked = true,
            "--close-after-response" => config.close_after_response = true,
            "--fault" => config.faults.push(value("--fault")?.parse::<Fault>()?),
            "--ready-file" => ready_file = Some(PathBuf::from(value("--ready-file")?)),
            "--quiet" => config.log = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some((config, ready_file)))
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("bad number of seconds {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Parsed>, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags() {
        let (config, ready) = args(&[
            "--listen",
            "127.0.0.1:0",
            "--resources",
            "/tmp/r",
            "--session-timeout",
            "7",
            "--chunked",
            "--fault",
            "resource:close-mid-response:1",
            "--fault",
            "auth:reset",
            "--ready-file",
            "/tmp/ready",
            "--quiet",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.session_timeout, Duration::from_secs(7));
        assert!(config.chunked && !config.close_after_response && !config.log);
        assert_eq!(config.faults.len(), 2);
        assert_eq!(ready, Some(PathBuf::from("/tmp/ready")));
        assert!(args(&["--help"]).unwrap().is_none());
        for bad in [
            &["--listen"][..],
            &["--bogus"],
            &["--fault", "auth:nope"],
            &["--keep-alive", "x"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }
}
