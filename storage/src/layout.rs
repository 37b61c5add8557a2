//! Where a data directory keeps what: the one module that knows paths and
//! file names (FORMAT.md, "Directory layout").
//!
//! ```text
//! DATA/LOCK                                        held by the one writing process
//! DATA/admin.url                                   where that process's admin API listens
//! DATA/identity                                    this directory's identity (bucket manifests name it)
//! DATA/coverage/                                   sled: coverage map, counters, jobs
//! DATA/streams/LABEL/segments/YYYY-MM-DD/YYYYMMDDTHHMMZ.seg
//!                                    ….seg.damaged  bytes a repair moved aside
//!                                    ….seg.evicted  the segment is in the bucket only
//!                                    ….seg.purged   keys purged from the segment (compliance)
//! DATA/streams/LABEL/dict/XXXXXXXX.zdict           zstd dictionaries
//! DATA/streams/LABEL/quarantine.log                rejected lines, with reasons
//!                    quarantine.log.torn-OFFSET    a torn tail cut off on open
//! DATA/streams/LABEL/system.log                    system messages, as received
//! DATA/streams/LABEL/compliance.ledger             compliance events (deletes, withholdings, ...)
//!                    compliance.ledger.torn-OFFSET a torn tail cut off on open
//! DATA/streams/LABEL/compliance.purged             events whose purge finished
//! DATA/streams/LABEL/compliance.purged-bucket      purged events also applied to evicted minutes
//! ```
//!
//! A file replaced atomically is written to `NAME.tmp` beside it, fsynced
//! and renamed over it ([`tmp_path`]).

use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Minute, Result};

/// The lock file: held (`flock`) by the one process writing the directory.
pub fn lock_path(root: &Path) -> PathBuf {
    root.join("LOCK")
}

/// The coverage store (a sled database).
pub fn coverage_dir(root: &Path) -> PathBuf {
    root.join("coverage")
}

/// Where the archiver holding the lock says its admin API listens: one
/// line, the base URL (`http://127.0.0.1:8787`). Written after the API is
/// up, removed on a clean stop; trust it only while the lock is held.
pub fn admin_url_path(root: &Path) -> PathBuf {
    root.join("admin.url")
}

/// The data directory's identity: one line made when it is first needed
/// (host, path and time of creation), kept for good, so that a copy of the
/// archive elsewhere (a bucket's site) can tell this directory's writes
/// from another's.
pub fn identity_path(root: &Path) -> PathBuf {
    root.join("identity")
}

/// A label names a directory: letters, digits, `-`, `_`, `.`, not starting
/// with `.`, at most 64 bytes.
pub fn check_label(label: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && !label.starts_with('.')
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadLabel(label.to_string()))
    }
}

/// Where a stream's files live.
pub fn stream_dir(root: &Path, label: &str) -> PathBuf {
    root.join("streams").join(label)
}

/// A stream's zstd dictionaries.
pub fn dict_dir(stream_dir: &Path) -> PathBuf {
    stream_dir.join("dict")
}

/// A stream's quarantine (rejected lines, with reasons).
pub fn quarantine_path(stream_dir: &Path) -> PathBuf {
    stream_dir.join("quarantine.log")
}

/// A stream's system messages, as received.
pub fn system_log_path(stream_dir: &Path) -> PathBuf {
    stream_dir.join("system.log")
}

/// A stream's compliance ledger ([`crate::compliance::ledger`]).
pub fn ledger_path(stream_dir: &Path) -> PathBuf {
    stream_dir.join("compliance.ledger")
}

/// A stream's purge log ([`crate::compliance::purge`]).
pub fn purge_log_path(stream_dir: &Path) -> PathBuf {
    stream_dir.join("compliance.purged")
}

/// How many of the purge log's events were also applied to the minutes
/// evicted to the bucket (the uploader's mark).
pub fn bucket_purge_mark_path(stream_dir: &Path) -> PathBuf {
    stream_dir.join("compliance.purged-bucket")
}

/// The keys purged from a segment (kept so that a copy delivered again is
/// a duplicate).
pub fn purged_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".purged")
}

/// Where a file's replacement is written before it is renamed over it.
pub fn tmp_path(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

/// The marker left where a segment was evicted after its copy in the
/// bucket was verified (`[archive]`): the minute's data is in the bucket
/// only (JSON: the object's key, size and CRC32C).
pub fn evicted_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".evicted")
}

/// Where a repair keeps the damaged bytes it moved out of a segment.
pub fn damaged_path(segment: &Path) -> PathBuf {
    with_suffix(segment, ".damaged")
}

