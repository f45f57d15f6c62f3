//! Registration (RFC 3261 §10): binding state, refresh timing, 423 handling.

use std::time::{Duration, Instant};

use crate::msg::{Contact, Response, Uri};

/// How long before a binding expires we refresh it: half the granted time for short
/// bindings, else 32 s ahead (RFC 3261 §10.2.4 leaves the choice to the UA; RFC 5626
/// §4.4.1 suggests refreshing well before expiry).
pub fn refresh_delay(expires: u32) -> Duration {
    let margin = (expires / 2).min(32);
    Duration::from_secs(u64::from(expires.saturating_sub(margin).max(1)))
}

/// The expiry the registrar granted our `contact` in a 2xx to REGISTER (RFC 3261
/// §10.2.4): the `expires` parameter of our Contact in the response, else the Expires
/// header, else what we asked for.
pub fn granted_expires(response: &Response, contact: &Uri, requested: u32) -> u32 {
    if let Ok(contacts) = response.headers.contacts() {
        for c in contacts {
            if let Contact::Addr(a) = &c
                && same_binding(&a.uri, contact)
                && let Some(e) = c.expires()
            {
                return e;
            }
        }
    }
    match response.headers.expires() {
        Ok(Some(e)) => e,
        _ => requested,
    }
}

/// Contact URI comparison good enough for finding our own binding: user, host and port.
fn same_binding(a: &Uri, b: &Uri) -> bool {
    a.user == b.user
        && a.host.to_string().eq_ignore_ascii_case(&b.host.to_string())
        && a.port == b.port
}

/// The registration state kept by the endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    /// The Call-ID used for every REGISTER of this binding (RFC 3261 §10.2).
    pub call_id: String,
    /// Our From tag.
    pub from_tag: String,
    /// The last CSeq number used.
    pub cseq: u32,
    /// The expiry we ask for.
    pub expires: u32,
    /// When to refresh, once registered.
    pub refresh_at: Option<Instant>,
    /// Whether we are registered now.
    pub registered: bool,
    /// Whether the application wants to be registered (between `register` and
    /// `unregister`): transient failures are then retried.
    pub wanted: bool,
    /// Whether the REGISTER in flight removes the binding.
    pub unregistering: bool,
    /// 423 retries done for the REGISTER in flight.
    pub interval_retries: u8,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::SipMessage;
    use bytes::Bytes;

    #[test]
    fn refresh_before_expiry() {
        assert_eq!(refresh_delay(60), Duration::from_secs(30));
        assert_eq!(refresh_delay(3600), Duration::from_secs(3568));
        assert_eq!(refresh_delay(1), Duration::from_secs(1));
        assert_eq!(refresh_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn granted_expires_prefers_our_contact_param() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@d>;tag=1\r\nTo: <sip:a@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 REGISTER\r\nContact: <sip:other@10.0.0.2:5060>;expires=10, <sip:a@10.0.0.1:5070>;expires=45\r\nExpires: 99\r\nContent-Length: 0\r\n\r\n";
        let SipMessage::Response(r) = SipMessage::parse(Bytes::from(text)).expect("parses") else {
            panic!("response expected")
        };
        let ours = Uri::parse("sip:a@10.0.0.1:5070").expect("uri");
        assert_eq!(granted_expires(&r, &ours, 3600), 45);
        let other = Uri::parse("sip:z@10.0.0.3").expect("uri");
        assert_eq!(granted_expires(&r, &other, 3600), 99);
    }
}
