//! The real `segment-export` binary on archives built in tempdirs.

#[path = "../../inspect-coverage/tests/common/mod.rs"]
mod common;
#[path = "../../inspect-coverage/tests/common/archiver.rs"]
mod live;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use gapless_storage::store::{Store, StoreConfig};
use serde_json::Value;

fn export(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segment-export")).args(args).output().expect("run segment-export")
}

fn at(secs: i64) -> String {
    format!("@{secs}")
}

fn ok(out: &Output) {
    assert!(out.status.success(), "status {:?}; stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
}

fn manifest(path: &Path) -> Value {
    let mut p = path.as_os_str().to_owned();
    p.push(".manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&p).display())))
        .unwrap()
}

/// 10 minutes from BASE, 2 partitions, fully covered. Minute 3's Posts
/// arrive in two frames (realtime, then a late recovery with copies); the
/// last Post of minute 2 is deleted in minute 8; minute 5 holds a rich
/// Post. Returns the expected export: every stored line, in (time, key) order.
fn build(dir: &Path) -> Vec<(i64, u64, String)> {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let mut w = store.stream("decahose").unwrap();
    store.coverage().set_partitions("decahose", 2).unwrap();
    let mut want: Vec<(i64, u64, String)> = Vec::new();
    // Ingested in reverse minute order, to show the export sorts.
    for m in (0..10).rev() {
        let s = BASE + m * 60;
        for i in (0..6u16).rev() {
            let ms = s * 1000 + i as i64 * 9_000 + 5;
            let l = post(ms, i);
            w.ingest(l.as_bytes(), ms).unwrap();
            want.push((ms, post_id(ms, i), l));
            if m == 3 && i == 0 {
                w.commit().unwrap(); // a second frame for minute 3 follows
            }
        }
    }
    let (durable, _) = w.commit().unwrap();
    // A late recovery: copies of minute 3 (dropped) and one new Post.
    for i in 0..6u16 {
        let ms = (BASE + 180) * 1000 + i as i64 * 9_000 + 5;
        w.ingest(post(ms, i).as_bytes(), ms).unwrap();
    }
    let late_ms = (BASE + 180) * 1000 + 1;
    let late = post(late_ms, 99);
    w.ingest(late.as_bytes(), late_ms).unwrap();
    want.push((late_ms, post_id(late_ms, 99), late));
    let rich_ms = (BASE + 300) * 1000 + 30_000;
    let rich = rich_post(rich_ms, 7, 111, 222, 333);
    w.ingest(rich.as_bytes(), rich_ms).unwrap();
    want.push((rich_ms, post_id(rich_ms, 7), rich));
    let victim_ms = (BASE + 120) * 1000 + 5 * 9_000 + 5;
    let del_ms = (BASE + 480) * 1000 + 100;
    let del = delete(post_id(victim_ms, 5), del_ms);
    w.ingest(del.as_bytes(), del_ms).unwrap();
    want.push((del_ms, post_id(victim_ms, 5), del));
    let (d2, _) = w.commit().unwrap();
    for p in 1..=2 {
        store.coverage().cover(&durable, "decahose", p, BASE..BASE + 600).unwrap();
        store.coverage().cover(&d2, "decahose", p, BASE..BASE + 600).unwrap();
    }
    want.sort_by_key(|(ms, id, _)| (*ms, *id));
    want
}

fn range_args<'a>(d: &'a str, from: &'a str, to: &'a str) -> Vec<&'a str> {
    // Judged an hour after BASE: inside the recovery window. As received
    // (--raw): these tests compare the export with what was ingested;
    // compliance is `compliant` below and tests/compliance.rs.
    vec!["--data", d, "--stream", "decahose", "--from", from, "--to", to, "--now", "@1500339600", "--raw"]
}

/// [`range_args`] with compliance applied (the default).
fn compliant<'a>(d: &'a str, from: &'a str, to: &'a str) -> Vec<&'a str> {
    let mut args = range_args(d, from, to);
    args.retain(|a| *a != "--raw");
    args
}

