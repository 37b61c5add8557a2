//! A Recovery request: replays `[start, end)` oldest minute first, then
//! sends `Recovery Request Completed` and closes.
//!
//! On completion the job claims its whole range. If it breaks off, it
//! claims up to the start of the minute of the last activity it delivered
//! (delivery is chronological, so everything before that minute is in), and
//! records that progress so the next request resumes there.

use std::ops::Range;

use chrono::{DateTime, SecondsFormat, Utc};
use gapless_storage::activity::Line;
use gapless_storage::coverage::{JobRecord, JobState};
use gapless_storage::Minute;

use crate::connection::{read_body, request, End, StreamCtx, Tracker};
use crate::lines::Batch;
use crate::metrics::JobState as ShownJob;

struct Replay {
    newest_ms: Option<i64>,
}

impl Tracker for Replay {
    fn observe(&mut self, batch: &Batch, _now_ms: i64) -> (Vec<Range<i64>>, Option<End>) {
        for c in batch.classified() {
            if let Ok(Line::Activity(a)) = c {
                self.newest_ms = Some(self.newest_ms.map_or(a.time_ms, |m| m.max(a.time_ms)));
            }
        }
        (Vec::new(), None)
    }

    fn tick(&mut self, _now_ms: i64) -> Option<Range<i64>> {
        None
    }
}

fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Runs one attempt of a job from its resume point. Returns how it ended;
/// `job.resume_secs` holds the progress, claimed and recorded.
pub async fn run_job(ctx: &StreamCtx, job: &mut JobRecord) -> End {
    job.attempts += 1;
    job.state = JobState::Running;
    let _ = ctx.coverage.put_job(job);
    let name = format!("recovery-{}", job.id);
    let mut url = format!("{}?startTime={}&endTime={}", ctx.cfg.url, rfc3339(job.resume_secs), rfc3339(job.end_secs));
    if let Some(p) = job.partition {
        url.push_str(&format!("&partition={p}"));
    }
    show(ctx, job, "connecting");
    let end = match request(ctx, &url).await {
        Err(end) => end,
        Ok(resp) => {
            tracing::info!(stream = %ctx.cfg.label, job = job.id, from = %rfc3339(job.resume_secs), to = %rfc3339(job.end_secs), "recovery started");
            show(ctx, job, "running");
            let mut replay = Replay { newest_ms: None };
            let end = read_body(ctx, &name, job.partition, resp, &mut replay).await;
            let upto = match &end {
                End::Completed => job.end_secs,
                _ => replay.newest_ms.map_or(job.resume_secs, |ms| Minute::of_ms(ms).start_secs()).clamp(job.resume_secs, job.end_secs),
            };
            if upto > job.resume_secs && ctx.claim_and_wait(job.partition, job.resume_secs..upto).await {
                job.resume_secs = upto;
            }
            end
        }
    };
    if end == End::Completed || job.resume_secs >= job.end_secs {
        tracing::info!(stream = %ctx.cfg.label, job = job.id, from = %rfc3339(job.start_secs), to = %rfc3339(job.end_secs), "recovery completed");
        let _ = ctx.coverage.remove_job(&ctx.cfg.label, job.id);
    } else {
        tracing::warn!(stream = %ctx.cfg.label, job = job.id, reason = ?end, resume = %rfc3339(job.resume_secs), "recovery broke off; it resumes from its progress");
        job.state = JobState::Queued;
        let _ = ctx.coverage.put_job(job);
    }
    if let Ok(mut jobs) = ctx.metrics.jobs.lock() {
        jobs.remove(&job.id);
    }
    end
}

fn show(ctx: &StreamCtx, job: &JobRecord, state: &'static str) {
    if let Ok(mut jobs) = ctx.metrics.jobs.lock() {
        jobs.insert(
            job.id,
            ShownJob { id: job.id, start_secs: job.start_secs, end_secs: job.end_secs, progress_secs: job.resume_secs, state },
        );
    }
}
