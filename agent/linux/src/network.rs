//! The init stage's network: `lo` up; then, for the configured interface (once it
//! appears, waiting a bounded time after its driver loaded), the IPv4 address, link up,
//! the default route, and `/etc/resolv.conf`. All through rtnetlink ([`super::netlink`]).
//!
//! Failures are logged, not fatal: without a network the KBS is unreachable, sealgate
//! retries until its deadline and then fails closed with that (clearer) message.

use crate::netlink::{NetlinkError, Socket};
use crate::{debug, info, warn};
use sealgate_core::config::NetPlan;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

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
            Err(e) => warn!("init: {RESOLV_CONF}: {e}"),
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
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn configure(nl: &mut Socket, index: u32, plan: &NetPlan) -> Result<(), String> {
    fn ctx(what: String) -> impl FnOnce(NetlinkError) -> String {
        move |e| format!("{what}: {e}")
    }
    if let Some(addr) = plan.address {
        nl.add_address(index, addr)
            .map_err(ctx(format!("adding {addr}")))?;
    }
    nl.set_up(index)
        .map_err(ctx("setting the link up".into()))?;
    if let Some(gw) = plan.gateway {
        nl.add_default_route(gw, index)
            .map_err(ctx(format!("adding the default route via {gw}")))?;
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

fn write_resolv_conf(plan: &NetPlan) -> std::io::Result<()> {
    std::fs::create_dir_all("/etc")?;
    std::fs::write(RESOLV_CONF, resolv_conf(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealgate_core::config::Settings;

    #[test]
    fn resolv_conf_lists_the_servers() {
        let plan = Settings::default().resolve_init().unwrap().net.unwrap();
        assert_eq!(
            resolv_conf(&plan),
            "# written by sealgate init\nnameserver 10.0.2.3\n"
        );
    }
}
