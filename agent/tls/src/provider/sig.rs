//! Signature verification for certificates (webpki) and handshake signatures: ECDSA on
//! P-256 / P-384 (P-521 with the `p521` feature), RSA PKCS#1 v1.5 and PSS (with the `rsa`
//! feature). Verification only: the client has no key of its own.

use pki_types::alg_id;
use pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use rustls::SignatureScheme;
use rustls::crypto::WebPkiSupportedAlgorithms;
use sha2::Digest;

/// A hash for a signature.
#[derive(Clone, Copy, Debug)]
enum Sha {
    S256,
    S384,
    #[cfg_attr(not(any(feature = "rsa", feature = "p521")), allow(dead_code))]
    S512,
}

impl Sha {
    /// The digest of `m` in a buffer of 64 bytes, and its length.
    fn digest(self, m: &[u8]) -> ([u8; 64], usize) {
        let mut out = [0u8; 64];
        let len = match self {
            Sha::S256 => {
                out[..32].copy_from_slice(&sha2::Sha256::digest(m));
                32
            }
            Sha::S384 => {
                out[..48].copy_from_slice(&sha2::Sha384::digest(m));
                48
            }
            Sha::S512 => {
                out.copy_from_slice(&sha2::Sha512::digest(m));
                64
            }
        };
        (out, len)
    }
}

#[derive(Clone, Copy, Debug)]
enum EcCurve {
    P256,
    P384,
    #[cfg(feature = "p521")]
    P521,
}

/// ECDSA with a DER (`Ecdsa-Sig-Value`) signature, as X.509 and TLS carry it.
#[derive(Debug)]
pub struct Ecdsa {
    curve: EcCurve,
    hash: Sha,
    key_alg: AlgorithmIdentifier,
    sig_alg: AlgorithmIdentifier,
}

macro_rules! ecdsa_verify {
    ($krate:ident, $pk:expr, $prehash:expr, $sig:expr) => {{
        use $krate::ecdsa::signature::hazmat::PrehashVerifier;
        let key =
            $krate::ecdsa::VerifyingKey::from_sec1_bytes($pk).map_err(|_| InvalidSignature)?;
        let sig = $krate::ecdsa::DerSignature::try_from($sig).map_err(|_| InvalidSignature)?;
        key.verify_prehash($prehash, &sig)
            .map_err(|_| InvalidSignature)
    }};
}

impl SignatureVerificationAlgorithm for Ecdsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let (digest, len) = self.hash.digest(message);
        let prehash = &digest[..len];
        match self.curve {
            EcCurve::P256 => ecdsa_verify!(p256, public_key, prehash, signature),
            EcCurve::P384 => ecdsa_verify!(p384, public_key, prehash, signature),
            #[cfg(feature = "p521")]
            EcCurve::P521 => ecdsa_verify!(p521, public_key, prehash, signature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.key_alg
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.sig_alg
    }
}

/// ECDSA P-256 with SHA-256.
pub static ECDSA_P256_SHA256: Ecdsa = Ecdsa {
    curve: EcCurve::P256,
    hash: Sha::S256,
    key_alg: alg_id::ECDSA_P256,
    sig_alg: alg_id::ECDSA_SHA256,
};
/// ECDSA P-256 with SHA-384 (certificates only; TLS 1.3 pairs curve and hash).
pub static ECDSA_P256_SHA384: Ecdsa = Ecdsa {
    curve: EcCurve::P256,
    hash: Sha::S384,
    key_alg: alg_id::ECDSA_P256,
    sig_alg: alg_id::ECDSA_SHA384,
};
/// ECDSA P-384 with SHA-256 (certificates only).
pub static ECDSA_P384_SHA256: Ecdsa = Ecdsa {
    curve: EcCurve::P384,
    hash: Sha::S256,
    key_alg: alg_id::ECDSA_P384,
    sig_alg: alg_id::ECDSA_SHA256,
};
/// ECDSA P-384 with SHA-384.
pub static ECDSA_P384_SHA384: Ecdsa = Ecdsa {
    curve: EcCurve::P384,
    hash: Sha::S384,
    key_alg: alg_id::ECDSA_P384,
    sig_alg: alg_id::ECDSA_SHA384,
};
/// ECDSA P-521 with SHA-512.
#[cfg(feature = "p521")]
pub static ECDSA_P521_SHA512: Ecdsa = Ecdsa {
    curve: EcCurve::P521,
    hash: Sha::S512,
    key_alg: alg_id::ECDSA_P521,
    sig_alg: alg_id::ECDSA_SHA512,
};

