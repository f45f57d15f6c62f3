//! Parse benchmark: cusax-sip against rsip 0.4 on the same ~800-byte INVITE with SDP.
//!
//! Run: `cargo bench -p cusax-sip --bench parse` (add `-- --quick` for a short run).
//! Prints messages per second for
//! * rsip raw: `rsip::SipMessage::try_from(&bytes[..])`,
//! * cusax raw: `SipMessage::parse` (structure, Request-URI, header ranges, Content-Length),
//! * cusax typed views: parse + every Via, From, To as borrowed views (`via_refs`,
//!   `from_ref`, `to_ref`), CSeq and Call-ID, reading each Via branch and the tags,
//! * cusax typed owned: the same through the owned accessors (`via`, `from`, `to`),
//!
//! and the ratios against rsip raw. Each figure is the best of several timed rounds; the
//! rounds of the four workloads are interleaved (the machine is shared, and a load change
//! then hits all of them alike).
//!
//! `-- --only <rsip|cusax-raw|cusax-typed-views|cusax-typed-owned> <iterations>` runs one
//! workload a fixed number of times and exits (for instruction counts under callgrind).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::msg::SipMessage;

fn invite() -> Bytes {
    let sdp = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0 8 97\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:97 opus/48000/2\r\n";
    let head = format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n\
Via: SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bK3f8a1;received=192.0.2.10\r\n\
Max-Forwards: 70\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, UPDATE\r\n\
Supported: replaces, timer\r\n\
User-Agent: cusax-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n",
        sdp.len()
    );
    Bytes::from(format!("{head}{sdp}"))
}

/// Iterations of `f` that take about `round / 4`.
fn calibrate(round: Duration, f: &dyn Fn()) -> u64 {
    let mut batch = 64u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() >= round / 4 || batch > 1 << 24 {
            return batch;
        }
        batch *= 2;
    }
}

/// Messages per second of `f` over one timed round of about `round`.
fn one_round(round: Duration, batch: u64, f: &dyn Fn()) -> f64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < round {
        for _ in 0..batch {
            f();
        }
        n += batch;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Best rate (messages/s) of each workload over `rounds` rounds. The rounds of the
/// workloads are interleaved, so that a change of load on the (shared) machine affects
/// them alike and the ratios stay meaningful.
fn rates(rounds: usize, round: Duration, fs: &[&dyn Fn()]) -> Vec<f64> {
    let batches: Vec<u64> = fs.iter().map(|f| calibrate(round, *f)).collect();
    let mut best = vec![0f64; fs.len()];
    for _ in 0..rounds {
        for ((f, batch), b) in fs.iter().zip(&batches).zip(best.iter_mut()) {
            *b = b.max(one_round(round, *batch, *f));
        }
    }
    best
}

/// Parse and read the typed Via list, From, To, CSeq and Call-ID as borrowed views.
fn typed_views(msg: &Bytes) {
    let m = SipMessage::parse(black_box(msg.clone())).expect("parse");
    let h = m.headers();
    let mut branches = 0;
    for v in h.via_refs() {
        let v = v.expect("via");
        branches += v.branch().map_or(0, str::len);
        black_box(&v);
    }
    black_box(branches);
    let from = h.from_ref().expect("from");
    black_box(from.tag());
    black_box(&from);
    let to = h.to_ref().expect("to");
    black_box(to.tag());
    black_box(&to);
    black_box(h.cseq().ok());
    black_box(h.call_id().ok().map(str::len));
}

/// The same through the owned accessors.
fn typed_owned(msg: &Bytes) {
    let m = SipMessage::parse(black_box(msg.clone())).expect("parse");
    let h = m.headers();
    let vias = h.via().expect("via");
    black_box(
        vias.iter()
            .map(|v| v.branch().map_or(0, str::len))
            .sum::<usize>(),
    );
    black_box(&vias);
    let from = h.from().expect("from");
    black_box(from.tag());
    black_box(&from);
    let to = h.to().expect("to");
    black_box(to.tag());
    black_box(&to);
    black_box(h.cseq().ok());
    black_box(h.call_id().ok().map(str::len));
}

fn raw(msg: &Bytes) {
    black_box(SipMessage::parse(black_box(msg.clone())).is_ok());
}

fn rsip_raw(msg: &Bytes) {
    black_box(rsip::SipMessage::try_from(black_box(&msg[..])).is_ok());
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, round) = if quick {
        (3, Duration::from_millis(200))
    } else {
        (7, Duration::from_millis(500))
    };
    let msg = invite();
    // sanity: both parsers accept it, and ours reads the typed values
    let ours = SipMessage::parse(msg.clone()).expect("cusax parses the bench message");
    assert_eq!(ours.headers().via().expect("via").len(), 2);
    assert_eq!(ours.headers().via_refs().count(), 2);
    assert_eq!(
        ours.headers().from_ref().expect("from").to_owned(),
        ours.headers().from().expect("from")
    );
    rsip::SipMessage::try_from(&msg[..]).expect("rsip parses the bench message");

    type Workload = (&'static str, &'static str, fn(&Bytes));
    let workloads: [Workload; 4] = [
        ("rsip", "rsip 0.4 SipMessage::try_from (raw)", rsip_raw),
        ("cusax-raw", "cusax-sip SipMessage::parse (raw)", raw),
        (
            "cusax-typed-views",
            "cusax-sip parse + typed views (Via/From/To/CSeq/Call-ID)",
            typed_views,
        ),
        (
            "cusax-typed-owned",
            "cusax-sip parse + typed owned (Via/From/To/CSeq/Call-ID)",
            typed_owned,
        ),
    ];

    // `--only <workload> <iterations>`: run one workload a fixed number of times and exit
    // (for instruction-count profiling, e.g. under callgrind).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--only") {
        let which = args.get(i + 1).map(String::as_str).unwrap_or("");
        let which = if which == "cusax-typed" {
            "cusax-typed-views"
        } else {
            which
        };
        let n: u64 = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        let Some((_, _, f)) = workloads.iter().find(|w| w.0 == which) else {
            eprintln!(
                "unknown workload {which:?}; one of: {}",
                workloads.map(|w| w.0).join(", ")
            );
            std::process::exit(2);
        };
        for _ in 0..n {
            f(&msg);
        }
        return;
    }

    let closures: Vec<Box<dyn Fn()>> = workloads
        .iter()
        .map(|&(_, _, f)| {
            let msg = msg.clone();
            Box::new(move || f(&msg)) as Box<dyn Fn()>
        })
        .collect();
    let refs: Vec<&dyn Fn()> = closures.iter().map(|c| c.as_ref()).collect();
    let rates = rates(rounds, round, &refs);
    println!(
        "SIP parse benchmark: {}-byte INVITE with SDP, best of {rounds} rounds",
        msg.len()
    );
    println!(
        "{:<58} {:>14} {:>12}",
        "parser", "messages/s", "vs rsip raw"
    );
    for ((_, label, _), r) in workloads.iter().zip(&rates) {
        println!("{label:<58} {r:>14.0} {:>11.2}x", r / rates[0]);
    }
}
