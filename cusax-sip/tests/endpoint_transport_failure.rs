//! A transport failure reaches the application with its typed cause: the driver's
//! [`Input::TransportError`] (a refused certificate, a refused connection, ...) becomes
//! [`SipEvent::TransportFailed`] naming the request, immediately followed by that
//! request's own failure event (503, RFC 3261 §8.1.3.1). A timeout stays a plain 408
//! without a transport cause. With the `driver` feature, the driver's classification of
//! real failures is checked too: a refused TCP connection, a peer that does not speak
//! TLS, a peer that never answers the handshake.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::endpoint::{
    Account, CallOptions, Endpoint, EndpointConfig, FailedRequest, Input, SipEvent,
    TransportFailure,
};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transmit, Transport};

mod common;
use common::{addr, drain};

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
    Endpoint::new(cfg, 11)
}

fn untrusted() -> TransportFailure {
    TransportFailure::CertificateUntrusted {
        detail: "invalid peer certificate: UnknownIssuer".into(),
    }
}

#[test]
fn a_refused_certificate_reaches_the_registration_failure() {
    let now = Instant::now();
    let mut e = endpoint();
    e.register(now).expect("register");
    let (sent, _) = drain(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, proxy());
    e.handle_input(
        now,
        Input::TransportError {
            target: proxy(),
            reason: untrusted(),
        },
    );
    let (sent, events) = drain(&mut e);
    assert!(sent.is_empty(), "nothing is retried at once: {sent:?}");
    match &events[..] {
        [
            SipEvent::TransportFailed {
                request: FailedRequest::Register,
                target,
                error,
                ..
            },
            SipEvent::RegistrationFailed { status: 503, .. },
        ] => {
            assert_eq!(*target, proxy());
            assert_eq!(*error, untrusted());
            assert!(error.is_certificate_error());
            assert!(error.to_string().contains("UnknownIssuer"), "{error}");
        }
        other => panic!("expected TransportFailed then RegistrationFailed: {other:?}"),
    }
    assert!(!e.is_registered());
}

#[test]
fn every_request_on_a_failed_connection_reports_the_cause_and_its_own_failure() {
    let now = Instant::now();
    let mut e = endpoint();
    let call = e
        .invite(
            now,
            Uri::parse("sip:bob@cusax.test").expect("uri"),
            Bytes::from_static(b"v=0\r\n"),
            CallOptions::default(),
        )
        .expect("invite");
    let msg = e
        .message(
            now,
            Uri::parse("sip:bob@cusax.test").expect("uri"),
            "text/plain",
            Bytes::from_static(b"hi"),
        )
        .expect("message");
    let opt = e
        .options(now, Uri::parse("sip:cusax.test").expect("uri"))
        .expect("options");
    let sub = e
        .subscribe(
            now,
            Uri::parse("sip:bob@cusax.test").expect("uri"),
            "presence",
            600,
        )
        .expect("subscribe");
    let (sent, _) = drain(&mut e);
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|t| t.target == proxy()), "{sent:?}");
    e.handle_input(
        now,
        Input::TransportError {
            target: proxy(),
            reason: TransportFailure::ConnectionRefused,
        },
    );
    let (_, events) = drain(&mut e);
    assert_eq!(events.len(), 8, "{events:?}");
    // Each TransportFailed is followed at once by the failure event of its request.
    let mut seen = Vec::new();
    for pair in events.chunks(2) {
        let [first, second] = pair else {
            panic!("odd events {events:?}")
        };
        let SipEvent::TransportFailed {
            request,
            target,
            error,
            ..
        } = first
        else {
            panic!("expected TransportFailed first: {pair:?}")
        };
        assert_eq!(*target, proxy());
        assert_eq!(*error, TransportFailure::ConnectionRefused);
        assert!(!error.is_certificate_error());
        seen.push(request.clone());
        match (request, second) {
            (
                FailedRequest::Invite(c),
                SipEvent::CallFailed {
                    call: f, status, ..
                },
            ) => {
                assert_eq!((*c, *f, *status), (call, call, 503));
            }
            (FailedRequest::Message(i), SipEvent::MessageResponse { id, status }) => {
                assert_eq!((*i, *id, *status), (msg, msg, 503));
            }
            (FailedRequest::Options(i), SipEvent::OptionsResponse { id, status, .. }) => {
                assert_eq!((*i, *id, *status), (opt, opt, 503));
            }
            (
                FailedRequest::Subscribe(i),
                SipEvent::SubscriptionTerminated {
                    subscription,
                    status,
                    ..
                },
            ) => {
                assert_eq!((*i, *subscription, *status), (sub, sub, Some(503)));
            }
            other => panic!("unexpected pair {other:?}"),
        }
    }
    assert!(
        seen.iter().enumerate().all(|(i, r)| !seen[..i].contains(r)),
        "each request once: {seen:?}"
    );
}

