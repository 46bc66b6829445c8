//! `rtmr-check` (as argv\[0\], the next stage of the event-log boot on simulated TDX): the
//! guest-side client of sealgate's runtime measurements. It starts `/sbin/sealgate serve`
//! (the image's config names init-data, whose `aa.toml` enables the event log), waits for
//! the AA socket as the kata agent does, then:
//!
//! 1. reads RTMR3 from the kernel's sysfs file (`tsm_sim`'s `tdx_guest` device, the 6.16
//!    ABI), calls AA `ExtendRuntimeMeasurement` over ttrpc with CDH's `PullImage` event, and
//!    checks the answer (OK), the AAEL file (exactly the record of that event, MR index 4)
//!    and that RTMR3 moved by exactly `SHA-384(old || digest)`;
//! 2. `GetEvidence`: the `cc_eventlog` (CCEL + AAEL) replays to the quote's RTMR0..3;
//! 3. `GetToken("kbs")`: the first attestation of this hub, so the KBS replays that log
//!    against the quote and must accept it;
//! 4. tampers: extends RTMR3 through the sysfs file behind sealgate's back (no log
//!    entry), restarts the hub (a fresh KBS session) and calls `GetToken("kbs")` again:
//!    the KBS's replay must refuse it.
//!
//! Each step prints one `RTMR-CHECK` line (digests only: nothing here is secret, but the
//! token and key are still never printed); then it powers off.

use firmware_glue::tdx::{Quote, parse_evidence_json};
use prost::Message;
use sealgate_core::eventlog::{self as el, AaelEvent, EventLog};
use sealgate_core::proto::aa;
use sealgate_core::ttrpc::{self, Frame, FrameReader};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AA_SOCKET: &str = "/run/confidential-containers/attestation-agent/attestation-agent.sock";
const CDH_SOCKET: &str = "/run/confidential-containers/cdh.sock";
const RTMR3: &str = "/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384";
const AAEL: &str = "/run/attestation-agent/eventlog";
/// CDH's event after a PullImage (guest-components `hub.rs`), content as CDH writes it.
const DOMAIN: &str = "github.com/confidential-containers";
const OPERATION: &str = "PullImage";
const CONTENT: &str = "{\"image\":\"docker.io/library/busybox:1.36\", \"digest\":\"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c\"}";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One unary ttrpc call on the AA socket: the reply payload, or `(code, message)`.
fn call(method: &str, payload: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(AA_SOCKET).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let req = ttrpc::Request {
        service: aa::SERVICE.into(),
        method: method.into(),
        payload,
        timeout_nano: 50_000_000_000,
        metadata: Vec::new(),
    };
    s.write_all(&ttrpc::frame(1, ttrpc::TYPE_REQUEST, &req.encode_to_vec()))
        .map_err(|e| format!("write: {e}"))?;
    let mut reader = FrameReader::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        reader.feed(&buf[..n]);
        if let Some(Frame::Whole(_, payload)) = reader.next_frame() {
            let r = ttrpc::Response::decode(&payload[..]).map_err(|e| e.to_string())?;
            let status = r.status.unwrap_or_default();
            if status.code != 0 {
                return Err(format!(
                    "status={} message={:?}",
                    status.code, status.message
                ));
            }
            return Ok(r.payload);
        }
    }
}

