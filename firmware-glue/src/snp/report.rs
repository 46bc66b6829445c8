//! The SEV-SNP `ATTESTATION_REPORT` (1184 bytes): a checked zero-copy view ([`Report`]) and an
//! owned representation ([`ReportRepr`]) that re-encodes exactly like the `sev` crate's encoder,
//! which is what Trustee verifies the signature over.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::util::{array, de_bytes, ser_bytes, u32_at, u64_at};

/// Length of an attestation report.
pub const REPORT_LEN: usize = 1184;

/// Field offsets of the report (AMD SEV-SNP ABI specification, `ATTESTATION_REPORT` structure;
/// sealgate reference `guest-interfaces.md` §1.4; `sev` crate `firmware/guest/types/snp.rs`).
pub mod field {
    use core::ops::Range;

    /// VERSION (u32): 2 (old firmware), 3/4 (CPUID fields), 5 (mitigation vectors).
    pub const VERSION: Range<usize> = 0x000..0x004;
    /// GUEST_SVN (u32).
    pub const GUEST_SVN: Range<usize> = 0x004..0x008;
    /// POLICY (u64), guest policy bits (see [`super::policy`]).
    pub const POLICY: Range<usize> = 0x008..0x010;
    /// FAMILY_ID (16 bytes), from the ID block.
    pub const FAMILY_ID: Range<usize> = 0x010..0x020;
    /// IMAGE_ID (16 bytes), from the ID block.
    pub const IMAGE_ID: Range<usize> = 0x020..0x030;
    /// VMPL (u32) the report was requested for.
    pub const VMPL: Range<usize> = 0x030..0x034;
    /// SIGNATURE_ALGO (u32): 1 = ECDSA P-384 with SHA-384.
    pub const SIGNATURE_ALGO: Range<usize> = 0x034..0x038;
    /// CURRENT_TCB (TCB_VERSION, 8 bytes).
    pub const CURRENT_TCB: Range<usize> = 0x038..0x040;
    /// PLATFORM_INFO (u64).
    pub const PLATFORM_INFO: Range<usize> = 0x040..0x048;
    /// KEY_INFO (u32): bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY.
    pub const KEY_INFO: Range<usize> = 0x048..0x04C;
    /// Reserved, must be zero.
    pub const RESERVED_04C: Range<usize> = 0x04C..0x050;
    /// REPORT_DATA (64 bytes), the guest-supplied data.
    pub const REPORT_DATA: Range<usize> = 0x050..0x090;
    /// MEASUREMENT (48 bytes), the launch digest.
    pub const MEASUREMENT: Range<usize> = 0x090..0x0C0;
    /// HOST_DATA (32 bytes), set by the host at launch (CoCo: the init-data digest).
    pub const HOST_DATA: Range<usize> = 0x0C0..0x0E0;
    /// ID_KEY_DIGEST (48 bytes).
    pub const ID_KEY_DIGEST: Range<usize> = 0x0E0..0x110;
    /// AUTHOR_KEY_DIGEST (48 bytes).
    pub const AUTHOR_KEY_DIGEST: Range<usize> = 0x110..0x140;
    /// REPORT_ID (32 bytes).
    pub const REPORT_ID: Range<usize> = 0x140..0x160;
    /// REPORT_ID_MA (32 bytes), all 0xFF without a migration agent.
    pub const REPORT_ID_MA: Range<usize> = 0x160..0x180;
    /// REPORTED_TCB (TCB_VERSION): the TCB the VCEK was derived from.
    pub const REPORTED_TCB: Range<usize> = 0x180..0x188;
    /// CPUID_FAM_ID (u8), version 3 and later (reserved in version 2).
    pub const CPUID_FAM_ID: usize = 0x188;
    /// CPUID_MOD_ID (u8), version 3 and later.
    pub const CPUID_MOD_ID: usize = 0x189;
    /// CPUID_STEP (u8), version 3 and later.
    pub const CPUID_STEP: usize = 0x18A;
    /// Reserved after the CPUID fields (version 3 and later), must be zero.
    pub const RESERVED_18B: Range<usize> = 0x18B..0x1A0;
    /// Reserved in version 2 (where the CPUID fields do not exist), must be zero.
    pub const RESERVED_188_V2: Range<usize> = 0x188..0x1A0;
    /// CHIP_ID (64 bytes); zero when MASK_CHIP_ID is set; Turin uses the first 8 bytes.
    pub const CHIP_ID: Range<usize> = 0x1A0..0x1E0;
    /// COMMITTED_TCB (TCB_VERSION).
    pub const COMMITTED_TCB: Range<usize> = 0x1E0..0x1E8;
    /// CURRENT_BUILD (u8).
    pub const CURRENT_BUILD: usize = 0x1E8;
    /// CURRENT_MINOR (u8).
    pub const CURRENT_MINOR: usize = 0x1E9;
    /// CURRENT_MAJOR (u8).
    pub const CURRENT_MAJOR: usize = 0x1EA;
    /// Reserved, must be zero.
    pub const RESERVED_1EB: Range<usize> = 0x1EB..0x1EC;
    /// COMMITTED_BUILD (u8).
    pub const COMMITTED_BUILD: usize = 0x1EC;
    /// COMMITTED_MINOR (u8).
    pub const COMMITTED_MINOR: usize = 0x1ED;
    /// COMMITTED_MAJOR (u8).
    pub const COMMITTED_MAJOR: usize = 0x1EE;
    /// Reserved, must be zero.
    pub const RESERVED_1EF: Range<usize> = 0x1EF..0x1F0;
    /// LAUNCH_TCB (TCB_VERSION).
    pub const LAUNCH_TCB: Range<usize> = 0x1F0..0x1F8;
    /// LAUNCH_MIT_VECTOR (u64), version 5 only.
    pub const LAUNCH_MIT_VECTOR: Range<usize> = 0x1F8..0x200;
    /// CURRENT_MIT_VECTOR (u64), version 5 only.
    pub const CURRENT_MIT_VECTOR: Range<usize> = 0x200..0x208;
    /// Reserved up to the signature in version 5, must be zero.
    pub const RESERVED_208_V5: Range<usize> = 0x208..0x2A0;
    /// Reserved up to the signature in versions 2 to 4 (no mitigation vectors), must be zero.
    pub const RESERVED_1F8: Range<usize> = 0x1F8..0x2A0;
    /// The bytes the signature covers.
    pub const SIGNED: Range<usize> = 0x000..0x2A0;
    /// SIGNATURE (512 bytes).
    pub const SIGNATURE: Range<usize> = 0x2A0..0x4A0;
    /// Signature R, 72 bytes little-endian (48 significant bytes for P-384).
    pub const SIGNATURE_R: Range<usize> = 0x2A0..0x2E8;
    /// Signature S, 72 bytes little-endian.
    pub const SIGNATURE_S: Range<usize> = 0x2E8..0x330;
    /// Reserved rest of the signature area (not covered by the signature, not checked).
    pub const SIGNATURE_RESERVED: Range<usize> = 0x330..0x4A0;
}

