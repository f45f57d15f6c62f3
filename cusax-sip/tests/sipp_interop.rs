//! Interop with sipp (a real third-party SIP tool) as a child process: sipp as UAS
//! asserting with regular expressions what our INVITE carries (Call-Info impp, or no
//! identity at all when anonymous), sipp as UAS behind a relay that drops our first
//! INVITE (our Timer A retransmission recovers; sipp cannot drop it itself, see
//! scripts/sipp/uas_basic.xml), sipp as UAS over TCP or UDP only receiving an INVITE too
//! large for UDP (RFC 3261 §18.1.1: moved to TCP, or back to UDP when TCP is refused),
//! sipp redirecting our call to another sipp with 302 (RFC 3261 §8.1.3.4), and sipp as
//! UAC calling us. Needs `CUSAX_SIPP` and
//! `CUSAX_SIPP_SCENARIOS`; skips when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cusax_sip::endpoint::{CallOptions, EndedBy, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::Transport;
use cusax_sip::ua::client::Client;

mod common;
use common::sipp::{Sipp, free_port};

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &[u8] = b"v=0\r\no=cusax 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

fn sipp_env() -> Option<(PathBuf, PathBuf)> {
    let bin = PathBuf::from(std::env::var("CUSAX_SIPP").ok()?);
    let dir = PathBuf::from(std::env::var("CUSAX_SIPP_SCENARIOS").ok()?);
    (bin.exists() && dir.exists()).then_some((bin, dir))
}

/// Starts sipp with `scenario` of the scenario folder `dir`; `extra` are the
/// mode-specific arguments.
fn spawn_sipp(bin: &Path, dir: &Path, scenario: &str, port: u16, extra: &[String]) -> Sipp {
    Sipp::spawn(bin, &dir.join(scenario), port, extra)
}

async fn client(impp: Option<&str>) -> Client {
    // Plain UDP, chosen explicitly (TLS is the default).
    let mut c = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Udp);
    c.contact_user = "alice".into();
    c.call_info_impp = impp.map(str::to_owned);
    Client::start(c).await.expect("bind")
}

/// Calls the sipp UAS at `port`, waits for the answer, hangs up, and waits for sipp.
async fn call_sipp_uas(scenario: &str, opts: CallOptions) -> Result<(), String> {
    call_sipp_uas_via(scenario, opts, false).await
}

async fn call_sipp_uas_via(scenario: &str, opts: CallOptions, lossy: bool) -> Result<(), String> {
    call_sipp_uas_with(scenario, opts, lossy, OFFER, false).await
}

/// Waits until something listens on TCP 127.0.0.1:`port`, read from /proc/net/tcp
/// (a probing connection would be a call attempt for sipp). Over TCP nothing
/// retransmits our INVITE: it must find sipp ready.
async fn tcp_listening(port: u16, timeout: Duration) -> bool {
    let want = format!("0100007F:{port:04X}");
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let listening = table.lines().skip(1).any(|line| {
            let mut cols = line.split_whitespace().skip(1);
            let (Some(local), Some(_remote), Some(state)) = (cols.next(), cols.next(), cols.next())
            else {
                return false;
            };
            local == want && state == "0A"
        });
        if listening {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// An SDP offer of more than 1,300 bytes (RFC 3261 §18.1.1's limit for UDP when the
/// path MTU is unknown): many codecs and attributes, as a video phone's offer has.
fn large_offer() -> Vec<u8> {
    let mut sdp = String::from_utf8_lossy(OFFER).into_owned();
    for pt in 96..127 {
        sdp.push_str(&format!(
            "a=rtpmap:{pt} codec{pt}/90000\r\na=fmtp:{pt} profile-level-id=42e01f;packetization-mode=1\r\n"
        ));
    }
    assert!(sdp.len() > 1300, "the offer alone is {} bytes", sdp.len());
    sdp.into_bytes()
}

/// A UDP relay in front of sipp that drops the first INVITE it sees (as if lost) and
/// forwards everything else both ways. Returns its address and a counter of INVITEs.
async fn lossy_relay(
    sipp: SocketAddr,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("relay bind");
    let addr = sock.local_addr().expect("relay addr");
    let invites = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = invites.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        let mut client: Option<SocketAddr> = None;
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let data = buf.get(..n).unwrap_or_default().to_vec();
            if from == sipp {
                if let Some(c) = client {
                    let _ = sock.send_to(&data, c).await;
                }
                continue;
            }
            client = Some(from);
            if data.starts_with(b"INVITE ") && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                continue; // the first INVITE is lost
            }
            let _ = sock.send_to(&data, sipp).await;
        }
    });
    (addr, invites)
}

