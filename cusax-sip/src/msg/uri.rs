//! URIs: SIP and SIPS (RFC 3261 §19.1, §25.1), tel (RFC 3966) and any other scheme
//! (kept opaque, RFC 3261 §19.1 / RFC 3986).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use std::borrow::Cow;

use super::lex::{
    escape, escapes_ok, find_byte, find_ch, is_unreserved, split_once_ch, unescape, unescape_cow,
};
use super::params::{Params, ParamsRef};

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
        HostRef::parse(s).map(|h| h.to_owned())
    }

    /// Parses `host [ ":" port ]`.
    pub fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
        HostRef::parse_hostport(s).map(|(h, p)| (h.to_owned(), p))
    }
}

/// A borrowed [`Host`]: a domain name is a slice of the parsed text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostRef<'a> {
    /// A domain name, as written (compare case-insensitively).
    Domain(&'a str),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference (written in brackets, RFC 5118).
    Ipv6(Ipv6Addr),
}

const fn host_class_table() -> [u8; 256] {
    // 4 invalid, 1 digit or '.', 2 letter, '-' or '_'
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() || b == b'.' {
            1
        } else if b.is_ascii_alphabetic() || b == b'-' || b == b'_' {
            2
        } else {
            4
        };
        i += 1;
    }
    t
}

static HOST_CLASS: [u8; 256] = host_class_table();

impl<'a> HostRef<'a> {
    /// Parses `hostname / IPv4address / IPv6reference` (RFC 3261 §25.1) without copying.
    pub fn parse(s: &'a str) -> Result<HostRef<'a>, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::BadHost)?;
            if let Ok(a) = inner.parse() {
                return Ok(HostRef::Ipv6(a));
            }
            // RFC 5118 §4.10: RFC 3261's ABNF admits a spurious third colon before an
            // embedded IPv4 address ("2001:db8:::192.0.2.1"); be robust and ignore it.
            if inner.matches(":::").count() == 1 && inner.contains('.') {
                return inner
                    .replacen(":::", "::", 1)
                    .parse()
                    .map(HostRef::Ipv6)
                    .map_err(|_| UriError::BadHost);
            }
            return Err(UriError::BadHost);
        }
        let b = s.as_bytes();
        let Some(&first) = b.first() else {
            return Err(UriError::BadHost);
        };
        let acc = b.iter().fold(0u8, |a, &c| a | HOST_CLASS[c as usize]);
        if acc & 4 != 0 {
            return Err(UriError::BadHost);
        }
        if acc == 1 {
            return s.parse().map(HostRef::Ipv4).map_err(|_| UriError::BadHost);
        }
        if first != b'.' && first != b'-' {
            Ok(HostRef::Domain(s))
        } else {
            Err(UriError::BadHost)
        }
    }

    /// Reads the run of host characters (alphanumeric, `-`, `.`, `_`) at `s[i..]` in one
    /// pass: its end, and the host [`HostRef::parse`] makes of it.
    pub(crate) fn scan(s: &'a str, i: usize) -> (usize, Result<HostRef<'a>, UriError>) {
        let b = s.as_bytes();
        let rest = b.get(i..).unwrap_or_default();
        // four bytes per step while none is invalid, then byte by byte
        let mut k = 0;
        while let Some(&[w, x, y, z]) = rest.get(k..k + 4) {
            let any = HOST_CLASS[w as usize]
                | HOST_CLASS[x as usize]
                | HOST_CLASS[y as usize]
                | HOST_CLASS[z as usize];
            if any & 4 != 0 {
                break;
            }
            k += 4;
        }
        let tail = rest.get(k..).unwrap_or_default();
        let n = k + tail
            .iter()
            .position(|&c| HOST_CLASS[c as usize] == 4)
            .unwrap_or(tail.len());
        let run = rest.get(..n).unwrap_or_default();
        // a name starting with a letter is a domain; otherwise see whether it is all digits
        // and dots (an IPv4 address)
        let numeric = match run.first() {
            None => false,
            Some(&c) if HOST_CLASS[c as usize] == 2 => false,
            Some(_) => run.iter().all(|&c| HOST_CLASS[c as usize] == 1),
        };
        let text = s.get(i..i + n).unwrap_or("");
        let host = if numeric {
            text.parse()
                .map(HostRef::Ipv4)
                .map_err(|_| UriError::BadHost)
        } else if text.is_empty() || text.starts_with(['.', '-']) {
            Err(UriError::BadHost)
        } else {
            Ok(HostRef::Domain(text))
        };
        (i + n, host)
    }

    /// Parses `host [ ":" port ]` without copying.
    pub fn parse_hostport(s: &'a str) -> Result<(HostRef<'a>, Option<u16>), UriError> {
        let (h, p) = if s.starts_with('[') {
            let end = find_ch(s, b']').ok_or(UriError::BadHost)?;
            let (h, rest) = (
                s.get(..end + 1).ok_or(UriError::BadHost)?,
                s.get(end + 1..).ok_or(UriError::BadHost)?,
            );
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
        let host = HostRef::parse(h)?;
        let port = match p {
            None => None,
            Some(p) => Some(parse_port(p).ok_or(UriError::BadPort)?),
        };
        Ok((host, port))
    }

    /// The owned host.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Host {
        match *self {
            HostRef::Domain(d) => Host::Domain(d.to_owned()),
            HostRef::Ipv4(a) => Host::Ipv4(a),
            HostRef::Ipv6(a) => Host::Ipv6(a),
        }
    }
}

