//! Stanza errors (RFC 6120 §8.3).

use jid::Jid;

use super::{ParseError, parse_jid_attr};
use crate::xml::element::Element;

/// Namespace of the defined stanza error conditions (RFC 6120 §8.3.3).
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// The `type` attribute of `<error/>` (RFC 6120 §8.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry (the error cannot be remedied).
    Cancel,
    /// Proceed (the condition was only a warning).
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting (the error is temporary).
    Wait,
}

impl ErrorType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auth" => ErrorType::Auth,
            "cancel" => ErrorType::Cancel,
            "continue" => ErrorType::Continue,
            "modify" => ErrorType::Modify,
            "wait" => ErrorType::Wait,
            _ => return None,
        })
    }
}

macro_rules! conditions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A defined stanza error condition (RFC 6120 §8.3.3).
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Condition {
            $(
                #[doc = concat!("`<", $name, "/>`")]
                $variant,
            )*
            /// A condition element this library does not know (kept by name).
            Other(String),
        }

        impl Condition {
            /// The element name of the condition.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Condition::$variant => $name,)*
                    Condition::Other(s) => s,
                }
            }

            /// The condition named `s` (unknown names become [`Condition::Other`]).
            pub fn from_name(s: &str) -> Self {
                match s {
                    $($name => Condition::$variant,)*
                    other => Condition::Other(other.to_owned()),
                }
            }
        }
    };
}

conditions! {
    BadRequest => "bad-request",
    Conflict => "conflict",
    FeatureNotImplemented => "feature-not-implemented",
    Forbidden => "forbidden",
    Gone => "gone",
    InternalServerError => "internal-server-error",
    ItemNotFound => "item-not-found",
    JidMalformed => "jid-malformed",
    NotAcceptable => "not-acceptable",
    NotAllowed => "not-allowed",
    NotAuthorized => "not-authorized",
    PolicyViolation => "policy-violation",
    RecipientUnavailable => "recipient-unavailable",
    Redirect => "redirect",
    RegistrationRequired => "registration-required",
    RemoteServerNotFound => "remote-server-not-found",
    RemoteServerTimeout => "remote-server-timeout",
    ResourceConstraint => "resource-constraint",
    ServiceUnavailable => "service-unavailable",
    SubscriptionRequired => "subscription-required",
    UndefinedCondition => "undefined-condition",
    UnexpectedRequest => "unexpected-request",
}

/// An `<error/>` child of a stanza of type `error` (RFC 6120 §8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaError {
    /// The `type` attribute.
    pub kind: ErrorType,
    /// The defined condition.
    pub condition: Condition,
    /// Character data of the condition element (the new address for `<gone/>` and
    /// `<redirect/>`, RFC 6120 §8.3.3.5 / §8.3.3.14).
    pub condition_text: Option<String>,
    /// The `<text/>` element, if any.
    pub text: Option<String>,
    /// `xml:lang` of `<text/>`.
    pub text_lang: Option<String>,
    /// The `by` attribute: the entity that generated the error.
    pub by: Option<Jid>,
    /// An application-specific condition element.
    pub app_specific: Option<Element>,
}

impl StanzaError {
    /// A new error of `kind` with `condition` and no text.
    pub fn new(kind: ErrorType, condition: Condition) -> Self {
        StanzaError {
            kind,
            condition,
            condition_text: None,
            text: None,
            text_lang: None,
            by: None,
            app_specific: None,
        }
    }

