#![no_main]
//! Arbitrary bytes as RTP and as RTCP: parsing never panics, and what parses
//! re-serializes to something that parses again (RTP: to the same packet). The bytes are
//! also fed, split into datagrams, to a plain-RTP PCMU `MediaSession` that then plays out.
use cusax_media::dtmf::DtmfReceiver;
use cusax_media::rtcp::{parse_compound, write_compound};
use cusax_media::rtp::{ReceptionStats, RtpPacket, is_rtcp};
use cusax_media::sdp::offer_answer::{AudioCodec, MediaConfig, NegotiatedAudio, OfferAnswer};
use cusax_media::session::{Input, MediaSession, SessionConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn negotiated() -> &'static NegotiatedAudio {
    static N: OnceLock<NegotiatedAudio> = OnceLock::new();
    N.get_or_init(|| {
        let mut a = MediaConfig::new("192.0.2.1:4000".parse().unwrap());
        a.srtp_suites.clear();
        a.allow_plain_rtp = true;
        a.codecs = vec![AudioCodec::Pcmu, AudioCodec::Pcma];
        let mut b = a.clone();
        b.local_addr = "192.0.2.2:5000".parse().unwrap();
        let mut oa = OfferAnswer::with_seed(a, 1);
        let offer = oa.create_offer(false).unwrap();
        let (_, n) = OfferAnswer::with_seed(b, 2)
            .answer_offer(&offer, false)
            .unwrap();
        n.audio
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = is_rtcp(data);
    if let Ok(p) = RtpPacket::parse(data) {
        let mut out = Vec::new();
        p.header.write(p.payload, p.padding, &mut out);
        let q = RtpPacket::parse(&out).expect("re-serialized RTP must parse");
        assert_eq!(q.header, p.header);
        assert_eq!(q.payload, p.payload);
        let mut st = ReceptionStats::new(p.header.sequence);
        for (i, b) in p.payload.iter().take(64).enumerate() {
            st.update_seq(p.header.sequence.wrapping_add((*b as u16) << (i % 9)));
            st.update_jitter(p.header.timestamp, (*b as u32) << (i % 20));
        }
        let _ = (st.cumulative_lost(), st.take_fraction_lost(), st.jitter());
        let mut d = DtmfReceiver::new();
        for c in p.payload.chunks(4) {
            let _ = d.on_packet(p.header.timestamp, c);
        }
    }
    if let Ok(pk) = parse_compound(data) {
        let out = write_compound(&pk);
        parse_compound(&out).expect("re-serialized RTCP must parse");
    }
    // Datagrams separated by a length byte, fed to a session with a fake clock.
    let mut s = MediaSession::new(SessionConfig::new(negotiated().clone(), 9, 9)).unwrap();
    let t0 = Instant::now();
    let mut rest = data;
    let mut k = 0u64;
    let mut out = [0i16; 160];
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (dgram, more) = tail.split_at(n);
        let now = t0 + Duration::from_millis(10 * k);
        s.handle_input(
            now,
            Input::Datagram {
                data: dgram,
                source: "192.0.2.1:4000".parse().unwrap(),
            },
        );
        s.pull_pcm(now, &mut out);
        s.handle_timeout(now + Duration::from_secs(k));
        while let Some(o) = s.poll_output() {
            if matches!(o, cusax_media::session::Output::Timeout(_)) {
                break;
            }
        }
        rest = more;
        k += 1;
    }
    let _ = s.stats();
});
