//! SRTP/SRTCP (RFC 3711, RFC 7714) through `webrtc-srtp`.
//!
//! One [`SrtpSession`] holds an outbound context (our key) and an inbound context (the
//! peer's key). Replay protection is switched **on** for inbound SRTP and SRTCP (the
//! crate's default is off).

use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

use crate::keying::sdes::{MasterKey, SrtpSuite};

/// Replay window (packets) for inbound SRTP and SRTCP (RFC 3711 §3.3.2 requires ≥ 64).
pub const REPLAY_WINDOW: usize = 128;

/// An SRTP failure. `Auth` and `Replay` are the peer's (or an attacker's) doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Authentication tag mismatch: tampered or wrong key.
    #[error("SRTP authentication failed")]
    Auth,
    /// A packet index already seen or too old for the window.
    #[error("SRTP replay detected")]
    Replay,
    /// Too short or not RTP/RTCP.
    #[error("malformed SRTP packet")]
    Malformed,
    /// Key of the wrong size for the suite (our misuse).
    #[error("bad SRTP key: {0}")]
    Key(String),
    /// Anything else the crypto library reported.
    #[error("SRTP error: {0}")]
    Other(String),
}

fn map_err(e: webrtc_srtp::Error) -> SrtpError {
    use webrtc_srtp::Error as E;
    match e {
        E::RtpFailedToVerifyAuthTag
        | E::RtcpFailedToVerifyAuthTag
        | E::ErrFailedToVerifyAuthTag => SrtpError::Auth,
        E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) => SrtpError::Replay,
        E::ErrTooShortRtp | E::ErrTooShortRtcp => SrtpError::Malformed,
        other => {
            let s = other.to_string();
            if s.contains("auth") || s.contains("tag") || s.contains("aead") {
                SrtpError::Auth
            } else if s.contains("marshal")
                || s.contains("short")
                || s.contains("buffer")
                || s.contains("header")
            {
                SrtpError::Malformed
            } else {
                SrtpError::Other(s)
            }
        }
    }
}

/// The webrtc-srtp profile of a suite.
pub fn profile(suite: SrtpSuite) -> ProtectionProfile {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    }
}

