//! The sans-IO session against a scripted server: negotiation order, security refusals,
//! stream errors, pings, XEP-0198 acks and resumption. No sockets, a fake clock.

use std::time::{Duration, Instant};

use cusax_xmpp::sasl::{ChannelBinding, Mechanism, SaslError};
use cusax_xmpp::session::{
    DisconnectedBy, Input, Output, SendError, Session, SessionConfig, SessionError, TlsInfo,
    XmppEvent,
};
use cusax_xmpp::sm::{SmError, SmLimits, SmState};
use cusax_xmpp::xml::element::Element;
use jid::BareJid;

const HDR: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='x1' from='cusax.test' version='1.0'>";

struct Harness {
    s: Session,
    now: Instant,
    sent: String,
    events: Vec<XmppEvent>,
    starttls: bool,
    timeout: Option<Instant>,
}

impl Harness {
    fn new(s: Session) -> Self {
        let mut h = Harness {
            s,
            now: Instant::now(),
            sent: String::new(),
            events: Vec::new(),
            starttls: false,
            timeout: None,
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match o {
                Output::Transmit(b) => self.sent.push_str(std::str::from_utf8(&b).unwrap()),
                Output::StartTls => self.starttls = true,
                Output::Event(e) => self.events.push(e),
                Output::Timeout(t) => self.timeout = Some(t),
                _ => {}
            }
        }
    }

    fn take_sent(&mut self) -> String {
        std::mem::take(&mut self.sent)
    }

    fn feed(&mut self, s: &str) {
        // Byte by byte: the session must not care how TCP splits the stream.
        for b in s.as_bytes() {
            self.s
                .handle_input(self.now, Input::Bytes(std::slice::from_ref(b)));
        }
        self.drain();
    }

    fn tls(&mut self) {
        self.tls_with(true);
    }

    fn tls_with(&mut self, peer_certificate_verified: bool) {
        self.s.handle_input(
            self.now,
            Input::TlsEstablished(TlsInfo {
                version: "TLSv1_3".into(),
                cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
                peer_certificate_verified,
                channel_binding: ChannelBinding::TlsExporter(vec![7; 32]),
            }),
        );
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.drain();
    }
}

fn config() -> SessionConfig {
    let mut c = SessionConfig::new(BareJid::new("alice@cusax.test").unwrap(), "alice-secret");
    c.mechanisms = vec![Mechanism::Plain];
    c.resource = Some("test".into());
    c
}

fn attr_of(sent: &str, name: &str) -> String {
    let key = format!("{name}='");
    let i = sent.find(&key).expect(name) + key.len();
    sent[i..].split('\'').next().unwrap().to_owned()
}

/// Drives a session up to Online with SM enabled; returns the harness.
fn online(sm: bool) -> Harness {
    online_with(config(), sm)
}

fn online_with(c: SessionConfig, sm: bool) -> Harness {
    let mut h = Harness::new(Session::new(c, [1; 32]));
    let hdr = h.take_sent();
    assert!(
        hdr.contains("to='cusax.test'") && !hdr.contains("from="),
        "{hdr}"
    );
    h.feed(HDR);
    h.feed(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
         <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>\
         </stream:features>",
    );
    assert_eq!(
        h.take_sent(),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        "no auth before TLS"
    );
    assert!(!h.starttls);
    h.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(h.starttls);
    h.tls();
    assert!(h.take_sent().contains("from='alice@cusax.test'"));
    h.feed(HDR);
    h.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    assert_eq!(
        h.take_sent(),
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXNlY3JldA==</auth>"
    );
    h.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    assert!(h.take_sent().starts_with("<?xml"), "stream restart");
    h.feed(HDR);
    let sm_feature = if sm {
        "<sm xmlns='urn:xmpp:sm:3'/>"
    } else {
        ""
    };
    h.feed(&format!(
        "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>{sm_feature}</stream:features>"
    ));
    let bind = h.take_sent();
    assert!(bind.contains("<resource>test</resource>"), "{bind}");
    let id = attr_of(&bind, "id");
    h.feed(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>alice@cusax.test/test</jid></bind></iq>"
    ));
    if sm {
        assert_eq!(
            h.take_sent(),
            "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
        );
        assert!(h.events.is_empty(), "online only after <enabled/>");
        h.feed("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>");
    }
    match h.events.remove(0) {
        XmppEvent::Online { jid, security } => {
            assert_eq!(jid.as_str(), "alice@cusax.test/test");
            assert_eq!(security.tls_version.as_deref(), Some("TLSv1_3"));
            assert_eq!(security.sasl_mechanism, Some(Mechanism::Plain));
            assert!(security.cert_verified);
            assert_eq!(security.sm_enabled, sm);
        }
        e => panic!("{e:?}"),
    }
    h
}

