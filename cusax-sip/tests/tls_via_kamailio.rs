//! alice and bob registered through Kamailio's TLS listener (`CUSAX_KAMAILIO_TLS`), the
//! certificate verified against the test CA (`CUSAX_CA_CERT`) for the server name
//! `CUSAX_SIP_DOMAIN` (RFC 5922 §7.2): alice calls bob (INVITE with 407 digest, 180,
//! 200, ACK) and hangs up (BYE), and every message either UA sends or receives is
//! checked to have gone over TLS. The UAs are driven here by a small loop over the
//! public sans-IO [`Endpoint`] and the driver's [`Transports`] (like `ua::client` does)
//! so that every `Transmit` and every received message is visible; neither UA has a
//! UDP socket or a TCP listener.
//!
//! A wrong trust anchor (or a wrong server name) gives a certificate error from the
//! transport and a failed REGISTER, never a registration, and nothing is sent in the
//! clear: the UA talks to Kamailio through a TCP relay that records the client's bytes
//! (they must be TLS records only), and a UDP socket on the relay's port must stay
//! silent.
#![cfg(feature = "driver")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::driver::{self, TlsConfig, TransportConfig, Transports, TrustAnchors};
use cusax_sip::endpoint::{
    Account, CallId, CallOptions, EndedBy, Endpoint, EndpointConfig, FailedRequest, Input, Output,
    SipEvent, TransportFailure,
};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};

mod common;

const WAIT: Duration = Duration::from_secs(10);

const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &[u8] = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n";

struct Env {
    tls: SocketAddr,
    domain: String,
    ca: PathBuf,
}

fn env() -> Option<Env> {
    let tls = std::env::var("CUSAX_KAMAILIO_TLS").ok()?.parse().ok()?;
    let domain = std::env::var("CUSAX_SIP_DOMAIN").ok()?;
    let ca = PathBuf::from(std::env::var("CUSAX_CA_CERT").ok()?);
    ca.exists().then_some(Env { tls, domain, ca })
}

/// One message on the wire as seen by the UA.
#[derive(Debug, Clone)]
struct Wire {
    sent: bool,
    transport: Transport,
    /// The start line.
    line: String,
}

fn start_line(data: &[u8]) -> String {
    let end = data
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(data.len());
    String::from_utf8_lossy(data.get(..end).unwrap_or_default()).into_owned()
}

/// A UA whose every transmit, received message and transport error is recorded.
struct Ua {
    /// Keeps the port named in Via and Contact reserved.
    _reserved: tokio::net::TcpSocket,
    name: &'static str,
    ep: Endpoint,
    tr: Transports,
    deadline: Option<Instant>,
    events: VecDeque<SipEvent>,
    wire: Vec<Wire>,
    transport_errors: Vec<String>,
}

impl Ua {
    /// A UA for `user` at `server` over TLS only: no UDP socket, no TCP listener.
    async fn tls(
        name: &'static str,
        server: SocketAddr,
        domain: &str,
        tls: TlsConfig,
    ) -> Result<Ua, driver::TransportSetupError> {
        // A TLS-only UA has no listening port to name in Via and Contact; Kamailio
        // reaches it over its own connection (the alias it records). The endpoint
        // must not advertise port 0, though: Kamailio reads `127.0.0.1:0;transport=tls`
        // as its own address (port 0 = the default 5061) and loose-routes the ACK and
        // BYE back to itself. So name a port reserved for this UA (bound, not
        // listening: nothing can connect to it).
        let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
        reserved
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("reserve a port");
        let mut cfg = EndpointConfig::new(reserved.local_addr().expect("reserved port"));
        cfg.transport = Transport::Tls;
        cfg.account = Some(Account {
            aor: Uri::parse(&format!("sip:{name}@{domain}")).expect("aor"),
            display_name: None,
            username: name.to_owned(),
            password: format!("{name}-secret"),
            registrar: Target::new(Transport::Tls, server),
            outbound_proxy: Some(Target::new(Transport::Tls, server)),
            expires: 120,
        });
        let tc = TransportConfig {
            udp: None,
            tcp_listen: None,
            tls: Some(tls),
            ..TransportConfig::default()
        };
        let tr = Transports::bind(tc).await?;
        assert_eq!(tr.local_addr(Transport::Udp), None, "no UDP socket");
        assert_eq!(tr.local_addr(Transport::Tcp), None, "no TCP listener");
        Ok(Ua {
            _reserved: reserved,
            name,
            ep: Endpoint::new(cfg, rand::random()),
            tr,
            deadline: None,
            events: VecDeque::new(),
            wire: Vec::new(),
            transport_errors: Vec::new(),
        })
    }

