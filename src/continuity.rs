//! Continuity: how far delivered data proves a stretch of time complete.
//!
//! On streams that never pause (Decahose, Firehose, Likes) an activity
//! arrives every few milliseconds, so a stretch without any is a hole in
//! the data, even while bytes (heartbeats) keep coming: the service may
//! withhold data, or accept `backfillMinutes=N` and never deliver it. A
//! connection's coverage therefore starts where its data proves it, not
//! where it asked to start: the gap between the requested start (the
//! backfill start, or connect time) and the first activity delivered, and
//! the gap between any two consecutive activities (in activity time), is a
//! hole when it is longer than the *data-silence bound*; it is never
//! claimed, and the planner repairs it.
//!
//! # The bound
//! Derived from the rate actually observed: [`FACTOR`] times the expected
//! gap between activities (`1 / rate`), clamped to `[1 s, cap]`, where the
//! cap is `liveness.data_silence` if configured, else `liveness.silence`.
//! For Poisson-like arrivals a gap of 40 expected gaps has probability
//! e^-40 ≈ 4·10^-18, and still e^-21 at the daily low of a rate measured at
//! its high (0.54 of it), so real traffic does not make false holes; a
//! false hole would only cost a needless Recovery. Decahose (~300
//! activities/s per partition) gets the floor, 1 s. Until a connection has
//! seen [`MIN_SAMPLES`] activities over a second, the rate the stream's
//! earlier connections observed is used. Before any rate is known, nothing
//! is judged and nothing is claimed: the activities wait (at most one
//! entry per distinct millisecond) until the rate is measured, and are then
//! judged by it. A kind's default bound (1 s for Decahose and Firehose, 2 s
//! for Likes) would guess: a Likes stream of an account with a tenth of
//! the usual rate would see false holes in its first seconds, and without
//! Recovery a hole is declared lost. The default serves only where a
//! bounded range is judged whole ([`Coverage`], a Recovery job too short
//! to measure a rate).
//!
//! # Out of order
//! Activities arrive up to 3 s out of activity-time order, so a gap is
//! judged only once the newest activity time is 3 s past it, and the edges
//! of a hole are uncertain by as much: a server that stops delivering
//! after an activity of time `a` may have withheld others of `(a − 3 s,
//! a)` (delivered later than `a`, so never), and one that resumes with an
//! activity of time `c` may have skipped others of `(c, c + 3 s)`; a run
//! ended by a hole is proven to `a − 3 s` and the next starts at `c + 3 s`
//! (a requested start needs no such margin: everything of time after it
//! is delivered after it) ([`Continuity`]
//! keeps the times of those last 3 s, one entry per distinct millisecond).
//! Recovery delivers a bounded range in any order, so [`Coverage`] keeps a
//! bitmap of 100 ms buckets over the range and judges gaps on it, counting
//! a gap by its largest possible length.
//!
//! PowerTrack may be quiet for minutes: it has no bound unless one is
//! configured, and there a completed Recovery's message is the proof.

use std::collections::BTreeSet;
use std::ops::Range;

/// Activities arrive at most this much out of time order.
pub const OUT_OF_ORDER_MS: i64 = 3_000;
/// The bound is this many expected gaps between activities.
pub const FACTOR: f64 = 40.0;
/// The bound is never shorter than this.
pub const MIN_BOUND_MS: i64 = 1_000;
/// A rate is trusted after this many activities (over at least a second).
pub const MIN_SAMPLES: u64 = 10;
/// The rate is measured over the last one to two of these.
const RATE_WINDOW_MS: i64 = 60_000;

/// How long a gap between activities may be before it is a hole.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataBound {
    /// A fixed bound (configured on a stream that may pause: PowerTrack).
    Fixed { ms: i64 },
    /// Derived from the observed rate (see the module doc).
    Derived { default_ms: i64, cap_ms: i64 },
}

