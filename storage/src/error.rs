//! The storage engine's errors.

use std::path::PathBuf;

/// Errors of the storage engine. Bad *input* (a malformed line) is not an
/// error: it is quarantined. These are failures of the store itself, and
/// misuse of its API. Callers match on variants, never on the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

    /// Another process has the coverage store open (sled's file lock):
    /// an archiver runs on this data directory.
    #[error("{}: the coverage store is open in another process (an archiver runs here)", path.display())]
    CoverageLocked { path: PathBuf },

    /// Something that must exist does not (opened without creating).
    #[error("{}: no {what} here", path.display())]
    NotFound { what: &'static str, path: PathBuf },

    /// The stream was never registered ([`crate::coverage::CoverageMap::set_partitions`]).
    #[error("unknown stream {0:?}")]
    UnknownStream(String),

    /// A stream label that cannot name a directory.
    #[error("stream label {0:?}: use 1 to 64 letters, digits, '-', '_' and '.', not starting with '.'")]
    BadLabel(String),

    /// A partition outside `1..=partitions`.
    #[error("stream {stream}: partition {partition} outside 1..={partitions}")]
    BadPartition { stream: String, partition: u32, partitions: u32 },

    /// A time or range outside what the store can record.
    #[error("{0}")]
    OutOfRange(String),

    /// A durability proof used for another stream than its own.
    #[error("cover {stream}: the proof is for stream {proof:?}")]
    WrongProof { stream: String, proof: String },

    /// A record that breaks its own rules (e.g. a job resuming outside its range).
    #[error("{0}")]
    BadRecord(String),

    /// The minute's segment was evicted to the bucket (`[archive]`): read
    /// the archive from the bucket (`--data s3://...`).
    #[error("{}: evicted: this minute's data is in the bucket only (read the archive with --data s3://BUCKET/PREFIX)", path.display())]
    Evicted { path: PathBuf },
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