/// Guest policy bits (`POLICY` field).
pub mod policy {
    /// Bits 7:0: minimum ABI minor version.
    pub const ABI_MINOR_MASK: u64 = 0xff;
    /// Bits 15:8: minimum ABI major version.
    pub const ABI_MAJOR_MASK: u64 = 0xff00;
    /// SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Reserved, must be one.
    pub const RESERVED_ONE: u64 = 1 << 17;
    /// Association with a migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Debugging allowed: the host can read guest memory. Never acceptable in production.
    pub const DEBUG: u64 = 1 << 19;
    /// Single socket required.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
}

/// The key that signed a report (`KEY_INFO` bits 4:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key (cloud provider key).
    Vlek,
    /// Not signed.
    None,
    /// A reserved encoding.
    Reserved(u8),
}

/// AMD EPYC generation, which decides how TCB_VERSION bytes are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Generation {
    /// Zen 3 (family 0x19, models 0x00..=0x0F).
    Milan,
    /// Zen 4 (family 0x19, models 0x10..=0x1F and 0xA0..=0xAF).
    Genoa,
    /// Zen 5 (family 0x1A, models 0x00..=0x11).
    Turin,
    /// Zen 6 (family 0x1A, models 0x50..=0x57, 0x90..=0xAF, 0xC0..=0xC7).
    Venice,
}

