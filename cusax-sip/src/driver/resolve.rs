//! Locating SIP servers (RFC 3263 §4): NAPTR → SRV → A/AAAA, with a static
//! outbound-proxy override that skips DNS entirely.
//!
//! Rules implemented (RFC 3263 §4.1, §4.2):
//! - an outbound proxy configured with [`Locator::with_outbound_proxy`] wins; no DNS;
//! - a numeric IP host: transport from the `transport` parameter, else UDP (TLS for
//!   `sips`), port from the URI or the transport's default;
//! - an explicit port: A/AAAA only, same transport rule;
//! - an explicit transport: SRV `_sip._udp` / `_sip._tcp` / `_sips._tcp`, falling back to
//!   A/AAAA on the default port;
//! - otherwise NAPTR (services `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, ordered by order and
//!   preference), then SRV for every supported transport, then A/AAAA with UDP (TLS for
//!   `sips`).
//!
//! SRV records are ordered by priority and, within a priority, by RFC 2782's weighted
//! random choice (so that clients spread over servers as their weights say); a locator
//! built with [`Locator::with_srv_seed`] draws from a seeded generator instead (tests).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

use rand::SeedableRng;

use crate::transaction::{Target, Transport};

/// What to locate: the host part of a SIP URI with its hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLocation {
    /// Host name or IP literal (IPv6 with or without brackets).
    pub host: String,
    /// Explicit port from the URI.
    pub port: Option<u16>,
    /// Explicit `transport` parameter from the URI.
    pub transport: Option<Transport>,
    /// A `sips:` URI (TLS required).
    pub secure: bool,
}

impl ServerLocation {
    /// A location for `host` with no hints.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            transport: None,
            secure: false,
        }
    }
}

/// Why no server could be located.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// The system resolver configuration could not be read (local configuration).
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
    /// DNS gave no usable record (remote: the domain is not set up for SIP).
    #[error("no SIP server found for {0}")]
    NotFound(String),
    /// DNS is not available: no resolver configured and no outbound proxy.
    #[error("no DNS resolver configured and {0} is not an IP address")]
    NoResolver(String),
}

/// RFC 3263 server locator.
#[derive(Clone)]
pub struct Locator {
    outbound: Option<Vec<Target>>,
    dns: Option<TokioResolver>,
    supported: Vec<Transport>,
    /// Seed of the SRV weighted choice; `None`: the thread's random generator.
    srv_seed: Option<u64>,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator")
            .field("outbound", &self.outbound)
            .field("dns", &self.dns.is_some())
            .field("supported", &self.supported)
            .field("srv_seed", &self.srv_seed)
            .finish()
    }
}

impl Locator {
    /// A locator without DNS: only IP literals (and an outbound proxy) resolve.
    pub fn without_dns() -> Self {
        Self {
            outbound: None,
            dns: None,
            supported: vec![Transport::Udp, Transport::Tcp, Transport::Tls],
            srv_seed: None,
        }
    }

    /// Makes the weighted choice among SRV records of equal priority (RFC 2782)
    /// reproducible: every lookup draws from a generator seeded with `seed`.
    pub fn with_srv_seed(mut self, seed: u64) -> Self {
        self.srv_seed = Some(seed);
        self
    }

    /// A locator using the system DNS configuration (`/etc/resolv.conf`).
    pub fn system() -> Result<Self, LocateError> {
        let builder =
            TokioResolver::builder_tokio().map_err(|e| LocateError::Setup(e.to_string()))?;
        Ok(Self {
            dns: Some(builder.build()),
            ..Self::without_dns()
        })
    }

