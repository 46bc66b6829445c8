//! The guest-components server: `sealgate serve`, and sealgate started under the names
//! the kata agent launches (`attestation-agent`, `confidential-data-hub`,
//! `api-server-rest`) with kata's arguments.
//!
//! One process does the work: the **hub** (the `attestation-agent` instance, or
//! `sealgate serve`). It serves every listener in one thread and one epoll loop. The
//! `confidential-data-hub` and `api-server-rest` instances only bind their listener
//! (`cdh.sock`, the REST port), hand it to the hub over its AA socket with `SCM_RIGHTS`
//! (the private service `sealgate.Hub`, taken only from a peer running as root or as the
//! hub's user), and park until the hub's end of that connection closes. So every caller
//! shares the hub's one KBS session.
//!
//! The loop: non-blocking sockets, level-triggered epoll. Each connection keeps its partial
//! input (at most one frame: [`MAX_REQUEST`]) and a queue of encoded replies. While the
//! queue holds more than [`OUT_HIGH`] bytes the connection is neither read nor answered (a
//! client that does not read its replies stops being served, nothing else waits for it);
//! once it drains below, the requests left buffered are answered (a pipelining client sends
//! nothing more that would wake the loop). At most [`FRAMES_PER_TURN`] of a connection's
//! requests are answered before the other connections get their turn. Idle
//! connections stay open (kata keeps one for the VM's life); at most [`MAX_CONNECTIONS`]
//! exist at once, fewer if the descriptor limit is low ([`FD_RESERVE`] stay free for the
//! hub's own KBS connections, received descriptors and mkfs pipes). The hub's operations (KBS calls) run inline and are bounded by their own
//! deadlines (and by a ttrpc request's `timeout_nano`, which the hub's calls for it do not
//! outlive): callers that arrive during a handshake wait in their socket buffers and are
//! all served from the one session it establishes.

pub mod hub;
pub mod rest;
pub mod secure_mount;
pub mod ttrpc_service;

use crate::cli;
use crate::prelude::*;
use alloc::collections::VecDeque;
use core::net::SocketAddr;
use core::time::Duration;
use hub::{Hub, HubSettings};
use prost::Message;
use rest::{Features, RestConn, Step};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use sealgate_core::ttrpc::{self, Frame, FrameReader, code};
use sealgate_linux::event::{self, ListenerKind, Peer, Poller, ReadOutcome, Ready};
use sealgate_linux::time::Instant;
use sealgate_linux::{eprintln, error, info, warn};
use ttrpc_service::TtrpcApi;
use zeroize::Zeroizing;

/// kata's AA socket.
pub const AA_SOCKET: &str = "/run/confidential-containers/attestation-agent/attestation-agent.sock";
/// kata's (and CDH's default) CDH socket.
pub const CDH_SOCKET: &str = "/run/confidential-containers/cdh.sock";
/// api-server-rest's default bind address.
pub const REST_BIND: &str = "127.0.0.1:8006";

/// Largest ttrpc request accepted (upstream: 4 MiB). Requests are small (a sealed secret,
/// a resource path); this bounds the memory a stalled half-frame can hold.
pub const MAX_REQUEST: usize = 256 << 10;
/// Connections served at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 128;
/// Descriptors kept free under `RLIMIT_NOFILE` beside the client connections: the
/// standard streams, the epoll instance, the listeners, the KBS connection, descriptors in
/// transit, a child's pipes.
pub const FD_RESERVE: usize = 24;

/// The connection cap under the descriptor limit `nofile`: [`MAX_CONNECTIONS`], or fewer
/// if the limit leaves less room after [`FD_RESERVE`] (at least one: kata's).
pub fn connection_cap(nofile: u64) -> usize {
    let room = usize::try_from(nofile)
        .unwrap_or(usize::MAX)
        .saturating_sub(FD_RESERVE);
    room.clamp(1, MAX_CONNECTIONS)
}
/// Pending reply bytes above which a connection is not read.
pub const OUT_HIGH: usize = 1 << 20;
/// Requests of one connection answered before the others get their turn.
pub const FRAMES_PER_TURN: usize = 4;
/// Bytes read from one connection per turn.
const READ_CHUNK: usize = 64 << 10;

/// The private service on the AA socket through which the CDH and REST instances hand
/// over their listening socket.
pub const HUB_SERVICE: &str = "sealgate.Hub";
/// Its one method.
pub const ADOPT_METHOD: &str = "AdoptListener";

/// `sealgate.Hub/AdoptListener`'s request; the listening socket rides along (`SCM_RIGHTS`).
#[derive(Clone, PartialEq, Message)]
pub struct AdoptListener {
    /// `cdh` or `rest`.
    #[prost(string, tag = "1")]
    pub role: String,
    /// For `rest`: the `--features` value.
    #[prost(string, tag = "2")]
    pub features: String,
    /// For `cdh`: its `-c` config path, if any.
    #[prost(string, tag = "3")]
    pub config: String,
}

/// What sealgate was started as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `sealgate serve`: the hub with every listener.
    Serve,
    /// `attestation-agent`: the hub with the AA socket.
    AttestationAgent,
    /// `confidential-data-hub`: binds `cdh.sock` and hands it to the hub.
    ConfidentialDataHub,
    /// `api-server-rest`: binds the REST port and hands it to the hub.
    ApiServerRest,
}

