//! Typed stanzas (RFC 6120 §8): message, presence, iq; unknown children preserved.
