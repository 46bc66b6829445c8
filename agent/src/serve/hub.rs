//! The hub: the one stateful part of the server. It owns the single KBS session (the tee
//! key, the session cookie and the attestation token), the attester and the settings;
//! every listener (the AA socket, the CDH socket, the REST port) calls it.
//!
//! **One session for everyone.** The hub is single-threaded: the event loop calls one
//! operation at a time, and an operation that needs the KBS makes its calls inline
//! (blocking, bounded by [`HubSettings`]' per-operation deadline). Callers that arrive
//! while a handshake runs wait in the loop's queue and then find the session attested:
//! one RCAR handshake serves them all. The token is kept until its `exp` (read from the
//! JWT's claims without checking its signature: the hub only decides *when* to attest
//! again with it, and the KBS, which verifies it, answers 401 if it disagrees), and the
//! hub attests again when the token expired or the KBS answers 401.
//!
//! Expiry is measured on the monotonic clock: the token's lifetime is `exp - iat` (both
//! the KBS's clock), counted from the moment the hub received it, less a margin, so a
//! guest clock that is off does not make every call attest or keep a stale token.

use crate::cli::Options;
use crate::client::{Client, ClientError};
use crate::eventlog::{self, EventLogFailure};
use crate::evidence::{Attester, AttesterError};
use crate::prelude::*;
use crate::run::{self, Failure, KeyFailure};
use crate::transport::HttpTransport;
use core::fmt;
use core::time::Duration;
use sealgate_core::b64;
use sealgate_core::config::Settings;
use sealgate_core::escape;
use sealgate_core::initdata::{InitData, InitDataError};
use sealgate_core::kbs::KbsClientError;
use sealgate_core::kbs::driver::Error as DriverError;
use sealgate_core::rcar::Tee;
use sealgate_core::rest::Features;
use sealgate_core::sealed::{self, SealedError, SealedSecret, Unseal};
use sealgate_core::upstream::{self, AaConfig, CdhConfig, MAX_UPSTREAM_CONFIG};
use sealgate_core::uri::ResourceUri;
use sealgate_linux::fs;
use sealgate_linux::time::Instant;
use sealgate_linux::{debug, info, warn};
use zeroize::Zeroizing;

/// The longest an operation may spend on the KBS (retries included): below kata's 50 s
/// ttrpc timeout, so the caller gets the hub's answer rather than its own timeout.
pub const MAX_OPERATION_SECS: u64 = 45;

/// The most runtime data `GetEvidence` binds (the report data field), as upstream.
pub const MAX_RUNTIME_DATA: usize = 64;

/// A sealed secret is at most this long (upstream has no bound; a JWS of a vault secret is
/// a few hundred bytes).
pub const MAX_SEALED_SECRET: usize = 64 << 10;

/// The longest resource URI accepted.
pub const MAX_RESOURCE_URI: usize = 2048;

/// What the hub is started with: the upstream components' flags, and sealgate's own.
#[derive(Debug, Default)]
pub struct HubSettings {
    /// sealgate's own flags, `--config` and `--kernel-cmdline` (`sealgate serve`); the
    /// upstream names leave it default (the image's `/etc/sealgate/config.toml` and the
    /// kernel command line are read as `sealgate unseal` reads them).
    pub options: Options,
    /// AA's `-c aa.toml`.
    pub aa_config: Option<String>,
    /// CDH's `-c cdh.toml`.
    pub cdh_config: Option<String>,
    /// AA's `--initdata-toml PATH`: checked against the TEE before anything else.
    pub initdata_toml: Option<String>,
}

/// The class of a failure, for the status each API maps it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubErrorKind {
    /// The caller's input is malformed.
    InvalidArgument,
    /// The KBS has no such resource (or the local key file is missing).
    NotFound,
    /// The KBS refused (attestation policy, resource policy), or a signature did not
    /// verify.
    PermissionDenied,
    /// The KBS cannot be reached now, or none is configured.
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

