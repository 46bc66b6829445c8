//! ttrpc dispatch: the upstream AA and CDH services on top of the hub, with upstream's
//! status codes and messages (guest-components' ttrpc servers, ttrpc 0.9.0's generated
//! code and server loop).

use super::hub::{Hub, HubError, Measurement};
use crate::prelude::*;
use prost::Message;
use sealgate_core::proto::{aa, cdh};
use sealgate_core::ttrpc::{self, Request, code};
use sealgate_linux::{debug, warn};
use zeroize::Zeroizing;

/// Which API a socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtrpcApi {
    /// The AA socket: `attestation_agent.AttestationAgentService` (and the private
    /// `sealgate.Hub` service, handled by the loop).
    Aa,
    /// The CDH socket: the `api.*` services.
    Cdh,
}

/// An error status: (code, message).
pub type Status = (i32, String);

/// What a call answered: the encoded reply (zeroized when dropped: it may hold a secret).
pub type Answer = Result<Zeroizing<Vec<u8>>, Status>;

fn decode<M: Message + Default>(payload: &[u8], name: &str) -> Result<M, Status> {
    // ttrpc 0.9's generated handlers map a payload decode failure to UNKNOWN.
    M::decode(payload).map_err(|e| (code::UNKNOWN, format!("cannot decode {name}: {e}")))
}

fn aa_failure(e: &HubError, message: &str) -> Status {
    // Upstream AA logs the cause and answers INTERNAL with a fixed text.
    warn!("attestation-agent: {message}: {e}");
    (
        code::INTERNAL,
        format!("[ERROR:attestation-agent] {message}"),
    )
}

fn cdh_failure(e: &HubError) -> Status {
    // Upstream CDH answers INTERNAL "[CDH] [ERROR]: <error>".
    warn!("confidential-data-hub: {e}");
    (code::INTERNAL, format!("[CDH] [ERROR]: {e}"))
}

/// `NOT_FOUND "/<service>/<method> is not supported"`: the generated default of a method
/// that the proto declares and the server does not implement.
fn not_implemented_default(service: &str, method: &str) -> Status {
    (
        code::NOT_FOUND,
        format!("/{service}/{method} is not supported"),
    )
}

fn unknown_method(method: &str) -> Status {
    (code::UNIMPLEMENTED, format!("{method} method"))
}

fn unknown_service(service: &str) -> Status {
    (
        code::INVALID_ARGUMENT,
        format!("{service} service does not exist"),
    )
}

/// Answers one request on `api` (the reply payload, or an error status).
pub fn call(hub: &mut Hub, api: TtrpcApi, req: &Request) -> Answer {
    let (service, method) = (req.service.as_str(), req.method.as_str());
    debug!("ttrpc call /{service}/{method}");
    match (api, service) {
        (TtrpcApi::Aa, aa::SERVICE) => attestation_agent(hub, method, &req.payload),
        (TtrpcApi::Cdh, cdh::SEALED_SECRET_SERVICE) => match method {
            "UnsealSecret" => {
                let m: cdh::UnsealSecretInput = decode(&req.payload, "UnsealSecretInput")?;
                let plaintext = hub.unseal_secret(&m.secret).map_err(|e| cdh_failure(&e))?;
                Ok(secret_reply(&plaintext))
            }
            _ => Err(unknown_method(method)),
        },
        (TtrpcApi::Cdh, cdh::GET_RESOURCE_SERVICE) => match method {
            "GetResource" => {
                let m: cdh::GetResourceRequest = decode(&req.payload, "GetResourceRequest")?;
                let resource = hub
                    .get_resource(&m.resource_path)
                    .map_err(|e| cdh_failure(&e))?;
                Ok(secret_reply(&resource))
            }
            _ => Err(unknown_method(method)),
        },
        (TtrpcApi::Cdh, cdh::SECURE_MOUNT_SERVICE) => match method {
            "SecureMount" => {
                let m: cdh::SecureMountRequest = decode(&req.payload, "SecureMountRequest")?;
                // The caller's timeout, less a margin for the reply: a volume ready only
                // after it is closed again rather than answered DEADLINE_EXCEEDED while
                // mounted.
                let deadline = (req.timeout_nano > 0).then(|| {
                    sealgate_linux::time::Instant::now()
                        + core::time::Duration::from_nanos(req.timeout_nano as u64)
                            .saturating_sub(core::time::Duration::from_secs(1))
                });
                super::secure_mount::secure_mount(hub, &m, deadline).map_err(|e| {
                    // Upstream CDH: "[CDH] [ERROR]: <error>" (INTERNAL); a refused request
                    // gets INVALID_ARGUMENT or UNIMPLEMENTED. No key in any message.
                    warn!("confidential-data-hub: SecureMount: {e}");
                    (e.code(), format!("[CDH] [ERROR]: {e}"))
                })?;
                // SecureMountResponse is an empty message.
                Ok(Zeroizing::new(Vec::new()))
            }
            _ => Err(unknown_method(method)),
        },
        (TtrpcApi::Cdh, cdh::IMAGE_PULL_SERVICE) => match method {
            "PullImage" => {
                let _: cdh::ImagePullRequest = decode(&req.payload, "ImagePullRequest")?;
                Err((
                    code::UNIMPLEMENTED,
                    String::from(
                        "[CDH] [ERROR]: PullImage is not supported by sealgate: it does not pull \
                         container images (guest image pull needs upstream's image-rs)",
                    ),
                ))
            }
            _ => Err(unknown_method(method)),
        },
        (TtrpcApi::Cdh, "keyprovider.KeyProviderService") => Err((
            code::UNIMPLEMENTED,
            format!(
                "[CDH] [ERROR]: keyprovider.KeyProviderService/{} is not supported by sealgate: \
                 no encrypted container images",
                sealgate_core::escape::shown(method)
            ),
        )),
        _ => Err(unknown_service(service)),
    }
}

