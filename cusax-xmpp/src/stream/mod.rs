//! Stream negotiation (RFC 6120 §4–§7): stream headers, features, STARTTLS, resource binding.
