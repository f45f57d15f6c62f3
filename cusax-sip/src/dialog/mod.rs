//! Dialogs (RFC 3261 §12): identifiers, route sets, CSeq, target refresh.
