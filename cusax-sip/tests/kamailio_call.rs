//! alice and bob registered through a real Kamailio: alice calls bob (INVITE with 407
//! digest, 180, 200, ACK), holds with a re-INVITE, hangs up; a second call is
//! cancelled while ringing; a third goes to bob registered over TCP and bob hangs up; a
//! fourth carries an offer too large for UDP, which alice sends over TCP (RFC 3261
//! §18.1.1). Needs `CUSAX_KAMAILIO_UDP` and `CUSAX_SIP_DOMAIN`; skips
//! when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::endpoint::{Account, CallOptions, EndedBy, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &[u8] = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n";
const HOLD: &[u8] = b"v=0\r\no=alice 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendonly\r\n";

fn config(user: &str, server: SocketAddr, domain: &str) -> EndpointConfig {
    // Plain UDP, chosen explicitly (TLS is the default).
    let mut c = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Udp);
    c.account = Some(Account {
        aor: Uri::parse(&format!("sip:{user}@{domain}")).expect("aor"),
        display_name: None,
        username: user.to_owned(),
        password: format!("{user}-secret"),
        registrar: Target::new(Transport::Udp, server),
        outbound_proxy: Some(Target::new(Transport::Udp, server)),
        expires: 120,
    });
    c
}

async fn register(c: &mut Client) {
    c.register().expect("register");
    let ok = c
        .wait_for(WAIT, |e| match e {
            SipEvent::Registered { .. } => Some(Ok(())),
            SipEvent::RegistrationFailed { status, reason } => {
                Some(Err(format!("{status} {reason}")))
            }
            _ => None,
        })
        .await;
    assert_eq!(ok, Some(Ok(())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_call_hold_bye_and_cancel() {
    let (Some(server), Ok(domain)) = (
        std::env::var("CUSAX_KAMAILIO_UDP")
            .ok()
            .and_then(|s| s.parse().ok()),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_UDP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let mut alice_cfg = config("alice", server, &domain);
    alice_cfg.call_info_impp = Some(format!("alice@{domain}"));
    let mut alice = Client::start(alice_cfg).await.expect("bind");
    let mut bob = Client::start(config("bob", server, &domain))
        .await
        .expect("bind");
    register(&mut alice).await;
    register(&mut bob).await;
    let bob_uri = Uri::parse(&format!("sip:bob@{domain}")).expect("uri");

    // --- call 1: INVITE (407 + retry), 180, 200, ACK, re-INVITE hold, BYE.
    let call_a = alice
        .invite(
            bob_uri.clone(),
            Bytes::from_static(OFFER),
            CallOptions::with_impp(),
        )
        .expect("invite");
    let call_b = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall {
                call,
                body,
                from,
                call_info,
                ..
            } => {
                assert_eq!(body.as_ref(), OFFER);
                assert_eq!(from.uri.user.as_deref(), Some("alice"));
                // Call-Info crosses the proxy unchanged (RFC 7081 §3.5).
                assert!(
                    call_info
                        .iter()
                        .any(|c| c.is_purpose("impp") && c.uri == "xmpp:alice@cusax.test"),
                    "{call_info:?}"
                );
                Some(*call)
            }
            _ => None,
        })
        .await
        .expect("bob gets the call");
    bob.ring(call_b).expect("ring");
    assert!(
        alice
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallRinging { call } if *call == call_a).then_some(())
            })
            .await
            .is_some()
    );
    bob.answer(call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    let answer = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, body, .. } if *call == call_a => Some(body.clone()),
            SipEvent::CallFailed { status, .. } => panic!("call failed: {status}"),
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
        "bob got the ACK through Kamailio"
    );

    alice
        .reinvite(call_a, Bytes::from_static(HOLD))
        .expect("hold");
    let offer = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::ReinviteReceived { call, body } if *call == call_b => Some(body.clone()),
            _ => None,
        })
        .await
        .expect("re-INVITE arrives");
    assert!(String::from_utf8_lossy(&offer).contains("a=sendonly"));
    bob.answer(call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer hold");
    let st = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::ReinviteCompleted { call, status, .. } if *call == call_a => Some(*status),
            _ => None,
        })
        .await;
    assert_eq!(st, Some(200));

    alice.bye(call_a).expect("bye");
    assert!(
        alice
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallEnded { call, by: EndedBy::Local } if *call == call_a)
                    .then_some(())
            })
            .await
            .is_some()
    );
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_b)
                .then_some(())
        })
        .await
        .is_some()
    );

    // --- call 2: cancelled while ringing.
    let call_a = alice
        .invite(bob_uri, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let call_b = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .await
        .expect("bob gets the second call");
    bob.ring(call_b).expect("ring");
    assert!(
        alice
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallRinging { call } if *call == call_a).then_some(())
            })
            .await
            .is_some()
    );
    alice.cancel(call_a).expect("cancel");
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallCancelled { call } if *call == call_b).then_some(())
        })
        .await
        .is_some(),
        "bob sees the CANCEL"
    );
    let end = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallCancelled { call } if *call == call_a => Some(487),
            SipEvent::CallFailed { call, status, .. } if *call == call_a => Some(*status),
            _ => None,
        })
        .await;
    assert_eq!(end, Some(487));

    // --- call 3: bob now over TCP (Kamailio bridges UDP and TCP: two Record-Route
    // entries, a route set of two hops for each side).
    bob.shutdown(WAIT).await;
    let mut cfg = config("bob", server, &domain);
    cfg.transport = Transport::Tcp;
    if let Some(acc) = cfg.account.as_mut() {
        acc.registrar = Target::new(Transport::Tcp, server);
        acc.outbound_proxy = Some(Target::new(Transport::Tcp, server));
    }
    let tc = cusax_sip::driver::TransportConfig {
        tcp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    };
    let mut bob = Client::start_with(cfg, Some(tc)).await.expect("bind");
    register(&mut bob).await;
    let bob_uri = Uri::parse(&format!("sip:bob@{domain}")).expect("uri");
    let call_a = alice
        .invite(bob_uri, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let call_b = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .await
        .expect("bob gets the call over TCP");
    bob.answer(call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    assert!(
        alice
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallAnswered { call, .. } if *call == call_a).then_some(())
            })
            .await
            .is_some()
    );
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallConfirmed { call } if *call == call_b).then_some(())
        })
        .await
        .is_some(),
        "ACK reaches bob over TCP"
    );
    // bob hangs up this time: his BYE crosses Kamailio TCP -> UDP.
    bob.bye(call_b).expect("bye");
    assert!(
        alice
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_a)
                    .then_some(())
            })
            .await
            .is_some()
    );
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Local } if *call == call_b)
                .then_some(())
        })
        .await
        .is_some()
    );

    // --- call 4: an offer too large for UDP (RFC 3261 §18.1.1): alice's INVITE,
    // addressed to Kamailio's UDP port, goes to the same port over TCP; the answer comes
    // back on that connection, and alice's BYE follows the route set.
    let large = large_offer();
    let bob_uri = Uri::parse(&format!("sip:bob@{domain}")).expect("uri");
    let call_a = alice
        .invite(bob_uri, Bytes::from(large.clone()), CallOptions::default())
        .expect("invite");
    let call_b = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, body, .. } => {
                assert_eq!(body.as_ref(), &large[..], "the large offer arrives whole");
                Some(*call)
            }
            _ => None,
        })
        .await
        .expect("bob gets the large call");
    bob.answer(call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    let hop = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, security, .. } if *call == call_a => {
                Some(security.transport)
            }
            SipEvent::CallFailed { status, .. } => panic!("large call failed: {status}"),
            _ => None,
        })
        .await;
    assert_eq!(hop, Some(Transport::Tcp), "the 2xx came back over TCP");
    alice.bye(call_a).expect("bye");
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_b)
                .then_some(())
        })
        .await
        .is_some(),
        "alice's BYE reaches bob"
    );

    alice.shutdown(WAIT).await;
    bob.shutdown(WAIT).await;
}

/// An SDP offer of more than 1,300 bytes: a video phone's many codecs.
fn large_offer() -> Vec<u8> {
    let mut sdp = String::from_utf8_lossy(OFFER).into_owned();
    for pt in 96..127 {
        sdp.push_str(&format!(
            "a=rtpmap:{pt} codec{pt}/90000\r\na=fmtp:{pt} profile-level-id=42e01f;packetization-mode=1\r\n"
        ));
    }
    assert!(sdp.len() > 1300);
    sdp.into_bytes()
}
