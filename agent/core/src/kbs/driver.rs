//! The whole KBS conversation as a sans-IO driver, driven the way an unbuffered TLS
//! client is: the driver says what to do next ([`Action`]), the shell does it and feeds
//! the outcome back. The driver owns the sequencing (auth, evidence, attest, GET), the
//! refusal caps, the retry policy and the deadline; the shell owns the socket, the clock,
//! the TEE device and the sleeping.
//!
//! Time is passed in as milliseconds on a monotonic clock, as smoltcp's `poll(timestamp)`
//! takes it; the deadline is an absolute time on that clock. Each [`Action`] that expects
//! an answer carries a handle whose methods are the only legal answers: the reply to a
//! [`Action::Send`] goes to [`Outgoing::on_reply`] (or [`Outgoing::on_transport_error`]),
//! evidence goes to [`EvidenceRequest::on_evidence`]; each consumes its handle.
//!
//! ```
//! use sealgate_core::kbs::driver::{Action, Driver, Error};
//! use sealgate_core::kbs::{Call, Reply};
//! use sealgate_core::uri::ResourceUri;
//! use serde_json::Value;
//! use zeroize::Zeroizing;
//!
//! /// What a transport returns: status, body, session cookie; or (transient, message).
//! type Answer = Result<(u16, Vec<u8>, Option<String>), (bool, String)>;
//!
//! fn fetch(
//!     driver: &mut Driver,
//!     uri: &ResourceUri,
//!     now_ms: impl Fn() -> u64,
//!     mut sleep_ms: impl FnMut(u64),
//!     mut exchange: impl FnMut(&Call<'_>) -> Answer,
//!     mut evidence: impl FnMut(&[u8]) -> Result<Value, String>,
//! ) -> Result<Zeroizing<Vec<u8>>, Error<String>> {
//!     let mut job = driver.fetch(uri);
//!     loop {
//!         match job.next(now_ms()) {
//!             Action::Send(out) => {
//!                 let answer = exchange(&out.call());
//!                 let event = match answer {
//!                     Ok((status, body, cookie)) => {
//!                         let reply = Reply { status, body: &body, session_cookie: cookie.as_deref() };
//!                         out.on_reply(now_ms(), reply)
//!                     }
//!                     Err((transient, what)) => out.on_transport_error(now_ms(), transient, what),
//!                 };
//!                 if let Some(event) = event {
//!                     eprintln!("{event}"); // "...; retrying in 250 ms", "...; attesting again"
//!                 }
//!             }
//!             Action::NeedEvidence(request) => {
//!                 let result = evidence(request.digest());
//!                 request.on_evidence(now_ms(), result);
//!             }
//!             Action::Wait(ms) => sleep_ms(ms),
//!             Action::Done(secret) => return Ok(secret),
//!             Action::Failed(e) => return Err(e),
//!         }
//!     }
//! }
//! ```
//!
//! Policy (as the upstream client, and as sealgate always did):
//! - one tee key and one session for the run: the session is reused across resources;
//! - a 401 on a resource means "attest again, then GET again", at most
//!   [`MAX_RESOURCE_ATTEMPTS`](super::MAX_RESOURCE_ATTEMPTS) GETs per resource;
//! - a 404 stops at once;
//! - a 401 on `/attest` sends the same attestation again on the same session (another KBS
//!   replica may hold it), at most [`MAX_ATTEST_SENDS`] sends per handshake, and then
//!   starts a new handshake, at most [`MAX_HANDSHAKE_ATTEMPTS`] handshakes per attestation;
//! - 5xx (and 408/429) answers and transient transport failures are retried after a
//!   jittered exponential backoff ([`BACKOFF_BASE_MS`] doubling up to [`BACKOFF_MAX_MS`]): a
//!   handshake step restarts the handshake at `/auth`, a GET is resent. A pause that would
//!   end after the deadline is not taken: the fetch fails with [`Error::Deadline`], naming
//!   the transient failure that would have been retried. The driver never asks to wait
//!   past the deadline;
//! - the deadline bounds the whole run, not only the retries: once it has passed, no call
//!   is made and no evidence is asked for ([`Expiry::Before`]), and the shell caps every
//!   wait of its transport by it and reports a wait it cut short with
//!   [`Outgoing::on_deadline`] ([`Expiry::Call`]);
//! - everything else is final.
//!
//! The jitter comes from one random `u32` the shell passes to [`Driver::new`]; the pauses
//! of one run derive their jitter from it and the retry count. There is no other
//! randomness here.

use super::{
    Backoff, Call, Challenged, Fetch, Handshake, KbsClientError, MAX_ATTEST_SENDS,
    MAX_HANDSHAKE_ATTEMPTS, Next, Reply, Session, Step,
};
use crate::rcar::{KbsError, Tee};
use crate::teekey::TeeKey;
use crate::uri::ResourceUri;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde_json::Value;
use zeroize::Zeroizing;

/// The first retry pause, milliseconds (before jitter, which takes up to half off).
pub const BACKOFF_BASE_MS: u64 = 250;

/// The longest retry pause, milliseconds.
pub const BACKOFF_MAX_MS: u64 = 5_000;

/// Counters for the final report and the benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Completed attestations.
    pub attestations: u32,
    /// Resources fetched.
    pub resources: u32,
    /// Pauses taken before retrying a transient failure.
    pub retries: u32,
}

/// A failure worth retrying after a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transient {
    /// The KBS answered 5xx, 408 or 429.
    Kbs(KbsClientError),
    /// The network failed (refused, reset, timed out); the transport's message.
    Transport(String),
}

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transient::Kbs(e) => write!(f, "{e}"),
            Transient::Transport(what) => f.write_str(what),
        }
    }
}

/// Why a fetch failed. `E` is the evidence provider's error. Messages carry statuses, KBS
/// error types and details, URIs and transport messages; never resource contents, tokens
/// or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// The KBS said no, or said something unusable.
    Kbs(KbsClientError),
    /// The network failed in a way retrying does not fix (the transport's message).
    Transport(String),
    /// The run's deadline ended the fetch.
    Deadline {
        /// The run's whole time budget, milliseconds (shown as "deadline of N s").
        budget_ms: u64,
        /// How.
        expiry: Expiry,
    },
    /// The TEE could not produce evidence (fatal: never falls back to another TEE).
    Evidence(E),
    /// [`Fetching::next`] was called after the fetch ended, or after a handle from an
    /// earlier action was dropped without an answer.
    Finished,
}

