//! Security defaults of the sans-IO endpoint, driven by hand-written peer messages:
//! TLS by default, no downgrade of `sips:` or TLS dialogs, per-target TLS server names,
//! trusted P-Asserted-Identity, signalling-security data on events, Call-Info on the
//! answer, in-dialog CSeq checks, no lost events.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use cusax_sip::endpoint::{
    Account, AnswerOptions, AssertedIdentity, CallId, CallOptions, Endpoint, EndpointConfig,
    EndpointError, Input, Output, SignallingSecurity, SipEvent, TlsInfo, TrustedProxy,
};
use cusax_sip::msg::{Request, Response, SipMessage, Uri};
use cusax_sip::transaction::{Target, Transmit, Transport};

const LOCAL: &str = "127.0.0.1:5070";
const PROXY: &str = "127.0.0.1:5061";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn account(registrar: Target) -> Account {
    Account {
        aor: Uri::parse("sip:alice@cusax.test").expect("aor"),
        display_name: None,
        username: "alice".into(),
        password: "alice-secret".into(),
        registrar,
        outbound_proxy: None,
        expires: 600,
    }
}

/// Drains the endpoint: (transmits, events).
fn drain(e: &mut Endpoint) -> (Vec<Transmit>, Vec<SipEvent>) {
    let (mut out, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = e.poll_output() {
        match o {
            Output::Transmit(t) => out.push(t),
            Output::Event(ev) => events.push(ev),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    (out, events)
}

fn parse_request(t: &Transmit) -> Request {
    match SipMessage::parse(t.data.clone()).expect("valid SIP") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("request expected"),
    }
}

fn parse_response(t: &Transmit) -> Response {
    match SipMessage::parse(t.data.clone()).expect("valid SIP") {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("response expected"),
    }
}

fn tls_info(name: &str) -> TlsInfo {
    TlsInfo {
        protocol_version: "TLSv1_3".into(),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
        peer_verified: true,
        server_name: Some(name.into()),
    }
}

fn connected(e: &mut Endpoint, now: Instant, target: Target, name: &str) {
    e.handle_input(
        now,
        Input::Connected {
            target,
            tls: tls_info(name),
        },
    );
}

fn feed(e: &mut Endpoint, now: Instant, text: &str, source: Target) {
    e.handle_input(
        now,
        Input::Receive {
            data: Bytes::from(text.replace('\n', "\r\n")),
            source: source.addr,
            transport: source.transport,
        },
    );
}

/// A response to `req` with the given status, To tag and extra header lines.
fn respond(req: &Request, status: u16, to_tag: &str, extra: &str) -> String {
    let via: Vec<&str> = req.headers.get_all("Via").collect();
    format!(
        "SIP/2.0 {status} X\nVia: {}\nFrom: {}\nTo: {};tag={to_tag}\nCall-ID: {}\nCSeq: {}\n{extra}Content-Length: 0\n\n",
        via.join(", "),
        req.headers.get("From").expect("From"),
        req.headers.get("To").expect("To"),
        req.headers.get("Call-ID").expect("Call-ID"),
        req.headers.get("CSeq").expect("CSeq"),
    )
}

#[test]
fn tls_is_the_default_and_plain_transports_need_an_explicit_opt_in() {
    let now = Instant::now();
    let cfg = EndpointConfig::new(addr(LOCAL));
    assert_eq!(cfg.transport, Transport::Tls);
    assert!(!cfg.allow_insecure_transport);

    // A registrar reached over UDP is refused without the opt-in.
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(Target::new(Transport::Udp, addr("127.0.0.1:5060"))));
    let mut e = Endpoint::new(cfg, 1);
    assert!(matches!(
        e.register(now),
        Err(EndpointError::InsecureTransport(t)) if t.transport == Transport::Udp
    ));
    assert!(drain(&mut e).0.is_empty(), "nothing sent in clear text");

    // Over TLS: Via and Contact say TLS.
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(Target::new(Transport::Tls, addr(PROXY))));
    let mut e = Endpoint::new(cfg, 1);
    e.register(now).expect("register over TLS");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.transport, Transport::Tls);
    let reg = parse_request(&out[0]);
    assert!(
        reg.headers
            .get("Via")
            .expect("Via")
            .starts_with("SIP/2.0/TLS ")
    );
    assert!(
        reg.headers
            .get("Contact")
            .expect("Contact")
            .contains(";transport=tls")
    );

    // The explicit opt-in allows UDP.
    let mut cfg = EndpointConfig::insecure(addr(LOCAL), Transport::Udp);
    cfg.account = Some(account(Target::new(Transport::Udp, addr("127.0.0.1:5060"))));
    let mut e = Endpoint::new(cfg, 1);
    e.register(now).expect("register over UDP when opted in");
    assert_eq!(drain(&mut e).0[0].target.transport, Transport::Udp);
}

