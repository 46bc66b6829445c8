//! The ttrpc wire protocol (containerd ttrpc, as `ttrpc` 0.9.0 speaks it), sans-IO.
//!
//! A frame is a 10-byte header (`length u32 BE | stream_id u32 BE | type u8 | flags u8`)
//! and `length` bytes of payload. A unary call is one `Request` frame (type 1) from the
//! client on an odd stream id, answered by one `Response` frame (type 2) on the same id;
//! many calls share one connection and may be answered in any order. The payloads are the
//! protobuf envelopes below (proto package `grpc` in ttrpc's `ttrpc.proto`; the package
//! name is not on the wire), declared with ttrpc's field numbers and encoded with prost.
//!
//! [`FrameReader`] turns a byte stream into frames with a bounded buffer: a frame larger
//! than its limit is reported ([`Frame::Oversize`]) and its payload skipped as it arrives,
//! never stored, as ttrpc's server does (it answers INVALID_ARGUMENT and stays up).

use alloc::string::String;
use alloc::vec::Vec;
use prost::Message;

/// Header length in bytes.
pub const HEADER_LEN: usize = 10;
/// ttrpc's maximum payload (`MESSAGE_LENGTH_MAX`, 4 MiB).
pub const MESSAGE_LENGTH_MAX: usize = 4 << 20;
/// Frame type: a request.
pub const TYPE_REQUEST: u8 = 1;
/// Frame type: a response.
pub const TYPE_RESPONSE: u8 = 2;
/// Frame type: stream data (streaming calls only; sealgate serves none).
pub const TYPE_DATA: u8 = 3;

/// google.rpc status codes, as ttrpc uses them.
#[allow(missing_docs)]
pub mod code {
    pub const OK: i32 = 0;
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length.
    pub length: u32,
    /// Stream id (odd for client-initiated calls).
    pub stream_id: u32,
    /// Frame type ([`TYPE_REQUEST`], ...).
    pub kind: u8,
    /// Flags (0 for unary calls).
    pub flags: u8,
}

impl Header {
    /// Parses the 10 header bytes.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            kind: b[8],
            flags: b[9],
        }
    }

    /// The 10 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.length.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8] = self.kind;
        b[9] = self.flags;
        b
    }
}

/// What [`FrameReader::next_frame`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole frame.
    Whole(Header, Vec<u8>),
    /// A frame over the limit: its payload is being skipped.
    Oversize(Header),
}

/// Reassembles frames from a byte stream with bounded memory.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    skip: usize,
    max: usize,
}

impl FrameReader {
    /// A reader that accepts payloads up to `max` bytes.
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            skip: 0,
            max,
        }
    }

    /// How many more bytes the reader may buffer before a call to
    /// [`next_frame`](Self::next_frame) is due (reads should be no larger).
    pub fn room(&self) -> usize {
        (HEADER_LEN + self.max)
            .saturating_sub(self.buf.len())
            .max(1)
    }

    /// Bytes buffered (a partial frame).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Adds bytes read from the stream. Payload bytes of an oversize frame are dropped.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
    }

    /// The next frame, if a whole one (or an oversize header) is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            self.buf.drain(..n);
            self.skip -= n;
            if self.skip > 0 {
                return None;
            }
        }
        let head: &[u8; HEADER_LEN] = self.buf.get(..HEADER_LEN)?.try_into().ok()?;
        let header = Header::parse(head);
        let len = header.length as usize;
        if len > self.max {
            self.buf.drain(..HEADER_LEN);
            let n = len.min(self.buf.len());
            self.buf.drain(..n);
            self.skip = len - n;
            return Some(Frame::Oversize(header));
        }
        if self.buf.len() < HEADER_LEN + len {
            return None;
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Some(Frame::Whole(header, payload))
    }
}

/// Encodes one frame.
pub fn frame(stream_id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        length: payload.len() as u32,
        stream_id,
        kind,
        flags: 0,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(payload);
    out
}

/// `grpc.KeyValue`.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `grpc.Request`.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// Fully qualified service name, e.g. `api.SealedSecretService`.
    #[prost(string, tag = "1")]
    pub service: String,
    /// Method name, e.g. `UnsealSecret`.
    #[prost(string, tag = "2")]
    pub method: String,
    /// The encoded request message.
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    /// The client's deadline for the call in nanoseconds (0: none).
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
    /// Metadata (kata sends none).
    #[prost(message, repeated, tag = "5")]
    pub metadata: Vec<KeyValue>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// Type URL.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `grpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    /// A [`code`].
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A message for the operator (never a secret).
    #[prost(string, tag = "2")]
    pub message: String,
    /// Details (sealgate sends none).
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `grpc.Response`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    /// The status (absent decodes as OK).
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    /// The encoded reply message.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// A response frame with status OK and `payload`, built in one allocation of its exact
/// size (the payload may be a secret: the caller can zeroize the one copy).
pub fn ok_response(stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let status = Status {
        code: code::OK,
        message: String::new(),
        details: Vec::new(),
    };
    let status_len = prost::encoding::message::encoded_len(1, &status);
    let payload_len = if payload.is_empty() {
        0
    } else {
        prost::encoding::key_len(2)
            + prost::encoding::encoded_len_varint(payload.len() as u64)
            + payload.len()
    };
    let length = status_len + payload_len;
    let mut out = Vec::with_capacity(HEADER_LEN + length);
    out.extend_from_slice(
        &Header {
            length: length as u32,
            stream_id,
            kind: TYPE_RESPONSE,
            flags: 0,
        }
        .encode(),
    );
    prost::encoding::message::encode(1, &status, &mut out);
    if !payload.is_empty() {
        prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
    }
    debug_assert_eq!(out.len(), out.capacity());
    out
}

