//! LUKS2: the on-disk header (two copies of a 4 KiB binary header, each followed by a
//! JSON metadata area), its validation, and opening a keyslot.
//!
//! Layout (cryptsetup's `docs/on-disk-format-luks2.pdf` and `lib/luks2/luks2.h`):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 6 | magic: `LUKS\xba\xbe` (primary), `SKUL\xba\xbe` (secondary) |
//! | 6 | 2 | version, big-endian: 2 |
//! | 8 | 8 | hdr_size: binary header + JSON area, one of 16 KiB .. 4 MiB (powers of 2) |
//! | 16 | 8 | seqid: incremented on every metadata update |
//! | 24 | 48 | label, NUL-terminated |
//! | 72 | 32 | checksum algorithm, NUL-terminated (`sha256`) |
//! | 104 | 64 | salt (differs between the copies) |
//! | 168 | 40 | UUID, NUL-terminated |
//! | 208 | 48 | subsystem, NUL-terminated |
//! | 256 | 8 | hdr_offset: this copy's offset on the device |
//! | 448 | 64 | checksum of the binary header (this field zeroed) and the JSON area |
//!
//! The primary copy is at offset 0, the secondary at hdr_size; the keyslot areas follow
//! (`config.keyslots_size` bytes), then the data segment.
//!
//! **Both copies** are read, as cryptsetup's `LUKS2_disk_hdr_read` does: a copy is valid
//! when its magic, version, size, offset and checksum are right and its JSON area holds
//! one JSON object (at most [`MAX_JSON_VALUES`] values) followed only by NUL bytes. When
//! the primary is invalid, the secondary is searched for at every allowed size, as
//! cryptsetup does (within the bytes given). Two valid copies with different seqids:
//! the newer is used ([`HeaderNote`] says so; cryptsetup would also rewrite the older).
//! One valid copy: it is used, with a note (cryptsetup would repair the other; sealgate
//! writes nothing). Two valid copies with the **same** seqid but different contents are
//! refused ([`HeaderError::Inconsistent`]): cryptsetup silently takes the primary, but a
//! pair that disagrees without a newer side is not something an update leaves behind.
//! Unlike cryptsetup, a valid copy whose JSON then fails the semantic checks below is not
//! passed over for the other copy: the volume is refused, so an old secondary cannot be
//! promoted by corrupting the primary's JSON.
//!
//! **Metadata checks** (against each other and the device size): `config.json_size`
//! matches hdr_size; both copies and `keyslots_size` fit the device; every keyslot area
//! lies in the keyslots region (after both header copies, before the data), is large
//! enough for its anti-forensic stripes and overlaps no other; the data segment starts
//! after the keyslots region and ends within the device; the segment's digest exists and
//! names the keyslots that can open it.
//!
//! **Refused** (with an error saying which): detached headers (a data segment inside the
//! metadata), integrity segments, more than one segment or segment flags (reencryption
//! in progress), any `config.requirements.mandatory` entry, a segment cipher other than
//! aes-xts-plain64, and a segment no keyslot is assigned to. Tokens are ignored: sealgate
//! opens passphrase keyslots only, and names the tokens in the error when none opens.
//! Keyslots it cannot run (another cipher, KDF or hash) are skipped and named likewise.

mod keyslot;

pub use keyslot::{
    OpenError, Opened, SlotFailure, UnlockError, Unlocked, open, open_keyslot, unlock,
};

use super::kdf::{Argon2Variant, Hash, Kdf};
use super::{Cipher, Segment, SegmentSize};
use crate::sealed::{JsonObject, JsonValue};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64ct::{Base64, Encoding};
use core::fmt;

/// Length of the binary header.
pub const BINARY_HEADER_LEN: u64 = 4096;
/// The header sizes (binary header + JSON area) LUKS2 allows.
pub const HEADER_SIZES: [u64; 9] = [
    16 << 10,
    32 << 10,
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
];
/// The most metadata bytes [`Header::parse`] ever looks at: two copies of the largest
/// header (the secondary is searched at every allowed size when the primary is broken).
pub const MAX_METADATA_LEN: u64 = 8 << 20;
/// Anti-forensic stripes: cryptsetup writes and accepts only 4000.
pub const AF_STRIPES: u32 = 4000;
/// Keyslot, segment, digest and token ids are 0..32 (cryptsetup's maxima).
const MAX_IDS: u64 = 32;
/// The most JSON values (objects, arrays, members, elements) a metadata area may hold.
/// cryptsetup's own metadata has a few hundred even with 32 keyslots and tokens; the
/// bound keeps the parsed tree of a hostile 4 MiB area (`[0,0,0,...]`: 2 bytes per value
/// in the text, ~32 in memory) to a few MiB instead of a hundred.
pub const MAX_JSON_VALUES: usize = 65536;
/// The sector size of keyslot-area encryption.
pub(crate) const AREA_SECTOR: usize = 512;

