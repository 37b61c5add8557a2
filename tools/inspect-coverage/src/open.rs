//! Opening a data directory's coverage map read-only, and telling clearly
//! when the archiver holds it.

use std::path::{Path, PathBuf};

use gapless_storage::coverage::CoverageMap;

/// Why the coverage map could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (the running archiver) has the sled store open.
    Locked(PathBuf),
    /// No data directory or no coverage store there.
    Missing(String),
    Other(gapless_storage::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked(p) => write!(
                f,
                "the coverage store {} is in use by another process (the archiver is running); \
                 sled allows one process at a time: ask the archiver instead with --admin URL \
                 (its admin address, e.g. --admin http://127.0.0.1:8081)",
                p.display()
            ),
            OpenError::Missing(m) => write!(f, "{m}"),
            OpenError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// How long a locked store is retried before it is reported locked: sled
/// lets go of its lock a moment after a process closes it (background
/// threads), so a store just closed by an exiting archiver is not "in use".
pub const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(2500);

/// Opens `DATA/coverage` without creating anything.
pub fn open_coverage(data: &Path) -> Result<CoverageMap, OpenError> {
    let start = std::time::Instant::now();
    loop {
        match open_once(data) {
            Err(OpenError::Locked(_)) if start.elapsed() < LOCK_RETRY => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

fn open_once(data: &Path) -> Result<CoverageMap, OpenError> {
    if !data.is_dir() {
        return Err(OpenError::Missing(format!("{}: no such data directory", data.display())));
    }
    let path = data.join("coverage");
    match CoverageMap::open_existing(&path) {
        Ok(m) => Ok(m),
        Err(e @ gapless_storage::Error::NotFound { .. }) => {
            Err(OpenError::Missing(format!("{e} (is {} a gapless data directory?)", data.display())))
        }
        Err(gapless_storage::Error::CoverageLocked { .. }) => Err(OpenError::Locked(path)),
        Err(e) => Err(OpenError::Other(e)),
    }
}

/// The newest minute that has a segment in any stream of `data` (from the
/// directory names alone), in Unix seconds of its end.
pub fn newest_segment_end(data: &Path) -> Option<i64> {
    let mut best: Option<i64> = None;
    let streams = std::fs::read_dir(data.join("streams")).ok()?;
    for s in streams.flatten() {
        let Ok(days) = std::fs::read_dir(s.path().join("segments")) else { continue };
        let mut days: Vec<String> =
            days.flatten().filter_map(|d| d.file_name().into_string().ok()).filter(|n| n.len() == 10).collect();
        days.sort();
        for day in days.iter().rev() {
            let Ok(files) = std::fs::read_dir(s.path().join("segments").join(day)) else { continue };
            let newest =
                files.flatten().filter_map(|f| f.file_name().into_string().ok()).filter(|n| n.ends_with(".seg")).max();
            if let Some(n) = newest {
                let stem = n.trim_end_matches(".seg");
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(stem, "%Y%m%dT%H%MZ") {
                    let end = t.and_utc().timestamp() + 60;
                    best = Some(best.map_or(end, |b: i64| b.max(end)));
                }
                break;
            }
        }
    }
    best
}
