//! Two (or three) sans-IO endpoints over an in-memory network with a fake clock: no
//! sockets, no sleeping. Loss is injected by a filter on the transmits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::endpoint::{
    Account, CallId, CallOptions, EndedBy, Endpoint, EndpointConfig, Input, Output, SipEvent,
};
use cusax_sip::msg::{Method, Request, Response, SipMessage, Uri};
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::digest;

const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ANSWER: &[u8] = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n";
const HOLD: &[u8] = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";

type Filter = Box<dyn FnMut(&SocketAddr, &SipMessage) -> bool>;
type Server = Box<dyn FnMut(&Request) -> Option<Response>>;

/// The simulated network: endpoints by address, plus an optional in-test server
/// (a closure answering requests statelessly) and a drop filter.
struct Net {
    now: Instant,
    eps: HashMap<SocketAddr, Endpoint>,
    events: HashMap<SocketAddr, Vec<SipEvent>>,
    /// Every message delivered (destination, message), for assertions.
    log: Vec<(SocketAddr, SipMessage)>,
    /// Returns false to drop the message.
    filter: Option<Filter>,
    /// A scripted server at this address.
    server: Option<(SocketAddr, Server)>,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Net {
    fn new() -> Self {
        Net {
            now: Instant::now(),
            eps: HashMap::new(),
            events: HashMap::new(),
            log: Vec::new(),
            filter: None,
            server: None,
        }
    }

    fn add(&mut self, port: u16, f: impl FnOnce(&mut EndpointConfig)) -> SocketAddr {
        let a = addr(port);
        // The simulated network is plain UDP: an explicit opt-in.
        let mut cfg = EndpointConfig::insecure(a, Transport::Udp);
        cfg.contact_user = format!("u{port}");
        f(&mut cfg);
        self.eps.insert(a, Endpoint::new(cfg, u64::from(port)));
        a
    }

    fn ep(&mut self, a: SocketAddr) -> &mut Endpoint {
        self.eps.get_mut(&a).expect("endpoint")
    }

    /// Drains every endpoint's output and delivers until quiet. Returns the earliest
    /// deadline.
    fn run(&mut self) -> Instant {
        let mut deadline;
        loop {
            deadline = self.now + Duration::from_secs(3600);
            let mut moved = false;
            let addrs: Vec<SocketAddr> = self.eps.keys().copied().collect();
            for a in addrs {
                let mut out = Vec::new();
                loop {
                    match self.ep(a).poll_output() {
                        Some(Output::Transmit(t)) => out.push(t),
                        Some(Output::Event(e)) => self.events.entry(a).or_default().push(e),
                        Some(Output::Timeout(at)) => {
                            deadline = deadline.min(at);
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                for t in out {
                    moved = true;
                    self.deliver(a, t.target.addr, t.data);
                }
            }
            if !moved {
                return deadline;
            }
        }
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, data: Bytes) {
        let msg = SipMessage::parse(data.clone()).expect("endpoints send valid SIP");
        if let Some(f) = self.filter.as_mut()
            && !f(&to, &msg)
        {
            return;
        }
        self.log.push((to, msg.clone()));
        if let Some((sa, server)) = self.server.as_mut()
            && *sa == to
        {
            if let SipMessage::Request(r) = &msg
                && let Some(resp) = server(r)
            {
                let bytes = resp.to_bytes();
                self.deliver(to, from, bytes);
            }
            return;
        }
        let now = self.now;
        if let Some(ep) = self.eps.get_mut(&to) {
            ep.handle_input(
                now,
                Input::Receive {
                    data,
                    source: from,
                    transport: Transport::Udp,
                },
            );
        }
    }

    /// Runs, advancing the fake clock to each deadline, for `total` of simulated time.
    fn advance(&mut self, total: Duration) {
        let end = self.now + total;
        loop {
            let d = self.run();
            if d > end {
                self.now = end;
                let addrs: Vec<SocketAddr> = self.eps.keys().copied().collect();
                for a in addrs {
                    let now = self.now;
                    self.ep(a).handle_input(now, Input::Timeout);
                }
                self.run();
                return;
            }
            self.now = d.max(self.now);
            let addrs: Vec<SocketAddr> = self.eps.keys().copied().collect();
            for a in addrs {
                let now = self.now;
                self.ep(a).handle_input(now, Input::Timeout);
            }
        }
    }

    fn take_events(&mut self, a: SocketAddr) -> Vec<SipEvent> {
        self.events.remove(&a).unwrap_or_default()
    }

    fn count(&self, pred: impl Fn(&SocketAddr, &SipMessage) -> bool) -> usize {
        self.log.iter().filter(|(a, m)| pred(a, m)).count()
    }
}

fn uri_of(a: SocketAddr, user: &str) -> Uri {
    Uri::parse(&format!("sip:{user}@{a}")).expect("uri")
}

fn incoming_call(events: &[SipEvent]) -> (CallId, Vec<SipEvent>) {
    let call = events
        .iter()
        .find_map(|e| match e {
            SipEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .expect("IncomingCall event");
    (call, events.to_vec())
}

fn is_method(m: &SipMessage, method: Method) -> bool {
    matches!(m, SipMessage::Request(r) if r.method == method)
}

fn is_status(m: &SipMessage, status: u16, method: Method) -> bool {
    matches!(m, SipMessage::Response(r) if r.status == status
        && r.headers.cseq().map(|c| c.method == method).unwrap_or(false))
}

#[test]
fn call_ring_answer_hold_bye() {
    let mut net = Net::new();
    let a = net.add(5100, |_| {});
    let b = net.add(5101, |_| {});
    let now = net.now;
    let call_a = net
        .ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    net.run();
    let (call_b, evs) = incoming_call(&net.take_events(b));
    assert!(evs.iter().any(|e| matches!(e, SipEvent::IncomingCall { body, anonymous: false, .. } if body.as_ref() == OFFER)));

    let now = net.now;
    net.ep(b).ring(now, call_b).expect("ring");
    net.run();
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::CallRinging { call } if *call == call_a))
    );

    net.ep(b)
        .answer(now, call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    net.run();
    let ev_a = net.take_events(a);
    assert!(ev_a.iter().any(|e| matches!(e, SipEvent::CallAnswered { call, body, .. } if *call == call_a && body.as_ref() == ANSWER)), "{ev_a:?}");
    assert!(
        net.take_events(b)
            .iter()
            .any(|e| matches!(e, SipEvent::CallConfirmed { call } if *call == call_b))
    );
    assert_eq!(net.count(|to, m| *to == b && is_method(m, Method::Ack)), 1);

    // Hold with a re-INVITE (a=sendonly), answered by B.
    net.ep(a)
        .reinvite(now, call_a, Bytes::from_static(HOLD))
        .expect("reinvite");
    net.run();
    let ev_b = net.take_events(b);
    assert!(ev_b.iter().any(|e| matches!(e, SipEvent::ReinviteReceived { call, body } if *call == call_b && body.as_ref() == HOLD)));
    net.ep(b)
        .answer(now, call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer re-INVITE");
    net.run();
    assert!(net.take_events(a).iter().any(
        |e| matches!(e, SipEvent::ReinviteCompleted { call, status: 200, .. } if *call == call_a)
    ));
    assert_eq!(net.count(|to, m| *to == b && is_method(m, Method::Ack)), 2);
    // The re-INVITE's CSeq is above the INVITE's (§12.2.1.1).
    let reinvite_cseq = net
        .log
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Invite => {
                r.headers.cseq().ok().map(|c| c.seq)
            }
            _ => None,
        })
        .max();
    assert_eq!(reinvite_cseq, Some(2));

    net.ep(a).bye(now, call_a).expect("bye");
    net.run();
    assert!(
        net.take_events(a).iter().any(
            |e| matches!(e, SipEvent::CallEnded { call, by: EndedBy::Local } if *call == call_a)
        )
    );
    assert!(net.take_events(b).iter().any(
        |e| matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_b)
    ));
    // No retransmission of anything after the call: simulate 40 s and check no more BYE.
    let byes = net.count(|_, m| is_method(m, Method::Bye));
    net.advance(Duration::from_secs(40));
    assert_eq!(net.count(|_, m| is_method(m, Method::Bye)), byes);
    assert_eq!(byes, 1);
}

#[test]
fn cancel_while_ringing() {
    let mut net = Net::new();
    let a = net.add(5110, |_| {});
    let b = net.add(5111, |_| {});
    let now = net.now;
    let call_a = net
        .ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    net.run();
    let (call_b, _) = incoming_call(&net.take_events(b));
    net.ep(b).ring(now, call_b).expect("ring");
    net.run();
    net.ep(a).cancel(now, call_a).expect("cancel");
    net.run();
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::CallCancelled { call } if *call == call_a))
    );
    assert!(
        net.take_events(b)
            .iter()
            .any(|e| matches!(e, SipEvent::CallCancelled { call } if *call == call_b))
    );
    assert_eq!(
        net.count(|to, m| *to == a && is_status(m, 487, Method::Invite)),
        1
    );
    assert_eq!(
        net.count(|to, m| *to == a && is_status(m, 200, Method::Cancel)),
        1
    );
    // The transaction layer ACKs the 487.
    assert_eq!(net.count(|to, m| *to == b && is_method(m, Method::Ack)), 1);
    // The CANCEL copies the INVITE's top Via, Call-ID and CSeq number (§9.1).
    let invite = net.log.iter().find_map(|(_, m)| match m {
        SipMessage::Request(r) if r.method == Method::Invite => Some(r.clone()),
        _ => None,
    });
    let cancel = net.log.iter().find_map(|(_, m)| match m {
        SipMessage::Request(r) if r.method == Method::Cancel => Some(r.clone()),
        _ => None,
    });
    let (invite, cancel) = (invite.expect("invite"), cancel.expect("cancel"));
    assert_eq!(invite.headers.get("Via"), cancel.headers.get("Via"));
    assert_eq!(invite.headers.call_id().ok(), cancel.headers.call_id().ok());
    assert_eq!(invite.uri(), cancel.uri());
    assert_eq!(
        invite.headers.cseq().expect("cseq").seq,
        cancel.headers.cseq().expect("cseq").seq
    );
    assert!(net.ep(b).answer(now, call_b, 200, Bytes::new()).is_err());
}

