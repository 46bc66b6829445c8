//! The sealed directory: where unsealed secrets are written, all-or-nothing, on a tmpfs.
//!
//! # Preparing the directory ([`SealDir::open`])
//!
//! * The directory itself is opened with `O_DIRECTORY|O_NOFOLLOW`: if it is a symlink
//!   the open is refused. (Its *parent* path is resolved normally: it is configuration.)
//! * If the process runs as root (effective uid 0, which includes root of a user
//!   namespace), [`SealOptions::mount_tmpfs`] is set and nothing is mounted on the
//!   directory yet, the directory is created if missing (mode 0700) and a fresh tmpfs is
//!   mounted on it with `nosuid,nodev,noexec`, `mode=<dir_mode>`, `size=<size_limit>` and
//!   `nr_inodes=<inode_limit>`. The new mount API (`fsopen`/`fsmount`/`move_mount`) is
//!   used, attaching the mount to the directory *file descriptor* already opened with
//!   `O_NOFOLLOW`, so no path is resolved twice; on kernels without it (`ENOSYS`, before
//!   5.2) `mount(2)` on the path is the fallback. Either way the directory is re-opened
//!   afterwards and must now be a mount point. Mounting over a non-empty directory logs a
//!   warning (its contents are hidden, not removed); so does an existing mount that is
//!   not `nosuid,nodev,noexec`.
//! * "Mounted" is decided with `statx(STATX_ATTR_MOUNT_ROOT)` where the kernel reports it
//!   (5.8+), otherwise by comparing `st_dev` with the parent directory's (this misses a
//!   bind mount from the same filesystem; the type check below still applies).
//! * Then `fstatfs` on the directory fd must report tmpfs (`0x01021994`) or ramfs
//!   (`0x858458f6`). Anything else is refused with [`SealError::NotTmpfs`] unless
//!   [`SealOptions::allow_non_tmpfs`] is set, in which case a loud warning is logged:
//!   secrets written there may reach persistent storage.
//! * A world-writable sealed directory is refused in every case.
//! * An exclusive, non-blocking `flock` is taken on the directory for the lifetime of the
//!   [`SealDir`], so two agents never interleave commits (or clean up each other's
//!   temporaries): the second one gets [`SealError::Busy`].
//! * Leftovers of a crashed earlier run — files named `.sealgate-tmp-*` or
//!   `.sealgate-bak-*` anywhere below the directory (real subdirectories only, symlinks
//!   are never followed) — are deleted. Output paths may therefore not contain a
//!   component starting with `.sealgate-` ([`SealError::ReservedName`]).
//!
//! # Committing secrets ([`SealDir::commit`])
//!
//! The caller has every secret in memory. For each target, its parent directories are
//! walked from the sealed directory fd one component at a time with
//! `openat(O_DIRECTORY|O_NOFOLLOW)`, missing ones created with `mkdirat` (then
//! `fchown`/`fchmod`ed to the configured owner and [`SealOptions::dir_mode`]); a
//! component that is a symlink ([`SealError::Symlink`]) or not a directory
//! ([`SealError::NotADirectory`]) is refused. The kernel never follows a symlink in this
//! walk, so a target can not escape the sealed directory. (`openat2` with
//! `RESOLVE_NO_SYMLINKS` would be equivalent; the walk needs nothing newer than
//! `openat`.)
//!
//! 1. **Check**: duplicate targets, a target that is an ancestor directory of another,
//!    and reserved names are refused first. Each parent directory is walked (created if
//!    missing); an existing final name that is a directory, or a symlink resolving to a
//!    directory, is refused ([`SealError::TargetIsDirectory`]). Any other existing
//!    entry — a regular file, a symlink to a file, a dangling symlink — is *replaced*:
//!    the name is replaced, a symlink is never written through.
//! 2. **Write**: one temporary per target, in the target's directory, named
//!    `.sealgate-tmp-<16 hex digits from getrandom>`, created with
//!    `O_CREAT|O_EXCL|O_NOFOLLOW|O_WRONLY|O_CLOEXEC` and mode 0400, written completely
//!    (short writes and `EINTR` are retried), `fchown`ed to [`SealOptions::owner`] if set,
//!    `fchmod`ed to [`SealOptions::file_mode`], `fsync`ed.
//! 3. **Back up**: every target that exists gets a second hard link,
//!    `.sealgate-bak-<hex>` (`linkat`, which links a symlink itself, not its target).
//! 4. **Rename**: each temporary is `renameat`ed onto its target (an atomic replace);
//!    a target that did not exist is renamed with `RENAME_NOREPLACE`, so a name that
//!    appeared in the meantime is not clobbered.
//! 5. **Finish**: the backups are unlinked, then every directory where an entry was
//!    created, renamed or removed is `fsync`ed.
//!
//! # Guarantees
//!
//! * **A failure in steps 1–3** (bad path, symlink, `ENOSPC`, I/O error, ...) returns that
//!   error after unlinking every temporary and backup created and removing (if empty)
//!   every directory this commit created: every target is exactly as before — nothing
//!   partial, nothing lost.
//! * **A failure in step 4** (rare: the kernel refused a rename) rolls back the renames
//!   already done, in reverse order: a replaced target is restored by renaming its backup
//!   over it (atomic), a new target is unlinked. If the whole rollback succeeds the
//!   original error is returned and, again, every target is as before. If some rollback
//!   step fails too, [`SealError::PartialCommit`] lists exactly the targets that now hold
//!   the *new* content; every other target holds its old content (or still does not
//!   exist).
//! * **Step 5 failures** do not undo the commit (it is already visible): they are logged
//!   as warnings; a leftover backup is removed at the next [`SealDir::open`].
//! * **A crash** at any point leaves each target either old or new (each rename is
//!   atomic) — not all-or-nothing across targets — and leftover temporaries and backups
//!   that the next [`SealDir::open`] removes.
//! * Other processes never see a partially written target: a target name only ever
//!   points at a complete, fsynced file with its final owner and mode.
//! * Secret bytes never reach an error, a log line or a panic message: errors carry
//!   operations, paths and errno values only. The old content of replaced files lives on
//!   only as a backup link until step 5, inside the sealed directory.
//!
//! Only the sealed directory's own tree is ever touched: output paths are [`RelPath`]s
//! (no `..`, no absolute paths) and are resolved without following symlinks.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::ffi::CString;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use sealgate_core::outpath::{MAX_COMPONENTS, RelPath};

