//! Dialogs (RFC 3261 §12): identifiers, route sets, CSeq, target refresh.
//!
//! A [`Dialog`] is the peer-to-peer relationship created by a 2xx (or a 101-199 with a
//! To tag) to an INVITE or by a SUBSCRIBE/NOTIFY exchange (RFC 6665 §4.1.2.2). It holds
//! the state of RFC 3261 §12.1: the dialog id (Call-ID, local tag, remote tag), the local
//! and remote sequence numbers, the local and remote URIs, the remote target and the
//! route set. [`Dialog::request`] builds in-dialog requests as RFC 3261 §12.2.1.1 says,
//! with loose (`;lr`) and strict routing.

use crate::msg::{CSeq, Contact, Headers, Method, NameAddr, Request, Response, Uri};
use crate::transaction::Transport;

/// The identifier of a dialog (RFC 3261 §12): Call-ID, local tag and remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (From tag as UAC, To tag as UAS).
    pub local_tag: String,
    /// The peer's tag (To tag as UAC, From tag as UAS).
    pub remote_tag: String,
}

impl DialogId {
    /// Whether this id is (`call_id`, `local_tag`, `remote_tag`), as seen from our side
    /// (RFC 3261 §12.2.2: Call-ID, To tag = local tag, From tag = remote tag of a request
    /// from the peer).
    pub fn matches(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> bool {
        self.call_id == call_id && self.local_tag == local_tag && self.remote_tag == remote_tag
    }
}

/// Early (after a provisional response with a To tag) or confirmed (after a 2xx),
/// RFC 3261 §12.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogState {
    /// Created by a 101-199 response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Why a dialog could not be created from a message (the peer sent something unfit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header needed for the dialog state is missing or malformed (peer at fault).
    #[error("cannot build dialog state: {0}")]
    BadMessage(&'static str),
}

/// The state of one dialog (RFC 3261 §12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our URI with our tag (From of our requests).
    pub local: NameAddr,
    /// The peer's URI with its tag (To of our requests).
    pub remote: NameAddr,
    /// The last CSeq number we used (the next request uses one more).
    pub local_seq: u32,
    /// The highest CSeq number received from the peer, if any (§12.2.2).
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go: the peer's Contact (§12.1.1, §12.1.2).
    pub remote_target: Uri,
    /// The route set: Record-Route of the creating message, reversed for the UAC.
    pub route_set: Vec<Uri>,
    /// Whether the dialog was created over a `sips:` URI and TLS.
    pub secure: bool,
}

fn first_contact(headers: &Headers) -> Option<Uri> {
    headers.contacts().ok()?.into_iter().find_map(|c| match c {
        Contact::Addr(a) => Some(a.uri),
        Contact::Star => None,
    })
}

/// The parts of a dialog-creating exchange both sides need (RFC 3261 §12.1.1, §12.1.2):
/// From, Call-ID and CSeq of the request, To of `to_source` (the response for the UAC,
/// the request for the UAS), the first Contact and the Record-Route URIs of `peer`.
struct Parts {
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    seq: u32,
    remote_target: Uri,
    record_route: Vec<Uri>,
}

impl Parts {
    fn of(request: &Request, to_source: &Headers, peer: &Headers) -> Result<Parts, DialogError> {
        let bad = DialogError::BadMessage;
        let from = request.headers.from().map_err(|_| bad("From"))?;
        let to = to_source.to().map_err(|_| bad("To"))?;
        let call_id = request
            .headers
            .call_id()
            .map_err(|_| bad("Call-ID"))?
            .to_owned();
        let seq = request.headers.cseq().map_err(|_| bad("CSeq"))?.seq;
        let remote_target = first_contact(peer).ok_or(bad("no Contact"))?;
        let record_route = peer
            .record_route()
            .map_err(|_| bad("Record-Route"))?
            .into_iter()
            .map(|n| n.uri)
            .collect();
        Ok(Parts {
            from,
            to,
            call_id,
            seq,
            remote_target,
            record_route,
        })
    }
}

