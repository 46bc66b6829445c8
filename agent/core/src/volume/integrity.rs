//! Authenticated encryption for ephemeral volumes (kata's `dataIntegrity = "true"`): the
//! layout upstream's `cryptsetup luksFormat --integrity hmac-sha256 --integrity-no-wipe
//! --integrity-no-journal` (aes-xts-plain64, 4096-byte sectors) gives, without LUKS:
//!
//! - a dm-integrity device in direct mode (`D`: no journal, as `--integrity-no-journal`)
//!   with 48-byte tags per 4096-byte block, formatted by the kernel: a table loaded on a
//!   device whose superblock is all zeros makes dm-integrity write a fresh superblock
//!   ([`Superblock::parse`] reads back how many data sectors it provides);
//! - a dm-crypt device on top with the AEAD `authenc(hmac(sha256),xts(aes))` and random
//!   IVs: each 4096-byte sector's tag holds its 32-byte HMAC-SHA256 and its 16-byte IV
//!   (`integrity:48:aead`). The table key is the 64-byte XTS key followed by the 32-byte
//!   HMAC key (dm-crypt splits it by the HMAC's digest size and hands the crypto API the
//!   `authenc` key blob itself).
//!
//! As with `--integrity-no-wipe`, nothing is written to the data area beforehand: a sector
//! never written fails its integrity check when read. mkfs must therefore not read what it
//! has not written: [`ext4_args`] turns off lazy inode table initialisation and
//! [`Mke2fsLayout`] (from a `mke2fs -n` dry run) names the superblock blocks to zero first,
//! as upstream does.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// The dm-crypt cipher specification (random IVs, kept in the tags).
pub const CIPHER: &str = "capi:authenc(hmac(sha256),xts(aes))-random";
/// Bytes of the XTS key (AES-256 in XTS).
pub const ENC_KEY_BYTES: usize = 64;
/// Bytes of the HMAC-SHA256 key.
pub const MAC_KEY_BYTES: usize = 32;
/// Bytes of the table key: the XTS key, then the HMAC key.
pub const KEY_BYTES: usize = ENC_KEY_BYTES + MAC_KEY_BYTES;
/// Bytes of tag per block: the HMAC-SHA256 (32) and the random IV (16).
pub const TAG_SIZE: u16 = 48;
/// The block size of both layers (cryptsetup's `--sector-size 4096`).
pub const BLOCK_SIZE: u32 = 4096;
/// 512-byte sectors per block.
pub const SECTORS_PER_BLOCK: u64 = (BLOCK_SIZE / 512) as u64;
/// Bytes zeroed at the start of the device before dm-integrity formats it (its superblock
/// area: one block).
pub const SUPERBLOCK_AREA: usize = BLOCK_SIZE as usize;
/// The superblock's magic (`SB_MAGIC`, NUL included).
pub const SB_MAGIC: &[u8; 8] = b"integrt\0";

/// The dm-integrity table parameters for `device` (`MAJOR:MINOR`): no offset, 48-byte
/// tags, direct mode, 4096-byte blocks, the fixed padding of current kernels. The same for
/// the formatting load and the real one (the geometry must not change between them).
pub fn integrity_params(device: &str) -> String {
    format!("{device} 0 {TAG_SIZE} D 2 block_size:{BLOCK_SIZE} fix_padding")
}

/// The dm-crypt table parameters on the dm-integrity device `device` (`MAJOR:MINOR`), with
/// `key_ref` a keyring reference (`:96:logon:DESC`), never a key.
pub fn crypt_params(key_ref: &str, device: &str) -> String {
    format!("{CIPHER} {key_ref} 0 {device} 0 2 integrity:{TAG_SIZE}:aead sector_size:{BLOCK_SIZE}")
}

