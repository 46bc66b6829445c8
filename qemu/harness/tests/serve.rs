//! `sealgate serve` in a real guest under QEMU (sample TEE): the init stage execs the
//! test image's `serve-check` (guest-sim), which starts `sealgate serve` as the kata agent
//! would start the guest components, waits for the CDH socket, unseals a sealed env value
//! over ttrpc and fetches a resource over REST on 127.0.0.1:8006, then reports on the
//! console (`SERVE-CHECK` lines: sizes and SHA-256, never the values) and powers off.

use sealgate_qemu::console::{field, tagged};
use sealgate_qemu::report::sha256_hex;
use sealgate_qemu::{Artifacts, Vm, VmConfig, disk, image, work_dir};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use test_kbs::{Config, Server};

const KEY1: &[u8] = b"serve boot: key1 for the init stage";
const KEY2: &[u8] = b"serve boot: key2 over REST \x00\x01\x02";
const SEALED_VALUE: &[u8] = b"db-password from the vault";
const PASSPHRASE: &[u8] = b"serve boot: the LUKS2 passphrase 6d1e0b";
const WRONG_PASSPHRASE: &[u8] = b"serve boot: not the passphrase";
const HELLO: &[u8] = b"hello from the secure storage volume\n";
/// Kata's sealed-secret vector (vault, provider kbs; as in e2e.rs).
const KATA_VECTOR: &str = "sealed.eyJiNjQiOnRydWUsImFsZyI6IkVTMjU2Iiwia2lkIjoia2JzOi8vL2RlZmF1bHQvc2lnbmluZy1rZXkvc2VhbGVkLXNlY3JldCJ9.eyJ2ZXJzaW9uIjoiMC4xLjAiLCJ0eXBlIjoidmF1bHQiLCJuYW1lIjoia2JzOi8vL2RlZmF1bHQvc2VhbGVkLXNlY3JldC90ZXN0IiwicHJvdmlkZXIiOiJrYnMiLCJwcm92aWRlcl9zZXR0aW5ncyI6e30sImFubm90YXRpb25zIjp7fX0.ZI2fTv5ramHqHQa9DKBFD5hlJ_Mjf6cEIcpsNGshpyhEiKklML0abfH600TD7LAFHf53oDIJmEcVsDtJ20UafQ";
const KATA_JWK: &str = r#"{"alg":"ES256","crv":"P-256","kid":"sealed-secret-test-key","kty":"EC","use":"sig","x":"4jH376AuwTUCIx65AJ_56D7SZzWf7sGcEA7_Csq21UM","y":"rjdceysnSa5ZfzWOPGCURMUuHndxBAGUu4ISTIVN0yA"}"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn guest_client_unseals_over_ttrpc_and_fetches_over_rest() {
    let a = Artifacts::get();
    let dir = work_dir("serve-sample");
    let port = free_port();
    let config = format!(
        "kbs_url = \"http://10.0.2.2:{port}\"\ntee = \"sample\"\ndeadline_secs = 60\n\
         [[resource]]\nuri = \"kbs:///default/app/key1\"\n\
         [init]\nmode = \"exec\"\nnext_init = \"/sbin/serve-check\"\n"
    );
    let luks = disk::make_luks(
        &dir,
        "luks",
        &[("/hello.txt", HELLO, 0o644)],
        PASSPHRASE,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let disks = vec![
        disk::blank(&dir, "empty", 64 << 20),
        luks.image.clone(),
        disk::blank(&dir, "device", 16 << 20),
        disk::blank(&dir, "integrity", 32 << 20),
        disk::blank(&dir, "tamper", 16 << 20),
    ];
    let mke2fs = ["/sbin/mke2fs", "/usr/sbin/mke2fs"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
        .expect("mke2fs on the host (scripts/setup installs e2fsprogs)");
    let parts = [
        image::base_with(
            a,
            &[&image::VOLUME_MODULES[..], &image::INTEGRITY_MODULES].concat(),
        ),
        image::host_program(mke2fs, &["/sbin/mkfs.ext4"]),
        image::config(&config),
        image::files(&[
            ("/etc/sealed-env", 0o644, KATA_VECTOR.as_bytes()),
            (
                "/sbin/serve-check",
                0o755,
                &std::fs::read(&a.guest_sim).unwrap(),
            ),
        ]),
    ];
    let initrd = dir.join("initrd.cpio");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    image::write(&initrd, &refs);
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Server::start(Config {
        listen,
        ..Config::default()
    })
    .expect("test KBS");
    server.add_resource("default/app/key1", KEY1).unwrap();
    server.add_resource("default/app/key2", KEY2).unwrap();
    server
        .add_resource("default/signing-key/sealed-secret", KATA_JWK.as_bytes())
        .unwrap();
    server
        .add_resource("default/sealed-secret/test", SEALED_VALUE)
        .unwrap();
    server
        .add_resource("default/volume/pass", PASSPHRASE)
        .unwrap();
    server
        .add_resource("default/volume/wrong", WRONG_PASSPHRASE)
        .unwrap();
    let mut vm = Vm::start(&VmConfig {
        kernel: a.kernel.image.clone(),
        initrd,
        initdata: None,
        disks,
        append: "sealgate.log=info".into(),
        log: dir.join("console.log"),
        timeout: Duration::from_secs(150),
    })
    .expect("qemu/run");
    let _ = vm.wait_for("SERVE-CHECK done", Duration::from_secs(150));
    let boot = vm.wait();
    let stats = server.stats();
    server.shutdown();
    let ctx = format!(
        "status {:?} after {:?}; KBS {stats:?}\n--- console ---\n{}",
        boot.status, boot.elapsed, boot.console
    );
    let c = &boot.console;
    assert!(c.contains("SERVE-CHECK done ok"), "{ctx}");
    assert!(
        c.contains(&format!(
            "SERVE-CHECK unseal size={} sha256={}",
            SEALED_VALUE.len(),
            sha256_hex(SEALED_VALUE)
        )),
        "{ctx}"
    );
    assert!(
        c.contains(&format!(
            "SERVE-CHECK rest status=200 size={} sha256={}",
            KEY2.len(),
            sha256_hex(KEY2)
        )),
        "{ctx}"
    );
    // SecureMount: an empty volume became ext4 and holds what was written.
    let written: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let line = |tag: &str| {
        tagged(c, "SERVE-CHECK ")
            .into_iter()
            .find(|l| l.split_whitespace().next() == Some(tag))
            .unwrap_or_else(|| panic!("no SERVE-CHECK {tag}: {ctx}"))
            .to_string()
    };
    let empty = line("securemount-empty");
    assert_eq!(field(&empty, "fstype"), Some("ext4"), "{ctx}");
    assert_eq!(field(&empty, "size"), Some("100000"), "{ctx}");
    assert_eq!(
        field(&empty, "sha256"),
        Some(sha256_hex(&written).as_str()),
        "{ctx}"
    );
    assert!(
        c.contains("mkfs.ext4 -F -E lazy_journal_init /dev/mapper/ephemeral"),
        "{ctx}"
    );
    // A wrong key: an error status, no mapping left, the server goes on.
    let wrong = line("securemount-wrong-key");
    assert_eq!(field(&wrong, "code"), Some("13"), "INTERNAL: {ctx}");
    assert_eq!(field(&wrong, "mapped"), Some("false"), "{ctx}");
    assert!(
        wrong
            .contains("message=[CDH] [ERROR]: volume 'encrypted' (/dev/vdb): keyslot did not open"),
        "{ctx}"
    );
    // The right key from the KBS: cryptsetup's volume opens and its file reads back.
    let enc = line("securemount-encrypted");
    assert_eq!(
        field(&enc, "size"),
        Some(HELLO.len().to_string().as_str()),
        "{ctx}"
    );
    assert_eq!(
        field(&enc, "sha256"),
        Some(sha256_hex(HELLO).as_str()),
        "{ctx}"
    );
    // mkfs fails: an error status naming it, and the mapping is gone.
    let bad = line("securemount-bad-mkfs");
    assert_eq!(field(&bad, "code"), Some("13"), "INTERNAL: {ctx}");
    assert_eq!(field(&bad, "mapped"), Some("false"), "{ctx}");
    assert!(
        bad.contains("making the filesystem: /sbin/mkfs.ext4 failed with exit status"),
        "{ctx}"
    );
    assert!(c.contains("removed the half-open device badmkfs"), "{ctx}");
    let dev = line("securemount-device");
    assert_eq!(field(&dev, "link"), Some("/dev/mapper/raw"), "{ctx}");
    assert_eq!(field(&dev, "block"), Some("true"), "{ctx}");
    // dataIntegrity=true: ext4 on dm-integrity under authenticated dm-crypt.
    let integ = line("securemount-integrity");
    assert_eq!(field(&integ, "fstype"), Some("ext4"), "{ctx}");
    assert_eq!(field(&integ, "lower"), Some("true"), "{ctx}");
    let written: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        field(&integ, "sha256"),
        Some(sha256_hex(&written).as_str()),
        "{ctx}"
    );
    assert!(
        c.contains("mkfs.ext4 -F -E lazy_journal_init,lazy_itable_init=0 /dev/mapper/integ"),
        "{ctx}"
    );
    let bad = line("securemount-integrity-bad-mkfs");
    assert_eq!(field(&bad, "code"), Some("13"), "INTERNAL: {ctx}");
    assert_eq!(field(&bad, "mapped"), Some("false"), "{ctx}");
    assert_eq!(field(&bad, "lower"), Some("false"), "{ctx}");
    assert!(
        c.contains("removed the half-open device integbad_dif"),
        "{ctx}"
    );
    // The device target: unwritten blocks and altered ones fail their reads.
    let dev = line("securemount-integrity-dev");
    let written: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    assert_eq!(
        field(&dev, "sha256"),
        Some(sha256_hex(&written).as_str()),
        "{ctx}"
    );
    let failed = |v: Option<&str>| {
        v.is_some_and(|v| {
            let errno = v.split(':').next().unwrap_or_default();
            errno == "errno5" || errno == "errno84"
        })
    };
    assert!(failed(field(&dev, "unwritten")), "EIO or EILSEQ: {ctx}");
    assert!(failed(field(&dev, "tampered")), "EIO or EILSEQ: {ctx}");
    for key in [&luks.volume_key[..], PASSPHRASE, WRONG_PASSPHRASE] {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!c.contains(&hex), "a key in hex on the console: {ctx}");
    }
    for secret in [SEALED_VALUE, KEY2, PASSPHRASE, WRONG_PASSPHRASE] {
        assert!(
            !c.contains(&String::from_utf8_lossy(secret).into_owned()),
            "a secret on the console: {ctx}"
        );
    }
    assert!(boot.status.success(), "no poweroff: {ctx}");
}
