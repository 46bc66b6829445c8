//! RCAR behaviour of the test KBS: successful exchanges, token lookup, errors, policy, expiry.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use test_kbs::{Config, EarStatus, Effect, Policy, Rule, SampleVerifier, Server, Tee, Verifiers};

const SECRET: &str = "/kbs/v0/resource/default/mysecret/secret";

fn start(config: Config) -> Server {
    let server = Server::start(config).expect("start");
    server
        .add_resource("default/mysecret/secret", b"s3cret".to_vec())
        .unwrap();
    server
}

fn server() -> Server {
    start(Config::default())
}

#[test]
fn every_key_type_gets_a_jwe_it_can_open_by_cookie_and_by_bearer() {
    let server = server();
    for key in [TeeKey::p256(), TeeKey::p521(), TeeKey::rsa()] {
        let mut client = Client::connect(server.addr());
        let (session, token) = attest(&mut client, &key);
        let by_cookie = client
            .get(SECRET, &[("Cookie", &session.cookie_header())])
            .unwrap();
        assert_eq!(by_cookie.status, 200, "{}", by_cookie.text());
        assert_eq!(key.decrypt(&by_cookie.body), b"s3cret");
        let mut fresh = Client::connect(server.addr());
        let by_bearer = fresh
            .get(SECRET, &[("Authorization", &format!("Bearer {token}"))])
            .unwrap();
        assert_eq!(by_bearer.status, 200, "{}", by_bearer.text());
        assert_eq!(key.decrypt(&by_bearer.body), b"s3cret");
        assert_ne!(
            by_cookie.body, by_bearer.body,
            "fresh CEK, IV (and epk) each time"
        );
    }
}

#[test]
fn one_connection_one_attestation_many_secrets() {
    let server = server();
    for i in 0..5 {
        server
            .add_resource(&format!("default/keys/k{i}"), vec![i; 3])
            .unwrap();
    }
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    for i in 0..5u8 {
        let r = client
            .get(
                &format!("/kbs/v0/resource/default/keys/k{i}"),
                &[("Cookie", &session.cookie_header())],
            )
            .unwrap();
        assert_eq!(key.decrypt(&r.body), vec![i; 3]);
    }
    let stats = server.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.requests, 7);
    assert_eq!((stats.auth.requests, stats.auth.count(200)), (1, 1));
    assert_eq!((stats.attest.requests, stats.attest.count(200)), (1, 1));
    assert_eq!((stats.resource.requests, stats.resource.count(200)), (5, 5));
    assert_eq!(stats.faults_injected, 0);
    server.reset_stats();
    assert_eq!(server.stats(), test_kbs::Stats::default());
}

#[test]
fn resources_come_from_a_directory_binary_safe_and_bounded() {
    let dir = TempDir::new("resources");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    dir.write("default/keys/disk-key", &all_bytes);
    dir.write("default/keys/too-big", &vec![7u8; 2049]);
    dir.write("default/keys/exactly/nested", b"x");
    dir.write("default/shadow/tag", b"from file");
    let server = start(Config {
        resources_dir: Some(dir.0.clone()),
        max_resource_size: 2048,
        ..Config::default()
    });
    server
        .add_resource("default/shadow/tag", b"from api".to_vec())
        .unwrap();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    let cookie = session.cookie_header();
    let mut get = |path: &str| client.get(path, &[("Cookie", &cookie)]).unwrap();
    assert_eq!(
        key.decrypt(&get("/kbs/v0/resource/default/keys/disk-key").body),
        all_bytes
    );
    assert_eq!(
        key.decrypt(&get("/kbs/v0/resource/default/shadow/tag").body),
        b"from api"
    );
    for path in [
        "/kbs/v0/resource/default/keys/too-big",
        "/kbs/v0/resource/default/keys/exactly",
        "/kbs/v0/resource/default/keys/missing",
        "/kbs/v0/resource/default/keys/exactly/nested",
        "/kbs/v0/resource/default/../keys/disk-key",
        "/kbs/v0/resource/default/keys/.hidden",
        "/kbs/v0/resource/default/keys/",
        "/kbs/v0/resource/",
    ] {
        assert_error(
            &get(path),
            401,
            "PluginInternalError",
            "Plugin internal error",
        );
    }
    assert!(server.remove_resource("default/shadow/tag"));
    assert_eq!(
        key.decrypt(&get("/kbs/v0/resource/default/shadow/tag").body),
        b"from file"
    );
    assert!(server.add_resource("default/two", b"x".to_vec()).is_err());
    assert!(server.add_resource("a/b/../c", b"x".to_vec()).is_err());
}

