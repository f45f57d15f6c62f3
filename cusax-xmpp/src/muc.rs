//! Multi-user chat (XEP-0045): join/leave, occupant tracking from presence, groupchat
//! messages and subject, and room information from disco#info (including the SIP URI of
//! an associated conference, RFC 7081 §4).

use std::collections::BTreeMap;

use jid::{BareJid, FullJid, Jid};

use crate::disco::DiscoInfo;
use crate::forms::{DataForm, FormType};
use crate::stanza::{
    Iq, Message, MessageType, ParseError, Presence, PresenceType, StanzaError, expect, parse_jid,
    parse_jid_attr,
};
use crate::xml::element::Element;

/// `http://jabber.org/protocol/muc`
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
/// `http://jabber.org/protocol/muc#user`
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// `FORM_TYPE` of the room information form (XEP-0045 §6.4).
pub const FORM_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";

/// Most occupants tracked in one room.
pub const MAX_OCCUPANTS: usize = 4096;

/// Most items and status codes read from one `<x xmlns='…muc#user'/>`.
pub const MAX_ITEMS: usize = 64;

/// Status codes (XEP-0045 §15.6.2).
pub mod status {
    /// The occupant's real JID is visible to all.
    pub const NON_ANONYMOUS: u16 = 100;
    /// The presence refers to the receiving user.
    pub const SELF_PRESENCE: u16 = 110;
    /// The room was created by this join.
    pub const ROOM_CREATED: u16 = 201;
    /// The service assigned or modified the nick.
    pub const NICK_ASSIGNED: u16 = 210;
    /// Banned.
    pub const BANNED: u16 = 301;
    /// New nick (in unavailable presence).
    pub const NICK_CHANGED: u16 = 303;
    /// Kicked.
    pub const KICKED: u16 = 307;
    /// Removed because of an affiliation change.
    pub const AFFILIATION_REMOVED: u16 = 321;
    /// Removed because the room became members-only.
    pub const MEMBERS_ONLY: u16 = 322;
    /// Removed because the service is shutting down.
    pub const SHUTDOWN: u16 = 332;
    /// Removed because of a technical problem.
    pub const ERROR_REMOVAL: u16 = 333;
}

/// Affiliation (XEP-0045 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Affiliation {
    /// Owner.
    Owner,
    /// Admin.
    Admin,
    /// Member.
    Member,
    /// Banned.
    Outcast,
    /// None.
    #[default]
    None,
}

/// Role (XEP-0045 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Moderator.
    Moderator,
    /// Participant.
    Participant,
    /// Visitor (no voice).
    Visitor,
    /// Not in the room.
    #[default]
    None,
}

impl Affiliation {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            _ => return None,
        })
    }
}

impl Role {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
            Role::None => "none",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "moderator" => Role::Moderator,
            "participant" => Role::Participant,
            "visitor" => Role::Visitor,
            "none" => Role::None,
            _ => return None,
        })
    }
}

/// Which history to receive on join (XEP-0045 §7.2.13).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct History {
    /// Most characters.
    pub maxchars: Option<u32>,
    /// Most messages.
    pub maxstanzas: Option<u32>,
    /// Messages of the last N seconds.
    pub seconds: Option<u32>,
    /// Messages since this UTC date-time (XEP-0082 format).
    pub since: Option<String>,
}

impl History {
    /// No history at all (`maxstanzas='0'`).
    pub fn none() -> Self {
        History {
            maxstanzas: Some(0),
            ..History::default()
        }
    }
}

/// The join presence to `room/nick` (XEP-0045 §7.2.1). Fails when `nick` is not a valid
/// resourcepart.
pub fn join(
    room: &BareJid,
    nick: &str,
    password: Option<&str>,
    history: Option<&History>,
) -> Result<Presence, ParseError> {
    let to = occupant_jid(room, nick)?;
    let mut x = Element::new("x", NS_MUC);
    if let Some(h) = history {
        let mut he = Element::new("history", NS_MUC);
        for (k, v) in [
            ("maxchars", h.maxchars),
            ("maxstanzas", h.maxstanzas),
            ("seconds", h.seconds),
        ] {
            if let Some(v) = v {
                he.set_attr(k, v.to_string());
            }
        }
        if let Some(s) = &h.since {
            he.set_attr("since", s.clone());
        }
        x.push_child(he);
    }
    if let Some(p) = password {
        x.push_child(Element::new("password", NS_MUC).with_text(p));
    }
    let mut p = Presence::new(PresenceType::Available);
    p.to = Some(Jid::from(to));
    p.payloads.push(x);
    Ok(p)
}

/// The presence leaving the room (XEP-0045 §7.14).
pub fn leave(room: &BareJid, nick: &str, status: Option<&str>) -> Result<Presence, ParseError> {
    let mut p = crate::presence::unavailable(Some(Jid::from(occupant_jid(room, nick)?)), status);
    p.id = None;
    Ok(p)
}

/// The presence changing the own nick (XEP-0045 §7.6).
pub fn change_nick(room: &BareJid, new_nick: &str) -> Result<Presence, ParseError> {
    let mut p = Presence::new(PresenceType::Available);
    p.to = Some(Jid::from(occupant_jid(room, new_nick)?));
    Ok(p)
}

/// A message to all occupants (XEP-0045 §7.4).
pub fn groupchat(room: &BareJid, body: impl Into<String>) -> Message {
    Message::new(MessageType::Groupchat, Some(Jid::from(room.clone()))).with_body(body)
}

/// A subject change (XEP-0045 §8.1).
pub fn set_subject(room: &BareJid, subject: impl Into<String>) -> Message {
    let mut m = Message::new(MessageType::Groupchat, Some(Jid::from(room.clone())));
    m.subjects.insert(String::new(), subject.into());
    m
}

/// `http://jabber.org/protocol/muc#owner`
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// `jabber:x:conference` (XEP-0249 direct invitations).
pub const NS_CONFERENCE: &str = "jabber:x:conference";

/// Accepts the default configuration of a room this join created (status 201), making it
/// an "instant room" (XEP-0045 §10.1.2).
pub fn accept_default_config(id: impl Into<String>, room: &BareJid) -> Iq {
    Iq::set(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_OWNER)
            .with_child(DataForm::new(FormType::Submit, None).to_element()),
    )
}

/// An invitation to a room, mediated by the room (XEP-0045 §7.8.2) or direct (XEP-0249).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The room.
    pub room: BareJid,
    /// Who invites (the real JID for mediated invitations; the sender for direct ones).
    pub from: Option<Jid>,
    /// Reason.
    pub reason: Option<String>,
    /// Room password.
    pub password: Option<String>,
    /// Whether it came through the room (XEP-0045) rather than directly (XEP-0249).
    pub mediated: bool,
}

