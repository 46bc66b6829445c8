//! Thin file helpers over `rustix` (feature `std`): bounded reads, single-write stores, device
//! opens. No `std::fs`, so a later no-libc build only changes start-up code.

use std::path::Path;
use std::vec::Vec;

use rustix::fd::OwnedFd;
use rustix::fs::{Access, Mode, OFlags};
use rustix::io::Errno;

/// Whether `path` exists (follows symlinks).
pub(crate) fn exists(path: &Path) -> bool {
    rustix::fs::access(path, Access::EXISTS).is_ok()
}

/// Opens `path` read-only, close-on-exec.
pub(crate) fn open_ro(path: &Path) -> Result<OwnedFd, Errno> {
    retry(|| rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()))
}

/// Reads the whole file, or fails with `EFBIG` once it exceeds `limit` bytes.
pub(crate) fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, Errno> {
    let fd = open_ro(path)?;
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

/// One `write(2)` of all of `data` (configfs binary attributes must be written in one go);
/// a short write is reported as `EIO`.
pub(crate) fn write_once(path: &Path, data: &[u8]) -> Result<(), Errno> {
    let fd = retry(|| rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()))?;
    let n = retry(|| rustix::io::write(&fd, data))?;
    if n != data.len() {
        return Err(Errno::IO);
    }
    Ok(())
}

fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}
