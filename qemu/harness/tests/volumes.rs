//! Encrypted volumes under QEMU: sealgate as PID 1 opens disks made on the host by the
//! real cryptsetup (LUKS2, `cryptsetup reencrypt --encrypt` over an ext4 image that
//! `mke2fs -d` filled, so the host needs no device-mapper) with keys from the test KBS,
//! through the guest kernel's device-mapper and dm-crypt, and mounts them.
//!
//! - a LUKS2 data disk (argon2id, 4096-byte sectors) found by its UUID, and a plain
//!   dm-crypt disk (4096-byte sectors too: the same ciphertext with its header wiped, the
//!   volume key as the KBS resource): the report
//!   shows the SHA-256 of a known file read from each mounted volume, and the
//!   device-mapper table as the kernel prints it holds a keyring reference, never the key;
//! - a LUKS2 root disk (PBKDF2) entered by `switch_root`: the next init on it (guest-sim as
//!   `/sbin/next-stage`) reports its root, the moved mounts and the secrets;
//! - a wrong passphrase: fails closed with "keyslot did not open", no report, no next
//!   stage; a wrong plain key: the mount fails, the mapped device is removed, fails closed.

use sealgate_qemu::console::{field, tagged};
use sealgate_qemu::disk::{LuksDisk as Disk, run_checked};
use sealgate_qemu::report::sha256_hex;
use sealgate_qemu::{Artifacts, Boot, Vm, VmConfig, image, work_dir};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use test_kbs::{Config, Server, Stats, Verifiers};

const HELLO: &[u8] = b"hello from the encrypted volume\n";
const BIG_LEN: usize = 300_000;
const KEY1: &[u8] = b"an ordinary secret next to the volumes";
const PASSPHRASE: &[u8] = b"a high-entropy passphrase from the KBS: 4f0c9a7d2e61b8";
const NEXT_STAGE_MARKER: &str = "GUEST-SIM-NEXT-STAGE-RAN";

fn big() -> Vec<u8> {
    (0..BIG_LEN).map(|i| (i * 7 % 251) as u8).collect()
}

/// A LUKS2 disk made by cryptsetup around an ext4 filesystem holding `files`, with the
/// test's passphrase.
fn make_luks(dir: &Path, name: &str, files: &[(&str, &[u8], u32)], kdf: &[&str]) -> Disk {
    sealgate_qemu::disk::make_luks(dir, name, files, PASSPHRASE, kdf)
}

