//! Link flags for the guest binary (only `sealgate`): it has no libc, so no C start files
//! (origin provides `_start`), and it is linked statically.
//!
//! - The executable is static and not position-independent: origin relocates a static PIE
//!   only with a nightly feature, and the product builds on stable. The kernel still
//!   randomises the stack, the heap (dlmalloc allocates with mmap) and the vDSO.
//! - `.eh_frame` and `.eh_frame_hdr` are discarded (about 140 KB): the binary is built with
//!   `panic = "abort"`, has no unwinder and prints no backtraces, so nothing reads them.
use std::io::Write;

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let script = std::path::Path::new(&out).join("discard-unwind-tables.ld");
    let mut f = std::fs::File::create(&script).expect("linker script");
    f.write_all(
        b"SECTIONS {\n  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) }\n}\nINSERT AFTER .text;\n",
    )
    .expect("linker script");
    for arg in [
        "-nostartfiles",
        "-static",
        "-no-pie",
        "-Wl,--no-eh-frame-hdr",
        &format!("-Wl,-T,{}", script.display()),
    ] {
        println!("cargo:rustc-link-arg-bin=sealgate={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
