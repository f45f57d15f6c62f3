//! vcard-temp (XEP-0054): `<vCard xmlns='vcard-temp'/>`.
//!
//! The parsed fields are public; the original element is kept, and
//! [`VcardTemp::to_element`] rewrites only the groups of children whose parsed value was
//! changed, so PHOTO, ADR, ORG and any extension survive a get-modify-set cycle untouched.

use super::{Email, MAX_ENTRIES, Name, Phone, TelFlags, VcardSource, child_text, replace_group};
use crate::stanza::{ParseError, expect};
use crate::xml::element::Element;

/// `vcard-temp`
pub const NS_VCARD_TEMP: &str = "vcard-temp";

const NS: &str = NS_VCARD_TEMP;

/// A `TEL` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tel {
    /// Flags (HOME, WORK, VOICE, VIDEO…).
    pub flags: TelFlags,
    /// NUMBER as found (untrimmed; `""` when empty or missing).
    pub number: String,
}

/// The fields CUSAX reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Fields {
    full_name: Option<String>,
    name: Option<Name>,
    nickname: Option<String>,
    tels: Vec<Tel>,
    emails: Vec<Email>,
    urls: Vec<String>,
    jabber_ids: Vec<String>,
}

/// A vcard-temp vCard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcardTemp {
    /// `FN`: formatted name.
    pub full_name: Option<String>,
    /// `N`: name components.
    pub name: Option<Name>,
    /// `NICKNAME`.
    pub nickname: Option<String>,
    /// Every `TEL`, in document order.
    pub tels: Vec<Tel>,
    /// Every `EMAIL`.
    pub emails: Vec<Email>,
    /// Every `URL`.
    pub urls: Vec<String>,
    /// Every `JABBERID`.
    pub jabber_ids: Vec<String>,
    original: Element,
    baseline: Box<Fields>,
}

impl Default for VcardTemp {
    fn default() -> Self {
        VcardTemp::new()
    }
}

const EMAIL_TYPES: [&str; 5] = ["HOME", "WORK", "INTERNET", "PREF", "X400"];

impl VcardTemp {
    /// An empty vCard.
    pub fn new() -> Self {
        VcardTemp {
            full_name: None,
            name: None,
            nickname: None,
            tels: Vec::new(),
            emails: Vec::new(),
            urls: Vec::new(),
            jabber_ids: Vec::new(),
            original: Element::new("vCard", NS),
            baseline: Box::default(),
        }
    }

    fn fields(&self) -> Fields {
        Fields {
            full_name: self.full_name.clone(),
            name: self.name.clone(),
            nickname: self.nickname.clone(),
            tels: self.tels.clone(),
            emails: self.emails.clone(),
            urls: self.urls.clone(),
            jabber_ids: self.jabber_ids.clone(),
        }
    }

    /// The element this vCard was parsed from (unchanged).
    pub fn original(&self) -> &Element {
        &self.original
    }

