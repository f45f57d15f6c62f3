//! vCard4 in XML (RFC 6351) as used over XMPP (XEP-0292): `<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>`,
//! published to the PEP node `urn:xmpp:vcard4`.
//!
//! As for vcard-temp, the original element is kept and only changed property groups are
//! rewritten by [`Vcard4::to_element`].

use super::{Email, MAX_ENTRIES, Name, Phone, TelFlags, VcardSource, child_text, replace_group};
use crate::stanza::{ParseError, expect};
use crate::xml::element::Element;

/// `urn:ietf:params:xml:ns:vcard-4.0`
pub const NS_VCARD4: &str = "urn:ietf:params:xml:ns:vcard-4.0";
/// The PEP node (XEP-0292 §3).
pub const NODE_VCARD4: &str = "urn:xmpp:vcard4";

const NS: &str = NS_VCARD4;

/// A `tel` property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tel4 {
    /// `parameters/type/text` values, lowercase, in order.
    pub types: Vec<String>,
    /// `parameters/pref/integer` (1 = most preferred).
    pub pref: Option<u8>,
    /// The value: the `uri` child, else the `text` child (`""` when neither).
    pub value: String,
    /// Whether the value came from `<uri/>` (else `<text/>`).
    pub is_uri: bool,
}

impl Tel4 {
    /// The flags the types map to, plus PREF when a `pref` parameter is present.
    pub fn flags(&self) -> TelFlags {
        let mut f = TelFlags::empty();
        for t in &self.types {
            if let Some(x) = TelFlags::from_v4_name(t) {
                f.insert(x);
            }
        }
        if self.pref.is_some() {
            f.insert(TelFlags::PREF);
        }
        f
    }