/// `f_type` of tmpfs (`TMPFS_MAGIC`).
pub const TMPFS_MAGIC: u32 = 0x0102_1994;
/// `f_type` of ramfs (`RAMFS_MAGIC`).
pub const RAMFS_MAGIC: u32 = 0x8584_58f6;

/// Name prefix of in-flight temporaries (new content).
const TMP_PREFIX: &str = ".sealgate-tmp-";
/// Name prefix of in-flight backups (old content).
const BAK_PREFIX: &str = ".sealgate-bak-";
/// Components starting with this are reserved for the two prefixes above.
const RESERVED_PREFIX: &str = ".sealgate-";

/// The owner given to written files and created directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// How the sealed directory is prepared and how files are written into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealOptions {
    /// Owner of every written file and of every directory sealgate creates (including the
    /// root of a tmpfs it mounts). `None` (default): whoever runs sealgate.
    pub owner: Option<Owner>,
    /// Permission bits of written files. Default `0o400`.
    pub file_mode: u32,
    /// Permission bits of created directories and of a mounted tmpfs root. Default `0o700`.
    pub dir_mode: u32,
    /// Mount a private tmpfs on the directory when running as root and nothing is mounted
    /// there yet. Default `true`.
    pub mount_tmpfs: bool,
    /// tmpfs `size=` in bytes. Default 16 MiB.
    pub size_limit: u64,
    /// tmpfs `nr_inodes=`. Default 1024.
    pub inode_limit: u64,
    /// INSECURE: accept a sealed directory that is neither tmpfs nor ramfs (secrets may
    /// then reach a disk). Only for tests and demos. Default `false`.
    pub allow_non_tmpfs: bool,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            owner: None,
            file_mode: 0o400,
            dir_mode: 0o700,
            mount_tmpfs: true,
            size_limit: 16 << 20,
            inode_limit: 1024,
            allow_non_tmpfs: false,
        }
    }
}

impl SealOptions {
    fn validate(&self) -> Result<(), SealError> {
        let bad = |what: String| Err(SealError::InvalidOption { what });
        if self.file_mode & !0o777 != 0 || self.file_mode & 0o002 != 0 {
            return bad(format!(
                "file mode {:o}: only permission bits, never world-writable",
                self.file_mode
            ));
        }
        if self.dir_mode & !0o777 != 0 || self.dir_mode & 0o002 != 0 {
            return bad(format!(
                "directory mode {:o}: only permission bits, never world-writable",
                self.dir_mode
            ));
        }
        if self.dir_mode & 0o700 != 0o700 {
            return bad(format!(
                "directory mode {:o}: the owner needs rwx",
                self.dir_mode
            ));
        }
        if let Some(o) = self.owner
            && (o.uid == u32::MAX || o.gid == u32::MAX)
        {
            return bad("owner uid/gid 4294967295 (-1)".into());
        }
        if self.size_limit == 0 || self.inode_limit == 0 {
            return bad("tmpfs size and inode limits must be non-zero".into());
        }
        Ok(())
    }
}

