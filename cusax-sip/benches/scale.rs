//! Scale benchmark: many sans-IO [`Endpoint`]s over an in-memory network with a fake
//! clock, in one process. Prints tables; asserts no timing.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-sipscale cargo bench -p cusax-sip --bench scale
//! ```
//!
//! Environment:
//! - `CUSAX_SCALE_N` (default 10000): calls, and registered UAs;
//! - `CUSAX_SCALE_PER_EP` (default 1000, at most `MAX_CALLS`): calls per caller/callee
//!   endpoint pair;
//! - `CUSAX_SCALE_AUTH` (`each` | `first` | `none`, default `each`): whether the
//!   in-bench registrar challenges every REGISTER without valid credentials with a
//!   digest 401, only the first one of each binding, or never;
//! - `CUSAX_SCALE_EXPIRES` (default 3600): the expiry the UAs ask for and are granted;
//! - `CUSAX_SCALE_REG_RATE` (default 100): new registrations per simulated second (the
//!   registrar's transaction table holds at most `MAX_TRANSACTIONS`, and each
//!   non-INVITE server transaction over UDP lives 64*T1 = 32 s).
//!
//! - `CUSAX_SCALE_STOP` (`setup` | `settled` | `registered`): end the scenario's child
//!   process at once (no destructors) right after that measurement, so that a heap
//!   profiler's end-of-run snapshot is the state measured, e.g.
//!   `CUSAX_SCALE_MODE=calls-burst CUSAX_SCALE_STOP=setup valgrind --tool=dhat <bench binary>`.
//!
//! Each scenario runs in a child process of its own (the same binary, selected by
//! `CUSAX_SCALE_MODE`) so that its resident set size is not inflated by an earlier
//! scenario's freed memory. Memory is the process RSS (`VmRSS` of `/proc/self/status`);
//! CPU time is utime + stime of `/proc/self/stat` (clock ticks of 10 ms).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::dialog::Dialog;
use cusax_sip::endpoint::{
    Account, CallId, CallOptions, Endpoint, EndpointConfig, Input, Output, SipEvent,
};
use cusax_sip::msg::{Challenge, Method, Request, Response, SipMessage, Uri};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionLayer, Transmit, Transport,
};
use cusax_sip::ua::digest;

const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.1.0.1\r\ns=-\r\nc=IN IP4 10.1.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
const ANSWER: &[u8] = b"v=0\r\no=- 2 2 IN IP4 10.2.0.1\r\ns=-\r\nc=IN IP4 10.2.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
const REALM: &str = "cusax.test";

// ---------------------------------------------------------------- measurement

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Process CPU time (user + system) in seconds, from `/proc/self/stat` (USER_HZ = 100).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // `rest` starts at field 3 (state), so field 14 is index 11.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

struct Meter {
    cpu: f64,
    wall: Instant,
}

impl Meter {
    fn start() -> Self {
        Meter {
            cpu: cpu_secs(),
            wall: Instant::now(),
        }
    }

    /// (cpu seconds, wall seconds) since start.
    fn stop(&self) -> (f64, f64) {
        (cpu_secs() - self.cpu, self.wall.elapsed().as_secs_f64())
    }
}

