//! Who may set what: the trust table of every setting, enforced in one place.
//!
//! Every setting comes from a [`Source`]. Measured sources are part of what the TEE
//! measured at launch or checked before use: the image's own config file
//! (`/etc/sealgate/config.toml`, or `--config`), the flags of an invocation the image
//! itself makes (a unit's `ExecStart=`, never the kernel's arguments to PID 1), and
//! init-data once it matched HOST_DATA / MRCONFIGID. Unmeasured sources are what the host
//! controls: the kernel command line, PID 1's argv, disks other than a verified init-data,
//! and the environment. Unmeasured sources may set only what cannot weaken
//! confidentiality or integrity: network bring-up, the log level, module parameters, and
//! the KBS URL as the lowest fallback (kata passes it as `agent.aa_kbc_params`).
//!
//! [`RULES`] is the table (the README's security model prints it); [`may_set`] answers
//! "can this source set this key?", [`filter`] removes from a layer of [`Settings`] what
//! its source may not set and names each removed key, and the kernel command line's
//! parser asks [`may_set`] before it parses a value ([`crate::config::parse_cmdline`]).
//!
//! An image whose kernel command line is itself measured (SNP with kernel hashes, TDX
//! with a policy over the RTMRs) may opt in with `trust_kernel_cmdline = true` in its
//! config file: the command line then ranks as a measured source, except that it can
//! never choose the config file (that is where the opt-in lives).

use crate::config::Settings;
use alloc::vec::Vec;
use core::fmt;

/// Where a setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The image's config file (`/etc/sealgate/config.toml`, or `--config`): measured.
    ConfigFile,
    /// The flags of an invocation that the image makes (not PID 1's argv): measured.
    Flags,
    /// The `sealgate.toml` (and `aa.toml`/`cdh.toml` KBS URL) of init-data that matched
    /// HOST_DATA / MRCONFIGID: measured.
    InitData,
    /// The kernel command line: unmeasured (unless the image trusts it).
    KernelCmdline,
    /// The kernel's arguments to PID 1: unmeasured, never parsed (they are the next
    /// init's).
    Pid1Argv,
    /// The environment (`SEALGATE_LOG`): unmeasured.
    Environment,
    /// A disk other than a verified init-data: unmeasured.
    HostDisk,
}

impl Source {
    /// Whether the TEE measured (or sealgate verified) this source.
    pub fn measured(self) -> bool {
        matches!(self, Source::ConfigFile | Source::Flags | Source::InitData)
    }

    /// How a warning names it.
    pub fn name(self) -> &'static str {
        match self {
            Source::ConfigFile => "the config file",
            Source::Flags => "the command-line flags",
            Source::InitData => "init-data's sealgate.toml",
            Source::KernelCmdline => "the kernel command line",
            Source::Pid1Argv => "PID 1's arguments",
            Source::Environment => "the environment",
            Source::HostDisk => "an unverified disk",
        }
    }
}

/// Every setting (the config file's key names; [`Key::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Key {
    /// Which config file is read (`--config`; `sealgate.config=` is always ignored).
    ConfigFile,
    /// The opt-in that makes the kernel command line measured.
    TrustKernelCmdline,
    KbsUrl,
    KbsCert,
    KbsCaBundle,
    Tee,
    KeyAlgorithm,
    SealedDir,
    Owner,
    Mode,
    TmpfsSize,
    MountTmpfs,
    AllowNonTmpfs,
    Resources,
    Volumes,
    SealedSecretsDir,
    SealedSecretKeysDir,
    AllowUnsigned,
    DeadlineSecs,
    ConnectTimeoutMs,
    IoTimeoutMs,
    LogLevel,
    InitData,
    ConfigfsTsm,
    Sysfs,
    EventlogDir,
    RestApiMax,
    InitMode,
    NextInit,
    OnFailure,
    Modules,
    ModuleOptions,
    Net,
    Ifname,
    Ip,
    Gateway,
    Dns,
    NetWaitSecs,
}

