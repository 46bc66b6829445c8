//! The console report of `sealgate.mode=report` and the failure line.
//!
//! # Format (version 1)
//!
//! Every line starts with `SEALGATE-REPORT ` followed by a record type and `key=value`
//! fields separated by single spaces. Values never contain spaces: bytes outside
//! printable ASCII, and `%`, are percent-encoded (`%20`, `%25`, ...). Records, in order:
//!
//! ```text
//! SEALGATE-REPORT begin version=1 pid=1 status=ok|failed
//! SEALGATE-REPORT secret path=/sealed/app/key size=12 mode=0400 owner=0:0 sha256=<64 hex>
//! SEALGATE-REPORT other path=/sealed/x type=symlink|fifo|socket|char|block
//! SEALGATE-REPORT sealed-dir path=/sealed tmpfs=yes|no magic=0x01021994 fstype=tmpfs mount_options=rw,nosuid,nodev,noexec,relatime super_options=rw,size=16384k,nr_inodes=1024,mode=700
//! SEALGATE-REPORT volume name=data type=luks2 device=/dev/vdb mapper=/dev/mapper/data mount=/mnt/data fstype=ext4 open_us=81234 table=0%20204800%20crypt%20aes-xts-plain64%20:64:logon:cryptsetup:<uuid>-d0%200%20254:16%2032768
//! SEALGATE-REPORT volume-file name=data path=/mnt/data/hello.txt size=12 mode=0644 owner=0:0 sha256=<64 hex>
//! SEALGATE-REPORT timing start_us=812345 secrets_us=1234567 boot_to_secret_us=1234567 sealgate_us=422222
//! SEALGATE-REPORT end secrets=1 status=ok|failed
//! ```
//!
//! * `secret`: one per regular file below the sealed directory, sorted by path; `mode`
//!   is the octal permission bits, `owner` the numeric uid:gid, `sha256` the digest of
//!   the content (the content itself is never printed). Symlinks are not followed.
//! * `sealed-dir`: `tmpfs` from `fstatfs` (`TMPFS_MAGIC`), the options from the topmost
//!   entry for the directory in `/proc/self/mountinfo` (`-` when it is not a mount point
//!   or `/proc` is missing).
//! * `volume`: one per encrypted volume opened (`[[volume]]`): the mapped device, where it
//!   is mounted (`-` if not), the time to open it (KDF and device-mapper, mount
//!   excluded) and its device-mapper table as the kernel shows it (`dmsetup table`: the
//!   key appears as a keyring reference, never itself). `volume-file`: the regular files
//!   among the first 64 entries (path order) of a mounted volume, as `secret` lines are
//!   for the sealed directory.
//! * `timing`: `CLOCK_BOOTTIME` in microseconds, i.e. time since the kernel started:
//!   `start_us` when sealgate started, `secrets_us` when the secrets were committed to the
//!   tmpfs; `boot_to_secret_us` = `secrets_us`; `sealgate_us` = `secrets_us - start_us`,
//!   sealgate's own share.
//!
//! A failure is one line, `SEALGATE-FAILED <reason>` (free text to the end of the line,
//! never secret material); with `on_failure=continue` it is followed by
//! `SEALGATE-CONTINUING <what starts> WITHOUT SECRETS (on_failure=continue)`.

use alloc::ffi::CString;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt::Write as _;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sealgate_linux::fs::retry;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Microseconds of `CLOCK_BOOTTIME`.
pub use sealgate_linux::time::boottime_us;

/// Prefix of every report line.
pub const PREFIX: &str = "SEALGATE-REPORT";
/// Prefix of the failure line.
pub const FAILED: &str = "SEALGATE-FAILED";
/// Prefix of the line announcing that the next stage starts despite a failure.
pub const CONTINUING: &str = "SEALGATE-CONTINUING";
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// The most of `/proc/self/mountinfo` read (a few hundred bytes per mount).
const MOUNTINFO_LIMIT: usize = 4 << 20;

/// Percent-encodes everything but printable ASCII other than `%` (so values never
/// contain spaces or line breaks).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One report line from a record type and fields.
pub fn line(record: &str, fields: &[(&str, String)]) -> String {
    let mut s = format!("{PREFIX} {record}");
    for (k, v) in fields {
        let _ = write!(s, " {k}={}", escape(v));
    }
    s
}

/// The failure line: `reason` on one line.
pub fn failed_line(reason: &str) -> String {
    let flat: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{FAILED} {}", flat.trim())
}

