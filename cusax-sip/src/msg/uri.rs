//! URIs: SIP and SIPS (RFC 3261 §19.1, §25.1), tel (RFC 3966) and any other scheme
//! (kept opaque, RFC 3261 §19.1 / RFC 3986).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::lex::{escape, find_ch, is_unreserved, split_once_ch, unescape};
use super::params::Params;

/// A URI scheme. `sip`, `sips` and `tel` are recognised case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other scheme, as written.
    Other(String),
}

impl Scheme {
    /// The scheme name (lower case for the known ones).
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

/// The host part of a SIP URI or Via (RFC 3261 §25.1 `host`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as written (compare case-insensitively).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference; printed in brackets (RFC 5118).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses `hostname / IPv4address / IPv6reference`.
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::BadHost)?;
            if let Ok(a) = inner.parse() {
                return Ok(Host::Ipv6(a));
            }
            // RFC 5118 §4.10: RFC 3261's ABNF admits a spurious third colon before an
            // embedded IPv4 address ("2001:db8:::192.0.2.1"); be robust and ignore it.
            if inner.matches(":::").count() == 1 && inner.contains('.') {
                return inner
                    .replacen(":::", "::", 1)
                    .parse()
                    .map(Host::Ipv6)
                    .map_err(|_| UriError::BadHost);
            }
            return Err(UriError::BadHost);
        }
        let b = s.as_bytes();
        let Some(&first) = b.first() else {
            return Err(UriError::BadHost);
        };
        let mut numeric = true;
        for &c in b {
            if c.is_ascii_alphabetic() || c == b'-' || c == b'_' {
                numeric = false;
            } else if !(c.is_ascii_digit() || c == b'.') {
                return Err(UriError::BadHost);
            }
        }
        if numeric {
            return s.parse().map(Host::Ipv4).map_err(|_| UriError::BadHost);
        }
        let ok = first != b'.' && first != b'-';
        if ok {
            Ok(Host::Domain(s.to_owned()))
        } else {
            Err(UriError::BadHost)
        }
    }

    /// Parses `host [ ":" port ]`.
    pub fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
        let (h, p) = if s.starts_with('[') {
            let end = find_ch(s, b']').ok_or(UriError::BadHost)?;
            let (h, rest) = s.split_at(end + 1);
            match rest {
                "" => (h, None),
                r => (h, Some(r.strip_prefix(':').ok_or(UriError::BadHost)?)),
            }
        } else {
            match split_once_ch(s, b':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let host = Host::parse(h)?;
        let port = match p {
            None => None,
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(UriError::BadPort);
                }
                Some(p.parse().map_err(|_| UriError::BadPort)?)
            }
        };
        Ok((host, port))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// What is wrong with a URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix, or the scheme has characters outside RFC 3986 §3.1.
    #[error("URI has no valid scheme")]
    BadScheme,
    /// The host is empty or is neither a hostname, an IPv4 address nor an IPv6 reference.
    #[error("URI host is invalid")]
    BadHost,
    /// The port is not a number in 0..=65535.
    #[error("URI port is invalid")]
    BadPort,
    /// The user or password part has a bad character or a malformed `%` escape.
    #[error("URI user part is invalid")]
    BadUser,
    /// A URI parameter is malformed.
    #[error("URI parameter is invalid")]
    BadParam,
    /// A URI header (`?name=value`) is malformed.
    #[error("URI header is invalid")]
    BadHeader,
    /// The URI contains whitespace or a character not allowed in a URI.
    #[error("URI contains an invalid character")]
    BadChar,
}

/// A URI. For `sip`/`sips` every component is parsed; for `tel` and other schemes the
/// text after `scheme:` is kept in [`Uri::opaque`] and the SIP fields are empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part, with `%` escapes decoded (RFC 3261 §19.1.2).
    pub user: Option<String>,
    /// The password, with `%` escapes decoded (its use is NOT RECOMMENDED, §19.1.1).
    pub password: Option<String>,
    /// The host (an empty domain for non-SIP schemes).
    pub host: Host,
    /// The port.
    pub port: Option<u16>,
    /// `;uri-parameters`, values as written.
    pub params: Params,
    /// `?headers` as `(name, value)` pairs, as written (escaped).
    pub headers: Vec<(String, String)>,
    /// For non-SIP schemes: everything after `scheme:`.
    pub opaque: String,
}

