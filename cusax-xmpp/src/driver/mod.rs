//! The tokio driver: TCP, STARTTLS and direct TLS (XEP-0368), SRV lookup, timers.
