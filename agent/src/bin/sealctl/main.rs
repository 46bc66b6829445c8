//! sealctl: host-side operator tool.
#![forbid(unsafe_code)]

#[path = "../shell/mod.rs"]
mod shell;

fn main() {
    info!("sealctl skeleton");
}
