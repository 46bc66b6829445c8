//! DNS stub resolver core, sans-IO: `/etc/resolv.conf` parsing, the search list, A/AAAA
//! query encoding and response parsing (RFC 1035) that holds up against hostile input.
//!
//! The transport (the binary's shell) reads the file, encodes one [`Query`] per question with
//! a fresh random ID, sends it to each nameserver in turn and hands every datagram it gets
//! back to [`Query::parse_response`]. That either accepts the message as the answer to this
//! query ([`Reply`]) or says why not ([`ResponseError`]); [`ResponseError::is_unrelated`]
//! tells a datagram that is not an answer to this query at all (wrong ID or question: keep
//! waiting) from a malformed answer (give up on that server). [`Reply::Truncated`] asks for
//! the same query over TCP.
//!
//! What a reply is trusted for: only the answer section is read. CNAME records are followed
//! from the question name within that section (at most [`MAX_CNAME_CHAIN`] of them), and only
//! the A or AAAA records (class IN) of the final name are returned; records for any other
//! name, the authority and additional sections are ignored. Every offset is bounds-checked,
//! compression pointers are followed at most [`MAX_POINTER_JUMPS`] times per name (so loops
//! end), names are at most 255 bytes, and no input makes the parser panic or allocate more
//! than a few KiB.
//!
//! Deliberately not supported: EDNS0 (queries are plain DNS, answers over UDP are limited to
//! what the server fits in 512 bytes, larger ones come over TCP), DNSSEC (the AD bit is not
//! looked at: run a validating resolver and trust the path to it, as with glibc), caching,
//! DNAME, CNAME targets that the server did not resolve in the same answer (recursive
//! resolvers always do), and resolv.conf options other than `ndots`, `timeout` and
//! `attempts`.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

/// The DNS port (UDP and TCP).
pub const DNS_PORT: u16 = 53;
/// Most nameservers taken from resolv.conf; later lines are ignored (glibc's `MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;
/// Most search domains taken from a `search` line; the rest are ignored (glibc's limit
/// before 2.26). Every domain costs up to two queries per failed lookup.
pub const MAX_SEARCH_DOMAINS: usize = 6;
/// `ndots` when resolv.conf sets none.
pub const DEFAULT_NDOTS: u8 = 1;
/// Largest `ndots` (larger values are clamped, as glibc does).
pub const MAX_NDOTS: u8 = 15;
/// How long to wait for one answer when resolv.conf sets no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `timeout`, in seconds (larger values are clamped, as glibc does).
pub const MAX_TIMEOUT_SECS: u64 = 30;
/// Rounds over the nameservers when resolv.conf sets no `attempts`.
pub const DEFAULT_ATTEMPTS: u8 = 2;
/// Largest `attempts` (larger values are clamped, as glibc does).
pub const MAX_ATTEMPTS: u8 = 5;
/// Largest DNS message over UDP without EDNS0 (RFC 1035 §4.2.1).
pub const MAX_UDP_MESSAGE: usize = 512;
/// Most CNAME records followed from the question name to the addresses.
pub const MAX_CNAME_CHAIN: usize = 8;
/// Most compression pointers followed while reading one name.
pub const MAX_POINTER_JUMPS: usize = 128;
/// Most answer records of interest (IN class A, AAAA or CNAME) in one response; a response
/// with more is refused rather than truncated.
pub const MAX_ANSWER_RECORDS: usize = 256;

const HEADER_LEN: usize = 12;
/// Longest name in wire form, length bytes and the final zero included (RFC 1035 §3.1).
const MAX_NAME_WIRE: usize = 255;
/// Longest name in text form, without a trailing dot.
const MAX_NAME_TEXT: usize = 253;

const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Resolver settings: what `/etc/resolv.conf` says, with glibc's defaults for the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// Where to send queries, in order. [`ResolvConf::parse`] only ever gives port 53;
    /// other ports can only be set in code (tests, local proxies).
    pub nameservers: Vec<SocketAddr>,
    /// Domains appended to a name by [`ResolvConf::search_names`], lower-cased, without a
    /// trailing dot.
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as they are before the search list.
    pub ndots: u8,
    /// How long to wait for the answer to one query from one nameserver.
    pub timeout: Duration,
    /// Rounds over the nameservers for one question (at least 1).
    pub attempts: u8,
}