/// What the kernel wrote in a dm-integrity superblock, as far as it matters here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// The superblock version.
    pub version: u8,
    /// The tag size per block.
    pub tag_size: u16,
    /// Data sectors (512 bytes) the device provides: the length of the real table.
    pub provided_data_sectors: u64,
    /// log2 of the 512-byte sectors per block.
    pub log2_sectors_per_block: u8,
}

/// Why a superblock is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuperblockError {
    /// Fewer than 32 bytes.
    Short,
    /// No `integrt` magic: the kernel did not format the device.
    NoMagic,
    /// A field differs from the table sealgate loaded.
    Mismatch(&'static str),
    /// No data sectors, or not whole blocks.
    BadSize(u64),
}

impl fmt::Display for SuperblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dm-integrity superblock: ")?;
        match self {
            SuperblockError::Short => f.write_str("too short"),
            SuperblockError::NoMagic => {
                f.write_str("no 'integrt' magic: the kernel did not format the device")
            }
            SuperblockError::Mismatch(what) => write!(f, "{what} differs from the table"),
            SuperblockError::BadSize(n) => {
                write!(
                    f,
                    "{n} data sectors: not a positive number of 4096-byte blocks"
                )
            }
        }
    }
}

impl Superblock {
    /// Parses the first bytes of a dm-integrity device (`struct superblock` of
    /// `drivers/md/dm-integrity.c`: magic\[8\], version u8, log2_interleave_sectors i8,
    /// integrity_tag_size le16, journal_sections le32, provided_data_sectors le64 at 16,
    /// flags le32, log2_sectors_per_block u8 at 28) and checks it against sealgate's table.
    pub fn parse(b: &[u8]) -> Result<Superblock, SuperblockError> {
        if b.len() < 32 {
            return Err(SuperblockError::Short);
        }
        if &b[..8] != SB_MAGIC {
            return Err(SuperblockError::NoMagic);
        }
        let le64 = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(x)
        };
        let sb = Superblock {
            version: b[8],
            tag_size: u16::from_le_bytes([b[10], b[11]]),
            provided_data_sectors: le64(16),
            log2_sectors_per_block: b[28],
        };
        if sb.tag_size != TAG_SIZE {
            return Err(SuperblockError::Mismatch("the tag size"));
        }
        if sb.log2_sectors_per_block != SECTORS_PER_BLOCK.trailing_zeros() as u8 {
            return Err(SuperblockError::Mismatch("the block size"));
        }
        let n = sb.provided_data_sectors;
        if n == 0 || !n.is_multiple_of(SECTORS_PER_BLOCK) {
            return Err(SuperblockError::BadSize(n));
        }
        Ok(sb)
    }
}

/// The option that keeps mke2fs from leaving inode tables unwritten (a later read of an
/// unwritten block fails its integrity check).
pub const LAZY_ITABLE_OFF: &str = "lazy_itable_init=0";

/// mke2fs's arguments for an integrity volume: the caller's, with `lazy_itable_init=0`
/// added to its `-E` list (mke2fs keeps only the last `-E`) unless it sets
/// `lazy_itable_init` itself.
pub fn ext4_args(args: &[String]) -> Vec<String> {
    if args.iter().any(|a| a.contains("lazy_itable_init")) {
        return args.to_vec();
    }
    let mut out = args.to_vec();
    // The last -E is the one mke2fs uses.
    let last = out.iter().rposition(|a| a.starts_with("-E"));
    match last {
        Some(i) if out[i] == "-E" && i + 1 < out.len() => {
            out[i + 1] = format!("{},{LAZY_ITABLE_OFF}", out[i + 1]);
        }
        Some(i) if out[i].len() > 2 => out[i] = format!("{},{LAZY_ITABLE_OFF}", out[i]),
        _ => {
            out.push("-E".into());
            out.push(LAZY_ITABLE_OFF.into());
        }
    }
    out
}

/// The layout a `mke2fs -n` dry run announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mke2fsLayout {
    /// The filesystem block size in bytes.
    pub block_size: u64,
    /// The blocks of the backup superblocks (none on a one-group filesystem).
    pub backups: Vec<u64>,
}

