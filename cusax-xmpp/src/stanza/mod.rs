//! Typed stanzas (RFC 6120 §8): message, presence, iq; unknown children preserved.
//!
//! Every type converts from an [`Element`] with `TryFrom` (returning a [`ParseError`]
//! that names what the peer got wrong) and back with `From<X> for Element`. Children this
//! module does not model are kept in `payloads` and written back in their original order
//! after the modelled ones.

use std::collections::BTreeMap;

use jid::Jid;

use crate::xml::element::Element;
pub use crate::xml::parser::NS_CLIENT;

mod error;
pub mod pubsub;

pub use error::{Condition, ErrorType, NS_STANZAS, StanzaError};

/// Namespace of message delivery receipts (XEP-0184).
pub const NS_RECEIPTS: &str = "urn:xmpp:receipts";

/// Most children of one kind (bodies, statuses…) accepted in one stanza.
pub const MAX_REPEATED: usize = 64;

/// The peer sent a stanza or payload that does not follow its specification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The element is not the one the parser handles.
    #[error("peer sent <{found} xmlns='{found_ns}'> where <{expected}> was expected")]
    WrongElement {
        /// Expected local name.
        expected: &'static str,
        /// Name found.
        found: String,
        /// Namespace found.
        found_ns: String,
    },
    /// A required attribute is absent.
    #[error("peer sent <{element}> without its required attribute '{attr}'")]
    MissingAttr {
        /// Element name.
        element: &'static str,
        /// Attribute name.
        attr: &'static str,
    },
    /// An attribute has a value outside its allowed set.
    #[error("peer sent <{element}> with invalid {attr}='{value}'")]
    InvalidAttr {
        /// Element name.
        element: &'static str,
        /// Attribute name.
        attr: &'static str,
        /// Value found.
        value: String,
    },
    /// A JID attribute or element does not parse (RFC 7622).
    #[error("peer sent an invalid JID '{value}' in {element}/{attr}: {reason}")]
    InvalidJid {
        /// Element name.
        element: &'static str,
        /// Attribute or child name.
        attr: &'static str,
        /// Value found.
        value: String,
        /// Why the `jid` crate refused it.
        reason: String,
    },
    /// A required child element is absent.
    #[error("peer sent <{element}> without its required child {child}")]
    MissingChild {
        /// Element name.
        element: &'static str,
        /// Child description.
        child: &'static str,
    },
    /// The content of an element is invalid.
    #[error("peer sent invalid content in <{element}>: {reason}")]
    InvalidContent {
        /// Element name.
        element: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// More children of one kind than this library accepts.
    #[error("peer sent more than {limit} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

impl ParseError {
    pub(crate) fn wrong(expected: &'static str, _expected_ns: &str, found: &Element) -> Self {
        ParseError::WrongElement {
            expected,
            found: found.name.clone(),
            found_ns: found.ns.clone(),
        }
    }

    pub(crate) fn content(element: &'static str, reason: impl Into<String>) -> Self {
        ParseError::InvalidContent {
            element,
            reason: reason.into(),
        }
    }
}

/// Checks that `e` is `<name xmlns='ns'>`.
pub(crate) fn expect(e: &Element, name: &'static str, ns: &str) -> Result<(), ParseError> {
    if e.is(name, ns) {
        Ok(())
    } else {
        Err(ParseError::wrong(name, ns, e))
    }
}

/// Parses an optional JID attribute.
pub(crate) fn parse_jid_attr(
    e: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<Jid>, ParseError> {
    match e.attr(attr) {
        None => Ok(None),
        Some(v) => parse_jid(v, element, attr).map(Some),
    }
}

/// Parses a JID string found in `element`/`attr`.
pub(crate) fn parse_jid(
    v: &str,
    element: &'static str,
    attr: &'static str,
) -> Result<Jid, ParseError> {
    Jid::new(v).map_err(|e| ParseError::InvalidJid {
        element,
        attr,
        value: v.to_owned(),
        reason: e.to_string(),
    })
}

/// Parses an XML fragment in tests (one element, namespaces declared inline).
#[cfg(test)]
pub(crate) fn test_parse(xml: &str) -> Element {
    use crate::xml::parser::{StreamParser, XmlEvent, XmlLimits};
    let mut p = StreamParser::new(XmlLimits::default());
    p.feed(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    p.feed(xml.as_bytes());
    loop {
        match p.next_event() {
            Ok(Some(XmlEvent::Stanza(e))) => return e,
            Ok(Some(_)) => continue,
            other => panic!("test XML did not parse: {other:?} in {xml}"),
        }
    }
}

fn set_opt_attr(e: &mut Element, name: &str, v: Option<&str>) {
    if let Some(v) = v {
        e.set_attr(name, v);
    }
}

fn check_stanza_ns(e: &Element, name: &'static str) -> Result<(), ParseError> {
    if e.name != name || (e.ns != NS_CLIENT && e.ns != "jabber:server") {
        return Err(ParseError::wrong(name, NS_CLIENT, e));
    }
    Ok(())
}

/// Collects `<name/>` children keyed by `xml:lang` ("" when absent; RFC 6120 §8.1.5).
/// The first child per language wins; its strings are moved, not copied.
fn insert_lang(
    map: &mut BTreeMap<String, String>,
    mut c: Element,
    what: &'static str,
) -> Result<(), ParseError> {
    if map.len() >= MAX_REPEATED {
        return Err(ParseError::TooMany {
            what,
            limit: MAX_REPEATED,
        });
    }
    let lang = c.remove_attr("xml:lang").unwrap_or_default();
    if let std::collections::btree_map::Entry::Vacant(slot) = map.entry(lang) {
        slot.insert(c.into_text());
    }
    Ok(())
}

fn lang_children(e: &mut Element, name: &str, map: &BTreeMap<String, String>) {
    for (lang, text) in map {
        let mut c = Element::new(name, NS_CLIENT).with_text(text.clone());
        if !lang.is_empty() {
            c.set_attr("xml:lang", lang.clone());
        }
        e.push_child(c);
    }
}

/// Picks the text for `lang`, else the one without `xml:lang`, else any.
fn pick_lang<'a>(map: &'a BTreeMap<String, String>, lang: Option<&str>) -> Option<&'a str> {
    lang.and_then(|l| map.get(l))
        .or_else(|| map.get(""))
        .or_else(|| map.values().next())
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------
// <message/>

/// The `type` of a message (RFC 6121 §5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MessageType {
    /// One-to-one chat.
    Chat,
    /// Standalone message (also used for a missing or unknown `type`, RFC 6121 §5.2.2).
    #[default]
    Normal,
    /// Multi-user chat (XEP-0045).
    Groupchat,
    /// Alert or notification; no reply expected.
    Headline,
    /// Error reply.
    Error,
}

impl MessageType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Chat => "chat",
            MessageType::Normal => "normal",
            MessageType::Groupchat => "groupchat",
            MessageType::Headline => "headline",
            MessageType::Error => "error",
        }
    }
}

