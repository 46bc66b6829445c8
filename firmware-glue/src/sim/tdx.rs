//! Simulated Intel TDX quoting: a test PCK chain shaped like Intel's (SGX Root CA → PCK
//! Platform CA → PCK certificate, ECDSA P-256), a QE report signed by the PCK key that binds
//! the attestation key, and DCAP TD quotes v4/v5 signed by that attestation key. Also the
//! TDREPORT the `/dev/tdx_guest` ioctl returns.
//!
//! ```
//! use firmware_glue::sim::tdx::{TdxConfig, TdxSim};
//! use firmware_glue::tdx::Quote;
//! let sim = TdxSim::new(TdxConfig::from_seed(b"my seed"));
//! let quote = sim.quote(&[7; 64]);
//! assert_eq!(Quote::new_checked(&quote)?.report_data(), &[7; 64]);
//! # Ok::<(), firmware_glue::tdx::QuoteError>(())
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use p256::ecdsa::signature::Signer;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384};

use super::der_writer::{self as w, Time};
use super::keys;
use super::x509::{self, Attr, CertSpec, Extension, IssuerKey, SubjectKey};
use crate::tdx::{
    ATT_KEY_TYPE_ECDSA_P256, BodyKind, CERT_DATA_PCK_CHAIN, CERT_DATA_QE_REPORT, TDREPORT_LEN,
    TEE_TYPE_TDX, evidence_json, field,
};

/// `O=` of every simulated Intel certificate: marks them as test certificates.
pub const TEST_ORGANIZATION: &str = "sealgate test (not Intel Corporation)";

/// Intel's QE vendor ID (`939a7233-f79c-4ca9-940a-0db3957f0607`), as in real quotes.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// MRSIGNER of Intel's TD quoting enclave, as real QE reports carry it.
pub const INTEL_TDQE_MRSIGNER: [u8; 32] = [
    0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34, 0xa7, 0xfc, 0x43, 0xed, 0x03,
    0x0f, 0x7c, 0x15, 0x63, 0xf1, 0xba, 0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5,
];

/// The SGX extensions OID of PCK certificates (1.2.840.113741.1.13.1).
pub const SGX_EXTENSIONS_OID: &[u64] = &[1, 2, 840, 113741, 1, 13, 1];

/// Subject CN of the root CA.
pub const ROOT_CN: &str = "Intel SGX Root CA";
/// Subject CN of the intermediate (Trustee tells platform from processor CA by it).
pub const PLATFORM_CA_CN: &str = "Intel SGX PCK Platform CA";
/// Subject CN of the PCK certificate.
pub const PCK_CN: &str = "Intel SGX PCK Certificate";

/// Offsets in the QE report (an SGX `REPORT_BODY`, 384 bytes).
pub mod qe_report {
    use core::ops::Range;
    /// CPUSVN.
    pub const CPUSVN: Range<usize> = 0..16;
    /// MISCSELECT (u32).
    pub const MISCSELECT: Range<usize> = 16..20;
    /// ATTRIBUTES.
    pub const ATTRIBUTES: Range<usize> = 48..64;
    /// MRENCLAVE.
    pub const MRENCLAVE: Range<usize> = 64..96;
    /// MRSIGNER.
    pub const MRSIGNER: Range<usize> = 128..160;
    /// ISVPRODID (u16).
    pub const ISVPRODID: Range<usize> = 256..258;
    /// ISVSVN (u16).
    pub const ISVSVN: Range<usize> = 258..260;
    /// REPORTDATA: SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero bytes.
    pub const REPORTDATA: Range<usize> = 320..384;
    /// Length.
    pub const LEN: usize = 384;
}

fn intel_name(cn: &str) -> Vec<u8> {
    x509::name(&[
        (Attr::CommonName, cn),
        (Attr::Organization, TEST_ORGANIZATION),
        (Attr::Locality, "Santa Clara"),
        (Attr::State, "CA"),
        (Attr::Country, "US"),
    ])
}

