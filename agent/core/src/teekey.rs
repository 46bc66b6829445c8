//! The ephemeral "tee key": generated per run, its public half bound into the evidence
//! (as the `tee-pubkey` JWK), its private half used once per resource to unwrap the JWE
//! content-encryption key, zeroized when dropped.
//!
//! Kinds, as the upstream attestation agent names them (`tee_key_algorithm`):
//! `ECDH-ES+A256KW-P256` (default), `ECDH-ES+A256KW-P521`, `RSA-OAEP-256`. Trustee cannot
//! encrypt to P-384 keys, so that curve is deliberately absent.

use crate::b64;
use alloc::string::String;
use core::fmt;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use rand_core::CryptoRng;
use serde::Serialize;
use zeroize::Zeroizing;

/// Which kind of tee key to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// EC P-256 with `ECDH-ES+A256KW` (the upstream default).
    #[default]
    EcdhP256,
    /// EC P-521 with `ECDH-ES+A256KW` (feature `p521`).
    #[cfg(feature = "p521")]
    EcdhP521,
    /// RSA with `RSA-OAEP-256` (SHA-256, MGF1-SHA-256); modulus bits 2048, 3072 or 4096.
    #[cfg(feature = "rsa")]
    RsaOaep256 {
        /// Modulus size in bits.
        bits: usize,
    },
}

impl KeyAlgorithm {
    /// Parses the upstream names (`ECDH-ES+A256KW-P256`, `ECDH-ES+A256KW-P521`,
    /// `RSA-OAEP-256`, optionally `RSA-OAEP-256-3072`/`-4096`). P-384 is refused with
    /// the reason, because Trustee accepts the attestation and then fails every resource.
    pub fn parse(name: &str) -> Result<Self, KeyError> {
        match name {
            "ECDH-ES+A256KW-P256" | "P256" | "p256" => Ok(Self::EcdhP256),
            #[cfg(feature = "p521")]
            "ECDH-ES+A256KW-P521" | "P521" | "p521" => Ok(Self::EcdhP521),
            #[cfg(not(feature = "p521"))]
            "ECDH-ES+A256KW-P521" | "P521" | "p521" => Err(KeyError::NotBuiltIn("P-521")),
            "ECDH-ES+A256KW-P384" | "P384" | "p384" => Err(KeyError::P384Unsupported),
            #[cfg(feature = "rsa")]
            "RSA-OAEP-256" | "RSA-OAEP-256-2048" => Ok(Self::RsaOaep256 { bits: 2048 }),
            #[cfg(feature = "rsa")]
            "RSA-OAEP-256-3072" => Ok(Self::RsaOaep256 { bits: 3072 }),
            #[cfg(feature = "rsa")]
            "RSA-OAEP-256-4096" => Ok(Self::RsaOaep256 { bits: 4096 }),
            #[cfg(not(feature = "rsa"))]
            "RSA-OAEP-256" | "RSA-OAEP-256-2048" | "RSA-OAEP-256-3072" | "RSA-OAEP-256-4096" => {
                Err(KeyError::NotBuiltIn("RSA-OAEP-256"))
            }
            _ => Err(KeyError::UnknownAlgorithm),
        }
    }

    /// The JWK/JWE `alg` this key uses.
    pub fn jwe_alg(self) -> &'static str {
        match self {
            Self::EcdhP256 => "ECDH-ES+A256KW",
            #[cfg(feature = "p521")]
            Self::EcdhP521 => "ECDH-ES+A256KW",
            #[cfg(feature = "rsa")]
            Self::RsaOaep256 { .. } => "RSA-OAEP-256",
        }
    }
}

/// Tee key errors. None of them carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not one of the names `KeyAlgorithm::parse` knows.
    UnknownAlgorithm,
    /// P-384 was asked for.
    P384Unsupported,
    /// Key generation failed (RSA prime search).
    Generation,
    /// An imported key is not a valid key of the requested kind.
    InvalidKey,
    /// The algorithm exists but this binary was built without it (a cargo feature).
    NotBuiltIn(&'static str),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownAlgorithm => f.write_str(
                "unknown tee key algorithm (expected ECDH-ES+A256KW-P256, ECDH-ES+A256KW-P521 or RSA-OAEP-256)",
            ),
            Self::P384Unsupported => f.write_str(
                "P-384 tee keys are not supported: Trustee attests them but cannot encrypt resources to them (JweError)",
            ),
            Self::Generation => f.write_str("tee key generation failed"),
            Self::InvalidKey => f.write_str("not a valid private key of the requested kind"),
            Self::NotBuiltIn(alg) => write!(
                f,
                "{alg} tee keys are not built into this binary (cargo feature); use ECDH-ES+A256KW-P256"
            ),
        }
    }
}

