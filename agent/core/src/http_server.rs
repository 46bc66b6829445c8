//! HTTP/1.1 server side, sans-IO: a bounded, incremental request parser and response
//! encoding, for the loopback REST API (`crate::rest`).
//!
//! A [`RequestParser`] holds the bytes a connection delivered ([`RequestParser::feed`],
//! never more than [`RequestParser::capacity`]) and hands out one request at a time
//! ([`RequestParser::next_request`]); bytes of a following (pipelined) request stay buffered
//! until the previous one was answered, so one connection never holds more than one head
//! ([`MAX_HEAD_BYTES`]) and one body ([`MAX_BODY_BYTES`]) of input.
//!
//! Request line and header fields are parsed by `httparse`; this module adds the framing
//! (RFC 9112 §6): a body is delimited by `Content-Length` only. A request with
//! `Transfer-Encoding` (chunked or any other coding) is refused with `411 Length Required`
//! (hyper, which upstream's api-server-rest uses, would accept chunked: every client of the
//! REST API (curl, Go, Python) sends `Content-Length` for the small JSON body of
//! `POST /aa/aael`). Differing `Content-Length` values, bad digits, oversized heads and
//! bodies are refused with the matching 4xx status, after which the connection closes.
//! `Expect: 100-continue` is answered with an interim `100 Continue` (curl sends it for
//! larger bodies). Keep-alive follows RFC 9112 §9.3: HTTP/1.1 persists unless
//! `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
//!
//! Response bodies may carry secrets (a token with its private key, a resource): encoded
//! responses are [`Zeroizing`], and no error message repeats a header value or body byte.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroizing;

/// Largest request head (request line, header fields, blank line), in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body, in bytes (`POST /aa/aael` is the only route that reads one).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most header fields in a request head.
pub const MAX_HEADERS: usize = 64;

/// A request whose head was parsed and whose body arrived whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method token as sent (methods are case-sensitive).
    pub method: String,
    /// The request target as sent (origin form `/path?query`, or absolute form).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// The body (`Content-Length` bytes; empty without that field).
    pub body: Vec<u8>,
}

impl Request {
    /// The path of the target: for the origin form everything before `?`; for the absolute
    /// form (`http://host/p?q`) the part after the authority (`/` when it is empty), as
    /// hyper's `Uri::path` gives it. Not percent-decoded.
    pub fn path(&self) -> &str {
        let without_query = self.target.split('?').next().unwrap_or("");
        if without_query.starts_with('/') {
            return without_query;
        }
        if let Some(scheme_end) = without_query.find("://") {
            let after = &without_query[scheme_end + 3..];
            return match after.find('/') {
                Some(slash) => &after[slash..],
                None => "/",
            };
        }
        without_query
    }

    /// The query of the target (after the first `?`), if any. Not decoded.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// Why a request was refused before it reached the router. Each maps to a status
/// ([`RequestError::status`]) and a short text body; the connection closes afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The request line or a header field is not HTTP/1.x syntax (what is wrong is named,
    /// the bytes are not repeated).
    Malformed(&'static str),
    /// Not HTTP/1.0 or HTTP/1.1.
    Version,
    /// The head is larger than [`MAX_HEAD_BYTES`] or has more than [`MAX_HEADERS`] fields.
    HeadTooLarge,
    /// `Content-Length` is larger than [`MAX_BODY_BYTES`].
    BodyTooLarge {
        /// The announced length.
        length: u64,
    },
    /// `Transfer-Encoding` was sent: only `Content-Length` bodies are accepted.
    TransferEncoding,
}

impl RequestError {
    /// The status the server answers with.
    pub fn status(self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::Version => 505,
            RequestError::HeadTooLarge => 431,
            RequestError::BodyTooLarge { .. } => 413,
            RequestError::TransferEncoding => 411,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(what) => write!(f, "malformed request: {what}"),
            RequestError::Version => f.write_str("only HTTP/1.0 and HTTP/1.1 are supported"),
            RequestError::HeadTooLarge => write!(
                f,
                "request head larger than {MAX_HEAD_BYTES} bytes or with more than {MAX_HEADERS} header fields"
            ),
            RequestError::BodyTooLarge { length } => write!(
                f,
                "request body of {length} bytes is larger than the limit of {MAX_BODY_BYTES} bytes"
            ),
            RequestError::TransferEncoding => f.write_str(
                "Transfer-Encoding (chunked) request bodies are not supported: send Content-Length",
            ),
        }
    }
}

