//! Incremental, restricted XML stream parser (RFC 6120 §11).
//!
//! XMPP is one long XML document per direction: a `<stream:stream>` start tag (depth 0),
//! then any number of complete depth-1 elements (stanzas, features, SASL and
//! stream-management nonzas), then `</stream:stream>`. [`StreamParser`] is a push parser:
//! the caller [`feed`](StreamParser::feed)s whatever bytes arrived and drains
//! [`next_event`](StreamParser::next_event).
//!
//! # Design
//! One pass, one tokenizer. The parser cuts the input into tokens (a start tag, an end tag,
//! a run of character data, a CDATA section, the XML declaration) and turns each complete
//! token straight into the element tree of the stanza being received: start tags push an
//! [`Element`] on a stack of open elements (namespaces resolved there, against the
//! declarations in scope and those of the stream header, default namespace
//! `jabber:client`), character data is unescaped into text nodes, and the end tag of the
//! depth-1 element yields [`XmlEvent::Stanza`]. Bytes of a consumed token are dropped; only
//! an incomplete token stays buffered, and its scan resumes where it stopped (no rescan
//! when input trickles in byte by byte).
//!
//! A token is acted upon only once it is complete (or once a prefix of it decides an error,
//! like `<!--`), and every size limit is checked against the bytes that decision examined,
//! before the decision. The events and the error therefore do not depend on how the input
//! is split into chunks: a stream fed byte by byte gives exactly what the same bytes fed at
//! once give.
//!
//! # Restrictions (RFC 6120 §11.1) and limits
//! Comments, processing instructions (other than the XML declaration before the stream
//! header), DOCTYPE/DTD and entity references other than the five predefined ones are
//! refused with [`XmlError::Restricted`] (stream error `restricted-xml`, RFC 6120 §4.9.3.18).
//! CDATA sections and character references are allowed. Invalid UTF-8 (RFC 6120 §11.6)
//! and other malformations (characters outside XML 1.0 `Char`, §2.2; `]]>` in character
//! data, §2.4; bad names, unquoted or duplicate attributes, mismatched tags) give
//! `not-well-formed` (§4.9.3.13). Line ends are normalized (XML 1.0 §2.11) and attribute
//! values normalized (§3.3.3). The [`XmlLimits`] bound stanza size, depth, attribute count
//! and the size of one token (`policy-violation`, §4.9.3.14).

use crate::xml::element::{Element, Node};

/// Namespace of the stream element (RFC 6120 §4.8.1).
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// Default content namespace of a client stream (RFC 6120 §4.8.3).
pub const NS_CLIENT: &str = "jabber:client";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Size and shape limits enforced on the peer's XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest depth-1 element (stanza) in bytes, as received (default 256 KiB).
    pub max_stanza_size: usize,
    /// Deepest nesting inside a stanza, the stanza itself being depth 1 (default 32).
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element (default 64).
    pub max_attributes: usize,
    /// Most unparsed bytes held while waiting for the end of a token (default
    /// `max_stanza_size` + 64 KiB).
    pub max_buffered: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_stanza_size: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_buffered: 256 * 1024 + 64 * 1024,
        }
    }
}

/// What the parser found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlEvent {
    /// The `<stream:stream>` start tag (RFC 6120 §4.7).
    StreamOpen {
        /// Attributes other than namespace declarations (`from`, `id`, `version`, `xml:lang`…).
        attrs: Vec<(String, String)>,
        /// Namespace declarations: (prefix, URI), prefix `""` for the default namespace.
        ns_decls: Vec<(String, String)>,
    },
    /// One complete depth-1 element with namespaces resolved.
    Stanza(Element),
    /// `</stream:stream>` (RFC 6120 §4.4).
    StreamClose,
}