#[test]
fn messages_over_plain_transports_are_dropped_by_default() {
    let now = Instant::now();
    let mut e = Endpoint::new(EndpointConfig::new(addr(LOCAL)), 2);
    let invite = "INVITE sip:alice@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKplain
Max-Forwards: 70
From: <sip:mallory@evil.test>;tag=m1
To: <sip:alice@cusax.test>
Call-ID: plain@evil.test
CSeq: 1 INVITE
Contact: <sip:mallory@127.0.0.1:5090>
Content-Length: 0

";
    feed(
        &mut e,
        now,
        invite,
        Target::new(Transport::Udp, addr("127.0.0.1:5090")),
    );
    let (out, events) = drain(&mut e);
    assert!(out.is_empty(), "{out:?}");
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn tls_server_name_is_chosen_per_target() {
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(Target::new(Transport::Tls, addr(PROXY))));
    let e = Endpoint::new(cfg, 3);
    assert_eq!(
        e.tls_server_name(&Target::new(Transport::Tls, addr(PROXY))),
        "cusax.test"
    );
    assert_eq!(
        e.tls_server_name(&Target::new(Transport::Tls, addr("127.0.0.2:5061"))),
        "127.0.0.2"
    );
}

/// Places a call over TLS to an IP-literal peer and answers it with a 200 whose
/// Contact is `contact`; returns the endpoint, its call and the peer target.
fn tls_call_answered(contact: &str, to: &str) -> (Endpoint, CallId, Target, Vec<Transmit>) {
    let (e, call, peer, out, _) = tls_call_answered_with(contact, to, "");
    (e, call, peer, out)
}

/// Like [`tls_call_answered`] with extra header lines in the 200; also returns the
/// events.
fn tls_call_answered_with(
    contact: &str,
    to: &str,
    extra: &str,
) -> (Endpoint, CallId, Target, Vec<Transmit>, Vec<SipEvent>) {
    let now = Instant::now();
    let mut e = Endpoint::new(EndpointConfig::new(addr(LOCAL)), 4);
    let peer = Target::new(Transport::Tls, addr(PROXY));
    let call = e
        .invite(
            now,
            Uri::parse(to).expect("uri"),
            Bytes::from_static(b"v=0\r\n"),
            CallOptions::default(),
        )
        .expect("invite");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target, peer);
    let inv = parse_request(&out[0]);
    feed(
        &mut e,
        now,
        &respond(
            &inv,
            200,
            "bobtag",
            &format!("Contact: <{contact}>\n{extra}"),
        ),
        peer,
    );
    let (out, events) = drain(&mut e);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallAnswered { call: c, .. } if *c == call)),
        "{events:?}"
    );
    (e, call, peer, out, events)
}

#[test]
fn a_tls_dialog_never_moves_to_udp() {
    let (mut e, call, _, out) = tls_call_answered(
        "sip:bob@127.0.0.1:5062;transport=udp",
        "sip:bob@127.0.0.1:5061",
    );
    assert!(
        out.iter().all(|t| t.target.transport == Transport::Tls),
        "no ACK over UDP: {out:?}"
    );
    let now = Instant::now();
    assert!(matches!(e.bye(now, call), Err(EndpointError::Downgrade(_))));
    assert!(matches!(
        e.reinvite(now, call, Bytes::from_static(b"v=0\r\n")),
        Err(EndpointError::Downgrade(_))
    ));
    let (out, _) = drain(&mut e);
    assert!(
        out.iter().all(|t| t.target.transport == Transport::Tls),
        "{out:?}"
    );
}