impl HubError {
    fn new(kind: HubErrorKind, message: impl Into<String>) -> Self {
        HubError {
            kind,
            message: message.into(),
        }
    }
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

/// The KBS session and when its token expires.
struct Kbs {
    client: Client<HttpTransport>,
    /// When the current token is due for renewal (monotonic), if it says.
    renew_at: Option<Instant>,
    /// Handshakes seen when `renew_at` was computed.
    seen: u32,
}

/// The hub.
pub struct Hub {
    cfg: sealgate_core::config::Config,
    kbs: Option<Kbs>,
    /// The attester for `GetEvidence` (the KBS client has its own).
    attester: Attester,
    tee: Tee,
    /// Sealed secrets are accepted without a valid signature (measured settings only).
    allow_unsigned: bool,
    aa: AaConfig,
    /// The caller's own deadline for the current operation (a ttrpc request's
    /// `timeout_nano`), when it is sooner than the hub's.
    call_deadline: Option<Instant>,
}

/// Reads an upstream config file (`-c`), bounded.
fn read_upstream(path: &str) -> Result<String, Failure> {
    let bytes = fs::read_file(path, MAX_UPSTREAM_CONFIG).map_err(|error| Failure::ConfigRead {
        path: path.into(),
        error,
    })?;
    String::from_utf8(bytes).map_err(|_| Failure::ConfigNotUtf8 { path: path.into() })
}

/// Checks whether the `-c` file `path` of component `entry` (`aa.toml`/`cdh.toml`) is
/// measured: its content is verified init-data's entry of that name (whose settings the hub
/// reads from init-data itself). Otherwise it is ignored whole,
/// with a warning: kata writes these files from init-data, so a different file came from
/// elsewhere, and its KBS, certificate or verification settings could weaken the guest.
fn check_entry(path: &str, text: &str, entry: &str, init_data: Option<&InitData>) {
    match init_data.and_then(|d| d.entry(entry)) {
        Some(e) if e == text => debug!("{path} is init-data's {entry}"),
        Some(_) => warn!(
            "ignoring {path}: it is not the verified init-data's {entry} (only measured \
             configuration may set the KBS, its certificate or the verification rules)"
        ),
        None => warn!(
            "ignoring {path}: there is no verified init-data {entry} it could be (pass \
             --initdata-toml, or set these in the image's /etc/sealgate/config.toml)"
        ),
    }
}

impl Hub {
    /// Loads the configuration, checks init-data against the TEE (a mismatch is an
    /// error: the caller exits before creating any socket), and prepares the KBS client
    /// (no network use yet: the first operation that needs the KBS attests).
    pub fn new(settings: HubSettings) -> Result<Hub, Failure> {
        let HubSettings {
            mut options,
            aa_config,
            cdh_config,
            initdata_toml,
        } = settings;
        if let Some(path) = initdata_toml {
            // kata's argument: the file it wrote from the init-data device.
            options.flags.init_data = Some(path);
        }
        let sources = run::read_sources(&options)?;
        let (merged, init_data, checked) = run::load_settings(&options, sources)?;

        // The upstream config files: used only when they are init-data's entries.
        let mut aa = AaConfig {
            init_pcr: upstream::DEFAULT_INIT_PCR,
            ..AaConfig::default()
        };
        let mut cdh = CdhConfig::default();
        if let Some(d) = &init_data {
            if let Some(text) = d.entry("aa.toml") {
                aa = upstream::parse_aa(text).map_err(|e| {
                    Failure::InitData(InitDataError::Embedded(e.file, e.error.to_string()))
                })?;
            }
            if let Some(text) = d.entry("cdh.toml") {
                cdh = upstream::parse_cdh(text).map_err(|e| {
                    Failure::InitData(InitDataError::Embedded(e.file, e.error.to_string()))
                })?;
            }
        }
        for (path, entry) in [(&aa_config, "aa.toml"), (&cdh_config, "cdh.toml")] {
            if let Some(path) = path {
                let text = read_upstream(path)?;
                check_entry(path, &text, entry, init_data.as_ref());
            }
        }
        if let Some(name) = &cdh.kbc_name
            && name != "cc_kbc"
        {
            warn!(
                "init-data's cdh.toml names the KBC '{}': sealgate speaks only to a KBS (cc_kbc)",
                escape::shown(name)
            );
        }

        let has_kbs = merged.kbs_url.is_some();
        let cfg = Settings {
            kbs_url: Some(merged.kbs_url.clone().unwrap_or_default()),
            ..merged
        }
        .resolve()?;
        let allow_unsigned = cfg.allow_unsigned || cdh.skip_sealed_secret_verification;
        if cdh.skip_sealed_secret_verification {
            warn!(
                "INSECURE: init-data's cdh.toml sets skip_sealed_secret_verification: sealed \
                 secrets are accepted without a valid signature"
            );
        }

        let attester = match checked {
            Some(a) => a,
            None => Attester::from_config(&cfg)?,
        };
        let tee = attester.tee();
        let kbs = if has_kbs {
            // The transport's own deadline is the far future: every operation gets its
            // own (Client::set_deadline, which caps the transport's waits too).
            let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
            let client = run::connect(&cfg, init_data.as_ref(), None, far)?;
            info!(
                "KBS {} for every caller, one session shared (tee '{}')",
                cfg.kbs_url,
                tee.as_str()
            );
            Some(Kbs {
                client,
                renew_at: None,
                seen: 0,
            })
        } else {
            warn!("no KBS is configured: resources, sealed secrets and tokens are unavailable");
            None
        };
        if aa.enable_eventlog {
            info!(
                "the runtime event log is enabled (init_pcr {})",
                aa.init_pcr
            );
            // As upstream's AA at start: finish an extend a crash interrupted.
            eventlog::recover(tee, attester.eventlog_paths())
                .map_err(|e| Failure::Attester(AttesterError::EventLog(e)))?;
        }
        Ok(Hub {
            cfg,
            kbs,
            attester,
            tee,
            allow_unsigned,
            aa,
            call_deadline: None,
        })
    }

