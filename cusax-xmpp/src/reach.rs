//! Reachability addresses (XEP-0152).