impl<E> Error<E> {
    /// Maps the evidence error.
    pub fn map_evidence<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Kbs(e) => Error::Kbs(e),
            Error::Transport(what) => Error::Transport(what),
            Error::Deadline { budget_ms, expiry } => Error::Deadline { budget_ms, expiry },
            Error::Evidence(e) => Error::Evidence(f(e)),
            Error::Finished => Error::Finished,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Kbs(e) => write!(f, "{e}"),
            Error::Transport(what) => f.write_str(what),
            Error::Deadline { budget_ms, expiry } => {
                let budget = Budget(*budget_ms);
                match expiry {
                    Expiry::Retry(cause) => write!(
                        f,
                        "{cause}; giving up: the deadline of {budget} would pass before the next retry"
                    ),
                    Expiry::Call { doing, call } => {
                        write!(f, "deadline of {budget} passed while {doing} ({call})")
                    }
                    Expiry::Before(what) => write!(f, "deadline of {budget} passed before {what}"),
                }
            }
            Error::Evidence(e) => write!(f, "cannot get evidence: {e}"),
            Error::Finished => f.write_str("the KBS fetch has already ended"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Error<E> {}

/// How the run's deadline ended a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// A transient failure happened and the pause before retrying it would have ended
    /// after the deadline.
    Retry(Transient),
    /// The shell's transport stopped waiting at the deadline: what it was doing
    /// (`waiting for 10.0.2.2:8080 to answer`, `resolving kbs.example:8080 (asking
    /// 10.0.2.3)`) and the call (`POST /kbs/v0/auth`).
    Call {
        /// What the transport was doing.
        doing: String,
        /// Method and path.
        call: String,
    },
    /// The deadline had passed when the next step was due: that step (`POST
    /// /kbs/v0/auth`, `getting evidence`).
    Before(String),
}

/// A time budget in milliseconds, shown in seconds when it is a whole number of them.
struct Budget(u64);

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{} s", self.0 / 1000)
        } else {
            write!(f, "{} ms", self.0)
        }
    }
}

/// `POST /kbs/v0/auth`: method and path of a call, for messages.
fn describe(call: &Call<'_>) -> String {
    let method = match call.method {
        super::Method::Get => "GET",
        super::Method::Post => "POST",
    };
    alloc::format!("{method} {}", call.path)
}

/// Something the shell should log: returned by the methods that feed the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An attestation succeeded (info).
    Attested(Tee),
    /// `/attest` was refused; the same attestation is sent again on the same session
    /// (warning).
    AttestAgain(KbsClientError),
    /// `/attest` was refused; a new handshake starts (warning).
    NewHandshake(KbsClientError),
    /// A resource GET was refused with 401; attesting again (warning).
    Reattest {
        /// The resource.
        uri: String,
        /// The KBS error body, if it was one.
        error: Option<KbsError>,
    },
    /// A transient failure; retrying after a pause (warning).
    Retry {
        /// What failed.
        cause: Transient,
        /// The pause, milliseconds.
        delay_ms: u64,
    },
}

impl Event {
    /// Whether this is worth a warning (everything but a successful attestation).
    pub fn is_warning(&self) -> bool {
        !matches!(self, Event::Attested(_))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Attested(tee) => write!(f, "attested to the KBS as '{}'", tee.as_str()),
            Event::AttestAgain(e) => {
                write!(
                    f,
                    "{e}; sending the attestation again (another KBS replica may hold the session)"
                )
            }
            Event::NewHandshake(e) => {
                write!(
                    f,
                    "{e}; starting a new handshake (the session may have expired)"
                )
            }
            Event::Reattest { uri, error } => {
                f.write_str(uri)?;
                f.write_str(": HTTP 401 ")?;
                if let Some(e) = error {
                    write!(f, "{e}")?;
                }
                f.write_str("; attesting again")
            }
            Event::Retry { cause, delay_ms } => {
                write!(f, "{cause}; retrying in {delay_ms} ms")
            }
        }
    }
}

/// The KBS client state for one run: the tee key, the session once attested, the retry
/// deadline and backoff, and the counters. Each resource is fetched with
/// [`Driver::fetch`].
pub struct Driver {
    tee: Tee,
    key: TeeKey,
    init_data: Option<String>,
    deadline_ms: u64,
    budget_ms: u64,
    backoff: Backoff,
    jitter: u32,
    session: Option<Session>,
    stats: Stats,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("tee", &self.tee)
            .field("deadline_ms", &self.deadline_ms)
            .field("session", &self.session)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver attesting as `tee` with `key` (used for every attestation of the run),
    /// sending `init_data` (TOML) with the evidence, working until `deadline_ms`
    /// (monotonic milliseconds; the run was given `budget_ms` in all, for messages), with
    /// pauses jittered from `jitter`.
    pub fn new(
        tee: Tee,
        key: TeeKey,
        init_data: Option<String>,
        deadline_ms: u64,
        budget_ms: u64,
        jitter: u32,
    ) -> Self {
        Driver {
            tee,
            key,
            init_data,
            deadline_ms,
            budget_ms,
            backoff: Backoff::new(BACKOFF_BASE_MS, BACKOFF_MAX_MS),
            jitter,
            session: None,
            stats: Stats::default(),
        }
    }

    /// The TEE this driver attests as.
    pub fn tee(&self) -> Tee {
        self.tee
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The deadline, monotonic milliseconds.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Whether a session is held (an attestation succeeded).
    pub fn is_attested(&self) -> bool {
        self.session.is_some()
    }

    /// Starts fetching `uri`: attests first unless a session is held. `E` is the evidence
    /// provider's error type.
    pub fn fetch<E>(&mut self, uri: &ResourceUri) -> Fetching<'_, E> {
        let state = if self.session.is_some() {
            State::Get
        } else {
            State::Auth(Handshake::new(self.tee))
        };
        Fetching {
            driver: self,
            uri: Some(uri.clone()),
            fetch: Fetch::new(),
            refusals: 0,
            sends: 0,
            state,
        }
    }

    /// The jitter for the next pause: the run's random value mixed with the pause count
    /// (a bijective integer hash), so successive pauses do not all take the same fraction.
    /// Attests (a fresh handshake, whether or not a session exists) and ends with
    /// [`Action::Done`] holding nothing: for a caller that needs the token itself.
    pub fn attest<E>(&mut self) -> Fetching<'_, E> {
        let state = State::Auth(Handshake::new(self.tee));
        Fetching {
            driver: self,
            uri: None,
            fetch: Fetch::new(),
            refusals: 0,
            sends: 0,
            state,
        }
    }

    /// Moves the deadline: a long-lived client (the server) gives each operation its own
    /// `budget_ms`, ending at `deadline_ms`.
    pub fn set_deadline(&mut self, deadline_ms: u64, budget_ms: u64) {
        self.deadline_ms = deadline_ms;
        self.budget_ms = budget_ms;
    }

    /// The attested session's token, if there is a session.
    pub fn token(&self) -> Option<&str> {
        self.session.as_ref().map(Session::token)
    }

    /// Forgets the session (its token expired): the next fetch attests first.
    pub fn end_session(&mut self) {
        self.session = None;
    }

    /// The tee key of every attestation of this driver.
    pub fn key(&self) -> &TeeKey {
        &self.key
    }

    fn next_jitter(&self) -> u32 {
        let mut x = self.jitter ^ self.stats.retries.wrapping_mul(0x9e37_79b9);
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^ (x >> 16)
    }
}

