//! The REST API on 127.0.0.1:8006 (api-server-rest compatible), served by the hub.
//!
//! The protocol work is sans-IO in `sealgate-core`: [`sealgate_core::http_server`] parses
//! requests (head ≤ 16 KiB, body ≤ 64 KiB by `Content-Length` only, keep-alive, pipelined
//! requests answered one at a time) and [`sealgate_core::rest`] routes them (loopback
//! check, feature gating, upstream's statuses and bodies). This module connects that to the
//! [`Hub`]. The API the event loop uses is small:
//!
//! - [`Features::parse`] for `--features` (upstream's values `resource` (default),
//!   `attestation`, `all`; anything else is [`UnknownFeatures`]: print it and exit 1, as
//!   api-server-rest does). `none` is not a value upstream accepts: to run no REST API,
//!   start no `api-server-rest` (kata: `agent.guest_components_procs=confidential-data-hub`).
//! - [`RestConn::new`]`(peer_ip, features)` per accepted TCP connection; then, while
//!   [`RestConn::read_capacity`] > 0 and the socket is readable, read at most that many
//!   bytes into [`RestConn::feed`] ([`RestConn::feed_eof`] when read returns 0), and call
//!   [`step`] until it answers [`Step::NeedMore`] (wait for input) or [`Step::Close`]
//!   (flush, then close), queueing every [`Step::Write`] for the socket. The written
//!   bytes can hold a token with its private key or a resource: they are zeroed on drop, and
//!   the loop's write queue should zero what it copies.
//! - [`handle`] answers one parsed request (what `step` calls).
//!
//! Nothing here blocks except the hub's KBS calls, which are bounded by the hub's deadline;
//! a request that needs the KBS holds the loop for that long (the hub serves one handshake
//! for everyone waiting).

use super::hub::{Hub, HubError, Measurement};
use crate::prelude::*;
use core::net::IpAddr;
use sealgate_core::rest::{AaelResult, BackendError, RestBackend};
use zeroize::Zeroizing;

pub use sealgate_core::http_server::{Request, Response};
pub use sealgate_core::rest::{DEFAULT_BIND, Features, RestConn, Step, UnknownFeatures};

/// The hub as the REST API's backend: each route calls the same hub operation the AA and
/// CDH ttrpc services call, so REST callers share the one KBS session.
struct HubBackend<'a>(&'a mut Hub);

fn backend_error(e: HubError) -> BackendError {
    // The hub's messages carry no secret (its contract); they become the 500 body, as
    // upstream returns its error text.
    BackendError { message: e.message }
}

impl RestBackend for HubBackend<'_> {
    fn get_resource(&mut self, uri: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.0.get_resource(uri).map_err(backend_error)
    }

    fn get_token(&mut self, token_type: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.0.get_token(token_type).map_err(backend_error)
    }

    fn get_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, BackendError> {
        self.0.get_evidence(runtime_data).map_err(backend_error)
    }

    fn get_additional_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, BackendError> {
        self.0
            .get_additional_evidence(runtime_data)
            .map_err(backend_error)
    }

    fn extend_runtime_measurement(
        &mut self,
        domain: &str,
        operation: &str,
        content: &str,
    ) -> Result<AaelResult, BackendError> {
        // api-server-rest never sends a register index.
        match self
            .0
            .extend_runtime_measurement(domain, operation, content, None)
        {
            Ok(Measurement::Ok) => Ok(AaelResult::Ok),
            Ok(Measurement::NotSupported) => Ok(AaelResult::NotSupported),
            Ok(Measurement::NotEnabled) => Ok(AaelResult::NotEnabled),
            Err(e) => Err(backend_error(e)),
        }
    }

    fn tee_type(&self) -> String {
        self.0.tee_type().to_string()
    }

    fn additional_tees(&self) -> Vec<String> {
        self.0.additional_tees()
    }
}

/// Answers one request from `peer` with the hub's help (routing: [`sealgate_core::rest`]).
pub fn handle(req: &Request, peer: IpAddr, features: Features, hub: &mut Hub) -> Response {
    sealgate_core::rest::handle(req, peer, features, &mut HubBackend(hub))
}

/// Advances `conn` by at most one request (see [`RestConn::step`]).
pub fn step(conn: &mut RestConn, hub: &mut Hub) -> Step {
    conn.step(&mut HubBackend(hub))
}