    /// Drains the endpoint's output and sends its transmits.
    async fn flush(&mut self) {
        let mut sends = Vec::new();
        self.deadline = None;
        while let Some(out) = self.ep.poll_output() {
            match out {
                Output::Transmit(t) => sends.push(t),
                Output::Event(e) => self.events.push_back(e),
                Output::Timeout(at) => {
                    self.deadline = Some(at);
                    break;
                }
                _ => {}
            }
        }
        for t in sends {
            self.wire.push(Wire {
                sent: true,
                transport: t.target.transport,
                line: start_line(&t.data),
            });
            // As `ua::client` does: each TLS connection authenticates the name the
            // endpoint chose for its target (RFC 5922 §7.2).
            let name =
                (t.target.transport == Transport::Tls).then(|| self.ep.tls_server_name(&t.target));
            self.tr.send_named(t, name).await;
        }
    }

    fn input(&mut self, input: driver::Input) {
        let input = match input {
            driver::Input::Receive {
                data,
                source,
                transport,
            } => {
                self.wire.push(Wire {
                    sent: false,
                    transport,
                    line: start_line(&data),
                });
                Input::Receive {
                    data,
                    source,
                    transport,
                }
            }
            driver::Input::TransportError { target, reason } => {
                self.transport_errors.push(format!("{target}: {reason}"));
                Input::TransportError { target, reason }
            }
            driver::Input::Connected { target, tls } => Input::Connected { target, tls },
            _ => return,
        };
        self.ep.handle_input(Instant::now(), input);
    }

    fn timeout_if_due(&mut self) {
        if self.deadline.is_some_and(|d| d <= Instant::now()) {
            self.ep.handle_input(Instant::now(), Input::Timeout);
        }
    }

    /// Removes and returns the first queued event for which `f` returns `Some`.
    fn take<T>(&mut self, f: &mut impl FnMut(&SipEvent) -> Option<T>) -> Option<T> {
        let i = self.events.iter().position(|e| f(e).is_some())?;
        self.events.remove(i).and_then(|e| f(&e))
    }

    /// The recorded messages, one line each (`>` sent, `<` received), for diagnostics.
    fn trace(&self) -> String {
        let mut out = format!("{}:\n", self.name);
        for w in &self.wire {
            let dir = if w.sent { ">" } else { "<" };
            out.push_str(&format!("  {dir} {:?} {}\n", w.transport, w.line));
        }
        for e in &self.transport_errors {
            out.push_str(&format!("  ! {e}\n"));
        }
        out
    }

    /// Asserts that every recorded message went over TLS and returns the start lines.
    fn assert_all_tls(&self) -> Vec<String> {
        assert!(!self.wire.is_empty(), "{}: nothing on the wire", self.name);
        for w in &self.wire {
            assert_eq!(
                w.transport,
                Transport::Tls,
                "{}: {} {:?} not over TLS",
                self.name,
                if w.sent { "sent" } else { "received" },
                w.line
            );
        }
        self.wire
            .iter()
            .map(|w| format!("{} {}", if w.sent { ">" } else { "<" }, w.line))
            .collect()
    }
}

/// One turn of every UA: flush, then wait for one input or the earliest deadline.
async fn turn(uas: &mut [Ua]) {
    for ua in uas.iter_mut() {
        ua.flush().await;
    }
    let cap = Instant::now() + Duration::from_millis(200);
    let at = uas
        .iter()
        .filter_map(|u| u.deadline)
        .min()
        .map_or(cap, |d| d.min(cap));
    let got = {
        let recvs = uas.iter_mut().map(|u| Box::pin(u.tr.recv()));
        tokio::select! {
            (input, i, _) = futures_util::future::select_all(recvs) => Some((input, i)),
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => None,
        }
    };
    match got {
        Some((input, i)) => {
            if let Some(ua) = uas.get_mut(i) {
                ua.input(input);
            }
        }
        None => uas.iter_mut().for_each(Ua::timeout_if_due),
    }
}

