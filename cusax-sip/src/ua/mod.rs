//! User-agent procedures: registration, INVITE sessions, subscriptions, MESSAGE, digest authentication.

pub mod digest;
