//! The firmware behind the daemon: what answers a decoded request.

use crate::config::{Config, FirmwareKind};
use crate::proto::{Kind, Request};
use firmware_glue::sim::SimError;
use firmware_glue::sim::snp::{SnpConfig, SnpSim};
use firmware_glue::sim::tdx::{TdxConfig, TdxSim};
use firmware_glue::snp::{CertTable, CertType, Generation};

/// `EINVAL`: what the kernel returns for a VMPL the firmware refuses.
const EINVAL: u32 = 22;
/// `EIO`.
const EIO: u32 = 5;

/// A report/quote and its auxiliary blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// SNP: the 1184-byte report; TDX: the quote.
    pub outblob: Vec<u8>,
    /// SNP: the GHCB certificate table (may be empty); TDX: empty.
    pub auxblob: Vec<u8>,
}

/// Something that answers requests, or fails them with an errno for the kernel to return.
pub trait Firmware {
    /// Answers one request.
    fn answer(&mut self, req: &Request) -> Result<Answer, u32>;
    /// One line for the console.
    fn describe(&self) -> String;
}

/// The firmware a configuration asks for, for the provider the module impersonates.
pub fn from_config(cfg: &Config) -> Box<dyn Firmware + Send> {
    let inner: Box<dyn Firmware + Send> = match cfg.firmware {
        FirmwareKind::Echo => Box::new(Echo),
        FirmwareKind::Sim => Box::new(Simulated::new(cfg)),
    };
    match cfg.fail {
        Some(errno) => Box::new(Failing { errno, inner }),
        None => inner,
    }
}

/// SEV-SNP and TDX firmware from `firmware_glue::sim`, signing with the seed's test keys.
pub struct Simulated {
    snp: SnpSim,
    tdx: TdxSim,
}

impl Simulated {
    /// Both simulators, configured alike (only the one the module impersonates is asked).
    pub fn new(cfg: &Config) -> Self {
        let mut snp = SnpConfig::from_seed(&cfg.seed, Generation::Genoa);
        snp.host_data = cfg.host_data;
        snp.faults.corrupt_signature = cfg.corrupt_signature;
        let mut tdx = TdxConfig::from_seed(&cfg.seed);
        tdx.mr_config_id = cfg.mrconfigid;
        tdx.faults.corrupt_quote_signature = cfg.corrupt_signature;
        if let Some(m) = cfg.measurement {
            snp.measurement = m;
            tdx.mr_td = m;
        }
        Simulated {
            snp: SnpSim::new(snp),
            tdx: TdxSim::new(tdx),
        }
    }
}

impl Firmware for Simulated {
    fn answer(&mut self, req: &Request) -> Result<Answer, u32> {
        match req.kind {
            Kind::SnpReport => {
                let report = self.snp.report(&req.inblob, req.privlevel).map_err(|e| {
                    eprintln!("guest-sim: {e}");
                    match e {
                        SimError::Vmpl { .. } => EINVAL,
                        _ => EIO,
                    }
                })?;
                Ok(Answer {
                    outblob: report.to_vec(),
                    auxblob: self.snp.cert_table(),
                })
            }
            Kind::TdxQuote => Ok(Answer {
                outblob: self.tdx.quote(&req.inblob),
                auxblob: Vec::new(),
            }),
            Kind::TdxReport => Ok(Answer {
                outblob: self.tdx.tdreport(&req.inblob).to_vec(),
                auxblob: Vec::new(),
            }),
            Kind::TdxExtend => {
                let index = req.privlevel as usize;
                // TDG.MR.RTMR.EXTEND: an index above 3 is an invalid operand.
                if index > 3 || req.inblob[48..] != [0; 16] {
                    return Err(EINVAL);
                }
                let digest: [u8; 48] = req.inblob[..48].try_into().expect("48 bytes");
                self.tdx.extend_rtmr(index, &digest);
                let value = self.tdx.config().rtmr[index];
                eprintln!(
                    "guest-sim: RTMR{index} extended, now {}",
                    value[..8]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                Ok(Answer {
                    outblob: value.to_vec(),
                    auxblob: Vec::new(),
                })
            }
        }
    }

    fn describe(&self) -> String {
        format!("{}; {}", self.snp.describe(), self.tdx.describe())
    }
}

/// Unsigned blobs that echo the request: enough to test the kernel module's plumbing.
/// SNP: 1184 bytes, REPORT_DATA at 0x50 and VMPL at 0x30 as in a real report, the rest 0xE5;
/// the auxblob is a certificate table whose VCEK entry is `b"echo-certs:"` and the request id.
/// TDX: a 632-byte "quote" with REPORTDATA at 568; a 1024-byte "TDREPORT" with REPORTDATA at
/// 128, each register (MRTD at 528 ... RTMR3 at 864) filled with its own index byte
/// (MRTD 0x10, MRCONFIGID 0x11, MROWNER 0x12, MROWNERCONFIG 0x13, RTMR0..3 0x20..0x23);
/// an extend answers with the digest it was given (no state).
pub struct Echo;

/// The echo firmware's TDREPORT register fill bytes, in TDREPORT order from MRTD (528).
pub const ECHO_MR_FILL: [u8; 8] = [0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x22, 0x23];

impl Firmware for Echo {
    fn answer(&mut self, req: &Request) -> Result<Answer, u32> {
        Ok(match req.kind {
            Kind::SnpReport => {
                let mut out = vec![0xe5; 1184];
                out[0x30..0x34].copy_from_slice(&req.privlevel.to_le_bytes());
                out[0x50..0x90].copy_from_slice(&req.inblob);
                let mut vcek = b"echo-certs:".to_vec();
                vcek.extend_from_slice(&req.id.to_le_bytes());
                Answer {
                    outblob: out,
                    auxblob: CertTable::build(&[(CertType::Vcek, &vcek)]),
                }
            }
            Kind::TdxQuote => {
                let mut out = vec![0xe5; 632];
                out[568..632].copy_from_slice(&req.inblob);
                Answer {
                    outblob: out,
                    auxblob: Vec::new(),
                }
            }
            Kind::TdxReport => {
                let mut out = vec![0xe5; 1024];
                out[128..192].copy_from_slice(&req.inblob);
                for (i, fill) in ECHO_MR_FILL.iter().enumerate() {
                    out[528 + 48 * i..576 + 48 * i].fill(*fill);
                }
                Answer {
                    outblob: out,
                    auxblob: Vec::new(),
                }
            }
            Kind::TdxExtend => Answer {
                outblob: req.inblob[..48].to_vec(),
                auxblob: Vec::new(),
            },
        })
    }

