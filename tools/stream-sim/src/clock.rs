//! The scaled clock.
//!
//! Every duration of the protocol (heartbeats, the rate-limit window, backfill,
//! the recovery window and pace) is measured in *stream time*, so that a test
//! or a demo can run hours of stream in minutes:
//!
//! `stream time = start + (now − origin) × speed`
//!
//! `origin` is a Unix time in seconds (fractional allowed) so that two
//! processes started apart (the simulator and the archiver) agree on the
//! stream time when given the same three values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Stream time as milliseconds since the Unix epoch.
pub type StreamMs = i64;

#[derive(Clone, Debug)]
pub struct Clock {
    start_ms: f64,
    speed: f64,
    origin_unix: f64,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Clock {
    /// A clock equal to wall time.
    pub fn real() -> Self {
        let now = unix_now();
        Clock { start_ms: now * 1000.0, speed: 1.0, origin_unix: now }
    }

    /// `start` (None = wall time at `origin`), `speed` (> 0), `origin` (None = now).
    pub fn scaled(start: Option<DateTime<Utc>>, speed: f64, origin_unix: Option<f64>) -> Self {
        let origin = origin_unix.unwrap_or_else(unix_now);
        let start_ms = match start {
            Some(s) => s.timestamp_millis() as f64,
            None => origin * 1000.0,
        };
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        Clock { start_ms, speed, origin_unix: origin }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn origin_unix(&self) -> f64 {
        self.origin_unix
    }

    pub fn start_ms(&self) -> StreamMs {
        self.start_ms as StreamMs
    }

    /// Current stream time in milliseconds.
    pub fn now_ms(&self) -> StreamMs {
        self.at_unix(unix_now())
    }

    /// Stream time at a given Unix wall time.
    pub fn at_unix(&self, unix: f64) -> StreamMs {
        (self.start_ms + (unix - self.origin_unix) * 1000.0 * self.speed).floor() as StreamMs
    }

    /// Wall-clock duration that corresponds to `stream_ms` of stream time.
    pub fn real_duration(&self, stream_ms: i64) -> Duration {
        if stream_ms <= 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(stream_ms as f64 / 1000.0 / self.speed)
    }

    /// Wall-clock duration from now until stream time `t` (zero if past).
    pub fn until(&self, t: StreamMs) -> Duration {
        self.real_duration(t - self.now_ms())
    }

    /// Sleep until stream time `t`.
    pub async fn sleep_until(&self, t: StreamMs) {
        let d = self.until(t);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// Format stream milliseconds as RFC 3339 with milliseconds and `Z`.
pub fn rfc3339(ms: StreamMs) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => String::from("1970-01-01T00:00:00.000Z"),
    }
}

/// Twitter's `created_at` format: `Thu Dec 01 22:27:39 +0000 2016`.
pub fn twitter_date(ms: StreamMs) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%a %b %d %H:%M:%S +0000 %Y").to_string(),
        None => String::from("Thu Jan 01 00:00:00 +0000 1970"),
    }
}

/// Parse an RFC 3339 / ISO 8601 UTC timestamp (also accepts a missing
/// fractional part and `YYYY-MM-DDTHH:MM:SSZ`, and `YYYYMMDDhhmm` as Gnip's
/// older endpoints did).
pub fn parse_time(s: &str) -> Option<StreamMs> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M").ok()?;
        return Some(t.and_utc().timestamp_millis());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_math() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let c = Clock::scaled(Some(start), 60.0, Some(1000.0));
        assert_eq!(c.at_unix(1000.0), start.timestamp_millis());
        assert_eq!(c.at_unix(1001.0), start.timestamp_millis() + 60_000);
        assert_eq!(c.real_duration(60_000), Duration::from_secs(1));
    }

    #[test]
    fn formats() {
        assert_eq!(twitter_date(1480631259353), "Thu Dec 01 22:27:39 +0000 2016");
        assert_eq!(rfc3339(1480631259353), "2016-12-01T22:27:39.353Z");
        assert_eq!(parse_time("2023-07-05T17:09:12.070Z"), Some(1688576952070));
        assert_eq!(parse_time("202307051709"), Some(1688576940000));
    }
}