impl Key {
    /// The key's name as the config file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Key::ConfigFile => "config file (--config)",
            Key::TrustKernelCmdline => "trust_kernel_cmdline",
            Key::KbsUrl => "kbs_url",
            Key::KbsCert => "kbs_cert",
            Key::KbsCaBundle => "kbs_ca_bundle",
            Key::Tee => "tee",
            Key::KeyAlgorithm => "tee_key_algorithm",
            Key::SealedDir => "sealed_dir",
            Key::Owner => "owner",
            Key::Mode => "mode",
            Key::TmpfsSize => "tmpfs_size",
            Key::MountTmpfs => "mount_tmpfs",
            Key::AllowNonTmpfs => "allow_non_tmpfs",
            Key::Resources => "resource",
            Key::Volumes => "volume",
            Key::SealedSecretsDir => "sealed_secrets_dir",
            Key::SealedSecretKeysDir => "sealed_secret_keys_dir",
            Key::AllowUnsigned => "allow_unsigned_sealed_secrets",
            Key::DeadlineSecs => "deadline_secs",
            Key::ConnectTimeoutMs => "connect_timeout_ms",
            Key::IoTimeoutMs => "io_timeout_ms",
            Key::LogLevel => "log_level",
            Key::InitData => "init_data",
            Key::ConfigfsTsm => "configfs_tsm",
            Key::Sysfs => "sysfs",
            Key::EventlogDir => "eventlog_dir",
            Key::RestApiMax => "rest_api_max",
            Key::InitMode => "init.mode",
            Key::NextInit => "init.next_init",
            Key::OnFailure => "init.on_failure",
            Key::Modules => "init.modules",
            Key::ModuleOptions => "module parameters (MODULE.PARAM=VALUE)",
            Key::Net => "init.net",
            Key::Ifname => "init.ifname",
            Key::Ip => "init.ip",
            Key::Gateway => "init.gateway",
            Key::Dns => "init.dns",
            Key::NetWaitSecs => "init.net_wait_secs",
        }
    }

    /// This key's row of [`RULES`].
    pub fn rule(self) -> &'static Rule {
        RULES.iter().find(|r| r.key == self).unwrap_or(&RULES[0])
    }
}

/// What an unmeasured source may do with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmeasured {
    /// Never: only a measured source sets it.
    Never,
    /// Yes: it cannot weaken confidentiality or integrity.
    Allowed,
    /// Yes, below every measured source (the merge puts unmeasured layers last).
    LowestFallback,
}

/// One row of the trust table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The setting.
    pub key: Key,
    /// Whether the kernel command line (untrusted), PID 1's argv, host disks and the
    /// environment may set it. PID 1's argv and host disks set nothing at all, and the
    /// environment only the log level: see [`may_set`].
    pub unmeasured: Unmeasured,
    /// Whether init-data's `sealgate.toml` may set it. Init-data is measured, but it
    /// cannot choose how it is itself found and checked, and the init stage loads modules
    /// and brings the network up before init-data (possibly on a disk) can be read.
    pub init_data: bool,
    /// Why.
    pub why: &'static str,
}

const fn rule(key: Key, unmeasured: Unmeasured, init_data: bool, why: &'static str) -> Rule {
    Rule {
        key,
        unmeasured,
        init_data,
        why,
    }
}

use Unmeasured::{Allowed, LowestFallback, Never};