/// A `<thread/>` (RFC 6121 §5.2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// The thread identifier.
    pub id: String,
    /// The parent thread, if any.
    pub parent: Option<String>,
}

/// A delivery-receipt element (XEP-0184).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// `<request/>`: the sender asks for a receipt.
    Request,
    /// `<received id='…'/>`: acknowledges the message with that id.
    Received(Option<String>),
}

/// A `<message/>` stanza (RFC 6121 §5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Sender.
    pub from: Option<Jid>,
    /// Recipient.
    pub to: Option<Jid>,
    /// Stanza id.
    pub id: Option<String>,
    /// Message type.
    pub kind: MessageType,
    /// `xml:lang` of the stanza.
    pub lang: Option<String>,
    /// Bodies keyed by `xml:lang` ("" for none).
    pub bodies: BTreeMap<String, String>,
    /// Subjects keyed by `xml:lang` ("" for none).
    pub subjects: BTreeMap<String, String>,
    /// Conversation thread.
    pub thread: Option<Thread>,
    /// Delivery receipt request or acknowledgement (XEP-0184).
    pub receipt: Option<Receipt>,
    /// The error, for `type='error'`.
    pub error: Option<StanzaError>,
    /// Other children, preserved in order.
    pub payloads: Vec<Element>,
}

impl Message {
    /// A new message of `kind` to `to`.
    pub fn new(kind: MessageType, to: Option<Jid>) -> Self {
        Message {
            kind,
            to,
            ..Message::default()
        }
    }

