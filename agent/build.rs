//! Link flags for the guest binary (only `sealgate`, never `sealctl`): it has no libc, so
//! no C start files (origin provides `_start`), and it is linked statically.
//!
//! The executable is static and not position-independent: origin relocates a static PIE
//! only with a nightly feature, and the product builds on stable. The kernel still
//! randomises the stack, the heap (dlmalloc allocates with mmap) and the vDSO.
fn main() {
    println!("cargo:rustc-link-arg-bin=sealgate=-nostartfiles");
    println!("cargo:rustc-link-arg-bin=sealgate=-static");
    println!("cargo:rustc-link-arg-bin=sealgate=-no-pie");
}
