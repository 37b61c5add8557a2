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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::activity::{self, Activity, Limits, Line, SystemMessage};
use crate::coverage::{CoverageMap, Counts};
use crate::dict::{self, Dictionaries};
use crate::error::IoContext;
use crate::frame::{self, Encoder};
use crate::id_index::{IdIndex, MinuteKeys};
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

/// A data directory, opened for writing by this process alone.
pub struct Store {
    root: PathBuf,
    coverage: Arc<CoverageMap>,
    config: StoreConfig,
    _lock: File,
}

impl Store {
    pub fn open(root: &Path, config: StoreConfig) -> Result<Store> {
        std::fs::create_dir_all(root).ctx("create data dir", root)?;
        let lock_path = root.join("LOCK");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).ctx("open lock", &lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Invalid(format!(
                    "{} is in use by another gapless process (it holds {})",
                    root.display(),
                    lock_path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io { op: "lock", path: lock_path, source: e }),
        }
        let coverage = Arc::new(CoverageMap::open(&root.join("coverage"))?);
        Ok(Store { root: root.to_path_buf(), coverage, config, _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn coverage(&self) -> &Arc<CoverageMap> {
        &self.coverage
    }

    /// Opens the writer of one stream. Call once per stream.
    pub fn stream(&self, label: &str) -> Result<StreamWriter> {
        StreamWriter::open(&self.root, label, self.config.clone(), self.coverage.clone())
    }
}

/// Where a stream's files live.
pub fn stream_dir(root: &Path, label: &str) -> PathBuf {
    root.join("streams").join(label)
}

/// Where the segment of `minute` lives.
pub fn segment_path(stream_dir: &Path, minute: Minute) -> PathBuf {
    stream_dir.join("segments").join(minute.day_dir()).join(format!("{}.seg", minute.file_stem()))
}

/// A label names a directory: letters, digits, `-`, `_`, `.`, not starting
/// with `.`.
pub fn check_label(label: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && !label.starts_with('.')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("stream label {label:?}: use letters, digits, '-', '_' and '.'")))
    }
}

/// The ingest path of one stream.
pub struct StreamWriter {
    label: String,
    dir: PathBuf,
    config: StoreConfig,
    coverage: Arc<CoverageMap>,
    index: IdIndex,
    pending: BTreeMap<Minute, Encoder>,
    counts: BTreeMap<Minute, Counts>,
    writers: HashMap<Minute, SegmentWriter>,
    new_dirs: HashSet<PathBuf>,
    quarantine: Quarantine,
    system_log: Option<File>,
    dicts: Dictionaries,
    dict: Option<u32>,
    plain: zstd::bulk::Compressor<'static>,
    with_dict: Option<zstd::bulk::Compressor<'static>>,
    samples: Vec<u8>,
    sample_sizes: Vec<usize>,
    damaged_minutes: Vec<Minute>,
    commit_seq: u64,
    frame_buf: Vec<u8>,
}