impl Generation {
    /// The generation for a CPUID family/model, as the `sev` crate's `identify_cpu` decides.
    /// (Trustee's own table knows Milan, Genoa and Turin only.)
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Generation::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Generation::Genoa),
            (0x1A, 0x00..=0x11) => Some(Generation::Turin),
            (0x1A, 0x50..=0x57 | 0x90..=0x9F | 0xA0..=0xAF | 0xC0..=0xC7) => {
                Some(Generation::Venice)
            }
            _ => None,
        }
    }

    /// The generation of a version 2 report, which has no CPUID fields: the `sev` crate's rule is
    /// "Turin if CHIP_ID bytes 8..64 are zero, else Genoa (the Milan/Genoa layout)", and a fully
    /// masked (all-zero) CHIP_ID cannot be decided.
    pub fn for_v2_chip_id(chip_id: &[u8; 64]) -> Option<Self> {
        if chip_id.iter().all(|b| *b == 0) {
            None
        } else if chip_id[8..].iter().all(|b| *b == 0) {
            Some(Generation::Turin)
        } else {
            Some(Generation::Genoa)
        }
    }

    fn turin_layout(self) -> bool {
        matches!(self, Generation::Turin | Generation::Venice)
    }
}

/// A TCB_VERSION decoded per generation: Milan/Genoa bytes are
/// `[bootloader, tee, 0, 0, 0, 0, snp, microcode]` (no FMC), Turin and later
/// `[fmc, bootloader, tee, snp, 0, 0, 0, microcode]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcbVersion {
    /// FMC SVN (Turin and later; `None` before).
    pub fmc: Option<u8>,
    /// PSP boot loader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Lowest microcode patch level of all cores.
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes 8 raw bytes for `generation`.
    pub fn decode(raw: &[u8; 8], generation: Generation) -> Self {
        if generation.turin_layout() {
            TcbVersion {
                fmc: Some(raw[0]),
                bootloader: raw[1],
                tee: raw[2],
                snp: raw[3],
                microcode: raw[7],
            }
        } else {
            TcbVersion {
                fmc: None,
                bootloader: raw[0],
                tee: raw[1],
                snp: raw[6],
                microcode: raw[7],
            }
        }
    }

    /// Encodes for `generation` exactly as the `sev` crate does (a missing FMC is 0 on Turin; an
    /// FMC is dropped on Milan/Genoa).
    pub fn encode(&self, generation: Generation) -> [u8; 8] {
        if generation.turin_layout() {
            [
                self.fmc.unwrap_or(0),
                self.bootloader,
                self.tee,
                self.snp,
                0,
                0,
                0,
                self.microcode,
            ]
        } else {
            [
                self.bootloader,
                self.tee,
                0,
                0,
                0,
                0,
                self.snp,
                self.microcode,
            ]
        }
    }

    /// The bytes that `decode` ignores are zero (so `encode(decode(raw)) == raw`).
    fn unused_bytes_zero(raw: &[u8; 8], generation: Generation) -> bool {
        let unused: &[u8] = if generation.turin_layout() {
            &raw[4..7]
        } else {
            &raw[2..6]
        };
        unused.iter().all(|b| *b == 0)
    }
}

/// Firmware version `major.minor.build` (`CURRENT_*`/`COMMITTED_*`; stored build, minor, major).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Build.
    pub build: u8,
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The ECDSA P-384 signature of a report: R and S as stored, 72-byte little-endian fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature<'a> {
    /// R, little-endian, 72 bytes.
    pub r: &'a [u8; 72],
    /// S, little-endian, 72 bytes.
    pub s: &'a [u8; 72],
}

impl Signature<'_> {
    /// R as a big-endian P-384 scalar, or `None` if bytes 48..72 are not zero.
    pub fn r_be(&self) -> Option<[u8; 48]> {
        le72_to_be48(self.r)
    }

    /// S as a big-endian P-384 scalar, or `None` if bytes 48..72 are not zero.
    pub fn s_be(&self) -> Option<[u8; 48]> {
        le72_to_be48(self.s)
    }

    /// `r || s` big-endian (96 bytes), the fixed-size form ECDSA libraries take.
    pub fn to_p384_fixed(&self) -> Option<[u8; 96]> {
        let (r, s) = (self.r_be()?, self.s_be()?);
        let mut out = [0u8; 96];
        out[..48].copy_from_slice(&r);
        out[48..].copy_from_slice(&s);
        Some(out)
    }
}

fn le72_to_be48(le: &[u8; 72]) -> Option<[u8; 48]> {
    if le[48..].iter().any(|b| *b != 0) {
        return None;
    }
    let mut be = [0u8; 48];
    for (d, s) in be.iter_mut().zip(le[..48].iter().rev()) {
        *d = *s;
    }
    Some(be)
}

