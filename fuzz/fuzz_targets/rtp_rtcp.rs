#![no_main]
//! Arbitrary bytes as RTP and as RTCP: parsing never panics, and what parses
//! re-serializes to something that parses again (RTP: to the same packet).
use cusax_media::dtmf::DtmfReceiver;
use cusax_media::rtcp::{parse_compound, write_compound};
use cusax_media::rtp::{ReceptionStats, RtpPacket, is_rtcp};
use libfuzzer_sys::fuzz_target;

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
});