impl StreamWriter {
    fn open(root: &Path, label: &str, config: StoreConfig, coverage: Arc<CoverageMap>) -> Result<StreamWriter> {
        check_label(label)?;
        let dir = stream_dir(root, label);
        std::fs::create_dir_all(dir.join("segments")).ctx("create stream dir", &dir)?;
        let quarantine = Quarantine::open(&dir.join("quarantine.log"))?;
        let mut dicts = Dictionaries::new(&dir.join("dict"));
        let dict = dicts.latest()?;
        let with_dict = match dict {
            Some(id) => Some(zstd::bulk::Compressor::with_dictionary(config.level, dicts.get(id)?).map_err(Error::Compression)?),
            None => None,
        };
        let plain = zstd::bulk::Compressor::new(config.level).map_err(Error::Compression)?;
        Ok(StreamWriter {
            label: label.to_string(),
            dir,
            config,
            coverage,
            index: IdIndex::new(),
            pending: BTreeMap::new(),
            counts: BTreeMap::new(),
            writers: HashMap::new(),
            new_dirs: HashSet::new(),
            quarantine,
            system_log: None,
            dicts,
            dict,
            plain,
            with_dict,
            samples: Vec::new(),
            sample_sizes: Vec::new(),
            damaged_minutes: Vec::new(),
            commit_seq: 0,
            frame_buf: Vec::new(),
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Classifies and accepts one line (without its terminator).
    pub fn ingest(&mut self, line: &[u8], received_ms: i64) -> Result<Outcome> {
        let classified = activity::classify(line, &self.config.limits);
        self.accept(line, classified, received_ms)
    }

    /// Accepts a line already classified (the import pipeline classifies
    /// on another thread).
    pub fn accept(
        &mut self,
        line: &[u8],
        classified: std::result::Result<Line, activity::Rejection>,
        received_ms: i64,
    ) -> Result<Outcome> {
        match classified {
            Ok(Line::Heartbeat) => Ok(Outcome::Heartbeat),
            Ok(Line::System(msg)) => {
                self.log_system(line)?;
                Ok(Outcome::System(msg))
            }
            Ok(Line::Activity(a)) => self.accept_activity(line, a),
            Err(rejection) => {
                let reason = rejection.to_string();
                self.quarantine.push(line, &reason, received_ms)?;
                self.counts.entry(Minute::of_ms(received_ms)).or_default().quarantined += 1;
                self.counts.entry(Minute::of_ms(received_ms)).or_default().received += 1;
                Ok(Outcome::Quarantined { reason })
            }
        }
    }

    fn accept_activity(&mut self, line: &[u8], a: Activity) -> Result<Outcome> {
        let minute = Minute::of_ms(a.time_ms);
        if !self.index.is_resident(minute) {
            let keys = self.load_keys(minute)?;
            self.index.load(minute, keys);
        }
        let counts = self.counts.entry(minute).or_default();
        counts.received += 1;
        let fresh = self.index.minute_mut(minute).insert(minute, a.key);
        let duplicate = !fresh && !(matches!(a.key, Key::Hashed(_)) && !self.same_bytes_stored(minute, &a.key, line)?);
        let counts = self.counts.entry(minute).or_default();
        if duplicate {
            counts.duplicates += 1;
            return Ok(Outcome::Duplicate { minute });
        }
        counts.stored += 1;
        self.sample(line);
        self.pending.entry(minute).or_default().push(a.kind, a.key, a.time_ms, line);
        Ok(Outcome::Stored { minute, kind: a.kind })
    }

    /// Keys of a minute not in memory, from its segment's frame headers.
    fn load_keys(&mut self, minute: Minute) -> Result<MinuteKeys> {
        let mut keys = MinuteKeys::default();
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            return Ok(keys);
        }
        let (_, frames) = segment::read_headers(&path)?;
        for f in frames {
            for e in &f.header.entries {
                keys.insert(minute, e.key);
            }
        }
        Ok(keys)
    }

    /// For a hashed key already in the index: is an activity with exactly
    /// these bytes stored or pending? (Equal hashes with other bytes are a
    /// collision, and the new activity is kept.)
    fn same_bytes_stored(&mut self, minute: Minute, key: &Key, line: &[u8]) -> Result<bool> {
        if let Some(enc) = self.pending.get(&minute) {
            if enc.records().any(|(e, b)| e.key == *key && b == line) {
                return Ok(true);
            }
        }
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            return Ok(false);
        }
        let mut found = false;
        for_each_record(&path, &mut self.dicts, |e, b| found |= e.key == *key && b == line)?;
        Ok(found)
    }

    fn log_system(&mut self, line: &[u8]) -> Result<()> {
        if self.system_log.is_none() {
            let path = self.dir.join("system.log");
            self.system_log = Some(OpenOptions::new().create(true).append(true).open(&path).ctx("open system log", &path)?);
        }
        let path = self.dir.join("system.log");
        let f = self.system_log.as_mut().expect("opened above");
        f.write_all(line).and_then(|_| f.write_all(b"\n")).ctx("write system log", path)
    }

    fn sample(&mut self, line: &[u8]) {
        if self.dict.is_none() && self.config.dict_train_bytes > 0 && self.samples.len() < self.config.dict_train_bytes {
            self.samples.extend_from_slice(line);
            self.sample_sizes.push(line.len());
        }
    }

    /// Records accepted and not yet committed.
    pub fn pending_records(&self) -> usize {
        self.pending.values().map(|e| e.len()).sum()
    }

    /// Minutes whose segments were found damaged when opened for append:
    /// their coverage was withdrawn so that they are requested again.
    pub fn take_damaged_minutes(&mut self) -> Vec<Minute> {
        std::mem::take(&mut self.damaged_minutes)
    }

    /// Writes every pending record and makes it durable; see the module doc.
    pub fn commit(&mut self) -> Result<(Durable, CommitStats)> {
        self.maybe_train()?;
        let mut stats = CommitStats::default();
        let minutes: Vec<Minute> = self.pending.keys().copied().collect();
        for minute in minutes {
            let enc = &self.pending[&minute];
            if enc.is_empty() {
                continue;
            }
            self.frame_buf.clear();
            let use_dict = enc.len() < self.config.dict_max_records && self.with_dict.is_some();
            match (use_dict, self.with_dict.as_mut()) {
                (true, Some(c)) => enc.encode(c, self.dict.unwrap_or(0), &mut self.frame_buf)?,
                _ => enc.encode(&mut self.plain, 0, &mut self.frame_buf)?,
            }
            stats.frames += 1;
            stats.records += enc.len();
            stats.raw_bytes += enc.raw_len() as u64;
            stats.stored_bytes += self.frame_buf.len() as u64;
            let frame = std::mem::take(&mut self.frame_buf);
            let appended = self.writer(minute).and_then(|w| w.append(&frame));
            self.frame_buf = frame;
            appended?;
            if let Some(enc) = self.pending.get_mut(&minute) {
                enc.clear();
            }
        }
        for w in self.writers.values_mut() {
            w.sync()?;
        }
        for dir in self.new_dirs.drain() {
            segment::sync_dir(&dir)?;
        }
        self.quarantine.sync()?;
        if let Some(f) = self.system_log.as_mut() {
            f.sync_data().ctx("fsync system log", self.dir.join("system.log"))?;
        }
        self.pending.clear();
        // Data is durable: now the bookkeeping that describes it.
        for (minute, c) in std::mem::take(&mut self.counts) {
            self.coverage.add_counts(&self.label, minute, c)?;
        }
        self.writers.retain(|_, w| !w.is_empty() || w.len() > segment::FILE_HEADER_LEN);
        if self.writers.len() > 64 {
            self.writers.clear();
        }
        self.index.evict(self.config.resident_minutes, |_| false);
        self.commit_seq += 1;
        Ok((Durable::new(&self.label, self.commit_seq), stats))
    }

    /// The open writer of `minute`'s segment, opening (and repairing) it.
    fn writer(&mut self, minute: Minute) -> Result<&mut SegmentWriter> {
        if !self.writers.contains_key(&minute) {
            let path = segment_path(&self.dir, minute);
            let day = path.parent().expect("segment paths have a day dir").to_path_buf();
            if !day.exists() {
                std::fs::create_dir_all(&day).ctx("create day dir", &day)?;
                self.new_dirs.insert(self.dir.join("segments"));
            }
            let existed = path.exists();
            let (w, _, repair) = SegmentWriter::open(&path, minute)?;
            if !existed {
                self.new_dirs.insert(day);
            }
            if !repair.damaged.is_empty() {
                // Frames were lost to damage: whatever coverage claimed for
                // this minute no longer holds.
                self.coverage.uncover(&self.label, minute.start_secs()..minute.next().start_secs())?;
                self.damaged_minutes.push(minute);
            }
            self.writers.insert(minute, w);
        }
        Ok(self.writers.get_mut(&minute).expect("inserted above"))
    }

    /// Trains the stream's dictionary once enough samples are in.
    fn maybe_train(&mut self) -> Result<()> {
        if self.dict.is_some() || self.config.dict_train_bytes == 0 || self.samples.len() < self.config.dict_train_bytes {
            return Ok(());
        }
        let trained = dict::train(&self.samples, &self.sample_sizes, self.config.dict_size);
        self.samples = Vec::new();
        self.sample_sizes = Vec::new();
        match trained {
            Ok(bytes) => {
                let id = self.dicts.save(bytes)?;
                self.with_dict = Some(
                    zstd::bulk::Compressor::with_dictionary(self.config.level, self.dicts.get(id)?).map_err(Error::Compression)?,
                );
                self.dict = Some(id);
                tracing::info!(stream = %self.label, id = format!("{id:08x}"), "trained a compression dictionary");
            }
            Err(e) => tracing::warn!(stream = %self.label, error = %e, "dictionary training failed; frames stay plain"),
        }
        Ok(())
    }
}

/// Calls `f` on every record of every verified frame of a segment.
pub fn for_each_record(path: &Path, dicts: &mut Dictionaries, mut f: impl FnMut(&frame::Entry, &[u8])) -> Result<()> {
    let mut r = SegmentReader::open(path)?;
    let mut payload = Vec::new();
    while let Some(fr) = r.next_header()? {
        if !r.read_payload(&fr, &mut payload)? {
            break;
        }
        let raw = decompress(&fr.header, &payload, dicts)?;
        for (e, b) in frame::split_records(&fr.header, &raw)? {
            f(e, b);
        }
    }
    Ok(())
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
