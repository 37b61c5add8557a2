//! Connections: one streaming HTTP request, read until it ends, with a
//! liveness deadline that does not depend on the read returning.
//!
//! # Liveness
//! Every read waits at most `liveness.silence` (stream time): heartbeats
//! come every 10 s, so 30 s without a byte means the connection is dead even
//! when TCP says it is open (a stall). The deadline runs on a timer beside
//! the read, so a stalled socket that never returns is still caught.
//!
//! # Coverage claims (realtime)
//! A realtime connection asks for data from a stream time `R`: its connect
//! time, or `connect time − N min` with `backfillMinutes=N`. That is a
//! request, not a proof: a server may accept the backfill and never send
//! it. It claims seconds up to a watermark that trails the last sign of
//! life by the latency allowance (13 s: activities are delivered up to 10 s
//! late and 3 s out of order). On streams that never pause (Decahose,
//! Firehose, Likes), what it claims is what its data proves
//! (`continuity.rs`): from `R` only if the first activity follows within
//! the data-silence bound (derived from the observed rate, 1 s on
//! Decahose), and between two activities only if they are that close in
//! activity time; the watermark trails the newest activity time by 3 s as
//! well. Any longer gap is a hole, never claimed, and the planner repairs
//! it. On PowerTrack (quiet for minutes) heartbeats carry coverage. Claims
//! travel through the storage thread's channel after the data they cover,
//! and become coverage only after the commit that makes that data durable.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gapless_storage::activity::{Limits, Line, Rejection, SystemLevel};
use gapless_storage::coverage::CoverageMap;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::backoff::{Backoff, Cause};
use crate::clock::Clock;
use crate::config::Stream;
use crate::continuity::{Continuity, DataBound};
use crate::credentials::Secret;
use crate::limiter::Limiter;
use crate::lines::{Batch, Framer};
use crate::metrics::{ConnectionState, ConnectionStatus, StreamMetrics};
use crate::writer::{Claim, Msg};

pub use crate::continuity::OUT_OF_ORDER_MS;
/// Largest gap that `backfillMinutes` can close.
pub const BACKFILL_MAX_MINUTES: i64 = 5;

/// What every connection of a stream shares.
pub struct StreamCtx {
    pub cfg: Stream,
    pub clock: Clock,
    pub client: reqwest::Client,
    pub secret: Secret,
    pub limiter: Limiter,
    pub tx: mpsc::Sender<Msg>,
    pub metrics: Arc<StreamMetrics>,
    pub coverage: Arc<CoverageMap>,
    pub shutdown: watch::Receiver<bool>,
    pub limits: Limits,
    /// A closed hole that Backfill can still reach, on a stream without
    /// Recovery: the planner asks here, and every connection whose
    /// partition misses part of it reconnects with a backfill from its
    /// start.
    pub refill: watch::Sender<Option<Range<i64>>>,
    /// With a bucket: what the stream's other sites cover there.
    pub peers: Option<Arc<crate::upload::Peers>>,
    /// With a bucket: the account's Recovery slots shared with other sites.
    pub site_slots: Option<Arc<crate::upload::SiteSlots>>,
}

impl StreamCtx {
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sends a claim to the storage thread (after the data it covers).
    pub async fn claim(&self, partition: Option<u32>, secs: Range<i64>) {
        if secs.start < secs.end {
            let _ = self.tx.send(Msg::Claim(Claim { partition, secs, done: None })).await;
        }
    }

