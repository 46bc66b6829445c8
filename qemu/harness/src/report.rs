//! `sealgate init`'s console report (`sealgate.mode=report`, format version 1, see
//! `agent/src/bin/sealgate/init/report.rs`): what the tests assert on.

use crate::console::{field, tagged};

/// One `SEALGATE-REPORT secret` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// Absolute path in the guest.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Octal permission bits, e.g. `0400`.
    pub mode: String,
    /// `uid:gid`.
    pub owner: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// The parsed report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `begin status=`.
    pub begin_status: Option<String>,
    /// `end status=`.
    pub end_status: Option<String>,
    /// The secrets.
    pub secrets: Vec<Secret>,
    /// `sealed-dir tmpfs=` (`yes`/`no`).
    pub sealed_dir_tmpfs: Option<String>,
    /// `sealed-dir fstype=`.
    pub sealed_dir_fstype: Option<String>,
    /// `timing boot_to_secret_us=` (kernel start to secrets committed).
    pub boot_to_secret_us: Option<u64>,
    /// `timing sealgate_us=` (sealgate's own share).
    pub sealgate_us: Option<u64>,
    /// The `SEALGATE-FAILED` reasons.
    pub failures: Vec<String>,
}

impl Report {
    /// Reads the report from a console log.
    pub fn parse(console: &str) -> Report {
        let mut r = Report::default();
        for line in tagged(console, "SEALGATE-REPORT ") {
            let kind = line.split_ascii_whitespace().next().unwrap_or("");
            let get = |k: &str| field(line, k).map(String::from);
            match kind {
                "begin" => r.begin_status = get("status"),
                "end" => r.end_status = get("status"),
                "secret" => r.secrets.push(Secret {
                    path: get("path").unwrap_or_default(),
                    size: get("size").and_then(|s| s.parse().ok()).unwrap_or(u64::MAX),
                    mode: get("mode").unwrap_or_default(),
                    owner: get("owner").unwrap_or_default(),
                    sha256: get("sha256").unwrap_or_default(),
                }),
                "sealed-dir" => {
                    r.sealed_dir_tmpfs = get("tmpfs");
                    r.sealed_dir_fstype = get("fstype");
                }
                "timing" => {
                    r.boot_to_secret_us = get("boot_to_secret_us").and_then(|v| v.parse().ok());
                    r.sealgate_us = get("sealgate_us").and_then(|v| v.parse().ok());
                }
                _ => {}
            }
        }
        r.failures = tagged(console, "SEALGATE-FAILED ")
            .into_iter()
            .map(String::from)
            .collect();
        r
    }

    /// The secret at `path`.
    pub fn secret(&self, path: &str) -> Option<&Secret> {
        self.secrets.iter().find(|s| s.path == path)
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let c = "\
SEALGATE-REPORT begin version=1 pid=1 status=ok
SEALGATE-REPORT secret path=/sealed/app/key size=12 mode=0400 owner=0:0 sha256=ab
SEALGATE-REPORT sealed-dir path=/sealed tmpfs=yes magic=0x01021994 fstype=tmpfs mount_options=rw
SEALGATE-REPORT timing start_us=812345 secrets_us=1234567 boot_to_secret_us=1234567 sealgate_us=422222
SEALGATE-REPORT end secrets=1 status=ok
";
        let r = Report::parse(c);
        assert_eq!(r.begin_status.as_deref(), Some("ok"));
        assert_eq!(r.end_status.as_deref(), Some("ok"));
        let s = r.secret("/sealed/app/key").unwrap();
        assert_eq!(
            (s.size, s.mode.as_str(), s.owner.as_str()),
            (12, "0400", "0:0")
        );
        assert_eq!(r.sealed_dir_tmpfs.as_deref(), Some("yes"));
        assert_eq!(
            (r.boot_to_secret_us, r.sealgate_us),
            (Some(1234567), Some(422222))
        );
        let f = Report::parse("x\nSEALGATE-FAILED KBS unreachable: refused\n");
        assert_eq!(f.failures, ["KBS unreachable: refused"]);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
