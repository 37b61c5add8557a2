//! The recovery planner: turns holes into Recovery jobs until no hole
//! remains inside the window, and says what was lost.
//!
//! Each pass (every few seconds of stream time):
//! - reads the holes of the stream from the coverage map, from the time
//!   coverage is owed (the archive's first start, or `--since`) to the
//!   pending horizon (newer seconds may still be claimed by a live
//!   connection);
//! - a hole that touches the live edge and is younger than Backfill's reach
//!   is left to the realtime connection, which reconnects with
//!   `backfillMinutes`;
//! - a hole that left the recovery window, or, on a stream without
//!   Recovery (Likes), a hole that Backfill can no longer reach, is marked
//!   `lost` and logged loudly;
//! - on a stream without Recovery, a closed hole that Backfill still
//!   reaches makes the connections that miss it reconnect with a backfill
//!   from its start (once per hole, through [`StreamCtx::refill`]);
//! - the other holes become jobs, each for the partitions that miss its
//!   range: one job for all partitions where all miss it, else one job per
//!   partition ([`requests`]), so that a hole in one of the Firehose's 20
//!   partitions costs one partition's traffic;
//! - with a bucket (`[archive]`), what the stream's other sites cover
//!   there is not asked for (read by the uploader each round; the planner
//!   waits up to `upload::PEERS_WAIT` after start for the first read): a
//!   site keeps its own holes, and the union in the bucket has none; such
//!   a hole leaving the window is said once, not as DATA LOST;
//! - jobs are chunked (about an hour), oldest first
//!   (they expire first), at most two running at once per account (the
//!   service's limit; streams of one account share them), each within the
//!   stream's connection limiter; a job that breaks keeps its progress,
//!   and the remainder is planned again.
//!
//! # Recorded jobs
//! Every pass reconciles the jobs recorded in the store with the holes
//! ([`reconcile`], a pure function): each piece of hole to repair keeps
//! the queued job that overlaps it (a hole that grows extends its job, a
//! job whose start got covered is moved up, and a broken job keeps its id
//! and attempts), new pieces get new queued jobs, and a queued job that
//! matches no hole (its range is covered, or it duplicates another) is
//! removed. Running jobs are left alone and their ranges are not planned.
//! So no two recorded jobs overlap and none outlives its hole, also while
//! the service refuses Recovery and jobs wait in backoff.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use gapless_storage::coverage::{JobRecord, JobState};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff::{Backoff, Cause};
use crate::connection::{End, StreamCtx, BACKFILL_MAX_MINUTES};
use crate::recovery::run_job;
use crate::writer::COMMIT_INTERVAL;

/// Seconds kept clear of the window's far edge, so that a request does not
/// race the window as it moves.
const WINDOW_MARGIN_SECS: i64 = 120;
/// The shortest piece of a hole still growing at the live edge that gets
/// a Recovery job of its own.
const MIN_TAIL_SECS: i64 = 60;

/// `a` minus `b`; both sorted and disjoint.
pub fn subtract(a: &[Range<i64>], b: &[Range<i64>]) -> Vec<Range<i64>> {
    let mut out = Vec::new();
    for r in a {
        let mut start = r.start;
        for c in b.iter().filter(|c| c.end > r.start && c.start < r.end) {
            if c.start > start {
                out.push(start..c.start);
            }
            start = start.max(c.end);
        }
        if start < r.end {
            out.push(start..r.end);
        }
    }
    out
}

/// `a` ∩ `b`; both sorted and disjoint.
pub fn intersect(a: &[Range<i64>], b: &[Range<i64>]) -> Vec<Range<i64>> {
    let mut out = Vec::new();
    for r in a {
        for c in b.iter().filter(|c| c.end > r.start && c.start < r.end) {
            out.push(r.start.max(c.start)..r.end.min(c.end));
        }
    }
    out
}

/// A request of Recovery: one partition, or every partition (`None`).
pub type Piece = (Option<u32>, Range<i64>);

