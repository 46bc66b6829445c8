//! `serve-check` (as argv\[0\], the next stage of a serve boot): the guest-side client of
//! sealgate's server mode. It starts `/sbin/sealgate serve` (the image's config file names
//! the KBS and the TEE), waits for the CDH socket as the kata agent does (polling for the
//! path), then:
//! - unseals the sealed value in `/etc/sealed-env` over ttrpc
//!   (`api.SealedSecretService/UnsealSecret`, framing and messages from `sealgate-core`);
//! - fetches `/cdh/resource/default/app/key2` over REST on 127.0.0.1:8006;
//! - when the boot attaches disks, mounts them through `api.SecureMountService/SecureMount`
//!   as the kata agent asks for secure storage: an empty ext4 volume (a file written and
//!   read back), a LUKS2 volume with a wrong and then the right `kbs:///` key (a known
//!   file's SHA-256), and a device target; with `dataIntegrity=true` (kata's default) an
//!   ext4 volume on dm-integrity (a file written and read back) and a device target whose
//!   raw disk is then altered under it (the read through the mapping must fail);
//!
//! and prints `SERVE-CHECK` lines (sizes and SHA-256 of what it got, never the values),
//! then powers off.

use prost::Message;
use sealgate_core::proto::cdh;
use sealgate_core::ttrpc::{self, Frame, FrameReader};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CDH_SOCKET: &str = "/run/confidential-containers/cdh.sock";

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One ttrpc call on the CDH socket: the reply payload, or (code, message).
fn cdh_call(service: &str, method: &str, payload: Vec<u8>) -> Result<Vec<u8>, (i32, String)> {
    let io = |e: std::io::Error| (-1, e.to_string());
    let mut s = UnixStream::connect(CDH_SOCKET).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(io)?;
    let req = ttrpc::Request {
        service: service.into(),
        method: method.into(),
        payload,
        timeout_nano: 50_000_000_000,
        metadata: Vec::new(),
    };
    s.write_all(&ttrpc::frame(1, ttrpc::TYPE_REQUEST, &req.encode_to_vec()))
        .map_err(io)?;
    let mut reader = FrameReader::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Err((-1, "connection closed".into()));
        }
        reader.feed(&buf[..n]);
        if let Some(Frame::Whole(_, payload)) = reader.next_frame() {
            let r = ttrpc::Response::decode(&payload[..]).map_err(|e| (-1, e.to_string()))?;
            let status = r.status.unwrap_or_default();
            if status.code != 0 {
                return Err((status.code, status.message));
            }
            return Ok(r.payload);
        }
    }
}

fn unseal(sealed: &str) -> Result<Vec<u8>, String> {
    let payload = cdh::UnsealSecretInput {
        secret: sealed.as_bytes().to_vec(),
    }
    .encode_to_vec();
    let reply = cdh_call(cdh::SEALED_SECRET_SERVICE, "UnsealSecret", payload)
        .map_err(|(code, message)| format!("status {code}: {message}"))?;
    cdh::UnsealSecretOutput::decode(&reply[..])
        .map(|o| o.plaintext)
        .map_err(|e| e.to_string())
}

/// `MAJ:MIN` of a block device node, as kata sends `deviceId`.
fn device_id(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).map(|m| m.rdev()).unwrap_or(0);
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major}:{minor}")
}

/// kata's `cdh_secure_mount` options (`dataIntegrity=false`) plus `extra`.
fn secure_mount(
    device: &str,
    mount_point: &str,
    extra: &[(&str, &str)],
) -> Result<(), (i32, String)> {
    let mut m = cdh::SecureMountRequest {
        volume_type: "block-device".into(),
        mount_point: mount_point.into(),
        ..Default::default()
    };
    let id = device_id(device);
    for (k, v) in [
        ("deviceId", id.as_str()),
        ("sourceType", "empty"),
        ("targetType", "fileSystem"),
        ("filesystemType", "ext4"),
        ("mkfsOpts", "-E lazy_journal_init"),
        ("encryptionType", "luks2"),
        ("dataIntegrity", "false"),
    ]
    .iter()
    .chain(extra)
    {
        m.options.insert(k.to_string(), v.to_string());
    }
    cdh_call(cdh::SECURE_MOUNT_SERVICE, "SecureMount", m.encode_to_vec()).map(|_| ())
}

