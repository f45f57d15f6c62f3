//! XEP-0198 stream management: acks, resumption, serialisable state.
//!
//! [`StreamManagement`] counts handled inbound stanzas (XEP-0198 §4, the `h` we report in
//! `<a/>`), keeps every outbound stanza until the server acknowledges it, and produces the
//! `<resume/>` request from a saved [`SmState`]. Counters are 32-bit and wrap (§4).
//! A stanza is dropped from the unacked queue only when an `<a h/>` or `<resumed h/>`
//! acknowledges it, so nothing is silently lost: on `<failed/>` or a final close the
//! session reports what remains as undelivered.

use std::collections::VecDeque;

use crate::stream::NS_SM;
use crate::xml::element::Element;
use crate::xml::parser::{NS_CLIENT, StreamParser, XmlEvent, XmlLimits};

/// Whether `el` counts as a stanza for XEP-0198 (message, presence, iq: RFC 6120 §8).
pub fn is_stanza(el: &Element) -> bool {
    el.ns == NS_CLIENT && matches!(el.name.as_str(), "message" | "presence" | "iq")
}

/// The server broke XEP-0198's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmError {
    /// Peer misbehaved: acknowledged more stanzas than were sent (XEP-0198 §4).
    #[error("server acknowledged {h} stanzas but only {sent} were sent")]
    AckTooHigh {
        /// The server's `h`.
        h: u32,
        /// How many we sent.
        sent: u32,
    },
    /// Peer misbehaved: `h` missing or not a number.
    #[error("server sent a stream-management element without a valid h")]
    BadH,
    /// Peer misbehaved: the server left this many stanzas unacknowledged although we kept
    /// requesting acks (past twice [`SmLimits::max_unacked`], counting stanzas the session
    /// sends on its own, e.g. answers to the server's pings).
    #[error("server has not acknowledged {unacked} stanzas despite our requests")]
    NotAcknowledging {
        /// Stanzas waiting for an ack.
        unacked: usize,
    },
}

/// Bounds on the unacked queue (XEP-0198 §4 leaves the queue size to the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmLimits {
    /// Each time this many stanzas wait for an ack, another `<r/>` is sent even though one
    /// is already outstanding (a lost or ignored request must not stall the queue).
    pub request_ack_at: usize,
    /// At this many unacked stanzas the queue is full: the application's sends are
    /// refused with back-pressure (the stanza is handed back) until the server acks.
    pub max_unacked: usize,
}

impl Default for SmLimits {
    /// 64 / 1024.
    fn default() -> Self {
        SmLimits {
            request_ack_at: 64,
            max_unacked: 1024,
        }
    }
}

/// What a client needs to resume a stream after a reconnect (XEP-0198 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmState {
    /// The stream id from `<enabled id/>`.
    pub id: String,
    /// The full JID the stream was bound to.
    pub jid: String,
    /// The server's preferred reconnect location, if any (`<enabled location/>`).
    pub location: Option<String>,
    /// Inbound stanzas handled so far (our `h`).
    pub inbound: u32,
    /// Outbound stanzas the server has acknowledged so far (its last `h`).
    pub acked: u32,
    /// Outbound stanzas not yet acknowledged, oldest first (plus any queued ones not sent).
    pub unacked: Vec<Element>,
    /// Our iq requests still awaiting answers, as `(id, to)`: their answers may arrive on
    /// the resumed stream (RFC 6120 §8.1.2.1 matching continues there).
    pub pending_iqs: Vec<(String, Option<String>)>,
}

/// The state string is not one `SmState::to_string()` (its `Display`) produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream-management state: {0}")]
pub struct SmStateParseError(&'static str);

impl std::fmt::Display for SmState {
    /// A line-based text format: header, key=value lines, then each stanza as
    /// `stanza <byte length>` followed by its XML on the next line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "cusax-sm 1")?;
        writeln!(f, "id={}", escape_line(&self.id))?;
        writeln!(f, "jid={}", escape_line(&self.jid))?;
        if let Some(l) = &self.location {
            writeln!(f, "location={}", escape_line(l))?;
        }
        writeln!(f, "inbound={}", self.inbound)?;
        writeln!(f, "acked={}", self.acked)?;
        for (id, to) in &self.pending_iqs {
            // A tab cannot occur in a JID (RFC 7622 forbids control characters).
            writeln!(
                f,
                "iq={}\t{}",
                escape_line(to.as_deref().unwrap_or("")),
                escape_line(id)
            )?;
        }
        for s in &self.unacked {
            let xml = s.to_xml();
            writeln!(f, "stanza {}", xml.len())?;
            writeln!(f, "{xml}")?;
        }
        Ok(())
    }
}

