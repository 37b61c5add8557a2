//! The back of a stream's ingest path: compress pending records into
//! frames, append them to the minutes' segments, fsync, and only then hand
//! out the [`Durable`] proof. Also repairs damaged segments (coverage
//! withdrawn first) and seals quiet minutes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::compliance::{LedgerWriter, Policy};
use crate::coverage::{Counts, CoverageMap};
use crate::dict::Dictionaries;
use crate::error::IoContext;
use crate::io::{FileHandle, Filesystem, Mode};
use crate::quarantine::Quarantine;
use crate::segment::{self, SegmentWriter};
use crate::{Durable, Error, Minute, Result};

use super::seal::{self, NotSealed, SealOutcome, Sealer};
use super::{CommitStats, Pending, SealStats, StoreConfig};
use crate::layout::{self, segment_path};

/// The back of a stream's ingest path: compresses pending records into
/// frames, appends them to segments, and makes them durable.
pub struct Sink {
    pub(super) label: String,
    pub(super) dir: PathBuf,
    pub(super) config: StoreConfig,
    pub(super) coverage: Arc<CoverageMap>,
    pub(super) writers: HashMap<Minute, SegmentWriter>,
    pub(super) new_dirs: HashSet<PathBuf>,
    pub(super) quarantine: Quarantine,
    /// The stream's compliance ledger: fsynced before the segments.
    pub(super) ledger: LedgerWriter,
    pub(super) system_log: Option<Box<dyn FileHandle>>,
    pub(super) dicts: Dictionaries,
    pub(super) dict: Option<u32>,
    pub(super) plain: zstd::bulk::Compressor<'static>,
    /// The compressor of sealed minutes (`seal_level`).
    pub(super) sealer: zstd::bulk::Compressor<'static>,
    pub(super) with_dict: Option<zstd::bulk::Compressor<'static>>,
    pub(super) damaged_minutes: Vec<Minute>,
    /// Counts of batches written but not yet synced.
    pub(super) unsynced_counts: BTreeMap<Minute, Counts>,
    pub(super) stats: CommitStats,
    pub(super) appended: Arc<AtomicU64>,
    pub(super) commit_seq: u64,
    pub(super) frame_buf: Vec<u8>,
    pub(super) fs: Arc<dyn Filesystem>,
    /// The background sealer, started by the first
    /// [`Sink::seal_in_background`].
    pub(super) background: Option<Sealer>,
    /// Minutes being sealed in the background: the length asked for, and
    /// whether the segment changed since (appended, reopened, repaired).
    pub(super) in_flight: HashMap<Minute, (u64, bool)>,
    /// Seals finished while waiting for another (see [`Sink::seal`]).
    pub(super) finished: Vec<(Minute, SealOutcome)>,
}

impl Sink {
    pub(super) fn open(
        dir: &Path,
        label: &str,
        config: &StoreConfig,
        coverage: Arc<CoverageMap>,
        appended: Arc<AtomicU64>,
        fs: Arc<dyn Filesystem>,
    ) -> Result<Sink> {
        let mut quarantine = Quarantine::open_in(fs.clone(), &layout::quarantine_path(dir))?;
        quarantine.set_cap(config.quarantine_max_bytes);
        let mut dicts = Dictionaries::with_fs(&layout::dict_dir(dir), fs.clone());
        let dict = dicts.latest()?;
        let with_dict = match dict {
            Some(id) => Some(
                zstd::bulk::Compressor::with_dictionary(config.level, dicts.get(id)?).map_err(Error::Compression)?,
            ),
            None => None,
        };
        let plain = zstd::bulk::Compressor::new(config.level).map_err(Error::Compression)?;
        let sealer = seal::seal_compressor(config.seal_level)?;
        if let Err(e) = seal::sweep_tmp(fs.as_ref(), dir) {
            // Not fatal: a left-over `.tmp` is never read, and the writer
            // removes it when it next opens its segment.
            tracing::warn!(stream = %label, error = %e, "removing temporary files left by a crash failed");
        }
        Ok(Sink {
            label: label.to_string(),
            dir: dir.to_path_buf(),
            config: config.clone(),
            coverage,
            writers: HashMap::new(),
            new_dirs: HashSet::new(),
            quarantine,
            ledger: LedgerWriter::new(fs.clone(), layout::ledger_path(dir)),
            system_log: None,
            dicts,
            dict,
            plain,
            sealer,
            with_dict,
            damaged_minutes: Vec::new(),
            unsynced_counts: BTreeMap::new(),
            stats: CommitStats::default(),
            appended,
            commit_seq: 0,
            frame_buf: Vec::new(),
            fs,
            background: None,
            in_flight: HashMap::new(),
            finished: Vec::new(),
        })
    }

