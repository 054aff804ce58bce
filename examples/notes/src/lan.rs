//! Finding other instances of the same notebook on the local network (mDNS / DNS-SD) and
//! syncing with them directly, with no relay.
//!
//! Each instance advertises `_weft-notes._tcp` with its listening port, its peer id and a
//! tag of its notebook: a hash, so the name (the notebook's secret) never goes on the
//! network, though a name that is easy to guess is easy to find from its hash. Of two instances of one notebook, the one with the lower peer id dials the
//! other, so a pair makes one connection; the listener checks that the dialler knows the
//! notebook's name (see `links`). An instance that leaves (its advertisement withdrawn or
//! expired) is no longer dialled.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::task::JoinHandle;
use weft::PeerId;

use crate::{
    links::{Links, SharedLinks},
    notebook::{derive, hex},
};

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
            // What this instance dials, by the other's service name: an instance that
            // leaves is forgotten, one that comes back elsewhere is dialled there.
            let mut dialled: HashMap<String, String> = HashMap::new();
            while let Ok(event) = found.recv_async().await {
                match event {
                    ServiceEvent::ServiceResolved(service) => {
                        if service.get_property_val_str("notebook") != Some(tag.as_str()) {
                            continue;
                        }
                        let Some(theirs) = service.get_property_val_str("peer") else {
                            continue;
                        };
                        // Ourselves, or the other side of the pair dials.
                        if own.as_str() >= theirs {
                            continue;
                        }
                        let addresses: Vec<IpAddr> = service
                            .get_addresses()
                            .iter()
                            .map(|address| address.to_ip_addr())
                            .collect();
                        let Some(ip) = reachable(&addresses) else {
                            continue;
                        };
                        let url = format!("ws://{}/", SocketAddr::new(ip, service.get_port()));
                        let moved = dialled.insert(service.get_fullname().to_owned(), url.clone());
                        let mut links = links.lock().await;
                        if let Some(old) = moved.filter(|old| *old != url) {
                            forget_unless_used(&mut links, &dialled, &old);
                        }
                        // The URL is made here from an address and a port: always valid.
                        let _ = links.dial_peer(&url, true);
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        if let Some(url) = dialled.remove(&fullname) {
                            forget_unless_used(&mut *links.lock().await, &dialled, &url);
                        }
                    }
                    _ => {}
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

/// Stops dialling `url` unless another instance found is there now (one that restarted on
/// the same port with a new peer id, while the old one's record expires).
fn forget_unless_used(links: &mut Links, dialled: &HashMap<String, String>, url: &str) {
    if !dialled.values().any(|other| other == url) {
        links.forget_discovered(url);
    }
}

/// A tag that tells instances of one notebook apart without saying its name.
fn notebook_tag(notebook: &str) -> String {
    hex(&derive("lan", notebook)[..8])
}

/// `text` as a DNS label: letters, digits and `-`, at most 63 bytes.
fn dns_label(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect()
}

/// The address to dial among those advertised: IPv4 (the app listens on IPv4), loopback
/// last (another host's loopback is not this one's).
fn reachable(addresses: &[IpAddr]) -> Option<IpAddr> {
    addresses
        .iter()
        .copied()
        .filter(|ip| ip.is_ipv4() && !ip.is_unspecified())
        .min_by_key(|ip| (ip.is_loopback(), *ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_labels() {
        assert_eq!(notebook_tag("home").len(), 16);
        assert_eq!(dns_label("weft-4f5f_66.x"), "weft-4f5f-66-x");
    }

    #[test]
    fn an_ipv4_address_is_dialled_and_loopback_last() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let (lan, loopback, v6) = (ip("10.0.0.2"), ip("127.0.0.1"), ip("2001:db8::1"));
        assert_eq!(reachable(&[v6, loopback, lan]), Some(lan));
        assert_eq!(reachable(&[loopback]), Some(loopback));
        assert_eq!(reachable(&[v6]), None);
    }
}
