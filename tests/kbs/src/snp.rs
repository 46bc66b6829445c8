//! Trustee's `snp` verifier (`deps/verifier/src/snp/mod.rs` at 78962cd4), against
//! configurable trust anchors instead of AMD's built-in ARK/ASK, plus a small appraisal
//! policy (allowed measurements and HOST_DATA).
//!
//! Checks, in Trustee's order: the evidence deserializes (the report is re-encoded from the
//! JSON exactly as the `sev` crate does); version 3..=5; the CPU generation from
//! CPUID_FAM_ID/MOD_ID (Milan, Genoa, Turin); trust anchors for that generation; the
//! `cert_chain` (a provided ARK must be signed by the trusted ARK; missing ARK/ASK come from the
//! trust anchors; a VCEK or VLEK is required; `null` fails since the test KBS has no AMD KDS);
//! ARK self-signed, ASK by ARK, VCEK/VLEK by ASK; the report signature over bytes 0..0x2A0
//! with the VCEK/VLEK; REPORTED_TCB against the certificate's SPL extensions and the VCEK hwID
//! against CHIP_ID; VMPL 0; REPORT_DATA = regularize(binding, 64); HOST_DATA =
//! regularize(init-data digest, 32) when init-data was sent; then the policy.
//!
//! Deliberate differences from Trustee: certificate signatures are ECDSA only (AMD's real ARK
//! and ASK sign with RSA-PSS; the simulators use P-384 ECDSA); hwID is compared for every VCEK
//! (Trustee compares it only when the subject CN is exactly `VCEK`, which AMD's `SEV-VCEK`
//! never is); the certificate chain is bounded (64 entries, 32 KiB per certificate).

use crate::verifier::{Appraisal, EarStatus, Expected, TrustVector, Verifier};
use crate::x509::{self, hex};
use firmware_glue::EvidenceJsonError as JsonError;
use firmware_glue::der::{self, Certificate, oid, tag};
use firmware_glue::snp::{
    CertType, Generation, OwnedCert, ReportError, ReportRepr, Signature, parse_evidence_json,
};
use p384::ecdsa::signature::Verifier as _;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const MAX_CHAIN_ENTRIES: usize = 64;
const MAX_CERT_LEN: usize = 32 * 1024;

/// Trust anchors for one CPU generation (Trustee builds them in: `<gen>_ask_ark_asvk.pem`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpRoots {
    /// The ARK certificate (DER): the root of trust.
    pub ark: Vec<u8>,
    /// The ASK certificate (DER), used when the evidence carries none (the usual case).
    pub ask: Option<Vec<u8>>,
    /// The ASVK certificate (DER), the ASK of VLEKs, used when the evidence carries none.
    pub asvk: Option<Vec<u8>>,
}

/// What the appraisal accepts beyond Trustee's checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpPolicy {
    /// Allowed MEASUREMENTs; empty = any.
    pub measurements: Vec<[u8; 48]>,
    /// Allowed HOST_DATA values; empty = any (the init-data binding is checked regardless).
    pub host_data: Vec<[u8; 32]>,
}

impl SnpPolicy {
    /// Allows a MEASUREMENT given as 96 hex digits.
    pub fn allow_measurement_hex(&mut self, hex: &str) -> Result<(), String> {
        self.measurements.push(x509::unhex(hex)?);
        Ok(())
    }

    /// Allows a HOST_DATA value given as 64 hex digits.
    pub fn allow_host_data_hex(&mut self, hex: &str) -> Result<(), String> {
        self.host_data.push(x509::unhex(hex)?);
        Ok(())
    }
}

/// The `snp` verifier.
#[derive(Clone, Debug, Default)]
pub struct SnpVerifier {
    roots: HashMap<Generation, SnpRoots>,
    any_generation: Option<SnpRoots>,
    /// The appraisal policy.
    pub policy: SnpPolicy,
}

/// The generations Trustee's verifier knows.
pub const TRUSTEE_GENERATIONS: [Generation; 3] =
    [Generation::Milan, Generation::Genoa, Generation::Turin];

impl SnpVerifier {
    /// A verifier without trust anchors (every evidence fails) and `policy`.
    pub fn new(policy: SnpPolicy) -> Self {
        SnpVerifier {
            policy,
            ..SnpVerifier::default()
        }
    }

