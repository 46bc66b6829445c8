//! Fault injection, chosen per request step and for a number of occurrences, so a retrying
//! client can be driven through failures and then succeed.
//!
//! Spec syntax (the binary's `--fault`, [`Fault::from_str`]): `STEP:KIND[:ARG][:COUNT]`
//!
//! - `STEP`: `auth`, `attest`, `resource` (any resource GET) or `resource=REPO/TYPE/TAG`
//!   (only that path), or `handshake` (the TLS handshake of a new connection, on an HTTPS
//!   server; kinds `reset`: the ClientHello is read, then ECONNRESET; `close-mid-response`:
//!   half of the server's first flight, then EOF; `hang`: nothing; `delay:MS`: nothing for
//!   MS, then EOF).
//! - `KIND` and its `ARG` (required for the kinds that take one, absent otherwise):
//!
//!   | kind | what the client sees | request processed? |
//!   |---|---|---|
//!   | `reset` | the request is read, then the connection is reset (SO_LINGER 0, close): ECONNRESET | no |
//!   | `close-mid-response` | the first half of the response bytes (mid-head for small responses, mid-body for larger ones), then EOF | yes |
//!   | `delay:MS` | the normal response, MS milliseconds late | yes |
//!   | `drip:MS` | the normal response, one byte every MS milliseconds | yes |
//!   | `hang` | the request is read, then nothing: the connection stays open, silent, until the client closes it | no |
//!   | `status:CODE` | a `CODE` (500..=599) response with a short text/plain body | no |
//!   | `truncated-body` | the full head (correct Content-Length, or chunked) and half the body, then EOF | yes |
//!   | `garbage-body` | 200, `application/json`, a body that is neither JSON nor a JWE | no |
//!   | `oversize:BYTES` | 200, `application/json`, BYTES bytes streamed (suffixes K, M, G = KiB, MiB, GiB; e.g. `64M`) | no |
//!   | `expire-session` | the request's session is dropped as if it had timed out, then the request is processed (at `auth`: the new session is dropped right after the answer) | yes |
//!   | `invalid-token` | `resource`: 401 `TokenVerifierError`; `attest`: the token issued has already expired | resource: no |
//!
//! - `COUNT`: how many matching requests the fault hits (a positive integer); absent or `*`
//!   means every one. When several faults match a request, the first in order with hits left
//!   applies.
//!
//! Examples: `resource:close-mid-response:1`, `auth:status:503:2`, `attest:delay:250`,
//! `resource=default/keys/disk:oversize:64M:1`.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// The request step a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `POST /kbs/v0/auth`
    Auth,
    /// `POST /kbs/v0/attest`
    Attest,
    /// `/kbs/v0/resource/...`; with a path (`repo/type/tag`), only that resource.
    Resource(Option<String>),
    /// The TLS handshake of a new connection (HTTPS only).
    Handshake,
}

/// What happens to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Read the request, then reset the connection.
    Reset,
    /// Send the first half of the response, then close.
    CloseMidResponse,
    /// Answer normally after this delay.
    Delay(Duration),
    /// Answer normally, one byte at a time with this pause before each.
    Drip(Duration),
    /// Never answer; keep the connection open until the client closes it.
    Hang,
    /// Answer this 5xx status with a text body, without processing the request.
    Status(u16),
    /// Send the head and half the body, then close.
    TruncatedBody,
    /// Answer 200 with bytes that are neither JSON nor a JWE.
    GarbageBody,
    /// Answer 200 with this many bytes, streamed.
    Oversize(u64),
    /// Drop the session as if it had timed out, then process the request.
    ExpireSession,
    /// `resource`: 401 `TokenVerifierError`; `attest`: issue an already expired token.
    InvalidToken,
}

/// A fault and how many more requests it hits (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Where.
    pub step: Step,
    /// What.
    pub kind: FaultKind,
    /// How many more times; `None` = unlimited.
    pub count: Option<u32>,
}

impl Fault {
    /// A fault hitting every matching request.
    pub fn new(step: Step, kind: FaultKind) -> Self {
        Fault {
            step,
            kind,
            count: None,
        }
    }

