//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod sipp;

use std::net::SocketAddr;

use cusax_sip::endpoint::{Endpoint, Output, SipEvent};
use cusax_sip::msg::{Request, SipMessage};
use cusax_sip::transaction::Transmit;

/// A socket address from text.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// Drains a sans-IO endpoint up to its next timeout: (transmits, events).
pub fn drain(e: &mut Endpoint) -> (Vec<Transmit>, Vec<SipEvent>) {
    let (mut out, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = e.poll_output() {
        match o {
            Output::Transmit(t) => out.push(t),
            Output::Event(ev) => events.push(ev),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    (out, events)
}

/// The request a transmit carries (panics on anything else).
pub fn request(t: &Transmit) -> Request {
    match SipMessage::parse(t.data.clone()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

/// A TLS server on 127.0.0.1 that presents the interop test certificate
/// (`fullchain.pem` and `leaf.key` beside the CA file `ca`, as Kamailio does) and drops
/// whatever it receives. The tests that make a client abort a TLS handshake (an
/// untrusted CA, a wrong name) use it instead of Kamailio: Debian 12's Kamailio 5.6.3
/// with OpenSSL 3 may corrupt its shared memory and crash after aborted handshakes
/// (kamailio/kamailio#3791; the fix, `tls_threads_mode`, needs 5.7.x or later), which
/// took every later test down with it once in CI.
#[cfg(feature = "driver")]
pub async fn tls_stand_in(ca: &std::path::Path) -> SocketAddr {
    use std::sync::Arc;
    let dir = ca.parent().expect("CA file in the certificate folder");
    let chain_pem = std::fs::read(dir.join("fullchain.pem")).expect("fullchain.pem");
    let key_pem = std::fs::read(dir.join("leaf.key")).expect("leaf.key");
    let chain: Vec<_> = rustls_pemfile::certs(&mut chain_pem.as_slice())
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .expect("key file")
        .expect("a key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4096];
                    while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    at
}
