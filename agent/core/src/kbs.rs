//! The KBS protocol pieces, sans-IO: the HTTP calls to make and how to read the replies.
//! [`driver`] strings them into the whole conversation (sequencing, caps, retries and the
//! deadline); the binary owns the socket, the clock and the TEE device.
//!
//! The handshake is typed by its state, so an `/attest` before `/auth` cannot be written:
//!
//! ```text
//! Handshake::new(tee)      .auth_call()  -> reply -> .on_auth(&key, reply)?   => Challenged
//! Challenged               .digest()     -> evidence (report data)
//!                          .attest_call(&key, &evidence, init_data) -> reply
//!                          .on_attest(reply)?                              => Session
//! Session                  .resource_call(uri) -> reply -> Fetch::on_reply => Done | Reattest
//! ```
//!
//! Policy, as the upstream client: a 401 on a resource means "attest again and retry",
//! at most [`MAX_RESOURCE_ATTEMPTS`] GETs per resource (deny, missing resource and expiry
//! are all 401 on Trustee, so the cap matters); 404 stops at once; 5xx is transient and
//! retried after a pause ([`Backoff`]).

pub mod driver;

use crate::jwe::{self, JweError};
use crate::rcar::{self, Challenge, KbsError, ProtocolError, Tee};
use crate::teekey::TeeKey;
use crate::uri::ResourceUri;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::Serialize;
use zeroize::Zeroizing;

/// GETs per resource before giving up on repeated 401s (upstream's
/// `KBS_GET_RESOURCE_MAX_ATTEMPT`).
pub const MAX_RESOURCE_ATTEMPTS: u32 = 3;

/// Handshakes tried when `/attest` is refused. Trustee answers 401 both when the evidence
/// does not verify and when the session died between `/auth` and `/attest` (timeout, KBS
/// restart); only a fresh handshake tells them apart. Upstream retries its handshake too.
pub const MAX_HANDSHAKE_ATTEMPTS: u32 = 3;

/// `/attest` sends per handshake: a refused `/attest` is first sent again, unchanged, on the
/// same session, before a new handshake. Behind a round-robin load balancer in front of
/// KBS replicas that keep sessions in memory (Trustee's default), the `/attest` can land on
/// a replica that never saw the `/auth`; that replica answers the same 401 as for evidence
/// that does not verify. A new handshake does not help there (with one guest, a per-request
/// round-robin puts every `/attest` on the replica after its `/auth`), but sending the
/// attestation again walks the ring and reaches the session's replica within N sends for N
/// replicas. With many guests each send lands there with probability about 1/N: for N = 3,
/// all 30 sends of 3 handshakes miss with probability (2/3)^30 ~ 5e-6. Chosen, not measured
/// on a real fleet; the cost is that evidence the KBS rejects is sent up to 30 times (each
/// send is one small request; the KBS verifies it again each time).
pub const MAX_ATTEST_SENDS: u32 = 10;

/// HTTP methods the protocol uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET (resources).
    Get,
    /// POST (auth, attest) with a JSON body.
    Post,
}

/// One HTTP call the transport should make.
#[derive(Debug)]
pub struct Call<'a> {
    /// Method.
    pub method: Method,
    /// Path and query under the KBS base URL, e.g. `/kbs/v0/auth`.
    pub path: String,
    /// JSON body (POST only).
    pub body: Option<String>,
    /// Value of the `kbs-session-id` cookie to send, if any.
    pub session_cookie: Option<&'a str>,
    /// Token to send as `Authorization: Bearer`, if any.
    pub bearer: Option<&'a str>,
}

/// What came back for a call.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: &'a [u8],
    /// The `kbs-session-id` value from a `Set-Cookie` header, if any (already validated
    /// by the HTTP layer).
    pub session_cookie: Option<&'a str>,
}

/// The protocol step an error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// POST /kbs/v0/auth
    Auth,
    /// POST /kbs/v0/attest
    Attest,
    /// GET of a resource
    Resource,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Auth => "auth",
            Step::Attest => "attest",
            Step::Resource => "resource",
        })
    }
}