impl Uri {
    /// A `sip:` URI for `user@host`.
    pub fn sip(user: Option<&str>, host: Host) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
            opaque: String::new(),
        }
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// Parses a URI (no surrounding whitespace or angle brackets).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let colon = find_ch(s, b':').ok_or(UriError::BadScheme)?;
        let (scheme_s, rest) = s.split_at(colon);
        let rest = &rest[1..];
        let sb = scheme_s.as_bytes();
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UriError::BadScheme);
        }
        if rest
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(UriError::BadChar);
        }
        let scheme = if scheme_s.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_s.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_s.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_s.to_owned())
        };
        if !matches!(scheme, Scheme::Sip | Scheme::Sips) {
            if rest.is_empty() {
                return Err(UriError::BadChar);
            }
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: Host::Domain(String::new()),
                port: None,
                params: Params::new(),
                headers: Vec::new(),
                opaque: rest.to_owned(),
            });
        }
        // userinfo: '@' cannot appear unescaped anywhere else in a SIP URI.
        let (userinfo, hostpart) = match find_ch(rest, b'@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match split_once_ch(ui, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError::BadUser);
                }
                let u = unescape(u).ok_or(UriError::BadUser)?;
                let p = match p {
                    Some(p) => Some(unescape(p).ok_or(UriError::BadUser)?),
                    None => None,
                };
                (Some(u), p)
            }
        };
        let (before_q, headers_s) = match split_once_ch(hostpart, b'?') {
            Some((a, b)) => (a, Some(b)),
            None => (hostpart, None),
        };
        let (hostport, params_s) = match split_once_ch(before_q, b';') {
            Some((a, b)) => (a, Some(b)),
            None => (before_q, None),
        };
        let (host, port) = Host::parse_hostport(hostport)?;
        let params = match params_s {
            Some(p) => Params::parse_uri(p).ok_or(UriError::BadParam)?,
            None => Params::new(),
        };
        let mut headers = Vec::new();
        if let Some(h) = headers_s {
            for kv in h.split('&') {
                let (k, v) = split_once_ch(kv, b'=').ok_or(UriError::BadHeader)?;
                if k.is_empty() || unescape(k).is_none() || unescape(v).is_none() {
                    return Err(UriError::BadHeader);
                }
                headers.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
            opaque: String::new(),
        })
    }

    /// URI equivalence (RFC 3261 §19.1.4) for sip/sips: same scheme, user and password
    /// compared after unescaping (case-sensitive), host case-insensitive, same port;
    /// `user`, `ttl`, `method`, `maddr` and `transport` parameters must match when either
    /// has them, other parameters only when both have them (names and values compared
    /// case-insensitively after unescaping); headers compared as unescaped sets.
    /// Other schemes compare their opaque part exactly.
    pub fn equivalent(&self, other: &Uri) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        if !self.is_sip() {
            return self.opaque == other.opaque;
        }
        let host_eq = match (&self.host, &other.host) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        if self.user != other.user
            || self.password != other.password
            || !host_eq
            || self.port != other.port
        {
            return false;
        }
        let norm = |p: &Params| -> Vec<(String, Option<String>)> {
            p.iter()
                .map(|(n, v)| {
                    let n = unescape(n)
                        .unwrap_or_else(|| n.to_owned())
                        .to_ascii_lowercase();
                    let v = v.map(|v| {
                        unescape(v)
                            .unwrap_or_else(|| v.to_owned())
                            .to_ascii_lowercase()
                    });
                    (n, v)
                })
                .collect()
        };
        let (a, b) = (norm(&self.params), norm(&other.params));
        let find = |l: &[(String, Option<String>)], n: &str| {
            l.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        };
        for (n, v) in &a {
            match find(&b, n) {
                Some(w) if &w != v => return false,
                None if ["user", "ttl", "method", "maddr", "transport"].contains(&n.as_str()) => {
                    return false;
                }
                _ => {}
            }
        }
        for (n, _) in &b {
            if find(&a, n).is_none()
                && ["user", "ttl", "method", "maddr", "transport"].contains(&n.as_str())
            {
                return false;
            }
        }
        let hs = |u: &Uri| -> Vec<(String, String)> {
            let mut v: Vec<_> = u
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        unescape(k)
                            .unwrap_or_else(|| k.clone())
                            .to_ascii_lowercase(),
                        unescape(v).unwrap_or_else(|| v.clone()),
                    )
                })
                .collect();
            v.sort();
            v
        };
        hs(self) == hs(other)
    }

    /// `host[:port]` as text.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

