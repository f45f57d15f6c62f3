//! # cusax-media — a sans-IO media engine
//!
//! SDP offer/answer (RFC 3264), RTP/RTCP (RFC 3550), SDES-SRTP (RFC 4568, RFC 3711),
//! Opus and G.711, an adaptive jitter buffer and RFC 4733 DTMF. Sessions are driven
//! by an explicit clock; the optional `driver` feature adds a tokio UDP driver.
//!
//! Security defaults: SRTP required (`MediaConfig::allow_plain_rtp` off); SDES keys only
//! over secure signalling (`MediaConfig::allow_insecure_sdes` off, RFC 4568 §8.3);
//! keys from a caller-supplied cryptographically secure RNG, fresh for every offer/answer
//! exchange; symmetric RTP only for authenticated SRTP (`session::SymmetricRtp`). The
//! `test-util` feature adds deterministic constructors for tests and fuzzing only.
#![forbid(unsafe_code)]

pub mod codec;
#[cfg(feature = "driver")]
pub mod driver;
pub mod dtmf;
pub mod jitter;
pub mod keying;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod wav;