    /// The KBS session, with the per-operation deadline set and an expired token
    /// forgotten.
    fn kbs(&mut self) -> Result<&mut Client<HttpTransport>, HubError> {
        session(&mut self.kbs, self.cfg.deadline_secs, self.call_deadline)
    }

    /// Bounds the next operations by the caller's deadline too (a ttrpc request's
    /// `timeout_nano`: its KBS calls stop there, so one caller's short deadline does not
    /// hold the loop for the hub's own); `None` restores the hub's deadline alone.
    pub fn set_call_deadline(&mut self, at: Option<Instant>) {
        self.call_deadline = at;
    }

    /// After a KBS operation: a new token's renewal time.
    fn note_session(&mut self) {
        let Some(kbs) = &mut self.kbs else { return };
        let attestations = kbs.client.stats.attestations;
        if attestations == kbs.seen {
            return;
        }
        kbs.seen = attestations;
        kbs.renew_at = kbs
            .client
            .token()
            .and_then(token_lifetime)
            .map(|life| Instant::now() + life.saturating_sub(renewal_margin(life)));
        match kbs.renew_at {
            Some(at) => debug!(
                "attestation token valid for {} s",
                at.saturating_duration_until().as_secs()
            ),
            None => debug!("the attestation token has no exp: kept until the KBS refuses it"),
        }
    }

    /// A KBS resource through the shared session (`SecureMount`'s `kbs:///` keys).
    pub fn fetch_resource(&mut self, uri: &ResourceUri) -> Result<Zeroizing<Vec<u8>>, HubError> {
        self.fetch(uri)
    }

    fn fetch(&mut self, uri: &ResourceUri) -> Result<Zeroizing<Vec<u8>>, HubError> {
        let result = self.kbs()?.fetch(uri);
        self.note_session();
        result.map_err(|e| client_error(&e))
    }

