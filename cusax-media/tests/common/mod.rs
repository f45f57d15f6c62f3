//! Test support: negotiation helpers and a simulated network with a fake clock.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cusax_media::sdp::SessionDescription;
use cusax_media::sdp::offer_answer::{MediaConfig, Negotiated, OfferAnswer};
use cusax_media::session::{Input, MediaEvent, MediaSession, Output, SessionConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const ALICE: &str = "192.0.2.1:40000";
pub const BOB: &str = "192.0.2.2:50000";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Runs offer (alice) / answer (bob) through SDP text, as a SIP stack would.
pub fn negotiate(
    a: MediaConfig,
    b: MediaConfig,
    seed: u64,
) -> (OfferAnswer, OfferAnswer, Negotiated, Negotiated) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut oa_a = OfferAnswer::new(a, &mut rng);
    let mut oa_b = OfferAnswer::new(b, &mut rng);
    let offer = oa_a.create_offer(true).unwrap().to_string();
    let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
    let (answer, nb) = oa_b.answer_offer(&offer, true).unwrap();
    let answer = SessionDescription::parse(answer.to_string().as_bytes()).unwrap();
    let na = oa_a.accept_answer(&answer, true).unwrap();
    (oa_a, oa_b, na, nb)
}

pub fn sine(rate: u32, freq: f64, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            ((i as f64 * freq * 2.0 * std::f64::consts::PI / rate as f64).sin() * 9000.0) as i16
        })
        .collect()
}

pub struct Net {
    pub rng: StdRng,
    pub loss: f64,
    pub jitter_ms: u64,
    pub in_flight: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    pub sent: Vec<(SocketAddr, Vec<u8>)>,
}

impl Net {
    pub fn new(seed: u64, loss: f64, jitter_ms: u64) -> Self {
        Net {
            rng: StdRng::seed_from_u64(seed),
            loss,
            jitter_ms,
            in_flight: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Drains a session's outputs into the network; returns its events.
    pub fn drain(
        &mut self,
        s: &mut MediaSession,
        from: SocketAddr,
        now: Instant,
    ) -> Vec<MediaEvent> {
        let mut ev = Vec::new();
        while let Some(o) = s.poll_output() {
            match o {
                Output::Transmit { dest, data } => {
                    self.sent.push((dest, data.clone()));
                    if self.rng.random_bool(self.loss) {
                        continue;
                    }
                    let delay = if self.jitter_ms > 0 {
                        self.rng.random_range(0..=self.jitter_ms)
                    } else {
                        0
                    };
                    self.in_flight
                        .push((now + Duration::from_millis(5 + delay), from, dest, data));
                }
                Output::Event(e) => ev.push(e),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        ev
    }

    /// Delivers due datagrams addressed to `to`.
    pub fn deliver(&mut self, s: &mut MediaSession, to: SocketAddr, now: Instant) {
        let mut due = Vec::new();
        self.in_flight.retain(|(at, from, dest, data)| {
            if *at <= now && *dest == to {
                due.push((*at, *from, data.clone()));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|d| d.0);
        for (_, from, data) in due {
            s.handle_input(
                now,
                Input::Datagram {
                    data: &data,
                    source: from,
                },
            );
        }
    }
}

pub fn sessions(na: &Negotiated, nb: &Negotiated, app_rate: u32) -> (MediaSession, MediaSession) {
    let mut ca = SessionConfig::new(na.audio.clone(), 0x1111_1111, 1);
    ca.app_rate = app_rate;
    let mut cb = SessionConfig::new(nb.audio.clone(), 0x2222_2222, 2);
    cb.app_rate = app_rate;
    (
        MediaSession::new(ca).unwrap(),
        MediaSession::new(cb).unwrap(),
    )
}
