//! Simulated AMD SEV-SNP firmware: a test PKI shaped like AMD's (ARK → ASK → VCEK) and
//! attestation reports with the real layout, signed by the VCEK.
//!
//! ```
//! use firmware_glue::sim::snp::{SnpConfig, SnpSim};
//! use firmware_glue::snp::{Generation, Report};
//! let sim = SnpSim::new(SnpConfig::from_seed(b"my seed", Generation::Genoa));
//! let raw = sim.report(&[7; 64], 0)?;
//! assert_eq!(Report::new_checked(&raw)?.report_data(), &[7; 64]);
//! let table = sim.cert_table(); // GHCB certificate table with the VCEK
//! # let _ = table; Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use p384::ecdsa::signature::Signer;
use serde_json::Value;

use super::SimError;
use super::der_writer::{self as w, Time};
use super::keys;
use super::x509::{self, Attr, CertSpec, Extension, IssuerKey, SubjectKey};
use crate::snp::{
    CertTable, CertType, FirmwareVersion, Generation, REPORT_LEN, Report, ReportRepr,
    SignatureRepr, TcbVersion, evidence_json, field, policy, signature_fields_from_p384,
};

/// `O=` of every simulated AMD certificate: marks them as test certificates.
pub const TEST_ORGANIZATION: &str = "sealgate test (not Advanced Micro Devices)";

/// AMD's VCEK extension arcs (`1.3.6.1.4.1.3704.1.…`).
pub mod vcek_oid {
    /// structVersion (INTEGER).
    pub const STRUCT_VERSION: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 1];
    /// productName (IA5String), e.g. `Genoa-B1`.
    pub const PRODUCT_NAME: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 2];
    /// blSPL (INTEGER).
    pub const BL_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1];
    /// teeSPL (INTEGER).
    pub const TEE_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 2];
    /// snpSPL (INTEGER).
    pub const SNP_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 3];
    /// spl4..spl7, reserved (INTEGER 0).
    pub const RESERVED_SPL: [&[u64]; 4] = [
        &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 4],
        &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 5],
        &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 6],
        &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 7],
    ];
    /// ucodeSPL (INTEGER).
    pub const UCODE_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 8];
    /// fmcSPL (INTEGER, Turin and later).
    pub const FMC_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 9];
    /// hwID: the CHIP_ID bytes, raw (64 bytes; 8 on Turin and later).
    pub const HW_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 4];
}

/// The name AMD uses for a generation in certificate subjects (`ARK-Genoa`, `SEV-Genoa`).
pub fn generation_name(generation: Generation) -> &'static str {
    match generation {
        Generation::Milan => "Milan",
        Generation::Genoa => "Genoa",
        Generation::Turin => "Turin",
        Generation::Venice => "Venice",
    }
}

fn turin_like(generation: Generation) -> bool {
    matches!(generation, Generation::Turin | Generation::Venice)
}

/// The (CPUID family, model, stepping) the simulator reports for a generation.
pub fn cpuid(generation: Generation) -> (u8, u8, u8) {
    match generation {
        Generation::Milan => (0x19, 0x01, 0x01),
        Generation::Genoa => (0x19, 0x11, 0x01),
        Generation::Turin => (0x1A, 0x02, 0x01),
        Generation::Venice => (0x1A, 0x50, 0x00),
    }
}

/// An AMD-shaped subject/issuer name with this CN (`OU=Engineering, C=US, L=Santa Clara,
/// ST=CA, O=`[`TEST_ORGANIZATION`]`, CN=cn`), for building variant certificates in tests.
pub fn amd_name(cn: &str) -> Vec<u8> {
    x509::name(&[
        (Attr::OrganizationalUnit, "Engineering"),
        (Attr::Country, "US"),
        (Attr::Locality, "Santa Clara"),
        (Attr::State, "CA"),
        (Attr::Organization, TEST_ORGANIZATION),
        (Attr::CommonName, cn),
    ])
}

const NOT_BEFORE: Time = Time::date(2024, 1, 1);
const CA_NOT_AFTER: Time = Time::date(2049, 1, 1);
const VCEK_NOT_AFTER: Time = Time::date(2031, 1, 1);

