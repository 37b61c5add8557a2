//! The HTTP server: accepting, routing each request through the protocol's
//! checks in order, and handing accepted connections to `connection`
//! (realtime and backfill) or `recovery`. What the connections share (streams,
//! limits, faults, counters) is `state`; `/sim/` is `admin`.
//!
//! Order of checks (each refusal is a JSON body): path (`404`), method
//! (`405`), Basic auth (`401`), `Accept-Encoding: gzip` (`406`), stream served
//! (`404`), injected `503`/`429` faults, query (`400`), the per-stream
//! connection rate limit (`429`), the per-account Recovery job limit (`429`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::ACCEPT_ENCODING;
use hyper::Method;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};

use crate::config::SimConfig;
use crate::faults::FaultKind;
use crate::http::{authorized, refusal, streaming, Resp};
use crate::prepared::Prepared;
use crate::protocol::{self, Refusal, Request};
use crate::state::{ConnGuard, Shared};
use crate::stream::StreamKind;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

async fn handle(shared: Arc<Shared>, req: hyper::Request<Incoming>) -> Result<Resp, Infallible> {
    let resp = if req.uri().path().starts_with("/sim/") {
        crate::admin::handle(&shared, req).await
    } else {
        route(&shared, req).await
    };
    if resp.status().as_u16() >= 400 {
        shared.count_refusal(resp.status().as_u16());
    }
    Ok(resp)
}

async fn route(shared: &Arc<Shared>, req: hyper::Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let Some(sp) = protocol::parse_path(&path) else {
        return refusal(&Refusal::new(404, "Not found: expected /stream/{sample10|firehose|powertrack|likes}/accounts/{account}/publishers/twitter/{label}.json"));
    };
    if req.method() != Method::GET {
        return refusal(&Refusal::new(405, "Method not allowed: use GET."));
    }
    if !authorized(&shared.cfg, &req) {
        debug!(%path, "401: bad or missing credentials");
        return refusal(&Refusal::new(401, protocol::MSG_AUTH));
    }
    let gzip =
        req.headers().get_all(ACCEPT_ENCODING).iter().any(|v| v.to_str().map(protocol::accepts_gzip).unwrap_or(false));
    if !gzip {
        return refusal(&Refusal::new(406, protocol::MSG_GZIP));
    }
    let Some(stream) = shared.stream(&sp.account, sp.kind, &sp.label) else {
        return refusal(&Refusal::new(404, &format!("No stream {}/{} on this account.", sp.kind, sp.label)));
    };
    let now = shared.cfg.clock.now_ms();
    let parsed = protocol::parse_query(&stream.spec, query.as_deref(), now);
    let fault_partition = match &parsed {
        Ok(Request::Realtime { partition, .. }) => Some(*partition),
        Ok(Request::Recovery { partition, .. }) => *partition,
        Err(_) => None,
    };
    if shared.faults().active(FaultKind::Unavailable, &stream.spec, fault_partition, now).is_some() {
        return refusal(&Refusal::new(503, protocol::MSG_503));
    }
    if shared.faults().active(FaultKind::RateLimit, &stream.spec, fault_partition, now).is_some() {
        return refusal(&Refusal::new(429, protocol::MSG_RATE));
    }
    let request = match parsed {
        Ok(r) => r,
        Err(r) => {
            debug!(%path, ?query, status = r.status, "refused");
            return refusal(&r);
        }
    };
    if !stream.admit(now, shared.cfg.rate_limit, shared.cfg.rate_window_ms) {
        info!(stream = %stream.spec.name(), "429: connection rate limit");
        return refusal(&Refusal::new(429, protocol::MSG_RATE));
    }
    let (tx, rx) = mpsc::channel(16);
    let id = shared.next_conn_id();
    match request {
        Request::Realtime { partition, backfill_minutes } => {
            let kill = stream.add_realtime(id, partition);
            info!(stream = %stream.spec.name(), partition, backfill_minutes, conn = id, "realtime connection");
            let guard = ConnGuard { stream: stream.clone(), id };
            if let Some(prepared) = shared.max_speed.clone() {
                tokio::spawn(crate::connection::max_speed(prepared, partition, tx, guard));
            } else {
                let ordinal = stream.next_ordinal();
                let job = crate::connection::Realtime { partition, backfill_minutes, ordinal, kill };
                let name = stream.spec.name();
                let shared = shared.clone();
                tokio::spawn(async move {
                    crate::connection::run(shared, stream, job, tx, guard).await;
                    info!(stream = %name, partition, conn = id, "realtime connection ended");
                });
            }
        }
        Request::Recovery { partition, start_ms, end_ms } => {
            let Some(slot) = shared.take_job_slot(&sp.account) else {
                info!(account = %sp.account, "429: recovery job limit");
                return refusal(&Refusal::new(429, protocol::MSG_JOBS));
            };
            info!(stream = %stream.spec.name(), ?partition, start = %gapless_time::rfc3339_ms(start_ms), end = %gapless_time::rfc3339_ms(end_ms), conn = id, "recovery job");
            let ordinal = stream.next_ordinal();
            let job = crate::recovery::Recovery { partition, start_ms, end_ms, ordinal };
            let name = stream.spec.name();
            let shared = shared.clone();
            tokio::spawn(async move {
                crate::recovery::run(shared, stream, job, tx, slot).await;
                debug!(stream = %name, conn = id, "recovery connection ended");
            });
        }
    }
    streaming(rx)
}

