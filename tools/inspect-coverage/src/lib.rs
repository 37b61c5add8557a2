//! `inspect-coverage` as a library: the report schema ([`schema`]), the
//! query ([`query`]), the builder over a coverage map ([`build`]), and the
//! renderers (terminal, SVG). `segment-export` uses it for its manifest,
//! and the archiver can use [`build::build`] to serve `/coverage` in the
//! very schema `inspect-coverage --json` prints.

pub mod admin;
pub mod build;
pub mod open;
pub mod query;
pub mod render;
pub mod schema;
pub mod svg;
pub mod time;
pub mod verify;

/// This crate's version, written into reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
