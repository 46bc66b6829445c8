//! Providers backed by `firmware-glue`'s simulated firmware (feature `sim`): what the kernel's
//! `sev_guest` and `tdx_guest` providers return, signed by test keys.
//!
//! ```no_run
//! use std::sync::Arc;
//! use firmware_glue::sim::snp::{SnpConfig, SnpSim};
//! use tsm_fuse::TsmMount;
//! use tsm_fuse::sim::SnpProvider;
//!
//! let snp = Arc::new(SnpProvider::new(SnpSim::new(SnpConfig::default())));
//! let tsm = TsmMount::mount_temp(Some(snp.clone())).expect("mount");
//! // firmware_glue::snp::get_evidence_tsm(&TsmClient::new(tsm.report_dir()), &report_data)
//! snp.with_sim(|sim| sim.faults_mut().corrupt_signature = true); // later reports
//! ```
//!
//! Both follow the kernel providers: `inblob` must be exactly 64 bytes (else `EINVAL`);
//! SNP takes `privlevel` as the VMPL (a VMPL the firmware refuses is `EINVAL`, as its
//! INVALID_PARAM status is) and returns the certificate table as `auxblob` (none when the
//! table is empty); TDX has neither `privlevel` nor `auxblob`. [`SnpProvider::fail_with`] /
//! [`TdxProvider::fail_with`] make every report fail with an errno (the kernel's `EIO` for a
//! failed guest request or quote, `ENXIO` for a firmware error, …); the simulators' own fault
//! knobs (corrupt signature, forced version/VMPL, missing/malformed/oversized certificate
//! table, unbound attestation key…) pass through unchanged.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use firmware_glue::sim::SimError;
use firmware_glue::sim::snp::SnpSim;
use firmware_glue::sim::tdx::TdxSim;

use crate::{Errno, Provider, Register, Report, ReportRequest};

/// Both kernel providers accept exactly this `inblob` length.
const INBLOB_LEN: usize = 64;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn inblob(req: &ReportRequest<'_>) -> Result<[u8; INBLOB_LEN], Errno> {
    req.inblob.try_into().map_err(|_| Errno::INVAL)
}

/// `sev_guest` backed by [`SnpSim`].
#[derive(Debug)]
pub struct SnpProvider {
    sim: Mutex<SnpSim>,
    fail: Mutex<Option<Errno>>,
    calls: AtomicUsize,
}

impl SnpProvider {
    /// A provider for `sim` (its `vmpl_floor` becomes `privlevel_floor`).
    pub fn new(sim: SnpSim) -> Self {
        SnpProvider {
            sim: Mutex::new(sim),
            fail: Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the simulator, e.g. to turn a fault knob for the following reports.
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut SnpSim) -> R) -> R {
        f(&mut lock(&self.sim))
    }

    /// Makes every report fail with `errno` (`None`: succeed again).
    pub fn fail_with(&self, errno: Option<Errno>) {
        *lock(&self.fail) = errno;
    }

    /// Reports requested so far (failed ones included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Provider for SnpProvider {
    fn name(&self) -> &str {
        "sev_guest"
    }

    fn has_auxblob(&self) -> bool {
        true
    }

    fn has_privlevel(&self) -> bool {
        true
    }

    fn privlevel_floor(&self) -> u32 {
        lock(&self.sim).config().vmpl_floor
    }

    fn report(&self, req: &ReportRequest<'_>) -> Result<Report, Errno> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(errno) = *lock(&self.fail) {
            return Err(errno);
        }
        let user_data = inblob(req)?;
        let sim = lock(&self.sim);
        let raw = sim.report(&user_data, req.privlevel).map_err(|e| match e {
            // the firmware's INVALID_PARAM status: sev-guest maps it to EINVAL
            SimError::Vmpl { .. } => Errno::INVAL,
            // any other firmware error status: ENXIO
            SimError::Report(_) | SimError::CertTable(_) => Errno::NXIO,
        })?;
        let table = sim.cert_table();
        let report = Report::new(raw.to_vec());
        Ok(if table.is_empty() {
            report
        } else {
            report.with_auxblob(table)
        })
    }
}

