//! Just enough HTTP/1.1 for the KBS, with actix-web's defaults where they matter:
//! persistent connections with an idle keep-alive timeout (5 s), a bounded request head
//! (64 KiB → 431) and body (2 MiB → 413, no JSON body), `Content-Length` request bodies
//! (`Transfer-Encoding` on a request → 501), `Expect: 100-continue` honoured.
//!
//! Responses are written with `Content-Length`, or with `Transfer-Encoding: chunked` split into
//! chunks of growing size (1, 7, 64, 512, then 4096 bytes) so that clients' chunk decoding
//! is exercised. Header order follows actix: length, the handler's headers, `date`.

use crate::tls::Stream;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

/// Request size limits and the idle timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub head: usize,
    pub body: usize,
    pub idle: Duration,
}

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// The path part of the request target (before `?`), not percent-decoded.
    pub path: String,
    /// The whole request target, query included (what a proxy forwards).
    pub target: String,
    pub http10: bool,
    /// Lower-case names, raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Every value of header `name` (lower case).
    pub(crate) fn headers<'a>(&'a self, name: &'static str) -> impl Iterator<Item = &'a [u8]> + 'a {
        values(&self.headers, name)
    }

    /// The first value of header `name` (lower case).
    pub(crate) fn header(&self, name: &'static str) -> Option<&[u8]> {
        self.headers(name).next()
    }

    /// Whether the client allows another request on this connection.
    pub(crate) fn keep_alive(&self) -> bool {
        let tokens = |wanted: &str| {
            self.headers("connection").any(|v| {
                v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(wanted.as_bytes()))
            })
        };
        if self.http10 {
            tokens("keep-alive")
        } else {
            !tokens("close")
        }
    }
}

fn values<'a>(
    headers: &'a [(String, Vec<u8>)],
    name: &'static str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Why no request came out of the connection.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// EOF, reset or idle timeout before the first byte of a request: close quietly.
    Idle,
    /// The connection broke in the middle of a request.
    Broken,
    /// A started request did not complete in time: 408.
    Timeout,
    /// Not HTTP/1.x: 400.
    Malformed,
    /// Head over the limit or too many headers: 431.
    HeadTooLarge,
    /// Declared body over the limit: 413.
    BodyTooLarge,
    /// A request body with `Transfer-Encoding`: 501.
    Unsupported,
}

impl ReadError {
    /// The status to answer with before closing, if any.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ReadError::Idle | ReadError::Broken => None,
            ReadError::Timeout => Some(408),
            ReadError::Malformed => Some(400),
            ReadError::HeadTooLarge => Some(431),
            ReadError::BodyTooLarge => Some(413),
            ReadError::Unsupported => Some(501),
        }
    }
}

/// A server-side connection with its read buffer (pipelined bytes stay for the next request).
pub(crate) struct Connection {
    pub stream: Stream,
    buf: Vec<u8>,
}

const MAX_HEADERS: usize = 96;

struct Head {
    len: usize,
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, Vec<u8>)>,
}