    /// A locator asking these DNS servers (over UDP) instead of the system ones, e.g. a
    /// split-horizon resolver or a test server.
    pub fn with_name_servers(servers: &[SocketAddr]) -> Self {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig};
        use hickory_resolver::name_server::TokioConnectionProvider;
        use hickory_resolver::proto::xfer::Protocol;
        let group: Vec<NameServerConfig> = servers
            .iter()
            .map(|a| NameServerConfig::new(*a, Protocol::Udp))
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build();
        Self {
            dns: Some(resolver),
            ..Self::without_dns()
        }
    }

    /// A locator that sends everything to these targets, in order, without DNS (a
    /// static outbound proxy, RFC 3261 §8.1.2).
    pub fn with_outbound_proxy(targets: Vec<Target>) -> Self {
        Self {
            outbound: Some(targets),
            ..Self::without_dns()
        }
    }

    /// Restricts the transports considered when DNS chooses (default UDP, TCP, TLS).
    pub fn set_supported_transports(&mut self, transports: Vec<Transport>) {
        self.supported = transports;
    }

    /// Locates the servers for `loc`, best first.
    pub async fn locate(&self, loc: &ServerLocation) -> Result<Vec<Target>, LocateError> {
        if let Some(proxy) = &self.outbound {
            return Ok(proxy.clone());
        }
        let host = loc.host.trim_start_matches('[').trim_end_matches(']');
        let default_transport = if loc.secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let transport = loc.transport.unwrap_or(default_transport);
            let port = loc.port.unwrap_or(transport.default_port());
            return Ok(vec![Target::new(transport, SocketAddr::new(ip, port))]);
        }
        let Some(dns) = &self.dns else {
            return Err(LocateError::NoResolver(loc.host.clone()));
        };
        if let Some(port) = loc.port {
            let transport = loc.transport.unwrap_or(default_transport);
            return self.address_targets(dns, host, port, transport).await;
        }
        if let Some(transport) = loc.transport {
            let found = self
                .srv_targets(dns, &srv_name(transport, host), transport)
                .await;
            if !found.is_empty() {
                return Ok(found);
            }
            return self
                .address_targets(dns, host, transport.default_port(), transport)
                .await;
        }
        // NAPTR (RFC 3263 §4.1).
        let mut naptr = Vec::new();
        if let Ok(lookup) = dns.lookup(host, RecordType::NAPTR).await {
            for rdata in lookup.iter() {
                if let RData::NAPTR(n) = rdata {
                    let service = String::from_utf8_lossy(n.services()).to_ascii_uppercase();
                    let transport = match service.as_str() {
                        "SIP+D2U" if !loc.secure => Transport::Udp,
                        "SIP+D2T" if !loc.secure => Transport::Tcp,
                        "SIPS+D2T" => Transport::Tls,
                        _ => continue,
                    };
                    if !self.supported.contains(&transport) {
                        continue;
                    }
                    if !n.flags().eq_ignore_ascii_case(b"s") {
                        continue;
                    }
                    naptr.push((
                        n.order(),
                        n.preference(),
                        n.replacement().to_ascii(),
                        transport,
                    ));
                }
            }
        }
        naptr.sort_by_key(|(o, p, _, _)| (*o, *p));
        let mut out = Vec::new();
        for (_, _, name, transport) in &naptr {
            out.extend(self.srv_targets(dns, name, *transport).await);
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // No NAPTR: SRV for each supported transport (RFC 3263 §4.1).
        for transport in self.supported.clone() {
            if loc.secure && transport != Transport::Tls {
                continue;
            }
            out.extend(
                self.srv_targets(dns, &srv_name(transport, host), transport)
                    .await,
            );
        }
        if !out.is_empty() {
            return Ok(out);
        }
        self.address_targets(
            dns,
            host,
            default_transport.default_port(),
            default_transport,
        )
        .await
    }

    async fn srv_targets(
        &self,
        dns: &TokioResolver,
        name: &str,
        transport: Transport,
    ) -> Vec<Target> {
        let Ok(lookup) = dns.srv_lookup(name).await else {
            tracing::debug!(name, "no SRV records");
            return Vec::new();
        };
        let records: Vec<_> = lookup
            .iter()
            .map(|s| (s.priority(), s.weight(), (s.port(), s.target().to_ascii())))
            .collect();
        let records = match self.srv_seed {
            Some(seed) => srv_order(records, &mut rand::rngs::StdRng::seed_from_u64(seed)),
            None => srv_order(records, &mut rand::rng()),
        };
        let mut out = Vec::new();
        for (port, target) in records {
            if target == "." {
                continue;
            }
            if let Ok(mut t) = self.address_targets(dns, &target, port, transport).await {
                out.append(&mut t);
            }
        }
        out
    }

    async fn address_targets(
        &self,
        dns: &TokioResolver,
        host: &str,
        port: u16,
        transport: Transport,
    ) -> Result<Vec<Target>, LocateError> {
        let ips = dns
            .lookup_ip(host)
            .await
            .map_err(|e| LocateError::NotFound(format!("{host}: {e}")))?;
        let out: Vec<Target> = ips
            .iter()
            .map(|ip| Target::new(transport, SocketAddr::new(ip, port)))
            .collect();
        if out.is_empty() {
            Err(LocateError::NotFound(host.to_string()))
        } else {
            Ok(out)
        }
    }
}

fn srv_name(transport: Transport, host: &str) -> String {
    match transport {
        Transport::Tls => format!("_sips._tcp.{host}"),
        Transport::Tcp => format!("_sip._tcp.{host}"),
        Transport::Udp => format!("_sip._udp.{host}"),
    }
}

