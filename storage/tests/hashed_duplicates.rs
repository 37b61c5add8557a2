//! Activities keyed by a hash of their bytes (compliance messages): a copy
//! is told from a collision by its exact bytes, and the segment is read for
//! that at most once per resident minute, however many copies come (a
//! connection that re-reads a burst sends thousands).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gapless_storage::io::{FileHandle, Filesystem, Mode, StdFs};
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{Outcome, Store, StoreConfig};

const T0: i64 = 1_700_000_040_000;

/// The real filesystem, counting the opens of segment files for reading.
#[derive(Debug, Default)]
struct CountingFs {
    segment_reads: AtomicU64,
}

impl Filesystem for CountingFs {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FileHandle>> {
        if mode == Mode::Read && path.extension().is_some_and(|e| e == "seg") {
            self.segment_reads.fetch_add(1, Ordering::Relaxed);
        }
        StdFs.open(path, mode)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
}

fn scrub_geo(user: u64, ms: i64) -> String {
    format!(
        r#"{{"scrub_geo":{{"user_id":{user},"user_id_str":"{user}","up_to_status_id":5,"up_to_status_id_str":"5","timestamp_ms":"{ms}"}}}}"#
    )
}

#[test]
fn copies_of_hashed_key_activities_read_their_segment_once() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..200).map(|i| scrub_geo(i, T0 + i as i64 * 100)).collect();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let mut w = store.stream("s").unwrap();
        for l in &lines {
            assert!(matches!(w.ingest(l.as_bytes(), T0).unwrap(), Outcome::Stored { .. }));
        }
        w.commit().unwrap();
    }
    // A new process: the minute's keys come from the segment; its bytes
    // are read once, when the first copy needs them.
    let fs = Arc::new(CountingFs::default());
    let store = Store::open_with(dir.path(), StoreConfig::default(), fs.clone()).unwrap();
    let mut w = store.stream("s").unwrap();
    let before = fs.segment_reads.load(Ordering::Relaxed);
    for round in 0..5 {
        for l in &lines {
            let outcome = w.ingest(l.as_bytes(), T0).unwrap();
            assert!(matches!(outcome, Outcome::Duplicate { .. }), "round {round}: {outcome:?}");
        }
        w.commit().unwrap();
    }
    let reads = fs.segment_reads.load(Ordering::Relaxed) - before;
    // Once for the minute's keys, once for its hashed-key bytes.
    assert!(reads <= 2, "1,000 copies read the segment {reads} times");
    // New activities of the minute are stored, and their copies known
    // without the segment too.
    let fresh = scrub_geo(1000, T0 + 30_000);
    assert!(matches!(w.ingest(fresh.as_bytes(), T0).unwrap(), Outcome::Stored { .. }));
    w.commit().unwrap();
    let after_commit = fs.segment_reads.load(Ordering::Relaxed);
    assert!(matches!(w.ingest(fresh.as_bytes(), T0).unwrap(), Outcome::Duplicate { .. }));
    assert_eq!(fs.segment_reads.load(Ordering::Relaxed), after_commit, "a copy of a new activity reads nothing");
    // A different activity under the same hashed key (a collision) would be
    // kept: bytes decide, not the key (see `same_bytes_stored`).
    drop(w);
    drop(store);
    // Each activity once, with its bytes.
    let mut stored: Vec<Vec<u8>> = RangeReader::new(dir.path(), "s", T0..T0 + 60_000)
        .flat_map(|b| b.unwrap().iter().map(|(_, b)| b.to_vec()).collect::<Vec<_>>())
        .collect();
    stored.sort();
    let mut want: Vec<Vec<u8>> = lines.iter().chain([&fresh]).map(|l| l.as_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(stored, want);
}
