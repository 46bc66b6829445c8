//! sealgate core: the Trustee KBS client logic, sans-IO and `no_std` + `alloc`.
//!
//! Nothing in this crate opens a socket, a file or reads a clock. The Linux binaries
//! (`src/bin/`) drive it over whatever transport and storage they have.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod b64;
pub mod config;
pub mod dns;
pub mod errno;
pub mod escape;
pub mod gzip;
pub mod hosts;
pub mod http;
pub mod http_server;
pub mod initdata;
pub mod jcs;
pub mod jwe;
pub mod kbs;
pub mod keypem;
pub mod outpath;
pub mod proto;
pub mod rcar;
pub mod rest;
pub mod rng;
pub mod sealed;
pub mod teekey;
pub mod tomlerror;
pub mod trust;
pub mod ttrpc;
pub mod upstream;
pub mod uri;

#[cfg(test)]
mod vector_tests;
