//! The tokio driver over TLS against an in-process rustls server that uses the interop
//! test certificates (`CUSAX_CA_CERT`; `leaf.pem`/`fullchain.pem` and `leaf.key` beside
//! it, as `scripts/interop-up.sh` makes them): SNI = the SIP domain, certificate checked
//! against the CA file, connection reused, wrong name refused.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::driver::{TlsConfig, TransportConfig, Transports, TrustAnchors, step};
use cusax_sip::msg::framing::{RawFrame, RawSipCodec};
use cusax_sip::msg::{Request, Response, SipMessage};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionLayer, Transport, new_branch,
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const LIMIT: Duration = Duration::from_secs(10);

fn certs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let ca = PathBuf::from(std::env::var("CUSAX_CA_CERT").ok()?);
    let dir = ca.parent()?.to_path_buf();
    let chain = dir.join("fullchain.pem");
    let key = dir.join("leaf.key");
    (chain.exists() && key.exists()).then_some((ca, chain, key))
}

fn server_config(chain: &Path, key: &Path) -> rustls::ServerConfig {
    let chain_pem = std::fs::read(chain).expect("chain");
    let key_pem = std::fs::read(key).expect("key");
    let chain: Vec<_> = rustls_pemfile::certs(&mut chain_pem.as_slice())
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .expect("key pem")
        .expect("a key");
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config")
}

fn ok_for(req: &Request) -> Response {
    let mut r = Response::new(200, "OK");
    for via in req.headers.get_all("Via") {
        r.headers.push("Via", via);
    }
    for name in ["From", "Call-ID", "CSeq"] {
        r.headers.push(name, req.headers.get(name).expect("header"));
    }
    r.headers.push(
        "To",
        format!("{};tag=tls", req.headers.get("To").expect("To")),
    );
    r.headers.push("Content-Length", "0");
    r
}

/// Accepts TLS connections, records the SNI of each, answers every request 200.
async fn tls_server(
    listener: TcpListener,
    config: rustls::ServerConfig,
    sni: Arc<Mutex<Vec<String>>>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let sni = sni.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let name = tls.get_ref().1.server_name().unwrap_or("").to_string();
            sni.lock().unwrap().push(name);
            let mut framed = Framed::new(tls, RawSipCodec::default());
            while let Some(Ok(frame)) = framed.next().await {
                if let RawFrame::Message(data) = frame
                    && let Ok(SipMessage::Request(req)) = SipMessage::parse(data)
                {
                    let _ = framed.send(ok_for(&req).to_bytes()).await;
                }
            }
        });
    }
}

fn options(domain: &str) -> Request {
    let branch = new_branch(&mut rand::rng());
    let text = format!(
        "OPTIONS sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5999;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@{domain}>;tag=a-{branch}\r\n\
         To: <sip:{domain}>\r\n\
         Call-ID: {branch}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match SipMessage::parse(Bytes::from(text)).expect("parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

async fn outcome(transports: &mut Transports, layer: &mut TransactionLayer) -> TransactionEvent {
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

async fn start_server() -> (
    SocketAddr,
    Arc<Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
    PathBuf,
) {
    let (ca, chain, key) = certs().expect("certs present");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sni = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn(tls_server(
        listener,
        server_config(&chain, &key),
        sni.clone(),
    ));
    (addr, sni, task, ca)
}

#[tokio::test]
async fn options_over_tls_with_sni_and_ca_file() {
    if certs().is_none() {
        eprintln!("skipping: CUSAX_CA_CERT not set or leaf certificate/key not beside it");
        return;
    }
    let domain = std::env::var("CUSAX_SIP_DOMAIN").unwrap_or_else(|_| "cusax.test".into());
    let (addr, sni, task, ca) = start_server().await;
    let mut client = Transports::bind(TransportConfig {
        tls: Some(TlsConfig {
            server_name: Some(domain.clone()),
            trust: TrustAnchors::PemFile(ca),
        }),
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    for _ in 0..2 {
        layer
            .send_request(
                Instant::now(),
                options(&domain),
                Target::new(Transport::Tls, addr),
            )
            .unwrap();
        match outcome(&mut client, &mut layer).await {
            TransactionEvent::Response { response, .. } => assert_eq!(response.status, 200),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(client.connection_count(), 1);
    assert_eq!(*sni.lock().unwrap(), vec![domain]);
    task.abort();
}

#[tokio::test]
async fn tls_name_mismatch_is_a_transport_error() {
    if certs().is_none() {
        eprintln!("skipping: CUSAX_CA_CERT not set or leaf certificate/key not beside it");
        return;
    }
    let (addr, _sni, task, ca) = start_server().await;
    let mut client = Transports::bind(TransportConfig {
        tls: Some(TlsConfig {
            server_name: Some("not-in-the-certificate.example".into()),
            trust: TrustAnchors::PemFile(ca),
        }),
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer
        .send_request(
            Instant::now(),
            options("cusax.test"),
            Target::new(Transport::Tls, addr),
        )
        .unwrap();
    match outcome(&mut client, &mut layer).await {
        TransactionEvent::TransportError { reason, .. } => {
            assert!(
                reason.to_ascii_lowercase().contains("certificate"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    task.abort();
}

#[tokio::test]
async fn webpki_roots_do_not_trust_the_test_ca() {
    if certs().is_none() {
        eprintln!("skipping: CUSAX_CA_CERT not set or leaf certificate/key not beside it");
        return;
    }
    let (addr, _sni, task, _ca) = start_server().await;
    let mut client = Transports::bind(TransportConfig {
        tls: Some(TlsConfig {
            server_name: Some("cusax.test".into()),
            trust: TrustAnchors::WebPki,
        }),
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer
        .send_request(
            Instant::now(),
            options("cusax.test"),
            Target::new(Transport::Tls, addr),
        )
        .unwrap();
    assert!(matches!(
        outcome(&mut client, &mut layer).await,
        TransactionEvent::TransportError { .. }
    ));
    task.abort();
}