#[test]
fn cancel_before_provisional_waits_for_it() {
    let mut net = Net::new();
    let a = net.add(5112, |_| {});
    let b = net.add(5113, |_| {});
    let now = net.now;
    let call_a = net
        .ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    // Cancel before anything came back.
    net.ep(a).cancel(now, call_a).expect("cancel");
    net.run();
    assert_eq!(net.count(|_, m| is_method(m, Method::Cancel)), 0);
    let (call_b, _) = incoming_call(&net.take_events(b));
    net.ep(b).ring(now, call_b).expect("ring");
    net.run();
    assert_eq!(net.count(|_, m| is_method(m, Method::Cancel)), 1);
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::CallCancelled { .. }))
    );
}

#[test]
fn lost_first_200_is_retransmitted_until_ack() {
    let mut net = Net::new();
    let a = net.add(5120, |_| {});
    let b = net.add(5121, |_| {});
    // Drop the first 200 OK for the INVITE.
    let mut dropped = 0;
    net.filter = Some(Box::new(move |_, m| {
        if is_status(m, 200, Method::Invite) && dropped == 0 {
            dropped += 1;
            return false;
        }
        true
    }));
    let now = net.now;
    let call_a = net
        .ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    net.run();
    let (call_b, _) = incoming_call(&net.take_events(b));
    net.ep(b)
        .answer(now, call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    net.run();
    assert!(net.take_events(a).is_empty());
    // T1 later B retransmits the 2xx; A answers it and ACKs.
    net.advance(Duration::from_millis(600));
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::CallAnswered { call, .. } if *call == call_a))
    );
    assert!(
        net.take_events(b)
            .iter()
            .any(|e| matches!(e, SipEvent::CallConfirmed { call } if *call == call_b))
    );
    let sent_200 = net.count(|to, m| *to == a && is_status(m, 200, Method::Invite));
    assert_eq!(sent_200, 1, "one delivered 200 (the first was dropped)");
    // After the ACK no more retransmissions.
    net.advance(Duration::from_secs(10));
    assert_eq!(
        net.count(|to, m| *to == a && is_status(m, 200, Method::Invite)),
        1
    );
}

