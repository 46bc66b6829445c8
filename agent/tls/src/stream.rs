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

    /// Self-signed P-256, CA:true, DNS:kbs.example (the tls_client fuzz target's; its key is
    /// not in the repository).
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

    /// Recorded sessions. They answer the ClientHello of the default build (the features
    /// change the suites and signature schemes offered, hence the transcript).
    #[cfg(all(feature = "rsa", feature = "p521"))]
    mod recorded {
        use super::*;

        /// What a rustls server (ring provider) sent in a session with this client configured as
        /// here (fixed randomness and clock, CERT pinned), recorded once: the handshake, its
        /// tickets, the answer `HTTP/1.1 200 OK` with body `hello` to `GET / HTTP/1.1`, and
        /// close_notify. The tls_client fuzz target's seeds are these (fuzz/seed reads them
        /// here). Since the client is deterministic, replaying them completes the session.
        /// A rustls update that changes its ClientHello breaks the replay (this test fails):
        /// then record again, with a new certificate and key (its PEM here and in the fuzz
        /// target; the key is not kept), from a rustls server answering this client.
        const RECORDED_TLS13: &str = "\
            160303009b020000970303fe92bd43e62fcc30986e0afa480b86dd9da0bed118ef8f8f7658bf8aa11d467e205a5a5a5a\
            5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a130200004f003300450017004104dda983aed6df\
            7b949c2266f95ce96931f22b301bf93ac78a319d1d538d710306924a64259f49352a9f9c63a5c130be1623c7ccb766b2\
            5636516614ed7221ccb7002b00020304140303000101170303025741a98dd73efaf3165a89d368c63020f7dd66d89c18\
            e746231ca8cd1026b0618cd3e2c750e3079530a522d1fa38da8aeca11ba8d91f99091b3407de0834030eff045fad2656\
            b01b7397a294c34abc347b3b99c19cadedb55c3796431930fdbd648e2cdf547d17219c1b16a149d04de160246fa840eb\
            a10cb0f36cf84788335d015aa3f3a86846985c708cf78fd2a0e556a76707cfa1447874e6ab2c089cb8b3939ba6ff18e9\
            489b227212cfc48d56f42b749a3b98f8e04df484d9636fd495874c1f6758a60c0330ca35aac1a00fa610f0b481237827\
            e784734525eb53c04d895dd4be44cb37d0e6e840ce62f379e64b6e5c003c84597455454187c477d6721e940c4f61edc8\
            f184a7aecdc3da5f502a195c0090a1059ed11cdf0601767f09700aba0292c2d402ab002404bb97878f2fd050ba82ac3b\
            36093cb819ab802e8d59e519f44eb32af547419efffcb9709f06113ab330d5c8cd15d04b3effa5c7dd01f975f947da0d\
            d6e6caa32d07ed9495361129e389bc09f7930dd9c10aecca762ce16d018cd5b10e46225cbd7fe30cccfd67edc8057346\
            312dfea29f6d00e123653a22a88256d7519b9b168718a7e0320f64d7966791a15f07f596bbe7c4f8025b6568b1a70f8b\
            86ec27d47e4bc4f6e54e62a4f237d325abe041981006b484da7a05189ed3c2e137d067ea40fbf9ba5fa7fe13ef0be816\
            39f42f0700922092b9eca785fdd6210348e2686e965af0c0a933cec5a281aafc6ea0a202641763f0dd061d2a07f1621d\
            ca4933216ff1dbec465418ae82f4bc7e16de7b49f1fec3353effd7ef7735be207acd898905387752bb0a256531de4218\
            379217030300b3ea3612b6effb96d2af0ae9c8243a5c7dd2bda0c67ae04003c0958d4b58703970a052767d690e88779e\
            9da06fd442803e7069ddf660bc4fbbfe65bd116f1f84a65b90554368a87d9cead02903d1c3120e13496dec7f93a9d572\
            7110e71a4c6a277b84762284bbbae77936684b40bc8401bd62239deb151b8c87117ea80ecc1a7508aa20a083cd2b37ce\
            8f51e303d13c2aef617a7836bad1b94dbdcce72cded55914fa82f0f024eb35c9f2ac042ce87a99f4f694170303003c78\
            f026c5c619d3fd41e7dc4e2cdcaf5b25d89be9970904a42751e01b627d2993ac2e7c18c4fec1bfe7ea3c0963076a466b\
            66d2bae516b6e4a2ded24b17030300132b3190af2e0967accfef5eef346d207d9081df\
        ";
        /// The same with a TLS 1.2-only server.
        const RECORDED_TLS12: &str = "\
            16030302a8020000640303bc68458568d041d43187986fa4061cd50d9585015256a9a58902c667dbe38e9e20deefa3be\
            6cf08e6db7e71291630eb5d33fc1d89e5b5f39076b0d912442d7ad3bc02c00001c00000000ff010001000010000b0009\
            08687474702f312e31001700000b0001a40001a100019e3082019a30820141a00302010202141069248ce821edef4990\
            cf7536ac6415b2bfade3300a06082a8648ce3d04030230163114301206035504030c0b6b62732e6578616d706c653020\
            170d3236313230363130303833325a180f32313236313131323130303833325a30163114301206035504030c0b6b6273\
            2e6578616d706c653059301306072a8648ce3d020106082a8648ce3d0301070342000477bf8122bb6d7f03b3b6a5bc5d\
            a644a2a33825ded47d6a68e04403d93e5e73d6857fef1ef9babd46b1e93734b2e247b48fe4b68b20f413ae2f4fa12c4a\
            0c8d41a36b3069301d0603551d0e04160414494a14f4ecac8475aa73d9d43d4e70563ffa4429301f0603551d23041830\
            168014494a14f4ecac8475aa73d9d43d4e70563ffa4429300f0603551d130101ff040530030101ff30160603551d1104\
            0f300d820b6b62732e6578616d706c65300a06082a8648ce3d040302034700304402200ea21a0373cf36670083b1cc82\
            59b79de06a9a8c4c96d57e3123f36af9fbf27a022057423bc0a0a35563d73c76d38164cbfa14d0233bddb0555f05ccc0\
            884bef2add0c0000900300174104b65d5aed77909567f7b685d49fa6df2e72edc45b80aaad2ff3bb64c9b90d5c2e9e1a\
            d2ade71ed4220ef78e25f2818aee08f90261603472b8279d0c85bdb2b610040300473045022045b66ad4d3488816c93b\
            9fad2bc626b5a28f4ab6b95aaae3bc8644db9b7deea8022100e8bdfc79a91960ed012640ee09325685e1226e5bff64ff\
            d589469e202e6136840e0000001403030001011603030028738edc3c94bf4aeda441280c089d80dfb4ae28941f7ab066\
            cbb6ff97fa478527d3fe645bead1499c1703030043738edc3c94bf4aece2c790a6535587e75c0dfe9e3014c30d4896c6\
            84d29b352433e2497bf54c9ef8b152b734ce1c67aa4c91c7cb40c1d1d9919641a257cc1b1b280f74150303001a738edc\
            3c94bf4aefad39f2fbdd239c2dc6beceee1cacd86d9441\
        ";

        fn unhex(s: &str) -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        }

        #[test]
        fn recorded_sessions_replay_in_any_read_size() {
            for (recording, version) in [
                (RECORDED_TLS13, ProtocolVersion::TLSv1_3),
                (RECORDED_TLS12, ProtocolVersion::TLSv1_2),
            ] {
                // Everything in one read (the server's answer and close_notify arrive with the
                // end of the handshake), one byte at a time, and in between.
                for stride in [usize::MAX, 1, 700] {
                    let data = unhex(recording);
                    let mut tls =
                        TlsStream::connect(&config(), "kbs.example", server(data, stride)).unwrap();
                    assert_eq!(tls.protocol_version(), Some(version));
                    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
                    tls.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
                    let mut out = Vec::new();
                    let mut buf = [0u8; 7];
                    loop {
                        let n = tls.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                    assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
                    assert_eq!(tls.read(&mut buf).unwrap(), 0);
                    // Cut anywhere before close_notify: an error, never a short success.
                    let data = unhex(recording);
                    for cut in (0..data.len() - 24).step_by(97) {
                        let mut tls = match TlsStream::connect(
                            &config(),
                            "kbs.example",
                            server(data[..cut].to_vec(), stride),
                        ) {
                            Ok(tls) => tls,
                            Err(e) => {
                                assert!(e.is_transient(), "{e}");
                                continue;
                            }
                        };
                        let mut out = Vec::new();
                        let r = loop {
                            match tls.read(&mut buf) {
                                Ok(0) => break Ok(()),
                                Ok(n) => out.extend_from_slice(&buf[..n]),
                                Err(e) => break Err(e),
                            }
                        };
                        assert!(r.is_err(), "cut at {cut}: {out:?}");
                    }
                }
            }
        }
    }

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
