//! [`TlsError`]: what went wrong, in words an operator can act on. No key material, no
//! payload bytes, ever: certificate errors name dates, names and positions only.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

use rustls::{AlertDescription, CertificateError, Error as RustlsError, PeerIncompatible};

use crate::date::format_unix;

/// A failure of the I/O stream under TLS (or of the peer's side of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoFailure {
    /// The embedded-io kind of the underlying error (`Other` for a closed connection).
    pub kind: embedded_io::ErrorKind,
    /// What happened: the underlying error's text, or what the peer did.
    pub message: String,
    /// Whether trying again (on a new connection) can help.
    pub transient: bool,
}

/// Why a TLS connection failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The stream under TLS failed, or the peer closed it early (mid-handshake, or without
    /// close_notify: a truncated stream).
    Io(IoFailure),
    /// The server's certificate is not acceptable: the text says why (not issued by a
    /// configured CA, expired at DATE, not valid for NAME, a pinned certificate that does
    /// not match, ...).
    Certificate(String),
    /// The TLS protocol failed: the peer sent something invalid or an alert, or no common
    /// version / cipher suite / group exists.
    Protocol {
        /// What happened.
        message: String,
        /// Whether a new connection may succeed (peer misbehaviour, garbage, an alert)
        /// rather than never (no common parameters).
        transient: bool,
    },
    /// The clock cannot be used to check certificate validity (unavailable, or before the
    /// floor this build trusts).
    Clock(String),
    /// The configuration is unusable: bad PEM, no trust configured, an invalid server name.
    Config(String),
}

impl TlsError {
    /// Whether trying again on a new connection can help: I/O failures and peer drops, and
    /// protocol failures the peer caused. Certificate, clock and configuration errors are
    /// not transient (retrying cannot fix them).
    pub fn is_transient(&self) -> bool {
        match self {
            TlsError::Io(io) => io.transient,
            TlsError::Protocol { transient, .. } => *transient,
            TlsError::Certificate(_) | TlsError::Clock(_) | TlsError::Config(_) => false,
        }
    }

    pub(crate) fn io(kind: embedded_io::ErrorKind, message: impl Into<String>) -> TlsError {
        TlsError::Io(IoFailure {
            kind,
            message: message.into(),
            transient: true,
        })
    }

    pub(crate) fn protocol(message: impl Into<String>, transient: bool) -> TlsError {
        TlsError::Protocol {
            message: message.into(),
            transient,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io(io) => write!(f, "TLS connection: {}", io.message),
            TlsError::Certificate(m) => write!(f, "TLS server certificate rejected: {m}"),
            TlsError::Protocol { message, .. } => write!(f, "TLS protocol error: {message}"),
            TlsError::Clock(m) => write!(f, "TLS: clock invalid: {m}"),
            TlsError::Config(m) => write!(f, "TLS configuration: {m}"),
        }
    }
}

impl core::error::Error for TlsError {}

impl embedded_io::Error for TlsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            TlsError::Io(io) => io.kind,
            TlsError::Certificate(_) | TlsError::Clock(_) => {
                embedded_io::ErrorKind::PermissionDenied
            }
            TlsError::Protocol { .. } => embedded_io::ErrorKind::InvalidData,
            TlsError::Config(_) => embedded_io::ErrorKind::InvalidInput,
        }
    }
}

/// The prefix by which our verifier's messages travel through `rustls::Error::General`
/// (rustls without std cannot carry a custom error otherwise).
pub(crate) const CERT_PREFIX: &str = "sealgate-tls certificate: ";

/// A certificate rejection from our verifier, as rustls carries it.
pub(crate) fn cert_error(message: impl fmt::Display) -> RustlsError {
    RustlsError::General(format!("{CERT_PREFIX}{message}"))
}

/// Maps a rustls error to ours.
pub(crate) fn from_rustls(e: RustlsError) -> TlsError {
    match e {
        RustlsError::General(m) => match m.strip_prefix(CERT_PREFIX) {
            Some(rest) => TlsError::Certificate(rest.to_string()),
            None => TlsError::protocol(m, false),
        },
        RustlsError::FailedToGetCurrentTime => TlsError::Clock(
            "the time provider returned no time, or one before this build's floor".to_string(),
        ),
        RustlsError::InvalidCertificate(c) => TlsError::Certificate(certificate_text(&c)),
        RustlsError::AlertReceived(a) => {
            let transient = !matches!(
                a,
                AlertDescription::ProtocolVersion
                    | AlertDescription::HandshakeFailure
                    | AlertDescription::InsufficientSecurity
                    | AlertDescription::NoApplicationProtocol
                    | AlertDescription::UnrecognisedName
            );
            TlsError::protocol(format!("the server sent the alert {a:?}"), transient)
        }
        RustlsError::PeerIncompatible(p) => TlsError::protocol(peer_incompatible(&p), false),
        RustlsError::PeerMisbehaved(p) => {
            TlsError::protocol(format!("the server misbehaved: {p:?}"), true)
        }
        RustlsError::InvalidMessage(m) => {
            TlsError::protocol(format!("the server sent an invalid message: {m:?}"), true)
        }
        RustlsError::InappropriateMessage {
            expect_types,
            got_type,
        } => TlsError::protocol(
            format!("the server sent a {got_type:?} record where {expect_types:?} was expected"),
            true,
        ),
        RustlsError::InappropriateHandshakeMessage {
            expect_types,
            got_type,
        } => TlsError::protocol(
            format!(
                "the server sent a {got_type:?} handshake message where {expect_types:?} was expected"
            ),
            true,
        ),
        RustlsError::DecryptError => {
            TlsError::protocol("a record from the server failed to decrypt", true)
        }
        RustlsError::NoApplicationProtocol => TlsError::protocol(
            "the server agreed no application protocol (ALPN http/1.1 offered)",
            false,
        ),
        other => TlsError::protocol(format!("{other}"), false),
    }
}

fn peer_incompatible(p: &PeerIncompatible) -> String {
    format!("the server shares no acceptable parameters with this client ({p:?})")
}

/// Words for rustls's own certificate errors (the ones our verifier does not produce
/// itself, e.g. a handshake signature that does not verify).
pub(crate) fn certificate_text(c: &CertificateError) -> String {
    match c {
        CertificateError::BadSignature => {
            "a signature made with the certificate's key does not verify".to_string()
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "certificate expired at {} (now {})",
            format_unix(not_after.as_secs()),
            format_unix(time.as_secs())
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "certificate not valid before {} (now {})",
            format_unix(not_before.as_secs()),
            format_unix(time.as_secs())
        ),
        CertificateError::UnknownIssuer => "certificate not issued by a configured CA".to_string(),
        other => format!("{other:?}"),
    }
}