#[test]
fn lost_ack_gets_2xx_retransmissions_and_each_is_acked_then_bye_after_64t1() {
    let mut net = Net::new();
    let a = net.add(5130, |_| {});
    let b = net.add(5131, |_| {});
    // Drop every ACK: B keeps retransmitting its 2xx with T1 doubling up to T2 and
    // gives up after 64*T1 with a BYE (§13.3.1.4). A re-ACKs every 2xx.
    net.filter = Some(Box::new(|_, m| !is_method(m, Method::Ack)));
    let now = net.now;
    let call_a = net
        .ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    net.run();
    let (call_b, _) = incoming_call(&net.take_events(b));
    net.ep(b)
        .answer(now, call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    net.advance(Duration::from_secs(40));
    let oks = net.count(|to, m| *to == a && is_status(m, 200, Method::Invite));
    // Sent at 0, .5, 1.5, 3.5, 7.5, 11.5, 15.5, ... 31.5: 1 + 10 retransmissions.
    assert!((9..=12).contains(&oks), "2xx sent {oks} times");
    assert!(net.take_events(b).iter().any(
        |e| matches!(e, SipEvent::CallEnded { call, by: EndedBy::AckTimeout } if *call == call_b)
    ));
    assert_eq!(net.count(|to, m| *to == a && is_method(m, Method::Bye)), 1);
    let ev_a = net.take_events(a);
    assert_eq!(
        ev_a.iter()
            .filter(|e| matches!(e, SipEvent::CallAnswered { .. }))
            .count(),
        1
    );
    assert!(ev_a.iter().any(
        |e| matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote } if *call == call_a)
    ));
}

