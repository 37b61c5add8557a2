//! Purge: the bytes of deleted content removed from the segments
//! themselves, not only hidden from readers.
//!
//! # Design
//! - **What is purged.** Once an event is older than the purge delay, the
//!   minutes are rewritten without what it deleted: Posts deleted by a
//!   Post delete (and the records that embed them), every record of a user
//!   still deleted (`user_delete` not undone), likes withdrawn by unlikes,
//!   and geo values `scrub_geo` names. Protections, suspensions and
//!   withholdings are not purged: they are undone or depend on where the
//!   reader is, so readers hide them ([`super::Policy`]).
//! - **How.** A purge is a seal with a filter (`store::seal`): the minute is
//!   rewritten to a temporary file, fsynced, and installed by rename only
//!   if the segment did not change meanwhile; a crash leaves the old file
//!   or the new one. Coverage does not change: the minute holds what the
//!   stream sent, less what compliance removed.
//! - **Never brought back.** Backfill and Recovery deliver a purged Post
//!   again. Its key is kept in a lookaside file beside the segment
//!   (`….seg.purged`, [`add_purged_keys`]), which the ID index reads with
//!   the segment's own keys: the copy is a duplicate and is dropped.
//! - **Said once.** Events whose purge finished over every local minute
//!   are appended to the stream's purge log ([`PurgeLog`]), so that the
//!   next pass does not redo them and the report can say what was purged.
//!
//! # Files
//! `….seg.purged`: `GPURGED1`, then keys as the record table encodes them
//! (`storage/FORMAT.md`), replaced atomically when keys are added.
//! `compliance.purged`: `GLPURGE1`, then records as the ledger's
//! ([`super::ledger`]), each an event whose purge finished, and after it a
//! record with action 254 whose time is when the pass finished.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::event::{Action, Event, Family};
use super::ledger;
use super::Policy;
use crate::error::{IoContext, Result};
use crate::io::{Filesystem, Mode};
use crate::key::Key;
use crate::layout;

const KEYS_MAGIC: &[u8; 8] = b"GPURGED1";
const LOG_MAGIC: &[u8; 8] = b"GLPURGE1";

/// Keys purged from the segment at `segment`, from its lookaside file.
pub fn purged_keys(fs: &dyn Filesystem, segment: &Path) -> Result<Vec<Key>> {
    let path = layout::purged_path(segment);
    let bytes = match fs.open(&path, Mode::Read) {
        Ok(mut f) => {
            let mut b = Vec::new();
            f.read_to_end(&mut b).ctx("read purged keys", &path)?;
            b
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("open purged keys", &path),
    };
    let mut keys = Vec::new();
    let mut rest = bytes.strip_prefix(KEYS_MAGIC.as_slice()).unwrap_or(&[]);
    while let Some((k, n)) = Key::decode(rest) {
        keys.push(k);
        rest = &rest[n..];
    }
    Ok(keys)
}

/// Adds `keys` to the lookaside file of the segment at `segment`,
/// atomically.
pub fn add_purged_keys(fs: &dyn Filesystem, segment: &Path, keys: &[Key]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut all: Vec<Key> = purged_keys(fs, segment)?;
    let known: HashSet<Key> = all.iter().copied().collect();
    all.extend(keys.iter().filter(|k| !known.contains(k)));
    let mut bytes = KEYS_MAGIC.to_vec();
    for k in &all {
        k.encode(&mut bytes);
    }
    crate::segment::replace_atomically(fs, &layout::purged_path(segment), &bytes)
}

/// What a purge of a copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgedCopy {
    /// The segment's new bytes.
    pub bytes: Vec<u8>,
    /// Records left out, and rewritten.
    pub purged: usize,
    pub scrubbed: usize,
}

/// Purges a copy of `minute`'s segment (`bytes`, e.g. its object in a
/// bucket, whose local segment was evicted): the same rewrite a purge of
/// the local segment does, at the store's seal level, with the stream's
/// dictionaries in `dict_dir`. `None` when nothing changes.
pub fn purge_copy(bytes: &[u8], minute: crate::Minute, dict_dir: &Path, policy: &Policy) -> Result<Option<PurgedCopy>> {
    let config = crate::store::StoreConfig::default();
    let dir = tempfile::Builder::new()
        .prefix("gapless-purge-")
        .tempdir()
        .ctx("create a temporary directory", std::env::temp_dir())?;
    let path = layout::segment_path(dir.path(), minute);
    let fs = crate::io::StdFs;
    if let Some(day) = path.parent() {
        std::fs::create_dir_all(day).ctx("create directory", day)?;
    }
    std::fs::write(&path, bytes).ctx("write", &path)?;
    let mut compressor = crate::store::seal::seal_compressor(config.seal_level)?;
    let mut dicts = crate::dict::Dictionaries::new(dict_dir);
    let never = std::sync::atomic::AtomicBool::new(false);
    let done = crate::store::seal::seal_to_tmp(
        &fs,
        dir.path(),
        minute,
        bytes.len() as u64,
        config.frame_raw_bytes,
        &mut compressor,
        &mut dicts,
        &never,
        Some(policy),
    )?;
    match done {
        Ok((tmp, stats)) => {
            let bytes = std::fs::read(&tmp).ctx("read", &tmp)?;
            Ok(Some(PurgedCopy { bytes, purged: stats.purged, scrubbed: stats.scrubbed }))
        }
        Err(_) => Ok(None),
    }
}

