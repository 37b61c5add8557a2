//! The archiver against what the network may send it: a server that
//! promises Backfill and never delivers it, lines that never end, gzip
//! bombs. Each test compares what the archiver reports `full` with what the
//! server really generated (stream-sim's ground truth, or the test server's
//! own record).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

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
    let _g = serial();
    capture_logs();
    clear_logs();
    let faults = r#"
[[fault]]
at = "+10m"
duration = "3m"
kind = "stall_skip"
stream = "sample10/prod"
"#;
    let mut h = Harness::launch(Setup::new(31, RATE, SPEED).faults(faults)).await;
    h.config_text = h.config_text.replace(r#"liveness = { silence = "30s", data_silence = "5s" }"#, "");
    assert!(!h.config_text.contains("data_silence"), "{}", h.config_text);
    let h = Arc::new(h);
    let running = h.archiver().await;
    let admin = running.admin.expect("admin API");
    let metrics = running.metrics.clone();
    let end = 20;
    let watch = Watch::start(&h, admin, &["decahose"], 1, end);
    h.until_minute(end as f64).await;
    until_full(&h, admin, "decahose", 1, end, Duration::from_secs(30)).await;
    let w = watch.finish().await;
    running.stop().await.unwrap();
    h.assert_complete("decahose", 1, end);
    // The fault happened: connections stalled and reconnected with backfill
    // during it, and the hole was closed by Recovery, not by a promise.
    assert!(reconnects(&metrics, "network") >= 2, "{:?}", metrics.streams[0].reconnects);
    let backfilled = logs().lines().filter(|l| l.contains("connected") && l.contains("backfill_minutes=") && !l.contains("backfill_minutes=0")).count();
    assert!(backfilled >= 2, "reconnects during the stall asked for backfill:\n{}", log_tail(40));
    assert!(logs().contains("recovery completed"), "the stall's hole is repaired by Recovery:\n{}", log_tail(40));
    assert!(w.rounds >= 3, "coverage was checked against the truth at only {} points", w.rounds);
}
