//! Plain dm-crypt: no header on the device; the KBS holds the raw volume key and the
//! (measured) config gives the cipher, key size, sector size and offset.
//!
//! The key is used as it is (cryptsetup's `open --type plain --key-file` with
//! `--hash plain`, never a passphrase hash: cryptsetup's default hash for plain mode is a
//! build-time choice, so hashing would make the mapping depend on the build).

use super::{Cipher, Segment, SegmentSize, VolumeKey};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroizing;

/// A plain dm-crypt volume as the config declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainParams<'a> {
    /// Cipher spec; only `aes-xts-plain64`.
    pub cipher: &'a str,
    /// Key size in bits: 256 or 512.
    pub key_bits: u32,
    /// Encryption sector size: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
    /// Where the ciphertext starts on the device, in bytes (a multiple of 512 and of the
    /// sector size).
    pub offset_bytes: u64,
    /// Its length in bytes; `None` for the rest of the device.
    pub size_bytes: Option<u64>,
    /// IV of the first sector, in 512-byte units (cryptsetup `--skip`).
    pub iv_offset: u64,
    /// IVs count `sector_size` sectors (cryptsetup `--iv-large-sectors`).
    pub iv_large_sectors: bool,
}

/// Why a plain volume's parameters or key were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlainError {
    /// A cipher other than aes-xts-plain64.
    UnsupportedCipher(String),
    /// A key size the cipher does not take.
    KeySize {
        /// Bits configured.
        bits: u32,
    },
    /// A sector size that is not 512, 1024, 2048 or 4096.
    SectorSize(u32),
    /// Offset, size or IV offset not aligned to the sector size.
    Misaligned(&'static str),
    /// The KBS key has the wrong length for the configured key size.
    KeyLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
}

impl fmt::Display for PlainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlainError::UnsupportedCipher(c) => write!(
                f,
                "plain volume cipher {c:?} is not supported (only aes-xts-plain64)"
            ),
            PlainError::KeySize { bits } => write!(
                f,
                "plain volume key size {bits} bits is not supported (aes-xts-plain64 takes \
                 256 or 512)"
            ),
            PlainError::SectorSize(s) => write!(
                f,
                "plain volume sector size {s} is not one of 512, 1024, 2048, 4096"
            ),
            PlainError::Misaligned(what) => {
                write!(
                    f,
                    "plain volume {what} is not a multiple of its sector size"
                )
            }
            PlainError::KeyLength { expected, got } => write!(
                f,
                "the plain volume's key from the KBS is {got} bytes, the volume needs \
                 {expected}"
            ),
        }
    }
}

/// Checks the parameters and returns the segment to map.
pub fn segment(p: &PlainParams<'_>) -> Result<Segment, PlainError> {
    let cipher = Cipher::from_spec(p.cipher)
        .ok_or_else(|| PlainError::UnsupportedCipher(p.cipher.into()))?;
    let key_bytes = (p.key_bits / 8) as usize;
    if !p.key_bits.is_multiple_of(8) || !cipher.key_bytes_ok(key_bytes) {
        return Err(PlainError::KeySize { bits: p.key_bits });
    }
    if !matches!(p.sector_size, 512 | 1024 | 2048 | 4096) {
        return Err(PlainError::SectorSize(p.sector_size));
    }
    let ss = u64::from(p.sector_size);
    if !p.offset_bytes.is_multiple_of(ss) {
        return Err(PlainError::Misaligned("offset"));
    }
    if p.size_bytes
        .is_some_and(|s| !s.is_multiple_of(ss) || s == 0)
    {
        return Err(PlainError::Misaligned("size"));
    }
    if p.iv_large_sectors && !p.iv_offset.is_multiple_of(ss / 512) {
        return Err(PlainError::Misaligned("IV offset"));
    }
    Ok(Segment {
        offset_bytes: p.offset_bytes,
        size: p
            .size_bytes
            .map_or(SegmentSize::Dynamic, SegmentSize::Bytes),
        cipher,
        key_bytes,
        sector_size: p.sector_size,
        iv_tweak: p.iv_offset,
        iv_large_sectors: p.iv_large_sectors,
    })
}

