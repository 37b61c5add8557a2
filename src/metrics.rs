//! What the archiver knows about itself, shared between its tasks and the
//! admin API: counters (monotonic), gauges, and the live state of each
//! connection and recovery job.
//!
//! Counters are atomics, bumped on the hot path without locks; the
//! connection and job tables sit behind a mutex touched only when a
//! connection changes state (and when `/status` reads them).
//!
//! States are enums, serialized in lower case for `/status`: a connection
//! is [`ConnectionState`]; a recovery job is in the store's one
//! [`JobState`] (queued, running, failed), and its connection, while it
//! runs, in a [`ConnectionState`] of its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use gapless_storage::coverage::JobState;
use serde::Serialize;

/// Counters and state of one stream.
#[derive(Default, Debug)]
pub struct StreamMetrics {
    pub label: String,
    pub kind: String,
    /// Lines received (activities, system messages and bad lines; not heartbeats).
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub quarantined: AtomicU64,
    pub system_messages: AtomicU64,
    pub heartbeats: AtomicU64,
    /// Decompressed bytes received.
    pub bytes: AtomicU64,
    pub commits: AtomicU64,
    pub commit_errors: AtomicU64,
    /// Where the storage thread's time goes (µs): accepting batches
    /// (dedup, copying into pending frames), compressing and appending
    /// them, and making them durable (fsync). The rest of its time it
    /// waits for batches.
    pub accept_micros: AtomicU64,
    pub write_micros: AtomicU64,
    pub sync_micros: AtomicU64,
    /// Recovery jobs started (by this process).
    pub recovery_jobs_started: AtomicU64,
    /// The copy in the bucket (`[archive]`): segment objects uploaded and
    /// verified, their bytes, rounds that failed, and up to when (stream
    /// ms) a round last published everything settled.
    pub uploaded_objects: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub upload_errors: AtomicU64,
    /// Minutes whose local segment was evicted after its copy was verified.
    pub evicted_minutes: AtomicU64,
    /// -1: no bucket; 0: not yet; else the stream ms up to which every
    /// settled minute is in the bucket.
    pub bucket_synced_ms: AtomicI64,
    /// The settle time of the bucket copy (ms), for how far behind it is.
    pub bucket_settle_ms: AtomicI64,
    /// The last upload error, until a round succeeds.
    pub upload_error: Mutex<Option<String>>,
    /// Largest activity time received (ms), for the delivery lag.
    pub last_activity_ms: AtomicI64,
    /// Reconnects by cause label (see `backoff::Cause::label`).
    pub reconnects: Mutex<BTreeMap<&'static str, u64>>,
    pub connections: Mutex<BTreeMap<String, ConnectionStatus>>,
    pub jobs: Mutex<BTreeMap<u64, JobStatus>>,
    /// Set when the stream stopped for good (401, 403, 404, 406...).
    pub fatal: Mutex<Option<String>>,
    /// Minutes full / not full inside the window, as of the planner's last pass.
    pub covered_minutes: AtomicU64,
    pub missing_minutes: AtomicU64,
    pub lost_minutes: AtomicU64,
    /// End (Unix second) of the last stretch marked lost: a loss that keeps
    /// growing is logged once.
    pub lost_tail: AtomicI64,
    /// Holes inside the window as of the planner's last pass: (start, end) Unix seconds.
    pub holes: Mutex<Vec<(i64, i64)>>,
    /// Activities per second one realtime connection (one partition)
    /// observed last, as `f64` bits (0: none yet): the prior of the next
    /// connection's data-silence bound.
    pub observed_rate: AtomicU64,
    /// The most bytes a connection's reader held at once (the line being
    /// framed, whole lines not sent on yet, the gzip decoder's output):
    /// bounded by a few times the line limit whatever the peer sends.
    pub read_buffer_peak: AtomicU64,
}

/// Where a connection (realtime, or a recovery job's) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// Waiting for its turn (the connection limiter) or for the response.
    Connecting,
    /// The response came (HTTP 200) and its body is being read.
    Connected,
    /// Ended; waiting before the next attempt.
    Backoff,
    /// For good: shutdown, or a refusal that retrying cannot fix.
    Stopped,
}

/// One connection, as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionStatus {
    pub partition: Option<u32>,
    pub slot: u32,
    pub state: ConnectionState,
    /// Stream time (ms) the connection was established, if it is.
    pub connected_since_ms: Option<i64>,
    /// Stream time (ms) of the last byte received.
    pub last_byte_ms: Option<i64>,
    /// Coverage claimed up to here (Unix second, exclusive).
    pub claimed_to_secs: Option<i64>,
    /// The last error, without secrets.
    pub last_error: Option<String>,
}