/// The trust table: one row per setting.
pub const RULES: &[Rule] = &[
    rule(
        Key::ConfigFile,
        Never,
        false,
        "a host-chosen file would outrank init-data",
    ),
    rule(
        Key::TrustKernelCmdline,
        Never,
        false,
        "only the image can say that its command line is measured",
    ),
    rule(
        Key::KbsUrl,
        LowestFallback,
        true,
        "kata passes it as agent.aa_kbc_params; the JWE still binds secrets to this TEE",
    ),
    rule(
        Key::KbsCert,
        Never,
        true,
        "the TLS trust anchor: whoever sets it can impersonate the KBS",
    ),
    rule(
        Key::KbsCaBundle,
        Never,
        true,
        "TLS trust anchors: whoever sets them can impersonate the KBS",
    ),
    rule(
        Key::Tee,
        Never,
        false,
        "tee=sample would skip the init-data check",
    ),
    rule(
        Key::KeyAlgorithm,
        Never,
        true,
        "the image chooses its key strength",
    ),
    rule(
        Key::SealedDir,
        Never,
        true,
        "decides where secrets are written",
    ),
    rule(Key::Owner, Never, true, "would hand secrets to another uid"),
    rule(Key::Mode, Never, true, "would hand secrets to a group"),
    rule(
        Key::TmpfsSize,
        Never,
        true,
        "the sealed tmpfs is the image's",
    ),
    rule(
        Key::MountTmpfs,
        Never,
        true,
        "could leave secrets on whatever is mounted there",
    ),
    rule(Key::AllowNonTmpfs, Never, true, "an insecure flag"),
    rule(
        Key::Resources,
        Never,
        true,
        "decides which secret lands at which path",
    ),
    rule(
        Key::Volumes,
        Never,
        true,
        "decides which disk is opened with which key, mounted where, and what becomes the root",
    ),
    rule(
        Key::SealedSecretsDir,
        Never,
        true,
        "decides which sealed secrets are unsealed where",
    ),
    rule(
        Key::SealedSecretKeysDir,
        Never,
        true,
        "decides which keys sealed secrets are verified with",
    ),
    rule(Key::AllowUnsigned, Never, true, "an insecure flag"),
    rule(
        Key::DeadlineSecs,
        Never,
        true,
        "the image bounds its boot time",
    ),
    rule(
        Key::ConnectTimeoutMs,
        Never,
        true,
        "the image bounds its boot time",
    ),
    rule(
        Key::IoTimeoutMs,
        Never,
        true,
        "the image bounds its boot time",
    ),
    rule(
        Key::LogLevel,
        Allowed,
        true,
        "no secret reaches a log line at any level",
    ),
    rule(
        Key::InitData,
        Never,
        false,
        "the host would choose what is checked and sent",
    ),
    rule(
        Key::ConfigfsTsm,
        Never,
        false,
        "the host would choose where evidence comes from",
    ),
    rule(
        Key::Sysfs,
        Never,
        false,
        "the host would choose the event log sent and the RTMRs extended",
    ),
    rule(
        Key::EventlogDir,
        Never,
        false,
        "the host would choose the event log sent and where records are written",
    ),
    rule(
        Key::RestApiMax,
        Never,
        true,
        "attestation and all give every process in the guest evidence over its own report \
         data and the KBS token with the TEE key",
    ),
    rule(
        Key::InitMode,
        Never,
        true,
        "report mode prints digests of the secrets on the host's console",
    ),
    rule(
        Key::NextInit,
        Never,
        true,
        "picks what runs next with the secrets",
    ),
    rule(
        Key::OnFailure,
        Never,
        true,
        "on_failure=continue fails open",
    ),
    rule(
        Key::Modules,
        Never,
        false,
        "the image chooses its kernel code",
    ),
    rule(
        Key::ModuleOptions,
        Allowed,
        false,
        "parameters of the image's own modules, as modprobe applies them",
    ),
    rule(
        Key::Net,
        Allowed,
        false,
        "network bring-up: the host controls the network anyway",
    ),
    rule(
        Key::Ifname,
        Allowed,
        false,
        "network bring-up: the host controls the network anyway",
    ),
    rule(
        Key::Ip,
        Allowed,
        false,
        "network bring-up: the host controls the network anyway",
    ),
    rule(
        Key::Gateway,
        Allowed,
        false,
        "network bring-up: the host controls the network anyway",
    ),
    rule(
        Key::Dns,
        Allowed,
        false,
        "network bring-up: the host controls the network anyway",
    ),
    rule(
        Key::NetWaitSecs,
        Allowed,
        false,
        "network bring-up: the host controls the network anyway",
    ),
];

