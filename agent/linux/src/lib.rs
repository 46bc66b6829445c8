//! sealgate's Linux platform layer: everything the sans-IO core must not do, on rustix.
//!
//! `no_std` + `alloc`; every system call goes through rustix's linux_raw backend, so the guest
//! binary needs no libc. (Being ported: modules still on std are marked in the module list.)
#![deny(unsafe_code)]

// TEMPORARY during the port: std until every module is on core/alloc/rustix, then
// `#![no_std]` (tests keep std).
extern crate alloc;

pub mod fs;
pub mod inputdir;
pub mod log;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod netlink;
pub mod network;
pub mod os_rng;
pub mod process;
pub mod sealdir;
pub mod stdio;
pub mod time;
