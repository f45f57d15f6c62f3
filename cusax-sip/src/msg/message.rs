//! Requests, responses, the message parser (RFC 3261 §7, §25) and printing.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use bytestring::ByteString;

use super::headers::{Headers, header_id_bytes, long_name};
use super::lex::{is_token, is_token_byte, trim_sp};
use super::method::Method;
use super::types::HeaderError;
use super::uri::{Uri, UriError};

/// Size limits applied while parsing (no input can make the parser allocate without bound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message (start line + headers + body), in bytes. Default 64 KiB.
    pub max_message_size: usize,
    /// Most header lines. Default 256.
    pub max_header_count: usize,
    /// Longest line (a folded header counts each physical line). Default 8 KiB.
    pub max_line_length: usize,
    /// Most Via values (header lines and comma-separated values together). Default 64.
    pub max_via_count: usize,
    /// Largest body. Default 64 KiB.
    pub max_body_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_header_count: 256,
            max_line_length: 8 * 1024,
            max_via_count: 64,
            max_body_size: 64 * 1024,
        }
    }
}

/// Why a message could not be parsed. Every variant says what and, where useful, where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty (or only CRLFs).
    #[error("empty message")]
    Empty,
    /// The message is larger than [`Limits::max_message_size`].
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is larger than [`Limits::max_body_size`].
    #[error("body of {size} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// Size of the body.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More header lines than [`Limits::max_header_count`].
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// A line is longer than [`Limits::max_line_length`].
    #[error("line {line} is longer than {limit} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// More Via values than [`Limits::max_via_count`].
    #[error("more than {limit} Via values")]
    TooManyVias {
        /// The limit.
        limit: usize,
    },
    /// The header section is not ended by an empty line (RFC 3261 §7).
    #[error("header section is not terminated by an empty line")]
    NoEndOfHeaders,
    /// The start line or header section is not UTF-8 (RFC 3261 §7: SIP text is UTF-8).
    #[error("start line or header section is not UTF-8 (at byte {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid octet.
        offset: usize,
    },
    /// The start line is neither `Method SP Request-URI SP SIP-Version` nor
    /// `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §7.1, §7.2).
    #[error("malformed start line: {reason}")]
    BadStartLine {
        /// What is wrong.
        reason: &'static str,
    },
    /// The SIP version is not 2.0 (answer 505, RFC 3261 §21.5.7).
    #[error("unsupported SIP version {version}")]
    UnsupportedVersion {
        /// The version as written.
        version: String,
    },
    /// The Request-URI is malformed.
    #[error("malformed Request-URI: {source}")]
    BadRequestUri {
        /// What is wrong.
        #[source]
        source: UriError,
    },
    /// The status code is not three digits in 100..=699.
    #[error("status code is not in 100..=699")]
    BadStatusCode,
    /// A header line is malformed (no colon, bad name, bad value).
    #[error("malformed header {name:?} on line {line}: {reason}")]
    BadHeader {
        /// 1-based line number.
        line: usize,
        /// The header name as written (empty when it could not be read).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Content-Length says more bytes than the message carries (RFC 3261 §18.3).
    #[error("Content-Length {declared} exceeds the {available} bytes available")]
    BodyLengthMismatch {
        /// Content-Length value.
        declared: usize,
        /// Bytes after the header section.
        available: usize,
    },
}

impl ParseError {
    /// A reason phrase for an error response (one line, no CR/LF).
    pub fn reason(&self) -> String {
        self.to_string()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }

    /// The status a server answers with when it can (RFC 3261 §21): 505 for an unknown
    /// version, 513 for an oversized message, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::UnsupportedVersion { .. } => 505,
            ParseError::TooLarge { .. } | ParseError::BodyTooLarge { .. } => 513,
            _ => 400,
        }
    }
}

/// A SIP request (RFC 3261 §7.1).
///
/// The Request-URI of a parsed request is validated by the parser but built (as an owned
/// [`Uri`]) only on the first call of [`Request::uri`]: most requests are routed by their
/// headers and never need it.
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI of a built request, or of a parsed one after [`Request::uri_mut`].
    uri: Option<Box<Uri>>,
    /// The Request-URI of a parsed request, once built by [`Request::uri`] (boxed: most
    /// parsed requests never build it, and a `Request` stays small).
    lazy_uri: OnceLock<Box<Uri>>,
    /// For a parsed request: the (validated) Request-URI text, a slice of the received
    /// message, parsed on demand.
    uri_src: Option<ByteString>,
    /// The header fields.
    pub headers: Headers,
    /// The body (exactly Content-Length bytes once parsed).
    pub body: Bytes,
}

impl PartialEq for Request {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.uri() == other.uri()
            && self.headers == other.headers
            && self.body == other.body
    }
}

impl Eq for Request {}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", self.uri())
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

impl Request {
    /// A request with no header and no body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri: Some(Box::new(uri)),
            lazy_uri: OnceLock::new(),
            uri_src: None,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// The Request-URI (RFC 3261 §7.1). For a parsed request it is built from the received
    /// text on the first call (the parser has already validated it).
    pub fn uri(&self) -> &Uri {
        match &self.uri {
            Some(u) => u,
            None => self
                .lazy_uri
                .get_or_init(|| Box::new(build_uri(self.uri_src.as_ref()))),
        }
    }

    /// The Request-URI, mutable (built first if needed, see [`Request::uri`]).
    pub fn uri_mut(&mut self) -> &mut Uri {
        let lazy = self.lazy_uri.take();
        let src = self.uri_src.take();
        self.uri
            .get_or_insert_with(|| lazy.unwrap_or_else(|| Box::new(build_uri(src.as_ref()))))
    }

    /// Replaces the Request-URI.
    pub fn set_uri(&mut self, uri: Uri) {
        self.uri = Some(Box::new(uri));
        self.lazy_uri = OnceLock::new();
        self.uri_src = None;
    }

