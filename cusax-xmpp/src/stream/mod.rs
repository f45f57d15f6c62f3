//! Stream negotiation (RFC 6120 §4–§7): stream headers, features, STARTTLS, resource binding.
//!
//! Pure helpers used by [`crate::session::Session`]: building the stream header and the
//! negotiation nonzas, and reading `<stream:features/>` and `<stream:error/>`.

use crate::xml::element::{Element, escape_attr};
use crate::xml::parser::NS_STREAMS;

/// STARTTLS namespace (RFC 6120 §5.4).
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL namespace (RFC 6120 §6.4).
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding namespace (RFC 6120 §7).
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Legacy session establishment (RFC 3921 §3; draft-cridland-xmpp-session).
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Stream error conditions (RFC 6120 §4.9.3).
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions (RFC 6120 §8.3).
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0198 stream management.
pub const NS_SM: &str = "urn:xmpp:sm:3";
/// XEP-0199 ping.
pub const NS_PING: &str = "urn:xmpp:ping";
/// XEP-0440 SASL channel-binding type capability.
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";

/// The initial stream header a client sends (RFC 6120 §4.7, §4.8). `from` should be the
/// bare JID once the stream is encrypted (§4.7.1).
pub fn stream_header(to: &str, from: Option<&str>) -> String {
    let mut s = String::with_capacity(200);
    s.push_str("<?xml version='1.0'?><stream:stream to='");
    s.push_str(&escape_attr(to));
    s.push('\'');
    if let Some(f) = from {
        s.push_str(" from='");
        s.push_str(&escape_attr(f));
        s.push('\'');
    }
    s.push_str(
        " version='1.0' xml:lang='en' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    s
}

/// The closing tag of the stream (RFC 6120 §4.4).
pub const STREAM_CLOSE: &str = "</stream:stream>";

/// A stream error to send (RFC 6120 §4.9): error element and closing tag.
pub fn stream_error_xml(condition: &str) -> String {
    format!("<stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/></stream:error>{STREAM_CLOSE}")
}

/// What the server offered in `<stream:features/>` (RFC 6120 §4.3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    /// STARTTLS offered; `Some(true)` when marked `<required/>`.
    pub starttls: Option<bool>,
    /// SASL mechanism names offered.
    pub mechanisms: Vec<String>,
    /// XEP-0440 channel-binding types the server supports.
    pub channel_bindings: Vec<String>,
    /// Resource binding offered.
    pub bind: bool,
    /// Legacy session establishment offered; `Some(true)` when marked `<optional/>`.
    pub session_optional: Option<bool>,
    /// XEP-0198 offered.
    pub sm: bool,
}

impl Features {
    /// Reads a `<stream:features/>` element; `None` if `el` is something else.
    pub fn parse(el: &Element) -> Option<Features> {
        if !el.is("features", NS_STREAMS) {
            return None;
        }
        let mut f = Features::default();
        if let Some(tls) = el.child("starttls", NS_TLS) {
            f.starttls = Some(tls.child("required", NS_TLS).is_some());
        }
        if let Some(m) = el.child("mechanisms", NS_SASL) {
            f.mechanisms = m
                .children_named("mechanism", NS_SASL)
                .map(|m| m.text().trim().to_owned())
                .collect();
        }
        if let Some(cb) = el.child("sasl-channel-binding", NS_SASL_CB) {
            f.channel_bindings = cb
                .children_named("channel-binding", NS_SASL_CB)
                .filter_map(|c| c.attr("type").map(str::to_owned))
                .collect();
        }
        f.bind = el.child("bind", NS_BIND).is_some();
        if let Some(s) = el.child("session", NS_SESSION) {
            f.session_optional = Some(s.child("optional", NS_SESSION).is_some());
        }
        f.sm = el.child("sm", NS_SM).is_some();
        Some(f)
    }
}

/// A `<stream:error/>` from the server (RFC 6120 §4.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamErrorInfo {
    /// The defined condition (`host-unknown`, `conflict`, …).
    pub condition: String,
    /// The optional descriptive text.
    pub text: Option<String>,
}

impl StreamErrorInfo {
    /// Reads a `<stream:error/>`; `None` if `el` is something else.
    pub fn parse(el: &Element) -> Option<StreamErrorInfo> {
        if !el.is("error", NS_STREAMS) {
            return None;
        }
        let condition = el
            .elements()
            .find(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "undefined-condition".to_owned());
        let text = el
            .child("text", NS_STREAM_ERRORS)
            .map(|t| t.text())
            .filter(|t| !t.is_empty());
        Some(StreamErrorInfo { condition, text })
    }
}

/// The defined condition of a SASL `<failure/>` (RFC 6120 §6.5) and its text.
pub fn sasl_failure(el: &Element) -> (String, Option<String>) {
    let condition = el
        .elements()
        .find(|c| c.ns == NS_SASL && c.name != "text")
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "not-authorized".to_owned());
    let text = el
        .child("text", NS_SASL)
        .map(|t| t.text())
        .filter(|t| !t.is_empty());
    (condition, text)
}

/// The resource-binding request (RFC 6120 §7.6).
pub fn bind_request(id: &str, resource: Option<&str>) -> Element {
    let mut bind = Element::new("bind", NS_BIND);
    if let Some(r) = resource {
        bind.push_child(Element::new("resource", NS_BIND).with_text(r));
    }
    Element::new("iq", crate::xml::parser::NS_CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_child(bind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parser::{StreamParser, XmlEvent, XmlLimits};

    fn stanzas(s: &str) -> Vec<Element> {
        let mut p = StreamParser::new(XmlLimits::default());
        p.feed(stream_header("cusax.test", None).as_bytes());
        p.feed(s.as_bytes());
        let mut v = Vec::new();
        while let Some(e) = p.next_event().unwrap() {
            if let XmlEvent::Stanza(el) = e {
                v.push(el);
            }
        }
        v
    }

    #[test]
    fn features_and_errors() {
        let f = stanzas(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
             <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
             <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>\
             <sm xmlns='urn:xmpp:sm:3'/></stream:features>\
             <stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no</text></stream:error>",
        );
        let feat = Features::parse(&f[0]).unwrap();
        assert_eq!(feat.mechanisms, ["SCRAM-SHA-1", "PLAIN"]);
        assert!(feat.bind && feat.sm);
        assert_eq!(feat.session_optional, Some(true));
        assert_eq!(feat.starttls, None);
        let e = StreamErrorInfo::parse(&f[1]).unwrap();
        assert_eq!(e.condition, "host-unknown");
        assert_eq!(e.text.as_deref(), Some("no"));
        assert!(Features::parse(&f[1]).is_none());
        let x = stanzas(&bind_request("b1", Some("r&1")).to_xml());
        assert_eq!(
            x[0].child("bind", NS_BIND)
                .and_then(|b| b.child("resource", NS_BIND))
                .map(|r| r.text()),
            Some("r&1".to_owned())
        );
    }
}
