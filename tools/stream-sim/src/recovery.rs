//! A Recovery job.
//!
//! Replays `[start, end)` by activity time, oldest minute first and
//! chronologically within it, at `recovery_pace` (archive time per stream
//! time; a little under 1 by default, as the documents describe). Heartbeats
//! fill the waits. At the end: the `Recovery Request Completed` info line with
//! the number of activities sent, the end of the gzip member, and a clean
//! close. A `break_recovery` (or `drop`, `stall`) fault acts on it too.

use std::sync::Arc;

use tracing::info;

use crate::clock::StreamMs;
use crate::faults::FaultKind;
use crate::out::{tick, Out, Tx};
use crate::protocol::recovery_completed_line;
use crate::state::{JobSlot, Shared, StreamState};

/// What a Recovery request asked for.
pub(crate) struct Recovery {
    /// None = all partitions.
    pub partition: Option<u32>,
    pub start_ms: StreamMs,
    pub end_ms: StreamMs,
    /// Its ordinal among the stream's accepted connections (fault targeting).
    pub ordinal: u64,
}

pub(crate) async fn run(shared: Arc<Shared>, stream: Arc<StreamState>, job: Recovery, tx: Tx, _slot: JobSlot) {
    let Recovery { partition, start_ms, end_ms, ordinal } = job;
    let clock = shared.cfg.clock;
    let spec = &stream.spec;
    let hb = shared.cfg.heartbeat_ms;
    let tick = tick(&clock, hb);
    let pace = shared.cfg.recovery_pace;
    let t0 = clock.now_ms();
    let mut last_send = t0;
    let mut out = Out::new(tx);
    let mut count: u64 = 0;
    if out.flush(false).await.is_err() {
        return;
    }
    let first = start_ms.div_euclid(1000);
    let last = (end_ms - 1).div_euclid(1000);
    for sec in first..=last {
        // The archive second `sec` is sent once the pace reaches its end.
        let due_at =
            if pace > 0.0 { t0 + (((sec * 1000 + 1000).min(end_ms) - start_ms) as f64 / pace) as i64 } else { t0 };
        loop {
            let faults = shared.faults();
            let now = clock.now_ms();
            if faults.active_on(FaultKind::BreakRecovery, spec, partition, Some(ordinal), now).is_some()
                || faults.active_on(FaultKind::Drop, spec, partition, Some(ordinal), now).is_some()
            {
                info!(stream = %spec.name(), ?partition, sent = count, "fault: recovery broken off");
                out.abort("fault: break recovery").await;
                return;
            }
            let stalled = faults.active_on(FaultKind::Stall, spec, partition, Some(ordinal), now).is_some();
            if now >= due_at && !stalled {
                break;
            }
            if !stalled && now - last_send >= hb {
                if out.write(b"\r\n").is_err() || out.flush(false).await.is_err() {
                    return;
                }
                last_send = now;
            }
            let wait = if stalled { tick } else { clock.until(due_at).min(tick) };
            tokio::select! {
                _ = tokio::time::sleep(wait.max(std::time::Duration::from_millis(1))) => {}
                _ = out.tx.closed() => return,
            }
        }
        let acts = stream.gen.second_of(sec, partition);
        let mut n = 0;
        for a in acts.iter().filter(|a| a.time_ms >= start_ms && a.time_ms < end_ms) {
            if out.write(&a.line).is_err() || out.write(b"\r\n").is_err() {
                return;
            }
            n += 1;
        }
        if n > 0 {
            let slow = shared
                .faults()
                .active_on(FaultKind::SlowDrip, spec, partition, Some(ordinal), clock.now_ms())
                .is_some();
            if out.flush(slow).await.is_err() {
                return;
            }
            count += n;
            stream.count_sent(n);
            last_send = clock.now_ms();
        } else if clock.now_ms() - last_send >= hb {
            if out.write(b"\r\n").is_err() || out.flush(false).await.is_err() {
                return;
            }
            last_send = clock.now_ms();
        }
    }
    let line = recovery_completed_line(clock.now_ms(), count);
    if out.write(line.as_bytes()).is_err() || out.write(b"\r\n").is_err() || out.flush(false).await.is_err() {
        return;
    }
    info!(stream = %spec.name(), ?partition, activities = count, "recovery completed");
    out.finish().await;
}
