//! The api-server-rest compatible REST API, sans-IO: feature gating, the loopback check,
//! routing with upstream's statuses and bodies, and a per-connection state machine
//! ([`RestConn`]) over the request parser of [`crate::http_server`].
//!
//! The work behind a route (tokens, evidence, resources, runtime measurements) is done by a
//! [`RestBackend`]: the guest's hub implements it (`sealgate::serve::rest`), the tests and the
//! fuzz target use fakes. Nothing here opens a socket or blocks.
//!
//! Routing follows guest-components' `api-server-rest/src/router.rs` (8246e5e0), not its
//! openapi document where they differ:
//!
//! | request | answer |
//! |---|---|
//! | any, from a peer that is not loopback | `403` `Forbidden` (checked first) |
//! | `GET /info` (other methods: `405` `Method Not Allowed`) | `200` JSON `{"version","tee"?,"additional_tees"?,"feature"}` |
//! | `/aa/...` without the attestation feature | `404` `Attestation Feature Not Enabled` |
//! | `GET /aa/token?token_type=T` | `200` octet-stream token; no parameter `400` `BAD REQUEST`; error `500` |
//! | `GET /aa/evidence?runtime_data=V[&encoding=base64]` | `200` octet-stream evidence; `400`; `500` |
//! | `GET /aa/additional-evidence?...` | as evidence |
//! | `POST /aa/aael` JSON `{"domain","operation","content"}` | `200` JSON `{"success":...}`; bad JSON `500` |
//! | other `/aa/*`, or a wrong method on them | `404` `URL NOT FOUND` |
//! | `/cdh/...` without the resource feature | `404` `Resource Feature Not Enabled` |
//! | `/cdh/resource/<path>`, any method | `200` octet-stream resource `kbs:///<path>`; error `500` |
//! | anything else | `404` `URL NOT FOUND` |

use crate::b64;
use crate::http_server::{self, Parsed, Request, RequestParser, Response};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use zeroize::Zeroizing;

/// The default listen address of the REST API (upstream's `--bind` default).
pub const DEFAULT_BIND: &str = "127.0.0.1:8006";

/// The version `/info` reports (sealgate's, where upstream reports guest-components').
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which routes the API serves (`--features`, from kata's `agent.guest_components_rest_api`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Features {
    /// `/cdh/resource/...` only (upstream's default).
    #[default]
    Resource,
    /// `/aa/...` only.
    Attestation,
    /// Both.
    All,
    /// Neither: what is left when the image's ceiling (`rest_api_max`) grants nothing of
    /// the requested value. Never parsed from `--features`.
    Neither,
}

/// A `--features` value other than `resource`, `attestation` or `all` (upstream exits 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownFeatures;

impl fmt::Display for UnknownFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Upstream's message, word for word.
        f.write_str("Unknown features. Supported features are: resource, attestation, all.")
    }
}

impl Features {
    /// Parses upstream's values exactly (case-sensitive; `none` is not one of them).
    pub fn parse(value: &str) -> Result<Features, UnknownFeatures> {
        match value {
            "resource" => Ok(Features::Resource),
            "attestation" => Ok(Features::Attestation),
            "all" => Ok(Features::All),
            _ => Err(UnknownFeatures),
        }
    }

    /// The value as given on the command line (and reported by `/info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Features::Resource => "resource",
            Features::Attestation => "attestation",
            Features::All => "all",
            Features::Neither => "none",
        }
    }

    /// What of `self` the ceiling `max` grants: the routes both serve.
    pub fn within(self, max: Features) -> Features {
        match (
            self.resource() && max.resource(),
            self.attestation() && max.attestation(),
        ) {
            (true, true) => Features::All,
            (true, false) => Features::Resource,
            (false, true) => Features::Attestation,
            (false, false) => Features::Neither,
        }
    }

    /// Whether `/aa/...` is served.
    pub fn attestation(self) -> bool {
        matches!(self, Features::Attestation | Features::All)
    }

    /// Whether `/cdh/...` is served.
    pub fn resource(self) -> bool {
        matches!(self, Features::Resource | Features::All)
    }
}

