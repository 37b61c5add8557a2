//! The store: one data directory, many streams, one commit path.
//!
//! # Design constraints
//! - Ingest is the hot path (~100,000 activities/s per core): a line is
//!   classified once with a borrowed parse, probed against the minute's ID
//!   index, and copied into the minute's pending frame. Nothing is
//!   re-serialized and nothing is written until a commit.
//! - A commit is a group commit: it compresses each touched minute's
//!   pending records into one frame, appends it to the minute's segment,
//!   fsyncs every touched segment (and the directories of new files), syncs
//!   the quarantine, and only then returns a [`Durable`] proof. Coverage
//!   needs that proof. A commit that fails (a full disk) returns an error,
//!   keeps the pending records for the next attempt, and yields no proof,
//!   so coverage cannot advance.
//! - Only one process writes a data directory: [`Store::open`] takes an
//!   exclusive lock on `LOCK` and fails clearly if another holds it.
//!
//! # Directory layout
//! ```text
//! DATA/LOCK                                   exclusive lock of the writer
//! DATA/coverage/                              sled: coverage map, counters, jobs
//! DATA/streams/LABEL/segments/YYYY-MM-DD/YYYYMMDDTHHMMZ.seg
//! DATA/streams/LABEL/dict/XXXXXXXX.zdict      zstd dictionaries
//! DATA/streams/LABEL/quarantine.log           rejected lines, with reasons
//! DATA/streams/LABEL/system.log               system messages, as received
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::activity::{self, Activity, Limits, Line, SystemMessage};
use crate::coverage::{Counts, CoverageMap};
use crate::dict::{self, Dictionaries};
use crate::error::IoContext;
use crate::frame::{self, Encoder};
use crate::id_index::{IdIndex, MinuteKeys};
use crate::io::{FileHandle, Filesystem, Mode, StdFs};
use crate::key::Key;
use crate::quarantine::Quarantine;
use crate::segment::{self, SegmentReader, SegmentWriter};
use crate::{ActivityKind, Durable, Error, Minute, Result};

/// Tuning of a store. The defaults suit a realtime Decahose archiver.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// zstd level of frames.
    pub level: i32,
    /// Limits on lines (size).
    pub limits: Limits,
    /// Minutes of ID index kept in memory per stream.
    pub resident_minutes: usize,
    /// Train a dictionary once this many bytes of sample activities have
    /// been seen (0: never).
    pub dict_train_bytes: usize,
    /// Size of a trained dictionary.
    pub dict_size: usize,
    /// Frames with fewer records than this use the dictionary; larger ones
    /// compress well alone (see the README's compression benchmark).
    pub dict_max_records: usize,
    /// Frames are cut at this many raw bytes (commits and sealing alike):
    /// see [`frame::TARGET_RAW_BYTES`].
    pub frame_raw_bytes: usize,
    /// The size cap of a stream's quarantine file; past it, rejected lines
    /// are counted but not kept.
    pub quarantine_max_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            level: 3,
            limits: Limits::default(),
            resident_minutes: 30,
            dict_train_bytes: 8 << 20,
            dict_size: 112 << 10,
            dict_max_records: 200,
            frame_raw_bytes: frame::TARGET_RAW_BYTES,
            quarantine_max_bytes: crate::quarantine::DEFAULT_CAP_BYTES,
        }
    }
}

impl StoreConfig {
    /// For bulk import: frames of whole minutes, which need no dictionary.
    pub fn bulk() -> StoreConfig {
        StoreConfig { dict_train_bytes: 0, ..StoreConfig::default() }
    }
}

/// What became of one line.
#[derive(Debug)]
pub enum Outcome {
    /// New: it will be in the minute's segment after the next commit.
    Stored { minute: Minute, kind: ActivityKind },
    /// Already in the archive (or pending): dropped.
    Duplicate { minute: Minute },
    /// Written to the quarantine with this reason.
    Quarantined { reason: String },
    /// A bare line terminator.
    Heartbeat,
    /// `info`/`warn`/`error` from the service: logged in `system.log`.
    System(SystemMessage),
}

