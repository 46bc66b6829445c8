//! The KBS endpoints, routed the way Trustee's `api_server.rs` routes `/kbs/v0/{path:.*}`:
//! the first segment names a built-in endpoint (`auth`, `attest`: POST only) or a plugin.
//! Anything else, including a GET on `auth`, falls through to the plugin lookup; the only
//! plugin is `resource`, so everything else is 404 `PluginNotFound`, before any token check.

use crate::error::KbsError;
use crate::fault::RequestStep;
use crate::http::{Request, Response};
use crate::initdata;
use crate::jwe;
use crate::policy::Policy;
use crate::rcar::{self, Attestation, Tee, TeePubKey};
use crate::resources::Resources;
use crate::session::{self, Sessions};
use crate::stats::Counter;
use crate::token::{Submodule, TokenService};
use crate::verifier::{Expected, Verifiers};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

const TEE_PUBKEY_CLAIM: &str =
    "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Healthz,
    /// `/healthz` with another method than GET.
    HealthzMethod,
    Auth,
    Attest,
    /// `/kbs/v0/<name>/<path>`.
    Plugin {
        name: String,
        path: String,
    },
    /// Outside `/kbs/v0/`: actix's empty 404.
    NotFound,
}

impl Route {
    pub(crate) fn of(method: &str, path: &str) -> Route {
        if path == "/healthz" {
            return if method == "GET" {
                Route::Healthz
            } else {
                Route::HealthzMethod
            };
        }
        let Some(rest) = path.strip_prefix("/kbs/v0/") else {
            return Route::NotFound;
        };
        let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
        match (name, method) {
            ("auth", "POST") => Route::Auth,
            ("attest", "POST") => Route::Attest,
            _ => Route::Plugin {
                name: name.to_owned(),
                path: path.to_owned(),
            },
        }
    }

    /// The step faults and counters see.
    pub(crate) fn step(&self) -> Option<RequestStep> {
        match self {
            Route::Auth => Some(RequestStep::Auth),
            Route::Attest => Some(RequestStep::Attest),
            Route::Plugin { name, path } if name == "resource" => {
                Some(RequestStep::Resource(path.clone()))
            }
            _ => None,
        }
    }

    pub(crate) fn counter(&self) -> Option<Counter> {
        match self.step()? {
            RequestStep::Auth => Some(Counter::Auth),
            RequestStep::Attest => Some(Counter::Attest),
            RequestStep::Resource(_) => Some(Counter::Resource),
            RequestStep::Handshake => None,
        }
    }
}

/// Changes a fault makes to the normal processing of one request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Twist {
    /// Drop the request's session as if it had timed out.
    pub expire_session: bool,
    /// `attest`: issue an expired token; `resource`: fail token verification.
    pub invalid_token: bool,
}

/// A response and, for the log, why it is an error.
pub(crate) struct Outcome {
    pub response: Response,
    pub note: Option<String>,
}

impl From<Response> for Outcome {
    fn from(response: Response) -> Self {
        Outcome {
            response,
            note: None,
        }
    }
}

fn fail(error: KbsError, note: impl Into<String>) -> Outcome {
    Outcome {
        response: error.response(),
        note: Some(note.into()),
    }
}

/// The protocol state and logic, shared by all connections.
pub(crate) struct Kbs {
    pub sessions: Sessions,
    /// Shared by the replicas of a fleet: any of them verifies a token another issued.
    pub tokens: Arc<TokenService>,
    pub verifiers: Verifiers,
    pub policy: Arc<RwLock<Policy>>,
    pub resources: Arc<Resources>,
}

impl Kbs {
    pub(crate) fn handle(&self, request: &Request, route: &Route, twist: Twist) -> Outcome {
        let now = SystemTime::now();
        match route {
            Route::Healthz => Response::new(200).into(),
            Route::HealthzMethod => Response::new(405).into(),
            Route::NotFound => Response::new(404).into(),
            Route::Auth => self.auth(request, now, twist),
            Route::Attest => self.attest(request, now, twist),
            Route::Plugin { name, path } if name == "resource" => {
                self.resource(request, path, now, twist)
            }
            Route::Plugin { name, .. } => {
                fail(KbsError::PluginNotFound(name.clone()), "no such plugin")
            }
        }
    }

