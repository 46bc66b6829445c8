//! Single-member gzip streams (RFC 1952) over `miniz_oxide`'s deflate: reading kata's
//! init-data disk in the guest (bounded: a small stream may claim gigabytes), and writing
//! reproducible streams on the host (no name, time stamp 0), for init-data disks and images.

use alloc::vec::Vec;
use core::fmt;

/// Why a gzip stream was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipError {
    /// No gzip magic / not deflate.
    NotGzip,
    /// Reserved flags set or a header field runs off the end.
    Header,
    /// Shorter than its header and trailer.
    Truncated,
    /// The deflate data is corrupt.
    Deflate,
    /// It decompresses to more than the limit.
    TooLarge,
    /// CRC-32 or length in the trailer does not match.
    Checksum,
}

impl GzipError {
    /// A short description.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotGzip => "not a gzip stream",
            Self::Header => "gzip header",
            Self::Truncated => "gzip stream truncated",
            Self::Deflate => "deflate data",
            Self::TooLarge => "larger than the limit once decompressed",
            Self::Checksum => "gzip checksum mismatch",
        }
    }
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Compresses `data` at deflate level 9 into one gzip member with a fixed header (no name,
/// mtime 0, XFL 2 "best", OS 3 Unix), so the same input always gives the same bytes.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut gz = alloc::vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
    gz.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, 9));
    gz.extend_from_slice(&crc32(data).to_le_bytes());
    gz.extend_from_slice(&(data.len() as u32).to_le_bytes());
    gz
}

/// Whether `data` starts with the gzip magic.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Decompresses one gzip member, refusing output beyond `limit` bytes, and checks the
/// trailer's CRC-32 and length.
pub fn decompress(gz: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if gz.len() < 18 || !is_gzip(gz) || gz[2] != 8 {
        return Err(GzipError::NotGzip);
    }
    let flags = gz[3];
    if flags & 0xe0 != 0 {
        return Err(GzipError::Header);
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let n = usize::from(u16::from_le_bytes([gz[pos], gz[pos + 1]]));
        pos += 2 + n;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = gz
                .get(pos..)
                .and_then(|r| r.iter().position(|&b| b == 0))
                .ok_or(GzipError::Header)?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    if pos + 8 > gz.len() {
        return Err(GzipError::Truncated);
    }
    let body = &gz[pos..gz.len() - 8];
    let out =
        miniz_oxide::inflate::decompress_to_vec_with_limit(body, limit).map_err(|e| {
            match e.status {
                miniz_oxide::inflate::TINFLStatus::HasMoreOutput => GzipError::TooLarge,
                _ => GzipError::Deflate,
            }
        })?;
    let trailer = &gz[gz.len() - 8..];
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if crc32(&out) != crc || out.len() as u32 != isize {
        return Err(GzipError::Checksum);
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_checks_and_limits() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let gz = compress(&data);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        assert_eq!(compress(&data), gz, "deterministic");
        assert_eq!(decompress(&gz, data.len()).unwrap(), data);
        assert_eq!(decompress(&gz, data.len() - 1), Err(GzipError::TooLarge));
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        assert_eq!(decompress(&bad, usize::MAX), Err(GzipError::Checksum));
        assert_eq!(decompress(&gz[..10], usize::MAX), Err(GzipError::NotGzip));
        assert_eq!(
            decompress(b"not gzip at all, really", 10),
            Err(GzipError::NotGzip)
        );
        let mut named = alloc::vec![0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3];
        named.extend_from_slice(b"no terminator");
        named.extend_from_slice(&[0xff; 8]);
        assert_eq!(decompress(&named, 100), Err(GzipError::Header));
        let mut reserved = gz.clone();
        reserved[3] = 0x20;
        assert_eq!(decompress(&reserved, usize::MAX), Err(GzipError::Header));
    }
}
