//! The hub: the one stateful part of the server. It owns the single KBS session (tee key,
//! cookie, token), the attester and the settings; every listener (the AA socket, the CDH
//! socket, the REST port) calls it. Single-threaded: the event loop calls one operation at
//! a time, so callers queued during a handshake share its result.

use crate::cli::Options;
use crate::prelude::*;
use crate::run::Failure;
use core::fmt;
use zeroize::Zeroizing;

/// What the hub is started with: the upstream components' flags, and sealgate's own.
#[derive(Debug, Default)]
pub struct HubSettings {
    /// sealgate's own flags, `--config` and `--kernel-cmdline` (for `sealgate serve`).
    pub options: Options,
    /// AA's `-c aa.toml`.
    pub aa_config: Option<String>,
    /// CDH's `-c cdh.toml`.
    pub cdh_config: Option<String>,
    /// AA's `--initdata-toml PATH`.
    pub initdata_toml: Option<String>,
}

/// The class of a failure, for the status each API maps it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubErrorKind {
    /// The caller's input is malformed.
    InvalidArgument,
    /// The KBS has no such resource.
    NotFound,
    /// The KBS refused (policy).
    PermissionDenied,
    /// The KBS cannot be reached now.
    Unavailable,
    /// The operation is not supported here.
    Unsupported,
    /// Anything else.
    Internal,
}

/// A failed operation. The message names what failed, never secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    /// The class.
    pub kind: HubErrorKind,
    /// What happened.
    pub message: String,
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of `ExtendRuntimeMeasurement`, as upstream's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurement {
    /// Extended and recorded.
    Ok,
    /// The TEE has no runtime measurement register.
    NotSupported,
    /// The event log is not enabled.
    NotEnabled,
}

/// The hub.
pub struct Hub {
    settings: HubSettings,
}

fn todo(what: &str) -> HubError {
    HubError {
        kind: HubErrorKind::Unsupported,
        message: format!("{what} is not implemented yet"),
    }
}

impl Hub {
    /// Loads the configuration and checks init-data against the TEE.
    pub fn new(settings: HubSettings) -> Result<Hub, Failure> {
        Ok(Hub { settings })
    }

    /// CDH `UnsealSecret`.
    pub fn unseal_secret(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HubError> {
        let _ = (sealed, &self.settings);
        Err(todo("UnsealSecret"))
    }

    /// CDH `GetResource` (`kbs:///repo/type/tag`).
    pub fn get_resource(&mut self, uri: &str) -> Result<Zeroizing<Vec<u8>>, HubError> {
        let _ = uri;
        Err(todo("GetResource"))
    }

    /// AA `GetEvidence`.
    pub fn get_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, HubError> {
        let _ = runtime_data;
        Err(todo("GetEvidence"))
    }

    /// AA `GetAdditionalEvidence`.
    pub fn get_additional_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, HubError> {
        let _ = runtime_data;
        Ok(Vec::new())
    }

    /// AA `GetToken`.
    pub fn get_token(&mut self, token_type: &str) -> Result<Zeroizing<Vec<u8>>, HubError> {
        let _ = token_type;
        Err(todo("GetToken"))
    }

    /// AA `ExtendRuntimeMeasurement`.
    pub fn extend_runtime_measurement(
        &mut self,
        domain: &str,
        operation: &str,
        content: &str,
        register_index: Option<u64>,
    ) -> Result<Measurement, HubError> {
        let _ = (domain, operation, content, register_index);
        Ok(Measurement::NotEnabled)
    }

    /// AA `GetTeeType`.
    pub fn tee_type(&self) -> &str {
        "sample"
    }

    /// AA `GetAdditionalTees`.
    pub fn additional_tees(&self) -> Vec<String> {
        Vec::new()
    }

    /// Handshakes done so far.
    pub fn attestations(&self) -> u64 {
        0
    }
}
