//! Times and durations on the command line, and how they are printed.
//!
//! Accepted times (all UTC): RFC 3339 (`2017-07-18T23:25:04Z`,
//! `2017-07-18T23:25:04+02:00`), `2017-07-18T23:25[Z]`, `2017-07-18T23[Z]`,
//! `2017-07-18`, Unix seconds (`@1500420304` or `1500420304`), `now`, and
//! `now-6h` / `-6h` (a duration before now), `now+1h`.
//!
//! Durations: `90` (seconds), `45s`, `30m`, `6h`, `5d`, `1w`, and sums
//! such as `1h30m`.

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses a duration into seconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty duration");
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => bail!("duration {s:?}: unknown unit {c:?} (use s, m, h, d, w)"),
        };
        let n: i64 = num.parse().map_err(|_| anyhow!("duration {s:?}: a number must come before {c:?}"))?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(|| anyhow!("duration {s:?} is too long"))?)
            .ok_or_else(|| anyhow!("duration {s:?} is too long"))?;
        num.clear();
    }
    if !num.is_empty() {
        bail!("duration {s:?}: a unit must follow {num:?} (s, m, h, d, w)");
    }
    Ok(total)
}

/// Parses a point in time into Unix milliseconds; `now_ms` resolves `now`.
pub fn parse_time_ms(s: &str, now_ms: i64) -> Result<i64> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    let rel = t.strip_prefix("now").unwrap_or(t);
    if let Some(d) = rel.strip_prefix('-').filter(|d| !d.is_empty() && d.chars().any(|c| c.is_ascii_alphabetic())) {
        return Ok(now_ms - parse_duration(d)? * 1000);
    }
    if let Some(d) = rel.strip_prefix('+') {
        return Ok(now_ms + parse_duration(d)? * 1000);
    }
    if let Some(n) = t.strip_prefix('@') {
        return n
            .parse::<i64>()
            .map(|s| s * 1000)
            .map_err(|_| anyhow!("time {s:?}: @ must be followed by Unix seconds"));
    }
    if t.len() >= 9 && t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(t.parse::<i64>()? * 1000);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    let naive = t.trim_end_matches('Z').trim_end_matches('z');
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
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis());
    }
    bail!("time {s:?}: expected RFC 3339 (2017-07-18T23:25:00Z), 2017-07-18T23:25, 2017-07-18, @UNIXSECONDS, now or now-6h")
}

/// Unix seconds as `2017-07-18T23:25:04Z`.
pub fn rfc3339(secs: i64) -> String {
    match DateTime::<Utc>::from_timestamp(secs, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{secs}"),
    }
}

/// Unix milliseconds as `2017-07-18T23:25:04.123Z` (or without fraction
/// when whole seconds).
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
    let neg = secs < 0;
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
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

/// Wall-clock now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let now = 1_500_420_304_000;
        assert_eq!(parse_time_ms("2017-07-18T23:25:04Z", 0).unwrap(), now);
        assert_eq!(parse_time_ms("2017-07-18T23:25", 0).unwrap(), now - 4000);
        assert_eq!(parse_time_ms("2017-07-18T23Z", 0).unwrap(), now - 25 * 60_000 - 4000);
        assert_eq!(parse_time_ms("2017-07-19", 0).unwrap(), 1_500_422_400_000);
        assert_eq!(parse_time_ms("@1500420304", 0).unwrap(), now);
        assert_eq!(parse_time_ms("now", now).unwrap(), now);
        assert_eq!(parse_time_ms("now-1h", now).unwrap(), now - 3_600_000);
        assert_eq!(parse_time_ms("-90m", now).unwrap(), now - 5_400_000);
        assert!(parse_time_ms("yesterday", now).is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("5d").unwrap(), 432_000);
        assert_eq!(parse_duration("120").unwrap(), 120);
        assert!(parse_duration("5x").is_err());
        assert_eq!(human(45), "45s");
        assert_eq!(human(26 * 60), "26m");
        assert_eq!(human(4 * 86_400 + 11 * 3600 + 5), "4d 11h");
        assert_eq!(human(-3900), "-1h 05m");
    }
}