/// Whether `source` may set `key`. `trust_cmdline` is the image's
/// `trust_kernel_cmdline` opt-in: the kernel command line then ranks as measured, except
/// for the config file's location and the opt-in itself.
pub fn may_set(key: Key, source: Source, trust_cmdline: bool) -> bool {
    let rule = key.rule();
    match source {
        Source::ConfigFile => key != Key::ConfigFile,
        Source::Flags => key != Key::TrustKernelCmdline,
        Source::InitData => rule.init_data,
        Source::KernelCmdline if trust_cmdline => {
            !matches!(key, Key::ConfigFile | Key::TrustKernelCmdline)
        }
        Source::KernelCmdline => rule.unmeasured != Never,
        Source::Environment => key == Key::LogLevel,
        Source::Pid1Argv | Source::HostDisk => false,
    }
}

/// A setting that a source tried to set and may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// The setting.
    pub key: Key,
    /// The source.
    pub source: Source,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.key.rule();
        if self.source.measured() {
            write!(
                f,
                "ignoring {} from {}: it cannot be set there ({})",
                self.key.name(),
                self.source.name(),
                rule.why
            )
        } else {
            write!(
                f,
                "ignoring {} from {}: an unmeasured source cannot set it ({}; an image whose \
                 command line is measured can set trust_kernel_cmdline = true)",
                self.key.name(),
                self.source.name(),
                rule.why
            )
        }
    }
}

macro_rules! settings_keys {
    ($m:ident, $s:expr, $($key:ident => $field:ident),* $(,)?) => {{
        $( $m!($s, Key::$key, $field); )*
    }};
}

/// Applies `$m!(settings, Key, field)` to every field of [`Settings`].
macro_rules! each_field {
    ($m:ident, $s:expr) => {
        settings_keys!(
            $m, $s,
            TrustKernelCmdline => trust_kernel_cmdline,
            KbsUrl => kbs_url,
            KbsCert => kbs_cert,
            KbsCaBundle => kbs_ca_bundle,
            Tee => tee,
            KeyAlgorithm => key_algorithm,
            SealedDir => sealed_dir,
            Owner => owner,
            Mode => mode,
            TmpfsSize => tmpfs_size,
            MountTmpfs => mount_tmpfs,
            AllowNonTmpfs => allow_non_tmpfs,
            Resources => resources,
            Volumes => volumes,
            SealedSecretsDir => sealed_secrets_dir,
            SealedSecretKeysDir => sealed_secret_keys_dir,
            AllowUnsigned => allow_unsigned,
            DeadlineSecs => deadline_secs,
            ConnectTimeoutMs => connect_timeout_ms,
            IoTimeoutMs => io_timeout_ms,
            LogLevel => log_level,
            InitData => init_data,
            ConfigfsTsm => configfs_tsm,
            Sysfs => sysfs,
            EventlogDir => eventlog_dir,
            RestApiMax => rest_api_max,
            InitMode => init_mode,
            NextInit => next_init,
            OnFailure => on_failure,
            Modules => modules,
            ModuleOptions => module_options,
            Net => net,
            Ifname => ifname,
            Ip => ip,
            Gateway => gateway,
            Dns => dns,
            NetWaitSecs => net_wait_secs,
        )
    };
}

/// Removes from `settings` every key that `source` may not set; returns what it removed.
/// The one place where a layer is cut down to what its source may hold.
pub fn filter(
    mut settings: Settings,
    source: Source,
    trust_cmdline: bool,
) -> (Settings, Vec<Ignored>) {
    let mut ignored = Vec::new();
    macro_rules! check {
        ($s:expr, $key:expr, $field:ident) => {
            if $s.$field.is_some() && !may_set($key, source, trust_cmdline) {
                $s.$field = None;
                ignored.push(Ignored { key: $key, source });
            }
        };
    }
    each_field!(check, settings);
    (settings, ignored)
}

/// The keys that `settings` sets (in [`Settings`] order).
pub fn keys_set(settings: &Settings) -> Vec<Key> {
    let mut keys = Vec::new();
    macro_rules! push {
        ($s:expr, $key:expr, $field:ident) => {
            if $s.$field.is_some() {
                keys.push($key);
            }
        };
    }
    each_field!(push, settings);
    keys
}

