//! Times: the clock floor, RFC 3339 formatting for messages, and a certificate's validity
//! period read from its DER (webpki checks validity itself but does not expose it; the pin
//! mode needs it, see `verify.rs`).

use alloc::format;
use alloc::string::String;

/// The earliest time this build accepts from the clock: 2026-12-01T00:00:00Z, the date of
/// this code (a release bumps it). A clock before it is wrong (typically unset: the epoch),
/// and checking certificate validity against it would be meaningless: connections fail
/// with [`crate::TlsError::Clock`] instead. Source: not measured, this code's date.
pub const CLOCK_FLOOR_UNIX: u64 = 1_796_083_200;

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn format_unix(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A certificate's validity period, seconds since the epoch (before 1970: 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: u64,
    /// notAfter.
    pub not_after: u64,
}

/// One DER element: (tag, contents, rest). Single-byte tags, definite lengths of at most
/// 3 length bytes (16 MiB; a certificate is far smaller), minimal encoding not enforced
/// (webpki has parsed the certificate strictly before this runs).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads notBefore / notAfter from a DER X.509 certificate. `None` if it is not one.
pub fn validity(cert_der: &[u8]) -> Option<Validity> {
    const SEQUENCE: u8 = 0x30;
    let (tag, cert, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name.
    for expected in [0x02, SEQUENCE, SEQUENCE] {
        let (tag, _, r) = tlv(rest)?;
        if tag != expected {
            return None;
        }
        rest = r;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (t1, nb, r) = tlv(validity)?;
    let (t2, na, r) = tlv(r)?;
    if !r.is_empty() {
        return None;
    }
    Some(Validity {
        not_before: time(t1, nb)?,
        not_after: time(t2, na)?,
    })
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, s: &[u8]) -> Option<u64> {
    let (year, rest) = match (tag, s.len()) {
        (0x17, 13) => {
            let yy = digits(&s[..2])? as i64;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (0x18, 15) => (digits(&s[..4])? as i64, &s[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // RFC 5280 allows no leap second here, but tolerate 60 as webpki does not care.
    if second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    Some(secs.max(0) as u64)
}

fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(CLOCK_FLOOR_UNIX), "2026-12-01T00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix(4_102_444_799), "2099-12-31T23:59:59Z");
        for secs in [
            0u64,
            68_169_600,
            951_868_799,
            1_796_083_200,
            253_402_300_799,
        ] {
            let s = format_unix(secs);
            let b = s.as_bytes();
            let mut g = [0u8; 15];
            g[..4].copy_from_slice(&b[..4]);
            g[4..6].copy_from_slice(&b[5..7]);
            g[6..8].copy_from_slice(&b[8..10]);
            g[8..10].copy_from_slice(&b[11..13]);
            g[10..12].copy_from_slice(&b[14..16]);
            g[12..14].copy_from_slice(&b[17..19]);
            g[14] = b'Z';
            assert_eq!(time(0x18, &g), Some(secs), "{s}");
        }
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"500101000000Z"), Some(0));
        assert_eq!(time(0x17, b"5001010000Z"), None);
        assert_eq!(time(0x18, b"20261301000000Z"), None);
        assert_eq!(time(0x18, b"2026010100000xZ"), None);
    }

    #[test]
    fn rejects_truncated_der() {
        assert_eq!(validity(&[]), None);
        assert_eq!(validity(&[0x30, 0x82, 0xff]), None);
        assert_eq!(validity(&[0x30, 0x84, 0, 0, 0, 1, 0]), None);
        assert_eq!(validity(&[0x30, 0x02, 0x30, 0x00]), None);
    }
}
