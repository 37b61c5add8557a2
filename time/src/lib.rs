//! The one grammar of times and durations across gapless: the archiver's
//! config, every command line, stream-sim's fault scripts and the reports
//! all parse and print through this crate, so `1h30m` means the same
//! everywhere.
//!
//! # Durations
//! [humantime]'s grammar: a sum of numbers with units, with or without
//! spaces (`250ms`, `45s`, `30m`, `1h30m`, `1h 30m`, `2d`, `1w`); units
//! `ms`, `s`, `m`/`min`, `h`, `d`, `w` (and humantime's long names). A bare
//! whole number is seconds (`90`), as is a whole number in TOML
//! (`duration = 90`). A decimal fraction is allowed (`1.5m` is 90 s); a
//! negative is not.
//!
//! # Times (all UTC)
//! RFC 3339 (`2017-07-18T23:25:04Z`, `2017-07-18T23:25:04.5+02:00`),
//! `2017-07-18T23:25[:04][Z]`, `2017-07-18T23[Z]`, `2017-07-18`, Unix
//! seconds (`@1500420304`, or a bare number of at least 9 digits), `now`,
//! and a duration before or after it: `now-6h` (or `-6h`), `now+1h`.
//!
//! # Stream time
//! [`clock::Clock`]: wall time, or wall time scaled (demo, tests,
//! stream-sim), shared by the archiver and the simulator.
//!
//! # Printing
//! [`rfc3339`] and [`rfc3339_ms`] for times, [`human`] for durations
//! (`45s`, `26m`, `1h 05m`, `4d 11h`: two units at most, for people).

pub mod clock;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// A time or duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("duration {input:?}: {reason} (e.g. 250ms, 45s, 30m, 1h30m, 2d, or whole seconds)")]
    Duration { input: String, reason: String },
    #[error(
        "time {input:?}: expected RFC 3339 (2017-07-18T23:25:00Z), 2017-07-18T23:25, 2017-07-18, \
         @UNIXSECONDS, now, now-6h or now+1h"
    )]
    Time { input: String },
    #[error("time {input:?}: out of range")]
    OutOfRange { input: String },
}

/// Parses a duration (see the crate doc).
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let t = s.trim();
    let bad = |reason: &str| Error::Duration { input: s.to_string(), reason: reason.to_string() };
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map(Duration::from_secs).map_err(|_| bad("too long"));
    }
    if t.starts_with('-') {
        return Err(bad("negative"));
    }
    humantime::parse_duration(t).map_err(|e| bad(&e.to_string()))
}

/// Parses a duration into whole seconds (rounded down), as `i64`.
pub fn parse_duration_secs(s: &str) -> Result<i64, Error> {
    let d = parse_duration(s)?;
    i64::try_from(d.as_secs()).map_err(|_| Error::Duration { input: s.to_string(), reason: "too long".into() })
}

/// Parses a point in time into Unix milliseconds; `now_ms` resolves `now`.
pub fn parse_time_ms(s: &str, now_ms: i64) -> Result<i64, Error> {
    let t = s.trim();
    let bad = || Error::Time { input: s.to_string() };
    let range = || Error::OutOfRange { input: s.to_string() };
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    let rel = t.strip_prefix("now").unwrap_or(t);
    let offset = |d: &str| -> Result<i64, Error> {
        let ms = parse_duration(d)?.as_millis();
        i64::try_from(ms).map_err(|_| range())
    };
    if let Some(d) = rel.strip_prefix('-').filter(|d| d.chars().any(|c| c.is_ascii_alphabetic())) {
        return now_ms.checked_sub(offset(d)?).ok_or_else(range);
    }
    if let Some(d) = rel.strip_prefix('+') {
        return now_ms.checked_add(offset(d)?).ok_or_else(range);
    }
    if rel.len() != t.len() {
        return Err(bad());
    }
    if let Some(n) = t.strip_prefix('@') {
        let secs: i64 = n.parse().map_err(|_| bad())?;
        return secs.checked_mul(1000).ok_or_else(range);
    }
    if t.len() >= 9 && t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t.parse().map_err(|_| range())?;
        return secs.checked_mul(1000).ok_or_else(range);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    let naive = t.trim_end_matches(['Z', 'z']);
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(naive, f) {
            return Ok(d.and_utc().timestamp_millis());
        }
    }
    if let Some((day, hour)) = naive.split_once('T') {
        if let (Ok(d), Ok(h)) = (NaiveDate::parse_from_str(day, "%Y-%m-%d"), hour.parse::<u32>()) {
            if let Some(d) = d.and_hms_opt(h, 0, 0) {
                return Ok(d.and_utc().timestamp_millis());
            }
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(naive, "%Y-%m-%d") {
        if let Some(d) = d.and_hms_opt(0, 0, 0) {
            return Ok(d.and_utc().timestamp_millis());
        }
    }
    Err(bad())
}

/// Parses a point in time (the grammar above; `now` is the wall clock's)
/// into a UTC date-time: the form a command-line flag takes
/// (`#[arg(value_parser = gapless_time::parse_time)]`).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, Error> {
    let ms = parse_time_ms(s, Utc::now().timestamp_millis())?;
    DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| Error::OutOfRange { input: s.to_string() })
}

