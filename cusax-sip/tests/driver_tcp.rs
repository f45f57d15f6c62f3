//! The tokio driver over TCP (framing, connection reuse, transport errors) between two
//! transaction layers on 127.0.0.1, and over UDP/TCP/TLS against Kamailio when the
//! interop environment is up (`CUSAX_KAMAILIO_*`, `CUSAX_CA_CERT`, `CUSAX_SIP_DOMAIN`).
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::driver::{TlsConfig, TransportConfig, Transports, TrustAnchors, step};
use cusax_sip::msg::{Request, Response, SipMessage};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionLayer, Transport, new_branch,
};

const LIMIT: Duration = Duration::from_secs(10);

fn request(method: &str, transport: Transport, local: SocketAddr, uri_host: &str) -> Request {
    let branch = new_branch(&mut rand::rng());
    let text = format!(
        "{method} sip:{uri_host} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@cusax.test>;tag=a-{branch}\r\n\
         To: <sip:{uri_host}>\r\n\
         Call-ID: {branch}@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@{local};transport={t}>\r\n\
         Content-Length: 0\r\n\r\n",
        t = transport.as_str().to_ascii_lowercase()
    );
    match SipMessage::parse(Bytes::from(text)).expect("parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

fn answer(req: &Request) -> Response {
    let mut r = Response::new(200, "OK");
    for via in req.headers.get_all("Via") {
        r.headers.push("Via", via);
    }
    for name in ["From", "Call-ID", "CSeq"] {
        r.headers.push(name, req.headers.get(name).expect("header"));
    }
    r.headers.push(
        "To",
        format!("{};tag=srv", req.headers.get("To").expect("To")),
    );
    r.headers.push("Content-Length", "0");
    r
}

async fn until_done(transports: &mut Transports, layer: &mut TransactionLayer) -> TransactionEvent {
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no outcome");
        tokio::time::timeout(LIMIT, step(transports, layer))
            .await
            .expect("step");
        while let Some(ev) = layer.poll_event() {
            match &ev {
                TransactionEvent::Response { response, .. } if response.status >= 200 => return ev,
                TransactionEvent::Timeout { .. } | TransactionEvent::TransportError { .. } => {
                    return ev;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn options_over_tcp_reuse_the_connection() {
    let mut server = Transports::bind(TransportConfig {
        tcp_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let server_addr = server.local_addr(Transport::Tcp).unwrap();
    let sources = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sources.clone();
    let task = tokio::spawn(async move {
        let mut layer = TransactionLayer::new(TimerConfig::default());
        loop {
            step(&mut server, &mut layer).await;
            while let Some(ev) = layer.poll_event() {
                if let TransactionEvent::Request {
                    key,
                    request,
                    source,
                } = ev
                {
                    seen.lock().unwrap().push(source);
                    layer
                        .send_response(Instant::now(), &key, answer(&request))
                        .unwrap();
                }
            }
        }
    });

    let mut client = Transports::bind(TransportConfig::default()).await.unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let target = Target::new(Transport::Tcp, server_addr);
    // The Via sent-by is not where we listen, which is fine on TCP: responses come
    // back over the same connection (RFC 3261 §18.2.2).
    let local: SocketAddr = "127.0.0.1:5999".parse().unwrap();
    for _ in 0..2 {
        layer
            .send_request(
                Instant::now(),
                request("OPTIONS", Transport::Tcp, local, "bob@cusax.test"),
                target,
            )
            .unwrap();
        match until_done(&mut client, &mut layer).await {
            TransactionEvent::Response { response, .. } => assert_eq!(response.status, 200),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(client.connection_count(), 1);
    let sources = sources.lock().unwrap().clone();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0], sources[1], "one connection reused");
    assert_eq!(sources[0].transport, Transport::Tcp);
    task.abort();
}

#[tokio::test]
async fn refused_connection_is_a_transport_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = Target::new(Transport::Tcp, SocketAddr::from(([127, 0, 0, 1], port)));
    let mut client = Transports::bind(TransportConfig::default()).await.unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            Instant::now(),
            request(
                "OPTIONS",
                Transport::Tcp,
                "127.0.0.1:5999".parse().unwrap(),
                "x@cusax.test",
            ),
            target,
        )
        .unwrap();
    match until_done(&mut client, &mut layer).await {
        TransactionEvent::TransportError { key: k, reason } => {
            assert_eq!(k, key);
            assert!(!reason.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn tls_without_config_fails_cleanly() {
    // TLS is on by default; this test turns it off explicitly.
    let mut client = Transports::bind(TransportConfig {
        tls: None,
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer
        .send_request(
            Instant::now(),
            request(
                "OPTIONS",
                Transport::Tls,
                "127.0.0.1:5999".parse().unwrap(),
                "x@cusax.test",
            ),
            Target::new(Transport::Tls, "127.0.0.1:9".parse().unwrap()),
        )
        .unwrap();
    assert!(matches!(
        until_done(&mut client, &mut layer).await,
        TransactionEvent::TransportError { reason, .. } if reason.contains("TLS")
    ));
}

#[tokio::test]
async fn bad_ca_file_is_a_setup_error() {
    let err = Transports::bind(TransportConfig {
        tls: Some(TlsConfig {
            server_name: Some("cusax.test".into()),
            trust: TrustAnchors::PemFile("/nonexistent/ca.pem".into()),
        }),
        ..TransportConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

/// OPTIONS to Kamailio over each transport: any final response proves the transport
/// (TLS handshake with SNI = the SIP domain, stream framing, UDP).
#[tokio::test]
async fn options_to_kamailio_over_udp_tcp_tls() {
    let (Ok(domain), Ok(udp), Ok(tcp), Ok(tls), Ok(ca)) = (
        std::env::var("CUSAX_SIP_DOMAIN"),
        std::env::var("CUSAX_KAMAILIO_UDP"),
        std::env::var("CUSAX_KAMAILIO_TCP"),
        std::env::var("CUSAX_KAMAILIO_TLS"),
        std::env::var("CUSAX_CA_CERT"),
    ) else {
        eprintln!("skipping: CUSAX_SIP_DOMAIN/CUSAX_KAMAILIO_UDP/_TCP/_TLS/CUSAX_CA_CERT not set");
        return;
    };
    let mut transports = Transports::bind(TransportConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(TlsConfig {
            server_name: Some(domain.clone()),
            trust: TrustAnchors::PemFile(PathBuf::from(ca)),
        }),
        ..TransportConfig::default()
    })
    .await
    .expect("transports");
    let local = transports.local_addr(Transport::Udp).unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    for (transport, addr) in [
        (Transport::Udp, udp),
        (Transport::Tcp, tcp),
        (Transport::Tls, tls),
    ] {
        let addr: SocketAddr = addr.parse().expect("address");
        layer
            .send_request(
                Instant::now(),
                request("OPTIONS", transport, local, &domain),
                Target::new(transport, addr),
            )
            .unwrap();
        match until_done(&mut transports, &mut layer).await {
            TransactionEvent::Response { response, .. } => {
                eprintln!("{transport}: {} {}", response.status, response.reason);
                assert!(response.status >= 200);
            }
            other => panic!("{transport}: unexpected {other:?}"),
        }
    }
}
