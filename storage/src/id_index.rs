//! The ID index: exact dedup, one set per minute bucket.
//!
//! # Design constraints
//! - Exact. A false positive would drop a real activity, so no Bloom or
//!   cuckoo filters: every key is stored or reconstructible exactly.
//! - Small. At Decahose rates (~600 Posts/s, 36,000 per minute) a
//!   `RoaringTreemap` of raw IDs costs ~10 bytes per ID and a `HashSet<u64>`
//!   ~13. Within a minute, most of a snowflake's 64 bits are known: the
//!   minute fixes the high time bits, leaving 16 bits of millisecond, 10 of
//!   machine and a sequence that is almost always below 64. Those 32 bits
//!   are a [`compact`] key, an injective function of the ID *given the
//!   minute*, stored in a `RoaringBitmap` with the machine and sequence in
//!   the high half, so that each roaring container holds the many IDs of
//!   one machine and sequence number: about 3 bytes per ID (measured in
//!   `benches/storage.rs`). IDs that do not fit (pre-snowflake, sequence
//!   ≥ 64, or a snowflake time outside the minute) go to an exact overflow
//!   set.
//! - Bounded memory. Only minutes recent enough to receive duplicates stay
//!   resident; the store loads an older minute from its segment's frame
//!   headers (which carry every key) when Backfill or Recovery touches it,
//!   and [`IdIndex::evict`] drops the least recently used.

use std::collections::{HashMap, HashSet};

use roaring::RoaringBitmap;

use crate::key::Key;
use crate::time::{Minute, Snowflake};

/// The 32-bit key of a Post ID within `minute`, or `None` if the ID does
/// not fit. Layout, high to low: machine (10 bits), sequence (6 bits),
/// millisecond within the minute (16 bits).
pub fn compact(minute: Minute, id: u64) -> Option<u32> {
    let s = Snowflake::parse(id)?;
    let ms = s.time_ms - minute.start_ms();
    if !(0..60_000).contains(&ms) || s.sequence >= 64 {
        return None;
    }
    Some(((s.machine as u32) << 22) | ((s.sequence as u32) << 16) | ms as u32)
}

/// The ID a compact key stands for in `minute`: the inverse of [`compact`].
pub fn expand(minute: Minute, key: u32) -> u64 {
    Snowflake {
        time_ms: minute.start_ms() + (key & 0xffff) as i64,
        machine: (key >> 22) as u16,
        sequence: ((key >> 16) & 0x3f) as u16,
    }
    .to_id()
}

/// The exact set of keys of one minute.
#[derive(Default, Debug, Clone)]
pub struct MinuteKeys {
    posts: RoaringBitmap,
    overflow: HashSet<u64>,
    others: HashSet<Key>,
}

impl MinuteKeys {
    /// Inserts `key`; returns `false` if it was already there.
    pub fn insert(&mut self, minute: Minute, key: Key) -> bool {
        match key {
            Key::Post(id) => match compact(minute, id) {
                Some(c) => self.posts.insert(c),
                None => self.overflow.insert(id),
            },
            other => self.others.insert(other),
        }
    }

    pub fn contains(&self, minute: Minute, key: &Key) -> bool {
        match *key {
            Key::Post(id) => match compact(minute, id) {
                Some(c) => self.posts.contains(c),
                None => self.overflow.contains(&id),
            },
            ref other => self.others.contains(other),
        }
    }

