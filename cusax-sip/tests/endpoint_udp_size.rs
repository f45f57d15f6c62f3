//! RFC 3261 §18.1.1 on the sans-IO endpoint: a request larger than
//! [`EndpointConfig::udp_size_threshold`] (1,300 bytes by default) whose target is UDP
//! goes over TCP to the same address with `TCP` in its top Via; a refused TCP connection
//! sends it again over UDP; its CANCEL and ACK follow the transport it took; the top Via
//! always names the transport a request travels on. The same against sipp:
//! `sipp_interop.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::endpoint::{
    CallOptions, Endpoint, EndpointConfig, Input, SipEvent, TransportFailure,
};
use cusax_sip::msg::{Request, Uri};
use cusax_sip::transaction::{Target, Transmit, Transport};

mod common;
use common::{addr, drain, request};

const LOCAL: &str = "127.0.0.1:5070";
const PEER: &str = "127.0.0.1:5080";

fn endpoint(threshold: Option<usize>) -> Endpoint {
    let mut cfg = EndpointConfig::insecure(addr(LOCAL), Transport::Udp);
    cfg.contact_user = "alice".into();
    cfg.udp_size_threshold = threshold;
    Endpoint::new(cfg, 5)
}

fn via(r: &Request) -> String {
    r.headers.get("Via").expect("Via").to_owned()
}

/// An SDP body of `n` bytes.
fn body(n: usize) -> Bytes {
    let mut sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec();
    while sdp.len() + 12 <= n {
        sdp.extend_from_slice(b"a=x:0123456\r\n");
    }
    sdp.resize(n.max(sdp.len()), b' ');
    Bytes::from(sdp)
}

fn call(e: &mut Endpoint, now: Instant, body_len: usize, uri: &str) -> Vec<Transmit> {
    e.invite(
        now,
        Uri::parse(uri).expect("uri"),
        body(body_len),
        CallOptions::default(),
    )
    .expect("invite");
    drain(e).0
}

