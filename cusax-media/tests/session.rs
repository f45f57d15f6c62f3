//! Two sans-IO sessions negotiate and exchange audio over a simulated network.

mod common;

use std::time::{Duration, Instant};

use common::*;
use cusax_media::codec::goertzel_power;
use cusax_media::keying::sdes::SrtpSuite;
use cusax_media::rtp::{RtpHeader, RtpPacket, is_rtcp};
use cusax_media::sdp::offer_answer::{AudioCodec, Direction, MediaConfig};
use cusax_media::session::{Input, MediaEvent, MediaSession, Output, SessionConfig, SymmetricRtp};

struct Run {
    bob_out: Vec<i16>,
    bob_events: Vec<MediaEvent>,
    alice_events: Vec<MediaEvent>,
}

/// Alice sends a 440 Hz sine for `secs`; Bob plays out. 20 ms ticks.
fn run(
    a: &mut cusax_media::session::MediaSession,
    b: &mut cusax_media::session::MediaSession,
    net: &mut Net,
    t0: Instant,
    rate: u32,
    secs: u32,
    mut each_tick: impl FnMut(u32, &mut cusax_media::session::MediaSession),
) -> Run {
    let frame = rate as usize / 50;
    let mut r = Run {
        bob_out: Vec::new(),
        bob_events: Vec::new(),
        alice_events: Vec::new(),
    };
    for k in 0..secs * 50 {
        let now = t0 + Duration::from_millis(20 * k as u64);
        each_tick(k, a);
        a.push_pcm(now, &sine(rate, 440.0, k as usize * frame, frame))
            .unwrap();
        a.handle_timeout(now);
        b.handle_timeout(now);
        r.alice_events.extend(net.drain(a, addr(ALICE), now));
        net.deliver(b, addr(BOB), now);
        net.deliver(a, addr(ALICE), now);
        let mut out = vec![0i16; frame];
        b.pull_pcm(now, &mut out);
        r.bob_out.extend_from_slice(&out);
        r.bob_events.extend(net.drain(b, addr(BOB), now));
    }
    r
}

fn dominant_440(pcm: &[i16], rate: u32) {
    let p440 = goertzel_power(pcm, rate, 440.0);
    for f in [300.0, 660.0, 880.0, 1000.0, 2000.0] {
        let p = goertzel_power(pcm, rate, f);
        assert!(
            p440 > 20.0 * p,
            "440 Hz not dominant: {p440:e} vs {f} Hz {p:e}"
        );
    }
}

#[test]
fn opus_srtp_call_carries_a_sine() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        7,
    );
    assert_eq!(na.audio.send_codec.name, "opus");
    assert_eq!(na.security.srtp_suite, Some(SrtpSuite::AeadAes128Gcm));
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let mut net = Net::new(1, 0.0, 0);
    let r = run(
        &mut a,
        &mut b,
        &mut net,
        Instant::now(),
        48000,
        3,
        |_, _| {},
    );
    let tail = &r.bob_out[r.bob_out.len() - 48000..];
    dominant_440(tail, 48000);
    let s = b.stats();
    assert!(s.packets_received >= 140, "{s:?}");
    assert_eq!(s.cumulative_lost, 0);
    assert_eq!(s.srtp_auth_failures, 0);
    assert!(matches!(
        r.bob_events[0],
        MediaEvent::RemoteSsrcChanged {
            old: None,
            new: 0x1111_1111
        }
    ));
}

#[test]
fn pcmu_at_16khz_app_rate() {
    let mut ca = MediaConfig::new(addr(ALICE));
    ca.codecs = vec![AudioCodec::Pcmu];
    let (_, _, na, nb) = negotiate(ca, MediaConfig::new(addr(BOB)), 8);
    assert_eq!(na.audio.send_codec.name, "PCMU");
    assert_eq!(nb.audio.send_codec.pt, 0);
    let (mut a, mut b) = sessions(&na, &nb, 16000);
    let mut net = Net::new(2, 0.0, 0);
    let r = run(
        &mut a,
        &mut b,
        &mut net,
        Instant::now(),
        16000,
        2,
        |_, _| {},
    );
    dominant_440(&r.bob_out[r.bob_out.len() - 16000..], 16000);
}

