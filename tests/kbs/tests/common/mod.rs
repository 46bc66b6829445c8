//! Test helpers: a raw HTTP/1.1 client, a minimal RCAR client, tee keys with an independent
//! JWE decryption, and the recorded vectors.
#![allow(dead_code, reason = "each test file uses a different subset")]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use p256::elliptic_curve::sec1::ToSec1Point;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha384};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

// ------------------------------------------------------------------------------------------
// Vectors

pub fn vector(name: &str) -> Value {
    let path = format!("{}/../vectors/trustee/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("vector is JSON")
}

pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn b64url(bytes: &[u8]) -> String {
    sealgate_core::b64::url_encode(bytes)
}

pub fn b64url_dec(text: &str) -> Vec<u8> {
    sealgate_core::b64::url_decode(text).expect("base64url")
}

// ------------------------------------------------------------------------------------------
// Raw HTTP

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body came with Transfer-Encoding: chunked.
    pub chunked: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The `kbs-session-id` value of the Set-Cookie header.
    pub fn session_cookie(&self) -> String {
        let set = self.header("set-cookie").expect("set-cookie");
        let (pair, _) = set.split_once(';').expect("attributes");
        pair.strip_prefix("kbs-session-id=")
            .expect("cookie name")
            .to_owned()
    }
}

/// One client connection; requests on it reuse the connection (keep-alive).
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request with `Host`, the given headers, and `Content-Length` when there is a body.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<RawResponse> {
        self.send_raw(&encode_request(method, path, headers, body))?;
        self.read_response()
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<RawResponse> {
        self.request("GET", path, headers, None)
    }

    pub fn post_json(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<RawResponse> {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, Some(body.as_bytes()))
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn need(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-response",
                ));
            }
        }
        Ok(())
    }

    /// Reads one response (skipping 100 Continue).
    pub fn read_response(&mut self) -> io::Result<RawResponse> {
        loop {
            let response = self.read_one()?;
            if response.status != 100 {
                return Ok(response);
            }
        }
    }

    fn read_one(&mut self) -> io::Result<RawResponse> {
        let (head_len, status, headers) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect::<Vec<_>>();
                    break (len, parsed.code.unwrap_or(0), headers);
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            if self.buf.is_empty() {
                                "connection closed before a response"
                            } else {
                                "connection closed mid-head"
                            },
                        ));
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        };
        self.buf.drain(..head_len);
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut response = RawResponse {
            status,
            headers: headers.clone(),
            body: Vec::new(),
            chunked: false,
        };
        if status == 100 {
            return Ok(response);
        }
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            response.chunked = true;
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    if self.fill()? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "mid-chunk"));
                    }
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.trim(), 16)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                self.buf.drain(..line_end + 2);
                self.need(size + 2)?;
                if &self.buf[size..size + 2] != b"\r\n" {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "chunk CRLF"));
                }
                response.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(length) = find("content-length") {
            let length: usize = length
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.need(length)?;
            response.body = self.buf.drain(..length).collect();
        } else {
            while self.fill()? > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    /// Whether the server closed the connection (EOF within `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut byte = [0u8; 1];
        let closed = match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        closed
    }

    /// Everything the server sends until it closes.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }
}

pub fn encode_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    out
}

// ------------------------------------------------------------------------------------------
// Tee keys and an independent JWE decryption

pub enum TeeKey {
    P256(p256::SecretKey),
    P521(p521::SecretKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    /// Public JWK only (e.g. P-384, which the KBS cannot encrypt to).
    PublicOnly(Value),
}

fn os_fill(buf: &mut [u8]) {
    rustix::rand::getrandom(buf, rustix::rand::GetRandomFlags::empty()).expect("getrandom");
}

impl TeeKey {
    pub fn p256() -> TeeKey {
        use p256::elliptic_curve::Generate;
        TeeKey::P256(p256::SecretKey::generate_from_rng(
            &mut sealgate_core::rng::FillRng(os_fill),
        ))
    }

    pub fn p521() -> TeeKey {
        use p256::elliptic_curve::Generate;
        TeeKey::P521(p521::SecretKey::generate_from_rng(
            &mut sealgate_core::rng::FillRng(os_fill),
        ))
    }

    /// The recorded RSA-2048 key (key generation is slow in debug builds).
    pub fn rsa() -> TeeKey {
        use rsa::pkcs8::DecodePrivateKey;
        let v = vector("rsa-oaep-256-bearer.json");
        let pem = v["tee_key"]["private_key_pkcs8_pem"].as_str().expect("pem");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = sealgate_core::b64::std_decode(&b64).expect("PEM base64");
        TeeKey::Rsa(Box::new(
            rsa::RsaPrivateKey::from_pkcs8_der(&der).expect("PKCS#8"),
        ))
    }

