//! Roster management (RFC 6121 §2): items, versioning, pushes.
//!
//! Pure functions build the iqs (get with `ver`, set, remove) and parse results and
//! pushes; [`Roster`] is the client's copy, to which results and pushes are applied.

use std::collections::BTreeMap;

use jid::{BareJid, Jid};

use crate::stanza::{Iq, IqType, ParseError, expect};
use crate::xml::element::Element;

/// `jabber:iq:roster`
pub const NS_ROSTER: &str = "jabber:iq:roster";

/// Most items accepted in one roster result.
pub const MAX_ITEMS: usize = 10_000;
/// Most groups accepted on one item.
pub const MAX_GROUPS: usize = 64;

/// The `subscription` attribute (RFC 6121 §2.1.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Subscription {
    /// Neither side is subscribed.
    #[default]
    None,
    /// The user is subscribed to the contact's presence.
    To,
    /// The contact is subscribed to the user's presence.
    From,
    /// Both.
    Both,
    /// The item is removed (only in sets and pushes).
    Remove,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
            Subscription::Remove => "remove",
        }
    }

    /// Whether the user receives the contact's presence.
    pub fn receives_presence(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// Whether the contact receives the user's presence.
    pub fn sends_presence(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }
}

/// A roster `<item/>` (RFC 6121 §2.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterItem {
    /// The contact's bare JID.
    pub jid: BareJid,
    /// Handle chosen by the user.
    pub name: Option<String>,
    /// Subscription state.
    pub subscription: Subscription,
    /// `ask='subscribe'`: an outbound subscription request is pending.
    pub ask: bool,
    /// `approved='true'`: pre-approved (RFC 6121 §3.4).
    pub approved: bool,
    /// Groups.
    pub groups: Vec<String>,
}

impl RosterItem {
    /// A new item for `jid` with no name or groups.
    pub fn new(jid: BareJid) -> Self {
        RosterItem {
            jid,
            name: None,
            subscription: Subscription::None,
            ask: false,
            approved: false,
            groups: Vec::new(),
        }
    }

    /// Parses an `<item/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "item", NS_ROSTER)?;
        let j = e.attr("jid").ok_or(ParseError::MissingAttr {
            element: "item",
            attr: "jid",
        })?;
        let jid = BareJid::new(j).map_err(|err| ParseError::InvalidJid {
            element: "item",
            attr: "jid",
            value: j.to_owned(),
            reason: err.to_string(),
        })?;
        let subscription = match e.attr("subscription") {
            None | Some("none") => Subscription::None,
            Some("to") => Subscription::To,
            Some("from") => Subscription::From,
            Some("both") => Subscription::Both,
            Some("remove") => Subscription::Remove,
            Some(o) => {
                return Err(ParseError::InvalidAttr {
                    element: "item",
                    attr: "subscription",
                    value: o.to_owned(),
                });
            }
        };
        let mut groups: Vec<String> = Vec::new();
        for g in e.children_named("group", NS_ROSTER) {
            if groups.len() >= MAX_GROUPS {
                return Err(ParseError::TooMany {
                    what: "roster groups",
                    limit: MAX_GROUPS,
                });
            }
            let name = g.text();
            // RFC 6121 §2.1.2.2: duplicate and empty groups are not meaningful.
            if !name.is_empty() && !groups.contains(&name) {
                groups.push(name);
            }
        }
        Ok(RosterItem {
            jid,
            name: e.attr("name").filter(|n| !n.is_empty()).map(str::to_owned),
            subscription,
            ask: e.attr("ask") == Some("subscribe"),
            approved: matches!(e.attr("approved"), Some("true" | "1")),
            groups,
        })
    }

    /// Builds the `<item/>` as the server sends it (with subscription state).
    pub fn to_element(&self) -> Element {
        let mut e = self.to_set_element();
        if self.subscription != Subscription::None {
            e.set_attr("subscription", self.subscription.as_str());
        }
        if self.ask {
            e.set_attr("ask", "subscribe");
        }
        if self.approved {
            e.set_attr("approved", "true");
        }
        e
    }

    /// Builds the `<item/>` a client sends in a set: jid, name and groups only
    /// (RFC 6121 §2.1.2.5: a client must not set `subscription` other than `remove`).
    fn to_set_element(&self) -> Element {
        let mut e = Element::new("item", NS_ROSTER).with_attr("jid", self.jid.as_str());
        if let Some(n) = &self.name {
            e.set_attr("name", n.clone());
        }
        for g in &self.groups {
            e.push_child(Element::new("group", NS_ROSTER).with_text(g.clone()));
        }
        e
    }
}