/// What a commit wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitStats {
    pub frames: usize,
    pub records: usize,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

/// What sealing a minute did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealStats {
    pub frames_before: usize,
    pub records: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A data directory, opened for writing by this process alone.
pub struct Store {
    root: PathBuf,
    coverage: Arc<CoverageMap>,
    config: StoreConfig,
    fs: Arc<dyn Filesystem>,
    _lock: File,
}

impl Store {
    pub fn open(root: &Path, config: StoreConfig) -> Result<Store> {
        Store::open_with(root, config, StdFs::shared())
    }

    /// [`Store::open`], with every file of the streams read and written
    /// through `fs` (tests inject faults this way; see [`crate::io`]). The
    /// lock and the coverage map use the real filesystem.
    pub fn open_with(root: &Path, config: StoreConfig, fs: Arc<dyn Filesystem>) -> Result<Store> {
        std::fs::create_dir_all(root).ctx("create data dir", root)?;
        let lock_path = crate::layout::lock_path(root);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx("open lock", &lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked { root: root.to_path_buf(), lock: lock_path })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io { op: "lock", path: lock_path, source: e }),
        }
        let coverage = Arc::new(CoverageMap::open(&crate::layout::coverage_dir(root))?);
        Ok(Store { root: root.to_path_buf(), coverage, config, fs, _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn coverage(&self) -> &Arc<CoverageMap> {
        &self.coverage
    }

    /// Opens the writer of one stream. Call once per stream.
    pub fn stream(&self, label: &str) -> Result<StreamWriter> {
        StreamWriter::open(&self.root, label, self.config.clone(), self.coverage.clone(), self.fs.clone())
    }
}

pub use crate::layout::{check_label, segment_path, stream_dir};

/// The ingest path of one stream: an [`Ingest`] front (classify, dedup,
/// buffer) and a [`Sink`] back (compress, append, fsync), used in turn by
/// [`StreamWriter::commit`], or on two threads after
/// [`StreamWriter::into_parts`].
pub struct StreamWriter {
    ingest: Ingest,
    sink: Sink,
}

impl StreamWriter {
    fn open(
        root: &Path,
        label: &str,
        config: StoreConfig,
        coverage: Arc<CoverageMap>,
        fs: Arc<dyn Filesystem>,
    ) -> Result<StreamWriter> {
        check_label(label)?;
        let dir = stream_dir(root, label);
        let segments = dir.join("segments");
        if !segments.exists() {
            // New directories are durable before anything in them is.
            fs.create_dir_all(&segments).ctx("create stream dir", &dir)?;
            for d in [root.join("streams"), dir.clone()] {
                segment::sync_dir(fs.as_ref(), &d)?;
            }
            segment::sync_dir(fs.as_ref(), root)?;
        }
        let appended = Arc::new(AtomicU64::new(0));
        let sink = Sink::open(&dir, label, &config, coverage, appended.clone(), fs.clone())?;
        let mut config = config;
        if sink.dict.is_some() {
            config.dict_train_bytes = 0; // trained in an earlier run
        }
        let ingest = Ingest {
            label: label.to_string(),
            dir: dir.clone(),
            dicts: Dictionaries::with_fs(&dir.join("dict"), fs.clone()),
            fs,
            config,
            index: IdIndex::new(),
            pending: Pending::default(),
            take_seq: 0,
            last_take: HashMap::new(),
            appended,
            samples: Vec::new(),
            sample_sizes: Vec::new(),
        };
        Ok(StreamWriter { ingest, sink })
    }

    pub fn label(&self) -> &str {
        &self.ingest.label
    }

    pub fn dir(&self) -> &Path {
        &self.ingest.dir
    }

    /// Classifies and accepts one line (without its terminator).
    pub fn ingest(&mut self, line: &[u8], received_ms: i64) -> Result<Outcome> {
        self.ingest.ingest(line, received_ms)
    }

    /// Accepts a line already classified.
    pub fn accept(
        &mut self,
        line: &[u8],
        classified: std::result::Result<Line, activity::Rejection>,
        received_ms: i64,
    ) -> Result<Outcome> {
        self.ingest.accept(line, classified, received_ms)
    }

    /// Keeps a line in the quarantine with `reason`; see
    /// [`Ingest::quarantine`].
    pub fn quarantine(&mut self, line: &[u8], reason: String, received_ms: i64) -> Outcome {
        self.ingest.quarantine(line, reason, received_ms)
    }

    /// Records accepted and not yet committed.
    pub fn pending_records(&self) -> usize {
        self.ingest.pending_records()
    }

    /// Raw bytes accepted and not yet committed.
    pub fn pending_bytes(&self) -> usize {
        self.ingest.pending_bytes()
    }

    /// The minutes with records accepted and not yet durable: a claim
    /// covering them waits (a minute whose segment cannot be written keeps
    /// its records here, and the others go on).
    pub fn pending_minutes(&self) -> Vec<Minute> {
        self.ingest.pending.frames.keys().copied().collect()
    }

    /// Writes every pending record and makes it durable; see the module doc.
    /// On error the records stay pending for the next attempt.
    pub fn commit(&mut self) -> Result<(Durable, CommitStats)> {
        self.ingest.maybe_train(&mut self.sink)?;
        let mut pending = self.ingest.take();
        // Kept until the batch is durable.
        let frames = pending.frames.clone();
        let known_damage = self.sink.damaged_minutes.len();
        let written = self.sink.write_isolated(&mut pending);
        // A repaired segment lost frames: its keys are loaded again from
        // what it holds now, so that good copies are not taken for
        // duplicates of what was lost.
        for m in &self.sink.damaged_minutes[known_damage..] {
            self.ingest.index.forget(*m);
        }
        match written.and_then(|failed| self.sink.sync().map(|done| (failed, done))) {
            Ok((failed, done)) => {
                // Minutes that could not be written stay pending (and
                // unclaimed: see `pending_minutes`); the others are durable.
                for (minute, e) in failed {
                    tracing::error!(stream = %self.ingest.label, %minute, error = %e, "a minute could not be written; it stays pending");
                    self.sink.writers.remove(&minute);
                }
                if !pending.frames.is_empty() || !pending.repair.is_empty() {
                    self.ingest.restore(Pending {
                        frames: std::mem::take(&mut pending.frames),
                        repair: std::mem::take(&mut pending.repair),
                        ..Pending::default()
                    });
                }
                Ok(done)
            }
            Err(e) => {
                // Nothing of this batch is known to be durable (a failed
                // fsync may have dropped what was written): its files are
                // reopened and re-verified, and all of it is written again
                // at the next commit. A copy that did reach the disk is
                // dropped by readers by its key.
                self.sink.writers.clear();
                pending.frames = frames;
                self.ingest.restore(pending);
                Err(e)
            }
        }
    }

    /// Quarantined lines this process did not keep because the stream's
    /// quarantine file was at its cap.
    pub fn quarantine_not_kept(&self) -> u64 {
        self.sink.quarantine.not_kept()
    }

    /// Minutes whose segments were found damaged when opened for append:
    /// their coverage was withdrawn so that they are requested again.
    pub fn take_damaged_minutes(&mut self) -> Vec<Minute> {
        self.sink.take_damaged_minutes()
    }

    /// Checks the segments of the minutes in `minutes` to `depth`, and
    /// repairs each one that does not verify: its minute's coverage is
    /// withdrawn (durably, first), its damaged bytes are moved aside, and
    /// its keys are loaded again, so that the archiver requests the minute
    /// again and its good copies are stored. Commits first.
    pub fn verify(&mut self, minutes: Range<Minute>, depth: Depth) -> Result<Vec<Finding>> {
        self.commit()?;
        let mut findings = Vec::new();
        for minute in crate::layout::minutes_with_segments(&self.ingest.dir, minutes.start, minutes.end)? {
            let path = segment_path(&self.ingest.dir, minute);
            let damaged = match depth {
                Depth::Structure => segment::check_structure(self.ingest.fs.as_ref(), &path),
                Depth::Checksums => {
                    segment::verified_frames(self.ingest.fs.as_ref(), &path).map(|(_, damaged)| damaged)
                }
            };
            let outcome = match damaged {
                Ok(false) => continue,
                Ok(true) => {
                    self.sink.writers.remove(&minute);
                    match self.sink.writer(minute) {
                        Ok(_) => Repaired::Yes,
                        Err(e) => Repaired::No(e.to_string()),
                    }
                }
                Err(e) => Repaired::No(e.to_string()),
            };
            self.ingest.index.forget(minute);
            findings.push(Finding { minute, outcome });
        }
        self.sink.sync()?;
        Ok(findings)
    }

    /// Seals a minute into one frame; see [`Sink::seal`]. Commits first.
    pub fn seal(&mut self, minute: Minute) -> Result<Option<SealStats>> {
        self.commit()?;
        self.sink.seal(minute)
    }

    /// Splits the writer for a pipeline: the [`Ingest`] on one thread hands
    /// [`Pending`] batches to the [`Sink`] on another.
    pub fn into_parts(self) -> (Ingest, Sink) {
        (self.ingest, self.sink)
    }
}

/// How thoroughly [`StreamWriter::verify`] checks a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The file header, every frame header's checksum, and that the frames
    /// end where the file ends (reads the headers only: cheap). Finds a cut
    /// file, a torn tail, a damaged header; not a flipped bit in a payload.
    Structure,
    /// Every checksum, payloads included (reads every byte).
    Checksums,
}

