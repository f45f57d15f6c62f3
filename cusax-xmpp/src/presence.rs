//! Presence (RFC 6121 §3–§4): subscriptions and per-full-JID tracking.