    /// Trusts `roots` for `generation` (or, with `None`, for any generation without its own).
    pub fn with_roots(mut self, generation: Option<Generation>, roots: SnpRoots) -> Self {
        match generation {
            Some(g) => {
                self.roots.insert(g, roots);
            }
            None => self.any_generation = Some(roots),
        }
        self
    }

    /// Trusts the ARK and ASK that `firmware_glue::sim` derives from `seed`, for Milan, Genoa
    /// and Turin.
    pub fn from_sim_seed(seed: &[u8], policy: SnpPolicy) -> Self {
        TRUSTEE_GENERATIONS
            .iter()
            .fold(SnpVerifier::new(policy), |v, g| {
                let (ark, ask) = firmware_glue::sim::snp::roots(seed, *g);
                v.with_roots(
                    Some(*g),
                    SnpRoots {
                        ark,
                        ask: Some(ask),
                        asvk: None,
                    },
                )
            })
    }

    fn roots_for(&self, generation: Generation) -> Option<&SnpRoots> {
        self.roots.get(&generation).or(self.any_generation.as_ref())
    }
}

/// Trustee's `get_processor_generation` (its own table: Genoa models 0xA0..0xAE).
fn processor_generation(repr: &ReportRepr) -> Result<Generation, String> {
    let family = repr
        .cpuid_fam_id
        .ok_or("Attestation report version 3+ is missing CPU family ID")?;
    let model = repr
        .cpuid_mod_id
        .ok_or("Attestation report version 3+ is missing CPU model ID")?;
    match (family, model) {
        (0x19, 0x00..=0x0F) => Ok(Generation::Milan),
        (0x19, 0x10..=0x1F | 0xA0..0xAF) => Ok(Generation::Genoa),
        (0x1A, 0x00..=0x11) => Ok(Generation::Turin),
        (0x19 | 0x1A, _) => Err("Processor model not supported".into()),
        _ => Err("Processor family not supported".into()),
    }
}

enum VekType {
    Vcek,
    Vlek,
}

/// The endorsement key certificate after the chain checks (Trustee's `Chain::verify`).
fn verified_vek<'a>(
    chain: &'a [OwnedCert],
    roots: &'a SnpRoots,
) -> Result<(Certificate<'a>, VekType), String> {
    if chain.len() > MAX_CHAIN_ENTRIES {
        return Err(format!(
            "cert_chain has {} entries (at most {MAX_CHAIN_ENTRIES})",
            chain.len()
        ));
    }
    let trusted_ark = x509::parse(&roots.ark, "trusted ARK")?;
    let mut ark = None;
    let mut ask = None;
    let mut vek: Option<(Certificate<'a>, VekType)> = None;
    for cert in chain {
        if cert.data.len() > MAX_CERT_LEN {
            return Err(format!(
                "cert_chain {} entry is {} bytes (at most {MAX_CERT_LEN})",
                cert.cert_type,
                cert.data.len()
            ));
        }
        match cert.cert_type {
            CertType::Ark => {
                let provided = x509::parse(&cert.data, "provided ARK")?;
                x509::check_signed_by(&provided, &trusted_ark, "Provided ARK")
                    .map_err(|e| format!("Provided ARK has an invalid signature: {e}"))?;
                ark = Some(provided);
            }
            CertType::Ask => ask = Some(x509::parse(&cert.data, "provided ASK")?),
            CertType::Vcek if vek.is_none() => {
                vek = Some((x509::parse(&cert.data, "VCEK")?, VekType::Vcek));
            }
            CertType::Vlek if vek.is_none() => {
                vek = Some((x509::parse(&cert.data, "VLEK")?, VekType::Vlek));
            }
            _ => {}
        }
    }
    let (vek, vek_type) = vek.ok_or("If a cert chain is provided, it must include a VCEK/VLEK")?;
    let ark = ark.unwrap_or(trusted_ark);
    let ask = match (ask, &vek_type) {
        (Some(ask), _) => ask,
        (None, VekType::Vcek) => x509::parse(
            roots
                .ask
                .as_deref()
                .ok_or("the evidence carries no ASK and the test KBS trusts none")?,
            "trusted ASK",
        )?,
        (None, VekType::Vlek) => x509::parse(
            roots.asvk.as_deref().ok_or(
                "the evidence carries no ASVK (ASK) for its VLEK and the test KBS trusts none",
            )?,
            "trusted ASVK",
        )?,
    };
    let context = "Certificate chain provided by user failed to verify";
    x509::check_signed_by(&ark, &ark, "ARK (self-signed)")
        .map_err(|e| format!("{context}: {e}"))?;
    x509::check_signed_by(&ask, &ark, "ASK signed by ARK")
        .map_err(|e| format!("{context}: {e}"))?;
    x509::check_signed_by(&vek, &ask, "VEK signed by ASK")
        .map_err(|e| format!("{context}: {e}"))?;
    Ok((vek, vek_type))
}

fn check_report_signature(
    report: &[u8],
    repr: &ReportRepr,
    vek: &Certificate<'_>,
) -> Result<(), String> {
    let context = "Report signature verification against VEK signature failed";
    let point = vek
        .ec_public_key(oid::SECP384R1)
        .map_err(|e| format!("{context}: VEK key: {e}"))?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| format!("{context}: VEK key is not a valid P-384 point"))?;
    let fixed = Signature {
        r: &repr.signature.r,
        s: &repr.signature.s,
    }
    .to_p384_fixed()
    .ok_or_else(|| format!("{context}: R or S has non-zero bytes beyond 48"))?;
    let sig = p384::ecdsa::Signature::from_slice(&fixed)
        .map_err(|_| format!("{context}: R or S is not a valid scalar"))?;
    key.verify(&report[..0x2A0], &sig)
        .map_err(|_| format!("{context}: the signature does not verify with the VEK"))
}

