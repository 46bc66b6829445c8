//! RCAR sessions: the `kbs-session-id` cookie (32 lowercase hex, a v4 UUID in simple form)
//! and the `Authed → Attested` state behind it. The expiry is fixed at `/auth` (default 5
//! minutes); `/attest` does not extend it, and an expired session is removed when it is read.
//! The `Set-Cookie` value carries `Expires` and nothing else, as Trustee's does.

use crate::httpdate;
use crate::rcar::Tee;
use crate::rng;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub(crate) const COOKIE_NAME: &str = "kbs-session-id";

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub expires: SystemTime,
    /// The TEE named at `/auth`: the one whose verifier checks the evidence.
    pub tee: Tee,
    /// The challenge nonce, 44 characters of standard base64.
    pub nonce: String,
    /// `Some` once Attested.
    pub token: Option<String>,
}

impl Session {
    /// The `Set-Cookie` header value.
    pub(crate) fn set_cookie(&self) -> String {
        format!(
            "{COOKIE_NAME}={}; Expires={}",
            self.id,
            httpdate::format(self.expires)
        )
    }
}

pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    timeout: Duration,
}

impl Sessions {
    pub(crate) fn new(timeout: Duration) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new Authed session with a fresh id and nonce. Expired sessions are purged on the way
    /// (Trustee does it every 60 s in the background), so a long demo does not grow the map.
    pub(crate) fn create(&self, tee: Tee, now: SystemTime) -> Session {
        let session = Session {
            id: new_id(),
            expires: now + self.timeout,
            tee,
            nonce: sealgate_core::b64::std_encode(&rng::bytes::<32>()),
            token: None,
        };
        let mut map = self.lock();
        map.retain(|_, s| s.expires >= now);
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session `id`; an expired one is removed and reads as absent.
    pub(crate) fn get(&self, id: &str, now: SystemTime) -> Option<Session> {
        let mut map = self.lock();
        let session = map.get(id)?;
        if session.expires < now {
            map.remove(id);
            return None;
        }
        Some(session.clone())
    }

    /// Authed → Attested (same id, same expiry).
    pub(crate) fn attest(&self, id: &str, token: String) {
        if let Some(session) = self.lock().get_mut(id) {
            session.token = Some(token);
        }
    }

    /// Drops a session as if it had timed out; returns whether it existed.
    pub(crate) fn expire(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }
}

/// 16 random bytes as a version-4 UUID, simple (undashed, lowercase) form.
fn new_id() -> String {
    let mut b = rng::bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `kbs-session-id` value among the request's `Cookie` headers.
pub(crate) fn cookie_value<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<&'a str> {
    cookie_headers
        .filter_map(|h| std::str::from_utf8(h).ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_nonces_and_cookies() {
        let sessions = Sessions::new(Duration::from_secs(300));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_346_627);
        let s = sessions.create(Tee::Sample, now);
        assert_eq!(s.id.len(), 32);
        assert!(s.id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(&s.id[12..13], "4");
        assert_eq!(s.nonce.len(), 44);
        assert!(s.nonce.ends_with('='));
        assert_eq!(
            s.set_cookie(),
            format!(
                "kbs-session-id={}; Expires=Sun, 22 Nov 2026 11:28:47 GMT",
                s.id
            )
        );
        assert_ne!(sessions.create(Tee::Sample, now).id, s.id);
    }

    #[test]
    fn expiry_removes_on_read() {
        let sessions = Sessions::new(Duration::from_secs(10));
        let now = SystemTime::now();
        let s = sessions.create(Tee::Sample, now);
        sessions.attest(&s.id, "t".into());
        assert_eq!(
            sessions
                .get(&s.id, now + Duration::from_secs(10))
                .and_then(|s| s.token),
            Some("t".into())
        );
        assert!(sessions.get(&s.id, now + Duration::from_secs(11)).is_none());
        assert!(
            sessions.get(&s.id, now).is_none(),
            "removed when read expired"
        );
    }

    #[test]
    fn cookie_parsing() {
        let headers: [&[u8]; 2] = [b"a=b; c=d", b"x=1;kbs-session-id=abc ; kbs-session-id=def"];
        assert_eq!(cookie_value(headers.into_iter()), Some("abc"));
        let none: [&[u8]; 2] = [b"kbs-session-idx=1", b"\xff"];
        assert_eq!(cookie_value(none.into_iter()), None);
    }
}
