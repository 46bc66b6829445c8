//! A gzip member (RFC 1952) around raw deflate from `miniz_oxide`, written
//! reproducibly: no file name, modification time 0, OS 3 (Unix), as `gzip -n` does.
//! Also the reader used by `mkinitramfs --list` and the tests.

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::decompress_to_vec;

/// The deflate level (miniz's 0..=10); 9 is gzip's `--best`.
pub const LEVEL: u8 = 9;

/// CRC-32 (IEEE 802.3, reflected, as gzip uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// `data` as one gzip member.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let deflated = compress_to_vec(data, LEVEL);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=2 (best compression) OS=3 (Unix)
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Whether `data` starts like a gzip member.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Decompresses one gzip member, checking its CRC and length.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("gzip: {what}");
    if data.len() < 18 || !is_gzip(data) || data[2] != 8 {
        return Err(bad("not a deflate gzip member"));
    }
    let flags = data[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        // FEXTRA
        let xlen = u16::from_le_bytes([
            *data.get(at).ok_or_else(|| bad("truncated"))?,
            *data.get(at + 1).ok_or_else(|| bad("truncated"))?,
        ]) as usize;
        at += 2 + xlen;
    }
    for flag in [0x08, 0x10] {
        // FNAME, FCOMMENT: NUL-terminated
        if flags & flag != 0 {
            let rest = data.get(at..).ok_or_else(|| bad("truncated"))?;
            at += rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| bad("unterminated header string"))?
                + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2; // FHCRC
    }
    if at + 8 > data.len() {
        return Err(bad("truncated"));
    }
    let body = &data[at..data.len() - 8];
    let out = decompress_to_vec(body).map_err(|e| bad(&format!("deflate: {e:?}")))?;
    let tail = &data[data.len() - 8..];
    let crc = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let isize = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]);
    if crc != crc32(&out) || isize != out.len() as u32 {
        return Err(bad("CRC or length mismatch"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_answer_and_round_trip() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let gz = compress(&data);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        assert_eq!(decompress(&gz).unwrap(), data);
        assert_eq!(compress(&data), gz, "deterministic");
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        assert!(decompress(&bad).is_err());
        assert!(decompress(&gz[..10]).is_err());
    }

    /// The system's gzip reads our member (skipped where gzip is not installed).
    #[test]
    fn gzip_tool_accepts_it() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let data = b"sealgate initramfs ".repeat(1000);
        let Ok(mut child) = Command::new("gzip")
            .args(["-dc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("gzip not installed: cross-check skipped");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&compress(&data))
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }
}
