//! A day's manifest: what one site's copy of one stream holds for one UTC
//! day, and which of its seconds it covers (FORMAT.md, "The archive in a
//! bucket").
//!
//! It is written (replaced whole) only after every object it names was
//! uploaded and verified, so a reader that follows it finds complete
//! objects; and it covers a minute's seconds only with the object that
//! holds every activity of them, so the bucket alone is a complete
//! archive that any machine can read.

use std::collections::BTreeMap;
use std::ops::Range;

use gapless_storage::coverage::Counts;
use gapless_storage::Minute;
use serde::{Deserialize, Serialize};

/// The format tag of a manifest.
pub const FORMAT: &str = "gapless.bucket/1";

/// One day of one site's copy of one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub site: String,
    pub stream: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub partitions: u32,
    /// Minutes with data: key `HHMM`.
    pub minutes: BTreeMap<String, MinuteObject>,
    /// Covered seconds per partition (`"1"`, `"2"`, ...): sorted, disjoint
    /// `[start, end)` Unix seconds inside the day.
    pub covered: BTreeMap<String, Vec<(i64, i64)>>,
    /// Dictionaries the day's objects may name (file names in `dict/`).
    #[serde(default)]
    pub dicts: Vec<String>,
    /// The stream's metadata when the manifest was written: the Unix
    /// second from which the archive owes coverage, and how far back its
    /// holes can be repaired (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owed_from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_secs: Option<i64>,
    /// The archiver that writes this site's copy (its data directory's
    /// identity): another one finding it refuses to write under the same
    /// site, rather than replace what the first copied.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub writer: String,
}

/// The object holding one minute's segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteObject {
    /// The object's key, relative to the stream's keys (as written).
    pub key: String,
    pub bytes: u64,
    /// CRC32C of the object's bytes.
    pub crc32c: u32,
    /// The minute's counters when it was uploaded.
    pub counts: Counts,
}

impl Manifest {
    pub fn new(site: &str, stream: &str, day: &str, partitions: u32) -> Manifest {
        Manifest {
            format: FORMAT.to_string(),
            site: site.to_string(),
            stream: stream.to_string(),
            day: day.to_string(),
            partitions,
            ..Manifest::default()
        }
    }

    /// The key of a minute in [`Manifest::minutes`].
    pub fn minute_key(minute: Minute) -> String {
        minute.file_stem()[9..13].to_string()
    }

    /// The minute of a key of [`Manifest::minutes`], on this manifest's day.
    pub fn minute_of(&self, key: &str) -> Option<Minute> {
        let t = chrono::NaiveDateTime::parse_from_str(&format!("{} {key}", self.day), "%Y-%m-%d %H%M").ok()?;
        Some(Minute::of_secs(t.and_utc().timestamp()))
    }

    /// The covered seconds of `partition` as ranges.
    pub fn covered_ranges(&self, partition: u32) -> Vec<Range<i64>> {
        self.covered.get(&partition.to_string()).map(|r| r.iter().map(|&(s, e)| s..e).collect()).unwrap_or_default()
    }