/// How many bytes from the start of the device [`Header::parse`] needs, given the first
/// bytes read (at least [`BINARY_HEADER_LEN`] for a useful answer) and the device size:
/// both copies of the size the primary declares, or [`MAX_METADATA_LEN`] when the
/// primary's binary header is unusable (the secondary is then searched for). Never more
/// than the device. (A primary whose binary header looks right but whose checksum fails
/// is found out only by [`Header::parse`]; the secondary is then searched within the
/// bytes given, which hold it unless the primary's size field itself was damaged.)
pub fn metadata_read_len(start: &[u8], device_size: u64) -> u64 {
    let want = match binary_precheck(start, 0, false) {
        Ok(hdr_size) => 2 * hdr_size,
        Err(_) => MAX_METADATA_LEN,
    };
    want.min(device_size)
}

/// Which copy of the header is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    /// The primary, at offset 0.
    Primary,
    /// The secondary, at hdr_size.
    Secondary,
}

impl fmt::Display for Copy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Copy::Primary => "primary",
            Copy::Secondary => "secondary",
        })
    }
}

/// Something about the header copies the operator should know (the volume still opens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderNote {
    /// One copy is invalid; the other was used. `cryptsetup repair` rewrites it.
    CopyInvalid {
        /// The invalid copy.
        copy: Copy,
        /// Why.
        error: CopyError,
    },
    /// Both are valid, one is older (an interrupted update); the newer was used.
    CopyOlder {
        /// The older copy.
        copy: Copy,
        /// Its seqid.
        seqid: u64,
        /// The seqid used.
        newer: u64,
    },
}

impl fmt::Display for HeaderNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderNote::CopyInvalid { copy, error } => write!(
                f,
                "the {copy} LUKS2 header is invalid ({error}); the other copy was used \
                 (`cryptsetup repair` restores it)"
            ),
            HeaderNote::CopyOlder { copy, seqid, newer } => write!(
                f,
                "the {copy} LUKS2 header is older (seqid {seqid}, the other {newer}); the \
                 newer copy was used"
            ),
        }
    }
}

/// Why one copy of the header is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyError {
    /// The device ends before the copy does.
    Truncated {
        /// Bytes needed from the device start.
        need: u64,
        /// Bytes given.
        have: u64,
    },
    /// Not `LUKS\xba\xbe` / `SKUL\xba\xbe`.
    Magic,
    /// Not version 2 (version 1 is LUKS1, which sealgate does not open).
    Version(u16),
    /// hdr_size not one of [`HEADER_SIZES`].
    HeaderSize(u64),
    /// hdr_offset is not where the copy was found (or the secondary is not at hdr_size).
    Offset {
        /// Where it was read.
        at: u64,
        /// What it says.
        says: u64,
    },
    /// A checksum algorithm other than sha256, sha384, sha512.
    ChecksumAlgorithm(String),
    /// The checksum does not match.
    Checksum,
    /// The JSON area is not one JSON object followed by NUL bytes.
    Json(&'static str),
    /// (Secondary, when the primary is invalid) no valid copy at any allowed offset.
    NotFound,
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Truncated { need, have } => {
                write!(f, "needs {need} bytes of the device, only {have} given")
            }
            CopyError::Magic => f.write_str("no LUKS2 magic"),
            CopyError::Version(1) => f.write_str("LUKS1 header (only LUKS2 is supported)"),
            CopyError::Version(v) => write!(f, "version {v}, not 2"),
            CopyError::HeaderSize(s) => {
                write!(f, "header size {s} is not one of 16 KiB, 32 KiB, ... 4 MiB")
            }
            CopyError::Offset { at, says } => {
                write!(f, "found at offset {at} but says it is at {says}")
            }
            CopyError::ChecksumAlgorithm(a) => write!(
                f,
                "checksum algorithm {a:?} is not supported (sha256, sha384, sha512)"
            ),
            CopyError::Checksum => f.write_str("checksum mismatch"),
            CopyError::Json(why) => write!(f, "JSON area: {why}"),
            CopyError::NotFound => {
                f.write_str("no valid copy at any of the allowed offsets (16 KiB .. 4 MiB)")
            }
        }
    }
}

/// Why a LUKS2 header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Neither copy is valid.
    NoValidCopy {
        /// Why the primary is not.
        primary: CopyError,
        /// Why the secondary is not: at the primary's hdr_size, or [`CopyError::NotFound`]
        /// when the primary is invalid, every allowed offset was searched, and the
        /// primary's binary header declares no size.
        secondary: CopyError,
    },
    /// Both copies are valid with the same seqid but say different things.
    Inconsistent {
        /// The seqid both claim.
        seqid: u64,
    },
    /// The metadata is malformed or contradicts itself or the device size.
    Invalid(String),
    /// A valid LUKS2 volume using something sealgate does not open.
    Unsupported(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::NoValidCopy { primary, secondary } => write!(
                f,
                "no valid LUKS2 header: primary: {primary}; secondary: {secondary}"
            ),
            HeaderError::Inconsistent { seqid } => write!(
                f,
                "the two LUKS2 header copies both have seqid {seqid} but differ: refused \
                 (not a state an interrupted update leaves; the header may have been \
                 tampered with)"
            ),
            HeaderError::Invalid(what) => write!(f, "invalid LUKS2 metadata: {what}"),
            HeaderError::Unsupported(what) => write!(f, "unsupported LUKS2 volume: {what}"),
        }
    }
}

