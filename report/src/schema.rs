//! The JSON schema of `inspect-coverage --json`, version `gapless.coverage/1`.
//!
//! This is the stable, documented export of the coverage map (sled's own
//! files are not stable across sled versions). The archiver's admin API
//! serves the same document at `GET /coverage` (see [`crate::query`]), so
//! that `inspect-coverage --admin URL` shows exactly what it shows from the
//! store. The README of this crate documents every field.
//!
//! Stability: within `gapless.coverage/1`, fields are only ever added;
//! readers must ignore fields they do not know. Times are given twice: as
//! RFC 3339 UTC strings for people and as Unix seconds (or minutes) for
//! programs. Ranges are half-open `[start, end)`.

use serde::{Deserialize, Serialize};

/// The value of [`Report::schema`].
pub const SCHEMA: &str = "gapless.coverage/1";

/// A whole answer: every stream asked for, over one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Who computed it: `"store"` (inspect-coverage read the store) or
    /// `"archiver"` (the archiver's admin API).
    pub source: String,
    /// Version of the program that computed it.
    pub version: String,
    /// The time against which `pending` and the recovery window are judged.
    pub now: String,
    pub now_secs: i64,
    /// The window, widened to whole minutes.
    pub window: Window,
    /// A minute ending after `now - pending_secs` is `pending` (too recent).
    pub pending_secs: i64,
    /// How far back a hole can still be recovered.
    pub recovery_window_secs: i64,
    /// A full minute is suspect when its `stored` count is below this share
    /// of the median of its full neighbours (see [`Audit`]).
    pub suspect_ratio: f64,
    pub streams: Vec<StreamReport>,
    /// Sums over all streams.
    pub totals: Totals,
    /// `"complete"`, `"holes"` (recoverable holes only) or `"lost"`.
    pub status: Status,
    /// The exit status `inspect-coverage` uses for this report: 0, 1 or 2.
    pub exit_code: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: String,
    pub to: String,
    pub from_secs: i64,
    pub to_secs: i64,
}

/// The verdict that decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No hole outside the pending tail: exit 0.
    Complete,
    /// Holes that can still be recovered (or are being recovered): exit 1.
    Holes,
    /// Some hole is lost (marked lost, or older than the recovery window): exit 2.
    Lost,
}

impl Status {
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Complete => 0,
            Status::Holes => 1,
            Status::Lost => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Holes => "holes",
            Status::Lost => "lost",
        }
    }
}

/// The state of a minute, for one partition or the whole stream: its
/// coverage, or its overlay when it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Every second is durable for every partition.
    Full,
    /// Some seconds are covered, not all.
    Partial,
    /// No second is covered.
    None,
    /// Not full and too recent to judge.
    Pending,
    /// Not full; a running recovery job is working on it.
    Recovering,
    /// Not full; marked lost, or older than the recovery window.
    Lost,
}

impl State {
    pub const ALL: [State; 6] =
        [State::Full, State::Partial, State::None, State::Pending, State::Recovering, State::Lost];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Full => "full",
            State::Partial => "partial",
            State::None => "none",
            State::Pending => "pending",
            State::Recovering => "recovering",
            State::Lost => "lost",
        }
    }
}

/// A minute's counters (received, stored, duplicates, quarantined): the
/// store's own type, serialized as it is.
pub use gapless_storage::coverage::Counts;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    pub stream: String,
    /// Partitions are numbered from 1.
    pub partitions: u32,
    /// When the archive started to owe coverage for this stream (its first
    /// start, or earlier with `--since`): minutes entirely before it are
    /// never holes, lost or pending. Null when the store does not say.
    #[serde(default)]
    pub owed_from: Option<String>,
    #[serde(default)]
    pub owed_from_secs: Option<i64>,
    /// How far back a hole of this stream can still be repaired: its
    /// Recovery window, or Backfill's reach (300) for a stream without
    /// Recovery. The report's `recovery_window_secs` when the store does
    /// not say.
    #[serde(default)]
    pub recovery_window_secs: i64,
    /// Every minute of the window, in order.
    pub minutes: Vec<MinuteRow>,
    /// The uncovered stretches of the window outside the pending tail.
    pub holes: Vec<Hole>,
    /// The seconds of the window marked lost.
    pub lost: Vec<Span>,
    /// Every recovery job of the stream (queued, running, failed).
    pub jobs: Vec<Job>,
    pub audit: Audit,
    pub totals: Totals,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinuteRow {
    /// Start of the minute, RFC 3339.
    pub t: String,
    /// Start of the minute in Unix minutes (seconds / 60).
    pub minute: i64,
    /// The stream's state: `coverage`, or `overlay` when there is one.
    pub state: State,
    /// `full`, `partial` or `none`, over every partition.
    pub coverage: State,
    /// `pending`, `recovering`, `lost`, or null. Only a minute that is not full has one.
    pub overlay: Option<State>,
    /// The state of each partition, partition 1 first.
    pub partitions: Vec<State>,
    pub counts: Counts,
    /// `received == stored + duplicates + quarantined`.
    pub balanced: bool,
    /// A full minute whose volume is far below its neighbours'.
    pub suspect: bool,
    /// With `--verify-segments`: the records in the minute's segment (frame
    /// headers that verify); otherwise absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_records: Option<u64>,
}

