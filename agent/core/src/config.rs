//! sealgate's configuration: its sources, their precedence and validation (pure).
//!
//! Sources, highest precedence first:
//! 1. command-line flags;
//! 2. the TOML config file (`--config FILE`, else `/etc/sealgate/config.toml` if it
//!    exists; `sealgate.config=` on the kernel command line is ignored);
//! 3. init-data's `sealgate.toml` (and the KBS URL of its `aa.toml`/`cdh.toml`), once
//!    checked against the TEE;
//! 4. the kernel command line: `sealgate.*` keys, and `agent.aa_kbc_params=cc_kbc::<url>`
//!    as kata passes it to the attestation agent, cut down to what [`crate::trust`] lets
//!    an unmeasured source set unless the config file sets `trust_kernel_cmdline`;
//! 5. built-in defaults.
//!
//! Scalars come from the highest source that sets them. The resource list is not merged:
//! it comes whole from the highest source that lists any resource (likewise the module
//! and DNS server lists of the init stage).
//!
//! The settings of the `sealgate init` stage (early mounts, kernel modules, network, what
//! runs after the secrets) resolve separately into an [`InitConfig`] with
//! [`Settings::resolve_init`], which needs no KBS URL: the init stage must know how to
//! fail before it knows whether unsealing can work.

use crate::escape::Escaped;
use crate::teekey::KeyAlgorithm;
use crate::tomlerror::TomlError;
use crate::trust::{self, Key, Source};
use crate::uri::{ResourceUri, UriError};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;
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

/// How a volume's device is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceMatch {
    /// A path (`/dev/vdb`, `/dev/disk/by-id/...` where something made it).
    Path(String),
    /// The block device whose LUKS header has this UUID (`uuid=...`, lower case), found
    /// by reading the first 4 KiB of every block device in `/sys/class/block`: no udev
    /// needed. Exactly one device must match.
    LuksUuid(String),
}

impl DeviceMatch {
    /// Parses `/dev/...` or `uuid=<UUID>`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        if let Some(uuid) = s.strip_prefix("uuid=").or_else(|| s.strip_prefix("UUID=")) {
            let uuid = uuid.to_ascii_lowercase();
            let ok = uuid.len() == 36
                && uuid.bytes().enumerate().all(|(i, b)| {
                    if matches!(i, 8 | 13 | 18 | 23) {
                        b == b'-'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                });
            if !ok {
                return Err(ConfigError::invalid(
                    "volume device",
                    s,
                    "expected uuid=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
                ));
            }
            return Ok(DeviceMatch::LuksUuid(uuid));
        }
        if !s.starts_with('/')
            || s.len() > 4096
            || s.split('/').any(|c| c == "..")
            || s.contains('\0')
        {
            return Err(ConfigError::invalid(
                "volume device",
                s,
                "expected an absolute path (/dev/vdb) or uuid=<LUKS UUID>",
            ));
        }
        Ok(DeviceMatch::Path(s.into()))
    }
}

impl fmt::Display for DeviceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceMatch::Path(p) => f.write_str(p),
            DeviceMatch::LuksUuid(u) => write!(f, "uuid={u}"),
        }
    }
}

/// The parameters of a plain dm-crypt volume (no header: the KBS resource is the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainParams {
    /// dm-crypt cipher specification (`aes-xts-plain64`).
    pub cipher: String,
    /// Key size, bits (the resource must be exactly this long).
    pub key_bits: u32,
    /// Encryption sector size, bytes (512 or 4096).
    pub sector_size: u32,
    /// Where the encrypted data starts on the device, 512-byte sectors.
    pub offset_sectors: u64,
}

/// What is on a volume's device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeType {
    /// A LUKS2 header; the KBS resource is a keyslot's passphrase.
    Luks2,
    /// Plain dm-crypt; the KBS resource is the volume key itself.
    Plain(PlainParams),
}

/// One `[[volume]]`: an encrypted block device opened with a key from the KBS, mapped
/// as `/dev/mapper/NAME`, optionally mounted, optionally the next root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The mapped name (`/dev/mapper/NAME`).
    pub name: String,
    /// The encrypted device.
    pub device: DeviceMatch,
    /// The KBS resource holding the passphrase (LUKS2) or the key (plain). Always set for
    /// a `[[volume]]`; `None` for a volume the server opens for a CDH `SecureMount` call,
    /// whose key comes with the request (or is generated).
    pub resource: Option<ResourceUri>,
    /// LUKS2 or plain.
    pub kind: VolumeType,
    /// Where to mount the opened volume (`None`: mapped only). A root volume defaults to
    /// [`DEFAULT_ROOT_MOUNT`].
    pub mount: Option<String>,
    /// Filesystem type (default `ext4`).
    pub fstype: String,
    /// Mount options passed to the filesystem (`data=`), e.g. `errors=remount-ro`.
    pub options: String,
    /// Map and mount read-only.
    pub read_only: bool,
    /// The init stage switches into it as the new root (`switch_root`).
    pub root: bool,
}

/// The dm-crypt ciphers accepted for plain volumes (what LUKS2 volumes use by default).
pub const PLAIN_CIPHERS: [&str; 1] = ["aes-xts-plain64"];
/// The default plain cipher.
pub const DEFAULT_PLAIN_CIPHER: &str = "aes-xts-plain64";
/// Where a root volume is mounted before the switch, unless `mount` says otherwise.
pub const DEFAULT_ROOT_MOUNT: &str = "/sysroot";
/// The default filesystem of a volume.
pub const DEFAULT_VOLUME_FSTYPE: &str = "ext4";
/// The most volumes one configuration may declare.
pub const MAX_VOLUMES: usize = 16;

/// Whether `name` is a usable mapped name: 1 to 64 of `A-Z a-z 0-9 _ - . +`, not `.`,
/// `..` or `control`.
pub fn valid_volume_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
        && !matches!(name, "." | ".." | "control")
}