/// Why preparing the sealed directory or committing secrets failed. Carries paths,
/// operations and errno values only — never secret content.
#[derive(Debug)]
pub enum SealError {
    /// A system call failed.
    Io {
        /// What was being done (`"open"`, `"write"`, `"rename"`, ...).
        op: &'static str,
        /// The path it was done to.
        path: String,
        /// The error.
        errno: Errno,
    },
    /// A path component (or the sealed directory itself) is a symlink.
    Symlink {
        /// The symlink.
        path: String,
    },
    /// A path component (or the sealed directory itself) exists but is not a directory.
    NotADirectory {
        /// The offending path.
        path: String,
    },
    /// The sealed directory is not on tmpfs/ramfs and `allow_non_tmpfs` is not set.
    NotTmpfs {
        /// The sealed directory.
        path: String,
        /// Its `statfs` `f_type`.
        fs_type: u32,
    },
    /// The sealed directory is writable by everyone.
    WorldWritable {
        /// The sealed directory.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Mounting the tmpfs seemed to work but the directory is still not a mount point.
    MountNotVisible {
        /// The sealed directory.
        path: String,
    },
    /// Another process holds the sealed directory's lock.
    Busy {
        /// The sealed directory.
        path: String,
    },
    /// A [`SealOptions`] value is unusable.
    InvalidOption {
        /// What is wrong.
        what: String,
    },
    /// The same target appears twice in one commit.
    DuplicateTarget {
        /// The target.
        path: RelPath,
    },
    /// One target is an ancestor directory of another in the same commit.
    PrefixConflict {
        /// The target that would have to be a directory.
        dir: RelPath,
        /// The target below it.
        file: RelPath,
    },
    /// A target has a component starting with `.sealgate-` (reserved for temporaries).
    ReservedName {
        /// The target.
        path: RelPath,
    },
    /// A target exists and is a directory, or a symlink to one.
    TargetIsDirectory {
        /// The target.
        path: String,
    },
    /// A rename failed and the rollback failed too: see the module documentation.
    PartialCommit {
        /// The failure that started the rollback.
        cause: Box<SealError>,
        /// Targets that now hold the new content. Every other target is unchanged.
        not_rolled_back: Vec<RelPath>,
    },
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Io { op, path, errno } => {
                write!(f, "{op} {path}: {errno}", errno = crate::os(errno))
            }
            SealError::Symlink { path } => write!(f, "refusing to follow symlink {path}"),
            SealError::NotADirectory { path } => write!(f, "{path} exists and is not a directory"),
            SealError::NotTmpfs { path, fs_type } => write!(
                f,
                "refusing to write secrets to {path}: it is not a tmpfs or ramfs (filesystem type {fs_type:#x}); \
                 set allow_non_tmpfs only if you accept secrets reaching persistent storage"
            ),
            SealError::WorldWritable { path, mode } => {
                write!(
                    f,
                    "refusing sealed directory {path}: world-writable (mode {mode:o})"
                )
            }
            SealError::MountNotVisible { path } => {
                write!(
                    f,
                    "mounted a tmpfs on {path} but it is not a mount point afterwards"
                )
            }
            SealError::Busy { path } => {
                write!(f, "sealed directory {path} is locked by another process")
            }
            SealError::InvalidOption { what } => {
                write!(f, "invalid sealed-directory option: {what}")
            }
            SealError::DuplicateTarget { path } => {
                write!(f, "output path {:?} appears more than once", path.as_str())
            }
            SealError::PrefixConflict { dir, file } => write!(
                f,
                "output path {:?} would have to be both a file and the directory holding {:?}",
                dir.as_str(),
                file.as_str()
            ),
            SealError::ReservedName { path } => write!(
                f,
                "output path {:?}: components starting with {RESERVED_PREFIX:?} are reserved",
                path.as_str()
            ),
            SealError::TargetIsDirectory { path } => write!(
                f,
                "refusing to replace {path}: it is a directory or a symlink to one"
            ),
            SealError::PartialCommit {
                cause,
                not_rolled_back,
            } => {
                write!(
                    f,
                    "commit failed part-way ({cause}) and could not be fully rolled back: \
                     these targets hold the NEW content:"
                )?;
                for p in not_rolled_back {
                    write!(f, " {:?}", p.as_str())?;
                }
                f.write_str("; every other target is unchanged")
            }
        }
    }
}

impl core::error::Error for SealError {}

/// What [`SealDir::commit`] wrote, for the caller to log (no content).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per target, in the order given to `commit`.
    pub files: Vec<FileReport>,
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The target, relative to the sealed directory.
    pub path: RelPath,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Whether an existing entry was replaced.
    pub replaced: bool,
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} bytes, mode {:04o}, owner {}:{}{})",
            self.path,
            self.size,
            self.mode,
            self.uid,
            self.gid,
            if self.replaced { ", replaced" } else { "" }
        )
    }
}

/// An opened, verified, locked sealed directory.
#[derive(Debug)]
pub struct SealDir {
    path: String,
    fd: OwnedFd,
    opts: SealOptions,
    fs_type: u32,
    mounted: bool,
    /// Test hook: make the rename of the n-th target fail with `EIO`.
    #[cfg(test)]
    fail_rename_at: core::cell::Cell<Option<usize>>,
    /// Test hook: make every rollback step fail with `EIO`.
    #[cfg(test)]
    fail_rollback: core::cell::Cell<bool>,
}