/// At most this many backup superblocks are taken from a dry run.
pub const MAX_BACKUPS: usize = 256;

impl Mke2fsLayout {
    /// Parses the dry run's output: `Creating filesystem with N Xk blocks` (or
    /// `Block size=X`) and the numbers after `Superblock backups stored on blocks:`.
    /// `None` without a block size.
    pub fn parse(output: &str) -> Option<Mke2fsLayout> {
        let mut block_size = None;
        for line in output.lines() {
            if let Some(rest) = line.trim().strip_prefix("Creating filesystem with ") {
                let mut words = rest.split_whitespace();
                let _blocks = words.next();
                if let Some(k) = words.next().and_then(|w| w.strip_suffix('k'))
                    && let Ok(k) = k.parse::<u64>()
                {
                    block_size = Some(k.saturating_mul(1024));
                }
            } else if let Some(rest) = line.trim().strip_prefix("Block size=") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(b) = digits.parse::<u64>() {
                    block_size = block_size.or(Some(b));
                }
            }
        }
        let block_size =
            block_size.filter(|b| (1024..=65536).contains(b) && b.is_power_of_two())?;
        let mut backups = Vec::new();
        if let Some(at) = output.find("Superblock backups stored on blocks:") {
            let tail = &output[at + "Superblock backups stored on blocks:".len()..];
            for line in tail.lines() {
                let words: Vec<&str> = line
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|w| !w.is_empty())
                    .collect();
                if !backups.is_empty() && words.is_empty() {
                    break;
                }
                if words.iter().any(|w| w.parse::<u64>().is_err()) {
                    break;
                }
                for w in words {
                    if backups.len() < MAX_BACKUPS
                        && let Ok(n) = w.parse::<u64>()
                    {
                        backups.push(n);
                    }
                }
            }
        }
        Some(Mke2fsLayout {
            block_size,
            backups,
        })
    }

    /// The byte ranges (offset, length), aligned to 4096-byte sectors, to zero before
    /// mke2fs runs: the primary superblock's and each backup's block, within `size`.
    pub fn zero_ranges(&self, size: u64) -> Vec<(u64, u64)> {
        let bs = u64::from(BLOCK_SIZE);
        let mut out: Vec<(u64, u64)> = Vec::new();
        for block in core::iter::once(0).chain(self.backups.iter().copied()) {
            let Some(start) = block.checked_mul(self.block_size) else {
                continue;
            };
            let end = start.saturating_add(self.block_size.max(1024));
            let (start, end) = (start / bs * bs, end.div_ceil(bs).saturating_mul(bs));
            if end > size || out.iter().any(|r| r.0 == start) {
                continue;
            }
            out.push((start, end - start));
        }
        out
    }
}