impl Invite {
    /// Reads an invitation from a message; `None` when the message holds none.
    pub fn from_message(m: &Message) -> Result<Option<Invite>, ParseError> {
        if let Some(x) = m.payload("x", NS_MUC_USER)
            && let Some(inv) = x.child("invite", NS_MUC_USER)
        {
            let room = m
                .from
                .as_ref()
                .map(Jid::to_bare)
                .ok_or(ParseError::MissingAttr {
                    element: "message",
                    attr: "from",
                })?;
            return Ok(Some(Invite {
                room,
                from: parse_jid_attr(inv, "invite", "from")?,
                reason: inv.child("reason", NS_MUC_USER).map(Element::text),
                password: x.child("password", NS_MUC_USER).map(Element::text),
                mediated: true,
            }));
        }
        if let Some(x) = m.payload("x", NS_CONFERENCE) {
            let j = x.attr("jid").ok_or(ParseError::MissingAttr {
                element: "x",
                attr: "jid",
            })?;
            let room = parse_jid(j, "x", "jid")?.to_bare();
            return Ok(Some(Invite {
                room,
                from: m.from.clone(),
                reason: x.attr("reason").map(str::to_owned),
                password: x.attr("password").map(str::to_owned),
                mediated: false,
            }));
        }
        Ok(None)
    }
}

/// A mediated invitation of `invitee`, sent to the room (XEP-0045 §7.8.2). A full JID
/// reaches exactly that client; a bare JID is routed by the invitee's server (RFC 6121
/// §8.5.2), possibly to another of their resources.
pub fn invite(room: &BareJid, invitee: &Jid, reason: Option<&str>) -> Message {
    let mut inv = Element::new("invite", NS_MUC_USER).with_attr("to", invitee.as_str());
    if let Some(r) = reason {
        inv.push_child(Element::new("reason", NS_MUC_USER).with_text(r));
    }
    let mut m = Message::new(MessageType::Normal, Some(Jid::from(room.clone())));
    m.payloads
        .push(Element::new("x", NS_MUC_USER).with_child(inv));
    m
}

/// A direct invitation (XEP-0249 §2) of `invitee` to `room`.
pub fn direct_invite(
    room: &BareJid,
    invitee: Jid,
    reason: Option<&str>,
    password: Option<&str>,
) -> Message {
    let mut x = Element::new("x", NS_CONFERENCE).with_attr("jid", room.as_str());
    if let Some(r) = reason {
        x.set_attr("reason", r);
    }
    if let Some(p) = password {
        x.set_attr("password", p);
    }
    let mut m = Message::new(MessageType::Normal, Some(invitee));
    m.payloads.push(x);
    m
}

fn occupant_jid(room: &BareJid, nick: &str) -> Result<FullJid, ParseError> {
    room.with_resource_str(nick)
        .map_err(|e| ParseError::InvalidJid {
            element: "presence",
            attr: "to",
            value: format!("{room}/{nick}"),
            reason: e.to_string(),
        })
}

/// An `<item/>` of `muc#user` (XEP-0045 §15.6).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MucItem {
    /// Affiliation.
    pub affiliation: Affiliation,
    /// Role.
    pub role: Role,
    /// The real JID (only where the room lets this user see it).
    pub jid: Option<Jid>,
    /// Nick (the new nick in a 303 presence).
    pub nick: Option<String>,
    /// `<actor nick|jid/>` of a kick or ban.
    pub actor: Option<String>,
    /// `<reason/>`.
    pub reason: Option<String>,
}

/// `<destroy/>` of a destroyed room (XEP-0045 §10.9).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Destroy {
    /// The alternate venue.
    pub jid: Option<Jid>,
    /// Reason.
    pub reason: Option<String>,
    /// Password of the alternate venue.
    pub password: Option<String>,
}

/// `<x xmlns='http://jabber.org/protocol/muc#user'/>` in a presence.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MucUser {
    /// Items.
    pub items: Vec<MucItem>,
    /// Status codes.
    pub status: Vec<u16>,
    /// Destruction notice.
    pub destroy: Option<Destroy>,
}

impl MucUser {
    /// Whether status `code` is present.
    pub fn has_status(&self, code: u16) -> bool {
        self.status.contains(&code)
    }

    /// Parses the element.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "x", NS_MUC_USER)?;
        let mut u = MucUser::default();
        for c in e.elements().filter(|c| c.ns == NS_MUC_USER) {
            if u.items.len() + u.status.len() >= MAX_ITEMS {
                return Err(ParseError::TooMany {
                    what: "muc#user items and status codes",
                    limit: MAX_ITEMS,
                });
            }
            match c.name.as_str() {
                "item" => {
                    let affiliation = match c.attr("affiliation") {
                        None => Affiliation::None,
                        Some(a) => {
                            Affiliation::parse(a).ok_or_else(|| ParseError::InvalidAttr {
                                element: "item",
                                attr: "affiliation",
                                value: a.to_owned(),
                            })?
                        }
                    };
                    let role = match c.attr("role") {
                        None => Role::None,
                        Some(r) => Role::parse(r).ok_or_else(|| ParseError::InvalidAttr {
                            element: "item",
                            attr: "role",
                            value: r.to_owned(),
                        })?,
                    };
                    let actor = c
                        .child("actor", NS_MUC_USER)
                        .and_then(|a| a.attr("nick").or(a.attr("jid")))
                        .map(str::to_owned);
                    u.items.push(MucItem {
                        affiliation,
                        role,
                        jid: parse_jid_attr(c, "item", "jid")?,
                        nick: c.attr("nick").map(str::to_owned),
                        actor,
                        reason: c.child("reason", NS_MUC_USER).map(Element::text),
                    });
                }
                "status" => {
                    let code = c.attr("code").ok_or(ParseError::MissingAttr {
                        element: "status",
                        attr: "code",
                    })?;
                    let n = code
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|n| (100..1000).contains(n))
                        .ok_or_else(|| ParseError::InvalidAttr {
                            element: "status",
                            attr: "code",
                            value: code.to_owned(),
                        })?;
                    u.status.push(n);
                }
                "destroy" => {
                    u.destroy = Some(Destroy {
                        jid: match c.attr("jid") {
                            Some(j) => Some(parse_jid(j, "destroy", "jid")?),
                            None => None,
                        },
                        reason: c.child("reason", NS_MUC_USER).map(Element::text),
                        password: c.child("password", NS_MUC_USER).map(Element::text),
                    });
                }
                _ => {}
            }
        }
        Ok(u)
    }

    /// Builds the element.
    pub fn to_element(&self) -> Element {
        let mut x = Element::new("x", NS_MUC_USER);
        for i in &self.items {
            let mut ie = Element::new("item", NS_MUC_USER)
                .with_attr("affiliation", i.affiliation.as_str())
                .with_attr("role", i.role.as_str());
            if let Some(j) = &i.jid {
                ie.set_attr("jid", j.as_str());
            }
            if let Some(n) = &i.nick {
                ie.set_attr("nick", n.clone());
            }
            if let Some(a) = &i.actor {
                ie.push_child(Element::new("actor", NS_MUC_USER).with_attr("nick", a.clone()));
            }
            if let Some(r) = &i.reason {
                ie.push_child(Element::new("reason", NS_MUC_USER).with_text(r.clone()));
            }
            x.push_child(ie);
        }
        for s in &self.status {
            x.push_child(Element::new("status", NS_MUC_USER).with_attr("code", s.to_string()));
        }
        if let Some(d) = &self.destroy {
            let mut de = Element::new("destroy", NS_MUC_USER);
            if let Some(j) = &d.jid {
                de.set_attr("jid", j.as_str());
            }
            if let Some(r) = &d.reason {
                de.push_child(Element::new("reason", NS_MUC_USER).with_text(r.clone()));
            }
            if let Some(p) = &d.password {
                de.push_child(Element::new("password", NS_MUC_USER).with_text(p.clone()));
            }
            x.push_child(de);
        }
        x
    }

    /// The `muc#user` payload of a presence, if any.
    pub fn from_presence(p: &Presence) -> Result<Option<Self>, ParseError> {
        p.payload("x", NS_MUC_USER)
            .map(MucUser::from_element)
            .transpose()
    }
}