/// Unix seconds as `2017-07-18T23:25:04Z`.
pub fn rfc3339(secs: i64) -> String {
    match DateTime::<Utc>::from_timestamp(secs, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{secs}"),
    }
}

/// Unix milliseconds as `2017-07-18T23:25:04.123Z` (without the fraction
/// on a whole second).
pub fn rfc3339_ms(ms: i64) -> String {
    if ms.rem_euclid(1000) == 0 {
        return rfc3339(ms.div_euclid(1000));
    }
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("@{ms}ms"),
    }
}

/// A duration for people: `45s`, `26m`, `1h 05m`, `4d 11h`.
pub fn human(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let out = if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{}m {:02}s", s / 60, s % 60)
        }
    } else if s < 86_400 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600)
    };
    if secs < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A duration in a config file or fault script: a string in the grammar
/// above, or a whole number of seconds. Serialized as humantime prints it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Dur {
        Dur(d)
    }
}

impl std::str::FromStr for Dur {
    type Err = Error;
    fn from_str(s: &str) -> Result<Dur, Error> {
        parse_duration(s).map(Dur)
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "a duration: a string such as \"250ms\", \"45s\", \"1h30m\", or a whole number of seconds"
        )]
        enum Spec {
            Secs(u64),
            Text(String),
        }
        match Spec::deserialize(d)? {
            Spec::Secs(n) => Ok(Dur(Duration::from_secs(n))),
            Spec::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_millis() as i64);
        assert_eq!(secs("1h30m"), Ok(5_400_000));
        assert_eq!(secs("1h 30m"), Ok(5_400_000));
        assert_eq!(secs("250ms"), Ok(250));
        assert_eq!(secs("5d"), Ok(432_000_000));
        assert_eq!(secs("1w"), Ok(604_800_000));
        assert_eq!(secs("120"), Ok(120_000));
        assert_eq!(secs(" 45s "), Ok(45_000));
        assert_eq!(secs("1.5m"), Ok(90_000));
        for bad in ["", "5x", "-5m", "m", "s5"] {
            assert!(matches!(parse_duration(bad), Err(Error::Duration { .. })), "{bad:?}");
        }
        assert_eq!(parse_duration_secs("2m"), Ok(120));
    }

    #[test]
    fn times_parse() {
        let now = 1_500_420_304_000;
        assert_eq!(parse_time_ms("2017-07-18T23:25:04Z", 0), Ok(now));
        assert_eq!(parse_time_ms("2017-07-19T01:25:04+02:00", 0), Ok(now));
        assert_eq!(parse_time_ms("2017-07-18T23:25", 0), Ok(now - 4000));
        assert_eq!(parse_time_ms("2017-07-18T23Z", 0), Ok(now - 25 * 60_000 - 4000));
        assert_eq!(parse_time_ms("2017-07-19", 0), Ok(1_500_422_400_000));
        assert_eq!(parse_time_ms("@1500420304", 0), Ok(now));
        assert_eq!(parse_time_ms("1500420304", 0), Ok(now));
        assert_eq!(parse_time_ms("now", now), Ok(now));
        assert_eq!(parse_time_ms("now-1h", now), Ok(now - 3_600_000));
        assert_eq!(parse_time_ms("-90m", now), Ok(now - 5_400_000));
        assert_eq!(parse_time_ms("now+1h30m", now), Ok(now + 5_400_000));
        assert!(matches!(parse_time_ms("yesterday", now), Err(Error::Time { .. })));
        assert!(matches!(parse_time_ms("nowhere", now), Err(Error::Time { .. })));
        assert!(matches!(parse_time_ms("@99999999999999999", now), Err(Error::OutOfRange { .. })));
        assert_eq!(parse_time("2017-07-18T23:25:04Z").map(|t| t.timestamp_millis()), Ok(now));
        let ago = parse_time("now-1h").expect("relative").timestamp_millis();
        assert!((Utc::now().timestamp_millis() - 3_600_000 - ago).abs() < 5_000);
    }

    #[test]
    fn durations_print() {
        assert_eq!(human(45), "45s");
        assert_eq!(human(26 * 60), "26m");
        assert_eq!(human(4 * 86_400 + 11 * 3600 + 5), "4d 11h");
        assert_eq!(human(-3900), "-1h 05m");
        assert_eq!(Dur(Duration::from_secs(5400)).to_string(), "1h 30m");
        assert_eq!(rfc3339_ms(1_500_420_304_123), "2017-07-18T23:25:04.123Z");
    }

    #[test]
    fn durations_deserialize_from_text_or_seconds() {
        let d: Vec<Dur> = serde_json::from_str(r#"["1h30m", 90, "250ms"]"#).expect("json");
        assert_eq!(
            d,
            vec![Dur(Duration::from_secs(5400)), Dur(Duration::from_secs(90)), Dur(Duration::from_millis(250))]
        );
        assert!(serde_json::from_str::<Dur>(r#""5 parsecs""#).is_err());
        assert!(serde_json::from_str::<Dur>("-3").is_err());
        let back: Dur = serde_json::from_str(&serde_json::to_string(&d[0]).expect("ser")).expect("de");
        assert_eq!(back, d[0]);
    }
}
