//! Real-peer media proof: alice (cusax) registers through Kamailio and calls baresip
//! (registered as carol, auto-answer, SDES-SRTP mandatory, playing a tone WAV and
//! recording what it receives with sndfile). Four calls: Opus first with every SRTP
//! suite offered, PCMU only with AES_CM_128_HMAC_SHA1_80, Opus only with
//! AES_CM_128_HMAC_SHA1_32, and a 6 s Opus call put on hold (re-INVITE `sendonly`) and
//! resumed (re-INVITE `sendrecv`), each answer applied with `MediaSession::update`.
//!
//! For each call: SDP offer/answer with cusax-media (RTP/SAVP, RFC 4568 SDES), the
//! tokio UDP driver runs the `MediaSession` for 3 s sending a 440 Hz tone; we check
//! that SRTP packets from baresip were authenticated and decrypted (no auth failures)
//! and that the dominant frequency of what we decoded is baresip's tone; we hang up
//! (BYE) and check that baresip's recording of what it decoded from us has our 440 Hz
//! as its dominant frequency.
//!
//! baresip 1.0 quirks this test works around or tolerates: it ignores new SDES keys in a
//! re-INVITE (so the hold call keeps ours with `MediaConfig::reuse_sdes_keys`); it tags
//! SRTCP with 32 bits under AES_CM_128_HMAC_SHA1_32 (SRTCP failures reported, not
//! asserted, for that suite); it stops its sndfile recording at a re-INVITE.
//!
//! Signalling to baresip is plain UDP through Kamailio, so the SDES keys travel in the
//! clear: the test opts in with `MediaConfig::allow_insecure_sdes` (refused by default,
//! RFC 4568 §8.3) and checks that the security summary says the media is not
//! confidential.
//!
//! Needs `CUSAX_KAMAILIO_UDP`, `CUSAX_SIP_DOMAIN`, `CUSAX_BARESIP_CTRL` and
//! `CUSAX_BARESIP_DIR` (written by `CUSAX_WITH_BARESIP=1 scripts/interop-up.sh`);
//! skips when they are absent. `CUSAX_BARESIP_USER` names baresip's account (default
//! `carol`). Assumes nobody else calls that account meanwhile (it finds
//! baresip's recording as the new `*-dec.wav` file of the call).

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ctrl::{Ctrl, accept_incoming};
use common::{Spectrum, baresip_source_wav, first_channel, sine, wav_files};
use cusax_media::driver::{UdpDriver, ntp_now};
use cusax_media::keying::sdes::SrtpSuite;
use cusax_media::sdp::SessionDescription;
use cusax_media::sdp::offer_answer::{
    AudioCodec, Direction, MediaConfig, Negotiated, NegotiationError, OfferAnswer, SecuritySummary,
};
use cusax_media::session::{MediaSession, SessionConfig, SessionStats};
use cusax_media::wav::Wav;
use cusax_sip::endpoint::{Account, CallOptions, EndedBy, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

const WAIT: Duration = Duration::from_secs(10);
/// Our tone; baresip's must differ from it by more than the analysis resolution.
const OUR_FREQ: f64 = 440.0;
/// App audio: 48 kHz mono, 20 ms frames.
const APP_RATE: u32 = 48_000;
const FRAME: usize = 960;
/// 3 s of media.
const TICKS: usize = 150;
/// Largest accepted distance between an expected and a measured dominant frequency
/// (the analysis probes every 5 Hz with 20 Hz resolution).
const FREQ_TOLERANCE: f64 = 15.0;

struct Env {
    kamailio: SocketAddr,
    domain: String,
    ctrl: SocketAddr,
    dir: PathBuf,
    user: String,
}

fn env() -> Result<Env, String> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} not set"));
    let kamailio = var("CUSAX_KAMAILIO_UDP")?
        .parse()
        .map_err(|e| format!("CUSAX_KAMAILIO_UDP: {e}"))?;
    let domain = var("CUSAX_SIP_DOMAIN")?;
    let ctrl = var("CUSAX_BARESIP_CTRL")?
        .parse()
        .map_err(|e| format!("CUSAX_BARESIP_CTRL: {e}"))?;
    let dir = PathBuf::from(var("CUSAX_BARESIP_DIR")?);
    let user = var("CUSAX_BARESIP_USER").unwrap_or_else(|_| "carol".to_owned());
    Ok(Env {
        kamailio,
        domain,
        ctrl,
        dir,
        user,
    })
}

