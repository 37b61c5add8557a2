//! The coverage report of a gapless archive, schema `gapless.coverage/1`.
//!
//! One document, three producers and readers: `inspect-coverage --json`
//! builds it from the store, the archiver's admin API serves it at
//! `/coverage` while it holds the store, and `segment-export` writes its
//! minutes into every manifest. Keeping it in its own crate keeps the
//! dependencies pointing inward: the archiver and the tools depend on it,
//! it depends on the storage engine only.

pub mod build;
pub mod query;
pub mod schema;
pub mod time;

/// This crate's version, written into reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
