//! Multi-user chat against a real Prosody (scripts/interop-up.sh): two clients join
//! `cusax-room@conference.cusax.test` (XEP-0045), see each other, exchange groupchat
//! messages, invite a third user through the room, read the room's disco#info with the RFC 7081 §4 `audio-video-uri`
//! (`sip:cusax-room@cusax.test`), and see each other leave.
//!
//! Skips when CUSAX_XMPP_ADDR / CUSAX_XMPP_DOMAIN / CUSAX_CA_CERT / CUSAX_XMPP_ROOM (or
//! CUSAX_XMPP_MUC) are absent.
#![cfg(feature = "driver")]

use std::time::Duration;

use cusax_xmpp::disco::{self, DiscoInfo};
use cusax_xmpp::driver::{Client, ClientConfig, EventStream};
use cusax_xmpp::muc::{self, History, MucEvent, MucRoom, Role, RoomInfo, RoomState};
use cusax_xmpp::session::{SessionConfig, XmppEvent};
use cusax_xmpp::stanza::{Iq, IqType, Message, Presence};
use cusax_xmpp::xml::element::Element;
use jid::{BareJid, Jid};
use tokio::time::{Instant, timeout_at};

struct Env {
    addr: String,
    domain: String,
    ca: String,
    room: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let room =
        get("CUSAX_XMPP_ROOM").or_else(|| get("CUSAX_XMPP_MUC").map(|m| format!("cusax-room@{m}")));
    let (Some(addr), Some(domain), Some(ca), Some(room)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_CA_CERT"),
        room,
    ) else {
        eprintln!(
            "skipping: CUSAX_XMPP_ADDR/CUSAX_XMPP_DOMAIN/CUSAX_CA_CERT/CUSAX_XMPP_MUC not set (source .interop/env)"
        );
        return None;
    };
    Some(Env {
        addr,
        domain,
        ca,
        room,
    })
}

struct Peer {
    client: Client,
    events: EventStream,
    jid: jid::FullJid,
    room: MucRoom,
    seen: Vec<MucEvent>,
    iqs: Vec<Iq>,
    messages: Vec<Message>,
}

impl Peer {
    async fn login(env: &Env, user: &str, nick: &str) -> Peer {
        let bare = BareJid::new(&format!("{user}@{}", env.domain)).expect("jid");
        let mut s = SessionConfig::new(bare.clone(), format!("{user}-secret"));
        s.resource = Some(format!("muc-{}", std::process::id()));
        let mut c = ClientConfig::new(s);
        c.server = Some(env.addr.clone());
        c.ca_cert = Some(env.ca.clone().into());
        c.connect_timeout = Duration::from_secs(20);
        let (client, mut events) = Client::connect(c).await.expect("login");
        let jid = match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Online { jid, .. })) => jid,
            other => panic!("{bare}: expected Online, got {other:?}"),
        };
        let room = MucRoom::new(BareJid::new(&env.room).expect("room jid"), nick);
        Peer {
            client,
            events,
            jid,
            room,
            seen: Vec::new(),
            iqs: Vec::new(),
            messages: Vec::new(),
        }
    }

    async fn send(&self, e: impl Into<Element>) {
        self.client.send(e.into()).await.expect("send");
    }

    /// Feeds stanzas to the room until `done` holds for the events seen so far.
    async fn until(&mut self, what: &str, done: impl Fn(&Peer) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            match timeout_at(deadline, self.events.next_event()).await {
                Ok(Some(XmppEvent::Stanza(e))) => match e.name.as_str() {
                    "presence" => {
                        let p = Presence::try_from(e).expect("presence parses");
                        let ev = self.room.handle_presence(&p);
                        self.seen.extend(ev);
                    }
                    "message" => {
                        let m = Message::try_from(e).expect("message parses");
                        let ev = self.room.handle_message(&m);
                        self.seen.extend(ev);
                        self.messages.push(m);
                    }
                    "iq" => self.iqs.push(Iq::try_from(e).expect("iq parses")),
                    _ => {}
                },
                other => panic!(
                    "{}: waiting for {what}: {other:?}; events so far {:?}",
                    self.room.nick, self.seen
                ),
            }
        }
    }

    fn got_message(&self, from: &str, body: &str) -> bool {
        self.seen.iter().any(|e| {
            matches!(e, MucEvent::Message { nick: Some(n), body: b, .. } if n == from && b == body)
        })
    }
}

