//! sealgate-image: builds the minimal, reproducible initramfs around the static
//! sealgate binary (`mkinitramfs`). Host tool: std, plus the core library's gzip and the
//! `sha2` crate.
//!
//! See `image/README.md` for the image layout, the reproducibility rules and the
//! interface with the QEMU tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod build;
pub mod cpio;
pub mod gzip;
pub mod kmod;
pub mod sha256;
pub mod spec;