/// The role an upstream program name selects (argv\[0\]'s base name), if any.
pub fn role_of(argv0: &str) -> Option<Role> {
    match argv0.rsplit('/').next().unwrap_or(argv0) {
        "attestation-agent" => Some(Role::AttestationAgent),
        "confidential-data-hub" => Some(Role::ConfidentialDataHub),
        "api-server-rest" => Some(Role::ApiServerRest),
        _ => None,
    }
}

const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 2;

fn unix_path(uri: &str, flag: &str) -> Result<String, String> {
    match uri.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(String::from(p)),
        _ => Err(format!(
            "{flag} must be unix:///ABSOLUTE/PATH, got '{}'",
            sealgate_core::escape::shown(uri)
        )),
    }
}

/// Splits `--flag=value` / `--flag value` style arguments (clap's forms).
fn take_value<'a>(
    arg: &'a str,
    it: &mut core::slice::Iter<'a, String>,
    names: &[&str],
) -> Option<Result<(String, String), String>> {
    for name in names {
        if arg == *name {
            return Some(
                it.next()
                    .map(|v| (String::from(*name), v.clone()))
                    .ok_or_else(|| format!("{name} needs a value")),
            );
        }
        if name.starts_with("--")
            && let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('='))
        {
            return Some(Ok((String::from(*name), String::from(v))));
        }
    }
    None
}

/// The hub's listeners and settings, from the command line.
#[derive(Debug, Default)]
struct ServeArgs {
    aa_socket: Option<String>,
    cdh_socket: Option<String>,
    rest: Option<(SocketAddr, Features)>,
    settings: HubSettings,
}

fn parse_rest_features(f: &str) -> Result<Features, String> {
    // Upstream's message, as api-server-rest prints it before exiting 1.
    Features::parse(f).map_err(|e| format!("{e}"))
}

fn parse_bind(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| {
        format!(
            "--bind must be IP:PORT, got '{}'",
            sealgate_core::escape::shown(v)
        )
    })
}

/// `attestation-agent --attestation_sock unix://P [--initdata-toml P] [-c aa.toml]`.
fn parse_aa(args: &[String]) -> Result<ServeArgs, String> {
    let mut s = ServeArgs {
        aa_socket: Some(String::from(AA_SOCKET)),
        ..ServeArgs::default()
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(r) = take_value(arg, &mut it, &["--attestation_sock", "-a"]) {
            s.aa_socket = Some(unix_path(&r?.1, "--attestation_sock")?);
        } else if let Some(r) = take_value(arg, &mut it, &["--initdata-toml", "-t"]) {
            s.settings.initdata_toml = Some(r?.1);
        } else if let Some(r) = take_value(arg, &mut it, &["--config-file", "-c"]) {
            s.settings.aa_config = Some(r?.1);
        } else {
            return Err(format!(
                "unsupported argument '{}' (attestation-agent takes --attestation_sock, \
                 --initdata-toml and -c)",
                sealgate_core::escape::shown(arg)
            ));
        }
    }
    Ok(s)
}

/// `sealgate serve [--attestation_sock unix://P] [--cdh_sock unix://P] [--bind ADDR]
/// [--features F | --no-rest] [--initdata-toml P] [--aa-config P] [--cdh-config P]
/// [sealgate's unseal options]`.
fn parse_serve(args: &[String]) -> Result<ServeArgs, String> {
    let mut s = ServeArgs {
        aa_socket: Some(String::from(AA_SOCKET)),
        cdh_socket: Some(String::from(CDH_SOCKET)),
        ..ServeArgs::default()
    };
    let mut bind = parse_bind(REST_BIND)?;
    let mut features = Features::Resource;
    let mut rest = true;
    let mut rest_args = vec![String::from("unseal")];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(r) = take_value(arg, &mut it, &["--attestation_sock"]) {
            s.aa_socket = Some(unix_path(&r?.1, "--attestation_sock")?);
        } else if let Some(r) = take_value(arg, &mut it, &["--cdh_sock"]) {
            s.cdh_socket = Some(unix_path(&r?.1, "--cdh_sock")?);
        } else if let Some(r) = take_value(arg, &mut it, &["--bind"]) {
            bind = parse_bind(&r?.1)?;
        } else if let Some(r) = take_value(arg, &mut it, &["--features"]) {
            features = parse_rest_features(&r?.1)?;
        } else if arg == "--no-rest" {
            rest = false;
        } else if let Some(r) = take_value(arg, &mut it, &["--initdata-toml"]) {
            s.settings.initdata_toml = Some(r?.1);
        } else if let Some(r) = take_value(arg, &mut it, &["--aa-config"]) {
            s.settings.aa_config = Some(r?.1);
        } else if let Some(r) = take_value(arg, &mut it, &["--cdh-config"]) {
            s.settings.cdh_config = Some(r?.1);
        } else {
            rest_args.push(arg.clone());
        }
    }
    if rest {
        s.rest = Some((bind, features));
    }
    match cli::parse(&rest_args).map_err(|e| e.0)? {
        cli::Command::Unseal(opts) => s.settings.options = opts,
        _ => return Err(String::from("sealgate serve: see sealgate --help")),
    }
    Ok(s)
}