/// Where a fetch stands. The handshake states hold the typed handshake values, so only
/// the call legal in each state can be made.
enum State<E> {
    /// POST /auth next.
    Auth(Handshake),
    /// Evidence for the challenge next.
    Evidence(Challenged),
    /// POST /attest with this evidence next.
    Attest(Challenged, Value),
    /// GET the resource with the session next.
    Get,
    /// Pausing after a transient failure.
    Backoff { until_ms: u64, then: Resume },
    /// The resource, to hand out.
    Done(Zeroizing<Vec<u8>>),
    /// The failure, to hand out.
    Failed(Error<E>),
    /// Handed out (or a handle was dropped unanswered).
    Finished,
}

/// What a pause resumes.
#[derive(Clone, Copy, Debug)]
enum Resume {
    /// A new handshake from `/auth`.
    Handshake,
    /// The GET.
    Get,
}

/// Fetching one resource. Call [`Fetching::next`] until it returns [`Action::Done`] or
/// [`Action::Failed`].
pub struct Fetching<'d, E> {
    driver: &'d mut Driver,
    /// `None` for [`Driver::attest`].
    uri: Option<ResourceUri>,
    fetch: Fetch,
    /// `/attest` refusals in the current attestation.
    refusals: u32,
    /// `/attest` sends in the current handshake.
    sends: u32,
    state: State<E>,
}

/// What the shell should do next.
#[must_use]
pub enum Action<'a, 'd, E> {
    /// Make this HTTP call and answer with [`Outgoing::on_reply`] or
    /// [`Outgoing::on_transport_error`].
    Send(Outgoing<'a, 'd, E>),
    /// Get the TEE's evidence for [`EvidenceRequest::digest`] (the report data) and answer
    /// with [`EvidenceRequest::on_evidence`].
    NeedEvidence(EvidenceRequest<'a, 'd, E>),
    /// Sleep this many milliseconds, then call [`Fetching::next`] again.
    Wait(u64),
    /// The decrypted resource.
    Done(Zeroizing<Vec<u8>>),
    /// The fetch failed.
    Failed(Error<E>),
}

impl<E: fmt::Debug> fmt::Debug for Action<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(out) => write!(f, "Send({} {})", out.step(), out.call().path),
            Action::NeedEvidence(_) => f.write_str("NeedEvidence"),
            Action::Wait(ms) => write!(f, "Wait({ms})"),
            // Never the content: only its size.
            Action::Done(secret) => write!(f, "Done(<{} bytes>)", secret.len()),
            Action::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

impl<'d, E> Fetching<'d, E> {
    /// The resource being fetched.
    pub fn uri(&self) -> Option<&ResourceUri> {
        self.uri.as_ref()
    }

    /// What to do next, at monotonic time `now_ms`.
    pub fn next(&mut self, now_ms: u64) -> Action<'_, 'd, E> {
        loop {
            if now_ms >= self.driver.deadline_ms {
                let due = match &self.state {
                    State::Auth(hs) => Some(describe(&hs.auth_call())),
                    State::Evidence(_) => Some("getting evidence".into()),
                    State::Attest(..) => Some("POST /kbs/v0/attest".into()),
                    State::Get => self
                        .uri
                        .as_ref()
                        .map(|uri| alloc::format!("GET {}", uri.kbs_path())),
                    State::Backoff { .. } | State::Done(_) | State::Failed(_) | State::Finished => {
                        None
                    }
                };
                if let Some(what) = due {
                    self.state = State::Failed(self.expired(Expiry::Before(what)));
                }
            }
            match core::mem::replace(&mut self.state, State::Finished) {
                State::Auth(hs) => {
                    self.sends = 0;
                    return Action::Send(Outgoing {
                        job: self,
                        step: Sending::Auth(hs),
                    });
                }
                State::Evidence(challenged) => {
                    return Action::NeedEvidence(EvidenceRequest {
                        job: self,
                        challenged,
                    });
                }
                State::Attest(challenged, evidence) => {
                    return Action::Send(Outgoing {
                        job: self,
                        step: Sending::Attest(challenged, evidence),
                    });
                }
                State::Get => match (self.uri.clone(), self.driver.session.take()) {
                    // Attesting only: the session is what was wanted.
                    (None, session) => {
                        self.driver.session = session;
                        self.state = State::Done(Zeroizing::new(Vec::new()));
                    }
                    (Some(uri), Some(session)) => {
                        return Action::Send(Outgoing {
                            job: self,
                            step: Sending::Get(session, uri),
                        });
                    }
                    // Not reached (every answer to a GET returns the session), but
                    // without a session the way on is to attest.
                    (Some(_), None) => self.state = State::Auth(Handshake::new(self.driver.tee)),
                },
                State::Backoff { until_ms, then } if now_ms < until_ms => {
                    self.state = State::Backoff { until_ms, then };
                    return Action::Wait(until_ms - now_ms);
                }
                State::Backoff { then, .. } => {
                    self.state = match then {
                        Resume::Handshake => State::Auth(Handshake::new(self.driver.tee)),
                        Resume::Get => State::Get,
                    }
                }
                State::Done(secret) => return Action::Done(secret),
                State::Failed(e) => return Action::Failed(e),
                State::Finished => return Action::Failed(Error::Finished),
            }
        }
    }

    /// Pauses before `resume`, or fails if the pause would end after the deadline.
    fn back_off(&mut self, now_ms: u64, cause: Transient, then: Resume) -> Option<Event> {
        let jitter = self.driver.next_jitter();
        let delay_ms = self.driver.backoff.next_delay_ms(jitter);
        match now_ms.checked_add(delay_ms) {
            Some(until_ms) if until_ms <= self.driver.deadline_ms => {
                self.driver.stats.retries += 1;
                self.state = State::Backoff { until_ms, then };
                Some(Event::Retry { cause, delay_ms })
            }
            _ => {
                self.state = State::Failed(self.expired(Expiry::Retry(cause)));
                None
            }
        }
    }

    fn expired(&self, expiry: Expiry) -> Error<E> {
        Error::Deadline {
            budget_ms: self.driver.budget_ms,
            expiry,
        }
    }

    fn new_handshake(&mut self) {
        self.sends = 0;
        self.state = State::Auth(Handshake::new(self.driver.tee));
    }

    fn fail(&mut self, e: Error<E>) -> Option<Event> {
        self.state = State::Failed(e);
        None
    }
}

/// The call an [`Outgoing`] stands for.
enum Sending {
    Auth(Handshake),
    Attest(Challenged, Value),
    /// The session is lent to the GET and returned with the answer.
    Get(Session, ResourceUri),
}