#[test]
fn ndjson_is_the_raw_bytes_deduplicated_in_time_order_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let want = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let out_path = dir.path().join("out.ndjson");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", out_path.to_str().unwrap()]);
    let out = export(&args);
    ok(&out);
    let got = std::fs::read_to_string(&out_path).unwrap();
    let expected: String = want.iter().map(|(_, _, l)| format!("{l}\n")).collect();
    assert_eq!(got.lines().count(), want.len());
    assert_eq!(got, expected, "raw bytes, in time order, each once");
    assert!(!dir.path().join("out.ndjson.partial").exists());
    let m = manifest(&out_path);
    assert_eq!(m["schema"], "gapless.export-manifest/1");
    assert_eq!(m["tool"], "segment-export");
    assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["stream"], "decahose");
    assert_eq!(m["range"]["from"], "2017-07-18T00:00:00Z");
    assert_eq!(m["range"]["to_ms"], (BASE + 600) * 1000);
    assert_eq!(m["format"], "ndjson");
    assert_eq!(m["compression"], "none");
    assert_eq!(m["records"], want.len() as u64);
    assert_eq!(m["records_by_kind"]["post"], want.len() as u64 - 1);
    assert_eq!(m["records_by_kind"]["delete"], 1);
    assert_eq!(m["output_bytes"], got.len() as u64);
    assert_eq!(m["coverage"]["source"], "store");
    assert_eq!(m["coverage"]["complete"], true);
    let minutes = m["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 10);
    assert_eq!(minutes[3]["state"], "full");
    assert_eq!(minutes[3]["exported"], 7);
    assert_eq!(minutes[3]["counts"]["duplicates"], 6);
    assert_eq!(minutes[3]["counts"]["stored"], 7);
    // A part of the range, mid-minute.
    let (from, to) = (at(BASE + 90), at(BASE + 150));
    let out = export(&range_args(d, &from, &to));
    ok(&out);
    let part: Vec<String> = want
        .iter()
        .filter(|(ms, _, _)| (BASE + 90) * 1000 <= *ms && *ms < (BASE + 150) * 1000)
        .map(|(_, _, l)| format!("{l}\n"))
        .collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), part.concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no manifest written"), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "no progress bar when stderr is not a terminal: {err:?}");
}

#[test]
fn zstd_output_kinds_and_compliance() {
    let dir = tempfile::tempdir().unwrap();
    let want = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let (from, to) = (at(BASE), at(BASE + 600));
    let zst = dir.path().join("out.ndjson.zst");
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", zst.to_str().unwrap()]);
    ok(&export(&args));
    let plain = zstd::decode_all(std::fs::File::open(&zst).unwrap()).unwrap();
    let expected: String = want.iter().map(|(_, _, l)| format!("{l}\n")).collect();
    assert_eq!(String::from_utf8(plain).unwrap(), expected);
    assert_eq!(manifest(&zst)["compression"], "zstd");

    let mut args = range_args(d, &from, &to);
    args.extend(["--kinds", "deletes"]);
    let out = export(&args);
    ok(&out);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    let mut args = range_args(d, &from, &to);
    args.extend(["--kinds", "bogus"]);
    assert_eq!(export(&args).status.code(), Some(64), "bad arguments");

    // Compliance: the Post deleted in minute 8 is dropped, even from a
    // range that ends before its delete.
    let victim = want.iter().find(|(_, _, l)| l.starts_with("{\"delete\"")).unwrap().1;
    let (from, to) = (at(BASE + 120), at(BASE + 180));
    let c = dir.path().join("c.ndjson");
    let mut args = compliant(d, &from, &to);
    args.extend(["--kinds", "posts", "--out", c.to_str().unwrap()]);
    ok(&export(&args));
    let text = std::fs::read_to_string(&c).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert!(!text.contains(&victim.to_string()));
    let m = manifest(&c);
    assert_eq!(m["compliance"]["enabled"], true);
    assert_eq!(m["compliance"]["posts_dropped"], 1);
    assert_eq!(m["compliance"]["left_out"]["deleted_posts"], 1);
    assert_eq!(m["compliance"]["events"]["delete"], 1);
    assert_eq!(m["compliance"]["source"], "ledger");
    assert_eq!(m["minutes"][0]["exported"], 5);
    // With --raw it is there.
    let mut args = range_args(d, &from, &to);
    args.extend(["--kinds", "posts"]);
    assert!(String::from_utf8(export(&args).stdout).unwrap().contains(&victim.to_string()));
}

