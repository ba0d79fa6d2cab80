//! Task store benchmarks (placeholder replaced below).
fn main() {}