/// One entry found below the sealed directory.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A regular file.
    Secret {
        /// Absolute path.
        path: String,
        /// Size in bytes.
        size: u64,
        /// Permission bits.
        mode: u32,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
        /// SHA-256 of the content, hex.
        sha256: String,
    },
    /// Anything else but a directory.
    Other {
        /// Absolute path.
        path: String,
        /// `symlink`, `fifo`, ...
        kind: &'static str,
    },
}

impl Entry {
    /// The report line.
    pub fn line(&self) -> String {
        match self {
            Entry::Secret {
                path,
                size,
                mode,
                uid,
                gid,
                sha256,
            } => line(
                "secret",
                &[
                    ("path", path.clone()),
                    ("size", size.to_string()),
                    ("mode", format!("{mode:04o}")),
                    ("owner", format!("{uid}:{gid}")),
                    ("sha256", sha256.clone()),
                ],
            ),
            Entry::Other { path, kind } => line(
                "other",
                &[("path", path.clone()), ("type", (*kind).to_string())],
            ),
        }
    }
}

/// SHA-256 of the regular file `name` in directory `dir`, hex (symlinks not followed).
/// Opened without blocking (a FIFO swapped in after the walk's stat cannot hang the
/// report) and checked to still be a regular file (`EINVAL` otherwise).
fn hash_file(dir: &OwnedFd, name: &CStr) -> Result<String, Errno> {
    let fd = retry(|| {
        rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })?;
    if rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode)
        != rustix::fs::FileType::RegularFile
    {
        return Err(Errno::INVAL);
    }
    let mut h = Sha256::new();
    let mut buf = Zeroizing::new(vec![0u8; 8192]);
    loop {
        let n = retry(|| rustix::io::read(&fd, &mut buf[..]))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Opens directory `path` below `at` (symlinks followed only if `follow`).
fn open_dir<Fd: AsFd>(at: Fd, path: &CStr, follow: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    retry(|| rustix::fs::openat(&at, path, flags, Mode::empty()))
}

/// The names in directory `fd` but `.` and `..`, sorted bytewise.
fn names(fd: &OwnedFd) -> Result<Vec<CString>, Errno> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd)? {
        let name = alloc::borrow::ToOwned::to_owned(entry?.file_name());
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Every entry below `dir` (not following symlinks), sorted by path. Names that are not
/// UTF-8 are shown with U+FFFD in their place (and then percent-encoded); files are
/// opened by their real names, relative to their directory.
pub fn collect(dir: &str) -> Result<Vec<Entry>, Errno> {
    collect_at_most(dir, usize::MAX)
}

/// [`collect`], stopping after `limit` entries (a mounted volume may hold a whole system).
pub fn collect_at_most(dir: &str, limit: usize) -> Result<Vec<Entry>, Errno> {
    fn walk(
        fd: &OwnedFd,
        shown_dir: &str,
        out: &mut Vec<Entry>,
        depth: u32,
        limit: usize,
    ) -> Result<(), Errno> {
        for name in names(fd)? {
            if out.len() >= limit {
                return Ok(());
            }
            let st = rustix::fs::statat(fd, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            let sep = if shown_dir.ends_with('/') { "" } else { "/" };
            let shown = format!("{shown_dir}{sep}{}", name.to_string_lossy());
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    if depth < 32 {
                        let sub = open_dir(fd, &name, false)?;
                        walk(&sub, &shown, out, depth + 1, limit)?;
                    }
                }
                FileType::RegularFile => out.push(Entry::Secret {
                    size: st.st_size as u64,
                    mode: st.st_mode & 0o7777,
                    uid: st.st_uid,
                    gid: st.st_gid,
                    sha256: hash_file(fd, &name)?,
                    path: shown,
                }),
                ft => {
                    let kind = match ft {
                        FileType::Symlink => "symlink",
                        FileType::Fifo => "fifo",
                        FileType::Socket => "socket",
                        FileType::CharacterDevice => "char",
                        _ => "block",
                    };
                    out.push(Entry::Other { path: shown, kind });
                }
            }
        }
        Ok(())
    }
    let path = CString::new(dir).map_err(|_| Errno::INVAL)?;
    let fd = open_dir(rustix::fs::CWD, &path, true)?;
    let mut out = Vec::new();
    walk(&fd, dir, &mut out, 0, limit)?;
    Ok(out)
}

/// `dir` with symlinks resolved, as the kernel names it (`/proc/self/fd`); `None` if it
/// cannot be opened, `/proc` is missing or the name is not UTF-8.
fn canonicalize(dir: &str) -> Option<String> {
    let fd = retry(|| rustix::fs::open(dir, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())).ok()?;
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::readlink(link.as_str(), Vec::new())
        .ok()?
        .into_string()
        .ok()
}

