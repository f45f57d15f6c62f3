//! User-agent procedures: registration, INVITE sessions, subscriptions, MESSAGE, digest authentication.

#[cfg(feature = "driver")]
pub mod client;
pub mod digest;
pub mod privacy;
pub mod register;