/// What [`RequestParser::next_request`] found in the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No complete request yet: read more (up to [`RequestParser::capacity`]).
    NeedMore,
    /// The head asked for `100-continue` and its body has not arrived: write
    /// [`CONTINUE`], then read more. Reported once per request.
    Continue,
    /// A whole request; its bytes left the buffer.
    Request(Request),
}

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A parsed head waiting for its body.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    minor_version: u8,
    keep_alive: bool,
    /// Bytes of the head in the buffer.
    head_len: usize,
    body_len: usize,
    expect_continue: bool,
}

/// Incremental parser for the requests of one connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    buf: Vec<u8>,
    /// How far `buf` was searched for the end of the head.
    scanned: usize,
    head: Option<Head>,
    continue_sent: bool,
}

impl RequestParser {
    /// An empty parser.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Bytes buffered and not yet handed out as a request.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes [`feed`](Self::feed) accepts now: the room left for one head
    /// and one body. 0 means: stop reading until [`next_request`](Self::next_request) has
    /// handed out a request (or refused one, after which the connection closes).
    pub fn capacity(&self) -> usize {
        (MAX_HEAD_BYTES + MAX_BODY_BYTES).saturating_sub(self.buf.len())
    }

    /// Appends bytes read from the connection; anything beyond
    /// [`capacity`](Self::capacity) is dropped (a caller that honours the capacity never
    /// loses a byte).
    pub fn feed(&mut self, data: &[u8]) {
        let take = data.len().min(self.capacity());
        self.buf.extend_from_slice(&data[..take]);
    }

    /// Whether bytes of an unfinished request are buffered (a close now truncates it).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Looks for the next whole request in the buffer.
    pub fn next_request(&mut self) -> Result<Parsed, RequestError> {
        if self.head.is_none() {
            match self.parse_head()? {
                Some(head) => self.head = Some(head),
                None => return Ok(Parsed::NeedMore),
            }
        }
        let Some(head) = self.head.as_ref() else {
            return Ok(Parsed::NeedMore);
        };
        let total = head.head_len + head.body_len;
        if self.buf.len() < total {
            if head.expect_continue && !self.continue_sent && self.buf.len() == head.head_len {
                self.continue_sent = true;
                return Ok(Parsed::Continue);
            }
            return Ok(Parsed::NeedMore);
        }
        let Some(head) = self.head.take() else {
            return Ok(Parsed::NeedMore);
        };
        let body = self.buf[head.head_len..total].to_vec();
        self.buf.drain(..total);
        self.scanned = 0;
        self.continue_sent = false;
        Ok(Parsed::Request(Request {
            method: head.method,
            target: head.target,
            minor_version: head.minor_version,
            keep_alive: head.keep_alive,
            body,
        }))
    }

    /// Finds the end of the head (an empty line) in new bytes only, so that a head
    /// trickling in byte by byte costs linear, not quadratic, time.
    fn head_end_seen(&mut self) -> bool {
        let limit = self.buf.len().min(MAX_HEAD_BYTES + 4);
        let start = self.scanned.saturating_sub(3);
        let found = self.buf[start..limit].windows(2).any(|w| w == b"\n\n")
            || self.buf[start..limit].windows(3).any(|w| w == b"\n\r\n");
        self.scanned = limit;
        found
    }

