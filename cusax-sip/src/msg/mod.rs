//! SIP messages (RFC 3261 §7, §20, §25): zero-copy parsing, typed headers, printing, stream framing.
//!
//! [`SipMessage::parse`] reads one message from a datagram (or from a frame cut by
//! [`framing::StreamFramer`] on a stream transport). Header values are slices of the
//! received [`bytes::Bytes`]; typed values are parsed on demand by the accessors on
//! [`Headers`]. [`SipMessage::validate`] checks what a UA must check before answering.

pub mod framing;
mod headers;
mod lex;
mod message;
mod method;
mod params;
mod typed;
mod types;
mod uri;

pub use headers::{Headers, long_name};
pub use message::{
    Defect, Limits, ParseError, PartialMessage, Request, Response, SipMessage, default_reason,
};
pub use method::Method;
pub use params::Params;
pub use types::{
    CSeq, CallInfo, Challenge, Contact, Credentials, Event, HeaderError, NameAddr,
    SubscriptionState, Via, Warning,
};
pub use uri::{Host, Scheme, Uri, UriError};
