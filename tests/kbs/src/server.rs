//! The listener, one thread per connection, the request loop with fault injection, and the
//! [`Server`] handle tests drive.

use crate::fault::{Fault, FaultKind, Faults, RequestStep};
use crate::http::{Connection, Framing, Limits, Request, Response, chunk_frame};
use crate::kbs::{Kbs, Outcome, Route, Twist};
use crate::policy::Policy;
use crate::resources::Resources;
use crate::session::Sessions;
use crate::stats::{Arrival, Stats, StatsCell};
use crate::tls::{Handshake, Stream, TlsSettings};
use crate::token::TokenService;
use crate::verifier::Verifiers;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Everything the server can be configured with. [`Config::default`] is Trustee's defaults
/// on `127.0.0.1:0` (an ephemeral port), without resources.
#[derive(Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (see [`Server::addr`]).
    pub listen: SocketAddr,
    /// Resources as files `<dir>/<repo>/<type>/<tag>`, read at each request.
    pub resources_dir: Option<PathBuf>,
    /// Resources given directly, `("repo/type/tag", bytes)`; they shadow files.
    pub resources: Vec<(String, Vec<u8>)>,
    /// Largest resource served (a larger file is `PluginInternalError`). Default 1 MiB.
    pub max_resource_size: usize,
    /// The resource policy. Default: allow to any TEE appraised `affirming`.
    pub policy: Policy,
    /// The evidence verifiers by TEE. Default: `sample` and `sampledevice`.
    pub verifiers: Verifiers,
    /// Session lifetime from `/auth` (Trustee: 5 minutes).
    pub session_timeout: Duration,
    /// Token lifetime, `exp - iat` (Trustee: 5 minutes).
    pub token_lifetime: Duration,
    /// Accepted lateness of `exp` at verification (jsonwebtoken's default: 60 s).
    pub token_leeway: Duration,
    /// Idle time after which a persistent connection is closed, and the time a started
    /// request may take to arrive (actix: 5 s).
    pub keep_alive: Duration,
    /// Largest request head (64 KiB; larger → 431).
    pub max_head: usize,
    /// Largest request body (actix: 2 MiB; larger → 413 without JSON body).
    pub max_body: usize,
    /// Send every response with `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
    /// Close the connection after every response (`Connection: close`).
    pub close_after_response: bool,
    /// Faults armed from the start.
    pub faults: Vec<Fault>,
    /// Log each request (method, path, status, and the reason of an error) to stderr.
    pub log: bool,
    /// Serve HTTPS with this certificate and key (`None`: plain HTTP).
    pub tls: Option<TlsSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            resources_dir: None,
            resources: Vec::new(),
            max_resource_size: 1 << 20,
            policy: Policy::default(),
            verifiers: Verifiers::default(),
            session_timeout: Duration::from_secs(300),
            token_lifetime: Duration::from_secs(300),
            token_leeway: Duration::from_secs(60),
            keep_alive: Duration::from_secs(5),
            max_head: 64 << 10,
            max_body: 2 << 20,
            chunked: false,
            close_after_response: false,
            faults: Vec::new(),
            log: false,
            tls: None,
        }
    }
}

/// Resource contents are secrets: show names and sizes only.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resources: Vec<String> = self
            .resources
            .iter()
            .map(|(path, bytes)| format!("{path} ({} bytes)", bytes.len()))
            .collect();
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("resources_dir", &self.resources_dir)
            .field("resources", &resources)
            .field("max_resource_size", &self.max_resource_size)
            .field("policy", &self.policy)
            .field("verifiers", &self.verifiers)
            .field("session_timeout", &self.session_timeout)
            .field("token_lifetime", &self.token_lifetime)
            .field("token_leeway", &self.token_leeway)
            .field("keep_alive", &self.keep_alive)
            .field("max_head", &self.max_head)
            .field("max_body", &self.max_body)
            .field("chunked", &self.chunked)
            .field("close_after_response", &self.close_after_response)
            .field("faults", &self.faults)
            .field("log", &self.log)
            .field("tls", &self.tls)
            .finish()
    }
}

pub(crate) fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// What the replicas of a fleet share: the token-signing key, the resource store, the
/// policy and the armed faults. A lone server has its own.
#[derive(Clone)]
pub(crate) struct SharedParts {
    pub tokens: Arc<TokenService>,
    pub resources: Arc<Resources>,
    pub policy: Arc<RwLock<Policy>>,
    pub faults: Arc<Faults>,
}

