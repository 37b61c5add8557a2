//! Tests of the coverage map, its runs and its on-disk layout.

use super::*;
use std::collections::BTreeSet;
use std::time::Instant;

/// Midnight of 2024-10-03, a day boundary.
const MIDNIGHT: i64 = 19_999 * DAY;

fn proof(stream: &str) -> Durable {
    Durable::new(stream, 1)
}

fn temp_map() -> (tempfile::TempDir, CoverageMap) {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = CoverageMap::open(&dir.path().join("coverage")).expect("open");
    (dir, map)
}

fn states(map: &CoverageMap, stream: &str, from: i64, to: i64) -> Vec<(Coverage, Option<Overlay>)> {
    map.minute_states(stream, Minute::of_secs(from)..Minute::of_secs(to), MAX_SECS, 0)
        .expect("minute_states")
        .into_iter()
        .map(|r| (r.coverage, r.overlay))
        .collect()
}

#[test]
fn shareable_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CoverageMap>();
}

#[test]
fn absurd_minutes_are_refused_not_overflowed() {
    let (_d, map) = temp_map();
    map.set_partitions("s", 1).expect("set");
    let r = map.minute_states("s", Minute(0)..Minute(i64::MAX), 0, 0);
    assert!(matches!(r, Err(Error::OutOfRange(_))));
    assert!(matches!(map.counts("s", Minute(-5)..Minute(0)), Err(Error::OutOfRange(_))));
    assert!(matches!(map.add_counts("s", Minute(i64::MIN), Counts::default()), Err(Error::OutOfRange(_))));
    assert_eq!(Coverage::Partial.as_str(), "partial");
    assert_eq!(serde_json::to_string(&Overlay::Recovering).expect("json"), "\"recovering\"");
}

#[test]
fn run_algebra() {
    let mut v = vec![(5, 7), (1, 3), (3, 4), (10, 10), (6, 9)];
    normalize(&mut v);
    assert_eq!(v, vec![(1, 4), (5, 9)]);
    assert_eq!(intersect(&v, &[(0, 2), (3, 6), (8, 20)]), vec![(1, 2), (3, 4), (5, 6), (8, 9)]);
    assert_eq!(subtract(&v, (2, 6)), vec![(1, 2), (6, 9)]);
    assert_eq!(complement(&v, (0, 12)), vec![(0, 1), (4, 5), (9, 12)]);
    assert_eq!(complement(&v, (2, 3)), Vec::<Run>::new());
    assert_eq!(complement(&[], (2, 3)), vec![(2, 3)]);
    assert_eq!(union(&[(1, 2)], &[(2, 3), (5, 6)]), vec![(1, 3), (5, 6)]);
}

#[test]
fn runs_encode_and_reject_corruption() {
    let day = 19_999;
    let runs = vec![(MIDNIGHT, MIDNIGHT + 5), (MIDNIGHT + 7, MIDNIGHT + DAY)];
    let bytes = encode_runs(&runs);
    assert_eq!(bytes.len(), 16);
    assert_eq!(decode_runs(&bytes, day).expect("decode"), runs);
    // Wrong day, truncated, overlapping or adjacent runs: corrupt.
    assert!(matches!(decode_runs(&bytes, day + 1), Err(Error::CorruptCoverage(_))));
    assert!(matches!(decode_runs(&bytes[..12], day), Err(Error::CorruptCoverage(_))));
    let adjacent = encode_runs(&[(MIDNIGHT, MIDNIGHT + 5), (MIDNIGHT + 5, MIDNIGHT + 6)]);
    assert!(matches!(decode_runs(&adjacent, day), Err(Error::CorruptCoverage(_))));
    assert!(matches!(decode_runs(&[], day), Err(Error::CorruptCoverage(_))));
}

