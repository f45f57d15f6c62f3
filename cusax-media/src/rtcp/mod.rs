//! RTCP (RFC 3550 §6): SR, RR, SDES, BYE, compound packets; other types kept opaque.

/// Largest RTCP compound packet accepted.
pub const MAX_RTCP_LEN: usize = 1500 * 2;
/// Largest number of packets in one compound.
pub const MAX_PACKETS: usize = 32;

/// Why bytes are not valid RTCP (the sender's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Too short for the header or the length field.
    #[error("RTCP packet truncated")]
    Truncated,
    /// Version is not 2.
    #[error("RTCP version {0} is not 2")]
    BadVersion(u8),
    /// Bigger than [`MAX_RTCP_LEN`] or more than [`MAX_PACKETS`] packets.
    #[error("RTCP compound too large")]
    TooLarge,
    /// Body inconsistent with the count field or bad padding.
    #[error("malformed RTCP {0} packet")]
    Malformed(&'static str),
}

/// A report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// Source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the last report (x/256).
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter (timestamp units).
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from that source.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// Sender info of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit).
    pub ntp: u64,
    /// RTP timestamp corresponding to `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One SDES chunk (RFC 3550 §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// Source.
    pub ssrc: u32,
    /// `(item type, value)`; type 1 is CNAME.
    pub items: Vec<(u8, Vec<u8>)>,
}

impl SdesChunk {
    /// The CNAME item, when present and UTF-8.
    pub fn cname(&self) -> Option<&str> {
        self.items
            .iter()
            .find(|(t, _)| *t == 1)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// One RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket {
    /// Sender report (PT 200).
    SenderReport {
        /// Sender SSRC.
        ssrc: u32,
        /// Sender info.
        info: SenderInfo,
        /// Report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report (PT 201).
    ReceiverReport {
        /// Reporter SSRC.
        ssrc: u32,
        /// Report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Source description (PT 202).
    Sdes(Vec<SdesChunk>),
    /// Goodbye (PT 203).
    Bye {
        /// Sources leaving.
        ssrcs: Vec<u32>,
        /// Optional reason.
        reason: Option<String>,
    },
    /// Any other type, kept opaque.
    Other {
        /// Packet type.
        pt: u8,
        /// The 5-bit count/subtype field.
        count: u8,
        /// Body after the 4-byte header.
        body: Vec<u8>,
    },
}

fn be32(b: &[u8], at: usize) -> Result<u32, RtcpError> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(RtcpError::Truncated),
    }
}

fn parse_reports(b: &[u8], mut at: usize, count: usize) -> Result<Vec<ReportBlock>, RtcpError> {
    let mut v = Vec::with_capacity(count);
    for _ in 0..count {
        let ssrc = be32(b, at)?;
        let w = be32(b, at + 4)?;
        let lost24 = (w & 0x00ff_ffff) as i32;
        let cumulative_lost = if lost24 & 0x80_0000 != 0 {
            lost24 - 0x100_0000
        } else {
            lost24
        };
        v.push(ReportBlock {
            ssrc,
            fraction_lost: (w >> 24) as u8,
            cumulative_lost,
            highest_seq: be32(b, at + 8)?,
            jitter: be32(b, at + 12)?,
            lsr: be32(b, at + 16)?,
            dlsr: be32(b, at + 20)?,
        });
        at += 24;
    }
    Ok(v)
}

/// Parses an RTCP compound packet (RFC 3550 §6.1). Padding is only allowed on the last
/// packet (A.2).
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.len() > MAX_RTCP_LEN {
        return Err(RtcpError::TooLarge);
    }
    if buf.len() < 4 {
        return Err(RtcpError::Truncated);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        if out.len() >= MAX_PACKETS {
            return Err(RtcpError::TooLarge);
        }
        let hdr = buf.get(pos..pos + 4).ok_or(RtcpError::Truncated)?;
        let version = hdr[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let padding = hdr[0] & 0x20 != 0;
        let count = hdr[0] & 0x1f;
        let pt = hdr[1];
        let len = (u16::from_be_bytes([hdr[2], hdr[3]]) as usize + 1) * 4;
        let pkt = buf.get(pos..pos + len).ok_or(RtcpError::Truncated)?;
        pos += len;
        let mut body_end = len;
        if padding {
            if pos != buf.len() {
                return Err(RtcpError::Malformed("padding"));
            }
            let p = pkt[len - 1] as usize;
            if p == 0 || p > len - 4 {
                return Err(RtcpError::Malformed("padding"));
            }
            body_end -= p;
        }
        let body = &pkt[..body_end];
        out.push(parse_one(pt, count, body)?);
    }
    Ok(out)
}

fn parse_one(pt: u8, count: u8, p: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let count_us = count as usize;
    Ok(match pt {
        200 => {
            if p.len() < 28 + 24 * count_us {
                return Err(RtcpError::Malformed("SR"));
            }
            let ntp = (be32(p, 8)? as u64) << 32 | be32(p, 12)? as u64;
            RtcpPacket::SenderReport {
                ssrc: be32(p, 4)?,
                info: SenderInfo {
                    ntp,
                    rtp_timestamp: be32(p, 16)?,
                    packet_count: be32(p, 20)?,
                    octet_count: be32(p, 24)?,
                },
                reports: parse_reports(p, 28, count_us)?,
            }
        }
        201 => {
            if p.len() < 8 + 24 * count_us {
                return Err(RtcpError::Malformed("RR"));
            }
            RtcpPacket::ReceiverReport {
                ssrc: be32(p, 4)?,
                reports: parse_reports(p, 8, count_us)?,
            }
        }
        202 => {
            let mut chunks = Vec::with_capacity(count_us);
            let mut at = 4;
            for _ in 0..count_us {
                let ssrc = be32(p, at)?;
                at += 4;
                let mut items = Vec::new();
                loop {
                    let t = *p.get(at).ok_or(RtcpError::Malformed("SDES"))?;
                    if t == 0 {
                        // end of list; skip to the next 32-bit boundary
                        at = (at + 4) & !3;
                        break;
                    }
                    let l = *p.get(at + 1).ok_or(RtcpError::Malformed("SDES"))? as usize;
                    let v = p
                        .get(at + 2..at + 2 + l)
                        .ok_or(RtcpError::Malformed("SDES"))?;
                    if items.len() >= 16 {
                        return Err(RtcpError::Malformed("SDES"));
                    }
                    items.push((t, v.to_vec()));
                    at += 2 + l;
                }
                chunks.push(SdesChunk { ssrc, items });
            }
            RtcpPacket::Sdes(chunks)
        }
        203 => {
            let mut ssrcs = Vec::with_capacity(count_us);
            for i in 0..count_us {
                ssrcs.push(be32(p, 4 + 4 * i).map_err(|_| RtcpError::Malformed("BYE"))?);
            }
            let at = 4 + 4 * count_us;
            let reason = match p.get(at) {
                Some(&l) => {
                    let r = p
                        .get(at + 1..at + 1 + l as usize)
                        .ok_or(RtcpError::Malformed("BYE"))?;
                    Some(String::from_utf8_lossy(r).into_owned())
                }
                None => None,
            };
            RtcpPacket::Bye { ssrcs, reason }
        }
        _ => RtcpPacket::Other {
            pt,
            count,
            body: p.get(4..).unwrap_or_default().to_vec(),
        },
    })
}

fn header(out: &mut Vec<u8>, count: u8, pt: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0x80 | (count & 0x1f), pt, 0, 0]);
    at
}