fn escape_line(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl std::str::FromStr for SmState {
    type Err = SmStateParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rest = s
            .strip_prefix("cusax-sm 1\n")
            .ok_or(SmStateParseError("missing header"))?;
        let mut st = SmState {
            id: String::new(),
            jid: String::new(),
            location: None,
            inbound: 0,
            acked: 0,
            unacked: Vec::new(),
            pending_iqs: Vec::new(),
        };
        while !rest.is_empty() {
            let (line, tail) = rest
                .split_once('\n')
                .ok_or(SmStateParseError("unterminated line"))?;
            rest = tail;
            if let Some(len) = line.strip_prefix("stanza ") {
                let len: usize = len.parse().map_err(|_| SmStateParseError("bad length"))?;
                let xml = rest
                    .get(..len)
                    .ok_or(SmStateParseError("truncated stanza"))?;
                rest = rest
                    .get(len..)
                    .and_then(|r| r.strip_prefix('\n'))
                    .ok_or(SmStateParseError("truncated stanza"))?;
                st.unacked.push(parse_one(xml)?);
            } else if let Some((k, v)) = line.split_once('=') {
                match k {
                    "id" => st.id = unescape_line(v),
                    "jid" => st.jid = unescape_line(v),
                    "location" => st.location = Some(unescape_line(v)),
                    "inbound" => {
                        st.inbound = v.parse().map_err(|_| SmStateParseError("bad inbound"))?
                    }
                    "acked" => st.acked = v.parse().map_err(|_| SmStateParseError("bad acked"))?,
                    "iq" => {
                        let (to, id) = v.split_once('\t').ok_or(SmStateParseError("bad iq"))?;
                        let to = (!to.is_empty()).then(|| unescape_line(to));
                        st.pending_iqs.push((unescape_line(id), to));
                    }
                    _ => return Err(SmStateParseError("unknown key")),
                }
            } else {
                return Err(SmStateParseError("bad line"));
            }
        }
        if st.id.is_empty() {
            return Err(SmStateParseError("missing id"));
        }
        Ok(st)
    }
}

fn parse_one(xml: &str) -> Result<Element, SmStateParseError> {
    let mut p = StreamParser::new(XmlLimits::default());
    p.feed(crate::stream::stream_header("x", None).as_bytes());
    p.feed(xml.as_bytes());
    loop {
        match p.next_event() {
            Ok(Some(XmlEvent::Stanza(el))) => return Ok(el),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(SmStateParseError("bad stanza XML")),
        }
    }
}

/// Live XEP-0198 bookkeeping for one session.
#[derive(Clone, Debug, Default)]
pub struct StreamManagement {
    enabled: bool,
    id: Option<String>,
    location: Option<String>,
    inbound: u32,
    acked: u32,
    unacked: VecDeque<Element>,
    ack_requested: bool,
    limits: SmLimits,
}

impl StreamManagement {
    /// Fresh, disabled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the queue bounds (kept across [`on_failed`](Self::on_failed) resets).
    pub fn set_limits(&mut self, limits: SmLimits) {
        self.limits = SmLimits {
            request_ack_at: limits.request_ack_at.max(1),
            max_unacked: limits.max_unacked.max(1),
        };
    }

    /// Whether the unacked queue is full ([`SmLimits::max_unacked`]): new application
    /// stanzas must wait (back-pressure) until the server acknowledges some.
    pub fn is_full(&self) -> bool {
        self.enabled && self.unacked.len() >= self.limits.max_unacked
    }

    /// The error to end the stream with when the server has let the queue grow past twice
    /// the hard limit (only the session's own stanzas can push it beyond the hard limit).
    pub fn overflow(&self) -> Option<SmError> {
        (self.enabled && self.unacked.len() >= self.limits.max_unacked.saturating_mul(2)).then_some(
            SmError::NotAcknowledging {
                unacked: self.unacked.len(),
            },
        )
    }

    /// From a saved state, about to resume: counters and unacked queue restored.
    pub fn from_state(st: &SmState) -> Self {
        StreamManagement {
            enabled: false,
            id: Some(st.id.clone()),
            location: st.location.clone(),
            inbound: st.inbound,
            acked: st.acked,
            unacked: st.unacked.iter().cloned().collect(),
            ack_requested: false,
            limits: SmLimits::default(),
        }
    }

    /// `<enable resume='true'/>` (XEP-0198 §3).
    pub fn enable_request() -> Element {
        Element::new("enable", NS_SM).with_attr("resume", "true")
    }

