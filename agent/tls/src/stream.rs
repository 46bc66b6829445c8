//! [`TlsStream`]: rustls 0.23's unbuffered client connection driven over any blocking
//! embedded-io stream. This module is the only one that uses the unbuffered API (rustls's
//! main branch replaced it in 2026; moving to the replacement is a change here only).
//!
//! Buffers are bounded: the incoming buffer starts at one maximal record and grows, only
//! while rustls still needs bytes to complete a handshake message, up to
//! [`MAX_INCOMING`]; decrypted data never exceeds what that buffer held; outgoing data is
//! encrypted one record (at most 16 KiB of plaintext) at a time.

use alloc::format;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use pki_types::ServerName;
use rustls::client::UnbufferedClientConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};
use rustls::{HandshakeKind, ProtocolVersion};
use zeroize::Zeroizing;

use crate::error::{IoFailure, TlsError, from_rustls};
use crate::{TlsClientConfig, date};

/// The largest TLS record on the wire: 5-byte header, 2^14 bytes of plaintext and the
/// most TLS 1.2 allows for expansion (2048; TLS 1.3 allows 256).
pub const MAX_RECORD: usize = 5 + 16_384 + 2048;
/// The incoming buffer's bound: a handshake message of rustls's maximum size (64 KiB),
/// which rustls reassembles in this buffer, plus two records of slack.
pub const MAX_INCOMING: usize = 0x1_0000 + 2 * MAX_RECORD;
/// Plaintext bytes per record written.
const MAX_PLAIN_WRITE: usize = 16_384;

/// A TLS client connection over `IO`. Reads and writes block as `IO` does (its own
/// timeouts and deadlines bound every wait).
pub struct TlsStream<IO: ErrorType> {
    conn: UnbufferedClientConnection,
    io: IO,
    /// Bytes read from `io` not yet consumed by rustls: `incoming[..filled]`. rustls
    /// decrypts in place, so it holds plaintext too: wiped when dropped.
    incoming: Zeroizing<Vec<u8>>,
    filled: usize,
    /// Encoded or encrypted records waiting to be written to `io`.
    outgoing: Vec<u8>,
    /// Decrypted application data not yet returned: `plain[plain_pos..]`. Wiped when
    /// dropped.
    plain: Zeroizing<Vec<u8>>,
    plain_pos: usize,
    /// The handshake is complete and its last flight sent.
    established: bool,
    /// The peer sent close_notify.
    peer_closed: bool,
    /// The connection failed: later calls return this error again.
    failed: Option<TlsError>,
    /// The last error of `io` itself, for callers that want its exact type.
    io_error: Option<<IO as ErrorType>::Error>,
}

/// What one round of `process_tls_records` led to.
enum Step {
    /// Something was done (records encoded or sent, plaintext decrypted): go again.
    Again,
    /// rustls needs more bytes from the peer.
    NeedInput,
    /// The connection is idle and may send application data (the handshake is done).
    Ready,
    /// The requested data or close_notify was encrypted and sent.
    Sent,
    /// The peer sent close_notify (or both sides did).
    PeerClosed,
}

/// What to do when the connection may send application data.
#[derive(Clone, Copy)]
enum Send<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

impl<IO: Read + Write> TlsStream<IO> {
    /// Connects: sends the ClientHello for `server_name` (a DNS name, or an IP address
    /// literal: then no SNI is sent and the certificate must name the address) and
    /// completes the handshake over `io`.
    pub fn connect(
        config: &TlsClientConfig,
        server_name: &str,
        io: IO,
    ) -> Result<TlsStream<IO>, TlsError> {
        let mut stream = TlsStream::new(config, server_name, io)?;
        stream.handshake()?;
        Ok(stream)
    }