fn alice_config(server: SocketAddr, domain: &str) -> EndpointConfig {
    // Plain UDP, chosen explicitly (TLS is the default).
    let mut c = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Udp);
    c.account = Some(Account {
        aor: Uri::parse(&format!("sip:alice@{domain}")).expect("aor"),
        display_name: None,
        username: "alice".to_owned(),
        password: "alice-secret".to_owned(),
        registrar: Target::new(Transport::Udp, server),
        outbound_proxy: Some(Target::new(Transport::Udp, server)),
        expires: 120,
    });
    c
}

/// What one call measured, for the assertions and the closing note.
#[derive(Debug)]
struct CallReport {
    label: &'static str,
    codec: String,
    suite: String,
    /// The security summary (RFC 7081 §7) as shown to a user.
    security: SecuritySummary,
    rtcp_mux: bool,
    /// Whether a separate RTCP socket (RTP port + 1) could be bound without rtcp-mux.
    rtcp_socket: bool,
    stats: SessionStats,
    silent_pulls: usize,
    heard: Spectrum,
    recorded: Option<(PathBuf, Wav)>,
    /// Every WAV file baresip wrote for this call (what it decoded and encoded).
    new_files: Vec<PathBuf>,
    /// The mid-call re-INVITEs, in order.
    reinvites: Vec<ReinviteReport>,
    /// Everything we played out (app rate).
    heard_pcm: Vec<i16>,
}

/// One mid-call re-INVITE (RFC 3261 §14) applied with `MediaSession::update`.
#[derive(Debug)]
struct ReinviteReport {
    /// The direction we offered.
    offered: Direction,
    /// The direction negotiated for us.
    negotiated: Direction,
    /// Our SDES key and baresip's are the ones of the first exchange.
    keys_kept: (bool, bool),
    /// Our counters right after the update.
    stats_at: SessionStats,
    /// Index into what we heard where this re-INVITE took effect.
    heard_at: usize,
}

fn describe(n: &Negotiated) -> (String, String) {
    let c = &n.audio.send_codec;
    let codec = format!("{}/{}/{} (PT {})", c.name, c.clock_rate, c.channels, c.pt);
    let suite = n
        .security
        .srtp_suite
        .map_or_else(|| "none (plain RTP)".to_owned(), |s| s.name().to_owned());
    (codec, suite)
}