/// Ends the process here when `CUSAX_SCALE_STOP` names this point (see the module docs).
fn stop_at(point: &str) {
    if std::env::var("CUSAX_SCALE_STOP").as_deref() == Ok(point) {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::process::exit(0);
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn row(label: &str, value: String) {
    println!("  {label:<58} {value}");
}

fn per(total_s: f64, n: usize) -> String {
    if n == 0 {
        return "n/a".into();
    }
    format!("{:>9.2} µs", total_s * 1e6 / n as f64)
}

fn kb_per(delta_kb: i64, n: usize) -> String {
    if n == 0 {
        return "n/a".into();
    }
    format!("{:>9.0} B", delta_kb as f64 * 1024.0 / n as f64)
}

/// Live transactions of an endpoint, from its `Debug` output (`transactions: N`).
fn transactions_of(ep: &Endpoint) -> usize {
    let s = format!("{ep:?}");
    s.split("transactions: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn addr(net: u8, i: usize) -> SocketAddr {
    assert!(i < 250 * 250, "too many nodes for the address plan");
    SocketAddr::from(([10, net, (i / 250) as u8, (i % 250 + 1) as u8], 5060))
}

// ---------------------------------------------------------------- in-bench registrar

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AuthMode {
    Each,
    First,
    None,
}

/// A minimal sans-IO registrar over [`TransactionLayer`] (RFC 3261 §10.3): answers
/// REGISTER with 200 and the Contact with its granted `expires`, challenging with a
/// digest 401 (verified with `ua::digest`) as `auth` says.
struct Registrar {
    tx: TransactionLayer,
    auth: AuthMode,
    expires: u32,
    nonce_seq: u64,
    nonces: HashSet<String>,
    authed: HashSet<String>,
    bindings: HashMap<String, (String, Instant)>,
    ok: u64,
    challenged: u64,
    refused: u64,
}

impl Registrar {
    fn new(auth: AuthMode, expires: u32) -> Self {
        Registrar {
            tx: TransactionLayer::new(TimerConfig::default()),
            auth,
            expires,
            nonce_seq: 0,
            nonces: HashSet::new(),
            authed: HashSet::new(),
            bindings: HashMap::new(),
            ok: 0,
            challenged: 0,
            refused: 0,
        }
    }

    fn process(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = ev {
                let resp = self.on_request(now, &request);
                if let Err(e) = self.tx.send_response(now, &key, resp) {
                    eprintln!("registrar could not answer: {e}");
                }
            }
        }
    }

    fn base_response(req: &Request, status: u16) -> Response {
        let mut r = Response::new(status, cusax_sip::msg::default_reason(status));
        for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for v in req.headers.get_all(h) {
                let v = if h == "To" && !v.contains("tag=") {
                    format!("{v};tag=reg")
                } else {
                    v.to_owned()
                };
                r.headers.push(h, v);
            }
        }
        r
    }

    fn credentials_valid(&mut self, req: &Request, user: &str) -> bool {
        let creds = req.headers.authorization().unwrap_or_default();
        let Some(c) = creds.first() else {
            return false;
        };
        let nonce = c.param("nonce").unwrap_or_default().to_owned();
        if c.param("username") != Some(user) || !self.nonces.contains(&nonce) {
            return false;
        }
        let challenge = Challenge {
            scheme: "Digest".into(),
            params: vec![
                ("realm".into(), REALM.into()),
                ("nonce".into(), nonce.clone()),
                ("qop".into(), "auth".into()),
            ],
        };
        let nc = u32::from_str_radix(c.param("nc").unwrap_or("1"), 16).unwrap_or(1);
        let expect = digest::answer(
            &challenge,
            &digest::DigestCredentials::new(user, format!("pw-{user}")),
            req.method.as_str(),
            c.uri().unwrap_or_default(),
            &req.body,
            c.param("cnonce").unwrap_or_default(),
            nc,
        );
        let valid = expect.is_ok_and(|e| e.response() == c.response());
        if valid {
            self.nonces.remove(&nonce);
        }
        valid
    }

    fn on_request(&mut self, now: Instant, req: &Request) -> Response {
        if req.method != Method::Register {
            let mut r = Self::base_response(req, 405);
            r.headers.push("Allow", "REGISTER");
            r.headers.push("Content-Length", "0");
            return r;
        }
        let (Ok(to), Ok(call_id)) = (req.headers.to(), req.headers.call_id()) else {
            self.refused += 1;
            let mut r = Self::base_response(req, 400);
            r.headers.push("Content-Length", "0");
            return r;
        };
        let user = to.uri.user.clone().unwrap_or_default();
        let call_id = call_id.to_owned();
        let needs_auth = match self.auth {
            AuthMode::None => false,
            AuthMode::Each => true,
            AuthMode::First => !self.authed.contains(&call_id),
        };
        if needs_auth && !self.credentials_valid(req, &user) {
            self.challenged += 1;
            self.nonce_seq += 1;
            let nonce = format!("n{:016x}", self.nonce_seq);
            self.nonces.insert(nonce.clone());
            let mut r = Self::base_response(req, 401);
            r.headers.push(
                "WWW-Authenticate",
                format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5"),
            );
            r.headers.push("Content-Length", "0");
            return r;
        }
        if self.auth == AuthMode::First {
            self.authed.insert(call_id);
        }
        let asked = req.headers.expires().ok().flatten().unwrap_or(self.expires);
        let granted = asked.min(self.expires);
        let contact = req.headers.get("Contact").unwrap_or_default().to_owned();
        let mut r = Self::base_response(req, 200);
        r.headers
            .push("Contact", format!("{contact};expires={granted}"));
        r.headers.push("Content-Length", "0");
        if granted == 0 {
            self.bindings.remove(&user);
        } else {
            self.bindings.insert(
                user,
                (contact, now + Duration::from_secs(u64::from(granted))),
            );
        }
        self.ok += 1;
        r
    }
}

// ---------------------------------------------------------------- in-memory network

enum Node {
    Ep(Box<Endpoint>),
    Registrar(Box<Registrar>),
}

/// The simulated network: nodes by address, zero latency, no loss, a fake clock and a
/// timer heap; every node is drained after each input, as the tokio driver does.
struct Net {
    now: Instant,
    nodes: Vec<Node>,
    addrs: Vec<SocketAddr>,
    index: HashMap<SocketAddr, usize>,
    queue: VecDeque<(SocketAddr, Transmit)>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    deadline: Vec<Option<Instant>>,
    /// Events not yet looked at by the bench, per node.
    events: Vec<Vec<SipEvent>>,
    /// The first message of each kind seen ("INVITE", "180 INVITE", ...).
    samples: HashMap<String, Bytes>,
    /// Whether to collect `samples` at all.
    sampling: bool,
    delivered: u64,
    bytes: u64,
}

impl Net {
    fn new() -> Self {
        Net {
            now: Instant::now(),
            nodes: Vec::new(),
            addrs: Vec::new(),
            index: HashMap::new(),
            queue: VecDeque::new(),
            timers: BinaryHeap::new(),
            deadline: Vec::new(),
            events: Vec::new(),
            samples: HashMap::new(),
            sampling: true,
            delivered: 0,
            bytes: 0,
        }
    }

    fn add(&mut self, a: SocketAddr, node: Node) -> usize {
        let i = self.nodes.len();
        self.nodes.push(node);
        self.addrs.push(a);
        self.index.insert(a, i);
        self.deadline.push(None);
        self.events.push(Vec::new());
        i
    }

    fn ep(&mut self, i: usize) -> &mut Endpoint {
        match &mut self.nodes[i] {
            Node::Ep(e) => e,
            Node::Registrar(_) => panic!("node {i} is the registrar"),
        }
    }

    fn registrar(&self, i: usize) -> &Registrar {
        match &self.nodes[i] {
            Node::Registrar(r) => r,
            Node::Ep(_) => panic!("node {i} is an endpoint"),
        }
    }

    /// Drains node `i`: transmits to the queue, events to `events[i]`, deadline filed.
    fn drain(&mut self, i: usize) {
        let from = self.addrs[i];
        let at = match &mut self.nodes[i] {
            Node::Ep(ep) => loop {
                match ep.poll_output() {
                    Some(Output::Transmit(t)) => self.queue.push_back((from, t)),
                    Some(Output::Event(e)) => self.events[i].push(e),
                    Some(Output::Timeout(at)) => break Some(at),
                    Some(_) => {}
                    None => break None,
                }
            },
            Node::Registrar(r) => {
                while let Some(t) = r.tx.poll_transmit() {
                    self.queue.push_back((from, t));
                }
                r.tx.poll_timeout()
            }
        };
        if at != self.deadline[i] {
            self.deadline[i] = at;
            if let Some(at) = at {
                self.timers.push(Reverse((at, i)));
            }
        }
    }

    fn sample(&mut self, data: &Bytes) {
        // The six kinds of a call (INVITE, 180, 200, ACK, BYE, 200 BYE): then stop, so
        // that sampling costs nothing in the measured loops.
        if !self.sampling || self.samples.len() >= 6 {
            return;
        }
        let line = data.split(|b| *b == b'\r').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let kind = if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
            let status = rest.split(' ').next().unwrap_or_default();
            let method = String::from_utf8_lossy(data)
                .lines()
                .find_map(|l| l.strip_prefix("CSeq: ").map(str::to_owned))
                .and_then(|c| c.split(' ').nth(1).map(str::to_owned))
                .unwrap_or_default();
            format!("{status} {method}")
        } else {
            line.split(' ').next().unwrap_or_default().to_owned()
        };
        self.samples.entry(kind).or_insert_with(|| data.clone());
    }

    /// Delivers queued transmits until the network is quiet.
    fn flush(&mut self) {
        while let Some((from, t)) = self.queue.pop_front() {
            self.sample(&t.data);
            self.delivered += 1;
            self.bytes += t.data.len() as u64;
            let Some(&j) = self.index.get(&t.target.addr) else {
                continue;
            };
            let now = self.now;
            match &mut self.nodes[j] {
                Node::Ep(ep) => ep.handle_input(
                    now,
                    Input::Receive {
                        data: t.data,
                        source: from,
                        transport: t.target.transport,
                    },
                ),
                Node::Registrar(r) => {
                    r.tx.handle_datagram(now, t.data, from, t.target.transport);
                    r.process(now);
                }
            }
            self.drain(j);
        }
    }

    /// Runs every timer due up to `until`, then sets the clock to `until`.
    fn advance_to(&mut self, until: Instant) {
        while let Some(Reverse((at, i))) = self.timers.peek().copied() {
            if at > until {
                break;
            }
            self.timers.pop();
            if self.deadline[i] != Some(at) {
                continue;
            }
            self.deadline[i] = None;
            self.now = self.now.max(at);
            let now = self.now;
            match &mut self.nodes[i] {
                Node::Ep(ep) => ep.handle_input(now, Input::Timeout),
                Node::Registrar(r) => {
                    r.tx.handle_timeout(now);
                    r.process(now);
                }
            }
            self.drain(i);
            self.flush();
        }
        self.now = self.now.max(until);
    }

    fn transactions(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Ep(e) => transactions_of(e),
                Node::Registrar(r) => r.tx.len(),
            })
            .sum()
    }
}

