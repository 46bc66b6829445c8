//! The `unseal` and `get-resource` commands: configuration, planning, attestation,
//! fetching, and the all-or-nothing write.
//!
//! Order matters for failure behaviour: everything that can be checked locally (config,
//! output paths, sealed-secret syntax, the sealed directory, init-data against the TEE)
//! is checked before the first byte goes to the KBS; every secret is fetched into memory
//! before the first file is written; and the write is one atomic commit.

use crate::cli::Options;
use crate::client::{Client, ClientError};
use crate::eventlog::EventLogPaths;
use crate::evidence::{Attester, AttesterError};
use crate::initdata_source::{self, InitDataSourceError};
use crate::prelude::*;
use crate::transport::HttpTransport;
use crate::volume::{self, VolumeFailure};
use core::fmt;
use core::time::Duration;
use sealgate_core::config::{self, Config, ConfigError, KbsCert, Settings, TeeChoice};
use sealgate_core::escape::escape;
use sealgate_core::hosts::{AddrError, Url};
use sealgate_core::initdata::{InitData, InitDataError};
use sealgate_core::outpath::{PathError, RelPath};
use sealgate_core::sealed::{
    self, KeySource, PublicJwk, SealedError, SealedSecret, Secret, Unseal,
};
use sealgate_core::teekey::{KeyError, TeeKey};
use sealgate_core::trust::{self, Source as SettingSource};
use sealgate_core::uri::{ResourceUri, UriError};
use sealgate_linux::fs::{self, ReadError};
use sealgate_linux::inputdir::{self, InputError, InputLimits};
use sealgate_linux::net::{self, ClientConfig, HttpClient};
use sealgate_linux::os_rng;
use sealgate_linux::sealdir::{Owner, SealDir, SealError, SealOptions};
use sealgate_linux::time::Instant;
use sealgate_linux::{debug, info, warn};
use sealgate_tls::{TlsClientConfig, TlsError, TlsTrust};
use zeroize::Zeroizing;

/// Config files are small; a larger one is a mistake or an attack.
const MAX_CONFIG_FILE: usize = 1 << 20;
/// The kernel command line is at most a few KiB on every architecture.
const MAX_CMDLINE: usize = 64 << 10;
/// A public JWK is a few hundred bytes.
const MAX_VERIFICATION_KEY: usize = 64 << 10;

/// Why a command failed, as the operator reads it on the console. Every variant holds a
/// typed error whose message never contains secret material (file contents, plaintexts,
/// keys); a file is named by its path, never quoted.
#[derive(Debug)]
pub enum Failure {
    /// The kernel command line could not be read.
    Cmdline {
        /// Its path (`/proc/cmdline` unless `--kernel-cmdline`).
        path: String,
        /// Why.
        error: ReadError,
    },
    /// A setting is invalid (flags, kernel command line, or the merged result).
    Config(ConfigError),
    /// The config file could not be read.
    ConfigRead {
        /// Its path.
        path: String,
        /// Why.
        error: ReadError,
    },
    /// The config file is not UTF-8.
    ConfigNotUtf8 {
        /// Its path.
        path: String,
    },
    /// The config file does not parse.
    ConfigFile {
        /// Its path.
        path: String,
        /// Why (position, never content).
        error: ConfigError,
    },
    /// Init-data could not be loaded.
    InitDataSource(InitDataSourceError),
    /// Init-data is malformed (its KBS section).
    InitData(InitDataError),
    /// A KBS certificate or CA bundle file cannot be read.
    KbsCertRead {
        /// The file.
        path: String,
        /// Why.
        error: ReadError,
    },
    /// A KBS certificate or CA bundle is not usable PEM, or TLS cannot be set up.
    KbsTrust {
        /// Where it came from (a file, or init-data), never its content.
        source: String,
        /// Why.
        error: TlsError,
    },
    /// The KBS URL does not parse.
    KbsUrl {
        /// The URL as configured.
        url: String,
        /// Why.
        error: AddrError,
    },
    /// The TEE interface is missing, or init-data does not match it.
    Attester(AttesterError),
    /// The tee key could not be generated.
    TeeKey(KeyError),
    /// No resource and no sealed-secret directory is configured.
    NothingToUnseal,
    /// A configured output path is invalid.
    OutputPath {
        /// The resource it belongs to.
        uri: String,
        /// Why.
        error: PathError,
    },
    /// The sealed-secret input directory could not be read.
    Input(InputError),
    /// A sealed-secret input file is not a sealed secret.
    SealedInput {
        /// `dir/relative path` of the file.
        file: String,
        /// Why.
        error: SealedError,
    },
    /// Two outputs map to the same path.
    DuplicateOutput(RelPath),
    /// The sealed directory could not be prepared or written.
    SealDir(SealError),
    /// A resource could not be fetched.
    Fetch {
        /// Its output path.
        path: RelPath,
        /// Why.
        error: ClientError,
    },
    /// A sealed secret could not be unsealed.
    Sealed {
        /// Its output path.
        path: RelPath,
        /// Why.
        error: SealedFailure,
    },
    /// `get-resource`'s URI is invalid.
    ResourceUri(UriError),
    /// `get-resource` could not fetch.
    GetResource(ClientError),
    /// Writing to stdout failed.
    Stdout(rustix::io::Errno),
    /// A `sealed.` environment value is not a sealed secret (`exec`).
    SealedEnv {
        /// The variable's name.
        name: String,
        /// Why.
        error: SealedError,
    },
    /// A sealed environment value could not be unsealed (`exec`).
    UnsealEnv {
        /// The variable's name.
        name: String,
        /// Why (boxed: the largest failure).
        error: Box<SealedFailure>,
    },
    /// An unsealed environment value holds a NUL byte, which no environment can carry.
    EnvNul {
        /// The variable's name.
        name: String,
    },
    /// `exec`'s command is not an executable file (or not on PATH).
    CommandNotFound {
        /// The command as given.
        command: String,
    },
    /// `execve` failed.
    Exec {
        /// The resolved path.
        path: String,
        /// The errno.
        errno: rustix::io::Errno,
    },
    /// An encrypted volume could not be prepared or opened.
    Volume(Box<VolumeFailure>),
    /// A volume's key or passphrase could not be fetched.
    VolumeKey {
        /// The volume.
        name: String,
        /// Why.
        error: ClientError,
    },
    /// The run's deadline (`--deadline`) passed before the output was written.
    Deadline {
        /// The deadline, seconds.
        secs: u64,
        /// What was due (`writing 2 secret(s) into /run/sealed`).
        before: String,
    },
}