#[test]
fn attest_replay_returns_the_old_token_with_the_same_cookie() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let session = auth(&mut client);
    let cookie = session.cookie_header();
    let body = attestation(&session.nonce, &key.jwk());
    let first = client
        .post_json("/kbs/v0/attest", &[("Cookie", &cookie)], &body)
        .unwrap();
    assert_eq!(first.status, 200);
    // Any body that parses as an Attestation gets the old token, even a wrongly bound one.
    let other = attestation("another nonce", &TeeKey::p256().jwk());
    let second = client
        .post_json("/kbs/v0/attest", &[("Cookie", &cookie)], &other)
        .unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("set-cookie"), first.header("set-cookie"));
    // A body that does not parse fails even then.
    let broken = client
        .post_json("/kbs/v0/attest", &[("Cookie", &cookie)], "{}")
        .unwrap();
    assert_error(
        &broken,
        401,
        "AttestationError",
        "Attestation error: RCAR handshake Attest failed",
    );
}

fn auth_with(client: &mut Client, body: &str) -> RawResponse {
    client.post_json("/kbs/v0/auth", &[], body).unwrap()
}

#[test]
fn auth_version_tee_and_body_rules() {
    let server = server();
    let mut client = Client::connect(server.addr());
    let request = |version: &str, tee: &str| {
        json!({"version": version, "tee": tee, "extra-params": {}}).to_string()
    };
    for version in ["0.4.0", "0.4.0+abc"] {
        assert_eq!(
            auth_with(&mut client, &request(version, "sample")).status,
            200
        );
    }
    for tee in ["snp", "tdx", "az-snp-vtpm", "nvidiadpu", "sampledevice"] {
        assert_eq!(
            auth_with(&mut client, &request("0.4.0", tee)).status,
            200,
            "{tee}"
        );
    }
    let prefix = "Attestation error: RCAR handshake Auth failed: ";
    for version in ["0.4.0-rc.1", "0.4.1", "0.3.0", "0.1.1", "1.0.0"] {
        assert_error(
            &auth_with(&mut client, &request(version, "sample")),
            401,
            "AttestationError",
            &format!(
                "{prefix}KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is {version}"
            ),
        );
    }
    for version in ["0.4", "v0.4.0", ""] {
        assert_error(
            &auth_with(&mut client, &request(version, "sample")),
            401,
            "AttestationError",
            &format!("{prefix}failed to parse KBS version"),
        );
    }
    for body in [
        request("0.4.0", "SNP"),
        request("0.4.0", "azsnpvtpm"),
        request("0.4.0", "sev"),
        r#"{"version":"0.4.0","tee":"sample"}"#.to_owned(),
        "not json".to_owned(),
        String::new(),
    ] {
        assert_error(
            &auth_with(&mut client, &body),
            401,
            "AttestationError",
            &format!("{prefix}deserialize Request"),
        );
    }
    // A version string that needs escaping comes back escaped, not raw.
    let r = auth_with(&mut client, &request("0.4.0\"x", "sample"));
    assert_eq!(
        r.json()["detail"],
        format!("{prefix}failed to parse KBS version")
    );
    assert_eq!(server.stats().connections, 1);
}

fn attest_body(client: &mut Client, session: &Session, body: &str) -> RawResponse {
    client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            body,
        )
        .unwrap()
}

fn assert_attest_failed(r: &RawResponse) {
    assert_error(
        r,
        401,
        "AttestationError",
        "Attestation error: RCAR handshake Attest failed",
    );
}

const INIT_DATA: &str = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://10.0.0.1:8080\"\n'''\n";

