//! sealgate's configuration: its sources, their precedence and validation (pure).
//!
//! Sources, highest precedence first:
//! 1. command-line flags;
//! 2. the TOML config file (`--config FILE`, else `sealgate.config=` on the kernel
//!    command line, else `/etc/sealgate/config.toml` if it exists);
//! 3. the kernel command line: `sealgate.*` keys, and `agent.aa_kbc_params=cc_kbc::<url>`
//!    as kata passes it to the attestation agent;
//! 4. built-in defaults.
//!
//! Scalars come from the highest source that sets them. The resource list is not merged:
//! it comes whole from the highest source that lists any resource.

use crate::teekey::KeyAlgorithm;
use crate::uri::{ResourceUri, UriError};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;

/// Which TEE to attest as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeChoice {
    /// Detect SNP or TDX; fail if neither is present (never falls back to sample).
    Auto,
    /// The sample TEE (tests and demos only; proves nothing).
    Sample,
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
}

impl TeeChoice {
    /// Parses `auto|sample|snp|tdx`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s {
            "auto" => Ok(Self::Auto),
            "sample" => Ok(Self::Sample),
            "snp" => Ok(Self::Snp),
            "tdx" => Ok(Self::Tdx),
            other => Err(ConfigError::invalid(
                "tee",
                other,
                "expected auto, sample, snp or tdx",
            )),
        }
    }
}

/// One resource to fetch and where it goes under the sealed directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    /// The KBS resource.
    pub uri: ResourceUri,
    /// The path relative to the sealed directory (validated when writing).
    pub path: String,
}

impl ResourceSpec {
    /// Parses the command-line form `URI=PATH`, splitting at the last `=`, so a URI
    /// with a query needs an explicit `=PATH`. Without `=`, the path defaults to the
    /// URI's segments (`repo/type/tag`).
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let (uri, path) = match spec.rsplit_once('=') {
            Some((u, p)) if !p.is_empty() => (u, Some(p)),
            Some(_) => {
                return Err(ConfigError::invalid(
                    "resource",
                    spec,
                    "empty path after '='",
                ));
            }
            None => (spec, None),
        };
        let uri = ResourceUri::parse(uri).map_err(ConfigError::Uri)?;
        let path = path
            .map(String::from)
            .unwrap_or_else(|| uri.segments().join("/"));
        Ok(ResourceSpec { uri, path })
    }
}

/// One source of settings; `None` means "not set here".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// KBS base URL (`http://host:port[/base]`).
    pub kbs_url: Option<String>,
    /// TEE selection.
    pub tee: Option<TeeChoice>,
    /// Tee key algorithm.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Where secrets are written.
    pub sealed_dir: Option<String>,
    /// Owner of written files.
    pub owner: Option<(u32, u32)>,
    /// Mode of written files.
    pub mode: Option<u32>,
    /// Size limit of the tmpfs sealgate mounts (`mount -o size=`), bytes.
    pub tmpfs_size: Option<u64>,
    /// Mount a tmpfs on the sealed directory when running as root and nothing is mounted
    /// there (default true).
    pub mount_tmpfs: Option<bool>,
    /// Write to a filesystem that is not tmpfs/ramfs (insecure: tests and demos).
    pub allow_non_tmpfs: Option<bool>,
    /// Resources to fetch.
    pub resources: Option<Vec<ResourceSpec>>,
    /// Directory of sealed-secret files to unseal.
    pub sealed_secrets_dir: Option<String>,
    /// Directory of local verification keys for sealed secrets whose kid is a name.
    pub sealed_secret_keys_dir: Option<String>,
    /// Accept sealed secrets without a valid signature (insecure; warns).
    pub allow_unsigned: Option<bool>,
    /// How long to keep retrying an unreachable or failing KBS, seconds.
    pub deadline_secs: Option<u64>,
    /// TCP connect timeout, milliseconds.
    pub connect_timeout_ms: Option<u64>,
    /// Read/write timeout per HTTP exchange, milliseconds.
    pub io_timeout_ms: Option<u64>,
    /// Log level name.
    pub log_level: Option<String>,
    /// Init-data TOML file (sent in `/attest` and checked against the TEE).
    pub init_data: Option<String>,
    /// The configfs-tsm report directory.
    pub configfs_tsm: Option<String>,
}

