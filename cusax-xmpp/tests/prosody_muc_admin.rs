//! MUC administration against a real Prosody (scripts/interop-up.sh, XEP-0045 §7.5, §8,
//! §9, §10): alice creates a fresh room, reads and submits its configuration form (moderated),
//! bob joins as a visitor, they exchange a private message, alice grants bob voice, reads
//! the voice list and revokes it again, makes bob a member and reads the member
//! list, kicks him (bob sees status 307), bans carol and reads the ban list, then destroys
//! the room.
//!
//! Skips when CUSAX_XMPP_ADDR / CUSAX_XMPP_DOMAIN / CUSAX_CA_CERT / CUSAX_XMPP_MUC are absent.
#![cfg(feature = "driver")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cusax_xmpp::driver::{Client, ClientConfig, EventStream};
use cusax_xmpp::muc::{self, Affiliation, MucEvent, MucRoom, status};
use cusax_xmpp::session::{SessionConfig, XmppEvent};
use cusax_xmpp::stanza::{Iq, IqType, Message, Presence};
use cusax_xmpp::xml::element::Element;
use jid::BareJid;
use tokio::time::{Instant, timeout_at};

struct Env {
    addr: String,
    domain: String,
    ca: String,
    muc: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(domain), Some(ca), Some(muc)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_CA_CERT"),
        get("CUSAX_XMPP_MUC"),
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
        muc,
    })
}

struct Peer {
    client: Client,
    events: EventStream,
    room: MucRoom,
    seen: Vec<MucEvent>,
    /// Presences from the room with their muc#user status codes.
    statuses: Vec<Vec<u16>>,
    iqs: Vec<Iq>,
    private: Vec<Message>,
}