    /// Parses `<vCard xmlns='vcard-temp'/>`.
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        expect(e, "vCard", NS)?;
        let mut v = VcardTemp::new();
        let too_many = |what| ParseError::TooMany {
            what,
            limit: MAX_ENTRIES,
        };
        for c in e.elements().filter(|c| c.ns == NS) {
            match c.name.as_str() {
                "FN" if v.full_name.is_none() => v.full_name = Some(c.text()),
                "NICKNAME" if v.nickname.is_none() => v.nickname = Some(c.text()),
                "N" if v.name.is_none() => {
                    let n = Name {
                        family: child_text(c, "FAMILY", NS),
                        given: child_text(c, "GIVEN", NS),
                        middle: child_text(c, "MIDDLE", NS),
                        prefix: child_text(c, "PREFIX", NS),
                        suffix: child_text(c, "SUFFIX", NS),
                    };
                    v.name = Some(n);
                }
                "TEL" => {
                    if v.tels.len() >= MAX_ENTRIES {
                        return Err(too_many("TEL entries in a vCard"));
                    }
                    let mut tel = Tel {
                        flags: TelFlags::empty(),
                        number: String::new(),
                    };
                    for f in c.elements().filter(|f| f.ns == NS) {
                        if f.name == "NUMBER" {
                            if tel.number.is_empty() {
                                tel.number = f.text();
                            }
                        } else if let Some(flag) = TelFlags::from_temp_name(&f.name) {
                            tel.flags.insert(flag);
                        }
                    }
                    // Some writers put the number as the TEL's own text.
                    if tel.number.trim().is_empty() && !c.text().trim().is_empty() {
                        tel.number = c.text();
                    }
                    v.tels.push(tel);
                }
                "EMAIL" => {
                    if v.emails.len() >= MAX_ENTRIES {
                        return Err(too_many("EMAIL entries in a vCard"));
                    }
                    let address = child_text(c, "USERID", NS).unwrap_or_else(|| c.text());
                    let types = c
                        .elements()
                        .filter(|f| f.ns == NS && EMAIL_TYPES.contains(&f.name.as_str()))
                        .map(|f| f.name.to_ascii_lowercase())
                        .collect();
                    v.emails.push(Email {
                        address: address.trim().to_owned(),
                        types,
                    });
                }
                "URL" => {
                    if v.urls.len() >= MAX_ENTRIES {
                        return Err(too_many("URL entries in a vCard"));
                    }
                    v.urls.push(c.text());
                }
                "JABBERID" => {
                    if v.jabber_ids.len() >= MAX_ENTRIES {
                        return Err(too_many("JABBERID entries in a vCard"));
                    }
                    v.jabber_ids.push(c.text().trim().to_owned());
                }
                _ => {}
            }
        }
        v.original = e.clone();
        v.baseline = Box::new(v.fields());
        Ok(v)
    }

    /// Builds the element to set: the original with only the changed groups rewritten.
    pub fn to_element(&self) -> Element {
        let mut e = self.original.clone();
        let b = &self.baseline;
        let text = |name: &str, t: &str| Element::new(name, NS).with_text(t.to_owned());
        if self.full_name != b.full_name {
            replace_group(
                &mut e,
                NS,
                &["FN"],
                self.full_name.iter().map(|t| text("FN", t)).collect(),
            );
        }
        if self.name != b.name {
            let n = self.name.as_ref().filter(|n| !n.is_empty()).map(|n| {
                let mut ne = Element::new("N", NS);
                for (tag, val) in [
                    ("FAMILY", &n.family),
                    ("GIVEN", &n.given),
                    ("MIDDLE", &n.middle),
                    ("PREFIX", &n.prefix),
                    ("SUFFIX", &n.suffix),
                ] {
                    if let Some(v) = val {
                        ne.push_child(text(tag, v));
                    }
                }
                ne
            });
            replace_group(&mut e, NS, &["N"], n.into_iter().collect());
        }
        if self.nickname != b.nickname {
            replace_group(
                &mut e,
                NS,
                &["NICKNAME"],
                self.nickname.iter().map(|t| text("NICKNAME", t)).collect(),
            );
        }
        if self.urls != b.urls {
            replace_group(
                &mut e,
                NS,
                &["URL"],
                self.urls.iter().map(|t| text("URL", t)).collect(),
            );
        }
        if self.tels != b.tels {
            let tels = self
                .tels
                .iter()
                .map(|t| {
                    let mut te = Element::new("TEL", NS);
                    for n in t.flags.temp_names() {
                        te.push_child(Element::new(n, NS));
                    }
                    te.with_child(text("NUMBER", &t.number))
                })
                .collect();
            replace_group(&mut e, NS, &["TEL"], tels);
        }
        if self.emails != b.emails {
            let emails = self
                .emails
                .iter()
                .map(|m| {
                    let mut me = Element::new("EMAIL", NS);
                    for t in &m.types {
                        let up = t.to_ascii_uppercase();
                        if EMAIL_TYPES.contains(&up.as_str()) {
                            me.push_child(Element::new(up, NS));
                        }
                    }
                    me.with_child(text("USERID", &m.address))
                })
                .collect();
            replace_group(&mut e, NS, &["EMAIL"], emails);
        }
        if self.jabber_ids != b.jabber_ids {
            replace_group(
                &mut e,
                NS,
                &["JABBERID"],
                self.jabber_ids
                    .iter()
                    .map(|t| text("JABBERID", t))
                    .collect(),
            );
        }
        e
    }

    /// Every TEL with a number, in document order (see the module docs: empty NUMBERs
    /// are skipped).
    pub fn phones(&self) -> Vec<Phone> {
        super::phones_of(
            self.tels.iter().map(|t| (t.number.as_str(), t.flags)),
            VcardSource::VcardTemp,
        )
    }

    /// The SIP-callable TELs (RFC 7081 §3.1 / §3.3) with their flags.
    pub fn sip_addresses(&self) -> Vec<Phone> {
        super::sip_addresses(&self.phones())
    }
}