impl DataBound {
    /// The bound at `rate` activities per second (`None`: not observed).
    pub fn at_rate(&self, rate: Option<f64>) -> i64 {
        match *self {
            DataBound::Fixed { ms } => ms.max(1),
            DataBound::Derived { default_ms, cap_ms } => {
                let cap = cap_ms.max(MIN_BOUND_MS);
                match rate {
                    None => default_ms.clamp(MIN_BOUND_MS, cap),
                    Some(r) if r.is_finite() && r > 0.0 => {
                        let ms = (FACTOR * 1000.0 / r).ceil();
                        if ms >= cap as f64 {
                            cap
                        } else {
                            (ms as i64).clamp(MIN_BOUND_MS, cap)
                        }
                    }
                    // Observed, and nothing comes: the loosest bound.
                    Some(_) => cap,
                }
            }
        }
    }
}

/// The rate of activities over the last one to two minutes of activity
/// time, holes excluded.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    n: u64,
    since_ms: Option<i64>,
    newest_ms: i64,
    excluded_ms: i64,
    prev: (u64, i64),
}

impl RateMeter {
    pub fn record(&mut self, t: i64) {
        let since = *self.since_ms.get_or_insert(t);
        self.n += 1;
        self.newest_ms = self.newest_ms.max(t);
        let span = self.newest_ms - since - self.excluded_ms;
        if span >= RATE_WINDOW_MS {
            self.prev = (self.n, span);
            self.n = 0;
            self.since_ms = Some(self.newest_ms);
            self.excluded_ms = 0;
        }
    }

    /// A hole: the part of it inside the measured time is not time.
    pub fn exclude(&mut self, hole: Range<i64>) {
        if let Some(since) = self.since_ms {
            self.excluded_ms += (hole.end - hole.start.max(since)).max(0);
        }
    }

    /// Activities per second, once [`MIN_SAMPLES`] over a second are seen.
    pub fn rate(&self) -> Option<f64> {
        let span = self.since_ms.map_or(0, |s| (self.newest_ms - s - self.excluded_ms).max(0)) + self.prev.1;
        let n = self.n + self.prev.0;
        (n >= MIN_SAMPLES && span >= 1000).then(|| n as f64 * 1000.0 / span as f64)
    }
}

/// The continuity of a realtime connection's data, judged as it streams
/// in (see the module doc).
#[derive(Clone, Debug)]
pub struct Continuity {
    bound: DataBound,
    prior: Option<f64>,
    /// The newest settled activity time, or the requested start: what is
    /// proven ends here (unless the next activity vouches for more).
    last_ms: i64,
    /// Where the current proven run starts.
    run_start_ms: i64,
    /// Activity times not settled yet (within 3 s of the newest).
    pending: BTreeSet<i64>,
    newest_ms: Option<i64>,
    /// A gap up to here was already accepted (and possibly claimed): it is
    /// not judged again with a bound that changed since.
    vouched_ms: i64,
    meter: RateMeter,
    /// Runs `[start, end]` (ms) ended by a hole, not yet taken.
    closed: Vec<(i64, i64)>,
}

impl Continuity {
    /// Data is owed from `from_ms` (the requested start).
    pub fn new(from_ms: i64, bound: DataBound, prior: Option<f64>) -> Continuity {
        Continuity {
            bound,
            prior,
            last_ms: from_ms,
            run_start_ms: from_ms,
            pending: BTreeSet::new(),
            newest_ms: None,
            vouched_ms: i64::MIN,
            meter: RateMeter::default(),
            closed: Vec::new(),
        }
    }

    /// The rate observed (activities per second), if enough was seen.
    pub fn rate(&self) -> Option<f64> {
        self.meter.rate()
    }

    /// The bound in force now.
    pub fn bound_ms(&self) -> i64 {
        self.bound.at_rate(self.meter.rate().or(self.prior))
    }

