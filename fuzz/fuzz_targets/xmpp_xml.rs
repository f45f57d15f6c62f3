#![no_main]
//! Arbitrary bytes, split into arbitrary chunks, into the restricted XMPP stream parser
//! (cusax_xmpp::xml::parser). Checks: no panic; an error is sticky (returned again);
//! the result does not depend on how the input is split.
use cusax_xmpp::xml::parser::{StreamParser, XmlEvent, XmlLimits};
use libfuzzer_sys::fuzz_target;

fn limits() -> XmlLimits {
    XmlLimits {
        max_stanza_size: 4096,
        max_depth: 8,
        max_attributes: 8,
        max_buffered: 8192,
    }
}

/// Feeds `data` in chunks whose sizes come from `sizes`; returns events and the error.
fn run(data: &[u8], sizes: &[u8]) -> (Vec<XmlEvent>, Option<String>) {
    let mut p = StreamParser::new(limits());
    let mut events = Vec::new();
    let mut rest = data;
    let mut i = 0;
    loop {
        let n = if sizes.is_empty() {
            rest.len()
        } else {
            (usize::from(sizes[i % sizes.len()]) + 1).min(rest.len())
        };
        i += 1;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        p.feed(chunk);
        loop {
            match p.next_event() {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => {
                    // Sticky: the same error again, even after more input.
                    p.feed(b"<x/>");
                    assert_eq!(p.next_event().err(), Some(e.clone()));
                    let _ = e.stream_error_condition();
                    return (events, Some(e.to_string()));
                }
            }
        }
        if rest.is_empty() {
            return (events, None);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many chunk-size bytes follow; the rest is the stream.
    let Some((&k, rest)) = input.split_first() else {
        return;
    };
    let k = usize::from(k % 16).min(rest.len());
    let (sizes, data) = rest.split_at(k);
    let whole = run(data, &[]);
    let split = run(data, sizes);
    // Every decision (limits included) looks only at complete tokens, so events AND the
    // error must be identical however the input is split.
    assert_eq!(whole, split, "result depends on chunking");
});