fn invalid(what: impl Into<String>) -> HeaderError {
    HeaderError::Invalid(what.into())
}

fn unsupported(what: impl Into<String>) -> HeaderError {
    HeaderError::Unsupported(what.into())
}

/// A keyslot's priority (cryptsetup: 2 = prefer, 1 = normal, 0 = ignore unless named).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// 0: not tried by [`open`].
    Ignore,
    /// 1 (the default).
    Normal,
    /// 2: tried first.
    Prefer,
}

/// A keyslot of the volume's segment, as sealgate can open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyslot {
    /// Its id.
    pub id: u32,
    /// Its priority.
    pub priority: Priority,
    /// The volume key's length in bytes.
    pub key_bytes: usize,
    /// The KDF that turns the passphrase into the area key.
    pub kdf: Kdf,
    /// Anti-forensic splitter hash.
    pub af_hash: Hash,
    /// Keyslot area offset on the device, bytes.
    pub area_offset: u64,
    /// Keyslot area size, bytes (at least [`Keyslot::material_len`]).
    pub area_size: u64,
    /// The area's cipher (aes-xts-plain64).
    pub area_cipher: Cipher,
    /// The area key's length in bytes.
    pub area_key_bytes: usize,
}

impl Keyslot {
    /// The bytes of the area that hold key material: `key_bytes * 4000` stripes, rounded
    /// up to whole 512-byte sectors.
    pub fn material_len(&self) -> usize {
        af_material_len(self.key_bytes)
    }
}

fn af_material_len(key_bytes: usize) -> usize {
    (key_bytes * AF_STRIPES as usize).div_ceil(AREA_SECTOR) * AREA_SECTOR
}

/// A keyslot sealgate cannot run (skipped by [`open`], named in its error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKeyslot {
    /// Its id.
    pub id: u32,
    /// Why.
    pub why: String,
}

/// The volume-key digest of the segment (LUKS2 digest type `pbkdf2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    /// Its id (the `d<id>` of cryptsetup's keyring description).
    pub id: u32,
    /// PBKDF2's hash.
    pub hash: Hash,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// The expected PBKDF2 output.
    pub digest: Vec<u8>,
}

/// A parsed, validated LUKS2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    uuid: String,
    label: String,
    subsystem: String,
    seqid: u64,
    hdr_size: u64,
    keyslots_size: u64,
    copy: Copy,
    notes: Vec<HeaderNote>,
    segment: Segment,
    digest: Digest,
    keyslots: Vec<Keyslot>,
    skipped: Vec<SkippedKeyslot>,
    tokens: Vec<String>,
}

impl Header {
    /// Parses and validates the header from `metadata`, the first bytes of the device
    /// (at least [`metadata_read_len`] of them), for a device of `device_size` bytes.
    pub fn parse(metadata: &[u8], device_size: u64) -> Result<Header, HeaderError> {
        let primary = read_copy(metadata, 0, false);
        let secondary = match &primary {
            Ok(p) => read_copy(metadata, p.hdr_size, true),
            // The primary gives no trustworthy size: look at every allowed offset within
            // the bytes given, as cryptsetup does.
            // When none is valid, the error reported is the one at the size the primary's
            // binary header declares, if it declares one.
            Err(_) => HEADER_SIZES
                .iter()
                .map(|&off| read_copy(metadata, off, true))
                .find(|c| c.is_ok())
                .unwrap_or_else(|| match binary_precheck(metadata, 0, false) {
                    Ok(hdr_size) => read_copy(metadata, hdr_size, true),
                    Err(_) => Err(CopyError::NotFound),
                }),
        };
        let mut notes = Vec::new();
        let (chosen, which) = match (primary, secondary) {
            (Ok(p), Ok(s)) => {
                if p.seqid > s.seqid {
                    notes.push(HeaderNote::CopyOlder {
                        copy: Copy::Secondary,
                        seqid: s.seqid,
                        newer: p.seqid,
                    });
                    (p, Copy::Primary)
                } else if s.seqid > p.seqid {
                    notes.push(HeaderNote::CopyOlder {
                        copy: Copy::Primary,
                        seqid: p.seqid,
                        newer: s.seqid,
                    });
                    (s, Copy::Secondary)
                } else if p.same_contents(&s) {
                    (p, Copy::Primary)
                } else {
                    return Err(HeaderError::Inconsistent { seqid: p.seqid });
                }
            }
            (Ok(p), Err(e)) => {
                notes.push(HeaderNote::CopyInvalid {
                    copy: Copy::Secondary,
                    error: e,
                });
                (p, Copy::Primary)
            }
            (Err(e), Ok(s)) => {
                notes.push(HeaderNote::CopyInvalid {
                    copy: Copy::Primary,
                    error: e,
                });
                (s, Copy::Secondary)
            }
            (Err(primary), Err(secondary)) => {
                return Err(HeaderError::NoValidCopy { primary, secondary });
            }
        };
        build(&chosen, which, notes, device_size)
    }