#[test]
fn a_tls_dialog_with_a_plain_contact_stays_on_tls() {
    // No transport parameter: the next request goes to the Contact over TLS.
    let (mut e, call, _, out) =
        tls_call_answered("sip:bob@127.0.0.1:5063", "sip:bob@127.0.0.1:5061");
    let ack = out
        .iter()
        .find(|t| parse_request(t).method.as_str() == "ACK")
        .expect("ACK sent");
    assert_eq!(
        ack.target,
        Target::new(Transport::Tls, addr("127.0.0.1:5063"))
    );
    e.bye(Instant::now(), call).expect("BYE over TLS");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.transport, Transport::Tls);
}

#[test]
fn sips_uris_are_never_sent_over_plain_transports() {
    let now = Instant::now();
    // Even with plain transports allowed, a sips: URI needs TLS.
    let mut e = Endpoint::new(EndpointConfig::insecure(addr(LOCAL), Transport::Udp), 5);
    let r = e.invite(
        now,
        Uri::parse("sips:bob@127.0.0.1:5062;transport=udp").expect("uri"),
        Bytes::new(),
        CallOptions::default(),
    );
    assert!(matches!(r, Err(EndpointError::Downgrade(_))), "{r:?}");
    // Without a transport parameter, sips: goes over TLS (port 5061 by default).
    e.invite(
        now,
        Uri::parse("sips:bob@127.0.0.1").expect("uri"),
        Bytes::new(),
        CallOptions::default(),
    )
    .expect("invite");
    let (out, _) = drain(&mut e);
    assert_eq!(
        out[0].target,
        Target::new(Transport::Tls, addr("127.0.0.1:5061"))
    );
}

// ------------------------------------------------------------------ signalling security

#[test]
fn registered_event_carries_the_tls_parameters_of_the_registrar_connection() {
    let now = Instant::now();
    let registrar = Target::new(Transport::Tls, addr(PROXY));
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(registrar));
    let mut e = Endpoint::new(cfg, 6);
    e.register(now).expect("register");
    let (out, _) = drain(&mut e);
    // The driver reports the handshake before the first message over the connection.
    connected(&mut e, now, registrar, "cusax.test");
    let reg = parse_request(&out[0]);
    let contact = reg.headers.get("Contact").expect("Contact").to_owned();
    feed(
        &mut e,
        now,
        &respond(
            &reg,
            200,
            "r1",
            &format!("Contact: {contact};expires=600\n"),
        ),
        registrar,
    );
    let (_, events) = drain(&mut e);
    let security = events
        .iter()
        .find_map(|ev| match ev {
            SipEvent::Registered { security, .. } => Some(security.clone()),
            _ => None,
        })
        .expect("registered");
    assert_eq!(
        security,
        SignallingSecurity {
            transport: Transport::Tls,
            tls: Some(tls_info("cusax.test")),
        }
    );
    assert!(security.is_verified_tls());

    // Over plain UDP (opted in): the event says so.
    let udp = Target::new(Transport::Udp, addr("127.0.0.1:5060"));
    let mut cfg = EndpointConfig::insecure(addr(LOCAL), Transport::Udp);
    cfg.account = Some(account(udp));
    let mut e = Endpoint::new(cfg, 6);
    e.register(now).expect("register");
    let (out, _) = drain(&mut e);
    let reg = parse_request(&out[0]);
    let contact = reg.headers.get("Contact").expect("Contact").to_owned();
    feed(
        &mut e,
        now,
        &respond(
            &reg,
            200,
            "r1",
            &format!("Contact: {contact};expires=600\n"),
        ),
        udp,
    );
    let (_, events) = drain(&mut e);
    assert!(
        events.iter().any(|ev| matches!(
            ev,
            SipEvent::Registered { security, .. }
                if security.transport == Transport::Udp && security.tls.is_none()
                    && !security.is_verified_tls()
        )),
        "{events:?}"
    );
}

