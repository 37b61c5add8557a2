//! `gapless import` end to end: real files (gzip, zstd, plain), real
//! payloads in both formats, duplicates and bad lines, through the binary.

use std::io::Write;
use std::process::Command;

use gapless_storage::quarantine::read_entries;
use gapless_storage::reader::RangeReader;
use gapless_storage::Key;

const NATIVE: &str = include_str!("../storage/tests/fixtures/tweet_parser/original_format_examples.json");
const AS: &str = include_str!("../storage/tests/fixtures/tweet_parser/activity_streams_examples.json");

fn gapless(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gapless")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn field(summary: &str, name: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse::<u64>().unwrap()))
        .unwrap_or_else(|| panic!("no {name} in {summary}"))
}

#[test]
fn imports_gzip_zstd_and_plain_files_deduplicated_with_bad_lines_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    // Native Posts, gzipped, with CRLF line ends and a heartbeat.
    let gz = dir.path().join("native.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    for line in NATIVE.lines() {
        write!(enc, "{line}\r\n").unwrap();
    }
    enc.write_all(b"\r\n").unwrap();
    enc.finish().unwrap();
    // The same Posts in the Activity Streams format, zstd: duplicates.
    let zst = dir.path().join("as.ndjson.zst");
    std::fs::write(&zst, zstd::encode_all(AS.as_bytes(), 3).unwrap()).unwrap();
    // A plain file: the native Posts again, a cut line, a non-UTF-8 line, a
    // kind nobody knows, and a system message.
    let plain = dir.path().join("mixed.ndjson");
    let mut bad = NATIVE.lines().next().unwrap().as_bytes()[..100].to_vec();
    bad.push(b'\n');
    bad.extend_from_slice(b"{\"text\":\"caf\xe9\"}\n{\"new_kind\":{}}\n");
    bad.extend_from_slice(b"{\"info\":{\"message\":\"Replay Request Completed\",\"sent\":\"2017-07-18T23:30:00Z\"}}\n");
    let mut contents = NATIVE.as_bytes().to_vec();
    contents.extend_from_slice(&bad);
    std::fs::write(&plain, &contents).unwrap();

    let data = dir.path().join("data");
    let (ok, out, err) = gapless(&[
        "import".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--stream".as_ref(),
        "archive".as_ref(),
        gz.as_os_str(),
        zst.as_os_str(),
        plain.as_os_str(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(field(&out, "stored"), 25, "{out}");
    assert_eq!(field(&out, "duplicates"), 50, "{out}");
    assert_eq!(field(&out, "quarantined"), 3, "{out}");
    assert_eq!(field(&out, "system"), 1, "{out}");
    assert_eq!(field(&out, "heartbeats"), 1, "{out}");
    assert!(out.contains("activities/s"), "{out}");

    // The archive holds each Post once, byte for byte as in the native file
    // (it came first).
    let mut got = Vec::new();
    for batch in RangeReader::new(&data, "archive", 0..i64::MAX / 2) {
        for (e, b) in batch.unwrap().iter() {
            got.push((e.key, String::from_utf8(b.to_vec()).unwrap()));
        }
    }
    let mut expect: Vec<(Key, String)> = NATIVE
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (Key::Post(v["id_str"].as_str().unwrap().parse().unwrap()), l.to_string())
        })
        .collect();
    got.sort();
    expect.sort();
    assert_eq!(got, expect);

    let q = read_entries(&data.join("streams/archive/quarantine.log")).unwrap();
    assert_eq!(q.len(), 3);
    assert!(q.iter().any(|e| e.line == b"{\"text\":\"caf\xe9\"}" && e.reason.contains("UTF-8")));

    // Importing again stores nothing new.
    let (ok, out, _) = gapless(&[
        "import".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--stream".as_ref(),
        "archive".as_ref(),
        gz.as_os_str(),
    ]);
    assert!(ok);
    assert_eq!((field(&out, "stored"), field(&out, "duplicates")), (0, 25), "{out}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = gapless(&[
        "import".as_ref(),
        "--data".as_ref(),
        dir.path().as_os_str(),
        "--stream".as_ref(),
        "s".as_ref(),
        "/nonexistent.gz".as_ref(),
    ]);
    assert!(!ok);
    assert!(err.contains("/nonexistent.gz"), "{err}");
}

/// Compliance events in imported files go to the stream's ledger like
/// those of the stream, and `gapless compliance` reports them.
#[test]
fn imported_compliance_events_are_in_the_ledger_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let posts: Vec<serde_json::Value> = NATIVE.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (first, second) = (posts[0]["id_str"].as_str().unwrap(), posts[1]["user"]["id_str"].as_str().unwrap());
    let ms = posts[0]["timestamp_ms"].as_str().map_or(1_500_000_000_000, |t| t.parse::<i64>().unwrap());
    let mut file = NATIVE.to_string();
    file.push_str(&format!(
        "{{\"delete\":{{\"status\":{{\"id_str\":\"{first}\",\"user_id_str\":\"1\"}},\"timestamp_ms\":\"{ms}\"}}}}\n"
    ));
    file.push_str(&format!("{{\"user_protect\":{{\"id_str\":\"{second}\",\"timestamp_ms\":\"{ms}\"}}}}\n"));
    let path = dir.path().join("with-events.ndjson");
    std::fs::write(&path, file).unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = gapless(&[
        "import".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--stream".as_ref(),
        "a".as_ref(),
        path.as_os_str(),
    ]);
    assert!(ok, "{out}\n{err}");
    let events = gapless_storage::compliance::load(&data.join("streams/a")).unwrap();
    assert_eq!(events.source, gapless_storage::compliance::Source::Ledger);
    assert_eq!(events.events.len(), 2);
    let (ok, out, err) = gapless(&["compliance".as_ref(), "--data".as_ref(), data.as_os_str(), "--json".as_ref()]);
    assert!(ok, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &report["streams"][0];
    assert_eq!(s["stream"], "a");
    assert_eq!((s["events"]["delete"].as_u64(), s["events"]["user_protect"].as_u64()), (Some(1), Some(1)));
    assert_eq!((s["applied"]["deleted_posts"].as_u64(), s["applied"]["protected_users"].as_u64()), (Some(1), Some(1)));
    let (ok, text, _) = gapless(&["compliance".as_ref(), "--data".as_ref(), data.as_os_str()]);
    assert!(ok && text.contains("a: 2 events from the ledger"), "{text}");
}
