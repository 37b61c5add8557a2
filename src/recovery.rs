//! A Recovery request: replays `[start, end)` oldest minute first, then
//! sends `Recovery Request Completed` and closes.
//!
//! On completion the job claims its whole range; on a stream that never
//! pauses (Decahose, Firehose, Likes) only as far as its data is
//! continuous (`continuity.rs`): a gap between activities longer than the
//! data-silence bound inside the delivered data, or at either end of the
//! range, is a hole left for the planner, and the job counts as failed for
//! the backoff. PowerTrack may be quiet for minutes: there the completion
//! message is the proof. If a job breaks off, it claims up to the start of
//! the minute of the last activity it delivered (delivery is
//! chronological, so everything before that minute is in; on streams that
//! never pause, again only the continuous parts), and records that
//! progress so the next request resumes there. That watermark is monotone
//! and counts only activity times inside the job's range: one activity
//! with a wild time cannot push the claim.

use std::ops::Range;

use chrono::{DateTime, SecondsFormat, Utc};
use gapless_storage::coverage::{JobRecord, JobState};
use gapless_storage::Minute;
use tracing::Instrument;

use crate::connection::{activity_times, read_body, request, End, StreamCtx, Tracker};
use crate::continuity::{Coverage, DataBound};
use crate::lines::Batch;
use crate::metrics::{ConnectionState, JobStatus};

/// What a Recovery connection delivered.
struct Replay {
    /// The job's range from its resume point (Unix seconds).
    range: Range<i64>,
    /// The newest activity time delivered inside the range: a monotone
    /// watermark (a time outside the range, wild or not, moves nothing).
    newest_ms: Option<i64>,
    /// On streams that never pause: where the data is, the bound, and the
    /// rate the realtime connections observed (per request).
    seen: Option<(Coverage, DataBound, Option<f64>)>,
}

impl Replay {
    fn new(range: Range<i64>, bound: Option<DataBound>, prior: Option<f64>) -> Replay {
        let seen = bound.map(|b| (Coverage::new(range.start * 1000..range.end * 1000), b, prior));
        Replay { range, newest_ms: None, seen }
    }

    /// What the job may claim as it ended (Unix seconds, oldest first), and
    /// how far it got: its next resume point.
    fn outcome(&self, completed: bool) -> (Vec<Range<i64>>, i64) {
        let Range { start, end } = self.range;
        let upto = if completed {
            end
        } else {
            self.newest_ms.map_or(start, |ms| Minute::of_ms(ms).start_secs()).clamp(start, end)
        };
        let claims = match &self.seen {
            None => (start < upto).then_some(start..upto).into_iter().collect(),
            Some((coverage, bound, prior)) => {
                let rate = match (coverage.rate(), *prior) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                coverage.runs(upto * 1000, bound.at_rate(rate))
            }
        };
        (claims, upto)
    }
}

impl Tracker for Replay {
    fn observe(&mut self, batch: &Batch, _now_ms: i64) -> Option<End> {
        let (from, to) = (self.range.start * 1000, self.range.end * 1000);
        for t in activity_times(batch) {
            if (from..to).contains(&t) {
                self.newest_ms = Some(self.newest_ms.map_or(t, |m| m.max(t)));
            }
            if let Some((coverage, _, _)) = self.seen.as_mut() {
                coverage.observe(t);
            }
        }
        None
    }

    fn claims(&mut self, _now_ms: i64) -> Vec<Range<i64>> {
        Vec::new()
    }
}

