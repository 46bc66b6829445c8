//! Linux platform code of the binaries (included with `#[path]`; sealctl takes only
//! `log` and `os_rng`).
#![allow(dead_code)]

pub mod inputdir;
pub mod log;
pub mod net;
pub mod os_rng;
pub mod sealdir;