#[test]
fn cover_across_midnight_and_query() {
    let (_d, map) = temp_map();
    map.set_partitions("decahose", 2).expect("set");
    let p = proof("decahose");
    // Partition 1 covers 23:58..00:02, partition 2 23:59..00:01:30.
    map.cover(&p, "decahose", 1, MIDNIGHT - 120..MIDNIGHT + 120).expect("cover");
    map.cover(&p, "decahose", 2, MIDNIGHT - 60..MIDNIGHT + 90).expect("cover");
    // Two day keys per partition, merged back into one run on read.
    assert_eq!(map.covered.len(), 4);
    assert_eq!(map.covered_ranges("decahose", 1, 0..MAX_SECS).expect("ranges"), vec![MIDNIGHT - 120..MIDNIGHT + 120]);
    let bitmap = map.covered("decahose", 2, MIDNIGHT..MIDNIGHT + 1000).expect("bitmap");
    assert_eq!(bitmap.len(), 90);
    assert_eq!(bitmap.min(), Some(MIDNIGHT as u32));
    assert_eq!(
        map.holes("decahose", MIDNIGHT - 300..MIDNIGHT + 300).expect("holes"),
        vec![MIDNIGHT - 300..MIDNIGHT - 60, MIDNIGHT + 90..MIDNIGHT + 300]
    );
    let (full, partial, none) = (Coverage::Full, Coverage::Partial, Coverage::None);
    assert_eq!(
        states(&map, "decahose", MIDNIGHT - 180, MIDNIGHT + 180),
        vec![(none, None), (partial, None), (full, None), (full, None), (partial, None), (none, None)]
    );
    // Covering what is covered changes nothing; adjacent runs merge.
    map.cover(&p, "decahose", 2, MIDNIGHT + 90..MIDNIGHT + 120).expect("cover");
    assert_eq!(map.covered_ranges("decahose", 2, 0..MAX_SECS).expect("ranges"), vec![MIDNIGHT - 60..MIDNIGHT + 120]);
}

#[test]
fn cover_demands_the_streams_own_proof() {
    let (_d, map) = temp_map();
    map.set_partitions("a", 1).expect("set");
    map.set_partitions("b", 1).expect("set");
    let err = map.cover(&proof("b"), "a", 1, 0..60).expect_err("another stream's proof");
    assert!(matches!(err, Error::WrongProof { .. }), "{err}");
    assert!(map.covered_ranges("a", 1, 0..MAX_SECS).expect("ranges").is_empty());
    // Unknown stream, partition out of range, bad seconds.
    assert!(matches!(map.cover(&proof("c"), "c", 1, 0..60), Err(Error::UnknownStream(_))));
    assert!(matches!(map.cover(&proof("a"), "a", 0, 0..60), Err(Error::BadPartition { .. })));
    assert!(matches!(map.cover(&proof("a"), "a", 2, 0..60), Err(Error::BadPartition { .. })));
    assert!(matches!(map.cover(&proof("a"), "a", 1, -1..60), Err(Error::OutOfRange(_))));
    assert!(matches!(map.cover(&proof("a"), "a", 1, Range { start: 60, end: 0 }), Err(Error::OutOfRange(_))));
    assert!(matches!(map.cover(&proof("a"), "a", 1, 0..MAX_SECS + 1), Err(Error::OutOfRange(_))));
    assert!(matches!(map.set_partitions("x\0y", 1), Err(Error::BadLabel(_))));
    assert!(matches!(map.set_partitions("", 1), Err(Error::BadLabel(_))));
    assert!(matches!(map.set_partitions("z", 0), Err(Error::BadPartition { .. })));
    // The last valid second.
    map.cover(&proof("a"), "a", 1, MAX_SECS - 1..MAX_SECS).expect("last second");
    assert_eq!(map.holes("a", MAX_SECS - 2..MAX_SECS).expect("holes"), vec![MAX_SECS - 2..MAX_SECS - 1]);
}

#[test]
fn labels_do_not_leak_into_each_other() {
    let (_d, map) = temp_map();
    map.set_partitions("ab", 1).expect("set");
    map.set_partitions("abc", 1).expect("set");
    map.cover(&proof("abc"), "abc", 1, 0..120).expect("cover");
    map.add_counts("abc", Minute(0), Counts { received: 1, stored: 1, ..Counts::default() }).expect("add");
    map.put_job(&JobRecord {
        id: 1,
        stream: "abc".into(),
        partition: None,
        start_secs: 0,
        end_secs: 60,
        resume_secs: 0,
        state: JobState::Running,
        attempts: 1,
    })
    .expect("job");
    assert_eq!(map.holes("ab", 0..120).expect("holes"), vec![0..120]);
    assert!(map.counts("ab", Minute(0)..Minute(2)).expect("counts").is_empty());
    assert!(map.jobs("ab").expect("jobs").is_empty());
    assert_eq!(map.streams().expect("streams"), vec!["ab".to_string(), "abc".to_string()]);
}