    pub(super) fn use_dictionary(&mut self, bytes: Vec<u8>) -> Result<()> {
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
        // Events first: the ledger never lags the segments (compliance::ledger).
        for e in p.ledger.drain(..) {
            self.ledger.push(&e);
        }
        self.ledger.flush()?;
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
    pub(super) fn write_minute(&mut self, p: &mut Pending, minute: Minute) -> Result<()> {
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
                if let Some(f) = self.in_flight.get_mut(&minute) {
                    f.1 = true; // appended (or cut back) while being sealed
                }
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

    pub(super) fn log_system(&mut self, lines: &[u8]) -> Result<()> {
        let path = layout::system_log_path(&self.dir);
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
    /// caller writes the batch again ([`StreamWriter::commit`](super::StreamWriter::commit) does).
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

    pub(super) fn sync_files(&mut self) -> Result<()> {
        // Before the segments: see compliance::ledger.
        self.ledger.sync()?;
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
            f.sync_data().ctx("fsync system log", layout::system_log_path(&self.dir))?;
        }
        Ok(())
    }

    /// Minutes whose segments were found damaged when opened for append.
    pub fn take_damaged_minutes(&mut self) -> Vec<Minute> {
        std::mem::take(&mut self.damaged_minutes)
    }

    /// Seals a minute: rewrites its segment as few frames as its size
    /// needs (frames of [`StoreConfig::frame_raw_bytes`]), without a
    /// dictionary (large frames compress well alone), at
    /// [`StoreConfig::seal_level`], atomically (write a new file, fsync,
    /// rename, fsync the directory), on this thread; see [`super::seal`].
    /// A crash at any point leaves the old file or the new one, both
    /// complete. It streams: one frame read and one being built are all it
    /// holds, whatever the size of the minute. Each frame is in time order
    /// (so a minute that fits one frame is; readers sort a minute by time).
    /// Late data may still arrive afterwards: it is appended as a new
    /// frame, and the minute can be sealed again. Returns `None` if there
    /// was nothing to do (no segment, or already as few frames as its size
    /// needs). A background seal of the minute in progress is waited for
    /// first.
    pub fn seal(&mut self, minute: Minute) -> Result<Option<SealStats>> {
        while self.in_flight.contains_key(&minute) {
            let Some(d) = self.background.as_ref().and_then(|b| b.wait_done()) else {
                self.in_flight.clear();
                break;
            };
            let done = (d.minute, self.install(d));
            self.finished.push(done);
        }
        let Some(len) = self.durable_len(minute)? else { return Ok(None) };
        let never = std::sync::atomic::AtomicBool::new(false);
        let (dir, fs, max_raw) = (self.dir.clone(), self.fs.clone(), self.config.frame_raw_bytes);
        let (sealer, dicts) = (&mut self.sealer, &mut self.dicts);
        match seal::seal_to_tmp(fs.as_ref(), &dir, minute, len, max_raw, sealer, dicts, &never, None)? {
            Ok((tmp, stats)) => {
                self.writers.remove(&minute);
                segment::install_tmp(fs.as_ref(), &tmp, &segment_path(&dir, minute))?;
                Ok(Some(stats))
            }
            Err(_) => Ok(None),
        }
    }

    /// The length of `minute`'s segment, synced and repaired (opened
    /// through the writer), or `None` if it has none.
    fn durable_len(&mut self, minute: Minute) -> Result<Option<u64>> {
        if !segment_path(&self.dir, minute).exists() {
            return Ok(None);
        }
        let w = self.writer(minute)?;
        w.sync()?;
        Ok(Some(w.len()))
    }

    /// Asks the background sealer to seal `minute` (see [`Sink::seal`] for
    /// what sealing does, and [`super::seal`] for how it is done off this
    /// thread); [`Sink::finished_seals`] installs the result. Returns
    /// false if there is nothing to ask (no segment, or a seal of it
    /// already in progress).
    pub fn seal_in_background(&mut self, minute: Minute) -> Result<bool> {
        self.rewrite_in_background(minute, None)
    }

    /// Asks the background sealer to purge `minute` with `policy`
    /// ([`crate::compliance::purge`]): a seal that leaves out or rewrites
    /// what the policy says, installed the same way
    /// ([`Sink::finished_seals`]: [`SealOutcome::Sealed`] with its counts,
    /// or [`SealOutcome::NothingToDo`] if nothing changed). False if there
    /// is nothing to ask (no segment, or a seal of it in progress: ask
    /// again later).
    pub fn purge_in_background(&mut self, minute: Minute, policy: Arc<Policy>) -> Result<bool> {
        self.rewrite_in_background(minute, Some(policy))
    }

    fn rewrite_in_background(&mut self, minute: Minute, purge: Option<Arc<Policy>>) -> Result<bool> {
        if self.in_flight.contains_key(&minute) {
            return Ok(false);
        }
        // Cheap on this thread: an open writer's length once synced, or
        // the length of a closed segment (synced when it was closed; what
        // does not verify stops the sealer, and is repaired when the
        // segment is next opened for writing).
        let path = segment_path(&self.dir, minute);
        let len = match self.writers.get_mut(&minute) {
            Some(w) => {
                w.sync()?;
                w.len()
            }
            None if path.exists() => {
                self.fs.open(&path, Mode::Read).and_then(|f| f.len()).ctx("stat segment", &path)?
            }
            None => return Ok(false),
        };
        if self.background.is_none() {
            self.background = Some(Sealer::spawn(&self.dir, &self.label, &self.config, self.fs.clone())?);
        }
        let asked = self.background.as_ref().is_some_and(|b| b.request(minute, len, purge));
        if !asked {
            // The thread is gone (it panicked): start again next time.
            self.background = None;
            return Err(Error::Frame("the sealer thread stopped".into()));
        }
        self.in_flight.insert(minute, (len, false));
        Ok(true)
    }

    /// Minutes being sealed in the background.
    pub fn seals_in_progress(&self) -> usize {
        self.in_flight.len()
    }

    /// Installs the seals the background sealer finished, without waiting:
    /// each only if its segment did not change meanwhile (else it is
    /// [`SealOutcome::Refused`] and its replacement removed).
    pub fn finished_seals(&mut self) -> Vec<(Minute, SealOutcome)> {
        let mut out = std::mem::take(&mut self.finished);
        while let Some(d) = self.background.as_ref().and_then(|b| b.try_done()) {
            out.push((d.minute, self.install(d)));
        }
        out
    }

    fn install(&mut self, d: seal::Done) -> SealOutcome {
        let touched = self.in_flight.remove(&d.minute).is_none_or(|(len, touched)| touched || len != d.len);
        let (tmp, stats) = match d.result {
            Ok(Ok(done)) => done,
            Ok(Err(NotSealed::NothingToDo)) => return SealOutcome::NothingToDo,
            Ok(Err(NotSealed::Cancelled)) => return SealOutcome::Refused,
            Err(e) => return SealOutcome::Failed(e),
        };
        let path = segment_path(&self.dir, d.minute);
        let now = match self.writers.get(&d.minute) {
            Some(w) => Ok(w.len()),
            None => self.fs.open(&path, Mode::Read).and_then(|f| f.len()).ctx("stat segment", &path),
        };
        match now {
            Ok(len) if len == d.len && !touched => {}
            Ok(_) => {
                let _ = self.fs.remove_file(&tmp);
                return SealOutcome::Refused;
            }
            Err(e) => {
                let _ = self.fs.remove_file(&tmp);
                return SealOutcome::Failed(e);
            }
        }
        // The open writer holds the old file.
        self.writers.remove(&d.minute);
        match segment::install_tmp(self.fs.as_ref(), &tmp, &path) {
            Ok(()) => SealOutcome::Sealed(stats),
            Err(e) => SealOutcome::Failed(e),
        }
    }

    /// The open writer of `minute`'s segment, opening (and repairing) it.
    pub(super) fn writer(&mut self, minute: Minute) -> Result<&mut SegmentWriter> {
        if !self.writers.contains_key(&minute) {
            let path = segment_path(&self.dir, minute);
            let day = path.parent().expect("segment paths have a day dir").to_path_buf();
            if !day.exists() {
                self.fs.create_dir_all(&day).ctx("create day dir", &day)?;
                self.new_dirs.insert(self.dir.join("segments"));
            }
            if let Some(f) = self.in_flight.get_mut(&minute) {
                f.1 = true; // opening removes the temporary file, and may repair
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
