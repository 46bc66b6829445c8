//! `test-kbs`: the test KBS as a program, for the demo and for manual runs.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use test_kbs::{
    Balance, Config, Fault, Fleet, Policy, Server, SnpPolicy, SnpRoots, SnpVerifier, TdxPolicy,
    TdxVerifier, Tee, TlsSettings,
};

const USAGE: &str = "\
usage: test-kbs [--listen ADDR] [--resources DIR] [--policy FILE]
                [--session-timeout SECS] [--token-lifetime SECS] [--token-leeway SECS]
                [--keep-alive SECS] [--chunked] [--close-after-response]
                [--tls-cert PEM --tls-key PEM [--tls12-only]]
                [--fault STEP:KIND[:ARG][:COUNT]]... [--ready-file PATH] [--quiet]
                [--replicas N [--balance request|connection]]
                [--trust-sim-roots SEED]
                [--snp-ark FILE [--snp-ask FILE] [--snp-asvk FILE]]
                [--snp-measurement HEX]... [--snp-host-data HEX]...
                [--tdx-root FILE] [--tdx-mrtd HEX]... [--tdx-rtmr N:HEX]...
       test-kbs certs --out DIR [--name NAME]... [--self-signed-ca]

A test Trustee KBS (RCAR 0.4.0) over HTTP/1.1, plain or HTTPS.

  --listen ADDR            address to listen on (default 127.0.0.1:8080; port 0 = any free port)
  --resources DIR          serve DIR/<repo>/<type>/<tag> files as resources
  --policy FILE            resource policy (TOML; default: allow TEEs appraised 'affirming')
  --session-timeout SECS   session lifetime from /auth (default 300)
  --token-lifetime SECS    token exp - iat (default 300)
  --token-leeway SECS      accepted lateness of exp (default 60)
  --keep-alive SECS        idle timeout of persistent connections (default 5)
  --chunked                send responses with Transfer-Encoding: chunked
  --close-after-response   close the connection after every response
  --tls-cert PEM           serve HTTPS with this certificate chain (leaf first)...
  --tls-key PEM            ...and its private key (rustls, ring provider; ALPN http/1.1)
  --tls12-only             offer TLS 1.2 only (default: 1.3 and 1.2)
  --fault SPEC             inject a fault, e.g. resource:close-mid-response:1, auth:status:503:2,
                           attest:delay:500, resource=default/keys/k:oversize:64M:1
                           (kinds: reset close-mid-response delay:MS drip:MS hang status:CODE
                           truncated-body garbage-body oversize:BYTES expire-session invalid-token;
                           step 'handshake' breaks a TLS handshake: reset, close-mid-response,
                           hang or delay:MS)
  --replicas N             run N replicas (sharing the token key, resources, policy and faults;
                           each with its own sessions) behind a round-robin front on ADDR
  --balance MODE           how the front balances: 'request' (each request to the next replica,
                           as an L7 load balancer; the default) or 'connection' (each connection)
  --ready-file PATH        once listening, write the URL to PATH
  --quiet                  do not log requests to stderr

