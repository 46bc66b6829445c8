//! The real sealed-directory path: sealgate mounting its own tmpfs, run inside a private
//! mount namespace (`unshare`) so that nothing is ever mounted on the host; and the
//! refusal to write secrets to a directory that is not a tmpfs.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const VALUE: &str = "tmpfs-only-secret-value-4d4d";

/// `unshare` arguments for a private mount namespace in which we are root: as root, a
/// mount namespace with private propagation; otherwise also a user namespace mapping us to
/// root. Fails the test (never skips it) when `unshare` is missing.
fn unshare_args() -> Vec<&'static str> {
    match Command::new("unshare").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`unshare --version` failed ({}); the tmpfs tests need util-linux's unshare: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "the tmpfs tests need util-linux's `unshare` on PATH (apt-get install util-linux): {e}"
        ),
    }
    if running_as_root() {
        vec!["--mount", "--propagation", "private"]
    } else {
        vec![
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ]
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `--resource` for the test value, written to `app/secret`.
const RESOURCE: [&str; 2] = ["--resource", "kbs:///default/tmpfs/value=app/secret"];

/// sealgate (with `args`) inside `sh -c SCRIPT` inside a new mount namespace. The script
/// gets the sealed directory as `$d` and the sealgate command line as `"$@"`.
fn in_namespace(w: &World, dir: &Path, script: &str, args: &[&str]) -> Ran {
    let mut pre = unshare_args();
    let full = format!("set -e; d=$1; shift; {script}");
    pre.extend(["--", "sh", "-c", &full, "sh", s(dir)]);
    w.bare()
        .args(["unseal", "--kbs", &w.url(), "--tee", "sample"])
        .args(["--sealed-dir", s(dir)])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .args(["--log-level", "debug", "--deadline", "10"])
        .args(args)
        .watch(dir)
        .wrapped_in("unshare", &pre)
        .run()
}

#[track_caller]
fn assert_empty_and_unmounted(dir: &Path, ran: &Ran) {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        entries.is_empty(),
        "after the namespace is gone, {} is empty on disk: {entries:?}{}",
        dir.display(),
        ran.dump()
    );
    let findmnt = Command::new("findmnt")
        .args(["-n", s(dir)])
        .output()
        .expect("findmnt (util-linux)");
    assert!(
        !findmnt.status.success(),
        "nothing stays mounted on {} outside the namespace: {}",
        dir.display(),
        String::from_utf8_lossy(&findmnt.stdout)
    );
}

#[test]
fn sealgate_mounts_a_private_tmpfs_and_writes_there() {
    let w = World::new("tmpfs");
    w.secret("default/tmpfs/value", VALUE);
    let dir = w.tmp.mkdir("mnt"); // a fresh, empty directory on the normal filesystem
    // As real root, also hand the tmpfs and the file to 1000:1000 (in a user namespace
    // only root is mapped).
    let root = running_as_root();
    let mut args = vec!["--tmpfs-size", "1m"];
    args.extend(RESOURCE);
    if root {
        args.extend(["--owner", "1000:1000"]);
    }
    let ran = in_namespace(
        &w,
        &dir,
        r#""$@"; findmnt -no FSTYPE,OPTIONS "$d"; stat -c '%a %u:%g' "$d"; stat -c '%a %u:%g' "$d/app/secret"; sha256sum < "$d/app/secret""#,
        &args,
    );
    ran.ok()
        .says(&[
            "mounted tmpfs on",
            "(mode 700, size 1048576 bytes, 1024 inodes, nosuid,nodev,noexec)",
        ])
        .never_says(&["INSECURE", "not mounted nosuid"]);
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "script output: {out:?}{}", ran.dump());
    let (fstype, options) = lines[0].trim().split_once(char::is_whitespace).unwrap();
    assert_eq!(fstype, "tmpfs", "{}", ran.dump());
    let options: Vec<&str> = options.trim().split(',').collect();
    for want in ["nosuid", "nodev", "noexec", "size=1024k", "mode=700"] {
        assert!(
            options.contains(&want),
            "mount option {want} in {options:?}"
        );
    }
    let owner = if root { "1000:1000" } else { "0:0" };
    assert_eq!(
        lines[1],
        format!("700 {owner}"),
        "tmpfs root mode and owner"
    );
    assert_eq!(
        lines[2],
        format!("400 {owner}"),
        "secret file mode and owner"
    );
    assert_eq!(
        lines[3].split_whitespace().next(),
        Some(sha256_hex(VALUE.as_bytes()).as_str()),
        "the secret on the tmpfs"
    );
    assert_empty_and_unmounted(&dir, &ran);
    assert_eq!(w.kbs.stats().resource.count(200), 1);
}

