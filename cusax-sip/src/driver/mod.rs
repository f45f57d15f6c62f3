//! The tokio driver: UDP, TCP and TLS transports, DNS (RFC 3263), timers.