impl XmlEvent {
    /// The value of a stream header attribute, if this is a [`XmlEvent::StreamOpen`].
    pub fn header_attr(&self, name: &str) -> Option<&str> {
        match self {
            XmlEvent::StreamOpen { attrs, .. } => attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// The peer sent XML that is malformed, restricted or over a limit. The peer is at fault;
/// [`XmlError::stream_error_condition`] names the stream error to send before closing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Malformed XML (RFC 6120 §4.9.3.13).
    #[error("peer sent XML that is not well-formed: {0}")]
    NotWellFormed(String),
    /// Bytes that are not UTF-8 (RFC 6120 §11.6).
    #[error("peer sent bytes that are not valid UTF-8")]
    InvalidUtf8,
    /// A construct RFC 6120 §11.1 forbids (comment, PI, DTD, entity reference).
    #[error("peer sent restricted XML (RFC 6120 §11.1): {0}")]
    Restricted(&'static str),
    /// A stanza larger than [`XmlLimits::max_stanza_size`].
    #[error("peer sent a stanza larger than {limit} bytes")]
    StanzaTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Nesting deeper than [`XmlLimits::max_depth`].
    #[error("peer sent elements nested deeper than {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// More attributes than [`XmlLimits::max_attributes`].
    #[error("peer sent an element with more than {limit} attributes")]
    TooManyAttributes {
        /// The configured limit.
        limit: usize,
    },
    /// More unparsed bytes than [`XmlLimits::max_buffered`].
    #[error("peer sent more than {limit} bytes without completing a token")]
    BufferLimit {
        /// The configured limit.
        limit: usize,
    },
    /// A prefix without a declaration (RFC 6120 §4.9.3.2).
    #[error("peer used the undeclared namespace prefix {0:?}")]
    BadNamespacePrefix(String),
    /// The stream element is not `stream` in `http://etherx.jabber.org/streams` (§4.9.3.10).
    #[error("peer's stream element is {0:?}, not stream in the streams namespace")]
    InvalidNamespace(String),
}

impl XmlError {
    /// The RFC 6120 §4.9.3 defined condition for this error.
    pub fn stream_error_condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) | XmlError::InvalidUtf8 => "not-well-formed",
            XmlError::Restricted(_) => "restricted-xml",
            XmlError::StanzaTooLarge { .. }
            | XmlError::TooDeep { .. }
            | XmlError::TooManyAttributes { .. }
            | XmlError::BufferLimit { .. } => "policy-violation",
            XmlError::BadNamespacePrefix(_) => "bad-namespace-prefix",
            XmlError::InvalidNamespace(_) => "invalid-namespace",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the stream header; `xml_decl_allowed` while nothing but whitespace was seen.
    Prolog {
        xml_decl_allowed: bool,
    },
    InStream,
    Closed,
}

/// Namespace bindings: (prefix, uri); prefix "" is the default namespace.
type Bindings = Vec<(String, String)>;

/// An element whose end tag has not arrived yet.
#[derive(Debug)]
struct Open {
    el: Element,
    /// Length of the parser's `scope` before this element's declarations.
    scope_mark: usize,
    /// Where this element's qualified name starts in the parser's `qnames`.
    qname_start: usize,
}

/// The incremental restricted-XML stream parser. See the [module docs](self).
#[derive(Debug)]
pub struct StreamParser {
    limits: XmlLimits,
    /// Received input, validated as UTF-8 (RFC 6120 §11.6) on arrival, in one pass per
    /// [`feed`](Self::feed).
    buf: String,
    /// The first bytes of a UTF-8 sequence that the next [`feed`](Self::feed) completes.
    pending: Vec<u8>,
    /// Input arrived that is not UTF-8: `buf` ends where it started. The parser reports
    /// [`XmlError::InvalidUtf8`] when it reaches that point.
    bad_utf8: bool,
    /// Start of the first byte not consumed yet: the start of the current token.
    pos: usize,
    /// How far the current (incomplete) token has been scanned.
    scan: usize,
    /// The open quote when `scan` stopped inside an attribute value of a start tag.
    quote: u8,
    /// Bytes of the current stanza consumed before `pos`.
    stanza_used: usize,
    state: State,
    /// Bindings declared on the stream header (plus the default `jabber:client`).
    stream_ns: Bindings,
    /// The stream element's qualified name as written (`stream:stream`).
    stream_qname: String,
    /// Open elements of the stanza being received; the stanza itself is first.
    stack: Vec<Open>,
    /// Bindings declared inside the stanza being received.
    scope: Bindings,
    /// Qualified names of the open elements, as written, end to end.
    qnames: Vec<u8>,
    failed: Option<XmlError>,
}

/// What a complete token did.
enum Step {
    /// Go on with the next token.
    Continue,
    /// An event for the caller.
    Event(XmlEvent),
}

const CDATA_OPEN: &[u8] = b"<![CDATA[";
const COMMENT_OPEN: &[u8] = b"<!--";

impl StreamParser {
    /// A parser for a new stream (after a stream restart, make a new one: RFC 6120 §4.3.3).
    pub fn new(limits: XmlLimits) -> Self {
        StreamParser {
            limits,
            buf: String::new(),
            pending: Vec::new(),
            bad_utf8: false,
            pos: 0,
            scan: 0,
            quote: 0,
            stanza_used: 0,
            state: State::Prolog {
                xml_decl_allowed: true,
            },
            stream_ns: Vec::new(),
            stream_qname: String::new(),
            stack: Vec::new(),
            scope: Vec::new(),
            qnames: Vec::new(),
            failed: None,
        }
    }

    /// Appends received bytes. Limits are checked by [`next_event`](Self::next_event).
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() || self.bad_utf8 {
            return;
        }
        if self.pos > 0
            && (self.pos == self.buf.len() || self.pos >= self.buf.len() / 2)
            && self.buf.is_char_boundary(self.pos)
        {
            self.buf.drain(..self.pos);
            self.scan -= self.pos;
            self.pos = 0;
        }
        let mut data = data;
        // Complete a sequence split by the previous chunk, one byte at a time.
        while !self.pending.is_empty() {
            let Some((&b, rest)) = data.split_first() else {
                return;
            };
            data = rest;
            self.pending.push(b);
            match std::str::from_utf8(&self.pending) {
                Ok(c) => {
                    self.buf.push_str(c);
                    self.pending.clear();
                }
                Err(e) if e.error_len().is_none() => {}
                Err(_) => {
                    self.pending.clear();
                    self.bad_utf8 = true;
                    return;
                }
            }
        }
        match std::str::from_utf8(data) {
            Ok(s) => self.buf.push_str(s),
            Err(e) => {
                let (valid, rest) = data.split_at(e.valid_up_to());
                if let Ok(s) = std::str::from_utf8(valid) {
                    self.buf.push_str(s);
                }
                if e.error_len().is_none() {
                    self.pending.extend_from_slice(rest);
                } else {
                    self.bad_utf8 = true;
                }
            }
        }
    }

    /// Whether the stream header was received and the stream is not closed yet. A transport
    /// EOF in that state is a dropped connection, not a clean close.
    pub fn is_open(&self) -> bool {
        self.state == State::InStream
    }

    /// Whether `</stream:stream>` was received.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes received but not consumed yet: the incomplete token at the end of the input.
    /// (The consumed part of an incomplete stanza is held as its element tree.)
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos + self.pending.len()
    }

    /// Whether a stanza has started and its end tag has not arrived yet.
    pub fn in_stanza(&self) -> bool {
        !self.stack.is_empty()
    }

