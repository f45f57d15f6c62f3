//! SIP messages (RFC 3261 §7, §20, §25): zero-copy parsing, typed headers, printing, stream framing.
