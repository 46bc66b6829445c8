//! sealgate: the guest agent.
#![forbid(unsafe_code)]

#[path = "../shell/mod.rs"]
mod shell;

fn main() {
    let mut rng = shell::os_rng::os_rng();
    let _ = &mut rng;
    info!("sealgate skeleton");
}
