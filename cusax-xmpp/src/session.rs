//! The sans-IO client session: negotiation, stanzas in and out, keep-alive, stream management.
