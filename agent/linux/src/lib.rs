//! sealgate's Linux platform layer: everything the sans-IO core must not do, on rustix.
//!
//! `no_std` + `alloc`; every system call goes through rustix's linux_raw backend, so the guest
//! binary needs no libc. Unit tests run with std (the test harness needs it).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod blockdev;
pub mod dm;
pub mod event;
pub mod fs;
pub mod hygiene;
pub mod inputdir;
pub mod keyring;
pub mod log;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod netlink;
pub mod network;
pub mod os_rng;
pub mod process;
pub mod sealdir;
pub mod spawn;
pub mod stdio;
pub mod time;

/// An OS error as an operator reads it: "No such file or directory (os error 2)", as std
/// prints it (rustix alone, without std, prints only the number).
pub fn os(e: impl core::borrow::Borrow<rustix::io::Errno>) -> sealgate_core::errno::OsError {
    sealgate_core::errno::OsError(e.borrow().raw_os_error())
}
