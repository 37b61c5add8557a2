//! The archiver against what the network may send it: a server that
//! promises Backfill and never delivers it, lines that never end, gzip
//! bombs. Each test compares what the archiver reports `full` with what the
//! server really generated (stream-sim's ground truth, or the test server's
//! own record).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rawserver::{Body, Part, RawServer};
use common::*;
use gapless::archiver::{self, Options, Running};
use gapless::clock::Clock;
use gapless::config::Config;

const RATE: f64 = 10.0;
const SPEED: f64 = 200.0;

fn reconnects(m: &gapless::metrics::Metrics, cause: &str) -> u64 {
    m.streams[0].reconnects.lock().unwrap().get(cause).copied().unwrap_or(0)
}

/// Issue 9, item 12: the server stalls (no byte at all), accepts the
/// reconnects made meanwhile with `backfillMinutes` 1 to 5 but never sends
/// that backfill, then resumes realtime. The stream is configured without
/// `data_silence` (the default), as in the report. No minute may be
/// reported full while it misses an activity of the truth, and the hole is
/// then repaired by Recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_that_never_comes_is_a_hole_repaired_by_recovery() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    // Longer than Backfill's five minutes: a reconnect after the stall
    // cannot backfill all of it (one during it gets nothing), so Recovery
    // has to repair its start, however the reconnects fall.
    let faults = &script(&[fault("stall_skip", "+10m", "7m")]);
    let mut h = Harness::launch(Setup::new(31, RATE, SPEED).faults(faults)).await;
    h.config_text = h.config_text.replace(r#"liveness = { silence = "30s", data_silence = "5s" }"#, "");
    assert!(!h.config_text.contains("data_silence"), "{}", h.config_text);
    let h = Arc::new(h);
    let running = h.archiver().await;
    let admin = running.admin.expect("admin API");
    let metrics = running.metrics.clone();
    let end = 24;
    let watch = Watch::start(&h, admin, &["decahose"], 1, end);
    h.until_minute(end as f64).await;
    until_full(&h, admin, "decahose", 1, end, Duration::from_secs(30)).await;
    let w = watch.finish().await;
    running.stop().await.unwrap();
    h.assert_complete("decahose", 1, end);
    // The fault happened: connections stalled and reconnected with backfill
    // during it, and the hole was closed by Recovery, not by a promise.
    assert!(reconnects(&metrics, "network") >= 2, "{:?}", metrics.streams[0].reconnects);
    let backfilled = logs()
        .lines()
        .filter(|l| l.contains("connected") && l.contains("backfill_minutes=") && !l.contains("backfill_minutes=0"))
        .count();
    assert!(backfilled >= 2, "reconnects during the stall asked for backfill:\n{}", log_tail(40));
    assert!(logs().contains("recovery completed"), "the stall's hole is repaired by Recovery:\n{}", log_tail(40));
    assert!(w.rounds >= 3, "coverage was checked against the truth at only {} points", w.rounds);
}

/// The archiver, on the system clock, on the raw server's one stream (a
/// PowerTrack stream without Backfill or Recovery: nothing but the input).
async fn archive_raw(server: &RawServer, liveness: &str) -> (tempfile::TempDir, Running) {
    archive_raw_on(server, liveness, None).await
}

/// [`archive_raw`] on a filesystem that may fail.
async fn archive_raw_on(
    server: &RawServer,
    liveness: &str,
    fs: Option<Arc<dyn gapless_storage::io::Filesystem>>,
) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("creds"), "u:p").unwrap();
    let text = format!(
        r#"
data = "data"
credentials = {{ file = "creds" }}
[[stream]]
label = "raw"
kind = "powertrack"
url = "http://{}/stream.json"
backfill = false
recovery = {{ enabled = false }}
liveness = {liveness}
"#,
        server.addr
    );
    let config = Config::parse(&text, dir.path()).unwrap();
    let running = archiver::start(Options { config, clock: Clock::system(), since_secs: None, fs }).await.unwrap();
    (dir, running)
}