fn msg(n: u32) -> Element {
    Element::new("message", "jabber:client")
        .with_attr("to", "bob@cusax.test")
        .with_attr("id", format!("m{n}"))
        .with_child(Element::new("body", "jabber:client").with_text(format!("{n}")))
}

#[test]
fn full_negotiation_stanzas_and_acks() {
    let mut h = online(true);
    h.s.send(h.now, msg(1)).expect("queued");
    h.drain();
    assert_eq!(
        h.take_sent(),
        "<message to='bob@cusax.test' id='m1'><body>1</body></message><r xmlns='urn:xmpp:sm:3'/>"
    );
    h.s.send(h.now, msg(2)).expect("queued");
    h.drain();
    assert!(!h.take_sent().contains("<r "), "one request outstanding");
    h.feed("<message from='bob@cusax.test/x' type='chat'><body>hi</body></message><r xmlns='urn:xmpp:sm:3'/>");
    assert_eq!(h.take_sent(), "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    match h.events.remove(0) {
        XmppEvent::Stanza(el) => {
            assert_eq!(el.child("body", "jabber:client").unwrap().text(), "hi")
        }
        e => panic!("{e:?}"),
    }
    h.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    assert_eq!(
        h.take_sent(),
        "<r xmlns='urn:xmpp:sm:3'/>",
        "m2 still unacked"
    );
    h.feed("<a xmlns='urn:xmpp:sm:3' h='2'/>");
    assert_eq!(h.take_sent(), "");
    // Server acks more than we sent: stream error on our side.
    h.feed("<a xmlns='urn:xmpp:sm:3' h='5'/>");
    assert!(matches!(
        h.events.last(),
        Some(XmppEvent::Disconnected {
            by: DisconnectedBy::Local,
            error: Some(SessionError::Sm(_))
        })
    ));
}

#[test]
fn stanzas_queued_until_online_and_server_ping_answered() {
    let mut h = Harness::new(Session::new(config(), [2; 32]));
    h.s.send(h.now, msg(7)).expect("queued");
    h.drain();
    assert!(!h.take_sent().contains("message"));
    let mut h2 = online(false);
    h2.feed("<iq type='get' id='p1' from='cusax.test'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(
        h2.take_sent(),
        "<iq type='result' id='p1' to='cusax.test'/>"
    );
    assert!(h2.events.is_empty());
}

#[test]
fn ping_timeout_is_a_dead_connection() {
    let mut h = online(false);
    let t = h.timeout.expect("ping timer");
    assert_eq!(t, h.now + Duration::from_secs(60));
    h.advance(Duration::from_secs(61));
    let ping = h.take_sent();
    assert!(ping.contains("<ping xmlns='urn:xmpp:ping'/>"), "{ping}");
    // Answer: stays online.
    let id = attr_of(&ping, "id");
    h.feed(&format!("<iq type='result' id='{id}'/>"));
    assert!(h.events.is_empty(), "{:?}", h.events);
    h.advance(Duration::from_secs(61));
    assert!(h.take_sent().contains("urn:xmpp:ping"));
    h.advance(Duration::from_secs(21));
    assert_eq!(
        h.events.pop(),
        Some(XmppEvent::Disconnected {
            by: DisconnectedBy::Local,
            error: Some(SessionError::Timeout)
        })
    );
}

