//! Platform code shared by the `sealgate` and `sealctl` binaries (included with `#[path]`).
#![allow(dead_code)]

pub mod inputdir;
pub mod log;
pub mod os_rng;
pub mod sealdir;
