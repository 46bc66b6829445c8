//! Small-file reading without libc or std: bounded, and safe against a host that puts a
//! FIFO, a socket or a device where a file is expected.
//!
//! Every file sealgate reads for its configuration (config file, kernel command line,
//! `/etc/hosts`, `resolv.conf`, verification keys, init-data) goes through
//! [`read_file`] (or [`read_beneath`]): what the path names is looked at first (stat, or
//! an `O_PATH` descriptor), so a FIFO, a socket or a device (other than `/dev/null`, and
//! the block device of the init-data disk where the caller allows it) is refused without
//! ever being opened; then it is opened `O_NONBLOCK | O_NOCTTY | O_CLOEXEC` (so even a
//! FIFO swapped in meanwhile cannot block), checked again with fstat to be the same
//! regular file, and read with a bounded number of read(2) calls.

use alloc::vec::Vec;
use core::fmt;
use rustix::fd::OwnedFd;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// What a caller accepts besides a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Regular files only (and procfs/sysfs files, which are regular).
    Regular,
    /// Regular files or block devices (kata's init-data disk).
    RegularOrBlock,
}

/// Why a file could not be read. Never carries content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// open, fstat or read failed.
    Os(Errno),
    /// The path names a FIFO, socket, directory or (unless allowed) device.
    NotAFile(&'static str),
    /// The path named another file when it was opened than when it was looked at.
    Replaced,
    /// Longer than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A name resolved outside the directory it must stay in (symlinks included).
    Escapes,
    /// A directory has more entries than the caller allows.
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
}

impl ReadError {
    /// Whether the file simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Os(Errno::NOENT))
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Os(e) => write!(f, "{}", crate::os(e)),
            ReadError::NotAFile(what) => write!(f, "not a regular file but a {what}; refused"),
            ReadError::Replaced => f.write_str("replaced while being opened; refused"),
            ReadError::TooLarge { limit } => write!(f, "larger than {limit} bytes"),
            ReadError::Escapes => f.write_str("resolves outside its directory"),
            ReadError::TooManyEntries { limit } => write!(f, "more than {limit} entries"),
        }
    }
}

impl core::error::Error for ReadError {}

/// Retries `f` while it fails with `EINTR`.
pub fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// Whether `path` exists (any type; symlinks followed).
pub fn exists(path: &str) -> bool {
    rustix::fs::access(path, rustix::fs::Access::EXISTS).is_ok()
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        _ => "special file",
    }
}

/// Whether `st` is something `kind` accepts: a regular file, the null device (empty), or
/// where `kind` allows it a block device.
fn check_type(st: &rustix::fs::Stat, kind: Kind) -> Result<(), ReadError> {
    let t = FileType::from_raw_mode(st.st_mode);
    match (t, kind) {
        (FileType::RegularFile, _) | (FileType::BlockDevice, Kind::RegularOrBlock) => Ok(()),
        // `/dev/null` (1:3, whatever its name) reads as an empty file: `--config /dev/null`
        // is the usual way to say "no config file". Other devices are refused: opening
        // some has side effects (a watchdog starts, a tape rewinds).
        (FileType::CharacterDevice, _) if is_null_device(st.st_rdev) => Ok(()),
        _ => Err(ReadError::NotAFile(type_name(t))),
    }
}

