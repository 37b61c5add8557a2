//! Stream time: wall time, or wall time scaled (the demo, the tests and
//! stream-sim run an hour of stream in a minute). The archiver and
//! stream-sim share this one clock, so that both sides of a scaled run
//! agree on what time it is.
//!
//! A scaled clock maps a wall instant `origin` (Unix seconds) to a stream
//! instant `start` and runs `speed` stream seconds per wall second:
//! `now = start + (wall - origin) * speed`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// A stream clock (see the module doc). Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    start_ms: f64,
    speed: f64,
    origin_unix: f64,
}

/// A clock speed that is not a positive number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the clock speed must be a positive number, not {0}")]
pub struct BadSpeed(pub f64);

/// Wall time now, in Unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Clock {
    /// Stream time is wall time.
    pub fn system() -> Clock {
        Clock { start_ms: 0.0, speed: 1.0, origin_unix: 0.0 }
    }

    /// `start` (default: wall time at `origin`), `speed` (> 0), `origin`
    /// (Unix seconds; default: now).
    pub fn scaled(start: Option<DateTime<Utc>>, speed: f64, origin_unix: Option<f64>) -> Result<Clock, BadSpeed> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(BadSpeed(speed));
        }
        let origin = origin_unix.unwrap_or_else(unix_now);
        let start_ms = start.map_or(origin * 1000.0, |s| s.timestamp_millis() as f64);
        Ok(Clock { start_ms, speed, origin_unix: origin })
    }

    /// Stream time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.at_unix(unix_now())
    }

    /// Stream time now, in whole seconds (floor).
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Stream time (ms) at the wall instant `unix` (Unix seconds).
    pub fn at_unix(&self, unix: f64) -> i64 {
        (self.start_ms + (unix - self.origin_unix) * 1000.0 * self.speed).floor() as i64
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The wall instant (Unix seconds) at which stream time is `start`.
    pub fn origin_unix(&self) -> f64 {
        self.origin_unix
    }

    /// The stream time (ms) at the origin.
    pub fn start_ms(&self) -> i64 {
        self.start_ms as i64
    }

    /// The wall duration of a stream duration.
    pub fn wall(&self, stream: Duration) -> Duration {
        stream.div_f64(self.speed)
    }

    /// The wall duration of `stream_ms` of stream time (zero if negative).
    pub fn wall_ms(&self, stream_ms: i64) -> Duration {
        if stream_ms <= 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(stream_ms as f64 / 1000.0 / self.speed)
    }

    /// The wall duration from now until stream time `t` (zero if past).
    pub fn until(&self, t: i64) -> Duration {
        self.wall_ms(t - self.now_ms())
    }
}

#[cfg(feature = "tokio")]
impl Clock {
    /// Sleeps for a stream duration.
    pub async fn sleep(&self, stream: Duration) {
        tokio::time::sleep(self.wall(stream)).await
    }

    /// Sleeps until stream time `t` (ms).
    pub async fn sleep_until(&self, t: i64) {
        let d = self.until(t);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_at_its_speed_from_its_start() {
        let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().expect("time");
        let c = Clock::scaled(Some(start), 60.0, Some(unix_now() - 2.0)).expect("clock");
        let elapsed = c.now_ms() - start.timestamp_millis();
        assert!((119_000..125_000).contains(&elapsed), "{elapsed}");
        assert_eq!(c.wall(Duration::from_secs(60)), Duration::from_secs(1));
        assert_eq!(c.wall_ms(60_000), Duration::from_secs(1));
        assert_eq!(c.wall_ms(-5), Duration::ZERO);
        assert_eq!(c.at_unix(c.origin_unix() + 1.0), start.timestamp_millis() + 60_000);
        assert_eq!(Clock::scaled(None, 0.0, None), Err(BadSpeed(0.0)));
        assert!(Clock::scaled(None, f64::NAN, None).is_err());
    }

    #[test]
    fn the_system_clock_is_wall_time() {
        let c = Clock::system();
        assert!((c.now_ms() as f64 / 1000.0 - unix_now()).abs() < 1.0);
    }
}
