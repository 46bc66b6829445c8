//! Known-answer tests of sealgate-core's LUKS2 support on volumes made by the real
//! `cryptsetup luksFormat --type luks2` (Debian's `cryptsetup-bin`, installed by
//! scripts/setup) on regular files: the header is parsed, the keyslot opened with the
//! passphrase, and the volume key compared with `cryptsetup luksDump --dump-volume-key`.
//!
//! PBKDF2 (SHA-256, SHA-512), argon2i and argon2id, 256- and 512-bit keys, 512- and
//! 4096-byte sectors, several keyslots with priorities, a damaged header copy, and
//! cryptsetup's default parameters (argon2id at its benchmarked cost, up to 1 GiB).
//! The KDF costs are small elsewhere: the passphrase from the KBS is high-entropy.
//!
//! Needs root (cryptsetup's locking directory) and cryptsetup: without either the tests
//! fail, they never skip. No device-mapper is needed: nothing is mapped.

use sealgate_core::volume::kdf::KdfLimits;
use sealgate_core::volume::luks2::{self, Copy, Header, HeaderNote, OpenError};
use sealgate_core::volume::{Cipher, SegmentSize};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSPHRASE: &[u8] = b"kbs-resource: 7f3a9c1e5b2d4f6a8c0e2b4d6f8a1c3e";
const OTHER: &[u8] = b"a second, different passphrase 0c4e";

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("sealgate-luks2-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn cryptsetup(args: &[&str]) -> String {
    let out = Command::new("cryptsetup")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run cryptsetup ({e}): scripts/setup installs cryptsetup-bin")
        });
    assert!(
        out.status.success(),
        "cryptsetup {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn require_root() {
    let out = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the LUKS2 known-answer tests run cryptsetup and must run as root"
    );
}

/// A LUKS2 volume image made by cryptsetup.
struct Volume {
    scratch: Scratch,
    image: PathBuf,
}

impl Volume {
    /// `cryptsetup luksFormat --type luks2 <opts>` on a fresh file of `mib` MiB.
    fn format(name: &str, mib: u64, opts: &[&str]) -> Volume {
        require_root();
        let scratch = Scratch::new(name);
        let image = scratch.path("disk.img");
        let f = fs::File::create(&image).unwrap();
        f.set_len(mib << 20).unwrap();
        drop(f);
        let key = scratch.path("pass");
        fs::write(&key, PASSPHRASE).unwrap();
        let mut args = vec!["luksFormat", "--batch-mode", "--type", "luks2"];
        args.extend_from_slice(opts);
        args.push(image.to_str().unwrap());
        args.push(key.to_str().unwrap());
        cryptsetup(&args);
        Volume { scratch, image }
    }

    fn img(&self) -> &str {
        self.image.to_str().unwrap()
    }

    /// The volume key as cryptsetup shows it.
    fn cryptsetup_key(&self) -> Vec<u8> {
        let key = self.scratch.path("pass");
        let dump = cryptsetup(&[
            "luksDump",
            "--batch-mode",
            "--dump-volume-key",
            "--key-file",
            key.to_str().unwrap(),
            self.img(),
        ]);
        parse_key_dump(&dump)
    }

    fn add_key(&self, passphrase: &[u8], opts: &[&str]) {
        let old = self.scratch.path("pass");
        let new = self.scratch.path("new");
        fs::write(&new, passphrase).unwrap();
        let mut args = vec![
            "luksAddKey",
            "--batch-mode",
            "--key-file",
            old.to_str().unwrap(),
        ];
        args.extend_from_slice(opts);
        args.push(self.img());
        args.push(new.to_str().unwrap());
        cryptsetup(&args);
    }

    fn device_size(&self) -> u64 {
        fs::metadata(&self.image).unwrap().len()
    }

    fn header(&self) -> Header {
        header_of(&self.image)
    }

    fn open(&self, passphrase: &[u8], limits: &KdfLimits) -> Result<luks2::Opened, OpenError> {
        let header = self.header();
        let file = fs::File::open(&self.image).unwrap();
        luks2::open(&header, passphrase, limits, |offset, len| {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        })
    }
}

fn header_of(image: &Path) -> Header {
    let mut file = fs::File::open(image).unwrap();
    let device_size = file.metadata().unwrap().len();
    let mut start = vec![0u8; 4096];
    file.read_exact(&mut start).unwrap();
    let len = luks2::metadata_read_len(&start, device_size);
    let mut metadata = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_exact(&mut metadata).unwrap();
    Header::parse(&metadata, device_size).unwrap_or_else(|e| panic!("{e}"))
}

