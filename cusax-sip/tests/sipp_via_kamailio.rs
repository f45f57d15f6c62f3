//! sipp (a real third-party SIP tool) and our UA on either side of a real Kamailio
//! proxy/registrar:
//!
//! - sipp as UAC (user dave) calls `sip:bob@<domain>` through Kamailio (UDP); our UA is
//!   registered there as bob. sipp knows only Kamailio's address, so the call can reach
//!   us only through Kamailio's location lookup. sipp answers Kamailio's 407 with digest
//!   credentials, checks that our 180 and 200 carry Kamailio's Record-Route (copied by
//!   us, RFC 3261 §12.1.1) and sends the ACK and the BYE along the route set; the BYE
//!   is refused by Kamailio unless it carries the Route (loose routing, RFC 3261 §16.12).
//!   A variant (dave calls our UA registered as alice) has our UA hang up: sipp checks
//!   that our BYE crossed Kamailio (Max-Forwards decremented, Kamailio's Via on top).
//!   Another has sipp over TCP and our UA over UDP: Kamailio bridges the transports
//!   and record-routes twice, so each side's route set has two hops; our UA hangs up
//!   and its BYE must cross both. In another, sipp gives up while our UA rings: its
//!   CANCEL crosses Kamailio, our UA reports the call cancelled and answers 487.
//! - our UA as UAC (alice) over TCP through Kamailio to sipp as UAS over TCP: sipp
//!   checks that the INVITE, ACK and BYE all crossed Kamailio.
//!
//! The scenario files are the repository's `scripts/sipp/*_via_proxy*.xml`. Needs
//! `CUSAX_SIPP`, `CUSAX_KAMAILIO_UDP` (or `CUSAX_KAMAILIO_TCP`) and `CUSAX_SIP_DOMAIN`;
//! skips when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::driver::TransportConfig;
use cusax_sip::endpoint::{Account, CallId, CallOptions, EndedBy, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

mod common;
use common::sipp::{Sipp, free_port};

const WAIT: Duration = Duration::from_secs(10);

/// The tests that register a UA run one at a time: Kamailio forks a call to every
/// binding of the callee, so two registered bobs would each get both calls.
static REGISTERED_UAS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const ANSWER: &[u8] = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n";
const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";

/// The scenario files of this repository (not `CUSAX_SIPP_SCENARIOS`, which may point at
/// another checkout).
fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/sipp")
        .join(name)
}

struct Env {
    sipp: PathBuf,
    domain: String,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
}

fn env() -> Option<Env> {
    let sipp = PathBuf::from(std::env::var("CUSAX_SIPP").ok()?);
    let domain = std::env::var("CUSAX_SIP_DOMAIN").ok()?;
    let parse = |k: &str| std::env::var(k).ok().and_then(|s| s.parse().ok());
    sipp.exists().then_some(Env {
        sipp,
        domain,
        udp: parse("CUSAX_KAMAILIO_UDP"),
        tcp: parse("CUSAX_KAMAILIO_TCP"),
    })
}

/// The environment when it has what a test needs (sipp, the domain and, as `udp` /
/// `tcp` say, Kamailio's UDP and TCP addresses); otherwise prints why the test is
/// skipped and gives `None`.
fn env_or_skip(udp: bool, tcp: bool) -> Option<Env> {
    let env = env().filter(|e| (!udp || e.udp.is_some()) && (!tcp || e.tcp.is_some()));
    if env.is_none() {
        let mut vars = vec!["CUSAX_SIPP", "CUSAX_SIP_DOMAIN"];
        vars.extend(udp.then_some("CUSAX_KAMAILIO_UDP"));
        vars.extend(tcp.then_some("CUSAX_KAMAILIO_TCP"));
        eprintln!(
            "skipping: {} not set (run scripts/interop-up.sh)",
            vars.join(" / ")
        );
    }
    env
}

