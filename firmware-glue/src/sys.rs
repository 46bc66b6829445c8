//! Thin file helpers over `rustix` (feature `device`): bounded reads of regular files,
//! single-write stores, device opens. No std and no libc.
//!
//! Every open is `O_NONBLOCK | O_NOCTTY | O_CLOEXEC` and checked with `fstat`, so a FIFO put
//! where a sysfs/configfs attribute or a device node is expected can neither block the agent
//! nor be read as if it were one: attributes must be regular files, devices character devices.

use alloc::string::String;
use alloc::vec::Vec;

use rustix::fd::OwnedFd;
use rustix::fs::{Access, FileType, Mode, OFlags};
use rustix::io::Errno;

/// The errno the helpers report for a path that is not the kind of file expected (a FIFO,
/// socket, directory or device where an attribute file belongs, or a non-device where a
/// device node belongs). `EMEDIUMTYPE` ("wrong medium type") is otherwise never returned by
/// configfs, sysfs or the guest drivers, so it cannot be mistaken for a kernel answer.
pub(crate) const WRONG_FILE_TYPE: Errno = Errno::MEDIUMTYPE;

/// `<dir>/<name>` (Linux paths are plain strings here).
pub(crate) fn join(dir: &str, name: &str) -> String {
    let mut out = String::with_capacity(dir.len() + 1 + name.len());
    out.push_str(dir.trim_end_matches('/'));
    out.push('/');
    out.push_str(name);
    out
}

/// Whether `path` exists (follows symlinks).
pub(crate) fn exists(path: &str) -> bool {
    rustix::fs::access(path, Access::EXISTS).is_ok()
}

fn open_checked(path: &str, flags: OFlags, want: FileType) -> Result<OwnedFd, Errno> {
    let fd = retry(|| {
        rustix::fs::open(
            path,
            flags | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    })?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != want {
        return Err(WRONG_FILE_TYPE);
    }
    Ok(fd)
}

/// Opens the character device `path` read-only (guest driver ioctls work on such a
/// descriptor). Anything but a character device fails with [`WRONG_FILE_TYPE`].
pub(crate) fn open_device(path: &str) -> Result<OwnedFd, Errno> {
    open_checked(path, OFlags::RDONLY, FileType::CharacterDevice)
}

/// Reads the whole regular file `path`, or fails with `EFBIG` once it exceeds `limit` bytes.
pub(crate) fn read_bounded(path: &str, limit: usize) -> Result<Vec<u8>, Errno> {
    let fd = open_checked(path, OFlags::RDONLY, FileType::RegularFile)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = retry(|| rustix::io::read(&fd, &mut chunk))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(Errno::FBIG);
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// One `write(2)` of all of `data` to the regular file `path` (configfs binary attributes
/// must be written in one go); a short write is reported as `EIO`.
pub(crate) fn write_once(path: &str, data: &[u8]) -> Result<(), Errno> {
    let fd = open_checked(path, OFlags::WRONLY, FileType::RegularFile)?;
    let n = retry(|| rustix::io::write(&fd, data))?;
    if n != data.len() {
        return Err(Errno::IO);
    }
    Ok(())
}

/// Retries `f` while it fails with `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    fn tmp(name: &str) -> String {
        let dir =
            std::env::temp_dir().join(std::format!("fwglue-sys-{}-{name}", std::process::id()));
        dir.to_str().unwrap().to_string()
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("/sys", "devices"), "/sys/devices");
        assert_eq!(join("/sys/", "devices"), "/sys/devices");
        assert_eq!(join("/", "dev"), "/dev");
    }

    #[test]
    fn fifos_and_directories_are_refused_without_blocking() {
        let dir = tmp("fifo");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = join(&dir, "fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.as_str(),
            FileType::Fifo,
            Mode::RUSR | Mode::WUSR,
            0,
        )
        .unwrap();
        // Neither call blocks (no writer/reader on the other end) and both refuse.
        assert_eq!(read_bounded(&fifo, 10), Err(WRONG_FILE_TYPE));
        assert_eq!(write_once(&fifo, b"x").err(), Some(Errno::NXIO));
        assert_eq!(read_bounded(&dir, 10), Err(WRONG_FILE_TYPE));
        assert_eq!(open_device(&dir).err(), Some(WRONG_FILE_TYPE));
        let file = join(&dir, "file");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(open_device(&file).err(), Some(WRONG_FILE_TYPE));
        assert_eq!(read_bounded(&file, 3).unwrap(), b"abc");
        assert_eq!(read_bounded(&file, 2), Err(Errno::FBIG));
        assert!(open_device("/dev/null").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
