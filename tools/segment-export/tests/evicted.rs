//! `segment-export` on a data directory with minutes evicted to the bucket
//! (`[archive] local_max`): a range that touches one is refused (exit 66,
//! nothing written) with a message that says to read it with `--data
//! s3://...`, never exported as if those minutes were empty.

#[path = "../../inspect-coverage/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use common::*;

fn export(dir: &std::path::Path, from_min: i64, to_min: i64, more: &[&str]) -> Output {
    let (from, to, now) =
        (format!("@{}", BASE + from_min * 60), format!("@{}", BASE + to_min * 60), format!("@{}", BASE + 3600));
    let mut args = vec!["--data", dir.to_str().unwrap(), "--stream", "decahose", "--from", &from, "--to", &to];
    args.extend(["--now", &now, "--quiet"]);
    args.extend(more);
    Command::new(env!("CARGO_BIN_EXE_segment-export")).args(&args).output().expect("run segment-export")
}

#[test]
fn a_range_with_evicted_minutes_is_refused_not_exported_empty() {
    let dir = tempfile::tempdir().unwrap();
    build_complete(dir.path(), 10, 5);
    evict(dir.path(), "decahose", BASE + 3 * 60, false);
    evict(dir.path(), "decahose", BASE + 6 * 60, true);
    let outs = tempfile::tempdir().unwrap();
    let out_file = outs.path().join("x.ndjson");
    for (from, to, first) in [(0, 10, "2017-07-18T00:03"), (5, 8, "2017-07-18T00:06"), (3, 4, "2017-07-18T00:03")] {
        let out = export(dir.path(), from, to, &["--raw", "--out", out_file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(66), "{from}..{to}: {err}");
        assert!(err.contains("in the bucket only") && err.contains("--data s3://") && err.contains(first), "{err}");
        assert!(std::fs::read_dir(outs.path()).unwrap().next().is_none(), "nothing written: {from}..{to}");
    }
    // A partitioned dataset: refused before anything of it is touched.
    let root = outs.path().join("dataset");
    let out = export(dir.path(), 0, 60, &["--format", "parquet", "--partitioned", "--out", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(66), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!root.exists());
    // The other minutes export as before with --raw.
    let out = export(dir.path(), 0, 3, &["--raw"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 15);
    // Compliance (the default) needs every compliance event: without a
    // ledger they are read from all segments, so an evicted minute anywhere
    // refuses it, also for a range after the evicted minutes.
    let out = export(dir.path(), 7, 10, &[]);
    assert_eq!(out.status.code(), Some(66), "{}", String::from_utf8_lossy(&out.stderr));
    // With a ledger (the first stored compliance event makes one), the
    // range's own minutes decide.
    {
        let store =
            gapless_storage::store::Store::open(dir.path(), gapless_storage::store::StoreConfig::default()).unwrap();
        let mut w = store.stream("decahose").unwrap();
        let ms = (BASE + 9 * 60) * 1000;
        let line = format!(
            r#"{{"delete":{{"status":{{"id":1,"id_str":"1","user_id":2,"user_id_str":"2"}},"timestamp_ms":"{ms}"}}}}"#
        );
        w.ingest(line.as_bytes(), ms).unwrap();
        w.commit().unwrap();
    }
    let out = export(dir.path(), 0, 3, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 15);
    assert!(export(dir.path(), 7, 10, &["--compliance"]).status.success(), "the old flag still works");
}