fn user_keep(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn password_keep(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str(":")?;
        if !self.is_sip() {
            return f.write_str(&self.opaque);
        }
        if let Some(u) = &self.user {
            let mut s = String::with_capacity(u.len() + 8);
            escape(u, user_keep, &mut s);
            if let Some(p) = &self.password {
                s.push(':');
                escape(p, password_keep, &mut s);
            }
            s.push('@');
            f.write_str(&s)?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (k, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_components() {
        let u = Uri::parse("sip:alice:pw@Example.COM:5070;transport=tcp;lr?subject=x&h=y").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, Host::Domain("Example.COM".into()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.get("transport"), Some(Some("tcp")));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers.len(), 2);
        assert_eq!(
            u.to_string(),
            "sip:alice:pw@Example.COM:5070;transport=tcp;lr?subject=x&h=y"
        );
    }

    #[test]
    fn escapes_and_ipv6() {
        let u = Uri::parse("sip:I%20have%20spaces@example.net").unwrap();
        assert_eq!(u.user.as_deref(), Some("I have spaces"));
        assert_eq!(u.to_string(), "sip:I%20have%20spaces@example.net");
        let u = Uri::parse("sips:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.host, Host::Ipv6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.to_string(), "sips:[2001:db8::10]:5070");
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert_eq!(Uri::parse("sip:host:99999"), Err(UriError::BadPort));
        assert_eq!(Uri::parse("sip:a b@host"), Err(UriError::BadChar));
    }

    #[test]
    fn equivalence_rfc3261_19_1_4() {
        let a =
            Uri::parse("sip:cal%6Cer@HOST5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        let b = Uri::parse("sip:caller@host5.example.net;lr;name=value%2541").unwrap();
        assert!(a.equivalent(&b));
        let c = Uri::parse("sip:caller@host5.example.net;transport=tcp").unwrap();
        assert!(!b.equivalent(&c));
        let d = Uri::parse("sip:Caller@host5.example.net").unwrap();
        assert!(!d.equivalent(&Uri::parse("sip:caller@host5.example.net").unwrap()));
        assert!(!b.equivalent(&Uri::parse("sip:caller@host5.example.net:5060").unwrap()));
    }

    #[test]
    fn ipv6_extra_colon_is_tolerated() {
        let u = Uri::parse("sip:user@[2001:db8:::192.0.2.1]").unwrap();
        assert_eq!(u.host, Host::Ipv6("2001:db8::c000:201".parse().unwrap()));
        assert_eq!(u.to_string(), "sip:user@[2001:db8::c000:201]");
        assert!(Uri::parse("sip:[1:::2:::3]").is_err());
    }

    #[test]
    fn other_schemes() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.opaque, "+1-201-555-0123;phone-context=x");
        assert_eq!(u.to_string(), "tel:+1-201-555-0123;phone-context=x");
        let u: Uri = "http://www.example.com/alice/photo.jpg".parse().unwrap();
        assert_eq!(u.scheme, Scheme::Other("http".into()));
        assert_eq!(Uri::parse("nocolon"), Err(UriError::BadScheme));
    }
}
