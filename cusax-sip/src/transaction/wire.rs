//! The parts of messages the transaction layer reads and writes: Via matching data,
//! `received`/`rport`, the ACK for a non-2xx final response, stateless responses.

use std::net::IpAddr;

use bytes::Bytes;
use md5::{Digest as _, Md5};

use super::{Target, Transport};
use crate::msg::{CSeq, Headers, Method, ParseError, PartialMessage, Request, Response};

/// What the transaction layer needs from a request.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    pub branch: Option<String>,
    pub via_host: String,
    pub via_port: Option<u16>,
    pub via_transport: String,
    pub top_via_text: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub call_id: String,
    pub from_tag: Option<String>,
}

impl RequestInfo {
    /// The sent-by of the top Via with the transport's default port filled in, host in
    /// lower case (RFC 3261 §17.2.3 compares sent-by values).
    pub fn sent_by(&self, fallback: Transport) -> String {
        let transport = Transport::parse(&self.via_transport).unwrap_or(fallback);
        let port = self.via_port.unwrap_or(transport.default_port());
        format!("{}:{port}", self.via_host.to_ascii_lowercase())
    }
}

pub(crate) fn request_info(req: &Request) -> Result<RequestInfo, &'static str> {
    let via = req
        .headers
        .top_via()
        .map_err(|_| "missing or malformed Via")?;
    let cseq = req
        .headers
        .cseq()
        .map_err(|_| "missing or malformed CSeq")?;
    let call_id = req
        .headers
        .call_id()
        .map_err(|_| "missing or malformed Call-ID")?
        .to_string();
    let from = req
        .headers
        .from()
        .map_err(|_| "missing or malformed From")?;
    req.headers.to().map_err(|_| "missing or malformed To")?;
    Ok(RequestInfo {
        branch: via.branch().map(str::to_string),
        via_host: via.host.to_string(),
        via_port: via.port,
        via_transport: via.transport.clone(),
        top_via_text: via.to_string(),
        cseq: cseq.seq,
        cseq_method: cseq.method,
        call_id,
        from_tag: from.tag().map(str::to_string),
    })
}

/// What the transaction layer needs from a response.
#[derive(Debug, Clone)]
pub(crate) struct ResponseInfo {
    pub branch: Option<String>,
    pub via_count: usize,
    pub cseq_method: Method,
}

pub(crate) fn response_info(resp: &Response) -> Result<ResponseInfo, &'static str> {
    let vias = resp.headers.via().map_err(|_| "malformed Via")?;
    let top = vias.first().ok_or("no Via")?;
    let cseq = resp
        .headers
        .cseq()
        .map_err(|_| "missing or malformed CSeq")?;
    Ok(ResponseInfo {
        branch: top.branch().map(str::to_string),
        via_count: vias.len(),
        cseq_method: cseq.method,
    })
}

pub(crate) fn has_via(req: &Request) -> bool {
    req.headers.top_via().is_ok()
}

/// Adds `received` (RFC 3261 §18.2.1: when sent-by is not the source address) and
/// fills `rport` when the client asked for it (RFC 3581 §4, which then also requires
/// `received`).
pub(crate) fn stamp_received(req: &mut Request, source: std::net::SocketAddr) {
    let Ok(mut vias) = req.headers.via() else {
        return;
    };
    let Some(top) = vias.first_mut() else {
        return;
    };
    let ip = source.ip();
    let host_is_source = match &top.host {
        crate::msg::Host::Ipv4(a) => IpAddr::V4(*a) == ip,
        crate::msg::Host::Ipv6(a) => IpAddr::V6(*a) == ip,
        crate::msg::Host::Domain(_) => false,
    };
    let wants_rport = top.rport().is_some();
    if wants_rport {
        top.params.set("rport", Some(source.port().to_string()));
    }
    if !host_is_source || wants_rport {
        let text = match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => a.to_string(),
        };
        top.params.set("received", Some(text));
    }
    // One Via per line, in order, before the other headers.
    req.headers.remove("Via");
    for via in vias.iter().rev() {
        req.headers.insert_first("Via", via.to_string());
    }
}

