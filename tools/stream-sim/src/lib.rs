//! stream-sim: a Gnip-compatible stream server with ground truth and faults.
//!
//! It speaks `shared/PROTOCOL.md` over real HTTP so that an archiver can be
//! tested without an enterprise contract, knows exactly what it sent (the
//! generator is a pure function of seed and stream time, see [`generator`]),
//! and breaks on command ([`faults`]). It shares no code with the archiver, so
//! it can catch the archiver's mistakes.
//!
//! Modules, one concept each: [`clock`] (scaled stream time), [`generator`]
//! (deterministic activities), [`protocol`] (requests, refusals, system
//! lines), [`server`] (HTTP and routing), `connection` (realtime and
//! backfill), `recovery`, [`faults`], [`truth`], [`gzip`], [`maxspeed`]
//! (benchmark serving), [`activity_streams`] (the optional older format),
//! [`rng`] (SplitMix64 and FNV-1a: output never changes with a crate
//! version), [`json`] and [`words`] (payload writing).

pub mod activity_streams;
pub(crate) mod admin;
pub mod clock;
pub mod config;
pub(crate) mod connection;
pub mod faults;
pub mod generator;
pub mod gzip;
mod http;
pub mod json;
pub mod maxspeed;
mod out;
mod payload;
mod prepared;
pub mod protocol;
pub(crate) mod recovery;
pub mod rng;
pub mod server;
pub mod snowflake;
pub(crate) mod state;
pub mod stream;
pub mod truth;
pub mod words;

pub use clock::Clock;
pub use config::SimConfig;
pub use generator::{Activity, Generator, Key};
pub use server::Server;
pub use stream::{StreamKind, StreamSpec};
