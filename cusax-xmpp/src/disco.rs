//! Service discovery (XEP-0030) with extended information forms (XEP-0128).

use jid::Jid;

use crate::forms::{DataForm, NS_DATA};
use crate::stanza::{Iq, ParseError, expect, parse_jid};
use crate::xml::element::Element;

/// `http://jabber.org/protocol/disco#info`
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// `http://jabber.org/protocol/disco#items`
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The features of this library's client (XEP-0030 §3.1), as announced by default
/// through entity capabilities (XEP-0115): service discovery, caps, XEP-0199 ping (the
/// session answers), XEP-0184 receipts, XEP-0045 MUC and XEP-0249 direct invitations,
/// vcard-temp (XEP-0054), XEP-0152 reachability with PEP notifications (XEP-0163 `+notify`).
pub const CLIENT_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    crate::presence::NS_CAPS,
    crate::stream::NS_PING,
    crate::stanza::NS_RECEIPTS,
    crate::muc::NS_MUC,
    crate::muc::NS_CONFERENCE,
    crate::vcard::temp::NS_VCARD_TEMP,
    crate::reach::NS_REACH,
    "urn:xmpp:reach:0+notify",
];

/// Most identities, features, forms or items accepted in one response.
pub const MAX_ENTRIES: usize = 1024;

/// An `<identity/>` (XEP-0030 §3.1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    /// Category (`conference`, `client`, `server`…).
    pub category: String,
    /// Type within the category (`text`, `pc`…).
    pub kind: String,
    /// `xml:lang` of the name.
    pub lang: Option<String>,
    /// Natural-language name.
    pub name: Option<String>,
}

/// A disco#info query or response.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DiscoInfo {
    /// The node queried.
    pub node: Option<String>,
    /// Identities.
    pub identities: Vec<Identity>,
    /// Feature vars.
    pub features: Vec<String>,
    /// Extended information (XEP-0128), `type='result'` forms.
    pub extensions: Vec<DataForm>,
}

fn too_many(what: &'static str) -> ParseError {
    ParseError::TooMany {
        what,
        limit: MAX_ENTRIES,
    }
}

impl DiscoInfo {
    /// A client's disco#info: identity `client/pc` named `name` (XEP-0030 §3.1, the
    /// registry's category and type for a desktop client) and [`CLIENT_FEATURES`].
    pub fn client(name: impl Into<String>) -> Self {
        DiscoInfo {
            node: None,
            identities: vec![Identity {
                category: "client".into(),
                kind: "pc".into(),
                lang: None,
                name: Some(name.into()),
            }],
            features: CLIENT_FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            extensions: Vec::new(),
        }
    }

    /// Whether `var` is among the features.
    pub fn has_feature(&self, var: &str) -> bool {
        self.features.iter().any(|f| f == var)
    }

    /// The extension form whose `FORM_TYPE` is `form_type`.
    pub fn extension(&self, form_type: &str) -> Option<&DataForm> {
        self.extensions
            .iter()
            .find(|f| f.form_type.as_deref() == Some(form_type))
    }

    /// Parses `<query xmlns='…disco#info'/>`. Extension forms that are invalid are
    /// skipped (logged): one bad form must not hide the identities and features.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "query", NS_DISCO_INFO)?;
        let mut d = DiscoInfo {
            node: e.attr("node").map(str::to_owned),
            ..Default::default()
        };
        for c in e.elements() {
            if c.is("identity", NS_DISCO_INFO) {
                if d.identities.len() >= MAX_ENTRIES {
                    return Err(too_many("disco identities"));
                }
                d.identities.push(Identity {
                    category: c
                        .attr("category")
                        .ok_or(ParseError::MissingAttr {
                            element: "identity",
                            attr: "category",
                        })?
                        .to_owned(),
                    kind: c
                        .attr("type")
                        .ok_or(ParseError::MissingAttr {
                            element: "identity",
                            attr: "type",
                        })?
                        .to_owned(),
                    lang: c.attr("xml:lang").map(str::to_owned),
                    name: c.attr("name").map(str::to_owned),
                });
            } else if c.is("feature", NS_DISCO_INFO) {
                if d.features.len() >= MAX_ENTRIES {
                    return Err(too_many("disco features"));
                }
                let var = c.attr("var").ok_or(ParseError::MissingAttr {
                    element: "feature",
                    attr: "var",
                })?;
                d.features.push(var.to_owned());
            } else if c.is("x", NS_DATA) {
                if d.extensions.len() >= MAX_ENTRIES {
                    return Err(too_many("disco extension forms"));
                }
                match DataForm::from_element(c) {
                    Ok(f) => d.extensions.push(f),
                    Err(err) => tracing::debug!(%err, "skipping invalid disco#info extension form"),
                }
            }
        }
        Ok(d)
    }

    /// Builds the `<query/>` element (for answering disco#info requests).
    pub fn to_element(&self) -> Element {
        let mut q = Element::new("query", NS_DISCO_INFO);
        if let Some(n) = &self.node {
            q.set_attr("node", n.clone());
        }
        for i in &self.identities {
            let mut ie = Element::new("identity", NS_DISCO_INFO)
                .with_attr("category", i.category.clone())
                .with_attr("type", i.kind.clone());
            if let Some(l) = &i.lang {
                ie.set_attr("xml:lang", l.clone());
            }
            if let Some(n) = &i.name {
                ie.set_attr("name", n.clone());
            }
            q.push_child(ie);
        }
        for f in &self.features {
            q.push_child(Element::new("feature", NS_DISCO_INFO).with_attr("var", f.clone()));
        }
        for x in &self.extensions {
            q.push_child(x.to_element());
        }
        q
    }
}