#[test]
fn uncover_removes_from_every_partition() {
    let (_d, map) = temp_map();
    map.set_partitions("f", 3).expect("set");
    for part in 1..=3 {
        map.cover(&proof("f"), "f", part, MIDNIGHT - 600..MIDNIGHT + 600).expect("cover");
    }
    assert_eq!(map.withdrawals(), 0);
    map.uncover("f", MIDNIGHT - 60..MIDNIGHT + 60).expect("uncover");
    assert_eq!(map.withdrawals(), 1, "a withdrawal is counted, for copiers that read coverage then data");
    for part in 1..=3 {
        assert_eq!(
            map.covered_ranges("f", part, 0..MAX_SECS).expect("ranges"),
            vec![MIDNIGHT - 600..MIDNIGHT - 60, MIDNIGHT + 60..MIDNIGHT + 600]
        );
    }
    // Uncovering a whole day's runs removes its key.
    map.uncover("f", MIDNIGHT - 600..MIDNIGHT).expect("uncover");
    assert_eq!(map.covered.len(), 3);
}

#[test]
fn overlays_and_their_precedence() {
    let (_d, map) = temp_map();
    map.set_partitions("s", 1).expect("set");
    let m0 = MIDNIGHT; // ten minutes from here
    map.cover(&proof("s"), "s", 1, m0..m0 + 60).expect("cover"); // minute 0 full
    map.cover(&proof("s"), "s", 1, m0 + 60..m0 + 90).expect("cover"); // minute 1 partial
    map.mark_lost("s", m0..m0 + 240).expect("lost"); // minutes 0..4 lost
    map.put_job(&JobRecord {
        id: map.new_job_id().expect("id"),
        stream: "s".into(),
        partition: Some(1),
        start_secs: m0,
        end_secs: m0 + 600,
        resume_secs: m0 + 180,
        state: JobState::Running,
        attempts: 1,
    })
    .expect("job"); // remaining: minutes 3..10
    map.put_job(&JobRecord {
        id: map.new_job_id().expect("id"),
        stream: "s".into(),
        partition: None,
        start_secs: m0 + 120,
        end_secs: m0 + 180,
        resume_secs: m0 + 120,
        state: JobState::Queued,
        attempts: 0,
    })
    .expect("job"); // queued: no overlay
    let now = m0 + 600;
    let got: Vec<_> = map
        .minute_states("s", Minute::of_secs(m0)..Minute::of_secs(m0 + 720), now, 150)
        .expect("states")
        .into_iter()
        .map(|r| (r.coverage, r.overlay))
        .collect();
    let (full, partial, none) = (Coverage::Full, Coverage::Partial, Coverage::None);
    let (lost, recovering, pending) = (Some(Overlay::Lost), Some(Overlay::Recovering), Some(Overlay::Pending));
    assert_eq!(
        got,
        vec![
            (full, None),       // full: no overlay, though marked lost
            (partial, lost),    // lost
            (none, lost),       // lost (the queued job does not count)
            (none, recovering), // recovering wins over lost
            (none, recovering),
            (none, recovering),
            (none, recovering),
            (none, recovering),
            (none, recovering), // minute 8 is pending too: recovering wins
            (none, recovering),
            (none, pending), // ends after now - 150, no job
            (none, pending),
        ]
    );
    assert_eq!(map.lost("s", 0..MAX_SECS).expect("lost"), vec![m0..m0 + 240]);
    // Minute 7 ends at now - 120 > now - 150: pending without the job.
    let r = map.minute_states("s", Minute::of_secs(m0 + 420)..Minute::of_secs(m0 + 480), now, 150);
    assert_eq!(r.expect("states")[0].overlay, recovering);
}

