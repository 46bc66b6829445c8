//! Which TEE this guest runs in (feature `device`).
//!
//! SNP if `<sys>/devices/platform/sev-guest` or `<dev>/sev-guest` exists, or configfs-tsm reports
//! provider `sev_guest`; TDX if `<dev>/tdx_guest` exists or configfs-tsm reports `tdx_guest`;
//! otherwise none. Never "sample": the agent uses the sample attester only when told to.

use alloc::string::String;

use crate::sys::join;
use crate::tsm::{self, KernelFs, TsmClient, TsmFs};

pub use crate::Tee;

/// The filesystem roots detection looks under (configurable for tests and odd layouts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    /// sysfs (`/sys`).
    pub sys: String,
    /// devtmpfs (`/dev`).
    pub dev: String,
    /// The configfs-tsm report root ([`tsm::DEFAULT_ROOT`]).
    pub tsm_report: String,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            sys: String::from("/sys"),
            dev: String::from("/dev"),
            tsm_report: String::from(tsm::DEFAULT_ROOT),
        }
    }
}

impl Roots {
    /// `<dev>/sev-guest`.
    pub fn sev_guest(&self) -> String {
        join(&self.dev, "sev-guest")
    }

    /// `<dev>/tdx_guest`.
    pub fn tdx_guest(&self) -> String {
        join(&self.dev, "tdx_guest")
    }

    /// `<sys>/devices/virtual/misc/tdx_guest/measurements` (Linux 6.16+: MRCONFIGID, RTMRs).
    pub fn tdx_measurements(&self) -> String {
        join(&self.sys, "devices/virtual/misc/tdx_guest/measurements")
    }
}

/// A detected TEE and the path that gave it away. Detection never yields [`Tee::Sample`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The TEE.
    pub tee: Tee,
    /// The file, or the configfs-tsm root whose provider named it.
    pub via: String,
}

/// Detects the TEE on the real filesystem.
pub fn detect(roots: &Roots) -> Option<Detection> {
    detect_with(&KernelFs, roots)
}

/// Detects the TEE through a [`TsmFs`] (which also answers the path checks).
pub fn detect_with<F: TsmFs>(fs: &F, roots: &Roots) -> Option<Detection> {
    let checks = [
        (Tee::Snp, join(&roots.sys, "devices/platform/sev-guest")),
        (Tee::Snp, roots.sev_guest()),
        (Tee::Tdx, roots.tdx_guest()),
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
    extern crate std;

    use super::*;
    use crate::tsm::fake::FakeTsm;
    use std::string::ToString;

    fn roots(fake: &FakeTsm) -> Roots {
        Roots {
            sys: String::from("/fake/sys"),
            dev: String::from("/fake/dev"),
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
        let base = std::env::temp_dir().join(std::format!("fwglue-detect-{}", std::process::id()));
        let base = base.to_str().unwrap().to_string();
        let _ = std::fs::remove_dir_all(&base);
        let r = Roots {
            sys: join(&base, "sys"),
            dev: join(&base, "dev"),
            tsm_report: join(&base, "config/tsm/report"),
        };
        std::fs::create_dir_all(&r.dev).unwrap();
        assert_eq!(detect(&r), None);
        std::fs::write(r.tdx_guest(), b"").unwrap();
        assert_eq!(detect(&r).unwrap().tee, Tee::Tdx);
        std::fs::create_dir_all(join(&r.sys, "devices/platform/sev-guest")).unwrap();
        let d = detect(&r).unwrap();
        assert_eq!(d.tee, Tee::Snp);
        assert!(d.via.ends_with("/devices/platform/sev-guest"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
