//! alice and bob registered to a real Kamailio over TLS (the default transport): REGISTER
//! with digest, a call alice → bob through the proxy, answer, BYE — every hop on TLS,
//! the certificate checked against the SIP domain. Needs `CUSAX_KAMAILIO_TLS`,
//! `CUSAX_SIP_DOMAIN` and `CUSAX_CA_CERT`; skips when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::driver::TransportConfig;
use cusax_sip::endpoint::{
    Account, AnswerOptions, CallOptions, EndedBy, EndpointConfig, FailedRequest,
    SignallingSecurity, SipEvent, TransportFailure,
};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

mod common;

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &[u8] = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n";

struct Env {
    server: SocketAddr,
    domain: String,
    ca: String,
}

fn env() -> Option<Env> {
    Some(Env {
        server: std::env::var("CUSAX_KAMAILIO_TLS").ok()?.parse().ok()?,
        domain: std::env::var("CUSAX_SIP_DOMAIN").ok()?,
        ca: std::env::var("CUSAX_CA_CERT").ok()?,
    })
}

async fn client(env: &Env, user: &str) -> Client {
    // The defaults: TLS, plain transports refused.
    let mut c = EndpointConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    assert_eq!(c.transport, Transport::Tls);
    c.call_info_impp = Some(format!("{user}@{}", env.domain));
    c.account = Some(Account::tls(
        Uri::parse(&format!("sip:{user}@{}", env.domain)).expect("aor"),
        user,
        format!("{user}-secret"),
        env.server,
    ));
    Client::start_with(c, Some(TransportConfig::tls_with_ca_file(&env.ca)))
        .await
        .expect("transports")
}

/// The connection to Kamailio: TLS, certificate verified for the SIP domain.
fn assert_verified(security: &SignallingSecurity, domain: &str) {
    assert_eq!(security.transport, Transport::Tls);
    let tls = security.tls.as_ref().expect("TLS parameters reported");
    assert!(tls.peer_verified);
    assert_eq!(tls.server_name.as_deref(), Some(domain));
    assert!(tls.protocol_version.starts_with("TLSv1_"), "{tls:?}");
    assert!(tls.cipher_suite.starts_with("TLS"), "{tls:?}");
}

async fn register(c: &mut Client) -> SignallingSecurity {
    c.register().expect("register");
    c.wait_for(WAIT, |e| match e {
        SipEvent::Registered { security, .. } => Some(security.clone()),
        SipEvent::RegistrationFailed { status, reason } => {
            panic!("registration failed: {status} {reason}")
        }
        _ => None,
    })
    .await
    .expect("registered over TLS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_call_over_tls() {
    let Some(env) = env() else {
        eprintln!("skipping: CUSAX_KAMAILIO_TLS / CUSAX_SIP_DOMAIN / CUSAX_CA_CERT not set");
        return;
    };
    let mut alice = client(&env, "alice").await;
    let mut bob = client(&env, "bob").await;
    assert_verified(&register(&mut alice).await, &env.domain);
    assert_verified(&register(&mut bob).await, &env.domain);

    let bob_uri = Uri::parse(&format!("sip:bob@{}", env.domain)).expect("uri");
    let call_a = alice
        .invite(bob_uri, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let (call_b, security) = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, security, .. } => Some((*call, security.clone())),
            _ => None,
        })
        .await
        .expect("bob gets the call over TLS");
    assert_verified(&security, &env.domain);
    bob.ring(call_b).expect("ring");
    bob.answer_with(
        call_b,
        200,
        Bytes::from_static(ANSWER),
        AnswerOptions::with_impp(),
    )
    .expect("answer");
    let (answer, call_info, security) = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered {
                call,
                body,
                call_info,
                security,
                ..
            } if *call == call_a => Some((body.clone(), call_info.clone(), security.clone())),
            SipEvent::CallFailed { status, reason, .. } => panic!("call failed: {status} {reason}"),
            _ => None,
        })
        .await
        .expect("answered");
    assert_eq!(answer.as_ref(), ANSWER);
    assert_verified(&security, &env.domain);
    // bob's Call-Info crossed Kamailio to alice (RFC 7081 §3.5).
    assert!(
        call_info
            .iter()
            .any(|c| c.is_purpose("impp") && c.uri == format!("xmpp:bob@{}", env.domain)),
        "{call_info:?}"
    );
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallConfirmed { call } if *call == call_b).then_some(())
        })
        .await
        .is_some(),
        "ACK reaches bob over TLS"
    );
    alice.bye(call_a).expect("bye");
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_b)
                .then_some(())
        })
        .await
        .is_some(),
        "BYE reaches bob over TLS"
    );
    assert!(
        alice
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallEnded { call, by: EndedBy::Local } if *call == call_a)
                    .then_some(())
            })
            .await
            .is_some()
    );
    alice.shutdown(WAIT).await;

    // --- call 2: carol on plain UDP (chosen explicitly) calls bob on TLS. Kamailio
    // bridges the transports with two Record-Route entries; bob's dialog was made over
    // TLS and his BYE must leave over TLS (the route entry facing him), not downgrade.
    let Ok(udp) = std::env::var("CUSAX_KAMAILIO_UDP") else {
        eprintln!("skipping the UDP-to-TLS call: CUSAX_KAMAILIO_UDP not set");
        bob.shutdown(WAIT).await;
        return;
    };
    let udp: SocketAddr = udp.parse().expect("CUSAX_KAMAILIO_UDP");
    let mut c = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Udp);
    let server = Target::new(Transport::Udp, udp);
    c.account = Some(Account {
        aor: Uri::parse(&format!("sip:carol@{}", env.domain)).expect("aor"),
        display_name: None,
        username: "carol".into(),
        password: "carol-secret".into(),
        registrar: server,
        outbound_proxy: Some(server),
        expires: 120,
    });
    let mut carol = Client::start(c).await.expect("bind");
    let bob_uri = Uri::parse(&format!("sip:bob@{}", env.domain)).expect("uri");
    let call_c = carol
        .invite(bob_uri, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let (call_b, security) = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, security, .. } => Some((*call, security.clone())),
            _ => None,
        })
        .await
        .expect("bob gets carol's call over TLS");
    // bob's last hop is TLS even though carol's first hop is UDP.
    assert_verified(&security, &env.domain);
    bob.answer(call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    assert!(
        carol
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallAnswered { call, security, .. }
                    if *call == call_c && security.transport == Transport::Udp)
                .then_some(())
            })
            .await
            .is_some(),
        "carol's answer came over UDP"
    );
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallConfirmed { call } if *call == call_b).then_some(())
        })
        .await
        .is_some()
    );
    bob.bye(call_b)
        .expect("BYE stays on TLS: no downgrade error");
    assert!(
        carol
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_c)
                    .then_some(())
            })
            .await
            .is_some(),
        "bob's BYE crossed Kamailio TLS -> UDP"
    );
    carol.shutdown(WAIT).await;
    bob.shutdown(WAIT).await;
}