/// Waits for the WAV file of this call that baresip's sndfile module wrote with what
/// it decoded (`*-dec.wav`, not in `before`), until its header says it holds at least
/// one second (libsndfile completes the header when the call's stream closes).
async fn baresip_recording(dir: &Path, before: &HashSet<PathBuf>) -> Option<(PathBuf, Wav)> {
    let deadline = Instant::now() + WAIT;
    loop {
        for (path, _) in wav_files(dir, "-dec.wav") {
            if before.contains(&path) {
                continue;
            }
            if let Ok(w) = std::fs::read(&path)
                .map_err(|_| ())
                .and_then(|b| Wav::parse(&b).map_err(|_| ()))
                && w.samples.len() / w.channels.max(1) as usize >= w.rate as usize
            {
                return Some((path, w));
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(
    alice: &mut Client,
    env: &Env,
    label: &'static str,
    codecs: Vec<AudioCodec>,
    suites: &[SrtpSuite],
    reinvites: &[(usize, Direction)],
    ticks: usize,
) -> CallReport {
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind RTP");
    let local = rtp.local_addr().expect("local addr");
    let mut mc = MediaConfig::new(local);
    mc.codecs = codecs;
    mc.srtp_suites = suites.to_vec();
    // The SIP hop to baresip is UDP: SDES keys are refused there by default...
    let refused = OfferAnswer::new(mc.clone(), &mut rand::rng()).create_offer(false);
    assert_eq!(
        refused.err(),
        Some(NegotiationError::InsecureSignalling),
        "{label}: SDES over insecure signalling must be refused by default"
    );
    // ...so this lab test opts in explicitly, and the summary must say so.
    mc.allow_insecure_sdes = true;
    // baresip 1.0 ignores new SDES keys in a re-INVITE (it keeps decrypting with the
    // first ones), so calls with re-INVITEs keep ours; safe because every exchange is
    // applied to this one session with `MediaSession::update` (RFC 4568 §7.1.4).
    mc.reuse_sdes_keys = !reinvites.is_empty();
    let mut oa = OfferAnswer::new(mc, &mut rand::rng());
    let offer = oa.create_offer(false).expect("offer").to_string();
    let before: HashSet<PathBuf> = wav_files(&env.dir, ".wav")
        .into_iter()
        .map(|(p, _)| p)
        .collect();

    // baresip 1.0 auto-answers only with the account parameter `;answermode=auto`
    // (interop/baresip/accounts.in); a baresip started without it is answered through
    // its remote control when the call comes in. Both may happen: then `accept` finds
    // the call already answered, which is fine.
    let ctrl = Ctrl::connect(env.ctrl).await.expect("ctrl_tcp");
    let acceptor = tokio::spawn(accept_incoming(ctrl, "sip:alice@".to_owned()));
    let peer = Uri::parse(&format!("sip:{}@{}", env.user, env.domain)).expect("uri");
    let id = alice
        .invite(peer, Bytes::from(offer.clone()), CallOptions::default())
        .expect("invite");
    let answer = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallAnswered { call, body, .. } if *call == id => Some(Ok(body.clone())),
            SipEvent::CallFailed {
                call,
                status,
                reason,
            } if *call == id => Some(Err(format!("{status} {reason}"))),
            _ => None,
        })
        .await
        .unwrap_or_else(|| panic!("{label}: baresip did not answer within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{label}: call failed: {e}\noffer:\n{offer}"));
    // The acceptor may still be reading the response to its `accept`.
    let answered_by = match tokio::time::timeout(Duration::from_secs(2), acceptor).await {
        Ok(Ok(Ok((_, resp)))) if resp.contains(r#""ok":false"#) => {
            format!("baresip auto-answer (ctrl_tcp accept found it answered: {resp})")
        }
        Ok(Ok(Ok((_, resp)))) => format!("ctrl_tcp accept, response {resp}"),
        Ok(Ok(Err(e))) => format!("baresip (ctrl_tcp: {e})"),
        Ok(Err(e)) => format!("baresip (ctrl task: {e})"),
        Err(_) => "baresip auto-answer (no CALL_INCOMING seen)".to_owned(),
    };
    eprintln!("{label}: answered by {answered_by}");
    let answer_text = String::from_utf8_lossy(&answer).into_owned();
    let negotiated = SessionDescription::parse(&answer)
        .map_err(|e| e.to_string())
        .and_then(|sdp| {
            // the answer came over UDP too
            oa.accept_answer(&sdp, false).map_err(|e| e.to_string())
        });
    let negotiated = match negotiated {
        Ok(n) => n,
        Err(e) => {
            let _ = alice.bye(id);
            panic!("{label}: unusable answer ({e}):\n{answer_text}");
        }
    };
    let (codec, suite) = describe(&negotiated);
    eprintln!("{label}: negotiated codec {codec}, SRTP suite {suite}");
    eprintln!("{label}: security: {}", negotiated.security);
    tracing::debug!(%offer, answer = %answer_text, "SDP");

    // RTCP: on the RTP port with rtcp-mux, else on the next port (our offer has no
    // a=rtcp, RFC 3605 default), when that port is free.
    let rtcp = if negotiated.audio.rtcp_mux {
        None
    } else {
        let a = SocketAddr::new(local.ip(), local.port().wrapping_add(1));
        tokio::net::UdpSocket::bind(a).await.ok()
    };
    let mut scfg = SessionConfig::new(negotiated.audio.clone(), rand::random(), rand::random());
    scfg.app_rate = APP_RATE;
    scfg.ntp_at_start = ntp_now();
    let rtcp_socket = rtcp.is_some();
    let session = MediaSession::new(scfg).expect("media session");
    let mut drv = UdpDriver::new(session, rtp, rtcp);

    let mut heard = Vec::with_capacity(ticks * FRAME);
    let mut silent_pulls = 0;
    let mut out = vec![0i16; FRAME];
    let start = Instant::now();
    let mut reports = Vec::new();
    for k in 0..ticks {
        if let Some(&(_, dir)) = reinvites.iter().find(|(at, _)| *at == k) {
            // Mid-call re-INVITE (hold: sendonly; resume: sendrecv); the session is
            // updated in place.
            oa.set_direction(dir);
            let re_offer = oa.create_offer(false).expect("re-offer").to_string();
            if let Err(e) = alice.reinvite(id, Bytes::from(re_offer.clone())) {
                let _ = alice.bye(id);
                panic!(
                    "{label}: re-INVITE refused locally: {e} (did baresip send its own \
                     re-INVITE? it puts a call on hold when another call to the same account \
                     is accepted: is someone else calling {} meanwhile?)",
                    env.user
                );
            }
            let done = alice
                .wait_for(WAIT, |e| match e {
                    SipEvent::ReinviteCompleted { call, status, body } if *call == id => {
                        Some((*status, body.clone()))
                    }
                    _ => None,
                })
                .await;
            let n2 = match done {
                Some((200, body)) => SessionDescription::parse(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|sdp| oa.accept_answer(&sdp, false).map_err(|e| e.to_string())),
                other => Err(format!("re-INVITE result {other:?}")),
            };
            let n2 = match n2 {
                Ok(n) => n,
                Err(e) => {
                    let _ = alice.bye(id);
                    panic!("{label}: re-INVITE failed: {e}\nre-offer:\n{re_offer}");
                }
            };
            drv.session_mut()
                .update(n2.audio.clone())
                .expect("MediaSession::update");
            let keys = |n: &Negotiated| n.audio.srtp.clone().map(|p| (p.local_key, p.remote_key));
            let (k1, k2) = (keys(&negotiated), keys(&n2));
            eprintln!(
                "{label}: re-INVITE {} answered: we now {}",
                dir.attr(),
                n2.audio.direction.attr()
            );
            reports.push(ReinviteReport {
                offered: dir,
                negotiated: n2.audio.direction,
                keys_kept: (
                    k1.as_ref().map(|k| &k.0) == k2.as_ref().map(|k| &k.0),
                    k1.as_ref().map(|k| &k.1) == k2.as_ref().map(|k| &k.1),
                ),
                stats_at: drv.session_mut().stats(),
                heard_at: heard.len(),
            });
        }
        drv.push_pcm(&sine(APP_RATE, OUR_FREQ, k * FRAME, FRAME))
            .await
            .expect("push_pcm");
        let r = drv.pull_pcm(&mut out);
        if r.silence {
            silent_pulls += 1;
        }
        heard.extend_from_slice(&out);
        drv.drive_until(start + Duration::from_millis(20 * (k as u64 + 1)))
            .await
            .expect("drive");
    }
    let stats = drv.session_mut().stats();

    // Hang up first, so that a failed check below leaves no call behind.
    alice.bye(id).expect("bye");
    let ended = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::CallEnded { call, by } if *call == id => Some(*by),
            _ => None,
        })
        .await;
    assert_eq!(ended, Some(EndedBy::Local), "{label}: BYE answered");
    drv.close().await.expect("RTCP BYE");

    let heard_pcm = heard.clone();
    // Skip the first second (jitter buffer filling, baresip's source starting).
    let heard = Spectrum::of(
        heard.get(APP_RATE as usize..).unwrap_or_default(),
        APP_RATE,
        40,
    );
    let recorded = baresip_recording(&env.dir, &before).await;
    let new_files = wav_files(&env.dir, ".wav")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !before.contains(p))
        .collect();
    CallReport {
        label,
        codec,
        suite,
        security: negotiated.security,
        rtcp_mux: negotiated.audio.rtcp_mux,
        rtcp_socket,
        stats,
        silent_pulls,
        heard,
        recorded,
        new_files,
        reinvites: reports,
        heard_pcm,
    }
}

