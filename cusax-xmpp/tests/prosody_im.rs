//! Instant messaging against a real Prosody (scripts/interop-up.sh): roster with a
//! `both` subscription between alice and bob (RFC 6121 §3), presence seen both ways
//! (§4), chat messages both ways with delivery receipts (XEP-0184), reachability
//! addresses in presence and over PEP with +notify (XEP-0152, XEP-0115 caps).
//!
//! Skips when CUSAX_XMPP_ADDR / CUSAX_XMPP_DOMAIN / CUSAX_CA_CERT are absent.
//! Works on a fresh server and on one where the subscription already exists.
#![cfg(feature = "driver")]

use std::time::Duration;

use cusax_xmpp::disco::{DiscoInfo, Identity, NS_DISCO_INFO};
use cusax_xmpp::driver::{Client, ClientConfig, EventStream};
use cusax_xmpp::presence::{self, PresenceTracker};
use cusax_xmpp::reach::{NS_REACH, Reach, ReachAddr};
use cusax_xmpp::roster::{self, Roster, Subscription};
use cusax_xmpp::session::{SessionConfig, XmppEvent};
use cusax_xmpp::stanza::{Iq, IqType, Message, MessageType, Presence, PresenceType, Receipt, Show};
use cusax_xmpp::xml::element::Element;
use jid::{BareJid, FullJid, Jid};
use tokio::time::{Instant, timeout_at};

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

/// One logged-in user with its event stream.
struct Peer {
    client: Client,
    events: EventStream,
    jid: FullJid,
    roster: Roster,
    presences: PresenceTracker,
    next_id: u32,
    /// What this client answers to disco#info (XEP-0030), announced with caps (XEP-0115).
    info: DiscoInfo,
    /// Reachability PEP notifications received (XEP-0152 §4.2 via XEP-0163 +notify).
    reach_events: Vec<(Option<BareJid>, Reach)>,
}

const CAPS_NODE: &str = "https://github.com/cusax/cusax";