/// An occupant of a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occupant {
    /// Nick (the resource of the occupant JID).
    pub nick: String,
    /// Role.
    pub role: Role,
    /// Affiliation.
    pub affiliation: Affiliation,
    /// Real JID, where visible.
    pub jid: Option<Jid>,
}

/// Why an occupant left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveReason {
    /// Left on their own.
    Left,
    /// Removed by an affiliation change (321).
    AffiliationChange,
    /// Removed because the room became members-only (322).
    MembersOnly,
    /// Removed because the service shut down (332).
    Shutdown,
    /// Removed because of an error (333).
    Error,
}

/// What happened in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MucEvent {
    /// The own join completed (self-presence received).
    Joined {
        /// The nick (possibly assigned by the service, status 210).
        nick: String,
        /// The room was created by this join (201); it may need configuring.
        created: bool,
    },
    /// The join was refused (error presence).
    JoinFailed(Box<StanzaError>),
    /// Someone joined (also sent for occupants present before the own join).
    OccupantJoined(Occupant),
    /// Someone left.
    OccupantLeft {
        /// The occupant as last known.
        occupant: Occupant,
        /// Why.
        reason: LeaveReason,
    },
    /// Role changed.
    RoleChanged {
        /// Nick.
        nick: String,
        /// Old role.
        old: Role,
        /// New role.
        new: Role,
    },
    /// Affiliation changed.
    AffiliationChanged {
        /// Nick.
        nick: String,
        /// Old.
        old: Affiliation,
        /// New.
        new: Affiliation,
    },
    /// An occupant (possibly the user: `is_self`) was kicked.
    Kicked {
        /// Nick.
        nick: String,
        /// Actor.
        actor: Option<String>,
        /// Reason.
        reason: Option<String>,
        /// Whether it is the user.
        is_self: bool,
    },
    /// An occupant (possibly the user) was banned.
    Banned {
        /// Nick.
        nick: String,
        /// Actor.
        actor: Option<String>,
        /// Reason.
        reason: Option<String>,
        /// Whether it is the user.
        is_self: bool,
    },
    /// An occupant changed nick.
    NickChanged {
        /// Old nick.
        old: String,
        /// New nick.
        new: String,
        /// Whether it is the user.
        is_self: bool,
    },
    /// The subject changed (or was announced on join).
    SubjectChanged {
        /// The subject (empty: cleared).
        subject: String,
        /// Who set it (nick), if known.
        by: Option<String>,
    },
    /// The room was destroyed.
    RoomDestroyed {
        /// Reason.
        reason: Option<String>,
        /// Alternate venue.
        alternate: Option<Jid>,
    },
    /// A groupchat message (nick None: from the room itself).
    Message {
        /// Sender nick.
        nick: Option<String>,
        /// Body.
        body: String,
        /// The whole message.
        message: Box<Message>,
    },
    /// The user left the room (own unavailable presence).
    Left,
    /// A private message from an occupant (XEP-0045 §7.5).
    PrivateMessage {
        /// Sender nick.
        nick: String,
        /// Body.
        body: String,
        /// The whole message.
        message: Box<Message>,
    },
}

/// Where the user is with a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomState {
    /// Join presence sent, waiting for the self-presence.
    Joining,
    /// In the room.
    Joined,
    /// Not in the room (left, kicked, banned, destroyed, or the join failed).
    Left,
}

/// The client's view of one room, fed with the presences and messages from it.
#[derive(Clone, Debug)]
pub struct MucRoom {
    /// The room's bare JID.
    pub room: BareJid,
    /// The user's nick.
    pub nick: String,
    /// State.
    pub state: RoomState,
    /// The current subject.
    pub subject: Option<String>,
    occupants: BTreeMap<String, Occupant>,
}

impl MucRoom {
    /// A room about to be joined as `nick`; send the result of [`MucRoom::join_presence`].
    pub fn new(room: BareJid, nick: impl Into<String>) -> Self {
        MucRoom {
            room,
            nick: nick.into(),
            state: RoomState::Joining,
            subject: None,
            occupants: BTreeMap::new(),
        }
    }

    /// The join presence for this room.
    pub fn join_presence(
        &self,
        password: Option<&str>,
        history: Option<&History>,
    ) -> Result<Presence, ParseError> {
        join(&self.room, &self.nick, password, history)
    }

    /// The occupants, by nick.
    pub fn occupants(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants.values()
    }

    /// The occupant with `nick`.
    pub fn occupant(&self, nick: &str) -> Option<&Occupant> {
        self.occupants.get(nick)
    }

    fn nick_of(&self, from: Option<&Jid>) -> Option<Option<String>> {
        let from = from?;
        if from.to_bare() != self.room {
            return None;
        }
        Some(from.resource().map(|r| r.as_str().to_owned()))
    }

