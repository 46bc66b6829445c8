//! The `unseal` and `get-resource` commands: configuration, planning, attestation,
//! fetching, and the all-or-nothing write.
//!
//! Order matters for failure behaviour: everything that can be checked locally (config,
//! output paths, sealed-secret syntax, the sealed directory, init-data against the TEE)
//! is checked before the first byte goes to the KBS; every secret is fetched into memory
//! before the first file is written; and the write is one atomic commit.

use crate::cli::Options;
use crate::client::{Client, ClientError};
use crate::evidence::Attester;
use crate::initdata_source;
use crate::transport::HttpTransport;
use sealgate_core::config::{self, Config, Settings};
use sealgate_core::hosts::Url;
use sealgate_core::initdata::InitData;
use sealgate_core::outpath::RelPath;
use sealgate_core::sealed::{self, KeySource, PublicJwk, SealedSecret, Secret, Unseal};
use sealgate_core::teekey::TeeKey;
use sealgate_core::uri::ResourceUri;
use sealgate_linux::inputdir::{self, InputLimits};
use sealgate_linux::net::{ClientConfig, HttpClient};
use sealgate_linux::os_rng;
use sealgate_linux::sealdir::{Owner, SealDir, SealOptions};
use sealgate_linux::time::Instant;
use sealgate_linux::{debug, info, warn};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// A failure, as the operator reads it on the console. Built from errors whose messages
/// never contain secret material.
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// The configuration after merging every source.
pub struct Loaded {
    /// The resolved settings.
    pub config: Config,
    /// Init-data, if configured.
    pub init_data: Option<InitData>,
}

/// The settings of the config file and of the kernel command line, unmerged.
pub struct Sources {
    /// The config file's settings (empty if there is none).
    pub file: Settings,
    /// The kernel command line's settings.
    pub cmdline: Settings,
}

impl Sources {
    /// Flags, config file and kernel command line merged (no init-data, no defaults).
    pub fn merged(&self, flags: &Settings) -> Settings {
        flags.clone().or(&self.file).or(&self.cmdline)
    }
}

/// Reads the kernel command line and the config file it (or the flags) name.
pub fn read_sources(opts: &Options) -> Result<Sources, Failure> {
    let cmdline_path = opts.kernel_cmdline.as_deref().unwrap_or("/proc/cmdline");
    let cmdline = match std::fs::read_to_string(cmdline_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Failure(format!(
                "cannot read kernel command line {cmdline_path}: {e}"
            )));
        }
    };
    let (from_cmdline, cmdline_config, notes) = config::parse_cmdline(&cmdline)?;
    for note in notes {
        warn!("{note}");
    }

    let config_path = opts.config_file.clone().or(cmdline_config).or_else(|| {
        Path::new(config::DEFAULT_CONFIG_FILE)
            .exists()
            .then(|| config::DEFAULT_CONFIG_FILE.to_string())
    });
    let from_file = match &config_path {
        Some(path) => {
            let text = read_bounded(Path::new(path), 1 << 20)
                .map_err(|e| Failure(format!("cannot read config file {path}: {e}")))?;
            let text = String::from_utf8(text)
                .map_err(|_| Failure(format!("config file {path} is not UTF-8")))?;
            config::parse_file(&text).map_err(|e| Failure(format!("{path}: {e}")))?
        }
        None => Settings::default(),
    };
    Ok(Sources {
        file: from_file,
        cmdline: from_cmdline,
    })
}