impl Default for ResolvConf {
    /// No nameserver, no search domain, `ndots:1 timeout:5 attempts:2`.
    fn default() -> Self {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: DEFAULT_NDOTS,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

impl ResolvConf {
    /// Parses resolv.conf text. Never fails: what cannot be used is skipped, as the C
    /// library does.
    ///
    /// - `nameserver ADDR`: an IPv4 or IPv6 address (no port, no `%zone`), port 53; the
    ///   first [`MAX_NAMESERVERS`] are kept. No nameserver line means no nameserver: unlike
    ///   glibc and musl there is no implicit `127.0.0.1`, so a guest without DNS
    ///   configuration fails with a clear error instead of querying a loopback resolver that
    ///   is not there.
    /// - `search D...` and `domain D`: the last such line wins; invalid domains are
    ///   dropped, at most [`MAX_SEARCH_DOMAINS`] kept. Without either line the search list is
    ///   empty (glibc would fall back to the domain of the host name; not done here).
    /// - `options`: `ndots:N` (≤ 15), `timeout:N` (seconds, 1..=30), `attempts:N` (1..=5);
    ///   values out of range are clamped, non-numeric ones ignored, other options
    ///   (`rotate`, `edns0`, `use-vc`, `single-request`, ...) ignored.
    /// - `#` or `;` starts a comment (anywhere on the line, where glibc only takes them at
    ///   its start); keywords are case-sensitive, blanks before them are allowed, unknown
    ///   keywords (`sortlist`, ...) are ignored.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut fields = line.split([' ', '\t', '\r']).filter(|f| !f.is_empty());
            let Some(keyword) = fields.next() else {
                continue;
            };
            match keyword {
                "nameserver" => {
                    let ip = fields.next().and_then(|f| f.parse::<IpAddr>().ok());
                    if let Some(ip) = ip
                        && conf.nameservers.len() < MAX_NAMESERVERS
                    {
                        conf.nameservers.push(SocketAddr::new(ip, DNS_PORT));
                    }
                }
                // An empty `domain` or `search` line changes nothing, as in glibc.
                "domain" => {
                    if let Some(domain) = fields.next() {
                        conf.search = search_domain(domain).into_iter().collect();
                    }
                }
                "search" => {
                    let mut domains = fields.peekable();
                    if domains.peek().is_some() {
                        conf.search = domains
                            .filter_map(search_domain)
                            .take(MAX_SEARCH_DOMAINS)
                            .collect();
                    }
                }
                "options" => {
                    for option in fields {
                        conf.apply_option(option);
                    }
                }
                _ => {}
            }
        }
        conf
    }

    fn apply_option(&mut self, option: &str) {
        let Some((name, value)) = option.split_once(':') else {
            return;
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        // Only digits: the parse fails only on overflow, which the clamps below absorb.
        let n = value.parse::<u64>().unwrap_or(u64::MAX);
        match name {
            "ndots" => self.ndots = n.min(u64::from(MAX_NDOTS)) as u8,
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS)),
            "attempts" => self.attempts = n.clamp(1, u64::from(MAX_ATTEMPTS)) as u8,
            _ => {}
        }
    }

    /// The names to ask the nameservers for `name`, in order (glibc's `res_search`):
    /// a name ending with a dot is absolute and asked as is, alone. Otherwise a name with at
    /// least `ndots` dots is asked as is first, then with each search domain appended;
    /// a name with fewer dots gets the search domains first and is asked as is last.
    /// Candidates longer than 253 bytes are left out, duplicates too. Empty when `name` is
    /// not a valid DNS name. The names are lower-cased, without a trailing dot.
    pub fn search_names(&self, name: &str) -> Vec<String> {
        let (name, absolute) = match name.strip_suffix('.') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if check_name(name).is_err() {
            return Vec::new();
        }
        let name = name.to_ascii_lowercase();
        if absolute {
            return vec![name];
        }
        let dots = name.bytes().filter(|&b| b == b'.').count();
        let as_is_first = dots >= usize::from(self.ndots);
        let mut names = Vec::new();
        if as_is_first {
            names.push(name.clone());
        }
        for domain in &self.search {
            let mut full = String::with_capacity(name.len() + 1 + domain.len());
            full.push_str(&name);
            full.push('.');
            full.push_str(domain);
            if check_name(&full).is_ok() && !names.contains(&full) {
                names.push(full);
            }
        }
        if !names.contains(&name) {
            names.push(name);
        }
        names
    }
}

/// A search domain from resolv.conf: valid, lower-cased, without its trailing dot.
fn search_domain(domain: &str) -> Option<String> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    check_name(domain).ok()?;
    Some(domain.to_ascii_lowercase())
}

