//! `qemu/boot-time [N]`: boots the sample-TEE image N times against the test KBS and prints
//! the median kernel-start-to-secret time and sealgate's share (from the guest's
//! `SEALGATE-REPORT timing` line), and the QEMU wall time.

use sealgate_qemu::report::Report;
use sealgate_qemu::{Artifacts, VmConfig, boot, image, work_dir};
use std::time::Duration;
use test_kbs::{Config, Server};

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("N must be a number"))
        .unwrap_or(5);
    let a = Artifacts::get();
    let server = Server::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    })
    .expect("test KBS");
    server
        .add_resource("default/app/key1", b"boot-time secret".to_vec())
        .unwrap();
    let port = server.addr().port();
    let dir = work_dir("boot-time");
    let initrd = dir.join("initrd.cpio");
    image::write(
        &initrd,
        &[&image::base(a), &image::config(image::TRUSTING_CONFIG)],
    );
    let (mut total, mut share, mut wall) = (Vec::new(), Vec::new(), Vec::new());
    println!(
        "boot  kernel→secret  sealgate  QEMU wall   (ms; sample TEE, {})",
        accel()
    );
    for i in 1..=n {
        let b = boot(&VmConfig {
            kernel: a.kernel.image.clone(),
            initrd: initrd.clone(),
            initdata: None,
            disks: Vec::new(),
            append: format!(
                "sealgate.kbs=http://10.0.2.2:{port} sealgate.resource=kbs:///default/app/key1 \
                 sealgate.tee=sample sealgate.mode=report sealgate.deadline=60"
            ),
            log: dir.join(format!("console-{i}.log")),
            timeout: Duration::from_secs(120),
        });
        let r = Report::parse(&b.console);
        let (Some(t), Some(s), Some("ok")) =
            (r.boot_to_secret_us, r.sealgate_us, r.end_status.as_deref())
        else {
            eprintln!("boot {i} failed:\n{}", b.console);
            std::process::exit(1);
        };
        println!(
            "{i:>4}  {:>12}  {:>8}  {:>9}",
            t / 1000,
            s / 1000,
            b.elapsed.as_millis()
        );
        total.push(t / 1000);
        share.push(s / 1000);
        wall.push(b.elapsed.as_millis() as u64);
    }
    let (t, s, w) = (median(&mut total), median(&mut share), median(&mut wall));
    println!(
        "median kernel-start-to-secret {t} ms, of which sealgate {s} ms ({}%); QEMU wall {w} ms",
        (s * 100).checked_div(t).unwrap_or(0)
    );
    server.shutdown();
}

/// The accelerator `qemu/run` chose (its cached probe), for the table header.
fn accel() -> String {
    let dir = sealgate_qemu::repo_root().join(".cache/qemu");
    std::fs::read_dir(dir)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "tcg".into())
}