fn spl(vek: &Certificate<'_>, oid: &[u8], name: &str) -> Result<u8, String> {
    let ext = vek
        .extension(oid)
        .map_err(|e| format!("VEK extensions: {e}"))?
        .ok_or_else(|| format!("{name} extension (Oid) not found in the VEK"))?;
    let v = ext
        .value_tlv()
        .and_then(|t| t.as_u64())
        .map_err(|e| format!("{name} extension: {e}"))?;
    u8::try_from(v).map_err(|_| format!("{name} extension {v} does not fit a byte"))
}

/// Trustee's `verify_report_tcb`, with the hwID compared for every VCEK.
fn check_tcb(
    repr: &ReportRepr,
    vek: &Certificate<'_>,
    vek_type: &VekType,
    generation: Generation,
) -> Result<(), String> {
    let context = "Reported TCB values do not match";
    if matches!(vek_type, VekType::Vcek) {
        let hw_id = vek
            .extension(oid::AMD_HW_ID)
            .map_err(|e| format!("{context}: VCEK extensions: {e}"))?
            .ok_or_else(|| format!("{context}: hwID extension not found in the VCEK"))?
            .value;
        let used = if generation == Generation::Turin {
            8
        } else {
            64
        };
        // Raw bytes (AMD's encoding, what Trustee takes when the length is right) or, in newer
        // certificates, a DER OCTET STRING around them.
        let hw_id = if hw_id.len() == used {
            hw_id
        } else {
            let mut r = der::Reader::new(hw_id);
            match (r.expect(tag::OCTET_STRING), r.finish()) {
                (Ok(t), Ok(())) => t.value,
                _ => hw_id,
            }
        };
        if hw_id != &repr.chip_id[..used] {
            return Err(format!(
                "{context}: Chip ID mismatch (VCEK hwID {}, report CHIP_ID {})",
                hex(hw_id),
                hex(&repr.chip_id[..used])
            ));
        }
    }
    let tcb = &repr.reported_tcb;
    for (oid, name, reported) in [
        (oid::AMD_UCODE_SPL, "Microcode", tcb.microcode),
        (oid::AMD_SNP_SPL, "SNP", tcb.snp),
        (oid::AMD_TEE_SPL, "TEE", tcb.tee),
        (oid::AMD_BL_SPL, "Boot loader", tcb.bootloader),
    ] {
        let certified = spl(vek, oid, name).map_err(|e| format!("{context}: {e}"))?;
        if certified != reported {
            return Err(format!(
                "{context}: {name} version mismatch (certificate {certified}, report {reported})"
            ));
        }
    }
    if generation == Generation::Turin {
        let certified = spl(vek, oid::AMD_FMC_SPL, "FMC").map_err(|e| format!("{context}: {e}"))?;
        if Some(certified) != tcb.fmc {
            return Err(format!("{context}: FMC version mismatch"));
        }
    }
    Ok(())
}