#[test]
fn call_info_present_and_absent_when_anonymous() {
    let mut net = Net::new();
    let a = net.add(5140, |c| c.call_info_impp = Some("alice@cusax.test".into()));
    let b = net.add(5141, |_| {});
    let now = net.now;
    net.ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::with_impp(),
        )
        .expect("invite");
    net.run();
    let evs = net.take_events(b);
    let info = evs
        .iter()
        .find_map(|e| match e {
            SipEvent::IncomingCall {
                call_info,
                anonymous,
                ..
            } => Some((call_info.clone(), *anonymous)),
            _ => None,
        })
        .expect("incoming call");
    assert!(!info.1);
    assert_eq!(info.0.len(), 1);
    assert_eq!(info.0[0].uri, "xmpp:alice@cusax.test");
    assert!(info.0[0].is_purpose("impp"));

    // Anonymous: no Call-Info even when asked, anonymous From, Privacy: id.
    let mut opts = CallOptions::anonymous();
    opts.call_info_impp = true;
    net.ep(a)
        .invite(now, uri_of(b, "bob"), Bytes::from_static(OFFER), opts)
        .expect("invite");
    net.run();
    let evs = net.take_events(b);
    let (info, anonymous, from) = evs
        .iter()
        .find_map(|e| match e {
            SipEvent::IncomingCall {
                call_info,
                anonymous,
                from,
                ..
            } => Some((call_info.clone(), *anonymous, from.clone())),
            _ => None,
        })
        .expect("incoming call");
    assert!(info.is_empty());
    assert!(anonymous);
    assert_eq!(from.uri.to_string(), "sip:anonymous@anonymous.invalid");
    let last_invite = net
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Invite => Some(r.clone()),
            _ => None,
        })
        .expect("invite");
    assert!(!last_invite.headers.contains("Call-Info"));
    assert_eq!(last_invite.headers.get("Privacy"), Some("id"));
    let text = String::from_utf8_lossy(&last_invite.to_bytes()).to_string();
    assert!(
        !text.contains("u5140@") || text.contains("Contact: <sip:u5140@"),
        "identity leaks only via Contact"
    );
    assert!(!text.contains("alice"));
}

fn account(registrar: SocketAddr) -> Account {
    Account {
        aor: Uri::parse("sip:alice@cusax.test").expect("uri"),
        display_name: Some("Alice".into()),
        username: "alice".into(),
        password: "alice-secret".into(),
        registrar: Target::new(Transport::Udp, registrar),
        outbound_proxy: None,
        expires: 60,
    }
}

/// A scripted registrar/proxy: challenges every request without valid credentials with
/// 401 (REGISTER) or 407 (others), checking the digest response with the real digest code.
fn challenging_server(password: &'static str) -> Server {
    let mut nonce_counter = 0u32;
    Box::new(move |req: &Request| {
        if req.method == Method::Ack {
            return None;
        }
        let proxy = req.method != Method::Register;
        let creds = if proxy {
            req.headers.proxy_authorization()
        } else {
            req.headers.authorization()
        }
        .unwrap_or_default();
        let resp_for = |status: u16| {
            let mut r = Response::new(status, cusax_sip::msg::default_reason(status));
            for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
                for v in req.headers.get_all(h) {
                    let v = if h == "To" && !v.contains("tag=") {
                        format!("{v};tag=srv")
                    } else {
                        v.to_owned()
                    };
                    r.headers.push(h, v);
                }
            }
            r
        };
        let valid = creds.first().is_some_and(|c| {
            let ch = cusax_sip::msg::Challenge {
                scheme: "Digest".into(),
                params: vec![
                    ("realm".into(), "cusax.test".into()),
                    (
                        "nonce".into(),
                        c.param("nonce").unwrap_or_default().to_owned(),
                    ),
                    ("qop".into(), "auth".into()),
                ],
            };
            let expect = digest::answer(
                &ch,
                &digest::DigestCredentials::new("alice", password),
                req.method.as_str(),
                c.uri().unwrap_or_default(),
                &req.body,
                c.param("cnonce").unwrap_or_default(),
                u32::from_str_radix(c.param("nc").unwrap_or("1"), 16).unwrap_or(1),
            )
            .expect("answer");
            expect.response() == c.response()
        });
        if !valid {
            nonce_counter += 1;
            let mut r = resp_for(if proxy { 407 } else { 401 });
            r.headers.push(
                if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" },
                format!("Digest realm=\"cusax.test\", nonce=\"n{nonce_counter}\", qop=\"auth\", algorithm=MD5"),
            );
            return Some(r);
        }
        let mut r = resp_for(if req.method == Method::Invite {
            486
        } else {
            200
        });
        if req.method == Method::Register
            && let Some(c) = req.headers.get("Contact")
        {
            let exp = req.headers.get("Expires").unwrap_or("60");
            r.headers.push("Contact", format!("{c};expires={exp}"));
        }
        Some(r)
    })
}

