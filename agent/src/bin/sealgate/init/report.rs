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
//! * `timing`: `CLOCK_BOOTTIME` in microseconds, i.e. time since the kernel started:
//!   `start_us` when sealgate started, `secrets_us` when the secrets were committed to the
//!   tmpfs; `boot_to_secret_us` = `secrets_us`; `sealgate_us` = `secrets_us - start_us`,
//!   sealgate's own share.
//!
//! A failure is one line, `SEALGATE-FAILED <reason>` (free text to the end of the line,
//! never secret material); with `on_failure=continue` it is followed by
//! `SEALGATE-CONTINUING <what starts> WITHOUT SECRETS (on_failure=continue)`.

use rustix::fs::{Mode, OFlags};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Prefix of every report line.
pub const PREFIX: &str = "SEALGATE-REPORT";
/// Prefix of the failure line.
pub const FAILED: &str = "SEALGATE-FAILED";
/// Prefix of the line announcing that the next stage starts despite a failure.
pub const CONTINUING: &str = "SEALGATE-CONTINUING";
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

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

fn hash_file(path: &Path) -> std::io::Result<String> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut file = std::fs::File::from(fd);
    let mut h = Sha256::new();
    let mut buf = Zeroizing::new(vec![0u8; 8192]);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Every entry below `dir` (not following symlinks), sorted by path.
pub fn collect(dir: &Path) -> std::io::Result<Vec<Entry>> {
    fn walk(dir: &Path, out: &mut Vec<Entry>, depth: u32) -> std::io::Result<()> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for path in names {
            let md = std::fs::symlink_metadata(&path)?;
            let ft = md.file_type();
            let shown = path.to_string_lossy().into_owned();
            if ft.is_dir() {
                if depth < 32 {
                    walk(&path, out, depth + 1)?;
                }
            } else if ft.is_file() {
                out.push(Entry::Secret {
                    size: md.len(),
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    sha256: hash_file(&path)?,
                    path: shown,
                });
            } else {
                let kind = if ft.is_symlink() {
                    "symlink"
                } else if ft.is_fifo() {
                    "fifo"
                } else if ft.is_socket() {
                    "socket"
                } else if ft.is_char_device() {
                    "char"
                } else {
                    "block"
                };
                out.push(Entry::Other { path: shown, kind });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out, 0)?;
    Ok(out)
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
pub fn sealed_dir_line(dir: &Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let magic = rustix::fs::statfs(&canonical).map(|s| s.f_type as u64).ok();
    let mount = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| find_mount(&t, &canonical.to_string_lossy()));
    line(
        "sealed-dir",
        &[
            ("path", dir.to_string_lossy().into_owned()),
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
pub fn build(sealed_dir: &Path, ok: bool, start_us: u64, secrets_us: Option<u64>) -> Vec<String> {
    let status = if ok { "ok" } else { "failed" }.to_string();
    let mut lines = vec![line(
        "begin",
        &[
            ("version", "1".into()),
            ("pid", std::process::id().to_string()),
            ("status", status.clone()),
        ],
    )];
    let entries = match collect(sealed_dir) {
        Ok(e) => e,
        Err(e) => {
            lines.push(failed_line(&format!(
                "cannot list {}: {e}",
                sealed_dir.display()
            )));
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

/// Microseconds of `CLOCK_BOOTTIME`.
pub fn boottime_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    (t.tv_sec as u64) * 1_000_000 + (t.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
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
    fn report_of_a_directory() {
        let dir = std::env::temp_dir().join(format!("sealgate-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("b/key"), b"abc").unwrap();
        std::fs::write(dir.join("a"), b"").unwrap();
        std::os::unix::fs::symlink("b/key", dir.join("c")).unwrap();
        let lines = build(&dir, true, 1, Some(3));
        let d = dir.display();
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
