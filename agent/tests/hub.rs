//! The server's hub (`sealgate::serve::hub`) against the real test KBS on loopback: one
//! shared session for every caller, re-attestation on token expiry and on 401, the KBS
//! down then up, the status class of each failure per API, the upstream config files under
//! the trust model, and upstream's `GetToken`/`GetEvidence` formats.
//!
//! The hub is single-threaded: the event loop hands it one call at a time, so "100
//! concurrent callers" are 100 calls queued behind each other; the ttrpc tests of the
//! server drive the same through real sockets.

use sealgate::cli::Options;
use sealgate::serve::hub::{Hub, HubErrorKind, HubSettings, Measurement};
use sealgate_core::b64;
use sealgate_core::config::{Settings, TeeChoice};
use sealgate_core::sealed::{self, JsonObject, Secret, SigningJwk};
use std::path::PathBuf;
use std::time::Duration;
use test_kbs::{Config, Effect, Fault, FaultKind, Policy, Rule, Server, Step};

const SECRET: &[u8] = b"the resource value";

fn kbs(config: Config) -> Server {
    let server = Server::start(config).unwrap();
    server
        .add_resource("default/app/secret", SECRET.to_vec())
        .unwrap();
    server
        .add_resource("default/app/denied", b"never".to_vec())
        .unwrap();
    server
}

/// Denies `default/app/denied`, allows the rest to an affirming sample TEE.
fn policy() -> Policy {
    Policy {
        default: Effect::Deny,
        rules: vec![
            Rule {
                effect: Effect::Deny,
                resource: Some("default/app/denied".into()),
                tee: None,
                status: None,
            },
            Rule {
                effect: Effect::Allow,
                resource: None,
                tee: None,
                status: Some(vec!["affirming".into()]),
            },
        ],
    }
}

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("sealgate-hub-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Hub settings for the sample TEE, never reading the host's config or command line.
fn settings(kbs_url: Option<&str>, deadline_secs: u64) -> HubSettings {
    HubSettings {
        options: Options {
            flags: Settings {
                kbs_url: kbs_url.map(String::from),
                tee: Some(TeeChoice::Sample),
                deadline_secs: Some(deadline_secs),
                connect_timeout_ms: Some(1000),
                io_timeout_ms: Some(2000),
                ..Settings::default()
            },
            config_file: Some("/dev/null".into()),
            kernel_cmdline: Some("/dev/null".into()),
        },
        ..HubSettings::default()
    }
}

fn hub(server: &Server) -> Hub {
    Hub::new(settings(Some(&server.url()), 10)).unwrap()
}

fn signing_key() -> SigningJwk {
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut rng = sealgate_core::rng::FillRng(move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    });
    SigningJwk::generate(&mut rng)
}

fn vault(name: &str) -> Secret {
    Secret::vault(
        name.into(),
        "kbs".into(),
        JsonObject::new(),
        JsonObject::new(),
    )
}

#[test]
fn a_hundred_callers_cost_one_attestation() {
    let server = kbs(Config {
        policy: policy(),
        ..Config::default()
    });
    let key = signing_key();
    server
        .add_resource(
            "default/keys/signer",
            key.public()
                .to_jwk_json("kbs:///default/keys/signer")
                .into_bytes(),
        )
        .unwrap();
    let sealed = sealed::seal(
        &vault("kbs:///default/app/secret"),
        &key,
        "kbs:///default/keys/signer",
    )
    .unwrap();
    let mut hub = hub(&server);
    assert_eq!(hub.attestations(), 0, "nothing before the first caller");
    let mut token = None;
    for i in 0..100 {
        match i % 3 {
            0 => assert_eq!(
                hub.get_resource("kbs:///default/app/secret")
                    .unwrap()
                    .as_slice(),
                SECRET
            ),
            1 => assert_eq!(
                hub.unseal_secret(sealed.as_bytes()).unwrap().as_slice(),
                SECRET
            ),
            _ => {
                let t = hub.get_token("kbs").unwrap();
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
                // Every caller gets the one session's token.
                let this = v["token"].as_str().unwrap().to_string();
                assert_eq!(token.get_or_insert(this.clone()), &this);
            }
        }
    }
    assert_eq!(hub.attestations(), 1);
    let stats = server.stats();
    assert_eq!(stats.auth.requests, 1, "one /kbs/v0/auth for 100 callers");
    assert_eq!(stats.attest.requests, 1);
    // 34 GETs of the resource, 33 unseals (the signing key, then the secret).
    assert_eq!(stats.resource.count(200), 34 + 33 * 2);
    let auths = server
        .arrivals()
        .iter()
        .filter(|a| a.path == "/kbs/v0/auth")
        .count();
    assert_eq!(auths, 1);
}