impl Connection {
    pub(crate) fn new(stream: Stream) -> Self {
        Connection {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `Ok(false)` on EOF.
    fn fill(&mut self, idle: Duration) -> io::Result<bool> {
        self.stream.tcp().set_read_timeout(Some(idle))?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn parse_head(&self, limits: &Limits) -> Result<Option<Head>, ReadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) if len <= limits.head => Ok(Some(Head {
                len,
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                http10: req.version == Some(0),
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect(),
            })),
            Ok(httparse::Status::Complete(_)) => Err(ReadError::HeadTooLarge),
            Ok(httparse::Status::Partial) if self.buf.len() > limits.head => {
                Err(ReadError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(httparse::Error::TooManyHeaders) => Err(ReadError::HeadTooLarge),
            Err(_) => Err(ReadError::Malformed),
        }
    }

    /// Reads the next request.
    pub(crate) fn read_request(&mut self, limits: &Limits) -> Result<Request, ReadError> {
        let head = loop {
            if !self.buf.is_empty()
                && let Some(head) = self.parse_head(limits)?
            {
                break head;
            }
            let started = !self.buf.is_empty();
            match self.fill(limits.idle) {
                Ok(true) => {}
                Ok(false) if started => return Err(ReadError::Broken),
                Err(e) if started && is_timeout(&e) => return Err(ReadError::Timeout),
                Err(_) if started => return Err(ReadError::Broken),
                Ok(false) | Err(_) => return Err(ReadError::Idle),
            }
        };
        if values(&head.headers, "transfer-encoding").next().is_some() {
            return Err(ReadError::Unsupported);
        }
        let mut length: Option<u64> = None;
        for value in values(&head.headers, "content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(ReadError::Malformed)?;
            if length.is_some_and(|l| l != parsed) {
                return Err(ReadError::Malformed);
            }
            length = Some(parsed);
        }
        let length = length.unwrap_or(0);
        if length > limits.body as u64 {
            return Err(ReadError::BodyTooLarge);
        }
        let need = head.len + length as usize;
        let expects_continue =
            values(&head.headers, "expect").any(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects_continue && length > 0 && self.buf.len() < need && !head.http10 {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Broken)?;
        }
        while self.buf.len() < need {
            match self.fill(limits.idle) {
                Ok(true) => {}
                Err(e) if is_timeout(&e) => return Err(ReadError::Timeout),
                Ok(false) | Err(_) => return Err(ReadError::Broken),
            }
        }
        let body = self.buf[head.len..need].to_vec();
        self.buf.drain(..need);
        let path = head
            .target
            .split_once('?')
            .map_or(head.target.as_str(), |(p, _)| p)
            .to_owned();
        Ok(Request {
            method: head.method,
            path,
            target: head.target,
            http10: head.http10,
            headers: head.headers,
            body,
        })
    }

    /// Says nothing and keeps the connection open until the client closes it (or the
    /// server shuts it down when it stops); what the client sends meanwhile is discarded.
    pub(crate) fn hold_until_closed(&mut self) {
        let _ = self.stream.tcp().set_read_timeout(None);
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }

    /// Writes `bytes`, then closes the connection cleanly (FIN).
    pub(crate) fn write_and_close(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
        self.stream.shutdown_write();
        // Drain what the client may still send so that closing does not turn into a reset
        // that could destroy the bytes just written before the client reads them.
        let _ = self
            .stream
            .tcp()
            .set_read_timeout(Some(Duration::from_millis(200)));
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }

    /// Resets the connection: SO_LINGER 0, then close, so the client sees ECONNRESET.
    pub(crate) fn reset(self) {
        let _ = rustix::net::sockopt::set_socket_linger(self.stream.tcp(), Some(Duration::ZERO));
        drop(self.stream);
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A response before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// Headers other than framing, `connection` and `date`, in order.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length,
    Chunked,
}

impl Response {
    pub(crate) fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A 200 with `content-type: application/json`.
    pub(crate) fn json(body: impl Into<Vec<u8>>) -> Self {
        Response::new(200)
            .header("content-type", "application/json")
            .body(body)
    }

    /// The head, ending with the blank line.
    pub(crate) fn head(&self, framing: Framing, length: u64, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        match framing {
            Framing::Length => head.push_str(&format!("content-length: {length}\r\n")),
            Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str(&format!(
            "date: {}\r\n\r\n",
            crate::httpdate::format(SystemTime::now())
        ));
        head.into_bytes()
    }

    /// The body as it goes on the wire.
    pub(crate) fn wire_body(&self, framing: Framing) -> Vec<u8> {
        match framing {
            Framing::Length => self.body.clone(),
            Framing::Chunked => {
                let mut out = Vec::with_capacity(self.body.len() + 64);
                let mut rest = self.body.as_slice();
                for size in [1usize, 7, 64, 512]
                    .into_iter()
                    .chain(std::iter::repeat(4096))
                {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, tail) = rest.split_at(size.min(rest.len()));
                    out.extend_from_slice(&chunk_frame(chunk));
                    rest = tail;
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
        }
    }

    /// Head and body, ready to write.
    pub(crate) fn encode(&self, framing: Framing, close: bool) -> (Vec<u8>, Vec<u8>) {
        (
            self.head(framing, self.body.len() as u64, close),
            self.wire_body(framing),
        )
    }
}

/// One chunk: `<hex size>\r\n<data>\r\n`.
pub(crate) fn chunk_frame(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The reason phrase (as actix sends them).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_splits_in_growing_sizes() {
        let body: Vec<u8> = (0..600u16).map(|i| i as u8).collect();
        let wire = Response::json(body.clone()).wire_body(Framing::Chunked);
        let mut expected = Vec::new();
        for range in [0..1, 1..8, 8..72, 72..584, 584..600] {
            expected.extend_from_slice(&chunk_frame(&body[range]));
        }
        expected.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(wire, expected);
        assert_eq!(Response::new(200).wire_body(Framing::Chunked), b"0\r\n\r\n");
    }

    #[test]
    fn head_layout() {
        let head = Response::json("{}")
            .header("x-extra", "1")
            .head(Framing::Length, 2, true);
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\nx-extra: 1\r\nconnection: close\r\ndate: "
        ));
        assert!(head.ends_with(" GMT\r\n\r\n"));
    }
}