impl Peer {
    async fn login(env: &Env, user: &str, room: &BareJid, nick: &str) -> Peer {
        let bare = BareJid::new(&format!("{user}@{}", env.domain)).expect("jid");
        let mut s = SessionConfig::new(bare.clone(), format!("{user}-secret"));
        s.resource = Some(format!("mucadmin-{}", std::process::id()));
        let mut c = ClientConfig::new(s);
        c.server = Some(env.addr.clone());
        c.ca_cert = Some(env.ca.clone().into());
        c.connect_timeout = Duration::from_secs(20);
        let (client, mut events) = Client::connect(c).await.expect("login");
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Online { .. })) => {}
            other => panic!("{bare}: expected Online, got {other:?}"),
        }
        Peer {
            client,
            events,
            room: MucRoom::new(room.clone(), nick),
            seen: Vec::new(),
            statuses: Vec::new(),
            iqs: Vec::new(),
            private: Vec::new(),
        }
    }

    async fn send(&self, e: impl Into<Element>) {
        self.client.send(e.into()).await.expect("send");
    }

    async fn until(&mut self, what: &str, done: impl Fn(&Peer) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            match timeout_at(deadline, self.events.next_event()).await {
                Ok(Some(XmppEvent::Stanza(e))) => match e.name.as_str() {
                    "presence" => {
                        let p = Presence::try_from(e).expect("presence parses");
                        if let Ok(Some(u)) = muc::MucUser::from_presence(&p) {
                            self.statuses.push(u.status.clone());
                        }
                        let ev = self.room.handle_presence(&p);
                        self.seen.extend(ev);
                    }
                    "message" => {
                        let m = Message::try_from(e).expect("message parses");
                        if muc::is_private_message(&m) {
                            self.private.push(m.clone());
                        }
                        let ev = self.room.handle_message(&m);
                        self.seen.extend(ev);
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

    /// Sends an iq and waits for its result (panics on an error answer).
    async fn request(&mut self, iq: Iq) -> Iq {
        let id = iq.id.clone();
        self.send(iq).await;
        self.until(&format!("answer to {id}"), |p| {
            p.iqs.iter().any(|i| i.id == id)
        })
        .await;
        let pos = self.iqs.iter().position(|i| i.id == id).expect("answer");
        let answer = self.iqs.remove(pos);
        assert_eq!(answer.kind, IqType::Result, "{id}: {:?}", answer.error);
        answer
    }
}

#[tokio::test]
async fn owner_configures_members_kicks_bans_and_destroys() {
    let Some(env) = env() else { return };
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let room = BareJid::new(&format!(
        "cusax-admin-{}-{unique}@{}",
        std::process::id(),
        env.muc
    ))
    .expect("room jid");
    let mut alice = Peer::login(&env, "alice", &room, "alice").await;

    // Create the room: the self-presence says 201 and the room stays locked until
    // configured (XEP-0045 §10.1).
    alice
        .send(
            alice
                .room
                .join_presence(None, Some(&muc::History::none()))
                .expect("join"),
        )
        .await;
    alice
        .until("room created", |p| {
            p.seen
                .iter()
                .any(|e| matches!(e, MucEvent::Joined { created: true, .. }))
        })
        .await;
    let answer = alice.request(muc::request_config("cfg1", &room)).await;
    let mut form = muc::parse_config_form(&answer).expect("configuration form");
    assert_eq!(form.form_type.as_deref(), Some(muc::FORM_ROOMCONFIG));
    assert!(
        form.field("muc#roomconfig_roomname").is_some(),
        "{:?}",
        form.fields
    );
    form.set_value("muc#roomconfig_roomname", "CUSAX admin test");
    form.set_value("muc#roomconfig_persistentroom", "0");
    // Moderated, so that voice can be revoked and granted below (XEP-0045 §8.3, §8.4).
    form.set_value("muc#roomconfig_moderatedroom", "1");
    alice
        .request(muc::submit_config("cfg2", &room, &form))
        .await;
    // The configuration took: read it back.
    let answer = alice.request(muc::request_config("cfg3", &room)).await;
    let form = muc::parse_config_form(&answer).expect("configuration form");
    assert_eq!(
        form.value("muc#roomconfig_roomname"),
        Some("CUSAX admin test")
    );

    // Bob joins; a private message each way through the room (XEP-0045 §7.5).
    let mut bob = Peer::login(&env, "bob", &room, "bob").await;
    bob.send(
        bob.room
            .join_presence(None, Some(&muc::History::none()))
            .expect("join"),
    )
    .await;
    bob.until("joined", |p| {
        p.seen.iter().any(|e| matches!(e, MucEvent::Joined { .. }))
    })
    .await;
    alice
        .until("bob joined", |p| p.room.occupant("bob").is_some())
        .await;
    bob.send(muc::private_message(&room, "alice", "psst, alice").expect("pm"))
        .await;
    alice
        .until("private message", |p| !p.private.is_empty())
        .await;
    assert!(alice.seen.iter().any(|e| matches!(
        e,
        MucEvent::PrivateMessage { nick, body, .. } if nick == "bob" && body == "psst, alice"
    )));
    let pm = &alice.private[0];
    assert_eq!(pm.body(), Some("psst, alice"));
    assert_eq!(
        pm.from.as_ref().map(|f| f.as_str().to_owned()),
        Some(format!("{room}/bob"))
    );

    // Voice (XEP-0045 §8.3, §8.5, §8.4): in the moderated room bob joined as a visitor;
    // he sees his role change both ways.
    assert_eq!(
        alice.room.occupant("bob").map(|o| o.role),
        Some(muc::Role::Visitor)
    );
    alice
        .request(muc::grant_voice("voice1", &room, "bob", None))
        .await;
    bob.until("voice granted", |p| {
        p.seen.iter().any(|e| {
            matches!(e, MucEvent::RoleChanged { nick, new: muc::Role::Participant, .. } if nick == "bob")
        })
    })
    .await;
    let list = alice
        .request(muc::role_list("voice2", &room, muc::Role::Participant))
        .await;
    let voiced = muc::parse_admin_list(&list).expect("voice list");
    assert!(
        voiced.iter().any(|i| i.nick.as_deref() == Some("bob")),
        "{voiced:?}"
    );
    alice
        .request(muc::revoke_voice("voice3", &room, "bob", Some("quiet")))
        .await;
    bob.until("voice revoked", |p| {
        p.seen.iter().any(|e| {
            matches!(e, MucEvent::RoleChanged { nick, old: muc::Role::Participant, new: muc::Role::Visitor } if nick == "bob")
        })
    })
    .await;

    // Membership (XEP-0045 §9.3, §9.5).
    let bob_jid = BareJid::new(&format!("bob@{}", env.domain)).expect("jid");
    alice
        .request(muc::set_affiliation(
            "mem1",
            &room,
            &bob_jid,
            Affiliation::Member,
            Some("welcome"),
        ))
        .await;
    let list = alice
        .request(muc::affiliation_list("mem2", &room, Affiliation::Member))
        .await;
    let members = muc::parse_admin_list(&list).expect("member list");
    assert!(
        members
            .iter()
            .any(|i| i.jid.as_ref().map(|j| j.to_bare()) == Some(bob_jid.clone())),
        "{members:?}"
    );

    // Kick (XEP-0045 §8.2): bob sees his own removal with status 307.
    alice
        .request(muc::kick("kick1", &room, "bob", Some("testing kicks")))
        .await;
    bob.until("kicked", |p| {
        p.seen
            .iter()
            .any(|e| matches!(e, MucEvent::Kicked { is_self: true, .. }))
    })
    .await;
    assert!(
        bob.statuses.iter().any(|s| s.contains(&status::KICKED)),
        "{:?}",
        bob.statuses
    );
    alice
        .until("bob gone", |p| p.room.occupant("bob").is_none())
        .await;

    // Ban (XEP-0045 §9.1, §9.2) someone not in the room.
    let carol = BareJid::new(&format!("carol@{}", env.domain)).expect("jid");
    alice
        .request(muc::ban("ban1", &room, &carol, Some("testing bans")))
        .await;
    let list = alice
        .request(muc::affiliation_list("ban2", &room, Affiliation::Outcast))
        .await;
    let banned = muc::parse_admin_list(&list).expect("ban list");
    assert!(
        banned
            .iter()
            .any(|i| i.jid.as_ref().map(|j| j.to_bare()) == Some(carol.clone())),
        "{banned:?}"
    );

    // Destroy (XEP-0045 §10.9): alice, still inside, is told.
    alice
        .request(muc::destroy("des1", &room, None, Some("test over"), None))
        .await;
    alice
        .until("destroyed", |p| {
            p.seen
                .iter()
                .any(|e| matches!(e, MucEvent::RoomDestroyed { .. }))
        })
        .await;
    for p in [&alice, &bob] {
        p.client.close().await.expect("close");
    }
}