/// A segment that did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub minute: Minute,
    pub outcome: Repaired,
}

/// What became of a segment that did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repaired {
    /// Coverage withdrawn, damaged bytes moved aside, good frames kept.
    Yes,
    /// It could not be repaired (the error says why); it is left as it is.
    No(String),
}

/// Everything accepted since the last take: the unit handed from
/// [`Ingest`] to [`Sink`].
#[derive(Default)]
pub struct Pending {
    frames: BTreeMap<Minute, Encoder>,
    counts: BTreeMap<Minute, Counts>,
    quarantined: Vec<(Vec<u8>, String, i64)>,
    system: Vec<u8>,
    /// Minutes whose segments were found damaged: the sink repairs them.
    repair: Vec<Minute>,
    seq: u64,
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
    }
}

/// The front of a stream's ingest path: classifies, deduplicates against
/// the ID index and buffers. Writes nothing.
pub struct Ingest {
    label: String,
    dir: PathBuf,
    dicts: Dictionaries,
    fs: Arc<dyn Filesystem>,
    config: StoreConfig,
    index: IdIndex,
    pending: Pending,
    take_seq: u64,
    /// The last take that held records of each minute.
    last_take: HashMap<Minute, u64>,
    /// The last take the sink has appended (shared with it): a minute whose
    /// last take is newer has frames in flight and must stay resident.
    appended: Arc<AtomicU64>,
    samples: Vec<u8>,
    sample_sizes: Vec<usize>,
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

