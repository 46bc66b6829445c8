//! Shared test helpers: randomness, clocks, certificates (rcgen), an embedded-io adapter for
//! std TCP streams, and a real rustls server (ring provider) on loopback.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use sealgate_tls::{TlsClientConfig, TlsError, TlsStream, TlsTrust};

/// The random source under test: the OS CSPRNG through std (tests only).
pub fn rng(buf: &mut [u8]) -> Result<(), ()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|_| ())
}

/// The real clock.
pub fn now() -> Option<UnixTime> {
    Some(UnixTime::since_unix_epoch(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?,
    ))
}

/// A rand_core RNG over [`rng`] (RSA key generation).
pub struct TestRng;

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        rng(&mut b).unwrap();
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        rng(&mut b).unwrap();
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rng(dst).unwrap();
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

/// Key types for test certificates.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    P256,
    P384,
    Rsa2048,
}

pub fn key_pair(key: Key) -> KeyPair {
    match key {
        Key::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Key::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        Key::Rsa2048 => {
            use rsa::pkcs8::EncodePrivateKey;
            let k = rsa::RsaPrivateKey::new(&mut TestRng, 2048).unwrap();
            let der = k.to_pkcs8_der().unwrap();
            let alg: &'static SignatureAlgorithm = &rcgen::PKCS_RSA_SHA256;
            KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der.as_bytes()), alg)
                .unwrap()
        }
    }
}

/// Validity of a test certificate.
#[derive(Clone, Copy, Debug)]
pub enum Validity {
    /// 2020-01-01 .. 2099-01-01.
    Now,
    /// 2020-01-01 .. 2021-01-01.
    Expired,
    /// 2090-01-01 .. 2099-01-01.
    Future,
}

fn params(sans: &[&str], cn: &str, validity: Validity) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    for san in sans {
        p.subject_alt_names
            .push(match san.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*san).try_into().unwrap()),
            });
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    let (nb, na) = match validity {
        Validity::Now => ((2020, 1, 1), (2099, 1, 1)),
        Validity::Expired => ((2020, 1, 1), (2021, 1, 1)),
        Validity::Future => ((2090, 1, 1), (2099, 1, 1)),
    };
    p.not_before = rcgen::date_time_ymd(nb.0, nb.1, nb.2);
    p.not_after = rcgen::date_time_ymd(na.0, na.1, na.2);
    p
}

/// A test CA (self-signed, CA:true).
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(key: Key, cn: &str) -> Ca {
        let mut p = params(&[], cn, Validity::Now);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let kp = key_pair(key);
        let cert = p.self_signed(&kp).unwrap();
        Ca {
            pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(p, kp),
        }
    }

    /// A server certificate for `sans`, issued by this CA.
    pub fn issue(&self, key: Key, sans: &[&str], validity: Validity) -> Leaf {
        let mut p = params(sans, sans.first().copied().unwrap_or("leaf"), validity);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let kp = key_pair(key);
        let cert = p.signed_by(&kp, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), self.cert.clone()],
            pem: cert.pem(),
            key: PrivateKeyDer::Pkcs8(kp.serialize_der().into()),
        }
    }
}

/// A server's certificate chain and key.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    /// The end-entity certificate alone.
    pub pem: String,
    pub key: PrivateKeyDer<'static>,
}

/// A self-signed certificate: `ca` sets CA:true (as `openssl req -x509` does by default).
pub fn self_signed(key: Key, sans: &[&str], ca: bool, validity: Validity) -> Leaf {
    let mut p = params(sans, "kbs self-signed", validity);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let kp = key_pair(key);
    let cert = p.self_signed(&kp).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        pem: cert.pem(),
        key: PrivateKeyDer::Pkcs8(kp.serialize_der().into()),
    }
}

/// TLS versions for the test server.
#[derive(Clone, Copy, Debug)]
pub enum Ver {
    Both,
    Tls13,
    Tls12,
}

/// rustls's ring provider (deprecated only for lacking post-quantum groups, which the
/// client under test does not offer either).
#[allow(deprecated)]
pub fn ring() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

pub fn server_config(leaf: &Leaf, ver: Ver) -> rustls::ServerConfig {
    server_config_with(leaf, ver, ring())
}

