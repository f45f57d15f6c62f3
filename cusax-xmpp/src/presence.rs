//! Presence (RFC 6121 §3–4): builders for availability and subscription presence, and
//! a [`PresenceTracker`] keeping the latest presence of every full JID.

use std::collections::{BTreeMap, BTreeSet};

use jid::{BareJid, Jid};

use crate::reach::{NS_REACH, Reach, ReachAddr};
use crate::stanza::{ParseError, Presence, PresenceType, Show, expect};
use crate::xml::element::Element;

/// Most resources tracked per bare JID (a MUC room's occupants are resources of the room).
pub const MAX_RESOURCES: usize = 4096;

/// Bounds of a [`PresenceTracker`]: anyone may send us presence (RFC 6121 §4.6 directed
/// presence, MUC occupants), so a flood from strangers must not grow memory without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceLimits {
    /// Most bare JIDs tracked.
    pub max_jids: usize,
    /// Most resources tracked per bare JID.
    pub max_resources_per_jid: usize,
    /// Most resources (full JIDs) tracked in total.
    pub max_resources: usize,
}

impl Default for PresenceLimits {
    /// 16384 bare JIDs (above the roster's [`MAX_ITEMS`](crate::roster::MAX_ITEMS)),
    /// [`MAX_RESOURCES`] per JID, 32768 resources in total.
    fn default() -> Self {
        PresenceLimits {
            max_jids: 16_384,
            max_resources_per_jid: MAX_RESOURCES,
            max_resources: 32_768,
        }
    }
}

/// `http://jabber.org/protocol/caps` (XEP-0115).
pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";

/// Initial (or updated) broadcast presence (RFC 6121 §4.2).
pub fn available(show: Option<Show>, status: Option<&str>, priority: i8) -> Presence {
    let mut p = Presence::new(PresenceType::Available);
    p.show = show;
    p.priority = priority;
    if let Some(s) = status {
        p = p.with_status(s);
    }
    p
}

/// Unavailable presence (RFC 6121 §4.5), broadcast when `to` is None.
pub fn unavailable(to: Option<Jid>, status: Option<&str>) -> Presence {
    let mut p = Presence::new(PresenceType::Unavailable);
    p.to = to;
    if let Some(s) = status {
        p = p.with_status(s);
    }
    p
}

/// `p` with our entity capabilities `<c/>` (XEP-0115 §4), replacing any it had.
pub fn with_caps(mut p: Presence, caps: &Caps) -> Presence {
    p.payloads.retain(|e| !e.is("c", NS_CAPS));
    p.payloads.push(caps.to_element());
    p
}

/// Directed presence to `to` (RFC 6121 §4.6).
pub fn directed(to: Jid, show: Option<Show>, status: Option<&str>) -> Presence {
    let mut p = available(show, status, 0);
    p.to = Some(to);
    p
}

fn subscription(kind: PresenceType, to: BareJid) -> Presence {
    let mut p = Presence::new(kind);
    p.to = Some(Jid::from(to));
    p
}

/// Subscription request (RFC 6121 §3.1.1).
pub fn subscribe(to: BareJid) -> Presence {
    subscription(PresenceType::Subscribe, to)
}
/// Approve a subscription request, or pre-approve (RFC 6121 §3.1.4 / §3.4).
pub fn subscribed(to: BareJid) -> Presence {
    subscription(PresenceType::Subscribed, to)
}
/// Cancel the own subscription to `to`'s presence (RFC 6121 §3.3).
pub fn unsubscribe(to: BareJid) -> Presence {
    subscription(PresenceType::Unsubscribe, to)
}
/// Deny a request or cancel `to`'s subscription to the own presence (RFC 6121 §3.2).
pub fn unsubscribed(to: BareJid) -> Presence {
    subscription(PresenceType::Unsubscribed, to)
}