#[test]
fn require_full_refuses_a_range_with_holes() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    {
        let store = reopen(dir.path());
        store.coverage().uncover("decahose", BASE + 400..BASE + 410).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let out_path = dir.path().join("x.ndjson");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--require-full", "--out", out_path.to_str().unwrap()]);
    let out = export(&args);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2017-07-18T00:06:40Z .. 2017-07-18T00:06:50Z"), "{err}");
    assert!(!out_path.exists());
    // The range before the hole is full.
    let (from, to) = (at(BASE), at(BASE + 360));
    let mut args = range_args(d, &from, &to);
    args.extend(["--require-full", "--out", out_path.to_str().unwrap()]);
    ok(&export(&args));
    // Without --require-full the manifest says what is missing.
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", out_path.to_str().unwrap()]);
    ok(&export(&args));
    let m = manifest(&out_path);
    assert_eq!(m["coverage"]["complete"], false);
    assert_eq!(m["coverage"]["holes"][0]["length_secs"], 10);
    assert_eq!(m["minutes"][6]["state"], "partial");
}

/// While an archiver holds the store, coverage comes from it: at the URL
/// it left in `DATA/admin.url`, without `--admin`. Without that file (or
/// with nothing answering there) the export stops with exit 69, saying
/// how to reach it; it never exports with coverage it cannot know.
#[test]
fn while_the_archiver_holds_the_store_coverage_comes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let want = build(dir.path());
    let store = reopen(dir.path());
    // The "archiver" keeps writing: a commit in flight is not seen until durable.
    let mut w = store.stream("decahose").unwrap();
    let extra_ms = (BASE + 599) * 1000;
    w.ingest(post(extra_ms, 55).as_bytes(), extra_ms).unwrap();
    let d = dir.path().to_str().unwrap();
    let out_path = dir.path().join("live.ndjson");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", out_path.to_str().unwrap()]);
    let out = export(&args);
    assert_eq!(out.status.code(), Some(69), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("an archiver is running") && err.contains("--admin URL"), "{err}");
    assert!(!out_path.exists());

    let (url, server) = serve_admin(store.coverage().clone(), 3);
    std::fs::write(gapless_storage::layout::admin_url_path(dir.path()), format!("{url}\n")).unwrap();
    ok(&export(&args));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap().lines().count(), want.len());
    let m = manifest(&out_path);
    assert_eq!(m["coverage"]["source"], "archiver");
    assert_eq!(m["coverage"]["complete"], true);
    assert_eq!(m["minutes"][0]["state"], "full");
    let mut args = range_args(d, &from, &to);
    args.push("--require-full");
    ok(&export(&args));
    w.commit().unwrap();
    let out = export(&range_args(d, &from, &to));
    ok(&out);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), want.len() + 1, "durable now");
    assert_eq!(server.join().unwrap().len(), 3);
    // The file names a URL where nothing answers any more: 69 again.
    let out = export(&range_args(d, &from, &to));
    assert_eq!(out.status.code(), Some(69));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing answers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one exit table (`gapless_client::exit`), as segment-export uses it.
#[test]
fn exit_status_follows_the_one_table() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let (from, to) = (at(BASE), at(BASE + 600));
    assert_eq!(export(&range_args(d, &from, &to)).status.code(), Some(0));
    assert_eq!(export(&["--bogus"]).status.code(), Some(64));
    assert_eq!(export(&range_args(d, "yesterday", &to)).status.code(), Some(64));
    assert_eq!(export(&range_args(d, &to, &from)).status.code(), Some(64), "an empty range");
    let missing = export(&range_args("/nonexistent/gapless", &from, &to));
    assert_eq!(missing.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such data directory"));
    let mut args = range_args(d, &from, &to);
    args[3] = "nope";
    assert_eq!(export(&args).status.code(), Some(66), "no such stream");
    {
        let store = reopen(dir.path());
        store.coverage().uncover("decahose", BASE + 60..BASE + 61).unwrap();
    }
    let mut args = range_args(d, &from, &to);
    args.push("--require-full");
    assert_eq!(export(&args).status.code(), Some(3), "refused");
    let mut args = range_args(d, &from, &to);
    let nowhere = dir.path().join("no/such/dir/out.ndjson");
    args.extend(["--out", nowhere.to_str().unwrap()]);
    assert_eq!(export(&args).status.code(), Some(70), "any other error");
    let help = export(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("3 refused by --require-full") && help.contains("Durations: 90 (seconds)"), "{help}");
}

