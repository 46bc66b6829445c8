//! A test Trustee KBS: a real HTTP/1.1 server on loopback that answers the guest side of the
//! KBS protocol (RCAR 0.4.0) the way Trustee (revision 78962cd4, built-in CoCo attestation
//! service) does on the wire, errors included, plus fault injection and counters for tests.
//!
//! It is an independent peer of the agent: it verifies evidence, issues an EAR token and
//! encrypts resources (JWE) itself; only base64, RFC 8785 JCS and the `rand_core` adapter come
//! from `sealgate`.
//!
//! # Wire behaviour
//!
//! - `POST /kbs/v0/auth` `{"version","tee","extra-params"}`: version `=0.4.0` (SemVer exact, build
//!   metadata ignored); 200 `{"nonce":"<44 chars>","extra-params":""}` and
//!   `Set-Cookie: kbs-session-id=<32 hex>; Expires=<IMF-fixdate>`. Errors: 401 `AttestationError`,
//!   detail `Attestation error: RCAR handshake Auth failed: <reason>` with Trustee's reasons
//!   (`deserialize Request`, `failed to parse KBS version`, `KBS Client Protocol Version Mismatch: ...`).
//! - `POST /kbs/v0/attest` (cookie): the runtime-data binding is SHA-384 over the JCS of
//!   `{"additional-evidence","nonce","tee-pubkey"}` (tee-pubkey reduced to Trustee's members);
//!   evidence is checked by the [`Verifier`] registered for the session's TEE; 200
//!   `{"token":"<EAR JWT>"}` and the same `Set-Cookie`. A replay on an Attested session returns
//!   the old token. Every failure: 401 `Attestation error: RCAR handshake Attest failed`.
//! - `GET /kbs/v0/resource/<repo>/<type>/<tag>`: token from an Attested session cookie, else
//!   `Authorization: Bearer`; 401 `TokenNotFound`, `TokenVerifierError`, `PolicyDeny`,
//!   `PluginInternalError` (missing resource or bad path), `JweError` (P-384, ...); 200 a
//!   flattened JWE (`application/json`). Unknown plugins (and non-POST `auth`/`attest`): 404
//!   `PluginNotFound`, before any token check. Error bodies carry no Content-Type.
//! - `GET /healthz`: 200. Paths outside `/kbs/v0/`: an empty 404.
//!
//! # Use from tests
//!
//! ```no_run
//! use test_kbs::{Config, Fault, FaultKind, Server, Step};
//!
//! let server = Server::start(Config::default()).unwrap();
//! server.add_resource("default/mysecret/secret", b"hello".to_vec()).unwrap();
//! server.add_fault(Fault::new(Step::Resource(None), FaultKind::CloseMidResponse).times(1)).unwrap();
//! let url = server.url(); // http://127.0.0.1:PORT
//! // ... run the client against `url` ...
//! let stats = server.stats();
//! assert_eq!(stats.connections, 1);
//! assert_eq!(stats.attest.requests, 1);
//! assert_eq!(stats.resource.count(200), 1);
//! ```
//!
//! # A fleet
//!
//! [`Fleet::start`]`(config, n, `[`Balance::PerRequest`]`)` runs `n` replicas that share the
//! token key, resources, policy and faults but keep their own sessions, behind a round-robin
//! front on `config.listen` (see [`Fleet`]): the `/attest` after an `/auth` can land on a
//! replica that never saw the cookie, as behind a load balancer in front of Trustee.
//!
//! [`Config`] holds every knob (resources, policy, verifiers, timeouts, chunked responses,
//! connection closing, faults, logging); [`Server`] can change faults, policy and resources
//! while running. Fault specs are described in [`fault`], the policy file in [`policy`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod certs;
mod error;
pub mod fault;
mod fleet;
mod http;
mod httpdate;
mod initdata;
mod jwe;
mod kbs;
pub mod policy;
mod rcar;
mod resources;
mod rng;
mod server;
mod session;
mod snp;
mod stats;
mod tdx;
mod tls;
mod token;
pub mod verifier;
mod x509;

pub use fault::{Fault, FaultKind, Step};
pub use fleet::{Balance, Fleet};
pub use policy::{Effect, Policy, Rule};
pub use rcar::Tee;
pub use server::{Config, Server};
pub use stats::{Arrival, MAX_ARRIVALS, Stats, StepStats};
pub use tls::TlsSettings;
pub use verifier::{
    Appraisal, EarStatus, Expected, SampleDeviceVerifier, SampleVerifier, SnpPolicy, SnpRoots,
    SnpVerifier, TdxPolicy, TdxVerifier, TrustVector, Verifier, Verifiers,
};