fn finish(out: &mut Vec<u8>, at: usize) {
    while !(out.len() - at).is_multiple_of(4) {
        out.push(0);
    }
    let words = ((out.len() - at) / 4 - 1) as u16;
    out[at + 2..at + 4].copy_from_slice(&words.to_be_bytes());
}

fn write_reports(out: &mut Vec<u8>, reports: &[ReportBlock]) {
    for r in reports.iter().take(31) {
        out.extend_from_slice(&r.ssrc.to_be_bytes());
        let lost = (r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        out.extend_from_slice(&((r.fraction_lost as u32) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&r.highest_seq.to_be_bytes());
        out.extend_from_slice(&r.jitter.to_be_bytes());
        out.extend_from_slice(&r.lsr.to_be_bytes());
        out.extend_from_slice(&r.dlsr.to_be_bytes());
    }
}

impl RtcpPacket {
    /// Appends the serialized packet to `out`. Lists longer than the 5-bit count allows
    /// are truncated to 31 entries.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            } => {
                let at = header(out, reports.len().min(31) as u8, 200);
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.extend_from_slice(&info.ntp.to_be_bytes());
                out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&info.packet_count.to_be_bytes());
                out.extend_from_slice(&info.octet_count.to_be_bytes());
                write_reports(out, reports);
                finish(out, at);
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                let at = header(out, reports.len().min(31) as u8, 201);
                out.extend_from_slice(&ssrc.to_be_bytes());
                write_reports(out, reports);
                finish(out, at);
            }
            RtcpPacket::Sdes(chunks) => {
                let at = header(out, chunks.len().min(31) as u8, 202);
                for c in chunks.iter().take(31) {
                    out.extend_from_slice(&c.ssrc.to_be_bytes());
                    for (t, v) in &c.items {
                        let l = v.len().min(255);
                        out.push(*t);
                        out.push(l as u8);
                        out.extend_from_slice(&v[..l]);
                    }
                    // null terminator plus padding to a word boundary (at least one zero)
                    out.push(0);
                    while !(out.len() - at).is_multiple_of(4) {
                        out.push(0);
                    }
                }
                finish(out, at);
            }
            RtcpPacket::Bye { ssrcs, reason } => {
                let at = header(out, ssrcs.len().min(31) as u8, 203);
                for s in ssrcs.iter().take(31) {
                    out.extend_from_slice(&s.to_be_bytes());
                }
                if let Some(r) = reason {
                    let l = r.len().min(255);
                    out.push(l as u8);
                    out.extend_from_slice(&r.as_bytes()[..l]);
                }
                finish(out, at);
            }
            RtcpPacket::Other { pt, count, body } => {
                let at = header(out, *count, *pt);
                out.extend_from_slice(body);
                finish(out, at);
            }
        }
    }
}

