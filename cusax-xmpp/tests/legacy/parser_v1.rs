//! The stream parser as it was before the single-pass rewrite (cusax-xmpp 3baa781,
//! `src/xml/parser.rs`): a quote-aware tokenizer finding depth-1 element ends, then
//! quick-xml parsing each element again. Kept verbatim (types imported from the crate)
//! as the reference the new parser is compared with in `tests/xml_equivalence.rs`.
#![allow(dead_code)]

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use cusax_xmpp::xml::element::{Element, Node};
use cusax_xmpp::xml::parser::{NS_CLIENT, NS_STREAMS, XmlError, XmlEvent, XmlLimits};

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the stream header; `xml_decl_allowed` while nothing has been seen yet.
    Prolog {
        xml_decl_allowed: bool,
    },
    InStream,
    Closed,
}

/// Namespace bindings: (prefix, uri); prefix "" is the default namespace.
type Bindings = Vec<(String, String)>;

/// The incremental restricted-XML stream parser. See the [module docs](self).
#[derive(Debug)]
pub struct LegacyParser {
    limits: XmlLimits,
    buf: Vec<u8>,
    /// Everything before `pos` has been turned into events.
    pos: usize,
    /// Tokenizer position (start of the next unexamined token).
    scan: usize,
    /// Depth inside the current depth-1 element (0 between stanzas).
    depth: usize,
    state: State,
    /// Bindings declared on the stream header.
    stream_ns: Bindings,
    /// The stream element's qualified name as written (`stream:stream`).
    stream_qname: String,
    failed: Option<XmlError>,
}

enum Step {
    /// Need more bytes.
    More,
    /// Go on scanning.
    Continue,
    Event(XmlEvent),
}

