//! The registration flow (RFC 5626 §3.5.1, §4.4.1): the driver pings the TCP/TLS
//! connections it opens with CRLFCRLF; a peer that answered pings before and stops
//! answering fails the connection; a peer that never answers is not failed for it. The
//! endpoint re-registers at once when the connection carrying its registration breaks,
//! so incoming calls find it again. Against Kamailio: `kamailio_flow.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::endpoint::{Account, Endpoint, EndpointConfig, Input, SipEvent, TransportFailure};
use cusax_sip::msg::{Request, Uri};
use cusax_sip::transaction::{Target, Transmit, Transport};

mod common;
use common::{addr, drain, request};

const LOCAL: &str = "127.0.0.1:5070";
const PROXY: &str = "127.0.0.1:5061";

fn proxy() -> Target {
    Target::new(Transport::Tls, addr(PROXY))
}

fn endpoint() -> Endpoint {
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(Account::tls(
        Uri::parse("sip:alice@cusax.test").expect("aor"),
        "alice",
        "alice-secret",
        addr(PROXY),
    ));
    Endpoint::new(cfg, 17)
}

/// Answers `req` with 200 OK (echoing its Contact with `expires=600`) over TLS.
fn ok(e: &mut Endpoint, now: Instant, req: &Request) {
    let text = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=reg\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: {};expires=600\r\nContent-Length: 0\r\n\r\n",
        req.headers.get("Via").expect("Via"),
        req.headers.get("From").expect("From"),
        req.headers.get("To").expect("To"),
        req.headers.get("Call-ID").expect("Call-ID"),
        req.headers.get("CSeq").expect("CSeq"),
        req.headers.get("Contact").expect("Contact"),
    );
    e.handle_input(
        now,
        Input::Receive {
            data: Bytes::from(text),
            source: addr(PROXY),
            transport: Transport::Tls,
        },
    );
}

fn closed() -> TransportFailure {
    TransportFailure::ConnectionClosed {
        detail: "connection closed by peer".into(),
    }
}

/// Registers `e` and returns the REGISTER that succeeded.
fn registered(e: &mut Endpoint, now: Instant) -> Request {
    e.register(now).expect("register");
    let (sent, _) = drain(e);
    let reg = request(&sent[0]);
    ok(e, now, &reg);
    let (_, events) = drain(e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::Registered { expires: 600, .. })),
        "{events:?}"
    );
    reg
}

#[test]
fn a_broken_registration_flow_re_registers_at_once() {
    let now = Instant::now();
    let mut e = endpoint();
    let first = registered(&mut e, now);
    let later = now + Duration::from_secs(30);
    e.handle_input(
        later,
        Input::TransportError {
            target: proxy(),
            reason: closed(),
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(
        matches!(
            &events[..],
            [SipEvent::RegistrationFlowLost { target, error, .. }] if *target == proxy() && *error == closed()
        ),
        "{events:?}"
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].target, proxy());
    let again = request(&sent[0]);
    assert_eq!(again.method.as_str(), "REGISTER");
    assert_eq!(again.headers.get("Call-ID"), first.headers.get("Call-ID"));
    let seq = |r: &Request| r.headers.cseq().expect("CSeq").seq;
    assert_eq!(seq(&again), seq(&first) + 1);
    // Its success is reported as usual.
    ok(&mut e, later, &again);
    let (_, events) = drain(&mut e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::Registered { .. })),
        "{events:?}"
    );
}