/// The signing keys of the simulated AMD PKI.
#[derive(Clone, Debug)]
pub struct SnpKeys {
    /// AMD Root Key (self-signed ARK certificate).
    pub ark: p384::ecdsa::SigningKey,
    /// AMD SEV Key (signed by the ARK).
    pub ask: p384::ecdsa::SigningKey,
    /// Versioned Chip Endorsement Key (signed by the ASK), which signs reports.
    pub vcek: p384::ecdsa::SigningKey,
}

impl SnpKeys {
    /// The deterministic keys: labels `snp/<Generation>/ark`, `…/ask`, `…/vcek`.
    pub fn from_seed(seed: &[u8], generation: Generation) -> Self {
        let g = generation_name(generation);
        SnpKeys {
            ark: keys::p384_key(seed, &alloc::format!("snp/{g}/ark")),
            ask: keys::p384_key(seed, &alloc::format!("snp/{g}/ask")),
            vcek: keys::p384_key(seed, &alloc::format!("snp/{g}/vcek")),
        }
    }
}

/// The ARK certificate (self-signed, `CN=ARK-<Generation>`).
pub fn ark_certificate(keys: &SnpKeys, generation: Generation) -> Vec<u8> {
    let name = amd_name(&alloc::format!("ARK-{}", generation_name(generation)));
    let serial = serial_of(&keys.ark);
    x509::certificate(
        &CertSpec {
            serial: &serial,
            issuer: &name,
            subject: &name,
            not_before: NOT_BEFORE,
            not_after: CA_NOT_AFTER,
            extensions: &[
                Extension::basic_constraints(true, None),
                Extension::key_usage((1 << 5) | (1 << 6)),
            ],
        },
        SubjectKey::P384(keys.ark.verifying_key()),
        IssuerKey::P384(&keys.ark),
    )
}

/// The ASK certificate (`CN=SEV-<Generation>`, signed by the ARK).
pub fn ask_certificate(keys: &SnpKeys, generation: Generation) -> Vec<u8> {
    let g = generation_name(generation);
    let serial = serial_of(&keys.ask);
    x509::certificate(
        &CertSpec {
            serial: &serial,
            issuer: &amd_name(&alloc::format!("ARK-{g}")),
            subject: &amd_name(&alloc::format!("SEV-{g}")),
            not_before: NOT_BEFORE,
            not_after: CA_NOT_AFTER,
            extensions: &[
                Extension::basic_constraints(true, Some(0)),
                Extension::key_usage((1 << 5) | (1 << 6)),
            ],
        },
        SubjectKey::P384(keys.ask.verifying_key()),
        IssuerKey::P384(&keys.ark),
    )
}

/// A VCEK certificate (`CN=SEV-VCEK`, signed by the ASK) carrying AMD's extensions for this TCB
/// and chip: the SPLs as INTEGERs, hwID as the raw CHIP_ID (8 bytes on Turin and later).
pub fn vcek_certificate(
    keys: &SnpKeys,
    generation: Generation,
    tcb: &TcbVersion,
    chip_id: &[u8; 64],
) -> Vec<u8> {
    let g = generation_name(generation);
    let int = |v: u8| w::integer_u64(u64::from(v));
    let mut exts = alloc::vec![
        Extension::new(vcek_oid::STRUCT_VERSION, w::integer_u64(0)),
        Extension::new(
            vcek_oid::PRODUCT_NAME,
            w::ia5_string(&alloc::format!("{g}-B0"))
        ),
        Extension::new(vcek_oid::BL_SPL, int(tcb.bootloader)),
        Extension::new(vcek_oid::TEE_SPL, int(tcb.tee)),
    ];
    for arc in vcek_oid::RESERVED_SPL {
        exts.push(Extension::new(arc, int(0)));
    }
    exts.push(Extension::new(vcek_oid::SNP_SPL, int(tcb.snp)));
    exts.push(Extension::new(vcek_oid::UCODE_SPL, int(tcb.microcode)));
    let hw_id: &[u8] = if turin_like(generation) {
        exts.push(Extension::new(vcek_oid::FMC_SPL, int(tcb.fmc.unwrap_or(0))));
        &chip_id[..8]
    } else {
        &chip_id[..]
    };
    exts.push(Extension::new(vcek_oid::HW_ID, hw_id.to_vec()));
    let serial = serial_of(&keys.vcek);
    x509::certificate(
        &CertSpec {
            serial: &serial,
            issuer: &amd_name(&alloc::format!("SEV-{g}")),
            subject: &amd_name("SEV-VCEK"),
            not_before: NOT_BEFORE,
            not_after: VCEK_NOT_AFTER,
            extensions: &exts,
        },
        SubjectKey::P384(keys.vcek.verifying_key()),
        IssuerKey::P384(&keys.ask),
    )
}

