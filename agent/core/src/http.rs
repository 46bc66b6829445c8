//! HTTP/1.1 client protocol, sans-IO: request encoding and an incremental response parser.
//!
//! [`Request::encode`] turns a request into the exact bytes to write. A [`ResponseParser`]
//! is fed the bytes read from the connection as they arrive ([`ResponseParser::feed`]) and
//! told when the peer closed it ([`ResponseParser::finish`]); it answers
//! [`Progress::NeedMore`] until a whole [`Response`] is there. The transport owns the socket,
//! the timeouts and the keep-alive decision, which it takes from [`Response::keep_alive`].
//!
//! Status line and header fields are parsed by `httparse`; this module adds message framing
//! (RFC 9112 §6): `Content-Length`, `Transfer-Encoding: chunked` (extensions and trailers
//! skipped) and close-delimited bodies, interim 1xx responses, and 204/304 without a body.
//! Anything ambiguous is rejected rather than guessed (Content-Length together with
//! Transfer-Encoding, differing Content-Length values, transfer codings other than a single
//! `chunked`), and every buffer is bounded by [`Limits`].
//!
//! Bodies may carry secrets (tokens, sealed resources): no error message and no `Debug`
//! output contains body bytes or header values, and the parser and [`Response`] zero their
//! buffers when dropped.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("sealgate/", env!("CARGO_PKG_VERSION"));

/// Default bound on a response's header section (status line included): 16 KiB.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default bound on the number of header fields in a response (and in its trailers).
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default bound on a response body: 1 MiB. KBS answers are a few KiB (the EAR token is
/// about 2 KiB, a sealed resource is its plaintext plus about 1 KiB of JWE framing).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Bound on one chunk-size line of a chunked body, chunk extensions included.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Bound on the number of interim (1xx) responses before the final one.
pub const MAX_INTERIM_RESPONSES: usize = 16;

/// Size bounds applied while parsing a response. Exceeding one is an error, never a
/// truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header section (status line, header fields, blank line), in bytes. The
    /// trailer section of a chunked body has the same bound.
    pub max_head_bytes: usize,
    /// Most header fields in the header section (and in the trailer section).
    pub max_headers: usize,
    /// Largest body, in bytes, after removing the chunked framing.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Everything that can go wrong while encoding a request or parsing a response.
///
/// Messages name header fields, sizes and limits, never header values or body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// A request field holds bytes that cannot be sent in an HTTP/1.1 header (the field
    /// is named; its value is not repeated).
    InvalidRequest {
        /// Which part of the request: `"target"`, `"host"`, `"cookie name"`, ...
        field: &'static str,
    },
    /// The peer closed the connection before sending a single byte of the response.
    ClosedBeforeResponse,
    /// The peer closed the connection inside the header section.
    TruncatedHead {
        /// Response bytes received before the close.
        received: usize,
    },
    /// The peer closed the connection before the `Content-Length` body was complete.
    TruncatedBody {
        /// Body bytes received.
        received: usize,
        /// Body bytes announced by `Content-Length`.
        expected: u64,
    },
    /// The peer closed the connection inside a chunked body (before the last chunk and the
    /// trailer section).
    TruncatedChunked {
        /// Body bytes received.
        received: usize,
    },
    /// The header section is larger than [`Limits::max_head_bytes`].
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The trailer section of a chunked body is larger than [`Limits::max_head_bytes`].
    TrailersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header (or trailer) fields than [`Limits::max_headers`].
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The status line or a header field is malformed.
    MalformedHead {
        /// What `httparse` objected to.
        reason: &'static str,
    },
    /// A trailer field of a chunked body is malformed.
    MalformedTrailers {
        /// What `httparse` objected to.
        reason: &'static str,
    },
    /// The status code is not in 100..=599.
    InvalidStatus {
        /// The code received.
        code: u16,
    },
    /// A 101 Switching Protocols response, although no upgrade was requested.
    UnexpectedUpgrade,
    /// More than [`MAX_INTERIM_RESPONSES`] 1xx responses in a row.
    TooManyInterimResponses {
        /// The limit.
        limit: usize,
    },
    /// A framing header (`Content-Length`) has a value that is not a decimal length.
    InvalidContentLength,
    /// Several `Content-Length` values that differ.
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`: a request-smuggling pattern, refused.
    ContentLengthWithTransferEncoding,
    /// A `Transfer-Encoding` other than exactly one `chunked`.
    UnsupportedTransferEncoding,
    /// The body is (or announces itself as) larger than [`Limits::max_body_bytes`].
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A chunk-size line is malformed or its size has more than 16 hex digits.
    InvalidChunkSize,
    /// A chunk-size line (with its extensions) is longer than [`MAX_CHUNK_LINE_BYTES`].
    ChunkLineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// Chunk data is not followed by CRLF.
    MissingChunkDelimiter,
    /// A `Set-Cookie` header for the requested cookie has a value outside the RFC 6265
    /// cookie-octet set.
    InvalidCookie {
        /// The cookie name that was asked for.
        name: String,
    },
    /// [`ResponseParser::feed`] or [`ResponseParser::finish`] was called after the parser
    /// returned a complete response (a bug in the caller).
    AlreadyComplete,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidRequest { field } => {
                write!(f, "request {field} contains bytes that cannot be sent in HTTP/1.1")
            }
            HttpError::ClosedBeforeResponse => {
                f.write_str("the server closed the connection without sending a response")
            }
            HttpError::TruncatedHead { received } => write!(
                f,
                "the server closed the connection in the middle of the response header ({received} bytes received)"
            ),
            HttpError::TruncatedBody { received, expected } => write!(
                f,
                "the server closed the connection after {received} of {expected} response body bytes"
            ),
            HttpError::TruncatedChunked { received } => write!(
                f,
                "the server closed the connection inside a chunked response body ({received} body bytes received, last chunk missing)"
            ),
            HttpError::HeadTooLarge { limit } => {
                write!(f, "response header section exceeds the {limit}-byte limit")
            }
            HttpError::TrailersTooLarge { limit } => {
                write!(f, "response trailer section exceeds the {limit}-byte limit")
            }
            HttpError::TooManyHeaders { limit } => {
                write!(f, "response has more than {limit} header fields")
            }
            HttpError::MalformedHead { reason } => write!(f, "malformed response header: {reason}"),
            HttpError::MalformedTrailers { reason } => {
                write!(f, "malformed trailer in chunked response body: {reason}")
            }
            HttpError::InvalidStatus { code } => {
                write!(f, "response status code {code} is outside 100..=599")
            }
            HttpError::UnexpectedUpgrade => f.write_str(
                "the server switched protocols (101) although no upgrade was requested",
            ),
            HttpError::TooManyInterimResponses { limit } => {
                write!(f, "more than {limit} interim (1xx) responses before the final response")
            }
            HttpError::InvalidContentLength => {
                f.write_str("response Content-Length is not a decimal number")
            }
            HttpError::ConflictingContentLength => {
                f.write_str("response has conflicting Content-Length values")
            }
            HttpError::ContentLengthWithTransferEncoding => f.write_str(
                "response has both Content-Length and Transfer-Encoding (ambiguous framing, refused)",
            ),
            HttpError::UnsupportedTransferEncoding => f.write_str(
                "response Transfer-Encoding is not supported (only a single `chunked` is accepted)",
            ),
            HttpError::BodyTooLarge { limit } => {
                write!(f, "response body exceeds the {limit}-byte limit")
            }
            HttpError::InvalidChunkSize => f.write_str(
                "malformed chunk-size line in chunked response body (not hex, or more than 16 digits)",
            ),
            HttpError::ChunkLineTooLong { limit } => write!(
                f,
                "chunk-size line in chunked response body exceeds the {limit}-byte limit"
            ),
            HttpError::MissingChunkDelimiter => {
                f.write_str("chunk data in chunked response body is not followed by CRLF")
            }
            HttpError::InvalidCookie { name } => write!(
                f,
                "Set-Cookie for cookie `{name}` has a value with characters not allowed in a cookie"
            ),
            HttpError::AlreadyComplete => {
                f.write_str("response parser used after it returned the complete response")
            }
        }
    }
}

impl core::error::Error for HttpError {}

// ------------------------------------------------------------------------------------------
// Requests
// ------------------------------------------------------------------------------------------

/// The request methods the KBS protocol needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`: no body is sent.
    Get,
    /// `POST` with a JSON body.
    Post,
}

