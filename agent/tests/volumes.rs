//! Encrypted volumes on the host, as root: volumes made by the real cryptsetup on loop
//! devices, opened by the real `sealgate unseal` with keys from the test KBS.
//!
//! What needs no device-mapper runs everywhere: the device found by its LUKS UUID among
//! the machine's block devices, a wrong passphrase failing with "keyslot did not open"
//! (the key is checked against the header's digest before anything is created), a plain
//! key of the wrong length, two devices with the same UUID, and a damaged header: each
//! fails closed with nothing written, the last two before the KBS sees any request.
//!
//! Opening for real needs device-mapper and dm-crypt in the kernel. On a kernel with them
//! (`/sys/class/misc/device-mapper`), `a_volume_opens_and_its_filesystem_reads_back`
//! maps, mounts (in a private mount namespace) and reads the filesystem back, and checks
//! that `dmsetup table` shows a keyring reference instead of the key. On a kernel without
//! (this project's build machine has none: `CONFIG_MD` is off and it loads no modules) the
//! same test checks the failure instead: the keyslot opens, then the run fails closed
//! naming the missing device-mapper, and nothing is written. The QEMU boots
//! (`qemu/harness/tests/volumes.rs`) open volumes through the guest kernel's
//! device-mapper either way.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSPHRASE: &[u8] = b"passphrase from the KBS: 9c3a41f07e2d5b68";
const HELLO: &[u8] = b"read back from the encrypted volume\n";

