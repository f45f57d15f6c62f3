//! Media keying. Only SDES (RFC 4568) is implemented; DTLS-SRTP is not.
pub mod sdes;
