//! The tee key's private key as PEM, the form upstream's `GetToken("kbs")` returns it in
//! (`{"token", "tee_keypair"}`): PKCS#8 (`PRIVATE KEY`) for EC keys, PKCS#1
//! (`RSA PRIVATE KEY`) for RSA keys. A small fixed DER writer: the structures are
//! constant apart from the key's numbers, so no ASN.1 crate is needed.
//!
//! Every buffer that holds key material is zeroized on drop.

use crate::b64;
use crate::teekey::{Secret, TeeKey};
use alloc::string::String;
use alloc::vec::Vec;
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

/// `id-ecPublicKey` (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp521r1` (1.3.132.0.35).
#[cfg(feature = "p521")]
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One TLV into a zeroizing buffer.
fn tlv(tag: u8, content: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 6));
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let content: Zeroizing<Vec<u8>> = Zeroizing::new(parts.concat());
    tlv(0x30, &content)
}

/// A non-negative INTEGER from big-endian magnitude bytes.
#[cfg(feature = "rsa")]
fn uint(be: &[u8]) -> Zeroizing<Vec<u8>> {
    let skip = be.iter().take_while(|b| **b == 0).count();
    let digits = &be[skip.min(be.len().saturating_sub(1))..];
    let mut content = Zeroizing::new(Vec::with_capacity(digits.len() + 1));
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(0x02, &content)
}

fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    let body = Zeroizing::new(b64::std_encode(der));
    let mut out = Zeroizing::new(String::with_capacity(body.len() + body.len() / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // base64 is ASCII.
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// PKCS#8 wrapping an RFC 5915 ECPrivateKey (without the curve parameters, which the
/// algorithm identifier carries; with the public key).
fn ec_pkcs8(curve: &[u8], scalar: &[u8], sec1_point: &[u8]) -> Zeroizing<String> {
    let version1 = tlv(0x02, &[1]);
    let private = tlv(0x04, scalar);
    let mut bits = Vec::with_capacity(sec1_point.len() + 1);
    bits.push(0);
    bits.extend_from_slice(sec1_point);
    let public = tlv(0xa1, &tlv(0x03, &bits));
    let ec = seq(&[&version1, &private, &public]);
    let algorithm = seq(&[&tlv(0x06, OID_EC_PUBLIC_KEY), &tlv(0x06, curve)]);
    let der = seq(&[&tlv(0x02, &[0]), &algorithm, &tlv(0x04, &ec)]);
    pem("PRIVATE KEY", &der)
}

/// Why the key cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPemError;

impl core::fmt::Display for KeyPemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the tee key lacks its CRT parameters and cannot be exported")
    }
}

impl TeeKey {
    /// The private key as PEM: PKCS#8 for EC keys, PKCS#1 for RSA keys (upstream's
    /// `tee_keypair`). Secret: never log it.
    pub fn private_pem(&self) -> Result<Zeroizing<String>, KeyPemError> {
        match &self.secret {
            Secret::P256(k) => {
                let scalar = Zeroizing::new(k.to_bytes().to_vec());
                let point = k.public_key().to_sec1_point(false);
                Ok(ec_pkcs8(OID_P256, &scalar, point.as_bytes()))
            }
            #[cfg(feature = "p521")]
            Secret::P521(k) => {
                let scalar = Zeroizing::new(k.to_bytes().to_vec());
                let point = k.public_key().to_sec1_point(false);
                Ok(ec_pkcs8(OID_P521, &scalar, point.as_bytes()))
            }
            #[cfg(feature = "rsa")]
            Secret::Rsa(k) => {
                use rsa::traits::{PrivateKeyParts, PublicKeyParts};
                let primes = k.primes();
                let (Some(dp), Some(dq), Some(qinv), [p, q]) =
                    (k.dp(), k.dq(), k.crt_coefficient(), primes)
                else {
                    return Err(KeyPemError);
                };
                let qinv = Zeroizing::new(qinv.to_be_bytes());
                let ints: [Zeroizing<Vec<u8>>; 9] = [
                    uint(&[0]),
                    uint(&k.n_bytes()),
                    uint(&k.e_bytes()),
                    uint(&Zeroizing::new(k.d().to_be_bytes())),
                    uint(&Zeroizing::new(p.as_ref().to_be_bytes())),
                    uint(&Zeroizing::new(q.as_ref().to_be_bytes())),
                    uint(&Zeroizing::new(dp.to_be_bytes())),
                    uint(&Zeroizing::new(dq.to_be_bytes())),
                    uint(&qinv),
                ];
                let parts: Vec<&[u8]> = ints.iter().map(|i| i.as_slice()).collect();
                Ok(pem("RSA PRIVATE KEY", &seq(&parts)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teekey::KeyAlgorithm;

    fn rng() -> crate::rng::FillRng<impl FnMut(&mut [u8])> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        crate::rng::FillRng(move |buf: &mut [u8]| {
            for b in buf {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
        })
    }

    #[test]
    fn p256_is_pkcs8_that_decodes_to_the_same_key() {
        use p256::pkcs8::DecodePrivateKey;
        let key = TeeKey::generate(KeyAlgorithm::EcdhP256, &mut rng()).unwrap();
        let pem = key.private_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
        let Secret::P256(k) = &key.secret else {
            panic!("not P-256")
        };
        assert_eq!(back.to_bytes(), k.to_bytes());
    }

    #[cfg(feature = "rsa")]
    #[test]
    fn rsa_is_pkcs1_that_decodes_to_the_same_key() {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::traits::PrivateKeyParts;
        let key = TeeKey::generate(KeyAlgorithm::RsaOaep256 { bits: 2048 }, &mut rng()).unwrap();
        let pem = key.private_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        let back = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).unwrap();
        let Secret::Rsa(k) = &key.secret else {
            panic!("not RSA")
        };
        assert_eq!(back.d(), k.d());
        assert_eq!(back.primes(), k.primes());
        back.validate().unwrap();
    }

    #[test]
    fn integers_and_lengths_follow_der() {
        let mut v = Vec::new();
        push_len(&mut v, 0x7f);
        push_len(&mut v, 0x80);
        push_len(&mut v, 0x1234);
        assert_eq!(v, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
        #[cfg(feature = "rsa")]
        {
            assert_eq!(uint(&[0, 0, 1]).as_slice(), [2, 1, 1]);
            assert_eq!(uint(&[0x80]).as_slice(), [2, 2, 0, 0x80]);
            assert_eq!(uint(&[0]).as_slice(), [2, 1, 0]);
        }
    }
}
