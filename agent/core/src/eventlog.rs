//! The TDX event log as guest-components sends it (`cc_eventlog`), sans-IO.
//!
//! What the attestation agent of guest-components does (facts §4.3–§4.5, GC 8246e5e0), and
//! what Trustee's TDX verifier does with it (§5, TR 78962cd4), re-implemented from the
//! byte formats (TCG PC Client Platform Firmware Profile, crypto-agile log):
//!
//! - [`trim_ccel`]: the firmware's CCEL log area (`/sys/firmware/acpi/tables/data/CCEL`) is
//!   the whole zero- or 0xFF-padded area; the log ends where the next 8 bytes are all 0xFF
//!   or all 0x00. The first event is in the SHA-1 (`TCG_PCR_EVENT`) format, the rest are
//!   crypto-agile (`TCG_PCR_EVENT2`). An unknown digest algorithm or a missing end is an
//!   error.
//! - [`AaelEvent`]: an attestation-agent event log (AAEL) entry: the text
//!   `"<domain> <operation> <content>"` in a binary `EV_EVENT_TAG` record with the tag
//!   `"AAEL"` (0x4141454C), one SHA-384 digest over the tagged event bytes.
//! - [`assemble`]: CCEL (trimmed) + AAEL [+ [`EL_HEADER`] first when there is no CCEL] +
//!   [`EL_END_FLAG`]; `None` when both are absent (the evidence then carries `null`).
//! - [`pcr_to_mr`]: PCR → CC measurement register (log MR index 1..4; RTMR = index − 1);
//!   the default AAEL PCR 17 is log index 4, RTMR3.
//! - [`EventLog::parse`] and [`EventLog::replay`]: the verifier's side: parse the whole log
//!   (SpecID digest sizes, known event types), fold SHA-384 per MR index 1..4 from 48 zero
//!   bytes: the RTMRs a quote must carry.
//! - [`Wal`]: the write-ahead record guarding an RTMR extend (`u64 BE offset of the record
//!   in the AAEL | expected RTMR after the extend (48) | event text`).
//!
//! Every input is bounded ([`MAX_CCEL`], [`MAX_AAEL`], [`MAX_EVENT_TEXT`]) and parsed with
//! checked arithmetic; nothing here panics on hostile bytes (fuzz target `eventlog`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha384};

/// Largest CCEL log area read (bytes). Real TDVF logs are tens of KiB in an area of 64 KiB
/// to a few hundred KiB; chosen, not measured.
pub const MAX_CCEL: usize = 1 << 20;
/// Largest AAEL file read (bytes): about 10 000 image-pull events. Chosen.
pub const MAX_AAEL: usize = 1 << 20;
/// Largest whole `cc_eventlog` (before base64): [`MAX_CCEL`] + [`MAX_AAEL`] + header + end.
pub const MAX_CC_EVENTLOG: usize = MAX_CCEL + MAX_AAEL + EL_HEADER.len() + EL_END_FLAG.len();
/// Largest AAEL event text `"<domain> <operation> <content>"` (bytes). Chosen: the REST
/// body that carries one is at most 64 KiB.
pub const MAX_EVENT_TEXT: usize = 64 << 10;

/// SHA-384 digest length: the size of an RTMR.
pub const SHA384_LEN: usize = 48;

/// `TPM_ALG_SHA1`.
pub const ALG_SHA1: u16 = 0x0004;
/// `TPM_ALG_SHA256`.
pub const ALG_SHA256: u16 = 0x000B;
/// `TPM_ALG_SHA384`: what TDX RTMRs use.
pub const ALG_SHA384: u16 = 0x000C;
/// `TPM_ALG_SHA512`.
pub const ALG_SHA512: u16 = 0x000D;
/// `TPM_ALG_SM3_256`.
pub const ALG_SM3_256: u16 = 0x0012;

/// `EV_NO_ACTION`: the SpecID header event (and other non-extended events).
pub const EV_NO_ACTION: u32 = 0x3;
/// `EV_SEPARATOR`.
pub const EV_SEPARATOR: u32 = 0x4;
/// `EV_EVENT_TAG`: the type of every AAEL record.
pub const EV_EVENT_TAG: u32 = 0x6;
/// `EV_EFI_BOOT_SERVICES_APPLICATION`.
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
/// `EV_EFI_PLATFORM_FIRMWARE_BLOB2`.
pub const EV_EFI_PLATFORM_FIRMWARE_BLOB2: u32 = 0x8000_000A;

