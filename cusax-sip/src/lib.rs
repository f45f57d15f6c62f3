//! # cusax-sip — a sans-IO SIP user-agent stack
//!
//! The protocol core (message parsing and printing, the RFC 3261 §17 transaction
//! state machines, dialogs, registration, digest authentication) takes bytes, events
//! and the current time as input and returns bytes to send, events and its next
//! deadline. It performs no I/O. The optional `driver` feature adds a tokio driver
//! that owns the sockets (UDP, TCP, TLS) and the timers.
#![forbid(unsafe_code)]

pub mod dialog;
pub mod endpoint;
pub mod msg;
pub mod transaction;
pub mod ua;

#[cfg(feature = "driver")]
pub mod driver;