/// The hex bytes after "MK dump:" (continuation lines are indented hex).
fn parse_key_dump(dump: &str) -> Vec<u8> {
    let start = dump
        .find("MK dump:")
        .unwrap_or_else(|| panic!("no MK dump in luksDump output:\n{dump}"));
    let mut key = Vec::new();
    for (i, line) in dump[start + "MK dump:".len()..].lines().enumerate() {
        let line = line.trim();
        let hex: Vec<&str> = line.split_whitespace().collect();
        if hex.is_empty()
            || !hex
                .iter()
                .all(|h| h.len() == 2 && u8::from_str_radix(h, 16).is_ok())
        {
            if i == 0 {
                continue;
            }
            break;
        }
        key.extend(hex.iter().map(|h| u8::from_str_radix(h, 16).unwrap()));
    }
    assert!(
        key.len() == 32 || key.len() == 64,
        "MK dump parsed to {} bytes",
        key.len()
    );
    key
}

/// Small test costs well inside the limits.
fn test_limits() -> KdfLimits {
    KdfLimits::DEFAULT
}

fn check(v: &Volume, key_bits: usize, sector: u32) -> Header {
    let header = v.header();
    assert_eq!(
        header.uuid(),
        cryptsetup(&["luksUUID", v.img()]).trim(),
        "UUID"
    );
    assert!(header.notes().is_empty(), "{:?}", header.notes());
    assert_eq!(header.copy_used(), Copy::Primary);
    let seg = header.segment();
    assert_eq!(seg.cipher, Cipher::AesXtsPlain64);
    assert_eq!(seg.key_bytes * 8, key_bits);
    assert_eq!(seg.sector_size, sector);
    assert_eq!(seg.size, SegmentSize::Dynamic);
    assert_eq!(seg.iv_tweak, 0);
    // cryptsetup puts the data after 16 MiB of metadata by default.
    assert_eq!(seg.offset_bytes, 16 << 20);
    let opened = v
        .open(PASSPHRASE, &test_limits())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened.slot, 0);
    assert_eq!(
        opened.key.as_bytes(),
        v.cryptsetup_key().as_slice(),
        "volume key"
    );
    // The same through the single-keyslot call.
    let (offset, len) = header.keyslot_area(0).unwrap();
    let mut area = vec![0u8; len];
    fs::File::open(&v.image)
        .unwrap()
        .read_exact_at(&mut area, offset)
        .unwrap();
    let key = luks2::open_keyslot(&header, 0, &area, PASSPHRASE, &test_limits()).unwrap();
    assert_eq!(key.as_bytes(), opened.key.as_bytes());
    // And through the one-call unlock, reading the device itself.
    let file = fs::File::open(&v.image).unwrap();
    let unlocked = luks2::unlock(
        v.device_size(),
        PASSPHRASE,
        &test_limits(),
        |offset, len| {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        },
    )
    .unwrap();
    assert_eq!((unlocked.slot, unlocked.header.uuid()), (0, header.uuid()));
    assert_eq!(unlocked.key.as_bytes(), opened.key.as_bytes());
    // A wrong passphrase is "keyslot did not open", naming the slot.
    let err = v.open(b"not the passphrase", &test_limits()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("keyslot did not open"), "{msg}");
    assert!(msg.contains("keyslot 0"), "{msg}");
    assert!(!msg.contains("not the passphrase"), "{msg}");
    header
}

#[test]
fn pbkdf2_sha256_512bit_key_512_sectors() {
    let v = Volume::format(
        "pbkdf2-256",
        20,
        &[
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--hash",
            "sha256",
            "--key-size",
            "512",
            "--sector-size",
            "512",
        ],
    );
    check(&v, 512, 512);
}

#[test]
fn pbkdf2_sha512_256bit_key_4096_sectors() {
    let v = Volume::format(
        "pbkdf2-512",
        20,
        &[
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--hash",
            "sha512",
            "--key-size",
            "256",
            "--sector-size",
            "4096",
        ],
    );
    let h = check(&v, 256, 4096);
    assert_eq!(
        h.segment()
            .crypt_params(":32:logon:cryptsetup:x-d0", "/dev/vdb"),
        "aes-xts-plain64 :32:logon:cryptsetup:x-d0 0 /dev/vdb 32768 1 sector_size:4096"
    );
}

#[test]
fn argon2i_small_cost() {
    let v = Volume::format(
        "argon2i",
        20,
        &[
            "--pbkdf",
            "argon2i",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32",
            "--pbkdf-parallel",
            "1",
            "--key-size",
            "512",
            "--sector-size",
            "512",
        ],
    );
    check(&v, 512, 512);
}

#[test]
fn argon2id_small_cost_four_lanes_4096_sectors() {
    let v = Volume::format(
        "argon2id",
        20,
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "1024",
            "--pbkdf-parallel",
            "4",
            "--key-size",
            "256",
            "--hash",
            "sha512",
            "--sector-size",
            "4096",
        ],
    );
    check(&v, 256, 4096);
}

