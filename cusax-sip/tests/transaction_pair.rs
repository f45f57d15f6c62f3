//! Two transaction layers over a simulated UDP network with a fake clock (quinn's
//! `Pair` style): seeded loss, random delay (hence reordering) and duplication. Every
//! client transaction must end with exactly one final response reaching its TU, every
//! request must reach the server TU exactly once, and the layers must end empty.
//! Also: mutated messages never panic the layer nor leave state behind.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::msg::{Request, Response, SipMessage};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transport, new_branch,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const A: &str = "127.0.0.1:5070";
const B: &str = "127.0.0.1:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Packet {
    at: Instant,
    seq: u64,
    to_b: bool,
    data: Bytes,
}

struct Net {
    rng: StdRng,
    loss: f64,
    dup: f64,
    in_flight: Vec<Packet>,
    seq: u64,
    dropped: usize,
}

impl Net {
    fn send(&mut self, now: Instant, to_b: bool, data: Bytes) {
        let copies = if self.rng.random_bool(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            if self.rng.random_bool(self.loss) {
                self.dropped += 1;
                continue;
            }
            let delay = Duration::from_millis(self.rng.random_range(5..150));
            self.seq += 1;
            self.in_flight.push(Packet {
                at: now + delay,
                seq: self.seq,
                to_b,
                data: data.clone(),
            });
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.in_flight.iter().map(|p| p.at).min()
    }

    fn pop_due(&mut self, now: Instant) -> Option<Packet> {
        let i = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, p)| p.at <= now)
            .min_by_key(|(_, p)| (p.at, p.seq))
            .map(|(i, _)| i)?;
        Some(self.in_flight.swap_remove(i))
    }
}

