//! The simulator daemon: answers the requests `tsm_sim` queues on `/dev/tsm_sim`.

use crate::firmware::Firmware;
use crate::proto::{self, Kind, Request, Source};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

/// The device node the module registers.
pub const DEVICE: &str = "/dev/tsm_sim";

/// `EIO`, for answers the module could not accept.
const EIO: u32 = 5;

/// Opens the device (exclusively: the module allows one daemon).
pub fn open(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::CLOEXEC.bits() as i32)
        .open(path)
}

/// Answers requests until the device fails (never returns otherwise).
pub fn serve(mut dev: File, fw: &mut dyn Firmware) -> io::Error {
    let mut buf = [0u8; proto::REQ_LEN];
    loop {
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return e,
        };
        let req = match Request::decode(&buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("guest-sim: ignoring a request: {}", e.0);
                continue;
            }
        };
        let started = Instant::now();
        let result = fw.answer(&req).and_then(|a| {
            if a.outblob.len() > proto::OUTBLOB_MAX || a.auxblob.len() > proto::AUXBLOB_MAX {
                eprintln!(
                    "guest-sim: answer too large for the module ({} + {} bytes)",
                    a.outblob.len(),
                    a.auxblob.len()
                );
                return Err(EIO);
            }
            Ok(a)
        });
        let resp = proto::encode_response(
            req.id,
            result
                .as_ref()
                .map(|a| (&a.outblob[..], &a.auxblob[..]))
                .map_err(|e| *e),
        );
        let what = match (req.kind, req.source) {
            (Kind::SnpReport, Source::SevGuestIoctl) => "SNP report via /dev/sev-guest",
            (Kind::SnpReport, _) => "SNP report via configfs-tsm",
            (Kind::TdxQuote, _) => "TDX quote via configfs-tsm",
            (Kind::TdxReport, _) => "TDREPORT via tdx_guest",
            (Kind::TdxExtend, _) => "RTMR extend via tdx_guest",
        };
        let outcome = match &result {
            Ok(a) => format!("{} + {} bytes", a.outblob.len(), a.auxblob.len()),
            Err(errno) => format!("failed with errno {errno}"),
        };
        match dev.write(&resp) {
            Ok(n) if n == resp.len() => eprintln!(
                "guest-sim: request {} ({what}, VMPL {}): {outcome} in {} ms",
                req.id,
                req.privlevel,
                started.elapsed().as_millis()
            ),
            Ok(n) => eprintln!("guest-sim: request {}: short write {n}", req.id),
            // ESTALE: the requester gave up (timeout) before the answer.
            Err(e) => eprintln!("guest-sim: request {}: answer refused: {e}", req.id),
        }
    }
}

/// Writes `resp` for tests of the module (the self-test drives the device by hand).
pub fn write_raw(dev: &mut File, resp: &[u8]) -> io::Result<usize> {
    dev.write(resp)
}
