//! Which TEE this guest runs in (feature `std`).
//!
//! SNP if `<sys>/devices/platform/sev-guest` or `<dev>/sev-guest` exists, or configfs-tsm reports
//! provider `sev_guest`; TDX if `<dev>/tdx_guest` exists or configfs-tsm reports `tdx_guest`;
//! otherwise none. Never "sample": the agent uses the sample attester only when told to.

use std::path::PathBuf;

use crate::tsm::{self, KernelFs, TsmClient, TsmFs};

/// A TEE sealgate can attest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tee {
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
}

impl Tee {
    /// The KBS protocol name (`"snp"`, `"tdx"`).
    pub fn name(self) -> &'static str {
        match self {
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
        }
    }
}

/// The filesystem roots detection looks under (configurable for tests and odd layouts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    /// sysfs (`/sys`).
    pub sys: PathBuf,
    /// devtmpfs (`/dev`).
    pub dev: PathBuf,
    /// The configfs-tsm report root ([`tsm::DEFAULT_ROOT`]).
    pub tsm_report: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            tsm_report: PathBuf::from(tsm::DEFAULT_ROOT),
        }
    }
}

/// A detected TEE and the path that gave it away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The TEE.
    pub tee: Tee,
    /// The file, or the configfs-tsm root whose provider named it.
    pub via: PathBuf,
}

/// Detects the TEE on the real filesystem.
pub fn detect(roots: &Roots) -> Option<Detection> {
    detect_with(&KernelFs, roots)
}

/// Detects the TEE through a [`TsmFs`] (which also answers the path checks).
pub fn detect_with<F: TsmFs>(fs: &F, roots: &Roots) -> Option<Detection> {
    let checks = [
        (Tee::Snp, roots.sys.join("devices/platform/sev-guest")),
        (Tee::Snp, roots.dev.join("sev-guest")),
        (Tee::Tdx, roots.dev.join("tdx_guest")),
    ];
    for (tee, via) in checks {
        if fs.exists(&via) {
            return Some(Detection { tee, via });
        }
    }
    // configfs-tsm: creating an entry is the only way to read the provider.
    let client = TsmClient::with_fs(fs, roots.tsm_report.clone());
    let tee = match client.provider().ok()?.as_str() {
        "sev_guest" => Tee::Snp,
        "tdx_guest" => Tee::Tdx,
        _ => return None,
    };
    Some(Detection {
        tee,
        via: roots.tsm_report.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsm::fake::FakeTsm;
    use std::path::Path;

    fn roots(fake: &FakeTsm) -> Roots {
        Roots {
            sys: PathBuf::from("/fake/sys"),
            dev: PathBuf::from("/fake/dev"),
            tsm_report: fake.root.clone(),
        }
    }

    #[test]
    fn by_configfs_provider() {
        let fake = FakeTsm::new("tdx_guest");
        let d = detect_with(&fake, &roots(&fake)).unwrap();
        assert_eq!(d.tee, Tee::Tdx);
        assert!(fake.entries.borrow().is_empty(), "probe entry removed");

        let fake = FakeTsm::new("sev_guest");
        assert_eq!(detect_with(&fake, &roots(&fake)).unwrap().tee, Tee::Snp);

        let fake = FakeTsm::new("arm_cca_guest");
        assert_eq!(detect_with(&fake, &roots(&fake)), None);

        let mut fake = FakeTsm::new("sev_guest");
        fake.provider = None;
        assert_eq!(detect_with(&fake, &roots(&fake)), None);
        fake.root_exists = false;
        assert_eq!(detect_with(&fake, &roots(&fake)), None);
    }

    #[test]
    fn by_device_paths_on_a_real_tree() {
        let base = std::env::temp_dir().join(format!("fwglue-detect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let r = Roots {
            sys: base.join("sys"),
            dev: base.join("dev"),
            tsm_report: base.join("config/tsm/report"),
        };
        std::fs::create_dir_all(&r.dev).unwrap();
        assert_eq!(detect(&r), None);
        std::fs::write(r.dev.join("tdx_guest"), b"").unwrap();
        assert_eq!(detect(&r).unwrap().tee, Tee::Tdx);
        std::fs::create_dir_all(r.sys.join("devices/platform/sev-guest")).unwrap();
        let d = detect(&r).unwrap();
        assert_eq!(d.tee, Tee::Snp);
        assert!(d.via.ends_with(Path::new("devices/platform/sev-guest")));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
