//! Adaptive jitter buffer, pulled once per packet time by the playout side.
//!
//! Packets are indexed by extended sequence number (RFC 3550 A.1). The target delay
//! follows the measured interarrival jitter (an RFC 3550 A.8-style estimate in ms):
//! `target = clamp(ptime + 3·J, min, max)`. On underrun the playout point waits (the
//! caller conceals, delay grows by one frame); when more than `target + 2·ptime` is
//! buffered, one frame is discarded per pull (delay shrinks). The buffered delay never
//! exceeds `max_delay_ms` (older frames are dropped).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// Largest number of packets held.
pub const MAX_PACKETS: usize = 256;

/// Jitter buffer configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Lower bound of the target delay (ms).
    pub min_delay_ms: u32,
    /// Upper bound of the buffered delay (ms).
    pub max_delay_ms: u32,
    /// Packet time (ms).
    pub ptime_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_delay_ms: 40,
            max_delay_ms: 300,
            ptime_ms: 20,
        }
    }
}

/// Counters (cumulative) and the current delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Frames missing at playout time while later packets were present.
    pub lost: u64,
    /// Frames the decoder concealed (PLC or G.711 repeat/fade), incl. underruns.
    pub concealed: u64,
    /// Frames recovered from Opus in-band FEC.
    pub fec_recovered: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// Frames discarded to shrink the delay.
    pub discarded: u64,
    /// Current buffered delay (ms).
    pub current_delay_ms: u32,
    /// Current target delay (ms).
    pub target_delay_ms: u32,
}

/// What to play for the next packet time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Buffering has not started yet: play silence.
    Buffering,
    /// The frame's payload.
    Packet(Vec<u8>),
    /// This sequence number carried no audio (e.g. an RFC 4733 event): play silence.
    Silence,
    /// The frame is missing; `next` is the following packet when it is already here
    /// (usable for Opus FEC). `underrun` is true when nothing later has arrived.
    Missing {
        /// Following packet's payload.
        next: Option<Vec<u8>>,
        /// The buffer ran dry (the playout point did not advance).
        underrun: bool,
    },
}

