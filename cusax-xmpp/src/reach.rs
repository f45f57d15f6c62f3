//! Reachability addresses (XEP-0152): the SIP/tel URIs at which an XMPP user can be
//! reached, carried in presence (§4.1) or published to the PEP node `urn:xmpp:reach:0`
//! (§4.2). RFC 7081 §3.3 lets a CUSAX client learn a contact's SIP address this way.

use crate::stanza::pubsub::{self, Item};
use crate::stanza::{Iq, Message, ParseError, Presence, expect};
use crate::xml::element::Element;

/// `urn:xmpp:reach:0`, also the PEP node name.
pub const NS_REACH: &str = "urn:xmpp:reach:0";

/// Most addresses accepted in one `<reach/>`.
pub const MAX_ADDRS: usize = 64;
/// Most descriptions accepted on one address.
pub const MAX_DESCS: usize = 16;

/// One `<addr/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReachAddr {
    /// The URI (`sip:…`, `tel:…`…).
    pub uri: String,
    /// Descriptions: (`xml:lang`, text).
    pub descs: Vec<(Option<String>, String)>,
}

impl ReachAddr {
    /// An address with no description.
    pub fn new(uri: impl Into<String>) -> Self {
        ReachAddr {
            uri: uri.into(),
            descs: Vec::new(),
        }
    }

    /// Whether the URI is a SIP, SIPS or tel URI (what a CUSAX client can call).
    pub fn is_sip_callable(&self) -> bool {
        let l = self.uri.trim().to_ascii_lowercase();
        l.starts_with("sip:") || l.starts_with("sips:") || l.starts_with("tel:")
    }
}

/// A `<reach/>` element; an empty one clears previously announced addresses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Reach {
    /// The addresses, in order of preference as sent.
    pub addrs: Vec<ReachAddr>,
}