/// The tag of an AAEL `EV_EVENT_TAG` event (`"AAEL"` read as a big-endian u32; on the wire
/// it is little-endian, `"LEAA"`).
pub const AAEL_TAG: u32 = 0x4141_454C;

/// The PCR an AAEL entry goes to when the caller names none (upstream `init_pcr = 17`).
pub const DEFAULT_AAEL_PCR: u64 = 17;

/// The log header guest-components puts first when the firmware gave no CCEL: an
/// `EV_NO_ACTION` event in the SHA-1 format whose SpecID table declares SHA-384 (48) and
/// SM3-256 (32), vendor info size 0. Byte for byte what upstream sends (its 16-byte
/// signature and version fields are zero, as there).
pub const EL_HEADER: [u8; 69] = el_header();

const fn el_header() -> [u8; 69] {
    let mut h = [0u8; 69];
    // mr_index 0, event type EV_NO_ACTION, 20 zero digest bytes.
    h[4] = EV_NO_ACTION as u8;
    // event data size: 16 (signature) + 4 + 4 (class, versions, errata, uintn) + 4 (count)
    // + 2 × 4 (table) + 1 (vendor info size) = 37.
    h[28] = 37;
    // event data at 32: 24 zero bytes, then the algorithm count and table.
    h[56] = 2;
    h[60] = ALG_SHA384 as u8;
    h[62] = SHA384_LEN as u8;
    h[64] = ALG_SM3_256 as u8;
    h[66] = 32;
    // h[68]: vendor info size 0.
    h
}

/// The end marker appended after the last event.
pub const EL_END_FLAG: [u8; 8] = [0xFF; 8];

/// The digest size of a TCG algorithm the CCEL trimmer knows (as upstream: SHA-256,
/// SHA-384, SHA-512, SM3-256).
pub fn known_digest_len(alg: u16) -> Option<usize> {
    match alg {
        ALG_SHA256 | ALG_SM3_256 => Some(32),
        ALG_SHA384 => Some(48),
        ALG_SHA512 => Some(64),
        _ => None,
    }
}

/// Why an event log could not be trimmed, assembled or parsed. Messages name offsets and
/// values, never event data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventLogError {
    /// The log ends inside a field.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// No 8-byte end marker (all 0xFF or all 0x00) before the end of the data.
    NoEnd,
    /// A digest algorithm the log's header (or, for the CCEL trimmer, upstream) does not know.
    UnknownAlgorithm {
        /// The TCG algorithm id.
        alg: u16,
        /// Offset of the event.
        offset: usize,
    },
    /// An event type outside the TCG and UEFI lists.
    UnknownEventType {
        /// The type.
        event_type: u32,
        /// Offset of the event.
        offset: usize,
    },
    /// The SpecID header's digest table does not fill its event exactly.
    BadSpecId,
    /// A part is larger than its bound.
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The event text contains a line feed (upstream refuses it).
    NewlineInContent,
    /// A write-ahead record that is too short.
    BadWal {
        /// Its length.
        len: usize,
    },
    /// An event's MR index is not 1..4 where a register is required.
    BadMrIndex {
        /// The index.
        index: u32,
    },
}

impl fmt::Display for EventLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventLogError::Truncated { what, offset } => {
                write!(f, "event log ends inside {what} at offset {offset}")
            }
            EventLogError::NoEnd => f.write_str(
                "event log has no end marker (8 bytes of 0xFF or 0x00) before the end of its area",
            ),
            EventLogError::UnknownAlgorithm { alg, offset } => write!(
                f,
                "event log: unknown digest algorithm 0x{alg:04x} in the event at offset {offset}"
            ),
            EventLogError::UnknownEventType { event_type, offset } => write!(
                f,
                "event log: unknown event type 0x{event_type:08x} at offset {offset}"
            ),
            EventLogError::BadSpecId => {
                f.write_str("event log: the SpecID header's digest table does not fit its event")
            }
            EventLogError::TooLarge { what, len, max } => {
                write!(f, "{what} is {len} bytes, more than the {max} allowed")
            }
            EventLogError::NewlineInContent => {
                f.write_str("event content must not contain a line feed")
            }
            EventLogError::BadWal { len } => {
                write!(
                    f,
                    "event log write-ahead record of {len} bytes is too short"
                )
            }
            EventLogError::BadMrIndex { index } => {
                write!(f, "MR index {index} is not a TDX RTMR (1..4)")
            }
        }
    }
}