    /// CDH `UnsealSecret`: the same rules as `sealgate unseal` (signature by the `kid`'s
    /// key, a KBS resource or a file in the key directory; vault secrets fetched from the
    /// KBS; envelope secrets refused).
    pub fn unseal_secret(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HubError> {
        if sealed.len() > MAX_SEALED_SECRET {
            return Err(HubError::new(
                HubErrorKind::InvalidArgument,
                format!(
                    "sealed secret of {} bytes is longer than {MAX_SEALED_SECRET}",
                    sealed.len()
                ),
            ));
        }
        // A sealed value from an environment variable or a file may end in a newline.
        let text = sealed.trim_ascii_end();
        let verified;
        let secret = match SealedSecret::parse(text) {
            Ok(s) => match self.verify(&s) {
                Ok(secret) => {
                    verified = secret;
                    &verified
                }
                Err(e) if self.allow_unsigned && e.kind != HubErrorKind::Unavailable => {
                    warn!("INSECURE: {e}; accepting the sealed secret unverified as configured");
                    verified = s.payload_unverified().map_err(sealed_error)?;
                    &verified
                }
                Err(e) => return Err(e),
            },
            Err(e) if self.allow_unsigned => {
                warn!("INSECURE: {e}; accepting the sealed secret unverified as configured");
                verified = sealed::parse_unverified(text).map_err(sealed_error)?;
                &verified
            }
            Err(e) => return Err(sealed_error(e)),
        };
        match secret.resolve().map_err(sealed_error)? {
            Unseal::KbsResource(name) => {
                let uri = ResourceUri::parse(name).map_err(|e| {
                    HubError::new(HubErrorKind::InvalidArgument, format!("sealed secret: {e}"))
                })?;
                self.fetch(&uri)
            }
        }
    }

    fn verify(&mut self, s: &SealedSecret) -> Result<sealed::Secret, HubError> {
        let key = if self.kbs.is_some() {
            let client = session(&mut self.kbs, self.cfg.deadline_secs, self.call_deadline)?;
            let key = run::verification_key(&self.cfg, client, s);
            self.note_session();
            key
        } else if let Ok(sealed::KeySource::Kbs(_)) = s.key_source() {
            return Err(no_kbs());
        } else {
            // No KBS: a local key still verifies.
            local_key(&self.cfg, s)
        };
        let key = key.map_err(|e| key_error(&e))?;
        s.verify(&key).map_err(sealed_error)
    }

    /// CDH `GetResource` (`kbs:///repo/type/tag`; a host part is ignored, as upstream).
    pub fn get_resource(&mut self, uri: &str) -> Result<Zeroizing<Vec<u8>>, HubError> {
        if uri.len() > MAX_RESOURCE_URI {
            return Err(HubError::new(
                HubErrorKind::InvalidArgument,
                format!("resource URI longer than {MAX_RESOURCE_URI} bytes"),
            ));
        }
        let uri = ResourceUri::parse(uri)
            .map_err(|e| HubError::new(HubErrorKind::InvalidArgument, e.to_string()))?;
        self.fetch(&uri)
    }

    /// AA `GetEvidence`: the TEE's evidence with `runtime_data` (at most 64 bytes,
    /// zero-padded on SNP and TDX, as upstream) as its report data; JSON.
    pub fn get_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, HubError> {
        if runtime_data.len() > MAX_RUNTIME_DATA {
            return Err(HubError::new(
                HubErrorKind::InvalidArgument,
                format!(
                    "runtime data of {} bytes is longer than the {MAX_RUNTIME_DATA}-byte report data",
                    runtime_data.len()
                ),
            ));
        }
        let evidence = self
            .attester
            .evidence(runtime_data)
            .map_err(|e| HubError::new(HubErrorKind::Internal, format!("evidence: {e}")))?;
        serde_json::to_vec(&evidence)
            .map_err(|e| HubError::new(HubErrorKind::Internal, format!("evidence: {e}")))
    }

    /// AA `GetAdditionalEvidence`: sealgate has no additional attesters, so it is empty,
    /// as upstream answers without any.
    pub fn get_additional_evidence(&mut self, runtime_data: &[u8]) -> Result<Vec<u8>, HubError> {
        if runtime_data.len() > MAX_RUNTIME_DATA {
            return Err(HubError::new(
                HubErrorKind::InvalidArgument,
                format!("runtime data longer than {MAX_RUNTIME_DATA} bytes"),
            ));
        }
        Ok(Vec::new())
    }

    /// AA `GetToken`: for `kbs`, `{"token": JWT, "tee_keypair": PEM}` as upstream, from
    /// the shared session (attesting first when there is none or it expired).
    pub fn get_token(&mut self, token_type: &str) -> Result<Zeroizing<Vec<u8>>, HubError> {
        match token_type {
            "kbs" => {}
            "coco_as" => {
                return Err(HubError::new(
                    HubErrorKind::Unsupported,
                    "token type 'coco_as' is not supported: sealgate talks only to a KBS",
                ));
            }
            other => {
                return Err(HubError::new(
                    HubErrorKind::InvalidArgument,
                    format!(
                        "unknown token type '{}' (expected kbs)",
                        escape::escape(other, 64)
                    ),
                ));
            }
        }
        let client = self.kbs()?;
        let result = if client.token().is_some() {
            Ok(())
        } else {
            client.attest()
        };
        self.note_session();
        result.map_err(|e| client_error(&e))?;
        let Some(kbs) = &self.kbs else {
            return Err(HubError::new(HubErrorKind::Internal, "no KBS session"));
        };
        let client = &kbs.client;
        let token = client
            .token()
            .ok_or_else(|| HubError::new(HubErrorKind::Internal, "no attestation token"))?;
        let pem = client
            .key()
            .private_pem()
            .map_err(|e| HubError::new(HubErrorKind::Internal, e.to_string()))?;
        #[derive(serde::Serialize)]
        struct TokenReply<'a> {
            token: &'a str,
            tee_keypair: &'a str,
        }
        serde_json::to_vec(&TokenReply {
            token,
            tee_keypair: &pem,
        })
        .map(Zeroizing::new)
        .map_err(|e| HubError::new(HubErrorKind::Internal, format!("token: {e}")))
    }

