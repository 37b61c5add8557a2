//! The front of a stream's ingest path: classify each line once, probe the
//! minute's ID index, and buffer what is new into the minute's pending
//! frame. Writes nothing: what it accepted is handed to the sink as a
//! [`Pending`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::activity::{self, Activity, Line};
use crate::compliance;
use crate::coverage::Counts;
use crate::dict::{self, Dictionaries};
use crate::frame::Encoder;
use crate::id_index::{IdIndex, MinuteKeys};
use crate::io::Filesystem;
use crate::key::Key;
use crate::segment;
use crate::{Minute, Result};

use super::{Outcome, Sink, StoreConfig};
use crate::layout::segment_path;
use crate::reader::for_each_record;

/// Everything accepted since the last take: the unit handed from
/// [`Ingest`] to [`Sink`].
#[derive(Default)]
pub struct Pending {
    pub(super) frames: BTreeMap<Minute, Encoder>,
    pub(super) counts: BTreeMap<Minute, Counts>,
    pub(super) quarantined: Vec<(Vec<u8>, String, i64)>,
    pub(super) system: Vec<u8>,
    /// Compliance events of the stored lines, for the ledger.
    pub(super) ledger: Vec<compliance::Event>,
    /// Minutes whose segments were found damaged: the sink repairs them.
    pub(super) repair: Vec<Minute>,
    pub(super) seq: u64,
}

impl Pending {
    pub fn records(&self) -> usize {
        self.frames.values().map(|e| e.len()).sum()
    }

    pub fn raw_bytes(&self) -> usize {
        self.frames.values().map(|e| e.raw_len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
            && self.counts.is_empty()
            && self.quarantined.is_empty()
            && self.system.is_empty()
            && self.repair.is_empty()
            && self.ledger.is_empty()
    }
}

/// The front of a stream's ingest path: classifies, deduplicates against
/// the ID index and buffers. Writes nothing.
pub struct Ingest {
    pub(super) label: String,
    pub(super) dir: PathBuf,
    pub(super) dicts: Dictionaries,
    pub(super) fs: Arc<dyn Filesystem>,
    pub(super) config: StoreConfig,
    pub(super) index: IdIndex,
    pub(super) pending: Pending,
    pub(super) take_seq: u64,
    /// The last take that held records of each minute.
    pub(super) last_take: HashMap<Minute, u64>,
    /// The last take the sink has appended (shared with it): a minute whose
    /// last take is newer has frames in flight and must stay resident.
    pub(super) appended: Arc<AtomicU64>,
    pub(super) samples: Vec<u8>,
    pub(super) sample_sizes: Vec<usize>,
    /// The bytes of the hashed-key records of resident minutes (see
    /// [`HashedBytes`]).
    pub(super) hashed: HashMap<Minute, HashedBytes>,
}

/// Past this many bytes of hashed-key records, a minute's are not kept in
/// memory, and a duplicate of one is checked against the segment itself.
const HASHED_BYTES_CAP: usize = 4 << 20;

/// The exact bytes of a minute's records whose key is a hash of their
/// bytes (compliance messages), so that a copy is told from a collision
/// without reading the segment: every such record this process accepted,
/// and, once a copy needed them (`from_disk`), those of the segment as it
/// was. Bounded: past [`HASHED_BYTES_CAP`] the minute is `overflow` and
/// checked against the segment every time, as without it.
#[derive(Default)]
pub(super) struct HashedBytes {
    by_key: HashMap<u64, Vec<Box<[u8]>>>,
    bytes: usize,
    from_disk: bool,
    overflow: bool,
}

impl HashedBytes {
    fn add(&mut self, key: u64, line: &[u8]) {
        if self.overflow {
            return;
        }
        let copies = self.by_key.entry(key).or_default();
        if copies.iter().any(|c| &c[..] == line) {
            return;
        }
        copies.push(line.into());
        self.bytes += line.len();
        if self.bytes > HASHED_BYTES_CAP {
            *self = HashedBytes { overflow: true, ..HashedBytes::default() };
        }
    }

    fn contains(&self, key: u64, line: &[u8]) -> bool {
        self.by_key.get(&key).is_some_and(|c| c.iter().any(|c| &c[..] == line))
    }
}

impl Ingest {
    /// Classifies and accepts one line (without its terminator).
    pub fn ingest(&mut self, line: &[u8], received_ms: i64) -> Result<Outcome> {
        let classified = activity::classify(line, &self.config.limits);
        self.accept(line, classified, received_ms)
    }