impl core::error::Error for EventLogError {}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EventLogError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(EventLogError::Truncated {
                what,
                offset: self.pos,
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, EventLogError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, EventLogError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, EventLogError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Whether the next 8 bytes are an end marker; an error if fewer than 8 remain.
    fn at_end_marker(&self) -> Result<bool, EventLogError> {
        let next = self
            .buf
            .get(self.pos..)
            .and_then(|r| r.get(..8))
            .ok_or(EventLogError::NoEnd)?;
        Ok(next.iter().all(|&b| b == 0xFF) || next.iter().all(|&b| b == 0))
    }
}

/// The length of the CCEL log in `ccel` (the log area): the first (SHA-1 format) event,
/// then crypto-agile events up to the first 8 bytes that are all 0xFF or all 0x00.
/// `&ccel[..len]` is what guest-components sends. Digest sizes are upstream's fixed table
/// ([`known_digest_len`]); an unknown algorithm or a missing end marker is an error.
pub fn trim_ccel(ccel: &[u8]) -> Result<usize, EventLogError> {
    if ccel.len() > MAX_CCEL {
        return Err(EventLogError::TooLarge {
            what: "the CCEL",
            len: ccel.len(),
            max: MAX_CCEL,
        });
    }
    let mut r = Reader::new(ccel);
    r.take(4, "the first event's MR index")?;
    let first_type = r.u32("the first event's type")?;
    r.take(20, "the first event's SHA-1 digest")?;
    if first_type == EV_NO_ACTION {
        let size = r.u32("the first event's size")? as usize;
        r.take(size, "the first event's data")?;
    }
    loop {
        if r.at_end_marker()? {
            return Ok(r.pos);
        }
        let offset = r.pos;
        r.take(8, "an event's MR index and type")?;
        let count = r.u32("an event's digest count")?;
        for _ in 0..count {
            let alg = r.u16("a digest's algorithm")?;
            let len =
                known_digest_len(alg).ok_or(EventLogError::UnknownAlgorithm { alg, offset })?;
            r.take(len, "a digest")?;
        }
        let size = r.u32("an event's size")? as usize;
        r.take(size, "an event's data")?;
    }
}

/// The `cc_eventlog` bytes (before base64) from the firmware's CCEL area and the AAEL file:
/// the trimmed CCEL, the AAEL ([`EL_HEADER`] before it if there is no CCEL), then
/// [`EL_END_FLAG`]. `None` when there is neither (upstream sends `null`). Empty files
/// count as absent.
pub fn assemble(
    ccel: Option<&[u8]>,
    aael: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, EventLogError> {
    let ccel = ccel.filter(|c| !c.is_empty());
    let aael = aael.filter(|a| !a.is_empty());
    if let Some(a) = aael
        && a.len() > MAX_AAEL
    {
        return Err(EventLogError::TooLarge {
            what: "the AA event log",
            len: a.len(),
            max: MAX_AAEL,
        });
    }
    let mut out = Vec::new();
    match ccel {
        Some(c) => {
            let len = trim_ccel(c)?;
            out.extend_from_slice(&c[..len]);
        }
        None if aael.is_some() => out.extend_from_slice(&EL_HEADER),
        None => {}
    }
    if let Some(a) = aael {
        out.extend_from_slice(a);
    }
    if out.is_empty() {
        return Ok(None);
    }
    out.extend_from_slice(&EL_END_FLAG);
    Ok(Some(out))
}

/// PCR → CC measurement register index as guest-components maps it on TDX: PCR 1 and 7 →
/// 1; 2..=6 → 2; 8..=15 → 3; anything else (17, the AAEL default, included) → 4. The RTMR
/// is the index minus one; the index is what the log records.
pub fn pcr_to_mr(pcr: u64) -> u32 {
    match pcr {
        1 | 7 => 1,
        2..=6 => 2,
        8..=15 => 3,
        _ => 4,
    }
}

/// The RTMR (0..=3) of a log MR index (1..=4).
pub fn mr_to_rtmr(mr_index: u32) -> Result<u32, EventLogError> {
    match mr_index {
        1..=4 => Ok(mr_index - 1),
        index => Err(EventLogError::BadMrIndex { index }),
    }
}

/// `SHA384(current || digest)`: an RTMR after one extend.
pub fn extend(current: &[u8; SHA384_LEN], digest: &[u8; SHA384_LEN]) -> [u8; SHA384_LEN] {
    let mut h = Sha384::new();
    h.update(current);
    h.update(digest);
    h.finalize().into()
}

/// One AAEL entry: its text and the MR index it is recorded under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AaelEvent {
    text: String,
    mr_index: u32,
}

impl AaelEvent {
    /// `"<domain> <operation> <content>"` for MR index `mr_index` (see [`pcr_to_mr`]).
    /// The content must not contain a line feed (as upstream); the text is bounded by
    /// [`MAX_EVENT_TEXT`].
    pub fn new(
        domain: &str,
        operation: &str,
        content: &str,
        mr_index: u32,
    ) -> Result<AaelEvent, EventLogError> {
        mr_to_rtmr(mr_index)?;
        if content.contains('\n') {
            return Err(EventLogError::NewlineInContent);
        }
        let len = domain.len() + operation.len() + content.len() + 2;
        if len > MAX_EVENT_TEXT {
            return Err(EventLogError::TooLarge {
                what: "the event text",
                len,
                max: MAX_EVENT_TEXT,
            });
        }
        let mut text = String::with_capacity(len);
        text.push_str(domain);
        text.push(' ');
        text.push_str(operation);
        text.push(' ');
        text.push_str(content);
        Ok(AaelEvent { text, mr_index })
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The MR index the record names.
    pub fn mr_index(&self) -> u32 {
        self.mr_index
    }

    /// The tagged event bytes: `u32 AAEL_TAG | u32 len | text` (little-endian).
    pub fn event_data(&self) -> Vec<u8> {
        tagged_event(AAEL_TAG, self.text.as_bytes())
    }

    /// The digest extended into the RTMR: SHA-384 of [`AaelEvent::event_data`].
    pub fn digest(&self) -> [u8; SHA384_LEN] {
        Sha384::digest(self.event_data()).into()
    }

    /// The binary record appended to the AAEL: `u32 mr_index | u32 EV_EVENT_TAG | u32 1 |
    /// u16 SHA-384 | digest | u32 size | event data`.
    pub fn record(&self) -> Vec<u8> {
        let data = self.event_data();
        event2(
            self.mr_index,
            EV_EVENT_TAG,
            &[(ALG_SHA384, &self.digest())],
            &data,
        )
    }
}

/// `u32 tag | u32 len | data` (a `TCG_PCClientTaggedEvent`).
pub fn tagged_event(tag: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A crypto-agile event (`TCG_PCR_EVENT2`) with these digests and data.
pub fn event2(mr_index: u32, event_type: u32, digests: &[(u16, &[u8])], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&mr_index.to_le_bytes());
    out.extend_from_slice(&event_type.to_le_bytes());
    out.extend_from_slice(&(digests.len() as u32).to_le_bytes());
    for (alg, d) in digests {
        out.extend_from_slice(&alg.to_le_bytes());
        out.extend_from_slice(d);
    }
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A SpecID header event (SHA-1 format, `EV_NO_ACTION`) declaring `algs` (id, size), with
/// the `"Spec ID Event03"` signature, as firmware writes it.
pub fn spec_id_header(algs: &[(u16, u16)]) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(b"Spec ID Event03\0");
    data.extend_from_slice(&0u32.to_le_bytes()); // platform class
    data.extend_from_slice(&[0, 2, 0, 2]); // version minor, major, errata, uintn size (u64)
    data.extend_from_slice(&(algs.len() as u32).to_le_bytes());
    for (alg, size) in algs {
        data.extend_from_slice(&alg.to_le_bytes());
        data.extend_from_slice(&size.to_le_bytes());
    }
    data.push(0); // vendor info size
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    out.extend_from_slice(&[0u8; 20]);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// The name of a TCG / UEFI event type, or `None` for an unknown one (the verifier refuses
/// those, as Trustee's parser does).
pub fn event_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0x0 => "EV_PREBOOT_CERT",
        0x1 => "EV_POST_CODE",
        0x2 => "EV_UNUSED",
        0x3 => "EV_NO_ACTION",
        0x4 => "EV_SEPARATOR",
        0x5 => "EV_ACTION",
        0x6 => "EV_EVENT_TAG",
        0x7 => "EV_S_CRTM_CONTENTS",
        0x8 => "EV_S_CRTM_VERSION",
        0x9 => "EV_CPU_MICROCODE",
        0xA => "EV_PLATFORM_CONFIG_FLAGS",
        0xB => "EV_TABLE_OF_DEVICES",
        0xC => "EV_COMPACT_HASH",
        0xD => "EV_IPL",
        0xE => "EV_IPL_PARTITION_DATA",
        0xF => "EV_NONHOST_CODE",
        0x10 => "EV_NONHOST_CONFIG",
        0x11 => "EV_NONHOST_INFO",
        0x12 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x8000_0000 => "EV_EFI_EVENT_BASE",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_000A => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000B => "EV_EFI_HANDOFF_TABLES2",
        0x8000_000C => "EV_EFI_VARIABLE_BOOT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        0x8000_00E0 => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00E1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00E2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        _ => return None,
    })
}