/// Entity capabilities (XEP-0115 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Hash algorithm (`sha-1`); absent in the legacy format.
    pub hash: Option<String>,
    /// The software's node URI.
    pub node: String,
    /// The verification string.
    pub ver: String,
}

impl Caps {
    /// Parses `<c xmlns='http://jabber.org/protocol/caps'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "c", NS_CAPS)?;
        Ok(Caps {
            hash: e.attr("hash").map(str::to_owned),
            node: e
                .attr("node")
                .ok_or(ParseError::MissingAttr {
                    element: "c",
                    attr: "node",
                })?
                .to_owned(),
            ver: e
                .attr("ver")
                .ok_or(ParseError::MissingAttr {
                    element: "c",
                    attr: "ver",
                })?
                .to_owned(),
        })
    }

    /// The caps announcing `info` under the software's `node` (XEP-0115 §4, sha-1).
    pub fn for_info(node: impl Into<String>, info: &crate::disco::DiscoInfo) -> Self {
        Caps {
            hash: Some("sha-1".into()),
            node: node.into(),
            ver: crate::disco::caps_ver(info),
        }
    }

    /// Whether `info` (the disco#info answer for `node#ver`) matches this `ver`
    /// (XEP-0115 §5.4); false for hashes other than sha-1 and the legacy format.
    pub fn verify(&self, info: &crate::disco::DiscoInfo) -> bool {
        self.hash.as_deref() == Some("sha-1") && crate::disco::caps_ver(info) == self.ver
    }

    /// The disco#info node to query for these caps (`node#ver`, XEP-0115 §6.2).
    pub fn disco_node(&self) -> String {
        format!("{}#{}", self.node, self.ver)
    }

    /// Builds the `<c/>` element.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("c", NS_CAPS);
        if let Some(h) = &self.hash {
            e.set_attr("hash", h.clone());
        }
        e.with_attr("node", self.node.clone())
            .with_attr("ver", self.ver.clone())
    }
}

/// What the tracker knows about one available resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePresence {
    /// The full JID (or the bare JID for a resource-less sender, e.g. a gateway).
    pub jid: Jid,
    /// Show.
    pub show: Option<Show>,
    /// Status text (the stanza's language, else any).
    pub status: Option<String>,
    /// Priority.
    pub priority: i8,
    /// Reachability addresses announced in the presence (XEP-0152 §4.1).
    pub reach: Vec<ReachAddr>,
    /// Entity capabilities (XEP-0115).
    pub caps: Option<Caps>,
    /// Arrival order (higher = newer), for tie-breaking.
    pub seq: u64,
}

impl ResourcePresence {
    fn show_rank(&self) -> u8 {
        match self.show {
            Some(Show::Chat) => 5,
            None => 4,
            Some(Show::Away) => 3,
            Some(Show::Xa) => 2,
            Some(Show::Dnd) => 1,
        }
    }
}

/// A change the tracker observed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceChange {
    /// A resource became available or changed its presence.
    Available(ResourcePresence),
    /// A resource went away (or a bare-JID error/unavailable removed all).
    Unavailable(Jid),
    /// A [`PresenceLimits`] bound was reached: this resource's presence was forgotten (the
    /// oldest stranger's, to make room) or not stored (the newcomer's, when only roster
    /// contacts could have made room). Its availability is now unknown, not unavailable.
    Evicted(Jid),
}

/// The latest presence of every full JID seen (RFC 6121 §4.4.2), grouped by bare JID.
///
/// Bounded by [`PresenceLimits`]. Roster contacts (declared with
/// [`set_contacts`](Self::set_contacts) / [`add_contact`](Self::add_contact)) have priority:
/// when a bound is reached, the oldest presence of a stranger is evicted; a contact's
/// presence is never evicted to make room for anyone. Every eviction is reported as
/// [`PresenceChange::Evicted`].
#[derive(Clone, Debug, Default)]
pub struct PresenceTracker {
    contacts: BTreeMap<BareJid, BTreeMap<String, ResourcePresence>>,
    seq: u64,
    limits: PresenceLimits,
    roster: BTreeSet<BareJid>,
    /// Every tracked resource by arrival (`seq`), oldest first.
    order: BTreeMap<u64, (BareJid, String)>,
    /// The same for strangers only (not in `roster`): eviction candidates, so that an
    /// eviction costs O(log n) however many contacts are tracked.
    strangers: BTreeMap<u64, (BareJid, String)>,
}

