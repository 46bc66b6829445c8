//! Drives the core's KBS state machine over a transport, with the timing policy the core
//! leaves to the shell: transient failures (connection refused or reset, timeouts, 5xx)
//! are retried with jittered exponential backoff until the configured deadline; every
//! other failure is final. The tee key is generated once and used for every
//! (re-)attestation of the run.

use crate::evidence::Attester;
use sealgate_core::kbs::{
    self, Backoff, Call, Fetch, Handshake, KbsClientError, Next, Reply, Session, Step,
};
use sealgate_core::rcar::Tee;
use sealgate_core::teekey::TeeKey;
use sealgate_core::uri::ResourceUri;
use sealgate_linux::{debug, info, warn};
use std::fmt;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

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
}

/// Sends one protocol call and returns the response.
pub trait Transport {
    /// Makes the HTTP exchange for `call`.
    fn exchange(&mut self, call: &Call<'_>) -> Result<Response, TransportError>;
}

/// Why the agent could not get a secret.
#[derive(Debug)]
pub enum ClientError {
    /// The KBS said no, or said something unusable.
    Kbs(KbsClientError),
    /// The network failed in a way retrying does not fix, or the deadline passed.
    Transport(String),
    /// The TEE could not produce evidence (fatal: never falls back to another TEE).
    Evidence(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Kbs(e) => write!(f, "{e}"),
            ClientError::Transport(e) => f.write_str(e),
            ClientError::Evidence(e) => write!(f, "cannot get evidence: {e}"),
        }
    }
}

/// Counters for the final report and the benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Completed attestations.
    pub attestations: u32,
    /// Resources fetched.
    pub resources: u32,
    /// Retries after transient failures.
    pub retries: u32,
}

/// A KBS client for one run.
pub struct Client<T: Transport> {
    transport: T,
    tee: Tee,
    key: TeeKey,
    attester: Attester,
    init_data: Option<String>,
    session: Option<Session>,
    deadline: Instant,
    backoff: Backoff,
    jitter: Box<dyn FnMut() -> u32>,
    /// Counters.
    pub stats: Stats,
}

/// What a failed attempt means for the retry loop.
enum Attempt<V> {
    Done(V),
    Retry(String),
}

impl<T: Transport> Client<T> {
    /// A client that gives up on transient failures after `deadline`.
    pub fn new(
        transport: T,
        key: TeeKey,
        attester: Attester,
        init_data: Option<String>,
        deadline: Instant,
        jitter: Box<dyn FnMut() -> u32>,
    ) -> Self {
        Client {
            transport,
            tee: attester.tee(),
            key,
            attester,
            init_data,
            session: None,
            deadline,
            backoff: Backoff::new(250, 5_000),
            jitter,
            stats: Stats::default(),
        }
    }

    /// The transport (for its connection counters).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sleeps before the next retry, or fails if that would pass the deadline.
    fn pause(&mut self, why: &str) -> Result<(), ClientError> {
        let delay = Duration::from_millis(self.backoff.next_delay_ms((self.jitter)()));
        let now = Instant::now();
        if now + delay > self.deadline {
            return Err(ClientError::Transport(format!(
                "{why}; giving up: the retry deadline has passed"
            )));
        }
        warn!("{why}; retrying in {} ms", delay.as_millis());
        self.stats.retries += 1;
        std::thread::sleep(delay);
        Ok(())
    }

    /// Runs one RCAR handshake (auth, evidence, attest).
    fn handshake(&mut self) -> Result<Attempt<Session>, ClientError> {
        let mut hs = Handshake::new(self.tee, &self.key);
        let resp = match send(&mut self.transport, &hs.auth_call())? {
            Attempt::Done(r) => r,
            Attempt::Retry(why) => return Ok(Attempt::Retry(why)),
        };
        let digest = match hs.on_auth(reply(&resp)) {
            Ok(d) => d,
            Err(e) if e.is_transient() => return Ok(Attempt::Retry(e.to_string())),
            Err(e) => return Err(ClientError::Kbs(e)),
        };
        let evidence = self
            .attester
            .evidence(&digest)
            .map_err(|e| ClientError::Evidence(e.to_string()))?;
        let call = hs.attest_call(&evidence, self.init_data.as_deref());
        let resp = match send(&mut self.transport, &call)? {
            Attempt::Done(r) => r,
            Attempt::Retry(why) => return Ok(Attempt::Retry(why)),
        };
        match hs.on_attest(reply(&resp)) {
            Ok(s) => Ok(Attempt::Done(s)),
            Err(e) if e.is_transient() => Ok(Attempt::Retry(e.to_string())),
            Err(e) => Err(ClientError::Kbs(e)),
        }
    }

    /// Attests (again), retrying transient failures until the deadline.
    pub fn attest(&mut self) -> Result<(), ClientError> {
        let mut refusals = 0;
        loop {
            match self.handshake() {
                Ok(Attempt::Done(session)) => {
                    self.stats.attestations += 1;
                    info!("attested to the KBS as '{}'", self.tee.as_str());
                    self.session = Some(session);
                    return Ok(());
                }
                Ok(Attempt::Retry(why)) => self.pause(&why)?,
                Err(ClientError::Kbs(
                    e @ KbsClientError::Refused {
                        step: Step::Attest, ..
                    },
                )) if refusals + 1 < kbs::MAX_HANDSHAKE_ATTEMPTS => {
                    refusals += 1;
                    warn!("{e}; starting a new handshake (the session may have expired)");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fetches and decrypts one resource, attesting first if needed and again when the
    /// KBS answers 401 (at most [`kbs::MAX_RESOURCE_ATTEMPTS`] GETs).
    pub fn fetch(&mut self, uri: &ResourceUri) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        if self.session.is_none() {
            self.attest()?;
        }
        let mut fetch = Fetch::new();
        loop {
            let Some(session) = self.session.as_ref() else {
                return Err(ClientError::Transport("no session".into()));
            };
            let call = session.resource_call(uri);
            let resp = match send(&mut self.transport, &call)? {
                Attempt::Done(r) => r,
                Attempt::Retry(why) => {
                    self.pause(&why)?;
                    continue;
                }
            };
            match fetch.on_reply(uri, &self.key, reply(&resp)) {
                Ok(Next::Done(secret)) => {
                    self.stats.resources += 1;
                    debug!("fetched {uri} ({} bytes)", secret.len());
                    return Ok(secret);
                }
                Ok(Next::Reattest) => {
                    let why = sealgate_core::rcar::KbsError::parse(&resp.body)
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    warn!("{uri}: HTTP 401 {why}; attesting again");
                    self.attest()?;
                }
                Err(e) if e.is_transient() => self.pause(&e.to_string())?,
                Err(e) => return Err(ClientError::Kbs(e)),
            }
        }
    }
}

/// One exchange, sorting transport failures into "retry later" and "give up".
fn send<T: Transport>(
    transport: &mut T,
    call: &Call<'_>,
) -> Result<Attempt<Response>, ClientError> {
    match transport.exchange(call) {
        Ok(r) => Ok(Attempt::Done(r)),
        Err(e) if e.transient => Ok(Attempt::Retry(e.message)),
        Err(e) => Err(ClientError::Transport(e.message)),
    }
}

fn reply(resp: &Response) -> Reply<'_> {
    Reply {
        status: resp.status,
        body: &resp.body,
        session_cookie: resp.session_cookie.as_deref(),
    }
}