#[test]
fn loss_and_jitter_are_concealed_with_bounded_delay() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        9,
    );
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let mut net = Net::new(3, 0.10, 60);
    let mut max_delay = 0;
    let t0 = Instant::now();
    let frame = 960;
    let mut out_all = Vec::new();
    for k in 0..500u32 {
        let now = t0 + Duration::from_millis(20 * k as u64);
        a.push_pcm(now, &sine(48000, 440.0, k as usize * frame, frame))
            .unwrap();
        net.drain(&mut a, addr(ALICE), now);
        net.deliver(&mut b, addr(BOB), now);
        let mut out = vec![0i16; frame];
        b.pull_pcm(now, &mut out);
        out_all.extend_from_slice(&out);
        max_delay = max_delay.max(b.stats().jitter_buffer.current_delay_ms);
    }
    let s = b.stats();
    let jb = s.jitter_buffer;
    eprintln!("10% loss, 0-60 ms jitter, 10 s: {jb:?}, max delay {max_delay} ms");
    assert!(jb.concealed + jb.fec_recovered >= 20, "{jb:?}");
    assert!(jb.lost > 0, "{jb:?}");
    assert!(
        max_delay <= 300,
        "delay {max_delay} ms exceeds the bound: {jb:?}"
    );
    assert!(
        jb.target_delay_ms >= 40 && jb.target_delay_ms <= 300,
        "{jb:?}"
    );
    assert!(s.cumulative_lost > 20, "{s:?}");
    // the tone survives
    dominant_440(&out_all[out_all.len() - 48000..], 48000);
}

#[test]
fn replayed_and_tampered_srtp_are_rejected() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        10,
    );
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let now = Instant::now();
    a.push_pcm(now, &sine(48000, 440.0, 0, 960 * 2)).unwrap();
    let mut pkts = Vec::new();
    while let Some(o) = a.poll_output() {
        match o {
            Output::Transmit { data, .. } => pkts.push(data),
            _ => break,
        }
    }
    assert_eq!(pkts.len(), 2);
    let src = addr(ALICE);
    use cusax_media::session::Input::Datagram;
    b.handle_input(
        now,
        Datagram {
            data: &pkts[0],
            source: src,
        },
    );
    b.handle_input(
        now,
        Datagram {
            data: &pkts[0],
            source: src,
        },
    );
    assert_eq!(b.stats().srtp_replays, 1);
    assert_eq!(b.stats().packets_received, 1);
    let mut t = pkts[1].clone();
    t[14] ^= 0x40;
    b.handle_input(
        now,
        Datagram {
            data: &t,
            source: src,
        },
    );
    assert_eq!(b.stats().srtp_auth_failures, 1);
    assert_eq!(b.stats().packets_received, 1);
    b.handle_input(
        now,
        Datagram {
            data: &pkts[1],
            source: src,
        },
    );
    assert_eq!(b.stats().packets_received, 2);
    // a tampered SRTCP report counts apart from SRTP
    a.handle_timeout(now + Duration::from_secs(10));
    let rtcp = std::iter::from_fn(|| a.poll_output())
        .find_map(|o| match o {
            Output::Transmit { data, .. } if is_rtcp(&data) => Some(data),
            _ => None,
        })
        .expect("an SRTCP report");
    let mut t = rtcp.clone();
    let l = t.len();
    t[l - 1] ^= 1;
    b.handle_input(
        now,
        Datagram {
            data: &t,
            source: src,
        },
    );
    assert_eq!(b.stats().srtcp_auth_failures, 1);
    assert_eq!(b.stats().srtp_auth_failures, 1);
    b.handle_input(
        now,
        Datagram {
            data: &rtcp,
            source: src,
        },
    );
    assert_eq!(b.stats().rtcp_received, 1);
    // a spoofed plain RTP packet from elsewhere neither passes nor moves the peer address
    let mut plain = Vec::new();
    cusax_media::rtp::RtpHeader {
        payload_type: 111,
        sequence: 1,
        ssrc: 0x1111_1111,
        ..Default::default()
    }
    .write(&[1, 2, 3], 0, &mut plain);
    b.handle_input(
        now,
        Datagram {
            data: &plain,
            source: addr("203.0.113.9:1"),
        },
    );
    assert_eq!(b.remote_addr(), addr(ALICE));
}

