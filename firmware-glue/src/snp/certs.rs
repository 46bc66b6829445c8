//! The GHCB certificate table that comes with an extended SNP report (the `SNP_GET_EXT_REPORT`
//! certificate buffer, or the configfs-tsm `auxblob`).
//!
//! Layout (GHCB specification, "SNP Extended Guest Request"; reference §1.5): an array of
//! 24-byte entries `{ guid[16], offset: u32 LE, length: u32 LE }` terminated by an all-zero
//! entry; `offset` counts from the start of the buffer; the DER certificates follow the table.
//! GUID bytes are in RFC 4122 string order (the `sev` crate reads them with `Uuid::from_slice`).

use alloc::vec::Vec;
use core::fmt;

use crate::util::{Guid, array, u32_at};

/// Size of one table entry.
pub const ENTRY_LEN: usize = 24;

/// The most entries a table may have (a real host supplies at most a handful: ARK, ASK,
/// VCEK/VLEK, CRL).
pub const MAX_ENTRIES: usize = 64;

/// Well-known certificate GUIDs, as the 16 bytes stored in the table.
pub mod guid {
    /// ARK `c0b406a4-a803-4952-9743-3fb6014cd0ae`.
    pub const ARK: [u8; 16] = [
        0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
        0xae,
    ];
    /// ASK `4ab7b379-bbac-4fe4-a02f-05aef327c782`.
    pub const ASK: [u8; 16] = [
        0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
        0x82,
    ];
    /// VCEK `63da758d-e664-4564-adc5-f4b93be8accd`.
    pub const VCEK: [u8; 16] = [
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ];
    /// VLEK `a8074bc2-a25a-483e-aae6-39c045a0b8a1`.
    pub const VLEK: [u8; 16] = [
        0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
        0xa1,
    ];
    /// CRL `92f81bc3-5811-4d3d-97ff-d19f88dc67ea`.
    pub const CRL: [u8; 16] = [
        0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67,
        0xea,
    ];
}

/// What a certificate table entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertType {
    /// AMD Root Key certificate.
    Ark,
    /// AMD SEV Key certificate (or the ASVK for VLEKs).
    Ask,
    /// Versioned Chip Endorsement Key certificate.
    Vcek,
    /// Versioned Loaded Endorsement Key certificate.
    Vlek,
    /// Certificate revocation list.
    Crl,
    /// Any other GUID (serialized as `{"OTHER": "<uuid>"}`).
    Other([u8; 16]),
}

impl CertType {
    /// The type for a table GUID.
    pub fn from_guid(g: &[u8; 16]) -> Self {
        match *g {
            guid::ARK => CertType::Ark,
            guid::ASK => CertType::Ask,
            guid::VCEK => CertType::Vcek,
            guid::VLEK => CertType::Vlek,
            guid::CRL => CertType::Crl,
            other => CertType::Other(other),
        }
    }

    /// The GUID stored in the table for this type.
    pub fn guid(&self) -> [u8; 16] {
        match self {
            CertType::Ark => guid::ARK,
            CertType::Ask => guid::ASK,
            CertType::Vcek => guid::VCEK,
            CertType::Vlek => guid::VLEK,
            CertType::Crl => guid::CRL,
            CertType::Other(g) => *g,
        }
    }

    /// The evidence JSON name (`"ARK"`, …), `None` for [`CertType::Other`].
    pub fn name(&self) -> Option<&'static str> {
        match self {
            CertType::Ark => Some("ARK"),
            CertType::Ask => Some("ASK"),
            CertType::Vcek => Some("VCEK"),
            CertType::Vlek => Some("VLEK"),
            CertType::Crl => Some("CRL"),
            CertType::Other(_) => None,
        }
    }

    /// The order the `sev` crate sorts a fetched chain in (its hand-written `Ord`, the one
    /// guest-components' evidence carries): ARK, VCEK, VLEK, ASK, CRL, then other GUIDs by
    /// their bytes (`Uuid` order).
    pub fn sev_order(&self, other: &Self) -> core::cmp::Ordering {
        fn rank(t: &CertType) -> u8 {
            match t {
                CertType::Ark => 0,
                CertType::Vcek => 1,
                CertType::Vlek => 2,
                CertType::Ask => 3,
                CertType::Crl => 4,
                CertType::Other(_) => 5,
            }
        }
        match (self, other) {
            (CertType::Other(a), CertType::Other(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl fmt::Display for CertType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertType::Other(g) => write!(f, "{}", Guid(g)),
            named => f.write_str(named.name().unwrap_or("?")),
        }
    }
}

/// One certificate of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertEntry<'a> {
    /// Its type.
    pub cert_type: CertType,
    /// The certificate (DER) or CRL bytes.
    pub data: &'a [u8],
}

