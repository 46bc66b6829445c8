//! `sealctl inspect`: decode a sealed secret, optionally verify it. Prints structure and
//! references only; envelope keys and data are shown as lengths.

use sealgate_core::b64;
use sealgate_core::sealed::{
    self, JsonObject, KeySource, PublicJwk, SealedError, SealedSecret, Secret, SecretContent,
    Unseal,
};

use crate::args::{self, Failure};
use crate::{read_limited, show};

const COMMAND: &str = "inspect";

const HELP: &str = "\
Usage: sealctl inspect [--key PUBLIC_JWK_FILE] [FILE|-]

Decode a sealed secret (read from FILE, or stdin for '-' or no FILE; surrounding
whitespace is ignored) and show its header (alg, kid), type, version and the
reference it holds. Envelope keys and data are shown as lengths only.

With --key the ES256 signature is verified against that public (or private) EC
P-256 JWK: 'signature: valid', or exit status 1 if it does not verify.

Options:
      --key FILE     JWK to verify the signature with
  -h, --help         Show this help
";

/// Largest input read: a sealed secret plus room for surrounding whitespace.
const MAX_INPUT: usize = sealed::MAX_SEALED_LEN + 4096;
const MAX_KEY_FILE: usize = 64 * 1024;

pub fn run(argv: &[String]) -> Result<(), Failure> {
    let parsed = args::parse(COMMAND, argv, &["--key"])?;
    if parsed.help {
        print!("{HELP}");
        return Ok(());
    }
    let input = match parsed.positionals.as_slice() {
        [] => "-",
        [one] => one.as_str(),
        [_, extra, ..] => {
            return Err(Failure::usage(
                COMMAND,
                format!("unexpected argument '{}'", show(extra)),
            ));
        }
    };
    let key = match parsed.value("--key") {
        None => None,
        Some(path) => {
            let json = read_limited(path, MAX_KEY_FILE, "key")?;
            Some(
                PublicJwk::from_json(&json)
                    .map_err(|e| Failure::failed(format!("key '{path}': {e}")))?,
            )
        }
    };
    let text = read_limited(input, MAX_INPUT, "sealed secret")?;
    let text = text.trim_ascii();

    let parsed = match SealedSecret::parse(text) {
        Ok(parsed) => parsed,
        Err(error) => return legacy(text, error, key.is_some()),
    };
    println!("alg: {}", show(parsed.alg()));
    match parsed.key_source() {
        Ok(KeySource::Kbs(uri)) => println!("kid: {} (KBS resource)", show(uri)),
        Ok(KeySource::Local(name)) => println!(
            "kid: {} (local key file in {})",
            show(name),
            sealed::LOCAL_KEY_DIR
        ),
        Err(e) => println!("kid: {} ({e})", show(parsed.kid())),
    }
    let Some(key) = key else {
        let secret = parsed
            .payload_unverified()
            .map_err(|e| Failure::failed(e.to_string()))?;
        print_payload(&secret);
        println!("signature: not checked (no --key)");
        return Ok(());
    };
    match parsed.verify(&key) {
        Ok(secret) => {
            print_payload(&secret);
            println!("signature: valid");
            Ok(())
        }
        Err(SealedError::BadSignature) => {
            println!("signature: INVALID");
            Err(Failure::failed(SealedError::BadSignature.to_string()))
        }
        Err(e) => {
            println!("signature: valid");
            Err(Failure::failed(e.to_string()))
        }
    }
}

/// Not a verifiable JWS: decode it the way the unverified mode would, to explain.
fn legacy(text: &[u8], error: SealedError, with_key: bool) -> Result<(), Failure> {
    let Ok(secret) = sealed::parse_unverified(text) else {
        return Err(Failure::failed(error.to_string()));
    };
    println!("header: not a verifiable ES256 JWS ({error})");
    print_payload(&secret);
    println!(
        "signature: none usable; this secret only unseals when verification is skipped \
         (unverified mode)"
    );
    if with_key {
        return Err(Failure::failed(format!("cannot verify: {error}")));
    }
    Ok(())
}

fn print_payload(secret: &Secret) {
    println!("version: {}", secret.version());
    println!("type: {}", secret.type_name());
    match &secret.content {
        SecretContent::Vault(vault) => {
            println!("name: {}", show(&vault.name));
            println!("provider: {}", show(&vault.provider));
            println!("provider_settings: {}", members(&vault.provider_settings));
            println!("annotations: {}", members(&vault.annotations));
        }
        SecretContent::Envelope(envelope) => {
            println!("key_id: {}", show(&envelope.key_id));
            println!("provider: {}", show(&envelope.provider));
            println!("wrap_type: {}", envelope.wrap_type.as_str());
            println!("encrypted_key: {}", length(&envelope.encrypted_key));
            println!("encrypted_data: {}", length(&envelope.encrypted_data));
            println!("iv: {}", length(&envelope.iv));
            println!(
                "provider_settings: {}",
                members(&envelope.provider_settings)
            );
            println!("annotations: {}", members(&envelope.annotations));
        }
    }
    match secret.resolve() {
        Ok(Unseal::KbsResource(uri)) => {
            println!("sealgate: unseals by fetching KBS resource {}", show(uri))
        }
        Err(e) => println!("sealgate: cannot unseal: {e}"),
    }
}

/// Member names only: values may be provider configuration an operator would not print.
fn members(object: &JsonObject) -> String {
    if object.is_empty() {
        return "{} (empty)".to_string();
    }
    let names: Vec<String> = object.iter().map(|(name, _)| show(name)).collect();
    format!("{} member(s): {}", names.len(), names.join(", "))
}

fn length(b64_text: &str) -> String {
    match b64::std_decode(b64_text) {
        Ok(bytes) => format!("{} bytes", bytes.len()),
        Err(_) => format!("not valid base64 ({} characters)", b64_text.len()),
    }
}