/// What the environment says to the upstream-named instances, which take only upstream's
/// flags: where sealgate's own settings are (`SEALGATE_CONFIG`, else
/// `/etc/sealgate/config.toml` if present; `SEALGATE_KERNEL_CMDLINE`, else
/// `/proc/cmdline`). The environment is the launcher's: the image's unit, or the kata
/// agent, which passes on its own. A kata agent running as init inherited the kernel's
/// environment, which the (unmeasured) kernel command line fills, so a variable that
/// `/proc/cmdline` could have set is ignored with a warning ([`Env::from_vars`]).
#[derive(Debug, Default)]
pub struct Env {
    /// `SEALGATE_CONFIG`.
    pub config: Option<String>,
    /// `SEALGATE_KERNEL_CMDLINE`.
    pub kernel_cmdline: Option<String>,
}

impl Env {
    /// Reads the two variables through `var`, keeping each only if the kernel command
    /// line `cmdline` (always the real `/proc/cmdline`: the variable under suspicion
    /// cannot choose it) does not name it.
    pub fn from_vars<'a>(var: impl Fn(&str) -> Option<&'a str>, cmdline: &[u8]) -> Env {
        let take = |name: &str| {
            let value = var(name)?;
            if sealgate_core::trust::kernel_may_have_set_env(cmdline, name) {
                warn!(
                    "{name} is ignored: the kernel command line (unmeasured) sets it, and \
                     the kernel passes such parameters to init's environment"
                );
                return None;
            }
            Some(String::from(value))
        };
        Env {
            config: take("SEALGATE_CONFIG"),
            kernel_cmdline: take("SEALGATE_KERNEL_CMDLINE"),
        }
    }
}

/// Runs `role` with `args` (without argv\[0\]); the exit status.
pub fn main(role: Role, args: &[String], env: Env) -> i32 {
    match role {
        Role::Serve | Role::AttestationAgent => {
            let parsed = if role == Role::Serve {
                parse_serve(args)
            } else {
                parse_aa(args).map(|mut p| {
                    p.settings.options.config_file = env.config;
                    p.settings.options.kernel_cmdline = env.kernel_cmdline;
                    p
                })
            };
            let parsed = match parsed {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("sealgate: {e}");
                    return EXIT_USAGE;
                }
            };
            run_hub(parsed)
        }
        Role::ConfidentialDataHub => run_cdh(args),
        Role::ApiServerRest => run_rest(args),
    }
}

/// Creates the socket's parent directories (0755), as upstream's components do; a
/// failure shows when the bind fails.
fn ensure_parent(path: &str) {
    let Some((dir, _)) = path.rsplit_once('/') else {
        return;
    };
    let mut at = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        let _ = rustix::fs::mkdir(at.as_str(), rustix::fs::Mode::from_raw_mode(0o755));
    }
}

fn run_hub(args: ServeArgs) -> i32 {
    // Init-data, configuration and the attester first: a mismatch exits before any
    // socket exists (kata then times out waiting for it, as with upstream's AA).
    let hub = match Hub::new(args.settings) {
        Ok(h) => h,
        Err(f) => {
            error!("{f}");
            return EXIT_FAILURE;
        }
    };
    let mut server = match Server::new(hub) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return EXIT_FAILURE;
        }
    };
    let mut listen = || -> Result<(), String> {
        if let Some(p) = &args.aa_socket {
            ensure_parent(p);
            let fd = event::unix_listener(p)?;
            server.add_listener(fd, ListenerKind::Unix, Api::Ttrpc(TtrpcApi::Aa))?;
            info!("attestation-agent API on unix://{p}");
        }
        if let Some(p) = &args.cdh_socket {
            ensure_parent(p);
            let fd = event::unix_listener(p)?;
            server.add_listener(fd, ListenerKind::Unix, Api::Ttrpc(TtrpcApi::Cdh))?;
            info!("confidential-data-hub API on unix://{p}");
        }
        if let Some((addr, features)) = &args.rest {
            let fd = event::tcp_listener(*addr)?;
            server.add_listener(fd, ListenerKind::Tcp, Api::Rest(*features))?;
            info!("REST API ({}) on {addr}", features.as_str());
        }
        Ok(())
    };
    if let Err(e) = listen() {
        error!("{e}");
        return EXIT_FAILURE;
    }
    match server.run() {
        Ok(()) => 0,
        Err(e) => {
            error!("{e}");
            EXIT_FAILURE
        }
    }
}

