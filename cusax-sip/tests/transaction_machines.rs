//! RFC 3261 §17 transaction machines driven with a fake clock (a base `Instant` plus
//! durations): every timer of every machine, retransmission schedules, matching.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::msg::{Method, Request, Response, SipMessage};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit, Transport,
};

const LOCAL: &str = "127.0.0.1:5070";
const REMOTE: &str = "127.0.0.1:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn udp() -> Target {
    Target::new(Transport::Udp, addr(REMOTE))
}

fn tcp() -> Target {
    Target::new(Transport::Tcp, addr(REMOTE))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn parse(text: &str) -> SipMessage {
    SipMessage::parse(Bytes::from(text.to_string())).expect("test message parses")
}

fn parse_request(text: &str) -> Request {
    match parse(text) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

fn parse_response_bytes(b: &Bytes) -> Response {
    match SipMessage::parse(b.clone()).expect("layer output parses") {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("expected a response"),
    }
}

fn parse_request_bytes(b: &Bytes) -> Request {
    match SipMessage::parse(b.clone()).expect("layer output parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

fn request_text(method: &str, branch: &str, transport: &str, sent_by: &str) -> String {
    format!(
        "{method} sip:bob@cusax.test SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {sent_by};branch={branch};rport\r\n\
         Route: <sip:127.0.0.1:5060;lr>\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@cusax.test>;tag=a1\r\n\
         To: <sip:bob@cusax.test>\r\n\
         Call-ID: call-1@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@127.0.0.1:5070>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn request(method: &str, branch: &str) -> Request {
    parse_request(&request_text(method, branch, "UDP", LOCAL))
}

/// A response to `req` built as a peer would (copying Via, From, To, Call-ID, CSeq).
fn response_to(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
    let mut text = format!("SIP/2.0 {status} {reason}\r\n");
    for via in req.headers.get_all("Via") {
        text.push_str(&format!("Via: {via}\r\n"));
    }
    let to = req.headers.get("To").expect("To");
    let to = match to_tag {
        Some(tag) => format!("{to};tag={tag}"),
        None => to.to_string(),
    };
    text.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        req.headers.get("From").expect("From"),
        req.headers.get("Call-ID").expect("Call-ID"),
        req.headers.get("CSeq").expect("CSeq"),
    ));
    match parse(&text) {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => unreachable!(),
    }
}

fn transmits(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

fn events(layer: &mut TransactionLayer) -> Vec<TransactionEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

/// Runs the layer's timers until `until`, returning the offsets (from `t0`) at which
/// something was transmitted.
fn run_timers(layer: &mut TransactionLayer, t0: Instant, until: Duration) -> Vec<Duration> {
    let mut sent = Vec::new();
    while let Some(at) = layer.poll_timeout() {
        if at > t0 + until {
            break;
        }
        layer.handle_timeout(at);
        for _ in transmits(layer) {
            sent.push(at - t0);
        }
    }
    sent
}

fn feed(layer: &mut TransactionLayer, now: Instant, msg: impl Into<Bytes>, from: Target) {
    layer.handle_datagram(now, msg.into(), from.addr, from.transport);
}

fn response_bytes(r: &Response) -> Bytes {
    SipMessage::Response(r.clone()).to_bytes()
}

fn secs(v: &[f64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

// ---------------------------------------------------------------- INVITE client

#[test]
fn invite_client_timer_a_doubles_without_cap_until_timer_b() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let key = l
        .send_request(t0, request("INVITE", "z9hG4bKa1"), udp())
        .unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    let sent = run_timers(&mut l, t0, Duration::from_secs(40));
    // Timer A: 0.5, 1, 2, 4, 8, 16 s intervals; Timer B = 64*T1 = 32 s.
    assert_eq!(sent, secs(&[0.5, 1.5, 3.5, 7.5, 15.5, 31.5]));
    let ev = events(&mut l);
    assert_eq!(
        ev,
        vec![
            TransactionEvent::Timeout { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn invite_client_over_tcp_never_retransmits() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = parse_request(&request_text("INVITE", "z9hG4bKt1", "TCP", LOCAL));
    let key = l.send_request(t0, req, tcp()).unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    let sent = run_timers(&mut l, t0, Duration::from_secs(40));
    assert!(sent.is_empty());
    assert!(matches!(&events(&mut l)[..], [TransactionEvent::Timeout { key: k }, _] if *k == key));
}

#[test]
fn invite_client_provisional_stops_timer_a_and_b() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKa2");
    let key = l.send_request(t0, req.clone(), udp()).unwrap();
    transmits(&mut l);
    feed(
        &mut l,
        t0 + ms(100),
        response_bytes(&response_to(&req, 180, "Ringing", Some("b1"))),
        udp(),
    );
    match &events(&mut l)[..] {
        [TransactionEvent::Response { key: k, response }] => {
            assert_eq!(*k, key);
            assert_eq!(response.status, 180);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Proceeding has no timer (§17.1.1.2): the TU decides when to CANCEL.
    assert_eq!(l.poll_timeout(), None);
    assert!(run_timers(&mut l, t0, Duration::from_secs(60)).is_empty());
}

#[test]
fn invite_client_acks_non_2xx_itself_and_waits_timer_d() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKa3");
    let key = l.send_request(t0, req.clone(), udp()).unwrap();
    transmits(&mut l);
    let busy = response_to(&req, 486, "Busy Here", Some("b486"));
    feed(&mut l, t0 + ms(200), response_bytes(&busy), udp());
    let out = transmits(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target, udp());
    let ack = parse_request_bytes(&out[0].data);
    // §17.1.1.3: same Request-URI, Call-ID, From, To with the response's tag, CSeq
    // number with ACK, one Via = the INVITE's top Via, the INVITE's Route headers.
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri(), req.uri());
    assert_eq!(ack.headers.get("Call-ID"), req.headers.get("Call-ID"));
    assert_eq!(ack.headers.get("From"), req.headers.get("From"));
    assert_eq!(ack.headers.get("To"), busy.headers.get("To"));
    assert!(ack.headers.get("To").unwrap().contains("tag=b486"));
    assert_eq!(
        ack.headers
            .get("CSeq")
            .map(|s| s.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["1", "ACK"])
    );
    assert_eq!(
        ack.headers.get_all("Via").collect::<Vec<_>>(),
        req.headers.get_all("Via").take(1).collect::<Vec<_>>()
    );
    assert_eq!(
        ack.headers.get_all("Route").collect::<Vec<_>>(),
        req.headers.get_all("Route").collect::<Vec<_>>()
    );
    assert!(ack.headers.get("Max-Forwards").is_some());
    match &events(&mut l)[..] {
        [TransactionEvent::Response { key: k, response }] => {
            assert_eq!(*k, key);
            assert_eq!(response.status, 486);
        }
        other => panic!("unexpected {other:?}"),
    }
    // A retransmitted final response is answered with the same ACK, not passed up.
    feed(&mut l, t0 + ms(900), response_bytes(&busy), udp());
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, out[0].data);
    assert!(events(&mut l).is_empty());
    // No more INVITE retransmissions; Timer D (32 s) ends the transaction.
    assert_eq!(
        l.poll_timeout(),
        Some(t0 + ms(200) + Duration::from_secs(32))
    );
    assert!(run_timers(&mut l, t0, Duration::from_secs(60)).is_empty());
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
}

#[test]
fn invite_client_over_tcp_terminates_at_once_after_non_2xx() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = parse_request(&request_text("INVITE", "z9hG4bKt2", "TCP", LOCAL));
    let key = l.send_request(t0, req.clone(), tcp()).unwrap();
    transmits(&mut l);
    feed(
        &mut l,
        t0 + ms(10),
        response_bytes(&response_to(&req, 603, "Decline", Some("x"))),
        tcp(),
    );
    assert_eq!(transmits(&mut l).len(), 1, "the ACK");
    let ev = events(&mut l);
    assert!(
        matches!(&ev[..], [TransactionEvent::Response { .. }, TransactionEvent::Terminated { key: k }] if *k == key),
        "{ev:?}"
    );
}

#[test]
fn invite_client_passes_2xx_retransmissions_until_timer_m() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKa4");
    let key = l.send_request(t0, req.clone(), udp()).unwrap();
    transmits(&mut l);
    let ok = response_to(&req, 200, "OK", Some("b200"));
    feed(&mut l, t0 + ms(300), response_bytes(&ok), udp());
    feed(&mut l, t0 + ms(800), response_bytes(&ok), udp());
    // The layer does not ACK a 2xx: that is the TU's job (RFC 3261 §13.2.2.4).
    assert!(transmits(&mut l).is_empty());
    let ev = events(&mut l);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| matches!(e, TransactionEvent::Response { key: k, response } if *k == key && response.status == 200)));
    // Timer M = 64*T1 after the first 2xx.
    assert_eq!(
        l.poll_timeout(),
        Some(t0 + ms(300) + Duration::from_secs(32))
    );
    run_timers(&mut l, t0, Duration::from_secs(40));
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
    // Later 2xx retransmissions are stray but still reach the TU.
    feed(
        &mut l,
        t0 + Duration::from_secs(41),
        response_bytes(&ok),
        udp(),
    );
    assert!(
        matches!(&events(&mut l)[..], [TransactionEvent::StrayResponse { response, source }] if response.status == 200 && *source == udp())
    );
}

// ---------------------------------------------------------------- non-INVITE client

#[test]
fn non_invite_client_timer_e_capped_at_t2_until_timer_f() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let key = l
        .send_request(t0, request("OPTIONS", "z9hG4bKo1"), udp())
        .unwrap();
    transmits(&mut l);
    let sent = run_timers(&mut l, t0, Duration::from_secs(40));
    // 0.5, 1, 2, 4, 4, 4, ... s intervals; Timer F = 32 s.
    assert_eq!(
        sent,
        secs(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(
        events(&mut l),
        vec![
            TransactionEvent::Timeout { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bKr1");
    l.send_request(t0, req.clone(), udp()).unwrap();
    transmits(&mut l);
    feed(
        &mut l,
        t0 + ms(100),
        response_bytes(&response_to(&req, 100, "Trying", None)),
        udp(),
    );
    assert_eq!(events(&mut l).len(), 1);
    let sent = run_timers(&mut l, t0, Duration::from_secs(13));
    // Timer E at 0.5 s (still pending from Trying), then every T2.
    assert_eq!(sent, secs(&[0.5, 4.5, 8.5, 12.5]));
}

#[test]
fn non_invite_client_timer_k_absorbs_retransmissions() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKo2");
    let key = l.send_request(t0, req.clone(), udp()).unwrap();
    transmits(&mut l);
    let ok = response_to(&req, 200, "OK", Some("t"));
    feed(&mut l, t0 + ms(50), response_bytes(&ok), udp());
    feed(&mut l, t0 + ms(60), response_bytes(&ok), udp());
    let ev = events(&mut l);
    assert_eq!(ev.len(), 1, "{ev:?}");
    // Timer K = T4 = 5 s; no retransmission in Completed.
    assert_eq!(l.poll_timeout(), Some(t0 + ms(50) + Duration::from_secs(5)));
    assert!(run_timers(&mut l, t0, Duration::from_secs(10)).is_empty());
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
}

#[test]
fn non_invite_client_over_tcp_timer_f_only_and_k_zero() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = parse_request(&request_text("MESSAGE", "z9hG4bKm1", "TCP", LOCAL));
    let key = l.send_request(t0, req.clone(), tcp()).unwrap();
    transmits(&mut l);
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    feed(
        &mut l,
        t0 + ms(5),
        response_bytes(&response_to(&req, 202, "Accepted", Some("t"))),
        tcp(),
    );
    let ev = events(&mut l);
    assert!(
        matches!(&ev[..], [TransactionEvent::Response { .. }, TransactionEvent::Terminated { key: k }] if *k == key),
        "{ev:?}"
    );
}

// ---------------------------------------------------------------- INVITE server

fn incoming_invite(
    l: &mut TransactionLayer,
    now: Instant,
    branch: &str,
) -> (TransactionKey, Request) {
    let text = request_text("INVITE", branch, "UDP", "127.0.0.1:5060");
    feed(l, now, text, udp());
    match &events(l)[..] {
        [
            TransactionEvent::Request {
                key,
                request,
                source,
            },
        ] => {
            assert_eq!(*source, udp());
            assert_eq!(request.method, Method::Invite);
            (key.clone(), request.clone())
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn invite_server_sends_100_trying_after_200ms_and_on_retransmission() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (_key, _req) = incoming_invite(&mut l, t0, "z9hG4bKs1");
    assert!(transmits(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(t0 + ms(200)));
    l.handle_timeout(t0 + ms(200));
    let out = transmits(&mut l);
    assert_eq!(out.len(), 1);
    let trying = parse_response_bytes(&out[0].data);
    assert_eq!(trying.status, 100);
    // The retransmitted INVITE is absorbed and answered with the last provisional.
    feed(
        &mut l,
        t0 + ms(500),
        request_text("INVITE", "z9hG4bKs1", "UDP", "127.0.0.1:5060"),
        udp(),
    );
    assert!(events(&mut l).is_empty());
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, out[0].data);
}

#[test]
fn invite_server_no_trying_when_tu_answers_in_time() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (key, req) = incoming_invite(&mut l, t0, "z9hG4bKs2");
    l.send_response(
        t0 + ms(50),
        &key,
        response_to(&req, 180, "Ringing", Some("u1")),
    )
    .unwrap();
    let out = transmits(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(parse_response_bytes(&out[0].data).status, 180);
    assert_eq!(l.poll_timeout(), None);
    l.handle_timeout(t0 + ms(300));
    assert!(transmits(&mut l).is_empty());
}

#[test]
fn invite_server_timer_g_until_ack_then_timer_i() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (key, req) = incoming_invite(&mut l, t0, "z9hG4bKs3");
    let busy = response_to(&req, 486, "Busy Here", Some("u2"));
    l.send_response(t0, &key, busy).unwrap();
    let first = transmits(&mut l);
    assert_eq!(first.len(), 1);
    // Timer G: 0.5, 1, 2, 4, 4 s; stop at the ACK (t = 12 s).
    let sent = run_timers(&mut l, t0, Duration::from_secs(12));
    assert_eq!(sent, secs(&[0.5, 1.5, 3.5, 7.5, 11.5]));
    // A retransmitted INVITE gets the final response again.
    feed(
        &mut l,
        t0 + Duration::from_secs(12),
        request_text("INVITE", "z9hG4bKs3", "UDP", "127.0.0.1:5060"),
        udp(),
    );
    assert_eq!(transmits(&mut l).len(), 1);
    let ack = request_text("ACK", "z9hG4bKs3", "UDP", "127.0.0.1:5060");
    feed(&mut l, t0 + Duration::from_secs(12), ack.clone(), udp());
    // The ACK is absorbed (not passed to the TU), Timer I = T4 = 5 s.
    assert!(events(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(17)));
    feed(&mut l, t0 + Duration::from_secs(13), ack, udp());
    assert!(events(&mut l).is_empty());
    assert!(run_timers(&mut l, t0, Duration::from_secs(30)).is_empty());
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
}

#[test]
fn invite_server_timer_h_without_ack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (key, req) = incoming_invite(&mut l, t0, "z9hG4bKs4");
    l.send_response(
        t0,
        &key,
        response_to(&req, 480, "Temporarily Unavailable", Some("u3")),
    )
    .unwrap();
    transmits(&mut l);
    let sent = run_timers(&mut l, t0, Duration::from_secs(40));
    // G: 0.5, 1.5, 3.5, 7.5, then every 4 s until H at 32 s.
    assert_eq!(
        sent,
        secs(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(
        events(&mut l),
        vec![
            TransactionEvent::Timeout { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );
}

#[test]
fn invite_server_over_tcp_does_not_retransmit_and_ends_at_ack() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    feed(
        &mut l,
        t0,
        request_text("INVITE", "z9hG4bKs5", "TCP", "127.0.0.1:5060"),
        tcp(),
    );
    let (key, req) = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    l.send_response(t0, &key, response_to(&req, 486, "Busy Here", Some("u4")))
        .unwrap();
    let out = transmits(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target, tcp());
    assert_eq!(
        l.poll_timeout(),
        Some(t0 + Duration::from_secs(32)),
        "only Timer H"
    );
    feed(
        &mut l,
        t0 + ms(10),
        request_text("ACK", "z9hG4bKs5", "TCP", "127.0.0.1:5060"),
        tcp(),
    );
    assert_eq!(
        events(&mut l),
        vec![TransactionEvent::Terminated { key }],
        "Timer I is zero"
    );
}

#[test]
fn invite_server_2xx_goes_to_accepted_timer_l() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (key, req) = incoming_invite(&mut l, t0, "z9hG4bKs6");
    let ok = response_to(&req, 200, "OK", Some("u5"));
    l.send_response(t0 + ms(10), &key, ok.clone()).unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    // No Timer G for 2xx: the TU retransmits (RFC 3261 §13.3.1.4), through the same call.
    assert_eq!(
        l.poll_timeout(),
        Some(t0 + ms(10) + Duration::from_secs(32))
    );
    l.send_response(t0 + ms(510), &key, ok).unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    // INVITE retransmissions are absorbed silently in Accepted.
    feed(
        &mut l,
        t0 + ms(600),
        request_text("INVITE", "z9hG4bKs6", "UDP", "127.0.0.1:5060"),
        udp(),
    );
    assert!(transmits(&mut l).is_empty());
    assert!(events(&mut l).is_empty());
    // The ACK for a 2xx has its own branch: it reaches the TU.
    feed(
        &mut l,
        t0 + ms(700),
        request_text("ACK", "z9hG4bKack", "UDP", "127.0.0.1:5060"),
        udp(),
    );
    assert!(
        matches!(&events(&mut l)[..], [TransactionEvent::Ack { request, source }] if request.method == Method::Ack && *source == udp())
    );
    run_timers(&mut l, t0, Duration::from_secs(40));
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
    // A final non-2xx after termination is an error for the TU.
    assert!(l.is_empty());
}

#[test]
fn invite_server_refuses_a_second_final_response() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (key, req) = incoming_invite(&mut l, t0, "z9hG4bKs7");
    l.send_response(t0, &key, response_to(&req, 486, "Busy Here", Some("u6")))
        .unwrap();
    assert!(
        l.send_response(t0, &key, response_to(&req, 200, "OK", Some("u6")))
            .is_err()
    );
    let mut bogus = response_to(&req, 200, "OK", Some("u6"));
    bogus.status = 99;
    assert!(l.send_response(t0, &key, bogus).is_err());
}

// ---------------------------------------------------------------- non-INVITE server

#[test]
fn non_invite_server_absorbs_and_answers_retransmissions_until_timer_j() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let text = request_text("MESSAGE", "z9hG4bKn1", "UDP", "127.0.0.1:5060");
    feed(&mut l, t0, text.clone(), udp());
    let (key, req) = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    // Trying: a retransmission is absorbed, nothing to resend yet.
    feed(&mut l, t0 + ms(500), text.clone(), udp());
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    l.send_response(t0 + ms(600), &key, response_to(&req, 100, "Trying", None))
        .unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    feed(&mut l, t0 + ms(1500), text.clone(), udp());
    let prov = transmits(&mut l);
    assert_eq!(parse_response_bytes(&prov[0].data).status, 100);
    l.send_response(
        t0 + ms(1600),
        &key,
        response_to(&req, 200, "OK", Some("n1")),
    )
    .unwrap();
    transmits(&mut l);
    feed(&mut l, t0 + ms(3500), text, udp());
    let fin = transmits(&mut l);
    assert_eq!(parse_response_bytes(&fin[0].data).status, 200);
    assert!(events(&mut l).is_empty());
    // Timer J = 64*T1 after the final response; the server never retransmits by itself.
    assert_eq!(
        l.poll_timeout(),
        Some(t0 + ms(1600) + Duration::from_secs(32))
    );
    assert!(run_timers(&mut l, t0, Duration::from_secs(40)).is_empty());
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
}

#[test]
fn non_invite_server_over_tcp_ends_with_the_final_response() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    feed(
        &mut l,
        t0,
        request_text("OPTIONS", "z9hG4bKn2", "TCP", "127.0.0.1:5060"),
        tcp(),
    );
    let (key, req) = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    l.send_response(t0, &key, response_to(&req, 200, "OK", Some("n2")))
        .unwrap();
    assert_eq!(transmits(&mut l).len(), 1);
    assert_eq!(events(&mut l), vec![TransactionEvent::Terminated { key }]);
}

// ---------------------------------------------------------------- matching

#[test]
fn cancel_is_its_own_transaction_with_the_invite_branch() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let (invite_key, _req) = incoming_invite(&mut l, t0, "z9hG4bKc1");
    feed(
        &mut l,
        t0 + ms(100),
        request_text("CANCEL", "z9hG4bKc1", "UDP", "127.0.0.1:5060"),
        udp(),
    );
    let cancel_key = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => {
            assert_eq!(request.method, Method::Cancel);
            key.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_ne!(cancel_key, invite_key);
    assert_eq!(cancel_key.cancelled_invite(), Some(invite_key.clone()));
    assert!(l.contains(&invite_key));
    assert_eq!(invite_key.cancelled_invite(), None);

    // Client side: responses are matched by branch and CSeq method.
    let mut c = TransactionLayer::new(TimerConfig::default());
    let inv = request("INVITE", "z9hG4bKc2");
    let can = request("CANCEL", "z9hG4bKc2");
    let ik = c.send_request(t0, inv.clone(), udp()).unwrap();
    let ck = c.send_request(t0, can.clone(), udp()).unwrap();
    assert_ne!(ik, ck);
    feed(
        &mut c,
        t0 + ms(10),
        response_bytes(&response_to(&can, 200, "OK", Some("z"))),
        udp(),
    );
    assert!(matches!(&events(&mut c)[..], [TransactionEvent::Response { key, .. }] if *key == ck));
    feed(
        &mut c,
        t0 + ms(20),
        response_bytes(&response_to(&inv, 487, "Request Terminated", Some("z"))),
        udp(),
    );
    assert!(
        matches!(&events(&mut c)[..], [TransactionEvent::Response { key, response }] if *key == ik && response.status == 487)
    );
}

#[test]
fn same_branch_from_another_sent_by_is_another_transaction() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    feed(
        &mut l,
        t0,
        request_text("OPTIONS", "z9hG4bKsb", "UDP", "127.0.0.1:5060"),
        udp(),
    );
    feed(
        &mut l,
        t0,
        request_text("OPTIONS", "z9hG4bKsb", "UDP", "127.0.0.2:5060"),
        udp(),
    );
    let ev = events(&mut l);
    assert_eq!(ev.len(), 2, "two server transactions: {ev:?}");
    assert_eq!(l.len(), 2);
}

#[test]
fn rfc2543_requests_without_magic_cookie_are_matched() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let old = "OPTIONS sip:bob@cusax.test SIP/2.0\r\n\
               Via: SIP/2.0/UDP 127.0.0.1:5060\r\n\
               From: <sip:old@cusax.test>;tag=o1\r\n\
               To: <sip:bob@cusax.test>\r\n\
               Call-ID: legacy-1\r\n\
               CSeq: 7 OPTIONS\r\n\
               Content-Length: 0\r\n\r\n";
    feed(&mut l, t0, old, udp());
    let (key, req) = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(key.branch(), None);
    l.send_response(t0, &key, response_to(&req, 200, "OK", Some("n")))
        .unwrap();
    transmits(&mut l);
    feed(&mut l, t0 + ms(500), old, udp());
    assert!(events(&mut l).is_empty(), "retransmission matched");
    assert_eq!(transmits(&mut l).len(), 1, "final response resent");
    // Another CSeq is a new transaction.
    feed(
        &mut l,
        t0 + ms(600),
        old.replace("CSeq: 7", "CSeq: 8"),
        udp(),
    );
    assert_eq!(events(&mut l).len(), 1);
}

#[test]
fn responses_are_matched_by_branch_and_method_only() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKm9");
    l.send_request(t0, req.clone(), udp()).unwrap();
    transmits(&mut l);
    let other = request("OPTIONS", "z9hG4bKother");
    feed(
        &mut l,
        t0,
        response_bytes(&response_to(&other, 200, "OK", Some("x"))),
        udp(),
    );
    assert!(events(&mut l).is_empty(), "unknown branch dropped");
    let wrong_method = request("BYE", "z9hG4bKm9");
    feed(
        &mut l,
        t0,
        response_bytes(&response_to(&wrong_method, 200, "OK", Some("x"))),
        udp(),
    );
    assert!(
        events(&mut l).is_empty(),
        "same branch, other method dropped"
    );
}