#[test]
fn no_starttls_is_refused() {
    let mut h = Harness::new(Session::new(config(), [3; 32]));
    h.take_sent();
    h.feed(HDR);
    h.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    assert_eq!(h.take_sent(), "</stream:stream>");
    assert_eq!(
        h.events,
        vec![XmppEvent::Disconnected {
            by: DisconnectedBy::Local,
            error: Some(SessionError::TlsRequired)
        }]
    );
}

#[test]
fn insecure_mode_still_refuses_plain() {
    let mut c = config();
    c.insecure_allow_plaintext = true;
    let mut h = Harness::new(Session::new(c, [4; 32]));
    h.take_sent();
    h.feed(HDR);
    h.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    assert!(!h.take_sent().contains("<auth"));
    assert!(matches!(
        h.events.as_slice(),
        [XmppEvent::Disconnected {
            error: Some(SessionError::Sasl(_)),
            ..
        }]
    ));
}

/// Drives a session through STARTTLS with the given certificate verdict, then offers only
/// PLAIN on the restarted stream.
fn plain_only_over_tls(c: SessionConfig, peer_certificate_verified: bool) -> Harness {
    let mut h = Harness::new(Session::new(c, [9; 32]));
    h.take_sent();
    h.feed(HDR);
    h.feed(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
         </stream:features>",
    );
    h.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(h.starttls);
    h.tls_with(peer_certificate_verified);
    h.take_sent();
    h.feed(HDR);
    h.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    h
}

#[test]
fn plain_refused_over_unverified_tls() {
    let mut h = plain_only_over_tls(config(), false);
    let sent = h.take_sent();
    assert!(!sent.contains("<auth"), "password sent: {sent}");
    assert!(
        matches!(
            h.events.as_slice(),
            [XmppEvent::Disconnected {
                by: DisconnectedBy::Local,
                error: Some(SessionError::Sasl(SaslError::NoCommonMechanism { .. })),
            }]
        ),
        "{:?}",
        h.events
    );
}

#[test]
fn plain_over_unverified_tls_only_in_insecure_mode() {
    let mut c = config();
    c.insecure_allow_plaintext = true;
    let mut h = plain_only_over_tls(c, false);
    assert!(h.take_sent().contains("mechanism='PLAIN'"));
    assert!(h.events.is_empty(), "{:?}", h.events);

    // Verified certificate, default config: PLAIN goes ahead.
    let mut h = plain_only_over_tls(config(), true);
    assert!(h.take_sent().contains("mechanism='PLAIN'"));
    assert!(h.events.is_empty(), "{:?}", h.events);
}

#[test]
fn auth_failure_and_stream_error() {
    let mut h = Harness::new(Session::new(config(), [5; 32]));
    h.feed(HDR);
    h.feed(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    );
    h.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    h.tls();
    h.feed(HDR);
    h.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    h.feed(
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>\
         <text>Unable to authorize you</text></failure>",
    );
    assert_eq!(
        h.events[0],
        XmppEvent::AuthFailed {
            condition: "not-authorized".into()
        }
    );
    let mut h = online(false);
    h.feed(
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced</text></stream:error>",
    );
    assert_eq!(
        h.events[0],
        XmppEvent::StreamError {
            condition: "conflict".into(),
            text: Some("Replaced".into())
        }
    );
    assert!(matches!(
        h.events[1],
        XmppEvent::Disconnected {
            by: DisconnectedBy::Remote,
            ..
        }
    ));
}