/// Answers `invite` with 180 over `transport`, cancels the call, and returns the CANCEL
/// sent.
fn ring_and_cancel(
    e: &mut Endpoint,
    now: Instant,
    invite: &Request,
    transport: Transport,
) -> Transmit {
    let ringing = format!(
        "SIP/2.0 180 Ringing\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        via(invite),
        invite.headers.get("From").expect("From"),
        invite.headers.get("To").expect("To"),
        invite.headers.get("Call-ID").expect("Call-ID"),
        invite.headers.get("CSeq").expect("CSeq"),
    );
    e.handle_input(
        now,
        Input::Receive {
            data: Bytes::from(ringing),
            source: addr(PEER),
            transport,
        },
    );
    let (_, events) = drain(e);
    let call = events
        .iter()
        .find_map(|ev| match ev {
            SipEvent::CallRinging { call } => Some(*call),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ringing event: {events:?}"));
    e.cancel(now, call).expect("cancel");
    let (sent, _) = drain(e);
    sent.into_iter()
        .find(|t| request(t).method.as_str() == "CANCEL")
        .expect("CANCEL sent")
}

#[test]
fn a_small_invite_stays_on_udp() {
    let now = Instant::now();
    let mut e = endpoint(Some(1300));
    let sent = call(&mut e, now, 300, &format!("sip:bob@{PEER}"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, Target::new(Transport::Udp, addr(PEER)));
    assert!(sent[0].data.len() <= 1300, "{} bytes", sent[0].data.len());
    assert!(via(&request(&sent[0])).starts_with("SIP/2.0/UDP "));
}

#[test]
fn the_limit_is_on_the_whole_request() {
    // Find the body size where the printed INVITE reaches the limit (2,000 bytes here):
    // at the limit it stays on UDP, one byte over it moves to TCP.
    const LIMIT: usize = 2000;
    let now = Instant::now();
    let uri = format!("sip:bob@{PEER}");
    // Bodies of 1,000 bytes and up: Content-Length has four digits for all of them.
    let base = call(&mut endpoint(None), now, 1000, &uri)[0].data.len();
    assert!(base < LIMIT, "{base}");
    let at_limit = 1000 + (LIMIT - base);
    for (n, want, len) in [
        (at_limit, Transport::Udp, LIMIT),
        (at_limit + 1, Transport::Tcp, LIMIT + 1),
    ] {
        let sent = call(&mut endpoint(Some(LIMIT)), now, n, &uri);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].target.transport,
            want,
            "{} bytes",
            sent[0].data.len()
        );
        assert_eq!(sent[0].data.len(), len);
    }
}

#[test]
fn a_large_invite_moves_to_tcp_and_its_cancel_follows() {
    let now = Instant::now();
    let mut e = endpoint(Some(1300));
    let sent = call(&mut e, now, 1500, &format!("sip:bob@{PEER}"));
    assert_eq!(sent.len(), 1);
    let tcp = Target::new(Transport::Tcp, addr(PEER));
    assert_eq!(sent[0].target, tcp);
    let invite = request(&sent[0]);
    assert!(via(&invite).starts_with("SIP/2.0/TCP "), "{}", via(&invite));
    // Over TCP nothing is retransmitted (RFC 3261 §17.1.1.2: Timer A only on UDP).
    e.handle_input(now + Duration::from_secs(2), Input::Timeout);
    let (again, _) = drain(&mut e);
    assert!(again.is_empty(), "retransmitted over TCP: {again:?}");
    // A provisional response arrives over the connection; then the call is cancelled:
    // the CANCEL goes where the INVITE went, with the INVITE's top Via (§9.1).
    let cancel = ring_and_cancel(&mut e, now, &invite, Transport::Tcp);
    assert_eq!(cancel.target, tcp);
    assert_eq!(via(&request(&cancel)), via(&invite));
}

#[test]
fn a_refused_tcp_connection_sends_the_request_again_over_udp() {
    let now = Instant::now();
    let mut e = endpoint(Some(1300));
    let sent = call(&mut e, now, 1500, &format!("sip:bob@{PEER}"));
    let first = request(&sent[0]);
    e.handle_input(
        now,
        Input::TransportError {
            target: Target::new(Transport::Tcp, addr(PEER)),
            reason: TransportFailure::ConnectionRefused,
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(
        events.is_empty(),
        "the fallback is not a failure the application sees: {events:?}"
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].target, Target::new(Transport::Udp, addr(PEER)));
    let again = request(&sent[0]);
    assert!(via(&again).starts_with("SIP/2.0/UDP "), "{}", via(&again));
    assert_ne!(
        via(&again),
        via(&first).replace("/TCP ", "/UDP "),
        "a new branch"
    );
    assert_eq!(again.headers.get("CSeq"), first.headers.get("CSeq"));
    assert_eq!(again.body, first.body);
    // Over UDP Timer A retransmits it, still on UDP.
    e.handle_input(now + Duration::from_millis(600), Input::Timeout);
    let (re, _) = drain(&mut e);
    assert_eq!(re.len(), 1, "{re:?}");
    assert_eq!(re[0].target.transport, Transport::Udp);
    // And the CANCEL follows it onto UDP, with its Via.
    let cancel = ring_and_cancel(&mut e, now, &again, Transport::Udp);
    assert_eq!(cancel.target, Target::new(Transport::Udp, addr(PEER)));
    assert_eq!(via(&request(&cancel)), via(&again));
}

#[test]
fn another_transport_failure_over_tcp_is_reported() {
    // Only a refused connection (RFC 3261 §18.1.1: a TCP reset) falls back to UDP; a
    // connection that timed out fails the call like any transport failure.
    let now = Instant::now();
    let mut e = endpoint(Some(1300));
    let _ = call(&mut e, now, 1500, &format!("sip:bob@{PEER}"));
    e.handle_input(
        now,
        Input::TransportError {
            target: Target::new(Transport::Tcp, addr(PEER)),
            reason: TransportFailure::Timeout,
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::TransportFailed { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallFailed { status: 503, .. })),
        "{events:?}"
    );
}

#[test]
fn without_a_threshold_a_large_invite_stays_on_udp() {
    let now = Instant::now();
    let mut e = endpoint(None);
    let sent = call(&mut e, now, 3000, &format!("sip:bob@{PEER}"));
    assert_eq!(sent[0].target, Target::new(Transport::Udp, addr(PEER)));
    assert!(sent[0].data.len() > 3000);
}

#[test]
fn the_via_names_the_transport_of_the_target() {
    // A UDP endpoint asked to reach `;transport=tcp`: the top Via says TCP.
    let now = Instant::now();
    let mut e = endpoint(Some(1300));
    let sent = call(&mut e, now, 200, &format!("sip:bob@{PEER};transport=tcp"));
    assert_eq!(sent[0].target, Target::new(Transport::Tcp, addr(PEER)));
    assert!(via(&request(&sent[0])).starts_with("SIP/2.0/TCP "));
}
