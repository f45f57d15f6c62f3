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

fn tx_context(suite: SrtpSuite, key: &MasterKey) -> Result<Context, SrtpError> {
    Context::new(&key.key, &key.salt, profile(suite), None, None)
        .map_err(|e| SrtpError::Key(e.to_string()))
}

fn rx_context(suite: SrtpSuite, key: &MasterKey) -> Result<Context, SrtpError> {
    Context::new(
        &key.key,
        &key.salt,
        profile(suite),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
    )
    .map_err(|e| SrtpError::Key(e.to_string()))
}

/// A bidirectional SRTP session.
pub struct SrtpSession {
    tx: Context,
    rx: Context,
    /// The inbound context of the previous key after a rekey, with its suite: packets
    /// the peer sent before it switched keys still authenticate (see [`Self::rekey`]).
    rx_prev: Option<(Context, SrtpSuite)>,
    suite: SrtpSuite,
    local: MasterKey,
    remote: MasterKey,
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
        Ok(SrtpSession {
            tx: tx_context(suite, local)?,
            rx: rx_context(suite, remote)?,
            rx_prev: None,
            suite,
            local: local.clone(),
            remote: remote.clone(),
        })
    }

    /// Applies the keys of a new offer/answer exchange (RFC 4568 §7.1.4): a direction
    /// whose key (or the suite) changed gets a new context (rollover counter and replay
    /// window start afresh, as they must for a new key); a direction whose key is
    /// unchanged keeps its context, so its packet index and replay state continue.
    /// The previous inbound context stays usable for packets that fail with the new
    /// one (the peer's packets in flight under its old key, or sent before it applied
    /// the exchange) until the first packet authenticates under the new key; only then
    /// is it dropped. On error nothing changes. Returns `(tx_rekeyed, rx_rekeyed)`.
    pub fn rekey(
        &mut self,
        suite: SrtpSuite,
        local: &MasterKey,
        remote: &MasterKey,
    ) -> Result<(bool, bool), SrtpError> {
        let same_suite = suite == self.suite;
        let new_tx = (!same_suite || *local != self.local)
            .then(|| tx_context(suite, local))
            .transpose()?;
        let new_rx = (!same_suite || *remote != self.remote)
            .then(|| rx_context(suite, remote))
            .transpose()?;
        let changed = (new_tx.is_some(), new_rx.is_some());
        if let Some(tx) = new_tx {
            self.tx = tx;
            self.local = local.clone();
        }
        if let Some(rx) = new_rx {
            let old = std::mem::replace(&mut self.rx, rx);
            self.rx_prev = Some((old, self.suite));
            self.remote = remote.clone();
        }
        self.suite = suite;
        Ok(changed)
    }

    /// The suite.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Protects a serialized RTP packet.
    pub fn protect_rtp(&mut self, rtp: &[u8]) -> Result<Bytes, SrtpError> {
        check_rtp_header(rtp)?;
        self.tx.encrypt_rtp(rtp).map_err(map_err)
    }

    /// Unprotects an SRTP packet (auth, replay, decrypt).
    pub fn unprotect_rtp(&mut self, srtp: &[u8]) -> Result<Bytes, SrtpError> {
        check_rtp_header(srtp)?;
        match self.rx.decrypt_rtp(srtp).map_err(map_err) {
            Ok(p) => {
                self.rx_prev = None;
                Ok(p)
            }
            Err(SrtpError::Auth) => match self.rx_prev.as_mut() {
                Some((prev, _)) => prev.decrypt_rtp(srtp).map_err(map_err),
                None => Err(SrtpError::Auth),
            },
            Err(e) => Err(e),
        }
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
        match unprotect_rtcp_with(&mut self.rx, self.suite, srtcp) {
            Ok(p) => {
                self.rx_prev = None;
                Ok(p)
            }
            Err(SrtpError::Auth) => match self.rx_prev.as_mut() {
                Some((prev, suite)) => unprotect_rtcp_with(prev, *suite, srtcp),
                None => Err(SrtpError::Auth),
            },
            Err(e) => Err(e),
        }
    }
}

fn unprotect_rtcp_with(
    rx: &mut Context,
    suite: SrtpSuite,
    srtcp: &[u8],
) -> Result<Bytes, SrtpError> {
    let p = profile(suite);
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
    rx.decrypt_rtcp(srtcp).map_err(map_err)
}

