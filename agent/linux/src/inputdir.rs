//! Reads an operator-supplied directory of *sealed* secrets (for example a mounted
//! Kubernetes Secret volume) without ever leaving it.
//!
//! [`read_sealed_inputs`] returns `(path, content)` for every regular file below the
//! directory whose content starts with `sealed.`, sorted by path (component-wise):
//!
//! * Entries whose name starts with `..` are skipped: that is Kubernetes' atomic-writer
//!   machinery (`..data`, `..2024_01_01_00_00_00.123`), reached through the user-visible
//!   symlinks instead.
//! * Real subdirectories are descended into (up to the [`RelPath`] depth limit).
//! * A symlink is followed only if it resolves to a regular file *inside* the input
//!   directory. Resolution is done here, not by the kernel: each component is opened
//!   with `O_NOFOLLOW` relative to an already-open directory fd, symlinks met on the way
//!   are read with `readlinkat` and spliced in, `..` pops a stack of fds held by the
//!   walker (it never opens `..`), an absolute target or a `..` above the input
//!   directory is an escape, and at most 40 links are followed. A symlink that escapes,
//!   dangles or loops is skipped with a warning; a symlink to a *directory* is not
//!   descended into (warning). So Kubernetes `items` with a `/` in their `path` (which
//!   appear as a top-level symlink to a directory) are not read.
//! * Files are opened `O_NOFOLLOW|O_NONBLOCK` and checked with `fstat` to be regular
//!   (a FIFO, socket or device is skipped without blocking the walk, even one that
//!   replaced a file since it was looked at); the first 7 bytes are read and compared
//!   with `sealed.`; only then is the whole file read, at most
//!   [`InputLimits::max_file_size`] bytes ([`InputError::FileTooLarge`] names the file).
//!   Files that do not match are skipped (debug log). Every read makes progress, reaches
//!   end of file or fails: `EINTR` is retried, `EAGAIN` is an error, never a spin.
//! * At most [`InputLimits::max_entries`] directory entries are looked at in total and
//!   at most [`InputLimits::max_total_size`] bytes returned.
//!
//! Only the input directory path itself may be a symlink (it is configuration).
//! Contents never reach logs or errors; paths and link targets do. Buffers that held
//! file contents are zeroized before they are freed (also on an error part-way); the
//! contents returned are the caller's to wipe.

use alloc::collections::VecDeque;
use alloc::ffi::CString;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sealgate_core::escape::{escape, escape_bytes};
use sealgate_core::outpath::{MAX_COMPONENTS, RelPath};

/// The most characters of a path that a log line shows.
const SHOWN_PATH_MAX: usize = 512;
use zeroize::{Zeroize, Zeroizing};

use crate::sealdir::{join_rel, open_dir_nofollow, read_dir_names};

/// The content prefix of a sealed secret.
pub const SEALED_PREFIX: &[u8] = b"sealed.";

/// Symlinks followed while resolving one entry (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Bounds on what [`read_sealed_inputs`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputLimits {
    /// Largest sealed file accepted, in bytes. Default 64 KiB.
    pub max_file_size: u64,
    /// Most directory entries examined (all of them, matching or not). Default 1024.
    pub max_entries: usize,
    /// Most bytes returned in total. Default 4 MiB.
    pub max_total_size: u64,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_file_size: 64 << 10,
            max_entries: 1024,
            max_total_size: 4 << 20,
        }
    }
}

/// Why the input directory could not be read. Never carries file contents.
#[derive(Debug)]
pub enum InputError {
    /// A system call failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: String,
        /// The error.
        errno: Errno,
    },
    /// A sealed file is larger than [`InputLimits::max_file_size`].
    FileTooLarge {
        /// The file.
        path: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// More than [`InputLimits::max_entries`] directory entries.
    TooManyEntries {
        /// The input directory.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// More than [`InputLimits::max_total_size`] bytes of sealed files.
    TooMuchData {
        /// The input directory.
        path: String,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Io { op, path, errno } => {
                write!(f, "{op} {path}: {errno}", errno = crate::os(errno))
            }
            InputError::FileTooLarge { path, limit } => {
                write!(f, "sealed input {path} is larger than {limit} bytes")
            }
            InputError::TooManyEntries { path, limit } => {
                write!(f, "input directory {path} has more than {limit} entries")
            }
            InputError::TooMuchData { path, limit } => write!(
                f,
                "sealed inputs in {path} add up to more than {limit} bytes"
            ),
        }
    }
}

