//! One evidence-provider trait for every TEE (feature `device`), in the manner of
//! go-sev-guest's `QuoteProvider`: "give me evidence for this binding" and "what is the
//! launch-time value init-data is bound to", whatever the interface underneath.
//!
//! Implementations here: [`SnpIoctl`] (`/dev/sev-guest`), [`SnpTsm`] and [`TdxTsm`]
//! (configfs-tsm; TDX reads MRCONFIGID through sysfs on 6.16+, the TDREPORT ioctl, or a quote).
//! The configfs-tsm ones are generic over [`TsmFs`], so with the `test-double` feature they
//! run against [`crate::tsm::fake::FakeTsm`] in process. The agent implements the trait for
//! its sample TEE itself.
//!
//! ```no_run
//! use firmware_glue::evidence::{EvidenceProvider, SnpTsm};
//! let mut snp = SnpTsm::new(firmware_glue::tsm::DEFAULT_ROOT);
//! let host_data = snp.init_data_binding()?; // 32 bytes
//! let json = snp.evidence(&[0u8; 48])?; // REPORT_DATA = binding ‖ 16 zero bytes
//! # let _ = (host_data, json); Ok::<(), firmware_glue::evidence::EvidenceError>(())
//! ```

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde_json::Value;

use crate::Tee;
use crate::snp::{self, SnpError, SnpSource};
use crate::sys::join;
use crate::tdx::{self, TdxError};
use crate::tsm::{KernelFs, TsmClient, TsmFs};

/// Length of REPORT_DATA on SNP and TDX.
pub const REPORT_DATA_LEN: usize = 64;

/// A source of attestation evidence for one TEE.
pub trait EvidenceProvider {
    /// The TEE whose evidence this is.
    fn tee(&self) -> Tee;

    /// The primary evidence (the JSON the KBS verifier of [`EvidenceProvider::tee`] expects)
    /// binding `binding`, the runtime-data digest of at most 64 bytes. Hardware TEEs put it
    /// into REPORT_DATA followed by zero bytes (see [`report_data`]).
    fn evidence(&mut self, binding: &[u8]) -> Result<Value, EvidenceError>;

    /// The launch-time value the init-data digest must equal: SNP HOST_DATA (32 bytes), TDX
    /// MRCONFIGID (48 bytes). A TEE with no such value (the sample TEE) answers
    /// [`EvidenceError::NoInitDataBinding`].
    fn init_data_binding(&mut self) -> Result<Vec<u8>, EvidenceError>;
}

impl<P: EvidenceProvider + ?Sized> EvidenceProvider for Box<P> {
    fn tee(&self) -> Tee {
        (**self).tee()
    }
    fn evidence(&mut self, binding: &[u8]) -> Result<Value, EvidenceError> {
        (**self).evidence(binding)
    }
    fn init_data_binding(&mut self) -> Result<Vec<u8>, EvidenceError> {
        (**self).init_data_binding()
    }
}

/// Why a provider gave no evidence or binding.
#[derive(Debug, PartialEq, Eq)]
pub enum EvidenceError {
    /// SEV-SNP (ioctl or configfs-tsm) failed.
    Snp(SnpError),
    /// TDX (configfs-tsm, sysfs or ioctl) failed.
    Tdx(TdxError),
    /// The binding does not fit into the 64 bytes of REPORT_DATA.
    BindingTooLong {
        /// Its length.
        len: usize,
    },
    /// The TEE has no launch-time value init-data could be bound to.
    NoInitDataBinding {
        /// The TEE.
        tee: Tee,
    },
    /// Another provider's failure (one outside this crate, e.g. the sample TEE).
    Other {
        /// The TEE.
        tee: Tee,
        /// What went wrong.
        detail: String,
    },
}

