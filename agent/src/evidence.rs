//! Evidence for the attestation: which TEE, its primary evidence object for a binding
//! digest, and the init-data check against what the TEE was launched with.
//!
//! Every TEE is a [`firmware_glue::evidence::EvidenceProvider`]: SNP through `/dev/sev-guest`
//! or configfs-tsm, TDX through configfs-tsm (MRCONFIGID through sysfs, the TDREPORT ioctl or
//! a quote), both from firmware-glue, and the sample TEE ([`Sample`]) here.
//!
//! On SNP and TDX every failure to get evidence is fatal: sealgate fails closed and never
//! falls back to the sample TEE, which is used only when configured explicitly.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::eventlog::{self, EventLogFailure, EventLogPaths};
use firmware_glue::Tee as FwTee;
use firmware_glue::detect::{self, Roots};
use firmware_glue::evidence::{EvidenceError, EvidenceProvider, TdxTsm, snp_provider};
use firmware_glue::snp::SnpSource;
use sealgate_core::config::{Config, TeeChoice};
use sealgate_core::initdata::InitData;
use sealgate_core::rcar::{SampleEvidence, Tee};
use sealgate_linux::fs::exists;
use sealgate_linux::{debug, info, warn};
use serde_json::Value;

/// The sample TEE: no hardware, proves nothing (tests and demos). Its evidence carries the
/// binding digest itself; it has nowhere to bind init-data.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample;

impl EvidenceProvider for Sample {
    fn tee(&self) -> FwTee {
        FwTee::Sample
    }

    fn evidence(&mut self, binding: &[u8]) -> Result<Value, EvidenceError> {
        serde_json::to_value(SampleEvidence::new(binding)).map_err(|e| EvidenceError::Other {
            tee: FwTee::Sample,
            detail: e.to_string(),
        })
    }

    fn init_data_binding(&mut self) -> Result<Vec<u8>, EvidenceError> {
        Err(EvidenceError::NoInitDataBinding { tee: FwTee::Sample })
    }
}

/// Why the attester could not be set up, the init-data check failed, or no evidence came.
#[derive(Debug)]
pub enum AttesterError {
    /// `tee = auto` and nothing was found.
    NoTeeDetected {
        /// The configfs-tsm report root looked at.
        configfs_tsm: String,
    },
    /// The interface the configured TEE needs is absent.
    InterfaceMissing {
        /// The TEE asked for.
        tee: Tee,
        /// The configfs-tsm report root looked at.
        configfs_tsm: String,
    },
    /// HOST_DATA / MRCONFIGID could not be read.
    InitDataBinding {
        /// `"SNP HOST_DATA"` or `"TDX MRCONFIGID"`.
        field: &'static str,
        /// Why.
        source: EvidenceError,
    },
    /// The TEE was launched with other init-data.
    InitDataMismatch {
        /// `"SNP HOST_DATA"` or `"TDX MRCONFIGID"`.
        field: &'static str,
        /// The value the TEE holds.
        bound: Vec<u8>,
        /// The init-data's digest algorithm.
        algorithm: &'static str,
        /// The value the init-data's digest gives.
        expected: Vec<u8>,
    },
    /// No evidence for the binding digest.
    Evidence(EvidenceError),
    /// The TDX event log (CCEL, AAEL) could not be read.
    EventLog(EventLogFailure),
}

impl fmt::Display for AttesterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttesterError::NoTeeDetected { configfs_tsm } => write!(
                f,
                "no TEE detected: no /dev/sev-guest, /sys/devices/platform/sev-guest or /dev/tdx_guest, \
                 and no configfs-tsm provider under {configfs_tsm}; sealgate never falls back to the sample TEE \
                 (use --tee sample only for tests)"
            ),
            AttesterError::InterfaceMissing { tee, configfs_tsm } => {
                let (what, interface) = match tee {
                    Tee::Snp => (
                        "SEV-SNP",
                        format!("neither /dev/sev-guest nor configfs-tsm at {configfs_tsm}"),
                    ),
                    _ => ("TDX", format!("configfs-tsm at {configfs_tsm}")),
                };
                write!(
                    f,
                    "{what} requested, but {interface} is not present (is the guest driver loaded and configfs mounted?)"
                )
            }
            AttesterError::InitDataBinding { field, source } => {
                write!(f, "cannot read {field}: {source}")
            }
            AttesterError::InitDataMismatch {
                field,
                bound,
                algorithm,
                expected,
            } => write!(
                f,
                "init-data does not match this TEE: {field} is {} but the {algorithm} digest of the init-data is {}; \
                 refusing to attest (was the VM launched with this init-data?)",
                hex(bound),
                hex(expected)
            ),
            AttesterError::Evidence(e) => fmt::Display::fmt(e, f),
            AttesterError::EventLog(e) => write!(f, "TDX event log: {e}"),
        }
    }
}

impl core::error::Error for AttesterError {}

/// The source of evidence for this run.
pub struct Attester {
    provider: Box<dyn EvidenceProvider>,
    eventlog: EventLogPaths,
}

fn roots(configfs_tsm: &str, sysfs: &str) -> Roots {
    Roots {
        tsm_report: configfs_tsm.to_string(),
        sys: sysfs.to_string(),
        ..Roots::default()
    }
}

impl Attester {
    /// The attester the configuration asks for.
    pub fn from_config(cfg: &Config) -> Result<Attester, AttesterError> {
        Attester::with_paths(cfg.tee, &cfg.configfs_tsm, EventLogPaths::from_config(cfg))
    }

