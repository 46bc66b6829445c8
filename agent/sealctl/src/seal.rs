//! `sealctl seal vault`: sign a sealed secret that references a KBS resource, byte for
//! byte what upstream's `secret seal … vault` prints for the same inputs.

use sealgate_core::sealed::{self, JsonObject, KeySource, Secret, SigningJwk};

use crate::args::{self, Failure};
use crate::{info, read_limited, show, warn};

const COMMAND: &str = "seal";
const VAULT: &str = "seal vault";

const HELP: &str = "\
Usage: sealctl seal vault --resource-uri URI --signing-key PRIVATE_JWK_FILE --kid KID
                          [--provider kbs] [--provider-settings JSON] [--annotations JSON]

Sign a sealed secret (sealed.<JWS>, ES256) and print it on stdout. Only 'vault'
secrets can be sealed: they reference a value held by the provider. Envelope
secrets need a KMS and are not supported.

The value itself is NOT in the sealed secret: provision it to the KBS as the
resource URI separately.

Options:
      --resource-uri URI     The KBS resource holding the value:
                             kbs:///<repo>/<type>/<tag> (or kbs+<plugin>://...)
      --signing-key FILE     Private EC P-256 JWK to sign with (from 'sealctl keygen'
                             or upstream 'secret keygen')
      --kid KID              Key id the guest uses to find the verification key: a
                             plain KBS resource path kbs:///<repo>/<type>/<tag> holding
                             the public JWK (no plugin, no query), or the name of a
                             local key file in the guest's key directory
      --provider NAME        Provider that resolves the URI [default: kbs]; sealgate
                             only unseals 'kbs'
      --provider-settings JSON
                             Provider settings, a JSON object [default: {}]
      --annotations JSON     Annotations, a JSON object [default: {}]
  -h, --help                 Show this help
";

const OPTS: &[&str] = &[
    "--resource-uri",
    "--signing-key",
    "--kid",
    "--provider",
    "--provider-settings",
    "--annotations",
];

/// Largest signing key file read.
const MAX_KEY_FILE: usize = 64 * 1024;

pub fn run(argv: &[String]) -> Result<(), Failure> {
    match argv.first().map(String::as_str) {
        None => Err(Failure::usage(
            COMMAND,
            "missing secret type (only 'vault' is supported)",
        )),
        Some("-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        Some("vault") => vault(&argv[1..]),
        Some("envelope") => Err(Failure::usage(
            COMMAND,
            "envelope secrets need a KMS provider; sealctl only seals 'vault' secrets",
        )),
        Some(other) => Err(Failure::usage(
            COMMAND,
            format!(
                "unknown secret type '{}' (only 'vault' is supported)",
                show(other)
            ),
        )),
    }
}

fn vault(argv: &[String]) -> Result<(), Failure> {
    let parsed = args::parse(VAULT, argv, OPTS)?;
    if parsed.help {
        print!("{HELP}");
        return Ok(());
    }
    if let Some(extra) = parsed.positionals.first() {
        return Err(Failure::usage(
            VAULT,
            format!("unexpected argument '{}'", show(extra)),
        ));
    }
    let uri = args::required(VAULT, &parsed, "--resource-uri")?;
    let key_file = args::required(VAULT, &parsed, "--signing-key")?;
    let kid = args::required(VAULT, &parsed, "--kid")?;
    let provider = parsed.value("--provider").unwrap_or("kbs");
    let object = |name: &'static str| match parsed.value(name) {
        None => Ok(JsonObject::new()),
        Some(text) => JsonObject::from_json(text.as_bytes())
            .map_err(|e| Failure::usage(VAULT, format!("{name}: {e}"))),
    };
    let provider_settings = object("--provider-settings")?;
    let annotations = object("--annotations")?;

    if provider.is_empty() {
        return Err(Failure::usage(VAULT, "--provider must not be empty"));
    }
    let kbs = provider.eq_ignore_ascii_case("kbs");
    if kbs {
        check_resource_uri(uri).map_err(|why| {
            Failure::usage(VAULT, format!("--resource-uri '{}' {why}", show(uri)))
        })?;
    } else if uri.is_empty() {
        return Err(Failure::usage(VAULT, "--resource-uri must not be empty"));
    }
    let source = sealed::key_source(kid)
        .map_err(|e| Failure::usage(VAULT, format!("--kid '{}': {e}", show(kid))))?;

    let key_json = read_limited(key_file, MAX_KEY_FILE, "signing key")?;
    let key = SigningJwk::from_json(&key_json)
        .map_err(|e| Failure::failed(format!("signing key '{key_file}': {e}")))?;
    drop(key_json);

    let secret = Secret::vault(
        uri.to_string(),
        provider.to_string(),
        provider_settings,
        annotations,
    );
    let sealed = sealed::seal(&secret, &key, kid)
        .map_err(|e| Failure::failed(format!("cannot seal: {e}")))?;
    println!("{sealed}");

    if kbs {
        warn!(
            "the secret value is not in the sealed secret: provision it to the KBS as resource {} separately",
            show(uri)
        );
    } else {
        warn!(
            "provider '{}': the value must be provisioned to it separately; sealgate only unseals provider kbs",
            show(provider)
        );
    }
    match source {
        KeySource::Kbs(uri) => info!(
            "the guest fetches the public JWK from the KBS resource {}",
            show(uri)
        ),
        KeySource::Local(name) => info!(
            "the guest reads the public JWK from the local key file {}/{}",
            sealed::LOCAL_KEY_DIR,
            show(name)
        ),
    }
    Ok(())
}

/// A KBS resource URI as the guest will fetch it. For the default `resource` plugin
/// (`kbs://`) the path must be exactly `<repo>/<type>/<tag>`.
fn check_resource_uri(uri: &str) -> Result<(), &'static str> {
    if !sealed::is_kbs_resource_uri(uri) {
        return Err("is not a kbs:///<repo>/<type>/<tag> (or kbs+<plugin>://...) resource URI");
    }
    let (scheme, rest) = uri.split_once("://").unwrap_or_default();
    if scheme.eq_ignore_ascii_case("kbs") {
        let path = rest
            .split_once('/')
            .map(|(_, path)| path)
            .unwrap_or_default();
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() != 3 || segments.iter().any(|s| s.is_empty()) {
            return Err("must have the path <repo>/<type>/<tag> (three non-empty segments)");
        }
    }
    Ok(())
}
