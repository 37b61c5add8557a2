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
use crate::connection::{tick, Out, Tx};
use crate::faults::FaultKind;
use crate::protocol::recovery_completed_line;
use crate::server::{JobSlot, Shared, StreamState};

pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: Arc<StreamState>,
    partition: Option<u32>,
    start_ms: StreamMs,
    end_ms: StreamMs,
    tx: Tx,
    _slot: JobSlot,
) {
    let clock = shared.cfg.clock.clone();
    let faults = &shared.cfg.faults;
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
        let due_at = if pace > 0.0 {
            t0 + (((sec * 1000 + 1000).min(end_ms) - start_ms) as f64 / pace) as i64
        } else {
            t0
        };
        loop {
            let now = clock.now_ms();
            if faults.active(FaultKind::BreakRecovery, spec, partition, now).is_some()
                || faults.active(FaultKind::Drop, spec, partition, now).is_some()
            {
                info!(stream = %spec.name(), ?partition, sent = count, "fault: recovery broken off");
                out.abort("fault: break recovery").await;
                return;
            }
            let stalled = faults.active(FaultKind::Stall, spec, partition, now).is_some();
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
            tokio::time::sleep(wait.max(std::time::Duration::from_millis(1))).await;
        }
        let acts = stream.gen.second(sec);
        let mut n = 0;
        for a in acts.iter().filter(|a| {
            a.time_ms >= start_ms && a.time_ms < end_ms && partition.is_none_or(|p| p == a.partition)
        }) {
            if out.write(&a.line).is_err() || out.write(b"\r\n").is_err() {
                return;
            }
            n += 1;
        }
        if n > 0 {
            let slow = faults.active(FaultKind::SlowDrip, spec, partition, clock.now_ms()).is_some();
            if out.flush(slow).await.is_err() {
                return;
            }
            count += n;
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
