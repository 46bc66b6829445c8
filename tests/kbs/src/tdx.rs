//! Trustee's `tdx` verifier (`deps/verifier/src/tdx/mod.rs` at 78962cd4) with the
//! cryptographic part of Intel DCAP quote verification, against a configurable root CA instead
//! of Intel's, plus a small appraisal policy (allowed MRTDs, expected RTMRs).
//!
//! Checks, in order: the evidence deserializes (`{"cc_eventlog", "quote"}`, base64 STANDARD);
//! the quote is not empty and parses as a TD quote v4/v5 (a v3 SGX quote is refused); the PCK
//! chain in the certification data is exactly leaf, intermediate, root (as Trustee requires),
//! the root is byte for byte the trusted root CA, and each certificate is signed by the next
//! (ECDSA P-256/SHA-256), the root by itself; the intermediate is the PCK Platform or Processor
//! CA and the leaf carries the SGX extensions; the QE report is signed by the PCK key; the QE
//! REPORTDATA is SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero bytes; the quote
//! is signed by the attestation key over header ‖ body; REPORTDATA = regularize(binding, 64);
//! MRCONFIGID = regularize(init-data digest, 48) when init-data was sent; the event log, when
//! present (`cc_eventlog` not null or empty), is parsed as Trustee parses it and replayed
//! (SHA-384 per MR index 1..4) against RTMR0..3 of the quote, a mismatch failing the
//! attestation (absent: a note only, as Trustee's warning), and its events become the
//! `uefi_event_logs` claim; then the policy.
//!
//! Not checked (no collateral exists for simulated platforms, and the test KBS has no Intel
//! PCS): TCB info and TCB status by FMSPC, QE identity, CRLs, certificate validity periods.

use crate::verifier::{Appraisal, EarStatus, Expected, TrustVector, Verifier};
use crate::x509::{self, hex};
use firmware_glue::EvidenceJsonError;
use firmware_glue::der::{Certificate, oid, tag};
use firmware_glue::tdx::{self, Quote, QuoteError};
use p256::ecdsa::signature::Verifier as _;
use sealgate_core::eventlog::{self, EventLog};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// SGX extensions OID content octets (1.2.840.113741.1.13.1).
const SGX_EXTENSIONS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];
const PLATFORM_CA_CN: &[u8] = b"Intel SGX PCK Platform CA";
const PROCESSOR_CA_CN: &[u8] = b"Intel SGX PCK Processor CA";
/// commonName OID content (2.5.4.3).
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// What the appraisal accepts beyond the quote checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TdxPolicy {
    /// Allowed MRTDs; empty = any.
    pub mr_td: Vec<[u8; 48]>,
    /// Expected RTMR0..3 values; `None` = any.
    pub rtmr: [Option<[u8; 48]>; 4],
}

impl TdxPolicy {
    /// Allows an MRTD given as 96 hex digits.
    pub fn allow_mr_td_hex(&mut self, hex: &str) -> Result<(), String> {
        self.mr_td.push(x509::unhex(hex)?);
        Ok(())
    }

    /// Requires RTMR `index` (0..=3) to be this value (96 hex digits).
    pub fn expect_rtmr_hex(&mut self, index: usize, hex: &str) -> Result<(), String> {
        let slot = self
            .rtmr
            .get_mut(index)
            .ok_or_else(|| format!("RTMR index {index} (0..=3)"))?;
        *slot = Some(x509::unhex(hex)?);
        Ok(())
    }
}

/// The `tdx` verifier.
#[derive(Clone, Debug, Default)]
pub struct TdxVerifier {
    root: Option<Vec<u8>>,
    /// The appraisal policy.
    pub policy: TdxPolicy,
}

impl TdxVerifier {
    /// A verifier trusting the root CA certificate `root_der` (Intel's is "Intel SGX Root CA").
    pub fn new(root_der: Vec<u8>, policy: TdxPolicy) -> Self {
        TdxVerifier {
            root: Some(root_der),
            policy,
        }
    }

    /// Trusts the root CA that `firmware_glue::sim` derives from `seed`.
    pub fn from_sim_seed(seed: &[u8], policy: TdxPolicy) -> Self {
        TdxVerifier::new(firmware_glue::sim::tdx::root(seed), policy)
    }
}

fn common_name<'a>(cert: &Certificate<'a>) -> Option<&'a [u8]> {
    let mut rdns = cert.subject.reader();
    while !rdns.is_empty() {
        let set = rdns.expect(tag::SET).ok()?;
        let mut atvs = set.reader();
        while !atvs.is_empty() {
            let atv = atvs.expect(tag::SEQUENCE).ok()?;
            let mut r = atv.reader();
            if r.expect(tag::OID).ok()?.value == CN_OID {
                return Some(r.read().ok()?.value);
            }
        }
    }
    None
}