impl PresenceTracker {
    /// An empty tracker with the default limits.
    pub fn new() -> Self {
        PresenceTracker::default()
    }

    /// An empty tracker with `limits` (each at least 1).
    pub fn with_limits(limits: PresenceLimits) -> Self {
        PresenceTracker {
            limits: PresenceLimits {
                max_jids: limits.max_jids.max(1),
                max_resources_per_jid: limits.max_resources_per_jid.max(1),
                max_resources: limits.max_resources.max(1),
            },
            ..PresenceTracker::default()
        }
    }

    /// Declares the roster contacts (replacing the previous set), whose presence is kept
    /// in preference to strangers'.
    pub fn set_contacts(&mut self, contacts: impl IntoIterator<Item = BareJid>) {
        self.roster = contacts.into_iter().collect();
        self.strangers = self
            .order
            .iter()
            .filter(|(_, (b, _))| !self.roster.contains(b))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
    }

    /// Declares one roster contact.
    pub fn add_contact(&mut self, contact: BareJid) {
        if let Some(res) = self.contacts.get(&contact) {
            for rp in res.values() {
                self.strangers.remove(&rp.seq);
            }
        }
        self.roster.insert(contact);
    }

    /// Removes a roster contact (its presence becomes evictable).
    pub fn remove_contact(&mut self, contact: &BareJid) {
        if self.roster.remove(contact)
            && let Some(res) = self.contacts.get(contact)
        {
            for (r, rp) in res {
                self.strangers.insert(rp.seq, (contact.clone(), r.clone()));
            }
        }
    }

    fn index(&mut self, seq: u64, bare: &BareJid, resource: &str) {
        self.order.insert(seq, (bare.clone(), resource.to_owned()));
        if !self.roster.contains(bare) {
            self.strangers
                .insert(seq, (bare.clone(), resource.to_owned()));
        }
    }

    fn unindex(&mut self, seq: u64) {
        self.order.remove(&seq);
        self.strangers.remove(&seq);
    }

    /// How many resources are tracked in total.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The oldest tracked resource of a stranger.
    fn oldest_stranger(&self) -> Option<(BareJid, String)> {
        self.strangers.values().next().cloned()
    }

    fn remove_resource(&mut self, bare: &BareJid, resource: &str) -> Option<ResourcePresence> {
        let res = self.contacts.get_mut(bare)?;
        let rp = res.remove(resource)?;
        if res.is_empty() {
            self.contacts.remove(bare);
        }
        self.unindex(rp.seq);
        Some(rp)
    }

