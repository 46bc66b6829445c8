//! Deterministic test keys and bytes: everything a simulator signs with comes from a seed, so a
//! KBS and a simulator in another process (or a guest VM) agree on the roots without sharing a
//! file.
//!
//! The derivation, for reimplementation elsewhere (all lengths big-endian u32):
//!
//! ```text
//! block(seed, label, i) = SHA-384("sealgate-sim/v1" ‖ len(seed) ‖ seed ‖ len(label) ‖ label ‖ i)
//! bytes(seed, label, n) = first n bytes of block(.., 0) ‖ block(.., 1) ‖ …
//! P-384 key(seed, label) = the first block(seed, label, i), i = 0, 1, …, that is a valid
//!                          scalar (1 ≤ d < n) read big-endian
//! P-256 key(seed, label) = the first 32-byte prefix of block(seed, label, i) that is valid
//! ```
//!
//! Labels name the role, e.g. `snp/Genoa/ark`, `tdx/root`; see the simulators for the list.

use alloc::vec::Vec;

use sha2::{Digest, Sha384};

/// The seed the simulators and the test KBS use unless told otherwise.
pub const DEFAULT_SEED: &[u8] = b"sealgate test roots";

fn block(seed: &[u8], label: &str, i: u32) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(b"sealgate-sim/v1");
    h.update((seed.len() as u32).to_be_bytes());
    h.update(seed);
    h.update((label.len() as u32).to_be_bytes());
    h.update(label.as_bytes());
    h.update(i.to_be_bytes());
    h.finalize().into()
}

/// `n` deterministic bytes for `label` (see the module documentation).
pub fn derive_bytes(seed: &[u8], label: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 48);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(&block(seed, label, i));
        i += 1;
    }
    out.truncate(n);
    out
}

/// A fixed-size array of deterministic bytes.
pub fn derive_array<const N: usize>(seed: &[u8], label: &str) -> [u8; N] {
    let v = derive_bytes(seed, label, N);
    let mut out = [0u8; N];
    out.copy_from_slice(&v);
    out
}

/// The deterministic P-384 signing key for `label`.
pub fn p384_key(seed: &[u8], label: &str) -> p384::ecdsa::SigningKey {
    (0u32..)
        .find_map(|i| p384::ecdsa::SigningKey::from_slice(&block(seed, label, i)).ok())
        .unwrap_or_else(|| unreachable!("a valid scalar is found almost surely at i = 0"))
}

/// The deterministic P-256 signing key for `label`.
pub fn p256_key(seed: &[u8], label: &str) -> p256::ecdsa::SigningKey {
    (0u32..)
        .find_map(|i| p256::ecdsa::SigningKey::from_slice(&block(seed, label, i)[..32]).ok())
        .unwrap_or_else(|| unreachable!("a valid scalar is found almost surely at i = 0"))
}

/// Uncompressed SEC1 point (`0x04 ‖ X ‖ Y`) of a P-384 key.
pub fn p384_point(key: &p384::ecdsa::VerifyingKey) -> Vec<u8> {
    key.to_sec1_point(false).as_bytes().to_vec()
}

/// Uncompressed SEC1 point (`0x04 ‖ X ‖ Y`) of a P-256 key.
pub fn p256_point(key: &p256::ecdsa::VerifyingKey) -> Vec<u8> {
    key.to_sec1_point(false).as_bytes().to_vec()
}
