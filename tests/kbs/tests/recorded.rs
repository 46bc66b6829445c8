//! The test KBS against the live Trustee recordings in `tests/vectors/trustee/`.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use test_kbs::{Config, Server};

fn server() -> Server {
    let server = Server::start(Config::default()).expect("start");
    server
        .add_resource("default/mysecret/secret", b"hello-from-trustee".to_vec())
        .expect("resource");
    server
}

fn recorded_key(entry: &Value) -> TeeKey {
    let key = &entry["tee_key"];
    match (key["kty"].as_str(), key["crv"].as_str()) {
        (Some("EC"), Some("P-256")) => TeeKey::P256(
            p256::SecretKey::from_slice(&unhex(key["private_scalar_hex"].as_str().unwrap()))
                .unwrap(),
        ),
        (Some("EC"), Some("P-521")) => TeeKey::P521(
            p521::SecretKey::from_slice(&unhex(key["private_scalar_hex"].as_str().unwrap()))
                .unwrap(),
        ),
        (Some("RSA"), _) => TeeKey::rsa(),
        (Some("EC"), _) => TeeKey::PublicOnly(key["public_jwk_as_sent"].clone()),
        other => panic!("unexpected key {other:?}"),
    }
}

/// The test's own JWE decryption opens what the real Trustee sent: it is a trustworthy judge.
#[test]
fn test_decryptor_opens_the_real_trustee_jwes() {
    for name in [
        "p256-cookie.json",
        "p521-cookie.json",
        "rsa-oaep-256-bearer.json",
        "binary-resource.json",
    ] {
        let v = vector(name);
        let key = recorded_key(&v);
        assert_eq!(key.jwk(), v["tee_key"]["public_jwk_json_as_sent"], "{name}");
        let body = v["resource"]["response"]["body"].as_str().unwrap();
        assert_eq!(
            key.decrypt(body.as_bytes()),
            unhex(v["expected_plaintext"]["hex"].as_str().unwrap()),
            "{name}"
        );
    }
}

/// The test's binding helper reproduces every recorded JCS string and hash.
#[test]
fn test_binding_helper_matches_recorded_jcs_cases() {
    let cases = vector("jcs-cases.json");
    for case in cases["cases"].as_array().unwrap() {
        let obj = &case["hashed_object"];
        let jcs = binding_jcs(
            &obj["tee-pubkey"].to_string(),
            obj["nonce"].as_str().unwrap(),
            obj["additional-evidence"].as_str(),
        );
        assert_eq!(jcs, case["jcs"], "{}", case["name"]);
        assert_eq!(
            report_data(
                &obj["tee-pubkey"].to_string(),
                obj["nonce"].as_str().unwrap(),
                obj["additional-evidence"].as_str()
            ),
            case["report_data_b64"],
        );
    }
}

fn replay(server: &Server, request: &Value) -> RawResponse {
    let headers: Vec<(String, String)> = request["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    let mut raw = format!(
        "{} {} HTTP/1.1\r\n",
        request["method"].as_str().unwrap(),
        request["path"].as_str().unwrap()
    );
    for (name, value) in &headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(request["body"].as_str().unwrap_or_default());
    let mut client = Client::connect(server.addr());
    client.send_raw(raw.as_bytes()).unwrap();
    client.read_response().unwrap()
}

fn recorded_error(name: &str) -> Value {
    let v = vector("errors.json");
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no recorded error {name}"))
        .clone()
}

