//! The messages of the CoCo guest APIs that sealgate serves, declared by hand with the
//! field numbers of guest-components' protos (no protoc, no generated code) and encoded
//! with prost. Field names follow the protos' JSON names where upstream uses CamelCase.
//!
//! - [`aa`]: `attestation-agent.proto`, package `attestation_agent`, service
//!   `AttestationAgentService`;
//! - [`cdh`]: `confidential-data-hub/api.proto`, package `api`.

/// The Attestation Agent API (`attestation_agent.AttestationAgentService`).
pub mod aa {
    use alloc::string::String;
    use alloc::vec::Vec;
    use prost::Message;

    /// The ttrpc service name.
    pub const SERVICE: &str = "attestation_agent.AttestationAgentService";

    /// `GetEvidenceRequest` (also `GetAdditionalEvidenceRequest`: same shape).
    #[derive(Clone, PartialEq, Message)]
    pub struct GetEvidenceRequest {
        /// `RuntimeData` = 1.
        #[prost(bytes = "vec", tag = "1")]
        pub runtime_data: Vec<u8>,
    }

    /// `GetEvidenceResponse`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetEvidenceResponse {
        /// `Evidence` = 1.
        #[prost(bytes = "vec", tag = "1")]
        pub evidence: Vec<u8>,
    }

    /// `GetTokenRequest`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetTokenRequest {
        /// `TokenType` = 1.
        #[prost(string, tag = "1")]
        pub token_type: String,
    }

    /// `GetTokenResponse`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetTokenResponse {
        /// `Token` = 1.
        #[prost(bytes = "vec", tag = "1")]
        pub token: Vec<u8>,
    }

    /// `ExtendRuntimeMeasurementRequest`.
    #[derive(Clone, PartialEq, Message)]
    pub struct ExtendRuntimeMeasurementRequest {
        /// `Domain` = 1.
        #[prost(string, tag = "1")]
        pub domain: String,
        /// `Operation` = 2.
        #[prost(string, tag = "2")]
        pub operation: String,
        /// `Content` = 3.
        #[prost(string, tag = "3")]
        pub content: String,
        /// `optional uint64 RegisterIndex` = 4.
        #[prost(uint64, optional, tag = "4")]
        pub register_index: Option<u64>,
    }

    /// `RuntimeMeasurementResult`: OK.
    pub const RESULT_OK: i32 = 0;
    /// `RuntimeMeasurementResult`: NOT_SUPPORTED.
    pub const RESULT_NOT_SUPPORTED: i32 = 1;
    /// `RuntimeMeasurementResult`: NOT_ENABLED.
    pub const RESULT_NOT_ENABLED: i32 = 2;

    /// `ExtendRuntimeMeasurementResponse`.
    #[derive(Clone, PartialEq, Message)]
    pub struct ExtendRuntimeMeasurementResponse {
        /// `Result` = 1 (a `RuntimeMeasurementResult`).
        #[prost(int32, tag = "1")]
        pub result: i32,
    }

    /// `GetTeeTypeRequest` / `GetAdditionalTeesRequest` / `BindInitDataResponse`: empty.
    #[derive(Clone, PartialEq, Message)]
    pub struct Empty {}

    /// `GetTeeTypeResponse`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetTeeTypeResponse {
        /// `tee` = 1.
        #[prost(string, tag = "1")]
        pub tee: String,
    }

    /// `GetAdditionalTeesResponse`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetAdditionalTeesResponse {
        /// `additional_tees` = 1.
        #[prost(string, repeated, tag = "1")]
        pub additional_tees: Vec<String>,
    }
}

/// The Confidential Data Hub API (package `api`).
pub mod cdh {
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use alloc::vec::Vec;
    use prost::Message;