/// A roster `<query/>`: a result or a push.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RosterQuery {
    /// The roster version (RFC 6121 §2.6).
    pub ver: Option<String>,
    /// Items.
    pub items: Vec<RosterItem>,
}

impl RosterQuery {
    /// Parses `<query xmlns='jabber:iq:roster'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "query", NS_ROSTER)?;
        let mut items = Vec::new();
        for c in e.children_named("item", NS_ROSTER) {
            if items.len() >= MAX_ITEMS {
                return Err(ParseError::TooMany {
                    what: "roster items",
                    limit: MAX_ITEMS,
                });
            }
            items.push(RosterItem::from_element(c)?);
        }
        Ok(RosterQuery {
            ver: e.attr("ver").map(str::to_owned),
            items,
        })
    }

    /// Builds the `<query/>`.
    pub fn to_element(&self) -> Element {
        let mut q = Element::new("query", NS_ROSTER);
        if let Some(v) = &self.ver {
            q.set_attr("ver", v.clone());
        }
        for i in &self.items {
            q.push_child(i.to_element());
        }
        q
    }
}

/// The roster get (RFC 6121 §2.2); `ver` is the cached version when the server
/// supports versioning (`""` asks for the full roster with versioning on, §2.6.2).
pub fn get(id: impl Into<String>, ver: Option<&str>) -> Iq {
    let mut q = Element::new("query", NS_ROSTER);
    if let Some(v) = ver {
        q.set_attr("ver", v);
    }
    Iq::get(id, None, q)
}

/// A roster set adding or updating `item` (RFC 6121 §2.3).
pub fn set(id: impl Into<String>, item: &RosterItem) -> Iq {
    Iq::set(
        id,
        None,
        Element::new("query", NS_ROSTER).with_child(item.to_set_element()),
    )
}

/// A roster set removing `jid` (RFC 6121 §2.5).
pub fn remove(id: impl Into<String>, jid: &BareJid) -> Iq {
    Iq::set(
        id,
        None,
        Element::new("query", NS_ROSTER).with_child(
            Element::new("item", NS_ROSTER)
                .with_attr("jid", jid.as_str())
                .with_attr("subscription", "remove"),
        ),
    )
}

/// Whether `iq` is a roster push (a set with a roster query).
pub fn is_push(iq: &Iq) -> bool {
    iq.kind == IqType::Set && iq.payload_is("query", NS_ROSTER).is_some()
}

/// A validated roster push: the item and the new version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterPush {
    /// The changed item (`subscription == Remove` for removals).
    pub item: RosterItem,
    /// The new roster version.
    pub ver: Option<String>,
}

/// Validates and parses a roster push (RFC 6121 §2.1.6): it must come from the user's
/// bare JID or carry no `from` (else it is spoofed and must be ignored), and hold exactly
/// one item. The caller answers a valid push with [`push_ack`].
pub fn parse_push(iq: &Iq, own: &BareJid) -> Result<RosterPush, ParseError> {
    if let Some(from) = &iq.from
        && !(from.is_bare() && from.to_bare() == *own)
    {
        return Err(ParseError::InvalidAttr {
            element: "iq",
            attr: "from",
            value: from.to_string(),
        });
    }
    let payload = iq
        .payload_is("query", NS_ROSTER)
        .ok_or(ParseError::MissingChild {
            element: "iq",
            child: "<query xmlns='jabber:iq:roster'/>",
        })?;
    let mut q = RosterQuery::from_element(payload)?;
    if q.items.len() != 1 {
        return Err(ParseError::content(
            "query",
            format!("a roster push holds {} items, not 1", q.items.len()),
        ));
    }
    let item = q.items.remove(0);
    Ok(RosterPush { item, ver: q.ver })
}

/// The empty result acknowledging a push (RFC 6121 §2.1.6).
pub fn push_ack(push: &Iq) -> Iq {
    Iq::result_for(push, None)
}

/// What applying a push or result changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RosterChange {
    /// An item was added.
    Added(RosterItem),
    /// An item was updated (new value).
    Updated(RosterItem),
    /// An item was removed.
    Removed(BareJid),
}