impl VolumeSpec {
    /// Checks one volume on its own.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !valid_volume_name(&self.name) {
            return Err(ConfigError::invalid(
                "volume name",
                &self.name,
                "expected 1 to 64 of A-Z a-z 0-9 _ - . +",
            ));
        }
        if let Some(m) = &self.mount
            && (!m.starts_with('/')
                || m == "/"
                || m.split('/').any(|c| c == "..")
                || m.len() > 4096)
        {
            return Err(ConfigError::invalid(
                "volume mount",
                m,
                "expected an absolute path other than / (without ..)",
            ));
        }
        let fs_ok = (1..=32).contains(&self.fstype.len())
            && self
                .fstype
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !fs_ok {
            return Err(ConfigError::invalid(
                "volume fstype",
                &self.fstype,
                "expected e.g. ext4",
            ));
        }
        if self.options.len() > 1024 || self.options.contains('\0') {
            return Err(ConfigError::invalid(
                "volume options",
                &self.options,
                "at most 1024 bytes",
            ));
        }
        if self.root && self.mount.is_none() {
            return Err(ConfigError::Missing("mount point of the root volume"));
        }
        if let VolumeType::Plain(p) = &self.kind {
            if !PLAIN_CIPHERS.contains(&p.cipher.as_str()) {
                return Err(ConfigError::invalid(
                    "volume cipher",
                    &p.cipher,
                    "expected aes-xts-plain64",
                ));
            }
            if !matches!(p.key_bits, 256 | 512) {
                return Err(ConfigError::invalid(
                    "volume key_size",
                    &p.key_bits.to_string(),
                    "expected 256 or 512 (bits; AES-128 or AES-256 in XTS)",
                ));
            }
            if !matches!(p.sector_size, 512 | 4096) {
                return Err(ConfigError::invalid(
                    "volume sector_size",
                    &p.sector_size.to_string(),
                    "expected 512 or 4096",
                ));
            }
            if p.offset_sectors % u64::from(p.sector_size / 512) != 0 {
                return Err(ConfigError::invalid(
                    "volume offset",
                    &p.offset_sectors.to_string(),
                    "must be a multiple of the sector size (in 512-byte sectors)",
                ));
            }
            if matches!(self.device, DeviceMatch::LuksUuid(_)) {
                return Err(ConfigError::invalid(
                    "volume device",
                    &self.device.to_string(),
                    "a plain volume has no header to find it by: give its path",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a list of volumes together: at most [`MAX_VOLUMES`], unique names and mount
/// points, at most one root.
pub fn check_volumes(volumes: &[VolumeSpec]) -> Result<(), ConfigError> {
    if volumes.len() > MAX_VOLUMES {
        return Err(ConfigError::invalid(
            "volume",
            &volumes.len().to_string(),
            "at most 16 volumes",
        ));
    }
    if volumes.iter().filter(|v| v.root).count() > 1 {
        return Err(ConfigError::invalid(
            "volume root",
            "true",
            "at most one volume can be the new root",
        ));
    }
    for (i, v) in volumes.iter().enumerate() {
        for w in &volumes[..i] {
            if w.name == v.name {
                return Err(ConfigError::invalid(
                    "volume name",
                    &v.name,
                    "declared twice",
                ));
            }
            if v.mount.is_some() && w.mount == v.mount {
                return Err(ConfigError::invalid(
                    "volume mount",
                    v.mount.as_deref().unwrap_or_default(),
                    "two volumes mounted there",
                ));
            }
        }
    }
    Ok(())
}

/// One source of settings; `None` means "not set here".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The kernel command line is measured (SNP kernel hashes, a TDX policy over the
    /// RTMRs): let it set what only measured sources may ([`crate::trust`]). Only the
    /// image's config file sets it.
    pub trust_kernel_cmdline: Option<bool>,
    /// KBS base URL (`http[s]://host:port[/base]`).
    pub kbs_url: Option<String>,
    /// The KBS's certificate (PEM): trust anchor and exact pin for `https://`. A file
    /// from the image (`kbs_cert`, `--kbs-cert`), or init-data's `aa.toml`/`cdh.toml`.
    pub kbs_cert: Option<KbsCert>,
    /// A PEM bundle of CA certificates to trust for `https://` (a KBS behind a public CA).
    pub kbs_ca_bundle: Option<String>,
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
    /// Encrypted volumes to open (and mount) with keys from the KBS.
    pub volumes: Option<Vec<VolumeSpec>>,
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
    /// The sysfs root (CCEL, TDX measurement files, RTMR extends).
    pub sysfs: Option<String>,
    /// The event-log directory (the AAEL and its write-ahead record).
    pub eventlog_dir: Option<String>,
    /// The most the REST API may serve, whatever `--features` (kata's unmeasured
    /// `agent.guest_components_rest_api`) asks for; default `resource`.
    pub rest_api_max: Option<crate::rest::Features>,
    /// Init stage: what runs once the secrets are in place.
    pub init_mode: Option<InitMode>,
    /// Init stage: the program exec'ed next (`InitMode::Exec`).
    pub next_init: Option<String>,
    /// Init stage: what happens when attestation or unsealing fails.
    pub on_failure: Option<OnFailure>,
    /// Init stage: kernel modules to load, in order (dependencies first, from `modules.dep`).
    pub modules: Option<Vec<ModuleSpec>>,
    /// Init stage: module parameters from the kernel command line (`module.param=value`,
    /// as modprobe applies them), `(normalized module name, "param=value")`.
    pub module_options: Option<Vec<(String, String)>>,
    /// Init stage: configure the network (default true).
    pub net: Option<bool>,
    /// Init stage: the interface to configure (default `eth0`).
    pub ifname: Option<String>,
    /// Init stage: IPv4 address and prefix of the interface.
    pub ip: Option<Ipv4Cidr>,
    /// Init stage: IPv4 default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Init stage: DNS servers written to `/etc/resolv.conf`.
    pub dns: Option<Vec<Ipv4Addr>>,
    /// Init stage: how long to wait for the interface to appear, seconds.
    pub net_wait_secs: Option<u64>,
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
            trust_kernel_cmdline,
            kbs_url,
            kbs_cert,
            kbs_ca_bundle,
            tee,
            key_algorithm,
            sealed_dir,
            owner,
            mode,
            tmpfs_size,
            mount_tmpfs,
            allow_non_tmpfs,
            resources,
            volumes,
            sealed_secrets_dir,
            sealed_secret_keys_dir,
            allow_unsigned,
            deadline_secs,
            connect_timeout_ms,
            io_timeout_ms,
            log_level,
            init_data,
            configfs_tsm,
            sysfs,
            eventlog_dir,
            rest_api_max,
            init_mode,
            next_init,
            on_failure,
            modules,
            module_options,
            net,
            ifname,
            ip,
            gateway,
            dns,
            net_wait_secs
        );
        self
    }

    /// Resolves the init stage's settings (defaults included). Needs no KBS URL.
    pub fn resolve_init(&self) -> Result<InitConfig, ConfigError> {
        let net = if self.net.unwrap_or(true) {
            let ifname = self.ifname.clone().unwrap_or_else(|| DEFAULT_IFNAME.into());
            if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ', ':']) {
                return Err(ConfigError::invalid(
                    "ifname",
                    &ifname,
                    "expected an interface name of 1 to 15 characters",
                ));
            }
            let wait_secs = self.net_wait_secs.unwrap_or(DEFAULT_NET_WAIT_SECS);
            Some(
                if self.ip.is_none() && self.gateway.is_none() && self.dns.is_none() {
                    NetPlan {
                        ifname,
                        address: Some(QEMU_USER_GUEST),
                        gateway: Some(QEMU_USER_GATEWAY),
                        dns: alloc::vec![QEMU_USER_DNS],
                        defaults: true,
                        wait_secs,
                    }
                } else {
                    if self.gateway.is_some() && self.ip.is_none() {
                        return Err(ConfigError::Missing(
                            "interface address for the configured gateway (sealgate.ip=ADDR/PREFIX)",
                        ));
                    }
                    NetPlan {
                        ifname,
                        address: self.ip,
                        gateway: self.gateway,
                        dns: self.dns.clone().unwrap_or_default(),
                        defaults: false,
                        wait_secs,
                    }
                },
            )
        } else {
            None
        };
        Ok(InitConfig {
            mode: self.init_mode.unwrap_or(InitMode::Exec),
            next_init: self.next_init.clone(),
            on_failure: self.on_failure.unwrap_or(OnFailure::PowerOff),
            modules: self.modules.clone(),
            module_options: self.module_options.clone().unwrap_or_default(),
            net,
            log_level: self.log_level.clone(),
        })
    }

    /// Resolves defaults and checks that the result can run.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let kbs_url = self.kbs_url.ok_or(ConfigError::Missing(
            "KBS URL (--kbs, kbs_url in the config file, sealgate.kbs= or agent.aa_kbc_params=cc_kbc::<url> on the kernel command line)",
        ))?;
        check_kbs_trust(
            &kbs_url,
            self.kbs_cert.as_ref(),
            self.kbs_ca_bundle.as_deref(),
        )?;
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
            kbs_cert: self.kbs_cert,
            kbs_ca_bundle: self.kbs_ca_bundle,
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
            volumes: self.volumes.unwrap_or_default(),
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
            sysfs: self.sysfs.unwrap_or_else(|| DEFAULT_SYSFS.to_string()),
            eventlog_dir: self
                .eventlog_dir
                .unwrap_or_else(|| DEFAULT_EVENTLOG_DIR.to_string()),
            rest_api_max: self.rest_api_max.unwrap_or_default(),
        })
    }
}