    /// A `tel` with a URI value and the types of `flags`.
    pub fn from_uri(uri: impl Into<String>, flags: TelFlags) -> Self {
        Tel4 {
            types: flags.v4_names().map(str::to_owned).collect(),
            pref: flags.contains(TelFlags::PREF).then_some(1),
            value: uri.into(),
            is_uri: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Fields {
    full_name: Option<String>,
    name: Option<Name>,
    nicknames: Vec<String>,
    tels: Vec<Tel4>,
    emails: Vec<Email>,
    impps: Vec<String>,
    urls: Vec<String>,
}

/// A vCard4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vcard4 {
    /// `fn`: formatted name.
    pub full_name: Option<String>,
    /// `n`.
    pub name: Option<Name>,
    /// `nickname` values.
    pub nicknames: Vec<String>,
    /// Every `tel`, in document order.
    pub tels: Vec<Tel4>,
    /// Every `email`.
    pub emails: Vec<Email>,
    /// Every `impp` URI (`xmpp:…`, `sip:…`).
    pub impps: Vec<String>,
    /// Every `url` URI.
    pub urls: Vec<String>,
    original: Element,
    baseline: Box<Fields>,
}

impl Default for Vcard4 {
    fn default() -> Self {
        Vcard4::new()
    }
}

fn types_of(prop: &Element) -> Vec<String> {
    prop.child("parameters", NS)
        .and_then(|p| p.child("type", NS))
        .map(|t| {
            t.children_named("text", NS)
                .map(|x| x.text().trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

fn pref_of(prop: &Element) -> Option<u8> {
    prop.child("parameters", NS)
        .and_then(|p| p.child("pref", NS))
        .and_then(|p| child_text(p, "integer", NS))
        .and_then(|t| t.trim().parse().ok())
}

fn parameters(types: &[String], pref: Option<u8>) -> Option<Element> {
    if types.is_empty() && pref.is_none() {
        return None;
    }
    let mut p = Element::new("parameters", NS);
    if !types.is_empty() {
        let mut t = Element::new("type", NS);
        for ty in types {
            t.push_child(Element::new("text", NS).with_text(ty.clone()));
        }
        p.push_child(t);
    }
    if let Some(n) = pref {
        p.push_child(
            Element::new("pref", NS)
                .with_child(Element::new("integer", NS).with_text(n.to_string())),
        );
    }
    Some(p)
}

impl Vcard4 {
    /// An empty vCard4.
    pub fn new() -> Self {
        Vcard4 {
            full_name: None,
            name: None,
            nicknames: Vec::new(),
            tels: Vec::new(),
            emails: Vec::new(),
            impps: Vec::new(),
            urls: Vec::new(),
            original: Element::new("vcard", NS),
            baseline: Box::default(),
        }
    }

    fn fields(&self) -> Fields {
        Fields {
            full_name: self.full_name.clone(),
            name: self.name.clone(),
            nicknames: self.nicknames.clone(),
            tels: self.tels.clone(),
            emails: self.emails.clone(),
            impps: self.impps.clone(),
            urls: self.urls.clone(),
        }
    }

    /// The element this vCard was parsed from.
    pub fn original(&self) -> &Element {
        &self.original
    }

    /// Parses `<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "vcard", NS)?;
        let mut v = Vcard4::new();
        let check = |len: usize, what| {
            if len >= MAX_ENTRIES {
                Err(ParseError::TooMany {
                    what,
                    limit: MAX_ENTRIES,
                })
            } else {
                Ok(())
            }
        };
        for c in e.elements().filter(|c| c.ns == NS) {
            match c.name.as_str() {
                "fn" if v.full_name.is_none() => v.full_name = child_text(c, "text", NS),
                "n" if v.name.is_none() => {
                    v.name = Some(Name {
                        family: child_text(c, "surname", NS),
                        given: child_text(c, "given", NS),
                        middle: child_text(c, "additional", NS),
                        prefix: child_text(c, "prefix", NS),
                        suffix: child_text(c, "suffix", NS),
                    });
                }
                "nickname" => {
                    check(v.nicknames.len(), "nicknames in a vCard")?;
                    if let Some(t) = child_text(c, "text", NS) {
                        v.nicknames.push(t);
                    }
                }
                "tel" => {
                    check(v.tels.len(), "tel entries in a vCard")?;
                    let (value, is_uri) = match (c.child("uri", NS), c.child("text", NS)) {
                        (Some(u), _) => (u.text(), true),
                        (None, Some(t)) => (t.text(), false),
                        (None, None) => (String::new(), true),
                    };
                    v.tels.push(Tel4 {
                        types: types_of(c),
                        pref: pref_of(c),
                        value,
                        is_uri,
                    });
                }
                "email" => {
                    check(v.emails.len(), "email entries in a vCard")?;
                    if let Some(t) = child_text(c, "text", NS) {
                        let mut types = types_of(c);
                        if pref_of(c).is_some() {
                            types.push("pref".into());
                        }
                        v.emails.push(Email {
                            address: t.trim().to_owned(),
                            types,
                        });
                    }
                }
                "impp" => {
                    check(v.impps.len(), "impp entries in a vCard")?;
                    if let Some(u) = child_text(c, "uri", NS) {
                        v.impps.push(u.trim().to_owned());
                    }
                }
                "url" => {
                    check(v.urls.len(), "url entries in a vCard")?;
                    if let Some(u) = child_text(c, "uri", NS) {
                        v.urls.push(u.trim().to_owned());
                    }
                }
                _ => {}
            }
        }
        v.original = e.clone();
        v.baseline = Box::new(v.fields());
        Ok(v)
    }

    /// Builds the element to publish: the original with only the changed groups rewritten.
    pub fn to_element(&self) -> Element {
        let mut e = self.original.clone();
        let b = &self.baseline;
        let prop = |name: &str, kind: &str, value: &str| {
            Element::new(name, NS).with_child(Element::new(kind, NS).with_text(value.to_owned()))
        };
        if self.full_name != b.full_name {
            replace_group(
                &mut e,
                NS,
                &["fn"],
                self.full_name
                    .iter()
                    .map(|t| prop("fn", "text", t))
                    .collect(),
            );
        }
        if self.name != b.name {
            let n = self.name.as_ref().map(|n| {
                let mut ne = Element::new("n", NS);
                for (tag, val) in [
                    ("surname", &n.family),
                    ("given", &n.given),
                    ("additional", &n.middle),
                    ("prefix", &n.prefix),
                    ("suffix", &n.suffix),
                ] {
                    if let Some(v) = val {
                        ne.push_child(Element::new(tag, NS).with_text(v.clone()));
                    }
                }
                ne
            });
            replace_group(&mut e, NS, &["n"], n.into_iter().collect());
        }
        if self.nicknames != b.nicknames {
            replace_group(
                &mut e,
                NS,
                &["nickname"],
                self.nicknames
                    .iter()
                    .map(|t| prop("nickname", "text", t))
                    .collect(),
            );
        }
        if self.tels != b.tels {
            let tels = self
                .tels
                .iter()
                .map(|t| {
                    let mut te = Element::new("tel", NS);
                    if let Some(p) = parameters(&t.types, t.pref) {
                        te.push_child(p);
                    }
                    te.with_child(
                        Element::new(if t.is_uri { "uri" } else { "text" }, NS)
                            .with_text(t.value.clone()),
                    )
                })
                .collect();
            replace_group(&mut e, NS, &["tel"], tels);
        }
        if self.emails != b.emails {
            let emails = self
                .emails
                .iter()
                .map(|m| {
                    let types: Vec<String> = m
                        .types
                        .iter()
                        .filter(|t| *t != "pref" && *t != "internet")
                        .cloned()
                        .collect();
                    let pref = m.types.iter().any(|t| t == "pref").then_some(1);
                    let mut me = Element::new("email", NS);
                    if let Some(p) = parameters(&types, pref) {
                        me.push_child(p);
                    }
                    me.with_child(Element::new("text", NS).with_text(m.address.clone()))
                })
                .collect();
            replace_group(&mut e, NS, &["email"], emails);
        }
        if self.impps != b.impps {
            replace_group(
                &mut e,
                NS,
                &["impp"],
                self.impps.iter().map(|u| prop("impp", "uri", u)).collect(),
            );
        }
        if self.urls != b.urls {
            replace_group(
                &mut e,
                NS,
                &["url"],
                self.urls.iter().map(|u| prop("url", "uri", u)).collect(),
            );
        }
        e
    }

    /// Every `tel` with a value, in document order.
    pub fn phones(&self) -> Vec<Phone> {
        super::phones_of(
            self.tels.iter().map(|t| (t.value.as_str(), t.flags())),
            VcardSource::Vcard4,
        )
    }

    /// The SIP-callable `tel`s (RFC 7081 §3.1 / §3.3) with their flags.
    pub fn sip_addresses(&self) -> Vec<Phone> {
        super::sip_addresses(&self.phones())
    }
}

impl TryFrom<&Element> for Vcard4 {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Vcard4::from_element(e)
    }
}

impl From<&Vcard4> for Element {
    fn from(v: &Vcard4) -> Element {
        v.to_element()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::{Iq, test_parse};
    use crate::vcard::{AnyVcard, PhoneUri, v4_from_result, v4_get, v4_publish};

    const ALICE4: &str = "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>\
        <fn><text>Alice Liddell</text></fn><n><surname>Liddell</surname><given>Alice</given></n>\
        <nickname><text>al</text></nickname>\
        <tel><parameters><type><text>work</text><text>video</text></type><pref><integer>1</integer></pref></parameters>\
        <uri>sip:alice@cusax.test</uri></tel>\
        <tel><parameters><type><text>HOME</text><text>voice</text></type></parameters><uri>tel:+49-30-1234567</uri></tel>\
        <tel><parameters><type><text>cell</text></type></parameters><text>+49 171 000</text></tel>\
        <tel><parameters><type><text>fax</text></type></parameters></tel>\
        <email><parameters><type><text>work</text></type></parameters><text>alice@cusax.test</text></email>\
        <impp><uri>xmpp:alice@cusax.test</uri></impp><url><uri>https://cusax.test/alice</uri></url>\
        <x-custom><text>keep</text></x-custom><parameters/></vcard>";

    #[test]
    fn size() {
        assert!(std::mem::size_of::<Tel4>() <= 64);
    }

    #[test]
    fn parse() {
        let v = Vcard4::from_element(&test_parse(ALICE4)).expect("valid");
        assert_eq!(v.full_name.as_deref(), Some("Alice Liddell"));
        assert_eq!(
            v.name.as_ref().and_then(|n| n.given.as_deref()),
            Some("Alice")
        );
        assert_eq!(v.nicknames, vec!["al".to_string()]);
        assert_eq!(v.tels.len(), 4);
        assert_eq!(
            v.tels[0].flags(),
            TelFlags::WORK | TelFlags::VIDEO | TelFlags::PREF
        );
        assert_eq!(
            v.tels[1].flags(),
            TelFlags::HOME | TelFlags::VOICE,
            "types are case-insensitive"
        );
        assert!(!v.tels[2].is_uri);
        assert_eq!(v.emails[0].address, "alice@cusax.test");
        assert_eq!(v.impps, vec!["xmpp:alice@cusax.test".to_string()]);
        assert_eq!(v.urls.len(), 1);
        let phones = v.phones();
        assert_eq!(phones.len(), 3, "the tel without a value is skipped");
        assert_eq!(
            phones[0].normalized,
            PhoneUri::Sip("sip:alice@cusax.test".into())
        );
        assert!(phones[0].has_video());
        assert_eq!(
            phones[1].normalized,
            PhoneUri::Tel("tel:+49301234567".into())
        );
        assert_eq!(phones[2].normalized, PhoneUri::Tel("tel:+49171000".into()));
        assert!(phones.iter().all(|p| p.source == VcardSource::Vcard4));
        assert_eq!(v.sip_addresses().len(), 3);
        let any = AnyVcard::V4(v);
        assert_eq!(
            any.jids().iter().map(|j| j.to_string()).collect::<Vec<_>>(),
            vec!["alice@cusax.test"]
        );
        assert_eq!(any.sip_addresses().len(), 3);
    }

    #[test]
    fn prosody_bridge_output() {
        // What Prosody 0.12's mod_vcard_legacy publishes for a vcard-temp with
        // <TEL><WORK/><VIDEO/><NUMBER>sip:alice@cusax.test</NUMBER></TEL>.
        // A TEL without NUMBER leaves a stray <parameters/> at the top level.
        let v = Vcard4::from_element(&test_parse(
            "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text/></fn><n/>\
             <tel><uri>tel:sip:alice@cusax.test</uri><parameters><type><text>work</text></type></parameters></tel>\
             <parameters><type><text>home</text></type></parameters></vcard>",
        ))
        .expect("valid");
        let p = v.sip_addresses();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].raw, "tel:sip:alice@cusax.test");
        assert_eq!(
            p[0].normalized,
            PhoneUri::Sip("sip:alice@cusax.test".into())
        );
        assert_eq!(
            p[0].flags,
            TelFlags::WORK,
            "VIDEO was lost by the bridge, WORK kept"
        );
        assert_eq!(v.full_name, None, "empty fn text is no name");
    }

    #[test]
    fn round_trip_and_modify() {
        let e = test_parse(ALICE4);
        let mut v = Vcard4::from_element(&e).expect("valid");
        assert_eq!(
            v.to_element(),
            e,
            "unchanged vCard is written back identically"
        );
        v.tels.push(Tel4::from_uri(
            "tel:+1-555-0100",
            TelFlags::WORK | TelFlags::VOICE | TelFlags::PREF,
        ));
        v.emails[0].types.push("pref".into());
        let out = v.to_element();
        assert!(out.child("x-custom", NS).is_some());
        let back = Vcard4::from_element(&out).expect("rt");
        assert_eq!(back.tels, v.tels);
        assert_eq!(back.emails, v.emails);
        assert_eq!(
            back.tels[4].flags(),
            TelFlags::WORK | TelFlags::VOICE | TelFlags::PREF
        );
    }

    #[test]
    fn build_and_pep() {
        let mut v = Vcard4::new();
        v.full_name = Some("Bob".into());
        v.tels.push(Tel4::from_uri(
            "sip:bob@cusax.test",
            TelFlags::WORK | TelFlags::VIDEO,
        ));
        v.impps.push("xmpp:bob@cusax.test".into());
        assert_eq!(
            v.to_element().to_xml(),
            "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Bob</text></fn>\
             <tel><parameters><type><text>work</text><text>video</text></type></parameters><uri>sip:bob@cusax.test</uri></tel>\
             <impp><uri>xmpp:bob@cusax.test</uri></impp></vcard>"
        );
        let xml = Element::from(v4_publish("p", &v)).to_xml();
        assert!(
            xml.contains("<publish node='urn:xmpp:vcard4'><item id='current'><vcard xmlns=")
                && xml.contains("<field var='pubsub#access_model'><value>open</value></field>"),
            "{xml}"
        );
        assert!(
            Element::from(v4_get("g", None))
                .to_xml()
                .contains("<items node='urn:xmpp:vcard4' max_items='1'/>")
        );
        let iq = Iq::try_from(test_parse(&format!(
            "<iq xmlns='jabber:client' id='g' type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='urn:xmpp:vcard4'><item id='current'>{ALICE4}</item></items></pubsub></iq>"
        )))
        .expect("iq");
        assert_eq!(
            v4_from_result(&iq).expect("ok").map(|v| v.tels.len()),
            Some(4)
        );
        let empty = Iq::try_from(test_parse(
            "<iq xmlns='jabber:client' id='g' type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:vcard4'/></pubsub></iq>",
        ))
        .expect("iq");
        assert_eq!(v4_from_result(&empty).expect("ok"), None);
    }

    #[test]
    fn invalid() {
        assert!(
            Vcard4::from_element(&test_parse(
                "<vCard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>"
            ))
            .is_err()
        );
        assert!(Vcard4::from_element(&test_parse("<vcard xmlns='vcard-temp'/>")).is_err());
        let mut many = String::from("<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>");
        for _ in 0..=MAX_ENTRIES {
            many.push_str("<tel><uri>tel:1</uri></tel>");
        }
        many.push_str("</vcard>");
        assert!(matches!(
            Vcard4::from_element(&test_parse(&many)),
            Err(ParseError::TooMany { .. })
        ));
    }
}