/// Issue 9, item 7: a full disk stops coverage and growth. Past the
/// pending cap the storage thread takes no more data, and the connection,
/// unable to hand on what it reads, is closed (not held open unread).
/// Nothing pending is dropped: once the disk has room, every activity the
/// archiver accepted is in the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_closes_the_connection_and_loses_nothing_pending() {
    use gapless_storage::io::{Fault, FaultyFs, Op, Rule};
    let _g = serial().await;
    capture_logs();
    clear_logs();
    // ~84 MB of Posts on the first connection: more than the pending cap.
    let server = RawServer::start(|_| Body { gzip: true, parts: vec![Part::Posts(700_000), Part::Heartbeats] }).await;
    let fs = FaultyFs::new();
    fs.fail(Rule::always(Op::Write, ".seg", Fault::NoSpace));
    let (dir, running) = archive_raw_on(&server, r#"{ silence = "3s" }"#, Some(fs.shared())).await;
    let m = running.metrics.streams[0].clone();
    wait_for("the connection closed on blocked storage", Duration::from_secs(120), || {
        logs().contains("STORAGE BLOCKED") && logs().contains("reason=StorageBlocked")
    })
    .await;
    let accepted = counter(&m.stored);
    assert!(accepted > 0);
    fs.heal();
    wait_for("storage unblocked", Duration::from_secs(60), || logs().contains("storage unblocked")).await;
    running.stop().await.unwrap();
    let stored = counter(&m.stored);
    let in_archive: usize = gapless_storage::reader::RangeReader::new(&dir.path().join("data"), "raw", 0..i64::MAX)
        .map(|b| b.unwrap().len())
        .sum();
    assert_eq!(in_archive as u64, stored, "every activity accepted is in the archive");
    assert!(stored >= accepted);
}

fn counter(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// The entries of a quarantine file: (length, reason, bytes kept).
fn quarantine(path: &std::path::Path) -> Vec<(usize, String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let nl = at + bytes[at..].iter().position(|&b| b == b'\n').unwrap();
        let head = String::from_utf8_lossy(&bytes[at..nl]).into_owned();
        let mut f = head.splitn(4, ' ');
        assert_eq!(f.next(), Some("Q1"), "{head}");
        let _received = f.next();
        let len: usize = f.next().unwrap().parse().unwrap();
        let reason = f.next().unwrap_or("").to_string();
        out.push((len, reason, bytes[nl + 1..nl + 1 + len].to_vec()));
        at = nl + 1 + len + 1;
    }
    out
}

/// A line of `LONG` bytes without a newline until its end, then more Posts.
const LONG: u64 = 200_000_000;
/// What a connection's reader may hold: four times the 1 MiB line limit.
const CAP: u64 = 4 << 20;

async fn a_long_line_is_cut_and_quarantined_with_its_true_length(gzip: bool) {
    let _g = serial().await;
    let server = RawServer::start(move |_| Body {
        gzip,
        parts: vec![
            Part::Posts(10),
            Part::Data(b"{\"text\":\"".to_vec()),
            Part::Filler { byte: b'x', len: LONG - 9 },
            Part::Data(b"\r\n".to_vec()),
            Part::Posts(10),
            Part::Heartbeats,
        ],
    })
    .await;
    let (dir, running) = archive_raw(&server, r#"{ silence = "10s" }"#).await;
    let m = running.metrics.streams[0].clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !(counter(&m.stored) >= 20 && counter(&m.quarantined) >= 1) {
        assert!(Instant::now() < deadline, "stored {}, quarantined {}", counter(&m.stored), counter(&m.quarantined));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await.unwrap();
    assert_eq!(server.connections(), 1, "one connection read it all");
    assert_eq!(counter(&m.stored), 20, "the Posts before and after the long line are stored");
    let peak = m.read_buffer_peak.load(Ordering::Relaxed);
    assert!(peak > 0 && peak <= CAP, "the reader held {peak} bytes at once (cap {CAP})");
    let q = quarantine(&dir.path().join("data/streams/raw/quarantine.log"));
    assert_eq!(q.len(), 1, "{:?}", q.iter().map(|e| (e.0, &e.1)).collect::<Vec<_>>());
    let (len, reason, kept) = &q[0];
    assert!(reason.contains(&format!("line too long: {LONG} bytes")), "{reason}");
    assert_eq!(*len, gapless::lines::QUARANTINE_PREFIX_BYTES, "only a prefix is kept");
    assert!(kept.starts_with(b"{\"text\":\"xxxx"));
}

/// Issue 9, item 5: a 200 MB line without a newline does not grow the
/// reader past its cap; it is quarantined (a prefix) with its true length,
/// and the lines after it are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_line_stays_within_the_cap() {
    a_long_line_is_cut_and_quarantined_with_its_true_length(false).await;
}

/// The same line gzipped: a gzip bomb (200 MB from about 200 KB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_stays_within_the_cap() {
    a_long_line_is_cut_and_quarantined_with_its_true_length(true).await;
}