    /// A `type='chat'` message with one body.
    pub fn chat(to: Jid, body: impl Into<String>) -> Self {
        Message::new(MessageType::Chat, Some(to)).with_body(body)
    }

    /// Builder: sets the body without `xml:lang`.
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.bodies.insert(String::new(), body.into());
        self
    }

    /// Builder: sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The body in the stanza's language, else any body.
    pub fn body(&self) -> Option<&str> {
        pick_lang(&self.bodies, self.lang.as_deref())
    }

    /// The subject in the stanza's language, else any subject.
    pub fn subject(&self) -> Option<&str> {
        pick_lang(&self.subjects, self.lang.as_deref())
    }

    /// The first payload named `name` in `ns`.
    pub fn payload(&self, name: &str, ns: &str) -> Option<&Element> {
        self.payloads.iter().find(|p| p.is(name, ns))
    }

    /// The receipt answering this message (XEP-0184 §5), if it asked for one and has an
    /// id and a sender; never for errors or groupchat (XEP-0184 §5.4 / §7).
    pub fn receipt_reply(&self) -> Option<Message> {
        if self.receipt != Some(Receipt::Request)
            || matches!(self.kind, MessageType::Error | MessageType::Groupchat)
        {
            return None;
        }
        let mut m = Message::new(self.kind, self.from.clone());
        m.id = self.id.as_ref().map(|id| format!("rcpt-{id}"));
        m.receipt = Some(Receipt::Received(Some(self.id.clone()?)));
        Some(m)
    }
}

impl TryFrom<Element> for Message {
    type Error = ParseError;

    fn try_from(mut e: Element) -> Result<Self, ParseError> {
        check_stanza_ns(&e, "message")?;
        let mut m = Message {
            from: parse_jid_attr(&e, "message", "from")?,
            to: parse_jid_attr(&e, "message", "to")?,
            kind: match e.attr("type") {
                Some("chat") => MessageType::Chat,
                Some("groupchat") => MessageType::Groupchat,
                Some("headline") => MessageType::Headline,
                Some("error") => MessageType::Error,
                _ => MessageType::Normal,
            },
            id: e.remove_attr("id"),
            lang: e.remove_attr("xml:lang"),
            ..Message::default()
        };
        let Element {
            ns: stanza_ns,
            children,
            ..
        } = e;
        for n in children {
            let crate::xml::element::Node::Element(mut c) = n else {
                continue;
            };
            if c.ns == stanza_ns {
                match c.name.as_str() {
                    "body" => insert_lang(&mut m.bodies, c, "bodies")?,
                    "subject" => insert_lang(&mut m.subjects, c, "subjects")?,
                    "thread" if m.thread.is_none() => {
                        let parent = c.remove_attr("parent");
                        m.thread = Some(Thread {
                            id: c.into_text(),
                            parent,
                        });
                    }
                    "error" if m.kind == MessageType::Error && m.error.is_none() => {
                        m.error = Some(StanzaError::from_element(&c)?);
                    }
                    _ => m.payloads.push(c),
                }
            } else if c.ns == NS_RECEIPTS && m.receipt.is_none() && c.name == "request" {
                m.receipt = Some(Receipt::Request);
            } else if c.ns == NS_RECEIPTS && m.receipt.is_none() && c.name == "received" {
                m.receipt = Some(Receipt::Received(c.remove_attr("id")));
            } else {
                if m.payloads.len() >= MAX_REPEATED {
                    return Err(ParseError::TooMany {
                        what: "payloads in a message",
                        limit: MAX_REPEATED,
                    });
                }
                m.payloads.push(c);
            }
        }
        Ok(m)
    }
}