/// A Unix second as `startTime`/`endTime` in the form of the service's own
/// examples (`2023-07-05T17:09:12.000Z`); logs use [`gapless_time::rfc3339`].
fn request_time(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Runs one attempt of a job from its resume point. Returns how it ended;
/// `job.resume_secs` holds the progress, claimed and recorded. Its events
/// are in a `recovery` span with the job's id and partition (`all`, or
/// its number).
pub async fn run_job(ctx: &StreamCtx, job: &mut JobRecord) -> End {
    let partition = job.partition.map_or_else(|| "all".to_string(), |p| p.to_string());
    let span = tracing::info_span!("recovery", job = job.id, %partition);
    attempt(ctx, job).instrument(span).await
}

async fn attempt(ctx: &StreamCtx, job: &mut JobRecord) -> End {
    job.attempts += 1;
    job.state = JobState::Running;
    let _ = ctx.coverage.put_job(job);
    let name = format!("recovery-{}", job.id);
    let mut url =
        format!("{}?startTime={}&endTime={}", ctx.cfg.url, request_time(job.resume_secs), request_time(job.end_secs));
    if let Some(p) = job.partition {
        url.push_str(&format!("&partition={p}"));
    }
    show(ctx, job, ConnectionState::Connecting);
    let end = match request(ctx, &url).await {
        Err(end) => end,
        Ok(resp) => {
            tracing::info!(from = %gapless_time::rfc3339(job.resume_secs), to = %gapless_time::rfc3339(job.end_secs), "recovery started");
            show(ctx, job, ConnectionState::Connected);
            // A request for every partition delivers all of them.
            let partitions = if job.partition.is_some() { 1.0 } else { f64::from(ctx.cfg.coverage_partitions()) };
            let prior = ctx.metrics.observed_rate().map(|r| r * partitions);
            let bound = if ctx.cfg.kind.never_pauses() { ctx.cfg.data_bound() } else { None };
            let mut replay = Replay::new(job.resume_secs..job.end_secs, bound, prior);
            let mut end = read_body(ctx, &name, job.partition, resp, &mut replay).await;
            let (claims, upto) = replay.outcome(end == End::Completed);
            let whole = claims.len() == 1 && claims[0] == (job.resume_secs..upto);
            let mut recorded = true;
            for c in &claims {
                recorded &= ctx.claim_and_wait(job.partition, c.clone()).await;
            }
            if recorded && upto > job.resume_secs {
                if !whole {
                    let holes = crate::planner::subtract(std::slice::from_ref(&(job.resume_secs..upto)), &claims);
                    tracing::warn!(holes = ?holes, "recovery delivered data with gaps longer than the data-silence bound: they stay holes");
                    if end == End::Completed {
                        end = End::CompletedWithGaps;
                    }
                }
                job.resume_secs = upto;
            }
            end
        }
    };
    if matches!(end, End::Completed | End::CompletedWithGaps) || job.resume_secs >= job.end_secs {
        let gaps = if end == End::CompletedWithGaps { " (with gaps: they stay holes)" } else { "" };
        tracing::info!(from = %gapless_time::rfc3339(job.start_secs), to = %gapless_time::rfc3339(job.end_secs), "recovery completed{gaps}");
        let _ = ctx.coverage.remove_job(&ctx.cfg.label, job.id);
    } else {
        tracing::warn!(reason = ?end, resume = %gapless_time::rfc3339(job.resume_secs), "recovery broke off; it resumes from its progress");
        job.state = JobState::Queued;
        let _ = ctx.coverage.put_job(job);
    }
    if let Ok(mut jobs) = ctx.metrics.jobs.lock() {
        jobs.remove(&job.id);
    }
    end
}

/// Shows a job in flight in `/status`.
fn show(ctx: &StreamCtx, job: &JobRecord, connection: ConnectionState) {
    if let Ok(mut jobs) = ctx.metrics.jobs.lock() {
        jobs.insert(
            job.id,
            JobStatus {
                id: job.id,
                start_secs: job.start_secs,
                end_secs: job.end_secs,
                progress_secs: job.resume_secs,
                state: job.state,
                connection,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn batch(times: impl Iterator<Item = i64>) -> Batch {
        crate::lines::posts_at(times)
    }

    const S: i64 = 1_700_000_040; // a whole minute
    const DECAHOSE: DataBound = DataBound::Derived { default_ms: 1000, cap_ms: 30_000 };

    fn every(from_ms: i64, to_ms: i64, step: i64) -> impl Iterator<Item = i64> {
        (0..).map(move |i| from_ms + i * step).take_while(move |t| *t < to_ms)
    }

    #[test]
    fn a_completed_job_covers_its_range_only_as_far_as_its_data_is_continuous() {
        // Ten minutes; the service's data lacks 3:00 to 3:30 and the last 20 s.
        let mut r = Replay::new(S..S + 600, Some(DECAHOSE), Some(300.0));
        let t = |s: i64| (S + s) * 1000;
        r.observe(&batch(every(t(0), t(180), 7)), 0);
        r.observe(&batch(every(t(210), t(580), 7)), 0);
        let (claims, upto) = r.outcome(true);
        assert_eq!(upto, S + 600);
        assert_eq!(claims, vec![S..S + 179, S + 211..S + 579]);
        // PowerTrack (no bound): the completion message is the proof.
        let mut p = Replay::new(S..S + 600, None, None);
        p.observe(&batch(every(t(0), t(10), 1000)), 0);
        assert_eq!(p.outcome(true), (vec![S..S + 600], S + 600));
    }

    #[test]
    fn a_broken_job_ignores_activity_times_outside_its_range() {
        // Issue 9, item 9: one activity with a wild time (a day ahead, or
        // before the range) must not push the claim of a broken job.
        for bound in [None, Some(DECAHOSE)] {
            let mut r = Replay::new(S..S + 600, bound, Some(300.0));
            r.observe(&batch(every(S * 1000, (S + 150) * 1000, 7)), 0);
            r.observe(&batch([(S + 86_400) * 1000, (S - 3600) * 1000].into_iter()), 0);
            r.observe(&batch(every((S + 150) * 1000, (S + 170) * 1000, 7)), 0);
            assert_eq!(r.outcome(false), (vec![S..S + 120], S + 120), "bound {bound:?}");
        }
    }

    #[test]
    fn a_broken_job_claims_up_to_the_minute_of_its_last_activity() {
        let mut r = Replay::new(S..S + 600, Some(DECAHOSE), Some(300.0));
        r.observe(&batch(every(S * 1000, (S + 150) * 1000, 7)), 0);
        assert_eq!(r.outcome(false), (vec![S..S + 120], S + 120));
        let mut p = Replay::new(S..S + 600, None, None);
        p.observe(&batch(every(S * 1000, (S + 150) * 1000, 7)), 0);
        assert_eq!(p.outcome(false), (vec![S..S + 120], S + 120));
    }
}
