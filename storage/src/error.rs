//! The storage engine's errors.

use std::path::PathBuf;

/// Errors of the storage engine. Bad *input* (a malformed line) is not an
/// error: it is quarantined. These are failures of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not a gapless segment ({reason})", path.display())]
    NotASegment { path: PathBuf, reason: String },

    #[error("{}: unsupported segment version {version} (this build reads 1)", path.display())]
    UnsupportedVersion { path: PathBuf, version: u8 },

    #[error("frame: {0}")]
    Frame(String),

    #[error("compression: {0}")]
    Compression(std::io::Error),

    #[error("dictionary {id} is missing from {}", dir.display())]
    MissingDictionary { id: u32, dir: PathBuf },

    #[error("coverage store: {0}")]
    Sled(#[from] sled::Error),

    #[error("coverage store is corrupt: {0}")]
    CorruptCoverage(String),

    /// Another process holds the data directory's lock (an archiver runs).
    #[error("{} is in use by another gapless process (it holds {})", root.display(), lock.display())]
    Locked { root: PathBuf, lock: PathBuf },

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { op, path: path.into(), source })
    }
}
