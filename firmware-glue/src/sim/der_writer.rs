//! A small DER *writer*: just what the simulators need to build X.509 certificates (the crate's
//! [`crate::der`] module is the matching reader). Every function returns one complete element
//! (tag, definite length, content); constructed elements take their already-encoded children.
//!
//! ```
//! use firmware_glue::sim::der_writer as w;
//! let ext = w::sequence(&[&w::oid(&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 3]), &w::octet_string(&w::integer_u64(8))]);
//! assert_eq!(&ext[..4], &[0x30, 0x11, 0x06, 0x0a]);
//! ```

use alloc::vec::Vec;

use crate::der::tag;

/// The length octets for `len` (short form below 128, else long form).
pub fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return alloc::vec![len as u8];
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut out = alloc::vec![0x80 | (8 - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    out
}

/// One element: `tag`, the length of `content`, `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    out.extend_from_slice(&length(content.len()));
    out.extend_from_slice(content);
    out
}

/// The concatenation of encoded elements under one constructed tag.
pub fn constructed(tag: u8, children: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &children.concat())
}

/// SEQUENCE of encoded elements.
pub fn sequence(children: &[&[u8]]) -> Vec<u8> {
    constructed(tag::SEQUENCE, children)
}

/// SET of encoded elements (the caller orders them; X.509 names use one element per SET).
pub fn set(children: &[&[u8]]) -> Vec<u8> {
    constructed(tag::SET, children)
}

/// `[n]` EXPLICIT (context-specific, constructed) around one encoded element.
pub fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xA0 | (n & 0x1f), inner)
}

/// A non-negative INTEGER from big-endian magnitude bytes (leading zeros dropped, a zero byte
/// prepended when the top bit is set; empty or all-zero input encodes 0).
pub fn integer_unsigned(be: &[u8]) -> Vec<u8> {
    let skip = be.iter().take_while(|b| **b == 0).count();
    let mag = &be[skip..];
    let mut content = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(mag);
    tlv(tag::INTEGER, &content)
}

/// A non-negative INTEGER.
pub fn integer_u64(v: u64) -> Vec<u8> {
    integer_unsigned(&v.to_be_bytes())
}

/// ENUMERATED (non-negative).
pub fn enumerated(v: u64) -> Vec<u8> {
    let mut out = integer_u64(v);
    out[0] = 0x0A;
    out
}

/// BOOLEAN (`0xFF` for true, as DER requires).
pub fn boolean(v: bool) -> Vec<u8> {
    tlv(tag::BOOLEAN, &[if v { 0xff } else { 0 }])
}

/// NULL.
pub fn null() -> Vec<u8> {
    tlv(tag::NULL, &[])
}

/// OCTET STRING.
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, bytes)
}

/// BIT STRING with no unused bits.
pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &content)
}

/// BIT STRING holding a named-bit list (X.509 KeyUsage): `bits` with bit 0 the first (most
/// significant) bit, trailing zero bits removed as DER requires.
pub fn named_bits(bits: u16) -> Vec<u8> {
    // Bit i of the list is bit (15 - i) of the big-endian u16.
    let value = bits.reverse_bits();
    if value == 0 {
        return tlv(tag::BIT_STRING, &[0]);
    }
    let bytes = value.to_be_bytes();
    let used = if bytes[1] == 0 { 1 } else { 2 };
    let unused = (value.trailing_zeros() % 8) as u8;
    let mut content = alloc::vec![unused];
    content.extend_from_slice(&bytes[..used]);
    tlv(tag::BIT_STRING, &content)
}

/// The content octets of an OBJECT IDENTIFIER (as [`crate::der::oid`] constants hold them).
/// Panics if there are fewer than two arcs or the first two are out of range (a programming
/// error in a constant).
pub fn oid_content(arcs: &[u64]) -> Vec<u8> {
    assert!(
        arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40),
        "invalid OID"
    );
    let mut out = Vec::new();
    let mut base128 = |mut v: u64| {
        let mut tmp = [0u8; 10];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        let n = tmp.len();
        for (j, b) in tmp[i..].iter().enumerate() {
            out.push(if i + j + 1 < n { b | 0x80 } else { *b });
        }
    };
    base128(arcs[0] * 40 + arcs[1]);
    for arc in &arcs[2..] {
        base128(*arc);
    }
    out
}