    fn parse_head(&mut self) -> Result<Option<Head>, RequestError> {
        if !self.head_end_seen() {
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(RequestError::HeadTooLarge);
            }
            return Ok(None);
        }
        let mut slots = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut slots);
        let head_len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > MAX_HEAD_BYTES {
                    return Err(RequestError::HeadTooLarge);
                }
                return Ok(None);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
            Err(httparse::Error::Version) => return Err(RequestError::Version),
            Err(e) => return Err(RequestError::Malformed(httparse_reason(e))),
        };
        if head_len > MAX_HEAD_BYTES {
            return Err(RequestError::HeadTooLarge);
        }
        let method = parsed.method.ok_or(RequestError::Malformed("no method"))?;
        let target = parsed.path.ok_or(RequestError::Malformed("no target"))?;
        if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RequestError::Malformed(
                "request target is not printable ASCII",
            ));
        }
        let minor_version = parsed.version.ok_or(RequestError::Version)?;
        let mut content_length: Option<u64> = None;
        let mut close = false;
        let mut keep_alive_token = false;
        let mut expect_continue = false;
        for header in parsed.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(RequestError::TransferEncoding);
            } else if name.eq_ignore_ascii_case("content-length") {
                // A list "N, N" of equal values is allowed (RFC 9110 §8.6); anything
                // else ambiguous is refused.
                for part in header.value.split(|&b| b == b',') {
                    let value = parse_length(trim(part))?;
                    if content_length.is_some_and(|seen| seen != value) {
                        return Err(RequestError::Malformed("differing Content-Length values"));
                    }
                    content_length = Some(value);
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|&b| b == b',') {
                    let token = trim(token);
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive_token = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("expect") {
                expect_continue = trim(header.value).eq_ignore_ascii_case(b"100-continue");
            }
        }
        let length = content_length.unwrap_or(0);
        if length > MAX_BODY_BYTES as u64 {
            return Err(RequestError::BodyTooLarge { length });
        }
        let keep_alive = !close && (minor_version >= 1 || keep_alive_token);
        Ok(Some(Head {
            method: String::from(method),
            target: String::from(target),
            minor_version,
            keep_alive,
            head_len,
            body_len: length as usize,
            // Only HTTP/1.1 clients wait for 100 Continue (RFC 9110 §10.1.1).
            expect_continue: expect_continue && minor_version >= 1 && length > 0,
        }))
    }
}

fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn parse_length(digits: &[u8]) -> Result<u64, RequestError> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::Malformed(
            "Content-Length is not a decimal number",
        ));
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header field name",
        httparse::Error::HeaderValue => "invalid header field value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// A response before encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if any (upstream's error responses carry none).
    pub content_type: Option<&'static str>,
    /// The body; zeroed when dropped (tokens and resources are secrets).
    pub body: Zeroizing<Vec<u8>>,
}