/// Why one sealed secret could not be unsealed.
#[derive(Debug)]
pub enum SealedFailure {
    /// Its JWS, payload or key is invalid, or the signature does not verify.
    Sealed(SealedError),
    /// Its `kid` names no usable key.
    Key(KeyFailure),
    /// The resource it names is not a valid URI.
    Uri(UriError),
    /// The KBS did not release what it names.
    Fetch(ClientError),
}

/// Why a sealed secret's verification key could not be obtained.
#[derive(Debug)]
pub enum KeyFailure {
    /// The `kid` is malformed.
    Kid(SealedError),
    /// The `kid` names a KBS resource that is not a valid URI.
    Uri(UriError),
    /// The KBS did not release the key.
    Fetch(ClientError),
    /// The local key directory cannot be used.
    Directory {
        /// The directory.
        dir: String,
        /// Why.
        error: ReadError,
    },
    /// The local key file cannot be read.
    File {
        /// The `kid`.
        name: String,
        /// Why.
        error: ReadError,
    },
    /// The local key file resolves outside the key directory.
    Outside {
        /// The `kid`.
        name: String,
        /// The directory.
        dir: String,
    },
    /// The key is not a public ES256 JWK.
    Jwk(SealedError),
    /// No key was found for this `kid` (an earlier attempt failed).
    Missing(String),
}

impl fmt::Display for KeyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFailure::Kid(e) | KeyFailure::Jwk(e) => write!(f, "{e}"),
            KeyFailure::Uri(e) => write!(f, "{e}"),
            KeyFailure::Fetch(e) => write!(f, "{e}"),
            KeyFailure::Directory { dir, error } => {
                write!(f, "verification key directory {dir}: {error}")
            }
            KeyFailure::File { name, error } => write!(f, "verification key '{name}': {error}"),
            KeyFailure::Outside { name, dir } => {
                write!(f, "verification key '{name}' resolves outside {dir}")
            }
            KeyFailure::Missing(kid) => write!(f, "no verification key for kid '{kid}'"),
        }
    }
}

