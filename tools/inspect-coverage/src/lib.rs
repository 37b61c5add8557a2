//! `inspect-coverage` as a library: the renderers (terminal, SVG) and the
//! segment check, over the report of the `gapless-report` crate. Opening
//! the store or finding the running archiver, the admin client and the
//! exit-status table are `gapless-client`'s, shared with `segment-export`.

pub mod render;
pub mod svg;
pub mod verify;

/// This crate's version, written into reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
