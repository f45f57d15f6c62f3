//! The transaction layer under load: nothing queued is ever dropped (received messages
//! are refused instead while the output waits to be polled), the transaction cap
//! answers 503, and transactions keep their request only while they can use it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::msg::{Request, Response, SipMessage};
use cusax_sip::transaction::{
    Capacities, MAX_QUEUED, MAX_TRANSACTIONS, Target, TimerConfig, TransactionError,
    TransactionEvent, TransactionLayer, Transport,
};

const PEER: &str = "10.9.9.9:5060";

fn peer() -> SocketAddr {
    PEER.parse().expect("socket address")
}

/// A distinct source address per message number, so that events can be told apart.
fn source(i: usize) -> SocketAddr {
    let n = u32::try_from(i).expect("small index");
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), 5060)
}

fn index_of(addr: SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(ip) => (u32::from(ip) - 0x0a00_0000) as usize,
        IpAddr::V6(_) => usize::MAX,
    }
}

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:bob@cusax.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.9.9.9:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@cusax.test>;tag=a1\r\n\
         To: <sip:bob@cusax.test>\r\n\
         Call-ID: bp-1\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match SipMessage::parse(Bytes::from(text)).expect("test message parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

fn response_to(req: &Request, status: u16) -> Response {
    let mut resp = Response::new(status, cusax_sip::msg::default_reason(status));
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for v in req.headers.get_all(h) {
            let v = if h == "To" {
                format!("{v};tag=b1")
            } else {
                v.to_owned()
            };
            resp.headers.push(h, v);
        }
    }
    resp.headers.push("Content-Length", "0");
    resp
}

#[test]
fn a_full_event_queue_refuses_messages_and_drops_nothing_queued() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    // A client transaction whose Timer F will fire while the event queue is full.
    let options = request("OPTIONS", "z9hG4bK-bp-options");
    let client = layer
        .send_request(t0, options, Target::new(Transport::Udp, peer()))
        .expect("client transaction");

    // ACKs outside any transaction each become an event; nobody polls.
    let ack = SipMessage::Request(request("ACK", "z9hG4bK-bp-ack"));
    let extra = 10;
    for i in 0..MAX_QUEUED + extra {
        layer.handle_message(t0, ack.clone(), source(i), Transport::Udp);
    }
    assert!(layer.is_congested());
    assert_eq!(
        layer.queued().1,
        MAX_QUEUED,
        "events queued up to the bound"
    );
    assert_eq!(
        layer.refused_messages(),
        extra as u64,
        "the rest is refused"
    );

    // Timers still run: the transaction times out and says so, beyond the bound.
    layer.handle_timeout(t0 + Duration::from_secs(33));
    assert!(!layer.contains(&client));

    // Every accepted event comes out, oldest first, then the timer's events.
    for i in 0..MAX_QUEUED {
        match layer.poll_event() {
            Some(TransactionEvent::Ack { source: s, .. }) => {
                assert_eq!(index_of(s.addr), i, "event {i} lost or out of order")
            }
            other => panic!("event {i}: expected an ACK, got {other:?}"),
        }
    }
    assert_eq!(
        layer.poll_event(),
        Some(TransactionEvent::Timeout {
            key: client.clone()
        })
    );
    assert_eq!(
        layer.poll_event(),
        Some(TransactionEvent::Terminated { key: client })
    );
    assert_eq!(layer.poll_event(), None);

    // Drained: messages are accepted again.
    assert!(!layer.is_congested());
    layer.handle_message(t0, ack.clone(), source(0), Transport::Udp);
    assert!(matches!(
        layer.poll_event(),
        Some(TransactionEvent::Ack { .. })
    ));
    assert_eq!(layer.refused_messages(), extra as u64);
}

#[test]
fn a_full_transmit_queue_refuses_datagrams_before_parsing_them() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    // Stateless sends from the TU are never refused nor dropped.
    let ok = response_to(&request("OPTIONS", "z9hG4bK-bp-x"), 200);
    let bytes = ok.to_bytes();
    for _ in 0..MAX_QUEUED {
        layer.send_stateless(
            SipMessage::Response(ok.clone()),
            Target::new(Transport::Udp, peer()),
        );
    }
    assert!(layer.is_congested());
    // A new request would create a transaction and an event: refused, no state.
    let invite = request("INVITE", "z9hG4bK-bp-invite").to_bytes();
    layer.handle_datagram(t0, invite.clone(), peer(), Transport::Udp);
    assert_eq!(layer.refused_messages(), 1);
    assert!(layer.is_empty());
    assert_eq!(layer.poll_event(), None);
    // Everything the TU queued is still there, in order.
    let mut n = 0;
    while let Some(t) = layer.poll_transmit() {
        assert_eq!(t.data, bytes);
        n += 1;
    }
    assert_eq!(n, MAX_QUEUED);
    // The peer's retransmission now gets through.
    layer.handle_datagram(t0, invite, peer(), Transport::Udp);
    assert_eq!(layer.len(), 1);
    assert!(matches!(
        layer.poll_event(),
        Some(TransactionEvent::Request { .. })
    ));
}

