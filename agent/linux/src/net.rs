//! HTTP/1.1 over TCP: drives the sans-IO [`sealgate_core::http`] core over a Linux socket.
//!
//! [`HttpClient`] talks to one KBS URL. It keeps a single connection open across requests
//! (HTTP/1.1 keep-alive) and, when the server has closed an idle connection, reconnects and
//! resends, but only when not one byte of the response had arrived; once a response has
//! started, a failure is returned, never retried.
//!
//! Name resolution, in this order, without the C library's resolver (no NSS, no
//! `getaddrinfo`):
//! 1. an IP literal in the URL is used as is;
//! 2. the hosts file ([`ClientConfig::hosts_file`], `/etc/hosts`), parsed by
//!    [`sealgate_core::hosts`];
//! 3. DNS: our own stub resolver ([`sealgate_core::dns`] driven by the `resolver` module) asks
//!    the nameservers of [`ClientConfig::resolv_conf`] (`/etc/resolv.conf`) for A, then
//!    AAAA records, following the search list. Its waits are bounded by resolv.conf's
//!    `timeout` and `attempts` (and by the run's deadline), not by the timeouts below; a
//!    resolution failure is a [`Phase::Resolve`] error whose text says what the
//!    nameservers did.
//!
//! Both files are read with [`crate::fs::read_file`]: regular files only (a FIFO or a
//! device there is ignored, as a missing file), opened without blocking, at most 1 MiB.
//!
//! Every resolved address is tried in order, each with the connect timeout.
//!
//! The socket is a [`TcpConnection`]: non-blocking, and every wait is a `poll(2)` bounded
//! both by the per-wait timeout (connect, read, write) and by the deadline of the whole
//! exchange ([`ClientConfig::request_timeout`]), so a server trickling one byte at a time
//! cannot hold the agent forever. On top of that, [`ClientConfig::deadline`] (the end of the
//! whole run, `--deadline`) caps every wait of the client, DNS queries and connects
//! included: the earliest of the wait's own timeout, the exchange's and the run's ends
//! wins, and a wait the run's end cuts short is a [`NetErrorKind::Deadline`] error (not
//! transient). Once it has passed, [`HttpClient::send`] sends nothing. Platform calls go
//! through `rustix`; sends use
//! `MSG_NOSIGNAL` so a closed peer is an `EPIPE` error, never a SIGPIPE.
//!
//! [`TcpConnection`] implements embedded-io's blocking [`Read`] and [`Write`] (and
//! [`ReadReady`], for the keep-alive check), and the exchange itself is written against
//! those traits only, so for an `https://` URL a [`TlsStream`] over the [`TcpConnection`]
//! sits between the HTTP codec and the socket: the handshake happens right after the TCP
//! connect (its waits bounded like an exchange's: the read and write timeouts, the
//! exchange's time and the run's deadline), and everything above (keep-alive, the resend
//! on a connection the server closed, timeouts, the deadline) works the same. The server
//! name is the URL's host (an IP literal: no SNI, the certificate must name the address).
//! Reconnects resume the TLS session where the server allows it (the session cache lives
//! in the [`TlsClientConfig`]). A TLS failure on the socket keeps the socket's own error
//! (a timeout stays a timeout); the others are [`NetErrorKind::Tls`], transient or not as
//! [`TlsError::is_transient`] says (a rejected certificate never is).
//!
//! Errors name the peer and the phase, never request or response content.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use embedded_io::{ErrorKind, ErrorType, Read, ReadReady, Write};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use sealgate_core::dns::ResolvConf;
use sealgate_core::hosts::{Host, Url, lookup_hosts};
use sealgate_core::http::{HttpError, Limits, Progress, Request, Response, ResponseParser};
use sealgate_tls::{TlsClientConfig, TlsError, TlsStream, TlsTrust, UnixTime};
use zeroize::Zeroize;

use crate::time::Instant;

mod resolver;

/// Largest hosts or resolv.conf file read; anything bigger is ignored (as if absent).
const MAX_HOSTS_FILE_BYTES: usize = 1024 * 1024;
/// Receive buffer per `recv(2)`.
const READ_CHUNK: usize = 16 * 1024;

/// Timeouts, limits and files used by an [`HttpClient`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Longest wait for one TCP connection attempt (per resolved address). Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response. Default 30 s.
    pub read_timeout: Duration,
    /// Longest wait for the socket to accept more request bytes. Default 30 s.
    pub write_timeout: Duration,
    /// Longest time for one whole exchange: sending the request and receiving the full
    /// response. The first connect is not counted; a resend (reconnect included) is. Default
    /// 60 s, as the upstream KBS client.
    pub request_timeout: Duration,
    /// A kept-alive connection idle for longer than this is closed instead of reused.
    /// Default 4 s: Trustee (actix-web) drops idle connections after 5 s.
    pub max_idle: Duration,
    /// Response size limits.
    pub limits: Limits,
    /// The hosts file consulted before DNS. Default `/etc/hosts`.
    pub hosts_file: String,
    /// The resolver configuration: nameservers, search list, `ndots`, `timeout`,
    /// `attempts` (see [`ResolvConf::parse`]). Default `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// Resolver settings used instead of reading [`ClientConfig::resolv_conf`]. The file
    /// syntax has no port, so this is how tests point the client at a nameserver on a port
    /// other than 53. Default `None`.
    pub resolver: Option<ResolvConf>,
    /// The end of the whole run (`--deadline`), if any: no wait of this client (DNS query,
    /// connect, send, receive) goes past it, whatever its own timeout, and a wait that it
    /// cuts short fails with [`NetErrorKind::Deadline`]. Default `None`.
    pub deadline: Option<Instant>,
    /// TLS for an `https://` URL: the trust and the session cache ([`tls_config`]). An
    /// `https://` URL without it fails to connect. Default `None`.
    pub tls: Option<TlsClientConfig>,
}

/// The TLS configuration of an [`HttpClient`] trusting `trust`, with the platform's
/// randomness (getrandom(2)) and wall clock (`CLOCK_REALTIME`, for certificate validity).
pub fn tls_config(trust: &TlsTrust) -> Result<TlsClientConfig, TlsError> {
    TlsClientConfig::new(trust, tls_rng, tls_now)
}

fn tls_rng(buf: &mut [u8]) -> Result<(), ()> {
    crate::os_rng::fill(buf);
    Ok(())
}

fn tls_now() -> Option<UnixTime> {
    crate::time::unix_time().map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)))
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_idle: Duration::from_secs(4),
            limits: Limits::default(),
            hosts_file: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            resolver: None,
            deadline: None,
            tls: None,
        }
    }
}

/// What the client was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Looking up the host name.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake (`https://`).
    Handshake,
    /// Encoding or writing the request.
    Send,
    /// Reading and parsing the response.
    Receive,
}

/// Why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetErrorKind {
    /// The name resolved to no address. The text says why: `no address found (NXDOMAIN
    /// from 10.0.2.3)`, `timed out asking 10.0.2.3`, `no nameserver configured ...`.
    NotFound(String),
    /// A wait exceeded the timeout shown.
    Timeout(Duration),
    /// The run's deadline ([`ClientConfig::deadline`]) passed during this phase. The text
    /// names what was being waited for (for DNS: the nameservers asked), or is empty.
    Deadline(String),
    /// A system call failed.
    Io(Errno),
    /// The request could not be encoded or the response was not acceptable HTTP.
    Http(HttpError),
    /// TLS failed: the certificate, the protocol, the clock, the configuration, or the
    /// peer closing mid-handshake or without close_notify.
    Tls(TlsError),
}

impl From<SocketError> for NetErrorKind {
    fn from(e: SocketError) -> NetErrorKind {
        match e {
            SocketError::Timeout(d) => NetErrorKind::Timeout(d),
            SocketError::Deadline => NetErrorKind::Deadline(String::new()),
            SocketError::Os(errno) => NetErrorKind::Io(errno),
        }
    }
}

/// A transport failure: the peer, the phase and the cause. Contains no message content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetError {
    /// `ip:port` of the server (or `host:port` when no address was reached).
    pub peer: String,
    /// What was being done.
    pub phase: Phase,
    /// The cause.
    pub kind: NetErrorKind,
}