/// The platform instance ID of the SGX extensions (Trustee's byte order: reversed), if any.
fn platform_instance_id(ext: &[u8]) -> Result<Option<[u8; 16]>, String> {
    let bad =
        |e: firmware_glue::der::DerError| format!("SGX extensions of the PCK certificate: {e}");
    let mut outer = firmware_glue::der::Reader::new(ext);
    let seq = outer.expect(tag::SEQUENCE).map_err(bad)?;
    outer.finish().map_err(bad)?;
    let mut items = seq.reader();
    while !items.is_empty() {
        let item = items.expect(tag::SEQUENCE).map_err(bad)?;
        let mut r = item.reader();
        let id = r.expect(tag::OID).map_err(bad)?.value;
        if id.len() == SGX_EXTENSIONS.len() + 1
            && id.starts_with(SGX_EXTENSIONS)
            && id[SGX_EXTENSIONS.len()] == 6
        {
            let value = r.expect(tag::OCTET_STRING).map_err(bad)?.value;
            let mut piid: [u8; 16] = value
                .try_into()
                .map_err(|_| "platform_instance is not 16 bytes".to_owned())?;
            piid.reverse();
            return Ok(Some(piid));
        }
    }
    Ok(None)
}

/// The PCK chain checks; returns the PCK certificate's P-256 point and the platform instance ID.
fn check_pck_chain(
    quote: &Quote<&[u8]>,
    root: &[u8],
) -> Result<(Vec<u8>, Option<[u8; 16]>), String> {
    let certs = x509::pem_certificates(quote.pck_cert_chain())?;
    if certs.len() != 3 {
        return Err(format!(
            "PCK cert chain must contain exactly 3 certificates (leaf, intermediate CA, root CA), got {}",
            certs.len()
        ));
    }
    if certs[2] != root {
        return Err("PCK cert chain: its root CA is not the root CA the test KBS trusts".into());
    }
    let leaf = x509::parse(&certs[0], "PCK")?;
    let intermediate = x509::parse(&certs[1], "PCK intermediate CA")?;
    let root = x509::parse(&certs[2], "root CA")?;
    x509::check_signed_by(&root, &root, "root CA (self-signed)")?;
    x509::check_signed_by(
        &intermediate,
        &root,
        "PCK intermediate CA signed by the root CA",
    )?;
    x509::check_signed_by(
        &leaf,
        &intermediate,
        "PCK certificate signed by the intermediate CA",
    )?;
    match common_name(&intermediate) {
        Some(PLATFORM_CA_CN | PROCESSOR_CA_CN) => {}
        Some(other) => {
            return Err(format!(
                "unexpected PCK intermediate CA CN: {}",
                String::from_utf8_lossy(other)
            ));
        }
        None => return Err("PCK intermediate CA cert has no Common Name".into()),
    }
    let ext = leaf
        .extension(SGX_EXTENSIONS)
        .map_err(|e| format!("PCK certificate extensions: {e}"))?
        .ok_or("SGX extensions OID not found in PCK leaf cert")?;
    let piid = platform_instance_id(ext.value)?;
    let point = leaf
        .ec_public_key(oid::PRIME256V1)
        .map_err(|e| format!("PCK key: {e}"))?
        .to_vec();
    Ok((point, piid))
}

fn p256_verify(sec1: &[u8], msg: &[u8], sig: &[u8; 64], what: &str) -> Result<(), String> {
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
        .map_err(|_| format!("{what}: the key is not a valid P-256 point"))?;
    let sig = p256::ecdsa::Signature::from_slice(sig)
        .map_err(|_| format!("{what}: the signature is not a valid (r, s)"))?;
    key.verify(msg, &sig)
        .map_err(|_| format!("{what}: the signature does not verify"))
}

fn td_attributes(raw: &[u8; 8]) -> Value {
    let bits = u64::from_le_bytes(*raw);
    json!({
        "debug": bits & 1 != 0,
        "septve_disable": bits & (1 << 28) != 0,
        "protection_keys": bits & (1 << 30) != 0,
        "key_locker": bits & (1 << 31) != 0,
        "perfmon": bits & (1 << 63) != 0,
    })
}

