//! Evidence for the attestation: which TEE, its primary evidence object for a binding
//! digest, and the init-data check against what the TEE was launched with.
//!
//! On SNP and TDX every failure to get evidence is fatal: sealgate fails closed and never
//! falls back to the sample TEE, which is used only when configured explicitly.

use crate::run::Failure;
use firmware_glue::detect::{self, Roots};
use firmware_glue::snp::{self, SnpSource};
use firmware_glue::tdx;
use sealgate_core::config::{Config, TeeChoice};
use sealgate_core::initdata::InitData;
use sealgate_core::rcar::{self, SampleEvidence, Tee};
use sealgate_linux::{debug, info, warn};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The source of evidence for this run.
pub enum Attester {
    /// The sample TEE: no hardware, proves nothing (tests and demos).
    Sample,
    /// AMD SEV-SNP through `/dev/sev-guest` or configfs-tsm.
    Snp(SnpSource),
    /// Intel TDX: quotes through configfs-tsm; MRCONFIGID through sysfs or the TDREPORT.
    Tdx {
        /// configfs-tsm report directory.
        tsm: PathBuf,
        /// `/dev/tdx_guest`.
        device: PathBuf,
        /// sysfs measurements directory (kernel 6.16+).
        measurements: PathBuf,
    },
}

fn roots(cfg: &Config) -> Roots {
    Roots {
        tsm_report: PathBuf::from(&cfg.configfs_tsm),
        ..Roots::default()
    }
}

impl Attester {
    /// The attester the configuration asks for.
    pub fn from_config(cfg: &Config) -> Result<Attester, Failure> {
        let roots = roots(cfg);
        let tee = match cfg.tee {
            TeeChoice::Sample => {
                warn!(
                    "using the sample TEE: the KBS learns nothing trustworthy about this machine"
                );
                return Ok(Attester::Sample);
            }
            TeeChoice::Snp => Tee::Snp,
            TeeChoice::Tdx => Tee::Tdx,
            TeeChoice::Auto => match detect::detect(&roots) {
                Some(d) => {
                    info!("detected {:?} (via {})", d.tee, d.via.display());
                    match d.tee {
                        detect::Tee::Snp => Tee::Snp,
                        detect::Tee::Tdx => Tee::Tdx,
                    }
                }
                None => {
                    return Err(Failure(format!(
                        "no TEE detected: no /dev/sev-guest, /sys/devices/platform/sev-guest or /dev/tdx_guest, \
                         and no configfs-tsm provider under {}; sealgate never falls back to the sample TEE \
                         (use --tee sample only for tests)",
                        cfg.configfs_tsm
                    )));
                }
            },
        };
        // Fail before any network use if the interface the TEE needs is absent.
        let missing = |what: &str| {
            Failure(format!(
                "{what} requested, but {} is not present (is the guest driver loaded and configfs mounted?)",
                match tee {
                    Tee::Snp => format!(
                        "neither /dev/sev-guest nor configfs-tsm at {}",
                        cfg.configfs_tsm
                    ),
                    _ => format!("configfs-tsm at {}", cfg.configfs_tsm),
                }
            ))
        };
        Ok(match tee {
            Tee::Snp => {
                let source = SnpSource::auto(&roots);
                let present = match &source {
                    SnpSource::Ioctl(dev) => dev.exists(),
                    SnpSource::Tsm(root) => root.exists(),
                };
                if !present {
                    return Err(missing("SEV-SNP"));
                }
                Attester::Snp(source)
            }
            _ => {
                if !roots.tsm_report.exists() {
                    return Err(missing("TDX"));
                }
                Attester::Tdx {
                    tsm: roots.tsm_report,
                    device: roots.dev.join("tdx_guest"),
                    measurements: roots
                        .sys
                        .join("devices/virtual/misc/tdx_guest/measurements"),
                }
            }
        })
    }

    /// The TEE name sent in `/auth`.
    pub fn tee(&self) -> Tee {
        match self {
            Attester::Sample => Tee::Sample,
            Attester::Snp(_) => Tee::Snp,
            Attester::Tdx { .. } => Tee::Tdx,
        }
    }

    /// Checks that the TEE was launched with this init-data: SNP HOST_DATA or TDX
    /// MRCONFIGID must equal its digest (regularized as Trustee does). Runs before anything
    /// is sent to the KBS. The sample TEE has nowhere to bind init-data: nothing to check.
    pub fn check_init_data(&mut self, init_data: &InitData) -> Result<(), Failure> {
        let (field, bound, expected): (&str, Vec<u8>, Vec<u8>) = match self {
            Attester::Sample => {
                debug!("sample TEE: init-data is sent but cannot be bound to anything");
                return Ok(());
            }
            Attester::Snp(source) => {
                let hd = snp::host_data(source)
                    .map_err(|e| Failure(format!("cannot read SNP HOST_DATA: {e}")))?;
                (
                    "SNP HOST_DATA",
                    hd.to_vec(),
                    init_data.snp_host_data().to_vec(),
                )
            }
            Attester::Tdx {
                tsm,
                device,
                measurements,
            } => (
                "TDX MRCONFIGID",
                tdx_mrconfigid(tsm, device, measurements)?.to_vec(),
                init_data.tdx_mrconfigid().to_vec(),
            ),
        };
        if bound != expected {
            return Err(Failure(format!(
                "init-data does not match this TEE: {field} is {} but the {} digest of the init-data is {}; \
                 refusing to attest (was the VM launched with this init-data?)",
                hex(&bound),
                init_data.algorithm().as_str(),
                hex(&expected)
            )));
        }
        info!(
            "init-data matches {field} ({} digest)",
            init_data.algorithm().as_str()
        );
        Ok(())
    }

    /// The primary evidence binding `digest` (the KBS binding hash).
    pub fn evidence(&mut self, digest: &[u8]) -> Result<Value, String> {
        let report_data = rcar::report_data_64(digest);
        match self {
            Attester::Sample => {
                serde_json::to_value(SampleEvidence::new(digest)).map_err(|e| e.to_string())
            }
            Attester::Snp(source) => {
                let evidence =
                    snp::get_evidence(source, &report_data).map_err(|e| e.to_string())?;
                evidence.to_json().map_err(|e| e.to_string())
            }
            Attester::Tdx { tsm, .. } => {
                let quote = tdx::get_quote(tsm, &report_data).map_err(|e| e.to_string())?;
                Ok(tdx::evidence_json(&quote, None))
            }
        }
    }
}

/// MRCONFIGID from sysfs (6.16+) or the TDREPORT ioctl, as upstream reads it; on a guest
/// that only has configfs-tsm, from a quote (its TD report body carries the same value).
fn tdx_mrconfigid(tsm: &Path, device: &Path, measurements: &Path) -> Result<[u8; 48], Failure> {
    if measurements.join("mrconfigid").exists() || device.exists() {
        return tdx::mrconfigid(measurements, device)
            .map_err(|e| Failure(format!("cannot read TDX MRCONFIGID: {e}")));
    }
    let quote = tdx::get_quote(tsm, &[0u8; 64])
        .map_err(|e| Failure(format!("cannot read TDX MRCONFIGID: {e}")))?;
    let parsed = tdx::Quote::parse(&quote)
        .map_err(|e| Failure(format!("cannot read TDX MRCONFIGID: {e}")))?;
    Ok(*parsed.mr_config_id())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