/// A failed backend operation; `message` becomes the body of the `500` response, so it must
/// not carry a secret (the hub's messages do not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    /// What went wrong, for the caller.
    pub message: String,
}

/// The outcome of a runtime measurement (AA's `RuntimeMeasurementResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AaelResult {
    /// Extended and recorded.
    Ok,
    /// The platform has no runtime measurement register.
    NotSupported,
    /// The event log is not enabled.
    NotEnabled,
}

/// What the routes call. Implemented by the hub; every call is synchronous (the hub's KBS
/// calls are bounded by their deadline).
pub trait RestBackend {
    /// `GetResource("kbs:///repo/type/tag")`.
    fn get_resource(&mut self, uri: &str) -> Result<Zeroizing<Vec<u8>>, BackendError>;
    /// `GetToken(token_type)`: for `kbs`, `{"token","tee_keypair"}` (the private key!).
    fn get_token(&mut self, token_type: &str) -> Result<Zeroizing<Vec<u8>>, BackendError>;
    /// `GetEvidence(runtime_data)`.
    fn get_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, BackendError>;
    /// `GetAdditionalEvidence(runtime_data)`.
    fn get_additional_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, BackendError>;
    /// `ExtendRuntimeMeasurement(domain, operation, content)` without a register index, as
    /// api-server-rest calls it.
    fn extend_runtime_measurement(
        &mut self,
        domain: &str,
        operation: &str,
        content: &str,
    ) -> Result<AaelResult, BackendError>;
    /// `GetTeeType`.
    fn tee_type(&self) -> String;
    /// `GetAdditionalTees`.
    fn additional_tees(&self) -> Vec<String>;
}

/// Whether `peer` is loopback: `127.0.0.0/8`, `::1`, and (unlike upstream, whose check
/// never sees one on its IPv4 default bind) `::ffff:127.0.0.0/104`.
pub fn is_loopback(peer: IpAddr) -> bool {
    peer.to_canonical().is_loopback()
}

const OCTET_STREAM: &str = "application/octet-stream";
const JSON: &str = "application/json";

fn not_found() -> Response {
    Response::text(404, "URL NOT FOUND")
}

fn bad_request() -> Response {
    Response::text(400, "BAD REQUEST")
}

fn internal_error(e: BackendError) -> Response {
    Response::text(500, &e.message)
}

/// Splits `path` before its `n`-th `/` (upstream's `split_nth_slash`): `("/aa", "/token")`
/// for `("/aa/token", 2)`; `None` when there are fewer slashes.
fn split_nth_slash(path: &str, n: usize) -> Option<(&str, &str)> {
    let (idx, _) = path.match_indices('/').nth(n.checked_sub(1)?)?;
    Some(path.split_at(idx))
}

/// Decodes one `application/x-www-form-urlencoded` name or value as the `form_urlencoded`
/// crate does: `+` is a space, `%XY` a byte (a malformed escape stays literal), then UTF-8
/// with invalid sequences replaced.
fn form_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The value of query parameter `name` (the last one wins, as upstream collects the pairs
/// into a map).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let mut found = None;
    for pair in query?.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(k) == name {
            found = Some(form_decode(v));
        }
    }
    found
}

/// Upstream's `decode_runtime_data`: the raw UTF-8 bytes of the value, or URL-safe base64
/// without padding with `encoding=base64`; any other encoding is an error.
fn runtime_data(query: Option<&str>) -> Option<Vec<u8>> {
    let data = query_param(query, "runtime_data")?;
    match query_param(query, "encoding").as_deref() {
        None => Some(data.into_bytes()),
        Some("base64") => b64::url_decode(&data).ok(),
        Some(_) => None,
    }
}

#[derive(serde::Deserialize)]
struct AaelEvent {
    domain: String,
    operation: String,
    content: String,
}

#[derive(serde::Serialize)]
struct Info<'a> {
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tee: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    additional_tees: Vec<String>,
    feature: &'a str,
}