fn check(r: &CallReport, their_freq: f64) {
    let label = r.label;
    let s = &r.stats;
    eprintln!(
        "{label}: codec {} suite {} rtcp-mux {} (own RTCP socket {}); received {} RTP / {} RTCP, sent {} RTP, \
         SRTP auth failures {}, SRTCP auth failures {}, replays {}, malformed {}, unknown PT {}, \
         lost {}, jitter {} ms, silent pulls {}/{TICKS}",
        r.codec,
        r.suite,
        r.rtcp_mux,
        r.rtcp_socket,
        s.packets_received,
        s.rtcp_received,
        s.packets_sent,
        s.srtp_auth_failures,
        s.srtcp_auth_failures,
        s.srtp_replays,
        s.malformed,
        s.unknown_payload_type,
        s.cumulative_lost,
        s.jitter_ms,
        r.silent_pulls,
    );
    assert!(r.suite != "none (plain RTP)", "{label}: media must be SRTP");
    // The keys crossed plain UDP signalling: the summary must not claim confidentiality.
    assert!(
        !r.security.keys_via_secure_signalling && !r.security.confidential,
        "{label}: {:?}",
        r.security
    );
    assert!(
        r.security.to_string().contains("INSECURE signalling"),
        "{label}: {}",
        r.security
    );
    assert!(
        s.packets_sent >= TICKS as u64 - 5,
        "{label}: sent {}",
        s.packets_sent
    );
    assert!(
        s.packets_received >= TICKS as u64 / 2,
        "{label}: only {} SRTP packets from baresip authenticated and decrypted",
        s.packets_received
    );
    assert_eq!(s.srtp_auth_failures, 0, "{label}: SRTP auth failures");
    // Known baresip 1.0 (libre) deviation: with AES_CM_128_HMAC_SHA1_32 it tags SRTCP
    // with 32 bits, where RFC 3711 §7.5 / RFC 4568 §6.2.2 keep SRTCP at 80 bits, so its
    // RTCP (about one report in a 3 s call) fails authentication here; reported, not
    // asserted, for that suite only.
    if r.suite == "AES_CM_128_HMAC_SHA1_32" {
        if s.srtcp_auth_failures > 0 {
            eprintln!(
                "{label}: {} SRTCP packets from baresip failed authentication (libre's 32-bit \
                 SRTCP tag with AES_CM_128_HMAC_SHA1_32)",
                s.srtcp_auth_failures
            );
        }
    } else {
        assert_eq!(s.srtcp_auth_failures, 0, "{label}: SRTCP auth failures");
    }
    assert_eq!(s.malformed, 0, "{label}: malformed packets");

    let heard = r.heard.dominant().expect("heard audio");
    eprintln!(
        "{label}: we heard dominant {heard} Hz (rms {:.0}; baresip plays {their_freq} Hz)",
        r.heard.rms
    );
    assert!(r.heard.rms > 1000.0, "{label}: we heard (almost) silence");
    assert!(
        (heard - their_freq).abs() <= FREQ_TOLERANCE,
        "{label}: we heard {heard} Hz, baresip plays {their_freq} Hz"
    );
    assert!(
        r.heard.power_at(their_freq) > 20.0 * r.heard.power_at(OUR_FREQ),
        "{label}: baresip's tone does not stand out from ours (echo?)"
    );

    let (path, wav) = r.recorded.as_ref().unwrap_or_else(|| {
        panic!("{label}: no new finished *-dec.wav recording from baresip's sndfile")
    });
    let mono = first_channel(wav);
    // Skip the first half second of the recording (decoder start-up).
    let rec = Spectrum::of(
        mono.get(wav.rate as usize / 2..).unwrap_or_default(),
        wav.rate,
        40,
    );
    let got = rec.dominant().expect("recorded audio");
    eprintln!(
        "{label}: baresip recorded {} ({} Hz, {} ch, {:.2} s): dominant {got} Hz (rms {:.0})",
        path.display(),
        wav.rate,
        wav.channels,
        mono.len() as f64 / wav.rate as f64,
        rec.rms
    );
    assert!(
        rec.rms > 1000.0,
        "{label}: baresip recorded (almost) silence"
    );
    assert!(
        (got - OUR_FREQ).abs() <= FREQ_TOLERANCE,
        "{label}: baresip recorded {got} Hz, we sent {OUR_FREQ} Hz ({})",
        path.display()
    );
    assert!(
        rec.power_at(OUR_FREQ) > 20.0 * rec.power_at(their_freq),
        "{label}: our tone does not stand out in baresip's recording"
    );
}