/// `cryptsetup luksFormat --type luks2 file keyfile` and nothing else: argon2id with the
/// cost cryptsetup benchmarks (2 s, up to 1 GiB, up to 4 lanes), 512-bit key, 4096-byte
/// sectors on a regular file. Opens within the default limits.
#[test]
fn cryptsetup_defaults() {
    let v = Volume::format("defaults", 20, &[]);
    let header = check(&v, 512, 4096);
    let ks = header.keyslot(0).unwrap();
    assert_eq!(ks.kdf.name(), "argon2id");
    eprintln!("cryptsetup's default keyslot KDF here: {:?}", ks.kdf);
}

#[test]
fn priorities_and_several_keyslots() {
    let v = Volume::format(
        "slots",
        20,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    v.add_key(
        OTHER,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let h = v.header();
    assert_eq!(h.open_order(), vec![0, 1]);
    let expected = v.cryptsetup_key();
    let opened = v.open(OTHER, &test_limits()).unwrap();
    assert_eq!(opened.slot, 1);
    assert_eq!(opened.key.as_bytes(), expected.as_slice());
    // Prefer slot 1: it is tried first. Ignore slot 0: never tried.
    cryptsetup(&["config", "--priority", "prefer", "--key-slot", "1", v.img()]);
    assert_eq!(v.header().open_order(), vec![1, 0]);
    cryptsetup(&["config", "--priority", "ignore", "--key-slot", "0", v.img()]);
    assert_eq!(v.header().open_order(), vec![1]);
    let err = v.open(PASSPHRASE, &test_limits()).unwrap_err().to_string();
    assert!(err.starts_with("keyslot did not open"), "{err}");
    assert!(err.contains("wrong passphrase for keyslot 1"), "{err}");
    assert!(err.contains("priority-0 keyslots not tried: 0"), "{err}");
}

#[test]
fn kdf_over_the_limits_is_refused_before_running() {
    let v = Volume::format(
        "limits",
        20,
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "65536",
            "--pbkdf-parallel",
            "1",
        ],
    );
    let limits = KdfLimits {
        max_memory_kib: 32768,
        ..KdfLimits::DEFAULT
    };
    let err = v.open(PASSPHRASE, &limits).unwrap_err().to_string();
    assert!(
        err.contains("keyslot 0: argon2 memory (KiB) 65536 is over the limit 32768"),
        "{err}"
    );
}

/// A damaged copy: the other is used, with a note (cryptsetup would repair it). Both
/// damaged: refused.
#[test]
fn damaged_header_copies() {
    let v = Volume::format(
        "damaged",
        20,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let key = v.cryptsetup_key();
    let hdr_size = v.header().hdr_size();
    let flip = |at: u64| {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&v.image)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x20;
        f.write_all_at(&b, at).unwrap();
    };
    // The primary's JSON area.
    flip(4096 + 10);
    let h = v.header();
    assert_eq!(h.copy_used(), Copy::Secondary);
    assert!(
        matches!(
            h.notes(),
            [HeaderNote::CopyInvalid {
                copy: Copy::Primary,
                ..
            }]
        ),
        "{:?}",
        h.notes()
    );
    assert_eq!(
        v.open(PASSPHRASE, &test_limits()).unwrap().key.as_bytes(),
        key.as_slice()
    );
    // And the secondary's: nothing left (the secondary's error is the one at the size
    // the primary declares).
    flip(hdr_size + 4096 + 10);
    let mut metadata = vec![0u8; (2 * hdr_size) as usize];
    fs::File::open(&v.image)
        .unwrap()
        .read_exact_at(&mut metadata, 0)
        .unwrap();
    let err = Header::parse(&metadata, v.device_size())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no valid LUKS2 header: primary: checksum mismatch; secondary: checksum mismatch"
    );
}

/// The label and subsystem of the binary header; a token (here cryptsetup's own
/// `luks2-keyring`) does not stand in the way of a passphrase and is named when no
/// keyslot opens.
#[test]
fn label_subsystem_and_tokens() {
    let v = Volume::format(
        "tokens",
        20,
        &[
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--label",
            "sealgate-data",
            "--subsystem",
            "kbs",
        ],
    );
    cryptsetup(&[
        "token",
        "add",
        "--key-description",
        "sealgate:test",
        v.img(),
    ]);
    let h = v.header();
    assert_eq!(h.label(), "sealgate-data");
    assert_eq!(h.subsystem(), "kbs");
    assert_eq!(h.tokens(), &["luks2-keyring".to_string()]);
    assert_eq!(
        v.open(PASSPHRASE, &test_limits()).unwrap().key.as_bytes(),
        v.cryptsetup_key().as_slice()
    );
    let err = v.open(OTHER, &test_limits()).unwrap_err().to_string();
    assert_eq!(
        err,
        "keyslot did not open: wrong passphrase for keyslot 0; tokens present but not run \
         by sealgate: luks2-keyring"
    );
}

