//! The exchanges recorded from a live Trustee KBS (`tests/vectors/trustee/`), replayed
//! offline: our JWK, canonical JSON, digest, evidence and attestation body must equal what
//! the real server accepted, byte for byte, and our JWE decryption must recover the
//! recorded plaintexts with the recorded keys.

use crate::jwe::{self, JweError};
use crate::rcar::{self, KbsError, SampleEvidence};
#[cfg(feature = "rsa")]
use crate::teekey::Secret;
use crate::teekey::{KeyAlgorithm, TeeKey};
use crate::{b64, jcs};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;
use std::path::PathBuf;

pub(crate) fn vector(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors/trustee")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing {pointer}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| std::format!("{b:02x}")).collect()
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// Rebuilds the recorded tee key from its private material.
pub(crate) fn recorded_key(v: &Value) -> TeeKey {
    let key = &v["tee_key"];
    match s(key, "/kty") {
        "EC" => {
            let d = unhex(s(key, "/private_scalar_hex"));
            match s(key, "/crv") {
                "P-256" => TeeKey::import_ec(KeyAlgorithm::EcdhP256, &d).unwrap(),
                #[cfg(feature = "p521")]
                "P-521" => TeeKey::import_ec(KeyAlgorithm::EcdhP521, &d).unwrap(),
                other => panic!("curve {other}"),
            }
        }
        #[cfg(feature = "rsa")]
        "RSA" => {
            use rsa::pkcs8::DecodePrivateKey;
            let pem = s(key, "/private_key_pkcs8_pem");
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = b64::std_decode(&body).unwrap();
            let k = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
            TeeKey::from_secret(Secret::Rsa(alloc::boxed::Box::new(k)))
        }
        other => panic!("kty {other}"),
    }
}

/// The recorded exchanges whose tee-key algorithm this build contains (P-521 and RSA are
/// cargo features; a P-256-only build checks what it has).
pub(crate) const EXCHANGES: &[&str] = &[
    "p256-cookie.json",
    #[cfg(feature = "p521")]
    "p521-cookie.json",
    #[cfg(feature = "rsa")]
    "rsa-oaep-256-bearer.json",
    "binary-resource.json",
];

#[test]
fn algorithms_left_out_of_the_build_are_refused_by_name() {
    use crate::teekey::KeyError;
    let p521 = KeyAlgorithm::parse("ECDH-ES+A256KW-P521");
    let rsa = KeyAlgorithm::parse("RSA-OAEP-256");
    if cfg!(feature = "p521") {
        assert!(p521.is_ok());
    } else {
        assert_eq!(p521, Err(KeyError::NotBuiltIn("P-521")));
    }
    if cfg!(feature = "rsa") {
        assert!(rsa.is_ok());
    } else {
        assert_eq!(rsa, Err(KeyError::NotBuiltIn("RSA-OAEP-256")));
    }
}

#[test]
fn recorded_exchanges_reproduce_byte_for_byte() {
    for name in EXCHANGES {
        let v = vector(name);
        let key = recorded_key(&v);

        // Our tee-pubkey JWK is exactly what was sent (members and order).
        let jwk = serde_json::to_string(key.public_jwk()).unwrap();
        assert_eq!(
            jwk,
            s(&v, "/tee_key/public_jwk_json_as_sent"),
            "{name}: jwk"
        );

        // The auth body we send is accepted by the same rules (version, tee).
        let auth: Value = serde_json::from_str(&rcar::auth_body(rcar::Tee::Sample)).unwrap();
        let recorded_auth: Value = serde_json::from_str(s(&v, "/auth/request/body")).unwrap();
        assert_eq!(auth["version"], recorded_auth["version"]);
        assert_eq!(auth["tee"], recorded_auth["tee"]);

        // Challenge parsing: nonce verbatim, extra-params "" -> sha384.
        let challenge = rcar::parse_challenge(s(&v, "/auth/response/body").as_bytes()).unwrap();
        assert_eq!(challenge.nonce, s(&v, "/auth/nonce"), "{name}: nonce");
        assert_eq!(challenge.hash, rcar::HashAlgorithm::Sha384);

        // The runtime-data binding: JCS and SHA-384.
        let canonical = jcs::to_string(&rcar::runtime_data(&challenge.nonce, key.public_jwk(), ""));
        assert_eq!(canonical, s(&v, "/runtime_data_binding/jcs"), "{name}: jcs");
        let digest = rcar::binding_digest(&challenge, key.public_jwk(), "");
        assert_eq!(
            hex(&digest),
            s(&v, "/runtime_data_binding/sha384_hex"),
            "{name}: digest"
        );

        // The sample evidence and the whole attestation body, byte for byte.
        let evidence = SampleEvidence::new(&digest);
        assert_eq!(
            evidence.report_data,
            s(&v, "/runtime_data_binding/report_data_b64_as_sent")
        );
        let body = rcar::attest_body(&challenge, key.public_jwk(), &evidence, "", None);
        assert_eq!(body, s(&v, "/attest/request/body"), "{name}: attest body");

        // The token.
        let token = rcar::parse_token(s(&v, "/attest/response/body").as_bytes()).unwrap();
        assert_eq!(token, s(&v, "/attest/token"));

        // The JWE: the intermediate KEK where recorded, then the plaintext.
        if let Some(z) = v
            .pointer("/resource/jwe_decoded/ecdh_shared_secret_z_hex")
            .and_then(Value::as_str)
        {
            let kek = jwe::concat_kdf_a256kw(&unhex(z));
            assert_eq!(
                hex(kek.as_ref()),
                s(&v, "/resource/jwe_decoded/kek_hex"),
                "{name}: kek"
            );
        }
        let plaintext = jwe::decrypt(&key, s(&v, "/resource/response/body").as_bytes()).unwrap();
        assert_eq!(
            hex(&plaintext),
            s(&v, "/expected_plaintext/hex"),
            "{name}: plaintext"
        );
    }
}

#[test]
fn init_data_is_serialized_as_upstream() {
    let v = vector("p256-cookie.json");
    let key = recorded_key(&v);
    let challenge = rcar::parse_challenge(s(&v, "/auth/response/body").as_bytes()).unwrap();
    let evidence = SampleEvidence::new(&rcar::binding_digest(&challenge, key.public_jwk(), ""));
    let toml = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n";
    let body = rcar::attest_body(&challenge, key.public_jwk(), &evidence, "", Some(toml));
    assert!(body.starts_with(
        "{\"init-data\":{\"format\":\"toml\",\"body\":\"algorithm = \\\"sha384\\\"\\nversion = \\\"0.1.0\\\"\\n\"},\"runtime-data\":"
    ));
}

#[test]
fn recorded_jcs_cases_match() {
    let v = vector("jcs-cases.json");
    for case in v["cases"].as_array().unwrap() {
        let name = s(case, "/name");
        let canonical = jcs::to_string(&case["hashed_object"]);
        assert_eq!(canonical, s(case, "/jcs"), "{name}");
        assert_eq!(
            hex(canonical.as_bytes()),
            s(case, "/jcs_utf8_hex"),
            "{name}"
        );
        let digest = rcar::HashAlgorithm::Sha384.digest(canonical.as_bytes());
        assert_eq!(hex(&digest), s(case, "/sha384_hex"), "{name}");
        assert_eq!(
            b64::std_encode(&digest),
            s(case, "/report_data_b64"),
            "{name}"
        );
    }
}

#[test]
fn recorded_error_bodies_parse() {
    let v = vector("errors.json");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 9);
    for e in errors {
        let parsed = KbsError::parse(s(e, "/response/body").as_bytes()).unwrap();
        assert_eq!(parsed.kind, s(e, "/expected/error_type"));
        assert_eq!(parsed.detail, s(e, "/expected/detail"));
        assert_eq!(e["response"]["status"], e["expected"]["status"]);
    }
}

