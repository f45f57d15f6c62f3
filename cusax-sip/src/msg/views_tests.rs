//! Differential tests: the borrowed views (and the owned parsers now built on them) against
//! the previous owned parsers kept in [`super::oracle`], on every RFC 4475 / RFC 5118 vector
//! and on mutations of them. Values and errors must be identical.

use std::path::PathBuf;

use bytes::Bytes;

use super::lex::split_commas;
use super::oracle;
use super::params::ParamsRef;
use super::types::{parse_name_addr, parse_name_addr_ref, parse_via, parse_via_ref};
use super::{Contact, ContactRef, Headers, Host, HostRef, SipMessage, Uri, UriRef};

pub(crate) fn vector_files() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let mut out = Vec::new();
    for dir in ["rfc4475", "rfc5118"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "dat"))
            .collect();
        names.sort();
        for p in names {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    assert!(out.len() >= 60, "only {} vector files", out.len());
    out
}

/// Every header value of `data` (lossy, unfolded naively) and every comma element of it,
/// plus the Request-URI and any `<...>` content: strings to feed the element parsers.
fn samples(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut out = Vec::new();
    let mut lines = head.lines();
    if let Some(start) = lines.next() {
        out.extend(start.split(' ').map(str::to_owned));
    }
    for l in lines {
        let v = l.split_once(':').map_or(l, |(_, v)| v);
        out.push(v.to_owned());
        out.push(v.trim().to_owned());
        if let Some(items) = split_commas(v) {
            out.extend(items.into_iter().map(str::to_owned));
        }
        for part in v.split('<').skip(1) {
            if let Some((inner, _)) = part.split_once('>') {
                out.push(inner.to_owned());
            }
        }
        if let Some(i) = v.find(';') {
            out.push(v[i..].to_owned());
            out.push(v[i + 1..].to_owned());
        }
    }
    out
}

/// The element parsers agree with the oracle on `s` (values and errors).
fn check_elements(s: &str) {
    let via = parse_via_ref(s).map(|v| v.to_owned());
    assert_eq!(via, oracle::parse_via(s), "Via {s:?}");
    assert_eq!(parse_via(s), oracle::parse_via(s), "owned Via {s:?}");
    let na = parse_name_addr_ref(s).map(|n| n.to_owned());
    assert_eq!(na, oracle::parse_name_addr(s), "name-addr {s:?}");
    assert_eq!(
        parse_name_addr(s),
        oracle::parse_name_addr(s),
        "owned name-addr {s:?}"
    );
    let u = UriRef::parse(s).map(|u| u.to_owned());
    assert_eq!(u, oracle::uri_parse(s), "URI {s:?}");
    assert_eq!(Uri::parse(s), oracle::uri_parse(s), "owned URI {s:?}");
    let h = HostRef::parse(s).map(|h| h.to_owned());
    assert_eq!(h, oracle::host_parse(s), "host {s:?}");
    assert_eq!(Host::parse(s), oracle::host_parse(s), "owned host {s:?}");
    let hp = HostRef::parse_hostport(s).map(|(h, p)| (h.to_owned(), p));
    assert_eq!(hp, oracle::host_parse_hostport(s), "hostport {s:?}");
    let p = ParamsRef::parse_header(s).map(|(p, t)| (p.to_owned(), t));
    assert_eq!(p, oracle::OParams::parse_header(s), "header params {s:?}");
    if let Some((p, _)) = ParamsRef::parse_header(s) {
        assert_eq!(p.len(), p.iter().count(), "{s:?}");
        assert_eq!(p.to_string(), p.to_owned().to_string(), "{s:?}");
    }
    let p = ParamsRef::parse_uri(s).map(|p| p.to_owned());
    assert_eq!(p, oracle::OParams::parse_uri(s), "URI params {s:?}");
    // the views read what the owned values hold
    if let Ok(v) = parse_via_ref(s) {
        let o = v.to_owned();
        assert_eq!(v.branch(), o.branch());
        assert_eq!(v.received(), o.received());
        assert_eq!(v.received_addr(), o.received_addr());
        assert_eq!(v.rport(), o.rport());
        assert_eq!(v.transport(), o.transport);
        assert_eq!(v.host(), o.host);
        assert_eq!(v.port(), o.port);
    }
    if let Ok(n) = parse_name_addr_ref(s) {
        let o = n.to_owned();
        assert_eq!(n.tag(), o.tag());
        assert_eq!(n.display_name(), o.display_name.as_deref());
        for (k, _) in o.params.iter() {
            assert_eq!(n.params().get(k), o.params.get(k), "{s:?}");
            assert_eq!(
                n.params().get_unquoted(k).map(|c| c.into_owned()),
                o.params.get_unquoted(k),
                "{s:?}"
            );
        }
        let (u, ou) = (n.uri(), &o.uri);
        assert_eq!(u.user(), ou.user.as_deref());
        assert_eq!(u.password(), ou.password.as_deref());
        assert_eq!(u.scheme(), ou.scheme);
        assert_eq!(u.is_sip(), ou.is_sip());
        assert_eq!(u.port(), ou.port);
        assert_eq!(u.opaque(), ou.opaque);
        assert_eq!(u.has_headers(), !ou.headers.is_empty());
        assert_eq!(
            u.params().iter().collect::<Vec<_>>(),
            ou.params.iter().collect::<Vec<_>>()
        );
    }
}