/// The signing keys of the simulated DCAP chain (all P-256).
#[derive(Clone, Debug)]
pub struct TdxKeys {
    /// SGX Root CA (self-signed).
    pub root: p256::ecdsa::SigningKey,
    /// PCK Platform CA (signed by the root).
    pub platform_ca: p256::ecdsa::SigningKey,
    /// PCK (signed by the platform CA); signs the QE report.
    pub pck: p256::ecdsa::SigningKey,
    /// The quoting enclave's attestation key; signs quotes.
    pub attestation: p256::ecdsa::SigningKey,
}

impl TdxKeys {
    /// Deterministic keys: labels `tdx/root`, `tdx/platform-ca`, `tdx/pck`, `tdx/attestation-key`.
    pub fn from_seed(seed: &[u8]) -> Self {
        TdxKeys {
            root: keys::p256_key(seed, "tdx/root"),
            platform_ca: keys::p256_key(seed, "tdx/platform-ca"),
            pck: keys::p256_key(seed, "tdx/pck"),
            attestation: keys::p256_key(seed, "tdx/attestation-key"),
        }
    }
}

fn serial_of(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    Sha256::digest(keys::p256_point(key.verifying_key()))[..20].to_vec()
}

const NOT_BEFORE: Time = Time::date(2024, 1, 1);

/// The root CA certificate (self-signed, `CN=Intel SGX Root CA`): a verifier's trust anchor.
pub fn root_certificate(keys: &TdxKeys) -> Vec<u8> {
    let name = intel_name(ROOT_CN);
    x509::certificate(
        &CertSpec {
            serial: &serial_of(&keys.root),
            issuer: &name,
            subject: &name,
            not_before: NOT_BEFORE,
            not_after: Time::date(2049, 12, 31),
            extensions: &[
                Extension::key_usage((1 << 5) | (1 << 6)),
                Extension::basic_constraints(true, Some(1)),
            ],
        },
        SubjectKey::P256(keys.root.verifying_key()),
        IssuerKey::P256(&keys.root),
    )
}

/// The PCK Platform CA certificate (signed by the root).
pub fn platform_ca_certificate(keys: &TdxKeys) -> Vec<u8> {
    x509::certificate(
        &CertSpec {
            serial: &serial_of(&keys.platform_ca),
            issuer: &intel_name(ROOT_CN),
            subject: &intel_name(PLATFORM_CA_CN),
            not_before: NOT_BEFORE,
            not_after: Time::date(2033, 1, 1),
            extensions: &[
                Extension::key_usage((1 << 5) | (1 << 6)),
                Extension::basic_constraints(true, Some(0)),
            ],
        },
        SubjectKey::P256(keys.platform_ca.verifying_key()),
        IssuerKey::P256(&keys.root),
    )
}

/// The platform identity a PCK certificate's SGX extensions carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckIdentity {
    /// PPID (16 bytes).
    pub ppid: [u8; 16],
    /// The 16 SGX TCB component SVNs.
    pub tcb_components: [u8; 16],
    /// PCESVN.
    pub pcesvn: u16,
    /// CPUSVN.
    pub cpusvn: [u8; 16],
    /// PCE-ID.
    pub pceid: [u8; 2],
    /// FMSPC (what a real verifier looks TCB info up by).
    pub fmspc: [u8; 6],
    /// SGX type (0 standard, 1 scalable, 2 scalable with integrity).
    pub sgx_type: u8,
    /// Platform instance ID (platform CA certificates only).
    pub platform_instance_id: [u8; 16],
}

