//! A realtime connection (with optional Backfill), and its max-speed form.
//!
//! The connection keeps a cursor on *delivery time*: every tick it sends the
//! activities whose delivery time passed since the last tick, sync-flushing
//! the gzip stream after each batch, and a heartbeat `\r\n` after
//! `heartbeat_ms` of silence (stream time). Backfill is the same loop started
//! with the cursor `N` minutes in the past: it catches up one second of stream
//! time per step, as fast as the client reads, then runs in realtime.
//!
//! Faults act here (see [`crate::faults`]): drop, stall (and stall-skip: a
//! stall after which the connection jumps to realtime, as a server that
//! accepted `backfillMinutes` but never delivers it), slow drip, cut line,
//! corrupt gzip, drop-from-realtime and duplicate bursts.
//!
//! In max-speed mode ([`crate::maxspeed`]) a realtime connection instead
//! gets its partition's pre-compressed body as fast as the socket takes it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::faults::FaultKind;
use crate::gzip::GzStream;
use crate::out::{tick, Out, Tx};
use crate::prepared::Prepared;
use crate::protocol::forced_disconnect_line;
use crate::state::{ConnGuard, Kill, Shared, StreamState};

/// Bytes that are not valid deflate: a block header with the reserved type.
pub(crate) const CORRUPT: &[u8] = b"\xff\xff\xff\xffnot deflate";

/// What a realtime connection was asked for.
pub(crate) struct Realtime {
    pub partition: u32,
    pub backfill_minutes: u32,
    /// Its ordinal among the stream's accepted connections (fault targeting).
    pub ordinal: u64,
    pub kill: Arc<Kill>,
}

