//! Ground truth: every activity of a time range, as `KIND KEY` lines.
//!
//! This is what a perfect client receives over realtime plus Recovery, in
//! activity-time order. Tests compare an archive against it.

use std::io::Write;

use crate::clock::StreamMs;
use crate::generator::Generator;

/// Write the truth of `[from_ms, to_ms)` (optionally one partition).
pub fn write_truth<W: Write>(
    gen: &Generator,
    from_ms: StreamMs,
    to_ms: StreamMs,
    partition: Option<u32>,
    out: &mut W,
) -> std::io::Result<u64> {
    let mut n = 0;
    if to_ms <= from_ms {
        return Ok(0);
    }
    for a in gen.range(from_ms, to_ms, partition) {
        writeln!(out, "{}", a.key.truth_line())?;
        n += 1;
    }
    Ok(n)
}

/// The truth as a vector of lines.
pub fn truth_lines(
    gen: &Generator,
    from_ms: StreamMs,
    to_ms: StreamMs,
    partition: Option<u32>,
) -> Vec<String> {
    if to_ms <= from_ms {
        return Vec::new();
    }
    gen.range(from_ms, to_ms, partition)
        .map(|a| a.key.truth_line())
        .collect()
}
