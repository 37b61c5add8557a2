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
//! label in UTF-8: 1 to 255 bytes, no NUL byte, which is why a NUL can end
//! it in keys (a prefix scan for `label 0x00` never matches a longer label).
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

use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::durable::Durable;
use crate::error::{Error, Result};
use crate::time::Minute;

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

/// Where a recovery job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Planned, waiting for a slot (at most 2 jobs run per account) or for
    /// the connection rate limit.
    Queued,
    /// A recovery connection is open or being opened. Only these give the
    /// [`Overlay::Recovering`] overlay.
    Running,
    /// Given up (for example its range left the recovery window); kept for
    /// inspection until removed.
    Failed,
}

/// A recovery job, stored as JSON in the `jobs` tree. The holes are the
/// source of truth for what to recover; job records say what is being done
/// about them and let a restarted archiver resume where a job broke off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// From [`CoverageMap::new_job_id`]; unique within the store.
    pub id: u64,
    pub stream: String,
    /// The partition requested, or `None` for every partition (or an
    /// unpartitioned stream).
    pub partition: Option<u32>,
    /// The requested range `[start_secs, end_secs)`.
    pub start_secs: i64,
    pub end_secs: i64,
    /// Progress: everything before this is covered by the job (the start of
    /// the minute of the last activity it delivered). In
    /// `start_secs..=end_secs`.
    pub resume_secs: i64,
    pub state: JobState,
    /// Connections opened for this job so far.
    pub attempts: u32,
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
        self.db.flush()?;
        Ok(())
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

    /// A new job ID, unique in this store, across restarts too.
    pub fn new_job_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Inserts or replaces the job `job.id` of `job.stream`. Not flushed
    /// (the holes, not the jobs, say what to recover).
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        check_label(&job.stream)?;
        check_secs(&(job.start_secs..job.end_secs))?;
        if !(job.start_secs..=job.end_secs).contains(&job.resume_secs) {
            return Err(Error::BadRecord(format!(
                "job {}: resume_secs {} outside {}..={}",
                job.id, job.resume_secs, job.start_secs, job.end_secs
            )));
        }
        if job.partition == Some(0) {
            return Err(Error::BadRecord(format!("job {}: partition 0", job.id)));
        }
        let json = serde_json::to_vec(job).map_err(|e| Error::BadRecord(format!("job {}: {e}", job.id)))?;
        self.jobs.insert(job_key(&job.stream, job.id), json)?;
        Ok(())
    }

    /// The jobs of `stream`, by ID.
    pub fn jobs(&self, stream: &str) -> Result<Vec<JobRecord>> {
        check_label(stream)?;
        let mut out = Vec::new();
        for kv in self.jobs.scan_prefix(stream_prefix(stream)) {
            let (_, v) = kv?;
            let job: JobRecord =
                serde_json::from_slice(&v).map_err(|e| corrupt(format!("stream {stream}: job record: {e}")))?;
            out.push(job);
        }
        Ok(out)
    }

    /// Removes a job; `true` if it existed.
    pub fn remove_job(&self, stream: &str, id: u64) -> Result<bool> {
        check_label(stream)?;
        Ok(self.jobs.remove(job_key(stream, id))?.is_some())
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

fn be_u32(b: &[u8]) -> Option<u32> {
    let a: [u8; 4] = b.try_into().ok()?;
    Some(u32::from_be_bytes(a))
}

use crate::layout::check_label;

/// Whether sled refused to open because another handle holds its file lock.
/// sled 0.34 reports this only as an `io::Error` of kind `Other` with a
/// message (`config.rs`, "could not acquire lock"): this is the one place
/// that reads that text, and it becomes [`Error::CoverageLocked`].
fn is_lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::Other
        && io.to_string().contains("could not acquire lock"))
}

fn check_partition(stream: &str, partition: u32, parts: u32) -> Result<()> {
    if partition == 0 || partition > parts {
        return Err(Error::BadPartition { stream: stream.to_string(), partition, partitions: parts });
    }
    Ok(())
}

/// A valid half-open range of seconds inside `[0, MAX_SECS)`.
fn check_secs(r: &Range<i64>) -> Result<Run> {
    if r.start < 0 || r.end > MAX_SECS || r.start > r.end {
        return Err(Error::OutOfRange(format!("seconds {}..{}: need 0 <= start <= end <= {MAX_SECS}", r.start, r.end)));
    }
    Ok((r.start, r.end))
}

