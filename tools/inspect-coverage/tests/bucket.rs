//! `inspect-coverage --data s3://BUCKET/PREFIX` on archives uploaded to a
//! real S3-compatible server (moto, started by the test; skipped with a
//! message when moto is not installed, unless GAPLESS_REQUIRE_S3=1): the
//! report of a bucket's sites is the report of the local archive that
//! holds their union, and no output ever shows the secret access key.

#[path = "common/bucket.rs"]
mod bucket;
mod common;

use std::ops::Range;
use std::path::Path;
use std::process::{Command, Output};

use bucket::*;
use common::*;
use serde_json::Value;

fn tool(args: &[String]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_inspect-coverage")).args(args).output().expect("run inspect-coverage");
    assert_no_secret(&out);
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}; stderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

/// `--data DATA` and the two hours from BASE, judged a minute after.
fn args(data: &str, more: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["--data".into(), data.into()];
    for (flag, secs) in [("--from", BASE), ("--to", BASE + 7200), ("--now", BASE + 7260)] {
        a.extend([flag.to_string(), format!("@{secs}")]);
    }
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// The archive's covered seconds (from BASE): two hours but minutes
/// 100..103 (and, on partition 2, the second half of minute 50).
fn covered() -> Vec<Range<i64>> {
    vec![0..100 * 60, 103 * 60..120 * 60]
}

/// The local archive that holds everything.
fn full() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build_part(dir.path(), 0..120, 8, &covered());
    dir
}

#[test]
fn a_site_and_a_partial_second_site_report_as_the_local_archive() {
    let Some(url) = fresh_bucket("ic-one") else { return };
    let all = full();
    let part = tempfile::tempdir().unwrap();
    build_part(part.path(), 30..70, 8, &covered());
    upload(&url, "east", all.path(), "decahose");
    upload(&url, "west", part.path(), "decahose");

    for more in [&["--json"][..], &["--json", "--stream", "decahose"], &["--color", "never"], &["--summary"]] {
        let local = tool(&args(path(all.path()), more));
        let remote = tool(&args(&url, more));
        assert_eq!(remote.status.code(), Some(1), "holes: {}", String::from_utf8_lossy(&remote.stderr));
        assert_eq!(remote.status.code(), local.status.code(), "{more:?}");
        assert_eq!(
            String::from_utf8_lossy(&remote.stdout),
            String::from_utf8_lossy(&local.stdout),
            "{more:?}: the bucket's report is the local archive's"
        );
    }
    let v = json_of(&tool(&args(&url, &["--json"])));
    let d = &v["streams"][0];
    assert_eq!((d["stream"].as_str(), d["partitions"].as_u64()), (Some("decahose"), Some(2)));
    assert_eq!(d["minutes"][50]["state"], "partial");
    assert_eq!(d["minutes"][101]["state"], "none");
    assert_eq!(d["minutes"][119]["counts"]["stored"], 8);
}

#[test]
fn two_incomplete_sites_report_as_their_union() {
    let Some(url) = fresh_bucket("ic-union") else { return };
    let all = full();
    // Neither site holds everything: east the first 80 minutes, west the last 60.
    let (east, west) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_part(east.path(), 0..80, 8, &covered());
    build_part(west.path(), 60..120, 8, &covered());
    upload(&url, "east", east.path(), "decahose");
    upload(&url, "west", west.path(), "decahose");

    let local = json_of(&tool(&args(path(all.path()), &["--json"])));
    let east_alone = json_of(&tool(&args(path(east.path()), &["--json"])));
    assert_ne!(east_alone["streams"][0]["totals"], local["streams"][0]["totals"], "one site alone is not the archive");
    assert_eq!(json_of(&tool(&args(&url, &["--json"]))), local, "the union is the archive");

    // Segments too: each record counted once where both sites hold it
    // (minutes 60..80), so every minute agrees with its counter.
    let verified = json_of(&tool(&args(&url, &["--json", "--verify-segments"])));
    assert_eq!(verified, json_of(&tool(&args(path(all.path()), &["--json", "--verify-segments"]))));
    assert_eq!(verified["totals"]["segment_mismatch_minutes"], 0);
    assert_eq!(verified["streams"][0]["minutes"][70]["segment_records"], 8);

    // No window given, data older than a day: the day up to the newest
    // minute, found in the manifests as in the local segments.
    let later = |data: &str, more: &[&str]| {
        let mut a: Vec<String> = vec!["--data".into(), data.into(), "--now".into(), format!("@{}", BASE + 10 * 86_400)];
        a.extend(more.iter().map(|s| s.to_string()));
        json_of(&tool(&a))
    };
    for more in [&["--json"][..], &["--json", "--verify-segments"]] {
        let remote = later(&url, more);
        assert_eq!(remote["window"]["to_secs"], BASE + 7200, "{}", remote["window"]);
        assert_eq!(remote, later(path(all.path()), more), "{more:?}");
    }
}

