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
//! SRV records are ordered by priority, then by descending weight (deterministic: RFC
//! 2782's weighted random choice is not applied).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

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
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator")
            .field("outbound", &self.outbound)
            .field("dns", &self.dns.is_some())
            .field("supported", &self.supported)
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
        }
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
        let mut records: Vec<_> = lookup
            .iter()
            .map(|s| (s.priority(), s.weight(), s.port(), s.target().to_ascii()))
            .collect();
        records.sort_by_key(|(prio, weight, _, _)| (*prio, std::cmp::Reverse(*weight)));
        let mut out = Vec::new();
        for (_, _, port, target) in records {
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

#[cfg(test)]
mod tests {
    use super::*;

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
