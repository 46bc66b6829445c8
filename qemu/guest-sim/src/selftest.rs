//! In-guest checks of the `tsm_sim` module's ABI, run as PID 1 after the wrapper with the echo
//! firmware (`sim.firmware=echo sim.exec=/init,selftest`). Each check prints one
//! `SELFTEST ok|FAIL <name>` line; the harness asserts on them.
//!
//! 1. configfs-tsm as the real providers: `provider`, a 63-byte inblob refused (EINVAL), a
//!    64-byte one answered, `generation`, `auxblob` (SNP), `privlevel` (SNP);
//! 2. `/dev/sev-guest` (when the module provides it) through firmware-glue's ioctl client,
//!    including the certificate buffer negotiation;
//! 3. the `tdx_guest` device (TDX): `/dev/tdx_guest`'s `TDX_CMD_GET_REPORT0`, and the
//!    6.16 sysfs measurement files: the names, modes and sizes, reads from the TDREPORT,
//!    a 48-byte write at offset 0 accepted, a short or offset write refused (EINVAL);
//! 4. the daemon protocol: no daemon (EIO), one opener only (EBUSY), no answer (ETIMEDOUT) and
//!    a late answer (ESTALE), an error answer (its errno), a malformed answer (EINVAL), the
//!    daemon closing mid-request (EIO);
//! 5. unloading the module removes its devices (`/dev/tsm_sim`, `/dev/sev-guest`,
//!    `/dev/tdx_guest` and its sysfs directory).

use crate::config::Config;
use crate::daemon;
use crate::firmware::ECHO_MR_FILL;
use crate::proto::{self, Kind, Request};
use firmware_glue::snp::{CertTable, CertType, SevGuest};
use firmware_glue::tdx::TdxGuest;
use rustix::mount::MountFlags;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;

const TSM: &str = "/sys/kernel/config/tsm/report";

struct Checks {
    ok: bool,
}

impl Checks {
    fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => eprintln!("SELFTEST ok {name}"),
            Err(e) => {
                eprintln!("SELFTEST FAIL {name}: {e}");
                self.ok = false;
            }
        }
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Writes `inblob` to a fresh report entry and reads `blob` (outblob or auxblob).
fn tsm_read(entry: &Path, inblob: &[u8], blob: &str) -> io::Result<Vec<u8>> {
    fs::write(entry.join("inblob"), inblob)?;
    fs::read(entry.join(blob))
}

fn expect_errno(r: io::Result<Vec<u8>>, want: i32, what: &str) -> Result<(), String> {
    match r {
        Err(e) if errno(&e) == want => Ok(()),
        Err(e) => Err(format!("{what}: {e}, expected errno {want}")),
        Ok(b) => Err(format!(
            "{what}: got {} bytes, expected errno {want}",
            b.len()
        )),
    }
}

fn inblob(tag: u8) -> [u8; 64] {
    let mut b = [tag; 64];
    b[0] = 0x5e;
    b
}

/// Reads the outblob in a thread while the caller plays the daemon.
fn in_background(entry: PathBuf, tag: u8) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || tsm_read(&entry, &inblob(tag), "outblob"))
}

fn read_request(dev: &mut File) -> Result<Request, String> {
    let mut buf = [0u8; proto::REQ_LEN];
    let n = dev
        .read(&mut buf)
        .map_err(|e| format!("read request: {e}"))?;
    Request::decode(&buf[..n]).map_err(|e| e.0)
}

