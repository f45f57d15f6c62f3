//! # cusax-core — the CUSAX policy layer and facade
//!
//! RFC 7081 (Combined Use of SIP and XMPP): SIP carries audio/video sessions, XMPP
//! carries chat, presence, roster, vCards and group chat; this crate makes the two feel
//! like one service. It is the only crate that knows both protocols.
#![forbid(unsafe_code)]

pub use cusax_media as media;
pub use cusax_sip as sip;
pub use cusax_xmpp as xmpp;
