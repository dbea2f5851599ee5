//! Placeholder replaced by the UPDATE decode benchmark below once the codec lands.
fn main() {}
