//! Faults, scripted and random.
//!
//! A fault is active on a stream (optionally one partition) during a window
//! of stream time `[start, start + duration)`. How each kind acts:
//!
//! | kind | effect |
//! |---|---|
//! | `drop` | connections of the target are cut (TCP closed without the chunked terminator) while the window is open, new ones too |
//! | `stall` | connections send nothing at all, not even heartbeats, until the window closes; then they resume |
//! | `stall_skip` | like `stall`, but then they skip to realtime: what fell due during the stall, and the Backfill asked for by a connection made during it, is never sent (Recovery has it) |
//! | `unavailable` | connection requests get `503` |
//! | `rate_limit` | connection requests get `429` (a 429 storm) |
//! | `slow_drip` | bytes leave in 64-byte pieces with pauses |
//! | `cut_line` | a connection sends half of a line, then is cut |
//! | `corrupt_gzip` | a connection sends bytes that are not valid deflate, then is cut |
//! | `skip` | connections open during the window stay up (heartbeats go on) but never send the activities whose activity time is in it; a later connection's Backfill has them |
//! | `drop_realtime` | activities whose activity time is in the window are never sent on realtime or backfill; Recovery has them |
//! | `duplicate` | every batch is sent twice |
//! | `break_recovery` | Recovery connections are cut while the window is open |
//!
//! Random faults are expanded per hour of stream time from a seed, so a
//! random schedule is as deterministic as the data.
//!
//! Times and durations in a fault file are in the project's one grammar
//! ([`gapless_time`]): `at` is a time (`2026-03-01T12:10:00Z`,
//! `2026-03-01T12:10`, ...) or an offset from the clock start (`+10m`,
//! `+1h30m`, `+90` seconds; `now` is the clock start too); `duration` is a
//! duration (`500ms`, `30s`, `1h30m`, or a whole number of seconds).

use gapless_time::Dur;
use serde::Deserialize;

use crate::clock::StreamMs;
use crate::rng::{hash_str, Rng};
use crate::stream::{parse_stream_name, StreamSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Drop,
    Stall,
    StallSkip,
    Unavailable,
    RateLimit,
    SlowDrip,
    CutLine,
    CorruptGzip,
    Skip,
    DropRealtime,
    Duplicate,
    BreakRecovery,
}

impl FaultKind {
    /// The name used in fault files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Stall => "stall",
            FaultKind::StallSkip => "stall_skip",
            FaultKind::Unavailable => "unavailable",
            FaultKind::RateLimit => "rate_limit",
            FaultKind::SlowDrip => "slow_drip",
            FaultKind::CutLine => "cut_line",
            FaultKind::CorruptGzip => "corrupt_gzip",
            FaultKind::Skip => "skip",
            FaultKind::DropRealtime => "drop_realtime",
            FaultKind::Duplicate => "duplicate",
            FaultKind::BreakRecovery => "break_recovery",
        }
    }
}

/// One fault instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Unique per instance (connections apply one-shot faults once per id).
    pub id: u64,
    pub kind: FaultKind,
    pub start_ms: StreamMs,
    pub end_ms: StreamMs,
    /// `kind/label`; None = every stream.
    pub stream: Option<String>,
    /// None = every partition.
    pub partition: Option<u32>,
    /// Only the N-th connection accepted on the stream (1-based, realtime and
    /// Recovery alike); None = every connection. Request faults ignore it.
    pub connection: Option<u64>,
}

impl Fault {
    fn applies_conn(&self, stream: &StreamSpec, partition: Option<u32>, conn: Option<u64>, t: StreamMs) -> bool {
        self.applies(stream, partition, t)
            && match (self.connection, conn) {
                (Some(want), Some(c)) => want == c,
                _ => true,
            }
    }

    fn applies(&self, stream: &StreamSpec, partition: Option<u32>, t: StreamMs) -> bool {
        t >= self.start_ms
            && t < self.end_ms
            && self.stream.as_deref().is_none_or(|s| s == stream.name())
            && match (self.partition, partition) {
                (Some(p), Some(q)) => p == q,
                _ => true,
            }
    }
}

