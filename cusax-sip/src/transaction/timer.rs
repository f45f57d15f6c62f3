//! Transaction timers (RFC 3261 §17 and Table 4 of Appendix A, RFC 6026 §8.11).

use std::time::Duration;

/// Timer values. The defaults are those of RFC 3261 Appendix A (T1 = 500 ms, T2 = 4 s,
/// T4 = 5 s) and RFC 6026 (Timers L and M = 64*T1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1: RTT estimate, the first retransmission interval (500 ms).
    pub t1: Duration,
    /// T2: maximum retransmission interval for non-INVITE requests and INVITE
    /// responses (4 s).
    pub t2: Duration,
    /// T4: maximum duration a message remains in the network (5 s).
    pub t4: Duration,
    /// Multiplier of T1 for Timer B (INVITE transaction timeout), 64.
    pub timer_b_multiplier: u32,
    /// Multiplier of T1 for Timer F (non-INVITE transaction timeout), 64.
    pub timer_f_multiplier: u32,
    /// Multiplier of T1 for Timer H (wait time for ACK receipt), 64.
    pub timer_h_multiplier: u32,
    /// Timer D: wait time for response retransmissions on an unreliable transport
    /// (at least 32 s); it is zero on reliable transports.
    pub timer_d: Duration,
    /// How long an INVITE server transaction waits for the TU's first response before
    /// sending `100 Trying` itself (RFC 3261 §17.2.1: 200 ms).
    pub trying_delay: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_b_multiplier: 64,
            timer_f_multiplier: 64,
            timer_h_multiplier: 64,
            timer_d: Duration::from_secs(32),
            trying_delay: Duration::from_millis(200),
        }
    }
}

impl TimerConfig {
    /// Timer A initial value (T1), INVITE request retransmission (unreliable only).
    pub fn timer_a(&self) -> Duration {
        self.t1
    }

    /// Timer B: INVITE client transaction timeout.
    pub fn timer_b(&self) -> Duration {
        self.t1.saturating_mul(self.timer_b_multiplier)
    }

    /// Timer D: wait for response retransmissions (0 on reliable transports).
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_d
        }
    }

    /// Timer E initial value (T1), non-INVITE request retransmission.
    pub fn timer_e(&self) -> Duration {
        self.t1
    }

    /// Timer F: non-INVITE client transaction timeout.
    pub fn timer_f(&self) -> Duration {
        self.t1.saturating_mul(self.timer_f_multiplier)
    }

    /// Timer G initial value (T1), INVITE final response retransmission.
    pub fn timer_g(&self) -> Duration {
        self.t1
    }

    /// Timer H: wait for ACK receipt.
    pub fn timer_h(&self) -> Duration {
        self.t1.saturating_mul(self.timer_h_multiplier)
    }

    /// Timer I: wait for ACK retransmissions (T4, 0 on reliable transports).
    pub fn timer_i(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: wait for non-INVITE request retransmissions (64*T1, 0 on reliable).
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1.saturating_mul(64)
        }
    }

    /// Timer K: wait for non-INVITE response retransmissions (T4, 0 on reliable).
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer L (RFC 6026 §8.11): wait for INVITE retransmissions and ACKs after a 2xx.
    pub fn timer_l(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer M (RFC 6026 §8.11): wait for 2xx retransmissions in the client's Accepted
    /// state.
    pub fn timer_m(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The next Timer A interval: doubles without a cap (RFC 3261 §17.1.1.2).
    pub fn next_a(&self, current: Duration) -> Duration {
        current.saturating_mul(2)
    }

    /// The next Timer E interval in Trying (RFC 3261 §17.1.2.2): `min(2*E, T2)`.
    pub fn next_e(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.t2)
    }

    /// The next Timer G interval (RFC 3261 §17.2.1): `min(2*G, T2)`.
    pub fn next_g(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.t2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_rfc3261_table_4() {
        let c = TimerConfig::default();
        assert_eq!(c.timer_b(), Duration::from_secs(32));
        assert_eq!(c.timer_f(), Duration::from_secs(32));
        assert_eq!(c.timer_h(), Duration::from_secs(32));
        assert_eq!(c.timer_d(false), Duration::from_secs(32));
        assert_eq!(c.timer_d(true), Duration::ZERO);
        assert_eq!(c.timer_i(false), Duration::from_secs(5));
        assert_eq!(c.timer_j(false), Duration::from_secs(32));
        assert_eq!(c.timer_k(true), Duration::ZERO);
        assert_eq!(c.timer_l(), Duration::from_secs(32));
        assert_eq!(c.timer_m(), Duration::from_secs(32));
    }

    #[test]
    fn e_and_g_are_capped_at_t2_but_a_is_not() {
        let c = TimerConfig::default();
        let mut e = c.timer_e();
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(e.as_millis());
            e = c.next_e(e);
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(c.next_g(Duration::from_secs(4)), Duration::from_secs(4));
        assert_eq!(c.next_a(Duration::from_secs(4)), Duration::from_secs(8));
    }
}
