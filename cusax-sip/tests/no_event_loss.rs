//! Nothing is lost silently: the endpoint's event queue applies backpressure instead of
//! dropping events, and the driver delivers every transport error.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use cusax_sip::endpoint::{Endpoint, EndpointConfig, Input, Output, SipEvent};
use cusax_sip::transaction::Transport;

fn message(n: usize) -> Input {
    let text = format!(
        "MESSAGE sip:alice@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKm{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@cusax.test>;tag=f{n}\r\n\
         To: <sip:alice@cusax.test>\r\n\
         Call-ID: m{n}@cusax.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{n}",
        n.to_string().len()
    );
    Input::Receive {
        data: Bytes::from(text),
        source: "127.0.0.1:5090".parse().expect("addr"),
        transport: Transport::Udp,
    }
}

fn endpoint(limit: usize) -> Endpoint {
    let addr: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
    let mut cfg = EndpointConfig::insecure(addr, Transport::Udp);
    cfg.event_queue_limit = limit;
    Endpoint::new(cfg, 11)
}

/// The bodies of the MessageReceived events, in order.
fn drain_messages(e: &mut Endpoint) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(o) = e.poll_output() {
        match o {
            Output::Event(SipEvent::MessageReceived { body, .. }) => {
                out.push(String::from_utf8_lossy(&body).into_owned())
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    out
}

#[test]
fn a_full_event_queue_refuses_input_and_hands_it_back() {
    let now = Instant::now();
    let mut e = endpoint(3);
    for n in 0..3 {
        e.try_handle_input(now, message(n)).expect("room");
    }
    assert!(e.is_backpressured());
    let refused = e
        .try_handle_input(now, message(3))
        .expect_err("queue full: refused");
    assert_eq!(refused.queued, 3);
    // Nothing was dropped, in order.
    assert_eq!(drain_messages(&mut e), ["0", "1", "2"]);
    assert!(!e.is_backpressured());
    // The refused input is intact: offered again, it is processed.
    e.try_handle_input(now, *refused.input).expect("room again");
    assert_eq!(drain_messages(&mut e), ["3"]);
}

#[test]
fn unchecked_input_beyond_the_limit_loses_no_event() {
    let now = Instant::now();
    let mut e = endpoint(2);
    for n in 0..6 {
        e.handle_input(now, message(n));
    }
    assert_eq!(drain_messages(&mut e), ["0", "1", "2", "3", "4", "5"]);
}

#[cfg(feature = "driver")]
#[tokio::test]
async fn every_transport_error_is_delivered_even_beyond_the_input_queue() {
    use cusax_sip::driver::{Input as DriverInput, TransportConfig, Transports};
    use cusax_sip::transaction::{Target, Transmit};
    use std::collections::HashSet;

    // No TLS configured: every TLS send fails synchronously. More failures than the
    // driver's internal input queue (1024) holds.
    let mut t = Transports::bind(TransportConfig::udp("127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("bind");
    const N: u16 = 1500;
    for port in 0..N {
        let target = Target::new(
            Transport::Tls,
            SocketAddr::from(([127, 0, 0, 1], 20000 + port)),
        );
        t.send(Transmit {
            target,
            data: Bytes::from_static(b"OPTIONS"),
        })
        .await;
    }
    let mut seen = HashSet::new();
    for _ in 0..N {
        let input = tokio::time::timeout(std::time::Duration::from_secs(5), t.recv())
            .await
            .expect("an error for every send");
        match input {
            DriverInput::TransportError { target, reason } => {
                assert!(reason.to_string().contains("TLS"), "{reason}");
                seen.insert(target.addr.port());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen.len(), usize::from(N));
}