/// Everything that can go wrong talking to the KBS. Messages carry statuses, KBS error
/// types/details and URIs, never resource contents or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KbsClientError {
    /// The KBS refused a handshake step (Trustee answers 401 for every such failure).
    Refused {
        /// auth or attest.
        step: Step,
        /// HTTP status.
        status: u16,
        /// The RFC 7807 body, if it was one.
        error: Option<KbsError>,
    },
    /// 404: the plugin or path does not exist on this KBS.
    NotFound {
        /// The resource.
        uri: String,
        /// The RFC 7807 body, if it was one.
        error: Option<KbsError>,
    },
    /// Still 401 after [`MAX_RESOURCE_ATTEMPTS`] attempts, each after a fresh attestation.
    Unauthorized {
        /// The resource.
        uri: String,
        /// The last RFC 7807 body.
        error: Option<KbsError>,
    },
    /// A 5xx (or 408/429): worth retrying after a pause.
    Unavailable {
        /// The step.
        step: Step,
        /// HTTP status.
        status: u16,
    },
    /// Any other status.
    UnexpectedStatus {
        /// The step.
        step: Step,
        /// HTTP status.
        status: u16,
        /// The RFC 7807 body, if it was one.
        error: Option<KbsError>,
    },
    /// The KBS answered 200 with something that is not the protocol.
    Protocol(ProtocolError),
    /// The resource could not be decrypted.
    Jwe {
        /// The resource.
        uri: String,
        /// Why.
        error: JweError,
    },
}

impl KbsClientError {
    /// Whether retrying the same step later may succeed (server busy or restarting).
    pub fn is_transient(&self) -> bool {
        matches!(self, KbsClientError::Unavailable { .. })
    }
}

fn with_kbs_error(f: &mut fmt::Formatter<'_>, error: &Option<KbsError>) -> fmt::Result {
    match error {
        Some(e) => write!(f, " ({e})"),
        None => Ok(()),
    }
}

impl fmt::Display for KbsClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused {
                step,
                status,
                error,
            } => {
                write!(f, "the KBS refused the {step} step with HTTP {status}")?;
                with_kbs_error(f, error)
            }
            Self::NotFound { uri, error } => {
                write!(f, "{uri}: not found on the KBS (HTTP 404)")?;
                with_kbs_error(f, error)
            }
            Self::Unauthorized { uri, error } => {
                write!(
                    f,
                    "{uri}: refused after {MAX_RESOURCE_ATTEMPTS} attempts, each after a fresh attestation"
                )?;
                with_kbs_error(f, error)
            }
            Self::Unavailable { step, status } => {
                write!(f, "the KBS is unavailable ({step}: HTTP {status})")
            }
            Self::UnexpectedStatus {
                step,
                status,
                error,
            } => {
                write!(
                    f,
                    "unexpected HTTP {status} from the KBS in the {step} step"
                )?;
                with_kbs_error(f, error)
            }
            Self::Protocol(e) => write!(f, "{e}"),
            Self::Jwe { uri, error } => write!(f, "{uri}: {error}"),
        }
    }
}

fn status_error(step: Step, reply: &Reply<'_>) -> KbsClientError {
    let error = KbsError::parse(reply.body);
    match reply.status {
        401 | 403 if step != Step::Resource => KbsClientError::Refused {
            step,
            status: reply.status,
            error,
        },
        408 | 429 | 500..=599 => KbsClientError::Unavailable {
            step,
            status: reply.status,
        },
        status => KbsClientError::UnexpectedStatus {
            step,
            status,
            error,
        },
    }
}

/// An RCAR handshake before `/auth`: the only call it can make is the `/auth` call, and
/// its reply turns it into a [`Challenged`] handshake (so an `/attest` before `/auth`
/// cannot be written).
#[derive(Clone, Copy, Debug)]
pub struct Handshake {
    tee: Tee,
}

impl Handshake {
    /// Starts a handshake for `tee`.
    pub fn new(tee: Tee) -> Self {
        Handshake { tee }
    }

    /// The `/auth` call.
    pub fn auth_call(&self) -> Call<'static> {
        Call {
            method: Method::Post,
            path: "/kbs/v0/auth".into(),
            body: Some(rcar::auth_body(self.tee)),
            session_cookie: None,
            bearer: None,
        }
    }

    /// Takes the `/auth` reply; on success the handshake holds the challenge and the
    /// binding digest for `key` that the evidence must carry.
    pub fn on_auth(self, key: &TeeKey, reply: Reply<'_>) -> Result<Challenged, KbsClientError> {
        if reply.status != 200 {
            return Err(status_error(Step::Auth, &reply));
        }
        let challenge = rcar::parse_challenge(reply.body).map_err(KbsClientError::Protocol)?;
        let digest = rcar::binding_digest(&challenge, key.public_jwk(), "");
        Ok(Challenged {
            tee: self.tee,
            cookie: reply.session_cookie.map(String::from),
            challenge,
            digest,
        })
    }

    /// The TEE this handshake attests.
    pub fn tee(&self) -> Tee {
        self.tee
    }
}

/// An RCAR handshake after a successful `/auth`: it knows the challenge, and its next call
/// is `/attest`.
#[derive(Debug, Clone)]
pub struct Challenged {
    tee: Tee,
    cookie: Option<String>,
    challenge: Challenge,
    digest: Vec<u8>,
}