/// `1*5DIGIT` in 0..=65535.
pub(crate) fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        return None;
    }
    let mut v = 0u32;
    for c in p.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u16::try_from(v).ok()
}

impl From<HostRef<'_>> for Host {
    fn from(h: HostRef<'_>) -> Host {
        h.to_owned()
    }
}

impl PartialEq<Host> for HostRef<'_> {
    fn eq(&self, other: &Host) -> bool {
        match (self, other) {
            (HostRef::Domain(a), Host::Domain(b)) => a == b,
            (HostRef::Ipv4(a), Host::Ipv4(b)) => a == b,
            (HostRef::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for HostRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRef::Domain(d) => f.write_str(d),
            HostRef::Ipv4(a) => write!(f, "{a}"),
            HostRef::Ipv6(a) => write!(f, "[{a}]"),
        }
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
        UriRef::parse(s).map(|u| u.to_owned())
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

/// Which scheme a [`UriRef`] has (the name of another scheme stays in the text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SchemeKind {
    Sip,
    Sips,
    Tel,
    Other,
}

/// A borrowed, fully validated URI: the same grammar and checks as [`Uri::parse`], but
/// every component is a slice of the parsed text (the user and password are copied only
/// when they contain `%` escapes to decode). [`UriRef::to_owned`] gives the equal [`Uri`].
#[derive(Clone, Debug)]
pub struct UriRef<'a> {
    text: &'a str,
    scheme: &'a str,
    kind: SchemeKind,
    user: Option<Cow<'a, str>>,
    password: Option<Cow<'a, str>>,
    host: HostRef<'a>,
    port: Option<u16>,
    params: ParamsRef<'a>,
    headers: Option<&'a str>,
    opaque: &'a str,
}

/// A byte that may not appear in a URI as we accept it: controls, SP, DEL, `<`, `>`, `"`.
const U_BAD: u8 = 1;
const U_AT: u8 = 2;
const U_PCT: u8 = 4;
const U_QUERY: u8 = 8;
const U_SEMI: u8 = 16;
const U_COLON: u8 = 32;

const fn uri_class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b <= b' ' || b == 0x7f || b == b'<' || b == b'>' || b == b'"' {
            U_BAD
        } else {
            match b {
                b'@' => U_AT,
                b'%' => U_PCT,
                b'?' => U_QUERY,
                b';' => U_SEMI,
                b':' => U_COLON,
                _ => 0,
            }
        };
        i += 1;
    }
    t
}

static URI_CLASS: [u8; 256] = uri_class_table();