#[test]
fn an_existing_tmpfs_is_used_as_it_is() {
    let w = World::new("tmpfs-existing");
    w.secret("default/tmpfs/value", VALUE);
    let dir = w.tmp.mkdir("mnt");
    let ran = in_namespace(
        &w,
        &dir,
        r#"mount -t tmpfs -o size=2m,mode=700,nosuid,nodev,noexec tmpfs "$d"; "$@"; findmnt -no OPTIONS "$d"; sha256sum < "$d/app/secret""#,
        &["--no-mount", RESOURCE[0], RESOURCE[1]],
    );
    ran.ok()
        .never_says(&["mounted tmpfs on", "INSECURE", "not mounted nosuid"]);
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(
        out.contains("size=2048k"),
        "our own mount, not a new one: {out}"
    );
    assert!(out.contains(&sha256_hex(VALUE.as_bytes())), "{out}");
    assert_empty_and_unmounted(&dir, &ran);
}

#[test]
fn a_full_tmpfs_fails_the_whole_commit_and_leaves_it_empty() {
    let w = World::new("tmpfs-full");
    // Two secrets of 600 KiB each do not fit a 1 MiB tmpfs together.
    let big = |c: u8| vec![c; 600 << 10];
    w.secret("default/big/one", big(b'1'));
    w.secret("default/big/two", big(b'2'));
    let dir = w.tmp.mkdir("mnt");
    let ran = in_namespace(
        &w,
        &dir,
        r#"rc=0; "$@" || rc=$?; echo "rc=$rc"; find "$d" -mindepth 1 | wc -l; findmnt -no FSTYPE "$d""#,
        &[
            "--tmpfs-size",
            "1m",
            "--resource",
            "kbs:///default/big/one=big/one",
            "--resource",
            "kbs:///default/big/two=big/two",
        ],
    );
    ran.ok().says(&["No space left on device"]);
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        ["rc=1", "0", "tmpfs"],
        "sealgate failed and the tmpfs is empty: no partial file, no temporary, no \
         directory it created{}",
        ran.dump()
    );
    assert_empty_and_unmounted(&dir, &ran);
}

/// A scratch directory on a filesystem that is neither tmpfs nor ramfs.
fn disk_dir(w: &World) -> PathBuf {
    let fs_type = |p: &Path| {
        let o = Command::new("stat")
            .args(["-f", "-c", "%T", s(p)])
            .output()
            .expect("stat (coreutils)");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    for base in [
        w.tmp.path().to_path_buf(),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ] {
        if !matches!(fs_type(&base).as_str(), "tmpfs" | "ramfs") {
            let dir = base.join(format!("disk-{}", std::process::id()));
            let _ = std::fs::create_dir(&dir);
            return dir;
        }
    }
    panic!("no directory on a disk filesystem: both the temp dir and the target dir are tmpfs");
}

#[test]
fn a_sealed_dir_that_is_not_tmpfs_is_refused_before_the_kbs() {
    let w = World::new("not-tmpfs");
    w.secret("default/tmpfs/value", VALUE);
    let dir = disk_dir(&w);
    let mut variants = vec![vec!["--no-mount"]];
    if !running_as_root() {
        // Not root: sealgate cannot mount, and refuses the directory as it is.
        variants.push(vec![]);
    }
    for extra in variants {
        let ran = w
            .bare()
            .args(["unseal", "--kbs", &w.url(), "--tee", "sample"])
            .args(["--sealed-dir", s(&dir)])
            .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
            .resource("kbs:///default/tmpfs/value", "x")
            .args(extra)
            .watch(&dir)
            .run();
        ran.fails(
            1,
            &["refusing to write secrets to", "is not a tmpfs or ramfs"],
        );
    }
    assert_eq!(
        w.kbs.stats().connections,
        0,
        "refused before any KBS request"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--mode 0440 --owner 1000:1000` exists to let group 1000 read the secrets. On the tmpfs
/// sealgate mounts, a member of that group (not uid 1000) must be able to read them, at the
/// top level and in a directory sealgate created. Needs real root (switching to other
/// uids); as another user there is nothing to check.
#[test]
fn group_readable_mode_lets_the_group_read_the_secrets() {
    if !running_as_root() {
        eprintln!("not root: cannot switch to another uid to check group access");
        return;
    }
    let w = World::new("tmpfs-group");
    w.secret("default/tmpfs/value", VALUE);
    let parent = w.tmp.mkdir("traversable");
    std::fs::set_permissions(w.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = parent.join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let ran = in_namespace(
        &w,
        &dir,
        r#""$@"; for f in top app/secret; do
             if setpriv --reuid=2000 --regid=1000 --clear-groups cat "$d/$f" > /dev/null; then
                 echo "$f: readable by the group"; else echo "$f: NOT readable by the group"; fi
           done"#,
        &[
            "--mode",
            "0440",
            "--owner",
            "1000:1000",
            RESOURCE[0],
            RESOURCE[1],
            "--resource",
            "kbs:///default/tmpfs/value=top",
        ],
    );
    ran.ok();
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "top: readable by the group",
            "app/secret: readable by the group"
        ],
        "group 1000 reads files of mode 0440 owned by 1000:1000 (the tmpfs root and the \
         directories sealgate creates are 0700, so it cannot){}",
        ran.dump()
    );
}
