//! Purge: deleted content leaves the segment files, atomically, and a copy
//! delivered again (Backfill, Recovery) is a duplicate, not a return.

use std::collections::HashSet;
use std::sync::Arc;

use gapless_storage::compliance::{self, purge, Policy};
use gapless_storage::reader::{for_each_record, RangeReader};
use gapless_storage::store::{segment_path, Outcome, SealOutcome, Store, StoreConfig, StreamWriter};
use gapless_storage::{dict::Dictionaries, io::StdFs, layout, Minute};

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z
const DAY: i64 = 86_400_000;

fn post(id: u64, user: u64, ms: i64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{"id_str":"{user}"}},"text":"private words of {user} number {id}","place":{{"name":"Oslo"}},"timestamp_ms":"{ms}"}}"#
    )
}

fn user_event(name: &str, user: u64, ms: i64) -> String {
    format!(r#"{{"{name}":{{"id":{user},"id_str":"{user}","timestamp_ms":"{ms}"}}}}"#)
}

/// Every record's bytes in the stream's segment files, decompressed.
fn on_disk(w: &StreamWriter) -> String {
    let mut out = String::new();
    let mut dicts = Dictionaries::new(&layout::dict_dir(w.dir()));
    for m in layout::minutes_with_segments(w.dir(), Minute::of_ms(T0), Minute::of_ms(T0 + DAY)).unwrap() {
        for_each_record(&StdFs, &segment_path(w.dir(), m), &mut dicts, |_, b| {
            out.push_str(std::str::from_utf8(b).unwrap());
            out.push('\n');
        })
        .unwrap();
    }
    out
}

/// Purges every minute with segments and waits for the outcomes.
fn purge_all(w: &mut StreamWriter, policy: Policy) -> (usize, usize) {
    let policy = Arc::new(policy);
    let minutes = layout::minutes_with_segments(w.dir(), Minute::of_ms(T0), Minute::of_ms(T0 + DAY)).unwrap();
    let mut asked: HashSet<Minute> = HashSet::new();
    for m in &minutes {
        assert!(w.purge_in_background(*m, policy.clone()).unwrap());
        asked.insert(*m);
    }
    let (mut purged, mut scrubbed) = (0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !asked.is_empty() {
        assert!(std::time::Instant::now() < deadline, "purges did not finish");
        for (m, outcome) in w.finished_seals() {
            match outcome {
                SealOutcome::Sealed(s) => {
                    purged += s.purged;
                    scrubbed += s.scrubbed;
                }
                SealOutcome::NothingToDo => {}
                other => panic!("{m}: {other:?}"),
            }
            asked.remove(&m);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (purged, scrubbed)
}

#[test]
fn a_purge_removes_the_bytes_keeps_the_keys_and_leaves_coverage_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.coverage().set_partitions("s", 1).unwrap();
    let mut w = store.stream("s").unwrap();
    let posts: Vec<String> = (0..30u64).map(|i| post(1000 + i, i % 3 + 1, T0 + i as i64 * 7_000)).collect();
    for p in &posts {
        w.ingest(p.as_bytes(), T0).unwrap();
    }
    let events = [
        user_event("user_delete", 1, T0 + 300_000),
        format!(
            r#"{{"delete":{{"status":{{"id":1001,"id_str":"1001","user_id":2,"user_id_str":"2"}},"timestamp_ms":"{}"}}}}"#,
            T0 + 300_001
        ),
        format!(
            r#"{{"scrub_geo":{{"user_id":3,"user_id_str":"3","up_to_status_id":1010,"up_to_status_id_str":"1010","timestamp_ms":"{}"}}}}"#,
            T0 + 300_002
        ),
    ];
    for e in &events {
        w.ingest(e.as_bytes(), T0).unwrap();
    }
    let (proof, _) = w.commit().unwrap();
    store.coverage().cover(&proof, "s", 1, (T0 / 1000)..(T0 / 1000 + 600)).unwrap();
    let covered_before = store.coverage().covered("s", 1, (T0 / 1000)..(T0 / 1000 + 600)).unwrap();
    assert!(on_disk(&w).contains("private words of 1 number 1000"));

    // Not yet due: nothing to purge.
    let ledger = compliance::load(w.dir()).unwrap().events;
    let current = Policy::of(&ledger);
    assert!(purge::due(&ledger, &current, &HashSet::new(), T0 + 300_000 + DAY - 1, DAY).is_empty());
    let due = purge::due(&ledger, &current, &HashSet::new(), T0 + 300_002 + DAY, DAY);
    assert_eq!(due.len(), 3);
    let (purged, scrubbed) = purge_all(&mut w, Policy::of(&due));
    assert_eq!(
        (purged, scrubbed),
        (11, 3),
        "10 Posts of user 1 and Post 1001; Posts 1002, 1005 and 1008 of user 3 scrubbed"
    );

    let disk = on_disk(&w);
    assert!(!disk.contains("private words of 1 "), "user 1's text is gone from the files");
    assert!(!disk.contains("number 1001\""), "the deleted Post is gone");
    assert_eq!(disk.matches(r#""place":null"#).count(), 3, "geo scrubbed up to the ID only");
    assert!(disk.contains("private words of 3 number 1029"));
    // Coverage unchanged.
    assert_eq!(store.coverage().covered("s", 1, (T0 / 1000)..(T0 / 1000 + 600)).unwrap(), covered_before);
    // The events themselves stay (the ledger and the compliance records).
    assert_eq!(compliance::load(w.dir()).unwrap().events.len(), 3);

    // Recovery brings the purged Posts again: duplicates, from memory and
    // from disk (a fresh writer reads the keys back).
    assert!(matches!(w.ingest(posts[0].as_bytes(), T0).unwrap(), Outcome::Duplicate { .. }));
    drop(w);
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    for p in &posts {
        let outcome = w.ingest(p.as_bytes(), T0).unwrap();
        assert!(matches!(outcome, Outcome::Duplicate { .. }), "{outcome:?}");
    }
    w.commit().unwrap();
    let stored: usize = RangeReader::new(dir.path(), "s", T0..T0 + DAY).map(|b| b.unwrap().len()).sum();
    assert_eq!(stored, 30 - 11 + events.len());
}
