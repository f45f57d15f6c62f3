//! User-agent procedures: registration, INVITE sessions, subscriptions, MESSAGE, digest authentication.

pub mod digest;
pub mod privacy;
pub mod register;
#[cfg(feature = "driver")]
pub mod client;