#[test]
fn malformed_server_xml_sends_stream_error() {
    let mut h = online(false);
    h.feed("<message><!-- no --></message>");
    assert_eq!(
        h.take_sent(),
        "<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    );
    assert!(matches!(
        h.events[0],
        XmppEvent::Disconnected {
            error: Some(SessionError::Xml(_)),
            ..
        }
    ));
}

fn resume_to_auth(state: SmState) -> Harness {
    let mut h = Harness::new(Session::new_resuming(config(), state, [6; 32]));
    h.feed(HDR);
    h.feed(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    );
    h.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    h.tls();
    h.feed(HDR);
    h.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    h.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    h.take_sent();
    h.feed(HDR);
    h.feed(
        "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
         <sm xmlns='urn:xmpp:sm:3'/></stream:features>",
    );
    h
}

fn dropped_with_unacked() -> SmState {
    let mut h = online(true);
    for n in 1..=3 {
        h.s.send(h.now, msg(n)).expect("queued");
    }
    h.feed("<message from='bob@cusax.test/x'><body>in</body></message>");
    h.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    h.s.handle_input(h.now, Input::Disconnected);
    h.drain();
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, XmppEvent::Undelivered(_))),
        "kept for resumption, not reported"
    );
    assert!(matches!(
        h.events.last(),
        Some(XmppEvent::Disconnected {
            by: DisconnectedBy::Remote,
            error: Some(SessionError::ConnectionLost)
        })
    ));
    let st = h.s.sm_state().expect("resumable");
    assert_eq!(st.unacked.len(), 2);
    assert_eq!(st.inbound, 1);
    // Round trip through the text form, as an app would persist it.
    st.to_string().parse().unwrap()
}

#[test]
fn resume_resends_exactly_the_unacked() {
    let st = dropped_with_unacked();
    let mut h = resume_to_auth(st);
    assert_eq!(
        h.take_sent(),
        "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='1'/>"
    );
    h.feed("<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='2'/>");
    assert!(matches!(h.events[0], XmppEvent::SmResumed { .. }));
    let sent = h.take_sent();
    assert!(!sent.contains("id='m2'"), "acked by <resumed h=2/>: {sent}");
    assert!(sent.contains("id='m3'"), "{sent}");
    assert!(h.s.is_online());
}

#[test]
fn failed_resume_reports_undelivered_and_binds() {
    let st = dropped_with_unacked();
    let mut h = resume_to_auth(st);
    h.take_sent();
    h.feed("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    match &h.events[0] {
        XmppEvent::Undelivered(v) => {
            let ids: Vec<_> = v.iter().map(|m| m.attr("id").unwrap()).collect();
            assert_eq!(ids, ["m2", "m3"]);
        }
        e => panic!("{e:?}"),
    }
    assert!(h.take_sent().contains("urn:ietf:params:xml:ns:xmpp-bind"));
}

#[test]
fn close_reports_unacked_as_undelivered() {
    let mut h = online(true);
    h.s.send(h.now, msg(1)).expect("queued");
    h.s.send(h.now, msg(2)).expect("queued");
    h.s.close();
    h.drain();
    assert!(h.take_sent().ends_with("</stream:stream>"));
    h.feed("<a xmlns='urn:xmpp:sm:3' h='1'/></stream:stream>");
    match &h.events[0] {
        XmppEvent::Undelivered(v) => assert_eq!(v.len(), 1),
        e => panic!("{e:?}"),
    }
    assert_eq!(
        h.events[1],
        XmppEvent::Disconnected {
            by: DisconnectedBy::Local,
            error: None
        }
    );
}