/// The KBS certificate as a measured source names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KbsCert {
    /// A PEM file of the image (`kbs_cert = FILE`, `--kbs-cert FILE`).
    File(String),
    /// PEM text from init-data (`aa.toml` `[token_configs.kbs] cert`, or `cdh.toml`
    /// `[kbc] kbs_cert`).
    InitData(String),
}

impl KbsCert {
    /// Where it comes from, for messages (never the certificate itself).
    pub fn describe(&self) -> String {
        match self {
            KbsCert::File(path) => format!("kbs_cert file {}", crate::escape::escape(path, 256)),
            KbsCert::InitData(_) => "init-data's KBS certificate".into(),
        }
    }
}

/// The KBS URL against its trust settings: a configured certificate or CA bundle means
/// the operator meant TLS, so `http://` is refused; `https://` needs at least one trust
/// anchor (no system roots are ever used).
fn check_kbs_trust(
    url: &str,
    cert: Option<&KbsCert>,
    bundle: Option<&str>,
) -> Result<(), ConfigError> {
    let scheme = url.trim().split_once("://").map(|(s, _)| s);
    let https = scheme.is_some_and(|s| s.eq_ignore_ascii_case("https"));
    let http = scheme.is_some_and(|s| s.eq_ignore_ascii_case("http"));
    let anchor = match (cert, bundle) {
        (Some(c), _) => Some(c.describe()),
        (None, Some(b)) => Some(format!(
            "kbs_ca_bundle file {}",
            crate::escape::escape(b, 256)
        )),
        (None, None) => None,
    };
    match anchor {
        Some(anchor) if http => Err(ConfigError::PlainHttpWithCert {
            url: crate::escape::escape(url.trim(), 256),
            anchor,
        }),
        None if https => Err(ConfigError::HttpsWithoutTrust {
            url: crate::escape::escape(url.trim(), 256),
        }),
        _ => Ok(()),
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
/// The sysfs root: the CCEL (`firmware/acpi/tables/data/CCEL`) and the TDX measurement
/// files (`devices/virtual/misc/tdx_guest/measurements`) are under it.
pub const DEFAULT_SYSFS: &str = "/sys";
/// Where guest-components keeps the AA event log (`eventlog`) and its write-ahead record.
pub const DEFAULT_EVENTLOG_DIR: &str = "/run/attestation-agent";
/// Default config file, read if it exists and no other is named.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/sealgate/config.toml";
/// Init stage: the next init when none is configured (if it exists), as kata images have it.
pub const DEFAULT_NEXT_INIT: &str = "/sbin/init";
/// Init stage: the module list used when none is configured (if it exists); `mkinitramfs`
/// writes it. One [`ModuleSpec`] per line, `#` starts a comment.
pub const DEFAULT_MODULES_FILE: &str = "/etc/sealgate/modules";
/// Init stage: init-data used when none is configured (if it exists); `mkinitramfs
/// --init-data` puts it there.
pub const DEFAULT_INIT_DATA_FILE: &str = "/etc/sealgate/initdata.toml";
/// Init stage: the interface configured by default.
pub const DEFAULT_IFNAME: &str = "eth0";
/// Init stage: how long to wait for the interface to appear by default, seconds.
pub const DEFAULT_NET_WAIT_SECS: u64 = 5;
/// QEMU user networking (slirp): the guest's address.
pub const QEMU_USER_GUEST: Ipv4Cidr = Ipv4Cidr {
    addr: Ipv4Addr::new(10, 0, 2, 15),
    prefix: 24,
};
/// QEMU user networking: the gateway, which is also the host's loopback.
pub const QEMU_USER_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// QEMU user networking: the DNS forwarder.
pub const QEMU_USER_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// What `sealgate init` does once the secrets are in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMode {
    /// `exec` the next init (the workload's init), passing the remaining arguments.
    Exec,
    /// Print a machine-readable report of the secrets on the console, then power off.
    Report,
}

impl InitMode {
    /// Parses `exec|report`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s {
            "exec" => Ok(Self::Exec),
            "report" => Ok(Self::Report),
            other => Err(ConfigError::invalid(
                "init mode",
                other,
                "expected exec or report",
            )),
        }
    }
}

/// What `sealgate init` does when attestation or unsealing fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Power the machine off (fail closed; the default).
    PowerOff,
    /// Halt the machine (fail closed; the VM stays up, stopped).
    Halt,
    /// INSECURE: start the next stage anyway, without the secrets (warned loudly).
    Continue,
}

impl OnFailure {
    /// Parses `poweroff|halt|continue`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s {
            "poweroff" => Ok(Self::PowerOff),
            "halt" => Ok(Self::Halt),
            "continue" => Ok(Self::Continue),
            other => Err(ConfigError::invalid(
                "on_failure",
                other,
                "expected poweroff, halt or continue",
            )),
        }
    }

    /// The name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Self::PowerOff => "poweroff",
            Self::Halt => "halt",
            Self::Continue => "continue",
        }
    }
}

/// A kernel module to load: `NAME [PARAM=VALUE ...]` (as a line of
/// [`DEFAULT_MODULES_FILE`]), where NAME is a module name (`-` and `_` are equivalent) or
/// a path to a `.ko`, `.ko.xz`, `.ko.gz` or `.ko.zst` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSpec {
    /// Module name or path.
    pub module: String,
    /// Parameters, each `param=value` (or a bare boolean `param`).
    pub params: Vec<String>,
}

