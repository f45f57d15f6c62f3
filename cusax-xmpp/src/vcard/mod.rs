//! vCards: vcard-temp (XEP-0054) and vCard4 over XMPP (XEP-0292), tolerant of server quirks.
//!
//! CUSAX reads the SIP address of a contact from the vCard `tel` fields (RFC 7081 §3.1)
//! and offers a video call when the `video` type is present (RFC 7081 §3.3). Both formats
//! map their telephone entries to one [`Phone`] type: the raw value, a normalized URI
//! ([`PhoneUri`]), the flags ([`TelFlags`]) and where it came from ([`VcardSource`]).
//!
//! # Server quirks handled (Prosody 0.12 `mod_vcard_legacy`)
//! The bridge between vcard-temp and the vCard4 PEP node is lossy:
//! - vcard-temp → vCard4 keeps only HOME or WORK of a TEL (VOICE, VIDEO, CELL… are lost)
//!   and writes the NUMBER as `tel:<NUMBER>`, so `sip:x` becomes `tel:sip:x`. We normalize
//!   `tel:sip:x` to [`PhoneUri::Sip`]`("sip:x")` and keep the raw value.
//! - vCard4 → vcard-temp keeps only the first `type` (so `work`+`video` becomes WORK) and
//!   strips a leading `tel:` from the URI.
//! - it emits stray empty `<parameters/>` elements at the top level of the vCard4; they
//!   are kept as unknown elements.
//!
//! # Decisions
//! - Every TEL / `tel` is returned, in document order, also several of the same type.
//! - Flags and NUMBER may come in any order inside a TEL.
//! - A TEL with an empty or missing NUMBER is kept in the vCard model
//!   ([`temp::Tel::number`] is then `""`) so that nothing is lost on a set, but it is
//!   skipped by [`VcardTemp::phones`] / [`Vcard4::phones`]: a phone entry without a number
//!   cannot be called or matched. The skip is logged at debug level.

use std::fmt;

use jid::{BareJid, Jid};

use crate::stanza::pubsub;
use crate::stanza::{Iq, ParseError};
use crate::xml::element::{Element, Node};

pub mod temp;
pub mod v4;

pub use temp::{NS_VCARD_TEMP, VcardTemp};
pub use v4::{NODE_VCARD4, NS_VCARD4, Vcard4};

/// Most entries of one kind (TEL, EMAIL…) read from one vCard.
pub const MAX_ENTRIES: usize = 64;

/// Flags of a telephone entry: the vcard-temp TEL flags (XEP-0054) and the vCard4 `type`
/// values (RFC 6350 §6.4.1) mapped onto them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TelFlags(u16);

impl TelFlags {
    /// Home.
    pub const HOME: TelFlags = TelFlags(1 << 0);
    /// Work.
    pub const WORK: TelFlags = TelFlags(1 << 1);
    /// Voice.
    pub const VOICE: TelFlags = TelFlags(1 << 2);
    /// Fax.
    pub const FAX: TelFlags = TelFlags(1 << 3);
    /// Pager.
    pub const PAGER: TelFlags = TelFlags(1 << 4);
    /// Messaging (vCard4 `text`).
    pub const MSG: TelFlags = TelFlags(1 << 5);
    /// Mobile.
    pub const CELL: TelFlags = TelFlags(1 << 6);
    /// Video (RFC 7081 §3.1: the address can take video calls).
    pub const VIDEO: TelFlags = TelFlags(1 << 7);
    /// Bulletin board.
    pub const BBS: TelFlags = TelFlags(1 << 8);
    /// Modem.
    pub const MODEM: TelFlags = TelFlags(1 << 9);
    /// ISDN.
    pub const ISDN: TelFlags = TelFlags(1 << 10);
    /// Personal communication services.
    pub const PCS: TelFlags = TelFlags(1 << 11);
    /// Preferred (vCard4 `pref` parameter).
    pub const PREF: TelFlags = TelFlags(1 << 12);
    /// Text telephone (vCard4 `textphone` only).
    pub const TEXTPHONE: TelFlags = TelFlags(1 << 13);