/// The header accessors (views and owned) agree with the oracle on a parsed message.
fn check_headers(h: &Headers, what: &str) {
    let views: Result<Vec<_>, _> = h.via_refs().map(|r| r.map(|v| v.to_owned())).collect();
    assert_eq!(views, oracle::via(h), "via_refs {what}");
    assert_eq!(h.via(), oracle::via(h), "via {what}");
    let top = h.top_via_ref().map(|v| v.to_owned());
    assert_eq!(top, oracle::top_via(h), "top_via_ref {what}");
    assert_eq!(h.top_via(), oracle::top_via(h), "top_via {what}");
    assert_eq!(
        h.from_ref().map(|n| n.to_owned()),
        oracle::name_addr_header(h, "From"),
        "from_ref {what}"
    );
    assert_eq!(h.from(), oracle::name_addr_header(h, "From"), "from {what}");
    assert_eq!(
        h.to_ref().map(|n| n.to_owned()),
        oracle::name_addr_header(h, "To"),
        "to_ref {what}"
    );
    assert_eq!(h.to(), oracle::name_addr_header(h, "To"), "to {what}");
    let star = |c: Contact| match c {
        Contact::Star => None,
        Contact::Addr(a) => Some(a),
    };
    let views: Result<Vec<_>, _> = h
        .contact_refs()
        .map(|r| r.map(|c: ContactRef<'_>| star(c.to_owned())))
        .collect();
    assert_eq!(views, oracle::contacts(h), "contact_refs {what}");
    let owned = h
        .contacts()
        .map(|v| v.into_iter().map(star).collect::<Vec<_>>());
    assert_eq!(owned, oracle::contacts(h), "contacts {what}");
    for (name, views, owned) in [
        (
            "Route",
            h.route_refs()
                .map(|r| r.map(|n| n.to_owned()))
                .collect::<Result<Vec<_>, _>>(),
            h.route(),
        ),
        (
            "Record-Route",
            h.record_route_refs()
                .map(|r| r.map(|n| n.to_owned()))
                .collect::<Result<Vec<_>, _>>(),
            h.record_route(),
        ),
    ] {
        assert_eq!(views, oracle::name_addrs(h, name), "{name} refs {what}");
        assert_eq!(owned, oracle::name_addrs(h, name), "{name} {what}");
    }
}

#[test]
fn vectors_views_agree_with_oracle() {
    let mut messages = 0;
    let mut elements = 0;
    for (name, data) in vector_files() {
        super::fuzz_typed_views(&data);
        if let Ok(m) = SipMessage::parse(Bytes::from(data.clone())) {
            messages += 1;
            check_headers(m.headers(), &name);
            if let Some(r) = m.as_request() {
                assert_eq!(
                    Some(r.uri()),
                    String::from_utf8_lossy(&data)
                        .split(' ')
                        .nth(1)
                        .and_then(|u| oracle::uri_parse(u).ok())
                        .as_ref(),
                    "{name}"
                );
            }
        }
        for s in samples(&data) {
            check_elements(&s);
            elements += 1;
        }
    }
    assert!(messages >= 45, "{messages} messages parsed");
    assert!(elements > 1000, "{elements} samples");
}

/// Deterministic mutations of the vector samples: delete, duplicate or replace one byte
/// with a character that matters to the grammar.
#[test]
fn mutated_samples_agree_with_oracle() {
    const SPECIAL: &[u8] = b";,<>\"\\=:@?[]% \t\r\n&/.x0";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut n = 0;
    for (_, data) in vector_files() {
        for s in samples(&data) {
            let b = s.as_bytes();
            if b.is_empty() || b.len() > 300 {
                continue;
            }
            for _ in 0..6 {
                let i = (next() % b.len() as u64) as usize;
                let c = SPECIAL[(next() % SPECIAL.len() as u64) as usize];
                let mut m = b.to_vec();
                match next() % 3 {
                    0 => {
                        m.remove(i);
                    }
                    1 => m.insert(i, c),
                    _ => m[i] = c,
                }
                if let Ok(m) = String::from_utf8(m) {
                    check_elements(&m);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 5000, "{n} mutations");
}

/// Header-level differential checks on hand-written messages that exercise lists, stars,
/// repeated lines and malformed elements.
#[test]
fn header_lists_agree_with_oracle() {
    let heads = [
        "Via: SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b:5070;branch=2\r\nv: SIP/2.0/UDP [::1];received=x",
        "Via: SIP/2.0/UDP a;branch=1,, SIP/2.0/UDP b",
        "Via: SIP/2.0/UDP a;x=\"open, SIP/2.0/UDP b",
        "Via: SIP/2.0/UDP a;x=\"q,\\\"\", SIP/2.0/UDP b",
        "Via: <SIP/2.0/UDP a",
        "Via: ,",
        "Via: SIP/2.0/UDP a\r\nVia: garbage",
        "Contact: *\r\nContact: <sip:a@b>;expires=5, \"B\" <sip:b@c>;q=0.5",
        "Contact: *, <sip:a@b>",
        "Contact: <sip:a@b>, <sip:c",
        "Contact: sip:a@b;tag=1, sip:c@d ; x = \"y\"",
        "From: <sip:a@b>;tag=1\r\nFrom: <sip:c@d>",
        "From: \"x\\\"y\" <sip:%61@b>;tag=\"q\"",
        "To: sip:a@b?x=y",
        "To: Bob <sips:b@[2001:db8:::192.0.2.1]:5061;transport=tls?h=v&i=%41>;tag=t",
        "Route: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3;lr>",
        "Record-Route: <sip:p1;lr>,",
        "Record-Route: <tel:+1234>;x",
    ];
    for head in heads {
        let msg = format!("OPTIONS sip:a@b SIP/2.0\r\n{head}\r\n\r\n");
        let m = SipMessage::parse(Bytes::from(msg)).unwrap();
        check_headers(m.headers(), head);
    }
    let m = SipMessage::parse(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n")).unwrap();
    check_headers(m.headers(), "no headers");
}

/// Byte-level mutants of `data` for the differential tests: `count` copies, each with one
/// to `max_edits` edits — delete a byte, insert or write one of `special`, and, when
/// `truncate`, cut the message short — drawn from a fixed xorshift `seed`.
pub(crate) fn mutants(
    data: &[u8],
    seed: u64,
    count: usize,
    max_edits: u64,
    special: &[u8],
    truncate: bool,
) -> Vec<Vec<u8>> {
    let mut seed = seed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let kinds = if truncate { 4 } else { 3 };
    (0..count)
        .map(|_| {
            let mut m = data.to_vec();
            for _ in 0..1 + next() % max_edits {
                if m.is_empty() {
                    break;
                }
                let i = (next() % m.len() as u64) as usize;
                let c = special[(next() % special.len() as u64) as usize];
                match next() % kinds {
                    0 => {
                        m.remove(i);
                    }
                    1 => m.insert(i, c),
                    2 => m[i] = c,
                    _ => m.truncate(i),
                }
            }
            m
        })
        .collect()
}

/// The fuzz hook on byte-level mutations of every vector message: views and owned
/// accessors agree (it panics otherwise) and nothing panics.
#[test]
fn fuzz_hook_on_mutated_messages() {
    const SPECIAL: &[u8] = b";,<>\"\\=:@?[]% \t\r\n";
    for (k, (_, data)) in vector_files().into_iter().enumerate() {
        for m in mutants(
            &data,
            0x9e37_79b9_7f4a_7c15 ^ k as u64,
            40,
            3,
            SPECIAL,
            false,
        ) {
            super::fuzz_typed_views(&m);
        }
    }
}
