//! Runs the real `sealctl` binary: keygen → seal → inspect round trips, the deterministic
//! upstream-compatible vector, the kata end-to-end vector, and error exits.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const SEALCTL: &str = env!("CARGO_BIN_EXE_sealctl");

/// GC `confidential-data-hub/hub/src/secret/tests/test-key.json`.
const TEST_KEY: &str = r#"{
    "kty": "EC",
    "d": "7baJLiTk68NcLgYPv05jJvElqoAhbzi1ZWx4OyILUtA",
    "use": "sig",
    "crv": "P-256",
    "kid": "test-key",
    "x": "QT3_slJmispaOwnAo6hxebXGLRuiveFuRCLpS4j4S4k",
    "y": "jcDn4N4nRBQ-a7_D3qjqtb6hwOAXh_ve1wvibPSi1G0",
    "alg": "ES256"
}"#;

/// guest-interfaces.md §5.7, self-generated with test-key.
const TEST_KEY_VECTOR: &str = "sealed.eyJiNjQiOnRydWUsImFsZyI6IkVTMjU2Iiwia2lkIjoidGVzdC1rZXkifQ.eyJ2ZXJzaW9uIjoiMC4xLjAiLCJ0eXBlIjoidmF1bHQiLCJuYW1lIjoia2JzOi8vL29uZS8yL3Ryb2lzIiwicHJvdmlkZXIiOiJrYnMiLCJwcm92aWRlcl9zZXR0aW5ncyI6e30sImFubm90YXRpb25zIjp7fX0.Yktcx2fRWHvD9cV-2OqbwtaALJgaEfdLjGMkkeqvmAAR-pyqdPPnuIbeicCjnMRJRPIXGSl1IpUr-GRD5ZNbeg";

/// KATA `tests/integration/kubernetes/confidential_common.sh`.
const KATA_JWK: &str = r#"{"alg":"ES256","crv":"P-256","kid":"sealed-secret-test-key","kty":"EC","use":"sig","x":"4jH376AuwTUCIx65AJ_56D7SZzWf7sGcEA7_Csq21UM","y":"rjdceysnSa5ZfzWOPGCURMUuHndxBAGUu4ISTIVN0yA"}"#;
const KATA_VECTOR: &str = "sealed.eyJiNjQiOnRydWUsImFsZyI6IkVTMjU2Iiwia2lkIjoia2JzOi8vL2RlZmF1bHQvc2lnbmluZy1rZXkvc2VhbGVkLXNlY3JldCJ9.eyJ2ZXJzaW9uIjoiMC4xLjAiLCJ0eXBlIjoidmF1bHQiLCJuYW1lIjoia2JzOi8vL2RlZmF1bHQvc2VhbGVkLXNlY3JldC90ZXN0IiwicHJvdmlkZXIiOiJrYnMiLCJwcm92aWRlcl9zZXR0aW5ncyI6e30sImFubm90YXRpb25zIjp7fX0.ZI2fTv5ramHqHQa9DKBFD5hlJ_Mjf6cEIcpsNGshpyhEiKklML0abfH600TD7LAFHf53oDIJmEcVsDtJ20UafQ";

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sealctl-test-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    run_stdin(args, None)
}

