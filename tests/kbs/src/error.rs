//! The errors a guest can see, rendered exactly as Trustee's `kbs/src/error.rs` renders them:
//! an RFC 7807-style body `{"type":"https://github.com/confidential-containers/kbs/errors/<Variant>","detail":"<Display>"}`,
//! **no Content-Type header**, and status 404 for `PluginNotFound`, 401 for everything else
//! (policy denials and missing resources included).

use crate::http::Response;
use serde::Serialize;

const TYPE_PREFIX: &str = "https://github.com/confidential-containers/kbs/errors/";

/// An error answered to the client. The `Display` texts are Trustee's (revision 78962cd4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KbsError {
    /// `/auth` failed; the string is the outermost reason, which Trustee includes in the detail.
    AuthFailed(String),
    /// `/attest` failed; Trustee never tells the client why (the reason goes to the log only).
    AttestFailed,
    /// Neither an Attested session cookie nor a Bearer token.
    TokenNotFound,
    /// The token's signature, `exp` or tee-pubkey claim is unusable.
    TokenVerifier,
    /// The resource policy said no.
    PolicyDeny,
    /// The resource is missing, too large, or its path is not `repo/type/tag`.
    PluginInternal,
    /// The tee-pubkey cannot be encrypted to (P-384, RSA-OAEP with SHA-1, AKP, ...).
    Jwe,
    /// The first path segment after `/kbs/v0/` names no built-in endpoint and no plugin.
    PluginNotFound(String),
}

#[derive(Serialize)]
struct ErrorInformation<'a> {
    #[serde(rename = "type")]
    error_type: String,
    detail: &'a str,
}

impl KbsError {
    /// The variant name used in the `type` URI.
    pub(crate) fn variant(&self) -> &'static str {
        match self {
            KbsError::AuthFailed(_) | KbsError::AttestFailed => "AttestationError",
            KbsError::TokenNotFound => "TokenNotFound",
            KbsError::TokenVerifier => "TokenVerifierError",
            KbsError::PolicyDeny => "PolicyDeny",
            KbsError::PluginInternal => "PluginInternalError",
            KbsError::Jwe => "JweError",
            KbsError::PluginNotFound(_) => "PluginNotFound",
        }
    }

    /// The `detail` string.
    pub(crate) fn detail(&self) -> String {
        match self {
            KbsError::AuthFailed(reason) => {
                format!("Attestation error: RCAR handshake Auth failed: {reason}")
            }
            KbsError::AttestFailed => "Attestation error: RCAR handshake Attest failed".into(),
            KbsError::TokenNotFound => "Attestation Token not found".into(),
            KbsError::TokenVerifier => "Token Verifier error".into(),
            // The brief and the protocol notes (§6) quote "Access was denied by policy"; the
            // code at the very revision they cite says "Access denied by policy". The wire wins.
            KbsError::PolicyDeny => "Access denied by policy".into(),
            KbsError::PluginInternal => "Plugin internal error".into(),
            KbsError::Jwe => "JWE failed".into(),
            KbsError::PluginNotFound(name) => format!("Plugin {name} not found"),
        }
    }

    pub(crate) fn status(&self) -> u16 {
        match self {
            KbsError::PluginNotFound(_) => 404,
            _ => 401,
        }
    }

    /// The JSON body, serialized like Trustee's `ErrorInformation` (field order type, detail).
    pub(crate) fn body(&self) -> String {
        let detail = self.detail();
        let info = ErrorInformation {
            error_type: format!("{TYPE_PREFIX}{}", self.variant()),
            detail: &detail,
        };
        // Serializing two strings cannot fail.
        serde_json::to_string(&info).unwrap_or_default()
    }

    /// The HTTP response: the body and no Content-Type.
    pub(crate) fn response(&self) -> Response {
        Response::new(self.status()).body(self.body().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_the_recorded_ones() {
        assert_eq!(
            KbsError::AuthFailed(
                "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.3.0"
                    .into()
            )
            .body(),
            r#"{"type":"https://github.com/confidential-containers/kbs/errors/AttestationError","detail":"Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.3.0"}"#
        );
        assert_eq!(
            KbsError::PluginNotFound("nosuchplugin".into()).body(),
            r#"{"type":"https://github.com/confidential-containers/kbs/errors/PluginNotFound","detail":"Plugin nosuchplugin not found"}"#
        );
        assert_eq!(KbsError::PluginNotFound(String::new()).status(), 404);
        assert_eq!(KbsError::PolicyDeny.status(), 401);
    }

    #[test]
    fn details_are_json_escaped() {
        let body = KbsError::AuthFailed("version \"1\\\n\"".into()).body();
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(
            v["detail"],
            "Attestation error: RCAR handshake Auth failed: version \"1\\\n\""
        );
    }
}