impl SharedParts {
    /// Checks and loads the policy, resources and faults of `config`; a fresh signing key.
    pub(crate) fn new(config: &Config) -> io::Result<SharedParts> {
        config.policy.check().map_err(invalid)?;
        let resources = Resources::new(config.resources_dir.clone(), config.max_resource_size);
        for (path, bytes) in &config.resources {
            resources.add(path, bytes.clone()).map_err(invalid)?;
        }
        let faults = Faults::new();
        faults.set(config.faults.clone()).map_err(invalid)?;
        Ok(SharedParts {
            tokens: Arc::new(TokenService::new(
                config.token_lifetime,
                config.token_leeway,
            )),
            resources: Arc::new(resources),
            policy: Arc::new(RwLock::new(config.policy.clone())),
            faults: Arc::new(faults),
        })
    }
}

/// State shared by the accept thread, the connection threads and the handle.
struct Shared {
    kbs: Kbs,
    faults: Arc<Faults>,
    stats: StatsCell,
    limits: Limits,
    chunked: bool,
    close_after_response: bool,
    log: bool,
    tls: Option<TlsSettings>,
    stopping: AtomicBool,
    next_id: AtomicU64,
    /// Live connections, to shut them down when the server stops.
    connections: Mutex<HashMap<u64, TcpStream>>,
}

/// A running test KBS. Dropping it (or [`Server::shutdown`]) stops it.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds, spawns the accept thread and returns at once. Errors: bind failures, and an
    /// invalid configuration (bad resource path or fault, as `InvalidInput`).
    pub fn start(config: Config) -> io::Result<Server> {
        let parts = SharedParts::new(&config)?;
        Server::start_with(config, parts)
    }

    /// Starts a server that shares `parts` (token key, resources, policy, faults) with
    /// others: a replica of a [`crate::Fleet`]. Sessions, counters and connections are its
    /// own. `config`'s resources, policy, faults and token settings are ignored here (they
    /// went into `parts`).
    pub(crate) fn start_with(config: Config, parts: SharedParts) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            kbs: Kbs {
                sessions: Sessions::new(config.session_timeout),
                tokens: parts.tokens,
                verifiers: config.verifiers,
                policy: parts.policy,
                resources: parts.resources,
            },
            faults: parts.faults,
            stats: StatsCell::default(),
            limits: Limits {
                head: config.max_head,
                body: config.max_body,
                idle: config.keep_alive,
            },
            chunked: config.chunked,
            close_after_response: config.close_after_response,
            log: config.log,
            tls: config.tls,
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("test-kbs-accept".into())
            .spawn(move || accept_loop(&accept_shared, &listener))?;
        Ok(Server {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The bound address (with the real port when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` (`https://` with TLS), the KBS URL to give a client.
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Replaces the armed faults.
    pub fn set_faults(&self, faults: Vec<Fault>) -> io::Result<()> {
        self.shared.faults.set(faults).map_err(invalid)
    }

    /// Arms one more fault (after the ones already armed).
    pub fn add_fault(&self, fault: Fault) -> io::Result<()> {
        self.shared.faults.add(fault).map_err(invalid)
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        let _ = self.shared.faults.set(Vec::new());
    }

    /// The faults with hits left (with their remaining counts).
    pub fn armed_faults(&self) -> Vec<Fault> {
        self.shared.faults.armed()
    }

    /// Replaces the resource policy.
    pub fn set_policy(&self, policy: Policy) -> io::Result<()> {
        policy.check().map_err(invalid)?;
        *self
            .shared
            .kbs
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner()) = policy;
        Ok(())
    }

    /// Adds or replaces a resource, `path` = `repo/type/tag`.
    pub fn add_resource(&self, path: &str, bytes: impl Into<Vec<u8>>) -> io::Result<()> {
        self.shared
            .kbs
            .resources
            .add(path, bytes.into())
            .map_err(invalid)
    }

    /// Removes a resource added through the API or the configuration; returns whether it
    /// existed. (Files in the resources directory are not touched.)
    pub fn remove_resource(&self, path: &str) -> bool {
        self.shared.kbs.resources.remove(path)
    }

    /// Drops the session with this cookie value as if it had timed out; returns whether it existed.
    pub fn expire_session(&self, id: &str) -> bool {
        self.shared.kbs.sessions.expire(id)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Every request so far (up to [`crate::stats::MAX_ARRIVALS`]), in arrival order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.stats.arrivals()
    }

    /// Zeroes the counters (and forgets the arrivals).
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Stops accepting, closes every connection and waits for the accept thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        stop_listener(self.addr, self.accept.take(), &self.shared.connections);
    }
}