/// Opens `path` for reading and checks what it is (see [`check_type`]). It is looked at
/// before it is opened, so what `kind` does not accept is refused without being opened
/// (no FIFO blocks, no device open has side effects); the descriptor is then checked to be
/// the very file that was looked at.
pub fn open_checked(path: &str, kind: Kind) -> Result<OwnedFd, ReadError> {
    let before = retry(|| rustix::fs::stat(path)).map_err(ReadError::Os)?;
    check_type(&before, kind)?;
    let fd = retry(|| {
        rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
    .map_err(ReadError::Os)?;
    let st = rustix::fs::fstat(&fd).map_err(ReadError::Os)?;
    check_type(&st, kind)?;
    same_file(&before, &st)?;
    Ok(fd)
}

fn same_file(a: &rustix::fs::Stat, b: &rustix::fs::Stat) -> Result<(), ReadError> {
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
        Ok(())
    } else {
        Err(ReadError::Replaced)
    }
}

fn is_null_device(rdev: u64) -> bool {
    rustix::fs::major(rdev) == 1 && rustix::fs::minor(rdev) == 3
}

/// Reads at most `limit` bytes from `fd`; more is an error. The loop ends: every read
/// either makes progress, reaches end of file, or fails (EAGAIN from a file that was
/// opened non-blocking counts as a failure, never a spin).
pub fn read_to_end_bounded(fd: &OwnedFd, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = retry(|| rustix::io::read(fd, &mut chunk)).map_err(ReadError::Os)?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(ReadError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Reads at most `limit` bytes from the start of `fd` and stops there (a prefix of a
/// block device, for instance). Fewer bytes come back only at end of file.
pub fn read_prefix(fd: &OwnedFd, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = alloc::vec![0u8; limit];
    let mut done = 0;
    while done < limit {
        let n = retry(|| rustix::io::read(fd, &mut out[done..])).map_err(ReadError::Os)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    out.truncate(done);
    Ok(out)
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_file(path: &str, limit: usize) -> Result<Vec<u8>, ReadError> {
    let fd = open_checked(path, Kind::Regular)?;
    read_to_end_bounded(&fd, limit)
}

/// Reads regular file `name` that must resolve inside directory `dir`: the kernel's
/// `RESOLVE_BENEATH` (openat2, Linux 5.6+) refuses `..`, absolute names and symlinks that
/// leave `dir` (relative ones that stay inside, like Kubernetes' `..data` links, resolve).
pub fn read_beneath(dir: &str, name: &str, limit: usize) -> Result<Vec<u8>, ReadError> {
    use rustix::fs::ResolveFlags;
    let base = retry(|| {
        rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
    .map_err(ReadError::Os)?;
    let open = |flags: OFlags| {
        retry(|| {
            rustix::fs::openat2(
                &base,
                name,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            )
        })
        .map_err(|e| match e {
            Errno::XDEV => ReadError::Escapes,
            e => ReadError::Os(e),
        })
    };
    let regular = |st: &rustix::fs::Stat| match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(()),
        t => Err(ReadError::NotAFile(type_name(t))),
    };
    // An O_PATH descriptor first: it opens nothing (no FIFO wait, no device open).
    let looked = open(OFlags::PATH)?;
    let before = rustix::fs::fstat(&looked).map_err(ReadError::Os)?;
    regular(&before)?;
    let fd = open(OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)?;
    let st = rustix::fs::fstat(&fd).map_err(ReadError::Os)?;
    regular(&st)?;
    same_file(&before, &st)?;
    read_to_end_bounded(&fd, limit)
}

/// The names in directory `path` (without `.` and `..`; names that are not UTF-8 are
/// skipped), sorted, at most `limit` of them.
pub fn list_dir(path: &str, limit: usize) -> Result<Vec<alloc::string::String>, ReadError> {
    let fd = retry(|| {
        rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })
    .map_err(ReadError::Os)?;
    let mut dir = rustix::fs::Dir::read_from(&fd).map_err(ReadError::Os)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(ReadError::Os)?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        if names.len() == limit {
            return Err(ReadError::TooManyEntries { limit });
        }
        names.push(alloc::string::String::from(name));
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn tmp(name: &str) -> std::string::String {
        let dir =
            std::env::temp_dir().join(std::format!("sealgate-fs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_str().unwrap().into()
    }

    #[test]
    fn reads_a_file_within_its_limit_and_refuses_a_larger_one() {
        let d = tmp("limit");
        let f = std::format!("{d}/f");
        std::fs::write(&f, [7u8; 5000]).unwrap();
        assert_eq!(read_file(&f, 5000).unwrap().len(), 5000);
        assert_eq!(
            read_file(&f, 4999),
            Err(ReadError::TooLarge { limit: 4999 })
        );
        assert!(
            read_file(&std::format!("{d}/missing"), 10)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = tmp("fifo");
        let f = std::format!("{d}/fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            f.as_str(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(read_file(&f, 10), Err(ReadError::NotAFile("FIFO")));
        assert_eq!(read_file(&d, 10), Err(ReadError::NotAFile("directory")));
        assert_eq!(
            read_file("/dev/zero", 10),
            Err(ReadError::NotAFile("character device"))
        );
        // The null device reads as an empty file (`--config /dev/null`).
        assert_eq!(read_file("/dev/null", 10), Ok(Vec::new()));
    }

    /// Opens of `path` seen by inotify since `watch` was set up.
    struct Opens(OwnedFd);

    impl Opens {
        fn watch(path: &str) -> Opens {
            use rustix::fs::inotify;
            let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)
                .unwrap();
            inotify::add_watch(&fd, path, inotify::WatchFlags::OPEN).unwrap();
            Opens(fd)
        }

        fn any(&self) -> bool {
            let mut buf = [0u8; 1024];
            match rustix::io::read(&self.0, &mut buf) {
                Ok(n) => n > 0,
                Err(Errno::AGAIN) => false,
                Err(e) => panic!("inotify read: {e}"),
            }
        }
    }

    #[test]
    fn what_is_refused_is_never_opened() {
        let d = tmp("never-opened");
        let fifo = std::format!("{d}/fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.as_str(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let opens = Opens::watch(&fifo);
        assert_eq!(read_file(&fifo, 10), Err(ReadError::NotAFile("FIFO")));
        assert_eq!(
            read_beneath(&d, "fifo", 10),
            Err(ReadError::NotAFile("FIFO"))
        );
        assert!(!opens.any(), "the FIFO was opened");
        // A device (nobody else opens /dev/full): refused from its metadata alone.
        let opens = Opens::watch("/dev/full");
        assert_eq!(
            read_file("/dev/full", 10),
            Err(ReadError::NotAFile("character device"))
        );
        assert!(!opens.any(), "/dev/full was opened");
        // The watch itself works: a regular file's open is seen.
        let f = std::format!("{d}/f");
        std::fs::write(&f, b"x").unwrap();
        let opens = Opens::watch(&f);
        assert_eq!(read_file(&f, 10).unwrap(), b"x");
        assert!(opens.any());
    }

    #[test]
    fn reads_beneath_a_directory_but_not_outside_it() {
        let d = tmp("beneath");
        std::fs::create_dir_all(std::format!("{d}/keys/..2024")).unwrap();
        std::fs::write(std::format!("{d}/keys/..2024/k"), b"key").unwrap();
        std::os::unix::fs::symlink("..2024/k", std::format!("{d}/keys/k")).unwrap();
        std::fs::write(std::format!("{d}/outside"), b"no").unwrap();
        std::os::unix::fs::symlink("../outside", std::format!("{d}/keys/out")).unwrap();
        let keys = std::format!("{d}/keys");
        assert_eq!(read_beneath(&keys, "k", 10).unwrap(), b"key");
        assert_eq!(read_beneath(&keys, "out", 10), Err(ReadError::Escapes));
        assert_eq!(
            read_beneath(&keys, "../outside", 10),
            Err(ReadError::Escapes)
        );
        assert_eq!(list_dir(&keys, 10).unwrap(), ["..2024", "k", "out"]);
        assert_eq!(
            list_dir(&keys, 2),
            Err(ReadError::TooManyEntries { limit: 2 })
        );
    }

    #[test]
    fn a_prefix_stops_at_the_limit() {
        let d = tmp("prefix");
        let f = std::format!("{d}/f");
        std::fs::write(&f, [1u8; 100]).unwrap();
        let fd = open_checked(&f, Kind::RegularOrBlock).unwrap();
        assert_eq!(read_prefix(&fd, 10).unwrap().len(), 10);
    }
}