impl Method {
    /// The method token as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// An HTTP request to encode with [`Request::encode`].
///
/// Every request carries `Host`, `User-Agent: sealgate/<version>` and
/// `Accept: application/json`; a POST adds `Content-Type: application/json` and
/// `Content-Length`. `Debug` shows neither credentials nor the body.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    target: String,
    body: Vec<u8>,
    cookies: Vec<(String, String)>,
    bearer: Option<String>,
}

impl Request {
    /// A GET of `target` (origin form: `/path[?query]`).
    pub fn get(target: impl Into<String>) -> Request {
        Request {
            method: Method::Get,
            target: target.into(),
            body: Vec::new(),
            cookies: Vec::new(),
            bearer: None,
        }
    }

    /// A POST of the JSON document `body` to `target`.
    pub fn post_json(target: impl Into<String>, body: impl Into<Vec<u8>>) -> Request {
        Request {
            method: Method::Post,
            target: target.into(),
            body: body.into(),
            cookies: Vec::new(),
            bearer: None,
        }
    }

    /// Adds the cookie `name=value` to the `Cookie` header.
    pub fn with_cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn with_bearer(mut self, token: impl Into<String>) -> Request {
        self.bearer = Some(token.into());
        self
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The request target as given (without any base path).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The body (empty for GET).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Encodes the request for the server `host` (the `Host` header: `name[:port]` or
    /// `[v6]:port`). `base_path` (`""` or `/prefix`, no trailing slash) is put in front of
    /// the target, so a KBS behind a path prefix gets `<base>/kbs/v0/...`.
    ///
    /// Fails when a field holds bytes that could break the message (control characters,
    /// spaces in the target, a cookie value outside RFC 6265, a token outside token68).
    pub fn encode(&self, host: &str, base_path: &str) -> Result<Vec<u8>, HttpError> {
        if !self.target.starts_with('/') || !is_target(&self.target) {
            return Err(HttpError::InvalidRequest { field: "target" });
        }
        if !(base_path.is_empty() || base_path.starts_with('/'))
            || !is_target(base_path)
            || base_path.contains('?')
        {
            return Err(HttpError::InvalidRequest { field: "base path" });
        }
        if host.is_empty() || !host.bytes().all(is_host_byte) {
            return Err(HttpError::InvalidRequest { field: "host" });
        }
        for (name, value) in &self.cookies {
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(HttpError::InvalidRequest {
                    field: "cookie name",
                });
            }
            if !value.bytes().all(is_cookie_octet) {
                return Err(HttpError::InvalidRequest {
                    field: "cookie value",
                });
            }
        }
        if let Some(token) = &self.bearer
            && !is_token68(token)
        {
            return Err(HttpError::InvalidRequest {
                field: "bearer token",
            });
        }

        let mut out = Vec::with_capacity(256 + self.body.len());
        let mut put = |parts: &[&[u8]]| {
            for p in parts {
                out.extend_from_slice(p);
            }
        };
        put(&[
            self.method.as_str().as_bytes(),
            b" ",
            base_path.as_bytes(),
            self.target.as_bytes(),
            b" HTTP/1.1\r\nHost: ",
            host.as_bytes(),
            b"\r\nUser-Agent: ",
            USER_AGENT.as_bytes(),
            b"\r\nAccept: application/json\r\n",
        ]);
        if self.method == Method::Post {
            let mut digits = [0u8; 20];
            put(&[
                b"Content-Type: application/json\r\nContent-Length: ",
                decimal(self.body.len() as u64, &mut digits),
                b"\r\n",
            ]);
        }
        if !self.cookies.is_empty() {
            put(&[b"Cookie: "]);
            for (i, (name, value)) in self.cookies.iter().enumerate() {
                let sep: &[u8] = if i == 0 { b"" } else { b"; " };
                put(&[sep, name.as_bytes(), b"=", value.as_bytes()]);
            }
            put(&[b"\r\n"]);
        }
        if let Some(token) = &self.bearer {
            put(&[b"Authorization: Bearer ", token.as_bytes(), b"\r\n"]);
        }
        put(&[b"\r\n"]);
        if self.method == Method::Post {
            put(&[&self.body]);
        }
        Ok(out)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cookie_names: Vec<&str> = self.cookies.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("body_len", &self.body.len())
            .field("cookies", &cookie_names)
            .field("bearer", &self.bearer.is_some())
            .finish()
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.body.zeroize();
        for (_, value) in &mut self.cookies {
            value.zeroize();
        }
        self.bearer.zeroize();
    }
}

fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Visible ASCII except `#` (a fragment is never sent).
fn is_target(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#')
}

fn is_host_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'/' | b'?' | b'#' | b'@' | b',' | b'\\')
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 6265 `cookie-octet`: visible ASCII except `"`, `,`, `;` and `\`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// RFC 9110 `token68`.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

// ------------------------------------------------------------------------------------------
// Responses
// ------------------------------------------------------------------------------------------

/// A complete response. `Debug` shows header names and sizes, never values or the body;
/// the body and header values are zeroed when the response is dropped.
pub struct Response {
    status: u16,
    reason: String,
    minor_version: u8,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Response {
    /// The status code (100..=599; never 1xx, those are skipped).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The reason phrase (may be empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The minor HTTP version of the response: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The first value of header `name` (case-insensitive), as raw bytes.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name` (case-insensitive), when it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every value of header `name` (case-insensitive), in the order received.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// All header fields in the order received: (name as received, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The value of the cookie `name` set by this response's `Set-Cookie` headers, with its
    /// attributes (`Expires`, `Path`, ...) ignored. The last `Set-Cookie` for `name` wins, as
    /// in a cookie jar. Cookie names compare case-sensitively.
    ///
    /// Errors when that cookie's value holds characters outside RFC 6265 `cookie-octet`
    /// (it could not be sent back in a `Cookie` header).
    pub fn cookie(&self, name: &str) -> Result<Option<&str>, HttpError> {
        let mut found = None;
        for value in self.header_values("set-cookie") {
            if let Some(v) = set_cookie_value(value, name)? {
                found = Some(v);
            }
        }
        Ok(found)
    }

    /// Whether the connection may carry another request after this response: HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`; and the body
    /// was not delimited by the close, and no unexpected bytes followed the response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The body (the chunked framing removed).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the response. The caller becomes responsible for zeroing it.
    pub fn into_body(mut self) -> Vec<u8> {
        core::mem::take(&mut self.body)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Names<'a>(&'a [(String, Vec<u8>)]);
        impl fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(n, v)| (n, v.len())))
                    .finish()
            }
        }
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("minor_version", &self.minor_version)
            .field("headers(name, len)", &Names(&self.headers))
            .field("body_len", &self.body.len())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        self.body.zeroize();
        for (_, value) in &mut self.headers {
            value.zeroize();
        }
    }
}