/// Steps of the calls below that fail with sipp's report.
impl Sipp {
    /// Waits until `ua` reports `call` confirmed (the ACK arrived), or fails with `what`.
    async fn expect_confirmed(&self, ua: &mut Client, call: CallId, what: &str) {
        let seen = ua
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallConfirmed { call: c, .. } if *c == call).then_some(())
            })
            .await;
        if seen.is_none() {
            self.fail(what);
        }
    }

    /// Waits until `ua` reports `call` ended by `by`, or fails with `what`.
    async fn expect_ended(&self, ua: &mut Client, call: CallId, by: EndedBy, what: &str) {
        let seen = ua
            .wait_for(WAIT, |e| {
                matches!(e, SipEvent::CallEnded { call: c, by: b, .. } if *c == call && *b == by)
                    .then_some(())
            })
            .await;
        if seen.is_none() {
            self.fail(what);
        }
    }

    /// Waits for sipp's scenario to pass (`what` names it), shutting `ua` down either way.
    async fn finish(self, ua: Client, what: &str) {
        let r = tokio::task::spawn_blocking(move || self.wait(WAIT))
            .await
            .expect("join");
        ua.shutdown(WAIT).await;
        r.expect(what);
    }
}

/// Starts sipp on 127.0.0.1:`port` with `scenario`; `extra` are the mode-specific
/// arguments (remote host, transport, variables).
fn spawn_sipp(bin: &Path, scenario: &Path, port: u16, extra: &[String]) -> Sipp {
    Sipp::spawn(bin, scenario, port, extra)
}

/// An account at Kamailio over the plain `transport` (sipp has no TLS), chosen
/// explicitly with [`EndpointConfig::insecure`].
fn config(user: &str, server: SocketAddr, transport: Transport, domain: &str) -> EndpointConfig {
    let mut c = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), transport);
    c.account = Some(Account {
        aor: Uri::parse(&format!("sip:{user}@{domain}")).expect("aor"),
        display_name: None,
        username: user.to_owned(),
        password: format!("{user}-secret"),
        registrar: Target::new(transport, server),
        outbound_proxy: Some(Target::new(transport, server)),
        expires: 120,
    });
    c
}

/// Starts a UA over UDP only (one UDP socket, no TCP listener, no TLS).
async fn start_udp(user: &str, server: SocketAddr, domain: &str) -> Client {
    let cfg = config(user, server, Transport::Udp, domain);
    let tc = TransportConfig::udp(cfg.local_addr);
    Client::start_with(cfg, Some(tc)).await.expect("bind")
}

/// Starts a UA over TCP only (a TCP listener for Via/Contact; requests from Kamailio
/// come back over the connection we opened).
async fn start_tcp(user: &str, server: SocketAddr, domain: &str) -> Client {
    let cfg = config(user, server, Transport::Tcp, domain);
    let tc = TransportConfig {
        tcp_listen: Some(cfg.local_addr),
        tls: None,
        ..TransportConfig::default()
    };
    Client::start_with(cfg, Some(tc)).await.expect("bind")
}

async fn register(c: &mut Client) {
    c.register().expect("register");
    let ok = c
        .wait_for(WAIT, |e| match e {
            SipEvent::Registered { .. } => Some(Ok(())),
            SipEvent::RegistrationFailed { status, reason, .. } => {
                Some(Err(format!("{status} {reason}")))
            }
            _ => None,
        })
        .await;
    assert_eq!(ok, Some(Ok(())), "REGISTER at Kamailio");
}