    /// The length of [`Request::to_bytes`]'s output, without printing the headers and
    /// body.
    pub fn printed_len(&self) -> usize {
        let cl = if self.headers.contains("Content-Length") {
            0
        } else {
            "Content-Length: \r\n".len() + decimal_len(self.body.len())
        };
        self.method.as_str().len()
            + 1
            + self.uri().to_string().len()
            + " SIP/2.0\r\n".len()
            + self.headers.printed_len()
            + cl
            + 2
            + self.body.len()
    }

    /// Prints the request. Nothing is added except `Content-Length: <body length>` when the
    /// message has no Content-Length header.
    pub fn to_bytes(&self) -> Bytes {
        let uri = self.uri().to_string();
        let mut out = Vec::with_capacity(
            self.method.as_str().len()
                + uri.len()
                + 12
                + self.headers.printed_len()
                + 24
                + self.body.len(),
        );
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(uri.as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        finish(&self.headers, &self.body, &mut out);
        Bytes::from(out)
    }
}

/// Builds the owned Request-URI of a parsed request from its validated text.
fn build_uri(src: Option<&ByteString>) -> Uri {
    src.and_then(|u| Uri::parse(u).ok())
        // not reached: the parser stored a range it had validated
        .unwrap_or_else(|| Uri::sip(None, super::uri::Host::Domain(String::new())))
}

/// A SIP response (RFC 3261 §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code (100..=699).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// A response with no header and no body.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Prints the response (see [`Request::to_bytes`]).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(
            self.reason.len() + 16 + self.headers.printed_len() + 24 + self.body.len(),
        );
        out.extend_from_slice(b"SIP/2.0 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        finish(&self.headers, &self.body, &mut out);
        Bytes::from(out)
    }

    /// True for 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

/// Digits of `n` in decimal.
fn decimal_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

fn finish(headers: &Headers, body: &Bytes, out: &mut Vec<u8>) {
    headers.write_to(out);
    if !headers.contains("Content-Length") {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The standard reason phrase of a status code (RFC 3261 §21 and extensions).
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        _ => match status / 100 {
            1 => "Trying",
            2 => "OK",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl From<Request> for SipMessage {
    fn from(r: Request) -> Self {
        SipMessage::Request(r)
    }
}

impl From<Response> for SipMessage {
    fn from(r: Response) -> Self {
        SipMessage::Response(r)
    }
}

/// A semantic problem found by [`SipMessage::validate`]: the message parsed, but a UA
/// should answer a request carrying it with 400 (RFC 3261 §8.2, RFC 4475 §3.1.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Defect {
    /// A header is missing, repeated or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch {
        /// The request method.
        method: String,
        /// The CSeq method.
        cseq: String,
    },
}

impl Defect {
    /// The long name of the header at fault.
    pub fn header(&self) -> &'static str {
        match self {
            Defect::Header(h) => h.header(),
            Defect::CSeqMethodMismatch { .. } => "CSeq",
        }
    }
}

impl SipMessage {
    /// Parses one message from a datagram (or a frame cut by
    /// [`StreamFramer`](super::framing::StreamFramer)) with the default [`Limits`].
    pub fn parse(input: Bytes) -> Result<SipMessage, ParseError> {
        Self::parse_with_limits(input, &Limits::default())
    }

    /// Parses one message.
    ///
    /// * CRLFs before the start line are skipped (RFC 3261 §7.5); lines may end in CRLF or
    ///   a bare LF; folded header lines (RFC 3261 §7.3.1) are joined with spaces.
    /// * The start line and header section must be UTF-8 ([`ParseError::NotUtf8`]); the
    ///   body is opaque bytes.
    /// * The body is exactly Content-Length bytes: extra bytes (a datagram's trailing
    ///   octets, RFC 4475 §3.1.1.8) are discarded; a Content-Length larger than what is
    ///   available is [`ParseError::BodyLengthMismatch`]. Without Content-Length the body
    ///   is the rest of the input (datagram rule, RFC 3261 §18.3).
    /// * Header values are only checked structurally here (name, colon, Content-Length);
    ///   typed accessors and [`SipMessage::validate`] check the rest.
    pub fn parse_with_limits(input: Bytes, limits: &Limits) -> Result<SipMessage, ParseError> {
        parse_message(input, limits)
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }

