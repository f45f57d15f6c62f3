//! Stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1).
//!
//! On TCP/TLS a message ends after its header section plus exactly Content-Length body
//! bytes; Content-Length is mandatory there. Between messages a peer may send CRLFs:
//! a double CRLF is an RFC 5626 keep-alive "ping", a single CRLF the "pong" answer.
//!
//! [`StreamFramer`] is sans-IO: [`StreamFramer::push`] bytes as they arrive, then call
//! [`StreamFramer::next`] until it returns `Ok(None)`. Buffers are bounded by
//! [`Limits::max_message_size`]. After an error the buffered bytes are dropped and the
//! connection should be closed (the stream cannot be re-synchronised reliably).
//!
//! With the `driver` feature, [`SipCodec`] (parsed frames) and [`RawSipCodec`] (raw
//! message bytes) adapt the same logic to tokio-util's `Decoder`/`Encoder`.

use bytes::{Buf, Bytes, BytesMut};

use super::message::{Limits, ParseError, SipMessage};

/// One unit read from a stream transport.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // frames are moved once, from the framer to the caller
pub enum Frame {
    /// A complete, parsed message.
    Message(SipMessage),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §3.5.1); a server answers with a CRLF pong.
    KeepAlivePing,
    /// A CRLF keep-alive pong (RFC 5626 §3.5.1).
    KeepAlivePong,
}

/// One unit read from a stream transport, the message left unparsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawFrame {
    /// The bytes of one complete message (header section + Content-Length body bytes).
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping.
    KeepAlivePing,
    /// A CRLF keep-alive pong.
    KeepAlivePong,
}

/// Why the stream cannot be framed. The peer is at fault in every case but `Io`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A message (or an unterminated header section) is larger than the limit.
    #[error("message exceeds the limit of {limit} bytes")]
    TooLarge {
        /// [`Limits::max_message_size`].
        limit: usize,
    },
    /// The header section has no Content-Length, mandatory on streams (RFC 3261 §18.3).
    #[error("message on a stream transport has no Content-Length header")]
    MissingContentLength,
    /// Content-Length is repeated or not a number.
    #[error("invalid Content-Length header: {reason}")]
    BadContentLength {
        /// What is wrong.
        reason: &'static str,
    },
    /// The framed message did not parse.
    #[error("framed message is malformed: {0}")]
    Parse(#[from] ParseError),
    /// Reading the transport failed (codec only).
    #[error("transport I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Sans-IO framer for SIP over a byte stream.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    state: State,
}

#[derive(Debug, Default)]
struct State {
    limits: Limits,
    /// Bytes already searched for the end of the header section.
    scanned: usize,
    /// Total frame length once known (header section + body).
    frame_len: Option<usize>,
}

