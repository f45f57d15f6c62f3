//! Typed header values (RFC 3261 §20, §25.1; RFC 7616; RFC 6665; RFC 3325; RFC 6993).

use std::borrow::Cow;
use std::fmt;

use super::lex::{C_DIGIT, C_TOKEN, read_quoted_cow, skip_class};
use super::lex::{
    find_ch, is_token, is_token_byte, is_ws, parse_u32, quote, quoted_len, read_quoted,
    split_commas, split_once_ch, trim_start_ws, trim_ws,
};
use super::method::Method;
use super::params::{Params, ParamsRef};
use super::uri::{Host, HostRef, Uri, UriRef, parse_port};

/// What is wrong with a header field. `name` is the header's long name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A mandatory header is absent.
    #[error("missing {name} header")]
    Missing {
        /// The header's long name.
        name: &'static str,
    },
    /// A single-valued header appears more than once (RFC 3261 §7.3.1).
    #[error("{name} header appears more than once")]
    Multiple {
        /// The header's long name.
        name: &'static str,
    },
    /// The value does not match the header's grammar.
    #[error("invalid {name} header: {reason}")]
    Invalid {
        /// The header's long name.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl HeaderError {
    pub(crate) fn invalid(name: &'static str, reason: &'static str) -> Self {
        HeaderError::Invalid { name, reason }
    }

    /// The long name of the header at fault.
    pub fn header(&self) -> &'static str {
        match self {
            HeaderError::Missing { name }
            | HeaderError::Multiple { name }
            | HeaderError::Invalid { name, .. } => name,
        }
    }
}

pub(crate) type R<T> = Result<T, &'static str>;

/// `(scheme, params)` of one challenge or credentials.
pub(crate) type AuthItem = (String, Vec<(String, String)>);

/// `name-addr` or `addr-spec` with header parameters (RFC 3261 §20.10, §20.20, §20.39):
/// the value of From, To, Contact, Route, Record-Route, P-Asserted-Identity, Refer-To.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, quotes and `\` escapes removed (or the unquoted words as written).
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`;tag=`, `;expires=`, ...).
    pub params: Params,
}

impl NameAddr {
    /// A name-addr with no display name and no parameter.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// The same with `;tag=` set.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.params.set("tag", Some(tag.into()));
        self
    }

    /// The same with a display name.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// Parses one name-addr / addr-spec with its parameters.
    pub fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        parse_name_addr(s).map_err(|r| HeaderError::invalid("name-addr", r))
    }
}

pub(crate) fn parse_name_addr(s: &str) -> R<NameAddr> {
    parse_name_addr_ref(s).map(|n| n.to_owned())
}

/// A borrowed `name-addr` / `addr-spec` with header parameters (RFC 3261 §20.10, §20.20,
/// §20.39): the view of a From, To, Contact, Route or Record-Route value over the header
/// text. Accepts exactly what [`NameAddr::parse`] accepts; [`NameAddrRef::to_owned`]
/// gives the equal [`NameAddr`].
#[derive(Clone, Debug)]
pub struct NameAddrRef<'a> {
    display_name: Option<Cow<'a, str>>,
    uri: UriRef<'a>,
    params: ParamsRef<'a>,
    /// The `tag` value, found while the parameters were validated.
    tag: Option<&'a str>,
}

impl<'a> NameAddrRef<'a> {
    /// Parses one name-addr / addr-spec with its parameters.
    pub fn parse(s: &'a str) -> Result<NameAddrRef<'a>, HeaderError> {
        parse_name_addr_ref(s).map_err(|r| HeaderError::invalid("name-addr", r))
    }

    /// The display name, quotes and `\` escapes removed (or the unquoted words as
    /// written); borrowed unless an escape had to be undone.
    pub fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// The URI.
    pub fn uri(&self) -> &UriRef<'a> {
        &self.uri
    }