fn run_checked(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (scripts/setup installs cryptsetup-bin, e2fsprogs, mount)")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loop device over an image file, detached on drop.
struct Loop(String);

impl Loop {
    fn attach(image: &Path) -> Loop {
        let dev = run_checked(Command::new("losetup").args(["-f", "--show"]).arg(image));
        Loop(dev.trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A LUKS2 image (PBKDF2, cheap) around an ext4 holding `hello.txt`.
struct Luks {
    image: PathBuf,
    uuid: String,
    volume_key: Vec<u8>,
    data_offset: u64,
}

fn make_luks(tmp: &TempDir, name: &str) -> Luks {
    assert!(
        running_as_root(),
        "the volume tests need root (loop devices, device-mapper)"
    );
    let root = tmp.mkdir(&format!("{name}-fs"));
    std::fs::write(root.join("hello.txt"), HELLO).unwrap();
    let image = tmp.join(format!("{name}.img"));
    let pass = tmp.write(&format!("{name}.pass"), PASSPHRASE);
    std::fs::File::create(&image)
        .unwrap()
        .set_len(24 << 20)
        .unwrap();
    run_checked(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-d"])
            .arg(&root)
            .arg(&image)
            .arg("16M"),
    );
    run_checked(
        Command::new("cryptsetup")
            .args(["reencrypt", "--encrypt", "--type", "luks2", "-q"])
            .args(["--reduce-device-size", "8M", "--pbkdf", "pbkdf2"])
            .args(["--pbkdf-force-iterations", "1000", "--key-file"])
            .arg(&pass)
            .arg(&image),
    );
    let uuid = run_checked(Command::new("cryptsetup").arg("luksUUID").arg(&image))
        .trim()
        .to_string();
    let vk = tmp.join(format!("{name}.vk"));
    run_checked(
        Command::new("cryptsetup")
            .args(["luksDump", "-q", "--dump-volume-key", "--volume-key-file"])
            .arg(&vk)
            .arg("--key-file")
            .arg(&pass)
            .arg(&image),
    );
    let dump = run_checked(Command::new("cryptsetup").arg("luksDump").arg(&image));
    let data_offset = dump
        .split("Data segments:")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("offset:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("data offset in luksDump");
    Luks {
        image,
        uuid,
        volume_key: std::fs::read(&vk).unwrap(),
        data_offset,
    }
}

fn has_device_mapper() -> bool {
    Path::new("/sys/class/misc/device-mapper").exists()
}

/// `sealgate unseal` with one ordinary resource and the config file `volumes` (the only
/// source for volume declarations here: they are never flags or command-line words).
fn unseal_with(world: &World, volumes: &str) -> Sealgate {
    let config = world.tmp.write("config.toml", volumes);
    world
        .bare()
        .args(["unseal", "--kbs", &world.url(), "--tee", "sample"])
        .args(["--sealed-dir", s(&world.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--kernel-cmdline", "/dev/null", "--config", s(&config)])
        .args(["--log-level", "debug", "--deadline", "30"])
        .resource("kbs:///default/app/key", "app/key")
}

fn luks_volume(device: &str, mount: Option<&Path>) -> String {
    let mut v = format!(
        "[[volume]]\nname = \"sgtest-data\"\ndevice = \"{device}\"\nresource = \"kbs:///default/disk/pass\"\n"
    );
    if let Some(m) = mount {
        v += &format!("mount = \"{}\"\n", s(m));
    }
    v
}

#[test]
fn a_wrong_passphrase_fails_closed_with_keyslot_did_not_open() {
    let world = World::new("vol-wrong");
    let luks = make_luks(&world.tmp, "wrong");
    let _loop = Loop::attach(&luks.image);
    world.secret("default/app/key", "ordinary-secret-value-0a1b2c");
    world.secret("default/disk/pass", "not the passphrase at all, 1234");
    world.remember(&luks.volume_key);
    let before = world.sealed_tree();
    // Found by its UUID among the machine's block devices (the loop device).
    unseal_with(&world, &luks_volume(&format!("uuid={}", luks.uuid), None))
        .run()
        .fails(
            1,
            &[
                &format!(
                    "volume 'sgtest-data' (uuid={}): keyslot did not open",
                    luks.uuid
                ),
                "wrong passphrase for keyslot 0",
                "nothing was written",
            ],
        );
    assert_eq!(world.sealed_tree(), before, "nothing written");
    assert!(!Path::new("/dev/mapper/sgtest-data").exists());
}

#[test]
fn a_volume_opens_and_its_filesystem_reads_back() {
    let world = World::new("vol-open");
    let luks = make_luks(&world.tmp, "open");
    let lo = Loop::attach(&luks.image);
    world.secret("default/app/key", "ordinary-secret-value-3d4e5f");
    world.secret("default/disk/pass", PASSPHRASE);
    world.remember(&luks.volume_key);
    let mnt = world.tmp.join("mnt");
    let volume = luks_volume(&lo.0, Some(&mnt));
    if !has_device_mapper() {
        let before = world.sealed_tree();
        unseal_with(&world, &volume).run().fails(
            1,
            &[
                "keyslot 0 opened",
                &format!("volume 'sgtest-data' ({}): no device-mapper", lo.0),
                "nothing was written",
            ],
        );
        assert_eq!(world.sealed_tree(), before, "nothing written");
        return;
    }
    // A private mount namespace, so the mount never shows on the host; the mapped device
    // (global) is removed at the end whatever happens.
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = Command::new("dmsetup")
                .args(["remove", "sgtest-data"])
                .status();
        }
    }
    let _remove = Remove;
    let script = format!(
        "set -e; \"$0\" \"$@\"; cat {mnt}/hello.txt; dmsetup table sgtest-data; umount {mnt}",
        mnt = s(&mnt)
    );
    let ran = unseal_with(&world, &volume)
        .wrapped_in(
            "unshare",
            &["--mount", "--propagation", "private", "sh", "-c", &script],
        )
        .run();
    ran.ok();
    let out = String::from_utf8_lossy(&ran.stdout);
    assert!(
        out.contains(std::str::from_utf8(HELLO).unwrap()),
        "{}",
        ran.dump()
    );
    assert!(
        out.contains(&format!(":64:logon:cryptsetup:{}-d0", luks.uuid)),
        "the table references the key: {}",
        ran.dump()
    );
    let hex: String = luks.volume_key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!out.contains(&hex), "the key is not in the table");
    assert_eq!(world.read("app/key"), b"ordinary-secret-value-3d4e5f");
}

#[test]
fn a_plain_key_of_the_wrong_length_is_refused() {
    let world = World::new("vol-plain");
    let luks = make_luks(&world.tmp, "plain");
    let lo = Loop::attach(&luks.image);
    world.secret("default/app/key", "ordinary-secret-value-6a7b8c");
    world.secret("default/disk/raw", [7u8; 32]);
    let volume = format!(
        "[[volume]]\nname = \"sgtest-raw\"\ntype = \"plain\"\ndevice = \"{}\"\n\
         resource = \"kbs:///default/disk/raw\"\nkey_size = 512\noffset = {}\n",
        lo.0,
        luks.data_offset / 512
    );
    let before = world.sealed_tree();
    unseal_with(&world, &volume).run().fails(
        1,
        &[
            "the plain volume's key from the KBS is 32 bytes, the volume needs 64",
            "nothing was written",
        ],
    );
    assert_eq!(world.sealed_tree(), before);
}

#[test]
fn two_devices_with_the_same_uuid_are_refused_before_the_kbs_is_asked() {
    let world = World::new("vol-twins");
    let luks = make_luks(&world.tmp, "twin");
    let copy = world.tmp.join("twin-copy.img");
    std::fs::copy(&luks.image, &copy).unwrap();
    let _a = Loop::attach(&luks.image);
    let _b = Loop::attach(&copy);
    world.secret("default/app/key", "ordinary-secret-value-9d0e1f");
    world.secret("default/disk/pass", PASSPHRASE);
    unseal_with(&world, &luks_volume(&format!("uuid={}", luks.uuid), None))
        .run()
        .fails(
            1,
            &[
                &format!("more than one block device has LUKS UUID {}", luks.uuid),
                "refused",
            ],
        );
    let stats = world.kbs.stats();
    assert_eq!(stats.requests, 0, "the KBS was not contacted: {stats:?}");
}

#[test]
fn a_damaged_header_is_refused_before_the_kbs_is_asked() {
    let world = World::new("vol-damaged");
    let luks = make_luks(&world.tmp, "damaged");
    // Both copies' JSON areas overwritten: neither checksum holds.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&luks.image)
            .unwrap();
        for at in [4096u64, 16384 + 4096] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(b"{\"tampered\":true}").unwrap();
        }
    }
    let lo = Loop::attach(&luks.image);
    world.secret("default/app/key", "ordinary-secret-value-2a3b4c");
    world.secret("default/disk/pass", PASSPHRASE);
    unseal_with(&world, &luks_volume(&lo.0, None)).run().fails(
        1,
        &[&format!(
            "volume 'sgtest-data' ({}): no valid LUKS2 header",
            lo.0
        )],
    );
    let stats = world.kbs.stats();
    assert_eq!(stats.requests, 0, "the KBS was not contacted: {stats:?}");
}
