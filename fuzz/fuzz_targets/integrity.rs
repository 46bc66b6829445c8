//! The authenticated-encryption volume's parsers (`volume::integrity`): the first byte picks
//! the input: a dm-integrity superblock as the kernel wrote it (`Superblock::parse`), or the
//! output of a `mke2fs -n` dry run (`Mke2fsLayout::parse`, then `zero_ranges`), or mkfs
//! words (`ext4_args`).
//! Asserts: an accepted superblock provides a positive number of whole 4096-byte blocks
//! with 48-byte tags; zero ranges are 4096-aligned, within the device, and start with block
//! 0; `ext4_args` keeps the caller's words and always sets `lazy_itable_init`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::volume::integrity::{self, Mke2fsLayout, Superblock};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Ok(sb) = Superblock::parse(rest) {
                assert!(sb.provided_data_sectors > 0);
                assert!(
                    sb.provided_data_sectors
                        .is_multiple_of(integrity::SECTORS_PER_BLOCK)
                );
                assert_eq!(sb.tag_size, integrity::TAG_SIZE);
            }
        }
        1 => {
            let Ok(text) = core::str::from_utf8(rest) else {
                return;
            };
            if let Some(layout) = Mke2fsLayout::parse(text) {
                assert!(layout.block_size.is_power_of_two());
                assert!(layout.backups.len() <= integrity::MAX_BACKUPS);
                let size = 1u64 << 30;
                let ranges = layout.zero_ranges(size);
                assert_eq!(ranges.first().map(|r| r.0), Some(0));
                for (at, len) in ranges {
                    assert_eq!(at % 4096, 0);
                    assert_eq!(len % 4096, 0);
                    assert!(len > 0 && at + len <= size);
                }
            }
        }
        _ => {
            let Ok(text) = core::str::from_utf8(rest) else {
                return;
            };
            let words: Vec<String> = text.split_whitespace().map(String::from).collect();
            let out = integrity::ext4_args(&words);
            assert!(out.iter().any(|w| w.contains("lazy_itable_init")));
            assert!(out.len() >= words.len() && out.len() <= words.len() + 2);
        }
    }
});