#[test]
fn register_with_digest_refresh_and_unregister() {
    let mut net = Net::new();
    let srv = addr(5190);
    net.server = Some((srv, challenging_server("alice-secret")));
    let a = net.add(5150, |c| c.account = Some(account(srv)));
    let now = net.now;
    net.ep(a).register(now).expect("register");
    net.run();
    let evs = net.take_events(a);
    assert!(
        evs.iter()
            .any(|e| matches!(e, SipEvent::Registered { expires: 60, .. })),
        "{evs:?}"
    );
    assert!(net.ep(a).is_registered());
    let registers = net.count(|to, m| *to == srv && is_method(m, Method::Register));
    assert_eq!(registers, 2, "REGISTER, 401, REGISTER with credentials");
    // The refresh fires at 30 s (half of 60).
    assert_eq!(
        net.ep(a).registration_refresh_at(),
        Some(now + Duration::from_secs(30))
    );
    net.advance(Duration::from_secs(31));
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::Registered { .. }))
    );
    assert!(net.count(|to, m| *to == srv && is_method(m, Method::Register)) > registers);
    // Same Call-ID for every REGISTER, CSeq increasing (§10.2).
    let regs: Vec<(String, u32)> = net
        .log
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Register => Some((
                r.headers.call_id().expect("call-id").to_owned(),
                r.headers.cseq().expect("cseq").seq,
            )),
            _ => None,
        })
        .collect();
    assert!(
        regs.windows(2).all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1),
        "{regs:?}"
    );
    let now = net.now;
    net.ep(a).unregister(now).expect("unregister");
    net.run();
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::Unregistered))
    );
    assert!(!net.ep(a).is_registered());
}

#[test]
fn wrong_password_reports_authentication_failed() {
    let mut net = Net::new();
    let srv = addr(5191);
    net.server = Some((srv, challenging_server("the-real-secret")));
    let a = net.add(5151, |c| c.account = Some(account(srv)));
    let now = net.now;
    net.ep(a).register(now).expect("register");
    net.run();
    let evs = net.take_events(a);
    assert!(
        evs.iter().any(|e| matches!(
            e,
            SipEvent::AuthenticationFailed {
                method: Method::Register,
                ..
            }
        )),
        "{evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, SipEvent::RegistrationFailed { status: 401, .. }))
    );
    assert_eq!(
        net.count(|to, m| *to == srv && is_method(m, Method::Register)),
        2,
        "no endless retry"
    );
}

#[test]
fn invite_challenged_with_407_is_retried_with_credentials() {
    let mut net = Net::new();
    let srv = addr(5192);
    net.server = Some((srv, challenging_server("alice-secret")));
    let a = net.add(5152, |c| {
        let mut acc = account(srv);
        acc.outbound_proxy = Some(Target::new(Transport::Udp, srv));
        c.account = Some(acc);
    });
    let now = net.now;
    let call = net
        .ep(a)
        .invite(
            now,
            Uri::parse("sip:bob@cusax.test").expect("uri"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    net.run();
    // The scripted server answers an authenticated INVITE with 486.
    let evs = net.take_events(a);
    assert!(
        evs.iter()
            .any(|e| matches!(e, SipEvent::CallFailed { call: c, status: 486, .. } if *c == call)),
        "{evs:?}"
    );
    let invites: Vec<Request> = net
        .log
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Invite => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(invites.len(), 2);
    assert!(invites[1].headers.contains("Proxy-Authorization"));
    assert_eq!(
        invites[1].headers.cseq().expect("cseq").seq,
        invites[0].headers.cseq().expect("cseq").seq + 1
    );
    assert_ne!(
        invites[0].headers.top_via().expect("via").branch(),
        invites[1].headers.top_via().expect("via").branch()
    );
    assert_eq!(
        invites[0].headers.call_id().ok(),
        invites[1].headers.call_id().ok()
    );
    // ACK for the 407 and for the 486 (by the transaction layer).
    assert_eq!(
        net.count(|to, m| *to == srv && is_method(m, Method::Ack)),
        2
    );
}

#[test]
fn message_refused_when_switched_off() {
    let mut net = Net::new();
    let a = net.add(5160, |_| {});
    let b = net.add(5161, |c| c.allow_message = false);
    let c = net.add(5162, |_| {});
    let now = net.now;
    let id = net
        .ep(a)
        .message(
            now,
            uri_of(b, "bob"),
            "text/plain",
            Bytes::from_static(b"hi"),
        )
        .expect("message");
    net.run();
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::MessageResponse { id: i, status: 405 } if *i == id))
    );
    assert!(net.take_events(b).is_empty());
    net.ep(a)
        .message(
            now,
            uri_of(c, "carol"),
            "text/plain",
            Bytes::from_static(b"hi"),
        )
        .expect("message");
    net.run();
    assert!(
        net.take_events(c)
            .iter()
            .any(|e| matches!(e, SipEvent::MessageReceived { body, .. } if body.as_ref() == b"hi"))
    );
    let oid = net.ep(a).options(now, uri_of(c, "carol")).expect("options");
    net.run();
    assert!(net.take_events(a).iter().any(|e| matches!(e, SipEvent::OptionsResponse { id, status: 200, allow } if *id == oid && allow.iter().any(|m| m == "INVITE"))));
}

