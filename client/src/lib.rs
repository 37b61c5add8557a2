//! What gapless's tools (`inspect-coverage`, `segment-export`) share, so
//! that neither depends on the other:
//!
//! - [`open`]: where a data directory's coverage comes from. The tools open
//!   the coverage store read-only; while an archiver holds it (sled allows
//!   one process at a time), they ask that archiver's admin API, at the URL
//!   it wrote to `DATA/admin.url` ([`gapless_storage::layout::admin_url_path`])
//!   or the one given with `--admin`.
//! - [`admin`]: the admin API client (`GET /coverage`), over `ureq`.
//! - [`segments`]: what the tools need to know of segment files, through
//!   [`gapless_storage::layout`] (the one module that knows paths).
//! - [`exit`]: the one exit-status table of the tools, and how an error
//!   chain maps onto it.
//! - [`bucket`]: an archive in a bucket (`--data s3://BUCKET/PREFIX`),
//!   fetched into a temporary data directory that the tools open as any
//!   other.
//!
//! The report itself (schema, query, build) is `gapless-report`, shared
//! with the archiver; times and durations are `gapless-time`'s grammar.
//! Nothing here is async (a bucket's requests run on a runtime of their
//! own) or writes to the data directory.

pub mod admin;
pub mod bucket;
pub mod exit;
pub mod open;
pub mod segments;

use std::path::PathBuf;

/// Why the tools could not get at an archive's coverage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--data` names no directory.
    #[error("{}: no such data directory", .0.display())]
    NoDataDir(PathBuf),
    /// A directory, but no coverage store in it.
    #[error("{}: no coverage store here (is {} a gapless data directory?)", .store.display(), .data.display())]
    NotAnArchive { data: PathBuf, store: PathBuf },
    /// The archive holds no stream that was asked for.
    #[error("{0}")]
    NoStream(String),
    /// An archiver holds the store and cannot be asked instead.
    #[error(
        "an archiver is running on {} (it holds the coverage store) and {why}; \
         ask it with --admin URL (its admin API address, e.g. --admin http://127.0.0.1:9477)",
        .data.display()
    )]
    ArchiverUnreachable { data: PathBuf, why: String },
    /// Nothing answered at the admin URL.
    #[error("the archiver's admin API at {url} does not answer: {source}")]
    NoAnswer {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The admin API answered with an error status.
    #[error("{url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    /// The admin API answered something that is not a report.
    #[error("{url}: {what}")]
    NotAReport { url: String, what: String },
    /// An `--admin` URL this client cannot use.
    #[error("--admin {0}: only http:// URLs are supported (the admin API listens on loopback)")]
    BadUrl(String),
    /// Reading the store, or building the report from it.
    #[error(transparent)]
    Report(#[from] gapless_report::Error),
    #[error(transparent)]
    Storage(#[from] gapless_storage::Error),
    /// Minutes of the range were evicted from the data directory to the
    /// bucket (`[archive] local_max`): read locally they would look empty.
    #[error(
        "{} minutes of stream {stream} in the range are in the bucket only (evicted from {}; first: {first}): \
         nothing exported; read them from the bucket with --data s3://BUCKET/PREFIX (the archiver's [archive] url)",
        .minutes,
        .data.display()
    )]
    Evicted { data: PathBuf, stream: String, minutes: usize, first: String },
    /// `--data s3://...` that is not a bucket URL the tools can use.
    #[error("--data {url}: {why}")]
    BadBucketUrl { url: String, why: String },
    /// Reading the archive from its bucket. `detail` says which request or
    /// object, and for an answer of the server its S3 error code and
    /// message, never its whole body ([`bucket::describe`]); no message
    /// carries a credential.
    #[error("cannot read the archive in {url}: {detail}")]
    Bucket { url: String, detail: String, error: Box<gapless_bucket::Error> },
    /// The runtime for the bucket's requests could not start.
    #[error("cannot start the runtime for the bucket's requests")]
    Runtime(#[source] std::io::Error),
}

/// Wall-clock now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
