//! RFC 4733 telephone-events (DTMF): sender and receiver.
//!
//! Payload (§2.3): `event(8) | E(1) R(1) volume(6) | duration(16)`. The sender keeps the
//! event's start timestamp on every packet, sets the marker on the first, raises the
//! duration each packet time and repeats the final (E) packet three times (§2.5.1.4).
//! The receiver reports each event once, when its end arrives, de-duplicating by timestamp.

/// Maps a DTMF digit to its event code (§3.2): `0-9` → 0-9, `*` → 10, `#` → 11,
/// `A-D` → 12-15.
pub fn event_code(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// Inverse of [`event_code`].
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One telephone-event packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Set on the first packet of the event.
    pub marker: bool,
    /// The event's start timestamp.
    pub timestamp: u32,
    /// The 4-byte payload.
    pub payload: [u8; 4],
}

/// Sends one event.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: u8,
    start_ts: u32,
    total: u32,
    step: u32,
    sent: u32,
    ends_left: u8,
    first: bool,
}

/// Volume in −dBm0 written into event packets.
pub const VOLUME: u8 = 10;

impl DtmfSender {
    /// An event of `duration` samples (capped at 65535) starting at RTP timestamp
    /// `start_ts`, advancing `packet_samples` per packet.
    pub fn new(event: u8, start_ts: u32, duration: u32, packet_samples: u32) -> Self {
        DtmfSender {
            event,
            start_ts,
            total: duration.clamp(1, 0xffff),
            step: packet_samples.max(1),
            sent: 0,
            ends_left: 3,
            first: true,
        }
    }

    /// Whether all packets, including the three end packets, were produced.
    pub fn is_done(&self) -> bool {
        self.ends_left == 0
    }

    /// The event's total duration in samples.
    pub fn duration(&self) -> u32 {
        self.total
    }

    /// The next packet (one per packet time), `None` when done.
    pub fn next_packet(&mut self) -> Option<EventPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let end;
        if self.sent < self.total {
            self.sent = (self.sent + self.step).min(self.total);
            end = self.sent >= self.total;
        } else {
            end = true;
        }
        if end {
            self.ends_left -= 1;
        }
        let marker = std::mem::take(&mut self.first);
        let d = (self.sent as u16).to_be_bytes();
        Some(EventPacket {
            marker,
            timestamp: self.start_ts,
            payload: [self.event, if end { 0x80 } else { 0 } | VOLUME, d[0], d[1]],
        })
    }
}

/// A received DTMF event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The digit (`None` for non-DTMF events such as flash, 16).
    pub digit: Option<char>,
    /// The event code.
    pub event: u8,
    /// Duration in RTP clock units.
    pub duration: u32,
}

/// Receives events.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    current: Option<(u32, u8, u32)>,
    reported: Option<u32>,
}

impl DtmfReceiver {
    /// New receiver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Processes one event packet (RTP timestamp and payload). Reports each event once:
    /// when its end first arrives, or, when its end packets were all lost, when a packet
    /// of the next event arrives. One packet can therefore complete two events (the
    /// previous one, whose end was lost, and this one, when it is an end packet); both
    /// are returned, oldest first.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> DtmfReports {
        let mut out = DtmfReports::default();
        let [event, flags, d0, d1, ..] = *payload else {
            return out;
        };
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]) as u32;
        if self.reported == Some(timestamp) {
            return out; // redundant end packet
        }
        if let Some((ts, ev, dur)) = self.current
            && ts != timestamp
        {
            // the previous event's end never came
            self.reported = Some(ts);
            out.push(DtmfEvent {
                digit: digit_of(ev),
                event: ev,
                duration: dur,
            });
            self.current = None;
        }
        if end {
            self.current = None;
            self.reported = Some(timestamp);
            out.push(DtmfEvent {
                digit: digit_of(event),
                event,
                duration,
            });
            return out;
        }
        let cur_dur = self.current.map_or(0, |c| c.2);
        self.current = Some((timestamp, event, duration.max(cur_dur)));
        out
    }
}