#[test]
fn a_broken_connection_forgets_its_tls_parameters() {
    let now = Instant::now();
    let proxy = Target::new(Transport::Tls, addr(PROXY));
    let mut e = Endpoint::new(EndpointConfig::new(addr(LOCAL)), 7);
    connected(&mut e, now, proxy, "cusax.test");
    assert!(e.security_of(&proxy).is_verified_tls());
    e.handle_input(
        now,
        Input::TransportError {
            target: proxy,
            reason: "connection closed by peer".into(),
        },
    );
    assert_eq!(e.security_of(&proxy).tls, None);
}

fn invite_text(branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:alice@127.0.0.1:5070;transport=tls SIP/2.0
Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{branch}
Max-Forwards: 70
From: <sip:bob@cusax.test>;tag=b-{branch}
To: <sip:alice@cusax.test>
Call-ID: {branch}@cusax.test
CSeq: 1 INVITE
Contact: <sip:bob@127.0.0.1:5090;transport=tls>
{extra}Content-Length: 0

"
    )
}

/// Feeds an INVITE from `source` and returns its IncomingCall event.
fn incoming(e: &mut Endpoint, source: Target, branch: &str, extra: &str) -> SipEvent {
    feed(e, Instant::now(), &invite_text(branch, extra), source);
    let (_, events) = drain(e);
    events
        .into_iter()
        .find(|ev| matches!(ev, SipEvent::IncomingCall { .. }))
        .expect("incoming call")
}

fn asserted(ev: &SipEvent) -> Option<AssertedIdentity> {
    match ev {
        SipEvent::IncomingCall {
            asserted_identity, ..
        } => asserted_identity.clone(),
        _ => None,
    }
}

const PAI: &str = "P-Asserted-Identity: <sip:bob@cusax.test>\n";

#[test]
fn p_asserted_identity_is_trusted_only_from_a_trusted_proxy_over_verified_tls() {
    let now = Instant::now();
    let proxy = Target::new(Transport::Tls, addr(PROXY));
    let other = Target::new(Transport::Tls, addr("127.0.0.9:5061"));
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.trusted_identity_proxies = vec![TrustedProxy::Addr(addr(PROXY))];
    let mut e = Endpoint::new(cfg, 8);

    // The trusted proxy, but no verified TLS connection known: untrusted.
    let ev = incoming(&mut e, proxy, "a1", PAI);
    assert!(
        matches!(asserted(&ev), Some(AssertedIdentity::Untrusted(a)) if a.uri.to_string() == "sip:bob@cusax.test"),
        "{ev:?}"
    );

    // The trusted proxy over verified TLS: trusted, and the event carries the TLS data.
    connected(&mut e, now, proxy, "cusax.test");
    let ev = incoming(&mut e, proxy, "a2", PAI);
    assert!(
        matches!(asserted(&ev), Some(AssertedIdentity::Trusted(a)) if a.uri.to_string() == "sip:bob@cusax.test"),
        "{ev:?}"
    );
    assert!(matches!(
        &ev,
        SipEvent::IncomingCall { security, .. } if *security == SignallingSecurity {
            transport: Transport::Tls,
            tls: Some(tls_info("cusax.test")),
        }
    ));

    // Another verified TLS peer that is not configured: untrusted.
    connected(&mut e, now, other, "127.0.0.9");
    let ev = incoming(&mut e, other, "a3", PAI);
    assert!(matches!(
        asserted(&ev),
        Some(AssertedIdentity::Untrusted(_))
    ));

    // No P-Asserted-Identity: none.
    let ev = incoming(&mut e, proxy, "a4", "");
    assert_eq!(asserted(&ev), None);
}

