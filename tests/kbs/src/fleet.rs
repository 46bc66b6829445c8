//! A KBS fleet: N replicas behind a round-robin front on loopback, the way users scale
//! Trustee. The replicas share the token-signing key, the resource store, the policy and the
//! armed faults; each keeps its own sessions in memory (Trustee's default), its own counters
//! and its own connections. So a token issued by one replica is accepted by all, but an
//! `/attest` that lands on another replica than its `/auth` finds no session and gets 401
//! `AttestationError`, exactly as behind a load balancer in front of real Trustee replicas.
//!
//! The front balances either
//! - [`Balance::PerRequest`] (default): each HTTP request goes to the next replica, over the
//!   client's keep-alive connection, as an L7 load balancer (nginx `upstream`, an Ingress,
//!   envoy) does. The front parses the request, forwards it on its own connection to that
//!   replica (kept alive, one per client connection and replica) and relays the response as
//!   it comes (Content-Length, chunked or until close), so the replicas' faults (resets,
//!   truncated bodies, delays) reach the client unchanged; or
//! - [`Balance::PerConnection`]: each new TCP connection goes to the next replica and its
//!   bytes are copied both ways, as an L4 balancer (a Kubernetes Service) does.
//!
//! The round-robin counter is global (shared by all client connections), so one lone
//! client's requests walk the ring: its `/attest` never lands where its `/auth` did, and
//! with concurrent clients where it lands is close to random.

use crate::fault::Fault;
use crate::http::{Connection, Limits, Request};
use crate::policy::Policy;
use crate::server::{Config, Server, SharedParts, invalid, stop_listener};
use crate::stats::{Arrival, Stats, StatsCell};
use crate::tls::{Handshake, Stream, TlsSettings};
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the front hands work to the replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each request to the next replica (an L7 load balancer).
    #[default]
    PerRequest,
    /// Each connection to the next replica (an L4 load balancer).
    PerConnection,
}

/// The front's state, shared with its threads.
struct Front {
    replicas: Vec<SocketAddr>,
    balance: Balance,
    limits: Limits,
    log: bool,
    /// TLS terminated by the front (per request).
    tls: Option<TlsSettings>,
    /// The fleet serves HTTPS (terminated here or by the replicas).
    https: bool,
    /// The handshakes the front terminated.
    tls_stats: StatsCell,
    next: AtomicUsize,
    /// Requests (per request) or connections (per connection) handed to each replica.
    handed: Vec<AtomicU64>,
    stopping: AtomicBool,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, TcpStream>>,
}

/// A running fleet. Dropping it (or [`Fleet::shutdown`]) stops the front and the replicas.
pub struct Fleet {
    front: Arc<Front>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    replicas: Vec<Server>,
}

impl Fleet {
    /// Starts `replicas` (at least 1) servers with `config` on ephemeral loopback ports,
    /// sharing one token key, resource store, policy and fault list, and a front on
    /// `config.listen`.
    pub fn start(config: Config, replicas: usize, balance: Balance) -> io::Result<Fleet> {
        if replicas == 0 {
            return Err(invalid("a fleet needs at least one replica".into()));
        }
        let parts = SharedParts::new(&config)?;
        // HTTPS: an L7 front terminates TLS and talks plain HTTP to the replicas; an L4
        // front passes the TLS bytes through to replicas that terminate it.
        let (front_tls, replica_tls) = match balance {
            Balance::PerRequest => (config.tls.clone(), None),
            Balance::PerConnection => (None, config.tls.clone()),
        };
        let servers = (0..replicas)
            .map(|_| {
                let replica = Config {
                    listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    tls: replica_tls.clone(),
                    ..config.clone()
                };
                Server::start_with(replica, parts.clone())
            })
            .collect::<io::Result<Vec<Server>>>()?;
        let listener = TcpListener::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let front = Arc::new(Front {
            replicas: servers.iter().map(Server::addr).collect(),
            balance,
            limits: Limits {
                head: config.max_head,
                body: config.max_body,
                idle: config.keep_alive,
            },
            log: config.log,
            tls: front_tls,
            https: config.tls.is_some(),
            tls_stats: StatsCell::default(),
            next: AtomicUsize::new(0),
            handed: (0..replicas).map(|_| AtomicU64::new(0)).collect(),
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
        });
        let accept_front = Arc::clone(&front);
        let accept = std::thread::Builder::new()
            .name("test-kbs-front".into())
            .spawn(move || accept_loop(&accept_front, &listener))?;
        Ok(Fleet {
            front,
            addr,
            accept: Some(accept),
            replicas: servers,
        })
    }