// ---------------------------------------------------------------- scenario (a): calls

fn calls(paced: bool) {
    let n = env_num("CUSAX_SCALE_N", 10_000);
    let per_ep = env_num("CUSAX_SCALE_PER_EP", 1000).clamp(1, cusax_sip::endpoint::MAX_CALLS);
    let pairs = n.div_ceil(per_ep);
    let batch = 200usize;
    let rss0 = rss_kb();
    let mut net = Net::new();
    let mut callers = Vec::new();
    let mut callees = Vec::new();
    for p in 0..pairs {
        for (plane, list) in [(1u8, &mut callers), (2u8, &mut callees)] {
            let a = addr(plane, p);
            let mut cfg = EndpointConfig::insecure(a, Transport::Udp);
            cfg.contact_user = format!("u{plane}x{p}");
            let i = net.add(
                a,
                Node::Ep(Box::new(Endpoint::new(
                    cfg,
                    (p as u64) << 8 | u64::from(plane),
                ))),
            );
            list.push(i);
        }
    }
    let rss_idle = rss_kb();
    let title = if paced {
        "(a2) calls, paced: batches of 200, fake clock +40 s between batches"
    } else {
        "(a1) calls, burst: all set up at one fake instant, batches of 200"
    };
    println!("\n{title}");
    row(
        "calls / endpoint pairs / calls per endpoint",
        format!("{n} / {pairs} / {}", n.div_ceil(pairs)),
    );
    row(
        "RSS of the idle endpoints (above process start)",
        format!("{} kB", rss_idle as i64 - rss0 as i64),
    );

    // Setup: INVITE → 180 → 200 → ACK.
    let mut uac_calls: Vec<(usize, CallId)> = Vec::with_capacity(n);
    let (mut answered, mut confirmed, mut failed) = (0usize, 0usize, 0usize);
    let meter = Meter::start();
    let mut placed = 0;
    while placed < n {
        let this = batch.min(n - placed);
        for k in placed..placed + this {
            let p = k % pairs;
            let (ci, cj) = (callers[p], callees[p]);
            let to = Uri::parse(&format!("sip:bob{k}@{}", net.addrs[cj])).expect("uri");
            let now = net.now;
            let call = net
                .ep(ci)
                .invite(now, to, Bytes::from_static(OFFER), CallOptions::default())
                .expect("invite");
            uac_calls.push((ci, call));
            net.drain(ci);
        }
        net.flush();
        for &j in &callees {
            let evs = std::mem::take(&mut net.events[j]);
            let now = net.now;
            for e in evs {
                if let SipEvent::IncomingCall { call, .. } = e {
                    net.ep(j).ring(now, call).expect("ring");
                    net.ep(j)
                        .answer(now, call, 200, Bytes::from_static(ANSWER))
                        .expect("answer");
                }
            }
            net.drain(j);
        }
        net.flush();
        for i in callers.iter().chain(&callees) {
            for e in std::mem::take(&mut net.events[*i]) {
                match e {
                    SipEvent::CallAnswered { .. } => answered += 1,
                    SipEvent::CallConfirmed { .. } => confirmed += 1,
                    SipEvent::CallFailed { .. } => failed += 1,
                    _ => {}
                }
            }
        }
        placed += this;
        if paced {
            let t = net.now + Duration::from_secs(40);
            net.advance_to(t);
        }
    }
    let (cpu, wall) = meter.stop();
    let rss_setup = rss_kb();
    let tx_setup = net.transactions();
    row(
        "established (CallAnswered at UAC / CallConfirmed at UAS)",
        format!("{answered} / {confirmed} (failed {failed})"),
    );
    row(
        "CPU per call setup (INVITE→180→200→ACK, both sides)",
        per(cpu, n),
    );
    row("wall per call setup", per(wall, n));
    row("live transactions right after setup", format!("{tx_setup}"));
    let idle_delta = |rss: u64| rss as i64 - rss_idle as i64;
    row(
        "RSS per established dialog, right after setup",
        kb_per(idle_delta(rss_setup), n),
    );
    stop_at("setup");
    let t = net.now + Duration::from_secs(40);
    net.advance_to(t);
    let rss_settled = rss_kb();
    row(
        "live transactions 40 s later (Timers L/M/K ran out)",
        format!("{}", net.transactions()),
    );
    row(
        "RSS per established dialog, 40 s later (RSS does not shrink)",
        kb_per(idle_delta(rss_settled), n),
    );
    stop_at("settled");

    // Teardown: BYE → 200.
    let mut ended = 0usize;
    let meter = Meter::start();
    for chunk in uac_calls.chunks(batch) {
        for &(ci, call) in chunk {
            let now = net.now;
            net.ep(ci).bye(now, call).expect("bye");
            net.drain(ci);
        }
        net.flush();
        for i in callers.iter().chain(&callees) {
            ended += std::mem::take(&mut net.events[*i])
                .iter()
                .filter(|e| matches!(e, SipEvent::CallEnded { .. }))
                .count();
        }
    }
    let (cpu, wall) = meter.stop();
    row(
        "CallEnded events (both sides; expect 2 per call)",
        format!("{ended}"),
    );
    row("CPU per teardown (BYE→200, both sides)", per(cpu, n));
    row("wall per teardown", per(wall, n));
    row(
        "messages delivered / bytes",
        format!("{} / {}", net.delivered, net.bytes),
    );

    if !paced {
        // Baseline: parsing and printing the same messages, no state at all.
        let mut samples: Vec<(String, Bytes)> = net.samples.clone().into_iter().collect();
        samples.sort();
        let get = |k: &str| samples.iter().find(|(n, _)| n == k).map(|(_, b)| b.clone());
        let setup: Vec<Bytes> = ["INVITE", "180 INVITE", "200 INVITE", "ACK"]
            .iter()
            .filter_map(|k| get(k))
            .collect();
        // Enough iterations for the 10 ms resolution of the CPU clock.
        let iters = n.max(100_000);
        println!("  baseline in the same run (no state, no transaction; {iters} iterations):");
        if let Some(invite) = get("INVITE") {
            row("  INVITE size", format!("{} B", invite.len()));
            let meter = Meter::start();
            let mut sum = 0usize;
            for _ in 0..iters {
                let m = SipMessage::parse(invite.clone()).expect("parses");
                sum += m.to_bytes().len();
            }
            let (cpu, wall) = meter.stop();
            row(
                "  SipMessage::parse + to_bytes of that INVITE (cpu / wall)",
                format!("{} / {}", per(cpu, iters).trim(), per(wall, iters).trim()),
            );
            std::hint::black_box(sum);
        }
        if setup.len() == 4 {
            let meter = Meter::start();
            let mut sum = 0usize;
            for _ in 0..iters {
                for b in &setup {
                    let m = SipMessage::parse(b.clone()).expect("parses");
                    sum += m.to_bytes().len();
                }
            }
            let (cpu, wall) = meter.stop();
            row(
                "  parse + to_bytes of INVITE,180,200,ACK (cpu / wall)",
                format!("{} / {}", per(cpu, iters).trim(), per(wall, iters).trim()),
            );
            std::hint::black_box(sum);
        }
    }
}

