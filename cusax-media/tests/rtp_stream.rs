//! Crafted RTP streams into a session: sequence wrap-around, SSRC change, unknown PT.

mod common;

use std::time::{Duration, Instant};

use common::*;
use cusax_media::codec::g711::linear_to_ulaw;
use cusax_media::rtp::RtpHeader;
use cusax_media::sdp::offer_answer::{AudioCodec, MediaConfig};
use cusax_media::session::{Input, MediaEvent, MediaSession, Output, SessionConfig, SymmetricRtp};

fn plain_pcmu() -> MediaSession {
    plain_pcmu_with(SymmetricRtp::default())
}

fn plain_pcmu_with(symmetric: SymmetricRtp) -> MediaSession {
    let mut a = MediaConfig::new(addr(ALICE));
    a.srtp_suites.clear();
    a.allow_plain_rtp = true;
    a.codecs = vec![AudioCodec::Pcmu];
    let mut b = MediaConfig::new(addr(BOB));
    b.allow_plain_rtp = true;
    let (_, _, _, nb) = negotiate(a, b, 21);
    assert_eq!(nb.audio.srtp, None);
    assert_eq!(nb.security.srtp_suite, None);
    let mut c = SessionConfig::new(nb.audio, 0x2222_2222, 5);
    c.app_rate = 8000;
    c.symmetric_rtp = symmetric;
    MediaSession::new(c).unwrap()
}

fn packet(ssrc: u32, seq: u16, ts: u32, pt: u8) -> Vec<u8> {
    let payload: Vec<u8> = sine(8000, 440.0, ts as usize, 160)
        .into_iter()
        .map(linear_to_ulaw)
        .collect();
    let mut v = Vec::new();
    RtpHeader {
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
        ..Default::default()
    }
    .write(&payload, 0, &mut v);
    v
}

fn events(s: &mut MediaSession) -> Vec<MediaEvent> {
    let mut v = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            Output::Event(e) => v.push(e),
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    v
}

#[test]
fn sequence_wraps_and_ssrc_changes() {
    let mut s = plain_pcmu();
    let t0 = Instant::now();
    let src = addr(ALICE);
    let mut out = vec![0i16; 160];
    for i in 0..40u32 {
        let seq = 65520u16.wrapping_add(i as u16);
        let now = t0 + Duration::from_millis(20 * i as u64);
        s.handle_input(
            now,
            Input::Datagram {
                data: &packet(0xaaaa, seq, i * 160, 0),
                source: src,
            },
        );
        s.pull_pcm(now, &mut out);
    }
    let st = s.stats();
    assert_eq!(st.packets_received, 40);
    assert_eq!(st.cumulative_lost, 0, "{st:?}");
    assert_eq!(st.jitter_buffer.lost, 0, "{st:?}");
    assert_eq!(st.jitter_buffer.late, 0, "{st:?}");
    let ev = events(&mut s);
    assert_eq!(
        ev,
        vec![MediaEvent::RemoteSsrcChanged {
            old: None,
            new: 0xaaaa
        }]
    );

    // A new SSRC with an unrelated sequence: one packet is not enough, two switch.
    let now = t0 + Duration::from_millis(800);
    s.handle_input(
        now,
        Input::Datagram {
            data: &packet(0xbbbb, 7, 99_000, 0),
            source: src,
        },
    );
    assert_eq!(s.stats().remote_ssrc, Some(0xaaaa));
    s.handle_input(
        now,
        Input::Datagram {
            data: &packet(0xbbbb, 8, 99_160, 0),
            source: src,
        },
    );
    assert_eq!(s.stats().remote_ssrc, Some(0xbbbb));
    assert_eq!(
        events(&mut s),
        vec![MediaEvent::RemoteSsrcChanged {
            old: Some(0xaaaa),
            new: 0xbbbb
        }]
    );
    for i in 0..20u32 {
        let now = now + Duration::from_millis(20 * (i as u64 + 1));
        s.handle_input(
            now,
            Input::Datagram {
                data: &packet(0xbbbb, 9 + i as u16, 99_320 + i * 160, 0),
                source: src,
            },
        );
        s.pull_pcm(now, &mut out);
    }
    assert_eq!(s.stats().cumulative_lost, 0);

    // unknown payload type is counted and dropped
    s.handle_input(
        now,
        Input::Datagram {
            data: &packet(0xbbbb, 100, 0, 18),
            source: src,
        },
    );
    assert_eq!(s.stats().unknown_payload_type, 1);
    // garbage is counted as malformed
    s.handle_input(
        now,
        Input::Datagram {
            data: &[0x80, 0, 1],
            source: src,
        },
    );
    s.handle_input(
        now,
        Input::Datagram {
            data: &[0x80, 201, 0, 9, 1],
            source: src,
        },
    );
    assert_eq!(s.stats().malformed, 2);
}

#[test]
fn plain_rtp_does_not_follow_a_new_source_by_default() {
    // RTP bleed: with plain RTP anyone can send a packet with the right SSRC; by default
    // it is played but does not redirect our stream.
    let mut s = plain_pcmu();
    let t0 = Instant::now();
    let attacker = addr("198.51.100.7:61000");
    s.handle_input(
        t0,
        Input::Datagram {
            data: &packet(0xaaaa, 1, 0, 0),
            source: attacker,
        },
    );
    assert_eq!(s.stats().packets_received, 1);
    assert_eq!(s.remote_addr(), addr(ALICE));
    let ev = events(&mut s);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, MediaEvent::RemoteAddressChanged(_))),
        "{ev:?}"
    );
    s.push_pcm(t0, &[0; 160]).unwrap();
    assert_eq!(transmit_dests(&mut s), vec![addr(ALICE)]);
}

fn transmit_dests(s: &mut MediaSession) -> Vec<std::net::SocketAddr> {
    std::iter::from_fn(|| s.poll_output())
        .take_while(|o| !matches!(o, Output::Timeout(_)))
        .filter_map(|o| match o {
            Output::Transmit { dest, .. } => Some(dest),
            _ => None,
        })
        .collect()
}

#[test]
fn symmetric_rtp_always_follows_a_plain_source() {
    let mut s = plain_pcmu_with(SymmetricRtp::Always);
    let t0 = Instant::now();
    let nat = addr("198.51.100.7:61000");
    s.handle_input(
        t0,
        Input::Datagram {
            data: &packet(0xaaaa, 1, 0, 0),
            source: nat,
        },
    );
    assert_eq!(s.remote_addr(), nat);
    let ev = events(&mut s);
    assert!(
        ev.contains(&MediaEvent::RemoteAddressChanged(nat)),
        "{ev:?}"
    );
    s.push_pcm(t0, &[0; 160]).unwrap();
    assert_eq!(transmit_dests(&mut s), vec![nat]);
}