    /// The UUID (`cryptsetup luksUUID`).
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The label (empty when none).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The subsystem (empty when none).
    pub fn subsystem(&self) -> &str {
        &self.subsystem
    }

    /// The seqid of the copy in use.
    pub fn seqid(&self) -> u64 {
        self.seqid
    }

    /// Binary header + JSON area size of one copy.
    pub fn hdr_size(&self) -> u64 {
        self.hdr_size
    }

    /// Size of the keyslots region (after both copies).
    pub fn keyslots_size(&self) -> u64 {
        self.keyslots_size
    }

    /// Which copy is in use.
    pub fn copy_used(&self) -> Copy {
        self.copy
    }

    /// What the operator should know about the copies (empty when both agree).
    pub fn notes(&self) -> &[HeaderNote] {
        &self.notes
    }

    /// The data segment to map.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The segment's volume-key digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The keyslots sealgate can open for the segment, in id order.
    pub fn keyslots(&self) -> &[Keyslot] {
        &self.keyslots
    }

    /// Keyslots of the segment that sealgate cannot run, and why.
    pub fn skipped_keyslots(&self) -> &[SkippedKeyslot] {
        &self.skipped
    }

    /// The token types present (`systemd-tpm2`, `luks2-keyring`, ...), ignored by sealgate.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The keyslot with this id, if sealgate can open it.
    pub fn keyslot(&self, id: u32) -> Option<&Keyslot> {
        self.keyslots.iter().find(|k| k.id == id)
    }

    /// Which bytes of the device keyslot `id` needs: `(offset, len)`. Read exactly these
    /// and pass them to [`open_keyslot`].
    pub fn keyslot_area(&self, id: u32) -> Option<(u64, usize)> {
        self.keyslot(id).map(|k| (k.area_offset, k.material_len()))
    }

    /// The keyslots [`open`] tries, in cryptsetup's order: priority 2 first, then 1, by
    /// id within a priority; priority 0 never.
    pub fn open_order(&self) -> Vec<u32> {
        let mut order: Vec<&Keyslot> = self
            .keyslots
            .iter()
            .filter(|k| k.priority != Priority::Ignore)
            .collect();
        order.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        order.iter().map(|k| k.id).collect()
    }

    /// The description cryptsetup gives the volume key in the kernel keyring
    /// (`cryptsetup:<uuid>-d<digest id>`), for a dm-crypt key reference such as
    /// `:64:logon:cryptsetup:<uuid>-d0` ([`super::keyring_key_ref`]).
    pub fn keyring_description(&self) -> String {
        format!("cryptsetup:{}-d{}", self.uuid, self.digest.id)
    }
}

/// One valid copy, as read.
struct CopyView<'a> {
    hdr_size: u64,
    seqid: u64,
    label: &'a [u8],
    checksum_alg: &'a [u8],
    uuid: &'a [u8],
    subsystem: &'a [u8],
    area: &'a [u8],
    json: JsonObject,
}

impl CopyView<'_> {
    fn same_contents(&self, other: &CopyView<'_>) -> bool {
        self.hdr_size == other.hdr_size
            && self.label == other.label
            && self.checksum_alg == other.checksum_alg
            && self.uuid == other.uuid
            && self.subsystem == other.subsystem
            && self.area == other.area
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// A NUL-terminated field (the whole field when no NUL).
fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&c| c == 0) {
        Some(n) => &field[..n],
        None => field,
    }
}

fn slice_at(bytes: &[u8], at: u64, len: u64) -> Result<&[u8], CopyError> {
    let need = at.saturating_add(len);
    let have = bytes.len() as u64;
    if need > have {
        return Err(CopyError::Truncated { need, have });
    }
    Ok(&bytes[at as usize..need as usize])
}

/// The checks before the checksum (cryptsetup's `hdr_disk_sanity_check_pre`): returns
/// hdr_size.
fn binary_precheck(bytes: &[u8], at: u64, secondary: bool) -> Result<u64, CopyError> {
    let bin = slice_at(bytes, at, BINARY_HEADER_LEN)?;
    let magic: &[u8] = if secondary {
        b"SKUL\xba\xbe"
    } else {
        b"LUKS\xba\xbe"
    };
    if &bin[..6] != magic {
        return Err(CopyError::Magic);
    }
    let version = be16(bin, 6);
    if version != 2 {
        return Err(CopyError::Version(version));
    }
    let says = be64(bin, 256);
    if says != at {
        return Err(CopyError::Offset { at, says });
    }
    let hdr_size = be64(bin, 8);
    if !HEADER_SIZES.contains(&hdr_size) {
        return Err(CopyError::HeaderSize(hdr_size));
    }
    if secondary && at != hdr_size {
        return Err(CopyError::Offset { at, says: hdr_size });
    }
    Ok(hdr_size)
}

