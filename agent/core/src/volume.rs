//! Encrypted volumes: what the platform layer needs to map a LUKS2 or plain dm-crypt
//! volume with device-mapper, computed without any I/O.
//!
//! - [`luks2`] parses a LUKS2 header (both copies, the JSON metadata), validates every
//!   offset and size against the others and against the device, and opens a keyslot
//!   (KDF, anti-forensic merge, keyslot-area decryption, digest check) into a
//!   [`VolumeKey`].
//! - [`plain`] describes a plain dm-crypt volume whose raw key the KBS holds.
//!
//! Both end in a [`Segment`]: where the ciphertext lies on the device and how it is
//! encrypted. [`Segment::crypt_params`] writes the dm-crypt target's parameters with a
//! key *reference* (a kernel keyring key, as cryptsetup passes LUKS2 keys), so the key
//! itself never appears in the table.
//!
//! The caller reads the bytes: [`luks2::metadata_read_len`] says how much of the device
//! start to read for [`luks2::Header::parse`], [`luks2::Header::keyslot_area`] which
//! bytes a keyslot needs, and [`luks2::open_keyslot`] (or [`luks2::open`], which tries
//! the keyslots in cryptsetup's order) does the rest. Every key and intermediate is
//! zeroized when dropped.

pub mod integrity;
pub mod kdf;
pub mod luks2;
pub mod plain;
pub mod secure_mount;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroizing;

/// The only data cipher supported: what `cryptsetup luksFormat` uses by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// AES in XTS mode, IV = the 64-bit little-endian sector number (`aes-xts-plain64`),
    /// with a 256-bit (AES-128) or 512-bit (AES-256) key.
    AesXtsPlain64,
}

impl Cipher {
    /// Parses cryptsetup's cipher spec (`aes-xts-plain64`); `None` for anything else.
    pub fn from_spec(spec: &str) -> Option<Cipher> {
        match spec {
            "aes-xts-plain64" => Some(Cipher::AesXtsPlain64),
            _ => None,
        }
    }

    /// The dm-crypt / cryptsetup spelling.
    pub fn spec(self) -> &'static str {
        match self {
            Cipher::AesXtsPlain64 => "aes-xts-plain64",
        }
    }

    /// Whether `key_bytes` is a key size this cipher takes (XTS: two AES keys).
    pub fn key_bytes_ok(self, key_bytes: usize) -> bool {
        match self {
            Cipher::AesXtsPlain64 => key_bytes == 32 || key_bytes == 64,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec())
    }
}

/// How long the encrypted segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentSize {
    /// To the end of the device (LUKS2 `"size": "dynamic"`).
    Dynamic,
    /// Exactly this many bytes.
    Bytes(u64),
}

/// An encrypted data segment: everything dm-crypt needs except the device and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where the ciphertext starts on the device, in bytes (a multiple of 512).
    pub offset_bytes: u64,
    /// Its length.
    pub size: SegmentSize,
    /// The cipher.
    pub cipher: Cipher,
    /// The volume key's length in bytes (32 or 64 for aes-xts-plain64).
    pub key_bytes: usize,
    /// The encryption sector size: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
    /// The IV of the segment's first sector, in 512-byte units (LUKS2 `iv_tweak`; dm-crypt
    /// `iv_offset`).
    pub iv_tweak: u64,
    /// Whether the IV counts sectors of `sector_size` rather than of 512 bytes (dm-crypt
    /// `iv_large_sectors`). Never for LUKS2 (cryptsetup allows it for plain mode only).
    pub iv_large_sectors: bool,
}