    /// Header parameters (`;tag=`, `;expires=`, ...).
    pub fn params(&self) -> ParamsRef<'a> {
        self.params
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.tag
    }

    /// The owned value.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    pub fn to_owned(&self) -> NameAddr {
        NameAddr {
            display_name: self.display_name.as_deref().map(str::to_owned),
            uri: self.uri.to_owned(),
            params: self.params.to_owned(),
        }
    }
}

impl From<NameAddrRef<'_>> for NameAddr {
    fn from(n: NameAddrRef<'_>) -> NameAddr {
        n.to_owned()
    }
}

pub(crate) fn parse_name_addr_ref(s: &str) -> R<NameAddrRef<'_>> {
    let s = trim_ws(s);
    let (display_name, after_lt) = if s.starts_with('"') {
        let (dn, rest) = read_quoted_cow(s).ok_or("unterminated quoted display name")?;
        let rest = trim_start_ws(rest);
        let rest = rest
            .strip_prefix('<')
            .ok_or("quoted display name without <URI>")?;
        (Some(dn), Some(rest))
    } else if let Some(lt) = find_ch(s, b'<') {
        let dn = trim_ws(s.get(..lt).unwrap_or(""));
        // *(token LWS): tokens separated by whitespace
        if !dn.bytes().all(|b| is_token_byte(b) || is_ws(b)) {
            return Err("display name has characters that need quoting");
        }
        let dn = (!dn.is_empty()).then_some(Cow::Borrowed(dn));
        (dn, Some(s.get(lt + 1..).unwrap_or("")))
    } else {
        (None, None)
    };
    match after_lt {
        Some(rest) => {
            let gt = find_ch(rest, b'>').ok_or("missing >")?;
            let uri = UriRef::parse(rest.get(..gt).unwrap_or("")).map_err(|_| "invalid URI")?;
            let (params, tail, tag) =
                ParamsRef::parse_header_watch(rest.get(gt + 1..).unwrap_or(""), "tag")
                    .ok_or("invalid parameter")?;
            if !tail.is_empty() {
                return Err("unexpected text after parameters");
            }
            Ok(NameAddrRef {
                display_name,
                uri,
                params,
                tag: tag.flatten(),
            })
        }
        None => {
            // addr-spec: the URI cannot contain ';', ',' or '?' (RFC 3261 §20.10).
            let end = s
                .bytes()
                .position(|b| b == b';' || is_ws(b))
                .unwrap_or(s.len());
            let (uri_s, after) = (s.get(..end).unwrap_or(""), s.get(end..).unwrap_or(""));
            if find_ch(uri_s, b'?').is_some() || find_ch(uri_s, b',').is_some() {
                return Err("addr-spec with '?' or ',' must be enclosed in <>");
            }
            let uri = UriRef::parse(uri_s).map_err(|_| "invalid URI")?;
            let (params, tail, tag) =
                ParamsRef::parse_header_watch(after, "tag").ok_or("invalid parameter")?;
            if !tail.is_empty() {
                return Err("unexpected text after URI");
            }
            Ok(NameAddrRef {
                display_name: None,
                uri,
                params,
                tag: tag.flatten(),
            })
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

impl std::str::FromStr for NameAddr {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NameAddr::parse(s)
    }
}

/// One Contact value (RFC 3261 §20.10): `*` or an address.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (remove all bindings, REGISTER only).
    Star,
    /// An address with its parameters (`expires`, `q`, feature tags such as `isfocus`).
    Addr(NameAddr),
}

impl Contact {
    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }

    /// The `expires` parameter, if present and numeric.
    pub fn expires(&self) -> Option<u32> {
        parse_u32(self.addr()?.params.get("expires")??)
    }
}

/// A borrowed Contact value (RFC 3261 §20.10): `*` or an address view.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ContactRef<'a> {
    /// `Contact: *`.
    Star,
    /// An address with its parameters.
    Addr(NameAddrRef<'a>),
}