fn read_copy(bytes: &[u8], at: u64, secondary: bool) -> Result<CopyView<'_>, CopyError> {
    let hdr_size = binary_precheck(bytes, at, secondary)?;
    let whole = slice_at(bytes, at, hdr_size)?;
    let (bin, area) = whole.split_at(BINARY_HEADER_LEN as usize);
    let checksum_alg = cstr(&bin[72..104]);
    let hash = core::str::from_utf8(checksum_alg)
        .ok()
        .and_then(Hash::from_name)
        .ok_or_else(|| {
            CopyError::ChecksumAlgorithm(String::from_utf8_lossy(checksum_alg).into_owned())
        })?;
    let mut zeroed = [0u8; BINARY_HEADER_LEN as usize];
    zeroed.copy_from_slice(bin);
    zeroed[448..512].fill(0);
    let mut sum = [0u8; 64];
    hash.digest_into(&[&zeroed, area], &mut sum[..hash.output_len()]);
    if sum[..hash.output_len()] != bin[448..448 + hash.output_len()] {
        return Err(CopyError::Checksum);
    }
    let json = parse_json_area(area).map_err(CopyError::Json)?;
    Ok(CopyView {
        hdr_size,
        seqid: be64(bin, 16),
        label: cstr(&bin[24..72]),
        checksum_alg,
        uuid: cstr(&bin[168..208]),
        subsystem: cstr(&bin[208..256]),
        area,
        json,
    })
}

/// The JSON area: `{`, one JSON object, then only NUL bytes (at least one), as
/// cryptsetup's `validate_json_area` wants it.
fn parse_json_area(area: &[u8]) -> Result<JsonObject, &'static str> {
    if area.first() != Some(&b'{') {
        return Err("does not start with '{'");
    }
    let end = area
        .iter()
        .position(|&c| c == 0)
        .ok_or("no NUL byte after the JSON text")?;
    if area[end..].iter().any(|&c| c != 0) {
        return Err("bytes other than NUL after the JSON text");
    }
    if json_values(&area[..end]) > MAX_JSON_VALUES {
        return Err("more than 65536 JSON values");
    }
    JsonObject::from_json(&area[..end]).map_err(|e| match e {
        crate::sealed::JsonError::DuplicateMember => "an object has a duplicate member",
        _ => "not a valid JSON object",
    })
}

/// An upper bound of the values in a JSON text: containers and separators outside
/// strings, plus one. Linear, no allocation; run before the text is parsed.
fn json_values(text: &[u8]) -> usize {
    let mut n = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &c in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' | b',' | b':' => n += 1,
            _ => {}
        }
    }
    n
}

// ---- the JSON metadata ----

fn as_obj<'a>(v: &'a JsonValue, what: &str) -> Result<&'a JsonObject, HeaderError> {
    match v {
        JsonValue::Object(o) => Ok(o),
        _ => Err(invalid(format!("{what} is not an object"))),
    }
}

fn member<'a>(o: &'a JsonObject, name: &str, what: &str) -> Result<&'a JsonValue, HeaderError> {
    o.get(name)
        .ok_or_else(|| invalid(format!("{what} has no \"{name}\"")))
}

fn obj_member<'a>(
    o: &'a JsonObject,
    name: &str,
    what: &str,
) -> Result<&'a JsonObject, HeaderError> {
    as_obj(member(o, name, what)?, &format!("{what}.{name}"))
}

fn str_member<'a>(o: &'a JsonObject, name: &str, what: &str) -> Result<&'a str, HeaderError> {
    match member(o, name, what)? {
        JsonValue::String(s) => Ok(s),
        _ => Err(invalid(format!("{what}.{name} is not a string"))),
    }
}

/// A uint64 as LUKS2 writes it: a decimal string.
fn u64_member(o: &JsonObject, name: &str, what: &str) -> Result<u64, HeaderError> {
    let s = str_member(o, name, what)?;
    parse_decimal(s).ok_or_else(|| invalid(format!("{what}.{name} is not a decimal uint64")))
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A small integer as LUKS2 writes it: a JSON number.
fn u32_member(o: &JsonObject, name: &str, what: &str) -> Result<u32, HeaderError> {
    match member(o, name, what)? {
        JsonValue::Number(n) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| invalid(format!("{what}.{name} is not a uint32"))),
        _ => Err(invalid(format!("{what}.{name} is not a number"))),
    }
}

fn b64_member(o: &JsonObject, name: &str, what: &str, max: usize) -> Result<Vec<u8>, HeaderError> {
    let s = str_member(o, name, what)?;
    if s.len() > max.div_ceil(3) * 4 {
        return Err(invalid(format!("{what}.{name} is longer than {max} bytes")));
    }
    Base64::decode_vec(s).map_err(|_| invalid(format!("{what}.{name} is not base64")))
}

fn hash_member(
    o: &JsonObject,
    name: &str,
    what: &str,
) -> Result<Result<Hash, String>, HeaderError> {
    let s = str_member(o, name, what)?;
    Ok(Hash::from_name(s)
        .ok_or_else(|| format!("hash {s:?} is not supported (sha256, sha384, sha512)")))
}

/// The id of a keyslot/segment/digest/token: a decimal below 32.
fn parse_id(s: &str, what: &str) -> Result<u32, HeaderError> {
    parse_decimal(s)
        .filter(|&v| v < MAX_IDS && (s == "0" || !s.starts_with('0')))
        .map(|v| v as u32)
        .ok_or_else(|| invalid(format!("{what} id {s:?} is not a number below {MAX_IDS}")))
}