#[test]
fn counters_add_up() {
    let (_d, map) = temp_map();
    let m = Minute::of_secs(MIDNIGHT);
    let batch = Counts { received: 10, stored: 7, duplicates: 2, quarantined: 1 };
    map.add_counts("s", m, batch).expect("add");
    map.add_counts("s", m, batch).expect("add");
    map.add_counts("s", m.next().next(), Counts { received: 1, stored: 1, ..Counts::default() }).expect("add");
    let got = map.counts("s", m..Minute(m.0 + 10)).expect("counts");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], (m, Counts { received: 20, stored: 14, duplicates: 4, quarantined: 2 }));
    assert!(got[0].1.balanced() && got[1].1.balanced());
    assert_eq!(got[1].0, Minute(m.0 + 2));
    assert!(!Counts { received: 2, stored: 1, ..Counts::default() }.balanced());
    // The range is half-open.
    assert!(map.counts("s", m.next()..m.next().next()).expect("counts").is_empty());
    // minute_states carries them.
    map.set_partitions("s", 1).expect("set");
    let r = map.minute_states("s", m..Minute(m.0 + 3), 0, 0).expect("states");
    assert_eq!(r.iter().map(|r| r.counts.received).collect::<Vec<_>>(), vec![20, 0, 1]);
}

#[test]
fn jobs_round_trip() {
    let (_d, map) = temp_map();
    let a = map.new_job_id().expect("id");
    let b = map.new_job_id().expect("id");
    assert_ne!(a, b);
    let job = JobRecord {
        id: b,
        stream: "s".into(),
        partition: Some(2),
        start_secs: MIDNIGHT,
        end_secs: MIDNIGHT + 3600,
        resume_secs: MIDNIGHT + 60,
        state: JobState::Running,
        attempts: 3,
    };
    map.put_job(&job).expect("put");
    map.put_job(&JobRecord { id: a, state: JobState::Failed, ..job.clone() }).expect("put");
    let jobs = map.jobs("s").expect("jobs");
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1], job);
    assert_eq!(jobs[0].state, JobState::Failed);
    // Replacing, then removing.
    map.put_job(&JobRecord { resume_secs: MIDNIGHT + 120, ..job.clone() }).expect("put");
    assert_eq!(map.jobs("s").expect("jobs")[1].resume_secs, MIDNIGHT + 120);
    assert!(map.remove_job("s", a).expect("remove"));
    assert!(!map.remove_job("s", a).expect("remove"));
    assert_eq!(map.jobs("s").expect("jobs").len(), 1);
    // Progress outside the range is refused.
    let bad = JobRecord { resume_secs: MIDNIGHT - 1, ..job.clone() };
    assert!(matches!(map.put_job(&bad), Err(Error::BadRecord(_))));
    // The stored JSON is what the module docs promise.
    let raw = map.jobs.get(job_key("s", b)).expect("get").expect("present");
    let text = std::str::from_utf8(&raw).expect("utf8");
    assert!(text.contains("\"state\":\"running\""), "{text}");
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coverage");
    let job = JobRecord {
        id: 7,
        stream: "d".into(),
        partition: None,
        start_secs: MIDNIGHT,
        end_secs: MIDNIGHT + 60,
        resume_secs: MIDNIGHT,
        state: JobState::Queued,
        attempts: 0,
    };
    {
        let map = CoverageMap::open(&path).expect("open");
        map.set_partitions("d", 2).expect("set");
        map.cover(&proof("d"), "d", 1, MIDNIGHT..MIDNIGHT + 90).expect("cover");
        map.cover(&proof("d"), "d", 2, MIDNIGHT + 30..MIDNIGHT + 120).expect("cover");
        map.add_counts("d", Minute::of_secs(MIDNIGHT), Counts { received: 5, stored: 5, ..Counts::default() })
            .expect("add");
        map.put_job(&job).expect("job");
        map.mark_lost("d", MIDNIGHT + 600..MIDNIGHT + 660).expect("lost");
        // No explicit flush: cover flushes, and so does dropping sled.
    }
    let map = CoverageMap::open(&path).expect("reopen");
    assert_eq!(map.streams().expect("streams"), vec!["d".to_string()]);
    assert_eq!(map.partitions("d").expect("partitions"), Some(2));
    assert_eq!(
        map.holes("d", MIDNIGHT..MIDNIGHT + 180).expect("holes"),
        vec![MIDNIGHT..MIDNIGHT + 30, MIDNIGHT + 90..MIDNIGHT + 180]
    );
    assert_eq!(map.counts("d", Minute(0)..Minute(MAX_SECS / 60)).expect("counts")[0].1.received, 5);
    assert_eq!(map.jobs("d").expect("jobs"), vec![job]);
    assert_eq!(map.lost("d", 0..MAX_SECS).expect("lost"), vec![MIDNIGHT + 600..MIDNIGHT + 660]);
    // IDs never repeat across a restart.
    assert!(map.new_job_id().expect("id") > 0);
}