impl ModuleSpec {
    /// Parses `NAME [PARAM=VALUE ...]` separated by whitespace.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let mut words = s.split_whitespace();
        let module = words
            .next()
            .ok_or_else(|| ConfigError::invalid("module", s, "expected NAME [PARAM=VALUE ...]"))?;
        if module.contains('=') {
            return Err(ConfigError::invalid(
                "module",
                s,
                "expected NAME [PARAM=VALUE ...]: the first word is the module",
            ));
        }
        Ok(ModuleSpec {
            module: module.to_string(),
            params: words.map(String::from).collect(),
        })
    }

    /// Whether this names a file rather than a module.
    pub fn is_path(&self) -> bool {
        self.module.contains('/')
    }

    /// The module name: `-` folded to `_`, directories and `.ko*` suffixes removed.
    pub fn name(&self) -> String {
        module_name(&self.module)
    }
}

/// The canonical name of a module given as a name or a file path: the file name without
/// `.ko[.xz|.gz|.zst]`, with `-` replaced by `_` (the kernel's own normalisation).
pub fn module_name(name_or_path: &str) -> String {
    let base = name_or_path.rsplit('/').next().unwrap_or(name_or_path);
    let base = [".ko.xz", ".ko.gz", ".ko.zst", ".ko"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    base.replace('-', "_")
}

/// Parses the module list file ([`DEFAULT_MODULES_FILE`]): one [`ModuleSpec`] per line,
/// blank lines and `#` comments ignored.
pub fn parse_modules_file(text: &str) -> Result<Vec<ModuleSpec>, ConfigError> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(ModuleSpec::parse)
        .collect()
}

/// An IPv4 address with a prefix length (`10.0.2.15/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `A.B.C.D/N`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError::invalid(
                "ip",
                s,
                "expected an IPv4 address with prefix, e.g. 10.0.2.15/24",
            )
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 || p.starts_with('+') {
            return Err(bad());
        }
        Ok(Ipv4Cidr { addr, prefix })
    }

    /// The broadcast address of the subnet.
    pub fn broadcast(&self) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self.addr) | !mask)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses one IPv4 address setting.
pub fn parse_ipv4(key: &str, s: &str) -> Result<Ipv4Addr, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError::invalid(key, s, "expected an IPv4 address"))
}

/// Parses a comma-separated list of IPv4 addresses.
pub fn parse_ipv4_list(key: &str, s: &str) -> Result<Vec<Ipv4Addr>, ConfigError> {
    s.split(',')
        .filter(|a| !a.is_empty())
        .map(|a| parse_ipv4(key, a))
        .collect()
}

/// The network the init stage configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetPlan {
    /// The interface.
    pub ifname: String,
    /// Its address, if any.
    pub address: Option<Ipv4Cidr>,
    /// The default route's gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Name servers for `/etc/resolv.conf` (none: the file is left alone).
    pub dns: Vec<Ipv4Addr>,
    /// Nothing was configured: these are QEMU user networking's values, applied only if
    /// the interface exists.
    pub defaults: bool,
    /// How long to wait for the interface to appear, seconds.
    pub wait_secs: u64,
}

/// The resolved settings of the init stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitConfig {
    /// What runs once the secrets are in place.
    pub mode: InitMode,
    /// The next init; `None`: [`DEFAULT_NEXT_INIT`].
    pub next_init: Option<String>,
    /// What happens on failure.
    pub on_failure: OnFailure,
    /// Modules to load; `None`: the list in [`DEFAULT_MODULES_FILE`] if it exists.
    pub modules: Option<Vec<ModuleSpec>>,
    /// Module parameters from the kernel command line.
    pub module_options: Vec<(String, String)>,
    /// The network to configure (`None`: leave the network alone).
    pub net: Option<NetPlan>,
    /// Log level name, if configured.
    pub log_level: Option<String>,
}

/// The resolved configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// KBS base URL.
    pub kbs_url: String,
    /// The KBS certificate (anchor and pin), for `https://`.
    pub kbs_cert: Option<KbsCert>,
    /// A CA bundle file, for `https://`.
    pub kbs_ca_bundle: Option<String>,
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
    /// Volumes to open.
    pub volumes: Vec<VolumeSpec>,
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
    /// sysfs root.
    pub sysfs: String,
    /// Event-log directory.
    pub eventlog_dir: String,
    /// The REST API's ceiling (`rest_api_max`).
    pub rest_api_max: crate::rest::Features,
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
    /// The config file is not valid TOML of the expected shape (position, never content).
    File(TomlError),
    /// A KBS certificate or CA bundle is configured, but the KBS URL is plain HTTP.
    PlainHttpWithCert {
        /// The URL.
        url: String,
        /// What names the certificate (never its content).
        anchor: String,
    },
    /// The KBS URL is `https://`, but no certificate and no CA bundle is configured.
    HttpsWithoutTrust {
        /// The URL.
        url: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, value: &str, expected: &str) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            value: crate::escape::escape(value, 256),
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
            Self::File(e) => write!(f, "{e}"),
            Self::PlainHttpWithCert { url, anchor } => write!(
                f,
                "the KBS URL {url} is plain HTTP, but {anchor} is configured: use https:// \
                 (a configured KBS certificate means the KBS must be authenticated over TLS)"
            ),
            Self::HttpsWithoutTrust { url } => write!(
                f,
                "the KBS URL {url} is https://, but no KBS certificate is configured: set \
                 init-data's aa.toml [token_configs.kbs] cert (or cdh.toml [kbc] kbs_cert), or \
                 kbs_cert / kbs_ca_bundle in the image's config (--kbs-cert, --kbs-ca-bundle); \
                 system roots are never used"
            ),
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

/// Parses `rest_api_max`: one of `--features`' values, or `none`.
pub fn parse_rest_api_max(s: &str) -> Result<crate::rest::Features, ConfigError> {
    use crate::rest::Features;
    if s == "none" {
        return Ok(Features::Neither);
    }
    Features::parse(s).map_err(|_| {
        ConfigError::invalid(
            "rest_api_max",
            s,
            "expected resource, attestation, all or none",
        )
    })
}