/// RSA signature verification, 2048 to 8192-bit moduli (webpki's usual bounds), public
/// exponents as the rsa crate allows (3 .. 2^33-1).
#[cfg(feature = "rsa")]
#[derive(Debug)]
pub struct Rsa {
    pss: bool,
    hash: Sha,
    sig_alg: AlgorithmIdentifier,
}

#[cfg(feature = "rsa")]
mod rsa_impl {
    use super::*;
    use rsa::{BoxedUint, RsaPublicKey};

    /// Smallest accepted modulus, in bits.
    const MIN_BITS: usize = 2048;
    /// Largest accepted modulus, in bits.
    const MAX_BITS: usize = 8192;

    /// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
    pub(crate) fn rsa_public_key(der: &[u8]) -> Option<RsaPublicKey> {
        let (tag, body, rest) = crate::date::tlv(der)?;
        if tag != 0x30 || !rest.is_empty() {
            return None;
        }
        let (tag, n, rest) = crate::date::tlv(body)?;
        if tag != 0x02 {
            return None;
        }
        let (tag, e, rest) = crate::date::tlv(rest)?;
        if tag != 0x02 || !rest.is_empty() {
            return None;
        }
        let n = positive(n)?;
        let e = positive(e)?;
        if e.len() > 8 || n.len() * 8 > MAX_BITS {
            return None;
        }
        let n = BoxedUint::from_be_slice(n, (n.len() * 8) as u32).ok()?;
        let e = BoxedUint::from_be_slice(e, 64).ok()?;
        RsaPublicKey::new_with_size_limits(n, e, MIN_BITS..=MAX_BITS).ok()
    }

    /// A DER INTEGER's magnitude: positive, leading zero byte stripped.
    fn positive(i: &[u8]) -> Option<&[u8]> {
        match i {
            [] => None,
            [b, ..] if b & 0x80 != 0 => None,
            [0, rest @ ..] if !rest.is_empty() => Some(rest),
            _ => Some(i),
        }
    }

    impl SignatureVerificationAlgorithm for Rsa {
        fn verify_signature(
            &self,
            public_key: &[u8],
            message: &[u8],
            signature: &[u8],
        ) -> Result<(), InvalidSignature> {
            let key = rsa_public_key(public_key).ok_or(InvalidSignature)?;
            let (digest, len) = self.hash.digest(message);
            let hashed = &digest[..len];
            let result = match (self.pss, self.hash) {
                (false, Sha::S256) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), hashed, signature)
                }
                (false, Sha::S384) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), hashed, signature)
                }
                (false, Sha::S512) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), hashed, signature)
                }
                // TLS and webpki require the salt to be as long as the hash.
                (true, Sha::S256) => key.verify(rsa::Pss::<sha2::Sha256>::new(), hashed, signature),
                (true, Sha::S384) => key.verify(rsa::Pss::<sha2::Sha384>::new(), hashed, signature),
                (true, Sha::S512) => key.verify(rsa::Pss::<sha2::Sha512>::new(), hashed, signature),
            };
            result.map_err(|_| InvalidSignature)
        }

        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            alg_id::RSA_ENCRYPTION
        }

        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            self.sig_alg
        }
    }
}

#[cfg(all(feature = "rsa", test))]
pub(crate) use rsa_impl::rsa_public_key;

macro_rules! rsa_alg {
    ($name:ident, $pss:expr, $hash:expr, $alg:expr, $doc:expr) => {
        #[doc = $doc]
        #[cfg(feature = "rsa")]
        pub static $name: Rsa = Rsa {
            pss: $pss,
            hash: $hash,
            sig_alg: $alg,
        };
    };
}