impl Reach {
    /// Parses `<reach xmlns='urn:xmpp:reach:0'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "reach", NS_REACH)?;
        let mut addrs = Vec::new();
        for a in e.children_named("addr", NS_REACH) {
            if addrs.len() >= MAX_ADDRS {
                return Err(ParseError::TooMany {
                    what: "reach addresses",
                    limit: MAX_ADDRS,
                });
            }
            let uri = a.attr("uri").ok_or(ParseError::MissingAttr {
                element: "addr",
                attr: "uri",
            })?;
            if uri.trim().is_empty() || !uri.contains(':') {
                return Err(ParseError::InvalidAttr {
                    element: "addr",
                    attr: "uri",
                    value: uri.to_owned(),
                });
            }
            let mut descs = Vec::new();
            for d in a.children_named("desc", NS_REACH) {
                if descs.len() >= MAX_DESCS {
                    return Err(ParseError::TooMany {
                        what: "reach descriptions",
                        limit: MAX_DESCS,
                    });
                }
                descs.push((d.attr("xml:lang").map(str::to_owned), d.text()));
            }
            addrs.push(ReachAddr {
                uri: uri.trim().to_owned(),
                descs,
            });
        }
        Ok(Reach { addrs })
    }

    /// Builds the `<reach/>` element.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("reach", NS_REACH);
        for a in &self.addrs {
            let mut ae = Element::new("addr", NS_REACH).with_attr("uri", a.uri.clone());
            for (lang, text) in &a.descs {
                let mut d = Element::new("desc", NS_REACH).with_text(text.clone());
                if let Some(l) = lang {
                    d.set_attr("xml:lang", l.clone());
                }
                ae.push_child(d);
            }
            e.push_child(ae);
        }
        e
    }

    /// The `<reach/>` in a presence, if any (§4.1).
    pub fn from_presence(p: &Presence) -> Result<Option<Self>, ParseError> {
        p.payload("reach", NS_REACH)
            .map(Reach::from_element)
            .transpose()
    }

    /// Adds this `<reach/>` to a presence, replacing any present one.
    pub fn add_to_presence(&self, p: &mut Presence) {
        p.payloads.retain(|e| !e.is("reach", NS_REACH));
        p.payloads.push(self.to_element());
    }

    /// The addresses of a PEP event message for `urn:xmpp:reach:0` (§4.2), with the
    /// publisher; `None` when the message is no such event. The newest item wins.
    pub fn from_pep_event(m: &Message) -> Result<Option<(Option<jid::BareJid>, Self)>, ParseError> {
        let Some((from, items)) = pubsub::parse_event(m, NS_REACH)? else {
            return Ok(None);
        };
        Ok(Some((from, Self::from_items(&items)?)))
    }

    /// The addresses of a PEP items result (`<pubsub/>` payload of the iq result).
    pub fn from_items_result(pubsub_el: &Element) -> Result<Self, ParseError> {
        Self::from_items(&pubsub::parse_items_result(pubsub_el, NS_REACH)?)
    }

    fn from_items(items: &[Item]) -> Result<Self, ParseError> {
        match items.iter().rev().find_map(|i| i.payload.as_ref()) {
            Some(p) => Reach::from_element(p),
            None => Ok(Reach::default()),
        }
    }

    /// The iq publishing these addresses to the own PEP node (§4.2).
    pub fn publish(&self, id: impl Into<String>) -> Iq {
        pubsub::publish(id, NS_REACH, Some("current"), self.to_element())
    }

    /// The iq fetching `owner`'s published addresses.
    pub fn fetch(id: impl Into<String>, owner: Option<jid::BareJid>) -> Iq {
        pubsub::items_get(id, owner, NS_REACH, Some(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    const XML: &str = "<reach xmlns='urn:xmpp:reach:0'><addr uri='tel:+1-303-555-1212'>\
        <desc xml:lang='en'>Conference room phone</desc></addr><addr uri='sip:room123@example.com'/></reach>";

    #[test]
    fn size() {
        assert!(std::mem::size_of::<ReachAddr>() <= 64);
    }

    #[test]
    fn parse_build() {
        let r = Reach::from_element(&test_parse(XML)).expect("valid");
        assert_eq!(r.addrs.len(), 2);
        assert_eq!(
            r.addrs[0].descs,
            vec![(Some("en".into()), "Conference room phone".into())]
        );
        assert!(r.addrs.iter().all(ReachAddr::is_sip_callable));
        assert_eq!(r.to_element().to_xml(), XML);
        assert!(!ReachAddr::new("mailto:x@y").is_sip_callable());
    }

    #[test]
    fn from_presence_and_pep() {
        let p = Presence::try_from(test_parse(&format!(
            "<presence xmlns='jabber:client' from='bob@cusax.test/x'>{XML}</presence>"
        )))
        .expect("p");
        let r = Reach::from_presence(&p).expect("ok").expect("some");
        assert_eq!(r.addrs[1].uri, "sip:room123@example.com");
        let mut p2 = Presence::default();
        r.add_to_presence(&mut p2);
        r.add_to_presence(&mut p2);
        assert_eq!(p2.payloads.len(), 1);
        assert_eq!(
            Reach::from_presence(&Presence::default()).expect("ok"),
            None
        );

        let m = Message::try_from(test_parse(&format!(
            "<message xmlns='jabber:client' from='bob@cusax.test'><event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='urn:xmpp:reach:0'><item id='current'>{XML}</item></items></event></message>"
        )))
        .expect("m");
        let (from, r2) = Reach::from_pep_event(&m).expect("ok").expect("some");
        assert_eq!(r2, r);
        assert_eq!(
            from.map(|j| j.to_string()).as_deref(),
            Some("bob@cusax.test")
        );

        let res = test_parse(&format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:reach:0'><item id='current'>{XML}</item></items></pubsub>"
        ));
        assert_eq!(Reach::from_items_result(&res).expect("ok"), r);
        let xml = Element::from(r.publish("p1")).to_xml();
        assert!(xml.contains("<publish node='urn:xmpp:reach:0'><item id='current'><reach xmlns='urn:xmpp:reach:0'>"), "{xml}");
        assert!(
            Element::from(Reach::fetch("f", None))
                .to_xml()
                .contains("items node='urn:xmpp:reach:0'")
        );
    }

    #[test]
    fn invalid() {
        for xml in [
            "<reach xmlns='urn:xmpp:reach:0'><addr/></reach>",
            "<reach xmlns='urn:xmpp:reach:0'><addr uri=''/></reach>",
            "<reach xmlns='urn:xmpp:reach:0'><addr uri='nocolon'/></reach>",
            "<reach xmlns='urn:xmpp:reach:1'/>",
        ] {
            assert!(Reach::from_element(&test_parse(xml)).is_err(), "{xml}");
        }
        let mut many = String::from("<reach xmlns='urn:xmpp:reach:0'>");
        for i in 0..=MAX_ADDRS {
            many.push_str(&format!("<addr uri='tel:{i}'/>"));
        }
        many.push_str("</reach>");
        assert!(matches!(
            Reach::from_element(&test_parse(&many)),
            Err(ParseError::TooMany { .. })
        ));
    }
}
