//! RTP (RFC 3550 §5): packet parse/build, and receive-side sequence tracking (§A.1, A.8).

mod stats;

pub use stats::{ReceptionStats, SeqOutcome};

/// Largest RTP packet accepted or built (bytes).
pub const MAX_RTP_LEN: usize = 1500 * 2;

/// A synchronization source identifier (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// Why bytes are not a valid RTP packet (always the sender's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the fixed header, CSRC list or extension announced.
    #[error("RTP packet truncated")]
    Truncated,
    /// Version field is not 2.
    #[error("RTP version {0} is not 2")]
    BadVersion(u8),
    /// Padding count is zero or larger than the payload.
    #[error("bad RTP padding")]
    BadPadding,
    /// Larger than [`MAX_RTP_LEN`].
    #[error("RTP packet too large")]
    TooLarge,
    /// The payload type is in the RTCP range (RFC 5761 §4).
    #[error("payload type {0} collides with RTCP")]
    RtcpRange(u8),
}

/// The RTP header extension (RFC 3550 §5.3.1), kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderExtension {
    /// The 16-bit profile-defined value.
    pub profile: u16,
    /// Extension data (a multiple of 4 bytes).
    pub data: Vec<u8>,
}

/// An RTP header (RFC 3550 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrc: Vec<u32>,
    /// Header extension.
    pub extension: Option<HeaderExtension>,
}

/// A parsed RTP packet borrowing its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The header.
    pub header: RtpHeader,
    /// The payload, padding removed.
    pub payload: &'a [u8],
    /// Number of padding bytes that were present.
    pub padding: u8,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() > MAX_RTP_LEN {
            return Err(RtpError::TooLarge);
        }
        if buf.len() < 12 {
            return Err(RtpError::Truncated);
        }
        let b0 = buf[0];
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_ext = b0 & 0x10 != 0;
        let cc = (b0 & 0x0f) as usize;
        let marker = buf[1] & 0x80 != 0;
        let payload_type = buf[1] & 0x7f;
        if (72..=76).contains(&payload_type) {
            // RFC 5761 §4: PTs 72-76 (with marker: 200-204) are RTCP.
            return Err(RtpError::RtcpRange(payload_type));
        }
        let sequence = be16(buf, 2).ok_or(RtpError::Truncated)?;
        let timestamp = be32(buf, 4).ok_or(RtpError::Truncated)?;
        let ssrc = be32(buf, 8).ok_or(RtpError::Truncated)?;
        let mut pos = 12;
        let mut csrc = Vec::with_capacity(cc);
        for _ in 0..cc {
            csrc.push(be32(buf, pos).ok_or(RtpError::Truncated)?);
            pos += 4;
        }
        let extension = if has_ext {
            let profile = be16(buf, pos).ok_or(RtpError::Truncated)?;
            let words = be16(buf, pos + 2).ok_or(RtpError::Truncated)? as usize;
            pos += 4;
            let data = buf.get(pos..pos + words * 4).ok_or(RtpError::Truncated)?;
            pos += words * 4;
            Some(HeaderExtension {
                profile,
                data: data.to_vec(),
            })
        } else {
            None
        };
        let mut end = buf.len();
        let mut padding = 0u8;
        if has_padding {
            padding = buf[buf.len() - 1];
            if padding == 0 || (padding as usize) > end - pos {
                return Err(RtpError::BadPadding);
            }
            end -= padding as usize;
        }
        Ok(RtpPacket {
            header: RtpHeader {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
                csrc,
                extension,
            },
            payload: buf.get(pos..end).ok_or(RtpError::Truncated)?,
            padding,
        })
    }
}

impl RtpHeader {
    /// Size of the serialized header.
    pub fn len(&self) -> usize {
        12 + 4 * self.csrc.len().min(15)
            + self
                .extension
                .as_ref()
                .map_or(0, |e| 4 + e.data.len().div_ceil(4) * 4)
    }

    /// Always false: a header has at least 12 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends header and payload to `out`; `padding` bytes of padding (0 = none) are added
    /// (RFC 3550 §5.1). At most 15 CSRCs are written; extension data is zero-padded to a
    /// word boundary.
    pub fn write(&self, payload: &[u8], padding: u8, out: &mut Vec<u8>) {
        let cc = self.csrc.len().min(15);
        let mut b0 = 0x80 | cc as u8;
        if padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out.reserve(self.len() + payload.len() + padding as usize);
        out.push(b0);
        out.push((self.marker as u8) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in self.csrc.iter().take(15) {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some(e) = &self.extension {
            let words = e.data.len().div_ceil(4).min(u16::MAX as usize);
            out.extend_from_slice(&e.profile.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(&e.data[..e.data.len().min(words * 4)]);
            out.resize(start + words * 4, 0);
        }
        out.extend_from_slice(payload);
        if padding > 0 {
            out.resize(out.len() + padding as usize - 1, 0);
            out.push(padding);
        }
    }
}

/// RFC 5761 §4 / RFC 7983: whether a datagram on a muxed port is RTCP (second byte in
/// 192..=223) rather than RTP.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_parse_round_trip() {
        let h = RtpHeader {
            marker: true,
            payload_type: 111,
            sequence: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x1234_5678,
            csrc: vec![1, 2],
            extension: Some(HeaderExtension {
                profile: 0xbede,
                data: vec![0x10, 0xff, 0, 0],
            }),
        };
        let mut buf = Vec::new();
        h.write(b"hello", 3, &mut buf);
        assert_eq!(buf.len(), h.len() + 5 + 3);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.header, h);
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.padding, 3);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::BadVersion(1)));
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p[0] |= 0x20;
        p.push(0);
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::BadPadding));
        // CSRC count larger than the packet
        let mut q = vec![0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(&[0; 8]);
        assert_eq!(RtpPacket::parse(&q), Err(RtpError::Truncated));
        // extension length beyond the end
        let r = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 9];
        assert_eq!(RtpPacket::parse(&r), Err(RtpError::Truncated));
        assert_eq!(
            RtpPacket::parse(&[0x80, 200, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(RtpError::RtcpRange(72))
        );
    }

    #[test]
    fn demux() {
        assert!(is_rtcp(&[0x80, 200]));
        assert!(is_rtcp(&[0x81, 201]));
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80, 111]));
        assert!(!is_rtcp(&[0x80, 0x80 | 111]));
    }
}
