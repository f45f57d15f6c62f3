//! Data forms (XEP-0004).