/// Why a name cannot be put in a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (or only the root `.`).
    Empty,
    /// Longer than 253 bytes.
    TooLong,
    /// A label is empty (`a..b`, a leading dot).
    EmptyLabel,
    /// A label is longer than 63 bytes.
    LabelTooLong,
    /// A byte other than an ASCII letter, digit, `-` or `_`.
    InvalidCharacter,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "empty DNS name",
            NameError::TooLong => "DNS name longer than 253 bytes",
            NameError::EmptyLabel => "empty label in DNS name",
            NameError::LabelTooLong => "DNS label longer than 63 bytes",
            NameError::InvalidCharacter => {
                "DNS names may only contain letters, digits, '-', '_' and dots"
            }
        })
    }
}

impl core::error::Error for NameError {}

/// Checks a name without trailing dot: labels of 1..=63 letters, digits, `-` or `_`, at most
/// 253 bytes in all.
fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_TEXT {
        return Err(NameError::TooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong);
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::InvalidCharacter);
        }
    }
    Ok(())
}

/// The record type asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// IPv4 address (type 1).
    A,
    /// IPv6 address (type 28).
    Aaaa,
}

impl RecordType {
    /// The QTYPE / TYPE value.
    pub const fn code(self) -> u16 {
        match self {
            RecordType::A => TYPE_A,
            RecordType::Aaaa => TYPE_AAAA,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        })
    }
}

/// A response code (the RCODE header field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rcode(pub u8);

impl Rcode {
    /// No error.
    pub const NOERROR: Rcode = Rcode(0);
    /// The server could not interpret the query.
    pub const FORMERR: Rcode = Rcode(1);
    /// The server failed (typically: it could not reach the authoritative servers).
    pub const SERVFAIL: Rcode = Rcode(2);
    /// The name does not exist.
    pub const NXDOMAIN: Rcode = Rcode(3);
    /// The server does not support this kind of query.
    pub const NOTIMP: Rcode = Rcode(4);
    /// The server refuses to answer (policy).
    pub const REFUSED: Rcode = Rcode(5);
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("NOERROR"),
            1 => f.write_str("FORMERR"),
            2 => f.write_str("SERVFAIL"),
            3 => f.write_str("NXDOMAIN"),
            4 => f.write_str("NOTIMP"),
            5 => f.write_str("REFUSED"),
            n => write!(f, "RCODE {n}"),
        }
    }
}

/// An answer accepted for a [`Query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// NOERROR: the addresses of the requested type for the question name, after following
    /// CNAMEs, in answer order without duplicates. Empty means the name exists but has no
    /// such record (NODATA).
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// The TC bit is set: the answer did not fit; ask again over TCP. Nothing after the
    /// question was read.
    Truncated,
    /// Any other response code (SERVFAIL, REFUSED, FORMERR, NOTIMP, ...): this server
    /// cannot answer; ask the next one.
    ServerFailure(Rcode),
}

/// Why a message was not accepted as the answer to a [`Query`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// Shorter than the 12-byte header.
    TooShort,
    /// The QR bit is clear: a query, not a response.
    NotResponse,
    /// The ID is not the query's.
    IdMismatch,
    /// The opcode is not QUERY (0).
    BadOpcode,
    /// Not exactly one question, or not the question asked (name compared
    /// case-insensitively, type, class), or a question that cannot be read.
    QuestionMismatch,
    /// The message ends inside a record.
    Truncated,
    /// A label with a reserved type (0x40, 0x80) or a name longer than 255 bytes.
    BadName,
    /// A compression pointer outside the message, into the header, or one jump too many
    /// (a loop).
    BadPointer,
    /// An A record whose data is not 4 bytes, an AAAA record not 16, or CNAME data that
    /// is not exactly one name.
    BadRecord,
    /// More than [`MAX_CNAME_CHAIN`] CNAMEs from the question name (or a CNAME loop).
    CnameChain,
    /// More than [`MAX_ANSWER_RECORDS`] A, AAAA or CNAME records.
    TooManyRecords,
}