impl From<Message> for Element {
    fn from(m: Message) -> Element {
        let mut e = Element::new("message", NS_CLIENT);
        set_opt_attr(&mut e, "from", m.from.as_ref().map(|j| j.as_str()));
        set_opt_attr(&mut e, "to", m.to.as_ref().map(|j| j.as_str()));
        set_opt_attr(&mut e, "id", m.id.as_deref());
        if m.kind != MessageType::Normal {
            e.set_attr("type", m.kind.as_str());
        }
        set_opt_attr(&mut e, "xml:lang", m.lang.as_deref());
        lang_children(&mut e, "subject", &m.subjects);
        lang_children(&mut e, "body", &m.bodies);
        if let Some(t) = m.thread {
            let mut te = Element::new("thread", NS_CLIENT).with_text(t.id);
            set_opt_attr(&mut te, "parent", t.parent.as_deref());
            e.push_child(te);
        }
        match m.receipt {
            Some(Receipt::Request) => e.push_child(Element::new("request", NS_RECEIPTS)),
            Some(Receipt::Received(id)) => {
                let mut r = Element::new("received", NS_RECEIPTS);
                set_opt_attr(&mut r, "id", id.as_deref());
                e.push_child(r);
            }
            None => {}
        }
        if let Some(err) = m.error {
            e.push_child(err.to_element(NS_CLIENT));
        }
        for p in m.payloads {
            e.push_child(p);
        }
        e
    }
}

// ---------------------------------------------------------------------------------------
// <presence/>

/// The `type` of a presence (RFC 6121 §4.7.1); absent means available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PresenceType {
    /// No `type`: the entity is available.
    #[default]
    Available,
    /// No longer available.
    Unavailable,
    /// Subscription request.
    Subscribe,
    /// Subscription approved.
    Subscribed,
    /// Unsubscribe request.
    Unsubscribe,
    /// Subscription denied or cancelled.
    Unsubscribed,
    /// Request for current presence (server use).
    Probe,
    /// Error reply.
    Error,
}

impl PresenceType {
    /// The attribute value (`None` for available).
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            PresenceType::Available => return None,
            PresenceType::Unavailable => "unavailable",
            PresenceType::Subscribe => "subscribe",
            PresenceType::Subscribed => "subscribed",
            PresenceType::Unsubscribe => "unsubscribe",
            PresenceType::Unsubscribed => "unsubscribed",
            PresenceType::Probe => "probe",
            PresenceType::Error => "error",
        })
    }
}

/// `<show/>` (RFC 6121 §4.7.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Show {
    /// Temporarily away.
    Away,
    /// Actively interested in chatting.
    Chat,
    /// Do not disturb.
    Dnd,
    /// Extended away.
    Xa,
}

impl Show {
    /// The element text.
    pub fn as_str(self) -> &'static str {
        match self {
            Show::Away => "away",
            Show::Chat => "chat",
            Show::Dnd => "dnd",
            Show::Xa => "xa",
        }
    }

    /// Parses the element text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "away" => Show::Away,
            "chat" => Show::Chat,
            "dnd" => Show::Dnd,
            "xa" => Show::Xa,
            _ => return None,
        })
    }
}

/// A `<presence/>` stanza (RFC 6121 §4).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Presence {
    /// Sender.
    pub from: Option<Jid>,
    /// Recipient (directed presence when set).
    pub to: Option<Jid>,
    /// Stanza id.
    pub id: Option<String>,
    /// Presence type.
    pub kind: PresenceType,
    /// `xml:lang` of the stanza.
    pub lang: Option<String>,
    /// Availability sub-state.
    pub show: Option<Show>,
    /// Status texts keyed by `xml:lang` ("" for none).
    pub statuses: BTreeMap<String, String>,
    /// Priority, -128..=127 (0 when absent, RFC 6121 §4.7.2.3).
    pub priority: i8,
    /// The error, for `type='error'`.
    pub error: Option<StanzaError>,
    /// Other children (caps, reach, muc#user…), preserved in order.
    pub payloads: Vec<Element>,
}

impl Presence {
    /// A presence of `kind` (to nobody: broadcast).
    pub fn new(kind: PresenceType) -> Self {
        Presence {
            kind,
            ..Presence::default()
        }
    }

    /// The status in the stanza's language, else any.
    pub fn status(&self) -> Option<&str> {
        pick_lang(&self.statuses, self.lang.as_deref())
    }

    /// Builder: sets the status without `xml:lang`.
    pub fn with_status(mut self, s: impl Into<String>) -> Self {
        self.statuses.insert(String::new(), s.into());
        self
    }

    /// The first payload named `name` in `ns`.
    pub fn payload(&self, name: &str, ns: &str) -> Option<&Element> {
        self.payloads.iter().find(|p| p.is(name, ns))
    }
}

