//! A freestanding `#![no_std]` program over the sealgate core and its TLS client.
//!
//! It defines its own panic handler, so if anything in the core's dependency tree pulled
//! in `std`, this crate would not compile (`duplicate lang item panic_impl`). Then it
//! runs real work (the binding digest and a JWE decryption of the kbs-protocol.md §5.4
//! vector) and reports the result through its exit status, with no std to lean on.
//! Edition 2021, so that `#[no_mangle]` is an ordinary attribute here; exporting `main`
//! for the C runtime to call is the only thing this harness needs beyond safe Rust.
#![no_std]
#![no_main]

extern crate alloc;

use sealgate_core::{jwe, rcar, teekey};

#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // No std means no abort(); spin so the harness's timeout reports the failure.
    loop {
        core::hint::spin_loop();
    }
}

// The precompiled `alloc` (built with unwinding) keeps landing pads that name these two
// symbols. With panic = "abort" nothing can unwind, so they are never called; they only
// have to exist for the link. (std would normally bring them.)
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

const JWE: &str = r#"{"protected":"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJWUTlIRUFQejM1ZkQzMUJxeDVmMmNoLXhvZnQ3ajItRDBpUkppbVhJamlRIiwieSI6IkUyQ1Qxd0V1VUpwemNWeTlDd0NqekFfMHRjQWJQX29aYXJIN01uQTJ1T1kifX0","encrypted_key":"GdbeMFf-Iy_kWUxENO8fTLpdGsso3kg6_SAhoGNbAemrahYLkS31ZQ","iv":"BAQEBAQEBAQEBAQE","ciphertext":"NE96vo33dD74NPQ7AiAZA_Qf_Qk3","tag":"eXNCnUs-7oqyYLShTJ6Ecw"}"#;

fn check() -> Result<(), i32> {
    let key =
        teekey::TeeKey::import_ec(teekey::KeyAlgorithm::EcdhP256, &[1u8; 32]).map_err(|_| 2)?;
    let challenge = rcar::parse_challenge(
        br#"{"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","extra-params":""}"#,
    )
    .map_err(|_| 3)?;
    let digest = rcar::binding_digest(&challenge, key.public_jwk(), "");
    // kbs-protocol.md §4.1: the report_data of the worked example.
    if sealgate_core::b64::std_encode(&digest)
        != "FJe0AynBBkcZt2VCpN4Kln3cRZjFlVFy1gVb8RSbtXdn+9iv7pEyJEHXO2gBPr8y"
    {
        return Err(4);
    }
    let plaintext = jwe::decrypt(&key, JWE.as_bytes()).map_err(|_| 5)?;
    if &plaintext[..] != b"this is a test secret" {
        return Err(6);
    }
    tls_check()
}

/// A self-signed P-256 certificate for kbs.example (its key was discarded).
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

/// The server's side of a TLS connection: it answers the ClientHello with a
/// handshake_failure alert.
struct AlertingServer {
    sent: usize,
    answered: bool,
}

impl embedded_io::ErrorType for AlertingServer {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for AlertingServer {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        const ALERT: [u8; 7] = [21, 3, 3, 0, 2, 2, 40];
        if self.answered || buf.len() < ALERT.len() {
            return Ok(0);
        }
        self.answered = true;
        buf[..ALERT.len()].copy_from_slice(&ALERT);
        Ok(ALERT.len())
    }
}

impl embedded_io::Write for AlertingServer {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.sent += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The TLS client without std: trust from PEM, the provider's ECDHE key shares in a real
/// ClientHello, the server's alert parsed into the right error. (The randomness is a fixed
/// pattern: this harness has no OS random source, and nothing here is secret.)
fn tls_check() -> Result<(), i32> {
    use sealgate_tls::{TlsClientConfig, TlsError, TlsStream, TlsTrust, UnixTime};
    let trust = TlsTrust::from_pem(CERT.as_bytes()).map_err(|_| 7)?;
    let config = TlsClientConfig::new(
        &trust,
        |buf| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
            Ok(())
        },
        // 2027-01-01T00:00:00Z
        || {
            Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
                1_798_761_600,
            )))
        },
    )
    .map_err(|_| 8)?;
    let mut server = AlertingServer {
        sent: 0,
        answered: false,
    };
    match TlsStream::connect(&config, "kbs.example", &mut server) {
        Err(TlsError::Protocol { .. }) => {}
        _ => return Err(9),
    }
    // A ClientHello (with its 65-byte P-256 key share) was sent.
    if server.sent < 150 {
        return Err(10);
    }
    Ok(())
}

#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match check() {
        Ok(()) => 0,
        Err(code) => code,
    }
}