#[test]
fn p_asserted_identity_trust_by_certificate_name_and_never_over_udp() {
    let now = Instant::now();
    let proxy = Target::new(Transport::Tls, addr(PROXY));
    let mut cfg = EndpointConfig::insecure(addr(LOCAL), Transport::Udp);
    cfg.trusted_identity_proxies = vec![
        TrustedProxy::Name("CUSAX.test".into()),
        TrustedProxy::Addr(addr("127.0.0.1:5060")),
    ];
    let mut e = Endpoint::new(cfg, 9);
    connected(&mut e, now, proxy, "cusax.test");
    let ev = incoming(&mut e, proxy, "n1", PAI);
    assert!(matches!(asserted(&ev), Some(AssertedIdentity::Trusted(_))));
    // The configured address over plain UDP: anyone could spoof it.
    let udp = Target::new(Transport::Udp, addr("127.0.0.1:5060"));
    let ev = incoming(&mut e, udp, "n2", PAI);
    assert!(matches!(
        asserted(&ev),
        Some(AssertedIdentity::Untrusted(_))
    ));
    assert!(matches!(
        &ev,
        SipEvent::IncomingCall { security, .. } if security.transport == Transport::Udp
    ));
}

// ------------------------------------------------------------------ Call-Info on the answer

fn answer_and_get_200(e: &mut Endpoint, ev: &SipEvent, opts: AnswerOptions) -> Response {
    let SipEvent::IncomingCall { call, .. } = ev else {
        panic!("incoming call expected");
    };
    e.answer_with(Instant::now(), *call, 200, Bytes::new(), opts)
        .expect("answer");
    let (out, _) = drain(e);
    out.iter()
        .map(parse_response)
        .find(|r| r.status == 200)
        .expect("200 sent")
}

#[test]
fn the_answer_carries_call_info_except_to_anonymous_callers() {
    let proxy = Target::new(Transport::Tls, addr(PROXY));
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.call_info_impp = Some("alice@cusax.test".into());
    let mut e = Endpoint::new(cfg, 10);

    let ev = incoming(&mut e, proxy, "c1", "");
    let ok = answer_and_get_200(&mut e, &ev, AnswerOptions::with_impp());
    let ci: Vec<&str> = ok.headers.get_all("Call-Info").collect();
    assert_eq!(ci, ["<xmpp:alice@cusax.test>;purpose=impp"]);

    // Without the option: none.
    let ev = incoming(&mut e, proxy, "c2", "");
    let ok = answer_and_get_200(&mut e, &ev, AnswerOptions::default());
    assert_eq!(ok.headers.get_all("Call-Info").count(), 0);

    // An anonymous caller (Privacy: id) gets no Call-Info, whatever the options.
    let ev = incoming(&mut e, proxy, "c3", "Privacy: id\n");
    let mut opts = AnswerOptions::with_impp();
    opts.call_info = vec![SipMessage::parse(Bytes::from_static(
        b"SIP/2.0 200 OK\r\nCall-Info: <https://cusax.test/a.png>;purpose=icon\r\nContent-Length: 0\r\n\r\n",
    ))
    .ok()
    .and_then(|m| match m {
        SipMessage::Response(r) => r.headers.call_info().ok(),
        SipMessage::Request(_) => None,
    })
    .and_then(|v| v.into_iter().next())
    .expect("a Call-Info value")];
    let ok = answer_and_get_200(&mut e, &ev, opts.clone());
    assert_eq!(ok.headers.get_all("Call-Info").count(), 0, "{ok:?}");

    // The same extra value on a normal call is printed.
    let ev = incoming(&mut e, proxy, "c4", "");
    let ok = answer_and_get_200(&mut e, &ev, opts);
    let ci: Vec<&str> = ok.headers.get_all("Call-Info").collect();
    assert_eq!(
        ci,
        [
            "<xmpp:alice@cusax.test>;purpose=impp",
            "<https://cusax.test/a.png>;purpose=icon"
        ]
    );
}

