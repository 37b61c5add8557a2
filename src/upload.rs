//! The copy in the bucket: one uploader task per stream (`[archive]`).
//!
//! Every `interval` (wall time) it asks `gapless_bucket::upload::Uploader`
//! to copy the stream's settled minutes (no new data for `settle`, stream
//! time: a minute is usually sealed by then, so it is copied once) and to
//! publish the manifests that cover them. The first round of a process
//! looks back to where the archive owes coverage from (minutes the last
//! process could not copy); later rounds look back one recovery window and
//! a day, where late data and Recovery change minutes.
//!
//! A round that fails (the bucket away, a request refused) changes nothing
//! in the bucket; the next is tried after the backoff of a server error
//! (`backoff.rs`: exponential from 5 s to 320 s, ±20% jitter, wall time). Nothing local is removed, so a
//! bucket that is away loses nothing: `/status` and `/metrics` show since
//! when the bucket is behind.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use gapless_bucket::lease::{self, Slots};
use gapless_bucket::peers::PeerCoverage;
use gapless_bucket::upload::Uploader;
use gapless_bucket::Bucket;
use gapless_storage::coverage::CoverageMap;
use gapless_storage::Minute;
use tokio::sync::watch;
use tracing::Instrument;

use crate::backoff::{Backoff, Cause};
use crate::clock::Clock;
use crate::config::Archive;
use crate::metrics::StreamMetrics;
use crate::writer::Msg;

/// How long a planner waits, after start, for the first read of the other
/// sites' coverage before it plans Recovery without it (a bucket that is
/// away must not stop Recovery).
pub const PEERS_WAIT: Duration = Duration::from_secs(30);

/// What the stream's other sites cover (from the bucket), shared by the
/// uploader, which reads it each round, and the planner, which does not
/// spend Recovery jobs where another site holds the data.
pub struct Peers {
    coverage: std::sync::RwLock<Option<PeerCoverage>>,
    started: std::time::Instant,
}

impl Peers {
    pub fn new() -> Arc<Peers> {
        Arc::new(Peers { coverage: std::sync::RwLock::new(None), started: std::time::Instant::now() })
    }

    /// The other sites' coverage as last read; `None` if never read yet.
    pub fn get(&self) -> Option<PeerCoverage> {
        self.coverage.read().ok().and_then(|c| c.clone())
    }

    fn set(&self, c: PeerCoverage) {
        if let Ok(mut slot) = self.coverage.write() {
            *slot = Some(c);
        }
    }

    /// Whether a planner should wait for the first read: not read yet, and
    /// not for long.
    pub fn worth_waiting(&self) -> bool {
        self.get().is_none() && self.started.elapsed() < PEERS_WAIT
    }
}

/// The account's Recovery slots shared with the other sites through the
/// bucket (`gapless_bucket::lease`), on top of the process's own two.
pub struct SiteSlots {
    slots: Slots,
    site: String,
}

/// A slot this site holds for a running job: renewed in the background
/// until [`Held::release`].
pub struct Held {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SiteSlots {
    pub fn new(bucket: &Bucket, account: &str, site: &str) -> Arc<SiteSlots> {
        let slots = Slots::new(bucket.clone(), account, crate::archiver::RECOVERY_SLOTS, lease::TTL);
        Arc::new(SiteSlots { slots, site: site.to_string() })
    }

    /// Takes one of the account's slots for `job` of `stream`: `Ok(None)`
    /// if the other sites hold them all; an error if the bucket cannot say
    /// (the caller goes on without: the service's 429 is the last word).
    pub async fn acquire(&self, stream: &str, job: u64) -> gapless_bucket::Result<Option<Held>> {
        let Some(mut lease) = self.slots.acquire(&self.site, stream, &format!("{job}"), wall_ms()).await? else {
            return Ok(None);
        };
        let slots = self.slots.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(
            async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(lease::TTL / 3) => {
                            match slots.renew(&mut lease, wall_ms()).await {
                                Ok(true) => {}
                                Ok(false) => {
                                    tracing::warn!("the Recovery slot was taken by another site after it expired");
                                    return;
                                }
                                Err(e) => tracing::warn!(error = %e, "could not renew the Recovery slot"),
                            }
                        }
                        _ = &mut stopped => {
                            if let Err(e) = slots.release(lease, wall_ms()).await {
                                tracing::warn!(error = %e, "could not give back the Recovery slot (it expires)");
                            }
                            return;
                        }
                    }
                }
            }
            .in_current_span(),
        );
        Ok(Some(Held { stop: Some(stop), task }))
    }
}

