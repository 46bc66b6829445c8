//! DNS over UDP and TCP for [`super::HttpClient`]: sends the queries of the sans-IO
//! [`sealgate_core::dns`] core to the nameservers and hands it their answers.
//!
//! For each name of the search list ([`ResolvConf::search_names`]), an A query, then
//! (unless the name does not exist) an AAAA query; the first name with an address wins, its
//! IPv4 addresses first. Each query goes to the nameservers in turn, for `attempts` rounds,
//! waiting up to `timeout` for each: a NOERROR or NXDOMAIN answer settles the question;
//! SERVFAIL, REFUSED, a malformed answer or an ICMP error rules that server out for the
//! question; a silent server is asked again in the next round. When no nameserver answered
//! the A query of a name, the lookup stops there: asking for the other names of the search
//! list would only repeat the wait.
//!
//! Every transmission has its own socket, so its own source port (Linux picks a random
//! ephemeral port), and its own random ID from getrandom(2). The UDP socket is connected to
//! the nameserver, so the kernel drops datagrams from any other address; datagrams that
//! still do not answer the query (wrong ID or question: late, or forged) are ignored and the
//! wait goes on until the timeout. An answer with the TC bit is asked again over TCP, to the
//! same server with a fresh timeout (two-byte length prefix, so at most 64 KiB).
//!
//! Queries are sent one after the other (A, then AAAA), never in parallel: a server that
//! drops AAAA queries costs the wait for them even when the A query was answered.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use embedded_io::{Read, ReadExactError, Write};
use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use sealgate_core::dns::{Query, Rcode, RecordType, Reply, ResolvConf, ResponseError};

use super::{Limit, SocketError, TcpConnection, wait};
use crate::os_rng;
use crate::time::Instant;

/// Receive buffer for one UDP answer: well above the 512 bytes a server may send without
/// EDNS0. A larger datagram does not conform and is ignored.
const UDP_BUFFER: usize = 4096;

/// Why one nameserver gave no usable answer to one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// An error response code (SERVFAIL, REFUSED, FORMERR, NOTIMP, ...).
    Rcode(Rcode),
    /// No answer within the timeout.
    Timeout,
    /// A system call failed; an ICMP port unreachable shows as `ECONNREFUSED`.
    Io(Errno),
    /// The answer carried our ID and question but was malformed.
    BadAnswer(ResponseError),
    /// The TCP answer was truncated too.
    TruncatedOverTcp,
    /// The server closed the TCP connection before the whole answer.
    Closed,
    /// The run's deadline passed while waiting.
    Deadline,
}

impl Failure {
    fn describe(self, server: SocketAddr) -> String {
        let s = show(server);
        match self {
            Failure::Rcode(rcode) => format!("{rcode} from {s}"),
            Failure::Timeout => format!("timed out asking {s}"),
            Failure::Io(e) => format!("error asking {s}: {}", crate::os(e)),
            Failure::BadAnswer(e) => format!("bad answer from {s}: {e}"),
            Failure::TruncatedOverTcp => format!("truncated answer over TCP from {s}"),
            Failure::Closed => format!("{s} closed the TCP connection before answering"),
            Failure::Deadline => format!("asking {s}"),
        }
    }
}

impl From<SocketError> for Failure {
    fn from(e: SocketError) -> Failure {
        match e {
            SocketError::Timeout(_) => Failure::Timeout,
            SocketError::Deadline => Failure::Deadline,
            SocketError::Os(e) => Failure::Io(e),
        }
    }
}

/// A nameserver as shown in messages: the address alone for port 53.
fn show(server: SocketAddr) -> String {
    if server.port() == sealgate_core::dns::DNS_PORT {
        server.ip().to_string()
    } else {
        server.to_string()
    }
}

/// What the nameservers said about one question.
enum Outcome {
    /// NOERROR: the addresses (none: NODATA), and who said so.
    Answer(Vec<IpAddr>, SocketAddr),
    /// NXDOMAIN, and who said so.
    NxDomain(SocketAddr),
    /// No server answered: why, for each one asked.
    Failed(Vec<(SocketAddr, Failure)>),
    /// The run's deadline passed while asking this server.
    Deadline(SocketAddr),
}

/// Why a lookup gave no address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LookupError {
    /// What the nameservers said, for [`super::NetErrorKind::NotFound`].
    NotFound(String),
    /// The run's deadline passed; whom we were asking (`asking 10.0.2.3`), for
    /// [`super::NetErrorKind::Deadline`].
    Deadline(String),
}