/// The SecureMount checks, on the disks the boot attaches: `/dev/vda` blank (an empty
/// ext4 volume), `/dev/vdb` a cryptsetup LUKS2 disk (first a wrong key, then the right
/// one), `/dev/vdc` blank (a device target).
fn secure_mount_checks() -> bool {
    let mut ok = true;
    // sourceType=empty, targetType=fileSystem: write a file on the new ext4, read it back.
    let t = Instant::now();
    let mp = "/run/kata-containers/image";
    match secure_mount("/dev/vda", mp, &[("mapperName", "ephemeral")]) {
        Ok(()) => {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
            let path = format!("{mp}/written.bin");
            let back = std::fs::write(&path, &data)
                .and_then(|()| std::fs::File::open(&path)?.sync_all())
                .and_then(|()| std::fs::read(&path));
            let fstype = mount_fstype(mp).unwrap_or_default();
            match back {
                Ok(back) => println!(
                    "SERVE-CHECK securemount-empty fstype={fstype} size={} sha256={} us={}",
                    back.len(),
                    sha256_hex(&back),
                    t.elapsed().as_micros()
                ),
                Err(e) => {
                    println!("SERVE-CHECK FAILED: securemount-empty: file: {e}");
                    ok = false;
                }
            }
        }
        Err((code, message)) => {
            println!("SERVE-CHECK FAILED: securemount-empty: status {code}: {message}");
            ok = false;
        }
    }
    // sourceType=encrypted with a wrong key: an error status, nothing left mapped.
    let enc = [
        ("sourceType", "encrypted"),
        ("key", "kbs:///default/volume/wrong"),
        ("mapperName", "encrypted"),
    ];
    match secure_mount("/dev/vdb", "/mnt/encrypted", &enc) {
        Ok(()) => {
            println!("SERVE-CHECK FAILED: securemount-wrong-key: it mounted");
            ok = false;
        }
        Err((code, message)) => println!(
            "SERVE-CHECK securemount-wrong-key code={code} mapped={} message={message}",
            std::path::Path::new("/dev/mapper/encrypted").exists()
        ),
    }
    // The right key, a KBS resource: read the file cryptsetup's disk holds.
    let t = Instant::now();
    let enc = [
        ("sourceType", "encrypted"),
        ("key", "kbs:///default/volume/pass"),
        ("mapperName", "encrypted"),
    ];
    match secure_mount("/dev/vdb", "/mnt/encrypted", &enc)
        .map_err(|(code, message)| format!("status {code}: {message}"))
        .and_then(|()| std::fs::read("/mnt/encrypted/hello.txt").map_err(|e| e.to_string()))
    {
        Ok(data) => println!(
            "SERVE-CHECK securemount-encrypted size={} sha256={} us={}",
            data.len(),
            sha256_hex(&data),
            t.elapsed().as_micros()
        ),
        Err(e) => {
            println!("SERVE-CHECK FAILED: securemount-encrypted: {e}");
            ok = false;
        }
    }
    // mkfs fails (a block size mke2fs refuses): an error status, the mapping removed.
    match secure_mount(
        "/dev/vdc",
        "/run/kata-containers/bad-mkfs",
        &[("mkfsOpts", "-b 3"), ("mapperName", "badmkfs")],
    ) {
        Ok(()) => {
            println!("SERVE-CHECK FAILED: securemount-bad-mkfs: it mounted");
            ok = false;
        }
        Err((code, message)) => println!(
            "SERVE-CHECK securemount-bad-mkfs code={code} mapped={} message={message}",
            std::path::Path::new("/dev/mapper/badmkfs").exists()
        ),
    }
    // targetType=device: the mount point becomes a link to the mapped device.
    match secure_mount(
        "/dev/vdc",
        "/run/kata-containers/dev-target",
        &[("targetType", "device"), ("mapperName", "raw")],
    ) {
        Ok(()) => {
            use std::os::unix::fs::FileTypeExt;
            let link = std::fs::read_link("/run/kata-containers/dev-target").unwrap_or_default();
            let block = std::fs::metadata("/run/kata-containers/dev-target")
                .is_ok_and(|m| m.file_type().is_block_device());
            println!(
                "SERVE-CHECK securemount-device link={} block={block}",
                link.display()
            );
        }
        Err((code, message)) => {
            println!("SERVE-CHECK FAILED: securemount-device: status {code}: {message}");
            ok = false;
        }
    }
    ok
}

