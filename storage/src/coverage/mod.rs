//! The coverage map: which seconds of activity time the archive provably
//! holds, per stream and partition, kept in sled.
//!
//! # Design constraints
//! - **Coverage follows durability.** A second is covered only when the
//!   data delivered for it is on disk. [`CoverageMap::cover`] takes a
//!   [`Durable`] proof, which only a successful, fsynced commit produces, and
//!   flushes sled before it returns, so coverage is itself durable. A crash
//!   between the data commit and the coverage update leaves a hole that is
//!   re-requested (dedup drops the copies); the other order could claim data
//!   that is gone, and that is the one failure an archive must not have.
//! - **Small updates.** Realtime coverage advances at every commit, about
//!   once a second per partition. Each update rewrites one value: the covered
//!   runs of one (stream, partition, UTC day). Runs, not a serialized
//!   `RoaringBitmap`: `roaring` 0.10 writes no run containers, so a covered
//!   day would serialize to 16 to 24 KB and every commit would rewrite that
//!   much; as runs it is usually 8 bytes. In memory, the queries work on the
//!   same sorted runs (interval algebra, linear in the number of runs), and
//!   [`CoverageMap::covered`] hands out a `RoaringBitmap` built with range
//!   inserts.
//! - **Fast queries.** A 5-day window reads 6 values per partition. `holes`
//!   and `minute_states` are linear in runs and minutes, never per second:
//!   milliseconds for 7,200 minutes.
//! - **Readable by another process.** sled lets one process open the store
//!   at a time (a second `open` fails on the file lock), so read-only tools
//!   open it while the archiver is stopped. The layout below is the contract
//!   for them; it is versioned, and [`CoverageMap::open`] refuses a version
//!   it does not know.
//! - **Second range.** Seconds are Unix seconds stored as `u32`; the store
//!   takes whole UTC days up to [`MAX_SECS`] (2106-02-06T00:00:00Z), so an
//!   exclusive end always fits in a `u32`. Ranges are half-open
//!   `[start, end)`; outside `[0, MAX_SECS)` is [`Error::OutOfRange`].
//!
//! # On-disk layout (format version 1)
//! All integers are big-endian, so that sled's byte order of keys is their
//! numeric order and a time range is one key range. `label` is the stream
//! label ([`crate::layout::check_label`]: 1 to 64 bytes of `[A-Za-z0-9._-]`),
//! so a NUL can end it in keys (a prefix scan for `label 0x00` never matches
//! a longer label).
//! The default tree is unused.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `b"format"` | `u32`: the format version, `1` |
//! | `streams` | `label` | JSON object: `{"partitions": N, "owed_from": S, "recovery_window_secs": W}` (N >= 1; S, optional, the Unix second from which coverage is owed; W, optional, how far back holes can be repaired; unknown fields ignored) |
//! | `covered` | `label 0x00 partition:u32 day:u32` | runs (below) |
//! | `lost` | `label 0x00 day:u32` | runs (below) |
//! | `counts` | `label 0x00 minute:u32` | 4 x `u64`: received, stored, duplicates, quarantined |
//! | `jobs` | `label 0x00 id:u64` | JSON object: a [`JobRecord`] |
//!
//! - `day` is `secs / 86400` (UTC days since the Unix epoch); `minute` is
//!   `secs / 60`.
//! - Partitions are numbered as in the protocol's `partition=N`, from 1; an
//!   unpartitioned stream (PowerTrack) has one partition, number 1.
//! - **Runs**: a sequence of pairs `start:u32 end:u32`, each the half-open
//!   range `[start, end)` of Unix seconds, all inside the key's day, sorted,
//!   non-empty, and separated by at least one second (adjacent runs are
//!   merged). An empty set is no key. A reader that finds anything else has
//!   found corruption.
//! - `covered`: the seconds whose data is durable for that partition.
//!   `lost`: the seconds marked lost (a hole that can no longer be recovered),
//!   for the stream as a whole.
//! - A store without a `meta/format` key is new (then `open` writes it) only
//!   if every other tree is empty.
//!
//! # Minute states
//! See [`Coverage`] for `full` / `partial` / `none` and [`Overlay`] for the
//! overlays and their precedence.