/// Compares status, exact body, Content-Length and the absence of Content-Type.
fn assert_like_recording(actual: &RawResponse, recorded: &Value) {
    let response = &recorded["response"];
    assert_eq!(actual.status, response["status"], "{}", recorded["name"]);
    assert_eq!(actual.text(), response["body"], "{}", recorded["name"]);
    assert_eq!(actual.header("content-type"), None);
    let recorded_length = response["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "content-length")
        .map(|h| h[1].as_str().unwrap().to_owned());
    assert_eq!(
        actual.header("content-length").map(str::to_owned),
        recorded_length
    );
    assert_eq!(actual.header_count("set-cookie"), 0);
}

/// The recorded failures whose answers do not depend on server randomness, replayed byte for byte.
#[test]
fn replays_stateless_recorded_errors() {
    let server = server();
    for name in [
        "auth-protocol-version-0.3.0",
        "attest-without-cookie",
        "resource-without-credentials",
        "unknown-plugin",
    ] {
        let recorded = recorded_error(name);
        let actual = replay(&server, &recorded["request"]);
        assert_like_recording(&actual, &recorded);
    }
}

/// The stateful recorded failures, rebuilt against a fresh session of the test KBS.
#[test]
fn reproduces_stateful_recorded_errors() {
    let server = server();
    let mut client = Client::connect(server.addr());
    let key = TeeKey::p256();

    // attest-wrong-nonce: a correctly bound attestation for another nonce.
    let recorded = recorded_error("attest-wrong-nonce");
    let session = auth(&mut client);
    let other_nonce = recorded["notes"]["nonce_sent"].as_str().unwrap();
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &attestation(other_nonce, &key.jwk()),
        )
        .unwrap();
    assert_like_recording(&r, &recorded);

    // attest-report-data-sha256: the right object hashed with SHA-256 instead of SHA-384.
    let recorded = recorded_error("attest-report-data-sha256");
    let session = auth(&mut client);
    let jwk = key.jwk();
    let sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(binding_jcs(&jwk, &session.nonce, Some("")).as_bytes())
    };
    let body = attestation(&session.nonce, &jwk).replace(
        &report_data(&jwk, &session.nonce, Some("")),
        &sealgate_core::b64::std_encode(&sha256),
    );
    let r = client
        .post_json(
            "/kbs/v0/attest",
            &[("Cookie", &session.cookie_header())],
            &body,
        )
        .unwrap();
    assert_like_recording(&r, &recorded);

    // resource-missing and resource-malformed-path-2-segments, after a good attestation.
    let (session, _) = attest(&mut client, &key);
    let cookie = session.cookie_header();
    for (name, path) in [
        ("resource-missing", "/kbs/v0/resource/default/mysecret/nope"),
        (
            "resource-malformed-path-2-segments",
            "/kbs/v0/resource/default/mysecret",
        ),
    ] {
        let recorded = recorded_error(name);
        assert_eq!(recorded["request"]["path"], path);
        let r = client.get(path, &[("Cookie", &cookie)]).unwrap();
        assert_like_recording(&r, &recorded);
    }

    // resource-after-p384-attestation: attestation succeeds, the JWE cannot be made.
    let recorded = recorded_error("resource-after-p384-attestation");
    let p384 = recorded_key(&recorded);
    let (session, _) = attest(&mut client, &p384);
    let r = client
        .get(
            "/kbs/v0/resource/default/mysecret/secret",
            &[("Cookie", &session.cookie_header())],
        )
        .unwrap();
    assert_like_recording(&r, &recorded);

    // All of it on one connection.
    assert_eq!(server.stats().connections, 1);
}

fn header_names(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect()
}

