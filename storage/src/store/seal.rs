//! Sealing: a quiet minute's segment rewritten as few large frames at
//! [`StoreConfig::seal_level`](super::StoreConfig::seal_level), off the
//! ingest path.
//!
//! # Design
//! - The rewrite ([`seal_to_tmp`]) streams: it reads the segment's verified
//!   frames up to a length `L` known to be durable, one frame at a time,
//!   and writes the replacement to the segment's temporary path
//!   ([`crate::layout::tmp_path`]), cut into frames of at most
//!   `frame_raw_bytes` raw bytes, each sorted by time, and fsyncs it. One
//!   frame read and one being built are all it holds. Bytes up to `L` that
//!   do not verify stop it (the segment was repaired when opened, so
//!   something changed it since: never seal away bytes that were not
//!   read).
//! - In the background, a [`Sealer`] thread per stream does the rewrite
//!   (compression at a high level takes seconds per Firehose minute). The
//!   storage thread asks it to seal minute `M` whose segment is `L` bytes
//!   (durable), and between batches installs what it finished
//!   ([`Sink::finished_seals`](super::Sink::finished_seals)): only if the
//!   segment is still exactly `L` bytes and nothing was appended to it or
//!   repaired in it meanwhile, by rename and directory fsync. Otherwise the
//!   temporary file is removed and the minute is sealed again when next
//!   quiet. The segment is never written by the sealer: the storage thread
//!   stays its only writer, so appends and repairs need no lock.
//! - Coverage and the ID index do not change: a sealed segment holds the
//!   same records.
//! - A crash at any point leaves the old segment or the new one, both
//!   complete, and maybe a temporary file: the writer removes it when it
//!   next opens the segment, and a stream's open sweeps the newest days.
//!   Dropping the [`Sealer`] (shutdown) abandons the seal in progress after
//!   its current frame and removes every temporary file it wrote and that
//!   was not installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use crate::compliance::{Policy, Verdict, WithheldMode};
use crate::dict::Dictionaries;
use crate::error::IoContext;
use crate::frame::Encoder;
use crate::io::Filesystem;
use crate::layout::{self, segment_path};
use crate::reader::decompress;
use crate::segment::{self, SegmentReader};
use crate::{Error, Minute, Result};

use super::{SealStats, StoreConfig};

/// The zstd window of sealed frames: a whole frame of at most
/// [`crate::frame::TARGET_RAW_BYTES`] (16 MiB), so that matches reach back
/// across all of it. Readers must accept windows up to this (zstd's default
/// decoder limit is 2^27).
pub const SEAL_WINDOW_LOG: u32 = 24;

/// Day directories swept for temporary files left by a crash when a stream
/// is opened (the newest ones: sealing works on recent minutes; an older
/// one is cleaned when its segment is next opened for writing).
const SWEEP_DAYS: usize = 8;

/// What became of a seal done in the background.
#[derive(Debug)]
pub enum SealOutcome {
    /// Installed: the minute is sealed.
    Sealed(SealStats),
    /// Already as few frames as its size needs (or no segment).
    NothingToDo,
    /// The segment changed while it was being sealed (a frame appended, a
    /// repair): the replacement was discarded; seal it again when quiet.
    Refused,
    /// Reading, writing or installing failed; the segment is as it was.
    Failed(Error),
}

/// The compressor of sealed frames.
pub(crate) fn seal_compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level).map_err(Error::Compression)?;
    c.set_parameter(zstd::stream::raw::CParameter::WindowLog(SEAL_WINDOW_LOG)).map_err(Error::Compression)?;
    Ok(c)
}

/// Why [`seal_to_tmp`] wrote nothing.
pub(crate) enum NotSealed {
    /// Already as few frames as its size needs, or no segment.
    NothingToDo,
    /// Abandoned (shutdown).
    Cancelled,
}