/// Where to send responses to `request` received from `source` (RFC 3261 §18.2.2, RFC
/// 3581 §4): the same connection for reliable transports; for UDP the `received`
/// address (or the source address) and the `rport` port, else the sent-by port.
pub fn response_target(request: &Request, source: Target) -> Target {
    if source.transport.is_reliable() {
        return source;
    }
    let Ok(via) = request.headers.top_via() else {
        return source;
    };
    let ip = via.received_addr().unwrap_or(source.addr.ip());
    let port = match via.rport() {
        Some(Some(p)) => p,
        Some(None) => source.addr.port(),
        None => via.port.unwrap_or(source.transport.default_port()),
    };
    Target::new(source.transport, std::net::SocketAddr::new(ip, port))
}

/// The ACK an INVITE client transaction sends for a 300-699 response (RFC 3261
/// §17.1.1.3): the INVITE's Request-URI, Call-ID, From, CSeq number (method ACK), top
/// Via and Route headers, and the response's To (with its tag).
pub fn build_ack_for_non_2xx(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.top_via().ok().map(|v| v.to_string()) {
        headers.push("Via", via);
    }
    headers.push("Max-Forwards", "70");
    if let Some(from) = invite.headers.get("From") {
        headers.push("From", from);
    }
    if let Some(to) = response.headers.get("To") {
        headers.push("To", to);
    }
    if let Some(call_id) = invite.headers.get("Call-ID") {
        headers.push("Call-ID", call_id);
    }
    if let Ok(cseq) = invite.headers.cseq() {
        headers.push(
            "CSeq",
            CSeq {
                seq: cseq.seq,
                method: Method::Ack,
            }
            .to_string(),
        );
    }
    for route in invite.headers.get_all("Route") {
        headers.push("Route", route);
    }
    headers.push("Content-Length", "0");
    let mut ack = Request::new(Method::Ack, invite.uri().clone());
    ack.headers = headers;
    ack
}

/// A response built by the transaction layer itself (`100 Trying`, stateless `400`,
/// `503`), per RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq copied; a To tag derived
/// from the request for final responses (the same request always gets the same tag,
/// §8.2.7); Timestamp echoed in `100 Trying` (§8.2.6.1).
pub(crate) fn build_response(req: &Request, status: u16, reason: &str) -> Response {
    let mut headers = Headers::new();
    for via in req.headers.get_all("Via") {
        headers.push("Via", via);
    }
    if let Some(from) = req.headers.get("From") {
        headers.push("From", from);
    }
    if let Some(to) = req.headers.get("To") {
        let has_tag = req.headers.to().map(|t| t.tag().is_some()).unwrap_or(true);
        if status > 100 && !has_tag {
            headers.push("To", format!("{to};tag={}", derived_tag(req)));
        } else {
            headers.push("To", to);
        }
    }
    if let Some(call_id) = req.headers.get("Call-ID") {
        headers.push("Call-ID", call_id);
    }
    if let Some(cseq) = req.headers.get("CSeq") {
        headers.push("CSeq", cseq);
    }
    if status == 100
        && let Some(ts) = req.headers.get("Timestamp")
    {
        headers.push("Timestamp", ts);
    }
    headers.push("Content-Length", "0");
    Response {
        status,
        reason: reason.to_string(),
        headers,
        body: Bytes::new(),
    }
}

fn derived_tag(req: &Request) -> String {
    let mut h = Md5::new();
    for name in ["Via", "Call-ID", "CSeq", "From"] {
        if let Some(v) = req.headers.get(name) {
            h.update(v.as_bytes());
        }
        h.update(b"\n");
    }
    let d = h.finalize();
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn request_bytes(req: &Request) -> Bytes {
    req.to_bytes()
}

pub(crate) fn response_bytes(resp: &Response) -> Bytes {
    resp.to_bytes()
}

/// A stateless error response for a request that failed to parse, when its request
/// line and the Via, From, To, Call-ID and CSeq header lines are readable (RFC 3261
/// §8.2.6). Never answers an ACK or a response.
pub(crate) fn salvage_bad_request(data: &[u8], error: &ParseError) -> Option<Bytes> {
    let partial = PartialMessage::extract(data)?;
    let mut resp = partial.error_response(error.status(), &error.reason())?;
    let to = resp.headers.get("To")?.to_string();
    if !to.to_ascii_lowercase().contains("tag=") {
        let mut h = Md5::new();
        h.update(data.get(..data.len().min(4096)).unwrap_or_default());
        let tag: String = h
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        resp.headers.set("To", format!("{to};tag={tag}"));
    }
    Some(resp.to_bytes())
}
