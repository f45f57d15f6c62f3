//! Security defaults of the sans-IO endpoint, driven by hand-written peer messages:
//! TLS by default, no downgrade of `sips:` or TLS dialogs, per-target TLS server names,
//! trusted P-Asserted-Identity, signalling-security data on events, Call-Info on the
//! answer, in-dialog CSeq checks, no lost events.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use cusax_sip::endpoint::{
    Account, CallOptions, Endpoint, EndpointConfig, EndpointError, Input, Output, SipEvent,
};
use cusax_sip::msg::{Request, SipMessage, Uri};
use cusax_sip::transaction::{Target, Transmit, Transport};

const LOCAL: &str = "127.0.0.1:5070";
const PROXY: &str = "127.0.0.1:5061";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn account(registrar: Target) -> Account {
    Account {
        aor: Uri::parse("sip:alice@cusax.test").expect("aor"),
        display_name: None,
        username: "alice".into(),
        password: "alice-secret".into(),
        registrar,
        outbound_proxy: None,
        expires: 600,
    }
}

/// Drains the endpoint: (transmits, events).
fn drain(e: &mut Endpoint) -> (Vec<Transmit>, Vec<SipEvent>) {
    let (mut out, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = e.poll_output() {
        match o {
            Output::Transmit(t) => out.push(t),
            Output::Event(ev) => events.push(ev),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    (out, events)
}

fn parse_request(t: &Transmit) -> Request {
    match SipMessage::parse(t.data.clone()).expect("valid SIP") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("request expected"),
    }
}

fn feed(e: &mut Endpoint, now: Instant, text: &str, source: Target) {
    e.handle_input(
        now,
        Input::Receive {
            data: Bytes::from(text.replace('\n', "\r\n")),
            source: source.addr,
            transport: source.transport,
        },
    );
}

/// A response to `req` with the given status, To tag and extra header lines.
fn respond(req: &Request, status: u16, to_tag: &str, extra: &str) -> String {
    let via: Vec<&str> = req.headers.get_all("Via").collect();
    format!(
        "SIP/2.0 {status} X\nVia: {}\nFrom: {}\nTo: {};tag={to_tag}\nCall-ID: {}\nCSeq: {}\n{extra}Content-Length: 0\n\n",
        via.join(", "),
        req.headers.get("From").expect("From"),
        req.headers.get("To").expect("To"),
        req.headers.get("Call-ID").expect("Call-ID"),
        req.headers.get("CSeq").expect("CSeq"),
    )
}

#[test]
fn tls_is_the_default_and_plain_transports_need_an_explicit_opt_in() {
    let now = Instant::now();
    let cfg = EndpointConfig::new(addr(LOCAL));
    assert_eq!(cfg.transport, Transport::Tls);
    assert!(!cfg.allow_insecure_transport);

    // A registrar reached over UDP is refused without the opt-in.
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(Target::new(Transport::Udp, addr("127.0.0.1:5060"))));
    let mut e = Endpoint::new(cfg, 1);
    assert!(matches!(
        e.register(now),
        Err(EndpointError::InsecureTransport(t)) if t.transport == Transport::Udp
    ));
    assert!(drain(&mut e).0.is_empty(), "nothing sent in clear text");

    // Over TLS: Via and Contact say TLS.
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(Target::new(Transport::Tls, addr(PROXY))));
    let mut e = Endpoint::new(cfg, 1);
    e.register(now).expect("register over TLS");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.transport, Transport::Tls);
    let reg = parse_request(&out[0]);
    assert!(
        reg.headers
            .get("Via")
            .expect("Via")
            .starts_with("SIP/2.0/TLS ")
    );
    assert!(
        reg.headers
            .get("Contact")
            .expect("Contact")
            .contains(";transport=tls")
    );

    // The explicit opt-in allows UDP.
    let mut cfg = EndpointConfig::insecure(addr(LOCAL), Transport::Udp);
    cfg.account = Some(account(Target::new(Transport::Udp, addr("127.0.0.1:5060"))));
    let mut e = Endpoint::new(cfg, 1);
    e.register(now).expect("register over UDP when opted in");
    assert_eq!(drain(&mut e).0[0].target.transport, Transport::Udp);
}

