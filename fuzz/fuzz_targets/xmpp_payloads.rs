#![no_main]
//! Arbitrary bytes after a fixed `<stream:stream>` header into the restricted XMPP stream
//! parser (cusax_xmpp::xml::parser); every depth-1 element that comes out, and each of its
//! descendants, goes through every typed payload parser (stanzas, roster, presence and caps,
//! vcard-temp and vCard4, disco, data forms, MUC, reachability, stanza errors) and the state
//! machines that consume them (roster, presence tracker, MUC room).
//!
//! Checks: no panic; every value that parsed and can be written back is written, serialized,
//! parsed again by the stream parser and by its typed parser (it must parse again), and
//! writing that second value gives the same XML (nothing changes or gets lost on a second
//! round).
use std::fmt::Display;

use cusax_xmpp::disco::{DiscoInfo, DiscoItems};
use cusax_xmpp::forms::DataForm;
use cusax_xmpp::muc::{self, Invite, MucRoom, MucUser, RoomInfo};
use cusax_xmpp::presence::{Caps, PresenceLimits, PresenceTracker};
use cusax_xmpp::sasl;
use cusax_xmpp::reach::Reach;
use cusax_xmpp::roster::{self, Roster, RosterItem, RosterQuery};
use cusax_xmpp::stanza::{Iq, Message, Presence, Stanza, StanzaError};
use cusax_xmpp::vcard::{self, Vcard4, VcardTemp};
use cusax_xmpp::xml::element::Element;
use cusax_xmpp::xml::parser::{StreamParser, XmlEvent, XmlLimits};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

/// Limits for the fuzzed input: small, so that the fuzzer spends its time in the payloads.
fn input_limits() -> XmlLimits {
    XmlLimits {
        max_stanza_size: 16 * 1024,
        max_depth: 16,
        max_attributes: 16,
        max_buffered: 32 * 1024,
    }
}

/// Limits for re-parsing what we wrote: escaping may grow the text (`'` becomes `&apos;`)
/// and children may gain an `xmlns` attribute, so these are generous.
fn reparse_limits() -> XmlLimits {
    XmlLimits {
        max_stanza_size: 1024 * 1024,
        max_depth: 32,
        max_attributes: 64,
        max_buffered: 1024 * 1024,
    }
}

