//! The driver's incoming TLS listener ([`TransportConfig::tls_listen`]): a cusax UA
//! that listens on TLS answers a call from another cusax UA and from a real Kamailio that
//! opens the TLS connection to it; both sides see how the call travelled (RFC 7081 §7).
//! Uses the interop test certificates (`CUSAX_CA_CERT`, with `fullchain.pem` and
//! `leaf.key` beside it, valid for 127.0.0.1); the Kamailio test also needs
//! `CUSAX_KAMAILIO_UDP` and `CUSAX_SIP_DOMAIN`. Skips when they are absent. A certificate
//! file that cannot be used is a setup error, tested without any environment.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::driver::{
    TlsConfig, TlsListenConfig, TransportConfig, TransportSetupError, Transports,
};
use cusax_sip::endpoint::{Account, CallOptions, EndedBy, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 0\r\n";
const ANSWER: &[u8] = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/SAVP 0\r\n";

/// (CA, chain, key) of the interop certificates.
fn certs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let ca = PathBuf::from(std::env::var("CUSAX_CA_CERT").ok()?);
    let dir = ca.parent()?.to_path_buf();
    let chain = dir.join("fullchain.pem");
    let key = dir.join("leaf.key");
    (chain.exists() && key.exists()).then_some((ca, chain, key))
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// bob: TLS only (the secure default), listening on TLS, trusting the interop CA for
/// his own outgoing connections.
async fn bob(ca: &Path, chain: &Path, key: &Path) -> Client {
    let mut cfg = EndpointConfig::new(local());
    cfg.contact_user = "bob".into();
    let tc = TransportConfig {
        tls_listen: Some(TlsListenConfig {
            addr: local(),
            cert_chain: chain.to_path_buf(),
            key: key.to_path_buf(),
        }),
        tls: Some(TlsConfig::with_ca_file(ca)),
        ..TransportConfig::default()
    };
    Client::start_with(cfg, Some(tc)).await.expect("bind")
}

/// bob answers the next call, checking how it reached him; returns his handle.
async fn answer_call(bob: &mut Client) -> cusax_sip::endpoint::CallId {
    let (call, security) = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, security, .. } => Some((*call, security.clone())),
            _ => None,
        })
        .await
        .expect("bob gets the call over his TLS listener");
    assert_eq!(security.transport, Transport::Tls);
    let tls = security
        .tls
        .expect("TLS details of the accepted connection");
    assert!(tls.protocol_version.starts_with("TLSv1_"), "{tls:?}");
    assert!(!tls.cipher_suite.is_empty(), "{tls:?}");
    assert!(!tls.peer_verified, "no client certificate was checked");
    bob.answer(call, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    call
}

async fn ended(c: &mut Client, call: cusax_sip::endpoint::CallId, by: EndedBy) -> bool {
    c.wait_for(WAIT, |e| match e {
        SipEvent::CallEnded { call: x, by: b } if *x == call && *b == by => Some(()),
        _ => None,
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cusax_ua_calls_our_tls_listener() {
    let Some((ca, chain, key)) = certs() else {
        eprintln!("skipping: CUSAX_CA_CERT not set (run scripts/interop-up.sh)");
        return;
    };
    let mut bob = bob(&ca, &chain, &key).await;
    let at = bob.local_addr();
    let mut alice = Client::start_with(
        EndpointConfig::new(local()),
        Some(TransportConfig::tls_with_ca_file(&ca)),
    )
    .await
    .expect("bind");
    let to = Uri::parse(&format!("sips:bob@{at}")).expect("uri");
    let call_a = alice
        .invite(to, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let call_b = answer_call(&mut bob).await;
    let security = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, security, .. } if *call == call_a => {
                Some(security.clone())
            }
            SipEvent::CallFailed { status, .. } => panic!("call failed: {status}"),
            _ => None,
        })
        .await
        .expect("answered");
    assert!(
        security.is_verified_tls(),
        "alice checked bob's certificate: {security:?}"
    );
    alice.bye(call_a).expect("bye");
    assert!(ended(&mut bob, call_b, EndedBy::Remote).await);
    assert!(ended(&mut alice, call_a, EndedBy::Local).await);
    alice.shutdown(WAIT).await;
    bob.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_opens_a_tls_connection_to_our_listener() {
    let (Some((ca, chain, key)), Some(server), Ok(domain)) = (
        certs(),
        std::env::var("CUSAX_KAMAILIO_UDP")
            .ok()
            .and_then(|s| s.parse::<SocketAddr>().ok()),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_CA_CERT / CUSAX_KAMAILIO_UDP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let mut bob = bob(&ca, &chain, &key).await;
    let at = bob.local_addr();
    // alice: UDP to Kamailio, which relays to bob's URI with transport=tls: Kamailio
    // connects to bob's listener as a TLS client.
    let mut cfg = EndpointConfig::insecure(local(), Transport::Udp);
    let proxy = Target::new(Transport::Udp, server);
    cfg.account = Some(Account {
        aor: Uri::parse(&format!("sip:alice@{domain}")).expect("aor"),
        display_name: None,
        username: "alice".into(),
        password: "alice-secret".into(),
        registrar: proxy,
        outbound_proxy: Some(proxy),
        expires: 120,
    });
    let mut alice = Client::start(cfg).await.expect("bind");
    let to = Uri::parse(&format!("sip:bob@{at};transport=tls")).expect("uri");
    let call_a = alice
        .invite(to, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let call_b = answer_call(&mut bob).await;
    let answered = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, .. } if *call == call_a => Some(Ok(())),
            SipEvent::CallFailed { status, .. } => Some(Err(*status)),
            _ => None,
        })
        .await;
    assert_eq!(answered, Some(Ok(())));
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallConfirmed { call } if *call == call_b).then_some(())
        })
        .await
        .is_some(),
        "the ACK reaches bob through Kamailio"
    );
    alice.bye(call_a).expect("bye");
    assert!(ended(&mut bob, call_b, EndedBy::Remote).await);
    assert!(ended(&mut alice, call_a, EndedBy::Local).await);
    alice.shutdown(WAIT).await;
    bob.shutdown(WAIT).await;
}

#[tokio::test]
async fn an_unusable_certificate_is_a_setup_error() {
    let dir = std::env::temp_dir().join(format!("cusax-tls-listen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, b"").expect("write");
    let bind = |cert_chain: PathBuf, key: PathBuf| {
        Transports::bind(TransportConfig {
            tls_listen: Some(TlsListenConfig {
                addr: local(),
                cert_chain,
                key,
            }),
            ..TransportConfig::default()
        })
    };
    let missing = dir.join("missing.pem");
    match bind(missing.clone(), missing.clone()).await {
        Err(TransportSetupError::Certificate { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a certificate error, got {other:?}"),
    }
    match bind(empty.clone(), empty.clone()).await {
        Err(TransportSetupError::Certificate { path, reason }) => {
            assert_eq!(path, empty);
            assert!(reason.contains("no certificate"), "{reason}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