/// RFC 2782's order of SRV records `(priority, weight, record)`: ascending priority; within
/// a priority, repeatedly a weighted random pick — the records in random order with those
/// of weight 0 first, a number drawn uniformly from 0 to the sum of the weights, the first
/// record whose running sum reaches it — so that a record of weight w comes first with
/// probability about w / sum, and weight 0 only rarely ahead of weighted ones.
pub(crate) fn srv_order<T>(mut records: Vec<(u16, u16, T)>, rng: &mut impl rand::Rng) -> Vec<T> {
    use rand::seq::SliceRandom;
    // "in any order, except that all those with weight 0 are placed at the beginning":
    // shuffled, then (stable) by priority and weight 0 first
    records.shuffle(rng);
    records.sort_by_key(|&(prio, weight, _)| (prio, weight != 0));
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records;
    while !rest.is_empty() {
        let prio = rest.first().map_or(0, |r| r.0);
        let end = rest.iter().take_while(|r| r.0 == prio).count();
        let mut group: Vec<(u16, u16, T)> = rest.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.1)).sum();
            let pick = rng.random_range(0..=total);
            let mut running = 0u32;
            let i = group
                .iter()
                .position(|r| {
                    running += u32::from(r.1);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(i).2);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How often each record comes first over `n` orderings (seeded, so deterministic).
    fn firsts(records: &[(u16, u16, &'static str)], n: usize) -> Vec<(&'static str, usize)> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut count: Vec<(&str, usize)> = records.iter().map(|r| (r.2, 0)).collect();
        for _ in 0..n {
            let order = srv_order(records.to_vec(), &mut rng);
            assert_eq!(order.len(), records.len());
            if let Some(c) = count.iter_mut().find(|c| Some(&c.0) == order.first()) {
                c.1 += 1;
            }
        }
        count
    }

    #[test]
    fn srv_priority_always_wins() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let order = srv_order(
                vec![(20, 100, "c"), (10, 1, "a"), (30, 0, "d"), (10, 60000, "b")],
                &mut rng,
            );
            assert_eq!(&order[2..], ["c", "d"]);
            assert!(order[..2].contains(&"a") && order[..2].contains(&"b"));
        }
    }

    #[test]
    fn srv_weights_share_the_first_place() {
        // 50 : 5 → about 50/55 = 91 % first for the heavy one (RFC 2782)
        let f = firsts(&[(10, 5, "light"), (10, 50, "heavy")], 10_000);
        let heavy = f.iter().find(|c| c.0 == "heavy").map_or(0, |c| c.1);
        assert!((8_800..=9_400).contains(&heavy), "{f:?}");
        // equal weights: about half each
        let f = firsts(&[(10, 7, "x"), (10, 7, "y")], 10_000);
        assert!(f.iter().all(|c| (4_600..=5_400).contains(&c.1)), "{f:?}");
        // weight 0 beside a weighted record: first only when the draw is 0 (1 in 11)
        let f = firsts(&[(10, 10, "w"), (10, 0, "zero")], 11_000);
        let zero = f.iter().find(|c| c.0 == "zero").map_or(0, |c| c.1);
        assert!((700..=1_300).contains(&zero), "{f:?}");
        // only weight 0: in random order, a third each
        let f = firsts(&[(10, 0, "p"), (10, 0, "q"), (10, 0, "r")], 9_000);
        assert!(f.iter().all(|c| (2_700..=3_300).contains(&c.1)), "{f:?}");
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn numeric_hosts_skip_dns() {
        let l = Locator::without_dns();
        let rt = rt();
        let t = rt
            .block_on(l.locate(&ServerLocation::new("127.0.0.1")))
            .expect("ip");
        assert_eq!(
            t,
            vec![Target::new(
                Transport::Udp,
                "127.0.0.1:5060".parse().unwrap()
            )]
        );
        let mut loc = ServerLocation::new("[::1]");
        loc.secure = true;
        let t = rt.block_on(l.locate(&loc)).expect("ip6");
        assert_eq!(
            t,
            vec![Target::new(Transport::Tls, "[::1]:5061".parse().unwrap())]
        );
        let mut loc = ServerLocation::new("10.0.0.1");
        loc.transport = Some(Transport::Tcp);
        loc.port = Some(5080);
        let t = rt.block_on(l.locate(&loc)).expect("ip tcp");
        assert_eq!(
            t,
            vec![Target::new(
                Transport::Tcp,
                "10.0.0.1:5080".parse().unwrap()
            )]
        );
    }

    #[test]
    fn outbound_proxy_overrides_names() {
        let proxy = Target::new(Transport::Tcp, "127.0.0.1:5060".parse().unwrap());
        let l = Locator::with_outbound_proxy(vec![proxy]);
        let t = rt()
            .block_on(l.locate(&ServerLocation::new("cusax.test")))
            .expect("proxy");
        assert_eq!(t, vec![proxy]);
    }

    #[test]
    fn names_without_dns_are_an_error() {
        let l = Locator::without_dns();
        let e = rt()
            .block_on(l.locate(&ServerLocation::new("cusax.test")))
            .unwrap_err();
        assert!(matches!(e, LocateError::NoResolver(_)), "{e}");
    }

    #[test]
    fn srv_names() {
        assert_eq!(srv_name(Transport::Udp, "a.test"), "_sip._udp.a.test");
        assert_eq!(srv_name(Transport::Tcp, "a.test"), "_sip._tcp.a.test");
        assert_eq!(srv_name(Transport::Tls, "a.test"), "_sips._tcp.a.test");
    }
}