impl ResponseError {
    /// Whether the message may simply not be meant for this query (a late answer to an
    /// earlier one, a spoofing attempt): then keep waiting for the real answer. Otherwise the
    /// ID and the question matched, so the server answered, with a malformed message.
    pub fn is_unrelated(&self) -> bool {
        matches!(
            self,
            ResponseError::TooShort
                | ResponseError::NotResponse
                | ResponseError::IdMismatch
                | ResponseError::BadOpcode
                | ResponseError::QuestionMismatch
        )
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::TooShort => "message shorter than a DNS header",
            ResponseError::NotResponse => "not a DNS response",
            ResponseError::IdMismatch => "response ID does not match the query",
            ResponseError::BadOpcode => "response opcode is not QUERY",
            ResponseError::QuestionMismatch => "response question does not match the query",
            ResponseError::Truncated => "response ends inside a record",
            ResponseError::BadName => "invalid name in response",
            ResponseError::BadPointer => "invalid compression pointer in response",
            ResponseError::BadRecord => "record data of the wrong length in response",
            ResponseError::CnameChain => "CNAME chain too long or looping",
            ResponseError::TooManyRecords => "too many answer records",
        })
    }
}

impl core::error::Error for ResponseError {}

/// One question: a name and a record type, with the message ID that identifies its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    id: u16,
    qtype: RecordType,
    /// The name in wire form, lower-cased.
    name: Vec<u8>,
}

