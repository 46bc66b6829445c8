//! The resource response: a flattened-JSON JWE (RFC 7516) to the tee-pubkey found in the
//! verified token, as Trustee's `kbs/src/jwe` produces it (protocol notes §5).
//!
//! - `enc` is always `A256GCM`, with a random 32-byte CEK and 12-byte IV, and
//!   AAD = the ASCII of the `protected` member.
//! - EC P-256 / P-521, `alg = "ECDH-ES+A256KW"`: an ephemeral server key of the same curve
//!   (`epk` in the protected header), Z = the x-coordinate of the ECDH product, KEK = Concat KDF
//!   (SHA-256, AlgorithmID `"ECDH-ES+A256KW"`, empty apu/apv, 256 bits), CEK wrapped with AES-KW.
//! - RSA `RSA-OAEP-256` (OAEP, SHA-256 and MGF1-SHA-256) and the deprecated `RSA1_5`: the CEK
//!   encrypted to the key directly.
//! - Anything else (P-384, `RSA-OAEP`, AKP/ML-KEM, ...) is an error: 401 `JweError`.
//!
//! Output member order: `protected, encrypted_key, iv, ciphertext, tag`, all base64url unpadded.

use crate::rcar::TeePubKey;
use crate::rng;
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use aes_kw::KwAes256;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use sealgate_core::b64;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";

/// Encrypts `plaintext` to `key`; the error says why the key is unusable (for the log).
pub(crate) fn encrypt(key: &TeePubKey, plaintext: &[u8]) -> Result<String, String> {
    let cek = Zeroizing::new(rng::bytes::<32>());
    let iv = rng::bytes::<12>();
    match key {
        TeePubKey::Ec { crv, alg, x, y } if alg == ECDH_ES_A256KW && crv == "P-256" => {
            let eph = p256::SecretKey::generate_from_rng(&mut rng::os_rng());
            ecdh_p256(x, y, &eph, &cek, &iv, plaintext)
        }
        TeePubKey::Ec { crv, alg, x, y } if alg == ECDH_ES_A256KW && crv == "P-521" => {
            let eph = p521::SecretKey::generate_from_rng(&mut rng::os_rng());
            ecdh_p521(x, y, &eph, &cek, &iv, plaintext)
        }
        TeePubKey::Ec { crv, alg, .. } => {
            Err(format!("curve {crv} and algorithm {alg} is not supported"))
        }
        TeePubKey::Rsa { alg, n, e } if alg == "RSA-OAEP-256" => {
            let encrypted_key = rsa_key(n, e)?
                .encrypt(&mut rng::os_rng(), rsa::Oaep::<Sha256>::new(), &cek[..])
                .map_err(|e| format!("RSA encrypt sym key failed: {e}"))?;
            seal(
                r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#,
                &encrypted_key,
                &cek,
                &iv,
                plaintext,
            )
        }
        TeePubKey::Rsa { alg, n, e } if alg == "RSA1_5" => {
            let encrypted_key = rsa_key(n, e)?
                .encrypt(&mut rng::os_rng(), rsa::Pkcs1v15Encrypt, &cek[..])
                .map_err(|e| format!("RSA encrypt sym key failed: {e}"))?;
            seal(
                r#"{"alg":"RSA1_5","enc":"A256GCM"}"#,
                &encrypted_key,
                &cek,
                &iv,
                plaintext,
            )
        }
        TeePubKey::Rsa { alg, .. } => Err(format!("algorithm {alg} is not supported")),
        TeePubKey::Akp { alg, .. } => Err(format!(
            "AKP key ({alg}) needs the pqc-experimental KBS feature"
        )),
    }
}

fn rsa_key(n: &str, e: &str) -> Result<rsa::RsaPublicKey, String> {
    let n = b64::url_decode(n).map_err(|_| "base64 decode k_mod failed")?;
    let e = b64::url_decode(e).map_err(|_| "base64 decode k_exp failed")?;
    rsa::RsaPublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .map_err(|e| format!("Building RSA key from modulus and exponent failed: {e}"))
}

