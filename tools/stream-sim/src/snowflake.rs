//! Snowflake IDs: how Post IDs carry their time. The generator makes every
//! Post ID from its activity time, payloads draw IDs of earlier Posts, and
//! the Activity Streams conversion reads times back out of IDs.

use crate::rng::Rng;

/// 2010-11-04T01:42:54.657Z, the snowflake epoch.
pub const TWEPOCH_MS: i64 = 1_288_834_974_657;

/// A snowflake ID: ms since the epoch, 10 bits of machine, 12 of sequence.
pub fn snowflake(ms: i64, machine: u64, seq: u64) -> u64 {
    (((ms - TWEPOCH_MS).max(0) as u64) << 22) | ((machine & 0x3ff) << 12) | (seq & 0xfff)
}

/// The time of a snowflake ID.
pub fn snowflake_ms(id: u64) -> i64 {
    (id >> 22) as i64 + TWEPOCH_MS
}

/// A random snowflake of a Post made between `max_ago` and `min_ago` ms
/// before `ms`.
pub(crate) fn past_snowflake(r: &mut Rng, ms: i64, min_ago: u64, max_ago: u64) -> u64 {
    let t = ms - r.range(min_ago, max_ago) as i64;
    snowflake(t, r.below(1024), r.below(4096))
}