/// Trustee's `uefi_event_logs` claim (the fields the test KBS can fill): one object per
/// event after the header, with the AAEL details for `EV_EVENT_TAG` events tagged `AAEL`.
fn uefi_event_logs(log: &EventLog) -> Value {
    let events: Vec<Value> = log
        .events
        .iter()
        .skip(1)
        .map(|e| {
            let digests: Vec<Value> = e
                .digests
                .iter()
                .map(|(alg, d)| {
                    let name = match *alg {
                        eventlog::ALG_SHA256 => "SHA-256".to_owned(),
                        eventlog::ALG_SHA384 => "SHA-384".to_owned(),
                        eventlog::ALG_SHA512 => "SHA-512".to_owned(),
                        eventlog::ALG_SM3_256 => "SM3".to_owned(),
                        other => format!("0x{other:04x}"),
                    };
                    json!({"alg": name, "digest": hex(d)})
                })
                .collect();
            let mut details = Map::new();
            if let Some(text) = e.aael_text() {
                details.insert("string".into(), json!(text));
                details.insert("unicode_name".into(), json!("AAEL"));
                let mut parts = text.splitn(3, ' ');
                let (domain, operation, content) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                let content =
                    serde_json::from_str::<Value>(content).unwrap_or_else(|_| json!(content));
                details.insert(
                    "data".into(),
                    json!({"domain": domain, "operation": operation, "content": content}),
                );
            } else if e.event_type == eventlog::EV_EVENT_TAG && e.data.len() >= 8 {
                let text: String = String::from_utf8_lossy(&e.data[8..])
                    .chars()
                    .filter(|c| *c != '\0')
                    .collect();
                details.insert("string".into(), json!(text));
            }
            json!({
                "index": e.mr_index,
                "type_name": eventlog::event_type_name(e.event_type).unwrap_or("unknown"),
                "digests": digests,
                "event": sealgate_core::b64::std_encode(&e.data),
                "details": Value::Object(details),
                "digest_matches_event": e.digest_matches_event(),
            })
        })
        .collect();
    Value::Array(events)
}

/// Trustee's `generate_parsed_claim` (the event log claims are added by the caller).
fn claims(quote: &Quote<&[u8]>, piid: Option<[u8; 16]>) -> Map<String, Value> {
    let raw = quote.as_bytes();
    let b = quote.body();
    let mut header = Map::new();
    header.insert("version".into(), json!(hex(&raw[0..2])));
    header.insert("att_key_type".into(), json!(hex(&raw[2..4])));
    header.insert("tee_type".into(), json!(hex(&raw[4..8])));
    header.insert("reserved".into(), json!(hex(&raw[8..12])));
    header.insert("vendor_id".into(), json!(hex(quote.qe_vendor_id())));
    header.insert("user_data".into(), json!(hex(quote.user_data())));
    let mut body = Map::new();
    for (name, value) in [
        ("tcb_svn", &b.tee_tcb_svn()[..]),
        ("mr_seam", &b.mr_seam()[..]),
        ("mrsigner_seam", &b.mr_signer_seam()[..]),
        ("seam_attributes", &b.seam_attributes()[..]),
        ("td_attributes", &b.td_attributes()[..]),
        ("xfam", &b.xfam()[..]),
        ("mr_td", &b.mr_td()[..]),
        ("mr_config_id", &b.mr_config_id()[..]),
        ("mr_owner", &b.mr_owner()[..]),
        ("mr_owner_config", &b.mr_owner_config()[..]),
        ("report_data", &b.report_data()[..]),
    ] {
        body.insert(name.into(), json!(hex(value)));
    }
    for i in 0..4 {
        if let Some(r) = b.rtmr(i) {
            body.insert(format!("rtmr_{i}"), json!(hex(r)));
        }
    }
    if let (Some(svn2), Some(servicetd)) = (b.tee_tcb_svn2(), b.mr_servicetd()) {
        body.insert("tee_tcb_svn2".into(), json!(hex(svn2)));
        body.insert("mr_servicetd".into(), json!(hex(servicetd)));
    }
    let mut quote_map = Map::new();
    quote_map.insert("header".into(), Value::Object(header));
    quote_map.insert("body".into(), Value::Object(body));
    if quote.version() == 5 {
        quote_map.insert("type".into(), json!(hex(&raw[48..50])));
        quote_map.insert("size".into(), json!(hex(&raw[50..54])));
    }
    let mut claims = Map::new();
    claims.insert("quote".into(), Value::Object(quote_map));
    claims.insert("td_attributes".into(), td_attributes(b.td_attributes()));
    claims.insert("report_data".into(), json!(hex(quote.report_data())));
    claims.insert("init_data".into(), json!(hex(quote.mr_config_id())));
    if let Some(piid) = piid {
        claims.insert("platform_instance_id".into(), json!(hex(&piid)));
    }
    claims
}

