//! 3xx redirection of an outgoing call (RFC 3261 §8.1.3.4) on the sans-IO endpoint:
//! the INVITE goes to the redirect's Contacts, best `q` first, each URI once, with a
//! new CSeq and the same Call-ID, From and To; a failed target moves on to the next, a
//! 6xx ends the search; loops, `sips:` downgrades and the target budget end it too.
//! Against sipp: `sipp_interop.rs`.

use std::time::Instant;

use bytes::Bytes;
use cusax_sip::endpoint::{
    CallId, CallOptions, Endpoint, EndpointConfig, Input, MAX_REDIRECT_TARGETS, SipEvent,
};
use cusax_sip::msg::{Request, SipMessage, Uri};
use cusax_sip::transaction::{Target, Transmit, Transport};

mod common;
use common::{addr, drain};

const LOCAL: &str = "127.0.0.1:5070";
const FIRST: &str = "127.0.0.1:5080";

fn endpoint(follow: bool) -> Endpoint {
    let mut cfg = EndpointConfig::insecure(addr(LOCAL), Transport::Udp);
    cfg.contact_user = "alice".into();
    cfg.follow_redirects = follow;
    Endpoint::new(cfg, 23)
}

fn requests(sent: &[Transmit]) -> Vec<(Request, Target)> {
    sent.iter()
        .filter_map(|t| match SipMessage::parse(t.data.clone()) {
            Ok(SipMessage::Request(r)) => Some((r, t.target)),
            _ => None,
        })
        .collect()
}

/// The single INVITE among `sent`.
fn invite(sent: &[Transmit]) -> (Request, Target) {
    let mut invites: Vec<_> = requests(sent)
        .into_iter()
        .filter(|(r, _)| r.method.as_str() == "INVITE")
        .collect();
    assert_eq!(invites.len(), 1, "{sent:?}");
    invites.remove(0)
}

/// Answers `req` (which came from `from`) with `status` and extra header lines.
fn answer(e: &mut Endpoint, now: Instant, req: &Request, from: Target, status: u16, extra: &str) {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=t{status}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        req.headers.get("Via").expect("Via"),
        req.headers.get("From").expect("From"),
        req.headers.get("To").expect("To"),
        req.headers.get("Call-ID").expect("Call-ID"),
        req.headers.get("CSeq").expect("CSeq"),
    );
    e.handle_input(
        now,
        Input::Receive {
            data: Bytes::from(text),
            source: from.addr,
            transport: from.transport,
        },
    );
}

fn start(e: &mut Endpoint, now: Instant, uri: &str) -> (CallId, Request, Target) {
    let call = e
        .invite(
            now,
            Uri::parse(uri).expect("uri"),
            Bytes::from_static(b"v=0\r\n"),
            CallOptions::default(),
        )
        .expect("invite");
    let (sent, _) = drain(e);
    let (req, target) = invite(&sent);
    (call, req, target)
}

fn seq(r: &Request) -> u32 {
    r.headers.cseq().expect("CSeq").seq
}