impl fmt::Display for SealedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealedFailure::Sealed(e) => write!(f, "{e}"),
            SealedFailure::Key(e) => write!(f, "{e}"),
            SealedFailure::Uri(e) => write!(f, "{e}"),
            SealedFailure::Fetch(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cmdline { path, error } => {
                write!(f, "cannot read kernel command line {path}: {error}")
            }
            Failure::Config(e) => write!(f, "{e}"),
            Failure::ConfigRead { path, error } => {
                write!(f, "cannot read config file {path}: {error}")
            }
            Failure::ConfigNotUtf8 { path } => write!(f, "config file {path} is not UTF-8"),
            Failure::ConfigFile { path, error } => write!(f, "{path}: {error}"),
            Failure::InitDataSource(e) => write!(f, "{e}"),
            Failure::InitData(e) => write!(f, "{e}"),
            Failure::KbsUrl { url, error } => write!(f, "KBS URL '{url}': {error}"),
            Failure::KbsCertRead { path, error } => {
                write!(f, "cannot read KBS certificate file {path}: {error}")
            }
            Failure::KbsTrust { source, error } => write!(f, "{source}: {error}"),
            Failure::Attester(e) => write!(f, "{e}"),
            Failure::TeeKey(e) => write!(f, "{e}"),
            Failure::NothingToUnseal => f.write_str(
                "nothing to unseal: configure resources (--resource, [[resource]], sealgate.resource=), --sealed-secrets or [[volume]]",
            ),
            Failure::OutputPath { uri, error } => write!(f, "output path for {uri}: {error}"),
            Failure::Input(e) => write!(f, "{e}"),
            Failure::SealedInput { file, error } => write!(f, "{file}: {error}"),
            Failure::DuplicateOutput(path) => write!(f, "two secrets would be written to {path}"),
            Failure::SealDir(e) => write!(f, "{e}"),
            Failure::Fetch { path, error } => write!(f, "{path}: {error}; nothing was written"),
            Failure::Sealed { path, error } => {
                write!(f, "sealed secret {path}: {error}; nothing was written")
            }
            Failure::ResourceUri(e) => write!(f, "{e}"),
            Failure::GetResource(e) => write!(f, "{e}"),
            Failure::Stdout(e) => write!(f, "writing to stdout: {}", sealgate_linux::os(e)),
            Failure::SealedEnv { name, error } => write!(
                f,
                "environment variable {}: {error}; nothing was exec'ed",
                escape(name, 128)
            ),
            Failure::UnsealEnv { name, error } => write!(
                f,
                "sealed environment variable {}: {error}; nothing was written or exec'ed",
                escape(name, 128)
            ),
            Failure::EnvNul { name } => write!(
                f,
                "the plaintext of environment variable {} holds a NUL byte, which an environment cannot carry; nothing was exec'ed",
                escape(name, 128)
            ),
            Failure::CommandNotFound { command } => write!(
                f,
                "{}: no such executable (not a path to an executable file, nor found on PATH); nothing was unsealed",
                escape(command, 256)
            ),
            Failure::Exec { path, errno } => write!(
                f,
                "cannot exec {}: {}",
                escape(path, 256),
                sealgate_linux::os(errno)
            ),
            Failure::Volume(e) => write!(f, "{e}; nothing was written"),
            Failure::VolumeKey { name, error } => {
                write!(f, "volume '{name}': its key: {error}; nothing was written")
            }
            Failure::Deadline { secs, before } => {
                write!(f, "deadline of {secs} s passed before {before}; nothing was written")
            }
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

impl From<AttesterError> for Failure {
    fn from(e: AttesterError) -> Self {
        Failure::Attester(e)
    }
}

impl From<SealError> for Failure {
    fn from(e: SealError) -> Self {
        Failure::SealDir(e)
    }
}

impl From<InitDataSourceError> for Failure {
    fn from(e: InitDataSourceError) -> Self {
        Failure::InitDataSource(e)
    }
}

/// The configuration after merging every source.
pub struct Loaded {
    /// The resolved settings.
    pub config: Config,
    /// Every layer merged, before defaults (the init stage resolves its own from it).
    pub settings: Settings,
    /// Init-data, if configured.
    pub init_data: Option<InitData>,
    /// The attester that checked init-data against the TEE (with init-data only).
    attester: Option<Attester>,
}

/// The settings of the config file and of the kernel command line, unmerged; the kernel
/// command line's already cut down to what it may set ([`trust`]).
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

/// Reads the config file (`--config`, else the image's `/etc/sealgate/config.toml` if it
/// exists: never one the kernel command line names) and the kernel command line, which
/// keeps only what [`trust`] lets it set, unless the file sets `trust_kernel_cmdline`.
pub fn read_sources(opts: &Options) -> Result<Sources, Failure> {
    let config_path = opts.config_file.clone().or_else(|| {
        fs::exists(config::DEFAULT_CONFIG_FILE).then(|| config::DEFAULT_CONFIG_FILE.to_string())
    });
    let from_file = match &config_path {
        Some(path) => {
            let path = path.clone();
            let text = match fs::read_file(&path, MAX_CONFIG_FILE) {
                Ok(t) => t,
                Err(error) => return Err(Failure::ConfigRead { path, error }),
            };
            let Ok(text) = String::from_utf8(text) else {
                return Err(Failure::ConfigNotUtf8 { path });
            };
            match config::parse_file(&text) {
                Ok(s) => s,
                Err(error) => return Err(Failure::ConfigFile { path, error }),
            }
        }
        None => Settings::default(),
    };
    let trusted = from_file.trust_kernel_cmdline == Some(true);
    if trusted {
        warn!(
            "the kernel command line is trusted (trust_kernel_cmdline = true in {}): it can set \
             every setting; this is safe only if it is measured (SNP kernel hashes, a TDX \
             policy over the RTMRs)",
            config_path.as_deref().unwrap_or_default()
        );
    }

    let cmdline_path = opts.kernel_cmdline.as_deref().unwrap_or("/proc/cmdline");
    let cmdline = match fs::read_file(cmdline_path, MAX_CMDLINE) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.is_not_found() => String::new(),
        Err(error) => {
            return Err(Failure::Cmdline {
                path: cmdline_path.into(),
                error,
            });
        }
    };
    let (from_cmdline, notes) = config::parse_cmdline(&cmdline, trusted)?;
    for note in notes {
        warn!("{note}");
    }
    // The table once more over the parsed layer: nothing the parser let through may
    // hold a key the command line cannot set.
    let (from_cmdline, ignored) =
        trust::filter(from_cmdline, SettingSource::KernelCmdline, trusted);
    for i in ignored {
        warn!("{i}");
    }
    Ok(Sources {
        file: from_file,
        cmdline: from_cmdline,
    })
}