/// A notifier at `srv` accepting SUBSCRIBE (RFC 6665 §4.2.1) with a To tag and Contact.
fn notifier(srv: SocketAddr) -> Server {
    Box::new(move |req: &Request| {
        if req.method != Method::Subscribe {
            return None;
        }
        let mut r = Response::new(200, "OK");
        for h in ["Via", "From", "Call-ID", "CSeq"] {
            for v in req.headers.get_all(h) {
                r.headers.push(h, v.to_owned());
            }
        }
        let to = req.headers.get("To").unwrap_or_default();
        let to = if to.contains("tag=") {
            to.to_owned()
        } else {
            format!("{to};tag=focus")
        };
        r.headers.push("To", to);
        r.headers.push("Contact", format!("<sip:focus@{srv}>"));
        r.headers.push(
            "Expires",
            req.headers.get("Expires").unwrap_or("0").to_owned(),
        );
        Some(r)
    })
}

fn notify_for(sub: &Request, seq: u32, state: &str, body: &str) -> Bytes {
    let from = sub.headers.from().expect("from");
    let call_id = sub.headers.call_id().expect("call-id");
    Bytes::from(format!(
        "NOTIFY {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5193;branch=z9hG4bKnotify{seq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:conf@cusax.test>;tag=focus\r\nTo: {from}\r\n\
         Call-ID: {call_id}\r\nCSeq: {seq} NOTIFY\r\nContact: <sip:focus@127.0.0.1:5193>\r\n\
         Event: conference\r\nSubscription-State: {state}\r\n\
         Content-Type: application/conference-info+xml\r\nContent-Length: {len}\r\n\r\n{body}",
        contact = from.uri,
        len = body.len()
    ))
}