/// What Recovery is asked for, given what each partition still needs
/// (`needs[p - 1]`: the ranges partition `p` misses, sorted, disjoint):
/// where every partition needs a range, one request for all of them serves
/// them all; elsewhere one request per partition that needs it, so that a
/// hole in one of the Firehose's 20 partitions costs the traffic of that
/// partition only. Oldest first.
pub fn requests(needs: &[Vec<Range<i64>>]) -> Vec<Piece> {
    let Some(first) = needs.first() else { return Vec::new() };
    let common = needs[1..].iter().fold(first.clone(), |acc, n| intersect(&acc, n));
    let mut out: Vec<Piece> = common.iter().map(|r| (None, r.clone())).collect();
    if needs.len() > 1 {
        for (i, n) in needs.iter().enumerate() {
            out.extend(subtract(n, &common).into_iter().map(|r| (Some(i as u32 + 1), r)));
        }
    }
    out.sort_by_key(|(p, r)| (r.start, *p));
    out
}

/// The recorded jobs after a pass: `keep` is one queued job per piece of
/// `todo`, in order (with `new` set for a job to be given an id: ids start
/// at 0), `remove` the ids of recorded jobs to delete.
#[derive(Debug, Default, PartialEq)]
pub struct Reconciled {
    pub keep: Vec<JobRecord>,
    pub new: Vec<bool>,
    pub remove: Vec<u64>,
}

/// Matches the recorded jobs of a stream with the pieces of hole to repair
/// (`todo`: sorted, disjoint, without the ranges of running jobs). See the
/// module doc.
pub fn reconcile(stream: &str, recorded: &[JobRecord], running: &[u64], todo: &[Piece]) -> Reconciled {
    let mut free: Vec<&JobRecord> = recorded.iter().filter(|j| !running.contains(&j.id)).collect();
    free.sort_by_key(|j| (j.resume_secs, j.id));
    let mut out = Reconciled::default();
    for (partition, piece) in todo {
        let pos = free
            .iter()
            .position(|j| j.partition == *partition && j.resume_secs < piece.end && piece.start < j.end_secs);
        let existing = pos.map(|i| free.remove(i));
        out.new.push(existing.is_none());
        let job = match existing {
            Some(j) => JobRecord {
                start_secs: piece.start,
                resume_secs: piece.start,
                end_secs: piece.end,
                state: JobState::Queued,
                ..j.clone()
            },
            None => JobRecord {
                id: u64::MAX,
                stream: stream.to_string(),
                partition: *partition,
                start_secs: piece.start,
                end_secs: piece.end,
                resume_secs: piece.start,
                state: JobState::Queued,
                attempts: 0,
            },
        };
        out.keep.push(job);
    }
    out.remove = free.iter().map(|j| j.id).collect();
    out
}

/// Splits ranges into pieces of at most `chunk` seconds, aligned to whole
/// chunks since the epoch, so that plans are stable from pass to pass.
pub fn chunk(ranges: &[Range<i64>], chunk: i64) -> Vec<Range<i64>> {
    let chunk = chunk.max(60);
    let mut out = Vec::new();
    for r in ranges {
        let mut s = r.start;
        while s < r.end {
            let e = ((s.div_euclid(chunk) + 1) * chunk).min(r.end);
            out.push(s..e);
            s = e;
        }
    }
    out
}

/// Seconds behind now that are not judged yet: the latency allowance, the
/// commit delay (in stream time) and some slack.
pub fn pending_secs(ctx: &StreamCtx) -> i64 {
    let commit = ctx.clock.wall(Duration::from_secs(1)).as_secs_f64();
    let commit_stream_secs = (COMMIT_INTERVAL.as_secs_f64() * 2.0 / commit.max(1e-9)).ceil() as i64;
    ctx.cfg.liveness.latency_allowance.0.as_secs() as i64 + 5 + commit_stream_secs
}

/// Jobs in flight: id -> (what it requests, task).
type Running = HashMap<u64, (Piece, JoinHandle<(JobRecord, End)>)>;

/// Plans and runs the stream's Recovery jobs until shutdown. Its events,
/// and its jobs', are in a `planner` span (inside the caller's `stream`
/// span).
pub async fn run_planner(ctx: Arc<StreamCtx>, slots: Arc<Semaphore>) {
    plan(ctx, slots).instrument(tracing::info_span!("planner")).await
}