#[tokio::test]
async fn two_clients_chat_in_the_cusax_room() {
    let Some(env) = env() else { return };
    let pid = std::process::id();
    let (na, nb) = (format!("alice-{pid}"), format!("bob-{pid}"));
    let mut alice = Peer::login(&env, "alice", &na).await;
    let mut bob = Peer::login(&env, "bob", &nb).await;
    let room = alice.room.room.clone();

    // Room information first (XEP-0045 §6.4, RFC 7081 §4).
    alice
        .send(disco::info_query("d1", Jid::from(room.clone()), None))
        .await;
    alice
        .until("disco#info result", |p| p.iqs.iter().any(|i| i.id == "d1"))
        .await;
    let res = alice
        .iqs
        .iter()
        .find(|i| i.id == "d1")
        .cloned()
        .expect("result");
    assert_eq!(
        res.kind,
        IqType::Result,
        "disco#info failed: {:?}",
        res.error
    );
    let info =
        DiscoInfo::from_element(res.payload.as_ref().expect("query")).expect("valid disco#info");
    assert!(info.has_feature(muc::NS_MUC), "{:?}", info.features);
    let ri = RoomInfo::from_disco(&info);
    // The interop room advertises sip:<room node>@<SIP domain> (= sip:cusax-room@cusax.test).
    let node = room
        .node()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let want = format!("sip:{node}@{}", env.domain);
    assert_eq!(
        ri.audio_video_uri.as_deref(),
        Some(want.as_str()),
        "{info:?}"
    );
    if env.room == "cusax-room@conference.cusax.test" {
        assert_eq!(
            ri.audio_video_uri.as_deref(),
            Some("sip:cusax-room@cusax.test")
        );
    }

    // Alice joins, then Bob.
    alice
        .send(
            alice
                .room
                .join_presence(None, Some(&History::none()))
                .expect("join"),
        )
        .await;
    alice
        .until("own join", |p| p.room.state == RoomState::Joined)
        .await;
    assert!(
        alice
            .seen
            .iter()
            .any(|e| matches!(e, MucEvent::Joined { nick, .. } if *nick == na))
    );
    bob.send(
        bob.room
            .join_presence(None, Some(&History::none()))
            .expect("join"),
    )
    .await;
    bob.until("own join", |p| p.room.state == RoomState::Joined)
        .await;
    assert!(
        bob.room.occupant(&na).is_some(),
        "bob sees alice in the room"
    );
    alice
        .until("bob joining", |p| p.room.occupant(&nb).is_some())
        .await;
    assert!(
        alice
            .seen
            .iter()
            .any(|e| matches!(e, MucEvent::OccupantJoined(o) if o.nick == nb))
    );
    let me = bob.room.occupant(&nb).expect("bob's own occupant");
    assert_ne!(me.role, Role::None);

    // Groupchat both ways (the room reflects each message to everyone, sender included).
    alice.send(muc::groupchat(&room, "hello from alice")).await;
    bob.until("alice's groupchat", |p| {
        p.got_message(&na, "hello from alice")
    })
    .await;
    bob.send(muc::groupchat(&room, "hello from bob")).await;
    alice
        .until("bob's groupchat", |p| p.got_message(&nb, "hello from bob"))
        .await;
    alice
        .until("own reflected groupchat", |p| {
            p.got_message(&na, "hello from alice")
        })
        .await;

    // Alice invites Carol through the room (XEP-0045 §7.8.2).
    let mut carol = Peer::login(&env, "carol", &format!("carol-{pid}")).await;
    // Addressed to her full JID: a bare JID could be routed to another of her resources.
    carol
        .send(cusax_xmpp::presence::available(None, None, 0))
        .await;
    alice
        .send(muc::invite(
            &room,
            &Jid::from(carol.jid.clone()),
            Some("join the call"),
        ))
        .await;
    carol
        .until("invitation", |p| {
            p.messages
                .iter()
                .any(|m| matches!(muc::Invite::from_message(m), Ok(Some(_))))
        })
        .await;
    let inv = carol
        .messages
        .iter()
        .find_map(|m| muc::Invite::from_message(m).ok().flatten())
        .expect("invitation");
    assert!(inv.mediated);
    assert_eq!(inv.room, room);
    assert_eq!(inv.reason.as_deref(), Some("join the call"));
    // The inviter: her real JID, or (Prosody, semi-anonymous room) her occupant JID.
    let from = inv.from.clone().expect("inviter");
    let occupant = Jid::from(room.with_resource_str(&na).expect("occupant jid"));
    assert!(
        from.to_bare().as_str() == format!("alice@{}", env.domain) || from == occupant,
        "inviter {from}"
    );
    carol.client.close().await.expect("close");

    // Bob leaves; Alice sees it.
    bob.send(muc::leave(&room, &nb, Some("bye")).expect("leave"))
        .await;
    bob.until("own leave", |p| p.room.state == RoomState::Left)
        .await;
    alice
        .until("bob leaving", |p| p.room.occupant(&nb).is_none())
        .await;
    assert!(
        alice
            .seen
            .iter()
            .any(|e| matches!(e, MucEvent::OccupantLeft { occupant, .. } if occupant.nick == nb))
    );
    alice
        .send(muc::leave(&room, &na, None).expect("leave"))
        .await;
    alice
        .until("own leave", |p| p.room.state == RoomState::Left)
        .await;

    alice.client.close().await.expect("close");
    bob.client.close().await.expect("close");
}