    /// Accepts a line already classified (pipelines classify on another
    /// thread).
    pub fn accept(
        &mut self,
        line: &[u8],
        classified: std::result::Result<Line, activity::Rejection>,
        received_ms: i64,
    ) -> Result<Outcome> {
        match classified {
            Ok(Line::Heartbeat) => Ok(Outcome::Heartbeat),
            Ok(Line::System(msg)) => {
                self.pending.system.extend_from_slice(line);
                self.pending.system.push(b'\n');
                Ok(Outcome::System(msg))
            }
            Ok(Line::Activity(a)) => match activity::check_time(a.time_ms, Some(received_ms)) {
                Ok(()) => self.accept_activity(line, a),
                Err(rejection) => Ok(self.quarantine(line, rejection.to_string(), received_ms)),
            },
            Err(rejection) => Ok(self.quarantine(line, rejection.to_string(), received_ms)),
        }
    }

    /// Keeps a line in the quarantine with `reason` (written at the next
    /// commit), and counts it.
    pub fn quarantine(&mut self, line: &[u8], reason: String, received_ms: i64) -> Outcome {
        self.pending.quarantined.push((line.to_vec(), reason.clone(), received_ms));
        let c = self.pending.counts.entry(Minute::of_ms(received_ms)).or_default();
        c.received += 1;
        c.quarantined += 1;
        Outcome::Quarantined { reason }
    }

    pub(super) fn accept_activity(&mut self, line: &[u8], a: Activity) -> Result<Outcome> {
        let minute = Minute::of_ms(a.time_ms);
        if !self.index.is_resident(minute) {
            let keys = self.load_keys(minute)?;
            self.index.load(minute, keys);
        }
        // Everything that can fail comes before the index changes, so that a
        // line that fails here can be accepted again later.
        let known = self.index.minute_mut(minute).contains(minute, &a.key);
        let duplicate = known && (!matches!(a.key, Key::Hashed(_)) || self.same_bytes_stored(minute, &a.key, line)?);
        if !known {
            self.index.minute_mut(minute).insert(minute, a.key);
        }
        let counts = self.pending.counts.entry(minute).or_default();
        counts.received += 1;
        if duplicate {
            counts.duplicates += 1;
            return Ok(Outcome::Duplicate { minute });
        }
        counts.stored += 1;
        if self.dict_wanted() {
            self.samples.extend_from_slice(line);
            self.sample_sizes.push(line.len());
        }
        if let Key::Hashed(h) = a.key {
            self.hashed.entry(minute).or_default().add(h, line);
        }
        // Posts and likes carry no event: only the rest (deletes, unlikes,
        // compliance messages, Activity Streams activities of other verbs,
        // all keyed otherwise) is read again.
        if !matches!(a.key, Key::Post(_) | Key::Like(_)) {
            self.pending.ledger.extend(compliance::event_of(a.kind, a.time_ms, line));
        }
        self.pending.frames.entry(minute).or_default().push(a.kind, a.key, a.time_ms, line);
        Ok(Outcome::Stored { minute, kind: a.kind })
    }

    /// Keys of a minute not in memory, from its segment's frame headers.
    pub(super) fn load_keys(&mut self, minute: Minute) -> Result<MinuteKeys> {
        let mut keys = MinuteKeys::default();
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            return Ok(keys);
        }
        // Payloads are verified too: the keys of a frame whose payload is
        // damaged are not in the archive, and a good copy (Recovery) must
        // not be dropped as their duplicate. A damaged segment is repaired
        // (and its minute's coverage withdrawn) at the next write.
        let (frames, damaged) = segment::verified_frames(self.fs.as_ref(), &path)?;
        if damaged {
            tracing::warn!(stream = %self.label, %minute, "a segment does not verify; it is repaired at the next commit");
            self.pending.repair.push(minute);
        }
        for f in frames {
            for e in &f.header.entries {
                keys.insert(minute, e.key);
            }
        }
        // Purged records are known too: a copy delivered again is a
        // duplicate (compliance::purge).
        for k in crate::compliance::purge::purged_keys(self.fs.as_ref(), &path)? {
            keys.insert(minute, k);
        }
        Ok(keys)
    }

