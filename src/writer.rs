//! The storage thread of one stream.
//!
//! Connections (realtime and recovery) send it classified batches and
//! coverage *claims* through one channel, in the order they happened: a
//! claim says "everything of these seconds that this connection will ever
//! deliver has been sent before this message". The thread accepts batches
//! into the store, and every commit interval commits, and only then, with
//! the commit's proof of durability, records the claims made before the
//! commit as coverage. That is the invariant of DESIGN.md: coverage is
//! recorded only after the data it covers is durable. A failed commit (a
//! full disk) keeps both data and claims pending: coverage stops advancing,
//! loudly, until a commit succeeds.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gapless_storage::coverage::CoverageMap;
use gapless_storage::store::{Outcome, StreamWriter};
use gapless_storage::Minute;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::lines::Batch;
use crate::metrics::StreamMetrics;

/// Commit at least this often (wall time): the bound on how long received
/// data waits before it is durable, and so on coverage's delay.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Or as soon as this many raw bytes wait.
const COMMIT_BYTES: usize = 16 << 20;
/// A minute nothing was written to for this long (stream time) is sealed
/// into one frame: realtime writes it in many small frames, and one frame
/// compresses better and reads faster. Late data after a seal is simply a
/// new frame, and the minute is sealed again later.
const SEAL_AFTER_MS: i64 = 10 * 60_000;
/// At most this many minutes are sealed after one commit, so that sealing
/// never delays ingest by much.
const SEALS_PER_COMMIT: usize = 4;

/// Coverage a connection claims.
#[derive(Debug)]
pub struct Claim {
    /// `None`: every partition (a Recovery request without a partition).
    pub partition: Option<u32>,
    /// Unix seconds, half-open.
    pub secs: Range<i64>,
    /// Fired once the claim is recorded as coverage (or dropped on error).
    pub done: Option<oneshot::Sender<bool>>,
}

pub enum Msg {
    Batch(Batch),
    Claim(Claim),
    /// Commit now and answer when everything before is durable and covered.
    Flush(oneshot::Sender<bool>),
}

/// Starts the storage thread of a stream. It runs until every sender is
/// dropped, then commits a last time.
pub fn spawn(
    mut writer: StreamWriter,
    coverage: Arc<CoverageMap>,
    partitions: u32,
    metrics: Arc<StreamMetrics>,
    clock: Clock,
    mut rx: mpsc::Receiver<Msg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let label = writer.label().to_string();
    // The storage thread is a plain thread (its work is blocking I/O); a
    // small runtime of its own gives it a timed wait on the channel.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    std::thread::Builder::new().name(format!("store-{label}")).spawn(move || {
        let mut claims: Vec<Claim> = Vec::new();
        // Minutes written since their last seal, and when (stream ms).
        let mut unsealed: std::collections::BTreeMap<Minute, i64> = std::collections::BTreeMap::new();
        let mut flushes: Vec<oneshot::Sender<bool>> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut last_commit = Instant::now();
        let mut open = true;
        while open || !claims.is_empty() || writer.pending_records() > 0 {
            // Wait for a message, but no longer than the commit interval.
            let msg = if open { recv_timeout(&rt, &mut rx, COMMIT_INTERVAL.saturating_sub(last_commit.elapsed())) } else { Recv::Closed };
            match msg {
                Recv::Msg(Msg::Batch(batch)) => {
                    pending_bytes += batch.bytes();
                    StreamMetrics::add(&metrics.bytes, batch.bytes() as u64);
                    let now_ms = clock.now_ms();
                    let res = batch.each(|line, classified| -> gapless_storage::Result<()> {
                        let outcome = writer.accept(line, classified, now_ms)?;
                        if let Outcome::Stored { minute, .. } = outcome {
                            unsealed.insert(minute, now_ms);
                        }
                        count(&metrics, &outcome);
                        Ok(())
                    });
                    if let Err(e) = res {
                        tracing::error!(stream = %label, error = %e, "storing a batch failed");
                    }
                }
                Recv::Msg(Msg::Claim(c)) => claims.push(c),
                Recv::Msg(Msg::Flush(tx)) => {
                    flushes.push(tx);
                    last_commit = Instant::now() - COMMIT_INTERVAL; // commit now
                }
                Recv::Timeout => {}
                Recv::Closed => open = false,
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL || pending_bytes >= COMMIT_BYTES || !open {
                last_commit = Instant::now();
                pending_bytes = 0;
                let ok = commit_and_cover(&mut writer, &coverage, partitions, &label, &metrics, &mut claims);
                for tx in flushes.drain(..) {
                    let _ = tx.send(ok);
                }
                if ok && open {
                    seal_quiet_minutes(&mut writer, &mut unsealed, clock.now_ms(), &label);
                }
                if !ok && !open {
                    tracing::error!(stream = %label, claims = claims.len(), "last commit failed: these claims are not recorded");
                    break;
                }
            }
        }
    })
}