fn read_rtmr3() -> Result<[u8; 48], String> {
    let v = std::fs::read(RTMR3).map_err(|e| format!("{RTMR3}: {e}"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| format!("{RTMR3}: {} bytes", v.len()))
}

/// Starts `sealgate serve` and waits for the AA socket (removing stale sockets first, as
/// the kata agent does before it spawns a component).
fn start_hub() -> Result<Child, String> {
    for path in [AA_SOCKET, CDH_SOCKET] {
        let _ = std::fs::remove_file(path);
    }
    let started = Instant::now();
    let mut child = Command::new("/sbin/sealgate")
        .arg("serve")
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sealgate serve: {e}"))?;
    while !std::path::Path::new(AA_SOCKET).exists() {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("sealgate serve exited ({st})"));
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            return Err(format!("{AA_SOCKET} never appeared"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

fn stop_hub(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Step 1: extend through the AA API and check the register and the record.
fn extend() -> Result<(), String> {
    let old = read_rtmr3()?;
    let reply = call(
        "ExtendRuntimeMeasurement",
        aa::ExtendRuntimeMeasurementRequest {
            domain: DOMAIN.into(),
            operation: OPERATION.into(),
            content: CONTENT.into(),
            register_index: None,
        }
        .encode_to_vec(),
    )?;
    let result = aa::ExtendRuntimeMeasurementResponse::decode(&reply[..])
        .map_err(|e| e.to_string())?
        .result;
    if result != aa::RESULT_OK {
        return Err(format!("result {result}, expected OK (0)"));
    }
    let event = AaelEvent::new(DOMAIN, OPERATION, CONTENT, 4).map_err(|e| e.to_string())?;
    let new = read_rtmr3()?;
    let expected = el::extend(&old, &event.digest());
    if new != expected {
        return Err(format!(
            "RTMR3 is {}, expected SHA-384(old || digest) = {}",
            hex(&new),
            hex(&expected)
        ));
    }
    let aael = std::fs::read(AAEL).map_err(|e| format!("{AAEL}: {e}"))?;
    if aael != event.record() {
        return Err(format!(
            "{AAEL} holds {} bytes, not exactly the event's {}-byte record",
            aael.len(),
            event.record().len()
        ));
    }
    println!(
        "RTMR-CHECK extend result=OK record=ok mr_index=4 digest={} rtmr3_old={} rtmr3_new={} \
         rtmr3_delta=sha384(old||digest)",
        hex(&event.digest()),
        hex(&old),
        hex(&new)
    );
    Ok(())
}

/// Step 2: the evidence's event log replays to the quote's RTMRs.
fn evidence() -> Result<(), String> {
    let reply = call(
        "GetEvidence",
        aa::GetEvidenceRequest {
            runtime_data: vec![0x42; 32],
        }
        .encode_to_vec(),
    )?;
    let ev = aa::GetEvidenceResponse::decode(&reply[..])
        .map_err(|e| e.to_string())?
        .evidence;
    let value: serde_json::Value = serde_json::from_slice(&ev).map_err(|e| e.to_string())?;
    let parsed = parse_evidence_json(&value).map_err(|e| e.to_string())?;
    let log = parsed.cc_eventlog.ok_or("cc_eventlog is null")?;
    let events = EventLog::parse(&log).map_err(|e| e.to_string())?;
    let quote = Quote::new_checked(&parsed.quote[..]).map_err(|e| e.to_string())?;
    let replayed = events.replay();
    for (i, want) in replayed.iter().enumerate() {
        if quote.rtmr(i) != Some(want) {
            return Err(format!("the log does not replay to the quote's RTMR{i}"));
        }
    }
    let aael: Vec<&str> = events.events.iter().filter_map(|e| e.aael_text()).collect();
    if aael.len() != 1 || !aael[0].starts_with("github.com/confidential-containers PullImage ") {
        return Err(format!("AAEL events in the log: {aael:?}"));
    }
    let ccel = events.events.len() - 1 - aael.len();
    println!(
        "RTMR-CHECK evidence cc_eventlog={} events={} ccel_events={ccel} aael_events={} \
         replay=matches-quote rtmr3={}",
        log.len(),
        events.events.len(),
        aael.len(),
        hex(&replayed[3])
    );
    Ok(())
}

/// `GetToken("kbs")`: the token's length on success (the token itself is never printed).
fn token() -> Result<usize, String> {
    let reply = call(
        "GetToken",
        aa::GetTokenRequest {
            token_type: "kbs".into(),
        }
        .encode_to_vec(),
    )?;
    let token = aa::GetTokenResponse::decode(&reply[..])
        .map_err(|e| e.to_string())?
        .token;
    Ok(token.len())
}

/// Runs the check; returns whether everything worked.
pub fn run() -> bool {
    let mut ok = true;
    let mut fail = |what: &str, e: String| {
        println!("RTMR-CHECK FAILED: {what}: {e}");
        ok = false;
    };
    let hub = match start_hub() {
        Ok(c) => c,
        Err(e) => {
            println!("RTMR-CHECK FAILED: {e}");
            println!("RTMR-CHECK done failed");
            return false;
        }
    };
    if let Err(e) = extend() {
        fail("ExtendRuntimeMeasurement", e);
    }
    if let Err(e) = evidence() {
        fail("GetEvidence", e);
    }
    match token() {
        Ok(len) => println!("RTMR-CHECK token accepted size={len}"),
        Err(e) => fail("GetToken after the extend", e),
    }
    stop_hub(hub);

    // Behind sealgate's back: an extend with no record.
    let tampered = std::fs::OpenOptions::new()
        .write(true)
        .open(RTMR3)
        .and_then(|f| f.write_at(&[0x5a; 48], 0));
    match tampered {
        Ok(48) => println!(
            "RTMR-CHECK tampered rtmr3={}",
            read_rtmr3().map(|r| hex(&r)).unwrap_or_else(|e| e)
        ),
        other => fail(
            "extending RTMR3 behind sealgate's back",
            format!("{other:?}"),
        ),
    }
    match start_hub() {
        Ok(hub) => {
            match token() {
                Ok(len) => fail(
                    "GetToken after tampering",
                    format!("accepted ({len} bytes): the KBS did not replay the log"),
                ),
                Err(e) => println!("RTMR-CHECK tampered token refused {e}"),
            }
            stop_hub(hub);
        }
        Err(e) => fail("restarting the hub", e),
    }
    println!("RTMR-CHECK done {}", if ok { "ok" } else { "failed" });
    let _ = std::io::stdout().flush();
    ok
}
