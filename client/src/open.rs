//! Where a data directory's coverage comes from: the store itself, opened
//! read-only, or the archiver that holds it.
//!
//! sled lets one process at a time open the coverage store, so while an
//! archiver runs, the tools ask it instead. The archiver writes its admin
//! API's base URL to `DATA/admin.url` once the API listens, and removes it
//! on a clean stop ([`gapless_storage::layout::admin_url_path`]). So
//! [`locate`]: the store if it opens; else, while it is locked, the URL in
//! that file; else a clear error saying that an archiver runs and how to
//! reach it (`--admin URL`). The file is trusted only while the store is
//! locked: one left behind by an archiver that was killed is never read
//! when the store opens, and a URL that does not answer is reported as
//! such, never taken for an empty archive.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gapless_report::query::Query;
use gapless_report::schema::Report;
use gapless_storage::coverage::CoverageMap;
use gapless_storage::layout;

use crate::Error;

/// How long a locked store without `admin.url` is retried before the
/// archiver is reported unreachable: sled lets go of its lock a moment
/// after a process closes it (background threads), so a store just closed
/// by an exiting archiver is not "in use"; and an archiver that has just
/// started writes `admin.url` a moment after it opened the store.
pub const LOCK_RETRY: Duration = Duration::from_millis(2500);

/// Where the coverage comes from.
pub enum Source {
    /// The store, opened read-only by this process.
    Store(CoverageMap),
    /// The running archiver's admin API.
    Archiver(Archiver),
}

/// A running archiver to ask.
#[derive(Clone, Debug)]
pub struct Archiver {
    /// Its admin API's base URL.
    pub url: String,
    /// The data directory whose `admin.url` named it (`None`: `--admin`).
    pub found_in: Option<PathBuf>,
}

impl Archiver {
    /// The report of `q`; `server_window`: leave the window to the server.
    pub fn report(&self, q: &Query, server_window: bool) -> Result<Report, Error> {
        let got = if server_window {
            crate::admin::fetch_report_server_window(&self.url, q)
        } else {
            crate::admin::fetch_report(&self.url, q)
        };
        match (got, &self.found_in) {
            (Err(Error::NoAnswer { url, source }), Some(data)) => Err(Error::ArchiverUnreachable {
                data: data.clone(),
                why: format!(
                    "its {} says its admin API listens at {}, but nothing answers at {url} ({source})",
                    layout::admin_url_path(data).display(),
                    self.url
                ),
            }),
            (other, _) => other,
        }
    }
}

impl Source {
    /// The report of `q`, built here (`source: "store"`, `version` this
    /// tool's) or by the archiver (`server_window`: the archiver picks the
    /// window, by its own clock).
    pub fn report(&self, q: &Query, server_window: bool, version: &str) -> Result<Report, Error> {
        match self {
            Source::Store(map) => Ok(gapless_report::build::build(map, q, "store", version)?),
            Source::Archiver(a) => a.report(q, server_window),
        }
    }
}

/// The store of `data` if it opens, else the archiver holding it (see the
/// module doc).
pub fn locate(data: &Path) -> Result<Source, Error> {
    let start = Instant::now();
    loop {
        match open_once(data) {
            Ok(map) => return Ok(Source::Store(map)),
            Err(Error::Storage(gapless_storage::Error::CoverageLocked { .. })) => {
                if let Some(url) = admin_url(data)? {
                    return Ok(Source::Archiver(Archiver { url, found_in: Some(data.to_path_buf()) }));
                }
                if start.elapsed() >= LOCK_RETRY {
                    return Err(Error::ArchiverUnreachable {
                        data: data.to_path_buf(),
                        why: format!(
                            "has not said where its admin API listens (no {}: is `admin` set in its config?)",
                            layout::admin_url_path(data).display()
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens `DATA/coverage` read-only, without creating anything; a locked
/// store is retried for [`LOCK_RETRY`], then is
/// `Error::Storage(CoverageLocked)`.
pub fn open_coverage(data: &Path) -> Result<CoverageMap, Error> {
    let start = Instant::now();
    loop {
        match open_once(data) {
            Err(Error::Storage(gapless_storage::Error::CoverageLocked { .. })) if start.elapsed() < LOCK_RETRY => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

fn open_once(data: &Path) -> Result<CoverageMap, Error> {
    if !data.is_dir() {
        return Err(Error::NoDataDir(data.to_path_buf()));
    }
    match CoverageMap::open_existing(&layout::coverage_dir(data)) {
        Ok(m) => Ok(m),
        Err(gapless_storage::Error::NotFound { path, .. }) => {
            Err(Error::NotAnArchive { data: data.to_path_buf(), store: path })
        }
        Err(e) => Err(e.into()),
    }
}

/// The URL in `DATA/admin.url` (its first line), if there is one.
pub fn admin_url(data: &Path) -> Result<Option<String>, Error> {
    let path = layout::admin_url_path(data);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().next().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::ArchiverUnreachable {
            data: data.to_path_buf(),
            why: format!("its {} cannot be read ({e})", path.display()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_url_is_the_first_line_or_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(admin_url(dir.path()).ok(), Some(None));
        std::fs::write(layout::admin_url_path(dir.path()), "http://127.0.0.1:9477\n").expect("write");
        assert_eq!(admin_url(dir.path()).ok(), Some(Some("http://127.0.0.1:9477".to_string())));
        std::fs::write(layout::admin_url_path(dir.path()), "\n").expect("write");
        assert_eq!(admin_url(dir.path()).ok(), Some(None));
    }

    #[test]
    fn no_directory_and_no_store_are_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(locate(&dir.path().join("nope")), Err(Error::NoDataDir(_))));
        assert!(matches!(locate(dir.path()), Err(Error::NotAnArchive { .. })));
    }
}