fn parse_err(image: &Path) -> String {
    let bytes = fs::read(image).unwrap();
    let len = luks2::metadata_read_len(&bytes, bytes.len() as u64) as usize;
    Header::parse(&bytes[..len], bytes.len() as u64)
        .unwrap_err()
        .to_string()
}

/// `cryptsetup reencrypt --init-only`: a reencryption in progress is refused by name.
#[test]
fn reencryption_in_progress_is_refused() {
    let v = Volume::format(
        "reencrypt",
        40,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let key = v.scratch.path("pass");
    cryptsetup(&[
        "reencrypt",
        "--init-only",
        "--batch-mode",
        "--key-file",
        key.to_str().unwrap(),
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        v.img(),
    ]);
    assert_eq!(
        parse_err(&v.image),
        "unsupported LUKS2 volume: mandatory requirements [\"online-reencrypt-v2\"] \
         (reencryption in progress or a feature sealgate does not implement; finish it with \
         cryptsetup)"
    );
}

/// `luksFormat --header`: the header file alone is refused as a detached header; and a
/// LUKS1 volume is refused as LUKS1.
#[test]
fn detached_headers_and_luks1_are_refused() {
    require_root();
    let s = Scratch::new("detached");
    let (hdr, data, l1, pass) = (s.path("hdr"), s.path("data"), s.path("l1"), s.path("pass"));
    fs::write(&pass, PASSPHRASE).unwrap();
    for (p, mib) in [(&hdr, 16u64), (&data, 8), (&l1, 8)] {
        fs::File::create(p).unwrap().set_len(mib << 20).unwrap();
    }
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    cryptsetup(&[
        "luksFormat",
        "--batch-mode",
        "--type",
        "luks2",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--header",
        &path(&hdr),
        &path(&data),
        &path(&pass),
    ]);
    let err = parse_err(&hdr);
    assert!(err.contains("a detached header"), "{err}");
    // The data device has no header at all.
    let err = parse_err(&data);
    assert!(
        err.starts_with("no valid LUKS2 header: primary: no LUKS2 magic"),
        "{err}"
    );
    cryptsetup(&[
        "luksFormat",
        "--batch-mode",
        "--type",
        "luks1",
        "--pbkdf-force-iterations",
        "1000",
        &path(&l1),
        &path(&pass),
    ]);
    let err = parse_err(&l1);
    assert!(
        err.starts_with("no valid LUKS2 header: primary: LUKS1 header (only LUKS2 is supported)"),
        "{err}"
    );
}

/// SHA-384 everywhere (keyslot PBKDF2, anti-forensic hash, digest: `--hash`), and a keyslot
/// area key of another size than the volume key (`--keyslot-cipher` with
/// `--keyslot-key-size`, which cryptsetup takes only together).
#[test]
fn sha384_and_a_smaller_keyslot_key() {
    let v = Volume::format(
        "sha384",
        20,
        &[
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--hash",
            "sha384",
            "--key-size",
            "512",
            "--keyslot-cipher",
            "aes-xts-plain64",
            "--keyslot-key-size",
            "256",
            "--sector-size",
            "512",
        ],
    );
    let h = check(&v, 512, 512);
    let ks = h.keyslot(0).unwrap();
    assert_eq!((ks.key_bytes, ks.area_key_bytes), (64, 32));
    assert_eq!(ks.af_hash.name(), "sha384");
    assert_eq!(h.digest().hash.name(), "sha384");
}

/// Non-default metadata and keyslots sizes and a data offset (`--luks2-metadata-size`,
/// `--luks2-keyslots-size`, `--offset`): a 64 KiB header pair, a 1 MiB keyslots region.
#[test]
fn larger_header_and_explicit_offsets() {
    let v = Volume::format(
        "sizes",
        20,
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "256",
            "--pbkdf-parallel",
            "1",
            "--luks2-metadata-size",
            "64k",
            "--luks2-keyslots-size",
            "1m",
            "--offset",
            "4096",
        ],
    );
    let h = v.header();
    assert_eq!(h.hdr_size(), 64 << 10);
    assert_eq!(h.keyslots_size(), 1 << 20);
    assert_eq!(h.segment().offset_bytes, 4096 * 512);
    let (offset, _) = h.keyslot_area(0).unwrap();
    assert!((2 * (64 << 10)..2 * (64 << 10) + (1 << 20)).contains(&offset));
    assert_eq!(
        v.open(PASSPHRASE, &test_limits()).unwrap().key.as_bytes(),
        v.cryptsetup_key().as_slice()
    );
}
