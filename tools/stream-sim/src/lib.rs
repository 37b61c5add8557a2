//! stream-sim: a Gnip-compatible stream server with ground truth and faults.
//!
//! It speaks `shared/PROTOCOL.md` over real HTTP so that an archiver can be
//! tested without an enterprise contract, knows exactly what it sent (the
//! generator is a pure function of seed and stream time, see [`generator`]),
//! and breaks on command ([`faults`]). It shares no code with the archiver, so
//! it can catch the archiver's mistakes.

pub mod clock;
pub mod faults;
pub mod gzip;
pub mod generator;
pub mod json;
pub mod protocol;
pub mod rng;
pub mod stream;
pub mod truth;
pub mod words;
