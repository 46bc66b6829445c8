//! Server verification: [`TlsTrust`] (the configured certificates) and the rustls verifier
//! built on it.
//!
//! **The rule.** Every configured certificate is both a trust anchor and a pin:
//! - *pin*: when the server's end-entity certificate equals a configured certificate byte
//!   for byte, the chain is not built: that certificate is accepted as the server's, even a
//!   self-signed `CA:true` one (which webpki rejects as an end entity: `CaUsedAsEndEntity`).
//!   Its validity period is still checked against the clock, the server name (DNS name or
//!   IP address) must still be among its subject alternative names, and the handshake
//!   signature must still verify with its key (rustls checks that separately). A pin
//!   relaxes exactly one thing: the chain and its `CA:false` requirement.
//! - *anchor*: otherwise the chain must lead, with rustls-webpki's path building, from the
//!   end-entity certificate through the intermediates the server sent to one of the
//!   configured certificates, for TLS server authentication (EKU), every certificate
//!   valid now, and the end-entity certificate valid for the server name.
//!
//! No other roots exist: nothing from the system, nothing built in.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

use crate::date::{format_unix, validity};
use crate::error::{TlsError, cert_error};
use crate::provider::sig;

/// Largest PEM input accepted by [`TlsTrust::add_pem`] (a public CA bundle is about 220
/// KiB). Source: not measured; a bound for a configured file.
pub const MAX_PEM_BYTES: usize = 1024 * 1024;
/// Most certificates a [`TlsTrust`] holds. Source: not measured; public bundles hold ~150.
pub const MAX_TRUST_CERTS: usize = 512;
/// Most intermediate certificates a server may send. Source: not measured; public chains
/// have 1 or 2.
pub const MAX_INTERMEDIATES: usize = 6;
/// Largest certificate chain (end entity and intermediates, DER bytes) accepted. Source:
/// not measured; a typical chain is 3-6 KiB, RSA-4096 chains about 8 KiB.
pub const MAX_CHAIN_BYTES: usize = 32 * 1024;

/// The configured certificates: each is a trust anchor and a pin (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct TlsTrust {
    certs: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl TlsTrust {
    /// No certificates (a [`crate::TlsClientConfig`] refuses an empty trust).
    pub fn new() -> TlsTrust {
        TlsTrust::default()
    }

    /// The certificates of `pem` (one or more `CERTIFICATE` blocks; other blocks are
    /// ignored).
    pub fn from_pem(pem: &[u8]) -> Result<TlsTrust, TlsError> {
        let mut trust = TlsTrust::new();
        trust.add_pem(pem)?;
        Ok(trust)
    }

    /// Adds the certificates of `pem`. Fails, adding nothing, when the PEM is malformed,
    /// holds no certificate, holds one that cannot be a trust anchor, or is too large.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<(), TlsError> {
        if pem.len() > MAX_PEM_BYTES {
            return Err(TlsError::Config(format!(
                "the PEM has {} bytes, more than the {MAX_PEM_BYTES} accepted",
                pem.len()
            )));
        }
        let mut certs = Vec::new();
        let mut anchors = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let der = item.map_err(|e| {
                TlsError::Config(format!(
                    "certificate {} of the PEM: {}",
                    i + 1,
                    pem_error(&e)
                ))
            })?;
            if self.certs.len() + certs.len() >= MAX_TRUST_CERTS {
                return Err(TlsError::Config(format!(
                    "more than {MAX_TRUST_CERTS} certificates configured"
                )));
            }
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| {
                    TlsError::Config(format!(
                        "certificate {} of the PEM is not a usable X.509 certificate ({e:?})",
                        i + 1
                    ))
                })?
                .to_owned();
            anchors.push(anchor);
            certs.push(der);
        }
        if certs.is_empty() {
            return Err(TlsError::Config(
                "the PEM holds no CERTIFICATE block".to_string(),
            ));
        }
        self.certs.extend(certs);
        self.anchors.extend(anchors);
        Ok(())
    }

    /// Whether no certificate is configured.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// How many certificates are configured.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub(crate) fn verifier(&self) -> Verifier {
        Verifier {
            certs: self.certs.clone(),
            anchors: self.anchors.clone(),
        }
    }
}