impl Verifier for TdxVerifier {
    fn verify(&self, evidence: &Value, expected: &Expected<'_>) -> Result<Appraisal, String> {
        let parsed = tdx::parse_evidence_json(evidence).map_err(|e| match e {
            EvidenceJsonError::Shape { .. } => format!("Deserialize TDX Evidence failed.: {e}"),
            other => format!("TDX Verifier: {other}"),
        })?;
        if parsed.quote.is_empty() {
            return Err("TDX Quote is empty.".into());
        }
        let quote = Quote::new_checked(parsed.quote.as_slice()).map_err(|e| match e {
            QuoteError::UnsupportedVersion(3) => {
                "TDX Verifier: expected TDX quote (v4/v5), got SGX quote (v3)".to_owned()
            }
            other => format!("TDX Verifier: {other}"),
        })?;
        let root = self
            .root
            .as_deref()
            .ok_or("TDX Verifier: the test KBS trusts no root CA")?;
        let (pck, piid) =
            check_pck_chain(&quote, root).map_err(|e| format!("TDX Verifier: {e}"))?;
        p256_verify(
            &pck,
            quote.qe_report(),
            quote.qe_report_signature(),
            "QE report signature (PCK key)",
        )
        .map_err(|e| format!("TDX Verifier: {e}"))?;
        let mut h = Sha256::new();
        h.update(quote.attestation_key());
        h.update(quote.qe_auth_data());
        let qe_report_data = &quote.qe_report()[320..384];
        if qe_report_data[..32] != h.finalize()[..] || qe_report_data[32..] != [0u8; 32] {
            return Err("TDX Verifier: the QE report data does not bind the attestation key (SHA-256(key ‖ QE auth data) ‖ zeros)".into());
        }
        let mut att_key = vec![4u8];
        att_key.extend_from_slice(quote.attestation_key());
        p256_verify(
            &att_key,
            quote.signed_bytes(),
            quote.ecdsa_signature(),
            "quote signature (attestation key)",
        )
        .map_err(|e| format!("TDX Verifier: {e}"))?;
        let want = x509::regularize(expected.report_data, 64);
        if want != quote.report_data() {
            return Err(format!(
                "TDX Verifier: REPORT_DATA is different from that in TDX Quote (quote {}, expected {})",
                hex(quote.report_data()),
                hex(&want)
            ));
        }
        if let Some(digest) = expected.init_data_digest {
            let want = x509::regularize(digest, 48);
            if want != quote.mr_config_id() {
                return Err(format!(
                    "TDX Verifier: MRCONFIGID is different from that in TDX Quote (MRCONFIGID {}, init-data digest regularized {})",
                    hex(quote.mr_config_id()),
                    hex(&want)
                ));
            }
        }
        let mut notes = Vec::new();
        let mut event_logs = None;
        match &parsed.cc_eventlog {
            None => notes.push("no event log (cc_eventlog null): RTMRs not replayed".to_owned()),
            Some(log) => {
                let parsed = EventLog::parse(log)
                    .map_err(|e| format!("TDX Verifier: parse CCEL failed: {e}"))?;
                let replayed = parsed.replay();
                for (i, want) in replayed.iter().enumerate() {
                    let got = quote.rtmr(i).unwrap_or(&[0u8; 48]);
                    if got != want {
                        return Err(format!(
                            "TDX Verifier: RTMR{i} of the quote is {}, the event log replays to {}",
                            hex(got),
                            hex(want)
                        ));
                    }
                }
                notes.push(format!(
                    "cc_eventlog of {} bytes, {} events, replayed to the quote's RTMR0..3",
                    log.len(),
                    parsed.events.len()
                ));
                event_logs = Some(uefi_event_logs(&parsed));
            }
        }
        if self.policy.mr_td.is_empty() {
            notes.push("any MRTD accepted".to_owned());
        } else if !self.policy.mr_td.contains(quote.mr_td()) {
            return Err(format!(
                "policy: MRTD {} is not allowed",
                hex(quote.mr_td())
            ));
        }
        for (i, want) in self.policy.rtmr.iter().enumerate() {
            if let (Some(want), Some(got)) = (want, quote.rtmr(i))
                && want != got
            {
                return Err(format!(
                    "policy: RTMR{i} is {}, expected {}",
                    hex(got),
                    hex(want)
                ));
            }
        }
        let mut claims = claims(&quote, piid);
        if let Some(logs) = event_logs {
            claims.insert("uefi_event_logs".into(), logs);
        }
        Ok(Appraisal {
            class: "cpu",
            claims,
            status: EarStatus::Affirming,
            trust_vector: TrustVector {
                configuration: 2,
                executables: 3,
                hardware: 2,
                ..TrustVector::default()
            },
            notes,
        })
    }
}
