//! End-to-end tests: the configfs-tsm procedure through plain `std::fs` calls on the mount.
//! They need root and `/dev/fuse`; without them they fail with the reason, never skip.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use common::*;
use tsm_fuse::{Errno, Stats};

fn nonce(seed: u8) -> [u8; 64] {
    std::array::from_fn(|i| seed.wrapping_add(i as u8))
}

/// The upstream guest-components procedure (guest-interfaces.md §3), step by step.
#[test]
fn upstream_procedure_sev() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    assert!(tsm.report_dir().is_dir());

    let entry = tsm.report_dir().join(".tmpA1b2C3");
    fs::create_dir(&entry).unwrap();
    assert_eq!(read_text(&entry.join("provider")), "sev_guest\n");
    assert_eq!(read_text(&entry.join("generation")), "0\n");

    fs::write(entry.join("inblob"), nonce(1)).unwrap();
    let outblob = fs::read(entry.join("outblob")).unwrap();
    assert_eq!(outblob, expected_outblob(&nonce(1), 0, 1));
    assert_eq!(read_text(&entry.join("generation")), "1\n");

    let auxblob = fs::read(entry.join("auxblob")).unwrap();
    assert_eq!(auxblob, expected_auxblob());
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    assert_eq!(fw.calls(), 1, "outblob and auxblob come from one report");

    fs::remove_dir(&entry).unwrap();
    assert!(!entry.exists());
    assert_eq!(
        tsm.stats(),
        Stats {
            entries_created: 1,
            entries_removed: 1,
            live_entries: 0,
            inblob_commits: 1,
            reports_generated: 1,
            report_failures: 0,
        }
    );
}

#[test]
fn attribute_sets_and_modes() {
    let tsm = mount(Some(FakeFirmware::snp()));
    let entry = tsm.report_dir().join("e");
    fs::create_dir(&entry).unwrap();
    let mut names: Vec<String> = fs::read_dir(&entry)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "auxblob",
            "generation",
            "inblob",
            "outblob",
            "privlevel",
            "privlevel_floor",
            "provider"
        ]
    );
    let mode = |n: &str| fs::metadata(entry.join(n)).unwrap().permissions().mode();
    assert_eq!(mode("inblob"), 0o100200);
    assert_eq!(mode("privlevel"), 0o100200);
    assert_eq!(mode("outblob"), 0o100444);
    assert_eq!(mode("auxblob"), 0o100444);
    assert_eq!(mode("generation"), 0o100444);
    assert_eq!(mode("provider"), 0o100444);
    assert_eq!(mode("privlevel_floor"), 0o100444);
    assert_eq!(fs::metadata(&entry).unwrap().permissions().mode(), 0o40755);
    assert_eq!(fs::metadata(entry.join("generation")).unwrap().size(), 4096);
    assert_eq!(fs::metadata(entry.join("outblob")).unwrap().size(), 0);
    assert_eq!(read_text(&entry.join("privlevel_floor")), "0\n");

    let root: Vec<String> = fs::read_dir(tsm.path())
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(root, ["report"]);
}

#[test]
fn tdx_entries_have_no_auxblob_or_privlevel() {
    let tsm = mount(Some(FakeFirmware::tdx()));
    let entry = tsm.report_dir().join("q");
    fs::create_dir(&entry).unwrap();
    let mut names: Vec<String> = fs::read_dir(&entry)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["generation", "inblob", "outblob", "provider"]);
    assert_eq!(read_text(&entry.join("provider")), "tdx_guest\n");
    assert_eq!(errno(fs::read(entry.join("auxblob"))), ENOENT);
    assert_eq!(errno(fs::write(entry.join("privlevel"), "0")), EACCES);
    fs::write(entry.join("inblob"), nonce(9)).unwrap();
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(9), 0, 1)
    );
    fs::remove_dir(&entry).unwrap();
}