#[test]
fn parquet_has_typed_columns() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = tempfile::tempdir().unwrap();
    let want = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let pq = dir.path().join("out.parquet");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--format", "parquet", "--out", pq.to_str().unwrap()]);
    ok(&export(&args));
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&pq).unwrap()).unwrap().build().unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, want.len());
    let b = &batches[0];
    let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        names,
        [
            "kind",
            "key",
            "time",
            "id",
            "created_at",
            "user_id",
            "screen_name",
            "lang",
            "text",
            "retweeted_id",
            "quoted_id",
            "in_reply_to_id",
            "raw"
        ]
    );
    let ts = arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, Some("UTC".into()));
    assert_eq!(b.schema().field_with_name("created_at").unwrap().data_type(), &ts);
    assert_eq!(b.schema().field_with_name("time").unwrap().data_type(), &ts);
    assert_eq!(b.schema().field_with_name("id").unwrap().data_type(), &arrow_schema::DataType::Int64);
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMillisecondType};
    let raw = b.column_by_name("raw").unwrap().as_string::<i32>();
    let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
    let times = b.column_by_name("time").unwrap().as_primitive::<TimestampMillisecondType>();
    for (i, (ms, id, line)) in want.iter().enumerate().take(b.num_rows()) {
        assert_eq!(raw.value(i), line, "row {i}: the raw bytes");
        assert_eq!(ids.value(i), *id as i64);
        assert_eq!(times.value(i), *ms);
    }
    // The rich Post's columns.
    let i = want.iter().position(|(_, _, l)| l.contains("extended_tweet")).unwrap();
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    assert_eq!(col("text").as_string::<i32>().value(i), "the full text, long");
    assert_eq!(col("screen_name").as_string::<i32>().value(i), "rich");
    assert_eq!(col("lang").as_string::<i32>().value(i), "en");
    assert_eq!(col("user_id").as_primitive::<Int64Type>().value(i), 42);
    assert_eq!(col("retweeted_id").as_primitive::<Int64Type>().value(i), 111);
    assert_eq!(col("in_reply_to_id").as_primitive::<Int64Type>().value(i), 222);
    assert_eq!(col("quoted_id").as_primitive::<Int64Type>().value(i), 333);
    assert_eq!(col("created_at").as_primitive::<TimestampMillisecondType>().value(i), want[i].0 / 1000 * 1000);
    assert_eq!(col("kind").as_string::<i32>().value(i), "post");
    assert!(col("quoted_id").is_null(0));
    assert_eq!(manifest(&pq)["format"], "parquet");
}

/// pyarrow and DuckDB read the Parquet file as it is. Runs when both are
/// importable; CI sets SEGMENT_EXPORT_REQUIRE_PYTHON=1 (after installing
/// them) so that it cannot be skipped there.
#[test]
fn parquet_is_read_by_pyarrow_and_duckdb() {
    let required = std::env::var_os("SEGMENT_EXPORT_REQUIRE_PYTHON").is_some_and(|v| v == "1");
    let have =
        Command::new("python3").args(["-c", "import pyarrow, duckdb"]).output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(!required, "SEGMENT_EXPORT_REQUIRE_PYTHON=1 but python3 cannot import pyarrow and duckdb");
        eprintln!("skipped: python3 with pyarrow and duckdb not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let pq = dir.path().join("out.parquet");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--format", "parquet", "--out", pq.to_str().unwrap()]);
    ok(&export(&args));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_parquet.py");
    let out = Command::new("python3").args([script, pq.to_str().unwrap(), &want.len().to_string()]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn admin_api_gives_coverage_while_the_archiver_runs() {
    let dir = tempfile::tempdir().unwrap();
    let want = build(dir.path());
    let store = reopen(dir.path());
    let (url, server) = serve_admin(store.coverage().clone(), 2);
    let d = dir.path().to_str().unwrap();
    let out_path = dir.path().join("admin.ndjson");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--admin", &url, "--require-full", "--out", out_path.to_str().unwrap()]);
    ok(&export(&args));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap().lines().count(), want.len());
    let m = manifest(&out_path);
    assert_eq!(m["coverage"]["source"], "archiver");
    assert_eq!(m["coverage"]["complete"], true);
    assert_eq!(m["minutes"][9]["state"], "full");
    store.coverage().uncover("decahose", BASE + 60..BASE + 61).unwrap();
    let mut args = range_args(d, &from, &to);
    args.extend(["--admin", &url, "--require-full"]);
    let out = export(&args);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2017-07-18T00:01:00Z .. 2017-07-18T00:01:01Z"));
    let seen = server.join().unwrap();
    assert!(seen.iter().all(|s| s.contains("&stream=decahose")), "{seen:?}");
}