/// Big-endian P-384 scalars to the report's 72-byte little-endian fields (for simulated
/// firmware and tests).
pub fn signature_fields_from_p384(fixed: &[u8; 96]) -> ([u8; 72], [u8; 72]) {
    let mut r = [0u8; 72];
    let mut s = [0u8; 72];
    for i in 0..48 {
        r[i] = fixed[47 - i];
        s[i] = fixed[95 - i];
    }
    (r, s)
}

/// Why bytes are not an acceptable attestation report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// Not 1184 bytes.
    Length {
        /// The length received.
        got: usize,
    },
    /// A VERSION other than 2..=5.
    UnsupportedVersion(u32),
    /// A reserved byte is not zero (the `sev` crate, and so Trustee, rejects the report).
    ReservedNonZero {
        /// Offset of the first non-zero reserved byte.
        offset: usize,
    },
    /// CPUID family/model of a version 3+ report that maps to no known generation.
    UnknownCpu {
        /// CPUID_FAM_ID.
        family: u8,
        /// CPUID_MOD_ID.
        model: u8,
    },
    /// A version 2 report with an all-zero CHIP_ID: its generation, and so its TCB layout,
    /// cannot be determined.
    MaskedChipIdV2,
    /// Bytes of a TCB_VERSION that its generation's layout does not use are not zero: the report
    /// would not survive the JSON round trip Trustee's verifier does.
    TcbUnusedBytes {
        /// Offset of the TCB_VERSION field.
        offset: usize,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Length { got } => write!(
                f,
                "SNP attestation report is {got} bytes, expected {REPORT_LEN}"
            ),
            ReportError::UnsupportedVersion(v) => write!(
                f,
                "SNP attestation report version {v} is not supported (2..=5; Trustee accepts 3..=5)"
            ),
            ReportError::ReservedNonZero { offset } => write!(
                f,
                "SNP attestation report has a non-zero reserved byte at 0x{offset:03x}; the verifier's parser rejects it (firmware/report mismatch)"
            ),
            ReportError::UnknownCpu { family, model } => write!(
                f,
                "SNP attestation report names CPU family 0x{family:02x} model 0x{model:02x}, which maps to no known EPYC generation"
            ),
            ReportError::MaskedChipIdV2 => f.write_str(
                "SNP attestation report version 2 with a masked CHIP_ID: CPU generation unknown; update the SNP firmware (version 3+ reports carry the CPUID)",
            ),
            ReportError::TcbUnusedBytes { offset } => write!(
                f,
                "SNP attestation report TCB_VERSION at 0x{offset:03x} has bytes its CPU generation does not define"
            ),
        }
    }
}

impl core::error::Error for ReportError {}

/// A checked view of an SNP attestation report, over any buffer that dereferences to bytes:
/// `Report<&[u8]>` borrows (zero-copy), `Report<Vec<u8>>` or `Report<[u8; REPORT_LEN]>` owns.
///
/// Construction ([`Report::new_checked`]) checks the length, the version (2..=5), that every
/// reserved byte the `sev` crate's decoder checks is zero, that the CPU generation can be
/// determined (from CPUID_FAM_ID/MOD_ID for version 3+, from CHIP_ID for version 2) and that the
/// TCB_VERSION fields use only the bytes their generation defines. A report accepted here
/// re-encodes to identical bytes through [`ReportRepr`] and the evidence JSON.
///
/// The check is done once: an owner keeps the `Report<T>` (the proof) rather than the bytes,
/// and reads fields through it without parsing again. `T::as_ref` must return the same bytes
/// every time (as slices, arrays, `Vec` and `Box` do); a buffer that changes under the view
/// makes the accessors panic, never read out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report<T: AsRef<[u8]>> {
    buf: T,
    generation: Generation,
}

impl<T: AsRef<[u8]>> Report<T> {
    /// Checks `buf` (see the type documentation) and wraps it.
    pub fn new_checked(buf: T) -> Result<Self, ReportError> {
        let generation = check(buf.as_ref())?;
        Ok(Report { buf, generation })
    }

    /// The buffer the view was made from.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The raw report.
    pub fn as_bytes(&self) -> &[u8; REPORT_LEN] {
        // Checked to be exactly REPORT_LEN bytes at construction.
        array(self.buf.as_ref(), 0)
    }