macro_rules! ecdh_es_a256kw {
    ($name:ident, $curve:ident, $crv:literal, $len:literal) => {
        /// ECDH-ES+A256KW to the peer (`x`, `y` base64url of exactly the field size) with
        /// the ephemeral key `eph`.
        pub(crate) fn $name(
            x: &str,
            y: &str,
            eph: &$curve::SecretKey,
            cek: &[u8; 32],
            iv: &[u8; 12],
            plaintext: &[u8],
        ) -> Result<String, String> {
            let x = b64::url_decode_array::<$len>(x).map_err(|_| "bad x coordinate")?;
            let y = b64::url_decode_array::<$len>(y).map_err(|_| "bad y coordinate")?;
            let mut sec1 = Vec::with_capacity(1 + 2 * $len);
            sec1.push(4);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let peer = $curve::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| "tee-pubkey is not a point on the curve")?;
            let shared = eph.diffie_hellman(&peer);
            let kek = concat_kdf(shared.raw_secret_bytes().as_slice());
            let encrypted_key = aes_kw_wrap(&kek, cek)?;
            let epk = eph.public_key().to_sec1_point(false);
            let (Some(ex), Some(ey)) = (epk.x(), epk.y()) else {
                return Err("ephemeral key has no affine coordinates".into());
            };
            let protected = format!(
                r#"{{"alg":"{ECDH_ES_A256KW}","enc":"A256GCM","epk":{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}}}"#,
                $crv,
                b64::url_encode(ex),
                b64::url_encode(ey),
            );
            seal(&protected, &encrypted_key, cek, iv, plaintext)
        }
    };
}

ecdh_es_a256kw!(ecdh_p256, p256, "P-256", 32);
ecdh_es_a256kw!(ecdh_p521, p521, "P-521", 66);

/// NIST SP 800-56A Concat KDF as RFC 7518 §4.6.2 uses it for `ECDH-ES+A256KW`: one SHA-256
/// round, `KEK = SHA256(00000001 ‖ Z ‖ len‖"ECDH-ES+A256KW" ‖ len(apu)=0 ‖ len(apv)=0 ‖ 256)`.
pub(crate) fn concat_kdf(z: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut hash = Sha256::new();
    hash.update(1u32.to_be_bytes());
    hash.update(z);
    hash.update((ECDH_ES_A256KW.len() as u32).to_be_bytes());
    hash.update(ECDH_ES_A256KW.as_bytes());
    hash.update(0u32.to_be_bytes());
    hash.update(0u32.to_be_bytes());
    hash.update(256u32.to_be_bytes());
    Zeroizing::new(hash.finalize().into())
}

fn aes_kw_wrap(kek: &[u8; 32], cek: &[u8; 32]) -> Result<[u8; 40], String> {
    let kw = KwAes256::new_from_slice(kek).map_err(|_| "bad KEK length")?;
    let mut out = [0u8; 40];
    kw.wrap_key(cek, &mut out)
        .map_err(|_| "AES-KW wrap failed")?;
    Ok(out)
}