/// An `<item/>` of a disco#items response (XEP-0030 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoItem {
    /// The item's JID.
    pub jid: Jid,
    /// Node.
    pub node: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// A disco#items response.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DiscoItems {
    /// The node queried.
    pub node: Option<String>,
    /// Items.
    pub items: Vec<DiscoItem>,
}

impl DiscoItems {
    /// Parses `<query xmlns='…disco#items'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "query", NS_DISCO_ITEMS)?;
        let mut d = DiscoItems {
            node: e.attr("node").map(str::to_owned),
            items: Vec::new(),
        };
        for c in e.children_named("item", NS_DISCO_ITEMS) {
            if d.items.len() >= MAX_ENTRIES {
                return Err(too_many("disco items"));
            }
            let j = c.attr("jid").ok_or(ParseError::MissingAttr {
                element: "item",
                attr: "jid",
            })?;
            d.items.push(DiscoItem {
                jid: parse_jid(j, "item", "jid")?,
                node: c.attr("node").map(str::to_owned),
                name: c.attr("name").map(str::to_owned),
            });
        }
        Ok(d)
    }

    /// Builds the `<query/>` element.
    pub fn to_element(&self) -> Element {
        let mut q = Element::new("query", NS_DISCO_ITEMS);
        if let Some(n) = &self.node {
            q.set_attr("node", n.clone());
        }
        for i in &self.items {
            let mut ie = Element::new("item", NS_DISCO_ITEMS).with_attr("jid", i.jid.as_str());
            if let Some(n) = &i.node {
                ie.set_attr("node", n.clone());
            }
            if let Some(n) = &i.name {
                ie.set_attr("name", n.clone());
            }
            q.push_child(ie);
        }
        q
    }
}

/// The XEP-0115 §5.1 verification string S of `info` (before hashing): identities sorted
/// by category/type/xml:lang (then name) as `category/type/lang/name<`, features sorted as
/// `var<`, then each extension form with a `FORM_TYPE`, sorted by it, as `FORM_TYPE<` and
/// its fields sorted by var as `var<value<…` (values sorted).
pub fn caps_verification_string(info: &DiscoInfo) -> String {
    let mut s = String::new();
    let mut ids: Vec<&Identity> = info.identities.iter().collect();
    ids.sort_by(|a, b| {
        (&a.category, &a.kind, &a.lang, &a.name).cmp(&(&b.category, &b.kind, &b.lang, &b.name))
    });
    for i in ids {
        s.push_str(&i.category);
        s.push('/');
        s.push_str(&i.kind);
        s.push('/');
        s.push_str(i.lang.as_deref().unwrap_or(""));
        s.push('/');
        s.push_str(i.name.as_deref().unwrap_or(""));
        s.push('<');
    }
    let mut features: Vec<&String> = info.features.iter().collect();
    features.sort();
    features.dedup();
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    let mut forms: Vec<(&str, &DataForm)> = info
        .extensions
        .iter()
        .filter_map(|f| f.form_type.as_deref().map(|t| (t, f)))
        .collect();
    forms.sort_by(|a, b| a.0.cmp(b.0));
    for (ft, f) in forms {
        s.push_str(ft);
        s.push('<');
        let mut fields: Vec<_> = f.fields.iter().filter(|x| x.var.is_some()).collect();
        fields.sort_by(|a, b| a.var.cmp(&b.var));
        for x in fields {
            s.push_str(x.var.as_deref().unwrap_or(""));
            s.push('<');
            let mut values: Vec<&String> = x.values.iter().collect();
            values.sort();
            for v in values {
                s.push_str(v);
                s.push('<');
            }
        }
    }
    s
}