/// A stall in the middle of a long line is a stall: the connection is
/// replaced, the cut line is quarantined as incomplete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_in_the_middle_of_a_long_line_is_detected() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    let server = RawServer::start(|n| Body {
        gzip: true,
        parts: if n == 1 {
            vec![Part::Posts(5), Part::Filler { byte: b'x', len: 5_000_000 }, Part::Pause(Duration::from_secs(600))]
        } else {
            vec![Part::Posts(5), Part::Heartbeats]
        },
    })
    .await;
    let (dir, running) = archive_raw(&server, r#"{ silence = "2s" }"#).await;
    let m = running.metrics.streams[0].clone();
    wait_for("a second connection", Duration::from_secs(60), || server.connections() >= 2 && counter(&m.stored) >= 10)
        .await;
    running.stop().await.unwrap();
    assert!(logs().contains("reason=Stalled"), "{}", log_tail(20));
    let q = quarantine(&dir.path().join("data/streams/raw/quarantine.log"));
    assert!(
        q.iter().any(|(len, why, _)| why.contains("incomplete line")
            && why.contains("5000000 bytes")
            && *len <= gapless::lines::QUARANTINE_PREFIX_BYTES),
        "{:?}",
        q.iter().map(|e| (e.0, &e.1)).collect::<Vec<_>>()
    );
}

/// A line that drips in for ever brings bytes but no activity: data
/// silence ends the connection all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_silence_is_detected_while_a_line_drips_in() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    let server = RawServer::start(|n| Body {
        gzip: false,
        parts: if n == 1 {
            vec![Part::Posts(5), Part::Drip { byte: b'x', piece: 1000, every: Duration::from_millis(100) }]
        } else {
            vec![Part::Posts(5), Part::Heartbeats]
        },
    })
    .await;
    let (_dir, running) = archive_raw(&server, r#"{ silence = "2s", data_silence = "2s" }"#).await;
    let m = running.metrics.streams[0].clone();
    wait_for("a second connection", Duration::from_secs(60), || server.connections() >= 2 && counter(&m.stored) >= 10)
        .await;
    running.stop().await.unwrap();
    assert!(logs().contains("reason=DataSilence"), "{}", log_tail(20));
}

/// Issue 9, item 11: behind a refusal window of 10 stream minutes (429 to
/// every request, Recovery included) that opens while a hole only Recovery
/// can fill is being made (so every Recovery request meets it until it
/// closes), the recorded jobs never overlap, and none is left once every
/// minute is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_recovery_leaves_no_overlapping_or_stale_jobs() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    let faults = &script(&[fault("drop_realtime", "+10m", "2m"), fault("rate_limit", "+660s", "10m")]);
    let h = Arc::new(Harness::launch(Setup::new(32, RATE, SPEED).faults(faults)).await);
    let running = h.archiver().await;
    let admin = running.admin.expect("admin API");
    let metrics = running.metrics.clone();
    let end = 32;
    let watch = Watch::start(&h, admin, &["decahose"], 1, end);
    // Every few hundred milliseconds: the recorded jobs do not overlap.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let h2 = h.clone();
    let checker = tokio::spawn(async move {
        let (mut overlaps, mut most) = (Vec::new(), 0);
        loop {
            let report = coverage(admin, "decahose", h2.minute(0), h2.minute(end)).await;
            let jobs = &stream_report(&report, "decahose").jobs;
            most = most.max(jobs.len());
            for (i, a) in jobs.iter().enumerate() {
                for b in &jobs[i + 1..] {
                    if a.resume_secs < b.end_secs && b.resume_secs < a.end_secs {
                        overlaps.push(format!("{} {}..{} and {} {}..{}", a.id, a.resume, a.end, b.id, b.resume, b.end));
                    }
                }
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        (overlaps, most)
    });
    h.until_minute(end as f64).await;
    until_full(&h, admin, "decahose", 1, end, Duration::from_secs(60)).await;
    until_report(&h, admin, "decahose", 1, end, Duration::from_secs(30), "without recorded jobs", |r| {
        r.jobs.is_empty()
    })
    .await;
    let _ = stop.send(true);
    let (overlaps, most) = checker.await.unwrap();
    let w = watch.finish().await;
    running.stop().await.unwrap();
    h.assert_complete("decahose", 1, end);
    assert!(overlaps.is_empty(), "recorded jobs overlapped: {overlaps:?}");
    assert!(reconnects(&metrics, "rate_limited") >= 1, "{:?}", metrics.streams[0].reconnects);
    assert!(logs().contains("recovery completed"), "the hole is repaired by Recovery:\n{}", log_tail(30));
    eprintln!("at most {most} jobs recorded at once; {} minutes verified", w.verified.len());
}