/// An HTTP call to make. Dropping it unanswered abandons the fetch (and, for a GET, the
/// session: the next fetch attests again).
pub struct Outgoing<'a, 'd, E> {
    job: &'a mut Fetching<'d, E>,
    step: Sending,
}

impl<E> Outgoing<'_, '_, E> {
    /// The protocol step.
    pub fn step(&self) -> Step {
        match self.step {
            Sending::Auth(_) => Step::Auth,
            Sending::Attest(..) => Step::Attest,
            Sending::Get(..) => Step::Resource,
        }
    }

    /// The call (method, path, body, cookie, bearer token).
    pub fn call(&self) -> Call<'_> {
        let driver = &*self.job.driver;
        match &self.step {
            Sending::Auth(hs) => hs.auth_call(),
            Sending::Attest(challenged, evidence) => {
                challenged.attest_call(&driver.key, evidence, driver.init_data.as_deref())
            }
            Sending::Get(session, uri) => session.resource_call(uri),
        }
    }

    /// Feeds the KBS's answer, received at `now_ms`. Returns what to log, if anything.
    pub fn on_reply(self, now_ms: u64, reply: Reply<'_>) -> Option<Event> {
        let Outgoing { job, step } = self;
        match step {
            Sending::Auth(hs) => match hs.on_auth(&job.driver.key, reply) {
                Ok(challenged) => {
                    job.state = State::Evidence(challenged);
                    None
                }
                Err(e) if e.is_transient() => {
                    job.back_off(now_ms, Transient::Kbs(e), Resume::Handshake)
                }
                Err(e) => job.fail(Error::Kbs(e)),
            },
            Sending::Attest(challenged, evidence) => match challenged.clone().on_attest(reply) {
                Ok(session) => {
                    job.driver.session = Some(session);
                    job.driver.stats.attestations += 1;
                    job.state = State::Get;
                    Some(Event::Attested(job.driver.tee))
                }
                Err(e) if e.is_transient() => {
                    job.back_off(now_ms, Transient::Kbs(e), Resume::Handshake)
                }
                Err(
                    e @ KbsClientError::Refused {
                        step: Step::Attest, ..
                    },
                ) if job.sends + 1 < MAX_ATTEST_SENDS => {
                    job.sends += 1;
                    job.state = State::Attest(challenged, evidence);
                    Some(Event::AttestAgain(e))
                }
                Err(
                    e @ KbsClientError::Refused {
                        step: Step::Attest, ..
                    },
                ) if job.refusals + 1 < MAX_HANDSHAKE_ATTEMPTS => {
                    job.refusals += 1;
                    job.new_handshake();
                    Some(Event::NewHandshake(e))
                }
                Err(e) => job.fail(Error::Kbs(e)),
            },
            Sending::Get(session, uri) => {
                // Kept whatever the answer: a refused session is replaced only by a
                // successful attestation.
                job.driver.session = Some(session);
                match job.fetch.on_reply(&uri, &job.driver.key, reply) {
                    Ok(Next::Done(secret)) => {
                        job.driver.stats.resources += 1;
                        job.state = State::Done(secret);
                        None
                    }
                    Ok(Next::Reattest) => {
                        job.refusals = 0;
                        job.new_handshake();
                        Some(Event::Reattest {
                            uri: uri.to_string(),
                            error: KbsError::parse(reply.body),
                        })
                    }
                    Err(e) if e.is_transient() => {
                        job.back_off(now_ms, Transient::Kbs(e), Resume::Get)
                    }
                    Err(e) => job.fail(Error::Kbs(e)),
                }
            }
        }
    }

    /// Feeds a failure below HTTP, at `now_ms`: `transient` if trying again later may work
    /// (refused, reset, timed out), with the transport's message. Returns what to log.
    pub fn on_transport_error(self, now_ms: u64, transient: bool, what: String) -> Option<Event> {
        let Outgoing { job, step } = self;
        let then = match step {
            Sending::Get(session, _) => {
                job.driver.session = Some(session);
                Resume::Get
            }
            Sending::Auth(_) | Sending::Attest(..) => Resume::Handshake,
        };
        if transient {
            job.back_off(now_ms, Transient::Transport(what), then)
        } else {
            job.fail(Error::Transport(what))
        }
    }

    /// Reports that the transport stopped waiting because the run's deadline passed;
    /// `doing` says what it was doing (`waiting for 10.0.2.2:8080 to answer`). The fetch
    /// fails with [`Expiry::Call`].
    pub fn on_deadline(self, doing: String) {
        let call = describe(&self.call());
        let Outgoing { job, step } = self;
        if let Sending::Get(session, _) = step {
            job.driver.session = Some(session);
        }
        let e = job.expired(Expiry::Call { doing, call });
        job.fail(e);
    }
}

/// A request for the TEE's evidence binding [`EvidenceRequest::digest`]. Dropping it
/// unanswered abandons the fetch.
pub struct EvidenceRequest<'a, 'd, E> {
    job: &'a mut Fetching<'d, E>,
    challenged: Challenged,
}

impl<E> EvidenceRequest<'_, '_, E> {
    /// The binding digest the evidence must carry as its report data.
    pub fn digest(&self) -> &[u8] {
        self.challenged.digest()
    }

    /// The TEE the evidence is for.
    pub fn tee(&self) -> Tee {
        self.challenged.tee()
    }