/// The seconds of a valid range of minutes (checked before multiplying, so
/// an absurd `Minute` cannot overflow).
fn minute_window(minutes: &Range<Minute>) -> Result<Run> {
    let max = MAX_SECS / 60;
    if !(0..=max).contains(&minutes.start.0) || !(0..=max).contains(&minutes.end.0) {
        return Err(Error::OutOfRange(format!(
            "minutes {}..{}: need 0 <= minute <= {max}",
            minutes.start.0, minutes.end.0
        )));
    }
    check_secs(&(minutes.start.start_secs()..minutes.end.start_secs()))
}

fn check_minute(m: Minute) -> Result<u32> {
    if m.0 < 0 || m.0 >= MAX_SECS / 60 {
        return Err(Error::OutOfRange(format!("minute {} out of range", m.0)));
    }
    Ok(m.0 as u32)
}

fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 13);
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k
}

fn covered_prefix(stream: &str, partition: u32) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn counts_key(stream: &str, minute: u32) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&minute.to_be_bytes());
    k
}

fn job_key(stream: &str, id: u64) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn day_key(prefix: &[u8], day: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 4);
    k.extend_from_slice(prefix);
    // 0 <= day < 2^32 / 86400 by check_secs.
    k.extend_from_slice(&(day as u32).to_be_bytes());
    k
}

/// Applies `edit` to the runs of every day `secs` touches (with the part of
/// `secs` inside that day) and adds the writes to `batch`.
fn edit_days(
    tree: &sled::Tree,
    prefix: &[u8],
    secs: Run,
    batch: &mut sled::Batch,
    mut edit: impl FnMut(&mut Vec<Run>, Run),
) -> Result<()> {
    let mut day = secs.0.div_euclid(DAY);
    while day * DAY < secs.1 {
        let piece = (secs.0.max(day * DAY), secs.1.min((day + 1) * DAY));
        let key = day_key(prefix, day);
        let mut runs = match tree.get(&key)? {
            Some(v) => decode_runs(&v, day)?,
            None => Vec::new(),
        };
        edit(&mut runs, piece);
        if runs.is_empty() {
            batch.remove(key);
        } else {
            batch.insert(key, encode_runs(&runs));
        }
        day += 1;
    }
    Ok(())
}