/// A running simulator.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind and start serving in the background of the current Tokio runtime.
    pub async fn start(cfg: SimConfig, listen: SocketAddr) -> Result<Server, ServerError> {
        Self::start_with(cfg, listen, None).await
    }

    pub(crate) async fn start_with(
        cfg: SimConfig,
        listen: SocketAddr,
        max_speed: Option<Arc<Prepared>>,
    ) -> Result<Server, ServerError> {
        let listener = TcpListener::bind(listen).await.map_err(|source| ServerError::Bind { addr: listen, source })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg, max_speed));
        let shutdown = Arc::new(Notify::new());
        let stop = shutdown.clone();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = stop.notified() => break,
                    accepted = listener.accept() => {
                        let (sock, peer) = match accepted {
                            Ok(x) => x,
                            Err(e) => {
                                warn!(error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                continue;
                            }
                        };
                        let _ = sock.set_nodelay(true);
                        let shared = shared.clone();
                        conns.spawn(async move {
                            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                            if let Err(e) = hyper::server::conn::http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(TokioIo::new(sock), svc)
                                .await
                            {
                                debug!(%peer, error = %e, "connection ended with an error");
                            }
                        });
                        while conns.try_join_next().is_some() {}
                    }
                }
            }
            conns.abort_all();
        });
        info!(%addr, "stream-sim listening");
        Ok(Server { addr, shared: state, shutdown, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/stream/KIND/accounts/ACCOUNT/publishers/twitter/LABEL.json`
    pub fn url(&self, kind: StreamKind, account: &str, label: &str) -> String {
        format!("http://{}/stream/{}/accounts/{}/publishers/twitter/{}.json", self.addr, kind, account, label)
    }

    /// Activity lines sent so far on `kind/label`, over every account
    /// (realtime, backfill and Recovery; every copy counted: redundant
    /// connections, backfill overlap, `duplicate` faults). A client can
    /// never receive more copies than this.
    pub fn activities_sent(&self, kind: StreamKind, label: &str) -> u64 {
        self.shared
            .stream_states()
            .iter()
            .filter(|(_, st)| st.spec.kind == kind && st.spec.label == label)
            .map(|(_, st)| st.sent.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Stop accepting and drop every connection.
    pub async fn shutdown(self) {
        self.shutdown.notify_one();
        let _ = self.task.await;
    }

    /// Wait until the server task ends (it ends only on shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
