//! The manifest written beside every export (`FILE.manifest.json`), schema
//! `gapless.export-manifest/1`: what was exported, and, minute by minute,
//! whether the archive holds all of it. Fields are only ever added within
//! a schema version. Documented in the README.

use std::collections::BTreeMap;
use std::path::Path;

use gapless_report::schema::{Counts, Hole, Report, State, Status};
use gapless_storage::ActivityKind;
use gapless_time::{rfc3339, rfc3339_ms};
use serde::Serialize;

pub const SCHEMA: &str = "gapless.export-manifest/1";

pub enum CoverageInfo {
    Known(Box<Report>),
    /// Why it is unknown.
    Unknown(String),
}

#[derive(Serialize)]
pub struct Manifest {
    pub schema: &'static str,
    pub tool: &'static str,
    pub version: &'static str,
    pub created_at: String,
    pub data: String,
    pub stream: String,
    pub range: Range,
    pub format: &'static str,
    pub compression: &'static str,
    /// null when written to standard output; the dataset's root with --partitioned.
    pub output: Option<String>,
    /// With --partitioned: every hour of the range, its file and rows
    /// (`hive::Partition`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<crate::hive::Partition>>,
    pub output_bytes: u64,
    pub kinds: Vec<&'static str>,
    pub compliance: crate::compliance::ManifestCompliance,
    pub records: u64,
    /// Bytes of the records as NDJSON (raw bytes plus newlines).
    pub raw_bytes: u64,
    pub records_by_kind: BTreeMap<&'static str, u64>,
    pub coverage: CoverageSummary,
    /// Every minute the range touches, in order, when coverage is known;
    /// otherwise the minutes that hold exported records.
    pub minutes: Vec<MinuteEntry>,
    /// Segments whose bytes after some offset did not verify (damage, or a
    /// frame being written): only the records before were exported, and
    /// the export is not complete. `gapless verify` repairs damage.
    pub unverified: Vec<Unverified>,
}

#[derive(Serialize)]
pub struct Unverified {
    pub minute: String,
    pub offset: u64,
    pub bytes: u64,
}

#[derive(Serialize)]
pub struct Range {
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Serialize)]
pub struct CoverageSummary {
    /// `store`, `archiver` or `unknown`.
    pub source: String,
    /// One line for people: complete, the holes, or why it is unknown.
    pub summary: String,
    /// Every minute of the range is full. null when unknown.
    pub complete: Option<bool>,
    /// `complete`, `holes` or `lost` for the range; null when unknown.
    pub status: Option<Status>,
    /// Full minutes / minutes of the range, owed or not.
    pub full_share: Option<f64>,
    /// Minutes of the range the archive owes (not before its `owed_from`).
    pub owed_minutes: Option<u64>,
    /// Full minutes / owed minutes.
    pub full_share_owed: Option<f64>,
    pub judged_at: Option<String>,
    pub holes: Vec<Hole>,
}

#[derive(Serialize)]
pub struct MinuteEntry {
    pub t: String,
    pub minute: i64,
    /// `full`, `partial`, `none`, `pending`, `recovering`, `lost`, or `unknown`.
    pub state: String,
    /// The archive's counters for the minute (null when coverage is unknown).
    pub counts: Option<Counts>,
    /// Records of this minute in the export (after --kinds and compliance).
    pub exported: u64,
}

pub struct Args<'a> {
    pub data: &'a Path,
    pub stream: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
    pub format: &'static str,
    pub compression: &'static str,
    pub out: Option<String>,
    pub partitions: Option<Vec<crate::hive::Partition>>,
    pub bytes: u64,
    pub kinds: &'a [ActivityKind],
    pub compliance: crate::compliance::ManifestCompliance,
    pub records: u64,
    pub raw_bytes: u64,
    pub by_kind: &'a BTreeMap<&'static str, u64>,
    pub exported: &'a BTreeMap<i64, u64>,
    pub coverage: &'a CoverageInfo,
    /// (minute, offset, bytes) of segments with bytes that did not verify.
    pub unverified: &'a [(gapless_storage::Minute, u64, u64)],
}

