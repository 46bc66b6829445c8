//! The upstream guest components' config files, as the server reads them: the
//! attestation agent's `aa.toml` (`-c`) and the confidential data hub's `cdh.toml` (`-c`).
//! Only the keys sealgate uses are read; unknown keys are ignored, as upstream's serde
//! structs do. Whether a file may be used at all is the caller's decision (the trust
//! model: only a file whose content is the verified init-data's entry counts; see
//! [`crate::trust::UPSTREAM_RULES`]).

use crate::tomlerror::TomlError;
use alloc::string::String;
use core::fmt;
use serde::Deserialize;

/// The largest config file read (upstream's are a few hundred bytes; a certificate adds a
/// few KiB).
pub const MAX_UPSTREAM_CONFIG: usize = 256 << 10;

/// Upstream AA's default `init_pcr` (the PCR that maps to TDX RTMR3).
pub const DEFAULT_INIT_PCR: u64 = 17;

/// A KBS as the upstream configs name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamKbs {
    /// Base URL.
    pub url: String,
    /// PEM certificate of the KBS, if given (empty counts as absent).
    pub cert: Option<String>,
}

/// `aa.toml`, the parts sealgate uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AaConfig {
    /// `[token_configs.kbs] url, cert`.
    pub kbs: Option<UpstreamKbs>,
    /// `[eventlog_config] enable_eventlog` (default false, as upstream).
    pub enable_eventlog: bool,
    /// `[eventlog_config] init_pcr` (default 17, as upstream).
    pub init_pcr: u64,
}

/// `cdh.toml`, the parts sealgate uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdhConfig {
    /// `[kbc] name`.
    pub kbc_name: Option<String>,
    /// `[kbc] url, kbs_cert` (whatever the name; the caller refuses a name it cannot serve).
    pub kbs: Option<UpstreamKbs>,
    /// `socket`.
    pub socket: Option<String>,
    /// `skip_sealed_secret_verification` (default false).
    pub skip_sealed_secret_verification: bool,
}

/// Why an upstream config file is unusable. Position only, never content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfigError {
    /// `aa.toml` or `cdh.toml`.
    pub file: &'static str,
    /// Why.
    pub error: TomlError,
}

impl fmt::Display for UpstreamConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.error)
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|c| !c.trim().is_empty())
}

/// Parses `aa.toml`.
pub fn parse_aa(text: &str) -> Result<AaConfig, UpstreamConfigError> {
    #[derive(Deserialize)]
    struct Aa {
        token_configs: Option<TokenConfigs>,
        eventlog_config: Option<Eventlog>,
    }
    #[derive(Deserialize)]
    struct TokenConfigs {
        kbs: Option<Kbs>,
    }
    #[derive(Deserialize)]
    struct Kbs {
        url: String,
        cert: Option<String>,
    }
    #[derive(Deserialize)]
    struct Eventlog {
        enable_eventlog: Option<bool>,
        init_pcr: Option<u64>,
    }
    let aa: Aa = toml::from_str(text).map_err(|e| UpstreamConfigError {
        file: "aa.toml",
        error: TomlError::new(&e, text),
    })?;
    let eventlog = aa.eventlog_config;
    Ok(AaConfig {
        kbs: aa.token_configs.and_then(|t| t.kbs).map(|k| UpstreamKbs {
            url: k.url,
            cert: nonempty(k.cert),
        }),
        enable_eventlog: eventlog
            .as_ref()
            .and_then(|e| e.enable_eventlog)
            .unwrap_or(false),
        init_pcr: eventlog
            .and_then(|e| e.init_pcr)
            .unwrap_or(DEFAULT_INIT_PCR),
    })
}

/// Parses `cdh.toml`.
pub fn parse_cdh(text: &str) -> Result<CdhConfig, UpstreamConfigError> {
    #[derive(Deserialize)]
    struct Cdh {
        socket: Option<String>,
        skip_sealed_secret_verification: Option<bool>,
        kbc: Option<Kbc>,
    }
    #[derive(Deserialize)]
    struct Kbc {
        name: String,
        url: Option<String>,
        kbs_cert: Option<String>,
    }
    let cdh: Cdh = toml::from_str(text).map_err(|e| UpstreamConfigError {
        file: "cdh.toml",
        error: TomlError::new(&e, text),
    })?;
    let (kbc_name, kbs) = match cdh.kbc {
        Some(k) => {
            let kbs = k.url.map(|url| UpstreamKbs {
                url,
                cert: nonempty(k.kbs_cert),
            });
            (Some(k.name), kbs)
        }
        None => (None, None),
    };
    Ok(CdhConfig {
        kbc_name,
        kbs,
        socket: cdh.socket,
        skip_sealed_secret_verification: cdh.skip_sealed_secret_verification.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn aa_toml_as_kata_writes_it() {
        let aa = parse_aa(
            "[token_configs]\n[token_configs.coco_as]\nurl = \"http://as\"\n[token_configs.kbs]\nurl = \"http://10.0.2.2:8080\"\ncert = \"\"\n[eventlog_config]\nenable_eventlog = true\ninit_pcr = 17\n[other]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(
            aa.kbs,
            Some(UpstreamKbs {
                url: "http://10.0.2.2:8080".into(),
                cert: None
            })
        );
        assert!(aa.enable_eventlog);
        assert_eq!(aa.init_pcr, 17);
        let empty = parse_aa("").unwrap();
        assert_eq!(
            empty,
            AaConfig {
                kbs: None,
                enable_eventlog: false,
                init_pcr: DEFAULT_INIT_PCR
            }
        );
    }

    #[test]
    fn cdh_toml_as_kata_writes_it() {
        let cdh = parse_cdh(
            "socket = \"unix:///run/confidential-containers/cdh.sock\"\nskip_sealed_secret_verification = true\n[kbc]\nname = \"cc_kbc\"\nurl = \"https://kbs:8443\"\nkbs_cert = \"-----BEGIN CERTIFICATE-----\"\n[image]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(cdh.kbc_name.as_deref(), Some("cc_kbc"));
        assert_eq!(
            cdh.kbs.unwrap().cert.as_deref(),
            Some("-----BEGIN CERTIFICATE-----")
        );
        assert!(cdh.skip_sealed_secret_verification);
        assert_eq!(
            cdh.socket.as_deref(),
            Some("unix:///run/confidential-containers/cdh.sock")
        );
    }

    #[test]
    fn errors_name_the_position_never_the_content() {
        let e = parse_cdh("[kbc]\nname = \"cc_kbc\"\nurl = [\"12345678\"]\n").unwrap_err();
        assert_eq!(e.file, "cdh.toml");
        assert_eq!(e.error.line, 3);
        assert!(!e.to_string().contains("12345678"), "{e}");
        let e = parse_aa("[eventlog_config]\ninit_pcr = \"seventeen\"\n").unwrap_err();
        assert!(!e.to_string().contains("seventeen"), "{e}");
    }
}
