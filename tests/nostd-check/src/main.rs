//! A freestanding `#![no_std]` program over the sealgate core.
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
    Ok(())
}

#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match check() {
        Ok(()) => 0,
        Err(code) => code,
    }
}