#[test]
fn privlevel_write_bumps_generation() {
    let fw = Arc::new(FakeFirmware {
        floor: 1,
        ..Arc::into_inner(FakeFirmware::snp()).unwrap()
    });
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("p");
    fs::create_dir(&entry).unwrap();
    assert_eq!(read_text(&entry.join("privlevel_floor")), "1\n");

    // Refused values leave the generation alone.
    for (bad, want) in [
        ("0", EINVAL),           // below the floor
        ("4\n", EINVAL),         // above TSM_PRIVLEVEL_MAX
        ("x", EINVAL),           // not a number
        ("1\n\n", EINVAL),       // only one newline
        ("99999999999", ERANGE), // does not fit unsigned int
    ] {
        assert_eq!(
            errno(fs::write(entry.join("privlevel"), bad)),
            want,
            "{bad:?}"
        );
    }
    assert_eq!(read_text(&entry.join("generation")), "0\n");

    fs::write(entry.join("privlevel"), "0x2\n").unwrap();
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    fs::write(entry.join("inblob"), nonce(3)).unwrap();
    assert_eq!(read_text(&entry.join("generation")), "2\n");
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(3), 2, 2)
    );

    // Each write(2) on one open file is its own store.
    let mut f = OpenOptions::new()
        .write(true)
        .open(entry.join("privlevel"))
        .unwrap();
    f.write_all(b"3").unwrap();
    f.write_all(b"1\n").unwrap();
    drop(f);
    assert_eq!(read_text(&entry.join("generation")), "4\n");
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(3), 1, 4)
    );
}

#[test]
fn wrong_inblob_length_is_einval_from_provider() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("short");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), [0xab; 32]).unwrap();
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    assert_eq!(errno(fs::read(entry.join("outblob"))), EINVAL);
    assert_eq!(errno(fs::read(entry.join("auxblob"))), EINVAL);
    assert_eq!(fw.calls(), 2, "a failed report is not cached");
    assert_eq!(tsm.stats().report_failures, 2);

    // Fixing the inblob fixes the read.
    fs::write(entry.join("inblob"), nonce(0)).unwrap();
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(0), 0, 2)
    );
}

#[test]
fn outblob_before_inblob_is_einval() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("empty");
    fs::create_dir(&entry).unwrap();
    assert_eq!(errno(fs::read(entry.join("outblob"))), EINVAL);
    assert_eq!(errno(fs::read(entry.join("auxblob"))), EINVAL);
    assert_eq!(fw.calls(), 0, "the provider is not asked without an inblob");
}

#[test]
fn inblob_over_64_bytes_is_efbig_and_commits_what_was_buffered() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("big");
    fs::create_dir(&entry).unwrap();

    assert_eq!(errno(fs::write(entry.join("inblob"), [1u8; 65])), EFBIG);
    // configfs marks the file written before the size check, so release commits the
    // (empty) buffer: generation advances and the inblob is empty.
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    assert_eq!(errno(fs::read(entry.join("outblob"))), EINVAL);

    // Several writes on one open file accumulate up to 64 bytes, committed on close.
    let mut f = OpenOptions::new()
        .write(true)
        .open(entry.join("inblob"))
        .unwrap();
    f.write_all(&nonce(5)[..40]).unwrap();
    assert_eq!(
        read_text(&entry.join("generation")),
        "1\n",
        "not before close"
    );
    f.write_all(&nonce(5)[40..]).unwrap();
    assert_eq!(errno(f.write_all(&[0])), EFBIG);
    drop(f);
    assert_eq!(read_text(&entry.join("generation")), "2\n");
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(5), 0, 2)
    );
}

#[test]
fn no_provider_mkdir_is_enxio() {
    let tsm = mount(None);
    assert!(tsm.report_dir().is_dir());
    assert_eq!(errno(fs::create_dir(tsm.report_dir().join("x"))), ENXIO);
    assert_eq!(tsm.stats().entries_created, 0);

    // A provider registering later makes mkdir work.
    tsm.set_provider(Some(FakeFirmware::tdx())).unwrap();
    fs::create_dir(tsm.report_dir().join("x")).unwrap();
    // Registering over a provider, or with entries present, is refused as in the kernel.
    let err = tsm.set_provider(Some(FakeFirmware::snp())).unwrap_err();
    assert_eq!(err.raw_os_error(), None, "wrapped with a message: {err}");
    assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy);
}

