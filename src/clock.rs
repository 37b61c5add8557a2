//! The archiver's clock: stream time, real or scaled.
//!
//! Every duration of the protocol and of the archiver's policies
//! (heartbeats, liveness bounds, backoff, the rate-limit window, backfill,
//! the recovery window) is in *stream time*. With the system clock that is
//! wall time; for tests and the demo a scaled clock runs hours of stream in
//! minutes: `stream time = start + (now − origin) × speed`, with the same
//! three flags as stream-sim, so that two processes started apart agree.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start_ms: f64,
    speed: f64,
    origin_unix: f64,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Clock {
    /// Stream time is wall time.
    pub fn system() -> Clock {
        Clock { start_ms: 0.0, speed: 1.0, origin_unix: 0.0 }
    }

    /// `start` (default: wall time at `origin`), `speed` (> 0), `origin`
    /// (Unix seconds; default: now).
    pub fn scaled(start: Option<DateTime<Utc>>, speed: f64, origin_unix: Option<f64>) -> anyhow::Result<Clock> {
        anyhow::ensure!(speed.is_finite() && speed > 0.0, "--clock-speed must be a positive number, not {speed}");
        let origin = origin_unix.unwrap_or_else(unix_now);
        let start_ms = start.map_or(origin * 1000.0, |s| s.timestamp_millis() as f64);
        Ok(Clock { start_ms, speed, origin_unix: origin })
    }

    /// Stream time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        (self.start_ms + (unix_now() - self.origin_unix) * 1000.0 * self.speed) as i64
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The wall duration of a stream duration.
    pub fn wall(&self, stream: Duration) -> Duration {
        stream.div_f64(self.speed)
    }

    /// Sleeps for a stream duration.
    pub async fn sleep(&self, stream: Duration) {
        tokio::time::sleep(self.wall(stream)).await
    }
}

/// Clock flags shared by every command that runs streams.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClockArgs {
    /// Stream time at the origin (RFC 3339); default: wall time at the origin.
    #[arg(long)]
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_at_its_speed_from_its_start() {
        let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let c = Clock::scaled(Some(start), 60.0, Some(unix_now() - 2.0)).unwrap();
        let elapsed = c.now_ms() - start.timestamp_millis();
        assert!((119_000..125_000).contains(&elapsed), "{elapsed}");
        assert_eq!(c.wall(Duration::from_secs(60)), Duration::from_secs(1));
        assert!(Clock::scaled(None, 0.0, None).is_err());
    }

    #[test]
    fn the_system_clock_is_wall_time() {
        let c = Clock::system();
        assert!((c.now_ms() as f64 / 1000.0 - unix_now()).abs() < 1.0);
    }
}
