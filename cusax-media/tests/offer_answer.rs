//! RFC 3264 offer/answer and RFC 4568 SDES, including RFC 4317 / RFC 3264 §10 examples.

mod common;

use std::net::IpAddr;

use common::*;
use cusax_media::keying::sdes::SrtpSuite;
use cusax_media::sdp::SessionDescription;
use cusax_media::sdp::offer_answer::{
    AudioCodec, Direction, MediaConfig, NegotiationError, OfferAnswer, VideoPolicy, process_answer,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn crlf(s: &str) -> String {
    s.lines().map(|l| format!("{l}\r\n")).collect()
}

fn resolve(h: &str) -> Option<IpAddr> {
    match h {
        "host.atlanta.example.com" => Some("192.0.2.101".parse().unwrap()),
        "host.biloxi.example.com" => Some("192.0.2.201".parse().unwrap()),
        _ => None,
    }
}

/// RFC 4317 §2.1 "Audio and Video 1", exact text (the RFC notes `s=` holds one space).
const RFC4317_2_1_OFFER: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s= 
c=IN IP4 host.atlanta.example.com
t=0 0
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:97 iLBC/8000
m=video 51372 RTP/AVP 31 32
a=rtpmap:31 H261/90000
a=rtpmap:32 MPV/90000";

const RFC4317_2_1_ANSWER: &str = "v=0
o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
s= 
c=IN IP4 host.biloxi.example.com
t=0 0
m=audio 49174 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 49170 RTP/AVP 32
a=rtpmap:32 MPV/90000";

fn plain(local: &str) -> MediaConfig {
    let mut c = MediaConfig::new(local.parse().unwrap());
    c.srtp_suites.clear();
    c.allow_plain_rtp = true;
    c
}

#[test]
fn rfc4317_2_1_parses_and_round_trips() {
    for text in [RFC4317_2_1_OFFER, RFC4317_2_1_ANSWER] {
        let sdp = crlf(text);
        let d = SessionDescription::parse(sdp.as_bytes()).unwrap();
        assert_eq!(d.to_string(), sdp);
        assert_eq!(d.session_name, " ");
    }
}

#[test]
fn rfc4317_2_1_offerer_view() {
    let mut offer = SessionDescription::parse(crlf(RFC4317_2_1_OFFER).as_bytes()).unwrap();
    let mut answer = SessionDescription::parse(crlf(RFC4317_2_1_ANSWER).as_bytes()).unwrap();
    let cfg = plain("192.0.2.101:49170");
    // Host names must be resolved by the caller first.
    assert_eq!(
        process_answer(&cfg, &offer, &answer, false),
        Err(NegotiationError::UnresolvedHost(
            "host.biloxi.example.com".into()
        ))
    );
    offer.resolve_hosts(resolve);
    answer.resolve_hosts(resolve);
    let n = process_answer(&cfg, &offer, &answer, false).unwrap();
    let a = n.audio;
    assert_eq!(a.remote_addr, "192.0.2.201:49174".parse().unwrap());
    assert_eq!(a.remote_rtcp_addr, "192.0.2.201:49175".parse().unwrap());
    assert_eq!(
        (
            a.send_codec.pt,
            a.send_codec.name.as_str(),
            a.send_codec.clock_rate
        ),
        (0, "PCMU", 8000)
    );
    assert_eq!(
        a.recv_payload_map.keys().copied().collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(a.direction, Direction::SendRecv);
    assert!(!a.rtcp_mux);
    assert_eq!(a.ptime, 20);
    assert_eq!(a.srtp, None);
    assert_eq!(n.security.srtp_suite, None);
    assert!(!n.security.confidential);
}

#[test]
fn rfc4317_2_1_answerer_view() {
    let mut offer = SessionDescription::parse(crlf(RFC4317_2_1_OFFER).as_bytes()).unwrap();
    offer.resolve_hosts(resolve);
    let mut cfg = plain("192.0.2.201:49174");
    cfg.codecs = vec![AudioCodec::Pcmu];
    cfg.telephone_event = false;
    cfg.rtcp_mux = false;
    cfg.video = VideoPolicy::AcceptOpaque { port: 49170 };
    let mut oa = OfferAnswer::new(cfg.clone(), &mut StdRng::seed_from_u64(1));
    let (answer, n) = oa.answer_offer(&offer, false).unwrap();
    // The same m-lines as Bob's answer, except that we accept the first video format.
    let m: Vec<String> = answer
        .to_string()
        .lines()
        .filter(|l| l.starts_with("m=") || l.starts_with("a=rtpmap"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        m,
        [
            "m=audio 49174 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "m=video 49170 RTP/AVP 31",
            "a=rtpmap:31 H261/90000"
        ]
    );
    assert_eq!(n.audio.remote_addr, "192.0.2.101:49170".parse().unwrap());
    let v = n.video.unwrap();
    assert_eq!((v.pt, v.encoding.as_deref()), (31, Some("H261/90000")));
    assert_eq!(v.remote_addr, "192.0.2.101:51372".parse().unwrap());
    // Declining video: port 0 with the offered formats (RFC 3264 §6).
    cfg.video = VideoPolicy::Decline;
    let mut oa = OfferAnswer::new(cfg, &mut StdRng::seed_from_u64(1));
    let (answer, n) = oa.answer_offer(&offer, false).unwrap();
    assert!(answer.to_string().contains("m=video 0 RTP/AVP 31 32\r\n"));
    assert_eq!(n.video, None);
}

/// RFC 3264 §10.1: Bob declines the first video stream and accepts the second.
#[test]
fn rfc3264_10_1_basic_exchange_answer() {
    let offer = crlf(
        "v=0
o=alice 2890844526 2890844526 IN IP4 host.anywhere.com
s=
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 51372 RTP/AVP 31
a=rtpmap:31 H261/90000
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000",
    );
    let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
    let mut cfg = plain("192.0.2.20:49920");
    cfg.video = VideoPolicy::AcceptOpaque { port: 53000 };
    let mut oa = OfferAnswer::new(cfg, &mut StdRng::seed_from_u64(2));
    let (answer, n) = oa.answer_offer(&offer, false).unwrap();
    let ms: Vec<_> = answer
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port))
        .collect();
    // we accept one video stream: the first one
    assert_eq!(ms, [("audio", 49920), ("video", 53000), ("video", 0)]);
    assert_eq!(n.audio.send_codec.name, "PCMU");
}

#[test]
fn sdes_offer_answer_and_key_crossing() {
    let (_, _, na, nb) = negotiate(
        MediaConfig::new(addr(ALICE)),
        MediaConfig::new(addr(BOB)),
        1,
    );
    let (sa, sb) = (na.audio.srtp.unwrap(), nb.audio.srtp.unwrap());
    assert_eq!(sa.suite, SrtpSuite::AeadAes128Gcm);
    assert_eq!(sa.local_key, sb.remote_key);
    assert_eq!(sa.remote_key, sb.local_key);
    assert_ne!(sa.local_key, sa.remote_key);
    assert!(na.security.confidential && na.security.keys_via_secure_signalling);
    assert!(na.audio.rtcp_mux);
    assert_eq!(na.audio.remote_rtcp_addr, na.audio.remote_addr);

    // Offer lists all three suites, strongest first.
    let mut rng = StdRng::seed_from_u64(3);
    let mut oa = OfferAnswer::new(MediaConfig::new(addr(ALICE)), &mut rng);
    let offer = oa.create_offer(true).unwrap().to_string();
    let suites: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| v.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        suites,
        [
            "AEAD_AES_128_GCM",
            "AES_CM_128_HMAC_SHA1_80",
            "AES_CM_128_HMAC_SHA1_32"
        ]
    );
    assert!(offer.contains("m=audio 40000 RTP/SAVP 111 0 8 101 100\r\n"));
    assert!(offer.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
    assert!(offer.contains("a=rtpmap:101 telephone-event/48000\r\n"));
    assert!(offer.contains("a=rtpmap:100 telephone-event/8000\r\n"));

    // A peer restricted to AES_CM_128_HMAC_SHA1_32 picks it. Over plain signalling it
    // refuses to answer with keys unless it opted in (RFC 4568 §8.3); opted in, the
    // summary says the keys travelled insecurely.
    let mut b = MediaConfig::new(addr(BOB));
    b.srtp_suites = vec![SrtpSuite::AesCm128HmacSha1_32];
    let parsed = SessionDescription::parse(offer.as_bytes()).unwrap();
    assert_eq!(
        OfferAnswer::new(b.clone(), &mut rng)
            .answer_offer(&parsed, false)
            .unwrap_err(),
        NegotiationError::InsecureSignalling
    );
    b.allow_insecure_sdes = true;
    let mut ob = OfferAnswer::new(b, &mut rng);
    let (ans, n) = ob.answer_offer(&parsed, false).unwrap();
    assert_eq!(n.security.srtp_suite, Some(SrtpSuite::AesCm128HmacSha1_32));
    assert!(!n.security.confidential && !n.security.keys_via_secure_signalling);
    assert!(
        n.security.to_string().contains("INSECURE signalling"),
        "{}",
        n.security
    );
    let tag = ans.to_string().lines().find_map(|l| {
        l.strip_prefix("a=crypto:")
            .map(|v| v.split(' ').next().unwrap().to_owned())
    });
    assert_eq!(tag.as_deref(), Some("3"));
    // The offerer (not opted in) refuses an SDES answer that came over plain signalling.
    assert_eq!(
        oa.accept_answer(&ans, false).unwrap_err(),
        NegotiationError::InsecureSignalling
    );
    let offer = oa.create_offer(true).unwrap();
    let (ans, _) = ob.answer_offer(&offer, true).unwrap();
    let na = oa.accept_answer(&ans, true).unwrap();
    assert_eq!(na.audio.srtp.unwrap().suite, SrtpSuite::AesCm128HmacSha1_32);
}

#[test]
fn sdes_keys_only_over_secure_signalling_unless_allowed() {
    let mut rng = StdRng::seed_from_u64(31);
    // Offer over insecure signalling: refused by default, nothing handed out.
    let mut oa = OfferAnswer::new(MediaConfig::new(addr(ALICE)), &mut rng);
    assert_eq!(
        oa.create_offer(false).unwrap_err(),
        NegotiationError::InsecureSignalling
    );
    assert!(oa.local_description().is_none());
    // Plain RTP has no keys: an insecure hop is fine.
    let mut p = OfferAnswer::new(plain(ALICE), &mut rng);
    assert!(
        !p.create_offer(false)
            .unwrap()
            .to_string()
            .contains("a=crypto")
    );
    // Opted in: the keys go out, and the summary says they travelled insecurely.
    let mut ca = MediaConfig::new(addr(ALICE));
    ca.allow_insecure_sdes = true;
    let mut oa = OfferAnswer::new(ca, &mut rng);
    let offer = oa.create_offer(false).unwrap();
    assert!(offer.to_string().contains("a=crypto:1 AEAD_AES_128_GCM"));
    let mut cb = MediaConfig::new(addr(BOB));
    cb.allow_insecure_sdes = true;
    let (ans, nb) = OfferAnswer::new(cb, &mut rng)
        .answer_offer(&offer, false)
        .unwrap();
    let na = oa.accept_answer(&ans, false).unwrap();
    for s in [na.security, nb.security] {
        assert_eq!(s.srtp_suite, Some(SrtpSuite::AeadAes128Gcm));
        assert!(!s.keys_via_secure_signalling && !s.confidential);
    }
    // A secure-by-default answerer refuses an SAVP offer that came in the clear; a SIP
    // UA answers 488.
    assert_eq!(
        OfferAnswer::new(MediaConfig::new(addr(BOB)), &mut rng)
            .answer_offer(&offer, false)
            .unwrap_err(),
        NegotiationError::InsecureSignalling
    );
}

#[test]
fn re_offers_and_re_answers_carry_fresh_sdes_keys() {
    let mut rng = StdRng::seed_from_u64(32);
    let mut oa = OfferAnswer::new(MediaConfig::new(addr(ALICE)), &mut rng);
    let mut ob = OfferAnswer::new(MediaConfig::new(addr(BOB)), &mut rng);
    let keys = |sdp: &SessionDescription| -> Vec<String> {
        sdp.to_string()
            .lines()
            .filter(|l| l.starts_with("a=crypto:"))
            .map(str::to_owned)
            .collect()
    };
    let o1 = oa.create_offer(true).unwrap();
    // re-created before an answer: the same offer (and keys) again
    assert_eq!(keys(&oa.create_offer(true).unwrap()), keys(&o1));
    let (a1, nb1) = ob.answer_offer(&o1, true).unwrap();
    let na1 = oa.accept_answer(&a1, true).unwrap();
    // re-INVITE from alice (e.g. hold): new keys in both the offer and the answer
    oa.set_direction(Direction::SendOnly);
    let o2 = oa.create_offer(true).unwrap();
    let (a2, nb2) = ob.answer_offer(&o2, true).unwrap();
    let na2 = oa.accept_answer(&a2, true).unwrap();
    for (o, n) in [(&o1, &o2), (&a1, &a2)] {
        let (k1, k2) = (keys(o), keys(n));
        assert_eq!(k1.len(), k2.len());
        assert!(k1.iter().zip(&k2).all(|(x, y)| x != y), "{k1:?} {k2:?}");
    }
    let (s1, s2) = (na1.audio.srtp.unwrap(), na2.audio.srtp.unwrap());
    assert_ne!(s1.local_key, s2.local_key);
    assert_ne!(s1.remote_key, s2.remote_key);
    assert_eq!(s2.local_key, nb2.audio.srtp.as_ref().unwrap().remote_key);
    assert_eq!(s2.remote_key, nb2.audio.srtp.unwrap().local_key);
    assert_ne!(nb1.audio.srtp.unwrap().local_key, s2.remote_key);
    // re-INVITE from bob: fresh again
    let o3 = ob.create_offer(true).unwrap();
    assert!(keys(&o3).iter().all(|k| !keys(&a2).contains(k)));

    // Opted out (reuse_sdes_keys, for peers that ignore new keys): the keys stay.
    let mut c = MediaConfig::new(addr(ALICE));
    c.reuse_sdes_keys = true;
    let mut oa = OfferAnswer::new(c, &mut rng);
    let mut ob = OfferAnswer::new(MediaConfig::new(addr(BOB)), &mut rng);
    let o1 = oa.create_offer(true).unwrap();
    let (a1, _) = ob.answer_offer(&o1, true).unwrap();
    let n1 = oa.accept_answer(&a1, true).unwrap();
    oa.set_direction(Direction::SendOnly);
    let o2 = oa.create_offer(true).unwrap();
    assert_eq!(keys(&o1), keys(&o2));
    let (a2, _) = ob.answer_offer(&o2, true).unwrap();
    let n2 = oa.accept_answer(&a2, true).unwrap();
    assert_eq!(
        n1.audio.srtp.unwrap().local_key,
        n2.audio.srtp.as_ref().unwrap().local_key
    );
    assert_ne!(keys(&a1), keys(&a2), "bob (default) still draws fresh keys");
}

#[test]
fn plain_rtp_is_refused_by_default() {
    let mut rng = StdRng::seed_from_u64(4);
    // plain offer to a secure-by-default answerer
    let mut oa = OfferAnswer::new(plain(ALICE), &mut rng);
    let offer = oa.create_offer(true).unwrap();
    let mut ob = OfferAnswer::new(MediaConfig::new(addr(BOB)), &mut rng);
    assert_eq!(
        ob.answer_offer(&offer, true).unwrap_err(),
        NegotiationError::PlainRtpRefused
    );
    // our SAVP offer answered with plain RTP/AVP
    let mut oa = OfferAnswer::new(MediaConfig::new(addr(ALICE)), &mut rng);
    let offer = oa.create_offer(true).unwrap();
    let mut text = offer.to_string().replace("RTP/SAVP", "RTP/AVP");
    text = text
        .lines()
        .filter(|l| !l.starts_with("a=crypto"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let ans = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(
        oa.accept_answer(&ans, true).unwrap_err(),
        NegotiationError::PlainRtpRefused
    );
    // config that can offer nothing
    let mut c = MediaConfig::new(addr(ALICE));
    c.srtp_suites.clear();
    assert!(matches!(
        OfferAnswer::new(c, &mut rng).create_offer(true),
        Err(NegotiationError::Config(_))
    ));
    // unsupported suites only
    let f8 = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/SAVP 0
a=crypto:1 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4",
    );
    let err = ob
        .answer_offer(&SessionDescription::parse(f8.as_bytes()).unwrap(), true)
        .unwrap_err();
    assert!(
        matches!(err, NegotiationError::NoAcceptableCrypto(_)),
        "{err:?}"
    );
    // DTLS-SRTP profile is not implemented
    let dtls = f8.replace("RTP/SAVP", "UDP/TLS/RTP/SAVPF");
    let err = ob
        .answer_offer(&SessionDescription::parse(dtls.as_bytes()).unwrap(), true)
        .unwrap_err();
    assert_eq!(
        err,
        NegotiationError::UnsupportedTransport("UDP/TLS/RTP/SAVPF".into())
    );
}

#[test]
fn payload_types_may_differ_per_direction() {
    // Offer from a peer using PT 96 for Opus and 97 for telephone-event, ptime 40, IPv6,
    // media-level c=, no rtcp-mux but a=rtcp.
    let offer = crlf(
        "v=0
o=- 7 7 IN IP6 2001:db8::1
s=-
t=0 0
m=audio 5004 RTP/AVP 96 97 0
c=IN IP6 2001:db8::2
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1;maxaveragebitrate=24000
a=rtpmap:97 telephone-event/48000
a=ptime:40
a=rtcp:5010 IN IP6 2001:db8::3",
    );
    let mut rng = StdRng::seed_from_u64(5);
    let mut ob = OfferAnswer::new(plain("[2001:db8::9]:7000"), &mut rng);
    let (ans, n) = ob
        .answer_offer(&SessionDescription::parse(offer.as_bytes()).unwrap(), true)
        .unwrap();
    let a = &n.audio;
    assert_eq!(a.send_codec.pt, 96);
    assert_eq!(a.send_codec.fmtp_param("maxaveragebitrate"), Some("24000"));
    assert_eq!(a.telephone_event_pt.send, Some(97));
    assert_eq!(a.telephone_event_pt.recv, Some(97));
    assert_eq!(a.ptime, 40);
    assert_eq!(a.remote_addr, "[2001:db8::2]:5004".parse().unwrap());
    assert_eq!(a.remote_rtcp_addr, "[2001:db8::3]:5010".parse().unwrap());
    assert!(!a.rtcp_mux);
    assert!(ans.to_string().contains("c=IN IP6 2001:db8::9\r\n"));
    assert!(ans.to_string().contains("m=audio 7000 RTP/AVP 96 0 97\r\n"));

    // Our offer uses 111; an answer that maps Opus to 109 makes us send 109, receive 111.
    let mut oa = OfferAnswer::new(plain(ALICE), &mut rng);
    let offer = oa.create_offer(true).unwrap();
    let answer = crlf(
        "v=0
o=- 8 8 IN IP4 192.0.2.2
s=-
c=IN IP4 192.0.2.2
t=0 0
m=audio 50000 RTP/AVP 109 110
a=rtpmap:109 opus/48000/2
a=rtpmap:110 telephone-event/48000
a=rtcp-mux
a=recvonly",
    );
    let n = process_answer(
        oa.config(),
        &offer,
        &SessionDescription::parse(answer.as_bytes()).unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(n.audio.send_codec.pt, 109);
    assert_eq!(n.audio.telephone_event_pt.send, Some(110));
    assert_eq!(
        n.audio.recv_payload_map.keys().copied().collect::<Vec<_>>(),
        vec![101, 111]
    );
    assert_eq!(n.audio.telephone_event_pt.recv, Some(101));
    // answer recvonly -> we only send
    assert_eq!(n.audio.direction, Direction::SendOnly);
    assert!(n.audio.rtcp_mux);
}

#[test]
fn answer_direction_rules_rfc3264_6_1() {
    use Direction::*;
    let cases = [
        (SendRecv, SendRecv, SendRecv),
        (SendOnly, SendRecv, RecvOnly),
        (RecvOnly, SendRecv, SendOnly),
        (Inactive, SendRecv, Inactive),
        (SendRecv, SendOnly, SendOnly),
        (SendOnly, SendOnly, Inactive),
        (RecvOnly, RecvOnly, Inactive),
    ];
    for (offer, wanted, answer) in cases {
        assert_eq!(
            Direction::answer_to(offer, wanted),
            answer,
            "{offer:?} {wanted:?}"
        );
    }
    // session version increments only when the description changes (RFC 3264 §8)
    let mut oa = OfferAnswer::new(MediaConfig::new(addr(ALICE)), &mut StdRng::seed_from_u64(6));
    let v1 = oa.create_offer(true).unwrap().origin.session_version;
    let v2 = oa.create_offer(true).unwrap().origin.session_version;
    oa.set_direction(Inactive);
    let v3 = oa.create_offer(true).unwrap().origin.session_version;
    assert_eq!(v1, v2);
    assert_eq!(v3, v2 + 1);
}

#[test]
fn rejected_audio_and_no_common_codec() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut oa = OfferAnswer::new(plain(ALICE), &mut rng);
    let offer = oa.create_offer(true).unwrap();
    let rej = offer.to_string().replace("m=audio 40000", "m=audio 0");
    assert_eq!(
        oa.accept_answer(&SessionDescription::parse(rej.as_bytes()).unwrap(), false)
            .unwrap_err(),
        NegotiationError::AudioRejected
    );
    let g729 = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 18
a=rtpmap:18 G729/8000",
    );
    let mut ob = OfferAnswer::new(plain(BOB), &mut rng);
    assert_eq!(
        ob.answer_offer(&SessionDescription::parse(g729.as_bytes()).unwrap(), false)
            .unwrap_err(),
        NegotiationError::NoCommonCodec
    );
    assert_eq!(
        OfferAnswer::new(plain(BOB), &mut rng)
            .accept_answer(&SessionDescription::parse(g729.as_bytes()).unwrap(), false),
        Err(NegotiationError::NoOfferOutstanding)
    );
}