/// Depth-1 elements of `HEADER + body`, up to the first error or the end of input.
fn stanzas(body: &[u8], limits: XmlLimits) -> (Vec<Element>, Option<String>) {
    let mut p = StreamParser::new(limits);
    p.feed(HEADER);
    p.feed(body);
    let mut out = Vec::new();
    loop {
        match p.next_event() {
            Ok(Some(XmlEvent::Stanza(e))) => out.push(e),
            Ok(Some(_)) => {}
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

/// Writes `value` with `write`, serializes it, parses it back through the stream parser and
/// `parse`; the result must parse and must serialize to the same XML again.
fn round_trip<T, E: Display>(
    what: &str,
    value: &T,
    write: impl Fn(&T) -> Element,
    parse: impl Fn(&Element) -> Result<T, E>,
) {
    let xml = write(value).to_xml();
    let (mut back, err) = stanzas(xml.as_bytes(), reparse_limits());
    assert!(
        err.is_none() && back.len() == 1,
        "{what}: written XML does not parse again ({err:?}, {} elements): {xml}",
        back.len()
    );
    let again = match parse(&back.remove(0)) {
        Ok(v) => v,
        Err(e) => panic!("{what}: written form is rejected by its parser ({e}): {xml}"),
    };
    let xml2 = write(&again).to_xml();
    assert_eq!(xml, xml2, "{what}: changed on a second write/parse round");
}

/// Every typed parser on `e` and (up to `depth` 8) its descendants.
fn exercise(e: &Element, depth: usize) {
    if let Ok(s) = Stanza::try_from(e.clone()) {
        round_trip(
            "Stanza",
            &s,
            |s| Element::from(s.clone()),
            |e| Stanza::try_from(e.clone()),
        );
    }
    if let Ok(m) = Message::try_from(e.clone()) {
        round_trip(
            "Message",
            &m,
            |m| Element::from(m.clone()),
            |e| Message::try_from(e.clone()),
        );
        let _ = (m.body(), m.subject());
        if let Some(r) = m.receipt_reply() {
            round_trip(
                "receipt reply",
                &r,
                |m| Element::from(m.clone()),
                |e| Message::try_from(e.clone()),
            );
        }
        if let Some(from) = &m.from {
            let mut room = MucRoom::new(from.to_bare(), "alice");
            let _ = room.handle_message(&m);
        }
        let _ = Reach::from_pep_event(&m);
        let _ = Invite::from_message(&m);
    }
    if let Ok(p) = Presence::try_from(e.clone()) {
        round_trip(
            "Presence",
            &p,
            |p| Element::from(p.clone()),
            |e| Presence::try_from(e.clone()),
        );
        let _ = p.status();
        let mut t = PresenceTracker::new();
        let _ = t.handle(&p);
        // A tracker at its limits: one slot, so every new JID or resource evicts or is refused.
        let mut small = PresenceTracker::with_limits(PresenceLimits {
            max_jids: 1,
            max_resources_per_jid: 1,
            max_resources: 1,
        });
        let _ = small.handle(&p);
        let _ = small.handle(&p);
        if let Some(from) = &p.from {
            let bare = from.to_bare();
            let _ = t.best(&bare);
            let _ = t.reach(&bare);
            let mut room = MucRoom::new(bare, "alice");
            let _ = room.handle_presence(&p);
        }
    }
    if let Ok(iq) = Iq::try_from(e.clone()) {
        round_trip(
            "Iq",
            &iq,
            |i| Element::from(i.clone()),
            |e| Iq::try_from(e.clone()),
        );
        let mut r = Roster::new();
        let _ = r.apply_result(&iq);
        if let Some(to) = &iq.to
            && let Ok(push) = roster::parse_push(&iq, &to.to_bare())
        {
            let _ = r.apply_push(push);
        }
        if let Ok(Some(v)) = vcard::temp_from_result(&iq) {
            let _ = (v.phones(), v.sip_addresses());
        }
        if let Ok(Some(v)) = vcard::v4_from_result(&iq) {
            let _ = (v.phones(), v.sip_addresses());
        }
        let _ = muc::parse_admin_list(&iq);
        if let Ok(form) = muc::parse_config_form(&iq) {
            round_trip("muc#owner form", &form, DataForm::to_element, DataForm::from_element);
        }
    }
    if let Ok(v) = RosterQuery::from_element(e) {
        round_trip(
            "RosterQuery",
            &v,
            RosterQuery::to_element,
            RosterQuery::from_element,
        );
    }
    if let Ok(v) = RosterItem::from_element(e) {
        round_trip(
            "RosterItem",
            &v,
            RosterItem::to_element,
            RosterItem::from_element,
        );
    }
    if let Ok(v) = VcardTemp::from_element(e) {
        let _ = (v.phones(), v.sip_addresses());
        round_trip(
            "VcardTemp",
            &v,
            VcardTemp::to_element,
            VcardTemp::from_element,
        );
    }
    if let Ok(v) = Vcard4::from_element(e) {
        let _ = (v.phones(), v.sip_addresses());
        round_trip("Vcard4", &v, Vcard4::to_element, Vcard4::from_element);
    }
    if let Ok(v) = DataForm::from_element(e) {
        round_trip("DataForm", &v, DataForm::to_element, DataForm::from_element);
    }
    if let Ok(v) = DiscoInfo::from_element(e) {
        let _ = RoomInfo::from_disco(&v);
        let _ = Caps::for_info("https://cusax", &v);
        round_trip(
            "DiscoInfo",
            &v,
            DiscoInfo::to_element,
            DiscoInfo::from_element,
        );
    }
    if let Ok(v) = DiscoItems::from_element(e) {
        round_trip(
            "DiscoItems",
            &v,
            DiscoItems::to_element,
            DiscoItems::from_element,
        );
    }
    if let Ok(v) = MucUser::from_element(e) {
        round_trip("MucUser", &v, MucUser::to_element, MucUser::from_element);
    }
    if let Ok(v) = Reach::from_element(e) {
        round_trip("Reach", &v, Reach::to_element, Reach::from_element);
    }
    if let Ok(v) = Caps::from_element(e) {
        round_trip("Caps", &v, Caps::to_element, Caps::from_element);
    }
    if let Ok(v) = StanzaError::from_element(e) {
        let ns = e.ns.clone();
        round_trip(
            "StanzaError",
            &v,
            |v| v.to_element(&ns),
            StanzaError::from_element,
        );
    }
    if depth < 8 {
        for c in e.elements() {
            exercise(c, depth + 1);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // The raw input is also a candidate DER certificate for tls-server-end-point (RFC 5929).
    let _ = sasl::end_point_hash(input);
    let (elements, _err) = stanzas(input, input_limits());
    for e in &elements {
        exercise(e, 0);
    }
});
