//! Boots the tsm_sim module with the echo firmware and runs guest-sim's in-guest self-test:
//! the stand-in provider behaves like the real ones towards configfs-tsm and /dev/sev-guest,
//! and its daemon protocol handles absent, slow, failing and misbehaving daemons.

use sealgate_qemu::{Artifacts, VmConfig, boot, console, image, work_dir};
use std::time::Duration;

fn selftest(name: &str, module_params: &str) {
    let a = Artifacts::get();
    let dir = work_dir(name);
    let initrd = dir.join("initrd.cpio");
    image::write(
        &initrd,
        &[
            &image::base(a),
            &image::sim_overlay(a, "firmware=echo\nexec=/init,selftest\n"),
        ],
    );
    let b = boot(&VmConfig {
        kernel: a.kernel.image.clone(),
        initrd,
        initdata: None,
        disks: Vec::new(),
        append: module_params.into(),
        log: dir.join("console.log"),
        timeout: Duration::from_secs(120),
    });
    let results = console::tagged(&b.console, "SELFTEST ");
    let failed: Vec<_> = results.iter().filter(|l| l.contains("FAIL")).collect();
    assert!(
        b.status.success() && failed.is_empty() && b.console.contains("guest-sim: SELFTEST PASSED"),
        "self-test failed ({:?}): {failed:?}\n--- console ---\n{}",
        b.status,
        b.console
    );
    assert!(results.len() >= 10, "too few checks ran:\n{}", b.console);
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn sev_guest_provider_with_ioctl_device() {
    selftest(
        "module-snp",
        "tsm_sim.provider=sev_guest tsm_sim.sev_ioctl=1",
    );
}

#[test]
#[ignore = "boots QEMU: run qemu/test"]
fn tdx_guest_provider() {
    selftest("module-tdx", "tsm_sim.provider=tdx_guest");
}