#[test]
fn messages_over_plain_transports_are_dropped_by_default() {
    let now = Instant::now();
    let mut e = Endpoint::new(EndpointConfig::new(addr(LOCAL)), 2);
    let invite = "INVITE sip:alice@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKplain
Max-Forwards: 70
From: <sip:mallory@evil.test>;tag=m1
To: <sip:alice@cusax.test>
Call-ID: plain@evil.test
CSeq: 1 INVITE
Contact: <sip:mallory@127.0.0.1:5090>
Content-Length: 0

";
    feed(
        &mut e,
        now,
        invite,
        Target::new(Transport::Udp, addr("127.0.0.1:5090")),
    );
    let (out, events) = drain(&mut e);
    assert!(out.is_empty(), "{out:?}");
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn tls_server_name_is_chosen_per_target() {
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(Target::new(Transport::Tls, addr(PROXY))));
    let e = Endpoint::new(cfg, 3);
    assert_eq!(
        e.tls_server_name(&Target::new(Transport::Tls, addr(PROXY))),
        "cusax.test"
    );
    assert_eq!(
        e.tls_server_name(&Target::new(Transport::Tls, addr("127.0.0.2:5061"))),
        "127.0.0.2"
    );
}

/// Places a call over TLS to an IP-literal peer and answers it with a 200 whose
/// Contact is `contact`; returns the endpoint, its call and the peer target.
fn tls_call_answered(
    contact: &str,
    to: &str,
) -> (Endpoint, cusax_sip::endpoint::CallId, Target, Vec<Transmit>) {
    let now = Instant::now();
    let mut e = Endpoint::new(EndpointConfig::new(addr(LOCAL)), 4);
    let peer = Target::new(Transport::Tls, addr(PROXY));
    let call = e
        .invite(
            now,
            Uri::parse(to).expect("uri"),
            Bytes::from_static(b"v=0\r\n"),
            CallOptions::default(),
        )
        .expect("invite");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target, peer);
    let inv = parse_request(&out[0]);
    feed(
        &mut e,
        now,
        &respond(&inv, 200, "bobtag", &format!("Contact: <{contact}>\n")),
        peer,
    );
    let (out, events) = drain(&mut e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallAnswered { call: c, .. } if *c == call)),
        "{events:?}"
    );
    (e, call, peer, out)
}

#[test]
fn a_tls_dialog_never_moves_to_udp() {
    let (mut e, call, _, out) = tls_call_answered(
        "sip:bob@127.0.0.1:5062;transport=udp",
        "sip:bob@127.0.0.1:5061",
    );
    assert!(
        out.iter().all(|t| t.target.transport == Transport::Tls),
        "no ACK over UDP: {out:?}"
    );
    let now = Instant::now();
    assert!(matches!(e.bye(now, call), Err(EndpointError::Downgrade(_))));
    assert!(matches!(
        e.reinvite(now, call, Bytes::from_static(b"v=0\r\n")),
        Err(EndpointError::Downgrade(_))
    ));
    let (out, _) = drain(&mut e);
    assert!(
        out.iter().all(|t| t.target.transport == Transport::Tls),
        "{out:?}"
    );
}

#[test]
fn a_tls_dialog_with_a_plain_contact_stays_on_tls() {
    // No transport parameter: the next request goes to the Contact over TLS.
    let (mut e, call, _, out) =
        tls_call_answered("sip:bob@127.0.0.1:5063", "sip:bob@127.0.0.1:5061");
    let ack = out
        .iter()
        .find(|t| parse_request(t).method.as_str() == "ACK")
        .expect("ACK sent");
    assert_eq!(
        ack.target,
        Target::new(Transport::Tls, addr("127.0.0.1:5063"))
    );
    e.bye(Instant::now(), call).expect("BYE over TLS");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.transport, Transport::Tls);
}

#[test]
fn sips_uris_are_never_sent_over_plain_transports() {
    let now = Instant::now();
    // Even with plain transports allowed, a sips: URI needs TLS.
    let mut e = Endpoint::new(EndpointConfig::insecure(addr(LOCAL), Transport::Udp), 5);
    let r = e.invite(
        now,
        Uri::parse("sips:bob@127.0.0.1:5062;transport=udp").expect("uri"),
        Bytes::new(),
        CallOptions::default(),
    );
    assert!(matches!(r, Err(EndpointError::Downgrade(_))), "{r:?}");
    // Without a transport parameter, sips: goes over TLS (port 5061 by default).
    e.invite(
        now,
        Uri::parse("sips:bob@127.0.0.1").expect("uri"),
        Bytes::new(),
        CallOptions::default(),
    )
    .expect("invite");
    let (out, _) = drain(&mut e);
    assert_eq!(
        out[0].target,
        Target::new(Transport::Tls, addr("127.0.0.1:5061"))
    );
}
