//! Minimal X.509 v3 certificates signed with ECDSA (P-384/SHA-384 or P-256/SHA-256), built with
//! the [`der_writer`](super::der_writer). Enough for AMD-shaped (ARK/ASK/VCEK) and Intel-shaped
//! (SGX root CA, PCK platform CA, PCK) test chains, no more: no key identifiers, no CRL
//! distribution points, no policies.

use alloc::vec::Vec;

use p256::ecdsa::signature::Signer;

use super::der_writer as w;
use super::keys;
use crate::der::oid;

/// A name attribute (RFC 5280 §4.1.2.4), in the order AMD and Intel write theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    /// commonName (2.5.4.3), UTF8String.
    CommonName,
    /// organizationName (2.5.4.10), UTF8String.
    Organization,
    /// organizationalUnitName (2.5.4.11), UTF8String.
    OrganizationalUnit,
    /// localityName (2.5.4.7), UTF8String.
    Locality,
    /// stateOrProvinceName (2.5.4.8), UTF8String.
    State,
    /// countryName (2.5.4.6), PrintableString.
    Country,
}

impl Attr {
    fn arc(self) -> u64 {
        match self {
            Attr::CommonName => 3,
            Attr::Organization => 10,
            Attr::OrganizationalUnit => 11,
            Attr::Locality => 7,
            Attr::State => 8,
            Attr::Country => 6,
        }
    }
}

/// An X.509 `Name`: one attribute per RDN, in the given order.
pub fn name(attrs: &[(Attr, &str)]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = attrs
        .iter()
        .map(|(attr, value)| {
            let value = match attr {
                Attr::Country => w::printable_string(value),
                _ => w::utf8_string(value),
            };
            w::set(&[&w::sequence(&[&w::oid(&[2, 5, 4, attr.arc()]), &value])])
        })
        .collect();
    let refs: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    w::sequence(&refs)
}

/// One extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// OID arcs.
    pub oid: Vec<u64>,
    /// The critical flag (encoded only when true, as DER requires).
    pub critical: bool,
    /// The `extnValue` content (usually one encoded element; AMD's hwID is raw bytes).
    pub value: Vec<u8>,
}

impl Extension {
    /// A non-critical extension.
    pub fn new(oid: &[u64], value: Vec<u8>) -> Self {
        Extension {
            oid: oid.to_vec(),
            critical: false,
            value,
        }
    }

    /// A critical extension.
    pub fn critical(oid: &[u64], value: Vec<u8>) -> Self {
        Extension {
            oid: oid.to_vec(),
            critical: true,
            value,
        }
    }