/// One setting of the upstream guest components' config files, which the server
/// (`sealgate serve`, and sealgate started as `attestation-agent` or
/// `confidential-data-hub`) reads, and the only source it accepts it from.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamRule {
    /// `aa.toml`, `cdh.toml` or the argument.
    pub file: &'static str,
    /// The key.
    pub key: &'static str,
    /// Where it counts from (always a measured source).
    pub source: &'static str,
    /// Why.
    pub why: &'static str,
}

/// Init-data's entry, and a `-c` file only when its content is that entry.
const FROM_INIT_DATA: &str =
    "verified init-data's entry (a -c file counts only when its content is that entry)";

/// The upstream config files' settings: every one counts only from verified init-data
/// (kata writes `-c /run/confidential-containers/initdata/{aa,cdh}.toml` from it); a `-c`
/// file with other content is ignored whole, with a warning.
pub const UPSTREAM_RULES: &[UpstreamRule] = &[
    UpstreamRule {
        file: "aa.toml",
        key: "[token_configs.kbs] url",
        source: FROM_INIT_DATA,
        why: "the KBS (as kbs_url: sealgate's own measured config outranks it)",
    },
    UpstreamRule {
        file: "aa.toml",
        key: "[token_configs.kbs] cert",
        source: FROM_INIT_DATA,
        why: "a trust anchor for the KBS",
    },
    UpstreamRule {
        file: "aa.toml",
        key: "[eventlog_config] enable_eventlog, init_pcr",
        source: FROM_INIT_DATA,
        why: "which runtime events are measured, into which register",
    },
    UpstreamRule {
        file: "cdh.toml",
        key: "[kbc] name, url",
        source: FROM_INIT_DATA,
        why: "the KBS (used when aa.toml names none)",
    },
    UpstreamRule {
        file: "cdh.toml",
        key: "[kbc] kbs_cert",
        source: FROM_INIT_DATA,
        why: "a trust anchor for the KBS",
    },
    UpstreamRule {
        file: "cdh.toml",
        key: "skip_sealed_secret_verification",
        source: FROM_INIT_DATA,
        why: "an insecure flag, like allow_unsigned_sealed_secrets",
    },
    UpstreamRule {
        file: "attestation-agent argument",
        key: "--initdata-toml PATH",
        source: "the kata agent's argument (the image's code); the file is checked against HOST_DATA / MRCONFIGID before use",
        why: "as init_data: what is checked and sent",
    },
];

