//! Disk images made on the host with the real tools: LUKS2 volumes by cryptsetup
//! (`reencrypt --encrypt` over an ext4 image that `mke2fs -d` filled, so the host needs no
//! device-mapper), and blank disks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd`; its stdout. Panics with its stderr if it fails.
pub fn run_checked(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A LUKS2 disk made by cryptsetup around an ext4 filesystem.
pub struct LuksDisk {
    /// The image file.
    pub image: PathBuf,
    /// The LUKS UUID.
    pub uuid: String,
    /// The volume key (from `luksDump --dump-volume-key`).
    pub volume_key: Vec<u8>,
    /// Where the data segment starts, bytes.
    pub data_offset: u64,
}

/// A 40 MiB LUKS2 disk `dir/NAME.img` whose ext4 (4 KiB blocks) holds `files`
/// (`(path, contents, mode)`), with one keyslot for `passphrase`; `kdf`: more
/// `cryptsetup reencrypt` arguments (`--pbkdf ...`, `--sector-size`).
pub fn make_luks(
    dir: &Path,
    name: &str,
    files: &[(&str, &[u8], u32)],
    passphrase: &[u8],
    kdf: &[&str],
) -> LuksDisk {
    let root = dir.join(format!("{name}-root"));
    for (path, data, mode) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    let image = dir.join(format!("{name}.img"));
    let pass = dir.join(format!("{name}.pass"));
    std::fs::write(&pass, passphrase).unwrap();
    // 40 MiB: an ext4 of 24 MiB, then cryptsetup moves it up by half of the 16 MiB it
    // reserves and puts the LUKS2 header in front (offline: no device-mapper needed).
    std::fs::File::create(&image)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    run_checked(
        Command::new("mke2fs")
            // 4 KiB blocks: a filesystem on a 4096-byte-sector volume needs them.
            .args(["-q", "-F", "-b", "4096", "-t", "ext4", "-d"])
            .arg(&root)
            .arg(&image)
            .arg("24M"),
    );
    run_checked(
        Command::new("cryptsetup")
            .args(["reencrypt", "--encrypt", "--type", "luks2", "-q"])
            .args(["--reduce-device-size", "16M", "--key-file"])
            .arg(&pass)
            .args(kdf)
            .arg(&image),
    );
    let uuid = run_checked(Command::new("cryptsetup").arg("luksUUID").arg(&image))
        .trim()
        .to_string();
    let vk = dir.join(format!("{name}.vk"));
    let _ = std::fs::remove_file(&vk);
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
    LuksDisk {
        image,
        uuid,
        volume_key: std::fs::read(&vk).unwrap(),
        data_offset,
    }
}

/// A blank (sparse, all zero) disk image `dir/NAME.img` of `size` bytes.
pub fn blank(dir: &Path, name: &str, size: u64) -> PathBuf {
    let image = dir.join(format!("{name}.img"));
    std::fs::File::create(&image)
        .unwrap()
        .set_len(size)
        .unwrap();
    image
}
