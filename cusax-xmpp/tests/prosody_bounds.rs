//! Bounded driver queues against a real Prosody (scripts/interop-up.sh): a full command
//! queue hands the stanza back to the caller instead of growing, and a small event queue
//! loses nothing (the connection task waits for the application instead of buffering).
//!
//! Skips when CUSAX_XMPP_ADDR / CUSAX_XMPP_DOMAIN / CUSAX_CA_CERT are absent.
#![cfg(feature = "driver")]

use std::time::Duration;

use cusax_xmpp::driver::{Client, ClientConfig, ClientError, EventStream};
use cusax_xmpp::session::{SendError, SessionConfig, XmppEvent};
use cusax_xmpp::stanza::Message;
use cusax_xmpp::xml::element::Element;
use jid::{BareJid, FullJid, Jid};

struct Env {
    addr: String,
    domain: String,
    ca: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(domain), Some(ca)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_CA_CERT"),
    ) else {
        eprintln!(
            "skipping: CUSAX_XMPP_ADDR/CUSAX_XMPP_DOMAIN/CUSAX_CA_CERT not set (source .interop/env)"
        );
        return None;
    };
    Some(Env { addr, domain, ca })
}

async fn login(
    env: &Env,
    user: &str,
    tag: &str,
    queues: (usize, usize),
) -> (Client, EventStream, FullJid) {
    login_with(env, user, tag, queues, |_| {}).await
}

async fn login_with(
    env: &Env,
    user: &str,
    tag: &str,
    queues: (usize, usize),
    tune: impl FnOnce(&mut SessionConfig),
) -> (Client, EventStream, FullJid) {
    let bare = BareJid::new(&format!("{user}@{}", env.domain)).expect("jid");
    let mut s = SessionConfig::new(bare.clone(), format!("{user}-secret"));
    s.resource = Some(format!("bounds-{tag}-{}", std::process::id()));
    tune(&mut s);
    let mut c = ClientConfig::new(s);
    c.server = Some(env.addr.clone());
    c.ca_cert = Some(env.ca.clone().into());
    c.connect_timeout = Duration::from_secs(20);
    c.command_queue = queues.0;
    c.event_queue = queues.1;
    let (client, mut events) = Client::connect(c).await.expect("login");
    let jid = match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
        Ok(Some(XmppEvent::Online { jid, .. })) => jid,
        other => panic!("{bare}: expected Online, got {other:?}"),
    };
    (client, events, jid)
}

/// `#[tokio::test]` runs on one thread: the connection task cannot drain the command
/// queue while this test sends without awaiting anything that yields.
#[tokio::test]
async fn full_command_queue_hands_the_stanza_back_and_small_event_queue_loses_nothing() {
    let Some(env) = env() else { return };
    let (client, mut events, me) = login(&env, "dave", "q", (4, 2)).await;
    let to_me = Jid::from(me.clone());
    let mut accepted = Vec::new();
    let mut refused = None;
    for n in 0..20 {
        let m = Message::chat(to_me.clone(), format!("n{n}")).with_id(format!("b{n}"));
        match client.send(Element::from(m)).await {
            Ok(()) => accepted.push(format!("n{n}")),
            Err(ClientError::QueueFull(el)) => {
                refused = Some(*el);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted.len(), 4, "the queue holds exactly its capacity");
    let refused = refused.expect("the fifth send is refused");
    assert_eq!(
        refused.attr("id"),
        Some("b4"),
        "the refused stanza comes back"
    );
    // The messages come back to us through an event queue of 2: all of them, in order.
    let mut got = Vec::new();
    while got.len() < accepted.len() {
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Stanza(e))) if e.name == "message" => {
                let m = Message::try_from(e).expect("message");
                got.extend(m.body().map(str::to_owned));
            }
            Ok(Some(XmppEvent::Stanza(_))) => {}
            other => panic!("expected our messages back, got {other:?}"),
        }
    }
    assert_eq!(got, accepted);
    client.close().await.expect("close");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Disconnected { error: None, .. })) => break,
            Ok(Some(XmppEvent::Undelivered(v))) => panic!("undelivered {}", v.len()),
            Ok(Some(_)) => {}
            other => panic!("expected a clean close, got {other:?}"),
        }
    }
}

/// `close` must not wait behind a full command queue while the connection task is
/// itself waiting for the application to read events.
#[tokio::test]
async fn close_does_not_wait_behind_full_queues() {
    let Some(env) = env() else { return };
    let (client, mut events, me) = login(&env, "dave", "c", (2, 1)).await;
    let to_me = Jid::from(me.clone());
    let send = |n: u32| {
        Element::from(Message::chat(to_me.clone(), format!("c{n}")).with_id(format!("c{n}")))
    };
    client.send(send(0)).await.expect("queued");
    client.send(send(1)).await.expect("queued");
    // The task sends them; the echoes fill the event queue (capacity 1) and the task
    // then waits for us.
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.send(send(2)).await.expect("queued");
    client.send(send(3)).await.expect("queued");
    assert!(matches!(
        client.send(send(4)).await,
        Err(ClientError::QueueFull(_))
    ));
    tokio::time::timeout(Duration::from_secs(2), client.close())
        .await
        .expect("close returns at once")
        .expect("connected");
    let mut saw = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Disconnected { .. })) => break,
            Ok(Some(XmppEvent::Stanza(e))) => saw.extend(e.attr("id").map(str::to_owned)),
            Ok(Some(XmppEvent::Undelivered(v))) => {
                saw.extend(v.iter().filter_map(|e| e.attr("id").map(str::to_owned)))
            }
            Ok(Some(_)) => {}
            other => panic!("expected the session to end, got {other:?}"),
        }
    }
    assert!(saw.contains(&"c0".to_owned()), "{saw:?}");
}

/// With a tiny XEP-0198 unacked queue, a burst is either delivered or handed back as
/// `SendFailed` (back-pressure): every stanza is accounted for, none vanishes.
#[tokio::test]
async fn sm_backpressure_hands_stanzas_back_through_the_driver() {
    let Some(env) = env() else { return };
    let (client, mut events, me) = login_with(&env, "dave", "bp", (64, 64), |s| {
        s.sm_limits = cusax_xmpp::sm::SmLimits {
            request_ack_at: 1,
            max_unacked: 1,
        };
    })
    .await;
    let to_me = Jid::from(me.clone());
    let total = 20;
    for n in 0..total {
        let m = Message::chat(to_me.clone(), format!("p{n}")).with_id(format!("p{n}"));
        client.send(Element::from(m)).await.expect("queued");
    }
    let (mut delivered, mut refused) = (Vec::new(), Vec::new());
    while delivered.len() + refused.len() < total {
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Stanza(e))) if e.name == "message" => {
                delivered.extend(e.attr("id").map(str::to_owned))
            }
            Ok(Some(XmppEvent::SendFailed(err))) => {
                assert!(matches!(err, SendError::Backpressure { .. }), "{err}");
                refused.extend(err.stanza().attr("id").map(str::to_owned));
            }
            Ok(Some(XmppEvent::Stanza(_))) => {}
            other => panic!(
                "expected our messages or refusals, got {other:?} after {delivered:?} / {refused:?}"
            ),
        }
    }
    eprintln!(
        "burst of {total} with max_unacked=1: {} delivered, {} handed back",
        delivered.len(),
        refused.len()
    );
    let mut all: Vec<String> = delivered.into_iter().chain(refused).collect();
    all.sort();
    let mut want: Vec<String> = (0..total).map(|n| format!("p{n}")).collect();
    want.sort();
    assert_eq!(all, want, "each stanza exactly once");
    client.close().await.expect("close");
}