/// Flips one character of one JWE member and expects a specific failure.
fn tampered(body: &str, member: &str) -> String {
    let mut jwe: Value = serde_json::from_str(body).unwrap();
    let text = jwe[member].as_str().unwrap().to_string();
    let mut chars: Vec<char> = text.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    jwe[member] = Value::String(chars.into_iter().collect());
    jwe.to_string()
}

#[test]
fn tampered_or_misdirected_jwes_are_refused() {
    for name in EXCHANGES {
        let v = vector(name);
        let key = recorded_key(&v);
        let body = s(&v, "/resource/response/body");
        let is_rsa = s(&v, "/tee_key/kty") == "RSA";
        assert_eq!(
            jwe::decrypt(&key, tampered(body, "ciphertext").as_bytes()),
            Err(JweError::Decrypt),
            "{name}"
        );
        assert_eq!(
            jwe::decrypt(&key, tampered(body, "tag").as_bytes()),
            Err(JweError::Decrypt),
            "{name}"
        );
        assert_eq!(
            jwe::decrypt(&key, tampered(body, "iv").as_bytes()),
            Err(JweError::Decrypt),
            "{name}"
        );
        let wrong_cek = if is_rsa {
            JweError::KeyDecrypt
        } else {
            JweError::KeyUnwrap
        };
        assert_eq!(
            jwe::decrypt(&key, tampered(body, "encrypted_key").as_bytes()),
            Err(wrong_cek),
            "{name}"
        );
        // The protected header is authenticated (AAD) even where the change still parses.
        let err = jwe::decrypt(&key, tampered(body, "protected").as_bytes()).unwrap_err();
        assert_ne!(err, JweError::NotJwe, "{name}");
        assert!(jwe::decrypt(&key, b"{}").is_err());
        assert_eq!(jwe::decrypt(&key, b"garbage"), Err(JweError::NotJwe));
    }
    // A JWE for one key does not open with another key of the same kind.
    let p256 = recorded_key(&vector("p256-cookie.json"));
    let other = vector("binary-resource.json");
    assert_eq!(
        jwe::decrypt(&p256, s(&other, "/resource/response/body").as_bytes()),
        Err(JweError::KeyUnwrap)
    );
    // ... nor with a key of another kind.
    #[cfg(any(feature = "p521", feature = "rsa"))]
    let p256_body = s(&vector("p256-cookie.json"), "/resource/response/body").to_string();
    #[cfg(feature = "p521")]
    {
        let p521 = recorded_key(&vector("p521-cookie.json"));
        assert_eq!(
            jwe::decrypt(&p521, p256_body.as_bytes()),
            Err(JweError::BadEphemeralKey)
        );
    }
    #[cfg(feature = "rsa")]
    {
        let rsa = recorded_key(&vector("rsa-oaep-256-bearer.json"));
        assert_eq!(
            jwe::decrypt(&rsa, p256_body.as_bytes()),
            Err(JweError::AlgMismatch)
        );
    }
}