#[test]
fn call_answered_exposes_every_call_info_of_the_2xx() {
    let (_, _, _, _, events) = tls_call_answered_with(
        "sip:bob@127.0.0.1:5063",
        "sip:bob@127.0.0.1:5061",
        "Call-Info: <xmpp:bob@cusax.test>;purpose=impp, <https://cusax.test/b.png>;purpose=icon\nCall-Info: <sip:bob@cusax.test>;purpose=info\n",
    );
    let ci = events
        .iter()
        .find_map(|ev| match ev {
            SipEvent::CallAnswered { call_info, .. } => Some(call_info.clone()),
            _ => None,
        })
        .expect("answered");
    let uris: Vec<&str> = ci.iter().map(|c| c.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "xmpp:bob@cusax.test",
            "https://cusax.test/b.png",
            "sip:bob@cusax.test"
        ]
    );
    assert!(ci[0].is_purpose("impp"));
}

// ------------------------------------------------------------------ in-dialog CSeq (RFC 3261 §12.2.2)

/// An in-dialog request from the caller of `invite_text(branch, ..)`.
fn in_dialog(method: &str, branch: &str, n: &str, local_tag: &str, seq: u32) -> String {
    format!(
        "{method} sip:alice@127.0.0.1:5070;transport=tls SIP/2.0
Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{n}
Max-Forwards: 70
From: <sip:bob@cusax.test>;tag=b-{branch}
To: <sip:alice@cusax.test>;tag={local_tag}
Call-ID: {branch}@cusax.test
CSeq: {seq} {method}
Content-Length: 0

"
    )
}

fn statuses(e: &mut Endpoint) -> (Vec<u16>, Vec<SipEvent>) {
    let (out, events) = drain(e);
    let st = out
        .iter()
        .filter_map(|t| match SipMessage::parse(t.data.clone()) {
            Ok(SipMessage::Response(r)) => Some(r.status),
            _ => None,
        })
        .collect();
    (st, events)
}

#[test]
fn in_dialog_requests_with_an_old_cseq_get_500() {
    let now = Instant::now();
    let proxy = Target::new(Transport::Tls, addr(PROXY));
    let mut e = Endpoint::new(EndpointConfig::new(addr(LOCAL)), 12);
    // The caller's INVITE has CSeq 1; our 200 gives the dialog our tag.
    let ev = incoming(&mut e, proxy, "q1", "");
    let ok = answer_and_get_200(&mut e, &ev, AnswerOptions::default());
    let local_tag = ok.headers.to().expect("To").tag().expect("tag").to_owned();
    let SipEvent::IncomingCall { call, .. } = ev else {
        unreachable!()
    };

    // INFO 5 is accepted; INFO 3 afterwards is out of order.
    feed(
        &mut e,
        now,
        &in_dialog("INFO", "q1", "i5", &local_tag, 5),
        proxy,
    );
    assert_eq!(statuses(&mut e).0, [200]);
    feed(
        &mut e,
        now,
        &in_dialog("INFO", "q1", "i3", &local_tag, 3),
        proxy,
    );
    assert_eq!(statuses(&mut e).0, [500]);

    // A BYE with a CSeq lower than the last one: 500, and the call goes on.
    feed(
        &mut e,
        now,
        &in_dialog("BYE", "q1", "b4", &local_tag, 4),
        proxy,
    );
    let (st, events) = statuses(&mut e);
    assert_eq!(st, [500]);
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallEnded { .. })),
        "{events:?}"
    );
    // An in-dialog OPTIONS below it too.
    feed(
        &mut e,
        now,
        &in_dialog("OPTIONS", "q1", "o2", &local_tag, 2),
        proxy,
    );
    assert_eq!(statuses(&mut e).0, [500]);

    // The next BYE in order ends the call.
    feed(
        &mut e,
        now,
        &in_dialog("BYE", "q1", "b6", &local_tag, 6),
        proxy,
    );
    let (st, events) = statuses(&mut e);
    assert_eq!(st, [200]);
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, SipEvent::CallEnded { call: c, .. } if *c == call)),
        "{events:?}"
    );
}

// ------------------------------------------------------------------ pre-emptive credentials