fn id_list(o: &JsonObject, name: &str, what: &str) -> Result<Vec<u32>, HeaderError> {
    match member(o, name, what)? {
        JsonValue::Array(items) => items
            .iter()
            .map(|v| match v {
                JsonValue::String(s) => parse_id(s, what),
                _ => Err(invalid(format!("{what}.{name} holds a non-string"))),
            })
            .collect(),
        _ => Err(invalid(format!("{what}.{name} is not an array"))),
    }
}

fn string_list<'a>(v: &'a JsonValue, what: &str) -> Result<Vec<&'a str>, HeaderError> {
    match v {
        JsonValue::Array(items) => items
            .iter()
            .map(|v| match v {
                JsonValue::String(s) => Ok(s.as_str()),
                _ => Err(invalid(format!("{what} holds a non-string"))),
            })
            .collect(),
        _ => Err(invalid(format!("{what} is not an array"))),
    }
}

fn utf8_field(b: &[u8], what: &str) -> Result<String, HeaderError> {
    core::str::from_utf8(b)
        .map(String::from)
        .map_err(|_| invalid(format!("the {what} is not UTF-8")))
}

fn build(
    copy: &CopyView<'_>,
    which: Copy,
    notes: Vec<HeaderNote>,
    device_size: u64,
) -> Result<Header, HeaderError> {
    let top = &copy.json;
    let uuid = utf8_field(copy.uuid, "UUID")?;
    if uuid.is_empty() || !uuid.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
        return Err(invalid("the UUID is not a hex UUID"));
    }
    let label = utf8_field(copy.label, "label")?;
    let subsystem = utf8_field(copy.subsystem, "subsystem")?;

    // config
    let config = obj_member(top, "config", "the metadata")?;
    let json_size = u64_member(config, "json_size", "config")?;
    if json_size != copy.hdr_size - BINARY_HEADER_LEN {
        return Err(invalid(format!(
            "config.json_size {json_size} does not match the header size {} - 4096",
            copy.hdr_size
        )));
    }
    let keyslots_size = u64_member(config, "keyslots_size", "config")?;
    if !keyslots_size.is_multiple_of(4096) {
        return Err(invalid("config.keyslots_size is not a multiple of 4096"));
    }
    let metadata_end = (2 * copy.hdr_size)
        .checked_add(keyslots_size)
        .ok_or_else(|| invalid("config.keyslots_size overflows"))?;
    if metadata_end > device_size {
        return Err(invalid(format!(
            "the headers and keyslots need {metadata_end} bytes, the device has {device_size}"
        )));
    }
    if let Some(req) = config.get("requirements") {
        let req = as_obj(req, "config.requirements")?;
        if let Some(m) = req.get("mandatory") {
            let names = string_list(m, "config.requirements.mandatory")?;
            if !names.is_empty() {
                return Err(unsupported(format!(
                    "mandatory requirements {names:?} (reencryption in progress or a \
                     feature sealgate does not implement; finish it with cryptsetup)"
                )));
            }
        }
    }

    // segments: exactly one, crypt, no integrity, no flags
    let segments = obj_member(top, "segments", "the metadata")?;
    if segments.len() != 1 {
        return Err(unsupported(format!(
            "{} data segments (only one is supported; several mean a reencryption in \
             progress)",
            segments.len()
        )));
    }
    let (seg_id_s, seg_v) = segments
        .iter()
        .next()
        .ok_or_else(|| invalid("no data segment"))?;
    let seg_id = parse_id(seg_id_s, "segment")?;
    let seg = as_obj(seg_v, "the data segment")?;
    let seg_type = str_member(seg, "type", "the segment")?;
    if seg_type != "crypt" {
        return Err(unsupported(format!(
            "segment type {seg_type:?} (only \"crypt\")"
        )));
    }
    if seg.get("integrity").is_some() {
        return Err(unsupported(
            "the data segment has integrity protection (dm-integrity); sealgate opens \
             plain dm-crypt segments only",
        ));
    }
    if let Some(flags) = seg.get("flags") {
        let flags = string_list(flags, "segment flags")?;
        if !flags.is_empty() {
            return Err(unsupported(format!(
                "segment flags {flags:?} (reencryption in progress)"
            )));
        }
    }
    let offset = u64_member(seg, "offset", "the segment")?;
    let iv_tweak = u64_member(seg, "iv_tweak", "the segment")?;
    let encryption = str_member(seg, "encryption", "the segment")?;
    let sector_size = u32_member(seg, "sector_size", "the segment")?;
    if !matches!(sector_size, 512 | 1024 | 2048 | 4096) {
        return Err(invalid(format!(
            "segment sector size {sector_size} is not 512, 1024, 2048 or 4096"
        )));
    }
    let size = match str_member(seg, "size", "the segment")? {
        "dynamic" => SegmentSize::Dynamic,
        s => SegmentSize::Bytes(
            parse_decimal(s)
                .ok_or_else(|| invalid("segment size is not a number or \"dynamic\""))?,
        ),
    };
    if offset < metadata_end {
        return Err(if offset < 2 * copy.hdr_size {
            unsupported(format!(
                "the data segment starts at {offset}, inside the header: a detached \
                 header (sealgate opens volumes with their header on the device only)"
            ))
        } else {
            invalid(format!(
                "the data segment starts at {offset}, inside the keyslots region \
                 (which ends at {metadata_end})"
            ))
        });
    }
    if !offset.is_multiple_of(u64::from(sector_size)) {
        return Err(invalid("the data segment offset is not sector aligned"));
    }
    if !iv_tweak.is_multiple_of(u64::from(sector_size / 512)) {
        return Err(invalid("the segment's iv_tweak is not sector aligned"));
    }
    let cipher = Cipher::from_spec(encryption).ok_or_else(|| {
        unsupported(format!(
            "data cipher {encryption:?} (sealgate supports aes-xts-plain64)"
        ))
    })?;

    // digests: the one of the segment
    let digests = obj_member(top, "digests", "the metadata")?;
    let mut digest = None;
    for (id_s, v) in digests.iter() {
        let id = parse_id(id_s, "digest")?;
        let d = as_obj(v, "a digest")?;
        let segs = id_list(d, "segments", "a digest")?;
        if !segs.contains(&seg_id) {
            continue;
        }
        if digest.is_some() {
            return Err(invalid("two digests for the data segment"));
        }
        digest = Some((id, d));
    }
    let (digest_id, d) =
        digest.ok_or_else(|| unsupported("no digest (and so no keyslot) for the data segment"))?;
    let dtype = str_member(d, "type", "the digest")?;
    if dtype != "pbkdf2" {
        return Err(unsupported(format!("digest type {dtype:?} (only pbkdf2)")));
    }
    let dhash = hash_member(d, "hash", "the digest")?.map_err(unsupported)?;
    let digest = Digest {
        id: digest_id,
        hash: dhash,
        iterations: u32_member(d, "iterations", "the digest")?,
        salt: b64_member(d, "salt", "the digest", 256)?,
        digest: b64_member(d, "digest", "the digest", 64)?,
    };
    if digest.digest.len() < 16 || digest.digest.len() > dhash.output_len() {
        return Err(invalid(
            "the digest's length is not between 16 bytes and its hash's",
        ));
    }
    let digest_slots = id_list(d, "keyslots", "the digest")?;

    // keyslots: every area checked (bounds, overlaps); those of the digest opened
    let keyslots_obj = obj_member(top, "keyslots", "the metadata")?;
    let region = (2 * copy.hdr_size, metadata_end);
    let mut areas: Vec<(u64, u64, u32)> = Vec::new();
    let mut keyslots = Vec::new();
    let mut skipped = Vec::new();
    let mut key_bytes = None;
    for (id_s, v) in keyslots_obj.iter() {
        let id = parse_id(id_s, "keyslot")?;
        let k = as_obj(v, "a keyslot")?;
        let what = format!("keyslot {id}");
        let area = obj_member(k, "area", &what)?;
        let area_offset = u64_member(area, "offset", &what)?;
        let area_size = u64_member(area, "size", &what)?;
        let area_end = area_offset
            .checked_add(area_size)
            .ok_or_else(|| invalid(format!("{what}: area overflows")))?;
        if area_offset < region.0 || area_end > region.1 || area_size == 0 {
            return Err(invalid(format!(
                "{what}: area {area_offset}..{area_end} is outside the keyslots region \
                 {}..{}",
                region.0, region.1
            )));
        }
        if !area_offset.is_multiple_of(4096) {
            return Err(invalid(format!("{what}: area offset is not 4096-aligned")));
        }
        if let Some((o, e, other)) = areas
            .iter()
            .find(|(o, e, _)| area_offset < *e && *o < area_end)
        {
            return Err(invalid(format!(
                "{what}: area {area_offset}..{area_end} overlaps keyslot {other}'s {o}..{e}"
            )));
        }
        areas.push((area_offset, area_end, id));
        if !digest_slots.contains(&id) {
            continue;
        }
        match keyslot(k, id, area, area_offset, area_size, &what)? {
            Ok(slot) => {
                if *key_bytes.get_or_insert(slot.key_bytes) != slot.key_bytes {
                    return Err(invalid("the segment's keyslots disagree on the key size"));
                }
                keyslots.push(slot)
            }
            Err(why) => skipped.push(SkippedKeyslot { id, why }),
        }
    }
    for id in &digest_slots {
        if !areas.iter().any(|(_, _, k)| k == id) {
            return Err(invalid(format!(
                "the digest names keyslot {id}, which does not exist"
            )));
        }
    }
    if keyslots.is_empty() && skipped.is_empty() {
        return Err(unsupported("no keyslot is assigned to the data segment"));
    }
    let key_bytes = match key_bytes {
        Some(k) => k,
        None => {
            // Only unusable keyslots: report them.
            let list: Vec<String> = skipped
                .iter()
                .map(|s| format!("keyslot {}: {}", s.id, s.why))
                .collect();
            return Err(unsupported(list.join("; ")));
        }
    };
    if !cipher.key_bytes_ok(key_bytes) {
        return Err(unsupported(format!(
            "a {}-bit volume key for {cipher} (256 or 512 bits)",
            key_bytes * 8
        )));
    }
    let segment = Segment {
        offset_bytes: offset,
        size,
        cipher,
        key_bytes,
        sector_size,
        iv_tweak,
        iv_large_sectors: false,
    };
    segment
        .length_sectors(device_size)
        .map_err(|e| invalid(e.to_string()))?;

    // tokens: recorded, never run
    let tokens_obj = obj_member(top, "tokens", "the metadata")?;
    let mut tokens = Vec::new();
    for (id_s, v) in tokens_obj.iter() {
        parse_id(id_s, "token")?;
        let t = as_obj(v, "a token")?;
        tokens.push(String::from(str_member(t, "type", "a token")?));
    }

    Ok(Header {
        uuid,
        label,
        subsystem,
        seqid: copy.seqid,
        hdr_size: copy.hdr_size,
        keyslots_size,
        copy: which,
        notes,
        segment,
        digest,
        keyslots,
        skipped,
        tokens,
    })
}