    /// The next complete event, `Ok(None)` when more bytes are needed. After an error the
    /// same error is returned again: the stream is unusable (RFC 6120 §4.9: stream errors are
    /// unrecoverable).
    pub fn next_event(&mut self) -> Result<Option<XmlEvent>, XmlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.run() {
            Ok(ev) => Ok(ev),
            Err(e) => {
                tracing::debug!(error = %e, "XML stream error");
                self.failed = Some(e.clone());
                self.buf = String::new();
                self.stack = Vec::new();
                self.pos = 0;
                self.scan = 0;
                Err(e)
            }
        }
    }

    fn run(&mut self) -> Result<Option<XmlEvent>, XmlError> {
        loop {
            let step = match self.step()? {
                Some(step) => step,
                None => {
                    // The current token goes on past the end of the input: whatever it
                    // turns out to be, it is at least one byte longer than what we hold.
                    self.check_extent(self.buf.len())?;
                    if self.bad_utf8 {
                        // What follows `buf` is not UTF-8, and the parser needs it.
                        return Err(XmlError::InvalidUtf8);
                    }
                    return Ok(None);
                }
            };
            if let Step::Event(ev) = step {
                return Ok(Some(ev));
            }
        }
    }

    /// Refuses a token whose examined bytes, `pos..end`, are over a limit: the stanza size
    /// (counting what the stanza consumed before) inside the stream, the token size always.
    fn check_extent(&self, end: usize) -> Result<(), XmlError> {
        let len = end - self.pos;
        if self.state == State::InStream && self.stanza_used + len > self.limits.max_stanza_size {
            return Err(XmlError::StanzaTooLarge {
                limit: self.limits.max_stanza_size,
            });
        }
        if len > self.limits.max_buffered {
            return Err(XmlError::BufferLimit {
                limit: self.limits.max_buffered,
            });
        }
        Ok(())
    }

    /// Marks `pos..end` consumed.
    fn consume(&mut self, end: usize) {
        if self.state == State::InStream {
            self.stanza_used += end - self.pos;
        }
        self.pos = end;
        self.scan = end;
        self.quote = 0;
    }

    /// Handles the next token; `None` when it is incomplete.
    fn step(&mut self) -> Result<Option<Step>, XmlError> {
        let Some(&first) = self.buf.as_bytes().get(self.pos) else {
            return Ok(None);
        };
        if self.state == State::Closed || (first != b'<' && self.stack.is_empty()) {
            // Between stanzas only whitespace (keep-alives, RFC 6120 §4.6.1) is allowed.
            let rest = &self.buf.as_bytes()[self.pos..];
            let n = rest.iter().position(|&b| !is_ws(b)).unwrap_or(rest.len());
            if n == 0 {
                self.check_extent(self.pos + 1)?;
                return Err(XmlError::NotWellFormed(if self.state == State::Closed {
                    "data after </stream:stream>".into()
                } else {
                    "character data outside a stanza".into()
                }));
            }
            self.pos += n;
            self.scan = self.pos;
            return Ok(Some(Step::Continue));
        }
        if first != b'<' {
            return self.text();
        }
        let Some(&second) = self.buf.as_bytes().get(self.pos + 1) else {
            return Ok(None);
        };
        match second {
            b'?' => self.processing_instruction(),
            b'!' => self.markup_declaration(),
            b'/' => self.end_tag(),
            _ => self.start_tag(),
        }
    }

    /// Character data inside a stanza, up to the next `<`.
    fn text(&mut self) -> Result<Option<Step>, XmlError> {
        let from = self.scan.max(self.pos);
        let Some(off) = find_byte(&self.buf.as_bytes()[from..], b'<') else {
            self.scan = self.buf.len();
            return Ok(None);
        };
        let end = from + off;
        self.check_extent(end)?;
        let Some(open) = self.stack.last_mut() else {
            return Err(XmlError::NotWellFormed("text outside an element".into()));
        };
        append_text(&mut open.el, &self.buf[self.pos..end], false)?;
        self.consume(end);
        Ok(Some(Step::Continue))
    }

    /// `<?…?>`: the XML declaration before the stream header, else refused.
    fn processing_instruction(&mut self) -> Result<Option<Step>, XmlError> {
        if self.state
            != (State::Prolog {
                xml_decl_allowed: true,
            })
        {
            self.check_extent(self.pos + 2)?;
            return Err(XmlError::Restricted("processing instruction"));
        }
        let from = self.scan.saturating_sub(1).max(self.pos + 2);
        let Some(off) = find(&self.buf.as_bytes()[from..], b"?>") else {
            self.scan = self.buf.len();
            return Ok(None);
        };
        let end = from + off + 2;
        self.check_extent(end)?;
        let decl = &self.buf[self.pos..end];
        let is_decl = decl.len() > 7
            && decl.starts_with("<?xml")
            && decl.as_bytes().get(5).copied().is_some_and(is_ws);
        if !is_decl {
            return Err(XmlError::Restricted("processing instruction"));
        }
        if decl.bytes().any(is_forbidden_control) || decl.contains(['\u{FFFE}', '\u{FFFF}']) {
            return Err(XmlError::NotWellFormed(
                "control character in the XML declaration".into(),
            ));
        }
        self.consume(end);
        self.state = State::Prolog {
            xml_decl_allowed: false,
        };
        Ok(Some(Step::Continue))
    }

    /// `<!…`: a CDATA section inside a stanza; comments and DTDs are refused.
    fn markup_declaration(&mut self) -> Result<Option<Step>, XmlError> {
        let rest = &self.buf.as_bytes()[self.pos..];
        let c = common_prefix(rest, CDATA_OPEN);
        let m = common_prefix(rest, COMMENT_OPEN);
        if c < CDATA_OPEN.len() {
            if m == COMMENT_OPEN.len() {
                self.check_extent(self.pos + m)?;
                return Err(XmlError::Restricted("comment"));
            }
            if c == rest.len() || m == rest.len() {
                return Ok(None);
            }
            self.check_extent(self.pos + c.max(m) + 1)?;
            return Err(XmlError::Restricted("DOCTYPE or markup declaration"));
        }
        if self.stack.is_empty() {
            self.check_extent(self.pos + c)?;
            return Err(XmlError::NotWellFormed(
                "CDATA section outside a stanza".into(),
            ));
        }
        let body = self.pos + CDATA_OPEN.len();
        let from = self.scan.saturating_sub(2).max(body);
        let Some(off) = find(&self.buf.as_bytes()[from..], b"]]>") else {
            self.scan = self.buf.len();
            return Ok(None);
        };
        let end = from + off + 3;
        self.check_extent(end)?;
        if let Some(open) = self.stack.last_mut() {
            append_text(&mut open.el, &self.buf[body..end - 3], true)?;
        }
        self.consume(end);
        Ok(Some(Step::Continue))
    }

    /// `</name>`: closes the innermost open element, or the stream.
    fn end_tag(&mut self) -> Result<Option<Step>, XmlError> {
        let from = self.scan.max(self.pos + 2);
        let Some(off) = find2(&self.buf.as_bytes()[from..], b'>', b'<') else {
            self.scan = self.buf.len();
            return Ok(None);
        };
        let gt = from + off;
        self.check_extent(gt + 1)?;
        if self.buf.as_bytes()[gt] == b'<' {
            return Err(XmlError::NotWellFormed("'<' inside a tag".into()));
        }
        let raw = &self.buf.as_bytes()[self.pos + 2..gt];
        let name = trim_ws_end(raw);
        let Some(open) = self.stack.last() else {
            if self.state != State::InStream {
                return Err(XmlError::NotWellFormed(
                    "end tag before the stream header".into(),
                ));
            }
            let name = String::from_utf8_lossy(name);
            if name != self.stream_qname {
                return Err(XmlError::NotWellFormed(format!(
                    "end tag </{name}> does not match <{}>",
                    self.stream_qname
                )));
            }
            self.consume(gt + 1);
            self.state = State::Closed;
            return Ok(Some(Step::Event(XmlEvent::StreamClose)));
        };
        let expected = self.qnames.get(open.qname_start..).unwrap_or_default();
        if name != expected {
            let name = String::from_utf8_lossy(name);
            return Err(XmlError::NotWellFormed(format!(
                "end tag </{name}> does not match <{}>",
                String::from_utf8_lossy(expected)
            )));
        }
        self.consume(gt + 1);
        let Some(open) = self.stack.pop() else {
            return Err(XmlError::NotWellFormed("unbalanced end tag".into()));
        };
        self.scope.truncate(open.scope_mark);
        self.qnames.truncate(open.qname_start);
        Ok(Some(self.close(open.el)))
    }

    /// Attaches a finished element to its parent, or emits it when it is the stanza.
    fn close(&mut self, el: Element) -> Step {
        match self.stack.last_mut() {
            Some(parent) => {
                parent.el.children.push(Node::Element(el));
                Step::Continue
            }
            None => {
                self.stanza_used = 0;
                Step::Event(XmlEvent::Stanza(el))
            }
        }
    }

    /// Finds the `>` ending the start tag at `pos`, resuming the scan (quotes respected).
    fn scan_start_tag(&mut self) -> Result<Option<usize>, XmlError> {
        let mut i = self.scan.max(self.pos + 1);
        let mut quote = self.quote;
        loop {
            let rest = &self.buf.as_bytes()[i..];
            let found = if quote == 0 {
                find4(rest, b'>', b'<', b'\'', b'"')
            } else {
                find2(rest, quote, b'<')
            };
            let Some(off) = found else {
                self.scan = self.buf.len();
                self.quote = quote;
                return Ok(None);
            };
            let at = i + off;
            match self.buf.as_bytes()[at] {
                b'>' => return Ok(Some(at)),
                b'<' => {
                    self.check_extent(at + 1)?;
                    return Err(XmlError::NotWellFormed(if quote == 0 {
                        "'<' inside a tag".into()
                    } else {
                        "'<' in an attribute value".into()
                    }));
                }
                q if quote == 0 => quote = q,
                _ => quote = 0,
            }
            i = at + 1;
        }
    }

    /// `<name …>` or `<name …/>`: the stream header, a stanza or a child element.
    fn start_tag(&mut self) -> Result<Option<Step>, XmlError> {
        let Some(gt) = self.scan_start_tag()? else {
            return Ok(None);
        };
        self.check_extent(gt + 1)?;
        let self_closing = gt > self.pos + 1 && self.buf.as_bytes()[gt - 1] == b'/';
        let inner_end = if self_closing { gt - 1 } else { gt };
        if let State::Prolog { .. } = self.state {
            if self_closing {
                return Err(XmlError::NotWellFormed(
                    "the stream header must not be an empty element".into(),
                ));
            }
            let ev = self.stream_header(self.pos + 1, inner_end)?;
            self.consume(gt + 1);
            self.state = State::InStream;
            return Ok(Some(Step::Event(ev)));
        }
        let depth = self.stack.len() + 1;
        if depth > self.limits.max_depth {
            return Err(XmlError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let scope_mark = self.scope.len();
        let tag = &self.buf[self.pos + 1..inner_end];
        let mut attrs = Vec::new();
        let TagName {
            qname,
            prefix,
            local,
            prefixed_attrs,
        } = parse_tag(tag, &self.limits, &mut self.scope, &mut attrs)?;
        if prefixed_attrs {
            for (k, _) in &attrs {
                let (p, _) = split_qname(k);
                if !p.is_empty() {
                    resolve(&self.scope, &self.stream_ns, p)?;
                }
            }
        }
        let ns = resolve(&self.scope, &self.stream_ns, prefix)?;
        let el = Element {
            name: local.to_owned(),
            ns: ns.to_owned(),
            attrs,
            children: Vec::new(),
        };
        let qname_start = self.qnames.len();
        if !self_closing {
            self.qnames.extend_from_slice(qname.as_bytes());
        }
        self.consume(gt + 1);
        if self_closing {
            self.scope.truncate(scope_mark);
            return Ok(Some(self.close(el)));
        }
        self.stack.push(Open {
            el,
            scope_mark,
            qname_start,
        });
        Ok(Some(Step::Continue))
    }

    fn stream_header(&mut self, from: usize, to: usize) -> Result<XmlEvent, XmlError> {
        let tag = &self.buf[from..to];
        let mut scope: Bindings = Vec::new();
        let mut attrs = Vec::new();
        let TagName {
            qname,
            prefix,
            local,
            ..
        } = parse_tag(tag, &self.limits, &mut scope, &mut attrs)?;
        let ns = resolve(&scope, &[], prefix)?;
        if local != "stream" || ns != NS_STREAMS {
            return Err(XmlError::InvalidNamespace(qname.to_owned()));
        }
        let ns_decls = scope.clone();
        if !scope.iter().any(|(p, _)| p.is_empty()) {
            scope.push((String::new(), NS_CLIENT.to_owned()));
        }
        self.stream_qname = qname.to_owned();
        self.stream_ns = scope;
        Ok(XmlEvent::StreamOpen { attrs, ns_decls })
    }
}

/// XML whitespace (XML 1.0 §2.3 `S`).
#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A C0 control character XML 1.0 does not allow (§2.2 `Char`).
#[inline]
fn is_forbidden_control(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')
}

/// Whether `c` is an XML 1.0 `Char` (§2.2).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is zero (exact for the lowest such byte).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// Position of the first byte of `hay` for which `hit(word)` flags a byte (eight bytes at
/// a time, SWAR), `slow` deciding the tail.
#[inline(always)]
fn find_by(hay: &[u8], hit: impl Fn(u64) -> u64, slow: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(c) else {
            break;
        };
        let m = hit(u64::from_le_bytes(bytes));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    hay[at..].iter().position(|&b| slow(b)).map(|p| at + p)
}

/// Position of the first `a` in `hay`.
#[inline]
fn find_byte(hay: &[u8], a: u8) -> Option<usize> {
    let pa = LO * u64::from(a);
    find_by(hay, |w| zero_bytes(w ^ pa), |b| b == a)
}

/// Position of the first `a` or `b` in `hay`.
#[inline]
fn find2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    find_by(
        hay,
        |w| zero_bytes(w ^ pa) | zero_bytes(w ^ pb),
        |x| x == a || x == b,
    )
}