/// Whether the kernel command line `cmdline` may have put the environment variable `name`
/// into the environment: the kernel hands PID 1 every `NAME=value` parameter it does not
/// know (before `--`) as an environment variable, and a kata agent running as init passes
/// its environment on to the components it launches. Such a variable is the host's, not
/// the launcher's. Conservative: `NAME=` anywhere in the command line counts.
pub fn kernel_may_have_set_env(cmdline: &[u8], name: &str) -> bool {
    let needle = name.as_bytes();
    cmdline
        .windows(needle.len() + 1)
        .any(|w| w[..needle.len()] == *needle && w[needle.len()] == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        InitMode, Ipv4Cidr, KbsCert, ModuleSpec, OnFailure, ResourceSpec, TeeChoice, parse_cmdline,
    };
    use crate::teekey::KeyAlgorithm;
    use alloc::string::ToString;
    use alloc::vec;
    use core::net::Ipv4Addr;

    const UNMEASURED: [Source; 4] = [
        Source::KernelCmdline,
        Source::Pid1Argv,
        Source::HostDisk,
        Source::Environment,
    ];

    /// Every field set: a struct literal without `..Default::default()`, so a new
    /// setting fails to compile here until it has a row in the table.
    fn everything() -> Settings {
        Settings {
            trust_kernel_cmdline: Some(true),
            kbs_url: Some("http://kbs".into()),
            kbs_cert: Some(KbsCert::File("/etc/kbs.pem".into())),
            kbs_ca_bundle: Some("/etc/ca.pem".into()),
            tee: Some(TeeChoice::Sample),
            key_algorithm: Some(KeyAlgorithm::default()),
            sealed_dir: Some("/s".into()),
            owner: Some((1, 1)),
            mode: Some(0o440),
            tmpfs_size: Some(1),
            mount_tmpfs: Some(false),
            allow_non_tmpfs: Some(true),
            resources: Some(vec![ResourceSpec::parse("kbs:///a/b/c").unwrap()]),
            volumes: Some(
                crate::config::parse_file(
                    "[[volume]]\nname = \"v\"\ndevice = \"/dev/vdb\"\nresource = \"kbs:///a/b/v\"\n",
                )
                .unwrap()
                .volumes
                .unwrap(),
            ),
            sealed_secrets_dir: Some("/in".into()),
            sealed_secret_keys_dir: Some("/keys".into()),
            allow_unsigned: Some(true),
            deadline_secs: Some(1),
            connect_timeout_ms: Some(1),
            io_timeout_ms: Some(1),
            log_level: Some("debug".into()),
            init_data: Some("scan".into()),
            configfs_tsm: Some("/x".into()),
            sysfs: Some("/sysx".into()),
            eventlog_dir: Some("/runx".into()),
            rest_api_max: Some(crate::rest::Features::All),
            init_mode: Some(InitMode::Report),
            next_init: Some("/bin/sh".into()),
            on_failure: Some(OnFailure::Continue),
            modules: Some(vec![ModuleSpec::parse("m").unwrap()]),
            module_options: Some(vec![("m".into(), "p=1".into())]),
            net: Some(true),
            ifname: Some("eth1".into()),
            ip: Some(Ipv4Cidr::parse("10.0.0.2/8").unwrap()),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns: Some(vec![Ipv4Addr::new(10, 0, 0, 1)]),
            net_wait_secs: Some(1),
        }
    }

    #[test]
    fn upstream_settings_count_only_from_measured_sources() {
        assert!(UPSTREAM_RULES.len() >= 6);
        for r in UPSTREAM_RULES {
            assert!(
                r.source.contains("init-data") || r.source.contains("image"),
                "{r:?}"
            );
            assert!(!r.why.is_empty() && !r.key.is_empty(), "{r:?}");
        }
    }

    #[test]
    fn environment_variables_the_kernel_command_line_could_have_set() {
        let k = kernel_may_have_set_env;
        assert!(k(
            b"console=ttyS0 SEALGATE_CONFIG=/x quiet",
            "SEALGATE_CONFIG"
        ));
        assert!(k(b"\"SEALGATE_CONFIG=/a b\"", "SEALGATE_CONFIG"));
        assert!(k(b"SEALGATE_KERNEL_CMDLINE=/y", "SEALGATE_KERNEL_CMDLINE"));
        assert!(!k(
            b"console=ttyS0 sealgate.kbs=http://k",
            "SEALGATE_CONFIG"
        ));
        assert!(!k(b"SEALGATE_CONFIGX", "SEALGATE_CONFIG"));
        assert!(!k(b"", "SEALGATE_CONFIG"));
    }

    #[test]
    fn every_setting_has_exactly_one_row() {
        let keys = keys_set(&everything());
        assert_eq!(
            keys.len() + 1,
            RULES.len(),
            "plus the config file's location"
        );
        for key in keys.iter().copied().chain([Key::ConfigFile]) {
            assert_eq!(RULES.iter().filter(|r| r.key == key).count(), 1, "{key:?}");
        }
    }

    /// The table, row by row, as the issue states it: what an unmeasured source may set.
    #[test]
    fn each_rule_for_unmeasured_sources() {
        let expected: &[(Key, Unmeasured)] = &[
            (Key::ConfigFile, Never),
            (Key::TrustKernelCmdline, Never),
            (Key::KbsUrl, LowestFallback),
            (Key::KbsCert, Never),
            (Key::KbsCaBundle, Never),
            (Key::Tee, Never),
            (Key::KeyAlgorithm, Never),
            (Key::SealedDir, Never),
            (Key::Owner, Never),
            (Key::Mode, Never),
            (Key::TmpfsSize, Never),
            (Key::MountTmpfs, Never),
            (Key::AllowNonTmpfs, Never),
            (Key::Resources, Never),
            (Key::Volumes, Never),
            (Key::SealedSecretsDir, Never),
            (Key::SealedSecretKeysDir, Never),
            (Key::AllowUnsigned, Never),
            (Key::DeadlineSecs, Never),
            (Key::ConnectTimeoutMs, Never),
            (Key::IoTimeoutMs, Never),
            (Key::LogLevel, Allowed),
            (Key::InitData, Never),
            (Key::ConfigfsTsm, Never),
            (Key::Sysfs, Never),
            (Key::EventlogDir, Never),
            (Key::RestApiMax, Never),
            (Key::InitMode, Never),
            (Key::NextInit, Never),
            (Key::OnFailure, Never),
            (Key::Modules, Never),
            (Key::ModuleOptions, Allowed),
            (Key::Net, Allowed),
            (Key::Ifname, Allowed),
            (Key::Ip, Allowed),
            (Key::Gateway, Allowed),
            (Key::Dns, Allowed),
            (Key::NetWaitSecs, Allowed),
        ];
        assert_eq!(expected.len(), RULES.len());
        for &(key, want) in expected {
            assert_eq!(key.rule().unmeasured, want, "{key:?}");
            let cmdline = may_set(key, Source::KernelCmdline, false);
            assert_eq!(
                cmdline,
                want != Never,
                "{key:?} from the kernel command line"
            );
            assert!(
                !may_set(key, Source::Pid1Argv, false),
                "{key:?} from PID 1's argv"
            );
            assert!(
                !may_set(key, Source::HostDisk, false),
                "{key:?} from a host disk"
            );
            assert_eq!(
                may_set(key, Source::Environment, false),
                key == Key::LogLevel,
                "{key:?} from the environment"
            );
            // Through the filter too: a layer holding everything keeps only these.
            for source in UNMEASURED {
                let (kept, ignored) = filter(everything(), source, false);
                assert_eq!(
                    keys_set(&kept).contains(&key),
                    may_set(key, source, false),
                    "{key:?} from {source:?}"
                );
                assert_eq!(
                    ignored.iter().any(|i| i.key == key),
                    key != Key::ConfigFile && !may_set(key, source, false),
                    "{key:?} from {source:?}"
                );
            }
        }
    }

    #[test]
    fn measured_sources_set_anything_but_what_decides_their_own_trust() {
        for rule in RULES {
            let key = rule.key;
            assert_eq!(
                may_set(key, Source::ConfigFile, false),
                key != Key::ConfigFile
            );
            assert_eq!(
                may_set(key, Source::Flags, false),
                key != Key::TrustKernelCmdline,
                "{key:?}: no flag makes the command line trusted"
            );
            assert_eq!(may_set(key, Source::InitData, false), rule.init_data);
        }
        let (kept, ignored) = filter(everything(), Source::ConfigFile, false);
        assert!(ignored.is_empty());
        assert_eq!(kept, everything());
    }

    #[test]
    fn init_data_cannot_choose_how_it_is_checked_nor_what_ran_before_it() {
        let (kept, ignored) = filter(everything(), Source::InitData, false);
        let ignored: Vec<Key> = ignored.iter().map(|i| i.key).collect();
        assert_eq!(
            ignored,
            [
                Key::TrustKernelCmdline,
                Key::Tee,
                Key::InitData,
                Key::ConfigfsTsm,
                Key::Sysfs,
                Key::EventlogDir,
                Key::Modules,
                Key::ModuleOptions,
                Key::Net,
                Key::Ifname,
                Key::Ip,
                Key::Gateway,
                Key::Dns,
                Key::NetWaitSecs
            ]
        );
        // What a deployment puts there: its resources, owner, mode, next init, policy.
        assert!(kept.resources.is_some() && kept.owner.is_some() && kept.on_failure.is_some());
    }

    #[test]
    fn a_trusted_command_line_ranks_as_measured_but_cannot_choose_the_file() {
        for rule in RULES {
            assert_eq!(
                may_set(rule.key, Source::KernelCmdline, true),
                !matches!(rule.key, Key::ConfigFile | Key::TrustKernelCmdline),
                "{:?}",
                rule.key
            );
            // The opt-in is for the command line only.
            for source in [Source::Pid1Argv, Source::HostDisk] {
                assert!(!may_set(rule.key, source, true));
            }
        }
    }

    #[test]
    fn warnings_name_the_key_and_the_source() {
        let (_, ignored) = filter(everything(), Source::KernelCmdline, false);
        let owner = ignored
            .iter()
            .find(|i| i.key == Key::Owner)
            .unwrap()
            .to_string();
        assert!(
            owner.starts_with("ignoring owner from the kernel command line"),
            "{owner}"
        );
        assert!(owner.contains("trust_kernel_cmdline"), "{owner}");
        let tee = Ignored {
            key: Key::Tee,
            source: Source::InitData,
        }
        .to_string();
        assert!(tee.contains("tee from init-data's sealgate.toml"), "{tee}");
    }

    /// The attacks of issue 8, as kernel command lines: each forbidden key is ignored
    /// with a note naming it, even with a value that does not parse.
    #[test]
    fn the_command_line_attacks_are_ignored() {
        let line = "sealgate.config=/dev/vdb sealgate.owner=1000:1000 sealgate.file_mode=0440 \
                    sealgate.on_failure=continue sealgate.next_init=/bin/sh sealgate.tee=sample \
                    sealgate.resource=kbs:///a/b/c=x sealgate.init_data=/dev/vdb sealgate.mode=report \
                    sealgate.sealed_dir=/tmp sealgate.sealed_secrets=/mnt sealgate.configfs_tsm=/x \
                    sealgate.modules=evil sealgate.key=RSA-OAEP-256 sealgate.tmpfs_size=1g \
                    sealgate.deadline=1 sealgate.owner=root:root \
                    sealgate.kbs_cert=/evil.pem sealgate.kbs_ca_bundle=/evil-ca.pem \
                    sealgate.kbs=http://fallback sealgate.log=debug sealgate.ip=10.0.0.2/8 \
                    sealgate.gw=10.0.0.1 sealgate.dns=10.0.0.1 sealgate.net=on sealgate.ifname=eth1 \
                    sealgate.net_wait=2 virtio_net.napi_tx=1";
        let (s, notes) = parse_cmdline(line, false).unwrap();
        for key in [
            "sealgate.config",
            "sealgate.owner",
            "sealgate.file_mode",
            "sealgate.on_failure",
            "sealgate.next_init",
            "sealgate.tee",
            "sealgate.resource",
            "sealgate.init_data",
            "sealgate.mode",
            "sealgate.sealed_dir",
            "sealgate.sealed_secrets",
            "sealgate.configfs_tsm",
            "sealgate.modules",
            "sealgate.key",
            "sealgate.tmpfs_size",
            "sealgate.deadline",
            "sealgate.kbs_cert",
            "sealgate.kbs_ca_bundle",
        ] {
            assert!(
                notes
                    .iter()
                    .any(|n| n.starts_with(&alloc::format!("ignoring {key}="))),
                "{key}: {notes:?}"
            );
        }
        assert_eq!(
            keys_set(&s),
            [
                Key::KbsUrl,
                Key::LogLevel,
                Key::ModuleOptions,
                Key::Net,
                Key::Ifname,
                Key::Ip,
                Key::Gateway,
                Key::Dns,
                Key::NetWaitSecs
            ]
        );
        // Trusted, the same line sets them (but never the config file).
        let (s, notes) = parse_cmdline(
            "sealgate.config=/x sealgate.owner=1:1 sealgate.tee=sample",
            true,
        )
        .unwrap();
        assert_eq!((s.owner, s.tee), (Some((1, 1)), Some(TeeChoice::Sample)));
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("ignoring sealgate.config="),
            "{notes:?}"
        );
    }
}