#[test]
fn a_broken_connection_after_the_answer_fails_no_call() {
    // The INVITE's transaction lives on for Timer M (RFC 6026) after its 2xx: the
    // connection breaking then must not fail the established call.
    let now = Instant::now();
    let mut e = endpoint();
    let call = e
        .invite(
            now,
            Uri::parse("sip:bob@cusax.test").expect("uri"),
            Bytes::from_static(b"v=0\r\n"),
            cusax_sip::endpoint::CallOptions::default(),
        )
        .expect("invite");
    let (sent, _) = drain(&mut e);
    let invite = request(&sent[0]);
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sips:bob@127.0.0.1:5090>\r\nContent-Length: 0\r\n\r\n",
        invite.headers.get("Via").expect("Via"),
        invite.headers.get("From").expect("From"),
        invite.headers.get("To").expect("To"),
        invite.headers.get("Call-ID").expect("Call-ID"),
    );
    e.handle_input(
        now,
        Input::Receive {
            data: Bytes::from(ok),
            source: addr(PROXY),
            transport: Transport::Tls,
        },
    );
    let (_, events) = drain(&mut e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallAnswered { call: c, .. } if *c == call)),
        "{events:?}"
    );
    e.handle_input(
        now + Duration::from_secs(5),
        Input::TransportError {
            target: proxy(),
            reason: closed(),
        },
    );
    let (_, events) = drain(&mut e);
    assert!(events.is_empty(), "the call goes on: {events:?}");
    // It can still be ended normally.
    e.bye(now + Duration::from_secs(6), call).expect("bye");
}