/// The XEP-0115 `ver` of `info` with `hash='sha-1'`: base64 of the SHA-1 of
/// [`caps_verification_string`].
pub fn caps_ver(info: &DiscoInfo) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let digest = sha1::Sha1::digest(caps_verification_string(info).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn query(ns: &str, node: Option<&str>) -> Element {
    let mut q = Element::new("query", ns);
    if let Some(n) = node {
        q.set_attr("node", n);
    }
    q
}

/// An iq get asking `to` for its disco#info (XEP-0030 §3.1).
pub fn info_query(id: impl Into<String>, to: Jid, node: Option<&str>) -> Iq {
    Iq::get(id, Some(to), query(NS_DISCO_INFO, node))
}

/// An iq get asking `to` for its disco#items (XEP-0030 §4.1).
pub fn items_query(id: impl Into<String>, to: Jid, node: Option<&str>) -> Iq {
    Iq::get(id, Some(to), query(NS_DISCO_ITEMS, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    #[test]
    fn parse_room_info() {
        let e = test_parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='conference' type='text' name='CUSAX room'/>\
             <feature var='http://jabber.org/protocol/muc'/><feature var='muc_public'/>\
             <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
             <value>http://jabber.org/protocol/muc#roominfo</value></field>\
             <field var='muc#roominfo_occupants'><value>2</value></field></x>\
             <x xmlns='jabber:x:data' type='bad'/></query>",
        );
        let d = DiscoInfo::from_element(&e).expect("valid");
        assert_eq!(d.identities[0].category, "conference");
        assert_eq!(d.identities[0].name.as_deref(), Some("CUSAX room"));
        assert!(d.has_feature("muc_public"));
        assert!(!d.has_feature("muc_hidden"));
        assert_eq!(d.extensions.len(), 1, "the invalid form is skipped");
        assert_eq!(
            d.extension("http://jabber.org/protocol/muc#roominfo")
                .and_then(|f| f.value("muc#roominfo_occupants")),
            Some("2")
        );
        let back = DiscoInfo::from_element(&d.to_element()).expect("rt");
        assert_eq!(back, d);
    }

    #[test]
    fn items() {
        let e = test_parse(
            "<query xmlns='http://jabber.org/protocol/disco#items' node='n'>\
             <item jid='conference.cusax.test' name='Rooms'/><item jid='pubsub.cusax.test' node='x'/></query>",
        );
        let d = DiscoItems::from_element(&e).expect("valid");
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.items[1].node.as_deref(), Some("x"));
        assert_eq!(DiscoItems::from_element(&d.to_element()).expect("rt"), d);
    }

    #[test]
    fn invalid() {
        for (xml, want) in [
            (
                "<query xmlns='http://jabber.org/protocol/disco#info'><identity type='pc'/></query>",
                "category",
            ),
            (
                "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client'/></query>",
                "type",
            ),
            (
                "<query xmlns='http://jabber.org/protocol/disco#info'><feature/></query>",
                "var",
            ),
            (
                "<query xmlns='http://jabber.org/protocol/disco#items'/>",
                "query",
            ),
        ] {
            let err = DiscoInfo::from_element(&test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
        for xml in [
            "<query xmlns='http://jabber.org/protocol/disco#items'><item/></query>",
            "<query xmlns='http://jabber.org/protocol/disco#items'><item jid='@'/></query>",
        ] {
            assert!(DiscoItems::from_element(&test_parse(xml)).is_err());
        }
    }

    #[test]
    fn caps_ver_vectors() {
        // XEP-0115 §5.2 and §5.3.
        let simple = DiscoInfo::from_element(&test_parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='client' name='Exodus 0.9.1' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>",
        ))
        .expect("valid");
        assert_eq!(caps_ver(&simple), "QgayPKawpkPSDYmwT/WM94uAlu0=");
        let complex = DiscoInfo::from_element(&test_parse(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
             <identity xml:lang='el' category='client' name='\u{3a8} 0.11' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>\
             <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
             <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>\
             <field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field>\
             <field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field></x></query>",
        ))
        .expect("valid");
        assert!(
            caps_verification_string(&complex)
                .starts_with("client/pc/el/\u{3a8} 0.11<client/pc/en/Psi 0.11<")
        );
        assert_eq!(caps_ver(&complex), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    #[test]
    fn builders() {
        let iq = info_query(
            "d1",
            Jid::new("cusax-room@conference.cusax.test").expect("jid"),
            None,
        );
        assert_eq!(
            Element::from(iq).to_xml(),
            "<iq xmlns='jabber:client' to='cusax-room@conference.cusax.test' id='d1' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        );
        let iq = items_query("d2", Jid::new("cusax.test").expect("jid"), Some("n"));
        assert!(Element::from(iq).to_xml().contains("disco#items' node='n'"));
    }
}
