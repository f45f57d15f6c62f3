#![no_main]
//! Feeds arbitrary bytes to the stream framer in chunks whose sizes come from the input.
//! The framer must never panic, never hold more than its limit plus one chunk, and every
//! message it returns must print and parse back.
use bytes::Bytes;
use cusax_sip::msg::framing::{Frame, StreamFramer};
use cusax_sip::msg::{Limits, SipMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_message_size: 4096,
        ..Limits::default()
    };
    let mut framer = StreamFramer::with_limits(limits.clone());
    let chunk = usize::from(first % 64) + 1;
    for part in rest.chunks(chunk) {
        framer.push(part);
        loop {
            match framer.next() {
                Ok(Some(Frame::Message(m))) => {
                    let printed = m.to_bytes();
                    assert!(
                        SipMessage::parse_with_limits(Bytes::clone(&printed), &Limits::default())
                            .is_ok(),
                        "framed message does not re-parse"
                    );
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break,
            }
        }
        assert!(framer.buffered() <= limits.max_message_size + chunk);
    }
});