#[test]
fn beyond_the_transaction_cap_requests_get_503_and_client_sends_fail() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    for i in 0..MAX_TRANSACTIONS {
        let req = request("MESSAGE", &format!("z9hG4bK-cap-{i}"));
        layer.handle_message(t0, SipMessage::Request(req), source(i), Transport::Udp);
    }
    assert_eq!(layer.len(), MAX_TRANSACTIONS);
    while layer.poll_event().is_some() {}
    assert_eq!(layer.poll_transmit(), None);

    let extra = request("MESSAGE", "z9hG4bK-cap-extra");
    layer.handle_message(
        t0,
        SipMessage::Request(extra),
        source(MAX_TRANSACTIONS),
        Transport::Udp,
    );
    assert_eq!(layer.len(), MAX_TRANSACTIONS);
    assert_eq!(layer.poll_event(), None, "no transaction, no event");
    let t = layer.poll_transmit().expect("a stateless answer");
    let text = String::from_utf8_lossy(&t.data);
    assert!(text.starts_with("SIP/2.0 503 "), "{text}");
    assert_eq!(t.target.addr, source(MAX_TRANSACTIONS));

    let out = request("OPTIONS", "z9hG4bK-cap-client");
    assert_eq!(
        layer.send_request(t0, out, Target::new(Transport::Udp, peer())),
        Err(TransactionError::Overloaded)
    );
    assert_eq!(layer.refused_messages(), 0, "the cap is not congestion");
}

#[test]
fn transactions_keep_their_request_only_while_they_can_use_it() {
    let t0 = Instant::now();
    let udp = Target::new(Transport::Udp, peer());
    let mut layer = TransactionLayer::new(TimerConfig::default());

    // INVITE client: kept until the final response (ACK of a non-2xx), not in Accepted.
    let invite = request("INVITE", "z9hG4bK-keep-ic");
    let ic = layer
        .send_request(t0, invite.clone(), udp)
        .expect("client transaction");
    assert!(layer.request(&ic).is_some());
    layer.handle_message(
        t0,
        SipMessage::Response(response_to(&invite, 180)),
        peer(),
        Transport::Udp,
    );
    assert!(layer.request(&ic).is_some(), "a 300-699 may still come");
    layer.handle_message(
        t0,
        SipMessage::Response(response_to(&invite, 200)),
        peer(),
        Transport::Udp,
    );
    assert!(layer.contains(&ic), "Accepted, Timer M");
    assert!(layer.request(&ic).is_none());

    // A non-2xx after a retransmitted INVITE: the ACK still goes out.
    let invite = request("INVITE", "z9hG4bK-keep-ic2");
    let ic2 = layer.send_request(t0, invite.clone(), udp).expect("client");
    while layer.poll_transmit().is_some() {}
    layer.handle_timeout(t0 + Duration::from_millis(500));
    assert!(layer.poll_transmit().is_some(), "Timer A retransmission");
    layer.handle_message(
        t0 + Duration::from_millis(600),
        SipMessage::Response(response_to(&invite, 486)),
        peer(),
        Transport::Udp,
    );
    let ack = layer.poll_transmit().expect("ACK for the 486");
    assert!(ack.data.starts_with(b"ACK "));
    assert!(layer.request(&ic2).is_none());
    // Its retransmission is answered with the same ACK (§17.1.1.2, Completed).
    layer.handle_message(
        t0 + Duration::from_millis(700),
        SipMessage::Response(response_to(&invite, 486)),
        peer(),
        Transport::Udp,
    );
    assert_eq!(layer.poll_transmit().map(|t| t.data), Some(ack.data));

    // Non-INVITE client: never kept.
    let opt = layer
        .send_request(t0, request("OPTIONS", "z9hG4bK-keep-nic"), udp)
        .expect("client");
    assert!(layer.request(&opt).is_none());

    // INVITE server: kept until the TU's first response, which stops `100 Trying`.
    while layer.poll_event().is_some() {}
    let incoming = request("INVITE", "z9hG4bK-keep-is");
    layer.handle_message(
        t0,
        SipMessage::Request(incoming.clone()),
        source(1),
        Transport::Udp,
    );
    let Some(TransactionEvent::Request { key: is, .. }) = layer.poll_event() else {
        panic!("expected the INVITE");
    };
    assert!(layer.request(&is).is_some());
    layer
        .send_response(t0, &is, response_to(&incoming, 180))
        .expect("180");
    assert!(layer.request(&is).is_none());
    while layer.poll_transmit().is_some() {}
    // A retransmitted INVITE gets the last provisional again.
    layer.handle_message(
        t0,
        SipMessage::Request(incoming.clone()),
        source(1),
        Transport::Udp,
    );
    let again = layer.poll_transmit().expect("180 again");
    assert!(again.data.starts_with(b"SIP/2.0 180 "));
    // After the 2xx (Accepted) the TU retransmits; the transaction sends nothing.
    layer
        .send_response(t0, &is, response_to(&incoming, 200))
        .expect("200");
    while layer.poll_transmit().is_some() {}
    layer.handle_message(t0, SipMessage::Request(incoming), source(1), Transport::Udp);
    assert_eq!(layer.poll_transmit(), None);
    assert!(layer.contains(&is), "Accepted, Timer L");

    // Unanswered INVITE server: the layer sends `100 Trying` from the kept request.
    let quiet = request("INVITE", "z9hG4bK-keep-is2");
    layer.handle_message(t0, SipMessage::Request(quiet), source(2), Transport::Udp);
    let Some(TransactionEvent::Request { key: is2, .. }) = layer.poll_event() else {
        panic!("expected the INVITE");
    };
    layer.handle_timeout(t0 + Duration::from_millis(200));
    let trying = layer.poll_transmit().expect("100 Trying");
    assert!(trying.data.starts_with(b"SIP/2.0 100 "));
    assert!(layer.request(&is2).is_none());
}

