//! Stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1) — filled in below.