/// Writes the sealed form of the first `len` bytes of `minute`'s segment to
/// its temporary path, fsynced; see the module doc. Returns the temporary
/// path and what it holds. On error or cancellation nothing is left behind.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_to_tmp(
    fs: &dyn Filesystem,
    dir: &Path,
    minute: Minute,
    len: u64,
    max_raw: usize,
    compressor: &mut zstd::bulk::Compressor<'static>,
    dicts: &mut Dictionaries,
    cancel: &AtomicBool,
    purge: Option<&Policy>,
) -> Result<std::result::Result<(PathBuf, SealStats), NotSealed>> {
    let path = segment_path(dir, minute);
    if !path.exists() {
        return Ok(Err(NotSealed::NothingToDo));
    }
    // Headers first (cheap): is there anything to do?
    let (mut frames, mut raw) = (0usize, 0u64);
    {
        let mut r = SegmentReader::open_in(fs, &path)?;
        r.limit(len);
        while let Some(f) = r.next_header()? {
            frames += 1;
            raw += f.header.raw_len as u64;
            r.skip_payload(&f)?;
        }
    }
    let needed = raw.div_ceil(max_raw as u64).max(1) as usize;
    if frames <= needed && purge.is_none() {
        return Ok(Err(NotSealed::NothingToDo));
    }
    // A purge (compliance::purge): records dropped (their keys kept aside)
    // or rewritten as the policy says. Most minutes hold nothing a pass
    // removes: they are read once and left alone, never recompressed.
    if let Some(policy) = purge {
        if !any_change(fs, &path, len, dicts, policy, cancel)? {
            return Ok(Err(NotSealed::NothingToDo));
        }
    }
    let mut purged_keys = Vec::new();
    let mut scrubbed = 0usize;
    let mut enc = Encoder::new();
    let mut frame_buf = Vec::new();
    let mut payload = Vec::new();
    let (mut records, mut frames_before, mut bytes_after) = (0usize, 0usize, 0u64);
    let mut cancelled = false;
    let written = segment::write_tmp(fs, &path, |out| {
        out.write_all(&segment::file_header(minute)).ctx("write", &path)?;
        bytes_after += segment::FILE_HEADER_LEN;
        let mut r = SegmentReader::open_in(fs, &path)?;
        r.limit(len);
        let mut emit = |enc: &mut Encoder, out: &mut dyn Write| -> Result<u64> {
            enc.sort_by_time();
            frame_buf.clear();
            enc.finish(compressor, 0, &mut frame_buf)?;
            out.write_all(&frame_buf).ctx("write", &path)?;
            Ok(frame_buf.len() as u64)
        };
        while let Some(fr) = r.next_header()? {
            if cancel.load(Ordering::Relaxed) {
                cancelled = true;
                return Err(Error::Frame("seal abandoned".into()));
            }
            if !r.read_payload(&fr, &mut payload)? {
                break;
            }
            frames_before += 1;
            let bytes = decompress(&fr.header, &payload, dicts)?;
            for (e, b) in crate::frame::split_records(&fr.header, &bytes)? {
                let rewritten;
                let b = match purge.map(|p| p.verdict(e.kind, e.time_ms, b, WithheldMode::Keep)) {
                    Some(Verdict::Drop(_)) => {
                        purged_keys.push(e.key);
                        continue;
                    }
                    Some(Verdict::Rewrite { bytes, .. }) => {
                        scrubbed += 1;
                        rewritten = bytes;
                        &rewritten[..]
                    }
                    _ => b,
                };
                if !enc.is_empty() && enc.raw_len() + b.len() + 1 > max_raw {
                    bytes_after += emit(&mut enc, out)?;
                }
                enc.push(e.kind, e.key, e.time_ms, b);
                records += 1;
            }
        }
        if let Some(bad) = r.unverified() {
            // Repaired when opened, so something changed it since: never
            // seal away bytes that were not read.
            return Err(Error::Frame(format!("{}: bytes {bad:?} do not verify; not sealed", path.display())));
        }
        if !enc.is_empty() {
            bytes_after += emit(&mut enc, out)?;
        }
        Ok(())
    });
    let purged = purged_keys.len();
    match written {
        Ok(tmp) if purge.is_some() && purged == 0 && scrubbed == 0 => {
            let _ = fs.remove_file(&tmp);
            Ok(Err(NotSealed::NothingToDo))
        }
        Ok(tmp) => {
            // The keys first: a crash before the rename leaves keys of
            // records still stored, which only says they are known.
            if let Err(e) = crate::compliance::purge::add_purged_keys(fs, &path, &purged_keys) {
                let _ = fs.remove_file(&tmp);
                return Err(e);
            }
            Ok(Ok((tmp, SealStats { frames_before, records, bytes_before: len, bytes_after, purged, scrubbed })))
        }
        Err(_) if cancelled => Ok(Err(NotSealed::Cancelled)),
        Err(e) => Err(e),
    }
}