pub(crate) async fn run(shared: Arc<Shared>, stream: Arc<StreamState>, job: Realtime, tx: Tx, _guard: ConnGuard) {
    let Realtime { partition, backfill_minutes, ordinal, kill } = job;
    let clock = shared.cfg.clock;
    let spec = &stream.spec;
    let hb = shared.cfg.heartbeat_ms;
    let tick = tick(&clock, hb);
    let start = clock.now_ms();
    let mut cursor = start - i64::from(backfill_minutes) * 60_000;
    let mut last_send = start;
    let mut out = Out::new(tx);
    let mut applied: HashSet<u64> = HashSet::new();
    let mut caught_up = false;
    // Set by a stall-skip fault: when it ends, the cursor jumps to now.
    let mut skipping = false;
    // The `skip` faults seen while this connection was open.
    let mut skips: Vec<crate::faults::Fault> = Vec::new();
    let mut last_lag_warning = i64::MIN / 2;
    let p = Some(partition);
    // Send the gzip header at once so the client sees a live body.
    if out.flush(false).await.is_err() {
        return;
    }
    loop {
        // Faults can be added at run time: take the current plan each turn.
        let faults = shared.faults();
        if kill.flag.load(Ordering::SeqCst) {
            let now = clock.now_ms();
            let line = forced_disconnect_line(now, spec.max_connections);
            // Error lines end with a bare \n, as the real service sends them.
            if out.write(line.as_bytes()).is_ok() && out.write(b"\n").is_ok() {
                let _ = out.flush(false).await;
            }
            out.finish().await;
            return;
        }
        let now = clock.now_ms();
        if let Some(f) = faults.active_on(FaultKind::Drop, spec, p, Some(ordinal), now) {
            info!(stream = %spec.name(), partition, fault = f.id, "fault: drop");
            out.abort("fault: drop").await;
            return;
        }
        if faults.active_on(FaultKind::CorruptGzip, spec, p, Some(ordinal), now).is_some_and(|f| applied.insert(f.id)) {
            info!(stream = %spec.name(), partition, "fault: corrupt gzip");
            let _ = out.send(Bytes::from_static(CORRUPT), false).await;
            out.abort("fault: corrupt gzip").await;
            return;
        }
        if faults.active_on(FaultKind::Stall, spec, p, Some(ordinal), now).is_some() {
            // Nothing at all, not even heartbeats; the backlog follows later
            // (a catch-up, like backfill).
            caught_up = false;
            if wait(&kill, &out.tx, tick).await == Wake::Gone {
                return;
            }
            continue;
        }
        if faults.active_on(FaultKind::StallSkip, spec, p, Some(ordinal), now).is_some() {
            // Nothing at all, and what falls due meanwhile (or was asked
            // for as Backfill) is never sent on this connection.
            skipping = true;
            if wait(&kill, &out.tx, tick).await == Wake::Gone {
                return;
            }
            continue;
        }
        if std::mem::take(&mut skipping) {
            info!(stream = %spec.name(), partition, skipped_ms = now - cursor, "fault: stall-skip ends; realtime resumes without the backlog");
            cursor = cursor.max(now);
        }
        let slow = faults.active_on(FaultKind::SlowDrip, spec, p, Some(ordinal), now).is_some();
        let upto = now.min(cursor + 1000);
        let mut batch = stream.due(partition, cursor, upto, now);
        cursor = upto;
        if !faults.is_empty() {
            batch.retain(|a| !faults.realtime_dropped(spec, a.partition, a.time_ms));
            if let Some(f) = faults.active_on(FaultKind::Skip, spec, p, Some(ordinal), now) {
                if !skips.contains(&f) {
                    info!(stream = %spec.name(), partition, fault = f.id, "fault: skip");
                    skips.push(f);
                }
            }
            // The activities of a skip's window are never sent on a
            // connection that was open during it (also those whose delivery
            // falls due after it).
            batch.retain(|a| !skips.iter().any(|f| (f.start_ms..f.end_ms).contains(&a.time_ms)));
        }
        if !batch.is_empty() {
            if let Some(f) = faults.active_on(FaultKind::CutLine, spec, p, Some(ordinal), now) {
                if applied.insert(f.id) {
                    info!(stream = %spec.name(), partition, "fault: cut line");
                    let line = &batch[0].line;
                    if out.write(&line[..line.len() / 2]).is_err() || out.flush(false).await.is_err() {
                        return;
                    }
                    // Let the half line reach the socket before the cut: an
                    // abort right behind it can discard what hyper still
                    // buffers, and then nothing was cut at all.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    out.abort("fault: cut line").await;
                    return;
                }
            }
            let copies =
                if faults.active_on(FaultKind::Duplicate, spec, p, Some(ordinal), now).is_some() { 2 } else { 1 };
            for _ in 0..copies {
                for a in &batch {
                    if out.write(&a.line).is_err() || out.write(b"\r\n").is_err() {
                        return;
                    }
                }
            }
            if out.flush(slow).await.is_err() {
                debug!(stream = %spec.name(), partition, "client gone");
                return;
            }
            stream.count_sent(batch.len() as u64 * copies);
            last_send = now;
        } else if now - last_send >= hb {
            if out.write(b"\r\n").is_err() || out.flush(slow).await.is_err() {
                return;
            }
            last_send = now;
        }
        if cursor >= now {
            caught_up = true;
        } else if caught_up && now - cursor > 10_000 && now - last_lag_warning > 60_000 {
            // Past the initial backfill, a lag means generation or the client
            // cannot keep up: deliveries come later than their latency bound.
            warn!(
                stream = %spec.name(),
                partition,
                lag_ms = now - cursor,
                "realtime delivery lags behind stream time: lower --rate or --clock-speed"
            );
            last_lag_warning = now;
        }
        if cursor < now {
            // Catching up (backfill): no pause, but let other tasks run.
            tokio::task::yield_now().await;
            continue;
        }
        if wait(&kill, &out.tx, tick).await == Wake::Gone {
            debug!(stream = %spec.name(), partition, "client gone");
            return;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    Tick,
    Killed,
    Gone,
}

/// Sleep for `d`, or until a kill arrives or the body is dropped (the client
/// went away and hyper let go of the body).
pub(crate) async fn wait(kill: &Kill, tx: &Tx, d: Duration) -> Wake {
    tokio::select! {
        _ = kill.notify.notified() => Wake::Killed,
        _ = tx.closed() => Wake::Gone,
        _ = tokio::time::sleep(d) => {
            if kill.flag.load(Ordering::SeqCst) { Wake::Killed } else { Wake::Tick }
        }
    }
}

/// A realtime connection in max-speed mode: the pre-compressed body of its
/// partition, as fast as the socket takes it, then a clean end.
pub(crate) async fn max_speed(prepared: Arc<Prepared>, partition: u32, tx: Tx, guard: ConnGuard) {
    let key = (guard.stream.spec.kind, guard.stream.spec.label.clone(), partition);
    let Some(body) = prepared.bodies.get(&key).cloned() else {
        // Not pre-generated (a stream made on demand): an empty, valid body.
        if let Ok(b) = GzStream::new().finish() {
            let _ = tx.send(Ok(b)).await;
        }
        return;
    };
    for p in body.parts.iter() {
        if tx.send(Ok(p.clone())).await.is_err() {
            return;
        }
    }
}