impl EvidenceError {
    /// Whether trying again later may succeed without anyone changing the guest (a busy or
    /// silent host, a racing writer, an unreachable TDX quote service). Everything else,
    /// including every failure after which the SNP kernel driver disabled the VMPCK, is final.
    pub fn is_transient(&self) -> bool {
        match self {
            EvidenceError::Snp(e) => e.is_transient(),
            EvidenceError::Tdx(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceError::Snp(e) => fmt::Display::fmt(e, f),
            EvidenceError::Tdx(e) => fmt::Display::fmt(e, f),
            EvidenceError::BindingTooLong { len } => write!(
                f,
                "a {len}-byte binding digest does not fit into the {REPORT_DATA_LEN} bytes of REPORT_DATA"
            ),
            EvidenceError::NoInitDataBinding { tee } => write!(
                f,
                "the {tee} TEE has no launch-time value init-data could be bound to"
            ),
            EvidenceError::Other { tee, detail } => write!(f, "{tee} evidence: {detail}"),
        }
    }
}

impl core::error::Error for EvidenceError {}

impl From<SnpError> for EvidenceError {
    fn from(e: SnpError) -> Self {
        EvidenceError::Snp(e)
    }
}

impl From<TdxError> for EvidenceError {
    fn from(e: TdxError) -> Self {
        EvidenceError::Tdx(e)
    }
}

/// REPORT_DATA for `binding`: the binding followed by zero bytes up to 64.
pub fn report_data(binding: &[u8]) -> Result<[u8; REPORT_DATA_LEN], EvidenceError> {
    let mut out = [0u8; REPORT_DATA_LEN];
    out.get_mut(..binding.len())
        .ok_or(EvidenceError::BindingTooLong { len: binding.len() })?
        .copy_from_slice(binding);
    Ok(out)
}

/// The SNP provider for `source` (`SnpSource::auto` picks the ioctl if the device exists).
pub fn snp_provider(source: &SnpSource) -> Box<dyn EvidenceProvider> {
    match source {
        SnpSource::Ioctl(device) => Box::new(SnpIoctl::new(device.clone())),
        SnpSource::Tsm(root) => Box::new(SnpTsm::new(root.clone())),
    }
}

/// SEV-SNP through `/dev/sev-guest`: `SNP_GET_EXT_REPORT` (certificates included) for
/// evidence, plain `SNP_GET_REPORT` for HOST_DATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpIoctl {
    device: String,
}

impl SnpIoctl {
    /// A provider for the device node `device` (usually [`snp::DEFAULT_DEVICE`]).
    pub fn new(device: impl Into<String>) -> Self {
        SnpIoctl {
            device: device.into(),
        }
    }

    /// The device node.
    pub fn device(&self) -> &str {
        &self.device
    }
}

impl EvidenceProvider for SnpIoctl {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    fn evidence(&mut self, binding: &[u8]) -> Result<Value, EvidenceError> {
        let rd = report_data(binding)?;
        Ok(snp::get_evidence_ioctl(&self.device, &rd)?.to_json())
    }

    fn init_data_binding(&mut self) -> Result<Vec<u8>, EvidenceError> {
        Ok(snp::host_data_ioctl(&self.device)?.to_vec())
    }
}

/// SEV-SNP through configfs-tsm (`sev_guest`: `outblob` report, `auxblob` certificates).
#[derive(Clone, Debug)]
pub struct SnpTsm<F: TsmFs = KernelFs> {
    client: TsmClient<F>,
}

impl SnpTsm<KernelFs> {
    /// A provider for the real configfs-tsm at `root` (usually [`crate::tsm::DEFAULT_ROOT`]).
    pub fn new(root: impl Into<String>) -> Self {
        SnpTsm::with_client(TsmClient::new(root))
    }
}

impl<F: TsmFs> SnpTsm<F> {
    /// A provider over any configfs-tsm client (a test double, simulated firmware).
    pub fn with_client(client: TsmClient<F>) -> Self {
        SnpTsm { client }
    }

    /// The client.
    pub fn client(&self) -> &TsmClient<F> {
        &self.client
    }
}

impl<F: TsmFs> EvidenceProvider for SnpTsm<F> {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    fn evidence(&mut self, binding: &[u8]) -> Result<Value, EvidenceError> {
        let rd = report_data(binding)?;
        Ok(snp::get_evidence_tsm(&self.client, &rd)?.to_json())
    }

    fn init_data_binding(&mut self) -> Result<Vec<u8>, EvidenceError> {
        Ok(snp::host_data_tsm(&self.client)?.to_vec())
    }
}