/// Whether `policy` changes a record of the first `len` bytes of the
/// segment at `path` (a purge's first look).
fn any_change(
    fs: &dyn Filesystem,
    path: &Path,
    len: u64,
    dicts: &mut Dictionaries,
    policy: &Policy,
    cancel: &AtomicBool,
) -> Result<bool> {
    let mut r = SegmentReader::open_in(fs, path)?;
    r.limit(len);
    let mut payload = Vec::new();
    while let Some(fr) = r.next_header()? {
        if cancel.load(Ordering::Relaxed) || !r.read_payload(&fr, &mut payload)? {
            return Ok(false);
        }
        let bytes = decompress(&fr.header, &payload, dicts)?;
        for (e, b) in crate::frame::split_records(&fr.header, &bytes)? {
            if !matches!(policy.verdict(e.kind, e.time_ms, b, WithheldMode::Keep), Verdict::Keep) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A request: seal `minute`, whose segment is `len` bytes, all durable;
/// with `purge`, apply it (a purge rewrites whatever the frame count).
struct Job {
    minute: Minute,
    len: u64,
    purge: Option<Arc<Policy>>,
}

/// A finished job: the replacement written (and fsynced) at `tmp`, or why
/// not.
pub(super) struct Done {
    pub minute: Minute,
    pub len: u64,
    pub result: Result<std::result::Result<(PathBuf, SealStats), NotSealed>>,
}

/// The sealer thread of one stream; see the module doc.
pub(super) struct Sealer {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    fs: Arc<dyn Filesystem>,
}

impl Sealer {
    pub fn spawn(dir: &Path, label: &str, config: &StoreConfig, fs: Arc<dyn Filesystem>) -> Result<Sealer> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        // A compressor a seal, not one a thread: at the seal level with a
        // 2^24 window its tables are tens of MB, and a stream seals a minute
        // now and then; between seals the memory goes back.
        let level = config.seal_level;
        seal_compressor(level)?;
        let mut dicts = Dictionaries::with_fs(&layout::dict_dir(dir), fs.clone());
        let err_dir = dir.to_path_buf();
        let (dir, max_raw, stop, thread_fs) = (dir.to_path_buf(), config.frame_raw_bytes, cancel.clone(), fs.clone());
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name(format!("seal-{label}"))
            .spawn(move || {
                let _span = span.entered();
                for Job { minute, len, purge } in job_rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = seal_compressor(level).and_then(|mut compressor| {
                        let purge = purge.as_deref();
                        let fs = thread_fs.as_ref();
                        seal_to_tmp(fs, &dir, minute, len, max_raw, &mut compressor, &mut dicts, &stop, purge)
                    });
                    if let Err(std::sync::mpsc::SendError(d)) = done_tx.send(Done { minute, len, result }) {
                        // Nobody will install it.
                        if let Ok(Ok((tmp, _))) = d.result {
                            let _ = thread_fs.remove_file(&tmp);
                        }
                        break;
                    }
                }
            })
            .ctx("spawn sealer thread", &err_dir)?;
        Ok(Sealer { jobs: Some(jobs), done, cancel, thread: Some(thread), fs })
    }

    /// Queues a seal. False if the thread is gone.
    pub fn request(&self, minute: Minute, len: u64, purge: Option<Arc<Policy>>) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(Job { minute, len, purge }).is_ok())
    }

    /// A finished job, if any, without waiting.
    pub fn try_done(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// The next finished job, waiting for it; `None` if the thread is gone.
    pub fn wait_done(&self) -> Option<Done> {
        self.done.recv().ok()
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Finished and not installed: never a half state on disk.
        while let Ok(d) = self.done.try_recv() {
            if let Ok(Ok((tmp, _))) = d.result {
                let _ = self.fs.remove_file(&tmp);
            }
        }
    }
}

/// Removes the segments' temporary files of the newest [`SWEEP_DAYS`] day
/// directories of a stream (left by a crash during a seal or a repair: the
/// segment itself is complete, old or new).
pub(super) fn sweep_tmp(fs: &dyn Filesystem, stream_dir: &Path) -> Result<()> {
    let segments = stream_dir.join("segments");
    let mut days: Vec<PathBuf> = match std::fs::read_dir(&segments) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io { op: "list segments", path: segments, source: e }),
    };
    days.sort_unstable();
    for day in days.iter().rev().take(SWEEP_DAYS) {
        for e in std::fs::read_dir(day).ctx("list day", day)? {
            let path = e.ctx("list day", day)?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".seg.tmp")) {
                fs.remove_file(&path).ctx("remove stale temporary file", &path)?;
            }
        }
    }
    Ok(())
}