impl TryFrom<Element> for Presence {
    type Error = ParseError;

    fn try_from(mut e: Element) -> Result<Self, ParseError> {
        check_stanza_ns(&e, "presence")?;
        let kind = match e.attr("type") {
            None => PresenceType::Available,
            Some("unavailable") => PresenceType::Unavailable,
            Some("subscribe") => PresenceType::Subscribe,
            Some("subscribed") => PresenceType::Subscribed,
            Some("unsubscribe") => PresenceType::Unsubscribe,
            Some("unsubscribed") => PresenceType::Unsubscribed,
            Some("probe") => PresenceType::Probe,
            Some("error") => PresenceType::Error,
            Some(other) => {
                return Err(ParseError::InvalidAttr {
                    element: "presence",
                    attr: "type",
                    value: other.to_owned(),
                });
            }
        };
        let mut p = Presence {
            from: parse_jid_attr(&e, "presence", "from")?,
            to: parse_jid_attr(&e, "presence", "to")?,
            id: e.remove_attr("id"),
            lang: e.remove_attr("xml:lang"),
            kind,
            ..Presence::default()
        };
        let Element {
            ns: stanza_ns,
            children,
            ..
        } = e;
        for n in children {
            let crate::xml::element::Node::Element(c) = n else {
                continue;
            };
            if c.ns == stanza_ns {
                match c.name.as_str() {
                    "show" => {
                        let t = c.text_cow();
                        p.show = Some(Show::parse(&t).ok_or_else(|| {
                            ParseError::content("show", format!("unknown show '{t}'"))
                        })?);
                    }
                    "status" => insert_lang(&mut p.statuses, c, "statuses")?,
                    "priority" => {
                        let t = c.text_cow();
                        p.priority = t.trim().parse::<i8>().map_err(|_| {
                            ParseError::content("priority", format!("'{t}' is not in -128..=127"))
                        })?;
                    }
                    "error" if p.kind == PresenceType::Error && p.error.is_none() => {
                        p.error = Some(StanzaError::from_element(&c)?);
                    }
                    _ => p.payloads.push(c),
                }
            } else {
                if p.payloads.len() >= MAX_REPEATED {
                    return Err(ParseError::TooMany {
                        what: "payloads in a presence",
                        limit: MAX_REPEATED,
                    });
                }
                p.payloads.push(c);
            }
        }
        Ok(p)
    }
}

impl From<Presence> for Element {
    fn from(p: Presence) -> Element {
        let mut e = Element::new("presence", NS_CLIENT);
        set_opt_attr(&mut e, "from", p.from.as_ref().map(|j| j.as_str()));
        set_opt_attr(&mut e, "to", p.to.as_ref().map(|j| j.as_str()));
        set_opt_attr(&mut e, "id", p.id.as_deref());
        set_opt_attr(&mut e, "type", p.kind.as_str());
        set_opt_attr(&mut e, "xml:lang", p.lang.as_deref());
        if let Some(s) = p.show {
            e.push_child(Element::new("show", NS_CLIENT).with_text(s.as_str()));
        }
        lang_children(&mut e, "status", &p.statuses);
        if p.priority != 0 {
            e.push_child(Element::new("priority", NS_CLIENT).with_text(p.priority.to_string()));
        }
        if let Some(err) = p.error {
            e.push_child(err.to_element(NS_CLIENT));
        }
        for c in p.payloads {
            e.push_child(c);
        }
        e
    }
}

// ---------------------------------------------------------------------------------------
// <iq/>

/// The `type` of an iq (RFC 6120 §8.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IqType {
    /// Request for information.
    Get,
    /// Request to change something.
    Set,
    /// Successful response.
    Result,
    /// Error response.
    Error,
}

impl IqType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }

    /// Whether this is a request (get/set) that must be answered (RFC 6120 §8.2.3).
    pub fn is_request(self) -> bool {
        matches!(self, IqType::Get | IqType::Set)
    }
}

/// An `<iq/>` stanza (RFC 6120 §8.2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iq {
    /// Sender.
    pub from: Option<Jid>,
    /// Recipient.
    pub to: Option<Jid>,
    /// Request id, echoed in the response (required).
    pub id: String,
    /// Iq type.
    pub kind: IqType,
    /// The single payload (required for get/set, optional for result and error).
    pub payload: Option<Element>,
    /// The error, for `type='error'`.
    pub error: Option<StanzaError>,
}

