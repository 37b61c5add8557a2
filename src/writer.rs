//! The storage thread of one stream.
//!
//! Connections (realtime and recovery) send it classified batches and
//! coverage *claims* through one channel, in the order they happened: a
//! claim says "everything of these seconds that this connection will ever
//! deliver has been sent before this message". The thread accepts batches
//! into the store, and every commit interval commits, and only then, with
//! the commit's proof of durability, records the claims made before the
//! commit as coverage. That is the invariant of DESIGN.md: coverage is
//! recorded only after the data it covers is durable. A failed commit (a
//! full disk) keeps both data and claims pending: coverage stops advancing,
//! loudly, until a commit succeeds.
//!
//! The thread runs inside the `stream` span of the caller of [`spawn`]: its
//! events say which stream without repeating it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gapless_storage::activity::Line;
use gapless_storage::coverage::CoverageMap;
use gapless_storage::key::Key;
use gapless_storage::store::{Depth, Outcome, Repaired, SealOutcome, StreamWriter};
use gapless_storage::Minute;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::lines::Batch;
use crate::metrics::StreamMetrics;
use crate::purge::{PurgeConfig, Purger};

/// Commit at least this often (wall time): the bound on how long received
/// data waits before it is durable, and so on coverage's delay.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Records accepted and not yet durable are capped: past this, the storage
/// thread stops taking batches until a commit succeeds (memory stays
/// bounded whatever the stream's rate while the disk is full).
pub const MAX_PENDING_BYTES: usize = 64 << 20;
/// Or as soon as this many raw bytes wait.
const COMMIT_BYTES: usize = 16 << 20;
/// A minute nothing was written to for this long (stream time) is sealed
/// into one frame: realtime writes it in many small frames, and one frame
/// compresses better and reads faster. Late data after a seal is simply a
/// new frame, and the minute is sealed again later.
///
/// Sealing runs on the stream's sealer thread (compressing a Firehose
/// minute at the seal level takes tens of seconds): this thread only asks
/// for it and, between batches, installs what is finished (a rename),
/// unless the minute changed meanwhile; see `gapless_storage::store::seal`.
const SEAL_AFTER_MS: i64 = 10 * 60_000;
/// At most this many minutes are queued for the sealer at a time.
const SEALS_IN_FLIGHT: usize = 4;

/// Coverage a connection claims.
#[derive(Debug)]
pub struct Claim {
    /// `None`: every partition (a Recovery request without a partition).
    pub partition: Option<u32>,
    /// Unix seconds, half-open.
    pub secs: Range<i64>,
    /// Fired once the claim is recorded as coverage (or dropped on error).
    pub done: Option<oneshot::Sender<bool>>,
}

pub enum Msg {
    Batch(Batch),
    Claim(Claim),
    /// Commit now and answer when everything before is durable and covered.
    Flush(oneshot::Sender<bool>),
    /// Segments copied to the bucket and verified there, to evict (the
    /// uploader's, with `[archive] local_max`): this thread is the
    /// segments' only writer, so it is the one that removes them.
    Evict(Vec<gapless_bucket::upload::Eviction>),
}

