//! CoCo sealed secrets end to end: a directory of `sealed.<JWS>` files (as a mounted
//! Kubernetes Secret), made with the real `sealctl`, unsealed by the real `sealgate` into
//! the same relative paths under the sealed directory.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// The KBS resource holding the public JWK that verifies KBS-keyed secrets.
const KEY_URI: &str = "kbs:///default/signing-key/pub";

/// A world with a KBS-provisioned signing key, a local one, and values to seal.
struct Sealing {
    w: World,
    /// Private key whose public JWK is the KBS resource `KEY_URI`.
    kbs_key: PathBuf,
    /// Private key whose public JWK is the local key file `local-signer`.
    local_key: PathBuf,
    /// A key nobody trusts.
    rogue_key: PathBuf,
    keys_dir: PathBuf,
}

impl Sealing {
    fn new(tag: &str) -> Sealing {
        let w = World::new(tag);
        let k = w.tmp.mkdir("operator");
        let (kbs_key, kbs_pub) = keygen(&k, "kbs-signer");
        let (local_key, local_pub) = keygen(&k, "local-signer");
        let (rogue_key, _) = keygen(&k, "rogue");
        // The public JWK is configuration, not a secret: plain add_resource.
        w.kbs
            .add_resource("default/signing-key/pub", std::fs::read(&kbs_pub).unwrap())
            .unwrap();
        let keys_dir = w.tmp.mkdir("keys");
        std::fs::copy(&local_pub, keys_dir.join("local-signer")).unwrap();
        for (path, value) in [
            ("default/app/db-password", "sealed-db-password-91f0c3"),
            ("default/app/api-token", "sealed-api-token-2b7d55"),
            ("default/app/k8s-secret", "sealed-k8s-secret-e80a1f"),
        ] {
            w.secret(path, value);
        }
        Sealing {
            w,
            kbs_key,
            local_key,
            rogue_key,
            keys_dir,
        }
    }

    /// `sealgate unseal --sealed-secrets DIR --sealed-secret-keys KEYS`, nothing else.
    fn unseal(&self, input: &Path) -> Sealgate {
        self.w
            .unseal()
            .args(["--sealed-secrets", s(input)])
            .args(["--sealed-secret-keys", s(&self.keys_dir)])
    }

    /// A new input directory.
    fn input(&self, name: &str) -> PathBuf {
        self.w.tmp.mkdir(name)
    }
}

/// Writes `content` + newline (as `sealctl … > file` does) at `dir/rel`.
fn put(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, format!("{content}\n")).unwrap();
}

