//! What the store promises, checked against a simple model: every
//! activity offered is stored exactly once (whatever the duplicates,
//! commits and restarts), read back in time order, and counted.

use std::collections::BTreeMap;

use gapless_storage::quarantine::read_entries;
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{Outcome, Store, StoreConfig};
use gapless_storage::{Key, Minute, Snowflake};
use proptest::prelude::*;

const T0: i64 = 1_764_000_000_000; // a minute boundary

fn post(id: u64, ms: i64) -> String {
    format!(
        r#"{{"created_at":"x","id":{id},"id_str":"{id}","text":"hello {id}","user":{{"id":1,"id_str":"1"}},"timestamp_ms":"{ms}"}}"#
    )
}

fn delete(id: u64, ms: i64) -> String {
    format!(
        r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":3,"user_id_str":"3"}},"timestamp_ms":"{ms}"}}}}"#
    )
}

#[derive(Debug, Clone)]
enum Op {
    Post { ms: i64, machine: u16, seq: u16 },
    Delete { ms: i64, id: u64 },
    Commit,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0i64..180_000, 0u16..3, 0u16..70).prop_map(|(ms, machine, seq)| Op::Post { ms, machine, seq }),
        1 => (0i64..180_000, 1u64..20).prop_map(|(ms, id)| Op::Delete { ms, id }),
        1 => Just(Op::Commit),
        1 => Just(Op::Restart),
    ]
}