#[test]
fn failed_resume_with_h_drops_what_the_server_received() {
    let st = dropped_with_unacked();
    let mut h = resume_to_auth(st);
    h.take_sent();
    h.feed("<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    match &h.events[0] {
        XmppEvent::Undelivered(v) => {
            let ids: Vec<_> = v.iter().map(|m| m.attr("id").unwrap()).collect();
            assert_eq!(ids, ["m3"], "m2 was received (h=2)");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn pre_bind_queue_is_bounded_and_hands_the_stanza_back() {
    let mut c = config();
    c.max_pending = 3;
    let mut h = Harness::new(Session::new(c, [3; 32]));
    for n in 1..=3 {
        h.s.send(h.now, msg(n)).expect("queued");
    }
    match h.s.send(h.now, msg(4)) {
        Err(e @ SendError::QueueFull { limit: 3, .. }) => {
            assert_eq!(e.stanza().attr("id"), Some("m4"));
            assert_eq!(e.into_stanza(), msg(4));
        }
        r => panic!("{r:?}"),
    }
}

fn r_count(sent: &str) -> usize {
    sent.matches("<r xmlns='urn:xmpp:sm:3'/>").count()
}

#[test]
fn unacked_queue_applies_backpressure_then_gives_up_on_a_silent_server() {
    let mut c = config();
    c.sm_limits = SmLimits {
        request_ack_at: 4,
        max_unacked: 8,
    };
    let mut h = online_with(c, true);
    for n in 1..=8 {
        h.s.send(h.now, msg(n)).expect("room");
    }
    h.drain();
    assert_eq!(r_count(&h.take_sent()), 3, "at 1, then each 4 waiting");
    for n in 9..=11 {
        match h.s.send(h.now, msg(n)) {
            Err(SendError::Backpressure { stanza, unacked: 8 }) => {
                assert_eq!(*stanza, msg(n))
            }
            r => panic!("{r:?}"),
        }
    }
    h.drain();
    assert_eq!(
        h.take_sent(),
        "<r xmlns='urn:xmpp:sm:3'/>",
        "one request per full episode"
    );
    // An ack makes room again.
    h.feed("<a xmlns='urn:xmpp:sm:3' h='2'/>");
    h.take_sent();
    h.s.send(h.now, msg(12)).expect("room after the ack");
    h.s.send(h.now, msg(13)).expect("room after the ack");
    assert!(matches!(
        h.s.send(h.now, msg(14)),
        Err(SendError::Backpressure { .. })
    ));
    // The session's own answers (pings) may go past the limit, but a server that never
    // acks ends the stream at twice the limit; nothing is lost silently.
    for i in 0..8 {
        h.feed(&format!(
            "<iq type='get' id='p{i}' from='cusax.test'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
    }
    let lost: usize = h
        .events
        .iter()
        .map(|e| match e {
            XmppEvent::Undelivered(v) => v.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(lost, 16, "8 unacked messages and 8 ping answers");
    assert!(matches!(
        h.events.last(),
        Some(XmppEvent::Disconnected {
            by: DisconnectedBy::Local,
            error: Some(SessionError::Sm(SmError::NotAcknowledging { unacked: 16 }))
        })
    ));
    assert!(h.s.is_closed());
}

fn iq(id: &str, to: Option<&str>) -> Element {
    let mut e = Element::new("iq", "jabber:client")
        .with_attr("type", "get")
        .with_attr("id", id)
        .with_child(Element::new("query", "jabber:iq:version"));
    if let Some(t) = to {
        e.set_attr("to", t);
    }
    e
}

fn answers(h: &mut Harness) -> Vec<String> {
    h.events
        .drain(..)
        .filter_map(|e| match e {
            XmppEvent::Stanza(el) if el.name == "iq" => Some(format!(
                "{}:{}",
                el.attr("id").unwrap(),
                el.attr("from").unwrap_or("-")
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn iq_answers_only_from_the_addressee() {
    let mut h = online(false);
    h.s.send(h.now, iq("q1", Some("bob@cusax.test/x"))).unwrap();
    h.s.send(h.now, iq("q2", None)).unwrap();
    h.s.send(h.now, iq("q3", None)).unwrap();
    h.s.send(h.now, iq("q4", Some("alice@cusax.test"))).unwrap();
    h.s.send(h.now, iq("q5", Some("conference.cusax.test")))
        .unwrap();
    // Same id twice while the first awaits its answer: refused, stanza handed back.
    assert!(matches!(
        h.s.send(h.now, iq("q1", Some("carol@cusax.test"))),
        Err(SendError::IqIdInUse { .. })
    ));
    h.drain();
    h.take_sent();
    // Spoofed answers: another user, the bare JID of a full-JID addressee, a bad JID,
    // the server for a request to someone else, and an id we never used.
    h.feed("<iq type='result' id='q1' from='mallory@evil.test/x'/>");
    h.feed("<iq type='result' id='q1' from='bob@cusax.test'/>");
    h.feed("<iq type='result' id='q1' from='@@'/>");
    h.feed("<iq type='result' id='q5' from='cusax.test'/>");
    h.feed("<iq type='result' id='q5'/>");
    h.feed("<iq type='result' id='q4' from='bob@cusax.test'/>");
    h.feed("<iq type='result' id='zz' from='cusax.test'/>");
    assert_eq!(
        answers(&mut h),
        Vec::<String>::new(),
        "all spoofed ones dropped"
    );
    // The genuine ones.
    h.feed("<iq type='error' id='q1' from='bob@cusax.test/x'/>");
    h.feed("<iq type='result' id='q2'/>");
    h.feed("<iq type='result' id='q3' from='cusax.test'/>");
    h.feed("<iq type='result' id='q4' from='alice@cusax.test'/>");
    h.feed("<iq type='result' id='q5' from='conference.cusax.test'/>");
    assert_eq!(
        answers(&mut h),
        [
            "q1:bob@cusax.test/x",
            "q2:-",
            "q3:cusax.test",
            "q4:alice@cusax.test",
            "q5:conference.cusax.test"
        ]
    );
    // Answered once: a second answer is no longer accepted.
    h.feed("<iq type='result' id='q2'/>");
    assert!(answers(&mut h).is_empty());
    assert!(h.s.is_online());
}

#[test]
fn unanswered_iq_times_out() {
    let mut c = config();
    c.iq_timeout = Duration::from_secs(10);
    c.max_pending_iqs = 2;
    let mut h = online_with(c, false);
    h.s.send(h.now, iq("t1", Some("bob@cusax.test/x"))).unwrap();
    h.advance(Duration::from_secs(5));
    h.s.send(h.now, iq("t2", None)).unwrap();
    assert!(matches!(
        h.s.send(h.now, iq("t3", None)),
        Err(SendError::TooManyRequests { limit: 2, .. })
    ));
    h.drain();
    assert_eq!(
        h.timeout,
        Some(h.now + Duration::from_secs(5)),
        "t1's deadline"
    );
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.events,
        [XmppEvent::IqTimeout {
            id: "t1".into(),
            to: Some(jid::Jid::new("bob@cusax.test/x").unwrap())
        }]
    );
    h.events.clear();
    // The late answer is ignored.
    h.feed("<iq type='result' id='t1' from='bob@cusax.test/x'/>");
    assert!(answers(&mut h).is_empty());
    h.feed("<iq type='result' id='t2'/>");
    assert_eq!(answers(&mut h), ["t2:-"]);
    h.advance(Duration::from_secs(20));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, XmppEvent::IqTimeout { .. })),
        "{:?}",
        h.events
    );
}

#[test]
fn caps_in_presence_and_disco_info_answered() {
    use cusax_xmpp::disco::{self, DiscoInfo};
    use cusax_xmpp::presence;
    let mut c = config();
    c.caps_node = "https://example.test/app".into();
    let mut h = online_with(c, false);
    let caps = h.s.caps().clone();
    assert_eq!(caps.hash.as_deref(), Some("sha-1"));
    assert_eq!(caps.ver, disco::caps_ver(&DiscoInfo::client("cusax")));
    // The initial presence built by the session, and a plain available presence sent
    // through it, both carry <c/>; unavailable presence does not.
    let p = h.s.available_presence(None, Some("here"), 1);
    h.s.send(h.now, p.into()).unwrap();
    h.s.send(h.now, presence::available(None, None, 0).into())
        .unwrap();
    h.s.send(h.now, presence::unavailable(None, None).into())
        .unwrap();
    h.drain();
    let sent = h.take_sent();
    let c_el = format!(
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.test/app' ver='{}'/>",
        caps.ver
    );
    assert_eq!(sent.matches(&c_el).count(), 2, "{sent}");
    // disco#info for our JID and for node#ver: answered by the session; a peer verifying
    // the caps (XEP-0115 §5.4) gets the same ver.
    for (id, node) in [("d1", None), ("d2", Some(caps.disco_node()))] {
        let node_attr = node
            .as_ref()
            .map(|n| format!(" node='{n}'"))
            .unwrap_or_default();
        h.feed(&format!(
            "<iq type='get' id='{id}' from='bob@cusax.test/x' to='alice@cusax.test/test'>\
             <query xmlns='http://jabber.org/protocol/disco#info'{node_attr}/></iq>"
        ));
        let sent = h.take_sent();
        assert!(
            sent.starts_with(&format!(
                "<iq id='{id}' to='bob@cusax.test/x' type='result'>"
            )),
            "{sent}"
        );
        let q = sent
            .split_once("type='result'>")
            .and_then(|(_, r)| r.strip_suffix("</iq>"))
            .expect("query");
        let info = parse_query(q);
        assert_eq!(info.node, node);
        assert!(caps.verify(&info), "{q}");
        assert!(info.has_feature("urn:xmpp:ping") && info.has_feature("urn:xmpp:receipts"));
        assert_eq!(info.identities[0].category, "client");
        assert_eq!(info.identities[0].kind, "pc");
    }
    h.feed(
        "<iq type='get' id='d3' from='bob@cusax.test/x'>\
         <query xmlns='http://jabber.org/protocol/disco#info' node='other'/></iq>",
    );
    let sent = h.take_sent();
    assert!(
        sent.contains("type='error'") && sent.contains("<item-not-found"),
        "{sent}"
    );
    assert!(
        h.events.is_empty(),
        "answered by the session: {:?}",
        h.events
    );
}

/// Parses a serialized disco#info `<query/>` through the session's own XML parser.
fn parse_query(q: &str) -> cusax_xmpp::disco::DiscoInfo {
    use cusax_xmpp::xml::parser::{StreamParser, XmlEvent, XmlLimits};
    let mut p = StreamParser::new(XmlLimits::default());
    p.feed(HDR.as_bytes());
    p.feed(q.as_bytes());
    loop {
        match p.next_event() {
            Ok(Some(XmlEvent::Stanza(el))) => {
                return cusax_xmpp::disco::DiscoInfo::from_element(&el).expect("disco#info");
            }
            Ok(Some(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A request acked by the server but not answered when the connection drops: its answer
/// on the resumed stream is delivered; if resumption fails it ends as a timeout.
fn dropped_with_pending_iq() -> SmState {
    let mut h = online(true);
    h.s.send(h.now, iq("v1", Some("bob@cusax.test/x"))).unwrap();
    h.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    h.s.handle_input(h.now, Input::Disconnected);
    h.drain();
    let st = h.s.sm_state().expect("resumable");
    assert!(st.unacked.is_empty());
    assert_eq!(
        st.pending_iqs,
        [("v1".to_owned(), Some("bob@cusax.test/x".to_owned()))]
    );
    st.to_string().parse().unwrap()
}

#[test]
fn pending_iq_answer_arrives_after_resumption() {
    let mut h = resume_to_auth(dropped_with_pending_iq());
    h.take_sent();
    h.feed("<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='1'/>");
    assert!(matches!(h.events.remove(0), XmppEvent::SmResumed { .. }));
    h.feed("<iq type='result' id='v1' from='mallory@evil.test/x'/>");
    assert!(
        answers(&mut h).is_empty(),
        "still matched against its addressee"
    );
    h.feed("<iq type='result' id='v1' from='bob@cusax.test/x'/>");
    assert_eq!(answers(&mut h), ["v1:bob@cusax.test/x"]);
}

#[test]
fn pending_iq_of_a_failed_resumption_times_out() {
    let mut h = resume_to_auth(dropped_with_pending_iq());
    h.take_sent();
    h.feed("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    assert_eq!(
        h.events,
        [XmppEvent::IqTimeout {
            id: "v1".into(),
            to: Some(jid::Jid::new("bob@cusax.test/x").unwrap())
        }]
    );
}
