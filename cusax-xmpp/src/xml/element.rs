//! The element tree used for every stanza and payload.