/// One parsed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The MR index (0 for the header; 1..4 for RTMR0..3).
    pub mr_index: u32,
    /// The event type.
    pub event_type: u32,
    /// `(algorithm, digest)` pairs (empty for the SHA-1-format header).
    pub digests: Vec<(u16, Vec<u8>)>,
    /// The event data.
    pub data: Vec<u8>,
}

impl Event {
    /// For an `EV_EVENT_TAG` event with the AAEL tag: its text.
    pub fn aael_text(&self) -> Option<&str> {
        if self.event_type != EV_EVENT_TAG {
            return None;
        }
        let mut r = Reader::new(&self.data);
        if r.u32("tag").ok()? != AAEL_TAG {
            return None;
        }
        let len = r.u32("len").ok()? as usize;
        core::str::from_utf8(r.take(len, "text").ok()?).ok()
    }

    /// Whether each digest is the hash of the data (SHA-384 only checked; other algorithms
    /// count as matching). Reported, not enforced, as Trustee does.
    pub fn digest_matches_event(&self) -> bool {
        self.digests
            .iter()
            .filter(|(alg, _)| *alg == ALG_SHA384)
            .all(|(_, d)| d.as_slice() == Sha384::digest(&self.data).as_slice())
    }
}

/// A parsed event log (the verifier's view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLog {
    /// The events, header first.
    pub events: Vec<Event>,
}

