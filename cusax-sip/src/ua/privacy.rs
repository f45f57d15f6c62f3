//! Caller identity hints and privacy (RFC 3323, RFC 3325, RFC 7081 §3.5).

use crate::msg::{Headers, NameAddr};

/// The From header of an anonymous request (RFC 3323 §4.1.1.3).
pub const ANONYMOUS_FROM: &str = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";

/// Whether a request's caller asked to be anonymous: a Privacy header with `id`,
/// `header` or `user` (RFC 3323 §4.2, RFC 3325 §9.3), or an anonymous From (the user
/// `anonymous`, the host `anonymous.invalid`, or the display name "Anonymous",
/// RFC 3323 §4.1.1.3).
pub fn is_anonymous(headers: &Headers) -> bool {
    let privacy = headers.privacy();
    if privacy.iter().any(|p| {
        ["id", "header", "user"]
            .iter()
            .any(|v| p.trim().eq_ignore_ascii_case(v))
    }) {
        return true;
    }
    match headers.from() {
        Ok(from) => is_anonymous_addr(&from),
        Err(_) => false,
    }
}

/// Whether an address is one of the RFC 3323 §4.1.1.3 anonymous forms.
pub fn is_anonymous_addr(addr: &NameAddr) -> bool {
    addr.uri
        .user
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("anonymous"))
        || addr
            .uri
            .host
            .to_string()
            .eq_ignore_ascii_case("anonymous.invalid")
        || addr
            .display_name
            .as_deref()
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("anonymous"))
}

/// The Call-Info value advertising an XMPP address for the caller (RFC 7081 §3.5,
/// RFC 6993 `purpose=impp`). `impp` may be a bare JID or an `xmpp:` URI.
pub fn impp_call_info(impp: &str) -> String {
    let impp = impp.trim();
    if impp.contains(':') {
        format!("<{impp}>;purpose=impp")
    } else {
        format!("<xmpp:{impp}>;purpose=impp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.push(n, *v);
        }
        h
    }

    #[test]
    fn privacy_id_is_anonymous() {
        let h = headers(&[("From", "<sip:alice@a.test>;tag=1"), ("Privacy", "id")]);
        assert!(is_anonymous(&h));
        let h = headers(&[("From", "<sip:alice@a.test>;tag=1"), ("Privacy", "none")]);
        assert!(!is_anonymous(&h));
    }

    #[test]
    fn anonymous_from_is_anonymous() {
        let h = headers(&[("From", ANONYMOUS_FROM)]);
        assert!(is_anonymous(&h));
        let h = headers(&[("From", "<sip:anonymous@example.test>;tag=1")]);
        assert!(is_anonymous(&h));
        let h = headers(&[("From", "\"Alice\" <sip:alice@a.test>;tag=1")]);
        assert!(!is_anonymous(&h));
    }

    #[test]
    fn impp_value() {
        assert_eq!(
            impp_call_info("alice@cusax.test"),
            "<xmpp:alice@cusax.test>;purpose=impp"
        );
        assert_eq!(
            impp_call_info("xmpp:alice@cusax.test"),
            "<xmpp:alice@cusax.test>;purpose=impp"
        );
    }
}
