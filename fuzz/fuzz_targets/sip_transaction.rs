#![no_main]
//! Drives a `TransactionLayer` and an `Endpoint` with arbitrary datagrams and a fake clock.
//!
//! Input format: chunks separated by a NUL byte. The first byte of each chunk is a control
//! byte, the rest is one datagram:
//! - bits 0-1: where the datagram goes: 0 = transaction layer over UDP, 1 = transaction
//!   layer over TCP (zero wait timers), 2 = endpoint (over TCP with bit 4, else UDP; an
//!   empty datagram is a transport failure instead: of the peer's TCP target unless bit
//!   2, a refused connection unless bit 3), 3 = both;
//! - bits 2-4: how the transaction user answers a new server transaction (100, 180, 200,
//!   486, 603, 302, nothing, ...), and which command the endpoint's app issues on an
//!   event;
//! - bits 5-7: how far the fake clock advances before the datagram (0 .. 32 s), after which
//!   every due timer fires.
//!
//! Before the input, the transaction layer starts an INVITE and an OPTIONS client
//! transaction with the fixed branches `z9hG4bKfuzzinv` / `z9hG4bKfuzzopt` so that responses
//! in the input can match them; the endpoint (plain transports allowed, registrar over
//! TCP) places two calls, the second too large for UDP, and registers. Every output
//! is drained after each step. Nothing may panic and the queues must stay bounded.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::endpoint::{
    Account, CallId, CallOptions, Endpoint, EndpointConfig, Input, Output, SipEvent,
    TransportFailure,
};
use cusax_sip::msg::{Method, Request, Response, Uri};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transport,
};
use libfuzzer_sys::fuzz_target;

const LOCAL: ([u8; 4], u16) = ([127, 0, 0, 1], 5060);
const PEER: ([u8; 4], u16) = ([127, 0, 0, 2], 5060);

fn client_request(method: Method, branch: &str) -> Option<Request> {
    let uri = Uri::parse("sip:bob@127.0.0.2:5060").ok()?;
    let mut r = Request::new(method.clone(), uri);
    r.headers
        .push("Via", format!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"));
    r.headers.push("Max-Forwards", "70");
    r.headers.push("From", "<sip:alice@127.0.0.1>;tag=fuzzfrom");
    r.headers.push("To", "<sip:bob@127.0.0.2>");
    r.headers.push("Call-ID", "fuzz-call-id");
    r.headers.push("CSeq", format!("1 {method}"));
    r.headers.push("Content-Length", "0");
    Some(r)
}

fn answer_for(req: &Request, status: u16) -> Response {
    let mut r = Response::new(status, cusax_sip::msg::default_reason(status));
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for v in req.headers.get_all(h) {
            let v = if h == "To" && status > 100 && !v.contains("tag=") {
                format!("{v};tag=fuzzto")
            } else {
                v.to_owned()
            };
            r.headers.push(h, v);
        }
    }
    r.headers.push("Contact", "<sip:fuzz@127.0.0.1:5060>");
    r.headers.push("Content-Length", "0");
    r
}

/// Drains the transaction layer, answering new requests as the control byte says.
fn drain_layer(tx: &mut TransactionLayer, now: Instant, ctrl: u8) {
    let mut transmits = 0usize;
    while tx.poll_transmit().is_some() {
        transmits += 1;
        assert!(transmits <= 1 << 17, "transmit queue unbounded");
    }
    let mut answers: Vec<(TransactionKey, Request)> = Vec::new();
    for _ in 0..10_000 {
        let Some(ev) = tx.poll_event() else { break };
        match ev {
            TransactionEvent::Request { key, request, .. } => {
                let _ = tx.request(&key);
                let _ = key.cancelled_invite().map(|k| tx.contains(&k));
                answers.push((key, request));
            }
            TransactionEvent::Response { key, response } => {
                let _ = (key.is_client(), key.method(), key.branch(), response.status);
            }
            _ => {}
        }
    }
    let status = match (ctrl >> 2) & 7 {
        0 => Some(100),
        1 => Some(180),
        2 => Some(200),
        3 => Some(486),
        4 => Some(603),
        5 => Some(302),
        6 => None,
        _ => Some(202),
    };
    for (key, req) in answers {
        if let Some(s) = status {
            let _ = tx.send_response(now, &key, answer_for(&req, s));
            if s < 200 {
                // A final answer later, as a TU would.
                let _ = tx.send_response(now, &key, answer_for(&req, 200));
            }
        }
    }
    while tx.poll_transmit().is_some() {}
    while tx.poll_event().is_some() {}
    if let Some(at) = tx.poll_timeout() {
        assert!(at >= now - Duration::from_secs(3600));
    }
}