    /// Makes room for a new resource of `bare`; `Err` when only contacts could make room
    /// for a stranger (the newcomer is then not stored).
    fn make_room(&mut self, bare: &BareJid, out: &mut Vec<PresenceChange>) -> Result<(), ()> {
        let is_contact = self.roster.contains(bare);
        let new_bare = !self.contacts.contains_key(bare);
        if new_bare && self.contacts.len() >= self.limits.max_jids {
            // Evict a whole bare JID: the stranger with the oldest presence.
            // (`bare` is new, so it is not the victim.)
            let (victim, _) = self.oldest_stranger().ok_or(())?;
            if let Some(all) = self.contacts.remove(&victim) {
                for rp in all.into_values() {
                    self.unindex(rp.seq);
                    out.push(PresenceChange::Evicted(rp.jid));
                }
            }
            tracing::debug!(%victim, "presence limit: evicted a stranger's presence");
        }
        while self.order.len() >= self.limits.max_resources {
            let Some((vb, vr)) = self.oldest_stranger() else {
                // Only contacts are left: a stranger waits; a contact replaces the oldest
                // resource of its own bare JID.
                let own_oldest = self
                    .contacts
                    .get(bare)
                    .and_then(|m| m.iter().min_by_key(|(_, rp)| rp.seq))
                    .map(|(r, _)| r.clone());
                if is_contact && let Some(r) = own_oldest {
                    if let Some(rp) = self.remove_resource(bare, &r) {
                        out.push(PresenceChange::Evicted(rp.jid));
                    }
                    continue;
                }
                return Err(());
            };
            if let Some(rp) = self.remove_resource(&vb, &vr) {
                tracing::debug!(jid = %rp.jid, "presence limit: evicted a stranger's resource");
                out.push(PresenceChange::Evicted(rp.jid));
            }
        }
        Ok(())
    }

    /// Applies an inbound presence; subscription types are ignored (handled by the roster
    /// layer). An invalid `<c/>` or `<reach/>` is logged and ignored, not fatal.
    pub fn handle(&mut self, p: &Presence) -> Vec<PresenceChange> {
        let Some(from) = &p.from else {
            return Vec::new();
        };
        let bare = from.to_bare();
        let resource = from
            .resource()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        match p.kind {
            PresenceType::Available => {
                self.seq += 1;
                let reach = match Reach::from_presence(p) {
                    Ok(r) => r.map(|r| r.addrs).unwrap_or_default(),
                    Err(err) => {
                        tracing::debug!(%err, %from, "ignoring invalid reach in presence");
                        Vec::new()
                    }
                };
                let caps = p
                    .payload("c", NS_CAPS)
                    .and_then(|c| match Caps::from_element(c) {
                        Ok(c) => Some(c),
                        Err(err) => {
                            tracing::debug!(%err, %from, "ignoring invalid caps in presence");
                            None
                        }
                    });
                let rp = ResourcePresence {
                    jid: from.clone(),
                    show: p.show,
                    status: p.status().map(str::to_owned),
                    priority: p.priority,
                    reach,
                    caps,
                    seq: self.seq,
                };
                let mut out = Vec::new();
                let known = self
                    .contacts
                    .get(&bare)
                    .and_then(|m| m.get(&resource))
                    .map(|old| old.seq);
                if let Some(old_seq) = known {
                    // An update: no new room needed.
                    self.unindex(old_seq);
                } else {
                    let per_jid = self.contacts.get(&bare).map_or(0, |m| m.len());
                    if per_jid >= self.limits.max_resources_per_jid {
                        tracing::debug!(%from, "too many resources for one JID; presence not stored");
                        return vec![PresenceChange::Evicted(from.clone())];
                    }
                    if self.make_room(&bare, &mut out).is_err() {
                        tracing::debug!(%from, "presence limit reached by contacts; stranger's presence not stored");
                        out.push(PresenceChange::Evicted(from.clone()));
                        return out;
                    }
                }
                self.index(rp.seq, &bare, &resource);
                self.contacts
                    .entry(bare)
                    .or_default()
                    .insert(resource, rp.clone());
                out.push(PresenceChange::Available(rp));
                out
            }
            PresenceType::Unavailable | PresenceType::Error => {
                if from.is_bare() {
                    // From a bare JID: every resource is gone (RFC 6121 §4.5.3 / §4.7.2).
                    let Some(res) = self.contacts.remove(&bare) else {
                        return Vec::new();
                    };
                    res.into_values()
                        .map(|r| {
                            self.order.remove(&r.seq);
                            self.strangers.remove(&r.seq);
                            PresenceChange::Unavailable(r.jid)
                        })
                        .collect()
                } else {
                    self.remove_resource(&bare, &resource)
                        .map(|r| PresenceChange::Unavailable(r.jid))
                        .into_iter()
                        .collect()
                }
            }
            _ => Vec::new(),
        }
    }