impl PckIdentity {
    /// A plausible identity with seed-derived PPID and instance ID.
    pub fn from_seed(seed: &[u8]) -> Self {
        PckIdentity {
            ppid: keys::derive_array(seed, "tdx/ppid"),
            tcb_components: [5, 5, 13, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
            pcesvn: 11,
            cpusvn: [5, 5, 13, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
            pceid: [0, 0],
            fmspc: [0x50, 0x80, 0x6f, 0x00, 0x00, 0x00],
            sgx_type: 1,
            platform_instance_id: keys::derive_array(seed, "tdx/platform-instance-id"),
        }
    }

    /// The DER of the SGX extensions (`SEQUENCE { ppid, tcb, pceid, fmspc, sgxType,
    /// platformInstanceId, configuration }`), as in Intel's PCK certificate profile.
    pub fn sgx_extensions(&self) -> Vec<u8> {
        let arc = |tail: &[u64]| {
            let mut a = SGX_EXTENSIONS_OID.to_vec();
            a.extend_from_slice(tail);
            w::oid(&a)
        };
        let pair = |tail: &[u64], value: Vec<u8>| w::sequence(&[&arc(tail), &value]);
        let mut tcb: Vec<Vec<u8>> = (0..16)
            .map(|i| {
                pair(
                    &[2, i as u64 + 1],
                    w::integer_u64(u64::from(self.tcb_components[i])),
                )
            })
            .collect();
        tcb.push(pair(&[2, 17], w::integer_u64(u64::from(self.pcesvn))));
        tcb.push(pair(&[2, 18], w::octet_string(&self.cpusvn)));
        let tcb_refs: Vec<&[u8]> = tcb.iter().map(Vec::as_slice).collect();
        let config = w::sequence(&[
            &pair(&[7, 1], w::boolean(false)),
            &pair(&[7, 2], w::boolean(true)),
            &pair(&[7, 3], w::boolean(true)),
        ]);
        w::sequence(&[
            &pair(&[1], w::octet_string(&self.ppid)),
            &pair(&[2], w::sequence(&tcb_refs)),
            &pair(&[3], w::octet_string(&self.pceid)),
            &pair(&[4], w::octet_string(&self.fmspc)),
            &pair(&[5], w::enumerated(u64::from(self.sgx_type))),
            &pair(&[6], w::octet_string(&self.platform_instance_id)),
            &pair(&[7], config),
        ])
    }
}

/// The PCK certificate (signed by the platform CA) with the SGX extensions.
pub fn pck_certificate(keys: &TdxKeys, identity: &PckIdentity) -> Vec<u8> {
    x509::certificate(
        &CertSpec {
            serial: &serial_of(&keys.pck),
            issuer: &intel_name(PLATFORM_CA_CN),
            subject: &intel_name(PCK_CN),
            not_before: NOT_BEFORE,
            not_after: Time::date(2031, 1, 1),
            extensions: &[
                Extension::key_usage(0b11),
                Extension::basic_constraints(false, None),
                Extension::new(SGX_EXTENSIONS_OID, identity.sgx_extensions()),
            ],
        },
        SubjectKey::P256(keys.pck.verifying_key()),
        IssuerKey::P256(&keys.platform_ca),
    )
}

/// The trust anchor a verifier needs for `seed`: the root CA certificate (DER).
pub fn root(seed: &[u8]) -> Vec<u8> {
    root_certificate(&TdxKeys::from_seed(seed))
}

/// Fault knobs (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TdxFaults {
    /// Flip a bit of the quote signature (attestation key over header ‖ body).
    pub corrupt_quote_signature: bool,
    /// Flip a bit of the QE report signature (PCK key over the QE report).
    pub corrupt_qe_report_signature: bool,
    /// QE REPORTDATA that does not bind the attestation key (hash of other bytes).
    pub unbound_attestation_key: bool,
    /// Write this version into the header (after the layout, before signing).
    pub force_version: Option<u16>,
}

/// Everything a simulated TD and its quoting enclave are configured with. Build one with
/// [`TdxConfig::from_seed`] (or [`Default`]) and change fields.
#[derive(Clone, Debug)]
pub struct TdxConfig {
    /// Quote version: 4 (default) or 5.
    pub quote_version: u16,
    /// Body of a v5 quote: TDX 1.0 (type 2, default) or TDX 1.5 (type 3). v4 is always 1.0.
    pub body: BodyKind,
    /// The chain and attestation keys.
    pub keys: TdxKeys,
    /// SGX extensions of the PCK certificate.
    pub pck_identity: PckIdentity,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM (zero for Intel's TDX module).
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TDATTRIBUTES (default: SEPT_VE_DISABLE, bit 28).
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD (default: derived from the seed, label `tdx/mrtd`).
    pub mr_td: [u8; 48],
    /// MRCONFIGID (CoCo: the init-data digest regularized to 48 bytes; default zero).
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..3 (default: what [`TdxConfig::ccel`] replays to; RTMR3 zero).
    pub rtmr: [[u8; 48]; 4],
    /// The CCEL log area the firmware publishes (`/sys/firmware/acpi/tables/data/CCEL`):
    /// default [`sample_ccel`] of the seed.
    pub ccel: Vec<u8>,
    /// TEE_TCB_SVN2 (TDX 1.5 body).
    pub tee_tcb_svn2: [u8; 16],
    /// MRSERVICETD (TDX 1.5 body).
    pub mr_servicetd: [u8; 48],
    /// Quote header user data (the first 16 bytes identify the QE's platform).
    pub header_user_data: [u8; 20],
    /// QE authentication data (32 bytes in real quotes).
    pub qe_auth_data: Vec<u8>,
    /// Fault knobs.
    pub faults: TdxFaults,
}

impl TdxConfig {
    /// A typical TD whose keys and measurements come from `seed`.
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut user = [0u8; 20];
        user[..16].copy_from_slice(&keys::derive_bytes(seed, "tdx/qe-id", 16));
        TdxConfig {
            quote_version: 4,
            body: BodyKind::Tdx10,
            keys: TdxKeys::from_seed(seed),
            pck_identity: PckIdentity::from_seed(seed),
            tee_tcb_svn: [5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            mr_seam: keys::derive_array(seed, "tdx/mrseam"),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: (1u64 << 28).to_le_bytes(),
            xfam: 0x61ae7u64.to_le_bytes(),
            mr_td: keys::derive_array(seed, "tdx/mrtd"),
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: ccel_rtmrs(&sample_ccel(seed)),
            ccel: sample_ccel(seed),
            tee_tcb_svn2: [5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            mr_servicetd: [0; 48],
            header_user_data: user,
            qe_auth_data: (0u8..32).collect(),
            faults: TdxFaults::default(),
        }
    }
}

impl Default for TdxConfig {
    fn default() -> Self {
        TdxConfig::from_seed(keys::DEFAULT_SEED)
    }
}

/// Size of the simulated CCEL log area (the rest after the log is 0xFF, as TDVF leaves it).
pub const CCEL_AREA_LEN: usize = 4096;

/// A small, well-formed CCEL log area as TDVF writes one: the SpecID header (SHA-384), then
/// one event per RTMR0..2 (firmware blob, kernel, kernel command line; each SHA-384 digest
/// is the hash of its event data, which names the seed), then 0xFF up to
/// [`CCEL_AREA_LEN`].
pub fn sample_ccel(seed: &[u8]) -> Vec<u8> {
    use sealgate_core::eventlog::{self as el, ALG_SHA384};
    let mut log = el::spec_id_header(&[(ALG_SHA384, 48)]);
    let tag = |text: &[u8]| {
        let mut data = Vec::from(text);
        data.extend_from_slice(b" seed:");
        data.extend_from_slice(&keys::derive_bytes(seed, "tdx/ccel", 8));
        data
    };
    let events: [(u32, u32, Vec<u8>); 3] = [
        (1, el::EV_EFI_PLATFORM_FIRMWARE_BLOB2, tag(b"TDHOB")),
        (
            2,
            el::EV_EFI_BOOT_SERVICES_APPLICATION,
            tag(b"File(kernel)"),
        ),
        (
            3,
            el::EV_EVENT_TAG,
            el::tagged_event(0x8F3B_22ED, &tag(b"LOADED_IMAGE::LoadOptions")),
        ),
    ];
    for (mr, ty, data) in events {
        let digest: [u8; 48] = Sha384::digest(&data).into();
        log.extend(el::event2(mr, ty, &[(ALG_SHA384, &digest)], &data));
    }
    log.resize(CCEL_AREA_LEN.max(log.len() + 8), 0xFF);
    log
}

/// RTMR0..3 as a CCEL area replays (from zero).
pub fn ccel_rtmrs(ccel: &[u8]) -> [[u8; 48]; 4] {
    use sealgate_core::eventlog::{self as el, EventLog};
    el::trim_ccel(ccel)
        .ok()
        .and_then(|len| {
            let mut log = Vec::from(&ccel[..len]);
            log.extend_from_slice(&el::EL_END_FLAG);
            EventLog::parse(&log).ok()
        })
        .map(|l| l.replay())
        .unwrap_or([[0; 48]; 4])
}

/// A simulated TDX platform: the configuration and the certificates issued for it.
#[derive(Clone, Debug)]
pub struct TdxSim {
    config: TdxConfig,
    root: Vec<u8>,
    platform_ca: Vec<u8>,
    pck: Vec<u8>,
    mr_enclave: [u8; 32],
}

impl TdxSim {
    /// Issues the certificates for `config`.
    pub fn new(config: TdxConfig) -> Self {
        let root = root_certificate(&config.keys);
        let platform_ca = platform_ca_certificate(&config.keys);
        let pck = pck_certificate(&config.keys, &config.pck_identity);
        let mr_enclave = keys::derive_array(&root, "tdx/qe-mrenclave");
        TdxSim {
            config,
            root,
            platform_ca,
            pck,
            mr_enclave,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TdxConfig {
        &self.config
    }

    /// The fault knobs, to change between quotes.
    pub fn faults_mut(&mut self) -> &mut TdxFaults {
        &mut self.config.faults
    }

    /// Extends RTMR `index` (0..=3) by `digest` as the TDX module does (`SHA384(old ||
    /// digest)`): later quotes and TDREPORTs carry the new value. An index above 3 is ignored.
    pub fn extend_rtmr(&mut self, index: usize, digest: &[u8; 48]) {
        if let Some(r) = self.config.rtmr.get_mut(index) {
            let mut h = Sha384::new();
            h.update(*r);
            h.update(digest);
            *r = h.finalize().into();
        }
    }

    /// The root CA certificate (DER): a verifier's trust anchor.
    pub fn root_der(&self) -> &[u8] {
        &self.root
    }

    /// The PCK Platform CA certificate (DER).
    pub fn platform_ca_der(&self) -> &[u8] {
        &self.platform_ca
    }

    /// The PCK certificate (DER).
    pub fn pck_der(&self) -> &[u8] {
        &self.pck
    }

    /// The PCK certification data as quotes carry it: PEM PCK, platform CA, root (leaf first),
    /// followed by a NUL byte as Intel's quote library writes it.
    pub fn pck_chain_pem(&self) -> Vec<u8> {
        let mut out = String::new();
        for der in [&self.pck, &self.platform_ca, &self.root] {
            out.push_str(&x509::pem(der));
        }
        let mut out = out.into_bytes();
        out.push(0);
        out
    }

    /// The TD report body (584 bytes, or 648 for a v5 TDX 1.5 quote) for `report_data`.
    pub fn td_report_body(&self, report_data: &[u8; 64]) -> Vec<u8> {
        let c = &self.config;
        let mut b = Vec::with_capacity(648);
        b.extend_from_slice(&c.tee_tcb_svn);
        b.extend_from_slice(&c.mr_seam);
        b.extend_from_slice(&c.mr_signer_seam);
        b.extend_from_slice(&c.seam_attributes);
        b.extend_from_slice(&c.td_attributes);
        b.extend_from_slice(&c.xfam);
        b.extend_from_slice(&c.mr_td);
        b.extend_from_slice(&c.mr_config_id);
        b.extend_from_slice(&c.mr_owner);
        b.extend_from_slice(&c.mr_owner_config);
        for r in &c.rtmr {
            b.extend_from_slice(r);
        }
        b.extend_from_slice(report_data);
        if c.quote_version == 5 && c.body == BodyKind::Tdx15 {
            b.extend_from_slice(&c.tee_tcb_svn2);
            b.extend_from_slice(&c.mr_servicetd);
        }
        b
    }

    /// The QE report (SGX report body) binding the attestation key, unsigned.
    pub fn qe_report(&self) -> [u8; qe_report::LEN] {
        let c = &self.config;
        let mut r = [0u8; qe_report::LEN];
        r[qe_report::CPUSVN].copy_from_slice(&c.pck_identity.cpusvn);
        r[qe_report::ATTRIBUTES][0] = 0x15;
        r[qe_report::ATTRIBUTES][8] = 0xe7;
        r[qe_report::MRENCLAVE].copy_from_slice(&self.mr_enclave);
        r[qe_report::MRSIGNER].copy_from_slice(&INTEL_TDQE_MRSIGNER);
        r[qe_report::ISVPRODID].copy_from_slice(&2u16.to_le_bytes());
        r[qe_report::ISVSVN].copy_from_slice(&4u16.to_le_bytes());
        let mut h = Sha256::new();
        h.update(&self.attestation_key()[..]);
        h.update(&c.qe_auth_data);
        if c.faults.unbound_attestation_key {
            h.update(b"not the attestation key");
        }
        r[qe_report::REPORTDATA.start..qe_report::REPORTDATA.start + 32]
            .copy_from_slice(&h.finalize());
        r
    }

    /// The attestation public key `x ‖ y` as quotes carry it.
    pub fn attestation_key(&self) -> [u8; 64] {
        let point = keys::p256_point(self.config.keys.attestation.verifying_key());
        let mut out = [0u8; 64];
        out.copy_from_slice(&point[1..]);
        out
    }

    /// A DCAP TD quote (v4, or v5 per the configuration) for `report_data`: header, body,
    /// ECDSA P-256 signature by the attestation key over both, and the certification data
    /// (QE report signed by the PCK key, QE authentication data, PEM PCK chain).
    pub fn quote(&self, report_data: &[u8; 64]) -> Vec<u8> {
        let c = &self.config;
        let mut q = Vec::with_capacity(6 * 1024);
        q.extend_from_slice(&c.quote_version.to_le_bytes());
        q.extend_from_slice(&ATT_KEY_TYPE_ECDSA_P256.to_le_bytes());
        q.extend_from_slice(&TEE_TYPE_TDX.to_le_bytes());
        q.extend_from_slice(&[0; 4]);
        q.extend_from_slice(&INTEL_QE_VENDOR_ID);
        q.extend_from_slice(&c.header_user_data);
        let body = self.td_report_body(report_data);
        if c.quote_version == 5 {
            let body_type: u16 = if body.len() == 648 { 3 } else { 2 };
            q.extend_from_slice(&body_type.to_le_bytes());
            q.extend_from_slice(&(body.len() as u32).to_le_bytes());
        }
        q.extend_from_slice(&body);
        if let Some(v) = c.faults.force_version {
            q[0..2].copy_from_slice(&v.to_le_bytes());
        }

        let quote_sig: p256::ecdsa::Signature = c.keys.attestation.sign(&q);
        let mut quote_sig: [u8; 64] = quote_sig.to_bytes().into();
        if c.faults.corrupt_quote_signature {
            quote_sig[63] ^= 1;
        }
        let qe_report = self.qe_report();
        let qe_sig: p256::ecdsa::Signature = c.keys.pck.sign(&qe_report);
        let mut qe_sig: [u8; 64] = qe_sig.to_bytes().into();
        if c.faults.corrupt_qe_report_signature {
            qe_sig[63] ^= 1;
        }
        let chain = self.pck_chain_pem();

        let mut inner = Vec::new();
        inner.extend_from_slice(&qe_report);
        inner.extend_from_slice(&qe_sig);
        inner.extend_from_slice(&(c.qe_auth_data.len() as u16).to_le_bytes());
        inner.extend_from_slice(&c.qe_auth_data);
        inner.extend_from_slice(&CERT_DATA_PCK_CHAIN.to_le_bytes());
        inner.extend_from_slice(&(chain.len() as u32).to_le_bytes());
        inner.extend_from_slice(&chain);

        let mut sig_data = Vec::with_capacity(inner.len() + 134);
        sig_data.extend_from_slice(&quote_sig);
        sig_data.extend_from_slice(&self.attestation_key());
        sig_data.extend_from_slice(&CERT_DATA_QE_REPORT.to_le_bytes());
        sig_data.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        sig_data.extend_from_slice(&inner);

        q.extend_from_slice(&(sig_data.len() as u32).to_le_bytes());
        q.extend_from_slice(&sig_data);
        q
    }

    /// The TDX evidence JSON (`{"cc_eventlog": null, "quote": "<base64>"}`) for `report_data`.
    pub fn evidence_json(&self, report_data: &[u8; 64]) -> Value {
        evidence_json(&self.quote(report_data), None)
    }

    /// The 1024-byte TDREPORT `TDX_CMD_GET_REPORT0` would return for `report_data`
    /// (TDX 1.0 layout; MAC simulated, see the module documentation of [`super`]).
    pub fn tdreport(&self, report_data: &[u8; 64]) -> [u8; TDREPORT_LEN] {
        let c = &self.config;
        let mut r = [0u8; TDREPORT_LEN];
        r[field::REPORTTYPE].copy_from_slice(&[0x81, 0, 0, 0]);
        r[field::CPUSVN].copy_from_slice(&c.tee_tcb_svn);
        r[field::REPORTDATA].copy_from_slice(report_data);
        // TEE_TCB_INFO: VALID (8), TEE_TCB_SVN (16), MRSEAM (48), MRSIGNERSEAM (48), ATTRIBUTES (8)
        let tcb = field::TEE_TCB_INFO.start;
        r[tcb..tcb + 8].copy_from_slice(&[0xff, 0x01, 0, 0, 0, 0, 0, 0]);
        r[tcb + 8..tcb + 24].copy_from_slice(&c.tee_tcb_svn);
        r[tcb + 24..tcb + 72].copy_from_slice(&c.mr_seam);
        r[tcb + 72..tcb + 120].copy_from_slice(&c.mr_signer_seam);
        r[tcb + 120..tcb + 128].copy_from_slice(&c.seam_attributes);
        r[field::ATTRIBUTES].copy_from_slice(&c.td_attributes);
        r[field::XFAM].copy_from_slice(&c.xfam);
        r[field::MRTD].copy_from_slice(&c.mr_td);
        r[field::MRCONFIGID].copy_from_slice(&c.mr_config_id);
        r[field::MROWNER].copy_from_slice(&c.mr_owner);
        r[field::MROWNERCONFIG].copy_from_slice(&c.mr_owner_config);
        for (i, rtmr) in c.rtmr.iter().enumerate() {
            let off = field::RTMR0.start + 48 * i;
            r[off..off + 48].copy_from_slice(rtmr);
        }
        let tcb_hash = Sha384::digest(&r[field::TEE_TCB_INFO]);
        r[field::TEE_TCB_INFO_HASH].copy_from_slice(&tcb_hash);
        let info_hash = Sha384::digest(&r[field::ATTRIBUTES.start..TDREPORT_LEN]);
        r[field::TEE_INFO_HASH].copy_from_slice(&info_hash);
        let mut mac = Sha256::new();
        mac.update(keys::p256_point(c.keys.attestation.verifying_key()));
        mac.update(&r[..field::MAC.start]);
        r[field::MAC].copy_from_slice(&mac.finalize());
        r
    }

    /// A one-line description for logs.
    pub fn describe(&self) -> String {
        alloc::format!(
            "simulated TDX quote v{} (test keys, {})",
            self.config.quote_version,
            TEST_ORGANIZATION
        )
    }
}