impl LegacyParser {
    /// A parser for a new stream (after a stream restart, make a new one: RFC 6120 §4.3.3).
    pub fn new(limits: XmlLimits) -> Self {
        LegacyParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            depth: 0,
            state: State::Prolog {
                xml_decl_allowed: true,
            },
            stream_ns: Vec::new(),
            stream_qname: String::new(),
            failed: None,
        }
    }

    /// Appends received bytes. Limits are checked by [`next_event`](Self::next_event).
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= 64 * 1024) {
            self.buf.drain(..self.pos);
            self.scan -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
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

    /// Bytes received but not yet turned into events.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
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
                Err(e)
            }
        }
    }

    fn run(&mut self) -> Result<Option<XmlEvent>, XmlError> {
        loop {
            if self.depth > 0 && self.scan - self.pos > self.limits.max_stanza_size {
                return Err(XmlError::StanzaTooLarge {
                    limit: self.limits.max_stanza_size,
                });
            }
            match self.step()? {
                Step::Event(ev) => return Ok(Some(ev)),
                Step::Continue => {}
                Step::More => {
                    if self.buf.len() - self.pos > self.limits.max_buffered {
                        return Err(XmlError::BufferLimit {
                            limit: self.limits.max_buffered,
                        });
                    }
                    if self.depth > 0 && self.buf.len() - self.pos > self.limits.max_stanza_size {
                        return Err(XmlError::StanzaTooLarge {
                            limit: self.limits.max_stanza_size,
                        });
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn step(&mut self) -> Result<Step, XmlError> {
        let Some(&first) = self.buf.get(self.scan) else {
            return Ok(Step::More);
        };
        if self.state == State::Closed {
            if first.is_ascii_whitespace() {
                self.scan += 1;
                self.pos = self.scan;
                return Ok(Step::Continue);
            }
            return Err(XmlError::NotWellFormed(
                "data after </stream:stream>".into(),
            ));
        }
        if first != b'<' {
            if self.depth == 0 {
                // Between stanzas only whitespace (keep-alives, RFC 6120 §4.6.1) is allowed.
                if matches!(first, b' ' | b'\t' | b'\r' | b'\n') {
                    self.scan += 1;
                    self.pos = self.scan;
                    return Ok(Step::Continue);
                }
                return Err(XmlError::NotWellFormed(
                    "character data outside a stanza".into(),
                ));
            }
            // Character data inside a stanza: skip to the next '<'.
            let rest = &self.buf[self.scan..];
            let n = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
            check_bytes(&rest[..n])?;
            self.scan += n;
            return Ok(if n == rest.len() {
                Step::More
            } else {
                Step::Continue
            });
        }
        let rest = &self.buf[self.scan..];
        let Some(&second) = rest.get(1) else {
            return Ok(Step::More);
        };
        match second {
            b'?' => {
                let Some(end) = find(rest, b"?>") else {
                    return Ok(Step::More);
                };
                let is_decl = rest.len() > 6
                    && rest.starts_with(b"<?xml")
                    && matches!(rest.get(5), Some(b' ' | b'\t' | b'\r' | b'\n'));
                if matches!(
                    self.state,
                    State::Prolog {
                        xml_decl_allowed: true
                    }
                ) && is_decl
                {
                    for &b in &rest[..end + 2] {
                        check_byte(b)?;
                    }
                    self.scan += end + 2;
                    self.pos = self.scan;
                    self.state = State::Prolog {
                        xml_decl_allowed: false,
                    };
                    return Ok(Step::Continue);
                }
                Err(XmlError::Restricted("processing instruction"))
            }
            b'!' => {
                const CDATA: &[u8] = b"<![CDATA[";
                const COMMENT: &[u8] = b"<!--";
                let n = rest.len().min(CDATA.len());
                if rest[..n] == CDATA[..n] {
                    if n < CDATA.len() {
                        return Ok(Step::More);
                    }
                    if self.depth == 0 {
                        return Err(XmlError::NotWellFormed(
                            "CDATA section outside a stanza".into(),
                        ));
                    }
                    let Some(end) = find(&rest[CDATA.len()..], b"]]>") else {
                        return Ok(Step::More);
                    };
                    for &b in &rest[..CDATA.len() + end] {
                        check_byte(b)?;
                    }
                    self.scan += CDATA.len() + end + 3;
                    return Ok(Step::Continue);
                }
                let n = rest.len().min(COMMENT.len());
                if rest[..n] == COMMENT[..n] && n < COMMENT.len() {
                    return Ok(Step::More);
                }
                if rest.starts_with(COMMENT) {
                    Err(XmlError::Restricted("comment"))
                } else {
                    Err(XmlError::Restricted("DOCTYPE or markup declaration"))
                }
            }
            b'/' => {
                let Some(end) = find_tag_end(rest)? else {
                    return Ok(Step::More);
                };
                let tag_end = self.scan + end + 1;
                if self.depth == 0 {
                    if self.state != State::InStream {
                        return Err(XmlError::NotWellFormed(
                            "end tag before the stream header".into(),
                        ));
                    }
                    let name = std::str::from_utf8(&rest[2..end])
                        .map_err(|_| XmlError::InvalidUtf8)?
                        .trim_end();
                    if name != self.stream_qname {
                        return Err(XmlError::NotWellFormed(format!(
                            "end tag </{name}> does not match <{}>",
                            self.stream_qname
                        )));
                    }
                    self.scan = tag_end;
                    self.pos = tag_end;
                    self.state = State::Closed;
                    return Ok(Step::Event(XmlEvent::StreamClose));
                }
                self.scan = tag_end;
                self.depth -= 1;
                if self.depth == 0 {
                    return self.finish_element().map(Step::Event);
                }
                Ok(Step::Continue)
            }
            _ => {
                let Some(end) = find_tag_end(rest)? else {
                    return Ok(Step::More);
                };
                let self_closing = end > 1 && rest[end - 1] == b'/';
                let tag_end = self.scan + end + 1;
                if let State::Prolog { .. } = self.state {
                    if self_closing {
                        return Err(XmlError::NotWellFormed(
                            "the stream header must not be an empty element".into(),
                        ));
                    }
                    let ev = self.stream_header(self.scan, tag_end)?;
                    self.scan = tag_end;
                    self.pos = tag_end;
                    self.state = State::InStream;
                    return Ok(Step::Event(ev));
                }
                self.scan = tag_end;
                if self_closing {
                    if self.depth == 0 {
                        return self.finish_element().map(Step::Event);
                    }
                    if self.depth + 1 > self.limits.max_depth {
                        return Err(XmlError::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                    return Ok(Step::Continue);
                }
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(XmlError::TooDeep {
                        limit: self.limits.max_depth,
                    });
                }
                Ok(Step::Continue)
            }
        }
    }

    fn stream_header(&mut self, from: usize, to: usize) -> Result<XmlEvent, XmlError> {
        let text = std::str::from_utf8(&self.buf[from..to]).map_err(|_| XmlError::InvalidUtf8)?;
        let mut reader = Reader::from_str(text);
        let start = match reader.read_event().map_err(map_qx)? {
            Event::Start(s) => s,
            _ => return Err(XmlError::NotWellFormed("bad stream header".into())),
        };
        let mut scope: Bindings = Vec::new();
        let mut attrs = Vec::new();
        read_attrs(&start, &self.limits, &mut scope, &mut attrs)?;
        let qname = start.name().as_ref().to_owned();
        let (prefix, local) = split_qname(&qname);
        let ns = resolve(&scope, prefix)?;
        if local != "stream" || ns != NS_STREAMS {
            return Err(XmlError::InvalidNamespace(qname));
        }
        let ns_decls = scope.clone();
        if !scope.iter().any(|(p, _)| p.is_empty()) {
            scope.push((String::new(), NS_CLIENT.to_owned()));
        }
        self.stream_ns = scope;
        self.stream_qname = qname;
        Ok(XmlEvent::StreamOpen { attrs, ns_decls })
    }

    fn finish_element(&mut self) -> Result<XmlEvent, XmlError> {
        if self.scan - self.pos > self.limits.max_stanza_size {
            return Err(XmlError::StanzaTooLarge {
                limit: self.limits.max_stanza_size,
            });
        }
        let bytes = &self.buf[self.pos..self.scan];
        let text = std::str::from_utf8(bytes).map_err(|_| XmlError::InvalidUtf8)?;
        let el = build_element(text, &self.stream_ns, &self.limits)?;
        self.pos = self.scan;
        Ok(XmlEvent::Stanza(el))
    }
}

/// Refuses control characters that XML 1.0 does not allow (§2.2 `Char`).
#[inline]
fn check_byte(b: u8) -> Result<(), XmlError> {
    if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
        return Err(XmlError::NotWellFormed(format!(
            "control character 0x{b:02x}"
        )));
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Refuses control characters in a run of bytes (vectorisable fast path).
#[inline]
fn check_bytes(bytes: &[u8]) -> Result<(), XmlError> {
    if bytes.iter().any(|&b| b < 0x20) {
        for &b in bytes {
            check_byte(b)?;
        }
    }
    Ok(())
}

/// Index of the `>` ending the tag that starts at `rest[0] == '<'`, respecting quotes.
fn find_tag_end(rest: &[u8]) -> Result<Option<usize>, XmlError> {
    let mut i = 1;
    while let Some(off) = rest.get(i..).and_then(|r| {
        r.iter()
            .position(|&b| matches!(b, b'>' | b'"' | b'\'' | b'<'))
    }) {
        let at = i + off;
        check_bytes(&rest[i..at])?;
        match rest[at] {
            b'>' => return Ok(Some(at)),
            b'<' => return Err(XmlError::NotWellFormed("'<' inside a tag".into())),
            q => {
                // Skip the quoted value.
                let Some(close) = rest[at + 1..].iter().position(|&b| b == q) else {
                    check_bytes(&rest[at + 1..])?;
                    return Ok(None);
                };
                let value = &rest[at + 1..at + 1 + close];
                check_bytes(value)?;
                if value.contains(&b'<') {
                    return Err(XmlError::NotWellFormed("'<' in an attribute value".into()));
                }
                i = at + close + 2;
            }
        }
    }
    check_bytes(rest.get(1..).unwrap_or_default())?;
    Ok(None)
}

fn split_qname(q: &str) -> (&str, &str) {
    match q.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", q),
    }
}

fn resolve<'a>(scope: &'a Bindings, prefix: &str) -> Result<&'a str, XmlError> {
    resolve2(scope, &[], prefix)
}

/// Resolves `prefix` in the element scope `inner`, then in the stream scope `outer`.
fn resolve2<'a>(
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

fn map_qx(e: quick_xml::Error) -> XmlError {
    use quick_xml::escape::EscapeError;
    match e {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(..)) => {
            XmlError::Restricted("entity reference other than the predefined ones")
        }
        other => XmlError::NotWellFormed(other.to_string()),
    }
}

/// Reads the attributes of `start`: namespace declarations go to `scope`, the rest to
/// `attrs` (values unescaped).
fn read_attrs(
    start: &BytesStart<'_>,
    limits: &XmlLimits,
    scope: &mut Bindings,
    attrs: &mut Vec<(String, String)>,
) -> Result<(), XmlError> {
    for (count, a) in start.attributes().enumerate() {
        if count >= limits.max_attributes {
            return Err(XmlError::TooManyAttributes {
                limit: limits.max_attributes,
            });
        }
        let a = a.map_err(|e| map_qx(e.into()))?;
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(map_qx)?;
        // Raw bytes were checked by the tokenizer; only references can add bad characters.
        if matches!(value, std::borrow::Cow::Owned(_)) && value.chars().any(|c| !is_xml_char(c)) {
            return Err(XmlError::NotWellFormed(
                "invalid character in attribute".into(),
            ));
        }
        let key = a.key.as_ref();
        if key == "xmlns" {
            scope.push((String::new(), value.into_owned()));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            if value.is_empty() || p == "xmlns" || p == "xml" {
                return Err(XmlError::NotWellFormed(format!(
                    "invalid declaration of prefix {p:?}"
                )));
            }
            scope.push((p.to_owned(), value.into_owned()));
        } else {
            attrs.push((key.to_owned(), value.into_owned()));
        }
    }
    Ok(())
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn push_text(el: &mut Element, s: &str) {
    if s.is_empty() {
        return;
    }
    if let Some(Node::Text(t)) = el.children.last_mut() {
        t.push_str(s);
    } else {
        el.children.push(Node::Text(s.to_owned()));
    }
}

/// Builds the element tree of one complete depth-1 element with quick-xml.
fn build_element(text: &str, base: &Bindings, limits: &XmlLimits) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    // Declarations made inside this element; the stream's are looked up in `base`.
    let mut scope: Bindings = Vec::new();
    // (element, scope length before its declarations)
    let mut stack: Vec<(Element, usize)> = Vec::new();
    loop {
        let ev = reader.read_event().map_err(map_qx)?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let mark = scope.len();
                let mut attrs = Vec::new();
                read_attrs(s, limits, &mut scope, &mut attrs)?;
                let qname = s.name();
                let (prefix, local) = split_qname(qname.as_ref());
                if local.is_empty() || local.contains(':') {
                    return Err(XmlError::NotWellFormed("bad element name".into()));
                }
                for (k, _) in &attrs {
                    let (p, _) = split_qname(k);
                    if !p.is_empty() {
                        resolve2(&scope, base, p)?;
                    }
                }
                let ns = resolve2(&scope, base, prefix)?.to_owned();
                let el = Element {
                    name: local.to_owned(),
                    ns,
                    attrs,
                    children: Vec::new(),
                };
                if matches!(ev, Event::Start(_)) {
                    stack.push((el, mark));
                } else {
                    scope.truncate(mark);
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(Node::Element(el)),
                        None => return Ok(el),
                    }
                }
            }
            Event::End(_) => {
                let Some((el, mark)) = stack.pop() else {
                    return Err(XmlError::NotWellFormed("unbalanced end tag".into()));
                };
                scope.truncate(mark);
                match stack.last_mut() {
                    Some((parent, _)) => parent.children.push(Node::Element(el)),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                let Some((el, _)) = stack.last_mut() else {
                    return Err(XmlError::NotWellFormed("text outside an element".into()));
                };
                push_text(el, &t.xml10_content());
            }
            Event::CData(c) => {
                let Some((el, _)) = stack.last_mut() else {
                    return Err(XmlError::NotWellFormed("CDATA outside an element".into()));
                };
                push_text(el, &c);
            }
            Event::GeneralRef(r) => {
                let Some((el, _)) = stack.last_mut() else {
                    return Err(XmlError::NotWellFormed(
                        "reference outside an element".into(),
                    ));
                };
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => {
                            let mut b = [0u8; 4];
                            push_text(el, c.encode_utf8(&mut b));
                        }
                        _ => {
                            return Err(XmlError::NotWellFormed(
                                "invalid character reference".into(),
                            ));
                        }
                    }
                } else {
                    let s = match &*r {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "apos" => "'",
                        "quot" => "\"",
                        _ => {
                            return Err(XmlError::Restricted(
                                "entity reference other than the predefined ones",
                            ));
                        }
                    };
                    push_text(el, s);
                }
            }
            Event::Comment(_) => return Err(XmlError::Restricted("comment")),
            Event::PI(_) | Event::Decl(_) => {
                return Err(XmlError::Restricted("processing instruction"));
            }
            Event::DocType(_) => return Err(XmlError::Restricted("DOCTYPE")),
            Event::Eof => return Err(XmlError::NotWellFormed("truncated element".into())),
        }
    }
}