    /// Feeds the TEE's primary evidence object, or why there is none (fatal: sealgate
    /// never falls back to another TEE). `now_ms` is for symmetry with the other answers:
    /// getting evidence is not interrupted by the deadline (it is a blocking call into the
    /// TEE), but it is not started after it, nor is the attestation that would follow.
    pub fn on_evidence(self, now_ms: u64, evidence: Result<Value, E>) {
        let _ = now_ms;
        let EvidenceRequest { job, challenged } = self;
        job.state = match evidence {
            Ok(value) => State::Attest(challenged, value),
            Err(e) => State::Failed(Error::Evidence(e)),
        };
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kbs::{MAX_RESOURCE_ATTEMPTS, Method};
    use crate::rcar::SampleEvidence;
    use crate::vector_tests::{EXCHANGES, recorded_key, s, vector};
    use alloc::borrow::ToOwned;
    use alloc::format;
    use alloc::vec;
    use std::collections::VecDeque;

    /// What the fake KBS answers to the next call.
    enum Answer {
        /// Status, body, `kbs-session-id` cookie.
        Http(u16, String, Option<String>),
        /// A transport failure: transient, message.
        Net(bool, &'static str),
    }

    /// A call as the transport saw it.
    #[derive(Debug)]
    struct Sent {
        label: String,
        body: Option<String>,
        cookie: Option<String>,
        bearer: Option<String>,
    }

    /// A scripted KBS, a clock and an evidence provider, recording the transcript.
    struct World {
        answers: VecDeque<Answer>,
        now: u64,
        /// Milliseconds each exchange takes.
        rtt: u64,
        transcript: Vec<String>,
        sent: Vec<Sent>,
        events: Vec<String>,
        waits: Vec<u64>,
        evidence_fails: bool,
    }

    impl World {
        fn new(answers: Vec<Answer>) -> Self {
            World {
                answers: answers.into(),
                now: 1_000,
                rtt: 10,
                transcript: Vec::new(),
                sent: Vec::new(),
                events: Vec::new(),
                waits: Vec::new(),
                evidence_fails: false,
            }
        }

        /// Runs one fetch to its end, as the binary's loop does.
        fn fetch(
            &mut self,
            driver: &mut Driver,
            uri: &str,
        ) -> Result<Zeroizing<Vec<u8>>, Error<String>> {
            let uri = ResourceUri::parse(uri).unwrap();
            let mut job = driver.fetch(&uri);
            loop {
                match job.next(self.now) {
                    Action::Send(out) => {
                        let call = out.call();
                        let label = match call.method {
                            Method::Post => {
                                format!("POST {}", call.path.trim_start_matches("/kbs/v0/"))
                            }
                            Method::Get => {
                                format!("GET {}", call.path.rsplit('/').next().unwrap())
                            }
                        };
                        assert_eq!(
                            label.starts_with("GET"),
                            out.step() == Step::Resource,
                            "{label}"
                        );
                        self.transcript.push(label.clone());
                        self.sent.push(Sent {
                            label,
                            body: call.body.clone(),
                            cookie: call.session_cookie.map(String::from),
                            bearer: call.bearer.map(String::from),
                        });
                        drop(call);
                        self.now += self.rtt;
                        let answer = self
                            .answers
                            .pop_front()
                            .unwrap_or_else(|| panic!("unexpected call: {:?}", self.transcript));
                        let event = match answer {
                            Answer::Http(status, body, cookie) => out.on_reply(
                                self.now,
                                Reply {
                                    status,
                                    body: body.as_bytes(),
                                    session_cookie: cookie.as_deref(),
                                },
                            ),
                            Answer::Net(transient, what) => {
                                out.on_transport_error(self.now, transient, what.to_owned())
                            }
                        };
                        self.events.extend(event.map(|e| e.to_string()));
                    }
                    Action::NeedEvidence(request) => {
                        self.transcript.push("evidence".into());
                        assert_eq!(request.tee(), Tee::Sample);
                        let evidence =
                            if self.evidence_fails {
                                Err("the TSM report is busy".to_owned())
                            } else {
                                Ok(serde_json::to_value(SampleEvidence::new(request.digest()))
                                    .unwrap())
                            };
                        request.on_evidence(self.now, evidence);
                    }
                    Action::Wait(ms) => {
                        assert!(ms > 0);
                        assert!(
                            self.now + ms <= job.driver.deadline_ms,
                            "asked to wait past the deadline"
                        );
                        self.transcript.push("wait".into());
                        self.waits.push(ms);
                        self.now += ms;
                    }
                    Action::Done(secret) => return Ok(secret),
                    Action::Failed(e) => return Err(e),
                }
            }
        }
    }

    /// The recorded p256 exchange: its key and the bodies the KBS sent.
    struct Recorded {
        v: Value,
    }

    impl Recorded {
        fn new(name: &str) -> Self {
            Recorded { v: vector(name) }
        }
        fn driver(&self, deadline_ms: u64) -> Driver {
            Driver::new(
                Tee::Sample,
                recorded_key(&self.v),
                None,
                deadline_ms,
                2_000,
                0x1234_5678,
            )
        }
        fn cookie(&self) -> Option<String> {
            Some(s(&self.v, "/auth/session_cookie_value").to_owned())
        }
        fn auth(&self) -> Answer {
            Answer::Http(200, s(&self.v, "/auth/response/body").into(), self.cookie())
        }
        fn attest(&self) -> Answer {
            Answer::Http(
                200,
                s(&self.v, "/attest/response/body").into(),
                self.cookie(),
            )
        }
        fn resource(&self) -> Answer {
            Answer::Http(200, s(&self.v, "/resource/response/body").into(), None)
        }
        fn plaintext(&self) -> Vec<u8> {
            let h = s(&self.v, "/expected_plaintext/hex");
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        }
        fn uri(&self) -> String {
            format!("kbs:///{}", s(&self.v, "/resource/resource_id"))
        }
    }

    fn p256() -> Recorded {
        Recorded::new("p256-cookie.json")
    }

    fn status(code: u16, body: &str) -> Answer {
        Answer::Http(code, body.into(), None)
    }

    const URI: &str = "kbs:///default/key/a";
    const DENY: &str = r#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"Access was denied by policy"}"#;
    const EXPIRED: &str = r#"{"type":"https://github.com/confidential-containers/kbs/errors/AttestationError","detail":"Attestation error: session expired"}"#;
    const HANDSHAKE: [&str; 3] = ["POST auth", "evidence", "POST attest"];

    fn transcript(parts: &[&[&str]]) -> Vec<String> {
        parts
            .iter()
            .flat_map(|p| p.iter())
            .map(|s| (*s).into())
            .collect()
    }

    #[test]
    fn recorded_exchanges_replay_through_the_driver() {
        for name in EXCHANGES {
            let r = Recorded::new(name);
            let mut driver = r.driver(u64::MAX);
            let mut w = World::new(vec![r.auth(), r.attest(), r.resource()]);
            let secret = w.fetch(&mut driver, &r.uri()).unwrap();
            assert_eq!(&secret[..], &r.plaintext()[..], "{name}");
            let leaf = r.uri().rsplit('/').next().unwrap().to_owned();
            assert_eq!(
                w.transcript,
                transcript(&[&HANDSHAKE, &[&format!("GET {leaf}")]]),
                "{name}"
            );
            // The session cookie from /auth goes with /attest and the GET, with the token.
            // /auth as the same rules accept it (version, tee).
            let auth: Value = serde_json::from_str(w.sent[0].body.as_deref().unwrap()).unwrap();
            let recorded: Value = serde_json::from_str(s(&r.v, "/auth/request/body")).unwrap();
            assert_eq!(
                (&auth["version"], &auth["tee"]),
                (&recorded["version"], &recorded["tee"])
            );
            // The evidence arrives as a `Value`, whose members serde_json keeps sorted (as
            // the binary always sent them): the same JSON, member order aside.
            let attest: Value = serde_json::from_str(w.sent[1].body.as_deref().unwrap()).unwrap();
            let recorded: Value = serde_json::from_str(s(&r.v, "/attest/request/body")).unwrap();
            assert_eq!(attest, recorded, "{name}");
            assert_eq!(w.sent[1].cookie, r.cookie(), "{name}");
            assert_eq!(w.sent[2].cookie, r.cookie(), "{name}");
            assert_eq!(w.sent[2].bearer.as_deref(), Some(s(&r.v, "/attest/token")));
            assert!(w.sent[2].body.is_none());
            assert_eq!(w.events, ["attested to the KBS as 'sample'"]);
            assert_eq!(
                driver.stats(),
                Stats {
                    attestations: 1,
                    resources: 1,
                    retries: 0
                }
            );

            // The session is reused for the next resource: one GET, no handshake.
            let mut w = World::new(vec![r.resource()]);
            w.fetch(&mut driver, &r.uri()).unwrap();
            assert_eq!(w.transcript, [format!("GET {leaf}")]);
            assert_eq!(driver.stats().attestations, 1);
            assert_eq!(driver.stats().resources, 2);
        }
    }

    #[test]
    fn resource_401_attests_again_then_succeeds() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![
            r.auth(),
            r.attest(),
            status(401, DENY),
            r.auth(),
            r.attest(),
            r.resource(),
        ]);
        assert_eq!(&w.fetch(&mut driver, URI).unwrap()[..], &r.plaintext()[..]);
        assert_eq!(
            w.transcript,
            transcript(&[&HANDSHAKE, &["GET a"], &HANDSHAKE, &["GET a"]])
        );
        assert_eq!(
            w.events,
            [
                "attested to the KBS as 'sample'",
                "kbs:///default/key/a: HTTP 401 PolicyDeny: Access was denied by policy; attesting again",
                "attested to the KBS as 'sample'",
            ]
        );
        assert_eq!(driver.stats().attestations, 2);
        assert_eq!(driver.stats().retries, 0);
    }

