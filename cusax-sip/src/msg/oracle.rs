//! The owned parsers as they were before the borrowed views existed, kept verbatim (test
//! builds only) as the oracle of the differential tests in `views_tests`: the view parsers
//! and the owned parsers built on them must accept, reject and read exactly what these did.
#![allow(dead_code)]

use crate::msg::headers::Headers;
use crate::msg::lex::split_commas;
use crate::msg::lex::{
    find_ch, is_token_byte, is_ws, quoted_len, read_quoted, split_once_ch, trim_start_ws, trim_ws,
    unescape,
};
use crate::msg::types::{R, parse_list};
use crate::msg::{HeaderError, Host, NameAddr, Params, Scheme, Uri, UriError, Via};

pub(crate) struct OParams;

impl OParams {
    pub(crate) fn parse_uri(s: &str) -> Option<Params> {
        let mut p = Params::new();
        for item in s.split(';') {
            if item.is_empty()
                || item
                    .bytes()
                    .any(|b| is_ws(b) || b == b'"' || b == b'<' || b == b'>')
            {
                return None;
            }
            match item.split_once('=') {
                Some((n, v)) if !n.is_empty() => p.push(n, Some(v.to_owned())),
                Some(_) => return None,
                None => p.push(item, None),
            }
        }
        Some(p)
    }

    pub(crate) fn parse_header(mut s: &str) -> Option<(Params, &str)> {
        let mut p = Params::new();
        loop {
            let t = trim_ws(s);
            let Some(after) = t.strip_prefix(';') else {
                return Some((p, t));
            };
            let after = after.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8));
            let name_len = after
                .bytes()
                .position(|b| !super::lex::is_token_byte(b))
                .unwrap_or(after.len());
            if name_len == 0 {
                return None;
            }
            let (name, rest) = after.split_at(name_len);
            let rest_t = rest.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8));
            if let Some(v) = rest_t.strip_prefix('=') {
                let v = v.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8));
                let vlen = if v.starts_with('"') {
                    quoted_len(v)?
                } else {
                    v.bytes()
                        .position(|b| is_ws(b) || matches!(b, b';' | b',' | b'"' | b'<' | b'>'))
                        .unwrap_or(v.len())
                };
                if vlen == 0 {
                    return None;
                }
                let (val, rest2) = v.split_at(vlen);
                p.push(name, Some(val.to_owned()));
                s = rest2;
            } else {
                p.push(name, None);
                s = rest;
            }
        }
    }
}