    /// Bytes 0x000..0x2A0, which the signature covers (ECDSA P-384 over their SHA-384).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.as_bytes()[field::SIGNED]
    }

    /// The CPU generation that decides the TCB layout.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// VERSION.
    pub fn version(&self) -> u32 {
        u32_at(self.as_bytes(), field::VERSION.start)
    }

    /// GUEST_SVN.
    pub fn guest_svn(&self) -> u32 {
        u32_at(self.as_bytes(), field::GUEST_SVN.start)
    }

    /// POLICY (see [`policy`]).
    pub fn policy(&self) -> u64 {
        u64_at(self.as_bytes(), field::POLICY.start)
    }

    /// FAMILY_ID.
    pub fn family_id(&self) -> &[u8; 16] {
        array(self.as_bytes(), field::FAMILY_ID.start)
    }

    /// IMAGE_ID.
    pub fn image_id(&self) -> &[u8; 16] {
        array(self.as_bytes(), field::IMAGE_ID.start)
    }

    /// VMPL (Trustee requires 0).
    pub fn vmpl(&self) -> u32 {
        u32_at(self.as_bytes(), field::VMPL.start)
    }

    /// SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384).
    pub fn sig_algo(&self) -> u32 {
        u32_at(self.as_bytes(), field::SIGNATURE_ALGO.start)
    }

    /// CURRENT_TCB.
    pub fn current_tcb(&self) -> TcbVersion {
        self.tcb(field::CURRENT_TCB.start)
    }

    /// PLATFORM_INFO.
    pub fn plat_info(&self) -> u64 {
        u64_at(self.as_bytes(), field::PLATFORM_INFO.start)
    }

    /// KEY_INFO.
    pub fn key_info(&self) -> u32 {
        u32_at(self.as_bytes(), field::KEY_INFO.start)
    }

    /// The signing key named by KEY_INFO.
    pub fn signing_key(&self) -> SigningKey {
        match ((self.key_info() >> 2) & 0x7) as u8 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other),
        }
    }

    /// REPORT_DATA.
    pub fn report_data(&self) -> &[u8; 64] {
        array(self.as_bytes(), field::REPORT_DATA.start)
    }

    /// MEASUREMENT.
    pub fn measurement(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::MEASUREMENT.start)
    }

    /// HOST_DATA.
    pub fn host_data(&self) -> &[u8; 32] {
        array(self.as_bytes(), field::HOST_DATA.start)
    }

    /// ID_KEY_DIGEST.
    pub fn id_key_digest(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::ID_KEY_DIGEST.start)
    }

    /// AUTHOR_KEY_DIGEST.
    pub fn author_key_digest(&self) -> &[u8; 48] {
        array(self.as_bytes(), field::AUTHOR_KEY_DIGEST.start)
    }

    /// REPORT_ID.
    pub fn report_id(&self) -> &[u8; 32] {
        array(self.as_bytes(), field::REPORT_ID.start)
    }

    /// REPORT_ID_MA.
    pub fn report_id_ma(&self) -> &[u8; 32] {
        array(self.as_bytes(), field::REPORT_ID_MA.start)
    }

    /// REPORTED_TCB.
    pub fn reported_tcb(&self) -> TcbVersion {
        self.tcb(field::REPORTED_TCB.start)
    }

    /// CPUID_FAM_ID (`None` for version 2).
    pub fn cpuid_fam_id(&self) -> Option<u8> {
        (self.version() >= 3).then(|| self.as_bytes()[field::CPUID_FAM_ID])
    }

    /// CPUID_MOD_ID (`None` for version 2).
    pub fn cpuid_mod_id(&self) -> Option<u8> {
        (self.version() >= 3).then(|| self.as_bytes()[field::CPUID_MOD_ID])
    }

    /// CPUID_STEP (`None` for version 2).
    pub fn cpuid_step(&self) -> Option<u8> {
        (self.version() >= 3).then(|| self.as_bytes()[field::CPUID_STEP])
    }

    /// CHIP_ID.
    pub fn chip_id(&self) -> &[u8; 64] {
        array(self.as_bytes(), field::CHIP_ID.start)
    }

    /// COMMITTED_TCB.
    pub fn committed_tcb(&self) -> TcbVersion {
        self.tcb(field::COMMITTED_TCB.start)
    }

    /// CURRENT_MAJOR/MINOR/BUILD.
    pub fn current(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.as_bytes()[field::CURRENT_MAJOR],
            minor: self.as_bytes()[field::CURRENT_MINOR],
            build: self.as_bytes()[field::CURRENT_BUILD],
        }
    }

    /// COMMITTED_MAJOR/MINOR/BUILD.
    pub fn committed(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.as_bytes()[field::COMMITTED_MAJOR],
            minor: self.as_bytes()[field::COMMITTED_MINOR],
            build: self.as_bytes()[field::COMMITTED_BUILD],
        }
    }

    /// LAUNCH_TCB.
    pub fn launch_tcb(&self) -> TcbVersion {
        self.tcb(field::LAUNCH_TCB.start)
    }

    /// LAUNCH_MIT_VECTOR (version 5 only).
    pub fn launch_mit_vector(&self) -> Option<u64> {
        (self.version() >= 5).then(|| u64_at(self.as_bytes(), field::LAUNCH_MIT_VECTOR.start))
    }

    /// CURRENT_MIT_VECTOR (version 5 only).
    pub fn current_mit_vector(&self) -> Option<u64> {
        (self.version() >= 5).then(|| u64_at(self.as_bytes(), field::CURRENT_MIT_VECTOR.start))
    }

    /// The signature fields.
    pub fn signature(&self) -> Signature<'_> {
        Signature {
            r: array(self.as_bytes(), field::SIGNATURE_R.start),
            s: array(self.as_bytes(), field::SIGNATURE_S.start),
        }
    }

    fn tcb(&self, off: usize) -> TcbVersion {
        TcbVersion::decode(array(self.as_bytes(), off), self.generation)
    }
}

