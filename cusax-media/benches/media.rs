//! Benchmark placeholder: filled in by the crate's performance work.
fn main() {}