fn recorded_header_names(response: &Value) -> Vec<String> {
    response["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_owned())
        .collect()
}

fn jwt_part(token: &str, i: usize) -> String {
    String::from_utf8(b64url_dec(token.split('.').nth(i).unwrap())).unwrap()
}

/// A full exchange has the recorded shape: header order, cookie and challenge format, the
/// token's header and claims byte for byte (once the random values are swapped in), and a JWE
/// the client can open.
#[test]
fn full_exchanges_have_the_recorded_shape() {
    let server = server();
    for (name, key) in [
        ("p256-cookie.json", TeeKey::p256()),
        ("p521-cookie.json", TeeKey::p521()),
        ("rsa-oaep-256-bearer.json", TeeKey::rsa()),
    ] {
        let v = vector(name);
        let mut client = Client::connect(server.addr());

        let auth = client.post_json("/kbs/v0/auth", &[], AUTH_SAMPLE).unwrap();
        assert_eq!(auth.status, 200);
        assert_eq!(
            header_names(&auth.headers),
            recorded_header_names(&v["auth"]["response"])
        );
        assert_eq!(auth.header("content-type"), Some("application/json"));
        let nonce = auth.json()["nonce"].as_str().unwrap().to_owned();
        assert_eq!(nonce.len(), 44);
        assert_eq!(sealgate_core::b64::std_decode(&nonce).unwrap().len(), 32);
        assert_eq!(
            auth.text(),
            format!(r#"{{"nonce":"{nonce}","extra-params":""}}"#)
        );
        let set_cookie = auth.header("set-cookie").unwrap().to_owned();
        let (pair, expires) = set_cookie.split_once("; Expires=").unwrap();
        let id = pair.strip_prefix("kbs-session-id=").unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(
            expires.ends_with(" GMT") && !expires.contains(';'),
            "{set_cookie}"
        );
        assert_expires_in(expires, auth.header("date").unwrap(), 300);

        let jwk = key.jwk();
        let attest = client
            .post_json(
                "/kbs/v0/attest",
                &[("Cookie", &format!("kbs-session-id={id}"))],
                &attestation(&nonce, &jwk),
            )
            .unwrap();
        assert_eq!(attest.status, 200, "{}", attest.text());
        assert_eq!(
            header_names(&attest.headers),
            recorded_header_names(&v["attest"]["response"])
        );
        assert_eq!(attest.header("set-cookie"), Some(set_cookie.as_str()));
        let token = attest.json()["token"].as_str().unwrap().to_owned();
        assert_eq!(attest.text(), format!(r#"{{"token":"{token}"}}"#));

        // Header: the recorded one with this server's key.
        let recorded_token = v["attest"]["token"].as_str().unwrap();
        let ours: Value = serde_json::from_str(&jwt_part(&token, 0)).unwrap();
        let theirs: Value = serde_json::from_str(&jwt_part(recorded_token, 0)).unwrap();
        let expected_header = jwt_part(recorded_token, 0)
            .replace(
                theirs["jwk"]["x"].as_str().unwrap(),
                ours["jwk"]["x"].as_str().unwrap(),
            )
            .replace(
                theirs["jwk"]["y"].as_str().unwrap(),
                ours["jwk"]["y"].as_str().unwrap(),
            );
        assert_eq!(jwt_part(&token, 0), expected_header);

        // Claims: the recorded ones with this exchange's nonce, key, report data and times.
        let recorded_claims = jwt_part(recorded_token, 1);
        let rec: Value = serde_json::from_str(&recorded_claims).unwrap();
        let our_claims = claims(&token);
        let rec_rt = &rec["submods"]["cpu0"]["ear.veraison.annotated-evidence"];
        let mut expected = recorded_claims
            .replace(
                rec_rt["runtime_data_claims"]["nonce"].as_str().unwrap(),
                &nonce,
            )
            .replace(
                rec_rt["report_data"].as_str().unwrap(),
                &report_data(&jwk, &nonce, Some("")),
            );
        let jwk_value: Value = serde_json::from_str(&jwk).unwrap();
        for member in ["x", "y", "n"] {
            if let Some(recorded_member) =
                rec_rt["runtime_data_claims"]["tee-pubkey"][member].as_str()
            {
                expected = expected.replace(recorded_member, jwk_value[member].as_str().unwrap());
            }
        }
        for time in ["iat", "exp"] {
            expected = expected.replace(
                &format!("\"{time}\":{}", rec[time]),
                &format!("\"{time}\":{}", our_claims[time]),
            );
        }
        assert_eq!(jwt_part(&token, 1), expected, "{name}");
        assert_eq!(
            our_claims["exp"].as_u64().unwrap() - our_claims["iat"].as_u64().unwrap(),
            300
        );

        // Resource, with the credential the recording used.
        let credential = if name.contains("bearer") {
            ("Authorization", format!("Bearer {token}"))
        } else {
            ("Cookie", format!("kbs-session-id={id}"))
        };
        let resource = client
            .get(
                "/kbs/v0/resource/default/mysecret/secret",
                &[(credential.0, &credential.1)],
            )
            .unwrap();
        assert_eq!(resource.status, 200, "{}", resource.text());
        assert_eq!(
            header_names(&resource.headers),
            recorded_header_names(&v["resource"]["response"])
        );
        assert_eq!(resource.header("content-type"), Some("application/json"));
        assert_eq!(key.decrypt(&resource.body), b"hello-from-trustee");
        // Same JWE layout and sizes as the recording.
        let jwe: Value = resource.json();
        let rec_jwe: Value =
            serde_json::from_str(v["resource"]["response"]["body"].as_str().unwrap()).unwrap();
        let layout = |text: &str| -> Vec<String> {
            text.split('"')
                .skip(1)
                .step_by(4)
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            layout(resource.text()),
            layout(v["resource"]["response"]["body"].as_str().unwrap())
        );
        for member in ["encrypted_key", "iv", "tag"] {
            assert_eq!(
                b64url_dec(jwe[member].as_str().unwrap()).len(),
                b64url_dec(rec_jwe[member].as_str().unwrap()).len(),
                "{name} {member}"
            );
        }
        let protected = String::from_utf8(b64url_dec(jwe["protected"].as_str().unwrap())).unwrap();
        let rec_protected = v["resource"]["jwe_decoded"]["protected_header_json"]
            .as_str()
            .unwrap();
        let mut expected_protected = rec_protected.to_owned();
        if let Some(epk) = rec_protected.find(r#""epk""#) {
            let ours: Value = serde_json::from_str(&protected).unwrap();
            let theirs: Value = serde_json::from_str(rec_protected).unwrap();
            assert!(epk > 0);
            for c in ["x", "y"] {
                expected_protected = expected_protected.replace(
                    theirs["epk"][c].as_str().unwrap(),
                    ours["epk"][c].as_str().unwrap(),
                );
            }
        }
        assert_eq!(protected, expected_protected, "{name}");
    }
}

fn parse_http_date(text: &str) -> u64 {
    // "Sun, 22 Nov 2026 11:28:47 GMT"
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day: u64 = parts[1].parse().unwrap();
    let month = months.iter().position(|m| *m == parts[2]).unwrap() as u64 + 1;
    let year: u64 = parts[3].parse().unwrap();
    let (h, m, s): (u64, u64, u64) = (
        parts[4].parse().unwrap(),
        parts[5].parse().unwrap(),
        parts[6].parse().unwrap(),
    );
    // Days from civil (H. Hinnant), for years >= 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + m * 60 + s
}

fn assert_expires_in(expires: &str, date: &str, seconds: u64) {
    let expires = parse_http_date(expires);
    let date = parse_http_date(date);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(date.abs_diff(now) <= 2, "Date header is now");
    assert!(
        expires.abs_diff(date + seconds) <= 1,
        "Expires is {seconds} s after Date"
    );
}

#[test]
fn http_date_parser_agrees_with_a_recording() {
    assert_eq!(
        parse_http_date("Sun, 22 Nov 2026 11:23:47 GMT"),
        1_795_346_627
    );
    let _ = Duration::ZERO;
}