/// Ends a listener whose stop flag is already set: wakes its blocking accept() with a
/// connection of our own, waits for the accept thread, then shuts every open connection
/// down (the server's, and the fleet's front).
pub(crate) fn stop_listener(
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    connections: &Mutex<HashMap<u64, TcpStream>>,
) {
    let mut wake = addr;
    if wake.ip().is_unspecified() {
        wake.set_ip(match wake {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    if let Some(accept) = accept {
        let _ = accept.join();
    }
    let connections = std::mem::take(&mut *connections.lock().unwrap_or_else(|e| e.into_inner()));
    for stream in connections.values() {
        let _ = stream.shutdown(Shutdown::Both);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(_) => {
                // EMFILE and friends: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        shared.stats.connection();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, clone);
        }
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("test-kbs-conn-{id}"))
            .spawn(move || {
                serve(&conn_shared, stream);
                conn_shared
                    .connections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            });
        if spawned.is_err() {
            shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

/// What the connection loop does after a request.
enum Next {
    KeepGoing,
    Close,
}

fn serve(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let fault = shared
        .tls
        .as_ref()
        .and_then(|_| shared.faults.take(&RequestStep::Handshake));
    if let Some(f) = &fault {
        shared.stats.fault();
        shared.log_line(&format!("TLS handshake -> broken (fault: {f:?})"));
    }
    let (stream, handshake) =
        Stream::accept(stream, shared.tls.as_ref(), fault, shared.limits.idle);
    match handshake {
        Handshake::None => {}
        Handshake::Done { resumed } => shared.stats.handshake(Some(resumed)),
        Handshake::Failed => shared.stats.handshake(None),
    }
    let Some(stream) = stream else {
        return;
    };
    let mut conn = Connection::new(stream);
    loop {
        let request = match conn.read_request(&shared.limits) {
            Ok(request) => request,
            Err(e) => {
                if let Some(status) = e.status() {
                    shared.log_line(&format!("-> {status} (bad request: {e:?})"));
                    let (head, body) = Response::new(status).encode(Framing::Length, true);
                    conn.write_and_close(&[head, body].concat());
                }
                return;
            }
        };
        match serve_one(shared, &mut conn, &request) {
            Ok(Next::KeepGoing) => {}
            Ok(Next::Close) | Err(Closed::Done) => return,
            Err(Closed::Reset) => {
                conn.reset();
                return;
            }
        }
    }
}

/// How a fault ended the connection.
enum Closed {
    /// Reset it (the caller owns the connection).
    Reset,
    /// Already closed or broken.
    Done,
}

fn serve_one(shared: &Shared, conn: &mut Connection, request: &Request) -> Result<Next, Closed> {
    let route = Route::of(&request.method, &request.path);
    let counter = route.counter();
    shared.stats.request(counter);
    let arrival = shared.stats.arrival(&request.method, &request.path);
    let fault = route.step().and_then(|step| shared.faults.take(&step));
    if fault.is_some() {
        shared.stats.fault();
    }
    let close = shared.close_after_response || !request.keep_alive();
    let framing = if shared.chunked && !request.http10 {
        Framing::Chunked
    } else {
        Framing::Length
    };
    let line = |status: &str, note: Option<&str>| {
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        shared.log_line(&format!(
            "{} {} -> {status}{note}",
            request.method, request.path
        ));
    };
    let mut twist = Twist::default();
    match &fault {
        Some(FaultKind::Reset) => {
            line("reset", Some("fault"));
            return Err(Closed::Reset);
        }
        Some(FaultKind::Delay(delay)) => std::thread::sleep(*delay),
        Some(FaultKind::Hang) => {
            line("nothing", Some("fault: hang"));
            conn.hold_until_closed();
            return Err(Closed::Done);
        }
        Some(FaultKind::ExpireSession) => twist.expire_session = true,
        Some(FaultKind::InvalidToken) => twist.invalid_token = true,
        Some(FaultKind::Status(code)) => {
            let response = Response::new(*code)
                .header("content-type", "text/plain; charset=utf-8")
                .body(format!(
                    "test-kbs injected fault: {code} {}\n",
                    crate::http::reason(*code)
                ));
            line(&code.to_string(), Some("fault"));
            return send(shared, conn, (counter, arrival), &response, framing, close);
        }
        Some(FaultKind::GarbageBody) => {
            let response = Response::json(GARBAGE.to_vec());
            line("200", Some("fault: garbage body"));
            return send(shared, conn, (counter, arrival), &response, framing, close);
        }
        Some(FaultKind::Oversize(size)) => {
            line("200", Some("fault: oversize body"));
            return stream_oversize(shared, conn, (counter, arrival), *size, framing, close);
        }
        Some(FaultKind::CloseMidResponse | FaultKind::TruncatedBody | FaultKind::Drip(_))
        | None => {}
    }
    let Outcome { response, note } = shared.kbs.handle(request, &route, twist);
    let status = response.status.to_string();
    match fault {
        Some(FaultKind::CloseMidResponse) => {
            line(&status, Some("fault: closed mid-response"));
            let (head, body) = response.encode(framing, true);
            let all = [head, body].concat();
            conn.write_and_close(&all[..all.len() / 2]);
            Err(Closed::Done)
        }
        Some(FaultKind::Drip(pause)) => {
            line(&status, Some("fault: drip"));
            let (head, body) = response.encode(framing, close);
            shared.stats.response(counter, response.status);
            for byte in [head, body].concat() {
                std::thread::sleep(pause);
                conn.stream.write_all(&[byte]).map_err(|_| Closed::Done)?;
            }
            if close {
                conn.write_and_close(&[]);
                return Ok(Next::Close);
            }
            Ok(Next::KeepGoing)
        }
        Some(FaultKind::TruncatedBody) => {
            line(&status, Some("fault: truncated body"));
            let (head, body) = response.encode(framing, true);
            let cut = match framing {
                Framing::Length => response.body.len() / 2,
                // Mid-stream: inside the chunk sequence, before the last-chunk marker.
                Framing::Chunked => body.len().saturating_sub(5) / 2,
            };
            conn.write_and_close(&[head.as_slice(), &body[..cut]].concat());
            Err(Closed::Done)
        }
        _ => {
            let fault_note = fault.as_ref().map(|f| format!("fault: {f:?}"));
            if let Some(note) = &note {
                shared.stats.noted(arrival, note);
            }
            line(&status, note.as_deref().or(fault_note.as_deref()));
            send(shared, conn, (counter, arrival), &response, framing, close)
        }
    }
}

/// Neither JSON nor a JWE: a NUL, invalid UTF-8 and some HTML.
const GARBAGE: &[u8] = b"\x00\xff\xfe<html><body>502 upstream garbage \xc3\x28</body></html>\r\n";

/// The counter of a request and its index in the arrival log.
type Counted = (Option<crate::stats::Counter>, Option<usize>);

fn send(
    shared: &Shared,
    conn: &mut Connection,
    (counter, arrival): Counted,
    response: &Response,
    framing: Framing,
    close: bool,
) -> Result<Next, Closed> {
    let (head, body) = response.encode(framing, close);
    let bytes = [head, body].concat();
    // Counted before writing, so that a client that has read the response sees it counted.
    shared.stats.response(counter, response.status);
    shared.stats.answered(arrival, response.status);
    if close {
        conn.write_and_close(&bytes);
        return Ok(Next::Close);
    }
    conn.stream.write_all(&bytes).map_err(|_| Closed::Done)?;
    Ok(Next::KeepGoing)
}

fn stream_oversize(
    shared: &Shared,
    conn: &mut Connection,
    (counter, arrival): Counted,
    size: u64,
    framing: Framing,
    close: bool,
) -> Result<Next, Closed> {
    let head = Response::json(Vec::new()).head(framing, size, close);
    shared.stats.response(counter, 200);
    shared.stats.answered(arrival, 200);
    let mut out = io::BufWriter::with_capacity(64 << 10, &mut conn.stream);
    let written = write_oversize(&mut out, &head, size, framing);
    drop(out);
    match written {
        Ok(()) => {
            if close {
                conn.write_and_close(&[]);
                Ok(Next::Close)
            } else {
                Ok(Next::KeepGoing)
            }
        }
        // The client gave up (its body limit, presumably): expected.
        Err(_) => Err(Closed::Done),
    }
}

/// `size` body bytes that start like a JSON object (so a client parsing as it reads gets
/// going) and then never end.
fn write_oversize(
    out: &mut impl Write,
    head: &[u8],
    size: u64,
    framing: Framing,
) -> io::Result<()> {
    out.write_all(head)?;
    let mut block = vec![b'A'; 64 << 10];
    let prefix = b"{\"token\":\"";
    block[..prefix.len()].copy_from_slice(prefix);
    let mut left = size;
    let mut first = true;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        let piece = &block[..n];
        match framing {
            Framing::Length => out.write_all(piece)?,
            Framing::Chunked => out.write_all(&chunk_frame(piece))?,
        }
        if first {
            block[..prefix.len()].fill(b'A');
            first = false;
        }
        left -= n as u64;
    }
    if framing == Framing::Chunked {
        out.write_all(b"0\r\n\r\n")?;
    }
    out.flush()
}

impl Shared {
    fn log_line(&self, line: &str) {
        if self.log {
            eprintln!("test-kbs: {line}");
        }
    }
}