    /// The header fields, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            SipMessage::Request(r) => &mut r.headers,
            SipMessage::Response(r) => &mut r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            SipMessage::Request(r) => &r.body,
            SipMessage::Response(r) => &r.body,
        }
    }

    /// Prints the message.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self, SipMessage::Request(_))
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            SipMessage::Request(r) => Some(r),
            SipMessage::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            SipMessage::Request(_) => None,
            SipMessage::Response(r) => Some(r),
        }
    }

    /// Checks what RFC 3261 §8.1.1 requires of every message and the header grammar of the
    /// fields a UA relies on; the first problem found is returned. A UAS answers a request
    /// that fails with 400 and the defect as reason phrase (RFC 3261 §8.2, RFC 4475 §3.1.2).
    ///
    /// Checked: exactly one From, To, Call-ID, CSeq (all well-formed); at least one
    /// well-formed Via; CSeq method equals the request method; Max-Forwards ≤ 255;
    /// Expires, Min-Expires and Contact `expires` fit in 32 bits; Contact, Route,
    /// Record-Route and Warning are well-formed; Date is in GMT (RFC 3261 §20.17).
    pub fn validate(&self) -> Result<(), Defect> {
        match self.defects().into_iter().next() {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    /// Every problem [`SipMessage::validate`] checks for, in order.
    pub fn defects(&self) -> Vec<Defect> {
        let h = self.headers();
        let mut out: Vec<Defect> = Vec::new();
        let mut check = |r: Result<(), HeaderError>| {
            if let Err(e) = r {
                out.push(Defect::Header(e));
            }
        };
        check(h.via().and_then(|v| {
            if v.is_empty() {
                Err(HeaderError::Missing { name: "Via" })
            } else {
                Ok(())
            }
        }));
        check(h.from().map(|_| ()));
        check(h.to().map(|_| ()));
        check(h.call_id().map(|_| ()));
        let cseq = h.cseq();
        check(cseq.as_ref().map(|_| ()).map_err(Clone::clone));
        check(h.max_forwards().and_then(|m| match m {
            Some(m) if m > 255 => Err(HeaderError::invalid("Max-Forwards", "greater than 255")),
            _ => Ok(()),
        }));
        check(h.expires().map(|_| ()));
        check(h.min_expires().map(|_| ()));
        check(h.contacts().and_then(|cs| {
            for c in &cs {
                if let Some(a) = c.addr()
                    && let Some(Some(e)) = a.params.get("expires")
                    && super::lex::parse_u32(e).is_none()
                {
                    return Err(HeaderError::invalid(
                        "Contact",
                        "expires parameter out of range",
                    ));
                }
            }
            Ok(())
        }));
        check(h.route().map(|_| ()));
        check(h.record_route().map(|_| ()));
        check(h.warning().map(|_| ()));
        if let Some(d) = h.get("Date")
            && !d.trim_end().ends_with(" GMT")
        {
            check(Err(HeaderError::invalid("Date", "time zone is not GMT")));
        }
        if let (SipMessage::Request(r), Ok(c)) = (self, &cseq)
            && c.method != r.method
        {
            out.push(Defect::CSeqMethodMismatch {
                method: r.method.to_string(),
                cseq: c.method.to_string(),
            });
        }
        out
    }
}

impl fmt::Display for SipMessage {
    /// The printed message, with a non-UTF-8 body shown lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Finds the next line from `pos`: returns (end of content, index after the line break).
fn next_line(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    let rel = super::lex::find_byte(b.get(pos..)?, b'\n')?;
    let nl = pos + rel;
    let end = if nl > pos && b.get(nl - 1) == Some(&b'\r') {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

const VIA_ID: u8 = super::headers::id::VIA;
const CONTENT_LENGTH_ID: u8 = super::headers::id::CONTENT_LENGTH;

/// Number of `c` in `b`.
fn count_byte(b: &[u8], c: u8) -> usize {
    let mut n = 0;
    let mut rest = b;
    while let Some(i) = super::lex::find_byte(rest, c) {
        n += 1;
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    n
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The `(start, end)` of each line of the start line and header section: on the stack
/// for an ordinary message, on the heap past [`Lines::INLINE`] lines.
struct Lines {
    inline: [(usize, usize); Lines::INLINE],
    n: usize,
    heap: Vec<(usize, usize)>,
}

impl Lines {
    const INLINE: usize = 40;

    fn new() -> Self {
        Lines {
            inline: [(0, 0); Lines::INLINE],
            n: 0,
            heap: Vec::new(),
        }
    }

    fn push(&mut self, l: (usize, usize)) {
        if self.heap.is_empty()
            && let Some(slot) = self.inline.get_mut(self.n)
        {
            *slot = l;
            self.n += 1;
            return;
        }
        if self.heap.is_empty() {
            self.heap
                .extend_from_slice(self.inline.get(..self.n).unwrap_or_default());
        }
        self.heap.push(l);
    }

    fn len(&self) -> usize {
        if self.heap.is_empty() {
            self.n
        } else {
            self.heap.len()
        }
    }

    fn as_slice(&self) -> &[(usize, usize)] {
        if self.heap.is_empty() {
            self.inline.get(..self.n).unwrap_or_default()
        } else {
            &self.heap
        }
    }
}

/// Number of SP / HTAB bytes at `b[i..]`.
fn skip_wsp(b: &[u8], i: usize) -> usize {
    let mut k = i;
    while b.get(k).copied().is_some_and(is_wsp) {
        k += 1;
    }
    k - i
}

/// The error for a header line whose name is not `token *(SP / HTAB) ":"`.
#[cold]
fn bad_name(l: &str, lineno: usize) -> ParseError {
    let Some(colon) = super::lex::find_byte(l.as_bytes(), b':') else {
        return ParseError::BadHeader {
            line: lineno,
            name: l.chars().take(32).collect(),
            reason: "missing colon",
        };
    };
    let name = trim_sp(l.get(..colon).unwrap_or(""));
    ParseError::BadHeader {
        line: lineno,
        name: name.chars().take(32).collect(),
        reason: "header name is not a token",
    }
}

fn parse_message(input: Bytes, limits: &Limits) -> Result<SipMessage, ParseError> {
    match parse_fast(input, limits) {
        Ok(done) => done,
        Err(input) => parse_general(input, limits),
    }
}

/// Headers the fast path takes (more go to the general path).
const FAST_MAX_HEADERS: usize = 32;

/// The parser's fast path, for the ordinary message: one pass over the header section
/// with nothing to undo later, for CRLF line ends, no folding, `name: value` with no space
/// before the colon, at most [`FAST_MAX_HEADERS`] headers, every limit respected and at
/// most one Content-Length. Anything else (every malformed message included) is handed
/// back untouched for [`parse_general`], which gives the same result for everything the
/// fast path takes: the tests compare both paths on the vectors and on mutants of them.
fn parse_fast(input: Bytes, limits: &Limits) -> Result<Result<SipMessage, ParseError>, Bytes> {
    let b: &[u8] = &input;
    if b.len() > limits.max_message_size
        || b.len() > u32::MAX as usize
        || matches!(b.first(), None | Some(b'\r' | b'\n'))
    {
        return Err(input);
    }
    // start line
    let Some(nl) = super::lex::find_byte(b, b'\n') else {
        return Err(input);
    };
    if nl == 0 || b.get(nl - 1) != Some(&b'\r') || nl - 1 > limits.max_line_length {
        return Err(input);
    }
    let sl_len = nl - 1;
    let mut head_end = sl_len;
    let mut pos = nl + 1;
    // (name start, name end, value start, value end, id, value has no comma)
    let mut found = [(0u32, 0u32, 0u32, 0u32, 0u8, false); FAST_MAX_HEADERS];
    let mut n = 0usize;
    let max_headers = limits.max_header_count.min(FAST_MAX_HEADERS);
    let mut via_count = 0usize;
    let mut cl_count = 0usize;
    let mut cl_line = 0usize;
    let body_start = loop {
        match b.get(pos) {
            Some(b'\r') if b.get(pos + 1) == Some(&b'\n') => break pos + 2,
            Some(&c) if super::lex::is_token_byte(c) => {}
            _ => return Err(input),
        }
        // name: a token right up to the colon (found eight bytes a step; a known name is a
        // token, any other is checked byte by byte)
        let rest = b.get(pos..).unwrap_or_default();
        let Some(ne) = super::lex::find_byte(rest, b':') else {
            return Err(input);
        };
        let name = rest.get(..ne).unwrap_or_default();
        let id = header_id_bytes(name);
        if id == 0 && !name.iter().all(|&c| super::lex::is_token_byte(c)) || n >= max_headers {
            return Err(input);
        }
        let vs = ne + 1 + skip_wsp(rest, ne + 1);
        let Some(lf) = rest.get(vs..).and_then(|r| super::lex::find_byte(r, b'\n')) else {
            return Err(input);
        };
        let le = vs + lf;
        // CRLF and within the line limit (a continuation line after it starts with SP or
        // HTAB, not a token byte: the next round hands the message over)
        if le == 0 || rest.get(le - 1) != Some(&b'\r') || le - 1 > limits.max_line_length {
            return Err(input);
        }
        let mut ve = le - 1;
        while ve > vs && rest.get(ve - 1).copied().is_some_and(is_wsp) {
            ve -= 1;
        }
        let mut no_comma = false;
        if id == VIA_ID {
            let commas = count_byte(rest.get(vs..ve).unwrap_or_default(), b',');
            via_count += 1 + commas;
            if via_count > limits.max_via_count {
                return Err(input);
            }
            no_comma = commas == 0;
        } else if id == CONTENT_LENGTH_ID {
            cl_count += 1;
            if cl_count > 1 {
                return Err(input);
            }
            // 1-based, the start line being line 1 (no folded lines here)
            cl_line = n + 2;
        }
        if let Some(slot) = found.get_mut(n) {
            // (offsets fit: the input is shorter than 4 GiB)
            *slot = (
                pos as u32,
                (pos + ne) as u32,
                (pos + vs) as u32,
                (pos + ve) as u32,
                id,
                no_comma,
            );
        }
        n += 1;
        head_end = pos + le - 1;
        pos += le + 1;
    };
    let head = match ByteString::try_from(input.slice(..head_end)) {
        Ok(h) => h,
        Err(_) => return Err(input),
    };
    let mut headers = Headers::with_buffer(head.clone(), n);
    for &(na, ne, va, ve, id, no_comma) in found.get(..n).unwrap_or_default() {
        headers.push_ranges(
            (na as usize, ne as usize),
            (va as usize, ve as usize),
            id,
            no_comma,
        );
    }
    // (from here on, both paths are the same code)
    Ok(finish_message(
        input,
        &head,
        sl_len,
        headers,
        body_start,
        (cl_count, [cl_line, 0]),
        limits,
    ))
}

/// The general path of the parser: every message, every error, in the order RFC 4475's
/// tests and [`ParseError`] document.
fn parse_general(input: Bytes, limits: &Limits) -> Result<SipMessage, ParseError> {
    if input.len() > limits.max_message_size {
        return Err(ParseError::TooLarge {
            size: input.len(),
            limit: limits.max_message_size,
        });
    }
    let b: &[u8] = &input;
    let mut pos = b
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .ok_or(ParseError::Empty)?;
    let start = pos;
    // Collect lines up to the empty line.
    let mut lines = Lines::new();
    let max_lines = limits.max_header_count.saturating_mul(4).saturating_add(1);
    let body_start = loop {
        let Some((end, next)) = next_line(b, pos) else {
            return Err(ParseError::NoEndOfHeaders);
        };
        if end - pos > limits.max_line_length {
            return Err(ParseError::LineTooLong {
                line: lines.len() + 1,
                limit: limits.max_line_length,
            });
        }
        if end == pos {
            break next;
        }
        if lines.len() >= max_lines {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_header_count,
            });
        }
        lines.push((pos, end));
        pos = next;
    };
    let lines = lines.as_slice();
    let head_end = lines.last().map_or(start, |l| l.1);
    // The header section, validated as UTF-8 once and shared (not copied) by the headers.
    let head =
        ByteString::try_from(input.slice(start..head_end)).map_err(|e| ParseError::NotUtf8 {
            offset: start + e.valid_up_to(),
        })?;
    let text: &str = &head;
    // `line(a, e)` gives the text of an absolute range (always inside `head`).
    let line = |a: usize, e: usize| text.get(a - start..e - start).unwrap_or("");

    let Some(&(sl_a, sl_e)) = lines.first() else {
        return Err(ParseError::Empty);
    };

    // Header section: the (validated) text, shared, not copied; values are ranges of it.
    let mut headers = Headers::with_buffer(head.clone(), lines.len());
    let mut via_count = 0usize;
    // line numbers of the first two Content-Length headers
    let mut cl_lines: [usize; 2] = [0; 2];
    let mut cl_count = 0usize;
    let mut i = 1;
    while let Some(&(la, le)) = lines.get(i) {
        let lb = b.get(la..le).unwrap_or_default();
        let lineno = i + 1;
        if lb.first().copied().is_some_and(is_wsp) {
            return Err(ParseError::BadHeader {
                line: lineno,
                name: String::new(),
                reason: "continuation line without a header",
            });
        }
        // `token *(SP / HTAB) ":"`; anything else is an error, described by `bad_name`
        let ne = super::lex::skip_class4(lb, 0, super::lex::C_TOKEN);
        let colon = ne + skip_wsp(lb, ne);
        if ne == 0 || lb.get(colon) != Some(&b':') {
            return Err(bad_name(line(la, le), lineno));
        }
        if headers.len() >= limits.max_header_count {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_header_count,
            });
        }
        let id = header_id_bytes(lb.get(..ne).unwrap_or_default());
        let name_r = (la - start, la - start + ne);
        // Continuation lines.
        let mut j = i + 1;
        while let Some(&(ca, _)) = lines.get(j)
            && b.get(ca).copied().is_some_and(is_wsp)
        {
            j += 1;
        }
        let vs = colon + 1 + skip_wsp(lb, colon + 1);
        let commas;
        if j == i + 1 {
            // trim trailing SP / HTAB (never before the value start)
            let mut ve = lb.len();
            while ve > vs && lb.get(ve - 1).copied().is_some_and(is_wsp) {
                ve -= 1;
            }
            commas = if id == VIA_ID {
                count_byte(lb.get(vs..ve).unwrap_or_default(), b',')
            } else {
                0
            };
            headers.push_ranges(
                name_r,
                (la + vs - start, la + ve - start),
                id,
                id == VIA_ID && commas == 0,
            );
        } else {
            let mut s = String::from(trim_sp(line(la + colon + 1, le)));
            for &(ca, ce) in lines.get(i + 1..j).unwrap_or_default() {
                let c = trim_sp(line(ca, ce));
                if !c.is_empty() {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push_str(c);
                }
            }
            commas = if id == VIA_ID {
                s.bytes().filter(|&c| c == b',').count()
            } else {
                0
            };
            headers.push_range_owned(name_r, s, id);
        }
        if id == VIA_ID {
            via_count += 1 + commas;
            if via_count > limits.max_via_count {
                return Err(ParseError::TooManyVias {
                    limit: limits.max_via_count,
                });
            }
        } else if id == CONTENT_LENGTH_ID {
            if let Some(slot) = cl_lines.get_mut(cl_count) {
                *slot = lineno;
            }
            cl_count += 1;
        }
        i = j;
    }

    finish_message(
        input,
        &head,
        sl_e - sl_a,
        headers,
        body_start,
        (cl_count, cl_lines),
        limits,
    )
}

/// What both paths of the parser end with: Content-Length (at most one, digits only,
/// RFC 3261 §20.14), the body, the start line. `head` is the header section (the start
/// line first, `sl_len` bytes long); `cl` counts the Content-Length headers and gives
/// the line numbers of the first two.
fn finish_message(
    input: Bytes,
    head: &ByteString,
    sl_len: usize,
    headers: Headers,
    body_start: usize,
    (cl_count, cl_lines): (usize, [usize; 2]),
    limits: &Limits,
) -> Result<SipMessage, ParseError> {
    let text: &str = head;
    let start_line = text.get(..sl_len).unwrap_or("");
    let mut cl: Option<usize> = None;
    if cl_count > 0 {
        let mut vals = headers.values_id(CONTENT_LENGTH_ID);
        let first = vals.next().unwrap_or("");
        if vals.next().is_some() {
            return Err(ParseError::BadHeader {
                line: cl_lines[1],
                name: "Content-Length".into(),
                reason: "appears more than once",
            });
        }
        let v = first.trim();
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::BadHeader {
                line: cl_lines[0],
                name: "Content-Length".into(),
                reason: "not a non-negative number",
            });
        }
        cl = Some(v.parse().map_err(|_| ParseError::BadHeader {
            line: cl_lines[0],
            name: "Content-Length".into(),
            reason: "number too large",
        })?);
    }
    let available = input.len().saturating_sub(body_start);
    let body_len = match cl {
        Some(n) if n > available => {
            return Err(ParseError::BodyLengthMismatch {
                declared: n,
                available,
            });
        }
        Some(n) => n,
        None => available,
    };
    if body_len > limits.max_body_size {
        return Err(ParseError::BodyTooLarge {
            size: body_len,
            limit: limits.max_body_size,
        });
    }
    // The body is what is left of the input: no reference-count traffic for a slice.
    let mut body = input;
    bytes::Buf::advance(&mut body, body_start);
    body.truncate(body_len);

    // Start line.
    if start_line
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        let mut parts = start_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        check_version(version)?;
        let code = parts.next().ok_or(ParseError::BadStartLine {
            reason: "missing status code",
        })?;
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::BadStatusCode);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::BadStatusCode)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStatusCode);
        }
        let reason = parts.next().unwrap_or("");
        return Ok(SipMessage::Response(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body,
        }));
    }
    // Method SP Request-URI SP SIP-Version: exactly two single spaces (RFC 3261 §7.1)
    let sb = start_line.as_bytes();
    let three = super::lex::find_byte(sb, b' ').and_then(|s1| {
        let s2 = s1 + 1 + super::lex::find_byte(sb.get(s1 + 1..)?, b' ')?;
        let v = start_line.get(s2 + 1..)?;
        if super::lex::find_byte(v.as_bytes(), b' ').is_some() {
            return None;
        }
        Some((start_line.get(..s1)?, start_line.get(s1 + 1..s2)?, v))
    });
    let Some((m, u, v)) = three else {
        return Err(ParseError::BadStartLine {
            reason: "request line is not three elements separated by single spaces",
        });
    };
    if !is_token(m) {
        return Err(ParseError::BadStartLine {
            reason: "method is not a token",
        });
    }
    check_version(v)?;
    // Validated now, built as an owned `Uri` on demand (`Request::uri`).
    let uri =
        super::uri::UriRef::parse(u).map_err(|source| ParseError::BadRequestUri { source })?;
    if uri.headers().next().is_some() {
        // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        return Err(ParseError::BadRequestUri {
            source: UriError::BadHeader,
        });
    }
    // `u` is a slice of the start line, itself a slice of `head` (shared by `headers`).
    let uri_src = Some(head.slice_ref(u));
    Ok(SipMessage::Request(Request {
        method: Method::parse(m),
        uri: None,
        lazy_uri: OnceLock::new(),
        uri_src,
        headers,
        body,
    }))
}