impl Response {
    /// A response with a text body and no content type, as upstream's error responses.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: None,
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    /// A response with a body and a content type.
    pub fn with_type(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: Some(content_type),
            body: Zeroizing::new(body),
        }
    }

    /// The response's bytes on the wire. `head_only` leaves out the body (a `HEAD`
    /// request; `Content-Length` still gives its size). `keep_alive` false adds
    /// `Connection: close`; for an HTTP/1.0 client (`minor_version` 0) that keeps the
    /// connection, `Connection: keep-alive` is sent.
    pub fn encode(
        &self,
        minor_version: u8,
        keep_alive: bool,
        head_only: bool,
    ) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(128 + self.body.len()));
        let head = alloc::format!(
            "HTTP/1.1 {} {}\r\n{}{}content-length: {}\r\n\r\n",
            self.status,
            reason(self.status),
            match self.content_type {
                Some(t) => alloc::format!("content-type: {t}\r\n"),
                None => String::new(),
            },
            match (keep_alive, minor_version) {
                (false, _) => "connection: close\r\n",
                (true, 0) => "connection: keep-alive\r\n",
                (true, _) => "",
            },
            self.body.len()
        );
        out.extend_from_slice(head.as_bytes());
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn one(bytes: &[u8]) -> Result<Parsed, RequestError> {
        let mut p = RequestParser::new();
        p.feed(bytes);
        p.next_request()
    }

    fn request(bytes: &[u8]) -> Request {
        match one(bytes) {
            Ok(Parsed::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn get_without_body() {
        let r = request(b"GET /aa/token?token_type=kbs HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/aa/token");
        assert_eq!(r.query(), Some("token_type=kbs"));
        assert!(r.keep_alive);
        assert!(r.body.is_empty());
    }

    #[test]
    fn absolute_form_path() {
        let r = request(b"GET http://127.0.0.1:8006/info?x HTTP/1.1\r\n\r\n");
        assert_eq!(r.path(), "/info");
        assert_eq!(r.query(), Some("x"));
        let r = request(b"GET http://127.0.0.1:8006 HTTP/1.1\r\n\r\n");
        assert_eq!(r.path(), "/");
        let r = request(b"GET /cdh/resource/http://x/y HTTP/1.1\r\n\r\n");
        assert_eq!(r.path(), "/cdh/resource/http://x/y");
    }

    #[test]
    fn body_by_content_length_byte_by_byte() {
        let wire =
            b"POST /aa/aael HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /info HTTP/1.1\r\n\r\n";
        let mut p = RequestParser::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            p.feed(core::slice::from_ref(b));
            while let Parsed::Request(r) = p.next_request().unwrap() {
                got.push(r);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, b"hello");
        assert_eq!(got[1].path(), "/info");
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn pipelined_requests_come_one_at_a_time() {
        let mut p = RequestParser::new();
        p.feed(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c");
        let Parsed::Request(a) = p.next_request().unwrap() else {
            panic!()
        };
        assert_eq!(a.target, "/a");
        let Parsed::Request(b) = p.next_request().unwrap() else {
            panic!()
        };
        assert_eq!(b.target, "/b");
        assert_eq!(p.next_request().unwrap(), Parsed::NeedMore);
        assert!(p.has_partial());
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!request(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!request(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert_eq!(request(b"GET / HTTP/1.0\r\n\r\n").minor_version, 0);
    }

    #[test]
    fn expect_continue_once() {
        let mut p = RequestParser::new();
        p.feed(b"POST /aa/aael HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(p.next_request().unwrap(), Parsed::Continue);
        assert_eq!(p.next_request().unwrap(), Parsed::NeedMore);
        p.feed(b"{}");
        let Parsed::Request(r) = p.next_request().unwrap() else {
            panic!()
        };
        assert_eq!(r.body, b"{}");
        // Body already there: no interim response.
        let mut p = RequestParser::new();
        p.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}");
        assert!(matches!(p.next_request().unwrap(), Parsed::Request(_)));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            Err(RequestError::TransferEncoding)
        );
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"),
            Err(RequestError::BodyTooLarge { length: 65537 })
        );
        assert!(matches!(
            one(b"POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\n"),
            Ok(Parsed::NeedMore)
        ));
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(RequestError::Malformed("differing Content-Length values"))
        );
        assert!(matches!(
            one(b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab"),
            Ok(Parsed::Request(_))
        ));
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"),
            Err(RequestError::Malformed(
                "Content-Length is not a decimal number"
            ))
        );
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Err(RequestError::Malformed(
                "Content-Length is not a decimal number"
            ))
        );
        assert_eq!(one(b"GET / HTTP/2.0\r\n\r\n"), Err(RequestError::Version));
        assert!(matches!(
            one(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        for e in [
            RequestError::TransferEncoding,
            RequestError::HeadTooLarge,
            RequestError::Version,
            RequestError::BodyTooLarge { length: 1 },
            RequestError::Malformed("x"),
        ] {
            assert!((400..=505).contains(&e.status()));
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn head_bound() {
        let mut p = RequestParser::new();
        p.feed(b"GET / HTTP/1.1\r\n");
        let filler = vec![b'a'; 100];
        let mut result = Ok(Parsed::NeedMore);
        for _ in 0..200 {
            p.feed(b"X-Filler: ");
            p.feed(&filler);
            p.feed(b"\r\n");
            result = p.next_request();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(RequestError::HeadTooLarge));
        // A head without any line end is refused at the bound too.
        let mut p = RequestParser::new();
        p.feed(&vec![b'G'; MAX_HEAD_BYTES + 1]);
        assert_eq!(p.next_request(), Err(RequestError::HeadTooLarge));
        // Too many fields.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(one(&many), Err(RequestError::HeadTooLarge));
    }

    #[test]
    fn capacity_bounds_buffering() {
        let mut p = RequestParser::new();
        assert_eq!(p.capacity(), MAX_HEAD_BYTES + MAX_BODY_BYTES);
        p.feed(&vec![b'x'; MAX_HEAD_BYTES + MAX_BODY_BYTES + 10]);
        assert_eq!(p.buffered(), MAX_HEAD_BYTES + MAX_BODY_BYTES);
        assert_eq!(p.capacity(), 0);
    }

    #[test]
    fn encoding() {
        let r = Response::with_type(200, "application/json", b"{}".to_vec());
        assert_eq!(
            &r.encode(1, true, false)[..],
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        let r = Response::text(404, "URL NOT FOUND");
        assert_eq!(
            &r.encode(0, false, false)[..],
            b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 13\r\n\r\nURL NOT FOUND"
        );
        assert_eq!(
            &r.encode(0, true, true)[..],
            b"HTTP/1.1 404 Not Found\r\nconnection: keep-alive\r\ncontent-length: 13\r\n\r\n"
        );
    }
}