/// cdh.toml's keys that the CDH instance itself needs (the hub reads the rest).
#[derive(Debug, Default, serde::Deserialize)]
struct CdhToml {
    socket: Option<String>,
    aa: Option<CdhAa>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct CdhAa {
    aa_socket: Option<String>,
}

/// `confidential-data-hub [-c cdh.toml]`.
fn run_cdh(args: &[String]) -> i32 {
    let mut config = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match take_value(arg, &mut it, &["-c"]) {
            Some(Ok((_, v))) => config = Some(v),
            Some(Err(e)) => {
                eprintln!("sealgate: {e}");
                return EXIT_USAGE;
            }
            None => {
                eprintln!(
                    "sealgate: unsupported argument '{}' (confidential-data-hub takes -c)",
                    sealgate_core::escape::shown(arg)
                );
                return EXIT_USAGE;
            }
        }
    }
    let toml: CdhToml = match &config {
        None => CdhToml::default(),
        Some(path) => {
            let text = match sealgate_linux::fs::read_file(path, 1 << 20) {
                Ok(t) => t,
                Err(e) => {
                    error!("cannot read {path}: {e}");
                    return EXIT_FAILURE;
                }
            };
            let parsed = core::str::from_utf8(&text)
                .map_err(|_| String::from("not UTF-8"))
                .and_then(|t| toml::from_str(t).map_err(|e| format!("{e}")));
            match parsed {
                Ok(t) => t,
                Err(e) => {
                    error!("{path}: {e}");
                    return EXIT_FAILURE;
                }
            }
        }
    };
    let socket = match toml
        .socket
        .as_deref()
        .map(|s| unix_path(s, "cdh.toml socket"))
    {
        None => String::from(CDH_SOCKET),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            error!("{e}");
            return EXIT_FAILURE;
        }
    };
    let aa = match toml
        .aa
        .and_then(|a| a.aa_socket)
        .map(|s| unix_path(&s, "cdh.toml [aa] aa_socket"))
    {
        None => String::from(AA_SOCKET),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            error!("{e}");
            return EXIT_FAILURE;
        }
    };
    ensure_parent(&socket);
    let listener = match event::unix_listener(&socket) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return EXIT_FAILURE;
        }
    };
    let adopt = AdoptListener {
        role: String::from("cdh"),
        features: String::new(),
        config: config.unwrap_or_default(),
    };
    match hand_over(&aa, &listener, &adopt) {
        Ok(conn) => {
            info!("confidential-data-hub: unix://{socket} is served by the hub at unix://{aa}");
            park(conn)
        }
        Err(e) => {
            let _ = rustix::fs::unlink(socket.as_str());
            error!("{e}");
            EXIT_FAILURE
        }
    }
}

/// `api-server-rest [--features F] [--bind ADDR] [--cdh_addr U] [--aa_addr U]`.
fn run_rest(args: &[String]) -> i32 {
    let mut features = Features::Resource;
    let mut bind = REST_BIND
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8006)));
    let mut aa = String::from(AA_SOCKET);
    let mut it = args.iter();
    let mut parse = || -> Result<(), String> {
        while let Some(arg) = it.next() {
            if let Some(r) = take_value(arg, &mut it, &["--features", "-f"]) {
                features = parse_rest_features(&r?.1)?;
            } else if let Some(r) = take_value(arg, &mut it, &["--bind", "-b"]) {
                bind = parse_bind(&r?.1)?;
            } else if let Some(r) = take_value(arg, &mut it, &["--aa_addr", "-a"]) {
                aa = unix_path(&r?.1, "--aa_addr")?;
            } else if let Some(r) = take_value(arg, &mut it, &["--cdh_addr", "-c"]) {
                // The hub serves the CDH API itself: the address is checked, not used.
                unix_path(&r?.1, "--cdh_addr")?;
            } else {
                return Err(format!(
                    "unsupported argument '{}' (api-server-rest takes --features, --bind, \
                     --cdh_addr and --aa_addr)",
                    sealgate_core::escape::shown(arg)
                ));
            }
        }
        Ok(())
    };
    if let Err(e) = parse() {
        // api-server-rest exits 1 on a bad --features value.
        eprintln!("sealgate: {e}");
        return EXIT_FAILURE;
    }
    let listener = match event::tcp_listener(bind) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return EXIT_FAILURE;
        }
    };
    let adopt = AdoptListener {
        role: String::from("rest"),
        features: String::from(features.as_str()),
        config: String::new(),
    };
    match hand_over(&aa, &listener, &adopt) {
        Ok(conn) => {
            info!(
                "api-server-rest: {bind} ({}) is served by the hub at unix://{aa}",
                features.as_str()
            );
            park(conn)
        }
        Err(e) => {
            error!("{e}");
            EXIT_FAILURE
        }
    }
}

/// Hands `listener` to the hub at `aa` (waiting for the hub's socket for a while: kata
/// starts the next component as soon as the AA socket exists). The connection stays
/// open: its end tells this process that the hub is gone.
fn hand_over(aa: &str, listener: &OwnedFd, adopt: &AdoptListener) -> Result<OwnedFd, String> {
    let mut attempt = 0;
    let conn = loop {
        match event::connect_unix(aa) {
            Ok(c) => break c,
            Err(e) if attempt >= 50 => return Err(format!("the hub is not reachable: {e}")),
            Err(_) => {
                attempt += 1;
                sealgate_linux::time::sleep(core::time::Duration::from_millis(100));
            }
        }
    };
    let (uid, _) = event::peer_of(&conn).map_err(|e| {
        format!(
            "cannot read the hub's credentials: {}",
            sealgate_linux::os(e)
        )
    })?;
    if uid != 0 && uid != event::euid() {
        return Err(format!(
            "the process serving unix://{aa} runs as uid {uid}, neither root nor this user: \
             not handing it a listening socket"
        ));
    }
    let req = ttrpc::Request {
        service: String::from(HUB_SERVICE),
        method: String::from(ADOPT_METHOD),
        payload: adopt.encode_to_vec(),
        timeout_nano: 0,
        metadata: Vec::new(),
    };
    let frame = ttrpc::frame(1, ttrpc::TYPE_REQUEST, &req.encode_to_vec());
    event::send_with_fd(conn.as_fd(), &frame, listener.as_fd()).map_err(|e| {
        format!(
            "cannot hand the listener to the hub: {}",
            sealgate_linux::os(e)
        )
    })?;
    let mut reader = FrameReader::new(64 << 10);
    let mut buf = [0u8; 4096];
    loop {
        let n = event::read_blocking(conn.as_fd(), &mut buf)
            .map_err(|e| format!("the hub did not answer: {}", sealgate_linux::os(e)))?;
        if n == 0 {
            return Err(String::from(
                "the hub closed the connection without an answer",
            ));
        }
        reader.feed(&buf[..n]);
        if let Some(Frame::Whole(h, payload)) = reader.next_frame() {
            if h.stream_id != 1 || h.kind != ttrpc::TYPE_RESPONSE {
                return Err(String::from("the hub sent an unexpected frame"));
            }
            let resp = ttrpc::Response::decode(&payload[..])
                .map_err(|e| format!("the hub's answer does not decode: {e}"))?;
            let status = resp.status.unwrap_or_default();
            if status.code != code::OK {
                return Err(format!("the hub refused the listener: {}", status.message));
            }
            return Ok(conn);
        }
    }
}

