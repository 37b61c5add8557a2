//! stream-sim: a Gnip-compatible stream server with ground truth and faults.
//!
//! It speaks `shared/PROTOCOL.md` over real HTTP so that an archiver can be
//! tested without an enterprise contract, knows exactly what it sent (the
//! generator is a pure function of seed and stream time, see [`generator`]),
//! and breaks on command ([`faults`]). It shares no code with the archiver, so
//! it can catch the archiver's mistakes.
//!
//! Modules, one concept each, in layers that depend only downward:
//!
//! - HTTP and connections: [`server`] (accepting, routing, the protocol's
//!   checks in order), `admin` (`/sim/` status and run-time faults), `http`
//!   (responses, refusals, the streaming body, Basic auth), `connection`
//!   (realtime, backfill, max-speed), `recovery`, `out` (the sending half:
//!   gzip, the body channel, faults on bytes); [`maxspeed`] starts a server
//!   in max-speed mode.
//! - Shared state: `state` (streams by account, caches of recent seconds,
//!   the connection rate limit, redundant connections, Recovery job slots,
//!   the fault plan, counters), apart from HTTP.
//! - Data: [`generator`] (scheduling: which activities, when, with which
//!   keys, partitions and latencies), `payload` (their bytes), [`snowflake`]
//!   (IDs that carry their time), [`activity_streams`] (the optional older
//!   format), [`json`] and [`words`] (payload writing), `prepared`
//!   (max-speed content), [`truth`], [`compliant`] (what a compliant export
//!   must contain: the compliance policy applied to the truth), [`faults`], [`protocol`] (requests,
//!   refusals, system lines), [`config`], [`stream`], [`clock`] (stream
//!   time: the project's one clock, `gapless_time::clock::Clock`, and the
//!   API's time formats), [`gzip`], [`rng`] (SplitMix64 and FNV-1a: output never
//!   changes with a crate version).
//!
//! Times and durations in flags, the config file and fault scripts use the
//! project's one grammar, `gapless_time`; the protocol's own parameters keep
//! the API's.

pub mod activity_streams;
pub(crate) mod admin;
pub mod clock;
pub mod compliant;
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
