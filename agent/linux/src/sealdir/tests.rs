//! Tests of the sealed directory, on real directories under the system temp dir. One
//! test re-executes this test binary under `unshare` to mount a real tmpfs.

extern crate std;

use super::*;
use std::fs as sfs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::{eprintln, println, vec};

/// Makes `mount_tmpfs` use `mount(2)` instead of the new mount API (the tmpfs child only).
pub(crate) static FORCE_LEGACY_MOUNT: AtomicBool = AtomicBool::new(false);

/// A unique directory, removed on drop.
pub(crate) struct TestDir {
    pub(crate) path: String,
}

impl TestDir {
    pub(crate) fn new(tag: &str) -> TestDir {
        TestDir::new_in(&std::env::temp_dir(), tag)
    }

    pub(crate) fn new_in(base: &Path, tag: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = base.join(format!(
            "sealgate-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = sfs::remove_dir_all(&path);
        sfs::create_dir_all(&path).unwrap();
        sfs::set_permissions(&path, sfs::Permissions::from_mode(0o755)).unwrap();
        TestDir {
            path: path.to_str().unwrap().to_string(),
        }
    }

    pub(crate) fn join(&self, rel: &str) -> String {
        format!("{}/{rel}", self.path)
    }

    /// Every entry below the directory (symlinks not followed), sorted.
    pub(crate) fn list(&self) -> Vec<String> {
        fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
            for e in sfs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let r = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                out.push(r.clone());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), &r, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(Path::new(&self.path), "", &mut out);
        out.sort();
        out
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = sfs::remove_dir_all(&self.path);
    }
}

fn rp(s: &str) -> RelPath {
    RelPath::parse(s).unwrap()
}

/// Options for tests on the host: never mount, accept the (possibly disk) temp dir.
fn test_opts() -> SealOptions {
    SealOptions {
        mount_tmpfs: false,
        allow_non_tmpfs: true,
        ..SealOptions::default()
    }
}

fn open(td: &TestDir) -> SealDir {
    SealDir::open(&td.path, &test_opts()).unwrap()
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    sfs::read(p).unwrap()
}

fn mode(p: impl AsRef<Path>) -> u32 {
    sfs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn assert_no_temporaries(td: &TestDir) {
    let left: Vec<String> = td
        .list()
        .into_iter()
        .filter(|p| p.rsplit('/').next().unwrap().starts_with(RESERVED_PREFIX))
        .collect();
    assert!(left.is_empty(), "temporaries left behind: {left:?}");
}

const SECRET: &[u8] = b"TOP-SECRET-7f3a9c";

fn assert_no_secret(e: &SealError) {
    let secret = std::str::from_utf8(SECRET).unwrap();
    assert!(!e.to_string().contains(secret), "{e}");
    assert!(!format!("{e:?}").contains(secret), "{e:?}");
}

#[test]
fn writes_new_files_and_directories() {
    let td = TestDir::new("new");
    let sd = open(&td);
    let report = sd
        .commit(&[(rp("disk.key"), b"k1"), (rp("creds/db/password"), b"pw!")])
        .unwrap();
    let me = rustix::process::geteuid().as_raw();
    let my_gid = rustix::process::getegid().as_raw();
    assert_eq!(
        report.files,
        [
            FileReport {
                path: rp("disk.key"),
                size: 2,
                mode: 0o400,
                uid: me,
                gid: my_gid,
                replaced: false
            },
            FileReport {
                path: rp("creds/db/password"),
                size: 3,
                mode: 0o400,
                uid: me,
                gid: my_gid,
                replaced: false
            },
        ]
    );
    assert_eq!(
        report.files[1].to_string(),
        format!("creds/db/password (3 bytes, mode 0400, owner {me}:{my_gid})")
    );
    assert_eq!(read(td.join("disk.key")), b"k1");
    assert_eq!(read(td.join("creds/db/password")), b"pw!");
    assert_eq!(mode(td.join("disk.key")), 0o400);
    assert_eq!(mode(td.join("creds")), 0o700);
    assert_eq!(mode(td.join("creds/db")), 0o700);
    assert_eq!(
        td.list(),
        ["creds", "creds/db", "creds/db/password", "disk.key"]
    );
    // Empty commits and empty files are fine.
    assert_eq!(sd.commit(&[]).unwrap(), Report::default());
    sd.commit(&[(rp("empty"), b"")]).unwrap();
    assert_eq!(read(td.join("empty")), b"");
}

#[test]
fn replaces_an_existing_file_atomically() {
    let td = TestDir::new("replace");
    sfs::write(td.join("key"), b"old").unwrap();
    sfs::set_permissions(td.join("key"), sfs::Permissions::from_mode(0o644)).unwrap();
    let old_ino = sfs::metadata(td.join("key")).unwrap().ino();
    // A reader holding the old file keeps seeing the old content: the name was
    // replaced, the old file was never written in place.
    let mut reader = sfs::File::open(td.join("key")).unwrap();
    let sd = open(&td);
    let report = sd.commit(&[(rp("key"), b"new content")]).unwrap();
    assert!(report.files[0].replaced);
    assert_eq!(report.files[0].size, 11);
    assert_eq!(read(td.join("key")), b"new content");
    assert_eq!(mode(td.join("key")), 0o400);
    assert_ne!(sfs::metadata(td.join("key")).unwrap().ino(), old_ino);
    let mut old = String::new();
    std::io::Read::read_to_string(&mut reader, &mut old).unwrap();
    assert_eq!(old, "old");
    assert_eq!(td.list(), ["key"]);
}

#[test]
fn applies_owner_and_modes() {
    let td = TestDir::new("owner");
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("not root: checking modes only, not chown");
    }
    let opts = SealOptions {
        owner: root.then_some(Owner {
            uid: 1000,
            gid: 1000,
        }),
        file_mode: 0o440,
        dir_mode: 0o750,
        ..test_opts()
    };
    let sd = SealDir::open(&td.path, &opts).unwrap();
    let report = sd.commit(&[(rp("app/tls/key.pem"), SECRET)]).unwrap();
    let f = &report.files[0];
    assert_eq!(f.mode, 0o440);
    assert_eq!(mode(td.join("app/tls/key.pem")), 0o440);
    assert_eq!(mode(td.join("app")), 0o750);
    assert_eq!(mode(td.join("app/tls")), 0o750);
    if root {
        assert_eq!((f.uid, f.gid), (1000, 1000));
        for p in ["app", "app/tls", "app/tls/key.pem"] {
            let m = sfs::symlink_metadata(td.join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (1000, 1000), "{p}");
        }
    }
}

#[test]
fn invalid_options_are_refused() {
    let td = TestDir::new("opts");
    for opts in [
        SealOptions {
            file_mode: 0o4400,
            ..test_opts()
        },
        SealOptions {
            file_mode: 0o402,
            ..test_opts()
        },
        SealOptions {
            dir_mode: 0o777,
            ..test_opts()
        },
        SealOptions {
            dir_mode: 0o500,
            ..test_opts()
        },
        SealOptions {
            size_limit: 0,
            ..test_opts()
        },
        SealOptions {
            owner: Some(Owner {
                uid: u32::MAX,
                gid: 0,
            }),
            ..test_opts()
        },
    ] {
        let e = SealDir::open(&td.path, &opts).unwrap_err();
        assert!(matches!(e, SealError::InvalidOption { .. }), "{e}");
    }
}

#[test]
fn symlinked_parent_directory_is_refused_and_nothing_written() {
    let td = TestDir::new("symparent");
    let outside = TestDir::new("symparent-outside");
    symlink(&outside.path, td.join("link")).unwrap();
    sfs::create_dir(td.join("real")).unwrap();
    symlink(&outside.path, td.join("real/inner")).unwrap();
    let sd = open(&td);
    for target in [
        "link/secret",
        "real/inner/secret",
        "real/inner/deeper/secret",
    ] {
        let e = sd
            .commit(&[(rp("good"), SECRET), (rp(target), SECRET)])
            .unwrap_err();
        match &e {
            SealError::Symlink { path } => {
                assert!(
                    path.ends_with("link") || path.ends_with("real/inner"),
                    "{path}"
                )
            }
            other => panic!("{target}: {other}"),
        }
        assert!(
            e.to_string().starts_with("refusing to follow symlink"),
            "{e}"
        );
        assert_no_secret(&e);
    }
    assert!(outside.list().is_empty(), "{:?}", outside.list());
    assert_eq!(td.list(), ["link", "real", "real/inner"]);
}

#[test]
fn symlink_as_final_name_is_replaced_not_followed() {
    let td = TestDir::new("symfinal");
    let outside = TestDir::new("symfinal-outside");
    sfs::write(outside.join("victim"), b"victim").unwrap();
    symlink(outside.join("victim"), td.join("key")).unwrap();
    symlink("nowhere", td.join("dangling")).unwrap();
    let sd = open(&td);
    let report = sd
        .commit(&[(rp("key"), b"new"), (rp("dangling"), b"new2")])
        .unwrap();
    assert!(report.files.iter().all(|f| f.replaced));
    assert_eq!(read(outside.join("victim")), b"victim");
    for (name, content) in [("key", &b"new"[..]), ("dangling", b"new2")] {
        let m = sfs::symlink_metadata(td.join(name)).unwrap();
        assert!(m.file_type().is_file(), "{name}");
        assert_eq!(read(td.join(name)), content);
    }
    assert_eq!(td.list(), ["dangling", "key"]);
}

#[test]
fn directory_or_symlink_to_directory_as_final_name_is_refused() {
    let td = TestDir::new("dirfinal");
    sfs::write(td.join("old"), b"old content").unwrap();
    sfs::create_dir(td.join("dir")).unwrap();
    symlink("dir", td.join("dlink")).unwrap();
    let sd = open(&td);
    for target in ["dir", "dlink"] {
        let e = sd
            .commit(&[
                (rp("old"), SECRET),
                (rp("fresh"), SECRET),
                (rp(target), SECRET),
            ])
            .unwrap_err();
        assert!(
            matches!(&e, SealError::TargetIsDirectory { path } if path.ends_with(target)),
            "{e}"
        );
        assert_no_secret(&e);
        assert_eq!(read(td.join("old")), b"old content");
        assert_eq!(td.list(), ["dir", "dlink", "old"]);
    }
}

#[test]
fn failure_mid_commit_leaves_nothing_behind() {
    let td = TestDir::new("midfail");
    sfs::write(td.join("a"), b"old a").unwrap();
    sfs::write(td.join("f"), b"a file").unwrap();
    sfs::create_dir(td.join("keep")).unwrap();
    let before = td.list();
    let sd = open(&td);
    let e = sd
        .commit(&[
            (rp("a"), SECRET),
            (rp("newdir/sub/b"), SECRET),
            (rp("keep/x"), SECRET),
            (rp("f/c"), SECRET),
        ])
        .unwrap_err();
    assert!(
        matches!(&e, SealError::NotADirectory { path } if path.ends_with("/f")),
        "{e}"
    );
    assert_no_secret(&e);
    assert_eq!(td.list(), before);
    assert_eq!(read(td.join("a")), b"old a");
    assert_eq!(read(td.join("f")), b"a file");
}

#[test]
fn rename_failure_rolls_back() {
    let td = TestDir::new("renamefail");
    sfs::write(td.join("a"), b"old a").unwrap();
    sfs::create_dir(td.join("d")).unwrap();
    sfs::write(td.join("d/c"), b"old c").unwrap();
    let before = td.list();
    let sd = open(&td);
    let secrets: [(RelPath, &[u8]); 5] = [
        (rp("a"), SECRET),
        (rp("b"), SECRET),
        (rp("d/c"), SECRET),
        (rp("new/e"), SECRET),
        (rp("f"), SECRET),
    ];
    for at in 0..secrets.len() {
        sd.fail_rename_at.set(Some(at));
        let e = sd.commit(&secrets).unwrap_err();
        assert!(
            matches!(
                &e,
                SealError::Io {
                    op: "rename onto",
                    errno: Errno::IO,
                    ..
                }
            ),
            "{e}"
        );
        assert_no_secret(&e);
        assert_eq!(td.list(), before, "failing rename #{at}");
        assert_eq!(read(td.join("a")), b"old a");
        assert_eq!(read(td.join("d/c")), b"old c");
    }
    sd.fail_rename_at.set(None);
    sd.commit(&secrets).unwrap();
    assert_eq!(read(td.join("new/e")), SECRET);
}

#[test]
fn failed_rollback_is_reported_precisely() {
    let td = TestDir::new("rollbackfail");
    sfs::write(td.join("a"), b"old a").unwrap();
    sfs::write(td.join("c"), b"old c").unwrap();
    let sd = open(&td);
    sd.fail_rename_at.set(Some(2));
    sd.fail_rollback.set(true);
    let e = sd
        .commit(&[(rp("a"), SECRET), (rp("b"), SECRET), (rp("c"), SECRET)])
        .unwrap_err();
    match &e {
        SealError::PartialCommit {
            cause,
            not_rolled_back,
        } => {
            assert!(matches!(
                **cause,
                SealError::Io {
                    op: "rename onto",
                    ..
                }
            ));
            assert_eq!(not_rolled_back, &[rp("a"), rp("b")]);
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .contains("\"a\" \"b\"; every other target is unchanged"),
        "{e}"
    );
    assert_no_secret(&e);
    assert_eq!(read(td.join("a")), SECRET);
    assert_eq!(read(td.join("b")), SECRET);
    assert_eq!(read(td.join("c")), b"old c");
    assert_no_temporaries(&td);
}

#[test]
fn bad_target_lists_are_refused_before_anything_is_written() {
    let td = TestDir::new("badlists");
    let sd = open(&td);
    let e = sd.commit(&[(rp("a"), SECRET), (rp("b"), SECRET), (rp("a"), SECRET)]);
    assert!(matches!(e, Err(SealError::DuplicateTarget { path }) if path == rp("a")));
    let e = sd.commit(&[
        (rp("x/y/z"), SECRET),
        (rp("b"), SECRET),
        (rp("x/y"), SECRET),
    ]);
    assert!(
        matches!(&e, Err(SealError::PrefixConflict { dir, file }) if *dir == rp("x/y") && *file == rp("x/y/z")),
        "{e:?}"
    );
    let e = sd.commit(&[(rp("x-y"), SECRET), (rp("x"), SECRET), (rp("x/a"), SECRET)]);
    assert!(matches!(e, Err(SealError::PrefixConflict { .. })), "{e:?}");
    let e = sd.commit(&[(rp("ok"), SECRET), (rp("d/.sealgate-tmp-00"), SECRET)]);
    assert!(matches!(e, Err(SealError::ReservedName { .. })), "{e:?}");
    assert!(td.list().is_empty());
    // Siblings that merely share a name prefix are fine.
    sd.commit(&[(rp("x"), b"1"), (rp("x-y/z"), b"2"), (rp("xy"), b"3")])
        .unwrap();
}

#[test]
fn leftover_temporaries_are_removed_on_open() {
    let td = TestDir::new("leftover");
    let outside = TestDir::new("leftover-outside");
    sfs::create_dir_all(td.join("sub/deeper")).unwrap();
    for p in [
        ".sealgate-tmp-0011223344556677",
        "sub/.sealgate-bak-8899aabbccddeeff",
        "sub/deeper/.sealgate-tmp-x",
        "keep",
        "sub/.sealgate-other",
    ] {
        sfs::write(td.join(p), b"x").unwrap();
    }
    sfs::write(outside.join(".sealgate-tmp-outside"), b"x").unwrap();
    symlink(&outside.path, td.join("link")).unwrap();
    let _sd = open(&td);
    assert_eq!(
        td.list(),
        ["keep", "link", "sub", "sub/.sealgate-other", "sub/deeper"]
    );
    assert_eq!(outside.list(), [".sealgate-tmp-outside"]);
}

/// A directory on a filesystem that is not tmpfs: the temp dir, or the source tree.
fn disk_test_dir(tag: &str) -> TestDir {
    for base in [
        std::env::temp_dir(),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
    ] {
        let _ = sfs::create_dir_all(&base);
        if let Ok(st) = rustix::fs::statfs(&base) {
            #[allow(clippy::unnecessary_cast)]
            let t = st.f_type as u32;
            if t != TMPFS_MAGIC && t != RAMFS_MAGIC {
                return TestDir::new_in(&base, tag);
            }
        }
    }
    panic!("no non-tmpfs directory found for this test (temp dir and target/ are both tmpfs)");
}

#[test]
fn non_tmpfs_is_refused_unless_allowed() {
    let td = disk_test_dir("nontmpfs");
    let strict = SealOptions {
        mount_tmpfs: false,
        ..SealOptions::default()
    };
    let e = SealDir::open(&td.path, &strict).unwrap_err();
    assert!(matches!(e, SealError::NotTmpfs { .. }), "{e}");
    assert!(e.to_string().contains("allow_non_tmpfs"), "{e}");
    let sd = SealDir::open(&td.path, &test_opts()).unwrap();
    assert!(sd.fs_type() != TMPFS_MAGIC && !sd.mounted_by_us());
    assert_eq!(sd.path(), td.path);
}

#[test]
fn sealed_directory_itself_is_checked() {
    let td = TestDir::new("sealedself");
    sfs::create_dir(td.join("real")).unwrap();
    symlink("real", td.join("link")).unwrap();
    sfs::write(td.join("file"), b"x").unwrap();
    sfs::create_dir(td.join("open")).unwrap();
    sfs::set_permissions(td.join("open"), sfs::Permissions::from_mode(0o777)).unwrap();
    let e = SealDir::open(&td.join("link"), &test_opts()).unwrap_err();
    assert!(matches!(e, SealError::Symlink { .. }), "{e}");
    let e = SealDir::open(&td.join("file"), &test_opts()).unwrap_err();
    assert!(matches!(e, SealError::NotADirectory { .. }), "{e}");
    let e = SealDir::open(&td.join("missing"), &test_opts()).unwrap_err();
    assert!(
        matches!(
            e,
            SealError::Io {
                errno: Errno::NOENT,
                ..
            }
        ),
        "{e}"
    );
    let e = SealDir::open(&td.join("open"), &test_opts()).unwrap_err();
    assert!(
        matches!(e, SealError::WorldWritable { mode: 0o777, .. }),
        "{e}"
    );
    // Trailing "/." and "real/" name the directory itself, which is fine.
    SealDir::open(&td.join("real/."), &test_opts()).unwrap();
}

#[test]
fn a_second_opener_is_refused_while_locked() {
    let td = TestDir::new("lock");
    let first = open(&td);
    let e = SealDir::open(&td.path, &test_opts()).unwrap_err();
    assert!(matches!(e, SealError::Busy { .. }), "{e}");
    drop(first);
    open(&td);
}

const CHILD_ENV: &str = "SEALGATE_TEST_TMPFS_CHILD";
const CHILD_OK: &str = "SEALGATE-TMPFS-CHILD-OK";

/// Mounts real tmpfs instances: re-executes this test binary, running only
/// [`tmpfs_child`], as root of a new user and mount namespace.
#[test]
fn mounts_a_tmpfs_in_a_user_namespace() {
    let td = TestDir::new("tmpfs");
    let exe = std::env::current_exe().unwrap();
    let module = module_path!().split_once("::").unwrap().1;
    let test = format!("{module}::tmpfs_child");
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(&exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &td.path)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("this test needs unshare(1) from util-linux in PATH to mount a tmpfs: {e}")
        }
        Err(e) => panic!("running unshare: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(CHILD_OK),
        "tmpfs child failed ({}); user namespaces may be disabled\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // The mounts died with the namespace: what was written never reached this
    // directory's real filesystem.
    for d in ["sealed", "legacy", "small"] {
        assert!(Path::new(&td.join(d)).is_dir(), "{d}");
        assert_eq!(sfs::read_dir(td.join(d)).unwrap().count(), 0, "{d}");
    }
}

/// The child half of [`mounts_a_tmpfs_in_a_user_namespace`]; does nothing on its own.
#[test]
fn tmpfs_child() {
    let Some(base) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let base = PathBuf::from(base);
    assert!(rustix::process::geteuid().is_root());
    let strict = SealOptions::default();
    assert!(strict.mount_tmpfs && !strict.allow_non_tmpfs);

    let check_mount = |dir: &Path, opts: &SealOptions| {
        let sd = SealDir::open(dir.to_str().unwrap(), opts).unwrap();
        assert!(sd.mounted_by_us());
        assert_eq!(sd.fs_type(), TMPFS_MAGIC);
        let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let vfs = rustix::fs::fstatvfs(&fd).unwrap();
        use rustix::fs::StatVfsMountFlags as F;
        assert!(
            vfs.f_flag.contains(F::NOSUID | F::NODEV | F::NOEXEC),
            "{:?}",
            vfs.f_flag
        );
        assert_eq!(vfs.f_files, opts.inode_limit);
        assert_eq!(vfs.f_blocks * vfs.f_frsize, opts.size_limit);
        assert_eq!(mode(dir), opts.dir_mode);
        sd
    };

    // Missing directory: created, then mounted with the new mount API.
    let sealed = base.join("sealed");
    let sd = check_mount(&sealed, &strict);
    sd.commit(&[(rp("luks/root.key"), SECRET)]).unwrap();
    assert_eq!(read(sealed.join("luks/root.key")), SECRET);
    drop(sd);
    // Reopened: already a mount point, not mounted again; content kept.
    sfs::write(sealed.join(".sealgate-tmp-crashed"), b"x").unwrap();
    let sd = SealDir::open(sealed.to_str().unwrap(), &strict).unwrap();
    assert!(!sd.mounted_by_us());
    assert_eq!(sd.fs_type(), TMPFS_MAGIC);
    assert!(!sealed.join(".sealgate-tmp-crashed").exists());
    assert_eq!(read(sealed.join("luks/root.key")), SECRET);

    // The mount(2) fallback.
    FORCE_LEGACY_MOUNT.store(true, Ordering::Relaxed);
    let legacy = base.join("legacy");
    sfs::create_dir(&legacy).unwrap();
    let opts = SealOptions {
        dir_mode: 0o750,
        size_limit: 1 << 20,
        inode_limit: 64,
        ..strict.clone()
    };
    check_mount(&legacy, &opts);
    FORCE_LEGACY_MOUNT.store(false, Ordering::Relaxed);

    // A real ENOSPC half-way through a commit: nothing is written.
    let small = base.join("small");
    let opts = SealOptions {
        size_limit: 64 << 10,
        ..strict
    };
    let sd = check_mount(&small, &opts);
    let big = vec![0x5a; 100 << 10];
    let e = sd
        .commit(&[(rp("a"), &b"fits"[..]), (rp("dir/b"), &big)])
        .unwrap_err();
    assert!(
        matches!(
            e,
            SealError::Io {
                errno: Errno::NOSPC,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(sfs::read_dir(&small).unwrap().count(), 0);

    println!("{CHILD_OK}");
}

#[test]
fn unexpected_file_types_in_the_sealed_directory_are_handled() {
    // A FIFO as a final name is replaced (by rename; nothing is opened).
    let td = TestDir::new("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        td.join("pipe"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let sd = open(&td);
    sd.commit(&[(rp("pipe"), b"x")]).unwrap();
    assert!(
        !sfs::symlink_metadata(td.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn the_sealed_directory_path_splits_like_std_path() {
    for p in [
        "/run/sealgate",
        "/run/sealgate/",
        "/run/sealgate/.",
        "/run/sealgate//./",
        "/run//sealgate",
        "/run/./sealgate",
        "sealed",
        "sealed/",
        "./sealed",
        "a/b/c",
        "/sealed",
        "//sealed",
        "/",
        "",
        ".",
        "./.",
        "/.",
        "..",
        "a/..",
        "a/../b",
    ] {
        let std_split = Path::new(p).file_name().map(|name| {
            let parent = match Path::new(p).parent() {
                Some(q) if !q.as_os_str().is_empty() => q.to_str().unwrap(),
                _ => ".",
            };
            (parent, name.to_str().unwrap())
        });
        let ours = split_dir_path(p);
        // The parent may differ in spelling ("/run/." vs "/run"), never in meaning.
        let norm = |s: &str| {
            let mut n = s.trim_end_matches('/');
            while let Some(rest) = n.strip_suffix("/.") {
                n = rest.trim_end_matches('/');
            }
            if n.is_empty() && s.starts_with('/') {
                "/".to_string()
            } else {
                n.to_string()
            }
        };
        assert_eq!(
            ours.map(|(a, b)| (norm(a), b)),
            std_split.map(|(a, b)| (norm(a), b)),
            "{p:?}"
        );
    }
}
