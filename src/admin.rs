//! The admin API, on 127.0.0.1 by default:
//! - `GET /status`: JSON: streams, connections, holes, jobs, lag;
//! - `GET /coverage?from=S&to=S[&stream=L]`: the coverage report in the
//!   `gapless.coverage/1` schema of `inspect-coverage --json` (default
//!   window: the last 24 hours, as the tool), so that `inspect-coverage --admin URL` can
//!   read it while the archiver holds the store;
//! - `GET /metrics`: Prometheus text, by Prometheus' conventions
//!   (`promtool check metrics` is clean): base units (minute counts are
//!   given in seconds, 60 a minute), counters end in `_total`, a HELP and a
//!   TYPE for each family.
//!
//! # It cannot starve the archiver
//! It has no authentication, so it listens on loopback by default and says
//! so loudly when it does not. Whatever its clients do, it costs bounded
//! work: a `/coverage` window spans at most [`Limits::max_span_secs`] (7
//! days, more than the longest recovery window; a clear 400 past it), the
//! report is built off the async runtime (`spawn_blocking`: reading the
//! store blocks), headers must arrive within [`Limits::header_read`], a
//! connection serves one request (no keep-alive) and lives at most
//! [`Limits::connection_lifetime`], at most [`Limits::max_connections`] are
//! served at once (more are closed at once), and accept errors (out of
//! file descriptors) back off instead of spinning.
//!
//! # Where it listens
//! Once it listens, the archiver writes its base URL (`http://ADDR`, one
//! line) to `DATA/admin.url` ([`gapless_storage::layout::admin_url_path`]),
//! atomically (a temporary file renamed over it), and removes it when it
//! stops cleanly ([`publish_url`], [`withdraw_url`]). So `inspect-coverage
//! --data DIR` and `segment-export --data DIR` find the archiver that holds
//! the store without being told; they trust the file only while the store
//! is locked (an archiver that was killed leaves it behind).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gapless_storage::coverage::CoverageMap;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Stream;
use crate::metrics::{Metrics, StreamMetrics};

/// A Prometheus series: name, help, and how to read it from a stream.
type Counter = (&'static str, &'static str, fn(&StreamMetrics) -> u64);
type Gauge = (&'static str, &'static str, fn(&StreamMetrics, i64) -> i64);

struct Admin {
    metrics: Arc<Metrics>,
    coverage: Arc<CoverageMap>,
    clock: Clock,
    streams: Vec<Stream>,
    limits: Limits,
    /// Tests hold a report here, to show that it blocks no runtime thread.
    #[cfg(test)]
    report_gate: Option<Arc<tests::Gate>>,
}

/// What the admin API allows its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The widest `/coverage` window.
    pub max_span_secs: i64,
    /// Request headers must be in within this (wall time).
    pub header_read: Duration,
    /// A connection is closed after this, whatever it is doing.
    pub connection_lifetime: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_span_secs: 7 * 86_400,
            header_read: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(60),
            max_connections: 32,
        }
    }
}

/// The warning for an address other than loopback: the API has no
/// authentication.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!("ADMIN API LISTENS ON {addr}, NOT ONLY LOOPBACK: it has no authentication; anyone who reaches this address reads the archive's status and coverage (bind 127.0.0.1, or put an authenticating proxy in front)")
    })
}

/// Binds and serves until shutdown; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    coverage: Arc<CoverageMap>,
    clock: Clock,
    streams: Vec<Stream>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    serve_with(addr, metrics, coverage, clock, streams, shutdown, Limits::default()).await
}

/// [`serve`] with chosen limits.
pub async fn serve_with(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    coverage: Arc<CoverageMap>,
    clock: Clock,
    streams: Vec<Stream>,
    shutdown: watch::Receiver<bool>,
    limits: Limits,
) -> anyhow::Result<SocketAddr> {
    let admin = Admin {
        metrics,
        coverage,
        clock,
        streams,
        limits,
        #[cfg(test)]
        report_gate: None,
    };
    listen(addr, admin, shutdown).await
}