    /// Every available resource of `bare`.
    pub fn resources(&self, bare: &BareJid) -> impl Iterator<Item = &ResourcePresence> {
        self.contacts.get(bare).into_iter().flat_map(|m| m.values())
    }

    /// The resource to route to (RFC 6121 §8.5.2.1.1): highest priority, then the most
    /// available show (chat > online > away > xa > dnd), then the newest. Resources with a
    /// negative priority are still returned (the caller decides; RFC 6121 §4.7.2.3).
    pub fn best(&self, bare: &BareJid) -> Option<&ResourcePresence> {
        self.resources(bare)
            .max_by_key(|r| (r.priority, r.show_rank(), r.seq))
    }

    /// Whether any resource of `bare` is available.
    pub fn is_available(&self, bare: &BareJid) -> bool {
        self.contacts.get(bare).is_some_and(|m| !m.is_empty())
    }

    /// Forgets everything (on disconnect: presence is not valid across sessions).
    pub fn clear(&mut self) {
        self.contacts.clear();
        self.order.clear();
        self.strangers.clear();
    }

    /// The union of reachability addresses of `bare`'s resources, best resource first,
    /// without duplicates.
    pub fn reach(&self, bare: &BareJid) -> Vec<ReachAddr> {
        let mut all: Vec<&ResourcePresence> = self.resources(bare).collect();
        all.sort_by_key(|r| std::cmp::Reverse((r.priority, r.show_rank(), r.seq)));
        let mut out: Vec<ReachAddr> = Vec::new();
        for r in all {
            for a in &r.reach {
                if !out.iter().any(|o| o.uri == a.uri) {
                    out.push(a.clone());
                }
            }
        }
        out
    }
}