/// Reads init-data and merges every layer under the flags: flags > config file >
/// init-data (its `sealgate.toml`, then the KBS of `aa.toml`/`cdh.toml`) > kernel command
/// line > defaults. Init-data is checked against the TEE here, before any of its
/// settings is used; what it may set is [`trust`]'s to say.
pub fn load_config(opts: &Options, sources: Sources) -> Result<Loaded, Failure> {
    let (settings, init_data, attester) = load_settings(opts, sources)?;
    let config = settings.clone().resolve()?;
    Ok(Loaded {
        config,
        settings,
        init_data,
        attester,
    })
}

/// [`load_config`] before resolving: the merged settings (which may lack a KBS URL), the
/// init-data and the attester that checked it.
pub(crate) fn load_settings(
    opts: &Options,
    sources: Sources,
) -> Result<(Settings, Option<InitData>, Option<Attester>), Failure> {
    let Sources {
        file: from_file,
        cmdline: from_cmdline,
    } = sources;
    let base = opts.flags.clone().or(&from_file).or(&from_cmdline);

    let init_data = base
        .init_data
        .as_deref()
        .map(initdata_source::load)
        .transpose()?;
    let mut from_init_data = Settings::default();
    let mut attester = None;
    if let Some(d) = &init_data {
        // Init-data cannot choose the TEE or where its evidence comes from: both are set
        // by now, and its digest is checked before anything in it is used.
        let mut a = Attester::with_paths(
            base.tee.unwrap_or(TeeChoice::Auto),
            base.configfs_tsm
                .as_deref()
                .unwrap_or(config::DEFAULT_CONFIGFS_TSM),
            EventLogPaths {
                sysfs: base
                    .sysfs
                    .clone()
                    .unwrap_or_else(|| config::DEFAULT_SYSFS.into()),
                dir: base
                    .eventlog_dir
                    .clone()
                    .unwrap_or_else(|| config::DEFAULT_EVENTLOG_DIR.into()),
            },
        )?;
        a.check_init_data(d)?;
        attester = Some(a);
        if let Some(settings) = d.settings().map_err(Failure::InitData)? {
            let (kept, ignored) = trust::filter(settings, SettingSource::InitData, false);
            for i in ignored {
                warn!("{i}");
            }
            info!("using the settings of init-data's sealgate.toml");
            from_init_data = kept;
        }
        // Init-data is measured, so the KBS it names outranks the kernel command line,
        // and the certificate it gives for it is a trust anchor.
        if let Some(kbs) = d.kbs().map_err(Failure::InitData)? {
            if from_init_data.kbs_url.is_none() {
                from_init_data.kbs_url = Some(kbs.url);
            }
            if from_init_data.kbs_cert.is_none() {
                from_init_data.kbs_cert = kbs.cert.map(KbsCert::InitData);
            }
        }
    }

    let settings = opts
        .flags
        .clone()
        .or(&from_file)
        .or(&from_init_data)
        .or(&from_cmdline);
    Ok((settings, init_data, attester))
}

/// The end of a run that started at `started`: `--deadline` bounds everything from the
/// first DNS query to the last rename.
fn run_deadline(cfg: &Config, started: Instant) -> Instant {
    started + Duration::from_secs(cfg.deadline_secs)
}

/// Fails when the run's deadline has passed: nothing is written after it.
fn before_deadline(cfg: &Config, deadline: Instant, before: String) -> Result<(), Failure> {
    if Instant::now() >= deadline {
        return Err(Failure::Deadline {
            secs: cfg.deadline_secs,
            before,
        });
    }
    Ok(())
}

