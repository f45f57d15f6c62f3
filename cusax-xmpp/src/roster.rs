//! Roster management (RFC 6121 §2): items, versioning, pushes.
