//! Clocks without libc: a monotonic [`Instant`], `CLOCK_BOOTTIME` for boot timings, the
//! wall clock (for certificate validity), and sleeping.

use core::time::Duration;
use rustix::time::{ClockId, Timespec, clock_gettime};

/// A point on the monotonic clock (`CLOCK_MONOTONIC`), like `std::time::Instant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(Duration);

fn to_duration(t: Timespec) -> Duration {
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl Instant {
    /// Now.
    pub fn now() -> Instant {
        Instant(to_duration(clock_gettime(ClockId::Monotonic)))
    }

    /// Time since `earlier` (zero if `earlier` is later).
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// Time since this instant.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// Time from now until this instant (zero if it has passed).
    pub fn saturating_duration_until(&self) -> Duration {
        self.duration_since(Instant::now())
    }

    /// This instant plus `d`, saturating.
    pub fn saturating_add(&self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }

    /// Milliseconds since the clock's origin (for the core's time-taking drivers).
    pub fn as_millis(&self) -> u64 {
        self.0.as_millis().min(u64::MAX as u128) as u64
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

/// Microseconds since boot (`CLOCK_BOOTTIME`, which counts from kernel start).
pub fn boottime_us() -> u64 {
    to_duration(clock_gettime(ClockId::Boottime)).as_micros() as u64
}

/// Seconds since the Unix epoch from the wall clock (`CLOCK_REALTIME`), or `None` before
/// 1970. In a guest the wall clock comes from the host: callers must not trust it for
/// anything but plausibility checks.
pub fn unix_time() -> Option<u64> {
    let t = clock_gettime(ClockId::Realtime);
    u64::try_from(t.tv_sec).ok()
}

/// Sleeps for `d`, resuming after signals until all of it has passed.
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    loop {
        let left = end.saturating_duration_until();
        if left.is_zero() {
            return;
        }
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let _ = rustix::thread::nanosleep(&ts);
    }
}
