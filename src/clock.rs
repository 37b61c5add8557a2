//! The archiver's clock: stream time, real or scaled.
//!
//! Every duration of the protocol and of the archiver's policies
//! (heartbeats, liveness bounds, backoff, the rate-limit window, backfill,
//! the recovery window) is in *stream time*. With the system clock that is
//! wall time; for tests and the demo a scaled clock runs hours of stream in
//! minutes: `stream time = start + (now − origin) × speed`, with the same
//! three flags as stream-sim, so that two processes started apart agree.

use chrono::{DateTime, Utc};

/// The one stream clock of the project (shared with stream-sim).
pub use gapless_time::clock::Clock;

/// Clock flags shared by every command that runs streams.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClockArgs {
    /// Stream time at the origin (RFC 3339, or any time of the project's
    /// grammar); default: wall time at the origin.
    #[arg(long, value_parser = gapless_time::parse_time)]
    pub clock_start: Option<DateTime<Utc>>,
    /// Stream seconds per wall second.
    #[arg(long)]
    pub clock_speed: Option<f64>,
    /// The wall instant (Unix seconds) at which stream time is
    /// `--clock-start`; default: when the process starts.
    #[arg(long)]
    pub clock_origin: Option<f64>,
}

impl ClockArgs {
    pub fn clock(&self) -> anyhow::Result<Clock> {
        if self.clock_start.is_none() && self.clock_speed.is_none() && self.clock_origin.is_none() {
            return Ok(Clock::system());
        }
        Clock::scaled(self.clock_start, self.clock_speed.unwrap_or(1.0), self.clock_origin)
            .map_err(|e| anyhow::anyhow!("--clock-speed: {e}"))
    }
}