/// Answers one request from `peer` (routing table in the module documentation).
pub fn handle(
    req: &Request,
    peer: IpAddr,
    features: Features,
    backend: &mut dyn RestBackend,
) -> Response {
    if !is_loopback(peer) {
        return Response::text(403, "Forbidden");
    }
    let path = req.path();
    let query = req.query();
    let get = req.method == "GET";
    if path == "/info" {
        if !get {
            return Response::text(405, "Method Not Allowed");
        }
        let (tee, additional_tees) = if features.attestation() {
            (Some(backend.tee_type()), backend.additional_tees())
        } else {
            (None, Vec::new())
        };
        let info = Info {
            version: VERSION,
            tee,
            additional_tees,
            feature: features.as_str(),
        };
        return match serde_json::to_vec(&info) {
            Ok(json) => Response::with_type(200, JSON, json),
            Err(_) => Response::text(500, "cannot encode /info"),
        };
    }
    let Some((root, rest)) = split_nth_slash(path, 2) else {
        return not_found();
    };
    match root {
        "/aa" => {
            if !features.attestation() {
                return Response::text(404, "Attestation Feature Not Enabled");
            }
            match (rest, req.method.as_str()) {
                ("/token", "GET") => match query_param(query, "token_type") {
                    None => bad_request(),
                    Some(t) => match backend.get_token(&t) {
                        Ok(token) => Response {
                            status: 200,
                            content_type: Some(OCTET_STREAM),
                            body: token,
                        },
                        Err(e) => internal_error(e),
                    },
                },
                ("/evidence", "GET") => match runtime_data(query) {
                    None => bad_request(),
                    Some(data) => match backend.get_evidence(&data) {
                        Ok(ev) => Response::with_type(200, OCTET_STREAM, ev),
                        Err(e) => internal_error(e),
                    },
                },
                ("/additional-evidence", "GET") => match runtime_data(query) {
                    None => bad_request(),
                    Some(data) => match backend.get_additional_evidence(&data) {
                        Ok(ev) => Response::with_type(200, OCTET_STREAM, ev),
                        Err(e) => internal_error(e),
                    },
                },
                ("/aael", "POST") => {
                    let event: AaelEvent = match serde_json::from_slice(&req.body) {
                        Ok(event) => event,
                        Err(e) => {
                            // Upstream's text (typo included); serde's message names the
                            // position and what was expected (the caller's own input).
                            return Response::text(
                                500,
                                &alloc::format!("Illegal AAEL eventry format: {e}"),
                            );
                        }
                    };
                    match backend.extend_runtime_measurement(
                        &event.domain,
                        &event.operation,
                        &event.content,
                    ) {
                        Ok(result) => Response::with_type(200, JSON, aael_body(result).to_vec()),
                        Err(e) => internal_error(e),
                    }
                }
                _ => not_found(),
            }
        }
        "/cdh" => {
            if !features.resource() {
                return Response::text(404, "Resource Feature Not Enabled");
            }
            match split_nth_slash(rest, 2) {
                Some(("/resource", resource_path)) => {
                    let uri = alloc::format!("kbs://{resource_path}");
                    match backend.get_resource(&uri) {
                        Ok(resource) => Response {
                            status: 200,
                            content_type: Some(OCTET_STREAM),
                            body: resource,
                        },
                        Err(e) => internal_error(e),
                    }
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// Upstream's `/aa/aael` bodies, byte for byte (the space after `"message":` included).
fn aael_body(result: AaelResult) -> &'static [u8] {
    match result {
        AaelResult::Ok => br#"{"success":"true"}"#,
        AaelResult::NotSupported => {
            br#"{"success":"false","message": "The platform does not support runtime measurement"}"#
        }
        AaelResult::NotEnabled => {
            br#"{"success":"false","message": "Attestation Agent does not enable eventlog recording"}"#
        }
    }
}

/// What a [`RestConn`] wants next from the event loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes (in order, after anything written before), then call
    /// [`RestConn::step`] again. They may hold secrets: zeroed when dropped.
    Write(Zeroizing<Vec<u8>>),
    /// Nothing to do until more bytes arrive: read up to [`RestConn::read_capacity`].
    NeedMore,
    /// Finish writing what was queued, then close the connection (`Connection: close`, a
    /// refused request, or the peer's end of stream).
    Close,
}

/// One REST connection: request parsing, keep-alive and pipelining, bounded.
///
/// Drive it from an event loop: while [`read_capacity`](Self::read_capacity) is non-zero and
/// the socket is readable, read at most that many bytes and [`feed`](Self::feed) them (or
/// [`feed_eof`](Self::feed_eof) on end of stream); then call [`step`](Self::step) until it
/// answers [`Step::NeedMore`] or [`Step::Close`], writing every [`Step::Write`]. A loop that
/// bounds its write queue can stop calling `step` while the queue is full: the requests
/// stay buffered (pipelining costs at most one head and one body of input per connection).
#[derive(Debug)]
pub struct RestConn {
    parser: RequestParser,
    peer: IpAddr,
    features: Features,
    eof: bool,
    closing: bool,
}

impl RestConn {
    /// A new connection from `peer`, serving `features`.
    pub fn new(peer: IpAddr, features: Features) -> RestConn {
        RestConn {
            parser: RequestParser::new(),
            peer,
            features,
            eof: false,
            closing: false,
        }
    }

    /// The peer's address.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// How many bytes to read at most now (0: call [`step`](Self::step) first; after
    /// end of stream or a refusal, always 0).
    pub fn read_capacity(&self) -> usize {
        if self.eof || self.closing {
            0
        } else {
            self.parser.capacity()
        }
    }

    /// Bytes read from the socket (beyond [`read_capacity`](Self::read_capacity) they are
    /// dropped).
    pub fn feed(&mut self, data: &[u8]) {
        if !self.eof && !self.closing {
            self.parser.feed(data);
        }
    }

    /// The peer closed its side (read returned 0). Complete requests still buffered are
    /// answered; a partial one is dropped.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Advances the connection by at most one request.
    pub fn step(&mut self, backend: &mut dyn RestBackend) -> Step {
        if self.closing {
            return Step::Close;
        }
        match self.parser.next_request() {
            Ok(Parsed::NeedMore) => {
                if self.eof {
                    self.closing = true;
                    Step::Close
                } else {
                    Step::NeedMore
                }
            }
            Ok(Parsed::Continue) => Step::Write(Zeroizing::new(http_server::CONTINUE.to_vec())),
            Ok(Parsed::Request(req)) => {
                let response = handle(&req, self.peer, self.features, backend);
                if !req.keep_alive {
                    self.closing = true;
                }
                Step::Write(response.encode(
                    req.minor_version,
                    req.keep_alive,
                    req.method == "HEAD",
                ))
            }
            Err(e) => {
                self.closing = true;
                let text = alloc::format!("{e}");
                Step::Write(Response::text(e.status(), &text).encode(1, false, false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::net::{Ipv4Addr, Ipv6Addr};

    /// A test-only backend that records its calls.
    #[derive(Default)]
    struct Fake {
        calls: Vec<String>,
        fail: bool,
        aael: Option<AaelResult>,
    }

    impl Fake {
        fn result<T>(&mut self, call: String, ok: T) -> Result<T, BackendError> {
            self.calls.push(call);
            if self.fail {
                Err(BackendError {
                    message: "[ERROR:attestation-agent] failed".to_string(),
                })
            } else {
                Ok(ok)
            }
        }
    }

    impl RestBackend for Fake {
        fn get_resource(&mut self, uri: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
            self.result(
                alloc::format!("resource {uri}"),
                Zeroizing::new(b"res".to_vec()),
            )
        }
        fn get_token(&mut self, t: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
            self.result(alloc::format!("token {t}"), Zeroizing::new(b"tok".to_vec()))
        }
        fn get_evidence(&mut self, d: &[u8]) -> Result<Vec<u8>, BackendError> {
            self.result(alloc::format!("evidence {d:?}"), b"ev".to_vec())
        }
        fn get_additional_evidence(&mut self, d: &[u8]) -> Result<Vec<u8>, BackendError> {
            self.result(alloc::format!("additional {d:?}"), Vec::new())
        }
        fn extend_runtime_measurement(
            &mut self,
            d: &str,
            o: &str,
            c: &str,
        ) -> Result<AaelResult, BackendError> {
            let r = self.aael.unwrap_or(AaelResult::Ok);
            self.result(alloc::format!("aael {d}|{o}|{c}"), r)
        }
        fn tee_type(&self) -> String {
            "sample".to_string()
        }
        fn additional_tees(&self) -> Vec<String> {
            Vec::new()
        }
    }

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn req(method: &str, target: &str, body: &[u8]) -> Request {
        Request {
            method: method.to_string(),
            target: target.to_string(),
            minor_version: 1,
            keep_alive: true,
            body: body.to_vec(),
        }
    }

    fn call(f: Features, method: &str, target: &str, body: &[u8]) -> (Response, Vec<String>) {
        let mut fake = Fake::default();
        let r = handle(&req(method, target, body), LO, f, &mut fake);
        (r, fake.calls)
    }

    fn check(r: &Response, status: u16, body: &str) {
        assert_eq!(r.status, status);
        assert_eq!(core::str::from_utf8(&r.body).unwrap(), body);
    }

    #[test]
    fn features_parse() {
        assert_eq!(Features::parse("resource"), Ok(Features::Resource));
        assert_eq!(Features::parse("attestation"), Ok(Features::Attestation));
        assert_eq!(Features::parse("all"), Ok(Features::All));
        for bad in ["none", "", "All", "resource,attestation"] {
            assert_eq!(Features::parse(bad), Err(UnknownFeatures));
        }
        assert_eq!(Features::default(), Features::Resource);
        assert_eq!(Features::parse("none"), Err(UnknownFeatures));
    }

    #[test]
    fn the_ceiling_grants_the_intersection() {
        use Features::*;
        for (asked, max, got) in [
            (All, All, All),
            (All, Resource, Resource),
            (All, Attestation, Attestation),
            (Attestation, Resource, Neither),
            (Resource, Attestation, Neither),
            (Resource, Resource, Resource),
            (Attestation, All, Attestation),
            (Resource, All, Resource),
        ] {
            assert_eq!(asked.within(max), got, "{asked:?} within {max:?}");
        }
        // With nothing granted, both route families answer "not enabled".
        for (path, body) in [
            ("/cdh/resource/a/b/c", "Resource Feature Not Enabled"),
            (
                "/aa/token?token_type=kbs",
                "Attestation Feature Not Enabled",
            ),
        ] {
            let (r, calls) = call(Neither, "GET", path, b"");
            check(&r, 404, body);
            assert!(calls.is_empty(), "{path}");
        }
    }

    #[test]
    fn non_loopback_is_forbidden_first() {
        let mut fake = Fake::default();
        for peer in [
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        ] {
            let r = handle(&req("GET", "/info", b""), peer, Features::All, &mut fake);
            check(&r, 403, "Forbidden");
            assert_eq!(r.content_type, None);
        }
        assert!(fake.calls.is_empty());
        for peer in [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        ] {
            assert!(is_loopback(peer));
        }
    }

    #[test]
    fn info() {
        let (r, _) = call(Features::Resource, "GET", "/info", b"");
        assert_eq!(r.content_type, Some("application/json"));
        assert_eq!(
            core::str::from_utf8(&r.body).unwrap(),
            alloc::format!(r#"{{"version":"{VERSION}","feature":"resource"}}"#)
        );
        let (r, _) = call(Features::All, "GET", "/info?x=1", b"");
        assert_eq!(
            core::str::from_utf8(&r.body).unwrap(),
            alloc::format!(r#"{{"version":"{VERSION}","tee":"sample","feature":"all"}}"#)
        );
        let (r, _) = call(Features::All, "POST", "/info", b"");
        check(&r, 405, "Method Not Allowed");
        let (r, _) = call(Features::All, "GET", "/info/", b"");
        check(&r, 404, "URL NOT FOUND");
    }

    #[test]
    fn gating() {
        for (f, aa, cdh) in [
            (Features::Resource, false, true),
            (Features::Attestation, true, false),
            (Features::All, true, true),
        ] {
            let (r, _) = call(f, "GET", "/aa/token?token_type=kbs", b"");
            if aa {
                check(&r, 200, "tok");
            } else {
                check(&r, 404, "Attestation Feature Not Enabled");
            }
            let (r, _) = call(f, "POST", "/aa/whatever", b"");
            if aa {
                check(&r, 404, "URL NOT FOUND");
            } else {
                check(&r, 404, "Attestation Feature Not Enabled");
            }
            let (r, _) = call(f, "GET", "/cdh/resource/default/key/1", b"");
            if cdh {
                check(&r, 200, "res");
            } else {
                check(&r, 404, "Resource Feature Not Enabled");
            }
            let (r, _) = call(f, "GET", "/cdh/resource", b"");
            if cdh {
                check(&r, 404, "URL NOT FOUND");
            } else {
                check(&r, 404, "Resource Feature Not Enabled");
            }
            // Without a second slash the root is not even looked at.
            for p in ["/aa", "/cdh", "/", "/x/y", "*"] {
                let (r, _) = call(f, "GET", p, b"");
                check(&r, 404, "URL NOT FOUND");
            }
        }
    }

    #[test]
    fn resource_any_method_and_path() {
        for m in ["GET", "POST", "DELETE", "HEAD"] {
            let (r, calls) = call(Features::Resource, m, "/cdh/resource/repo/type/tag?q", b"");
            check(&r, 200, "res");
            assert_eq!(r.content_type, Some("application/octet-stream"));
            assert_eq!(calls, ["resource kbs:///repo/type/tag"]);
        }
        let (_, calls) = call(Features::Resource, "GET", "/cdh/resource/", b"");
        assert_eq!(calls, ["resource kbs:///"]);
        let (r, _) = call(Features::Resource, "GET", "/cdh/other/a/b", b"");
        check(&r, 404, "URL NOT FOUND");
        let mut fake = Fake {
            fail: true,
            ..Fake::default()
        };
        let r = handle(
            &req("GET", "/cdh/resource/a/b/c", b""),
            LO,
            Features::All,
            &mut fake,
        );
        check(&r, 500, "[ERROR:attestation-agent] failed");
        assert_eq!(r.content_type, None);
    }

    #[test]
    fn token_and_evidence_parameters() {
        let f = Features::Attestation;
        let (r, _) = call(f, "GET", "/aa/token", b"");
        check(&r, 400, "BAD REQUEST");
        let (r, _) = call(f, "POST", "/aa/token?token_type=kbs", b"");
        check(&r, 404, "URL NOT FOUND");
        let (_, calls) = call(f, "GET", "/aa/token?token_type=a&token_type=k%62s", b"");
        assert_eq!(calls, ["token kbs"]);
        let (r, calls) = call(f, "GET", "/aa/evidence?runtime_data=a+b%21", b"");
        check(&r, 200, "ev");
        assert_eq!(calls, [alloc::format!("evidence {:?}", b"a b!")]);
        let (_, calls) = call(
            f,
            "GET",
            "/aa/evidence?runtime_data=cmVwb3J0&encoding=base64",
            b"",
        );
        assert_eq!(calls, [alloc::format!("evidence {:?}", b"report")]);
        for bad in [
            "/aa/evidence",
            "/aa/evidence?runtime_data=cmVwb3J0&encoding=hex",
            "/aa/evidence?runtime_data=cmVwb3J0%3D&encoding=base64",
            "/aa/evidence?runtime_data=%21%21&encoding=base64",
            "/aa/additional-evidence?encoding=base64",
        ] {
            let (r, calls) = call(f, "GET", bad, b"");
            check(&r, 400, "BAD REQUEST");
            assert!(calls.is_empty());
        }
        let (r, calls) = call(f, "GET", "/aa/additional-evidence?runtime_data=", b"");
        check(&r, 200, "");
        assert_eq!(calls, ["additional []"]);
        // A malformed escape stays literal; invalid UTF-8 becomes U+FFFD.
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn aael() {
        let f = Features::All;
        let body = br#"{"domain":"d","operation":"o","content":"c"}"#;
        let (r, calls) = call(f, "POST", "/aa/aael", body);
        check(&r, 200, r#"{"success":"true"}"#);
        assert_eq!(r.content_type, Some("application/json"));
        assert_eq!(calls, ["aael d|o|c"]);
        let mut fake = Fake {
            aael: Some(AaelResult::NotEnabled),
            ..Fake::default()
        };
        let r = handle(&req("POST", "/aa/aael", body), LO, f, &mut fake);
        check(
            &r,
            200,
            r#"{"success":"false","message": "Attestation Agent does not enable eventlog recording"}"#,
        );
        let (r, calls) = call(f, "POST", "/aa/aael", b"{\"domain\":1}");
        assert_eq!(r.status, 500);
        assert!(
            core::str::from_utf8(&r.body)
                .unwrap()
                .starts_with("Illegal AAEL eventry format: ")
        );
        assert!(calls.is_empty());
        let (r, _) = call(f, "GET", "/aa/aael", b"");
        check(&r, 404, "URL NOT FOUND");
    }

    fn run(conn: &mut RestConn, fake: &mut Fake) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        loop {
            match conn.step(fake) {
                Step::Write(b) => out.extend_from_slice(&b),
                Step::NeedMore => return (out, false),
                Step::Close => return (out, true),
            }
        }
    }

    #[test]
    fn connection_keep_alive_pipelining_and_close() {
        let mut fake = Fake::default();
        let mut conn = RestConn::new(LO, Features::Resource);
        conn.feed(b"GET /info HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /cdh/res");
        let (out, closed) = run(&mut conn, &mut fake);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("HTTP/1.1 ").count(), 2);
        assert!(text.contains("HTTP/1.1 404 Not Found\r\ncontent-length: 13\r\n\r\nURL NOT FOUND"));
        assert!(!closed);
        conn.feed(b"ource/a/b/c HTTP/1.1\r\nConnection: close\r\n\r\n");
        let (out, closed) = run(&mut conn, &mut fake);
        assert!(closed);
        assert!(out.ends_with(b"connection: close\r\ncontent-length: 3\r\n\r\nres"));
        assert_eq!(conn.read_capacity(), 0);
    }

    #[test]
    fn connection_refusal_and_eof() {
        let mut fake = Fake::default();
        let mut conn = RestConn::new(LO, Features::Resource);
        conn.feed(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        let (out, closed) = run(&mut conn, &mut fake);
        assert!(closed);
        assert!(out.starts_with(b"HTTP/1.1 411 Length Required\r\nconnection: close\r\n"));
        let mut conn = RestConn::new(LO, Features::Resource);
        conn.feed(b"GET /info HTTP/1.1\r\n\r\nGET /in");
        conn.feed_eof();
        let (out, closed) = run(&mut conn, &mut fake);
        assert!(closed);
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(out.windows(5).filter(|w| w == b"HTTP/").count(), 1);
    }

    #[test]
    fn connection_continue_and_head() {
        let mut fake = Fake::default();
        let mut conn = RestConn::new(LO, Features::All);
        conn.feed(b"POST /aa/aael HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 44\r\n\r\n");
        let (out, _) = run(&mut conn, &mut fake);
        assert_eq!(out, http_server::CONTINUE);
        conn.feed(br#"{"domain":"d","operation":"o","content":"c"}"#);
        let (out, _) = run(&mut conn, &mut fake);
        assert!(out.ends_with(br#"{"success":"true"}"#));
        conn.feed(b"HEAD /cdh/resource/a/b/c HTTP/1.1\r\n\r\n");
        let (out, _) = run(&mut conn, &mut fake);
        assert!(out.ends_with(b"content-length: 3\r\n\r\n"));
    }
}