/// Runs every UA until `uas[which]` has an event for which `f` returns `Some`.
async fn wait_for<T>(
    uas: &mut [Ua],
    which: usize,
    mut f: impl FnMut(&SipEvent) -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(t) = uas.get_mut(which).and_then(|u| u.take(&mut f)) {
            return Some(t);
        }
        if Instant::now() > end {
            return None;
        }
        turn(uas).await;
    }
}

/// REGISTERs `uas[which]`; the granted expiry or the failure.
async fn register(uas: &mut [Ua], which: usize) -> Result<u32, String> {
    uas[which]
        .ep
        .register(Instant::now())
        .map_err(|e| e.to_string())?;
    wait_for(uas, which, |e| match e {
        SipEvent::Registered { expires, .. } => Some(Ok(*expires)),
        SipEvent::RegistrationFailed { status, reason, .. } => {
            Some(Err(format!("{status} {reason}")))
        }
        _ => None,
    })
    .await
    .unwrap_or_else(|| Err("no answer to REGISTER".into()))
}

/// Un-REGISTERs `uas[which]` (best effort: the binding expires anyway).
async fn unregister(uas: &mut [Ua], which: usize) {
    if uas[which].ep.unregister(Instant::now()).is_ok() {
        let _ = wait_for(uas, which, |e| {
            matches!(
                e,
                SipEvent::Unregistered | SipEvent::RegistrationFailed { .. }
            )
            .then_some(())
        })
        .await;
    }
}

/// TLS with `trust`; the name each connection checks is the endpoint's choice (the
/// account's domain for the registrar and outbound proxy).
fn tls_config(trust: TrustAnchors) -> TlsConfig {
    TlsConfig {
        server_name: None,
        trust,
    }
}

fn sent(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.strip_prefix("> ").is_some_and(|l| l.starts_with(prefix)))
        .count()
}

