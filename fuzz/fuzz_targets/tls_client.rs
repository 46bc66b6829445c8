//! The TLS client (`sealgate_tls::TlsStream`) fed arbitrary bytes as the server's side of
//! the connection: record framing, every handshake message rustls parses before the
//! server proves its key (TLS 1.2 sends the certificate in the clear, so chain building,
//! the pin comparison and the validity parser are reached), alerts, and the adapter's
//! buffering. It must fail with an error, never panic, never loop.
//!
//! Input: byte 0 picks how the rest is cut into reads (1..=255 bytes, 0: all at once), the
//! rest is what the server sends. The client's randomness is fixed (so its ClientHello
//! is the same every run) and so is its clock; it trusts (and pins) one self-signed
//! `CA:true` certificate for kbs.example, whose DER the seeds carry.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealgate_tls::{TlsClientConfig, TlsStream, TlsTrust, UnixTime};

/// Self-signed P-256, CA:true, DNS:kbs.example, valid 2026-12-06 to 2126-11-12 (its key was
/// discarded).
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBnDCCAUGgAwIBAgIUH02+7XDL5NOorr19RPv2lt4Fx9swCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLa2JzLmV4YW1wbGUwIBcNMjYxMjA2MDkyNDA1WhgPMjEyNjEx
MTIwOTI0MDVaMBYxFDASBgNVBAMMC2ticy5leGFtcGxlMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEonxD21v1piqk0vTN9ZrxYk0alotzUQh4DkTEac0LfuQrB1h5
JUspDggVvM03cxhpjfbFPFgnlEOHr5U7kBataKNrMGkwHQYDVR0OBBYEFN9uZ+R8
ZPMuIHs1zOcfofI2cHpbMB8GA1UdIwQYMBaAFN9uZ+R8ZPMuIHs1zOcfofI2cHpb
MA8GA1UdEwEB/wQFMAMBAf8wFgYDVR0RBA8wDYILa2JzLmV4YW1wbGUwCgYIKoZI
zj0EAwIDSQAwRgIhAPVf/shVWpguLgbTAOB+PFHCjuD8c9Z3ARfa5Pv9TjnnAiEA
7spfRHeI6BqHcq4/McBJqwAnjn1Z3Elh9dyZ2d4RQ/g=
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

fn config() -> &'static TlsClientConfig {
    static CONFIG: OnceLock<TlsClientConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let trust = TlsTrust::from_pem(CERT.as_bytes()).unwrap();
        TlsClientConfig::new(&trust, rng, now).unwrap()
    })
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
    if let Ok(mut tls) = TlsStream::connect(config(), "kbs.example", server) {
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