macro_rules! merge_fields {
    ($hi:ident, $lo:ident, $($f:ident),*) => { $( if $hi.$f.is_none() { $hi.$f = $lo.$f.clone(); } )* };
}

impl Settings {
    /// Fills every unset field of `self` from `lower` (a lower-precedence source).
    pub fn or(mut self, lower: &Settings) -> Settings {
        merge_fields!(
            self,
            lower,
            kbs_url,
            tee,
            key_algorithm,
            sealed_dir,
            owner,
            mode,
            tmpfs_size,
            mount_tmpfs,
            allow_non_tmpfs,
            resources,
            sealed_secrets_dir,
            sealed_secret_keys_dir,
            allow_unsigned,
            deadline_secs,
            connect_timeout_ms,
            io_timeout_ms,
            log_level,
            init_data,
            configfs_tsm
        );
        self
    }

    /// Resolves defaults and checks that the result can run.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let kbs_url = self.kbs_url.ok_or(ConfigError::Missing(
            "KBS URL (--kbs, kbs_url in the config file, sealgate.kbs= or agent.aa_kbc_params=cc_kbc::<url> on the kernel command line)",
        ))?;
        for (key, value) in [
            ("connect timeout", self.connect_timeout_ms),
            ("I/O timeout", self.io_timeout_ms),
        ] {
            if value == Some(0) {
                return Err(ConfigError::invalid(key, "0", "must be at least 1 ms"));
            }
        }
        Ok(Config {
            kbs_url,
            tee: self.tee.unwrap_or(TeeChoice::Auto),
            key_algorithm: self.key_algorithm.unwrap_or_default(),
            sealed_dir: self
                .sealed_dir
                .unwrap_or_else(|| DEFAULT_SEALED_DIR.to_string()),
            owner: self.owner,
            mode: self.mode.unwrap_or(0o400),
            tmpfs_size: self.tmpfs_size.unwrap_or(DEFAULT_TMPFS_SIZE),
            mount_tmpfs: self.mount_tmpfs.unwrap_or(true),
            allow_non_tmpfs: self.allow_non_tmpfs.unwrap_or(false),
            resources: self.resources.unwrap_or_default(),
            sealed_secrets_dir: self.sealed_secrets_dir,
            sealed_secret_keys_dir: self
                .sealed_secret_keys_dir
                .unwrap_or_else(|| DEFAULT_SEALED_SECRET_KEYS_DIR.to_string()),
            allow_unsigned: self.allow_unsigned.unwrap_or(false),
            deadline_secs: self.deadline_secs.unwrap_or(60),
            connect_timeout_ms: self.connect_timeout_ms.unwrap_or(5_000),
            io_timeout_ms: self.io_timeout_ms.unwrap_or(30_000),
            log_level: self.log_level.unwrap_or_else(|| "info".to_string()),
            init_data: self.init_data,
            configfs_tsm: self
                .configfs_tsm
                .unwrap_or_else(|| DEFAULT_CONFIGFS_TSM.to_string()),
        })
    }
}

/// Default directory for secrets.
pub const DEFAULT_SEALED_DIR: &str = "/sealed";
/// Default tmpfs size limit (16 MiB).
pub const DEFAULT_TMPFS_SIZE: u64 = 16 << 20;
/// Where upstream's CDH looks up local sealed-secret verification keys.
pub const DEFAULT_SEALED_SECRET_KEYS_DIR: &str = "/run/confidential-containers/cdh/sealed-secret";
/// Where the kernel's configfs-tsm report interface lives.
pub const DEFAULT_CONFIGFS_TSM: &str = "/sys/kernel/config/tsm/report";
/// Default config file, read if it exists and no other is named.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/sealgate/config.toml";