#[test]
fn with_no_window_only_the_last_day_is_read_while_it_holds_data() {
    let Some(url) = fresh_bucket("ic-recent") else { return };
    let all = full();
    upload(&url, "east", all.path(), "decahose");
    put_junk_manifest(&url, "east", "decahose", "2017-07-10");
    let no_window = |data: &str, now: i64, more: &[&str]| {
        let mut a: Vec<String> = vec!["--data".into(), data.into(), "--now".into(), format!("@{now}")];
        a.extend(more.iter().map(|s| s.to_string()));
        tool(&a)
    };
    // Data in the last 24 hours: the default window is theirs, and no
    // older day is read (the damaged manifest of July 10 is not).
    for more in [&["--json"][..], &["--json", "--verify-segments"]] {
        let (local, remote) = (no_window(path(all.path()), BASE + 7260, more), no_window(&url, BASE + 7260, more));
        assert_eq!(remote.status.code(), Some(1), "{more:?}: {}", String::from_utf8_lossy(&remote.stderr));
        assert_eq!(json_of(&remote), json_of(&local), "{more:?}");
    }
    // None in the last 24 hours: every day is read to find the newest
    // data, and the damaged manifest is an error, never a silent hole.
    let out = no_window(&url, BASE + 10 * 86_400, &["--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{err}");
    assert!(err.contains("coverage/2017-07-10.json"), "{err}");
}

#[test]
fn a_stream_with_no_manifest_in_the_window_is_reported_not_left_out() {
    let Some(url) = fresh_bucket("ic-quiet") else { return };
    let all = full();
    // Likes was archived the day before only: no manifest of the window's day.
    add_likes(all.path(), BASE - 86_400..BASE - 86_400 + 3600);
    upload(&url, "east", all.path(), "decahose");
    upload(&url, "east", all.path(), "likes");
    for more in [&["--json"][..], &["--json", "--stream", "likes"], &["--summary"]] {
        let local = tool(&args(path(all.path()), more));
        let remote = tool(&args(&url, more));
        assert_eq!(remote.status.code(), local.status.code(), "{more:?}");
        assert_eq!(String::from_utf8_lossy(&remote.stdout), String::from_utf8_lossy(&local.stdout), "{more:?}");
    }
    let v = json_of(&tool(&args(&url, &["--json", "--stream", "likes"])));
    let t = &v["streams"][0]["totals"];
    assert_eq!((t["owed"].as_u64(), t["none"].as_u64(), t["holes"].as_u64()), (Some(120), Some(119), Some(1)), "{t}");
}

#[test]
fn a_missing_bucket_or_a_bad_url_is_a_clear_error_without_credentials() {
    let Some(url) = fresh_bucket("ic-missing") else { return };
    let missing = url.replace("/archive", "-nope/archive");
    let out = tool(&args(&missing, &["--json"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "no such data: {err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("NoSuchBucket: The specified bucket does not exist") && err.contains(&missing), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, not the server's whole answer: {err}");

    // An empty bucket holds no stream.
    let out = tool(&args(&url, &[]));
    assert_eq!(out.status.code(), Some(66), "{}", String::from_utf8_lossy(&out.stderr));

    // Credentials in the URL are refused, and not repeated.
    let out = tool(&args(&format!("s3://AKIA:{SECRET_ACCESS_KEY}@b/p"), &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("credentials go in AWS_* variables"), "{err}");
}
