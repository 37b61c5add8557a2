//! The purge pass of one stream, run by its storage thread: once a
//! compliance event is older than `[compliance] purge_after`, every local
//! minute is rewritten without what it deleted (`gapless_storage::
//! compliance::purge` says what, and how a rewrite stays atomic).
//!
//! # Design
//! - **A pass** starts every `purge_interval` (wall time) if the ledger
//!   holds events that are due and not yet in the purge log. It asks the
//!   stream's sealer to purge each local minute with a segment, a few at a
//!   time, between batches: the storage thread stays the segments' only
//!   writer and ingest goes on. A minute that changed while it was being
//!   purged (late data) is purged again; one that failed leaves the pass
//!   unfinished, and the next pass does it all again.
//! - **Said once.** Only when every minute is done are the pass's events
//!   appended to the purge log: the log never claims a purge that did not
//!   happen.
//! - **Later data.** A Post that arrives after its delete was purged is a
//!   duplicate if its copy was purged (its key is kept), and otherwise is
//!   stored, hidden by readers, and removed by the next pass: a pass
//!   applies every due event, logged or not, and when no new event is due
//!   it still starts, over the minutes written since the last one.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gapless_storage::activity::{EARLIEST_MS, LATEST_MS};
use gapless_storage::compliance::{self, purge, Event, Policy, PurgeLog};
use gapless_storage::io::StdFs;
use gapless_storage::store::{SealOutcome, StreamWriter};
use gapless_storage::{layout, Minute};

/// Minutes queued for purging at a time.
const IN_FLIGHT: usize = 2;

/// `[compliance]` for one stream.
#[derive(Clone, Copy, Debug)]
pub struct PurgeConfig {
    /// How old (stream time) an event is before its content is purged.
    pub after: Duration,
    /// How often (wall time) the ledger is looked at for due events.
    pub interval: Duration,
}

/// One pass in progress.
struct Pass {
    due: Vec<Event>,
    policy: Arc<Policy>,
    todo: VecDeque<Minute>,
    in_flight: HashSet<Minute>,
    purged: usize,
    scrubbed: usize,
    failed: usize,
}

/// The purge state of a stream's storage thread.
pub struct Purger {
    config: PurgeConfig,
    stream_dir: PathBuf,
    log: PurgeLog,
    next: Instant,
    pass: Option<Pass>,
    /// Minutes written since the last pass started.
    written: BTreeSet<Minute>,
}

impl Purger {
    pub fn new(config: PurgeConfig, stream_dir: PathBuf) -> Purger {
        let log = PurgeLog::new(Arc::new(StdFs), &stream_dir);
        Purger { config, stream_dir, log, next: Instant::now(), pass: None, written: BTreeSet::new() }
    }

    /// Records that `minute` was written (late data after a pass may hold
    /// what an earlier pass removed).
    pub fn written(&mut self, minute: Minute) {
        self.written.insert(minute);
    }

    /// Whether a pass is in progress.
    pub fn busy(&self) -> bool {
        self.pass.is_some()
    }

    /// Whether `minute` is being purged by this purger (its outcome is
    /// this purger's, see [`Purger::finished`]).
    pub fn owns(&self, minute: Minute) -> bool {
        self.pass.as_ref().is_some_and(|p| p.in_flight.contains(&minute))
    }

