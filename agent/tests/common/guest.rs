//! What the guest API tests share (guest_api.rs, guest_hub.rs, guest_limits.rs,
//! guest_tdx.rs): upstream's messages declared with prost and their field numbers, a ttrpc
//! call with the real `ttrpc` crate (0.9.0, kata's), raw ttrpc frames for what that client
//! cannot send, and `sealgate serve` started on per-test paths.

use super::{World, sealgate_bin};
use prost::Message;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upstream messages (guest-components protos), declared with their field numbers.
pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct UnsealSecretInput {
        #[prost(bytes = "vec", tag = "1")]
        pub secret: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct UnsealSecretOutput {
        #[prost(bytes = "vec", tag = "1")]
        pub plaintext: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetResourceRequest {
        #[prost(string, tag = "1")]
        pub resource_path: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetResourceResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub resource: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecureMountRequest {
        #[prost(string, tag = "1")]
        pub volume_type: String,
        #[prost(map = "string, string", tag = "2")]
        pub options: std::collections::HashMap<String, String>,
        #[prost(string, repeated, tag = "3")]
        pub flags: Vec<String>,
        #[prost(string, tag = "4")]
        pub mount_point: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ImagePullRequest {
        #[prost(string, tag = "1")]
        pub image_url: String,
        #[prost(string, tag = "2")]
        pub bundle_path: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetEvidenceRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub runtime_data: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetEvidenceResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub evidence: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetTokenRequest {
        #[prost(string, tag = "1")]
        pub token_type: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetTokenResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub token: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetTeeTypeResponse {
        #[prost(string, tag = "1")]
        pub tee: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BindInitDataRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub digest: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExtendRuntimeMeasurementRequest {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(string, tag = "2")]
        pub operation: String,
        #[prost(string, tag = "3")]
        pub content: String,
        #[prost(uint64, optional, tag = "4")]
        pub register_index: Option<u64>,
    }
    /// `RuntimeMeasurementResult`: OK 0, NOT_SUPPORTED 1, NOT_ENABLED 2.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExtendRuntimeMeasurementResponse {
        #[prost(int32, tag = "1")]
        pub result: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}
}

/// CDH's event after a `PullImage` (guest-components' `hub.rs`), as the AAEL records it
/// for the default register (PCR 17: MR index 4, RTMR3): (domain, operation, content).
pub const PULL_IMAGE_EVENT: (&str, &str, &str) = (
    "github.com/confidential-containers",
    "PullImage",
    "{\"image\":\"busybox\"}",
);

/// [`PULL_IMAGE_EVENT`] as an AAEL entry (its record and digest).
pub fn pull_image_event() -> sealgate_core::eventlog::AaelEvent {
    let (domain, operation, content) = PULL_IMAGE_EVENT;
    sealgate_core::eventlog::AaelEvent::new(
        domain,
        operation,
        content,
        sealgate_core::eventlog::pcr_to_mr(17),
    )
    .unwrap()
}

/// The AA service.
pub const AA: &str = "attestation_agent.AttestationAgentService";
/// kata's `agent.cdh_api_timeout` default (50 s), as the ttrpc context timeout.
pub const CDH_TIMEOUT_NS: i64 = 50_000_000_000;

/// One ttrpc call with the real client (kata's timeout); the reply payload or (code,
/// message). A transport error fails the test.
pub fn call(
    client: &ttrpc::Client,
    service: &str,
    method: &str,
    msg: &impl Message,
) -> Result<Vec<u8>, (ttrpc::Code, String)> {
    let mut req = ttrpc::Request::new();
    req.service = service.into();
    req.method = method.into();
    req.payload = msg.encode_to_vec();
    req.timeout_nano = CDH_TIMEOUT_NS;
    match client.request(req) {
        Ok(r) => Ok(r.payload),
        Err(ttrpc::Error::RpcStatus(s)) => Err((s.code(), s.message.clone())),
        Err(e) => panic!("ttrpc transport error on /{service}/{method}: {e:?}"),
    }
}

/// CDH `GetResource`: the resource, or (code, message).
pub fn get_resource(client: &ttrpc::Client, uri: &str) -> Result<Vec<u8>, (ttrpc::Code, String)> {
    call(
        client,
        "api.GetResourceService",
        "GetResource",
        &pb::GetResourceRequest {
            resource_path: uri.into(),
        },
    )
    .map(|p| pb::GetResourceResponse::decode(&p[..]).unwrap().resource)
}

/// CDH `UnsealSecret`: the plaintext, or (code, message).
pub fn unseal_secret(
    client: &ttrpc::Client,
    sealed: &str,
) -> Result<Vec<u8>, (ttrpc::Code, String)> {
    call(
        client,
        "api.SealedSecretService",
        "UnsealSecret",
        &pb::UnsealSecretInput {
            secret: sealed.as_bytes().to_vec(),
        },
    )
    .map(|p| pb::UnsealSecretOutput::decode(&p[..]).unwrap().plaintext)
}

/// The error status of a call that must fail.
pub fn status_of(r: Result<Vec<u8>, (ttrpc::Code, String)>) -> (ttrpc::Code, String) {
    match r {
        Ok(_) => panic!("expected an error status"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------
// Raw frames

/// A ttrpc frame: `length | stream id | type | flags 0 | payload`.
pub fn frame(id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend((payload.len() as u32).to_be_bytes());
    f.extend(id.to_be_bytes());
    f.extend([kind, 0]);
    f.extend(payload);
    f
}

/// Reads one frame (60 s read timeout): (stream id, type, payload).
pub fn read_frame(sock: &mut UnixStream) -> (u32, u8, Vec<u8>) {
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut h = [0u8; 10];
    sock.read_exact(&mut h).unwrap();
    let len = u32::from_be_bytes(h[..4].try_into().unwrap()) as usize;
    let mut p = vec![0u8; len];
    sock.read_exact(&mut p).unwrap();
    (u32::from_be_bytes(h[4..8].try_into().unwrap()), h[8], p)
}

/// Writes a raw frame and reads one reply frame: (stream id, type, Response payload).
pub fn raw_exchange(sock: &mut UnixStream, frame: &[u8]) -> (u32, u8, Vec<u8>) {
    sock.write_all(frame).unwrap();
    read_frame(sock)
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<RawStatus>,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

/// The ttrpc `Response.status` of a raw reply: (code, message).
pub fn raw_status(payload: &[u8]) -> (i32, String) {
    let s = RawResponse::decode(payload)
        .unwrap()
        .status
        .unwrap_or_default();
    (s.code, s.message)
}

/// The ttrpc `Response.payload` of a raw reply.
pub fn raw_payload(payload: &[u8]) -> Vec<u8> {
    RawResponse::decode(payload).unwrap().payload
}

/// A ttrpc `Request` envelope with kata's timeout.
pub fn raw_request(service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
    raw_request_timeout(service, method, payload, CDH_TIMEOUT_NS)
}

/// A ttrpc `Request` envelope with `timeout_nano`.
pub fn raw_request_timeout(
    service: &str,
    method: &str,
    payload: &[u8],
    timeout_nano: i64,
) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Request {
        #[prost(string, tag = "1")]
        service: String,
        #[prost(string, tag = "2")]
        method: String,
        #[prost(bytes = "vec", tag = "3")]
        payload: Vec<u8>,
        #[prost(int64, tag = "4")]
        timeout_nano: i64,
    }
    Request {
        service: service.into(),
        method: method.into(),
        payload: payload.to_vec(),
        timeout_nano,
    }
    .encode_to_vec()
}

/// A raw `GetResource` request frame on stream `id` (kata's timeout).
pub fn get_resource_frame(id: u32, uri: &str) -> Vec<u8> {
    get_resource_frame_timeout(id, uri, CDH_TIMEOUT_NS)
}

/// A raw `GetResource` request frame on stream `id` with `timeout_nano`.
pub fn get_resource_frame_timeout(id: u32, uri: &str, timeout_nano: i64) -> Vec<u8> {
    frame(
        id,
        1,
        &raw_request_timeout(
            "api.GetResourceService",
            "GetResource",
            &pb::GetResourceRequest {
                resource_path: uri.into(),
            }
            .encode_to_vec(),
            timeout_nano,
        ),
    )
}

// ---------------------------------------------------------------------------------------
// The server

/// `sealgate serve` with every listener, on per-test paths; killed on drop.
pub struct Serve {
    pub child: Child,
    pub aa: PathBuf,
    pub cdh: PathBuf,
    pub rest: std::net::SocketAddr,
    pub log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` at debug level with its stdout and stderr in the file `log`.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    cmd.env("SEALGATE_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `program` (a symlink named as an upstream component) with `args` as kata does, its
/// sealgate settings from `config` (`SEALGATE_CONFIG`) and no kernel command line, logging
/// to `log`.
pub fn spawn_upstream(program: &Path, args: &[String], config: &Path, log: &Path) -> Child {
    spawn_logged(
        Command::new(program)
            .args(args)
            .env("SEALGATE_CONFIG", config)
            .env("SEALGATE_KERNEL_CMDLINE", "/dev/null"),
        log,
    )
}

/// One HTTP/1.1 GET (`Connection: close`, 60 s read timeout): the whole response.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A free loopback TCP port.
pub fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

impl Serve {
    /// `sealgate serve --features all --kbs URL --tee sample --deadline N` with its
    /// sockets in the world's scratch directory.
    pub fn start(w: &World, kbs_url: &str, deadline_secs: u32) -> Serve {
        Serve::start_with(
            w,
            &[
                "--kbs",
                kbs_url,
                "--tee",
                "sample",
                "--deadline",
                &deadline_secs.to_string(),
            ],
        )
    }

    /// `sealgate serve --features all` with `args` (the KBS, the TEE, ...) and its sockets
    /// in the world's scratch directory; waits (30 s at most) for both sockets.
    pub fn start_with(w: &World, args: &[&str]) -> Serve {
        Serve::start_under(w, &[], args)
    }

    /// [`Serve::start_with`] run by `wrapper` (a program and its arguments, e.g. `prlimit
    /// --nofile=N --`), which execs sealgate.
    pub fn start_under(w: &World, wrapper: &[&str], args: &[&str]) -> Serve {
        let run = w.tmp.mkdir("run");
        let aa = run.join("aa.sock");
        let cdh = run.join("cdh.sock");
        let rest = free_port();
        let log = w.tmp.join("serve.log");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(sealgate_bin());
                c
            }
            None => Command::new(sealgate_bin()),
        };
        cmd.args([
            "serve",
            "--attestation_sock",
            &format!("unix://{}", aa.display()),
            "--cdh_sock",
            &format!("unix://{}", cdh.display()),
            "--bind",
            &rest.to_string(),
            "--features",
            "all",
            "--config",
            "/dev/null",
            "--kernel-cmdline",
            "/dev/null",
        ])
        .args(args);
        let mut child = spawn_logged(&mut cmd, &log);
        let end = Instant::now() + Duration::from_secs(30);
        while !(aa.exists() && cdh.exists()) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "sealgate serve exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < end, "the sockets never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve {
            child,
            aa,
            cdh,
            rest,
            log,
        }
    }

    /// A new connection to the CDH socket (the real ttrpc client).
    pub fn cdh(&self) -> ttrpc::Client {
        ttrpc::Client::connect(&format!("unix://{}", self.cdh.display())).unwrap()
    }

    /// A new connection to the AA socket (the real ttrpc client).
    pub fn aa(&self) -> ttrpc::Client {
        ttrpc::Client::connect(&format!("unix://{}", self.aa.display())).unwrap()
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.1 GET on the REST port (`Connection: close`): (status, body).
    pub fn rest_get(&self, path: &str) -> (u16, String) {
        let text = http_get(self.rest, path);
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
        (status, body.unwrap_or_default())
    }

    /// Whether the server process still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}