/// Trustee's `parse_tee_evidence` claims.
fn claims(repr: &ReportRepr) -> Map<String, Value> {
    let policy = repr.policy;
    let bit = |n: u32| policy & (1 << n) != 0;
    let value = json!({
        "policy_abi_major": (policy >> 8) & 0xff,
        "policy_abi_minor": policy & 0xff,
        "policy_smt_allowed": bit(16),
        "policy_migrate_ma": bit(18),
        "policy_debug_allowed": bit(19),
        "policy_single_socket": bit(20),
        "reported_tcb_bootloader": repr.reported_tcb.bootloader,
        "reported_tcb_tee": repr.reported_tcb.tee,
        "reported_tcb_snp": repr.reported_tcb.snp,
        "reported_tcb_microcode": repr.reported_tcb.microcode,
        "platform_tsme_enabled": repr.plat_info & 0b10 != 0,
        "platform_smt_enabled": repr.plat_info & 0b1 != 0,
        "measurement": hex(&repr.measurement),
        "report_data": hex(&repr.report_data),
        "init_data": hex(&repr.host_data),
        "chip_id": hex(&repr.chip_id),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Verifier for SnpVerifier {
    fn verify(&self, evidence: &Value, expected: &Expected<'_>) -> Result<Appraisal, String> {
        let parsed = match parse_evidence_json(evidence) {
            Ok(p) => p,
            Err(JsonError::Report(ReportError::UnsupportedVersion(v))) => {
                return Err(if v < 3 {
                    "Attestation Report version is too old. Please update your firmware.".into()
                } else {
                    "Unexpected attestation report version. Check SNP Firmware ABI specification"
                        .into()
                });
            }
            Err(e @ JsonError::Shape { .. }) => {
                return Err(format!("Deserialize SNP Evidence failed: {e}"));
            }
            Err(e) => return Err(format!("SNP evidence: {e}")),
        };
        let repr = &parsed.repr;
        if repr.version < 3 {
            return Err(
                "Attestation Report version is too old. Please update your firmware.".into(),
            );
        }
        if repr.version > 5 {
            return Err(
                "Unexpected attestation report version. Check SNP Firmware ABI specification"
                    .into(),
            );
        }
        let generation = processor_generation(repr)?;
        let roots = self.roots_for(generation).ok_or_else(|| {
            format!("Vendor certs not found for processor type: {generation:?} (the test KBS trusts no ARK for it)")
        })?;
        let chain = parsed.cert_chain.as_deref().ok_or(
            "cert_chain is null: Trustee would fetch the VCEK from AMD KDS (or an offline store), but the test KBS has no KDS access; the evidence must carry the VCEK/VLEK",
        )?;
        let (vek, vek_type) = verified_vek(chain, roots)?;
        check_report_signature(&parsed.report, repr, &vek)?;
        check_tcb(repr, &vek, &vek_type, generation)?;
        if repr.vmpl != 0 {
            return Err(format!("VMPL Check Failed (VMPL {})", repr.vmpl));
        }
        let want = x509::regularize(expected.report_data, 64);
        if want != repr.report_data {
            return Err(format!(
                "Report Data Mismatch (given {}, expected {})",
                hex(&repr.report_data),
                hex(&want)
            ));
        }
        if let Some(digest) = expected.init_data_digest {
            let want = x509::regularize(digest, 32);
            if want != repr.host_data {
                return Err(format!(
                    "Host Data Mismatch (HOST_DATA {}, init-data digest regularized {})",
                    hex(&repr.host_data),
                    hex(&want)
                ));
            }
        }
        let mut notes = Vec::new();
        if self.policy.measurements.is_empty() {
            notes.push("any measurement accepted".to_owned());
        } else if !self.policy.measurements.contains(&repr.measurement) {
            return Err(format!(
                "policy: measurement {} is not allowed",
                hex(&repr.measurement)
            ));
        }
        if !self.policy.host_data.is_empty() && !self.policy.host_data.contains(&repr.host_data) {
            return Err(format!(
                "policy: HOST_DATA {} is not allowed",
                hex(&repr.host_data)
            ));
        }
        Ok(Appraisal {
            class: "cpu",
            claims: claims(repr),
            status: EarStatus::Affirming,
            trust_vector: TrustVector {
                configuration: 2,
                executables: 3,
                hardware: 2,
                ..TrustVector::default()
            },
            notes,
        })
    }
}
