//! `serve-check` (as argv\[0\], the next stage of a serve boot): the guest-side client of
//! sealgate's server mode. It starts `/sbin/sealgate serve` (the image's config file names
//! the KBS and the TEE), waits for the CDH socket as the kata agent does (polling for the
//! path), then:
//! - unseals the sealed value in `/etc/sealed-env` over ttrpc
//!   (`api.SealedSecretService/UnsealSecret`, framing and messages from `sealgate-core`);
//! - fetches `/cdh/resource/default/app/key2` over REST on 127.0.0.1:8006;
//!
//! and prints `SERVE-CHECK` lines (sizes and SHA-256 of what it got, never the values),
//! then powers off.

use prost::Message;
use sealgate_core::proto::cdh;
use sealgate_core::ttrpc::{self, Frame, FrameReader};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CDH_SOCKET: &str = "/run/confidential-containers/cdh.sock";

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unseal(sealed: &str) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(CDH_SOCKET).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let req = ttrpc::Request {
        service: cdh::SEALED_SECRET_SERVICE.into(),
        method: "UnsealSecret".into(),
        payload: cdh::UnsealSecretInput {
            secret: sealed.as_bytes().to_vec(),
        }
        .encode_to_vec(),
        timeout_nano: 50_000_000_000,
        metadata: Vec::new(),
    };
    s.write_all(&ttrpc::frame(1, ttrpc::TYPE_REQUEST, &req.encode_to_vec()))
        .map_err(|e| format!("write: {e}"))?;
    let mut reader = FrameReader::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        reader.feed(&buf[..n]);
        if let Some(Frame::Whole(_, payload)) = reader.next_frame() {
            let r = ttrpc::Response::decode(&payload[..]).map_err(|e| e.to_string())?;
            let status = r.status.unwrap_or_default();
            if status.code != 0 {
                return Err(format!("status {}: {}", status.code, status.message));
            }
            return cdh::UnsealSecretOutput::decode(&r.payload[..])
                .map(|o| o.plaintext)
                .map_err(|e| e.to_string());
        }
    }
}

fn rest_get(path: &str) -> Result<(String, Vec<u8>), String> {
    let mut s = std::net::TcpStream::connect("127.0.0.1:8006").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap_or("").to_string();
    Ok((status, out[split + 4..].to_vec()))
}

/// Runs the check; returns whether everything worked.
pub fn run() -> bool {
    let started = Instant::now();
    let mut child = match Command::new("/sbin/sealgate")
        .args(["serve", "--features", "all"])
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SERVE-CHECK FAILED: cannot start sealgate serve: {e}");
            return false;
        }
    };
    while !std::path::Path::new(CDH_SOCKET).exists() {
        if let Ok(Some(st)) = child.try_wait() {
            eprintln!("SERVE-CHECK FAILED: sealgate serve exited ({st})");
            return false;
        }
        if started.elapsed() > Duration::from_secs(60) {
            eprintln!("SERVE-CHECK FAILED: {CDH_SOCKET} never appeared");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "SERVE-CHECK socket after {} ms",
        started.elapsed().as_millis()
    );
    let mut ok = true;
    let sealed = std::fs::read_to_string("/etc/sealed-env").unwrap_or_default();
    let t = Instant::now();
    match unseal(sealed.trim()) {
        Ok(p) => println!(
            "SERVE-CHECK unseal size={} sha256={} us={}",
            p.len(),
            sha256_hex(&p),
            t.elapsed().as_micros()
        ),
        Err(e) => {
            println!("SERVE-CHECK FAILED: UnsealSecret: {e}");
            ok = false;
        }
    }
    let t = Instant::now();
    match rest_get("/cdh/resource/default/app/key2") {
        Ok((status, body)) => println!(
            "SERVE-CHECK rest status={status} size={} sha256={} us={}",
            body.len(),
            sha256_hex(&body),
            t.elapsed().as_micros()
        ),
        Err(e) => {
            println!("SERVE-CHECK FAILED: REST: {e}");
            ok = false;
        }
    }
    let _ = child.kill();
    println!("SERVE-CHECK done {}", if ok { "ok" } else { "failed" });
    let _ = std::io::stdout().flush();
    ok
}