    /// Handles `<enabled/>`: counters start at zero (§4).
    pub fn on_enabled(&mut self, el: &Element) {
        self.enabled = true;
        self.id = el
            .attr("id")
            .filter(|_| matches!(el.attr("resume"), Some("true" | "1")))
            .map(str::to_owned);
        self.location = el.attr("location").map(str::to_owned);
        self.inbound = 0;
        self.acked = 0;
        self.ack_requested = false;
    }

    /// Whether acks are being exchanged.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the stream can be resumed (the server gave an id).
    pub fn is_resumable(&self) -> bool {
        self.id.is_some()
    }

    /// `<resume previd h/>` (§5), if there is an id to resume.
    pub fn resume_request(&self) -> Option<Element> {
        let id = self.id.as_ref()?;
        Some(
            Element::new("resume", NS_SM)
                .with_attr("previd", id.clone())
                .with_attr("h", self.inbound.to_string()),
        )
    }

    /// Handles `<resumed h/>`: drops what `h` acknowledges and returns the stanzas to resend,
    /// oldest first (they are re-queued by the caller's send path).
    pub fn on_resumed(&mut self, el: &Element) -> Result<Vec<Element>, SmError> {
        let h = parse_h(el)?;
        self.apply_ack(h)?;
        self.enabled = true;
        self.ack_requested = false;
        Ok(self.unacked.drain(..).collect())
    }

    /// Handles `<failed/>` after a resume attempt: an `h` on it (XEP-0198 §5, as Prosody
    /// sends) acknowledges what the server did receive; everything else still unacked is
    /// returned (to be reported undelivered) and the state is reset.
    pub fn on_resume_failed(&mut self, el: &Element) -> Vec<Element> {
        if let Ok(h) = parse_h(el)
            && self.apply_ack(h).is_err()
        {
            tracing::debug!(h, "ignoring implausible h on <failed/>");
        }
        self.on_failed()
    }

    /// Resets the state and returns everything unacked (to be reported undelivered).
    pub fn on_failed(&mut self) -> Vec<Element> {
        let out = self.unacked.drain(..).collect();
        let limits = self.limits;
        *self = StreamManagement::new();
        self.limits = limits;
        out
    }

    /// Counts one handled inbound stanza.
    pub fn on_inbound_stanza(&mut self) {
        if self.enabled {
            self.inbound = self.inbound.wrapping_add(1);
        }
    }

    /// Records one sent stanza. Returns whether an `<r/>` should follow: when no request
    /// is pending, and again each time [`SmLimits::request_ack_at`] stanzas are waiting.
    pub fn on_outbound_stanza(&mut self, el: &Element) -> bool {
        if !self.enabled {
            return false;
        }
        self.unacked.push_back(el.clone());
        if self.ack_requested {
            self.unacked
                .len()
                .is_multiple_of(self.limits.request_ack_at.max(1))
        } else {
            self.ack_requested = true;
            true
        }
    }

    /// Our answer to `<r/>`.
    pub fn ack(&self) -> Element {
        Element::new("a", NS_SM).with_attr("h", self.inbound.to_string())
    }

    /// `<r/>`.
    pub fn request() -> Element {
        Element::new("r", NS_SM)
    }

    /// Handles `<a h/>`. Returns whether a new `<r/>` should be sent (stanzas remain).
    pub fn on_ack(&mut self, el: &Element) -> Result<bool, SmError> {
        let h = parse_h(el)?;
        self.apply_ack(h)?;
        self.ack_requested = false;
        if self.unacked.is_empty() {
            Ok(false)
        } else {
            self.ack_requested = true;
            Ok(true)
        }
    }

    fn apply_ack(&mut self, h: u32) -> Result<(), SmError> {
        let n = h.wrapping_sub(self.acked);
        if n as usize > self.unacked.len() {
            return Err(SmError::AckTooHigh {
                h,
                sent: self.acked.wrapping_add(self.unacked.len() as u32),
            });
        }
        self.unacked.drain(..n as usize);
        self.acked = h;
        Ok(())
    }

    /// Stanzas not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Takes every unacked stanza (for an undelivered report at a final close).
    pub fn take_unacked(&mut self) -> Vec<Element> {
        self.unacked.drain(..).collect()
    }

    /// The resumable state, with `extra` (queued, never sent) stanzas appended.
    pub fn state(&self, jid: &str, extra: &[Element]) -> Option<SmState> {
        let id = self.id.clone()?;
        let mut unacked: Vec<Element> = self.unacked.iter().cloned().collect();
        unacked.extend_from_slice(extra);
        Some(SmState {
            id,
            jid: jid.to_owned(),
            location: self.location.clone(),
            inbound: self.inbound,
            acked: self.acked,
            unacked,
            pending_iqs: Vec::new(),
        })
    }
}

