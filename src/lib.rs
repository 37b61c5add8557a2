//! gapless: the archiver of X/Twitter enterprise streams.
//!
//! The binary is thin; this library holds the commands. Storage lives in
//! the `gapless-storage` crate; this crate connects, keeps connections
//! alive, and repairs holes.

pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod import;
pub mod limiter;
pub mod lines;