/// The resolved configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// KBS base URL.
    pub kbs_url: String,
    /// TEE selection.
    pub tee: TeeChoice,
    /// Tee key algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// Where secrets are written.
    pub sealed_dir: String,
    /// Owner (uid, gid) of written files; `None` keeps the running user.
    pub owner: Option<(u32, u32)>,
    /// Mode of written files.
    pub mode: u32,
    /// tmpfs size limit, bytes.
    pub tmpfs_size: u64,
    /// Mount a tmpfs when root and nothing is mounted.
    pub mount_tmpfs: bool,
    /// Accept a non-tmpfs sealed directory.
    pub allow_non_tmpfs: bool,
    /// Resources to fetch.
    pub resources: Vec<ResourceSpec>,
    /// Sealed-secret input directory.
    pub sealed_secrets_dir: Option<String>,
    /// Local verification keys directory.
    pub sealed_secret_keys_dir: String,
    /// Accept unsigned sealed secrets.
    pub allow_unsigned: bool,
    /// Retry deadline, seconds.
    pub deadline_secs: u64,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// I/O timeout, ms.
    pub io_timeout_ms: u64,
    /// Log level.
    pub log_level: String,
    /// Init-data TOML file.
    pub init_data: Option<String>,
    /// configfs-tsm report directory.
    pub configfs_tsm: String,
}

/// Configuration errors. They quote the offending value: configuration is not secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A required setting is absent.
    Missing(&'static str),
    /// A value is malformed.
    Invalid {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A resource URI is malformed.
    Uri(UriError),
    /// The config file is not valid TOML of the expected shape.
    File(String),
}

impl ConfigError {
    fn invalid(key: &str, value: &str, expected: &str) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            value: value.chars().take(256).collect(),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(what) => write!(f, "no {what} configured"),
            Self::Invalid {
                key,
                value,
                expected,
            } => write!(f, "invalid {key} '{value}': {expected}"),
            Self::Uri(e) => write!(f, "{e}"),
            Self::File(e) => write!(f, "config file: {e}"),
        }
    }
}

/// Parses `uid:gid` (numeric).
pub fn parse_owner(s: &str) -> Result<(u32, u32), ConfigError> {
    let bad = || ConfigError::invalid("owner", s, "expected numeric uid:gid");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// Parses an octal file mode. Secrets stay private: no permission for others, no
/// set-id or sticky bits, and the owner must be able to read.
pub fn parse_mode(s: &str) -> Result<u32, ConfigError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| ConfigError::invalid("mode", s, "expected an octal mode such as 0400"))?;
    if mode & !0o770 != 0 || mode & 0o400 == 0 {
        return Err(ConfigError::invalid(
            "mode",
            s,
            "must grant the owner read and give others nothing (e.g. 0400, 0440, 0600)",
        ));
    }
    Ok(mode)
}

/// Parses a boolean flag value.
pub fn parse_bool(key: &str, s: &str) -> Result<bool, ConfigError> {
    match s {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(key, s, "expected true or false")),
    }
}

/// Parses a non-negative integer setting.
pub fn parse_u64(key: &str, s: &str) -> Result<u64, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError::invalid(key, s, "expected a non-negative integer"))
}

