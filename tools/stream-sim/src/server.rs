//! The HTTP server: accepting, routing each request through the protocol's
//! checks in order, and handing accepted connections to `connection`
//! (realtime and backfill) or `recovery`.
//!
//! Order of checks (each refusal is a JSON body): path (`404`), method
//! (`405`), Basic auth (`401`), `Accept-Encoding: gzip` (`406`), stream served
//! (`404`), injected `503`/`429` faults, query (`400`), the per-stream
//! connection rate limit (`429`), the per-account Recovery job limit (`429`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};

use crate::clock::StreamMs;
use crate::config::SimConfig;
use crate::faults::FaultKind;
use crate::generator::{Activity, Generator, MAX_LATENCY_MS};
use crate::protocol::{self, Refusal, Request};
use crate::stream::{StreamKind, StreamSpec};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Lock a mutex, ignoring poisoning (a panicked connection task must not
/// take the server down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// At most this many seconds of generated activities are cached (all
/// partitions of a second, shared by every realtime connection of the
/// stream). Realtime needs the last few seconds only; 24 s of Decahose at the
/// default rate is ~50 MB.
const CACHE_SECONDS: usize = 24;

/// One cached second: filled once, shared by every realtime connection.
type SecondCell = Arc<OnceLock<Arc<Vec<Activity>>>>;

/// Seconds older than this (relative to now) are neither cached nor kept.
const RECENT_MS: i64 = 2 * MAX_LATENCY_MS + 10_000;

/// A realtime connection, as the redundant-connection limit sees it.
pub(crate) struct ConnEntry {
    pub id: u64,
    pub partition: u32,
    pub kill: Arc<Kill>,
}

/// A request to end a connection with the Forced Disconnect line.
#[derive(Default)]
pub(crate) struct Kill {
    pub flag: AtomicBool,
    pub notify: Notify,
}

pub(crate) struct StreamState {
    pub spec: StreamSpec,
    pub gen: Generator,
    /// Per second, a cell filled once: connections asking for the same
    /// second at once wait for one generation instead of each doing it.
    cache: Mutex<BTreeMap<i64, SecondCell>>,
    connects: Mutex<VecDeque<StreamMs>>,
    /// Connections accepted so far (their ordinals, for targeted faults).
    pub accepted: AtomicU64,
    /// Activities sent (realtime, backfill and Recovery; copies counted).
    pub sent: AtomicU64,
    pub conns: Mutex<Vec<ConnEntry>>,
}

impl StreamState {
    /// The activities of second `sec`, cached for recent seconds.
    /// Older seconds (backfill) are generated for `partition` only.
    pub fn second(&self, sec: i64, now: StreamMs, partition: u32) -> Arc<Vec<Activity>> {
        let recent = sec * 1000 >= now - RECENT_MS;
        if !recent {
            let only = if partition == 0 { None } else { Some(partition) };
            return Arc::new(self.gen.second_of(sec, only));
        }
        let cell = {
            let mut c = lock(&self.cache);
            let cell = c.entry(sec).or_default().clone();
            c.retain(|s, _| s * 1000 >= now - RECENT_MS);
            while c.len() > CACHE_SECONDS {
                let Some(first) = c.keys().next().copied() else {
                    break;
                };
                c.remove(&first);
            }
            cell
        };
        cell.get_or_init(|| Arc::new(self.gen.second(sec))).clone()
    }

    pub fn count_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Realtime deliveries of `partition` with delivery time in `(from, to]`,
    /// in delivery order.
    pub fn due(&self, partition: u32, from: StreamMs, to: StreamMs, now: StreamMs) -> Vec<Activity> {
        let mut out = Vec::new();
        if to <= from {
            return out;
        }
        let first = (from - MAX_LATENCY_MS).div_euclid(1000);
        let last = to.div_euclid(1000);
        for sec in first..=last {
            for a in self.second(sec, now, partition).iter() {
                if a.deliver_ms > from && a.deliver_ms <= to && (partition == 0 || a.partition == partition) {
                    out.push(a.clone());
                }
            }
        }
        out.sort_by_key(|a| a.deliver_ms);
        out
    }
}

pub(crate) struct Shared {
    pub cfg: SimConfig,
    /// By (account, kind, label): limits and connections are per account;
    /// the data depends on kind and label only.
    streams: Mutex<HashMap<(String, StreamKind, String), Arc<StreamState>>>,
    recovery_jobs: Mutex<HashMap<String, u32>>,
    next_conn: AtomicU64,
    /// The fault plan; replaced whole when faults are posted at run time.
    faults: std::sync::RwLock<Arc<crate::faults::FaultPlan>>,
    /// Refusals by status code.
    refused: Mutex<BTreeMap<u16, u64>>,
    /// Optional pre-generated content for max-speed mode.
    pub max_speed: Option<Arc<crate::maxspeed::Prepared>>,
}

impl Shared {
    pub fn faults(&self) -> Arc<crate::faults::FaultPlan> {
        self.faults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every stream state with its account, sorted.
    pub(crate) fn stream_states(&self) -> Vec<(String, Arc<StreamState>)> {
        let mut v: Vec<_> = lock(&self.streams).iter().map(|(k, s)| (k.0.clone(), s.clone())).collect();
        v.sort_by(|a, b| (&a.0, a.1.spec.name()).cmp(&(&b.0, b.1.spec.name())));
        v
    }

    pub(crate) fn recovery_job_counts(&self) -> Vec<(String, u32)> {
        let mut v: Vec<_> = lock(&self.recovery_jobs).iter().map(|(a, n)| (a.clone(), *n)).collect();
        v.sort();
        v
    }

    pub(crate) fn refusal_counts(&self) -> Vec<(u16, u64)> {
        lock(&self.refused).iter().map(|(s, n)| (*s, *n)).collect()
    }

    pub(crate) fn add_faults(&self, more: crate::faults::FaultPlan) {
        let mut w = self.faults.write().unwrap_or_else(|e| e.into_inner());
        let mut plan = (**w).clone();
        plan.merge(more);
        *w = Arc::new(plan);
    }

    fn stream(&self, account: &str, kind: StreamKind, label: &str) -> Option<Arc<StreamState>> {
        let mut m = lock(&self.streams);
        let key = (account.to_string(), kind, label.to_string());
        if let Some(s) = m.get(&key) {
            return Some(s.clone());
        }
        let spec = self.cfg.spec_for(kind, label)?;
        let st = Arc::new(StreamState {
            gen: Generator::new(self.cfg.seed, &spec),
            spec,
            cache: Mutex::new(BTreeMap::new()),
            connects: Mutex::new(VecDeque::new()),
            accepted: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
        });
        m.insert(key, st.clone());
        Some(st)
    }
}

/// Releases a Recovery job slot when the job ends, however it ends.
pub(crate) struct JobSlot {
    shared: Arc<Shared>,
    account: String,
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        let mut jobs = lock(&self.shared.recovery_jobs);
        if let Some(n) = jobs.get_mut(&self.account) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Removes a realtime connection from its stream's list when it ends.
pub(crate) struct ConnGuard {
    pub stream: Arc<StreamState>,
    pub id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.stream.conns).retain(|c| c.id != self.id);
    }
}

/// The streaming response body: frames come from the connection task.
/// An `Err` item makes hyper abort the connection (no chunked terminator),
/// which is how faults cut a connection.
pub struct ChanBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

pub(crate) type Resp = Response<Either<Full<Bytes>, ChanBody>>;

pub(crate) fn refusal(r: &Refusal) -> Resp {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(r.body.clone()))));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    if r.status == 401 {
        resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"stream-sim\""));
    }
    resp
}