impl Iq {
    /// A `get` request.
    pub fn get(id: impl Into<String>, to: Option<Jid>, payload: Element) -> Self {
        Iq {
            from: None,
            to,
            id: id.into(),
            kind: IqType::Get,
            payload: Some(payload),
            error: None,
        }
    }

    /// A `set` request.
    pub fn set(id: impl Into<String>, to: Option<Jid>, payload: Element) -> Self {
        Iq {
            kind: IqType::Set,
            ..Iq::get(id, to, payload)
        }
    }

    /// The `result` answering `req` (addressed to its sender, same id).
    pub fn result_for(req: &Iq, payload: Option<Element>) -> Self {
        Iq {
            from: None,
            to: req.from.clone(),
            id: req.id.clone(),
            kind: IqType::Result,
            payload,
            error: None,
        }
    }

    /// The `error` answering `req` (RFC 6120 §8.3.1: the request payload may be echoed;
    /// it is not).
    pub fn error_for(req: &Iq, error: StanzaError) -> Self {
        Iq {
            from: None,
            to: req.from.clone(),
            id: req.id.clone(),
            kind: IqType::Error,
            payload: None,
            error: Some(error),
        }
    }

    /// The payload if it is `name` in `ns`.
    pub fn payload_is(&self, name: &str, ns: &str) -> Option<&Element> {
        self.payload.as_ref().filter(|p| p.is(name, ns))
    }
}

impl TryFrom<Element> for Iq {
    type Error = ParseError;

    fn try_from(e: Element) -> Result<Self, ParseError> {
        check_stanza_ns(&e, "iq")?;
        let id = e
            .attr("id")
            .ok_or(ParseError::MissingAttr {
                element: "iq",
                attr: "id",
            })?
            .to_owned();
        let kind = match e.attr("type") {
            Some("get") => IqType::Get,
            Some("set") => IqType::Set,
            Some("result") => IqType::Result,
            Some("error") => IqType::Error,
            Some(other) => {
                return Err(ParseError::InvalidAttr {
                    element: "iq",
                    attr: "type",
                    value: other.to_owned(),
                });
            }
            None => {
                return Err(ParseError::MissingAttr {
                    element: "iq",
                    attr: "type",
                });
            }
        };
        let from = parse_jid_attr(&e, "iq", "from")?;
        let to = parse_jid_attr(&e, "iq", "to")?;
        let stanza_ns = e.ns.clone();
        let mut payload = None;
        let mut error = None;
        for n in e.children {
            let crate::xml::element::Node::Element(c) = n else {
                continue;
            };
            if kind == IqType::Error && error.is_none() && c.is("error", &stanza_ns) {
                error = Some(StanzaError::from_element(&c)?);
            } else if payload.is_none() {
                payload = Some(c);
            } else if kind != IqType::Error {
                return Err(ParseError::content("iq", "more than one payload child"));
            }
        }
        match kind {
            IqType::Get | IqType::Set if payload.is_none() => {
                return Err(ParseError::MissingChild {
                    element: "iq",
                    child: "payload",
                });
            }
            IqType::Error if error.is_none() => {
                return Err(ParseError::MissingChild {
                    element: "iq",
                    child: "<error/>",
                });
            }
            _ => {}
        }
        Ok(Iq {
            from,
            to,
            id,
            kind,
            payload,
            error,
        })
    }
}

impl From<Iq> for Element {
    fn from(iq: Iq) -> Element {
        let mut e = Element::new("iq", NS_CLIENT);
        set_opt_attr(&mut e, "from", iq.from.as_ref().map(|j| j.as_str()));
        set_opt_attr(&mut e, "to", iq.to.as_ref().map(|j| j.as_str()));
        e.set_attr("id", iq.id);
        e.set_attr("type", iq.kind.as_str());
        if let Some(p) = iq.payload {
            e.push_child(p);
        }
        if let Some(err) = iq.error {
            e.push_child(err.to_element(NS_CLIENT));
        }
        e
    }
}

/// Any of the three stanzas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stanza {
    /// `<message/>`
    Message(Message),
    /// `<presence/>`
    Presence(Presence),
    /// `<iq/>`
    Iq(Iq),
}