    fn describe(&self) -> String {
        "echo firmware (unsigned, module self-test only)".into()
    }
}

/// Fails every request with one errno (fault injection).
pub struct Failing {
    errno: u32,
    inner: Box<dyn Firmware + Send>,
}

impl Firmware for Failing {
    fn answer(&mut self, _req: &Request) -> Result<Answer, u32> {
        Err(self.errno)
    }

    fn describe(&self) -> String {
        format!(
            "{} failing every request with errno {}",
            self.inner.describe(),
            self.errno
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Source;
    use firmware_glue::snp::Report;

    fn req(kind: Kind, privlevel: u32) -> Request {
        Request {
            id: 3,
            kind,
            privlevel,
            source: Source::ConfigfsTsm,
            inblob: [0x42; 64],
        }
    }

    #[test]
    fn simulated_snp_report_carries_the_request_and_config() {
        let mut cfg = Config::default();
        cfg.set("host_data", &"ab".repeat(32)).unwrap();
        let mut fw = Simulated::new(&cfg);
        let a = fw.answer(&req(Kind::SnpReport, 0)).unwrap();
        let report = Report::new_checked(&a.outblob).unwrap();
        assert_eq!(report.report_data(), &[0x42; 64]);
        assert_eq!(report.host_data(), &[0xab; 32]);
        assert!(!a.auxblob.is_empty(), "VCEK in the certificate table");
        assert_eq!(fw.answer(&req(Kind::SnpReport, 4)), Err(EINVAL));
    }

    #[test]
    fn simulated_tdx_quote_carries_the_request_and_config() {
        let mut cfg = Config::default();
        cfg.set("mrconfigid", &"cd".repeat(48)).unwrap();
        let mut fw = Simulated::new(&cfg);
        let a = fw.answer(&req(Kind::TdxQuote, 0)).unwrap();
        let q = firmware_glue::tdx::Quote::new_checked(&a.outblob).unwrap();
        assert_eq!(q.report_data(), &[0x42; 64]);
        assert_eq!(q.mr_config_id(), &[0xcd; 48]);
        assert!(a.auxblob.is_empty());
    }

    #[test]
    fn simulated_tdx_extend_changes_later_quotes_and_reports() {
        use sha2::{Digest, Sha384};
        let mut fw = Simulated::new(&Config::default());
        let before = fw.answer(&req(Kind::TdxReport, 0)).unwrap().outblob;
        assert_eq!(before.len(), 1024);
        let r3 = |report: &[u8]| report[864..912].to_vec();
        let mut ext = req(Kind::TdxExtend, 3);
        ext.inblob = [0; 64];
        ext.inblob[..48].copy_from_slice(&[0x77; 48]);
        let new = fw.answer(&ext).unwrap().outblob;
        let mut h = Sha384::new();
        h.update(r3(&before));
        h.update([0x77; 48]);
        assert_eq!(new, h.finalize().to_vec());
        assert_eq!(
            r3(&fw.answer(&req(Kind::TdxReport, 0)).unwrap().outblob),
            new
        );
        let q = fw.answer(&req(Kind::TdxQuote, 0)).unwrap().outblob;
        let q = firmware_glue::tdx::Quote::new_checked(&q).unwrap();
        assert_eq!(
            q.rtmr(3).unwrap().to_vec(),
            new,
            "the quote carries the extended RTMR3"
        );
        // An index above 3, or bytes after the digest: EINVAL, nothing changes.
        assert_eq!(fw.answer(&req(Kind::TdxExtend, 4)), Err(EINVAL));
        ext.inblob[63] = 1;
        assert_eq!(fw.answer(&ext), Err(EINVAL));
        assert_eq!(
            r3(&fw.answer(&req(Kind::TdxReport, 0)).unwrap().outblob),
            new
        );
    }

    #[test]
    fn failing_and_echo() {
        let mut cfg = Config::default();
        cfg.set("firmware", "echo").unwrap();
        cfg.set("fail", "5").unwrap();
        assert_eq!(from_config(&cfg).answer(&req(Kind::TdxQuote, 0)), Err(5));
        let a = Echo.answer(&req(Kind::SnpReport, 2)).unwrap();
        assert_eq!(
            (a.outblob.len(), a.outblob[0x30], a.outblob[0x50]),
            (1184, 2, 0x42)
        );
    }
}