#[test]
fn request_validation_on_send() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    assert!(
        l.send_request(t0, request("ACK", "z9hG4bKack1"), udp())
            .is_err()
    );
    assert!(
        l.send_request(t0, request("OPTIONS", "nocookie"), udp())
            .is_err()
    );
    l.send_request(t0, request("OPTIONS", "z9hG4bKdup"), udp())
        .unwrap();
    assert!(
        l.send_request(t0, request("OPTIONS", "z9hG4bKdup"), udp())
            .is_err()
    );
}

// ---------------------------------------------------------------- transport details

#[test]
fn server_stamps_received_and_rport() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let from = Target::new(Transport::Udp, addr("192.0.2.7:40000"));
    feed(
        &mut l,
        t0,
        request_text("OPTIONS", "z9hG4bKrp", "UDP", "alice.cusax.test:5070"),
        from,
    );
    let (key, req) = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    let via = req.headers.get("Via").unwrap();
    assert!(via.contains("received=192.0.2.7"), "{via}");
    assert!(via.contains("rport=40000"), "{via}");
    // The response goes back to the source address and port (RFC 3581 §4).
    l.send_response(t0, &key, response_to(&req, 200, "OK", Some("r")))
        .unwrap();
    assert_eq!(transmits(&mut l)[0].target, from);
}

