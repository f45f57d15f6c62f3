//! vCards: vcard-temp (XEP-0054) and vCard4 over XMPP (XEP-0292), tolerant of server quirks.