    /// A connection that has not started its handshake ([`TlsStream::handshake`] does;
    /// reads and writes do it too). Useful to keep `io` (and its last error) when the
    /// handshake fails.
    pub fn new(
        config: &TlsClientConfig,
        server_name: &str,
        io: IO,
    ) -> Result<TlsStream<IO>, TlsError> {
        // The clock, checked here to name it in the error (rustls only says it has none).
        match (config.now)() {
            None => {
                return Err(TlsError::Clock(
                    "the system clock is unavailable; certificate validity cannot be checked"
                        .to_string(),
                ));
            }
            Some(t) if t.as_secs() < date::CLOCK_FLOOR_UNIX => {
                return Err(TlsError::Clock(format!(
                    "the system clock reads {}, before {} (this build's date); certificate \
                     validity cannot be checked",
                    date::format_unix(t.as_secs()),
                    date::format_unix(date::CLOCK_FLOOR_UNIX)
                )));
            }
            Some(_) => {}
        }
        let name = ServerName::try_from(server_name)
            .map_err(|_| {
                TlsError::Config(format!(
                    "{server_name:?} is neither a DNS name nor an IP address"
                ))
            })?
            .to_owned();
        let conn = UnbufferedClientConnection::new(Arc::clone(&config.inner), name)
            .map_err(from_rustls)?;
        Ok(TlsStream {
            conn,
            io,
            incoming: Zeroizing::new(vec![0; MAX_RECORD]),
            filled: 0,
            outgoing: Vec::new(),
            plain: Zeroizing::new(Vec::with_capacity(MAX_RECORD)),
            plain_pos: 0,
            established: false,
            peer_closed: false,
            failed: None,
            io_error: None,
        })
    }

    /// Completes the handshake (nothing to do when it is complete).
    pub fn handshake(&mut self) -> Result<(), TlsError> {
        self.check()?;
        let r = self.handshake_inner();
        self.fail(r)
    }

    fn handshake_inner(&mut self) -> Result<(), TlsError> {
        if self.established {
            return Ok(());
        }
        loop {
            match self.step(Send::Nothing)? {
                Step::Again | Step::Sent => {}
                // Ready to send and nothing left to flush: the handshake is complete.
                Step::Ready if !self.conn.is_handshaking() => {
                    self.established = true;
                    return Ok(());
                }
                Step::NeedInput | Step::Ready => {
                    if !self.fill()? {
                        return Err(TlsError::io(
                            ErrorKind::ConnectionReset,
                            "the server closed the connection during the handshake",
                        ));
                    }
                }
                // The handshake completed and the server's data and close_notify followed
                // in the same read: the data is in `plain`, the end is for `read`.
                Step::PeerClosed if !self.conn.is_handshaking() => {
                    self.established = true;
                    self.peer_closed = true;
                    return Ok(());
                }
                Step::PeerClosed => {
                    return Err(TlsError::io(
                        ErrorKind::ConnectionReset,
                        "the server sent close_notify during the handshake",
                    ));
                }
            }
        }
    }

    /// One round of rustls's state machine; sends what it produced. `send`: what to
    /// encrypt and send if the connection is ready for application data.
    fn step(&mut self, send: Send<'_>) -> Result<Step, TlsError> {
        let TlsStream {
            conn,
            io,
            incoming,
            filled,
            outgoing,
            plain,
            io_error,
            ..
        } = self;
        let status = conn.process_tls_records(&mut incoming[..*filled]);
        let mut discard = status.discard;
        let state = match status.state {
            Ok(state) => state,
            Err(e) => {
                // The discard applies even then (rustls's contract for any next call; this
                // client makes none: calling rustls again after an error, e.g. to send the
                // alert it queued, trips its internal assertions, so the connection is
                // simply closed).
                incoming.copy_within(discard..*filled, 0);
                *filled -= discard;
                return Err(from_rustls(e));
            }
        };
        let step = match state {
            ConnectionState::EncodeTlsData(mut st) => {
                encode(&mut st, outgoing)?;
                Step::Again
            }
            ConnectionState::TransmitTlsData(st) => {
                write_all(io, outgoing, io_error)?;
                outgoing.clear();
                st.done();
                Step::Again
            }
            ConnectionState::ReadTraffic(mut st) => {
                while let Some(record) = st.next_record() {
                    let record = record.map_err(from_rustls)?;
                    discard += record.discard;
                    plain.extend_from_slice(record.payload);
                }
                Step::Again
            }
            ConnectionState::BlockedHandshake => Step::NeedInput,
            ConnectionState::WriteTraffic(mut st) => {
                let data = match send {
                    Send::Nothing => None,
                    Send::Data(d) => Some(d),
                    Send::CloseNotify => None,
                };
                if matches!(send, Send::Nothing) {
                    Step::Ready
                } else {
                    let mut len = 1024 + data.map_or(0, <[u8]>::len);
                    loop {
                        outgoing.resize(len, 0);
                        let r = match data {
                            Some(d) => st.encrypt(d, outgoing),
                            None => st.queue_close_notify(outgoing),
                        };
                        match r {
                            Ok(n) => {
                                outgoing.truncate(n);
                                break;
                            }
                            Err(EncryptError::InsufficientSize(s)) => len = s.required_size,
                            Err(e) => {
                                return Err(TlsError::protocol(format!("encrypting: {e}"), false));
                            }
                        }
                    }
                    write_all(io, outgoing, io_error)?;
                    outgoing.clear();
                    Step::Sent
                }
            }
            ConnectionState::PeerClosed | ConnectionState::Closed => Step::PeerClosed,
            _ => {
                return Err(TlsError::protocol(
                    "rustls entered a state this client does not handle",
                    false,
                ));
            }
        };
        if discard > 0 {
            incoming.copy_within(discard..*filled, 0);
            *filled -= discard;
        }
        Ok(step)
    }

