//! `gapless compliance --data DIR`: what the archive applied of what the
//! streams said was deleted or withheld, what is still to be purged, and
//! what could not be applied. JSON (`--json`, schema
//! `gapless.compliance-report/1`) or text. Reads files only: it works
//! while an archiver runs.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use gapless_storage::activity::{EARLIEST_MS, LATEST_MS};
use gapless_storage::compliance::{self, purge, Action, Event, Family, Policy, PolicySummary, PurgeLog, Source};
use gapless_storage::io::StdFs;
use gapless_storage::{layout, Minute};
use gapless_time::rfc3339_ms;
use serde::Serialize;

pub const SCHEMA: &str = "gapless.compliance-report/1";
/// Compliance messages that could not be applied, listed at most.
const MAX_LISTED: usize = 100;

#[derive(Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub data: String,
    pub generated_at: String,
    /// The purge delay the report judges pending purges by (seconds).
    pub purge_after_secs: u64,
    pub streams: Vec<StreamReport>,
}

#[derive(Serialize)]
pub struct StreamReport {
    pub stream: String,
    /// `ledger`, or `segments` (no ledger: the events were read from the segments).
    pub source: &'static str,
    /// Events by kind (repeats included).
    pub events: BTreeMap<&'static str, u64>,
    pub ledger_torn_bytes: u64,
    /// What readers apply now (segment-export by default).
    pub applied: PolicySummary,
    pub purged: Purged,
    pub pending: Pending,
    /// Users whose `user_delete` was purged and who were undeleted since:
    /// their Posts are gone from the archive for good.
    pub undeleted_after_purge: Vec<String>,
    /// Compliance messages that name no usable ID (by line hash).
    pub not_applied: NotAppliedList,
    /// Minutes evicted to the bucket (`[archive] local_max`) that the last
    /// purge pass has not reached yet: the uploader applies each pass to
    /// them in the bucket after it (readers hide their content meanwhile).
    pub evicted_minutes_not_purged: u64,
    /// What a purge does not rewrite: files kept aside as they were for a
    /// person to look at (a repair's `.damaged` bytes, torn tails), and
    /// the quarantine (lines that could not be stored). They may hold
    /// content the stream deleted: look, then remove them.
    pub kept_aside: KeptAside,
}

#[derive(Serialize, Default)]
pub struct KeptAside {
    pub files: Vec<String>,
    pub bytes: u64,
    pub quarantine_bytes: u64,
}

#[derive(Serialize, Default)]
pub struct Purged {
    /// Events whose content was removed from every local minute.
    pub events: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// When the last purge pass finished.
    pub last_pass: Option<String>,
}

#[derive(Serialize, Default)]
pub struct Pending {
    /// Events whose content is still on disk and will be purged.
    pub events: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Of them, already due (the archiver purges them at its next pass).
    pub due_now: u64,
    /// When the next one becomes due.
    pub next_due: Option<String>,
}

#[derive(Serialize, Default)]
pub struct NotAppliedList {
    pub count: u64,
    pub listed: Vec<NotAppliedEntry>,
}

#[derive(Serialize)]
pub struct NotAppliedEntry {
    pub time: String,
    pub line_hash: String,
    pub reason: &'static str,
}

/// Builds the report of `stream` (or every stream) of `data`.
pub fn report(data: &Path, stream: Option<&str>, purge_after: Duration, now_ms: i64) -> Result<Report> {
    if !data.is_dir() {
        anyhow::bail!("{}: no such data directory", data.display());
    }
    let labels = match stream {
        Some(s) => vec![s.to_string()],
        None => layout::streams(data)?,
    };
    let mut streams = Vec::new();
    for label in labels {
        let dir = layout::stream_dir(data, &label);
        if !dir.is_dir() {
            anyhow::bail!("{label}: no such stream in {}", data.display());
        }
        streams.push(stream_report(&label, &dir, purge_after, now_ms).with_context(|| format!("stream {label}"))?);
    }
    Ok(Report {
        schema: SCHEMA,
        data: data.display().to_string(),
        generated_at: rfc3339_ms(now_ms),
        purge_after_secs: purge_after.as_secs(),
        streams,
    })
}