/// Reads the kernel command line, the config file and init-data, and merges them under
/// the flags: flags > config file > init-data > kernel command line > defaults.
pub fn load_config(opts: &Options, sources: Sources) -> Result<Loaded, Failure> {
    let Sources {
        file: from_file,
        cmdline: from_cmdline,
    } = sources;

    // Init-data is measured into the TEE (and checked against it before use), so the KBS
    // it names outranks the unmeasured kernel command line.
    let init_spec = opts
        .flags
        .init_data
        .clone()
        .or(from_file.init_data.clone())
        .or(from_cmdline.init_data.clone());
    let init_data = init_spec
        .as_deref()
        .map(initdata_source::load)
        .transpose()?;
    let mut from_init_data = Settings::default();
    if let Some(d) = &init_data
        && let Some(kbs) = d.kbs()?
    {
        from_init_data.kbs_url = Some(kbs.url);
    }

    let config = opts
        .flags
        .clone()
        .or(&from_file)
        .or(&from_init_data)
        .or(&from_cmdline)
        .resolve()?;
    Ok(Loaded { config, init_data })
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

/// Generates the tee key, picks the attester and connects the client.
fn connect(cfg: &Config, init_data: Option<&InitData>) -> Result<Client<HttpTransport>, Failure> {
    let url =
        Url::parse(&cfg.kbs_url).map_err(|e| Failure(format!("KBS URL '{}': {e}", cfg.kbs_url)))?;
    let mut attester = Attester::from_config(cfg)?;
    if let Some(d) = init_data {
        attester.check_init_data(d)?;
    }
    let io = Duration::from_millis(cfg.io_timeout_ms);
    let net = ClientConfig {
        connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
        read_timeout: io,
        write_timeout: io,
        request_timeout: io * 2,
        ..ClientConfig::default()
    };
    let key = TeeKey::generate(cfg.key_algorithm, &mut os_rng::os_rng())?;
    debug!("tee key: {}", cfg.key_algorithm.jwe_alg());
    let deadline = Instant::now() + Duration::from_secs(cfg.deadline_secs);
    Ok(Client::new(
        HttpTransport::new(HttpClient::with_config(url, net)),
        key,
        attester,
        init_data.map(|d| d.raw().to_string()),
        deadline,
    ))
}

/// Where one output comes from.
enum Source {
    /// A KBS resource named in the configuration.
    Resource(ResourceUri),
    /// A sealed secret read from the input directory.
    Sealed(Box<Sealed>),
}

enum Sealed {
    Signed(SealedSecret),
    /// Accepted without a valid signature because the operator allowed it.
    Unverified(Secret),
}

/// `sealgate unseal`.
pub fn unseal(opts: &Options, sources: Sources) -> Result<(), Failure> {
    let Loaded {
        config: cfg,
        init_data,
    } = load_config(opts, sources)?;
    let plan = plan(&cfg)?;
    if plan.is_empty() {
        return Err(Failure(
            "nothing to unseal: configure resources (--resource, [[resource]], sealgate.resource=) or --sealed-secrets".into(),
        ));
    }

    let sealdir = SealDir::open(&cfg.sealed_dir, &seal_options(&cfg))?;
    let mut client = connect(&cfg, init_data.as_ref())?;

    let mut keys: BTreeMap<String, PublicJwk> = BTreeMap::new();
    let mut secrets: Vec<(RelPath, Zeroizing<Vec<u8>>)> = Vec::with_capacity(plan.len());
    for (path, source) in &plan {
        let plaintext = match source {
            Source::Resource(uri) => client.fetch(uri).map_err(|e| fetch_failure(path, e))?,
            Source::Sealed(sealed) => unseal_one(&cfg, &mut client, &mut keys, path, sealed)?,
        };
        secrets.push((path.clone(), plaintext));
    }

    let batch: Vec<(RelPath, &[u8])> = secrets
        .iter()
        .map(|(p, s)| (p.clone(), s.as_slice()))
        .collect();
    let report = sealdir.commit(&batch)?;
    for file in &report.files {
        info!("wrote {}/{}", cfg.sealed_dir, file);
    }
    let s = client.stats;
    info!(
        "unsealed {} secret(s) into {} ({} attestation(s), {} connection(s), {} retries)",
        report.files.len(),
        cfg.sealed_dir,
        s.attestations,
        client.transport().connections_opened(),
        s.retries
    );
    Ok(())
}

fn fetch_failure(path: &RelPath, e: ClientError) -> Failure {
    Failure(format!("{path}: {e}; nothing was written"))
}

/// Everything to produce, with validated output paths, before any I/O on the network.
fn plan(cfg: &Config) -> Result<Vec<(RelPath, Source)>, Failure> {
    let mut plan = Vec::new();
    for spec in &cfg.resources {
        let path = RelPath::parse(&spec.path)
            .map_err(|e| Failure(format!("output path for {}: {e}", spec.uri)))?;
        plan.push((path, Source::Resource(spec.uri.clone())));
    }
    if let Some(dir) = &cfg.sealed_secrets_dir {
        let inputs = inputdir::read_sealed_inputs(dir, &InputLimits::default())?;
        if inputs.is_empty() {
            warn!("no sealed secrets found under {dir}");
        }
        for (path, bytes) in inputs {
            let bytes = Zeroizing::new(bytes);
            let text = trim_ascii_end(&bytes);
            let sealed = match SealedSecret::parse(text) {
                Ok(s) => Sealed::Signed(s),
                Err(e) if cfg.allow_unsigned => {
                    warn!("INSECURE: {dir}/{path}: {e}; accepting it unverified as configured");
                    Sealed::Unverified(
                        sealed::parse_unverified(text)
                            .map_err(|e| Failure(format!("{dir}/{path}: {e}")))?,
                    )
                }
                Err(e) => return Err(Failure(format!("{dir}/{path}: {e}"))),
            };
            plan.push((path, Source::Sealed(Box::new(sealed))));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (path, _) in &plan {
        if !seen.insert(path.clone()) {
            return Err(Failure(format!("two secrets would be written to {path}")));
        }
    }
    Ok(plan)
}

/// A sealed file written by an editor or `echo` ends in a newline; the JWS never does.
fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

fn unseal_one(
    cfg: &Config,
    client: &mut Client<HttpTransport>,
    keys: &mut BTreeMap<String, PublicJwk>,
    path: &RelPath,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let ctx = |e: &dyn std::fmt::Display| {
        Failure(format!("sealed secret {path}: {e}; nothing was written"))
    };
    let verified;
    let secret = match sealed {
        Sealed::Signed(s) => {
            let kid = s.kid().to_string();
            if !keys.contains_key(&kid) {
                match verification_key(cfg, client, s) {
                    Ok(jwk) => {
                        keys.insert(kid.clone(), jwk);
                    }
                    // Without a key nothing can be verified; with the insecure flag the
                    // secret is then accepted like any unverifiable one (below).
                    Err(e) if cfg.allow_unsigned => debug!("sealed secret {path}: {}", e.0),
                    Err(e) => return Err(ctx(&e.0)),
                }
            }
            let verdict = match keys.get(&kid) {
                Some(key) => s.verify(key).map_err(|e| e.to_string()),
                None => Err(format!("no verification key for kid '{kid}'")),
            };
            match verdict {
                Ok(secret) => {
                    verified = secret;
                    &verified
                }
                Err(e) if cfg.allow_unsigned => {
                    warn!(
                        "INSECURE: sealed secret {path}: {e}; accepting it unverified as configured"
                    );
                    verified = s.payload_unverified().map_err(|e| ctx(&e))?;
                    &verified
                }
                Err(e) => return Err(ctx(&e)),
            }
        }
        Sealed::Unverified(secret) => secret,
    };
    match secret.resolve().map_err(|e| ctx(&e))? {
        Unseal::KbsResource(name) => {
            let uri = ResourceUri::parse(name).map_err(|e| ctx(&e))?;
            client.fetch(&uri).map_err(|e| ctx(&e))
        }
    }
}

/// The public JWK named by a sealed secret's `kid`: a KBS resource, or a file in the
/// local key directory (which must stay inside it, symlinks included).
fn verification_key(
    cfg: &Config,
    client: &mut Client<HttpTransport>,
    s: &SealedSecret,
) -> Result<PublicJwk, Failure> {
    let bytes = match s.key_source()? {
        KeySource::Kbs(uri) => {
            let uri = ResourceUri::parse(uri)?;
            client.fetch(&uri)?
        }
        KeySource::Local(name) => {
            let base = std::fs::canonicalize(&cfg.sealed_secret_keys_dir).map_err(|e| {
                Failure(format!(
                    "verification key directory {}: {e}",
                    cfg.sealed_secret_keys_dir
                ))
            })?;
            let file: PathBuf = std::fs::canonicalize(base.join(name))
                .map_err(|e| Failure(format!("verification key '{name}': {e}")))?;
            if !file.starts_with(&base) {
                return Err(Failure(format!(
                    "verification key '{name}' resolves outside {}",
                    base.display()
                )));
            }
            Zeroizing::new(read_bounded(&file, 64 << 10)?)
        }
    };
    Ok(PublicJwk::from_json(&bytes)?)
}

fn seal_options(cfg: &Config) -> SealOptions {
    // A group allowed to read the files must be able to reach them.
    let group_search = if cfg.mode & 0o040 != 0 { 0o050 } else { 0 };
    SealOptions {
        owner: cfg.owner.map(|(uid, gid)| Owner { uid, gid }),
        file_mode: cfg.mode,
        dir_mode: 0o700 | group_search,
        mount_tmpfs: cfg.mount_tmpfs,
        size_limit: cfg.tmpfs_size,
        allow_non_tmpfs: cfg.allow_non_tmpfs,
        ..SealOptions::default()
    }
}

/// `sealgate get-resource URI`: one resource to stdout.
pub fn get_resource(opts: &Options, uri: &str) -> Result<(), Failure> {
    let uri = ResourceUri::parse(uri)?;
    let Loaded {
        config: cfg,
        init_data,
    } = load_config(opts, read_sources(opts)?)?;
    let mut client = connect(&cfg, init_data.as_ref())?;
    let secret = client.fetch(&uri)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&secret)
        .and_then(|()| out.flush())
        .map_err(|e| Failure(format!("writing to stdout: {e}")))?;
    Ok(())
}
