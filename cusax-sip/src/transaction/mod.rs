//! The four RFC 3261 §17 transaction state machines, their timers and matching.