/// The public JWK sent as `tee-pubkey`, with exactly the members Trustee keeps
/// (`kty,crv,alg,x,y` for EC, `kty,alg,n,e` for RSA) in the order the upstream client
/// serializes them. Hashing a JWK with any other member would break the binding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PublicJwk {
    /// An EC key.
    Ec {
        /// Always `EC`.
        kty: &'static str,
        /// `P-256` or `P-521`.
        crv: &'static str,
        /// Always `ECDH-ES+A256KW`.
        alg: &'static str,
        /// Big-endian X coordinate, fixed length, base64url.
        x: String,
        /// Big-endian Y coordinate, fixed length, base64url.
        y: String,
    },
    /// An RSA key.
    Rsa {
        /// Always `RSA`.
        kty: &'static str,
        /// Always `RSA-OAEP-256`.
        alg: &'static str,
        /// Modulus, big-endian, base64url.
        n: String,
        /// Public exponent, big-endian, base64url.
        e: String,
    },
}

pub(crate) enum Secret {
    P256(p256::SecretKey),
    #[cfg(feature = "p521")]
    P521(p521::SecretKey),
    #[cfg(feature = "rsa")]
    Rsa(alloc::boxed::Box<rsa::RsaPrivateKey>),
}

/// An ephemeral tee key pair. The private key zeroizes itself on drop (RustCrypto's
/// `SecretKey` and `RsaPrivateKey` are `ZeroizeOnDrop`).
pub struct TeeKey {
    pub(crate) secret: Secret,
    public: PublicJwk,
}

impl fmt::Debug for TeeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeeKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl TeeKey {
    /// Generates a fresh key pair.
    pub fn generate<R: CryptoRng + ?Sized>(
        alg: KeyAlgorithm,
        rng: &mut R,
    ) -> Result<Self, KeyError> {
        let secret = match alg {
            KeyAlgorithm::EcdhP256 => Secret::P256(p256::SecretKey::generate_from_rng(rng)),
            #[cfg(feature = "p521")]
            KeyAlgorithm::EcdhP521 => Secret::P521(p521::SecretKey::generate_from_rng(rng)),
            #[cfg(feature = "rsa")]
            KeyAlgorithm::RsaOaep256 { bits } => {
                let key = rsa::RsaPrivateKey::new(rng, bits).map_err(|_| KeyError::Generation)?;
                Secret::Rsa(alloc::boxed::Box::new(key))
            }
        };
        Ok(Self::from_secret(secret))
    }

    /// Imports an existing EC private key (big-endian scalar, 32 bytes for P-256, 66 for
    /// P-521), e.g. to decrypt a recorded KBS response offline. Agents generate keys.
    pub fn import_ec(alg: KeyAlgorithm, scalar: &[u8]) -> Result<Self, KeyError> {
        let secret = match alg {
            KeyAlgorithm::EcdhP256 => {
                Secret::P256(p256::SecretKey::from_slice(scalar).map_err(|_| KeyError::InvalidKey)?)
            }
            #[cfg(feature = "p521")]
            KeyAlgorithm::EcdhP521 => {
                Secret::P521(p521::SecretKey::from_slice(scalar).map_err(|_| KeyError::InvalidKey)?)
            }
            #[cfg(feature = "rsa")]
            KeyAlgorithm::RsaOaep256 { .. } => return Err(KeyError::InvalidKey),
        };
        Ok(Self::from_secret(secret))
    }

    pub(crate) fn from_secret(secret: Secret) -> Self {
        let public = match &secret {
            Secret::P256(k) => ec_jwk("P-256", k.public_key().to_sec1_point(false).as_bytes()),
            #[cfg(feature = "p521")]
            Secret::P521(k) => ec_jwk("P-521", k.public_key().to_sec1_point(false).as_bytes()),
            #[cfg(feature = "rsa")]
            Secret::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                PublicJwk::Rsa {
                    kty: "RSA",
                    alg: "RSA-OAEP-256",
                    n: b64::url_encode(&k.n_bytes()),
                    e: b64::url_encode(&k.e_bytes()),
                }
            }
        };
        Self { secret, public }
    }

    /// The `tee-pubkey` JWK.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.secret {
            Secret::P256(_) => KeyAlgorithm::EcdhP256,
            #[cfg(feature = "p521")]
            Secret::P521(_) => KeyAlgorithm::EcdhP521,
            #[cfg(feature = "rsa")]
            Secret::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                KeyAlgorithm::RsaOaep256 { bits: k.size() * 8 }
            }
        }
    }
}

/// Builds the EC JWK from an uncompressed SEC1 point (0x04 ‖ X ‖ Y); coordinates keep
/// their leading zeros (Trustee decodes them into fixed-size arrays).
fn ec_jwk(crv: &'static str, sec1: &[u8]) -> PublicJwk {
    let coord = (sec1.len() - 1) / 2;
    PublicJwk::Ec {
        kty: "EC",
        crv,
        alg: "ECDH-ES+A256KW",
        x: b64::url_encode(&sec1[1..1 + coord]),
        y: b64::url_encode(&sec1[1 + coord..]),
    }
}

/// A 32-byte AES-256 key that is wiped when dropped.
pub type Key256 = Zeroizing<[u8; 32]>;
