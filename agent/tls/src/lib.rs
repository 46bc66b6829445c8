//! sealgate's TLS client: rustls 0.23 driven through its unbuffered API over any blocking
//! embedded-io stream, on a crypto provider of its own built from the project's one
//! RustCrypto generation, verifying the server against configured certificates only
//! (each both a trust anchor and an exact pin: see [`TlsTrust`]).
//!
//! no_std + alloc, no unsafe. The guest passes getrandom(2) as the random source and the
//! system clock as the time; both are injected ([`TlsClientConfig::new`]).
//!
//! ```text
//! let trust = TlsTrust::from_pem(kbs_cert_pem)?;
//! let config = TlsClientConfig::new(&trust, rng, now)?;   // once; shares the session cache
//! let mut tls = TlsStream::connect(&config, "kbs.example", tcp)?;
//! tls.write_all(request)?; tls.read(&mut buf)?; tls.close();
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::sync::Arc;
use alloc::vec;

use rustls::client::Resumption;
use rustls::version::{TLS12, TLS13};

mod date;
mod error;
pub mod provider;
mod session;
mod stream;
mod verify;

pub use date::{CLOCK_FLOOR_UNIX, Validity, format_unix, validity as certificate_validity};
pub use error::{IoFailure, TlsError};
pub use provider::{NowFn, RngFn};
pub use rustls;
pub use rustls::pki_types::UnixTime;
pub use stream::{MAX_INCOMING, MAX_RECORD, TlsStream};
pub use verify::{MAX_CHAIN_BYTES, MAX_INTERMEDIATES, MAX_PEM_BYTES, MAX_TRUST_CERTS, TlsTrust};

/// A TLS client configuration: the trust, the provider, ALPN `http/1.1`, TLS 1.3 and 1.2,
/// and an in-memory session cache shared by every connection made with it (so a reconnect
/// resumes). Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct TlsClientConfig {
    pub(crate) inner: Arc<rustls::ClientConfig>,
    pub(crate) now: NowFn,
}

impl TlsClientConfig {
    /// A configuration trusting `trust` (which must not be empty), drawing randomness
    /// from `rng` and the time from `now`.
    pub fn new(trust: &TlsTrust, rng: RngFn, now: NowFn) -> Result<TlsClientConfig, TlsError> {
        TlsClientConfig::with_versions(trust, rng, now, Versions::Both)
    }

    /// As [`TlsClientConfig::new`], restricted to some protocol versions.
    pub fn with_versions(
        trust: &TlsTrust,
        rng: RngFn,
        now: NowFn,
        versions: Versions,
    ) -> Result<TlsClientConfig, TlsError> {
        if trust.is_empty() {
            return Err(TlsError::Config(
                "no certificate configured to trust the server with".into(),
            ));
        }
        let provider = provider::provider(rng).ok_or_else(|| {
            TlsError::Config("too many distinct random sources for the TLS provider".into())
        })?;
        let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
            Versions::Both => &[&TLS13, &TLS12],
            Versions::Tls13Only => &[&TLS13],
            Versions::Tls12Only => &[&TLS12],
        };
        let mut config = rustls::ClientConfig::builder_with_details(
            Arc::new(provider),
            Arc::new(provider::InjectedClock(now)),
        )
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("{e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(trust.verifier()))
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = Resumption::store(Arc::new(session::SessionStore::default()));
        Ok(TlsClientConfig {
            inner: Arc::new(config),
            now,
        })
    }

    /// The rustls configuration (read-only).
    pub fn rustls_config(&self) -> &Arc<rustls::ClientConfig> {
        &self.inner
    }
}

/// Which TLS versions a configuration offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Versions {
    /// TLS 1.3 and TLS 1.2 (the default).
    #[default]
    Both,
    /// TLS 1.3 only.
    Tls13Only,
    /// TLS 1.2 only.
    Tls12Only,
}