/// A256GCM with AAD = ASCII of the protected member, then the flattened JSON serialization.
fn seal(
    protected_json: &str,
    encrypted_key: &[u8],
    cek: &[u8; 32],
    iv: &[u8; 12],
    plaintext: &[u8],
) -> Result<String, String> {
    let protected = b64::url_encode(protected_json.as_bytes());
    let cipher = Aes256Gcm::new_from_slice(cek).map_err(|_| "bad CEK length")?;
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &aes_gcm::Nonce::from(*iv),
            protected.as_bytes(),
            buf.as_mut_slice().into(),
        )
        .map_err(|_| "AES encrypt Resource payload failed")?;
    Ok(format!(
        r#"{{"protected":"{protected}","encrypted_key":"{}","iv":"{}","ciphertext":"{}","tag":"{}"}}"#,
        b64::url_encode(encrypted_key),
        b64::url_encode(iv),
        b64::url_encode(&buf),
        b64::url_encode(tag.as_slice()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn deterministic_vector_of_the_protocol_notes() {
        // §5.3/§5.4: client d = 01×32, server ephemeral d = 02×32, CEK = 03×32, IV = 04×12.
        let eph = p256::SecretKey::from_slice(&[2u8; 32]).unwrap();
        let client = p256::SecretKey::from_slice(&[1u8; 32]).unwrap();
        let z = eph.diffie_hellman(&client.public_key());
        assert_eq!(
            hex(z.raw_secret_bytes()),
            "eb459a6b30d70eb4c0ddcd34ea96ed59e8f8d1843c22dd895ab603aa13d9a81d"
        );
        let kek = concat_kdf(z.raw_secret_bytes());
        assert_eq!(
            hex(&kek[..]),
            "f18caaee394a8be5171a5029502e54c4edca4e4cb0209a354d2cba470439ed10"
        );
        assert_eq!(
            hex(&aes_kw_wrap(&kek, &[3u8; 32]).unwrap()),
            "19d6de3057fe232fe4594c4434ef1f4cba5d1acb28de483afd2021a0635b01e9ab6a160b912df565"
        );
        let jwe = ecdh_p256(
            "b_A7lJJBzh2t1DUZ5pYOCoW0GmmgXDKBA6orzhWUyhY",
            "PE91OlW_AdxT9sCwx-7ni0DG_30lqW4igrmJzvccFEo",
            &eph,
            &[3u8; 32],
            &[4u8; 12],
            b"this is a test secret",
        )
        .unwrap();
        assert_eq!(
            jwe,
            r#"{"protected":"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJWUTlIRUFQejM1ZkQzMUJxeDVmMmNoLXhvZnQ3ajItRDBpUkppbVhJamlRIiwieSI6IkUyQ1Qxd0V1VUpwemNWeTlDd0NqekFfMHRjQWJQX29aYXJIN01uQTJ1T1kifX0","encrypted_key":"GdbeMFf-Iy_kWUxENO8fTLpdGsso3kg6_SAhoGNbAemrahYLkS31ZQ","iv":"BAQEBAQEBAQEBAQE","ciphertext":"NE96vo33dD74NPQ7AiAZA_Qf_Qk3","tag":"eXNCnUs-7oqyYLShTJ6Ecw"}"#
        );
    }

    /// The recorded Z and KEK of the live P-256 and P-521 exchanges.
    #[test]
    fn kdf_matches_recorded_exchanges() {
        for name in [
            "p256-cookie.json",
            "p521-cookie.json",
            "binary-resource.json",
        ] {
            let path = format!("{}/../vectors/trustee/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let jwe = &v["resource"]["jwe_decoded"];
            let z = unhex(jwe["ecdh_shared_secret_z_hex"].as_str().unwrap());
            assert_eq!(
                hex(&concat_kdf(&z)[..]),
                jwe["kek_hex"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                jwe["concat_kdf_other_info_hex"],
                "0000000e454344482d45532b413235364b57000000000000000000000100"
            );
        }
    }

    #[test]
    fn unsupported_keys() {
        let ec = |crv: &str, alg: &str| TeePubKey::Ec {
            crv: crv.into(),
            alg: alg.into(),
            x: "AA".into(),
            y: "AA".into(),
        };
        assert_eq!(
            encrypt(&ec("P-384", ECDH_ES_A256KW), b"x"),
            Err("curve P-384 and algorithm ECDH-ES+A256KW is not supported".into())
        );
        assert!(encrypt(&ec("P-256", "ECDH-ES"), b"x").is_err());
        assert!(
            encrypt(&ec("P-256", ECDH_ES_A256KW), b"x").is_err(),
            "bad coordinates"
        );
        let rsa = TeePubKey::Rsa {
            alg: "RSA-OAEP".into(),
            n: "AQ".into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            encrypt(&rsa, b"x"),
            Err("algorithm RSA-OAEP is not supported".into())
        );
        let tiny_rsa = TeePubKey::Rsa {
            alg: "RSA-OAEP-256".into(),
            n: "AQ".into(),
            e: "AQAB".into(),
        };
        assert!(encrypt(&tiny_rsa, b"x").is_err());
    }
}