    /// Reads more bytes from `io` into the incoming buffer. `false` at the end of the
    /// stream.
    fn fill(&mut self) -> Result<bool, TlsError> {
        if self.filled == self.incoming.len() {
            if self.incoming.len() >= MAX_INCOMING {
                return Err(TlsError::protocol(
                    format!(
                        "a TLS record or handshake message from the server exceeds {MAX_INCOMING} bytes"
                    ),
                    false,
                ));
            }
            // A new buffer, so that the old one is wiped (a `resize` could move it unwiped).
            let len = (self.incoming.len() * 2).min(MAX_INCOMING);
            let mut bigger = Zeroizing::new(vec![0; len]);
            bigger[..self.filled].copy_from_slice(&self.incoming[..self.filled]);
            self.incoming = bigger;
        }
        match self.io.read(&mut self.incoming[self.filled..]) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.filled += n;
                Ok(true)
            }
            Err(e) => Err(io_failure(e, &mut self.io_error)),
        }
    }

    fn check(&self) -> Result<(), TlsError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail<T>(&mut self, r: Result<T, TlsError>) -> Result<T, TlsError> {
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        self.handshake_inner()?;
        loop {
            if self.plain_pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.plain_pos);
                buf[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
                self.plain_pos += n;
                if self.plain_pos == self.plain.len() {
                    self.plain.clear();
                    self.plain_pos = 0;
                }
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            match self.step(Send::Nothing)? {
                Step::Again | Step::Sent => {}
                Step::PeerClosed => self.peer_closed = true,
                Step::NeedInput | Step::Ready => {
                    if !self.fill()? {
                        return Err(TlsError::io(
                            ErrorKind::ConnectionAborted,
                            "the server closed the connection without close_notify: the \
                             response is truncated",
                        ));
                    }
                }
            }
        }
    }

    fn write_inner(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        self.handshake_inner()?;
        let chunk = &buf[..buf.len().min(MAX_PLAIN_WRITE)];
        loop {
            match self.step(Send::Data(chunk))? {
                Step::Sent => return Ok(chunk.len()),
                Step::Again => {}
                Step::PeerClosed => {
                    return Err(TlsError::io(
                        ErrorKind::BrokenPipe,
                        "the server closed the connection (close_notify)",
                    ));
                }
                // Not reached after the handshake: the connection can always send then.
                Step::NeedInput | Step::Ready => {
                    return Err(TlsError::protocol("the connection cannot send", false));
                }
            }
        }
    }

    /// Sends close_notify, best effort (errors are ignored: the connection is being given
    /// up anyway). Reads and writes fail afterwards.
    pub fn close(&mut self) {
        if self.failed.is_none() && self.established {
            let _ = self.step(Send::CloseNotify);
            let _ = self.io.flush();
        }
        self.failed = Some(TlsError::io(
            ErrorKind::NotConnected,
            "the TLS connection was closed",
        ));
    }
}

impl<IO: ErrorType> TlsStream<IO> {
    /// The stream under TLS.
    pub fn into_inner(self) -> IO {
        self.io
    }