/// Intel TDX: quotes through configfs-tsm (`tdx_guest`); MRCONFIGID from
/// `<measurements>/mrconfigid` (Linux 6.16+), else a TDREPORT through `device`, else (a guest
/// with only configfs-tsm) the TD report body of a quote, which carries the same value.
#[derive(Clone, Debug)]
pub struct TdxTsm<F: TsmFs = KernelFs> {
    client: TsmClient<F>,
    device: String,
    measurements: String,
}

impl TdxTsm<KernelFs> {
    /// A provider for the real configfs-tsm at `tsm_root`, `/dev/tdx_guest` at `device` and
    /// the sysfs measurements directory `measurements` (see
    /// [`crate::detect::Roots::tdx_measurements`]).
    pub fn new(
        tsm_root: impl Into<String>,
        device: impl Into<String>,
        measurements: impl Into<String>,
    ) -> Self {
        TdxTsm::with_client(TsmClient::new(tsm_root), device, measurements)
    }
}

impl<F: TsmFs> TdxTsm<F> {
    /// A provider over any configfs-tsm client; the sysfs and device existence checks and the
    /// sysfs read go through the client's filesystem too (the TDREPORT ioctl does not).
    pub fn with_client(
        client: TsmClient<F>,
        device: impl Into<String>,
        measurements: impl Into<String>,
    ) -> Self {
        TdxTsm {
            client,
            device: device.into(),
            measurements: measurements.into(),
        }
    }

    /// The client.
    pub fn client(&self) -> &TsmClient<F> {
        &self.client
    }
}

impl<F: TsmFs> EvidenceProvider for TdxTsm<F> {
    fn tee(&self) -> Tee {
        Tee::Tdx
    }

    fn evidence(&mut self, binding: &[u8]) -> Result<Value, EvidenceError> {
        let rd = report_data(binding)?;
        // The whole outblob, as guest-components sends it (trailing bytes included).
        let quote = tdx::get_quote_tsm(&self.client, &rd)?.into_inner();
        Ok(tdx::evidence_json(&quote, None))
    }

    fn init_data_binding(&mut self) -> Result<Vec<u8>, EvidenceError> {
        let fs = self.client.fs();
        if fs.exists(&join(&self.measurements, "mrconfigid")) || fs.exists(&self.device) {
            return Ok(tdx::mrconfigid_with(fs, &self.measurements, &self.device)?.to_vec());
        }
        let quote = tdx::get_quote_tsm(&self.client, &[0u8; REPORT_DATA_LEN])?;
        Ok(quote.mr_config_id().to_vec())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::tsm::fake::FakeTsm;
    use rustix::io::Errno;
    use std::string::ToString;
    use std::vec;

    #[test]
    fn report_data_pads_and_refuses_long_bindings() {
        let rd = report_data(&[7u8; 48]).unwrap();
        assert_eq!(rd[..48], [7u8; 48]);
        assert_eq!(rd[48..], [0u8; 16]);
        assert_eq!(report_data(&[1u8; 64]).unwrap(), [1u8; 64]);
        assert_eq!(
            report_data(&[0u8; 65]),
            Err(EvidenceError::BindingTooLong { len: 65 })
        );
    }

    #[test]
    fn snp_over_the_double_checks_report_data() {
        // The default fake firmware's 100-byte "report" is not an SNP report: a typed error,
        // not evidence.
        let fake = FakeTsm::new("sev_guest");
        let mut p = SnpTsm::with_client(TsmClient::with_fs(&fake, fake.root.clone()));
        assert_eq!(p.tee(), Tee::Snp);
        let err = p.evidence(&[1u8; 48]).unwrap_err();
        assert!(
            matches!(err, EvidenceError::Snp(SnpError::Report(_))),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert!(fake.is_clean());
    }

    #[test]
    fn provider_errors_keep_their_messages_and_transience() {
        let mut fake = FakeTsm::new("tdx_guest");
        fake.outblob_errno = Some(Errno::IO);
        let mut p = TdxTsm::with_client(
            TsmClient::with_fs(&fake, fake.root.clone()),
            "/fake/dev/tdx_guest",
            "/fake/sys/measurements",
        );
        assert_eq!(p.tee(), Tee::Tdx);
        let err = p.evidence(&[1u8; 48]).unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("quote generation"), "{err}");

        // A mismatching provider is final and says so.
        let fake = FakeTsm::new("sev_guest");
        let mut p = TdxTsm::with_client(
            TsmClient::with_fs(&fake, fake.root.clone()),
            "/fake/dev/tdx_guest",
            "/fake/sys/measurements",
        );
        let err = p.init_data_binding().unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("not the TEE"), "{err}");
        assert!(fake.is_clean());
    }