    /// Builder: adds a human-readable `<text/>`.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Parses an `<error/>` element whose namespace is `stanza_ns` (the stanza's own).
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        if e.name != "error" {
            return Err(ParseError::wrong("error", &e.ns, e));
        }
        let kind_s = e.attr("type").ok_or(ParseError::MissingAttr {
            element: "error",
            attr: "type",
        })?;
        let kind = ErrorType::parse(kind_s).ok_or_else(|| ParseError::InvalidAttr {
            element: "error",
            attr: "type",
            value: kind_s.to_owned(),
        })?;
        let by = parse_jid_attr(e, "error", "by")?;
        let mut condition = None;
        let mut condition_text = None;
        let mut text = None;
        let mut text_lang = None;
        let mut app_specific = None;
        for c in e.elements() {
            if c.ns == NS_STANZAS {
                if c.name == "text" {
                    text = Some(c.text());
                    text_lang = c.attr("xml:lang").map(str::to_owned);
                } else if condition.is_none() {
                    condition = Some(Condition::from_name(&c.name));
                    let t = c.text();
                    condition_text = (!t.is_empty()).then_some(t);
                }
            } else if app_specific.is_none() {
                app_specific = Some(c.clone());
            }
        }
        let condition = condition.ok_or(ParseError::MissingChild {
            element: "error",
            child: "defined condition",
        })?;
        Ok(StanzaError {
            kind,
            condition,
            condition_text,
            text,
            text_lang,
            by,
            app_specific,
        })
    }

    /// Builds the `<error/>` element in namespace `stanza_ns` (`jabber:client`).
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut e = Element::new("error", stanza_ns).with_attr("type", self.kind.as_str());
        if let Some(by) = &self.by {
            e.set_attr("by", by.as_str());
        }
        let mut cond = Element::new(self.condition.as_str(), NS_STANZAS);
        if let Some(t) = &self.condition_text {
            cond.push_text(t.clone());
        }
        e.push_child(cond);
        if let Some(t) = &self.text {
            let mut te = Element::new("text", NS_STANZAS).with_text(t.clone());
            if let Some(l) = &self.text_lang {
                te.set_attr("xml:lang", l.clone());
            }
            e.push_child(te);
        }
        if let Some(a) = &self.app_specific {
            e.push_child(a.clone());
        }
        e
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.condition.as_str(), self.kind.as_str())?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::test_parse;

    #[test]
    fn parse_full() {
        let e = test_parse(
            "<error xmlns='jabber:client' type='cancel' by='example.net'>\
             <gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:new@example.net</gone>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>moved</text>\
             <too-many xmlns='http://jabber.org/protocol/x'/></error>",
        );
        let err = StanzaError::from_element(&e).expect("valid");
        assert_eq!(err.kind, ErrorType::Cancel);
        assert_eq!(err.condition, Condition::Gone);
        assert_eq!(err.condition_text.as_deref(), Some("xmpp:new@example.net"));
        assert_eq!(err.text.as_deref(), Some("moved"));
        assert_eq!(err.text_lang.as_deref(), Some("en"));
        assert_eq!(err.by.as_ref().map(|j| j.as_str()), Some("example.net"));
        assert!(
            err.app_specific
                .as_ref()
                .is_some_and(|a| a.name == "too-many")
        );
        let back = StanzaError::from_element(&err.to_element("jabber:client")).expect("rt");
        assert_eq!(back, err);
        assert_eq!(err.to_string(), "gone (cancel): moved");
    }

    #[test]
    fn unknown_condition_kept() {
        let e = test_parse(
            "<error xmlns='jabber:client' type='wait'><x-new xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
        );
        let err = StanzaError::from_element(&e).expect("valid");
        assert_eq!(err.condition, Condition::Other("x-new".into()));
        assert_eq!(
            Condition::from_name("item-not-found"),
            Condition::ItemNotFound
        );
        assert_eq!(
            Condition::ServiceUnavailable.as_str(),
            "service-unavailable"
        );
    }

    #[test]
    fn invalid() {
        for (xml, want) in [
            (
                "<error xmlns='jabber:client'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
                "type",
            ),
            (
                "<error xmlns='jabber:client' type='oops'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
                "oops",
            ),
            (
                "<error xmlns='jabber:client' type='modify'/>",
                "defined condition",
            ),
            (
                "<error xmlns='jabber:client' type='modify' by='@@'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
                "by",
            ),
            ("<nope xmlns='jabber:client'/>", "nope"),
        ] {
            let err = StanzaError::from_element(&test_parse(xml)).expect_err(xml);
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
    }
}
