//! gapless: the archiver of X/Twitter enterprise streams.
//!
//! The binary is thin; this library holds the commands. Storage lives in
//! the `gapless-storage` crate.

pub mod cli;
pub mod import;