fn streaming(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Resp {
    let mut resp = Response::new(Either::Right(ChanBody { rx }));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("vary", HeaderValue::from_static("Accept-Encoding"));
    resp
}

async fn handle(shared: Arc<Shared>, req: hyper::Request<Incoming>) -> Result<Resp, Infallible> {
    let resp = if req.uri().path().starts_with("/sim/") {
        crate::admin::handle(&shared, req).await
    } else {
        route(&shared, req).await
    };
    if resp.status().as_u16() >= 400 {
        *lock(&shared.refused).entry(resp.status().as_u16()).or_insert(0) += 1;
    }
    Ok(resp)
}

/// HTTP Basic credentials match the configured ones.
pub(crate) fn authorized(shared: &Shared, req: &hyper::Request<Incoming>) -> bool {
    let creds = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(protocol::basic_credentials);
    matches!(creds, Some((u, p)) if u == shared.cfg.user && p == shared.cfg.password)
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
    if !authorized(shared, &req) {
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
    {
        let mut c = lock(&stream.connects);
        while c.front().is_some_and(|t| *t <= now - shared.cfg.rate_window_ms) {
            c.pop_front();
        }
        if c.len() >= shared.cfg.rate_limit as usize {
            info!(stream = %stream.spec.name(), "429: connection rate limit");
            return refusal(&Refusal::new(429, protocol::MSG_RATE));
        }
        c.push_back(now);
    }
    let (tx, rx) = mpsc::channel(16);
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    match request {
        Request::Realtime { partition, backfill_minutes } => {
            let kill = Arc::new(Kill::default());
            {
                let mut conns = lock(&stream.conns);
                conns.push(ConnEntry { id, partition, kill: kill.clone() });
                let max = stream.spec.max_connections.max(1) as usize;
                loop {
                    let same: Vec<u64> = conns.iter().filter(|c| c.partition == partition).map(|c| c.id).collect();
                    if same.len() <= max {
                        break;
                    }
                    let oldest = same.iter().copied().min().unwrap_or(id);
                    if let Some(pos) = conns.iter().position(|c| c.id == oldest) {
                        let c = conns.remove(pos);
                        info!(stream = %stream.spec.name(), partition, conn = c.id, "forced disconnect of the oldest connection");
                        c.kill.flag.store(true, Ordering::SeqCst);
                        c.kill.notify.notify_one();
                    }
                }
            }
            info!(stream = %stream.spec.name(), partition, backfill_minutes, conn = id, "realtime connection");
            let guard = ConnGuard { stream: stream.clone(), id };
            if let Some(prepared) = shared.max_speed.clone() {
                tokio::spawn(crate::maxspeed::serve(prepared, partition, tx, guard));
            } else {
                let ordinal = stream.accepted.fetch_add(1, Ordering::Relaxed) + 1;
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
            {
                let mut jobs = lock(&shared.recovery_jobs);
                let n = jobs.entry(sp.account.clone()).or_insert(0);
                if *n >= shared.cfg.max_recovery_jobs {
                    info!(account = %sp.account, "429: recovery job limit");
                    return refusal(&Refusal::new(429, protocol::MSG_JOBS));
                }
                *n += 1;
            }
            let slot = JobSlot { shared: shared.clone(), account: sp.account.clone() };
            info!(stream = %stream.spec.name(), ?partition, start = %crate::clock::rfc3339(start_ms), end = %crate::clock::rfc3339(end_ms), conn = id, "recovery job");
            let ordinal = stream.accepted.fetch_add(1, Ordering::Relaxed) + 1;
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
        max_speed: Option<Arc<crate::maxspeed::Prepared>>,
    ) -> Result<Server, ServerError> {
        let listener = TcpListener::bind(listen).await.map_err(|source| ServerError::Bind { addr: listen, source })?;
        let addr = listener.local_addr()?;
        let faults = std::sync::RwLock::new(Arc::new(cfg.faults.clone()));
        let shared = Arc::new(Shared {
            cfg,
            streams: Mutex::new(HashMap::new()),
            recovery_jobs: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            faults,
            refused: Mutex::new(BTreeMap::new()),
            max_speed,
        });
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
            .map(|(_, st)| st.sent.load(Ordering::Relaxed))
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
