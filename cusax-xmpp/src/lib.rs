//! # cusax-xmpp — a sans-IO XMPP client
//!
//! The protocol core (restricted-XML push parser, stream negotiation, SASL, stanzas,
//! roster, presence, vCards, disco, MUC, reachability, stream management) takes bytes,
//! events and the current time as input and returns bytes to send, events and its
//! next deadline. The optional `driver` feature adds a tokio driver.
#![forbid(unsafe_code)]