impl Dialog {
    /// The UAC side of a dialog created by `response` to `request` (RFC 3261 §12.1.2).
    /// The route set is the Record-Route of the response in reverse order; the remote
    /// target is the response's Contact.
    pub fn uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let p = Parts::of(request, &response.headers, &response.headers)?;
        let local_tag = p
            .from
            .tag()
            .ok_or(DialogError::BadMessage("request From has no tag"))?
            .to_owned();
        let remote_tag =
            p.to.tag()
                .ok_or(DialogError::BadMessage("response To has no tag"))?
                .to_owned();
        let mut route_set = p.record_route;
        route_set.reverse();
        let state = if (200..300).contains(&response.status) {
            DialogState::Confirmed
        } else {
            DialogState::Early
        };
        Ok(Dialog {
            id: DialogId {
                call_id: p.call_id,
                local_tag,
                remote_tag,
            },
            state,
            secure: matches!(request.uri().scheme, crate::msg::Scheme::Sips),
            local: p.from,
            remote: p.to,
            local_seq: p.seq,
            remote_seq: None,
            remote_target: p.remote_target,
            route_set,
        })
    }

    /// The UAS side of a dialog created by our response to `request`, with our
    /// `local_tag` (RFC 3261 §12.1.1). The route set is the request's Record-Route in
    /// order; the remote target is the request's Contact.
    pub fn uas(request: &Request, local_tag: &str) -> Result<Dialog, DialogError> {
        let p = Parts::of(request, &request.headers, &request.headers)?;
        let remote_tag = p
            .from
            .tag()
            .ok_or(DialogError::BadMessage("request From has no tag"))?
            .to_owned();
        Ok(Dialog {
            id: DialogId {
                call_id: p.call_id,
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            state: DialogState::Confirmed,
            secure: matches!(request.uri().scheme, crate::msg::Scheme::Sips),
            local: p.to.with_tag(local_tag),
            remote: p.from,
            // §12.1.1: the local sequence number is empty; we start at a fixed value.
            local_seq: 1,
            remote_seq: Some(p.seq),
            remote_target: p.remote_target,
            route_set: p.record_route,
        })
    }

    /// Marks the dialog secure when the message that created it travelled over TLS
    /// (the dialog then stays on TLS: RFC 3261 §26.2, RFC 5630 §3.1.3). A dialog over a
    /// `sips:` Request-URI is secure already; nothing makes a secure dialog insecure.
    pub fn over(mut self, transport: Transport) -> Self {
        self.secure |= transport == Transport::Tls;
        self
    }

    /// Updates the remote target from the Contact of a target refresh request or its
    /// 2xx response (RFC 3261 §12.2: re-INVITE, UPDATE; RFC 6665: SUBSCRIBE/NOTIFY).
    pub fn refresh_target(&mut self, headers: &Headers) {
        if let Some(uri) = first_contact(headers) {
            self.remote_target = uri;
        }
    }

    /// Checks the CSeq of an in-dialog request from the peer (RFC 3261 §12.2.2): returns
    /// false (answer 500) when it is lower than or equal to the last one seen, else
    /// remembers it.
    pub fn accept_remote_cseq(&mut self, seq: u32) -> bool {
        match self.remote_seq {
            Some(last) if seq <= last => false,
            _ => {
                self.remote_seq = Some(seq);
                true
            }
        }
    }

    /// Whether an in-dialog request from the peer belongs here (matching Call-ID, From
    /// tag = remote tag, To tag = local tag). Parses From and To once, copies nothing.
    pub fn matches_request(&self, request: &Request) -> bool {
        let (Ok(call_id), Ok(from), Ok(to)) = (
            request.headers.call_id(),
            request.headers.from(),
            request.headers.to(),
        ) else {
            return false;
        };
        match (from.tag(), to.tag()) {
            (Some(remote), Some(local)) => self.id.matches(call_id, local, remote),
            _ => false,
        }
    }

    /// The next local CSeq number (RFC 3261 §12.2.1.1: incremented by one per request,
    /// except ACK and CANCEL).
    pub fn next_seq(&mut self) -> u32 {
        self.local_seq = self.local_seq.saturating_add(1).min((1 << 31) - 1);
        self.local_seq
    }

    /// Builds an in-dialog request (RFC 3261 §12.2.1.1) with the given CSeq number: the
    /// Request-URI and Route header from the remote target and the route set (loose or
    /// strict routing), To with the remote tag, From with the local tag, Call-ID and
    /// CSeq. Via, Max-Forwards and Contact are the caller's business.
    pub fn request_with_seq(&self, method: Method, seq: u32) -> Request {
        let (uri, routes) = self.routing();
        let mut req = Request::new(method.clone(), uri);
        for r in routes {
            req.headers.push("Route", format!("<{r}>"));
        }
        req.headers.push("From", self.local.to_string());
        req.headers.push("To", self.remote.to_string());
        req.headers.push("Call-ID", self.id.call_id.clone());
        req.headers.push("CSeq", CSeq { seq, method }.to_string());
        req
    }

    /// Builds the next in-dialog request, consuming a new CSeq number.
    pub fn request(&mut self, method: Method) -> Request {
        let seq = self.next_seq();
        self.request_with_seq(method, seq)
    }

    /// The Request-URI and the Route values (RFC 3261 §12.2.1.1). With an empty route
    /// set: the remote target and no Route. With a loose router first (`;lr`): the remote
    /// target, and the route set as Route. With a strict router first: that route's URI
    /// (without parameters not allowed in a Request-URI), and the rest of the route set
    /// followed by the remote target as Route.
    pub fn routing(&self) -> (Uri, Vec<Uri>) {
        match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.params.has("lr") => {
                (self.remote_target.clone(), self.route_set.clone())
            }
            Some(first) => {
                let mut ruri = first.clone();
                // §19.1.1: method, maddr, ttl, transport, lr are not allowed in a
                // Request-URI... except transport/maddr which a strict router keeps;
                // drop the header part only.
                ruri.headers.clear();
                let mut routes: Vec<Uri> = self.route_set.iter().skip(1).cloned().collect();
                routes.push(self.remote_target.clone());
                (ruri, routes)
            }
        }
    }

    /// The URI whose host and port the request goes to first: the first Route value if
    /// any, else the Request-URI (RFC 3261 §8.1.2, §12.2.1.1).
    pub fn next_hop(&self) -> Uri {
        let (uri, routes) = self.routing();
        match self.route_set.first() {
            Some(first) if first.params.has("lr") => routes.into_iter().next().unwrap_or(uri),
            _ => uri,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::SipMessage;
    use bytes::Bytes;

    fn parse(s: &str) -> SipMessage {
        SipMessage::parse(Bytes::from(s.replace('\n', "\r\n"))).expect("test message parses")
    }

    const INVITE: &str = "INVITE sip:bob@b.test SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc
Max-Forwards: 70
From: <sip:alice@a.test>;tag=ta
To: <sip:bob@b.test>
Call-ID: c1@a
CSeq: 5 INVITE
Contact: <sip:alice@10.0.0.1:5060>
Record-Route: <sip:p1.test;lr>, <sip:p2.test;lr>
Content-Length: 0

";

    const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc
From: <sip:alice@a.test>;tag=ta
To: <sip:bob@b.test>;tag=tb
Call-ID: c1@a
CSeq: 5 INVITE
Contact: <sip:bob@10.0.0.2:5070>
Record-Route: <sip:p1.test;lr>
Record-Route: <sip:p2.test;lr>
Content-Length: 0

";

    fn req() -> Request {
        match parse(INVITE) {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("request expected"),
        }
    }

    fn ok() -> Response {
        match parse(OK) {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => panic!("response expected"),
        }
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_uses_contact() {
        let mut d = Dialog::uac(&req(), &ok()).expect("dialog");
        assert_eq!(d.id.local_tag, "ta");
        assert_eq!(d.id.remote_tag, "tb");
        assert_eq!(d.state, DialogState::Confirmed);
        let hosts: Vec<String> = d.route_set.iter().map(|u| u.host.to_string()).collect();
        assert_eq!(hosts, ["p2.test", "p1.test"]);
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri().to_string(), "sip:bob@10.0.0.2:5070");
        let routes: Vec<&str> = bye.headers.get_all("Route").collect();
        assert_eq!(routes, ["<sip:p2.test;lr>", "<sip:p1.test;lr>"]);
        assert_eq!(bye.headers.cseq().expect("cseq").seq, 6);
        assert_eq!(bye.headers.to().expect("to").tag(), Some("tb"));
        assert_eq!(d.next_hop().host.to_string(), "p2.test");
    }

    #[test]
    fn uas_dialog_keeps_record_route_order_and_checks_cseq() {
        let mut d = Dialog::uas(&req(), "tb").expect("dialog");
        assert_eq!(d.id.remote_tag, "ta");
        let hosts: Vec<String> = d.route_set.iter().map(|u| u.host.to_string()).collect();
        assert_eq!(hosts, ["p1.test", "p2.test"]);
        assert!(!d.accept_remote_cseq(5));
        assert!(d.accept_remote_cseq(6));
        let bye = d.request(Method::Bye);
        assert_eq!(bye.headers.from().expect("from").tag(), Some("tb"));
        assert_eq!(bye.headers.to().expect("to").tag(), Some("ta"));
        assert_eq!(bye.uri().to_string(), "sip:alice@10.0.0.1:5060");
    }

    #[test]
    fn strict_router_goes_into_request_uri() {
        let mut d = Dialog::uac(&req(), &ok()).expect("dialog");
        d.route_set = vec![
            Uri::parse("sip:strict.test").expect("uri"),
            Uri::parse("sip:p1.test;lr").expect("uri"),
        ];
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri().to_string(), "sip:strict.test");
        let routes: Vec<&str> = bye.headers.get_all("Route").collect();
        assert_eq!(routes, ["<sip:p1.test;lr>", "<sip:bob@10.0.0.2:5070>"]);
        assert_eq!(d.next_hop().host.to_string(), "strict.test");
    }

    #[test]
    fn target_refresh_replaces_remote_target() {
        let mut d = Dialog::uac(&req(), &ok()).expect("dialog");
        let mut h = Headers::new();
        h.push("Contact", "<sip:bob@10.0.0.9:6000>");
        d.refresh_target(&h);
        assert_eq!(d.remote_target.to_string(), "sip:bob@10.0.0.9:6000");
    }
}
