//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod sipp;

use std::net::SocketAddr;

use cusax_sip::endpoint::{Endpoint, Output, SipEvent};
use cusax_sip::msg::{Request, SipMessage};
use cusax_sip::transaction::Transmit;

/// A socket address from text.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// Drains a sans-IO endpoint up to its next timeout: (transmits, events).
pub fn drain(e: &mut Endpoint) -> (Vec<Transmit>, Vec<SipEvent>) {
    let (mut out, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = e.poll_output() {
        match o {
            Output::Transmit(t) => out.push(t),
            Output::Event(ev) => events.push(ev),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    (out, events)
}

/// The request a transmit carries (panics on anything else).
pub fn request(t: &Transmit) -> Request {
    match SipMessage::parse(t.data.clone()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}