/// Drops the page cache of `f` (so that the next read reaches the device).
fn drop_cache(f: &std::fs::File) {
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
}

/// Reads `len` bytes from `f` in 64 KiB pieces: the data, or the offset of the first
/// failing piece and its errno.
fn read_through(f: &std::fs::File, len: usize) -> Result<Vec<u8>, (usize, i32)> {
    use std::os::unix::fs::FileExt;
    let mut out = vec![0u8; len];
    for at in (0..len).step_by(64 << 10) {
        let end = (at + (64 << 10)).min(len);
        f.read_exact_at(&mut out[at..end], at as u64)
            .map_err(|e| (at, e.raw_os_error().unwrap_or(-1)))?;
    }
    Ok(out)
}

/// `dataIntegrity=true` (kata's default): `/dev/vdd` blank (an ext4 volume on
/// dm-integrity: a file written and read back), `/dev/vde` blank (a device target: an
/// unwritten block fails its read; 8 MiB written read back; then bytes of the raw disk
/// flipped under the mapping, and the read through it must fail).
fn integrity_checks() -> bool {
    use std::os::unix::fs::FileExt;
    let mut ok = true;
    // mkfs fails on an integrity volume: both mappings are removed.
    match secure_mount(
        "/dev/vdd",
        "/run/kata-containers/integrity-bad",
        &[
            ("dataIntegrity", "true"),
            ("mkfsOpts", "-b 3"),
            ("mapperName", "integbad"),
        ],
    ) {
        Ok(()) => {
            println!("SERVE-CHECK FAILED: securemount-integrity-bad-mkfs: it mounted");
            ok = false;
        }
        Err((code, message)) => println!(
            "SERVE-CHECK securemount-integrity-bad-mkfs code={code} mapped={} lower={} \
             message={message}",
            std::path::Path::new("/dev/mapper/integbad").exists(),
            std::path::Path::new("/dev/mapper/integbad_dif").exists()
        ),
    }
    let t = Instant::now();
    let mp = "/run/kata-containers/integrity";
    match secure_mount(
        "/dev/vdd",
        mp,
        &[("dataIntegrity", "true"), ("mapperName", "integ")],
    ) {
        Ok(()) => {
            let setup_us = t.elapsed().as_micros();
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let path = format!("{mp}/written.bin");
            let back = std::fs::write(&path, &data)
                .and_then(|()| std::fs::File::open(&path)?.sync_all())
                .and_then(|()| std::fs::read(&path));
            match back {
                Ok(back) => println!(
                    "SERVE-CHECK securemount-integrity fstype={} size={} sha256={} lower={} \
                     setup_us={setup_us} us={}",
                    mount_fstype(mp).unwrap_or_default(),
                    back.len(),
                    sha256_hex(&back),
                    std::path::Path::new("/dev/mapper/integ_dif").exists(),
                    t.elapsed().as_micros()
                ),
                Err(e) => {
                    println!("SERVE-CHECK FAILED: securemount-integrity: file: {e}");
                    ok = false;
                }
            }
        }
        Err((code, message)) => {
            println!("SERVE-CHECK FAILED: securemount-integrity: status {code}: {message}");
            ok = false;
        }
    }
    let t = Instant::now();
    if let Err((code, message)) = secure_mount(
        "/dev/vde",
        "/run/kata-containers/integrity-dev",
        &[
            ("dataIntegrity", "true"),
            ("targetType", "device"),
            ("mapperName", "integdev"),
        ],
    ) {
        println!("SERVE-CHECK FAILED: securemount-integrity-dev: status {code}: {message}");
        return false;
    }
    let setup_us = t.elapsed().as_micros();
    let len = 8 << 20;
    let run = || -> Result<String, String> {
        let mapped = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/mapper/integdev")
            .map_err(|e| format!("open: {e}"))?;
        // Never written: its tag does not verify.
        drop_cache(&mapped);
        let unwritten = match read_through(&mapped, 4096) {
            Ok(_) => "read".to_string(),
            Err((_, errno)) => format!("errno{errno}"),
        };
        let data: Vec<u8> = (0..len as u32).map(|i| (i % 241) as u8 ^ 0x5a).collect();
        mapped
            .write_all_at(&data, 0)
            .and_then(|()| mapped.sync_all())
            .map_err(|e| format!("write: {e}"))?;
        drop_cache(&mapped);
        let back = read_through(&mapped, len)
            .map_err(|(at, errno)| format!("read back: errno {errno} at {at}"))?;
        // Flip 16 bytes of the raw disk at 4 MiB: inside the data written above.
        let raw = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/vde")
            .map_err(|e| format!("raw open: {e}"))?;
        let mut b = [0u8; 16];
        raw.read_exact_at(&mut b, 4 << 20)
            .map_err(|e| format!("raw read: {e}"))?;
        for x in &mut b {
            *x ^= 0xff;
        }
        raw.write_all_at(&b, 4 << 20)
            .and_then(|()| raw.sync_all())
            .map_err(|e| format!("raw write: {e}"))?;
        drop_cache(&mapped);
        let tampered = match read_through(&mapped, len) {
            Ok(d) if d == back => "same".to_string(),
            Ok(_) => "different".to_string(),
            Err((at, errno)) => format!("errno{errno}:at{at}"),
        };
        Ok(format!(
            "unwritten={unwritten} size={} sha256={} tampered={tampered}",
            back.len(),
            sha256_hex(&back)
        ))
    };
    match run() {
        Ok(line) => println!("SERVE-CHECK securemount-integrity-dev {line} setup_us={setup_us}"),
        Err(e) => {
            println!("SERVE-CHECK FAILED: securemount-integrity-dev: {e}");
            ok = false;
        }
    }
    ok
}

