//! The operating system's CSPRNG through getrandom(2), for the binaries.

use sealgate_core::rng::FillRng;

/// Fills `buf` from getrandom(2), blocking until the kernel pool is initialised.
/// There is no safe way to continue without randomness, so failure ends the process.
pub fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                crate::eprintln!("fatal: getrandom(2) failed: {e}");
                rustix::runtime::exit_group(134);
            }
        }
    }
}

/// A `rand_core` CSPRNG over getrandom(2).
pub fn os_rng() -> FillRng<fn(&mut [u8])> {
    FillRng(fill)
}

/// A random `u32` (backoff jitter).
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    fill(&mut b);
    u32::from_le_bytes(b)
}
