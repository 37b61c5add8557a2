//! `segment-export --data s3://BUCKET/PREFIX` on archives uploaded to a
//! real S3-compatible server (moto, started by the test; skipped with a
//! message when moto is not installed, unless GAPLESS_REQUIRE_S3=1): every
//! format exports, byte for byte, what the local archive that holds the
//! sites' union exports; the manifest names the bucket; no output ever
//! shows the secret access key.

#[path = "../../inspect-coverage/tests/common/bucket.rs"]
mod bucket;
#[path = "../../inspect-coverage/tests/common/mod.rs"]
mod common;
mod run;

use std::path::Path;

use bucket::*;
use common::*;
use run::*;
use serde_json::Value;

fn manifest(out: &Path) -> Value {
    let text = std::fs::read_to_string(format!("{}.manifest.json", out.display())).unwrap();
    assert!(!text.contains(SECRET_ACCESS_KEY), "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Minutes from BASE: the archive runs from 30 minutes before midnight
/// (BASE) to 90 minutes after, so ranges cross a day.
const MINUTES: std::ops::Range<i64> = -30..90;
/// The Post of minute 10 that a delete in minute 80 deletes.
const DELETED: (i64, u16) = (10, 3);

/// Stream `decahose` over `minutes` (see `build_part`: a partial minute
/// 50), and the delete in minute 80 if the archive holds that minute.
fn build(dir: &Path, minutes: std::ops::Range<i64>) {
    let covered = MINUTES.start * 60..MINUTES.end * 60;
    build_part(dir, minutes.clone(), 8, std::slice::from_ref(&covered));
    if minutes.contains(&80) {
        let store = reopen(dir);
        let mut w = store.stream("decahose").unwrap();
        // fill_minute's Post `seq` of a minute, at its time.
        let ms = (BASE + DELETED.0 * 60) * 1000 + (DELETED.1 as i64 * 59_000) / 8 + 17;
        let at = (BASE + 80 * 60) * 1000 + 31_000;
        w.ingest(delete(post_id(ms, DELETED.1), at).as_bytes(), at).unwrap();
        w.commit().unwrap();
        store.coverage().flush().unwrap();
    }
}

/// The local archive that holds everything, and a bucket whose two sites
/// each hold a part of it (east up to minute 40, west from minute 20).
fn archives(tag: &str) -> Option<(String, tempfile::TempDir)> {
    let url = fresh_bucket(tag)?;
    let all = tempfile::tempdir().unwrap();
    build(all.path(), MINUTES);
    let (east, west) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build(east.path(), MINUTES.start..40);
    build(west.path(), 20..MINUTES.end);
    upload(&url, "east", east.path(), "decahose");
    upload(&url, "west", west.path(), "decahose");
    Some((url, all))
}

/// `--stream decahose`, minutes `from..to` from BASE, judged after the archive.
fn range(data: &str, from: i64, to: i64, more: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["--data", data, "--stream", "decahose"].iter().map(|s| s.to_string()).collect();
    for (flag, secs) in [("--from", BASE + from * 60), ("--to", BASE + to * 60), ("--now", BASE + 3 * 3600)] {
        a.extend([flag.to_string(), format!("@{secs}")]);
    }
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

#[test]
fn every_format_from_a_bucket_is_the_local_export() {
    let Some((url, all)) = archives("se-formats") else { return };
    let local = all.path().to_str().unwrap();
    let outs = tempfile::tempdir().unwrap();

    // NDJSON on standard output, across midnight and both sites.
    let (l, r) = (run(&range(local, -20, 30, &["--raw"])), run(&range(&url, -20, 30, &["--raw"])));
    ok(&l);
    ok(&r);
    assert_eq!(String::from_utf8_lossy(&r.stdout).lines().count(), 50 * 8);
    assert!(r.stdout == l.stdout, "the bucket's NDJSON is the local archive's, byte for byte");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("of sites east, west from s3://"), "{err}");

    // Every format and option to files, with manifests.
    for (name, more) in [
        ("plain.ndjson", &["--raw"][..]),
        ("zstd.ndjson.zst", &["--raw"][..]),
        ("posts.ndjson", &["--raw", "--kinds", "posts"][..]),
        ("compliance.ndjson", &[][..]),
        ("all.parquet", &["--format", "parquet"][..]),
    ] {
        let (lp, rp) = (outs.path().join(format!("local-{name}")), outs.path().join(format!("remote-{name}")));
        for (data, out) in [(local, &lp), (url.as_str(), &rp)] {
            let mut args = range(data, -20, 30, more);
            args.extend(["--out".into(), out.to_str().unwrap().into()]);
            ok(&run(&args));
        }
        let (lb, rb) = (std::fs::read(&lp).unwrap(), std::fs::read(&rp).unwrap());
        assert!(!rb.is_empty() && rb == lb, "{name}: the bucket's export is the local one's, byte for byte");
        let (lm, rm) = (manifest(&lp), manifest(&rp));
        assert_eq!(rm["data"], url.as_str(), "{name}: the manifest names the bucket");
        for field in ["records", "raw_bytes", "records_by_kind", "coverage", "minutes", "compliance", "unverified"] {
            assert_eq!(rm[field], lm[field], "{name}: {field}");
        }
        if name.starts_with("compliance") {
            // The delete is in minute 80, after the range: in the sites'
            // ledgers, fetched with the range.
            assert_eq!(rm["compliance"]["posts_dropped"], 1, "{}", rm["compliance"]);
            assert_eq!(rm["compliance"]["source"], "ledger");
        }
    }
}

#[test]
fn a_range_with_no_manifest_exports_nothing_and_says_so_as_locally() {
    let Some(url) = fresh_bucket("se-quiet") else { return };
    let all = tempfile::tempdir().unwrap();
    build(all.path(), MINUTES);
    add_likes(all.path(), BASE - 86_400..BASE - 86_400 + 3600);
    upload(&url, "east", all.path(), "decahose");
    upload(&url, "east", all.path(), "likes");
    let local = all.path().to_str().unwrap();
    let outs = tempfile::tempdir().unwrap();
    // Likes on a day it has no manifest; decahose the day after its data.
    for (stream, from, to) in [("likes", 0, 10), ("decahose", 1440, 1450)] {
        let (lp, rp) = (outs.path().join(format!("local-{stream}")), outs.path().join(format!("remote-{stream}")));
        for (data, out) in [(local, &lp), (url.as_str(), &rp)] {
            let mut args = range(data, from, to, &["--out", out.to_str().unwrap()]);
            args[3] = stream.into();
            ok(&run(&args));
        }
        assert_eq!(std::fs::read(&rp).unwrap(), b"", "{stream}");
        let (lm, rm) = (manifest(&lp), manifest(&rp));
        assert_eq!(rm["coverage"]["complete"], false, "{stream}: {}", rm["coverage"]);
        for field in ["records", "coverage", "minutes"] {
            assert_eq!(rm[field], lm[field], "{stream}: {field}");
        }
    }
}

#[test]
fn require_full_missing_streams_and_buckets_follow_the_exit_table() {
    let Some((url, _all)) = archives("se-errors") else { return };
    let outs = tempfile::tempdir().unwrap();
    let out_file = outs.path().join("x.ndjson");
    let out_arg = ["--out", out_file.to_str().unwrap()];

    // Minute 50 is partial: refused, nothing written; a full range passes.
    let mut args = range(&url, 45, 55, &["--require-full"]);
    args.extend(out_arg.iter().map(|s| s.to_string()));
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("the range has holes") && err.contains("2017-07-18T00:50:00Z"), "{err}");
    assert!(!out_file.exists() && std::fs::read_dir(outs.path()).unwrap().next().is_none(), "nothing written");
    ok(&run(&range(&url, 0, 40, &["--require-full"])));

    // A stream the bucket does not hold.
    let mut args = range(&url, 0, 10, &[]);
    args[3] = "likes".into();
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(err.contains(&format!("likes: no such stream in {url}")), "{err}");

    // A bucket that does not exist.
    let missing = url.replace("/archive", "-nope/archive");
    let out = run(&range(&missing, 0, 10, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(err.contains("NoSuchBucket: The specified bucket does not exist") && err.contains(&missing), "{err}");
    assert!(out.stdout.is_empty());
}

/// A site without a ledger in the bucket (an archive uploaded before
/// ledgers): compliance reads the events from every minute of the stream
/// instead, and still applies the delete that lies after the range.
#[test]
fn without_a_sites_ledger_compliance_reads_every_minute() {
    let Some((url, all)) = archives("se-noledger") else { return };
    let bucket = gapless_bucket::Bucket::open(&url).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = gapless_bucket::keys::StreamKeys::new(bucket.prefix(), "west", "decahose").ledger();
    runtime.block_on(bucket.delete(&key)).unwrap();
    let outs = tempfile::tempdir().unwrap();
    let (lp, rp) = (outs.path().join("local.ndjson"), outs.path().join("remote.ndjson"));
    let local = all.path().to_str().unwrap();
    for (data, out) in [(local, &lp), (url.as_str(), &rp)] {
        let mut args = range(data, -20, 30, &["--kinds", "posts"]);
        args.extend(["--out".into(), out.to_str().unwrap().into()]);
        let o = run(&args);
        ok(&o);
        if data == url.as_str() {
            // The range's minutes, then the whole stream (a site has no ledger).
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.matches("segment-export: fetched").count(), 2, "{err}");
        }
    }
    assert_eq!(std::fs::read(&rp).unwrap(), std::fs::read(&lp).unwrap());
    let m = manifest(&rp);
    assert_eq!(m["compliance"]["source"], "segments");
    assert_eq!(m["compliance"]["posts_dropped"], 1, "{}", m["compliance"]);
}
