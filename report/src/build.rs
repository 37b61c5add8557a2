//! Computes a [`Report`] from a coverage map. Pure over the map: the
//! archiver can call [`build`] on its open map to serve `/coverage` with
//! exactly the schema `inspect-coverage --json` prints.

use gapless_storage::coverage::{Coverage, CoverageMap, JobState, Overlay};
use gapless_storage::Minute;
use gapless_time::rfc3339;

use crate::query::Query;
use crate::schema::*;
use crate::Error;

/// Minutes either side whose volume a full minute is compared with.
pub const SUSPECT_NEIGHBOURS: i64 = 30;
/// Below this median volume nothing is suspect (too little to judge).
pub const SUSPECT_MIN_MEDIAN: u64 = 10;

/// Builds the report of `q` from `map`. `source` is `"store"` or
/// `"archiver"`; `version` the caller's version.
pub fn build(map: &CoverageMap, q: &Query, source: &str, version: &str) -> Result<Report, Error> {
    let now = q.now_secs.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let streams = if q.streams.is_empty() { map.streams()? } else { q.streams.clone() };
    let (from, to) = q.minute_window();
    let mut out = Vec::new();
    for s in &streams {
        out.push(stream_report(map, q, s, now, from, to).map_err(|e| match e {
            e @ gapless_storage::Error::UnknownStream(_) => Error::Storage(e),
            e => Error::Stream { stream: s.clone(), source: e },
        })?);
    }
    Ok(assemble(out, q, now, from, to, source, version))
}

/// Puts stream reports together with the totals and the verdict.
pub fn assemble(
    streams: Vec<StreamReport>,
    q: &Query,
    now: i64,
    from: i64,
    to: i64,
    source: &str,
    version: &str,
) -> Report {
    let mut totals = Totals::default();
    for s in &streams {
        totals.add(&s.totals);
    }
    totals.finish();
    let status = streams.iter().map(|s| s.status).max().unwrap_or(Status::Complete);
    Report {
        schema: SCHEMA.to_string(),
        source: source.to_string(),
        version: version.to_string(),
        now: rfc3339(now),
        now_secs: now,
        window: Window { from: rfc3339(from), to: rfc3339(to), from_secs: from, to_secs: to },
        pending_secs: q.pending_secs,
        recovery_window_secs: q.recovery_window_secs,
        suspect_ratio: q.suspect_ratio,
        streams,
        totals,
        status,
        exit_code: status.exit_code(),
    }
}

/// Sorted disjoint runs: how many seconds of `[s, e)` they cover. `i` is a
/// cursor that only moves forward (queries must come in order).
fn covered_secs(runs: &[(i64, i64)], i: &mut usize, s: i64, e: i64) -> i64 {
    while *i < runs.len() && runs[*i].1 <= s {
        *i += 1;
    }
    let mut n = 0;
    let mut j = *i;
    while j < runs.len() && runs[j].0 < e {
        n += runs[j].1.min(e) - runs[j].0.max(s);
        j += 1;
    }
    n
}

fn overlaps(runs: &[(i64, i64)], s: i64, e: i64) -> bool {
    runs.iter().any(|r| r.0 < e && s < r.1)
}

