//! Restricted XML (RFC 6120 §11): an incremental push parser over quick-xml, an element tree and a writer.

pub mod element;
pub mod parser;
