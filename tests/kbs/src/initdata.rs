//! Init-data (protocol notes §4.2): only `format = "toml"`; the body must deserialize to
//! `{version: String, algorithm: "sha256"|"sha384"|"sha512"|"sm3", data: {String: String}}`;
//! the digest is the algorithm over the raw body bytes exactly as sent.
//!
//! For the token, `data` becomes `init_data_claims`, with the values of `aa.toml` and
//! `cdh.toml` converted from TOML to JSON when they parse. (`sm3` is accepted by Trustee but
//! not implemented here: such init-data fails attestation. Trustee's extraction of
//! `policy_data` from a `policy.rego` entry is not reproduced either.)

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::collections::BTreeMap;

/// Parsed init-data: its digest and the claims it contributes to the token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedInitData {
    pub digest: Vec<u8>,
    pub claims: Value,
}

#[derive(Deserialize)]
struct Initdata {
    #[allow(dead_code, reason = "required by Trustee's schema, otherwise unused")]
    version: String,
    algorithm: String,
    data: BTreeMap<String, String>,
}

/// Checks and digests init-data; the error is a reason for the log.
pub(crate) fn parse(format: &str, body: &str) -> Result<ParsedInitData, String> {
    if format != "toml" {
        return Err("Unsupported initdata format".into());
    }
    let initdata: Initdata =
        toml::from_str(body).map_err(|e| format!("parse TOML structured data: {e}"))?;
    let raw = body.as_bytes();
    let digest = match initdata.algorithm.as_str() {
        "sha256" => Sha256::digest(raw).to_vec(),
        "sha384" => Sha384::digest(raw).to_vec(),
        "sha512" => Sha512::digest(raw).to_vec(),
        "sm3" => return Err("init-data algorithm sm3 is not implemented by the test KBS".into()),
        other => return Err(format!("unknown init-data algorithm {other:?}")),
    };
    let mut claims = serde_json::Map::new();
    for (key, text) in initdata.data {
        let converted = (key == "aa.toml" || key == "cdh.toml")
            .then(|| toml::from_str::<toml::Value>(&text).ok())
            .flatten()
            .and_then(|v| serde_json::to_value(v).ok());
        claims.insert(key, converted.unwrap_or(Value::String(text)));
    }
    Ok(ParsedInitData {
        digest,
        claims: Value::Object(claims),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BODY: &str = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://10.0.0.1:8080\"\n'''\n";

    #[test]
    fn worked_example() {
        let parsed = parse("toml", BODY).expect("valid");
        let hex: String = parsed.digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "7e11d1b084ba7b39e855c8941e10e644037ec2437b53950eacd518b5d7602f6ff13cf1de2fdc2cd20deef601824e9e65"
        );
        assert_eq!(
            parsed.claims,
            json!({"aa.toml": {"token_configs": {"kbs": {"url": "http://10.0.0.1:8080"}}}})
        );
    }

    #[test]
    fn rejects() {
        assert!(parse("json", BODY).is_err());
        assert!(parse("toml", &BODY.replace("sha384", "sha-384")).is_err());
        assert!(parse("toml", &BODY.replace("sha384", "SHA384")).is_err());
        assert!(parse("toml", "version = \"0.1.0\"\nalgorithm = \"sha256\"\n").is_err());
        assert!(parse("toml", "not toml at all [").is_err());
    }
}