impl fmt::Display for Mke2fsLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b: Vec<String> = self.backups.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{}-byte blocks, backup superblocks at [{}]",
            self.block_size,
            b.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sb(tag: u16, sectors: u64, log2: u8) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..8].copy_from_slice(SB_MAGIC);
        b[8] = 5;
        b[10..12].copy_from_slice(&tag.to_le_bytes());
        b[16..24].copy_from_slice(&sectors.to_le_bytes());
        b[28] = log2;
        b
    }

    #[test]
    fn superblock() {
        let s = Superblock::parse(&sb(48, 60_000, 3)).unwrap();
        assert_eq!(s.provided_data_sectors, 60_000);
        assert_eq!(s.version, 5);
        assert_eq!(
            Superblock::parse(&[0u8; 512]),
            Err(SuperblockError::NoMagic)
        );
        assert_eq!(Superblock::parse(&[0u8; 31]), Err(SuperblockError::Short));
        assert_eq!(
            Superblock::parse(&sb(32, 60_000, 3)),
            Err(SuperblockError::Mismatch("the tag size"))
        );
        assert_eq!(
            Superblock::parse(&sb(48, 60_000, 0)),
            Err(SuperblockError::Mismatch("the block size"))
        );
        assert_eq!(
            Superblock::parse(&sb(48, 60_001, 3)),
            Err(SuperblockError::BadSize(60_001))
        );
        assert_eq!(
            Superblock::parse(&sb(48, 0, 3)),
            Err(SuperblockError::BadSize(0))
        );
        assert!(Superblock::parse(&sb(48, 8, 67)).is_err());
    }

    #[test]
    fn tables() {
        assert_eq!(
            integrity_params("253:0"),
            "253:0 0 48 D 2 block_size:4096 fix_padding"
        );
        assert_eq!(
            crypt_params(":96:logon:sealgate:x", "253:1"),
            "capi:authenc(hmac(sha256),xts(aes))-random :96:logon:sealgate:x 0 253:1 0 2 \
             integrity:48:aead sector_size:4096"
        );
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ext4_arguments() {
        assert_eq!(ext4_args(&[]), s(&["-E", "lazy_itable_init=0"]));
        assert_eq!(
            ext4_args(&s(&["-E", "lazy_journal_init", "-L", "x"])),
            s(&["-E", "lazy_journal_init,lazy_itable_init=0", "-L", "x"])
        );
        assert_eq!(
            ext4_args(&s(&["-Enodiscard", "-m", "0"])),
            s(&["-Enodiscard,lazy_itable_init=0", "-m", "0"])
        );
        let own = s(&["-E", "lazy_itable_init=1"]);
        assert_eq!(ext4_args(&own), own);
        // A trailing -E without its value: mke2fs refuses it; ours is added after it.
        assert_eq!(
            ext4_args(&s(&["-E"])),
            s(&["-E", "-E", "lazy_itable_init=0"])
        );
    }

    #[test]
    fn mke2fs_dry_run() {
        let out = "mke2fs 1.47.0 (5-Feb-2023)\n\
                   Creating filesystem with 262144 4k blocks and 65536 inodes\n\
                   Filesystem UUID: 0b0d\n\
                   Superblock backups stored on blocks: \n\
                   \t32768, 98304, 163840, 229376\n\
                   \n\
                   Allocating group tables: done\n";
        let l = Mke2fsLayout::parse(out).unwrap();
        assert_eq!(l.block_size, 4096);
        assert_eq!(l.backups, vec![32768, 98304, 163840, 229376]);
        assert_eq!(
            l.zero_ranges(1 << 30),
            vec![
                (0, 4096),
                (32768 * 4096, 4096),
                (98304 * 4096, 4096),
                (163840 * 4096, 4096),
                (229376 * 4096, 4096)
            ]
        );
        // One group: no backups.
        let one = "Creating filesystem with 7680 4k blocks and 7680 inodes\n\n\
                   Allocating group tables: done\n";
        let l = Mke2fsLayout::parse(one).unwrap();
        assert!(l.backups.is_empty());
        assert_eq!(l.zero_ranges(7680 * 4096), vec![(0, 4096)]);
        // 1k blocks: the 4096-byte sectors holding them.
        let small = "Creating filesystem with 20480 1k blocks and 5136 inodes\n\
                     Superblock backups stored on blocks: \n\t8193\n\n";
        let l = Mke2fsLayout::parse(small).unwrap();
        assert_eq!(l.block_size, 1024);
        assert_eq!(
            l.zero_ranges(20 << 20),
            vec![(0, 4096), (8192 * 1024, 4096)]
        );
        assert_eq!(Mke2fsLayout::parse("nothing"), None);
        assert_eq!(
            Mke2fsLayout::parse("Creating filesystem with 1 3k blocks"),
            None
        );
        // Backups beyond the device are skipped.
        let l = Mke2fsLayout {
            block_size: 4096,
            backups: vec![u64::MAX, 10],
        };
        assert_eq!(l.zero_ranges(8192), vec![(0, 4096)]);
    }
}
