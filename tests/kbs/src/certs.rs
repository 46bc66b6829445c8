//! Test certificates for HTTPS (rcgen, ECDSA P-256): a CA and the server certificates it
//! issues, valid, expired or not yet valid, for DNS names and IP addresses, and self-signed
//! ones (with `CA:true`, the shape `openssl req -x509` gives by default, which a verifier
//! that takes the certificate as a trust anchor refuses as an end entity).
//!
//! The binary writes them with `test-kbs certs` (the demo and manual runs); tests call
//! [`TestCa`] directly.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// 2000-01-01 to 2090-01-01: valid on any plausible clock.
    Current,
    /// 2019-01-01 to 2020-01-01.
    Expired,
    /// 2090-01-01 to 2099-01-01.
    NotYetValid,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        let (from, to) = match self {
            Validity::Current => ((2000, 1, 1), (2090, 1, 1)),
            Validity::Expired => ((2019, 1, 1), (2020, 1, 1)),
            Validity::NotYetValid => ((2090, 1, 1), (2099, 1, 1)),
        };
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(to.0, to.1, to.2);
    }
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate (for a server: the chain to serve, leaf only).
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// A test CA.
pub struct TestCa {
    /// The CA certificate, PEM: the trust anchor to give the client.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn server_params(names: &[&str], validity: Validity) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("valid subject alt names");
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity.apply(&mut params);
    params
}

impl TestCa {
    /// A new CA (a fresh key) named `name`.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Validity::Current.apply(&mut params);
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid now.
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, Validity::Current)
    }

    /// A server certificate for `names`, valid as `validity` says.
    pub fn issue_with(&self, names: &[&str], validity: Validity) -> Issued {
        let key = KeyPair::generate().expect("P-256 key");
        let cert = server_params(names, validity)
            .signed_by(&key, &self.issuer)
            .expect("signed certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A self-signed server certificate for `names`. With `ca`, it also says `CA:true` (and may
/// sign certificates), as `openssl req -x509` makes them.
pub fn self_signed(names: &[&str], ca: bool) -> Issued {
    let key = KeyPair::generate().expect("P-256 key");
    let mut params = server_params(names, Validity::Current);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    }
    let cert = params.self_signed(&key).expect("self-signed certificate");
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TlsSettings;

    #[test]
    fn issued_certificates_load_into_a_server_configuration() {
        let ca = TestCa::new("test CA");
        for validity in [Validity::Current, Validity::Expired, Validity::NotYetValid] {
            let leaf = ca.issue_with(&["kbs.test", "127.0.0.1"], validity);
            TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes(), false)
                .unwrap();
        }
        let own = self_signed(&["localhost"], true);
        TlsSettings::from_pem(own.cert_pem.as_bytes(), own.key_pem.as_bytes(), true).unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(TlsSettings::from_pem(b"", own.key_pem.as_bytes(), false).is_err());
    }
}