/// A bidirectional SRTP session.
pub struct SrtpSession {
    tx: Context,
    rx: Context,
    suite: SrtpSuite,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Creates the outbound context from `local` and the inbound one (with replay
    /// protection) from `remote`.
    pub fn new(suite: SrtpSuite, local: &MasterKey, remote: &MasterKey) -> Result<Self, SrtpError> {
        let p = profile(suite);
        let tx = Context::new(&local.key, &local.salt, p, None, None)
            .map_err(|e| SrtpError::Key(e.to_string()))?;
        let rx = Context::new(
            &remote.key,
            &remote.salt,
            p,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
        .map_err(|e| SrtpError::Key(e.to_string()))?;
        Ok(SrtpSession { tx, rx, suite })
    }

    /// The suite.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Protects a serialized RTP packet.
    pub fn protect_rtp(&mut self, rtp: &[u8]) -> Result<Bytes, SrtpError> {
        self.tx.encrypt_rtp(rtp).map_err(map_err)
    }

    /// Unprotects an SRTP packet (auth, replay, decrypt).
    pub fn unprotect_rtp(&mut self, srtp: &[u8]) -> Result<Bytes, SrtpError> {
        if srtp.len() < 12 {
            return Err(SrtpError::Malformed);
        }
        self.rx.decrypt_rtp(srtp).map_err(map_err)
    }

    /// Protects a serialized RTCP compound packet.
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<Bytes, SrtpError> {
        self.tx.encrypt_rtcp(rtcp).map_err(map_err)
    }

    /// Unprotects an SRTCP packet.
    ///
    /// Guards in front of webrtc-srtp 0.17.2 (found by the `srtp_unprotect` fuzz target and
    /// by reading its code):
    /// - packets shorter than header + SRTCP index + tag are rejected here (the crate
    ///   indexes before checking the length and panics on them);
    /// - packets with the E flag clear are rejected: for AES-CM the crate returns such
    ///   packets *without verifying the tag* (and advances the replay window), which would
    ///   let anyone inject RTCP. We always send encrypted SRTCP, and RFC 3711 §3.4 makes
    ///   authentication mandatory regardless of E, so nothing legitimate is lost.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<Bytes, SrtpError> {
        let p = profile(self.suite);
        let tag = p.rtcp_auth_tag_len().max(p.aead_auth_tag_len());
        if srtcp.len() < 8 + 4 + tag {
            return Err(SrtpError::Malformed);
        }
        // The E flag is the top bit of the 32-bit word holding the SRTCP index: right
        // before the HMAC tag (AES-CM), or the last word (AEAD, RFC 7714 §9).
        let e_at = srtcp.len() - 4 - p.rtcp_auth_tag_len();
        if srtcp[e_at] & 0x80 == 0 {
            return Err(SrtpError::Auth);
        }
        self.rx.decrypt_rtcp(srtcp).map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{RtpHeader, RtpPacket};

    fn key(suite: SrtpSuite, seed: u8) -> MasterKey {
        MasterKey {
            key: (0..suite.key_len() as u8).map(|i| i ^ seed).collect(),
            salt: (0..suite.salt_len() as u8)
                .map(|i| i.wrapping_mul(3) ^ seed)
                .collect(),
        }
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let h = RtpHeader {
            payload_type: 0,
            sequence: seq,
            timestamp: seq as u32 * 160,
            ssrc: 0xcafe,
            ..Default::default()
        };
        let mut v = Vec::new();
        h.write(&[0x55; 160], 0, &mut v);
        v
    }

    #[test]
    fn all_suites_round_trip_and_reject_replay_and_tamper() {
        for suite in SrtpSuite::ALL {
            let (a, b) = (key(suite, 1), key(suite, 2));
            let mut alice = SrtpSession::new(suite, &a, &b).unwrap();
            let mut bob = SrtpSession::new(suite, &b, &a).unwrap();
            for seq in [65534u16, 65535, 0, 1] {
                let p = alice.protect_rtp(&rtp(seq)).unwrap();
                assert_ne!(&p[12..172], &rtp(seq)[12..], "{suite:?} payload encrypted");
                let plain = bob.unprotect_rtp(&p).unwrap();
                assert_eq!(&plain[..], &rtp(seq)[..], "{suite:?}");
                // replay of the same packet
                assert_eq!(bob.unprotect_rtp(&p), Err(SrtpError::Replay), "{suite:?}");
            }
            let mut t = alice.protect_rtp(&rtp(2)).unwrap().to_vec();
            t[20] ^= 1;
            assert_eq!(bob.unprotect_rtp(&t), Err(SrtpError::Auth), "{suite:?}");
            // the untampered packet still passes afterwards (the failure did not advance state)
            t[20] ^= 1;
            assert!(bob.unprotect_rtp(&t).is_ok());
            let parsed = RtpPacket::parse(
                &bob.unprotect_rtp(&alice.protect_rtp(&rtp(3)).unwrap())
                    .unwrap(),
            )
            .unwrap()
            .header
            .sequence;
            assert_eq!(parsed, 3);

            // SRTCP
            let rr = crate::rtcp::write_compound(&[crate::rtcp::RtcpPacket::ReceiverReport {
                ssrc: 0xcafe,
                reports: vec![],
            }]);
            let p = alice.protect_rtcp(&rr).unwrap();
            assert_eq!(&bob.unprotect_rtcp(&p).unwrap()[..], &rr[..]);
            assert_eq!(bob.unprotect_rtcp(&p), Err(SrtpError::Replay));
            let mut t = alice.protect_rtcp(&rr).unwrap().to_vec();
            let l = t.len();
            t[l - 1] ^= 0x80;
            assert_eq!(bob.unprotect_rtcp(&t), Err(SrtpError::Auth));
        }
    }

    #[test]
    fn srtcp_with_e_flag_cleared_is_rejected_and_does_not_touch_the_replay_window() {
        for suite in SrtpSuite::ALL {
            let (a, b) = (key(suite, 3), key(suite, 4));
            let mut alice = SrtpSession::new(suite, &a, &b).unwrap();
            let mut bob = SrtpSession::new(suite, &b, &a).unwrap();
            let rr = crate::rtcp::write_compound(&[crate::rtcp::RtcpPacket::ReceiverReport {
                ssrc: 9,
                reports: vec![],
            }]);
            let good = alice.protect_rtcp(&rr).unwrap().to_vec();
            // forged: plaintext RR + E=0 with a huge index + garbage tag
            let mut forged = rr.clone();
            if suite == SrtpSuite::AeadAes128Gcm {
                forged.extend_from_slice(&[0u8; 16]);
                forged.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
            } else {
                forged.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
                forged.extend_from_slice(&[0u8; 10]);
            }
            assert_eq!(
                bob.unprotect_rtcp(&forged),
                Err(SrtpError::Auth),
                "{suite:?}"
            );
            assert_eq!(
                &bob.unprotect_rtcp(&good).unwrap()[..],
                &rr[..],
                "{suite:?}"
            );
            // short inputs are errors, not panics
            for n in 0..good.len() {
                assert!(bob.unprotect_rtcp(&good[..n]).is_err());
                let _ = bob.unprotect_rtp(&good[..n]);
            }
        }
    }

    #[test]
    fn wrong_key_length_is_our_error() {
        let bad = MasterKey {
            key: vec![0; 5],
            salt: vec![0; 14],
        };
        assert!(matches!(
            SrtpSession::new(SrtpSuite::AesCm128HmacSha1_80, &bad, &bad),
            Err(SrtpError::Key(_))
        ));
    }
}