fn received(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.strip_prefix("< ").is_some_and(|l| l.starts_with(prefix)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_register_call_and_bye_through_kamailio() {
    let Some(env) = env() else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_TLS / CUSAX_SIP_DOMAIN / CUSAX_CA_CERT not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let trust = TrustAnchors::PemFile(env.ca.clone());
    let alice = Ua::tls("alice", env.tls, &env.domain, tls_config(trust.clone()))
        .await
        .expect("alice's transports");
    let bob = Ua::tls("bob", env.tls, &env.domain, tls_config(trust))
        .await
        .expect("bob's transports");
    let mut uas = [alice, bob];
    register(&mut uas, 0)
        .await
        .expect("alice registers over TLS");
    register(&mut uas, 1).await.expect("bob registers over TLS");
    let contact = uas[1].ep.contact_uri();
    assert_eq!(
        contact.params.get("transport"),
        Some(Some("tls")),
        "bob's Contact {contact} asks for TLS"
    );

    let bob_uri = Uri::parse(&format!("sip:bob@{}", env.domain)).expect("uri");
    let call_a = uas[0]
        .ep
        .invite(
            Instant::now(),
            bob_uri,
            Bytes::from_static(OFFER),
            CallOptions::default(),
        )
        .expect("invite");
    let call_b: CallId = wait_for(&mut uas, 1, |e| match e {
        SipEvent::IncomingCall {
            call, from, body, ..
        } if from.uri.user.as_deref() == Some("alice") => {
            assert_eq!(body.as_ref(), OFFER);
            Some(*call)
        }
        _ => None,
    })
    .await
    .expect("bob gets alice's call over TLS");
    uas[1].ep.ring(Instant::now(), call_b).expect("ring");
    assert!(
        wait_for(&mut uas, 0, |e| {
            matches!(e, SipEvent::CallRinging { call, .. } if *call == call_a).then_some(())
        })
        .await
        .is_some(),
        "alice hears the 180"
    );
    uas[1]
        .ep
        .answer(Instant::now(), call_b, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    let answer = wait_for(&mut uas, 0, |e| match e {
        SipEvent::CallAnswered { call, body, .. } if *call == call_a => Some(body.clone()),
        SipEvent::CallFailed { call, status, .. } if *call == call_a => {
            panic!("call failed: {status}")
        }
        _ => None,
    })
    .await
    .expect("alice gets the 200");
    assert_eq!(answer.as_ref(), ANSWER);
    assert!(
        wait_for(&mut uas, 1, |e| {
            matches!(e, SipEvent::CallConfirmed { call, .. } if *call == call_b).then_some(())
        })
        .await
        .is_some(),
        "bob gets the ACK over TLS\n{}{}",
        uas[0].trace(),
        uas[1].trace()
    );
    uas[0].ep.bye(Instant::now(), call_a).expect("bye");
    assert!(
        wait_for(&mut uas, 0, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Local, .. } if *call == call_a)
                .then_some(())
        })
        .await
        .is_some(),
        "alice's BYE answered"
    );
    assert!(
        wait_for(&mut uas, 1, |e| {
            matches!(e, SipEvent::CallEnded { call, by: EndedBy::Remote, .. } if *call == call_b)
                .then_some(())
        })
        .await
        .is_some(),
        "bob gets the BYE"
    );

    // Every message of both UAs went over TLS (they have no other socket anyway), and
    // the whole exchange is there.
    eprintln!("{}{}", uas[0].trace(), uas[1].trace());
    let a = uas[0].assert_all_tls();
    let b = uas[1].assert_all_tls();
    assert!(
        sent(&a, "REGISTER ") >= 2,
        "alice: REGISTER, 401, REGISTER: {a:#?}"
    );
    assert!(received(&a, "SIP/2.0 401") >= 1, "{a:#?}");
    assert!(
        sent(&a, "INVITE ") >= 2,
        "alice: INVITE, 407, INVITE: {a:#?}"
    );
    assert!(received(&a, "SIP/2.0 407") >= 1, "{a:#?}");
    assert!(received(&a, "SIP/2.0 180") >= 1, "{a:#?}");
    assert!(received(&a, "SIP/2.0 200") >= 3, "{a:#?}");
    assert!(
        sent(&a, "ACK ") >= 2,
        "ACK of the 407 and of the 200: {a:#?}"
    );
    assert!(sent(&a, "BYE ") >= 1, "{a:#?}");
    assert!(received(&b, "INVITE ") >= 1, "{b:#?}");
    assert!(sent(&b, "SIP/2.0 180") >= 1, "{b:#?}");
    assert!(
        sent(&b, "SIP/2.0 200") >= 2,
        "200 to INVITE and BYE: {b:#?}"
    );
    assert!(received(&b, "ACK ") >= 1, "{b:#?}");
    assert!(received(&b, "BYE ") >= 1, "{b:#?}");
    assert!(
        uas.iter().all(|u| u.transport_errors.is_empty()),
        "transport errors: {:?} {:?}",
        uas[0].transport_errors,
        uas[1].transport_errors
    );
    unregister(&mut uas, 0).await;
    unregister(&mut uas, 1).await;
}

