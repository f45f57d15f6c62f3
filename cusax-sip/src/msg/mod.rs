//! SIP messages (RFC 3261 §7, §20, §25): zero-copy parsing, typed headers, printing, stream framing.
//!
//! [`SipMessage::parse`] reads one message from a datagram (or from a frame cut by
//! [`framing::StreamFramer`] on a stream transport). Header values are ranges of the
//! received header section (validated once, shared, not copied); typed values are parsed on demand by the
//! accessors on [`Headers`]. [`SipMessage::validate`] checks what a UA must check before
//! answering.
//!
//! Typed values come in two forms with the same grammar, strictness and errors:
//!
//! * owned ([`Via`], [`NameAddr`], [`Uri`], [`Params`], [`Contact`]) from
//!   [`Headers::via`], [`Headers::from`], [`Headers::contacts`], ... — independent of the
//!   message, for keeping in a transaction or dialog;
//! * borrowed views ([`ViaRef`], [`NameAddrRef`], [`UriRef`], [`HostRef`], [`ParamsRef`],
//!   [`ContactRef`]) from [`Headers::via_refs`], [`Headers::top_via_ref`],
//!   [`Headers::from_ref`], [`Headers::to_ref`], [`Headers::contact_refs`],
//!   [`Headers::route_refs`], [`Headers::record_route_refs`] — slices of the header text,
//!   no allocation (a user part or display name is copied only when it has escapes to
//!   undo), for reading a received message. Each view's `to_owned()` gives exactly the
//!   owned value, and the owned parsers are built on the views.
//!
//! ```
//! use bytes::Bytes;
//! use cusax_sip::msg::SipMessage;
//!
//! let m = SipMessage::parse(Bytes::from_static(
//!     b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//! Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n\
//! From: Alice <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
//! Call-ID: c1\r\nCSeq: 1 OPTIONS\r\n\r\n",
//! ))?;
//! let h = m.headers();
//! let branches: Vec<&str> = h
//!     .via_refs()
//!     .map(|v| v.map(|v| v.branch().unwrap_or("")))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(branches, ["z9hG4bK1", "z9hG4bK2"]);
//! let from = h.from_ref()?;
//! assert_eq!((from.display_name(), from.tag()), (Some("Alice"), Some("1")));
//! assert_eq!(from.uri().user(), Some("alice"));
//! assert_eq!(from.to_owned(), h.from()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
    fuzz_parse_paths,
};
pub use method::Method;
pub use params::{Params, ParamsIter, ParamsRef};
pub use typed::{TypedValues, fuzz_typed_views};
pub use types::{
    CSeq, CallInfo, Challenge, Contact, ContactRef, Credentials, Event, HeaderError, NameAddr,
    NameAddrRef, SubscriptionState, Via, ViaRef, Warning,
};
pub use uri::{Host, HostRef, Scheme, Uri, UriError, UriRef};