    /// Applies a presence from the room; presences from elsewhere return no event.
    pub fn handle_presence(&mut self, p: &Presence) -> Vec<MucEvent> {
        let Some(nick) = self.nick_of(p.from.as_ref()) else {
            return Vec::new();
        };
        if p.kind == PresenceType::Error {
            if self.state == RoomState::Joining {
                self.state = RoomState::Left;
                let err = p.error.clone().unwrap_or_else(|| {
                    StanzaError::new(
                        crate::stanza::ErrorType::Cancel,
                        crate::stanza::Condition::UndefinedCondition,
                    )
                });
                return vec![MucEvent::JoinFailed(Box::new(err))];
            }
            return Vec::new();
        }
        let Some(nick) = nick else {
            return Vec::new();
        };
        let user = match MucUser::from_presence(p) {
            Ok(u) => u.unwrap_or_default(),
            Err(err) => {
                tracing::debug!(%err, room = %self.room, "ignoring invalid muc#user payload");
                MucUser::default()
            }
        };
        let item = user.items.first().cloned().unwrap_or_default();
        let is_self = user.has_status(status::SELF_PRESENCE) || nick == self.nick;
        let mut events = Vec::new();
        match p.kind {
            PresenceType::Available => {
                let occ = Occupant {
                    nick: nick.clone(),
                    role: item.role,
                    affiliation: item.affiliation,
                    jid: item.jid.clone(),
                };
                if self.occupants.len() >= MAX_OCCUPANTS && !self.occupants.contains_key(&nick) {
                    tracing::debug!(room = %self.room, "too many occupants; presence ignored");
                    return events;
                }
                match self.occupants.insert(nick.clone(), occ.clone()) {
                    None => events.push(MucEvent::OccupantJoined(occ)),
                    Some(old) => {
                        if old.role != occ.role {
                            events.push(MucEvent::RoleChanged {
                                nick: nick.clone(),
                                old: old.role,
                                new: occ.role,
                            });
                        }
                        if old.affiliation != occ.affiliation {
                            events.push(MucEvent::AffiliationChanged {
                                nick: nick.clone(),
                                old: old.affiliation,
                                new: occ.affiliation,
                            });
                        }
                    }
                }
                if is_self {
                    if user.has_status(status::NICK_ASSIGNED)
                        || user.has_status(status::SELF_PRESENCE)
                    {
                        self.nick = nick.clone();
                    }
                    if self.state == RoomState::Joining {
                        self.state = RoomState::Joined;
                        events.push(MucEvent::Joined {
                            nick,
                            created: user.has_status(status::ROOM_CREATED),
                        });
                    }
                }
            }
            PresenceType::Unavailable => {
                let occupant = self.occupants.remove(&nick).unwrap_or(Occupant {
                    nick: nick.clone(),
                    role: Role::None,
                    affiliation: item.affiliation,
                    jid: item.jid.clone(),
                });
                if let Some(d) = &user.destroy {
                    events.push(MucEvent::RoomDestroyed {
                        reason: d.reason.clone(),
                        alternate: d.jid.clone(),
                    });
                    if is_self {
                        self.occupants.clear();
                        self.state = RoomState::Left;
                    }
                    return events;
                }
                if user.has_status(status::NICK_CHANGED)
                    && let Some(new) = item.nick.clone()
                {
                    let mut moved = occupant;
                    moved.nick = new.clone();
                    // The available presence under the new nick follows and updates it.
                    self.occupants.insert(new.clone(), moved);
                    if is_self {
                        self.nick = new.clone();
                    }
                    events.push(MucEvent::NickChanged {
                        old: nick,
                        new,
                        is_self,
                    });
                    return events;
                }
                if user.has_status(status::KICKED) {
                    events.push(MucEvent::Kicked {
                        nick,
                        actor: item.actor,
                        reason: item.reason,
                        is_self,
                    });
                } else if user.has_status(status::BANNED) {
                    events.push(MucEvent::Banned {
                        nick,
                        actor: item.actor,
                        reason: item.reason,
                        is_self,
                    });
                } else if !is_self {
                    let reason = if user.has_status(status::AFFILIATION_REMOVED) {
                        LeaveReason::AffiliationChange
                    } else if user.has_status(status::MEMBERS_ONLY) {
                        LeaveReason::MembersOnly
                    } else if user.has_status(status::SHUTDOWN) {
                        LeaveReason::Shutdown
                    } else if user.has_status(status::ERROR_REMOVAL) {
                        LeaveReason::Error
                    } else {
                        LeaveReason::Left
                    };
                    events.push(MucEvent::OccupantLeft { occupant, reason });
                }
                if is_self {
                    self.occupants.clear();
                    self.state = RoomState::Left;
                    events.push(MucEvent::Left);
                }
            }
            _ => {}
        }
        events
    }

    /// Applies a message from the room: groupchat (subject or chat), or a private
    /// message from an occupant (XEP-0045 §7.5, see [`is_private_message`]).
    pub fn handle_message(&mut self, m: &Message) -> Vec<MucEvent> {
        if is_private_message(m) {
            return match (self.nick_of(m.from.as_ref()), m.body()) {
                (Some(Some(nick)), Some(body)) => vec![MucEvent::PrivateMessage {
                    nick,
                    body: body.to_owned(),
                    message: Box::new(m.clone()),
                }],
                _ => Vec::new(),
            };
        }
        if m.kind != MessageType::Groupchat {
            return Vec::new();
        }
        let Some(nick) = self.nick_of(m.from.as_ref()) else {
            return Vec::new();
        };
        // XEP-0045 §8.1: a subject message has a <subject/> and no <body/>.
        if m.bodies.is_empty()
            && let Some(s) = m
                .subject()
                .map(str::to_owned)
                .or_else(|| (!m.subjects.is_empty()).then(String::new))
        {
            self.subject = (!s.is_empty()).then(|| s.clone());
            return vec![MucEvent::SubjectChanged {
                subject: s,
                by: nick,
            }];
        }
        match m.body() {
            Some(b) => vec![MucEvent::Message {
                nick,
                body: b.to_owned(),
                message: Box::new(m.clone()),
            }],
            None => Vec::new(),
        }
    }
}

/// What disco#info says about a room (XEP-0045 §6.4).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RoomInfo {
    /// Name (the conference identity's name, else `muc#roomconfig_roomname`).
    pub name: Option<String>,
    /// `muc#roominfo_description`.
    pub description: Option<String>,
    /// `muc#roominfo_occupants`.
    pub occupants: Option<u32>,
    /// `muc#roominfo_subject`.
    pub subject: Option<String>,
    /// Whether a password is needed (`muc_passwordprotected`).
    pub password_protected: bool,
    /// Whether members only (`muc_membersonly`).
    pub members_only: bool,
    /// Whether real JIDs are visible to all (`muc_nonanonymous`).
    pub non_anonymous: bool,
    /// The SIP URI of the associated audio/video conference (RFC 7081 §4).
    pub audio_video_uri: Option<String>,
}

/// Whether a field var names the RFC 7081 §4 audio/video URI: `audio-video-uri`,
/// `muc#roominfo_audio-video-uri` or any Clark-notation `{…}audio-video-uri`.
pub fn is_audio_video_var(var: &str) -> bool {
    var == "audio-video-uri"
        || var == "muc#roominfo_audio-video-uri"
        || (var.starts_with('{')
            && var
                .rsplit_once('}')
                .is_some_and(|(_, local)| local == "audio-video-uri"))
}

impl RoomInfo {
    /// Reads a room's disco#info. The audio/video URI is looked for in the roominfo form
    /// first, then in any other extension form.
    pub fn from_disco(d: &DiscoInfo) -> Self {
        let form = d.extension(FORM_ROOMINFO);
        let value = |var: &str| {
            form.and_then(|f| f.value(var))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let av = |f: &DataForm| {
            f.fields
                .iter()
                .filter(|x| x.var.as_deref().is_some_and(is_audio_video_var))
                .find_map(|x| {
                    x.value()
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                })
        };
        let audio_video_uri = form
            .and_then(av)
            .or_else(|| d.extensions.iter().find_map(av));
        RoomInfo {
            name: d
                .identities
                .iter()
                .find(|i| i.category == "conference")
                .and_then(|i| i.name.clone())
                .filter(|n| !n.is_empty())
                .or_else(|| value("muc#roomconfig_roomname")),
            description: value("muc#roominfo_description"),
            occupants: value("muc#roominfo_occupants").and_then(|v| v.trim().parse().ok()),
            subject: value("muc#roominfo_subject"),
            password_protected: d.has_feature("muc_passwordprotected"),
            members_only: d.has_feature("muc_membersonly"),
            non_anonymous: d.has_feature("muc_nonanonymous"),
            audio_video_uri,
        }
    }
}

// ---- Private messages, moderation, administration, owner configuration ----

/// `http://jabber.org/protocol/muc#admin`
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// `FORM_TYPE` of the room configuration form (XEP-0045 §10.2, §15.5.3).
pub const FORM_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";

/// Most items read from one admin list (XEP-0045 §9.2, §9.5, §10.5, §10.8).
pub const MAX_LIST_ITEMS: usize = 10_000;

/// A private message to the occupant `nick` of `room` (XEP-0045 §7.5): `type='chat'` to
/// `room@service/nick`, marked with an empty `muc#user` element so the recipient's
/// client knows it comes through the room.
pub fn private_message(
    room: &BareJid,
    nick: &str,
    body: impl Into<String>,
) -> Result<Message, ParseError> {
    let to = occupant_jid(room, nick)?;
    let mut m = Message::new(MessageType::Chat, Some(Jid::from(to))).with_body(body);
    m.payloads.push(Element::new("x", NS_MUC_USER));
    Ok(m)
}

/// Whether `m` is a private message through a room (XEP-0045 §7.5): `type='chat'` from
/// an occupant JID and carrying `muc#user`.
pub fn is_private_message(m: &Message) -> bool {
    m.kind == MessageType::Chat
        && m.from.as_ref().is_some_and(|f| !f.is_bare())
        && m.payload("x", NS_MUC_USER).is_some()
}

fn admin_iq(id: impl Into<String>, room: &BareJid, item: Element) -> Iq {
    Iq::set(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_ADMIN).with_child(item),
    )
}