impl Challenged {
    /// The binding digest the evidence must carry (raw for the sample TEE, zero-padded to
    /// 64 bytes of REPORT_DATA for SNP/TDX).
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The TEE this handshake attests.
    pub fn tee(&self) -> Tee {
        self.tee
    }

    /// The `/attest` call carrying `evidence` (the TEE's primary evidence object for
    /// [`Challenged::digest`]) and optional init-data TOML, for the same `key` as `/auth`.
    pub fn attest_call<E: Serialize>(
        &self,
        key: &TeeKey,
        evidence: &E,
        init_data: Option<&str>,
    ) -> Call<'_> {
        Call {
            method: Method::Post,
            path: "/kbs/v0/attest".into(),
            body: Some(rcar::attest_body(
                &self.challenge,
                key.public_jwk(),
                evidence,
                "",
                init_data,
            )),
            session_cookie: self.cookie.as_deref(),
            bearer: None,
        }
    }

    /// Takes the `/attest` reply and yields the attested session.
    pub fn on_attest(self, reply: Reply<'_>) -> Result<Session, KbsClientError> {
        if reply.status != 200 {
            return Err(status_error(Step::Attest, &reply));
        }
        let token = rcar::parse_token(reply.body).map_err(KbsClientError::Protocol)?;
        let cookie = reply.session_cookie.map(String::from).or(self.cookie);
        Ok(Session {
            cookie,
            token: Zeroizing::new(token),
        })
    }
}

/// An attested session: the session cookie and the attestation token.
pub struct Session {
    cookie: Option<String>,
    token: Zeroizing<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("has_cookie", &self.cookie.is_some())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The attestation token (a JWT; never logged).
    pub fn token(&self) -> &str {
        self.token.as_str()
    }

    /// The GET for `uri`, with the session cookie and the token as Bearer fallback
    /// (Trustee looks at the cookie first and uses the token once the session expired).
    pub fn resource_call(&self, uri: &ResourceUri) -> Call<'_> {
        Call {
            method: Method::Get,
            path: uri.kbs_path(),
            body: None,
            session_cookie: self.cookie.as_deref(),
            bearer: Some(self.token.as_str()),
        }
    }
}

/// What to do after a resource reply.
#[derive(PartialEq, Eq)]
pub enum Next {
    /// The decrypted resource.
    Done(Zeroizing<Vec<u8>>),
    /// Attest again (new `/auth` + `/attest`), then resend the GET.
    Reattest,
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never the content: only its size.
            Next::Done(secret) => write!(f, "Done(<{} bytes>)", secret.len()),
            Next::Reattest => f.write_str("Reattest"),
        }
    }
}

/// Fetching one resource, counting attempts across re-attestations.
#[derive(Debug)]
pub struct Fetch {
    attempts: u32,
}

impl Default for Fetch {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetch {
    /// A fresh fetch.
    pub fn new() -> Self {
        Fetch { attempts: 0 }
    }

