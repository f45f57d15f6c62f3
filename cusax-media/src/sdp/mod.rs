//! SDP (RFC 8866): a small, size-limited parser and serializer, plus RFC 3264
//! offer/answer for one audio stream (and an optional opaque video stream).
//!
//! The parser keeps every line it does not interpret (`i=`, `u=`, `b=`, ...) so that a
//! description survives parse → serialize → parse unchanged (the fuzz target checks this).
//!
//! Video: an offered video m-line is either declined (port 0, RFC 3264 §6) or accepted with
//! its first payload type as an *opaque* stream — this crate contains no video codecs.

mod model;
pub mod offer_answer;
mod parse;

pub use model::{
    Address, Attribute, Connection, MAX_ATTRIBUTES, MAX_LINE_LEN, MAX_LINES, MAX_MEDIA,
    MAX_SDP_LEN, MediaDescription, Origin, SessionDescription,
};
pub use parse::SdpParseError;
