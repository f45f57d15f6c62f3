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
    Account, AnswerOptions, CallOptions, EndedBy, EndpointConfig, SignallingSecurity, SipEvent,
};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

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
    let server = Target::new(Transport::Tls, env.server);
    c.account = Some(Account {
        aor: Uri::parse(&format!("sip:{user}@{}", env.domain)).expect("aor"),
        display_name: None,
        username: user.to_owned(),
        password: format!("{user}-secret"),
        registrar: server,
        outbound_proxy: Some(server),
        expires: 120,
    });
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
    bob.shutdown(WAIT).await;
}