    /// The stream under TLS (to set its timeouts; reading or writing it directly breaks
    /// the TLS connection).
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The stream under TLS.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The last error of the stream under TLS itself, with its own type (the
    /// [`TlsError::Io`] that reported it carries its kind and text only).
    pub fn take_io_error(&mut self) -> Option<<IO as ErrorType>::Error> {
        self.io_error.take()
    }

    /// The negotiated TLS version (`None` before the handshake).
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Whether the handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// The negotiated cipher suite (`None` before the handshake).
    pub fn cipher_suite(&self) -> Option<rustls::CipherSuite> {
        self.conn.negotiated_cipher_suite().map(|s| s.suite())
    }

    /// The negotiated ALPN protocol, if the server chose one.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }
}

/// Encodes rustls's next handshake or alert message at the end of `outgoing`.
fn encode(
    st: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::client::ClientConnectionData>,
    outgoing: &mut Vec<u8>,
) -> Result<(), TlsError> {
    let start = outgoing.len();
    outgoing.resize(start + 1024, 0);
    loop {
        match st.encode(&mut outgoing[start..]) {
            Ok(n) => {
                outgoing.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(s)) => outgoing.resize(start + s.required_size, 0),
            Err(e) => {
                outgoing.truncate(start);
                return Err(TlsError::protocol(format!("encoding: {e}"), false));
            }
        }
    }
}

/// Writes all of `buf` to `io`: `write` returning 0 is an error (never a panic).
fn write_all<IO: Write>(
    io: &mut IO,
    mut buf: &[u8],
    io_error: &mut Option<IO::Error>,
) -> Result<(), TlsError> {
    while !buf.is_empty() {
        match io.write(buf) {
            Ok(0) => {
                return Err(TlsError::io(
                    ErrorKind::WriteZero,
                    "the connection accepted no more bytes",
                ));
            }
            Ok(n) => buf = &buf[n..],
            Err(e) => return Err(io_failure(e, io_error)),
        }
    }
    Ok(())
}

fn io_failure<E: embedded_io::Error>(e: E, slot: &mut Option<E>) -> TlsError {
    let failure = TlsError::Io(IoFailure {
        kind: e.kind(),
        message: e.to_string(),
        transient: true,
    });
    *slot = Some(e);
    failure
}

impl<IO: ErrorType> ErrorType for TlsStream<IO> {
    type Error = TlsError;
}

impl<IO: Read + Write> Read for TlsStream<IO> {
    /// Reads decrypted bytes: at least one, or 0 once the server sent close_notify. The
    /// end of the stream without close_notify is an error (a truncated response).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        self.check()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.read_inner(buf);
        self.fail(r)
    }
}

impl<IO: Read + Write> Write for TlsStream<IO> {
    /// Encrypts and sends up to 16 KiB of `buf` as one record; returns how much.
    fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        self.check()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.write_inner(buf);
        self.fail(r)
    }

    fn flush(&mut self) -> Result<(), TlsError> {
        self.check()?;
        let r = self
            .io
            .flush()
            .map_err(|e| io_failure(e, &mut self.io_error));
        self.fail(r)
    }
}

#[cfg(test)]
mod tests {
    //! The adapter over an in-memory server: bounds and failure modes that need no real
    //! server (tests/interop.rs has the real handshakes).

    use super::*;
    use crate::TlsTrust;
    use alloc::string::String;

    /// Self-signed P-256, CA:true, DNS:kbs.example (its key is not in the repository).
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUEGkkjOgh7e9JkM91NqxkFbK/reMwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLa2JzLmV4YW1wbGUwIBcNMjYxMjA2MTAwODMyWhgPMjEyNjEx
MTIxMDA4MzJaMBYxFDASBgNVBAMMC2ticy5leGFtcGxlMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEd7+BIrttfwOztqW8XaZEoqM4Jd7UfWpo4EQD2T5ec9aFf+8e
+bq9RrHpNzSy4ke0j+S2iyD0E64vT6EsSgyNQaNrMGkwHQYDVR0OBBYEFElKFPTs
rIR1qnPZ1D1OcFY/+kQpMB8GA1UdIwQYMBaAFElKFPTsrIR1qnPZ1D1OcFY/+kQp
MA8GA1UdEwEB/wQFMAMBAf8wFgYDVR0RBA8wDYILa2JzLmV4YW1wbGUwCgYIKoZI
zj0EAwIDRwAwRAIgDqIaA3PPNmcAg7HMglm3neBqmoxMltV+MSPzavn78noCIFdC
O8Cgo1Vj1zx204Fky/oU0CM73bBVXwXMwIhL7yrd
-----END CERTIFICATE-----
";

    fn rng(buf: &mut [u8]) -> Result<(), ()> {
        buf.fill(0x5a);
        Ok(())
    }

    fn now() -> Option<pki_types::UnixTime> {
        Some(pki_types::UnixTime::since_unix_epoch(
            core::time::Duration::from_secs(1_798_761_600),
        ))
    }

    fn config() -> TlsClientConfig {
        TlsClientConfig::new(&TlsTrust::from_pem(CERT.as_bytes()).unwrap(), rng, now).unwrap()
    }

    /// Reads return `data` in `stride`-byte pieces, then the end of the stream (or an
    /// error); writes are counted.
    struct Server {
        data: Vec<u8>,
        pos: usize,
        stride: usize,
        written: usize,
        fail_at_end: bool,
    }