// ---------------------------------------------------------------- what a dialog retains

/// RSS cost of retaining `n` copies of the pieces an established call keeps.
fn probe() {
    let n = env_num("CUSAX_SCALE_N", 10_000);
    // Capture one real INVITE / 200 / ACK from a single call.
    let mut net = Net::new();
    let (a, b) = (addr(1, 0), addr(2, 0));
    let ia = net.add(
        a,
        Node::Ep(Box::new(Endpoint::new(
            EndpointConfig::insecure(a, Transport::Udp),
            1,
        ))),
    );
    let ib = net.add(
        b,
        Node::Ep(Box::new(Endpoint::new(
            EndpointConfig::insecure(b, Transport::Udp),
            2,
        ))),
    );
    let now = net.now;
    let to = Uri::parse(&format!("sip:bob@{b}")).expect("uri");
    net.ep(ia)
        .invite(now, to, Bytes::from_static(OFFER), CallOptions::default())
        .expect("invite");
    net.drain(ia);
    net.flush();
    for e in std::mem::take(&mut net.events[ib]) {
        if let SipEvent::IncomingCall { call, .. } = e {
            net.ep(ib)
                .answer(now, call, 200, Bytes::from_static(ANSWER))
                .expect("answer");
        }
    }
    net.drain(ib);
    net.flush();
    let parse = |k: &str| {
        let bytes = net.samples.get(k).expect("sample").clone();
        (bytes.clone(), SipMessage::parse(bytes).expect("parses"))
    };
    let (invite_bytes, invite) = parse("INVITE");
    let (_, ok) = parse("200 INVITE");
    let (ack_bytes, _) = parse("ACK");
    let (SipMessage::Request(invite_req), SipMessage::Response(ok)) = (invite, ok) else {
        panic!("samples have the wrong kind");
    };
    println!("\n(a3) what an established call retains: RSS of {n} copies of each piece");
    let mut keep_inv = Vec::with_capacity(n);
    let mut keep_ack = Vec::with_capacity(n);
    let mut keep_dlg = Vec::with_capacity(n);
    let r0 = rss_kb();
    for _ in 0..n {
        // A fresh buffer each time, as for a received datagram.
        keep_inv.push(SipMessage::parse(Bytes::copy_from_slice(&invite_bytes)).expect("parses"));
    }
    let r1 = rss_kb();
    for _ in 0..n {
        keep_ack.push(SipMessage::parse(Bytes::copy_from_slice(&ack_bytes)).expect("parses"));
    }
    let r2 = rss_kb();
    for _ in 0..n {
        keep_dlg.push(Dialog::uac(&invite_req, &ok).expect("dialog"));
    }
    let r3 = rss_kb();
    row(
        &format!("parsed INVITE ({} B on the wire)", invite_bytes.len()),
        kb_per(r1 as i64 - r0 as i64, n),
    );
    row(
        &format!("parsed ACK ({} B on the wire)", ack_bytes.len()),
        kb_per(r2 as i64 - r1 as i64, n),
    );
    row("Dialog (UAC side)", kb_per(r3 as i64 - r2 as i64, n));
    // Inline sizes: queues and maps keep their capacity after they are drained.
    use std::mem::size_of;
    row(
        "size_of SipEvent / TransactionEvent / Output",
        format!(
            "{} / {} / {} B",
            size_of::<SipEvent>(),
            size_of::<TransactionEvent>(),
            size_of::<Output>()
        ),
    );
    row(
        "size_of Request / Response / Dialog / Endpoint",
        format!(
            "{} / {} / {} / {} B",
            size_of::<Request>(),
            size_of::<Response>(),
            size_of::<Dialog>(),
            size_of::<Endpoint>()
        ),
    );
    std::hint::black_box((&keep_inv, &keep_ack, &keep_dlg));
}

