//! Finding other instances of the same notebook on the local network (mDNS / DNS-SD) and
//! syncing with them directly, with no relay.
//!
//! Each instance advertises `_weft-notes._tcp` with its listening port, its peer id and a
//! tag of its notebook (a hash: the name, which is the notebook's secret, never goes on the
//! network). Of two instances of one notebook, the one with the lower peer id dials the
//! other, so a pair makes one connection.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use weft::PeerId;

use crate::links::SharedLinks;

/// The DNS-SD service type instances advertise and browse.
const SERVICE: &str = "_weft-notes._tcp.local.";

/// Advertising this instance and dialling the others found.
pub(crate) struct Discovery {
    daemon: ServiceDaemon,
    task: JoinHandle<()>,
}

impl Discovery {
    /// Advertises this instance (listening on `bound`) and dials the instances of the same
    /// notebook that it finds, through `links`.
    pub(crate) fn start(
        notebook: &str,
        peer: &PeerId,
        bound: SocketAddr,
        links: SharedLinks,
    ) -> Result<Self, mdns_sd::Error> {
        let daemon = ServiceDaemon::new()?;
        let tag = notebook_tag(notebook);
        let instance = dns_label(peer.as_str());
        let properties = [("notebook", tag.as_str()), ("peer", peer.as_str())];
        let service = ServiceInfo::new(
            SERVICE,
            &instance,
            &format!("{instance}.local."),
            (),
            bound.port(),
            &properties[..],
        )?
        .enable_addr_auto();
        daemon.register(service)?;
        let found = daemon.browse(SERVICE)?;

        let own = peer.as_str().to_owned();
        let task = tokio::spawn(async move {
            let mut dialled = HashSet::new();
            while let Ok(event) = found.recv_async().await {
                let ServiceEvent::ServiceResolved(service) = event else {
                    continue;
                };
                if service.get_property_val_str("notebook") != Some(tag.as_str()) {
                    continue;
                }
                let Some(theirs) = service.get_property_val_str("peer") else {
                    continue;
                };
                // Ourselves, or the other side of the pair dials.
                if own.as_str() >= theirs || dialled.contains(theirs) {
                    continue;
                }
                let addresses: Vec<IpAddr> = service
                    .get_addresses()
                    .iter()
                    .map(|address| address.to_ip_addr())
                    .collect();
                if let Some(ip) = reachable(&addresses) {
                    dialled.insert(theirs.to_owned());
                    let url = format!("ws://{}/", SocketAddr::new(ip, service.get_port()));
                    links.lock().await.dial(&url);
                }
            }
        });
        Ok(Self { daemon, task })
    }

    /// Withdraws the advertisement and stops browsing (connections made stay, until the
    /// app closes them).
    pub(crate) async fn stop(self) {
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_async().await;
        }
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A tag that tells instances of one notebook apart without saying its name.
fn notebook_tag(notebook: &str) -> String {
    Sha256::digest(format!("weft-notes lan\0{notebook}").as_bytes())[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `text` as a DNS label: letters, digits and `-`, at most 63 bytes.
fn dns_label(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect()
}

/// The address to dial among those advertised: IPv4 first (an IPv6 link-local address
/// would need its interface named), loopback last.
fn reachable(addresses: &[IpAddr]) -> Option<IpAddr> {
    let mut usable: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_unspecified(),
            IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_unicast_link_local(),
        })
        .collect();
    usable.sort_by_key(|ip| (ip.is_ipv6(), ip.is_loopback(), *ip));
    usable.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_labels() {
        assert_eq!(notebook_tag("home"), notebook_tag("home"));
        assert_ne!(notebook_tag("home"), notebook_tag("work"));
        assert_eq!(notebook_tag("home").len(), 16);
        assert_eq!(dns_label("weft-4f5f_66.x"), "weft-4f5f-66-x");
    }

    #[test]
    fn ipv4_is_dialled_before_ipv6_and_link_local_is_not() {
        let v4: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let link_local: IpAddr = "fe80::1".parse().unwrap_or(v4);
        let global: IpAddr = "2001:db8::1".parse().unwrap_or(v4);
        assert_eq!(reachable(&[global, link_local, v4]), Some(v4));
        assert_eq!(reachable(&[link_local]), None);
        assert_eq!(reachable(&[global]), Some(global));
    }
}
