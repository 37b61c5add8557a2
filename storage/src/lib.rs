//! gapless's storage engine.
//!
//! Everything gapless keeps goes through this crate: the raw activities in
//! minute segments, the exact ID index that drops duplicates, and the
//! coverage map that says which seconds of activity time are complete.
//! It has no networking and no async runtime in its API: the archiver,
//! `inspect-coverage` and `segment-export` are all plain clients.
//!
//! # The invariant
//! Coverage is recorded only after the data it covers is durable. The types
//! enforce it: [`coverage::CoverageMap::cover`] takes a [`Durable`] proof,
//! and the only way to get one is a commit that has fsynced every frame
//! appended before it.

pub mod activity;
pub mod compliance;
pub mod coverage;
pub mod dict;
pub mod durable;
pub mod error;
pub mod frame;
pub mod id_index;
pub mod io;
pub mod key;
pub mod layout;
pub mod quarantine;
pub mod reader;
pub mod segment;
pub mod store;
pub mod time;

pub use durable::Durable;
pub use error::{Error, Result};
pub use key::{ActivityKind, Key};
pub use time::{Minute, Snowflake};