// ---------------------------------------------------------------- scenario (b): registrations

fn register() {
    let n = env_num("CUSAX_SCALE_N", 10_000);
    let expires = env_num("CUSAX_SCALE_EXPIRES", 3600) as u32;
    let rate = env_num("CUSAX_SCALE_REG_RATE", 100).max(10);
    let auth = match std::env::var("CUSAX_SCALE_AUTH").as_deref() {
        Ok("none") => AuthMode::None,
        Ok("first") => AuthMode::First,
        _ => AuthMode::Each,
    };
    println!(
        "\n(b) registrations: {n} UAs, one in-bench registrar (auth {auth:?}), expires {expires} s, {rate}/s"
    );
    let rss0 = rss_kb();
    let mut net = Net::new();
    net.sampling = false;
    let reg_addr = SocketAddr::from(([10, 9, 0, 1], 5060));
    let ri = net.add(
        reg_addr,
        Node::Registrar(Box::new(Registrar::new(auth, expires))),
    );
    let mut uas = Vec::with_capacity(n);
    for u in 0..n {
        let a = addr(3, u);
        let mut cfg = EndpointConfig::insecure(a, Transport::Udp);
        cfg.account = Some(Account {
            aor: Uri::parse(&format!("sip:u{u}@{REALM}")).expect("uri"),
            display_name: None,
            username: format!("u{u}"),
            password: format!("pw-u{u}"),
            registrar: Target::new(Transport::Udp, reg_addr),
            outbound_proxy: None,
            expires,
        });
        uas.push(net.add(a, Node::Ep(Box::new(Endpoint::new(cfg, u as u64)))));
    }
    let rss_idle = rss_kb();
    row(
        "RSS per idle endpoint (with account, never used)",
        kb_per(rss_idle as i64 - rss0 as i64, n),
    );

    let count = |net: &mut Net, uas: &[usize]| {
        let (mut ok, mut failed) = (0usize, 0usize);
        for &i in uas {
            for e in std::mem::take(&mut net.events[i]) {
                match e {
                    SipEvent::Registered { .. } => ok += 1,
                    SipEvent::RegistrationFailed { .. } | SipEvent::AuthenticationFailed { .. } => {
                        failed += 1
                    }
                    _ => {}
                }
            }
        }
        (ok, failed)
    };

    // Initial registrations, `rate` per simulated second in steps of 100 ms.
    let start = net.now;
    let step = Duration::from_millis(100);
    let per_step = (rate / 10).max(1);
    let meter = Meter::start();
    let mut peak_tx = 0usize;
    let (mut registered, mut failed) = (0usize, 0usize);
    for chunk in uas.chunks(per_step) {
        let now = net.now;
        for &i in chunk {
            net.ep(i).register(now).expect("register");
            net.drain(i);
        }
        net.flush();
        // Count (and free) the events of this step at once: the bench's own copies
        // of 10,000 `Registered` events must not show as memory per UA.
        let (ok, bad) = count(&mut net, chunk);
        registered += ok;
        failed += bad;
        peak_tx = peak_tx.max(net.registrar(ri).tx.len());
        let t = net.now + step;
        net.advance_to(t);
    }
    let (cpu, wall) = meter.stop();
    let (ok, bad) = count(&mut net, &uas);
    registered += ok;
    failed += bad;
    let spread = net.now - start;
    row(
        "registered / failed (events)",
        format!("{registered} / {failed}"),
    );
    row(
        "CPU per registration (UA + registrar)",
        per(cpu, registered),
    );
    row("wall per registration", per(wall, registered));
    row("registrar: 200 / 401 / refused; peak live transactions", {
        let r = net.registrar(ri);
        format!("{} / {} / {}; {peak_tx}", r.ok, r.challenged, r.refused)
    });
    let t = net.now + Duration::from_secs(40);
    net.advance_to(t);
    let rss_reg = rss_kb();
    row(
        "live transactions 40 s later (all sides)",
        format!("{}", net.transactions()),
    );
    row("registrar transaction layer capacities 40 s later", {
        let c = net.registrar(ri).tx.capacities();
        format!(
            "map {} / ids {} / timers {} / transmits {} / events {}",
            c.transactions, c.by_id, c.timers, c.transmits, c.events
        )
    });
    row(
        "RSS per registered UA (endpoint + registration + binding)",
        kb_per(rss_reg as i64 - rss0 as i64, n),
    );
    row(
        "RSS per registration above the idle endpoints",
        kb_per(rss_reg as i64 - rss_idle as i64, n),
    );
    stop_at("registered");

    // Refreshes: run the clock past every UA's refresh time.
    let ok_before = net.registrar(ri).ok;
    let refresh = cusax_sip::ua::register::refresh_delay(expires);
    let until = start + refresh + spread + Duration::from_secs(40);
    let meter = Meter::start();
    net.advance_to(until);
    let (cpu, wall) = meter.stop();
    let (refreshed, failed) = count(&mut net, &uas);
    row(
        &format!(
            "refreshes after {} s of fake time (events / failed)",
            (until - start).as_secs()
        ),
        format!("{refreshed} / {failed}"),
    );
    row("registrar 200s for refreshes / bindings held", {
        let r = net.registrar(ri);
        format!("{} / {}", r.ok - ok_before, r.bindings.len())
    });
    row(
        "CPU per refresh (UA + registrar, incl. timer scan)",
        per(cpu, refreshed),
    );
    row("wall per refresh", per(wall, refreshed));
    row(
        "messages delivered / bytes",
        format!("{} / {}", net.delivered, net.bytes),
    );
}

// ---------------------------------------------------------------- main

fn main() {
    match std::env::var("CUSAX_SCALE_MODE").as_deref() {
        Ok("calls-burst") => return calls(false),
        Ok("calls-paced") => return calls(true),
        Ok("probe") => return probe(),
        Ok("register") => return register(),
        _ => {}
    }
    let exe = std::env::current_exe().expect("own path");
    println!(
        "cusax-sip scale benchmark (N = {}, each scenario in a child process; figures are per unit)",
        env_num("CUSAX_SCALE_N", 10_000)
    );
    for mode in ["calls-burst", "calls-paced", "probe", "register"] {
        let status = Command::new(&exe)
            .env("CUSAX_SCALE_MODE", mode)
            .status()
            .expect("run scenario");
        if !status.success() {
            eprintln!("scenario {mode} failed: {status}");
            std::process::exit(1);
        }
    }
}