//!
//! # Modules
//! - this one: the map's API and the minute states;
//! - `jobs`: recovery-job records;
//! - `keys`: key encoding and the ranges a key can hold;
//! - `runs`: interval arithmetic on runs, and runs stored one value per day.

mod jobs;
mod keys;
mod runs;
#[cfg(test)]
mod tests;

pub use jobs::{JobRecord, JobState};

use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::durable::Durable;
use crate::error::{Error, Result};
use crate::layout::check_label;
use crate::time::Minute;

use keys::*;
use runs::*;

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Seconds per UTC day, the chunk of the `covered` and `lost` trees.
const DAY: i64 = 86_400;

/// The end (exclusive) of the seconds the store can hold: whole days that
/// fit in a `u32` (2106-02-06T00:00:00Z).
pub const MAX_SECS: i64 = (u32::MAX as i64 / DAY) * DAY;

const FORMAT_KEY: &[u8] = b"format";

/// A half-open range of seconds, `[start, end)`, in memory.
type Run = (i64, i64);

/// How much of a minute the archive holds, judged from the covered seconds
/// of every partition of the stream. With `P` partitions a minute has
/// `60 × P` (partition, second) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coverage {
    /// Every one of the `60 × P` pairs is covered: each second of the
    /// minute is durable for every partition.
    Full,
    /// At least one pair is covered, not all of them. A minute covered by
    /// one partition and not another is partial, not full: a partition is
    /// a disjoint share of the stream, so its missing seconds are missing
    /// data.
    Partial,
    /// No pair is covered.
    None,
}

/// What is known about a minute besides its coverage. Only a minute that
/// is not [`Coverage::Full`] has an overlay (a full minute is proven;
/// nothing more is worth saying). When several apply, the first in this
/// order wins: `Recovering`, `Lost`, `Pending`. A job at work is the
/// freshest news (even on a minute once marked lost: it may still cover
/// it); a lost mark is a final judgement; `Pending` only says "too early".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlay {
    /// A [`JobState::Running`] job's remaining range
    /// (`[resume_secs, end_secs)`) overlaps the minute.
    Recovering,
    /// Some second of the minute is marked lost ([`CoverageMap::mark_lost`]).
    Lost,
    /// The minute is too recent to judge: it ends after
    /// `now_secs - pending_secs` (its data may still be in flight, or inside
    /// the realtime delivery-latency allowance).
    Pending,
}

/// Per-minute counters, for the audit `received = stored + duplicates +
/// quarantined`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Counts {
    /// Lines counted at the very start of ingestion.
    pub received: u64,
    /// Activities appended to a segment.
    pub stored: u64,
    /// Activities dropped by the ID index as copies.
    pub duplicates: u64,
    /// Lines written to quarantine.
    pub quarantined: u64,
}

impl Counts {
    /// `received == stored + duplicates + quarantined`: every line that came
    /// in is accounted for.
    pub fn balanced(&self) -> bool {
        Some(self.received) == self.stored.checked_add(self.duplicates).and_then(|s| s.checked_add(self.quarantined))
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// Adds `d` to these counts (saturating).
    pub fn add(&mut self, d: &Counts) {
        *self = self.saturating_add(*d);
    }

    fn saturating_add(self, d: Counts) -> Counts {
        Counts {
            received: self.received.saturating_add(d.received),
            stored: self.stored.saturating_add(d.stored),
            duplicates: self.duplicates.saturating_add(d.duplicates),
            quarantined: self.quarantined.saturating_add(d.quarantined),
        }
    }

    fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.received.to_be_bytes());
        b[8..16].copy_from_slice(&self.stored.to_be_bytes());
        b[16..24].copy_from_slice(&self.duplicates.to_be_bytes());
        b[24..32].copy_from_slice(&self.quarantined.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Counts> {
        if b.len() != 32 {
            return Err(corrupt(format!("counts value of {} bytes, expected 32", b.len())));
        }
        let u = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Ok(Counts { received: u(0), stored: u(8), duplicates: u(16), quarantined: u(24) })
    }
}

impl Coverage {
    /// `"full"`, `"partial"` or `"none"`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Full => "full",
            Coverage::Partial => "partial",
            Coverage::None => "none",
        }
    }
}