impl SealDir {
    /// Prepares (mounting a tmpfs if appropriate), verifies and locks the sealed directory
    /// at `path`, and removes leftovers of crashed runs. See the module documentation.
    pub fn open(path: &str, opts: &SealOptions) -> Result<SealDir, SealError> {
        opts.validate()?;
        let shown = path.to_string();
        let (parent, name) = split_dir_path(path).ok_or_else(|| SealError::InvalidOption {
            what: format!("sealed directory {shown:?} has no final component"),
        })?;
        let parent_fd = fs::openat(
            fs::CWD,
            parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io_err("open", parent.to_string(), errno))?;

        let want_mount = opts.mount_tmpfs && rustix::process::geteuid().is_root();
        let mut fd = match open_dir_nofollow(parent_fd.as_fd(), name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if want_mount => {
                match fs::mkdirat(parent_fd.as_fd(), name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => crate::info!("created {shown}"),
                    Err(Errno::EXIST) => {}
                    Err(errno) => return Err(io_err("mkdir", shown, errno)),
                }
                open_dir_nofollow(parent_fd.as_fd(), name)
                    .map_err(|e| classify_open(e, parent_fd.as_fd(), name, &shown))?
            }
            Err(e) => return Err(classify_open(e, parent_fd.as_fd(), name, &shown)),
        };

        let mut mounted = false;
        if want_mount {
            if is_mount_point(parent_fd.as_fd(), fd.as_fd(), &shown)? {
                crate::debug!("{shown} is already a mount point; not mounting a tmpfs");
            } else {
                if read_dir_names(fd.as_fd()).is_ok_and(|n| !n.is_empty()) {
                    crate::warn!(
                        "{shown} is not empty: its current contents (on the underlying \
                         filesystem) are hidden, not removed, by the tmpfs mounted over it"
                    );
                }
                mount_tmpfs(fd.as_fd(), path, opts)?;
                fd = open_dir_nofollow(parent_fd.as_fd(), name)
                    .map_err(|e| classify_open(e, parent_fd.as_fd(), name, &shown))?;
                if !is_mount_point(parent_fd.as_fd(), fd.as_fd(), &shown)? {
                    return Err(SealError::MountNotVisible { path: shown });
                }
                if let Some(o) = opts.owner {
                    fs::fchown(&fd, Some(uid(o)), Some(gid(o)))
                        .map_err(|errno| io_err("chown", shown.clone(), errno))?;
                }
                mounted = true;
                crate::info!(
                    "mounted tmpfs on {shown} (mode {:o}, size {} bytes, {} inodes, nosuid,nodev,noexec)",
                    opts.dir_mode,
                    opts.size_limit,
                    opts.inode_limit
                );
            }
        }

        let statfs = fs::fstatfs(&fd).map_err(|errno| io_err("statfs", shown.clone(), errno))?;
        // `f_type` is a C long (or u32 on a few targets); the magics are 32-bit values.
        #[allow(clippy::unnecessary_cast)]
        let fs_type = statfs.f_type as u32;
        if fs_type != TMPFS_MAGIC && fs_type != RAMFS_MAGIC {
            if !opts.allow_non_tmpfs {
                return Err(SealError::NotTmpfs {
                    path: shown,
                    fs_type,
                });
            }
            crate::warn!(
                "INSECURE: {shown} is not a tmpfs or ramfs (filesystem type {fs_type:#x}); \
                 secrets written there may reach persistent storage (allow_non_tmpfs is set)"
            );
        }
        if !mounted && let Ok(vfs) = fs::fstatvfs(&fd) {
            use rustix::fs::StatVfsMountFlags as F;
            if !vfs.f_flag.contains(F::NOSUID | F::NODEV | F::NOEXEC) {
                crate::warn!("{shown} is not mounted nosuid,nodev,noexec");
            }
        }
        let st = fs::fstat(&fd).map_err(|errno| io_err("stat", shown.clone(), errno))?;
        if st.st_mode & 0o002 != 0 {
            return Err(SealError::WorldWritable {
                path: shown,
                mode: st.st_mode & 0o7777,
            });
        }
        match fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => return Err(SealError::Busy { path: shown }),
            Err(errno) => return Err(io_err("lock", shown, errno)),
        }