/// The checks of [`Report::new_checked`]; the CPU generation of an acceptable report.
fn check(buf: &[u8]) -> Result<Generation, ReportError> {
    let buf: &[u8; REPORT_LEN] = buf
        .try_into()
        .map_err(|_| ReportError::Length { got: buf.len() })?;
    let version = u32_at(buf, field::VERSION.start);
    if !(2..=5).contains(&version) {
        return Err(ReportError::UnsupportedVersion(version));
    }
    let reserved: [core::ops::Range<usize>; 5] = [
        field::RESERVED_04C,
        if version == 2 {
            field::RESERVED_188_V2
        } else {
            field::RESERVED_18B
        },
        field::RESERVED_1EB,
        field::RESERVED_1EF,
        if version == 5 {
            field::RESERVED_208_V5
        } else {
            field::RESERVED_1F8
        },
    ];
    for range in reserved {
        let start = range.start;
        if let Some(i) = buf[range].iter().position(|b| *b != 0) {
            return Err(ReportError::ReservedNonZero { offset: start + i });
        }
    }
    let generation = if version == 2 {
        Generation::for_v2_chip_id(array(buf, field::CHIP_ID.start))
            .ok_or(ReportError::MaskedChipIdV2)?
    } else {
        let family = buf[field::CPUID_FAM_ID];
        let model = buf[field::CPUID_MOD_ID];
        Generation::from_cpuid(family, model).ok_or(ReportError::UnknownCpu { family, model })?
    };
    for off in [
        field::CURRENT_TCB.start,
        field::REPORTED_TCB.start,
        field::COMMITTED_TCB.start,
        field::LAUNCH_TCB.start,
    ] {
        if !TcbVersion::unused_bytes_zero(array(buf, off), generation) {
            return Err(ReportError::TcbUnusedBytes { offset: off });
        }
    }
    Ok(generation)
}

/// The report's signature as it appears in the evidence JSON (`{"r": [72], "s": [72]}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRepr {
    /// R, little-endian.
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub r: [u8; 72],
    /// S, little-endian.
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub s: [u8; 72],
}

/// An owned attestation report, field for field the `sev` crate's `AttestationReport` (same
/// names, same serde order, same `Option`s), which is what the evidence JSON carries.
///
/// [`ReportRepr::emit`] encodes it the way the `sev` encoder does (reserved bytes zero, TCBs by
/// generation, CPUID fields only from version 3, mitigation vectors only in version 5): Trustee
/// verifies the report signature over bytes 0..0x2A0 of exactly that encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // the fields are the report fields documented in `field`
pub struct ReportRepr {
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub sig_algo: u32,
    pub current_tcb: TcbVersion,
    pub plat_info: u64,
    pub key_info: u32,
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub report_data: [u8; 64],
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub id_key_digest: [u8; 48],
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: TcbVersion,
    pub cpuid_fam_id: Option<u8>,
    pub cpuid_mod_id: Option<u8>,
    pub cpuid_step: Option<u8>,
    #[serde(serialize_with = "ser_bytes", deserialize_with = "de_bytes")]
    pub chip_id: [u8; 64],
    pub committed_tcb: TcbVersion,
    pub current: FirmwareVersion,
    pub committed: FirmwareVersion,
    pub launch_tcb: TcbVersion,
    pub launch_mit_vector: Option<u64>,
    pub current_mit_vector: Option<u64>,
    pub signature: SignatureRepr,
}