fn request(method: &str, n: u32, rng: &mut StdRng) -> Request {
    let branch = new_branch(rng);
    let text = format!(
        "{method} sip:bob@cusax.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {A};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@cusax.test>;tag=a{n}\r\n\
         To: <sip:bob@cusax.test>\r\n\
         Call-ID: pair-{n}@cusax.test\r\n\
         CSeq: {n} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match SipMessage::parse(Bytes::from(text)).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

fn response(req: &Request, status: u16) -> Response {
    let mut r = Response::new(status, "Test");
    for via in req.headers.get_all("Via") {
        r.headers.push("Via", via);
    }
    for name in ["From", "Call-ID", "CSeq"] {
        r.headers.push(name, req.headers.get(name).unwrap());
    }
    let to = req.headers.get("To").unwrap();
    if status > 100 {
        r.headers.push("To", format!("{to};tag=b"));
    } else {
        r.headers.push("To", to);
    }
    r.headers.push("Content-Length", "0");
    r
}

#[derive(Default)]
struct Tally {
    finals: HashMap<TransactionKey, Vec<u16>>,
    timeouts: usize,
    server_requests: HashMap<String, usize>,
}

fn run(seed: u64, loss: f64, dup: f64) -> (Tally, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut net = Net {
        rng: StdRng::seed_from_u64(seed ^ 0x5eed),
        loss,
        dup,
        in_flight: Vec::new(),
        seq: 0,
        dropped: 0,
    };
    let mut a = TransactionLayer::new(TimerConfig::default());
    let mut b = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let mut now = t0;
    let mut tally = Tally::default();
    let to_b = Target::new(Transport::Udp, addr(B));
    let mut keys = Vec::new();
    for n in 1..=40u32 {
        let method = if n % 3 == 0 { "INVITE" } else { "OPTIONS" };
        let req = request(method, n, &mut rng);
        keys.push(a.send_request(now, req, to_b).unwrap());
    }
    // Server TU: provisional then final after a little while for INVITE.
    let mut pending: Vec<(Instant, TransactionKey, Request)> = Vec::new();
    for _ in 0..200_000 {
        while let Some(t) = a.poll_transmit() {
            assert_eq!(t.target, to_b);
            net.send(now, true, t.data);
        }
        while let Some(t) = b.poll_transmit() {
            assert_eq!(t.target.addr, addr(A));
            net.send(now, false, t.data);
        }
        while let Some(ev) = a.poll_event() {
            match ev {
                TransactionEvent::Response { key, response } if response.status >= 200 => {
                    tally.finals.entry(key).or_default().push(response.status);
                }
                TransactionEvent::Timeout { .. } => tally.timeouts += 1,
                _ => {}
            }
        }
        while let Some(ev) = b.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = ev {
                let id = request.headers.get("Call-ID").unwrap().to_string();
                *tally.server_requests.entry(id).or_default() += 1;
                if request.method.as_str() == "INVITE" {
                    b.send_response(now, &key, response(&request, 180)).unwrap();
                    pending.push((now + Duration::from_millis(700), key, request));
                } else {
                    b.send_response(now, &key, response(&request, 200)).unwrap();
                }
            }
        }
        let tu_next = pending.iter().map(|p| p.0).min();
        let next = [net.next_at(), a.poll_timeout(), b.poll_timeout(), tu_next]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        now = now.max(next);
        if let Some(i) = pending.iter().position(|p| p.0 <= now) {
            let (_, key, req) = pending.swap_remove(i);
            b.send_response(now, &key, response(&req, 486)).unwrap();
            continue;
        }
        if let Some(p) = net.pop_due(now) {
            let (layer, from) = if p.to_b {
                (&mut b, addr(A))
            } else {
                (&mut a, addr(B))
            };
            layer.handle_datagram(now, p.data, from, Transport::Udp);
            continue;
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert!(a.is_empty(), "client transactions left: {}", a.len());
    assert!(b.is_empty(), "server transactions left: {}", b.len());
    for k in &keys {
        assert!(
            tally.finals.contains_key(k) || tally.timeouts > 0,
            "{k} got no final response"
        );
    }
    (tally, net.dropped)
}

#[test]
fn lossy_reordering_network_delivers_exactly_once() {
    for seed in 1..=5 {
        let (tally, dropped) = run(seed, 0.3, 0.1);
        assert!(dropped > 0, "the network dropped something");
        assert_eq!(tally.timeouts, 0, "seed {seed}");
        assert_eq!(tally.finals.len(), 40, "seed {seed}");
        for (k, statuses) in &tally.finals {
            assert_eq!(statuses.len(), 1, "seed {seed}: {k} got {statuses:?}");
            let expected = if k.method().as_str() == "INVITE" {
                486
            } else {
                200
            };
            assert_eq!(statuses[0], expected);
        }
        assert_eq!(tally.server_requests.len(), 40);
        assert!(
            tally.server_requests.values().all(|n| *n == 1),
            "seed {seed}"
        );
    }
}

#[test]
fn a_dead_network_times_out_every_transaction() {
    let (tally, _) = run(9, 1.0, 0.0);
    assert_eq!(tally.timeouts, 40);
    assert!(tally.finals.is_empty());
}

#[test]
fn mutated_messages_never_panic_nor_leave_state() {
    let mut rng = StdRng::seed_from_u64(42);
    let resp = response(&request("OPTIONS", 2, &mut rng), 200).to_bytes();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let t0 = Instant::now();
    let source = addr(A);
    let (mut bad_requests, mut accepted) = (0, 0);
    for i in 0..3000u32 {
        let fresh = request(if i % 4 == 0 { "INVITE" } else { "MESSAGE" }, i, &mut rng).to_bytes();
        let src = if i % 2 == 0 { &fresh } else { &resp };
        let mut v = src.to_vec();
        for _ in 0..rng.random_range(1..3) {
            match rng.random_range(0..4) {
                0 if !v.is_empty() => {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                1 if !v.is_empty() => {
                    let at = rng.random_range(0..v.len());
                    v.truncate(at);
                }
                2 => {
                    let at = rng.random_range(0..=v.len());
                    v.insert(at, *b":;,<>\"\r\n ".get(rng.random_range(0..9)).unwrap());
                }
                _ => {
                    let at = rng.random_range(0..=v.len());
                    v.splice(at..at, src.iter().take(40).copied());
                }
            }
        }
        layer.handle_datagram(t0, Bytes::from(v), source, Transport::Udp);
        while let Some(t) = layer.poll_transmit() {
            if t.data.starts_with(b"SIP/2.0 400 ") {
                bad_requests += 1;
            }
        }
        while let Some(ev) = layer.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = ev
                && request.method.as_str() != "ACK"
            {
                accepted += 1;
                // Answer whatever got through so that the state machines run too.
                let _ = layer.send_response(t0, &key, response(&request, 500));
            }
        }
    }
    // Everything ends within 64*T1 + T4.
    layer.handle_timeout(t0 + Duration::from_secs(40));
    while layer.poll_event().is_some() {}
    assert!(layer.is_empty(), "{} transactions left", layer.len());
    // Both paths were exercised: stateless 400s and surviving requests.
    assert!(bad_requests > 50, "{bad_requests} stateless 400s");
    assert!(accepted > 50, "{accepted} requests accepted");
}
