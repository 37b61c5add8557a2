//! The archiver: every configured stream, kept complete.
//!
//! Per stream it runs a storage thread (see `writer.rs`), one realtime task
//! per (partition, redundant slot) (`connection.rs`) and a recovery planner
//! (`planner.rs`), all sharing the stream's connection limiter. Recovery
//! jobs of an account's streams share two slots: the service's limit is
//! per account ([`recovery_slots`]).
//!
//! Shutdown (SIGINT, SIGTERM, or the `shutdown` watch): every task stops
//! reading; the storage threads commit what they have and record the
//! coverage claimed before it; then the process exits 0. Nothing is
//! claimed that was not received, so a restart finds the exact hole of its
//! downtime and backfills or recovers it.
//!
//! Logs: whatever a stream's tasks log is inside a `stream{stream=LABEL}`
//! span (`stream{stream=LABEL site=SITE}` with a bucket); a realtime connection adds `connection{connection=partition-1/0}`,
//! the planner `planner`, a Recovery job `recovery{job=ID}`; the storage
//! thread logs in the stream's span. Events do not repeat these fields.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gapless_storage::activity::Limits;
use gapless_storage::store::{Store, StoreConfig};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::Config;
use crate::connection::{run_realtime, StreamCtx};
use crate::limiter::Limiter;
use crate::metrics::{Metrics, StreamMetrics};
use crate::planner::run_planner;

/// Recovery jobs allowed at once per account.
pub const RECOVERY_SLOTS: usize = 2;

pub struct Options {
    pub config: Config,
    pub clock: Clock,
    /// Owe coverage from this Unix second (inside the recovery window), not
    /// only from the first start.
    pub since_secs: Option<i64>,
    /// The filesystem of the streams' files (`None`: the real one). Tests
    /// inject disk faults here.
    pub fs: Option<std::sync::Arc<dyn gapless_storage::io::Filesystem>>,
}

/// A running archiver, for in-process use (tests, the demo).
pub struct Running {
    pub metrics: Arc<Metrics>,
    pub admin: Option<std::net::SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops reading, commits, records coverage, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("archiver task")?
    }
}