/// A [`Client`] for `user` in `domain` at the TLS listener with the given transports.
async fn client_with(env: &Env, domain: &str, user: &str, tc: TransportConfig) -> Client {
    let mut c = EndpointConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    c.account = Some(Account::tls(
        Uri::parse(&format!("sip:{user}@{domain}")).expect("aor"),
        user,
        format!("{user}-secret"),
        env.server,
    ));
    Client::start_with(c, Some(tc)).await.expect("transports")
}

/// REGISTERs and returns the typed transport cause the application saw before
/// `RegistrationFailed` (which must be a 503); panics on a registration.
async fn register_transport_failure(c: &mut Client, server: SocketAddr) -> TransportFailure {
    c.register().expect("register");
    let mut cause = None;
    let status = c
        .wait_for(WAIT, |e| match e {
            SipEvent::TransportFailed {
                request: FailedRequest::Register,
                target,
                error,
                ..
            } => {
                assert_eq!(*target, Target::new(Transport::Tls, server));
                cause = Some(error.clone());
                None
            }
            SipEvent::RegistrationFailed { status, .. } => Some(*status),
            SipEvent::Registered { .. } => panic!("registered despite the TLS failure"),
            _ => None,
        })
        .await
        .expect("REGISTER fails");
    assert_eq!(
        status, 503,
        "a transport failure is a 503 (RFC 3261 §8.1.3.1)"
    );
    cause.expect("TransportFailed came before RegistrationFailed")
}

/// The Mozilla roots do not include the test CA: a `Client` user learns that the
/// certificate is not trusted, not just "503 Service Unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sees_an_untrusted_certificate() {
    let Some(env) = env() else {
        eprintln!("skipping: CUSAX_KAMAILIO_TLS / CUSAX_SIP_DOMAIN / CUSAX_CA_CERT not set");
        return;
    };
    // Kamailio's certificate, presented by a stand-in (see `common::tls_stand_in`).
    let server = common::tls_stand_in(std::path::Path::new(&env.ca)).await;
    let env = Env { server, ..env };
    let mut alice = client_with(&env, &env.domain, "alice", TransportConfig::default()).await;
    let cause = register_transport_failure(&mut alice, env.server).await;
    assert!(
        matches!(&cause, TransportFailure::CertificateUntrusted { detail } if detail.contains("UnknownIssuer")),
        "{cause:?}"
    );
    assert!(cause.is_certificate_error());
    // No plaintext retry and no late registration.
    assert!(
        alice
            .wait_for(Duration::from_millis(1500), |e| {
                matches!(e, SipEvent::Registered { .. }).then_some(())
            })
            .await
            .is_none()
    );
}

/// The right CA, but a domain the certificate does not cover (the endpoint checks the
/// account's domain, RFC 5922 §7.2): the cause is a name mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sees_a_certificate_name_mismatch() {
    let Some(env) = env() else {
        eprintln!("skipping: CUSAX_KAMAILIO_TLS / CUSAX_SIP_DOMAIN / CUSAX_CA_CERT not set");
        return;
    };
    let server = common::tls_stand_in(std::path::Path::new(&env.ca)).await;
    let env = Env { server, ..env };
    let mut alice = client_with(
        &env,
        "not-cusax.invalid",
        "alice",
        TransportConfig::tls_with_ca_file(&env.ca),
    )
    .await;
    let cause = register_transport_failure(&mut alice, env.server).await;
    assert!(
        matches!(cause, TransportFailure::CertificateNameMismatch { .. }),
        "{cause:?}"
    );
}