/// The files a stream keeps aside as they were, for a person to look at:
/// bytes a repair moved out of segments (`….seg.damaged`) and torn tails
/// cut off append-only files (`….torn-OFFSET`). Purges do not rewrite them.
pub fn kept_aside_files(stream_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let kept = |p: &Path| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".damaged") || n.contains(".torn-"))
    };
    let mut dirs = vec![stream_dir.to_path_buf()];
    let segments = stream_dir.join("segments");
    if segments.is_dir() {
        for e in std::fs::read_dir(&segments).ctx("list segments", &segments)? {
            let p = e.ctx("list segments", &segments)?.path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
    }
    for d in dirs {
        if !d.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&d).ctx("list", &d)? {
            let p = e.ctx("list", &d)?.path();
            if kept(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Where the torn tail of an append-only file (cut off at `offset` on
/// open) is kept.
pub fn torn_path(path: &Path, offset: u64) -> PathBuf {
    with_suffix(path, &format!(".torn-{offset}"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where the segment of `minute` lives.
pub fn segment_path(stream_dir: &Path, minute: Minute) -> PathBuf {
    stream_dir.join("segments").join(minute.day_dir()).join(format!("{}.seg", minute.file_stem()))
}

/// The minute a segment's file name names (`20170718T2325Z.seg`).
pub fn segment_minute(file_name: &str) -> Option<Minute> {
    let stem = file_name.strip_suffix(".seg")?;
    let t = chrono::NaiveDateTime::parse_from_str(stem, "%Y%m%dT%H%MZ").ok()?;
    Some(Minute::of_secs(t.and_utc().timestamp()))
}

/// The day directories of a stream's segments (`YYYY-MM-DD`) from `first`'s
/// day to `last`'s day, inclusive, sorted.
pub fn segment_days(stream_dir: &Path, first: Minute, last: Minute) -> Result<Vec<String>> {
    let segments = stream_dir.join("segments");
    // Compared as days since the epoch, so that any minute is a bound.
    let (lo, hi) = (first.start_secs().div_euclid(86_400), last.start_secs().div_euclid(86_400));
    let mut days = Vec::new();
    match std::fs::read_dir(&segments) {
        Ok(entries) => {
            for e in entries {
                let e = e.ctx("list segments", &segments)?;
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                let Ok(date) = chrono::NaiveDate::parse_from_str(&name, "%Y-%m-%d") else { continue };
                let day = date.signed_duration_since(chrono::NaiveDate::default()).num_days();
                if name.len() == 10 && (lo..=hi).contains(&day) {
                    days.push(name);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { op: "list segments", path: segments, source: e }),
    }
    days.sort_unstable();
    Ok(days)
}

/// The minutes in `[first, end)` that have a segment in day directory
/// `day`, sorted.
pub fn segment_minutes(stream_dir: &Path, day: &str, first: Minute, end: Minute) -> Result<Vec<Minute>> {
    let path = stream_dir.join("segments").join(day);
    let mut minutes = Vec::new();
    for e in std::fs::read_dir(&path).ctx("list day", &path)? {
        let e = e.ctx("list day", &path)?;
        let Some(m) = e.file_name().to_str().and_then(segment_minute) else { continue };
        if m >= first && m < end {
            minutes.push(m);
        }
    }
    minutes.sort_unstable();
    Ok(minutes)
}

/// The minutes in `[first, end)` whose segment was evicted to the bucket
/// (an [`evicted_path`] marker and no segment), sorted.
pub fn evicted_minutes(stream_dir: &Path, first: Minute, end: Minute) -> Result<Vec<Minute>> {
    if end <= first {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for day in segment_days(stream_dir, first, Minute(end.0 - 1))? {
        let path = stream_dir.join("segments").join(&day);
        for e in std::fs::read_dir(&path).ctx("list day", &path)? {
            let e = e.ctx("list day", &path)?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            let Some(m) = name.strip_suffix(".evicted").and_then(segment_minute) else { continue };
            if m >= first && m < end && !path.join(name.trim_end_matches(".evicted")).exists() {
                out.push(m);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Every minute in `[first, end)` with a segment, sorted.
pub fn minutes_with_segments(stream_dir: &Path, first: Minute, end: Minute) -> Result<Vec<Minute>> {
    if end <= first {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for day in segment_days(stream_dir, first, Minute(end.0 - 1))? {
        out.extend(segment_minutes(stream_dir, &day, first, end)?);
    }
    Ok(out)
}

/// The labels of the streams of a data directory, sorted.
pub fn streams(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("streams");
    let mut out = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.ctx("list streams", &dir)?;
                if e.file_type().ctx("list streams", &dir)?.is_dir() {
                    if let Some(name) = e.file_name().to_str() {
                        out.push(name.to_string());
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { op: "list streams", path: dir, source: e }),
    }
    out.sort();
    Ok(out)
}