impl TryFrom<Element> for Stanza {
    type Error = ParseError;

    fn try_from(e: Element) -> Result<Self, ParseError> {
        match e.name.as_str() {
            "message" => Message::try_from(e).map(Stanza::Message),
            "presence" => Presence::try_from(e).map(Stanza::Presence),
            "iq" => Iq::try_from(e).map(Stanza::Iq),
            _ => Err(ParseError::wrong("message|presence|iq", NS_CLIENT, &e)),
        }
    }
}

impl From<Stanza> for Element {
    fn from(s: Stanza) -> Element {
        match s {
            Stanza::Message(m) => m.into(),
            Stanza::Presence(p) => p.into(),
            Stanza::Iq(i) => i.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).expect("jid")
    }

    #[test]
    fn size() {
        // Stanzas move through channels; keep them a few hundred bytes at most.
        assert!(
            std::mem::size_of::<Message>() <= 512,
            "{}",
            std::mem::size_of::<Message>()
        );
        assert!(std::mem::size_of::<Presence>() <= 512);
        assert!(std::mem::size_of::<Iq>() <= 512);
    }

    #[test]
    fn message_parse_full() {
        let e = test_parse(
            "<message xmlns='jabber:client' from='alice@cusax.test/a' to='bob@cusax.test' id='m1' type='chat' xml:lang='en'>\
             <body>Hello</body><body xml:lang='de'>Hallo</body><subject>s</subject>\
             <thread parent='p0'>t1</thread><request xmlns='urn:xmpp:receipts'/>\
             <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        );
        let m = Message::try_from(e).expect("valid");
        assert_eq!(m.from, Some(jid("alice@cusax.test/a")));
        assert_eq!(m.kind, MessageType::Chat);
        assert_eq!(m.body(), Some("Hello"));
        assert_eq!(m.bodies.get("de").map(String::as_str), Some("Hallo"));
        assert_eq!(m.subject(), Some("s"));
        assert_eq!(
            m.thread,
            Some(Thread {
                id: "t1".into(),
                parent: Some("p0".into())
            })
        );
        assert_eq!(m.receipt, Some(Receipt::Request));
        assert_eq!(m.payloads.len(), 1);
        assert!(
            m.payload("active", "http://jabber.org/protocol/chatstates")
                .is_some()
        );
        // Round trip.
        let back = Message::try_from(Element::from(m.clone())).expect("rt");
        assert_eq!(back, m);
        // Receipt reply.
        let r = m.receipt_reply().expect("reply");
        assert_eq!(r.to, Some(jid("alice@cusax.test/a")));
        assert_eq!(r.receipt, Some(Receipt::Received(Some("m1".into()))));
    }

    #[test]
    fn message_type_defaults_to_normal() {
        for xml in [
            "<message xmlns='jabber:client'><body>x</body></message>",
            "<message xmlns='jabber:client' type='weird'><body>x</body></message>",
        ] {
            let m = Message::try_from(test_parse(xml)).expect("valid");
            assert_eq!(m.kind, MessageType::Normal);
        }
        let e: Element = Message::chat(jid("bob@cusax.test"), "hi <3").into();
        assert_eq!(
            e.to_xml(),
            "<message xmlns='jabber:client' to='bob@cusax.test' type='chat'><body>hi &lt;3</body></message>"
        );
        let m = Message::default();
        assert_eq!(m.body(), None);
        assert!(m.receipt_reply().is_none());
    }

    #[test]
    fn message_error() {
        let m = Message::try_from(test_parse(
            "<message xmlns='jabber:client' type='error' id='x'><body>orig</body>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        ))
        .expect("valid");
        assert_eq!(
            m.error.as_ref().map(|e| e.condition.clone()),
            Some(Condition::ServiceUnavailable)
        );
        assert!(m.receipt_reply().is_none());
    }

    #[test]
    fn message_invalid() {
        for (xml, want) in [
            ("<message xmlns='jabber:client' from='a@@b'/>", "from"),
            ("<message xmlns='urn:other'/>", "message"),
            (
                "<iq xmlns='jabber:client' id='1' type='get'><q xmlns='x'/></iq>",
                "iq",
            ),
            (
                "<message xmlns='jabber:client' type='error'><error type='bad'><x xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
                "bad",
            ),
        ] {
            let err = Message::try_from(test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err}");
        }
        let mut big = String::from("<message xmlns='jabber:client'>");
        for i in 0..=MAX_REPEATED {
            big.push_str(&format!("<body xml:lang='l{i}'>x</body>"));
        }
        big.push_str("</message>");
        assert!(matches!(
            Message::try_from(test_parse(&big)),
            Err(ParseError::TooMany { .. })
        ));
    }

    #[test]
    fn presence_parse_and_build() {
        let e = test_parse(
            "<presence xmlns='jabber:client' from='bob@cusax.test/phone'>\
             <show>dnd</show><status>busy</status><status xml:lang='fr'>occupé</status>\
             <priority>-5</priority>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
        );
        let p = Presence::try_from(e).expect("valid");
        assert_eq!(p.kind, PresenceType::Available);
        assert_eq!(p.show, Some(Show::Dnd));
        assert_eq!(p.status(), Some("busy"));
        assert_eq!(p.priority, -5);
        assert_eq!(p.payloads.len(), 1);
        let back = Presence::try_from(Element::from(p.clone())).expect("rt");
        assert_eq!(back, p);
        let e: Element = Presence::new(PresenceType::Unavailable).into();
        assert_eq!(
            e.to_xml(),
            "<presence xmlns='jabber:client' type='unavailable'/>"
        );
    }

    #[test]
    fn presence_invalid() {
        for (xml, want) in [
            ("<presence xmlns='jabber:client' type='nope'/>", "nope"),
            (
                "<presence xmlns='jabber:client'><show>busy</show></presence>",
                "busy",
            ),
            (
                "<presence xmlns='jabber:client'><priority>200</priority></presence>",
                "200",
            ),
            (
                "<presence xmlns='jabber:client'><priority>x</priority></presence>",
                "x",
            ),
            ("<presence xmlns='jabber:client' to=''/>", "to"),
        ] {
            let err = Presence::try_from(test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn iq_parse_and_build() {
        let iq = Iq::try_from(test_parse(
            "<iq xmlns='jabber:client' id='r1' type='get' from='alice@cusax.test/x'><query xmlns='jabber:iq:roster'/></iq>",
        ))
        .expect("valid");
        assert_eq!(iq.kind, IqType::Get);
        assert!(iq.kind.is_request());
        assert!(iq.payload_is("query", "jabber:iq:roster").is_some());
        let res = Iq::result_for(&iq, None);
        assert_eq!(
            Element::from(res).to_xml(),
            "<iq xmlns='jabber:client' to='alice@cusax.test/x' id='r1' type='result'/>"
        );
        let err = Iq::error_for(
            &iq,
            StanzaError::new(ErrorType::Cancel, Condition::FeatureNotImplemented),
        );
        let back = Iq::try_from(Element::from(err.clone())).expect("rt");
        assert_eq!(back, err);
        let empty_result = Iq::try_from(test_parse(
            "<iq xmlns='jabber:client' id='r2' type='result'/>",
        ))
        .expect("ok");
        assert!(empty_result.payload.is_none());
    }

    #[test]
    fn iq_invalid() {
        for (xml, want) in [
            (
                "<iq xmlns='jabber:client' type='get'><q xmlns='x'/></iq>",
                "id",
            ),
            (
                "<iq xmlns='jabber:client' id='1'><q xmlns='x'/></iq>",
                "type",
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='fetch'><q xmlns='x'/></iq>",
                "fetch",
            ),
            ("<iq xmlns='jabber:client' id='1' type='get'/>", "payload"),
            (
                "<iq xmlns='jabber:client' id='1' type='set'><a xmlns='x'/><b xmlns='x'/></iq>",
                "more than one",
            ),
            ("<iq xmlns='jabber:client' id='1' type='error'/>", "error"),
        ] {
            let err = Iq::try_from(test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn stanza_dispatch() {
        assert!(matches!(
            Stanza::try_from(test_parse("<presence xmlns='jabber:client'/>")),
            Ok(Stanza::Presence(_))
        ));
        assert!(Stanza::try_from(test_parse("<foo xmlns='jabber:client'/>")).is_err());
    }
}
