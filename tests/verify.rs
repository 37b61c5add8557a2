//! `gapless verify` finds a flipped bit in a payload, withdraws that
//! minute's coverage (so the archiver recovers it), keeps the other
//! minutes as they are, and says so with its exit status.

use gapless_storage::coverage::CoverageMap;
use gapless_storage::store::{segment_path, Store, StoreConfig};
use gapless_storage::Minute;

const T0: i64 = 1_772_366_400; // 2026-03-01T12:00:00Z

fn post(id: u64, secs: i64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{}},"text":"{}","timestamp_ms":"{}"}}"#,
        "v".repeat(300),
        secs * 1000
    )
}

fn gapless(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gapless")).args(args).output().unwrap()
}

#[test]
fn verify_withdraws_the_coverage_of_a_damaged_minute_only() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.coverage().set_partitions("decahose", 1).unwrap();
        let mut w = store.stream("decahose").unwrap();
        for i in 0..120 {
            w.ingest(post(1 + i as u64, T0 + i).as_bytes(), T0 * 1000).unwrap();
        }
        let (proof, _) = w.commit().unwrap();
        store.coverage().cover(&proof, "decahose", 1, T0..T0 + 120).unwrap();
    }
    let path = segment_path(&dir.path().join("streams/decahose"), Minute::of_secs(T0));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 50;
    bytes[at] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let data = dir.path().to_str().unwrap();
    let out = gapless(&["verify", "--data", data]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("decahose 20260301T1200Z: DAMAGED"), "{stdout}");
    assert!(!stdout.contains("20260301T1201Z"), "{stdout}");
    {
        let coverage = CoverageMap::open(&dir.path().join("coverage")).unwrap();
        assert_eq!(coverage.covered_ranges("decahose", 1, T0..T0 + 120).unwrap(), vec![T0 + 60..T0 + 120]);
    }
    let again = gapless(&["verify", "--data", data]);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stdout));

    // The archiver's lock is respected: verify writes.
    let _store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let locked = gapless(&["verify", "--data", data]);
    assert_ne!(locked.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("stop the archiver first"),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
}
