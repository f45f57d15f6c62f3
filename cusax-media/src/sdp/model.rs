//! The SDP data model (RFC 8866 §5) and its serializer.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// Largest SDP body accepted by [`SessionDescription::parse`], in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Largest number of lines accepted.
pub const MAX_LINES: usize = 1024;
/// Largest single line accepted, in bytes.
pub const MAX_LINE_LEN: usize = 4096;
/// Largest number of `m=` sections accepted.
pub const MAX_MEDIA: usize = 16;
/// Largest number of `a=` lines per section.
pub const MAX_ATTRIBUTES: usize = 256;

/// `o=` (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name, `-` when there is none.
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version, incremented on every change (RFC 3264 §8).
    pub session_version: u64,
    /// Unicast address of the originator (`IN IP4` / `IN IP6` only).
    pub address: String,
    /// `IP4` or `IP6` as written.
    pub addr_type: String,
}

/// A connection address: an IP literal or a host name (RFC 8866 §5.7 allows FQDNs;
/// resolve them with [`SessionDescription::resolve_hosts`] before negotiating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// IP literal.
    Ip(IpAddr),
    /// Host name, with whether `IP6` was declared.
    Host {
        /// The name.
        name: String,
        /// `IN IP6` was given.
        ipv6: bool,
    },
}

/// `c=` (RFC 8866 §5.7). Only `IN` with a unicast address is supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection address.
    pub address: Address,
}

impl Connection {
    /// A connection line for an IP address.
    pub fn ip(ip: IpAddr) -> Self {
        Connection {
            address: Address::Ip(ip),
        }
    }
}

/// One `a=` line (RFC 8866 §5.13): `a=name` or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Value after the first `:`, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=name`).
    pub fn flag(name: &str) -> Self {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }
    /// A value attribute (`a=name:value`).
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// One media section (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// Transport port; 0 means the stream is rejected/disabled (RFC 3264 §6).
    pub port: u16,
    /// Optional `/<number of ports>`.
    pub num_ports: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// Formats (payload types for RTP), in preference order.
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Lines kept verbatim (`i=`, `b=`, `k=`): `(type, value)`.
    pub other: Vec<(char, String)>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// First attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    /// All attributes with this name.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        self.attributes.iter().filter(move |a| a.name == name)
    }
    /// Whether a property attribute is present.
    pub fn has_flag(&self, name: &str) -> bool {
        self.attributes.iter().any(|a| a.name == name)
    }
}

/// A whole session description (RFC 8866 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`; `-` when the creator has nothing to say.
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// `t=` start and stop (0 0 for our use).
    pub timing: (u64, u64),
    /// Session-level lines kept verbatim (`i=`, `u=`, `e=`, `p=`, `b=`, `r=`, `z=`, `k=`).
    pub other: Vec<(char, String)>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Media sections.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Session-level attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The connection address in effect for media section `idx` (media level, else session
    /// level; RFC 8866 §5.7).
    pub fn connection_for(&self, idx: usize) -> Option<&Address> {
        self.media
            .get(idx)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
            .map(|c| &c.address)
    }

    /// Replaces host names in `c=` lines with what `resolve` returns (the caller does the
    /// DNS look-up; this crate does no I/O). Names it cannot resolve are left as they are.
    pub fn resolve_hosts(&mut self, resolve: impl Fn(&str) -> Option<IpAddr>) {
        let conns = self
            .connection
            .iter_mut()
            .chain(self.media.iter_mut().filter_map(|m| m.connection.as_mut()));
        for c in conns {
            if let Address::Host { name, .. } = &c.address
                && let Some(ip) = resolve(name)
            {
                c.address = Address::Ip(ip);
            }
        }
    }
}

fn write_conn(out: &mut String, c: &Connection) {
    let _ = match &c.address {
        Address::Ip(ip) => {
            let kind = if ip.is_ipv4() { "IP4" } else { "IP6" };
            write!(out, "c=IN {kind} {ip}\r\n")
        }
        Address::Host { name, ipv6 } => {
            let kind = if *ipv6 { "IP6" } else { "IP4" };
            write!(out, "c=IN {kind} {name}\r\n")
        }
    };
}

fn write_attr(out: &mut String, a: &Attribute) {
    match &a.value {
        Some(v) => {
            let _ = write!(out, "a={}:{}\r\n", a.name, v);
        }
        None => {
            let _ = write!(out, "a={}\r\n", a.name);
        }
    }
}

impl fmt::Display for SessionDescription {
    /// Serializes with CRLF line ends in the RFC 8866 §5 order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(512);
        out.push_str("v=0\r\n");
        let o = &self.origin;
        let _ = write!(
            out,
            "o={} {} {} IN {} {}\r\n",
            o.username, o.session_id, o.session_version, o.addr_type, o.address
        );
        let _ = write!(out, "s={}\r\n", self.session_name);
        // i= u= e= p= come before c=, b= after; z= k= after t=. We keep the relative order
        // of kept lines and place them by type.
        for (t, v) in self
            .other
            .iter()
            .filter(|(t, _)| matches!(t, 'i' | 'u' | 'e' | 'p'))
        {
            let _ = write!(out, "{t}={v}\r\n");
        }
        if let Some(c) = &self.connection {
            write_conn(&mut out, c);
        }
        for (t, v) in self.other.iter().filter(|(t, _)| *t == 'b') {
            let _ = write!(out, "{t}={v}\r\n");
        }
        let _ = write!(out, "t={} {}\r\n", self.timing.0, self.timing.1);
        for (t, v) in self
            .other
            .iter()
            .filter(|(t, _)| !matches!(t, 'i' | 'u' | 'e' | 'p' | 'b'))
        {
            let _ = write!(out, "{t}={v}\r\n");
        }
        for a in &self.attributes {
            write_attr(&mut out, a);
        }
        for m in &self.media {
            let _ = write!(out, "m={} {}", m.media, m.port);
            if let Some(n) = m.num_ports {
                let _ = write!(out, "/{n}");
            }
            let _ = write!(out, " {}", m.proto);
            for fmt in &m.formats {
                let _ = write!(out, " {fmt}");
            }
            out.push_str("\r\n");
            for (t, v) in m.other.iter().filter(|(t, _)| *t == 'i') {
                let _ = write!(out, "{t}={v}\r\n");
            }
            if let Some(c) = &m.connection {
                write_conn(&mut out, c);
            }
            for (t, v) in m.other.iter().filter(|(t, _)| *t != 'i') {
                let _ = write!(out, "{t}={v}\r\n");
            }
            for a in &m.attributes {
                write_attr(&mut out, a);
            }
        }
        f.write_str(&out)
    }
}
