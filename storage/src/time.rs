//! Time in the archive: activity time in milliseconds, minute buckets, and
//! snowflake IDs.
//!
//! Every activity is filed under the minute of its *activity time* (not the
//! time it arrived), so that a Post delivered late by Backfill or Recovery
//! lands beside the realtime copy it duplicates.

use std::fmt;

/// Milliseconds since the Unix epoch of snowflake time zero
/// (2010-11-04T01:42:54.657Z).
pub const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

/// IDs below this were issued sequentially before snowflakes existed
/// (they stayed below ~3e10); their high bits carry no time.
const FIRST_SNOWFLAKE: u64 = 1 << 40;

/// A minute bucket: whole minutes since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(pub i64);

impl Minute {
    /// The minute containing `ms` (floor division, so times before 1970
    /// still land in the right bucket).
    pub fn of_ms(ms: i64) -> Minute {
        Minute(ms.div_euclid(60_000))
    }

    /// The minute containing the Unix second `secs`.
    pub fn of_secs(secs: i64) -> Minute {
        Minute(secs.div_euclid(60))
    }

    pub fn start_ms(self) -> i64 {
        self.0 * 60_000
    }

    pub fn start_secs(self) -> i64 {
        self.0 * 60
    }

    pub fn next(self) -> Minute {
        Minute(self.0 + 1)
    }

    /// `YYYYMMDDTHHMMZ`, the name of the minute's segment file.
    pub fn file_stem(self) -> String {
        match chrono::DateTime::from_timestamp(self.start_secs(), 0) {
            Some(t) => t.format("%Y%m%dT%H%MZ").to_string(),
            None => format!("m{}", self.0),
        }
    }

    /// `YYYY-MM-DD`, the name of the directory holding the minute's day.
    pub fn day_dir(self) -> String {
        match chrono::DateTime::from_timestamp(self.start_secs(), 0) {
            Some(t) => t.format("%Y-%m-%d").to_string(),
            None => "out-of-range".to_string(),
        }
    }
}

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.start_secs(), 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%MZ")),
            None => write!(f, "minute {}", self.0),
        }
    }
}

/// The fields of a snowflake ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snowflake {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// 10 bits: 5 of datacenter, 5 of worker.
    pub machine: u16,
    /// 12 bits of per-millisecond sequence.
    pub sequence: u16,
}

impl Snowflake {
    /// Splits `id` into its fields, or `None` for a pre-snowflake ID.
    pub fn parse(id: u64) -> Option<Snowflake> {
        if id < FIRST_SNOWFLAKE {
            return None;
        }
        Some(Snowflake {
            time_ms: (id >> 22) as i64 + SNOWFLAKE_EPOCH_MS,
            machine: ((id >> 12) & 0x3ff) as u16,
            sequence: (id & 0xfff) as u16,
        })
    }

    /// The ID these fields make; `parse(make(s)) == s` for valid fields.
    pub fn to_id(self) -> u64 {
        (((self.time_ms - SNOWFLAKE_EPOCH_MS) as u64) << 22)
            | ((self.machine as u64 & 0x3ff) << 12)
            | (self.sequence as u64 & 0xfff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_of_a_real_post() {
        // 887453193294282752 was posted 2017-07-18T23:25:04Z (fixture).
        let s = Snowflake::parse(887_453_193_294_282_752).unwrap();
        assert_eq!(s.time_ms / 1000, 1_500_420_304);
        assert_eq!(s.to_id(), 887_453_193_294_282_752);
    }

    #[test]
    fn sequential_ids_are_not_snowflakes() {
        assert_eq!(Snowflake::parse(20), None);
        assert_eq!(Snowflake::parse(29_000_000_000), None);
    }

    #[test]
    fn minutes_floor() {
        assert_eq!(Minute::of_ms(-1), Minute(-1));
        assert_eq!(Minute::of_ms(59_999), Minute(0));
        assert_eq!(Minute::of_ms(60_000), Minute(1));
        assert_eq!(Minute(25_007_005).file_stem(), "20170718T2325Z");
    }
}
