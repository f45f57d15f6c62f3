//! Golden vectors: RFC 4475 (SIP torture tests) and RFC 5118 (IPv6 torture tests).
//!
//! `vectors/MANIFEST.tsv` lists every file with its expected outcome. Valid messages must
//! parse, pass `validate()`, carry the typed values their RFC section describes, and
//! survive a print/parse round trip; invalid ones must fail with the listed error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use cusax_sip::msg::{
    Contact, Defect, Host, Method, ParseError, Scheme, SipMessage, Uri, UriError,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

struct Entry {
    file: String,
    outcome: String,
    expect: String,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(root().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 4, "bad manifest line {l}");
            Entry {
                file: f[0].to_owned(),
                outcome: f[2].to_owned(),
                expect: f[3].to_owned(),
            }
        })
        .collect()
}

fn load(file: &str) -> Bytes {
    Bytes::from(std::fs::read(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}")))
}

fn parse_error_matches(e: &ParseError, expect: &str) -> bool {
    match (expect, e) {
        ("parse:BodyLengthMismatch", ParseError::BodyLengthMismatch { .. }) => true,
        ("parse:BadHeader:Content-Length", ParseError::BadHeader { name, .. }) => {
            name == "Content-Length"
        }
        ("parse:BadRequestUri", ParseError::BadRequestUri { .. }) => true,
        ("parse:BadStartLine", ParseError::BadStartLine { .. }) => true,
        ("parse:UnsupportedVersion", ParseError::UnsupportedVersion { .. }) => true,
        ("parse:BadStatusCode", ParseError::BadStatusCode) => true,
        _ => false,
    }
}

fn defect_matches(d: &[Defect], expect: &str) -> bool {
    let Some(want) = expect.strip_prefix("validate:") else {
        return false;
    };
    d.iter().any(|d| match d {
        Defect::CSeqMethodMismatch { .. } => want == "CSeqMethodMismatch",
        other => other.header() == want,
    })
}

fn req(m: &SipMessage) -> &cusax_sip::msg::Request {
    m.as_request().expect("a request")
}

fn v6(s: &str) -> Host {
    Host::Ipv6(s.parse().unwrap())
}

/// What each valid message's RFC section says about it.
fn check_valid(file: &str, m: &SipMessage) {
    let h = m.headers();
    let name = file.rsplit('/').next().unwrap_or(file);
    match name {
        "wsinv.dat" => {
            let r = req(m);
            assert_eq!(r.method, Method::Invite);
            assert_eq!(r.uri().user.as_deref(), Some("vivekg"));
            assert_eq!(r.uri().params.get("unknownparam"), Some(None));
            let to = h.to().unwrap();
            assert_eq!(to.display_name, None);
            assert_eq!(to.tag(), Some("1918181833n"));
            let from = h.from().unwrap();
            assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
            assert_eq!(from.tag(), Some("98asjd8"));
            assert_eq!(h.max_forwards().unwrap(), Some(68));
            assert_eq!(h.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
            assert_eq!(h.cseq().unwrap().seq, 9);
            assert_eq!(h.cseq().unwrap().method, Method::Invite);
            let via = h.via().unwrap();
            assert_eq!(via.len(), 3);
            assert_eq!(
                (via[0].transport.as_str(), &via[0].host, via[0].branch()),
                (
                    "UDP",
                    &Host::Ipv4("192.0.2.2".parse().unwrap()),
                    Some("390skdjuw")
                )
            );
            assert_eq!(via[1].host, Host::Domain("spindle.example.com".into()));
            assert_eq!(via[1].branch(), Some("z9hG4bK9ikj8"));
            assert_eq!(via[2].branch(), Some("z9hG4bK30239"));
            assert_eq!(h.get("Subject"), Some(""));
            assert_eq!(
                h.get("newfangledheader"),
                Some("newfangled value continued newfangled value")
            );
            assert_eq!(h.get("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
            let route = h.route().unwrap();
            assert_eq!(route.len(), 1);
            assert!(route[0].uri.params.has("lr"));
            assert_eq!(route[0].uri.params.get("unknownwith"), Some(Some("value")));
            assert_eq!(route[0].uri.params.get("unknown-no-value"), Some(None));
            let c = h.contacts().unwrap();
            let a = c[0].addr().unwrap();
            assert_eq!(a.display_name.as_deref(), Some("Quoted string \"\""));
            assert_eq!(a.params.get("newparam"), Some(Some("newvalue")));
            assert_eq!(a.params.get("secondparam"), Some(None));
            assert_eq!(a.params.get("q"), Some(Some("0.33")));
            assert_eq!(m.body().len(), 150);
        }
        "intmeth.dat" => {
            let r = req(m);
            let meth = "!interesting-Method0123456789_*+`.%indeed'~";
            assert_eq!(r.method, Method::Extension(meth.into()));
            assert_eq!(
                r.uri().user.as_deref(),
                Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
            );
            assert_eq!(
                r.uri().password.as_deref(),
                Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
            );
            assert_eq!(h.cseq().unwrap().method.as_str(), meth);
            assert_eq!(
                h.to().unwrap().display_name.as_deref(),
                Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
            );
            let from = h.from().unwrap();
            assert_eq!(
                from.display_name.as_deref(),
                Some("token1~` token2'+_ token3*%!.-")
            );
            assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
            assert_eq!(
                from.params.get_unquoted("fromParam''~+*_!.-%").as_deref(),
                Some(
                    "\u{0440}\u{0430}\u{0431}\u{043e}\u{0442}\u{0430}\u{044e}\u{0449}\u{0438}\u{0439}"
                )
            );
            assert_eq!(
                h.call_id().unwrap(),
                "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
            );
            assert_eq!(
                h.get("extensionHeader-!.%*+_`'~"),
                Some("\u{feff}\u{5927}\u{505c}\u{96fb}")
            );
        }
        "esc01.dat" => {
            let r = req(m);
            assert_eq!(r.uri().user.as_deref(), Some("sips:user@example.com"));
            assert_eq!(r.uri().host, Host::Domain("example.net".into()));
            assert_eq!(h.to().unwrap().uri.user.as_deref(), Some("user"));
            assert_eq!(h.from().unwrap().uri.user.as_deref(), Some("I have spaces"));
            assert_eq!(h.call_id().unwrap(), "esc01.239409asdfakjkn23onasd0-3234");
            assert_eq!(h.content_type(), Some("application/sdp"));
            let c = h.contacts().unwrap();
            // The name parameter's value is "value%41" once unescaped (never recursively).
            let want = Uri::parse("sip:caller@host5.example.net;lr;name=value%2541").unwrap();
            assert!(c[0].addr().unwrap().uri.equivalent(&want));
            let not = Uri::parse("sip:caller@host5.example.net;lr;name=valueA").unwrap();
            assert!(!c[0].addr().unwrap().uri.equivalent(&not));
            assert_eq!(c[0].addr().unwrap().uri.user.as_deref(), Some("caller"));
        }
        "escnull.dat" => {
            assert_eq!(h.to().unwrap().uri.user.as_deref(), Some("null-\0-null"));
            let c = h.contacts().unwrap();
            assert_eq!(c.len(), 2);
            assert_eq!(c[0].addr().unwrap().uri.user.as_deref(), Some("\0"));
            assert_eq!(c[1].addr().unwrap().uri.user.as_deref(), Some("\0\0"));
        }
        "esc02.dat" => {
            let r = req(m);
            assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
            assert_eq!(
                h.cseq().unwrap().method,
                Method::Extension("RE%47IST%45R".into())
            );
            assert_eq!(h.to().unwrap().display_name.as_deref(), Some("%Z%45"));
            assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
            assert_eq!(h.contacts().unwrap().len(), 2);
            assert_eq!(h.get("C%6Fntact"), Some("<sip:alias2@host2.example.com>"));
        }
        "lwsdisp.dat" => {
            assert_eq!(h.from().unwrap().display_name.as_deref(), Some("caller"));
            assert_eq!(h.from().unwrap().tag(), Some("323"));
        }
        "longreq.dat" => {
            let to = h.to().unwrap();
            assert!(
                to.display_name
                    .as_deref()
                    .unwrap()
                    .contains("extremeextreme")
            );
            assert_eq!(to.uri.port, Some(6000));
            assert_eq!(to.uri.params.len(), 3);
            assert!(h.from().unwrap().tag().unwrap().len() > 100);
            let via = h.via().unwrap();
            assert!(via.len() > 20, "{} vias", via.len());
            assert!(
                via.last()
                    .unwrap()
                    .branch()
                    .unwrap()
                    .ends_with("branchvalue")
            );
            assert_eq!(m.body().len(), 150);
        }
        "dblreq.dat" => {
            assert_eq!(req(m).method, Method::Register);
            assert!(m.body().is_empty());
            assert_eq!(
                h.call_id().unwrap(),
                "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
            );
        }
        "semiuri.dat" => {
            let r = req(m);
            assert_eq!(r.uri().user.as_deref(), Some("user;par=u@example.net"));
            assert_eq!(r.uri().host, Host::Domain("example.com".into()));
            assert!(r.uri().params.is_empty());
            assert_eq!(
                h.get("Accept"),
                Some(
                    "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
                )
            );
        }
        "transports.dat" => {
            let t: Vec<String> = h.via().unwrap().into_iter().map(|v| v.transport).collect();
            assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
            assert_eq!(h.call_id().unwrap(), "transports.kijh4akdnaqjkwendsasfdj");
        }
        "mpart01.dat" => {
            assert_eq!(req(m).method, Method::Message);
            assert!(h.content_type().unwrap().starts_with("multipart/mixed"));
            assert_eq!(m.body().len(), 553);
            assert!(
                std::str::from_utf8(m.body()).is_err(),
                "binary body kept as bytes"
            );
            assert_eq!(h.top_via().unwrap().rport(), Some(None));
        }
        "unreason.dat" => {
            let r = m.as_response().unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
            assert_eq!(m.body().len(), 154);
        }
        "noreason.dat" => {
            let r = m.as_response().unwrap();
            assert_eq!((r.status, r.reason.as_str()), (100, ""));
        }
        "badbranch.dat" => assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK")),
        "unkscm.dat" => {
            let u = &req(m).uri();
            assert_eq!(u.scheme, Scheme::Other("nobodyKnowsThisScheme".into()));
            assert_eq!(u.opaque, "totallyopaquecontent");
        }
        "novelsc.dat" => {
            let u = &req(m).uri();
            assert_eq!(u.scheme, Scheme::Other("soap.beep".into()));
            assert_eq!(u.opaque, "//192.0.2.103:3002");
        }
        "unksm2.dat" => {
            assert_eq!(h.to().unwrap().uri.scheme, Scheme::Other("isbn".into()));
            assert_eq!(h.from().unwrap().uri.scheme, Scheme::Other("http".into()));
            assert_eq!(h.from().unwrap().tag(), Some("3234233"));
            let c = h.contacts().unwrap();
            assert_eq!(c[0].addr().unwrap().uri.to_string(), "name:John_Smith");
        }
        "bext01.dat" => {
            assert_eq!(
                h.require(),
                ["nothingSupportsThis", "nothingSupportsThisEither"]
            );
            assert_eq!(
                h.proxy_require(),
                ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
            );
        }
        "invut.dat" => assert_eq!(h.content_type(), Some("application/unknownformat")),
        "regaut01.dat" => {
            let a = h.authorization().unwrap();
            assert_eq!(a[0].scheme, "NoOneKnowsThisScheme");
            assert_eq!(a[0].param("opaque-data"), Some("here"));
        }
        "bcast.dat" => {
            let v = h.via().unwrap();
            assert_eq!(v[1].host, Host::Ipv4("255.255.255.255".parse().unwrap()));
        }
        "zeromf.dat" => assert_eq!(h.max_forwards().unwrap(), Some(0)),
        "cparam01.dat" => {
            let c = h.contacts().unwrap();
            let a = c[0].addr().unwrap();
            assert!(a.uri.params.is_empty());
            assert_eq!(a.params.get("unknownparam"), Some(None));
            assert_eq!(a.uri.user.as_deref(), Some("+19725552222"));
        }
        "cparam02.dat" => {
            let c = h.contacts().unwrap();
            let a = c[0].addr().unwrap();
            assert_eq!(a.uri.params.get("unknownparam"), Some(None));
            assert!(a.params.is_empty());
        }
        "regescrt.dat" => {
            let c = h.contacts().unwrap();
            let Contact::Addr(a) = &c[0] else {
                panic!("star")
            };
            assert_eq!(
                a.uri.headers,
                [("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
            );
        }
        "sdp01.dat" => assert_eq!(h.get("Accept"), Some("text/nobodyKnowsThis")),
        "inv2543.dat" => {
            assert_eq!(h.top_via().unwrap().branch(), None);
            assert_eq!(h.from().unwrap().tag(), None);
            assert_eq!(h.max_forwards().unwrap(), None);
            assert_eq!(
                h.record_route().unwrap()[0].uri.params.get("maddr"),
                Some(Some("ss1.example.com"))
            );
            // addr-spec without <>: ";user=phone" is a header parameter (RFC 3261 §20.10)
            assert_eq!(h.to().unwrap().params.get("user"), Some(Some("phone")));
        }
        // RFC 5118
        "ipv6-good.dat" => {
            assert_eq!(req(m).uri().host, v6("2001:db8::10"));
            assert_eq!(h.top_via().unwrap().host, v6("2001:db8::9:1"));
            assert_eq!(
                h.contacts().unwrap()[0].addr().unwrap().uri.host,
                v6("2001:db8::1")
            );
        }
        "port-ambiguous.dat" => {
            assert_eq!(req(m).uri().host, v6("2001:db8::10:5070"));
            assert_eq!(req(m).uri().port, None);
        }
        "port-unambiguous.dat" => {
            assert_eq!(req(m).uri().host, v6("2001:db8::10"));
            assert_eq!(req(m).uri().port, Some(5070));
        }
        "via-received-param-with-delim.dat" => {
            let v = h.top_via().unwrap();
            assert_eq!(v.received(), Some("[2001:db8::9:255]"));
            assert_eq!(v.received_addr(), Some("2001:db8::9:255".parse().unwrap()));
            assert_eq!(v.branch(), Some("z9hG4bKas3-111"));
        }
        "via-received-param-no-delim.dat" => {
            let v = h.top_via().unwrap();
            assert_eq!(v.received_addr(), Some("2001:db8::9:255".parse().unwrap()));
            assert_eq!(v.branch(), Some("z9hG4bKas3"));
        }
        "mult-ip-in-header.dat" => {
            let v = h.via().unwrap();
            assert_eq!(v.len(), 3);
            assert_eq!((&v[0].host, v[0].port), (&v6("2001:db8::9:1"), Some(6050)));
            assert_eq!(v[1].host, Host::Ipv4("192.0.2.1".parse().unwrap()));
            assert_eq!(v[2].host, v6("2001:db8::9:255"));
            assert_eq!(v[2].received(), Some("192.0.2.200"));
        }
        "mult-ip-in-sdp.dat" => {
            assert_eq!(h.to().unwrap().uri.host, v6("2001:db8::10"));
            assert_eq!(m.body().len(), 181);
        }
        "ipv4-mapped-ipv6.dat" => {
            let v = h.via().unwrap();
            assert_eq!(
                (&v[0].host, v[0].port),
                (&v6("::ffff:192.0.2.10"), Some(19823))
            );
            assert_eq!(v[1].host, v6("::ffff:192.0.2.2"));
            let c = h.contacts().unwrap();
            assert_eq!(
                c[0].addr().unwrap().display_name.as_deref(),
                Some("T. desk phone")
            );
            assert_eq!(m.body().len(), 236);
        }
        "ipv6-bug-abnf-3-colons.dat" | "ipv6-correct-abnf-2-colons.dat" => {
            assert_eq!(req(m).uri().host, v6("2001:db8::192.0.2.1"));
            assert_eq!(h.to().unwrap().uri.host, v6("2001:db8::192.0.2.1"));
        }
        other => panic!("no RFC-specific checks written for valid vector {other}"),
    }
}

#[test]
fn torture_vectors() {
    let entries = manifest();
    let mut score: BTreeMap<&str, [usize; 6]> = BTreeMap::new(); // valid ok/total, invalid ok/total, flag ok/total
    let mut failures = Vec::new();
    for e in &entries {
        let rfc = if e.file.starts_with("rfc4475/") {
            "rfc4475"
        } else {
            "rfc5118"
        };
        let s = score.entry(rfc).or_default();
        let data = load(&e.file);
        let parsed = SipMessage::parse(data.clone());
        match e.outcome.as_str() {
            "valid" => {
                s[1] += 1;
                let ok = match &parsed {
                    Err(err) => Err(format!("parse failed: {err}")),
                    Ok(m) => match m.validate() {
                        Err(d) => Err(format!("validate failed: {d}")),
                        Ok(()) => {
                            check_valid(&e.file, m);
                            let printed = m.to_bytes();
                            match SipMessage::parse(printed).map(|mut m2| {
                                // to_bytes() adds Content-Length when the message had none
                                if !m.headers().contains("Content-Length") {
                                    m2.headers_mut().remove("Content-Length");
                                }
                                m2
                            }) {
                                Ok(m2) if &m2 == m => Ok(()),
                                Ok(_) => Err("re-parsed message differs".to_owned()),
                                Err(err) => Err(format!("printed form does not parse: {err}")),
                            }
                        }
                    },
                };
                match ok {
                    Ok(()) => s[0] += 1,
                    Err(why) => failures.push(format!("{}: {why}", e.file)),
                }
            }
            "invalid" => {
                s[3] += 1;
                let ok = match &parsed {
                    Err(err) => parse_error_matches(err, &e.expect),
                    Ok(m) => defect_matches(&m.defects(), &e.expect),
                };
                if ok {
                    s[2] += 1;
                } else {
                    failures.push(format!(
                        "{}: expected {}, got {:?}",
                        e.file,
                        e.expect,
                        parsed.as_ref().map(|m| m.defects())
                    ));
                }
            }
            "accept-flag" => {
                s[5] += 1;
                match &parsed {
                    Ok(m) if defect_matches(&m.defects(), &e.expect) => s[4] += 1,
                    other => failures.push(format!(
                        "{}: expected accepted with {}, got {:?}",
                        e.file,
                        e.expect,
                        other.as_ref().map(|m| m.defects())
                    )),
                }
            }
            other => panic!("unknown outcome {other} for {}", e.file),
        }
    }
    for (rfc, s) in &score {
        println!(
            "{rfc}: valid {}/{} parsed, invalid {}/{} rejected, accept-flag {}/{} flagged, 0 skipped",
            s[0], s[1], s[2], s[3], s[4], s[5]
        );
    }
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.file.starts_with("rfc4475/"))
            .count(),
        49
    );
    assert!(
        failures.is_empty(),
        "vector failures:\n{}",
        failures.join("\n")
    );
}

/// Every `.dat` file in the vectors folders is listed in the manifest.
#[test]
fn manifest_covers_every_file() {
    let listed: Vec<String> = manifest().into_iter().map(|e| e.file).collect();
    for dir in ["rfc4475", "rfc5118"] {
        for f in std::fs::read_dir(root().join(dir)).unwrap() {
            let name = format!("{dir}/{}", f.unwrap().file_name().to_string_lossy());
            if name.ends_with(".dat") {
                assert!(listed.contains(&name), "{name} missing from MANIFEST.tsv");
            }
        }
    }
}

/// RFC 5118 §4.6's headers are valid; only the Content-Length printed in the RFC is off.
#[test]
fn rfc5118_ipv6_in_sdp_headers() {
    let data = load("rfc5118/ipv6-in-sdp.dat");
    let text = std::str::from_utf8(&data).unwrap();
    let body_len = text.split_once("\r\n\r\n").unwrap().1.len();
    assert_eq!(body_len, 251);
    let fixed = text.replace(
        "Content-Length: 268",
        &format!("Content-Length: {body_len}"),
    );
    let m = SipMessage::parse(Bytes::from(fixed)).unwrap();
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(req(&m).uri().host, v6("2001:db8::10"));
    assert_eq!(m.headers().top_via().unwrap().host, v6("2001:db8::20"));
    assert_eq!(m.body().len(), 251);
}

/// RFC 5118 §4.2: the bare IPv6 Request-URI fails on its host.
#[test]
fn rfc5118_ipv6_bad_is_a_host_error() {
    let err = SipMessage::parse(load("rfc5118/ipv6-bad.dat")).unwrap_err();
    assert!(matches!(
        err,
        ParseError::BadRequestUri {
            source: UriError::BadHost | UriError::BadPort
        }
    ));
    assert_eq!(err.status(), 400);
}

/// On every vector that parses, the borrowed views give exactly what the owned accessors
/// give (values and errors), for Via (all and top), From, To, Contact, Route and
/// Record-Route; CSeq and Call-ID have one accessor for both uses.
#[test]
fn borrowed_views_agree_with_owned_accessors() {
    let mut checked = 0;
    for e in manifest() {
        let Ok(m) = SipMessage::parse(load(&e.file)) else {
            continue;
        };
        let h = m.headers();
        let f = &e.file;
        let vias: Result<Vec<_>, _> = h.via_refs().map(|r| r.map(|v| v.to_owned())).collect();
        assert_eq!(vias, h.via(), "{f}: Via");
        assert_eq!(
            h.top_via_ref().map(|v| v.to_owned()),
            h.top_via(),
            "{f}: top Via"
        );
        if let (Ok(v), Ok(o)) = (h.top_via_ref(), h.top_via()) {
            assert_eq!(
                (v.branch(), v.received(), v.rport(), v.transport(), v.port()),
                (
                    o.branch(),
                    o.received(),
                    o.rport(),
                    o.transport.as_str(),
                    o.port
                ),
                "{f}: top Via accessors"
            );
        }
        assert_eq!(h.from_ref().map(|n| n.to_owned()), h.from(), "{f}: From");
        assert_eq!(h.to_ref().map(|n| n.to_owned()), h.to(), "{f}: To");
        if let (Ok(v), Ok(o)) = (h.from_ref(), h.from()) {
            assert_eq!(v.tag(), o.tag(), "{f}: From tag");
            assert_eq!(
                v.display_name(),
                o.display_name.as_deref(),
                "{f}: display name"
            );
            assert_eq!(v.uri().user(), o.uri.user.as_deref(), "{f}: From user");
        }
        let contacts: Result<Vec<_>, _> =
            h.contact_refs().map(|r| r.map(|c| c.to_owned())).collect();
        assert_eq!(contacts, h.contacts(), "{f}: Contact");
        let route: Result<Vec<_>, _> = h.route_refs().map(|r| r.map(|n| n.to_owned())).collect();
        assert_eq!(route, h.route(), "{f}: Route");
        let rr: Result<Vec<_>, _> = h
            .record_route_refs()
            .map(|r| r.map(|n| n.to_owned()))
            .collect();
        assert_eq!(rr, h.record_route(), "{f}: Record-Route");
        checked += 1;
    }
    assert!(checked >= 45, "{checked} vectors checked");
}