fn serial_of(key: &p384::ecdsa::SigningKey) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(keys::p384_point(key.verifying_key()))[..16].to_vec()
}

/// The trust anchors a verifier needs for `seed` and `generation`: (ARK DER, ASK DER).
pub fn roots(seed: &[u8], generation: Generation) -> (Vec<u8>, Vec<u8>) {
    let k = SnpKeys::from_seed(seed, generation);
    (
        ark_certificate(&k, generation),
        ask_certificate(&k, generation),
    )
}

/// What [`SnpSim::cert_table`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertTableFault {
    /// A well-formed table (VCEK, plus ARK and ASK when configured).
    #[default]
    None,
    /// No certificates at all (the host supplies none: empty `auxblob`, `cert_chain: null`).
    Missing,
    /// A table whose VCEK entry runs past the end of the buffer.
    Malformed,
    /// A well-formed table padded with a 33 KiB `OTHER` entry: larger than configfs-tsm's
    /// 32 KiB blob limit and the kernel's 16 KiB certificate buffer.
    Oversized,
}

/// Fault knobs (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnpFaults {
    /// Flip a bit of the signature's R after signing.
    pub corrupt_signature: bool,
    /// Write this VERSION into the report after laying it out for `SnpConfig::version`
    /// (signed as such).
    pub force_version: Option<u32>,
    /// Write this VMPL into the report whatever was requested (signed as such).
    pub force_vmpl: Option<u32>,
    /// The certificate table's shape.
    pub cert_table: CertTableFault,
}

/// Everything a simulated SNP platform and guest are configured with. Build one with
/// [`SnpConfig::from_seed`] (or [`Default`]: Genoa, [`keys::DEFAULT_SEED`]) and change fields.
#[derive(Clone, Debug)]
pub struct SnpConfig {
    /// CPU generation: decides CPUID fields, TCB layout, certificate names.
    pub generation: Generation,
    /// Report layout version: 2, 3 (default) or 5 (4 is laid out like 3).
    pub version: u32,
    /// The PKI keys (deterministic from the seed by default; any keys may be put here).
    pub keys: SnpKeys,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// POLICY (default: SMT allowed, the must-be-one bit, ABI 0.0).
    pub policy: u64,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// MEASUREMENT (default: derived from the seed, label `snp/measurement`).
    pub measurement: [u8; 48],
    /// HOST_DATA (CoCo: the init-data digest regularized to 32 bytes; default zero).
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: [u8; 48],
    /// CHIP_ID (default: derived from the seed; on Turin and later only the first 8 bytes).
    pub chip_id: [u8; 64],
    /// The TCB: REPORTED, COMMITTED, LAUNCH and CURRENT TCB, and the VCEK's SPL extensions.
    pub tcb: TcbVersion,
    /// CURRENT/COMMITTED firmware version.
    pub firmware: FirmwareVersion,
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// The guest's own VMPL (`privlevel_floor`): a report for a lower VMPL is refused.
    pub vmpl_floor: u32,
    /// LAUNCH/CURRENT_MIT_VECTOR (version 5 only).
    pub mit_vectors: (u64, u64),
    /// Put ARK and ASK in the certificate table too (hosts usually provide only the VCEK).
    pub include_ca_certs: bool,
    /// Fault knobs.
    pub faults: SnpFaults,
}