/// Runs every check with the configuration `load` reads once /proc is mounted; true if all
/// passed.
pub fn run(load: impl FnOnce() -> Result<Config, String>) -> bool {
    for (src, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("configfs", "/sys/kernel/config", "configfs"),
    ] {
        let _ = rustix::mount::mount(src, target, fstype, MountFlags::empty(), None);
    }
    let cfg = match load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SELFTEST FAIL configuration: {e}");
            return false;
        }
    };
    let snp = cfg.provider() == "sev_guest";
    let mut c = Checks { ok: true };
    let entry = PathBuf::from(TSM).join("selftest");
    if let Err(e) = fs::create_dir(&entry) {
        c.check("mkdir report entry", Err(e.to_string()));
        return false;
    }

    // 1. configfs-tsm.
    c.check("provider", {
        let p = fs::read_to_string(entry.join("provider")).unwrap_or_default();
        let want = format!("{}\n", cfg.provider());
        if p == want {
            Ok(())
        } else {
            Err(format!("{p:?}, expected {want:?}"))
        }
    });
    c.check(
        "63-byte inblob refused",
        expect_errno(tsm_read(&entry, &[1; 63], "outblob"), 22, "outblob"),
    );
    c.check("64-byte inblob answered", {
        match tsm_read(&entry, &inblob(1), "outblob") {
            Ok(out) if snp && out.len() == 1184 && out[0x50..0x90] == inblob(1) => Ok(()),
            Ok(out) if !snp && out.len() == 632 && out[568..632] == inblob(1) => Ok(()),
            Ok(out) => Err(format!("unexpected {}-byte outblob", out.len())),
            Err(e) => Err(e.to_string()),
        }
    });
    c.check("generation", {
        let g = fs::read_to_string(entry.join("generation")).unwrap_or_default();
        // The 63-byte write and the 64-byte write.
        if g == "2\n" {
            Ok(())
        } else {
            Err(format!("{g:?}"))
        }
    });
    let visible = |name: &str| entry.join(name).exists();
    c.check("attributes as the real provider", {
        let want = [
            ("auxblob", snp),
            ("privlevel", snp),
            ("privlevel_floor", snp),
        ];
        match want.iter().find(|(n, v)| visible(n) != *v) {
            None if !visible("manifestblob") && !visible("service_provider") => Ok(()),
            None => Err("SVSM attributes visible".into()),
            Some((n, v)) => Err(format!("{n} visible: {}, expected {v}", !v)),
        }
    });
    if snp {
        c.check("auxblob is the certificate table", {
            match fs::read(entry.join("auxblob")) {
                Ok(aux) => match CertTable::new_checked(&aux) {
                    Ok(t)
                        if t.find(CertType::Vcek)
                            .is_some_and(|v| v.starts_with(b"echo-certs:")) =>
                    {
                        Ok(())
                    }
                    Ok(_) => Err("no echo VCEK entry".into()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            }
        });
        c.check("privlevel reaches the firmware", {
            let r = fs::write(entry.join("privlevel"), "2")
                .and_then(|_| tsm_read(&entry, &inblob(2), "outblob"));
            match r {
                Ok(out) if out[0x30] == 2 => Ok(()),
                Ok(out) => Err(format!("VMPL {}", out[0x30])),
                Err(e) => Err(e.to_string()),
            }
        });
        let _ = fs::write(entry.join("privlevel"), "0");
    }

    // 2. /dev/sev-guest.
    if Path::new("/dev/sev-guest").exists() {
        c.check("SNP_GET_EXT_REPORT", {
            SevGuest::open("/dev/sev-guest")
                .and_then(|d| d.ext_report(&inblob(3)))
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    // ext_report hands the table back already checked
                    let t = r.certs.as_ref().ok_or("no certificate table")?;
                    if r.report[0x50..0x90] == inblob(3) && t.find(CertType::Vcek).is_some() {
                        Ok(())
                    } else {
                        Err("report or certificates not echoed".into())
                    }
                })
        });
        c.check("SNP_GET_REPORT", {
            SevGuest::open("/dev/sev-guest")
                .and_then(|d| d.report(&inblob(4)))
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    if r[0x50..0x90] == inblob(4) {
                        Ok(())
                    } else {
                        Err("not echoed".into())
                    }
                })
        });
        c.check(
            "SNP_GET_EXT_REPORT certificate length negotiation",
            ioctl::negotiation(),
        );
    }

    // 3. The tdx_guest device.
    if !snp {
        tdx_guest_checks(&mut c);
    }

    // 4. The daemon protocol: stop the wrapper's daemon and play it by hand.
    let pid = std::env::var("GUEST_SIM_DAEMON_PID")
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    let Some(pid) = pid else {
        c.check("daemon pid", Err("GUEST_SIM_DAEMON_PID not set".into()));
        return false;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    c.check(
        "no daemon: EIO",
        expect_errno(tsm_read(&entry, &inblob(5), "outblob"), 5, "outblob"),
    );
    let _ = fs::write("/sys/module/tsm_sim/parameters/timeout_ms", "700");
    let mut dev = match daemon::open(daemon::DEVICE) {
        Ok(d) => d,
        Err(e) => {
            c.check("open /dev/tsm_sim", Err(e.to_string()));
            return false;
        }
    };
    c.check(
        "one daemon at a time: EBUSY",
        match daemon::open(daemon::DEVICE) {
            Err(e) if errno(&e) == 16 => Ok(()),
            Err(e) => Err(e.to_string()),
            Ok(_) => Err("second open succeeded".into()),
        },
    );

    let t = in_background(entry.clone(), 6);
    let req = read_request(&mut dev);
    c.check(
        "request carries kind and inblob",
        match &req {
            Ok(r) if r.inblob == inblob(6) && (r.kind == Kind::SnpReport) == snp => Ok(()),
            Ok(r) => Err(format!("{r:?}")),
            Err(e) => Err(e.clone()),
        },
    );
    c.check(
        "no answer: ETIMEDOUT",
        expect_errno(t.join().unwrap(), 110, "outblob"),
    );
    if let Ok(r) = req {
        let late = proto::encode_response(r.id, Ok((&[1; 632][..], &[][..])));
        c.check(
            "late answer: ESTALE",
            match daemon::write_raw(&mut dev, &late) {
                Err(e) if errno(&e) == 116 => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }

    let t = in_background(entry.clone(), 7);
    let answered = read_request(&mut dev).and_then(|r| {
        daemon::write_raw(&mut dev, &proto::encode_response(r.id, Err(71)))
            .map_err(|e| e.to_string())
    });
    c.check(
        "error answer: its errno",
        answered.and_then(|_| expect_errno(t.join().unwrap(), 71, "outblob")),
    );

    let t = in_background(entry.clone(), 8);
    let out = vec![8u8; if snp { 1184 } else { 632 }];
    let answered = read_request(&mut dev).and_then(|r| {
        let mut bad = proto::encode_response(r.id, Ok((&out[..], &[][..])));
        bad[0] ^= 0xff;
        match daemon::write_raw(&mut dev, &bad) {
            Err(e) if errno(&e) == 22 => {}
            other => return Err(format!("malformed answer accepted: {other:?}")),
        }
        daemon::write_raw(
            &mut dev,
            &proto::encode_response(r.id, Ok((&out[..], &[][..]))),
        )
        .map_err(|e| e.to_string())
    });
    c.check(
        "malformed answer: EINVAL, then a good one",
        answered.and_then(|_| match t.join().unwrap() {
            Ok(b) if b == out => Ok(()),
            other => Err(format!("{other:?}")),
        }),
    );

    let t = in_background(entry.clone(), 9);
    let req = read_request(&mut dev);
    drop(dev);
    c.check(
        "daemon closes mid-request: EIO",
        req.and_then(|_| expect_errno(t.join().unwrap(), 5, "outblob")),
    );

    let _ = fs::remove_dir(&entry);

    // 5. Unloading the module removes what it registered (the daemon is gone, the report
    // entry removed: nothing holds it).
    c.check("unload removes the devices", {
        let flags = rustix::fs::OFlags::NONBLOCK.bits() as i32;
        match rustix::system::delete_module(c"tsm_sim", flags) {
            Err(e) => Err(format!("delete_module: {e}")),
            Ok(()) => {
                let left: Vec<&str> = [
                    "/dev/tsm_sim",
                    "/sys/class/misc/tsm_sim",
                    "/dev/sev-guest",
                    "/dev/tdx_guest",
                    "/sys/devices/virtual/misc/tdx_guest",
                    "/sys/module/tsm_sim",
                ]
                .into_iter()
                .filter(|p| Path::new(p).exists())
                .collect();
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("still there: {left:?}"))
                }
            }
        }
    });
    c.ok
}