    /// The JWK as the upstream client sends it (member order kty, crv, alg, x, y / kty, alg, n, e).
    pub fn jwk(&self) -> String {
        match self {
            TeeKey::P256(k) => {
                let p = k.public_key().to_sec1_point(false);
                format!(
                    r#"{{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"{}","y":"{}"}}"#,
                    b64url(p.x().expect("x")),
                    b64url(p.y().expect("y"))
                )
            }
            TeeKey::P521(k) => {
                let p = k.public_key().to_sec1_point(false);
                format!(
                    r#"{{"kty":"EC","crv":"P-521","alg":"ECDH-ES+A256KW","x":"{}","y":"{}"}}"#,
                    b64url(p.x().expect("x")),
                    b64url(p.y().expect("y"))
                )
            }
            TeeKey::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                format!(
                    r#"{{"kty":"RSA","alg":"RSA-OAEP-256","n":"{}","e":"{}"}}"#,
                    b64url(&k.n().to_be_bytes_trimmed_vartime()),
                    b64url(&k.e().to_be_bytes_trimmed_vartime())
                )
            }
            TeeKey::PublicOnly(v) => v.to_string(),
        }
    }

    /// Decrypts a flattened JWE written by the KBS (RFC 7516/7518, coded here from the RFCs).
    pub fn decrypt(&self, jwe_json: &[u8]) -> Vec<u8> {
        let jwe: Value = serde_json::from_slice(jwe_json).expect("JWE is JSON");
        let field = |name: &str| b64url_dec(jwe[name].as_str().expect(name));
        let protected = jwe["protected"].as_str().expect("protected");
        let header: Value = serde_json::from_slice(&b64url_dec(protected)).expect("header");
        assert_eq!(header["enc"], "A256GCM");
        let encrypted_key = field("encrypted_key");
        let cek: Vec<u8> = match self {
            TeeKey::P256(k) => {
                assert_eq!(header["alg"], "ECDH-ES+A256KW");
                assert_eq!(header["epk"]["crv"], "P-256");
                let epk = ec_point(&header["epk"]);
                let z = k
                    .diffie_hellman(&p256::PublicKey::from_sec1_bytes(&epk).expect("epk"))
                    .raw_secret_bytes()
                    .to_vec();
                aes_kw_unwrap(&kek(&z), &encrypted_key)
            }
            TeeKey::P521(k) => {
                assert_eq!(header["alg"], "ECDH-ES+A256KW");
                assert_eq!(header["epk"]["crv"], "P-521");
                let epk = ec_point(&header["epk"]);
                let z = k
                    .diffie_hellman(&p521::PublicKey::from_sec1_bytes(&epk).expect("epk"))
                    .raw_secret_bytes()
                    .to_vec();
                aes_kw_unwrap(&kek(&z), &encrypted_key)
            }
            TeeKey::Rsa(k) => {
                assert_eq!(header["alg"], "RSA-OAEP-256");
                k.decrypt(rsa::Oaep::<Sha256>::new(), &encrypted_key)
                    .expect("RSA-OAEP-256")
            }
            TeeKey::PublicOnly(_) => panic!("no private key"),
        };
        let cipher = Aes256Gcm::new_from_slice(&cek).expect("CEK length");
        let iv: [u8; 12] = field("iv").try_into().expect("12-byte IV");
        let tag: [u8; 16] = field("tag").try_into().expect("16-byte tag");
        let mut data = field("ciphertext");
        cipher
            .decrypt_inout_detached(
                &aes_gcm::Nonce::from(iv),
                protected.as_bytes(),
                data.as_mut_slice().into(),
                &tag.into(),
            )
            .expect("A256GCM tag");
        data
    }
}

/// Uncompressed SEC1 bytes of a JWK's x, y.
fn ec_point(jwk: &Value) -> Vec<u8> {
    let mut out = vec![4u8];
    out.extend(b64url_dec(jwk["x"].as_str().expect("x")));
    out.extend(b64url_dec(jwk["y"].as_str().expect("y")));
    out
}

/// RFC 7518 §4.6.2 Concat KDF for ECDH-ES+A256KW (SHA-256, one round, empty apu/apv).
fn kek(z: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0, 0, 0, 1]);
    h.update(z);
    h.update([0, 0, 0, 14]);
    h.update(b"ECDH-ES+A256KW");
    h.update([0u8; 8]);
    h.update([0, 0, 1, 0]);
    h.finalize().into()
}