impl<'a> ContactRef<'a> {
    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddrRef<'a>> {
        match self {
            ContactRef::Star => None,
            ContactRef::Addr(a) => Some(a),
        }
    }

    /// The `expires` parameter, if present and numeric.
    pub fn expires(&self) -> Option<u32> {
        parse_u32(self.addr()?.params.get("expires")??)
    }

    /// The owned value.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Contact {
        match self {
            ContactRef::Star => Contact::Star,
            ContactRef::Addr(a) => Contact::Addr(a.to_owned()),
        }
    }
}

impl From<ContactRef<'_>> for Contact {
    fn from(c: ContactRef<'_>) -> Contact {
        c.to_owned()
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Addr(a) => a.fmt(f),
        }
    }
}

/// One Via value (RFC 3261 §20.42). The protocol is always `SIP/2.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, ... as written.
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port.
    pub port: Option<u16>,
    /// `;branch=`, `;received=`, `;rport`, ...
    pub params: Params,
}

impl Via {
    /// A Via with a branch.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.push("branch", Some(branch.to_owned()));
        Via {
            transport: transport.to_owned(),
            host,
            port,
            params,
        }
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter as written (an IPv6 address may be bracketed, RFC 5118 §4.5).
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// The `received` parameter as an IP address.
    pub fn received_addr(&self) -> Option<std::net::IpAddr> {
        received_addr(self.received()?)
    }

    /// `rport` (RFC 3581): `None` absent, `Some(None)` flag, `Some(Some(p))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        match self.params.get("rport")? {
            None => Some(None),
            Some(v) => Some(v.parse().ok()),
        }
    }

    /// Parses one via-parm.
    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        parse_via(s).map_err(|r| HeaderError::invalid("Via", r))
    }
}

fn skip_lws(b: &[u8], i: usize) -> usize {
    super::lex::skip_ws(b, i)
}

fn scan(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while b.get(i).copied().is_some_and(&f) {
        i += 1;
    }
    i
}

pub(crate) fn parse_via(s: &str) -> R<Via> {
    parse_via_ref(s).map(|v| v.to_owned())
}

/// A borrowed Via value (RFC 3261 §20.42) over the header text. Accepts exactly what
/// [`Via::parse`] accepts; [`ViaRef::to_owned`] gives the equal [`Via`].
#[derive(Clone, Debug)]
pub struct ViaRef<'a> {
    transport: &'a str,
    host: HostRef<'a>,
    port: Option<u16>,
    params: ParamsRef<'a>,
    /// The `branch` value, found while the parameters were validated.
    branch: Option<&'a str>,
}

impl<'a> ViaRef<'a> {
    /// Parses one via-parm.
    pub fn parse(s: &'a str) -> Result<ViaRef<'a>, HeaderError> {
        parse_via_ref(s).map_err(|r| HeaderError::invalid("Via", r))
    }

    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, ... as written.
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// The sent-by host.
    pub fn host(&self) -> HostRef<'a> {
        self.host
    }

    /// The sent-by port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `;branch=`, `;received=`, `;rport`, ...
    pub fn params(&self) -> ParamsRef<'a> {
        self.params
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// The `received` parameter as written (an IPv6 address may be bracketed, RFC 5118 §4.5).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The `received` parameter as an IP address.
    pub fn received_addr(&self) -> Option<std::net::IpAddr> {
        received_addr(self.received()?)
    }

    /// `rport` (RFC 3581): `None` absent, `Some(None)` flag, `Some(Some(p))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        match self.params.get("rport")? {
            None => Some(None),
            Some(v) => Some(v.parse().ok()),
        }
    }

    /// The owned value.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Via {
        Via {
            transport: self.transport.to_owned(),
            host: self.host.to_owned(),
            port: self.port,
            params: self.params.to_owned(),
        }
    }
}

impl From<ViaRef<'_>> for Via {
    fn from(v: ViaRef<'_>) -> Via {
        v.to_owned()
    }
}