impl ReportRepr {
    /// The owned form of a checked report.
    pub fn parse<T: AsRef<[u8]>>(report: &Report<T>) -> Self {
        let sig = report.signature();
        ReportRepr {
            version: report.version(),
            guest_svn: report.guest_svn(),
            policy: report.policy(),
            family_id: *report.family_id(),
            image_id: *report.image_id(),
            vmpl: report.vmpl(),
            sig_algo: report.sig_algo(),
            current_tcb: report.current_tcb(),
            plat_info: report.plat_info(),
            key_info: report.key_info(),
            report_data: *report.report_data(),
            measurement: *report.measurement(),
            host_data: *report.host_data(),
            id_key_digest: *report.id_key_digest(),
            author_key_digest: *report.author_key_digest(),
            report_id: *report.report_id(),
            report_id_ma: *report.report_id_ma(),
            reported_tcb: report.reported_tcb(),
            cpuid_fam_id: report.cpuid_fam_id(),
            cpuid_mod_id: report.cpuid_mod_id(),
            cpuid_step: report.cpuid_step(),
            chip_id: *report.chip_id(),
            committed_tcb: report.committed_tcb(),
            current: report.current(),
            committed: report.committed(),
            launch_tcb: report.launch_tcb(),
            launch_mit_vector: report.launch_mit_vector(),
            current_mit_vector: report.current_mit_vector(),
            signature: SignatureRepr {
                r: *sig.r,
                s: *sig.s,
            },
        }
    }

    /// The generation `emit` encodes the TCBs for: from CHIP_ID for version 2, otherwise from
    /// the CPUID fields (absent ones count as 0, as in the `sev` encoder).
    pub fn generation(&self) -> Result<Generation, ReportError> {
        if self.version == 2 {
            Generation::for_v2_chip_id(&self.chip_id).ok_or(ReportError::MaskedChipIdV2)
        } else {
            let family = self.cpuid_fam_id.unwrap_or(0);
            let model = self.cpuid_mod_id.unwrap_or(0);
            Generation::from_cpuid(family, model).ok_or(ReportError::UnknownCpu { family, model })
        }
    }

