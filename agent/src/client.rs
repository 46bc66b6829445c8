//! Runs the core's KBS driver ([`sealgate_core::kbs::driver`]) over a transport: the
//! driver decides what to send, when to attest, how long to back off and when to give up;
//! this loop makes the calls, gets the evidence, reads the clock, sleeps and logs. The tee
//! key is generated once and used for every (re-)attestation of the run.

use crate::evidence::Attester;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use sealgate_core::kbs::driver::{self, Action, Driver, Event, Fetching};
use sealgate_core::kbs::{Call, Reply};
use sealgate_core::teekey::TeeKey;
use sealgate_core::uri::ResourceUri;
use sealgate_linux::os_rng::random_u32;
use sealgate_linux::time::{Instant, sleep};
use sealgate_linux::{debug, info, warn};
use zeroize::Zeroizing;

pub use sealgate_core::kbs::driver::Stats;

/// An HTTP response as the client needs it.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body (zeroized on drop: resource bodies are ciphertext, but error paths may hold
    /// anything).
    pub body: Zeroizing<Vec<u8>>,
    /// The validated `kbs-session-id` cookie value, if the response set one.
    pub session_cookie: Option<String>,
}

/// A failure below HTTP semantics.
#[derive(Debug)]
pub struct TransportError {
    /// What happened, naming the peer and the phase; never content.
    pub message: String,
    /// Whether trying again later may work (refused, reset, timeout) or not (oversize
    /// body, malformed URL).
    pub transient: bool,
    /// Set when the run's deadline cut a wait short: what the transport was doing
    /// (`waiting for 10.0.2.2:8080 to answer`).
    pub deadline: Option<String>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Sends one protocol call and returns the response.
pub trait Transport {
    /// Makes the HTTP exchange for `call`.
    fn exchange(&mut self, call: &Call<'_>) -> Result<Response, TransportError>;

    /// Caps every later wait at `deadline` (a long-lived client's next operation; see
    /// [`Client::set_deadline`]). A transport without waits of its own ignores it.
    fn set_deadline(&mut self, deadline: Instant) {
        let _ = deadline;
    }
}

/// What the evidence provider reports when it cannot produce evidence.
pub type EvidenceError = crate::evidence::AttesterError;

/// Why the agent could not get a secret: the KBS refused or said something unusable, the
/// network failed for good, the deadline passed while retrying (naming the last transient
/// failure), or the TEE gave no evidence. No variant carries secret material.
pub type ClientError = driver::Error<EvidenceError>;

/// A KBS client for one run.
pub struct Client<T: Transport> {
    transport: T,
    attester: Attester,
    driver: Driver,
    /// Counters.
    pub stats: Stats,
}

/// Milliseconds on the monotonic clock, the driver's time.
fn now_ms() -> u64 {
    Instant::now().as_millis()
}

impl<T: Transport> Client<T> {
    /// A client that stops at `deadline`, the end of a run given `budget` in all (the
    /// transport must cap its waits by the same deadline).
    pub fn new(
        transport: T,
        key: TeeKey,
        attester: Attester,
        init_data: Option<String>,
        deadline: Instant,
        budget: Duration,
    ) -> Self {
        let driver = Driver::new(
            attester.tee(),
            key,
            init_data,
            deadline.as_millis(),
            budget.as_millis().min(u128::from(u64::MAX)) as u64,
            random_u32(),
        );
        Client {
            transport,
            attester,
            driver,
            stats: Stats::default(),
        }
    }

    /// The transport (for its connection counters).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Fetches and decrypts one resource, attesting first if needed and again when the
    /// KBS answers 401 (at most [`sealgate_core::kbs::MAX_RESOURCE_ATTEMPTS`] GETs).
    pub fn fetch(&mut self, uri: &ResourceUri) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let job = self.driver.fetch(uri);
        let result = drive(&mut self.transport, &mut self.attester, job);
        if let Ok(secret) = &result {
            debug!("fetched {uri} ({} bytes)", secret.len());
        }
        self.stats = self.driver.stats();
        result
    }

    /// Attests now (a fresh handshake): the session's token is then [`Client::token`].
    pub fn attest(&mut self) -> Result<(), ClientError> {
        let job = self.driver.attest();
        let result = drive(&mut self.transport, &mut self.attester, job).map(|_| ());
        self.stats = self.driver.stats();
        result
    }

    /// Gives the next operations their own deadline (a long-lived client: the server).
    pub fn set_deadline(&mut self, deadline: Instant, budget: Duration) {
        self.transport.set_deadline(deadline);
        self.driver.set_deadline(
            deadline.as_millis(),
            budget.as_millis().min(u128::from(u64::MAX)) as u64,
        );
    }

    /// The attested session's token (a JWT), if attested. Secret: never log it.
    pub fn token(&self) -> Option<&str> {
        self.driver.token()
    }

    /// Forgets the session: the next fetch attests first.
    pub fn end_session(&mut self) {
        self.driver.end_session();
    }

    /// The tee key.
    pub fn key(&self) -> &TeeKey {
        self.driver.key()
    }

    /// The attester (for evidence outside the KBS protocol).
    pub fn attester(&mut self) -> &mut Attester {
        &mut self.attester
    }
}

/// Runs one driver job to its end over `transport`, asking `attester` for evidence.
fn drive<T: Transport>(
    transport: &mut T,
    attester: &mut Attester,
    mut job: Fetching<'_, EvidenceError>,
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    loop {
        match job.next(now_ms()) {
            Action::Send(out) => {
                let answer = transport.exchange(&out.call());
                let event = match answer {
                    Err(TransportError {
                        deadline: Some(doing),
                        ..
                    }) => {
                        out.on_deadline(doing);
                        None
                    }
                    Ok(response) => out.on_reply(
                        now_ms(),
                        Reply {
                            status: response.status,
                            body: &response.body,
                            session_cookie: response.session_cookie.as_deref(),
                        },
                    ),
                    Err(e) => out.on_transport_error(now_ms(), e.transient, e.message),
                };
                if let Some(event) = event {
                    log(&event);
                }
            }
            Action::NeedEvidence(request) => {
                let evidence = attester.evidence(request.digest());
                request.on_evidence(now_ms(), evidence);
            }
            Action::Wait(ms) => sleep(Duration::from_millis(ms)),
            Action::Done(secret) => return Ok(secret),
            Action::Failed(e) => return Err(e),
        }
    }
}

fn log(event: &Event) {
    if event.is_warning() {
        warn!("{event}");
    } else {
        info!("{event}");
    }
}
