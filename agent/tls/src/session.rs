//! The in-memory session store shared by the connections of one [`crate::TlsClientConfig`],
//! so that a reconnect resumes (TLS 1.3 tickets, TLS 1.2 session ids or tickets). rustls's
//! own store needs std or hashbrown; this one is a small bounded list behind a spin lock
//! (the guest is single-threaded: the lock is never contended).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use pki_types::ServerName;
use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};

/// Servers remembered; the oldest is forgotten first. Source: not measured; the agent
/// talks to one KBS.
const MAX_SERVERS: usize = 4;
/// TLS 1.3 tickets kept per server (each is used once). Source: not measured; rustls's
/// servers send 2 or 4 per handshake.
const MAX_TICKETS: usize = 4;

struct Entry {
    name: ServerName<'static>,
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

/// A bounded in-memory [`ClientSessionStore`].
#[derive(Default)]
pub struct SessionStore {
    servers: spin::Mutex<Vec<Entry>>,
}

impl core::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionStore")
            .field("servers", &self.servers.lock().len())
            .finish()
    }
}

impl SessionStore {
    fn edit(&self, name: ServerName<'static>, f: impl FnOnce(&mut Entry)) {
        let mut servers = self.servers.lock();
        let i = match servers.iter().position(|e| e.name == name) {
            Some(i) => i,
            None => {
                if servers.len() >= MAX_SERVERS {
                    servers.remove(0);
                }
                servers.push(Entry {
                    name,
                    kx_hint: None,
                    tls12: None,
                    tls13: VecDeque::new(),
                });
                servers.len() - 1
            }
        };
        f(&mut servers[i]);
    }

    fn with<T>(&self, name: &ServerName<'_>, f: impl FnOnce(&mut Entry) -> Option<T>) -> Option<T> {
        let mut servers = self.servers.lock();
        servers.iter_mut().find(|e| e.name == *name).and_then(f)
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.edit(name, |e| e.kx_hint = Some(group));
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.with(name, |e| e.kx_hint)
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.edit(name, |e| e.tls12 = Some(value));
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(name, |e| e.tls12.clone())
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.with(name, |e| e.tls12.take());
    }

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.edit(name, |e| {
            if e.tls13.len() >= MAX_TICKETS {
                e.tls13.pop_front();
            }
            e.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        // Newest first: it has the longest life left.
        self.with(name, |e| e.tls13.pop_back())
    }
}