#[test]
fn get_token_is_upstreams_token_and_tee_keypair() {
    let server = kbs(Config::default());
    let mut hub = hub(&server);
    let t = hub.get_token("kbs").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{{token, tee_keypair}}");
    let token = obj["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let pem = obj["tee_keypair"].as_str().unwrap();
    // The default tee key is EC P-256: PKCS#8, as upstream's keypair.to_pem.
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "PKCS#8");
    assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
    assert_eq!(hub.attestations(), 1);
    // Other token types.
    assert_eq!(
        hub.get_token("coco_as").unwrap_err().kind,
        HubErrorKind::Unsupported
    );
    let e = hub.get_token("bogus\n\x1b[2J").unwrap_err();
    assert_eq!(e.kind, HubErrorKind::InvalidArgument);
    assert!(!e.message.contains('\x1b'), "escaped: {}", e.message);
}

#[test]
fn token_expiry_leads_to_attesting_again_before_the_kbs_refuses() {
    // A 2-second token; the hub renews it shortly before its exp.
    let server = kbs(Config {
        token_lifetime: Duration::from_secs(2),
        ..Config::default()
    });
    let mut hub = hub(&server);
    hub.get_resource("kbs:///default/app/secret").unwrap();
    hub.get_resource("kbs:///default/app/secret").unwrap();
    assert_eq!(hub.attestations(), 1);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        hub.get_resource("kbs:///default/app/secret")
            .unwrap()
            .as_slice(),
        SECRET
    );
    assert_eq!(hub.attestations(), 2, "the expired token was replaced");
    let stats = server.stats();
    assert_eq!(stats.auth.requests, 2);
    assert_eq!(
        stats.resource.count(401),
        0,
        "renewed before the KBS refused it"
    );
    assert_eq!(stats.resource.count(200), 3);
    // The token handed out is the new one too.
    hub.get_token("kbs").unwrap();
    assert_eq!(hub.attestations(), 2);
}

#[test]
fn a_401_leads_to_attesting_again() {
    let server = kbs(Config::default());
    let mut hub = hub(&server);
    hub.get_resource("kbs:///default/app/secret").unwrap();
    // The KBS forgets the session and refuses the token once (a KBS restart, a key
    // rotation): 401, one new handshake, the GET again.
    server
        .add_fault(Fault::new(Step::Resource(None), FaultKind::InvalidToken).times(1))
        .unwrap();
    assert_eq!(
        hub.get_resource("kbs:///default/app/secret")
            .unwrap()
            .as_slice(),
        SECRET
    );
    assert_eq!(hub.attestations(), 2);
    let stats = server.stats();
    assert_eq!(stats.resource.count(401), 1);
    assert_eq!(stats.auth.requests, 2);
    // A token that is expired when it arrives (exp before iat): the next caller attests
    // again rather than use it.
    server
        .add_fault(Fault::new(Step::Attest, FaultKind::InvalidToken).times(1))
        .unwrap();
    server
        .add_fault(Fault::new(Step::Resource(None), FaultKind::InvalidToken).times(1))
        .unwrap();
    // The KBS refuses the expired token as well: the hub attests again until it holds a
    // good one, within the resource's three GETs.
    assert_eq!(
        hub.get_resource("kbs:///default/app/secret")
            .unwrap()
            .as_slice(),
        SECRET
    );
    assert_eq!(hub.attestations(), 4);
    assert_eq!(server.stats().auth.requests, 4);
    // And that one serves the next callers.
    hub.get_resource("kbs:///default/app/secret").unwrap();
    assert_eq!(hub.attestations(), 4);
}

#[test]
fn the_kbs_down_then_up() {
    // Every response closes its connection, so that a stopped KBS is unreachable at once
    // (a kept-alive connection would outlive the listener).
    let server = kbs(Config {
        close_after_response: true,
        ..Config::default()
    });
    let addr = server.addr();
    let mut hub = Hub::new(settings(Some(&server.url()), 2)).unwrap();
    hub.get_resource("kbs:///default/app/secret").unwrap();
    server.shutdown();

    // Down: every operation that needs the KBS fails as Unavailable within its deadline
    // (2 s here) and says why; the hub stays usable.
    let e = hub.get_resource("kbs:///default/app/secret").unwrap_err();
    assert_eq!(e.kind, HubErrorKind::Unavailable, "{e}");
    assert!(e.message.contains("deadline"), "{}", e.message);
    // The cached token needs no KBS.
    assert!(hub.get_token("kbs").is_ok());
    // Evidence and the TEE type need no KBS.
    assert!(hub.get_evidence(b"x").is_ok());
    assert_eq!(hub.tee_type(), "sample");

    // Up again, as a new KBS on the same address (it knows no session: 401, attest).
    let server = kbs(Config {
        listen: addr,
        ..Config::default()
    });
    assert_eq!(
        hub.get_resource("kbs:///default/app/secret")
            .unwrap()
            .as_slice(),
        SECRET
    );
    assert_eq!(server.stats().attest.requests, 1);
    assert!(hub.get_token("kbs").is_ok());
}