#[test]
fn unregistered_provider_reads_enxio_but_cache_survives() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("u");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(2)).unwrap();
    let first = fs::read(entry.join("outblob")).unwrap();
    tsm.set_provider(None).unwrap();
    assert_eq!(errno(fs::read(entry.join("provider"))), ENXIO);
    assert_eq!(fs::read(entry.join("outblob")).unwrap(), first);
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    fs::write(entry.join("inblob"), nonce(3)).unwrap();
    assert_eq!(errno(fs::read(entry.join("outblob"))), ENXIO);
    assert_eq!(errno(fs::write(entry.join("privlevel"), "1")), ENXIO);
    fs::remove_dir(&entry).unwrap();
}

#[test]
fn concurrent_writer_is_visible_in_generation() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("raced");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(4)).unwrap();
    assert_eq!(tsm.bump_generation("raced").unwrap(), 2);
    let outblob = fs::read(entry.join("outblob")).unwrap();
    // The report was made for generation 2, and generation shows 2: upstream's check
    // (generation must be 1 after one inblob write) catches the race.
    assert_eq!(outblob, expected_outblob(&nonce(4), 0, 2));
    assert_eq!(read_text(&entry.join("generation")), "2\n");
    assert_eq!(
        tsm.bump_generation("missing").unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn outblob_is_cached_until_configuration_changes() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("cache");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(6)).unwrap();
    let a = fs::read(entry.join("outblob")).unwrap();
    let b = fs::read(entry.join("outblob")).unwrap();
    fs::read(entry.join("auxblob")).unwrap();
    read_text(&entry.join("generation"));
    assert_eq!(a, b);
    assert_eq!(fw.calls(), 1);

    fs::write(entry.join("inblob"), nonce(7)).unwrap();
    assert_eq!(fw.calls(), 1, "regeneration is lazy");
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(7), 0, 2)
    );
    assert_eq!(fw.calls(), 2);

    tsm.bump_generation("cache").unwrap();
    fs::read(entry.join("auxblob")).unwrap();
    fs::read(entry.join("outblob")).unwrap();
    assert_eq!(fw.calls(), 3);
    assert_eq!(tsm.stats().reports_generated, 3);
}

#[test]
fn open_file_snapshots_its_blob() {
    let tsm = mount(Some(FakeFirmware::snp()));
    let entry = tsm.report_dir().join("snap");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(10)).unwrap();
    let mut f = File::open(entry.join("outblob")).unwrap();
    let mut head = [0u8; 7];
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"REPORT:");
    // A new configuration does not change what this open file reads.
    fs::write(entry.join("inblob"), nonce(11)).unwrap();
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    assert_eq!(
        [&head[..], &rest].concat(),
        expected_outblob(&nonce(10), 0, 1)
    );
    // A fresh open sees the new one.
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(11), 0, 2)
    );
}

