//! Opening a LUKS2 keyslot: passphrase -> KDF -> area key; decrypt the keyslot area
//! (aes-xts-plain64, 512-byte sectors numbered from 0 at the area's start, as cryptsetup's
//! `LUKS2_keyslot_open` → `luks2_decrypt_from_storage` does it); anti-forensic merge
//! (cryptsetup's `AF_merge`: 4000 stripes, the keyslot's `af.hash`); then PBKDF2 of the
//! candidate with the digest's salt and iterations must equal the digest.

use super::{AREA_SECTOR, Header, Keyslot, SkippedKeyslot};
use crate::volume::kdf::{self, Hash, Kdf, KdfError, KdfLimits};
use crate::volume::{Cipher, VolumeKey};
use aes::cipher::KeyInit;
use aes::{Aes128, Aes256};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A keyslot that opened.
#[derive(Debug)]
pub struct Opened {
    /// Its id.
    pub slot: u32,
    /// The volume key (verified against the digest).
    pub key: VolumeKey,
}

/// Why one keyslot did not give the volume key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotFailure {
    /// The passphrase is not this keyslot's (the candidate key failed the digest).
    WrongPassphrase,
    /// Its KDF costs are over the limits (refused before any allocation), or its memory
    /// could not be allocated.
    Kdf(KdfError),
    /// The caller's read of its area failed.
    Read(String),
    /// Not tried: the keyslots tried before it used up the work budget of one open, the
    /// work of a single keyslot at the limits (see [`open`]).
    OverBudget,
    /// The area bytes given are not [`Header::keyslot_area`]'s length.
    AreaLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

impl fmt::Display for SlotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotFailure::WrongPassphrase => f.write_str("wrong passphrase"),
            SlotFailure::Kdf(e) => write!(f, "{e}"),
            SlotFailure::Read(e) => write!(f, "reading its area failed: {e}"),
            SlotFailure::OverBudget => f.write_str(
                "not tried: the keyslots before it used the KDF work one open may do (that of \
                 one keyslot at the limits)",
            ),
            SlotFailure::AreaLength { expected, got } => {
                write!(f, "{got} area bytes given, {expected} needed")
            }
        }
    }
}

