//! rtnetlink (`NETLINK_ROUTE`) by hand: the few messages the init stage needs to bring
//! interfaces up, add an IPv4 address and a default route, encoded and decoded with
//! explicit byte layouts and bounds checks.
//!
//! Layouts (`include/uapi/linux/netlink.h`, `rtnetlink.h`, `if_link.h`, `if_addr.h`), all
//! in host byte order (little-endian here) except IPv4 addresses (network order):
//!
//! ```text
//! nlmsghdr  (16) len u32 | type u16 | flags u16 | seq u32 | pid u32
//! ifinfomsg (16) family u8 | pad u8 | type u16 | index i32 | flags u32 | change u32
//! ifaddrmsg  (8) family u8 | prefixlen u8 | flags u8 | scope u8 | index u32
//! rtmsg     (12) family | dst_len | src_len | tos | table | protocol | scope | type (u8 each) | flags u32
//! rtattr     (4) len u16 | type u16, then the value; every attribute and message is
//!                padded to a multiple of 4 bytes
//! nlmsgerr   error i32 (0 = ACK, else -errno) | the request's nlmsghdr | ...
//! ```

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use sealgate_core::config::Ipv4Cidr;

/// `NLMSG_ERROR`: an error or, with error 0, an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a multipart answer.
pub const NLMSG_DONE: u16 = 3;
/// `RTM_NEWLINK`: change a link (also the answer to `RTM_GETLINK`).
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_GETLINK`: look a link up.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_NEWADDR`: add an address.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_NEWROUTE`: add a route.
pub const RTM_NEWROUTE: u16 = 24;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`: answer with an `NLMSG_ERROR` carrying 0 on success.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_REPLACE`: replace an existing object (makes the change idempotent).
pub const NLM_F_REPLACE: u16 = 0x100;
/// `NLM_F_CREATE`: create the object if it does not exist.
pub const NLM_F_CREATE: u16 = 0x400;

/// `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// `IFLA_IFNAME`: the interface name attribute (NUL-terminated).
pub const IFLA_IFNAME: u16 = 3;
/// `IFA_ADDRESS`.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`.
pub const IFA_LOCAL: u16 = 2;
/// `IFA_BROADCAST`.
pub const IFA_BROADCAST: u16 = 4;
/// `RTA_OIF`: output interface index.
pub const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
pub const RTA_GATEWAY: u16 = 5;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
/// `RTPROT_BOOT`: what `ip route add` marks its routes with.
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const NLMSG_HDRLEN: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink message: header, fixed payload, attributes.
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    /// Starts a message of type `ty` with `flags` and sequence number `seq` (port id 0:
    /// the kernel fills in ours).
    pub fn new(ty: u16, flags: u16, seq: u32) -> Builder {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Builder { buf }
    }

    /// Appends the fixed-size family header (its size is a multiple of 4).
    pub fn payload(mut self, bytes: &[u8]) -> Builder {
        debug_assert_eq!(bytes.len() % 4, 0);
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends one attribute, padded to 4 bytes.
    pub fn attr(mut self, ty: u16, value: &[u8]) -> Builder {
        let len = 4 + value.len();
        let len16 = u16::try_from(len).expect("attribute larger than 64 KiB");
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// The finished message with its length filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = AF_UNSPEC;
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// `RTM_GETLINK` for the interface called `name` (answered by `RTM_NEWLINK` or `ENODEV`).
pub fn get_link(seq: u32, name: &str) -> Vec<u8> {
    let mut ifname = name.as_bytes().to_vec();
    ifname.push(0);
    Builder::new(RTM_GETLINK, NLM_F_REQUEST, seq)
        .payload(&ifinfomsg(0, 0, 0))
        .attr(IFLA_IFNAME, &ifname)
        .finish()
}

/// `RTM_NEWLINK` setting `IFF_UP` on interface `index` (like `ip link set DEV up`).
pub fn link_up(seq: u32, index: u32) -> Vec<u8> {
    Builder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .payload(&ifinfomsg(index as i32, IFF_UP, IFF_UP))
        .finish()
}

/// `RTM_NEWADDR` adding (or replacing) `cidr` with its broadcast address on interface
/// `index` (like `ip addr replace A/N brd + dev DEV`).
pub fn new_addr(seq: u32, index: u32, cidr: Ipv4Cidr) -> Vec<u8> {
    let mut m = [0u8; 8];
    m[0] = AF_INET;
    m[1] = cidr.prefix;
    m[3] = RT_SCOPE_UNIVERSE;
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    let mut b = Builder::new(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
    )
    .payload(&m)
    .attr(IFA_LOCAL, &cidr.addr.octets())
    .attr(IFA_ADDRESS, &cidr.addr.octets());
    if cidr.prefix < 31 {
        b = b.attr(IFA_BROADCAST, &cidr.broadcast().octets());
    }
    b.finish()
}

/// `RTM_NEWROUTE` for the IPv4 default route through `gateway` on interface `index` in
/// the main table (like `ip route replace default via GW dev DEV`).
pub fn new_default_route(seq: u32, gateway: Ipv4Addr, index: u32) -> Vec<u8> {
    let rtmsg = [
        AF_INET,
        0, // dst_len: default route
        0, // src_len
        0, // tos
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0, // flags
    ];
    Builder::new(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
    )
    .payload(&rtmsg)
    .attr(RTA_GATEWAY, &gateway.octets())
    .attr(RTA_OIF, &index.to_ne_bytes())
    .finish()
}

/// A malformed message from the kernel.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed netlink message: {}", self.0)
    }
}