/// A plain dm-crypt disk: a copy of `luks` with its header region zeroed.
fn make_plain(dir: &Path, luks: &Disk) -> PathBuf {
    let image = dir.join("plain.img");
    std::fs::copy(&luks.image, &image).unwrap();
    use std::io::{Seek, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&vec![0u8; luks.data_offset as usize]).unwrap();
    image
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_kbs(port: u16, resources: &[(&str, &[u8])]) -> Server {
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::start(Config {
        listen,
        verifiers: Verifiers::sim(b"sealgate test roots"),
        ..Config::default()
    })
    .expect("test KBS");
    for (name, value) in resources {
        server.add_resource(name, *value).unwrap();
    }
    server
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Outcome {
    boot: Boot,
    stats: Stats,
}

impl Outcome {
    fn ctx(&self) -> String {
        format!(
            "status {:?} after {:?}; KBS {:?}\n--- console ---\n{}",
            self.boot.status, self.boot.elapsed, self.stats, self.boot.console
        )
    }

    /// The `SEALGATE-REPORT <record>` lines whose `name=` is `name`.
    fn records(&self, record: &str, name: &str) -> Vec<String> {
        tagged(&self.boot.console, "SEALGATE-REPORT ")
            .into_iter()
            .filter(|l| l.split_whitespace().next() == Some(record))
            .filter(|l| field(l, "name") == Some(name))
            .map(String::from)
            .collect()
    }

    /// No secret of the run reached the console.
    fn assert_no_secret_on_console(&self, keys: &[&[u8]]) {
        for k in keys {
            let h = hex(k);
            assert!(
                !self.boot.console.contains(&h),
                "a key in hex on the console"
            );
            if let Ok(s) = std::str::from_utf8(k) {
                assert!(!self.boot.console.contains(s), "a secret on the console");
            }
        }
    }
}

/// Boots the volume image: `config` is the image's config file, `disks` attached in order
/// (`/dev/vda`, `/dev/vdb`, ...), `extra` more files for the initramfs.
fn boot(
    name: &str,
    config: &str,
    disks: Vec<PathBuf>,
    resources: &[(&str, &[u8])],
    append: &str,
) -> Outcome {
    boot_with(name, config, disks, resources, append, None)
}

/// [`boot`], with a simulated SNP TEE and an init-data disk of this text when
/// `snp_init_data` is given (`KBS_URL` in it is replaced too).
fn boot_with(
    name: &str,
    config: &str,
    disks: Vec<PathBuf>,
    resources: &[(&str, &[u8])],
    append: &str,
    snp_init_data: Option<&str>,
) -> Outcome {
    let a = Artifacts::get();
    let dir = work_dir(name);
    let port = free_port();
    let url = format!("http://10.0.2.2:{port}");
    let mut parts = vec![
        image::base_with(a, &image::VOLUME_MODULES),
        image::config(&config.replace("KBS_URL", &url)),
    ];
    let mut append = format!("sealgate.log=info {append}");
    let initdata = snp_init_data.map(|text| {
        use sha2::{Digest, Sha384};
        let text = text.replace("KBS_URL", &url);
        let toml = dir.join("initdata.toml");
        let disk = dir.join("initdata.img");
        std::fs::write(&toml, &text).unwrap();
        run_checked(
            Command::new(&a.sealctl)
                .args(["initdata", "image"])
                .arg(&toml)
                .arg(&disk),
        );
        parts.push(image::sim_overlay(a, ""));
        // SNP HOST_DATA = the init-data digest truncated to 32 bytes.
        let digest = Sha384::digest(text.as_bytes());
        append += &format!(
            " tsm_sim.provider=sev_guest sim.host_data={}",
            hex(&digest[..32])
        );
        disk
    });
    let initrd = dir.join("initrd.cpio");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    image::write(&initrd, &refs);
    let server = start_kbs(port, resources);
    let mut vm = Vm::start(&VmConfig {
        kernel: a.kernel.image.clone(),
        initrd,
        initdata,
        disks,
        append,
        log: dir.join("console.log"),
        timeout: Duration::from_secs(180),
    })
    .expect("qemu/run");
    let _ = vm.wait_for("SEALGATE-", Duration::from_secs(180));
    let boot = vm.wait();
    let stats = server.stats();
    server.shutdown();
    Outcome { boot, stats }
}

/// The image config of the report-mode boots: the KBS, the sample TEE, one ordinary
/// secret, report mode, and `volumes`.
fn report_config(volumes: &str) -> String {
    format!(
        "kbs_url = \"KBS_URL\"\ntee = \"sample\"\ndeadline_secs = 120\n\
         [[resource]]\nuri = \"kbs:///default/app/key1\"\n\
         [init]\nmode = \"report\"\n{volumes}"
    )
}

fn work(name: &str) -> PathBuf {
    work_dir(&format!("{name}-disks"))
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn luks2_and_plain_data_disks_open_and_mount() {
    Artifacts::get();
    let dir = work("volumes-data");
    let big = big();
    let files: [(&str, &[u8], u32); 2] =
        [("/hello.txt", HELLO, 0o644), ("/dir/big.bin", &big, 0o600)];
    let luks = make_luks(
        &dir,
        "data",
        &files,
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-memory",
            "16384",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-parallel",
            "1",
            "--sector-size",
            "4096",
        ],
    );
    let plain = make_plain(&dir, &luks);
    let volumes = format!(
        "[[volume]]\nname = \"data\"\ndevice = \"uuid={}\"\nresource = \"kbs:///default/disk/data\"\n\
         mount = \"/mnt/data\"\nread_only = true\n\
         [[volume]]\nname = \"raw\"\ntype = \"plain\"\ndevice = \"/dev/vdb\"\n\
         resource = \"kbs:///default/disk/raw\"\nkey_size = 512\nsector_size = 4096\n\
         offset = {}\nmount = \"/mnt/raw\"\n",
        luks.uuid,
        luks.data_offset / 512
    );
    let o = boot(
        "volumes-data",
        &report_config(&volumes),
        vec![luks.image.clone(), plain],
        &[
            ("default/app/key1", KEY1),
            ("default/disk/data", PASSPHRASE),
            ("default/disk/raw", &luks.volume_key),
        ],
        "",
    );
    let ctx = o.ctx();
    assert!(o.boot.status.success(), "no poweroff: {ctx}");
    assert!(!o.boot.console.contains("SEALGATE-FAILED"), "{ctx}");
    for (name, kind, reference) in [
        (
            "data",
            "luks2",
            format!(":64:logon:cryptsetup:{}-d0", luks.uuid),
        ),
        ("raw", "plain", ":64:logon:sealgate:plain-raw".to_string()),
    ] {
        let v = o.records("volume", name);
        assert_eq!(v.len(), 1, "{name}: {ctx}");
        assert_eq!(field(&v[0], "type"), Some(kind), "{ctx}");
        assert_eq!(
            field(&v[0], "mapper"),
            Some(format!("/dev/mapper/{name}").as_str()),
            "{ctx}"
        );
        let table = field(&v[0], "table").unwrap().replace("%20", " ");
        assert!(table.contains(" crypt aes-xts-plain64 "), "{table}");
        assert!(
            table.contains(&reference),
            "{name}: the table references the keyring key: {table}"
        );
        assert!(
            table.ends_with(&format!(" {} 1 sector_size:4096", luks.data_offset / 512)),
            "the data offset and the 4096-byte sectors: {table}"
        );
        let mount = format!("/mnt/{name}");
        let files = o.records("volume-file", name);
        for (path, data) in [("hello.txt", HELLO), ("dir/big.bin", big.as_slice())] {
            let full = format!("{mount}/{path}");
            let f = files
                .iter()
                .find(|l| field(l, "path") == Some(full.as_str()))
                .unwrap_or_else(|| panic!("no {full}: {ctx}"));
            assert_eq!(
                field(f, "sha256"),
                Some(sha256_hex(data).as_str()),
                "{full}: {ctx}"
            );
            assert_eq!(
                field(f, "size"),
                Some(data.len().to_string().as_str()),
                "{ctx}"
            );
        }
        eprintln!("{name}: opened in {} us", field(&v[0], "open_us").unwrap());
    }
    o.assert_no_secret_on_console(&[&luks.volume_key, PASSPHRASE, KEY1]);
    assert_eq!(o.stats.resource.count(200), 3, "{ctx}");
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn luks2_root_is_entered_by_switch_root() {
    let a = Artifacts::get();
    let dir = work("volumes-root");
    let next = std::fs::read(&a.guest_sim).unwrap();
    let files: [(&str, &[u8], u32); 7] = [
        ("/sbin/next-stage", &next, 0o755),
        ("/hello.txt", HELLO, 0o644),
        (
            "/etc/next-stage-files",
            b"/hello.txt\n/sealed/default/app/key1\n",
            0o644,
        ),
        ("/dev/.keep", b"", 0o644),
        ("/proc/.keep", b"", 0o644),
        ("/sys/.keep", b"", 0o644),
        ("/run/.keep", b"", 0o644),
    ];
    let luks = make_luks(
        &dir,
        "root",
        &files,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let config = "kbs_url = \"KBS_URL\"\ntee = \"sample\"\ndeadline_secs = 120\n\
         [[resource]]\nuri = \"kbs:///default/app/key1\"\n\
         [init]\nmode = \"exec\"\nnext_init = \"/sbin/next-stage\"\n\
         [[volume]]\nname = \"root\"\ndevice = \"/dev/vda\"\nresource = \"kbs:///default/disk/root\"\nroot = true\n";
    let o = boot(
        "volumes-root",
        config,
        vec![luks.image.clone()],
        &[
            ("default/app/key1", KEY1),
            ("default/disk/root", PASSPHRASE),
        ],
        "sealgate.log=debug",
    );
    let ctx = o.ctx();
    assert!(o.boot.status.success(), "no poweroff: {ctx}");
    assert!(!o.boot.console.contains("SEALGATE-FAILED"), "{ctx}");
    // The initramfs (a ramfs/tmpfs) was emptied to free its memory.
    let removed: usize = o
        .boot
        .console
        .lines()
        .find_map(|l| {
            l.split("init: removed ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no old-root removal logged: {ctx}"));
    assert!(removed > 10, "{removed} entries removed: {ctx}");
    assert!(
        o.boot.console.contains("switched root to volume 'root'"),
        "{ctx}"
    );
    assert!(o.boot.console.contains(NEXT_STAGE_MARKER), "{ctx}");
    let root = tagged(&o.boot.console, "GUEST-SIM-ROOT ");
    assert_eq!(root.len(), 1, "{ctx}");
    assert_eq!(field(root[0], "fstype"), Some("ext4"), "{ctx}");
    assert_eq!(field(root[0], "source"), Some("/dev/mapper/root"), "{ctx}");
    for m in ["/proc", "/sys", "/dev", "/run", "/sealed"] {
        let l = tagged(&o.boot.console, "GUEST-SIM-MOUNT ")
            .into_iter()
            .find(|l| field(l, "path") == Some(m))
            .unwrap_or_else(|| panic!("{m}: {ctx}"));
        assert_eq!(
            field(l, "mounted"),
            Some("yes"),
            "{m} moved into the new root: {ctx}"
        );
    }
    let files = tagged(&o.boot.console, "GUEST-SIM-FILE ");
    for (path, data) in [("/hello.txt", HELLO), ("/sealed/default/app/key1", KEY1)] {
        let f = files
            .iter()
            .find(|l| field(l, "path") == Some(path))
            .unwrap_or_else(|| panic!("{path}: {ctx}"));
        assert_eq!(
            field(f, "sha256"),
            Some(sha256_hex(data).as_str()),
            "{path}: {ctx}"
        );
    }
    o.assert_no_secret_on_console(&[&luks.volume_key, PASSPHRASE, KEY1]);
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn a_wrong_passphrase_fails_closed() {
    Artifacts::get();
    let dir = work("volumes-wrong");
    let luks = make_luks(
        &dir,
        "data",
        &[("/hello.txt", HELLO, 0o644)],
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let volumes = format!(
        "[[volume]]\nname = \"data\"\ndevice = \"uuid={}\"\nresource = \"kbs:///default/disk/data\"\nmount = \"/mnt/data\"\n",
        luks.uuid
    );
    let o = boot(
        "volumes-wrong",
        &report_config(&volumes),
        vec![luks.image.clone()],
        &[
            ("default/app/key1", KEY1),
            ("default/disk/data", b"not the passphrase"),
        ],
        "",
    );
    let ctx = o.ctx();
    assert!(o.boot.status.success(), "powered off, no hang: {ctx}");
    let failed = tagged(&o.boot.console, "SEALGATE-FAILED ");
    assert_eq!(failed.len(), 1, "{ctx}");
    assert!(
        failed[0].starts_with("volume 'data' (uuid=") && failed[0].contains("keyslot did not open"),
        "{ctx}"
    );
    assert!(failed[0].contains("nothing was written"), "{ctx}");
    assert!(
        !o.boot.console.contains("SEALGATE-REPORT"),
        "no report: {ctx}"
    );
    assert!(
        !o.boot.console.contains("/dev/mapper/data"),
        "no device was created: {ctx}"
    );
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn a_wrong_plain_key_fails_closed_and_removes_the_device() {
    Artifacts::get();
    let dir = work("volumes-wrong-plain");
    let luks = make_luks(
        &dir,
        "data",
        &[("/hello.txt", HELLO, 0o644)],
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let plain = make_plain(&dir, &luks);
    let volumes = format!(
        "[[volume]]\nname = \"raw\"\ntype = \"plain\"\ndevice = \"/dev/vda\"\n\
         resource = \"kbs:///default/disk/raw\"\noffset = {}\nmount = \"/mnt/raw\"\n",
        luks.data_offset / 512
    );
    let wrong = [0x42u8; 64];
    let o = boot(
        "volumes-wrong-plain",
        &report_config(&volumes),
        vec![plain],
        &[("default/app/key1", KEY1), ("default/disk/raw", &wrong)],
        "",
    );
    let ctx = o.ctx();
    assert!(o.boot.status.success(), "powered off, no hang: {ctx}");
    let failed = tagged(&o.boot.console, "SEALGATE-FAILED ");
    assert_eq!(failed.len(), 1, "{ctx}");
    assert!(
        failed[0].starts_with("volume 'raw' (/dev/vda): cannot mount it on /mnt/raw as ext4"),
        "{ctx}"
    );
    assert!(
        o.boot.console.contains("removed the half-open device raw"),
        "{ctx}"
    );
    assert!(
        !o.boot.console.contains("SEALGATE-REPORT"),
        "no report: {ctx}"
    );
    o.assert_no_secret_on_console(&[&wrong, &luks.volume_key]);
}

/// The volume declared by a measured source other than the image: init-data's
/// `sealgate.toml`, checked against the (simulated) SNP HOST_DATA before any of it is
/// used. The image's config only says where init-data is; the init-data disk is `/dev/vda`,
/// the volume, found by its UUID, `/dev/vdb`.
#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn a_volume_declared_in_init_data_opens_on_simulated_snp() {
    Artifacts::get();
    let dir = work("volumes-initdata");
    let luks = make_luks(
        &dir,
        "data",
        &[("/hello.txt", HELLO, 0o644)],
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let sealgate_toml = format!(
        "[[resource]]\nuri = \"kbs:///default/app/key1\"\n\
         [[volume]]\nname = \"data\"\ndevice = \"uuid={}\"\n\
         resource = \"kbs:///default/disk/data\"\nmount = \"/mnt/data\"\n\
         [init]\nmode = \"report\"\n",
        luks.uuid
    );
    let init_data = format!(
        "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\
         \"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\nurl = \"KBS_URL\"\n'''\n\
         \"sealgate.toml\" = '''\n{sealgate_toml}'''\n"
    );
    let o = boot_with(
        "volumes-initdata",
        "init_data = \"scan\"\ndeadline_secs = 120\n",
        vec![luks.image.clone()],
        &[
            ("default/app/key1", KEY1),
            ("default/disk/data", PASSPHRASE),
        ],
        "",
        Some(&init_data),
    );
    let ctx = o.ctx();
    assert!(o.boot.status.success(), "no poweroff: {ctx}");
    assert!(!o.boot.console.contains("SEALGATE-FAILED"), "{ctx}");
    assert!(
        o.boot.console.contains("init-data matches SNP HOST_DATA"),
        "{ctx}"
    );
    let v = o.records("volume", "data");
    assert_eq!(v.len(), 1, "{ctx}");
    assert_eq!(
        field(&v[0], "device"),
        Some("/dev/vdb"),
        "found by UUID: {ctx}"
    );
    let f = o.records("volume-file", "data");
    assert_eq!(f.len(), 1, "{ctx}");
    assert_eq!(field(&f[0], "path"), Some("/mnt/data/hello.txt"), "{ctx}");
    assert_eq!(
        field(&f[0], "sha256"),
        Some(sha256_hex(HELLO).as_str()),
        "{ctx}"
    );
    o.assert_no_secret_on_console(&[&luks.volume_key, PASSPHRASE, KEY1]);
}
