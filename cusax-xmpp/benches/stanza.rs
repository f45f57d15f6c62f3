//! Stanza parsing throughput: cusax's restricted push parser plus typed conversion
//! (`StreamParser` → `Element` → `stanza::Message` / `stanza::Presence`) against quick-xml's
//! raw `NsReader` event loop over the same bytes (the baseline: no tree, no types), in one
//! run. Prints stanzas/s, MB/s and the ratio.
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

fn measure(name: &str, data: &[u8], n: usize, f: fn(&[u8]) -> usize) -> f64 {
    // Warm up, then run for at least 2 s.
    assert_eq!(f(data), n, "{name} counted wrong");
    let start = Instant::now();
    let mut iters = 0u32;
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(black_box(f(black_box(data))), n);
        iters += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = n as f64 * f64::from(iters) / secs;
    let mbs = data.len() as f64 * f64::from(iters) / secs / 1e6;
    println!("{name:<44} {rate:>12.0} stanzas/s {mbs:>8.1} MB/s");
    rate
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
    let a = measure(
        "cusax StreamParser + typed Message/Presence",
        data,
        n,
        typed,
    );
    let t = measure("cusax StreamParser (Element tree only)", data, n, tree);
    let b = measure("quick-xml NsReader raw event loop (baseline)", data, n, raw);
    println!("ratio cusax typed / baseline: {:.2}x", a / b);
    println!("ratio cusax tree / baseline:  {:.2}x", t / b);
}