#[test]
fn each_failure_has_its_status_class() {
    let server = kbs(Config {
        policy: policy(),
        ..Config::default()
    });
    let key = signing_key();
    server
        .add_resource(
            "default/keys/signer",
            key.public()
                .to_jwk_json("kbs:///default/keys/signer")
                .into_bytes(),
        )
        .unwrap();
    let mut hub = hub(&server);
    let seal = |name: &str| sealed::seal(&vault(name), &key, "kbs:///default/keys/signer").unwrap();

    // Denied by the resource policy: PermissionDenied, for GetResource and UnsealSecret.
    let e = hub.get_resource("kbs:///default/app/denied").unwrap_err();
    assert_eq!(e.kind, HubErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("default/app/denied"), "{e}");
    let e = hub
        .unseal_secret(seal("kbs:///default/app/denied").as_bytes())
        .unwrap_err();
    assert_eq!(e.kind, HubErrorKind::PermissionDenied, "{e}");

    // Absent: NotFound.
    let e = hub.get_resource("kbs:///default/app/missing").unwrap_err();
    assert_eq!(e.kind, HubErrorKind::NotFound, "{e}");
    let e = hub
        .unseal_secret(seal("kbs:///default/app/missing").as_bytes())
        .unwrap_err();
    assert_eq!(e.kind, HubErrorKind::NotFound, "{e}");

    // Bad input: InvalidArgument, before any KBS call.
    let before = server.stats().requests;
    for bad in ["", "kbs:///only/two", "http://x/a/b/c", &"a".repeat(5000)] {
        let e = hub.get_resource(bad).unwrap_err();
        assert_eq!(e.kind, HubErrorKind::InvalidArgument, "{bad:.40}: {e}");
    }
    for bad in [&b"sealed.not-a-jws"[..], b"", &[0xff; 70000]] {
        let e = hub.unseal_secret(bad).unwrap_err();
        assert_eq!(e.kind, HubErrorKind::InvalidArgument, "{e}");
    }
    let e = hub.get_evidence(&[0; 65]).unwrap_err();
    assert_eq!(e.kind, HubErrorKind::InvalidArgument, "{e}");
    assert_eq!(server.stats().requests, before);

    // A signature by another key: PermissionDenied; the secret is not fetched.
    let other = sealed::seal(
        &vault("kbs:///default/app/secret"),
        &signing_key_2(),
        "kbs:///default/keys/signer",
    )
    .unwrap();
    let e = hub.unseal_secret(other.as_bytes()).unwrap_err();
    assert_eq!(e.kind, HubErrorKind::PermissionDenied, "{e}");

    // An envelope secret is refused clearly.
    let envelope = Secret::from_json(
        br#"{"version":"0.1.0","type":"envelope","provider":"aliyun","key_id":"k","encrypted_key":"AAAA","encrypted_data":"AAAAAAAAAAAAAAAAAAAAAA==","wrap_type":"A256GCM","iv":"AAAAAAAAAAAAAAAA","provider_settings":{},"annotations":{}}"#,
    )
    .unwrap();
    let e = hub
        .unseal_secret(
            sealed::seal(&envelope, &key, "kbs:///default/keys/signer")
                .unwrap()
                .as_bytes(),
        )
        .unwrap_err();
    assert_eq!(e.kind, HubErrorKind::Unsupported, "{e}");
    assert!(e.message.contains("envelope"), "{e}");

    // No message carries the resource value.
    assert!(!e.message.contains("resource value"));

    // An attestation the KBS refuses: PermissionDenied for every API that needs one.
    let refusing = kbs(Config {
        verifiers: test_kbs::Verifiers::empty(),
        ..Config::default()
    });
    let mut hub = Hub::new(settings(Some(&refusing.url()), 10)).unwrap();
    for e in [
        hub.get_token("kbs").map(|_| ()).unwrap_err(),
        hub.get_resource("kbs:///default/app/secret")
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(e.kind, HubErrorKind::PermissionDenied, "{e}");
    }
}

fn signing_key_2() -> SigningJwk {
    let mut x = 0x0fed_cba9_8765_4321u64;
    let mut rng = sealgate_core::rng::FillRng(move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    });
    SigningJwk::generate(&mut rng)
}