/// `tdx_guest` backed by [`TdxSim`].
#[derive(Debug)]
pub struct TdxProvider {
    sim: Mutex<TdxSim>,
    measurements: bool,
    fail: Mutex<Option<Errno>>,
    calls: AtomicUsize,
}

impl TdxProvider {
    /// A provider for `sim`.
    pub fn new(sim: TdxSim) -> Self {
        TdxProvider {
            sim: Mutex::new(sim),
            measurements: false,
            fail: Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the simulator, e.g. to turn a fault knob for the following quotes.
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut TdxSim) -> R) -> R {
        f(&mut lock(&self.sim))
    }

    /// Also shows the sysfs measurement files (`measurements/` at the mount root: the
    /// simulator's MRCONFIGID and RTMRs; a write to an RTMR file extends the simulator's,
    /// so later quotes carry it), as a Linux 6.16+ TDX guest has them.
    pub fn with_measurements(mut self) -> Self {
        self.measurements = true;
        self
    }

    /// Makes every quote fail with `errno` (`None`: succeed again), e.g. `EIO` as when the
    /// host's quote generation service is unreachable.
    pub fn fail_with(&self, errno: Option<Errno>) {
        *lock(&self.fail) = errno;
    }

    /// Quotes requested so far (failed ones included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Provider for TdxProvider {
    fn name(&self) -> &str {
        "tdx_guest"
    }

    fn has_measurements(&self) -> bool {
        self.measurements
    }

    fn read_register(&self, register: Register) -> Result<[u8; 48], Errno> {
        let sim = lock(&self.sim);
        match register {
            Register::MrConfigId => Ok(sim.config().mr_config_id),
            Register::Rtmr(i) => sim
                .config()
                .rtmr
                .get(usize::from(i))
                .copied()
                .ok_or(Errno::NOENT),
        }
    }

    fn extend_rtmr(&self, index: u8, digest: &[u8; 48]) -> Result<(), Errno> {
        if index > 3 {
            return Err(Errno::NOENT);
        }
        lock(&self.sim).extend_rtmr(usize::from(index), digest);
        Ok(())
    }

    fn report(&self, req: &ReportRequest<'_>) -> Result<Report, Errno> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(errno) = *lock(&self.fail) {
            return Err(errno);
        }
        let report_data = inblob(req)?;
        Ok(Report::new(lock(&self.sim).quote(&report_data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_glue::sim::snp::{CertTableFault, SnpConfig};
    use firmware_glue::sim::tdx::TdxConfig;

    #[test]
    fn providers_without_a_mount() {
        let snp = SnpProvider::new(SnpSim::new(SnpConfig::default()));
        assert_eq!(snp.report(&ReportRequest::new(&[0; 63])), Err(Errno::INVAL));
        let r = snp.report(&ReportRequest::new(&[7; 64])).unwrap();
        assert_eq!(r.outblob.len(), 1184);
        assert_eq!(&r.outblob[0x50..0x90], &[7; 64]);
        assert!(r.auxblob.is_some());
        snp.with_sim(|s| s.faults_mut().cert_table = CertTableFault::Missing);
        assert_eq!(
            snp.report(&ReportRequest::new(&[7; 64])).unwrap().auxblob,
            None
        );
        let mut req = ReportRequest::new(&[7; 64]);
        req.privlevel = 4;
        assert_eq!(snp.report(&req), Err(Errno::INVAL));
        snp.fail_with(Some(Errno::IO));
        assert_eq!(snp.report(&ReportRequest::new(&[7; 64])), Err(Errno::IO));
        assert_eq!(snp.calls(), 5);

        let tdx = TdxProvider::new(TdxSim::new(TdxConfig::default()));
        assert_eq!(tdx.report(&ReportRequest::new(&[1; 65])), Err(Errno::INVAL));
        let r = tdx.report(&ReportRequest::new(&[1; 64])).unwrap();
        assert_eq!(r.auxblob, None);
        assert!(!tdx.has_privlevel() && !tdx.has_auxblob());
        tdx.fail_with(Some(Errno::IO));
        assert_eq!(tdx.report(&ReportRequest::new(&[1; 64])), Err(Errno::IO));
    }
}