fn with_reason(mut item: Element, reason: Option<&str>) -> Element {
    if let Some(r) = reason {
        item.push_child(Element::new("reason", NS_MUC_ADMIN).with_text(r));
    }
    item
}

/// Changes the role of occupant `nick` (XEP-0045 §8: `none` kicks, `participant` grants
/// voice, `visitor` revokes it, `moderator` grants moderation, §9.6). The room answers
/// with an iq result or error; occupants see the change as presence.
pub fn set_role(
    id: impl Into<String>,
    room: &BareJid,
    nick: &str,
    role: Role,
    reason: Option<&str>,
) -> Iq {
    let item = Element::new("item", NS_MUC_ADMIN)
        .with_attr("nick", nick)
        .with_attr("role", role.as_str());
    admin_iq(id, room, with_reason(item, reason))
}

/// Kicks occupant `nick` (XEP-0045 §8.2: role `none`; the victim sees status 307).
pub fn kick(id: impl Into<String>, room: &BareJid, nick: &str, reason: Option<&str>) -> Iq {
    set_role(id, room, nick, Role::None, reason)
}

/// Grants voice to `nick` in a moderated room (XEP-0045 §8.3: role `participant`).
pub fn grant_voice(id: impl Into<String>, room: &BareJid, nick: &str, reason: Option<&str>) -> Iq {
    set_role(id, room, nick, Role::Participant, reason)
}

/// Revokes the voice of `nick` (XEP-0045 §8.4: role `visitor`).
pub fn revoke_voice(id: impl Into<String>, room: &BareJid, nick: &str, reason: Option<&str>) -> Iq {
    set_role(id, room, nick, Role::Visitor, reason)
}

/// Changes the affiliation of the user `jid` (XEP-0045 §9.1 ban = `outcast`, §9.3
/// member, §10.3 owner, §10.6 admin, `none` removes it). Affiliations belong to bare JIDs.
pub fn set_affiliation(
    id: impl Into<String>,
    room: &BareJid,
    jid: &BareJid,
    affiliation: Affiliation,
    reason: Option<&str>,
) -> Iq {
    let item = Element::new("item", NS_MUC_ADMIN)
        .with_attr("affiliation", affiliation.as_str())
        .with_attr("jid", jid.as_str());
    admin_iq(id, room, with_reason(item, reason))
}

/// Bans `jid` (XEP-0045 §9.1: affiliation `outcast`; an occupant sees status 301).
pub fn ban(id: impl Into<String>, room: &BareJid, jid: &BareJid, reason: Option<&str>) -> Iq {
    set_affiliation(id, room, jid, Affiliation::Outcast, reason)
}

/// Asks for the users with `affiliation` (XEP-0045 §9.2 ban list with `Outcast`, §9.5
/// member list, §10.5 owner list, §10.8 admin list). Read the answer with
/// [`parse_admin_list`].
pub fn affiliation_list(id: impl Into<String>, room: &BareJid, affiliation: Affiliation) -> Iq {
    Iq::get(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_ADMIN).with_child(
            Element::new("item", NS_MUC_ADMIN).with_attr("affiliation", affiliation.as_str()),
        ),
    )
}

/// Asks for the occupants with `role` (XEP-0045 §8.5 voice list with `Participant`,
/// §9.8 moderator list).
pub fn role_list(id: impl Into<String>, room: &BareJid, role: Role) -> Iq {
    Iq::get(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_ADMIN)
            .with_child(Element::new("item", NS_MUC_ADMIN).with_attr("role", role.as_str())),
    )
}

/// One entry of an admin list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminItem {
    /// The user's JID (affiliation lists).
    pub jid: Option<Jid>,
    /// The occupant's nick (role lists; sometimes also in affiliation lists).
    pub nick: Option<String>,
    /// Affiliation, when given.
    pub affiliation: Option<Affiliation>,
    /// Role, when given.
    pub role: Option<Role>,
    /// Reason, when given.
    pub reason: Option<String>,
}

/// Reads the items of an admin list result (the answer to [`affiliation_list`] or
/// [`role_list`]). An iq error, or a result without the `muc#admin` query, is an error.
pub fn parse_admin_list(iq: &Iq) -> Result<Vec<AdminItem>, ParseError> {
    let q = iq
        .payload_is("query", NS_MUC_ADMIN)
        .ok_or(ParseError::MissingChild {
            element: "iq",
            child: "query xmlns='http://jabber.org/protocol/muc#admin'",
        })?;
    let mut out = Vec::new();
    for c in q.children_named("item", NS_MUC_ADMIN) {
        if out.len() >= MAX_LIST_ITEMS {
            return Err(ParseError::TooMany {
                what: "muc#admin items",
                limit: MAX_LIST_ITEMS,
            });
        }
        let affiliation = match c.attr("affiliation") {
            None => None,
            Some(a) => Some(
                Affiliation::parse(a).ok_or_else(|| ParseError::InvalidAttr {
                    element: "item",
                    attr: "affiliation",
                    value: a.to_owned(),
                })?,
            ),
        };
        let role = match c.attr("role") {
            None => None,
            Some(r) => Some(Role::parse(r).ok_or_else(|| ParseError::InvalidAttr {
                element: "item",
                attr: "role",
                value: r.to_owned(),
            })?),
        };
        out.push(AdminItem {
            jid: parse_jid_attr(c, "item", "jid")?,
            nick: c.attr("nick").map(str::to_owned),
            affiliation,
            role,
            reason: c.child("reason", NS_MUC_ADMIN).map(Element::text),
        });
    }
    Ok(out)
}

/// Asks for the room configuration form (XEP-0045 §10.2, owners only). Read the answer
/// with [`parse_config_form`], change values with [`DataForm::set_value`], send it back
/// with [`submit_config`].
pub fn request_config(id: impl Into<String>, room: &BareJid) -> Iq {
    Iq::get(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_OWNER),
    )
}