/// Waits until the hub closes `conn`; then exits (nothing supervises these processes).
fn park(conn: OwnedFd) -> i32 {
    let mut buf = [0u8; 64];
    loop {
        match event::read_blocking(conn.as_fd(), &mut buf) {
            Ok(0) | Err(_) => {
                error!("the hub closed its connection: exiting");
                return EXIT_FAILURE;
            }
            Ok(_) => {}
        }
    }
}

/// What a listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Api {
    Ttrpc(TtrpcApi),
    /// The REST API with its `--features` value.
    Rest(Features),
}

struct Listener {
    fd: OwnedFd,
    kind: ListenerKind,
    api: Api,
}

struct Conn {
    fd: OwnedFd,
    api: Api,
    peer: Peer,
    reader: FrameReader,
    /// REST: the connection's parser and state.
    rest: Option<RestConn>,
    /// Replies not yet written; the first is written from `sent`.
    out: VecDeque<Zeroizing<Vec<u8>>>,
    out_bytes: usize,
    sent: usize,
    /// Descriptors received with the bytes (`SCM_RIGHTS`), for `AdoptListener`.
    fds: Vec<OwnedFd>,
    /// Reading ended (peer closed, or the loop stopped reading it).
    eof: bool,
    /// Close once the replies are written.
    close_after_write: bool,
    /// Requests were left buffered because the replies queued passed [`OUT_HIGH`]: the
    /// connection goes back to the pending queue once they drain below it (its socket may
    /// never become readable again: a pipelining client waits for those answers).
    stalled: bool,
    /// Interest registered with epoll: (read, write).
    interest: (bool, bool),
}

const LISTENER_TOKEN: u64 = 1 << 32;

struct Server {
    hub: Hub,
    poller: Poller,
    listeners: Vec<Listener>,
    conns: Vec<Option<Conn>>,
    /// Connections with buffered requests not yet answered.
    pending: VecDeque<usize>,
    warned_full: bool,
    /// [`connection_cap`] of the descriptor limit at start.
    max_connections: usize,
    /// The listeners are not watched: accept ran out of descriptors (EMFILE/ENFILE). They
    /// are watched again when a connection closes, so the loop does not spin on a
    /// listener that stays readable.
    listeners_paused: bool,
}

impl Server {
    fn new(hub: Hub) -> Result<Server, String> {
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let max_connections = connection_cap(nofile);
        if max_connections < MAX_CONNECTIONS {
            warn!(
                "the descriptor limit ({nofile}) allows {max_connections} connections at once, \
                 not {MAX_CONNECTIONS}"
            );
        }
        Ok(Server {
            max_connections,
            hub,
            poller: Poller::new()?,
            listeners: Vec::new(),
            conns: Vec::new(),
            pending: VecDeque::new(),
            warned_full: false,
            listeners_paused: false,
        })
    }

    fn add_listener(&mut self, fd: OwnedFd, kind: ListenerKind, api: Api) -> Result<(), String> {
        let token = LISTENER_TOKEN + self.listeners.len() as u64;
        self.poller
            .add(fd.as_fd(), token, false)
            .map_err(|e| format!("cannot watch a listener: {}", sealgate_linux::os(e)))?;
        self.listeners.push(Listener { fd, kind, api });
        Ok(())
    }

    /// Watches the listeners (or stops watching them) for new connections.
    fn watch_listeners(&mut self, on: bool) {
        for (i, l) in self.listeners.iter().enumerate() {
            let token = LISTENER_TOKEN + i as u64;
            if let Err(e) = self.poller.modify(l.fd.as_fd(), token, on, false) {
                warn!("cannot watch a listener: {}", sealgate_linux::os(e));
            }
        }
        self.listeners_paused = !on;
    }