/// One message of a received datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The bytes after the header, without padding.
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a datagram into messages. Every length is checked against the buffer.
pub fn messages(mut buf: &[u8]) -> Result<Vec<Message<'_>>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = u32_at(buf, 0).ok_or(DecodeError("truncated header"))? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(DecodeError("message length out of bounds"));
        }
        out.push(Message {
            ty: u16_at(buf, 4).ok_or(DecodeError("truncated header"))?,
            flags: u16_at(buf, 6).ok_or(DecodeError("truncated header"))?,
            seq: u32_at(buf, 8).ok_or(DecodeError("truncated header"))?,
            payload: &buf[NLMSG_HDRLEN..len],
        });
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(out)
}

/// The attributes in `buf` as `(type, value)`, bounds-checked. The nested and
/// byte-order flags of the type are masked off.
pub fn attrs(mut buf: &[u8]) -> Result<Vec<(u16, &[u8])>, DecodeError> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16_at(buf, 0).ok_or(DecodeError("truncated attribute"))? as usize;
        let ty = u16_at(buf, 2).ok_or(DecodeError("truncated attribute"))? & 0x3fff;
        if len < 4 || len > buf.len() {
            return Err(DecodeError("attribute length out of bounds"));
        }
        out.push((ty, &buf[4..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(out)
}

/// The error code of an `NLMSG_ERROR` payload: 0 for an ACK, else a positive errno.
pub fn error_code(payload: &[u8]) -> Result<i32, DecodeError> {
    let raw = u32_at(payload, 0).ok_or(DecodeError("truncated nlmsgerr"))? as i32;
    raw.checked_neg()
        .filter(|e| *e >= 0)
        .ok_or(DecodeError("positive error in nlmsgerr"))
}

/// What an `RTM_NEWLINK` answer says about an interface.
#[derive(Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// `IFLA_IFNAME`, if present.
    pub name: Option<String>,
}

/// Decodes an `RTM_NEWLINK` payload (ifinfomsg + attributes).
pub fn parse_link(payload: &[u8]) -> Result<Link, DecodeError> {
    if payload.len() < 16 {
        return Err(DecodeError("truncated ifinfomsg"));
    }
    let index = u32_at(payload, 4).ok_or(DecodeError("truncated ifinfomsg"))?;
    let flags = u32_at(payload, 8).ok_or(DecodeError("truncated ifinfomsg"))?;
    let name = attrs(&payload[16..])?
        .into_iter()
        .find(|(ty, _)| *ty == IFLA_IFNAME)
        .map(|(_, v)| {
            let v = v.split(|b| *b == 0).next().unwrap_or(v);
            String::from_utf8_lossy(v).into_owned()
        });
    Ok(Link { index, flags, name })
}

/// A failed netlink exchange.
#[derive(Debug)]
pub enum NetlinkError {
    /// The kernel refused the request (or the socket call failed).
    Os(Errno),
    /// The kernel's answer did not parse.
    Decode(DecodeError),
    /// No answer in time.
    Timeout,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Os(e) => write!(f, "{}", crate::os(e)),
            NetlinkError::Decode(e) => write!(f, "{e}"),
            NetlinkError::Timeout => f.write_str("no answer from the kernel"),
        }
    }
}

impl core::error::Error for DecodeError {}

impl core::error::Error for NetlinkError {}

impl From<Errno> for NetlinkError {
    fn from(e: Errno) -> Self {
        NetlinkError::Os(e)
    }
}

impl From<DecodeError> for NetlinkError {
    fn from(e: DecodeError) -> Self {
        NetlinkError::Decode(e)
    }
}