/// A mount as `/proc/self/mountinfo` describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount point.
    pub mount_point: String,
    /// Per-mount options.
    pub mount_options: String,
    /// Filesystem type.
    pub fstype: String,
    /// Superblock options.
    pub super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The topmost (last listed) mount at `mount_point` in mountinfo `text`.
pub fn find_mount(text: &str, mount_point: &str) -> Option<MountInfo> {
    text.lines()
        .rev()
        .filter_map(|l| {
            // id parent major:minor root mount_point options [optional...] - fstype source super
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                mount_point: unescape_mountinfo(f.get(4)?),
                mount_options: (*f.get(5)?).to_string(),
                fstype: (*r.first()?).to_string(),
                super_options: (*r.get(2)?).to_string(),
            })
        })
        .find(|m| m.mount_point == mount_point)
}

/// The `sealed-dir` line for `dir`.
pub fn sealed_dir_line(dir: &str) -> String {
    let canonical = canonicalize(dir).unwrap_or_else(|| dir.to_string());
    let magic = rustix::fs::statfs(canonical.as_str())
        .map(|s| s.f_type as u64)
        .ok();
    let mount = sealgate_linux::fs::read_file("/proc/self/mountinfo", MOUNTINFO_LIMIT)
        .ok()
        .and_then(|t| find_mount(core::str::from_utf8(&t).ok()?, &canonical));
    line(
        "sealed-dir",
        &[
            ("path", dir.to_string()),
            (
                "tmpfs",
                if magic == Some(TMPFS_MAGIC) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
            (
                "magic",
                magic.map_or_else(|| "-".into(), |m| format!("{m:#010x}")),
            ),
            (
                "fstype",
                mount.as_ref().map_or("-".into(), |m| m.fstype.clone()),
            ),
            (
                "mount_options",
                mount
                    .as_ref()
                    .map_or("-".into(), |m| m.mount_options.clone()),
            ),
            (
                "super_options",
                mount
                    .as_ref()
                    .map_or("-".into(), |m| m.super_options.clone()),
            ),
        ],
    )
}

/// The `timing` line from `CLOCK_BOOTTIME` readings in microseconds.
pub fn timing_line(start_us: u64, secrets_us: Option<u64>) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    line(
        "timing",
        &[
            ("start_us", start_us.to_string()),
            ("secrets_us", opt(secrets_us)),
            ("boot_to_secret_us", opt(secrets_us)),
            (
                "sealgate_us",
                opt(secrets_us.map(|s| s.saturating_sub(start_us))),
            ),
        ],
    )
}

/// The whole report, one string per line.
pub fn build(sealed_dir: &str, ok: bool, start_us: u64, secrets_us: Option<u64>) -> Vec<String> {
    let status = if ok { "ok" } else { "failed" }.to_string();
    let mut lines = vec![line(
        "begin",
        &[
            ("version", "1".into()),
            ("pid", sealgate_linux::process::id().to_string()),
            ("status", status.clone()),
        ],
    )];
    let entries = match collect(sealed_dir) {
        Ok(e) => e,
        // Nothing was configured to go there (a run with volumes only).
        Err(Errno::NOENT) => Vec::new(),
        Err(e) => {
            lines.push(failed_line(&format!("cannot list {sealed_dir}: {e}")));
            Vec::new()
        }
    };
    let secrets = entries
        .iter()
        .filter(|e| matches!(e, Entry::Secret { .. }))
        .count();
    lines.extend(entries.iter().map(Entry::line));
    lines.push(sealed_dir_line(sealed_dir));
    lines.push(timing_line(start_us, secrets_us));
    lines.push(line(
        "end",
        &[("secrets", secrets.to_string()), ("status", status)],
    ));
    lines
}

/// The most entries of a mounted volume the report walks (and regular files it hashes).
pub const VOLUME_FILES_LIMIT: usize = 64;

