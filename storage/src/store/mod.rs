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
//!
//! Paths and file names are [`crate::layout`]'s. The modules: this one
//! (the store, a stream's writer, verification), `ingest` (the front:
//! classify, dedup, buffer) and `sink` (the back: compress, append, fsync,
//! repair, seal) and `seal` (rewriting quiet minutes, on a sealer thread).

mod ingest;
pub mod seal;
mod sink;

pub use ingest::{Ingest, Pending};
pub use seal::SealOutcome;
pub use sink::Sink;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::activity::{self, Limits, Line, SystemMessage};
use crate::coverage::CoverageMap;
use crate::dict::Dictionaries;
use crate::error::IoContext;
use crate::frame::{self};
use crate::id_index::IdIndex;
use crate::io::{Filesystem, StdFs};
use crate::layout;
use crate::segment::{self};
use crate::{ActivityKind, Durable, Error, Minute, Result};

/// Tuning of a store. The defaults suit a realtime Decahose archiver.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// zstd level of the frames commits write (realtime: many small
    /// frames, on the ingest path, so a fast level).
    pub level: i32,
    /// zstd level of sealed minutes (frames of up to `frame_raw_bytes`,
    /// written once a minute is quiet, off the ingest path).
    pub seal_level: i32,
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
            level: 1,
            seal_level: 10,
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
    /// For bulk import: frames of whole minutes, which need no dictionary,
    /// written in the sealed layout (frames of up to `frame_raw_bytes`) at
    /// [`BULK_LEVEL`], not at the seal level: import compresses on its one
    /// sink thread, and level 10 there made import 0.32x the pace of
    /// `gzip -dc | zstd -3` (the README's figures); level 3 keeps it
    /// about 2x.
    pub fn bulk() -> StoreConfig {
        let d = StoreConfig::default();
        StoreConfig { dict_train_bytes: 0, level: BULK_LEVEL, ..d }
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
    /// Time spent compressing and appending (µs).
    pub write_micros: u64,
    /// Time spent making it durable: fsync of segments, directories,
    /// quarantine and system log (µs).
    pub sync_micros: u64,
}

/// What sealing a minute did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealStats {
    pub frames_before: usize,
    /// Records written to the sealed segment.
    pub records: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// A purge: records left out (their keys kept aside) and rewritten.
    pub purged: usize,
    pub scrubbed: usize,
}

/// The zstd level of bulk import's frames; see [`StoreConfig::bulk`].
pub const BULK_LEVEL: i32 = 3;

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

    /// The data directory's identity ([`layout::identity_path`]), made and
    /// fsynced the first time it is asked for.
    pub fn identity(&self) -> Result<String> {
        let path = layout::identity_path(&self.root);
        match std::fs::read_to_string(&path) {
            Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { op: "read identity", path, source: e }),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let dir = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let id = format!("{}:{}:{nanos:x}", host.trim(), dir.display());
        let tmp = layout::tmp_path(&path);
        std::fs::write(&tmp, format!("{id}\n")).ctx("write identity", &tmp)?;
        File::open(&tmp).and_then(|f| f.sync_all()).ctx("fsync identity", &tmp)?;
        std::fs::rename(&tmp, &path).ctx("install identity", &path)?;
        File::open(&self.root).and_then(|f| f.sync_all()).ctx("fsync data directory", &self.root)?;
        Ok(id)
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
            dicts: Dictionaries::with_fs(&layout::dict_dir(&dir), fs.clone()),
            fs,
            config,
            index: IdIndex::new(),
            pending: Pending::default(),
            take_seq: 0,
            last_take: HashMap::new(),
            appended,
            samples: Vec::new(),
            hashed: HashMap::new(),
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
        let started = std::time::Instant::now();
        let written = self.sink.write_isolated(&mut pending);
        let wrote = started.elapsed();
        // A repaired segment lost frames: its keys are loaded again from
        // what it holds now, so that good copies are not taken for
        // duplicates of what was lost.
        for m in &self.sink.damaged_minutes[known_damage..] {
            self.ingest.forget(*m);
        }
        match written.and_then(|failed| self.sink.sync().map(|done| (failed, done))) {
            Ok((failed, (proof, mut stats))) => {
                stats.write_micros = wrote.as_micros() as u64;
                stats.sync_micros = (started.elapsed() - wrote).as_micros() as u64;
                let done = (proof, stats);
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
            self.ingest.forget(minute);
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

    /// Asks the background sealer to seal `minute`; see
    /// [`Sink::seal_in_background`]. Commits first.
    pub fn seal_in_background(&mut self, minute: Minute) -> Result<bool> {
        self.commit()?;
        self.sink.seal_in_background(minute)
    }

    /// Asks the background sealer to purge `minute`; see
    /// [`Sink::purge_in_background`]. Commits first.
    pub fn purge_in_background(&mut self, minute: Minute, policy: Arc<crate::compliance::Policy>) -> Result<bool> {
        self.commit()?;
        self.sink.purge_in_background(minute, policy)
    }

    /// Installs the seals finished in the background; see
    /// [`Sink::finished_seals`].
    pub fn finished_seals(&mut self) -> Vec<(Minute, SealOutcome)> {
        self.sink.finished_seals()
    }

    /// Evicts `minute`'s segment after its copy in the bucket was verified:
    /// only if it is still exactly the file that was copied (inode `ino`,
    /// `len` bytes), nothing of the minute is pending, and no seal of it is
    /// in flight. Then `marker` (what the bucket holds) is written durably
    /// at [`crate::layout::evicted_path`], the segment is removed and the
    /// directory fsynced. Coverage is unchanged: the data is in the bucket.
    /// `Ok(false)`: refused (the minute changed; copy it again first).
    ///
    /// A later activity of the minute (late data, Recovery) starts a new
    /// segment for it: its keys are not known here any more, so a copy may
    /// be stored again; readers of the bucket drop it by its key.
    pub fn evict(&mut self, minute: Minute, ino: u64, len: u64, marker: &[u8]) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        if self.ingest.pending.frames.contains_key(&minute) || self.sink.in_flight.contains_key(&minute) {
            return Ok(false);
        }
        let path = layout::segment_path(&self.ingest.dir, minute);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::Io { op: "stat segment", path, source: e }),
        };
        if meta.ino() != ino || meta.len() != len {
            return Ok(false);
        }
        // Its frames are durable (nothing pending): the open handle goes.
        self.sink.writers.remove(&minute);
        let fs = self.sink.fs.clone();
        let evicted = layout::evicted_path(&path);
        let tmp = layout::tmp_path(&evicted);
        {
            let mut f = fs.open(&tmp, crate::io::Mode::Create).ctx("create eviction marker", &tmp)?;
            std::io::Write::write_all(&mut f, marker).ctx("write eviction marker", &tmp)?;
            f.sync_all().ctx("fsync eviction marker", &tmp)?;
        }
        fs.rename(&tmp, &evicted).ctx("install eviction marker", &evicted)?;
        fs.remove_file(&path).ctx("remove evicted segment", &path)?;
        let day = path.parent().unwrap_or(&self.ingest.dir);
        fs.sync_dir(day).ctx("fsync day dir", day)?;
        self.ingest.forget(minute);
        Ok(true)
    }

    /// Minutes being sealed in the background.
    pub fn seals_in_progress(&self) -> usize {
        self.sink.seals_in_progress()
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