fn aes_kw_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Vec<u8> {
    let kw = aes_kw::KwAes256::new_from_slice(kek).expect("KEK");
    let mut out = vec![0u8; wrapped.len() - 8];
    kw.unwrap_key(wrapped, &mut out).expect("AES-KW integrity");
    out
}

// ------------------------------------------------------------------------------------------
// RCAR

pub const AUTH_SAMPLE: &str = r#"{"version":"0.4.0","tee":"sample","extra-params":{"supported-hash-algorithms":["sha256","sha384","sha512","sm3"]}}"#;

/// RFC 8785 for the binding object, written out for this shape: members sorted, strings
/// escaped by serde_json (which escapes exactly what JCS escapes, in lower-case hex).
pub fn binding_jcs(jwk: &str, nonce: &str, additional: Option<&str>) -> String {
    let jwk: Map<String, Value> = serde_json::from_str(jwk).expect("JWK");
    let keep = ["alg", "crv", "e", "kty", "n", "x", "y"];
    let members: Vec<String> = keep
        .iter()
        .filter_map(|k| jwk.get(*k).map(|v| format!("\"{k}\":{v}")))
        .collect();
    let tee_pubkey = format!("{{{}}}", members.join(","));
    let nonce = Value::from(nonce);
    match additional {
        Some(a) => format!(
            r#"{{"additional-evidence":{},"nonce":{nonce},"tee-pubkey":{tee_pubkey}}}"#,
            Value::from(a)
        ),
        None => format!(r#"{{"nonce":{nonce},"tee-pubkey":{tee_pubkey}}}"#),
    }
}

pub fn report_data(jwk: &str, nonce: &str, additional: Option<&str>) -> String {
    sealgate_core::b64::std_encode(&Sha384::digest(
        binding_jcs(jwk, nonce, additional).as_bytes(),
    ))
}

/// An Attestation body with correctly bound sample evidence.
pub fn attestation(nonce: &str, jwk: &str) -> String {
    attestation_with(nonce, jwk, "", None)
}

pub fn attestation_with(
    nonce: &str,
    jwk: &str,
    additional: &str,
    init_data: Option<&str>,
) -> String {
    let evidence = json!({"svn": "1", "report_data": report_data(jwk, nonce, Some(additional))});
    let init_data = init_data.map_or(Value::Null, |body| json!({"format": "toml", "body": body}));
    format!(
        r#"{{"init-data":{init_data},"runtime-data":{{"nonce":{},"tee-pubkey":{jwk}}},"tee-evidence":{{"primary_evidence":{evidence},"additional_evidence":{}}}}}"#,
        Value::from(nonce),
        Value::from(additional)
    )
}

/// A session on the test KBS.
pub struct Session {
    pub cookie: String,
    pub nonce: String,
}

impl Session {
    pub fn cookie_header(&self) -> String {
        format!("kbs-session-id={}", self.cookie)
    }
}

pub fn auth(client: &mut Client) -> Session {
    let r = client
        .post_json("/kbs/v0/auth", &[], AUTH_SAMPLE)
        .expect("auth");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    Session {
        cookie: r.session_cookie(),
        nonce: r.json()["nonce"].as_str().expect("nonce").to_owned(),
    }
}

/// auth + attest with `key`; returns the session and the token.
pub fn attest(client: &mut Client, key: &TeeKey) -> (Session, String) {
    let session = auth(client);
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &attestation(&session.nonce, &key.jwk()),
        )
        .expect("attest");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.json()["token"].as_str().expect("token").to_owned();
    (session, token)
}

/// The JWT claims (no verification).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT");
    serde_json::from_slice(&b64url_dec(payload)).expect("claims")
}

/// Asserts a Trustee error response: status, exact body, no Content-Type.
pub fn assert_error(r: &RawResponse, status: u16, variant: &str, detail: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let type_uri = format!("https://github.com/confidential-containers/kbs/errors/{variant}");
    let expected = format!(
        r#"{{"type":{},"detail":{}}}"#,
        Value::from(type_uri),
        Value::from(detail)
    );
    assert_eq!(r.text(), expected);
    assert_eq!(
        r.header("content-type"),
        None,
        "error responses carry no Content-Type"
    );
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut bytes = [0u8; 8];
        os_fill(&mut bytes);
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("test-kbs-{tag}-{name}"));
        std::fs::create_dir_all(&path).expect("mkdir");
        TempDir(path)
    }

    pub fn write(&self, relative: &str, bytes: &[u8]) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