/// The events one packet completed (zero, one or two), oldest first; an iterator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DtmfReports {
    events: [Option<DtmfEvent>; 2],
    next: usize,
}

impl DtmfReports {
    fn push(&mut self, e: DtmfEvent) {
        if let Some(slot) = self.events.iter_mut().find(|s| s.is_none()) {
            *slot = Some(e);
        }
    }
}

impl Iterator for DtmfReports {
    type Item = DtmfEvent;
    fn next(&mut self) -> Option<DtmfEvent> {
        let e = self.events.get_mut(self.next)?.take();
        self.next += 1;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for (c, e) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('A', 12),
            ('D', 15),
        ] {
            assert_eq!(event_code(c), Some(e));
            assert_eq!(digit_of(e), Some(c));
        }
        assert_eq!(event_code('x'), None);
        assert_eq!(digit_of(16), None);
    }

    #[test]
    fn sender_sequence() {
        // 100 ms at 8 kHz, 20 ms packets: 5 packets growing to 800, the last with E,
        // then two more E repeats.
        let mut s = DtmfSender::new(5, 1000, 800, 160);
        let pk: Vec<_> = std::iter::from_fn(|| s.next_packet()).collect();
        assert_eq!(pk.len(), 7);
        assert!(pk[0].marker && pk[1..].iter().all(|p| !p.marker));
        assert!(pk.iter().all(|p| p.timestamp == 1000));
        let durs: Vec<u16> = pk
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
            .collect();
        assert_eq!(durs, vec![160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pk.iter().map(|p| p.payload[1] & 0x80 != 0).collect();
        assert_eq!(ends, vec![false, false, false, false, true, true, true]);
        assert!(s.is_done());
    }

    #[test]
    fn receiver_dedupes_and_recovers_lost_end() {
        let mut s = DtmfSender::new(11, 5000, 480, 160);
        let mut r = DtmfReceiver::new();
        let got: Vec<_> = std::iter::from_fn(|| s.next_packet())
            .flat_map(|p| r.on_packet(p.timestamp, &p.payload))
            .collect();
        assert_eq!(
            got,
            vec![DtmfEvent {
                digit: Some('#'),
                event: 11,
                duration: 480
            }]
        );
        // event whose end packets are all lost, followed by another event
        assert_eq!(r.on_packet(9000, &[1, 10, 0, 160]).next(), None);
        assert_eq!(r.on_packet(9000, &[1, 10, 1, 64]).next(), None);
        assert_eq!(
            r.on_packet(20000, &[2, 10, 0, 160]).collect::<Vec<_>>(),
            vec![DtmfEvent {
                digit: Some('1'),
                event: 1,
                duration: 320
            }]
        );
        assert_eq!(r.on_packet(1, &[1, 2]).next(), None);
    }

    #[test]
    fn lost_end_and_next_end_in_one_packet_reports_both_in_order() {
        let mut r = DtmfReceiver::new();
        // '4' starts, its end packets are all lost
        assert_eq!(r.on_packet(1000, &[4, 10, 0, 160]).next(), None);
        assert_eq!(r.on_packet(1000, &[4, 10, 1, 64]).next(), None);
        // the first packet that arrives of '7' is already an end packet (e.g. a short
        // digit whose earlier packets were lost): both events are reported, '4' first
        let got: Vec<_> = r.on_packet(3000, &[7, 0x80 | 10, 1, 224]).collect();
        assert_eq!(
            got,
            vec![
                DtmfEvent {
                    digit: Some('4'),
                    event: 4,
                    duration: 320
                },
                DtmfEvent {
                    digit: Some('7'),
                    event: 7,
                    duration: 480
                }
            ]
        );
        // the redundant end repeats of '7' report nothing
        assert_eq!(r.on_packet(3000, &[7, 0x80 | 10, 1, 224]).next(), None);
    }
}