/// Extracts the value of cookie `name` from one `Set-Cookie` header value: `Ok(None)` when
/// the header sets another cookie. Attributes after the first `;` are ignored; the value
/// may be wrapped in double quotes (removed). The value must consist of RFC 6265
/// `cookie-octet`s.
pub fn set_cookie_value<'a>(header: &'a [u8], name: &str) -> Result<Option<&'a str>, HttpError> {
    let pair = match header.iter().position(|&b| b == b';') {
        Some(end) => &header[..end],
        None => header,
    };
    let Some(eq) = pair.iter().position(|&b| b == b'=') else {
        return Ok(None); // no name=value pair: ignored (RFC 6265 §5.2)
    };
    if trim_ows(&pair[..eq]) != name.as_bytes() {
        return Ok(None);
    }
    let mut value = trim_ows(&pair[eq + 1..]);
    if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
        value = &value[1..value.len() - 1];
    }
    if !value.iter().all(|&b| is_cookie_octet(b)) {
        return Err(HttpError::InvalidCookie { name: name.into() });
    }
    // Cookie octets are ASCII.
    core::str::from_utf8(value)
        .map(Some)
        .map_err(|_| HttpError::InvalidCookie { name: name.into() })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Iterates over the comma-separated elements of a list-valued header (empty ones skipped).
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|s| !s.is_empty())
}

/// What [`ResponseParser::feed`] and [`ResponseParser::finish`] report.
#[derive(Debug)]
pub enum Progress {
    /// The response is not complete yet: feed more bytes (or signal the close).
    NeedMore,
    /// The final response is complete.
    Complete(Response),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer fields up to an empty line.
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a header section (the final one or an interim 1xx one).
    Head,
    /// `Content-Length` body.
    Length { remaining: u64, total: u64 },
    /// Chunked body.
    Chunked(Chunked),
    /// Body delimited by the connection close.
    UntilClose,
    /// The response was returned.
    Finished,
}

struct Head {
    status: u16,
    reason: String,
    minor_version: u8,
    headers: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
}

/// Incremental parser for one response. Create one per request, feed it what the
/// connection delivers, and signal the close with [`finish`](Self::finish).
pub struct ResponseParser {
    limits: Limits,
    /// Received bytes not consumed yet (`buf[pos..]`).
    buf: Vec<u8>,
    pos: usize,
    /// How far `buf` was searched for a line feed since the last header parse attempt.
    scanned: usize,
    /// Whether a line feed arrived since the last header (or trailer) parse attempt.
    new_line: bool,
    /// Blank lines skipped before the status line (count towards the header limit).
    skipped: usize,
    received: usize,
    interim: usize,
    state: State,
    head: Option<Head>,
    body: Vec<u8>,
}

