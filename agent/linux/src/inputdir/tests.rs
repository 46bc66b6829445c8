//! Tests of the input-directory walker on real directories under the system temp dir.

extern crate std;

use super::*;
use crate::sealdir::tests::TestDir;
use std::fs as sfs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::vec;

fn write(td: &TestDir, rel: &str, content: &[u8]) {
    let p = td.join(rel);
    sfs::create_dir_all(Path::new(&p).parent().unwrap()).unwrap();
    sfs::write(p, content).unwrap();
}

fn read_all(td: &TestDir) -> Vec<(String, Vec<u8>)> {
    read_sealed_inputs(&td.path, &InputLimits::default())
        .unwrap()
        .into_iter()
        .map(|(p, c)| (p.as_str().to_string(), c))
        .collect()
}

fn names(v: &[(String, Vec<u8>)]) -> Vec<&str> {
    v.iter().map(|(p, _)| p.as_str()).collect()
}

#[test]
fn kubernetes_atomic_writer_layout() {
    let td = TestDir::new("k8s");
    let ts = "..2024_01_01_00_00_00.123456789";
    write(&td, &format!("{ts}/disk-key"), b"sealed.aaa.bbb.ccc");
    write(&td, &format!("{ts}/db-password"), b"sealed.ddd\n");
    write(&td, &format!("{ts}/config"), b"plain: yes");
    symlink(ts, td.join("..data")).unwrap();
    for key in ["disk-key", "db-password", "config"] {
        symlink(format!("..data/{key}"), td.join(key)).unwrap();
    }
    let got = read_all(&td);
    assert_eq!(
        got,
        [
            ("db-password".to_string(), b"sealed.ddd\n".to_vec()),
            ("disk-key".to_string(), b"sealed.aaa.bbb.ccc".to_vec()),
        ]
    );
}

#[test]
fn real_subdirectories_sorted_and_prefix_matching() {
    let td = TestDir::new("tree");
    write(&td, "b/x", b"sealed.x");
    write(&td, "b/y", b"not sealed");
    write(&td, "a", b"sealed.a");
    write(&td, "a-b", b"sealed.");
    write(&td, "short", b"seal");
    write(&td, "empty", b"");
    write(&td, "upper", b"SEALED.x");
    write(&td, "..hidden", b"sealed.hidden");
    write(&td, "d/..meta/z", b"sealed.z");
    write(
        &td,
        "deep/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/x",
        b"sealed.deep",
    );
    let got = read_all(&td);
    assert_eq!(names(&got), ["a", "a-b", "b/x"]);
    assert_eq!(got[1].1, b"sealed.");
}