impl EventLog {
    /// Parses a `cc_eventlog` as Trustee does: the first event in the SHA-1 format with a
    /// known type (an `EV_NO_ACTION` header's SpecID table gives the digest sizes and must
    /// fill its event exactly), then crypto-agile events with known types and algorithms
    /// from that table, until 8 bytes of 0xFF or 0x00 (fewer than 8 bytes left is an error).
    pub fn parse(bytes: &[u8]) -> Result<EventLog, EventLogError> {
        if bytes.len() > MAX_CC_EVENTLOG {
            return Err(EventLogError::TooLarge {
                what: "the event log",
                len: bytes.len(),
                max: MAX_CC_EVENTLOG,
            });
        }
        let mut r = Reader::new(bytes);
        let mr_index = r.u32("the header's MR index")?;
        let event_type = r.u32("the header's type")?;
        if event_type_name(event_type).is_none() {
            return Err(EventLogError::UnknownEventType {
                event_type,
                offset: 0,
            });
        }
        r.take(20, "the header's digest")?;
        let size = r.u32("the header's size")? as usize;
        let data = r.take(size, "the header's data")?;
        let mut sizes: Vec<(u16, usize)> = Vec::new();
        if event_type == EV_NO_ACTION {
            let mut s = Reader::new(data);
            s.take(24, "the SpecID signature")
                .map_err(|_| EventLogError::BadSpecId)?;
            let n = s.u32("count").map_err(|_| EventLogError::BadSpecId)?;
            for _ in 0..n {
                let alg = s.u16("alg").map_err(|_| EventLogError::BadSpecId)?;
                let len = s.u16("size").map_err(|_| EventLogError::BadSpecId)?;
                sizes.push((alg, usize::from(len)));
            }
            let vendor = s.u8("vendor size").map_err(|_| EventLogError::BadSpecId)?;
            s.take(usize::from(vendor), "vendor")
                .map_err(|_| EventLogError::BadSpecId)?;
            if s.pos != data.len() {
                return Err(EventLogError::BadSpecId);
            }
        }
        let mut events = alloc::vec![Event {
            mr_index,
            event_type,
            digests: Vec::new(),
            data: data.to_vec(),
        }];
        loop {
            if r.at_end_marker()? {
                return Ok(EventLog { events });
            }
            let offset = r.pos;
            let mr_index = r.u32("an event's MR index")?;
            let event_type = r.u32("an event's type")?;
            if event_type_name(event_type).is_none() {
                return Err(EventLogError::UnknownEventType { event_type, offset });
            }
            let count = r.u32("an event's digest count")?;
            let mut digests = Vec::new();
            for _ in 0..count {
                let alg = r.u16("a digest's algorithm")?;
                let len = sizes
                    .iter()
                    .find(|(a, _)| *a == alg)
                    .map(|(_, l)| *l)
                    .ok_or(EventLogError::UnknownAlgorithm { alg, offset })?;
                digests.push((alg, r.take(len, "a digest")?.to_vec()));
            }
            let size = r.u32("an event's size")? as usize;
            let data = r.take(size, "an event's data")?.to_vec();
            events.push(Event {
                mr_index,
                event_type,
                digests,
                data,
            });
        }
    }