impl ResponseParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> ResponseParser {
        ResponseParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            new_line: false,
            skipped: 0,
            received: 0,
            interim: 0,
            state: State::Head,
            head: None,
            body: Vec::new(),
        }
    }

    /// Total bytes fed so far (interim responses included). A transport may resend a
    /// request on a fresh connection only while this is 0.
    pub fn bytes_received(&self) -> usize {
        self.received
    }

    /// Feeds the next bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) -> Result<Progress, HttpError> {
        if self.state == State::Finished {
            return Err(HttpError::AlreadyComplete);
        }
        self.received = self.received.saturating_add(data.len());
        self.buf.extend_from_slice(data);
        let result = self.advance();
        self.compact();
        result
    }

    /// Signals that the peer closed the connection (end of stream). Completes a body
    /// delimited by the close; anything else unfinished is a truncation error.
    pub fn finish(&mut self) -> Result<Progress, HttpError> {
        match self.state {
            State::Finished => Err(HttpError::AlreadyComplete),
            State::Head if self.received == 0 => Err(HttpError::ClosedBeforeResponse),
            State::Head => Err(HttpError::TruncatedHead {
                received: self.received,
            }),
            State::Length { remaining, total } => Err(HttpError::TruncatedBody {
                received: (total - remaining) as usize,
                expected: total,
            }),
            State::Chunked(_) => Err(HttpError::TruncatedChunked {
                received: self.body.len(),
            }),
            State::UntilClose => self.complete(),
        }
    }

    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scanned = self.scanned.saturating_sub(self.pos);
            self.pos = 0;
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Notes whether a line feed arrived in bytes not searched yet.
    fn scan_new_line(&mut self) {
        if self.buf[self.scanned.max(self.pos)..].contains(&b'\n') {
            self.new_line = true;
        }
        self.scanned = self.buf.len();
    }

    fn advance(&mut self) -> Result<Progress, HttpError> {
        loop {
            let progressed = match self.state {
                State::Head => self.parse_head()?,
                State::Length { remaining, total } => {
                    let n = (self.pending().len() as u64).min(remaining) as usize;
                    self.take_body(n)?;
                    let remaining = remaining - n as u64;
                    self.state = State::Length { remaining, total };
                    if remaining == 0 {
                        return self.complete();
                    }
                    false
                }
                State::UntilClose => {
                    let n = self.pending().len();
                    self.take_body(n)?;
                    false
                }
                State::Chunked(Chunked::Trailers) => {
                    if self.parse_trailers()? {
                        return self.complete();
                    }
                    false
                }
                State::Chunked(step) => self.parse_chunked(step)?,
                State::Finished => return Err(HttpError::AlreadyComplete),
            };
            if !progressed {
                return Ok(Progress::NeedMore);
            }
        }
    }

    /// Moves `n` pending bytes into the body, enforcing the body limit.
    fn take_body(&mut self, n: usize) -> Result<(), HttpError> {
        if self.body.len().saturating_add(n) > self.limits.max_body_bytes {
            return Err(HttpError::BodyTooLarge {
                limit: self.limits.max_body_bytes,
            });
        }
        let start = self.pos;
        self.body.extend_from_slice(&self.buf[start..start + n]);
        self.pos += n;
        Ok(())
    }

    /// Tries to parse a header section. Returns whether the state changed.
    fn parse_head(&mut self) -> Result<bool, HttpError> {
        // Blank lines before the status line are skipped (RFC 9112 §2.2); doing it here keeps
        // each one from triggering a parse attempt.
        loop {
            let skip = match self.pending() {
                [b'\r', b'\n', ..] => 2,
                [b'\n', ..] => 1,
                _ => break,
            };
            self.pos += skip;
            self.skipped += skip;
            if self.skipped > self.limits.max_head_bytes {
                return Err(HttpError::HeadTooLarge {
                    limit: self.limits.max_head_bytes,
                });
            }
        }
        self.scan_new_line();
        let pending_len = self.pending().len();
        if !self.new_line {
            return self.check_head_size(pending_len).map(|_| false);
        }
        self.new_line = false;

        let mut slots = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Response::new(&mut slots);
        let consumed = match parsed.parse(&self.buf[self.pos..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return self.check_head_size(pending_len).map(|_| false);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::TooManyHeaders {
                    limit: self.limits.max_headers,
                });
            }
            Err(e) => {
                return Err(HttpError::MalformedHead {
                    reason: httparse_reason(e),
                });
            }
        };
        self.check_head_size(consumed)?;
        let code = parsed.code.unwrap_or(0);
        if !(100..=599).contains(&code) {
            return Err(HttpError::InvalidStatus { code });
        }
        let minor_version = parsed.version.unwrap_or(1);
        let reason = String::from(parsed.reason.unwrap_or(""));
        let headers: Vec<(String, Vec<u8>)> = parsed
            .headers
            .iter()
            .map(|h| (String::from(h.name), Vec::from(h.value)))
            .collect();
        self.pos += consumed;
        self.skipped = 0;

        if code < 200 {
            if code == 101 {
                return Err(HttpError::UnexpectedUpgrade);
            }
            // 100 Continue, 102, 103 Early Hints...: skip and read the next head.
            self.interim += 1;
            if self.interim > MAX_INTERIM_RESPONSES {
                return Err(HttpError::TooManyInterimResponses {
                    limit: MAX_INTERIM_RESPONSES,
                });
            }
            self.scanned = self.pos;
            return Ok(true);
        }

        let mut keep_alive = persistent(minor_version, &headers);
        self.state = if code == 204 || code == 304 {
            State::Length {
                remaining: 0,
                total: 0,
            }
        } else {
            match framing(&headers)? {
                Framing::Chunked => {
                    if minor_version == 0 {
                        // Chunked is not defined for HTTP/1.0: read it but do not reuse.
                        keep_alive = false;
                    }
                    State::Chunked(Chunked::Size)
                }
                Framing::Length(total) => {
                    if total > self.limits.max_body_bytes as u64 {
                        return Err(HttpError::BodyTooLarge {
                            limit: self.limits.max_body_bytes,
                        });
                    }
                    self.body.reserve_exact(total as usize);
                    State::Length {
                        remaining: total,
                        total,
                    }
                }
                Framing::UntilClose => {
                    keep_alive = false;
                    State::UntilClose
                }
            }
        };
        self.head = Some(Head {
            status: code,
            reason,
            minor_version,
            headers,
            keep_alive,
        });
        Ok(true)
    }

    fn check_head_size(&self, len: usize) -> Result<(), HttpError> {
        if self.skipped.saturating_add(len) > self.limits.max_head_bytes {
            return Err(HttpError::HeadTooLarge {
                limit: self.limits.max_head_bytes,
            });
        }
        Ok(())
    }

    /// One step of chunked decoding (not the trailers). Returns whether it progressed.
    fn parse_chunked(&mut self, step: Chunked) -> Result<bool, HttpError> {
        match step {
            Chunked::Size => {
                let line = self.pending();
                let Some(&first) = line.first() else {
                    return Ok(false);
                };
                // httparse takes an empty size as 0; the grammar wants at least one digit.
                if !first.is_ascii_hexdigit() {
                    return Err(HttpError::InvalidChunkSize);
                }
                match httparse::parse_chunk_size(line) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        if n > MAX_CHUNK_LINE_BYTES {
                            return Err(HttpError::ChunkLineTooLong {
                                limit: MAX_CHUNK_LINE_BYTES,
                            });
                        }
                        self.pos += n;
                        if size == 0 {
                            self.state = State::Chunked(Chunked::Trailers);
                            self.scanned = self.pos;
                            self.new_line = false;
                            return Ok(true);
                        }
                        let room = (self.limits.max_body_bytes - self.body.len()) as u64;
                        if size > room {
                            return Err(HttpError::BodyTooLarge {
                                limit: self.limits.max_body_bytes,
                            });
                        }
                        self.state = State::Chunked(Chunked::Data { remaining: size });
                        Ok(true)
                    }
                    Ok(httparse::Status::Partial) => {
                        if line.len() > MAX_CHUNK_LINE_BYTES {
                            return Err(HttpError::ChunkLineTooLong {
                                limit: MAX_CHUNK_LINE_BYTES,
                            });
                        }
                        Ok(false)
                    }
                    Err(httparse::InvalidChunkSize) => Err(HttpError::InvalidChunkSize),
                }
            }
            Chunked::Data { remaining } => {
                let n = (self.pending().len() as u64).min(remaining) as usize;
                if n == 0 {
                    return Ok(false);
                }
                self.take_body(n)?;
                let remaining = remaining - n as u64;
                self.state = State::Chunked(if remaining == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data { remaining }
                });
                Ok(true)
            }
            Chunked::DataEnd => match self.pending() {
                [b'\r', b'\n', ..] => {
                    self.pos += 2;
                    self.state = State::Chunked(Chunked::Size);
                    Ok(true)
                }
                [] | [b'\r'] => Ok(false),
                _ => Err(HttpError::MissingChunkDelimiter),
            },
            Chunked::Trailers => Ok(false), // handled by parse_trailers
        }
    }

    /// Skips the trailer section. Returns whether it is complete.
    fn parse_trailers(&mut self) -> Result<bool, HttpError> {
        self.scan_new_line();
        let pending_len = self.pending().len();
        let too_large = HttpError::TrailersTooLarge {
            limit: self.limits.max_head_bytes,
        };
        if !self.new_line {
            return if pending_len > self.limits.max_head_bytes {
                Err(too_large)
            } else {
                Ok(false)
            };
        }
        self.new_line = false;
        let mut slots = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        match httparse::parse_headers(&self.buf[self.pos..], &mut slots) {
            Ok(httparse::Status::Complete((n, _))) => {
                if n > self.limits.max_head_bytes {
                    return Err(too_large);
                }
                self.pos += n;
                Ok(true)
            }
            Ok(httparse::Status::Partial) if pending_len > self.limits.max_head_bytes => {
                Err(too_large)
            }
            Ok(httparse::Status::Partial) => Ok(false),
            Err(httparse::Error::TooManyHeaders) => Err(HttpError::TooManyHeaders {
                limit: self.limits.max_headers,
            }),
            Err(e) => Err(HttpError::MalformedTrailers {
                reason: httparse_reason(e),
            }),
        }
    }

    fn complete(&mut self) -> Result<Progress, HttpError> {
        let Some(head) = self.head.take() else {
            return Err(HttpError::AlreadyComplete);
        };
        self.state = State::Finished;
        // Bytes after the end of the response: the server is not speaking request/response
        // in step with us, so this connection must not carry another request.
        let surplus = self.pos < self.buf.len();
        Ok(Progress::Complete(Response {
            status: head.status,
            reason: head.reason,
            minor_version: head.minor_version,
            headers: head.headers,
            body: core::mem::take(&mut self.body),
            keep_alive: head.keep_alive && !surplus,
        }))
    }
}

impl fmt::Debug for ResponseParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseParser")
            .field("state", &self.state)
            .field("received", &self.received)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Drop for ResponseParser {
    fn drop(&mut self) {
        self.buf.zeroize();
        self.body.zeroize();
    }
}

enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Body framing of a response that may have a body (RFC 9112 §6.3).
fn framing(headers: &[(String, Vec<u8>)]) -> Result<Framing, HttpError> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    let has_length = named("content-length").next().is_some();
    if named("transfer-encoding").next().is_some() {
        if has_length {
            return Err(HttpError::ContentLengthWithTransferEncoding);
        }
        let mut codings = named("transfer-encoding").flat_map(list_items);
        return match (codings.next(), codings.next()) {
            (Some(c), None) if c.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err(HttpError::UnsupportedTransferEncoding),
        };
    }
    if !has_length {
        return Ok(Framing::UntilClose);
    }
    let mut length = None;
    for value in named("content-length") {
        // `Content-Length: 5, 5` (or repeated fields) is tolerated when all values agree.
        let mut any = false;
        for item in value.split(|&b| b == b',').map(trim_ows) {
            let n = parse_length(item)?;
            any = true;
            match length {
                Some(prev) if prev != n => return Err(HttpError::ConflictingContentLength),
                _ => length = Some(n),
            }
        }
        if !any {
            return Err(HttpError::InvalidContentLength);
        }
    }
    length
        .map(Framing::Length)
        .ok_or(HttpError::InvalidContentLength)
}