    /// The front's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<front>`, the KBS URL to give a client.
    pub fn url(&self) -> String {
        let scheme = if self.front.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The replicas, in round-robin order (each can also be reached directly).
    pub fn replicas(&self) -> &[Server] {
        &self.replicas
    }

    /// How the front balances.
    pub fn balance(&self) -> Balance {
        self.front.balance
    }

    /// Requests (per request) or connections (per connection) the front handed to each
    /// replica.
    pub fn handed(&self) -> Vec<u64> {
        self.front
            .handed
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect()
    }

    /// Each replica's counters.
    pub fn replica_stats(&self) -> Vec<Stats> {
        self.replicas.iter().map(Server::stats).collect()
    }

    /// The counters of all replicas added up (connections are the replicas' connections,
    /// from the front).
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in self.replica_stats() {
            total.connections += s.connections;
            total.requests += s.requests;
            total.faults_injected += s.faults_injected;
            total.tls_handshakes += s.tls_handshakes;
            total.tls_resumed += s.tls_resumed;
            total.tls_failed += s.tls_failed;
            for (sum, one) in [
                (&mut total.auth, &s.auth),
                (&mut total.attest, &s.attest),
                (&mut total.resource, &s.resource),
            ] {
                sum.requests += one.requests;
                for (status, n) in &one.responses {
                    *sum.responses.entry(*status).or_default() += n;
                }
            }
        }
        // A front that terminates TLS counts the handshakes.
        let front = self.front.tls_stats.snapshot();
        total.tls_handshakes += front.tls_handshakes;
        total.tls_resumed += front.tls_resumed;
        total.tls_failed += front.tls_failed;
        total
    }

    /// Every request of every replica with the replica's index, in arrival order.
    pub fn arrivals(&self) -> Vec<(usize, Arrival)> {
        let mut all: Vec<(usize, Arrival)> = self
            .replicas
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.arrivals().into_iter().map(move |a| (i, a)))
            .collect();
        all.sort_by_key(|(_, a)| a.at);
        all
    }

    /// Zeroes every replica's counters and the front's.
    pub fn reset_stats(&self) {
        for r in &self.replicas {
            r.reset_stats();
        }
        for h in &self.front.handed {
            h.store(0, Ordering::Relaxed);
        }
        self.front.tls_stats.reset();
    }

    /// Adds or replaces a resource in the shared store.
    pub fn add_resource(&self, path: &str, bytes: impl Into<Vec<u8>>) -> io::Result<()> {
        self.replicas[0].add_resource(path, bytes)
    }

    /// Removes a resource from the shared store.
    pub fn remove_resource(&self, path: &str) -> bool {
        self.replicas[0].remove_resource(path)
    }

    /// Replaces the shared policy.
    pub fn set_policy(&self, policy: Policy) -> io::Result<()> {
        self.replicas[0].set_policy(policy)
    }

    /// Replaces the shared faults (a fault's count is shared by the replicas).
    pub fn set_faults(&self, faults: Vec<Fault>) -> io::Result<()> {
        self.replicas[0].set_faults(faults)
    }

    /// Arms one more shared fault.
    pub fn add_fault(&self, fault: Fault) -> io::Result<()> {
        self.replicas[0].add_fault(fault)
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.replicas[0].clear_faults();
    }

    /// Stops the front, then the replicas.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.front.stopping.store(true, Ordering::SeqCst);
        stop_listener(self.addr, self.accept.take(), &self.front.connections);
        // The replicas stop when dropped.
        self.replicas.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Front {
    /// The next replica in the ring, counted.
    fn pick(&self) -> usize {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len();
        self.handed[i].fetch_add(1, Ordering::Relaxed);
        i
    }

    fn log_line(&self, line: &str) {
        if self.log {
            eprintln!("test-kbs front: {line}");
        }
    }
}

