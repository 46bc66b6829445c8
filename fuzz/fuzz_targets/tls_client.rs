//! The TLS client (`sealgate_tls::TlsStream`) fed arbitrary bytes as the server's side of
//! the connection: record framing, every handshake message rustls parses before the
//! server proves its key (TLS 1.2 sends the certificate in the clear, so chain building,
//! the pin comparison and the validity parser are reached), alerts, and the adapter's
//! buffering. It must fail with an error, never panic, never loop.
//!
//! Input: byte 0 picks how the rest is cut into reads (1..=255 bytes, 0: all at once), the
//! rest is what the server sends. The client's randomness is fixed (so its ClientHello
//! is the same every run) and so is its clock; it trusts (and pins) one self-signed
//! `CA:true` certificate for kbs.example, whose DER the seeds carry, and with whose key two
//! real sessions (TLS 1.3 and 1.2, a request and its answer) were recorded as seeds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealgate_tls::{TlsClientConfig, TlsStream, TlsTrust, UnixTime};

/// Self-signed P-256, CA:true, DNS:kbs.example, valid 2026-12-06 to 2126-11-12. Its key is
/// not in the repository; the recorded sessions among the seeds (fuzz/seed) were made with
/// it, so replaying one completes the handshake and the fuzzer mutates a live connection.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUEGkkjOgh7e9JkM91NqxkFbK/reMwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLa2JzLmV4YW1wbGUwIBcNMjYxMjA2MTAwODMyWhgPMjEyNjEx
MTIxMDA4MzJaMBYxFDASBgNVBAMMC2ticy5leGFtcGxlMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEd7+BIrttfwOztqW8XaZEoqM4Jd7UfWpo4EQD2T5ec9aFf+8e
+bq9RrHpNzSy4ke0j+S2iyD0E64vT6EsSgyNQaNrMGkwHQYDVR0OBBYEFElKFPTs
rIR1qnPZ1D1OcFY/+kQpMB8GA1UdIwQYMBaAFElKFPTsrIR1qnPZ1D1OcFY/+kQp
MA8GA1UdEwEB/wQFMAMBAf8wFgYDVR0RBA8wDYILa2JzLmV4YW1wbGUwCgYIKoZI
zj0EAwIDRwAwRAIgDqIaA3PPNmcAg7HMglm3neBqmoxMltV+MSPzavn78noCIFdC
O8Cgo1Vj1zx204Fky/oU0CM73bBVXwXMwIhL7yrd
-----END CERTIFICATE-----
";

fn rng(buf: &mut [u8]) -> Result<(), ()> {
    buf.fill(0x5a);
    Ok(())
}

/// 2027-01-01T00:00:00Z.
fn now() -> Option<UnixTime> {
    Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        1_798_761_600,
    )))
}

/// A new configuration each run: a shared one would keep session tickets from earlier
/// runs, change the ClientHello and make runs depend on each other.
fn config() -> TlsClientConfig {
    static TRUST: OnceLock<TlsTrust> = OnceLock::new();
    let trust = TRUST.get_or_init(|| TlsTrust::from_pem(CERT.as_bytes()).unwrap());
    TlsClientConfig::new(trust, rng, now).unwrap()
}

/// The server's side: reads return the input in `stride`-byte pieces, then the end of the
/// stream; writes are accepted and dropped.
struct Server<'a> {
    data: &'a [u8],
    stride: usize,
}

impl embedded_io::ErrorType for Server<'_> {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Server<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.stride).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl embedded_io::Write for Server<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&stride, stream)) = data.split_first() else {
        return;
    };
    let stride = if stride == 0 {
        stream.len().max(1)
    } else {
        stride as usize
    };
    let server = Server {
        data: stream,
        stride,
    };
    // Without the server's key no handshake can complete; if one ever did, the stream
    // must still behave.
    if let Ok(mut tls) = TlsStream::connect(&config(), "kbs.example", server) {
        use embedded_io::{Read, Write};
        let _ = tls.write_all(b"GET / HTTP/1.1\r\n\r\n");
        let mut buf = [0u8; 512];
        while let Ok(n) = tls.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        tls.close();
    }
});