/// Position of the first `a`, `b`, `c` or `d` in `hay`.
#[inline]
fn find4(hay: &[u8], a: u8, b: u8, c: u8, d: u8) -> Option<usize> {
    let (pa, pb, pc, pd) = (
        LO * u64::from(a),
        LO * u64::from(b),
        LO * u64::from(c),
        LO * u64::from(d),
    );
    find_by(
        hay,
        |w| zero_bytes(w ^ pa) | zero_bytes(w ^ pb) | zero_bytes(w ^ pc) | zero_bytes(w ^ pd),
        |x| x == a || x == b || x == c || x == d,
    )
}

/// Position of the first byte [`decode`] must look at: a C0 control, `&`, `]`, `<`, or
/// 0xEF (the lead byte of U+FFFE / U+FFFF).
#[inline]
fn find_special(hay: &[u8]) -> Option<usize> {
    let (amp, br, lt, ef) = (
        LO * u64::from(b'&'),
        LO * u64::from(b']'),
        LO * u64::from(b'<'),
        LO * 0xEF,
    );
    find_by(
        hay,
        |w| {
            (w.wrapping_sub(LO * 0x20) & !w & HI)
                | zero_bytes(w ^ amp)
                | zero_bytes(w ^ br)
                | zero_bytes(w ^ lt)
                | zero_bytes(w ^ ef)
        },
        |b| SPECIAL[usize::from(b)],
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn trim_ws_end(mut b: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = b.split_last() {
        if !is_ws(last) {
            break;
        }
        b = rest;
    }
    b
}

fn split_qname(q: &str) -> (&str, &str) {
    match q.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", q),
    }
}

/// Resolves `prefix` in the stanza scope `inner` (innermost last), then in the stream
/// scope `outer`.
fn resolve<'a>(
    inner: &'a [(String, String)],
    outer: &'a [(String, String)],
    prefix: &str,
) -> Result<&'a str, XmlError> {
    if prefix == "xml" {
        return Ok(NS_XML);
    }
    match inner
        .iter()
        .rev()
        .chain(outer.iter().rev())
        .find(|(p, _)| p == prefix)
    {
        Some((_, uri)) => Ok(uri),
        None if prefix.is_empty() => Ok(""),
        None => Err(XmlError::BadNamespacePrefix(prefix.to_owned())),
    }
}