/// A keyslot of the segment: `Ok(Ok(slot))` when sealgate can open it, `Ok(Err(why))`
/// when it is well-formed but uses what sealgate does not run, `Err` when malformed.
fn keyslot(
    k: &JsonObject,
    id: u32,
    area: &JsonObject,
    area_offset: u64,
    area_size: u64,
    what: &str,
) -> Result<Result<Keyslot, String>, HeaderError> {
    let ktype = str_member(k, "type", what)?;
    if ktype != "luks2" {
        return Ok(Err(format!("keyslot type {ktype:?} (only luks2)")));
    }
    let key_bytes = u32_member(k, "key_size", what)? as usize;
    if key_bytes == 0 || key_bytes > 128 {
        return Err(invalid(format!("{what}: key size {key_bytes} bytes")));
    }
    let priority = match k.get("priority") {
        None => Priority::Normal,
        Some(_) => match u32_member(k, "priority", what)? {
            0 => Priority::Ignore,
            1 => Priority::Normal,
            2 => Priority::Prefer,
            p => return Err(invalid(format!("{what}: priority {p}"))),
        },
    };
    let af = obj_member(k, "af", what)?;
    let af_type = str_member(af, "type", what)?;
    if af_type != "luks1" {
        return Ok(Err(format!(
            "anti-forensic splitter {af_type:?} (only luks1)"
        )));
    }
    let stripes = u32_member(af, "stripes", what)?;
    if stripes != AF_STRIPES {
        return Err(invalid(format!(
            "{what}: {stripes} anti-forensic stripes (LUKS2 uses {AF_STRIPES})"
        )));
    }
    if (area_size as u128) < af_material_len(key_bytes) as u128 {
        return Err(invalid(format!(
            "{what}: area of {area_size} bytes is smaller than its {} bytes of key material",
            af_material_len(key_bytes)
        )));
    }
    let af_hash = match hash_member(af, "hash", what)? {
        Ok(h) => h,
        Err(why) => return Ok(Err(format!("anti-forensic {why}"))),
    };
    let area_type = str_member(area, "type", what)?;
    if area_type != "raw" {
        return Ok(Err(format!("area type {area_type:?} (only raw)")));
    }
    let enc = str_member(area, "encryption", what)?;
    let Some(area_cipher) = Cipher::from_spec(enc) else {
        return Ok(Err(format!("area cipher {enc:?} (only aes-xts-plain64)")));
    };
    let area_key_bytes = u32_member(area, "key_size", what)? as usize;
    if !area_cipher.key_bytes_ok(area_key_bytes) {
        return Ok(Err(format!(
            "a {}-bit area key for {area_cipher}",
            area_key_bytes * 8
        )));
    }
    let kdf_o = obj_member(k, "kdf", what)?;
    let kdf_type = str_member(kdf_o, "type", what)?;
    let salt = b64_member(kdf_o, "salt", what, 256)?;
    let kdf = match kdf_type {
        "pbkdf2" => {
            let hash = match hash_member(kdf_o, "hash", what)? {
                Ok(h) => h,
                Err(why) => return Ok(Err(format!("PBKDF2 {why}"))),
            };
            Kdf::Pbkdf2 {
                hash,
                iterations: u32_member(kdf_o, "iterations", what)?,
                salt,
            }
        }
        "argon2i" | "argon2id" => Kdf::Argon2 {
            variant: if kdf_type == "argon2i" {
                Argon2Variant::Argon2i
            } else {
                Argon2Variant::Argon2id
            },
            time: u32_member(kdf_o, "time", what)?,
            memory_kib: u32_member(kdf_o, "memory", what)?,
            parallel: u32_member(kdf_o, "cpus", what)?,
            salt,
        },
        other => return Ok(Err(format!("KDF {other:?} (pbkdf2, argon2i, argon2id)"))),
    };
    Ok(Ok(Keyslot {
        id,
        priority,
        key_bytes,
        kdf,
        af_hash,
        area_offset,
        area_size,
        area_cipher,
        area_key_bytes,
    }))
}

#[cfg(test)]
mod tests;