impl NetError {
    /// Whether a timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, NetErrorKind::Timeout(_))
    }

    /// Whether the run's deadline passed ([`ClientConfig::deadline`]).
    pub fn is_deadline(&self) -> bool {
        matches!(self.kind, NetErrorKind::Deadline(_))
    }

    /// What was being done when the deadline passed, for "deadline of N s passed while
    /// ...": `resolving kbs.example:8080 (asking 10.0.2.3)`, `connecting to 10.0.2.2:8080`,
    /// `sending to ...`, `waiting for ... to answer`.
    pub fn doing(&self) -> String {
        let peer = &self.peer;
        let mut text = match self.phase {
            Phase::Resolve => format!("resolving {peer}"),
            Phase::Connect => format!("connecting to {peer}"),
            Phase::Handshake => format!("negotiating TLS with {peer}"),
            Phase::Send => format!("sending to {peer}"),
            Phase::Receive => format!("waiting for {peer} to answer"),
        };
        if let NetErrorKind::Deadline(detail) = &self.kind
            && !detail.is_empty()
        {
            text.push_str(&format!(" ({detail})"));
        }
        text
    }

    /// Whether trying again later can help: everything the network or a restarting server
    /// causes (no address yet, refused, reset, timed out, truncated or malformed
    /// responses); not a response that exceeds our limits, a request that cannot be
    /// encoded, or a response the agent will never accept (a bad session cookie, an
    /// upgrade).
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            NetErrorKind::Http(h) => !matches!(
                h,
                HttpError::BodyTooLarge { .. }
                    | HttpError::HeadTooLarge { .. }
                    | HttpError::TrailersTooLarge { .. }
                    | HttpError::TooManyHeaders { .. }
                    | HttpError::InvalidRequest { .. }
                    | HttpError::InvalidCookie { .. }
                    | HttpError::UnexpectedUpgrade
            ),
            NetErrorKind::NotFound(_) | NetErrorKind::Timeout(_) | NetErrorKind::Io(_) => true,
            NetErrorKind::Tls(e) => e.is_transient(),
            // Retrying cannot help: there is no time left.
            NetErrorKind::Deadline(_) => false,
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect to",
            Phase::Handshake => "KBS",
            Phase::Send => "send to",
            Phase::Receive => "receive from",
        };
        write!(f, "{phase} {}: ", self.peer)?;
        match &self.kind {
            NetErrorKind::NotFound(detail) if detail.is_empty() => f.write_str("no address found"),
            NetErrorKind::NotFound(detail) => f.write_str(detail),
            NetErrorKind::Timeout(d) => write!(f, "timed out after {} ms", d.as_millis()),
            NetErrorKind::Deadline(detail) if detail.is_empty() => {
                f.write_str("the run's deadline passed")
            }
            NetErrorKind::Deadline(detail) => write!(f, "the run's deadline passed ({detail})"),
            NetErrorKind::Io(errno) => write!(f, "{errno}", errno = crate::os(errno)),
            NetErrorKind::Http(e) => write!(f, "{e}"),
            NetErrorKind::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for NetError {}

/// A failed operation on a [`TcpConnection`]: its embedded-io error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketError {
    /// A wait exceeded the timeout shown: the operation's own, or the one of the whole
    /// exchange when its deadline came first (see [`TcpConnection::set_deadline`]).
    Timeout(Duration),
    /// The run's deadline came first (see [`TcpConnection::set_run_deadline`]).
    Deadline,
    /// A system call failed.
    Os(Errno),
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Timeout(d) => write!(f, "timed out after {} ms", d.as_millis()),
            SocketError::Deadline => f.write_str("the run's deadline passed"),
            SocketError::Os(errno) => write!(f, "{errno}", errno = crate::os(errno)),
        }
    }
}

impl core::error::Error for SocketError {}

impl embedded_io::Error for SocketError {
    fn kind(&self) -> ErrorKind {
        match *self {
            SocketError::Timeout(_) | SocketError::Deadline => ErrorKind::TimedOut,
            SocketError::Os(errno) => match errno {
                Errno::PIPE => ErrorKind::BrokenPipe,
                Errno::CONNRESET => ErrorKind::ConnectionReset,
                Errno::CONNABORTED => ErrorKind::ConnectionAborted,
                Errno::CONNREFUSED => ErrorKind::ConnectionRefused,
                Errno::NOTCONN => ErrorKind::NotConnected,
                Errno::ADDRINUSE => ErrorKind::AddrInUse,
                Errno::ADDRNOTAVAIL => ErrorKind::AddrNotAvailable,
                Errno::TIMEDOUT => ErrorKind::TimedOut,
                Errno::INTR => ErrorKind::Interrupted,
                Errno::NOMEM | Errno::NOBUFS => ErrorKind::OutOfMemory,
                Errno::ACCESS | Errno::PERM => ErrorKind::PermissionDenied,
                Errno::INVAL => ErrorKind::InvalidInput,
                _ => ErrorKind::Other,
            },
        }
    }
}

/// A connected TCP socket (non-blocking underneath, `TCP_NODELAY`) with blocking
/// embedded-io semantics: [`Read::read`] and [`Write::write`] wait in `poll(2)` until
/// they can make progress, each wait bounded by the read or write timeout, by the
/// deadline set with [`TcpConnection::set_deadline`] and by the run's deadline
/// ([`TcpConnection::set_run_deadline`]). Closed when dropped.
#[derive(Debug)]
pub struct TcpConnection {
    fd: OwnedFd,
    peer: SocketAddr,
    read_timeout: Duration,
    write_timeout: Duration,
    /// The end of the current exchange, and the timeout reported when it is what expires.
    deadline: Option<(Instant, Duration)>,
    /// The end of the whole run.
    run_deadline: Option<Instant>,
}

impl TcpConnection {
    /// Connects to `addr` within `timeout`. Reads and writes then wait up to `timeout`
    /// as well, until [`TcpConnection::set_timeouts`] says otherwise.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpConnection, SocketError> {
        TcpConnection::connect_until(addr, timeout, None)
    }

    /// Connects to `addr` within `timeout` and before `run_deadline` (which then bounds
    /// every later wait too: [`TcpConnection::set_run_deadline`]). When the run's
    /// deadline is what expires, the error is [`SocketError::Deadline`].
    pub fn connect_until(
        addr: SocketAddr,
        timeout: Duration,
        run_deadline: Option<Instant>,
    ) -> Result<TcpConnection, SocketError> {
        Ok(TcpConnection {
            fd: connect_to(addr, timeout, run_deadline)?,
            peer: addr,
            read_timeout: timeout,
            write_timeout: timeout,
            deadline: None,
            run_deadline,
        })
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sets the longest wait for the next bytes to read and for room to write.
    pub fn set_timeouts(&mut self, read: Duration, write: Duration) {
        self.read_timeout = read;
        self.write_timeout = write;
    }

    /// Bounds every later wait by `end` too (`None`: by its own timeout only). A wait cut
    /// short by `end` fails with [`SocketError::Timeout`] of `overall`, the timeout that
    /// `end` stands for.
    pub fn set_deadline(&mut self, deadline: Option<(Instant, Duration)>) {
        self.deadline = deadline;
    }

    /// Bounds every later wait by the end of the whole run too (`None`: no such bound). A
    /// wait cut short by it fails with [`SocketError::Deadline`].
    pub fn set_run_deadline(&mut self, end: Option<Instant>) {
        self.run_deadline = end;
    }

    fn wait(&self, events: PollFlags, timeout: Duration) -> Result<(), SocketError> {
        let exchange = self.deadline.map(|(end, overall)| Limit {
            end,
            error: SocketError::Timeout(overall),
        });
        wait(
            &self.fd,
            events,
            &[
                Some(Limit::after(timeout)),
                exchange,
                self.run_deadline.map(Limit::run),
            ],
        )
    }
}

impl ErrorType for TcpConnection {
    type Error = SocketError;
}

impl Read for TcpConnection {
    /// Reads at least one byte, or 0 at the end of the stream (the peer closed).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match rustix::net::recv(&self.fd, &mut *buf, RecvFlags::empty()) {
                Ok((n, _)) => return Ok(n),
                Err(Errno::AGAIN) => self.wait(PollFlags::IN, self.read_timeout)?,
                Err(Errno::INTR) => {}
                Err(e) => return Err(SocketError::Os(e)),
            }
        }
    }
}

impl ReadReady for TcpConnection {
    /// Whether a read would return at once: bytes, the end of the stream or an error are
    /// waiting. Never blocks.
    fn read_ready(&mut self) -> Result<bool, SocketError> {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&zero))
            .map(|n| n > 0)
            .map_err(SocketError::Os)
    }
}

