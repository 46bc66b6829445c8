//! ECDHE key exchange on secp256r1 and secp384r1 (p256 / p384 0.14), uncompressed points
//! as TLS requires (RFC 8446 section 4.2.8.2).

use alloc::boxed::Box;

use p256::elliptic_curve::sec1::ToSec1Point;
use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};
use zeroize::Zeroize;

use super::{RngFn, random_failed};

/// An ECDHE group, holding the injected random source its private keys come from.
#[derive(Debug)]
pub struct EcdhGroup {
    pub(crate) curve: Curve,
    pub(crate) rng: RngFn,
}

/// A NIST curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// secp256r1.
    P256,
    /// secp384r1.
    P384,
}

enum Secret {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

/// A fresh private scalar: uniform bytes of the field size, rejected (and redrawn) when not
/// below the group order or zero, which happens with probability below 2^-32 per draw.
fn secret(curve: Curve, rng: RngFn) -> Result<Secret, Error> {
    let mut buf = [0u8; 48];
    let len = match curve {
        Curve::P256 => 32,
        Curve::P384 => 48,
    };
    for _ in 0..16 {
        rng(&mut buf[..len]).map_err(|()| random_failed())?;
        let key = match curve {
            Curve::P256 => p256::SecretKey::from_slice(&buf[..len])
                .ok()
                .map(Secret::P256),
            Curve::P384 => p384::SecretKey::from_slice(&buf[..len])
                .ok()
                .map(Secret::P384),
        };
        buf.zeroize();
        if let Some(key) = key {
            return Ok(key);
        }
    }
    Err(random_failed())
}

impl SupportedKxGroup for EcdhGroup {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = secret(self.curve, self.rng)?;
        let pub_key = match &secret {
            Secret::P256(s) => s.public_key().to_sec1_point(false).as_bytes().into(),
            Secret::P384(s) => s.public_key().to_sec1_point(false).as_bytes().into(),
        };
        Ok(Box::new(Active {
            secret,
            pub_key,
            group: self.name(),
        }))
    }

    fn name(&self) -> NamedGroup {
        match self.curve {
            Curve::P256 => NamedGroup::secp256r1,
            Curve::P384 => NamedGroup::secp384r1,
        }
    }
}

struct Active {
    secret: Secret,
    pub_key: Box<[u8]>,
    group: NamedGroup,
}

fn bad_share() -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare)
}

impl ActiveKeyExchange for Active {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        // Only the uncompressed form (0x04 || x || y) is legal in TLS.
        if peer.len() != self.pub_key.len() || peer.first() != Some(&4) {
            return Err(bad_share());
        }
        match &self.secret {
            Secret::P256(s) => {
                let pk = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| bad_share())?;
                Ok(SharedSecret::from(
                    &s.diffie_hellman(&pk).raw_secret_bytes()[..],
                ))
            }
            Secret::P384(s) => {
                let pk = p384::PublicKey::from_sec1_bytes(peer).map_err(|_| bad_share())?;
                Ok(SharedSecret::from(
                    &s.diffie_hellman(&pk).raw_secret_bytes()[..],
                ))
            }
        }
    }

    fn pub_key(&self) -> &[u8] {
        &self.pub_key
    }

    fn group(&self) -> NamedGroup {
        self.group
    }
}