    #[test]
    fn resource_401_is_capped_at_max_resource_attempts() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let mut answers = Vec::new();
        for _ in 0..MAX_RESOURCE_ATTEMPTS {
            answers.extend([r.auth(), r.attest(), status(401, DENY)]);
        }
        let mut w = World::new(answers);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(
            w.transcript,
            transcript(&[
                &HANDSHAKE,
                &["GET a"],
                &HANDSHAKE,
                &["GET a"],
                &HANDSHAKE,
                &["GET a"]
            ])
        );
        assert!(matches!(e, Error::Kbs(KbsClientError::Unauthorized { .. })));
        assert_eq!(
            e.to_string(),
            "kbs:///default/key/a: refused after 3 attempts, each after a fresh attestation (PolicyDeny: Access was denied by policy)"
        );
        assert_eq!(
            w.events
                .iter()
                .filter(|e| e.ends_with("; attesting again"))
                .count(),
            2
        );
        assert_eq!(driver.stats().attestations, 3);
    }

    #[test]
    fn resource_404_stops_at_once() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let nf = r#"{"type":"https://github.com/confidential-containers/kbs/errors/PluginNotFound","detail":"Plugin x not found"}"#;
        let mut w = World::new(vec![r.auth(), r.attest(), status(404, nf)]);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(w.transcript, transcript(&[&HANDSHAKE, &["GET a"]]));
        assert_eq!(
            e.to_string(),
            "kbs:///default/key/a: not found on the KBS (HTTP 404) (PluginNotFound: Plugin x not found)"
        );
        // The session survives a 404: the next resource is fetched without attesting.
        let mut w = World::new(vec![r.resource()]);
        w.fetch(&mut driver, "kbs:///default/key/b").unwrap();
        assert_eq!(w.transcript, ["GET b"]);
    }

    #[test]
    fn resource_5xx_backs_off_and_resends_the_get() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![
            r.auth(),
            r.attest(),
            status(503, "busy"),
            status(502, ""),
            r.resource(),
        ]);
        w.fetch(&mut driver, URI).unwrap();
        assert_eq!(
            w.transcript,
            transcript(&[&HANDSHAKE, &["GET a", "wait", "GET a", "wait", "GET a"]])
        );
        // Jittered exponential backoff: [base/2, base], then [base, 2 base].
        assert!((125..=250).contains(&w.waits[0]), "{:?}", w.waits);
        assert!((250..=500).contains(&w.waits[1]), "{:?}", w.waits);
        assert_eq!(
            w.events[1],
            format!(
                "the KBS is unavailable (resource: HTTP 503); retrying in {} ms",
                w.waits[0]
            )
        );
        assert!(
            w.events[2].starts_with("the KBS is unavailable (resource: HTTP 502); retrying in ")
        );
        assert_eq!(driver.stats().retries, 2);
        assert_eq!(driver.stats().attestations, 1);
    }

    #[test]
    fn handshake_5xx_starts_over_at_auth() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![status(503, ""), r.auth(), r.attest(), r.resource()]);
        w.fetch(&mut driver, URI).unwrap();
        assert_eq!(
            w.transcript,
            transcript(&[&["POST auth", "wait"], &HANDSHAKE, &["GET a"]])
        );
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![
            r.auth(),
            status(500, ""),
            r.auth(),
            r.attest(),
            r.resource(),
        ]);
        w.fetch(&mut driver, URI).unwrap();
        assert_eq!(
            w.transcript,
            transcript(&[&HANDSHAKE, &["wait"], &HANDSHAKE, &["GET a"]])
        );
        assert_eq!(driver.stats().retries, 1);
        assert_eq!(driver.stats().attestations, 1);
    }

    #[test]
    fn deadline_expires_during_backoff_without_waiting_past_it() {
        let r = p256();
        let start = 1_000;
        let deadline = start + 2_000;
        let mut driver = r.driver(deadline);
        let mut answers = vec![r.auth(), r.attest()];
        answers.extend((0..20).map(|_| status(503, "")));
        let mut w = World::new(answers);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        // The World asserts that no wait ends after the deadline.
        assert!(w.now <= deadline, "{} > {deadline}", w.now);
        let retries = driver.stats().retries as usize;
        assert!(retries >= 3, "{:?}", w.transcript);
        assert_eq!(w.waits.len(), retries);
        let mut want = transcript(&[&HANDSHAKE, &["GET a"]]);
        for _ in 0..retries {
            want.extend(["wait".into(), "GET a".into()]);
        }
        assert_eq!(w.transcript, want);
        assert_eq!(
            e,
            Error::Deadline {
                budget_ms: 2_000,
                expiry: Expiry::Retry(Transient::Kbs(KbsClientError::Unavailable {
                    step: Step::Resource,
                    status: 503
                }))
            }
        );
        assert_eq!(
            e.to_string(),
            "the KBS is unavailable (resource: HTTP 503); giving up: the deadline of 2 s would pass before the next retry"
        );
    }

    #[test]
    fn kbs_that_never_answers_fails_at_the_deadline_naming_the_cause() {
        let r = p256();
        let mut driver = r.driver(1_000 + 1_000);
        let mut w = World::new(
            (0..20)
                .map(|_| Answer::Net(true, "connect to 10.0.0.1:8080: Connection refused"))
                .collect(),
        );
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert!(
            w.transcript
                .starts_with(&transcript(&[&["POST auth", "wait", "POST auth"]]))
        );
        assert!(w.transcript.iter().all(|t| t == "POST auth" || t == "wait"));
        assert_eq!(
            e.to_string(),
            "connect to 10.0.0.1:8080: Connection refused; giving up: the deadline of 2 s would pass before the next retry"
        );
        assert!(
            w.events.iter().all(
                |e| e.starts_with("connect to 10.0.0.1:8080: Connection refused; retrying in ")
            )
        );
        assert_eq!(driver.stats().attestations, 0);
    }

    #[test]
    fn a_deadline_already_past_sends_nothing() {
        let r = p256();
        let mut driver = r.driver(0);
        let mut w = World::new(vec![]);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert!(w.transcript.is_empty(), "{:?}", w.transcript);
        assert_eq!(
            e,
            Error::Deadline {
                budget_ms: 2_000,
                expiry: Expiry::Before("POST /kbs/v0/auth".into())
            }
        );
        assert_eq!(
            e.to_string(),
            "deadline of 2 s passed before POST /kbs/v0/auth"
        );
        assert_eq!(driver.stats().retries, 0);
    }

    #[test]
    fn the_deadline_passing_during_a_call_stops_the_run() {
        // The first resource takes the whole budget; the second is never asked for.
        let r = p256();
        let start = 1_000;
        let mut driver = r.driver(start + 2_000);
        let mut w = World::new(vec![r.auth(), r.attest(), r.resource()]);
        w.rtt = 700;
        w.fetch(&mut driver, URI).unwrap();
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("deadline of 2 s passed before GET /kbs/v0/resource/default/key/a")
        );
        assert_eq!(w.transcript, transcript(&[&HANDSHAKE, &["GET a"]]));
        // A transient failure at the deadline is not retried either.
        let mut driver = r.driver(start + 2_000);
        let mut w = World::new(vec![r.auth(), Answer::Net(true, "reset")]);
        w.rtt = 1_000;
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Deadline {
                    expiry: Expiry::Retry(_),
                    ..
                }
            ),
            "{e:?}"
        );
        // Evidence is not asked for once the deadline has passed.
        let mut driver = r.driver(start + 500);
        let mut w = World::new(vec![r.auth()]);
        w.rtt = 600;
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(w.transcript, ["POST auth"]);
        assert_eq!(
            e.to_string(),
            "deadline of 2 s passed before getting evidence"
        );
    }

    #[test]
    fn a_wait_the_transport_cut_at_the_deadline_fails_naming_it() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let uri = ResourceUri::parse(URI).unwrap();
        let mut job = driver.fetch::<String>(&uri);
        let Action::Send(out) = job.next(1_000) else {
            panic!("expected a call");
        };
        out.on_deadline("waiting for 10.0.2.2:8080 to answer".into());
        let Action::Failed(e) = job.next(3_000) else {
            panic!("expected the failure");
        };
        assert_eq!(
            e.to_string(),
            "deadline of 2 s passed while waiting for 10.0.2.2:8080 to answer (POST /kbs/v0/auth)"
        );
        assert!(matches!(job.next(3_000), Action::Failed(Error::Finished)));
    }

    /// A handshake whose every `/attest` is refused: `/auth`, then MAX_ATTEST_SENDS 401s.
    fn refused_handshake(r: &Recorded) -> Vec<Answer> {
        let mut answers = vec![r.auth()];
        answers.extend((0..MAX_ATTEST_SENDS).map(|_| status(401, EXPIRED)));
        answers
    }

    #[test]
    fn attest_401_sends_the_attestation_again_then_starts_a_new_handshake_up_to_the_cap() {
        let r = p256();
        // Once (another replica answered): the same attestation again, on the same session.
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![
            r.auth(),
            status(401, EXPIRED),
            r.attest(),
            r.resource(),
        ]);
        w.fetch(&mut driver, URI).unwrap();
        assert_eq!(
            w.transcript,
            transcript(&[&HANDSHAKE, &["POST attest", "GET a"]])
        );
        assert_eq!(w.sent[1].label, "POST attest");
        assert_eq!(
            (&w.sent[2].body, &w.sent[2].cookie),
            (&w.sent[1].body, &w.sent[1].cookie),
            "the same attestation on the same session"
        );
        assert!(w.sent[1].cookie.is_some());
        assert_eq!(
            w.events[0],
            "the KBS refused the attest step with HTTP 401 (AttestationError: Attestation error: session expired); sending the attestation again (another KBS replica may hold the session)"
        );
        assert_eq!(driver.stats().attestations, 1);

        // The session is gone: MAX_ATTEST_SENDS sends, then a new handshake succeeds.
        let mut driver = r.driver(u64::MAX);
        let mut answers = refused_handshake(&r);
        answers.extend([r.auth(), r.attest(), r.resource()]);
        let mut w = World::new(answers);
        w.fetch(&mut driver, URI).unwrap();
        let again = vec!["POST attest"; MAX_ATTEST_SENDS as usize - 1];
        assert_eq!(
            w.transcript,
            transcript(&[&HANDSHAKE, &again, &HANDSHAKE, &["GET a"]])
        );
        assert_eq!(
            w.events[MAX_ATTEST_SENDS as usize - 1],
            "the KBS refused the attest step with HTTP 401 (AttestationError: Attestation error: session expired); starting a new handshake (the session may have expired)"
        );
        assert_eq!(driver.stats().attestations, 1);

        // Always: MAX_HANDSHAKE_ATTEMPTS handshakes of MAX_ATTEST_SENDS sends, then the refusal.
        let mut driver = r.driver(u64::MAX);
        let mut answers = Vec::new();
        for _ in 0..MAX_HANDSHAKE_ATTEMPTS {
            answers.extend(refused_handshake(&r));
        }
        let mut w = World::new(answers);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        let count = |label: &str| w.transcript.iter().filter(|t| *t == label).count() as u32;
        assert_eq!(count("POST auth"), MAX_HANDSHAKE_ATTEMPTS);
        assert_eq!(count("evidence"), MAX_HANDSHAKE_ATTEMPTS);
        assert_eq!(
            count("POST attest"),
            MAX_HANDSHAKE_ATTEMPTS * MAX_ATTEST_SENDS
        );
        assert!(matches!(
            e,
            Error::Kbs(KbsClientError::Refused {
                step: Step::Attest,
                status: 401,
                ..
            })
        ));
        assert_eq!(
            w.events.len() as u32,
            MAX_HANDSHAKE_ATTEMPTS * MAX_ATTEST_SENDS - 1
        );
        assert_eq!(driver.stats().attestations, 0);
        assert_eq!(driver.stats().retries, 0);
    }

    #[test]
    fn the_handshake_cap_counts_per_attestation() {
        // Two refused handshakes before the first attestation and two more before the
        // second one: each attestation has its own MAX_HANDSHAKE_ATTEMPTS.
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let mut answers = Vec::new();
        for last in [status(401, DENY), r.resource()] {
            answers.extend(refused_handshake(&r));
            answers.extend(refused_handshake(&r));
            answers.extend([r.auth(), r.attest(), last]);
        }
        let mut w = World::new(answers);
        w.fetch(&mut driver, URI).unwrap();
        assert_eq!(driver.stats().attestations, 2);
        assert_eq!(w.transcript.iter().filter(|t| *t == "POST auth").count(), 6);
        assert_eq!(
            w.transcript.iter().filter(|t| *t == "POST attest").count() as u32,
            2 * (2 * MAX_ATTEST_SENDS + 1)
        );
    }

    #[test]
    fn auth_refusals_and_protocol_errors_are_final() {
        let r = p256();
        for (answer, says) in [
            (
                status(401, EXPIRED),
                "the KBS refused the auth step with HTTP 401",
            ),
            (
                status(200, "<html>"),
                "invalid challenge from the KBS: not a JSON object with a string nonce",
            ),
            (
                status(418, ""),
                "unexpected HTTP 418 from the KBS in the auth step",
            ),
        ] {
            let mut driver = r.driver(u64::MAX);
            let mut w = World::new(vec![answer]);
            let e = w.fetch(&mut driver, URI).unwrap_err();
            assert_eq!(w.transcript, ["POST auth"]);
            assert!(e.to_string().starts_with(says), "{e}");
        }
        // A garbage token: final too.
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![r.auth(), status(200, "{}")]);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(w.transcript, HANDSHAKE);
        assert!(matches!(e, Error::Kbs(KbsClientError::Protocol(_))));
    }

    #[test]
    fn transport_errors_retry_when_transient_and_stop_when_not() {
        let r = p256();
        // Transient at each step: the handshake starts over; a GET is resent.
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![
            Answer::Net(true, "connection reset"),
            r.auth(),
            Answer::Net(true, "timed out after 1000 ms"),
            r.auth(),
            r.attest(),
            Answer::Net(true, "the server closed the connection"),
            r.resource(),
        ]);
        w.fetch(&mut driver, URI).unwrap();
        assert_eq!(
            w.transcript,
            transcript(&[
                &["POST auth", "wait"],
                &HANDSHAKE,
                &["wait"],
                &HANDSHAKE,
                &["GET a", "wait", "GET a"]
            ])
        );
        assert_eq!(driver.stats().retries, 3);
        assert!(w.events[0].starts_with("connection reset; retrying in "));
        // The GET after a transient failure still carries the session.
        let gets: Vec<&Sent> = w.sent.iter().filter(|s| s.label == "GET a").collect();
        assert!(
            gets.iter()
                .all(|g| g.cookie == r.cookie() && g.bearer.is_some())
        );

        // Not transient: final, no wait.
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![
            r.auth(),
            r.attest(),
            Answer::Net(false, "response body exceeds the 1048576-byte limit"),
        ]);
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(w.transcript, transcript(&[&HANDSHAKE, &["GET a"]]));
        assert_eq!(
            e,
            Error::Transport("response body exceeds the 1048576-byte limit".into())
        );
        assert_eq!(driver.stats().retries, 0);
    }

    #[test]
    fn evidence_failure_is_final() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let mut w = World::new(vec![r.auth()]);
        w.evidence_fails = true;
        let e = w.fetch(&mut driver, URI).unwrap_err();
        assert_eq!(w.transcript, ["POST auth", "evidence"]);
        assert_eq!(e.to_string(), "cannot get evidence: the TSM report is busy");
        let e = e.map_evidence(|s| s.len());
        assert_eq!(e, Error::Evidence(22));
    }

    #[test]
    fn a_waiting_driver_only_waits_for_what_is_left() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let uri = ResourceUri::parse(URI).unwrap();
        let mut job: Fetching<'_, String> = driver.fetch(&uri);
        let Action::Send(out) = job.next(0) else {
            panic!("auth first")
        };
        assert_eq!(out.step(), Step::Auth);
        assert!(out.on_transport_error(0, true, "reset".into()).is_some());
        let Action::Wait(first) = job.next(0) else {
            panic!("a pause")
        };
        assert!(matches!(job.next(first - 1), Action::Wait(1)));
        assert!(matches!(job.next(first), Action::Send(_)));
    }

    #[test]
    fn a_finished_or_abandoned_fetch_says_so() {
        let r = p256();
        let mut driver = r.driver(u64::MAX);
        let uri = ResourceUri::parse(URI).unwrap();
        let mut job: Fetching<'_, String> = driver.fetch(&uri);
        // A handle dropped unanswered abandons the fetch.
        let call = match job.next(0) {
            Action::Send(out) => out.call().path,
            other => panic!("{other:?}"),
        };
        assert_eq!(call, "/kbs/v0/auth");
        assert!(matches!(job.next(0), Action::Failed(Error::Finished)));

        let mut w = World::new(vec![r.auth(), r.attest(), r.resource()]);
        w.fetch(&mut driver, URI).unwrap();
        let mut job: Fetching<'_, String> = driver.fetch(&uri);
        let Action::Send(out) = job.next(0) else {
            panic!("a GET")
        };
        assert_eq!(out.step(), Step::Resource);
        let Answer::Http(_, body, _) = r.resource() else {
            unreachable!()
        };
        let reply = Reply {
            status: 200,
            body: body.as_bytes(),
            session_cookie: None,
        };
        assert!(out.on_reply(0, reply).is_none());
        assert!(matches!(job.next(0), Action::Done(_)));
        assert!(matches!(job.next(0), Action::Failed(Error::Finished)));
        assert_eq!(
            Error::<String>::Finished.to_string(),
            "the KBS fetch has already ended"
        );
    }

    #[test]
    fn jitter_differs_between_runs_and_between_pauses() {
        let r = p256();
        let waits = |seed: u32| {
            let mut driver = Driver::new(
                Tee::Sample,
                recorded_key(&r.v),
                None,
                u64::MAX,
                60_000,
                seed,
            );
            let mut answers = vec![r.auth(), r.attest()];
            answers.extend((0..4).map(|_| status(503, "")));
            answers.push(r.resource());
            let mut w = World::new(answers);
            w.fetch(&mut driver, URI).unwrap();
            w.waits
        };
        let (a, b) = (waits(1), waits(2));
        assert_ne!(a, b);
        assert_eq!(a, waits(1), "deterministic for a seed");
        for w in [&a, &b] {
            assert!((125..=250).contains(&w[0]));
            assert!((250..=500).contains(&w[1]));
            assert!((500..=1000).contains(&w[2]));
            assert!((1000..=2000).contains(&w[3]));
        }
    }
}
