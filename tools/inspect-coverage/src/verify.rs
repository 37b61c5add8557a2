//! `--verify-segments`: checks the counters against the segments. For
//! every minute of the window, the records in the minute's segment (from
//! frame headers whose CRC holds; payloads are not read) are compared with
//! the `stored` counter. Segments are plain files, so this works while the
//! archiver runs (with `--admin` for the rest of the report).
//!
//! A record is counted once per key, as readers read it: a minute that
//! several sites of a bucket hold is their frames one after another
//! (`gapless_bucket::replica`), and an activity both sites stored is in
//! it twice but is one record.
//!
//! A minute evicted to the bucket (`[archive] local_max`: an eviction
//! marker, with or without a segment again) is not checked here: its
//! records are in the bucket, so its row gets no `segment_records` and it
//! is no mismatch; the terminal view says how many minutes are "in the
//! bucket". `--data s3://BUCKET/PREFIX --verify-segments` checks them.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use gapless_storage::layout::{segment_path, stream_dir};
use gapless_storage::Minute;

use gapless_report::schema::{AuditMinute, Report};

/// Records (distinct keys) in the segment of `minute`, or 0 when there is none.
pub fn segment_records(data: &Path, stream: &str, minute: Minute) -> Result<u64> {
    let path = segment_path(&stream_dir(data, stream), minute);
    if !path.exists() {
        return Ok(0);
    }
    match gapless_storage::segment::read_headers(&path) {
        Ok((_, frames)) => {
            let keys: HashSet<_> = frames.iter().flat_map(|f| f.header.entries.iter().map(|e| e.key)).collect();
            Ok(keys.len() as u64)
        }
        // A segment being created this instant has no header yet.
        Err(gapless_storage::Error::NotASegment { reason, .. }) if reason.contains("shorter than its header") => Ok(0),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Fills in `segment_records` and the `segment_mismatch` audit.
pub fn verify(report: &mut Report, data: &Path) -> Result<()> {
    for s in &mut report.streams {
        let mut mismatches = Vec::new();
        let evicted: std::collections::BTreeSet<Minute> = match (s.minutes.first(), s.minutes.last()) {
            (Some(a), Some(b)) => {
                gapless_client::segments::evicted_minutes(data, &s.stream, Minute(a.minute), Minute(b.minute + 1))?
                    .into_iter()
                    .collect()
            }
            _ => Default::default(),
        };
        for row in &mut s.minutes {
            if evicted.contains(&Minute(row.minute)) {
                row.segment_records = None;
                continue;
            }
            let n = segment_records(data, &s.stream, Minute(row.minute))?;
            row.segment_records = Some(n);
            if n != row.counts.stored {
                mismatches.push(AuditMinute {
                    t: row.t.clone(),
                    minute: row.minute,
                    counts: row.counts,
                    neighbour_median: None,
                    segment_records: Some(n),
                });
            }
        }
        s.totals.segment_mismatch_minutes = mismatches.len() as u64;
        s.audit.segment_mismatch = mismatches;
        s.audit.segments_verified = true;
    }
    report.totals.segment_mismatch_minutes = report.streams.iter().map(|s| s.totals.segment_mismatch_minutes).sum();
    Ok(())
}