#[test]
fn dtmf_round_trip() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        11,
    );
    assert!(na.audio.telephone_event_pt.send.is_some());
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let mut net = Net::new(4, 0.0, 0);
    let r = run(
        &mut a,
        &mut b,
        &mut net,
        Instant::now(),
        48000,
        2,
        |k, a| {
            if k == 10 {
                a.send_dtmf('5', Duration::from_millis(100)).unwrap();
            }
            if k == 40 {
                a.send_dtmf('#', Duration::from_millis(60)).unwrap();
            }
        },
    );
    let dtmf: Vec<_> = r
        .bob_events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf(d) => Some((d.digit, d.duration)),
            _ => None,
        })
        .collect();
    assert_eq!(dtmf, vec![(Some('5'), 4800), (Some('#'), 2880)]);
    // event packets occupied sequence numbers without being counted as lost audio
    assert_eq!(b.stats().jitter_buffer.lost, 0);
    assert!(a.send_dtmf('x', Duration::from_millis(50)).is_err());
}

#[test]
fn hold_stops_sending_and_resume_restarts() {
    let (mut oa_a, mut oa_b, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        12,
    );
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let mut net = Net::new(5, 0.0, 0);
    let t0 = Instant::now();
    run(&mut a, &mut b, &mut net, t0, 48000, 1, |_, _| {});
    b.push_pcm(t0 + Duration::from_secs(1), &sine(48000, 300.0, 0, 960))
        .unwrap();
    // Alice puts Bob on hold: re-offer sendonly, Bob answers recvonly.
    oa_a.set_direction(Direction::SendOnly);
    let offer = oa_a.create_offer(true).unwrap();
    assert!(offer.to_string().contains("a=sendonly"));
    let (answer, nb2) = oa_b.answer_offer(&offer, true).unwrap();
    assert!(answer.to_string().contains("a=recvonly"));
    let na2 = oa_a.accept_answer(&answer, true).unwrap();
    assert_eq!(na2.audio.direction, Direction::SendOnly);
    assert_eq!(nb2.audio.direction, Direction::RecvOnly);
    a.set_direction(na2.audio.direction);
    b.set_direction(nb2.audio.direction);
    let sent_before = b.stats().packets_sent;
    assert!(sent_before > 0);
    let t1 = t0 + Duration::from_secs(1);
    for k in 0..50u64 {
        let now = t1 + Duration::from_millis(20 * k);
        b.push_pcm(now, &sine(48000, 300.0, 0, 960)).unwrap();
        net.drain(&mut b, addr(BOB), now);
    }
    assert_eq!(
        b.stats().packets_sent,
        sent_before,
        "held party must not send"
    );
    // resume
    oa_a.set_direction(Direction::SendRecv);
    let offer = oa_a.create_offer(true).unwrap();
    let (_, nb3) = oa_b.answer_offer(&offer, true).unwrap();
    assert_eq!(nb3.audio.direction, Direction::SendRecv);
    b.set_direction(nb3.audio.direction);
    b.push_pcm(t1 + Duration::from_secs(2), &sine(48000, 300.0, 0, 960))
        .unwrap();
    assert_eq!(b.stats().packets_sent, sent_before + 1);
}

#[test]
fn rtcp_reports_rtt_and_bye() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        13,
    );
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let mut net = Net::new(6, 0.0, 0);
    let t0 = Instant::now();
    let r = run(&mut a, &mut b, &mut net, t0, 48000, 12, |_, _| {});
    assert!(
        r.alice_events
            .iter()
            .all(|e| !matches!(e, MediaEvent::Bye { .. }))
    );
    let sa = a.stats();
    assert!(sa.rtcp_sent >= 1 && sa.rtcp_received >= 1, "{sa:?}");
    // the network adds 5 ms each way, but datagrams are delivered on the next 20 ms tick:
    // each way takes 20 ms, so the RTT is 40 ms
    let rtt = sa.rtt.expect("RTT from Bob's report about Alice's SR");
    assert!(
        rtt >= Duration::from_millis(35) && rtt <= Duration::from_millis(45),
        "{rtt:?}"
    );
    let now = t0 + Duration::from_secs(13);
    a.close(now);
    net.drain(&mut a, addr(ALICE), now);
    net.deliver(&mut b, addr(BOB), now + Duration::from_millis(10));
    let ev = net.drain(&mut b, addr(BOB), now + Duration::from_millis(10));
    assert!(ev.contains(&MediaEvent::Bye { reason: None }), "{ev:?}");
    assert!(a.poll_output().is_none());
}

/// Datagrams `s` transmits now, with their destinations (outputs drained).
fn transmits(s: &mut MediaSession) -> Vec<(std::net::SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| s.poll_output())
        .take_while(|o| !matches!(o, Output::Timeout(_)))
        .filter_map(|o| match o {
            Output::Transmit { dest, data } => Some((dest, data)),
            _ => None,
        })
        .collect()
}