impl core::error::Error for InputError {}

/// Reads every sealed secret below `dir`. See the module documentation.
pub fn read_sealed_inputs(
    dir: &str,
    limits: &InputLimits,
) -> Result<Vec<(RelPath, Vec<u8>)>, InputError> {
    let root = fs::openat(
        fs::CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| io_err("open", dir.to_string(), errno))?;
    let mut walker = Walker {
        root_path: dir.to_string(),
        root,
        limits: limits.clone(),
        entries: 0,
        total: 0,
        out: Vec::new(),
    };
    let top = rustix::io::fcntl_dupfd_cloexec(&walker.root, 0)
        .map_err(|errno| io_err("dup", dir.to_string(), errno))?;
    walker.walk(top.as_fd(), None)?;
    let mut out = core::mem::take(&mut walker.out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

struct Walker {
    root_path: String,
    root: OwnedFd,
    limits: InputLimits,
    entries: usize,
    total: u64,
    out: Vec<(RelPath, Vec<u8>)>,
}

/// Where a symlink led.
enum Resolved {
    File(OwnedFd),
    Directory,
    Special,
    Missing,
    Escapes,
    TooManyLinks,
}

impl Walker {
    /// A path for a log line or an error: file names come from the host, so they are
    /// escaped and bounded ([`sealgate_core::escape`]).
    fn show(&self, rel: &str) -> String {
        let path = if rel.is_empty() {
            self.root_path.clone()
        } else {
            format!("{}/{}", self.root_path, rel)
        };
        escape(&path, SHOWN_PATH_MAX)
    }

    fn walk(&mut self, dirfd: BorrowedFd<'_>, rel: Option<&RelPath>) -> Result<(), InputError> {
        let rel_str = rel.map_or("", RelPath::as_str);
        let mut names = read_dir_names(dirfd)
            .map_err(|errno| io_err("read directory", self.show(rel_str), errno))?;
        self.entries += names.len();
        if self.entries > self.limits.max_entries {
            return Err(InputError::TooManyEntries {
                path: self.show(""),
                limit: self.limits.max_entries,
            });
        }
        names.sort();
        for name in names {
            let bytes = name.as_bytes();
            let lossy = String::from_utf8_lossy(bytes);
            if bytes.starts_with(b"..") {
                crate::debug!("skipping {}", self.show(&join_rel(rel_str, &lossy)));
                continue;
            }
            let child = match RelPath::parse_bytes(bytes).and_then(|n| match rel {
                Some(r) => r.join(&n),
                None => Ok(n),
            }) {
                Ok(c) => c,
                Err(e) => {
                    crate::warn!("skipping input under {}: {e}", self.show(rel_str));
                    continue;
                }
            };
            let shown = self.show(child.as_str());
            let st = match fs::statat(dirfd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(errno) => return Err(io_err("stat", shown, errno)),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    if child.depth() >= MAX_COMPONENTS {
                        crate::warn!("not descending into {shown}: too deep");
                        continue;
                    }
                    let sub = match open_dir_nofollow(dirfd, name.as_c_str()) {
                        Ok(fd) => fd,
                        // Replaced since the stat: not a real directory any more.
                        Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => continue,
                        Err(errno) => return Err(io_err("open", shown, errno)),
                    };
                    self.walk(sub.as_fd(), Some(&child))?;
                }
                FileType::RegularFile => match open_file_nofollow(dirfd, name.as_c_str()) {
                    Ok(fd) => self.consider(fd, child)?,
                    Err(Errno::LOOP | Errno::NOENT) => continue,
                    Err(errno) => return Err(io_err("open", shown, errno)),
                },
                FileType::Symlink => {
                    let target = match fs::readlinkat(dirfd, name.as_c_str(), Vec::new()) {
                        Ok(t) => t,
                        Err(Errno::NOENT | Errno::INVAL) => continue,
                        Err(errno) => return Err(io_err("readlink", shown, errno)),
                    };
                    let shown_target = escape_bytes(target.as_bytes(), SHOWN_PATH_MAX);
                    let start: Vec<&str> = child.parent_components().collect();
                    match self.resolve(&start, target.as_bytes()) {
                        Ok(Resolved::File(fd)) => self.consider(fd, child)?,
                        Ok(Resolved::Directory) => crate::warn!(
                            "not following {shown} -> \"{shown_target}\": symlinked directories are not descended into"
                        ),
                        Ok(Resolved::Escapes) => crate::warn!(
                            "ignoring {shown} -> \"{shown_target}\": it points outside {}",
                            self.show("")
                        ),
                        Ok(Resolved::TooManyLinks) => crate::warn!(
                            "ignoring {shown} -> \"{shown_target}\": too many levels of symlinks"
                        ),
                        Ok(Resolved::Missing) => {
                            crate::debug!("skipping dangling symlink {shown} -> \"{shown_target}\"")
                        }
                        Ok(Resolved::Special) => crate::debug!(
                            "skipping {shown} -> \"{shown_target}\": not a regular file"
                        ),
                        Err(errno) => return Err(io_err("resolve symlink", shown, errno)),
                    }
                }
                _ => crate::debug!("skipping {shown}: not a regular file"),
            }
        }
        Ok(())
    }

    /// Resolves the symlink target `target` found in the directory `start` (components
    /// from the root), never leaving the input directory. See the module documentation.
    fn resolve(&self, start: &[&str], target: &[u8]) -> rustix::io::Result<Resolved> {
        if target.starts_with(b"/") {
            return Ok(Resolved::Escapes);
        }
        // Directories from the root down to the current one (the root itself excluded).
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut pending: VecDeque<Vec<u8>> = start.iter().map(|c| c.as_bytes().to_vec()).collect();
        pending.extend(target.split(|&b| b == b'/').map(<[u8]>::to_vec));
        let mut links = 1;
        while let Some(comp) = pending.pop_front() {
            if comp.is_empty() || comp == b"." {
                continue;
            }
            if comp == b".." {
                if stack.pop().is_none() {
                    return Ok(Resolved::Escapes);
                }
                continue;
            }
            let last = pending.iter().all(|c| c.is_empty() || c == b".");
            let cur = stack.last().map_or(self.root.as_fd(), OwnedFd::as_fd);
            let Ok(name) = CString::new(comp) else {
                return Ok(Resolved::Missing);
            };
            let st = match fs::statat(cur, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT | Errno::NOTDIR) => return Ok(Resolved::Missing),
                Err(e) => return Err(e),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Ok(Resolved::TooManyLinks);
                    }
                    let t = match fs::readlinkat(cur, name.as_c_str(), Vec::new()) {
                        Ok(t) => t,
                        Err(Errno::NOENT | Errno::INVAL) => return Ok(Resolved::Missing),
                        Err(e) => return Err(e),
                    };
                    if t.as_bytes().starts_with(b"/") {
                        return Ok(Resolved::Escapes);
                    }
                    for c in t.as_bytes().rsplit(|&b| b == b'/') {
                        pending.push_front(c.to_vec());
                    }
                }
                FileType::Directory if last => return Ok(Resolved::Directory),
                FileType::Directory => match open_dir_nofollow(cur, name.as_c_str()) {
                    Ok(fd) => stack.push(fd),
                    Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => {
                        return Ok(Resolved::Missing);
                    }
                    Err(e) => return Err(e),
                },
                FileType::RegularFile if last => {
                    return match open_file_nofollow(cur, name.as_c_str()) {
                        Ok(fd) => Ok(Resolved::File(fd)),
                        Err(Errno::LOOP | Errno::NOENT) => Ok(Resolved::Missing),
                        Err(e) => Err(e),
                    };
                }
                FileType::RegularFile => return Ok(Resolved::Missing),
                _ => return Ok(Resolved::Special),
            }
        }
        // Ran out of components on a directory ("." or "sub/..").
        Ok(Resolved::Directory)
    }

    /// Keeps the file `fd` (at `rel`) if it is a regular file that starts with `sealed.`.
    ///
    /// `fd` was opened `O_NONBLOCK|O_NOFOLLOW`, so a FIFO, socket or device that replaced
    /// a file since it was looked at never blocked the open; it is refused here, before
    /// any read. Every read either makes progress, reaches end of file or fails (`EAGAIN`
    /// included), so the number of reads is bounded by the size limit.
    fn consider(&mut self, fd: OwnedFd, rel: RelPath) -> Result<(), InputError> {
        let shown = self.show(rel.as_str());
        let st = fs::fstat(&fd).map_err(|errno| io_err("stat", shown.clone(), errno))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            crate::debug!("skipping {shown}: not a regular file");
            return Ok(());
        }
        let mut head = Zeroizing::new([0u8; SEALED_PREFIX.len()]);
        let n = read_full(fd.as_fd(), &mut head[..])
            .map_err(|errno| io_err("read", shown.clone(), errno))?;
        if &head[..n] != SEALED_PREFIX {
            crate::debug!("skipping {shown}: not a sealed secret");
            return Ok(());
        }
        let limit = self.limits.max_file_size;
        let too_large = || InputError::FileTooLarge {
            path: shown.clone(),
            limit,
        };
        if st.st_size as u64 > limit {
            return Err(too_large());
        }
        // Room for one byte past the size, so that end of file is seen without growing.
        let capacity = usize::try_from(st.st_size as u64 + 1).unwrap_or(usize::MAX);
        let mut content = Zeroizing::new(Vec::with_capacity(capacity));
        extend_zeroizing(&mut content, &head[..]);
        // Read up to one byte past the limit, in case the file grew since the fstat.
        let mut buf = Zeroizing::new([0u8; 8192]);
        loop {
            let room = (limit + 1).saturating_sub(content.len() as u64);
            if room == 0 {
                return Err(too_large());
            }
            let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let n = crate::fs::retry(|| rustix::io::read(&fd, &mut buf[..want]))
                .map_err(|errno| io_err("read", shown.clone(), errno))?;
            if n == 0 {
                break;
            }
            extend_zeroizing(&mut content, &buf[..n]);
        }
        if content.len() as u64 > limit {
            return Err(too_large());
        }
        self.total += content.len() as u64;
        if self.total > self.limits.max_total_size {
            return Err(InputError::TooMuchData {
                path: self.show(""),
                limit: self.limits.max_total_size,
            });
        }
        crate::debug!("found sealed input {shown} ({} bytes)", content.len());
        self.out.push((rel, core::mem::take(&mut *content)));
        Ok(())
    }
}

