//! TLS client certificates and SASL EXTERNAL (XEP-0178) against an in-process TLS server
//! (tokio-rustls) that verifies client certificates against a test CA and plays a scripted
//! XMPP exchange offering EXTERNAL and PLAIN. Certificates: tests/data/clientauth (test CA,
//! server leaf for `ext.test`, client leaf for `alice@ext.test`; EC P-256, made with
//! openssl for these tests).
#![cfg(feature = "driver")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cusax_xmpp::driver::{Client, ClientCert, ClientConfig, ConnectError};
use cusax_xmpp::sasl::Mechanism;
use cusax_xmpp::session::{SessionConfig, TlsMode, XmppEvent};
use jid::BareJid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn data(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/clientauth")
        .join(f)
}

fn certs(f: &str) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(data(f)).expect("pem");
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .expect("certs")
}

fn key(f: &str) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(data(f)).expect("pem");
    rustls_pemfile::private_key(&mut &pem[..])
        .expect("key")
        .expect("a key")
}

/// What the scripted server observed.
#[derive(Debug, Default)]
struct Seen {
    /// The client's certificate chain from the TLS handshake.
    client_chain: Option<Vec<CertificateDer<'static>>>,
    /// The mechanism named in `<auth/>`.
    mechanism: Option<String>,
    /// The initial response of `<auth/>` (`=` is empty).
    auth_payload: Option<String>,
}

struct Peer<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    /// Everything up to and including `pat`; `None` when the peer closed first.
    async fn until(&mut self, pat: &str) -> Option<String> {
        loop {
            if let Some(i) = self
                .buf
                .windows(pat.len())
                .position(|w| w == pat.as_bytes())
            {
                let rest = self.buf.split_off(i + pat.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
            let mut b = [0u8; 4096];
            match self.s.read(&mut b).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
            }
        }
    }

    async fn stream_header(&mut self) -> Option<()> {
        self.until("<stream:stream").await?;
        self.until(">").await?;
        Some(())
    }

    async fn send(&mut self, s: &str) {
        let _ = self.s.write_all(s.as_bytes()).await;
        let _ = self.s.flush().await;
    }

    async fn open(&mut self, features: &str) {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' id='s{}' from='ext.test' \
             version='1.0'><stream:features>{features}</stream:features>",
            rand::random::<u32>()
        ))
        .await;
    }
}

fn attr(text: &str, name: &str) -> Option<String> {
    for q in ['\'', '"'] {
        let pat = format!("{name}={q}");
        if let Some(i) = text.find(&pat) {
            let rest = &text[i + pat.len()..];
            return rest.find(q).map(|j| rest[..j].to_owned());
        }
    }
    None
}

/// The SASL + bind part after TLS; EXTERNAL succeeds, anything else is refused.
async fn after_tls<S: AsyncRead + AsyncWrite + Unpin>(p: &mut Peer<S>, seen: &mut Seen) {
    if p.stream_header().await.is_none() {
        return;
    }
    p.open(
        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>EXTERNAL</mechanism><mechanism>PLAIN</mechanism></mechanisms>",
    )
    .await;
    let Some(auth) = p.until("</auth>").await else {
        return;
    };
    seen.mechanism = attr(&auth, "mechanism");
    seen.auth_payload = auth
        .rsplit_once('>')
        .map(|(head, _)| head)
        .and_then(|h| h.rsplit_once('>'))
        .map(|(_, payload)| payload.trim_end_matches("</auth").to_owned());
    if seen.mechanism.as_deref() != Some("EXTERNAL") {
        p.send(
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>\
             </stream:stream>",
        )
        .await;
        return;
    }
    p.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .await;
    if p.stream_header().await.is_none() {
        return;
    }
    p.open("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")
        .await;
    let Some(iq) = p.until("</iq>").await else {
        return;
    };
    let id = attr(&iq, "id").unwrap_or_default();
    p.send(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>alice@ext.test/cert</jid></bind></iq>"
    ))
    .await;
    // Keep the stream open until the client closes it (RFC 6120 §4.4).
    if p.until("</stream:stream>").await.is_some() {
        p.send("</stream:stream>").await;
    }
}