/// Why a segment does not fit the device it is to be mapped on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// The device ends before the segment starts, or before its declared end.
    OutsideDevice {
        /// Segment offset, bytes.
        offset: u64,
        /// Segment end, bytes (the offset for a dynamic segment).
        end: u64,
        /// Device size, bytes.
        device_size: u64,
    },
    /// The segment's length is not a whole number of encryption sectors.
    NotSectorAligned {
        /// Its length in bytes.
        len: u64,
        /// The encryption sector size.
        sector_size: u32,
    },
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentError::OutsideDevice {
                offset,
                end,
                device_size,
            } => write!(
                f,
                "the encrypted segment (bytes {offset}..{end}) does not fit the device \
                 ({device_size} bytes)"
            ),
            SegmentError::NotSectorAligned { len, sector_size } => write!(
                f,
                "the encrypted segment is {len} bytes long, not a multiple of its \
                 {sector_size}-byte sector size"
            ),
        }
    }
}

impl Segment {
    /// The mapped device's length in 512-byte sectors (the dm table's length) on a device
    /// of `device_size` bytes.
    pub fn length_sectors(&self, device_size: u64) -> Result<u64, SegmentError> {
        let outside = |end| SegmentError::OutsideDevice {
            offset: self.offset_bytes,
            end,
            device_size,
        };
        let len = match self.size {
            SegmentSize::Dynamic => {
                if device_size <= self.offset_bytes {
                    return Err(outside(self.offset_bytes));
                }
                device_size - self.offset_bytes
            }
            SegmentSize::Bytes(len) => {
                let end = self
                    .offset_bytes
                    .checked_add(len)
                    .ok_or(outside(u64::MAX))?;
                if end > device_size || len == 0 {
                    return Err(outside(end));
                }
                len
            }
        };
        if !len.is_multiple_of(u64::from(self.sector_size)) {
            return Err(SegmentError::NotSectorAligned {
                len,
                sector_size: self.sector_size,
            });
        }
        Ok(len / 512)
    }

    /// The dm-crypt target's parameters (the table line after `<start> <length> crypt`):
    /// `<cipher> <key_ref> <iv_offset> <device> <offset> [<#opts> <opts>...]`, as
    /// cryptsetup writes them: `sector_size:<n>` when the sector is not 512 bytes,
    /// `iv_large_sectors` when set (plain mode only).
    ///
    /// `key_ref` is the key as dm-crypt should find it; never the key itself. For the
    /// kernel keyring, [`keyring_key_ref`] builds it (`:64:logon:cryptsetup:<uuid>-d0`).
    /// `device` is the backing device (`/dev/vda` or `major:minor`).
    pub fn crypt_params(&self, key_ref: &str, device: &str) -> String {
        let mut opts: Vec<String> = Vec::new();
        if self.iv_large_sectors {
            opts.push(String::from("iv_large_sectors"));
        }
        if self.sector_size != 512 {
            opts.push(format!("sector_size:{}", self.sector_size));
        }
        let mut line = format!(
            "{} {} {} {} {}",
            self.cipher.spec(),
            key_ref,
            self.iv_tweak,
            device,
            self.offset_bytes / 512
        );
        if !opts.is_empty() {
            line.push_str(&format!(" {}", opts.len()));
            for opt in &opts {
                line.push(' ');
                line.push_str(opt);
            }
        }
        line
    }
}

/// A dm-crypt key reference to a kernel keyring key: `:<key_bytes>:<key_type>:<description>`
/// (dm-crypt's syntax). cryptsetup loads a LUKS2 volume key as a `logon` key described as
/// `cryptsetup:<uuid>-d<digest id>` ([`luks2::Header::keyring_description`]).
pub fn keyring_key_ref(key_bytes: usize, key_type: &str, description: &str) -> String {
    format!(":{key_bytes}:{key_type}:{description}")
}

/// A volume key. Zeroized on drop; `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct VolumeKey(Zeroizing<Vec<u8>>);

impl VolumeKey {
    /// Wraps key bytes (plain dm-crypt: the key from the KBS).
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        VolumeKey(bytes)
    }

    /// The key bytes, for handing to the kernel keyring.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for a key that opened a volume).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for VolumeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VolumeKey({} bytes)", self.0.len())
    }
}

pub use kdf::KdfLimits;
