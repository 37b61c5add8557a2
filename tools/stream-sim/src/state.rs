//! The simulator's shared state, apart from HTTP (as mini-redis keeps its
//! `Db` apart from its server): the streams served, by account, with their
//! generators and caches of recent seconds; the open realtime connections
//! and Recovery jobs; the fault plan; counters. The HTTP side
//! ([`crate::server`], [`crate::admin`]) and the connection tasks
//! ([`crate::connection`], [`crate::recovery`]) use it; it uses only the
//! data modules (generator, faults, config), never them.
//!
//! The limits of the protocol are decided here, each in one method: the
//! per-stream connection rate ([`StreamState::admit`]), redundant
//! connections ([`StreamState::add_realtime`]) and Recovery jobs per account
//! ([`Shared::take_job_slot`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use tokio::sync::Notify;
use tracing::info;

use crate::clock::StreamMs;
use crate::config::SimConfig;
use crate::faults::FaultPlan;
use crate::generator::{Activity, Generator, MAX_LATENCY_MS};
use crate::prepared::Prepared;
use crate::stream::{StreamKind, StreamSpec};

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

/// One stream of one account.
pub(crate) struct StreamState {
    pub spec: StreamSpec,
    pub gen: Generator,
    /// Per second, a cell filled once: connections asking for the same
    /// second at once wait for one generation instead of each doing it.
    cache: Mutex<BTreeMap<i64, SecondCell>>,
    /// When connection requests were accepted, within the rate window.
    connects: Mutex<VecDeque<StreamMs>>,
    /// Connections accepted so far (their ordinals, for targeted faults).
    pub accepted: AtomicU64,
    /// Activities sent (realtime, backfill and Recovery; copies counted).
    pub sent: AtomicU64,
    pub conns: Mutex<Vec<ConnEntry>>,
}

impl StreamState {
    fn new(seed: u64, spec: StreamSpec) -> Self {
        StreamState {
            gen: Generator::new(seed, &spec),
            spec,
            cache: Mutex::new(BTreeMap::new()),
            connects: Mutex::new(VecDeque::new()),
            accepted: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
        }
    }

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

    /// The connection rate limit: accepts a connection request at `now`
    /// (and counts it) unless `limit` were accepted in the last `window_ms`.
    pub fn admit(&self, now: StreamMs, limit: u32, window_ms: i64) -> bool {
        let mut c = lock(&self.connects);
        while c.front().is_some_and(|t| *t <= now - window_ms) {
            c.pop_front();
        }
        if c.len() >= limit as usize {
            return false;
        }
        c.push_back(now);
        true
    }

    /// The ordinal of the next accepted connection (1-based; realtime and
    /// Recovery alike), for faults aimed at one connection.
    pub fn next_ordinal(&self) -> u64 {
        self.accepted.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Register realtime connection `id` on `partition`. Past the stream's
    /// `max_connections` on the partition, the oldest are told to go (they
    /// send the Forced Disconnect line). Returns the new connection's kill
    /// switch.
    pub fn add_realtime(&self, id: u64, partition: u32) -> Arc<Kill> {
        let kill = Arc::new(Kill::default());
        let mut conns = lock(&self.conns);
        conns.push(ConnEntry { id, partition, kill: kill.clone() });
        let max = self.spec.max_connections.max(1) as usize;
        loop {
            let same: Vec<u64> = conns.iter().filter(|c| c.partition == partition).map(|c| c.id).collect();
            if same.len() <= max {
                break;
            }
            let oldest = same.iter().copied().min().unwrap_or(id);
            if let Some(pos) = conns.iter().position(|c| c.id == oldest) {
                let c = conns.remove(pos);
                info!(stream = %self.spec.name(), partition, conn = c.id, "forced disconnect of the oldest connection");
                c.kill.flag.store(true, Ordering::SeqCst);
                c.kill.notify.notify_one();
            }
        }
        kill
    }
}

/// Everything the server and its connections share.
pub(crate) struct Shared {
    pub cfg: SimConfig,
    /// By (account, kind, label): limits and connections are per account;
    /// the data depends on kind and label only.
    streams: Mutex<HashMap<(String, StreamKind, String), Arc<StreamState>>>,
    recovery_jobs: Mutex<HashMap<String, u32>>,
    next_conn: AtomicU64,
    /// The fault plan; replaced whole when faults are posted at run time.
    faults: RwLock<Arc<FaultPlan>>,
    /// Refusals by status code.
    refused: Mutex<BTreeMap<u16, u64>>,
    /// Optional pre-generated content for max-speed mode.
    pub max_speed: Option<Arc<Prepared>>,
}

impl Shared {
    pub fn new(cfg: SimConfig, max_speed: Option<Arc<Prepared>>) -> Self {
        let faults = RwLock::new(Arc::new(cfg.faults.clone()));
        Shared {
            cfg,
            streams: Mutex::new(HashMap::new()),
            recovery_jobs: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            faults,
            refused: Mutex::new(BTreeMap::new()),
            max_speed,
        }
    }

    pub fn faults(&self) -> Arc<FaultPlan> {
        self.faults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Add faults now (posted at run time).
    pub fn add_faults(&self, more: FaultPlan) {
        let mut w = self.faults.write().unwrap_or_else(|e| e.into_inner());
        let mut plan = (**w).clone();
        plan.merge(more);
        *w = Arc::new(plan);
    }

    /// The state of `kind/label` for `account`, made on first use; None if
    /// the stream is not served.
    pub fn stream(&self, account: &str, kind: StreamKind, label: &str) -> Option<Arc<StreamState>> {
        let mut m = lock(&self.streams);
        let key = (account.to_string(), kind, label.to_string());
        if let Some(s) = m.get(&key) {
            return Some(s.clone());
        }
        let spec = self.cfg.spec_for(kind, label)?;
        let st = Arc::new(StreamState::new(self.cfg.seed, spec));
        m.insert(key, st.clone());
        Some(st)
    }

    /// Every stream state with its account, sorted.
    pub fn stream_states(&self) -> Vec<(String, Arc<StreamState>)> {
        let mut v: Vec<_> = lock(&self.streams).iter().map(|(k, s)| (k.0.clone(), s.clone())).collect();
        v.sort_by(|a, b| (&a.0, a.1.spec.name()).cmp(&(&b.0, b.1.spec.name())));
        v
    }

    /// A new connection id (for logs).
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A Recovery job slot of `account`, unless it has `max_recovery_jobs`
    /// running; the slot is given back when dropped.
    pub fn take_job_slot(self: &Arc<Self>, account: &str) -> Option<JobSlot> {
        let mut jobs = lock(&self.recovery_jobs);
        let n = jobs.entry(account.to_string()).or_insert(0);
        if *n >= self.cfg.max_recovery_jobs {
            return None;
        }
        *n += 1;
        Some(JobSlot { shared: self.clone(), account: account.to_string() })
    }

    pub fn recovery_job_counts(&self) -> Vec<(String, u32)> {
        let mut v: Vec<_> = lock(&self.recovery_jobs).iter().map(|(a, n)| (a.clone(), *n)).collect();
        v.sort();
        v
    }

    pub fn count_refusal(&self, status: u16) {
        *lock(&self.refused).entry(status).or_insert(0) += 1;
    }

    pub fn refusal_counts(&self) -> Vec<(u16, u64)> {
        lock(&self.refused).iter().map(|(s, n)| (*s, *n)).collect()
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