impl Write for TcpConnection {
    /// Writes at least one byte. A closed peer is `EPIPE` (no SIGPIPE) or `ECONNRESET`.
    fn write(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match rustix::net::send(&self.fd, buf, SendFlags::NOSIGNAL) {
                // Not expected from a stream socket; never report it as progress.
                Ok(0) => return Err(SocketError::Os(Errno::PIPE)),
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => self.wait(PollFlags::OUT, self.write_timeout)?,
                Err(Errno::INTR) => {}
                Err(e) => return Err(SocketError::Os(e)),
            }
        }
    }

    /// Nothing to do: there is no user-space buffer and `TCP_NODELAY` is set.
    fn flush(&mut self) -> Result<(), SocketError> {
        Ok(())
    }
}

/// The byte stream under HTTP: the socket, or TLS over it.
enum Stream {
    Plain(TcpConnection),
    Tls(Box<TlsStream<TcpConnection>>),
}

impl Stream {
    fn tcp(&mut self) -> &mut TcpConnection {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_mut(),
        }
    }

    fn peer(&self) -> SocketAddr {
        match self {
            Stream::Plain(s) => s.peer(),
            Stream::Tls(s) => s.get_ref().peer(),
        }
    }
}

/// A failure of a [`Stream`]: the socket's own, or TLS's (with the socket error under it,
/// when that is what failed).
#[derive(Debug)]
enum StreamError {
    Socket(SocketError),
    Tls(TlsError, Option<SocketError>),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Socket(e) | StreamError::Tls(_, Some(e)) => write!(f, "{e}"),
            StreamError::Tls(e, None) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for StreamError {}

impl embedded_io::Error for StreamError {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::Socket(e) | StreamError::Tls(_, Some(e)) => e.kind(),
            StreamError::Tls(e, None) => embedded_io::Error::kind(e),
        }
    }
}

impl From<StreamError> for NetErrorKind {
    /// A socket error stays what it is (a timeout, the deadline, an errno), under TLS too.
    fn from(e: StreamError) -> NetErrorKind {
        match e {
            StreamError::Socket(e) | StreamError::Tls(_, Some(e)) => e.into(),
            StreamError::Tls(e, None) => NetErrorKind::Tls(e),
        }
    }
}

impl ErrorType for Stream {
    type Error = StreamError;
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        match self {
            Stream::Plain(s) => s.read(buf).map_err(StreamError::Socket),
            Stream::Tls(s) => s.read(buf).map_err(|e| {
                let io = s.take_io_error();
                StreamError::Tls(e, io)
            }),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        match self {
            Stream::Plain(s) => s.write(buf).map_err(StreamError::Socket),
            Stream::Tls(s) => s.write(buf).map_err(|e| {
                let io = s.take_io_error();
                StreamError::Tls(e, io)
            }),
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        match self {
            Stream::Plain(s) => s.flush().map_err(StreamError::Socket),
            Stream::Tls(s) => s.flush().map_err(|e| {
                let io = s.take_io_error();
                StreamError::Tls(e, io)
            }),
        }
    }
}

/// A kept-alive connection and since when it has been idle.
struct Connection {
    stream: Stream,
    idle_since: Instant,
}

impl Connection {
    /// Whether a kept-alive connection may carry the next request: not idle for longer
    /// than `max_idle`, and nothing to read on its socket (a readable idle connection is
    /// either closed by the server or out of step with us; under TLS, an unread record
    /// counts as out of step too, and the reconnect resumes the session).
    fn reusable(&mut self, max_idle: Duration) -> bool {
        self.idle_since.elapsed() <= max_idle && matches!(self.stream.tcp().read_ready(), Ok(false))
    }
}

impl Drop for Connection {
    /// A TLS connection ends with close_notify (best effort; a failed one says nothing).
    fn drop(&mut self) {
        if let Stream::Tls(s) = &mut self.stream {
            s.close();
        }
    }
}

/// A failed exchange, and whether resending on a new connection is safe.
struct Failure {
    phase: Phase,
    kind: NetErrorKind,
    /// The connection turned out to be closed before any response byte arrived.
    resendable: bool,
}

/// An HTTP/1.1 client for one server, reusing one connection across requests.
pub struct HttpClient {
    url: Url,
    host_header: String,
    config: ClientConfig,
    conn: Option<Connection>,
    opened: u64,
}

impl HttpClient {
    /// A client for `url` with the default [`ClientConfig`]. Nothing is opened yet.
    pub fn new(url: Url) -> HttpClient {
        HttpClient::with_config(url, ClientConfig::default())
    }

    /// A client for `url` with `config`.
    pub fn with_config(url: Url, config: ClientConfig) -> HttpClient {
        HttpClient {
            host_header: url.host_header(),
            url,
            config,
            conn: None,
            opened: 0,
        }
    }

    /// The server URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How many TCP connections this client has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    /// Sets the end of the run ([`ClientConfig::deadline`]) for the next requests: a
    /// long-lived client (the server's hub) gives each operation its own.
    pub fn set_run_deadline(&mut self, end: Option<Instant>) {
        self.config.deadline = end;
    }

    /// Closes the kept-alive connection, if any.
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// Sends `request` and returns the complete response, whatever its status. The URL's
    /// base path is put in front of the request target, so pass `/kbs/v0/...`.
    ///
    /// On a reused connection that the server closed (end of stream, reset or broken pipe
    /// before any response byte), the request is sent once more on a new connection.
    pub fn send(&mut self, request: &Request) -> Result<Response, NetError> {
        let mut bytes = request
            .encode(&self.host_header, &self.url.base_path)
            .map_err(|e| NetError {
                peer: self.url.authority.to_string(),
                phase: Phase::Send,
                kind: NetErrorKind::Http(e),
            })?;
        let result = self.send_encoded(&bytes);
        bytes.zeroize();
        result
    }

    fn send_encoded(&mut self, bytes: &[u8]) -> Result<Response, NetError> {
        // Not one more byte once the run is over (a loopback connect or a kept-alive
        // connection would not wait, so no wait would notice).
        if self
            .config
            .deadline
            .is_some_and(|end| Instant::now() >= end)
        {
            return Err(NetError {
                peer: match &self.conn {
                    Some(c) => c.stream.peer().to_string(),
                    None => self.url.authority.to_string(),
                },
                phase: Phase::Send,
                kind: NetErrorKind::Deadline(String::new()),
            });
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let max_idle = self.config.max_idle;
        let reused = self.conn.as_mut().is_some_and(|c| c.reusable(max_idle));
        if !reused {
            self.conn = None; // dropping it closes it
        }
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect(deadline)?,
        };
        let first = self.exchange_on(&mut conn, bytes, deadline);
        let result = match first {
            Err(failure) if reused && failure.resendable => {
                drop(conn);
                conn = self.connect(deadline)?;
                self.exchange_on(&mut conn, bytes, deadline)
            }
            other => other,
        };
        match result {
            Ok(response) => {
                if response.keep_alive() {
                    conn.idle_since = Instant::now();
                    self.conn = Some(conn);
                }
                Ok(response)
            }
            Err(failure) => Err(NetError {
                peer: conn.stream.peer().to_string(),
                phase: failure.phase,
                kind: failure.kind,
            }),
        }
    }

