//! XEP-0198 resumption against a real Prosody (mod_smacks): alice connects through a TCP
//! relay that the test severs midway; bob connects directly. Each sends the other 1,000
//! numbered messages; after alice resumes, both must have received all 1,000 exactly once
//! and in order. Skips when the interop environment is absent.
//!
//! Senders are paced at about 200 stanzas/s: Prosody's mod_smacks keeps at most 500
//! unacked stanzas for a hibernating session (`smacks_max_queue_size`) and refuses
//! resumption beyond that, which would (correctly) surface as `Undelivered`.
#![cfg(feature = "driver")]

use std::sync::Arc;
use std::time::Duration;

use cusax_xmpp::driver::{Client, ClientConfig, EventStream};
use cusax_xmpp::session::{SessionConfig, XmppEvent};
use cusax_xmpp::xml::element::Element;
use jid::BareJid;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

const N: u32 = 1000;

/// A TCP relay to `target` whose live connections can be cut.
struct Relay {
    addr: String,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr").to_string();
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let p = pipes.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let h = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                p.lock().await.push(h);
            }
        });
        Relay { addr, pipes }
    }

    /// Drops every relayed connection (both sockets close at once).
    async fn sever(&self) {
        for h in self.pipes.lock().await.drain(..) {
            h.abort();
        }
    }
}

fn config(server: &str, ca: &str, user: &str, domain: &str) -> ClientConfig {
    let mut s = SessionConfig::new(
        BareJid::new(&format!("{user}@{domain}")).expect("jid"),
        format!("{user}-secret"),
    );
    s.resource = Some(format!(
        "sm-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    s.stream_management = true;
    let mut c = ClientConfig::new(s);
    c.server = Some(server.to_owned());
    c.ca_cert = Some(ca.into());
    c
}

fn message(to: &str, n: u32) -> Element {
    Element::new("message", "jabber:client")
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", format!("sm-{n}"))
        .with_child(Element::new("body", "jabber:client").with_text(n.to_string()))
}

fn body_number(el: &Element, from_prefix: &str) -> Option<u32> {
    if el.name != "message" || !el.attr("from").is_some_and(|f| f.starts_with(from_prefix)) {
        return None;
    }
    el.child("body", "jabber:client")?.text().parse().ok()
}

async fn online_jid(events: &mut EventStream) -> String {
    match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
        Ok(Some(XmppEvent::Online { jid, security })) => {
            assert!(security.sm_enabled, "stream management must be on");
            jid.to_string()
        }
        other => panic!("expected Online, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_cut_delivers_everything_exactly_once() {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(domain), Some(ca)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_CA_CERT"),
    ) else {
        eprintln!("skipping: CUSAX_XMPP_ADDR/CUSAX_XMPP_DOMAIN/CUSAX_CA_CERT not set");
        return;
    };
    let relay = Relay::start(addr.clone()).await;
    let (alice, mut alice_ev) = Client::connect(config(&relay.addr, &ca, "alice", &domain))
        .await
        .expect("alice login");
    let (bob, mut bob_ev) = Client::connect(config(&addr, &ca, "bob", &domain))
        .await
        .expect("bob login");
    let alice_jid = online_jid(&mut alice_ev).await;
    let bob_jid = online_jid(&mut bob_ev).await;
    let alice = Arc::new(alice);
    let bob = Arc::new(bob);

    // Senders, paced so that the cut happens midway.
    let a = alice.clone();
    let to_bob = bob_jid.clone();
    let alice_sender = tokio::spawn(async move {
        for n in 0..N {
            a.send(message(&to_bob, n)).await.expect("alice send");
            if n % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let b = bob.clone();
    let to_alice = alice_jid.clone();
    let bob_sender = tokio::spawn(async move {
        for n in 0..N {
            b.send(message(&to_alice, n)).await.expect("bob send");
            if n % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Bob's receiver.
    let bob_prefix = format!("alice@{domain}");
    let bob_rx = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < N as usize {
            match tokio::time::timeout(Duration::from_secs(60), bob_ev.next_event()).await {
                Ok(Some(XmppEvent::Stanza(el))) => {
                    if let Some(n) = body_number(&el, &bob_prefix) {
                        got.push(n);
                    }
                }
                Ok(Some(XmppEvent::Undelivered(v))) => panic!("bob: undelivered {}", v.len()),
                Ok(Some(_)) => {}
                other => panic!("bob: {other:?} after {} messages", got.len()),
            }
        }
        // Anything more would be a duplicate.
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_secs(2), bob_ev.next_event()).await
        {
            if let XmppEvent::Stanza(el) = ev
                && let Some(n) = body_number(&el, &bob_prefix)
            {
                got.push(n);
            }
        }
        got
    });

    // Alice's receiver: cut the relay after 300 messages, reconnect and resume.
    let alice_prefix = format!("bob@{domain}");
    let mut got = Vec::new();
    let mut cut = false;
    let mut resumed = false;
    while got.len() < N as usize {
        let ev = tokio::time::timeout(Duration::from_secs(60), alice_ev.next_event())
            .await
            .unwrap_or_else(|_| panic!("alice stalled after {} messages", got.len()))
            .expect("alice events");
        match ev {
            XmppEvent::Stanza(el) => {
                if let Some(n) = body_number(&el, &alice_prefix) {
                    got.push(n);
                }
                if !cut && got.len() == 300 {
                    cut = true;
                    eprintln!("severing alice's connection after {} messages", got.len());
                    relay.sever().await;
                }
            }
            XmppEvent::Disconnected { by, error } => {
                eprintln!("alice disconnected ({by:?}, {error:?}); resuming");
                assert!(cut, "unexpected disconnect");
                alice.reconnect().await.expect("reconnect");
            }
            XmppEvent::SmResumed { .. } => resumed = true,
            XmppEvent::Undelivered(v) => panic!("alice: undelivered {}", v.len()),
            _ => {}
        }
    }
    while let Ok(Some(ev)) =
        tokio::time::timeout(Duration::from_secs(2), alice_ev.next_event()).await
    {
        if let XmppEvent::Stanza(el) = ev
            && let Some(n) = body_number(&el, &alice_prefix)
        {
            got.push(n);
        }
    }
    alice_sender.await.expect("alice sender");
    bob_sender.await.expect("bob sender");
    let bob_got = bob_rx.await.expect("bob receiver");
    assert!(cut && resumed, "the connection was cut and resumed");
    let expected: Vec<u32> = (0..N).collect();
    assert_eq!(
        got, expected,
        "alice received each of bob's messages once, in order"
    );
    assert_eq!(
        bob_got, expected,
        "bob received each of alice's messages once, in order"
    );
    let _ = alice.close().await;
    let _ = bob.close().await;
}