    /// `api.SealedSecretService`.
    pub const SEALED_SECRET_SERVICE: &str = "api.SealedSecretService";
    /// `api.GetResourceService`.
    pub const GET_RESOURCE_SERVICE: &str = "api.GetResourceService";
    /// `api.SecureMountService`.
    pub const SECURE_MOUNT_SERVICE: &str = "api.SecureMountService";
    /// `api.ImagePullService`.
    pub const IMAGE_PULL_SERVICE: &str = "api.ImagePullService";

    /// `UnsealSecretInput`.
    #[derive(Clone, PartialEq, Message)]
    pub struct UnsealSecretInput {
        /// `secret` = 1: the whole value, `sealed.` prefix included.
        #[prost(bytes = "vec", tag = "1")]
        pub secret: Vec<u8>,
    }

    /// `UnsealSecretOutput`.
    #[derive(Clone, PartialEq, Message)]
    pub struct UnsealSecretOutput {
        /// `plaintext` = 1.
        #[prost(bytes = "vec", tag = "1")]
        pub plaintext: Vec<u8>,
    }

    /// `GetResourceRequest`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetResourceRequest {
        /// `ResourcePath` = 1: `kbs:///repo/type/tag`.
        #[prost(string, tag = "1")]
        pub resource_path: String,
    }

    /// `GetResourceResponse`.
    #[derive(Clone, PartialEq, Message)]
    pub struct GetResourceResponse {
        /// `Resource` = 1.
        #[prost(bytes = "vec", tag = "1")]
        pub resource: Vec<u8>,
    }

    /// `SecureMountRequest`.
    #[derive(Clone, PartialEq, Message)]
    pub struct SecureMountRequest {
        /// `volume_type` = 1.
        #[prost(string, tag = "1")]
        pub volume_type: String,
        /// `map<string,string> options` = 2.
        #[prost(btree_map = "string, string", tag = "2")]
        pub options: BTreeMap<String, String>,
        /// `repeated string flags` = 3.
        #[prost(string, repeated, tag = "3")]
        pub flags: Vec<String>,
        /// `mount_point` = 4.
        #[prost(string, tag = "4")]
        pub mount_point: String,
    }

    /// `ImagePullRequest`.
    #[derive(Clone, PartialEq, Message)]
    pub struct ImagePullRequest {
        /// `image_url` = 1.
        #[prost(string, tag = "1")]
        pub image_url: String,
        /// `bundle_path` = 2.
        #[prost(string, tag = "2")]
        pub bundle_path: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use prost::Message;

    #[test]
    fn field_numbers_match_upstream_wire_bytes() {
        // UnsealSecretInput{secret = "sealed.x"}: field 1, wire type 2.
        let m = cdh::UnsealSecretInput {
            secret: b"sealed.x".to_vec(),
        };
        assert_eq!(m.encode_to_vec(), b"\x0a\x08sealed.x");
        let m = aa::ExtendRuntimeMeasurementRequest {
            domain: "d".into(),
            operation: "o".into(),
            content: "c".into(),
            register_index: Some(17),
        };
        assert_eq!(m.encode_to_vec(), b"\x0a\x01d\x12\x01o\x1a\x01c\x20\x11");
        let mut m = cdh::SecureMountRequest::default();
        m.options.insert("deviceId".into(), "1:2".into());
        let wire = m.encode_to_vec();
        // Map entries are messages {key = 1, value = 2} in field 2.
        assert_eq!(wire, b"\x12\x0f\x0a\x08deviceId\x12\x031:2");
        assert_eq!(cdh::SecureMountRequest::decode(&wire[..]).unwrap(), m);
        let tees = aa::GetAdditionalTeesResponse {
            additional_tees: ["a".into(), "b".into()].into(),
        };
        assert_eq!(tees.encode_to_vec(), b"\x0a\x01a\x0a\x01b");
        assert!(aa::GetTokenRequest::decode(&b"\x0a\x02\xff\xfe"[..]).is_err());
        let _: Vec<u8> = aa::Empty {}.encode_to_vec();
    }
}