    /// One exchange on `conn`, its waits bounded by the timeouts and by `deadline`.
    fn exchange_on(
        &self,
        conn: &mut Connection,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<Response, Failure> {
        self.bound(conn.stream.tcp(), deadline);
        exchange(&mut conn.stream, bytes, self.config.limits)
    }

    /// Bounds every wait on `tcp` by the timeouts, the exchange ending at `deadline` and
    /// the run's deadline.
    fn bound(&self, tcp: &mut TcpConnection, deadline: Instant) {
        tcp.set_timeouts(self.config.read_timeout, self.config.write_timeout);
        tcp.set_deadline(Some((deadline, self.config.request_timeout)));
        tcp.set_run_deadline(self.config.deadline);
    }

    /// Resolves the host and connects to the first address that answers; for `https://`,
    /// then does the TLS handshake (its waits bounded as an exchange ending at
    /// `deadline`).
    fn connect(&mut self, deadline: Instant) -> Result<Connection, NetError> {
        let addrs = self.resolve()?;
        let mut last = None;
        for &addr in &addrs {
            let run_deadline = self.config.deadline;
            match TcpConnection::connect_until(addr, self.config.connect_timeout, run_deadline) {
                Ok(tcp) => {
                    self.opened += 1;
                    let stream = if self.url.tls {
                        Stream::Tls(Box::new(self.handshake(tcp, deadline)?))
                    } else {
                        Stream::Plain(tcp)
                    };
                    return Ok(Connection {
                        stream,
                        idle_since: Instant::now(),
                    });
                }
                // No time left for the other addresses.
                Err(SocketError::Deadline) => {
                    return Err(NetError {
                        peer: addr.to_string(),
                        phase: Phase::Connect,
                        kind: NetErrorKind::Deadline(String::new()),
                    });
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        Err(match last {
            Some((addr, e)) => NetError {
                peer: if addrs.len() > 1 {
                    format!("{addr} (last of {} addresses)", addrs.len())
                } else {
                    addr.to_string()
                },
                phase: Phase::Connect,
                kind: e.into(),
            },
            None => self.resolve_error(String::new()),
        })
    }

    /// The TLS handshake over `tcp`: the server name is the URL's host. Logs the version
    /// and whether the session was resumed.
    fn handshake(
        &self,
        mut tcp: TcpConnection,
        deadline: Instant,
    ) -> Result<TlsStream<TcpConnection>, NetError> {
        let addr = tcp.peer();
        let fail = |kind: NetErrorKind| NetError {
            peer: format!("{} ({addr})", self.url),
            phase: Phase::Handshake,
            kind,
        };
        let Some(config) = &self.config.tls else {
            return Err(fail(NetErrorKind::Tls(TlsError::Config(
                "no certificate configured to trust the server with".into(),
            ))));
        };
        self.bound(&mut tcp, deadline);
        let name = match &self.url.authority.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => name.clone(),
        };
        let mut tls = TlsStream::new(config, &name, tcp).map_err(|e| fail(NetErrorKind::Tls(e)))?;
        if let Err(e) = tls.handshake() {
            let io = tls.take_io_error();
            return Err(fail(StreamError::Tls(e, io).into()));
        }
        let version = match tls.protocol_version() {
            Some(sealgate_tls::rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
            Some(sealgate_tls::rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            _ => "TLS",
        };
        crate::info!(
            "{version} with {} ({addr}): {}",
            self.url,
            if tls.resumed() {
                "session resumed"
            } else {
                "full handshake"
            }
        );
        Ok(tls)
    }

    fn resolve(&self) -> Result<Vec<SocketAddr>, NetError> {
        let port = self.url.authority.port;
        let name = match &self.url.authority.host {
            Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
            Host::Name(name) => name,
        };
        if let Some(text) = read_small_file(&self.config.hosts_file) {
            let ips = lookup_hosts(&text, name);
            if !ips.is_empty() {
                return Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect());
            }
        }
        let conf = match &self.config.resolver {
            Some(conf) => conf.clone(),
            None => {
                let path = &self.config.resolv_conf;
                match read_small_file(path) {
                    Some(text) => ResolvConf::parse(&text),
                    None => {
                        return Err(self.resolve_error(format!(
                            "no nameserver configured ({path} is missing or unreadable)"
                        )));
                    }
                }
            }
        };
        if conf.nameservers.is_empty() && self.config.resolver.is_none() {
            return Err(self.resolve_error(format!(
                "no nameserver configured in {}",
                self.config.resolv_conf
            )));
        }
        match resolver::lookup_until(name, &conf, self.config.deadline) {
            Ok(ips) => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Err(resolver::LookupError::NotFound(detail)) => Err(self.resolve_error(detail)),
            Err(resolver::LookupError::Deadline(detail)) => Err(NetError {
                peer: self.url.authority.to_string(),
                phase: Phase::Resolve,
                kind: NetErrorKind::Deadline(detail),
            }),
        }
    }

    fn resolve_error(&self, detail: String) -> NetError {
        NetError {
            peer: self.url.authority.to_string(),
            phase: Phase::Resolve,
            kind: NetErrorKind::NotFound(detail),
        }
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.url.to_string())
            .field("connected_to", &self.conn.as_ref().map(|c| c.stream.peer()))
            .field("connections_opened", &self.opened)
            .finish()
    }
}

/// Reads a text file of at most [`MAX_HOSTS_FILE_BYTES`]; `None` when it is missing,
/// unreadable, not a regular file or too large.
fn read_small_file(path: &str) -> Option<String> {
    let data = crate::fs::read_file(path, MAX_HOSTS_FILE_BYTES).ok()?;
    Some(String::from_utf8_lossy(&data).into_owned())
}

/// Opens a non-blocking TCP connection to `addr` within `timeout` and before
/// `run_deadline`, with TCP_NODELAY.
fn connect_to(
    addr: SocketAddr,
    timeout: Duration,
    run_deadline: Option<Instant>,
) -> Result<OwnedFd, SocketError> {
    if run_deadline.is_some_and(|end| Instant::now() >= end) {
        return Err(SocketError::Deadline);
    }
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(SocketError::Os)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => {}
        // EINTR: the connection attempt goes on asynchronously, as for EINPROGRESS.
        Err(Errno::INPROGRESS | Errno::INTR) => {
            wait(
                &fd,
                PollFlags::OUT,
                &[Some(Limit::after(timeout)), run_deadline.map(Limit::run)],
            )?;
            match rustix::net::sockopt::socket_error(&fd) {
                Ok(Ok(())) => {}
                Ok(Err(e)) | Err(e) => return Err(SocketError::Os(e)),
            }
        }
        Err(e) => return Err(SocketError::Os(e)),
    }
    rustix::net::sockopt::set_tcp_nodelay(&fd, true).map_err(SocketError::Os)?;
    Ok(fd)
}

/// An end to a wait, and the error to report when it is the one that expires.
#[derive(Clone, Copy, Debug)]
struct Limit {
    end: Instant,
    error: SocketError,
}

impl Limit {
    /// `timeout` from now, reported as that timeout.
    fn after(timeout: Duration) -> Limit {
        Limit {
            end: Instant::now() + timeout,
            error: SocketError::Timeout(timeout),
        }
    }

    /// The end of the whole run, reported as [`SocketError::Deadline`].
    fn run(end: Instant) -> Limit {
        Limit {
            end,
            error: SocketError::Deadline,
        }
    }
}

/// Waits until `fd` is ready for `events`, and not past the earliest of `limits`; when
/// that one expires, fails with its error (the first listed wins a tie).
fn wait(fd: &OwnedFd, events: PollFlags, limits: &[Option<Limit>]) -> Result<(), SocketError> {
    let Some(first) = limits
        .iter()
        .flatten()
        .copied()
        .reduce(|a, b| if b.end < a.end { b } else { a })
    else {
        return Err(SocketError::Os(Errno::INVAL)); // every caller passes a timeout
    };
    loop {
        let left = first.end.saturating_duration_until();
        if left.is_zero() {
            return Err(first.error);
        }
        let ts = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 86_400,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(fd, events)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(Errno::INTR) => {} // re-check the clock
            Ok(_) => return Ok(()),
            Err(e) => return Err(SocketError::Os(e)),
        }
    }
}

/// Whether an error means the server had already closed the connection.
fn closed_by_peer(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Writes the encoded request to `stream` and reads one response from it. Only the
/// embedded-io traits are used, so the stream may be a [`TcpConnection`] or a TLS
/// session over one; its timeouts and deadline are the stream's business.
fn exchange<S>(stream: &mut S, bytes: &[u8], limits: Limits) -> Result<Response, Failure>
where
    S: Read + Write,
    S::Error: Into<NetErrorKind>,
{
    fn fail<E: embedded_io::Error + Into<NetErrorKind>>(
        phase: Phase,
        e: E,
        nothing_received: bool,
    ) -> Failure {
        Failure {
            phase,
            resendable: nothing_received && closed_by_peer(e.kind()),
            kind: e.into(),
        }
    }

    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => {
                return Err(Failure {
                    phase: Phase::Send,
                    kind: NetErrorKind::Io(Errno::PIPE),
                    resendable: true,
                });
            }
            Ok(n) => sent += n,
            Err(e) => return Err(fail(Phase::Send, e, true)),
        }
    }
    stream.flush().map_err(|e| fail(Phase::Send, e, true))?;