/// A TCP relay to `server` that records what the client sends on each connection, and
/// a UDP socket on the same port that records any datagram (a plaintext fallback to the
/// same address would land there).
struct Relay {
    addr: SocketAddr,
    client_bytes: Arc<Mutex<Vec<Vec<u8>>>>,
    udp: tokio::net::UdpSocket,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(server: SocketAddr) -> Relay {
        let (listener, udp) = loop {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("relay bind");
            let addr = l.local_addr().expect("relay addr");
            if let Ok(u) = tokio::net::UdpSocket::bind(addr).await {
                break (l, u);
            }
        };
        let addr = listener.local_addr().expect("relay addr");
        let client_bytes: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let record = client_bytes.clone();
        let task = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(server).await else {
                    continue;
                };
                let slot = {
                    let mut r = record.lock().expect("lock");
                    r.push(Vec::new());
                    r.len() - 1
                };
                let record = record.clone();
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let chunk = buf.get(..n).unwrap_or_default();
                        if let Some(v) = record.lock().expect("lock").get_mut(slot) {
                            v.extend_from_slice(chunk);
                        }
                        if uw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                    let _ = uw.shutdown().await;
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut ur, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
            }
        });
        Relay {
            addr,
            client_bytes,
            udp,
            task,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// REGISTER as alice in `domain` through the relay with `tls`: must fail with a
/// certificate error naming `expect_in_error`, reported to the application as the typed
/// cause `expect`, and nothing may go out in the clear.
async fn failed_tls_register(
    env: &Env,
    domain: &str,
    tls: TlsConfig,
    expect_in_error: &str,
    expect: fn(&TransportFailure) -> bool,
) {
    // Kamailio's certificate, presented by a stand-in (see `common::tls_stand_in`).
    let relay = Relay::start(common::tls_stand_in(&env.ca).await).await;
    let ua = Ua::tls("alice", relay.addr, domain, tls)
        .await
        .expect("transports");
    let mut uas = [ua];
    let r = register(&mut uas, 0).await;
    let status = r.expect_err("REGISTER must fail when the certificate is not trusted");
    assert!(status.starts_with("503"), "a transport failure: {status}");
    // Keep the UA running a little: no retry in the clear, no late registration.
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        turn(&mut uas).await;
    }
    let ua = &uas[0];
    assert!(
        !ua.events
            .iter()
            .any(|e| matches!(e, SipEvent::Registered { .. })),
        "registered despite the TLS failure: {:?}",
        ua.events
    );
    // The application learns why: the typed cause, just before RegistrationFailed.
    let causes: Vec<&TransportFailure> = ua
        .events
        .iter()
        .filter_map(|e| match e {
            SipEvent::TransportFailed {
                request: FailedRequest::Register,
                target,
                error,
                ..
            } if *target == Target::new(Transport::Tls, relay.addr) => Some(error),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&causes[..], [cause] if expect(cause) && cause.is_certificate_error()),
        "one TransportFailed event with the certificate cause: {:?}",
        ua.events
    );
    let errors = ua.transport_errors.join("\n");
    eprintln!("REGISTER failed with {status}; transport errors:\n{errors}");
    assert!(
        errors.contains(expect_in_error),
        "the transport error names the certificate problem ({expect_in_error}): {errors:?}"
    );
    // What the UA put on the wire: only TLS transmits, nothing received.
    for w in &ua.wire {
        assert!(w.sent, "received {:?} over a refused connection", w.line);
        assert_eq!(
            w.transport,
            Transport::Tls,
            "{:?} not sent over TLS",
            w.line
        );
    }
    // What reached the relay: TLS handshake records only, no SIP in the clear.
    let conns = relay.client_bytes.lock().expect("lock").clone();
    assert!(!conns.is_empty(), "the UA never connected");
    for c in &conns {
        assert_eq!(
            c.first(),
            Some(&0x16),
            "a connection that does not start with a TLS handshake record: {:?}",
            String::from_utf8_lossy(c)
        );
        for clear in [&b"REGISTER"[..], b"SIP/2.0", b"cusax.test>"] {
            assert!(
                !contains(c, clear),
                "{:?} sent in the clear",
                String::from_utf8_lossy(clear)
            );
        }
    }
    let mut buf = [0u8; 2048];
    assert!(
        relay.udp.try_recv_from(&mut buf).is_err(),
        "a UDP datagram reached the relay's port: plaintext fallback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_wrong_ca_fails_clearly_without_plaintext_fallback() {
    let Some(env) = env() else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_TLS / CUSAX_SIP_DOMAIN / CUSAX_CA_CERT not set (run scripts/interop-up.sh)"
        );
        return;
    };
    // The Mozilla roots do not include the test CA.
    failed_tls_register(
        &env,
        &env.domain,
        tls_config(TrustAnchors::WebPki),
        "UnknownIssuer",
        |e| matches!(e, TransportFailure::CertificateUntrusted { detail } if detail.contains("UnknownIssuer")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_wrong_server_name_fails_clearly_without_plaintext_fallback() {
    let Some(env) = env() else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_TLS / CUSAX_SIP_DOMAIN / CUSAX_CA_CERT not set (run scripts/interop-up.sh)"
        );
        return;
    };
    // The right CA, but an account in a domain the certificate does not cover: the
    // endpoint asks the registrar's connection to authenticate that domain (RFC 5922
    // §7.2).
    failed_tls_register(
        &env,
        "not-cusax.invalid",
        tls_config(TrustAnchors::PemFile(env.ca.clone())),
        "not valid for name",
        |e| matches!(e, TransportFailure::CertificateNameMismatch { .. }),
    )
    .await;
}