    /// Encodes the report as the `sev` crate's encoder does (see the type documentation).
    pub fn emit(&self) -> Result<[u8; REPORT_LEN], ReportError> {
        if !(2..=5).contains(&self.version) {
            return Err(ReportError::UnsupportedVersion(self.version));
        }
        let generation = self.generation()?;
        let mut out = [0u8; REPORT_LEN];
        let mut put = |range: core::ops::Range<usize>, bytes: &[u8]| {
            out[range].copy_from_slice(bytes);
        };
        put(field::VERSION, &self.version.to_le_bytes());
        put(field::GUEST_SVN, &self.guest_svn.to_le_bytes());
        put(field::POLICY, &self.policy.to_le_bytes());
        put(field::FAMILY_ID, &self.family_id);
        put(field::IMAGE_ID, &self.image_id);
        put(field::VMPL, &self.vmpl.to_le_bytes());
        put(field::SIGNATURE_ALGO, &self.sig_algo.to_le_bytes());
        put(field::CURRENT_TCB, &self.current_tcb.encode(generation));
        put(field::PLATFORM_INFO, &self.plat_info.to_le_bytes());
        put(field::KEY_INFO, &self.key_info.to_le_bytes());
        put(field::REPORT_DATA, &self.report_data);
        put(field::MEASUREMENT, &self.measurement);
        put(field::HOST_DATA, &self.host_data);
        put(field::ID_KEY_DIGEST, &self.id_key_digest);
        put(field::AUTHOR_KEY_DIGEST, &self.author_key_digest);
        put(field::REPORT_ID, &self.report_id);
        put(field::REPORT_ID_MA, &self.report_id_ma);
        put(field::REPORTED_TCB, &self.reported_tcb.encode(generation));
        if self.version >= 3 {
            put(
                field::CPUID_FAM_ID..field::CPUID_STEP + 1,
                &[
                    self.cpuid_fam_id.unwrap_or(0),
                    self.cpuid_mod_id.unwrap_or(0),
                    self.cpuid_step.unwrap_or(0),
                ],
            );
        }
        put(field::CHIP_ID, &self.chip_id);
        put(field::COMMITTED_TCB, &self.committed_tcb.encode(generation));
        put(
            field::CURRENT_BUILD..field::CURRENT_MAJOR + 1,
            &[self.current.build, self.current.minor, self.current.major],
        );
        put(
            field::COMMITTED_BUILD..field::COMMITTED_MAJOR + 1,
            &[
                self.committed.build,
                self.committed.minor,
                self.committed.major,
            ],
        );
        put(field::LAUNCH_TCB, &self.launch_tcb.encode(generation));
        if self.version >= 5 {
            put(
                field::LAUNCH_MIT_VECTOR,
                &self.launch_mit_vector.unwrap_or(0).to_le_bytes(),
            );
            put(
                field::CURRENT_MIT_VECTOR,
                &self.current_mit_vector.unwrap_or(0).to_le_bytes(),
            );
        }
        put(field::SIGNATURE_R, &self.signature.r);
        put(field::SIGNATURE_S, &self.signature.s);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations() {
        use Generation::*;
        let cases = [
            (0x19, 0x00, Some(Milan)),
            (0x19, 0x0F, Some(Milan)),
            (0x19, 0x10, Some(Genoa)),
            (0x19, 0x1F, Some(Genoa)),
            (0x19, 0x20, None),
            (0x19, 0xA0, Some(Genoa)),
            (0x19, 0xAF, Some(Genoa)),
            (0x19, 0xB0, None),
            (0x1A, 0x00, Some(Turin)),
            (0x1A, 0x11, Some(Turin)),
            (0x1A, 0x12, None),
            (0x1A, 0x50, Some(Venice)),
            (0x1A, 0x58, None),
            (0x1A, 0x90, Some(Venice)),
            (0x1A, 0xAF, Some(Venice)),
            (0x1A, 0xC7, Some(Venice)),
            (0x1A, 0xC8, None),
            (0x17, 0x31, None),
        ];
        for (fam, model, want) in cases {
            assert_eq!(
                Generation::from_cpuid(fam, model),
                want,
                "{fam:#x}/{model:#x}"
            );
        }
        let mut chip = [0u8; 64];
        assert_eq!(Generation::for_v2_chip_id(&chip), None);
        chip[0] = 1;
        assert_eq!(Generation::for_v2_chip_id(&chip), Some(Turin));
        chip[63] = 1;
        assert_eq!(Generation::for_v2_chip_id(&chip), Some(Genoa));
    }

    #[test]
    fn tcb_layouts() {
        let legacy = [3, 0, 0, 0, 0, 0, 8, 0x73];
        let t = TcbVersion::decode(&legacy, Generation::Milan);
        assert_eq!(
            t,
            TcbVersion {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 0x73
            }
        );
        assert_eq!(t.encode(Generation::Genoa), legacy);
        let turin = [1, 2, 3, 4, 0, 0, 0, 5];
        let t = TcbVersion::decode(&turin, Generation::Turin);
        assert_eq!(
            t,
            TcbVersion {
                fmc: Some(1),
                bootloader: 2,
                tee: 3,
                snp: 4,
                microcode: 5
            }
        );
        assert_eq!(t.encode(Generation::Venice), turin);
        assert!(!TcbVersion::unused_bytes_zero(&turin, Generation::Genoa));
        assert!(!TcbVersion::unused_bytes_zero(&legacy, Generation::Turin));
    }

    #[test]
    fn signature_scalars() {
        let mut fixed = [0u8; 96];
        for (i, b) in fixed.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let (r, s) = signature_fields_from_p384(&fixed);
        let sig = Signature { r: &r, s: &s };
        assert_eq!(sig.to_p384_fixed(), Some(fixed));
        assert_eq!(r[0], 48);
        assert_eq!(r[47], 1);
        let mut bad = r;
        bad[60] = 1;
        assert_eq!(Signature { r: &bad, s: &s }.r_be(), None);
    }
}