/// The filesystem type mounted at `path` (from /proc/self/mounts).
fn mount_fstype(path: &str) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, target, fstype) = (f.next()?, f.next()?, f.next()?);
        (target == path).then(|| fstype.to_string())
    })
}

fn rest_get(path: &str) -> Result<(String, Vec<u8>), String> {
    let mut s = std::net::TcpStream::connect("127.0.0.1:8006").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap_or("").to_string();
    Ok((status, out[split + 4..].to_vec()))
}

/// Runs the check; returns whether everything worked.
pub fn run() -> bool {
    let started = Instant::now();
    let mut child = match Command::new("/sbin/sealgate")
        .args(["serve", "--features", "all"])
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SERVE-CHECK FAILED: cannot start sealgate serve: {e}");
            return false;
        }
    };
    while !std::path::Path::new(CDH_SOCKET).exists() {
        if let Ok(Some(st)) = child.try_wait() {
            eprintln!("SERVE-CHECK FAILED: sealgate serve exited ({st})");
            return false;
        }
        if started.elapsed() > Duration::from_secs(60) {
            eprintln!("SERVE-CHECK FAILED: {CDH_SOCKET} never appeared");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "SERVE-CHECK socket after {} ms",
        started.elapsed().as_millis()
    );
    let mut ok = true;
    let sealed = std::fs::read_to_string("/etc/sealed-env").unwrap_or_default();
    let t = Instant::now();
    match unseal(sealed.trim()) {
        Ok(p) => println!(
            "SERVE-CHECK unseal size={} sha256={} us={}",
            p.len(),
            sha256_hex(&p),
            t.elapsed().as_micros()
        ),
        Err(e) => {
            println!("SERVE-CHECK FAILED: UnsealSecret: {e}");
            ok = false;
        }
    }
    let t = Instant::now();
    match rest_get("/cdh/resource/default/app/key2") {
        Ok((status, body)) => println!(
            "SERVE-CHECK rest status={status} size={} sha256={} us={}",
            body.len(),
            sha256_hex(&body),
            t.elapsed().as_micros()
        ),
        Err(e) => {
            println!("SERVE-CHECK FAILED: REST: {e}");
            ok = false;
        }
    }
    if std::path::Path::new("/dev/vda").exists() {
        ok &= secure_mount_checks();
        if std::path::Path::new("/dev/vde").exists() {
            ok &= integrity_checks();
        }
    }
    let _ = child.kill();
    println!("SERVE-CHECK done {}", if ok { "ok" } else { "failed" });
    let _ = std::io::stdout().flush();
    ok
}