    /// vcard-temp element names, in XEP-0054 schema order.
    pub const TEMP_NAMES: [(&'static str, TelFlags); 13] = [
        ("HOME", Self::HOME),
        ("WORK", Self::WORK),
        ("VOICE", Self::VOICE),
        ("FAX", Self::FAX),
        ("PAGER", Self::PAGER),
        ("MSG", Self::MSG),
        ("CELL", Self::CELL),
        ("VIDEO", Self::VIDEO),
        ("BBS", Self::BBS),
        ("MODEM", Self::MODEM),
        ("ISDN", Self::ISDN),
        ("PCS", Self::PCS),
        ("PREF", Self::PREF),
    ];

    /// vCard4 `type` values (RFC 6350 §6.4.1 plus `home`/`work`, §5.6).
    pub const V4_NAMES: [(&'static str, TelFlags); 9] = [
        ("home", Self::HOME),
        ("work", Self::WORK),
        ("voice", Self::VOICE),
        ("fax", Self::FAX),
        ("pager", Self::PAGER),
        ("text", Self::MSG),
        ("cell", Self::CELL),
        ("video", Self::VIDEO),
        ("textphone", Self::TEXTPHONE),
    ];

    /// No flag.
    pub const fn empty() -> Self {
        TelFlags(0)
    }

    /// Whether all flags of `other` are set.
    pub const fn contains(self, other: TelFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TelFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: TelFlags) {
        self.0 &= !other.0;
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flag of a vcard-temp element name (case-insensitive).
    pub fn from_temp_name(name: &str) -> Option<TelFlags> {
        Self::TEMP_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    /// The flag of a vCard4 `type` value (case-insensitive).
    pub fn from_v4_name(name: &str) -> Option<TelFlags> {
        Self::V4_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, f)| *f)
    }

    /// The vcard-temp names of the set flags (TEXTPHONE has none).
    pub fn temp_names(self) -> impl Iterator<Item = &'static str> {
        Self::TEMP_NAMES
            .into_iter()
            .filter(move |(_, f)| self.contains(*f))
            .map(|(n, _)| n)
    }

    /// The vCard4 `type` names of the set flags (PREF and the vcard-temp-only flags have none).
    pub fn v4_names(self) -> impl Iterator<Item = &'static str> {
        Self::V4_NAMES
            .into_iter()
            .filter(move |(_, f)| self.contains(*f))
            .map(|(n, _)| n)
    }
}

impl std::ops::BitOr for TelFlags {
    type Output = TelFlags;
    fn bitor(self, rhs: TelFlags) -> TelFlags {
        TelFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TelFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.temp_names().collect();
        if self.contains(TelFlags::TEXTPHONE) {
            names.push("TEXTPHONE");
        }
        write!(f, "TelFlags({})", names.join("|"))
    }
}

/// Which vCard format a [`Phone`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VcardSource {
    /// vcard-temp (XEP-0054).
    VcardTemp,
    /// vCard4 (XEP-0292).
    Vcard4,
}

/// A telephone value normalized to a URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PhoneUri {
    /// A SIP or SIPS URI, with its scheme (`sip:alice@cusax.test`). Also produced for
    /// `tel:sip:…` (Prosody's bridge) and for a bare `user@host`.
    Sip(String),
    /// A tel URI (RFC 3966) with visual separators removed: `tel:+493012345` for global
    /// numbers; local numbers (no `+`) have no known phone-context and are kept as
    /// `tel:<digits>` for the SIP layer to route (e.g. as `sip:<digits>@domain;user=phone`).
    Tel(String),
    /// Anything else (another scheme, or text that is no number), trimmed.
    Other(String),
}