    /// The attester for `choice`, with configfs-tsm at `configfs_tsm` and the default
    /// sysfs and event-log paths.
    pub fn new(choice: TeeChoice, configfs_tsm: &str) -> Result<Attester, AttesterError> {
        Attester::with_paths(choice, configfs_tsm, EventLogPaths::default())
    }

    /// The attester for `choice`, with configfs-tsm at `configfs_tsm`, sysfs at
    /// `eventlog.sysfs` (TEE detection, TDX measurements, the CCEL) and the AA event log in
    /// `eventlog.dir`.
    pub fn with_paths(
        choice: TeeChoice,
        configfs_tsm: &str,
        eventlog: EventLogPaths,
    ) -> Result<Attester, AttesterError> {
        let roots = roots(configfs_tsm, &eventlog.sysfs);
        let tee = match choice {
            TeeChoice::Sample => {
                warn!(
                    "using the sample TEE: the KBS learns nothing trustworthy about this machine"
                );
                return Ok(Attester {
                    provider: Box::new(Sample),
                    eventlog,
                });
            }
            TeeChoice::Snp => Tee::Snp,
            TeeChoice::Tdx => Tee::Tdx,
            TeeChoice::Auto => match detect::detect(&roots) {
                Some(d) => {
                    info!("detected {:?} (via {})", d.tee, d.via);
                    match d.tee {
                        FwTee::Snp => Tee::Snp,
                        FwTee::Tdx => Tee::Tdx,
                        // Detection never yields the sample TEE; refuse rather than assume.
                        FwTee::Sample => {
                            return Err(AttesterError::NoTeeDetected {
                                configfs_tsm: configfs_tsm.to_string(),
                            });
                        }
                    }
                }
                None => {
                    return Err(AttesterError::NoTeeDetected {
                        configfs_tsm: configfs_tsm.to_string(),
                    });
                }
            },
        };
        // Fail before any network use if the interface the TEE needs is absent.
        let missing = || AttesterError::InterfaceMissing {
            tee,
            configfs_tsm: configfs_tsm.to_string(),
        };
        let provider: Box<dyn EvidenceProvider> = match tee {
            Tee::Snp => {
                let source = SnpSource::auto(&roots);
                let present = match &source {
                    SnpSource::Ioctl(dev) => exists(dev),
                    SnpSource::Tsm(root) => exists(root),
                };
                if !present {
                    return Err(missing());
                }
                snp_provider(&source)
            }
            _ => {
                if !exists(&roots.tsm_report) {
                    return Err(missing());
                }
                Box::new(TdxTsm::new(
                    roots.tsm_report.clone(),
                    roots.tdx_guest(),
                    roots.tdx_measurements(),
                ))
            }
        };
        Ok(Attester { provider, eventlog })
    }

    /// Where the event-log files are.
    pub fn eventlog_paths(&self) -> &EventLogPaths {
        &self.eventlog
    }

    /// The TEE name sent in `/auth`.
    pub fn tee(&self) -> Tee {
        match self.provider.tee() {
            FwTee::Sample => Tee::Sample,
            FwTee::Snp => Tee::Snp,
            FwTee::Tdx => Tee::Tdx,
        }
    }

    /// Checks that the TEE was launched with this init-data: SNP HOST_DATA or TDX
    /// MRCONFIGID must equal its digest (regularized as Trustee does). Runs before anything
    /// is sent to the KBS. The sample TEE has nowhere to bind init-data: nothing to check.
    pub fn check_init_data(&mut self, init_data: &InitData) -> Result<(), AttesterError> {
        let (field, expected): (&'static str, Vec<u8>) = match self.tee() {
            Tee::Sample => {
                debug!("sample TEE: init-data is sent but cannot be bound to anything");
                return Ok(());
            }
            Tee::Snp => ("SNP HOST_DATA", init_data.snp_host_data().to_vec()),
            Tee::Tdx => ("TDX MRCONFIGID", init_data.tdx_mrconfigid().to_vec()),
        };
        let bound = self
            .provider
            .init_data_binding()
            .map_err(|source| AttesterError::InitDataBinding { field, source })?;
        let algorithm = init_data.algorithm().as_str();
        if bound != expected {
            return Err(AttesterError::InitDataMismatch {
                field,
                bound,
                algorithm,
                expected,
            });
        }
        info!("init-data matches {field} ({algorithm} digest)");
        Ok(())
    }

    /// The primary evidence binding `digest` (the KBS binding hash).
    /// On TDX it carries `cc_eventlog` as guest-components sends it: the CCEL cut at its
    /// end, the AA event log, the end marker, base64 (`null` when there is neither file).
    pub fn evidence(&mut self, digest: &[u8]) -> Result<Value, AttesterError> {
        let mut evidence = self
            .provider
            .evidence(digest)
            .map_err(AttesterError::Evidence)?;
        if self.tee() == Tee::Tdx
            && let Some(log) =
                eventlog::cc_eventlog(&self.eventlog).map_err(AttesterError::EventLog)?
            && let Some(obj) = evidence.as_object_mut()
        {
            debug!("TDX event log: {} bytes", log.len());
            obj.insert(
                "cc_eventlog".into(),
                Value::String(sealgate_core::b64::std_encode(&log)),
            );
        }
        Ok(evidence)
    }
}

fn hex(b: &[u8]) -> String {
    use core::fmt::Write;
    let mut s = String::with_capacity(2 * b.len());
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}