/// Parses a tee key algorithm name.
pub fn parse_key_algorithm(s: &str) -> Result<KeyAlgorithm, ConfigError> {
    KeyAlgorithm::parse(s).map_err(|e| ConfigError::invalid("tee key algorithm", s, &e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    trust_kernel_cmdline: Option<bool>,
    kbs_url: Option<String>,
    kbs_cert: Option<String>,
    kbs_ca_bundle: Option<String>,
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
    sysfs: Option<String>,
    eventlog_dir: Option<String>,
    rest_api_max: Option<String>,
    #[serde(default)]
    resource: Vec<FileResource>,
    #[serde(default)]
    volume: Vec<FileVolume>,
    init: Option<FileInit>,
}

/// The `[init]` table: settings of the `sealgate init` stage.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileInit {
    mode: Option<String>,
    next_init: Option<String>,
    on_failure: Option<String>,
    modules: Option<Vec<String>>,
    net: Option<bool>,
    ifname: Option<String>,
    ip: Option<String>,
    gateway: Option<String>,
    dns: Option<Vec<String>>,
    net_wait_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResource {
    uri: String,
    path: Option<String>,
}

/// A `[[volume]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVolume {
    name: String,
    device: String,
    resource: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    cipher: Option<String>,
    key_size: Option<u32>,
    sector_size: Option<u32>,
    offset: Option<u64>,
    mount: Option<String>,
    fstype: Option<String>,
    options: Option<String>,
    read_only: Option<bool>,
    root: Option<bool>,
}

impl FileVolume {
    fn resolve(self) -> Result<VolumeSpec, ConfigError> {
        let kind = match self.kind.as_deref().unwrap_or("luks2") {
            "luks2" => VolumeType::Luks2,
            "plain" => VolumeType::Plain(PlainParams {
                cipher: self
                    .cipher
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PLAIN_CIPHER.into()),
                key_bits: self.key_size.unwrap_or(512),
                sector_size: self.sector_size.unwrap_or(512),
                offset_sectors: self.offset.unwrap_or(0),
            }),
            other => {
                return Err(ConfigError::invalid(
                    "volume type",
                    other,
                    "expected luks2 or plain",
                ));
            }
        };
        if kind == VolumeType::Luks2
            && (self.cipher.is_some()
                || self.key_size.is_some()
                || self.sector_size.is_some()
                || self.offset.is_some())
        {
            return Err(ConfigError::invalid(
                "volume",
                &self.name,
                "cipher, key_size, sector_size and offset are for type = \"plain\"; a LUKS2 header states them",
            ));
        }
        let root = self.root.unwrap_or(false);
        let mount = match (self.mount, root) {
            (Some(m), _) => Some(m),
            (None, true) => Some(DEFAULT_ROOT_MOUNT.into()),
            (None, false) => None,
        };
        let v = VolumeSpec {
            name: self.name,
            device: DeviceMatch::parse(&self.device)?,
            resource: Some(ResourceUri::parse(&self.resource).map_err(ConfigError::Uri)?),
            kind,
            mount,
            fstype: self.fstype.unwrap_or_else(|| DEFAULT_VOLUME_FSTYPE.into()),
            options: self.options.unwrap_or_default(),
            read_only: self.read_only.unwrap_or(false),
            root,
        };
        v.validate()?;
        Ok(v)
    }
}