/// The configuration form in the answer to [`request_config`].
pub fn parse_config_form(iq: &Iq) -> Result<DataForm, ParseError> {
    let q = iq
        .payload_is("query", NS_MUC_OWNER)
        .ok_or(ParseError::MissingChild {
            element: "iq",
            child: "query xmlns='http://jabber.org/protocol/muc#owner'",
        })?;
    let x = q
        .child("x", crate::forms::NS_DATA)
        .ok_or(ParseError::MissingChild {
            element: "query",
            child: "x xmlns='jabber:x:data'",
        })?;
    DataForm::from_element(x)
}

/// Submits a configuration (XEP-0045 §10.2): the received form with the owner's changes,
/// sent as its [`DataForm::submission`].
pub fn submit_config(id: impl Into<String>, room: &BareJid, form: &DataForm) -> Iq {
    let mut sub = form.submission();
    if sub.form_type.is_none() {
        sub.form_type = Some(FORM_ROOMCONFIG.to_owned());
    }
    Iq::set(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_OWNER).with_child(sub.to_element()),
    )
}

/// Cancels the configuration of a room this join created, which destroys it
/// (XEP-0045 §10.1.3).
pub fn cancel_config(id: impl Into<String>, room: &BareJid) -> Iq {
    Iq::set(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_OWNER)
            .with_child(DataForm::new(FormType::Cancel, None).to_element()),
    )
}