impl SnpConfig {
    /// A typical guest on a `generation` platform whose keys and identifiers come from `seed`.
    pub fn from_seed(seed: &[u8], generation: Generation) -> Self {
        let mut chip_id: [u8; 64] = keys::derive_array(seed, "snp/chip_id");
        if turin_like(generation) {
            chip_id[8..].fill(0);
        }
        let tcb = match generation {
            Generation::Milan => TcbVersion {
                fmc: None,
                bootloader: 4,
                tee: 0,
                snp: 24,
                microcode: 219,
            },
            Generation::Genoa => TcbVersion {
                fmc: None,
                bootloader: 10,
                tee: 0,
                snp: 23,
                microcode: 84,
            },
            Generation::Turin | Generation::Venice => TcbVersion {
                fmc: Some(1),
                bootloader: 1,
                tee: 1,
                snp: 4,
                microcode: 72,
            },
        };
        SnpConfig {
            generation,
            version: 3,
            keys: SnpKeys::from_seed(seed, generation),
            guest_svn: 0,
            policy: policy::SMT | policy::RESERVED_ONE,
            family_id: [0; 16],
            image_id: [0; 16],
            measurement: keys::derive_array(seed, "snp/measurement"),
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            chip_id,
            tcb,
            firmware: FirmwareVersion {
                major: 1,
                minor: 55,
                build: 40,
            },
            platform_info: 0x25,
            vmpl_floor: 0,
            mit_vectors: (0, 0),
            include_ca_certs: false,
            faults: SnpFaults::default(),
        }
    }
}

impl Default for SnpConfig {
    fn default() -> Self {
        SnpConfig::from_seed(keys::DEFAULT_SEED, Generation::Genoa)
    }
}

/// A simulated SNP platform: the configuration and the certificates issued for it.
#[derive(Clone, Debug)]
pub struct SnpSim {
    config: SnpConfig,
    ark: Vec<u8>,
    ask: Vec<u8>,
    vcek: Vec<u8>,
    report_id: [u8; 32],
}