/// OBJECT IDENTIFIER from its arcs.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    tlv(tag::OID, &oid_content(arcs))
}

/// OBJECT IDENTIFIER from content octets (e.g. a [`crate::der::oid`] constant).
pub fn oid_raw(content: &[u8]) -> Vec<u8> {
    tlv(tag::OID, content)
}

/// UTF8String.
pub fn utf8_string(s: &str) -> Vec<u8> {
    tlv(0x0C, s.as_bytes())
}

/// PrintableString (the caller keeps to its character set).
pub fn printable_string(s: &str) -> Vec<u8> {
    tlv(0x13, s.as_bytes())
}

/// IA5String (ASCII).
pub fn ia5_string(s: &str) -> Vec<u8> {
    tlv(0x16, s.as_bytes())
}

/// A point in time for certificate validity (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    /// Year (1950..=9999).
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

impl Time {
    /// Midnight UTC of a date.
    pub const fn date(year: u16, month: u8, day: u8) -> Self {
        Time {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    /// UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
    pub fn encode(&self) -> Vec<u8> {
        let mut digits = Vec::with_capacity(15);
        let mut two = |v: u8| {
            digits.push(b'0' + v / 10 % 10);
            digits.push(b'0' + v % 10);
        };
        let tag = if self.year < 2050 {
            two((self.year % 100) as u8);
            0x17
        } else {
            two((self.year / 100) as u8);
            two((self.year % 100) as u8);
            0x18
        };
        for v in [self.month, self.day, self.hour, self.minute, self.second] {
            two(v);
        }
        digits.push(b'Z');
        tlv(tag, &digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::{Reader, oid as known};

    #[test]
    fn lengths_round_trip_through_the_reader() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 100_000] {
            let content = alloc::vec![0xAB; len];
            let enc = octet_string(&content);
            let tlv = Reader::new(&enc).read().unwrap();
            assert_eq!(tlv.value.len(), len);
            assert_eq!(tlv.raw.len(), enc.len());
        }
        assert_eq!(length(0x80), [0x81, 0x80]);
        assert_eq!(length(0x1234), [0x82, 0x12, 0x34]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(integer_u64(0), [2, 1, 0]);
        assert_eq!(integer_u64(0x7f), [2, 1, 0x7f]);
        assert_eq!(integer_u64(0x80), [2, 2, 0, 0x80]);
        assert_eq!(integer_unsigned(&[0, 0, 1, 2]), [2, 2, 1, 2]);
        assert_eq!(integer_unsigned(&[]), [2, 1, 0]);
        for v in [0u64, 1, 127, 128, 255, 256, u64::MAX >> 1] {
            assert_eq!(Reader::new(&integer_u64(v)).read().unwrap().as_u64(), Ok(v));
        }
        assert_eq!(enumerated(1), [0x0a, 1, 1]);
    }

    #[test]
    fn oids_match_the_reader_constants() {
        assert_eq!(oid_content(&[1, 3, 132, 0, 34]), known::SECP384R1);
        assert_eq!(oid_content(&[1, 2, 840, 10045, 3, 1, 7]), known::PRIME256V1);
        assert_eq!(
            oid_content(&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 8]),
            known::AMD_UCODE_SPL
        );
        assert_eq!(
            oid_content(&[1, 3, 6, 1, 4, 1, 3704, 1, 4]),
            known::AMD_HW_ID
        );
        assert_eq!(
            oid_content(&[1, 2, 840, 113741, 1, 13, 1]),
            [0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01]
        );
    }

    #[test]
    fn key_usage_bits_and_times() {
        // keyCertSign (5) + cRLSign (6): 0x06, one unused bit
        assert_eq!(named_bits((1 << 5) | (1 << 6)), [3, 2, 1, 0x06]);
        // digitalSignature (0) + nonRepudiation (1): 0xC0 (Intel's PCK leaf)
        assert_eq!(named_bits(0b11), [3, 2, 6, 0xC0]);
        assert_eq!(Time::date(2024, 1, 2).encode(), b"\x17\x0d240102000000Z");
        assert_eq!(
            Time::date(2050, 12, 31).encode(),
            b"\x18\x0f20501231000000Z"
        );
    }
}
