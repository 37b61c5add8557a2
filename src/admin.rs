//! The admin API, on 127.0.0.1 by default:
//! - `GET /status`: JSON: streams, connections, holes, jobs, lag;
//! - `GET /coverage?from=S&to=S[&stream=L]`: the coverage report in the
//!   `gapless.coverage/1` schema of `inspect-coverage --json` (default
//!   window: the last 24 hours, as the tool), so that `inspect-coverage --admin URL` can
//!   read it while the archiver holds the store;
//! - `GET /metrics`: Prometheus text.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

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
}

/// Binds and serves until shutdown; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    coverage: Arc<CoverageMap>,
    clock: Clock,
    streams: Vec<Stream>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("admin API: bind {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let admin = Arc::new(Admin { metrics, coverage, clock, streams });
    tracing::info!(address = %bound, "admin API: /status /coverage /metrics");
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let admin = admin.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.route(req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await;
            });
        }
    });
    Ok(bound)
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
    fn route(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.method() != hyper::Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".into());
        }
        match req.uri().path() {
            "/status" => reply(StatusCode::OK, "application/json", self.status().to_string()),
            "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", self.prometheus()),
            "/coverage" => match self.coverage_report(req.uri().query().unwrap_or("")) {
                Ok(body) => reply(StatusCode::OK, "application/json", body),
                Err(e) => reply(StatusCode::BAD_REQUEST, "application/json", json!({ "error": format!("{e:#}") }).to_string()),
            },
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
                    .map(|h| h.iter().map(|(s, e)| json!({ "start": crate::recovery_time(*s), "end": crate::recovery_time(*e), "start_secs": s, "end_secs": e, "seconds": e - s })).collect())
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
                })
            })
            .collect();
        json!({ "now": crate::recovery_time(now_ms / 1000), "now_ms": now_ms, "streams": streams })
    }

    fn coverage_report(&self, query: &str) -> anyhow::Result<String> {
        let now = self.clock.now_secs();
        let mut q = if query.contains("from=") {
            gapless_report::query::Query::from_query_string(query)?
        } else {
            let mut q = gapless_report::query::Query::from_query_string(query).unwrap_or_else(|_| gapless_report::query::Query::new(0, 0));
            q.from_secs = now - 86_400;
            q.to_secs = now;
            q
        };
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
        let counters: [Counter; 10] = [
            ("gapless_received_total", "Lines received (activities, system messages, bad lines).", |m| StreamMetrics::get(&m.received)),
            ("gapless_stored_total", "Activities stored.", |m| StreamMetrics::get(&m.stored)),
            ("gapless_duplicates_total", "Copies dropped by the ID index.", |m| StreamMetrics::get(&m.duplicates)),
            ("gapless_quarantined_total", "Lines quarantined.", |m| StreamMetrics::get(&m.quarantined)),
            ("gapless_bytes_total", "Decompressed bytes received.", |m| StreamMetrics::get(&m.bytes)),
            ("gapless_heartbeats_total", "Heartbeats received.", |m| StreamMetrics::get(&m.heartbeats)),
            ("gapless_system_messages_total", "System messages (info, warn, error) received.", |m| StreamMetrics::get(&m.system_messages)),
            ("gapless_commits_total", "Successful commits.", |m| StreamMetrics::get(&m.commits)),
            ("gapless_commit_errors_total", "Failed commits (coverage did not advance).", |m| StreamMetrics::get(&m.commit_errors)),
            ("gapless_connections_connected", "Connections currently connected.", |m| m.connected() as u64),
        ];
        for (name, help, f) in counters {
            let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for m in &self.metrics.streams {
                let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", m.label, f(m));
            }
        }
        let _ = writeln!(out, "# HELP gapless_reconnects_total Reconnects, by cause.\n# TYPE gapless_reconnects_total counter");
        for m in &self.metrics.streams {
            if let Ok(r) = m.reconnects.lock() {
                for (cause, n) in r.iter() {
                    let _ = writeln!(out, "gapless_reconnects_total{{stream=\"{}\",cause=\"{cause}\"}} {n}", m.label);
                }
            }
        }
        let gauges: [Gauge; 6] = [
            ("gapless_covered_minutes", "Full minutes inside the window (planner's last pass).", |m, _| m.covered_minutes.load(std::sync::atomic::Ordering::Relaxed) as i64),
            ("gapless_missing_minutes", "Minutes not full inside the window (planner's last pass).", |m, _| m.missing_minutes.load(std::sync::atomic::Ordering::Relaxed) as i64),
            ("gapless_lost_minutes", "Minutes with lost seconds inside the window.", |m, _| m.lost_minutes.load(std::sync::atomic::Ordering::Relaxed) as i64),
            ("gapless_recovery_jobs", "Recovery jobs in flight.", |m, _| m.jobs.lock().map(|j| j.len() as i64).unwrap_or(0)),
            ("gapless_read_buffer_peak_bytes", "The most bytes a connection's reader held at once.", |m, _| m.read_buffer_peak.load(std::sync::atomic::Ordering::Relaxed) as i64),
            ("gapless_delivery_lag_seconds", "Stream time minus the newest activity time received.", |m, now| m.lag_ms(now).unwrap_or(0) / 1000),
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