impl Query {
    /// A query for `name` (a trailing dot is allowed) of type `qtype`. `id` must be
    /// unpredictable (random) and fresh for every query sent: with the random source port
    /// it is what keeps off-path attackers from forging answers.
    pub fn new(id: u16, name: &str, qtype: RecordType) -> Result<Query, NameError> {
        let name = name.strip_suffix('.').unwrap_or(name);
        check_name(name)?;
        let mut wire = Vec::with_capacity(name.len() + 2);
        for label in name.split('.') {
            wire.push(label.len() as u8); // at most 63 (checked)
            wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
        wire.push(0);
        Ok(Query {
            id,
            qtype,
            name: wire,
        })
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The record type asked for.
    pub fn record_type(&self) -> RecordType {
        self.qtype
    }

    /// The message to send over UDP (over TCP, put its length in front as two bytes, big
    /// endian): header with RD set, one question of class IN, nothing else (no EDNS0).
    pub fn encode(&self) -> Vec<u8> {
        let mut msg = Vec::with_capacity(HEADER_LEN + self.name.len() + 4);
        msg.extend_from_slice(&self.id.to_be_bytes());
        msg.extend_from_slice(&FLAG_RD.to_be_bytes());
        msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1, AN=NS=AR=0
        msg.extend_from_slice(&self.name);
        msg.extend_from_slice(&self.qtype.code().to_be_bytes());
        msg.extend_from_slice(&CLASS_IN.to_be_bytes());
        msg
    }

    /// Checks that `msg` answers this query and extracts what it says. Never panics, on any
    /// input.
    ///
    /// Checks, in order: header length, QR set, ID, opcode QUERY, then exactly one question
    /// equal to ours (name case-insensitive). A FORMERR, SERVFAIL, NOTIMP or REFUSED
    /// response may come without the question (some servers drop it) and is accepted then.
    /// Then TC gives [`Reply::Truncated`], NXDOMAIN [`Reply::NxDomain`], another non-zero
    /// RCODE [`Reply::ServerFailure`]; for NOERROR the answer section is read (see the
    /// module documentation) and must be well-formed in full.
    pub fn parse_response(&self, msg: &[u8]) -> Result<Reply, ResponseError> {
        let header = msg.get(..HEADER_LEN).ok_or(ResponseError::TooShort)?;
        let id = be16(header, 0);
        let flags = be16(header, 2);
        let qdcount = be16(header, 4);
        let ancount = be16(header, 6);
        if flags & FLAG_QR == 0 {
            return Err(ResponseError::NotResponse);
        }
        if id != self.id {
            return Err(ResponseError::IdMismatch);
        }
        if (flags >> 11) & 0xf != 0 {
            return Err(ResponseError::BadOpcode);
        }
        let rcode = Rcode((flags & 0xf) as u8);
        let negative = rcode == Rcode::NOERROR || rcode == Rcode::NXDOMAIN;
        if qdcount == 0 && !negative {
            return Ok(Reply::ServerFailure(rcode));
        }
        if qdcount != 1 {
            return Err(ResponseError::QuestionMismatch);
        }
        let (qname, mut pos) =
            read_name(msg, HEADER_LEN).map_err(|_| ResponseError::QuestionMismatch)?;
        let question = msg
            .get(pos..pos + 4)
            .ok_or(ResponseError::QuestionMismatch)?;
        if qname.as_bytes() != self.name.as_slice()
            || be16(question, 0) != self.qtype.code()
            || be16(question, 2) != CLASS_IN
        {
            return Err(ResponseError::QuestionMismatch);
        }
        pos += 4;
        if flags & FLAG_TC != 0 {
            return Ok(Reply::Truncated);
        }
        match rcode {
            Rcode::NOERROR => {}
            Rcode::NXDOMAIN => return Ok(Reply::NxDomain),
            other => return Ok(Reply::ServerFailure(other)),
        }

        // The answer section: keep where the records of interest are, check all of them.
        let mut records: Vec<Record> = Vec::new();
        for _ in 0..ancount {
            let owner = pos;
            pos = read_name(msg, pos)?.1;
            let fixed = msg.get(pos..pos + 10).ok_or(ResponseError::Truncated)?;
            let rtype = be16(fixed, 0);
            let rclass = be16(fixed, 2);
            let rdlength = usize::from(be16(fixed, 8));
            let rdata = pos + 10;
            let end = rdata + rdlength;
            if end > msg.len() {
                return Err(ResponseError::Truncated);
            }
            pos = end;
            if rclass != CLASS_IN {
                continue;
            }
            let wanted_len = match rtype {
                TYPE_A => 4,
                TYPE_AAAA => 16,
                TYPE_CNAME => {
                    if read_name(msg, rdata)?.1 != end {
                        return Err(ResponseError::BadRecord);
                    }
                    rdlength
                }
                _ => continue,
            };
            if rdlength != wanted_len {
                return Err(ResponseError::BadRecord);
            }
            if records.len() == MAX_ANSWER_RECORDS {
                return Err(ResponseError::TooManyRecords);
            }
            records.push(Record {
                owner,
                rtype,
                rdata,
            });
        }

        // Follow the CNAMEs from the question name.
        let mut target = qname;
        for hop in 0..=MAX_CNAME_CHAIN {
            let mut next = None;
            for r in records.iter().filter(|r| r.rtype == TYPE_CNAME) {
                if read_name(msg, r.owner)?.0 == target {
                    next = Some(r.rdata);
                    break;
                }
            }
            match next {
                Some(_) if hop == MAX_CNAME_CHAIN => return Err(ResponseError::CnameChain),
                Some(rdata) => target = read_name(msg, rdata)?.0,
                None => break,
            }
        }

        let mut addrs: Vec<IpAddr> = Vec::new();
        for r in records.iter().filter(|r| r.rtype == self.qtype.code()) {
            if read_name(msg, r.owner)?.0 != target {
                continue;
            }
            let addr = match self.qtype {
                RecordType::A => msg
                    .get(r.rdata..r.rdata + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                RecordType::Aaaa => msg
                    .get(r.rdata..r.rdata + 16)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            }
            .ok_or(ResponseError::BadRecord)?;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Ok(Reply::Addresses(addrs))
    }
}

/// An answer record of interest: where its owner name and its data start.
struct Record {
    owner: usize,
    rtype: u16,
    rdata: usize,
}

/// A name read from a message: wire form, lower-cased, at most 255 bytes.
#[derive(Clone, Copy)]
struct Name {
    len: usize,
    bytes: [u8; MAX_NAME_WIRE],
}

impl Name {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Reads the (possibly compressed) name at `start`. Returns it and the offset just after
/// its in-place part (after the first pointer, or after the final zero).
fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), ResponseError> {
    let mut name = Name {
        len: 0,
        bytes: [0; MAX_NAME_WIRE],
    };
    let mut pos = start;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = usize::from(*msg.get(pos).ok_or(ResponseError::Truncated)?);
        match len & 0xc0 {
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(ResponseError::Truncated)?;
                let out = name
                    .bytes
                    .get_mut(name.len..name.len + 1 + len)
                    .ok_or(ResponseError::BadName)?;
                out[0] = len as u8;
                for (o, b) in out[1..].iter_mut().zip(label) {
                    *o = b.to_ascii_lowercase();
                }
                name.len += 1 + len;
                if len == 0 {
                    return Ok((name, end.unwrap_or(pos + 1)));
                }
                pos += 1 + len;
            }
            0xc0 => {
                let low = usize::from(*msg.get(pos + 1).ok_or(ResponseError::Truncated)?);
                let target = ((len & 0x3f) << 8) | low;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS || target < HEADER_LEN || target >= msg.len() {
                    return Err(ResponseError::BadPointer);
                }
                pos = target;
            }
            _ => return Err(ResponseError::BadName),
        }
    }
}

/// The big-endian `u16` at `at`; `b` must hold it (callers slice exact lengths first).
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
