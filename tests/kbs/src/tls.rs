//! HTTPS for the test KBS: rustls's server with its `ring` provider (an independent TLS
//! stack and crypto from the guest's), and the byte stream the HTTP layer reads and writes,
//! plain or TLS.
//!
//! The handshake is done eagerly when a connection is accepted, so that it can be counted
//! (full or resumed, [`crate::Stats`]) and so that the `handshake` fault step can break it
//! (see [`crate::fault`]). Session resumption is rustls's default: a stateful session cache
//! of 256 entries, two TLS 1.3 tickets per full handshake, and TLS 1.2 session ids.

use crate::fault::FaultKind;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// What the server's TLS needs: the certificate chain (leaf first) and its key, in PEM.
#[derive(Clone)]
pub struct TlsSettings {
    /// The server's rustls configuration (shared by every connection, and with it the
    /// session cache).
    pub config: Arc<ServerConfig>,
    /// Only TLS 1.2 is offered.
    pub tls12_only: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("tls12_only", &self.tls12_only)
            .finish()
    }
}

impl TlsSettings {
    /// A server configuration from a PEM chain (leaf first) and a PEM private key (PKCS#8,
    /// SEC1 or PKCS#1). `tls12_only` offers TLS 1.2 alone (a test of the client's 1.2 path).
    /// ALPN: `http/1.1`.
    pub fn from_pem(chain: &[u8], key: &[u8], tls12_only: bool) -> Result<TlsSettings, String> {
        let chain = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate PEM: {e}"))?;
        if chain.is_empty() {
            return Err("no certificate in the PEM".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("key PEM: {e}"))?;
        // rustls 0.23.48 deprecated the ring provider for its lack of post-quantum key
        // exchange; the guest offers none either (X25519, P-256, P-384), and ring builds in
        // a fraction of aws-lc-rs's time.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSettings {
            config: Arc::new(config),
            tls12_only,
        })
    }

    /// Reads the chain and key files (the binary's `--tls-cert`, `--tls-key`).
    pub fn from_files(chain: &str, key: &str, tls12_only: bool) -> Result<TlsSettings, String> {
        let read = |p: &str| std::fs::read(p).map_err(|e| format!("cannot read {p}: {e}"));
        TlsSettings::from_pem(&read(chain)?, &read(key)?, tls12_only)
    }
}

/// A server-side connection: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

/// How a TLS handshake went, for the counters.
pub(crate) enum Handshake {
    /// No TLS on this server.
    None,
    /// Completed (`true`: the session was resumed).
    Done { resumed: bool },
    /// The client gave up, the handshake failed, or a fault broke it: the connection is
    /// finished.
    Failed,
}

impl Stream {
    /// Wraps an accepted connection; with TLS, completes the handshake first (within
    /// `timeout` per wait), or breaks it as `fault` says.
    pub(crate) fn accept(
        tcp: TcpStream,
        tls: Option<&TlsSettings>,
        fault: Option<FaultKind>,
        timeout: Duration,
    ) -> (Option<Stream>, Handshake) {
        let Some(tls) = tls else {
            return (Some(Stream::Plain(tcp)), Handshake::None);
        };
        let Ok(mut conn) = ServerConnection::new(Arc::clone(&tls.config)) else {
            return (None, Handshake::Failed);
        };
        let mut tcp = tcp;
        let _ = tcp.set_read_timeout(Some(timeout));
        if let Some(fault) = fault {
            break_handshake(&mut conn, &mut tcp, fault);
            return (None, Handshake::Failed);
        }
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                // Tell the client why, if rustls has an alert queued, then close.
                let _ = conn.write_tls(&mut tcp);
                return (None, Handshake::Failed);
            }
        }
        // The handshake is complete for the server once its last flight is queued: send
        // it (TLS 1.2's ChangeCipherSpec and Finished, TLS 1.3's session tickets) now, not
        // with the first response, or a TLS 1.2 client waits for it forever.
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).is_err() {
                return (None, Handshake::Failed);
            }
        }
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        (
            Some(Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))),
            Handshake::Done { resumed },
        )
    }

    /// The socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Ends the sending side cleanly: TLS `close_notify`, then FIN.
    pub(crate) fn shutdown_write(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

/// Breaks the handshake the way `fault` says: `reset` (the ClientHello is read, then
/// ECONNRESET), `close-mid-response` (half of the server's first flight, then FIN), `hang`
/// (nothing, until the client closes), `delay:MS` (a handshake that stalls MS, then FIN
/// without a word).
fn break_handshake(conn: &mut ServerConnection, tcp: &mut TcpStream, fault: FaultKind) {
    // Read the ClientHello (at least one record) and process it.
    let mut flight = Vec::new();
    while flight.is_empty() {
        match conn.read_tls(tcp) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if conn.process_new_packets().is_err() {
            return;
        }
        while conn.wants_write() {
            if conn.write_tls(&mut flight).is_err() {
                return;
            }
        }
    }
    match fault {
        FaultKind::Reset => {
            // Closed (when the caller drops it) with SO_LINGER 0: ECONNRESET, no FIN.
            let _ = rustix::net::sockopt::set_socket_linger(&*tcp, Some(Duration::ZERO));
        }
        FaultKind::Hang => {
            let _ = tcp.set_read_timeout(None);
            let mut sink = [0u8; 4096];
            while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
        }
        FaultKind::Delay(d) => {
            std::thread::sleep(d);
            let _ = tcp.shutdown(Shutdown::Both);
        }
        _ => {
            let _ = tcp.write_all(&flight[..flight.len() / 2]);
            let _ = tcp.shutdown(Shutdown::Write);
            let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
            let mut sink = [0u8; 4096];
            while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // A client that closes without close_notify (they all may, HTTP/1.1 knows
                // where its messages end): the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    /// With TLS, every write is sent at once (a record per call: `drip` stays a drip).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => {
                let n = s.write(buf)?;
                s.flush()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