impl<'a> UriRef<'a> {
    /// Parses a URI (no surrounding whitespace or angle brackets) without copying.
    /// Accepts and rejects exactly what [`Uri::parse`] does, with the same errors.
    pub fn parse(s: &'a str) -> Result<UriRef<'a>, UriError> {
        // the usual spelling needs no scheme scan
        let fast = s.starts_with("sip:");
        let colon = if fast {
            3
        } else {
            find_ch(s, b':').ok_or(UriError::BadScheme)?
        };
        let (Some(scheme_s), Some(rest)) = (s.get(..colon), s.get(colon + 1..)) else {
            return Err(UriError::BadScheme);
        };
        let sb = scheme_s.as_bytes();
        if !fast
            && (!sb.first().is_some_and(u8::is_ascii_alphabetic)
                || !sb
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        {
            return Err(UriError::BadScheme);
        }
        // one pass: reject bad characters and learn which delimiters occur at all
        let mask = rest.bytes().fold(0u8, |m, c| m | URI_CLASS[c as usize]);
        if mask & U_BAD != 0 {
            return Err(UriError::BadChar);
        }
        let pct = mask & U_PCT != 0;
        let find = |s: &str, bit: u8, c: u8| {
            if mask & bit != 0 {
                find_byte(s.as_bytes(), c)
            } else {
                None
            }
        };
        let at = find(rest, U_AT, b'@');
        let kind = if scheme_s == "sip" || scheme_s.eq_ignore_ascii_case("sip") {
            SchemeKind::Sip
        } else if scheme_s.eq_ignore_ascii_case("sips") {
            SchemeKind::Sips
        } else if scheme_s.eq_ignore_ascii_case("tel") {
            SchemeKind::Tel
        } else {
            SchemeKind::Other
        };
        let mut u = UriRef {
            text: s,
            scheme: scheme_s,
            kind,
            user: None,
            password: None,
            host: HostRef::Domain(""),
            port: None,
            params: ParamsRef::default(),
            headers: None,
            opaque: "",
        };
        if !matches!(kind, SchemeKind::Sip | SchemeKind::Sips) {
            if rest.is_empty() {
                return Err(UriError::BadChar);
            }
            u.opaque = rest;
            return Ok(u);
        }
        // userinfo: '@' cannot appear unescaped anywhere else in a SIP URI.
        let hostpart = match at {
            None => rest,
            Some(at) => {
                let (ui, hostpart) = (
                    rest.get(..at).unwrap_or(""),
                    rest.get(at + 1..).unwrap_or(""),
                );
                let (user, password) = match find(ui, U_COLON, b':') {
                    Some(c) => (ui.get(..c).unwrap_or(""), ui.get(c + 1..)),
                    None => (ui, None),
                };
                if user.is_empty() {
                    return Err(UriError::BadUser);
                }
                let unesc = |x: &'a str| {
                    if pct {
                        unescape_cow(x)
                    } else {
                        Some(Cow::Borrowed(x))
                    }
                };
                u.user = Some(unesc(user).ok_or(UriError::BadUser)?);
                if let Some(p) = password {
                    u.password = Some(unesc(p).ok_or(UriError::BadUser)?);
                }
                hostpart
            }
        };
        let query = find(hostpart, U_QUERY, b'?');
        let before_q = query.map_or(hostpart, |q| hostpart.get(..q).unwrap_or(""));
        let headers_s = query.map(|q| hostpart.get(q + 1..).unwrap_or(""));
        let semi = find(before_q, U_SEMI, b';');
        let hostport = semi.map_or(before_q, |i| before_q.get(..i).unwrap_or(""));
        let params_s = semi.map(|i| before_q.get(i + 1..).unwrap_or(""));
        let colon = find(hostport, U_COLON, b':');
        (u.host, u.port) = if hostport.starts_with('[') {
            HostRef::parse_hostport(hostport)?
        } else {
            match colon {
                None => (HostRef::parse(hostport)?, None),
                Some(c) => (
                    HostRef::parse(hostport.get(..c).unwrap_or(""))?,
                    Some(parse_port(hostport.get(c + 1..).unwrap_or("")).ok_or(UriError::BadPort)?),
                ),
            }
        };
        if let Some(p) = params_s {
            u.params = ParamsRef::parse_uri(p).ok_or(UriError::BadParam)?;
        }
        if let Some(h) = headers_s {
            for kv in h.split('&') {
                let (k, v) = split_once_ch(kv, b'=').ok_or(UriError::BadHeader)?;
                if k.is_empty() || !escapes_ok(k) || !escapes_ok(v) {
                    return Err(UriError::BadHeader);
                }
            }
            u.headers = Some(h);
        }
        Ok(u)
    }

    /// The whole URI as written.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The scheme name as written.
    pub fn scheme_str(&self) -> &'a str {
        self.scheme
    }

    /// The scheme (allocates only for a scheme other than sip, sips and tel).
    pub fn scheme(&self) -> Scheme {
        match self.kind {
            SchemeKind::Sip => Scheme::Sip,
            SchemeKind::Sips => Scheme::Sips,
            SchemeKind::Tel => Scheme::Tel,
            SchemeKind::Other => Scheme::Other(self.scheme.to_owned()),
        }
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.kind, SchemeKind::Sip | SchemeKind::Sips)
    }

    /// True for `sips:` URIs.
    pub fn is_sips(&self) -> bool {
        self.kind == SchemeKind::Sips
    }

    /// The user part with `%` escapes decoded (RFC 3261 §19.1.2).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The password with `%` escapes decoded.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host (an empty domain for non-SIP schemes).
    pub fn host(&self) -> HostRef<'a> {
        self.host
    }

    /// The port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `;uri-parameters`, values as written.
    pub fn params(&self) -> ParamsRef<'a> {
        self.params
    }

    /// `?headers` as `(name, value)` pairs, as written (escaped).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .into_iter()
            .flat_map(|h| h.split('&'))
            .filter_map(|kv| split_once_ch(kv, b'='))
    }

    /// True when the URI has `?headers`.
    pub fn has_headers(&self) -> bool {
        self.headers.is_some()
    }

    /// For non-SIP schemes: everything after `scheme:` (empty for sip/sips).
    pub fn opaque(&self) -> &'a str {
        self.opaque
    }

    /// The owned URI, equal to what [`Uri::parse`] returns for the same text.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Uri {
        Uri {
            scheme: self.scheme(),
            user: self.user.as_deref().map(str::to_owned),
            password: self.password.as_deref().map(str::to_owned),
            host: if self.is_sip() {
                self.host.to_owned()
            } else {
                Host::Domain(String::new())
            },
            port: self.port,
            // the usual Request-URI has neither parameters, headers nor opaque part:
            // nothing to build for them
            params: if self.params.is_empty() {
                Params::new()
            } else {
                self.params.to_owned()
            },
            headers: match self.headers {
                None => Vec::new(),
                Some(_) => self
                    .headers()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            },
            opaque: if self.opaque.is_empty() {
                String::new()
            } else {
                self.opaque.to_owned()
            },
        }
    }
}

impl From<UriRef<'_>> for Uri {
    fn from(u: UriRef<'_>) -> Uri {
        u.to_owned()
    }
}

impl fmt::Display for UriRef<'_> {
    /// The URI as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
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