#[test]
fn unlink_create_and_misplaced_operations_are_refused() {
    let tsm = mount(Some(FakeFirmware::snp()));
    let report = tsm.report_dir();
    let entry = report.join("ro");
    fs::create_dir(&entry).unwrap();

    assert_eq!(errno(fs::remove_file(entry.join("inblob"))), EPERM);
    assert_eq!(errno(fs::remove_file(entry.join("outblob"))), EPERM);
    assert_eq!(errno(File::create(entry.join("newfile"))), EACCES);
    assert_eq!(errno(File::create(report.join("newfile"))), EACCES);
    assert_eq!(errno(fs::create_dir(entry.join("nested"))), EPERM);
    assert_eq!(errno(fs::create_dir(tsm.path().join("other"))), EPERM);
    assert_eq!(errno(fs::create_dir(&entry)), EEXIST);
    assert_eq!(errno(fs::remove_dir(&report)), EPERM);
    assert_eq!(errno(fs::remove_dir(entry.join("inblob"))), ENOTDIR);
    assert_eq!(errno(fs::remove_dir(report.join("nope"))), ENOENT);
    assert_eq!(
        errno(fs::rename(entry.join("inblob"), entry.join("x"))),
        EPERM
    );
    assert_eq!(errno(fs::rename(&entry, report.join("renamed"))), EPERM);
    assert_eq!(
        errno(std::os::unix::fs::symlink("inblob", entry.join("l"))),
        EPERM
    );
    assert_eq!(
        errno(fs::hard_link(entry.join("inblob"), entry.join("h"))),
        EPERM
    );

    // configfs checks the attribute's own mode, even for root.
    assert_eq!(errno(fs::read(entry.join("inblob"))), EACCES);
    assert_eq!(errno(fs::read(entry.join("privlevel"))), EACCES);
    assert_eq!(errno(fs::write(entry.join("outblob"), b"x")), EACCES);
    assert_eq!(errno(fs::write(entry.join("generation"), b"5")), EACCES);
    assert_eq!(
        errno(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(entry.join("inblob"))
        ),
        EACCES
    );
    // Truncation on open is accepted (File::create on an existing attribute).
    File::create(entry.join("inblob")).unwrap();

    // The entry is intact after all that.
    assert_eq!(read_text(&entry.join("provider")), "sev_guest\n");
    fs::remove_dir(&entry).unwrap();
}

#[test]
fn rmdir_cleans_up_and_names_can_be_reused() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("again");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(1)).unwrap();
    fs::read(entry.join("outblob")).unwrap();
    fs::remove_dir(&entry).unwrap();
    assert_eq!(fs::read_dir(tsm.report_dir()).unwrap().count(), 0);
    assert_eq!(errno(fs::read(entry.join("outblob"))), ENOENT);

    // A new entry of the same name starts from scratch.
    fs::create_dir(&entry).unwrap();
    assert_eq!(read_text(&entry.join("generation")), "0\n");
    assert_eq!(errno(fs::read(entry.join("outblob"))), EINVAL);
    fs::remove_dir(&entry).unwrap();
    let s = tsm.stats();
    assert_eq!(
        (s.entries_created, s.entries_removed, s.live_entries),
        (2, 2, 0)
    );
}

#[test]
fn file_open_across_rmdir_reads_enoent() {
    let tsm = mount(Some(FakeFirmware::snp()));
    let entry = tsm.report_dir().join("gone");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(8)).unwrap();
    let mut out = File::open(entry.join("outblob")).unwrap();
    let mut inb = OpenOptions::new()
        .write(true)
        .open(entry.join("inblob"))
        .unwrap();
    inb.write_all(&nonce(9)).unwrap();
    fs::remove_dir(&entry).unwrap();
    let mut buf = Vec::new();
    assert_eq!(errno(out.read_to_end(&mut buf)), ENOENT);
    drop(inb); // the pending commit goes nowhere
    assert_eq!(tsm.stats().inblob_commits, 1);
}

#[test]
fn several_entries_are_independent() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let a = tsm.report_dir().join("a");
    let b = tsm.report_dir().join("b");
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    fs::write(a.join("inblob"), nonce(1)).unwrap();
    fs::write(b.join("privlevel"), "2").unwrap();
    fs::write(b.join("inblob"), nonce(2)).unwrap();
    fs::write(b.join("inblob"), nonce(3)).unwrap();
    assert_eq!(read_text(&a.join("generation")), "1\n");
    assert_eq!(read_text(&b.join("generation")), "3\n");
    assert_eq!(
        fs::read(a.join("outblob")).unwrap(),
        expected_outblob(&nonce(1), 0, 1)
    );
    assert_eq!(
        fs::read(b.join("outblob")).unwrap(),
        expected_outblob(&nonce(3), 2, 3)
    );
    tsm.bump_generation("a").unwrap();
    assert_eq!(read_text(&b.join("generation")), "3\n");
    let mut listing: Vec<String> = fs::read_dir(tsm.report_dir())
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    listing.sort();
    assert_eq!(listing, ["a", "b"]);
    fs::remove_dir(&a).unwrap();
    assert_eq!(read_text(&b.join("generation")), "3\n");
    fs::remove_dir(&b).unwrap();
}

