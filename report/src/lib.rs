//! The coverage report of a gapless archive, schema `gapless.coverage/1`.
//!
//! One document, three producers and readers: `inspect-coverage --json`
//! builds it from the store, the archiver's admin API serves it at
//! `/coverage` while it holds the store, and `segment-export` writes its
//! minutes into every manifest. Keeping it in its own crate keeps the
//! dependencies pointing inward: the archiver and the tools depend on it,
//! it depends on the storage engine and the time grammar (`gapless-time`)
//! only.

pub mod build;
pub mod query;
pub mod schema;

/// This crate's version, written into reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a report could not be built, or a query not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be read, or the stream is not in it
    /// (`gapless_storage::Error::UnknownStream`).
    #[error(transparent)]
    Storage(#[from] gapless_storage::Error),
    /// Reading one stream's coverage failed.
    #[error("stream {stream:?}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: gapless_storage::Error,
    },
    /// A `/coverage` query string that does not parse.
    #[error("{0}")]
    Query(String),
}
