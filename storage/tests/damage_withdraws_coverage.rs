//! Damage on disk never leaves a `full` minute behind: a segment that does
//! not verify has its minute's coverage withdrawn (durably, before a byte
//! of it is changed), its damaged bytes moved aside, and its lost keys
//! forgotten, so that the copies Recovery brings are stored, not dropped
//! as duplicates.
//!
//! Reported: three segment files of full minutes damaged on disk (a
//! flipped byte, cut to half, cut to zero bytes) stayed `full` after the
//! archiver ran again, and their Posts differed from the truth.

use gapless_storage::coverage::CoverageMap;
use gapless_storage::io::StdFs;
use gapless_storage::reader::RangeReader;
use gapless_storage::segment::SegmentWriter;
use gapless_storage::store::{segment_path, Depth, Outcome, Repaired, Store, StoreConfig, StreamWriter};
use gapless_storage::Minute;

const T0: i64 = 1_772_366_400; // 2026-03-01T12:00:00Z
const M: Minute = Minute(T0 / 60);

fn post(id: u64, secs: i64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{}},"text":"{}","timestamp_ms":"{}"}}"#,
        "w".repeat(200),
        secs * 1000
    )
}

/// Minute M holds Posts 1..=60, sealed into one frame, and is covered.
fn full_minute(dir: &std::path::Path) -> Vec<String> {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    store.coverage().set_partitions("s", 1).unwrap();
    let mut w = store.stream("s").unwrap();
    let lines: Vec<String> = (1..=60).map(|i| post(i, T0 + i as i64 - 1)).collect();
    for chunk in lines.chunks(20) {
        for l in chunk {
            w.ingest(l.as_bytes(), T0 * 1000).unwrap();
        }
        let (proof, _) = w.commit().unwrap();
        store.coverage().cover(&proof, "s", 1, T0..T0 + 60).unwrap();
    }
    assert!(w.seal(M).unwrap().is_some());
    lines
}

fn covered(c: &CoverageMap) -> Vec<std::ops::Range<i64>> {
    c.covered_ranges("s", 1, T0..T0 + 60).unwrap()
}

fn stored(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = RangeReader::new(dir, "s", T0 * 1000..(T0 + 60) * 1000)
        .flat_map(|b| b.unwrap().iter().map(|(_, bytes)| bytes.to_vec()).collect::<Vec<_>>())
        .collect();
    out.sort();
    out
}

fn damage(path: &std::path::Path, how: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    match how {
        "flip" => {
            let at = bytes.len() - 100; // inside the payload
            bytes[at] ^= 0x40;
        }
        "half" => bytes.truncate(bytes.len() / 2),
        "zero" => bytes.clear(),
        "magic" => bytes[0] ^= 0xff,
        _ => unreachable!(),
    }
    std::fs::write(path, bytes).unwrap();
}

/// Delivers every line again (as Recovery would), commits and covers.
fn redeliver(store: &Store, w: &mut StreamWriter, lines: &[String]) -> usize {
    let mut new = 0;
    for l in lines {
        if let Outcome::Stored { .. } = w.ingest(l.as_bytes(), T0 * 1000).unwrap() {
            new += 1;
        }
    }
    let (proof, _) = w.commit().unwrap();
    store.coverage().cover(&proof, "s", 1, T0..T0 + 60).unwrap();
    new
}

#[test]
fn a_damaged_full_minute_is_withdrawn_then_recovered_exactly() {
    for how in ["flip", "half", "zero", "magic"] {
        let dir = tempfile::tempdir().unwrap();
        let lines = full_minute(dir.path());
        let path = segment_path(&dir.path().join("streams/s"), M);
        damage(&path, how);
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(covered(store.coverage()), vec![T0..T0 + 60], "{how}: covered before the check");
        let mut w = store.stream("s").unwrap();
        let depth = if how == "flip" { Depth::Checksums } else { Depth::Structure };
        let findings = w.verify(M..M.next(), depth).unwrap();
        assert_eq!(findings.len(), 1, "{how}: {findings:?}");
        assert_eq!(findings[0].outcome, Repaired::Yes, "{how}");
        assert!(covered(store.coverage()).is_empty(), "{how}: the damaged minute is a hole");
        assert!(w.verify(M..M.next(), Depth::Checksums).unwrap().is_empty(), "{how}: repaired");
        if how != "zero" {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".damaged");
            assert!(std::path::Path::new(&aside).exists(), "{how}: damaged bytes kept");
        }
        // Recovery brings every Post again: the lost ones are stored (not
        // dropped as duplicates), the kept ones are duplicates, and the
        // archive equals the truth byte for byte.
        let new = redeliver(&store, &mut w, &lines);
        // A damaged file header costs no frame: every Post is still there.
        let lost = if how == "magic" { 0..=0 } else { 1..=60 };
        assert!(lost.contains(&new), "{how}: {new}");
        let mut want: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        want.sort();
        assert_eq!(stored(dir.path()), want, "{how}");
        assert_eq!(covered(store.coverage()), vec![T0..T0 + 60]);
    }
}

/// The ID index loaded from a segment whose payload is damaged must not
/// hold the keys of the damaged frame: without a verify, the copies that
/// come again are stored, and the segment is repaired at that commit.
#[test]
fn keys_of_a_damaged_payload_are_not_taken_for_stored() {
    let dir = tempfile::tempdir().unwrap();
    let lines = full_minute(dir.path());
    damage(&segment_path(&dir.path().join("streams/s"), M), "flip");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let first = w.ingest(lines[0].as_bytes(), T0 * 1000).unwrap();
    assert!(matches!(first, Outcome::Stored { .. }), "{first:?}");
    w.commit().unwrap();
    assert_eq!(w.take_damaged_minutes(), vec![M]);
    assert!(covered(store.coverage()).is_empty(), "repair withdrew the minute");
    assert_eq!(redeliver(&store, &mut w, &lines), 59);
    let mut want: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(stored(dir.path()), want);
    assert!(matches!(w.ingest(lines[5].as_bytes(), T0 * 1000).unwrap(), Outcome::Duplicate { .. }));
}

/// Coverage is withdrawn before any byte is changed: if withdrawing fails,
/// the segment is left exactly as it was.
#[test]
fn a_repair_changes_nothing_until_coverage_is_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    full_minute(dir.path());
    let path = segment_path(&dir.path().join("streams/s"), M);
    for how in ["half", "magic", "flip"] {
        damage(&path, how);
        let before = std::fs::read(&path).unwrap();
        let err =
            SegmentWriter::open(&StdFs, &path, M, |_| Err(gapless_storage::Error::BadRecord("refused".into()))).err();
        assert!(err.is_some(), "{how}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "{how}: untouched");
        let mut aside = path.as_os_str().to_owned();
        aside.push(".damaged");
        assert!(!std::path::Path::new(&aside).exists(), "{how}: nothing moved aside yet");
        if how == "half" {
            // Put a good segment back for the next case.
            std::fs::remove_file(&path).unwrap();
            full_minute(dir.path());
        }
    }
}