impl Overlay {
    /// `"recovering"`, `"lost"` or `"pending"`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlay::Recovering => "recovering",
            Overlay::Lost => "lost",
            Overlay::Pending => "pending",
        }
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, d: Counts) -> Counts {
        self.saturating_add(d)
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, d: Counts) {
        *self = self.saturating_add(d);
    }
}

/// One minute of [`CoverageMap::minute_states`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteReport {
    pub minute: Minute,
    pub coverage: Coverage,
    pub overlay: Option<Overlay>,
    /// Zero when nothing was counted for the minute.
    pub counts: Counts,
}

/// The coverage map of an archive: covered seconds per (stream, partition),
/// lost marks, per-minute counters, recovery jobs and per-stream metadata,
/// in one sled database (layout in the [module docs](self)).
///
/// # The invariant
/// **Coverage is recorded only by a commit that first made the covered
/// data durable.** [`cover`](Self::cover) is the only way to add coverage,
/// and it demands a [`Durable`] proof, which only a successful, fsynced
/// commit of the segments produces (its constructor is private to this
/// crate). Why this order: a crash after the data and before the coverage
/// costs a re-request (dedup drops the copies), whereas coverage recorded
/// before the data would, after a crash, claim seconds the archive does not
/// hold: the hole would never be recovered and would be reported complete.
/// Removing coverage ([`uncover`](Self::uncover)) needs no proof: it can
/// only make the map more pessimistic.
///
/// Writes are serialized by an internal lock and applied atomically per
/// call (a sled batch); the type is `Send + Sync` and can be shared by
/// reference or in an `Arc`.
#[derive(Debug)]
pub struct CoverageMap {
    db: sled::Db,
    streams: sled::Tree,
    covered: sled::Tree,
    lost: sled::Tree,
    counts: sled::Tree,
    jobs: sled::Tree,
    /// Serializes read-modify-write updates (sled batches are atomic but do
    /// not compare before they write).
    write: Mutex<()>,
    /// Calls of [`uncover`](Self::uncover) by this process, counted after
    /// each is applied: see [`withdrawals`](Self::withdrawals).
    withdrawals: std::sync::atomic::AtomicU64,
}

#[derive(Serialize, Deserialize)]
struct StreamMeta {
    partitions: u32,
    /// Unix second from which the archive owes coverage (its first start,
    /// or earlier with `--since`): holes before it are not holes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owed_from: Option<i64>,
    /// How far back a hole of this stream can still be repaired, in
    /// seconds: its Recovery window, or Backfill's reach for a stream
    /// without Recovery (Likes). Set by the archiver; read by reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery_window_secs: Option<i64>,
}