fn received_addr(r: &str) -> Option<std::net::IpAddr> {
    let r = r
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(r);
    r.parse().ok()
}

/// `via-parm` (RFC 3261 §20.42): `SIP / 2.0 / transport LWS sent-by *(;via-params)`, with
/// LWS allowed around `/` and `:`. One pass over the bytes.
pub(crate) fn parse_via_ref(s: &str) -> R<ViaRef<'_>> {
    const BAD_PROTO: &str = "protocol is not SIP/2.0";
    let b = s.as_bytes();
    let sub = |i: usize, j: usize| s.get(i..j).unwrap_or("");
    let mut i = skip_lws(b, 0);
    // the usual spelling, without LWS: skip straight to the transport
    if b.starts_with(b"SIP/2.0/") {
        return via_from_transport(s, skip_lws(b, 8));
    }
    let p = skip_class(b, i, C_TOKEN);
    if !sub(i, p).eq_ignore_ascii_case("SIP") {
        return Err(BAD_PROTO);
    }
    i = skip_lws(b, p);
    if b.get(i) != Some(&b'/') {
        return Err(BAD_PROTO);
    }
    i = skip_lws(b, i + 1);
    let p = scan(b, i, |c| c.is_ascii_digit() || c == b'.');
    if sub(i, p) != "2.0" {
        return Err(BAD_PROTO);
    }
    i = skip_lws(b, p);
    if b.get(i) != Some(&b'/') {
        return Err(BAD_PROTO);
    }
    via_from_transport(s, skip_lws(b, i + 1))
}

/// The rest of `via-parm` from the transport at `i` on.
fn via_from_transport(s: &str, mut i: usize) -> R<ViaRef<'_>> {
    let b = s.as_bytes();
    let sub = |i: usize, j: usize| s.get(i..j).unwrap_or("");
    let p = skip_class(b, i, C_TOKEN);
    if p == i {
        return Err("missing transport");
    }
    let transport = sub(i, p);
    i = skip_lws(b, p);
    if i == p {
        return Err("missing sent-by");
    }
    let hs = i;
    let (he, host) = if b.get(i) == Some(&b'[') {
        let he = scan(b, i, |c| c != b']') + 1;
        if he > b.len() {
            return Err("invalid sent-by");
        }
        (he, HostRef::parse(sub(hs, he)))
    } else {
        // one pass: the run of host characters, classified as it is read
        HostRef::scan(s, i)
    };
    if he == hs {
        return Err("invalid sent-by");
    }
    let host = host.map_err(|_| "invalid sent-by host")?;
    i = skip_lws(b, he);
    let mut port = None;
    if b.get(i) == Some(&b':') {
        i = skip_lws(b, i + 1);
        let p = skip_class(b, i, C_DIGIT);
        if p == i || p - i > 5 {
            return Err("invalid sent-by port");
        }
        port = Some(parse_port(sub(i, p)).ok_or("invalid sent-by port")?);
        i = p;
    }
    let (params, tail, branch) =
        ParamsRef::parse_header_watch(sub(i, b.len()), "branch").ok_or("invalid parameter")?;
    if !tail.is_empty() {
        return Err("unexpected text after sent-by");
    }
    Ok(ViaRef {
        transport,
        host,
        port,
        params,
        branch: branch.flatten(),
    })
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// The CSeq header (RFC 3261 §20.16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (less than 2^31, §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, HeaderError> {
        parse_cseq(s).map_err(|r| HeaderError::invalid("CSeq", r))
    }
}

