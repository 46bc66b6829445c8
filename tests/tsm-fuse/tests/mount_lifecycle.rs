//! Mounting, unmounting and failure reporting.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use common::*;
use tsm_fuse::TsmMount;

fn is_mounted(dir: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let dir = dir.to_str().expect("utf-8 path");
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(dir))
}

#[test]
fn drop_unmounts_and_removes_temp_dir() {
    let tsm = mount(Some(FakeFirmware::snp()));
    let dir = tsm.path().to_path_buf();
    assert!(is_mounted(&dir));
    fs::create_dir(tsm.report_dir().join("left-behind")).unwrap();
    drop(tsm);
    assert!(!is_mounted(&dir));
    assert!(!dir.exists());
}

#[test]
fn mount_on_caller_directory_keeps_it() {
    let dir = std::env::temp_dir().join(format!("tsm-fuse-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    {
        let tsm = TsmMount::mount(&dir, Some(FakeFirmware::tdx()))
            .unwrap_or_else(|e| panic!("cannot mount the configfs-tsm emulation: {e}"));
        assert_eq!(tsm.report_dir(), dir.join("report"));
        assert!(tsm.report_dir().is_dir());
    }
    assert!(!is_mounted(&dir));
    assert!(dir.is_dir());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    fs::remove_dir(&dir).unwrap();
}

#[test]
fn panic_in_test_still_unmounts() {
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tsm = mount(Some(FakeFirmware::snp()));
        seen = Some(tsm.path().to_path_buf());
        let _open = fs::File::open(tsm.report_dir()).unwrap();
        panic!("test failure while mounted");
    }));
    assert!(result.is_err());
    let dir = seen.unwrap();
    assert!(!is_mounted(&dir));
}

#[test]
fn drop_with_open_file_does_not_hang() {
    let tsm = mount(Some(FakeFirmware::snp()));
    let entry = tsm.report_dir().join("busy");
    fs::create_dir(&entry).unwrap();
    let open = fs::File::open(entry.join("generation")).unwrap();
    let dir = tsm.path().to_path_buf();
    let started = std::time::Instant::now();
    drop(tsm);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(!is_mounted(&dir));
    // The detached file system still serves the open file until it is closed.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &open, &mut text).unwrap();
    assert_eq!(text, "0\n");
    drop(open);
}

#[test]
fn missing_mount_point_is_a_clear_error() {
    let err = TsmMount::mount(Path::new("/nonexistent/tsm-fuse"), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let msg = err.to_string();
    assert!(msg.contains("mount point /nonexistent/tsm-fuse"), "{msg}");

    let file = std::env::temp_dir().join(format!("tsm-fuse-file-{}", std::process::id()));
    fs::write(&file, b"").unwrap();
    let err = TsmMount::mount(&file, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    fs::remove_file(&file).unwrap();
}

#[test]
fn two_mounts_are_separate() {
    let a = mount(Some(FakeFirmware::snp()));
    let b = mount(Some(FakeFirmware::tdx()));
    fs::create_dir(a.report_dir().join("x")).unwrap();
    fs::create_dir(b.report_dir().join("x")).unwrap();
    assert_eq!(read_text(&a.report_dir().join("x/provider")), "sev_guest\n");
    assert_eq!(read_text(&b.report_dir().join("x/provider")), "tdx_guest\n");
}