#[test]
fn section_5_4_deterministic_vector() {
    // kbs-protocol.md §5.4: client d = 01×32, server ephemeral d = 02×32, CEK = 03×32, IV = 04×12.
    let key = TeeKey::import_ec(KeyAlgorithm::EcdhP256, &[1u8; 32]).unwrap();
    let body = r#"{"protected":"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJWUTlIRUFQejM1ZkQzMUJxeDVmMmNoLXhvZnQ3ajItRDBpUkppbVhJamlRIiwieSI6IkUyQ1Qxd0V1VUpwemNWeTlDd0NqekFfMHRjQWJQX29aYXJIN01uQTJ1T1kifX0","encrypted_key":"GdbeMFf-Iy_kWUxENO8fTLpdGsso3kg6_SAhoGNbAemrahYLkS31ZQ","iv":"BAQEBAQEBAQEBAQE","ciphertext":"NE96vo33dD74NPQ7AiAZA_Qf_Qk3","tag":"eXNCnUs-7oqyYLShTJ6Ecw"}"#;
    assert_eq!(
        &jwe::decrypt(&key, body.as_bytes()).unwrap()[..],
        b"this is a test secret"
    );
    let z = unhex("eb459a6b30d70eb4c0ddcd34ea96ed59e8f8d1843c22dd895ab603aa13d9a81d");
    assert_eq!(
        hex(jwe::concat_kdf_a256kw(&z).as_ref()),
        "f18caaee394a8be5171a5029502e54c4edca4e4cb0209a354d2cba470439ed10"
    );
    // §4.1 worked example: the JWK of d = 01×32.
    let jwk = serde_json::to_string(key.public_jwk()).unwrap();
    assert_eq!(
        jwk,
        r#"{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"b_A7lJJBzh2t1DUZ5pYOCoW0GmmgXDKBA6orzhWUyhY","y":"PE91OlW_AdxT9sCwx-7ni0DG_30lqW4igrmJzvccFEo"}"#
    );
}
