//! Service discovery (XEP-0030) and extended info (XEP-0128).