    fn live(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    fn run(&mut self) -> Result<(), String> {
        let mut ready: Vec<Ready> = Vec::with_capacity(64);
        loop {
            let timeout = if self.pending.is_empty() {
                None
            } else {
                Some(0)
            };
            self.poller
                .wait(&mut ready, timeout)
                .map_err(|e| format!("epoll_wait failed: {}", sealgate_linux::os(e)))?;
            for r in ready.iter().copied() {
                if r.token >= LISTENER_TOKEN {
                    self.accept((r.token - LISTENER_TOKEN) as usize);
                } else {
                    let slot = r.token as usize;
                    if r.writable {
                        self.flush(slot);
                    }
                    if r.readable {
                        self.read(slot);
                        // A peer that hung up is closed here once nothing is left to do.
                        self.flush(slot);
                    }
                }
            }
            let turns = self.pending.len();
            for _ in 0..turns {
                let Some(slot) = self.pending.pop_front() else {
                    break;
                };
                if self.process(slot) {
                    self.pending.push_back(slot);
                }
                self.flush(slot);
            }
        }
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..16 {
            let Some(l) = self.listeners.get(index) else {
                return;
            };
            let (fd, peer) = match event::accept(l.fd.as_fd(), l.kind) {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e) if e == Errno::MFILE || e == Errno::NFILE => {
                    // The connection stays queued in the kernel; the listeners stay
                    // readable, so stop watching them until a connection closes.
                    warn!(
                        "accept failed: {}; not accepting until a connection closes",
                        sealgate_linux::os(e)
                    );
                    self.watch_listeners(false);
                    return;
                }
                Err(e) => {
                    // A connection that went away before it was accepted, and the like.
                    warn!("accept failed: {}", sealgate_linux::os(e));
                    return;
                }
            };
            if self.live() >= self.max_connections {
                if !self.warned_full {
                    warn!(
                        "{} connections open: closing new ones until some end",
                        self.max_connections
                    );
                    self.warned_full = true;
                }
                continue;
            }
            self.warned_full = false;
            let slot = match self.conns.iter().position(Option::is_none) {
                Some(s) => s,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            if let Err(e) = self.poller.add(fd.as_fd(), slot as u64, false) {
                warn!("cannot watch a connection: {}", sealgate_linux::os(e));
                continue;
            }
            let rest = match (&l.api, peer) {
                (Api::Rest(features), Peer::Tcp(addr)) => Some(RestConn::new(addr.ip(), *features)),
                _ => None,
            };
            self.conns[slot] = Some(Conn {
                fd,
                api: l.api.clone(),
                peer,
                reader: FrameReader::new(MAX_REQUEST),
                rest,
                out: VecDeque::new(),
                out_bytes: 0,
                sent: 0,
                fds: Vec::new(),
                eof: false,
                close_after_write: false,
                stalled: false,
                interest: (true, false),
            });
        }
    }

    fn read(&mut self, slot: usize) {
        let Some(Some(c)) = self.conns.get_mut(slot) else {
            return;
        };
        if c.eof || c.out_bytes > OUT_HIGH {
            return;
        }
        let room = match &c.rest {
            None => c.reader.room().min(READ_CHUNK),
            Some(r) => r.read_capacity().min(READ_CHUNK),
        };
        if room == 0 {
            // Buffered requests are answered first (the connection is pending).
            return;
        }
        let mut buf = Zeroizing::new(vec![0u8; room]);
        // Descriptors are taken only where they can be used: the AA socket, from a peer
        // running as root or as this user. Others are closed on receipt.
        let max_fds = match (c.api.clone(), c.peer) {
            (Api::Ttrpc(TtrpcApi::Aa), Peer::Unix { uid, .. })
                if uid == 0 || uid == event::euid() =>
            {
                1
            }
            _ => 0,
        };
        match event::recv(c.fd.as_fd(), &mut buf, &mut c.fds, max_fds) {
            ReadOutcome::Data(n) => {
                match &mut c.rest {
                    None => c.reader.feed(&buf[..n]),
                    Some(r) => r.feed(&buf[..n]),
                }
                if !self.pending.contains(&slot) {
                    self.pending.push_back(slot);
                }
            }
            ReadOutcome::WouldBlock => {}
            ReadOutcome::Closed => {
                c.eof = true;
                if let Some(r) = &mut c.rest {
                    r.feed_eof();
                }
                // Requests already buffered are still answered (and written if the peer
                // only shut down its sending side).
                if !self.pending.contains(&slot) {
                    self.pending.push_back(slot);
                }
            }
        }
    }

    /// Answers up to [`FRAMES_PER_TURN`] buffered requests; true if more remain.
    fn process(&mut self, slot: usize) -> bool {
        let Some(Some(c)) = self.conns.get_mut(slot) else {
            return false;
        };
        match c.api.clone() {
            Api::Ttrpc(api) => {
                for _ in 0..FRAMES_PER_TURN {
                    let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                        return false;
                    };
                    if c.out_bytes > OUT_HIGH {
                        c.stalled = true;
                        return false;
                    }
                    let Some(frame) = c.reader.next_frame() else {
                        return false;
                    };
                    if let Some(reply) = self.ttrpc_frame(slot, api, frame) {
                        self.queue(slot, reply);
                    }
                }
                true
            }
            Api::Rest(_) => {
                for _ in 0..FRAMES_PER_TURN {
                    let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                        return false;
                    };
                    if c.close_after_write {
                        return false;
                    }
                    if c.out_bytes > OUT_HIGH {
                        c.stalled = true;
                        return false;
                    }
                    let Some(conn) = c.rest.as_mut() else {
                        return false;
                    };
                    match rest::step(conn, &mut self.hub) {
                        Step::Write(bytes) => self.queue(slot, bytes),
                        Step::NeedMore => return false,
                        Step::Close => {
                            c.close_after_write = true;
                            return false;
                        }
                    }
                }
                true
            }
        }
    }

    fn queue(&mut self, slot: usize, reply: Zeroizing<Vec<u8>>) {
        if let Some(Some(c)) = self.conns.get_mut(slot) {
            c.out_bytes += reply.len();
            c.out.push_back(reply);
        }
    }

    fn ttrpc_frame(
        &mut self,
        slot: usize,
        api: TtrpcApi,
        frame: Frame,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let started = Instant::now();
        let (header, payload) = match frame {
            Frame::Oversize(h) => {
                return Some(Zeroizing::new(ttrpc::error_response(
                    h.stream_id,
                    code::INVALID_ARGUMENT,
                    &format!(
                        "message length {} exceed maximum message size of {MAX_REQUEST}",
                        h.length
                    ),
                )));
            }
            Frame::Whole(h, p) => (h, Zeroizing::new(p)),
        };
        if header.kind != ttrpc::TYPE_REQUEST {
            // ttrpc logs and ignores other frame types on a server.
            return None;
        }
        if header.stream_id % 2 == 0 {
            return Some(Zeroizing::new(ttrpc::error_response(
                header.stream_id,
                code::INVALID_ARGUMENT,
                "stream id must be odd",
            )));
        }
        let req = match ttrpc::decode_request(&payload) {
            Ok(r) => r,
            Err(e) => {
                return Some(Zeroizing::new(ttrpc::error_response(
                    header.stream_id,
                    code::INVALID_ARGUMENT,
                    &format!("cannot decode the request envelope: {e}"),
                )));
            }
        };
        let req = ZeroizingRequest(req);
        // The caller's timeout bounds the hub's KBS calls for this request, and an answer
        // that comes after it is DEADLINE_EXCEEDED, as ttrpc's server answers a handler
        // that outlived `timeout_nano`.
        let deadline = u64::try_from(req.0.timeout_nano)
            .ok()
            .filter(|ns| *ns > 0)
            .map(|ns| started.saturating_add(Duration::from_nanos(ns)));
        let answer = if api == TtrpcApi::Aa && req.0.service == HUB_SERVICE {
            self.hub_service(slot, &req.0)
        } else {
            self.hub.set_call_deadline(deadline);
            let answer = ttrpc_service::call(&mut self.hub, api, &req.0);
            self.hub.set_call_deadline(None);
            answer
        };
        let answer = match deadline {
            Some(at) if Instant::now() >= at => {
                Err((code::DEADLINE_EXCEEDED, String::from("timeout")))
            }
            _ => answer,
        };
        Some(ttrpc_service::response_frame(header.stream_id, &answer))
    }

    /// `sealgate.Hub/AdoptListener`: serve the listening socket that came with it.
    fn hub_service(&mut self, slot: usize, req: &ttrpc::Request) -> ttrpc_service::Answer {
        if req.method != ADOPT_METHOD {
            return Err((code::UNIMPLEMENTED, format!("{} method", req.method)));
        }
        let m = AdoptListener::decode(&req.payload[..]).map_err(|e| {
            (
                code::INVALID_ARGUMENT,
                format!("cannot decode AdoptListener: {e}"),
            )
        })?;
        let fd = self
            .conns
            .get_mut(slot)
            .and_then(Option::as_mut)
            .and_then(|c| c.fds.pop())
            .ok_or((
                code::PERMISSION_DENIED,
                String::from(
                    "AdoptListener needs a listening socket passed with SCM_RIGHTS by a peer \
                     running as root or as the hub's user",
                ),
            ))?;
        let kind = event::listener_kind(fd.as_fd()).map_err(|e| (code::INVALID_ARGUMENT, e))?;
        let api = match (m.role.as_str(), kind) {
            ("cdh", ListenerKind::Unix) => Api::Ttrpc(TtrpcApi::Cdh),
            // api-server-rest's --features is kata's agent.guest_components_rest_api, which
            // the host can set: it counts only within the image's measured ceiling.
            ("rest", ListenerKind::Tcp) => Api::Rest(self.hub.rest_features(
                parse_rest_features(&m.features).map_err(|e| (code::INVALID_ARGUMENT, e))?,
            )),
            _ => {
                return Err((
                    code::INVALID_ARGUMENT,
                    format!(
                        "AdoptListener: role '{}' with a {kind:?} socket is not served",
                        sealgate_core::escape::shown(&m.role)
                    ),
                ));
            }
        };
        if !m.config.is_empty() {
            info!(
                "confidential-data-hub config {} is read by the hub's settings, not per listener",
                sealgate_core::escape::shown(&m.config)
            );
        }
        self.add_listener(fd, kind, api.clone())
            .map_err(|e| (code::INTERNAL, e))?;
        info!("serving a handed-over listener: {}", m.role);
        Ok(Zeroizing::new(Vec::new()))
    }

    /// Writes what it can; closes the connection when it is done.
    fn flush(&mut self, slot: usize) {
        let Some(Some(c)) = self.conns.get_mut(slot) else {
            return;
        };
        let mut failed = false;
        while let Some(front) = c.out.front() {
            match event::send(c.fd.as_fd(), &front[c.sent..]) {
                Ok(0) => break,
                Ok(n) => {
                    c.sent += n;
                    if c.sent == front.len() {
                        c.out_bytes -= front.len();
                        c.out.pop_front();
                        c.sent = 0;
                    }
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed && c.stalled && c.out_bytes <= OUT_HIGH {
            // Answer the requests left buffered when the queue was full.
            c.stalled = false;
            if !self.pending.contains(&slot) {
                self.pending.push_back(slot);
            }
        }
        let done = failed
            || (c.out.is_empty()
                && (c.close_after_write || (c.eof && !self.pending.contains(&slot))));
        if done {
            let _ = self.poller.remove(c.fd.as_fd());
            self.conns[slot] = None;
            self.pending.retain(|s| *s != slot);
            if self.listeners_paused {
                // A descriptor is free again.
                self.watch_listeners(true);
            }
            return;
        }
        let want = (!c.eof && c.out_bytes <= OUT_HIGH, !c.out.is_empty());
        if want != c.interest
            && self
                .poller
                .modify(c.fd.as_fd(), slot as u64, want.0, want.1)
                .is_ok()
        {
            c.interest = want;
        }
    }
}

/// A request envelope whose payload is zeroized when dropped (it may hold a sealed
/// secret's JWS).
struct ZeroizingRequest(ttrpc::Request);

impl Drop for ZeroizingRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| String::from(*a)).collect()
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_hub() {
        assert_eq!(connection_cap(1024), MAX_CONNECTIONS);
        assert_eq!(connection_cap(u64::MAX), MAX_CONNECTIONS);
        assert_eq!(connection_cap(40), 40 - FD_RESERVE);
        assert_eq!(connection_cap(FD_RESERVE as u64 + 1), 1);
        assert_eq!(connection_cap(3), 1);
    }

    #[test]
    fn environment_the_kernel_command_line_could_set_is_ignored() {
        let vars = |name: &str| match name {
            "SEALGATE_CONFIG" => Some("/etc/x.toml"),
            "SEALGATE_KERNEL_CMDLINE" => Some("/run/cmdline"),
            _ => None,
        };
        let e = Env::from_vars(vars, b"console=ttyS0 agent.log=debug");
        assert_eq!(e.config.as_deref(), Some("/etc/x.toml"));
        assert_eq!(e.kernel_cmdline.as_deref(), Some("/run/cmdline"));
        let e = Env::from_vars(vars, b"console=ttyS0 SEALGATE_CONFIG=/etc/x.toml");
        assert_eq!(e.config, None);
        assert_eq!(e.kernel_cmdline.as_deref(), Some("/run/cmdline"));
        let e = Env::from_vars(vars, b"SEALGATE_KERNEL_CMDLINE=/run/cmdline");
        assert_eq!(e.kernel_cmdline, None);
        let e = Env::from_vars(|_| None, b"SEALGATE_CONFIG=/x");
        assert_eq!((e.config, e.kernel_cmdline), (None, None));
    }

    #[test]
    fn upstream_names_select_the_role() {
        assert_eq!(
            role_of("/usr/local/bin/attestation-agent"),
            Some(Role::AttestationAgent)
        );
        assert_eq!(
            role_of("confidential-data-hub"),
            Some(Role::ConfidentialDataHub)
        );
        assert_eq!(
            role_of("/usr/local/bin/api-server-rest"),
            Some(Role::ApiServerRest)
        );
        assert_eq!(role_of("/sbin/sealgate"), None);
        assert_eq!(role_of("attestation-agent-x"), None);
    }

    #[test]
    fn kata_arguments_for_the_attestation_agent() {
        let p = parse_aa(&v(&[
            "--attestation_sock",
            "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock",
            "--initdata-toml",
            "/run/confidential-containers/initdata/initdata.toml",
            "-c",
            "/run/confidential-containers/initdata/aa.toml",
        ]))
        .unwrap();
        assert_eq!(p.aa_socket.as_deref(), Some(AA_SOCKET));
        assert_eq!(p.cdh_socket, None);
        assert!(p.rest.is_none());
        assert_eq!(
            p.settings.initdata_toml.as_deref(),
            Some("/run/confidential-containers/initdata/initdata.toml")
        );
        assert_eq!(
            p.settings.aa_config.as_deref(),
            Some("/run/confidential-containers/initdata/aa.toml")
        );
        let p = parse_aa(&v(&["--attestation_sock=unix:///tmp/a.sock"])).unwrap();
        assert_eq!(p.aa_socket.as_deref(), Some("/tmp/a.sock"));
        assert!(parse_aa(&v(&["--attestation_sock", "tcp://1.2.3.4:5"])).is_err());
        assert!(parse_aa(&v(&["--attestation_sock"])).is_err());
        assert!(parse_aa(&v(&["--initdata-digest", "x"])).is_err());
    }

    #[test]
    fn serve_takes_its_flags_and_sealgates_options() {
        let p = parse_serve(&v(&[
            "--cdh_sock",
            "unix:///tmp/c.sock",
            "--bind",
            "127.0.0.1:9006",
            "--features",
            "all",
            "--kbs",
            "http://10.0.2.2:8080",
            "--tee",
            "sample",
        ]))
        .unwrap();
        assert_eq!(p.aa_socket.as_deref(), Some(AA_SOCKET));
        assert_eq!(p.cdh_socket.as_deref(), Some("/tmp/c.sock"));
        assert_eq!(
            p.rest,
            Some(("127.0.0.1:9006".parse().unwrap(), Features::All))
        );
        assert_eq!(
            p.settings.options.flags.kbs_url.as_deref(),
            Some("http://10.0.2.2:8080")
        );
        let p = parse_serve(&v(&["--no-rest"])).unwrap();
        assert!(p.rest.is_none());
        assert_eq!(
            parse_serve(&v(&["--features", "none"])).unwrap_err(),
            "Unknown features. Supported features are: resource, attestation, all."
        );
        assert!(parse_serve(&v(&["--bogus"])).is_err());
    }

    #[test]
    fn adopt_listener_message_round_trips() {
        let m = AdoptListener {
            role: "rest".into(),
            features: "all".into(),
            config: String::new(),
        };
        assert_eq!(AdoptListener::decode(&m.encode_to_vec()[..]).unwrap(), m);
    }
}