        let sd = SealDir {
            path: path.to_string(),
            fd,
            opts: opts.clone(),
            fs_type,
            mounted,
            #[cfg(test)]
            fail_rename_at: core::cell::Cell::new(None),
            #[cfg(test)]
            fail_rollback: core::cell::Cell::new(false),
        };
        sd.clean_dir(sd.fd.as_fd(), "", 0)?;
        Ok(sd)
    }

    /// The sealed directory's path, as given to [`SealDir::open`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether [`SealDir::open`] mounted the tmpfs (rather than finding one mounted).
    pub fn mounted_by_us(&self) -> bool {
        self.mounted
    }

    /// The `statfs` filesystem type of the sealed directory.
    pub fn fs_type(&self) -> u32 {
        self.fs_type
    }

    /// Writes every `(target, content)` pair atomically and all-or-nothing. See the
    /// module documentation for the procedure and the exact guarantees on failure.
    pub fn commit(&self, secrets: &[(RelPath, &[u8])]) -> Result<Report, SealError> {
        check_targets(secrets)?;
        let mut txn = Txn {
            sd: self,
            dirs: Vec::new(),
            created: Vec::new(),
            items: Vec::new(),
        };
        if let Err(e) = txn.prepare(secrets) {
            txn.abort();
            return Err(e);
        }
        txn.apply()
    }

    /// The displayable full path of `rel` ("" is the sealed directory itself).
    fn show(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.path, rel)
        }
    }

    /// Deletes leftover temporaries and backups in `dirfd` and its real subdirectories.
    fn clean_dir(&self, dirfd: BorrowedFd<'_>, rel: &str, depth: usize) -> Result<(), SealError> {
        let names = read_dir_names(dirfd)
            .map_err(|errno| io_err("read directory", self.show(rel), errno))?;
        for name in names {
            let bytes = name.as_bytes();
            let child = join_rel(rel, &String::from_utf8_lossy(bytes));
            if bytes.starts_with(TMP_PREFIX.as_bytes()) || bytes.starts_with(BAK_PREFIX.as_bytes())
            {
                match fs::unlinkat(dirfd, name.as_c_str(), AtFlags::empty()) {
                    Ok(()) => crate::info!("removed leftover temporary {}", self.show(&child)),
                    Err(errno) => crate::warn!(
                        "cannot remove leftover temporary {}: {errno}",
                        self.show(&child),
                        errno = crate::os(errno)
                    ),
                }
                continue;
            }
            // Temporaries live next to their targets, at most MAX_COMPONENTS - 1 deep.
            if depth + 1 >= MAX_COMPONENTS {
                continue;
            }
            let is_dir = match fs::statat(dirfd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode) == FileType::Directory,
                Err(Errno::NOENT) => false,
                Err(errno) => return Err(io_err("stat", self.show(&child), errno)),
            };
            if is_dir {
                let sub = open_dir_nofollow(dirfd, name.as_c_str())
                    .map_err(|errno| io_err("open", self.show(&child), errno))?;
                self.clean_dir(sub.as_fd(), &child, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// Refuses duplicate targets, a target inside another, and reserved names.
fn check_targets(secrets: &[(RelPath, &[u8])]) -> Result<(), SealError> {
    for (t, _) in secrets {
        if t.components().any(|c| c.starts_with(RESERVED_PREFIX)) {
            return Err(SealError::ReservedName { path: t.clone() });
        }
    }
    let mut sorted: Vec<&RelPath> = secrets.iter().map(|(t, _)| t).collect();
    sorted.sort();
    // In component-wise order, everything between a path and one of its descendants is
    // also its descendant, so comparing neighbours finds every conflict.
    for w in sorted.windows(2) {
        if w[0] == w[1] {
            return Err(SealError::DuplicateTarget { path: w[0].clone() });
        }
        if w[0].is_ancestor_of(w[1]) {
            return Err(SealError::PrefixConflict {
                dir: w[0].clone(),
                file: w[1].clone(),
            });
        }
    }
    Ok(())
}

/// A directory walked (and possibly created) during a commit.
struct WalkedDir {
    /// Relative path ("" for the sealed directory).
    rel: String,
    fd: OwnedFd,
    /// Whether an entry in it changed (it needs an fsync).
    touched: bool,
}

/// One target of a commit.
struct Item {
    target: RelPath,
    /// Index into `Txn::dirs` of its parent directory.
    dir: usize,
    /// Whether the final name existed when checked.
    existed: bool,
    /// Name of the temporary, while it exists under that name.
    tmp: Option<String>,
    /// Name of the backup link of the old entry, while it exists.
    backup: Option<String>,
    /// Whether the temporary has been renamed onto the target.
    renamed: bool,
    report: Option<FileReport>,
}

/// The state of one commit, for rollback.
struct Txn<'a> {
    sd: &'a SealDir,
    dirs: Vec<WalkedDir>,
    /// Directories created by this commit: (parent index into `dirs`, name, relative path).
    created: Vec<(usize, String, String)>,
    items: Vec<Item>,
}

impl Txn<'_> {
    fn show(&self, rel: &str) -> String {
        self.sd.show(rel)
    }

    /// The index into `dirs` of the parent directory of `target`, walking (and creating)
    /// it component by component without following symlinks.
    fn parent_dir(&mut self, target: &RelPath) -> Result<usize, SealError> {
        if self.dirs.is_empty() {
            let fd = rustix::io::fcntl_dupfd_cloexec(&self.sd.fd, 0)
                .map_err(|errno| io_err("dup", self.show(""), errno))?;
            self.dirs.push(WalkedDir {
                rel: String::new(),
                fd,
                touched: false,
            });
        }
        let mut idx = 0;
        for comp in target.parent_components() {
            let rel = join_rel(&self.dirs[idx].rel, comp);
            if let Some(i) = self.dirs.iter().position(|d| d.rel == rel) {
                idx = i;
                continue;
            }
            let shown = self.show(&rel);
            let parent = self.dirs[idx].fd.as_fd();
            let fd = match open_dir_nofollow(parent, comp) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match fs::mkdirat(parent, comp, Mode::from_raw_mode(0o700)) {
                        Ok(()) => {
                            self.created.push((idx, comp.to_string(), rel.clone()));
                            self.dirs[idx].touched = true;
                        }
                        Err(Errno::EXIST) => {}
                        Err(errno) => return Err(io_err("mkdir", shown, errno)),
                    }
                    let parent = self.dirs[idx].fd.as_fd();
                    let fd = open_dir_nofollow(parent, comp)
                        .map_err(|e| classify_open(e, parent, comp, &shown))?;
                    if self.created.last().is_some_and(|c| c.2 == rel) {
                        if let Some(o) = self.sd.opts.owner {
                            fs::fchown(&fd, Some(uid(o)), Some(gid(o)))
                                .map_err(|errno| io_err("chown", shown.clone(), errno))?;
                        }
                        fs::fchmod(&fd, Mode::from_raw_mode(self.sd.opts.dir_mode))
                            .map_err(|errno| io_err("chmod", shown.clone(), errno))?;
                    }
                    fd
                }
                Err(e) => return Err(classify_open(e, parent, comp, &shown)),
            };
            self.dirs.push(WalkedDir {
                rel,
                fd,
                touched: false,
            });
            idx = self.dirs.len() - 1;
        }
        Ok(idx)
    }

    /// Steps 1–3: check, write temporaries, make backups. Nothing visible changes.
    fn prepare(&mut self, secrets: &[(RelPath, &[u8])]) -> Result<(), SealError> {
        for (target, _) in secrets {
            let dir = self.parent_dir(target)?;
            let existed = self.check_final(dir, target)?;
            self.items.push(Item {
                target: target.clone(),
                dir,
                existed,
                tmp: None,
                backup: None,
                renamed: false,
                report: None,
            });
        }
        for (i, (_, content)) in secrets.iter().enumerate() {
            self.write_temp(i, content)?;
        }
        for i in 0..self.items.len() {
            if self.items[i].existed {
                self.make_backup(i)?;
            }
        }
        Ok(())
    }

    /// Whether the final name exists; refuses a directory or a symlink to one.
    fn check_final(&self, dir: usize, target: &RelPath) -> Result<bool, SealError> {
        let dirfd = self.dirs[dir].fd.as_fd();
        let name = target.file_name();
        let shown = self.show(target.as_str());
        let st = match fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(errno) => return Err(io_err("stat", shown, errno)),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Err(SealError::TargetIsDirectory { path: shown }),
            FileType::Symlink => match fs::statat(dirfd, name, AtFlags::empty()) {
                // Following the link only to look at what it points to: it is replaced,
                // never written through.
                Ok(t) if FileType::from_raw_mode(t.st_mode) == FileType::Directory => {
                    Err(SealError::TargetIsDirectory { path: shown })
                }
                _ => Ok(true),
            },
            _ => Ok(true),
        }
    }

    fn write_temp(&mut self, i: usize, content: &[u8]) -> Result<(), SealError> {
        let item = &self.items[i];
        let dirfd = self.dirs[item.dir].fd.as_fd();
        let opts = &self.sd.opts;
        let target_shown = self.show(item.target.as_str());
        let (tmp, fd) = with_unique_name(TMP_PREFIX, |name| {
            fs::openat(
                dirfd,
                name,
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC
                    | OFlags::NOCTTY,
                Mode::from_raw_mode(0o400),
            )
        })
        .map_err(|errno| io_err("create temporary for", target_shown.clone(), errno))?;
        self.items[i].tmp = Some(tmp);
        let shown = || format!("{target_shown} (temporary)");
        write_all(fd.as_fd(), content).map_err(|errno| io_err("write", shown(), errno))?;
        if let Some(o) = opts.owner {
            fs::fchown(&fd, Some(uid(o)), Some(gid(o)))
                .map_err(|errno| io_err("chown", shown(), errno))?;
        }
        fs::fchmod(&fd, Mode::from_raw_mode(opts.file_mode))
            .map_err(|errno| io_err("chmod", shown(), errno))?;
        fs::fsync(&fd).map_err(|errno| io_err("fsync", shown(), errno))?;
        let st = fs::fstat(&fd).map_err(|errno| io_err("stat", shown(), errno))?;
        let item = &mut self.items[i];
        item.report = Some(FileReport {
            path: item.target.clone(),
            size: st.st_size as u64,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            replaced: item.existed,
        });
        Ok(())
    }

    fn make_backup(&mut self, i: usize) -> Result<(), SealError> {
        let item = &self.items[i];
        let dirfd = self.dirs[item.dir].fd.as_fd();
        let name = item.target.file_name();
        let res = with_unique_name(BAK_PREFIX, |bak| {
            fs::linkat(dirfd, name, dirfd, bak, AtFlags::empty())
        });
        match res {
            Ok((bak, ())) => {
                self.items[i].backup = Some(bak);
                Ok(())
            }
            // Removed since it was checked: it is now simply a new target.
            Err(Errno::NOENT) => {
                self.items[i].existed = false;
                if let Some(r) = &mut self.items[i].report {
                    r.replaced = false;
                }
                Ok(())
            }
            Err(errno) => Err(io_err("back up", self.show(item.target.as_str()), errno)),
        }
    }

    /// Steps 4–5: rename every temporary onto its target, or roll back.
    fn apply(mut self) -> Result<Report, SealError> {
        for i in 0..self.items.len() {
            let item = &self.items[i];
            let dirfd = self.dirs[item.dir].fd.as_fd();
            let tmp = item.tmp.as_deref().unwrap_or_default();
            let name = item.target.file_name();
            #[cfg(test)]
            let injected = self.sd.fail_rename_at.get() == Some(i);
            #[cfg(not(test))]
            let injected = false;
            let res = if injected {
                Err(Errno::IO)
            } else if item.existed {
                fs::renameat(dirfd, tmp, dirfd, name)
            } else {
                rename_noreplace(dirfd, tmp, name)
            };
            if let Err(errno) = res {
                let cause = io_err("rename onto", self.show(item.target.as_str()), errno);
                return Err(self.rollback(cause));
            }
            let item = &mut self.items[i];
            item.renamed = true;
            item.tmp = None;
            self.dirs[item.dir].touched = true;
        }
        // Committed. Drop the old contents and make the directory entries durable.
        for item in &mut self.items {
            if let Some(bak) = item.backup.take() {
                let dir = &self.dirs[item.dir];
                if let Err(errno) = fs::unlinkat(&dir.fd, bak.as_str(), AtFlags::empty()) {
                    crate::warn!(
                        "cannot remove backup {}: {errno} (removed at next start)",
                        self.sd.show(&join_rel(&dir.rel, &bak)),
                        errno = crate::os(errno)
                    );
                }
            }
        }
        self.sync_dirs();
        Ok(Report {
            files: self
                .items
                .iter_mut()
                .filter_map(|i| i.report.take())
                .collect(),
        })
    }

    /// Undoes the renames done so far, then cleans up like [`Txn::abort`].
    fn rollback(&mut self, cause: SealError) -> SealError {
        let mut not_rolled_back = Vec::new();
        for item in self.items.iter_mut().rev().filter(|i| i.renamed) {
            let dir = &mut self.dirs[item.dir];
            let name = item.target.file_name();
            let res = match &item.backup {
                #[cfg(test)]
                _ if self.sd.fail_rollback.get() => Err(Errno::IO),
                Some(bak) => fs::renameat(&dir.fd, bak.as_str(), &dir.fd, name),
                None => fs::unlinkat(&dir.fd, name, AtFlags::empty()),
            };
            match res {
                Ok(()) => {
                    item.renamed = false;
                    item.backup = None;
                    dir.touched = true;
                }
                Err(errno) => {
                    crate::error!(
                        "rollback of {} failed: {errno}; it keeps the new content",
                        self.sd.show(item.target.as_str()),
                        errno = crate::os(errno)
                    );
                    not_rolled_back.push(item.target.clone());
                }
            }
        }
        self.abort();
        self.sync_dirs();
        if not_rolled_back.is_empty() {
            cause
        } else {
            not_rolled_back.reverse();
            SealError::PartialCommit {
                cause: Box::new(cause),
                not_rolled_back,
            }
        }
    }

    /// Removes every temporary and backup still present and every directory this commit
    /// created (if empty). Best effort: failures are logged.
    fn abort(&mut self) {
        for item in &mut self.items {
            let dir = &self.dirs[item.dir];
            for name in [item.tmp.take(), item.backup.take()].into_iter().flatten() {
                if let Err(errno) = fs::unlinkat(&dir.fd, name.as_str(), AtFlags::empty()) {
                    crate::warn!(
                        "cannot remove {}: {errno} (removed at next start)",
                        self.sd.show(&join_rel(&dir.rel, &name)),
                        errno = crate::os(errno)
                    );
                }
            }
        }
        for (parent, name, rel) in self.created.drain(..).rev() {
            let dir = &mut self.dirs[parent];
            match fs::unlinkat(&dir.fd, name.as_str(), AtFlags::REMOVEDIR) {
                Ok(()) => dir.touched = true,
                Err(Errno::NOTEMPTY) => {}
                Err(errno) => {
                    crate::warn!(
                        "cannot remove directory {}: {errno}",
                        self.sd.show(&rel),
                        errno = crate::os(errno)
                    )
                }
            }
        }
    }

    /// fsyncs every directory whose entries changed. Best effort: failures are logged.
    fn sync_dirs(&mut self) {
        for dir in self.dirs.iter_mut().filter(|d| d.touched) {
            if let Err(errno) = fs::fsync(&dir.fd) {
                crate::warn!(
                    "fsync {}: {errno}",
                    self.sd.show(&dir.rel),
                    errno = crate::os(errno)
                );
            }
            dir.touched = false;
        }
    }
}