/// Parses the TOML config file.
pub fn parse_file(text: &str) -> Result<Settings, ConfigError> {
    let f: FileConfig =
        toml::from_str(text).map_err(|e| ConfigError::File(TomlError::new(&e, text)))?;
    let mut resources = Vec::new();
    for r in f.resource {
        let uri = ResourceUri::parse(&r.uri).map_err(ConfigError::Uri)?;
        let path = r.path.unwrap_or_else(|| uri.segments().join("/"));
        resources.push(ResourceSpec { uri, path });
    }
    let volumes = f
        .volume
        .into_iter()
        .map(FileVolume::resolve)
        .collect::<Result<Vec<_>, _>>()?;
    check_volumes(&volumes)?;
    let init = f.init.unwrap_or_default();
    Ok(Settings {
        trust_kernel_cmdline: f.trust_kernel_cmdline,
        kbs_url: f.kbs_url,
        kbs_cert: f.kbs_cert.map(KbsCert::File),
        kbs_ca_bundle: f.kbs_ca_bundle,
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
        volumes: if volumes.is_empty() {
            None
        } else {
            Some(volumes)
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
        sysfs: f.sysfs,
        eventlog_dir: f.eventlog_dir,
        rest_api_max: f
            .rest_api_max
            .as_deref()
            .map(parse_rest_api_max)
            .transpose()?,
        init_mode: init.mode.as_deref().map(InitMode::parse).transpose()?,
        next_init: init.next_init,
        on_failure: init
            .on_failure
            .as_deref()
            .map(OnFailure::parse)
            .transpose()?,
        modules: init
            .modules
            .map(|m| m.iter().map(|s| ModuleSpec::parse(s)).collect())
            .transpose()?,
        module_options: None,
        net: init.net,
        ifname: init.ifname,
        ip: init.ip.as_deref().map(Ipv4Cidr::parse).transpose()?,
        gateway: init
            .gateway
            .as_deref()
            .map(|g| parse_ipv4("gateway", g))
            .transpose()?,
        dns: init
            .dns
            .map(|d| d.iter().map(|a| parse_ipv4("dns", a)).collect())
            .transpose()?,
        net_wait_secs: init.net_wait_secs,
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

/// The setting a kernel command line parameter (`sealgate.*`, `agent.aa_kbc_params`, or
/// `MODULE.PARAM`) sets; `None` for everything else (the kernel's own, unknown `sealgate.*`).
pub fn cmdline_key(param: &str) -> Option<Key> {
    Some(match param {
        "agent.aa_kbc_params" | "sealgate.kbs" => Key::KbsUrl,
        "sealgate.kbs_cert" => Key::KbsCert,
        "sealgate.kbs_ca_bundle" => Key::KbsCaBundle,
        "sealgate.config" => Key::ConfigFile,
        "sealgate.tee" => Key::Tee,
        "sealgate.key" => Key::KeyAlgorithm,
        "sealgate.resource" => Key::Resources,
        "sealgate.sealed_dir" => Key::SealedDir,
        "sealgate.owner" => Key::Owner,
        "sealgate.mode" => Key::InitMode,
        "sealgate.file_mode" => Key::Mode,
        "sealgate.tmpfs_size" => Key::TmpfsSize,
        "sealgate.sealed_secrets" => Key::SealedSecretsDir,
        "sealgate.deadline" => Key::DeadlineSecs,
        "sealgate.log" => Key::LogLevel,
        "sealgate.init_data" => Key::InitData,
        "sealgate.configfs_tsm" => Key::ConfigfsTsm,
        "sealgate.next_init" => Key::NextInit,
        "sealgate.on_failure" => Key::OnFailure,
        "sealgate.modules" => Key::Modules,
        "sealgate.net" => Key::Net,
        "sealgate.ifname" => Key::Ifname,
        "sealgate.ip" => Key::Ip,
        "sealgate.gw" => Key::Gateway,
        "sealgate.dns" => Key::Dns,
        "sealgate.net_wait" => Key::NetWaitSecs,
        k if k.starts_with("sealgate.") || k.starts_with("agent.") => return None,
        k => match k.split_once('.') {
            Some((module, param)) if !module.is_empty() && !param.is_empty() => Key::ModuleOptions,
            _ => return None,
        },
    })
}

/// Reads sealgate's settings from a kernel command line, and notes about parameters it
/// ignored (for the log). The command line is unmeasured: a parameter whose setting it
/// may not hold ([`trust::may_set`]; `trusted` is the image's `trust_kernel_cmdline`) is
/// ignored with a note naming it, before its value is parsed. `sealgate.config=` never
/// selects the config file.
pub fn parse_cmdline(cmdline: &str, trusted: bool) -> Result<(Settings, Vec<String>), ConfigError> {
    let mut s = Settings::default();
    let mut notes = Vec::new();
    let mut resources = Vec::new();
    let mut module_options = Vec::new();
    for param in kernel_params(cmdline) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        match cmdline_key(key) {
            Some(k) if !trust::may_set(k, Source::KernelCmdline, trusted) => {
                notes.push(format!(
                    "ignoring {}= on the kernel command line: an unmeasured source cannot set {} ({}; \
                     an image whose command line is measured can set trust_kernel_cmdline = true)",
                    Escaped::new(key, 64),
                    k.name(),
                    k.rule().why
                ));
                continue;
            }
            _ => {}
        }
        match key {
            "agent.aa_kbc_params" => match value.split_once("::") {
                Some(("cc_kbc", url)) if !url.is_empty() => s.kbs_url = Some(url.to_string()),
                _ => notes.push(format!(
                    "ignoring agent.aa_kbc_params={}: sealgate only speaks cc_kbc::<url>",
                    Escaped::new(value, 128)
                )),
            },
            "sealgate.kbs" => s.kbs_url = Some(value.to_string()),
            "sealgate.kbs_cert" => s.kbs_cert = Some(KbsCert::File(value.to_string())),
            "sealgate.kbs_ca_bundle" => s.kbs_ca_bundle = Some(value.to_string()),
            "sealgate.tee" => s.tee = Some(TeeChoice::parse(value)?),
            "sealgate.key" => s.key_algorithm = Some(parse_key_algorithm(value)?),
            "sealgate.resource" => resources.push(ResourceSpec::parse(value)?),
            "sealgate.sealed_dir" => s.sealed_dir = Some(value.to_string()),
            "sealgate.owner" => s.owner = Some(parse_owner(value)?),
            "sealgate.mode" => s.init_mode = Some(InitMode::parse(value)?),
            "sealgate.file_mode" => s.mode = Some(parse_mode(value)?),
            "sealgate.tmpfs_size" => s.tmpfs_size = Some(parse_size(value)?),
            "sealgate.sealed_secrets" => s.sealed_secrets_dir = Some(value.to_string()),
            "sealgate.deadline" => s.deadline_secs = Some(parse_u64(key, value)?),
            "sealgate.log" => s.log_level = Some(value.to_string()),
            "sealgate.init_data" => s.init_data = Some(value.to_string()),
            "sealgate.configfs_tsm" => s.configfs_tsm = Some(value.to_string()),
            // Reached only if the table allowed it, which it never does.
            "sealgate.config" => {}
            "sealgate.next_init" => s.next_init = Some(value.to_string()),
            "sealgate.on_failure" => s.on_failure = Some(OnFailure::parse(value)?),
            "sealgate.modules" => {
                s.modules = Some(
                    value
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(ModuleSpec::parse)
                        .collect::<Result<_, _>>()?,
                )
            }
            "sealgate.net" => s.net = Some(parse_bool(key, value)?),
            "sealgate.ifname" => s.ifname = Some(value.to_string()),
            "sealgate.ip" => s.ip = Some(Ipv4Cidr::parse(value)?),
            "sealgate.gw" => s.gateway = Some(parse_ipv4(key, value)?),
            "sealgate.dns" => s.dns = Some(parse_ipv4_list(key, value)?),
            "sealgate.net_wait" => s.net_wait_secs = Some(parse_u64(key, value)?),
            k if k.starts_with("sealgate.") => notes.push(format!(
                "ignoring unknown kernel parameter {}",
                Escaped::new(k, 64)
            )),
            // `module.param=value`: a module parameter, applied when that module is
            // loaded (what modprobe does with the kernel command line).
            k => {
                if let Some((module, param)) = k.split_once('.')
                    && !module.is_empty()
                    && !param.is_empty()
                    && module != "agent"
                {
                    module_options.push((module_name(module), format!("{param}={value}")));
                }
            }
        }
    }
    if !resources.is_empty() {
        s.resources = Some(resources);
    }
    if !module_options.is_empty() {
        s.module_options = Some(module_options);
    }
    Ok((s, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_command_line_as_kata_passes_it() {
        let line = "console=ttyS0 quiet agent.aa_kbc_params=cc_kbc::http://10.0.2.2:8080 \"sealgate.resource=kbs:///default/key/disk=disk.key\" sealgate.resource=kbs:///a/b/c sealgate.tee=sample sealgate.bogus=1 -- sealgate.tee=snp\n";
        let (s, notes) = parse_cmdline(line, true).unwrap();
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
        assert_eq!(notes, ["ignoring unknown kernel parameter sealgate.bogus"]);
        assert_eq!(kernel_params("a=\"b c\" d"), ["a=b c", "d"]);
        let (_, notes) = parse_cmdline("agent.aa_kbc_params=offline_fs_kbc::null", true).unwrap();
        assert!(notes[0].contains("only speaks cc_kbc"));
        assert!(parse_cmdline("sealgate.tee=SNP", true).is_err());
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
        let (cmdline, _) = parse_cmdline(
            "sealgate.kbs=http://other sealgate.sealed_dir=/s sealgate.resource=kbs:///r/t/two",
            true,
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
        assert!(
            e.starts_with("line 2, column 1: unknown field `…`"),
            "keys are not quoted either: {e}"
        );
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

    #[test]
    fn init_keys_from_the_kernel_command_line() {
        let line = "console=ttyS0 sealgate.mode=report sealgate.file_mode=0440 sealgate.next_init=/bin/app \
                    sealgate.on_failure=continue sealgate.modules=virtio_net,tsm-sim \
                    tsm-sim.provider=sev_guest virtio_net.napi_tx=1 agent.log=debug \
                    sealgate.ip=192.168.7.2/30 sealgate.gw=192.168.7.1 sealgate.dns=1.1.1.1,9.9.9.9 \
                    sealgate.ifname=ens3 sealgate.net_wait=2 quiet";
        let (s, notes) = parse_cmdline(line, true).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(s.init_mode, Some(InitMode::Report));
        assert_eq!(
            s.mode,
            Some(0o440),
            "sealgate.file_mode= is the mode of the written files"
        );
        let i = s.resolve_init().unwrap();
        assert_eq!(i.mode, InitMode::Report);
        assert_eq!(i.next_init.as_deref(), Some("/bin/app"));
        assert_eq!(i.on_failure, OnFailure::Continue);
        let m = i.modules.unwrap();
        assert_eq!(
            (m[0].name(), m[1].name(), m[1].module.as_str()),
            ("virtio_net".into(), "tsm_sim".into(), "tsm-sim")
        );
        assert_eq!(
            i.module_options,
            [
                ("tsm_sim".to_string(), "provider=sev_guest".to_string()),
                ("virtio_net".to_string(), "napi_tx=1".to_string())
            ],
            "agent.* is kata's, not a module's"
        );
        let n = i.net.unwrap();
        assert_eq!(n.ifname, "ens3");
        assert_eq!(n.address.unwrap().to_string(), "192.168.7.2/30");
        assert_eq!(
            n.address.unwrap().broadcast(),
            Ipv4Addr::new(192, 168, 7, 3)
        );
        assert_eq!(n.gateway, Some(Ipv4Addr::new(192, 168, 7, 1)));
        assert_eq!(
            n.dns,
            [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(9, 9, 9, 9)]
        );
        assert_eq!((n.defaults, n.wait_secs), (false, 2));

        for bad in [
            "sealgate.mode=reprot",
            "sealgate.on_failure=reboot",
            "sealgate.ip=10.0.2.15",
            "sealgate.ip=10.0.2.15/33",
            "sealgate.gw=10.0.2",
            "sealgate.dns=10.0.2.3,x",
            "sealgate.net=maybe",
            "sealgate.modules=a=b",
        ] {
            assert!(parse_cmdline(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn init_defaults_are_fail_closed_with_qemu_user_networking() {
        let i = Settings::default().resolve_init().unwrap();
        assert_eq!(i.mode, InitMode::Exec);
        assert_eq!(i.on_failure, OnFailure::PowerOff);
        assert_eq!((i.next_init, i.modules), (None, None));
        let n = i.net.unwrap();
        assert!(n.defaults);
        assert_eq!(n.ifname, "eth0");
        assert_eq!(n.address.unwrap().to_string(), "10.0.2.15/24");
        assert_eq!(n.gateway, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(n.dns, [Ipv4Addr::new(10, 0, 2, 3)]);
        assert_eq!(n.wait_secs, 5);

        // Any addressing setting turns the defaults off entirely.
        let (s, _) = parse_cmdline("sealgate.dns=10.0.2.3", true).unwrap();
        let n = s.resolve_init().unwrap().net.unwrap();
        assert_eq!((n.defaults, n.address, n.gateway), (false, None, None));
        let (s, _) = parse_cmdline("sealgate.net=off sealgate.ip=10.0.0.2/8", true).unwrap();
        assert_eq!(s.resolve_init().unwrap().net, None);
        let (s, _) = parse_cmdline("sealgate.gw=10.0.0.1", true).unwrap();
        assert!(matches!(s.resolve_init(), Err(ConfigError::Missing(_))));
        let (s, _) = parse_cmdline("sealgate.ifname=a/b", true).unwrap();
        assert!(s.resolve_init().is_err());
    }

    #[test]
    fn init_table_in_the_config_file_and_precedence() {
        let file = parse_file(
            "kbs_url = \"http://kbs\"\nmode = \"0400\"\n[init]\nmode = \"exec\"\nnext_init = \"/sbin/app\"\n\
             on_failure = \"halt\"\nmodules = [\"virtio_net\", \"/lib/extra/tsm_sim.ko.xz provider=tdx_guest debug\"]\n\
             ip = \"10.1.0.5/16\"\ngateway = \"10.1.0.1\"\ndns = [\"10.1.0.1\"]\nnet_wait_secs = 9\n",
        )
        .unwrap();
        let (cmdline, _) = parse_cmdline(
            "sealgate.mode=report sealgate.on_failure=continue sealgate.modules=dummy sealgate.ip=10.0.2.15/24",
            true,
        )
        .unwrap();
        let i = file.clone().or(&cmdline).resolve_init().unwrap();
        assert_eq!(
            i.mode,
            InitMode::Exec,
            "the file outranks the kernel command line"
        );
        assert_eq!(i.on_failure, OnFailure::Halt);
        let m = i.modules.unwrap();
        assert_eq!(m.len(), 2, "module lists are not merged");
        assert!(m[1].is_path());
        assert_eq!(m[1].name(), "tsm_sim");
        assert_eq!(m[1].params, ["provider=tdx_guest", "debug"]);
        let n = i.net.unwrap();
        assert_eq!(n.address.unwrap().to_string(), "10.1.0.5/16");
        assert_eq!(n.wait_secs, 9);
        let flags = Settings {
            init_mode: Some(InitMode::Report),
            net: Some(false),
            ..Default::default()
        };
        let i = flags.or(&file).or(&cmdline).resolve_init().unwrap();
        assert_eq!((i.mode, i.net), (InitMode::Report, None));

        for bad in [
            "[init]\nmode = \"0400\"\n",
            "[init]\nbogus = 1\n",
            "[init]\nip = \"10.0.0.1\"\n",
            "[init]\nmodules = [\"\"]\n",
        ] {
            assert!(parse_file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn module_names_and_list_file() {
        assert_eq!(
            module_name("kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz"),
            "sev_guest"
        );
        assert_eq!(module_name("tsm.ko"), "tsm");
        assert_eq!(module_name("net_failover"), "net_failover");
        let m = parse_modules_file(
            "# load order\nvirtio_net\n\n  tsm_sim provider=sev_guest # simulated\n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].params, ["provider=sev_guest"]);
        assert!(!m[1].is_path());
        assert_eq!(
            Ipv4Cidr::parse("10.0.2.15/0").unwrap().broadcast(),
            Ipv4Addr::BROADCAST
        );
        assert_eq!(
            Ipv4Cidr::parse("10.0.2.15/32").unwrap().broadcast(),
            Ipv4Addr::new(10, 0, 2, 15)
        );
    }

    #[test]
    fn volumes_from_the_config_file() {
        let s = parse_file(
            r#"
[[volume]]
name = "data"
device = "uuid=16DCCB90-64f0-4482-affe-c0ead93bc0f5"
resource = "kbs:///default/disk/pass"
mount = "/mnt/data"
options = "errors=remount-ro"
read_only = true

[[volume]]
name = "scratch"
type = "plain"
device = "/dev/vdc"
resource = "kbs:///default/disk/raw"
key_size = 256
sector_size = 4096
offset = 8

[[volume]]
name = "root"
device = "/dev/vdd"
resource = "kbs:///default/disk/root"
root = true
"#,
        )
        .unwrap();
        let v = s.volumes.unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].name, "data");
        assert_eq!(
            v[0].device,
            DeviceMatch::LuksUuid("16dccb90-64f0-4482-affe-c0ead93bc0f5".into())
        );
        assert_eq!(
            v[0].resource.as_ref().map(ToString::to_string).as_deref(),
            Some("kbs:///default/disk/pass")
        );
        assert_eq!(v[0].kind, VolumeType::Luks2);
        assert_eq!(v[0].mount.as_deref(), Some("/mnt/data"));
        assert_eq!(
            (v[0].fstype.as_str(), v[0].options.as_str()),
            ("ext4", "errors=remount-ro")
        );
        assert!(v[0].read_only && !v[0].root);
        assert_eq!(
            v[1].kind,
            VolumeType::Plain(PlainParams {
                cipher: "aes-xts-plain64".into(),
                key_bits: 256,
                sector_size: 4096,
                offset_sectors: 8,
            })
        );
        assert_eq!(v[1].mount, None);
        assert!(v[2].root);
        assert_eq!(v[2].mount.as_deref(), Some(DEFAULT_ROOT_MOUNT));
        // It resolves into the run's configuration.
        let cfg = Settings {
            kbs_url: Some("http://kbs".into()),
            volumes: Some(v),
            ..Settings::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.volumes.len(), 3);
    }

    #[test]
    fn bad_volumes_are_refused_by_name() {
        let vol = |extra: &str| {
            parse_file(&format!(
                "[[volume]]\nname = \"v\"\ndevice = \"/dev/vdb\"\nresource = \"kbs:///a/b/c\"\n{extra}"
            ))
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        for (extra, needle) in [
            ("type = \"luks1\"", "expected luks2 or plain"),
            ("cipher = \"aes-xts-plain64\"", "are for type = \"plain\""),
            (
                "type = \"plain\"\ncipher = \"cipher_null-ecb\"",
                "expected aes-xts-plain64",
            ),
            ("type = \"plain\"\nkey_size = 128", "expected 256 or 512"),
            (
                "type = \"plain\"\nsector_size = 1024",
                "expected 512 or 4096",
            ),
            (
                "type = \"plain\"\nsector_size = 4096\noffset = 3",
                "multiple of the sector size",
            ),
            ("mount = \"relative\"", "absolute path"),
            ("mount = \"/\"", "absolute path"),
            ("mount = \"/mnt/../etc\"", "absolute path"),
            ("fstype = \"ext4 -o x\"", "expected e.g. ext4"),
            ("bogus = 1", "unknown field"),
        ] {
            let e = vol(extra);
            assert!(e.contains(needle), "{extra}: {e}");
        }
        for (device, needle) in [
            ("vdb", "absolute path"),
            ("/dev/../etc/shadow", "absolute path"),
            ("uuid=1234", "uuid=xxxxxxxx"),
        ] {
            let e = parse_file(&format!(
                "[[volume]]\nname = \"v\"\ndevice = \"{device}\"\nresource = \"kbs:///a/b/c\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(needle), "{device}: {e}");
        }
        let e = parse_file(
            "[[volume]]\nname = \"v\"\ntype = \"plain\"\ndevice = \"uuid=16dccb90-64f0-4482-affe-c0ead93bc0f5\"\nresource = \"kbs:///a/b/c\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no header to find it by"), "{e}");
        for name in ["", "a/b", "..", "control", "x y"] {
            let e = parse_file(&format!(
                "[[volume]]\nname = \"{name}\"\ndevice = \"/dev/vdb\"\nresource = \"kbs:///a/b/c\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("volume name"), "{name}: {e}");
        }
        let two = |a: &str, b: &str| {
            parse_file(&format!(
                "[[volume]]\nname = \"a\"\ndevice = \"/dev/vdb\"\nresource = \"kbs:///a/b/c\"\n{a}\n\
                 [[volume]]\nname = \"b\"\ndevice = \"/dev/vdc\"\nresource = \"kbs:///a/b/d\"\n{b}\n"
            ))
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        assert!(two("root = true", "root = true").contains("at most one volume"));
        assert!(two("mount = \"/m\"", "mount = \"/m\"").contains("two volumes mounted there"));
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    fn settings(url: &str, cert: Option<KbsCert>, bundle: Option<&str>) -> Settings {
        Settings {
            kbs_url: Some(url.into()),
            kbs_cert: cert,
            kbs_ca_bundle: bundle.map(String::from),
            ..Settings::default()
        }
    }

    #[test]
    fn a_configured_certificate_refuses_plain_http() {
        for (cert, bundle, names) in [
            (
                Some(KbsCert::File("/etc/kbs.pem".into())),
                None,
                "kbs_cert file /etc/kbs.pem",
            ),
            (
                Some(KbsCert::InitData("-----BEGIN CERTIFICATE-----".into())),
                None,
                "init-data's KBS certificate",
            ),
            (None, Some("/etc/ca.pem"), "kbs_ca_bundle file /etc/ca.pem"),
        ] {
            for url in ["http://10.0.2.2:8080", "HTTP://kbs"] {
                let e = settings(url, cert.clone(), bundle).resolve().unwrap_err();
                assert!(matches!(e, ConfigError::PlainHttpWithCert { .. }), "{e:?}");
                let text = e.to_string();
                assert!(text.contains("is plain HTTP"), "{text}");
                assert!(text.contains(names), "{text}");
                assert!(text.contains("use https://"), "{text}");
                assert!(!text.contains("BEGIN"), "never the certificate: {text}");
            }
        }
    }

    #[test]
    fn https_needs_a_trust_anchor_and_takes_either() {
        let e = settings("https://kbs:8443", None, None)
            .resolve()
            .unwrap_err();
        assert!(matches!(e, ConfigError::HttpsWithoutTrust { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("no KBS certificate is configured"), "{text}");
        assert!(text.contains("system roots are never used"), "{text}");
        let c = settings(
            "https://kbs:8443",
            Some(KbsCert::File("/c.pem".into())),
            None,
        )
        .resolve()
        .unwrap();
        assert_eq!(c.kbs_cert, Some(KbsCert::File("/c.pem".into())));
        let c = settings("HTTPS://kbs", None, Some("/ca.pem"))
            .resolve()
            .unwrap();
        assert_eq!(c.kbs_ca_bundle.as_deref(), Some("/ca.pem"));
        // Plain HTTP without any certificate stays as it was.
        assert!(settings("http://kbs", None, None).resolve().is_ok());
    }

    #[test]
    fn config_file_and_trusted_command_line_name_files() {
        let s = parse_file("kbs_url = \"https://kbs\"\nkbs_cert = \"/etc/sealgate/kbs.pem\"\nkbs_ca_bundle = \"/etc/ssl/ca.pem\"\n").unwrap();
        assert_eq!(
            s.kbs_cert,
            Some(KbsCert::File("/etc/sealgate/kbs.pem".into()))
        );
        assert_eq!(s.kbs_ca_bundle.as_deref(), Some("/etc/ssl/ca.pem"));
        let line = "sealgate.kbs_cert=/k.pem sealgate.kbs_ca_bundle=/ca.pem";
        let (s, notes) = parse_cmdline(line, true).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(s.kbs_cert, Some(KbsCert::File("/k.pem".into())));
        assert_eq!(s.kbs_ca_bundle.as_deref(), Some("/ca.pem"));
        let (s, notes) = parse_cmdline(line, false).unwrap();
        assert_eq!((s.kbs_cert, s.kbs_ca_bundle), (None, None));
        assert_eq!(notes.len(), 2, "{notes:?}");
    }
}