/// The runs stored under `prefix` (one key per day), clipped to `win`,
/// merged across midnight.
fn load_runs(tree: &sled::Tree, prefix: &[u8], win: Run) -> Result<Vec<Run>> {
    let mut out: Vec<Run> = Vec::new();
    if win.0 >= win.1 {
        return Ok(out);
    }
    let lo = day_key(prefix, win.0.div_euclid(DAY));
    let hi = day_key(prefix, (win.1 - 1).div_euclid(DAY));
    for kv in tree.range(lo..=hi) {
        let (k, v) = kv?;
        let day =
            be_u32(&k[prefix.len().min(k.len())..]).ok_or_else(|| corrupt(format!("day key of {} bytes", k.len())))?;
        for (s, e) in decode_runs(&v, day as i64)? {
            let (s, e) = (s.max(win.0), e.min(win.1));
            if s >= e {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
    }
    Ok(out)
}

fn encode_runs(runs: &[Run]) -> Vec<u8> {
    let mut v = Vec::with_capacity(runs.len() * 8);
    for &(s, e) in runs {
        // Inside one day below MAX_SECS, so both fit in a u32.
        v.extend_from_slice(&(s as u32).to_be_bytes());
        v.extend_from_slice(&(e as u32).to_be_bytes());
    }
    v
}

/// Decodes and checks the runs of `day` (see the module docs).
fn decode_runs(v: &[u8], day: i64) -> Result<Vec<Run>> {
    if v.is_empty() || !v.chunks_exact(8).remainder().is_empty() {
        return Err(corrupt(format!("day {day}: runs value of {} bytes", v.len())));
    }
    let (lo, hi) = (day * DAY, (day + 1) * DAY);
    let mut runs = Vec::with_capacity(v.len() / 8);
    let mut prev_end = i64::MIN;
    for pair in v.chunks_exact(8) {
        let s = be_u32(&pair[..4]).unwrap_or(0) as i64;
        let e = be_u32(&pair[4..]).unwrap_or(0) as i64;
        if s < lo || e > hi || s >= e || s <= prev_end {
            return Err(corrupt(format!("day {day}: bad run {s}..{e}")));
        }
        prev_end = e;
        runs.push((s, e));
    }
    Ok(runs)
}

fn to_ranges(runs: &[Run]) -> Vec<Range<i64>> {
    runs.iter().map(|&(s, e)| s..e).collect()
}

/// Sorts, drops empty runs, merges overlapping and adjacent ones.
fn normalize(runs: &mut Vec<Run>) {
    runs.retain(|r| r.0 < r.1);
    runs.sort_unstable();
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for &(s, e) in runs.iter() {
        match out.last_mut() {
            Some(last) if last.1 >= s => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *runs = out;
}

fn union(a: &[Run], b: &[Run]) -> Vec<Run> {
    let mut v: Vec<Run> = a.iter().chain(b.iter()).copied().collect();
    normalize(&mut v);
    v
}

/// Intersection of two normalized run lists.
fn intersect(a: &[Run], b: &[Run]) -> Vec<Run> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// A normalized run list less one run.
fn subtract(runs: &[Run], cut: Run) -> Vec<Run> {
    let mut out = Vec::with_capacity(runs.len() + 1);
    for &(s, e) in runs {
        if e <= cut.0 || s >= cut.1 {
            out.push((s, e));
            continue;
        }
        if s < cut.0 {
            out.push((s, cut.0));
        }
        if e > cut.1 {
            out.push((cut.1, e));
        }
    }
    out
}

/// The seconds of `win` outside a normalized run list.
fn complement(runs: &[Run], win: Run) -> Vec<Run> {
    let mut out = Vec::new();
    let mut at = win.0;
    for &(s, e) in runs {
        if e <= at {
            continue;
        }
        if s >= win.1 {
            break;
        }
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < win.1 {
        out.push((at, win.1));
    }
    out
}

/// Walks a normalized run list with queries of increasing start.
struct Cursor<'a> {
    runs: &'a [Run],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(runs: &'a [Run]) -> Cursor<'a> {
        Cursor { runs, i: 0 }
    }

    fn skip_before(&mut self, s: i64) {
        while self.i < self.runs.len() && self.runs[self.i].1 <= s {
            self.i += 1;
        }
    }

    /// Does one run hold all of `[s, e)`?
    fn contains(&mut self, s: i64, e: i64) -> bool {
        self.skip_before(s);
        self.runs.get(self.i).is_some_and(|r| r.0 <= s && r.1 >= e)
    }

    /// Does some run meet `[s, e)`?
    fn overlaps(&mut self, s: i64, e: i64) -> bool {
        self.skip_before(s);
        self.runs.get(self.i).is_some_and(|r| r.0 < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Instant;

    /// Midnight of 2024-10-03, a day boundary.
    const MIDNIGHT: i64 = 19_999 * DAY;

    fn proof(stream: &str) -> Durable {
        Durable::new(stream, 1)
    }

    fn temp_map() -> (tempfile::TempDir, CoverageMap) {
        let dir = tempfile::tempdir().expect("tempdir");
        let map = CoverageMap::open(&dir.path().join("coverage")).expect("open");
        (dir, map)
    }

    fn states(map: &CoverageMap, stream: &str, from: i64, to: i64) -> Vec<(Coverage, Option<Overlay>)> {
        map.minute_states(stream, Minute::of_secs(from)..Minute::of_secs(to), MAX_SECS, 0)
            .expect("minute_states")
            .into_iter()
            .map(|r| (r.coverage, r.overlay))
            .collect()
    }

    #[test]
    fn shareable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<CoverageMap>();
    }

    #[test]
    fn absurd_minutes_are_refused_not_overflowed() {
        let (_d, map) = temp_map();
        map.set_partitions("s", 1).expect("set");
        let r = map.minute_states("s", Minute(0)..Minute(i64::MAX), 0, 0);
        assert!(matches!(r, Err(Error::OutOfRange(_))));
        assert!(matches!(map.counts("s", Minute(-5)..Minute(0)), Err(Error::OutOfRange(_))));
        assert!(matches!(map.add_counts("s", Minute(i64::MIN), Counts::default()), Err(Error::OutOfRange(_))));
        assert_eq!(Coverage::Partial.as_str(), "partial");
        assert_eq!(serde_json::to_string(&Overlay::Recovering).expect("json"), "\"recovering\"");
    }

    #[test]
    fn run_algebra() {
        let mut v = vec![(5, 7), (1, 3), (3, 4), (10, 10), (6, 9)];
        normalize(&mut v);
        assert_eq!(v, vec![(1, 4), (5, 9)]);
        assert_eq!(intersect(&v, &[(0, 2), (3, 6), (8, 20)]), vec![(1, 2), (3, 4), (5, 6), (8, 9)]);
        assert_eq!(subtract(&v, (2, 6)), vec![(1, 2), (6, 9)]);
        assert_eq!(complement(&v, (0, 12)), vec![(0, 1), (4, 5), (9, 12)]);
        assert_eq!(complement(&v, (2, 3)), Vec::<Run>::new());
        assert_eq!(complement(&[], (2, 3)), vec![(2, 3)]);
        assert_eq!(union(&[(1, 2)], &[(2, 3), (5, 6)]), vec![(1, 3), (5, 6)]);
    }

    #[test]
    fn runs_encode_and_reject_corruption() {
        let day = 19_999;
        let runs = vec![(MIDNIGHT, MIDNIGHT + 5), (MIDNIGHT + 7, MIDNIGHT + DAY)];
        let bytes = encode_runs(&runs);
        assert_eq!(bytes.len(), 16);
        assert_eq!(decode_runs(&bytes, day).expect("decode"), runs);
        // Wrong day, truncated, overlapping or adjacent runs: corrupt.
        assert!(matches!(decode_runs(&bytes, day + 1), Err(Error::CorruptCoverage(_))));
        assert!(matches!(decode_runs(&bytes[..12], day), Err(Error::CorruptCoverage(_))));
        let adjacent = encode_runs(&[(MIDNIGHT, MIDNIGHT + 5), (MIDNIGHT + 5, MIDNIGHT + 6)]);
        assert!(matches!(decode_runs(&adjacent, day), Err(Error::CorruptCoverage(_))));
        assert!(matches!(decode_runs(&[], day), Err(Error::CorruptCoverage(_))));
    }

    #[test]
    fn cover_across_midnight_and_query() {
        let (_d, map) = temp_map();
        map.set_partitions("decahose", 2).expect("set");
        let p = proof("decahose");
        // Partition 1 covers 23:58..00:02, partition 2 23:59..00:01:30.
        map.cover(&p, "decahose", 1, MIDNIGHT - 120..MIDNIGHT + 120).expect("cover");
        map.cover(&p, "decahose", 2, MIDNIGHT - 60..MIDNIGHT + 90).expect("cover");
        // Two day keys per partition, merged back into one run on read.
        assert_eq!(map.covered.len(), 4);
        assert_eq!(
            map.covered_ranges("decahose", 1, 0..MAX_SECS).expect("ranges"),
            vec![MIDNIGHT - 120..MIDNIGHT + 120]
        );
        let bitmap = map.covered("decahose", 2, MIDNIGHT..MIDNIGHT + 1000).expect("bitmap");
        assert_eq!(bitmap.len(), 90);
        assert_eq!(bitmap.min(), Some(MIDNIGHT as u32));
        assert_eq!(
            map.holes("decahose", MIDNIGHT - 300..MIDNIGHT + 300).expect("holes"),
            vec![MIDNIGHT - 300..MIDNIGHT - 60, MIDNIGHT + 90..MIDNIGHT + 300]
        );
        let (full, partial, none) = (Coverage::Full, Coverage::Partial, Coverage::None);
        assert_eq!(
            states(&map, "decahose", MIDNIGHT - 180, MIDNIGHT + 180),
            vec![(none, None), (partial, None), (full, None), (full, None), (partial, None), (none, None)]
        );
        // Covering what is covered changes nothing; adjacent runs merge.
        map.cover(&p, "decahose", 2, MIDNIGHT + 90..MIDNIGHT + 120).expect("cover");
        assert_eq!(
            map.covered_ranges("decahose", 2, 0..MAX_SECS).expect("ranges"),
            vec![MIDNIGHT - 60..MIDNIGHT + 120]
        );
    }

    #[test]
    fn cover_demands_the_streams_own_proof() {
        let (_d, map) = temp_map();
        map.set_partitions("a", 1).expect("set");
        map.set_partitions("b", 1).expect("set");
        let err = map.cover(&proof("b"), "a", 1, 0..60).expect_err("another stream's proof");
        assert!(matches!(err, Error::WrongProof { .. }), "{err}");
        assert!(map.covered_ranges("a", 1, 0..MAX_SECS).expect("ranges").is_empty());
        // Unknown stream, partition out of range, bad seconds.
        assert!(matches!(map.cover(&proof("c"), "c", 1, 0..60), Err(Error::UnknownStream(_))));
        assert!(matches!(map.cover(&proof("a"), "a", 0, 0..60), Err(Error::BadPartition { .. })));
        assert!(matches!(map.cover(&proof("a"), "a", 2, 0..60), Err(Error::BadPartition { .. })));
        assert!(matches!(map.cover(&proof("a"), "a", 1, -1..60), Err(Error::OutOfRange(_))));
        assert!(matches!(map.cover(&proof("a"), "a", 1, Range { start: 60, end: 0 }), Err(Error::OutOfRange(_))));
        assert!(matches!(map.cover(&proof("a"), "a", 1, 0..MAX_SECS + 1), Err(Error::OutOfRange(_))));
        assert!(matches!(map.set_partitions("x\0y", 1), Err(Error::BadLabel(_))));
        assert!(matches!(map.set_partitions("", 1), Err(Error::BadLabel(_))));
        assert!(matches!(map.set_partitions("z", 0), Err(Error::BadPartition { .. })));
        // The last valid second.
        map.cover(&proof("a"), "a", 1, MAX_SECS - 1..MAX_SECS).expect("last second");
        assert_eq!(map.holes("a", MAX_SECS - 2..MAX_SECS).expect("holes"), vec![MAX_SECS - 2..MAX_SECS - 1]);
    }

    #[test]
    fn labels_do_not_leak_into_each_other() {
        let (_d, map) = temp_map();
        map.set_partitions("ab", 1).expect("set");
        map.set_partitions("abc", 1).expect("set");
        map.cover(&proof("abc"), "abc", 1, 0..120).expect("cover");
        map.add_counts("abc", Minute(0), Counts { received: 1, stored: 1, ..Counts::default() }).expect("add");
        map.put_job(&JobRecord {
            id: 1,
            stream: "abc".into(),
            partition: None,
            start_secs: 0,
            end_secs: 60,
            resume_secs: 0,
            state: JobState::Running,
            attempts: 1,
        })
        .expect("job");
        assert_eq!(map.holes("ab", 0..120).expect("holes"), vec![0..120]);
        assert!(map.counts("ab", Minute(0)..Minute(2)).expect("counts").is_empty());
        assert!(map.jobs("ab").expect("jobs").is_empty());
        assert_eq!(map.streams().expect("streams"), vec!["ab".to_string(), "abc".to_string()]);
    }

    #[test]
    fn uncover_removes_from_every_partition() {
        let (_d, map) = temp_map();
        map.set_partitions("f", 3).expect("set");
        for part in 1..=3 {
            map.cover(&proof("f"), "f", part, MIDNIGHT - 600..MIDNIGHT + 600).expect("cover");
        }
        map.uncover("f", MIDNIGHT - 60..MIDNIGHT + 60).expect("uncover");
        for part in 1..=3 {
            assert_eq!(
                map.covered_ranges("f", part, 0..MAX_SECS).expect("ranges"),
                vec![MIDNIGHT - 600..MIDNIGHT - 60, MIDNIGHT + 60..MIDNIGHT + 600]
            );
        }
        // Uncovering a whole day's runs removes its key.
        map.uncover("f", MIDNIGHT - 600..MIDNIGHT).expect("uncover");
        assert_eq!(map.covered.len(), 3);
    }

    #[test]
    fn overlays_and_their_precedence() {
        let (_d, map) = temp_map();
        map.set_partitions("s", 1).expect("set");
        let m0 = MIDNIGHT; // ten minutes from here
        map.cover(&proof("s"), "s", 1, m0..m0 + 60).expect("cover"); // minute 0 full
        map.cover(&proof("s"), "s", 1, m0 + 60..m0 + 90).expect("cover"); // minute 1 partial
        map.mark_lost("s", m0..m0 + 240).expect("lost"); // minutes 0..4 lost
        map.put_job(&JobRecord {
            id: map.new_job_id().expect("id"),
            stream: "s".into(),
            partition: Some(1),
            start_secs: m0,
            end_secs: m0 + 600,
            resume_secs: m0 + 180,
            state: JobState::Running,
            attempts: 1,
        })
        .expect("job"); // remaining: minutes 3..10
        map.put_job(&JobRecord {
            id: map.new_job_id().expect("id"),
            stream: "s".into(),
            partition: None,
            start_secs: m0 + 120,
            end_secs: m0 + 180,
            resume_secs: m0 + 120,
            state: JobState::Queued,
            attempts: 0,
        })
        .expect("job"); // queued: no overlay
        let now = m0 + 600;
        let got: Vec<_> = map
            .minute_states("s", Minute::of_secs(m0)..Minute::of_secs(m0 + 720), now, 150)
            .expect("states")
            .into_iter()
            .map(|r| (r.coverage, r.overlay))
            .collect();
        let (full, partial, none) = (Coverage::Full, Coverage::Partial, Coverage::None);
        let (lost, recovering, pending) = (Some(Overlay::Lost), Some(Overlay::Recovering), Some(Overlay::Pending));
        assert_eq!(
            got,
            vec![
                (full, None),       // full: no overlay, though marked lost
                (partial, lost),    // lost
                (none, lost),       // lost (the queued job does not count)
                (none, recovering), // recovering wins over lost
                (none, recovering),
                (none, recovering),
                (none, recovering),
                (none, recovering),
                (none, recovering), // minute 8 is pending too: recovering wins
                (none, recovering),
                (none, pending), // ends after now - 150, no job
                (none, pending),
            ]
        );
        assert_eq!(map.lost("s", 0..MAX_SECS).expect("lost"), vec![m0..m0 + 240]);
        // Minute 7 ends at now - 120 > now - 150: pending without the job.
        let r = map.minute_states("s", Minute::of_secs(m0 + 420)..Minute::of_secs(m0 + 480), now, 150);
        assert_eq!(r.expect("states")[0].overlay, recovering);
    }

    #[test]
    fn counters_add_up() {
        let (_d, map) = temp_map();
        let m = Minute::of_secs(MIDNIGHT);
        let batch = Counts { received: 10, stored: 7, duplicates: 2, quarantined: 1 };
        map.add_counts("s", m, batch).expect("add");
        map.add_counts("s", m, batch).expect("add");
        map.add_counts("s", m.next().next(), Counts { received: 1, stored: 1, ..Counts::default() }).expect("add");
        let got = map.counts("s", m..Minute(m.0 + 10)).expect("counts");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (m, Counts { received: 20, stored: 14, duplicates: 4, quarantined: 2 }));
        assert!(got[0].1.balanced() && got[1].1.balanced());
        assert_eq!(got[1].0, Minute(m.0 + 2));
        assert!(!Counts { received: 2, stored: 1, ..Counts::default() }.balanced());
        // The range is half-open.
        assert!(map.counts("s", m.next()..m.next().next()).expect("counts").is_empty());
        // minute_states carries them.
        map.set_partitions("s", 1).expect("set");
        let r = map.minute_states("s", m..Minute(m.0 + 3), 0, 0).expect("states");
        assert_eq!(r.iter().map(|r| r.counts.received).collect::<Vec<_>>(), vec![20, 0, 1]);
    }

    #[test]
    fn jobs_round_trip() {
        let (_d, map) = temp_map();
        let a = map.new_job_id().expect("id");
        let b = map.new_job_id().expect("id");
        assert_ne!(a, b);
        let job = JobRecord {
            id: b,
            stream: "s".into(),
            partition: Some(2),
            start_secs: MIDNIGHT,
            end_secs: MIDNIGHT + 3600,
            resume_secs: MIDNIGHT + 60,
            state: JobState::Running,
            attempts: 3,
        };
        map.put_job(&job).expect("put");
        map.put_job(&JobRecord { id: a, state: JobState::Failed, ..job.clone() }).expect("put");
        let jobs = map.jobs("s").expect("jobs");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[1], job);
        assert_eq!(jobs[0].state, JobState::Failed);
        // Replacing, then removing.
        map.put_job(&JobRecord { resume_secs: MIDNIGHT + 120, ..job.clone() }).expect("put");
        assert_eq!(map.jobs("s").expect("jobs")[1].resume_secs, MIDNIGHT + 120);
        assert!(map.remove_job("s", a).expect("remove"));
        assert!(!map.remove_job("s", a).expect("remove"));
        assert_eq!(map.jobs("s").expect("jobs").len(), 1);
        // Progress outside the range is refused.
        let bad = JobRecord { resume_secs: MIDNIGHT - 1, ..job.clone() };
        assert!(matches!(map.put_job(&bad), Err(Error::BadRecord(_))));
        // The stored JSON is what the module docs promise.
        let raw = map.jobs.get(job_key("s", b)).expect("get").expect("present");
        let text = std::str::from_utf8(&raw).expect("utf8");
        assert!(text.contains("\"state\":\"running\""), "{text}");
    }

    #[test]
    fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coverage");
        let job = JobRecord {
            id: 7,
            stream: "d".into(),
            partition: None,
            start_secs: MIDNIGHT,
            end_secs: MIDNIGHT + 60,
            resume_secs: MIDNIGHT,
            state: JobState::Queued,
            attempts: 0,
        };
        {
            let map = CoverageMap::open(&path).expect("open");
            map.set_partitions("d", 2).expect("set");
            map.cover(&proof("d"), "d", 1, MIDNIGHT..MIDNIGHT + 90).expect("cover");
            map.cover(&proof("d"), "d", 2, MIDNIGHT + 30..MIDNIGHT + 120).expect("cover");
            map.add_counts("d", Minute::of_secs(MIDNIGHT), Counts { received: 5, stored: 5, ..Counts::default() })
                .expect("add");
            map.put_job(&job).expect("job");
            map.mark_lost("d", MIDNIGHT + 600..MIDNIGHT + 660).expect("lost");
            // No explicit flush: cover flushes, and so does dropping sled.
        }
        let map = CoverageMap::open(&path).expect("reopen");
        assert_eq!(map.streams().expect("streams"), vec!["d".to_string()]);
        assert_eq!(map.partitions("d").expect("partitions"), Some(2));
        assert_eq!(
            map.holes("d", MIDNIGHT..MIDNIGHT + 180).expect("holes"),
            vec![MIDNIGHT..MIDNIGHT + 30, MIDNIGHT + 90..MIDNIGHT + 180]
        );
        assert_eq!(map.counts("d", Minute(0)..Minute(MAX_SECS / 60)).expect("counts")[0].1.received, 5);
        assert_eq!(map.jobs("d").expect("jobs"), vec![job]);
        assert_eq!(map.lost("d", 0..MAX_SECS).expect("lost"), vec![MIDNIGHT + 600..MIDNIGHT + 660]);
        // IDs never repeat across a restart.
        assert!(map.new_job_id().expect("id") > 0);
    }

    #[test]
    fn a_store_open_elsewhere_is_a_typed_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coverage");
        let held = CoverageMap::open(&path).expect("create");
        // sled's lock is per open file: a second open is refused like
        // another process's, after the short retry.
        assert!(matches!(CoverageMap::open_existing(&path), Err(Error::CoverageLocked { .. })));
        drop(held);
    }

    #[test]
    fn open_checks_the_format_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coverage");
        assert!(matches!(CoverageMap::open_existing(&path), Err(Error::NotFound { .. })));
        drop(CoverageMap::open(&path).expect("create"));
        drop(CoverageMap::open_existing(&path).expect("existing"));
        {
            let db = sled::open(&path).expect("raw");
            let meta = db.open_tree("meta").expect("meta");
            assert_eq!(meta.get(FORMAT_KEY).expect("get").as_deref(), Some(&[0u8, 0, 0, 1][..]));
            meta.insert(FORMAT_KEY, &2u32.to_be_bytes()).expect("insert");
            db.flush().expect("flush");
        }
        let err = CoverageMap::open(&path).expect_err("version 2");
        assert!(matches!(err, Error::CorruptCoverage(_)), "{err}");
        {
            let db = sled::open(&path).expect("raw");
            db.open_tree("meta").expect("meta").remove(FORMAT_KEY).expect("remove");
            db.open_tree("streams").expect("streams").insert("x", "{\"partitions\":1}").expect("insert");
            db.flush().expect("flush");
        }
        let err = CoverageMap::open(&path).expect_err("data without version");
        assert!(matches!(err, Error::CorruptCoverage(_)), "{err}");
    }

    /// 5 days of 20 partitions, each with a hole every 10 minutes: the
    /// queries of inspect-coverage stay in milliseconds (far less in release;
    /// the bound here is loose for a shared machine and a debug build).
    #[test]
    fn five_days_of_twenty_partitions_is_fast() {
        let (_d, map) = temp_map();
        map.set_partitions("firehose", 20).expect("set");
        let from = MIDNIGHT - 5 * DAY;
        let mut batch = sled::Batch::default();
        for part in 1..=20u32 {
            let prefix = covered_prefix("firehose", part);
            for day in 0..5 {
                let start = from + day * DAY;
                let mut runs = complement(
                    &(0..144)
                        .map(|i| (start + i * 600 + part as i64, start + i * 600 + 30 + part as i64))
                        .collect::<Vec<_>>(),
                    (start, start + DAY),
                );
                normalize(&mut runs);
                batch.insert(day_key(&prefix, start / DAY), encode_runs(&runs));
            }
        }
        map.covered.apply_batch(batch).expect("batch");
        let t = Instant::now();
        let holes = map.holes("firehose", from..MIDNIGHT).expect("holes");
        let states = map
            .minute_states("firehose", Minute::of_secs(from)..Minute::of_secs(MIDNIGHT), MIDNIGHT, 0)
            .expect("states");
        let took = t.elapsed();
        assert_eq!(holes.len(), 720);
        assert_eq!(states.len(), 7200);
        assert_eq!(states.iter().filter(|r| r.coverage == Coverage::Full).count(), 7200 - 720);
        eprintln!("holes + minute_states, 5 days x 20 partitions: {took:?}");
        assert!(took.as_millis() < 2000, "{took:?}");
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        const PARTS: u32 = 3;
        /// Eight minutes around a midnight, so that day chunks split and merge.
        const BASE: i64 = MIDNIGHT - 240;
        const SPAN: i64 = 480;

        #[derive(Clone, Debug)]
        enum Op {
            Cover(u32, i64, i64),
            Uncover(i64, i64),
            Lost(i64, i64),
        }

        fn range() -> impl Strategy<Value = (i64, i64)> {
            (0..SPAN, 0..130i64).prop_map(|(s, len)| (BASE + s, (BASE + s + len).min(BASE + SPAN)))
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (1..=PARTS, range()).prop_map(|(p, (s, e))| Op::Cover(p, s, e)),
                2 => range().prop_map(|(s, e)| Op::Uncover(s, e)),
                1 => range().prop_map(|(s, e)| Op::Lost(s, e)),
            ]
        }

        /// Maximal runs of the seconds in `[from, to)` that satisfy `f`.
        fn runs_where(from: i64, to: i64, f: impl Fn(i64) -> bool) -> Vec<Range<i64>> {
            let mut out: Vec<Range<i64>> = Vec::new();
            for s in from..to {
                if f(s) {
                    match out.last_mut() {
                        Some(r) if r.end == s => r.end = s + 1,
                        _ => out.push(s..s + 1),
                    }
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn states_and_holes_match_a_set_of_seconds(
                ops in prop::collection::vec(op(), 1..25),
                win in (0..SPAN, 0..SPAN + 120),
            ) {
                let (_d, map) = temp_map();
                map.set_partitions("m", PARTS).expect("set");
                let mut covered: BTreeSet<(u32, i64)> = BTreeSet::new();
                let mut lost: BTreeSet<i64> = BTreeSet::new();
                for op in &ops {
                    match *op {
                        Op::Cover(p, s, e) => {
                            map.cover(&proof("m"), "m", p, s..e).expect("cover");
                            covered.extend((s..e).map(|x| (p, x)));
                        }
                        Op::Uncover(s, e) => {
                            map.uncover("m", s..e).expect("uncover");
                            covered.retain(|&(_, x)| !(s..e).contains(&x));
                        }
                        Op::Lost(s, e) => {
                            map.mark_lost("m", s..e).expect("lost");
                            lost.extend(s..e);
                        }
                    }
                }
                let all = |x: i64| (1..=PARTS).all(|p| covered.contains(&(p, x)));
                // Holes over an arbitrary window (may start and end mid-minute).
                let (ws, we) = (BASE - 60 + win.0, BASE - 60 + win.0 + win.1);
                prop_assert_eq!(
                    map.holes("m", ws..we).expect("holes"),
                    runs_where(ws, we, |x| !all(x))
                );
                for p in 1..=PARTS {
                    prop_assert_eq!(
                        map.covered_ranges("m", p, ws..we).expect("ranges"),
                        runs_where(ws, we, |x| covered.contains(&(p, x)))
                    );
                    let bitmap = map.covered("m", p, ws..we).expect("bitmap");
                    let want: Vec<u32> = (ws..we).filter(|&x| covered.contains(&(p, x))).map(|x| x as u32).collect();
                    prop_assert_eq!(bitmap.iter().collect::<Vec<_>>(), want);
                }
                prop_assert_eq!(
                    map.lost("m", ws..we).expect("lost"),
                    runs_where(ws, we, |x| lost.contains(&x))
                );
                // Minute states over the whole span and a minute either side.
                let (m0, m1) = (Minute::of_secs(BASE) .0 - 1, Minute::of_secs(BASE + SPAN).0 + 1);
                let reports = map.minute_states("m", Minute(m0)..Minute(m1), MAX_SECS, 0).expect("states");
                prop_assert_eq!(reports.len() as i64, m1 - m0);
                for r in reports {
                    let secs = r.minute.start_secs()..r.minute.start_secs() + 60;
                    let n = secs.clone().map(|x| (1..=PARTS).filter(|&p| covered.contains(&(p, x))).count()).sum::<usize>();
                    let want = if n == 60 * PARTS as usize {
                        Coverage::Full
                    } else if n > 0 {
                        Coverage::Partial
                    } else {
                        Coverage::None
                    };
                    prop_assert_eq!(r.coverage, want, "minute {}", r.minute);
                    let want_overlay = if want != Coverage::Full && secs.clone().any(|x| lost.contains(&x)) {
                        Some(Overlay::Lost)
                    } else {
                        None
                    };
                    prop_assert_eq!(r.overlay, want_overlay, "minute {}", r.minute);
                }
            }
        }
    }
}