#[test]
fn a_store_open_elsewhere_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coverage");
    let held = CoverageMap::open(&path).expect("create");
    // sled's lock is per open file: a second open is refused like
    // another process's, after the short retry.
    assert!(matches!(CoverageMap::open_existing(&path), Err(Error::CoverageLocked { .. })));
    drop(held);
}

#[test]
fn open_checks_the_format_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coverage");
    assert!(matches!(CoverageMap::open_existing(&path), Err(Error::NotFound { .. })));
    drop(CoverageMap::open(&path).expect("create"));
    drop(CoverageMap::open_existing(&path).expect("existing"));
    {
        let db = sled::open(&path).expect("raw");
        let meta = db.open_tree("meta").expect("meta");
        assert_eq!(meta.get(FORMAT_KEY).expect("get").as_deref(), Some(&[0u8, 0, 0, 1][..]));
        meta.insert(FORMAT_KEY, &2u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let err = CoverageMap::open(&path).expect_err("version 2");
    assert!(matches!(err, Error::CorruptCoverage(_)), "{err}");
    {
        let db = sled::open(&path).expect("raw");
        db.open_tree("meta").expect("meta").remove(FORMAT_KEY).expect("remove");
        db.open_tree("streams").expect("streams").insert("x", "{\"partitions\":1}").expect("insert");
        db.flush().expect("flush");
    }
    let err = CoverageMap::open(&path).expect_err("data without version");
    assert!(matches!(err, Error::CorruptCoverage(_)), "{err}");
}

/// 5 days of 20 partitions, each with a hole every 10 minutes: the
/// queries of inspect-coverage stay in milliseconds (far less in release;
/// the bound here is loose for a shared machine and a debug build).
#[test]
fn five_days_of_twenty_partitions_is_fast() {
    let (_d, map) = temp_map();
    map.set_partitions("firehose", 20).expect("set");
    let from = MIDNIGHT - 5 * DAY;
    let mut batch = sled::Batch::default();
    for part in 1..=20u32 {
        let prefix = covered_prefix("firehose", part);
        for day in 0..5 {
            let start = from + day * DAY;
            let mut runs = complement(
                &(0..144)
                    .map(|i| (start + i * 600 + part as i64, start + i * 600 + 30 + part as i64))
                    .collect::<Vec<_>>(),
                (start, start + DAY),
            );
            normalize(&mut runs);
            batch.insert(day_key(&prefix, start / DAY), encode_runs(&runs));
        }
    }
    map.covered.apply_batch(batch).expect("batch");
    let t = Instant::now();
    let holes = map.holes("firehose", from..MIDNIGHT).expect("holes");
    let states =
        map.minute_states("firehose", Minute::of_secs(from)..Minute::of_secs(MIDNIGHT), MIDNIGHT, 0).expect("states");
    let took = t.elapsed();
    assert_eq!(holes.len(), 720);
    assert_eq!(states.len(), 7200);
    assert_eq!(states.iter().filter(|r| r.coverage == Coverage::Full).count(), 7200 - 720);
    eprintln!("holes + minute_states, 5 days x 20 partitions: {took:?}");
    assert!(took.as_millis() < 2000, "{took:?}");
}

mod model {
    use super::*;
    use proptest::prelude::*;

    const PARTS: u32 = 3;
    /// Eight minutes around a midnight, so that day chunks split and merge.
    const BASE: i64 = MIDNIGHT - 240;
    const SPAN: i64 = 480;

    #[derive(Clone, Debug)]
    enum Op {
        Cover(u32, i64, i64),
        Uncover(i64, i64),
        Lost(i64, i64),
    }

    fn range() -> impl Strategy<Value = (i64, i64)> {
        (0..SPAN, 0..130i64).prop_map(|(s, len)| (BASE + s, (BASE + s + len).min(BASE + SPAN)))
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1..=PARTS, range()).prop_map(|(p, (s, e))| Op::Cover(p, s, e)),
            2 => range().prop_map(|(s, e)| Op::Uncover(s, e)),
            1 => range().prop_map(|(s, e)| Op::Lost(s, e)),
        ]
    }

    /// Maximal runs of the seconds in `[from, to)` that satisfy `f`.
    fn runs_where(from: i64, to: i64, f: impl Fn(i64) -> bool) -> Vec<Range<i64>> {
        let mut out: Vec<Range<i64>> = Vec::new();
        for s in from..to {
            if f(s) {
                match out.last_mut() {
                    Some(r) if r.end == s => r.end = s + 1,
                    _ => out.push(s..s + 1),
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn states_and_holes_match_a_set_of_seconds(
            ops in prop::collection::vec(op(), 1..25),
            win in (0..SPAN, 0..SPAN + 120),
        ) {
            let (_d, map) = temp_map();
            map.set_partitions("m", PARTS).expect("set");
            let mut covered: BTreeSet<(u32, i64)> = BTreeSet::new();
            let mut lost: BTreeSet<i64> = BTreeSet::new();
            for op in &ops {
                match *op {
                    Op::Cover(p, s, e) => {
                        map.cover(&proof("m"), "m", p, s..e).expect("cover");
                        covered.extend((s..e).map(|x| (p, x)));
                    }
                    Op::Uncover(s, e) => {
                        map.uncover("m", s..e).expect("uncover");
                        covered.retain(|&(_, x)| !(s..e).contains(&x));
                    }
                    Op::Lost(s, e) => {
                        map.mark_lost("m", s..e).expect("lost");
                        lost.extend(s..e);
                    }
                }
            }
            let all = |x: i64| (1..=PARTS).all(|p| covered.contains(&(p, x)));
            // Holes over an arbitrary window (may start and end mid-minute).
            let (ws, we) = (BASE - 60 + win.0, BASE - 60 + win.0 + win.1);
            prop_assert_eq!(
                map.holes("m", ws..we).expect("holes"),
                runs_where(ws, we, |x| !all(x))
            );
            for p in 1..=PARTS {
                prop_assert_eq!(
                    map.covered_ranges("m", p, ws..we).expect("ranges"),
                    runs_where(ws, we, |x| covered.contains(&(p, x)))
                );
                let bitmap = map.covered("m", p, ws..we).expect("bitmap");
                let want: Vec<u32> = (ws..we).filter(|&x| covered.contains(&(p, x))).map(|x| x as u32).collect();
                prop_assert_eq!(bitmap.iter().collect::<Vec<_>>(), want);
            }
            prop_assert_eq!(
                map.lost("m", ws..we).expect("lost"),
                runs_where(ws, we, |x| lost.contains(&x))
            );
            // Minute states over the whole span and a minute either side.
            let (m0, m1) = (Minute::of_secs(BASE) .0 - 1, Minute::of_secs(BASE + SPAN).0 + 1);
            let reports = map.minute_states("m", Minute(m0)..Minute(m1), MAX_SECS, 0).expect("states");
            prop_assert_eq!(reports.len() as i64, m1 - m0);
            for r in reports {
                let secs = r.minute.start_secs()..r.minute.start_secs() + 60;
                let n = secs.clone().map(|x| (1..=PARTS).filter(|&p| covered.contains(&(p, x))).count()).sum::<usize>();
                let want = if n == 60 * PARTS as usize {
                    Coverage::Full
                } else if n > 0 {
                    Coverage::Partial
                } else {
                    Coverage::None
                };
                prop_assert_eq!(r.coverage, want, "minute {}", r.minute);
                let want_overlay = if want != Coverage::Full && secs.clone().any(|x| lost.contains(&x)) {
                    Some(Overlay::Lost)
                } else {
                    None
                };
                prop_assert_eq!(r.overlay, want_overlay, "minute {}", r.minute);
            }
        }
    }
}