/// One recovery job in flight, as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub id: u64,
    pub start_secs: i64,
    pub end_secs: i64,
    /// Delivered up to here (the start of the minute of the last activity).
    pub progress_secs: i64,
    /// As recorded in the store.
    pub state: JobState,
    /// Its Recovery connection.
    pub connection: ConnectionState,
}

impl StreamMetrics {
    pub fn new(label: &str, kind: &str) -> StreamMetrics {
        StreamMetrics {
            label: label.to_string(),
            kind: kind.to_string(),
            last_activity_ms: AtomicI64::new(0),
            ..Default::default()
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn reconnected(&self, cause: &'static str) {
        if let Ok(mut m) = self.reconnects.lock() {
            *m.entry(cause).or_default() += 1;
        }
    }

    pub fn set_connection(&self, name: &str, state: ConnectionStatus) {
        if let Ok(mut m) = self.connections.lock() {
            m.insert(name.to_string(), state);
        }
    }

    pub fn update_connection(&self, name: &str, f: impl FnOnce(&mut ConnectionStatus)) {
        if let Ok(mut m) = self.connections.lock() {
            if let Some(c) = m.get_mut(name) {
                f(c);
            }
        }
    }

    pub fn connected(&self) -> usize {
        self.connections
            .lock()
            .map(|m| m.values().filter(|c| c.state == ConnectionState::Connected).count())
            .unwrap_or(0)
    }

    /// The rate a realtime connection observed (activities per second).
    pub fn set_observed_rate(&self, rate: f64) {
        if rate.is_finite() && rate > 0.0 {
            self.observed_rate.store(rate.to_bits(), Ordering::Relaxed);
        }
    }

    pub fn observed_rate(&self) -> Option<f64> {
        let bits = self.observed_rate.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// With a bucket: how far (stream ms) the bucket is behind the
    /// settled data, that is `now - settle` minus where the last good
    /// round confirmed it; `None` without a bucket.
    pub fn bucket_behind_ms(&self, now_ms: i64) -> Option<i64> {
        let settle = self.bucket_settle_ms.load(Ordering::Relaxed);
        let synced = self.bucket_synced_ms.load(Ordering::Relaxed);
        (settle > 0).then(|| (now_ms - settle - synced).max(0))
    }

    /// The bucket copy, for `/status` (`null` without a bucket).
    pub fn bucket_status(&self, now_ms: i64) -> serde_json::Value {
        let Some(behind) = self.bucket_behind_ms(now_ms) else { return serde_json::Value::Null };
        let synced = self.bucket_synced_ms.load(Ordering::Relaxed);
        serde_json::json!({
            "complete_to": gapless_time::rfc3339(synced.div_euclid(1000)),
            "behind_seconds": behind / 1000,
            "uploaded_objects": Self::get(&self.uploaded_objects),
            "uploaded_bytes": Self::get(&self.uploaded_bytes),
            "upload_errors": Self::get(&self.upload_errors),
            "evicted_minutes": Self::get(&self.evicted_minutes),
            "error": self.upload_error.lock().ok().and_then(|e| e.clone()),
        })
    }

    /// Delivery lag: stream time now minus the newest activity time seen.
    pub fn lag_ms(&self, now_ms: i64) -> Option<i64> {
        let last = self.last_activity_ms.load(Ordering::Relaxed);
        (last > 0).then(|| (now_ms - last).max(0))
    }
}

/// All streams' metrics.
#[derive(Default, Debug)]
pub struct Metrics {
    pub streams: Vec<std::sync::Arc<StreamMetrics>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_shown_in_lower_case_and_a_job_has_the_stores_state() {
        let m = StreamMetrics::new("d", "decahose");
        for (name, state) in
            [("partition-1/0", ConnectionState::Connected), ("partition-2/0", ConnectionState::Backoff)]
        {
            let status = ConnectionStatus {
                partition: None,
                slot: 0,
                state,
                connected_since_ms: None,
                last_byte_ms: None,
                claimed_to_secs: None,
                last_error: None,
            };
            m.set_connection(name, status);
        }
        assert_eq!(m.connected(), 1);
        m.update_connection("partition-2/0", |c| c.state = ConnectionState::Connected);
        assert_eq!(m.connected(), 2);
        let shown = serde_json::to_value(&*m.connections.lock().unwrap()).unwrap();
        assert_eq!(shown["partition-1/0"]["state"], "connected");
        let job = JobStatus {
            id: 3,
            start_secs: 0,
            end_secs: 60,
            progress_secs: 0,
            state: JobState::Running,
            connection: ConnectionState::Connecting,
        };
        let shown = serde_json::to_value(job).unwrap();
        assert_eq!((&shown["state"], &shown["connection"]), (&"running".into(), &"connecting".into()));
    }
}