pub fn server_config_with(
    leaf: &Leaf,
    ver: Ver,
    provider: rustls::crypto::CryptoProvider,
) -> rustls::ServerConfig {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match ver {
        Ver::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Ver::Tls13 => &[&rustls::version::TLS13],
        Ver::Tls12 => &[&rustls::version::TLS12],
    };
    let mut c = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
        .unwrap();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c
}

/// What the test server does on each connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behave {
    /// Handshake, read a request (to the blank line), answer with `body_len` bytes, send
    /// close_notify.
    Serve { body_len: usize },
    /// Answer with the head and part of the body, then close TCP without close_notify.
    Truncate,
    /// Read the ClientHello, then close the connection.
    DropMidHandshake,
    /// Answer the ClientHello with bytes that are not TLS.
    Garbage,
}

/// The body the server sends: a pattern of `len` bytes.
pub fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Starts a server on loopback for `conns` connections. The thread returns the errors
/// its TLS connections ended with.
pub fn serve(
    config: rustls::ServerConfig,
    behave: Behave,
    conns: usize,
) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(config);
    let handle = std::thread::spawn(move || {
        let mut errors = Vec::new();
        for _ in 0..conns {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            tcp.set_write_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            errors.extend(serve_one(&config, behave, tcp));
        }
        errors
    });
    (addr, handle)
}

fn serve_one(
    config: &Arc<rustls::ServerConfig>,
    behave: Behave,
    mut tcp: TcpStream,
) -> Option<String> {
    match behave {
        Behave::DropMidHandshake => {
            let mut buf = [0u8; 512];
            let _ = tcp.read(&mut buf);
            return None;
        }
        Behave::Garbage => {
            let mut buf = [0u8; 512];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return None;
        }
        _ => {}
    }
    let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) => return Some("the client closed the connection".to_string()),
            // The client gave up (e.g. rejected the certificate).
            Err(e) => return Some(e.to_string()),
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    match behave {
        Behave::Serve { body_len } => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\n\r\n");
            let _ = tls.write_all(head.as_bytes());
            let _ = tls.write_all(&body(body_len));
            tls.conn.send_close_notify();
            let _ = tls.flush();
            // Let the client read everything before the socket closes (an unread byte
            // would make the close a reset), without waiting for it for long.
            let _ = tls.sock.shutdown(std::net::Shutdown::Write);
            let _ = tls.sock.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = tls.sock.read(&mut buf);
        }
        Behave::Truncate => {
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
            let _ = tls.flush();
            let _ = tls.sock.shutdown(std::net::Shutdown::Both);
        }
        _ => unreachable!(),
    }
    None
}

/// embedded-io over a std TCP stream.
pub struct Io(pub TcpStream);

#[derive(Debug)]
pub struct IoError(pub std::io::ErrorKind);

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl core::error::Error for IoError {}

impl embedded_io::Error for IoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for Io {
    type Error = IoError;
}

impl embedded_io::Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.0.read(buf).map_err(|e| IoError(e.kind()))
    }
}

impl embedded_io::Write for Io {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.0.write(buf).map_err(|e| IoError(e.kind()))
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush().map_err(|e| IoError(e.kind()))
    }
}

pub fn tcp(addr: SocketAddr) -> Io {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    Io(s)
}

pub fn client_config(pems: &[&str]) -> TlsClientConfig {
    let mut trust = TlsTrust::new();
    for pem in pems {
        trust.add_pem(pem.as_bytes()).unwrap();
    }
    TlsClientConfig::new(&trust, rng, now).unwrap()
}

/// Connects, sends a request, reads the whole response (to close_notify).
pub fn fetch(
    config: &TlsClientConfig,
    name: &str,
    addr: SocketAddr,
) -> Result<(TlsStream<Io>, Vec<u8>), TlsError> {
    use embedded_io::{Read, Write};
    let mut tls = TlsStream::connect(config, name, tcp(addr))?;
    tls.write_all(b"GET /kbs/v0/resource HTTP/1.1\r\nHost: kbs\r\n\r\n")?;
    tls.flush()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok((tls, out))
}

/// The certificate error's text, or a panic naming what happened instead.
pub fn cert_error(r: Result<(TlsStream<Io>, Vec<u8>), TlsError>) -> String {
    match r {
        Err(TlsError::Certificate(m)) => m,
        Err(other) => panic!("expected a certificate error, got {other:?}"),
        Ok(_) => panic!("expected a certificate error, the connection succeeded"),
    }
}
