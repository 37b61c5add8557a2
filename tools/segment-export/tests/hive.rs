//! `--format parquet --partitioned`: a Hive-partitioned dataset, to a
//! bucket (moto, started by the test; skipped when moto is not installed,
//! unless GAPLESS_REQUIRE_S3=1) and to a local directory, read back by
//! pyarrow's dataset reader (skipped without pyarrow unless
//! SEGMENT_EXPORT_REQUIRE_PYTHON=1): the rows of the unpartitioned export,
//! each in its hour; a re-run replaces the range's partitions.

#[path = "../../inspect-coverage/tests/common/bucket.rs"]
mod bucket;
#[path = "../../inspect-coverage/tests/common/mod.rs"]
mod common;
mod run;

use std::path::Path;
use std::process::Command;

use bucket::*;
use common::*;
use run::*;
use serde_json::Value;

/// `--stream decahose`, hours `from..to` from BASE (midnight), judged after the archive.
fn range(data: &str, from: i64, to: i64, more: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        ["--data", data, "--stream", "decahose", "--quiet"].iter().map(|s| s.to_string()).collect();
    for (flag, secs) in [("--from", BASE + from * 3600), ("--to", BASE + to * 3600), ("--now", BASE + 5 * 3600)] {
        a.extend([flag.to_string(), format!("@{secs}")]);
    }
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

/// Minutes -30..90 from midnight, 8 Posts each: 240 rows in hour 23 of the
/// day before, 480 in hour 00, 240 in hour 01.
fn archive() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_part(dir.path(), -30..90, 8, std::slice::from_ref(&(-1800..5400)));
    dir
}

const PER_HOUR: &str = r#"{"2017-07-17/23": 240, "2017-07-18/00": 480, "2017-07-18/01": 240}"#;

/// Whether python3 can import pyarrow; panics when it cannot and it must.
fn has_pyarrow() -> bool {
    let required = std::env::var_os("SEGMENT_EXPORT_REQUIRE_PYTHON").is_some_and(|v| v == "1");
    let has = Command::new("python3")
        .args(["-c", "import pyarrow.dataset, pyarrow.fs"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(!required, "SEGMENT_EXPORT_REQUIRE_PYTHON=1 but python3 cannot import pyarrow");
        eprintln!("skipped: python3 with pyarrow not found");
    }
    has
}

/// pyarrow reads `dataset` (BUCKET/PREFIX or a directory) as the rows of `flat`.
fn pyarrow_reads(dataset: &str, flat: &Path, hour: u32, per_hour: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_hive.py");
    let out = Command::new("python3")
        .args([script, dataset, flat.to_str().unwrap(), &hour.to_string(), per_hour])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(SECRET_ACCESS_KEY));
    eprintln!("{text}");
}

fn rows_of(manifest: &Value) -> Vec<(String, u64, bool)> {
    manifest["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["rows"].as_u64().unwrap(),
                !p["files"].as_array().unwrap().is_empty(),
            )
        })
        .collect()
}