/// Calls a sipp UAS running `scenario` (over TCP with `sipp_tcp`, else UDP) with
/// `offer`, through a relay losing the first INVITE with `lossy`; see [`call_sipp_uas`].
async fn call_sipp_uas_with(
    scenario: &str,
    opts: CallOptions,
    lossy: bool,
    offer: &[u8],
    sipp_tcp: bool,
) -> Result<(), String> {
    let Some((bin, dir)) = sipp_env() else {
        eprintln!(
            "skipping: CUSAX_SIPP / CUSAX_SIPP_SCENARIOS not set (run scripts/interop-up.sh)"
        );
        return Ok(());
    };
    let port = free_port(sipp_tcp);
    let transport: Vec<String> = if sipp_tcp {
        vec!["-t".into(), "t1".into()]
    } else {
        Vec::new()
    };
    let sipp = spawn_sipp(&bin, &dir, scenario, port, &transport);
    if sipp_tcp && !tcp_listening(port, WAIT).await {
        return Err(format!(
            "sipp does not listen on TCP {port}; {}",
            sipp.report()
        ));
    }
    let mut alice = client(Some("alice@cusax.test")).await;
    let sipp_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (hop, invites) = if lossy {
        // Let sipp bind first so that the only loss is the relay's.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (a, n) = lossy_relay(sipp_addr).await;
        (a, Some(n))
    } else {
        (sipp_addr, None)
    };
    // No wait for sipp to listen: Timer A retransmits the INVITE until it does.
    let to = Uri::parse(&format!("sip:sipp@{hop}")).expect("uri");
    let call = alice
        .invite(to, Bytes::copy_from_slice(offer), opts)
        .expect("invite");
    let answered = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call: c, .. } if *c == call => Some(Ok(())),
            SipEvent::CallFailed { status, .. } => Some(Err(format!("call failed: {status}"))),
            _ => None,
        })
        .await
        .unwrap_or_else(|| Err("no answer from sipp".into()));
    if let Err(e) = answered {
        let errs = sipp.errors();
        return Err(format!("{e}; sipp errors:\n{errs}"));
    }
    if let Some(n) = invites {
        let n = n.load(std::sync::atomic::Ordering::SeqCst);
        if n < 2 {
            return Err(format!("expected a retransmitted INVITE, relay saw {n}"));
        }
    }
    alice.bye(call).expect("bye");
    let ended = alice
        .wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call: c, by: EndedBy::Local } if *c == call)
                .then_some(())
        })
        .await;
    if ended.is_none() {
        return Err("BYE not answered".into());
    }
    tokio::task::spawn_blocking(move || sipp.wait(WAIT))
        .await
        .map_err(|e| e.to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_sees_call_info_impp() {
    call_sipp_uas("uas_callinfo.xml", CallOptions::with_impp())
        .await
        .expect("sipp accepted our INVITE with Call-Info impp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_rejects_invite_without_call_info() {
    // The Call-Info assertion can fail: without the option sipp must report an error.
    if sipp_env().is_none() {
        eprintln!(
            "skipping: CUSAX_SIPP / CUSAX_SIPP_SCENARIOS not set (run scripts/interop-up.sh)"
        );
        return;
    }
    let r = call_sipp_uas("uas_callinfo.xml", CallOptions::default()).await;
    let err = r.expect_err("sipp's ereg check must fail without Call-Info");
    assert!(
        err.contains("Call-Info"),
        "sipp failed for another reason: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_sees_no_identity_on_anonymous_call() {
    let mut opts = CallOptions::anonymous();
    // Even when asked for, an anonymous call carries no Call-Info (RFC 7081 §3.5).
    opts.call_info_impp = true;
    call_sipp_uas("uas_anonymous.xml", opts)
        .await
        .expect("sipp accepted our anonymous INVITE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_dropping_first_invite_gets_retransmission() {
    call_sipp_uas_via("uas_basic.xml", CallOptions::default(), true)
        .await
        .expect("our INVITE retransmission was answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_invite_to_a_udp_target_goes_over_tcp() {
    // RFC 3261 §18.1.1: the target is `sip:sipp@127.0.0.1:port` (UDP by default), the
    // INVITE is over 1,300 bytes: it must reach sipp over TCP with a TCP Via. sipp only
    // listens on TCP, so a UDP INVITE would never be answered.
    call_sipp_uas_with(
        "uas_via_tcp.xml",
        CallOptions::default(),
        false,
        &large_offer(),
        true,
    )
    .await
    .expect("sipp answered our large INVITE over TCP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_invite_falls_back_to_udp_when_tcp_is_refused() {
    // sipp only listens on UDP: the TCP connection for the large INVITE is refused and
    // the INVITE must be sent again over UDP with a UDP Via (RFC 3261 §18.1.1).
    call_sipp_uas_with(
        "uas_via_udp.xml",
        CallOptions::default(),
        false,
        &large_offer(),
        false,
    )
    .await
    .expect("sipp answered our large INVITE over UDP after TCP was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_302_from_sipp_sends_the_call_to_the_moved_contact() {
    // RFC 3261 §8.1.3.4: one sipp answers 302 with two Contacts; the better one (q=0.9,
    // listed second) is a second sipp, which answers the call.
    let Some((bin, dir)) = sipp_env() else {
        eprintln!(
            "skipping: CUSAX_SIPP / CUSAX_SIPP_SCENARIOS not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let moved_port = free_port(false);
    let moved = spawn_sipp(&bin, &dir, "uas_basic.xml", moved_port, &[]);
    let port = free_port(false);
    let unused = free_port(false);
    let redirecting = spawn_sipp(
        &bin,
        &dir,
        "uas_redirect.xml",
        port,
        &[
            "-key".into(),
            "moved_port".into(),
            moved_port.to_string(),
            "-key".into(),
            "unused_port".into(),
            unused.to_string(),
        ],
    );
    let mut alice = client(None).await;
    let to = Uri::parse(&format!("sip:sipp@127.0.0.1:{port}")).expect("uri");
    let call = alice
        .invite(to, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    let redirected = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallRedirected {
                call: c,
                status,
                target,
                ..
            } if *c == call => Some((*status, target.to_string())),
            SipEvent::CallFailed { status, .. } => Some((*status, String::new())),
            _ => None,
        })
        .await;
    assert_eq!(
        redirected,
        Some((302, format!("sip:moved@127.0.0.1:{moved_port}"))),
        "sipp: {}",
        redirecting.report()
    );
    let answered = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call: c, .. } if *c == call => Some(Ok(())),
            SipEvent::CallFailed { status, .. } => Some(Err(*status)),
            _ => None,
        })
        .await;
    if answered != Some(Ok(())) {
        moved.fail(&format!("the moved contact did not answer: {answered:?}"));
    }
    alice.bye(call).expect("bye");
    let ended = alice
        .wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call: c, by: EndedBy::Local } if *c == call)
                .then_some(())
        })
        .await;
    assert!(ended.is_some(), "BYE answered by the moved contact");
    let (a, b) = tokio::task::spawn_blocking(move || (redirecting.wait(WAIT), moved.wait(WAIT)))
        .await
        .expect("join");
    a.expect("the redirecting sipp saw INVITE and ACK");
    b.expect("the moved sipp saw the whole call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_calls_us() {
    let Some((bin, dir)) = sipp_env() else {
        eprintln!(
            "skipping: CUSAX_SIPP / CUSAX_SIPP_SCENARIOS not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let mut bob = client(None).await;
    let target = bob.local_addr().to_string();
    let port = free_port(false);
    let sipp = spawn_sipp(
        &bin,
        &dir,
        "uac_call.xml",
        port,
        &[target, "-s".into(), "bob".into()],
    );
    let call = bob
        .wait_for(WAIT, |e| match e {
            SipEvent::IncomingCall {
                call, anonymous, ..
            } => {
                assert!(!anonymous);
                Some(*call)
            }
            _ => None,
        })
        .await
        .expect("sipp's INVITE arrives");
    bob.ring(call).expect("ring");
    bob.answer(call, 200, Bytes::from_static(OFFER))
        .expect("answer");
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallConfirmed { call: c } if *c == call).then_some(())
        })
        .await
        .is_some(),
        "sipp's ACK arrives"
    );
    assert!(
        bob.wait_for(WAIT, |e| {
            matches!(e, SipEvent::CallEnded { call: c, by: EndedBy::Remote } if *c == call)
                .then_some(())
        })
        .await
        .is_some(),
        "sipp's BYE arrives"
    );
    tokio::task::spawn_blocking(move || sipp.wait(WAIT))
        .await
        .expect("join")
        .expect("sipp UAC scenario passed");
}