impl PhoneUri {
    /// Normalizes a TEL NUMBER or `tel` URI/text.
    pub fn normalize(raw: &str) -> PhoneUri {
        let s = raw.trim();
        let mut rest = s;
        // `tel:sip:x`, possibly repeated by a bridge applied twice.
        while let Some(r) = strip_prefix_ci(rest, "tel:") {
            let r = r.trim_start();
            if strip_prefix_ci(r, "sip:").is_some()
                || strip_prefix_ci(r, "sips:").is_some()
                || strip_prefix_ci(r, "tel:").is_some()
            {
                rest = r;
            } else {
                break;
            }
        }
        if let Some(r) = strip_prefix_ci(rest, "sip:") {
            return PhoneUri::Sip(format!("sip:{r}"));
        }
        if let Some(r) = strip_prefix_ci(rest, "sips:") {
            return PhoneUri::Sip(format!("sips:{r}"));
        }
        if let Some(r) = strip_prefix_ci(rest, "tel:") {
            return match clean_number(r) {
                Some(n) => PhoneUri::Tel(format!("tel:{n}")),
                None => PhoneUri::Other(s.to_owned()),
            };
        }
        if let Some(n) = clean_number(rest) {
            return PhoneUri::Tel(format!("tel:{n}"));
        }
        let has_scheme = rest.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        if !has_scheme
            && let Some((user, host)) = rest.split_once('@')
            && !user.is_empty()
            && !host.is_empty()
            && !rest.chars().any(char::is_whitespace)
        {
            return PhoneUri::Sip(format!("sip:{rest}"));
        }
        PhoneUri::Other(s.to_owned())
    }

    /// The URI string.
    pub fn as_str(&self) -> &str {
        match self {
            PhoneUri::Sip(s) | PhoneUri::Tel(s) | PhoneUri::Other(s) => s,
        }
    }

    /// Whether a SIP user agent can call it (a SIP or tel URI).
    pub fn is_sip_callable(&self) -> bool {
        matches!(self, PhoneUri::Sip(_) | PhoneUri::Tel(_))
    }

    /// Whether this entry designates the same address as `uri` (a SIP caller's
    /// From/P-Asserted-Identity URI, or another vCard value), for matching an incoming
    /// call to a roster contact (RFC 7081 §3.5). SIP URIs compare user exactly and host
    /// case-insensitively, ignoring scheme (sip/sips), parameters and headers; tel numbers
    /// compare their digits; a SIP URI whose user part is a number (`user=phone` style)
    /// matches a tel with the same digits.
    pub fn matches(&self, uri: &str) -> bool {
        let other = PhoneUri::normalize(uri);
        match (self.key(), other.key()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Comparison key: `S:user@host` for SIP, `T:digits` for numbers.
    fn key(&self) -> Option<String> {
        match self {
            PhoneUri::Sip(s) => {
                let rest = strip_prefix_ci(s, "sip:").or_else(|| strip_prefix_ci(s, "sips:"))?;
                let rest = rest.split(['?', ';']).next().unwrap_or(rest);
                let (user, host) = rest.rsplit_once('@')?;
                let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
                match clean_number(user) {
                    Some(n) => Some(format!("T:{n}")),
                    None => Some(format!("S:{user}@{host}")),
                }
            }
            PhoneUri::Tel(t) => {
                let n = t.strip_prefix("tel:").unwrap_or(t);
                Some(format!("T:{}", n.split(';').next().unwrap_or(n)))
            }
            PhoneUri::Other(_) => None,
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// A phone number with RFC 3966 visual separators removed, parameters kept; None when it
/// is not a number.
fn clean_number(s: &str) -> Option<String> {
    let (num, params) = match s.split_once(';') {
        Some((n, p)) => (n, Some(p)),
        None => (s, None),
    };
    let num = num.trim();
    let mut out = String::with_capacity(num.len());
    let mut digits = 0usize;
    for (i, c) in num.chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            '0'..='9' => {
                digits += 1;
                out.push(c);
            }
            '*' | '#' | 'A'..='D' | 'a'..='d' => out.push(c.to_ascii_uppercase()),
            '-' | '.' | '(' | ')' | ' ' | '/' => {}
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    if let Some(p) = params {
        out.push(';');
        out.push_str(p.trim());
    }
    Some(out)
}

/// A telephone entry of a vCard, in either format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone {
    /// The value as found (trimmed of nothing).
    pub raw: String,
    /// The value normalized to a URI.
    pub normalized: PhoneUri,
    /// Flags (may be fewer than published: see the module docs on server quirks).
    pub flags: TelFlags,
    /// Which format it came from.
    pub source: VcardSource,
}

impl Phone {
    /// A phone from a raw value.
    pub fn new(raw: impl Into<String>, flags: TelFlags, source: VcardSource) -> Self {
        let raw = raw.into();
        Phone {
            normalized: PhoneUri::normalize(&raw),
            raw,
            flags,
            source,
        }
    }

    /// Whether the entry advertises video (RFC 7081 §3.3).
    pub fn has_video(&self) -> bool {
        self.flags.contains(TelFlags::VIDEO)
    }
}

/// Name components (vcard-temp `N`, vCard4 `n`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Name {
    /// Family name (`FAMILY` / `surname`).
    pub family: Option<String>,
    /// Given name.
    pub given: Option<String>,
    /// Middle names (`MIDDLE` / `additional`).
    pub middle: Option<String>,
    /// Prefix.
    pub prefix: Option<String>,
    /// Suffix.
    pub suffix: Option<String>,
}

impl Name {
    fn is_empty(&self) -> bool {
        self.family.is_none()
            && self.given.is_none()
            && self.middle.is_none()
            && self.prefix.is_none()
            && self.suffix.is_none()
    }
}

/// An e-mail address with its type names (`home`, `work`, `internet`, `pref`… lowercase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    /// The address.
    pub address: String,
    /// Type names, lowercase.
    pub types: Vec<String>,
}

/// The phones of a vCard's telephone entries, given as `(value, flags)` in document
/// order: entries whose value is empty are skipped (logged). Shared by vcard-temp `TEL`
/// and vCard4 `tel` so both formats yield the same [`Phone`]s.
pub(crate) fn phones_of<'a>(
    entries: impl Iterator<Item = (&'a str, TelFlags)>,
    source: VcardSource,
) -> Vec<Phone> {
    entries
        .filter(|(value, flags)| {
            let keep = !value.trim().is_empty();
            if !keep {
                tracing::debug!(
                    ?flags,
                    ?source,
                    "skipping a telephone entry without a value"
                );
            }
            keep
        })
        .map(|(value, flags)| Phone::new(value, flags, source))
        .collect()
}

/// The SIP-callable phones of `phones` (RFC 7081 §3.1 / §3.3): SIP URIs and tel numbers.
pub fn sip_addresses(phones: &[Phone]) -> Vec<Phone> {
    phones
        .iter()
        .filter(|p| p.normalized.is_sip_callable())
        .cloned()
        .collect()
}

/// Either vCard format, for callers that read whichever the server returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnyVcard {
    /// vcard-temp.
    Temp(VcardTemp),
    /// vCard4.
    V4(Vcard4),
}

impl AnyVcard {
    /// All phones with a number.
    pub fn phones(&self) -> Vec<Phone> {
        match self {
            AnyVcard::Temp(v) => v.phones(),
            AnyVcard::V4(v) => v.phones(),
        }
    }