/// The `volume` and `volume-file` lines of the volumes the run opened (the first
/// [`VOLUME_FILES_LIMIT`] entries of each, in path order).
pub fn volume_lines(volumes: &[crate::volume::Open]) -> Vec<String> {
    let mut lines = Vec::new();
    for v in volumes {
        lines.push(line(
            "volume",
            &[
                ("name", v.name.clone()),
                ("type", v.kind.to_string()),
                ("device", v.device.clone()),
                ("mapper", v.node.clone()),
                ("mount", v.mount.clone().unwrap_or_else(|| "-".into())),
                ("fstype", v.fstype.clone()),
                ("open_us", v.open_us.to_string()),
                ("table", v.table.clone()),
            ],
        ));
        let Some(mount) = &v.mount else { continue };
        match collect_at_most(mount, VOLUME_FILES_LIMIT) {
            Ok(entries) => {
                for e in entries {
                    if let Entry::Secret {
                        path,
                        size,
                        mode,
                        uid,
                        gid,
                        sha256,
                    } = e
                    {
                        lines.push(line(
                            "volume-file",
                            &[
                                ("name", v.name.clone()),
                                ("path", path),
                                ("size", size.to_string()),
                                ("mode", format!("{mode:04o}")),
                                ("owner", format!("{uid}:{gid}")),
                                ("sha256", sha256),
                            ],
                        ));
                    }
                }
            }
            Err(e) => lines.push(failed_line(&format!("cannot list {mount}: {e}"))),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn lines_have_a_fixed_parsable_shape() {
        let e = Entry::Secret {
            path: "/sealed/my app/key%1".into(),
            size: 12,
            mode: 0o440,
            uid: 0,
            gid: 1000,
            sha256: "ab".repeat(32),
        };
        assert_eq!(
            e.line(),
            format!(
                "SEALGATE-REPORT secret path=/sealed/my%20app/key%251 size=12 mode=0440 owner=0:1000 sha256={}",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            Entry::Other {
                path: "/sealed/l".into(),
                kind: "symlink"
            }
            .line(),
            "SEALGATE-REPORT other path=/sealed/l type=symlink"
        );
        assert_eq!(
            timing_line(812_345, Some(1_234_567)),
            "SEALGATE-REPORT timing start_us=812345 secrets_us=1234567 boot_to_secret_us=1234567 sealgate_us=422222"
        );
        assert_eq!(
            timing_line(5, None),
            "SEALGATE-REPORT timing start_us=5 secrets_us=- boot_to_secret_us=- sealgate_us=-"
        );
        assert_eq!(escape("a\nb\u{e9}"), "a%0Ab%C3%A9");
        assert_eq!(
            failed_line("KBS unreachable:\nconnection refused "),
            "SEALGATE-FAILED KBS unreachable: connection refused"
        );
    }

    #[test]
    fn a_walk_stops_at_its_limit() {
        let dir = std::env::temp_dir().join(format!("sealgate-walk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d")).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join(format!("d/f{i}")), b"x").unwrap();
        }
        let d = dir.to_str().unwrap();
        assert_eq!(collect(d).unwrap().len(), 5);
        assert_eq!(collect_at_most(d, 3).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn report_of_a_directory() {
        let dir = std::env::temp_dir().join(format!("sealgate-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("b/key"), b"abc").unwrap();
        std::fs::write(dir.join("a"), b"").unwrap();
        std::os::unix::fs::symlink("b/key", dir.join("c")).unwrap();
        let d = dir.to_str().unwrap();
        let lines = build(d, true, 1, Some(3));
        assert_eq!(
            lines[0],
            format!(
                "SEALGATE-REPORT begin version=1 pid={} status=ok",
                std::process::id()
            )
        );
        assert!(
            lines[1].starts_with(&format!("SEALGATE-REPORT secret path={d}/a size=0 mode=")),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(
                "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
        );
        assert!(lines[2].contains(&format!("path={d}/b/key size=3 ")));
        assert!(
            lines[2].ends_with(
                "sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )
        );
        assert_eq!(
            lines[3],
            format!("SEALGATE-REPORT other path={d}/c type=symlink")
        );
        assert!(lines[4].starts_with("SEALGATE-REPORT sealed-dir "));
        assert!(lines[5].starts_with("SEALGATE-REPORT timing start_us=1 secrets_us=3 "));
        assert_eq!(lines[6], "SEALGATE-REPORT end secrets=2 status=ok");
        assert_eq!(lines.len(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mountinfo_topmost_entry() {
        let text = "\
22 1 0:21 / /sealed rw,relatime shared:1 - ext4 /dev/vda rw
36 22 0:33 / /sealed rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=16384k,nr_inodes=1024,mode=700
37 22 0:34 / /my\\040dir rw - tmpfs none rw
";
        let m = find_mount(text, "/sealed").unwrap();
        assert_eq!(m.fstype, "tmpfs");
        assert_eq!(m.mount_options, "rw,nosuid,nodev,noexec,relatime");
        assert_eq!(m.super_options, "rw,size=16384k,nr_inodes=1024,mode=700");
        assert_eq!(find_mount(text, "/my dir").unwrap().fstype, "tmpfs");
        assert_eq!(find_mount(text, "/other"), None);
        assert_eq!(find_mount("garbage\n1 2 3\n", "/sealed"), None);
    }
}