#[test]
fn a_302_sends_the_invite_to_the_best_contact_then_the_next() {
    let now = Instant::now();
    let mut e = endpoint(true);
    let (call, first, at) = start(&mut e, now, &format!("sip:bob@{FIRST}"));
    assert_eq!(at, Target::new(Transport::Udp, addr(FIRST)));
    // Listed first but with a lower q: tried second.
    answer(
        &mut e,
        now,
        &first,
        at,
        302,
        "Contact: <sip:bob@127.0.0.1:5082>;q=0.5, <sip:bob@127.0.0.1:5081>;q=0.9\r\n",
    );
    let (sent, events) = drain(&mut e);
    let (second, at2) = invite(&sent);
    assert_eq!(at2, Target::new(Transport::Udp, addr("127.0.0.1:5081")));
    assert_eq!(second.uri().to_string(), "sip:bob@127.0.0.1:5081");
    for h in ["Call-ID", "From", "To"] {
        assert_eq!(second.headers.get(h), first.headers.get(h), "{h}");
    }
    assert_eq!(seq(&second), seq(&first) + 1);
    assert_ne!(second.headers.get("Via"), first.headers.get("Via"));
    // The 302 itself was ACKed to where it came from (RFC 3261 §17.1.1.3).
    assert!(
        requests(&sent)
            .iter()
            .any(|(r, t)| r.method.as_str() == "ACK" && *t == at),
        "{sent:?}"
    );
    assert!(
        matches!(
            &events[..],
            [SipEvent::CallRedirected { call: c, status: 302, target, .. }]
                if *c == call && target.to_string() == "sip:bob@127.0.0.1:5081"
        ),
        "{events:?}"
    );

    // That target is busy: the next one is tried.
    answer(&mut e, now, &second, at2, 486, "");
    let (sent, events) = drain(&mut e);
    let (third, at3) = invite(&sent);
    assert_eq!(at3, Target::new(Transport::Udp, addr("127.0.0.1:5082")));
    assert_eq!(seq(&third), seq(&second) + 1);
    assert!(
        matches!(&events[..], [SipEvent::CallRedirected { status: 486, .. }]),
        "{events:?}"
    );

    // It answers: the call, under its first handle, is established.
    answer(
        &mut e,
        now,
        &third,
        at3,
        200,
        "Contact: <sip:bob@127.0.0.1:5082>\r\n",
    );
    let (_, events) = drain(&mut e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallAnswered { call: c, .. } if *c == call)),
        "{events:?}"
    );
}

/// Runs a call whose first INVITE is answered with `status` and `extra`; returns the
/// events after that response.
fn first_answer(
    follow: bool,
    uri: &str,
    status: u16,
    extra: &str,
) -> (Vec<Transmit>, Vec<SipEvent>) {
    let now = Instant::now();
    let mut e = endpoint(follow);
    let (_, first, at) = start(&mut e, now, uri);
    answer(&mut e, now, &first, at, status, extra);
    drain(&mut e)
}

fn failed_with(events: &[SipEvent], status: u16) -> bool {
    events
        .iter()
        .any(|ev| matches!(ev, SipEvent::CallFailed { status: s, .. } if *s == status))
}

#[test]
fn without_following_a_302_fails_the_call() {
    let (sent, events) = first_answer(
        false,
        &format!("sip:bob@{FIRST}"),
        302,
        "Contact: <sip:bob@127.0.0.1:5081>\r\n",
    );
    assert!(failed_with(&events, 302), "{events:?}");
    assert!(
        requests(&sent)
            .iter()
            .all(|(r, _)| r.method.as_str() == "ACK")
    );
}

#[test]
fn a_redirect_back_to_the_same_uri_is_no_loop() {
    let (_, events) = first_answer(
        true,
        &format!("sip:bob@{FIRST}"),
        302,
        &format!("Contact: <sip:bob@{FIRST}>\r\n"),
    );
    assert!(failed_with(&events, 302), "{events:?}");
}

#[test]
fn a_sips_call_is_not_redirected_to_sip() {
    // A sips: call over TLS (allowed to use TLS here), redirected to a sip: URI.
    let now = Instant::now();
    let mut e = endpoint(true);
    let (_, first, at) = start(&mut e, now, &format!("sips:bob@{FIRST}"));
    assert_eq!(at.transport, Transport::Tls);
    answer(
        &mut e,
        now,
        &first,
        at,
        302,
        "Contact: <sip:bob@127.0.0.1:5081>\r\n",
    );
    let (_, events) = drain(&mut e);
    assert!(failed_with(&events, 302), "{events:?}");
}