#[test]
fn a_partitioned_dataset_in_a_bucket_is_read_by_pyarrow_over_s3() {
    let Some(url) = fresh_bucket("se-hive") else { return };
    let all = archive();
    upload(&url, "east", all.path(), "decahose");
    let dataset = url.replace("/archive", "/dataset");
    let outs = tempfile::tempdir().unwrap();
    let flat = outs.path().join("all.parquet");
    ok(&run(&range(all.path().to_str().unwrap(), -1, 2, &["--format", "parquet", "--out", flat.to_str().unwrap()])));
    // From the bucket's archive to the bucket's dataset.
    let hive = |from, to, more: &[&str]| {
        let mut a = range(&url, from, to, &["--format", "parquet", "--partitioned", "--out", &dataset]);
        a.extend(more.iter().map(|s| s.to_string()));
        run(&a)
    };
    ok(&hive(-1, 2, &[]));

    let b = gapless_bucket::Bucket::open(&dataset).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = |rel: &str| object_store::path::Path::from(format!("{}/{rel}", b.prefix()));
    let keys = || -> Vec<String> {
        let mut k: Vec<String> =
            rt.block_on(b.list(&key(""))).unwrap().into_iter().map(|m| m.location.to_string()).collect();
        k.sort();
        k
    };
    let name = url.strip_prefix("s3://").unwrap().split('/').next().unwrap().to_string();
    let manifest_key = "_manifests/stream=decahose/20170717T23Z-20170718T02Z.json";
    let want: Vec<String> = [
        manifest_key,
        "stream=decahose/date=2017-07-17/hour=23/part-00000.parquet",
        "stream=decahose/date=2017-07-18/hour=00/part-00000.parquet",
        "stream=decahose/date=2017-07-18/hour=01/part-00000.parquet",
    ]
    .iter()
    .map(|k| format!("dataset/{k}"))
    .collect();
    assert_eq!(keys(), want);
    let text = rt.block_on(b.get(&key(manifest_key))).unwrap().unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(!text.contains(SECRET_ACCESS_KEY) && !text.contains("AWS_"), "{text}");
    let m: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(m["data"], url.as_str());
    assert_eq!(m["output"], dataset.as_str());
    assert_eq!(m["records"], 960);
    assert_eq!(
        rows_of(&m),
        [
            ("stream=decahose/date=2017-07-17/hour=23".to_string(), 240, true),
            ("stream=decahose/date=2017-07-18/hour=00".to_string(), 480, true),
            ("stream=decahose/date=2017-07-18/hour=01".to_string(), 240, true),
        ]
    );
    if has_pyarrow() {
        pyarrow_reads(&format!("{name}/dataset"), &flat, 0, PER_HOUR);
    }

    // A stale file in a partition of the range, and a re-run: replaced, no row twice.
    rt.block_on(b.put_verified(&key("stream=decahose/date=2017-07-18/hour=00/part-00009.parquet"), "junk".into()))
        .unwrap();
    ok(&hive(-1, 2, &[]));
    assert_eq!(keys(), want);
    if has_pyarrow() {
        pyarrow_reads(&format!("{name}/dataset"), &flat, 1, PER_HOUR);
    }

    // Hour 00 again with no rows (deletes only): its file goes, the other
    // hours stay, and the manifest of the wider range that it overlapped too.
    ok(&hive(0, 1, &["--kinds", "deletes"]));
    let now = keys();
    assert_eq!(
        now,
        [
            "dataset/_manifests/stream=decahose/20170718T00Z-20170718T01Z.json",
            "dataset/stream=decahose/date=2017-07-17/hour=23/part-00000.parquet",
            "dataset/stream=decahose/date=2017-07-18/hour=01/part-00000.parquet",
        ]
    );

    // Not on the hour: refused, nothing written.
    let mut a = range(&url, -1, 2, &["--format", "parquet", "--partitioned", "--out", &dataset]);
    a[6] = format!("@{}", BASE + 60); // --from
    let out = run(&a);
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(keys(), now);
}

#[test]
fn a_partitioned_dataset_in_a_directory_is_read_by_pyarrow_and_replaced_by_a_rerun() {
    let all = archive();
    let data = all.path().to_str().unwrap();
    let outs = tempfile::tempdir().unwrap();
    let flat = outs.path().join("all.parquet");
    ok(&run(&range(data, -1, 2, &["--format", "parquet", "--out", flat.to_str().unwrap()])));
    let root = outs.path().join("dataset");
    let hive = || run(&range(data, -1, 2, &["--format", "parquet", "--partitioned", "--out", root.to_str().unwrap()]));
    ok(&hive());
    let stale = root.join("stream=decahose/date=2017-07-18/hour=00/part-00009.parquet");
    std::fs::write(&stale, b"junk").unwrap();
    ok(&hive());
    assert!(!stale.exists(), "a file of a partition of the range that this export did not write is removed");
    let files: Vec<String> = walk(&root);
    assert_eq!(
        files,
        [
            "_manifests/stream=decahose/20170717T23Z-20170718T02Z.json",
            "stream=decahose/date=2017-07-17/hour=23/part-00000.parquet",
            "stream=decahose/date=2017-07-18/hour=00/part-00000.parquet",
            "stream=decahose/date=2017-07-18/hour=01/part-00000.parquet",
        ]
    );
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("_manifests/stream=decahose/20170717T23Z-20170718T02Z.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["records"], 960);
    assert_eq!(rows_of(&m).iter().map(|r| r.1).collect::<Vec<_>>(), [240, 480, 240]);
    if has_pyarrow() {
        pyarrow_reads(root.to_str().unwrap(), &flat, 23, PER_HOUR);
    }
    // Without --format parquet, or to a bucket without --partitioned: refused.
    let out = run(&range(data, -1, 2, &["--partitioned", "--out", root.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(64));
    let out = run(&range(data, -1, 2, &["--format", "parquet", "--out", "s3://b/x"]));
    assert_eq!(out.status.code(), Some(64));
}

/// Every file under `root`, relative, sorted.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