/// A call put on hold (re-INVITE sendonly) and resumed (re-INVITE sendrecv): baresip
/// stops sending while held and starts again; our stream runs through both updates
/// (same SSRC, sequence numbers and SRTP contexts), so baresip keeps decoding it.
fn check_hold_resume(r: &CallReport, their_freq: f64) {
    let label = r.label;
    let [hold, resume] = &r.reinvites[..] else {
        panic!("{label}: expected two re-INVITEs, got {:?}", r.reinvites);
    };
    let end = &r.stats;
    let held_rx = resume.stats_at.packets_received - hold.stats_at.packets_received;
    let held_tx = resume.stats_at.packets_sent - hold.stats_at.packets_sent;
    let after_rx = end.packets_received - resume.stats_at.packets_received;
    let after_tx = end.packets_sent - resume.stats_at.packets_sent;
    let after = Spectrum::of(
        r.heard_pcm
            .get(resume.heard_at + APP_RATE as usize / 2..)
            .unwrap_or_default(),
        APP_RATE,
        40,
    );
    eprintln!(
        "{label}: hold: we {} (offered {}), received {held_rx} RTP, sent {held_tx}; resume: \
         we {} (offered {}), received {after_rx} RTP, sent {after_tx}; keys kept (ours, \
         baresip's): {:?} {:?}; heard after resume: dominant {:?} Hz (rms {:.0})",
        hold.negotiated.attr(),
        hold.offered.attr(),
        resume.negotiated.attr(),
        resume.offered.attr(),
        hold.keys_kept,
        resume.keys_kept,
        after.dominant(),
        after.rms,
    );
    assert_eq!(hold.negotiated, Direction::SendOnly, "{label}: held");
    assert_eq!(resume.negotiated, Direction::SendRecv, "{label}: resumed");
    assert!(
        hold.keys_kept.0 && resume.keys_kept.0,
        "{label}: reuse_sdes_keys keeps our key"
    );
    // Held: baresip stops sending (a few packets may still be in flight); we go on.
    assert!(
        held_rx <= 5,
        "{label}: baresip sent {held_rx} packets while held"
    );
    assert!(
        held_tx >= 90,
        "{label}: we sent only {held_tx} packets while holding"
    );
    // Resumed: both directions flow again.
    assert!(
        after_rx >= 50,
        "{label}: only {after_rx} packets from baresip after resume"
    );
    assert!(
        after_tx >= 90,
        "{label}: we sent only {after_tx} after resume"
    );
    assert_eq!(end.srtp_auth_failures, 0, "{label}: SRTP auth failures");
    assert_eq!(end.srtcp_auth_failures, 0, "{label}: SRTCP auth failures");
    let heard = after.dominant().expect("heard audio after resume");
    assert!(after.rms > 1000.0, "{label}: silence after resume");
    assert!(
        (heard - their_freq).abs() <= FREQ_TOLERANCE,
        "{label}: after resume we heard {heard} Hz, baresip plays {their_freq} Hz"
    );
    // What baresip decoded of our stream before the hold. baresip 1.0 stops its sndfile
    // recording at a re-INVITE (it rebuilds the player without the filter), so what it
    // decoded after the resume cannot be checked this way; it logs no SRTP failure.
    let (path, wav) = r
        .recorded
        .as_ref()
        .unwrap_or_else(|| panic!("{label}: no recording from baresip"));
    let mono = first_channel(wav);
    let rec = Spectrum::of(
        mono.get(wav.rate as usize / 2..).unwrap_or_default(),
        wav.rate,
        40,
    );
    let got = rec.dominant().expect("recorded audio");
    eprintln!(
        "{label}: baresip recorded {} ({:.2} s): dominant {got} Hz (rms {:.0})",
        path.display(),
        mono.len() as f64 / wav.rate as f64,
        rec.rms
    );
    assert!(
        rec.rms > 1000.0 && (got - OUR_FREQ).abs() <= FREQ_TOLERANCE,
        "{label}: baresip did not decode our tone ({got} Hz, rms {:.0})",
        rec.rms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_srtp_opus_and_pcmu_calls() {
    let env = match env() {
        Ok(e) => e,
        Err(why) => {
            eprintln!(
                "skipping: {why} (run CUSAX_WITH_BARESIP=1 scripts/interop-up.sh and source .interop/env)"
            );
            return;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();

    // baresip is up and registered (its remote control answers).
    let mut ctrl = Ctrl::connect(env.ctrl).await.expect("ctrl_tcp");
    let reg = tokio::time::timeout(WAIT, ctrl.command("reginfo", ""))
        .await
        .expect("ctrl_tcp reginfo timed out")
        .expect("ctrl_tcp reginfo");
    eprintln!("baresip reginfo: {reg}");
    drop(ctrl);

    // The tone baresip plays, measured from the WAV its config names.
    let src = baresip_source_wav(&env.dir).expect("baresip tone");
    let tone = std::fs::read(&src)
        .map_err(|e| e.to_string())
        .and_then(|b| Wav::parse(&b).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let their_freq = Spectrum::of(&first_channel(&tone), tone.rate, 40)
        .dominant()
        .expect("tone");
    eprintln!("baresip plays {} : {their_freq} Hz", src.display());
    assert!(
        (their_freq - OUR_FREQ).abs() > 100.0,
        "baresip's tone must differ from ours"
    );

    let mut alice = Client::start(alice_config(env.kamailio, &env.domain))
        .await
        .expect("bind");
    alice.register().expect("register");
    let reg = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::Registered { .. } => Some(Ok(())),
            SipEvent::RegistrationFailed { status, reason } => {
                Some(Err(format!("{status} {reason}")))
            }
            _ => None,
        })
        .await;
    assert_eq!(reg, Some(Ok(())), "alice registers through Kamailio");

    // Opus first with every suite (strongest first), then PCMU only with
    // AES_CM_128_HMAC_SHA1_80 only, then Opus only with AES_CM_128_HMAC_SHA1_32 only.
    let opus = call(
        &mut alice,
        &env,
        "opus",
        vec![
            AudioCodec::Opus {
                fec: true,
                max_average_bitrate: None,
            },
            AudioCodec::Pcmu,
        ],
        &SrtpSuite::ALL,
        &[],
        TICKS,
    )
    .await;
    let pcmu = call(
        &mut alice,
        &env,
        "pcmu",
        vec![AudioCodec::Pcmu],
        &[SrtpSuite::AesCm128HmacSha1_80],
        &[],
        TICKS,
    )
    .await;
    let opus32 = call(
        &mut alice,
        &env,
        "opus-sha1-32",
        vec![AudioCodec::Opus {
            fec: true,
            max_average_bitrate: None,
        }],
        &[SrtpSuite::AesCm128HmacSha1_32],
        &[],
        TICKS,
    )
    .await;
    // Opus, put on hold after 2 s (re-INVITE sendonly), resumed after 4 s, 6 s in all.
    let held = call(
        &mut alice,
        &env,
        "hold-resume",
        vec![
            AudioCodec::Opus {
                fec: true,
                max_average_bitrate: None,
            },
            AudioCodec::Pcmu,
        ],
        &[SrtpSuite::AesCm128HmacSha1_80],
        &[
            (TICKS * 2 / 3, Direction::SendOnly),
            (TICKS * 4 / 3, Direction::SendRecv),
        ],
        TICKS * 2,
    )
    .await;
    alice.shutdown(WAIT).await;

    check(&opus, their_freq);
    assert!(opus.codec.starts_with("opus/48000/2"), "{}", opus.codec);
    check(&pcmu, their_freq);
    assert!(pcmu.codec.starts_with("PCMU/8000/1"), "{}", pcmu.codec);
    assert_eq!(pcmu.suite, "AES_CM_128_HMAC_SHA1_80");
    check(&opus32, their_freq);
    assert!(opus32.codec.starts_with("opus/48000/2"), "{}", opus32.codec);
    assert_eq!(opus32.suite, "AES_CM_128_HMAC_SHA1_32");
    check_hold_resume(&held, their_freq);
    eprintln!(
        "summary: {}",
        [&opus, &pcmu, &opus32, &held]
            .iter()
            .map(|r| format!("{}: {} with {} ({})", r.label, r.codec, r.suite, r.security))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // Recordings checked: remove this test's files so that runs do not pile them up
    // (on failure they stay for inspection).
    for p in opus
        .new_files
        .iter()
        .chain(&pcmu.new_files)
        .chain(&opus32.new_files)
        .chain(&held.new_files)
    {
        let _ = std::fs::remove_file(p);
    }
}
