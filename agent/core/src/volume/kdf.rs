//! The key-derivation functions of LUKS2 keyslots and digests (PBKDF2, argon2i,
//! argon2id; RustCrypto's `pbkdf2` and `argon2`), under caller-set cost limits.
//!
//! A header comes from an untrusted disk, so its KDF costs are attacker-chosen: an argon2
//! memory cost of 4 TiB or 2^32 PBKDF2 iterations would exhaust the guest's memory or
//! stall its boot. [`KdfLimits::check`] refuses such costs before anything is allocated
//! or computed, and argon2's memory is reserved fallibly, so a cost within the limits
//! that the machine still cannot hold is an error, not an abort.

use alloc::vec::Vec;
use core::fmt;
use sha2::{Sha256, Sha384, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// A hash function named by a LUKS2 header (`"sha256"`): keyslot PBKDF2, anti-forensic
/// splitter, digest, header checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256 (cryptsetup's default).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// Parses the header's spelling; `None` for anything else (sha1, ripemd160,
    /// whirlpool, stribog, sm3 and the others cryptsetup knows are refused).
    pub fn from_name(name: &str) -> Option<Hash> {
        match name {
            "sha256" => Some(Hash::Sha256),
            "sha384" => Some(Hash::Sha384),
            "sha512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    /// The header's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// PBKDF2-HMAC with this hash.
    pub(crate) fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, out),
            Hash::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(password, salt, rounds, out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, out),
        }
    }

    /// The hash of the concatenation of `parts`, into `out` (`out.len()` = [`Hash::len`]).
    pub(crate) fn digest_into(self, parts: &[&[u8]], out: &mut [u8]) {
        use sha2::Digest;
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8]) {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            let mut d = h.finalize();
            out.copy_from_slice(&d);
            d.as_mut_slice().zeroize();
        }
        match self {
            Hash::Sha256 => run::<Sha256>(parts, out),
            Hash::Sha384 => run::<Sha384>(parts, out),
            Hash::Sha512 => run::<Sha512>(parts, out),
        }
    }
}

/// The argon2 variants LUKS2 uses (`argon2i`, `argon2id`; version 0x13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argon2Variant {
    /// argon2i.
    Argon2i,
    /// argon2id (cryptsetup's default for LUKS2).
    Argon2id,
}

/// A keyslot's KDF, as its header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-HMAC.
    Pbkdf2 {
        /// The HMAC's hash.
        hash: Hash,
        /// Iterations.
        iterations: u32,
        /// Salt.
        salt: Vec<u8>,
    },
    /// argon2i or argon2id, version 0x13.
    Argon2 {
        /// Which one.
        variant: Argon2Variant,
        /// Time cost (passes).
        time: u32,
        /// Memory cost in KiB.
        memory_kib: u32,
        /// Lanes (`cpus`; computed one after the other here: same result).
        parallel: u32,
        /// Salt.
        salt: Vec<u8>,
    },
}

impl Kdf {
    /// The header's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Kdf::Pbkdf2 { .. } => "pbkdf2",
            Kdf::Argon2 {
                variant: Argon2Variant::Argon2i,
                ..
            } => "argon2i",
            Kdf::Argon2 {
                variant: Argon2Variant::Argon2id,
                ..
            } => "argon2id",
        }
    }
}

/// The highest KDF costs sealgate computes. A keyslot (or digest) over any of them is
/// refused before any memory is allocated.
///
/// [`KdfLimits::DEFAULT`] admits what `cryptsetup luksFormat` produces with its default
/// parameters (see the README's "LUKS2 volumes" for the source of each number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimits {
    /// argon2 memory cost, KiB.
    pub max_memory_kib: u32,
    /// argon2 time cost (passes over the memory).
    pub max_time_cost: u32,
    /// argon2 lanes.
    pub max_parallel: u32,
    /// PBKDF2 iterations (keyslots and the volume-key digest).
    pub max_pbkdf2_iterations: u32,
}

impl KdfLimits {
    /// The defaults (sources in the README's "LUKS2 volumes"):
    /// - memory 1 GiB: cryptsetup's default (and maximum unless forced) argon2 memory
    ///   cost for LUKS2 keyslots (`DEFAULT_LUKS2_MEMORY_KB`, 1048576 KiB); measured:
    ///   `luksFormat` with defaults chose 1048576 KiB on the build machine;
    /// - 4 lanes: cryptsetup's default maximum (`DEFAULT_LUKS2_PARALLEL_THREADS`); it uses
    ///   min(4, online CPUs), so 2 on the build machine;
    /// - time cost 64 passes: cryptsetup benchmarks the cost to 2 s (`--iter-time` 2000)
    ///   with a minimum of 4, and lowers the memory before it raises the passes; measured
    ///   4 at 1 GiB on the build machine. 64 leaves room for a formatting machine many
    ///   times faster or a smaller memory cost, and bounds the work at 64 passes over 1 GiB;
    /// - PBKDF2 20 million iterations: cryptsetup's 2 s benchmark chose 3 792 318
    ///   (SHA-256) on the build machine; 20 million admits a formatting machine about 5
    ///   times faster, about 15 s of sealgate's PBKDF2 there, and refuses the absurd
    ///   (2^32 iterations would take an hour).
    pub const DEFAULT: KdfLimits = KdfLimits {
        max_memory_kib: 1024 * 1024,
        max_time_cost: 64,
        max_parallel: 4,
        max_pbkdf2_iterations: 20_000_000,
    };