/// The rustls verifier over a [`TlsTrust`].
#[derive(Debug)]
pub(crate) struct Verifier {
    certs: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl Verifier {
    /// Words for a failed chain verification.
    fn explain(&self, e: webpki::Error, ee: &webpki::EndEntityCert<'_>) -> String {
        use webpki::Error as W;
        let n = self.certs.len();
        // A configured certificate with the server certificate's subject: the server's
        // certificate was meant to be that one (a pin), but differs from it.
        let same_subject = self.certs.iter().position(|c| {
            webpki::EndEntityCert::try_from(c).is_ok_and(|c| c.subject() == ee.subject())
        });
        match e {
            W::UnknownIssuer | W::CaUsedAsEndEntity if same_subject.is_some() => format!(
                "pinned certificate does not match: the server's certificate has the subject \
                 of configured certificate {} but is not that certificate",
                same_subject.unwrap_or(0) + 1
            ),
            W::CaUsedAsEndEntity if ee.subject() == ee.issuer() => format!(
                "self-signed CA certificate is not pinned: the server presented a self-signed \
                 CA:true certificate that equals none of the {n} configured certificates"
            ),
            W::CaUsedAsEndEntity => format!(
                "the server presented a CA:true certificate as its own, and it equals none of \
                 the {n} configured certificates"
            ),
            W::UnknownIssuer => format!(
                "certificate not issued by a configured CA: no chain leads to the {n} \
                 configured certificates, and the server's certificate equals none of them"
            ),
            W::CertExpired { time, not_after } => format!(
                "certificate expired at {} (now {})",
                format_unix(not_after.as_secs()),
                format_unix(time.as_secs())
            ),
            W::CertNotValidYet { time, not_before } => format!(
                "certificate not valid before {} (now {})",
                format_unix(not_before.as_secs()),
                format_unix(time.as_secs())
            ),
            W::CertNotValidForName(ctx) => name_text(&ctx),
            W::InvalidSignatureForPublicKey => {
                "a certificate signature in the server's chain does not verify".to_string()
            }
            W::RequiredEkuNotFoundContext(_) => {
                "certificate not valid for TLS server authentication (extended key usage)"
                    .to_string()
            }
            W::UnsupportedSignatureAlgorithmContext(_)
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => format!(
                "the server's chain uses a signature algorithm this client does not support ({e:?})"
            ),
            other => format!("the server's chain does not verify ({other:?})"),
        }
    }
}

/// A PEM error in fixed words: pki-types' own text quotes the offending line, which could be
/// long, or a line of a private key someone put in the file.
fn pem_error(e: &pki_types::pem::Error) -> &'static str {
    use pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line",
        E::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        E::Base64Decode(_) => "invalid base64",
        E::SectionTooLarge => "a section is too large",
        _ => "malformed PEM",
    }
}

/// Names the certificate presents, shown in an error: at most this many, each cut to
/// [`MAX_NAME_CHARS`].
const MAX_NAMES_SHOWN: usize = 8;
const MAX_NAME_CHARS: usize = 80;

fn name_text(ctx: &webpki::InvalidNameContext) -> String {
    let name = match &ctx.expected {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(pki_types::IpAddr::V4(ip)) => {
            format!("{}", core::net::Ipv4Addr::from(*ip.as_ref()))
        }
        ServerName::IpAddress(pki_types::IpAddr::V6(ip)) => {
            format!("{}", core::net::Ipv6Addr::from(*ip.as_ref()))
        }
        other => format!("{other:?}"),
    };
    let mut presented = ctx
        .presented
        .iter()
        .take(MAX_NAMES_SHOWN)
        .map(|n| n.chars().take(MAX_NAME_CHARS).collect::<String>())
        .collect::<Vec<_>>()
        .join(", ");
    if ctx.presented.is_empty() {
        presented = "none".to_string();
    } else if ctx.presented.len() > MAX_NAMES_SHOWN {
        presented.push_str(&format!(
            " and {} more",
            ctx.presented.len() - MAX_NAMES_SHOWN
        ));
    }
    format!("certificate not valid for name {name} (it names: {presented})")
}

fn check_name(ee: &webpki::EndEntityCert<'_>, name: &ServerName<'_>) -> Result<(), Error> {
    ee.verify_is_valid_for_subject_name(name)
        .map_err(|e| match e {
            webpki::Error::CertNotValidForName(ctx) => cert_error(name_text(&ctx)),
            other => cert_error(format!(
                "the certificate's names cannot be read ({other:?})"
            )),
        })
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let bytes = end_entity.len() + intermediates.iter().map(|c| c.len()).sum::<usize>();
        if intermediates.len() > MAX_INTERMEDIATES || bytes > MAX_CHAIN_BYTES {
            return Err(cert_error(format!(
                "the server sent {} certificates, {bytes} bytes: more than the {} / {MAX_CHAIN_BYTES} accepted",
                intermediates.len() + 1,
                MAX_INTERMEDIATES + 1
            )));
        }
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
            cert_error(format!("the server's certificate cannot be parsed ({e:?})"))
        })?;

        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            // Pin: this exact certificate was configured.
            let v = validity(end_entity).ok_or_else(|| {
                cert_error("the server's certificate has no readable validity period")
            })?;
            let t = now.as_secs();
            if t < v.not_before {
                return Err(cert_error(format!(
                    "certificate not valid before {} (now {}; pinned certificate)",
                    format_unix(v.not_before),
                    format_unix(t)
                )));
            }
            if t > v.not_after {
                return Err(cert_error(format!(
                    "certificate expired at {} (now {}; pinned certificate)",
                    format_unix(v.not_after),
                    format_unix(t)
                )));
            }
            check_name(&ee, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }

        ee.verify_for_usage(
            sig::ALL,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| cert_error(self.explain(e, &ee)))?;
        check_name(&ee, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &sig::SUPPORTED)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &sig::SUPPORTED)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        sig::SUPPORTED.supported_schemes()
    }
}
