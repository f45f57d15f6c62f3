//! XEP-0198 stream management: acks, resumption, serialisable state.
