//! The guest agent's logic: the CLI, the run flow (configuration, planning, the
//! all-or-nothing write), the client loop that executes the core driver's actions, the
//! transport, evidence and the init stage. `no_std` + `alloc` on the platform layer; the
//! `sealgate` binary (`main.rs`) only starts it.
//!
//! A library so that its unit tests run under the std test harness, while the binary itself
//! links without libc.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cli;
pub mod client;
pub mod eventlog;
pub mod evidence;
pub mod init;
pub mod initdata_source;
pub mod run;
pub mod serve;
pub mod transport;
pub mod volume;

/// The alloc items every module uses (a no_std crate has no std prelude); not every
/// module needs each of them.
#[allow(unused_imports)]
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::collections::{BTreeMap, BTreeSet};
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}