Evidence verifiers (sample and sampledevice always; snp and tdx once given trust anchors):
  --trust-sim-roots SEED   trust the SNP ARK/ASK (Milan, Genoa, Turin) and the TDX root CA that
                           firmware-glue's simulators derive from SEED (their default seed is
                           'sealgate test roots')
  --snp-ark FILE           trusted ARK certificate (DER or PEM), for any CPU generation
                           (replaces the simulators' SNP roots)
  --snp-ask FILE           trusted ASK (used when the evidence carries none)
  --snp-asvk FILE          trusted ASVK (the ASK of VLEKs)
  --snp-measurement HEX    allowed SNP MEASUREMENT (48 bytes; repeat; none = any)
  --snp-host-data HEX      allowed SNP HOST_DATA (32 bytes; repeat; none = any)
  --tdx-root FILE          trusted TDX/SGX root CA certificate (DER or PEM)
  --tdx-mrtd HEX           allowed MRTD (48 bytes; repeat; none = any)
  --tdx-rtmr N:HEX         required value of RTMR N (0..3)

Prints the URL (http://ADDR or https://ADDR) on stdout once listening, then serves until
killed.

certs: writes test certificates (ECDSA P-256, valid 2000-2090) into DIR: ca.pem (the trust
anchor to give sealgate), and server.pem + server-key.pem issued by it for the NAMEs (DNS
names or IP addresses; default localhost and 127.0.0.1). With --self-signed-ca, server.pem is
self-signed with CA:true instead (as `openssl req -x509` makes them: sealgate accepts it as
an exact pin) and ca.pem is a copy of it.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("certs") {
        return match certs(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("test-kbs certs: {e}\n\n{USAGE}");
                ExitCode::from(2)
            }
        };
    }
    let config = match parse(args.into_iter()) {
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
    let Parsed {
        config,
        ready_file,
        replicas,
        balance,
    } = config;
    let started = match replicas {
        None => Server::start(config).map(Running::One),
        Some(n) => Fleet::start(config, n, balance).map(Running::Fleet),
    };
    let running = match started {
        Ok(running) => running,
        Err(e) => {
            eprintln!("test-kbs: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = running.url();
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

/// `test-kbs certs --out DIR [--name NAME]... [--self-signed-ca]`.
fn certs(args: &[String]) -> Result<(), String> {
    let mut out = None;
    let mut names: Vec<String> = Vec::new();
    let mut self_signed_ca = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value(arg)?)),
            "--name" => names.push(value(arg)?),
            "--self-signed-ca" => self_signed_ca = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (ca_pem, server) = if self_signed_ca {
        let server = test_kbs::certs::self_signed(&names, true);
        (server.cert_pem.clone(), server)
    } else {
        let ca = test_kbs::certs::TestCa::new("test-kbs CA");
        let server = ca.issue(&names);
        (ca.cert_pem, server)
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (file, text) in [
        ("ca.pem", ca_pem.as_str()),
        ("server.pem", server.cert_pem.as_str()),
        ("server-key.pem", server.key_pem.as_str()),
    ] {
        let path = out.join(file);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes `url` to `path` atomically (a temporary file renamed), so a watcher never reads half.
fn write_ready_file(path: &PathBuf, url: &str) -> std::io::Result<()> {
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(&tmp, path)
}

struct Parsed {
    config: Config,
    ready_file: Option<PathBuf>,
    /// `--replicas N`: a fleet.
    replicas: Option<usize>,
    balance: Balance,
}

/// What is serving (kept alive until the process is killed).
enum Running {
    One(Server),
    Fleet(Fleet),
}

impl Running {
    fn url(&self) -> String {
        match self {
            Running::One(server) => server.url(),
            Running::Fleet(fleet) => fleet.url(),
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Parsed>, String> {
    let mut config = Config {
        listen: ([127, 0, 0, 1], 8080).into(),
        log: true,
        ..Config::default()
    };
    let mut ready_file = None;
    let mut replicas = None;
    let mut balance = Balance::default();
    let mut tees = TeeFlags::default();
    let (mut tls_cert, mut tls_key, mut tls12_only) = (None, None, false);
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
            "--tls-cert" => tls_cert = Some(value(&arg)?),
            "--tls-key" => tls_key = Some(value(&arg)?),
            "--tls12-only" => tls12_only = true,
            "--fault" => config.faults.push(value("--fault")?.parse::<Fault>()?),
            "--ready-file" => ready_file = Some(PathBuf::from(value("--ready-file")?)),
            "--quiet" => config.log = false,
            "--replicas" => {
                let v = value(&arg)?;
                replicas = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| format!("--replicas takes 1 to 64, not {v:?}"))?,
                );
            }
            "--balance" => {
                balance = match value(&arg)?.as_str() {
                    "request" => Balance::PerRequest,
                    "connection" => Balance::PerConnection,
                    other => {
                        return Err(format!(
                            "--balance takes 'request' or 'connection', not {other:?}"
                        ));
                    }
                }
            }
            "--trust-sim-roots" => tees.sim_seed = Some(value(&arg)?),
            "--snp-ark" => tees.snp_ark = Some(certificate_file(&value(&arg)?)?),
            "--snp-ask" => tees.snp_ask = Some(certificate_file(&value(&arg)?)?),
            "--snp-asvk" => tees.snp_asvk = Some(certificate_file(&value(&arg)?)?),
            "--snp-measurement" => tees.snp.allow_measurement_hex(&value(&arg)?)?,
            "--snp-host-data" => tees.snp.allow_host_data_hex(&value(&arg)?)?,
            "--tdx-root" => tees.tdx_root = Some(certificate_file(&value(&arg)?)?),
            "--tdx-mrtd" => tees.tdx.allow_mr_td_hex(&value(&arg)?)?,
            "--tdx-rtmr" => {
                let v = value(&arg)?;
                let (index, hex) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--tdx-rtmr takes N:HEX, not {v:?}"))?;
                let index = index
                    .parse()
                    .map_err(|_| format!("bad RTMR index {index:?}"))?;
                tees.tdx.expect_rtmr_hex(index, hex)?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    tees.install(&mut config)?;
    config.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsSettings::from_files(&cert, &key, tls12_only)?),
        (None, None) if !tls12_only => None,
        _ => return Err("HTTPS needs both --tls-cert and --tls-key".into()),
    };
    if replicas.is_none() && balance != Balance::default() {
        return Err("--balance needs --replicas".into());
    }
    Ok(Some(Parsed {
        config,
        ready_file,
        replicas,
        balance,
    }))
}

/// The SNP/TDX verifier flags, applied once all are read.
#[derive(Default)]
struct TeeFlags {
    sim_seed: Option<String>,
    snp_ark: Option<Vec<u8>>,
    snp_ask: Option<Vec<u8>>,
    snp_asvk: Option<Vec<u8>>,
    snp: SnpPolicy,
    tdx_root: Option<Vec<u8>>,
    tdx: TdxPolicy,
}

impl TeeFlags {
    fn install(self, config: &mut Config) -> Result<(), String> {
        let seed = self.sim_seed.as_deref().map(str::as_bytes);
        // An explicit ARK replaces the simulators' roots for SNP (the seed may still provide
        // the TDX root), and likewise an explicit TDX root.
        let snp = match (self.snp_ark, seed) {
            (Some(ark), _) => Some(SnpVerifier::new(self.snp).with_roots(
                None,
                SnpRoots {
                    ark,
                    ask: self.snp_ask,
                    asvk: self.snp_asvk,
                },
            )),
            (None, Some(seed)) if self.snp_ask.is_none() && self.snp_asvk.is_none() => {
                Some(SnpVerifier::from_sim_seed(seed, self.snp))
            }
            (None, _)
                if self.snp_ask.is_some()
                    || self.snp_asvk.is_some()
                    || self.snp != SnpPolicy::default() =>
            {
                return Err("the --snp-* options need --snp-ark (or --trust-sim-roots for the policy options)".into());
            }
            (None, _) => None,
        };
        if let Some(snp) = snp {
            config.verifiers.insert(Tee::Snp, snp);
        }
        let tdx_root = match (self.tdx_root, seed) {
            (Some(root), _) => root,
            (None, Some(seed)) => firmware_glue::sim::tdx::root(seed),
            (None, None) if self.tdx != TdxPolicy::default() => {
                return Err("the --tdx-* options need --tdx-root or --trust-sim-roots".into());
            }
            (None, None) => return Ok(()),
        };
        config
            .verifiers
            .insert(Tee::Tdx, TdxVerifier::new(tdx_root, self.tdx));
        Ok(())
    }
}

/// A certificate file, DER or PEM (the first certificate).
fn certificate_file(path: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if bytes.starts_with(b"-----BEGIN") {
        let text = String::from_utf8_lossy(&bytes);
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect::<Vec<_>>()
            .join("");
        return sealgate_core::b64::std_decode(body.trim())
            .map_err(|_| format!("{path}: PEM body is not base64"));
    }
    Ok(bytes)
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("bad number of seconds {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(list: &[&str]) -> Result<Option<Parsed>, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    fn args(list: &[&str]) -> Result<Option<(Config, Option<PathBuf>)>, String> {
        parsed(list).map(|p| p.map(|p| (p.config, p.ready_file)))
    }

    #[test]
    fn parses_fleet_flags() {
        let p = parsed(&["--replicas", "3"]).unwrap().unwrap();
        assert_eq!((p.replicas, p.balance), (Some(3), Balance::PerRequest));
        let p = parsed(&["--replicas", "2", "--balance", "connection"])
            .unwrap()
            .unwrap();
        assert_eq!((p.replicas, p.balance), (Some(2), Balance::PerConnection));
        assert!(parsed(&[]).unwrap().unwrap().replicas.is_none());
        for bad in [
            &["--replicas", "0"][..],
            &["--replicas", "65"],
            &["--replicas", "x"],
            &["--replicas", "2", "--balance", "random"],
            &["--balance", "connection"],
        ] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
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
        let (config, _) = args(&[
            "--trust-sim-roots",
            "seed",
            "--tdx-rtmr",
            &format!("3:{}", "00".repeat(48)),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            format!("{:?}", config.verifiers),
            r#"Verifiers(["sample", "sampledevice", "snp", "tdx"])"#
        );
        let (config, _) = args(&[]).unwrap().unwrap();
        assert_eq!(
            format!("{:?}", config.verifiers),
            r#"Verifiers(["sample", "sampledevice"])"#
        );
        for bad in [
            &["--tdx-rtmr", "3"][..],
            &["--tdx-mrtd", "00"],
            &["--listen"][..],
            &["--bogus"],
            &["--fault", "auth:nope"],
            &["--keep-alive", "x"],
            &["--tls-cert", "/nonexistent.pem"],
            &["--tls12-only"],
            &[
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.pem",
            ],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }
}