/// Why a buffer is not a well-formed certificate table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertTableError {
    /// The buffer ends before the all-zero terminating entry.
    Unterminated,
    /// More than [`MAX_ENTRIES`] entries before the terminator.
    TooManyEntries,
    /// A terminator (zero GUID) whose offset or length is not zero.
    BadTerminator {
        /// Entry index.
        index: usize,
    },
    /// An entry's data lies (partly) outside the buffer.
    OutOfBounds {
        /// Entry index.
        index: usize,
        /// Its offset.
        offset: u32,
        /// Its length.
        length: u32,
        /// The buffer length.
        buf_len: usize,
    },
    /// An entry's data overlaps the table itself.
    OverlapsTable {
        /// Entry index.
        index: usize,
        /// Its offset.
        offset: u32,
        /// First byte after the table (terminator included).
        table_end: usize,
    },
    /// An entry with no data.
    Empty {
        /// Entry index.
        index: usize,
    },
}

impl fmt::Display for CertTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed SNP certificate table from the host: ")?;
        match self {
            CertTableError::Unterminated => f.write_str("no terminating all-zero entry"),
            CertTableError::TooManyEntries => write!(f, "more than {MAX_ENTRIES} entries"),
            CertTableError::BadTerminator { index } => {
                write!(
                    f,
                    "entry {index} has a zero GUID but a non-zero offset or length"
                )
            }
            CertTableError::OutOfBounds {
                index,
                offset,
                length,
                buf_len,
            } => write!(
                f,
                "entry {index} (offset {offset}, length {length}) lies outside the {buf_len}-byte buffer"
            ),
            CertTableError::OverlapsTable {
                index,
                offset,
                table_end,
            } => write!(
                f,
                "entry {index} data at offset {offset} overlaps the table (which ends at {table_end})"
            ),
            CertTableError::Empty { index } => write!(f, "entry {index} has length 0"),
        }
    }
}

impl core::error::Error for CertTableError {}

/// A checked view of a GHCB certificate table, over any buffer that dereferences to bytes:
/// `CertTable<&[u8]>` borrows (zero-copy), `CertTable<Vec<u8>>` owns.
///
/// Construction ([`CertTable::new_checked`]) checks the whole table once; an owner keeps the
/// `CertTable<T>` (the proof) and reads entries through it without parsing again. `T::as_ref`
/// must return the same bytes every time (as slices, arrays, `Vec` and `Box` do); a buffer
/// that changes under the view makes the accessors panic, never read out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertTable<T: AsRef<[u8]>> {
    buf: T,
    count: usize,
}

impl<T: AsRef<[u8]>> CertTable<T> {
    /// Checks and wraps a table: terminated within the buffer and within [`MAX_ENTRIES`],
    /// every entry's data non-empty, inside the buffer and after the table.
    pub fn new_checked(buf: T) -> Result<Self, CertTableError> {
        let count = check(buf.as_ref())?;
        Ok(CertTable { buf, count })
    }

    /// The buffer the view was made from.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The underlying buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Number of entries (terminator excluded).
    pub fn len(&self) -> usize {
        self.count
    }

    /// No entries (a host without certificates).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `(offset, length)` of the `i`-th entry's data (`i < count`; checked at construction).
    fn span(&self, i: usize) -> (usize, usize) {
        let base = i * ENTRY_LEN;
        let buf = self.as_bytes();
        (
            u32_at(buf, base + 16) as usize,
            u32_at(buf, base + 20) as usize,
        )
    }

    /// The `i`-th entry in table order.
    pub fn get(&self, i: usize) -> Option<CertEntry<'_>> {
        if i >= self.count {
            return None;
        }
        let (start, len) = self.span(i);
        let buf = self.as_bytes();
        Some(CertEntry {
            cert_type: CertType::from_guid(array(buf, i * ENTRY_LEN)),
            data: &buf[start..start + len],
        })
    }

    /// Entries in table order.
    pub fn iter(&self) -> impl Iterator<Item = CertEntry<'_>> + '_ {
        (0..self.count).filter_map(|i| self.get(i))
    }

    /// The first entry of a type.
    pub fn find(&self, cert_type: CertType) -> Option<&[u8]> {
        self.iter()
            .find(|e| e.cert_type == cert_type)
            .map(|e| e.data)
    }

    /// Entries in the order the `sev` crate sorts them (stable for equal types).
    pub fn sorted(&self) -> Vec<CertEntry<'_>> {
        let mut v: Vec<_> = self.iter().collect();
        v.sort_by(|a, b| a.cert_type.sev_order(&b.cert_type));
        v
    }

    /// Bytes up to the end of the last certificate (what the kernel returns as `auxblob`; a
    /// shorter copy of a zero-padded ioctl buffer).
    pub fn used_len(&self) -> usize {
        (0..self.count)
            .map(|i| {
                let (start, len) = self.span(i);
                start + len
            })
            .fold((self.count + 1) * ENTRY_LEN, usize::max)
    }
}

