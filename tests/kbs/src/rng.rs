//! The operating system's CSPRNG (getrandom(2)) behind `rand_core`, for nonces, session ids,
//! the token key, ephemeral JWE keys, CEKs and IVs.

use sealgate_core::rng::FillRng;

/// Fills `buf` from getrandom(2). A test server without randomness cannot do anything
/// meaningful, so failure panics (it never depends on network input).
pub(crate) fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("getrandom(2) failed: {e}"),
        }
    }
}

/// A `rand_core` CSPRNG over getrandom(2).
pub(crate) fn os_rng() -> FillRng<fn(&mut [u8])> {
    FillRng(fill)
}

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}