const MEASUREMENTS: &str = "/sys/devices/virtual/misc/tdx_guest/measurements";

/// The 6.16 ABI's files, their echo fill byte and whether they are writable.
const MR_FILES: [(&str, u8, bool); 8] = [
    ("mrtd:sha384", ECHO_MR_FILL[0], false),
    ("mrconfigid", ECHO_MR_FILL[1], false),
    ("mrowner", ECHO_MR_FILL[2], false),
    ("mrownerconfig", ECHO_MR_FILL[3], false),
    ("rtmr0:sha384", ECHO_MR_FILL[4], true),
    ("rtmr1:sha384", ECHO_MR_FILL[5], true),
    ("rtmr2:sha384", ECHO_MR_FILL[6], true),
    ("rtmr3:sha384", ECHO_MR_FILL[7], true),
];

fn tdx_guest_checks(c: &mut Checks) {
    c.check("TDX_CMD_GET_REPORT0", {
        TdxGuest::open("/dev/tdx_guest")
            .and_then(|d| d.tdreport(&inblob(10)))
            .map_err(|e| e.to_string())
            .and_then(|r| {
                if r[128..192] == inblob(10) && r[864..912] == [ECHO_MR_FILL[7]; 48] {
                    Ok(())
                } else {
                    Err("REPORTDATA or RTMR3 not where the TDREPORT has them".into())
                }
            })
    });
    c.check("measurements: the 6.16 files, modes and values", {
        let mut names: Vec<String> = fs::read_dir(MEASUREMENTS)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut want: Vec<String> = MR_FILES.iter().map(|(n, _, _)| n.to_string()).collect();
        want.sort();
        if names != want {
            Err(format!("{names:?}, expected {want:?}"))
        } else {
            MR_FILES.iter().try_for_each(|(name, fill, writable)| {
                let path = Path::new(MEASUREMENTS).join(name);
                let mode = fs::metadata(&path)
                    .map(|m| m.permissions().mode() & 0o777)
                    .map_err(|e| format!("{name}: {e}"))?;
                let want_mode = if *writable { 0o644 } else { 0o444 };
                if mode != want_mode {
                    return Err(format!("{name}: mode {mode:o}, expected {want_mode:o}"));
                }
                match fs::read(&path) {
                    Ok(v) if v == [*fill; 48] => Ok(()),
                    Ok(v) => Err(format!("{name}: {} bytes, not the TDREPORT's", v.len())),
                    Err(e) => Err(format!("{name}: {e}")),
                }
            })
        }
    });
    let rtmr3 = Path::new(MEASUREMENTS).join("rtmr3:sha384");
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .open(&rtmr3)
            .map_err(|e| e.to_string())
    };
    c.check(
        "rtmr3: a 48-byte write at offset 0 extends",
        open().and_then(|f| match f.write_at(&[0x33; 48], 0) {
            Ok(48) => Ok(()),
            other => Err(format!("{other:?}")),
        }),
    );
    for (what, len, offset) in [
        ("a 47-byte write", 47usize, 0u64),
        ("a write at offset 1", 47, 1),
    ] {
        c.check(
            &format!("rtmr3: {what} is EINVAL"),
            open().and_then(|f| match f.write_at(&vec![0x33; len], offset) {
                Err(e) if errno(&e) == 22 => Ok(()),
                other => Err(format!("{other:?}")),
            }),
        );
    }
}