enum Recv {
    Msg(Msg),
    Timeout,
    Closed,
}

fn recv_timeout(rt: &tokio::runtime::Runtime, rx: &mut mpsc::Receiver<Msg>, timeout: Duration) -> Recv {
    match rt.block_on(async { tokio::time::timeout(timeout, rx.recv()).await }) {
        Ok(Some(m)) => Recv::Msg(m),
        Ok(None) => Recv::Closed,
        Err(_) => Recv::Timeout,
    }
}

/// Seals a few minutes that nothing was written to for a while.
fn seal_quiet_minutes(writer: &mut StreamWriter, unsealed: &mut std::collections::BTreeMap<Minute, i64>, now_ms: i64, label: &str) {
    let quiet: Vec<Minute> = unsealed
        .iter()
        .filter(|(m, last)| now_ms - **last >= SEAL_AFTER_MS && m.next().start_ms() <= now_ms - SEAL_AFTER_MS)
        .map(|(m, _)| *m)
        .take(SEALS_PER_COMMIT)
        .collect();
    for minute in quiet {
        unsealed.remove(&minute);
        match writer.seal(minute) {
            Ok(Some(s)) => tracing::debug!(stream = %label, %minute, frames = s.frames_before, bytes_before = s.bytes_before, bytes_after = s.bytes_after, "sealed"),
            Ok(None) => {}
            // Not fatal: the minute stays readable in its frames.
            Err(e) => tracing::warn!(stream = %label, %minute, error = %e, "sealing a minute failed"),
        }
    }
}

fn count(m: &StreamMetrics, outcome: &Outcome) {
    match outcome {
        Outcome::Stored { .. } => {
            StreamMetrics::add(&m.received, 1);
            StreamMetrics::add(&m.stored, 1);
        }
        Outcome::Duplicate { .. } => {
            StreamMetrics::add(&m.received, 1);
            StreamMetrics::add(&m.duplicates, 1);
        }
        Outcome::Quarantined { reason } => {
            StreamMetrics::add(&m.received, 1);
            StreamMetrics::add(&m.quarantined, 1);
            tracing::warn!(stream = %m.label, %reason, "quarantined a line");
        }
        Outcome::Heartbeat => StreamMetrics::add(&m.heartbeats, 1),
        Outcome::System(_) => StreamMetrics::add(&m.system_messages, 1),
    }
}

/// Commits; on success records every claim as coverage. Returns whether
/// the commit succeeded.
fn commit_and_cover(
    writer: &mut StreamWriter,
    coverage: &CoverageMap,
    partitions: u32,
    label: &str,
    metrics: &StreamMetrics,
    claims: &mut Vec<Claim>,
) -> bool {
    let proof = match writer.commit() {
        Ok((proof, _stats)) => proof,
        Err(e) => {
            StreamMetrics::add(&metrics.commit_errors, 1);
            tracing::error!(stream = %label, error = %e, "COMMIT FAILED: data is not durable, coverage does not advance");
            return false;
        }
    };
    StreamMetrics::add(&metrics.commits, 1);
    for damaged in writer.take_damaged_minutes() {
        tracing::error!(stream = %label, minute = %damaged, "a damaged segment was repaired; its minute is a hole again");
    }
    for claim in claims.drain(..) {
        let mut ok = true;
        if claim.secs.start < claim.secs.end {
            let parts: Vec<u32> = match claim.partition {
                Some(p) => vec![p],
                None => (1..=partitions).collect(),
            };
            for p in parts {
                if let Err(e) = coverage.cover(&proof, label, p, claim.secs.clone()) {
                    ok = false;
                    tracing::error!(stream = %label, partition = p, error = %e, "recording coverage failed");
                }
            }
        }
        if let Some(done) = claim.done {
            let _ = done.send(ok);
        }
    }
    true
}