/// A `NETLINK_ROUTE` socket with request/answer matching by sequence number.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// Opens and binds a route netlink socket (close-on-exec, 2 s answer timeout).
    pub fn open() -> Result<Socket, NetlinkError> {
        let fd = net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )?;
        net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        net::sockopt::set_socket_timeout(
            &fd,
            net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(2)),
        )?;
        Ok(Socket { fd, seq: 1 })
    }

    /// Sends the message `build(seq)` and waits for its answer: `Ok(Some(link))` for an
    /// `RTM_NEWLINK`, `Ok(None)` for an ACK, the errno for an error.
    fn transact(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<Option<Link>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = build(seq);
        net::sendto(
            &self.fd,
            &msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut buf = vec![0u8; 32 * 1024];
        let mut link = None;
        loop {
            let (n, _) = match net::recv(&self.fd, &mut buf[..], RecvFlags::empty()) {
                Ok(r) => r,
                Err(Errno::AGAIN) => return Err(NetlinkError::Timeout),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for m in messages(&buf[..n.min(buf.len())])? {
                if m.seq != seq {
                    continue; // a late answer to an earlier request
                }
                match m.ty {
                    NLMSG_ERROR => {
                        return match error_code(m.payload)? {
                            0 => Ok(link),
                            e => Err(NetlinkError::Os(Errno::from_raw_os_error(e))),
                        };
                    }
                    RTM_NEWLINK => {
                        link = Some(parse_link(m.payload)?);
                        if m.flags & 0x2 == 0 {
                            // Not multipart: a GETLINK answer without ACK is complete.
                            return Ok(link);
                        }
                    }
                    NLMSG_DONE => return Ok(link),
                    _ => {}
                }
            }
        }
    }

    /// Looks an interface up by name; `Ok(None)` if it does not exist.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        match self.transact(|seq| get_link(seq, name)) {
            Ok(Some(link)) => Ok(Some(link)),
            Ok(None) => Err(NetlinkError::Decode(DecodeError(
                "GETLINK answered without a link",
            ))),
            Err(NetlinkError::Os(Errno::NODEV)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets `IFF_UP` on interface `index`.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        self.transact(|seq| link_up(seq, index)).map(drop)
    }

    /// Adds (or replaces) an IPv4 address on interface `index`.
    pub fn add_address(&mut self, index: u32, cidr: Ipv4Cidr) -> Result<(), NetlinkError> {
        self.transact(|seq| new_addr(seq, index, cidr)).map(drop)
    }

    /// Adds (or replaces) the IPv4 default route through `gateway` on interface `index`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, index: u32) -> Result<(), NetlinkError> {
        self.transact(|seq| new_default_route(seq, gateway, index))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::format;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // The expected bytes are written out field by field from the UAPI layouts above
    // (x86_64, little-endian).

    #[rustfmt::skip]
    #[test]
    fn getlink_by_name_layout() {
        let m = get_link(7, "eth0");
        assert_eq!(hex(&m), [
            "2c000000", "1200", "0100", "07000000", "00000000", // nlmsghdr: 44 B, GETLINK, REQUEST, seq 7
            "00", "00", "0000", "00000000", "00000000", "00000000", // ifinfomsg: AF_UNSPEC, index 0
            "0900", "0300", "65746830", "00", "000000", // IFLA_IFNAME "eth0\0" (9 B) + pad
        ].concat());
    }

    #[rustfmt::skip]
    #[test]
    fn link_up_layout() {
        let m = link_up(2, 1);
        assert_eq!(hex(&m), [
            "20000000", "1000", "0500", "02000000", "00000000", // 32 B, NEWLINK, REQUEST|ACK, seq 2
            "00", "00", "0000", "01000000", "01000000", "01000000", // index 1, IFF_UP, change IFF_UP
        ].concat());
    }

    #[rustfmt::skip]
    #[test]
    fn new_address_layout() {
        let cidr = Ipv4Cidr::parse("10.0.2.15/24").unwrap();
        let m = new_addr(3, 2, cidr);
        assert_eq!(hex(&m), [
            "30000000", "1400", "0505", "03000000", "00000000", // 48 B, NEWADDR, REQUEST|ACK|REPLACE|CREATE
            "02", "18", "00", "00", "02000000", // AF_INET, /24, flags 0, scope universe, index 2
            "0800", "0200", "0a00020f", // IFA_LOCAL 10.0.2.15
            "0800", "0100", "0a00020f", // IFA_ADDRESS 10.0.2.15
            "0800", "0400", "0a0002ff", // IFA_BROADCAST 10.0.2.255
        ].concat());
        // Point-to-point prefixes get no broadcast address.
        let m = new_addr(3, 2, Ipv4Cidr::parse("10.0.2.15/32").unwrap());
        assert_eq!(m.len(), 40);
    }

    #[rustfmt::skip]
    #[test]
    fn default_route_layout() {
        let m = new_default_route(4, Ipv4Addr::new(10, 0, 2, 2), 2);
        assert_eq!(hex(&m), [
            "2c000000", "1800", "0505", "04000000", "00000000", // 44 B, NEWROUTE, REQUEST|ACK|REPLACE|CREATE
            "02", "00", "00", "00", "fe", "03", "00", "01", "00000000", // inet, /0, main, boot, universe, unicast
            "0800", "0500", "0a000202", // RTA_GATEWAY 10.0.2.2
            "0800", "0400", "02000000", // RTA_OIF 2
        ].concat());
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[rustfmt::skip]
    #[test]
    fn decodes_ack_error_and_link() {
        // An ACK (error 0) and an ENODEV (-19) for seq 9 in one datagram, each carrying
        // the 16-byte header of the request (the first with NLM_F_CAPPED).
        let d = unhex(&[
            "24000000", "0200", "0001", "09000000", "aa000000", "00000000",
            "20000000", "1200", "0100", "09000000", "00000000",
            "24000000", "0200", "0000", "09000000", "aa000000", "edffffff",
            "20000000", "1200", "0100", "09000000", "00000000",
        ].concat());
        let ms = messages(&d).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!((ms[0].ty, ms[0].seq, ms[0].flags), (NLMSG_ERROR, 9, 0x100));
        assert_eq!(error_code(ms[0].payload), Ok(0));
        assert_eq!(error_code(ms[1].payload), Ok(19));

        // An RTM_NEWLINK answer: index 2, UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP, then
        // IFLA_MTU (4) and IFLA_IFNAME "eth0".
        let d = unhex(&[
            "34000000", "1000", "0000", "05000000", "00000000",
            "00", "00", "0100", "02000000", "43100100", "00000000",
            "0800", "0400", "dc050000",
            "0900", "0300", "6574683000", "000000",
        ].concat());
        let ms = messages(&d).unwrap();
        assert_eq!(ms.len(), 1);
        let link = parse_link(ms[0].payload).unwrap();
        assert_eq!(link, Link { index: 2, flags: 0x11043, name: Some("eth0".into()) });
    }

    #[test]
    fn rejects_every_out_of_bounds_length() {
        let good = link_up(1, 1);
        for cut in 0..good.len() {
            let r = messages(&good[..cut]);
            assert!(cut == 0 || r.is_err(), "cut at {cut}: {r:?}");
        }
        let mut long = good.clone();
        long[0] = 0xff;
        assert!(messages(&long).is_err());
        let mut short = good.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(messages(&short).is_err());
        assert!(
            attrs(&[5, 0, 3, 0]).is_err(),
            "attribute longer than the buffer"
        );
        assert!(
            attrs(&[2, 0, 3, 0]).is_err(),
            "attribute shorter than its header"
        );
        assert!(parse_link(&[0; 15]).is_err());
        assert!(error_code(&[1, 0]).is_err());
        assert!(error_code(&1i32.to_ne_bytes()).is_err());
        // Every truncation of a well-formed message, with its length field adjusted to
        // match, decodes or fails: it never panics or reads out of bounds.
        let d = get_link(1, "a-very-long-nm");
        for cut in 16..d.len() {
            let mut t = d[..cut].to_vec();
            t[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            let ms = messages(&t).unwrap();
            assert_eq!(ms[0].payload.len(), cut - 16);
            let parsed = parse_link(ms[0].payload);
            // OK: the bare ifinfomsg plus fewer than 4 bytes (ignored, as the kernel's
            // nla_ok() does), or the whole IFLA_IFNAME (4 + 15 bytes) with or without pad.
            let whole = cut > 32 + 4 + "a-very-long-nm".len(); // name + NUL
            assert_eq!(
                parsed.is_ok(),
                (32..36).contains(&cut) || whole,
                "cut {cut}: {parsed:?}"
            );
            if let Ok(link) = parsed {
                assert_eq!(link.name.is_some(), whole);
            }
        }
    }

    /// The real kernel, read-only: `lo` exists in every network namespace, a
    /// made-up name does not (ENODEV), and needs no privilege to look up.
    #[test]
    fn looks_links_up_in_the_running_kernel() {
        let mut s = Socket::open().expect("netlink socket");
        let lo = s.link("lo").unwrap().expect("lo exists");
        assert_eq!(lo.name.as_deref(), Some("lo"));
        assert!(lo.index >= 1);
        assert!(s.link("sg-no-such0").unwrap().is_none());
        // Changing anything needs CAP_NET_ADMIN: unprivileged this is EPERM, never a hang.
        if !rustix::process::geteuid().is_root() {
            assert!(matches!(
                s.set_up(lo.index),
                Err(NetlinkError::Os(Errno::PERM))
            ));
        }
    }
}