    fn accept_activity(&mut self, line: &[u8], a: Activity) -> Result<Outcome> {
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
        self.pending.frames.entry(minute).or_default().push(a.kind, a.key, a.time_ms, line);
        Ok(Outcome::Stored { minute, kind: a.kind })
    }

    /// Keys of a minute not in memory, from its segment's frame headers.
    fn load_keys(&mut self, minute: Minute) -> Result<MinuteKeys> {
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
        Ok(keys)
    }

    /// For a hashed key already in the index: is an activity with exactly
    /// these bytes stored or pending? (Equal hashes with other bytes are a
    /// collision, and the new activity is kept.) A copy still in flight to
    /// the sink is not seen; the reader drops such a copy by its bytes.
    fn same_bytes_stored(&mut self, minute: Minute, key: &Key, line: &[u8]) -> Result<bool> {
        if let Some(enc) = self.pending.frames.get(&minute) {
            if enc.records().any(|(e, b)| e.key == *key && b == line) {
                return Ok(true);
            }
        }
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            return Ok(false);
        }
        let mut found = false;
        for_each_record(self.fs.as_ref(), &path, &mut self.dicts, |e, b| found |= e.key == *key && b == line)?;
        Ok(found)
    }

    fn dict_wanted(&self) -> bool {
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

/// The back of a stream's ingest path: compresses pending records into
/// frames, appends them to segments, and makes them durable.
pub struct Sink {
    label: String,
    dir: PathBuf,
    config: StoreConfig,
    coverage: Arc<CoverageMap>,
    writers: HashMap<Minute, SegmentWriter>,
    new_dirs: HashSet<PathBuf>,
    quarantine: Quarantine,
    system_log: Option<Box<dyn FileHandle>>,
    dicts: Dictionaries,
    dict: Option<u32>,
    plain: zstd::bulk::Compressor<'static>,
    with_dict: Option<zstd::bulk::Compressor<'static>>,
    damaged_minutes: Vec<Minute>,
    /// Counts of batches written but not yet synced.
    unsynced_counts: BTreeMap<Minute, Counts>,
    stats: CommitStats,
    appended: Arc<AtomicU64>,
    commit_seq: u64,
    frame_buf: Vec<u8>,
    fs: Arc<dyn Filesystem>,
}

impl Sink {
    fn open(
        dir: &Path,
        label: &str,
        config: &StoreConfig,
        coverage: Arc<CoverageMap>,
        appended: Arc<AtomicU64>,
        fs: Arc<dyn Filesystem>,
    ) -> Result<Sink> {
        let mut quarantine = Quarantine::open_in(fs.clone(), &dir.join("quarantine.log"))?;
        quarantine.set_cap(config.quarantine_max_bytes);
        let mut dicts = Dictionaries::with_fs(&dir.join("dict"), fs.clone());
        let dict = dicts.latest()?;
        let with_dict = match dict {
            Some(id) => Some(
                zstd::bulk::Compressor::with_dictionary(config.level, dicts.get(id)?).map_err(Error::Compression)?,
            ),
            None => None,
        };
        let plain = zstd::bulk::Compressor::new(config.level).map_err(Error::Compression)?;
        Ok(Sink {
            label: label.to_string(),
            dir: dir.to_path_buf(),
            config: config.clone(),
            coverage,
            writers: HashMap::new(),
            new_dirs: HashSet::new(),
            quarantine,
            system_log: None,
            dicts,
            dict,
            plain,
            with_dict,
            damaged_minutes: Vec::new(),
            unsynced_counts: BTreeMap::new(),
            stats: CommitStats::default(),
            appended,
            commit_seq: 0,
            frame_buf: Vec::new(),
            fs,
        })
    }

    fn use_dictionary(&mut self, bytes: Vec<u8>) -> Result<()> {
        let id = self.dicts.save(bytes)?;
        self.with_dict = Some(
            zstd::bulk::Compressor::with_dictionary(self.config.level, self.dicts.get(id)?)
                .map_err(Error::Compression)?,
        );
        self.dict = Some(id);
        tracing::info!(stream = %self.label, id = format!("{id:08x}"), "trained a compression dictionary");
        Ok(())
    }

    /// Compresses and appends a batch (not yet durable: see [`Sink::sync`]).
    /// Frames appended before an error are removed from `p`, so that a
    /// retry writes each record once.
    pub fn write(&mut self, p: &mut Pending) -> Result<()> {
        match self.write_isolated(p)?.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// [`Sink::write`], where one minute that cannot be written does not
    /// block the others: its records stay in `p` (and its error is
    /// returned with it), the other minutes are written. Fails as a whole
    /// only when no minute could be written, or on the quarantine and the
    /// system log.
    pub fn write_isolated(&mut self, p: &mut Pending) -> Result<Vec<(Minute, Error)>> {
        let mut failed = Vec::new();
        let mut i = 0;
        while i < p.repair.len() {
            // Opening a segment repairs it (coverage withdrawn first).
            match self.writer(p.repair[i]) {
                Ok(_) => {
                    p.repair.swap_remove(i);
                }
                Err(e) => {
                    failed.push((p.repair[i], e));
                    i += 1;
                }
            }
        }
        let minutes: Vec<Minute> = p.frames.keys().copied().collect();
        let total = minutes.len();
        for minute in minutes {
            if let Err(e) = self.write_minute(p, minute) {
                failed.push((minute, e));
            }
        }
        if total > 0 && p.frames.len() == total {
            // Nothing could be written: the disk, not a minute.
            if let Some((_, e)) = failed.pop() {
                return Err(e);
            }
        }
        for (line, reason, received_ms) in p.quarantined.drain(..) {
            self.quarantine.push(&line, &reason, received_ms)?;
        }
        if !p.system.is_empty() {
            self.log_system(&p.system)?;
            p.system.clear();
        }
        for (m, c) in std::mem::take(&mut p.counts) {
            *self.unsynced_counts.entry(m).or_default() += c;
        }
        if p.frames.is_empty() {
            self.appended.fetch_max(p.seq, Ordering::AcqRel);
        }
        Ok(failed)
    }

    /// Appends one minute's pending records, in bounded frames; they leave
    /// `p` once appended.
    fn write_minute(&mut self, p: &mut Pending, minute: Minute) -> Result<()> {
        {
            let Some(enc) = p.frames.get_mut(&minute) else { return Ok(()) };
            // Bounded frames: a part at a time, each forgotten once
            // appended, so that a retry writes each record once.
            for part in enc.parts(self.config.frame_raw_bytes) {
                let n = part.len();
                self.frame_buf.clear();
                let use_dict = n < self.config.dict_max_records && self.with_dict.is_some();
                match (use_dict, self.with_dict.as_mut()) {
                    (true, Some(c)) => enc.encode_part(0..n, c, self.dict.unwrap_or(0), &mut self.frame_buf)?,
                    _ => enc.encode_part(0..n, &mut self.plain, 0, &mut self.frame_buf)?,
                }
                let frame = std::mem::take(&mut self.frame_buf);
                let appended = self.writer(minute).and_then(|w| w.append(&frame));
                self.frame_buf = frame;
                appended?;
                let raw: usize = enc.records().take(n).map(|(e, _)| e.len as usize + 1).sum();
                enc.drain_front(n);
                self.stats.frames += 1;
                self.stats.records += n;
                self.stats.raw_bytes += raw as u64;
                self.stats.stored_bytes += self.frame_buf.len() as u64;
            }
        }
        p.frames.remove(&minute);
        Ok(())
    }

    fn log_system(&mut self, lines: &[u8]) -> Result<()> {
        let path = self.dir.join("system.log");
        if self.system_log.is_none() {
            self.system_log = Some(self.fs.open(&path, Mode::Append).ctx("open system log", &path)?);
        }
        let f = self.system_log.as_mut().expect("opened above");
        f.write_all(lines).ctx("write system log", path)
    }

    /// Makes everything written durable, then records the counters, and
    /// returns the proof coverage needs with what was written since the
    /// last sync.
    ///
    /// An fsync that fails is not retried as if nothing happened: after a
    /// writeback error, Linux may have dropped the dirty pages and report
    /// success next time. So every open file is closed, and reopened (and
    /// re-verified, repairing what is not whole) when next written; the
    /// caller writes the batch again ([`StreamWriter::commit`] does).
    pub fn sync(&mut self) -> Result<(Durable, CommitStats)> {
        if let Err(e) = self.sync_files() {
            self.writers.clear();
            self.system_log = None;
            return Err(e);
        }
        // Data is durable: now the bookkeeping that describes it.
        for (minute, c) in std::mem::take(&mut self.unsynced_counts) {
            self.coverage.add_counts(&self.label, minute, c)?;
        }
        if self.writers.len() > 64 {
            self.writers.clear();
        }
        self.commit_seq += 1;
        Ok((Durable::new(&self.label, self.commit_seq), std::mem::take(&mut self.stats)))
    }

    fn sync_files(&mut self) -> Result<()> {
        for w in self.writers.values_mut() {
            w.sync()?;
        }
        // A directory leaves the set only once it synced.
        while let Some(dir) = self.new_dirs.iter().next().cloned() {
            segment::sync_dir(self.fs.as_ref(), &dir)?;
            self.new_dirs.remove(&dir);
        }
        self.quarantine.sync()?;
        if let Some(f) = self.system_log.as_mut() {
            f.sync_data().ctx("fsync system log", self.dir.join("system.log"))?;
        }
        Ok(())
    }

    /// Minutes whose segments were found damaged when opened for append.
    pub fn take_damaged_minutes(&mut self) -> Vec<Minute> {
        std::mem::take(&mut self.damaged_minutes)
    }

    /// Seals a minute: rewrites its segment as few frames as its size
    /// needs (frames of [`StoreConfig::frame_raw_bytes`]), without a
    /// dictionary (large frames compress well alone), atomically (write a
    /// new file, fsync, rename, fsync the directory). A crash at any point
    /// leaves the old file or the new one, both complete. It streams: one
    /// frame read and one being built are all it holds, whatever the size
    /// of the minute. Each frame is in time order (so a minute that fits
    /// one frame is; readers sort a minute by time). Late data may still arrive afterwards: it is appended as a
    /// new frame, and the minute can be sealed again. Returns `None` if
    /// there was nothing to do (no segment, or already as few frames as its
    /// size needs).
    pub fn seal(&mut self, minute: Minute) -> Result<Option<SealStats>> {
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            return Ok(None);
        }
        // Durable and repaired before it is read: open through the writer.
        if let Some(mut w) = self.writers.remove(&minute) {
            w.sync()?;
        }
        self.writer(minute)?;
        self.writers.remove(&minute);
        let bytes_before = std::fs::metadata(&path).ctx("stat segment", &path)?.len();
        let (_, headers) = segment::read_headers(&path)?;
        let raw: u64 = headers.iter().map(|f| f.header.raw_len as u64).sum();
        let needed = raw.div_ceil(self.config.frame_raw_bytes as u64).max(1) as usize;
        if headers.len() <= needed {
            return Ok(None);
        }
        let max_raw = self.config.frame_raw_bytes;
        let (plain, dicts) = (&mut self.plain, &mut self.dicts);
        let mut enc = Encoder::new();
        let mut frame_buf = Vec::new();
        let (mut records, mut frames_before, mut bytes_after) = (0usize, 0usize, 0u64);
        let fs = self.fs.clone();
        segment::replace_with(fs.as_ref(), &path, |out| {
            out.write_all(&segment::file_header(minute)).ctx("write", &path)?;
            bytes_after += segment::FILE_HEADER_LEN;
            let mut failed = None;
            let unverified = for_each_frame(fs.as_ref(), &path, dicts, |recs| {
                frames_before += 1;
                for (e, b) in recs {
                    if failed.is_some() {
                        return;
                    }
                    if !enc.is_empty() && enc.raw_len() + b.len() + 1 > max_raw {
                        enc.sort_by_time();
                        frame_buf.clear();
                        let res = enc
                            .finish(plain, 0, &mut frame_buf)
                            .and_then(|_| out.write_all(&frame_buf).ctx("write", &path));
                        bytes_after += frame_buf.len() as u64;
                        failed = res.err();
                    }
                    enc.push(e.kind, e.key, e.time_ms, b);
                    records += 1;
                }
            })?;
            if let Some(r) = unverified {
                // Repaired just above, so something changed it since:
                // never seal away bytes that were not read.
                return Err(Error::Frame(format!("{}: bytes {r:?} do not verify; not sealed", path.display())));
            }
            if let Some(e) = failed {
                return Err(e);
            }
            if !enc.is_empty() {
                enc.sort_by_time();
                frame_buf.clear();
                enc.finish(plain, 0, &mut frame_buf)?;
                out.write_all(&frame_buf).ctx("write", &path)?;
                bytes_after += frame_buf.len() as u64;
            }
            Ok(())
        })?;
        Ok(Some(SealStats { frames_before, records, bytes_before, bytes_after }))
    }

    /// The open writer of `minute`'s segment, opening (and repairing) it.
    fn writer(&mut self, minute: Minute) -> Result<&mut SegmentWriter> {
        if !self.writers.contains_key(&minute) {
            let path = segment_path(&self.dir, minute);
            let day = path.parent().expect("segment paths have a day dir").to_path_buf();
            if !day.exists() {
                self.fs.create_dir_all(&day).ctx("create day dir", &day)?;
                self.new_dirs.insert(self.dir.join("segments"));
            }
            let existed = path.exists();
            if !existed {
                // Its directory entry is durable only once the day is
                // fsynced: until then the day stays in the set.
                self.new_dirs.insert(day.clone());
            }
            let (coverage, label) = (&self.coverage, &self.label);
            // Frames are about to be cut or moved aside: whatever coverage
            // claimed for this minute no longer holds. Withdrawn (durably)
            // before the repair changes a byte.
            let (w, _, repair) =
                SegmentWriter::open(self.fs.as_ref(), &path, minute, |_| withdraw(coverage, label, minute))?;
            if !repair.is_clean() {
                self.damaged_minutes.push(minute);
            }
            self.writers.insert(minute, w);
        }
        Ok(self.writers.get_mut(&minute).expect("inserted above"))
    }
}

/// Withdraws the coverage of `minute` from every partition of `stream`,
/// durably (a stream without coverage, an import, has none to withdraw).
fn withdraw(coverage: &CoverageMap, stream: &str, minute: Minute) -> Result<()> {
    if coverage.partitions(stream)?.is_some() {
        coverage.uncover(stream, minute.start_secs()..minute.next().start_secs())?;
    }
    Ok(())
}

/// Calls `f` on every record of every verified frame of a segment.
pub fn for_each_record(
    fs: &dyn Filesystem,
    path: &Path,
    dicts: &mut Dictionaries,
    mut f: impl FnMut(&frame::Entry, &[u8]),
) -> Result<()> {
    for_each_frame(fs, path, dicts, |records| {
        for (e, b) in records {
            f(e, b);
        }
    })
    .map(|_| ())
}

/// Calls `f` with the records of each verified frame of a segment, in file
/// order, holding one frame in memory at a time. Returns the bytes after
/// the last verified frame, if the file does not end there: damage, or a
/// frame still being written (readers never stop there silently).
pub fn for_each_frame(
    fs: &dyn Filesystem,
    path: &Path,
    dicts: &mut Dictionaries,
    mut f: impl FnMut(&[(&frame::Entry, &[u8])]),
) -> Result<Option<std::ops::Range<u64>>> {
    let mut r = SegmentReader::open_in(fs, path)?;
    let mut payload = Vec::new();
    while let Some(fr) = r.next_header()? {
        if !r.read_payload(&fr, &mut payload)? {
            break;
        }
        let raw = decompress(&fr.header, &payload, dicts)?;
        f(&frame::split_records(&fr.header, &raw)?);
    }
    Ok(r.unverified())
}

/// Decompresses a verified payload, with its dictionary if it names one.
pub fn decompress(header: &frame::Header, payload: &[u8], dicts: &mut Dictionaries) -> Result<Vec<u8>> {
    let mut d = if header.dict_id != 0 {
        zstd::bulk::Decompressor::with_dictionary(dicts.get(header.dict_id)?)
    } else {
        zstd::bulk::Decompressor::new()
    }
    .map_err(Error::Compression)?;
    frame::decompress(header, payload, &mut d)
}
