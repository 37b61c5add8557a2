//! Builds archives for the tools' tests with the storage API (as the
//! archiver would), in a tempdir. Shared with segment-export's tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use gapless_storage::coverage::{Counts, JobRecord, JobState};
use gapless_storage::store::{Store, StoreConfig, StreamWriter};
use gapless_storage::{Minute, Snowflake};

/// 2017-07-18T00:00:00Z.
pub const BASE: i64 = 1_500_336_000;

/// Opens the store again, waiting for sled to let go of the lock of the
/// previous opening (it does so a moment after the drop).
pub fn reopen(dir: &Path) -> Store {
    let start = std::time::Instant::now();
    loop {
        match Store::open(dir, StoreConfig::default()) {
            Ok(s) => return s,
            Err(e) if start.elapsed() < std::time::Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopen {}: {e}", dir.display()),
        }
    }
}

/// A Post's ID at `ms` (sequence `seq`).
pub fn post_id(ms: i64, seq: u16) -> u64 {
    Snowflake { time_ms: ms, machine: 7, sequence: seq }.to_id()
}

pub fn created_at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%a %b %d %H:%M:%S +0000 %Y").to_string()
}

/// A native-format Post.
pub fn post(ms: i64, seq: u16) -> String {
    let id = post_id(ms, seq);
    let user = 1000 + (seq as u64 % 17);
    format!(
        r#"{{"created_at":"{}","id":{id},"id_str":"{id}","text":"post {seq} at {ms} \u00e9t\u00e9","user":{{"id":{user},"id_str":"{user}","screen_name":"user{user}"}},"lang":"fr","timestamp_ms":"{ms}"}}"#,
        created_at(ms)
    )
}

/// A retweet of `of`, replying to `reply`, quoting `quoted`, with an extended full text.
pub fn rich_post(ms: i64, seq: u16, of: u64, reply: u64, quoted: u64) -> String {
    let id = post_id(ms, seq);
    format!(
        r#"{{"created_at":"{}","id":{id},"id_str":"{id}","text":"RT short","truncated":true,"extended_tweet":{{"full_text":"the full text, long"}},"in_reply_to_status_id":{reply},"in_reply_to_status_id_str":"{reply}","quoted_status_id_str":"{quoted}","retweeted_status":{{"id":{of},"id_str":"{of}","text":"orig","user":{{"id":1,"id_str":"1","screen_name":"orig"}}}},"user":{{"id":42,"id_str":"42","screen_name":"rich"}},"lang":"en","timestamp_ms":"{ms}"}}"#,
        created_at(ms)
    )
}

/// A Post delete of `id` at `ms`.
pub fn delete(id: u64, ms: i64) -> String {
    format!(
        r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":1000,"user_id_str":"1000"}},"timestamp_ms":"{ms}"}}}}"#
    )
}

/// Ingests `n` Posts spread over the minute starting at `minute_secs`; returns the lines.
pub fn fill_minute(w: &mut StreamWriter, minute_secs: i64, n: u16) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..n {
        let ms = minute_secs * 1000 + (i as i64 * 59_000) / n.max(1) as i64 + 17;
        let l = post(ms, i);
        w.ingest(l.as_bytes(), ms + 500).unwrap();
        lines.push(l);
    }
    lines
}

/// Covers `[from, to)` (seconds) for `partition` after a commit.
pub fn cover(store: &Store, w: &mut StreamWriter, stream: &str, partition: u32, from: i64, to: i64) {
    let (durable, _) = w.commit().unwrap();
    store.coverage().cover(&durable, stream, partition, from..to).unwrap();
}

/// The test archive of the inspect-coverage tests: stream `decahose` with
/// 2 partitions over 3 hours from BASE, 20 Posts a minute, and:
/// - partition 2 misses minutes 60..70 (a running job resumes at minute 62),
/// - partition 2 misses the second half of minute 90,
/// - minutes 100..105 are uncovered and marked lost,
/// - minute 150 has 2 Posts (suspect),
/// - minute 10 has 3 duplicates and a quarantined line,
/// - minute 20's counters are made unbalanced by hand.
///
/// Also stream `likes` (1 partition), complete over the same 3 hours.
pub fn build_mixed(dir: &Path) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let mut w = store.stream("decahose").unwrap();
    store.coverage().set_partitions("decahose", 2).unwrap();
    for m in 0..180 {
        let s = BASE + m * 60;
        let n = if m == 150 { 2 } else { 20 };
        let lines = fill_minute(&mut w, s, n);
        if m == 10 {
            for l in &lines[..3] {
                w.ingest(l.as_bytes(), s * 1000 + 59_000).unwrap();
            }
            w.ingest(b"{not json", s * 1000 + 30_000).unwrap();
        }
    }
    let (durable, _) = w.commit().unwrap();
    let cov = store.coverage();
    let t = |m: i64| BASE + m * 60;
    cov.cover(&durable, "decahose", 1, t(0)..t(100)).unwrap();
    cov.cover(&durable, "decahose", 1, t(105)..t(180)).unwrap();
    cov.cover(&durable, "decahose", 2, t(0)..t(60)).unwrap();
    cov.cover(&durable, "decahose", 2, t(70)..t(90) + 30).unwrap();
    cov.cover(&durable, "decahose", 2, t(91)..t(100)).unwrap();
    cov.cover(&durable, "decahose", 2, t(105)..t(180)).unwrap();
    cov.mark_lost("decahose", t(100)..t(105)).unwrap();
    let id = cov.new_job_id().unwrap();
    cov.put_job(&JobRecord {
        id,
        stream: "decahose".into(),
        partition: Some(2),
        start_secs: t(60),
        end_secs: t(70),
        resume_secs: t(62),
        state: JobState::Running,
        attempts: 1,
    })
    .unwrap();
    cov.add_counts("decahose", Minute::of_secs(t(20)), Counts { received: 2, stored: 1, ..Counts::default() }).unwrap();
    let mut likes = store.stream("likes").unwrap();
    cov.set_partitions("likes", 1).unwrap();
    let (d, _) = likes.commit().unwrap();
    cov.cover(&d, "likes", 1, t(0)..t(180)).unwrap();
    cov.flush().unwrap();
}

