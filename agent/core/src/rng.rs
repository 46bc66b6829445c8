//! Randomness is I/O, so the core never fetches it: the caller hands in a fill function
//! (the `getrandom(2)` syscall in the binaries) and the core uses it through `rand_core`.

use core::convert::Infallible;
use rand_core::{TryCryptoRng, TryRng};

/// A cryptographic RNG backed by a caller-supplied fill function, which must fill the
/// whole buffer with bytes from the operating system's CSPRNG or not return at all.
pub struct FillRng<F: FnMut(&mut [u8])>(pub F);

impl<F: FnMut(&mut [u8])> TryRng for FillRng<F> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        (self.0)(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        (self.0)(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        (self.0)(dst);
        Ok(())
    }
}

impl<F: FnMut(&mut [u8])> TryCryptoRng for FillRng<F> {}