    /// The SIP-callable phones.
    pub fn sip_addresses(&self) -> Vec<Phone> {
        sip_addresses(&self.phones())
    }

    /// The XMPP addresses listed (`JABBERID` / `impp` with `xmpp:`), for RFC 7081 §3.5
    /// matching.
    pub fn jids(&self) -> Vec<BareJid> {
        let raw: Vec<&str> = match self {
            AnyVcard::Temp(v) => v.jabber_ids.iter().map(String::as_str).collect(),
            AnyVcard::V4(v) => v.impps.iter().map(String::as_str).collect(),
        };
        raw.into_iter()
            .filter_map(|s| {
                let s = s.trim();
                let s = strip_prefix_ci(s, "xmpp:").unwrap_or(s);
                BareJid::new(s.split('?').next().unwrap_or(s)).ok()
            })
            .collect()
    }
}

/// Text of the first child `name` in `ns`, None when absent or empty.
pub(crate) fn child_text(e: &Element, name: &str, ns: &str) -> Option<String> {
    e.child(name, ns)
        .map(Element::text)
        .filter(|t| !t.trim().is_empty())
}

/// Replaces the children of `e` whose names are in `names` (namespace `ns`) with `new`,
/// inserting them where the first replaced child was (at the end when there was none).
pub(crate) fn replace_group(e: &mut Element, ns: &str, names: &[&str], new: Vec<Element>) {
    let is_member =
        |n: &Node| matches!(n, Node::Element(c) if c.ns == ns && names.contains(&c.name.as_str()));
    let pos = e
        .children
        .iter()
        .position(is_member)
        .unwrap_or(e.children.len());
    e.children.retain(|n| !is_member(n));
    let pos = pos.min(e.children.len());
    for (i, c) in new.into_iter().enumerate() {
        e.children.insert(pos + i, Node::Element(c));
    }
}

/// vcard-temp get for the own vCard (`to` = None) or a contact's (XEP-0054 §3.1 / §3.2).
pub fn temp_get(id: impl Into<String>, to: Option<BareJid>) -> Iq {
    Iq::get(id, to.map(Jid::from), Element::new("vCard", NS_VCARD_TEMP))
}

/// vcard-temp set of the own vCard (XEP-0054 §3.3).
pub fn temp_set(id: impl Into<String>, vcard: &VcardTemp) -> Iq {
    Iq::set(id, None, vcard.to_element())
}

/// vCard4 retrieval from `owner`'s PEP node `urn:xmpp:vcard4` (XEP-0292 §3.2).
pub fn v4_get(id: impl Into<String>, owner: Option<BareJid>) -> Iq {
    pubsub::items_get(id, owner, NODE_VCARD4, Some(1))
}

/// vCard4 publication to the own PEP node as item `current` (XEP-0292 §3.1; the item id
/// Prosody's bridge uses), with publish-options making the node readable by anyone
/// (`pubsub#access_model` = `open`, as Prosody's bridge configures it): a vCard is a
/// directory entry that a caller must be able to read before any subscription exists
/// (RFC 7081 §3.5).
pub fn v4_publish(id: impl Into<String>, vcard: &Vcard4) -> Iq {
    pubsub::publish_with_access(id, NODE_VCARD4, Some("current"), vcard.to_element(), "open")
}

/// Reads the vCard from the result of [`temp_get`]: `None` when the user has none (an
/// empty result or an empty `<vCard/>`).
pub fn temp_from_result(iq: &Iq) -> Result<Option<VcardTemp>, ParseError> {
    match &iq.payload {
        None => Ok(None),
        Some(p) => {
            let v = VcardTemp::from_element(p)?;
            Ok((!p.is_empty()).then_some(v))
        }
    }
}

/// Reads the vCard from the result of [`v4_get`]: the newest item's `<vcard/>`, `None`
/// when the node has no item.
pub fn v4_from_result(iq: &Iq) -> Result<Option<Vcard4>, ParseError> {
    let Some(p) = &iq.payload else {
        return Ok(None);
    };
    let items = pubsub::parse_items_result(p, NODE_VCARD4)?;
    match items.iter().rev().find_map(|i| i.payload.as_ref()) {
        Some(v) => Vcard4::from_element(v).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_yield_the_same_phones() {
        let temp = VcardTemp::from_element(&crate::stanza::test_parse(
            "<vCard xmlns='vcard-temp'><TEL><WORK/><VIDEO/><NUMBER>sip:bob@cusax.test</NUMBER></TEL>\
             <TEL><HOME/><NUMBER> </NUMBER></TEL><TEL><CELL/><VOICE/><NUMBER>+1 555 0100</NUMBER></TEL></vCard>",
        ))
        .expect("vcard-temp");
        let v4 = v4::Vcard4::from_element(&crate::stanza::test_parse(
            "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>\
             <tel><parameters><type><text>work</text><text>video</text></type></parameters><uri>sip:bob@cusax.test</uri></tel>\
             <tel><parameters><type><text>home</text></type></parameters><uri></uri></tel>\
             <tel><parameters><type><text>cell</text><text>voice</text></type></parameters><text>+1 555 0100</text></tel></vcard>",
        ))
        .expect("vcard4");
        let strip = |v: Vec<Phone>| -> Vec<(String, TelFlags)> {
            v.into_iter().map(|p| (p.raw, p.flags)).collect()
        };
        assert_eq!(strip(temp.phones()), strip(v4.phones()));
        assert_eq!(temp.phones().len(), 2, "the empty entry is skipped in both");
        assert_eq!(temp.sip_addresses().len(), v4.sip_addresses().len());
    }

    #[test]
    fn normalize() {
        use PhoneUri::*;
        for (raw, want) in [
            ("sip:alice@cusax.test", Sip("sip:alice@cusax.test".into())),
            (
                "  SIP:alice@cusax.test ",
                Sip("sip:alice@cusax.test".into()),
            ),
            ("sips:alice@cusax.test", Sip("sips:alice@cusax.test".into())),
            (
                "tel:sip:alice@cusax.test",
                Sip("sip:alice@cusax.test".into()),
            ),
            (
                "tel:tel:sip:alice@cusax.test",
                Sip("sip:alice@cusax.test".into()),
            ),
            ("tel:+1-303-555-1212", Tel("tel:+13035551212".into())),
            ("+49 (30) 123 456", Tel("tel:+4930123456".into())),
            ("030/123.456", Tel("tel:030123456".into())),
            (
                "tel:7042;phone-context=example.com",
                Tel("tel:7042;phone-context=example.com".into()),
            ),
            ("alice@cusax.test", Sip("sip:alice@cusax.test".into())),
            (
                "xmpp:alice@cusax.test",
                Other("xmpp:alice@cusax.test".into()),
            ),
            ("tel:call me", Other("tel:call me".into())),
            ("ask the desk", Other("ask the desk".into())),
            ("", Other(String::new())),
            ("tel:", Other("tel:".into())),
            ("+", Other("+".into())),
        ] {
            assert_eq!(PhoneUri::normalize(raw), want, "{raw}");
        }
        assert!(PhoneUri::normalize("tel:+1").is_sip_callable());
        assert!(!PhoneUri::normalize("mailto:a@b").is_sip_callable());
        // Multi-byte input never panics.
        assert!(matches!(PhoneUri::normalize("té"), Other(_)));
        assert!(matches!(PhoneUri::normalize("tél:1"), Other(_)));
    }

    #[test]
    fn matching() {
        let sip = PhoneUri::normalize("tel:sip:alice@cusax.test");
        assert!(sip.matches("sip:alice@CUSAX.test"));
        assert!(sip.matches("sips:alice@cusax.test;transport=tls"));
        assert!(sip.matches("<sip:alice@cusax.test:5061?subject=x>".trim_matches(['<', '>'])));
        assert!(
            !sip.matches("sip:Alice@cusax.test"),
            "the user part is case-sensitive"
        );
        assert!(!sip.matches("sip:bob@cusax.test"));
        let tel = PhoneUri::normalize("+49 30 1234567");
        assert!(tel.matches("tel:+49-30-1234567"));
        assert!(tel.matches("sip:+49301234567@cusax.test;user=phone"));
        assert!(!tel.matches("tel:+49301234568"));
        assert!(!PhoneUri::normalize("mailto:x@y").matches("mailto:x@y"));
        assert!(!sip.matches("garbage"));
    }

    #[test]
    fn flags() {
        let f = TelFlags::WORK | TelFlags::VIDEO;
        assert!(f.contains(TelFlags::VIDEO));
        assert!(!f.contains(TelFlags::HOME));
        assert_eq!(f.temp_names().collect::<Vec<_>>(), vec!["WORK", "VIDEO"]);
        assert_eq!(f.v4_names().collect::<Vec<_>>(), vec!["work", "video"]);
        assert_eq!(TelFlags::from_temp_name("pcs"), Some(TelFlags::PCS));
        assert_eq!(TelFlags::from_v4_name(" TEXT "), Some(TelFlags::MSG));
        assert_eq!(TelFlags::from_v4_name("x-foo"), None);
        assert_eq!(format!("{f:?}"), "TelFlags(WORK|VIDEO)");
        let mut g = f;
        g.remove(TelFlags::WORK);
        assert_eq!(g, TelFlags::VIDEO);
        assert!(TelFlags::empty().is_empty());
        assert_eq!(TelFlags::TEMP_NAMES.len(), 13);
    }

    #[test]
    fn replace_group_keeps_position() {
        let ns = NS_VCARD_TEMP;
        let mut e = Element::new("vCard", ns)
            .with_child(Element::new("FN", ns))
            .with_child(Element::new("TEL", ns))
            .with_child(Element::new("X-FOO", ns))
            .with_child(Element::new("TEL", ns));
        replace_group(
            &mut e,
            ns,
            &["TEL"],
            vec![Element::new("TEL", ns).with_text("1")],
        );
        let names: Vec<&str> = e.elements().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["FN", "TEL", "X-FOO"]);
        replace_group(&mut e, ns, &["EMAIL"], vec![Element::new("EMAIL", ns)]);
        assert_eq!(e.elements().last().map(|c| c.name.as_str()), Some("EMAIL"));
    }
}