/// A stretch of uncovered seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hole {
    pub start: String,
    pub end: String,
    pub start_secs: i64,
    pub end_secs: i64,
    pub length_secs: i64,
    /// `recoverable`, `recovering`, `lost` (marked lost), or `expired`
    /// (older than the recovery window and not marked lost: lost all the same).
    pub state: HoleState,
    /// When its first second leaves the recovery window (`start + recovery_window_secs`).
    pub leaves_window_at: String,
    /// Seconds from now until then; negative when it already has.
    pub leaves_window_in_secs: i64,
    /// The partitions missing some second of it.
    pub partitions: Vec<u32>,
    /// The job covering it (running first, then queued), if any.
    pub job: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoleState {
    Recoverable,
    Recovering,
    Lost,
    Expired,
}

impl HoleState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoleState::Recoverable => "recoverable",
            HoleState::Recovering => "recovering",
            HoleState::Lost => "lost",
            HoleState::Expired => "expired",
        }
    }

    /// Lost for good.
    pub fn is_lost(self) -> bool {
        matches!(self, HoleState::Lost | HoleState::Expired)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: String,
    pub end: String,
    pub start_secs: i64,
    pub end_secs: i64,
    pub length_secs: i64,
}

impl Span {
    pub fn new(start_secs: i64, end_secs: i64) -> Span {
        Span {
            start: gapless_time::rfc3339(start_secs),
            end: gapless_time::rfc3339(end_secs),
            start_secs,
            end_secs,
            length_secs: end_secs - start_secs,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    /// null: every partition.
    pub partition: Option<u32>,
    /// `queued`, `running` or `failed`.
    pub state: String,
    pub start: String,
    pub end: String,
    /// Everything before this is covered by the job.
    pub resume: String,
    pub start_secs: i64,
    pub end_secs: i64,
    pub resume_secs: i64,
    /// `end_secs - resume_secs`.
    pub remaining_secs: i64,
    pub attempts: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    /// Minutes where `received != stored + duplicates + quarantined`.
    pub unbalanced: Vec<AuditMinute>,
    /// Full minutes whose `stored` is below `suspect_ratio` times the median
    /// of the full minutes within 30 minutes either side (when that median
    /// is at least 10).
    pub suspect: Vec<AuditMinute>,
    /// With `--verify-segments`: minutes whose segment holds a different
    /// number of records than `stored` says. Fewer is data gone from disk
    /// (a damaged segment); more is counters behind the data (a crash between
    /// the commit and the counters).
    #[serde(default)]
    pub segment_mismatch: Vec<AuditMinute>,
    /// Whether segments were verified (`--verify-segments`).
    #[serde(default)]
    pub segments_verified: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditMinute {
    pub t: String,
    pub minute: i64,
    pub counts: Counts,
    /// For a suspect minute: the median `stored` of its neighbours.
    pub neighbour_median: Option<u64>,
    /// For a segment mismatch: the records its segment holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_records: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub minutes: u64,
    pub full: u64,
    pub partial: u64,
    pub none: u64,
    pub pending: u64,
    pub recovering: u64,
    pub lost: u64,
    /// Minutes not full but entirely before `owed_from` (counted in
    /// `partial`/`none` too).
    #[serde(default)]
    pub not_owed: u64,
    /// Minutes owed coverage: those not entirely before `owed_from` (all of
    /// them when the stream records no `owed_from`).
    #[serde(default)]
    pub owed: u64,
    /// Full minutes among the owed ones.
    #[serde(default)]
    pub full_owed: u64,
    /// `full_owed / owed`: the share of what the archive owes that it
    /// holds. The percentage the tools show ("N% full of M owed minutes").
    #[serde(default)]
    pub full_share_owed: f64,
    /// `full / minutes`: the share of the window that is full, owed or not.
    pub full_share: f64,
    /// `full / (minutes - pending - not_owed)`: the share of what can be judged.
    pub full_share_judged: f64,
    pub holes: u64,
    pub hole_secs: i64,
    /// Seconds of holes that are recoverable or being recovered.
    pub recoverable_secs: i64,
    /// Seconds of holes that are lost or expired.
    pub lost_secs: i64,
    pub jobs_queued: u64,
    pub jobs_running: u64,
    pub jobs_failed: u64,
    pub counts: Counts,
    pub unbalanced_minutes: u64,
    pub suspect_minutes: u64,
    /// With `--verify-segments`: minutes in `audit.segment_mismatch`.
    #[serde(default)]
    pub segment_mismatch_minutes: u64,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.minutes += o.minutes;
        self.full += o.full;
        self.partial += o.partial;
        self.none += o.none;
        self.pending += o.pending;
        self.recovering += o.recovering;
        self.lost += o.lost;
        self.not_owed += o.not_owed;
        self.owed += o.owed;
        self.full_owed += o.full_owed;
        self.holes += o.holes;
        self.hole_secs += o.hole_secs;
        self.recoverable_secs += o.recoverable_secs;
        self.lost_secs += o.lost_secs;
        self.jobs_queued += o.jobs_queued;
        self.jobs_running += o.jobs_running;
        self.jobs_failed += o.jobs_failed;
        self.counts.add(&o.counts);
        self.unbalanced_minutes += o.unbalanced_minutes;
        self.suspect_minutes += o.suspect_minutes;
        self.segment_mismatch_minutes += o.segment_mismatch_minutes;
        self.finish();
    }

    /// Recomputes the shares from the counts.
    pub fn finish(&mut self) {
        self.full_share = if self.minutes == 0 { 0.0 } else { self.full as f64 / self.minutes as f64 };
        self.full_share_owed = if self.owed == 0 { 0.0 } else { self.full_owed as f64 / self.owed as f64 };
        let judged = self.minutes.saturating_sub(self.pending + self.not_owed);
        self.full_share_judged = if judged == 0 { 0.0 } else { self.full as f64 / judged as f64 };
    }
}