    /// Refuses `kdf` if any of its costs is over a limit (or not a cost argon2 takes).
    pub fn check(&self, kdf: &Kdf) -> Result<(), KdfError> {
        match kdf {
            Kdf::Pbkdf2 { iterations, .. } => self.check_pbkdf2(*iterations),
            Kdf::Argon2 {
                time,
                memory_kib,
                parallel,
                ..
            } => {
                if *memory_kib > self.max_memory_kib {
                    return Err(KdfError::OverLimit {
                        what: "argon2 memory (KiB)",
                        value: *memory_kib,
                        limit: self.max_memory_kib,
                    });
                }
                if *time > self.max_time_cost {
                    return Err(KdfError::OverLimit {
                        what: "argon2 time cost",
                        value: *time,
                        limit: self.max_time_cost,
                    });
                }
                if *parallel > self.max_parallel {
                    return Err(KdfError::OverLimit {
                        what: "argon2 parallel lanes",
                        value: *parallel,
                        limit: self.max_parallel,
                    });
                }
                if *time == 0 || *parallel == 0 || u64::from(*memory_kib) < 8 * u64::from(*parallel)
                {
                    return Err(KdfError::Invalid(
                        "argon2 needs time >= 1, parallel >= 1 and memory >= 8 KiB per lane",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Refuses a PBKDF2 iteration count of 0 or over the limit.
    pub fn check_pbkdf2(&self, iterations: u32) -> Result<(), KdfError> {
        if iterations == 0 {
            return Err(KdfError::Invalid("PBKDF2 with 0 iterations"));
        }
        if iterations > self.max_pbkdf2_iterations {
            return Err(KdfError::OverLimit {
                what: "PBKDF2 iterations",
                value: iterations,
                limit: self.max_pbkdf2_iterations,
            });
        }
        Ok(())
    }
}

impl Default for KdfLimits {
    fn default() -> Self {
        KdfLimits::DEFAULT
    }
}

/// Why a KDF was not computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KdfError {
    /// A cost over the caller's limit (refused before any allocation).
    OverLimit {
        /// Which cost.
        what: &'static str,
        /// The header's value.
        value: u32,
        /// The limit.
        limit: u32,
    },
    /// Parameters no KDF accepts (0 iterations, a too-short salt).
    Invalid(&'static str),
    /// argon2's memory (within the limits) could not be allocated on this machine.
    OutOfMemory {
        /// The memory cost, KiB.
        memory_kib: u32,
    },
}

impl fmt::Display for KdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KdfError::OverLimit { what, value, limit } => {
                write!(f, "{what} {value} is over the limit {limit}")
            }
            KdfError::Invalid(why) => write!(f, "invalid KDF parameters: {why}"),
            KdfError::OutOfMemory { memory_kib } => write!(
                f,
                "cannot allocate the {memory_kib} KiB argon2 needs (lower the keyslot's \
                 memory cost or give the guest more memory)"
            ),
        }
    }
}

/// Derives `out.len()` bytes from `passphrase` with `kdf`, after checking it against
/// `limits`.
pub fn derive(
    kdf: &Kdf,
    passphrase: &[u8],
    limits: &KdfLimits,
    out: &mut [u8],
) -> Result<(), KdfError> {
    limits.check(kdf)?;
    match kdf {
        Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => {
            hash.pbkdf2(passphrase, salt, *iterations, out);
            Ok(())
        }
        Kdf::Argon2 {
            variant,
            time,
            memory_kib,
            parallel,
            salt,
        } => {
            let algorithm = match variant {
                Argon2Variant::Argon2i => argon2::Algorithm::Argon2i,
                Argon2Variant::Argon2id => argon2::Algorithm::Argon2id,
            };
            let params = argon2::Params::new(*memory_kib, *time, *parallel, Some(out.len()))
                .map_err(|_| KdfError::Invalid("argon2 refused the parameters"))?;
            let blocks = params.block_count();
            let mut memory: Zeroizing<Vec<argon2::Block>> = Zeroizing::new(Vec::new());
            memory
                .try_reserve_exact(blocks)
                .map_err(|_| KdfError::OutOfMemory {
                    memory_kib: *memory_kib,
                })?;
            memory.resize(blocks, argon2::Block::new());
            argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
                .hash_password_into_with_memory(passphrase, salt, out, &mut memory[..])
                .map_err(|_| KdfError::Invalid("argon2 refused the salt or output length"))
        }
    }
}