/// `renameat2(RENAME_NOREPLACE)`, falling back to `renameat` where the kernel or the
/// filesystem does not support the flag.
fn rename_noreplace(dirfd: BorrowedFd<'_>, from: &str, to: &str) -> rustix::io::Result<()> {
    match fs::renameat_with(dirfd, from, dirfd, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => fs::renameat(dirfd, from, dirfd, to),
        other => other,
    }
}

/// Calls `f` with fresh `<prefix><16 hex digits>` names until one does not exist yet.
fn with_unique_name<T>(
    prefix: &str,
    mut f: impl FnMut(&str) -> rustix::io::Result<T>,
) -> rustix::io::Result<(String, T)> {
    let mut last = Errno::EXIST;
    for _ in 0..16 {
        let mut rnd = [0u8; 8];
        crate::os_rng::fill(&mut rnd);
        let mut name = String::with_capacity(prefix.len() + 16);
        name.push_str(prefix);
        for b in rnd {
            name.push_str(&format!("{b:02x}"));
        }
        match f(&name) {
            Ok(v) => return Ok((name, v)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Writes all of `buf`, retrying short writes and `EINTR`.
fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> rustix::io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Mounts a fresh tmpfs on the directory `fd` (whose path is `path`).
fn mount_tmpfs(fd: BorrowedFd<'_>, path: &str, opts: &SealOptions) -> Result<(), SealError> {
    let shown = path.to_string();
    #[cfg(test)]
    let legacy = tests::FORCE_LEGACY_MOUNT.load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(test))]
    let legacy = false;
    if !legacy {
        match mount_tmpfs_new_api(fd, opts) {
            Ok(()) => return Ok(()),
            Err(Errno::NOSYS) => crate::debug!("fsopen(2) unavailable; mounting with mount(2)"),
            Err(errno) => return Err(io_err("mount tmpfs on", shown, errno)),
        }
    }
    let data = format!(
        "mode={:o},size={},nr_inodes={}",
        opts.dir_mode, opts.size_limit, opts.inode_limit
    );
    let data = CString::new(data).map_err(|_| SealError::InvalidOption {
        what: "tmpfs options".into(),
    })?;
    use rustix::mount::MountFlags;
    rustix::mount::mount(
        "tmpfs",
        path,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        data.as_c_str(),
    )
    .map_err(|errno| io_err("mount tmpfs on", shown, errno))
}

/// fsopen/fsconfig/fsmount/move_mount onto the directory fd: no path lookup at all.
fn mount_tmpfs_new_api(fd: BorrowedFd<'_>, opts: &SealOptions) -> rustix::io::Result<()> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let fs_fd = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(fs_fd.as_fd(), "mode", format!("{:o}", opts.dir_mode))?;
    fsconfig_set_string(fs_fd.as_fd(), "size", opts.size_limit.to_string())?;
    fsconfig_set_string(fs_fd.as_fd(), "nr_inodes", opts.inode_limit.to_string())?;
    fsconfig_create(fs_fd.as_fd())?;
    let mnt = fsmount(
        fs_fd.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    move_mount(
        mnt.as_fd(),
        "",
        fd,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}

/// Whether the directory `fd` is the root of a mount.
fn is_mount_point(
    parent: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    shown: &str,
) -> Result<bool, SealError> {
    use rustix::fs::{StatxAttributes, StatxFlags, statx};
    if let Ok(sx) = statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
        && sx.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
    {
        return Ok(sx.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    }
    let st = fs::fstat(fd).map_err(|errno| io_err("stat", shown.to_string(), errno))?;
    let pst = fs::fstat(parent).map_err(|errno| io_err("stat", format!("{shown}/.."), errno))?;
    Ok(st.st_dev != pst.st_dev || st.st_ino == pst.st_ino)
}

/// Opens the directory `name` in `dirfd` without following a symlink.
pub(crate) fn open_dir_nofollow<P: rustix::path::Arg>(
    dirfd: BorrowedFd<'_>,
    name: P,
) -> rustix::io::Result<OwnedFd> {
    fs::openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory, without `.` and `..`.
pub(crate) fn read_dir_names(dirfd: BorrowedFd<'_>) -> rustix::io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in fs::Dir::read_from(dirfd)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Turns a failed [`open_dir_nofollow`] into "symlink" / "not a directory" / I/O error.
fn classify_open<P: rustix::path::Arg>(
    errno: Errno,
    dirfd: BorrowedFd<'_>,
    name: P,
    shown: &str,
) -> SealError {
    if matches!(errno, Errno::LOOP | Errno::NOTDIR)
        && let Ok(st) = fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
    {
        return if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            SealError::Symlink {
                path: shown.to_string(),
            }
        } else {
            SealError::NotADirectory {
                path: shown.to_string(),
            }
        };
    }
    io_err("open", shown.to_string(), errno)
}

fn io_err(op: &'static str, path: String, errno: Errno) -> SealError {
    SealError::Io { op, path, errno }
}

/// Splits the sealed directory's path into the directory holding it and its final name,
/// the way `std::path::Path::{parent, file_name}` do: trailing `/` and `/.` are ignored,
/// an empty parent is `.`. `None` if there is no final name (`/`, `.`, `..`, empty).
fn split_dir_path(path: &str) -> Option<(&str, &str)> {
    let mut p = path;
    loop {
        let t = p.trim_end_matches('/');
        if t.is_empty() || t == "." {
            return None;
        }
        match t.strip_suffix("/.") {
            Some(rest) => p = rest,
            None => {
                p = t;
                break;
            }
        }
    }
    let (parent, name) = match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    };
    if name == ".." {
        return None;
    }
    let parent = match parent.trim_end_matches('/') {
        "" if p.starts_with('/') => "/",
        "" => ".",
        _ => parent,
    };
    Some((parent, name))
}

/// `dir/name`, or `name` at the top (relative paths as shown in messages).
pub(crate) fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn uid(o: Owner) -> Uid {
    Uid::from_raw(o.uid)
}

fn gid(o: Owner) -> Gid {
    Gid::from_raw(o.gid)
}

#[cfg(test)]
pub(crate) mod tests;