/// Parses a tee key algorithm name.
pub fn parse_key_algorithm(s: &str) -> Result<KeyAlgorithm, ConfigError> {
    KeyAlgorithm::parse(s).map_err(|e| ConfigError::invalid("tee key algorithm", s, &e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    kbs_url: Option<String>,
    tee: Option<String>,
    tee_key_algorithm: Option<String>,
    sealed_dir: Option<String>,
    owner: Option<String>,
    mode: Option<String>,
    tmpfs_size: Option<String>,
    mount_tmpfs: Option<bool>,
    allow_non_tmpfs: Option<bool>,
    sealed_secrets_dir: Option<String>,
    sealed_secret_keys_dir: Option<String>,
    allow_unsigned_sealed_secrets: Option<bool>,
    deadline_secs: Option<u64>,
    connect_timeout_ms: Option<u64>,
    io_timeout_ms: Option<u64>,
    log_level: Option<String>,
    init_data: Option<String>,
    configfs_tsm: Option<String>,
    #[serde(default)]
    resource: Vec<FileResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResource {
    uri: String,
    path: Option<String>,
}

/// Parses the TOML config file.
pub fn parse_file(text: &str) -> Result<Settings, ConfigError> {
    let f: FileConfig =
        toml::from_str(text).map_err(|e| ConfigError::File(first_line(&e.to_string())))?;
    let mut resources = Vec::new();
    for r in f.resource {
        let uri = ResourceUri::parse(&r.uri).map_err(ConfigError::Uri)?;
        let path = r.path.unwrap_or_else(|| uri.segments().join("/"));
        resources.push(ResourceSpec { uri, path });
    }
    Ok(Settings {
        kbs_url: f.kbs_url,
        tee: f.tee.as_deref().map(TeeChoice::parse).transpose()?,
        key_algorithm: f
            .tee_key_algorithm
            .as_deref()
            .map(parse_key_algorithm)
            .transpose()?,
        sealed_dir: f.sealed_dir,
        owner: f.owner.as_deref().map(parse_owner).transpose()?,
        mode: f.mode.as_deref().map(parse_mode).transpose()?,
        tmpfs_size: f.tmpfs_size.as_deref().map(parse_size).transpose()?,
        mount_tmpfs: f.mount_tmpfs,
        allow_non_tmpfs: f.allow_non_tmpfs,
        resources: if resources.is_empty() {
            None
        } else {
            Some(resources)
        },
        sealed_secrets_dir: f.sealed_secrets_dir,
        sealed_secret_keys_dir: f.sealed_secret_keys_dir,
        allow_unsigned: f.allow_unsigned_sealed_secrets,
        deadline_secs: f.deadline_secs,
        connect_timeout_ms: f.connect_timeout_ms,
        io_timeout_ms: f.io_timeout_ms,
        log_level: f.log_level,
        init_data: f.init_data,
        configfs_tsm: f.configfs_tsm,
    })
}

/// Parses a size: digits with an optional k/m/g suffix (powers of 1024), e.g. `16m`.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::invalid("tmpfs size", s, "expected e.g. 16m, 512k or 1g");
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift)
        .filter(|&v| v > 0)
        .ok_or_else(bad)
}

fn first_line(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}

/// Splits a kernel command line into parameters the way the kernel does: separated by
/// spaces, double quotes group (and are removed), parameters after `--` belong to init.
pub fn kernel_params(cmdline: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut started = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    if cur == "--" {
                        return params;
                    }
                    params.push(core::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started && cur != "--" {
        params.push(cur);
    }
    params
}

/// Reads sealgate's settings from a kernel command line. Also returns the config file
/// named by `sealgate.config=`, and notes about parameters it ignored (for the log).
pub fn parse_cmdline(
    cmdline: &str,
) -> Result<(Settings, Option<String>, Vec<String>), ConfigError> {
    let mut s = Settings::default();
    let mut config_file = None;
    let mut notes = Vec::new();
    let mut resources = Vec::new();
    for param in kernel_params(cmdline) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        match key {
            "agent.aa_kbc_params" => match value.split_once("::") {
                Some(("cc_kbc", url)) if !url.is_empty() => s.kbs_url = Some(url.to_string()),
                _ => notes.push(format!(
                    "ignoring agent.aa_kbc_params={value}: sealgate only speaks cc_kbc::<url>"
                )),
            },
            "sealgate.kbs" => s.kbs_url = Some(value.to_string()),
            "sealgate.tee" => s.tee = Some(TeeChoice::parse(value)?),
            "sealgate.key" => s.key_algorithm = Some(parse_key_algorithm(value)?),
            "sealgate.resource" => resources.push(ResourceSpec::parse(value)?),
            "sealgate.sealed_dir" => s.sealed_dir = Some(value.to_string()),
            "sealgate.owner" => s.owner = Some(parse_owner(value)?),
            "sealgate.mode" => s.mode = Some(parse_mode(value)?),
            "sealgate.tmpfs_size" => s.tmpfs_size = Some(parse_size(value)?),
            "sealgate.sealed_secrets" => s.sealed_secrets_dir = Some(value.to_string()),
            "sealgate.deadline" => s.deadline_secs = Some(parse_u64(key, value)?),
            "sealgate.log" => s.log_level = Some(value.to_string()),
            "sealgate.init_data" => s.init_data = Some(value.to_string()),
            "sealgate.configfs_tsm" => s.configfs_tsm = Some(value.to_string()),
            "sealgate.config" => config_file = Some(value.to_string()),
            k if k.starts_with("sealgate.") => {
                notes.push(format!("ignoring unknown kernel parameter {k}"))
            }
            _ => {}
        }
    }
    if !resources.is_empty() {
        s.resources = Some(resources);
    }
    Ok((s, config_file, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_command_line_as_kata_passes_it() {
        let line = "console=ttyS0 quiet agent.aa_kbc_params=cc_kbc::http://10.0.2.2:8080 \"sealgate.resource=kbs:///default/key/disk=disk.key\" sealgate.resource=kbs:///a/b/c sealgate.tee=sample sealgate.bogus=1 -- sealgate.tee=snp\n";
        let (s, file, notes) = parse_cmdline(line).unwrap();
        assert_eq!(s.kbs_url.as_deref(), Some("http://10.0.2.2:8080"));
        assert_eq!(
            s.tee,
            Some(TeeChoice::Sample),
            "parameters after -- belong to init"
        );
        let r = s.resources.unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].uri.to_string().as_str(), r[0].path.as_str()),
            ("kbs:///default/key/disk", "disk.key")
        );
        assert_eq!(r[1].path, "a/b/c");
        assert_eq!(file, None);
        assert_eq!(notes, ["ignoring unknown kernel parameter sealgate.bogus"]);
        assert_eq!(kernel_params("a=\"b c\" d"), ["a=b c", "d"]);
        let (_, _, notes) = parse_cmdline("agent.aa_kbc_params=offline_fs_kbc::null").unwrap();
        assert!(notes[0].contains("only speaks cc_kbc"));
        assert!(parse_cmdline("sealgate.tee=SNP").is_err());
    }

    #[test]
    fn precedence_flags_file_cmdline_defaults() {
        let flags = Settings {
            tee: Some(TeeChoice::Sample),
            ..Default::default()
        };
        let file = parse_file(
            "kbs_url = \"http://kbs:8080\"\ntee = \"snp\"\nmode = \"0440\"\n[[resource]]\nuri = \"kbs:///r/t/one\"\npath = \"x/one\"\n",
        )
        .unwrap();
        let (cmdline, _, _) = parse_cmdline(
            "sealgate.kbs=http://other sealgate.sealed_dir=/s sealgate.resource=kbs:///r/t/two",
        )
        .unwrap();
        let c = flags.or(&file).or(&cmdline).resolve().unwrap();
        assert_eq!(c.tee, TeeChoice::Sample);
        assert_eq!(c.kbs_url, "http://kbs:8080");
        assert_eq!(c.sealed_dir, "/s");
        assert_eq!(c.mode, 0o440);
        assert_eq!(c.resources.len(), 1, "resource lists are not merged");
        assert_eq!(c.resources[0].path, "x/one");
        assert_eq!(c.deadline_secs, 60);
        assert!(!c.allow_non_tmpfs && !c.allow_unsigned);
        assert!(matches!(
            Settings::default().resolve(),
            Err(ConfigError::Missing(_))
        ));
        let zero = Settings {
            kbs_url: Some("http://kbs".into()),
            io_timeout_ms: Some(0),
            ..Default::default()
        };
        assert!(
            zero.resolve()
                .unwrap_err()
                .to_string()
                .contains("at least 1 ms")
        );
    }

    #[test]
    fn values_are_validated() {
        assert_eq!(parse_mode("0400").unwrap(), 0o400);
        assert_eq!(parse_mode("600").unwrap(), 0o600);
        for bad in ["0644", "0404", "4400", "0200", "abc", "0o7777"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_owner("1000:100").unwrap(), (1000, 100));
        assert!(parse_owner("root:root").is_err());
        assert_eq!(parse_size("16m").unwrap(), 16 << 20);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["16mb", "m", "1,uid=0", "10%", "0", "99999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let e = parse_file("kbs_url = \"x\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parse_file("[[resource]]\nuri = \"kbs:///a/b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly <repo>/<type>/<tag>"), "{e}");
        assert!(
            parse_file("tee_key_algorithm = \"ECDH-ES+A256KW-P384\"")
                .unwrap_err()
                .to_string()
                .contains("P-384")
        );
        let r = ResourceSpec::parse("kbs:///a/b/c?v=1=out/c").unwrap();
        assert_eq!((r.uri.query(), r.path.as_str()), (Some("v=1"), "out/c"));
        assert!(ResourceSpec::parse("kbs:///a/b/c=").is_err());
    }
}
