//! `inspect-coverage` as a library: the renderers (terminal, SVG), the
//! admin client and the segment check, over the report of the
//! `gapless-report` crate (re-exported here as [`schema`], [`query`],
//! [`build`], [`time`]).

pub use gapless_report::{build, query, schema, time};

pub mod admin;
pub mod open;
pub mod render;
pub mod svg;
pub mod verify;

/// This crate's version, written into reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