async fn plan(ctx: Arc<StreamCtx>, slots: Arc<Semaphore>) {
    let label = ctx.cfg.label.clone();
    // Jobs of an earlier process are planned afresh from the holes.
    if let Ok(jobs) = ctx.coverage.jobs(&label) {
        for j in jobs {
            let _ = ctx.coverage.remove_job(&label, j.id);
        }
    }
    let mut running: Running = HashMap::new();
    let mut backoff = Backoff::new(ctx.clock.now_ms() as u64 ^ 0x5eed);
    let mut not_before_ms = i64::MIN;
    // The ends of the holes the connections were asked to backfill.
    let mut asked: Vec<i64> = Vec::new();
    let period = Duration::from_secs(5);
    while !ctx.stopping() {
        // Reap finished jobs.
        let done: Vec<u64> = running.iter().filter(|(_, (_, h))| h.is_finished()).map(|(id, _)| *id).collect();
        for id in done {
            if let Some((_, h)) = running.remove(&id) {
                if let Ok((_, end)) = h.await {
                    match end {
                        End::Completed => backoff.reset(),
                        End::Shutdown => {}
                        other => {
                            let cause = other.cause();
                            match backoff.next(&cause) {
                                Some(wait) => not_before_ms = ctx.clock.now_ms() + wait.as_millis() as i64,
                                None => {
                                    tracing::error!(reason = ?other, "RECOVERY REFUSED for good: holes will not be repaired");
                                    not_before_ms = i64::MAX;
                                }
                            }
                            if cause == Cause::RateLimited {
                                tracing::warn!("recovery rate-limited (429); waiting");
                            }
                        }
                    }
                }
            }
        }
        if let Err(e) = pass(&ctx, &slots, &mut running, not_before_ms, &mut asked).await {
            tracing::error!(error = %e, "planner pass failed");
        }
        ctx.sleep(period).await;
    }
    for (_, (_, h)) in running {
        let _ = h.await;
    }
}