/// The raw `SNP_GET_EXT_REPORT` call firmware-glue keeps private, to see the INVALID_LEN
/// answer itself.
mod ioctl {
    use rustix::ioctl::{Updater, ioctl, opcode};

    #[repr(C)]
    struct GuestRequest {
        msg_version: u8,
        pad: [u8; 7],
        req_data: u64,
        resp_data: u64,
        exitinfo2: u64,
    }

    #[repr(C)]
    struct ExtReportReq {
        user_data: [u8; 64],
        vmpl: u32,
        rsvd: [u8; 28],
        certs_address: u64,
        certs_len: u32,
        pad: u32,
    }

    const SNP_GET_EXT_REPORT: rustix::ioctl::Opcode = opcode::read_write::<GuestRequest>(b'S', 2);

    /// A zero-length certificate buffer must fail with EIO, VMM error INVALID_LEN and the
    /// needed length (one page) written back.
    pub fn negotiation() -> Result<(), String> {
        let dev = super::daemon::open("/dev/sev-guest").map_err(|e| e.to_string())?;
        let mut page = vec![0u8; 4096];
        let mut req = ExtReportReq {
            user_data: [0; 64],
            vmpl: 0,
            rsvd: [0; 28],
            certs_address: page.as_mut_ptr() as u64,
            certs_len: 0,
            pad: 0,
        };
        let mut resp = vec![0u8; 4000];
        let mut io = GuestRequest {
            msg_version: 1,
            pad: [0; 7],
            req_data: core::ptr::from_mut(&mut req) as u64,
            resp_data: resp.as_mut_ptr() as u64,
            exitinfo2: 0,
        };
        // SAFETY: the opcode matches struct snp_guest_request_ioctl (32 bytes, _IOWR), and the
        // pointers in it (request, 4000-byte response, one-page certificate buffer) stay valid
        // and exclusively borrowed for the duration of the call.
        let r = unsafe { ioctl(&dev, Updater::<SNP_GET_EXT_REPORT, _>::new(&mut io)) };
        match r {
            Err(e)
                if e == rustix::io::Errno::IO
                    && io.exitinfo2 == 1 << 32
                    && req.certs_len == 4096 =>
            {
                Ok(())
            }
            other => Err(format!(
                "{other:?}, exitinfo2 {:#x}, certs_len {}",
                io.exitinfo2, req.certs_len
            )),
        }
    }
}