/// A complete single-partition archive of `minutes` minutes from BASE, `per_minute` Posts each.
pub fn build_complete(dir: &Path, minutes: i64, per_minute: u16) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let mut w = store.stream("decahose").unwrap();
    store.coverage().set_partitions("decahose", 1).unwrap();
    for m in 0..minutes {
        fill_minute(&mut w, BASE + m * 60, per_minute);
    }
    cover(&store, &mut w, "decahose", 1, BASE, BASE + minutes * 60);
    store.coverage().flush().unwrap();
}

/// A one-request-at-a-time stand-in for the archiver's admin API, serving
/// the report built by the library (as the archiver would).
pub fn serve_admin(
    map: std::sync::Arc<gapless_storage::coverage::CoverageMap>,
    requests: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short");
                got.extend_from_slice(&buf[..n]);
            }
            let req = String::from_utf8_lossy(&got).to_string();
            let target = req.split_whitespace().nth(1).unwrap().to_string();
            seen.push(target.clone());
            let (path, qs) = target.split_once('?').unwrap_or((&target, ""));
            // Like the archiver: no window given, the server picks one (here the
            // first hour from BASE, as a scaled clock might).
            let parsed = if qs.contains("from=") {
                gapless_report::query::Query::from_query_string(qs)
            } else {
                gapless_report::query::Query::from_query_string(&format!("{qs}&from={BASE}&to={}", BASE + 3600))
            };
            let (code, body) = match (path, parsed) {
                ("/coverage", Ok(q)) => {
                    let r = gapless_report::build::build(&map, &q, "archiver", "test").unwrap();
                    ("200 OK", serde_json::to_string(&r).unwrap())
                }
                (_, Err(e)) => ("400 Bad Request", e.to_string()),
                _ => ("404 Not Found", "no".into()),
            };
            // Chunked, as a real server may answer.
            let mut resp =
                format!("HTTP/1.1 {code}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            for chunk in body.as_bytes().chunks(1000) {
                resp.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), std::str::from_utf8(chunk).unwrap()));
            }
            resp.push_str("0\r\n\r\n");
            s.write_all(resp.as_bytes()).unwrap();
        }
        seen
    });
    (url, h)
}

/// Evicts `stream`'s segment of the minute starting at `minute_secs`, as the
/// archiver does once its copy in the bucket is verified (`[archive]
/// local_max`): a marker in its place, the segment gone; coverage and
/// counters stay. With `late`, a Post arrives afterwards (late data): the
/// minute has a segment again, holding that Post only.
pub fn evict(dir: &Path, stream: &str, minute_secs: i64, late: bool) {
    use std::os::unix::fs::MetadataExt;
    let store = reopen(dir);
    let mut w = store.stream(stream).unwrap();
    let minute = Minute::of_secs(minute_secs);
    let seg = gapless_storage::layout::segment_path(&gapless_storage::layout::stream_dir(dir, stream), minute);
    let meta = std::fs::metadata(&seg).unwrap();
    let marker = format!(
        r#"{{"format":"gapless.evicted/1","key":"archive/sites/east/streams/{stream}/segments/x.seg","bytes":{},"crc32c":0}}"#,
        meta.len()
    );
    assert!(w.evict(minute, meta.ino(), meta.len(), marker.as_bytes()).unwrap(), "evicted {minute}");
    if late {
        let ms = minute_secs * 1000 + 59_500;
        w.ingest(post(ms, 999).as_bytes(), ms).unwrap();
        w.commit().unwrap();
        assert!(seg.exists(), "late data starts a segment again");
    }
    store.coverage().flush().unwrap();
}