/// The client's copy of the roster, with its version.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Roster {
    /// The version of this copy (RFC 6121 §2.6).
    pub ver: Option<String>,
    items: BTreeMap<BareJid, RosterItem>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Roster::default()
    }

    /// The item for `jid`.
    pub fn get(&self, jid: &BareJid) -> Option<&RosterItem> {
        self.items.get(jid)
    }

    /// All items, ordered by JID.
    pub fn items(&self) -> impl Iterator<Item = &RosterItem> {
        self.items.values()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the roster is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The get to send, asking only for changes since this copy's version.
    pub fn request(&self, id: impl Into<String>, versioning: bool) -> Iq {
        get(
            id,
            if versioning {
                Some(self.ver.as_deref().unwrap_or(""))
            } else {
                None
            },
        )
    }

    /// Applies the result of a roster get (RFC 6121 §2.2 / §2.6.3): an empty result
    /// means the cached copy is current (changes follow as pushes); a query replaces
    /// the whole roster. Returns the changes against the previous copy.
    pub fn apply_result(&mut self, result: &Iq) -> Result<Vec<RosterChange>, ParseError> {
        let Some(payload) = &result.payload else {
            return Ok(Vec::new());
        };
        let q = RosterQuery::from_element(payload)?;
        let mut new: BTreeMap<BareJid, RosterItem> = BTreeMap::new();
        for it in q.items {
            if it.subscription != Subscription::Remove {
                new.insert(it.jid.clone(), it);
            }
        }
        let mut changes = Vec::new();
        for (j, it) in &new {
            match self.items.get(j) {
                None => changes.push(RosterChange::Added(it.clone())),
                Some(old) if old != it => changes.push(RosterChange::Updated(it.clone())),
                Some(_) => {}
            }
        }
        for j in self.items.keys() {
            if !new.contains_key(j) {
                changes.push(RosterChange::Removed(j.clone()));
            }
        }
        self.items = new;
        if q.ver.is_some() {
            self.ver = q.ver;
        }
        Ok(changes)
    }

    /// Applies a validated push; returns the change (None when nothing changed).
    pub fn apply_push(&mut self, push: RosterPush) -> Option<RosterChange> {
        if push.ver.is_some() {
            self.ver = push.ver;
        }
        let item = push.item;
        if item.subscription == Subscription::Remove {
            return self
                .items
                .remove(&item.jid)
                .map(|old| RosterChange::Removed(old.jid));
        }
        match self.items.insert(item.jid.clone(), item.clone()) {
            None => Some(RosterChange::Added(item)),
            Some(old) if old == item => None,
            Some(_) => Some(RosterChange::Updated(item)),
        }
    }
}

impl From<&Roster> for Vec<RosterItem> {
    fn from(r: &Roster) -> Self {
        r.items.values().cloned().collect()
    }
}

/// Convenience: the `Jid` form of a roster item's JID.
impl From<&RosterItem> for Jid {
    fn from(i: &RosterItem) -> Jid {
        Jid::from(i.jid.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).expect("jid")
    }

    fn iq(xml: &str) -> Iq {
        Iq::try_from(test_parse(xml)).expect("iq")
    }

    #[test]
    fn size() {
        assert!(
            std::mem::size_of::<RosterItem>() <= 128,
            "{}",
            std::mem::size_of::<RosterItem>()
        );
    }

    #[test]
    fn builders() {
        assert_eq!(
            Element::from(get("r1", Some("v1"))).to_xml(),
            "<iq xmlns='jabber:client' id='r1' type='get'><query xmlns='jabber:iq:roster' ver='v1'/></iq>"
        );
        let mut it = RosterItem::new(bare("bob@cusax.test"));
        it.name = Some("Bob".into());
        it.groups = vec!["Friends".into()];
        it.subscription = Subscription::Both;
        assert_eq!(
            Element::from(set("r2", &it)).to_xml(),
            "<iq xmlns='jabber:client' id='r2' type='set'><query xmlns='jabber:iq:roster'><item jid='bob@cusax.test' name='Bob'><group>Friends</group></item></query></iq>"
        );
        assert_eq!(
            Element::from(remove("r3", &bare("bob@cusax.test"))).to_xml(),
            "<iq xmlns='jabber:client' id='r3' type='set'><query xmlns='jabber:iq:roster'><item jid='bob@cusax.test' subscription='remove'/></query></iq>"
        );
        let r = Roster::new();
        assert!(
            Element::from(r.request("r4", true))
                .to_xml()
                .contains("ver=''")
        );
        assert!(
            !Element::from(r.request("r4", false))
                .to_xml()
                .contains("ver")
        );
    }