#[test]
fn directory_of_sealed_secrets_is_unsealed_into_the_same_paths() {
    let t = Sealing::new("sealed-dir");
    let input = t.input("input");
    // (a) verified with the KBS-provisioned key, in a subdirectory.
    put(
        &input,
        "db/password",
        &seal_vault("kbs:///default/app/db-password", &t.kbs_key, KEY_URI),
    );
    // (b) verified with a local key file.
    put(
        &input,
        "api-token",
        &seal_vault("kbs:///default/app/api-token", &t.local_key, "local-signer"),
    );
    // (c) Kubernetes' atomic writer: ..2024_01_01/secret, ..data -> ..2024_01_01,
    // secret -> ..data/secret.
    put(
        &input,
        "..2024_01_01/secret",
        &seal_vault("kbs:///default/app/k8s-secret", &t.kbs_key, KEY_URI),
    );
    std::os::unix::fs::symlink("..2024_01_01", input.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/secret", input.join("secret")).unwrap();
    // (d) not sealed: ignored.
    put(&input, "README.txt", "this file is not a sealed secret");
    put(&input, "db/notes", "neither is this one");
    // Never read: symlinks out of the input directory (relative and absolute), and a
    // symlink to a directory (Kubernetes `items` with a '/' in their path).
    let outside = t.w.tmp.mkdir("outside");
    put(
        &outside,
        "sealed",
        &seal_vault("kbs:///default/app/api-token", &t.kbs_key, KEY_URI),
    );
    std::os::unix::fs::symlink("../outside/sealed", input.join("escape-rel")).unwrap();
    std::os::unix::fs::symlink(outside.join("sealed"), input.join("escape-abs")).unwrap();
    put(
        &input,
        "..2024_01_01/sub/nested",
        &seal_vault("kbs:///default/app/api-token", &t.kbs_key, KEY_URI),
    );
    std::os::unix::fs::symlink("..data/sub", input.join("sub")).unwrap();

    let ran = t.unseal(&input).run();
    ran.ok().says(&[
        "escape-rel -> \"../outside/sealed\": it points outside",
        "escape-abs",
        "sub -> \"..data/sub\": symlinked directories are not descended into",
    ]);
    assert_eq!(
        files(&t.w.sealed_tree()),
        [
            ("api-token", "sealed-api-token-2b7d55"),
            ("db/password", "sealed-db-password-91f0c3"),
            ("secret", "sealed-k8s-secret-e80a1f"),
        ]
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect(),
        "the sealed ones, at their relative paths, nothing else{}",
        ran.dump()
    );
    for f in ["api-token", "db/password", "secret"] {
        assert_eq!(mode_of(&t.w.sealed.join(f)), 0o400);
    }
    // The KBS key is fetched once for the two secrets that name it.
    let stats = t.w.kbs.stats();
    assert_eq!(requests(&stats), (1, 1, 4), "1 key + 3 values: {stats:?}");
    assert_eq!(ran.summary().secrets, 3);
}

#[test]
fn resources_and_sealed_secrets_in_one_run() {
    let t = Sealing::new("mixed");
    t.w.secret("default/plain/resource", "plain-resource-value-c4e2");
    let input = t.input("input");
    put(
        &input,
        "sealed-one",
        &seal_vault("kbs:///default/app/api-token", &t.kbs_key, KEY_URI),
    );
    let ran = t
        .unseal(&input)
        .resource("kbs:///default/plain/resource", "plain")
        .run();
    ran.ok();
    assert_eq!(t.w.read("plain"), b"plain-resource-value-c4e2");
    assert_eq!(t.w.read("sealed-one"), b"sealed-api-token-2b7d55");
    assert_eq!(t.w.kbs.stats().connections, 1);

    // An output path claimed twice is refused before anything is fetched.
    t.w.kbs.reset_stats();
    let ran = t
        .unseal(&input)
        .resource("kbs:///default/plain/resource", "sealed-one")
        .run();
    ran.fails(1, &["two secrets would be written to sealed-one"]);
    assert_eq!(t.w.kbs.stats().requests, 0);
}

/// The ways a sealed secret can fail verification. Each is refused (nothing written, not
/// even the valid secret beside it), and accepted with a warning when unsigned secrets
/// are allowed.
#[test]
fn unverifiable_sealed_secrets_are_refused_unless_explicitly_allowed() {
    let t = Sealing::new("unverified");
    let good = seal_vault("kbs:///default/app/db-password", &t.kbs_key, KEY_URI);
    let other = seal_vault("kbs:///default/app/api-token", &t.kbs_key, KEY_URI);
    // Payload of one secret with the signature of another: tampered.
    let tampered = {
        let g: Vec<&str> = good.split('.').collect();
        let o: Vec<&str> = other.split('.').collect();
        format!("{}.{}.{}.{}", g[0], g[1], o[2], g[3])
    };
    // Signed by a key that is not the one its kid names.
    let wrong_key = seal_vault("kbs:///default/app/api-token", &t.rogue_key, KEY_URI);
    // The legacy unsigned form upstream still decodes when verification is off.
    let legacy = format!(
        "sealed.fakejwsheader.{}.fakesignature",
        sealgate_core::b64::url_encode(
            br#"{"version":"0.1.0","type":"vault","name":"kbs:///default/app/api-token","provider":"kbs","provider_settings":{},"annotations":{}}"#
        )
    );
    let cases = [
        (
            "tampered",
            tampered,
            "sealed secret signature verification failed",
            true,
        ),
        (
            "wrong-key",
            wrong_key,
            "sealed secret signature verification failed",
            true,
        ),
        (
            "legacy",
            legacy,
            "sealed secret header is not valid unpadded base64url",
            false,
        ),
    ];
    for (name, sealed, why, reaches_kbs) in cases {
        let input = t.input(&format!("in-{name}"));
        put(&input, "a-valid-one", &good);
        put(&input, "suspect", &sealed);
        t.w.kbs.reset_stats();
        let ran = t.unseal(&input).run();
        ran.fails(1, &[why, "suspect"]);
        assert_eq!(
            t.w.sealed_tree().len(),
            1,
            "{name}: nothing written{}",
            ran.dump()
        );
        if !reaches_kbs {
            assert_eq!(
                t.w.kbs.stats().requests,
                0,
                "{name}: refused while planning, before the KBS{}",
                ran.dump()
            );
        }

        let ran = t
            .unseal(&input)
            .arg("--allow-unsigned-sealed-secrets")
            .run();
        ran.ok()
            .says(&["INSECURE", "suspect", why, "accepting it unverified"]);
        assert_eq!(t.w.read("suspect"), b"sealed-api-token-2b7d55", "{name}");
        assert_eq!(t.w.read("a-valid-one"), b"sealed-db-password-91f0c3");
        std::fs::remove_dir_all(&t.w.sealed).unwrap();
        std::fs::create_dir(&t.w.sealed).unwrap();
    }
}

#[test]
fn missing_local_key_and_escaping_kid_are_refused() {
    let t = Sealing::new("kid");
    let input = t.input("input");
    put(
        &input,
        "s",
        &seal_vault(
            "kbs:///default/app/api-token",
            &t.local_key,
            "not-provisioned",
        ),
    );
    t.unseal(&input).run().fails(
        1,
        &["verification key 'not-provisioned'", "nothing was written"],
    );

    // A local key name that is a symlink out of the key directory.
    std::os::unix::fs::symlink(
        t.w.tmp.join("operator/local-signer-public.json"),
        t.keys_dir.join("outside"),
    )
    .unwrap();
    put(
        &input,
        "s",
        &seal_vault("kbs:///default/app/api-token", &t.local_key, "outside"),
    );
    t.unseal(&input)
        .run()
        .fails(1, &["verification key 'outside' resolves outside"]);
    assert_eq!(t.w.kbs.stats().resource.requests, 0, "no value fetched");
}

#[test]
fn envelope_secrets_are_not_supported() {
    use sealgate_core::sealed::{Secret, SigningJwk, seal};
    let t = Sealing::new("envelope");
    let envelope = Secret::from_json(
        br#"{"version":"0.1.0","type":"envelope","key_id":"xxx","encrypted_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","encrypted_data":"Knv7aKCGsH75bOHq3ZwdLd7nSljyDF90UXMRfERatQ==","wrap_type":"A256GCM","iv":"AAECAwQFBgcICQoL","provider":"aliyun","provider_settings":{},"annotations":{}}"#,
    )
    .unwrap();
    let key = SigningJwk::from_json(&std::fs::read(&t.kbs_key).unwrap()).unwrap();
    let sealed = seal(&envelope, &key, KEY_URI).unwrap();
    let input = t.input("input");
    put(&input, "envelope", &sealed);
    let ran = t.unseal(&input).run();
    ran.fails(
        1,
        &[
            "sealed secret envelope",
            "provider 'aliyun' is not supported",
            "nothing was written",
        ],
    );
}

/// KATA `tests/integration/kubernetes/confidential_common.sh`: the upstream sealed secret
/// and its public key, unsealed to "unsealed_secret".
#[test]
fn upstream_kata_vector_end_to_end() {
    const KATA_JWK: &str = r#"{"alg":"ES256","crv":"P-256","kid":"sealed-secret-test-key","kty":"EC","use":"sig","x":"4jH376AuwTUCIx65AJ_56D7SZzWf7sGcEA7_Csq21UM","y":"rjdceysnSa5ZfzWOPGCURMUuHndxBAGUu4ISTIVN0yA"}"#;
    const KATA_VECTOR: &str = "sealed.eyJiNjQiOnRydWUsImFsZyI6IkVTMjU2Iiwia2lkIjoia2JzOi8vL2RlZmF1bHQvc2lnbmluZy1rZXkvc2VhbGVkLXNlY3JldCJ9.eyJ2ZXJzaW9uIjoiMC4xLjAiLCJ0eXBlIjoidmF1bHQiLCJuYW1lIjoia2JzOi8vL2RlZmF1bHQvc2VhbGVkLXNlY3JldC90ZXN0IiwicHJvdmlkZXIiOiJrYnMiLCJwcm92aWRlcl9zZXR0aW5ncyI6e30sImFubm90YXRpb25zIjp7fX0.ZI2fTv5ramHqHQa9DKBFD5hlJ_Mjf6cEIcpsNGshpyhEiKklML0abfH600TD7LAFHf53oDIJmEcVsDtJ20UafQ";
    let w = World::new("kata");
    w.kbs
        .add_resource("default/signing-key/sealed-secret", KATA_JWK)
        .unwrap();
    w.secret("default/sealed-secret/test", "unsealed_secret");
    let input = w.tmp.mkdir("input");
    std::fs::write(input.join("kata-secret"), KATA_VECTOR).unwrap();
    let ran = w.unseal().args(["--sealed-secrets", s(&input)]).run();
    ran.ok();
    assert_eq!(w.read("kata-secret"), b"unsealed_secret", "{}", ran.dump());
    assert_eq!(requests(&w.kbs.stats()), (1, 1, 2));

    // The same vector with a different key behind its kid: refused.
    let (_, rogue_pub) = keygen(&w.tmp.mkdir("rogue"), "rogue");
    w.kbs
        .add_resource(
            "default/signing-key/sealed-secret",
            std::fs::read(rogue_pub).unwrap(),
        )
        .unwrap();
    std::fs::remove_file(w.sealed.join("kata-secret")).unwrap();
    w.unseal()
        .args(["--sealed-secrets", s(&input)])
        .run()
        .fails(1, &["signature verification failed"]);
}

#[test]
fn allowing_unsigned_secrets_accepts_one_whose_key_cannot_be_obtained() {
    // With --allow-unsigned-sealed-secrets, a secret whose verification key cannot be
    // obtained is treated like one with a bad signature: accepted, loudly. (sealgate still
    // tries to verify first; upstream CDH with verification off never fetches the key.)
    let t = Sealing::new("unsigned-nokey");
    let input = t.input("input");
    put(
        &input,
        "s",
        &seal_vault(
            "kbs:///default/app/api-token",
            &t.kbs_key,
            "kbs:///default/signing-key/absent",
        ),
    );
    let ran = t
        .unseal(&input)
        .arg("--allow-unsigned-sealed-secrets")
        .run();
    ran.ok().says(&[
        "INSECURE: sealed secret s: no verification key for kid 'kbs:///default/signing-key/absent'",
    ]);
    assert_eq!(
        files(&t.w.sealed_tree()),
        [("s".to_string(), b"sealed-api-token-2b7d55".to_vec())]
            .into_iter()
            .collect(),
        "{}",
        ran.dump()
    );
    // Without the flag the same run fails, naming the KBS's answer for the key.
    let t = Sealing::new("signed-nokey");
    let input = t.input("input");
    put(
        &input,
        "s",
        &seal_vault(
            "kbs:///default/app/api-token",
            &t.kbs_key,
            "kbs:///default/signing-key/absent",
        ),
    );
    t.unseal(&input).run().fails(
        1,
        &[
            "sealed secret s: kbs:///default/signing-key/absent: refused after 3 attempts",
            "PluginInternalError",
        ],
    );
}

/// `sealed.<header>.<payload>.<signature>` with the header replaced by one naming `kid`
/// (the signature no longer verifies; the kid is what is under test).
fn with_kid(sealed: &str, kid: &str) -> String {
    let parts: Vec<&str> = sealed.split('.').collect();
    let header = format!(r#"{{"b64":true,"alg":"ES256","kid":"{kid}"}}"#);
    format!(
        "{}.{}.{}.{}",
        parts[0],
        sealgate_core::b64::url_encode(header.as_bytes()),
        parts[2],
        parts[3]
    )
}

#[test]
fn a_kid_naming_a_plugin_or_a_query_is_refused_before_any_request() {
    let t = Sealing::new("kid-plugin");
    let good = seal_vault("kbs:///default/app/db-password", &t.kbs_key, KEY_URI);
    for kid in [
        "kbs+plugin://kbs.example/a/b/c?x=y",
        "kbs+resource:///default/signing-key/pub",
        "kbs:///default/signing-key/pub?x=y",
    ] {
        let input = t.input(&format!("in-{}", kid.len()));
        // Listed first: without the early check its key would be fetched first.
        put(&input, "a-valid-one", &good);
        put(&input, "z-suspect", &with_kid(&good, kid));
        t.w.kbs.reset_stats();
        let ran = t.unseal(&input).run();
        ran.fails(
            1,
            &[
                "z-suspect",
                "a KBS verification key must be a plain resource path kbs:///<repo>/<type>/<tag> (no plugin, no query)",
            ],
        );
        assert_eq!(
            t.w.kbs.stats().requests,
            0,
            "{kid}: refused while planning, before the KBS{}",
            ran.dump()
        );
        assert!(t.w.sealed_tree().len() <= 1, "nothing written");

        // With the insecure flag the secret is accepted unverified, but its kid is never
        // fetched: only the valid one's key and the two values are.
        t.w.kbs.reset_stats();
        let ran = t
            .unseal(&input)
            .arg("--allow-unsigned-sealed-secrets")
            .run();
        ran.ok().says(&["INSECURE", "z-suspect"]);
        let stats = t.w.kbs.stats();
        assert_eq!(stats.resource.requests, 3, "{kid}: {stats:?}{}", ran.dump());
        assert_eq!(
            stats.requests,
            stats.auth.requests + stats.attest.requests + stats.resource.requests,
            "{kid}: no request to another plugin: {stats:?}"
        );
        std::fs::remove_dir_all(&t.w.sealed).unwrap();
        std::fs::create_dir(&t.w.sealed).unwrap();
    }
}

#[test]
fn each_verification_key_is_fetched_at_most_once_per_run() {
    // Two secrets naming the same absent key, with the insecure flag (so that the run
    // goes on after the first failure): the key is asked for once, not once per secret.
    let t = Sealing::new("kid-once");
    let input = t.input("input");
    for (name, uri) in [
        ("one", "kbs:///default/app/api-token"),
        ("two", "kbs:///default/app/db-password"),
    ] {
        put(
            &input,
            name,
            &seal_vault(uri, &t.kbs_key, "kbs:///default/signing-key/absent"),
        );
    }
    let ran = t
        .unseal(&input)
        .arg("--allow-unsigned-sealed-secrets")
        .run();
    ran.ok();
    let stats = t.w.kbs.stats();
    // One fetch of the absent key (the KBS refuses it with a 401: MAX_RESOURCE_ATTEMPTS
    // GETs, attesting again in between), then the two values.
    let key_gets = stats.resource.requests - 2;
    assert_eq!(
        key_gets,
        u64::from(sealgate_core::kbs::MAX_RESOURCE_ATTEMPTS),
        "GETs of the absent key: {stats:?}{}",
        ran.dump()
    );
    assert_eq!(
        ran.count("no verification key for kid 'kbs:///default/signing-key/absent'"),
        2,
        "{}",
        ran.dump()
    );
}