    fn auth(&self, request: &Request, now: SystemTime, twist: Twist) -> Outcome {
        let auth = match rcar::check_request(&request.body) {
            Ok(auth) => auth,
            Err(reason) => return fail(KbsError::AuthFailed(reason.clone()), reason),
        };
        let session = self.sessions.create(auth.tee, now);
        let challenge = format!(r#"{{"nonce":"{}","extra-params":""}}"#, session.nonce);
        if twist.expire_session {
            self.sessions.expire(&session.id);
        }
        Response::new(200)
            .header("set-cookie", session.set_cookie())
            .header("content-type", "application/json")
            .body(challenge)
            .into()
    }

    fn attest(&self, request: &Request, now: SystemTime, twist: Twist) -> Outcome {
        let attest_failed = |why: String| fail(KbsError::AttestFailed, why);
        let Some(id) = session::cookie_value(request.headers("cookie")) else {
            return attest_failed("cookie not found".into());
        };
        if twist.expire_session {
            self.sessions.expire(id);
        }
        let attestation: Attestation = match serde_json::from_slice(&request.body) {
            Ok(a) => a,
            Err(e) => return attest_failed(format!("deserialize Attestation: {e}")),
        };
        let Some(session) = self.sessions.get(id, now) else {
            return attest_failed("session not found".into());
        };
        let mut notes = Vec::new();
        let token = match session.token.clone() {
            // Already Attested: the old token, nothing re-verified.
            Some(token) => token,
            None => match self.verify(&session.nonce, session.tee, attestation) {
                Ok(submodules) => {
                    for s in &submodules {
                        notes.extend(s.appraisal.notes.iter().map(|n| format!("{}: {n}", s.tee)));
                    }
                    let token = self.tokens.issue(&submodules, now, twist.invalid_token);
                    self.sessions.attest(id, token.clone());
                    token
                }
                Err(why) => return attest_failed(why),
            },
        };
        Outcome {
            response: Response::new(200)
                .header("set-cookie", session.set_cookie())
                .header("content-type", "application/json")
                .body(format!(r#"{{"token":"{token}"}}"#)),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }

    /// Checks the nonce, init-data and every piece of evidence; the error is for the log.
    fn verify(
        &self,
        nonce: &str,
        tee: Tee,
        attestation: Attestation,
    ) -> Result<Vec<Submodule>, String> {
        let Attestation {
            init_data,
            runtime_data,
            tee_evidence,
        } = attestation;
        if runtime_data.nonce != nonce {
            return Err("the nonce in the handshake session is different from the client side in KBS protocol's Attestation message".into());
        }
        let init_data = init_data
            .map(|i| initdata::parse(&i.format, &i.body))
            .transpose()?;
        let key = &runtime_data.tee_pubkey;
        let primary_runtime_data =
            rcar::runtime_data(key, nonce, Some(&tee_evidence.additional_evidence));
        let digest = rcar::binding_digest(&primary_runtime_data);
        let expected = Expected {
            report_data: &digest,
            init_data_digest: init_data.as_ref().map(|i| i.digest.as_slice()),
        };
        let mut submodules = vec![Submodule {
            tee: tee.name(),
            appraisal: self.verify_one(tee, &tee_evidence.primary_evidence, &expected)?,
            runtime_data: primary_runtime_data,
            init_data_claims: init_data.map(|i| i.claims),
        }];
        if !tee_evidence.additional_evidence.is_empty() {
            let devices: HashMap<Tee, Value> =
                serde_json::from_str(&tee_evidence.additional_evidence)
                    .map_err(|e| format!("additional evidence: {e}"))?;
            let device_runtime_data = rcar::runtime_data(key, nonce, None);
            let device_digest = rcar::binding_digest(&device_runtime_data);
            let expected = Expected {
                report_data: &device_digest,
                init_data_digest: None,
            };
            let mut devices: Vec<(Tee, Value)> = devices.into_iter().collect();
            devices.sort_by_key(|(tee, _)| *tee);
            for (device, evidence) in devices {
                submodules.push(Submodule {
                    tee: device.name(),
                    appraisal: self.verify_one(device, &evidence, &expected)?,
                    runtime_data: device_runtime_data.clone(),
                    init_data_claims: None,
                });
            }
        }
        Ok(submodules)
    }

    fn verify_one(
        &self,
        tee: Tee,
        evidence: &Value,
        expected: &Expected<'_>,
    ) -> Result<crate::verifier::Appraisal, String> {
        let verifier = self
            .verifiers
            .get(tee)
            .ok_or_else(|| format!("no verifier for tee {tee} in the test KBS"))?;
        verifier
            .verify(evidence, expected)
            .map_err(|e| format!("verify TEE evidence failed ({tee}): {e}"))
    }

    /// `/kbs/v0/resource/<path>`: token (cookie session first, then Bearer), verification,
    /// policy, the resource, the JWE.
    fn resource(&self, request: &Request, path: &str, now: SystemTime, twist: Twist) -> Outcome {
        let from_session = session::cookie_value(request.headers("cookie")).and_then(|id| {
            if twist.expire_session {
                self.sessions.expire(id);
            }
            self.sessions.get(id, now)?.token
        });
        let Some(token) = from_session.or_else(|| bearer(request)) else {
            return fail(
                KbsError::TokenNotFound,
                "no Attested session and no Bearer token",
            );
        };
        if twist.invalid_token {
            return fail(KbsError::TokenVerifier, "fault: invalid token");
        }
        let claims = match self.tokens.verify(&token, now) {
            Ok(claims) => claims,
            Err(e) => return fail(KbsError::TokenVerifier, e.0),
        };
        let segments: Vec<&str> = path.split('/').collect();
        let allowed = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .allows(&claims, &segments);
        if !allowed {
            return fail(KbsError::PolicyDeny, "denied by the resource policy");
        }
        if request.method != "GET" {
            return fail(
                KbsError::PluginInternal,
                "Illegal HTTP method (the test KBS serves GET only)",
            );
        }
        let plaintext = match self.resources.get(&segments) {
            Ok(bytes) => zeroize::Zeroizing::new(bytes),
            Err(why) => return fail(KbsError::PluginInternal, why),
        };
        let Some(key) = claims
            .pointer(TEE_PUBKEY_CLAIM)
            .and_then(|k| TeePubKey::deserialize(k).ok())
        else {
            return fail(KbsError::TokenVerifier, "no usable tee-pubkey claim");
        };
        match jwe::encrypt(&key, &plaintext) {
            Ok(jwe) => Response::json(jwe).into(),
            Err(why) => fail(KbsError::Jwe, why),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-sensitive, as actix).
fn bearer(request: &Request) -> Option<String> {
    let value = std::str::from_utf8(request.header("authorization")?).ok()?;
    let token = value.strip_prefix("Bearer ")?;
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_follows_trustee() {
        assert_eq!(Route::of("POST", "/kbs/v0/auth"), Route::Auth);
        assert_eq!(Route::of("POST", "/kbs/v0/attest"), Route::Attest);
        assert_eq!(
            Route::of("GET", "/kbs/v0/auth"),
            Route::Plugin {
                name: "auth".into(),
                path: String::new()
            }
        );
        assert_eq!(
            Route::of("GET", "/kbs/v0/resource/a/b/c"),
            Route::Plugin {
                name: "resource".into(),
                path: "a/b/c".into()
            }
        );
        assert_eq!(
            Route::of("GET", "/kbs/v0/resource/a/b/c").step(),
            Some(RequestStep::Resource("a/b/c".into()))
        );
        assert_eq!(Route::of("GET", "/kbs/v0/nosuchplugin/x").step(), None);
        assert_eq!(Route::of("GET", "/kbs/v0"), Route::NotFound);
        assert_eq!(Route::of("GET", "/"), Route::NotFound);
        assert_eq!(Route::of("GET", "/healthz"), Route::Healthz);
        assert_eq!(Route::of("POST", "/healthz"), Route::HealthzMethod);
    }
}
