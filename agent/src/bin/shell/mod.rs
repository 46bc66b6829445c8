//! Platform code shared by the `sealgate` and `sealctl` binaries (included with `#[path]`).
#![allow(dead_code)]

pub mod log;
pub mod net;
pub mod os_rng;