impl Peer {
    async fn login(env: &Env, user: &str) -> Peer {
        let bare = BareJid::new(&format!("{user}@{}", env.domain)).expect("jid");
        let info = DiscoInfo {
            identities: vec![Identity {
                category: "client".into(),
                kind: "pc".into(),
                lang: None,
                name: Some("cusax test".into()),
            }],
            features: vec![
                NS_DISCO_INFO.into(),
                "http://jabber.org/protocol/caps".into(),
                "urn:xmpp:receipts".into(),
                NS_REACH.into(),
                format!("{NS_REACH}+notify"),
            ],
            ..DiscoInfo::default()
        };
        let mut s = SessionConfig::new(bare, format!("{user}-secret"));
        s.resource = Some(format!("im-{}", std::process::id()));
        // The session announces caps on our presence and answers the server's
        // disco#info for node#ver itself (XEP-0115 §6.2).
        s.disco = info.clone();
        s.caps_node = CAPS_NODE.into();
        let mut c = ClientConfig::new(s);
        c.server = Some(env.addr.clone());
        c.ca_cert = Some(env.ca.clone().into());
        c.connect_timeout = Duration::from_secs(20);
        let (client, mut events) = Client::connect(c).await.expect("login");
        let jid = match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Online { jid, .. })) => jid,
            other => panic!("{user}: expected Online, got {other:?}"),
        };
        Peer {
            client,
            events,
            jid,
            roster: Roster::new(),
            presences: PresenceTracker::new(),
            next_id: 0,
            info,
            reach_events: Vec::new(),
        }
    }

    fn bare(&self) -> BareJid {
        self.jid.to_bare()
    }

    fn id(&mut self, p: &str) -> String {
        self.next_id += 1;
        format!("{p}-{}", self.next_id)
    }

    async fn send(&self, e: impl Into<Element>) {
        self.client.send(e.into()).await.expect("send");
    }

    /// Handles what every client must: roster pushes (validated, applied, acknowledged),
    /// presence tracking, and auto-approval of subscription requests.
    async fn absorb(&mut self, e: &Element) {
        if e.name == "iq"
            && let Ok(iq) = Iq::try_from(e.clone())
            && roster::is_push(&iq)
        {
            let push =
                roster::parse_push(&iq, &self.bare()).expect("valid roster push from own server");
            self.roster.apply_push(push);
            self.send(roster::push_ack(&iq)).await;
        } else if e.name == "iq"
            && let Ok(iq) = Iq::try_from(e.clone())
            && iq.kind == IqType::Get
            && iq.payload_is("query", NS_DISCO_INFO).is_some()
        {
            panic!("disco#info reached the application; the session answers it: {iq:?}");
        } else if e.name == "message"
            && let Ok(m) = Message::try_from(e.clone())
            && let Ok(Some(ev)) = Reach::from_pep_event(&m)
        {
            self.reach_events.push(ev);
        } else if e.name == "presence"
            && let Ok(p) = Presence::try_from(e.clone())
        {
            self.presences.handle(&p);
            if p.kind == PresenceType::Subscribe
                && let Some(from) = &p.from
            {
                self.send(presence::subscribed(from.to_bare())).await;
            }
        }
    }

    /// Waits for a stanza matching `pred`, absorbing everything on the way.
    async fn wait_for(
        &mut self,
        what: &str,
        secs: u64,
        mut pred: impl FnMut(&mut Peer, &Element) -> bool,
    ) -> Element {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match timeout_at(deadline, self.events.next_event()).await {
                Ok(Some(XmppEvent::Stanza(e))) => {
                    self.absorb(&e).await;
                    if pred(self, &e) {
                        return e;
                    }
                }
                Ok(Some(other)) => panic!(
                    "{}: unexpected event while waiting for {what}: {other:?}",
                    self.jid
                ),
                Ok(None) => panic!("{}: event stream ended while waiting for {what}", self.jid),
                Err(_) => panic!("{}: timed out waiting for {what}", self.jid),
            }
        }
    }

    /// Waits until the peer's state satisfies `cond` (checked before each read).
    async fn wait_until(&mut self, what: &str, secs: u64, cond: impl Fn(&Peer) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond(self) {
            match timeout_at(deadline, self.events.next_event()).await {
                Ok(Some(XmppEvent::Stanza(e))) => self.absorb(&e).await,
                Ok(Some(other)) => panic!(
                    "{}: unexpected event while waiting for {what}: {other:?}",
                    self.jid
                ),
                Ok(None) => panic!("{}: event stream ended while waiting for {what}", self.jid),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; presences: {:?}",
                    self.jid, self.presences
                ),
            }
        }
    }

    /// Processes whatever arrives within `ms` milliseconds.
    async fn pump(&mut self, ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(XmppEvent::Stanza(e))) =
            timeout_at(deadline, self.events.next_event()).await
        {
            self.absorb(&e).await;
        }
    }

    async fn fetch_roster(&mut self) {
        let id = self.id("roster");
        self.send(self.roster.request(id.clone(), false)).await;
        let res = self
            .wait_for("roster result", 10, |_, e| {
                e.name == "iq" && e.attr("id") == Some(id.as_str())
            })
            .await;
        let iq = Iq::try_from(res).expect("roster result parses");
        assert_eq!(iq.kind, IqType::Result, "roster get failed: {:?}", iq.error);
        self.roster
            .apply_result(&iq)
            .expect("roster result is valid");
    }

    fn subscription_with(&self, other: &BareJid) -> Subscription {
        self.roster
            .get(other)
            .map(|i| i.subscription)
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn roster_presence_and_messages_both_ways() {
    let Some(env) = env() else { return };
    let mut alice = Peer::login(&env, "alice").await;
    let mut bob = Peer::login(&env, "bob").await;
    let (a, b) = (alice.bare(), bob.bare());

    // Interested resources (RFC 6121 §2.1.6), then available.
    alice.fetch_roster().await;
    bob.fetch_roster().await;
    // Alice announces a reachability address in her presence (XEP-0152 §4.1); both
    // announce caps (XEP-0115) with `urn:xmpp:reach:0+notify`.
    let alice_sip = format!("sip:alice@{}", env.domain);
    let mut pa = presence::available(None, Some("alice here"), 1);
    Reach {
        addrs: vec![ReachAddr::new(alice_sip.clone())],
    }
    .add_to_presence(&mut pa);
    // No <c/> added here: the session adds it.
    alice.send(pa).await;
    let pb = presence::available(Some(Show::Chat), Some("bob here"), 2);
    bob.send(pb).await;

    // Start from no relationship at all (RFC 6121 §2.5: removing the item cancels both
    // subscriptions), so that the handshake below runs on every run.
    for (p, other) in [(&mut alice, b.clone()), (&mut bob, a.clone())] {
        if p.roster.get(&other).is_some() {
            let id = p.id("rm");
            p.send(roster::remove(id, &other)).await;
            p.wait_until("roster removal push", 10, |p| {
                p.roster.get(&other).is_none()
            })
            .await;
        }
    }
    tokio::join!(alice.pump(300), bob.pump(300));
    assert!(
        alice.roster.get(&b).is_none() && bob.roster.get(&a).is_none(),
        "removal"
    );

    // Mutual subscription: each asks; each approves what it is asked (in `absorb`).
    let deadline = Instant::now() + Duration::from_secs(20);
    {
        let mut item = cusax_xmpp::roster::RosterItem::new(b.clone());
        item.name = Some("Bob".into());
        item.groups = vec!["CUSAX".into()];
        let id = alice.id("set");
        alice.send(roster::set(id, &item)).await;
        alice.send(presence::subscribe(b.clone())).await;
        bob.send(presence::subscribe(a.clone())).await;
        while alice.subscription_with(&b) != Subscription::Both
            || bob.subscription_with(&a) != Subscription::Both
        {
            assert!(
                Instant::now() < deadline,
                "subscription did not reach both: alice→bob {:?}, bob→alice {:?}",
                alice.subscription_with(&b),
                bob.subscription_with(&a)
            );
            tokio::join!(alice.pump(200), bob.pump(200));
        }
    }
    // A fresh roster get agrees with the pushes.
    alice.fetch_roster().await;
    bob.fetch_roster().await;
    assert_eq!(alice.subscription_with(&b), Subscription::Both);
    assert_eq!(bob.subscription_with(&a), Subscription::Both);
    let item = alice.roster.get(&b).expect("bob in alice's roster");
    assert!(!item.ask, "no pending request left");
    assert_eq!(item.name.as_deref(), Some("Bob"));
    assert_eq!(item.groups, vec!["CUSAX".to_string()]);

    // Presence both ways (after a subscription change the server re-sends presence; if it
    // was already there, the initial presence exchange did it).
    let (bob_jid, alice_jid) = (bob.jid.clone(), alice.jid.clone());
    alice
        .wait_until("bob's presence", 15, |p| {
            p.presences.resources(&b).any(|r| r.jid == bob_jid)
        })
        .await;
    bob.wait_until("alice's presence", 15, |p| {
        p.presences.resources(&a).any(|r| r.jid == alice_jid)
    })
    .await;
    let best = alice.presences.best(&b).expect("bob available");
    assert_eq!(best.show, Some(Show::Chat));
    assert_eq!(best.status.as_deref(), Some("bob here"));
    assert_eq!(best.priority, 2);
    let seen = bob.presences.best(&a).expect("alice available");
    assert_eq!(seen.status.as_deref(), Some("alice here"));
    assert_eq!(seen.priority, 1);

    // Messages both ways, with a receipt.
    let mut m = Message::chat(Jid::from(bob.jid.clone()), "Hello Bob <&> ✓").with_id("msg-a1");
    m.receipt = Some(Receipt::Request);
    alice.send(m).await;
    let got = bob
        .wait_for("alice's message", 10, |_, e| {
            e.name == "message" && e.attr("id") == Some("msg-a1")
        })
        .await;
    let got = Message::try_from(got).expect("message parses");
    assert_eq!(got.kind, MessageType::Chat);
    assert_eq!(got.body(), Some("Hello Bob <&> ✓"));
    assert_eq!(got.from.as_ref().map(Jid::to_bare), Some(a.clone()));
    let receipt = got.receipt_reply().expect("receipt requested");
    bob.send(receipt).await;
    bob.send(Message::chat(Jid::from(a.clone()), "Hi Alice").with_id("msg-b1"))
        .await;

    let mut got_receipt = false;
    let mut got_reply = None;
    alice
        .wait_for("bob's receipt and reply", 10, |_, e| {
            if let Ok(m) = Message::try_from(e.clone()) {
                if m.receipt == Some(Receipt::Received(Some("msg-a1".into()))) {
                    got_receipt = true;
                }
                if m.id.as_deref() == Some("msg-b1") {
                    got_reply = m.body().map(str::to_owned);
                }
            }
            got_receipt && got_reply.is_some()
        })
        .await;
    assert_eq!(got_reply.as_deref(), Some("Hi Alice"));

    // Reachability: from alice's presence…
    assert_eq!(
        bob.presences
            .reach(&a)
            .iter()
            .map(|r| r.uri.as_str())
            .collect::<Vec<_>>(),
        vec![alice_sip.as_str()]
    );
    assert!(
        alice
            .presences
            .best(&b)
            .and_then(|r| r.caps.as_ref())
            .is_some_and(|c| c.verify(&alice.info))
    );
    // …and from her PEP node (XEP-0152 §4.2): published, fetched, and notified (+notify).
    let published = Reach {
        addrs: vec![
            ReachAddr {
                uri: alice_sip.clone(),
                descs: vec![(Some("en".into()), "Desk".into())],
            },
            ReachAddr::new("tel:+49301234567"),
        ],
    };
    let id = alice.id("reach");
    alice.send(published.publish(id.clone())).await;
    let res = alice
        .wait_for("reach publish result", 10, |_, e| {
            e.name == "iq" && e.attr("id") == Some(id.as_str())
        })
        .await;
    let res = Iq::try_from(res).expect("iq");
    assert_eq!(
        res.kind,
        IqType::Result,
        "reach publish failed: {:?}",
        res.error
    );
    let id = bob.id("reach");
    bob.send(Reach::fetch(id.clone(), Some(a.clone()))).await;
    let res = bob
        .wait_for("reach items", 10, |_, e| {
            e.name == "iq" && e.attr("id") == Some(id.as_str())
        })
        .await;
    let res = Iq::try_from(res).expect("iq");
    assert_eq!(
        res.kind,
        IqType::Result,
        "reach fetch failed: {:?}",
        res.error
    );
    let fetched =
        Reach::from_items_result(res.payload.as_ref().expect("pubsub")).expect("valid reach");
    assert_eq!(fetched, published);
    let a2 = a.clone();
    bob.wait_until("reach notification", 10, |p| {
        p.reach_events
            .iter()
            .any(|(from, r)| from.as_ref() == Some(&a2) && *r == published)
    })
    .await;

    // Going offline is seen by the contact.
    bob.send(presence::unavailable(None, Some("bye"))).await;
    alice
        .wait_until("bob's unavailable", 10, |p| {
            !p.presences.resources(&b).any(|r| r.jid == bob_jid)
        })
        .await;

    alice.client.close().await.expect("close");
    bob.client.close().await.expect("close");
}