    /// Interprets the reply to a GET of `uri` made with `key`'s session.
    pub fn on_reply(
        &mut self,
        uri: &ResourceUri,
        key: &TeeKey,
        reply: Reply<'_>,
    ) -> Result<Next, KbsClientError> {
        self.attempts += 1;
        match reply.status {
            200 => jwe::decrypt(key, reply.body)
                .map(Next::Done)
                .map_err(|error| KbsClientError::Jwe {
                    uri: uri.to_string(),
                    error,
                }),
            401 if self.attempts < MAX_RESOURCE_ATTEMPTS => Ok(Next::Reattest),
            401 => Err(KbsClientError::Unauthorized {
                uri: uri.to_string(),
                error: KbsError::parse(reply.body),
            }),
            404 => Err(KbsClientError::NotFound {
                uri: uri.to_string(),
                error: KbsError::parse(reply.body),
            }),
            _ => {
                // A transient failure does not count as an attempt: the caller retries.
                self.attempts -= 1;
                Err(status_error(Step::Resource, &reply))
            }
        }
    }
}

/// Exponential backoff with jitter for transient failures (KBS not up yet, 5xx,
/// connection refused): attempt `n` waits a random time in `[d/2, d]` where
/// `d = min(max, base · 2ⁿ)`. Randomness comes from the caller.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First delay, milliseconds.
    pub base_ms: u64,
    /// Cap, milliseconds.
    pub max_ms: u64,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base_ms`, capped at `max_ms`.
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        Backoff {
            base_ms,
            max_ms,
            attempt: 0,
        }
    }

    /// The next delay in milliseconds, given a random `u32`.
    pub fn next_delay_ms(&mut self, random: u32) -> u64 {
        let d = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        d / 2 + u64::from(random) % (d / 2 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::FillRng;
    use crate::teekey::KeyAlgorithm;
    use alloc::string::ToString;

    fn test_rng() -> FillRng<impl FnMut(&mut [u8])> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        FillRng(move |buf: &mut [u8]| {
            for b in buf {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
        })
    }

    fn reply(status: u16, body: &[u8]) -> Reply<'_> {
        Reply {
            status,
            body,
            session_cookie: None,
        }
    }

    #[test]
    fn handshake_calls_and_errors() {
        let key = TeeKey::generate(KeyAlgorithm::EcdhP256, &mut test_rng()).unwrap();
        let hs = Handshake::new(Tee::Sample);
        let call = hs.auth_call();
        assert_eq!(
            (call.method, call.path.as_str()),
            (Method::Post, "/kbs/v0/auth")
        );

        let refused = br#"{"type":"https://github.com/confidential-containers/kbs/errors/AttestationError","detail":"Attestation error: RCAR handshake Auth failed: x"}"#;
        let e = hs.on_auth(&key, reply(401, refused)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the KBS refused the auth step with HTTP 401 (AttestationError: Attestation error: RCAR handshake Auth failed: x)"
        );
        assert!(
            hs.on_auth(&key, reply(503, b"busy"))
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            hs.on_auth(&key, reply(200, b"<html>")),
            Err(KbsClientError::Protocol(_))
        ));

        let challenge =
            br#"{"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","extra-params":""}"#;
        let ok = Reply {
            status: 200,
            body: challenge,
            session_cookie: Some("0123456789abcdef0123456789abcdef"),
        };
        let hs = hs.on_auth(&key, ok).unwrap();
        assert_eq!(hs.digest().len(), 48);
        let evidence = rcar::SampleEvidence::new(hs.digest());
        let call = hs.attest_call(&key, &evidence, None);
        assert_eq!(
            call.session_cookie,
            Some("0123456789abcdef0123456789abcdef")
        );
        assert!(
            call.body
                .unwrap()
                .contains("\"tee-evidence\":{\"primary_evidence\":{\"svn\":\"1\"")
        );
        let session = hs.on_attest(reply(200, br#"{"token":"a.b.c"}"#)).unwrap();
        let uri = ResourceUri::parse("kbs:///default/key/disk").unwrap();
        let call = session.resource_call(&uri);
        assert_eq!(call.bearer, Some("a.b.c"));
        assert_eq!(
            call.session_cookie,
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn resource_retry_policy_matches_upstream() {
        let key = TeeKey::generate(KeyAlgorithm::EcdhP256, &mut test_rng()).unwrap();
        let uri = ResourceUri::parse("kbs:///default/key/disk").unwrap();
        let deny = br#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"Access was denied by policy"}"#;
        let mut fetch = Fetch::new();
        assert!(matches!(
            fetch.on_reply(&uri, &key, reply(401, deny)),
            Ok(Next::Reattest)
        ));
        // A 5xx in between is transient and does not use up an attempt.
        assert!(
            fetch
                .on_reply(&uri, &key, reply(502, b""))
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            fetch.on_reply(&uri, &key, reply(401, deny)),
            Ok(Next::Reattest)
        ));
        let e = fetch.on_reply(&uri, &key, reply(401, deny)).err().unwrap();
        assert_eq!(
            e.to_string(),
            "kbs:///default/key/disk: refused after 3 attempts, each after a fresh attestation (PolicyDeny: Access was denied by policy)"
        );
        let nf = br#"{"type":"https://github.com/confidential-containers/kbs/errors/PluginNotFound","detail":"Plugin x not found"}"#;
        let e = Fetch::new()
            .on_reply(&uri, &key, reply(404, nf))
            .err()
            .unwrap();
        assert!(matches!(e, KbsClientError::NotFound { .. }));
        let e = Fetch::new()
            .on_reply(&uri, &key, reply(200, b"not a jwe"))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "kbs:///default/key/disk: response is not a JWE in flattened JSON serialization"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(100, 1000);
        let d: Vec<u64> = (0..6).map(|i| b.next_delay_ms(i * 7919)).collect();
        assert!((50..=100).contains(&d[0]));
        assert!((100..=200).contains(&d[1]));
        assert!((200..=400).contains(&d[2]));
        assert!(d[4..].iter().all(|x| (500..=1000).contains(x)));
        let mut b = Backoff::new(100, 1000);
        assert_eq!(b.next_delay_ms(0), 50);
        assert_eq!(
            b.next_delay_ms(u32::MAX),
            200 / 2 + u64::from(u32::MAX) % 101
        );
    }
}
