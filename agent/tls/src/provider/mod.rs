//! sealgate's rustls `CryptoProvider` on the project's one RustCrypto generation: AES-GCM
//! (aes-gcm 0.11), SHA-2 and HMAC (sha2 0.11, hmac 0.13; HKDF and the TLS 1.2 PRF are
//! rustls's constructions over that HMAC), ECDHE on P-256 / P-384 (p256 / p384 0.14) and
//! signature verification (ECDSA P-256 / P-384 / P-521, RSA 0.10 PKCS#1 v1.5 and PSS).
//!
//! Suites, best first: TLS 1.3 AES-256-GCM-SHA384 and AES-128-GCM-SHA256; TLS 1.2
//! ECDHE-ECDSA and ECDHE-RSA with AES-256-GCM-SHA384 and AES-128-GCM-SHA256. No CBC, no
//! ChaCha20, no finite-field DH. Randomness comes from an injected function (the guest's
//! getrandom(2)), the time from another.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use pki_types::{PrivateKeyDer, UnixTime};
use rustls::crypto::tls12::PrfUsingHmac;
use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{
    CipherSuiteCommon, CryptoProvider, GetRandomFailed, KeyExchangeAlgorithm, KeyProvider,
    SecureRandom,
};
use rustls::sign::SigningKey;
use rustls::time_provider::TimeProvider;
use rustls::{
    CipherSuite, Error, SignatureScheme, SupportedCipherSuite, Tls12CipherSuite, Tls13CipherSuite,
};

pub mod aead;
pub mod hash;
pub mod kx;
pub mod sig;
#[cfg(test)]
mod tests;

use aead::AesGcm;
use kx::{Curve, EcdhGroup};

/// The random source: fills the buffer, or fails (then the handshake fails).
pub type RngFn = fn(&mut [u8]) -> Result<(), ()>;
/// The clock: the current time, `None` when unknown.
pub type NowFn = fn() -> Option<UnixTime>;

pub(crate) fn random_failed() -> Error {
    Error::FailedToGetRandomBytes
}

/// AES-GCM's confidentiality limit in records (2^24; rustls's documented figure).
const GCM_LIMIT: u64 = 1 << 24;

static HMAC_SHA256: hash::HmacSha256 = hash::HmacSha256;
static HMAC_SHA384: hash::HmacSha384 = hash::HmacSha384;
static HKDF_SHA256: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SHA256);
static HKDF_SHA384: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SHA384);
static PRF_SHA256: PrfUsingHmac<'static> = PrfUsingHmac(&HMAC_SHA256);
static PRF_SHA384: PrfUsingHmac<'static> = PrfUsingHmac(&HMAC_SHA384);
static AES128: AesGcm = AesGcm::Aes128;
static AES256: AesGcm = AesGcm::Aes256;

/// TLS13_AES_128_GCM_SHA256.
pub static TLS13_AES_128_GCM_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
        hash_provider: &hash::Sha256,
        confidentiality_limit: GCM_LIMIT,
    },
    hkdf_provider: &HKDF_SHA256,
    aead_alg: &AES128,
    quic: None,
};

/// TLS13_AES_256_GCM_SHA384.
pub static TLS13_AES_256_GCM_SHA384: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        hash_provider: &hash::Sha384,
        confidentiality_limit: GCM_LIMIT,
    },
    hkdf_provider: &HKDF_SHA384,
    aead_alg: &AES256,
    quic: None,
};

static TLS12_ECDSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    #[cfg(feature = "p521")]
    SignatureScheme::ECDSA_NISTP521_SHA512,
];

#[cfg(feature = "rsa")]
static TLS12_RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

macro_rules! tls12_suite {
    ($name:ident, $suite:ident, $hash:expr, $prf:expr, $sign:expr, $aead:expr) => {
        #[doc = concat!("TLS 1.2 ", stringify!($suite), ".")]
        pub static $name: Tls12CipherSuite = Tls12CipherSuite {
            common: CipherSuiteCommon {
                suite: CipherSuite::$suite,
                hash_provider: $hash,
                confidentiality_limit: GCM_LIMIT,
            },
            prf_provider: $prf,
            kx: KeyExchangeAlgorithm::ECDHE,
            sign: $sign,
            aead_alg: $aead,
        };
    };
}