    /// Whether gaps can be judged: the bound is fixed, or a rate is known.
    fn can_judge(&self) -> bool {
        matches!(self.bound, DataBound::Fixed { .. }) || self.prior.is_some() || self.meter.rate().is_some()
    }

    /// An activity of time `t` was delivered. Times already settled are
    /// late copies and change nothing.
    pub fn observe(&mut self, t: i64) {
        if t <= self.last_ms {
            return;
        }
        self.pending.insert(t);
        self.newest_ms = Some(self.newest_ms.map_or(t, |m| m.max(t)));
        self.meter.record(t);
    }

    /// Settles the activities more than 3 s older than the newest: returns
    /// the holes found among them (ms, exclusive of both activities).
    pub fn settle(&mut self) -> Vec<Range<i64>> {
        let mut holes = Vec::new();
        let Some(newest) = self.newest_ms else { return holes };
        if !self.can_judge() {
            return holes;
        }
        let settled_to = newest - OUT_OF_ORDER_MS;
        while let Some(&t) = self.pending.first() {
            if t > settled_to {
                break;
            }
            self.pending.pop_first();
            let bound = self.bound_ms();
            if t - self.last_ms > bound && t > self.vouched_ms {
                // Delivery stopped somewhere after the last activity and
                // resumed somewhere before the next: with 3 s of disorder,
                // only what lies 3 s inside each edge is proven.
                if self.last_ms - OUT_OF_ORDER_MS > self.run_start_ms {
                    self.closed.push((self.run_start_ms, self.last_ms - OUT_OF_ORDER_MS));
                }
                holes.push(self.last_ms..t);
                self.meter.exclude(self.last_ms..t);
                self.run_start_ms = t + OUT_OF_ORDER_MS;
            }
            self.last_ms = t;
        }
        holes
    }

    /// Where the current run is proven to: up to 3 s before the newest
    /// activity when the next one after the newest settled one follows
    /// within the bound (then all of that is in, and continuous); else
    /// only up to 3 s before the newest settled one (delivery may have
    /// stopped right after it).
    fn proven_to(&mut self) -> i64 {
        let (Some(newest), Some(&next)) = (self.newest_ms, self.pending.first()) else { return self.last_ms };
        if !self.can_judge() {
            return self.last_ms;
        }
        if next - self.last_ms <= self.bound_ms() || next <= self.vouched_ms {
            self.vouched_ms = self.vouched_ms.max(next);
            (newest - OUT_OF_ORDER_MS).max(self.last_ms)
        } else {
            self.last_ms - OUT_OF_ORDER_MS
        }
    }

    /// The proven runs `[start, end]` (ms), none empty: those ended by a
    /// hole (taken), then the current one.
    pub fn runs(&mut self) -> Vec<(i64, i64)> {
        let mut runs = std::mem::take(&mut self.closed);
        let end = self.proven_to();
        runs.push((self.run_start_ms, end));
        runs.retain(|r| r.0 < r.1);
        runs
    }
}

/// What a bounded range's data (a Recovery job's) proves, in any order of
/// delivery: a bitmap of buckets over the range.
#[derive(Clone, Debug)]
pub struct Coverage {
    start_ms: i64,
    end_ms: i64,
    bucket_ms: i64,
    bits: Vec<u64>,
    n: u64,
}

/// Buckets of 100 ms, fewer than 2^23 per range (1 MiB of bits).
const BUCKET_MS: i64 = 100;
const MAX_BUCKETS: i64 = 1 << 23;

impl Coverage {
    pub fn new(range_ms: Range<i64>) -> Coverage {
        let len = (range_ms.end - range_ms.start).max(0);
        let bucket_ms = BUCKET_MS.max((len + MAX_BUCKETS - 1) / MAX_BUCKETS);
        let buckets = (len + bucket_ms - 1) / bucket_ms;
        Coverage {
            start_ms: range_ms.start,
            end_ms: range_ms.end,
            bucket_ms,
            bits: vec![0; (buckets as usize).div_ceil(64)],
            n: 0,
        }
    }