#[test]
fn provider_errors_propagate_and_are_retried() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("err");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(1)).unwrap();
    fw.fail_with(Some(Errno::IO));
    assert_eq!(errno(fs::read(entry.join("outblob"))), EIO);
    fw.fail_with(Some(Errno::NXIO));
    assert_eq!(errno(fs::read(entry.join("auxblob"))), ENXIO);
    fw.fail_with(Some(Errno::BUSY));
    assert_eq!(errno(fs::read(entry.join("outblob"))), EBUSY);
    fw.fail_with(None);
    assert_eq!(
        fs::read(entry.join("outblob")).unwrap(),
        expected_outblob(&nonce(1), 0, 1)
    );
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    let s = tsm.stats();
    assert_eq!((s.report_failures, s.reports_generated), (3, 1));
}

#[test]
fn empty_and_oversized_blobs() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let entry = tsm.report_dir().join("sizes");
    fs::create_dir(&entry).unwrap();
    *fw.aux.lock().unwrap() = Some(Vec::new());
    fs::write(entry.join("inblob"), nonce(1)).unwrap();
    assert_eq!(fs::read(entry.join("auxblob")).unwrap(), b"");

    *fw.aux.lock().unwrap() = Some(vec![0x5a; 32 * 1024 + 1]);
    tsm.bump_generation("sizes").unwrap();
    assert_eq!(errno(fs::read(entry.join("auxblob"))), EFBIG);
    // outblob of the same report is fine.
    fs::read(entry.join("outblob")).unwrap();

    let big = vec![0xa5; 32 * 1024];
    *fw.aux.lock().unwrap() = Some(big.clone());
    tsm.bump_generation("sizes").unwrap();
    assert_eq!(fs::read(entry.join("auxblob")).unwrap(), big);
}

struct PanickingProvider;
impl tsm_fuse::Provider for PanickingProvider {
    fn name(&self) -> &str {
        "sev_guest"
    }
    fn report(&self, _: &tsm_fuse::ReportRequest<'_>) -> Result<tsm_fuse::Report, Errno> {
        panic!("simulated firmware bug");
    }
}

#[test]
fn panicking_provider_reads_eio_and_mount_survives() {
    let tsm = mount(Some(Arc::new(PanickingProvider)));
    let entry = tsm.report_dir().join("p");
    fs::create_dir(&entry).unwrap();
    fs::write(entry.join("inblob"), nonce(1)).unwrap();
    assert_eq!(errno(fs::read(entry.join("outblob"))), EIO);
    assert_eq!(read_text(&entry.join("generation")), "1\n");
    fs::remove_dir(&entry).unwrap();
}

#[test]
fn many_threads_at_once() {
    let fw = FakeFirmware::snp();
    let tsm = mount(Some(fw.clone()));
    let report = tsm.report_dir();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let report = &report;
            s.spawn(move || {
                for round in 0..10u8 {
                    let entry = report.join(format!("t{t}-r{round}"));
                    fs::create_dir(&entry).unwrap();
                    assert_eq!(read_text(&entry.join("provider")), "sev_guest\n");
                    let n = nonce(t.wrapping_mul(31).wrapping_add(round));
                    fs::write(entry.join("inblob"), n).unwrap();
                    assert_eq!(
                        fs::read(entry.join("outblob")).unwrap(),
                        expected_outblob(&n, 0, 1)
                    );
                    assert_eq!(read_text(&entry.join("generation")), "1\n");
                    assert_eq!(fs::read(entry.join("auxblob")).unwrap(), expected_auxblob());
                    fs::remove_dir(&entry).unwrap();
                }
            });
        }
    });
    let s = tsm.stats();
    assert_eq!(
        (s.entries_created, s.entries_removed, s.live_entries),
        (80, 80, 0)
    );
    assert_eq!(s.reports_generated, 80);
    assert_eq!(fw.calls(), 80);
}