    /// basicConstraints (critical): `cA` and an optional path length.
    pub fn basic_constraints(ca: bool, path_len: Option<u64>) -> Self {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if ca {
            parts.push(w::boolean(true));
        }
        if let Some(n) = path_len {
            parts.push(w::integer_u64(n));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Extension::critical(&[2, 5, 29, 19], w::sequence(&refs))
    }

    /// keyUsage (critical) from named bits (0 digitalSignature, 1 nonRepudiation,
    /// 5 keyCertSign, 6 cRLSign).
    pub fn key_usage(bits: u16) -> Self {
        Extension::critical(&[2, 5, 29, 15], w::named_bits(bits))
    }

    fn encode(&self) -> Vec<u8> {
        let oid = w::oid(&self.oid);
        let value = w::octet_string(&self.value);
        if self.critical {
            w::sequence(&[&oid, &w::boolean(true), &value])
        } else {
            w::sequence(&[&oid, &value])
        }
    }
}

/// The key a certificate is issued (signed) with; decides `signatureAlgorithm`.
#[derive(Clone, Copy, Debug)]
pub enum IssuerKey<'a> {
    /// ECDSA P-384, `ecdsa-with-SHA384`.
    P384(&'a p384::ecdsa::SigningKey),
    /// ECDSA P-256, `ecdsa-with-SHA256`.
    P256(&'a p256::ecdsa::SigningKey),
}

/// `ecdsa-with-SHA256` (1.2.840.10045.4.3.2).
pub const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
/// `ecdsa-with-SHA384` (1.2.840.10045.4.3.3).
pub const ECDSA_WITH_SHA384: &[u64] = &[1, 2, 840, 10045, 4, 3, 3];

/// The subject's public key.
#[derive(Clone, Copy, Debug)]
pub enum SubjectKey<'a> {
    /// A P-384 key (secp384r1).
    P384(&'a p384::ecdsa::VerifyingKey),
    /// A P-256 key (prime256v1).
    P256(&'a p256::ecdsa::VerifyingKey),
}

/// `SubjectPublicKeyInfo` of an EC key.
pub fn spki(key: SubjectKey<'_>) -> Vec<u8> {
    let (curve, point) = match key {
        SubjectKey::P384(k) => (oid::SECP384R1, keys::p384_point(k)),
        SubjectKey::P256(k) => (oid::PRIME256V1, keys::p256_point(k)),
    };
    w::sequence(&[
        &w::sequence(&[&w::oid_raw(oid::EC_PUBLIC_KEY), &w::oid_raw(curve)]),
        &w::bit_string(&point),
    ])
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from the fixed-size `r ‖ s`.
pub fn ecdsa_sig_der(fixed: &[u8]) -> Vec<u8> {
    let (r, s) = fixed.split_at(fixed.len() / 2);
    w::sequence(&[&w::integer_unsigned(r), &w::integer_unsigned(s)])
}

/// What goes into a certificate besides the keys.
#[derive(Clone, Debug)]
pub struct CertSpec<'a> {
    /// Serial number (big-endian magnitude; encoded as a positive INTEGER).
    pub serial: &'a [u8],
    /// Issuer `Name` (see [`name`]).
    pub issuer: &'a [u8],
    /// Subject `Name`.
    pub subject: &'a [u8],
    /// notBefore.
    pub not_before: w::Time,
    /// notAfter.
    pub not_after: w::Time,
    /// Extensions, in order (none: the `[3]` element is omitted).
    pub extensions: &'a [Extension],
}

/// A DER certificate for `subject_key`, signed by `issuer_key` (deterministic, RFC 6979).
pub fn certificate(
    spec: &CertSpec<'_>,
    subject_key: SubjectKey<'_>,
    issuer_key: IssuerKey<'_>,
) -> Vec<u8> {
    let alg_oid = match issuer_key {
        IssuerKey::P384(_) => ECDSA_WITH_SHA384,
        IssuerKey::P256(_) => ECDSA_WITH_SHA256,
    };
    let alg = w::sequence(&[&w::oid(alg_oid)]);
    let validity = w::sequence(&[&spec.not_before.encode(), &spec.not_after.encode()]);
    let mut tbs_parts: Vec<Vec<u8>> = alloc::vec![
        w::explicit(0, &w::integer_u64(2)),
        w::integer_unsigned(spec.serial),
        alg.clone(),
        spec.issuer.to_vec(),
        validity,
        spec.subject.to_vec(),
        spki(subject_key),
    ];
    if !spec.extensions.is_empty() {
        let exts: Vec<Vec<u8>> = spec.extensions.iter().map(Extension::encode).collect();
        let refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
        tbs_parts.push(w::explicit(3, &w::sequence(&refs)));
    }
    let refs: Vec<&[u8]> = tbs_parts.iter().map(Vec::as_slice).collect();
    let tbs = w::sequence(&refs);
    let sig = match issuer_key {
        IssuerKey::P384(k) => {
            let s: p384::ecdsa::Signature = k.sign(&tbs);
            ecdsa_sig_der(&s.to_bytes())
        }
        IssuerKey::P256(k) => {
            let s: p256::ecdsa::Signature = k.sign(&tbs);
            ecdsa_sig_der(&s.to_bytes())
        }
    };
    w::sequence(&[&tbs, &alg, &w::bit_string(&sig)])
}

/// PEM (`-----BEGIN CERTIFICATE-----`, base64 in 64-column lines, LF endings).
pub fn pem(der: &[u8]) -> alloc::string::String {
    use base64ct::{Base64, Encoding};
    let b64 = Base64::encode_string(der);
    let mut out = alloc::string::String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