/// Starts the storage thread of a stream. It runs until every sender is
/// dropped, then commits a last time.
pub fn spawn(
    mut writer: StreamWriter,
    coverage: Arc<CoverageMap>,
    partitions: u32,
    metrics: Arc<StreamMetrics>,
    clock: Clock,
    purge: Option<PurgeConfig>,
    mut rx: mpsc::Receiver<Msg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let label = writer.label().to_string();
    let mut purger = purge.map(|p| Purger::new(p, writer.dir().to_path_buf()));
    // The storage thread is a plain thread (its work is blocking I/O); a
    // small runtime of its own gives it a timed wait on the channel.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let span = tracing::Span::current();
    std::thread::Builder::new().name(format!("store-{label}")).spawn(move || {
        let _span = span.entered();
        check_window(&mut writer, &coverage, &label, clock.now_secs());
        let mut claims: Vec<Claim> = Vec::new();
        let mut withheld = Withheld::default();
        let mut blocked = false;
        // Minutes written since their last seal, and when (stream ms).
        let mut unsealed: std::collections::BTreeMap<Minute, i64> = std::collections::BTreeMap::new();
        let mut flushes: Vec<oneshot::Sender<bool>> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut last_commit = Instant::now();
        let mut open = true;
        while open || !claims.is_empty() || writer.pending_records() > 0 {
            // Wait for a message, but no longer than the commit interval.
            // Past the pending cap (commits fail: a full disk), stop
            // reading: connections block on the channel and stop reading
            // their sockets; nothing pending is dropped, and Backfill and
            // Recovery bring what the server sends meanwhile.
            let wait = COMMIT_INTERVAL.saturating_sub(last_commit.elapsed());
            let full = writer.pending_bytes() >= MAX_PENDING_BYTES;
            if full != blocked {
                blocked = full;
                if full {
                    tracing::error!(
                        pending_bytes = writer.pending_bytes(),
                        "STORAGE BLOCKED: commits fail and the pending cap is reached; the stream stops reading"
                    );
                } else {
                    tracing::warn!("storage unblocked; the stream reads again");
                }
            }
            let msg = if !open {
                Recv::Closed
            } else if blocked {
                std::thread::sleep(wait);
                Recv::Timeout
            } else {
                recv_timeout(&rt, &mut rx, wait)
            };
            match msg {
                Recv::Msg(Msg::Batch(batch)) => {
                    let started = Instant::now();
                    pending_bytes += batch.bytes();
                    StreamMetrics::add(&metrics.bytes, batch.bytes() as u64);
                    let now_ms = clock.now_ms();
                    let _ = batch.each(|line, classified| -> Result<(), std::convert::Infallible> {
                        let activity = match &classified {
                            Ok(Line::Activity(a)) => Some(*a),
                            _ => None,
                        };
                        let outcome = match writer.accept(line, classified, now_ms) {
                            Ok(outcome) => {
                                if let Some(a) = activity {
                                    withheld.settled(a.minute(), &a.key);
                                }
                                outcome
                            }
                            Err(e) => {
                                // Not stored (its minute's segment could not
                                // be read to deduplicate): kept in the
                                // quarantine, and its minute is not claimed
                                // until a later copy is stored.
                                tracing::error!(error = %e, "a line could not be stored; its minute stays a hole");
                                if let Some(a) = activity {
                                    withheld.add(a.minute(), a.key);
                                }
                                writer.quarantine(line, format!("not stored: {e}"), now_ms)
                            }
                        };
                        if let Outcome::Stored { minute, .. } = outcome {
                            unsealed.insert(minute, now_ms);
                            if let Some(p) = purger.as_mut() {
                                p.written(minute);
                            }
                        }
                        count(&metrics, &outcome);
                        Ok(())
                    });
                    StreamMetrics::add(&metrics.accept_micros, started.elapsed().as_micros() as u64);
                }
                Recv::Msg(Msg::Claim(c)) => claims.push(c),
                Recv::Msg(Msg::Evict(evictions)) => evict(&mut writer, &metrics, &evictions),
                Recv::Msg(Msg::Flush(tx)) => {
                    flushes.push(tx);
                    last_commit = Instant::now() - COMMIT_INTERVAL; // commit now
                }
                Recv::Timeout => {}
                Recv::Closed => open = false,
            }
            if writer.seals_in_progress() > 0 {
                install_seals(&mut writer, &mut unsealed, purger.as_mut(), clock.now_ms());
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL || pending_bytes >= COMMIT_BYTES || !open {
                last_commit = Instant::now();
                pending_bytes = 0;
                let ok = commit_and_cover(&mut writer, &coverage, partitions, &label, &metrics, &mut claims, &withheld);
                for tx in flushes.drain(..) {
                    let _ = tx.send(ok);
                }
                if ok && open {
                    seal_quiet_minutes(&mut writer, &mut unsealed, clock.now_ms());
                    if let Some(p) = purger.as_mut() {
                        p.tick(&mut writer, clock.now_ms());
                    }
                }
                if !open && (!ok || !claims.is_empty()) {
                    tracing::error!(claims = claims.len(), "last commit failed: these claims are not recorded");
                    break;
                }
            }
        }
    })
}

/// Evicts what the uploader found copied; a minute that changed since is
/// kept (it is copied again first).
fn evict(writer: &mut StreamWriter, metrics: &StreamMetrics, evictions: &[gapless_bucket::upload::Eviction]) {
    for e in evictions {
        match writer.evict(e.minute, e.ino, e.len, &e.marker) {
            Ok(true) => StreamMetrics::add(&metrics.evicted_minutes, 1),
            Ok(false) => tracing::debug!(minute = %e.minute, "not evicted: the minute changed since it was copied"),
            Err(err) => {
                tracing::warn!(minute = %e.minute, error = %err, "evicting a copied minute failed; it stays local")
            }
        }
    }
}

/// Minutes holding a line that could not be stored: no claim covers them
/// until every such line was later stored (or found stored) after all, so
/// that a claim never passes a line that is not in the archive.
#[derive(Default)]
struct Withheld {
    keys: BTreeMap<Minute, HashSet<Key>>,
    /// Minutes whose keys were not tracked (past [`WITHHELD_KEYS`]): they
    /// stay holes for the life of the process, and Recovery fills them
    /// after a restart.
    sticky: BTreeSet<Minute>,
    tracked: usize,
}

/// At most this many keys of unstored lines are tracked.
const WITHHELD_KEYS: usize = 100_000;

impl Withheld {
    fn add(&mut self, minute: Minute, key: Key) {
        if self.tracked >= WITHHELD_KEYS {
            self.sticky.insert(minute);
        } else if self.keys.entry(minute).or_default().insert(key) {
            self.tracked += 1;
        }
    }

    /// A line of `minute` with `key` was accepted (stored, or found stored).
    fn settled(&mut self, minute: Minute, key: &Key) {
        if let Some(keys) = self.keys.get_mut(&minute) {
            if keys.remove(key) {
                self.tracked -= 1;
            }
            if keys.is_empty() {
                self.keys.remove(&minute);
            }
        }
    }

    /// `secs` without the withheld minutes.
    fn trim(&self, secs: Range<i64>) -> Vec<Range<i64>> {
        let holes: Vec<Range<i64>> = self
            .keys
            .keys()
            .chain(&self.sticky)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|m| m.start_secs()..m.next().start_secs())
            .collect();
        crate::planner::subtract(std::slice::from_ref(&secs), &holes)
    }
}