/// The events due for purge at `now_ms`: of the kinds purge applies
/// (see the module doc), at least `delay_ms` old, and not in `done`. A
/// `user_delete` is due only if the user is still deleted (`current`, the
/// policy of the whole ledger).
pub fn due(events: &[Event], current: &Policy, done: &HashSet<Event>, now_ms: i64, delay_ms: i64) -> Vec<Event> {
    let mut out: Vec<Event> = events
        .iter()
        .filter(|e| e.time_ms.saturating_add(delay_ms) <= now_ms && !done.contains(e))
        .filter(|e| match &e.action {
            Action::DeletePost { .. } | Action::Unlike { .. } | Action::ScrubGeo { .. } => true,
            Action::User { user, family: Family::Delete, hide: true } => current.hidden(*user) == Some(Family::Delete),
            _ => false,
        })
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

/// A stream's purge log: the events whose purge finished.
#[derive(Debug)]
pub struct PurgeLog {
    fs: Arc<dyn Filesystem>,
    path: PathBuf,
}

/// What the purge log holds.
#[derive(Debug, Default)]
pub struct PurgeRead {
    pub events: Vec<Event>,
    /// When the last pass finished (ms), if one did.
    pub last_pass_ms: Option<i64>,
}

/// The action code of a pass-end record in the purge log.
const PASS_END: u8 = 254;

impl PurgeLog {
    pub fn new(fs: Arc<dyn Filesystem>, stream_dir: &Path) -> PurgeLog {
        PurgeLog { fs, path: layout::purge_log_path(stream_dir) }
    }

    /// Reads the log (empty if there is none).
    pub fn read(&self) -> Result<PurgeRead> {
        read_log(self.fs.as_ref(), &self.path)
    }

    /// Records that `events` were purged from every local minute, in a
    /// pass that finished at `now_ms`: the log is rewritten atomically.
    pub fn record(&self, events: &[Event], now_ms: i64) -> Result<()> {
        let mut bytes = match self.fs.open(&self.path, Mode::Read) {
            Ok(mut f) => {
                let mut b = Vec::new();
                f.read_to_end(&mut b).ctx("read purge log", &self.path)?;
                let whole = ledger::parse_with(&b, LOG_MAGIC, true).whole_len as usize;
                b.truncate(whole.max(LOG_MAGIC.len()));
                if !b.starts_with(LOG_MAGIC) {
                    b = LOG_MAGIC.to_vec();
                }
                b
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LOG_MAGIC.to_vec(),
            Err(e) => return Err(e).ctx("open purge log", &self.path),
        };
        for e in events {
            ledger::encode(e, &mut bytes);
        }
        ledger::encode_raw(PASS_END, now_ms, 0, 0, &mut bytes);
        crate::segment::replace_atomically(self.fs.as_ref(), &self.path, &bytes)
    }
}

/// How many of the purge log's events were also applied to the minutes
/// evicted to the bucket (`None`: none were). The log only grows, so the
/// events past the mark are the ones the evicted minutes still owe.
pub fn bucket_mark(stream_dir: &Path) -> Result<Option<u64>> {
    let path = layout::bucket_purge_mark_path(stream_dir);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("read", &path),
    }
}

/// Records that the purge log's first `events` events were applied to the
/// minutes evicted to the bucket.
pub fn set_bucket_mark(fs: &dyn Filesystem, stream_dir: &Path, events: u64) -> Result<()> {
    crate::segment::replace_atomically(fs, &layout::bucket_purge_mark_path(stream_dir), events.to_string().as_bytes())
}

/// Reads a stream's purge log.
pub fn read_log(fs: &dyn Filesystem, path: &Path) -> Result<PurgeRead> {
    let bytes = match fs.open(path, Mode::Read) {
        Ok(mut f) => {
            let mut b = Vec::new();
            f.read_to_end(&mut b).ctx("read purge log", path)?;
            b
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PurgeRead::default()),
        Err(e) => return Err(e).ctx("open purge log", path),
    };
    let parsed = ledger::parse_with(&bytes, LOG_MAGIC, true);
    let mut out = PurgeRead::default();
    for (code, e) in parsed.raw {
        if code == PASS_END {
            out.last_pass_ms = Some(e);
        }
    }
    out.events = parsed.events;
    Ok(out)
}
