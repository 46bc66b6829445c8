//! Counters a test can assert on ("one connection, one attestation for N secrets").

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Requests and answers of one protocol step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepStats {
    /// Requests read (including those a fault then dropped).
    pub requests: u64,
    /// Responses answered, by status, counted as they are sent (injected 5xx, garbage and
    /// oversize 200s included; responses a fault cuts short or replaces by a reset are not).
    pub responses: BTreeMap<u16, u64>,
}

impl StepStats {
    /// Complete responses with this status.
    pub fn count(&self, status: u16) -> u64 {
        self.responses.get(&status).copied().unwrap_or(0)
    }
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: u64,
    /// HTTP requests read, all paths.
    pub requests: u64,
    /// `POST /kbs/v0/auth`.
    pub auth: StepStats,
    /// `POST /kbs/v0/attest`.
    pub attest: StepStats,
    /// `/kbs/v0/resource/...`.
    pub resource: StepStats,
    /// Faults that fired.
    pub faults_injected: u64,
    /// TLS handshakes completed (HTTPS), full or resumed.
    pub tls_handshakes: u64,
    /// Of those, the resumed ones (a session ticket or id from an earlier connection).
    pub tls_resumed: u64,
    /// TLS handshakes that failed or that a fault broke.
    pub tls_failed: u64,
}

/// Which counter a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Auth,
    Attest,
    Resource,
}

/// One request as it arrived: when, and what it asked for (for timing analyses such as
/// "do retries spread out"). Bodies and headers are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// When its head was read.
    pub at: Instant,
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The status answered, if a complete response was sent.
    pub status: Option<u16>,
    /// Why the KBS answered as it did, when its log line gives a reason (a verifier's or the
    /// policy's refusal, e.g. `TDX Verifier: RTMR3 of the quote is …`): what `log` prints.
    pub note: Option<String>,
}

/// Arrivals kept per server: a long manual run must not grow without bound. 100 000
/// entries of about 100 bytes (chosen, not measured: 10 MB at most; a load run of 200
/// guests makes a few thousand).
pub const MAX_ARRIVALS: usize = 100_000;

#[derive(Default)]
pub(crate) struct StatsCell(Mutex<Stats>, Mutex<Vec<Arrival>>);

impl StatsCell {
    fn with(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn reset(&self) {
        self.with(|s| *s = Stats::default());
        self.1.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Records an arrival; returns its index (for [`StatsCell::answered`]), if kept.
    pub(crate) fn arrival(&self, method: &str, path: &str) -> Option<usize> {
        let mut log = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= MAX_ARRIVALS {
            return None;
        }
        log.push(Arrival {
            at: Instant::now(),
            method: method.to_owned(),
            path: path.to_owned(),
            status: None,
            note: None,
        });
        Some(log.len() - 1)
    }

    /// Notes the status sent for arrival `index`.
    pub(crate) fn answered(&self, index: Option<usize>, status: u16) {
        let mut log = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = index.and_then(|i| log.get_mut(i)) {
            a.status = Some(status);
        }
    }

    /// Notes the reason the KBS gave for arrival `index`.
    pub(crate) fn noted(&self, index: Option<usize>, note: &str) {
        let mut log = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = index.and_then(|i| log.get_mut(i)) {
            a.note = Some(note.to_owned());
        }
    }

    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn connection(&self) {
        self.with(|s| s.connections += 1);
    }

    pub(crate) fn handshake(&self, done: Option<bool>) {
        self.with(|s| match done {
            Some(resumed) => {
                s.tls_handshakes += 1;
                s.tls_resumed += u64::from(resumed);
            }
            None => s.tls_failed += 1,
        });
    }

    pub(crate) fn fault(&self) {
        self.with(|s| s.faults_injected += 1);
    }

    pub(crate) fn request(&self, counter: Option<Counter>) {
        self.with(|s| {
            s.requests += 1;
            if let Some(step) = step(s, counter) {
                step.requests += 1;
            }
        });
    }

    pub(crate) fn response(&self, counter: Option<Counter>, status: u16) {
        self.with(|s| {
            if let Some(step) = step(s, counter) {
                *step.responses.entry(status).or_default() += 1;
            }
        });
    }
}

fn step(s: &mut Stats, counter: Option<Counter>) -> Option<&mut StepStats> {
    match counter? {
        Counter::Auth => Some(&mut s.auth),
        Counter::Attest => Some(&mut s.attest),
        Counter::Resource => Some(&mut s.resource),
    }
}