fn stream_report(
    map: &CoverageMap,
    q: &Query,
    stream: &str,
    now: i64,
    from: i64,
    to: i64,
) -> Result<StreamReport, gapless_storage::Error> {
    let parts = map.partitions(stream)?.ok_or_else(|| gapless_storage::Error::UnknownStream(stream.to_string()))?;
    let minutes = Minute(from / 60)..Minute(to / 60);
    let reports = map.minute_states(stream, minutes, now, q.pending_secs)?;
    let pending_after = now.saturating_sub(q.pending_secs);
    // The stream's own window when the archiver recorded it (Likes: only
    // Backfill's reach), else the query's.
    let window = map.recovery_window(stream)?.unwrap_or(q.recovery_window_secs);
    let cutoff = now.saturating_sub(window);
    let owed = map.owed_from(stream)?;
    let owed_start = owed.unwrap_or(i64::MIN);
    let lost: Vec<(i64, i64)> = map.lost(stream, from..to)?.into_iter().map(|r| (r.start, r.end)).collect();
    let job_records = map.jobs(stream)?;
    let running: Vec<(Option<u32>, i64, i64, u64)> = job_records
        .iter()
        .filter(|j| j.state == JobState::Running && j.resume_secs < j.end_secs)
        .map(|j| (j.partition, j.resume_secs, j.end_secs, j.id))
        .collect();
    let queued: Vec<(i64, i64, u64)> =
        job_records.iter().filter(|j| j.state == JobState::Queued).map(|j| (j.resume_secs, j.end_secs, j.id)).collect();
    let part_runs: Vec<Vec<(i64, i64)>> = (1..=parts)
        .map(|p| map.covered_ranges(stream, p, from..to).map(|v| v.into_iter().map(|r| (r.start, r.end)).collect()))
        .collect::<Result<_, _>>()?;

    // Minutes.
    let mut cursors = vec![0usize; parts as usize];
    let mut rows = Vec::with_capacity(reports.len());
    for r in &reports {
        let (s, e) = (r.minute.start_secs(), r.minute.start_secs() + 60);
        let expired = e <= cutoff;
        let not_owed = e <= owed_start;
        let coverage = match r.coverage {
            Coverage::Full => State::Full,
            Coverage::Partial => State::Partial,
            Coverage::None => State::None,
        };
        let overlay = match r.overlay {
            _ if not_owed => None,
            Some(Overlay::Recovering) => Some(State::Recovering),
            Some(Overlay::Lost) => Some(State::Lost),
            Some(Overlay::Pending) => Some(State::Pending),
            None if coverage != State::Full && expired => Some(State::Lost),
            None => None,
        };
        let lost_here = overlaps(&lost, s, e);
        let mut pstates = Vec::with_capacity(parts as usize);
        for (i, runs) in part_runs.iter().enumerate() {
            let n = covered_secs(runs, &mut cursors[i], s, e);
            let p = i as u32 + 1;
            let st = if n == 60 {
                State::Full
            } else if not_owed {
                if n > 0 {
                    State::Partial
                } else {
                    State::None
                }
            } else if running.iter().any(|j| j.0.is_none_or(|jp| jp == p) && j.1 < e && s < j.2) {
                State::Recovering
            } else if lost_here || expired {
                State::Lost
            } else if e > pending_after {
                State::Pending
            } else if n > 0 {
                State::Partial
            } else {
                State::None
            };
            pstates.push(st);
        }
        let counts = r.counts;
        rows.push(MinuteRow {
            t: rfc3339(s),
            minute: r.minute.0,
            state: overlay.unwrap_or(coverage),
            coverage,
            overlay,
            partitions: pstates,
            counts,
            balanced: counts.balanced(),
            suspect: false,
            segment_records: None,
        });
    }

    // Audit.
    let mut audit = Audit::default();
    for row in &rows {
        if !row.balanced {
            audit.unbalanced.push(AuditMinute {
                t: row.t.clone(),
                minute: row.minute,
                counts: row.counts,
                neighbour_median: None,
                segment_records: None,
            });
        }
    }
    let suspects = suspect_minutes(&rows, q.suspect_ratio);
    for (i, median) in suspects {
        rows[i].suspect = true;
        let row = &rows[i];
        audit.suspect.push(AuditMinute {
            t: row.t.clone(),
            minute: row.minute,
            counts: row.counts,
            neighbour_median: Some(median),
            segment_records: None,
        });
    }

    // Holes, outside the pending tail.
    let judge_end = (pending_after.div_euclid(60) * 60).clamp(from, to);
    let judge_start = owed_start.clamp(from, to);
    let mut holes = Vec::new();
    if judge_start < judge_end {
        for h in map.holes(stream, judge_start..judge_end)? {
            for (s, e, is_lost) in split_by(&lost, h.start, h.end) {
                let pieces = if is_lost {
                    vec![(s, e, HoleState::Lost)]
                } else if e <= cutoff {
                    vec![(s, e, HoleState::Expired)]
                } else if s < cutoff {
                    vec![(s, cutoff, HoleState::Expired), (cutoff, e, HoleState::Recoverable)]
                } else {
                    vec![(s, e, HoleState::Recoverable)]
                };
                for (s, e, mut state) in pieces {
                    let run = running.iter().find(|j| j.1 < e && s < j.2);
                    let job = run.map(|j| j.3).or_else(|| queued.iter().find(|j| j.0 < e && s < j.1).map(|j| j.2));
                    if state == HoleState::Recoverable && run.is_some() {
                        state = HoleState::Recovering;
                    }
                    let partitions = part_runs
                        .iter()
                        .enumerate()
                        .filter(|(_, runs)| !runs.iter().any(|r| r.0 <= s && e <= r.1))
                        .map(|(i, _)| i as u32 + 1)
                        .collect();
                    let leaves = s.saturating_add(window);
                    holes.push(Hole {
                        start: rfc3339(s),
                        end: rfc3339(e),
                        start_secs: s,
                        end_secs: e,
                        length_secs: e - s,
                        state,
                        leaves_window_at: rfc3339(leaves),
                        leaves_window_in_secs: leaves - now,
                        partitions,
                        job,
                    });
                }
            }
        }
    }

    let jobs: Vec<Job> = job_records
        .iter()
        .map(|j| Job {
            id: j.id,
            partition: j.partition,
            state: match j.state {
                JobState::Queued => "queued",
                JobState::Running => "running",
                JobState::Failed => "failed",
            }
            .to_string(),
            start: rfc3339(j.start_secs),
            end: rfc3339(j.end_secs),
            resume: rfc3339(j.resume_secs),
            start_secs: j.start_secs,
            end_secs: j.end_secs,
            resume_secs: j.resume_secs,
            remaining_secs: j.end_secs - j.resume_secs,
            attempts: j.attempts,
        })
        .collect();

    let mut totals = Totals { minutes: rows.len() as u64, ..Totals::default() };
    for row in &rows {
        let owed = row.minute * 60 + 60 > owed_start;
        if owed {
            totals.owed += 1;
            totals.full_owed += u64::from(row.state == State::Full);
        } else if row.state != State::Full {
            totals.not_owed += 1;
        }
        match row.state {
            State::Full => totals.full += 1,
            State::Partial => totals.partial += 1,
            State::None => totals.none += 1,
            State::Pending => totals.pending += 1,
            State::Recovering => totals.recovering += 1,
            State::Lost => totals.lost += 1,
        }
        totals.counts.add(&row.counts);
    }
    totals.holes = holes.len() as u64;
    for h in &holes {
        totals.hole_secs += h.length_secs;
        if h.state.is_lost() {
            totals.lost_secs += h.length_secs;
        } else {
            totals.recoverable_secs += h.length_secs;
        }
    }
    for j in &jobs {
        match j.state.as_str() {
            "queued" => totals.jobs_queued += 1,
            "running" => totals.jobs_running += 1,
            _ => totals.jobs_failed += 1,
        }
    }
    totals.unbalanced_minutes = audit.unbalanced.len() as u64;
    totals.suspect_minutes = audit.suspect.len() as u64;
    totals.finish();
    let status = if holes.iter().any(|h| h.state.is_lost()) {
        Status::Lost
    } else if !holes.is_empty() {
        Status::Holes
    } else {
        Status::Complete
    };
    Ok(StreamReport {
        recovery_window_secs: window,
        stream: stream.to_string(),
        partitions: parts,
        owed_from: owed.map(rfc3339),
        owed_from_secs: owed,
        minutes: rows,
        holes,
        lost: lost.iter().map(|&(s, e)| Span::new(s, e)).collect(),
        jobs,
        audit,
        totals,
        status,
    })
}