/// Asks the service to destroy the room (XEP-0045 §10.9, owners only); occupants are
/// told, with the optional alternate venue, reason and its password.
pub fn destroy(
    id: impl Into<String>,
    room: &BareJid,
    alternate: Option<&BareJid>,
    reason: Option<&str>,
    password: Option<&str>,
) -> Iq {
    let mut d = Element::new("destroy", NS_MUC_OWNER);
    if let Some(a) = alternate {
        d.set_attr("jid", a.as_str());
    }
    if let Some(r) = reason {
        d.push_child(Element::new("reason", NS_MUC_OWNER).with_text(r));
    }
    if let Some(p) = password {
        d.push_child(Element::new("password", NS_MUC_OWNER).with_text(p));
    }
    Iq::set(
        id,
        Some(Jid::from(room.clone())),
        Element::new("query", NS_MUC_OWNER).with_child(d),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    fn room() -> BareJid {
        BareJid::new("cusax-room@conference.cusax.test").expect("jid")
    }
    fn pres(xml: &str) -> Presence {
        Presence::try_from(test_parse(xml)).expect("presence")
    }
    fn msg(xml: &str) -> Message {
        Message::try_from(test_parse(xml)).expect("message")
    }
    const R: &str = "cusax-room@conference.cusax.test";

    #[test]
    fn size() {
        assert!(
            std::mem::size_of::<MucEvent>() <= 160,
            "{}",
            std::mem::size_of::<MucEvent>()
        );
    }

    #[test]
    fn join_builder() {
        let h = History {
            maxstanzas: Some(20),
            since: Some("1970-01-01T00:00:00Z".into()),
            ..History::default()
        };
        let p = join(&room(), "alice", Some("s3cret"), Some(&h)).expect("valid");
        assert_eq!(
            Element::from(p).to_xml(),
            "<presence xmlns='jabber:client' to='cusax-room@conference.cusax.test/alice'><x xmlns='http://jabber.org/protocol/muc'>\
             <history maxstanzas='20' since='1970-01-01T00:00:00Z'/><password>s3cret</password></x></presence>"
        );
        assert!(join(&room(), "", None, None).is_err());
        assert_eq!(History::none().maxstanzas, Some(0));
        let l = leave(&room(), "alice", Some("bye")).expect("valid");
        assert_eq!(l.kind, PresenceType::Unavailable);
        assert!(change_nick(&room(), "al").is_ok());
        assert_eq!(
            Element::from(groupchat(&room(), "hi")).to_xml(),
            "<message xmlns='jabber:client' to='cusax-room@conference.cusax.test' type='groupchat'><body>hi</body></message>"
        );
        assert_eq!(set_subject(&room(), "topic").subject(), Some("topic"));
    }

    #[test]
    fn muc_user_parse() {
        let u = MucUser::from_element(&test_parse(
            "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator' jid='alice@cusax.test/res'>\
             <actor nick='boss'/><reason>r</reason></item><status code='110'/><status code='201'/></x>",
        ))
        .expect("valid");
        assert_eq!(u.items[0].affiliation, Affiliation::Owner);
        assert_eq!(u.items[0].role, Role::Moderator);
        assert_eq!(
            u.items[0].jid.as_ref().map(|j| j.as_str()),
            Some("alice@cusax.test/res")
        );
        assert_eq!(u.items[0].actor.as_deref(), Some("boss"));
        assert!(u.has_status(110) && u.has_status(201));
        assert_eq!(MucUser::from_element(&u.to_element()).expect("rt"), u);
        for (xml, want) in [
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='king'/></x>",
                "king",
            ),
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><item role='god'/></x>",
                "god",
            ),
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><status/></x>",
                "code",
            ),
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><status code='abc'/></x>",
                "abc",
            ),
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><status code='7'/></x>",
                "7",
            ),
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><item jid='@x'/></x>",
                "@x",
            ),
            (
                "<x xmlns='http://jabber.org/protocol/muc#user'><destroy jid='@x'/></x>",
                "@x",
            ),
        ] {
            let err = MucUser::from_element(&test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn room_lifecycle() {
        let mut r = MucRoom::new(room(), "alice");
        assert!(r.join_presence(None, Some(&History::none())).is_ok());
        // Existing occupant first.
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' from='{R}/bob'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='member' role='participant'/></x></presence>"
        )));
        assert!(matches!(&ev[..], [MucEvent::OccupantJoined(o)] if o.nick == "bob"));
        // Self presence with a service-assigned nick.
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' from='{R}/Alice'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='owner' role='moderator'/><status code='110'/><status code='201'/><status code='210'/></x></presence>"
        )));
        assert!(
            ev.contains(&MucEvent::Joined {
                nick: "Alice".into(),
                created: true
            }),
            "{ev:?}"
        );
        assert_eq!(r.state, RoomState::Joined);
        assert_eq!(r.nick, "Alice");
        assert_eq!(r.occupants().count(), 2);
        // Subject on join.
        let ev = r.handle_message(&msg(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{R}/bob'><subject>CUSAX</subject></message>"
        )));
        assert_eq!(
            ev,
            vec![MucEvent::SubjectChanged {
                subject: "CUSAX".into(),
                by: Some("bob".into())
            }]
        );
        assert_eq!(r.subject.as_deref(), Some("CUSAX"));
        // Message.
        let ev = r.handle_message(&msg(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{R}/bob'><body>hello</body><subject>x</subject></message>"
        )));
        assert!(
            matches!(&ev[..], [MucEvent::Message { nick: Some(n), body, .. }] if n == "bob" && body == "hello")
        );
        // Messages from elsewhere or of another type are ignored.
        assert!(r.handle_message(&msg("<message xmlns='jabber:client' type='groupchat' from='x@y/z'><body>x</body></message>")).is_empty());
        assert!(
            r.handle_message(&msg(&format!(
                "<message xmlns='jabber:client' type='chat' from='{R}/bob'><body>x</body></message>"
            )))
            .is_empty()
        );
        // Role change.
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' from='{R}/bob'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='admin' role='moderator'/></x></presence>"
        )));
        assert_eq!(ev.len(), 2);
        assert!(matches!(
            ev[0],
            MucEvent::RoleChanged {
                new: Role::Moderator,
                ..
            }
        ));
        assert!(matches!(
            ev[1],
            MucEvent::AffiliationChanged {
                new: Affiliation::Admin,
                ..
            }
        ));
        // Nick change.
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{R}/bob'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='admin' role='moderator' nick='robert'/><status code='303'/></x></presence>"
        )));
        assert_eq!(
            ev,
            vec![MucEvent::NickChanged {
                old: "bob".into(),
                new: "robert".into(),
                is_self: false
            }]
        );
        assert!(r.occupant("robert").is_some());
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' from='{R}/robert'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='admin' role='moderator'/></x></presence>"
        )));
        assert!(ev.is_empty(), "{ev:?}");
        // Carol joins and is kicked.
        r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' from='{R}/carol'/>"
        )));
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{R}/carol'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'><actor nick='robert'/><reason>spam</reason></item><status code='307'/></x></presence>"
        )));
        assert_eq!(
            ev,
            vec![MucEvent::Kicked {
                nick: "carol".into(),
                actor: Some("robert".into()),
                reason: Some("spam".into()),
                is_self: false
            }]
        );
        // Robert leaves normally.
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{R}/robert'/>"
        )));
        assert!(matches!(
            &ev[..],
            [MucEvent::OccupantLeft {
                reason: LeaveReason::Left,
                ..
            }]
        ));
        // Room destroyed.
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{R}/Alice'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'/><destroy jid='new@conference.cusax.test'><reason>moved</reason></destroy>\
             <status code='110'/></x></presence>"
        )));
        assert!(matches!(
            &ev[..],
            [MucEvent::RoomDestroyed {
                reason: Some(_),
                alternate: Some(_)
            }]
        ));
        assert_eq!(r.state, RoomState::Left);
    }

    #[test]
    fn self_ban_and_join_failure() {
        let mut r = MucRoom::new(room(), "alice");
        r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' from='{R}/alice'><x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>"
        )));
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' type='unavailable' from='{R}/alice'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='outcast' role='none'/><status code='301'/><status code='110'/></x></presence>"
        )));
        assert!(matches!(ev[0], MucEvent::Banned { is_self: true, .. }));
        assert_eq!(ev[1], MucEvent::Left);
        let mut r = MucRoom::new(room(), "alice");
        let ev = r.handle_presence(&pres(&format!(
            "<presence xmlns='jabber:client' type='error' from='{R}/alice'><error type='auth'>\
             <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        )));
        assert!(
            matches!(&ev[..], [MucEvent::JoinFailed(e)] if e.condition == crate::stanza::Condition::NotAuthorized)
        );
        assert_eq!(r.state, RoomState::Left);
        // Presence from another room is ignored.
        assert!(
            r.handle_presence(&pres(
                "<presence xmlns='jabber:client' from='other@conference.cusax.test/x'/>"
            ))
            .is_empty()
        );
    }

    #[test]
    fn invitations_and_config() {
        let m = invite(
            &room(),
            &BareJid::new("bob@cusax.test").expect("jid"),
            Some("call"),
        );
        assert_eq!(
            Element::from(m).to_xml(),
            "<message xmlns='jabber:client' to='cusax-room@conference.cusax.test'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <invite to='bob@cusax.test'><reason>call</reason></invite></x></message>"
        );
        let got = Invite::from_message(&msg(&format!(
            "<message xmlns='jabber:client' from='{R}'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <invite from='alice@cusax.test/x'><reason>call</reason></invite><password>pw</password></x></message>"
        )))
        .expect("ok")
        .expect("some");
        assert_eq!(got.room, room());
        assert!(got.mediated);
        assert_eq!(got.password.as_deref(), Some("pw"));
        assert_eq!(
            got.from.as_ref().map(|j| j.as_str()),
            Some("alice@cusax.test/x")
        );
        let d = direct_invite(
            &room(),
            Jid::new("bob@cusax.test").expect("jid"),
            Some("r"),
            None,
        );
        let back = Invite::from_message(&Message::try_from(Element::from(d)).expect("msg"))
            .expect("ok")
            .expect("some");
        assert!(!back.mediated);
        assert_eq!(back.room, room());
        assert_eq!(back.reason.as_deref(), Some("r"));
        assert_eq!(
            Invite::from_message(&msg(
                "<message xmlns='jabber:client'><body>x</body></message>"
            ))
            .expect("ok"),
            None
        );
        assert!(
            Invite::from_message(&msg(
                "<message xmlns='jabber:client'><x xmlns='jabber:x:conference'/></message>"
            ))
            .is_err()
        );
        assert!(
            Invite::from_message(&msg(
                "<message xmlns='jabber:client'><x xmlns='http://jabber.org/protocol/muc#user'><invite/></x></message>"
            ))
            .is_err(),
            "mediated invitation without a room"
        );
        assert_eq!(
            Element::from(accept_default_config("c1", &room())).to_xml(),
            "<iq xmlns='jabber:client' to='cusax-room@conference.cusax.test' id='c1' type='set'>\
             <query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
        );
    }

    #[test]
    fn private_messages() {
        let m = private_message(&room(), "bob", "psst").expect("valid nick");
        assert_eq!(
            Element::from(m).to_xml(),
            "<message xmlns='jabber:client' to='cusax-room@conference.cusax.test/bob' type='chat'>\
             <body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        );
        assert!(private_message(&room(), "", "x").is_err());
        assert!(is_private_message(&msg(&format!(
            "<message xmlns='jabber:client' type='chat' from='{R}/bob'><body>x</body>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        ))));
        assert!(!is_private_message(&msg(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{R}/bob'><body>x</body>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        ))));
        assert!(!is_private_message(&msg(
            "<message xmlns='jabber:client' type='chat' from='bob@cusax.test/x'><body>x</body></message>"
        )));
        let mut r = MucRoom::new(room(), "alice");
        let ev = r.handle_message(&msg(&format!(
            "<message xmlns='jabber:client' type='chat' from='{R}/bob'><body>psst</body>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        )));
        assert!(
            matches!(&ev[..], [MucEvent::PrivateMessage { nick, body, .. }] if nick == "bob" && body == "psst"),
            "{ev:?}"
        );
        // From another room: not ours.
        assert!(
            r.handle_message(&msg(
                "<message xmlns='jabber:client' type='chat' from='x@conference.cusax.test/bob'><body>x</body>\
                 <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
            ))
            .is_empty()
        );
    }

    #[test]
    fn moderation_and_admin_iqs() {
        let x = |iq: Iq| Element::from(iq).to_xml();
        let head = format!(
            "<iq xmlns='jabber:client' to='{R}' id='k' type='set'><query xmlns='http://jabber.org/protocol/muc#admin'>"
        );
        assert_eq!(
            x(kick("k", &room(), "bob", Some("spam"))),
            format!("{head}<item nick='bob' role='none'><reason>spam</reason></item></query></iq>")
        );
        assert!(
            x(grant_voice("k", &room(), "bob", None))
                .contains("<item nick='bob' role='participant'/>")
        );
        assert!(
            x(revoke_voice("k", &room(), "bob", None))
                .contains("<item nick='bob' role='visitor'/>")
        );
        let bob = BareJid::new("bob@cusax.test").expect("jid");
        assert_eq!(
            x(ban("k", &room(), &bob, None)),
            format!("{head}<item affiliation='outcast' jid='bob@cusax.test'/></query></iq>")
        );
        for (a, s) in [
            (Affiliation::Member, "member"),
            (Affiliation::Admin, "admin"),
            (Affiliation::Owner, "owner"),
        ] {
            assert!(
                x(set_affiliation("k", &room(), &bob, a, None))
                    .contains(&format!("affiliation='{s}'"))
            );
        }
        assert_eq!(
            x(affiliation_list("l", &room(), Affiliation::Outcast)),
            format!(
                "<iq xmlns='jabber:client' to='{R}' id='l' type='get'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/></query></iq>"
            )
        );
        assert!(x(role_list("l", &room(), Role::Moderator)).contains("<item role='moderator'/>"));
        let res = Iq::try_from(test_parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='l' from='{R}'><query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item affiliation='member' jid='bob@cusax.test' nick='bobby'/><item affiliation='member' jid='carol@cusax.test'><reason>r</reason></item>\
             </query></iq>"
        )))
        .expect("iq");
        let items = parse_admin_list(&res).expect("list");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].nick.as_deref(), Some("bobby"));
        assert_eq!(items[1].affiliation, Some(Affiliation::Member));
        assert_eq!(items[1].reason.as_deref(), Some("r"));
        assert_eq!(
            items[1].jid.as_ref().map(|j| j.as_str()),
            Some("carol@cusax.test")
        );
        for bad in [
            "<item affiliation='king'/>",
            "<item role='god'/>",
            "<item jid='@'/>",
        ] {
            let iq = Iq::try_from(test_parse(&format!(
                "<iq xmlns='jabber:client' type='result' id='l'><query xmlns='http://jabber.org/protocol/muc#admin'>{bad}</query></iq>"
            )))
            .expect("iq");
            assert!(parse_admin_list(&iq).is_err(), "{bad}");
        }
        let empty = Iq::try_from(test_parse(
            "<iq xmlns='jabber:client' type='result' id='l'/>",
        ))
        .expect("iq");
        assert!(parse_admin_list(&empty).is_err());
    }

    #[test]
    fn owner_configuration_and_destruction() {
        let x = |iq: Iq| Element::from(iq).to_xml();
        assert_eq!(
            x(request_config("c", &room())),
            format!(
                "<iq xmlns='jabber:client' to='{R}' id='c' type='get'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"
            )
        );
        let res = Iq::try_from(test_parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='c' from='{R}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='form'><title>Config</title>\
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field type='fixed'><value>Basics</value></field>\
             <field var='muc#roomconfig_roomname' type='text-single' label='Name'><value>old</value></field>\
             <field var='muc#roomconfig_moderatedroom' type='boolean'><value>0</value></field>\
             <field var='muc#roomconfig_whois' type='list-single'><option label='All'><value>anyone</value></option><value>moderators</value></field>\
             </x></query></iq>"
        )))
        .expect("iq");
        let mut form = parse_config_form(&res).expect("form");
        assert_eq!(form.form_type.as_deref(), Some(FORM_ROOMCONFIG));
        form.set_value("muc#roomconfig_roomname", "new");
        form.set_value("muc#roomconfig_moderatedroom", "1");
        let sent = x(submit_config("s", &room(), &form));
        assert!(sent.starts_with(&format!("<iq xmlns='jabber:client' to='{R}' id='s' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>")), "{sent}");
        assert!(
            sent.contains("<value>http://jabber.org/protocol/muc#roomconfig</value>"),
            "{sent}"
        );
        assert!(
            sent.contains("var='muc#roomconfig_roomname'") && sent.contains("<value>new</value>"),
            "{sent}"
        );
        assert!(
            !sent.contains("Basics") && !sent.contains("label=") && !sent.contains("<option"),
            "{sent}"
        );
        let back = DataForm::from_element(
            test_parse(&sent)
                .child("query", NS_MUC_OWNER)
                .and_then(|q| q.child("x", crate::forms::NS_DATA))
                .expect("x"),
        )
        .expect("form");
        assert_eq!(back.value("muc#roomconfig_moderatedroom"), Some("1"));
        assert_eq!(back.value("muc#roomconfig_whois"), Some("moderators"));
        assert!(
            parse_config_form(
                &Iq::try_from(test_parse(
                    "<iq xmlns='jabber:client' type='result' id='c'/>"
                ))
                .expect("iq")
            )
            .is_err()
        );
        assert!(
            x(cancel_config("c", &room())).contains("<x xmlns='jabber:x:data' type='cancel'/>")
        );
        let alt = BareJid::new("other@conference.cusax.test").expect("jid");
        assert_eq!(
            x(destroy("d", &room(), Some(&alt), Some("bye"), None)),
            format!(
                "<iq xmlns='jabber:client' to='{R}' id='d' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <destroy jid='other@conference.cusax.test'><reason>bye</reason></destroy></query></iq>"
            )
        );
    }

    #[test]
    fn occupant_limit() {
        let mut r = MucRoom::new(room(), "alice");
        for i in 0..=MAX_OCCUPANTS {
            let p = Presence {
                from: Some(Jid::new(&format!("{R}/n{i}")).expect("jid")),
                ..Presence::default()
            };
            r.handle_presence(&p);
        }
        assert_eq!(r.occupants().count(), MAX_OCCUPANTS);
    }

    #[test]
    fn room_info_audio_video_uri() {
        for var in [
            "audio-video-uri",
            "muc#roominfo_audio-video-uri",
            "{urn:ietf:rfc:7081}audio-video-uri",
        ] {
            let d = DiscoInfo::from_element(&test_parse(&format!(
                "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text' name='CUSAX'/>\
                 <feature var='muc_passwordprotected'/>\
                 <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>{FORM_ROOMINFO}</value></field>\
                 <field var='muc#roominfo_description'><value>Desc</value></field>\
                 <field var='muc#roominfo_occupants'><value>2</value></field>\
                 <field var='{var}'><value>sip:cusax-room@cusax.test</value></field></x></query>"
            )))
            .expect("disco");
            let info = RoomInfo::from_disco(&d);
            assert_eq!(
                info.audio_video_uri.as_deref(),
                Some("sip:cusax-room@cusax.test"),
                "{var}"
            );
            assert_eq!(info.name.as_deref(), Some("CUSAX"));
            assert_eq!(info.description.as_deref(), Some("Desc"));
            assert_eq!(info.occupants, Some(2));
            assert!(info.password_protected && !info.members_only);
        }
        assert!(!is_audio_video_var("audio-video"));
        assert!(!is_audio_video_var("{x}audio-video-urix"));
        assert_eq!(
            RoomInfo::from_disco(&DiscoInfo::default()),
            RoomInfo::default()
        );
    }
}
