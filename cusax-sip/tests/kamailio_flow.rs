//! The registration flow against a real Kamailio (RFC 5626 §3.5.1, §4.4.1): dave
//! registers over TCP through a relay in this test; Kamailio answers our CRLFCRLF
//! keep-alive pings with CRLF pongs; then the relay silently drops the connection (as a
//! NAT that forgot the binding: no FIN, no RST, nothing forwarded any more). dave's
//! driver notices the missing pong, the endpoint re-registers over a new connection, and
//! alice's call through Kamailio still reaches dave. Needs `CUSAX_KAMAILIO_UDP`,
//! `CUSAX_KAMAILIO_TCP` and `CUSAX_SIP_DOMAIN`; skips when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::driver::TransportConfig;
use cusax_sip::endpoint::{Account, CallOptions, EndedBy, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
const ANSWER: &[u8] = b"v=0\r\no=dave 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";

fn account(user: &str, domain: &str, server: Target) -> Account {
    Account {
        aor: Uri::parse(&format!("sip:{user}@{domain}")).expect("aor"),
        display_name: None,
        username: user.to_owned(),
        password: format!("{user}-secret"),
        registrar: server,
        outbound_proxy: Some(server),
        expires: 120,
    }
}

/// What the relay saw, and the switch that silences the connections it has.
#[derive(Default)]
struct Relay {
    /// Reads from the client that were exactly a CRLFCRLF ping.
    pings: AtomicUsize,
    /// Reads from Kamailio that were exactly a CRLF pong.
    pongs: AtomicUsize,
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Connections numbered below this forward nothing any more (but stay open).
    silenced_below: AtomicUsize,
}

/// A TCP relay to `server`: every connection accepted is paired with a new connection
/// to `server`, bytes are copied both ways until the connection is silenced.
async fn relay(server: SocketAddr) -> (SocketAddr, Arc<Relay>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = listener.local_addr().expect("addr");
    let state = Arc::new(Relay::default());
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(upstream) = TcpStream::connect(server).await else {
                return;
            };
            let id = st.accepted.fetch_add(1, Ordering::SeqCst);
            let (cr, cw) = client.into_split();
            let (ur, uw) = upstream.into_split();
            tokio::spawn(pump(cr, uw, id, st.clone(), true));
            tokio::spawn(pump(ur, cw, id, st.clone(), false));
        }
    });
    (at, state)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    id: usize,
    st: Arc<Relay>,
    from_client: bool,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if id < st.silenced_below.load(Ordering::SeqCst) {
            continue; // lost, as behind a NAT that forgot the binding
        }
        let chunk = &buf[..n];
        if from_client && chunk == b"\r\n\r\n" {
            st.pings.fetch_add(1, Ordering::SeqCst);
        }
        if !from_client && chunk == b"\r\n" {
            st.pongs.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}

async fn registered(c: &mut Client) {
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
async fn a_lost_tcp_flow_is_detected_and_replaced() {
    let (Some(udp), Some(tcp), Ok(domain)) = (
        std::env::var("CUSAX_KAMAILIO_UDP")
            .ok()
            .and_then(|s| s.parse::<SocketAddr>().ok()),
        std::env::var("CUSAX_KAMAILIO_TCP")
            .ok()
            .and_then(|s| s.parse::<SocketAddr>().ok()),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_UDP / CUSAX_KAMAILIO_TCP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let (hop, relay) = relay(tcp).await;

    // dave: over TCP through the relay, pinging every 200 ms.
    let mut cfg = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Tcp);
    cfg.account = Some(account("dave", &domain, Target::new(Transport::Tcp, hop)));
    let tc = TransportConfig {
        tcp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        tls: None,
        keepalive_interval: Some(Duration::from_millis(200)),
        keepalive_pong_timeout: Duration::from_secs(2),
        ..TransportConfig::default()
    };
    let mut dave = Client::start_with(cfg, Some(tc)).await.expect("bind");
    dave.register().expect("register");
    registered(&mut dave).await;

    // Kamailio answers the pings (RFC 5626 §3.5.1): after two timely pongs the driver
    // counts it as a peer whose silence means a dead flow. A third pong seen by the relay
    // means dave has read the first two (they were forwarded a ping interval earlier).
    let end = tokio::time::Instant::now() + WAIT;
    while relay.pongs.load(Ordering::SeqCst) < 3 {
        assert!(
            tokio::time::Instant::now() < end,
            "no pong from Kamailio after {} pings",
            relay.pings.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 1);

    // The binding is lost silently: nothing crosses the old connection any more.
    relay.silenced_below.store(1, Ordering::SeqCst);
    let lost = dave
        .wait_for(Duration::from_secs(30), |e| match e {
            SipEvent::RegistrationFlowLost { target, error, .. } => {
                Some((*target, error.to_string()))
            }
            _ => None,
        })
        .await
        .expect("the lost flow is noticed");
    assert_eq!(lost.0, Target::new(Transport::Tcp, hop));
    assert!(lost.1.contains("pong"), "{}", lost.1);
    registered(&mut dave).await;
    assert_eq!(
        relay.accepted.load(Ordering::SeqCst),
        2,
        "re-registered over a new connection"
    );

    // alice (UDP, straight to Kamailio) calls dave: the call finds the new flow.
    let mut acfg = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Udp);
    acfg.account = Some(account("alice", &domain, Target::new(Transport::Udp, udp)));
    let mut alice = Client::start(acfg).await.expect("bind");
    let dave_uri = Uri::parse(&format!("sip:dave@{domain}")).expect("uri");
    let call_a = alice
        .invite(dave_uri, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let call_d = dave
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .await
        .expect("dave gets the call over the new connection");
    dave.answer(call_d, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    let answered = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, .. } if *call == call_a => Some(Ok(())),
            SipEvent::CallFailed { status, .. } => Some(Err(*status)),
            _ => None,
        })
        .await;
    assert_eq!(answered, Some(Ok(())));
    alice.bye(call_a).expect("bye");
    assert!(
        dave.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_d)
                .then_some(())
        })
        .await
        .is_some(),
        "alice's BYE reaches dave"
    );
    alice.shutdown(WAIT).await;
    dave.shutdown(WAIT).await;
}