#[test]
fn response_without_rport_goes_to_the_via_port() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let from = Target::new(Transport::Udp, addr("192.0.2.7:40000"));
    let text = request_text("OPTIONS", "z9hG4bKnr", "UDP", "192.0.2.7:5070").replace(";rport", "");
    feed(&mut l, t0, text, from);
    let (key, req) = match &events(&mut l)[..] {
        [TransactionEvent::Request { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    l.send_response(t0, &key, response_to(&req, 200, "OK", Some("r")))
        .unwrap();
    assert_eq!(
        transmits(&mut l)[0].target,
        Target::new(Transport::Udp, addr("192.0.2.7:5070"))
    );
}

#[test]
fn bad_requests_get_a_stateless_400_and_garbage_is_dropped() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    // A readable request line and Via/From/To/Call-ID/CSeq, but a broken header.
    let bad = "OPTIONS sip:bob@cusax.test SIP/2.0\r\n\
               Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbad\r\n\
               From: <sip:alice@cusax.test>;tag=a\r\n\
               To: <sip:bob@cusax.test>\r\n\
               Call-ID: bad-1\r\n\
               CSeq: 1 OPTIONS\r\n\
               Max-Forwards: seventy\r\n\
               Content-Length: 9999\r\n\r\n";
    feed(&mut l, t0, bad, udp());
    let out = transmits(&mut l);
    assert_eq!(out.len(), 1, "one stateless 400");
    let resp = parse_response_bytes(&out[0].data);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.headers.get("Call-ID"), Some("bad-1"));
    assert!(resp.headers.get("Via").unwrap().contains("z9hG4bKbad"));
    assert!(l.is_empty(), "no transaction left behind");
    for garbage in [
        &b"\x00\xff\xfe garbage"[..],
        b"SIP/2.0 abc\r\n\r\n",
        b"\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"",
    ] {
        feed(&mut l, t0, Bytes::copy_from_slice(garbage), udp());
    }
    assert!(transmits(&mut l).is_empty());
    assert!(events(&mut l).is_empty());
    assert!(l.is_empty());
}