#[test]
fn without_a_kbs_the_kbs_apis_are_unavailable_and_the_rest_works() {
    let mut hub = Hub::new(settings(None, 10)).unwrap();
    assert_eq!(
        hub.get_token("kbs").unwrap_err().kind,
        HubErrorKind::Unavailable
    );
    assert_eq!(
        hub.get_resource("kbs:///a/b/c").unwrap_err().kind,
        HubErrorKind::Unavailable
    );
    // GetEvidence as upstream's sample attester: report_data = base64 of the raw bytes.
    let ev: serde_json::Value =
        serde_json::from_slice(&hub.get_evidence(b"nonce").unwrap()).unwrap();
    assert_eq!(ev["svn"], "1");
    assert_eq!(ev["report_data"], b64::std_encode(b"nonce"));
    assert!(hub.get_additional_evidence(b"x").unwrap().is_empty());
    assert_eq!(hub.tee_type(), "sample");
    assert!(hub.additional_tees().is_empty());
    assert_eq!(
        hub.extend_runtime_measurement("d", "o", "c", None).unwrap(),
        Measurement::NotEnabled
    );
    assert_eq!(hub.attestations(), 0);
}

/// Init-data for the sample TEE with the given `aa.toml` and `cdh.toml`.
fn init_data(aa: &str, cdh: &str) -> String {
    format!(
        "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = '''\n{aa}'''\n\"cdh.toml\" = '''\n{cdh}'''\n"
    )
}

#[test]
fn upstream_configs_count_only_as_verified_init_data() {
    let server = kbs(Config::default());
    let dir = Dir::new("configs");
    let aa = format!(
        "[token_configs.kbs]\nurl = \"{}\"\n[eventlog_config]\nenable_eventlog = true\n",
        server.url()
    );
    let cdh = format!(
        "socket = \"unix:///run/confidential-containers/cdh.sock\"\nskip_sealed_secret_verification = true\n[kbc]\nname = \"cc_kbc\"\nurl = \"{}\"\n",
        server.url()
    );
    let initdata = dir.write("initdata.toml", &init_data(&aa, &cdh));
    let aa_path = dir.write("aa.toml", &aa);
    let cdh_path = dir.write("cdh.toml", &cdh);
    // An unsigned sealed secret (a signature by nobody's key).
    let unsigned = sealed::seal(
        &vault("kbs:///default/app/secret"),
        &signing_key_2(),
        "kbs:///default/keys/nobody",
    )
    .unwrap();

    // As kata starts AA and CDH: --initdata-toml and the -c files it wrote from it. The
    // KBS comes from init-data, the event log is enabled (NOT_SUPPORTED on the sample
    // TEE, as upstream's non-TDX answer), and verification is skipped as configured.
    let mut s = settings(None, 10);
    s.initdata_toml = Some(initdata.clone());
    s.aa_config = Some(aa_path);
    s.cdh_config = Some(cdh_path);
    let mut hub = Hub::new(s).unwrap();
    assert_eq!(
        hub.extend_runtime_measurement("d", "o", "c", None).unwrap(),
        Measurement::NotSupported
    );
    assert_eq!(
        hub.unseal_secret(unsigned.as_bytes()).unwrap().as_slice(),
        SECRET
    );

    // -c files that are not init-data's entries are ignored: no KBS from them, no
    // skipping of verification.
    let evil_cdh = dir.write(
        "evil-cdh.toml",
        "skip_sealed_secret_verification = true\n[kbc]\nname = \"cc_kbc\"\nurl = \"http://127.0.0.1:9\"\n",
    );
    let plain = dir.write(
        "plain-initdata.toml",
        &init_data(
            &format!("[token_configs.kbs]\nurl = \"{}\"\n", server.url()),
            "",
        ),
    );
    let mut s = settings(None, 10);
    s.initdata_toml = Some(plain);
    s.cdh_config = Some(evil_cdh.clone());
    let mut hub = Hub::new(s).unwrap();
    let e = hub.unseal_secret(unsigned.as_bytes()).unwrap_err();
    assert_ne!(e.kind, HubErrorKind::Internal, "{e}");
    assert_eq!(
        hub.extend_runtime_measurement("d", "o", "c", None).unwrap(),
        Measurement::NotEnabled
    );
    // Without init-data at all, a -c file sets nothing either.
    let mut s = settings(None, 10);
    s.cdh_config = Some(evil_cdh);
    let mut hub = Hub::new(s).unwrap();
    assert_eq!(
        hub.get_resource("kbs:///default/app/secret")
            .unwrap_err()
            .kind,
        HubErrorKind::Unavailable,
        "no KBS from an unmeasured file"
    );

    // A malformed or missing init-data fails the start (before any socket exists).
    let bad = dir.write("bad-initdata.toml", "version = \"0.1.0\"\n[[[\n");
    let mut s = settings(None, 10);
    s.initdata_toml = Some(bad);
    assert!(Hub::new(s).is_err());
    let mut s = settings(None, 10);
    s.initdata_toml = Some(dir.0.join("absent.toml").to_str().unwrap().into());
    assert!(Hub::new(s).is_err());
}