    /// Limits the fault to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    fn check(&self) -> Result<(), String> {
        match (&self.step, &self.kind) {
            (_, FaultKind::Status(code)) if !(500..=599).contains(code) => {
                Err(format!("status {code} is not a 5xx status"))
            }
            (Step::Auth, FaultKind::InvalidToken) => {
                Err("invalid-token applies to attest or resource".into())
            }
            (_, FaultKind::Oversize(0)) => Err("oversize needs a positive size".into()),
            (
                Step::Handshake,
                FaultKind::Reset
                | FaultKind::CloseMidResponse
                | FaultKind::Hang
                | FaultKind::Delay(_),
            ) => Ok(()),
            (Step::Handshake, _) => {
                Err("a handshake fault is reset, close-mid-response, hang or delay".into())
            }
            _ if self.count == Some(0) => Err("count must be positive".into()),
            _ => Ok(()),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let fail = |why: &str| format!("bad fault {spec:?}: {why} (want STEP:KIND[:ARG][:COUNT])");
        let mut fields = spec.split(':');
        let step = match fields.next().unwrap_or_default() {
            "auth" => Step::Auth,
            "attest" => Step::Attest,
            "resource" => Step::Resource(None),
            "handshake" => Step::Handshake,
            other => match other.strip_prefix("resource=") {
                Some(path) if !path.is_empty() => Step::Resource(Some(path.to_owned())),
                _ => return Err(fail("unknown step")),
            },
        };
        let kind_name = fields.next().ok_or_else(|| fail("no kind"))?;
        let mut arg = || fields.next().ok_or_else(|| fail("missing argument"));
        let kind = match kind_name {
            "reset" => FaultKind::Reset,
            "close-mid-response" => FaultKind::CloseMidResponse,
            "delay" => FaultKind::Delay(Duration::from_millis(
                arg()?
                    .parse()
                    .map_err(|_| fail("delay wants milliseconds"))?,
            )),
            "drip" => FaultKind::Drip(Duration::from_millis(
                arg()?
                    .parse()
                    .map_err(|_| fail("drip wants milliseconds"))?,
            )),
            "hang" => FaultKind::Hang,
            "status" => FaultKind::Status(arg()?.parse().map_err(|_| fail("bad status"))?),
            "truncated-body" => FaultKind::TruncatedBody,
            "garbage-body" => FaultKind::GarbageBody,
            "oversize" => FaultKind::Oversize(parse_size(arg()?).ok_or_else(|| fail("bad size"))?),
            "expire-session" => FaultKind::ExpireSession,
            "invalid-token" => FaultKind::InvalidToken,
            _ => return Err(fail("unknown kind")),
        };
        let count = match fields.next() {
            None | Some("*") => None,
            Some(n) => Some(n.parse().map_err(|_| fail("bad count"))?),
        };
        if fields.next().is_some() {
            return Err(fail("too many fields"));
        }
        let fault = Fault { step, kind, count };
        fault.check().map_err(|why| fail(&why))?;
        Ok(fault)
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let scale: u64 = match unit {
        "" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Step::Auth => f.write_str("auth")?,
            Step::Attest => f.write_str("attest")?,
            Step::Resource(None) => f.write_str("resource")?,
            Step::Resource(Some(path)) => write!(f, "resource={path}")?,
            Step::Handshake => f.write_str("handshake")?,
        }
        match &self.kind {
            FaultKind::Reset => f.write_str(":reset")?,
            FaultKind::CloseMidResponse => f.write_str(":close-mid-response")?,
            FaultKind::Delay(d) => write!(f, ":delay:{}", d.as_millis())?,
            FaultKind::Drip(d) => write!(f, ":drip:{}", d.as_millis())?,
            FaultKind::Hang => f.write_str(":hang")?,
            FaultKind::Status(code) => write!(f, ":status:{code}")?,
            FaultKind::TruncatedBody => f.write_str(":truncated-body")?,
            FaultKind::GarbageBody => f.write_str(":garbage-body")?,
            FaultKind::Oversize(n) => write!(f, ":oversize:{n}")?,
            FaultKind::ExpireSession => f.write_str(":expire-session")?,
            FaultKind::InvalidToken => f.write_str(":invalid-token")?,
        }
        match self.count {
            Some(n) => write!(f, ":{n}"),
            None => Ok(()),
        }
    }
}

/// The step of an incoming request, as faults see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestStep {
    Auth,
    Attest,
    /// The path after `/kbs/v0/resource/`, without the query.
    Resource(String),
    /// A new connection's TLS handshake.
    Handshake,
}

impl Step {
    fn matches(&self, request: &RequestStep) -> bool {
        match (self, request) {
            (Step::Auth, RequestStep::Auth) | (Step::Attest, RequestStep::Attest) => true,
            (Step::Resource(None), RequestStep::Resource(_)) => true,
            (Step::Resource(Some(want)), RequestStep::Resource(path)) => want == path,
            (Step::Handshake, RequestStep::Handshake) => true,
            _ => false,
        }
    }
}