#[test]
fn symlinks_are_followed_only_inside_the_input_directory() {
    let td = TestDir::new("links");
    let outside = TestDir::new("links-outside");
    write(&outside, "secret", b"sealed.from-outside");
    let out_abs = outside.join("secret");
    let out_dir_name = Path::new(&outside.path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    write(&td, "ok", b"sealed.ok");
    write(&td, "sub/file", b"sealed.sub");
    // Inside: relative, through `..`, through an intermediate symlinked directory.
    symlink("../ok", td.join("sub/up")).unwrap();
    symlink("sub/file", td.join("direct")).unwrap();
    symlink("dirlink/file", td.join("via-dirlink")).unwrap();
    symlink("sub", td.join("dirlink")).unwrap();
    symlink("chain2", td.join("chain1")).unwrap();
    symlink("./sub/../sub/./up", td.join("chain2")).unwrap();
    // Outside: absolute, `..` above the root (directly or after descending), through an
    // intermediate link that escapes, and /proc magic.
    symlink(&out_abs, td.join("abs")).unwrap();
    symlink(format!("../{out_dir_name}/secret"), td.join("rel-escape")).unwrap();
    symlink(
        format!("sub/../../{out_dir_name}/secret"),
        td.join("deep-escape"),
    )
    .unwrap();
    symlink("..", td.join("parent")).unwrap();
    symlink("parent/escape", td.join("via-parent")).unwrap();
    symlink("/proc/self/root/etc/hostname", td.join("proc")).unwrap();
    // Neither: loops, dangling, a symlinked directory, a FIFO, a link to a FIFO.
    symlink("loop-b", td.join("loop-a")).unwrap();
    symlink("loop-a", td.join("loop-b")).unwrap();
    symlink("self", td.join("self")).unwrap();
    symlink("missing", td.join("dangling")).unwrap();
    symlink("ok/x", td.join("through-file")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        td.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    symlink("fifo", td.join("to-fifo")).unwrap();

    let got = read_all(&td);
    assert_eq!(
        names(&got),
        [
            "chain1",
            "chain2",
            "direct",
            "ok",
            "sub/file",
            "sub/up",
            "via-dirlink"
        ]
    );
    for (p, c) in &got {
        assert_ne!(c, b"sealed.from-outside", "{p} escaped");
    }
    let by_name = |n: &str| &got.iter().find(|(p, _)| p == n).unwrap().1;
    assert_eq!(by_name("chain1"), b"sealed.ok");
    assert_eq!(by_name("via-dirlink"), b"sealed.sub");
}

#[test]
fn oversize_sealed_file_is_an_error_naming_it() {
    let td = TestDir::new("big");
    let mut big = b"sealed.".to_vec();
    big.resize(64 * 1024 + 1, b'A');
    write(&td, "dir/big", &big);
    write(&td, "ok", b"sealed.fine");
    // Large files that are not sealed secrets are never read in full, so they are fine.
    write(&td, "plain-big", &vec![b'x'; 1 << 20]);
    let e = read_sealed_inputs(&td.path, &InputLimits::default()).unwrap_err();
    match &e {
        InputError::FileTooLarge { path, limit } => {
            assert!(path.ends_with("/dir/big"), "{path}");
            assert_eq!(*limit, 65536);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("dir/big"), "{e}");
    assert!(!format!("{e} {e:?}").contains("AAAA"));
    // Exactly at the limit is accepted.
    big.pop();
    write(&td, "dir/big", &big);
    let got = read_all(&td);
    assert_eq!(names(&got), ["dir/big", "ok"]);
    assert_eq!(got[0].1.len(), 65536);
}

#[test]
fn entry_and_total_limits() {
    let td = TestDir::new("limits");
    for i in 0..6 {
        write(&td, &format!("s{i}"), b"sealed.0123456789");
    }
    let limits = InputLimits {
        max_entries: 5,
        ..InputLimits::default()
    };
    let e = read_sealed_inputs(&td.path, &limits).unwrap_err();
    assert!(
        matches!(e, InputError::TooManyEntries { limit: 5, .. }),
        "{e}"
    );
    let limits = InputLimits {
        max_total_size: 50,
        ..InputLimits::default()
    };
    let e = read_sealed_inputs(&td.path, &limits).unwrap_err();
    assert!(
        matches!(e, InputError::TooMuchData { limit: 50, .. }),
        "{e}"
    );
    assert_eq!(read_all(&td).len(), 6);
}

#[test]
fn missing_input_directory_is_an_error() {
    let td = TestDir::new("missing");
    let e = read_sealed_inputs(&td.join("nope"), &InputLimits::default()).unwrap_err();
    assert!(
        matches!(
            e,
            InputError::Io {
                errno: Errno::NOENT,
                ..
            }
        ),
        "{e}"
    );
    // The input directory itself may be a symlink (it is configuration).
    write(&td, "real/k", b"sealed.k");
    symlink("real", td.join("link")).unwrap();
    let got = read_sealed_inputs(&td.join("link"), &InputLimits::default()).unwrap();
    assert_eq!(got.len(), 1);
}

/// Runs `f` on a thread and fails the test if it takes longer than `secs` (a blocked open
/// or a spinning read must fail the test, not hang it).
fn within_seconds<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("did not finish in time (blocked or spinning), or panicked")
}

fn mkfifo(path: &str) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

#[test]
fn a_fifo_without_a_writer_is_refused_without_blocking() {
    let td = TestDir::new("fifo-nowriter");
    write(&td, "ok", b"sealed.ok");
    mkfifo(&td.join("pipe"));
    mkfifo(&td.join("sub"));
    symlink("sub", td.join("to-fifo")).unwrap();
    let path = td.path.clone();
    let got = within_seconds(10, move || {
        read_sealed_inputs(&path, &InputLimits::default())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.as_str().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(got, ["ok"]);

    // A FIFO that replaced a regular file between the stat and the open (the race the
    // walk can not exclude): the open does not block, the fstat refuses it, nothing is
    // read.
    let path = td.path.clone();
    let kept = within_seconds(10, move || {
        let root = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let fd = open_file_nofollow(root.as_fd(), c"pipe").unwrap();
        let mut walker = Walker {
            root_path: path.clone(),
            root,
            limits: InputLimits::default(),
            entries: 0,
            total: 0,
            out: Vec::new(),
        };
        walker
            .consider(fd, RelPath::parse("pipe").unwrap())
            .unwrap();
        // A character device is refused the same way.
        let null = rustix::fs::open("/dev/null", OFlags::RDONLY, Mode::empty()).unwrap();
        walker
            .consider(null, RelPath::parse("null").unwrap())
            .unwrap();
        core::mem::take(&mut walker.out).len()
    });
    assert_eq!(kept, 0);
}

#[test]
fn eagain_ends_the_read_loop() {
    // A FIFO with a writer that writes nothing: a non-blocking read fails with EAGAIN
    // for ever. The read loop must give up, not spin.
    let td = TestDir::new("fifo-eagain");
    let fifo = td.join("pipe");
    mkfifo(&fifo);
    let err = within_seconds(10, move || {
        let rd = rustix::fs::open(
            fifo.as_str(),
            OFlags::RDONLY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .unwrap();
        let _wr = rustix::fs::open(
            fifo.as_str(),
            OFlags::WRONLY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .unwrap();
        let mut buf = [0u8; 7];
        read_full(rd.as_fd(), &mut buf)
    });
    assert_eq!(err, Err(Errno::AGAIN));
}