/// Whether a presence carries a `<reach/>` (XEP-0152 §4.1).
pub fn has_reach(p: &Presence) -> bool {
    p.payload("reach", NS_REACH).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    fn pres(xml: &str) -> Presence {
        Presence::try_from(test_parse(xml)).expect("presence")
    }
    fn bare(s: &str) -> BareJid {
        BareJid::new(s).expect("jid")
    }

    #[test]
    fn size() {
        assert!(
            std::mem::size_of::<ResourcePresence>() <= 192,
            "{}",
            std::mem::size_of::<ResourcePresence>()
        );
    }

    #[test]
    fn builders() {
        let e: Element = available(Some(Show::Away), Some("lunch"), 5).into();
        assert_eq!(
            e.to_xml(),
            "<presence xmlns='jabber:client'><show>away</show><status>lunch</status><priority>5</priority></presence>"
        );
        let e: Element = subscribe(bare("bob@cusax.test")).into();
        assert_eq!(
            e.to_xml(),
            "<presence xmlns='jabber:client' to='bob@cusax.test' type='subscribe'/>"
        );
        for (p, t) in [
            (subscribed(bare("b@c")), "subscribed"),
            (unsubscribe(bare("b@c")), "unsubscribe"),
            (unsubscribed(bare("b@c")), "unsubscribed"),
        ] {
            assert_eq!(p.kind.as_str(), Some(t));
        }
        let d = directed(Jid::new("room@conf.c/nick").expect("jid"), None, None);
        assert_eq!(d.to.as_ref().map(|j| j.as_str()), Some("room@conf.c/nick"));
        assert_eq!(unavailable(None, Some("bye")).status(), Some("bye"));
    }

    #[test]
    fn caps() {
        let c = Caps::from_element(&test_parse(
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://cusax' ver='abc='/>",
        ))
        .expect("valid");
        assert_eq!(Caps::from_element(&c.to_element()).expect("rt"), c);
        let info = crate::disco::DiscoInfo {
            features: vec!["urn:xmpp:reach:0+notify".into(), "urn:xmpp:reach:0".into()],
            ..Default::default()
        };
        let mine = Caps::for_info("https://cusax", &info);
        assert!(mine.verify(&info));
        assert!(!c.verify(&info));
        assert_eq!(mine.disco_node(), format!("https://cusax#{}", mine.ver));
        assert!(
            Caps::from_element(&test_parse(
                "<c xmlns='http://jabber.org/protocol/caps' node='n'/>"
            ))
            .is_err()
        );
    }

    #[test]
    fn tracker_best_and_unavailable() {
        let mut t = PresenceTracker::new();
        let bob = bare("bob@cusax.test");
        t.handle(&pres("<presence xmlns='jabber:client' from='bob@cusax.test/desk'><priority>5</priority><show>away</show></presence>"));
        t.handle(&pres(
            "<presence xmlns='jabber:client' from='bob@cusax.test/phone'><priority>5</priority>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>\
             <reach xmlns='urn:xmpp:reach:0'><addr uri='sip:bob@cusax.test'/></reach></presence>",
        ));
        t.handle(&pres("<presence xmlns='jabber:client' from='bob@cusax.test/old'><priority>-1</priority></presence>"));
        assert_eq!(t.resources(&bob).count(), 3);
        let best = t.best(&bob).expect("best");
        assert_eq!(
            best.jid.as_str(),
            "bob@cusax.test/phone",
            "same priority: online beats away"
        );
        assert!(best.caps.is_some());
        assert_eq!(t.reach(&bob).len(), 1);
        // Update desk to priority 10: it wins.
        t.handle(&pres("<presence xmlns='jabber:client' from='bob@cusax.test/desk'><priority>10</priority></presence>"));
        assert_eq!(
            t.best(&bob).map(|b| b.jid.as_str()),
            Some("bob@cusax.test/desk")
        );
        // Unavailable removes one resource.
        let ch = t.handle(&pres(
            "<presence xmlns='jabber:client' type='unavailable' from='bob@cusax.test/desk'/>",
        ));
        assert_eq!(ch.len(), 1);
        assert_eq!(
            t.best(&bob).map(|b| b.jid.as_str()),
            Some("bob@cusax.test/phone")
        );
        // Subscription presences are ignored.
        assert!(
            t.handle(&pres(
                "<presence xmlns='jabber:client' type='subscribe' from='bob@cusax.test'/>"
            ))
            .is_empty()
        );
        // An error from the bare JID removes all.
        let ch = t.handle(&pres(
            "<presence xmlns='jabber:client' type='error' from='bob@cusax.test'><error type='cancel'>\
             <remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
        ));
        assert_eq!(ch.len(), 2);
        assert!(!t.is_available(&bob));
        assert!(t.best(&bob).is_none());
        // Without from: ignored.
        assert!(t.handle(&Presence::default()).is_empty());
    }

    #[test]
    fn tracker_limits_resources() {
        let mut t = PresenceTracker::new();
        for i in 0..=MAX_RESOURCES {
            let p = Presence {
                from: Some(Jid::new(&format!("room@conf.test/n{i}")).expect("jid")),
                ..Presence::default()
            };
            t.handle(&p);
        }
        assert_eq!(t.resources(&bare("room@conf.test")).count(), MAX_RESOURCES);
    }

    fn avail(jid: &str) -> Presence {
        Presence {
            from: Some(Jid::new(jid).expect("jid")),
            ..Presence::default()
        }
    }

    #[test]
    fn stranger_flood_is_bounded_and_contacts_are_kept() {
        let mut t = PresenceTracker::with_limits(PresenceLimits {
            max_jids: 4,
            max_resources_per_jid: 2,
            max_resources: 6,
        });
        t.set_contacts([bare("bob@c.test"), bare("carol@c.test")]);
        t.handle(&avail("bob@c.test/a"));
        t.handle(&avail("carol@c.test/a"));
        let mut evicted = 0;
        for i in 0..1000 {
            for ch in t.handle(&avail(&format!("spam{i}@evil.test/x"))) {
                if let PresenceChange::Evicted(j) = ch {
                    assert!(j.as_str().starts_with("spam"), "{j}");
                    evicted += 1;
                }
            }
            assert!(t.contacts.len() <= 4 && t.len() <= 6);
        }
        assert_eq!(evicted, 998, "every stranger evicted is reported");
        assert!(t.is_available(&bare("bob@c.test")));
        assert!(t.is_available(&bare("carol@c.test")));
        assert!(
            t.is_available(&bare("spam999@evil.test")),
            "newest stranger kept"
        );
        // Resource bound: strangers' resources make room for a contact's new resource.
        t.handle(&avail("spam998@evil.test/y"));
        t.handle(&avail("spam999@evil.test/y"));
        assert_eq!(t.len(), 6);
        let ch = t.handle(&avail("bob@c.test/b"));
        assert!(
            matches!(&ch[..], [PresenceChange::Evicted(j), PresenceChange::Available(_)] if j.as_str() == "spam998@evil.test/x"),
            "{ch:?}"
        );
        assert_eq!(t.resources(&bare("bob@c.test")).count(), 2);
        // Per-JID bound: a third resource is reported as not stored.
        let ch = t.handle(&avail("bob@c.test/c"));
        assert!(matches!(&ch[..], [PresenceChange::Evicted(j)] if j.as_str() == "bob@c.test/c"));
        // When only contacts are left, a stranger is refused (and told so).
        let mut t = PresenceTracker::with_limits(PresenceLimits {
            max_jids: 2,
            max_resources_per_jid: 4,
            max_resources: 8,
        });
        t.set_contacts([bare("bob@c.test"), bare("carol@c.test")]);
        t.handle(&avail("bob@c.test/a"));
        t.handle(&avail("carol@c.test/a"));
        let ch = t.handle(&avail("eve@evil.test/x"));
        assert!(matches!(&ch[..], [PresenceChange::Evicted(j)] if j.as_str() == "eve@evil.test/x"));
        assert!(!t.is_available(&bare("eve@evil.test")));
        // Contacts declared after the fact are protected; removed ones become evictable.
        t.remove_contact(&bare("carol@c.test"));
        let ch = t.handle(&avail("eve@evil.test/x"));
        assert!(
            matches!(&ch[..], [PresenceChange::Evicted(j), PresenceChange::Available(_)] if j.as_str() == "carol@c.test/a"),
            "{ch:?}"
        );
        t.add_contact(bare("eve@evil.test"));
        let ch = t.handle(&avail("mallory@evil.test/x"));
        assert!(
            matches!(&ch[..], [PresenceChange::Evicted(j)] if j.as_str() == "mallory@evil.test/x")
        );
        // Unavailable keeps the arrival index in step.
        t.handle(&pres(
            "<presence xmlns='jabber:client' type='unavailable' from='bob@c.test'/>",
        ));
        assert_eq!(t.len(), 1);
        assert!(t.strangers.is_empty());
    }

    #[test]
    fn tracker_tolerates_bad_payloads() {
        let mut t = PresenceTracker::new();
        let ch = t.handle(&pres(
            "<presence xmlns='jabber:client' from='carol@cusax.test/x'><c xmlns='http://jabber.org/protocol/caps'/>\
             <reach xmlns='urn:xmpp:reach:0'><addr/></reach></presence>",
        ));
        assert!(
            matches!(&ch[..], [PresenceChange::Available(r)] if r.caps.is_none() && r.reach.is_empty())
        );
        assert!(has_reach(&pres(
            "<presence xmlns='jabber:client'><reach xmlns='urn:xmpp:reach:0'/></presence>"
        )));
        t.clear();
        assert!(!t.is_available(&bare("carol@cusax.test")));
    }
}