/// Serializes a compound packet.
pub fn write_compound(packets: &[RtcpPacket]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for p in packets {
        p.write(&mut out);
    }
    out
}

/// The middle 32 bits of a 64-bit NTP timestamp (RFC 3550 §6.4.1 LSR).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block received at NTP time `now_ntp` (RFC 3550 §6.4.1):
/// `A - LSR - DLSR`, in 1/65536 s; `None` when no SR was reported yet or the result is
/// negative.
pub fn rtt_from_report(now_ntp: u64, block: &ReportBlock) -> Option<std::time::Duration> {
    if block.lsr == 0 {
        return None;
    }
    let a = ntp_middle(now_ntp);
    let rtt = a.checked_sub(block.lsr)?.checked_sub(block.dlsr)?;
    Some(std::time::Duration::from_micros(
        (rtt as u64 * 1_000_000) >> 16,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_round_trip() {
        let pk = vec![
            RtcpPacket::SenderReport {
                ssrc: 7,
                info: SenderInfo {
                    ntp: 0x0102_0304_0506_0708,
                    rtp_timestamp: 9,
                    packet_count: 10,
                    octet_count: 11,
                },
                reports: vec![ReportBlock {
                    ssrc: 8,
                    fraction_lost: 64,
                    cumulative_lost: -3,
                    highest_seq: 70000,
                    jitter: 12,
                    lsr: 13,
                    dlsr: 14,
                }],
            },
            RtcpPacket::ReceiverReport {
                ssrc: 7,
                reports: vec![],
            },
            RtcpPacket::Sdes(vec![SdesChunk {
                ssrc: 7,
                items: vec![(1, b"alice@example.com".to_vec())],
            }]),
            RtcpPacket::Bye {
                ssrcs: vec![7],
                reason: Some("bye".into()),
            },
            RtcpPacket::Other {
                pt: 204,
                count: 1,
                body: vec![1, 2, 3, 4],
            },
        ];
        let buf = write_compound(&pk);
        assert_eq!(buf.len() % 4, 0);
        let back = parse_compound(&buf).unwrap();
        assert_eq!(back, pk);
        let RtcpPacket::Sdes(c) = &back[2] else {
            unreachable!()
        };
        assert_eq!(c[0].cname(), Some("alice@example.com"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_compound(&[0x80, 200]), Err(RtcpError::Truncated));
        assert_eq!(
            parse_compound(&[0x40, 200, 0, 0]),
            Err(RtcpError::BadVersion(1))
        );
        // length field beyond the buffer
        assert_eq!(
            parse_compound(&[0x80, 201, 0, 5, 0, 0, 0, 1]),
            Err(RtcpError::Truncated)
        );
        // RR claiming one block with no room for it
        assert_eq!(
            parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Malformed("RR"))
        );
        // SDES item longer than the packet
        assert_eq!(
            parse_compound(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, 0, 0]),
            Err(RtcpError::Malformed("SDES"))
        );
    }

    #[test]
    fn rtt() {
        let b = ReportBlock {
            lsr: 0x0001_0000,
            dlsr: 0x0000_8000,
            ..Default::default()
        };
        // now = 2.0 s in the middle-32 representation -> 2.0 - 1.0 - 0.5 = 0.5 s
        let now = 0x0002_0000u64 << 16;
        assert_eq!(
            rtt_from_report(now, &b),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(rtt_from_report(now, &ReportBlock::default()), None);
    }
}