/// Drains the endpoint, letting the app react to events as the control byte says.
fn drain_endpoint(ep: &mut Endpoint, now: Instant, ctrl: u8) {
    let mut calls: Vec<CallId> = Vec::new();
    for _ in 0..100_000 {
        match ep.poll_output() {
            Some(Output::Transmit(_)) => {}
            Some(Output::Event(e)) => match e {
                SipEvent::IncomingCall { call, .. }
                | SipEvent::ReinviteReceived { call, .. }
                | SipEvent::CallAnswered { call, .. }
                | SipEvent::CallConfirmed { call } => calls.push(call),
                _ => {}
            },
            Some(Output::Timeout(_)) | None => break,
            Some(_) => {}
        }
    }
    for call in calls {
        let _ = match (ctrl >> 2) & 7 {
            0 => ep.ring(now, call),
            1 => ep.answer(now, call, 200, Bytes::from_static(b"v=0\r\n")),
            2 => ep.answer(now, call, 486, Bytes::new()),
            3 => ep.bye(now, call),
            4 => ep.reinvite(now, call, Bytes::from_static(b"v=0\r\n")),
            5 => ep.info(
                now,
                call,
                "application/dtmf-relay",
                Bytes::from_static(b"Signal=1"),
            ),
            6 => ep.cancel(now, call),
            _ => Ok(()),
        };
    }
    for _ in 0..100_000 {
        match ep.poll_output() {
            Some(Output::Timeout(_)) | None => break,
            Some(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let local = SocketAddr::from(LOCAL);
    let peer = SocketAddr::from(PEER);
    let timers = TimerConfig::default();

    let mut tx = TransactionLayer::new(timers);
    let udp_peer = Target::new(Transport::Udp, peer);
    if let Some(r) = client_request(Method::Invite, "z9hG4bKfuzzinv") {
        let _ = tx.send_request(now, r, udp_peer);
    }
    if let Some(r) = client_request(Method::Options, "z9hG4bKfuzzopt") {
        let _ = tx.send_request(now, r, udp_peer);
    }

    // Plain transports allowed: a TLS-only endpoint drops every datagram of the input.
    let mut cfg = EndpointConfig::insecure(local, Transport::Udp);
    cfg.contact_user = "fuzz".into();
    cfg.account = Uri::parse("sip:alice@127.0.0.2").ok().map(|aor| Account {
        aor,
        display_name: None,
        username: "alice".into(),
        password: "alice-secret".into(),
        // Over TCP: a broken connection to it exercises the flow recovery.
        registrar: Target::new(Transport::Tcp, peer),
        outbound_proxy: None,
        expires: 60,
    });
    let mut ep = Endpoint::new(cfg, 7);
    if let Ok(uri) = Uri::parse("sip:bob@127.0.0.2:5060") {
        let _ = ep.invite(
            now,
            uri.clone(),
            Bytes::from_static(b"v=0\r\n"),
            CallOptions::default(),
        );
        // A second call too large for UDP: it goes over TCP (RFC 3261 §18.1.1).
        let _ = ep.invite(
            now,
            uri,
            Bytes::from(vec![b'a'; 1400]),
            CallOptions::default(),
        );
    }
    let _ = ep.register(now);
    drain_endpoint(&mut ep, now, 0xff);
    drain_layer(&mut tx, now, 0);

    for chunk in data.split(|b| *b == 0).take(64) {
        let Some((&ctrl, payload)) = chunk.split_first() else {
            continue;
        };
        let advance = Duration::from_millis(u64::from(ctrl >> 5) * 4_000 + 1);
        now += advance;
        tx.handle_timeout(now);
        drain_layer(&mut tx, now, ctrl);
        ep.handle_input(now, Input::Timeout);
        drain_endpoint(&mut ep, now, ctrl);

        let datagram = Bytes::copy_from_slice(payload);
        match ctrl & 3 {
            0 => tx.handle_datagram(now, datagram, peer, Transport::Udp),
            1 => tx.handle_datagram(now, datagram, peer, Transport::Tcp),
            // An empty chunk for the endpoint: a transport failure (a refused TCP
            // connection for a request too large for UDP, a broken registration flow).
            2 if datagram.is_empty() => ep.handle_input(
                now,
                Input::TransportError {
                    target: Target::new(
                        if ctrl & 4 == 0 { Transport::Tcp } else { Transport::Udp },
                        peer,
                    ),
                    reason: if ctrl & 8 == 0 {
                        TransportFailure::ConnectionRefused
                    } else {
                        TransportFailure::ConnectionClosed {
                            detail: "fuzz".into(),
                        }
                    },
                },
            ),
            2 => ep.handle_input(
                now,
                Input::Receive {
                    data: datagram,
                    source: peer,
                    transport: if ctrl & 16 == 0 { Transport::Udp } else { Transport::Tcp },
                },
            ),
            _ => {
                tx.handle_datagram(now, datagram.clone(), peer, Transport::Udp);
                ep.handle_input(
                    now,
                    Input::Receive {
                        data: datagram,
                        source: peer,
                        transport: Transport::Udp,
                    },
                );
            }
        }
        drain_layer(&mut tx, now, ctrl);
        drain_endpoint(&mut ep, now, ctrl);
    }
    // Let every timer run out: all transactions must end.
    for _ in 0..8 {
        now += Duration::from_secs(40);
        tx.handle_timeout(now);
        drain_layer(&mut tx, now, 0x08);
        ep.handle_input(now, Input::Timeout);
        drain_endpoint(&mut ep, now, 0x1c);
    }
    // Server transactions the TU never answered may stay (RFC 3261 leaves them to the TU);
    // everything else ends, and the table stays bounded.
    assert!(tx.len() <= cusax_sip::transaction::MAX_TRANSACTIONS);
});
