//! gapless: the archiver of X/Twitter enterprise streams.
//!
//! The binary is thin; this library holds the commands. Storage lives in
//! the `gapless-storage` crate; this crate connects, keeps connections
//! alive, and repairs holes.

pub mod admin;
pub mod archiver;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod connection;
pub mod continuity;
pub mod credentials;
#[cfg(feature = "demo")]
pub mod demo;
pub mod import;
pub mod limiter;
pub mod lines;
pub mod metrics;
pub mod planner;
pub mod purge;
pub mod recovery;
pub mod upload;
pub mod verify;
pub mod writer;