pub(crate) fn parse_cseq(s: &str) -> R<CSeq> {
    let s = trim_ws(s);
    let b = s.as_bytes();
    let mut dl = 0;
    let mut acc = 0u64;
    while let Some(&c) = b.get(dl)
        && c.is_ascii_digit()
    {
        // saturates far above the limit, so any long number stays too large
        acc = (acc * 10 + u64::from(c - b'0')).min(1 << 40);
        dl += 1;
    }
    if dl == 0 {
        return Err("missing sequence number");
    }
    let seq = u32::try_from(acc)
        .ok()
        .filter(|&v| v < 1 << 31)
        .ok_or("sequence number too large")?;
    let rest = s.get(dl..).unwrap_or("");
    let m = trim_start_ws(rest);
    if m.len() == rest.len() || !is_token(m) {
        return Err("invalid method");
    }
    Ok(CSeq {
        seq,
        method: Method::parse(m),
    })
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A WWW-Authenticate / Proxy-Authenticate challenge (RFC 3261 §20.27, RFC 7616 §3.3).
/// Parameter values are stored unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `Digest`, `Basic`, ... as written.
    pub scheme: String,
    /// `(name, value)` in order, values unquoted. A token68 value has an empty name.
    pub params: Vec<(String, String)>,
}

/// Authorization / Proxy-Authorization credentials (RFC 3261 §20.7, RFC 7616 §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `Digest`, ... as written.
    pub scheme: String,
    /// `(name, value)` in order, values unquoted.
    pub params: Vec<(String, String)>,
}

macro_rules! auth_common {
    ($t:ty) => {
        impl $t {
            /// The first parameter called `name` (case-insensitive), unquoted.
            pub fn param(&self, name: &str) -> Option<&str> {
                self.params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            }
            /// `realm`.
            pub fn realm(&self) -> Option<&str> {
                self.param("realm")
            }
            /// `nonce`.
            pub fn nonce(&self) -> Option<&str> {
                self.param("nonce")
            }
            /// `opaque`.
            pub fn opaque(&self) -> Option<&str> {
                self.param("opaque")
            }
            /// `algorithm` (absent means MD5, RFC 7616 §3.3).
            pub fn algorithm(&self) -> Option<&str> {
                self.param("algorithm")
            }
            /// `qop` values (a challenge may offer several, comma-separated).
            pub fn qop(&self) -> Vec<String> {
                self.param("qop")
                    .map(|q| {
                        q.split(',')
                            .map(|x| trim_ws(x).to_owned())
                            .filter(|x| !x.is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            }
            /// True for `stale=true` (RFC 7616 §3.3).
            pub fn stale(&self) -> bool {
                self.param("stale")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            }
            /// True when the scheme is `Digest` (case-insensitive).
            pub fn is_digest(&self) -> bool {
                self.scheme.eq_ignore_ascii_case("Digest")
            }
            /// Sets (replaces or appends) a parameter, unquoted value.
            pub fn set_param(&mut self, name: &str, value: impl Into<String>) {
                let value = value.into();
                match self
                    .params
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    Some(e) => e.1 = value,
                    None => self.params.push((name.to_owned(), value)),
                }
            }
        }
    };
}
auth_common!(Challenge);
auth_common!(Credentials);

impl Credentials {
    /// `username`.
    pub fn username(&self) -> Option<&str> {
        self.param("username")
    }
    /// `response`.
    pub fn response(&self) -> Option<&str> {
        self.param("response")
    }
    /// `uri`.
    pub fn uri(&self) -> Option<&str> {
        self.param("uri")
    }
}

fn write_auth(
    f: &mut fmt::Formatter<'_>,
    scheme: &str,
    params: &[(String, String)],
    unquoted: &[&str],
) -> fmt::Result {
    f.write_str(scheme)?;
    for (i, (n, v)) in params.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        if n.is_empty() {
            f.write_str(v)?;
        } else if unquoted.iter().any(|u| u.eq_ignore_ascii_case(n)) && is_token(v) {
            write!(f, "{n}={v}")?;
        } else {
            write!(f, "{n}={}", quote(v))?;
        }
    }
    Ok(())
}

impl fmt::Display for Challenge {
    /// RFC 7616 §3.3: `realm`, `domain`, `nonce`, `opaque`, `qop` quoted; `stale`,
    /// `algorithm`, `charset`, `userhash` not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_auth(
            f,
            &self.scheme,
            &self.params,
            &["stale", "algorithm", "charset", "userhash"],
        )
    }
}

