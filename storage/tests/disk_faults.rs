//! Faults of our own disk, injected through the store's filesystem trait
//! (`gapless_storage::io::FaultyFs`): a commit that meets one fails with a
//! clear error and no proof of durability, and loses nothing: once the
//! disk works again, every record accepted is stored exactly once.

use gapless_storage::io::{Fault, FaultyFs, Op, Rule};
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{segment_path, Outcome, Store, StoreConfig, StreamWriter};
use gapless_storage::Minute;

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

fn post(id: u64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{}},"text":"{}","timestamp_ms":"{}"}}"#,
        "z".repeat(100),
        T0 + id as i64 * 10
    )
}

fn stored(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = RangeReader::new(dir, "s", T0..T0 + 3_600_000)
        .flat_map(|b| b.unwrap().iter().map(|(_, b)| String::from_utf8(b.to_vec()).unwrap()).collect::<Vec<_>>())
        .collect();
    out.sort();
    out
}

fn ingest(w: &mut StreamWriter, ids: std::ops::Range<u64>) -> Vec<String> {
    ids.map(|i| {
        let l = post(i);
        assert!(matches!(w.ingest(l.as_bytes(), T0).unwrap(), Outcome::Stored { .. }));
        l
    })
    .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// After a failed fsync, Linux may drop the dirty pages and report success
/// the next time. The store must not trust the next fsync: it reopens and
/// re-verifies its files and writes the batch again.
#[test]
fn a_failed_fsync_is_never_retried_as_if_the_data_were_there() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let store = Store::open_with(dir.path(), StoreConfig::default(), fs.shared()).unwrap();
    let mut w = store.stream("s").unwrap();
    let mut all = ingest(&mut w, 0..50);
    w.commit().unwrap();
    let path = segment_path(w.dir(), Minute::of_ms(T0));
    let durable_len = std::fs::metadata(&path).unwrap().len();

    fs.fail(Rule { op: Op::Fsync, path_contains: ".seg".into(), skip: 0, times: Some(1), fault: Fault::Io });
    all.extend(ingest(&mut w, 50..100));
    let err = w.commit().expect_err("no proof after a failed fsync");
    assert!(err.to_string().contains("fsync segment"), "{err}");
    // The kernel dropped the pages of that write: the file is as it was.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(durable_len).unwrap();
    fs.heal();
    w.commit().expect("the disk works again");
    assert_eq!(stored(dir.path()), sorted(all.clone()), "every record once");
    // And the ID index still knows them all.
    for l in &all {
        assert!(matches!(w.ingest(l.as_bytes(), T0).unwrap(), Outcome::Duplicate { .. }));
    }
}

/// A full disk in the middle of a frame (a short write) leaves no partial
/// frame and loses nothing; the same for ENOSPC on the quarantine and EIO
/// on the segment.
#[test]
fn short_writes_and_full_disks_lose_nothing() {
    for (op, pattern, fault) in [
        (Op::Write, ".seg", Fault::ShortWrite),
        (Op::Write, ".seg", Fault::NoSpace),
        (Op::Write, "quarantine", Fault::NoSpace),
        (Op::Fsync, "quarantine", Fault::Io),
        (Op::Fsync, ".seg", Fault::Io),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        let store = Store::open_with(dir.path(), StoreConfig::default(), fs.shared()).unwrap();
        let mut w = store.stream("s").unwrap();
        let mut all = ingest(&mut w, 0..20);
        w.commit().unwrap();
        fs.fail(Rule::always(op, pattern, fault));
        all.extend(ingest(&mut w, 20..40));
        w.ingest(b"{not json", T0).unwrap();
        assert!(w.commit().is_err(), "{op:?} {pattern} {fault:?}");
        assert!(w.commit().is_err(), "{op:?} {pattern} {fault:?}: still failing");
        assert!(fs.injected() >= 2);
        fs.heal();
        w.commit().unwrap_or_else(|e| panic!("{op:?} {pattern} {fault:?}: {e}"));
        assert_eq!(stored(dir.path()), sorted(all), "{op:?} {pattern} {fault:?}");
    }
}

/// A new directory leaves the set of directories to fsync only once it
/// synced: a failed directory fsync is tried again at the next commit.
#[test]
fn a_directory_is_synced_until_it_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let store = Store::open_with(dir.path(), StoreConfig::default(), fs.shared()).unwrap();
    let mut w = store.stream("s").unwrap();
    fs.fail(Rule {
        op: Op::SyncDir,
        path_contains: "segments/2026-03-01".into(),
        skip: 0,
        times: Some(2),
        fault: Fault::Io,
    });
    let all = ingest(&mut w, 0..10);
    assert!(w.commit().is_err());
    assert!(w.commit().is_err(), "the day directory is fsynced again, and fails again");
    w.commit().unwrap();
    assert_eq!(fs.injected(), 2);
    assert_eq!(stored(dir.path()), sorted(all));
}

/// Stale temporary files of a crashed seal are removed when the segment is
/// opened again.
#[test]
fn a_stale_temporary_segment_is_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let all = ingest(&mut w, 0..10);
    w.commit().unwrap();
    let path = segment_path(w.dir(), Minute::of_ms(T0));
    drop(w);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, b"half a seal").unwrap();
    let mut w = store.stream("s").unwrap();
    let more = ingest(&mut w, 10..12);
    w.commit().unwrap();
    assert!(!std::path::Path::new(&tmp).exists());
    assert_eq!(stored(dir.path()), sorted([all, more].concat()));
}