/// Generates the tee key, picks the attester (unless init-data's check made it already)
/// and connects the client, whose every wait (DNS, connect, exchange, backoff) ends by
/// `deadline`.
pub(crate) fn connect(
    cfg: &Config,
    init_data: Option<&InitData>,
    attester: Option<Attester>,
    deadline: Instant,
) -> Result<Client<HttpTransport>, Failure> {
    let url = Url::parse(&cfg.kbs_url).map_err(|error| Failure::KbsUrl {
        url: cfg.kbs_url.clone(),
        error,
    })?;
    let attester = match attester {
        Some(a) => a,
        None => Attester::from_config(cfg)?,
    };
    let tls = if url.tls {
        Some(tls_config(cfg)?)
    } else {
        None
    };
    let io = Duration::from_millis(cfg.io_timeout_ms);
    let net = ClientConfig {
        connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
        read_timeout: io,
        write_timeout: io,
        request_timeout: io * 2,
        deadline: Some(deadline),
        tls,
        ..ClientConfig::default()
    };
    let key =
        TeeKey::generate(cfg.key_algorithm, &mut os_rng::os_rng()).map_err(Failure::TeeKey)?;
    debug!("tee key: {}", cfg.key_algorithm.jwe_alg());
    Ok(Client::new(
        HttpTransport::new(HttpClient::with_config(url, net)),
        key,
        attester,
        init_data.map(|d| d.raw().to_string()),
        deadline,
        Duration::from_secs(cfg.deadline_secs),
    ))
}