/// Splits `[s, e)` into pieces inside and outside the sorted runs `by`.
fn split_by(by: &[(i64, i64)], s: i64, e: i64) -> Vec<(i64, i64, bool)> {
    let mut out = Vec::new();
    let mut at = s;
    for &(rs, re) in by {
        if re <= at || rs >= e {
            continue;
        }
        if rs > at {
            out.push((at, rs, false));
        }
        let end = re.min(e);
        out.push((rs.max(at), end, true));
        at = end;
    }
    if at < e {
        out.push((at, e, false));
    }
    out
}

/// Full minutes whose `stored` is below `ratio` times the median `stored`
/// of the full minutes within [`SUSPECT_NEIGHBOURS`] either side; returns
/// their indices and that median.
pub fn suspect_minutes(rows: &[MinuteRow], ratio: f64) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(2 * SUSPECT_NEIGHBOURS as usize);
    for (i, row) in rows.iter().enumerate() {
        if row.coverage != State::Full {
            continue;
        }
        buf.clear();
        let lo = i.saturating_sub(SUSPECT_NEIGHBOURS as usize);
        let hi = (i + SUSPECT_NEIGHBOURS as usize + 1).min(rows.len());
        buf.extend((lo..hi).filter(|&j| j != i && rows[j].coverage == State::Full).map(|j| rows[j].counts.stored));
        if buf.len() < 4 {
            continue;
        }
        buf.sort_unstable();
        let median = buf[buf.len() / 2];
        if median >= SUSPECT_MIN_MEDIAN && (row.counts.stored as f64) < ratio * median as f64 {
            out.push((i, median));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_by_lost_runs() {
        assert_eq!(split_by(&[(10, 20)], 0, 30), vec![(0, 10, false), (10, 20, true), (20, 30, false)]);
        assert_eq!(split_by(&[(0, 5), (25, 40)], 2, 30), vec![(2, 5, true), (5, 25, false), (25, 30, true)]);
        assert_eq!(split_by(&[], 2, 30), vec![(2, 30, false)]);
    }

    #[test]
    fn covered_seconds_per_minute() {
        let runs = [(0, 30), (50, 130)];
        let mut i = 0;
        assert_eq!(covered_secs(&runs, &mut i, 0, 60), 40);
        assert_eq!(covered_secs(&runs, &mut i, 60, 120), 60);
        assert_eq!(covered_secs(&runs, &mut i, 120, 180), 10);
        assert_eq!(covered_secs(&runs, &mut i, 180, 240), 0);
    }
}