/// Serves one connection (STARTTLS or direct TLS); reports what it saw.
async fn server(direct: bool, require_cert: bool) -> (u16, oneshot::Receiver<Seen>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("ca.pem") {
        roots.add(c).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    );
    let verifier = if require_cert {
        verifier.build()
    } else {
        verifier.allow_unauthenticated().build()
    }
    .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs("server.pem"), key("server.key"))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let Ok((tcp, _)) = l.accept().await else {
            return;
        };
        let tcp = if direct {
            tcp
        } else {
            let mut p = Peer {
                s: tcp,
                buf: Vec::new(),
            };
            if p.stream_header().await.is_none() {
                let _ = tx.send(seen);
                return;
            }
            p.open("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
                .await;
            if p.until("/>").await.is_none() {
                let _ = tx.send(seen);
                return;
            }
            p.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await;
            p.s
        };
        let tls = match acceptor.accept(tcp).await {
            Ok(t) => t,
            Err(_) => {
                let _ = tx.send(seen);
                return;
            }
        };
        seen.client_chain = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
        let mut p = Peer {
            s: tls,
            buf: Vec::new(),
        };
        after_tls(&mut p, &mut seen).await;
        let _ = tx.send(seen);
    });
    (port, rx)
}

fn config(port: u16, tls: TlsMode) -> ClientConfig {
    let mut s = SessionConfig::new(BareJid::new("alice@ext.test").unwrap(), "alice-secret");
    s.tls = tls;
    let mut c = ClientConfig::new(s);
    c.server = Some(format!("127.0.0.1:{port}"));
    c.ca_cert = Some(data("ca.pem"));
    c.connect_timeout = Duration::from_secs(10);
    c
}

async fn online_with_external(c: ClientConfig, rx: oneshot::Receiver<Seen>) {
    let (client, mut events) = Client::connect(c).await.expect("online with EXTERNAL");
    let security = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next_event()).await {
            Ok(Some(XmppEvent::Online { security, .. })) => break security,
            Ok(Some(_)) => continue,
            other => panic!("no Online event: {other:?}"),
        }
    };
    assert_eq!(security.sasl_mechanism, Some(Mechanism::External));
    client.close().await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("server done")
        .expect("server report");
    assert_eq!(seen.client_chain, Some(certs("client.pem")));
    assert_eq!(seen.mechanism.as_deref(), Some("EXTERNAL"));
    // No authorization identity: the server derives it from the certificate
    // (XEP-0178 §3, empty initial response "=").
    assert_eq!(seen.auth_payload.as_deref(), Some("="));
}

#[tokio::test]
async fn starttls_presents_pem_certificate_and_uses_external() {
    let (port, rx) = server(false, true).await;
    let mut c = config(port, TlsMode::StartTlsRequired);
    c.client_cert =
        Some(ClientCert::from_pem_files(&data("client.pem"), &data("client.key")).unwrap());
    online_with_external(c, rx).await;
}

#[tokio::test]
async fn direct_tls_presents_der_certificate_and_uses_external() {
    let (port, rx) = server(true, true).await;
    let mut c = config(port, TlsMode::DirectTls);
    c.client_cert = Some(ClientCert::from_der(certs("client.pem"), key("client.key")));
    online_with_external(c, rx).await;
}

#[tokio::test]
async fn without_certificate_external_is_not_chosen() {
    // The server accepts a handshake without a client certificate and offers EXTERNAL
    // first; the application even lists EXTERNAL first. Without a certificate the
    // session picks PLAIN (which this server refuses).
    let (port, rx) = server(false, false).await;
    let mut c = config(port, TlsMode::StartTlsRequired);
    c.session.mechanisms.insert(0, Mechanism::External);
    match Client::connect(c).await {
        Err(ConnectError::AuthFailed { condition }) => assert_eq!(condition, "not-authorized"),
        Err(e) => panic!("expected the scripted PLAIN refusal, got {e}"),
        Ok(_) => panic!("expected the scripted PLAIN refusal, got a session"),
    }
    let seen = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("server done")
        .expect("server report");
    assert_eq!(seen.client_chain, None);
    assert_eq!(seen.mechanism.as_deref(), Some("PLAIN"));
}

#[tokio::test]
async fn server_requiring_a_certificate_fails_the_handshake_without_one() {
    let (port, _rx) = server(true, true).await;
    match Client::connect(config(port, TlsMode::DirectTls)).await {
        Err(ConnectError::Tls { .. } | ConnectError::Session(_)) => {}
        Err(e) => panic!("expected a TLS failure, got {e}"),
        Ok(_) => panic!("expected a TLS failure, got a session"),
    }
}

#[test]
fn unreadable_certificate_files_are_a_configuration_error() {
    match ClientCert::from_pem_files(&data("missing.pem"), &data("client.key")) {
        Err(ConnectError::ClientCertificate { path, .. }) => assert!(path.ends_with("missing.pem")),
        other => panic!("expected ClientCertificate, got {other:?}"),
    }
    // A key file given as the chain: no certificate in it.
    match ClientCert::from_pem_files(&data("client.key"), &data("client.key")) {
        Err(ConnectError::ClientCertificate { path, reason }) => {
            assert!(path.ends_with("client.key"));
            assert!(reason.contains("no certificate"), "{reason}");
        }
        other => panic!("expected ClientCertificate, got {other:?}"),
    }
}