rsa_alg!(
    RSA_PKCS1_SHA256,
    false,
    Sha::S256,
    alg_id::RSA_PKCS1_SHA256,
    "RSA PKCS#1 v1.5 with SHA-256."
);
rsa_alg!(
    RSA_PKCS1_SHA384,
    false,
    Sha::S384,
    alg_id::RSA_PKCS1_SHA384,
    "RSA PKCS#1 v1.5 with SHA-384."
);
rsa_alg!(
    RSA_PKCS1_SHA512,
    false,
    Sha::S512,
    alg_id::RSA_PKCS1_SHA512,
    "RSA PKCS#1 v1.5 with SHA-512."
);
rsa_alg!(
    RSA_PSS_SHA256,
    true,
    Sha::S256,
    alg_id::RSA_PSS_SHA256,
    "RSA-PSS with SHA-256 (MGF1 SHA-256, salt 32)."
);
rsa_alg!(
    RSA_PSS_SHA384,
    true,
    Sha::S384,
    alg_id::RSA_PSS_SHA384,
    "RSA-PSS with SHA-384 (MGF1 SHA-384, salt 48)."
);
rsa_alg!(
    RSA_PSS_SHA512,
    true,
    Sha::S512,
    alg_id::RSA_PSS_SHA512,
    "RSA-PSS with SHA-512 (MGF1 SHA-512, salt 64)."
);

/// Every algorithm, for certificate chains.
pub static ALL: &[&dyn SignatureVerificationAlgorithm] = &[
    &ECDSA_P256_SHA256,
    &ECDSA_P256_SHA384,
    &ECDSA_P384_SHA256,
    &ECDSA_P384_SHA384,
    #[cfg(feature = "p521")]
    &ECDSA_P521_SHA512,
    #[cfg(feature = "rsa")]
    &RSA_PKCS1_SHA256,
    #[cfg(feature = "rsa")]
    &RSA_PKCS1_SHA384,
    #[cfg(feature = "rsa")]
    &RSA_PKCS1_SHA512,
    #[cfg(feature = "rsa")]
    &RSA_PSS_SHA256,
    #[cfg(feature = "rsa")]
    &RSA_PSS_SHA384,
    #[cfg(feature = "rsa")]
    &RSA_PSS_SHA512,
];

/// The TLS signature schemes offered, best first, and how each verifies.
pub static MAPPING: &[(SignatureScheme, &[&dyn SignatureVerificationAlgorithm])] = &[
    (
        SignatureScheme::ECDSA_NISTP384_SHA384,
        &[&ECDSA_P384_SHA384, &ECDSA_P256_SHA384],
    ),
    (
        SignatureScheme::ECDSA_NISTP256_SHA256,
        &[&ECDSA_P256_SHA256, &ECDSA_P384_SHA256],
    ),
    #[cfg(feature = "p521")]
    (
        SignatureScheme::ECDSA_NISTP521_SHA512,
        &[&ECDSA_P521_SHA512],
    ),
    #[cfg(feature = "rsa")]
    (SignatureScheme::RSA_PSS_SHA512, &[&RSA_PSS_SHA512]),
    #[cfg(feature = "rsa")]
    (SignatureScheme::RSA_PSS_SHA384, &[&RSA_PSS_SHA384]),
    #[cfg(feature = "rsa")]
    (SignatureScheme::RSA_PSS_SHA256, &[&RSA_PSS_SHA256]),
    #[cfg(feature = "rsa")]
    (SignatureScheme::RSA_PKCS1_SHA512, &[&RSA_PKCS1_SHA512]),
    #[cfg(feature = "rsa")]
    (SignatureScheme::RSA_PKCS1_SHA384, &[&RSA_PKCS1_SHA384]),
    #[cfg(feature = "rsa")]
    (SignatureScheme::RSA_PKCS1_SHA256, &[&RSA_PKCS1_SHA256]),
];

/// The algorithms as rustls takes them.
pub static SUPPORTED: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: ALL,
    mapping: MAPPING,
};