/// The storage crate's fixtures: real Posts (native and Activity Streams,
/// from twitterdev/tweet_parser). Parquet's typed columns must agree with
/// the JSON, read independently here with `serde_json::Value`.
#[test]
fn parquet_columns_of_real_posts_agree_with_their_json() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMillisecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../storage/tests/fixtures/tweet_parser/");
    let dir = tempfile::tempdir().unwrap();
    // The two files hold the same Posts in two formats: one stream each.
    let mut total = 0;
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for (stream, f) in [("native", "original_format_examples.json"), ("as", "activity_streams_examples.json")] {
            let text = std::fs::read_to_string(format!("{fixtures}{f}")).unwrap();
            let mut w = store.stream(stream).unwrap();
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                let o = w.ingest(l.as_bytes(), 1_764_000_000_000).unwrap();
                assert!(matches!(o, gapless_storage::store::Outcome::Stored { .. }), "{o:?}");
                total += 1;
            }
            w.commit().unwrap();
        }
    }
    assert!(total >= 40, "{total}");
    let d = dir.path().to_str().unwrap();
    let mut rows = 0;
    for stream in ["native", "as"] {
        let pq = dir.path().join(format!("{stream}.parquet"));
        let out = export(&[
            "--data",
            d,
            "--stream",
            stream,
            "--from",
            "2006-01-01",
            "--to",
            "2030-01-01",
            "--format",
            "parquet",
            "--out",
            pq.to_str().unwrap(),
            "--quiet",
        ]);
        ok(&out);
        assert_eq!(manifest(&pq)["coverage"]["source"], "unknown", "no coverage was claimed");
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&pq).unwrap()).unwrap().build().unwrap();
        let tail = |s: &str| s.rsplit([':', '/']).next().unwrap().parse::<i64>().ok();
        let int = |v: &Value| v.as_str().and_then(|s| s.parse::<i64>().ok());
        for b in reader {
            let b = b.unwrap();
            let col = |n: &str| b.column_by_name(n).unwrap().clone();
            let (raw, id, user, name, lang, text, rt, qt, re, created) = (
                col("raw"),
                col("id"),
                col("user_id"),
                col("screen_name"),
                col("lang"),
                col("text"),
                col("retweeted_id"),
                col("quoted_id"),
                col("in_reply_to_id"),
                col("created_at"),
            );
            for i in 0..b.num_rows() {
                rows += 1;
                let j: Value = serde_json::from_str(raw.as_string::<i32>().value(i)).unwrap();
                let get_i = |a: &arrow_array::ArrayRef| (!a.is_null(i)).then(|| a.as_primitive::<Int64Type>().value(i));
                let get_s =
                    |a: &arrow_array::ArrayRef| (!a.is_null(i)).then(|| a.as_string::<i32>().value(i).to_string());
                let native = j.get("id_str").is_some();
                let (w_id, w_user, w_name, w_lang, w_text, w_rt, w_qt, w_re, w_created) = if native {
                    (
                        int(&j["id_str"]),
                        int(&j["user"]["id_str"]),
                        j["user"]["screen_name"].as_str().map(str::to_string),
                        j["lang"].as_str().map(str::to_string),
                        j["extended_tweet"]["full_text"]
                            .as_str()
                            .or(j["full_text"].as_str())
                            .or(j["text"].as_str())
                            .map(str::to_string),
                        int(&j["retweeted_status"]["id_str"]),
                        int(&j["quoted_status_id_str"]),
                        int(&j["in_reply_to_status_id_str"]),
                        chrono::DateTime::parse_from_str(j["created_at"].as_str().unwrap(), "%a %b %d %H:%M:%S %z %Y")
                            .ok()
                            .map(|d| d.timestamp_millis()),
                    )
                } else {
                    (
                        j["id"].as_str().and_then(tail),
                        j["actor"]["id"].as_str().and_then(tail),
                        j["actor"]["preferredUsername"].as_str().map(str::to_string),
                        j["twitter_lang"].as_str().map(str::to_string),
                        j["long_object"]["body"].as_str().or(j["body"].as_str()).map(str::to_string),
                        if j["verb"] == "share" { j["object"]["id"].as_str().and_then(tail) } else { None },
                        None,
                        j["inReplyTo"]["link"].as_str().and_then(tail),
                        chrono::DateTime::parse_from_rfc3339(j["postedTime"].as_str().unwrap())
                            .ok()
                            .map(|d| d.timestamp_millis()),
                    )
                };
                let what = format!("row {i}: {}", &raw.as_string::<i32>().value(i)[..80]);
                assert_eq!(get_i(&id), w_id, "id, {what}");
                assert_eq!(get_i(&user), w_user, "user_id, {what}");
                assert_eq!(get_s(&name), w_name, "screen_name, {what}");
                assert_eq!(get_s(&lang), w_lang, "lang, {what}");
                assert_eq!(get_s(&text), w_text, "text, {what}");
                assert_eq!(get_i(&rt), w_rt, "retweeted_id, {what}");
                if native {
                    assert_eq!(get_i(&qt), w_qt, "quoted_id, {what}");
                }
                assert_eq!(get_i(&re), w_re, "in_reply_to_id, {what}");
                assert_eq!(
                    (!created.is_null(i)).then(|| created.as_primitive::<TimestampMillisecondType>().value(i)),
                    w_created,
                    "created_at, {what}"
                );
            }
        }
    }
    assert_eq!(rows, total);
}

