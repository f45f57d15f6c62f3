//! alice and bob registered to a real Kamailio over TLS (the default transport): REGISTER
//! with digest, a call alice → bob through the proxy, answer, BYE — every hop on TLS,
//! the certificate checked against the SIP domain. Needs `CUSAX_KAMAILIO_TLS`,
//! `CUSAX_SIP_DOMAIN` and `CUSAX_CA_CERT`; skips when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::driver::TransportConfig;
use cusax_sip::endpoint::{Account, CallOptions, EndedBy, EndpointConfig, SipEvent};
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

async fn register(c: &mut Client) -> SipEvent {
    c.register().expect("register");
    c.wait_for(WAIT, |e| match e {
        SipEvent::Registered { .. } => Some(e.clone()),
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
    register(&mut alice).await;
    register(&mut bob).await;

    let bob_uri = Uri::parse(&format!("sip:bob@{}", env.domain)).expect("uri");
    let call_a = alice
        .invite(bob_uri, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let call_b = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .await
        .expect("bob gets the call over TLS");
    bob.ring(call_b).expect("ring");
    bob.answer(call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    let answer = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, body, .. } if *call == call_a => Some(body.clone()),
            SipEvent::CallFailed { status, reason, .. } => panic!("call failed: {status} {reason}"),
            _ => None,
        })
        .await
        .expect("answered");
    assert_eq!(answer.as_ref(), ANSWER);
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