    /// The RTMRs the log gives: for MR index 1..4 (RTMR0..3), `H(acc || digest)` from 48
    /// zero bytes over every SHA-384 digest with that index, in log order. Other digests
    /// and indexes are ignored.
    pub fn replay(&self) -> [[u8; SHA384_LEN]; 4] {
        let mut rtmr = [[0u8; SHA384_LEN]; 4];
        for e in &self.events {
            let Ok(i) = mr_to_rtmr(e.mr_index) else {
                continue;
            };
            for (alg, d) in &e.digests {
                if *alg == ALG_SHA384
                    && let Ok(d) = <&[u8; SHA384_LEN]>::try_from(d.as_slice())
                {
                    let slot = &mut rtmr[i as usize];
                    *slot = extend(slot, d);
                }
            }
        }
        rtmr
    }
}

/// The write-ahead record of one RTMR extend (upstream's `.wal_event_entry`): where the
/// record goes in the AAEL, the RTMR value expected after the extend, and the event text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wal {
    /// Offset of the record in the AAEL file.
    pub offset: u64,
    /// The RTMR after the extend.
    pub expected: [u8; SHA384_LEN],
    /// The event text.
    pub text: String,
}

impl Wal {
    /// `u64 BE offset | expected (48) | text`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + SHA384_LEN + self.text.len());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.expected);
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Reads a record written by [`Wal::encode`] (or by upstream). The text must be UTF-8
    /// and at most [`MAX_EVENT_TEXT`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Wal, EventLogError> {
        if bytes.len() < 8 + SHA384_LEN {
            return Err(EventLogError::BadWal { len: bytes.len() });
        }
        let text = &bytes[8 + SHA384_LEN..];
        if text.len() > MAX_EVENT_TEXT {
            return Err(EventLogError::TooLarge {
                what: "the write-ahead record's text",
                len: text.len(),
                max: MAX_EVENT_TEXT,
            });
        }
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&bytes[..8]);
        let mut expected = [0u8; SHA384_LEN];
        expected.copy_from_slice(&bytes[8..8 + SHA384_LEN]);
        let text =
            core::str::from_utf8(text).map_err(|_| EventLogError::BadWal { len: bytes.len() })?;
        Ok(Wal {
            offset: u64::from_be_bytes(offset),
            expected,
            text: String::from(text),
        })
    }
}

/// An AAEL record for a text recovered from a [`Wal`] (no content check: it was checked
/// when the record was made).
pub fn record_for_text(mr_index: u32, text: &str) -> Vec<u8> {
    let data = tagged_event(AAEL_TAG, text.as_bytes());
    let digest: [u8; SHA384_LEN] = Sha384::digest(&data).into();
    event2(mr_index, EV_EVENT_TAG, &[(ALG_SHA384, &digest)], &data)
}