/// A response frame with an error status.
pub fn error_response(stream_id: u32, code: i32, message: &str) -> Vec<u8> {
    let response = Response {
        status: Some(Status {
            code,
            message: String::from(message),
            details: Vec::new(),
        }),
        payload: Vec::new(),
    };
    frame(stream_id, TYPE_RESPONSE, &response.encode_to_vec())
}

/// Decodes a request envelope.
pub fn decode_request(payload: &[u8]) -> Result<Request, prost::DecodeError> {
    Request::decode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn request_frame(id: u32, service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
        let r = Request {
            service: service.into(),
            method: method.into(),
            payload: payload.to_vec(),
            timeout_nano: 50_000_000_000,
            metadata: Vec::new(),
        };
        frame(id, TYPE_REQUEST, &r.encode_to_vec())
    }

    #[test]
    fn header_round_trip_and_byte_order() {
        let h = Header {
            length: 0x0102_0304,
            stream_id: 7,
            kind: TYPE_REQUEST,
            flags: 0,
        };
        assert_eq!(h.encode(), [1, 2, 3, 4, 0, 0, 0, 7, 1, 0]);
        assert_eq!(Header::parse(&h.encode()), h);
    }

    #[test]
    fn frames_arrive_byte_by_byte_and_back_to_back() {
        let mut wire = request_frame(1, "api.SealedSecretService", "UnsealSecret", b"x");
        wire.extend(request_frame(3, "a.B", "C", b""));
        let mut r = FrameReader::new(1024);
        let mut got = Vec::new();
        for b in &wire {
            r.feed(core::slice::from_ref(b));
            while let Some(f) = r.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 2);
        let Frame::Whole(h, p) = &got[0] else {
            panic!("{:?}", got[0])
        };
        assert_eq!((h.stream_id, h.kind), (1, TYPE_REQUEST));
        let req = decode_request(p).unwrap();
        assert_eq!(req.service, "api.SealedSecretService");
        assert_eq!(req.method, "UnsealSecret");
        assert_eq!(req.payload, b"x");
        assert_eq!(req.timeout_nano, 50_000_000_000);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn oversize_payload_is_skipped_not_stored() {
        let mut r = FrameReader::new(16);
        let big = frame(5, TYPE_REQUEST, &[0xAA; 100]);
        let next = request_frame(7, "a.B", "C", b"");
        r.feed(&big[..30]);
        assert_eq!(
            r.next_frame(),
            Some(Frame::Oversize(Header {
                length: 100,
                stream_id: 5,
                kind: TYPE_REQUEST,
                flags: 0
            }))
        );
        assert_eq!(r.buffered(), 0);
        r.feed(&big[30..]);
        assert_eq!(r.buffered(), 0);
        r.feed(&next);
        match r.next_frame() {
            Some(Frame::Whole(h, _)) => assert_eq!(h.stream_id, 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses_decode_with_status() {
        let f = error_response(9, code::UNIMPLEMENTED, "SecureMount is not supported");
        let h = Header::parse(f[..HEADER_LEN].try_into().unwrap());
        assert_eq!(
            (h.stream_id, h.kind, h.length as usize),
            (9, TYPE_RESPONSE, f.len() - 10)
        );
        let r = Response::decode(&f[HEADER_LEN..]).unwrap();
        let s = r.status.unwrap();
        assert_eq!(s.code, code::UNIMPLEMENTED);
        assert_eq!(s.message, "SecureMount is not supported");
        let f = ok_response(1, &[1, 2]);
        assert_eq!(f.len(), f.capacity());
        let r = Response::decode(&f[HEADER_LEN..]).unwrap();
        assert_eq!((r.status.unwrap().code, r.payload), (0, vec![1, 2]));
    }

    #[test]
    fn garbage_envelopes_are_errors() {
        assert!(decode_request(&[0xff, 0xff, 0xff]).is_err());
        // Field 1 (string) with invalid UTF-8.
        assert!(decode_request(&[0x0a, 0x01, 0xff]).is_err());
    }
}
