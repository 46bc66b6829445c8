//! The `mkinitramfs` binary end to end: a complete image from a fake static sealgate, a
//! kernel modules tree with real `xz`-compressed modules, config, init-data and extra
//! files; byte-for-byte reproducibility; the listing; and GNU cpio reading the result
//! (where installed; the own reader always checks it).

use sealgate_image::{cpio, gzip, sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MKINITRAMFS: &str = env!("CARGO_BIN_EXE_mkinitramfs");
const RELEASE: &str = "6.12.43+deb12-cloud-amd64";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("mkinitramfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, rel: &str, data: &[u8], mode: u32) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An ELF64 executable header with one PT_LOAD and no interpreter: "static" enough.
fn fake_static_elf() -> Vec<u8> {
    let mut elf = vec![0u8; 64 + 56];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    elf[64..68].copy_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(b"static sealgate stand-in");
    elf
}

/// A minimal module: ELF64 with a `.modinfo` section.
fn fake_module(modinfo: &str) -> Vec<u8> {
    let shstrtab = b"\0.modinfo\0.shstrtab\0";
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    let mi = elf.len();
    elf.extend_from_slice(modinfo.as_bytes());
    let ss = elf.len();
    elf.extend_from_slice(shstrtab);
    while !elf.len().is_multiple_of(8) {
        elf.push(0);
    }
    let shoff = elf.len();
    for (name, ty, off, size) in [
        (0u32, 0u32, 0usize, 0usize),
        (1, 1, mi, modinfo.len()),
        (10, 3, ss, shstrtab.len()),
    ] {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&ty.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        elf.extend_from_slice(&h);
    }
    elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
    elf
}

fn xz(path: &Path) {
    let st = Command::new("xz")
        .args(["-z", "-f", "--check=crc32"])
        .arg(path)
        .status()
        .expect("xz (xz-utils) is needed: the Debian kernel's modules are .ko.xz");
    assert!(st.success());
}

/// The inputs: a Debian-like modules tree (xz), an out-of-tree module, sealgate, config,
/// init-data, a helper; returns the manifest.
fn inputs(d: &Dir) -> PathBuf {
    let vm = format!("vermagic={RELEASE} SMP preempt mod_unload modversions\0");
    let tree = format!("kernel/lib/modules/{RELEASE}");
    for (rel, info) in [
        ("kernel/net/core/failover.ko", "name=failover\0depends=\0"),
        (
            "kernel/drivers/net/net_failover.ko",
            "name=net_failover\0depends=failover\0",
        ),
        (
            "kernel/drivers/net/virtio_net.ko",
            "name=virtio_net\0depends=net_failover,failover\0",
        ),
        (
            "kernel/fs/configfs/configfs.ko",
            "name=configfs\0depends=\0",
        ),
        (
            "kernel/drivers/virt/coco/tsm.ko",
            "name=tsm\0depends=configfs\0",
        ),
        (
            "kernel/drivers/virt/coco/sev-guest/sev-guest.ko",
            "name=sev_guest\0depends=tsm\0",
        ),
        ("kernel/drivers/block/loop.ko", "name=loop\0depends=\0"),
    ] {
        let p = d.write(
            &format!("{tree}/{rel}"),
            &fake_module(&format!("{info}{vm}")),
            0o644,
        );
        xz(&p);
    }
    d.write(
        "tsm_sim/tsm_sim.ko",
        &fake_module(&format!("name=tsm_sim\0depends=tsm\0{vm}")),
        0o644,
    );
    d.write("bin/sealgate", &fake_static_elf(), 0o755);
    d.write("bin/sim-helper", b"#!/bin/sh\necho simulator\n", 0o755);
    d.write(
        "wrapper.sh",
        b"#!/bin/sh\nexec /sbin/sealgate init\n",
        0o700,
    );
    d.write(
        "sealgate.toml",
        b"kbs_url = \"http://10.0.2.2:8080\"\n[init]\nmode = \"report\"\n",
        0o600,
    );
    d.write(
        "initdata.toml",
        b"version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n",
        0o644,
    );
    d.write(
        "image.manifest",
        format!(
            "# test image\nsealgate bin/sealgate\nconfig sealgate.toml\ninit-data initdata.toml\n\
             modules-dir {tree}\nmodule virtio_net\nmodule tsm_sim/tsm_sim.ko provider=sev_guest\n\
             module sev-guest\nfile bin/sim-helper:/sbin/sim-helper\ndir /var/empty:0700\n\
             symlink /bin/sh:/sbin/sim-helper\n"
        )
        .as_bytes(),
        0o644,
    )
}

fn mkinitramfs(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(MKINITRAMFS);
    c.args(args).env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn build(d: &Dir, out: &str, extra: &[&str], env: &[(&str, &str)]) -> (Vec<u8>, String) {
    let manifest = d.0.join("image.manifest");
    let output = d.0.join(out);
    let mut args = vec![
        "--manifest",
        manifest.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = mkinitramfs(&args, env);
    assert!(ok, "mkinitramfs failed: {stderr}");
    (std::fs::read(&output).unwrap(), stdout)
}

#[test]
fn complete_image_is_reproducible_and_lists_as_designed() {
    let d = Dir::new("full");
    inputs(&d);
    let (img, stdout) = build(&d, "a.cpio.gz", &[], &[]);
    let sha = sha256::hex(&img);
    assert!(stdout.contains(&format!("sha256  {sha}")), "{stdout}");
    assert!(
        stdout.contains(&format!("size    {}", img.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("modules for {RELEASE}")),
        "{stdout}"
    );

    // Same inputs, other timestamps and permission bits on the host: same bytes.
    for f in ["bin/sealgate", "sealgate.toml", "tsm_sim/tsm_sim.ko"] {
        let p = d.0.join(f);
        let data = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&p, data).unwrap();
    }
    std::fs::set_permissions(
        d.0.join("sealgate.toml"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let (again, _) = build(&d, "b.cpio.gz", &[], &[]);
    assert_eq!(
        sha256::hex(&again),
        sha,
        "the same inputs must give the same bytes"
    );

    let cpio_bytes = gzip::decompress(&img).unwrap();
    assert_eq!(cpio_bytes.len() % 512, 0);
    let entries = cpio::read(&cpio_bytes).unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.mtime == 0 && e.uid == 0 && e.gid == 0)
    );

    let (ok, listing, err) = mkinitramfs(&["--list", d.0.join("a.cpio.gz").to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = listing.lines().collect();
    let m = format!("/lib/modules/{RELEASE}");
    let expect = [
        "d0755 0:0 0 /bin".to_string(),
        "l0777 0:0 16 /bin/sh -> /sbin/sim-helper".into(),
        "d0755 0:0 0 /dev".into(),
        "c0600 0:0 5, 1 /dev/console".into(),
        "c0666 0:0 1, 3 /dev/null".into(),
        "d0755 0:0 0 /etc".into(),
        "d0755 0:0 0 /etc/sealgate".into(),
        "-0644 0:0 56 /etc/sealgate/config.toml".into(),
        "-0644 0:0 46 /etc/sealgate/initdata.toml".into(),
        "-0644 0:0 187 /etc/sealgate/modules".into(),
        "l0777 0:0 13 /init -> sbin/sealgate".into(),
        "d0755 0:0 0 /lib".into(),
        "d0755 0:0 0 /lib/modules".into(),
        format!("d0755 0:0 0 {m}"),
        format!("d0755 0:0 0 {m}/extra"),
        format!("-0644 0:0 __ {m}/extra/tsm_sim.ko"),
        format!("d0755 0:0 0 {m}/kernel"),
        format!("d0755 0:0 0 {m}/kernel/drivers"),
        format!("d0755 0:0 0 {m}/kernel/drivers/net"),
        format!("-0644 0:0 __ {m}/kernel/drivers/net/net_failover.ko.xz"),
        format!("-0644 0:0 __ {m}/kernel/drivers/net/virtio_net.ko.xz"),
        format!("d0755 0:0 0 {m}/kernel/drivers/virt"),
        format!("d0755 0:0 0 {m}/kernel/drivers/virt/coco"),
        format!("d0755 0:0 0 {m}/kernel/drivers/virt/coco/sev-guest"),
        format!("-0644 0:0 __ {m}/kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz"),
        format!("-0644 0:0 __ {m}/kernel/drivers/virt/coco/tsm.ko.xz"),
        format!("d0755 0:0 0 {m}/kernel/fs"),
        format!("d0755 0:0 0 {m}/kernel/fs/configfs"),
        format!("-0644 0:0 __ {m}/kernel/fs/configfs/configfs.ko.xz"),
        format!("d0755 0:0 0 {m}/kernel/net"),
        format!("d0755 0:0 0 {m}/kernel/net/core"),
        format!("-0644 0:0 __ {m}/kernel/net/core/failover.ko.xz"),
        format!("-0644 0:0 __ {m}/modules.dep"),
        "d0555 0:0 0 /proc".into(),
        "d0755 0:0 0 /run".into(),
        "d0755 0:0 0 /sbin".into(),
        "-0755 0:0 144 /sbin/sealgate".into(),
        "-0755 0:0 25 /sbin/sim-helper".into(),
        "d0700 0:0 0 /sealed".into(),
        "d0555 0:0 0 /sys".into(),
        "d1777 0:0 0 /tmp".into(),
        "d0755 0:0 0 /var".into(),
        "d0700 0:0 0 /var/empty".into(),
    ];
    // Compare with whitespace collapsed; "__" stands for sizes that depend on xz.
    let got: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got.len(), expect.len(), "{listing}");
    for (g, e) in got.iter().zip(&expect) {
        let (ep, es) = e.split_once("__").unwrap_or((e, ""));
        assert!(
            g.starts_with(ep) && g.ends_with(es),
            "got '{g}', want '{e}'"
        );
    }
    // The loop module of the tree was not asked for and is not a dependency.
    assert!(!listing.contains("loop"));

    let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap();
    assert_eq!(
        String::from_utf8(
            find(&format!("lib/modules/{RELEASE}/modules.dep"))
                .data
                .clone()
        )
        .unwrap(),
        "kernel/net/core/failover.ko.xz:\n\
         kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz\n\
         kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\
         kernel/fs/configfs/configfs.ko.xz:\n\
         kernel/drivers/virt/coco/tsm.ko.xz: kernel/fs/configfs/configfs.ko.xz\n\
         extra/tsm_sim.ko: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz\n\
         kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz: kernel/drivers/virt/coco/tsm.ko.xz kernel/fs/configfs/configfs.ko.xz\n"
    );
    let list = String::from_utf8(find("etc/sealgate/modules").data.clone()).unwrap();
    assert!(
        list.ends_with("\nvirtio_net\ntsm_sim provider=sev_guest\nsev_guest\n"),
        "{list}"
    );
    // Module files are copied unchanged (still xz: the kernel decompresses them).
    let on_host = std::fs::read(d.0.join(format!(
        "kernel/lib/modules/{RELEASE}/kernel/drivers/net/virtio_net.ko.xz"
    )))
    .unwrap();
    assert_eq!(
        find(&format!(
            "lib/modules/{RELEASE}/kernel/drivers/net/virtio_net.ko.xz"
        ))
        .data,
        on_host
    );
    assert_eq!(find("sbin/sealgate").data, fake_static_elf());

    // GNU cpio reads it the same way (names, types, device numbers).
    let bare = d.write("a.cpio", &cpio_bytes, 0o644);
    match Command::new("cpio")
        .args(["-itv", "--quiet", "-F"])
        .arg(&bare)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let names: Vec<&str> = text
                .lines()
                .map(|l| l.rsplit_once(" -> ").map_or(l, |(a, _)| a))
                .map(|l| l.rsplit(' ').next().unwrap())
                .collect();
            let ours: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ours);
            let console = text.lines().find(|l| l.ends_with(" dev/console")).unwrap();
            assert!(
                console.starts_with("crw-------") && console.contains("5,   1"),
                "{console}"
            );
            assert!(text.contains("init -> sbin/sealgate"), "{text}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with("drwxrwxrwt") && l.ends_with(" tmp"))
            );
        }
        Err(_) => eprintln!("GNU cpio not installed: cross-check skipped (own reader checked)"),
    }
}

#[test]
fn source_date_epoch_and_uncompressed() {
    let d = Dir::new("epoch");
    inputs(&d);
    let (plain, _) = build(
        &d,
        "p.cpio",
        &["--compress", "none"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert!(plain.starts_with(b"070701"));
    let entries = cpio::read(&plain).unwrap();
    assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));
    let (flag, _) = build(
        &d,
        "f.cpio",
        &["--compress", "none", "--mtime", "1700000000"],
        &[],
    );
    assert_eq!(
        flag, plain,
        "--mtime and SOURCE_DATE_EPOCH are the same setting"
    );
    let (zero, _) = build(&d, "z.cpio", &["--compress", "none"], &[]);
    assert_ne!(zero, plain);
}

#[test]
fn wrapper_init_and_refusals() {
    let d = Dir::new("refuse");
    inputs(&d);
    let wrapper = d.0.join("wrapper.sh");
    let (img, _) = build(
        &d,
        "w.cpio.gz",
        &["--init-wrapper", wrapper.to_str().unwrap()],
        &[],
    );
    let entries = cpio::read(&gzip::decompress(&img).unwrap()).unwrap();
    let init = entries.iter().find(|e| e.name == "init").unwrap();
    assert_eq!(init.type_char(), '-');
    assert_eq!(init.mode & 0o7777, 0o755);
    assert!(
        init.data
            .starts_with(b"#!/bin/sh\nexec /sbin/sealgate init")
    );

    let manifest = d.0.join("image.manifest");
    let out = d.0.join("x.img");
    let base = [
        "--manifest",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let sh = d.0.join("bin/sim-helper").to_string_lossy().into_owned();
    let onto_sealgate = format!("{sh}:/sbin/sealgate");
    let onto_init = format!("{sh}:/init");
    for (extra, want) in [
        (["--file", onto_sealgate.as_str()], "collides"),
        (["--file", onto_init.as_str()], "collides"),
        (
            ["--sealgate", sh.as_str()],
            "not a 64-bit little-endian ELF",
        ),
        (["--module", "no_such_module"], "no_such_module is not in"),
        (["--file", "/no/such/file:/x"], "/no/such/file"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        let (ok, _, err) = mkinitramfs(&args, &[]);
        assert!(!ok && err.contains(want), "{extra:?}: {err}");
    }
    // A dynamically linked binary (this test's own executable) is refused.
    let me = std::env::current_exe().unwrap();
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--sealgate", me.to_str().unwrap()]);
    let (ok, _, err) = mkinitramfs(&args, &[]);
    assert!(!ok && err.contains("dynamically linked"), "{err}");
    // A module built for another kernel is included with a warning.
    let other = d.write(
        "other.ko",
        &fake_module("name=other\0depends=\0vermagic=6.1.0-99-amd64 SMP\0"),
        0o644,
    );
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--module", other.to_str().unwrap()]);
    let (ok, _, err) = mkinitramfs(&args, &[]);
    assert!(
        ok && err.contains("module other was built for '6.1.0-99-amd64'"),
        "{err}"
    );
    assert!(!out.with_extension("mkinitramfs-tmp").exists());
}