#[test]
fn a_failed_export_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // The final name is taken by a non-empty directory: the rename fails.
    let out_path = dir.path().join("taken.ndjson");
    std::fs::create_dir(&out_path).unwrap();
    std::fs::write(out_path.join("x"), b"x").unwrap();
    let d = dir.path().to_str().unwrap();
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", out_path.to_str().unwrap()]);
    let out = export(&args);
    assert_eq!(out.status.code(), Some(70));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rename"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("taken.ndjson.partial").exists());
    assert!(!dir.path().join("taken.ndjson.manifest.json").exists());
}

/// A reader never stops silently at a frame that does not verify: the
/// export says which minute, from which offset, on stderr and in the
/// manifest, and does not call itself complete.
#[test]
fn a_frame_that_does_not_verify_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let seg = gapless_storage::store::segment_path(
        &dir.path().join("streams/decahose"),
        gapless_storage::Minute::of_secs(BASE + 3 * 60),
    );
    let (_, frames) = gapless_storage::segment::read_headers(&seg).unwrap();
    assert!(frames.len() >= 2, "minute 3 has two frames");
    // Flip a payload byte of the first frame: the second is not read.
    let mut bytes = std::fs::read(&seg).unwrap();
    let at_byte = frames[0].offset as usize + frames[0].header.header_len + 3;
    bytes[at_byte] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();

    let d = dir.path().to_str().unwrap();
    let out_path = dir.path().join("out.ndjson");
    let (from, to) = (at(BASE), at(BASE + 600));
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", out_path.to_str().unwrap()]);
    let out = export(&args);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("do not verify"), "{stderr}");
    let m = manifest(&out_path);
    let u = m["unverified"].as_array().unwrap();
    assert_eq!(u.len(), 1, "{m}");
    assert_eq!(u[0]["offset"], frames[0].offset);
    assert_eq!(m["coverage"]["complete"], false);
}

/// With only `--data` while the real archiver runs, coverage comes from
/// it (the URL it wrote to `DATA/admin.url`), and the segments it has
/// committed are exported.
#[test]
fn with_only_data_coverage_comes_from_the_running_archiver() {
    let live = live::Live::start(20.0);
    live.until_stored(20);
    let data = live.data();
    let out_path = live.dir.path().join("live.ndjson");
    let out = export(&[
        "--data",
        data.to_str().unwrap(),
        "--stream",
        "decahose",
        "--from",
        "now-1h",
        "--to",
        "now+1m",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    ok(&out);
    let m = manifest(&out_path);
    assert_eq!(m["coverage"]["source"], "archiver", "{m}");
    let minutes = m["minutes"].as_array().unwrap().len();
    assert!((61..=62).contains(&minutes), "every minute of the range, from the archiver's report: {minutes}");
    let lines = std::fs::read_to_string(&out_path).unwrap().lines().count() as u64;
    assert_eq!(m["records"], lines);
}

/// Progress with stderr in a file (not a terminal): plain lines, one per
/// step (here one per minute), no carriage return, no escape.
#[test]
fn progress_to_a_file_is_one_line_per_step() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let (from, to) = (at(BASE), at(BASE + 600));
    let out_path = dir.path().join("out.ndjson");
    let log = dir.path().join("stderr.log");
    let mut args = range_args(d, &from, &to);
    args.extend(["--out", out_path.to_str().unwrap()]);
    let status = Command::new(env!("CARGO_BIN_EXE_segment-export"))
        .args(&args)
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    let steps: Vec<&str> = text.lines().filter(|l| l.contains(" minutes ")).collect();
    assert_eq!(steps.len(), 10, "one line per minute: {text}");
    assert!(steps[9].contains("100.0%  10/10 minutes"), "{text}");
    // --quiet: none.
    args.push("--quiet");
    let out = export(&args);
    ok(&out);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