/// XML 1.0 §2.3 `NameStartChar`, without `:` (Namespaces in XML §3 `NCName`).
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 §2.3 `NameChar`, without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// ASCII name byte classes: 0 ends a name, 1 `NameChar` only, 2 `NameStartChar`, 3 `:`.
const fn name_classes() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_alphabetic() || c == b'_' {
            2
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            1
        } else if c == b':' {
            3
        } else {
            0
        };
        i += 1;
    }
    t
}
static NAME_CLASS: [u8; 128] = name_classes();

/// Scans a qualified name (Namespaces in XML §4) starting at `from`, up to the first byte
/// that cannot be part of a name: its end and the position of its colon, or `None` when
/// the name is empty or not a `QName`.
fn scan_qname(s: &str, from: usize) -> Option<(usize, Option<usize>)> {
    let b = s.as_bytes();
    let mut i = from;
    let mut colon = None;
    loop {
        // One NCName: a start character, then name characters.
        match b.get(i) {
            Some(&c) if c < 0x80 => {
                if NAME_CLASS[usize::from(c)] != 2 {
                    return None;
                }
                i += 1;
            }
            Some(_) => {
                let ch = s.get(i..)?.chars().next()?;
                if !is_name_start(ch) {
                    return None;
                }
                i += ch.len_utf8();
            }
            None => return None,
        }
        while let Some(&c) = b.get(i) {
            if c < 0x80 {
                if !matches!(NAME_CLASS[usize::from(c)], 1 | 2) {
                    break;
                }
                i += 1;
            } else {
                let ch = s.get(i..)?.chars().next()?;
                if !is_name_char(ch) {
                    return None;
                }
                i += ch.len_utf8();
            }
        }
        if b.get(i) == Some(&b':') {
            if colon.is_some() {
                return None;
            }
            colon = Some(i);
            i += 1;
            continue;
        }
        return Some((i, colon));
    }
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// A start tag's qualified name, split.
struct TagName<'t> {
    qname: &'t str,
    prefix: &'t str,
    local: &'t str,
    /// Whether an attribute (other than a namespace declaration) has a prefix.
    prefixed_attrs: bool,
}