    let mut parser = ResponseParser::new(limits);
    let mut buf = vec![0u8; READ_CHUNK];
    let result = loop {
        let progress = match stream.read(&mut buf) {
            Ok(0) => parser.finish(),
            Ok(n) => parser.feed(&buf[..n]),
            Err(e) => break Err(fail(Phase::Receive, e, parser.bytes_received() == 0)),
        };
        match progress {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Complete(response)) => break Ok(response),
            Err(e) => {
                let resendable = e == HttpError::ClosedBeforeResponse;
                break Err(Failure {
                    phase: Phase::Receive,
                    kind: NetErrorKind::Http(e),
                    resendable,
                });
            }
        }
    };
    buf.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;

    use super::resolver::tests as fake_dns;
    use fake_dns::FakeDns;

    /// Generous timeouts for tests that must not time out, even on a loaded machine.
    fn config() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(20),
            hosts_file: "/nonexistent/hosts".into(),
            resolv_conf: "/nonexistent/resolv.conf".into(),
            ..ClientConfig::default()
        }
    }

    fn client(addr: SocketAddr, config: ClientConfig) -> HttpClient {
        let url = Url::parse(&format!("http://{addr}")).unwrap();
        HttpClient::with_config(url, config)
    }

    /// Runs `serve` on a loopback listener in a thread.
    fn server<T: Send + 'static>(
        serve: impl FnOnce(TcpListener) -> T + Send + 'static,
    ) -> (SocketAddr, thread::JoinHandle<T>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, thread::spawn(move || serve(listener)))
    }

    /// Reads one request (head and Content-Length body); `None` at end of stream.
    fn read_request(s: &mut TcpStream) -> Option<String> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if data.len() >= end + 4 + len {
                    return Some(String::from_utf8_lossy(&data).into_owned());
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn ok_response(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Answers every request on every connection with `respond(request)`, until the
    /// client closes; returns (connections accepted, requests served).
    fn keep_alive_server(
        connections: usize,
        respond: fn(&str) -> String,
    ) -> (SocketAddr, thread::JoinHandle<(usize, usize)>) {
        server(move |listener| {
            let mut served = 0;
            for _ in 0..connections {
                let (mut s, _) = listener.accept().unwrap();
                while let Some(req) = read_request(&mut s) {
                    s.write_all(respond(&req).as_bytes()).unwrap();
                    served += 1;
                }
            }
            (connections, served)
        })
    }

    /// No further connection is waiting on `listener`.
    fn no_pending_connection(listener: &TcpListener) -> bool {
        listener.set_nonblocking(true).unwrap();
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Closes `s` with a TCP reset instead of a FIN.
    fn reset(s: TcpStream) {
        rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
        drop(s);
    }

    #[test]
    fn keep_alive_reuses_one_connection() {
        let (addr, handle) = keep_alive_server(1, |req| {
            let first_line = req.lines().next().unwrap_or_default();
            if req.starts_with("POST") {
                let body = req.split("\r\n\r\n").nth(1).unwrap_or_default();
                ok_response(&format!("{first_line} {body}"))
            } else {
                // Chunked, to cover both framings on one connection.
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first_line}\r\n0\r\n\r\n",
                    first_line.len()
                )
            }
        });
        let url = Url::parse(&format!("http://{addr}/base/")).unwrap();
        let mut c = HttpClient::with_config(url, config());
        for i in 0..5 {
            let resp = c
                .send(&Request::post_json(
                    "/kbs/v0/auth",
                    format!("{{\"n\":{i}}}"),
                ))
                .unwrap();
            assert_eq!(
                resp.body(),
                format!("POST /base/kbs/v0/auth HTTP/1.1 {{\"n\":{i}}}").as_bytes()
            );
            assert!(resp.keep_alive());
            let resp = c.send(&Request::get("/kbs/v0/resource/a/b/c")).unwrap();
            assert_eq!(resp.body(), b"GET /base/kbs/v0/resource/a/b/c HTTP/1.1");
        }
        assert_eq!(c.connections_opened(), 1);
        drop(c);
        assert_eq!(handle.join().unwrap(), (1, 10));
    }

    #[test]
    fn request_headers_on_the_wire() {
        let (addr, handle) = server(|listener| {
            let (mut s, _) = listener.accept().unwrap();
            let req = read_request(&mut s).unwrap();
            s.write_all(ok_response("").as_bytes()).unwrap();
            req
        });
        let mut c = client(addr, config());
        let req = Request::get("/kbs/v0/resource/x/y/z")
            .with_cookie("kbs-session-id", "0123456789abcdef0123456789abcdef")
            .with_bearer("tok.en");
        assert_eq!(c.send(&req).unwrap().status(), 200);
        drop(c);
        let wire = handle.join().unwrap();
        assert_eq!(
            wire,
            format!(
                "GET /kbs/v0/resource/x/y/z HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {}\r\n\
                 Accept: application/json\r\nCookie: kbs-session-id=0123456789abcdef0123456789abcdef\r\n\
                 Authorization: Bearer tok.en\r\n\r\n",
                sealgate_core::http::USER_AGENT
            )
        );
    }

    #[test]
    fn idle_connection_closed_by_server_is_replaced() {
        let (closed_tx, closed_rx) = mpsc::channel();
        let (addr, handle) = server(move |listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(ok_response("one").as_bytes()).unwrap();
            drop(s); // the keep-alive timeout of the server
            closed_tx.send(()).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(ok_response("two").as_bytes()).unwrap();
            read_request(&mut s).is_none()
        });
        let mut c = client(addr, config());
        assert_eq!(c.send(&Request::get("/1")).unwrap().body(), b"one");
        closed_rx.recv().unwrap();
        assert_eq!(c.send(&Request::get("/2")).unwrap().body(), b"two");
        assert_eq!(c.connections_opened(), 2);
        drop(c);
        assert!(handle.join().unwrap());
    }

    #[test]
    fn idle_connection_with_stray_bytes_is_not_reused() {
        let (got_tx, got_rx) = mpsc::channel::<()>();
        let (sent_tx, sent_rx) = mpsc::channel();
        let (addr, handle) = server(move |listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(ok_response("one").as_bytes()).unwrap();
            got_rx.recv().unwrap();
            // Bytes nobody asked for, after the response was read (a confused or hostile
            // peer): reading them as the answer to the next request would be wrong.
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
                .unwrap();
            sent_tx.send(()).unwrap();
            let (mut s2, _) = listener.accept().unwrap();
            read_request(&mut s2).unwrap();
            s2.write_all(ok_response("two").as_bytes()).unwrap();
            read_request(&mut s2).is_none()
        });
        let mut c = client(addr, config());
        let first = c.send(&Request::get("/1")).unwrap();
        assert_eq!(first.body(), b"one");
        assert!(first.keep_alive());
        got_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(50)); // let the stray bytes arrive
        assert_eq!(c.send(&Request::get("/2")).unwrap().body(), b"two");
        assert_eq!(c.connections_opened(), 2);
        drop(c);
        assert!(handle.join().unwrap());
    }

    #[test]
    fn connection_idle_too_long_is_not_reused() {
        let (addr, handle) = keep_alive_server(2, |_| ok_response("hi"));
        let mut c = client(
            addr,
            ClientConfig {
                max_idle: Duration::from_millis(50),
                ..config()
            },
        );
        c.send(&Request::get("/1")).unwrap();
        c.send(&Request::get("/2")).unwrap();
        assert_eq!(c.connections_opened(), 1);
        thread::sleep(Duration::from_millis(100));
        c.send(&Request::get("/3")).unwrap();
        assert_eq!(c.connections_opened(), 2);
        drop(c);
        assert_eq!(handle.join().unwrap(), (2, 3));
    }

    /// The server takes the next request on a kept-alive connection, then closes it
    /// without answering (FIN or reset): the client resends once on a new connection.
    fn resend_after_silent_close(with_reset: bool) {
        let (addr, handle) = server(move |listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(ok_response("one").as_bytes()).unwrap();
            let second = read_request(&mut s).unwrap();
            if with_reset {
                reset(s);
            } else {
                drop(s);
            }
            let (mut s, _) = listener.accept().unwrap();
            let again = read_request(&mut s).unwrap();
            s.write_all(ok_response("two").as_bytes()).unwrap();
            assert!(read_request(&mut s).is_none());
            assert!(no_pending_connection(&listener));
            second == again
        });
        let mut c = client(addr, config());
        assert_eq!(c.send(&Request::get("/1")).unwrap().body(), b"one");
        let resp = c.send(&Request::post_json("/2", "{}")).unwrap();
        assert_eq!(resp.body(), b"two");
        assert_eq!(c.connections_opened(), 2);
        drop(c);
        assert!(handle.join().unwrap(), "the resent request differs");
    }

    #[test]
    fn resend_after_close_without_response() {
        resend_after_silent_close(false);
    }

    #[test]
    fn resend_after_reset_without_response() {
        resend_after_silent_close(true);
    }

    #[test]
    fn resend_happens_only_once() {
        let (addr, handle) = server(|listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(ok_response("one").as_bytes()).unwrap();
            read_request(&mut s).unwrap();
            drop(s);
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            drop(s);
            listener
        });
        let mut c = client(addr, config());
        c.send(&Request::get("/1")).unwrap();
        let err = c.send(&Request::get("/2")).unwrap_err();
        assert_eq!(err.phase, Phase::Receive);
        assert_eq!(
            err.kind,
            NetErrorKind::Http(HttpError::ClosedBeforeResponse)
        );
        assert_eq!(err.peer, addr.to_string());
        assert_eq!(c.connections_opened(), 2);
        let listener = handle.join().unwrap();
        assert!(no_pending_connection(&listener));
    }

    #[test]
    fn fresh_connection_closed_without_response_is_not_resent() {
        let (addr, handle) = server(|listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            drop(s);
            listener
        });
        let mut c = client(addr, config());
        let err = c.send(&Request::get("/1")).unwrap_err();
        assert_eq!(
            err.kind,
            NetErrorKind::Http(HttpError::ClosedBeforeResponse)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "receive from {addr}: the server closed the connection without sending a response"
            )
        );
        assert_eq!(c.connections_opened(), 1);
        let listener = handle.join().unwrap();
        assert!(no_pending_connection(&listener));
    }

    #[test]
    fn reset_mid_response_is_an_error_without_resend() {
        let (addr, handle) = server(|listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(ok_response("one").as_bytes()).unwrap();
            read_request(&mut s).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nSECRET-PART")
                .unwrap();
            s.flush().unwrap();
            thread::sleep(Duration::from_millis(50));
            reset(s);
            listener
        });
        let mut c = client(addr, config());
        c.send(&Request::get("/1")).unwrap();
        let err = c.send(&Request::get("/2")).unwrap_err();
        assert_eq!(err.phase, Phase::Receive);
        // A reset is reported as ECONNRESET; should the partial bytes and the close be
        // read before the reset shows, it is a truncated body. Never a resend.
        match &err.kind {
            NetErrorKind::Io(Errno::CONNRESET) => {}
            NetErrorKind::Http(HttpError::TruncatedBody {
                received: 11,
                expected: 100,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.to_string().contains("SECRET"));
        assert_eq!(c.connections_opened(), 1);
        let listener = handle.join().unwrap();
        assert!(no_pending_connection(&listener));
    }

    #[test]
    fn connection_close_is_honoured() {
        let (addr, handle) = server(|listener| {
            let mut requests = 0;
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                read_request(&mut s).unwrap();
                requests += 1;
                // Close-delimited body.
                s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye")
                    .unwrap();
                drop(s);
            }
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            // HTTP/1.0 without keep-alive closes too.
            s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            drop(s);
            requests + 1
        });
        let mut c = client(addr, config());
        for _ in 0..2 {
            let resp = c.send(&Request::get("/")).unwrap();
            assert_eq!(resp.body(), b"bye");
            assert!(!resp.keep_alive());
        }
        assert_eq!(c.send(&Request::get("/")).unwrap().body(), b"ok");
        assert_eq!(c.connections_opened(), 3);
        assert_eq!(handle.join().unwrap(), 3);
    }

    #[test]
    fn read_timeout_when_the_server_never_answers() {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (addr, handle) = server(move |listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            done_rx.recv().ok(); // hold the connection open, silently
        });
        let mut c = client(
            addr,
            ClientConfig {
                read_timeout: Duration::from_millis(200),
                ..config()
            },
        );
        let start = Instant::now();
        let err = c.send(&Request::get("/")).unwrap_err();
        let elapsed = start.elapsed();
        assert_eq!(err.phase, Phase::Receive);
        assert_eq!(err.kind, NetErrorKind::Timeout(Duration::from_millis(200)));
        assert!(err.is_timeout());
        assert_eq!(
            err.to_string(),
            format!("receive from {addr}: timed out after 200 ms")
        );
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(c.connections_opened(), 1);
        done_tx.send(()).unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn run_deadline_caps_a_silent_server_and_names_the_wait() {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (addr, handle) = server(move |listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            done_rx.recv().ok(); // hold the connection open, silently
        });
        let start = Instant::now();
        let mut c = client(
            addr,
            ClientConfig {
                // Each much longer than the run's deadline.
                read_timeout: Duration::from_secs(30),
                request_timeout: Duration::from_secs(60),
                deadline: Some(start + Duration::from_millis(300)),
                ..config()
            },
        );
        let err = c.send(&Request::get("/")).unwrap_err();
        let elapsed = start.elapsed();
        assert_eq!(err.phase, Phase::Receive);
        assert_eq!(err.kind, NetErrorKind::Deadline(String::new()));
        assert!(err.is_deadline() && !err.is_transient());
        assert_eq!(err.doing(), format!("waiting for {addr} to answer"));
        assert_eq!(
            err.to_string(),
            format!("receive from {addr}: the run's deadline passed")
        );
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        // Once it has passed, nothing more is sent.
        let err = c.send(&Request::get("/again")).unwrap_err();
        assert_eq!((err.phase, err.is_deadline()), (Phase::Send, true));
        done_tx.send(()).unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn run_deadline_caps_dns_and_names_the_nameserver() {
        let dns = FakeDns::start(|_| vec![]);
        let start = Instant::now();
        let url = Url::parse("http://kbs.test:8080").unwrap();
        let mut c = HttpClient::with_config(
            url,
            ClientConfig {
                resolver: Some(ResolvConf {
                    timeout: Duration::from_secs(30),
                    attempts: 3,
                    ..fake_dns::conf(&[&dns])
                }),
                deadline: Some(start + Duration::from_millis(300)),
                ..config()
            },
        );
        let err = c.send(&Request::get("/")).unwrap_err();
        let elapsed = start.elapsed();
        assert_eq!(err.phase, Phase::Resolve);
        assert!(err.is_deadline(), "{err}");
        assert_eq!(
            err.doing(),
            format!("resolving kbs.test:8080 (asking {})", dns.addr)
        );
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert_eq!(c.connections_opened(), 0);
    }

    #[test]
    fn run_deadline_caps_a_connect() {
        // A listener whose backlog is full: further SYNs are dropped, the connect hangs.
        // Not every kernel lets the backlog fill; what is checked is the bound, and the
        // kind of error when the deadline is what ended it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let start = Instant::now();
        let end = start + Duration::from_millis(300);
        let mut held = Vec::new();
        let mut cut = None;
        for _ in 0..64 {
            match TcpConnection::connect_until(addr, Duration::from_secs(30), Some(end)) {
                Ok(c) => held.push(c),
                Err(e) => {
                    cut = Some(e);
                    break;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        if let Some(e) = cut {
            assert_eq!(e, SocketError::Deadline);
        }
        // Past the deadline, not even a loopback connect is started.
        assert_eq!(
            TcpConnection::connect_until(addr, Duration::from_secs(30), Some(start)).unwrap_err(),
            SocketError::Deadline
        );
        drop(listener);
    }

    #[test]
    fn request_deadline_stops_a_trickling_server() {
        let (addr, handle) = server(|listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                .unwrap();
            // One byte every 20 ms until the client gives up.
            while s.write_all(b"x").is_ok() {
                thread::sleep(Duration::from_millis(20));
            }
        });
        let mut c = client(
            addr,
            ClientConfig {
                read_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_millis(300),
                ..config()
            },
        );
        let start = Instant::now();
        let err = c.send(&Request::get("/")).unwrap_err();
        assert_eq!(err.phase, Phase::Receive);
        assert_eq!(err.kind, NetErrorKind::Timeout(Duration::from_millis(300)));
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(c);
        handle.join().unwrap();
    }

    /// A listener whose accept queue is full: the kernel drops further SYNs, so a
    /// connection attempt hangs until the client gives up. Deterministic on loopback.
    fn full_listener() -> (OwnedFd, SocketAddr, Vec<TcpStream>) {
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        rustix::net::bind(&fd, &any).unwrap();
        rustix::net::listen(&fd, 0).unwrap();
        let addr = match rustix::net::getsockname(&fd).unwrap().try_into() {
            Ok(SocketAddr::V4(a)) => SocketAddr::V4(a),
            other => panic!("{other:?}"),
        };
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(s) => fillers.push(s),
                Err(_) => return (fd, addr, fillers), // the queue is full
            }
        }
        panic!("the accept queue never filled up");
    }

    #[test]
    fn connect_timeout() {
        let (_listener, addr, _fillers) = full_listener();
        let mut c = client(
            addr,
            ClientConfig {
                connect_timeout: Duration::from_millis(200),
                ..config()
            },
        );
        let start = Instant::now();
        let err = c.send(&Request::get("/")).unwrap_err();
        let elapsed = start.elapsed();
        assert_eq!(err.phase, Phase::Connect);
        assert_eq!(err.kind, NetErrorKind::Timeout(Duration::from_millis(200)));
        assert_eq!(
            err.to_string(),
            format!("connect to {addr}: timed out after 200 ms")
        );
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(c.connections_opened(), 0);
    }

    #[test]
    fn connection_refused() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut c = client(addr, config());
        let err = c.send(&Request::get("/")).unwrap_err();
        assert_eq!(err.phase, Phase::Connect);
        assert_eq!(err.kind, NetErrorKind::Io(Errno::CONNREFUSED));
        assert!(
            err.to_string().starts_with(&format!("connect to {addr}: ")),
            "{err}"
        );
    }

    #[test]
    fn https_without_a_tls_configuration_fails_for_good_before_sending() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = Url::parse(&format!("https://{addr}")).unwrap();
        let mut c = HttpClient::with_config(url, config());
        let err = c.send(&Request::get("/")).unwrap_err();
        assert_eq!(err.phase, Phase::Handshake);
        assert!(
            matches!(err.kind, NetErrorKind::Tls(TlsError::Config(_))),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert!(
            err.to_string()
                .starts_with(&format!("KBS https://{addr} ({addr}): TLS configuration: ")),
            "{err}"
        );
        // Not one byte was sent.
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn invalid_request_fails_before_connecting() {
        let mut c = client("127.0.0.1:9".parse().unwrap(), config());
        let err = c.send(&Request::get("/a b")).unwrap_err();
        assert_eq!(err.phase, Phase::Send);
        assert_eq!(
            err.kind,
            NetErrorKind::Http(HttpError::InvalidRequest { field: "target" })
        );
        assert_eq!(c.connections_opened(), 0);
    }

    #[test]
    fn response_errors_name_peer_and_phase() {
        let (addr, handle) = server(|listener| {
            let (mut s, _) = listener.accept().unwrap();
            read_request(&mut s).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n")
                .unwrap();
            read_request(&mut s).is_none()
        });
        let mut c = client(addr, config());
        let err = c.send(&Request::get("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("receive from {addr}: response body exceeds the 1048576-byte limit")
        );
        drop(c);
        assert!(handle.join().unwrap());
    }

    /// A temporary directory for files the client reads, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("sealgate-net-test-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, text: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path.into_os_string().into_string().unwrap()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    /// A fake DNS server that knows one name.
    fn dns_knowing(name: &'static str, ips: &'static [&'static str]) -> FakeDns {
        FakeDns::start(move |q| {
            if q.name() == name {
                vec![fake_dns::answer(q, ips)]
            } else {
                vec![fake_dns::rcode(q, 3)]
            }
        })
    }

    #[test]
    fn hosts_file_before_dns() {
        let (addr, handle) = keep_alive_server(2, |_| ok_response("hi"));
        // DNS would send the client to a black hole: it must not be asked.
        let dns = dns_knowing("kbs.test", &["192.0.2.1"]);
        let dir = TempDir::new("hosts");
        // ::1 first: nothing listens there on this port, so the second address is used.
        let hosts = dir.file("hosts", "# test\n::1 kbs.test\n127.0.0.1 other KBS.Test\n");
        let config = ClientConfig {
            hosts_file: hosts,
            resolver: Some(fake_dns::conf(&[&dns])),
            ..config()
        };
        let url = Url::parse(&format!("http://kbs.test:{}", addr.port())).unwrap();
        let mut c = HttpClient::with_config(url, config.clone());
        assert_eq!(c.send(&Request::get("/")).unwrap().body(), b"hi");
        assert_eq!(c.connections_opened(), 1);
        drop(c);
        assert!(dns.asked().is_empty());

        // Not in the hosts file: DNS answers.
        let dns = dns_knowing("elsewhere.test", &["127.0.0.1"]);
        let url = Url::parse(&format!("http://elsewhere.test:{}", addr.port())).unwrap();
        let config = ClientConfig {
            resolver: Some(fake_dns::conf(&[&dns])),
            ..config
        };
        let mut c = HttpClient::with_config(url, config);
        assert_eq!(c.send(&Request::get("/")).unwrap().body(), b"hi");
        drop(c);
        assert_eq!(dns.asked().len(), 2);
        assert_eq!(handle.join().unwrap(), (2, 2));
    }

    #[test]
    fn name_resolved_through_dns_to_a_loopback_server() {
        let (addr, handle) = keep_alive_server(1, |req| {
            ok_response(req.lines().find(|l| l.starts_with("Host:")).unwrap_or(""))
        });
        // IPv6 first in the answer, but IPv4 is tried first; nothing listens on ::1.
        let dns = dns_knowing("kbs.corp.test", &["::1", "127.0.0.1"]);
        // A single label: the search list applies.
        let url = Url::parse(&format!("http://kbs:{}/base", addr.port())).unwrap();
        let mut c = HttpClient::with_config(
            url,
            ClientConfig {
                resolver: Some(ResolvConf {
                    search: vec!["corp.test".into()],
                    ..fake_dns::conf(&[&dns])
                }),
                ..config()
            },
        );
        let resp = c.send(&Request::get("/kbs/v0/auth")).unwrap();
        assert_eq!(resp.body(), format!("Host: kbs:{}", addr.port()).as_bytes());
        assert_eq!(c.connections_opened(), 1);
        assert_eq!(format!("{c:?}").matches("127.0.0.1").count(), 1);
        drop(c);
        assert_eq!(handle.join().unwrap(), (1, 1));
        let names: Vec<String> = dns.asked().iter().map(|q| q.name()).collect();
        assert_eq!(names, ["kbs.corp.test", "kbs.corp.test"]);
    }

    fn resolve_error(config: ClientConfig) -> NetError {
        let mut c = HttpClient::with_config(Url::parse("http://kbs.example:8080").unwrap(), config);
        let err = c.send(&Request::get("/")).unwrap_err();
        assert_eq!(err.phase, Phase::Resolve);
        assert!(matches!(err.kind, NetErrorKind::NotFound(_)), "{err:?}");
        assert!(!err.is_timeout());
        assert_eq!(c.connections_opened(), 0);
        err
    }

    #[test]
    fn resolve_errors() {
        let dns = dns_knowing("other.test", &["127.0.0.1"]);
        let err = resolve_error(ClientConfig {
            resolver: Some(fake_dns::conf(&[&dns])),
            ..config()
        });
        assert_eq!(
            err.to_string(),
            format!(
                "resolve kbs.example:8080: no address found (NXDOMAIN from {})",
                dns.addr
            )
        );
        assert_eq!(err.peer, "kbs.example:8080");

        let silent = FakeDns::start(|_| vec![]);
        let err = resolve_error(ClientConfig {
            resolver: Some(ResolvConf {
                timeout: Duration::from_millis(50),
                attempts: 1,
                ..fake_dns::conf(&[&silent])
            }),
            ..config()
        });
        assert_eq!(
            err.to_string(),
            format!("resolve kbs.example:8080: timed out asking {}", silent.addr)
        );

        assert_eq!(
            resolve_error(config()).to_string(),
            "resolve kbs.example:8080: no nameserver configured \
             (/nonexistent/resolv.conf is missing or unreadable)"
        );
        let dir = TempDir::new("resolv");
        let resolv_conf = dir.file("resolv.conf", "search corp.test\noptions ndots:2\n");
        let err = resolve_error(ClientConfig {
            resolv_conf: resolv_conf.clone(),
            ..config()
        });
        assert_eq!(
            err.to_string(),
            format!(
                "resolve kbs.example:8080: no nameserver configured in {}",
                resolv_conf
            )
        );
        assert_eq!(
            resolve_error(ClientConfig {
                resolver: Some(ResolvConf::default()),
                ..config()
            })
            .to_string(),
            "resolve kbs.example:8080: no nameserver configured"
        );
    }

    /// Under TLS a socket error stays what it is (a timeout, the deadline, a reset: the
    /// same messages, retries and resends as over plain TCP); TLS's own errors are
    /// transient or not as TLS says (a certificate never is), and name the KBS.
    #[test]
    fn tls_errors_keep_the_socket_error_under_them() {
        use sealgate_tls::IoFailure;
        let io = |kind| {
            TlsError::Io(IoFailure {
                kind,
                message: "x".into(),
                transient: true,
            })
        };
        let timeout = SocketError::Timeout(Duration::from_millis(1500));
        let e = StreamError::Tls(io(ErrorKind::TimedOut), Some(timeout));
        assert_eq!(embedded_io::Error::kind(&e), ErrorKind::TimedOut);
        assert_eq!(
            NetErrorKind::from(e),
            NetErrorKind::Timeout(Duration::from_millis(1500))
        );
        let e = StreamError::Tls(io(ErrorKind::TimedOut), Some(SocketError::Deadline));
        assert_eq!(NetErrorKind::from(e), NetErrorKind::Deadline(String::new()));
        let reset = SocketError::Os(Errno::CONNRESET);
        let e = StreamError::Tls(io(ErrorKind::ConnectionReset), Some(reset));
        assert!(closed_by_peer(embedded_io::Error::kind(&e)));
        assert_eq!(NetErrorKind::from(e), NetErrorKind::Io(Errno::CONNRESET));
        // The peer closing without close_notify: resendable before any response byte.
        let e = StreamError::Tls(io(ErrorKind::ConnectionAborted), None);
        assert!(closed_by_peer(embedded_io::Error::kind(&e)));

        let handshake = |kind| NetError {
            peer: "https://kbs.test:8443 (10.0.2.2:8443)".into(),
            phase: Phase::Handshake,
            kind,
        };
        let cert = handshake(NetErrorKind::Tls(TlsError::Certificate(
            "certificate expired at 2020-01-01T00:00:00Z".into(),
        )));
        assert!(!cert.is_transient());
        assert_eq!(
            cert.to_string(),
            "KBS https://kbs.test:8443 (10.0.2.2:8443): TLS server certificate rejected: \
             certificate expired at 2020-01-01T00:00:00Z"
        );
        assert!(!handshake(NetErrorKind::Tls(TlsError::Clock("c".into()))).is_transient());
        assert!(handshake(NetErrorKind::Tls(io(ErrorKind::ConnectionReset))).is_transient());
        let deadline = handshake(NetErrorKind::Deadline(String::new()));
        assert_eq!(
            deadline.doing(),
            "negotiating TLS with https://kbs.test:8443 (10.0.2.2:8443)"
        );
    }

    #[test]
    fn transient_errors_are_those_a_retry_can_fix() {
        let err = |phase, kind| NetError {
            peer: "10.0.2.2:8080".into(),
            phase,
            kind,
        };
        for transient in [
            err(Phase::Resolve, NetErrorKind::NotFound(String::new())),
            err(Phase::Connect, NetErrorKind::Io(Errno::CONNREFUSED)),
            err(Phase::Receive, NetErrorKind::Io(Errno::CONNRESET)),
            err(
                Phase::Receive,
                NetErrorKind::Timeout(Duration::from_secs(1)),
            ),
            err(
                Phase::Receive,
                NetErrorKind::Http(HttpError::ClosedBeforeResponse),
            ),
            err(
                Phase::Receive,
                NetErrorKind::Http(HttpError::TruncatedBody {
                    received: 1,
                    expected: 2,
                }),
            ),
            err(
                Phase::Receive,
                NetErrorKind::Http(HttpError::MalformedHead { reason: "x" }),
            ),
        ] {
            assert!(transient.is_transient(), "{transient:?}");
        }
        for fatal in [
            HttpError::BodyTooLarge { limit: 1 },
            HttpError::HeadTooLarge { limit: 1 },
            HttpError::TrailersTooLarge { limit: 1 },
            HttpError::TooManyHeaders { limit: 1 },
            HttpError::InvalidRequest { field: "target" },
            HttpError::InvalidCookie {
                name: "kbs-session-id".into(),
            },
            HttpError::UnexpectedUpgrade,
        ] {
            let e = err(Phase::Receive, NetErrorKind::Http(fatal));
            assert!(!e.is_transient(), "{e:?}");
        }
    }

    #[test]
    fn tcp_connection_is_an_embedded_io_stream() {
        use embedded_io::{Read as _, ReadExactError, Write as _};
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (addr, handle) = server(move |listener| {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = [0u8; 4];
            s.read_exact(&mut got).unwrap();
            go_rx.recv().unwrap();
            s.write_all(&got).unwrap();
            go_rx.recv().unwrap(); // stay silent until told, then close
        });
        let mut conn = TcpConnection::connect(addr, Duration::from_secs(10)).unwrap();
        assert_eq!(conn.peer(), addr);
        conn.write_all(b"ping").unwrap();
        conn.flush().unwrap();
        assert_eq!(conn.read_ready(), Ok(false));
        go_tx.send(()).unwrap();
        let mut echo = [0u8; 4];
        conn.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ping");

        // A silent peer: the read timeout, or the deadline's timeout when it comes first.
        conn.set_timeouts(Duration::from_millis(100), Duration::from_secs(10));
        let mut byte = [0u8; 1];
        let err = conn.read(&mut byte).unwrap_err();
        assert_eq!(err, SocketError::Timeout(Duration::from_millis(100)));
        assert_eq!(embedded_io::Error::kind(&err), ErrorKind::TimedOut);
        assert_eq!(
            NetErrorKind::from(err),
            NetErrorKind::Timeout(Duration::from_millis(100))
        );
        let overall = Duration::from_millis(70);
        conn.set_timeouts(Duration::from_secs(10), Duration::from_secs(10));
        conn.set_deadline(Some((Instant::now() + Duration::from_millis(50), overall)));
        assert_eq!(conn.read(&mut byte), Err(SocketError::Timeout(overall)));
        conn.set_deadline(None);

        go_tx.send(()).unwrap();
        handle.join().unwrap();
        assert!(matches!(
            conn.read_exact(&mut byte),
            Err(ReadExactError::UnexpectedEof)
        ));
        assert_eq!(conn.read_ready(), Ok(true));
        assert_eq!(conn.read(&mut byte), Ok(0));
    }

    #[test]
    fn socket_errors_map_to_embedded_io_kinds() {
        use embedded_io::Error as _;
        for (errno, kind) in [
            (Errno::PIPE, ErrorKind::BrokenPipe),
            (Errno::CONNRESET, ErrorKind::ConnectionReset),
            (Errno::CONNABORTED, ErrorKind::ConnectionAborted),
            (Errno::CONNREFUSED, ErrorKind::ConnectionRefused),
            (Errno::TIMEDOUT, ErrorKind::TimedOut),
            (Errno::HOSTUNREACH, ErrorKind::Other),
        ] {
            assert_eq!(SocketError::Os(errno).kind(), kind, "{errno:?}");
            assert_eq!(
                NetErrorKind::from(SocketError::Os(errno)),
                NetErrorKind::Io(errno)
            );
        }
        // Exactly the kinds that make a request on a reused connection resendable.
        assert!(closed_by_peer(SocketError::Os(Errno::PIPE).kind()));
        assert!(closed_by_peer(SocketError::Os(Errno::CONNRESET).kind()));
        assert!(!closed_by_peer(
            SocketError::Timeout(Duration::from_secs(1)).kind()
        ));
        assert!(!closed_by_peer(SocketError::Os(Errno::CONNREFUSED).kind()));
    }

    #[test]
    fn hosts_file_that_is_a_fifo_is_skipped_without_blocking() {
        let (addr, handle) = keep_alive_server(1, |_| ok_response("hi"));
        let dns = dns_knowing("kbs.test", &["127.0.0.1"]);
        let dir = TempDir::new("fifo");
        let fifo = dir.0.join("hosts").into_os_string().into_string().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.as_str(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let url = Url::parse(&format!("http://kbs.test:{}", addr.port())).unwrap();
        let mut c = HttpClient::with_config(
            url,
            ClientConfig {
                hosts_file: fifo,
                resolver: Some(fake_dns::conf(&[&dns])),
                ..config()
            },
        );
        assert_eq!(c.send(&Request::get("/")).unwrap().body(), b"hi");
        drop(c);
        assert_eq!(dns.asked().len(), 2);
        assert_eq!(handle.join().unwrap(), (1, 1));
    }
}
