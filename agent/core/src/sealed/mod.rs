//! CoCo sealed secrets (the `sealed.` strings of the Confidential Data Hub), sans-IO.
//!
//! A sealed secret is `sealed.` + a JWS compact serialization whose payload is a JSON
//! [`Secret`]: either a *vault* reference (provider `kbs`: a KBS resource URI) or an
//! *envelope* (data encrypted under a KMS-wrapped DEK). Unsealing, as the agent drives it:
//!
//! 1. [`SealedSecret::parse`] the bytes (checks size, UTF-8, JWS shape, `alg` ES256, `kid`).
//! 2. [`SealedSecret::key_source`]: [`KeySource::Kbs`] means fetch that resource from the
//!    KBS; [`KeySource::Local`] means read that file under [`LOCAL_KEY_DIR`] (canonicalize
//!    and check it stays inside). Either way the bytes are a JWK: [`PublicJwk::from_json`].
//! 3. [`SealedSecret::verify`] checks the ES256 signature and returns the [`Secret`].
//! 4. [`Secret::resolve`] says what to fetch: [`Unseal::KbsResource`], whose bytes are the
//!    plaintext. Other providers fail with [`SealedError::UnsupportedProvider`].
//!
//! [`parse_unverified`] replaces steps 1 to 3 when the operator explicitly allows unsigned
//! secrets. [`seal`] and [`SigningJwk`] are the signing side used by `sealctl`.

mod error;
mod json;
mod jwk;
mod jws;
mod payload;
#[cfg(test)]
mod tests;

pub use error::{Part, SealedError};
pub use json::{JsonError, JsonObject, JsonValue};
pub use jwk::{PublicJwk, SigningJwk};
pub use jws::{SealedSecret, parse_unverified, seal};
pub use payload::{
    EnvelopeParts, EnvelopeSecret, Secret, SecretContent, Unseal, VaultSecret, WrapType,
    decrypt_a256gcm,
};

/// The prefix that marks a sealed secret (kata matches env values and files on it).
pub const PREFIX: &str = "sealed.";

/// The only payload version there is.
pub const VERSION: &str = "0.1.0";

/// Largest sealed secret accepted, in bytes. Real ones are a few hundred bytes; an
/// envelope carries its data inline, so this also bounds envelope secrets.
pub const MAX_SEALED_LEN: usize = 64 * 1024;

/// Where upstream CDH looks up a `kid` that is not a resource URI (one JWK per file,
/// usually provisioned from the KBS at start-up).
pub const LOCAL_KEY_DIR: &str = "/run/confidential-containers/cdh/sealed-secret";

/// Where the verification key named by a `kid` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// A plain KBS resource path, `kbs://[host]/<repo>/<type>/<tag>` (the host is ignored:
    /// the configured KBS is asked): fetch it from the KBS's `resource` plugin.
    Kbs(&'a str),
    /// A relative file name (no `..`, not absolute): read it under [`LOCAL_KEY_DIR`].
    /// Lexically safe only; the caller must still resolve symlinks and check the result
    /// stays under the directory, as upstream does.
    Local(&'a str),
}

/// Classifies a `kid` as upstream does (resource URI, else local credential name) and
/// rejects kids that could never resolve safely: empty, a URI of another form, an
/// absolute path, a `..` component, a NUL or other control character.
///
/// Unlike upstream, a KBS key must be a plain resource path, `kbs:///<repo>/<type>/<tag>`:
/// no `kbs+<plugin>://` scheme (not even `kbs+resource`), no query. The `kid` is read
/// before the signature can be checked, so it is attacker-chosen: a plugin or a query
/// would let any unverified input make the agent issue a GET of its choice to a KBS plugin
/// that may have side effects.
pub fn key_source(kid: &str) -> Result<KeySource<'_>, SealedError> {
    if kid.is_empty() {
        return Err(SealedError::MissingKid);
    }
    if is_kbs_resource_uri(kid) {
        let plain = kid
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("kbs"));
        return match crate::uri::ResourceUri::parse(kid) {
            Ok(uri) if plain && uri.query().is_none() => Ok(KeySource::Kbs(kid)),
            _ => Err(SealedError::InvalidKid(
                "a KBS verification key must be a plain resource path kbs:///<repo>/<type>/<tag> (no plugin, no query)",
            )),
        };
    }
    if kid.contains("://") {
        return Err(SealedError::InvalidKid(
            "it looks like a URI but is not a kbs:///<repo>/<type>/<tag> resource path",
        ));
    }
    if kid.chars().any(char::is_control) {
        return Err(SealedError::InvalidKid("it contains control characters"));
    }
    if kid.starts_with('/') || kid.split('/').any(|c| c == "..") {
        return Err(SealedError::InvalidKid(
            "a local key name must be a relative path without '..'",
        ));
    }
    Ok(KeySource::Local(kid))
}

/// A simple syntactic check for a KBS resource URI: scheme `kbs` or `kbs+<plugin>`
/// (case-insensitive), `://`, an authority (usually empty; the KBS ignores it), then a
/// non-empty path; no whitespace or control characters. The full parser (segment count,
/// query) belongs to the KBS client.
pub fn is_kbs_resource_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    let scheme_ok = if scheme.eq_ignore_ascii_case("kbs") {
        true
    } else if let Some(plugin) = scheme
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("kbs+"))
        .and(scheme.get(4..))
    {
        // `get`, not indexing: byte 4 may fall inside a multi-byte character.
        !plugin.is_empty()
            && plugin
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    } else {
        false
    };
    if !scheme_ok || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some(slash) = rest.find('/') else {
        return false;
    };
    let authority = &rest[..slash];
    if authority.contains(['?', '#']) {
        return false;
    }
    let path = rest[slash + 1..]
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    !path.is_empty()
}