#[test]
fn transport_error_terminates_the_transactions_of_that_target() {
    let mut l = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let key = l
        .send_request(
            t0,
            parse_request(&request_text("OPTIONS", "z9hG4bKte", "TCP", LOCAL)),
            tcp(),
        )
        .unwrap();
    l.handle_transport_error(t0, &tcp(), "connection refused");
    let ev = events(&mut l);
    assert!(
        matches!(&ev[..], [TransactionEvent::TransportError { key: k, reason }, TransactionEvent::Terminated { .. }] if *k == key && reason.contains("refused")),
        "{ev:?}"
    );
}

#[test]
fn custom_timer_values_are_honoured() {
    let config = TimerConfig {
        t1: ms(100),
        t2: ms(400),
        ..TimerConfig::default()
    };
    let mut l = TransactionLayer::new(config);
    let t0 = Instant::now();
    l.send_request(t0, request("OPTIONS", "z9hG4bKcu"), udp())
        .unwrap();
    transmits(&mut l);
    let sent = run_timers(&mut l, t0, Duration::from_secs(10));
    // 0.1, 0.2, 0.4, 0.4 ... until F = 6.4 s.
    assert_eq!(sent[..5], secs(&[0.1, 0.3, 0.7, 1.1, 1.5])[..]);
    assert!(l.is_empty());
}
