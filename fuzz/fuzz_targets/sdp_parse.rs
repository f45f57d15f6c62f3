#![no_main]
//! SDP: parse; what parses serializes and reparses to the same description. Offers are
//! also answered and treated as answers, exercising offer/answer and SDES parsing.
use cusax_media::keying::sdes::CryptoAttribute;
use cusax_media::sdp::SessionDescription;
use cusax_media::sdp::offer_answer::{
    MediaConfig, OfferAnswer, VideoPolicy, codecs_of, process_answer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = SessionDescription::parse(data) else {
        return;
    };
    let text = d.to_string();
    let again = SessionDescription::parse(text.as_bytes()).expect("serialized SDP must parse");
    assert_eq!(again, d);
    for m in &d.media {
        let _ = codecs_of(m);
        for a in m.attributes_named("crypto") {
            if let Some(v) = &a.value {
                if let Ok(c) = CryptoAttribute::parse(v) {
                    assert_eq!(CryptoAttribute::parse(&c.to_value()), Ok(c));
                }
            }
        }
    }
    let mut cfg = MediaConfig::new("192.0.2.1:4000".parse().unwrap());
    cfg.allow_plain_rtp = true;
    cfg.allow_insecure_sdes = true;
    cfg.video = VideoPolicy::AcceptOpaque { port: 4002 };
    let mut oa = OfferAnswer::with_seed(cfg.clone(), 1);
    if let Ok((answer, _)) = oa.answer_offer(&d, false) {
        SessionDescription::parse(answer.to_string().as_bytes()).expect("our answer must parse");
    }
    let mut oa = OfferAnswer::with_seed(cfg.clone(), 1);
    if let Ok(offer) = oa.create_offer(true) {
        let _ = process_answer(&cfg, &offer, &d, true);
    }
});