impl Manifest {
    pub fn new(a: Args) -> Manifest {
        let first = a.from_ms.div_euclid(60_000);
        let last = (a.to_ms - 1).div_euclid(60_000);
        let (coverage, rows) = match a.coverage {
            CoverageInfo::Known(r) => {
                let s = r.streams.first();
                let rows: BTreeMap<i64, (State, Counts)> =
                    s.map(|s| s.minutes.iter().map(|m| (m.minute, (m.state, m.counts))).collect()).unwrap_or_default();
                let complete = (first..=last).all(|m| rows.get(&m).is_some_and(|r| r.0 == State::Full));
                let holes = s.map(|s| s.holes.clone()).unwrap_or_default();
                let summary = if complete {
                    "complete: every minute of the range is full".to_string()
                } else {
                    let not_full = (first..=last).filter(|m| rows.get(m).is_none_or(|r| r.0 != State::Full)).count();
                    format!("incomplete: {not_full} of {} minutes not full, {} holes", last - first + 1, holes.len())
                };
                (
                    CoverageSummary {
                        source: r.source.clone(),
                        summary,
                        complete: Some(complete),
                        status: s.map(|s| s.status),
                        full_share: s.map(|s| s.totals.full_share),
                        owed_minutes: s.map(|s| s.totals.owed),
                        full_share_owed: s.map(|s| s.totals.full_share_owed),
                        judged_at: Some(r.now.clone()),
                        holes,
                    },
                    rows,
                )
            }
            CoverageInfo::Unknown(why) => (
                CoverageSummary {
                    source: "unknown".into(),
                    summary: why.clone(),
                    complete: None,
                    status: None,
                    full_share: None,
                    owed_minutes: None,
                    full_share_owed: None,
                    judged_at: None,
                    holes: Vec::new(),
                },
                BTreeMap::new(),
            ),
        };
        // Every minute of the range when coverage is known; otherwise the
        // minutes that hold exported records.
        let wanted: Vec<i64> =
            if rows.is_empty() { a.exported.keys().copied().collect() } else { (first..=last).collect() };
        let minutes = wanted
            .into_iter()
            .map(|m| {
                let row = rows.get(&m);
                MinuteEntry {
                    t: rfc3339(m * 60),
                    minute: m,
                    state: row.map(|r| r.0.as_str()).unwrap_or("unknown").to_string(),
                    counts: row.map(|r| r.1),
                    exported: a.exported.get(&m).copied().unwrap_or(0),
                }
            })
            .collect();
        Manifest {
            schema: SCHEMA,
            tool: "segment-export",
            version: env!("CARGO_PKG_VERSION"),
            created_at: rfc3339_ms(gapless_client::now_ms()),
            data: a.data.display().to_string(),
            stream: a.stream.to_string(),
            range: Range { from: rfc3339_ms(a.from_ms), to: rfc3339_ms(a.to_ms), from_ms: a.from_ms, to_ms: a.to_ms },
            format: a.format,
            compression: a.compression,
            output: a.out,
            partitions: a.partitions,
            output_bytes: a.bytes,
            kinds: a.kinds.iter().map(|k| k.name()).collect(),
            compliance: a.compliance,
            records: a.records,
            raw_bytes: a.raw_bytes,
            records_by_kind: a.by_kind.clone(),
            coverage: if a.unverified.is_empty() {
                coverage
            } else {
                CoverageSummary {
                    complete: Some(false),
                    summary: format!(
                        "incomplete: {} segments have bytes that do not verify (see unverified); {}",
                        a.unverified.len(),
                        coverage.summary
                    ),
                    ..coverage
                }
            },
            minutes,
            unverified: a
                .unverified
                .iter()
                .map(|(m, offset, bytes)| Unverified { minute: m.to_string(), offset: *offset, bytes: *bytes })
                .collect(),
        }
    }
}
