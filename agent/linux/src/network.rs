//! The init stage's network: `lo` up; then, for the configured interface (once it
//! appears, waiting a bounded time after its driver loaded), the IPv4 address, link up,
//! the default route, and `/etc/resolv.conf`. All through rtnetlink ([`super::netlink`]).
//!
//! Failures are logged, not fatal: without a network the KBS is unreachable, sealgate
//! retries until its deadline and then fails closed with that (clearer) message.

use crate::netlink::{NetlinkError, Socket};
use crate::time::Instant;
use crate::{debug, info, warn};
use alloc::format;
use alloc::string::String;
use core::fmt;
use core::fmt::Write as _;
use core::time::Duration;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use sealgate_core::config::{Ipv4Cidr, NetPlan};

/// Where the name servers are written.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Configures the network as planned.
pub fn setup(plan: &NetPlan) {
    let t = Instant::now();
    let mut nl = match Socket::open() {
        Ok(s) => s,
        Err(e) => {
            warn!("init: network: cannot open a netlink socket: {e}");
            return;
        }
    };
    match nl.link("lo") {
        Ok(Some(lo)) => match nl.set_up(lo.index) {
            Ok(()) => debug!("init: lo up"),
            Err(e) => warn!("init: bringing lo up: {e}"),
        },
        Ok(None) => debug!("init: no lo interface"),
        Err(e) => warn!("init: looking up lo: {e}"),
    }

    let Some(index) = wait_for(&mut nl, &plan.ifname, Duration::from_secs(plan.wait_secs)) else {
        if plan.defaults {
            info!(
                "init: no interface {} after {} s; network not configured",
                plan.ifname, plan.wait_secs
            );
        } else {
            warn!(
                "init: configured interface {} did not appear within {} s",
                plan.ifname, plan.wait_secs
            );
        }
        return;
    };
    if let Err(e) = configure(&mut nl, index, plan) {
        warn!("init: network on {}: {e}", plan.ifname);
        return;
    }
    info!(
        "init: {} up{}{}{} ({} ms)",
        plan.ifname,
        plan.address.map(|a| format!(", {a}")).unwrap_or_default(),
        plan.gateway
            .map(|g| format!(", default via {g}"))
            .unwrap_or_default(),
        if plan.defaults {
            " (QEMU user-networking defaults)"
        } else {
            ""
        },
        t.elapsed().as_millis()
    );
    if !plan.dns.is_empty() {
        match write_resolv_conf(plan) {
            Ok(()) => debug!("init: wrote {RESOLV_CONF}"),
            Err(e) => warn!("init: {RESOLV_CONF}: {}", crate::os(e)),
        }
    }
}

/// Waits up to `limit` for interface `name`; its index.
fn wait_for(nl: &mut Socket, name: &str, limit: Duration) -> Option<u32> {
    let start = Instant::now();
    loop {
        match nl.link(name) {
            Ok(Some(link)) => {
                debug!(
                    "init: interface {name} is index {} (after {} ms)",
                    link.index,
                    start.elapsed().as_millis()
                );
                return Some(link.index);
            }
            Ok(None) => {}
            Err(e) => {
                warn!("init: looking up {name}: {e}");
                return None;
            }
        }
        if start.elapsed() >= limit {
            return None;
        }
        crate::time::sleep(Duration::from_millis(50));
    }
}

/// A configuration step that failed, with the kernel's answer.
#[derive(Debug)]
pub enum ConfigureError {
    /// Adding the address.
    Address(Ipv4Cidr, NetlinkError),
    /// Setting the link up.
    LinkUp(NetlinkError),
    /// Adding the default route.
    Route(core::net::Ipv4Addr, NetlinkError),
}

impl fmt::Display for ConfigureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigureError::Address(addr, e) => write!(f, "adding {addr}: {e}"),
            ConfigureError::LinkUp(e) => write!(f, "setting the link up: {e}"),
            ConfigureError::Route(gw, e) => write!(f, "adding the default route via {gw}: {e}"),
        }
    }
}

impl core::error::Error for ConfigureError {}

fn configure(nl: &mut Socket, index: u32, plan: &NetPlan) -> Result<(), ConfigureError> {
    if let Some(addr) = plan.address {
        nl.add_address(index, addr)
            .map_err(|e| ConfigureError::Address(addr, e))?;
    }
    nl.set_up(index).map_err(ConfigureError::LinkUp)?;
    if let Some(gw) = plan.gateway {
        nl.add_default_route(gw, index)
            .map_err(|e| ConfigureError::Route(gw, e))?;
    }
    Ok(())
}

/// The `resolv.conf` text for `plan`.
pub fn resolv_conf(plan: &NetPlan) -> String {
    let mut s = String::from("# written by sealgate init\n");
    for ns in &plan.dns {
        let _ = writeln!(s, "nameserver {ns}");
    }
    s
}

/// Writes `resolv.conf` (creating `/etc` if needed), replacing what was there.
fn write_resolv_conf(plan: &NetPlan) -> Result<(), Errno> {
    write_file_in("/etc", RESOLV_CONF, resolv_conf(plan).as_bytes())
}

/// Creates directory `dir` if missing (its parent must exist), then writes `path` with
/// `contents`, truncating it (mode 0644 if created). Opened without blocking (a FIFO
/// without a reader fails with `ENXIO` instead of hanging) and written only if it is a
/// regular file (`EINVAL` otherwise).
fn write_file_in(dir: &str, path: &str, contents: &[u8]) -> Result<(), Errno> {
    match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    let fd = crate::fs::retry(|| {
        rustix::fs::open(
            path,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
    })?;
    if rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode)
        != rustix::fs::FileType::RegularFile
    {
        return Err(Errno::INVAL);
    }
    crate::stdio::write_all(rustix::fd::AsFd::as_fd(&fd), contents)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use sealgate_core::config::Settings;

    #[test]
    fn writes_a_file_creating_its_directory() {
        let dir = std::env::temp_dir().join(std::format!("sealgate-etc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = dir.to_str().unwrap();
        let f = std::format!("{d}/resolv.conf");
        write_file_in(d, &f, b"nameserver 10.0.2.3\nnameserver 10.0.2.4\n").unwrap();
        write_file_in(d, &f, b"nameserver 1.1.1.1\n").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"nameserver 1.1.1.1\n");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            write_file_in("/no/such/etc", "/no/such/etc/resolv.conf", b""),
            Err(Errno::NOENT)
        );
    }

    #[test]
    fn a_fifo_or_device_in_place_of_the_file_is_refused_without_blocking() {
        let dir =
            std::env::temp_dir().join(std::format!("sealgate-etc-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        let f = std::format!("{d}/resolv.conf");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            f.as_str(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Without O_NONBLOCK this open would wait for a reader forever.
        assert_eq!(
            write_file_in(d, &f, b"nameserver 1.1.1.1\n"),
            Err(Errno::NXIO)
        );
        assert_eq!(write_file_in(d, "/dev/null", b"x"), Err(Errno::INVAL));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolv_conf_lists_the_servers() {
        let plan = Settings::default().resolve_init().unwrap().net.unwrap();
        assert_eq!(
            resolv_conf(&plan),
            "# written by sealgate init\nnameserver 10.0.2.3\n"
        );
    }
}