/// Why no volume key came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// [`open_keyslot`]: no keyslot with this id that sealgate can open for the segment.
    NoSuchKeyslot(u32),
    /// [`open_keyslot`]: the keyslot did not open.
    Keyslot {
        /// Its id.
        slot: u32,
        /// Why.
        why: SlotFailure,
    },
    /// The digest's PBKDF2 costs are over the limits: no keyslot is tried.
    Digest(KdfError),
    /// [`open`]: no keyslot opened.
    NoneOpened {
        /// The keyslots tried, in order, and why each failed.
        tried: Vec<(u32, SlotFailure)>,
        /// Keyslots of the segment with priority 0 (never tried).
        ignored: Vec<u32>,
        /// Keyslots of the segment sealgate cannot run.
        skipped: Vec<SkippedKeyslot>,
        /// Token types in the header (sealgate runs none).
        tokens: Vec<String>,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NoSuchKeyslot(id) => write!(
                f,
                "keyslot {id} does not exist for the data segment or cannot be opened by \
                 sealgate"
            ),
            OpenError::Keyslot {
                slot,
                why: SlotFailure::WrongPassphrase,
            } => write!(f, "keyslot did not open: keyslot {slot}: wrong passphrase"),
            OpenError::Keyslot { slot, why } => {
                write!(f, "keyslot did not open: keyslot {slot}: {why}")
            }
            OpenError::Digest(e) => write!(f, "the volume key digest is refused: {e}"),
            OpenError::NoneOpened {
                tried,
                ignored,
                skipped,
                tokens,
            } => {
                f.write_str("keyslot did not open")?;
                if tried.is_empty() {
                    f.write_str(": no keyslot to try")?;
                }
                let mut sep = ": ";
                let wrong: Vec<String> = tried
                    .iter()
                    .filter(|(_, w)| *w == SlotFailure::WrongPassphrase)
                    .map(|(id, _)| format!("{id}"))
                    .collect();
                if !wrong.is_empty() {
                    let s = if wrong.len() == 1 { "" } else { "s" };
                    write!(
                        f,
                        "{sep}wrong passphrase for keyslot{s} {}",
                        wrong.join(", ")
                    )?;
                    sep = "; ";
                }
                for (id, why) in tried
                    .iter()
                    .filter(|(_, w)| *w != SlotFailure::WrongPassphrase)
                {
                    write!(f, "{sep}keyslot {id}: {why}")?;
                    sep = "; ";
                }
                for s in skipped {
                    write!(f, "{sep}keyslot {} skipped: {}", s.id, s.why)?;
                    sep = "; ";
                }
                if !ignored.is_empty() {
                    let list: Vec<String> = ignored.iter().map(|i| format!("{i}")).collect();
                    write!(f, "{sep}priority-0 keyslots not tried: {}", list.join(", "))?;
                    sep = "; ";
                }
                if !tokens.is_empty() {
                    write!(
                        f,
                        "{sep}tokens present but not run by sealgate: {}",
                        tokens.join(", ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Opens keyslot `slot` with `passphrase`. `area` must be exactly the bytes
/// [`Header::keyslot_area`] names. The KDF costs (the keyslot's and the digest's) are
/// checked against `limits` before anything is allocated.
pub fn open_keyslot(
    header: &Header,
    slot: u32,
    area: &[u8],
    passphrase: &[u8],
    limits: &KdfLimits,
) -> Result<VolumeKey, OpenError> {
    let ks = header.keyslot(slot).ok_or(OpenError::NoSuchKeyslot(slot))?;
    limits
        .check_pbkdf2(header.digest().iterations)
        .map_err(OpenError::Digest)?;
    try_slot(header, ks, area, passphrase, limits).map_err(|why| OpenError::Keyslot { slot, why })
}

/// Tries the keyslots in [`Header::open_order`] until one opens; `read(offset, len)`
/// reads `len` bytes of the device at `offset` (a keyslot area). A slot whose read fails
/// or whose KDF is over the limits is reported and the next one tried.
///
/// The whole call does at most the KDF work of one keyslot at the limits, so that a
/// header with 32 keyslots each just under them cannot multiply the time: argon2 memory
/// × passes summed over the keyslots tried stays within `max_memory_kib ×
/// max_time_cost`, and PBKDF2 iterations (keyslot and digest) within twice
/// `max_pbkdf2_iterations`. A keyslot that would go over is not tried
/// ([`SlotFailure::OverBudget`]). Two or three keyslots at cryptsetup's defaults fit.
pub fn open<E: fmt::Display>(
    header: &Header,
    passphrase: &[u8],
    limits: &KdfLimits,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>, E>,
) -> Result<Opened, OpenError> {
    let digest_iterations = u64::from(header.digest().iterations);
    limits
        .check_pbkdf2(header.digest().iterations)
        .map_err(OpenError::Digest)?;
    let argon2_budget = u64::from(limits.max_memory_kib) * u64::from(limits.max_time_cost);
    let pbkdf2_budget = 2 * u64::from(limits.max_pbkdf2_iterations);
    let (mut argon2_used, mut pbkdf2_used) = (0u64, 0u64);
    let mut tried = Vec::new();
    for id in header.open_order() {
        let Some(ks) = header.keyslot(id) else {
            continue;
        };
        if let Err(e) = limits.check(&ks.kdf) {
            tried.push((id, SlotFailure::Kdf(e)));
            continue;
        }
        let (argon2_work, pbkdf2_work) = match &ks.kdf {
            Kdf::Pbkdf2 { iterations, .. } => (0, u64::from(*iterations) + digest_iterations),
            Kdf::Argon2 {
                time, memory_kib, ..
            } => (u64::from(*memory_kib) * u64::from(*time), digest_iterations),
        };
        if argon2_used + argon2_work > argon2_budget || pbkdf2_used + pbkdf2_work > pbkdf2_budget {
            tried.push((id, SlotFailure::OverBudget));
            continue;
        }
        let area = match read(ks.area_offset, ks.material_len()) {
            Ok(a) => a,
            Err(e) => {
                tried.push((id, SlotFailure::Read(format!("{e}"))));
                continue;
            }
        };
        argon2_used += argon2_work;
        pbkdf2_used += pbkdf2_work;
        match try_slot(header, ks, &area, passphrase, limits) {
            Ok(key) => return Ok(Opened { slot: id, key }),
            Err(why) => tried.push((id, why)),
        }
    }
    Err(OpenError::NoneOpened {
        tried,
        ignored: header
            .keyslots()
            .iter()
            .filter(|k| k.priority == super::Priority::Ignore)
            .map(|k| k.id)
            .collect(),
        skipped: header.skipped_keyslots().to_vec(),
        tokens: header.tokens().to_vec(),
    })
}

/// A volume unlocked by [`unlock`].
#[derive(Debug)]
pub struct Unlocked {
    /// Its header (segment, UUID, keyring description, notes about the copies).
    pub header: Header,
    /// The keyslot that opened.
    pub slot: u32,
    /// The volume key.
    pub key: VolumeKey,
}

/// Why [`unlock`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnlockError {
    /// Reading the header failed (the caller's error, as text).
    Read(String),
    /// The header was refused.
    Header(super::HeaderError),
    /// No keyslot opened.
    Open(OpenError),
}

impl fmt::Display for UnlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnlockError::Read(e) => write!(f, "cannot read the LUKS2 header: {e}"),
            UnlockError::Header(e) => write!(f, "{e}"),
            UnlockError::Open(e) => write!(f, "{e}"),
        }
    }
}

/// The whole unlock in one call: reads the header's first 4 KiB, then
/// [`super::metadata_read_len`] bytes, parses them ([`Header::parse`]) and [`open`]s a
/// keyslot. `read(offset, len)` reads `len` bytes of the device at `offset` (short reads
/// are the caller's to refuse); `device_size` is the device's size in bytes.
pub fn unlock<E: fmt::Display>(
    device_size: u64,
    passphrase: &[u8],
    limits: &KdfLimits,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>, E>,
) -> Result<Unlocked, UnlockError> {
    let read_err = |e: E| UnlockError::Read(format!("{e}"));
    let first = read(0, super::BINARY_HEADER_LEN.min(device_size) as usize).map_err(read_err)?;
    let len = super::metadata_read_len(&first, device_size);
    let metadata = read(0, len as usize).map_err(|e| UnlockError::Read(format!("{e}")))?;
    let header = Header::parse(&metadata, device_size).map_err(UnlockError::Header)?;
    let opened = open(&header, passphrase, limits, read).map_err(UnlockError::Open)?;
    Ok(Unlocked {
        header,
        slot: opened.slot,
        key: opened.key,
    })
}

fn try_slot(
    header: &Header,
    ks: &Keyslot,
    area: &[u8],
    passphrase: &[u8],
    limits: &KdfLimits,
) -> Result<VolumeKey, SlotFailure> {
    let expected = ks.material_len();
    if area.len() != expected {
        return Err(SlotFailure::AreaLength {
            expected,
            got: area.len(),
        });
    }
    let mut area_key = Zeroizing::new(alloc::vec![0u8; ks.area_key_bytes]);
    kdf::derive(&ks.kdf, passphrase, limits, &mut area_key).map_err(SlotFailure::Kdf)?;
    let mut material = Zeroizing::new(area.to_vec());
    decrypt_area(ks.area_cipher, &area_key, &mut material);
    let mut candidate = Zeroizing::new(alloc::vec![0u8; ks.key_bytes]);
    af_merge(&material, ks.key_bytes, ks.af_hash, &mut candidate);
    if verify_digest(header, &candidate) {
        Ok(VolumeKey::new(candidate))
    } else {
        Err(SlotFailure::WrongPassphrase)
    }
}

/// Decrypts the keyslot area in place: aes-xts-plain64, 512-byte sectors, IV = sector
/// number from 0 at the area's start.
fn decrypt_area(cipher: Cipher, key: &[u8], data: &mut [u8]) {
    match cipher {
        Cipher::AesXtsPlain64 => {
            let half = key.len() / 2;
            let (k1, k2) = key.split_at(half);
            // The key lengths were checked when the header was parsed (32 or 64 bytes).
            if half == 16 {
                xts::<Aes128>(k1, k2, data);
            } else {
                xts::<Aes256>(k1, k2, data);
            }
        }
    }
}

fn xts<C>(k1: &[u8], k2: &[u8], data: &mut [u8])
where
    C: KeyInit
        + aes::cipher::BlockCipherEncrypt
        + aes::cipher::BlockCipherDecrypt
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    let (Ok(c1), Ok(c2)) = (C::new_from_slice(k1), C::new_from_slice(k2)) else {
        // Unreachable: the caller passes halves of a 32- or 64-byte key.
        data.zeroize();
        return;
    };
    let xts = xts_mode::Xts128::new(c1, c2);
    xts.decrypt_area(data, AREA_SECTOR, 0, xts_mode::get_tweak_default);
}