impl Drop for Walker {
    /// On an error part-way, the contents already read are wiped before they are freed.
    fn drop(&mut self) {
        for (_, content) in &mut self.out {
            content.zeroize();
        }
    }
}

/// Appends `data` to `v` without leaving a copy in freed memory: when `v` must grow, its
/// content moves to a larger allocation and the old one is zeroized before it is freed.
fn extend_zeroizing(v: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    if v.capacity() - v.len() < data.len() {
        let mut bigger = Vec::with_capacity((v.len() + data.len()).max(v.capacity() * 2));
        bigger.extend_from_slice(v);
        let old = core::mem::replace(&mut **v, bigger);
        drop(Zeroizing::new(old));
    }
    v.extend_from_slice(data);
}

/// Opens a regular file for reading without following a symlink or blocking on a FIFO.
fn open_file_nofollow(dirfd: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    fs::openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// Reads until `buf` is full or end of file; returns the number of bytes read. `EINTR`
/// is retried; `EAGAIN` is an error like any other (never a spin).
fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8]) -> rustix::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match crate::fs::retry(|| rustix::io::read(fd, &mut buf[done..]))? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

fn io_err(op: &'static str, path: String, errno: Errno) -> InputError {
    InputError::Io { op, path, errno }
}

#[cfg(test)]
mod tests;