/// Random faults of one kind at a rate.
#[derive(Clone, Debug)]
pub struct RandomFault {
    pub kind: FaultKind,
    pub per_hour: f64,
    pub duration_ms: i64,
    pub stream: Option<String>,
    pub partition: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub seed: u64,
    pub scripted: Vec<Fault>,
    pub random: Vec<RandomFault>,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("fault file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("fault file: at = {at:?}: {source} (or +DURATION after the clock start)")]
    Time { at: String, source: gapless_time::Error },
    #[error("fault file: duration {0} is too long")]
    Duration(Dur),
    #[error("fault file: bad stream {0:?} (KIND/LABEL)")]
    Stream(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    seed: Option<u64>,
    #[serde(default)]
    fault: Vec<FileFault>,
    #[serde(default)]
    random: Vec<FileRandom>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFault {
    at: String,
    duration: Dur,
    kind: FaultKind,
    stream: Option<String>,
    partition: Option<u32>,
    connection: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRandom {
    kind: FaultKind,
    per_hour: f64,
    duration: Dur,
    stream: Option<String>,
    partition: Option<u32>,
}

/// A duration in stream milliseconds.
fn dur(d: Dur) -> Result<i64, FaultError> {
    i64::try_from(d.as_duration().as_millis()).map_err(|_| FaultError::Duration(d))
}

fn check_stream(s: &Option<String>) -> Result<(), FaultError> {
    match s {
        Some(s) if parse_stream_name(s).is_none() => Err(FaultError::Stream(s.clone())),
        _ => Ok(()),
    }
}

impl FaultPlan {
    /// Parse a TOML fault file; `+DURATION` times (and `now`) are relative
    /// to `clock_start_ms`.
    pub fn from_toml(text: &str, clock_start_ms: StreamMs, default_seed: u64) -> Result<Self, FaultError> {
        let doc: FileDoc = toml::from_str(text)?;
        let mut plan = FaultPlan { seed: doc.seed.unwrap_or(default_seed), ..Default::default() };
        for (i, f) in doc.fault.iter().enumerate() {
            let start = gapless_time::parse_time_ms(&f.at, clock_start_ms)
                .map_err(|source| FaultError::Time { at: f.at.clone(), source })?;
            check_stream(&f.stream)?;
            plan.scripted.push(Fault {
                id: (i as u64 + 1) << 32,
                kind: f.kind,
                start_ms: start,
                end_ms: start.saturating_add(dur(f.duration)?),
                stream: f.stream.clone(),
                partition: f.partition,
                connection: f.connection,
            });
        }
        for r in &doc.random {
            check_stream(&r.stream)?;
            plan.random.push(RandomFault {
                kind: r.kind,
                per_hour: r.per_hour.max(0.0),
                duration_ms: dur(r.duration)?,
                stream: r.stream.clone(),
                partition: r.partition,
            });
        }
        Ok(plan)
    }

    /// Add another plan's faults (e.g. posted at run time), keeping ids unique.
    pub fn merge(&mut self, other: FaultPlan) {
        let base = self.scripted.iter().map(|f| f.id >> 32).max().unwrap_or(0);
        for (i, mut f) in other.scripted.into_iter().enumerate() {
            f.id = (base + i as u64 + 1) << 32;
            self.scripted.push(f);
        }
        self.random.extend(other.random);
    }

    pub fn is_empty(&self) -> bool {
        self.scripted.is_empty() && self.random.is_empty()
    }

    /// The first fault of `kind` active at `t` for this stream and partition
    /// (`partition` None = a request that names none, e.g. all partitions).
    pub fn active(&self, kind: FaultKind, stream: &StreamSpec, partition: Option<u32>, t: StreamMs) -> Option<Fault> {
        self.active_on(kind, stream, partition, None, t)
    }

    /// Like [`FaultPlan::active`], for connection `conn` (its ordinal on the
    /// stream), so that faults aimed at one connection spare the others.
    pub fn active_on(
        &self,
        kind: FaultKind,
        stream: &StreamSpec,
        partition: Option<u32>,
        conn: Option<u64>,
        t: StreamMs,
    ) -> Option<Fault> {
        if let Some(f) = self.scripted.iter().find(|f| f.kind == kind && f.applies_conn(stream, partition, conn, t)) {
            return Some(f.clone());
        }
        for (idx, r) in self.random.iter().enumerate() {
            if r.kind != kind || r.per_hour <= 0.0 {
                continue;
            }
            let hour = t.div_euclid(3_600_000);
            let back = r.duration_ms.div_euclid(3_600_000) + 1;
            for h in (hour - back)..=hour {
                let mut rng = Rng::from_words(&[self.seed, 0xFA17, idx as u64, h as u64]);
                let whole = r.per_hour.floor() as u64;
                let n = whole + u64::from(rng.chance(r.per_hour - whole as f64));
                for i in 0..n {
                    let start = h * 3_600_000 + rng.below(3_600_000) as i64;
                    let partition_pick = r.partition;
                    let f = Fault {
                        id: crate::rng::hash_words(&[0xFA18, idx as u64, h as u64, i]) | 1,
                        kind,
                        start_ms: start,
                        end_ms: start + r.duration_ms,
                        stream: r.stream.clone(),
                        partition: partition_pick,
                        connection: None,
                    };
                    if f.applies(stream, partition, t) {
                        return Some(f);
                    }
                }
            }
        }
        None
    }

    /// True when an activity of this time is withheld from realtime delivery.
    pub fn realtime_dropped(&self, stream: &StreamSpec, partition: u32, activity_ms: StreamMs) -> bool {
        self.active(FaultKind::DropRealtime, stream, Some(partition), activity_ms).is_some()
    }
}

/// A stable word for a stream name (used in seeds).
pub fn stream_word(name: &str) -> u64 {
    hash_str(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamKind;

    #[test]
    fn parses_script_and_finds_active() {
        let text = r#"
            [[fault]]
            at = "+90s"
            duration = "30s"
            kind = "stall"
            stream = "sample10/prod"
            partition = 1

            [[random]]
            kind = "drop"
            per_hour = 3
            duration = 5
        "#;
        let plan = FaultPlan::from_toml(text, 1_000_000, 9).unwrap();
        let s = StreamSpec::new(StreamKind::Sample10, "prod");
        assert!(plan.active(FaultKind::Stall, &s, Some(1), 1_000_000 + 95_000).is_some());
        assert!(plan.active(FaultKind::Stall, &s, Some(2), 1_000_000 + 95_000).is_none());
        assert!(plan.active(FaultKind::Stall, &s, Some(1), 1_000_000 + 120_000).is_none());
        // About 3 random drops of 5 s per hour: count active seconds over 10 h.
        let active =
            (0..36_000).filter(|s| plan.active(FaultKind::Drop, &s_spec(), Some(1), s * 1000).is_some()).count();
        assert!(active > 60 && active < 300, "{active}");
        fn s_spec() -> StreamSpec {
            StreamSpec::new(StreamKind::Sample10, "prod")
        }
    }

    #[test]
    fn demo_scenario_parses() {
        let text = include_str!("../demo/faults.toml");
        let plan = FaultPlan::from_toml(text, 0, 1).unwrap();
        assert_eq!(plan.scripted.len(), 9);
        assert_eq!(plan.random.len(), 1);
    }

    /// The fault file speaks the project's one grammar of times and
    /// durations: sums of units, bare whole seconds, offsets from the clock
    /// start, and the short forms of a time.
    #[test]
    fn times_and_durations_use_the_one_grammar() {
        let start = 1_772_323_200_000; // 2026-03-01T00:00:00Z
        let fault = |at: &str, duration: &str| -> Result<(i64, i64), FaultError> {
            let text = format!("[[fault]]\nat = {at}\nduration = {duration}\nkind = \"drop\"\n");
            let plan = FaultPlan::from_toml(&text, start, 1)?;
            Ok((plan.scripted[0].start_ms - start, plan.scripted[0].end_ms - plan.scripted[0].start_ms))
        };
        assert_eq!(fault("\"+4m\"", "\"30s\"").unwrap(), (240_000, 30_000));
        assert_eq!(fault("\"+1h30m\"", "\"1h 30m\"").unwrap(), (5_400_000, 5_400_000));
        assert_eq!(fault("\"+90\"", "90").unwrap(), (90_000, 90_000));
        assert_eq!(fault("\"+0s\"", "\"250ms\"").unwrap(), (0, 250));
        assert_eq!(fault("\"now\"", "\"1.5m\"").unwrap(), (0, 90_000));
        assert_eq!(fault("\"2026-03-01T00:10\"", "\"2m\"").unwrap(), (600_000, 120_000));
        assert_eq!(fault("\"2026-03-01T00:10:00.5Z\"", "\"2m\"").unwrap(), (600_500, 120_000));
        assert!(matches!(fault("\"soon\"", "\"1m\""), Err(FaultError::Time { .. })));
        assert!(matches!(fault("\"+5x\"", "\"1m\""), Err(FaultError::Time { .. })));
        for bad in ["\"5 parsecs\"", "\"-5m\"", "-5"] {
            assert!(matches!(fault("\"+1m\"", bad), Err(FaultError::Toml(_))), "{bad}");
        }
        let random = "[[random]]\nkind = \"drop\"\nper_hour = 2\nduration = \"1m30s\"\n";
        assert_eq!(FaultPlan::from_toml(random, start, 1).unwrap().random[0].duration_ms, 90_000);
    }
}