/// The (cleartext) RTP header of an SRTP packet, `None` for RTCP.
fn header(data: &[u8]) -> Option<RtpHeader> {
    (!is_rtcp(data)).then(|| RtpPacket::parse(data).unwrap().header)
}

#[test]
fn srtp_symmetric_rtp_moves_only_after_an_authenticated_packet() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        14,
    );
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let t0 = Instant::now();
    let mut pkts = Vec::new();
    for k in 0..2 {
        a.push_pcm(t0, &sine(48000, 440.0, k * 960, 960)).unwrap();
        pkts.extend(transmits(&mut a).into_iter().map(|(_, d)| d));
    }
    let (attacker, nat) = (addr("198.51.100.66:666"), addr("198.51.100.7:61000"));
    let input = |b: &mut MediaSession, data: &[u8], source| {
        b.handle_input(t0, Input::Datagram { data, source });
        let _ = transmits(b);
    };
    // a forged packet (bad tag) from a new address does not move the stream
    let mut forged = pkts[0].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    input(&mut b, &forged, attacker);
    assert_eq!(b.stats().srtp_auth_failures, 1);
    assert_eq!(b.remote_addr(), addr(ALICE));
    // the genuine packet from the SDP address, then its replay from elsewhere: no move
    input(&mut b, &pkts[0], addr(ALICE));
    input(&mut b, &pkts[0], attacker);
    assert_eq!(b.stats().srtp_replays, 1);
    assert_eq!(b.remote_addr(), addr(ALICE));
    // a new authenticated packet from a new address (the peer's NAT rebinding): follow
    b.handle_input(
        t0,
        Input::Datagram {
            data: &pkts[1],
            source: nat,
        },
    );
    let mut ev = Vec::new();
    while let Some(o) = b.poll_output() {
        match o {
            Output::Event(e) => ev.push(e),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    assert!(
        ev.contains(&MediaEvent::RemoteAddressChanged(nat)),
        "{ev:?}"
    );
    assert_eq!(b.remote_addr(), nat);
    // SymmetricRtp::Off never moves, even for authenticated packets
    let mut cfg = SessionConfig::new(nb.audio.clone(), 0x2222_2222, 3);
    cfg.symmetric_rtp = SymmetricRtp::Off;
    let mut b2 = MediaSession::new(cfg).unwrap();
    input(&mut b2, &pkts[0], nat);
    assert_eq!(b2.stats().packets_received, 1);
    assert_eq!(b2.remote_addr(), addr(ALICE));
}

/// One 20 ms tick both ways: both push a tone, datagrams go to the address each one
/// sends to (bob may have moved), both play out. Returns alice's RTP headers sent.
fn tick(
    a: &mut MediaSession,
    b: &mut MediaSession,
    net: &mut Net,
    now: Instant,
    k: usize,
    bob_at: std::net::SocketAddr,
    heard_by_bob: &mut Vec<i16>,
) -> Vec<(std::net::SocketAddr, RtpHeader)> {
    a.push_pcm(now, &sine(48000, 440.0, k * 960, 960)).unwrap();
    b.push_pcm(now, &sine(48000, 660.0, k * 960, 960)).unwrap();
    a.handle_timeout(now);
    b.handle_timeout(now);
    let sent_by_a = net.sent.len()..;
    net.drain(a, addr(ALICE), now);
    let hdrs = net.sent[sent_by_a]
        .iter()
        .filter_map(|(d, data)| header(data).map(|h| (*d, h)))
        .collect();
    net.drain(b, bob_at, now);
    net.deliver(b, bob_at, now);
    net.deliver(a, addr(ALICE), now);
    let mut out = vec![0i16; 960];
    b.pull_pcm(now, &mut out);
    heard_by_bob.extend_from_slice(&out);
    a.pull_pcm(now, &mut out);
    hdrs
}

#[test]
fn update_keeps_rtp_state_across_codec_change_hold_and_new_address() {
    let (mut oa_a, mut oa_b, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        15,
    );
    assert_eq!(na.audio.send_codec.name, "opus");
    let (mut a, mut b) = sessions(&na, &nb, 48000);
    let mut net = Net::new(9, 0.0, 0);
    let t0 = Instant::now();
    let mut heard = Vec::new();
    let mut k = 0usize;
    let mut hdrs = Vec::new();
    let mut now = t0;
    let mut step = |a: &mut MediaSession,
                    b: &mut MediaSession,
                    net: &mut Net,
                    n: usize,
                    bob_at,
                    heard: &mut Vec<i16>| {
        let mut h = Vec::new();
        for _ in 0..n {
            now = t0 + Duration::from_millis(20 * k as u64);
            h.extend(tick(a, b, net, now, k, bob_at, heard));
            k += 1;
        }
        h
    };
    hdrs.extend(step(&mut a, &mut b, &mut net, 50, addr(BOB), &mut heard));
    let last_opus = hdrs.last().unwrap().1.clone();
    assert_eq!(last_opus.payload_type, 111);
    let bob_ssrc_before = b.stats().remote_ssrc;

    // 1. re-INVITE from alice: PCMU only. Fresh SDES keys, both sessions updated.
    oa_a.config_mut().codecs = vec![AudioCodec::Pcmu];
    let offer = oa_a.create_offer(true).unwrap();
    let (answer, nb2) = oa_b.answer_offer(&offer, true).unwrap();
    let na2 = oa_a.accept_answer(&answer, true).unwrap();
    assert_ne!(
        na2.audio.srtp.as_ref().unwrap().local_key,
        na.audio.srtp.as_ref().unwrap().local_key
    );
    assert_eq!(na2.audio.send_codec.name, "PCMU");
    a.update(na2.audio.clone()).unwrap();
    b.update(nb2.audio.clone()).unwrap();
    let start = heard.len();
    let h = step(&mut a, &mut b, &mut net, 100, addr(BOB), &mut heard);
    let first_pcmu = h.first().unwrap().1.clone();
    assert_eq!(first_pcmu.payload_type, 0);
    assert_eq!(first_pcmu.ssrc, last_opus.ssrc, "SSRC kept");
    assert_eq!(
        first_pcmu.sequence,
        last_opus.sequence.wrapping_add(1),
        "sequence continues"
    );
    assert!(first_pcmu.marker, "marker after the codec change");
    assert!(
        h.iter()
            .skip(1)
            .all(|(_, x)| !x.marker && x.payload_type == 0)
    );
    dominant_440(&heard[start + 48000..], 48000);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sb.remote_ssrc, bob_ssrc_before, "remote source kept");
    assert_eq!(sa.srtp_auth_failures + sb.srtp_auth_failures, 0);
    assert_eq!(sb.cumulative_lost, 0);
    assert!(sb.packets_received >= 140, "{sb:?}");

    // 2. hold (sendonly from alice) and resume through update: bob stops and restarts
    // sending, alice's sequence numbers carry on.
    oa_a.set_direction(Direction::SendOnly);
    let offer = oa_a.create_offer(true).unwrap();
    let (answer, nb3) = oa_b.answer_offer(&offer, true).unwrap();
    a.update(oa_a.accept_answer(&answer, true).unwrap().audio)
        .unwrap();
    b.update(nb3.audio).unwrap();
    assert_eq!(b.direction(), Direction::RecvOnly);
    let bob_sent = b.stats().packets_sent;
    step(&mut a, &mut b, &mut net, 10, addr(BOB), &mut heard);
    assert_eq!(b.stats().packets_sent, bob_sent, "held party must not send");
    oa_a.set_direction(Direction::SendRecv);
    let offer = oa_a.create_offer(true).unwrap();
    let (answer, nb4) = oa_b.answer_offer(&offer, true).unwrap();
    a.update(oa_a.accept_answer(&answer, true).unwrap().audio)
        .unwrap();
    b.update(nb4.audio).unwrap();
    step(&mut a, &mut b, &mut net, 10, addr(BOB), &mut heard);
    assert_eq!(b.stats().packets_sent, bob_sent + 10, "resumed");

    // 3. re-INVITE from bob with a new address and port: alice sends there.
    let bob2 = addr("192.0.2.22:50200");
    oa_b.config_mut().local_addr = bob2;
    let offer = oa_b.create_offer(true).unwrap();
    let (answer, na5) = oa_a.answer_offer(&offer, true).unwrap();
    let nb5 = oa_b.accept_answer(&answer, true).unwrap();
    assert_eq!(na5.audio.remote_addr, bob2);
    a.update(na5.audio).unwrap();
    b.update(nb5.audio).unwrap();
    let h = step(&mut a, &mut b, &mut net, 50, bob2, &mut heard);
    assert!(
        h.iter().all(|(d, _)| *d == bob2),
        "alice sends to bob's new address"
    );
    let seqs: Vec<u16> = h.iter().map(|(_, x)| x.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.srtp_auth_failures + sb.srtp_auth_failures, 0);
    assert_eq!(sb.remote_ssrc, bob_ssrc_before);
    dominant_440(&heard[heard.len() - 48000..], 48000);
}