impl TryFrom<&Element> for VcardTemp {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        VcardTemp::from_element(e)
    }
}

impl From<&VcardTemp> for Element {
    fn from(v: &VcardTemp) -> Element {
        v.to_element()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::{Iq, test_parse};
    use crate::vcard::{PhoneUri, temp_from_result, temp_get, temp_set};

    const ALICE: &str = "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN>\
        <N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N><NICKNAME>al</NICKNAME>\
        <PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO>\
        <TEL><WORK/><VIDEO/><NUMBER>sip:alice@cusax.test</NUMBER></TEL>\
        <TEL><NUMBER>+49 30 1234567</NUMBER><HOME/><VOICE/><PREF/></TEL>\
        <TEL><HOME/><VOICE/><NUMBER>+49 30 7654321</NUMBER></TEL>\
        <TEL><CELL/><NUMBER></NUMBER></TEL>\
        <TEL><HOME/><WORK/><VOICE/><FAX/><PAGER/><MSG/><CELL/><VIDEO/><BBS/><MODEM/><ISDN/><PCS/><PREF/><NUMBER>tel:sip:alice@cusax.test</NUMBER></TEL>\
        <EMAIL><INTERNET/><PREF/><USERID>alice@cusax.test</USERID></EMAIL>\
        <URL>https://cusax.test/alice</URL><JABBERID>alice@cusax.test</JABBERID>\
        <X-CUSTOM xmlns='urn:example'>keep me</X-CUSTOM></vCard>";

    #[test]
    fn size() {
        assert!(std::mem::size_of::<Tel>() <= 32);
    }

    #[test]
    fn parse_all_tels() {
        let v = VcardTemp::from_element(&test_parse(ALICE)).expect("valid");
        assert_eq!(v.full_name.as_deref(), Some("Alice Liddell"));
        assert_eq!(
            v.name.as_ref().and_then(|n| n.family.as_deref()),
            Some("Liddell")
        );
        assert_eq!(v.nickname.as_deref(), Some("al"));
        assert_eq!(
            v.tels.len(),
            5,
            "all TELs kept, also two HOME VOICE and an empty one"
        );
        assert_eq!(v.tels[0].flags, TelFlags::WORK | TelFlags::VIDEO);
        assert_eq!(
            v.tels[1].flags,
            TelFlags::HOME | TelFlags::VOICE | TelFlags::PREF,
            "NUMBER first"
        );
        assert_eq!(v.tels[3].number, "");
        assert_eq!(v.tels[4].flags.temp_names().count(), 13);
        assert_eq!(v.emails[0].address, "alice@cusax.test");
        assert_eq!(
            v.emails[0].types,
            vec!["internet".to_string(), "pref".to_string()]
        );
        assert_eq!(v.urls, vec!["https://cusax.test/alice".to_string()]);
        assert_eq!(v.jabber_ids, vec!["alice@cusax.test".to_string()]);

        let phones = v.phones();
        assert_eq!(phones.len(), 4, "the empty NUMBER is skipped");
        assert_eq!(
            phones[0].normalized,
            PhoneUri::Sip("sip:alice@cusax.test".into())
        );
        assert!(phones[0].has_video());
        assert_eq!(
            phones[1].normalized,
            PhoneUri::Tel("tel:+49301234567".into())
        );
        assert_eq!(phones[3].raw, "tel:sip:alice@cusax.test");
        assert_eq!(
            phones[3].normalized,
            PhoneUri::Sip("sip:alice@cusax.test".into())
        );
        assert!(phones.iter().all(|p| p.source == VcardSource::VcardTemp));
        assert_eq!(v.sip_addresses().len(), 4);
    }

    #[test]
    fn unchanged_round_trip_is_identical() {
        let e = test_parse(ALICE);
        let v = VcardTemp::from_element(&e).expect("valid");
        assert_eq!(v.to_element(), e);
    }

    #[test]
    fn set_modifies_only_what_changed() {
        let e = test_parse(ALICE);
        let mut v = VcardTemp::from_element(&e).expect("valid");
        v.tels.retain(|t| !t.number.is_empty());
        v.tels.push(Tel {
            flags: TelFlags::WORK | TelFlags::VOICE,
            number: "+1 555 0100".into(),
        });
        v.nickname = None;
        let out = v.to_element();
        // PHOTO and the extension survive, in place.
        assert_eq!(out.child("PHOTO", NS), e.child("PHOTO", NS));
        assert!(out.child("X-CUSTOM", "urn:example").is_some());
        assert!(out.child("NICKNAME", NS).is_none());
        assert_eq!(out.children_named("TEL", NS).count(), 5);
        let names: Vec<&str> = out.elements().map(|c| c.name.as_str()).collect();
        assert_eq!(names[..4], ["FN", "N", "PHOTO", "TEL"]);
        let back = VcardTemp::from_element(&out).expect("rt");
        assert_eq!(back.tels, v.tels);
        assert_eq!(back.emails, v.emails);
    }

    #[test]
    fn build_from_scratch() {
        let mut v = VcardTemp::new();
        v.full_name = Some("Bob".into());
        v.name = Some(Name {
            given: Some("Bob".into()),
            ..Name::default()
        });
        v.tels.push(Tel {
            flags: TelFlags::WORK | TelFlags::VIDEO,
            number: "sip:bob@cusax.test".into(),
        });
        v.emails.push(Email {
            address: "bob@cusax.test".into(),
            types: vec!["internet".into(), "bogus".into()],
        });
        v.jabber_ids.push("bob@cusax.test".into());
        v.urls.push("https://b".into());
        v.nickname = Some("b".into());
        assert_eq!(
            v.to_element().to_xml(),
            "<vCard xmlns='vcard-temp'><FN>Bob</FN><N><GIVEN>Bob</GIVEN></N><NICKNAME>b</NICKNAME><URL>https://b</URL>\
             <TEL><WORK/><VIDEO/><NUMBER>sip:bob@cusax.test</NUMBER></TEL>\
             <EMAIL><INTERNET/><USERID>bob@cusax.test</USERID></EMAIL><JABBERID>bob@cusax.test</JABBERID></vCard>"
        );
        let iq = temp_set("v1", &v);
        assert_eq!(iq.payload.as_ref().map(|p| p.name.as_str()), Some("vCard"));
        let get = temp_get(
            "v2",
            Some(jid::BareJid::new("bob@cusax.test").expect("jid")),
        );
        assert_eq!(
            Element::from(get).to_xml(),
            "<iq xmlns='jabber:client' to='bob@cusax.test' id='v2' type='get'><vCard xmlns='vcard-temp'/></iq>"
        );
    }

    #[test]
    fn quirks() {
        // Number as TEL text, unknown flags, lowercase flags, non-vcard-temp children.
        let v = VcardTemp::from_element(&test_parse(
            "<vCard xmlns='vcard-temp'><TEL><work/><X-SKYPE/>+1 555 0101</TEL>\
             <TEL><NUMBER xmlns='urn:other'>9</NUMBER></TEL><EMAIL>plain@x</EMAIL></vCard>",
        ))
        .expect("valid");
        assert_eq!(v.tels[0].flags, TelFlags::WORK);
        assert_eq!(
            v.phones()[0].normalized,
            PhoneUri::Tel("tel:+15550101".into())
        );
        assert_eq!(v.tels[1].number, "");
        assert_eq!(v.emails[0].address, "plain@x");
    }

    #[test]
    fn results_and_invalid() {
        let iq = |xml: &str| Iq::try_from(test_parse(xml)).expect("iq");
        assert_eq!(
            temp_from_result(&iq("<iq xmlns='jabber:client' id='a' type='result'/>")).expect("ok"),
            None
        );
        assert_eq!(
            temp_from_result(&iq(
                "<iq xmlns='jabber:client' id='a' type='result'><vCard xmlns='vcard-temp'/></iq>"
            ))
            .expect("ok"),
            None
        );
        let r = temp_from_result(&iq(&format!(
            "<iq xmlns='jabber:client' id='a' type='result'>{ALICE}</iq>"
        )))
        .expect("ok")
        .expect("some");
        assert_eq!(r.tels.len(), 5);
        assert!(
            temp_from_result(&iq(
                "<iq xmlns='jabber:client' id='a' type='result'><vcard xmlns='vcard-temp'/></iq>"
            ))
            .is_err()
        );
        let mut many = String::from("<vCard xmlns='vcard-temp'>");
        for _ in 0..=MAX_ENTRIES {
            many.push_str("<TEL><NUMBER>1</NUMBER></TEL>");
        }
        many.push_str("</vCard>");
        assert!(matches!(
            VcardTemp::from_element(&test_parse(&many)),
            Err(ParseError::TooMany { .. })
        ));
    }
}