fn stream_report(label: &str, dir: &Path, purge_after: Duration, now_ms: i64) -> Result<StreamReport> {
    let loaded = compliance::load(dir)?;
    let log = PurgeLog::new(Arc::new(StdFs), dir).read()?;
    let current = Policy::of(&loaded.events);
    let mut events = BTreeMap::new();
    let mut not_applied = NotAppliedList::default();
    for e in &loaded.events {
        *events.entry(e.action.name()).or_default() += 1;
        if let Action::NotApplied { line_hash, reason } = &e.action {
            not_applied.count += 1;
            if not_applied.listed.len() < MAX_LISTED {
                not_applied.listed.push(NotAppliedEntry {
                    time: rfc3339_ms(e.time_ms),
                    line_hash: format!("{line_hash:016x}"),
                    reason: reason.describe(),
                });
            }
        }
    }
    let done: HashSet<Event> = log.events.iter().cloned().collect();
    let mut purged = Purged { last_pass: log.last_pass_ms.map(rfc3339_ms), ..Purged::default() };
    for e in &done {
        purged.events += 1;
        *purged.by_kind.entry(e.action.name()).or_default() += 1;
    }
    // Pending: what a purge would take, at any time from now on.
    let delay = purge_after.as_millis() as i64;
    let eventually = purge::due(&loaded.events, &current, &done, i64::MAX - delay, delay);
    let mut pending = Pending::default();
    for e in &eventually {
        pending.events += 1;
        *pending.by_kind.entry(e.action.name()).or_default() += 1;
        let due_ms = e.time_ms.saturating_add(delay);
        if due_ms <= now_ms {
            pending.due_now += 1;
        }
    }
    pending.next_due =
        eventually.iter().map(|e| e.time_ms.saturating_add(delay)).filter(|t| *t > now_ms).min().map(rfc3339_ms);
    let mut undeleted: Vec<u64> = done
        .iter()
        .filter_map(|e| match e.action {
            Action::User { user, family: Family::Delete, hide: true }
                if current.hidden(user) != Some(Family::Delete) =>
            {
                Some(user)
            }
            _ => None,
        })
        .collect();
    undeleted.sort_unstable();
    undeleted.dedup();
    Ok(StreamReport {
        stream: label.to_string(),
        source: match loaded.source {
            Source::Ledger => "ledger",
            Source::Segments => "segments",
        },
        events,
        ledger_torn_bytes: loaded.torn_bytes,
        applied: current.summary(),
        purged,
        pending,
        undeleted_after_purge: undeleted.iter().map(u64::to_string).collect(),
        not_applied,
        kept_aside: {
            let mut k = KeptAside::default();
            for f in layout::kept_aside_files(dir)? {
                k.bytes += std::fs::metadata(&f).map_or(0, |m| m.len());
                k.files.push(f.display().to_string());
            }
            k.quarantine_bytes = std::fs::metadata(layout::quarantine_path(dir)).map_or(0, |m| m.len());
            k
        },
        evicted_minutes_not_purged: match log.events.len() as u64 {
            logged if logged > 0 && purge::bucket_mark(dir)?.is_none_or(|m| m < logged) => {
                layout::evicted_minutes(dir, Minute::of_ms(EARLIEST_MS), Minute::of_ms(LATEST_MS))?.len() as u64
            }
            _ => 0,
        },
    })
}

impl Report {
    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "compliance of {} (purge after {} s), {}",
            self.data, self.purge_after_secs, self.generated_at
        );
        for s in &self.streams {
            let total: u64 = s.events.values().sum();
            let kinds: Vec<String> = s.events.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "\n{}: {total} events from the {} ({})", s.stream, s.source, kinds.join(", "));
            let a = &s.applied;
            let _ = writeln!(
                out,
                "  applied by readers: {} Posts deleted; users deleted {}, protected {}, suspended {}; {} unlikes; geo scrubbed for {} users; withheld {} Posts, {} users",
                a.deleted_posts, a.deleted_users, a.protected_users, a.suspended_users, a.unlikes, a.scrub_geo_users, a.withheld_posts, a.withheld_users
            );
            let _ = writeln!(
                out,
                "  purged from disk: {} events (last pass {})",
                s.purged.events,
                s.purged.last_pass.as_deref().unwrap_or("never")
            );
            let _ = writeln!(
                out,
                "  pending purge: {} events, {} due now{}",
                s.pending.events,
                s.pending.due_now,
                s.pending.next_due.as_ref().map(|t| format!(", next due {t}")).unwrap_or_default()
            );
            if !s.undeleted_after_purge.is_empty() {
                let _ = writeln!(
                    out,
                    "  undeleted after their Posts were purged (gone for good): users {}",
                    s.undeleted_after_purge.join(", ")
                );
            }
            if s.not_applied.count > 0 {
                let _ = writeln!(out, "  could not be applied: {} messages", s.not_applied.count);
                for n in &s.not_applied.listed {
                    let _ = writeln!(out, "    {} line {}: {}", n.time, n.line_hash, n.reason);
                }
            }
            if s.evicted_minutes_not_purged > 0 {
                let _ = writeln!(
                    out,
                    "  not purged yet: {} minutes evicted to the bucket (the uploader purges them there after the last pass; readers hide their content)",
                    s.evicted_minutes_not_purged
                );
            }
            if !s.kept_aside.files.is_empty() || s.kept_aside.quarantine_bytes > 0 {
                let _ = writeln!(
                    out,
                    "  not purged (kept as they were for a person to look at; they may hold deleted content): {} files kept aside ({} bytes), quarantine {} bytes",
                    s.kept_aside.files.len(),
                    s.kept_aside.bytes,
                    s.kept_aside.quarantine_bytes
                );
            }
            if s.ledger_torn_bytes > 0 {
                let _ = writeln!(out, "  the ledger ends in {} bytes that do not verify", s.ledger_torn_bytes);
            }
        }
        out
    }
}