    /// Starts a pass when one is due and has work, and queues minutes.
    pub fn tick(&mut self, writer: &mut StreamWriter, now_ms: i64) {
        if self.pass.is_none() {
            if Instant::now() < self.next {
                return;
            }
            self.next = Instant::now() + self.config.interval;
            match self.start(now_ms) {
                Ok(pass) => self.pass = pass,
                Err(e) => {
                    tracing::warn!(error = %e, "compliance purge: the ledger could not be read; trying again later")
                }
            }
        }
        let Some(pass) = self.pass.as_mut() else { return };
        while pass.in_flight.len() < IN_FLIGHT {
            let Some(minute) = pass.todo.pop_front() else { break };
            match writer.purge_in_background(minute, pass.policy.clone()) {
                Ok(true) => {
                    pass.in_flight.insert(minute);
                }
                // A seal of it is in progress: later.
                Ok(false) if layout::segment_path(writer.dir(), minute).exists() => {
                    pass.todo.push_back(minute);
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%minute, error = %e, "compliance purge of a minute could not start");
                    pass.failed += 1;
                }
            }
        }
        self.finish_if_done(now_ms);
    }

    /// The outcome of a purge this purger asked for.
    pub fn finished(&mut self, minute: Minute, outcome: SealOutcome, now_ms: i64) {
        let Some(pass) = self.pass.as_mut() else { return };
        pass.in_flight.remove(&minute);
        match outcome {
            SealOutcome::Sealed(s) => {
                pass.purged += s.purged;
                pass.scrubbed += s.scrubbed;
                tracing::debug!(%minute, purged = s.purged, scrubbed = s.scrubbed, "compliance purge rewrote a minute");
            }
            SealOutcome::NothingToDo => {}
            // Changed meanwhile (late data): again.
            SealOutcome::Refused => pass.todo.push_back(minute),
            SealOutcome::Failed(e) => {
                tracing::warn!(%minute, error = %e, "compliance purge of a minute failed; the next pass tries again");
                pass.failed += 1;
            }
        }
        self.finish_if_done(now_ms);
    }

    /// A pass over every local minute, if events are due that the log
    /// does not hold yet.
    fn start(&mut self, now_ms: i64) -> anyhow::Result<Option<Pass>> {
        let events = compliance::load(&self.stream_dir)?.events;
        let done_log = self.log.read()?;
        let done: HashSet<Event> = done_log.events.iter().cloned().collect();
        let current = Policy::of(&events);
        let delay = self.config.after.as_millis() as i64;
        let new = purge::due(&events, &current, &done, now_ms, delay);
        // Everything due, logged or not: a Post stored after an earlier
        // pass is purged too.
        let all_due = purge::due(&events, &current, &HashSet::new(), now_ms, delay);
        let written = std::mem::take(&mut self.written);
        let todo: VecDeque<Minute> = if !new.is_empty() {
            layout::minutes_with_segments(&self.stream_dir, Minute::of_ms(EARLIEST_MS), Minute::of_ms(LATEST_MS))?
                .into()
        } else if !all_due.is_empty() && !written.is_empty() {
            // Nothing new is due: only what was written since.
            written.into_iter().filter(|m| layout::segment_path(&self.stream_dir, *m).exists()).collect()
        } else {
            return Ok(None);
        };
        let evicted =
            layout::evicted_minutes(&self.stream_dir, Minute::of_ms(EARLIEST_MS), Minute::of_ms(LATEST_MS))?.len();
        if evicted > 0 {
            tracing::warn!(
                evicted,
                "compliance purge: minutes evicted to the bucket are not purged (readers hide their content)"
            );
        }
        tracing::info!(events = new.len(), minutes = todo.len(), "compliance purge: a pass starts");
        Ok(Some(Pass {
            policy: Arc::new(Policy::of(&all_due)),
            due: new,
            todo,
            in_flight: HashSet::new(),
            purged: 0,
            scrubbed: 0,
            failed: 0,
        }))
    }

    fn finish_if_done(&mut self, now_ms: i64) {
        let Some(pass) = self.pass.as_ref() else { return };
        if !pass.todo.is_empty() || !pass.in_flight.is_empty() {
            return;
        }
        let pass = self.pass.take().expect("checked above");
        if pass.failed > 0 {
            tracing::warn!(failed = pass.failed, "compliance purge: the pass did not finish; the next one tries again");
            return;
        }
        match self.log.record(&pass.due, now_ms) {
            Ok(()) => tracing::info!(
                events = pass.due.len(),
                records_removed = pass.purged,
                records_scrubbed = pass.scrubbed,
                "compliance purge: a pass finished"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "compliance purge: the purge log could not be written; the next pass tries again")
            }
        }
    }
}