fn read_all(root: &std::path::Path) -> Vec<(i64, Key, Vec<u8>)> {
    let mut out = Vec::new();
    for batch in RangeReader::new(root, "s", T0 - 60_000..T0 + 240_000) {
        for (e, b) in batch.unwrap().iter() {
            out.push((e.time_ms, e.key, b.to_vec()));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_activity_is_stored_exactly_once(ops in prop::collection::vec(op(), 1..150)) {
        let dir = tempfile::tempdir().unwrap();
        // Dedup is per minute of activity time: the model is keyed the same way.
        let mut model: BTreeMap<(i64, Key), (i64, String)> = BTreeMap::new();
        // What was accepted since the last commit: a restart may lose it,
        // and nothing else (the model never reads its expectation back).
        let mut uncommitted: std::collections::BTreeSet<(i64, Key)> = Default::default();
        let mut store = Some(Store::open(dir.path(), StoreConfig::default()).unwrap());
        let mut w = store.as_ref().unwrap().stream("s").unwrap();
        for op in ops {
            match op {
                Op::Post { ms, machine, seq } => {
                    let ms = T0 + ms;
                    let id = Snowflake { time_ms: ms, machine, sequence: seq }.to_id();
                    let line = post(id, ms);
                    let k = (ms.div_euclid(60_000), Key::Post(id));
                    let fresh = !model.contains_key(&k);
                    let outcome = w.ingest(line.as_bytes(), ms).unwrap();
                    prop_assert_eq!(matches!(outcome, Outcome::Stored { .. }), fresh, "{:?}", outcome);
                    if fresh {
                        uncommitted.insert(k);
                    }
                    model.entry(k).or_insert((ms, line));
                }
                Op::Delete { ms, id } => {
                    let ms = T0 + ms;
                    let line = delete(id, ms);
                    // A delete's key is the deleted Post's ID: a second
                    // delete of it in the same minute is a duplicate.
                    let k = (ms.div_euclid(60_000), Key::PostDelete(id));
                    let fresh = !model.contains_key(&k);
                    let outcome = w.ingest(line.as_bytes(), ms).unwrap();
                    prop_assert_eq!(matches!(outcome, Outcome::Stored { .. }), fresh, "{:?}", outcome);
                    if fresh {
                        uncommitted.insert(k);
                    }
                    model.entry(k).or_insert((ms, line));
                }
                Op::Commit => {
                    w.commit().unwrap();
                    uncommitted.clear();
                }
                Op::Restart => {
                    // Uncommitted records are lost with the process, as in
                    // a crash: drop them from the model too.
                    prop_assert_eq!(w.pending_records(), uncommitted.len());
                    drop(w);
                    drop(store.take());
                    model.retain(|k, _| !uncommitted.contains(k));
                    uncommitted.clear();
                    let stored: std::collections::HashSet<(i64, Key)> =
                        read_all(dir.path()).into_iter().map(|r| (r.0.div_euclid(60_000), r.1)).collect();
                    for k in model.keys() {
                        prop_assert!(stored.contains(k), "committed {:?} survives a restart", k);
                    }
                    store = Some(Store::open(dir.path(), StoreConfig::default()).unwrap_or_else(|e| panic!("reopen: {e:?}")));
                    w = store.as_ref().unwrap().stream("s").unwrap();
                }
            }
        }
        w.commit().unwrap();
        let got = read_all(dir.path());
        // In time order, minute by minute.
        prop_assert!(got.windows(2).all(|p| (p[0].0, p[0].1) <= (p[1].0, p[1].1)));
        // Exactly the model: nothing lost, nothing twice, bytes as given.
        let mut expect: Vec<(i64, Key, Vec<u8>)> = model.into_iter().map(|((_, k), (ms, l))| (ms, k, l.into_bytes())).collect();
        expect.sort();
        prop_assert_eq!(got, expect);
    }
}

#[test]
fn counters_balance_and_bad_lines_are_kept_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let id = Snowflake { time_ms: T0 + 5, machine: 1, sequence: 0 }.to_id();
    let lines: Vec<Vec<u8>> = vec![
        post(id, T0 + 5).into_bytes(),
        post(id, T0 + 5).into_bytes(),
        b"{not json".to_vec(),
        vec![b'{', 0xff, 0xfe, b'}'],
        br#"{"brand_new_kind":{"x":1}}"#.to_vec(),
        b"".to_vec(),
        br#"{"info":{"message":"Recovery Request Completed","sent":"2025-11-24T16:00:00Z","activity_count":1}}"#
            .to_vec(),
    ];
    let outcomes: Vec<Outcome> = lines.iter().map(|l| w.ingest(l, T0 + 10).unwrap()).collect();
    assert!(matches!(outcomes[0], Outcome::Stored { .. }));
    assert!(matches!(outcomes[1], Outcome::Duplicate { .. }));
    assert!(outcomes[2..5].iter().all(|o| matches!(o, Outcome::Quarantined { .. })));
    assert!(matches!(outcomes[5], Outcome::Heartbeat));
    assert!(matches!(&outcomes[6], Outcome::System(m) if m.is_recovery_completed()));
    w.commit().unwrap();

    let q = read_entries(&w.dir().join("quarantine.log")).unwrap();
    assert_eq!(q.iter().map(|e| e.line.clone()).collect::<Vec<_>>(), lines[2..5].to_vec());
    assert!(q[0].reason.contains("not JSON"), "{}", q[0].reason);
    assert!(q[1].reason.contains("UTF-8"), "{}", q[1].reason);
    assert!(q[2].reason.contains("brand_new_kind"), "{}", q[2].reason);

    let counts = store.coverage().counts("s", Minute::of_ms(T0)..Minute::of_ms(T0).next()).unwrap();
    let c = counts.iter().map(|(_, c)| *c).fold(Default::default(), |a: gapless_storage::coverage::Counts, b| a + b);
    assert_eq!((c.received, c.stored, c.duplicates, c.quarantined), (5, 1, 1, 3));
    assert!(c.balanced());
}

#[test]
fn identical_compliance_lines_are_one_activity_and_different_ones_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let a = format!(
        r#"{{"scrub_geo":{{"user_id":1,"user_id_str":"1","up_to_status_id":5,"up_to_status_id_str":"5","timestamp_ms":"{}"}}}}"#,
        T0 + 1
    );
    let b = format!(
        r#"{{"scrub_geo":{{"user_id":2,"user_id_str":"2","up_to_status_id":5,"up_to_status_id_str":"5","timestamp_ms":"{}"}}}}"#,
        T0 + 1
    );
    assert!(matches!(w.ingest(a.as_bytes(), T0).unwrap(), Outcome::Stored { .. }));
    w.commit().unwrap();
    // Committed: the byte comparison reads the segment.
    assert!(matches!(w.ingest(a.as_bytes(), T0).unwrap(), Outcome::Duplicate { .. }));
    assert!(matches!(w.ingest(b.as_bytes(), T0).unwrap(), Outcome::Stored { .. }));
    assert!(matches!(w.ingest(b.as_bytes(), T0).unwrap(), Outcome::Duplicate { .. }));
    w.commit().unwrap();
    assert_eq!(read_all(dir.path()).len(), 2);
}

#[test]
fn a_second_writer_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).err().expect("second open must fail");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn coverage_needs_a_commit_of_the_same_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut a = store.stream("a").unwrap();
    let _b = store.stream("b").unwrap();
    let cov = store.coverage();
    cov.set_partitions("a", 1).unwrap();
    cov.set_partitions("b", 1).unwrap();
    let (proof, _) = a.commit().unwrap();
    let secs = T0 / 1000..T0 / 1000 + 60;
    assert!(cov.cover(&proof, "b", 1, secs.clone()).is_err(), "a proof of stream a covers nothing of b");
    cov.cover(&proof, "a", 1, secs.clone()).unwrap();
    assert!(cov.holes("a", secs.clone()).unwrap().is_empty());
    assert_eq!(cov.holes("b", secs.clone()).unwrap(), vec![secs]);
}
