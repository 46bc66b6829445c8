//! An independent check with Python `cryptography` (skipped when it is not installed):
//! decrypt the server's JWEs, verify the token's ES256 signature with the JWK of its header
//! (what Trustee does with `insecure_header_jwk`), and recompute the SHA-384 binding.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use test_kbs::{Config, Server};

const SCRIPT: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def point(jwk, curve):
    n = lambda c: int.from_bytes(b64u(jwk[c]), "big")
    return ec.EllipticCurvePublicNumbers(n("x"), n("y"), curve).public_key()

CURVES = {"P-256": ec.SECP256R1(), "P-521": ec.SECP521R1()}
ALG = b"ECDH-ES+A256KW"
out = []
for case in json.load(sys.stdin):
    jwe = json.loads(case["jwe"])
    header = json.loads(b64u(jwe["protected"]))
    assert header["enc"] == "A256GCM"
    if "d_hex" in case:
        assert header["alg"] == "ECDH-ES+A256KW"
        curve = CURVES[header["epk"]["crv"]]
        key = ec.derive_private_key(int(case["d_hex"], 16), curve)
        z = key.exchange(ec.ECDH(), point(header["epk"], curve))
        info = len(ALG).to_bytes(4, "big") + ALG + bytes(8) + (256).to_bytes(4, "big")
        kek = ConcatKDFHash(algorithm=hashes.SHA256(), length=32, otherinfo=info).derive(z)
        cek = aes_key_unwrap(kek, b64u(jwe["encrypted_key"]))
    else:
        assert header == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
        key = serialization.load_pem_private_key(case["pem"].encode(), None)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        cek = key.decrypt(b64u(jwe["encrypted_key"]), oaep)
    plain = AESGCM(cek).decrypt(b64u(jwe["iv"]), b64u(jwe["ciphertext"]) + b64u(jwe["tag"]),
                                jwe["protected"].encode())

    h, p, s = case["token"].split(".")
    token_header = json.loads(b64u(h))
    assert token_header["alg"] == "ES256"
    sig = b64u(s)
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    point(token_header["jwk"], ec.SECP256R1()).verify(der, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))

    evidence = json.loads(b64u(p))["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
    jcs = json.dumps(evidence["runtime_data_claims"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = base64.b64encode(hashlib.sha384(jcs.encode()).digest()).decode()
    assert digest == evidence["report_data"], (jcs, digest)
    out.append(plain.hex())
print(json.dumps(out))
"#;

fn python_with_cryptography() -> bool {
    Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.keywrap"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn python_cryptography_agrees() {
    if !python_with_cryptography() {
        eprintln!("python_cryptography_agrees: skipped, python3 with `cryptography` not found");
        return;
    }
    let server = Server::start(Config::default()).unwrap();
    let secret: Vec<u8> = (0..=255u8).rev().collect();
    server
        .add_resource("default/keys/blob", secret.clone())
        .unwrap();
    let rsa_pem = vector("rsa-oaep-256-bearer.json")["tee_key"]["private_key_pkcs8_pem"].clone();
    let mut cases = Vec::new();
    for key in [TeeKey::p256(), TeeKey::p521(), TeeKey::rsa()] {
        let mut client = Client::connect(server.addr());
        let (session, token) = attest(&mut client, &key);
        let r = client
            .get(
                "/kbs/v0/resource/default/keys/blob",
                &[("Cookie", &session.cookie_header())],
            )
            .unwrap();
        assert_eq!(r.status, 200);
        let mut case = json!({"jwe": r.text(), "token": token});
        match &key {
            TeeKey::P256(k) => case["d_hex"] = Value::from(hex(&k.to_bytes())),
            TeeKey::P521(k) => case["d_hex"] = Value::from(hex(&k.to_bytes())),
            _ => case["pem"] = rsa_pem.clone(),
        }
        cases.push(case);
    }
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(cases).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plaintexts: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plaintexts, vec![hex(&secret); 3]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