/// The jitter buffer.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    packets: BTreeMap<u64, Vec<u8>>,
    next_play: Option<u64>,
    highest: Option<u64>,
    played: VecDeque<u64>,
    epoch: Option<(Instant, u64)>,
    last_transit_ms: Option<f64>,
    jitter_ms: f64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// New, empty buffer.
    pub fn new(cfg: JitterConfig) -> Self {
        let cfg = JitterConfig {
            ptime_ms: cfg.ptime_ms.max(1),
            max_delay_ms: cfg.max_delay_ms.max(cfg.min_delay_ms),
            ..cfg
        };
        JitterBuffer {
            cfg,
            packets: BTreeMap::new(),
            next_play: None,
            highest: None,
            played: VecDeque::new(),
            epoch: None,
            last_transit_ms: None,
            jitter_ms: 0.0,
            stats: JitterStats {
                target_delay_ms: cfg.min_delay_ms,
                ..Default::default()
            },
        }
    }

    /// Statistics.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Measured jitter (ms).
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_ms
    }

    /// Mutable counters, for the decoder to record concealment and FEC.
    pub fn stats_mut(&mut self) -> &mut JitterStats {
        &mut self.stats
    }

    fn target_ms(&self) -> u32 {
        let t = self.cfg.ptime_ms as f64 + 3.0 * self.jitter_ms;
        (t as u32).clamp(self.cfg.min_delay_ms, self.cfg.max_delay_ms)
    }

    /// Drops everything (new source or discontinuity).
    pub fn reset(&mut self) {
        self.packets.clear();
        self.next_play = None;
        self.highest = None;
        self.played.clear();
        self.epoch = None;
        self.last_transit_ms = None;
        self.stats.current_delay_ms = 0;
    }

    /// Inserts an audio payload with extended sequence number `seq` arriving at `now`.
    pub fn insert(&mut self, now: Instant, seq: u64, payload: Vec<u8>) {
        self.insert_entry(now, seq, payload);
    }

    /// Marks `seq` as carrying no audio (played as silence, not counted lost).
    pub fn insert_silence(&mut self, now: Instant, seq: u64) {
        self.insert_entry(now, seq, Vec::new());
    }

    fn insert_entry(&mut self, now: Instant, seq: u64, payload: Vec<u8>) {
        if let Some(np) = self.next_play
            && (seq + 1000 < np || seq > np + 1000)
        {
            tracing::debug!(seq, np, "jitter buffer discontinuity, resetting");
            self.reset();
        }
        // jitter estimate (ms), media time = seq * ptime
        let (t0, s0) = *self.epoch.get_or_insert((now, seq));
        let arrival_ms = now.saturating_duration_since(t0).as_secs_f64() * 1000.0;
        let media_ms = (seq as f64 - s0 as f64) * self.cfg.ptime_ms as f64;
        let transit = arrival_ms - media_ms;
        if let Some(prev) = self.last_transit_ms {
            let d = (transit - prev).abs();
            self.jitter_ms += (d - self.jitter_ms) / 16.0;
        }
        self.last_transit_ms = Some(transit);
        self.stats.target_delay_ms = self.target_ms();

        if let Some(np) = self.next_play
            && seq < np
        {
            if self.played.contains(&seq) {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return;
        }
        if self.packets.contains_key(&seq) {
            self.stats.duplicates += 1;
            return;
        }
        self.packets.insert(seq, payload);
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        while self.packets.len() > MAX_PACKETS {
            if let Some((&k, _)) = self.packets.iter().next() {
                self.packets.remove(&k);
                self.stats.discarded += 1;
                if let Some(np) = self.next_play.as_mut() {
                    *np = (*np).max(k + 1);
                }
            }
        }
        self.update_delay();
    }

    fn level(&self) -> u64 {
        match (self.next_play, self.highest) {
            (Some(np), Some(h)) if h >= np => h - np + 1,
            (None, Some(h)) => self.packets.keys().next().map_or(0, |&l| h - l + 1),
            _ => 0,
        }
    }

    fn update_delay(&mut self) {
        self.stats.current_delay_ms =
            (self.level() * self.cfg.ptime_ms as u64).min(u32::MAX as u64) as u32;
    }

    fn mark_played(&mut self, seq: u64) {
        self.played.push_back(seq);
        if self.played.len() > 128 {
            self.played.pop_front();
        }
    }

    /// Takes the frame for the next packet time.
    pub fn pop(&mut self) -> Playout {
        let ptime = self.cfg.ptime_ms as u64;
        let target = self.target_ms() as u64;
        self.stats.target_delay_ms = target as u32;
        let np = match self.next_play {
            Some(np) => np,
            None => {
                // start once the target delay is buffered
                if self.level() * ptime < target {
                    return Playout::Buffering;
                }
                match self.packets.keys().next() {
                    Some(&first) => {
                        self.next_play = Some(first);
                        first
                    }
                    None => return Playout::Buffering,
                }
            }
        };
        let mut np = np;
        // shrink: hard cap at max, gently above target + 2 frames
        let max = self.cfg.max_delay_ms as u64;
        loop {
            let level = self.level();
            let too_big =
                level * ptime > max || (level * ptime > target + 2 * ptime && self.discard_ok(np));
            if !too_big {
                break;
            }
            if self.packets.remove(&np).is_some() {
                self.stats.discarded += 1;
                self.mark_played(np);
            }
            np += 1;
            self.next_play = Some(np);
            if level * ptime <= max {
                break; // only one gentle discard per pull
            }
        }
        let out = if let Some(p) = self.packets.remove(&np) {
            self.mark_played(np);
            self.next_play = Some(np + 1);
            if p.is_empty() {
                Playout::Silence
            } else {
                Playout::Packet(p)
            }
        } else if self.highest.is_some_and(|h| h > np) {
            self.stats.lost += 1;
            self.next_play = Some(np + 1);
            let next = self
                .packets
                .get(&(np + 1))
                .filter(|p| !p.is_empty())
                .cloned();
            Playout::Missing {
                next,
                underrun: false,
            }
        } else {
            Playout::Missing {
                next: None,
                underrun: true,
            }
        };
        self.update_delay();
        out
    }

    fn discard_ok(&self, np: u64) -> bool {
        // Prefer to discard silence placeholders or frames whose neighbour is present.
        self.packets.contains_key(&np)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> JitterConfig {
        JitterConfig {
            min_delay_ms: 40,
            max_delay_ms: 200,
            ptime_ms: 20,
        }
    }

    #[test]
    fn reorders_and_drops_duplicates() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        for (i, s) in [1u64, 3, 2, 2, 4].iter().enumerate() {
            jb.insert(t + Duration::from_millis(20 * i as u64), *s, vec![*s as u8]);
        }
        assert_eq!(jb.stats().duplicates, 1);
        let mut got = Vec::new();
        for _ in 0..4 {
            if let Playout::Packet(p) = jb.pop() {
                got.push(p[0]);
            }
        }
        assert_eq!(got, vec![1, 2, 3, 4]);
        jb.insert(t + Duration::from_millis(100), 2, vec![2]);
        assert_eq!(jb.stats().duplicates, 2);
        assert_eq!(
            jb.pop(),
            Playout::Missing {
                next: None,
                underrun: true
            }
        );
    }

    #[test]
    fn gap_offers_next_packet_and_counts_late() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        let ms = |m| t + Duration::from_millis(m);
        jb.insert(ms(0), 10, vec![10]);
        jb.insert(ms(20), 11, vec![11]);
        assert_eq!(jb.pop(), Playout::Packet(vec![10]));
        jb.insert(ms(60), 13, vec![13]);
        assert_eq!(jb.pop(), Playout::Packet(vec![11]));
        jb.insert(ms(80), 14, vec![14]);
        assert_eq!(
            jb.pop(),
            Playout::Missing {
                next: Some(vec![13]),
                underrun: false
            }
        );
        jb.insert(t + Duration::from_millis(100), 12, vec![12]);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().lost, 1);
        assert_eq!(jb.pop(), Playout::Packet(vec![13]));
    }

    #[test]
    fn buffers_before_start_and_stays_bounded() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        jb.insert(t, 0, vec![0]);
        assert_eq!(jb.pop(), Playout::Buffering);
        jb.insert(t + Duration::from_millis(20), 1, vec![1]);
        assert_eq!(jb.pop(), Playout::Packet(vec![0]));
        // a burst of 30 packets: delay is capped at max
        for s in 2..32u64 {
            jb.insert(t + Duration::from_millis(40), s, vec![s as u8]);
        }
        jb.pop();
        assert!(jb.stats().current_delay_ms <= 200, "{:?}", jb.stats());
        // and then shrinks towards the target
        for _ in 0..20 {
            jb.pop();
        }
        assert!(jb.stats().discarded > 0);
        // silence placeholder
        let mut jb = JitterBuffer::new(cfg());
        jb.insert(t, 0, vec![0]);
        jb.insert_silence(t, 1);
        jb.insert(t, 2, vec![2]);
        assert_eq!(jb.pop(), Playout::Packet(vec![0]));
        assert_eq!(jb.pop(), Playout::Silence);
    }

    #[test]
    fn target_follows_jitter() {
        let t = Instant::now();
        let mut jb = JitterBuffer::new(cfg());
        for s in 0..200u64 {
            let extra = if s % 2 == 0 { 0 } else { 50 };
            jb.insert(t + Duration::from_millis(20 * s + extra), s, vec![1]);
            jb.pop();
        }
        // |D| = 50 ms each time -> J ≈ 50 -> target = 20 + 150 = 170
        assert!(jb.stats().target_delay_ms > 150, "{:?}", jb.stats());
        assert!(jb.stats().target_delay_ms <= 200);
    }
}