fn parse_h(el: &Element) -> Result<u32, SmError> {
    el.attr("h")
        .and_then(|h| h.parse().ok())
        .ok_or(SmError::BadH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u32) -> Element {
        Element::new("message", NS_CLIENT)
            .with_attr("id", n.to_string())
            .with_child(Element::new("body", NS_CLIENT).with_text(format!("line\n{n} & <x>")))
    }

    fn enabled() -> StreamManagement {
        let mut sm = StreamManagement::new();
        sm.on_enabled(
            &Element::new("enabled", NS_SM)
                .with_attr("id", "abc")
                .with_attr("resume", "true"),
        );
        sm
    }

    #[test]
    fn acks_drop_only_acknowledged() {
        let mut sm = enabled();
        assert!(sm.on_outbound_stanza(&msg(1)));
        assert!(!sm.on_outbound_stanza(&msg(2)));
        assert!(!sm.on_outbound_stanza(&msg(3)));
        let again = sm
            .on_ack(&Element::new("a", NS_SM).with_attr("h", "2"))
            .unwrap();
        assert!(again);
        assert_eq!(sm.unacked_len(), 1);
        assert_eq!(
            sm.on_ack(&Element::new("a", NS_SM).with_attr("h", "5")),
            Err(SmError::AckTooHigh { h: 5, sent: 3 })
        );
        sm.on_inbound_stanza();
        assert_eq!(sm.ack().attr("h"), Some("1"));
    }

    #[test]
    fn state_roundtrip_and_resume() {
        let mut sm = enabled();
        for i in 0..4 {
            sm.on_outbound_stanza(&msg(i));
        }
        sm.on_ack(&Element::new("a", NS_SM).with_attr("h", "1"))
            .unwrap();
        sm.on_inbound_stanza();
        let mut st = sm.state("a@b/c", &[msg(9)]).unwrap();
        st.pending_iqs = vec![
            ("q 1".into(), Some("bob@c.test/x".into())),
            ("q\n2".into(), None),
        ];
        let text = st.to_string();
        let back: SmState = text.parse().unwrap();
        assert_eq!(back, st);
        assert_eq!(back.unacked.len(), 4);
        let mut r = StreamManagement::from_state(&back);
        let req = r.resume_request().unwrap();
        assert_eq!(req.attr("h"), Some("1"));
        assert_eq!(req.attr("previd"), Some("abc"));
        let resend = r
            .on_resumed(&Element::new("resumed", NS_SM).with_attr("h", "3"))
            .unwrap();
        let ids: Vec<_> = resend.iter().map(|m| m.attr("id").unwrap()).collect();
        assert_eq!(ids, ["3", "9"]);
        assert!("garbage".parse::<SmState>().is_err());
        assert!(
            "cusax-sm 1\nid=x\nstanza 99\n<a/>\n"
                .parse::<SmState>()
                .is_err()
        );
    }

    #[test]
    fn bounded_queue_rerequests_then_fills() {
        let mut sm = enabled();
        sm.set_limits(SmLimits {
            request_ack_at: 4,
            max_unacked: 8,
        });
        let requests: Vec<bool> = (0..8).map(|i| sm.on_outbound_stanza(&msg(i))).collect();
        assert_eq!(
            requests,
            [true, false, false, true, false, false, false, true],
            "first stanza, then every 4 waiting"
        );
        assert!(sm.is_full());
        assert!(sm.overflow().is_none());
        for i in 8..16 {
            sm.on_outbound_stanza(&msg(i));
        }
        assert_eq!(
            sm.overflow(),
            Some(SmError::NotAcknowledging { unacked: 16 })
        );
        sm.on_ack(&Element::new("a", NS_SM).with_attr("h", "10"))
            .unwrap();
        assert!(!sm.is_full());
        assert_eq!(sm.on_failed().len(), 6);
        assert_eq!(sm.limits.max_unacked, 8, "limits survive a reset");
    }

    #[test]
    fn counters_wrap() {
        let mut sm = enabled();
        sm.acked = u32::MAX;
        sm.on_outbound_stanza(&msg(1));
        sm.on_outbound_stanza(&msg(2));
        sm.on_ack(&Element::new("a", NS_SM).with_attr("h", "1"))
            .unwrap();
        assert_eq!(sm.unacked_len(), 0);
    }
}