    #[derive(Debug)]
    struct Broken;

    impl core::fmt::Display for Broken {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("connection reset by the test")
        }
    }

    impl core::error::Error for Broken {}

    impl embedded_io::Error for Broken {
        fn kind(&self) -> ErrorKind {
            ErrorKind::ConnectionReset
        }
    }

    impl ErrorType for Server {
        type Error = Broken;
    }

    impl Read for Server {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
            let n = buf.len().min(self.stride).min(self.data.len() - self.pos);
            if n == 0 && self.fail_at_end {
                return Err(Broken);
            }
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Server {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
            self.written += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Broken> {
            Ok(())
        }
    }

    fn server(data: Vec<u8>, stride: usize) -> Server {
        Server {
            data,
            pos: 0,
            stride,
            written: 0,
            fail_at_end: false,
        }
    }

    fn record(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![typ, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn an_oversized_handshake_message_fails_within_the_bound() {
        // A handshake message announced at 16 MiB - 1, fed in maximal records.
        let mut first = vec![2u8, 0xff, 0xff, 0xff];
        first.resize(16_384, 0);
        let mut data = record(22, &first);
        for _ in 0..8 {
            data.extend(record(22, &[0u8; 16_384]));
        }
        let mut tls = TlsStream::new(&config(), "kbs.example", server(data, 4096)).unwrap();
        let e = tls.handshake().unwrap_err();
        assert!(matches!(e, TlsError::Protocol { .. }), "{e:?}");
        assert!(tls.incoming.len() <= MAX_INCOMING);
        // The ClientHello went out first.
        assert!(tls.get_ref().written > 100);
        // The failure sticks.
        assert_eq!(tls.handshake().unwrap_err(), e);
        let mut buf = [0u8; 8];
        assert_eq!(tls.read(&mut buf).unwrap_err(), e);
    }

    #[test]
    fn a_record_over_the_tls_limit_is_refused() {
        let mut data = vec![22u8, 3, 3, 0x48, 0x01];
        data.resize(5 + 0x4801, 0);
        let mut tls = TlsStream::new(&config(), "kbs.example", server(data, 100_000)).unwrap();
        let e = tls.handshake().unwrap_err();
        assert!(matches!(e, TlsError::Protocol { .. }), "{e:?}");
    }

    #[test]
    fn end_of_stream_and_io_errors_mid_handshake() {
        for stride in [1, 3, 4096] {
            let mut tls =
                TlsStream::new(&config(), "kbs.example", server(vec![22, 3, 3, 0], stride))
                    .unwrap();
            let e = tls.handshake().unwrap_err();
            assert!(e.is_transient());
            assert!(
                e.to_string()
                    .contains("the server closed the connection during the handshake"),
                "{e}"
            );
            assert!(tls.take_io_error().is_none());
        }
        let mut s = server(Vec::new(), 1);
        s.fail_at_end = true;
        let mut tls = TlsStream::new(&config(), "kbs.example", s).unwrap();
        let e = tls.handshake().unwrap_err();
        assert_eq!(
            e,
            TlsError::Io(IoFailure {
                kind: ErrorKind::ConnectionReset,
                message: String::from("connection reset by the test"),
                transient: true,
            })
        );
        // The stream's own error, with its type.
        assert!(tls.take_io_error().is_some());
    }

    #[test]
    fn alerts_and_plaintext_garbage() {
        // handshake_failure (fatal): not worth retrying.
        let mut tls =
            TlsStream::new(&config(), "kbs.example", server(record(21, &[2, 40]), 64)).unwrap();
        match tls.handshake().unwrap_err() {
            TlsError::Protocol { message, transient } => {
                assert!(message.contains("HandshakeFailure"));
                assert!(!transient);
            }
            e => panic!("{e:?}"),
        }
        let mut tls = TlsStream::new(
            &config(),
            "kbs.example",
            server(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(), 64),
        )
        .unwrap();
        let e = tls.handshake().unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::Protocol {
                    transient: true,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn names_and_clock() {
        assert!(matches!(
            TlsStream::new(&config(), "", server(Vec::new(), 1)),
            Err(TlsError::Config(_))
        ));
        for name in ["kbs.example", "127.0.0.1", "::1", "kbs.example."] {
            assert!(
                TlsStream::new(&config(), name, server(Vec::new(), 1)).is_ok(),
                "{name}"
            );
        }
    }
}
