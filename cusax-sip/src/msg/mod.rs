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
#[cfg(test)]
mod oracle;
mod params;
mod typed;
mod types;
mod uri;
#[cfg(test)]
mod views_tests;

pub use headers::{Headers, long_name};
pub use message::{
    Defect, Limits, ParseError, PartialMessage, Request, Response, SipMessage, default_reason,
};
pub use method::Method;
pub use params::{Params, ParamsIter, ParamsRef};
pub use typed::{TypedValues, fuzz_typed_views};
pub use types::{
    CSeq, CallInfo, Challenge, Contact, ContactRef, Credentials, Event, HeaderError, NameAddr,
    NameAddrRef, SubscriptionState, Via, ViaRef, Warning,
};
pub use uri::{Host, HostRef, Scheme, Uri, UriError, UriRef};