#[test]
fn subscribe_notify_refresh_and_unsubscribe() {
    let mut net = Net::new();
    let srv = addr(5193);
    net.server = Some((srv, notifier(srv)));
    let a = net.add(5170, |_| {});
    let now = net.now;
    let sub = net
        .ep(a)
        .subscribe(
            now,
            Uri::parse(&format!("sip:conf@{srv}")).expect("uri"),
            "conference",
            600,
        )
        .expect("subscribe");
    net.run();
    assert!(net.take_events(a).iter().any(|e| matches!(e, SipEvent::SubscriptionAccepted { subscription, expires: 600 } if *subscription == sub)));
    let first = net
        .log
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Subscribe => Some(r.clone()),
            _ => None,
        })
        .expect("SUBSCRIBE sent");
    assert_eq!(first.headers.get("Event"), Some("conference"));
    assert_eq!(
        first.headers.get("Accept"),
        Some("application/conference-info+xml")
    );

    // NOTIFY active: answered 200 and surfaced.
    let now = net.now;
    net.ep(a).handle_input(
        now,
        Input::Receive {
            data: notify_for(&first, 1, "active;expires=600", "<conference-info/>"),
            source: srv,
            transport: Transport::Udp,
        },
    );
    net.run();
    assert!(net.take_events(a).iter().any(|e| matches!(e, SipEvent::Notify { subscription, state, body, .. } if *subscription == sub && state == "active" && body.as_ref() == b"<conference-info/>")));
    assert_eq!(
        net.count(|to, m| *to == srv && is_status(m, 200, Method::Notify)),
        1
    );

    // Refresh before expiry: an in-dialog SUBSCRIBE to the notifier's Contact.
    net.advance(Duration::from_secs(580));
    let subs: Vec<Request> = net
        .log
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Subscribe => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(subs.len(), 2, "one refresh within 580 s");
    assert_eq!(subs[1].uri().to_string(), format!("sip:focus@{srv}"));
    assert_eq!(subs[1].headers.to().expect("to").tag(), Some("focus"));
    assert_eq!(
        subs[1].headers.call_id().ok(),
        subs[0].headers.call_id().ok()
    );
    assert!(subs[1].headers.cseq().expect("cseq").seq > subs[0].headers.cseq().expect("cseq").seq);

    // Unsubscribe: Expires: 0, then the terminated NOTIFY ends it.
    let now = net.now;
    net.ep(a).unsubscribe(now, sub).expect("unsubscribe");
    net.run();
    let last = net
        .log
        .iter()
        .rev()
        .find_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Subscribe => Some(r.clone()),
            _ => None,
        })
        .expect("unsubscribe sent");
    assert_eq!(last.headers.get("Expires"), Some("0"));
    let now = net.now;
    net.ep(a).handle_input(
        now,
        Input::Receive {
            data: notify_for(&first, 2, "terminated;reason=timeout", ""),
            source: srv,
            transport: Transport::Udp,
        },
    );
    net.run();
    let evs = net.take_events(a);
    assert!(
        evs.iter()
            .any(|e| matches!(e, SipEvent::Notify { state, .. } if state == "terminated"))
    );
    assert!(evs.iter().any(|e| matches!(e, SipEvent::SubscriptionTerminated { subscription, reason: Some(r), .. } if *subscription == sub && r == "timeout")));
    // No refresh after the end.
    let n = net.count(|_, m| is_method(m, Method::Subscribe));
    net.advance(Duration::from_secs(1200));
    assert_eq!(net.count(|_, m| is_method(m, Method::Subscribe)), n);
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let mut net = Net::new();
    let srv = addr(5194);
    net.server = Some((
        srv,
        Box::new(|req: &Request| {
            let mut r;
            let asked: u32 = req
                .headers
                .get("Expires")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            if asked < 120 {
                r = Response::new(423, "Interval Too Brief");
                r.headers.push("Min-Expires", "120");
            } else {
                r = Response::new(200, "OK");
                r.headers.push("Expires", asked.to_string());
            }
            for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
                for v in req.headers.get_all(h) {
                    r.headers.push(h, v.to_owned());
                }
            }
            Some(r)
        }),
    ));
    let a = net.add(5171, |c| c.account = Some(account(srv)));
    let now = net.now;
    net.ep(a).register(now).expect("register");
    net.run();
    let evs = net.take_events(a);
    assert!(
        evs.iter()
            .any(|e| matches!(e, SipEvent::Registered { expires: 120, .. })),
        "{evs:?}"
    );
    let asked: Vec<String> = net
        .log
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Register => {
                r.headers.get("Expires").map(str::to_owned)
            }
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["60", "120"]);
}

#[test]
fn second_2xx_from_another_fork_is_acked_and_ended() {
    let mut net = Net::new();
    let a = net.add(5180, |_| {});
    let b = net.add(5181, |_| {});
    let now = net.now;
    let call_a = net
        .ep(a)
        .invite(
            now,
            uri_of(b, "bob"),
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    net.run();
    let (call_b, _) = incoming_call(&net.take_events(b));
    net.ep(b)
        .answer(now, call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    net.run();
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::CallAnswered { .. }))
    );
    // The same 200 as if from another UAS behind a forking proxy: another To tag.
    let ok = net
        .log
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(r) if r.status == 200 => Some(r.clone()),
            _ => None,
        })
        .expect("200");
    let mut fork = ok.clone();
    let to = fork.headers.to().expect("to");
    let mut to = to.clone();
    to.params.set("tag", Some("forked".into()));
    fork.headers.set("To", to.to_string());
    let other = addr(5189);
    fork.headers.set("Contact", format!("<sip:carol@{other}>"));
    for _ in 0..2 {
        // Delivered twice: a retransmission gets the same ACK, not a second BYE.
        let now = net.now;
        net.ep(a).handle_input(
            now,
            Input::Receive {
                data: fork.to_bytes(),
                source: b,
                transport: Transport::Udp,
            },
        );
        net.run();
    }
    let acks_to_fork = net.count(|to, m| {
        *to == other
            && matches!(m, SipMessage::Request(r) if r.method == Method::Ack
                && r.headers.to().ok().and_then(|t| t.tag().map(str::to_owned)).as_deref() == Some("forked"))
    });
    assert_eq!(acks_to_fork, 2);
    let byes_to_fork = net.count(|to, m| *to == other && is_method(m, Method::Bye));
    assert!(byes_to_fork >= 1, "the forked dialog is ended");
    let first_bye = net.log.iter().find_map(|(to, m)| match m {
        SipMessage::Request(r) if *to == other && r.method == Method::Bye => Some(r.clone()),
        _ => None,
    });
    assert_eq!(
        first_bye.expect("bye").headers.to().expect("to").tag(),
        Some("forked")
    );
    // The answered call is untouched.
    let evs = net.take_events(a);
    assert!(
        !evs.iter().any(|e| matches!(
            e,
            SipEvent::CallAnswered { .. } | SipEvent::CallEnded { .. }
        )),
        "{evs:?}"
    );
    let now = net.now;
    net.ep(a)
        .bye(now, call_a)
        .expect("the first dialog still works");
}

