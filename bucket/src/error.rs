//! Errors of the bucket, by operation. Matched by variant; messages name
//! the object, never a credential.

use std::path::PathBuf;

/// What went wrong with the bucket or the copy of the archive in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The archive URL is not one gapless can use (`s3://BUCKET[/PREFIX]`).
    #[error("bad archive URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    /// The bucket could not be configured (credentials, endpoint, region).
    #[error("cannot use the bucket {url}: {source}")]
    Configure { url: String, source: object_store::Error },
    /// A request to the bucket failed (it may be away: retried by callers).
    #[error("{op} {key}: {source}")]
    Request { op: &'static str, key: String, source: object_store::Error },
    /// An object read back is not what was written (size or checksum).
    #[error("{key}: uploaded object does not verify: {why}")]
    Verify { key: String, why: String },
    /// A manifest that does not parse or check.
    #[error("manifest {key}: {why}")]
    BadManifest { key: String, why: String },
    /// A segment object's bytes do not match its manifest's checksum.
    #[error("{key}: {bytes} bytes with CRC32C {got:08x}, the manifest says {expected:08x}")]
    Checksum { key: String, bytes: u64, expected: u32, got: u32 },
    /// Another archiver writes this site's copy (two archivers were given
    /// the same `site`): nothing of this one is published there.
    #[error(
        "site {site:?} of stream {stream} is written by another archiver ({writer}); give each archiver its own `site`"
    )]
    SiteTaken { site: String, stream: String, writer: String },
    /// The local archive (data directory, coverage map).
    #[error(transparent)]
    Storage(#[from] gapless_storage::Error),
    /// A local file.
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn request(op: &'static str, key: &object_store::path::Path) -> impl FnOnce(object_store::Error) -> Error {
    let key = key.to_string();
    move |source| Error::Request { op, key, source }
}