impl SnpSim {
    /// Issues the certificates for `config`.
    pub fn new(config: SnpConfig) -> Self {
        let g = config.generation;
        let ark = ark_certificate(&config.keys, g);
        let ask = ask_certificate(&config.keys, g);
        let vcek = vcek_certificate(&config.keys, g, &config.tcb, &config.chip_id);
        let report_id = {
            let mut id = [0u8; 32];
            let point = keys::p384_point(config.keys.vcek.verifying_key());
            id.copy_from_slice(&keys::derive_bytes(&point, "snp/report_id", 32));
            id
        };
        SnpSim {
            config,
            ark,
            ask,
            vcek,
            report_id,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SnpConfig {
        &self.config
    }

    /// The fault knobs, to change between reports.
    pub fn faults_mut(&mut self) -> &mut SnpFaults {
        &mut self.config.faults
    }

    /// The ARK certificate (DER): a verifier's trust anchor.
    pub fn ark_der(&self) -> &[u8] {
        &self.ark
    }

    /// The ASK certificate (DER).
    pub fn ask_der(&self) -> &[u8] {
        &self.ask
    }

    /// The VCEK certificate (DER).
    pub fn vcek_der(&self) -> &[u8] {
        &self.vcek
    }

    /// An attestation report for `user_data` requested at `vmpl`, laid out as
    /// `SnpConfig::version` and signed by the VCEK (ECDSA P-384 over SHA-384 of bytes
    /// 0..0x2A0), with the fault knobs applied.
    ///
    /// Errors like the firmware: a VMPL above 3 or below the guest's own
    /// ([`SimError::Vmpl`]); a version the layout does not know ([`SimError::Report`]).
    pub fn report(&self, user_data: &[u8; 64], vmpl: u32) -> Result<[u8; REPORT_LEN], SimError> {
        let c = &self.config;
        if vmpl > 3 || vmpl < c.vmpl_floor {
            return Err(SimError::Vmpl {
                requested: vmpl,
                floor: c.vmpl_floor,
            });
        }
        let (fam, model, step) = cpuid(c.generation);
        let v3 = c.version >= 3;
        let v5 = c.version >= 5;
        let repr = ReportRepr {
            version: c.version,
            guest_svn: c.guest_svn,
            policy: c.policy,
            family_id: c.family_id,
            image_id: c.image_id,
            vmpl,
            sig_algo: 1,
            current_tcb: c.tcb,
            plat_info: c.platform_info,
            key_info: 0, // signed by the VCEK
            report_data: *user_data,
            measurement: c.measurement,
            host_data: c.host_data,
            id_key_digest: c.id_key_digest,
            author_key_digest: c.author_key_digest,
            report_id: self.report_id,
            report_id_ma: [0xff; 32],
            reported_tcb: c.tcb,
            cpuid_fam_id: v3.then_some(fam),
            cpuid_mod_id: v3.then_some(model),
            cpuid_step: v3.then_some(step),
            chip_id: c.chip_id,
            committed_tcb: c.tcb,
            current: c.firmware,
            committed: c.firmware,
            launch_tcb: c.tcb,
            launch_mit_vector: v5.then_some(c.mit_vectors.0),
            current_mit_vector: v5.then_some(c.mit_vectors.1),
            signature: SignatureRepr {
                r: [0; 72],
                s: [0; 72],
            },
        };
        let mut raw = repr.emit().map_err(SimError::Report)?;
        if let Some(v) = c.faults.force_version {
            raw[field::VERSION].copy_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = c.faults.force_vmpl {
            raw[field::VMPL].copy_from_slice(&v.to_le_bytes());
        }
        let sig: p384::ecdsa::Signature = c.keys.vcek.sign(&raw[field::SIGNED]);
        let fixed: [u8; 96] = sig.to_bytes().into();
        let (mut r, s) = signature_fields_from_p384(&fixed);
        if c.faults.corrupt_signature {
            r[0] ^= 1;
        }
        raw[field::SIGNATURE_R].copy_from_slice(&r);
        raw[field::SIGNATURE_S].copy_from_slice(&s);
        Ok(raw)
    }

    /// The GHCB certificate table the host hands out with extended reports (`auxblob`):
    /// the VCEK, preceded by ARK and ASK if `include_ca_certs`; shaped by
    /// `faults.cert_table` (empty for [`CertTableFault::Missing`]).
    pub fn cert_table(&self) -> Vec<u8> {
        let mut entries: Vec<(CertType, &[u8])> = Vec::new();
        if self.config.include_ca_certs {
            entries.push((CertType::Ark, &self.ark));
            entries.push((CertType::Ask, &self.ask));
        }
        entries.push((CertType::Vcek, &self.vcek));
        match self.config.faults.cert_table {
            CertTableFault::None => CertTable::build(&entries),
            CertTableFault::Missing => Vec::new(),
            CertTableFault::Malformed => {
                let mut table = CertTable::build(&entries);
                // The last entry (the VCEK) claims 4 KiB more than the buffer holds.
                let base = (entries.len() - 1) * crate::snp::CERT_TABLE_ENTRY_LEN;
                let len = self.vcek.len() as u32 + 4096;
                table[base + 20..base + 24].copy_from_slice(&len.to_le_bytes());
                table
            }
            CertTableFault::Oversized => {
                let filler = alloc::vec![0x5a; 33 * 1024];
                entries.push((CertType::Other([0x5a; 16]), &filler));
                CertTable::build(&entries)
            }
        }
    }

    /// The evidence JSON (`{"attestation_report", "cert_chain"}`) the agent would send for
    /// `report_data`, at VMPL 0 (or the floor), with this simulator's certificate table.
    pub fn evidence_json(&self, report_data: &[u8; 64]) -> Result<Value, SimError> {
        let raw = self.report(report_data, self.config.vmpl_floor)?;
        let report = Report::new_checked(&raw).map_err(SimError::Report)?;
        let table = self.cert_table();
        let table = if table.is_empty() {
            None
        } else {
            Some(CertTable::new_checked(&table).map_err(SimError::CertTable)?)
        };
        Ok(evidence_json(&report, table.as_ref()))
    }

    /// A one-line description for logs.
    pub fn describe(&self) -> String {
        alloc::format!(
            "simulated SEV-SNP {} report v{} (test keys, {})",
            generation_name(self.config.generation),
            self.config.version,
            TEST_ORGANIZATION
        )
    }
}