impl CertTable<Vec<u8>> {
    /// The table without the bytes after [`CertTable::used_len`] (the zero padding of an ioctl
    /// buffer). Still checked: every entry and the terminator end at or before `used_len`.
    pub fn into_trimmed(self) -> Self {
        let used = self.used_len();
        let CertTable { mut buf, count } = self;
        buf.truncate(used);
        buf.shrink_to_fit();
        CertTable { buf, count }
    }

    /// Builds a table: the entries, the terminator, then each blob in order (for simulated
    /// firmware and tests).
    pub fn build(entries: &[(CertType, &[u8])]) -> Vec<u8> {
        let table_len = (entries.len() + 1) * ENTRY_LEN;
        let total = table_len + entries.iter().map(|(_, d)| d.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        let mut offset = table_len;
        for (t, data) in entries {
            out.extend_from_slice(&t.guid());
            out.extend_from_slice(&(offset as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            offset += data.len();
        }
        out.resize(table_len, 0);
        for (_, data) in entries {
            out.extend_from_slice(data);
        }
        out
    }
}

/// The checks of [`CertTable::new_checked`]; the number of entries of an acceptable table.
fn check(buf: &[u8]) -> Result<usize, CertTableError> {
    let mut count = 0;
    loop {
        let off = count * ENTRY_LEN;
        if off + ENTRY_LEN > buf.len() {
            return Err(CertTableError::Unterminated);
        }
        if array::<16>(buf, off).iter().all(|b| *b == 0) {
            if u32_at(buf, off + 16) != 0 || u32_at(buf, off + 20) != 0 {
                return Err(CertTableError::BadTerminator { index: count });
            }
            break;
        }
        count += 1;
        if count > MAX_ENTRIES {
            return Err(CertTableError::TooManyEntries);
        }
    }
    let table_end = (count + 1) * ENTRY_LEN;
    for index in 0..count {
        let base = index * ENTRY_LEN;
        let offset = u32_at(buf, base + 16);
        let length = u32_at(buf, base + 20);
        if length == 0 {
            return Err(CertTableError::Empty { index });
        }
        let start = offset as usize;
        let end = start.checked_add(length as usize);
        if end.is_none_or(|end| end > buf.len()) {
            return Err(CertTableError::OutOfBounds {
                index,
                offset,
                length,
                buf_len: buf.len(),
            });
        }
        if start < table_end {
            return Err(CertTableError::OverlapsTable {
                index,
                offset,
                table_end,
            });
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::parse_guid;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn guids_match_their_strings() {
        for (t, s) in [
            (CertType::Ark, "c0b406a4-a803-4952-9743-3fb6014cd0ae"),
            (CertType::Ask, "4ab7b379-bbac-4fe4-a02f-05aef327c782"),
            (CertType::Vcek, "63da758d-e664-4564-adc5-f4b93be8accd"),
            (CertType::Vlek, "a8074bc2-a25a-483e-aae6-39c045a0b8a1"),
            (CertType::Crl, "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"),
        ] {
            assert_eq!(parse_guid(s), Some(t.guid()), "{t}");
            assert_eq!(Guid(&t.guid()).to_string(), s);
            assert_eq!(CertType::from_guid(&t.guid()), t);
        }
    }

    #[test]
    fn build_parse_sort() {
        let other = CertType::Other([0x11; 16]);
        let blob = CertTable::build(&[
            (CertType::Crl, b"crl"),
            (other, b"x"),
            (CertType::Ask, b"ask"),
            (CertType::Vcek, b"vcek"),
            (CertType::Ark, b"ark"),
        ]);
        let t = CertTable::new_checked(&blob).unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(t.find(CertType::Vcek), Some(&b"vcek"[..]));
        assert_eq!(t.used_len(), blob.len());
        let order: Vec<CertType> = t.sorted().iter().map(|e| e.cert_type).collect();
        assert_eq!(
            order,
            vec![
                CertType::Ark,
                CertType::Vcek,
                CertType::Ask,
                CertType::Crl,
                other
            ]
        );
        // zero padding after the data (the ioctl buffer) is fine, and not counted as used
        let mut padded = blob.clone();
        padded.resize(16384, 0);
        let t = CertTable::new_checked(&padded).unwrap();
        assert_eq!(t.used_len(), blob.len());
        // an empty table is just a terminator
        let empty = CertTable::build(&[]);
        assert_eq!(empty, vec![0u8; ENTRY_LEN]);
        assert!(CertTable::new_checked(&empty).unwrap().is_empty());
    }

    #[test]
    fn owned_and_borrowed_views_agree() {
        let blob = CertTable::build(&[(CertType::Ark, b"ark"), (CertType::Vcek, b"vcek")]);
        let mut padded = blob.clone();
        padded.resize(4096, 0);
        // checked once, then kept: trimming an owned table keeps it checked
        let owned = CertTable::new_checked(padded).unwrap().into_trimmed();
        assert_eq!(owned.as_bytes(), &blob[..]);
        assert_eq!(owned.used_len(), blob.len());
        assert_eq!(owned.find(CertType::Vcek), Some(&b"vcek"[..]));
        let borrowed = CertTable::new_checked(&blob[..]).unwrap();
        assert_eq!(borrowed.len(), owned.len());
        assert!(borrowed.iter().eq(owned.iter()));
        assert_eq!(owned.into_inner(), blob);
    }

    #[test]
    fn sev_sort_order_matches_crate_tests() {
        // the `sev` crate's test_cert_type_sort_vlek expectation (Empty never reaches a table)
        let mut v = [
            CertType::Crl,
            CertType::Other([0x33; 16]),
            CertType::Other([0x11; 16]),
            CertType::Ark,
            CertType::Ask,
            CertType::Vlek,
        ];
        v.sort_by(|a, b| a.sev_order(b));
        assert_eq!(
            v,
            [
                CertType::Ark,
                CertType::Vlek,
                CertType::Ask,
                CertType::Crl,
                CertType::Other([0x11; 16]),
                CertType::Other([0x33; 16]),
            ]
        );
    }

    fn entry(guid: [u8; 16], offset: u32, length: u32) -> Vec<u8> {
        let mut e = guid.to_vec();
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&length.to_le_bytes());
        e
    }

    #[test]
    fn malformed_tables() {
        // unterminated: one entry, no terminator, buffer ends
        let mut b = entry(guid::VCEK, 48, 4);
        assert_eq!(
            CertTable::new_checked(&b),
            Err(CertTableError::Unterminated)
        );
        assert_eq!(
            CertTable::new_checked(&[]),
            Err(CertTableError::Unterminated)
        );
        assert_eq!(
            CertTable::new_checked(&[0; 23]),
            Err(CertTableError::Unterminated)
        );
        // out of bounds
        b.extend(entry([0; 16], 0, 0));
        b.extend_from_slice(b"abc");
        assert_eq!(
            CertTable::new_checked(&b),
            Err(CertTableError::OutOfBounds {
                index: 0,
                offset: 48,
                length: 4,
                buf_len: 51
            })
        );
        // offset + length overflowing u32 arithmetic
        let mut b = entry(guid::VCEK, u32::MAX, u32::MAX);
        b.extend(entry([0; 16], 0, 0));
        assert!(matches!(
            CertTable::new_checked(&b),
            Err(CertTableError::OutOfBounds { .. })
        ));
        // overlapping the table (points into the terminator)
        let mut b = entry(guid::VCEK, 30, 4);
        b.extend(entry([0; 16], 0, 0));
        b.extend_from_slice(b"data");
        assert_eq!(
            CertTable::new_checked(&b),
            Err(CertTableError::OverlapsTable {
                index: 0,
                offset: 30,
                table_end: 48
            })
        );
        // empty entry
        let mut b = entry(guid::VCEK, 48, 0);
        b.extend(entry([0; 16], 0, 0));
        assert_eq!(
            CertTable::new_checked(&b),
            Err(CertTableError::Empty { index: 0 })
        );
        // terminator with a length
        let b = entry([0; 16], 0, 5);
        assert_eq!(
            CertTable::new_checked(&b),
            Err(CertTableError::BadTerminator { index: 0 })
        );
        // too many entries
        let mut b = Vec::new();
        for _ in 0..=MAX_ENTRIES {
            b.extend(entry(guid::CRL, 0x10000, 1));
        }
        b.extend(entry([0; 16], 0, 0));
        b.resize(0x10001, 0);
        assert_eq!(
            CertTable::new_checked(&b),
            Err(CertTableError::TooManyEntries)
        );
        // exactly MAX_ENTRIES is fine
        let mut b = Vec::new();
        for _ in 0..MAX_ENTRIES {
            b.extend(entry(guid::CRL, 0x10000, 1));
        }
        b.extend(entry([0; 16], 0, 0));
        b.resize(0x10001, 0);
        assert_eq!(CertTable::new_checked(&b).unwrap().len(), MAX_ENTRIES);
    }
}
