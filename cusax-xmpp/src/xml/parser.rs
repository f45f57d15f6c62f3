//! Incremental, restricted XML stream parser (RFC 6120 §11).