/// cryptsetup's AF_merge: `d = 0; for each stripe but the last: d = H(d ^ stripe)`;
/// key = `d ^ last stripe`, where H is the "diffuse" function over `key_bytes`.
fn af_merge(material: &[u8], key_bytes: usize, hash: Hash, out: &mut [u8]) {
    let stripes = super::AF_STRIPES as usize;
    let mut d = Zeroizing::new(alloc::vec![0u8; key_bytes]);
    for i in 0..stripes - 1 {
        let stripe = &material[i * key_bytes..(i + 1) * key_bytes];
        for (a, b) in d.iter_mut().zip(stripe) {
            *a ^= b;
        }
        diffuse(&mut d, hash);
    }
    let last = &material[(stripes - 1) * key_bytes..stripes * key_bytes];
    for ((o, a), b) in out.iter_mut().zip(d.iter()).zip(last) {
        *o = a ^ b;
    }
}

/// Replaces each hash-length chunk `c_j` of `buf` (the last one possibly shorter) with
/// `H(be32(j) || c_j)`, truncated to the chunk's length.
fn diffuse(buf: &mut [u8], hash: Hash) {
    let hl = hash.output_len();
    let mut out = Zeroizing::new([0u8; 64]);
    for (j, chunk) in buf.chunks_mut(hl).enumerate() {
        let iv = (j as u32).to_be_bytes();
        hash.digest_into(&[&iv, chunk], &mut out[..hl]);
        let n = chunk.len();
        chunk.copy_from_slice(&out[..n]);
    }
}

fn verify_digest(header: &Header, candidate: &[u8]) -> bool {
    let d = header.digest();
    let mut computed = Zeroizing::new(alloc::vec![0u8; d.digest.len()]);
    d.hash
        .pbkdf2(candidate, &d.salt, d.iterations, &mut computed);
    // Constant time over the digest length.
    computed
        .iter()
        .zip(&d.digest)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The diffuse function, for the tests' keyslot writer.
#[cfg(test)]
pub(super) fn tests_diffuse(buf: &mut [u8], hash: Hash) {
    diffuse(buf, hash)
}