/// sipp arguments for the UAC scenario: call `callee` as dave through `proxy` over
/// `transport` (sipp's `-t`: `u1` UDP, `t1` TCP).
fn uac_args(proxy: SocketAddr, transport: &str, callee: &str, domain: &str) -> Vec<String> {
    [
        &proxy.to_string(),
        "-t",
        transport,
        "-s",
        callee,
        "-set",
        "domain",
        domain,
        "-set",
        "caller",
        "dave",
        "-au",
        "dave",
        "-ap",
        "dave-secret",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Lets the callee ring for a moment before answering. sipp's scenarios require the 180
/// before the 200, and Kamailio relays the two from different worker processes, which
/// may reorder them when they are sent back to back (SIP over UDP allows that).
async fn ringing() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Waits for dave's call and checks that it is the one addressed to `callee`'s AOR.
async fn incoming_from_dave(
    ua: &mut Client,
    callee: &str,
    domain: &str,
) -> Option<cusax_sip::endpoint::CallId> {
    ua.wait_for(WAIT, |e| match e {
        SipEvent::IncomingCall {
            call,
            from,
            to,
            anonymous,
            body,
            ..
        } if from.uri.user.as_deref() == Some("dave") => {
            // sipp addressed the AOR, never our Contact: Kamailio's location lookup
            // rewrote the Request-URI; From/To are end-to-end.
            assert_eq!(from.uri.host.to_string(), domain, "From host");
            assert_eq!(to.uri.user.as_deref(), Some(callee), "To user");
            assert_eq!(to.uri.host.to_string(), domain, "To host");
            assert!(!anonymous);
            assert!(
                String::from_utf8_lossy(body).contains("o=sipp"),
                "sipp's offer arrives unchanged"
            );
            Some(*call)
        }
        _ => None,
    })
    .await
}

/// `user` registered through Kamailio (`ua_proxy`, UDP) and a sipp UAC running `name`
/// (over TCP when `tcp`, to Kamailio at `sipp_proxy`) whose INVITE reached the UA and was
/// rung: the UA, sipp and the call.
async fn sipp_calls_registered_ua(
    env: (&Path, &str),
    name: &str,
    user: &str,
    ua_proxy: SocketAddr,
    (sipp_proxy, tcp): (SocketAddr, bool),
) -> (Client, Sipp, CallId) {
    let (bin, domain) = env;
    let mut ua = start_udp(user, ua_proxy, domain).await;
    register(&mut ua).await;
    let sipp = spawn_sipp(
        bin,
        &scenario(name),
        free_port(tcp),
        &uac_args(sipp_proxy, if tcp { "t1" } else { "u1" }, user, domain),
    );
    let call = incoming_from_dave(&mut ua, user, domain)
        .await
        .unwrap_or_else(|| sipp.fail("sipp's INVITE reaches the UA through Kamailio"));
    ua.ring(call).expect("ring");
    (ua, sipp, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_calls_registered_ua_through_kamailio() {
    let Some(Env {
        sipp,
        domain,
        udp: Some(proxy),
        ..
    }) = env_or_skip(true, false)
    else {
        return;
    };
    let _serial = REGISTERED_UAS.lock().await;
    let (mut bob, sipp, call) = sipp_calls_registered_ua(
        (&sipp, &domain),
        "uac_via_proxy.xml",
        "bob",
        proxy,
        (proxy, false),
    )
    .await;
    ringing().await;
    bob.answer(call, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    sipp.expect_confirmed(&mut bob, call, "sipp's ACK reaches bob along the route set")
        .await;
    sipp.expect_ended(
        &mut bob,
        call,
        EndedBy::Remote,
        "sipp's BYE reaches bob along the route set",
    )
    .await;
    sipp.finish(
        bob,
        "sipp's UAC scenario (407 digest, Record-Route checks, ACK, BYE) passed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_through_kamailio_registered_ua_hangs_up() {
    let Some(Env {
        sipp,
        domain,
        udp: Some(proxy),
        ..
    }) = env_or_skip(true, false)
    else {
        return;
    };
    let _serial = REGISTERED_UAS.lock().await;
    let (mut alice, sipp, call) = sipp_calls_registered_ua(
        (&sipp, &domain),
        "uac_via_proxy_callee_bye.xml",
        "alice",
        proxy,
        (proxy, false),
    )
    .await;
    ringing().await;
    alice
        .answer(call, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    sipp.expect_confirmed(
        &mut alice,
        call,
        "sipp's ACK reaches alice along the route set",
    )
    .await;
    // Our BYE must follow the route set (Kamailio), which sipp checks.
    alice.bye(call).expect("bye");
    sipp.expect_ended(
        &mut alice,
        call,
        EndedBy::Local,
        "sipp's 200 to our BYE comes back through Kamailio",
    )
    .await;
    sipp.finish(alice, "sipp saw our BYE arrive through Kamailio")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ua_calls_sipp_uas_through_kamailio_over_tcp() {
    let Some(Env {
        sipp,
        domain,
        tcp: Some(proxy),
        ..
    }) = env_or_skip(false, true)
    else {
        return;
    };
    let port = free_port(true);
    let sipp = spawn_sipp(
        &sipp,
        &scenario("uas_via_proxy.xml"),
        port,
        &["-t".into(), "t1".into()],
    );
    let mut alice = start_tcp("alice", proxy, &domain).await;
    // The INVITE goes to the outbound proxy (Kamailio, TCP), which authenticates alice
    // (407) and relays to sipp over TCP.
    let to = Uri::parse(&format!("sip:sipp@127.0.0.1:{port};transport=tcp")).expect("uri");
    // Give sipp a moment to listen: over TCP a refused connection is final.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let call = alice
        .invite(to, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let answered = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call: c, body, .. } if *c == call => Some(Ok(body.clone())),
            SipEvent::CallFailed {
                call: c,
                status,
                reason,
                ..
            } if *c == call => Some(Err(format!("{status} {reason}"))),
            _ => None,
        })
        .await;
    let body = match answered {
        Some(Ok(body)) => body,
        other => panic!(
            "call through Kamailio TCP: {other:?}; sipp:\n{}",
            sipp.report()
        ),
    };
    assert!(String::from_utf8_lossy(&body).contains("o=sipp"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    alice.bye(call).expect("bye");
    sipp.expect_ended(
        &mut alice,
        call,
        EndedBy::Local,
        "BYE answered through Kamailio",
    )
    .await;
    sipp.finish(
        alice,
        "sipp saw INVITE, ACK and BYE arrive through Kamailio over TCP",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_over_tcp_through_kamailio_to_ua_over_udp_which_hangs_up() {
    let Some(Env {
        sipp,
        domain,
        udp: Some(udp),
        tcp: Some(tcp),
    }) = env_or_skip(true, true)
    else {
        return;
    };
    let _serial = REGISTERED_UAS.lock().await;
    // bob over UDP, sipp over TCP: Kamailio bridges the transports and record-routes
    // twice (one entry per side), so bob's route set has two hops, both Kamailio.
    let (mut bob, sipp, call) = sipp_calls_registered_ua(
        (&sipp, &domain),
        "uac_via_proxy_callee_bye.xml",
        "bob",
        udp,
        (tcp, true),
    )
    .await;
    ringing().await;
    bob.answer(call, 200, Bytes::from_static(ANSWER))
        .expect("answer");
    sipp.expect_confirmed(
        &mut bob,
        call,
        "sipp's ACK reaches bob along the two-hop route set",
    )
    .await;
    bob.bye(call).expect("bye");
    sipp.expect_ended(
        &mut bob,
        call,
        EndedBy::Local,
        "our BYE (UDP) reaches sipp (TCP) through Kamailio and is answered",
    )
    .await;
    sipp.finish(bob, "sipp (TCP) saw our BYE arrive through Kamailio")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_cancels_through_kamailio_while_ua_rings() {
    let Some(Env {
        sipp,
        domain,
        udp: Some(proxy),
        ..
    }) = env_or_skip(true, false)
    else {
        return;
    };
    let _serial = REGISTERED_UAS.lock().await;
    let (mut bob, sipp, call) = sipp_calls_registered_ua(
        (&sipp, &domain),
        "uac_via_proxy_cancel.xml",
        "bob",
        proxy,
        (proxy, false),
    )
    .await;
    // sipp gives up on the 180: Kamailio relays its CANCEL, we answer 200 and 487.
    let ended = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::CallCancelled { call: c, .. } if *c == call => Some(Ok(())),
            SipEvent::CallConfirmed { call: c, .. } | SipEvent::CallEnded { call: c, .. }
                if *c == call =>
            {
                Some(Err(format!("{e:?}")))
            }
            _ => None,
        })
        .await;
    match ended {
        Some(Ok(())) => {}
        Some(Err(e)) => sipp.fail(&format!("expected CallCancelled, got {e}")),
        None => sipp.fail("sipp's CANCEL reaches bob through Kamailio"),
    }
    // Answering now is too late: the call is gone.
    assert!(
        bob.answer(call, 200, Bytes::from_static(ANSWER)).is_err(),
        "a cancelled call cannot be answered"
    );
    sipp.finish(
        bob,
        "sipp got 200 for its CANCEL and our 487 through Kamailio",
    )
    .await;
}
