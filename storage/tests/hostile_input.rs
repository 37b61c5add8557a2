//! Input no real stream sends must be quarantined with a reason, and must
//! not harm what comes after it.

use gapless_storage::quarantine::read_entries;
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{Outcome, Store, StoreConfig};
use gapless_storage::Key;

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

fn post(id: u64, ts: i64) -> String {
    format!(r#"{{"id_str":"{id}","created_at":"x","user":{{}},"timestamp_ms":"{ts}"}}"#)
}

/// Reported: Posts whose `timestamp_ms` was in microseconds were stored
/// under the year 58643 and failed every later commit.
#[test]
fn implausible_times_are_quarantined_and_later_commits_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let bad = [post(1, T0 * 1000), post(2, 1_000), post(3, T0 + 2 * 86_400_000)];
    for line in &bad {
        let outcome = w.ingest(line.as_bytes(), T0).unwrap();
        assert!(
            matches!(outcome, Outcome::Quarantined { ref reason } if reason.contains("implausible activity time")),
            "{outcome:?}"
        );
    }
    w.commit().unwrap();
    for i in 0..10u64 {
        assert!(matches!(
            w.ingest(post(100 + i, T0 + i as i64 * 1000).as_bytes(), T0).unwrap(),
            Outcome::Stored { .. }
        ));
        w.commit().unwrap();
    }
    let stored: Vec<Key> = RangeReader::new(dir.path(), "s", 0..i64::MAX)
        .flat_map(|b| b.unwrap().iter().map(|(e, _)| e.key).collect::<Vec<_>>())
        .collect();
    assert_eq!(stored, (100..110).map(Key::Post).collect::<Vec<_>>());
    let q = read_entries(&dir.path().join("streams/s/quarantine.log")).unwrap();
    assert_eq!(
        q.iter().map(|e| e.line.clone()).collect::<Vec<_>>(),
        bad.iter().map(|l| l.as_bytes().to_vec()).collect::<Vec<_>>()
    );
}