/// Parses the inside of a start tag (`name attr='v' …`, without `<`, `/` and `>`):
/// returns the qualified name; namespace declarations go to `scope` (after checking them),
/// other attributes to `attrs` with unescaped, normalized values.
fn parse_tag<'t>(
    tag: &'t str,
    limits: &XmlLimits,
    scope: &mut Bindings,
    attrs: &mut Vec<(String, String)>,
) -> Result<TagName<'t>, XmlError> {
    let b = tag.as_bytes();
    let bad_name = || {
        let end = b.iter().position(|&c| is_ws(c)).unwrap_or(b.len());
        XmlError::NotWellFormed(format!(
            "bad element name {:?}",
            String::from_utf8_lossy(&b[..end])
        ))
    };
    let (name_end, colon) = scan_qname(tag, 0).ok_or_else(bad_name)?;
    if b.get(name_end).is_some_and(|&c| !is_ws(c)) {
        return Err(bad_name());
    }
    let qname = &tag[..name_end];
    let (prefix, local) = match colon {
        Some(c) => (&tag[..c], &tag[c + 1..name_end]),
        None => ("", qname),
    };
    let mut prefixed_attrs = false;
    let mark = scope.len();
    let mut count = 0usize;
    let mut i = name_end;
    loop {
        let ws_start = i;
        while b.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if i == ws_start {
            return Err(XmlError::NotWellFormed(
                "no whitespace before an attribute".into(),
            ));
        }
        let n0 = i;
        let Some((end, colon)) = scan_qname(tag, i) else {
            return Err(XmlError::NotWellFormed("bad attribute name".into()));
        };
        i = end;
        let name = &tag[n0..i];
        while b.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err(XmlError::NotWellFormed(format!(
                "attribute {name:?} has no value"
            )));
        }
        i += 1;
        while b.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        let quote = match b.get(i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(XmlError::NotWellFormed(format!(
                    "value of attribute {name:?} is not quoted"
                )));
            }
        };
        i += 1;
        let Some(len) = find_byte(&b[i..], quote) else {
            return Err(XmlError::NotWellFormed(
                "unterminated attribute value".into(),
            ));
        };
        let raw = &tag[i..i + len];
        i += len + 1;
        count += 1;
        if count > limits.max_attributes {
            return Err(XmlError::TooManyAttributes {
                limit: limits.max_attributes,
            });
        }
        let mut value = String::with_capacity(raw.len());
        decode(raw, &mut value, Mode::Attribute)?;
        if name == "xmlns" || name.starts_with("xmlns:") {
            let p = name.strip_prefix("xmlns:").unwrap_or("");
            if name != "xmlns" && (value.is_empty() || p == "xmlns" || p == "xml") {
                return Err(XmlError::NotWellFormed(format!(
                    "invalid declaration of prefix {p:?}"
                )));
            }
            if scope[mark..].iter().any(|(q, _)| q == p) {
                return Err(XmlError::NotWellFormed(format!(
                    "duplicate attribute {name:?}"
                )));
            }
            scope.push((p.to_owned(), value));
        } else {
            if attrs.iter().any(|(k, _)| k == name) {
                return Err(XmlError::NotWellFormed(format!(
                    "duplicate attribute {name:?}"
                )));
            }
            prefixed_attrs |= colon.is_some();
            attrs.push((name.to_owned(), value));
        }
    }
    Ok(TagName {
        qname,
        prefix,
        local,
        prefixed_attrs,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Character data: references resolved, line ends normalized, `]]>` refused.
    Text,
    /// A CDATA section: line ends normalized only.
    CData,
    /// An attribute value: references resolved, whitespace normalized (XML 1.0 §3.3.3).
    Attribute,
}

/// Appends character data (or a CDATA section) to `el`, merging with a preceding text node.
fn append_text(el: &mut Element, raw: &str, cdata: bool) -> Result<(), XmlError> {
    let mode = if cdata { Mode::CData } else { Mode::Text };
    if let Some(Node::Text(t)) = el.children.last_mut() {
        return decode(raw, t, mode);
    }
    let mut t = String::with_capacity(raw.len());
    decode(raw, &mut t, mode)?;
    if !t.is_empty() {
        if el.children.is_empty() {
            // Most elements with text have nothing else (body, status…): room for one.
            el.children.reserve_exact(1);
        }
        el.children.push(Node::Text(t));
    }
    Ok(())
}

/// Bytes that need a look in [`decode`]: C0 controls, `&`, `]`, and the lead byte of
/// U+FFFE / U+FFFF.
const fn special_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'&' as usize] = true;
    t[b']' as usize] = true;
    t[b'<' as usize] = true;
    t[0xEF] = true;
    t
}
static SPECIAL: [bool; 256] = special_table();