fn accept_loop(front: &Arc<Front>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if front.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // EMFILE and friends: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let id = front.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&front.connections).insert(id, clone);
        }
        let conn_front = Arc::clone(front);
        let spawned = std::thread::Builder::new()
            .name(format!("test-kbs-front-{id}"))
            .spawn(move || {
                match conn_front.balance {
                    Balance::PerRequest => per_request(&conn_front, stream),
                    Balance::PerConnection => per_connection(&conn_front, stream),
                }
                lock(&conn_front.connections).remove(&id);
            });
        if spawned.is_err() {
            lock(&front.connections).remove(&id);
        }
    }
}

/// Resets `stream` (SO_LINGER 0, then close): the peer sees ECONNRESET.
fn reset(stream: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

// ---------------------------------------------------------------------------------------
// Per connection: copy bytes both ways.

fn per_connection(front: &Front, client: TcpStream) {
    let i = front.pick();
    front.log_line(&format!("connection -> replica {i}"));
    let Ok(upstream) = TcpStream::connect(front.replicas[i]) else {
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(mut client_in), Ok(mut upstream_out)) = (client.try_clone(), upstream.try_clone())
    else {
        reset(&client);
        return;
    };
    let up = std::thread::spawn(move || {
        let copied = io::copy(&mut client_in, &mut upstream_out);
        match copied {
            Ok(_) => {
                let _ = upstream_out.shutdown(Shutdown::Write);
            }
            Err(_) => reset(&upstream_out),
        }
    });
    let (mut upstream_in, mut client_out) = (upstream, client);
    match io::copy(&mut upstream_in, &mut client_out) {
        Ok(_) => {
            let _ = client_out.shutdown(Shutdown::Write);
        }
        Err(e) if is_reset(&e) => reset(&client_out),
        Err(_) => {
            let _ = client_out.shutdown(Shutdown::Both);
        }
    }
    let _ = up.join();
}

// ---------------------------------------------------------------------------------------
// Per request: parse, forward, relay.

/// A kept-alive connection to one replica.
struct Upstream {
    reader: BufReader<TcpStream>,
}

fn per_request(front: &Front, client: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = client.set_write_timeout(Some(Duration::from_secs(30)));
    let (client, handshake) = Stream::accept(client, front.tls.as_ref(), None, front.limits.idle);
    match handshake {
        Handshake::None => {}
        Handshake::Done { resumed } => front.tls_stats.handshake(Some(resumed)),
        Handshake::Failed => front.tls_stats.handshake(None),
    }
    let Some(client) = client else {
        return;
    };
    let mut conn = Connection::new(client);
    let mut upstreams: Vec<Option<Upstream>> = front.replicas.iter().map(|_| None).collect();
    loop {
        let request = match conn.read_request(&front.limits) {
            Ok(request) => request,
            Err(e) => {
                if let Some(status) = e.status() {
                    let head = format!(
                        "HTTP/1.1 {status} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        crate::http::reason(status)
                    );
                    conn.write_and_close(head.as_bytes());
                }
                return;
            }
        };
        let i = front.pick();
        front.log_line(&format!(
            "{} {} -> replica {i}",
            request.method, request.path
        ));
        let bytes = forward_bytes(&request);
        match exchange(front, &mut upstreams[i], i, &bytes, &mut conn.stream) {
            Ok(keep_alive) if keep_alive && request.keep_alive() => {}
            Ok(_) => {
                conn.write_and_close(&[]);
                return;
            }
            Err(Relay::Reset) => {
                reset(conn.stream.tcp());
                return;
            }
            Err(Relay::Broken) => {
                conn.write_and_close(&[]);
                return;
            }
        }
    }
}

/// How relaying a response failed.
enum Relay {
    /// The replica reset the connection before answering: reset the client's.
    Reset,
    /// The replica closed or broke mid-response (the client got what came): close.
    Broken,
}

/// The request as forwarded: same method, target, headers and body, minus `Expect` (the
/// front already answered `100 Continue`).
fn forward_bytes(request: &Request) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", request.method, request.target).into_bytes();
    for (name, value) in &request.headers {
        if name == "expect" {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if request.http10 && !request.keep_alive() {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

/// Sends `bytes` to replica `i` (on the kept connection if any, else a new one) and
/// relays its response to `client`; `Ok(keep_alive)`. A kept connection that the replica
/// closed while idle (EOF before any byte) is replaced once.
fn exchange(
    front: &Front,
    slot: &mut Option<Upstream>,
    i: usize,
    bytes: &[u8],
    client: &mut Stream,
) -> Result<bool, Relay> {
    for attempt in 0..2 {
        let reused = slot.is_some();
        if slot.is_none() {
            let stream = TcpStream::connect(front.replicas[i]).map_err(|_| Relay::Reset)?;
            let _ = stream.set_nodelay(true);
            *slot = Some(Upstream {
                reader: BufReader::with_capacity(64 << 10, stream),
            });
        }
        let Some(up) = slot.as_mut() else {
            return Err(Relay::Broken);
        };
        let sent = up.reader.get_mut().write_all(bytes);
        let relayed = match sent {
            Ok(()) => relay(&mut up.reader, client),
            Err(e) => Err(Failure {
                error: e,
                relayed: false,
            }),
        };
        match relayed {
            Ok(keep_alive) => {
                if !keep_alive {
                    *slot = None;
                }
                return Ok(keep_alive);
            }
            Err(f) => {
                *slot = None;
                let stale = !f.relayed && f.error.kind() == io::ErrorKind::UnexpectedEof;
                if reused && stale && attempt == 0 {
                    continue;
                }
                return Err(if !f.relayed && is_reset(&f.error) {
                    Relay::Reset
                } else {
                    Relay::Broken
                });
            }
        }
    }
    Err(Relay::Broken)
}

/// A relay failure: the error, and whether any byte reached the client.
struct Failure {
    error: io::Error,
    relayed: bool,
}

const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// Relays one response; `Ok(keep_alive)`.
fn relay(up: &mut BufReader<TcpStream>, client: &mut Stream) -> Result<bool, Failure> {
    let before = |error: io::Error| Failure {
        error,
        relayed: false,
    };
    let after = |error: io::Error| Failure {
        error,
        relayed: true,
    };
    let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let n = up.read_until(b'\n', &mut head).map_err(before)?;
        if n == 0 || head.len() > MAX_RESPONSE_HEAD {
            return Err(before(eof()));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(&head), Ok(httparse::Status::Complete(_))) {
        return Err(before(io::Error::from(io::ErrorKind::InvalidData)));
    }
    let has = |name: &str, token: &str| {
        response.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && h.value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let chunked = has("transfer-encoding", "chunked");
    let mut keep_alive = !has("connection", "close");
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        });
    let status = response.code.unwrap_or(0);
    client.write_all(&head).map_err(after)?;
    if chunked {
        relay_chunks(up, client).map_err(after)?;
    } else if let Some(length) = length {
        let copied = io::copy(&mut up.by_ref().take(length), client).map_err(after)?;
        if copied != length {
            return Err(after(eof()));
        }
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        io::copy(up, client).map_err(after)?;
        keep_alive = false;
    }
    client.flush().map_err(after)?;
    Ok(keep_alive)
}

/// Relays a chunked body up to and including its trailer.
fn relay_chunks(up: &mut BufReader<TcpStream>, client: &mut Stream) -> io::Result<()> {
    let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
    loop {
        let mut line = Vec::new();
        if up.read_until(b'\n', &mut line)? == 0 {
            return Err(eof());
        }
        client.write_all(&line)?;
        let text = std::str::from_utf8(&line).map_err(|_| eof())?;
        let size = text
            .split(';')
            .next()
            .map(str::trim)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(eof)?;
        if size == 0 {
            loop {
                let mut trailer = Vec::new();
                if up.read_until(b'\n', &mut trailer)? == 0 {
                    return Err(eof());
                }
                client.write_all(&trailer)?;
                if trailer == b"\r\n" {
                    return Ok(());
                }
            }
        }
        let want = size + 2;
        if io::copy(&mut up.by_ref().take(want), client)? != want {
            return Err(eof());
        }
    }
}