#[test]
fn only_the_registration_flow_counts() {
    let now = Instant::now();
    let mut e = endpoint();
    let _ = registered(&mut e, now);
    // Another connection breaking is no reason to re-register.
    e.handle_input(
        now,
        Input::TransportError {
            target: Target::new(Transport::Tls, addr("127.0.0.1:5999")),
            reason: closed(),
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(sent.is_empty() && events.is_empty(), "{sent:?} {events:?}");
}

#[test]
fn a_failed_register_is_reported_not_doubled() {
    // The connection breaks while the REGISTER is under way: the REGISTER fails (503,
    // retried later like any transient failure), no second REGISTER is sent at once.
    let now = Instant::now();
    let mut e = endpoint();
    e.register(now).expect("register");
    let _ = drain(&mut e);
    e.handle_input(
        now,
        Input::TransportError {
            target: proxy(),
            reason: closed(),
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, SipEvent::RegistrationFlowLost { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::RegistrationFailed { status: 503, .. })),
        "{events:?}"
    );
}

#[test]
fn after_unregistering_a_broken_flow_is_left_alone() {
    let now = Instant::now();
    let mut e = endpoint();
    let _ = registered(&mut e, now);
    e.unregister(now).expect("unregister");
    let (sent, _) = drain(&mut e);
    let unreg = request(&sent[0]);
    ok(&mut e, now, &unreg);
    let (_, events) = drain(&mut e);
    assert!(
        events.iter().any(|ev| matches!(ev, SipEvent::Unregistered)),
        "{events:?}"
    );
    e.handle_input(
        now,
        Input::TransportError {
            target: proxy(),
            reason: closed(),
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(sent.is_empty() && events.is_empty(), "{sent:?} {events:?}");
}

#[cfg(feature = "driver")]
mod driver {
    //! The driver's pings over real loopback TCP connections, against small peers
    //! that answer pings always, once, or never.

    use super::*;
    use cusax_sip::driver::{Input as DriverInput, TransportConfig, Transports};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// How a test peer answers pings.
    #[derive(Clone, Copy)]
    enum Pongs {
        Always,
        /// The first ping only.
        Once,
        /// The first two pings only.
        Twice,
        Never,
        /// Never, but the peer ends its first read with a stray CRLF.
        NeverButStrayCrlf,
    }

    /// A TCP peer that counts CRLFCRLF pings (after the first message) and answers
    /// them as told. Returns its address and the ping counter.
    async fn peer(pongs: Pongs) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("addr");
        let pings = Arc::new(AtomicUsize::new(0));
        let seen = pings.clone();
        tokio::spawn(async move {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut stray = matches!(pongs, Pongs::NeverButStrayCrlf);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if std::mem::take(&mut stray) && s.write_all(b"\r\n").await.is_err() {
                    return;
                }
                // Skip the message (it has no body), then count the pings.
                while let Some(end) = find(&buf, b"\r\n\r\n") {
                    let message = end > 0;
                    buf.drain(..end + 4);
                    if message {
                        continue;
                    }
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    let answer = match pongs {
                        Pongs::Always => true,
                        Pongs::Once => n == 1,
                        Pongs::Twice => n <= 2,
                        Pongs::Never | Pongs::NeverButStrayCrlf => false,
                    };
                    if answer && s.write_all(b"\r\n").await.is_err() {
                        return;
                    }
                }
            }
        });
        (at, pings)
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    async fn transports() -> Transports {
        Transports::bind(TransportConfig {
            tls: None,
            keepalive_interval: Some(Duration::from_millis(100)),
            // Generous: a pong late on a loaded machine must not fail the connection.
            keepalive_pong_timeout: Duration::from_secs(2),
            ..TransportConfig::default()
        })
        .await
        .expect("bind")
    }

    async fn open(t: &mut Transports, at: SocketAddr) -> Target {
        let target = Target::new(Transport::Tcp, at);
        t.send(Transmit {
            target,
            data: Bytes::from_static(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"),
        })
        .await;
        target
    }

    /// Waits up to `d` for the next driver input.
    async fn next(t: &mut Transports, d: Duration) -> Option<DriverInput> {
        tokio::time::timeout(d, t.recv()).await.ok()
    }

    /// Waits until the peer counted `n` pings, failing on any driver input meanwhile
    /// (the connection must stay up).
    async fn pings_without_failure(t: &mut Transports, pings: &AtomicUsize, n: usize) {
        let end = tokio::time::Instant::now() + Duration::from_secs(30);
        while pings.load(Ordering::SeqCst) < n {
            assert!(tokio::time::Instant::now() < end, "only {pings:?} pings");
            if let Some(input) = next(t, Duration::from_millis(50)).await {
                panic!("the connection must stay up: {input:?}");
            }
        }
        assert_eq!(t.connection_count(), 1);
    }

    #[tokio::test]
    async fn a_peer_answering_pings_keeps_the_connection() {
        let (at, pings) = peer(Pongs::Always).await;
        let mut t = transports().await;
        let _ = open(&mut t, at).await;
        pings_without_failure(&mut t, &pings, 4).await;
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_is_not_failed_for_it() {
        // Pings go on every interval; the missing pongs fail nothing (the peer may not
        // do RFC 5626 keep-alives at all).
        let (at, pings) = peer(Pongs::Never).await;
        let mut t = transports().await;
        let _ = open(&mut t, at).await;
        pings_without_failure(&mut t, &pings, 4).await;
    }

    #[tokio::test]
    async fn one_pong_or_a_stray_crlf_is_not_enough_to_be_judged() {
        // A single answered ping, or an unsolicited CRLF (before any ping), does not
        // make the peer one whose silence means death.
        for pongs in [Pongs::Once, Pongs::NeverButStrayCrlf] {
            let (at, pings) = peer(pongs).await;
            let mut t = transports().await;
            let _ = open(&mut t, at).await;
            pings_without_failure(&mut t, &pings, 4).await;
        }
    }

    #[tokio::test]
    async fn a_peer_that_stops_answering_fails_the_connection() {
        let (at, pings) = peer(Pongs::Twice).await;
        let mut t = transports().await;
        let target = open(&mut t, at).await;
        let input = next(&mut t, Duration::from_secs(30)).await;
        match input {
            Some(DriverInput::TransportError {
                target: failed,
                reason: TransportFailure::ConnectionClosed { detail },
            }) => {
                assert_eq!(failed, target);
                assert!(detail.contains("pong"), "{detail}");
            }
            other => panic!("expected the connection to fail, got {other:?}"),
        }
        // Two pings answered, the third left unanswered.
        assert_eq!(pings.load(Ordering::SeqCst), 3);
        assert_eq!(t.connection_count(), 0);
    }
}