    /// For a hashed key already in the index: is an activity with exactly
    /// these bytes stored, in flight or pending? (Equal hashes with other
    /// bytes are a collision, and the new activity is kept.) The segment is
    /// read at most once per resident minute ([`HashedBytes`]).
    pub(super) fn same_bytes_stored(&mut self, minute: Minute, key: &Key, line: &[u8]) -> Result<bool> {
        let Key::Hashed(h) = *key else { return Ok(false) };
        let cached = self.hashed.entry(minute).or_default();
        if cached.contains(h, line) {
            return Ok(true);
        }
        if cached.from_disk && !cached.overflow {
            return Ok(false);
        }
        if let Some(enc) = self.pending.frames.get(&minute) {
            if enc.records().any(|(e, b)| e.key == *key && b == line) {
                return Ok(true);
            }
        }
        let path = segment_path(&self.dir, minute);
        let mut on_disk = Vec::new();
        if path.exists() {
            for_each_record(self.fs.as_ref(), &path, &mut self.dicts, |e, b| {
                if let Key::Hashed(k) = e.key {
                    on_disk.push((k, b.to_vec()));
                }
            })?;
        }
        let found = on_disk.iter().any(|(k, b)| *k == h && b == line);
        let cached = self.hashed.entry(minute).or_default();
        for (k, b) in &on_disk {
            cached.add(*k, b);
        }
        cached.from_disk = true;
        Ok(found)
    }

    /// Forgets what is known of a minute (its keys, its hashed-key bytes):
    /// they are loaded again from its segment when next needed.
    pub(super) fn forget(&mut self, minute: Minute) {
        self.index.forget(minute);
        self.hashed.remove(&minute);
    }

    pub(super) fn dict_wanted(&self) -> bool {
        self.config.dict_train_bytes > 0 && self.samples.len() < self.config.dict_train_bytes
    }

    /// Records accepted and not yet taken.
    pub fn pending_records(&self) -> usize {
        self.pending.records()
    }

    /// Raw bytes accepted and not yet taken.
    pub fn pending_bytes(&self) -> usize {
        self.pending.raw_bytes()
    }

    /// Takes everything accepted so far, for the sink, and lets the ID
    /// index forget minutes that are neither recent nor in flight.
    pub fn take(&mut self) -> Pending {
        self.take_seq += 1;
        let mut p = std::mem::take(&mut self.pending);
        p.seq = self.take_seq;
        for m in p.frames.keys() {
            self.last_take.insert(*m, self.take_seq);
        }
        let appended = self.appended.load(Ordering::Acquire);
        self.last_take.retain(|_, seq| *seq > appended);
        let in_flight = &self.last_take;
        self.index.evict(self.config.resident_minutes, |m| in_flight.contains_key(&m));
        let index = &self.index;
        self.hashed.retain(|m, _| index.is_resident(*m));
        p
    }

    /// Puts back a batch the sink could not write, ahead of anything
    /// accepted since.
    pub fn restore(&mut self, mut p: Pending) {
        let newer = std::mem::take(&mut self.pending);
        for (m, enc) in newer.frames {
            let into = p.frames.entry(m).or_default();
            for (e, b) in enc.records() {
                into.push(e.kind, e.key, e.time_ms, b);
            }
        }
        for (m, c) in newer.counts {
            *p.counts.entry(m).or_default() += c;
        }
        p.quarantined.extend(newer.quarantined);
        p.system.extend(newer.system);
        p.repair.extend(newer.repair);
        p.ledger.extend(newer.ledger);
        self.pending = p;
    }

    /// Trains the stream's dictionary once enough samples are in, and hands
    /// it to the sink.
    pub fn maybe_train(&mut self, sink: &mut Sink) -> Result<()> {
        if self.config.dict_train_bytes == 0 || sink.dict.is_some() || self.samples.len() < self.config.dict_train_bytes
        {
            return Ok(());
        }
        let trained = dict::train(&self.samples, &self.sample_sizes, self.config.dict_size);
        self.samples = Vec::new();
        self.sample_sizes = Vec::new();
        self.config.dict_train_bytes = 0;
        match trained {
            Ok(bytes) => sink.use_dictionary(bytes),
            Err(e) => {
                tracing::warn!(stream = %self.label, error = %e, "dictionary training failed; frames stay plain");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod hashed_tests {
    use super::*;

    #[test]
    fn hashed_bytes_tell_a_copy_from_a_collision_and_stay_bounded() {
        let mut h = HashedBytes::default();
        h.add(7, b"one");
        h.add(7, b"one");
        assert!(h.contains(7, b"one"));
        // The same key with other bytes: a collision, not a copy.
        assert!(!h.contains(7, b"two"));
        h.add(7, b"two");
        assert!(h.contains(7, b"two") && h.contains(7, b"one"));
        assert_eq!(h.bytes, 6, "a copy is kept once");
        // Past the cap nothing is kept: the segment decides again.
        let big = vec![b'x'; HASHED_BYTES_CAP];
        h.add(8, &big);
        assert!(h.overflow && !h.contains(7, b"one") && h.by_key.is_empty());
        h.add(9, b"three");
        assert!(!h.contains(9, b"three"));
    }
}