    /// AA `ExtendRuntimeMeasurement`: NOT_ENABLED unless the event log is enabled
    /// (init-data's `aa.toml` `[eventlog_config] enable_eventlog`), NOT_SUPPORTED on a TEE
    /// without runtime measurement registers (SNP, sample, TDX without the kernel's sysfs
    /// RTMR files), as upstream means it; on TDX the event goes to the register of
    /// `register_index` (default `init_pcr`, 17: RTMR3) and into the AA event log
    /// (`crate::eventlog`).
    pub fn extend_runtime_measurement(
        &mut self,
        domain: &str,
        operation: &str,
        content: &str,
        register_index: Option<u64>,
    ) -> Result<Measurement, HubError> {
        // The configured init_pcr is the default register, as upstream's.
        let register = Some(register_index.unwrap_or(self.aa.init_pcr));
        let result = eventlog::extend_runtime_measurement(
            self.tee,
            self.attester.eventlog_paths(),
            self.aa.enable_eventlog,
            domain,
            operation,
            content,
            register,
        );
        match result {
            Ok(eventlog::Measurement::Ok) => Ok(Measurement::Ok),
            Ok(eventlog::Measurement::NotSupported) => Ok(Measurement::NotSupported),
            Ok(eventlog::Measurement::NotEnabled) => Ok(Measurement::NotEnabled),
            Err(e @ EventLogFailure::Format { .. }) => Err(HubError::new(
                HubErrorKind::InvalidArgument,
                format!("runtime measurement: {e}"),
            )),
            Err(e) => Err(HubError::new(
                HubErrorKind::Internal,
                format!("runtime measurement: {e}"),
            )),
        }
    }

    /// AA `GetTeeType`: `tdx`, `snp` or `sample`, as upstream.
    pub fn tee_type(&self) -> &str {
        self.tee.as_str()
    }

    /// What the REST API may serve of `requested` (`--features`, from kata's unmeasured
    /// `agent.guest_components_rest_api`): its intersection with the image's measured
    /// `rest_api_max` (default `resource`), with a warning naming what was withheld.
    pub fn rest_features(&self, requested: Features) -> Features {
        let granted = requested.within(self.cfg.rest_api_max);
        if granted != requested {
            warn!(
                "REST API: --features {} asks for more than rest_api_max = {} allows (the \
                 image's config or init-data's sealgate.toml sets it); serving {}",
                requested.as_str(),
                self.cfg.rest_api_max.as_str(),
                granted.as_str()
            );
        }
        granted
    }

    /// AA `GetAdditionalTees`: none.
    pub fn additional_tees(&self) -> Vec<String> {
        Vec::new()
    }