#[test]
fn a_failure_of_another_target_leaves_the_requests_alone() {
    let now = Instant::now();
    let mut e = endpoint();
    e.register(now).expect("register");
    drain(&mut e);
    e.handle_input(
        now,
        Input::TransportError {
            target: Target::new(Transport::Tls, addr("127.0.0.9:5061")),
            reason: untrusted(),
        },
    );
    let (_, events) = drain(&mut e);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_timeout_is_no_transport_failure() {
    let now = Instant::now();
    let mut e = endpoint();
    e.register(now).expect("register");
    drain(&mut e);
    // Timer F: 64*T1 = 32 s.
    let later = now + Duration::from_secs(40);
    e.handle_input(later, Input::Timeout);
    let (_, events) = drain(&mut e);
    assert!(
        matches!(
            &events[..],
            [SipEvent::RegistrationFailed { status: 408, .. }]
        ),
        "{events:?}"
    );
}

#[test]
fn text_converts_into_other() {
    let f: TransportFailure = "no route".into();
    assert_eq!(f, TransportFailure::Other("no route".into()));
    assert_eq!(f.to_string(), "no route");
    assert_eq!(
        TransportFailure::CertificateNameMismatch { detail: "x".into() }.to_string(),
        "TLS certificate does not match the server name: x"
    );
}

/// The driver classifies a real refused TCP connection as
/// [`TransportFailure::ConnectionRefused`] and the endpoint hands that on.
#[cfg(feature = "driver")]
#[tokio::test]
async fn the_driver_reports_a_refused_connection_as_such() {
    use cusax_sip::driver::{self, TransportConfig, Transports};

    // A port nobody listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let target = Target::new(Transport::Tcp, SocketAddr::from(([127, 0, 0, 1], port)));
    let mut cfg = EndpointConfig::insecure(addr("127.0.0.1:5999"), Transport::Tcp);
    cfg.account = Some(Account {
        aor: Uri::parse("sip:alice@cusax.test").expect("aor"),
        display_name: None,
        username: "alice".into(),
        password: "alice-secret".into(),
        registrar: target,
        outbound_proxy: None,
        expires: 600,
    });
    let mut e = Endpoint::new(cfg, 3);
    let mut t = Transports::bind(TransportConfig {
        tls: None,
        ..TransportConfig::default()
    })
    .await
    .expect("bind");
    e.register(Instant::now()).expect("register");
    let (sent, _) = drain(&mut e);
    for s in sent {
        t.send(s).await;
    }
    let input = tokio::time::timeout(Duration::from_secs(10), t.recv())
        .await
        .expect("a transport error");
    let driver::Input::TransportError { target: at, reason } = input else {
        panic!("expected a transport error, got {input:?}")
    };
    assert_eq!(at, target);
    assert_eq!(reason, TransportFailure::ConnectionRefused);
    e.handle_input(Instant::now(), Input::TransportError { target: at, reason });
    let (_, events) = drain(&mut e);
    assert!(
        matches!(
            &events[..],
            [
                SipEvent::TransportFailed {
                    request: FailedRequest::Register,
                    error: TransportFailure::ConnectionRefused,
                    ..
                },
                SipEvent::RegistrationFailed { status: 503, .. }
            ]
        ),
        "{events:?}"
    );
}

/// Sends one message to `target` over fresh transports and returns the driver's cause.
#[cfg(feature = "driver")]
async fn driver_failure(
    target: Target,
    config: cusax_sip::driver::TransportConfig,
) -> TransportFailure {
    use cusax_sip::driver::{self, Transports};
    let mut t = Transports::bind(config).await.expect("bind");
    t.send_named(
        Transmit {
            target,
            data: Bytes::from_static(b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
        },
        Some("cusax.test".into()),
    )
    .await;
    match tokio::time::timeout(Duration::from_secs(10), t.recv()).await {
        Ok(driver::Input::TransportError { target: at, reason }) if at == target => reason,
        other => panic!("expected a transport error for {target}, got {other:?}"),
    }
}

/// A peer that answers the TLS ClientHello with plain text: a handshake failure, not a
/// certificate problem.
#[cfg(feature = "driver")]
#[tokio::test]
async fn the_driver_reports_a_non_tls_peer_as_a_tls_failure() {
    use cusax_sip::driver::TransportConfig;
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let _ = s
            .write_all(b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let cause = driver_failure(
        Target::new(Transport::Tls, server),
        TransportConfig::default(),
    )
    .await;
    assert!(matches!(cause, TransportFailure::Tls { .. }), "{cause:?}");
    assert!(!cause.is_certificate_error());
    task.abort();
}

/// A TCP peer on loopback that accepts one connection and then neither reads nor
/// writes for `hold`: its address and task.
#[cfg(feature = "driver")]
async fn silent_peer(hold: Duration) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (_s, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(hold).await;
    });
    (server, task)
}

/// A peer that accepts the connection and never answers the handshake: the connect
/// timeout, reported as [`TransportFailure::Timeout`].
#[cfg(feature = "driver")]
#[tokio::test]
async fn the_driver_reports_a_silent_peer_as_a_timeout() {
    use cusax_sip::driver::TransportConfig;
    let (server, task) = silent_peer(Duration::from_secs(10)).await;
    let cause = driver_failure(
        Target::new(Transport::Tls, server),
        TransportConfig {
            connect_timeout: Duration::from_millis(300),
            ..TransportConfig::default()
        },
    )
    .await;
    assert_eq!(cause, TransportFailure::Timeout);
    task.abort();
}

/// A peer that accepts a connection and never reads: once the kernel buffers and the
/// connection's queue are full, a send waits at most the connect timeout and then fails
/// the target (instead of stalling the driver for ever or dropping silently).
#[cfg(feature = "driver")]
#[tokio::test]
async fn the_driver_fails_a_peer_that_stops_reading() {
    use cusax_sip::driver::{self, TransportConfig, Transports};
    let (server, task) = silent_peer(Duration::from_secs(60)).await;
    let mut t = Transports::bind(TransportConfig {
        tls: None,
        connection_queue: 1,
        connect_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    })
    .await
    .expect("bind");
    let target = Target::new(Transport::Tcp, server);
    let big = Bytes::from(vec![b'x'; 64 * 1024]);
    let started = Instant::now();
    // At most 64 MiB: far beyond what loopback socket buffers hold.
    for _ in 0..1024 {
        t.send(Transmit {
            target,
            data: big.clone(),
        })
        .await;
        if let Ok(input) = tokio::time::timeout(Duration::ZERO, t.recv()).await {
            let driver::Input::TransportError { target: at, reason } = input else {
                panic!("unexpected {input:?}")
            };
            assert_eq!(at, target);
            assert!(reason.to_string().contains("does not read"), "{reason:?}");
            assert!(started.elapsed() < Duration::from_secs(30));
            task.abort();
            return;
        }
    }
    panic!("sends to a peer that never reads never failed");
}