fn auth_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(',').find_map(|p| {
        let p = p.trim().trim_start_matches("Digest ").trim();
        let (n, v) = p.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Answers the REGISTER in `out[0]` with 200 and returns whether Registered came.
fn register_ok(e: &mut Endpoint, out: &[Transmit], registrar: Target) -> bool {
    let reg = parse_request(&out[0]);
    let contact = reg.headers.get("Contact").expect("Contact").to_owned();
    feed(
        e,
        Instant::now(),
        &respond(&reg, 200, "r", &format!("Contact: {contact};expires=600\n")),
        registrar,
    );
    drain(e)
        .1
        .iter()
        .any(|ev| matches!(ev, SipEvent::Registered { .. }))
}

#[test]
fn later_requests_reuse_the_nonce_with_the_next_nonce_count() {
    let now = Instant::now();
    let registrar = Target::new(Transport::Tls, addr(PROXY));
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    cfg.account = Some(account(registrar));
    let mut e = Endpoint::new(cfg, 13);
    let challenge = |nonce: &str, stale: bool| {
        format!(
            "WWW-Authenticate: Digest realm=\"cusax.test\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{}\n",
            if stale { ", stale=true" } else { "" }
        )
    };

    // First REGISTER: no credentials, 401, retry with nc=1.
    e.register(now).expect("register");
    let (out, _) = drain(&mut e);
    let reg = parse_request(&out[0]);
    assert!(!reg.headers.contains("Authorization"));
    feed(
        &mut e,
        now,
        &respond(&reg, 401, "c", &challenge("n1", false)),
        registrar,
    );
    let (out, _) = drain(&mut e);
    let auth = parse_request(&out[0])
        .headers
        .get("Authorization")
        .expect("credentials")
        .to_owned();
    assert_eq!(auth_param(&auth, "nonce"), Some("n1"));
    assert_eq!(auth_param(&auth, "nc"), Some("00000001"));
    assert!(register_ok(&mut e, &out, registrar));

    // The refresh carries credentials at once: same nonce, nc=2; no round trip.
    e.register(now).expect("refresh");
    let (out, _) = drain(&mut e);
    assert_eq!(out.len(), 1);
    let auth = parse_request(&out[0])
        .headers
        .get("Authorization")
        .expect("pre-emptive credentials")
        .to_owned();
    assert_eq!(auth_param(&auth, "nonce"), Some("n1"));
    assert_eq!(auth_param(&auth, "nc"), Some("00000002"));
    assert!(register_ok(&mut e, &out, registrar));

    // The next one: nc=3. The server says the nonce is stale: the challenge path
    // answers the new nonce with nc=1, and no authentication failure is reported.
    e.register(now).expect("refresh");
    let (out, _) = drain(&mut e);
    let reg = parse_request(&out[0]);
    let auth = reg.headers.get("Authorization").expect("credentials");
    assert_eq!(auth_param(auth, "nc"), Some("00000003"));
    feed(
        &mut e,
        now,
        &respond(&reg, 401, "c", &challenge("n2", true)),
        registrar,
    );
    let (out, events) = drain(&mut e);
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, SipEvent::AuthenticationFailed { .. })),
        "{events:?}"
    );
    let retry = parse_request(&out[0]);
    let auths: Vec<&str> = retry.headers.get_all("Authorization").collect();
    assert_eq!(auths.len(), 1, "the refused credentials are replaced");
    assert_eq!(auth_param(auths[0], "nonce"), Some("n2"));
    assert_eq!(auth_param(auths[0], "nc"), Some("00000001"));
    assert!(register_ok(&mut e, &out, registrar));

    // A plain 401 with a fresh nonce (not stale) for pre-emptive credentials is no
    // wrong password either: answered once.
    e.register(now).expect("refresh");
    let (out, _) = drain(&mut e);
    let reg = parse_request(&out[0]);
    assert_eq!(
        auth_param(reg.headers.get("Authorization").expect("creds"), "nonce"),
        Some("n2")
    );
    feed(
        &mut e,
        now,
        &respond(&reg, 401, "c", &challenge("n3", false)),
        registrar,
    );
    let (out, events) = drain(&mut e);
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, SipEvent::AuthenticationFailed { .. }))
    );
    let retry = parse_request(&out[0]);
    assert_eq!(
        auth_param(retry.headers.get("Authorization").expect("creds"), "nonce"),
        Some("n3")
    );
    assert!(register_ok(&mut e, &out, registrar));
}