/// The digest of an AAEL text (SHA-384 of its tagged event).
pub fn digest_for_text(text: &str) -> [u8; SHA384_LEN] {
    Sha384::digest(tagged_event(AAEL_TAG, text.as_bytes())).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A small firmware-like CCEL area: SpecID header, one event per RTMR0..2, padding.
    fn sample_ccel(pad: u8) -> (Vec<u8>, usize) {
        let mut log = spec_id_header(&[(ALG_SHA384, 48)]);
        for (i, text) in [b"td-hob".as_slice(), b"kernel", b"cmdline"]
            .iter()
            .enumerate()
        {
            let d: [u8; 48] = Sha384::digest(text).into();
            log.extend(event2(
                i as u32 + 1,
                EV_EVENT_TAG,
                &[(ALG_SHA384, &d)],
                text,
            ));
        }
        let len = log.len();
        log.resize(len + 256, pad);
        (log, len)
    }

    #[test]
    fn el_header_is_upstreams_69_bytes() {
        assert_eq!(EL_HEADER.len(), 69);
        assert_eq!(&EL_HEADER[..8], &[0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&EL_HEADER[28..32], &[0x25, 0, 0, 0]);
        assert_eq!(
            &EL_HEADER[56..69],
            &[2, 0, 0, 0, 0x0C, 0, 0x30, 0, 0x12, 0, 0x20, 0, 0]
        );
        // The verifier's parser accepts it as a header.
        let mut log = EL_HEADER.to_vec();
        log.extend_from_slice(&EL_END_FLAG);
        assert_eq!(EventLog::parse(&log).unwrap().events.len(), 1);
    }

    #[test]
    fn trims_at_ff_and_zero_padding() {
        for pad in [0xFF, 0x00] {
            let (area, len) = sample_ccel(pad);
            assert_eq!(trim_ccel(&area).unwrap(), len);
        }
        let (area, len) = sample_ccel(0xFF);
        // No end marker: the area stops right after the log.
        assert_eq!(trim_ccel(&area[..len]), Err(EventLogError::NoEnd));
        assert_eq!(trim_ccel(&area[..len + 7]), Err(EventLogError::NoEnd));
        // A digest algorithm upstream does not know.
        let mut bad = area.clone();
        let first = spec_id_header(&[(ALG_SHA384, 48)]).len();
        bad[first + 12] = 0x04; // SHA-1
        assert_eq!(
            trim_ccel(&bad),
            Err(EventLogError::UnknownAlgorithm {
                alg: ALG_SHA1,
                offset: first
            })
        );
        assert!(matches!(
            trim_ccel(&[0; 10]),
            Err(EventLogError::Truncated { .. })
        ));
        assert!(matches!(
            trim_ccel(&vec![0; MAX_CCEL + 1]),
            Err(EventLogError::TooLarge { .. })
        ));
    }

    #[test]
    fn aael_record_bytes() {
        let e = AaelEvent::new(
            "github.com/confidential-containers",
            "PullImage",
            "{\"a\":1}",
            pcr_to_mr(17),
        )
        .unwrap();
        assert_eq!(e.mr_index(), 4);
        let text = "github.com/confidential-containers PullImage {\"a\":1}";
        assert_eq!(e.text(), text);
        let data = e.event_data();
        assert_eq!(&data[..4], b"LEAA");
        assert_eq!(&data[4..8], &(text.len() as u32).to_le_bytes());
        let rec = e.record();
        assert_eq!(&rec[..4], &4u32.to_le_bytes());
        assert_eq!(&rec[4..8], &EV_EVENT_TAG.to_le_bytes());
        assert_eq!(&rec[8..12], &1u32.to_le_bytes());
        assert_eq!(&rec[12..14], &ALG_SHA384.to_le_bytes());
        assert_eq!(&rec[14..62], Sha384::digest(&data).as_slice());
        assert_eq!(&rec[62..66], &(data.len() as u32).to_le_bytes());
        assert_eq!(&rec[66..], data.as_slice());
        assert_eq!(rec, record_for_text(4, text));
        assert_eq!(e.digest(), digest_for_text(text));
        assert_eq!(
            AaelEvent::new("d", "o", "a\nb", 4),
            Err(EventLogError::NewlineInContent)
        );
        assert!(AaelEvent::new("d", "o", "c", 5).is_err());
        let big = "x".repeat(MAX_EVENT_TEXT);
        assert!(matches!(
            AaelEvent::new("d", "o", &big, 4),
            Err(EventLogError::TooLarge { .. })
        ));
    }

    #[test]
    fn pcr_mapping_as_upstream() {
        assert_eq!([1, 7].map(pcr_to_mr), [1, 1]);
        assert_eq!([2, 6].map(pcr_to_mr), [2, 2]);
        assert_eq!([8, 15].map(pcr_to_mr), [3, 3]);
        assert_eq!([0, 16, 17, 23, u64::MAX].map(pcr_to_mr), [4; 5]);
        assert_eq!(mr_to_rtmr(4), Ok(3));
        assert!(mr_to_rtmr(0).is_err());
    }

    #[test]
    fn assemble_parse_replay() {
        let (area, len) = sample_ccel(0xFF);
        let e = AaelEvent::new("dom", "op", "content", 4).unwrap();
        let log = assemble(Some(&area), Some(&e.record())).unwrap().unwrap();
        assert_eq!(&log[..len], &area[..len]);
        assert!(log.ends_with(&EL_END_FLAG));
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.events.len(), 5);
        assert_eq!(parsed.events[4].aael_text(), Some("dom op content"));
        assert!(
            parsed
                .events
                .iter()
                .skip(1)
                .all(Event::digest_matches_event)
        );
        let rtmr = parsed.replay();
        let mut want0 = [0u8; 48];
        want0 = extend(&want0, &Sha384::digest(b"td-hob").into());
        assert_eq!(rtmr[0], want0);
        assert_eq!(rtmr[3], extend(&[0; 48], &e.digest()));

        // No CCEL: upstream's header first.
        let log = assemble(None, Some(&e.record())).unwrap().unwrap();
        assert_eq!(&log[..69], &EL_HEADER);
        assert_eq!(EventLog::parse(&log).unwrap().replay()[3], rtmr[3]);
        // Neither: null.
        assert_eq!(assemble(None, None).unwrap(), None);
        assert_eq!(assemble(Some(&[]), Some(&[])).unwrap(), None);
        // CCEL only.
        let log = assemble(Some(&area), None).unwrap().unwrap();
        assert_eq!(log.len(), len + 8);
    }

    #[test]
    fn parser_refuses_what_trustee_refuses() {
        let (area, len) = sample_ccel(0xFF);
        // Missing end: fewer than 8 bytes left.
        assert_eq!(EventLog::parse(&area[..len + 4]), Err(EventLogError::NoEnd));
        // Unknown type in the first event.
        let mut bad = area.clone();
        bad[4] = 0x77;
        assert!(matches!(
            EventLog::parse(&bad),
            Err(EventLogError::UnknownEventType { .. })
        ));
        // An algorithm not in the SpecID table (SM3 is known to the trimmer, not declared).
        let first = spec_id_header(&[(ALG_SHA384, 48)]).len();
        let mut bad = area.clone();
        bad[first + 12] = 0x12;
        assert!(matches!(
            EventLog::parse(&bad),
            Err(EventLogError::UnknownAlgorithm { .. })
        ));
        // SpecID size that does not match its table.
        let mut bad = area.clone();
        bad[28] += 1;
        assert!(EventLog::parse(&bad).is_err());
    }

    #[test]
    fn tampering_changes_the_replay() {
        let (area, _) = sample_ccel(0xFF);
        let log = assemble(Some(&area), None).unwrap().unwrap();
        let good = EventLog::parse(&log).unwrap().replay();
        let first = spec_id_header(&[(ALG_SHA384, 48)]).len();
        let mut bad = log.clone();
        bad[first + 20] ^= 1; // inside RTMR0's digest
        let replayed = EventLog::parse(&bad).unwrap().replay();
        assert_ne!(replayed[0], good[0]);
        assert_eq!(replayed[1..], good[1..]);
    }

    #[test]
    fn wal_round_trip() {
        let w = Wal {
            offset: 0x0102_0304_0506_0708,
            expected: [9; 48],
            text: "a b c".into(),
        };
        let b = w.encode();
        assert_eq!(&b[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Wal::decode(&b).unwrap(), w);
        assert_eq!(
            Wal::decode(&b[..55]),
            Err(EventLogError::BadWal { len: 55 })
        );
        let mut nonutf8 = b.clone();
        nonutf8.push(0xFF);
        assert!(Wal::decode(&nonutf8).is_err());
    }
}