/// Checked on start when a stream records no recovery window of its own.
const DEFAULT_CHECK_WINDOW_SECS: i64 = 5 * 86_400;

/// On start, checks the structure of the segments of the recovery window
/// (file and frame headers and lengths: cheap, headers only), so that a
/// segment damaged while the archiver was away (cut short, emptied, torn)
/// loses its coverage and is recovered, instead of staying `full`.
/// `gapless verify` checks every payload checksum too.
fn check_window(writer: &mut StreamWriter, coverage: &CoverageMap, label: &str, now_secs: i64) {
    let window = coverage.recovery_window(label).ok().flatten().unwrap_or(DEFAULT_CHECK_WINDOW_SECS);
    let minutes = Minute::of_secs(now_secs - window)..Minute::of_secs(now_secs).next();
    match writer.verify(minutes, Depth::Structure) {
        Ok(findings) => {
            for f in findings {
                match f.outcome {
                    Repaired::Yes => {
                        tracing::error!(minute = %f.minute, "a damaged segment was repaired; its minute is a hole again")
                    }
                    Repaired::No(why) => {
                        tracing::error!(minute = %f.minute, error = %why, "a damaged segment could not be repaired")
                    }
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "checking the segments of the recovery window failed"),
    }
}

enum Recv {
    Msg(Msg),
    Timeout,
    Closed,
}

fn recv_timeout(rt: &tokio::runtime::Runtime, rx: &mut mpsc::Receiver<Msg>, timeout: Duration) -> Recv {
    match rt.block_on(async { tokio::time::timeout(timeout, rx.recv()).await }) {
        Ok(Some(m)) => Recv::Msg(m),
        Ok(None) => Recv::Closed,
        Err(_) => Recv::Timeout,
    }
}

/// Asks the sealer to seal a few minutes that nothing was written to for a
/// while (at most [`SEALS_IN_FLIGHT`] queued).
fn seal_quiet_minutes(writer: &mut StreamWriter, unsealed: &mut std::collections::BTreeMap<Minute, i64>, now_ms: i64) {
    let room = SEALS_IN_FLIGHT.saturating_sub(writer.seals_in_progress());
    let quiet: Vec<Minute> = unsealed
        .iter()
        .filter(|(m, last)| now_ms - **last >= SEAL_AFTER_MS && m.next().start_ms() <= now_ms - SEAL_AFTER_MS)
        .map(|(m, _)| *m)
        .take(room)
        .collect();
    for minute in quiet {
        unsealed.remove(&minute);
        // Not fatal: the minute stays readable in its frames.
        if let Err(e) = writer.seal_in_background(minute) {
            tracing::warn!(%minute, error = %e, "sealing a minute failed")
        }
    }
}

/// Installs the seals the sealer finished. A minute that changed while it
/// was sealed is sealed again once quiet.
/// Purges are the purger's.
fn install_seals(
    writer: &mut StreamWriter,
    unsealed: &mut std::collections::BTreeMap<Minute, i64>,
    mut purger: Option<&mut Purger>,
    now_ms: i64,
) {
    for (minute, outcome) in writer.finished_seals() {
        if let Some(p) = purger.as_mut().filter(|p| p.owns(minute)) {
            p.finished(minute, outcome, now_ms);
            continue;
        }
        match outcome {
            SealOutcome::Sealed(s) => {
                tracing::debug!(%minute, frames = s.frames_before, bytes_before = s.bytes_before, bytes_after = s.bytes_after, "sealed")
            }
            SealOutcome::NothingToDo => {}
            SealOutcome::Refused => {
                unsealed.entry(minute).or_insert(now_ms);
            }
            SealOutcome::Failed(e) => tracing::warn!(%minute, error = %e, "sealing a minute failed"),
        }
    }
}

fn count(m: &StreamMetrics, outcome: &Outcome) {
    match outcome {
        Outcome::Stored { .. } => {
            StreamMetrics::add(&m.received, 1);
            StreamMetrics::add(&m.stored, 1);
        }
        Outcome::Duplicate { .. } => {
            StreamMetrics::add(&m.received, 1);
            StreamMetrics::add(&m.duplicates, 1);
        }
        Outcome::Quarantined { reason } => {
            StreamMetrics::add(&m.received, 1);
            StreamMetrics::add(&m.quarantined, 1);
            tracing::warn!(%reason, "quarantined a line");
        }
        Outcome::Heartbeat => StreamMetrics::add(&m.heartbeats, 1),
        Outcome::System(_) => StreamMetrics::add(&m.system_messages, 1),
    }
}

/// Commits; on success records every claim as coverage. Returns whether
/// the commit succeeded.
fn commit_and_cover(
    writer: &mut StreamWriter,
    coverage: &CoverageMap,
    partitions: u32,
    label: &str,
    metrics: &StreamMetrics,
    claims: &mut Vec<Claim>,
    withheld: &Withheld,
) -> bool {
    let proof = match writer.commit() {
        Ok((proof, stats)) => {
            StreamMetrics::add(&metrics.write_micros, stats.write_micros);
            StreamMetrics::add(&metrics.sync_micros, stats.sync_micros);
            proof
        }
        Err(e) => {
            StreamMetrics::add(&metrics.commit_errors, 1);
            tracing::error!(error = %e, "COMMIT FAILED: data is not durable, coverage does not advance");
            return false;
        }
    };
    StreamMetrics::add(&metrics.commits, 1);
    for damaged in writer.take_damaged_minutes() {
        tracing::error!(minute = %damaged, "a damaged segment was repaired; its minute is a hole again");
    }
    // Minutes whose records could not be written yet (their segment
    // fails): the parts of claims over them wait for a later commit.
    let stuck: Vec<Range<i64>> =
        writer.pending_minutes().into_iter().map(|m| m.start_secs()..m.next().start_secs()).collect();
    let mut waiting = Vec::new();
    for claim in claims.drain(..) {
        let mut ok = true;
        let secs = withheld.trim(claim.secs.clone());
        let now: Vec<Range<i64>> = crate::planner::subtract(&secs, &stuck);
        let later: Vec<Range<i64>> = crate::planner::subtract(&secs, &now);
        let parts: Vec<u32> = match claim.partition {
            Some(p) => vec![p],
            None => (1..=partitions).collect(),
        };
        for p in parts {
            for s in &now {
                if let Err(e) = coverage.cover(&proof, label, p, s.clone()) {
                    ok = false;
                    tracing::error!(partition = p, error = %e, "recording coverage failed");
                }
            }
        }
        let mut done = claim.done;
        let n = later.len();
        for (i, secs) in later.into_iter().enumerate() {
            waiting.push(Claim { partition: claim.partition, secs, done: if i + 1 == n { done.take() } else { None } });
        }
        if let Some(done) = done {
            let _ = done.send(ok);
        }
    }
    *claims = waiting;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use gapless_storage::activity::Limits;
    use gapless_storage::reader::RangeReader;
    use gapless_storage::store::{segment_path, Store, StoreConfig};

    const T0: i64 = 1_772_366_400; // 2026-03-01T12:00:00Z, a minute start

    fn post(id: u64, secs: i64) -> String {
        format!(
            "{{\"id_str\":\"{id}\",\"created_at\":\"x\",\"user\":{{}},\"timestamp_ms\":\"{}\"}}\r\n",
            secs * 1000 + 500
        )
    }

    async fn flush(tx: &mpsc::Sender<Msg>) -> bool {
        let (done, rx) = oneshot::channel();
        tx.send(Msg::Flush(done)).await.expect("writer runs");
        rx.await.expect("writer answers")
    }

    /// One minute whose segment cannot be written does not block the
    /// others: they are stored and claimed; its claim waits until its data
    /// is durable, and is then recorded.
    #[tokio::test]
    async fn a_failing_minute_does_not_block_the_others_and_its_claim_waits() {
        use gapless_storage::io::{Fault, FaultyFs, Op, Rule};
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let store = Store::open_with(dir.path(), StoreConfig::default(), fs.shared()).unwrap();
        let coverage = store.coverage().clone();
        coverage.set_partitions("s", 1).unwrap();
        let stem = Minute::of_secs(T0).file_stem();
        fs.fail(Rule::always(Op::Open, &format!("{stem}.seg"), Fault::Io));
        let (tx, rx) = mpsc::channel(16);
        let metrics = Arc::new(StreamMetrics::new("s", "decahose"));
        let handle =
            spawn(store.stream("s").unwrap(), coverage.clone(), 1, metrics, Clock::system(), None, rx).unwrap();
        let lines = [post(1, T0 + 10), post(2, T0 + 70), post(3, T0 + 130)].concat();
        tx.send(Msg::Batch(Batch::classify(lines.into_bytes(), &Limits::default()))).await.unwrap();
        let (done, mut answered) = oneshot::channel();
        tx.send(Msg::Claim(Claim { partition: Some(1), secs: T0..T0 + 180, done: Some(done) })).await.unwrap();
        assert!(flush(&tx).await);
        assert_eq!(coverage.covered_ranges("s", 1, T0..T0 + 180).unwrap(), vec![T0 + 60..T0 + 180]);
        assert!(answered.try_recv().is_err(), "the claim is not done while a minute waits");
        fs.heal();
        assert!(flush(&tx).await);
        assert_eq!(coverage.covered_ranges("s", 1, T0..T0 + 180).unwrap(), vec![T0..T0 + 180]);
        assert_eq!(answered.await, Ok(true));
        drop(tx);
        handle.join().unwrap();
        let ids: Vec<Key> = RangeReader::new(dir.path(), "s", T0 * 1000..(T0 + 180) * 1000)
            .flat_map(|b| b.unwrap().iter().map(|(e, _)| e.key).collect::<Vec<_>>())
            .collect();
        assert_eq!(ids, vec![Key::Post(1), Key::Post(2), Key::Post(3)]);
    }

    /// The real filesystem, where opening a file for reading whose path
    /// ends with `pattern` waits while the gate is closed.
    #[derive(Debug, Clone)]
    struct GatedFs {
        pattern: Arc<std::sync::Mutex<String>>,
        gate: Arc<(std::sync::Mutex<(bool, usize)>, std::sync::Condvar)>,
    }

    impl GatedFs {
        fn open_gate(&self) {
            self.gate.0.lock().unwrap().0 = false;
            self.gate.1.notify_all();
        }
    }

    impl Drop for Opener {
        fn drop(&mut self) {
            self.0.open_gate();
        }
    }
    struct Opener(GatedFs);

    impl gapless_storage::io::Filesystem for GatedFs {
        fn open(
            &self,
            path: &std::path::Path,
            mode: gapless_storage::io::Mode,
        ) -> std::io::Result<Box<dyn gapless_storage::io::FileHandle>> {
            let pattern = self.pattern.lock().unwrap().clone();
            if mode == gapless_storage::io::Mode::Read
                && !pattern.is_empty()
                && path.to_string_lossy().ends_with(&pattern)
            {
                let (m, c) = &*self.gate;
                let mut g = m.lock().unwrap();
                g.1 += 1;
                c.notify_all();
                while g.0 {
                    g = c.wait(g).unwrap();
                }
            }
            gapless_storage::io::StdFs.open(path, mode)
        }
        fn create_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
            gapless_storage::io::StdFs.create_dir_all(path)
        }
        fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
            gapless_storage::io::StdFs.rename(from, to)
        }
        fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
            gapless_storage::io::StdFs.remove_file(path)
        }
        fn sync_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
            gapless_storage::io::StdFs.sync_dir(path)
        }
    }

    /// Sealing runs off the storage thread: while the sealer is held
    /// reading a quiet minute, batches are still committed and claims
    /// covered; once it is let go, the minute is sealed into one frame and
    /// reads back whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seal_in_progress_does_not_block_the_storage_thread() {
        use gapless_storage::segment::read_headers;
        let dir = tempfile::tempdir().unwrap();
        let fs = GatedFs {
            pattern: Arc::new(std::sync::Mutex::new(String::new())),
            gate: Arc::new((std::sync::Mutex::new((false, 0)), std::sync::Condvar::new())),
        };
        let _opener = Opener(fs.clone());
        let store = Store::open_with(dir.path(), StoreConfig::default(), Arc::new(fs.clone())).unwrap();
        let coverage = store.coverage().clone();
        coverage.set_partitions("s", 1).unwrap();
        // Stream time runs 1000 times faster: a minute is quiet after 0.6 s.
        let clock = Clock::scaled(None, 1000.0, None).unwrap();
        let t = Minute::of_secs(clock.now_secs() - 7200).start_secs();
        let writer = store.stream("s").unwrap();
        let path = segment_path(writer.dir(), Minute::of_secs(t));
        // The sealer waits at the gate for the segment of minute `t`.
        *fs.pattern.lock().unwrap() = path.to_string_lossy().into_owned();
        fs.gate.0.lock().unwrap().0 = true;
        let (tx, rx) = mpsc::channel(16);
        let metrics = Arc::new(StreamMetrics::new("s", "decahose"));
        let handle = spawn(writer, coverage.clone(), 1, metrics, clock, None, rx).unwrap();
        for i in 0..2 {
            let lines = [post(1 + i, t + 10 + i as i64), post(3 + i, t + 20 + i as i64)].concat();
            tx.send(Msg::Batch(Batch::classify(lines.into_bytes(), &Limits::default()))).await.unwrap();
            assert!(flush(&tx).await);
        }
        assert_eq!(read_headers(&path).unwrap().1.len(), 2);
        // Quiet: the sealer takes the minute and is held.
        let gate = fs.gate.clone();
        let held = tokio::task::spawn_blocking(move || {
            let (m, c) = &*gate;
            let g = c.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(120), |(_, n)| *n == 0).unwrap();
            g.0 .1 > 0
        });
        assert!(held.await.unwrap(), "the minute was never sealed");
        // Meanwhile the storage thread commits and covers another minute.
        let u = t + 120;
        tx.send(Msg::Batch(Batch::classify(post(9, u + 5).into_bytes(), &Limits::default()))).await.unwrap();
        tx.send(Msg::Claim(Claim { partition: Some(1), secs: u..u + 60, done: None })).await.unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(60), flush(&tx)).await;
        assert_eq!(answered, Ok(true), "a commit waited for the seal");
        assert_eq!(coverage.covered_ranges("s", 1, u..u + 60).unwrap(), vec![u..u + 60]);
        assert_eq!(read_headers(&path).unwrap().1.len(), 2, "not sealed while held");
        fs.open_gate();
        let mut sealed = false;
        for _ in 0..600 {
            assert!(flush(&tx).await);
            if read_headers(&path).unwrap().1.len() == 1 {
                sealed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(sealed, "the minute was sealed once the sealer was let go");
        drop(tx);
        handle.join().unwrap();
        let ids: Vec<Key> = RangeReader::new(dir.path(), "s", t * 1000..(t + 60) * 1000)
            .flat_map(|b| b.unwrap().iter().map(|(e, _)| e.key).collect::<Vec<_>>())
            .collect();
        assert_eq!(ids, vec![Key::Post(1), Key::Post(2), Key::Post(3), Key::Post(4)]);
    }

    /// A full disk stops growth: past the pending cap the storage thread
    /// takes no more batches (the senders block, so connections stop
    /// reading), and nothing pending is lost once the disk has room.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_stops_reading_at_the_pending_cap_and_loses_nothing() {
        use gapless_storage::io::{Fault, FaultyFs, Op, Rule};
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let store = Store::open_with(dir.path(), StoreConfig::default(), fs.shared()).unwrap();
        let coverage = store.coverage().clone();
        coverage.set_partitions("s", 1).unwrap();
        fs.fail(Rule::always(Op::Write, ".seg", Fault::NoSpace));
        let (tx, rx) = mpsc::channel(4);
        let metrics = Arc::new(StreamMetrics::new("s", "decahose"));
        let handle =
            spawn(store.stream("s").unwrap(), coverage.clone(), 1, metrics, Clock::system(), None, rx).unwrap();
        // Batches of ten ~100 KB Posts (1 MB each).
        let batch = |b: u64| {
            let mut buf = Vec::new();
            for i in 0..10 {
                let id = b * 10 + i + 1;
                buf.extend_from_slice(
                    format!(
                        "{{\"id_str\":\"{id}\",\"created_at\":\"x\",\"user\":{{}},\"text\":\"{}\",\"timestamp_ms\":\"{}\"}}\r\n",
                        "p".repeat(100_000),
                        T0 * 1000 + id as i64
                    )
                    .as_bytes(),
                );
            }
            Batch::classify(buf, &Limits::default())
        };
        let limit = (MAX_PENDING_BYTES >> 20) as u64 * 3;
        let mut sent = 0;
        while sent < limit {
            let send = tx.send(Msg::Batch(batch(sent)));
            if tokio::time::timeout(Duration::from_secs(5), send).await.is_err() {
                break;
            }
            sent += 1;
        }
        assert!(sent < limit, "the storage thread kept taking batches with the disk full ({sent})");
        assert!(sent >= (MAX_PENDING_BYTES >> 20) as u64, "it took batches up to the cap ({sent})");
        fs.heal();
        tx.send(Msg::Batch(batch(sent))).await.unwrap();
        assert!(flush(&tx).await);
        drop(tx);
        handle.join().unwrap();
        let n = RangeReader::new(dir.path(), "s", T0 * 1000..(T0 + 60) * 1000).map(|b| b.unwrap().len()).sum::<usize>();
        assert_eq!(n as u64, (sent + 1) * 10, "every record of every batch taken");
    }

    /// A segment damaged while the archiver was away (cut in half) loses
    /// its minute's coverage when the storage thread starts.
    #[tokio::test]
    async fn a_segment_damaged_while_away_is_uncovered_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let now = Clock::system().now_secs();
        let t = Minute::of_secs(now - 3600).start_secs();
        {
            let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
            store.coverage().set_partitions("s", 1).unwrap();
            let mut w = store.stream("s").unwrap();
            for i in 0..60 {
                w.ingest(post(10 + i as u64, t + i).trim_end().as_bytes(), t * 1000).unwrap();
            }
            let (proof, _) = w.commit().unwrap();
            store.coverage().cover(&proof, "s", 1, t..t + 60).unwrap();
        }
        let path = segment_path(&dir.path().join("streams/s"), Minute::of_secs(t));
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();

        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let coverage = store.coverage().clone();
        assert_eq!(coverage.covered_ranges("s", 1, t..t + 60).unwrap(), vec![t..t + 60]);
        let (tx, rx) = mpsc::channel(16);
        let metrics = Arc::new(StreamMetrics::new("s", "decahose"));
        let handle =
            spawn(store.stream("s").unwrap(), coverage.clone(), 1, metrics, Clock::system(), None, rx).unwrap();
        assert!(flush(&tx).await);
        assert!(coverage.covered_ranges("s", 1, t..t + 60).unwrap().is_empty(), "the damaged minute is a hole");
        drop(tx);
        handle.join().unwrap();
    }

    /// A line whose storing fails is quarantined, the rest of its batch is
    /// stored, and the claim that follows covers everything but its minute;
    /// once a later copy of it is stored, its minute can be covered.
    #[tokio::test]
    async fn a_line_that_cannot_be_stored_is_never_covered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let coverage = store.coverage().clone();
        coverage.set_partitions("s", 1).unwrap();
        let writer = store.stream("s").unwrap();
        // The segment of the first minute cannot be read: a directory where
        // the file should be (reading it fails with EISDIR).
        let bad = segment_path(writer.dir(), Minute::of_secs(T0));
        std::fs::create_dir_all(&bad).unwrap();
        let (tx, rx) = mpsc::channel(16);
        let metrics = Arc::new(StreamMetrics::new("s", "decahose"));
        let handle = spawn(writer, coverage.clone(), 1, metrics, Clock::system(), None, rx).unwrap();

        let lines = [post(1, T0 + 10), post(2, T0 + 70), post(3, T0 + 80)].concat();
        tx.send(Msg::Batch(Batch::classify(lines.into_bytes(), &Limits::default()))).await.unwrap();
        tx.send(Msg::Claim(Claim { partition: Some(1), secs: T0..T0 + 120, done: None })).await.unwrap();
        assert!(flush(&tx).await);
        assert_eq!(coverage.covered_ranges("s", 1, T0..T0 + 120).unwrap(), vec![T0 + 60..T0 + 120]);
        let entries = gapless_storage::quarantine::read_entries(&dir.path().join("streams/s/quarantine.log")).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].reason.starts_with("not stored"), "{}", entries[0].reason);
        assert!(String::from_utf8_lossy(&entries[0].line).contains("\"id_str\":\"1\""));

        // The disk is readable again, and the line comes again (Recovery).
        std::fs::remove_dir(&bad).unwrap();
        tx.send(Msg::Batch(Batch::classify(post(1, T0 + 10).into_bytes(), &Limits::default()))).await.unwrap();
        tx.send(Msg::Claim(Claim { partition: Some(1), secs: T0..T0 + 60, done: None })).await.unwrap();
        assert!(flush(&tx).await);
        assert_eq!(coverage.covered_ranges("s", 1, T0..T0 + 120).unwrap(), vec![T0..T0 + 120]);
        drop(tx);
        handle.join().unwrap();

        let mut reader = RangeReader::new(dir.path(), "s", T0 * 1000..(T0 + 120) * 1000);
        let mut ids = Vec::new();
        for m in [Minute::of_secs(T0), Minute::of_secs(T0 + 60)] {
            for (e, _) in reader.read_minute(m).unwrap().iter() {
                ids.push(e.key);
            }
        }
        ids.sort();
        assert_eq!(ids, vec![Key::Post(1), Key::Post(2), Key::Post(3)]);
    }
}
