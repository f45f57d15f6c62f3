//! Stanza parsing throughput: cusax's restricted push parser plus typed conversion
//! (`StreamParser` → `Element` → `stanza::Message` / `stanza::Presence`) against quick-xml's
//! raw `NsReader` event loop over the same bytes (the baseline: no tree, no types), in one
//! run. The variants run interleaved (one pass each per round, for `STANZA_BENCH_SECS`,
//! default 6) so that they share the machine's load; prints the best and median rates and
//! the ratios.
//!
//! Run: `cargo bench -p cusax-xmpp --bench stanza`
//!
//! Instruction counts (load-independent): build with `cargo bench --no-run`, then run the
//! binary once per variant under callgrind, collecting only inside that variant:
//! `STANZA_BENCH_ONLY=typed valgrind --tool=callgrind --toggle-collect='*stanza::typed*' <bin>`
//! (variants `typed`, `tree`, `raw`); divide the reported `Collected` by the stanza count.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cusax_xmpp::stanza::{Message, Presence};
use cusax_xmpp::xml::parser::{StreamParser, XmlEvent, XmlLimits};
use quick_xml::events::Event;
use quick_xml::reader::NsReader;

const HEADER: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='b1' from='cusax.test' version='1.0'>";

fn corpus(n: usize) -> (String, usize) {
    let mut s = String::from(HEADER);
    for i in 0..n {
        if i % 2 == 0 {
            s.push_str(&format!(
                "<message from='bob@cusax.test/phone' to='alice@cusax.test/desk' type='chat' id='m{i}'>\
                 <body>Hello Alice, this is message number {i} &amp; it has some text.</body>\
                 <thread>t-{}</thread><active xmlns='http://jabber.org/protocol/chatstates'/>\
                 <request xmlns='urn:xmpp:receipts'/></message>",
                i % 7
            ));
        } else {
            s.push_str(&format!(
                "<presence from='carol@cusax.test/laptop' id='p{i}'><show>away</show>\
                 <status>In a meeting until {i}</status><priority>5</priority>\
                 <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://cusax.test' \
                 ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>"
            ));
        }
    }
    (s, n)
}

#[inline(never)]
fn typed(data: &[u8]) -> usize {
    let mut p = StreamParser::new(XmlLimits::default());
    let mut count = 0;
    for chunk in data.chunks(16 * 1024) {
        p.feed(chunk);
        while let Ok(Some(ev)) = p.next_event() {
            if let XmlEvent::Stanza(el) = ev {
                if el.name == "message" {
                    let m = Message::try_from(el).expect("valid message");
                    black_box(m.body().map(str::len));
                } else {
                    let pr = Presence::try_from(el).expect("valid presence");
                    black_box(pr.status().map(str::len));
                }
                count += 1;
            }
        }
    }
    count
}

#[inline(never)]
fn tree(data: &[u8]) -> usize {
    let mut p = StreamParser::new(XmlLimits::default());
    let mut count = 0;
    for chunk in data.chunks(16 * 1024) {
        p.feed(chunk);
        while let Ok(Some(ev)) = p.next_event() {
            if let XmlEvent::Stanza(el) = ev {
                black_box(el.children.len());
                count += 1;
            }
        }
    }
    count
}

#[inline(never)]
fn raw(data: &[u8]) -> usize {
    let text = std::str::from_utf8(data).expect("utf8");
    let mut r = NsReader::from_str(text);
    let mut depth = 0usize;
    let mut count = 0;
    loop {
        match r.read_resolved_event() {
            Ok((ns, Event::Start(e))) => {
                black_box((ns, e.local_name().as_ref().len()));
                depth += 1;
            }
            Ok((ns, Event::Empty(e))) => {
                black_box((ns, e.local_name().as_ref().len()));
                if depth == 1 {
                    count += 1;
                }
            }
            Ok((_, Event::End(_))) => {
                depth -= 1;
                if depth == 1 {
                    count += 1;
                }
            }
            Ok((_, Event::Text(t))) => {
                black_box(t.len());
            }
            Ok((_, Event::Eof)) => break,
            Ok(_) => {}
            Err(e) => panic!("baseline: {e}"),
        }
    }
    count
}

/// Times one pass of `f` over `data`, in seconds.
fn pass(data: &[u8], n: usize, f: fn(&[u8]) -> usize) -> f64 {
    let start = Instant::now();
    assert_eq!(black_box(f(black_box(data))), n);
    start.elapsed().as_secs_f64()
}

/// Runs the variants interleaved, one pass each per round, for at least `budget`: on a
/// shared, noisy machine every variant sees the same load. Returns per variant the best and
/// the median pass time.
fn measure(
    data: &[u8],
    n: usize,
    variants: &[fn(&[u8]) -> usize],
    budget: Duration,
) -> Vec<(f64, f64)> {
    for f in variants {
        assert_eq!(f(data), n, "a variant counted wrong");
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let start = Instant::now();
    while start.elapsed() < budget || times[0].len() < 5 {
        for (f, t) in variants.iter().zip(&mut times) {
            t.push(pass(data, n, *f));
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            (t[0], t[t.len() / 2])
        })
        .collect()
}

fn main() {
    let (s, n) = corpus(20_000);
    let data = s.as_bytes();
    println!(
        "corpus: {n} stanzas (messages and presences with 2-4 children), {} bytes",
        data.len()
    );
    if let Ok(only) = std::env::var("STANZA_BENCH_ONLY") {
        // One pass of one variant, for instruction counting under callgrind.
        let f: fn(&[u8]) -> usize = match only.as_str() {
            "typed" => typed,
            "tree" => tree,
            "raw" => raw,
            other => panic!("STANZA_BENCH_ONLY={other}: expected typed, tree or raw"),
        };
        assert_eq!(black_box(f(black_box(data))), n);
        println!("{only}: one pass over {n} stanzas");
        return;
    }
    let secs = std::env::var("STANZA_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let names = [
        "cusax StreamParser + typed Message/Presence",
        "cusax StreamParser (Element tree only)",
        "quick-xml NsReader raw event loop (baseline)",
    ];
    let r = measure(data, n, &[typed, tree, raw], Duration::from_secs(secs));
    println!(
        "{:<46} {:>14} {:>9} {:>14}",
        "", "best stanzas/s", "MB/s", "median st/s"
    );
    for (name, (best, median)) in names.iter().zip(&r) {
        println!(
            "{name:<46} {:>14.0} {:>9.1} {:>14.0}",
            n as f64 / best,
            data.len() as f64 / best / 1e6,
            n as f64 / median
        );
    }
    let (raw_best, raw_median) = r[2];
    println!(
        "ratio cusax typed / baseline: {:.2}x (best), {:.2}x (median)",
        raw_best / r[0].0,
        raw_median / r[0].1
    );
    println!(
        "ratio cusax tree / baseline:  {:.2}x (best), {:.2}x (median)",
        raw_best / r[1].0,
        raw_median / r[1].1
    );
}