impl Held {
    /// Gives the slot back and waits until the bucket says so.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What one stream's uploader needs.
pub struct UploadCtx {
    pub archive: Archive,
    pub bucket: Bucket,
    pub data: std::path::PathBuf,
    pub label: String,
    pub coverage: Arc<CoverageMap>,
    /// How far back minutes still change (the stream's recovery window).
    pub reach: Duration,
    pub clock: Clock,
    pub metrics: Arc<StreamMetrics>,
    pub shutdown: watch::Receiver<bool>,
    pub peers: Arc<Peers>,
    /// The stream's storage thread, which evicts.
    pub writer: tokio::sync::mpsc::Sender<Msg>,
    /// The data directory's identity, named in the manifests.
    pub identity: String,
    /// `[compliance] purge`: purge passes are mirrored onto the minutes
    /// evicted to the bucket ([`mirror_purge`]).
    pub purge: bool,
}

/// Applies the last purge pass of the stream in `stream_dir` (the purge
/// log's events) to the minutes evicted to the bucket, which the pass
/// itself cannot reach (`Uploader::purge_evicted`), once per new event in
/// the log: how many were applied is recorded when done. `None` when
/// there was nothing new to mirror.
pub async fn mirror_purge(
    up: &mut Uploader,
    stream_dir: &std::path::Path,
) -> anyhow::Result<Option<gapless_bucket::upload::EvictedPurge>> {
    use gapless_storage::compliance::{purge, Policy, PurgeLog};
    let fs = Arc::new(gapless_storage::io::StdFs);
    let log = PurgeLog::new(fs.clone(), stream_dir).read()?;
    let logged = log.events.len() as u64;
    if logged == 0 || purge::bucket_mark(stream_dir)?.is_some_and(|m| m >= logged) {
        return Ok(None);
    }
    let done = up.purge_evicted(&Policy::of(&log.events)).await?;
    purge::set_bucket_mark(fs.as_ref(), stream_dir, logged)?;
    Ok(Some(done))
}

/// Runs until shutdown.
pub async fn run_uploader(mut ctx: UploadCtx) {
    let mut up = Uploader::new(ctx.bucket.clone(), &ctx.archive.site, &ctx.data, &ctx.label, ctx.coverage.clone());
    up = up.with_writer(&ctx.identity);
    if let Some(max) = ctx.archive.local_max {
        up = up.with_local_max(max);
    }
    let mut first = true;
    // Behind from where the archive owes coverage until a round confirms more.
    let owed_ms = ctx.coverage.owed_from(&ctx.label).ok().flatten().map_or(ctx.clock.now_ms(), |s| s * 1000);
    ctx.metrics.bucket_synced_ms.store(owed_ms, Ordering::Relaxed);
    ctx.metrics.bucket_settle_ms.store((ctx.archive.settle.as_millis() as i64).max(1), Ordering::Relaxed);
    let mut failures = 0u32;
    let mut backoff = Backoff::new(ctx.label.len() as u64 ^ ctx.clock.now_ms() as u64);
    tracing::info!(bucket = %ctx.bucket.url(), site = %ctx.archive.site, "copying settled minutes to the bucket");
    loop {
        let now_ms = ctx.clock.now_ms();
        let settled = Minute::of_ms(now_ms - ctx.archive.settle.as_millis() as i64);
        let back = (ctx.reach + Duration::from_secs(86_400)).as_millis() as i64;
        let mut from = Minute::of_ms(now_ms - back);
        if first {
            if let Ok(Some(owed)) = ctx.coverage.owed_from(&ctx.label) {
                from = from.min(Minute::of_secs(owed));
            }
        }
        // A shutdown does not wait for a round (a bucket that is away): a
        // round cut short has published nothing it did not finish, and
        // the next process copies what it left.
        let round = tokio::select! {
            r = up.round(from..Minute::of_ms(now_ms).next(), settled) => r,
            _ = ctx.shutdown.wait_for(|s| *s) => return,
        };
        let wait = match round {
            Ok(round) => {
                first = first && round.restarted;
                failures = 0;
                backoff.reset();
                StreamMetrics::add(&ctx.metrics.uploaded_objects, round.objects as u64);
                StreamMetrics::add(&ctx.metrics.uploaded_bytes, round.bytes);
                if !round.restarted {
                    ctx.metrics.bucket_synced_ms.store(settled.start_ms(), Ordering::Relaxed);
                    if let Ok(mut e) = ctx.metrics.upload_error.lock() {
                        *e = None;
                    }
                }
                if !round.evictions.is_empty() {
                    // The storage thread removes them (it is their writer).
                    let _ = ctx.writer.send(Msg::Evict(round.evictions.clone())).await;
                }
                if round.objects > 0 || round.manifests > 0 {
                    tracing::info!(
                        objects = round.objects,
                        bytes = round.bytes,
                        manifests = round.manifests,
                        "copied to the bucket"
                    );
                }
                if ctx.purge {
                    let stream_dir = gapless_storage::layout::stream_dir(&ctx.data, &ctx.label);
                    let mirrored = tokio::select! {
                        m = mirror_purge(&mut up, &stream_dir) => m,
                        _ = ctx.shutdown.wait_for(|s| *s) => return,
                    };
                    match mirrored {
                        Ok(Some(p)) if p.minutes > 0 => tracing::info!(
                            minutes = p.minutes,
                            records_removed = p.purged,
                            records_scrubbed = p.scrubbed,
                            "compliance purge applied to minutes evicted to the bucket"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "compliance purge of evicted minutes failed; retrying next round")
                        }
                    }
                }
                ctx.archive.interval
            }
            Err(e) => {
                failures += 1;
                StreamMetrics::add(&ctx.metrics.upload_errors, 1);
                tracing::warn!(error = %e, failures, "copy to the bucket failed; the local archive keeps everything, retrying");
                if let Ok(mut slot) = ctx.metrics.upload_error.lock() {
                    *slot = Some(e.to_string());
                }
                // The bucket's 5xx or its absence: the same patience.
                backoff.next(&Cause::Server(503)).unwrap_or(ctx.archive.interval)
            }
        };
        // The other sites' coverage over the same span, for the planner.
        let span = from..Minute::of_ms(now_ms).next();
        let peers = tokio::select! {
            p = gapless_bucket::peers::read(&ctx.bucket, &ctx.archive.site, &ctx.label, span) => p,
            _ = ctx.shutdown.wait_for(|s| *s) => return,
        };
        match peers {
            Ok(p) => ctx.peers.set(p),
            Err(e) => tracing::warn!(error = %e, "could not read the other sites' coverage"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.shutdown.wait_for(|s| *s) => return,
        }
    }
}