#[test]
fn an_idle_layer_after_many_transactions_is_empty() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    for i in 0..2000 {
        let req = request("MESSAGE", &format!("z9hG4bK-idle-{i}"));
        layer.handle_message(
            t0,
            SipMessage::Request(req.clone()),
            source(i),
            Transport::Tcp,
        );
        let Some(TransactionEvent::Request { key, .. }) = layer.poll_event() else {
            panic!("expected the request");
        };
        // Reliable transport: Timer J is zero, the transaction ends at once.
        layer
            .send_response(t0, &key, response_to(&req, 200))
            .expect("200");
        assert_eq!(
            layer.poll_event(),
            Some(TransactionEvent::Terminated { key })
        );
    }
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
    assert_eq!(layer.poll_event(), None);
    let mut sent = 0;
    while layer.poll_transmit().is_some() {
        sent += 1;
    }
    assert_eq!(sent, 2000);
    assert_eq!(layer.queued(), (0, 0));
    // Drained and idle: tables and queues gave their memory back.
    assert_eq!(layer.capacities(), Capacities::default());
}

#[test]
fn a_busy_layer_shrinks_its_tables_after_a_burst() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let mut keys = Vec::new();
    for i in 0..4000 {
        let req = request("MESSAGE", &format!("z9hG4bK-burst-{i}"));
        layer.handle_message(t0, SipMessage::Request(req), source(i), Transport::Udp);
        if let Some(TransactionEvent::Request { key, request, .. }) = layer.poll_event() {
            keys.push((key, request));
        }
    }
    let peak = layer.capacities().transactions;
    assert!(peak >= 4000);
    // All but a few are answered; over UDP each then waits for Timer J (64*T1).
    for (key, req) in keys.iter().skip(10) {
        layer
            .send_response(t0, key, response_to(req, 200))
            .expect("200");
    }
    layer.handle_timeout(t0 + Duration::from_secs(33));
    assert_eq!(layer.len(), 10);
    while layer.poll_event().is_some() {}
    while layer.poll_transmit().is_some() {}
    let after = layer.capacities();
    assert!(after.transactions < 64, "{after:?} after a peak of {peak}");
    assert!(after.by_id < 64, "{after:?}");
    assert_eq!(
        after.timers, 0,
        "unanswered server transactions have no timer"
    );
    assert_eq!((after.transmits, after.events), (0, 0), "{after:?}");
}