/// Looks `name` up through the nameservers of `conf`. The error explains why there is no
/// address, for [`super::NetErrorKind::NotFound`]: `no address found (NXDOMAIN from 10.0.2.3)`,
/// `timed out asking 10.0.2.3`, `no nameserver configured`.
#[cfg(test)]
pub(super) fn lookup(name: &str, conf: &ResolvConf) -> Result<Vec<IpAddr>, String> {
    lookup_until(name, conf, None).map_err(|e| match e {
        LookupError::NotFound(detail) | LookupError::Deadline(detail) => detail,
    })
}

/// [`lookup`], with every wait also bounded by `run_deadline`: when it passes, the lookup
/// stops with [`LookupError::Deadline`], whatever `timeout` and `attempts` say.
pub(super) fn lookup_until(
    name: &str,
    conf: &ResolvConf,
    run_deadline: Option<Instant>,
) -> Result<Vec<IpAddr>, LookupError> {
    if conf.nameservers.is_empty() {
        return Err(LookupError::NotFound("no nameserver configured".into()));
    }
    let names = conf.search_names(name);
    if names.is_empty() {
        return Err(LookupError::NotFound(format!(
            "no address found ({name:?} is not a valid DNS name)"
        )));
    }
    let mut explained: Vec<(&str, Vec<String>)> = Vec::new();
    // Whether any server said anything, as opposed to all of them staying silent.
    let mut heard = false;
    for candidate in &names {
        let mut found: Vec<IpAddr> = Vec::new();
        let mut nodata: Vec<(RecordType, SocketAddr)> = Vec::new();
        let mut facts: Vec<String> = Vec::new();
        let mut give_up = false;
        for qtype in [RecordType::A, RecordType::Aaaa] {
            match query(conf, candidate, qtype, run_deadline) {
                Outcome::Deadline(server) => {
                    return Err(LookupError::Deadline(Failure::Deadline.describe(server)));
                }
                Outcome::Answer(addrs, server) => {
                    heard = true;
                    if addrs.is_empty() {
                        nodata.push((qtype, server));
                    }
                    for addr in addrs {
                        if !found.contains(&addr) {
                            found.push(addr);
                        }
                    }
                }
                Outcome::NxDomain(server) => {
                    heard = true;
                    facts.push(format!("NXDOMAIN from {}", show(server)));
                    break; // no such name, no AAAA either
                }
                Outcome::Failed(failures) => {
                    let silent = failures.iter().all(|&(_, f)| f == Failure::Timeout);
                    heard |= !silent;
                    for (server, f) in failures {
                        let fact = f.describe(server);
                        if !facts.contains(&fact) {
                            facts.push(fact);
                        }
                    }
                    if silent && qtype == RecordType::A {
                        give_up = true;
                        break;
                    }
                }
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        match nodata.as_slice() {
            [(_, a), (_, b)] if a == b => {
                facts.insert(0, format!("no A or AAAA record from {}", show(*a)));
            }
            _ => {
                for (i, &(qtype, server)) in nodata.iter().enumerate() {
                    facts.insert(i, format!("no {qtype} record from {}", show(server)));
                }
            }
        }
        explained.push((candidate, facts));
        if give_up {
            break;
        }
    }
    if !heard {
        let servers: Vec<String> = conf.nameservers.iter().map(|&s| show(s)).collect();
        return Err(LookupError::NotFound(format!(
            "timed out asking {}",
            servers.join(", ")
        )));
    }
    let detail = match explained.as_slice() {
        [(_, facts)] => facts.join(", "),
        _ => explained
            .iter()
            .map(|(name, facts)| format!("{name}: {}", facts.join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Err(LookupError::NotFound(format!(
        "no address found ({detail})"
    )))
}

/// Asks the nameservers about `name`, `attempts` rounds over those that have not failed.
fn query(
    conf: &ResolvConf,
    name: &str,
    qtype: RecordType,
    run_deadline: Option<Instant>,
) -> Outcome {
    let servers = &conf.nameservers;
    let mut failed: Vec<Option<Failure>> = vec![None; servers.len()];
    let settled = |f: &Option<Failure>| matches!(f, Some(f) if *f != Failure::Timeout);
    for _ in 0..conf.attempts.max(1) {
        for (i, &server) in servers.iter().enumerate() {
            if settled(&failed[i]) {
                continue;
            }
            match ask(server, name, qtype, conf.timeout, run_deadline) {
                Err(Failure::Deadline) => return Outcome::Deadline(server),
                Ok(Reply::Addresses(addrs)) => return Outcome::Answer(addrs, server),
                Ok(Reply::NxDomain) => return Outcome::NxDomain(server),
                Ok(Reply::ServerFailure(rcode)) => failed[i] = Some(Failure::Rcode(rcode)),
                Ok(Reply::Truncated) => failed[i] = Some(Failure::TruncatedOverTcp),
                Err(f) => failed[i] = Some(f),
            }
        }
        if failed.iter().all(settled) {
            break;
        }
    }
    Outcome::Failed(
        servers
            .iter()
            .zip(failed)
            .filter_map(|(&s, f)| Some((s, f?)))
            .collect(),
    )
}

fn random_id() -> u16 {
    let mut id = [0u8; 2];
    os_rng::fill(&mut id);
    u16::from_ne_bytes(id)
}

fn family(addr: SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

/// One query to one server over UDP (then TCP if the answer is truncated).
fn ask(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    timeout: Duration,
    run_deadline: Option<Instant>,
) -> Result<Reply, Failure> {
    if run_deadline.is_some_and(|end| Instant::now() >= end) {
        return Err(Failure::Deadline);
    }
    // The names come from `search_names`, which only gives valid ones.
    let query = Query::new(random_id(), name, qtype).map_err(|_| Failure::Io(Errno::INVAL))?;
    let limits = [Some(Limit::after(timeout)), run_deadline.map(Limit::run)];
    let fd = rustix::net::socket_with(
        family(server),
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(Failure::Io)?;
    rustix::net::connect(&fd, &server).map_err(Failure::Io)?;
    let msg = query.encode();
    loop {
        match rustix::net::send(&fd, &msg, SendFlags::empty()) {
            Ok(n) if n == msg.len() => break,
            Ok(_) => return Err(Failure::Io(Errno::MSGSIZE)),
            Err(Errno::AGAIN) => wait(&fd, PollFlags::OUT, &limits)?,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Failure::Io(e)),
        }
    }
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        // A stream of unrelated datagrams must not keep us past the timeout.
        for limit in limits.iter().flatten() {
            if Instant::now() >= limit.end {
                return Err(limit.error.into());
            }
        }
        match rustix::net::recv(&fd, &mut buf[..], RecvFlags::TRUNC) {
            Ok((_, full)) if full > UDP_BUFFER => {} // oversized: not a DNS answer
            Ok((n, _)) => match query.parse_response(&buf[..n]) {
                Ok(Reply::Truncated) => return ask_tcp(server, &query, timeout, run_deadline),
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_unrelated() => {}
                Err(e) => return Err(Failure::BadAnswer(e)),
            },
            Err(Errno::AGAIN) => wait(&fd, PollFlags::IN, &limits)?,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

/// The same query over TCP, within a fresh `timeout` for connecting and the whole exchange.
fn ask_tcp(
    server: SocketAddr,
    query: &Query,
    timeout: Duration,
    run_deadline: Option<Instant>,
) -> Result<Reply, Failure> {
    let deadline = Instant::now() + timeout;
    let mut conn = TcpConnection::connect_until(server, timeout, run_deadline)?;
    conn.set_deadline(Some((deadline, timeout)));
    let msg = query.encode();
    let mut framed = Vec::with_capacity(2 + msg.len());
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes()); // a query is < 300 bytes
    framed.extend_from_slice(&msg);
    conn.write_all(&framed)?;
    let mut len = [0u8; 2];
    read_exact(&mut conn, &mut len)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_exact(&mut conn, &mut answer)?;
    match query.parse_response(&answer) {
        Ok(Reply::Truncated) => Err(Failure::TruncatedOverTcp),
        Ok(reply) => Ok(reply),
        Err(e) => Err(Failure::BadAnswer(e)),
    }
}

/// Fills `buf` from the stream; never reads past it.
fn read_exact(conn: &mut TcpConnection, buf: &mut [u8]) -> Result<(), Failure> {
    conn.read_exact(buf).map_err(|e| match e {
        ReadExactError::UnexpectedEof => Failure::Closed,
        ReadExactError::Other(e) => e.into(),
    })
}

#[cfg(test)]
pub(super) mod tests;