tls12_suite!(
    TLS12_ECDHE_ECDSA_AES_128_GCM_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    &hash::Sha256,
    &PRF_SHA256,
    TLS12_ECDSA_SCHEMES,
    &AES128
);
tls12_suite!(
    TLS12_ECDHE_ECDSA_AES_256_GCM_SHA384,
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    &hash::Sha384,
    &PRF_SHA384,
    TLS12_ECDSA_SCHEMES,
    &AES256
);
#[cfg(feature = "rsa")]
tls12_suite!(
    TLS12_ECDHE_RSA_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    &hash::Sha256,
    &PRF_SHA256,
    TLS12_RSA_SCHEMES,
    &AES128
);
#[cfg(feature = "rsa")]
tls12_suite!(
    TLS12_ECDHE_RSA_AES_256_GCM_SHA384,
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    &hash::Sha384,
    &PRF_SHA384,
    TLS12_RSA_SCHEMES,
    &AES256
);

/// The cipher suites, best first.
pub fn cipher_suites() -> Vec<SupportedCipherSuite> {
    vec![
        SupportedCipherSuite::Tls13(&TLS13_AES_256_GCM_SHA384),
        SupportedCipherSuite::Tls13(&TLS13_AES_128_GCM_SHA256),
        SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_AES_256_GCM_SHA384),
        SupportedCipherSuite::Tls12(&TLS12_ECDHE_ECDSA_AES_128_GCM_SHA256),
        #[cfg(feature = "rsa")]
        SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_AES_256_GCM_SHA384),
        #[cfg(feature = "rsa")]
        SupportedCipherSuite::Tls12(&TLS12_ECDHE_RSA_AES_128_GCM_SHA256),
    ]
}

/// The objects of one provider that hold the injected functions. rustls takes them as
/// `&'static`, so they are leaked: once per distinct random function (see [`statics`]).
struct Statics {
    random: InjectedRandom,
    p256: EcdhGroup,
    p384: EcdhGroup,
}

/// The random source for rustls.
#[derive(Debug)]
struct InjectedRandom(RngFn);

impl SecureRandom for InjectedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        (self.0)(buf).map_err(|()| GetRandomFailed)
    }
}

/// Keeps the leaked [`Statics`] of the random functions seen so far, so that making many
/// configurations with the same function (the agent has one) leaks one small object, not
/// one per configuration. Bounded: past [`MAX_RNG_FNS`] distinct functions (each closure
/// written in the source is one; the agent passes one), new ones are refused, so at most
/// 64 objects of 40 bytes are ever leaked. Source: not measured; a bound, not a need.
static STATICS: spin::Mutex<Vec<(usize, &'static Statics)>> = spin::Mutex::new(Vec::new());
const MAX_RNG_FNS: usize = 64;

fn statics(rng: RngFn) -> Option<&'static Statics> {
    let id = rng as usize;
    let mut all = STATICS.lock();
    if let Some((_, s)) = all.iter().find(|(i, _)| *i == id) {
        return Some(s);
    }
    if all.len() >= MAX_RNG_FNS {
        return None;
    }
    let s: &'static Statics = Box::leak(Box::new(Statics {
        random: InjectedRandom(rng),
        p256: EcdhGroup {
            curve: Curve::P256,
            rng,
        },
        p384: EcdhGroup {
            curve: Curve::P384,
            rng,
        },
    }));
    all.push((id, s));
    Some(s)
}

/// No client certificates: loading a private key is not supported.
#[derive(Debug)]
struct NoKeys;

impl KeyProvider for NoKeys {
    fn load_private_key(
        &self,
        _key_der: PrivateKeyDer<'static>,
    ) -> Result<alloc::sync::Arc<dyn SigningKey>, Error> {
        Err(Error::General("sealgate-tls has no client keys".into()))
    }
}

static NO_KEYS: NoKeys = NoKeys;

/// sealgate's provider, drawing randomness from `rng`. `None` when too many distinct
/// random functions were already given (see [`STATICS`]).
pub fn provider(rng: RngFn) -> Option<CryptoProvider> {
    let s = statics(rng)?;
    Some(CryptoProvider {
        cipher_suites: cipher_suites(),
        kx_groups: vec![&s.p256, &s.p384],
        signature_verification_algorithms: sig::SUPPORTED,
        secure_random: &s.random,
        key_provider: &NO_KEYS,
    })
}

/// The injected clock for rustls. A time before [`crate::date::CLOCK_FLOOR_UNIX`] counts as
/// no time (rustls then fails with `FailedToGetCurrentTime`, which becomes
/// [`crate::TlsError::Clock`]); `TlsStream::connect` checks first to name the bad time.
pub(crate) struct InjectedClock(pub(crate) NowFn);

impl fmt::Debug for InjectedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InjectedClock")
    }
}

impl TimeProvider for InjectedClock {
    fn current_time(&self) -> Option<UnixTime> {
        (self.0)().filter(|t| t.as_secs() >= crate::date::CLOCK_FLOOR_UNIX)
    }
}