fn run_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(SEALCTL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keygen_seal_inspect_round_trip() {
    let dir = TempDir::new("roundtrip");
    let out = run(&[
        "keygen",
        "--kid",
        "operator",
        "--output-dir",
        path_str(&dir.0),
    ]);
    assert_exit(&out, 0);
    let private = dir.path("operator-private.json");
    let public = dir.path("operator-public.json");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Members and layout as upstream's `secret keygen`.
    let private_text = std::fs::read_to_string(&private).unwrap();
    let public_text = std::fs::read_to_string(&public).unwrap();
    assert!(private_text.starts_with("{\n  \"kty\": \"EC\",\n  \"crv\": \"P-256\",\n  \"alg\": \"ES256\",\n  \"use\": \"sig\",\n  \"kid\": \"operator\",\n  \"d\": \""));
    assert!(public_text.ends_with("\"\n}\n"));
    let private_json: serde_json::Value = serde_json::from_str(&private_text).unwrap();
    let public_json: serde_json::Value = serde_json::from_str(&public_text).unwrap();
    assert_eq!(public_json["kid"], "operator");
    assert!(public_json.get("d").is_none());
    assert_eq!(private_json["x"], public_json["x"]);
    assert_eq!(private_json["y"], public_json["y"]);

    // Never overwrites.
    let again = run(&[
        "keygen",
        "--kid",
        "operator",
        "--output-dir",
        path_str(&dir.0),
    ]);
    assert_exit(&again, 1);
    assert!(stderr(&again).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&private).unwrap(), private_text);

    let kid = "kbs:///default/signing-key/operator";
    let out = run(&[
        "seal",
        "vault",
        "--resource-uri",
        "kbs:///default/sealed-secret/db-password",
        "--signing-key",
        path_str(&private),
        "--kid",
        kid,
        "--annotations",
        r#"{"owner":"team-a"}"#,
    ]);
    assert_exit(&out, 0);
    let sealed = stdout(&out);
    assert!(sealed.starts_with("sealed.") && sealed.ends_with('\n'));
    assert_eq!(sealed.lines().count(), 1);
    assert!(stderr(&out).contains("provision it to the KBS"));
    let sealed_path = dir.write("secret.sealed", &sealed);

    let out = run(&["inspect", "--key", path_str(&public), &sealed_path]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for line in [
        "alg: ES256",
        "kid: kbs:///default/signing-key/operator (KBS resource)",
        "version: 0.1.0",
        "type: vault",
        "name: kbs:///default/sealed-secret/db-password",
        "provider: kbs",
        "annotations: 1 member(s): owner",
        "sealgate: unseals by fetching KBS resource kbs:///default/sealed-secret/db-password",
        "signature: valid",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    // The library agrees with the binary.
    let parsed = sealgate_core::sealed::SealedSecret::parse(sealed.trim_end().as_bytes()).unwrap();
    assert_eq!(parsed.kid(), kid);
    let key = sealgate_core::sealed::PublicJwk::from_json(public_text.as_bytes()).unwrap();
    assert!(parsed.verify(&key).is_ok());

    // Without a key: decoded, not verified.
    let out = run_stdin(&["inspect"], Some(&sealed));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("signature: not checked (no --key)"));

    // A different key: invalid, exit 1.
    let other = dir.write("kata.json", KATA_JWK);
    let out = run(&["inspect", "--key", &other, &sealed_path]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("signature: INVALID"));
    assert!(stderr(&out).contains("verification failed"));
}

#[test]
fn seal_reproduces_the_deterministic_vector() {
    let dir = TempDir::new("vector");
    let key = dir.write("test-key.json", TEST_KEY);
    let out = run(&[
        "seal",
        "vault",
        "--resource-uri",
        "kbs:///one/2/trois",
        "--signing-key",
        &key,
        "--kid",
        "test-key",
        "--provider",
        "kbs",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{TEST_KEY_VECTOR}\n"));
    assert!(stderr(&out).contains("/run/confidential-containers/cdh/sealed-secret/test-key"));

    // --name=value form too.
    let out = run(&[
        "seal",
        "vault",
        "--resource-uri=kbs:///one/2/trois",
        &format!("--signing-key={key}"),
        "--kid=test-key",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{TEST_KEY_VECTOR}\n"));

    let out = run_stdin(&["inspect", "--key", &key, "-"], Some(TEST_KEY_VECTOR));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(
        "kid: test-key (local key file in /run/confidential-containers/cdh/sealed-secret)"
    ));
    assert!(stdout(&out).contains("signature: valid"));
}

#[test]
fn inspect_kata_vector() {
    let dir = TempDir::new("kata");
    let key = dir.write("kata.json", KATA_JWK);
    let file = dir.write("kata.sealed", &format!("  {KATA_VECTOR}\n\n"));
    let out = run(&["inspect", &file, "--key", &key]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("kid: kbs:///default/signing-key/sealed-secret (KBS resource)"));
    assert!(text.contains("name: kbs:///default/sealed-secret/test"));
    assert!(text.contains("signature: valid"));

    // Tampered: fails with exit 1.
    let tampered = KATA_VECTOR.replacen("ZI2fTv5", "ZI2fTv6", 1);
    let out = run_stdin(&["inspect", "--key", &key], Some(&tampered));
    assert_exit(&out, 1);
}

#[test]
fn inspect_never_prints_envelope_contents() {
    use sealgate_core::sealed::{Secret, SigningJwk, seal};
    let data = "Knv7aKCGsH75bOHq3ZwdLd7nSljyDF90UXMRfERatQ==";
    let wrapped = "c2VjcmV0LXdyYXBwZWQtZGVr";
    let payload = format!(
        r#"{{"version":"0.1.0","type":"envelope","key_id":"kms-key-1","encrypted_key":"{wrapped}","encrypted_data":"{data}","wrap_type":"A256GCM","iv":"AAECAwQFBgcICQoL","provider":"aliyun","provider_settings":{{"client_key_id":"x"}},"annotations":{{}}}}"#
    );
    let secret = Secret::from_json(payload.as_bytes()).unwrap();
    let key = SigningJwk::from_json(TEST_KEY.as_bytes()).unwrap();
    let sealed = seal(&secret, &key, "test-key").unwrap();

    let out = run_stdin(&["inspect"], Some(&sealed));
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("type: envelope"));
    assert!(text.contains("key_id: kms-key-1"));
    assert!(text.contains("provider: aliyun"));
    assert!(text.contains("wrap_type: A256GCM"));
    assert!(text.contains("encrypted_data: 31 bytes"));
    assert!(text.contains("encrypted_key: 18 bytes"));
    assert!(text.contains("iv: 12 bytes"));
    assert!(text.contains("provider_settings: 1 member(s): client_key_id"));
    assert!(text.contains(
        "sealgate: cannot unseal: sealed secret provider 'aliyun' is not supported by sealgate"
    ));
    let all = text + &stderr(&out);
    assert!(!all.contains(data) && !all.contains(wrapped) && !all.contains("\"x\""));
}

#[test]
fn inspect_legacy_unsigned_secret() {
    let payload = sealgate_core::b64::url_encode(
        br#"{"version":"0.1.0","type":"vault","name":"kbs:///a/b/c","provider":"kbs","provider_settings":{},"annotations":{}}"#,
    );
    let legacy = format!("sealed.fakejwsheader.{payload}.fakesignature");
    let out = run_stdin(&["inspect"], Some(&legacy));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("header: not a verifiable ES256 JWS"));
    assert!(stdout(&out).contains("name: kbs:///a/b/c"));

    let dir = TempDir::new("legacy");
    let key = dir.write("kata.json", KATA_JWK);
    let out = run_stdin(&["inspect", "--key", &key], Some(&legacy));
    assert_exit(&out, 1);
}

#[test]
fn usage_errors_exit_2() {
    let dir = TempDir::new("usage");
    let key = dir.write("test-key.json", TEST_KEY);
    let seal = |extra: &[&str]| {
        let mut args = vec!["seal", "vault"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let cases: Vec<Output> = vec![
        run(&[]),
        run(&["frobnicate"]),
        run(&["seal"]),
        run(&["seal", "envelope"]),
        run(&["keygen", "--kid"]),
        run(&["keygen", "--kid", "a/b"]),
        run(&["keygen", "--bogus", "x"]),
        run(&["keygen", "stray"]),
        run(&["inspect", "a", "b"]),
        seal(&["--signing-key", &key, "--kid", "test-key"]),
        seal(&["--resource-uri", "kbs:///a/b/c", "--kid", "test-key"]),
        seal(&["--resource-uri", "kbs:///a/b/c", "--signing-key", &key]),
        seal(&[
            "--resource-uri",
            "https://x/a/b/c",
            "--signing-key",
            &key,
            "--kid",
            "k",
        ]),
        seal(&[
            "--resource-uri",
            "kbs:///a/b",
            "--signing-key",
            &key,
            "--kid",
            "k",
        ]),
        seal(&[
            "--resource-uri",
            "kbs:///a/b/c",
            "--signing-key",
            &key,
            "--kid",
            "../k",
        ]),
        seal(&[
            "--resource-uri",
            "kbs:///a/b/c",
            "--signing-key",
            &key,
            "--kid",
            "k",
            "--kid",
            "k",
        ]),
        seal(&[
            "--resource-uri",
            "kbs:///a/b/c",
            "--signing-key",
            &key,
            "--kid",
            "k",
            "--annotations",
            "[1]",
        ]),
        seal(&[
            "--resource-uri",
            "kbs:///a/b/c",
            "--signing-key",
            &key,
            "--kid",
            "k",
            "--provider-settings",
            "{",
        ]),
    ];
    for (i, out) in cases.iter().enumerate() {
        assert_eq!(out.status.code(), Some(2), "case {i}: {}", stderr(out));
        assert!(out.stdout.is_empty(), "case {i}");
        assert!(!stderr(out).is_empty(), "case {i}");
    }
}

#[test]
fn failures_exit_1() {
    let dir = TempDir::new("failures");
    let missing = dir.path("missing.json");
    let public = dir.write("kata.json", KATA_JWK);
    let garbage = dir.write("garbage", "sealed.not-a-secret");
    let rsa = dir.write("rsa.json", r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#);
    let huge = dir.write("huge", &"A".repeat(100_000));
    let seal_with = |key: &str| {
        run(&[
            "seal",
            "vault",
            "--resource-uri",
            "kbs:///a/b/c",
            "--signing-key",
            key,
            "--kid",
            "k",
        ])
    };
    let cases = [
        (seal_with(path_str(&missing)), "cannot read signing key"),
        (seal_with(&public), "JWK has no 'd'"),
        (seal_with(&rsa), "JWK kty 'RSA' is not supported"),
        (run(&["inspect", &garbage]), "got 1 '.'-separated part(s)"),
        (run(&["inspect", &huge]), "larger than"),
        (
            run(&["inspect", path_str(&missing)]),
            "cannot read sealed secret",
        ),
        (
            run(&["inspect", "--key", &rsa, &garbage]),
            "JWK kty 'RSA' is not supported",
        ),
        (
            run(&["keygen", "--output-dir", path_str(&missing)]),
            "cannot write",
        ),
    ];
    for (i, (out, expected)) in cases.iter().enumerate() {
        assert_eq!(out.status.code(), Some(1), "case {i}: {}", stderr(out));
        assert!(
            stderr(out).contains(expected),
            "case {i}: {:?} not in {}",
            expected,
            stderr(out)
        );
    }
    // Nothing half-written by the failed keygen.
    assert!(!missing.exists());
}

#[test]
fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["help"],
        &["help", "seal"],
        &["keygen", "--help"],
        &["seal", "--help"],
        &["seal", "vault", "--help"],
        &["inspect", "-h"],
    ] {
        let out = run(args);
        assert_exit(&out, 0);
        assert!(stdout(&out).starts_with("Usage: sealctl"), "{args:?}");
    }
}

#[test]
fn initdata_digest_and_image() {
    // guest-interfaces.md §8.3: 261 bytes, sha384 2c4b02b2…
    let dir = TempDir::new("initdata");
    let toml = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs]\n[token_configs.kbs]\nurl = \"http://10.0.0.1:8080\"\n'''\n\n\"cdh.toml\" = '''\nsocket = \"unix:///run/confidential-containers/cdh.sock\"\n[kbc]\nname = \"cc_kbc\"\nurl = \"http://10.0.0.1:8080\"\n'''\n";
    let file = dir.path("initdata.toml");
    std::fs::write(&file, toml).unwrap();
    let o = run(&["initdata", "digest", path_str(&file)]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let digest = "2c4b02b24ef0914a0990f7ea27eecc62e002e1269b83306508e68a7190743de0500005d21139c379032899ff4ecea9e8";
    assert!(out.contains(&format!("digest:         {digest}")), "{out}");
    assert!(
        out.contains(&format!("snp host_data:  {}", &digest[..64])),
        "{out}"
    );
    assert!(out.contains(&format!("tdx mrconfigid: {digest}")), "{out}");
    assert!(
        out.contains("kbs url:        http://10.0.0.1:8080"),
        "{out}"
    );

    let image = dir.path("initdata.img");
    assert_exit(
        &run(&["initdata", "image", path_str(&file), path_str(&image)]),
        0,
    );
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[..8], b"initdata");
    assert_eq!(bytes.len() % 512, 0);
    assert_eq!(
        sealgate_core::initdata::from_block_device(&bytes).unwrap(),
        toml.as_bytes()
    );

    std::fs::write(
        &file,
        "version = \"0.1.0\"\nalgorithm = \"sha-384\"\n[data]\n",
    )
    .unwrap();
    let o = run(&["initdata", "digest", path_str(&file)]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("algorithm 'sha-384' is not supported"),
        "{}",
        stderr(&o)
    );
    assert_exit(&run(&["initdata", "digest"]), 2);
}

#[test]
fn initdata_new_writes_sealgate_toml() {
    let dir = TempDir::new("initdata-new");
    let settings = dir.path("sealgate.toml");
    std::fs::write(
        &settings,
        "owner = \"1000:1000\"\ntee = \"sample\"\n[[resource]]\nuri = \"kbs:///default/app/key\"\npath = \"app/key\"\n",
    )
    .unwrap();
    let out = dir.path("initdata.toml");
    let o = run(&[
        "initdata",
        "new",
        "--algorithm",
        "sha256",
        "--kbs",
        "http://10.0.2.2:8080",
        "--sealgate-toml",
        path_str(&settings),
        path_str(&out),
    ]);
    assert_exit(&o, 0);
    // tee cannot come from init-data: named at once.
    assert!(
        stderr(&o).contains("ignoring tee from init-data's sealgate.toml"),
        "{}",
        stderr(&o)
    );
    let raw = std::fs::read(&out).unwrap();
    let d = sealgate_core::initdata::InitData::parse(&raw).unwrap();
    assert_eq!(d.algorithm().as_str(), "sha256");
    assert_eq!(
        d.entry("sealgate.toml"),
        Some(std::fs::read_to_string(&settings).unwrap().as_str())
    );
    assert_eq!(d.kbs().unwrap().unwrap().url, "http://10.0.2.2:8080");
    let s = d.settings().unwrap().unwrap();
    assert_eq!(s.owner, Some((1000, 1000)));

    // A sealgate.toml that does not parse is refused by position, never quoted.
    std::fs::write(&settings, "owner = \"1:1\"\nhunter2-secret\n").unwrap();
    let o = run(&[
        "initdata",
        "new",
        "--sealgate-toml",
        path_str(&settings),
        path_str(&out),
    ]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("line 2, column 1"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let o = run(&["initdata", "new", "--algorithm", "md5", path_str(&out)]);
    assert_exit(&o, 2);
}

#[test]
fn initdata_new_with_a_kbs_certificate_writes_aa_and_cdh_toml() {
    let dir = TempDir::new("initdata-kbs-cert");
    let pem =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAAECAwQ=\n-----END CERTIFICATE-----\n";
    let cert = dir.write("kbs.pem", pem);
    let out = dir.path("initdata.toml");
    let o = run(&[
        "initdata",
        "new",
        "--kbs-url",
        "https://10.0.2.2:8443",
        "--kbs-cert",
        &cert,
        path_str(&out),
    ]);
    assert_exit(&o, 0);
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in [
        "snp host_data:",
        "tdx mrconfigid:",
        "kbs url:        https://10.0.2.2:8443",
        "kbs cert:       PEM, 1 certificate(s)",
    ] {
        assert!(printed.contains(want), "{want}: {printed}");
    }
    let raw = std::fs::read(&out).unwrap();
    let d = sealgate_core::initdata::InitData::parse(&raw).unwrap();
    let kbs = d.kbs().unwrap().unwrap();
    assert_eq!(kbs.url, "https://10.0.2.2:8443");
    assert_eq!(kbs.cert.as_deref(), Some(pem));
    // Both sections carry it, each in upstream's key.
    let aa = d.entry("aa.toml").unwrap();
    let cdh = d.entry("cdh.toml").unwrap();
    assert!(
        aa.contains("[token_configs.kbs]") && aa.contains("cert = \"\"\""),
        "{aa}"
    );
    assert!(
        cdh.contains("name = \"cc_kbc\"") && cdh.contains("kbs_cert = \"\"\""),
        "{cdh}"
    );
    // The printed digest is the document's.
    let digest: String = d.digest().iter().map(|b| format!("{b:02x}")).collect();
    assert!(printed.contains(&digest), "{printed}");

    // A certificate with http:// is what sealgate refuses: refused here first.
    let o = run(&[
        "initdata",
        "new",
        "--kbs-url",
        "http://10.0.2.2:8080",
        "--kbs-cert",
        &cert,
        path_str(&out),
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("needs an https:// URL"),
        "{}",
        stderr(&o)
    );
    // A private key is never taken for a certificate.
    let key = dir.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let o = run(&[
        "initdata",
        "new",
        "--kbs-url",
        "https://kbs",
        "--kbs-cert",
        &key,
        path_str(&out),
    ]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("never a key"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("AAAA"), "{}", stderr(&o));
    // https:// without a certificate: written, with a warning.
    let o = run(&["initdata", "new", "--kbs", "https://kbs", path_str(&out)]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("without --kbs-cert"), "{}", stderr(&o));
}