fn parse_length(digits: &[u8]) -> Result<u64, HttpError> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidContentLength);
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Whether the server keeps the connection open after the response (RFC 9112 §9.3).
fn persistent(minor_version: u8, headers: &[(String, Vec<u8>)]) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        for token in list_items(value) {
            close |= token.eq_ignore_ascii_case(b"close");
            keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    !close && (minor_version >= 1 || keep_alive)
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid byte in a header name",
        httparse::Error::HeaderValue => "invalid byte in a header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "not an HTTP/1.x status line",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    /// What a parse ended with, comparable across feeding strategies.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Complete {
            status: u16,
            body: Vec<u8>,
            keep_alive: bool,
        },
        NeedMore,
        Error(HttpError),
    }

    fn outcome(r: Result<Progress, HttpError>) -> Option<Outcome> {
        match r {
            Ok(Progress::NeedMore) => None,
            Ok(Progress::Complete(resp)) => Some(Outcome::Complete {
                status: resp.status(),
                body: resp.body().to_vec(),
                keep_alive: resp.keep_alive(),
            }),
            Err(e) => Some(Outcome::Error(e)),
        }
    }

    /// Feeds `parts` in order, then (if `eof`) signals the close.
    fn run_parts(limits: Limits, parts: &[&[u8]], eof: bool) -> Outcome {
        let mut p = ResponseParser::new(limits);
        for part in parts {
            if let Some(o) = outcome(p.feed(part)) {
                return o;
            }
        }
        if eof {
            outcome(p.finish()).unwrap_or(Outcome::NeedMore)
        } else {
            Outcome::NeedMore
        }
    }

    fn run(input: &[u8], eof: bool) -> Outcome {
        run_parts(Limits::default(), &[input], eof)
    }

    /// Parses `input` whole, split at every byte boundary, and byte by byte: all must agree.
    fn run_split(limits: Limits, input: &[u8], eof: bool) -> Outcome {
        let whole = run_parts(limits, &[input], eof);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(run_parts(limits, &[a, b], eof), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run_parts(limits, &bytes, eof), whole, "byte by byte");
        whole
    }

    fn parse_ok(input: &[u8]) -> Response {
        let mut p = ResponseParser::new(Limits::default());
        match p.feed(input) {
            Ok(Progress::Complete(r)) => r,
            other => panic!("expected a complete response, got {other:?}"),
        }
    }

    fn complete(status: u16, body: &[u8], keep_alive: bool) -> Outcome {
        Outcome::Complete {
            status,
            body: body.to_vec(),
            keep_alive,
        }
    }

    fn err(e: HttpError) -> Outcome {
        Outcome::Error(e)
    }

    // ---- requests ------------------------------------------------------------------------

    #[test]
    fn encodes_get_without_body() {
        let req = Request::get("/kbs/v0/resource/default/key/1")
            .with_cookie("kbs-session-id", "0123abcd");
        let bytes = req.encode("127.0.0.1:8080", "").unwrap();
        let want = format!(
            "GET /kbs/v0/resource/default/key/1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: sealgate/{}\r\nAccept: application/json\r\nCookie: kbs-session-id=0123abcd\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(core::str::from_utf8(&bytes).unwrap(), want);
    }

    #[test]
    fn encodes_post_with_json_body_base_path_and_credentials() {
        let body = br#"{"version":"0.4.0"}"#;
        let req = Request::post_json("/kbs/v0/auth", &body[..])
            .with_cookie("a", "1")
            .with_cookie("b", "2")
            .with_bearer("eyJ.eyJ.sig_-");
        let bytes = req.encode("kbs.example", "/prefix").unwrap();
        let want = format!(
            "POST /prefix/kbs/v0/auth HTTP/1.1\r\nHost: kbs.example\r\nUser-Agent: {USER_AGENT}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: 19\r\nCookie: a=1; b=2\r\nAuthorization: Bearer eyJ.eyJ.sig_-\r\n\r\n{{\"version\":\"0.4.0\"}}"
        );
        assert_eq!(core::str::from_utf8(&bytes).unwrap(), want);
        // An empty POST body still says Content-Length: 0.
        let empty = Request::post_json("/x", Vec::new())
            .encode("h", "")
            .unwrap();
        assert!(empty.ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn encoding_refuses_header_injection() {
        let bad = |req: Request, host: &str, base: &str, field: &'static str| {
            assert_eq!(
                req.encode(host, base),
                Err(HttpError::InvalidRequest { field })
            );
        };
        bad(Request::get("/a b"), "h", "", "target");
        bad(Request::get("/a\r\nX: y"), "h", "", "target");
        bad(Request::get("relative"), "h", "", "target");
        bad(Request::get("/a#frag"), "h", "", "target");
        bad(Request::get("/é"), "h", "", "target");
        bad(Request::get("/"), "h\r\nX: y", "", "host");
        bad(Request::get("/"), "", "", "host");
        bad(Request::get("/"), "h", "nolead", "base path");
        bad(Request::get("/"), "h", "/a?b", "base path");
        bad(
            Request::get("/").with_cookie("a b", "1"),
            "h",
            "",
            "cookie name",
        );
        bad(
            Request::get("/").with_cookie("", "1"),
            "h",
            "",
            "cookie name",
        );
        bad(
            Request::get("/").with_cookie("a", "1;b=2"),
            "h",
            "",
            "cookie value",
        );
        bad(
            Request::get("/").with_cookie("a", "x\r\n"),
            "h",
            "",
            "cookie value",
        );
        bad(
            Request::get("/").with_bearer("a b"),
            "h",
            "",
            "bearer token",
        );
        bad(Request::get("/").with_bearer(""), "h", "", "bearer token");
        bad(
            Request::get("/").with_bearer("tok\r\nX: y"),
            "h",
            "",
            "bearer token",
        );
        assert!(
            Request::get("/")
                .with_bearer("abc==")
                .encode("h", "")
                .is_ok()
        );
        assert!(Request::get("/?q=1&r=%20").encode("[::1]:8080", "").is_ok());
    }

    #[test]
    fn request_debug_hides_credentials_and_body() {
        let req = Request::post_json("/x", &b"BODYSECRET"[..])
            .with_cookie("kbs-session-id", "COOKIESECRET")
            .with_bearer("TOKENSECRET");
        let dbg = format!("{req:?}");
        for secret in ["BODYSECRET", "COOKIESECRET", "TOKENSECRET"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        assert!(dbg.contains("kbs-session-id"));
    }

    // ---- framing ------------------------------------------------------------------------

    #[test]
    fn content_length_body_at_every_split() {
        let input =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello";
        assert_eq!(
            run_split(Limits::default(), input, false),
            complete(200, b"hello", true)
        );
        let r = parse_ok(input);
        assert_eq!(r.reason(), "OK");
        assert_eq!(r.minor_version(), 1);
        assert_eq!(r.header_str("content-type"), Some("application/json"));
        assert_eq!(r.header("CONTENT-LENGTH"), Some(&b"5"[..]));
        assert_eq!(r.header("missing"), None);
        assert!(r.is_success());
    }

    #[test]
    fn zero_length_and_missing_reason() {
        assert_eq!(
            run_split(
                Limits::default(),
                b"HTTP/1.1 401\r\nContent-Length: 0\r\n\r\n",
                false
            ),
            complete(401, b"", true)
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers_at_every_split() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value;other=\"q;uoted\"\r\nhello\r\n\
            1 ; ext\r\n,\r\n\
            A\r\n world 123\r\n\
            0;last\r\nExpires: never\r\nX-Checksum: abc\r\n\r\n";
        assert_eq!(
            run_split(Limits::default(), input, false),
            complete(200, b"hello, world 123", true)
        );
    }

    #[test]
    fn chunked_without_trailers_and_with_upper_case_coding() {
        let input = b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(
            run_split(Limits::default(), input, false),
            complete(200, b"abc", true)
        );
    }

    #[test]
    fn chunked_truncated_at_eof_is_an_error() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let head_len = full.len() - b"3\r\nabc\r\n0\r\n\r\n".len();
        // Every strict prefix that ends inside the body is a truncation, never a success.
        for end in head_len..full.len() {
            let got = run(&full[..end], true);
            let received = if end >= head_len + 6 {
                3
            } else {
                end.saturating_sub(head_len + 3)
            };
            assert_eq!(
                got,
                err(HttpError::TruncatedChunked { received }),
                "prefix of {end} bytes"
            );
        }
    }

    #[test]
    fn eof_delimited_body() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(
            run_split(Limits::default(), input, false),
            Outcome::NeedMore
        );
        assert_eq!(
            run_split(Limits::default(), input, true),
            complete(200, b"{\"a\":1}", false)
        );
        // Empty close-delimited body.
        assert_eq!(
            run(b"HTTP/1.0 200 OK\r\n\r\n", true),
            complete(200, b"", false)
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\n\
            HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n\
            HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            run_split(Limits::default(), input, false),
            complete(201, b"ok", true)
        );
        // Interim responses alone, then the close: a truncation, not "closed before response".
        assert_eq!(
            run(b"HTTP/1.1 100 Continue\r\n\r\n", true),
            err(HttpError::TruncatedHead { received: 25 })
        );
    }

    #[test]
    fn switching_protocols_and_interim_floods_are_refused() {
        assert_eq!(
            run(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                false
            ),
            err(HttpError::UnexpectedUpgrade)
        );
        let mut flood = Vec::new();
        for _ in 0..=MAX_INTERIM_RESPONSES {
            flood.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        assert_eq!(
            run(&flood, false),
            err(HttpError::TooManyInterimResponses {
                limit: MAX_INTERIM_RESPONSES
            })
        );
    }

    #[test]
    fn no_body_for_204_and_304() {
        for (head, status) in [
            (
                &b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"[..],
                204,
            ),
            (
                &b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"[..],
                304,
            ),
            (&b"HTTP/1.1 204 No Content\r\n\r\n"[..], 204),
        ] {
            assert_eq!(
                run_split(Limits::default(), head, false),
                complete(status, b"", true)
            );
        }
    }

    #[test]
    fn keep_alive_semantics() {
        let ka = |input: &[u8]| parse_ok(input).keep_alive();
        assert!(ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: x\r\nconnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
        // Bytes after the end of the response: the stream is out of step, do not reuse.
        let surplus = parse_ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
        assert_eq!(surplus.body(), b"ok");
        assert!(!surplus.keep_alive());
        assert_eq!(
            parse_ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").minor_version(),
            0
        );
    }

    #[test]
    fn lenient_where_harmless() {
        // Blank lines before the status line and bare LF line ends.
        assert_eq!(
            run_split(
                Limits::default(),
                b"\r\n\n\r\nHTTP/1.1 200 OK\nContent-Length: 1\n\nx",
                false
            ),
            complete(200, b"x", true)
        );
        // Repeated, equal Content-Length values.
        assert_eq!(
            run(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok",
                false
            ),
            complete(200, b"ok", true)
        );
    }

    // ---- malformed input ----------------------------------------------------------------

    #[test]
    fn conflicting_or_invalid_lengths() {
        let cases: &[(&[u8], HttpError)] = &[
            (
                b"Content-Length: 2\r\nContent-Length: 3\r\n",
                HttpError::ConflictingContentLength,
            ),
            (
                b"Content-Length: 2, 3\r\n",
                HttpError::ConflictingContentLength,
            ),
            (b"Content-Length: +2\r\n", HttpError::InvalidContentLength),
            (b"Content-Length: -1\r\n", HttpError::InvalidContentLength),
            (b"Content-Length: 0x10\r\n", HttpError::InvalidContentLength),
            (b"Content-Length: \r\n", HttpError::InvalidContentLength),
            (b"Content-Length: 2,\r\n", HttpError::InvalidContentLength),
            (
                b"Content-Length: 99999999999999999999\r\n",
                HttpError::InvalidContentLength,
            ),
            (
                b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                HttpError::ContentLengthWithTransferEncoding,
            ),
            (
                b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                HttpError::ContentLengthWithTransferEncoding,
            ),
            (
                b"Transfer-Encoding: gzip, chunked\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                b"Transfer-Encoding: chunked, chunked\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                b"Transfer-Encoding: identity\r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
            (
                b"Transfer-Encoding: \r\n",
                HttpError::UnsupportedTransferEncoding,
            ),
        ];
        for (headers, want) in cases {
            let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
            input.extend_from_slice(headers);
            input.extend_from_slice(b"\r\nabc");
            assert_eq!(
                run(&input, false),
                err(want.clone()),
                "{}",
                String::from_utf8_lossy(headers)
            );
        }
    }

    #[test]
    fn malformed_heads() {
        let malformed = |input: &[u8]| match run(input, false) {
            Outcome::Error(HttpError::MalformedHead { .. }) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        };
        malformed(b"HTTP/2 200 OK\r\n\r\n");
        malformed(b"HTTP/1.1 2000 OK\r\n\r\n");
        malformed(b"HTTP/1.1 20 OK\r\n\r\n");
        malformed(b"SSH-2.0-OpenSSH\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n");
        malformed(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n");
        // Garbage is detected without waiting for the end of the header section.
        malformed(b"GARBAGE\r\n");
        assert_eq!(
            run(b"HTTP/1.1 099 Odd\r\n\r\n", false),
            err(HttpError::InvalidStatus { code: 99 })
        );
        assert_eq!(
            run(b"HTTP/1.1 600 Odd\r\n\r\n", false),
            err(HttpError::InvalidStatus { code: 600 })
        );
    }

    #[test]
    fn header_section_limits() {
        let limits = Limits::default();
        // One endless header line: refused as soon as it passes the limit, no line feed needed.
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(limits.max_head_bytes + 1, b'a');
        assert_eq!(
            run(&long, false),
            err(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes
            })
        );
        let mut p = ResponseParser::new(limits);
        let mut result = Ok(Progress::NeedMore);
        for piece in long.chunks(1000) {
            result = p.feed(piece);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result.err(),
            Some(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes
            })
        );
        // A complete head just over the limit.
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.resize(limits.max_head_bytes, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            run(&big, false),
            err(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes
            })
        );
        // Exactly at the limit is fine.
        let mut fits = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ".to_vec();
        fits.resize(limits.max_head_bytes - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(fits.len(), limits.max_head_bytes);
        assert_eq!(run(&fits, false), complete(200, b"", true));
        // Blank lines before the status line count too.
        let blank = alloc::vec![b'\n'; limits.max_head_bytes + 1];
        assert_eq!(
            run(&blank, false),
            err(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes
            })
        );
        // Too many fields.
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=limits.max_headers {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        assert_eq!(
            run(&many, false),
            err(HttpError::TooManyHeaders {
                limit: limits.max_headers
            })
        );
        let mut max = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..limits.max_headers - 1 {
            max.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        max.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert_eq!(run(&max, false), complete(200, b"", true));
    }

    #[test]
    fn body_limits() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let too_large = err(HttpError::BodyTooLarge { limit: 10 });
        // Announced length: refused before the body arrives.
        assert_eq!(
            run_parts(
                limits,
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"],
                false
            ),
            too_large
        );
        assert_eq!(
            run_parts(
                limits,
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"],
                false
            ),
            complete(200, b"0123456789", true)
        );
        // Chunked: refused when a chunk size would exceed it.
        assert_eq!(
            run_split(
                limits,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n",
                false
            ),
            too_large
        );
        assert_eq!(
            run_split(
                limits,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n",
                false
            ),
            complete(200, b"0123456789", true)
        );
        // Close-delimited: refused when the bytes exceed it.
        assert_eq!(
            run_split(limits, b"HTTP/1.1 200 OK\r\n\r\n01234567890", true),
            too_large
        );
        // The default and its message.
        let e = HttpError::BodyTooLarge {
            limit: DEFAULT_MAX_BODY_BYTES,
        };
        assert_eq!(
            e.to_string(),
            "response body exceeds the 1048576-byte limit"
        );
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n", false),
            err(e)
        );
    }

    #[test]
    fn chunk_size_errors() {
        let chunked = |body: &[u8]| {
            let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            input.extend_from_slice(body);
            run_split(Limits::default(), &input, false)
        };
        // 17 hex digits: more than u64 can hold, refused by httparse.
        assert_eq!(
            chunked(b"10000000000000000\r\n"),
            err(HttpError::InvalidChunkSize)
        );
        // Leading zeros count as digits too.
        assert_eq!(
            chunked(b"00000000000000001\r\n"),
            err(HttpError::InvalidChunkSize)
        );
        // Huge but representable: over the body limit.
        assert_eq!(
            chunked(b"ffffffffffffffff\r\n"),
            err(HttpError::BodyTooLarge {
                limit: DEFAULT_MAX_BODY_BYTES
            })
        );
        assert_eq!(chunked(b"\r\n"), err(HttpError::InvalidChunkSize));
        assert_eq!(chunked(b";ext\r\n"), err(HttpError::InvalidChunkSize));
        assert_eq!(chunked(b"g\r\n"), err(HttpError::InvalidChunkSize));
        assert_eq!(chunked(b"-1\r\n"), err(HttpError::InvalidChunkSize));
        assert_eq!(chunked(b"5\nhello"), err(HttpError::InvalidChunkSize));
        assert_eq!(
            chunked(b"3\r\nabcX\r\n"),
            err(HttpError::MissingChunkDelimiter)
        );
        assert_eq!(
            chunked(b"3\r\nabc\n0\r\n\r\n"),
            err(HttpError::MissingChunkDelimiter)
        );
        // Endless extension.
        let mut ext = b"5;".to_vec();
        ext.resize(MAX_CHUNK_LINE_BYTES + 1, b'x');
        let limit = MAX_CHUNK_LINE_BYTES;
        assert_eq!(chunked(&ext), err(HttpError::ChunkLineTooLong { limit }));
        ext.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(chunked(&ext), err(HttpError::ChunkLineTooLong { limit }));
    }

    #[test]
    fn trailer_errors() {
        let chunked = |tail: &[u8]| {
            let mut input =
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n".to_vec();
            input.extend_from_slice(tail);
            run(&input, false)
        };
        match chunked(b"Bad Trailer: x\r\n\r\n") {
            Outcome::Error(HttpError::MalformedTrailers { .. }) => {}
            other => panic!("{other:?}"),
        }
        let mut many = Vec::new();
        for i in 0..=DEFAULT_MAX_HEADERS {
            many.extend_from_slice(format!("T-{i}: v\r\n").as_bytes());
        }
        assert_eq!(
            chunked(&many),
            err(HttpError::TooManyHeaders {
                limit: DEFAULT_MAX_HEADERS
            })
        );
        let mut long = b"T: ".to_vec();
        long.resize(DEFAULT_MAX_HEAD_BYTES + 1, b'v');
        assert_eq!(
            chunked(&long),
            err(HttpError::TrailersTooLarge {
                limit: DEFAULT_MAX_HEAD_BYTES
            })
        );
    }

    #[test]
    fn truncation_at_eof() {
        assert_eq!(run(b"", true), err(HttpError::ClosedBeforeResponse));
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nContent-Le", true),
            err(HttpError::TruncatedHead { received: 27 })
        );
        assert_eq!(
            run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true),
            err(HttpError::TruncatedBody {
                received: 3,
                expected: 10
            })
        );
        let mut p = ResponseParser::new(Limits::default());
        assert_eq!(p.bytes_received(), 0);
        assert!(matches!(p.feed(b"HTTP/1.1 2"), Ok(Progress::NeedMore)));
        assert_eq!(p.bytes_received(), 10);
    }

    #[test]
    fn parser_refuses_use_after_completion() {
        let mut p = ResponseParser::new(Limits::default());
        assert!(matches!(
            p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(Progress::Complete(_))
        ));
        assert_eq!(p.feed(b"x").err(), Some(HttpError::AlreadyComplete));
        assert_eq!(p.finish().err(), Some(HttpError::AlreadyComplete));
    }

    #[test]
    fn messages_and_debug_never_show_body_or_values() {
        let secret = b"TOPSECRET-TOPSECRET";
        let mut inputs: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut with = |head: &[u8], eof: bool| {
            let mut v = head.to_vec();
            v.extend_from_slice(secret);
            v.extend_from_slice(b"\r\n\r\n");
            inputs.push((v, eof));
        };
        with(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true);
        with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
            false,
        );
        with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n",
            true,
        );
        with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n",
            false,
        );
        with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT",
            false,
        );
        with(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nX: ", true);
        with(b"HTTP/1.1 200 OK\r\nContent-Length: ", false);
        with(b"HTTP/1.1 200 OK\r\nBad Header", false);
        for (input, eof) in &inputs {
            let mut p = ResponseParser::new(Limits {
                max_body_bytes: 8,
                ..Limits::default()
            });
            let mut r = p.feed(input);
            if *eof && matches!(r, Ok(Progress::NeedMore)) {
                r = p.finish();
            }
            let e = r.expect_err("an error");
            let text = format!("{e} {e:?} {p:?}");
            assert!(!text.contains("TOPSECRET"), "{text}");
        }
        let resp = parse_ok(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: kbs-session-id=TOPSECRET\r\nContent-Length: 9\r\n\r\nTOPSECRET",
        );
        let dbg = format!("{resp:?}");
        assert!(
            !dbg.contains("TOPSECRET") && dbg.contains("Set-Cookie"),
            "{dbg}"
        );
    }

    // ---- cookies ------------------------------------------------------------------------

    #[test]
    fn set_cookie_parsing() {
        fn v(h: &[u8]) -> Result<Option<&str>, HttpError> {
            set_cookie_value(h, "kbs-session-id")
        }
        assert_eq!(
            v(b"kbs-session-id=abc123; Expires=Sun, 22 Nov 2026 11:28:47 GMT"),
            Ok(Some("abc123"))
        );
        assert_eq!(v(b"kbs-session-id=abc123"), Ok(Some("abc123")));
        assert_eq!(v(b" kbs-session-id = abc123 ;Path=/"), Ok(Some("abc123")));
        assert_eq!(
            v(b"kbs-session-id=\"abc123\"; HttpOnly"),
            Ok(Some("abc123"))
        );
        assert_eq!(v(b"kbs-session-id=; Max-Age=0"), Ok(Some("")));
        assert_eq!(v(b"other=abc"), Ok(None));
        assert_eq!(v(b"KBS-SESSION-ID=abc"), Ok(None));
        assert_eq!(v(b"kbs-session-id"), Ok(None));
        assert_eq!(v(b""), Ok(None));
        let invalid = Err(HttpError::InvalidCookie {
            name: "kbs-session-id".into(),
        });
        assert_eq!(v(b"kbs-session-id=a b"), invalid);
        assert_eq!(v(b"kbs-session-id=a,b"), invalid);
        assert_eq!(v(b"kbs-session-id=a\\b"), invalid);
        assert_eq!(v(b"kbs-session-id=\"a\"b\""), invalid);
        assert_eq!(v(b"kbs-session-id=\xc3\xa9"), invalid);
        assert_eq!(v(b"kbs-session-id=\""), invalid);

        let resp = parse_ok(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: kbs-session-id=old\r\n\
              set-cookie: kbs-session-id=new; Expires=x\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(resp.cookie("kbs-session-id"), Ok(Some("new")));
        assert_eq!(resp.cookie("a"), Ok(Some("1")));
        assert_eq!(resp.cookie("b"), Ok(None));
        assert_eq!(resp.header_values("SET-COOKIE").count(), 3);
        assert_eq!(resp.headers().count(), 4);
    }

    // ---- recorded Trustee exchanges ----------------------------------------------------

    fn wire_response(resp: &serde_json::Value) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            resp["status"].as_u64().unwrap(),
            resp["reason"].as_str().unwrap()
        );
        for h in resp["headers"].as_array().unwrap() {
            out.push_str(&format!(
                "{}: {}\r\n",
                h[0].as_str().unwrap(),
                h[1].as_str().unwrap()
            ));
        }
        out.push_str("\r\n");
        out.push_str(resp["body"].as_str().unwrap());
        out.into_bytes()
    }

    fn check_exchange(name: &str, exchange: &serde_json::Value) {
        let req = &exchange["request"];
        let resp = &exchange["response"];
        let wire = wire_response(resp);
        let split_whole = run_split(Limits::default(), &wire, false);
        let parsed = parse_ok(&wire);
        assert_eq!(
            u64::from(parsed.status()),
            resp["status"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(parsed.reason(), resp["reason"].as_str().unwrap(), "{name}");
        assert_eq!(
            parsed.body(),
            resp["body"].as_str().unwrap().as_bytes(),
            "{name}"
        );
        assert!(parsed.keep_alive(), "{name}");
        assert_eq!(
            split_whole,
            complete(parsed.status(), parsed.body(), true),
            "{name}"
        );
        // Error responses carry no Content-Type; successes are JSON.
        let ct = parsed.header_str("Content-Type");
        if parsed.is_success() {
            assert_eq!(ct, Some("application/json"), "{name}");
        } else {
            assert_eq!(ct, None, "{name}");
        }
        for h in resp["headers"].as_array().unwrap() {
            if h[0].as_str().unwrap().eq_ignore_ascii_case("set-cookie") {
                let value = parsed.cookie("kbs-session-id").unwrap().unwrap();
                assert_eq!(value.len(), 32);
                assert!(
                    h[1].as_str()
                        .unwrap()
                        .starts_with(&format!("kbs-session-id={value};"))
                );
            }
        }

        // Our encoding of the same request carries every recorded header with its value.
        let method = req["method"].as_str().unwrap();
        let path = req["path"].as_str().unwrap();
        let mut ours = match (method, req["body"].as_str()) {
            ("POST", Some(body)) => Request::post_json(path, body.as_bytes()),
            ("GET", None) => Request::get(path),
            other => panic!("{name}: unexpected request {other:?}"),
        };
        let mut host = "";
        for h in req["headers"].as_array().unwrap() {
            let (n, v) = (h[0].as_str().unwrap(), h[1].as_str().unwrap());
            match n {
                "Host" => host = v,
                "Cookie" => {
                    let (cn, cv) = v.split_once('=').unwrap();
                    ours = ours.with_cookie(cn, cv);
                }
                "Authorization" => ours = ours.with_bearer(v.strip_prefix("Bearer ").unwrap()),
                _ => {}
            }
        }
        let bytes = ours.encode(host, "").unwrap();
        let text = core::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(&format!("{method} {path} HTTP/1.1\r\n")),
            "{name}"
        );
        for h in req["headers"].as_array().unwrap() {
            let line = format!(
                "\r\n{}: {}\r\n",
                h[0].as_str().unwrap(),
                h[1].as_str().unwrap()
            );
            assert!(text.contains(&line), "{name}: missing {line:?}");
        }
        if let Some(body) = req["body"].as_str() {
            assert!(text.ends_with(&format!("\r\n\r\n{body}")), "{name}");
        } else {
            assert!(text.ends_with("\r\n\r\n"), "{name}");
        }
    }

    #[test]
    fn recorded_trustee_exchanges() {
        let files = [
            (
                "p256-cookie",
                include_str!("../../../tests/vectors/trustee/p256-cookie.json"),
            ),
            (
                "p521-cookie",
                include_str!("../../../tests/vectors/trustee/p521-cookie.json"),
            ),
            (
                "rsa-oaep-256-bearer",
                include_str!("../../../tests/vectors/trustee/rsa-oaep-256-bearer.json"),
            ),
            (
                "binary-resource",
                include_str!("../../../tests/vectors/trustee/binary-resource.json"),
            ),
        ];
        let mut checked = 0;
        for (file, text) in files {
            let doc: serde_json::Value = serde_json::from_str(text).unwrap();
            for step in ["auth", "attest", "resource"] {
                check_exchange(&format!("{file}/{step}"), &doc[step]);
                checked += 1;
            }
        }
        let errors: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/vectors/trustee/errors.json"))
                .unwrap();
        for case in errors["errors"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            check_exchange(name, case);
            checked += 1;
            for (i, setup) in case["setup"].as_array().into_iter().flatten().enumerate() {
                check_exchange(&format!("{name}/setup{i}"), setup);
                checked += 1;
            }
        }
        assert!(checked >= 21, "only {checked} exchanges");
    }

    /// Mutated responses (deterministic pseudo-random bytes) never panic and never
    /// complete with a body larger than the limit.
    #[test]
    fn mutations_do_not_panic() {
        let seed: &[u8] =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
            Set-Cookie: kbs-session-id=abc; Expires=x\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\n";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let limits = Limits {
            max_body_bytes: 64,
            max_head_bytes: 256,
            max_headers: 8,
        };
        for _ in 0..3000 {
            let mut input = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[i] = next() as u8,
                    1 => {
                        input.remove(i);
                    }
                    _ => input.insert(i, b"\r\n:;0f "[(next() % 7) as usize]),
                }
            }
            let cut = (next() as usize) % (input.len() + 1);
            if let Outcome::Complete { body, .. } =
                run_parts(limits, &[&input[..cut], &input[cut..]], true)
            {
                assert!(body.len() <= 64);
            }
        }
    }
}
