//! Multi-user chat (XEP-0045): room info, joining, occupants, room events.
