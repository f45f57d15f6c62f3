//! Transport identifiers shared by the transaction layer and the driver.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// A SIP transport protocol (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Transport {
    /// UDP: unreliable, the transaction layer retransmits.
    Udp,
    /// TCP: reliable, no retransmissions.
    Tcp,
    /// TLS over TCP: reliable.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (RFC 3261 §17: no retransmission timers then).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token used in a Via header (`UDP`, `TCP`, `TLS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Parses a Via transport token or a `transport=` URI parameter, case-insensitively.
    pub fn parse(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if token.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else if token.eq_ignore_ascii_case("tls") {
            Some(Transport::Tls)
        } else {
            None
        }
    }

    /// The default port (5060, or 5061 for TLS; RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message goes to or comes from: a transport and a socket address. For
/// connection-oriented transports the driver reuses the connection to `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The transport.
    pub transport: Transport,
    /// The remote socket address.
    pub addr: SocketAddr,
}

impl Target {
    /// Builds a target.
    pub fn new(transport: Transport, addr: SocketAddr) -> Self {
        Self { transport, addr }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.transport, self.addr)
    }
}

/// Bytes to send to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send.
    pub target: Target,
    /// One complete SIP message.
    pub data: Bytes,
}