#[test]
fn malformed_and_unknown_requests_get_errors_not_panics() {
    let mut net = Net::new();
    let a = net.add(5185, |_| {});
    let peer = addr(5186);
    let now = net.now;
    let inputs: [&str; 7] = [
        "INVITE sip:u5185@127.0.0.1:5185 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5186;branch=z9hG4bK5\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:u5185@127.0.0.1>\r\nCall-ID: r\r\nCSeq: 1 INVITE\r\nRequire: 100rel\r\nContact: <sip:x@127.0.0.1:5186>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "garbage\r\n\r\n",
        "BYE sip:u5185@127.0.0.1:5185 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5186;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:u5185@127.0.0.1>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "NOTIFY sip:u5185@127.0.0.1:5185 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5186;branch=z9hG4bK2\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:u5185@127.0.0.1>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "INVITE sip:u5185@127.0.0.1:5185 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5186;branch=z9hG4bK3\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:u5185@127.0.0.1>;tag=zz\r\nCall-ID: nope2\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "PUBLISH sip:u5185@127.0.0.1:5185 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5186;branch=z9hG4bK4\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:u5185@127.0.0.1>\r\nCall-ID: p\r\nCSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5185;branch=z9hG4bKstray\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:u5185@127.0.0.1>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ];
    for text in inputs {
        net.ep(a).handle_input(
            now,
            Input::Receive {
                data: Bytes::from(text),
                source: peer,
                transport: Transport::Udp,
            },
        );
    }
    let mut statuses = Vec::new();
    while let Some(out) = net.ep(a).poll_output() {
        match out {
            Output::Transmit(t) => {
                if let Ok(SipMessage::Response(r)) = SipMessage::parse(t.data) {
                    statuses.push((r.headers.cseq().map(|c| c.method).ok(), r.status));
                }
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    assert!(statuses.contains(&(Some(Method::Bye), 481)), "{statuses:?}");
    assert!(
        statuses.contains(&(Some(Method::Notify), 481)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(Some(Method::Invite), 481)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(Some(Method::Publish), 405)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(Some(Method::Invite), 420)),
        "{statuses:?}"
    );
    assert!(net.take_events(a).is_empty());
}

#[test]
fn refresh_timeout_is_reported_and_retried() {
    let mut net = Net::new();
    let srv = addr(5195);
    let mut n = 0;
    net.server = Some((
        srv,
        Box::new(move |req: &Request| {
            n += 1;
            // Only the first REGISTER is answered; the registrar then goes silent.
            if n > 1 {
                return None;
            }
            let mut r = Response::new(200, "OK");
            for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
                for v in req.headers.get_all(h) {
                    r.headers.push(h, v.to_owned());
                }
            }
            r.headers.push("Expires", "60");
            Some(r)
        }),
    ));
    let a = net.add(5172, |c| c.account = Some(account(srv)));
    let now = net.now;
    net.ep(a).register(now).expect("register");
    net.run();
    assert!(
        net.take_events(a)
            .iter()
            .any(|e| matches!(e, SipEvent::Registered { expires: 60, .. }))
    );
    // Refresh at 30 s, Timer F (32 s) fires at 62 s: 408, then a retry 30 s later.
    net.advance(Duration::from_secs(63));
    let evs = net.take_events(a);
    assert!(
        evs.iter()
            .any(|e| matches!(e, SipEvent::RegistrationFailed { status: 408, .. })),
        "{evs:?}"
    );
    assert!(!net.ep(a).is_registered());
    let before = net.count(|to, m| *to == srv && is_method(m, Method::Register));
    net.advance(Duration::from_secs(31));
    let after = net.count(|to, m| *to == srv && is_method(m, Method::Register));
    assert!(after > before, "REGISTER retried after a transient failure");
    // ... and again after the retry times out too, until unregister.
    net.advance(Duration::from_secs(70));
    let later = net.count(|to, m| *to == srv && is_method(m, Method::Register));
    assert!(later > after, "still retrying");
}