/// Encodes a reply whose only field is `bytes` field 1 holding a secret
/// (`UnsealSecretOutput.plaintext`, `GetResourceResponse.Resource`, `GetTokenResponse.Token`):
/// one allocation of the exact size, zeroized when dropped, no other copy.
fn secret_reply(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let len = if secret.is_empty() {
        0
    } else {
        prost::encoding::key_len(1)
            + prost::encoding::encoded_len_varint(secret.len() as u64)
            + secret.len()
    };
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    if !secret.is_empty() {
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut *out);
        prost::encoding::encode_varint(secret.len() as u64, &mut *out);
        out.extend_from_slice(secret);
    }
    out
}

fn reply<M: Message>(m: &M) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(m.encode_to_vec())
}

fn attestation_agent(hub: &mut Hub, method: &str, payload: &[u8]) -> Answer {
    match method {
        "GetEvidence" | "GetAdditionalEvidence" => {
            let m: aa::GetEvidenceRequest = decode(payload, "GetEvidenceRequest")?;
            let evidence = if method == "GetEvidence" {
                hub.get_evidence(&m.runtime_data)
            } else {
                hub.get_additional_evidence(&m.runtime_data)
            }
            .map_err(|e| aa_failure(&e, "AA-KBC get evidence failed"))?;
            Ok(reply(&aa::GetEvidenceResponse { evidence }))
        }
        "GetToken" => {
            let m: aa::GetTokenRequest = decode(payload, "GetTokenRequest")?;
            let token = hub
                .get_token(&m.token_type)
                .map_err(|e| aa_failure(&e, "AA-KBC get token failed"))?;
            Ok(secret_reply(&token))
        }
        "ExtendRuntimeMeasurement" => {
            let m: aa::ExtendRuntimeMeasurementRequest =
                decode(payload, "ExtendRuntimeMeasurementRequest")?;
            let result = hub
                .extend_runtime_measurement(&m.domain, &m.operation, &m.content, m.register_index)
                .map_err(|e| aa_failure(&e, "AA extend runtime measurement failed"))?;
            let result = match result {
                Measurement::Ok => aa::RESULT_OK,
                Measurement::NotSupported => aa::RESULT_NOT_SUPPORTED,
                Measurement::NotEnabled => aa::RESULT_NOT_ENABLED,
            };
            Ok(reply(&aa::ExtendRuntimeMeasurementResponse { result }))
        }
        "GetTeeType" => {
            let _: aa::Empty = decode(payload, "GetTeeTypeRequest")?;
            Ok(reply(&aa::GetTeeTypeResponse {
                tee: String::from(hub.tee_type()),
            }))
        }
        "GetAdditionalTees" => {
            let _: aa::Empty = decode(payload, "GetAdditionalTeesRequest")?;
            Ok(reply(&aa::GetAdditionalTeesResponse {
                additional_tees: hub.additional_tees(),
            }))
        }
        // Declared in the proto, not implemented by upstream's server: the generated
        // default. The init-data check is done at start (--initdata-toml).
        "BindInitData" => Err(not_implemented_default(aa::SERVICE, method)),
        _ => Err(unknown_method(method)),
    }
}

/// The response frame for `answer` on `stream_id` (zeroized when dropped).
pub fn response_frame(stream_id: u32, answer: &Answer) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match answer {
        Ok(payload) => ttrpc::ok_response(stream_id, payload),
        Err((c, message)) => ttrpc::error_response(stream_id, *c, message),
    })
}