/// Fuzzing hook, not API: runs both paths of the parser on `data` (with the default
/// limits and with small ones) and panics when the fast path takes the input and its
/// result differs from the general path's, which is what the `sip_parse` fuzz target
/// looks for.
#[doc(hidden)]
pub fn fuzz_parse_paths(data: &[u8]) {
    let small = Limits {
        max_message_size: 512,
        max_header_count: 6,
        max_line_length: 80,
        max_via_count: 2,
        max_body_size: 16,
    };
    for limits in [Limits::default(), small] {
        if let Ok(fast) = parse_fast(Bytes::copy_from_slice(data), &limits) {
            let general = parse_general(Bytes::copy_from_slice(data), &limits);
            assert_eq!(fast, general, "fast and general parser paths disagree");
        }
    }
}

fn check_version(v: &str) -> Result<(), ParseError> {
    let vb = v.as_bytes();
    if vb == b"SIP/2.0"
        || vb.len() == 7
            && vb.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
            && vb.get(4..) == Some(b"2.0".as_slice())
    {
        return Ok(());
    }
    let b = v.as_bytes();
    let looks_like = b.len() > 4
        && v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        && v.get(4..).is_some_and(|r| {
            r.split_once('.').is_some_and(|(a, c)| {
                !a.is_empty()
                    && !c.is_empty()
                    && (a.bytes().chain(c.bytes())).all(|d| d.is_ascii_digit())
            })
        });
    if looks_like {
        Err(ParseError::UnsupportedVersion {
            version: v.to_owned(),
        })
    } else {
        Err(ParseError::BadStartLine {
            reason: "malformed SIP version",
        })
    }
}