impl fmt::Display for Credentials {
    /// RFC 7616 §3.4: `username`, `realm`, `nonce`, `uri`, `response`, `cnonce`, `opaque`
    /// quoted; `algorithm`, `qop`, `nc`, `userhash` not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_auth(
            f,
            &self.scheme,
            &self.params,
            &["algorithm", "qop", "nc", "userhash"],
        )
    }
}

/// Parses `challenge *(COMMA challenge)` (also used for credentials).
pub(crate) fn parse_auth_list(s: &str) -> R<Vec<AuthItem>> {
    let mut out: Vec<AuthItem> = Vec::new();
    let mut rest = trim_ws(s);
    while !rest.is_empty() {
        rest = trim_start_ws(rest.trim_start_matches(','));
        if rest.is_empty() {
            break;
        }
        let sl = rest
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(rest.len());
        if sl == 0 {
            return Err("missing auth scheme");
        }
        let scheme = rest[..sl].to_owned();
        rest = trim_start_ws(&rest[sl..]);
        let mut params = Vec::new();
        // token68 (RFC 7235 §2.1), e.g. Basic credentials.
        let wl = rest
            .bytes()
            .position(|b| b == b',' || is_ws(b))
            .unwrap_or(rest.len());
        let word = &rest[..wl];
        let core = word.trim_end_matches('=');
        if !core.is_empty()
            && core.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })
        {
            params.push((String::new(), word.to_owned()));
            rest = trim_start_ws(&rest[wl..]);
            out.push((scheme, params));
            continue;
        }
        loop {
            let nl = rest
                .bytes()
                .position(|b| !is_token_byte(b))
                .unwrap_or(rest.len());
            if nl == 0 {
                break;
            }
            let name = &rest[..nl];
            let after = trim_start_ws(&rest[nl..]);
            let Some(v) = after.strip_prefix('=') else {
                break;
            };
            let v = trim_start_ws(v);
            let (value, tail) = if v.starts_with('"') {
                let (q, t) = read_quoted(v).ok_or("unterminated quoted string")?;
                (q, t)
            } else {
                let l = v
                    .bytes()
                    .position(|b| b == b',' || is_ws(b))
                    .unwrap_or(v.len());
                (v[..l].to_owned(), &v[l..])
            };
            params.push((name.to_owned(), value));
            rest = trim_start_ws(tail);
            if let Some(r) = rest.strip_prefix(',') {
                let r = trim_start_ws(r);
                // another auth-param follows if "token =" comes next, else a new challenge
                let nl2 = r.bytes().position(|b| !is_token_byte(b)).unwrap_or(r.len());
                if nl2 > 0 && trim_start_ws(&r[nl2..]).starts_with('=') {
                    rest = r;
                    continue;
                }
                rest = r;
                break;
            } else if rest.is_empty() {
                break;
            } else {
                return Err("expected ',' between auth parameters");
            }
        }
        out.push((scheme, params));
    }
    if out.is_empty() {
        return Err("empty value");
    }
    Ok(out)
}

/// One Call-Info value (RFC 3261 §20.9, RFC 6993): `<uri> *(;param)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// The URI as written (any scheme).
    pub uri: String,
    /// Parameters (`purpose`, ...).
    pub params: Params,
}

impl CallInfo {
    /// The `purpose` parameter.
    pub fn purpose(&self) -> Option<&str> {
        self.params.get("purpose").flatten()
    }

    /// True when `purpose` equals `p`, compared case-insensitively.
    pub fn is_purpose(&self, p: &str) -> bool {
        self.purpose().is_some_and(|x| x.eq_ignore_ascii_case(p))
    }
}

impl fmt::Display for CallInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