/// The armed faults, shared by all connections.
pub(crate) struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    pub(crate) fn new() -> Self {
        Faults(Mutex::new(Vec::new()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces all faults (each checked first; nothing changes on error).
    pub(crate) fn set(&self, faults: Vec<Fault>) -> Result<(), String> {
        for fault in &faults {
            fault
                .check()
                .map_err(|why| format!("bad fault {fault}: {why}"))?;
        }
        *self.lock() = faults;
        Ok(())
    }

    /// Arms one more fault.
    pub(crate) fn add(&self, fault: Fault) -> Result<(), String> {
        fault
            .check()
            .map_err(|why| format!("bad fault {fault}: {why}"))?;
        self.lock().push(fault);
        Ok(())
    }

    /// The faults with hits left.
    pub(crate) fn armed(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// The fault for this request, if any, consuming one hit (spent faults are dropped).
    pub(crate) fn take(&self, request: &RequestStep) -> Option<FaultKind> {
        let mut faults = self.lock();
        let i = faults.iter().position(|f| f.step.matches(request))?;
        let kind = faults[i].kind.clone();
        match &mut faults[i].count {
            Some(1) => {
                faults.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_specs() {
        let cases = [
            (
                "resource:close-mid-response:1",
                Fault::new(Step::Resource(None), FaultKind::CloseMidResponse).times(1),
            ),
            (
                "auth:status:503:2",
                Fault::new(Step::Auth, FaultKind::Status(503)).times(2),
            ),
            (
                "attest:delay:250",
                Fault::new(Step::Attest, FaultKind::Delay(Duration::from_millis(250))),
            ),
            (
                "resource=default/keys/disk:oversize:64M:1",
                Fault::new(
                    Step::Resource(Some("default/keys/disk".into())),
                    FaultKind::Oversize(64 << 20),
                )
                .times(1),
            ),
            (
                "attest:invalid-token:*",
                Fault::new(Step::Attest, FaultKind::InvalidToken),
            ),
            ("auth:reset", Fault::new(Step::Auth, FaultKind::Reset)),
            ("attest:hang", Fault::new(Step::Attest, FaultKind::Hang)),
            (
                "resource:drip:100:2",
                Fault::new(
                    Step::Resource(None),
                    FaultKind::Drip(Duration::from_millis(100)),
                )
                .times(2),
            ),
            (
                "resource:expire-session:3",
                Fault::new(Step::Resource(None), FaultKind::ExpireSession).times(3),
            ),
            (
                "resource:truncated-body:1",
                Fault::new(Step::Resource(None), FaultKind::TruncatedBody).times(1),
            ),
            (
                "resource:garbage-body:1",
                Fault::new(Step::Resource(None), FaultKind::GarbageBody).times(1),
            ),
        ];
        for (spec, fault) in cases {
            assert_eq!(spec.parse::<Fault>().as_ref(), Ok(&fault), "{spec}");
            let printed = fault.to_string();
            assert_eq!(printed.parse::<Fault>(), Ok(fault), "{printed}");
        }
        assert_eq!(
            "attest:oversize:1K".parse::<Fault>().map(|f| f.kind),
            Ok(FaultKind::Oversize(1024))
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "auth",
            "login:reset",
            "auth:explode",
            "auth:delay",
            "auth:delay:x",
            "auth:status:404",
            "auth:status:503:0",
            "auth:reset:1:2",
            "auth:reset:x",
            "auth:invalid-token",
            "resource=:reset",
            "resource:oversize:0",
            "resource:oversize:5T",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_down_first_match_first() {
        let faults = Faults::new();
        faults
            .set(vec![
                Fault::new(Step::Resource(Some("a/b/c".into())), FaultKind::Reset).times(1),
                Fault::new(Step::Resource(None), FaultKind::GarbageBody).times(2),
            ])
            .unwrap();
        let abc = RequestStep::Resource("a/b/c".into());
        assert_eq!(faults.take(&RequestStep::Auth), None);
        assert_eq!(faults.take(&abc), Some(FaultKind::Reset));
        assert_eq!(faults.take(&abc), Some(FaultKind::GarbageBody));
        assert_eq!(
            faults.take(&RequestStep::Resource("x/y/z".into())),
            Some(FaultKind::GarbageBody)
        );
        assert_eq!(faults.take(&abc), None);
        assert!(faults.armed().is_empty());
    }
}
