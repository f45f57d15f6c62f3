#![no_main]
//! Parses arbitrary bytes as a SIP datagram. Whatever parses must also survive every typed
//! accessor and validation without panicking, and its printed form must parse back to the
//! same message.
use bytes::Bytes;
use cusax_sip::msg::{PartialMessage, SipMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Borrowed typed views must agree with the owned accessors, and the parser's fast path
    // with its general path (each panics on a disagreement).
    cusax_sip::msg::fuzz_typed_views(data);
    cusax_sip::msg::fuzz_parse_paths(data);
    let input = Bytes::copy_from_slice(data);
    let m = match SipMessage::parse(input) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.reason();
            if let Some(p) = PartialMessage::extract(data) {
                let _ = p.error_response(e.status(), &e.reason());
            }
            return;
        }
    };
    let h = m.headers();
    let _ = h.via();
    let _ = h.top_via().map(|v| {
        (
            v.branch().map(str::len),
            v.rport(),
            v.received_addr(),
            v.to_string(),
        )
    });
    let _ = h.from().map(|n| n.to_string());
    let _ = h.to().map(|n| (n.tag().map(str::len), n.to_string()));
    let _ = h.call_id();
    let _ = h.cseq().map(|c| c.to_string());
    let _ = h
        .contacts()
        .map(|c| c.iter().map(|c| (c.to_string(), c.expires())).count());
    let _ = h.route();
    let _ = h.record_route();
    let _ = h.max_forwards();
    let _ = h.content_length();
    let _ = h.expires();
    let _ = h.min_expires();
    let _ = h.www_authenticate().map(|v| {
        v.iter()
            .map(|c| (c.to_string(), c.qop(), c.stale()))
            .count()
    });
    let _ = h.proxy_authenticate();
    let _ = h
        .authorization()
        .map(|v| v.iter().map(|c| c.to_string()).count());
    let _ = h.proxy_authorization();
    let _ = h.call_info().map(|v| {
        v.iter()
            .map(|c| (c.is_purpose("impp"), c.to_string()))
            .count()
    });
    let _ = h.p_asserted_identity();
    let _ = h.privacy();
    let _ = h.event();
    let _ = h.subscription_state();
    let _ = h.allow();
    let _ = h.supported();
    let _ = h.require();
    let _ = h.warning();
    let _ = m.defects();
    if let Some(r) = m.as_request() {
        let _ = r.uri().equivalent(r.uri());
    }

    let printed = m.to_bytes();
    let mut again = match SipMessage::parse(printed.clone()) {
        Ok(x) => x,
        Err(e) => panic!(
            "printed message does not parse: {e}\n{:?}",
            String::from_utf8_lossy(&printed)
        ),
    };
    if !m.headers().contains("Content-Length") {
        again.headers_mut().remove("Content-Length");
    }
    assert_eq!(m, again, "print/parse round trip changed the message");
});