/// Starts the archiver; it runs until [`Running::stop`].
pub async fn start(opts: Options) -> anyhow::Result<Running> {
    let (shutdown, rx) = watch::channel(false);
    let fs = opts.fs.clone().unwrap_or_else(gapless_storage::io::StdFs::shared);
    let store = Store::open_with(&opts.config.data, StoreConfig::default(), fs)
        .with_context(|| format!("open data directory {}", opts.config.data.display()))?;
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .context("build the HTTP client")?;
    let slots = recovery_slots(&opts.config.streams);
    let mut metrics = Metrics::default();
    let mut tasks = Vec::new();
    let mut threads = Vec::new();
    let coverage = store.coverage().clone();
    let now = opts.clock.now_secs();
    // The bucket, if the archive is copied to one: its URL's form is
    // checked here, its reachability by the uploaders (a bucket that is
    // away delays the copy; it does not stop archiving).
    let bucket = match &opts.config.archive {
        Some(a) => Some(gapless_bucket::Bucket::open(&a.url).context("[archive]")?),
        None => None,
    };
    // What names this archiver in the bucket's manifests of its site.
    let identity = match &bucket {
        Some(_) => store.identity().context("the data directory's identity")?,
        None => String::new(),
    };
    for (cfg, slots) in opts.config.streams.iter().zip(slots) {
        let secret = cfg.credentials.load().with_context(|| format!("stream {}", cfg.label))?;
        let partitions = cfg.coverage_partitions();
        coverage.set_partitions(&cfg.label, partitions)?;
        let reach = cfg.reach().as_secs() as i64;
        let owed_from = opts.since_secs.map_or(now, |s| s.clamp(now - reach, now));
        let owed = coverage.owe_from(&cfg.label, owed_from)?;
        coverage.set_recovery_window(&cfg.label, reach)?;
        // The stream's tasks, its storage thread included, log inside this span.
        let span = tracing::info_span!("stream", stream = %cfg.label, site = tracing::field::Empty);
        if let Some(a) = &opts.config.archive {
            // Archivers of one stream on several sites may log to one place.
            span.record("site", tracing::field::display(&a.site));
        }
        span.in_scope(|| tracing::info!(kind = cfg.kind.name(), partitions = cfg.partitions, owed_from = %gapless_time::rfc3339(owed), "archiving"));
        let m = Arc::new(StreamMetrics::new(&cfg.label, cfg.kind.name()));
        metrics.streams.push(m.clone());
        let (tx, rx_msgs) = mpsc::channel(256);
        let writer = store.stream(&cfg.label)?;
        threads.push(span.in_scope(|| {
            crate::writer::spawn(
                writer,
                coverage.clone(),
                partitions,
                m.clone(),
                opts.clock,
                opts.config.purge,
                rx_msgs,
            )
        })?);
        let ctx = Arc::new(StreamCtx {
            cfg: cfg.clone(),
            clock: opts.clock,
            client: client.clone(),
            secret,
            limiter: Limiter::new(10, Duration::from_secs(60), opts.clock),
            tx,
            metrics: m,
            coverage: coverage.clone(),
            shutdown: rx.clone(),
            limits: Limits::default(),
            refill: watch::channel(None).0,
            peers: bucket.as_ref().map(|_| crate::upload::Peers::new()),
            site_slots: match (&bucket, &opts.config.archive) {
                (Some(b), Some(a)) => Some(crate::upload::SiteSlots::new(b, &cfg.account, &a.site)),
                _ => None,
            },
        });
        let parts: Vec<Option<u32>> =
            if cfg.partitions == 0 { vec![None] } else { (1..=cfg.partitions).map(Some).collect() };
        for p in parts {
            for slot in 0..cfg.connections_per_partition {
                tasks.push(tokio::spawn(run_realtime(ctx.clone(), p, slot).instrument(span.clone())));
            }
        }
        if let (Some(archive), Some(bucket)) = (&opts.config.archive, &bucket) {
            let up = crate::upload::UploadCtx {
                archive: archive.clone(),
                bucket: bucket.clone(),
                data: opts.config.data.clone(),
                label: cfg.label.clone(),
                coverage: coverage.clone(),
                reach: cfg.reach(),
                clock: opts.clock,
                metrics: ctx.metrics.clone(),
                shutdown: rx.clone(),
                peers: ctx.peers.clone().unwrap_or_else(crate::upload::Peers::new),
                writer: ctx.tx.clone(),
                identity: identity.clone(),
                purge: opts.config.purge.is_some(),
            };
            let upload_span = tracing::info_span!(parent: &span, "upload");
            tasks.push(tokio::spawn(crate::upload::run_uploader(up).instrument(upload_span)));
        }
        tasks.push(tokio::spawn(run_planner(ctx, slots).instrument(span)));
    }
    let metrics = Arc::new(metrics);
    let admin = match opts.config.admin {
        Some(addr) => Some(
            crate::admin::serve(
                addr,
                metrics.clone(),
                coverage.clone(),
                opts.clock,
                opts.config.streams.clone(),
                rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // Where the tools find the admin API while this process holds the store.
    let url_file = admin.and_then(|bound| match crate::admin::publish_url(&opts.config.data, bound) {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "admin API: could not write admin.url (the tools then need --admin URL)");
            None
        }
    });
    let task = tokio::spawn(async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
        // The admin API stops with the shutdown: nothing answers there now.
        if let Some(path) = &url_file {
            crate::admin::withdraw_url(path);
        }
        tracing::info!("stopping: committing and recording coverage");
        for t in tasks {
            let _ = t.await;
        }
        // Every sender is gone with its task: the storage threads commit
        // a last time and end.
        let joined = tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok())).await;
        drop(store);
        anyhow::ensure!(joined.unwrap_or(false), "a storage thread panicked");
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running { metrics, admin, shutdown, task })
}

/// The Recovery slots of each stream, in order: [`RECOVERY_SLOTS`] per
/// account, shared by the account's streams; streams of other accounts
/// have their own.
pub fn recovery_slots(streams: &[crate::config::Stream]) -> Vec<Arc<Semaphore>> {
    let mut by_account: std::collections::HashMap<&str, Arc<Semaphore>> = std::collections::HashMap::new();
    streams
        .iter()
        .map(|s| {
            by_account.entry(s.account.as_str()).or_insert_with(|| Arc::new(Semaphore::new(RECOVERY_SLOTS))).clone()
        })
        .collect()
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let running = start(opts).await?;
    wait_for_signal().await;
    running.stop().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_slots_are_two_per_account() {
        let text = "credentials={env='X'}\n\
            [[stream]]\nlabel='a'\nkind='decahose'\nurl='http://h/stream/sample10/accounts/one/publishers/twitter/prod.json'\n\
            [[stream]]\nlabel='b'\nkind='firehose'\nurl='http://h/stream/firehose/accounts/two/publishers/twitter/prod.json'\n\
            [[stream]]\nlabel='c'\nkind='decahose'\nurl='http://h/stream/sample10/accounts/one/publishers/twitter/dev.json'\n";
        let config = Config::parse(text, std::path::Path::new(".")).unwrap();
        let slots = recovery_slots(&config.streams);
        assert!(Arc::ptr_eq(&slots[0], &slots[2]), "one account's streams share their slots");
        assert!(!Arc::ptr_eq(&slots[0], &slots[1]), "another account has its own");
        assert!(slots.iter().all(|s| s.available_permits() == RECOVERY_SLOTS));
    }
}