pub(crate) fn parse_call_info(s: &str) -> R<CallInfo> {
    let s = trim_ws(s);
    let r = s.strip_prefix('<').ok_or("URI not enclosed in <>")?;
    let gt = find_ch(r, b'>').ok_or("missing >")?;
    let uri = trim_ws(&r[..gt]);
    if uri.is_empty() || !uri.contains(':') {
        return Err("invalid URI");
    }
    let (params, tail) = Params::parse_header(&r[gt + 1..]).ok_or("invalid parameter")?;
    if !tail.is_empty() {
        return Err("unexpected text after parameters");
    }
    Ok(CallInfo {
        uri: uri.to_owned(),
        params,
    })
}

/// The Event header (RFC 6665 §8.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event package (`presence`, `refer`, `conference`, ...).
    pub package: String,
    /// Parameters (`id`, ...).
    pub params: Params,
}

impl Event {
    /// The `id` parameter.
    pub fn id(&self) -> Option<&str> {
        self.params.get("id").flatten()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

/// The Subscription-State header (RFC 6665 §8.2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `active`, `pending`, `terminated` or an extension, as written.
    pub state: String,
    /// Parameters (`expires`, `reason`, `retry-after`).
    pub params: Params,
}

impl SubscriptionState {
    /// `expires` in seconds.
    pub fn expires(&self) -> Option<u32> {
        parse_u32(self.params.get("expires")??)
    }
    /// `reason`.
    pub fn reason(&self) -> Option<&str> {
        self.params.get("reason").flatten()
    }
    /// `retry-after` in seconds.
    pub fn retry_after(&self) -> Option<u32> {
        parse_u32(self.params.get("retry-after")??)
    }
    /// True for `terminated` (case-insensitive).
    pub fn is_terminated(&self) -> bool {
        self.state.eq_ignore_ascii_case("terminated")
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

/// `token *(;param)`, used by Event and Subscription-State.
pub(crate) fn parse_token_params(s: &str) -> R<(String, Params)> {
    let s = trim_ws(s);
    let l = s.bytes().position(|b| !is_token_byte(b)).unwrap_or(s.len());
    if l == 0 {
        return Err("missing token");
    }
    let (params, tail) = Params::parse_header(&s[l..]).ok_or("invalid parameter")?;
    if !tail.is_empty() {
        return Err("unexpected text after parameters");
    }
    Ok((s[..l].to_owned(), params))
}

/// One Warning value (RFC 3261 §20.43).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The three-digit warn-code.
    pub code: u16,
    /// The warn-agent (`host[:port]` or pseudonym).
    pub agent: String,
    /// The warn-text, unquoted.
    pub text: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.agent, quote(&self.text))
    }
}

pub(crate) fn parse_warning(s: &str) -> R<Warning> {
    let s = trim_ws(s);
    let (code, rest) = split_once_ch(s, b' ').ok_or("missing warn-agent")?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err("warn-code is not three digits");
    }
    let rest = trim_start_ws(rest);
    let (agent, text) = split_once_ch(rest, b' ').ok_or("missing warn-text")?;
    let text = trim_ws(text);
    if quoted_len(text) != Some(text.len()) {
        return Err("warn-text is not a quoted string");
    }
    let (text, _) = read_quoted(text).ok_or("warn-text is not a quoted string")?;
    Ok(Warning {
        code: code.parse().map_err(|_| "warn-code is not three digits")?,
        agent: agent.to_owned(),
        text,
    })
}