impl StreamFramer {
    /// A framer with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A framer with custom limits.
    pub fn with_limits(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            state: State {
                limits,
                ..State::default()
            },
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, parsed, or `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Frame>, FramingError> {
        next_frame(&mut self.buf, &mut self.state)
    }

    /// The next complete frame without parsing the message.
    pub fn next_raw(&mut self) -> Result<Option<RawFrame>, FramingError> {
        next_raw(&mut self.buf, &mut self.state)
    }
}

fn next_frame(buf: &mut BytesMut, st: &mut State) -> Result<Option<Frame>, FramingError> {
    Ok(match next_raw(buf, st)? {
        None => None,
        Some(RawFrame::KeepAlivePing) => Some(Frame::KeepAlivePing),
        Some(RawFrame::KeepAlivePong) => Some(Frame::KeepAlivePong),
        Some(RawFrame::Message(b)) => Some(Frame::Message(SipMessage::parse_with_limits(
            b, &st.limits,
        )?)),
    })
}

fn next_raw(buf: &mut BytesMut, st: &mut State) -> Result<Option<RawFrame>, FramingError> {
    let r = next_raw_inner(buf, st);
    if r.is_err() {
        buf.clear();
        st.scanned = 0;
        st.frame_len = None;
    }
    r
}

fn next_raw_inner(buf: &mut BytesMut, st: &mut State) -> Result<Option<RawFrame>, FramingError> {
    loop {
        if st.frame_len.is_none() && st.scanned == 0 {
            // Between messages: keep-alives and stray line breaks.
            match &buf[..] {
                [] => return Ok(None),
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    buf.advance(4);
                    return Ok(Some(RawFrame::KeepAlivePing));
                }
                // Could be the start of a ping: wait for the rest.
                [b'\r'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => {
                    buf.advance(2);
                    return Ok(Some(RawFrame::KeepAlivePong));
                }
                [b'\n', ..] | [b'\r', ..] => {
                    // Bare LF or CR: ignored (RFC 3261 §7.5).
                    buf.advance(1);
                    continue;
                }
                _ => {}
            }
        }
        break;
    }
    let limit = st.limits.max_message_size;
    let frame_len = match st.frame_len {
        Some(n) => n,
        None => {
            let Some(head_len) = find_head_end(buf, &mut st.scanned) else {
                if buf.len() > limit {
                    return Err(FramingError::TooLarge { limit });
                }
                return Ok(None);
            };
            let cl = content_length(buf.get(..head_len).unwrap_or_default())?;
            let total = head_len
                .checked_add(cl)
                .ok_or(FramingError::TooLarge { limit })?;
            if total > limit {
                return Err(FramingError::TooLarge { limit });
            }
            st.frame_len = Some(total);
            total
        }
    };
    if buf.len() < frame_len {
        return Ok(None);
    }
    st.frame_len = None;
    st.scanned = 0;
    Ok(Some(RawFrame::Message(buf.split_to(frame_len).freeze())))
}

/// Finds the end of the header section (after the empty line), tolerating bare LFs.
/// `scanned` remembers how far the previous calls got.
fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let start = scanned.saturating_sub(3);
    let mut i = start;
    while let Some(rel) = super::lex::find_byte(buf.get(i..)?, b'\n') {
        let nl = i + rel;
        // the line after this LF is empty if it is "\n" or "\r\n"
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') => match buf.get(nl + 2) {
                Some(b'\n') => return Some(nl + 3),
                Some(_) => {}
                None => {
                    *scanned = nl;
                    return None;
                }
            },
            Some(_) => {}
            None => {
                *scanned = nl;
                return None;
            }
        }
        i = nl + 1;
    }
    *scanned = buf.len();
    None
}

/// Reads Content-Length (or `l`) from a header section (RFC 3261 §20.14).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&c| c == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let v = line.get(colon + 1..).unwrap_or_default().trim_ascii();
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::BadContentLength {
                reason: "not a non-negative number",
            });
        }
        if found.is_some() {
            return Err(FramingError::BadContentLength {
                reason: "appears more than once",
            });
        }
        let n = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(FramingError::BadContentLength {
                reason: "number too large",
            })?;
        found = Some(n);
    }
    found.ok_or(FramingError::MissingContentLength)
}

#[cfg(feature = "driver")]
mod codec {
    use bytes::{Bytes, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    use super::{Frame, FramingError, RawFrame, State, next_frame, next_raw};
    use crate::msg::{Limits, SipMessage};

    /// tokio-util codec giving parsed [`Frame`]s; encodes [`SipMessage`]s and raw [`Bytes`].
    #[derive(Debug, Default)]
    pub struct SipCodec {
        state: State,
    }

    impl SipCodec {
        /// A codec with custom limits.
        pub fn with_limits(limits: Limits) -> Self {
            SipCodec {
                state: State {
                    limits,
                    ..State::default()
                },
            }
        }
    }

    impl Decoder for SipCodec {
        type Item = Frame;
        type Error = FramingError;
        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
            next_frame(src, &mut self.state)
        }
    }

    impl Encoder<SipMessage> for SipCodec {
        type Error = std::io::Error;
        fn encode(&mut self, item: SipMessage, dst: &mut BytesMut) -> Result<(), std::io::Error> {
            dst.extend_from_slice(&item.to_bytes());
            Ok(())
        }
    }

    impl Encoder<Bytes> for SipCodec {
        type Error = std::io::Error;
        fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
            dst.extend_from_slice(&item);
            Ok(())
        }
    }

    /// tokio-util codec giving [`RawFrame`]s (message bytes unparsed); encodes raw [`Bytes`].
    #[derive(Debug, Default)]
    pub struct RawSipCodec {
        state: State,
    }

    impl RawSipCodec {
        /// A codec with custom limits.
        pub fn with_limits(limits: Limits) -> Self {
            RawSipCodec {
                state: State {
                    limits,
                    ..State::default()
                },
            }
        }
    }

    impl Decoder for RawSipCodec {
        type Item = RawFrame;
        type Error = FramingError;
        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RawFrame>, FramingError> {
            next_raw(src, &mut self.state)
        }
    }

    impl Encoder<Bytes> for RawSipCodec {
        type Error = std::io::Error;
        fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
            dst.extend_from_slice(&item);
            Ok(())
        }
    }
}

#[cfg(feature = "driver")]
pub use codec::{RawSipCodec, SipCodec};

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\nl: 5\r\n\r\nhello";

    fn drain(f: &mut StreamFramer) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(x) = f.next().unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn split_at_every_offset() {
        let mut two = MSG.to_vec();
        two.extend_from_slice(b"\r\n\r\n");
        two.extend_from_slice(MSG);
        for cut in 0..=two.len() {
            let mut f = StreamFramer::new();
            f.push(&two[..cut]);
            let mut frames = drain(&mut f);
            f.push(&two[cut..]);
            frames.extend(drain(&mut f));
            let msgs: Vec<_> = frames
                .iter()
                .filter_map(|x| match x {
                    Frame::Message(m) => Some(m),
                    _ => None,
                })
                .collect();
            assert_eq!(msgs.len(), 2, "cut at {cut}");
            assert_eq!(&msgs[1].body()[..], b"hello");
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut f = StreamFramer::new();
        let mut n = 0;
        for b in MSG {
            f.push(std::slice::from_ref(b));
            n += drain(&mut f).len();
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn several_in_one_chunk_and_keepalives() {
        let mut data = b"\r\n\r\n".to_vec();
        data.extend_from_slice(MSG);
        data.extend_from_slice(MSG);
        data.extend_from_slice(b"\r\n");
        let mut f = StreamFramer::new();
        f.push(&data);
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], Frame::KeepAlivePing);
        assert!(matches!(frames[1], Frame::Message(_)));
        assert!(matches!(frames[2], Frame::Message(_)));
        assert_eq!(frames[3], Frame::KeepAlivePong);
        let mut f = StreamFramer::new();
        f.push(b"\r\n\r");
        assert!(f.next().unwrap().is_none());
        f.push(b"\n");
        assert_eq!(f.next_raw().unwrap(), Some(RawFrame::KeepAlivePing));
    }

    #[test]
    fn missing_content_length_and_oversize() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert!(matches!(f.next(), Err(FramingError::MissingContentLength)));
        assert_eq!(f.buffered(), 0);

        let mut f = StreamFramer::with_limits(Limits {
            max_message_size: 100,
            ..Limits::default()
        });
        f.push(&[b'A'; 101]);
        assert!(matches!(
            f.next(),
            Err(FramingError::TooLarge { limit: 100 })
        ));
        f.push(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert!(matches!(
            f.next(),
            Err(FramingError::TooLarge { limit: 100 })
        ));
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx");
        assert!(matches!(
            f.next(),
            Err(FramingError::BadContentLength { .. })
        ));
    }

    #[test]
    fn bare_lf_header_end() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\nContent-Length: 2\n\nhiOPT");
        match f.next().unwrap() {
            Some(Frame::Message(m)) => assert_eq!(&m.body()[..], b"hi"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(f.next().unwrap().is_none());
        assert_eq!(f.buffered(), 3);
    }
}
