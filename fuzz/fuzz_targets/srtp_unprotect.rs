#![no_main]
//! Fixed-key SRTP/SRTCP contexts (all three suites) unprotecting arbitrary bytes: every
//! outcome is an error value, never a panic.
use cusax_media::keying::sdes::{MasterKey, SrtpSuite};
use cusax_media::srtp::SrtpSession;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for suite in SrtpSuite::ALL {
        let k = MasterKey {
            key: vec![0x2b; suite.key_len()],
            salt: vec![0x7e; suite.salt_len()],
        };
        let mut s = SrtpSession::new(suite, &k, &k).expect("fixed key has the right size");
        let _ = s.unprotect_rtp(data);
        let _ = s.unprotect_rtcp(data);
        // also as our own packet: protect what parses, then it must unprotect
        if cusax_media::rtp::RtpPacket::parse(data).is_ok() {
            if let Ok(p) = s.protect_rtp(data) {
                let back = s.unprotect_rtp(&p).expect("own packet must unprotect");
                assert_eq!(&back[..], data);
            }
        }
    }
});