#[test]
fn attest_failures_leave_the_session_usable() {
    let server = server();
    let key = TeeKey::p256();
    let jwk = key.jwk();
    let mut client = Client::connect(server.addr());
    let session = auth(&mut client);
    let nonce = session.nonce.clone();
    let good = attestation(&nonce, &jwk);
    let failing = [
        // init-data in another format, or not Trustee's schema
        good.replace(
            r#""init-data":null"#,
            r#""init-data":{"format":"json","body":"{}"}"#,
        ),
        attestation_with(
            &nonce,
            &jwk,
            "",
            Some(&INIT_DATA.replace("sha384", "sha-384")),
        ),
        // additional_evidence missing, or not a TEE map
        good.replace(r#","additional_evidence":"""#, ""),
        attestation_with(&nonce, &jwk, r#"{"k":"v"}"#, None),
        attestation_with(&nonce, &jwk, "not json", None),
        // the old 0.1.x flat format
        format!(r#"{{"tee-pubkey":{jwk},"tee-evidence":"{{}}"}}"#),
        // evidence problems
        good.replace(r#""svn":"1""#, r#""svn":1"#),
        good.replace(r#""primary_evidence":{"#, r#""primary_evidence":{"x":{"#)
            .replacen("},\"additional", "}},\"additional", 1),
        // a tee-pubkey member outside Trustee's set changes nothing, but a missing one fails
        good.replace(r#""alg":"ECDH-ES+A256KW","#, ""),
        "[]".to_owned(),
    ];
    for body in &failing {
        assert_attest_failed(&attest_body(&mut client, &session, body));
    }
    // A `kid` the server drops keeps the binding intact.
    let with_kid = good.replacen(r#""kty":"EC","#, r#""kty":"EC","kid":"k1","#, 1);
    let r = attest_body(&mut client, &session, &with_kid);
    assert_eq!(r.status, 200, "{}", r.text());
    // Unknown cookie.
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", "kbs-session-id=00000000000000000000000000000000")],
            &good,
        )
        .unwrap();
    assert_attest_failed(&r);
}

#[test]
fn tees_without_a_verifier_fail_attestation() {
    let server = server();
    let mut client = Client::connect(server.addr());
    let r = auth_with(
        &mut client,
        r#"{"version":"0.4.0","tee":"snp","extra-params":{}}"#,
    );
    let session = Session {
        cookie: r.session_cookie(),
        nonce: r.json()["nonce"].as_str().unwrap().to_owned(),
    };
    let body = attestation(&session.nonce, &TeeKey::p256().jwk());
    assert_attest_failed(&attest_body(&mut client, &session, &body));
}

#[test]
fn init_data_goes_into_the_token() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let session = auth(&mut client);
    let r = attest_body(
        &mut client,
        &session,
        &attestation_with(&session.nonce, &key.jwk(), "", Some(INIT_DATA)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let claims = claims(r.json()["token"].as_str().unwrap());
    let evidence = &claims["submods"]["cpu0"]["ear.veraison.annotated-evidence"];
    assert_eq!(
        evidence["init_data"],
        sealgate_core::b64::std_encode(&unhex(
            "7e11d1b084ba7b39e855c8941e10e644037ec2437b53950eacd518b5d7602f6ff13cf1de2fdc2cd20deef601824e9e65"
        ))
    );
    assert_eq!(
        evidence["init_data_claims"],
        json!({"aa.toml": {"token_configs": {"kbs": {"url": "http://10.0.0.1:8080"}}}})
    );
    assert!(
        evidence["sample"].get("init_data").is_none(),
        "moved out of the TEE claims"
    );
}

/// The recorded tricky case: a `sampledevice` map as additional evidence, every JCS string rule
/// exercised; the device is bound to `{nonce, tee-pubkey}` and appears as `gpu0`.
#[test]
fn additional_device_evidence() {
    let cases = vector("jcs-cases.json");
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "additional-evidence-tricky-sampledevice-map")
        .unwrap()
        .clone();
    let recorded_rd = case["device_binding"]["report_data_b64"].as_str().unwrap();
    let template = case["hashed_object"]["additional-evidence"]
        .as_str()
        .unwrap();
    let server = server();
    let key = TeeKey::p256();
    let jwk = key.jwk();
    let mut client = Client::connect(server.addr());
    let session = auth(&mut client);
    let device_rd = report_data(&jwk, &session.nonce, None);
    let additional = template.replace(recorded_rd, &device_rd);
    let r = attest_body(
        &mut client,
        &session,
        &attestation_with(&session.nonce, &jwk, &additional, None),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let claims = claims(r.json()["token"].as_str().unwrap());
    let gpu0 = &claims["submods"]["gpu0"];
    assert_eq!(gpu0["ear.status"], "contraindicated");
    assert_eq!(
        gpu0["ear.veraison.annotated-evidence"]["sampledevice"],
        json!({"svn": "2"})
    );
    assert_eq!(
        gpu0["ear.veraison.annotated-evidence"]["report_data"],
        device_rd
    );
    assert!(gpu0.get("ear.trustee.identifiers").is_none());
    assert_eq!(
        claims["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["runtime_data_claims"]["additional-evidence"],
        additional
    );
    // The device bound to the primary runtime data (with additional-evidence) fails.
    let session = auth(&mut client);
    let wrong = template.replace(recorded_rd, &report_data(&jwk, &session.nonce, Some("")));
    assert_attest_failed(&attest_body(
        &mut client,
        &session,
        &attestation_with(&session.nonce, &jwk, &wrong, None),
    ));
}

#[test]
fn token_lookup_cookie_first_then_bearer() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (_, token) = attest(&mut client, &key);
    let bearer = format!("Bearer {token}");
    let authed_only = auth(&mut client).cookie_header();
    let unknown = "kbs-session-id=ffffffffffffffffffffffffffffffff";

    // A cookie that does not lead to an Attested session falls back to the Bearer token.
    for cookie in [authed_only.as_str(), unknown] {
        let r = client
            .get(SECRET, &[("Cookie", cookie), ("Authorization", &bearer)])
            .unwrap();
        assert_eq!(r.status, 200, "{cookie}");
        let r = client.get(SECRET, &[("Cookie", cookie)]).unwrap();
        assert_error(&r, 401, "TokenNotFound", "Attestation Token not found");
    }
    for header in [
        format!("bearer {token}"),
        format!("Basic {token}"),
        "Bearer ".into(),
    ] {
        let r = client.get(SECRET, &[("Authorization", &header)]).unwrap();
        assert_error(&r, 401, "TokenNotFound", "Attestation Token not found");
    }
    // A token that does not verify.
    let other_server = server_token();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [other_server, tampered, "a.b.c".into(), "x".into()] {
        let r = client
            .get(SECRET, &[("Authorization", &format!("Bearer {bad}"))])
            .unwrap();
        assert_error(&r, 401, "TokenVerifierError", "Token Verifier error");
    }
}

/// A valid token from another test KBS instance (another signing key).
fn server_token() -> String {
    let other = server();
    let mut client = Client::connect(other.addr());
    attest(&mut client, &TeeKey::p256()).1
}

#[test]
fn plugin_lookup_happens_before_any_token_check() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    let cookie = session.cookie_header();
    for (method, path, plugin) in [
        ("GET", "/kbs/v0/auth", "auth"),
        ("GET", "/kbs/v0/attest", "attest"),
        ("PUT", "/kbs/v0/auth", "auth"),
        ("GET", "/kbs/v0/nosuchplugin/a/b/c", "nosuchplugin"),
        ("GET", "/kbs/v0/resource-policy", "resource-policy"),
        ("GET", "/kbs/v0/", ""),
    ] {
        for headers in [&[][..], &[("Cookie", cookie.as_str())][..]] {
            let r = client.request(method, path, headers, None).unwrap();
            assert_error(
                &r,
                404,
                "PluginNotFound",
                &format!("Plugin {plugin} not found"),
            );
        }
    }
    // The resource plugin with the query string (ignored by the plugin).
    let r = client
        .get(&format!("{SECRET}?version=1&x"), &[("Cookie", &cookie)])
        .unwrap();
    assert_eq!(key.decrypt(&r.body), b"s3cret");
}

#[test]
fn resource_policy_allow_and_deny() {
    let server = server();
    server
        .add_resource("default/keys/k1", b"k1".to_vec())
        .unwrap();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    let cookie = session.cookie_header();
    let mut get = |path: &str| client.get(path, &[("Cookie", &cookie)]).unwrap();
    let deny = |r: &RawResponse| assert_error(r, 401, "PolicyDeny", "Access denied by policy");

    // Default: affirming sample is allowed everything.
    assert_eq!(get(SECRET).status, 200);
    server.set_policy(Policy::deny_all()).unwrap();
    deny(&get(SECRET));
    // Policy before the resource: a malformed path is denied, not PluginInternalError.
    deny(&get("/kbs/v0/resource/default/mysecret"));

    server
        .set_policy(
            Policy::from_toml(
                r#"
                [[rules]]
                effect = "deny"
                resource = "default/keys/*"
                [[rules]]
                effect = "allow"
                tee = ["sample"]
                "#,
            )
            .unwrap(),
        )
        .unwrap();
    deny(&get("/kbs/v0/resource/default/keys/k1"));
    assert_eq!(get(SECRET).status, 200);

    server
        .set_policy(Policy {
            default: Effect::Deny,
            rules: vec![Rule {
                effect: Effect::Allow,
                resource: None,
                tee: Some(vec!["snp".into(), "tdx".into()]),
                status: None,
            }],
        })
        .unwrap();
    deny(&get(SECRET));
    server.set_policy(Policy::allow_all()).unwrap();
    assert_eq!(get("/kbs/v0/resource/default/keys/k1").status, 200);
    let bad = Policy::from_toml("[[rules]]\neffect = \"allow\"\ntee = [\"SNP\"]");
    assert!(bad.is_err());
}

#[test]
fn default_policy_wants_affirming() {
    let mut verifiers = Verifiers::default();
    verifiers.insert(
        Tee::Sample,
        SampleVerifier {
            status: EarStatus::Warning,
            ..SampleVerifier::default()
        },
    );
    let server = start(Config {
        verifiers,
        ..Config::default()
    });
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, token) = attest(&mut client, &key);
    assert_eq!(claims(&token)["submods"]["cpu0"]["ear.status"], "warning");
    let r = client
        .get(SECRET, &[("Cookie", &session.cookie_header())])
        .unwrap();
    assert_error(&r, 401, "PolicyDeny", "Access denied by policy");
}

#[test]
fn sessions_expire_but_tokens_live_on() {
    let server = start(Config {
        session_timeout: Duration::from_secs(1),
        ..Config::default()
    });
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, token) = attest(&mut client, &key);
    let cookie = session.cookie_header();
    assert_eq!(
        client.get(SECRET, &[("Cookie", &cookie)]).unwrap().status,
        200
    );
    let late = auth(&mut client);
    std::thread::sleep(Duration::from_millis(1200));
    let r = client.get(SECRET, &[("Cookie", &cookie)]).unwrap();
    assert_error(&r, 401, "TokenNotFound", "Attestation Token not found");
    let r = client
        .get(
            SECRET,
            &[
                ("Cookie", &cookie),
                ("Authorization", &format!("Bearer {token}")),
            ],
        )
        .unwrap();
    assert_eq!(key.decrypt(&r.body), b"s3cret");
    // A late /attest on an expired session.
    let body = attestation(&late.nonce, &key.jwk());
    assert_attest_failed(&attest_body(&mut client, &late, &body));
    // Tests can also drop a session directly.
    let (session, _) = attest(&mut client, &key);
    assert!(server.expire_session(&session.cookie));
    assert!(!server.expire_session(&session.cookie));
    let r = client
        .get(SECRET, &[("Cookie", &session.cookie_header())])
        .unwrap();
    assert_error(&r, 401, "TokenNotFound", "Attestation Token not found");
}

#[test]
fn non_get_resource_requests_fail_inside_the_plugin() {
    let server = server();
    let key = TeeKey::p256();
    let mut client = Client::connect(server.addr());
    let (session, _) = attest(&mut client, &key);
    let r = client
        .request(
            "PUT",
            SECRET,
            &[("Cookie", &session.cookie_header())],
            Some(b"x"),
        )
        .unwrap();
    assert_error(&r, 401, "PluginInternalError", "Plugin internal error");
    let r = client.request("DELETE", SECRET, &[], None).unwrap();
    assert_error(&r, 401, "TokenNotFound", "Attestation Token not found");
    let _ = Value::Null;
}