    /// Replaces the covered seconds of `partition` inside `minute` with
    /// `runs` (which must lie inside it).
    pub fn set_covered(&mut self, partition: u32, minute: Minute, runs: &[Range<i64>]) {
        let (lo, hi) = (minute.start_secs(), minute.next().start_secs());
        let entry = self.covered.entry(partition.to_string()).or_default();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(entry.len() + runs.len());
        for &(s, e) in entry.iter() {
            if s < lo {
                out.push((s, e.min(lo)));
            }
            if e > hi {
                out.push((s.max(hi), e));
            }
        }
        out.extend(runs.iter().filter(|r| r.start < r.end).map(|r| (r.start.max(lo), r.end.min(hi))));
        out.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
        for (s, e) in out {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *entry = merged;
    }

    /// The covered seconds of `partition` inside `minute`.
    pub fn covered_in(&self, partition: u32, minute: Minute) -> Vec<Range<i64>> {
        let (lo, hi) = (minute.start_secs(), minute.next().start_secs());
        self.covered_ranges(partition)
            .into_iter()
            .filter(|r| r.end > lo && r.start < hi)
            .map(|r| r.start.max(lo)..r.end.min(hi))
            .collect()
    }

    /// Checks what a reader relies on: the format, the day, and covered
    /// runs sorted, disjoint and inside the day.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format {:?}, expected {FORMAT:?}", self.format));
        }
        let day =
            chrono::NaiveDate::parse_from_str(&self.day, "%Y-%m-%d").map_err(|e| format!("day {:?}: {e}", self.day))?;
        let lo = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or(0);
        let hi = lo + 86_400;
        for (p, runs) in &self.covered {
            let n: u32 = p.parse().map_err(|_| format!("partition {p:?}"))?;
            if n == 0 || n > self.partitions {
                return Err(format!("partition {n} of {}", self.partitions));
            }
            let mut end = lo;
            for &(s, e) in runs {
                if s < end || e <= s || e > hi {
                    return Err(format!("partition {p}: run [{s}, {e}) out of order or outside the day"));
                }
                end = e;
            }
        }
        for key in self.minutes.keys() {
            if self.minute_of(key).is_none() {
                return Err(format!("minute {key:?}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 1_772_323_200; // 2026-03-01T00:00Z

    #[test]
    fn minute_keys_round_trip() {
        let m = Manifest::new("east", "d", "2026-03-01", 2);
        let minute = Minute::of_secs(DAY + 12 * 3600 + 25 * 60);
        assert_eq!(Manifest::minute_key(minute), "1225");
        assert_eq!(m.minute_of("1225"), Some(minute));
        assert_eq!(m.minute_of("2460"), None);
    }

    #[test]
    fn a_bad_manifest_is_refused() {
        let mut m = Manifest::new("east", "d", "2026-03-01", 1);
        m.covered.insert("1".into(), vec![(DAY + 10, DAY + 5)]);
        assert!(m.check().is_err());
        m.covered.insert("1".into(), vec![(DAY + 10, DAY + 50)]);
        assert!(m.check().is_ok());
        m.covered.insert("2".into(), vec![(DAY + 10, DAY + 50)]);
        assert!(m.check().is_err(), "partition 2 of 1");
        let mut m = Manifest::new("east", "d", "2026-03-01", 1);
        m.format = "gapless.bucket/2".into();
        assert!(m.check().is_err());
    }

    /// Runs of `true` in `bits` (second `i` is `DAY + i`) inside `minute`.
    fn runs_of(bits: &[bool], minute: i64) -> Vec<Range<i64>> {
        let mut out: Vec<Range<i64>> = Vec::new();
        for i in minute * 60..minute * 60 + 60 {
            if bits[i as usize] {
                match out.last_mut() {
                    Some(r) if r.end == DAY + i => r.end += 1,
                    _ => out.push(DAY + i..DAY + i + 1),
                }
            }
        }
        out
    }

    proptest! {
        /// Setting a minute's coverage changes that minute only, and keeps
        /// the runs sorted, disjoint and merged.
        #[test]
        fn set_covered_changes_one_minute(
            before in proptest::collection::vec(any::<bool>(), 720),
            minute in 0i64..12,
            after in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let mut m = Manifest::new("s", "d", "2026-03-01", 1);
            for mm in 0..12 {
                m.set_covered(1, Minute::of_secs(DAY + mm * 60), &runs_of(&before, mm));
            }
            let mut truth = before.clone();
            truth[(minute * 60) as usize..(minute * 60 + 60) as usize].copy_from_slice(&after);
            m.set_covered(1, Minute::of_secs(DAY + minute * 60), &runs_of(&truth, minute));
            let got = m.covered_ranges(1);
            let mut seen = vec![false; 720];
            for w in got.windows(2) {
                prop_assert!(w[0].end < w[1].start, "not merged or not sorted: {:?}", got);
            }
            for r in &got {
                prop_assert!(r.start < r.end);
                for t in r.clone() { seen[(t - DAY) as usize] = true; }
            }
            prop_assert_eq!(seen, truth);
            prop_assert!(m.check().is_ok());
        }
    }
}