/// The TLS configuration for an `https://` KBS: the KBS certificate (init-data's, or the
/// image's file) and the CA bundle file, each certificate both a trust anchor and an exact
/// pin (`sealgate_tls::TlsTrust`). Nothing else is trusted: no system roots. Only measured
/// sources can name these ([`trust`]); the configuration checked that at least one is set.
fn tls_config(cfg: &Config) -> Result<TlsClientConfig, Failure> {
    let mut trust = TlsTrust::new();
    let mut sources = Vec::new();
    let mut add = |source: String, pem: &[u8]| {
        trust
            .add_pem(pem)
            .map_err(|error| Failure::KbsTrust {
                source: source.clone(),
                error,
            })
            .map(|()| sources.push(source))
    };
    let read = |path: &str| {
        fs::read_file(path, sealgate_tls::MAX_PEM_BYTES).map_err(|error| Failure::KbsCertRead {
            path: path.into(),
            error,
        })
    };
    match &cfg.kbs_cert {
        Some(KbsCert::File(path)) => add(format!("kbs_cert file {path}"), &read(path)?)?,
        Some(KbsCert::InitData(pem)) => add("init-data's KBS certificate".into(), pem.as_bytes())?,
        None => {}
    }
    if let Some(path) = &cfg.kbs_ca_bundle {
        add(format!("kbs_ca_bundle file {path}"), &read(path)?)?;
    }
    info!(
        "KBS over HTTPS, trusting {} ({} certificate(s))",
        sources.join(" and "),
        trust.len()
    );
    net::tls_config(&trust).map_err(|error| Failure::KbsTrust {
        source: "TLS".into(),
        error,
    })
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

/// `sealgate unseal`. Volumes it opens stay open (and mounted).
pub fn unseal(opts: &Options, sources: Sources) -> Result<(), Failure> {
    let started = Instant::now();
    let opened = unseal_loaded(load_config(opts, sources)?, started)?;
    for v in opened.iter().filter(|v| v.root) {
        warn!(
            "volume '{}' is mounted on {}: only the init stage switches into a root volume",
            v.name,
            v.mount.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

/// `sealgate unseal` with the configuration loaded; the run (and its deadline) began at
/// `started`, before the loading. Returns the volumes it opened (all or none: a failure
/// closes those opened before it, and nothing is written).
pub fn unseal_loaded(loaded: Loaded, started: Instant) -> Result<Vec<volume::Open>, Failure> {
    let Loaded {
        config: cfg,
        init_data,
        attester,
        ..
    } = loaded;
    let deadline = run_deadline(&cfg, started);
    let plan = plan(&cfg)?;
    if plan.is_empty() && cfg.volumes.is_empty() {
        return Err(Failure::NothingToUnseal);
    }
    // Devices found and headers parsed before the first byte goes to the KBS.
    let prepared = volume::prepare(&cfg.volumes).map_err(Failure::Volume)?;

    let sealdir = if plan.is_empty() {
        None
    } else {
        Some(SealDir::open(&cfg.sealed_dir, &seal_options(&cfg))?)
    };
    let mut client = connect(&cfg, init_data.as_ref(), attester, deadline)?;

    // Every kid's key, or None when it could not be obtained: each is fetched at most once
    // per run, failed or not.
    let mut keys: BTreeMap<String, Option<PublicJwk>> = BTreeMap::new();
    let secrets = fetch_plan(&cfg, &mut client, &mut keys, &plan)?;
    let mut volume_keys = Vec::with_capacity(prepared.len());
    for p in &prepared {
        // Every [[volume]] names its resource (config::FileVolume::resolve).
        let Some(resource) = &p.spec().resource else {
            return Err(Failure::Volume(Box::new(volume::VolumeFailure {
                name: p.spec().name.clone(),
                device: p.spec().device.to_string(),
                error: volume::VolumeError::NoKeySource,
            })));
        };
        let key = client.fetch(resource).map_err(|error| Failure::VolumeKey {
            name: p.spec().name.clone(),
            error,
        })?;
        volume_keys.push(key);
    }

    let batch: Vec<(RelPath, &[u8])> = secrets
        .iter()
        .map(|(p, s)| (p.clone(), s.as_slice()))
        .collect();
    if !prepared.is_empty() {
        before_deadline(
            &cfg,
            deadline,
            format!("opening {} volume(s)", prepared.len()),
        )?;
    }
    let mut opened: Vec<volume::Open> = Vec::with_capacity(prepared.len());
    for (p, key) in prepared.into_iter().zip(volume_keys) {
        match p.open(key) {
            Ok(v) => opened.push(v),
            Err(e) => {
                volume::close_all(&opened);
                return Err(Failure::Volume(e));
            }
        }
    }
    let Some(sealdir) = sealdir else {
        return Ok(opened);
    };
    let committed = before_deadline(
        &cfg,
        deadline,
        format!("writing {} secret(s) into {}", batch.len(), cfg.sealed_dir),
    )
    .and_then(|()| sealdir.commit(&batch).map_err(Failure::from));
    let report = match committed {
        Ok(r) => r,
        Err(e) => {
            volume::close_all(&opened);
            return Err(e);
        }
    };
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
    Ok(opened)
}

/// Everything to produce, with validated output paths, before any I/O on the network.
/// A plaintext with the output path it goes to.
type Plaintext = (RelPath, Zeroizing<Vec<u8>>);

/// Fetches or unseals every entry of the plan, in order, over one session: the plaintexts
/// with their output paths, or the first failure (nothing is written here).
fn fetch_plan(
    cfg: &Config,
    client: &mut Client<HttpTransport>,
    keys: &mut BTreeMap<String, Option<PublicJwk>>,
    plan: &[(RelPath, Source)],
) -> Result<Vec<Plaintext>, Failure> {
    let mut secrets = Vec::with_capacity(plan.len());
    for (path, source) in plan {
        let plaintext = match source {
            Source::Resource(uri) => client.fetch(uri).map_err(|error| Failure::Fetch {
                path: path.clone(),
                error,
            })?,
            Source::Sealed(sealed) => {
                unseal_one(cfg, client, keys, path, sealed).map_err(|error| Failure::Sealed {
                    path: path.clone(),
                    error,
                })?
            }
        };
        secrets.push((path.clone(), plaintext));
    }
    Ok(secrets)
}

fn plan(cfg: &Config) -> Result<Vec<(RelPath, Source)>, Failure> {
    let mut plan = Vec::new();
    for spec in &cfg.resources {
        let path = RelPath::parse(&spec.path).map_err(|error| Failure::OutputPath {
            uri: spec.uri.to_string(),
            error,
        })?;
        plan.push((path, Source::Resource(spec.uri.clone())));
    }
    if let Some(dir) = &cfg.sealed_secrets_dir {
        let inputs =
            inputdir::read_sealed_inputs(dir, &InputLimits::default()).map_err(Failure::Input)?;
        if inputs.is_empty() {
            warn!("no sealed secrets found under {dir}");
        }
        for (path, bytes) in inputs {
            let bytes = Zeroizing::new(bytes);
            // A sealed file written by an editor or `echo` ends in a newline; the JWS never does.
            let text = bytes.trim_ascii_end();
            let file = format!("{dir}/{path}");
            let sealed = parse_sealed(cfg, text, &file)
                .map_err(|error| Failure::SealedInput { file, error })?;
            plan.push((path, Source::Sealed(Box::new(sealed))));
        }
    }
    let mut seen = BTreeSet::new();
    for (path, _) in &plan {
        if !seen.insert(path.clone()) {
            return Err(Failure::DuplicateOutput(path.clone()));
        }
    }
    Ok(plan)
}

/// Parses one sealed secret (`sealed.<JWS>`) of the input `what` names. The kid is checked
/// here, before the first byte goes to the KBS: an input nobody has verified yet must not
/// choose what the agent fetches. With the insecure flag, a bad kid leaves the secret
/// unverifiable (accepted with a warning when it is unsealed), never fetched.
fn parse_sealed(cfg: &Config, text: &[u8], what: &str) -> Result<Sealed, SealedError> {
    match SealedSecret::parse(text) {
        Ok(s) => match s.key_source() {
            Err(error) if !cfg.allow_unsigned => Err(error),
            _ => Ok(Sealed::Signed(s)),
        },
        Err(e) if cfg.allow_unsigned => {
            warn!("INSECURE: {what}: {e}; accepting it unverified as configured");
            Ok(Sealed::Unverified(sealed::parse_unverified(text)?))
        }
        Err(error) => Err(error),
    }
}

fn unseal_one(
    cfg: &Config,
    client: &mut Client<HttpTransport>,
    keys: &mut BTreeMap<String, Option<PublicJwk>>,
    path: &dyn fmt::Display,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, SealedFailure> {
    let verified;
    let secret = match sealed {
        Sealed::Signed(s) => {
            let kid = s.kid().to_string();
            if !keys.contains_key(&kid) {
                match verification_key(cfg, client, s) {
                    Ok(jwk) => {
                        keys.insert(kid.clone(), Some(jwk));
                    }
                    // Without a key nothing can be verified; with the insecure flag the
                    // secret is then accepted like any unverifiable one (below), and the
                    // key is not asked for again for the next secret with this kid.
                    Err(e) if cfg.allow_unsigned => {
                        debug!("sealed secret {path}: {e}");
                        keys.insert(kid.clone(), None);
                    }
                    Err(e) => return Err(SealedFailure::Key(e)),
                }
            }
            let verdict = match keys.get(&kid).and_then(Option::as_ref) {
                Some(key) => s.verify(key).map_err(SealedFailure::Sealed),
                None => Err(SealedFailure::Key(KeyFailure::Missing(kid))),
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
                    verified = s.payload_unverified().map_err(SealedFailure::Sealed)?;
                    &verified
                }
                Err(e) => return Err(e),
            }
        }
        Sealed::Unverified(secret) => secret,
    };
    match secret.resolve().map_err(SealedFailure::Sealed)? {
        Unseal::KbsResource(name) => {
            let uri = ResourceUri::parse(name).map_err(SealedFailure::Uri)?;
            client.fetch(&uri).map_err(SealedFailure::Fetch)
        }
    }
}

/// The public JWK named by a sealed secret's `kid`: a KBS resource, or a file in the
/// local key directory (which must stay inside it, symlinks included).
pub(crate) fn verification_key(
    cfg: &Config,
    client: &mut Client<HttpTransport>,
    s: &SealedSecret,
) -> Result<PublicJwk, KeyFailure> {
    let bytes = match s.key_source().map_err(KeyFailure::Kid)? {
        KeySource::Kbs(uri) => {
            let uri = ResourceUri::parse(uri).map_err(KeyFailure::Uri)?;
            client.fetch(&uri).map_err(KeyFailure::Fetch)?
        }
        KeySource::Local(name) => {
            let dir = &cfg.sealed_secret_keys_dir;
            match fs::read_beneath(dir, name, MAX_VERIFICATION_KEY) {
                Ok(b) => Zeroizing::new(b),
                Err(ReadError::Escapes) => {
                    return Err(KeyFailure::Outside {
                        name: name.into(),
                        dir: dir.clone(),
                    });
                }
                Err(ReadError::Os(e)) if !fs::exists(dir) => {
                    return Err(KeyFailure::Directory {
                        dir: dir.clone(),
                        error: ReadError::Os(e),
                    });
                }
                Err(error) => {
                    return Err(KeyFailure::File {
                        name: name.into(),
                        error,
                    });
                }
            }
        }
    };
    PublicJwk::from_json(&bytes).map_err(KeyFailure::Jwk)
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
    let started = Instant::now();
    let uri = ResourceUri::parse(uri).map_err(Failure::ResourceUri)?;
    let Loaded {
        config: cfg,
        init_data,
        attester,
        ..
    } = load_config(opts, read_sources(opts)?)?;
    let deadline = run_deadline(&cfg, started);
    let mut client = connect(&cfg, init_data.as_ref(), attester, deadline)?;
    let secret = client.fetch(&uri).map_err(Failure::GetResource)?;
    before_deadline(&cfg, deadline, "writing to stdout".into())?;
    sealgate_linux::stdio::write_all(sealgate_linux::stdio::stdout(), &secret)
        .map_err(Failure::Stdout)
}

/// The prefix of a sealed value, in an environment entry as in a file.
const SEALED_PREFIX: &str = "sealed.";
/// Where `exec` looks for a command without a `/` when the environment has no PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The executable `command` names: itself if it contains a `/`, else the first executable
/// regular file of that name in `path_var`'s directories (empty entries are skipped).
pub fn resolve_command(command: &str, path_var: Option<&str>) -> Option<String> {
    let executable = |p: &str| {
        rustix::fs::stat(p)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
            && rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
    };
    if command.is_empty() {
        return None;
    }
    if command.contains('/') {
        return executable(command).then(|| command.to_string());
    }
    path_var
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{command}", d.trim_end_matches('/')))
        .find(|p| executable(p))
}

/// `sealgate exec [--env-only] -- CMD ARGS...`: every environment value that starts with
/// `sealed.` is unsealed through the KBS (the rules and failures of `unseal`); without
/// `--env-only` the configured resources and sealed-secret files are unsealed into the
/// sealed directory too, in the same session (all or nothing, as `unseal`). Then CMD is
/// exec'ed with the plaintext values in place of the sealed ones and every other variable
/// unchanged. Nothing is exec'ed if anything fails. Returns only on failure.
pub fn exec(
    opts: &Options,
    sources: Sources,
    spec: &crate::cli::ExecSpec,
    env: &[String],
) -> Failure {
    let started = Instant::now();
    match exec_prepare(opts, sources, spec, env, started) {
        Ok((path, envp)) => {
            let envp: Vec<&[u8]> = envp.iter().map(|e| e.as_slice()).collect();
            let errno = sealgate_linux::process::exec(&path, &spec.argv, &envp);
            Failure::Exec { path, errno }
        }
        Err(f) => f,
    }
}

/// The environment `exec` passes on (`NAME=value` entries, plaintexts included).
type ExecEnv = Vec<Zeroizing<Vec<u8>>>;

/// Everything `exec` does before the `execve`: the resolved command and the environment.
fn exec_prepare(
    opts: &Options,
    sources: Sources,
    spec: &crate::cli::ExecSpec,
    env: &[String],
    started: Instant,
) -> Result<(String, ExecEnv), Failure> {
    let command = spec.argv.first().map(String::as_str).unwrap_or_default();
    let path_var = env.iter().find_map(|kv| kv.strip_prefix("PATH="));
    let resolve = || {
        resolve_command(command, path_var).ok_or_else(|| Failure::CommandNotFound {
            command: command.to_string(),
        })
    };
    let any_sealed = env.iter().any(|kv| {
        kv.split_once('=')
            .is_some_and(|(_, v)| v.starts_with(SEALED_PREFIX))
    });
    if spec.env_only && !any_sealed {
        // Nothing to unseal and nothing else asked for: no configuration (no KBS URL) needed.
        let path = resolve()?;
        info!("exec: no sealed value in the environment; exec {path}");
        return Ok((
            path,
            env.iter()
                .map(|e| Zeroizing::new(e.as_bytes().to_vec()))
                .collect(),
        ));
    }
    let Loaded {
        config: cfg,
        init_data,
        attester,
        ..
    } = load_config(opts, sources)?;
    let deadline = run_deadline(&cfg, started);
    // Everything local first: the command, the sealed values' syntax, the plan.
    let path = resolve()?;
    let mut sealed_env: Vec<(usize, String, Sealed)> = Vec::new();
    for (i, entry) in env.iter().enumerate() {
        let Some((name, value)) = entry.split_once('=') else {
            continue;
        };
        if !value.starts_with(SEALED_PREFIX) {
            continue;
        }
        let what = format!("environment variable {}", escape(name, 128));
        let sealed =
            parse_sealed(&cfg, value.trim_ascii_end().as_bytes(), &what).map_err(|error| {
                Failure::SealedEnv {
                    name: name.to_string(),
                    error,
                }
            })?;
        sealed_env.push((i, name.to_string(), sealed));
    }
    let plan = if spec.env_only {
        Vec::new()
    } else {
        plan(&cfg)?
    };
    let mut envp: ExecEnv = env
        .iter()
        .map(|e| Zeroizing::new(e.as_bytes().to_vec()))
        .collect();
    if sealed_env.is_empty() && plan.is_empty() {
        info!(
            "exec: no sealed value in the environment and nothing configured to unseal; exec {path}"
        );
        return Ok((path, envp));
    }
    let sealdir = if plan.is_empty() {
        None
    } else {
        Some(SealDir::open(&cfg.sealed_dir, &seal_options(&cfg))?)
    };
    let mut client = connect(&cfg, init_data.as_ref(), attester, deadline)?;
    let mut keys: BTreeMap<String, Option<PublicJwk>> = BTreeMap::new();
    let secrets = fetch_plan(&cfg, &mut client, &mut keys, &plan)?;
    for (i, name, sealed) in &sealed_env {
        let label = format!("environment variable {}", escape(name, 128));
        let plaintext =
            unseal_one(&cfg, &mut client, &mut keys, &label, sealed).map_err(|error| {
                Failure::UnsealEnv {
                    name: name.clone(),
                    error: Box::new(error),
                }
            })?;
        if plaintext.contains(&0) {
            return Err(Failure::EnvNul { name: name.clone() });
        }
        let mut entry = Zeroizing::new(Vec::with_capacity(name.len() + 1 + plaintext.len()));
        entry.extend_from_slice(name.as_bytes());
        entry.push(b'=');
        entry.extend_from_slice(&plaintext);
        envp[*i] = entry;
    }
    before_deadline(&cfg, deadline, format!("exec {path}"))?;
    if let Some(sealdir) = sealdir {
        let batch: Vec<(RelPath, &[u8])> = secrets
            .iter()
            .map(|(p, s)| (p.clone(), s.as_slice()))
            .collect();
        let report = sealdir.commit(&batch)?;
        for file in &report.files {
            info!("wrote {}/{}", cfg.sealed_dir, file);
        }
    }
    let s = client.stats;
    info!(
        "exec: unsealed {} environment value(s){} ({} attestation(s)); exec {path}",
        sealed_env.len(),
        if secrets.is_empty() {
            String::new()
        } else {
            format!(" and {} file(s) into {}", secrets.len(), cfg.sealed_dir)
        },
        s.attestations
    );
    Ok((path, envp))
}