    pub fn remove(&mut self, minute: Minute, key: &Key) {
        match *key {
            Key::Post(id) => match compact(minute, id) {
                Some(c) => {
                    self.posts.remove(c);
                }
                None => {
                    self.overflow.remove(&id);
                }
            },
            ref other => {
                self.others.remove(other);
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.posts.len() + self.overflow.len() as u64 + self.others.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the Post IDs cost: the roaring bitmap's serialized size plus
    /// 8 bytes per overflow ID. What the bytes-per-ID benchmark reports.
    pub fn post_bytes(&self) -> usize {
        self.posts.serialized_size() + self.overflow.len() * 8
    }

    /// Number of Post IDs held.
    pub fn post_count(&self) -> u64 {
        self.posts.len() + self.overflow.len() as u64
    }
}

/// The resident minutes of one stream's index.
#[derive(Default)]
pub struct IdIndex {
    minutes: HashMap<Minute, (MinuteKeys, u64)>,
    clock: u64,
}

impl IdIndex {
    pub fn new() -> IdIndex {
        IdIndex::default()
    }

    /// Whether `minute` is resident (else the caller loads it from its
    /// segment with [`IdIndex::load`] before probing).
    pub fn is_resident(&self, minute: Minute) -> bool {
        self.minutes.contains_key(&minute)
    }

    /// Makes `minute` resident with the given keys.
    pub fn load(&mut self, minute: Minute, keys: MinuteKeys) {
        self.clock += 1;
        self.minutes.insert(minute, (keys, self.clock));
    }

    /// The minute's keys, creating an empty set if it is not resident.
    pub fn minute_mut(&mut self, minute: Minute) -> &mut MinuteKeys {
        self.clock += 1;
        let clock = self.clock;
        let slot = self.minutes.entry(minute).or_default();
        slot.1 = clock;
        &mut slot.0
    }

    /// Forgets a minute's keys (its segment was repaired): the next probe
    /// loads them again from what the segment now holds.
    pub fn forget(&mut self, minute: Minute) {
        self.minutes.remove(&minute);
    }

    pub fn resident(&self) -> usize {
        self.minutes.len()
    }

    /// Drops least recently used minutes until at most `keep` remain,
    /// never dropping one for which `pinned` is true (minutes with data not
    /// yet written to their segment). Returns the minutes dropped.
    pub fn evict(&mut self, keep: usize, pinned: impl Fn(Minute) -> bool) -> Vec<Minute> {
        if self.minutes.len() <= keep {
            return Vec::new();
        }
        let mut by_age: Vec<(u64, Minute)> =
            self.minutes.iter().filter(|(m, _)| !pinned(**m)).map(|(m, (_, used))| (*used, *m)).collect();
        by_age.sort_unstable();
        let excess = self.minutes.len() - keep;
        let gone: Vec<Minute> = by_age.into_iter().take(excess).map(|(_, m)| m).collect();
        for m in &gone {
            self.minutes.remove(m);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const M: Minute = Minute(29_000_000);

    proptest! {
        #[test]
        fn compact_keys_are_exact(ms in 0i64..60_000, machine in 0u16..1024, seq in 0u16..4096) {
            let id = Snowflake { time_ms: M.start_ms() + ms, machine, sequence: seq }.to_id();
            match compact(M, id) {
                Some(c) => prop_assert_eq!(expand(M, c), id),
                None => prop_assert!(seq >= 64),
            }
            // Never a key for another minute's ID.
            prop_assert_eq!(compact(Minute(M.0 + 1), id), None);
        }

        /// Dedup is exact: the index agrees with a plain set on every probe.
        #[test]
        fn dedup_matches_a_set(ops in prop::collection::vec((0u8..4, 0i64..61_000, 0u16..4, 0u16..80), 1..400)) {
            let mut keys = MinuteKeys::default();
            let mut model = BTreeSet::new();
            for (kind, ms, machine, seq) in ops {
                let id = Snowflake { time_ms: M.start_ms() + ms, machine, sequence: seq }.to_id();
                let key = match kind {
                    0 | 1 => Key::Post(id),
                    2 => Key::PostDelete(id),
                    _ => Key::Post(seq as u64), // pre-snowflake IDs
                };
                prop_assert_eq!(keys.contains(M, &key), model.contains(&key));
                prop_assert_eq!(keys.insert(M, key), model.insert(key));
            }
            prop_assert_eq!(keys.len(), model.len() as u64);
        }
    }

    #[test]
    fn eviction_spares_pinned_and_recent_minutes() {
        let mut idx = IdIndex::new();
        for m in 0..10 {
            idx.minute_mut(Minute(m)).insert(Minute(m), Key::Hashed(m as u64));
        }
        idx.minute_mut(Minute(0)); // touched again: now the most recent
        let gone = idx.evict(4, |m| m == Minute(1));
        assert_eq!(gone, vec![Minute(2), Minute(3), Minute(4), Minute(5), Minute(6), Minute(7)]);
        assert!(idx.is_resident(Minute(0)) && idx.is_resident(Minute(1)));
        assert_eq!(idx.resident(), 4);
    }
}