async fn listen(addr: SocketAddr, admin: Admin, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<SocketAddr> {
    let limits = admin.limits;
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("admin API: bind {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let admin = Arc::new(admin);
    tracing::info!(address = %bound, "admin API: /status /coverage /metrics");
    if let Some(w) = exposure_warning(bound) {
        tracing::warn!(address = %bound, "{w}");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                a = listener.accept() => a,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => {
                    backoff = Duration::ZERO;
                    tcp
                }
                Err(e) => {
                    // Out of file descriptors, say: wait, do not spin.
                    backoff = accept_backoff(backoff);
                    tracing::warn!(error = %e, wait_ms = backoff.as_millis() as u64, "admin API: accept failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            // Too many at once: this one is closed at once.
            let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
            let admin = admin.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.route(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_read)
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
                let _ = tokio::time::timeout(limits.connection_lifetime, conn).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}

/// The wait after a failed accept, given the previous one (zero after a
/// success): doubling from 10 ms to at most 1 s, so that a listener out of
/// file descriptors neither spins nor stays deaf for long once they free.
pub fn accept_backoff(previous: Duration) -> Duration {
    (previous * 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The base URL of an admin API bound to `bound`: an unspecified address
/// (`0.0.0.0`, `[::]`) is reached on loopback.
pub fn base_url(bound: SocketAddr) -> String {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// Writes `DATA/admin.url` (the base URL of `bound`, one line) atomically;
/// returns its path.
pub fn publish_url(data: &std::path::Path, bound: SocketAddr) -> std::io::Result<std::path::PathBuf> {
    let path = gapless_storage::layout::admin_url_path(data);
    let tmp = gapless_storage::layout::tmp_path(&path);
    std::fs::write(&tmp, format!("{}\n", base_url(bound)))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Removes what [`publish_url`] wrote (a clean stop).
pub fn withdraw_url(path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "admin API: could not remove the URL file"),
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

impl Admin {
    async fn route(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.method() != hyper::Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".into());
        }
        match req.uri().path() {
            "/status" => reply(StatusCode::OK, "application/json", self.status().to_string()),
            "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", self.prometheus()),
            "/coverage" => {
                let query = req.uri().query().unwrap_or("").to_string();
                let admin = self.clone();
                // Reading the store blocks: not on the runtime's threads.
                match tokio::task::spawn_blocking(move || admin.coverage_report(&query)).await {
                    Ok(Ok(body)) => reply(StatusCode::OK, "application/json", body),
                    Ok(Err(e)) => reply(
                        StatusCode::BAD_REQUEST,
                        "application/json",
                        json!({ "error": format!("{e:#}") }).to_string(),
                    ),
                    Err(e) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "application/json",
                        json!({ "error": e.to_string() }).to_string(),
                    ),
                }
            }
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "try /status, /coverage or /metrics\n".into()),
        }
    }

    fn status(&self) -> serde_json::Value {
        let now_ms = self.clock.now_ms();
        let streams: Vec<serde_json::Value> = self
            .metrics
            .streams
            .iter()
            .map(|m| {
                let get = StreamMetrics::get;
                let holes: Vec<serde_json::Value> = m
                    .holes
                    .lock()
                    .map(|h| h.iter().map(|(s, e)| json!({ "start": gapless_time::rfc3339(*s), "end": gapless_time::rfc3339(*e), "start_secs": s, "end_secs": e, "seconds": e - s })).collect())
                    .unwrap_or_default();
                json!({
                    "label": m.label,
                    "kind": m.kind,
                    "fatal": m.fatal.lock().ok().and_then(|f| f.clone()),
                    "connections": m.connections.lock().map(|c| c.iter().map(|(k, v)| json!({ "name": k, "state": v })).collect::<Vec<_>>()).unwrap_or_default(),
                    "jobs": m.jobs.lock().map(|j| j.values().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                    "holes": holes,
                    "lag_ms": m.lag_ms(now_ms),
                    "received": get(&m.received),
                    "stored": get(&m.stored),
                    "duplicates": get(&m.duplicates),
                    "quarantined": get(&m.quarantined),
                    "heartbeats": get(&m.heartbeats),
                    "commit_errors": get(&m.commit_errors),
                    "bucket": m.bucket_status(now_ms),
                })
            })
            .collect();
        json!({ "now": gapless_time::rfc3339(now_ms / 1000), "now_ms": now_ms, "streams": streams })
    }

    fn coverage_report(&self, query: &str) -> anyhow::Result<String> {
        #[cfg(test)]
        if let Some(gate) = &self.report_gate {
            gate.pass();
        }
        let now = self.clock.now_secs();
        let mut q = if query.contains("from=") {
            gapless_report::query::Query::from_query_string(query)?
        } else {
            let mut q = gapless_report::query::Query::from_query_string(query)
                .unwrap_or_else(|_| gapless_report::query::Query::new(0, 0));
            q.from_secs = now - 86_400;
            q.to_secs = now;
            q
        };
        let span = q.to_secs.saturating_sub(q.from_secs);
        anyhow::ensure!(
            span <= self.limits.max_span_secs,
            "the window spans {span} s; at most {} s ({} days) per request: ask for it in pieces",
            self.limits.max_span_secs,
            self.limits.max_span_secs / 86_400
        );
        q.now_secs.get_or_insert(now);
        if let Some(s) = self.streams.iter().find(|s| q.streams.is_empty() || q.streams.contains(&s.label)) {
            q.recovery_window_secs = s.reach().as_secs() as i64;
        }
        let report = gapless_report::build::build(&self.coverage, &q, "archiver", env!("CARGO_PKG_VERSION"))?;
        Ok(serde_json::to_string(&report)?)
    }

    fn prometheus(&self) -> String {
        let mut out = String::new();
        let now_ms = self.clock.now_ms();
        let counters: [Counter; 15] = [
            ("gapless_received_total", "Lines received (activities, system messages, bad lines).", |m| {
                StreamMetrics::get(&m.received)
            }),
            ("gapless_stored_total", "Activities stored.", |m| StreamMetrics::get(&m.stored)),
            ("gapless_duplicates_total", "Copies dropped by the ID index.", |m| StreamMetrics::get(&m.duplicates)),
            ("gapless_quarantined_total", "Lines quarantined.", |m| StreamMetrics::get(&m.quarantined)),
            ("gapless_bytes_total", "Decompressed bytes received.", |m| StreamMetrics::get(&m.bytes)),
            ("gapless_heartbeats_total", "Heartbeats received.", |m| StreamMetrics::get(&m.heartbeats)),
            ("gapless_system_messages_total", "System messages (info, warn, error) received.", |m| {
                StreamMetrics::get(&m.system_messages)
            }),
            ("gapless_commits_total", "Successful commits.", |m| StreamMetrics::get(&m.commits)),
            ("gapless_commit_errors_total", "Failed commits (coverage did not advance).", |m| {
                StreamMetrics::get(&m.commit_errors)
            }),
            ("gapless_connections_connected", "Connections currently connected.", |m| m.connected() as u64),
            ("gapless_recovery_jobs_started_total", "Recovery jobs started.", |m| {
                StreamMetrics::get(&m.recovery_jobs_started)
            }),
            (
                "gapless_bucket_evicted_segments_total",
                "Local segments evicted after their copy in the bucket was verified.",
                |m| StreamMetrics::get(&m.evicted_minutes),
            ),
            ("gapless_bucket_uploaded_objects_total", "Segment objects uploaded to the bucket and verified.", |m| {
                StreamMetrics::get(&m.uploaded_objects)
            }),
            ("gapless_bucket_uploaded_bytes_total", "Bytes of segment objects uploaded and verified.", |m| {
                StreamMetrics::get(&m.uploaded_bytes)
            }),
            ("gapless_bucket_upload_errors_total", "Upload rounds that failed (retried; nothing is lost).", |m| {
                StreamMetrics::get(&m.upload_errors)
            }),
        ];
        for (name, help, f) in counters {
            let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for m in &self.metrics.streams {
                let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", m.label, f(m));
            }
        }
        let _ = writeln!(
            out,
            "# HELP gapless_bucket_behind_seconds Stream seconds of settled data not yet confirmed in the bucket (absent without [archive]).\n# TYPE gapless_bucket_behind_seconds gauge"
        );
        for m in &self.metrics.streams {
            if let Some(behind) = m.bucket_behind_ms(now_ms) {
                let _ = writeln!(out, "gapless_bucket_behind_seconds{{stream=\"{}\"}} {}", m.label, behind / 1000);
            }
        }
        // Where the storage thread's time goes, in seconds (Prometheus'
        // base unit; kept in µs).
        let seconds: [Counter; 3] = [
            (
                "gapless_storage_accept_seconds_total",
                "Storage thread time accepting batches (dedup, buffering).",
                |m| StreamMetrics::get(&m.accept_micros),
            ),
            ("gapless_storage_write_seconds_total", "Storage thread time compressing and appending frames.", |m| {
                StreamMetrics::get(&m.write_micros)
            }),
            (
                "gapless_storage_sync_seconds_total",
                "Storage thread time in fsync (segments, directories, logs).",
                |m| StreamMetrics::get(&m.sync_micros),
            ),
        ];
        for (name, help, f) in seconds {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for m in &self.metrics.streams {
                let _ = writeln!(out, "{name}{{stream=\"{}\"}} {:.6}", m.label, f(m) as f64 / 1e6);
            }
        }
        let _ = writeln!(
            out,
            "# HELP gapless_reconnects_total Reconnects, by cause.\n# TYPE gapless_reconnects_total counter"
        );
        for m in &self.metrics.streams {
            if let Ok(r) = m.reconnects.lock() {
                for (cause, n) in r.iter() {
                    let _ = writeln!(out, "gapless_reconnects_total{{stream=\"{}\",cause=\"{cause}\"}} {n}", m.label);
                }
            }
        }
        // Minute counts in base units (seconds: 60 a minute), as Prometheus
        // asks: `promtool check metrics` flags `_minutes`.
        fn minutes(n: &std::sync::atomic::AtomicU64) -> i64 {
            n.load(std::sync::atomic::Ordering::Relaxed) as i64 * 60
        }
        let gauges: [Gauge; 6] = [
            (
                "gapless_window_full_seconds",
                "Seconds of the minutes inside the recovery window that are full (60 a minute; planner's last pass).",
                |m, _| minutes(&m.covered_minutes),
            ),
            (
                "gapless_window_missing_seconds",
                "Seconds of the minutes inside the recovery window that are not full (60 a minute; planner's last pass).",
                |m, _| minutes(&m.missing_minutes),
            ),
            (
                "gapless_window_lost_seconds",
                "Seconds of the minutes inside the recovery window with lost seconds (60 a minute; planner's last pass).",
                |m, _| minutes(&m.lost_minutes),
            ),
            ("gapless_recovery_jobs", "Recovery jobs in flight.", |m, _| {
                m.jobs.lock().map(|j| j.len() as i64).unwrap_or(0)
            }),
            ("gapless_read_buffer_peak_bytes", "The most bytes a connection's reader held at once.", |m, _| {
                m.read_buffer_peak.load(std::sync::atomic::Ordering::Relaxed) as i64
            }),
            ("gapless_delivery_lag_seconds", "Stream time minus the newest activity time received.", |m, now| {
                m.lag_ms(now).unwrap_or(0) / 1000
            }),
        ];
        for (name, help, f) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for m in &self.metrics.streams {
                let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", m.label, f(m, now_ms));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Holds a `/coverage` report until the test opens it (or 30 s pass).
    #[derive(Default)]
    pub(super) struct Gate {
        entered: std::sync::atomic::AtomicBool,
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
        gave_up: std::sync::atomic::AtomicBool,
    }

    impl Gate {
        pub(super) fn pass(&self) {
            self.entered.store(true, Ordering::SeqCst);
            let open = self.open.lock().unwrap();
            let (open, _) = self.opened.wait_timeout_while(open, Duration::from_secs(30), |o| !*o).unwrap();
            self.gave_up.store(!*open, Ordering::SeqCst);
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    async fn start(limits: Limits) -> (SocketAddr, watch::Sender<bool>, tempfile::TempDir) {
        start_gated(limits, None).await
    }

    async fn start_gated(
        limits: Limits,
        report_gate: Option<Arc<Gate>>,
    ) -> (SocketAddr, watch::Sender<bool>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let coverage = Arc::new(CoverageMap::open(&dir.path().join("coverage")).unwrap());
        coverage.set_partitions("d", 2).unwrap();
        let config = Config::parse(
            "credentials={env='X'}\n[[stream]]\nlabel='d'\nkind='decahose'\nurl='http://x/'\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let (tx, rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let admin = Admin { metrics, coverage, clock: Clock::system(), streams: config.streams, limits, report_gate };
        let addr = listen("127.0.0.1:0".parse().unwrap(), admin, rx).await.unwrap();
        (addr, tx, dir)
    }

    /// Sends `head` and reads what comes back until the server closes.
    async fn exchange(addr: SocketAddr, head: &str) -> String {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = tcp.write_all(head.as_bytes()).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out))
            .await
            .expect("the server closes the connection");
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn get(addr: SocketAddr, path: String) -> String {
        exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n")).await
    }

    #[tokio::test]
    async fn the_coverage_window_is_bounded() {
        let (addr, _stop, _dir) = start(Limits::default()).await;
        let now = Clock::system().now_secs();
        let ok = get(addr, format!("/coverage?from={}&to={now}", now - 3600)).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{}", &ok[..ok.len().min(300)]);
        let too_wide = get(addr, format!("/coverage?from={}&to={now}", now - 10 * 86_400)).await;
        assert!(too_wide.starts_with("HTTP/1.1 400"), "{}", &too_wide[..too_wide.len().min(300)]);
        assert!(too_wide.contains("at most 604800 s (7 days) per request"), "{too_wide}");
        // Ten years: refused before anything is read; seven days, the most, is served.
        let years = get(addr, format!("/coverage?from={}&to={now}", now - 3653 * 86_400)).await;
        assert!(years.starts_with("HTTP/1.1 400") && years.contains("at most 604800 s"), "{years}");
        let week = get(addr, format!("/coverage?from={}&to={now}", now - 7 * 86_400)).await;
        assert!(week.starts_with("HTTP/1.1 200"), "{}", &week[..week.len().min(300)]);
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_closed() {
        let (addr, _stop, _dir) = start(Limits { header_read: Duration::from_millis(300), ..Limits::default() }).await;
        // `exchange` fails if the connection stays open for 20 s.
        let got = exchange(addr, "GET /status HTTP/1.1\r\nHost: adm").await;
        assert!(!got.contains("200 OK"), "{got}");
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_closed_at_once() {
        let (addr, _stop, _dir) = start(Limits { max_connections: 2, ..Limits::default() }).await;
        let idle: Vec<TcpStream> =
            vec![TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap()];
        // Let the server accept both.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let refused = get(addr, "/status".into()).await;
        assert!(refused.is_empty(), "a third connection was served: {refused}");
        drop(idle);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = get(addr, "/status".into()).await;
            if got.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "served again once the others left: {got}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// On a runtime of one thread, a report built on it would stop every
    /// other request (and the archiver's tasks) until it is done.
    #[tokio::test(flavor = "current_thread")]
    async fn a_coverage_report_blocks_no_runtime_thread() {
        let gate = Arc::new(Gate::default());
        let (addr, _stop, _dir) = start_gated(Limits::default(), Some(gate.clone())).await;
        let now = Clock::system().now_secs();
        let report = tokio::spawn(get(addr, format!("/coverage?from={}&to={now}", now - 3600)));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !gate.entered.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "the report was never built");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The report is held: the runtime still serves.
        let status = get(addr, "/status".into()).await;
        let held = !gate.gave_up.load(Ordering::SeqCst);
        gate.open();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(held, "/status was served only once the held report gave up: the report blocked the runtime");
        let report = report.await.unwrap();
        assert!(report.starts_with("HTTP/1.1 200"), "{}", &report[..report.len().min(300)]);
    }

    #[test]
    fn accept_errors_back_off_from_10_ms_to_a_second() {
        let mut wait = Duration::ZERO;
        let waits: Vec<u128> = (0..10)
            .map(|_| {
                wait = accept_backoff(wait);
                wait.as_millis()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        // A success starts over (the loop sets the wait back to zero).
        assert_eq!(accept_backoff(Duration::ZERO), Duration::from_millis(10));
    }

    #[test]
    fn the_published_url_is_reachable_and_atomic() {
        assert_eq!(base_url("0.0.0.0:9477".parse().unwrap()), "http://127.0.0.1:9477");
        assert_eq!(base_url("[::]:9477".parse().unwrap()), "http://[::1]:9477");
        assert_eq!(base_url("127.0.0.1:8787".parse().unwrap()), "http://127.0.0.1:8787");
        let dir = tempfile::tempdir().unwrap();
        let path = publish_url(dir.path(), "127.0.0.1:8787".parse().unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "http://127.0.0.1:8787\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        withdraw_url(&path);
        assert!(!path.exists());
        withdraw_url(&path);
    }

    #[test]
    fn a_non_loopback_address_is_warned_about() {
        for a in ["0.0.0.0:9477", "192.168.1.20:9477", "[::]:9477"] {
            assert!(exposure_warning(a.parse().unwrap()).is_some_and(|w| w.contains("no authentication")), "{a}");
        }
        for a in ["127.0.0.1:9477", "[::1]:9477"] {
            assert_eq!(exposure_warning(a.parse().unwrap()), None, "{a}");
        }
    }
}
