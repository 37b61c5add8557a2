//! Stream time.
//!
//! Every duration of the protocol (heartbeats, the rate-limit window, backfill,
//! the recovery window and pace) is measured in *stream time*, so that a test
//! or a demo can run hours of stream in minutes:
//!
//! `stream time = start + (now − origin) × speed`
//!
//! The clock itself is the project's one stream clock,
//! [`gapless_time::clock::Clock`] (re-exported here): the archiver uses the
//! same type, so that two processes started apart (the simulator and the
//! archiver) agree on the stream time when given the same three values.
//! [`Clock::system`] is wall time; its `start_ms()` and `origin_unix()` are
//! both 0 (the epoch), so a run that needs "where stream time begins" asks
//! [`run_start_ms`], not `start_ms()`.
//!
//! What stays here is stream-sim's own: [`StreamMs`], and the API's time
//! formats, which are the protocol's and not the project's grammar:
//! [`twitter_date`] (`created_at`), [`api_time`] (RFC 3339, always with
//! milliseconds, as Gnip writes `postedTime` and its messages) and
//! [`parse_api_time`] (a Recovery request's `startTime`/`endTime`: RFC 3339,
//! or `YYYYMMDDhhmm`, which `gapless_time` would read as Unix seconds).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub use gapless_time::clock::{BadSpeed, Clock};

/// Stream time as milliseconds since the Unix epoch.
pub type StreamMs = i64;

/// Where a run's stream time begins: the clock's start, or, for the system
/// clock (whose start is the epoch, meaningless to a run), the stream time
/// now. Max-speed content and fault scripts count from here.
pub fn run_start_ms(clock: &Clock) -> StreamMs {
    if *clock == Clock::system() {
        clock.now_ms()
    } else {
        clock.start_ms()
    }
}

/// Stream milliseconds as the API writes them: RFC 3339 with milliseconds
/// and `Z` (`2016-12-01T22:27:39.000Z`, the fraction even on a whole second).
pub fn api_time(ms: StreamMs) -> String {
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

/// Parses a time parameter of the API: RFC 3339 (with or without a
/// fraction), or `YYYYMMDDhhmm` as Gnip's older endpoints took it.
pub fn parse_api_time(s: &str) -> Option<StreamMs> {
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
    fn formats() {
        assert_eq!(twitter_date(1480631259353), "Thu Dec 01 22:27:39 +0000 2016");
        assert_eq!(api_time(1480631259353), "2016-12-01T22:27:39.353Z");
        assert_eq!(api_time(1480631259000), "2016-12-01T22:27:39.000Z");
        assert_eq!(parse_api_time("2023-07-05T17:09:12.070Z"), Some(1688576952070));
        assert_eq!(parse_api_time("202307051709"), Some(1688576940000));
    }

    #[test]
    fn a_run_starts_at_the_clock_start_or_now_on_the_system_clock() {
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        let scaled = Clock::scaled(Some(start), 60.0, Some(1000.0)).expect("clock");
        assert_eq!(run_start_ms(&scaled), start.timestamp_millis());
        // The system clock's start_ms() is the epoch; a run on it starts now.
        let now = Utc::now().timestamp_millis();
        let system = run_start_ms(&Clock::system());
        assert!((system - now).abs() < 60_000, "{}", api_time(system));
    }
}