#[test]
fn a_proxy_challenge_makes_later_invites_carry_proxy_credentials() {
    let now = Instant::now();
    let proxy = Target::new(Transport::Tls, addr(PROXY));
    let mut cfg = EndpointConfig::new(addr(LOCAL));
    let mut acc = account(proxy);
    acc.outbound_proxy = Some(proxy);
    cfg.account = Some(acc);
    let mut e = Endpoint::new(cfg, 14);
    let to = Uri::parse("sip:bob@cusax.test").expect("uri");
    e.invite(now, to.clone(), Bytes::new(), CallOptions::default())
        .expect("invite");
    let (out, _) = drain(&mut e);
    let inv = parse_request(&out[0]);
    assert!(!inv.headers.contains("Proxy-Authorization"));
    feed(
        &mut e,
        now,
        &respond(
            &inv,
            407,
            "p",
            "Proxy-Authenticate: Digest realm=\"cusax.test\", nonce=\"p1\", qop=\"auth\"\n",
        ),
        proxy,
    );
    let (out, _) = drain(&mut e);
    let retry = out
        .iter()
        .map(parse_request)
        .find(|r| r.method.as_str() == "INVITE")
        .expect("retried INVITE");
    let creds = retry
        .headers
        .get("Proxy-Authorization")
        .expect("credentials");
    assert_eq!(auth_param(creds, "nc"), Some("00000001"));

    // A second call and a MESSAGE to the same proxy: credentials from the start.
    e.invite(now, to.clone(), Bytes::new(), CallOptions::default())
        .expect("invite");
    e.message(now, to, "text/plain", Bytes::from_static(b"hi"))
        .expect("message");
    let (out, _) = drain(&mut e);
    let ncs: Vec<String> = out
        .iter()
        .map(parse_request)
        .filter(|r| matches!(r.method.as_str(), "INVITE" | "MESSAGE"))
        .map(|r| {
            let v = r
                .headers
                .get("Proxy-Authorization")
                .expect("pre-emptive credentials");
            assert_eq!(auth_param(v, "nonce"), Some("p1"));
            assert_eq!(
                auth_param(v, "uri"),
                Some("sip:bob@cusax.test"),
                "digest-uri is the Request-URI"
            );
            auth_param(v, "nc").expect("nc").to_owned()
        })
        .collect();
    assert_eq!(ncs, ["00000002", "00000003"]);
}

// ------------------------------------------------------------------ seeding

/// The Call-ID and From tag of the first INVITE of an endpoint seeded with `seed`.
fn first_ids(seed: [u8; 32]) -> (String, String) {
    let mut e = Endpoint::from_seed(EndpointConfig::new(addr(LOCAL)), seed);
    e.invite(
        Instant::now(),
        Uri::parse("sip:bob@127.0.0.1:5061").expect("uri"),
        Bytes::new(),
        CallOptions::default(),
    )
    .expect("invite");
    let (out, _) = drain(&mut e);
    let inv = parse_request(&out[0]);
    (
        inv.headers.call_id().expect("Call-ID").to_owned(),
        inv.headers
            .from()
            .expect("From")
            .tag()
            .expect("tag")
            .to_owned(),
    )
}

#[test]
fn every_seed_byte_counts() {
    // 256-bit seeds: two seeds equal in their first 64 (and 128) bits still give
    // different identifiers, so the generator state holds more than 64 bits of entropy.
    let base = [7u8; 32];
    let ids = first_ids(base);
    assert_eq!(ids, first_ids(base), "deterministic for a given seed");
    for i in [8usize, 16, 31] {
        let mut other = base;
        other[i] ^= 1;
        let o = first_ids(other);
        assert_ne!(ids.0, o.0, "Call-ID ignores seed byte {i}");
        assert_ne!(ids.1, o.1, "tag ignores seed byte {i}");
    }
    // Call-IDs carry 128 bits (32 hex digits).
    assert!(ids.0.len() >= 32, "{}", ids.0);
}