pub(crate) fn host_parse(s: &str) -> Result<Host, UriError> {
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
pub(crate) fn host_parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
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
    let host = host_parse(h)?;
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

pub(crate) fn uri_parse(s: &str) -> Result<Uri, UriError> {
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
    let (host, port) = host_parse_hostport(hostport)?;
    let params = match params_s {
        Some(p) => OParams::parse_uri(p).ok_or(UriError::BadParam)?,
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

pub(crate) fn parse_name_addr(s: &str) -> R<NameAddr> {
    let s = trim_ws(s);
    let (display_name, after_lt) = if s.starts_with('"') {
        let (dn, rest) = read_quoted(s).ok_or("unterminated quoted display name")?;
        let rest = trim_start_ws(rest);
        let rest = rest
            .strip_prefix('<')
            .ok_or("quoted display name without <URI>")?;
        (Some(dn), Some(rest))
    } else if let Some(lt) = find_ch(s, b'<') {
        let dn = trim_ws(&s[..lt]);
        // *(token LWS): tokens separated by whitespace
        if !dn.bytes().all(|b| is_token_byte(b) || is_ws(b)) {
            return Err("display name has characters that need quoting");
        }
        let dn = (!dn.is_empty()).then(|| dn.to_owned());
        (dn, Some(&s[lt + 1..]))
    } else {
        (None, None)
    };
    match after_lt {
        Some(rest) => {
            let gt = find_ch(rest, b'>').ok_or("missing >")?;
            let uri = uri_parse(&rest[..gt]).map_err(|_| "invalid URI")?;
            let (params, tail) =
                OParams::parse_header(&rest[gt + 1..]).ok_or("invalid parameter")?;
            if !tail.is_empty() {
                return Err("unexpected text after parameters");
            }
            Ok(NameAddr {
                display_name,
                uri,
                params,
            })
        }
        None => {
            // addr-spec: the URI cannot contain ';', ',' or '?' (RFC 3261 §20.10).
            let end = s
                .bytes()
                .position(|b| b == b';' || is_ws(b))
                .unwrap_or(s.len());
            let uri_s = &s[..end];
            if uri_s.contains('?') || uri_s.contains(',') {
                return Err("addr-spec with '?' or ',' must be enclosed in <>");
            }
            let uri = uri_parse(uri_s).map_err(|_| "invalid URI")?;
            let (params, tail) = OParams::parse_header(&s[end..]).ok_or("invalid parameter")?;
            if !tail.is_empty() {
                return Err("unexpected text after URI");
            }
            Ok(NameAddr {
                display_name: None,
                uri,
                params,
            })
        }
    }
}

fn skip_lws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

fn scan(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while b.get(i).copied().is_some_and(&f) {
        i += 1;
    }
    i
}

/// `via-parm` (RFC 3261 §20.42): `SIP / 2.0 / transport LWS sent-by *(;via-params)`, with
/// LWS allowed around `/` and `:`. One pass over the bytes.
pub(crate) fn parse_via(s: &str) -> R<Via> {
    const BAD_PROTO: &str = "protocol is not SIP/2.0";
    let b = s.as_bytes();
    let sub = |i: usize, j: usize| s.get(i..j).unwrap_or("");
    let mut i = skip_lws(b, 0);
    let p = scan(b, i, is_token_byte);
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
    i = skip_lws(b, i + 1);
    let p = scan(b, i, is_token_byte);
    if p == i {
        return Err("missing transport");
    }
    let transport = sub(i, p);
    i = skip_lws(b, p);
    if i == p {
        return Err("missing sent-by");
    }
    let hs = i;
    let he = if b.get(i) == Some(&b'[') {
        scan(b, i, |c| c != b']') + 1
    } else {
        scan(b, i, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')
        })
    };
    if he == hs || he > b.len() {
        return Err("invalid sent-by");
    }
    let host = host_parse(sub(hs, he)).map_err(|_| "invalid sent-by host")?;
    i = skip_lws(b, he);
    let mut port = None;
    if b.get(i) == Some(&b':') {
        i = skip_lws(b, i + 1);
        let p = scan(b, i, |c| c.is_ascii_digit());
        if p == i || p - i > 5 {
            return Err("invalid sent-by port");
        }
        port = Some(sub(i, p).parse().map_err(|_| "invalid sent-by port")?);
        i = p;
    }
    let (params, tail) = OParams::parse_header(sub(i, b.len())).ok_or("invalid parameter")?;
    if !tail.is_empty() {
        return Err("unexpected text after sent-by");
    }
    Ok(Via {
        transport: transport.to_owned(),
        host,
        port,
        params,
    })
}

fn single<'a>(h: &'a Headers, name: &'static str) -> Result<&'a str, HeaderError> {
    let mut it = h.get_all(name);
    let first = it.next().ok_or(HeaderError::Missing { name })?;
    if it.next().is_some() {
        return Err(HeaderError::Multiple { name });
    }
    Ok(first)
}

/// `Headers::via` as it was.
pub(crate) fn via(h: &Headers) -> Result<Vec<Via>, HeaderError> {
    let mut out = Vec::new();
    for v in h.get_all("Via") {
        out.extend(parse_list("Via", v, parse_via)?);
    }
    Ok(out)
}

/// `Headers::top_via` as it was.
pub(crate) fn top_via(h: &Headers) -> Result<Via, HeaderError> {
    let v = h.get("Via").ok_or(HeaderError::Missing { name: "Via" })?;
    let items = split_commas(v).ok_or(HeaderError::invalid("Via", "unbalanced quote"))?;
    let first = items.first().ok_or(HeaderError::Missing { name: "Via" })?;
    parse_via(first).map_err(|r| HeaderError::invalid("Via", r))
}

/// `Headers::from` / `Headers::to` as they were.
pub(crate) fn name_addr_header(h: &Headers, name: &'static str) -> Result<NameAddr, HeaderError> {
    parse_name_addr(single(h, name)?).map_err(|r| HeaderError::invalid(name, r))
}

/// `Headers::contacts` as it was (`None` stands for `*`).
pub(crate) fn contacts(h: &Headers) -> Result<Vec<Option<NameAddr>>, HeaderError> {
    let mut out = Vec::new();
    for v in h.get_all("Contact") {
        if trim_ws(v) == "*" {
            out.push(None);
        } else {
            out.extend(
                parse_list("Contact", v, parse_name_addr)?
                    .into_iter()
                    .map(Some),
            );
        }
    }
    Ok(out)
}

/// A list of name-addr headers (Route, Record-Route) as it was.
pub(crate) fn name_addrs(h: &Headers, name: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
    let mut out = Vec::new();
    for v in h.get_all(name) {
        out.extend(parse_list(name, v, parse_name_addr)?);
    }
    Ok(out)
}