impl CoverageMap {
    /// Opens the store at `path`, creating it if it does not exist. Fails
    /// if another process has it open (sled's file lock), or if it was
    /// written in a format version this build does not know.
    ///
    /// If sled reports its lock busy, an earlier handle of this process may
    /// still be shutting down (sled's background flusher holds the database
    /// for a moment after the last handle drops; sled's own tests block on
    /// the lock for this reason): it retries for up to two seconds before
    /// reporting the error, which then names the lock (another process).
    pub fn open(path: &Path) -> Result<CoverageMap> {
        let mut tries = 0;
        let db = loop {
            let opened = sled::Config::new()
                .path(path)
                // sled's default is 1 GiB; coverage is small and read by range.
                .cache_capacity(64 << 20)
                .open();
            match opened {
                Err(e) if is_lock_busy(&e) => {
                    if tries >= 100 {
                        return Err(Error::CoverageLocked { path: path.to_path_buf() });
                    }
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other?,
            }
        };
        CoverageMap::from_db(db)
    }

    /// Opens an existing store and never creates one: for read-only tools,
    /// so that a mistyped `--data` is an error rather than a new empty store.
    pub fn open_existing(path: &Path) -> Result<CoverageMap> {
        if !path.join("conf").is_file() || !path.join("db").is_file() {
            return Err(Error::NotFound { what: "coverage store", path: path.to_path_buf() });
        }
        let map = CoverageMap::open(path)?;
        Ok(map)
    }

    fn from_db(db: sled::Db) -> Result<CoverageMap> {
        let meta = db.open_tree("meta")?;
        let map = CoverageMap {
            streams: db.open_tree("streams")?,
            covered: db.open_tree("covered")?,
            lost: db.open_tree("lost")?,
            counts: db.open_tree("counts")?,
            jobs: db.open_tree("jobs")?,
            db,
            write: Mutex::new(()),
            withdrawals: std::sync::atomic::AtomicU64::new(0),
        };
        match meta.get(FORMAT_KEY)? {
            Some(v) => {
                let version = be_u32(&v).ok_or_else(|| corrupt(format!("format key of {} bytes", v.len())))?;
                if version != FORMAT_VERSION {
                    return Err(corrupt(format!("format version {version}; this build reads {FORMAT_VERSION}")));
                }
            }
            None => {
                let trees = [&map.streams, &map.covered, &map.lost, &map.counts, &map.jobs];
                if trees.iter().any(|t| !t.is_empty()) {
                    return Err(corrupt("data without a format version".to_string()));
                }
                meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())?;
                map.db.flush()?;
            }
        }
        Ok(map)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, so a panic under it leaves nothing torn.
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `stream` with its partition count (1 for an unpartitioned
    /// stream), or changes it. Coverage of partitions above the count stays
    /// stored but no longer counts.
    pub fn set_partitions(&self, stream: &str, partitions: u32) -> Result<()> {
        check_label(stream)?;
        if partitions == 0 {
            return Err(Error::BadPartition { stream: stream.to_string(), partition: 0, partitions: 0 });
        }
        let old = self.stream_meta(stream)?;
        let owed_from = old.as_ref().and_then(|m| m.owed_from);
        let recovery_window_secs = old.as_ref().and_then(|m| m.recovery_window_secs);
        self.put_stream_meta(stream, &StreamMeta { partitions, owed_from, recovery_window_secs })
    }

    fn put_stream_meta(&self, stream: &str, meta: &StreamMeta) -> Result<()> {
        let json = serde_json::to_vec(meta).map_err(|e| Error::BadRecord(format!("stream metadata: {e}")))?;
        self.streams.insert(stream.as_bytes(), json)?;
        self.db.flush()?;
        Ok(())
    }

    fn stream_meta(&self, stream: &str) -> Result<Option<StreamMeta>> {
        match self.streams.get(stream.as_bytes())? {
            None => Ok(None),
            Some(v) => {
                serde_json::from_slice(&v).map(Some).map_err(|e| corrupt(format!("stream {stream}: metadata: {e}")))
            }
        }
    }

    /// Records the Unix second from which `stream` owes coverage. Only ever
    /// moves earlier: a later start does not forgive earlier holes.
    /// The stream must be registered with [`CoverageMap::set_partitions`].
    pub fn owe_from(&self, stream: &str, secs: i64) -> Result<i64> {
        let Some(mut meta) = self.stream_meta(stream)? else {
            return Err(Error::UnknownStream(stream.to_string()));
        };
        let from = meta.owed_from.map_or(secs, |f| f.min(secs));
        if meta.owed_from != Some(from) {
            meta.owed_from = Some(from);
            self.put_stream_meta(stream, &meta)?;
        }
        Ok(from)
    }

    /// Records how far back holes of `stream` can be repaired (seconds).
    /// The stream must be registered with [`CoverageMap::set_partitions`].
    pub fn set_recovery_window(&self, stream: &str, secs: i64) -> Result<()> {
        let Some(mut meta) = self.stream_meta(stream)? else {
            return Err(Error::UnknownStream(stream.to_string()));
        };
        if meta.recovery_window_secs != Some(secs) {
            meta.recovery_window_secs = Some(secs);
            self.put_stream_meta(stream, &meta)?;
        }
        Ok(())
    }

    /// How far back holes of `stream` can be repaired, if recorded.
    pub fn recovery_window(&self, stream: &str) -> Result<Option<i64>> {
        Ok(self.stream_meta(stream)?.and_then(|m| m.recovery_window_secs))
    }

    /// The Unix second from which `stream` owes coverage, if recorded.
    pub fn owed_from(&self, stream: &str) -> Result<Option<i64>> {
        Ok(self.stream_meta(stream)?.and_then(|m| m.owed_from))
    }

    /// The partition count of `stream`, or `None` if it was never registered.
    pub fn partitions(&self, stream: &str) -> Result<Option<u32>> {
        check_label(stream)?;
        match self.streams.get(stream.as_bytes())? {
            None => Ok(None),
            Some(v) => {
                let meta: StreamMeta =
                    serde_json::from_slice(&v).map_err(|e| corrupt(format!("stream {stream}: metadata: {e}")))?;
                if meta.partitions == 0 {
                    return Err(corrupt(format!("stream {stream}: 0 partitions")));
                }
                Ok(Some(meta.partitions))
            }
        }
    }

    fn known_partitions(&self, stream: &str) -> Result<u32> {
        self.partitions(stream)?.ok_or_else(|| Error::UnknownStream(stream.to_string()))
    }

    /// The registered streams, in byte order of their labels.
    pub fn streams(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kv in self.streams.iter() {
            let (k, _) = kv?;
            let label = String::from_utf8(k.to_vec()).map_err(|_| corrupt("stream label is not UTF-8".to_string()))?;
            out.push(label);
        }
        Ok(out)
    }

    /// Records that the seconds `secs` of `partition` of `stream` are
    /// covered, then flushes sled so the coverage is itself durable.
    ///
    /// **The invariant:** call this only with the proof of a commit that
    /// made durable every frame delivered for `secs`. The proof must be for
    /// this stream ([`Error::WrongProof`] otherwise): a commit of one stream
    /// says nothing about another's data. The stream must be registered
    /// and `partition` in `1..=partitions`. The proof is borrowed: one
    /// commit can cover several partitions and ranges.
    pub fn cover(&self, proof: &Durable, stream: &str, partition: u32, secs: Range<i64>) -> Result<()> {
        check_label(stream)?;
        if proof.stream() != stream {
            return Err(Error::WrongProof { stream: stream.to_string(), proof: proof.stream().to_string() });
        }
        let parts = self.known_partitions(stream)?;
        check_partition(stream, partition, parts)?;
        let secs = check_secs(&secs)?;
        if secs.0 == secs.1 {
            return Ok(());
        }
        {
            let _w = self.lock();
            let mut batch = sled::Batch::default();
            let prefix = covered_prefix(stream, partition);
            edit_days(&self.covered, &prefix, secs, &mut batch, |runs, piece| {
                runs.push(piece);
                normalize(runs);
            })?;
            self.covered.apply_batch(batch)?;
        }
        // Outside the lock: a flush makes every write before it durable,
        // and other writers need not wait for this one's fsync.
        self.db.flush()?;
        Ok(())
    }

    /// Removes the seconds `secs` from every partition of `stream`, then
    /// flushes. For repair: a segment found damaged on open un-covers its
    /// minute, so the archiver requests it again.
    pub fn uncover(&self, stream: &str, secs: Range<i64>) -> Result<()> {
        check_label(stream)?;
        let parts = self.known_partitions(stream)?;
        let secs = check_secs(&secs)?;
        if secs.0 == secs.1 {
            return Ok(());
        }
        {
            let _w = self.lock();
            // One batch: every partition loses the range, or none does.
            let mut batch = sled::Batch::default();
            for partition in 1..=parts {
                let prefix = covered_prefix(stream, partition);
                edit_days(&self.covered, &prefix, secs, &mut batch, |runs, piece| {
                    *runs = subtract(runs, piece);
                })?;
            }
            self.covered.apply_batch(batch)?;
        }
        // Counted once applied: a reader that sees the count unchanged
        // across its work saw no withdrawal it could have missed.
        self.withdrawals.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.db.flush()?;
        Ok(())
    }

    /// How many times this process withdrew coverage so far. A copier that
    /// reads coverage and then the data it covers (the bucket's uploader)
    /// reads this before and after: unchanged, no repair withdrew coverage
    /// and cut a segment meanwhile.
    pub fn withdrawals(&self) -> u64 {
        self.withdrawals.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The covered seconds of one partition inside `secs`, as runs
    /// (sorted, disjoint, maximal).
    pub fn covered_ranges(&self, stream: &str, partition: u32, secs: Range<i64>) -> Result<Vec<Range<i64>>> {
        check_label(stream)?;
        let secs = check_secs(&secs)?;
        let runs = load_runs(&self.covered, &covered_prefix(stream, partition), secs)?;
        Ok(to_ranges(&runs))
    }

    /// The covered seconds of one partition inside `secs`, as a bitmap of
    /// Unix seconds.
    pub fn covered(&self, stream: &str, partition: u32, secs: Range<i64>) -> Result<RoaringBitmap> {
        let mut bitmap = RoaringBitmap::new();
        for r in self.covered_ranges(stream, partition, secs)? {
            // In range by check_secs: 0 <= start < end <= MAX_SECS < 2^32.
            bitmap.insert_range(r.start as u32..r.end as u32);
        }
        Ok(bitmap)
    }

    /// The seconds of `window` not covered by every partition of `stream`,
    /// merged into maximal ranges, sorted. Lost seconds are holes too:
    /// [`lost`](Self::lost) tells which of them no request can close.
    pub fn holes(&self, stream: &str, window: Range<i64>) -> Result<Vec<Range<i64>>> {
        check_label(stream)?;
        let parts = self.known_partitions(stream)?;
        let win = check_secs(&window)?;
        let all = self.all_partitions(stream, parts, win)?;
        Ok(to_ranges(&complement(&all, win)))
    }

    /// Seconds covered by every partition.
    fn all_partitions(&self, stream: &str, parts: u32, win: Run) -> Result<Vec<Run>> {
        Ok(self.all_and_any(stream, parts, win)?.0)
    }

    /// Seconds covered by every partition, and by some partition.
    fn all_and_any(&self, stream: &str, parts: u32, win: Run) -> Result<(Vec<Run>, Vec<Run>)> {
        let mut all: Option<Vec<Run>> = None;
        let mut any: Vec<Run> = Vec::new();
        for partition in 1..=parts {
            let runs = load_runs(&self.covered, &covered_prefix(stream, partition), win)?;
            any = union(&any, &runs);
            all = Some(match all {
                None => runs,
                Some(a) => intersect(&a, &runs),
            });
        }
        Ok((all.unwrap_or_default(), any))
    }

    /// The state of every minute of `minutes`, in order. `now_secs` and
    /// `pending_secs` decide [`Overlay::Pending`]: a minute ending after
    /// `now_secs - pending_secs` is too recent to judge. See [`Coverage`]
    /// and [`Overlay`] for the definitions and precedence.
    pub fn minute_states(
        &self,
        stream: &str,
        minutes: Range<Minute>,
        now_secs: i64,
        pending_secs: i64,
    ) -> Result<Vec<MinuteReport>> {
        check_label(stream)?;
        let parts = self.known_partitions(stream)?;
        let win = minute_window(&minutes)?;
        let (all, any) = self.all_and_any(stream, parts, win)?;
        let lost = load_runs(&self.lost, &stream_prefix(stream), win)?;
        let mut running: Vec<Run> = self
            .jobs(stream)?
            .into_iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| (j.resume_secs.max(win.0), j.end_secs.min(win.1)))
            .filter(|r| r.0 < r.1)
            .collect();
        normalize(&mut running);
        let counts = self.counts(stream, minutes.clone())?;
        let pending_after = now_secs.saturating_sub(pending_secs);

        let (mut all_c, mut any_c) = (Cursor::new(&all), Cursor::new(&any));
        let (mut lost_c, mut job_c) = (Cursor::new(&lost), Cursor::new(&running));
        let mut counts = counts.into_iter().peekable();
        let mut out = Vec::with_capacity((minutes.end.0 - minutes.start.0).max(0) as usize);
        for m in minutes.start.0..minutes.end.0 {
            let minute = Minute(m);
            let (s, e) = (minute.start_secs(), minute.start_secs() + 60);
            let coverage = if all_c.contains(s, e) {
                Coverage::Full
            } else if any_c.overlaps(s, e) {
                Coverage::Partial
            } else {
                Coverage::None
            };
            // Advance every cursor whatever the branch, so they stay monotone.
            let recovering = job_c.overlaps(s, e);
            let lost_here = lost_c.overlaps(s, e);
            let overlay = if coverage == Coverage::Full {
                None
            } else if recovering {
                Some(Overlay::Recovering)
            } else if lost_here {
                Some(Overlay::Lost)
            } else if e > pending_after {
                Some(Overlay::Pending)
            } else {
                None
            };
            let mut c = Counts::default();
            while let Some((cm, cc)) = counts.peek() {
                if cm.0 < m {
                    counts.next();
                } else {
                    if cm.0 == m {
                        c = *cc;
                    }
                    break;
                }
            }
            out.push(MinuteReport { minute, coverage, overlay, counts: c });
        }
        Ok(out)
    }

    /// Adds `delta` to the counters of `minute`. Pass the four counters of
    /// one batch in one call, so that the audit identity holds after a
    /// crash too (one call is one atomic write). Not flushed: counters are
    /// statistics, flushed by the next [`cover`](Self::cover), [`flush`](Self::flush)
    /// or sled's background flush (every 500 ms).
    pub fn add_counts(&self, stream: &str, minute: Minute, delta: Counts) -> Result<()> {
        check_label(stream)?;
        let key = counts_key(stream, check_minute(minute)?);
        let _w = self.lock();
        let old = match self.counts.get(&key)? {
            Some(v) => Counts::decode(&v)?,
            None => Counts::default(),
        };
        self.counts.insert(key, &(old + delta).encode())?;
        Ok(())
    }

    /// The counters of the minutes of `minutes` that have any, in order
    /// (minutes never counted are absent).
    pub fn counts(&self, stream: &str, minutes: Range<Minute>) -> Result<Vec<(Minute, Counts)>> {
        check_label(stream)?;
        minute_window(&minutes)?;
        let mut out = Vec::new();
        if minutes.start >= minutes.end {
            return Ok(out);
        }
        let lo = counts_key(stream, minutes.start.0 as u32);
        let hi = counts_key(stream, minutes.end.0 as u32);
        let plen = stream.len() + 1;
        for kv in self.counts.range(lo..hi) {
            let (k, v) = kv?;
            let m =
                be_u32(&k[plen.min(k.len())..]).ok_or_else(|| corrupt(format!("counts key of {} bytes", k.len())))?;
            out.push((Minute(m as i64), Counts::decode(&v)?));
        }
        Ok(out)
    }

    /// Marks the seconds `secs` of `stream` lost: a hole that can no longer
    /// be recovered (older than the recovery window, or on a stream with no
    /// Recovery). Coverage is untouched; a minute that becomes full anyway
    /// (a redundant connection had it) shows as full. Flushed.
    pub fn mark_lost(&self, stream: &str, secs: Range<i64>) -> Result<()> {
        check_label(stream)?;
        let secs = check_secs(&secs)?;
        if secs.0 == secs.1 {
            return Ok(());
        }
        {
            let _w = self.lock();
            let mut batch = sled::Batch::default();
            edit_days(&self.lost, &stream_prefix(stream), secs, &mut batch, |runs, piece| {
                runs.push(piece);
                normalize(runs);
            })?;
            self.lost.apply_batch(batch)?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// The seconds of `window` marked lost, merged into maximal ranges.
    pub fn lost(&self, stream: &str, window: Range<i64>) -> Result<Vec<Range<i64>>> {
        check_label(stream)?;
        let win = check_secs(&window)?;
        Ok(to_ranges(&load_runs(&self.lost, &stream_prefix(stream), win)?))
    }

    /// Flushes everything to disk (fsync).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

fn corrupt(msg: String) -> Error {
    Error::CorruptCoverage(msg)
}

/// Whether sled refused to open because another handle holds its file lock.
/// sled 0.34 reports this only as an `io::Error` of kind `Other` with a
/// message (`config.rs`, "could not acquire lock"): this is the one place
/// that reads that text, and it becomes [`Error::CoverageLocked`].
fn is_lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::Other
        && io.to_string().contains("could not acquire lock"))
}
