//! Receive statistics of one source: RFC 3550 Appendix A.1 (sequence validation,
//! extended sequence numbers), A.3 (loss), A.8 (interarrival jitter).

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u8 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What a sequence number did to the source state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// Valid; the extended sequence number.
    Valid(u64),
    /// The source is still on probation (A.1); not yet valid.
    Probation,
    /// A very large jump; if the next packet continues from it the source restarted.
    BadJump,
    /// A duplicate or a reordered packet older than the highest seen; extended number given.
    Old(u64),
}

/// Per-source reception state.
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    // jitter (A.8), in timestamp units, scaled by 16 as in the RFC's integer version
    jitter_q4: u64,
    transit: Option<i64>,
}

impl ReceptionStats {
    /// Starts tracking a source whose first packet has sequence `seq` (A.1 `init_seq` and
    /// probation).
    pub fn new(seq: u16) -> Self {
        let mut s = ReceptionStats {
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: seq as u32,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            transit: None,
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u32;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1 `update_seq`.
    pub fn update_seq(&mut self, seq: u16) -> SeqOutcome {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqOutcome::Valid(self.extended_max());
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqOutcome::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if udelta as u32 <= RTP_SEQ_MOD - MAX_MISORDER as u32 {
            if seq as u32 == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (seq as u32 + 1) & (RTP_SEQ_MOD - 1);
                return SeqOutcome::BadJump;
            }
        } else {
            // duplicate or reordered
            self.received += 1;
            let ext = self.extend(seq);
            return SeqOutcome::Old(ext);
        }
        self.received += 1;
        SeqOutcome::Valid(self.extended_max())
    }

    fn extend(&self, seq: u16) -> u64 {
        // the packet is older than max_seq: it may belong to the previous cycle
        let cycles = if seq > self.max_seq && self.cycles >= RTP_SEQ_MOD {
            self.cycles - RTP_SEQ_MOD
        } else {
            self.cycles
        };
        cycles as u64 + seq as u64
    }

    /// Highest extended sequence number received.
    pub fn extended_max(&self) -> u64 {
        self.cycles as u64 + self.max_seq as u64
    }

    /// A.8: updates the jitter with a packet's RTP timestamp and its arrival time expressed
    /// in the same clock units.
    pub fn update_jitter(&mut self, rtp_ts: u32, arrival_ts: u32) {
        let transit = arrival_ts.wrapping_sub(rtp_ts) as i32 as i64;
        if let Some(prev) = self.transit {
            let d = (transit - prev).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16 (A.8 integer form).
            let j = self.jitter_q4 as i64;
            let nj = j + d as i64 - ((j + 8) >> 4);
            self.jitter_q4 = nj.max(0) as u64;
        }
        self.transit = Some(transit);
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u32::MAX as u64) as u32
    }

    /// Packets received (including duplicates, as in A.3).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Expected packets (A.3).
    pub fn expected(&self) -> u64 {
        self.extended_max().saturating_sub(self.base_seq as u64) + 1
    }

    /// Cumulative lost (A.3), clamped to the 24-bit signed field range.
    pub fn cumulative_lost(&self) -> i32 {
        let lost = self.expected() as i64 - self.received as i64;
        lost.clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// Fraction lost since the previous call, as the 8-bit fixed-point of A.3; advances
    /// the interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        }
    }

    /// Whether the source left probation.
    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &mut ReceptionStats, seq: u16) -> u64 {
        match s.update_seq(seq) {
            SeqOutcome::Valid(e) => e,
            o => panic!("seq {seq}: {o:?}"),
        }
    }

    #[test]
    fn probation_then_wraparound() {
        let mut s = ReceptionStats::new(65533);
        assert_eq!(s.update_seq(65533), SeqOutcome::Probation);
        assert_eq!(valid(&mut s, 65534), 65534);
        assert_eq!(valid(&mut s, 65535), 65535);
        assert_eq!(valid(&mut s, 0), 65536);
        assert_eq!(valid(&mut s, 2), 65538); // 1 lost
        assert_eq!(s.update_seq(1), SeqOutcome::Old(65537));
        assert_eq!(s.update_seq(65535), SeqOutcome::Old(65535));
        assert_eq!(s.expected(), 5);
        assert_eq!(s.received(), 6);
        assert_eq!(s.cumulative_lost(), -1);
    }

    #[test]
    fn loss_and_fraction() {
        let mut s = ReceptionStats::new(100);
        s.update_seq(100);
        for q in 101..=200u16 {
            if q % 4 != 2 {
                s.update_seq(q);
            }
        }
        // 101..=200 minus the 25 numbers = 2 mod 4 (100 was the probation packet)
        assert_eq!(s.expected(), 100);
        assert_eq!(s.cumulative_lost(), 25);
        assert_eq!(s.take_fraction_lost(), 64); // 25% of 256
        assert_eq!(s.take_fraction_lost(), 0);
    }

    #[test]
    fn restart_after_jump() {
        let mut s = ReceptionStats::new(10);
        s.update_seq(10);
        valid(&mut s, 11);
        assert_eq!(s.update_seq(30000), SeqOutcome::BadJump);
        assert_eq!(valid(&mut s, 30001), 30001);
        assert_eq!(s.expected(), 1);
    }

    #[test]
    fn jitter_follows_a8() {
        let mut s = ReceptionStats::new(0);
        // Packets every 160 ts units, arrivals alternate +0/+80: |D| = 80 each time.
        for i in 0..200u32 {
            let arrival = i * 160 + if i % 2 == 1 { 80 } else { 0 };
            s.update_jitter(i * 160, arrival);
        }
        // J converges to |D| = 80.
        assert!((78..=80).contains(&s.jitter()), "{}", s.jitter());
    }
}
