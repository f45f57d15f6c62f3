//! The few PubSub/PEP pieces CUSAX needs (XEP-0060 via XEP-0163): fetch the items of a
//! node, publish one item, read a `+notify` event. Used by vCard4 (XEP-0292) and
//! reachability (XEP-0152).

use jid::{BareJid, Jid};

use super::{Iq, Message, ParseError, expect};
use crate::xml::element::Element;

/// `http://jabber.org/protocol/pubsub`
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// `http://jabber.org/protocol/pubsub#event`
pub const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";

/// Most items read from one node response.
pub const MAX_ITEMS: usize = 256;

/// One item of a node: its id and its payload (absent for retractions / id-only lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The item id.
    pub id: Option<String>,
    /// The payload element.
    pub payload: Option<Element>,
}

/// An iq get for the items of `node` at `owner` (None = own account), newest `max` items
/// (XEP-0060 §6.5).
pub fn items_get(
    id: impl Into<String>,
    owner: Option<BareJid>,
    node: &str,
    max: Option<u32>,
) -> Iq {
    let mut items = Element::new("items", NS_PUBSUB).with_attr("node", node);
    if let Some(m) = max {
        items.set_attr("max_items", m.to_string());
    }
    Iq::get(
        id,
        owner.map(Jid::from),
        Element::new("pubsub", NS_PUBSUB).with_child(items),
    )
}

/// An iq set publishing `payload` as item `item_id` to own PEP `node` (XEP-0163 §3).
pub fn publish(id: impl Into<String>, node: &str, item_id: Option<&str>, payload: Element) -> Iq {
    let mut item = Element::new("item", NS_PUBSUB).with_child(payload);
    if let Some(i) = item_id {
        item.set_attr("id", i);
    }
    Iq::set(
        id,
        None,
        Element::new("pubsub", NS_PUBSUB).with_child(
            Element::new("publish", NS_PUBSUB)
                .with_attr("node", node)
                .with_child(item),
        ),
    )
}

/// Like [`publish`], with publish-options (XEP-0060 §7.1.5) setting the node's
/// `pubsub#access_model` (`open`, `presence`, `roster`, `authorize`, `whitelist`): XEP-0292
/// vCards and XEP-0152 addresses are usually published `open` so that anyone can read them.
pub fn publish_with_access(
    id: impl Into<String>,
    node: &str,
    item_id: Option<&str>,
    payload: Element,
    access_model: &str,
) -> Iq {
    let mut iq = publish(id, node, item_id, payload);
    let mut form = crate::forms::DataForm::new(
        crate::forms::FormType::Submit,
        Some("http://jabber.org/protocol/pubsub#publish-options"),
    );
    form.fields.push(crate::forms::Field::new(
        "pubsub#access_model",
        crate::forms::FieldType::TextSingle,
        vec![access_model.to_owned()],
    ));
    if let Some(ps) = iq.payload.as_mut() {
        ps.push_child(Element::new("publish-options", NS_PUBSUB).with_child(form.to_element()));
    }
    iq
}

fn read_items(items: &Element, item_ns: &str) -> Result<Vec<Item>, ParseError> {
    let mut out = Vec::new();
    for it in items.children_named("item", item_ns) {
        if out.len() >= MAX_ITEMS {
            return Err(ParseError::TooMany {
                what: "pubsub items",
                limit: MAX_ITEMS,
            });
        }
        out.push(Item {
            id: it.attr("id").map(str::to_owned),
            payload: it.elements().next().cloned(),
        });
    }
    Ok(out)
}

/// Reads the items of `node` from the payload of an items result
/// (`<pubsub><items node='…'><item/>…</items></pubsub>`).
pub fn parse_items_result(pubsub: &Element, node: &str) -> Result<Vec<Item>, ParseError> {
    expect(pubsub, "pubsub", NS_PUBSUB)?;
    let items = pubsub
        .child("items", NS_PUBSUB)
        .ok_or(ParseError::MissingChild {
            element: "pubsub",
            child: "<items/>",
        })?;
    if items.attr("node") != Some(node) {
        return Err(ParseError::InvalidAttr {
            element: "items",
            attr: "node",
            value: items.attr("node").unwrap_or_default().to_owned(),
        });
    }
    read_items(items, NS_PUBSUB)
}

/// A PEP notification: the publisher (bare JID, when the message had a `from`) and the items.
pub type Event = (Option<BareJid>, Vec<Item>);

/// Reads a PEP notification for `node` from a message (XEP-0163 §4.3): the publisher
/// (the message's `from`, bare) and the items; `None` when the message carries no event
/// for that node.
pub fn parse_event(msg: &Message, node: &str) -> Result<Option<Event>, ParseError> {
    let Some(ev) = msg.payload("event", NS_PUBSUB_EVENT) else {
        return Ok(None);
    };
    let Some(items) = ev
        .children_named("items", NS_PUBSUB_EVENT)
        .find(|i| i.attr("node") == Some(node))
    else {
        return Ok(None);
    };
    let from = msg.from.as_ref().map(Jid::to_bare);
    Ok(Some((from, read_items(items, NS_PUBSUB_EVENT)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    #[test]
    fn builders() {
        let iq = items_get(
            "i1",
            Some(BareJid::new("bob@cusax.test").expect("jid")),
            "urn:xmpp:vcard4",
            Some(1),
        );
        assert_eq!(
            Element::from(iq).to_xml(),
            "<iq xmlns='jabber:client' to='bob@cusax.test' id='i1' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:vcard4' max_items='1'/></pubsub></iq>"
        );
        let iq = publish("p1", "n", Some("current"), Element::new("x", "urn:x"));
        assert_eq!(
            Element::from(iq).to_xml(),
            "<iq xmlns='jabber:client' id='p1' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='current'><x xmlns='urn:x'/></item></publish></pubsub></iq>"
        );
    }

    #[test]
    fn publish_options() {
        let iq = publish_with_access(
            "p2",
            "urn:xmpp:vcard4",
            Some("current"),
            Element::new("x", "urn:x"),
            "open",
        );
        let xml = Element::from(iq).to_xml();
        assert!(xml.contains("</publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'><value>open</value></field></x></publish-options>"), "{xml}");
    }

    #[test]
    fn parse_items_and_event() {
        let p = test_parse(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='a'><x xmlns='urn:x'/></item><item id='b'/></items></pubsub>",
        );
        let items = parse_items_result(&p, "n").expect("ok");
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].payload.as_ref().map(|e| e.name.as_str()),
            Some("x")
        );
        assert!(items[1].payload.is_none());
        assert!(parse_items_result(&p, "other").is_err());
        assert!(
            parse_items_result(
                &test_parse("<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"),
                "n"
            )
            .is_err()
        );

        let m = Message::try_from(test_parse(
            "<message xmlns='jabber:client' from='bob@cusax.test'><event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='n'><item id='c'><x xmlns='urn:x'/></item></items></event></message>",
        ))
        .expect("msg");
        let (from, items) = parse_event(&m, "n").expect("ok").expect("some");
        assert_eq!(from.map(|b| b.to_string()), Some("bob@cusax.test".into()));
        assert_eq!(items[0].id.as_deref(), Some("c"));
        assert_eq!(parse_event(&m, "zzz").expect("ok"), None);
    }
}
