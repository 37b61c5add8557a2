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

/// Reported: a 200 MB line without a newline was kept whole in the
/// quarantine file. The quarantine keeps a bounded prefix with the true
/// length, and the file has a size cap per stream; what it does not keep
/// is still counted.
#[test]
fn the_quarantine_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { quarantine_max_bytes: 256 << 10, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    let mut w = store.stream("s").unwrap();
    let long = vec![b'x'; 3 << 20];
    assert!(matches!(w.ingest(&long, T0).unwrap(), Outcome::Quarantined { .. }));
    for i in 0..2000 {
        w.ingest(format!("{{not json {i} {}", "y".repeat(500)).as_bytes(), T0).unwrap();
    }
    w.commit().unwrap();
    let path = dir.path().join("streams/s/quarantine.log");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size <= 256 << 10, "capped: {size}");
    let q = read_entries(&path).unwrap();
    assert_eq!(q[0].line.len(), gapless_storage::quarantine::MAX_KEPT_LINE);
    assert!(q[0].reason.contains(&format!("of {} bytes", 3 << 20)), "{}", q[0].reason);
    assert_eq!(q.len() as u64 + w.quarantine_not_kept(), 2001);
    assert!(w.quarantine_not_kept() > 1000);
    let counts = store
        .coverage()
        .counts("s", gapless_storage::Minute::of_ms(T0)..gapless_storage::Minute::of_ms(T0).next())
        .unwrap();
    assert_eq!(counts.iter().map(|(_, c)| c.quarantined).sum::<u64>(), 2001, "every rejected line is counted");
}