#[test]
fn a_6xx_ends_the_search() {
    let now = Instant::now();
    let mut e = endpoint(true);
    let (_, first, at) = start(&mut e, now, &format!("sip:bob@{FIRST}"));
    answer(
        &mut e,
        now,
        &first,
        at,
        301,
        "Contact: <sip:bob@127.0.0.1:5081>, <sip:bob@127.0.0.1:5082>\r\n",
    );
    let (sent, _) = drain(&mut e);
    let (second, at2) = invite(&sent);
    answer(&mut e, now, &second, at2, 603, "");
    let (sent, events) = drain(&mut e);
    assert!(failed_with(&events, 603), "{events:?}");
    assert!(
        requests(&sent)
            .iter()
            .all(|(r, _)| r.method.as_str() == "ACK"),
        "no INVITE to the second contact after a 6xx: {sent:?}"
    );
}

#[test]
fn a_chain_of_redirects_stops_at_the_budget() {
    let now = Instant::now();
    let mut e = endpoint(true);
    let (_, mut req, mut at) = start(&mut e, now, &format!("sip:bob@{FIRST}"));
    let mut invites = 1;
    loop {
        let next = format!("Contact: <sip:bob@127.0.0.1:{}>\r\n", 6000 + invites);
        answer(&mut e, now, &req, at, 302, &next);
        let (sent, events) = drain(&mut e);
        if failed_with(&events, 302) {
            break;
        }
        let (r, t) = invite(&sent);
        req = r;
        at = t;
        invites += 1;
        assert!(invites <= MAX_REDIRECT_TARGETS, "{invites} INVITEs");
    }
    assert_eq!(invites, MAX_REDIRECT_TARGETS);
}

#[test]
fn use_proxy_and_alternative_service_are_not_followed() {
    // 305's Contact is a proxy to go through and 380's an alternative service, not new
    // Request-URIs: both end the call (RFC 3261 §21.3.5, §21.3.6).
    for status in [305, 380] {
        let (_, events) = first_answer(
            true,
            &format!("sip:bob@{FIRST}"),
            status,
            "Contact: <sip:proxy@127.0.0.1:5081>\r\n",
        );
        assert!(failed_with(&events, status), "{status}: {events:?}");
    }
}

#[test]
fn a_call_over_tls_is_not_redirected_to_a_plain_transport() {
    let (_, events) = first_answer(
        true,
        &format!("sip:bob@{FIRST};transport=tls"),
        302,
        "Contact: <sip:bob@127.0.0.1:5081>\r\n",
    );
    assert!(failed_with(&events, 302), "{events:?}");
}

#[test]
fn a_302_with_many_contacts_tries_at_most_the_budget() {
    // 200 Contacts, each target busy: INVITEs to the best ones until the budget is
    // spent, then the call fails with the last target's answer.
    let now = Instant::now();
    let mut e = endpoint(true);
    let (_, first, at) = start(&mut e, now, &format!("sip:bob@{FIRST}"));
    let contacts: Vec<String> = (0..200)
        .map(|i| format!("<sip:bob@127.0.0.1:{}>;q=0.{}", 7000 + i, i % 10))
        .collect();
    answer(
        &mut e,
        now,
        &first,
        at,
        302,
        &format!("Contact: {}\r\n", contacts.join(", ")),
    );
    let mut invites = 1;
    let mut last = drain(&mut e);
    loop {
        if failed_with(&last.1, 486) {
            break;
        }
        let (req, t) = invite(&last.0);
        invites += 1;
        assert!(invites <= MAX_REDIRECT_TARGETS, "{invites} INVITEs");
        // The best q first: every target tried has q=0.9.
        assert!(
            contacts
                .iter()
                .any(|c| c.starts_with(&format!("<{}>", req.uri())) && c.ends_with("q=0.9")),
            "{}",
            req.uri()
        );
        answer(&mut e, now, &req, t, 486, "");
        last = drain(&mut e);
    }
    assert_eq!(invites, MAX_REDIRECT_TARGETS);
}