async fn pass(
    ctx: &Arc<StreamCtx>,
    slots: &Arc<Semaphore>,
    running: &mut Running,
    not_before_ms: i64,
    asked: &mut Vec<i64>,
) -> anyhow::Result<()> {
    let label = &ctx.cfg.label;
    let now = ctx.clock.now_secs();
    let owed = ctx.coverage.owed_from(label)?.unwrap_or(now);
    let edge = now - pending_secs(ctx);
    if edge <= owed {
        return Ok(());
    }
    let reach = ctx.cfg.reach().as_secs() as i64;
    // The recovery window. A stream without Recovery has none: what it can
    // still repair is what Backfill reaches, judged below.
    let window_start = match ctx.cfg.recovery {
        Some(_) => (now - reach + WINDOW_MARGIN_SECS).max(owed),
        None => owed,
    };
    let holes = ctx.coverage.holes(label, owed..edge)?;
    let lost = ctx.coverage.lost(label, owed..edge)?;
    let open = subtract(&holes, &lost);

    // What can no longer be repaired. A hole at the live edge while every
    // connection is up is delivery lag (or a hole about to close), not a
    // loss: only when some connection is down is its far part beyond
    // Backfill's reach.
    let backfill_reach = now - BACKFILL_MAX_MINUTES * 60 + 30;
    // No connection made from now on reaches back further than five
    // minutes; one made a moment ago may, and its claims may still be on
    // their way to the store (the pending delay).
    let unreachable_before = now - BACKFILL_MAX_MINUTES * 60 - pending_secs(ctx);
    let expected = ctx.cfg.partitions.max(1) as usize * ctx.cfg.connections_per_partition as usize;
    let all_up = ctx.metrics.connected() >= expected;
    let mut newly_lost = Vec::new();
    for h in &open {
        if h.start < window_start {
            newly_lost.push(h.start..h.end.min(window_start));
        }
        if ctx.cfg.recovery.is_none() {
            let closed = h.end < edge;
            let from = h.start.max(window_start);
            let to = if !ctx.cfg.backfill {
                h.end
            } else if !closed && all_up {
                from
            } else {
                h.end.min(unreachable_before)
            };
            if from < to {
                newly_lost.push(from..to);
            }
            // A closed hole that Backfill still reaches: the connections
            // missing it reconnect with a backfill from its start (once
            // per hole; what is still a hole when it leaves Backfill's
            // reach is lost, above).
            let reachable = h.start.max(backfill_reach)..h.end;
            if ctx.cfg.backfill && closed && reachable.start < reachable.end && !asked.contains(&h.end) {
                tracing::info!(
                    from = %gapless_time::rfc3339(reachable.start),
                    to = %gapless_time::rfc3339(reachable.end),
                    "a hole Backfill can still reach: asking the connections to backfill it"
                );
                asked.push(h.end);
                ctx.refill.send_replace(Some(reachable));
            }
        }
    }
    // A hole is asked for once, known by its end (its start moves as its
    // far part is declared lost, pass after pass), as long as it is open.
    asked.retain(|e| open.iter().any(|h| h.end == *e));
    for l in &newly_lost {
        ctx.coverage.mark_lost(label, l.clone())?;
        // A loss that grows pass after pass (a connection down for long)
        // is said once, when it starts, and again when it ends up closed.
        let continues = ctx.metrics.lost_tail.swap(l.end, std::sync::atomic::Ordering::Relaxed) == l.start;
        if continues {
            tracing::debug!(to = %gapless_time::rfc3339(l.end), "the lost stretch grows");
            continue;
        }
        let elsewhere = ctx.peers.as_ref().and_then(|p| p.get()).is_some_and(|peers| {
            (1..=ctx.cfg.coverage_partitions()).all(|p| subtract(std::slice::from_ref(l), peers.covered(p)).is_empty())
        });
        if elsewhere {
            tracing::warn!(
                from = %gapless_time::rfc3339(l.start),
                to = %gapless_time::rfc3339(l.end),
                "not in this site's archive, and no longer repairable here; another site holds it in the bucket"
            );
            continue;
        }
        tracing::error!(
            from = %gapless_time::rfc3339(l.start),
            to = %gapless_time::rfc3339(l.end),
            seconds = l.end - l.start,
            "DATA LOST: this hole can no longer be repaired ({})",
            if ctx.cfg.recovery.is_none() { "the stream has no Recovery and Backfill cannot reach it" } else { "it left the recovery window" }
        );
    }
    let open = subtract(&open, &newly_lost);
    if let Ok(mut h) = ctx.metrics.holes.lock() {
        *h = open.iter().map(|r| (r.start, r.end)).collect();
    }
    publish_minutes(ctx, (now - reach + WINDOW_MARGIN_SECS).max(owed), edge);

    let Some(rec) = ctx.cfg.recovery else { return Ok(()) };
    // With a bucket, what other sites cover is not this site's to recover
    // (the account's two jobs are shared and scarce): wait a little for
    // the first read of it.
    let peers = match &ctx.peers {
        Some(p) if p.worth_waiting() => return Ok(()),
        Some(p) => p.get(),
        None => None,
    };
    // Leave young holes at the live edge to Backfill.
    let eligible: Vec<Range<i64>> = open
        .iter()
        .filter(|h| h.start >= window_start)
        .filter(|h| !(h.end >= edge && ((ctx.cfg.backfill && h.start >= backfill_reach) || all_up)))
        .cloned()
        .collect();
    // What each partition still needs: its own holes inside what is
    // eligible, less what a running job (for it, or for all) brings.
    let mut needs = Vec::new();
    for p in 1..=ctx.cfg.coverage_partitions() {
        let holes = subtract(std::slice::from_ref(&(owed..edge)), &ctx.coverage.covered_ranges(label, p, owed..edge)?);
        let mut in_flight: Vec<Range<i64>> =
            running.values().filter(|((q, _), _)| q.is_none_or(|q| q == p)).map(|((_, r), _)| r.clone()).collect();
        in_flight.sort_by_key(|r| r.start);
        let mut need = subtract(&intersect(&holes, &eligible), &in_flight);
        if let Some(peers) = &peers {
            need = subtract(&need, peers.covered(p));
        }
        needs.push(need);
    }
    // A piece at the live edge shorter than a minute is the tail of a hole
    // that is still growing (a job already has the rest of it): wait until
    // it is worth a request of its own, or until the hole closes.
    let todo: Vec<Piece> = requests(&needs)
        .into_iter()
        .flat_map(|(p, r)| chunk(&[r], rec.chunk.as_secs() as i64).into_iter().map(move |c| (p, c)))
        .filter(|(_, r)| !(r.end >= edge && r.end - r.start < MIN_TAIL_SECS))
        .collect();
    // The recorded jobs follow the holes, also while in backoff.
    let recorded = ctx.coverage.jobs(label)?;
    let ids: Vec<u64> = running.keys().copied().collect();
    let plan = reconcile(label, &recorded, &ids, &todo);
    for id in &plan.remove {
        ctx.coverage.remove_job(label, *id)?;
    }
    let mut queued = Vec::new();
    for (mut job, new) in plan.keep.into_iter().zip(plan.new) {
        if new {
            job.id = ctx.coverage.new_job_id()?;
        }
        if recorded.iter().all(|r| r != &job) {
            ctx.coverage.put_job(&job)?;
        }
        queued.push(job);
    }
    if ctx.clock.now_ms() < not_before_ms {
        return Ok(());
    }
    for mut job in queued {
        if running.len() >= rec.concurrency {
            break;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else { break };
        // With a bucket, also one of the slots the account's sites share.
        let held = match &ctx.site_slots {
            Some(s) => match s.acquire(label, job.id).await {
                Ok(Some(held)) => Some(held),
                Ok(None) => {
                    tracing::debug!("the account's Recovery slots are held by other sites");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the bucket cannot say which sites hold the Recovery slots; going on");
                    None
                }
            },
            None => None,
        };
        crate::metrics::StreamMetrics::add(&ctx.metrics.recovery_jobs_started, 1);
        let job_id = job.id;
        let range = (job.partition, job.resume_secs..job.end_secs);
        let c = ctx.clone();
        let handle = tokio::spawn(
            async move {
                let end = run_job(&c, &mut job).await;
                if let Some(held) = held {
                    held.release().await;
                }
                drop(permit);
                (job, end)
            }
            .in_current_span(),
        );
        running.insert(job_id, (range, handle));
    }
    Ok(())
}

/// Minute counts for `/metrics` (full, not full, lost) inside the window.
fn publish_minutes(ctx: &StreamCtx, window_start: i64, edge: i64) {
    use gapless_storage::coverage::{Coverage, Overlay};
    use gapless_storage::Minute;
    use std::sync::atomic::Ordering;
    let (from, to) = (Minute::of_secs(window_start), Minute::of_secs(edge));
    let Ok(states) = ctx.coverage.minute_states(&ctx.cfg.label, from..to, edge, 0) else { return };
    let full = states.iter().filter(|m| m.coverage == Coverage::Full).count() as u64;
    let lost = states.iter().filter(|m| m.overlay == Some(Overlay::Lost)).count() as u64;
    ctx.metrics.covered_minutes.store(full, Ordering::Relaxed);
    ctx.metrics.missing_minutes.store(states.len() as u64 - full, Ordering::Relaxed);
    ctx.metrics.lost_minutes.store(lost, Ordering::Relaxed);
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn job(id: u64, range: Range<i64>, resume: i64) -> JobRecord {
        JobRecord {
            id,
            stream: "d".into(),
            partition: None,
            start_secs: range.start,
            end_secs: range.end,
            resume_secs: resume,
            state: JobState::Queued,
            attempts: 1,
        }
    }

    /// (id, range) of the jobs kept; `None`: a new job.
    fn ranges(r: &Reconciled) -> Vec<(Option<u64>, Range<i64>)> {
        r.keep.iter().zip(&r.new).map(|(j, new)| ((!new).then_some(j.id), j.resume_secs..j.end_secs)).collect()
    }

    #[test]
    fn a_growing_hole_extends_its_queued_job() {
        let r = reconcile("d", &[job(7, 100..200, 100)], &[], &[(None, 100..260)]);
        assert_eq!(ranges(&r), vec![(Some(7), 100..260)]);
        assert_eq!(r.keep[0].attempts, 1, "a job keeps its attempts");
        assert!(r.remove.is_empty());
        // A broken job whose first part got covered resumes where the hole is.
        let r = reconcile("d", &[job(7, 100..200, 130)], &[], &[(None, 130..200)]);
        assert_eq!(ranges(&r), vec![(Some(7), 130..200)]);
        // Job ids start at 0: job 0 is a job like any other.
        let r = reconcile("d", &[job(0, 100..200, 100)], &[], &[(None, 100..260)]);
        assert_eq!((ranges(&r), r.remove), (vec![(Some(0), 100..260)], vec![]));
    }

    #[test]
    fn jobs_of_covered_ranges_and_duplicates_are_removed() {
        // As reported: many queued jobs from the same second with growing
        // ends, left behind by refused attempts.
        let recorded: Vec<JobRecord> = (0..18).map(|i| job(i, 100..200 + i as i64 * 10, 100)).collect();
        let r = reconcile("d", &recorded, &[], &[(None, 100..400)]);
        assert_eq!(ranges(&r), vec![(Some(0), 100..400)]);
        assert_eq!(r.remove, (1..18).collect::<Vec<u64>>());
        // Then every minute is full: nothing is left recorded.
        let r = reconcile("d", &recorded, &[], &[]);
        assert!(r.keep.is_empty());
        assert_eq!(r.remove.len(), 18);
    }

    #[test]
    fn running_jobs_are_left_alone_and_new_pieces_get_new_jobs() {
        let recorded = [job(5, 0..100, 40), job(6, 300..400, 300)];
        // Job 5 runs (its range is not in todo); 6 is stale; two new pieces.
        let r = reconcile("d", &recorded, &[5], &[(None, 100..200), (None, 500..600)]);
        assert_eq!(ranges(&r), vec![(None, 100..200), (None, 500..600)]);
        assert_eq!(r.remove, vec![6]);
        // No two recorded jobs overlap: one job per piece, at most; a job
        // is kept only for a piece it overlaps.
        let r = reconcile("d", &[job(1, 0..3600, 0), job(2, 0..3600, 0)], &[], &[(None, 0..3600), (None, 3600..7200)]);
        assert_eq!(ranges(&r), vec![(Some(1), 0..3600), (None, 3600..7200)]);
        assert_eq!(r.remove, vec![2]);
    }

    #[test]
    fn subtraction_and_chunking() {
        assert_eq!(subtract(&[0..100, 200..300], &[50..60, 90..210, 299..400]), vec![0..50, 60..90, 210..299]);
        assert_eq!(subtract(&[0..10], &[]), vec![0..10]);
        assert_eq!(chunk(&[3500..7300], 3600), vec![3500..3600, 3600..7200, 7200..7300]);
        assert_eq!(intersect(&[0..100, 200..300], &[50..250, 290..400]), vec![50..100, 200..250, 290..300]);
        assert_eq!(intersect(&[0..10], &[]), Vec::<Range<i64>>::new());
    }

    #[test]
    fn a_hole_in_one_partition_is_requested_for_that_partition_only() {
        // Of 20 partitions, only partition 7 misses 100..200.
        let mut needs = vec![Vec::new(); 20];
        needs[6] = vec![100..200];
        assert_eq!(requests(&needs), vec![(Some(7), 100..200)]);
        // Where every partition misses a range, one request serves all;
        // what only some miss is asked for each of them.
        let needs = vec![vec![0..100, 500..600], vec![50..100, 550..700], vec![0..100, 500..700]];
        assert_eq!(
            requests(&needs),
            vec![
                (Some(1), 0..50),
                (Some(3), 0..50),
                (None, 50..100),
                (Some(1), 500..550),
                (Some(3), 500..550),
                (None, 550..600),
                (Some(2), 600..700),
                (Some(3), 600..700),
            ]
        );
        // A stream without partitions: one request, for the stream.
        assert_eq!(requests(&[vec![0..60]]), vec![(None, 0..60)]);
        assert!(requests(&[]).is_empty());
    }

    #[test]
    fn a_job_is_kept_only_for_a_piece_of_its_own_partition() {
        let mut j = job(4, 100..200, 100);
        j.partition = Some(2);
        let r = reconcile("d", &[j], &[], &[(Some(1), 100..200), (Some(2), 100..200)]);
        assert_eq!(
            r.keep.iter().map(|j| (j.id, j.partition)).collect::<Vec<_>>(),
            vec![(u64::MAX, Some(1)), (4, Some(2))]
        );
        assert!(r.remove.is_empty());
    }
}
