//! # cusax-xmpp — a sans-IO XMPP client
//!
//! The protocol core (restricted-XML push parser, stream negotiation, SASL, stanzas,
//! roster, presence, vCards, disco, MUC, reachability, stream management) takes bytes,
//! events and the current time as input and returns bytes to send, events and its
//! next deadline. The optional `driver` feature adds a tokio driver.
#![forbid(unsafe_code)]

pub mod disco;
pub mod forms;
pub mod muc;
pub mod presence;
pub mod reach;
pub mod roster;
pub mod sasl;
pub mod session;
pub mod sm;
pub mod stanza;
pub mod stream;
pub mod vcard;
pub mod xml;

#[cfg(feature = "driver")]
pub mod driver;