/// What could be read from a message that failed to parse: enough to answer it with an
/// error response (RFC 3261 §8.2: a UAS answers a malformed request with 400 when it can).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialMessage {
    /// The request method, when the start line was a request line.
    pub method: Option<Method>,
    /// The status code, when the start line was a status line.
    pub status: Option<u16>,
    /// The Via, From, To, Call-ID and CSeq lines that could be read (values unchecked).
    pub headers: Headers,
}

impl PartialMessage {
    /// Reads leniently the start line and the Via, From, To, Call-ID and CSeq headers of
    /// `input`. Returns `None` when not even a start line can be found.
    pub fn extract(input: &[u8]) -> Option<PartialMessage> {
        let limits = Limits::default();
        let input = input.get(..input.len().min(limits.max_message_size))?;
        let text = String::from_utf8_lossy(input);
        let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
        let first = lines.next()?;
        let mut pm = PartialMessage {
            method: None,
            status: None,
            headers: Headers::new(),
        };
        if first.len() >= 4
            && first
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        {
            pm.status = first.split(' ').nth(1).and_then(|c| c.parse().ok());
        } else {
            let m = first.split(' ').next().filter(|m| is_token(m))?;
            pm.method = Some(Method::parse(m));
        }
        for l in lines.take(limits.max_header_count) {
            if l.trim().is_empty() {
                break;
            }
            let Some((n, v)) = l.split_once(':') else {
                continue;
            };
            let n = n.trim();
            if !n.bytes().all(is_token_byte) {
                continue;
            }
            let long = long_name(n);
            if ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(long))
            {
                pm.headers.push(long, v.trim());
            }
        }
        Some(pm)
    }

    /// An error response to the partial request (copying Via, From, To, Call-ID, CSeq,
    /// RFC 3261 §8.2.6.2), or `None` when it was a response, an ACK, or lacks those headers.
    pub fn error_response(&self, status: u16, reason: &str) -> Option<Response> {
        if self.method.as_ref().is_none_or(|m| *m == Method::Ack) {
            return None;
        }
        let h = &self.headers;
        if !h.contains("Via")
            || !h.contains("Call-ID")
            || !h.contains("From")
            || !h.contains("To")
            || !h.contains("CSeq")
        {
            return None;
        }
        let mut r = Response::new(status, reason);
        for (n, v) in h.iter() {
            r.headers.push(n, v);
        }
        r.headers.push("Content-Length", "0");
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Contact, Host, Scheme};

    fn parse(s: &str) -> Result<SipMessage, ParseError> {
        SipMessage::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    const REGISTER: &str = "REGISTER sip:cusax.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Alice <sip:alice@cusax.test>\r\n\
From: Alice <sip:alice@cusax.test>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:1>\"\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn printed_len_is_the_length_of_the_printed_request() {
        let SipMessage::Request(parsed) = parse(REGISTER).expect("parses") else {
            panic!("not a request");
        };
        assert_eq!(parsed.printed_len(), parsed.to_bytes().len());
        // Without Content-Length (printing adds one) and with bodies of 0, 9, 10 and
        // 1000 bytes.
        for n in [0usize, 9, 10, 1000] {
            let mut req = Request::clone(&parsed);
            req.headers.remove("Content-Length");
            req.body = Bytes::from(vec![b'x'; n]);
            assert_eq!(req.printed_len(), req.to_bytes().len(), "body of {n}");
        }
    }

    /// Both paths of the parser on one input: when the fast path takes it, the general
    /// path must give exactly the same message (or error), down to what the typed
    /// accessors read. Returns whether the fast path took it.
    fn paths_agree(data: &[u8], limits: &Limits, what: &str) -> bool {
        let general = parse_general(Bytes::copy_from_slice(data), limits);
        let Ok(fast) = parse_fast(Bytes::copy_from_slice(data), limits) else {
            return false;
        };
        assert_eq!(fast, general, "{what}");
        assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{what}");
        if let (Ok(f), Ok(g)) = (&fast, &general) {
            let (f, g) = (f.headers(), g.headers());
            let typed = |h: &Headers| {
                format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                    h.via_refs().collect::<Vec<_>>(),
                    h.via(),
                    h.top_via_ref(),
                    h.from_ref(),
                    h.to(),
                    h.call_id(),
                    h.cseq(),
                    h.contacts(),
                    h.route(),
                    h.record_route()
                )
            };
            assert_eq!(typed(f), typed(g), "{what}");
            assert_eq!(f.len(), g.len(), "{what}");
        }
        true
    }

    /// Messages of the ordinary kinds the fast path is for, several limits, every vector
    /// and byte-level mutations of all of them: the two paths always agree, and the fast
    /// path does take the ordinary ones.
    #[test]
    fn fast_path_agrees_with_general_path() {
        let ordinary = [
            REGISTER.to_owned(),
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:c@192.0.2.1>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
                .to_owned(),
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nv: SIP/2.0/TCP h:5060;branch=z9hG4bK74bf9\r\n\
f: \"A\" <sip:a@b>;tag=9\r\nt: <sip:b@c>\r\ni: 38@a\r\nCSeq: 2 INVITE\r\nl: 0\r\n\
Subject:\r\nX-Empty:   \r\nUser-Agent: x/1 \t\r\n\r\n"
                .to_owned(),
            "OPTIONS sip:a@b SIP/2.0\r\n\r\n".to_owned(),
            "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello and more"
                .to_owned(),
        ];
        let small = Limits {
            max_message_size: 400,
            max_header_count: 4,
            max_line_length: 60,
            max_via_count: 1,
            max_body_size: 3,
        };
        let limits = [Limits::default(), small];
        let mut inputs: Vec<(String, Vec<u8>)> = ordinary
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("ordinary {i}"), m.as_bytes().to_vec()))
            .collect();
        inputs.extend(crate::msg::views_tests::vector_files());
        const SPECIAL: &[u8] = b" \t\r\n:;,<>\"=@x0\x80\xff";
        let (mut fast, mut total) = (0, 0);
        for (n, (name, data)) in inputs.iter().enumerate() {
            let mut cases = vec![data.clone()];
            cases.extend(crate::msg::views_tests::mutants(
                data,
                0x5851_f42d_4c95_7f2d ^ n as u64,
                300,
                2,
                SPECIAL,
                true,
            ));
            for (k, case) in cases.iter().enumerate() {
                for (l, lim) in limits.iter().enumerate() {
                    total += 1;
                    if paths_agree(case, lim, &format!("{name} case {k} limits {l}")) {
                        fast += 1;
                    }
                }
            }
        }
        for (i, m) in ordinary.iter().enumerate() {
            assert!(
                paths_agree(m.as_bytes(), &Limits::default(), "ordinary"),
                "the fast path does not take ordinary message {i}"
            );
        }
        // both paths are exercised
        eprintln!("fast path took {fast} of {total}");
        assert!(
            fast > 2000 && fast < total,
            "fast path took {fast} of {total}"
        );
    }

    #[test]
    fn register() {
        let m = parse(REGISTER).unwrap();
        let SipMessage::Request(r) = &m else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.uri().scheme, Scheme::Sip);
        assert_eq!(r.uri().host, Host::Domain("cusax.test".into()));
        let h = &r.headers;
        let via = h.top_via().unwrap();
        assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(via.rport(), Some(None));
        assert_eq!(via.port, Some(5060));
        assert_eq!(h.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(h.from().unwrap().display_name.as_deref(), Some("Alice"));
        assert_eq!(h.to().unwrap().tag(), None);
        assert_eq!(h.call_id().unwrap(), "a84b4c76e66710@192.0.2.10");
        assert_eq!(
            h.cseq().unwrap(),
            crate::msg::CSeq {
                seq: 1,
                method: Method::Register
            }
        );
        let c = h.contacts().unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].expires(), Some(3600));
        let Contact::Addr(a) = &c[0] else {
            panic!("star")
        };
        assert_eq!(a.uri.params.get("transport"), Some(Some("udp")));
        assert_eq!(
            a.params.get("+sip.instance"),
            Some(Some("\"<urn:uuid:1>\""))
        );
        assert_eq!(h.expires().unwrap(), Some(3600));
        assert_eq!(h.max_forwards().unwrap(), Some(70));
        assert_eq!(h.content_length().unwrap(), Some(0));
        assert!(m.body().is_empty());
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.to_bytes(), Bytes::from_static(REGISTER.as_bytes()));
    }

    #[test]
    fn invite_with_sdp() {
        let sdp = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";
        let msg = format!(
            "INVITE sip:bob@cusax.test SIP/2.0\r\nv: SIP/2.0/TCP client.cusax.test:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\nf: Alice <sip:alice@cusax.test>;tag=9fxced76sl\r\nt: Bob <sip:bob@cusax.test>\r\n\
i: 3848276298220188511@client.cusax.test\r\nCSeq: 2 INVITE\r\nm: <sip:alice@client.cusax.test;transport=tcp>\r\n\
c: application/sdp\r\nl: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let m = parse(&msg).unwrap();
        let h = m.headers();
        assert_eq!(h.content_type(), Some("application/sdp"));
        assert_eq!(h.content_length().unwrap(), Some(sdp.len()));
        assert_eq!(&m.body()[..], sdp.as_bytes());
        assert_eq!(h.top_via().unwrap().transport, "TCP");
        assert_eq!(h.to().unwrap().uri.user.as_deref(), Some("bob"));
        assert_eq!(h.cseq().unwrap().method, Method::Invite);
        assert_eq!(m.validate(), Ok(()));
        // Extra trailing octets are discarded (datagram rule).
        let m2 = parse(&format!("{msg}garbage")).unwrap();
        assert_eq!(m2.body(), m.body());
        // A body shorter than Content-Length is an error.
        assert_eq!(
            parse(&msg[..msg.len() - 3]),
            Err(ParseError::BodyLengthMismatch {
                declared: sdp.len(),
                available: sdp.len() - 3
            })
        );
        assert_eq!(SipMessage::parse(m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn unauthorized_with_challenge() {
        let m = parse(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKnashds7;received=192.0.2.10\r\n\
From: <sip:alice@cusax.test>;tag=1\r\nTo: <sip:alice@cusax.test>;tag=2\r\nCall-ID: x@y\r\nCSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"cusax.test\", nonce=\"ab,c\\\"d\", qop=\"auth,auth-int\", algorithm=MD5, opaque=\"o\", stale=TRUE\r\n\
WWW-Authenticate: Digest realm=\"cusax.test\", nonce=\"n2\", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let SipMessage::Response(r) = &m else {
            panic!("not a response")
        };
        assert_eq!((r.status, r.reason.as_str()), (401, "Unauthorized"));
        let ch = r.headers.www_authenticate().unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[0].scheme, "Digest");
        assert_eq!(ch[0].realm(), Some("cusax.test"));
        assert_eq!(ch[0].nonce(), Some("ab,c\"d"));
        assert_eq!(ch[0].qop(), ["auth", "auth-int"]);
        assert_eq!(ch[0].opaque(), Some("o"));
        assert!(ch[0].stale());
        assert_eq!(ch[1].algorithm(), Some("SHA-256"));
        assert_eq!(r.headers.top_via().unwrap().received(), Some("192.0.2.10"));
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn ok_with_many_vias() {
        let m = parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bK2\r\n\
Via: SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK3\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n\
Call-ID: c\r\nCSeq: 7 INVITE\r\nRecord-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\r\n",
        )
        .unwrap();
        let v = m.headers().via().unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].port, Some(5070));
        assert_eq!(v[2].host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(
            v.iter().map(|v| v.branch().unwrap()).collect::<Vec<_>>(),
            ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
        );
        assert_eq!(m.headers().record_route().unwrap().len(), 2);
        assert!(m.body().is_empty());
        // Printing adds Content-Length only because it was absent.
        assert!(m.to_bytes().ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("\r\n\r\n"), Err(ParseError::Empty));
        assert_eq!(
            parse("OPTIONS sip:a SIP/2.0\r\nVia: x\r\n"),
            Err(ParseError::NoEndOfHeaders)
        );
        assert!(matches!(
            parse("OPTIONS  sip:a SIP/2.0\r\n\r\n"),
            Err(ParseError::BadStartLine { .. })
        ));
        assert!(matches!(
            parse("OPTIONS sip:a SIP/7.0\r\n\r\n"),
            Err(ParseError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            parse("SIP/2.0 4294967301 Bad\r\n\r\n"),
            Err(ParseError::BadStatusCode)
        ));
        assert!(matches!(
            parse("OPTIONS sip:a SIP/2.0\r\nNoColon\r\n\r\n"),
            Err(ParseError::BadHeader { line: 2, .. })
        ));
        assert!(matches!(
            parse("OPTIONS sip:a SIP/2.0\r\nl: -1\r\n\r\n"),
            Err(ParseError::BadHeader { name, .. }) if name == "Content-Length"
        ));
        let mut big = String::from("OPTIONS sip:a SIP/2.0\r\n");
        for _ in 0..300 {
            big.push_str("X: y\r\n");
        }
        big.push_str("\r\n");
        assert_eq!(parse(&big), Err(ParseError::TooManyHeaders { limit: 256 }));
        let limits = Limits {
            max_via_count: 2,
            ..Limits::default()
        };
        let vias = "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP a, SIP/2.0/UDP b\r\nv: SIP/2.0/UDP c\r\n\r\n";
        assert_eq!(
            SipMessage::parse_with_limits(Bytes::from_static(vias.as_bytes()), &limits),
            Err(ParseError::TooManyVias { limit: 2 })
        );
        assert_eq!(
            SipMessage::parse(Bytes::from_static(
                b"OPTIONS sip:a SIP/2.0\r\nX: \xff\r\n\r\n"
            )),
            Err(ParseError::NotUtf8 { offset: 26 })
        );
    }

    #[test]
    fn size_limits() {
        let small = Limits {
            max_message_size: 64,
            max_line_length: 24,
            max_body_size: 3,
            ..Limits::default()
        };
        let p = |s: &'static str| {
            SipMessage::parse_with_limits(Bytes::from_static(s.as_bytes()), &small)
        };
        assert_eq!(
            p("OPTIONS sip:a SIP/2.0\r\nX-Long-Header: aaaaaaaaaaaaaaaa\r\n\r\n"),
            Err(ParseError::LineTooLong { line: 2, limit: 24 })
        );
        assert_eq!(
            p("OPTIONS sip:a SIP/2.0\r\nl: 4\r\n\r\nbody"),
            Err(ParseError::BodyTooLarge { size: 4, limit: 3 })
        );
        let big = "OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n0123456789012345678901234567890123456789";
        assert_eq!(
            p(big),
            Err(ParseError::TooLarge {
                size: big.len(),
                limit: 64
            })
        );
        assert_eq!(p(big).unwrap_err().status(), 513);
        // folded header lines each count against the line limit, not their sum
        assert!(p("OPTIONS sip:a SIP/2.0\r\nX: aaaaaaaaa\r\n bbbbbbbbb\r\n\r\n").is_ok());
    }

    #[test]
    fn multibyte_start_line_does_not_panic() {
        // found by the sip_framer fuzz target: a start line with a multi-byte character
        // inside its first four bytes
        assert!(parse("SIP停 200 OK\r\n\r\n").is_err());
        assert!(parse("OPTIONS sip:a SIP停.0\r\n\r\n").is_err());
        assert!(parse("OPTIONS sip:a S停\r\n\r\n").is_err());
    }

    #[test]
    fn partial_message_answers_400() {
        let raw = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:bob@example.com>\r\nCall-ID: abc\r\nCSeq: 1 INVITE\r\nContent-Length: 999\r\n\r\n";
        let err = SipMessage::parse(Bytes::from_static(raw)).unwrap_err();
        assert_eq!(err.status(), 400);
        let pm = PartialMessage::extract(raw).unwrap();
        assert_eq!(pm.method, Some(Method::Invite));
        let resp = pm.error_response(err.status(), &err.reason()).unwrap();
        assert_eq!(resp.headers.call_id().unwrap(), "abc");
        assert_eq!(resp.headers.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert!(resp.reason.contains("Content-Length 999"));
    }
}