    #[test]
    fn parse_item() {
        let it = RosterItem::from_element(&test_parse(
            "<item xmlns='jabber:iq:roster' jid='Bob@CUSAX.test' name='Bob' subscription='to' ask='subscribe' approved='true'>\
             <group>A</group><group>A</group><group></group><group>B</group></item>",
        ))
        .expect("valid");
        assert_eq!(it.jid, bare("bob@cusax.test"), "JIDs are normalized");
        assert_eq!(it.subscription, Subscription::To);
        assert!(it.subscription.receives_presence());
        assert!(!it.subscription.sends_presence());
        assert!(it.ask && it.approved);
        assert_eq!(it.groups, vec!["A".to_string(), "B".to_string()]);
        assert_eq!(RosterItem::from_element(&it.to_element()).expect("rt"), it);
    }

    #[test]
    fn invalid_items() {
        for (xml, want) in [
            ("<item xmlns='jabber:iq:roster'/>", "jid"),
            ("<item xmlns='jabber:iq:roster' jid='a@b/c'/>", "a@b/c"),
            (
                "<item xmlns='jabber:iq:roster' jid='a@b' subscription='maybe'/>",
                "maybe",
            ),
            ("<item xmlns='other' jid='a@b'/>", "item"),
        ] {
            let err = RosterItem::from_element(&test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn result_and_pushes() {
        let own = bare("alice@cusax.test");
        let mut r = Roster::new();
        let ch = r
            .apply_result(&iq(
                "<iq xmlns='jabber:client' id='r1' type='result'><query xmlns='jabber:iq:roster' ver='v1'>\
                 <item jid='bob@cusax.test' subscription='both'/><item jid='carol@cusax.test'/></query></iq>",
            ))
            .expect("ok");
        assert_eq!(ch.len(), 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r.ver.as_deref(), Some("v1"));
        // Empty result with versioning: the cache stays.
        assert!(
            r.apply_result(&iq("<iq xmlns='jabber:client' id='r2' type='result'/>"))
                .expect("ok")
                .is_empty()
        );
        assert_eq!(r.len(), 2);

        let push = iq(
            "<iq xmlns='jabber:client' id='p1' type='set' from='alice@cusax.test'><query xmlns='jabber:iq:roster' ver='v2'>\
             <item jid='carol@cusax.test' subscription='from' name='Carol'/></query></iq>",
        );
        assert!(is_push(&push));
        let p = parse_push(&push, &own).expect("valid push");
        assert!(matches!(
            r.apply_push(p.clone()),
            Some(RosterChange::Updated(_))
        ));
        assert_eq!(r.apply_push(p), None, "same push twice changes nothing");
        assert_eq!(r.ver.as_deref(), Some("v2"));
        assert_eq!(
            r.get(&bare("carol@cusax.test"))
                .and_then(|i| i.name.as_deref()),
            Some("Carol")
        );

        let rm = iq(
            "<iq xmlns='jabber:client' id='p2' type='set'><query xmlns='jabber:iq:roster' ver='v3'>\
             <item jid='bob@cusax.test' subscription='remove'/></query></iq>",
        );
        let p = parse_push(&rm, &own).expect("valid");
        assert_eq!(
            r.apply_push(p),
            Some(RosterChange::Removed(bare("bob@cusax.test")))
        );
        assert_eq!(r.len(), 1);
        let ack = push_ack(&rm);
        assert_eq!(ack.kind, IqType::Result);
        assert_eq!(ack.id, "p2");

        // A full result replacing the roster reports removals.
        let ch = r
            .apply_result(&iq(
                "<iq xmlns='jabber:client' id='r3' type='result'><query xmlns='jabber:iq:roster' ver='v9'/></iq>",
            ))
            .expect("ok");
        assert_eq!(ch, vec![RosterChange::Removed(bare("carol@cusax.test"))]);
        assert!(r.is_empty());
    }

    #[test]
    fn spoofed_or_bad_pushes() {
        let own = bare("alice@cusax.test");
        for xml in [
            "<iq xmlns='jabber:client' id='p' type='set' from='mallory@evil.test'><query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>",
            "<iq xmlns='jabber:client' id='p' type='set' from='alice@cusax.test/res'><query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>",
            "<iq xmlns='jabber:client' id='p' type='set'><query xmlns='jabber:iq:roster'/></iq>",
            "<iq xmlns='jabber:client' id='p' type='set'><query xmlns='jabber:iq:roster'><item jid='x@y'/><item jid='z@y'/></query></iq>",
            "<iq xmlns='jabber:client' id='p' type='set'><query xmlns='jabber:iq:private'/></iq>",
        ] {
            assert!(parse_push(&iq(xml), &own).is_err(), "{xml}");
        }
    }
}