    /// Records an activity; times outside the range are ignored.
    pub fn observe(&mut self, t: i64) {
        if t < self.start_ms || t >= self.end_ms {
            return;
        }
        let b = ((t - self.start_ms) / self.bucket_ms) as usize;
        self.bits[b / 64] |= 1 << (b % 64);
        self.n += 1;
    }

    /// Activities per second over the range (holes included).
    pub fn rate(&self) -> Option<f64> {
        let len = self.end_ms - self.start_ms;
        (len >= 1000).then(|| self.n as f64 * 1000.0 / len as f64)
    }

    fn occupied(&self) -> impl Iterator<Item = i64> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, w)| {
            let mut w = *w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as i64;
                    w &= w - 1;
                    i as i64 * 64 + b
                })
            })
        })
    }

    /// The continuous runs of `[start, upto)` (ms) as whole seconds, given
    /// the bound: the start and `upto` count as activities (what was asked
    /// for, and how far delivery got). A gap is counted at its largest
    /// possible length (the buckets' edges).
    pub fn runs(&self, upto_ms: i64, bound_ms: i64) -> Vec<Range<i64>> {
        let upto_ms = upto_ms.clamp(self.start_ms, self.end_ms);
        let w = self.bucket_ms;
        let mut out = Vec::new();
        let mut run_start = self.start_ms;
        // The latest time the last activity may have had.
        let mut last_hi = self.start_ms;
        let mut push = |s: i64, e: i64| {
            let (s, e) = (s.div_euclid(1000) + i64::from(s.rem_euclid(1000) != 0), e.div_euclid(1000));
            if s < e {
                out.push(s..e);
            }
        };
        for b in self.occupied() {
            let lo = self.start_ms + b * w;
            if lo >= upto_ms {
                break;
            }
            let hi = (lo + w).min(self.end_ms);
            // An activity somewhere in [lo, hi): the gap since the one
            // before is at most hi - last_lo; judged by its largest length.
            let last_lo = if last_hi == self.start_ms { self.start_ms } else { last_hi - w };
            if hi - last_lo > bound_ms {
                push(run_start, last_lo);
                run_start = hi;
            }
            last_hi = hi;
        }
        let last_lo = if last_hi == self.start_ms { self.start_ms } else { last_hi - w };
        if upto_ms - last_lo > bound_ms {
            push(run_start, last_lo);
        } else {
            push(run_start, upto_ms);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DERIVED: DataBound = DataBound::Derived { default_ms: 1000, cap_ms: 30_000 };

    #[test]
    fn the_bound_follows_the_rate_within_its_clamp() {
        assert_eq!(DERIVED.at_rate(None), 1000);
        assert_eq!(DERIVED.at_rate(Some(300.0)), 1000, "Decahose: the floor");
        assert_eq!(DERIVED.at_rate(Some(5.0)), 8000, "40 expected gaps of 200 ms");
        assert_eq!(DERIVED.at_rate(Some(0.01)), 30_000, "the cap");
        assert_eq!(DERIVED.at_rate(Some(0.0)), 30_000);
        let likes = DataBound::Derived { default_ms: 2000, cap_ms: 5000 };
        assert_eq!(likes.at_rate(None), 2000);
        assert_eq!(likes.at_rate(Some(1.0)), 5000, "a configured data_silence caps it");
        assert_eq!(DataBound::Fixed { ms: 60_000 }.at_rate(Some(300.0)), 60_000);
    }

    #[test]
    fn the_rate_meter_needs_samples_and_excludes_holes() {
        let mut m = RateMeter::default();
        for i in 0..9 {
            m.record(i * 100);
        }
        assert_eq!(m.rate(), None, "too few samples");
        for i in 9..=20 {
            m.record(i * 100);
        }
        assert!((m.rate().unwrap() - 10.5).abs() < 0.01, "{:?}", m.rate());
        // A 10 s hole, then the same rate: the hole is not time (and a hole
        // before the first activity measured is not counted at all).
        m.exclude(2000..12_000);
        m.exclude(-50_000..-40_000);
        for i in 0..=20 {
            m.record(12_000 + i * 100);
        }
        let r = m.rate().unwrap();
        assert!((9.0..12.0).contains(&r), "{r}");
    }

    fn every(from: i64, to: i64, step: i64) -> impl Iterator<Item = i64> {
        (0..).map(move |i| from + i * step).take_while(move |t| *t < to)
    }

    #[test]
    fn continuous_data_proves_up_to_three_seconds_before_the_newest() {
        let t0 = 1_700_000_000_000;
        let mut c = Continuity::new(t0, DERIVED, None);
        assert_eq!(c.runs(), vec![], "nothing delivered, nothing proven");
        every(t0 + 5, t0 + 10_000, 10).for_each(|t| c.observe(t));
        assert!(c.settle().is_empty());
        assert_eq!(c.runs(), vec![(t0, t0 + 10_000 - 5 - 3000)]);
    }

    #[test]
    fn a_promised_backfill_that_never_came_is_a_hole() {
        // Connected at t0 + 60 s with backfillMinutes=1 (from t0); the first
        // activity delivered is at t0 + 40 s: [t0, t0 + 40 s) is a hole
        // even with a configured bound of 30 s that it would have passed.
        let t0 = 1_700_000_000_000;
        let bound = DataBound::Derived { default_ms: 1000, cap_ms: 30_000 };
        let mut c = Continuity::new(t0, bound, None);
        every(t0 + 20_000, t0 + 30_000, 5).for_each(|t| c.observe(t));
        assert_eq!(c.settle(), vec![t0..t0 + 20_000]);
        // Data resumed at t0 + 20 s: with 3 s of disorder, the server may
        // have skipped some of the next 3 s.
        assert_eq!(c.runs(), vec![(t0 + 23_000, t0 + 30_000 - 5 - 3000)]);
    }

    #[test]
    fn gaps_between_activities_are_judged_in_activity_time_despite_disorder() {
        let t0 = 1_700_000_000_000;
        let mut c = Continuity::new(t0, DERIVED, Some(200.0));
        // 0..5 s every 5 ms, delivered with the last second first.
        every(t0 + 4000, t0 + 5000, 5).chain(every(t0, t0 + 4000, 5)).for_each(|t| c.observe(t));
        // Nothing from 5 s to 7.5 s, then data to 12 s.
        every(t0 + 7500, t0 + 12_000, 5).for_each(|t| c.observe(t));
        assert_eq!(c.settle(), vec![t0 + 4995..t0 + 7500]);
        // The edges of the hole are uncertain by the 3 s of disorder.
        assert_eq!(c.runs(), vec![(t0, t0 + 1995)]);
        // A late copy of a settled time changes nothing.
        c.observe(t0 + 6000);
        assert!(c.settle().is_empty());
        // Proven up to 3 s before the newest while the next activity follows
        // within the bound...
        c.observe(t0 + 14_000);
        assert!(c.settle().is_empty());
        assert_eq!(c.runs(), vec![(t0 + 10_500, t0 + 11_000)]);
        every(t0 + 12_000, t0 + 20_000, 5).for_each(|t| c.observe(t));
        c.settle();
        assert_eq!(c.runs(), vec![(t0 + 10_500, t0 + 16_995)]);
        // ...and only to 3 s before the newest settled one when it does not.
        c.observe(t0 + 25_000);
        assert_eq!(c.settle(), vec![]);
        assert_eq!(c.runs(), vec![(t0 + 10_500, t0 + 19_995 - 3000)]);
        c.observe(t0 + 29_000);
        assert_eq!(c.settle(), vec![t0 + 19_995..t0 + 25_000]);
        assert_eq!(c.runs(), vec![(t0 + 10_500, t0 + 16_995)]);
    }

    #[test]
    fn nothing_is_judged_or_claimed_before_the_rate_is_known() {
        // A Likes stream of a small account: about one like every 1.5 s,
        // far below what the kind's default bound (2 s) was made for.
        let t0 = 1_700_000_000_000;
        let likes = DataBound::Derived { default_ms: 2000, cap_ms: 30_000 };
        let mut c = Continuity::new(t0, likes, None);
        let times = [1000, 2500, 5800, 7000, 8600, 11_900, 13_000, 14_500, 16_000, 17_400];
        // Judged as the connection does, after every delivery.
        for t in &times[..9] {
            c.observe(t0 + t);
            assert!(c.settle().is_empty(), "no rate yet: nothing judged");
            assert_eq!(c.runs(), vec![], "and nothing claimed");
        }
        c.observe(t0 + times[9]);
        // Ten activities over 16 s: 0.6/s, a bound of the cap. The gaps of
        // 3.3 s are no holes at that rate.
        assert!(c.rate().is_some());
        assert_eq!(c.settle(), vec![]);
        assert_eq!(c.runs(), vec![(t0, t0 + 17_400 - 3000)]);

        // A gap past the measured bound in those first seconds is still a hole.
        let mut c = Continuity::new(t0, DERIVED, None);
        every(t0, t0 + 2000, 100).chain(every(t0 + 40_000, t0 + 45_000, 100)).for_each(|t| c.observe(t));
        assert_eq!(c.settle(), vec![t0 + 1900..t0 + 40_000]);
    }

    #[test]
    fn a_gap_once_accepted_is_not_judged_again() {
        let t0 = 1_700_000_000_000;
        // A slow stream: 5/s observed, bound 8 s.
        let mut c = Continuity::new(t0, DERIVED, Some(5.0));
        c.observe(t0 + 100);
        c.observe(t0 + 5000);
        c.observe(t0 + 9000);
        assert_eq!(c.settle(), vec![]);
        let runs = c.runs();
        assert_eq!(runs, vec![(t0, t0 + 6000)]);
        // The rate climbs (bound 1 s); the 4 s gap before t0 + 9 s, already
        // vouched for (and claimed), stays accepted.
        every(t0 + 9000, t0 + 20_000, 5).for_each(|t| c.observe(t));
        assert_eq!(c.settle(), vec![]);
    }

    #[test]
    fn recovery_coverage_keeps_only_continuous_runs() {
        let s = 1_700_000_040_000i64; // a whole minute
        let mut c = Coverage::new(s..s + 60_000);
        // Every 10 ms except 20.05 s to 30 s; one activity out of range.
        every(s, s + 60_000, 10).filter(|t| !(s + 20_050..s + 30_000).contains(t)).for_each(|t| c.observe(t));
        c.observe(s + 3_600_000);
        let secs = s / 1000;
        // The seconds that hold the hole's edges are not claimed: a bucket of
        // 100 ms says an activity is in it, not where.
        assert_eq!(c.runs(s + 60_000, 1000), vec![secs..secs + 20, secs + 31..secs + 60]);
        // Delivery stopped at 45 s: the end counts as an activity.
        assert_eq!(c.runs(s + 45_000, 1000), vec![secs..secs + 20, secs + 31..secs + 45]);
        // A loose bound keeps it whole.
        assert_eq!(c.runs(s + 60_000, 15_000), vec![secs..secs + 60]);
        // Nothing delivered: nothing proven; nothing at the end: a hole.
        assert_eq!(Coverage::new(s..s + 60_000).runs(s + 60_000, 1000), vec![]);
        let mut tail = Coverage::new(s..s + 60_000);
        every(s, s + 40_000, 10).for_each(|t| tail.observe(t));
        assert_eq!(tail.runs(s + 60_000, 1000), vec![secs..secs + 39]);
    }
}
