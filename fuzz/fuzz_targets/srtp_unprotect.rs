#![no_main]
// PLACEHOLDER: the owning crate's work replaces this body with a real target.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