/// Takes the KBS resource as the volume key of `segment`, checking its length.
pub fn key(segment: &Segment, bytes: Zeroizing<Vec<u8>>) -> Result<VolumeKey, PlainError> {
    if bytes.len() != segment.key_bytes {
        return Err(PlainError::KeyLength {
            expected: segment.key_bytes,
            got: bytes.len(),
        });
    }
    Ok(VolumeKey::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{SegmentError, keyring_key_ref};
    use alloc::string::ToString;

    fn params() -> PlainParams<'static> {
        PlainParams {
            cipher: "aes-xts-plain64",
            key_bits: 512,
            sector_size: 512,
            offset_bytes: 0,
            size_bytes: None,
            iv_offset: 0,
            iv_large_sectors: false,
        }
    }

    #[test]
    fn a_plain_volume_maps_with_a_key_reference() {
        let seg = segment(&params()).unwrap();
        assert_eq!(seg.key_bytes, 64);
        assert_eq!(seg.length_sectors(1 << 20), Ok(2048));
        let key_ref = keyring_key_ref(64, "logon", "sealgate:data");
        assert_eq!(
            seg.crypt_params(&key_ref, "/dev/vdb"),
            "aes-xts-plain64 :64:logon:sealgate:data 0 /dev/vdb 0"
        );
        let seg = segment(&PlainParams {
            key_bits: 256,
            sector_size: 4096,
            offset_bytes: 1 << 20,
            size_bytes: Some(8 << 20),
            iv_offset: 8,
            iv_large_sectors: true,
            ..params()
        })
        .unwrap();
        assert_eq!(seg.size, SegmentSize::Bytes(8 << 20));
        assert_eq!(
            seg.crypt_params(":32:logon:k", "8:16"),
            "aes-xts-plain64 :32:logon:k 8 8:16 2048 2 iv_large_sectors sector_size:4096"
        );
        assert_eq!(seg.length_sectors(9 << 20), Ok(16384));
        assert_eq!(
            seg.length_sectors(8 << 20),
            Err(SegmentError::OutsideDevice {
                offset: 1 << 20,
                end: 9 << 20,
                device_size: 8 << 20
            })
        );
        assert!(
            seg.length_sectors(8 << 20)
                .unwrap_err()
                .to_string()
                .contains("does not fit the device")
        );
        // A dynamic segment on a device that ends at its offset.
        let seg = segment(&PlainParams {
            offset_bytes: 4096,
            ..params()
        })
        .unwrap();
        assert!(seg.length_sectors(4096).is_err());
    }

    #[test]
    fn plain_parameters_are_checked() {
        let cases: [(PlainParams<'static>, &str); 7] = [
            (
                PlainParams {
                    cipher: "aes-cbc-essiv:sha256",
                    ..params()
                },
                "cipher \"aes-cbc-essiv:sha256\" is not supported",
            ),
            (
                PlainParams {
                    key_bits: 128,
                    ..params()
                },
                "key size 128 bits",
            ),
            (
                PlainParams {
                    key_bits: 513,
                    ..params()
                },
                "key size 513 bits",
            ),
            (
                PlainParams {
                    sector_size: 8192,
                    ..params()
                },
                "sector size 8192",
            ),
            (
                PlainParams {
                    sector_size: 4096,
                    offset_bytes: 512,
                    ..params()
                },
                "offset is not a multiple",
            ),
            (
                PlainParams {
                    size_bytes: Some(0),
                    ..params()
                },
                "size is not a multiple",
            ),
            (
                PlainParams {
                    sector_size: 4096,
                    iv_offset: 1,
                    iv_large_sectors: true,
                    ..params()
                },
                "IV offset is not a multiple",
            ),
        ];
        for (p, msg) in cases {
            let e = segment(&p).unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn the_kbs_key_must_have_the_configured_length() {
        let seg = segment(&params()).unwrap();
        let e = key(&seg, Zeroizing::new(alloc::vec![7u8; 32])).unwrap_err();
        assert_eq!(
            e,
            PlainError::KeyLength {
                expected: 64,
                got: 32
            }
        );
        assert_eq!(
            e.to_string(),
            "the plain volume's key from the KBS is 32 bytes, the volume needs 64"
        );
        let k = key(&seg, Zeroizing::new(alloc::vec![7u8; 64])).unwrap();
        assert_eq!(k.as_bytes(), &[7u8; 64][..]);
        assert_eq!(alloc::format!("{k:?}"), "VolumeKey(64 bytes)");
    }
}