/// Splits a comma list and parses each element, naming `header` in errors.
pub(crate) fn parse_list<T>(
    header: &'static str,
    value: &str,
    f: impl Fn(&str) -> R<T>,
) -> Result<Vec<T>, HeaderError> {
    if find_ch(value, b',').is_none() {
        // a single element: no list to split (the element parser checks quotes and <>)
        let it = trim_ws(value);
        if it.is_empty() {
            return Err(HeaderError::invalid(header, "empty list element"));
        }
        return Ok(vec![f(it).map_err(|r| HeaderError::invalid(header, r))?]);
    }
    let items = split_commas(value).ok_or(HeaderError::invalid(header, "unbalanced quote or <"))?;
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        if it.is_empty() {
            return Err(HeaderError::invalid(header, "empty list element"));
        }
        out.push(f(it).map_err(|r| HeaderError::invalid(header, r))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.display_name, None);
        assert_eq!(n.tag(), Some("1918181833n"));
        let n = NameAddr::parse(r#""caller"<sip:caller@example.com>;tag=323"#).unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        let n = NameAddr::parse("token1~` token2'+_ <sip:m@example.com>;tag=x").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("token1~` token2'+_"));
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>").is_err());
        assert!(NameAddr::parse(r#""Watson" < sip:t@example.org >"#).is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:x%3E").is_err());
        assert!(NameAddr::parse(r#""open <sip:a@b>"#).is_err());
        let na = NameAddr::new(Uri::parse("sip:a@b").unwrap()).with_tag("1");
        assert_eq!(na.to_string(), "<sip:a@b>;tag=1");
    }

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::Ipv4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];rport=5061")
                .unwrap();
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.received_addr(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.rport(), Some(Some(5061)));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];rport=5061"
        );
        assert!(Via::parse("SIP/3.0/UDP h").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn cseq_forms() {
        let c = CSeq::parse("0009\r\n  INVITE").unwrap();
        assert_eq!(
            c,
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("99999999999999999999999999999 INVITE").is_err());
        assert_eq!(CSeq::parse("2147483647 BYE").unwrap().seq, 2_147_483_647);
        assert_eq!(CSeq::parse("000000000000000000001 BYE").unwrap().seq, 1);
        assert!(CSeq::parse(" INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
    }

    #[test]
    fn auth() {
        let v = parse_auth_list(r#"Digest realm="atlanta.example.com", qop="auth,auth-int", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5"#).unwrap();
        assert_eq!(v.len(), 1);
        let c = Challenge {
            scheme: v[0].0.clone(),
            params: v[0].1.clone(),
        };
        assert_eq!(c.realm(), Some("atlanta.example.com"));
        assert_eq!(c.qop(), ["auth", "auth-int"]);
        assert!(!c.stale());
        assert_eq!(c.opaque(), Some(""));
        assert_eq!(c.algorithm(), Some("MD5"));
        let two = parse_auth_list(
            r#"Digest realm="a", nonce="1", Digest realm="b", nonce="2", algorithm=SHA-256"#,
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].1.len(), 3);
        let cr = Credentials {
            scheme: "Digest".into(),
            params: vec![
                ("username".into(), "bob".into()),
                ("realm".into(), "r".into()),
                ("nonce".into(), "n".into()),
                ("uri".into(), "sip:r".into()),
                ("response".into(), "abc".into()),
                ("algorithm".into(), "MD5".into()),
                ("cnonce".into(), "c".into()),
                ("qop".into(), "auth".into()),
                ("nc".into(), "00000001".into()),
            ],
        };
        assert_eq!(
            cr.to_string(),
            r#"Digest username="bob", realm="r", nonce="n", uri="sip:r", response="abc", algorithm=MD5, cnonce="c", qop=auth, nc=00000001"#
        );
        let b = parse_auth_list("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(
            b[0].1,
            vec![(String::new(), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_owned())]
        );
        assert!(parse_auth_list(r#"Digest realm="open"#).is_err());
    }

    #[test]
    fn warning_and_call_info() {
        let w = parse_warning(r#"370 devnull "Choose a bigger pipe""#).unwrap();
        assert_eq!(
            (w.code, w.agent.as_str(), w.text.as_str()),
            (370, "devnull", "Choose a bigger pipe")
        );
        assert!(parse_warning(r#"1812 overture "In Progress""#).is_err());
        let c = parse_call_info("<xmpp:alice@example.com> ;purpose=IMPP").unwrap();
        assert!(c.is_purpose("impp"));
        assert_eq!(c.uri, "xmpp:alice@example.com");
    }
}