    /// Handshakes done so far.
    pub fn attestations(&self) -> u64 {
        self.kbs
            .as_ref()
            .map_or(0, |k| u64::from(k.client.stats.attestations))
    }
}

/// The KBS session of `kbs`, with the per-operation deadline (at most `deadline_secs`, and
/// no later than the caller's `call_deadline`) set and an expired token forgotten.
fn session(
    kbs: &mut Option<Kbs>,
    deadline_secs: u64,
    call_deadline: Option<Instant>,
) -> Result<&mut Client<HttpTransport>, HubError> {
    let mut budget = Duration::from_secs(deadline_secs.min(MAX_OPERATION_SECS));
    if let Some(at) = call_deadline {
        budget = budget.min(at.saturating_duration_until());
    }
    let Some(kbs) = kbs else {
        return Err(no_kbs());
    };
    if let Some(at) = kbs.renew_at
        && Instant::now() >= at
    {
        info!("the attestation token expired; attesting again");
        kbs.client.end_session();
        kbs.renew_at = None;
    }
    kbs.client.set_deadline(Instant::now() + budget, budget);
    Ok(&mut kbs.client)
}

fn no_kbs() -> HubError {
    HubError::new(
        HubErrorKind::Unavailable,
        "no KBS is configured (aa.toml [token_configs.kbs] url, cdh.toml [kbc] url in \
         init-data, or kbs_url in sealgate's config)",
    )
}

/// A local key (no KBS configured).
fn local_key(
    cfg: &sealgate_core::config::Config,
    s: &SealedSecret,
) -> Result<sealed::PublicJwk, KeyFailure> {
    let sealed::KeySource::Local(name) = s.key_source().map_err(KeyFailure::Kid)? else {
        return Err(KeyFailure::Missing(s.kid().to_string()));
    };
    let bytes = fs::read_beneath(&cfg.sealed_secret_keys_dir, name, 64 << 10).map_err(|error| {
        KeyFailure::File {
            name: name.into(),
            error,
        }
    })?;
    sealed::PublicJwk::from_json(&Zeroizing::new(bytes)).map_err(KeyFailure::Jwk)
}

/// The token's lifetime by its own claims: `exp - iat`, or `exp` - now on the guest's
/// clock when it has no `iat`. No signature check: this only schedules re-attestation.
fn token_lifetime(token: &str) -> Option<Duration> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<u64>,
        iat: Option<u64>,
    }
    let payload = token.split('.').nth(1)?;
    if payload.len() > 64 << 10 {
        return None;
    }
    let json = Zeroizing::new(b64::url_decode(payload).ok()?);
    let claims: Claims = serde_json::from_slice(&json).ok()?;
    let exp = claims.exp?;
    let from = match claims.iat {
        Some(iat) => iat,
        None => sealgate_linux::time::unix_time()?,
    };
    Some(Duration::from_secs(exp.saturating_sub(from)))
}

/// Renew a little before the end: a tenth of the lifetime, at most 10 s.
fn renewal_margin(life: Duration) -> Duration {
    (life / 10).min(Duration::from_secs(10))
}

/// The status class of a KBS client failure.
fn client_error(e: &ClientError) -> HubError {
    let kind = match e {
        DriverError::Kbs(k) => match k {
            // Trustee answers 401 for nearly every failure; its error type tells them
            // apart: a resource it does not hold fails in the resource plugin.
            KbsClientError::Unauthorized {
                error: Some(kbs), ..
            } if kbs.kind == "PluginInternalError" => HubErrorKind::NotFound,
            KbsClientError::Refused { .. } | KbsClientError::Unauthorized { .. } => {
                HubErrorKind::PermissionDenied
            }
            KbsClientError::NotFound { .. } => HubErrorKind::NotFound,
            KbsClientError::Unavailable { .. } => HubErrorKind::Unavailable,
            KbsClientError::UnexpectedStatus { status: 403, .. } => HubErrorKind::PermissionDenied,
            KbsClientError::UnexpectedStatus { .. }
            | KbsClientError::Protocol(_)
            | KbsClientError::Jwe { .. } => HubErrorKind::Internal,
        },
        DriverError::Transport(_) | DriverError::Deadline { .. } => HubErrorKind::Unavailable,
        DriverError::Evidence(_) | DriverError::Finished => HubErrorKind::Internal,
    };
    HubError::new(kind, e.to_string())
}

fn sealed_error(e: SealedError) -> HubError {
    let kind = match &e {
        SealedError::BadSignature => HubErrorKind::PermissionDenied,
        SealedError::UnsupportedProvider(_) => HubErrorKind::Unsupported,
        _ => HubErrorKind::InvalidArgument,
    };
    let message = match &e {
        SealedError::UnsupportedProvider(_) => format!(
            "sealed secret: {e} (sealgate unseals vault secrets from the KBS; envelope secrets need an external KMS and are refused)"
        ),
        _ => format!("sealed secret: {e}"),
    };
    HubError::new(kind, message)
}

fn key_error(e: &KeyFailure) -> HubError {
    let kind = match e {
        KeyFailure::Fetch(c) => client_error(c).kind,
        KeyFailure::Kid(_) | KeyFailure::Uri(_) | KeyFailure::Jwk(_) => {
            HubErrorKind::InvalidArgument
        }
        KeyFailure::File { error, .. } if error.is_not_found() => HubErrorKind::NotFound,
        KeyFailure::Missing(_) => HubErrorKind::NotFound,
        KeyFailure::Outside { .. } => HubErrorKind::PermissionDenied,
        KeyFailure::Directory { .. } | KeyFailure::File { .. } => HubErrorKind::Internal,
    };
    HubError::new(kind, format!("sealed secret: verification key: {e}"))
}