    /// Sends a claim and waits until it is recorded (or failed).
    pub async fn claim_and_wait(&self, partition: Option<u32>, secs: Range<i64>) -> bool {
        if secs.start >= secs.end {
            return true;
        }
        let (done, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Claim(Claim { partition, secs, done: Some(done) })).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// True when `partition`'s coverage misses part of `secs`.
    pub fn misses(&self, partition: Option<u32>, secs: &Range<i64>) -> bool {
        let covered = self.coverage.covered_ranges(&self.cfg.label, partition.unwrap_or(1), secs.clone());
        // When in doubt (the map cannot be read), it is a hole.
        covered.map_or(true, |c| c.iter().map(|r| r.end - r.start).sum::<i64>() < secs.end - secs.start)
    }

    /// Waits for the connection limiter; false if shutdown came first.
    pub async fn take_turn(&self) -> bool {
        let mut sd = self.shutdown.clone();
        tokio::select! {
            _ = self.limiter.acquire() => true,
            _ = sd.wait_for(|s| *s) => false,
        }
    }

    /// Sleeps for a stream duration, or until shutdown.
    pub async fn sleep(&self, d: Duration) {
        let mut sd = self.shutdown.clone();
        tokio::select! {
            _ = self.clock.sleep(d) => {}
            _ = sd.wait_for(|s| *s) => {}
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Shutdown,
    /// Could not connect, or the HTTP status was not 200.
    Refused(Cause, String),
    /// No byte for the silence bound: a stall.
    Stalled,
    /// Bytes, but no activity for the silence bound.
    DataSilence,
    /// The body ended or broke (reset, corrupt gzip, closed).
    Broken(String),
    /// `Forced Disconnect` or another error line from the server.
    ServerError(String),
    /// `Recovery Request Completed`.
    Completed,
    /// `Recovery Request Completed`, but the data had gaps longer than the
    /// data-silence bound: they stay holes.
    CompletedWithGaps,
    /// The planner asked for a backfill from this second (Unix seconds):
    /// a closed hole Backfill can still reach, on a stream without
    /// Recovery.
    Refill(i64),
    /// Storage took no data for the silence bound (its disk is full and
    /// its pending cap reached): the connection is closed rather than held
    /// open unread; what it would have delivered is a hole, which Backfill
    /// and Recovery fill once the disk has room.
    StorageBlocked,
}

impl End {
    pub fn cause(&self) -> Cause {
        match self {
            End::Refused(c, _) => c.clone(),
            End::ServerError(_) => Cause::Disconnected,
            _ => Cause::Network,
        }
    }
}

/// Observes what a connection delivers and decides what it may claim.
pub trait Tracker {
    /// A batch was received at `now_ms` (and is sent on to storage).
    /// Returns whether to end.
    fn observe(&mut self, batch: &Batch, now_ms: i64) -> Option<End>;
    /// Any bytes (a heartbeat) at `now_ms`: the ranges (Unix seconds) that
    /// may be claimed now, oldest first.
    fn claims(&mut self, now_ms: i64) -> Vec<Range<i64>>;
}

/// The activity times of a batch.
pub fn activity_times(batch: &Batch) -> impl Iterator<Item = i64> + '_ {
    batch.classified().filter_map(|c| if let Ok(Line::Activity(a)) = c { Some(a.time_ms) } else { None })
}

/// Raw (not gzip) bytes are framed in steps of at most this much.
const RAW_STEP: usize = 64 << 10;

/// Storage is blocked when it takes no data for `liveness.silence`, but
/// never for less than this much wall time: an fsync on a loaded machine
/// can take a few hundred milliseconds, and a scaled clock (tests, the
/// demo) shrinks the silence bound to that.
const STORAGE_WAIT_FLOOR: Duration = Duration::from_secs(2);

/// Reads a streaming response to its end. Sends batches and claims.
///
/// Memory is bounded whatever the peer sends: gzip is inflated in steps of
/// at most 32 KiB of output (flate2's write-side decoder writes at most its
/// 32 KiB buffer per call), each step is framed into lines in bounded
/// memory (`lines.rs`: a line past the limit is cut to a prefix with its
/// true length), and what is complete is sent on before the next step.
/// The liveness deadline runs beside the read and data silence is checked
/// on every chunk, so both work while a long line streams in.
pub async fn read_body(
    ctx: &StreamCtx,
    name: &str,
    partition: Option<u32>,
    resp: reqwest::Response,
    tracker: &mut (dyn Tracker + Send),
) -> End {
    let silence = ctx.cfg.liveness.silence.0;
    // The body is gzip; it is decoded here rather than by the HTTP client
    // so that what was decoded before a break (a line cut in half, a
    // corrupt stream) is still seen, and quarantined, not silently lost.
    let gzipped = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let mut gunzip = gzipped.then(|| flate2::write::MultiGzDecoder::new(Vec::with_capacity(32 << 10)));
    let mut body = resp.bytes_stream();
    let mut reader = Reader {
        ctx,
        name,
        partition,
        framer: Framer::new(&ctx.limits),
        last_activity: ctx.clock.now_ms(),
        delivered: false,
    };
    let mut shutdown = ctx.shutdown.clone();
    let data_bound_ms = ctx.cfg.data_silence_end().map(|d| d.as_millis() as i64);
    let mut refill = ctx.refill.subscribe();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return End::Shutdown,
            Ok(()) = refill.changed() => Err(refill.borrow_and_update().clone()),
            r = tokio::time::timeout(ctx.clock.wall(silence), body.next()) => Ok(r),
        };
        let next = match next {
            Ok(r) => r,
            Err(Some(r)) if ctx.misses(partition, &r) => return reader.finish(End::Refill(r.start)).await,
            Err(_) => continue,
        };
        let chunk = match next {
            Err(_) => return reader.finish(End::Stalled).await,
            Ok(None) => return reader.finish(End::Broken("the server closed the stream".into())).await,
            Ok(Some(Err(e))) => return reader.finish(End::Broken(describe(&e))).await,
            Ok(Some(Ok(c))) => c,
        };
        let now = ctx.clock.now_ms();
        ctx.metrics.update_connection(name, |c| c.last_byte_ms = Some(now));
        reader.delivered = false;
        let mut input: &[u8] = &chunk;
        while !input.is_empty() {
            let step = match gunzip.as_mut() {
                None => {
                    let (step, rest) = input.split_at(input.len().min(RAW_STEP));
                    input = rest;
                    reader.framer.push(step);
                    Ok(())
                }
                Some(dec) => {
                    let step = match std::io::Write::write(dec, input) {
                        Ok(0) => Err("the gzip stream takes no more input".to_string()),
                        Ok(n) => {
                            input = &input[n..];
                            // The chunk is in: what the decoder still holds.
                            if input.is_empty() {
                                std::io::Write::flush(dec).map_err(|e| e.to_string())
                            } else {
                                Ok(())
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    ctx.metrics
                        .read_buffer_peak
                        .fetch_max(dec.get_ref().capacity() as u64 + reader.framer.peak() as u64, Ordering::Relaxed);
                    reader.framer.push(dec.get_ref());
                    dec.get_mut().clear();
                    step
                }
            };
            if let Some(end) = reader.deliver(tracker, now).await {
                return end;
            }
            if let Err(e) = step {
                return reader.finish(End::Broken(format!("corrupt gzip stream: {e}"))).await;
            }
        }
        ctx.metrics.read_buffer_peak.fetch_max(reader.framer.peak() as u64, Ordering::Relaxed);
        if reader.delivered {
            for c in tracker.claims(now) {
                ctx.metrics.update_connection(name, |s| s.claimed_to_secs = Some(c.end));
                ctx.claim(partition, c).await;
            }
        }
        // Checked on every chunk: a line that streams in for ever is no
        // activity either.
        if data_bound_ms.is_some_and(|b| now - reader.last_activity > b) {
            return reader.finish(End::DataSilence).await;
        }
    }
}

/// The framing side of [`read_body`].
struct Reader<'a> {
    ctx: &'a StreamCtx,
    name: &'a str,
    partition: Option<u32>,
    framer: Framer,
    last_activity: i64,
    /// Whole lines were delivered since the last chunk began.
    delivered: bool,
}

impl Reader<'_> {
    /// Sends on what is complete; returns an end if a line says so (an
    /// error from the server, `Recovery Request Completed`) or storage is
    /// gone.
    async fn deliver(&mut self, tracker: &mut (dyn Tracker + Send), now: i64) -> Option<End> {
        let mut end = None;
        for piece in self.framer.take() {
            let batch = piece.into_batch(&self.ctx.limits);
            end = end.or(system_end(&batch));
            if batch.classified().any(|c| matches!(c, Ok(Line::Activity(_)))) {
                self.last_activity = now;
            }
            end = end.or(tracker.observe(&batch, now));
            self.delivered = true;
            let wait = self.ctx.clock.wall(self.ctx.cfg.liveness.silence.0).max(STORAGE_WAIT_FLOOR);
            match tokio::time::timeout(wait, self.ctx.tx.send(Msg::Batch(batch))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Some(End::Shutdown),
                // The batch is not stored, and nothing after it is claimed.
                Err(_) => return Some(End::StorageBlocked),
            }
        }
        if end.is_some() {
            // Claims up to the end line (the storage thread keeps order).
            for c in tracker.claims(now) {
                self.ctx.metrics.update_connection(self.name, |s| s.claimed_to_secs = Some(c.end));
                self.ctx.claim(self.partition, c).await;
            }
        }
        end
    }

    /// The connection ended: what was complete is sent on, and a line cut
    /// off by the end is kept in quarantine (it is never covered: a later
    /// delivery brings it whole).
    async fn finish(self, end: End) -> End {
        let limit = self.ctx.limits.max_line_bytes;
        let (pieces, rest) = self.framer.finish();
        for piece in pieces {
            if self.ctx.tx.send(Msg::Batch(piece.into_batch(&self.ctx.limits))).await.is_err() {
                return end;
            }
        }
        if let Some((bytes, len)) = rest.filter(|(b, _)| b.iter().any(|c| !c.is_ascii_whitespace())) {
            let mut why = "incomplete line: the connection ended in the middle of it".to_string();
            if len > limit {
                why.push_str(&format!(" ({len} bytes, over the limit of {limit}; the first {} kept)", bytes.len()));
            }
            let _ = self.ctx.tx.send(Msg::Batch(Batch::rejected(bytes, Rejection::NotJson(why)))).await;
        }
        end
    }
}

/// Error lines end a connection (`Forced Disconnect`); info and warn are
/// logged.
fn system_end(batch: &Batch) -> Option<End> {
    let mut end = None;
    for c in batch.classified() {
        if let Ok(Line::System(m)) = c {
            match m.level {
                SystemLevel::Error => {
                    tracing::warn!(message = %m.message, "error from the server");
                    end = Some(End::ServerError(m.message.clone()));
                }
                SystemLevel::Warn => {
                    tracing::warn!(message = %m.message, "warning from the server")
                }
                SystemLevel::Info if m.is_recovery_completed() => end = Some(End::Completed),
                SystemLevel::Info => {
                    tracing::info!(message = %m.message, "info from the server")
                }
            }
        }
    }
    end
}

/// An error's chain, for logs: reqwest errors can name the URL, which
/// carries no secret (credentials travel in a header).
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Sends a request and checks its status. A non-200 status is a refusal
/// with the start of its body (JSON errors from the service) for the log.
pub async fn request(ctx: &StreamCtx, url: &str) -> Result<reqwest::Response, End> {
    if !ctx.take_turn().await {
        return Err(End::Shutdown);
    }
    send_request(ctx, url).await
}

/// [`request`] without the limiter: the caller has taken its turn.
pub async fn send_request(ctx: &StreamCtx, url: &str) -> Result<reqwest::Response, End> {
    let send = ctx
        .client
        .get(url)
        .header(reqwest::header::AUTHORIZATION, ctx.secret.authorization())
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send();
    let resp = match tokio::time::timeout(ctx.clock.wall(ctx.cfg.liveness.silence.0), send).await {
        Err(_) => return Err(End::Refused(Cause::Network, "no response".into())),
        Ok(Err(e)) => return Err(End::Refused(Cause::Network, describe(&e))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if status == 200 {
        return Ok(resp);
    }
    let body =
        tokio::time::timeout(Duration::from_secs(2), resp.text()).await.ok().and_then(|r| r.ok()).unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    Err(End::Refused(Cause::of_status(status), format!("HTTP {status}: {}", body.trim())))
}

/// Activity times further than this ahead of stream time are not
/// believed (they are quarantined by storage): they must not push a
/// watermark into the future.
const FUTURE_SLACK_MS: i64 = 60_000;

/// The realtime tracker: see the module doc.
pub struct Realtime {
    /// Start (ms) of what was asked for.
    from_ms: i64,
    /// End (exclusive, Unix seconds) of what was claimed.
    claimed_to: i64,
    allowance_ms: i64,
    /// On streams with a data-silence bound: what the data proves.
    continuity: Option<Continuity>,
    /// Runs `[start, end]` (ms) proven but not all claimed yet.
    runs: Vec<(i64, i64)>,
    /// Nothing before this second is claimed: where earlier connections'
    /// coverage ended ([`Realtime::not_before`]), and, on streams that
    /// never pause, the first activity this connection delivered.
    floor: i64,
    /// The time of the first activity delivered.
    first_ms: Option<i64>,
}

impl Realtime {
    /// A connection that asked for data from `from_ms`; `prior`: the rate
    /// (activities per second) earlier connections of the stream observed.
    pub fn new(from_ms: i64, allowance: Duration, bound: Option<DataBound>, prior: Option<f64>) -> Realtime {
        Realtime {
            from_ms,
            claimed_to: i64::MIN,
            allowance_ms: allowance.as_millis() as i64,
            continuity: bound.map(|b| Continuity::new(from_ms, b, prior)),
            runs: Vec::new(),
            floor: i64::MIN,
            first_ms: None,
        }
    }

    /// Claims nothing before `secs` (Unix seconds): where the stream's
    /// coverage from earlier connections ends. A backfill reaches back
    /// whole minutes, before that point; what it brings there is kept, but
    /// its seconds are not judged again: an earlier connection left them
    /// holes for a reason (a gap in its data), and this one's start, a
    /// request, cannot prove a gap shorter than the bound empty (a server
    /// that omits the tail of a backfill).
    ///
    /// Likewise, on a stream that never pauses, nothing before the first
    /// activity the connection delivers is claimed: its requested start is
    /// a promise (a connection opened during a server's stall, whose data
    /// resumes a few seconds later, proves nothing about those seconds).
    /// A backfill starts before where coverage ended, so a reconnect leaves
    /// no sliver between the two.
    pub fn not_before(&mut self, secs: i64) {
        self.floor = self.floor.max(secs);
    }

    /// The end (exclusive, Unix seconds) of what this connection claimed.
    pub fn claimed_to(&self) -> Option<i64> {
        (self.claimed_to != i64::MIN).then_some(self.claimed_to)
    }

    /// The rate of activities this connection observed, per second.
    pub fn rate(&self) -> Option<f64> {
        self.continuity.as_ref().and_then(Continuity::rate)
    }

    /// The claimable seconds of `[start_ms, end_ms]`, clipped to `limit_ms`.
    fn claim(&mut self, start_ms: i64, end_ms: i64, limit_ms: i64, out: &mut Vec<Range<i64>>) {
        let start = (start_ms.div_euclid(1000) + i64::from(start_ms.rem_euclid(1000) != 0))
            .max(self.claimed_to)
            .max(self.floor);
        let end = end_ms.min(limit_ms).div_euclid(1000);
        if start < end {
            self.claimed_to = end;
            out.push(start..end);
        }
    }
}

impl Tracker for Realtime {
    fn observe(&mut self, batch: &Batch, now_ms: i64) -> Option<End> {
        let c = self.continuity.as_mut()?;
        for t in activity_times(batch).filter(|t| *t <= now_ms + FUTURE_SLACK_MS) {
            // The first activity delivered: nothing before it is this
            // connection's to claim (see `claim`).
            if self.first_ms.is_none() {
                self.first_ms = Some(t);
                self.floor = self.floor.max(t.div_euclid(1000) + i64::from(t.rem_euclid(1000) != 0));
            }
            c.observe(t);
        }
        for hole in c.settle() {
            tracing::debug!(
                gap_from = hole.start,
                gap_to = hole.end,
                bound_ms = c.bound_ms(),
                "no activity for longer than the data-silence bound: a hole"
            );
        }
        None
    }

    fn claims(&mut self, now_ms: i64) -> Vec<Range<i64>> {
        let limit = now_ms - self.allowance_ms;
        let mut out = Vec::new();
        let Some(c) = self.continuity.as_mut() else {
            // No data bound: the connection's life proves it.
            self.claim(self.from_ms, limit, limit, &mut out);
            return out;
        };
        let mut runs = std::mem::take(&mut self.runs);
        for run in c.runs() {
            // A run seen before, now longer (or ended by a hole).
            runs.retain(|r| r.0 != run.0);
            runs.push(run);
        }
        for &(s, e) in &runs {
            self.claim(s, e, limit, &mut out);
        }
        // Keep what is not claimed to its end yet (the allowance).
        runs.retain(|&(_, e)| e > limit);
        self.runs = runs;
        out
    }
}

/// Runs one realtime connection slot of a stream until shutdown or a
/// fatal refusal: connect, read, reconnect with backfill sized to the gap.
/// Its events are in a `connection` span (inside the caller's `stream`
/// span): they say which connection without repeating it.
pub async fn run_realtime(ctx: Arc<StreamCtx>, partition: Option<u32>, slot: u32) {
    let name = match partition {
        Some(p) => format!("partition-{p}/{slot}"),
        None => format!("stream/{slot}"),
    };
    let span = tracing::info_span!("connection", connection = %name);
    keep_connected(ctx, partition, slot, name).instrument(span).await
}

async fn keep_connected(ctx: Arc<StreamCtx>, partition: Option<u32>, slot: u32, name: String) {
    let mut backoff = Backoff::new(ctx.clock.now_ms() as u64 ^ ((partition.unwrap_or(0) as u64) << 32) ^ slot as u64);
    // Where this slot's coverage ends: after a restart, from the store.
    let cov_partition = partition.unwrap_or(1);
    // A fresh archive owes coverage from its start: the first connection
    // backfills to it.
    let owed = ctx.coverage.owed_from(&ctx.cfg.label).ok().flatten();
    let mut hole_from: Option<i64> = last_covered(&ctx, cov_partition).or(owed);
    let state = |s: ConnectionState| ConnectionStatus {
        partition,
        slot,
        state: s,
        connected_since_ms: None,
        last_byte_ms: None,
        claimed_to_secs: None,
        last_error: None,
    };
    ctx.metrics.set_connection(&name, state(ConnectionState::Connecting));
    while !ctx.stopping() {
        // Take the turn first: the limiter may make us wait, and the gap
        // (so `backfillMinutes`) grows while we do.
        ctx.metrics.update_connection(&name, |c| c.state = ConnectionState::Connecting);
        if !ctx.take_turn().await {
            break;
        }
        let now = ctx.clock.now_ms();
        // A gap of five minutes or less: backfill it all. A longer one is
        // Recovery's, or, on a stream without Recovery (Likes), Backfill
        // still saves its last five minutes.
        let backfill = ctx.cfg.backfill.then_some(hole_from).flatten().and_then(|h| {
            let minutes = (now - h * 1000 + 59_999).div_euclid(60_000).max(1);
            if minutes <= BACKFILL_MAX_MINUTES {
                Some(minutes)
            } else {
                ctx.cfg.recovery.is_none().then_some(BACKFILL_MAX_MINUTES)
            }
        });
        let mut url = ctx.cfg.url.clone();
        let mut query = Vec::new();
        if let Some(p) = partition {
            query.push(format!("partition={p}"));
        }
        if let Some(m) = backfill {
            query.push(format!("backfillMinutes={m}"));
        }
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let end = match send_request(&ctx, &url).await {
            Err(end) => end,
            Ok(resp) => {
                let t0 = ctx.clock.now_ms();
                let from = t0 - backfill.unwrap_or(0) * 60_000;
                tracing::info!(backfill_minutes = backfill.unwrap_or(0), "connected");
                ctx.metrics.update_connection(&name, |c| {
                    c.state = ConnectionState::Connected;
                    c.connected_since_ms = Some(t0);
                });
                let prior = ctx.metrics.observed_rate();
                let mut tracker =
                    Realtime::new(from, ctx.cfg.liveness.latency_allowance.0, ctx.cfg.data_bound(), prior);
                if let Some(h) = hole_from {
                    tracker.not_before(h);
                }
                let end = read_body(&ctx, &name, partition, resp, &mut tracker).await;
                if let Some(rate) = tracker.rate() {
                    ctx.metrics.set_observed_rate(rate);
                }
                if let Some(to) = tracker.claimed_to() {
                    hole_from = Some(to);
                } else if hole_from.is_none() {
                    hole_from = Some(from.div_euclid(1000));
                }
                if ctx.clock.now_ms() - t0 >= ctx.cfg.liveness.stable_after.0.as_millis() as i64 {
                    backoff.reset();
                }
                end
            }
        };
        if end == End::Shutdown {
            break;
        }
        // A hole the planner asks to backfill, asked for while this slot
        // was connected (its connection ended for it) or between two
        // connections.
        let asked = ctx.refill.borrow().clone();
        if let Some(r) = asked.filter(|r| ctx.misses(partition, r)) {
            hole_from = Some(hole_from.map_or(r.start, |h| h.min(r.start)));
        }
        if let End::Refill(from) = end {
            tracing::info!(from = %gapless_time::rfc3339(from), "reconnecting to backfill a hole");
            ctx.metrics.reconnected("refill");
            continue;
        }
        let cause = end.cause();
        ctx.metrics.reconnected(cause.label());
        let message = format!("{end:?}");
        match backoff.next(&cause) {
            None => {
                tracing::error!(reason = %message, "STREAM STOPPED: the server refused us in a way retrying cannot fix");
                if let Ok(mut f) = ctx.metrics.fatal.lock() {
                    *f = Some(message.clone());
                }
                ctx.metrics.update_connection(&name, |c| {
                    c.state = ConnectionState::Stopped;
                    c.last_error = Some(message);
                });
                return;
            }
            Some(wait) => {
                tracing::warn!(reason = %message, wait_ms = wait.as_millis() as u64, "connection ended; reconnecting");
                ctx.metrics.update_connection(&name, |c| {
                    c.state = ConnectionState::Backoff;
                    c.last_error = Some(message);
                });
                ctx.sleep(wait).await;
            }
        }
    }
    ctx.metrics.update_connection(&name, |c| c.state = ConnectionState::Stopped);
}

/// The end of the latest coverage of `partition` in the last backfill
/// reach: where a restarted archiver's hole begins.
fn last_covered(ctx: &StreamCtx, partition: u32) -> Option<i64> {
    let now = ctx.clock.now_secs();
    let ranges = ctx.coverage.covered_ranges(&ctx.cfg.label, partition, now - BACKFILL_MAX_MINUTES * 60..now).ok()?;
    ranges.last().map(|r| r.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(times: &[i64]) -> Batch {
        crate::lines::posts_at(times.iter().copied())
    }

    const CAP_5S: DataBound = DataBound::Derived { default_ms: 1000, cap_ms: 5000 };

    #[test]
    fn realtime_claims_trail_the_watermark_and_skip_data_holes() {
        let t0 = 1_700_000_000_000;
        // One activity a second: the bound is the cap, 5 s.
        let mut r = Realtime::new(t0, Duration::from_secs(13), Some(CAP_5S), Some(1.0));
        let every_second = |from: i64, to: i64| (from..=to).map(|s| t0 + s * 1000).collect::<Vec<_>>();
        // Heartbeats alone claim nothing on a stream that must carry data.
        assert_eq!(r.claims(t0 + 20_000), vec![]);
        assert_eq!(r.observe(&batch(&every_second(0, 19)), t0 + 20_000), None);
        // min(now - 13 s, newest activity - 3 s) = t0 + 7 s.
        assert_eq!(r.claims(t0 + 20_000), vec![t0 / 1000..t0 / 1000 + 7]);
        // 40 s of no activity, then data again: what came before the gap is
        // claimed up to 3 s before the last activity before it (disorder),
        // the gap is not.
        r.observe(&batch(&every_second(60, 61)), t0 + 80_000);
        assert_eq!(r.claims(t0 + 80_000), vec![t0 / 1000 + 7..t0 / 1000 + 16]);
        assert_eq!(r.claims(t0 + 80_000), vec![], "nothing after the hole is claimable yet");
        r.observe(&batch(&every_second(62, 70)), t0 + 90_000);
        // After it, from 3 s after the first activity.
        assert_eq!(r.claims(t0 + 90_000), vec![t0 / 1000 + 63..t0 / 1000 + 67]);
        assert_eq!(r.claimed_to(), Some(t0 / 1000 + 67));
    }

    #[test]
    fn a_backfill_claims_nothing_before_where_coverage_ended() {
        // Coverage of the partition ended at t0 + 240 s (the first activity
        // after a stretch the server withheld, `drop_realtime`). A
        // reconnect at t0 + 296 s backfills one minute, from t0 + 236 s; the
        // server omits the same stretch again, so its first activity is at
        // t0 + 240 s: 4 s after the requested start, under the 5 s bound.
        // Those 4 s were a hole and stay one.
        let t0 = 1_700_000_000_000;
        let mut r = Realtime::new(t0 + 236_000, Duration::from_secs(13), Some(CAP_5S), Some(5.0));
        r.not_before(t0 / 1000 + 240);
        let times: Vec<i64> = (0..250).map(|i| t0 + 240_000 + i * 200).collect();
        r.observe(&batch(&times), t0 + 296_000);
        let claims = r.claims(t0 + 296_000);
        assert!(!claims.is_empty());
        assert!(claims.iter().all(|c| c.start >= t0 / 1000 + 240), "{claims:?}");
        // Data the backfill did bring before that point is stored, not
        // claimed again.
        let mut r = Realtime::new(t0 + 236_000, Duration::from_secs(13), Some(CAP_5S), Some(5.0));
        r.not_before(t0 / 1000 + 240);
        let times: Vec<i64> = (0..300).map(|i| t0 + 236_000 + i * 200).collect();
        r.observe(&batch(&times), t0 + 296_000);
        assert_eq!(r.claims(t0 + 296_000).first().map(|c| c.start), Some(t0 / 1000 + 240));
    }

    #[test]
    fn nothing_before_the_first_activity_is_claimed() {
        // A connection opened during a server's stall-and-skip (no
        // backfill: the hole is Recovery's); its data resumes 4 s later,
        // under the 5 s bound. Those 4 s are not its to claim.
        let t0 = 1_700_000_000_000;
        let mut r = Realtime::new(t0, Duration::from_secs(13), Some(CAP_5S), Some(5.0));
        let times: Vec<i64> = (0..250).map(|i| t0 + 4_000 + i * 200).collect();
        r.observe(&batch(&times), t0 + 60_000);
        let claims = r.claims(t0 + 60_000);
        assert_eq!(claims.first().map(|c| c.start), Some(t0 / 1000 + 4), "{claims:?}");
        // Data from its start on: claimed from its start.
        let mut r = Realtime::new(t0, Duration::from_secs(13), Some(CAP_5S), Some(5.0));
        let times: Vec<i64> = (0..250).map(|i| t0 + i * 200).collect();
        r.observe(&batch(&times), t0 + 60_000);
        assert_eq!(r.claims(t0 + 60_000).first().map(|c| c.start), Some(t0 / 1000));
    }

    #[test]
    fn a_backfill_the_server_never_sent_is_not_claimed() {
        // The report of issue 9: connected at t0 + 60 s with
        // backfillMinutes=1 during a server-side stall; the server sends
        // nothing of the backfill, and realtime resumes at t0 + 20 s (its
        // activities delivered late). Heartbeats claim nothing, and with
        // the example's `data_silence = "30s"` (a cap) the 20 s without data
        // are still a hole: at 100 activities/s the bound is 1 s.
        let t0 = 1_700_000_000_000;
        let bound = DataBound::Derived { default_ms: 1000, cap_ms: 30_000 };
        let mut r = Realtime::new(t0, Duration::from_secs(13), Some(bound), None);
        let mut now = t0 + 60_000;
        assert_eq!(r.observe(&batch(&[]), now), None);
        assert_eq!(r.claims(now), vec![], "a heartbeat proves nothing");
        for s in 20..60 {
            now = t0 + s * 1000 + 61_000;
            let times: Vec<i64> = (0..100).map(|i| t0 + s * 1000 + i * 10).collect();
            r.observe(&batch(&times), now);
            for c in r.claims(now) {
                assert!(c.start >= t0 / 1000 + 20, "claimed {c:?}, before the first activity (t0 + 20 s)");
            }
        }
        assert_eq!(r.claimed_to(), Some(t0 / 1000 + 56));
        assert!(r.rate().is_some_and(|x| (x - 100.0).abs() < 5.0), "{:?}", r.rate());
    }

    #[test]
    fn an_activity_from_the_future_does_not_push_the_watermark() {
        let t0 = 1_700_000_000_000;
        let mut r = Realtime::new(t0, Duration::from_secs(13), Some(CAP_5S), Some(100.0));
        let mut times: Vec<i64> = (0..2000).map(|i| t0 + i * 10).collect();
        times.push(t0 + 86_400_000);
        r.observe(&batch(&times), t0 + 40_000);
        assert_eq!(r.claims(t0 + 40_000), vec![t0 / 1000..t0 / 1000 + 16]);
    }

    #[test]
    fn without_a_data_bound_heartbeats_carry_coverage() {
        let t0 = 1_700_000_000_500;
        let mut r = Realtime::new(t0, Duration::from_secs(13), None, None);
        assert_eq!(r.claims(t0 + 30_000), vec![t0 / 1000 + 1..t0 / 1000 + 17]);
        assert_eq!(r.claims(t0 + 30_400), vec![]);
        assert_eq!(r.claimed_to(), Some(t0 / 1000 + 17));
    }
}