    #[test]
    fn tdx_mrconfigid_from_sysfs_through_the_double() {
        let mut fake = FakeTsm::new("tdx_guest");
        fake.files.insert(
            "/fake/sys/measurements/mrconfigid".to_string(),
            vec![0x5a; 48],
        );
        let mut p = TdxTsm::with_client(
            TsmClient::with_fs(&fake, fake.root.clone()),
            "/fake/dev/tdx_guest",
            "/fake/sys/measurements/",
        );
        assert_eq!(p.init_data_binding().unwrap(), vec![0x5a; 48]);
        assert!(fake.mkdirs.borrow().is_empty(), "no quote needed");

        fake.files.insert(
            "/fake/sys/measurements/mrconfigid".to_string(),
            vec![0x5a; 47],
        );
        let mut p = TdxTsm::with_client(
            TsmClient::with_fs(&fake, fake.root.clone()),
            "/fake/dev/tdx_guest",
            "/fake/sys/measurements",
        );
        let err = p.init_data_binding().unwrap_err();
        assert!(
            err.to_string().contains("holds 47 bytes, expected 48"),
            "{err}"
        );
    }

    #[test]
    fn snp_ioctl_on_a_missing_device_says_what_to_do() {
        let mut p = SnpIoctl::new("/nonexistent/sev-guest");
        let err = p.init_data_binding().unwrap_err();
        assert!(err.to_string().contains("modprobe sev-guest"), "{err}");
        let err = p.evidence(&[0u8; 32]).unwrap_err();
        assert!(err.to_string().contains("modprobe sev-guest"), "{err}");
        assert_eq!(
            snp_provider(&SnpSource::Ioctl("/nonexistent/sev-guest".into())).tee(),
            Tee::Snp
        );
    }

    #[cfg(feature = "sim")]
    #[test]
    fn simulated_firmware_behind_the_double() {
        use crate::sim::snp::{SnpConfig, SnpSim};
        use crate::sim::tdx::{TdxConfig, TdxSim};

        let sim = SnpSim::new(SnpConfig {
            host_data: [0x11; 32],
            ..SnpConfig::default()
        });
        let fake = FakeTsm::new("sev_guest").with_firmware(move |inblob, vmpl| {
            let rd: [u8; 64] = inblob.try_into().map_err(|_| Errno::INVAL)?;
            let report = sim.report(&rd, vmpl).map_err(|_| Errno::IO)?;
            Ok((report.to_vec(), sim.cert_table()))
        });
        let mut p = SnpTsm::with_client(TsmClient::with_fs(&fake, fake.root.clone()));
        assert_eq!(p.init_data_binding().unwrap(), vec![0x11; 32]);
        let json = p.evidence(&[3u8; 48]).unwrap();
        let parsed = snp::parse_evidence_json(&json).unwrap();
        assert!(parsed.cert_chain.is_some());
        assert!(fake.is_clean());

        let sim = TdxSim::new(TdxConfig {
            mr_config_id: [0x22; 48],
            ..TdxConfig::default()
        });
        let fake = FakeTsm::new("tdx_guest").with_firmware(move |inblob, _| {
            let rd: [u8; 64] = inblob.try_into().map_err(|_| Errno::INVAL)?;
            Ok((sim.quote(&rd), vec![]))
        });
        let mut p = TdxTsm::with_client(
            TsmClient::with_fs(&fake, fake.root.clone()),
            "/fake/dev/tdx_guest",
            "/fake/sys/measurements",
        );
        // No sysfs file, no device: MRCONFIGID from a quote.
        assert_eq!(p.init_data_binding().unwrap(), vec![0x22; 48]);
        let json = p.evidence(&[4u8; 48]).unwrap();
        let quote = tdx::parse_evidence_json(&json).unwrap().quote;
        assert_eq!(
            tdx::Quote::new_checked(&quote).unwrap().report_data()[..48],
            [4u8; 48]
        );
    }
}
