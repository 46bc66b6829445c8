//! Small internal helpers shared by the views: fixed-size field access and hex/GUID display.

use core::fmt;

/// `&buf[off..off + N]` as an array reference.
///
/// Views only call this for ranges they have checked at construction (fixed-size buffers or
/// offsets validated by the parser), so the `None` arm is unreachable.
#[inline]
pub(crate) fn array<const N: usize>(buf: &[u8], off: usize) -> &[u8; N] {
    match buf
        .get(off..off.saturating_add(N))
        .and_then(|s| <&[u8; N]>::try_from(s).ok())
    {
        Some(a) => a,
        None => unreachable_field(off, N, buf.len()),
    }
}

#[cold]
#[inline(never)]
fn unreachable_field(off: usize, len: usize, buf_len: usize) -> ! {
    // Only reachable through a bug in a view's constructor checks.
    panic!("field {off}+{len} outside validated buffer of {buf_len} bytes")
}

#[inline]
pub(crate) fn u16_at(buf: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(*array::<2>(buf, off))
}

#[inline]
pub(crate) fn u32_at(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(*array::<4>(buf, off))
}

#[inline]
pub(crate) fn u64_at(buf: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(*array::<8>(buf, off))
}

/// Little-endian u16 at `off` if the buffer is long enough.
#[inline]
pub(crate) fn get_u16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Little-endian u32 at `off` if the buffer is long enough.
#[inline]
pub(crate) fn get_u32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Lower-case hex of a byte string (for error messages and GUIDs).
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A GUID in RFC 4122 string form (`8-4-4-4-12`, lower case), bytes taken in order
/// (the way the `uuid` crate's `Uuid::from_slice` reads the GHCB certificate table).
pub(crate) struct Guid<'a>(pub &'a [u8; 16]);

impl fmt::Display for Guid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        write!(
            f,
            "{}-{}-{}-{}-{}",
            Hex(&g[0..4]),
            Hex(&g[4..6]),
            Hex(&g[6..8]),
            Hex(&g[8..10]),
            Hex(&g[10..16])
        )
    }
}

/// Parses a hyphenated GUID string (`8-4-4-4-12`, either case) into its 16 bytes.
pub(crate) fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = hex_val(b[i])?;
        let lo = hex_val(*b.get(i + 1)?)?;
        out[n] = (hi << 4) | lo;
        n += 1;
        i += 2;
    }
    (n == 16).then_some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Serde helper: a byte array as a JSON array of integers (serde only derives arrays up to 32).
pub(crate) fn ser_bytes<const N: usize, S: serde::Serializer>(
    bytes: &[u8; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(bytes.iter())
}

/// Serde helper: exactly `N` integers 0..=255 into a byte array.
pub(crate) fn de_bytes<'de, const N: usize, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<[u8; N], D::Error> {
    use serde::Deserialize;
    use serde::de::Error;
    let v = alloc::vec::Vec::<u8>::deserialize(d)?;
    let len = v.len();
    <[u8; N]>::try_from(v).map_err(|_| D::Error::invalid_length(len, &ExpectedLen(N)))
}

struct ExpectedLen(usize);

impl serde::de::Expected for ExpectedLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} bytes", self.0)
    }
}

/// An OS error as an operator reads it ("Input/output error (os error 5)"): rustix without
/// std prints only the number.
#[cfg(feature = "device")]
pub(crate) fn os(e: impl core::borrow::Borrow<rustix::io::Errno>) -> sealgate_core::errno::OsError {
    sealgate_core::errno::OsError(e.borrow().raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn guid_round_trip() {
        let s = "63da758d-e664-4564-adc5-f4b93be8accd";
        let g = parse_guid(s).unwrap();
        assert_eq!(
            g,
            [
                0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8,
                0xac, 0xcd
            ]
        );
        assert_eq!(Guid(&g).to_string(), s);
        assert_eq!(parse_guid(&s.to_uppercase()), Some(g));
        assert_eq!(parse_guid("63da758de6644564adc5f4b93be8accd"), None);
        assert_eq!(parse_guid("63da758d-e664-4564-adc5-f4b93be8accg"), None);
        assert_eq!(parse_guid("63da758d_e664-4564-adc5-f4b93be8accd"), None);
    }
}