/// Validates `raw` and appends its decoded value to `out`.
fn decode(s: &str, out: &mut String, mode: Mode) -> Result<(), XmlError> {
    let raw = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(off) = find_special(&raw[i..]) {
        i += off;
        let b = raw[i];
        match b {
            b'&' if mode != Mode::CData => {
                out.push_str(&s[start..i]);
                let Some(len) = raw[i + 1..].iter().take(64).position(|&c| c == b';') else {
                    return Err(XmlError::NotWellFormed("unterminated reference".into()));
                };
                resolve_ref(&s[i + 1..i + 1 + len], out)?;
                i += len + 2;
                start = i;
            }
            b'\r' => {
                out.push_str(&s[start..i]);
                out.push(if mode == Mode::Attribute { ' ' } else { '\n' });
                i += if raw.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            b'\t' | b'\n' => {
                if mode == Mode::Attribute {
                    out.push_str(&s[start..i]);
                    out.push(' ');
                    start = i + 1;
                }
                i += 1;
            }
            b']' => {
                if mode == Mode::Text && raw[i..].starts_with(b"]]>") {
                    return Err(XmlError::NotWellFormed("']]>' in character data".into()));
                }
                i += 1;
            }
            b'<' if mode == Mode::Attribute => {
                return Err(XmlError::NotWellFormed("'<' in an attribute value".into()));
            }
            0xEF => {
                if raw[i..].starts_with(&[0xEF, 0xBF, 0xBE])
                    || raw[i..].starts_with(&[0xEF, 0xBF, 0xBF])
                {
                    return Err(XmlError::NotWellFormed("character U+FFFE or U+FFFF".into()));
                }
                i += 1;
            }
            b if is_forbidden_control(b) => {
                return Err(XmlError::NotWellFormed(format!(
                    "control character 0x{b:02x}"
                )));
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[start..]);
    Ok(())
}

/// Appends the replacement of the reference `&name;`: a character reference or one of the
/// five predefined entities; any other entity is restricted XML (RFC 6120 §11.1).
fn resolve_ref(name: &str, out: &mut String) -> Result<(), XmlError> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => {
                num.parse::<u32>().ok()
            }
            _ => None,
        };
        return match code.and_then(char::from_u32).filter(|&c| is_xml_char(c)) {
            Some(c) => {
                out.push(c);
                Ok(())
            }
            None => Err(XmlError::NotWellFormed(format!(
                "invalid character reference &{name};"
            ))),
        };
    }
    out.push_str(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ if is_ncname(name) => {
            return Err(XmlError::Restricted(
                "entity reference other than the predefined ones",
            ));
        }
        _ => {
            return Err(XmlError::NotWellFormed(format!(
                "malformed reference &{name};"
            )));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='cusax.test' version='1.0'>\
        <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>\n \
        <message to='a@b/c' type='chat' id=\"m&amp;1\"><body>hi &lt;there&gt; &#x263A;&#65;</body>\
        <x:y xmlns:x='urn:x' x:k='v'><![CDATA[<raw>&]]></x:y></message>\
        <presence/></stream:stream>";

    fn all(p: &mut StreamParser) -> Result<Vec<XmlEvent>, XmlError> {
        let mut v = Vec::new();
        while let Some(e) = p.next_event()? {
            v.push(e);
        }
        Ok(v)
    }

    fn parse(s: &[u8]) -> Result<Vec<XmlEvent>, XmlError> {
        let mut p = StreamParser::new(XmlLimits::default());
        p.feed(s);
        all(&mut p)
    }

    fn stanza_err(s: &str) -> XmlError {
        let mut doc = "<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams'>"
            .to_owned();
        doc.push_str(s);
        parse(doc.as_bytes()).expect_err("must fail")
    }

    #[test]
    fn sample_stream() {
        let ev = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(ev.len(), 5, "{ev:?}");
        assert_eq!(ev[0].header_attr("id"), Some("s1"));
        let XmlEvent::Stanza(f) = &ev[1] else {
            panic!()
        };
        assert!(f.is("features", NS_STREAMS));
        assert!(
            f.child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
                .and_then(|s| s.child("required", "urn:ietf:params:xml:ns:xmpp-tls"))
                .is_some()
        );
        let XmlEvent::Stanza(m) = &ev[2] else {
            panic!()
        };
        assert!(m.is("message", NS_CLIENT));
        assert_eq!(m.attr("id"), Some("m&1"));
        assert_eq!(
            m.child("body", NS_CLIENT).unwrap().text(),
            "hi <there> \u{263A}A"
        );
        let y = m.child("y", "urn:x").unwrap();
        assert_eq!(y.attr("x:k"), Some("v"));
        assert_eq!(y.text(), "<raw>&");
        let XmlEvent::Stanza(p) = &ev[3] else {
            panic!()
        };
        assert!(p.is("presence", NS_CLIENT));
        assert_eq!(ev[4], XmlEvent::StreamClose);
    }

    #[test]
    fn split_at_every_offset() {
        let whole = parse(SAMPLE.as_bytes()).unwrap();
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            let mut p = StreamParser::new(XmlLimits::default());
            p.feed(&bytes[..i]);
            let mut ev = all(&mut p).unwrap();
            p.feed(&bytes[i..]);
            ev.extend(all(&mut p).unwrap());
            assert_eq!(ev, whole, "split at {i}");
        }
        // And byte by byte.
        let mut p = StreamParser::new(XmlLimits::default());
        let mut ev = Vec::new();
        for b in bytes {
            p.feed(std::slice::from_ref(b));
            ev.extend(all(&mut p).unwrap());
        }
        assert_eq!(ev, whole);
    }

    #[test]
    fn restricted_constructs() {
        for (doc, cond) in [
            ("<!-- c --><presence/>", "restricted-xml"),
            ("<presence><!-- c --></presence>", "restricted-xml"),
            ("<?foo bar?>", "restricted-xml"),
            ("<presence><?foo?></presence>", "restricted-xml"),
            ("<!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"),
            ("<message><body>&foo;</body></message>", "restricted-xml"),
            ("<message a='&foo;'/>", "restricted-xml"),
            ("<message><body>&#0;</body></message>", "not-well-formed"),
            ("<message><body>a\u{1}b</body></message>", "not-well-formed"),
            ("<message></presence>", "not-well-formed"),
            ("<message a='1' a='2'/>", "not-well-formed"),
            ("text", "not-well-formed"),
            ("<p:message/>", "bad-namespace-prefix"),
            ("<message p:a='1'/>", "bad-namespace-prefix"),
            ("</stream:foo>", "not-well-formed"),
            ("<message a=1/>", "not-well-formed"),
        ] {
            assert_eq!(stanza_err(doc).stream_error_condition(), cond, "{doc}");
        }
        // XML declaration only before the header.
        let e = parse(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><?xml version='1.0'?>",
        )
        .unwrap_err();
        assert_eq!(e, XmlError::Restricted("processing instruction"));
        let e = parse(b"<!DOCTYPE stream><stream:stream>").unwrap_err();
        assert_eq!(e.stream_error_condition(), "restricted-xml");
    }

    #[test]
    fn invalid_utf8_and_namespace() {
        let mut d =
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><message><body>"
                .to_vec();
        d.extend_from_slice(&[0xff, 0xfe]);
        d.extend_from_slice(b"</body></message>");
        assert_eq!(parse(&d).unwrap_err(), XmlError::InvalidUtf8);
        let e = parse(b"<stream:stream xmlns:stream='urn:wrong'>").unwrap_err();
        assert_eq!(e.stream_error_condition(), "invalid-namespace");
        let e = parse(b"<stream xmlns='jabber:client'>").unwrap_err();
        assert_eq!(e.stream_error_condition(), "invalid-namespace");
    }

    #[test]
    fn limits() {
        let limits = XmlLimits {
            max_stanza_size: 100,
            max_depth: 3,
            max_attributes: 2,
            max_buffered: 200,
        };
        let head = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>";
        let run = |s: &str| {
            let mut p = StreamParser::new(limits.clone());
            p.feed(head.as_bytes());
            p.feed(s.as_bytes());
            all(&mut p)
        };
        assert_eq!(
            run("<a><b><c/></b></a>").unwrap().len(),
            2,
            "depth 3 is fine"
        );
        assert_eq!(
            run("<a><b><c><d/></c></b></a>").unwrap_err(),
            XmlError::TooDeep { limit: 3 }
        );
        assert_eq!(
            run("<a><b><c><d>").unwrap_err(),
            XmlError::TooDeep { limit: 3 }
        );
        assert_eq!(
            run("<a x='1' y='2' z='3'/>").unwrap_err(),
            XmlError::TooManyAttributes { limit: 2 }
        );
        let big = format!("<a>{}</a>", "x".repeat(200));
        assert_eq!(
            run(&big).unwrap_err(),
            XmlError::StanzaTooLarge { limit: 100 }
        );
        // Incomplete and too large: detected before the end arrives.
        assert_eq!(
            run(&big[..150]).unwrap_err(),
            XmlError::StanzaTooLarge { limit: 100 }
        );
        let spaces = " ".repeat(500);
        assert!(run(&spaces).unwrap().len() == 1);
        let long_tag = format!("<a b='{}", "y".repeat(300));
        assert!(matches!(
            run(&long_tag).unwrap_err(),
            XmlError::BufferLimit { .. } | XmlError::StanzaTooLarge { .. }
        ));
    }

    #[test]
    fn eof_inside_stream_is_open() {
        let mut p = StreamParser::new(XmlLimits::default());
        p.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><presence/>");
        assert_eq!(all(&mut p).unwrap().len(), 2);
        assert!(p.is_open());
        p.feed(b"</stream:stream>");
        assert_eq!(all(&mut p).unwrap(), vec![XmlEvent::StreamClose]);
        assert!(p.is_closed());
        p.feed(b"<x/>");
        assert!(p.next_event().is_err());
    }

    #[test]
    fn consumed_bytes_are_not_kept() {
        let mut p = StreamParser::new(XmlLimits::default());
        p.feed(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><message><body>hel",
        );
        assert_eq!(all(&mut p).unwrap().len(), 1);
        assert!(p.in_stanza());
        // Only the incomplete text token is buffered; the open elements are a tree.
        assert_eq!(p.buffered(), 3);
        p.feed(&[b'l', 0xC3]);
        assert_eq!(all(&mut p).unwrap(), vec![]);
        assert_eq!(p.buffered(), 5, "a split UTF-8 sequence waits for its end");
        p.feed(&[0xA9]);
        p.feed(b"</body></message>");
        let ev = all(&mut p).unwrap();
        let [XmlEvent::Stanza(m)] = &ev[..] else {
            panic!("{ev:?}")
        };
        assert_eq!(
            m.child("body", NS_CLIENT).map(Element::text),
            Some("hellé".into())
        );
        assert!(!p.in_stanza());
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn errors_are_sticky() {
        let mut p = StreamParser::new(XmlLimits::default());
        p.feed(b"<!-- x -->");
        let e = p.next_event().unwrap_err();
        p.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>");
        assert_eq!(p.next_event().unwrap_err(), e);
    }

    #[test]
    fn default_namespace_is_client_and_undeclaration_works() {
        let ev = parse(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>\
              <iq><query xmlns='jabber:iq:roster'><item xmlns=''/></query></iq>",
        )
        .unwrap();
        let XmlEvent::Stanza(iq) = &ev[1] else {
            panic!()
        };
        assert_eq!(iq.ns, NS_CLIENT);
        let q = iq.child("query", "jabber:iq:roster").unwrap();
        assert!(q.child("item", "").is_some());
    }
}