/// Checks that the RTP header (RFC 3550 §5.1, RFC 8285 header extensions) lies within
/// the packet before it reaches webrtc-srtp.
///
/// rtp 0.17.2, which webrtc-srtp uses to read the header, walks the elements of one-byte
/// (`0xBEDE`) and two-byte (`0x1000`) header extensions without checking their lengths
/// against the packet and panics on a short one (found by the `srtp_unprotect` fuzz
/// target). We refuse such packets here; elements must also end inside the extension
/// block, as RFC 8285 §4.2/§4.3 require.
fn check_rtp_header(pkt: &[u8]) -> Result<(), SrtpError> {
    const ONE_BYTE: u16 = 0xBEDE;
    const TWO_BYTE: u16 = 0x1000;
    let first = *pkt.first().ok_or(SrtpError::Malformed)?;
    let cc = usize::from(first & 0x0F);
    let mut at = 12 + 4 * cc;
    if pkt.len() < at {
        return Err(SrtpError::Malformed);
    }
    if first & 0x10 == 0 {
        return Ok(());
    }
    let ext = pkt.get(at..at + 4).ok_or(SrtpError::Malformed)?;
    let profile = u16::from_be_bytes([ext[0], ext[1]]);
    let end = at + 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    if pkt.len() < end {
        return Err(SrtpError::Malformed);
    }
    at += 4;
    match profile {
        ONE_BYTE => {
            while at < end {
                let b = pkt[at];
                at += 1;
                if b == 0 {
                    continue;
                }
                if b >> 4 == 15 {
                    break;
                }
                at += usize::from(b & 0x0F) + 1;
            }
        }
        TWO_BYTE => {
            while at < end {
                let b = pkt[at];
                at += 1;
                if b == 0 {
                    continue;
                }
                let len = *pkt.get(at).ok_or(SrtpError::Malformed)?;
                at += 1 + usize::from(len);
            }
        }
        _ => return Ok(()),
    }
    if at > end {
        return Err(SrtpError::Malformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{RtpHeader, RtpPacket};

    /// Found by the `srtp_unprotect` fuzz target: a two-byte header extension element
    /// longer than the packet made rtp 0.17.2 panic inside webrtc-srtp.
    #[test]
    fn short_header_extension_elements_are_refused() {
        let crash: [u8; 33] = [
            0x90, 0x01, 0x00, 0xfd, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
            0x00, 0x03, 0x00, 0x89, 0x11, 0xff, 0x01, 0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00,
            0x03, 0xff, 0x95, 0xff, 0xff,
        ];
        for suite in SrtpSuite::ALL {
            let k = key(suite, 1);
            let mut s = SrtpSession::new(suite, &k, &k).unwrap();
            assert_eq!(s.unprotect_rtp(&crash), Err(SrtpError::Malformed));
            assert_eq!(s.protect_rtp(&crash), Err(SrtpError::Malformed));
        }
        // one-byte profile: an element running past the block
        let mut p = vec![0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1];
        p.extend_from_slice(&[0x1F, 0, 0, 0]); // id 1, 16 bytes, block is 4
        assert_eq!(check_rtp_header(&p), Err(SrtpError::Malformed));
        // a well-formed one-byte extension passes
        let mut ok = vec![0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xBE, 0xDE, 0, 1];
        ok.extend_from_slice(&[0x12, 0xAA, 0xBB, 0xCC, 0x55]);
        assert_eq!(check_rtp_header(&ok), Ok(()));
    }

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
    fn rekey_switches_changed_directions_and_accepts_old_key_packets_until_the_new_one() {
        for suite in SrtpSuite::ALL {
            let (a, b) = (key(suite, 1), key(suite, 2));
            let mut alice = SrtpSession::new(suite, &a, &b).unwrap();
            let mut bob = SrtpSession::new(suite, &b, &a).unwrap();
            let old1 = alice.protect_rtp(&rtp(10)).unwrap();
            let old2 = alice.protect_rtp(&rtp(11)).unwrap();
            assert!(bob.unprotect_rtp(&old1).is_ok());
            // alice re-offers with a new key; bob's key is unchanged
            let a2 = key(suite, 3);
            assert_eq!(alice.rekey(suite, &a2, &b).unwrap(), (true, false));
            assert_eq!(bob.rekey(suite, &b, &a2).unwrap(), (false, true));
            // bob -> alice continues in the same context: an old packet is a replay
            let from_bob = bob.protect_rtp(&rtp(50)).unwrap();
            assert!(alice.unprotect_rtp(&from_bob).is_ok());
            assert_eq!(alice.unprotect_rtp(&from_bob), Err(SrtpError::Replay));
            // alice -> bob: in-flight packet under the old key still accepted...
            assert!(bob.unprotect_rtp(&old2).is_ok(), "{suite:?}");
            // ...and replays under the old key are still caught
            assert_eq!(bob.unprotect_rtp(&old1), Err(SrtpError::Replay));
            // the first packet under the new key retires the old context
            let new = alice.protect_rtp(&rtp(12)).unwrap();
            assert_eq!(&bob.unprotect_rtp(&new).unwrap()[..], &rtp(12)[..]);
            let late = SrtpSession::new(suite, &a, &b)
                .unwrap()
                .protect_rtp(&rtp(13))
                .unwrap();
            assert_eq!(bob.unprotect_rtp(&late), Err(SrtpError::Auth), "{suite:?}");
            // a bad key leaves the session unchanged
            let bad = MasterKey {
                key: vec![1; 3],
                salt: vec![],
            };
            assert!(matches!(
                bob.rekey(suite, &bad, &a2),
                Err(SrtpError::Key(_))
            ));
            let next = alice.protect_rtp(&rtp(14)).unwrap();
            assert!(bob.unprotect_rtp(&next).is_ok());
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
