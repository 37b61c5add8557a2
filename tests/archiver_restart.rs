//! Downtime of the archiver itself is just a hole: stopped (in process) or
//! killed with SIGKILL (the real binary, as a child process), it starts
//! again, loses nothing that was covered, and repairs the hole: by Backfill
//! after a short downtime, by Recovery after a long one.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use gapless_storage::coverage::Coverage;
use gapless_storage::Minute;

const RATE: f64 = 10.0;
const SPEED: f64 = 200.0;

/// The minutes reported full by the running archiver over `[1, to)`.
async fn full_now(h: &Harness, admin: std::net::SocketAddr, to: i64) -> BTreeSet<i64> {
    full_in(&coverage(admin, "decahose", h.minute(1), h.minute(to)).await, "decahose").into_iter().collect()
}

/// With the archiver down: every minute in `full` is still full in the store
/// and still holds exactly the truth.
fn still_covered(h: &Harness, full: &BTreeSet<i64>) {
    let (first, last) = (*full.first().unwrap(), *full.last().unwrap());
    let states = full_minutes(&h.data(), "decahose", Minute(first), Minute(last + 1));
    for (m, c) in states {
        if full.contains(&m.0) {
            assert_eq!(c, Coverage::Full, "minute {} was full before the archiver went down", rfc3339(m.0 * 60));
            h.compare_minute("decahose", m.0).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_archiver_backfills_its_downtime_on_restart() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    let t0 = Instant::now();
    let h = Arc::new(Harness::launch(Setup::new(51, RATE, SPEED)).await);
    let running = h.archiver().await;
    let admin = running.admin.unwrap();
    let watch = Watch::start(&h, admin, &["decahose"], 1, 10);
    h.until_minute(10.0).await;
    // Minutes 1..8 are owed by now; wait for them rather than count on the
    // machine's speed.
    until_full(&h, admin, "decahose", 1, 8, Duration::from_secs(60)).await;
    let before = full_now(&h, admin, 10).await;
    watch.finish().await;
    running.stop().await.unwrap();
    assert!(before.len() >= 7, "{before:?}");
    still_covered(&h, &before);

    // Three minutes down (counted from the stop, whenever the wait above
    // ended): the restart backfills them.
    let down = h.minutes_now();
    h.until_minute(down + 3.0).await;
    clear_logs();
    let end = (down + 10.0).ceil() as i64;
    let running = h.archiver().await;
    let admin = running.admin.unwrap();
    let watch = Watch::start(&h, admin, &["decahose"], 1, end);
    h.until_minute(end as f64).await;
    until_full(&h, admin, "decahose", 1, end, Duration::from_secs(15)).await;
    let w = watch.finish().await;
    running.stop().await.unwrap();
    h.assert_complete("decahose", 1, end);
    let backfilled = logs().lines().any(|l| {
        l.contains("connected")
            && ["backfill_minutes=3", "backfill_minutes=4", "backfill_minutes=5"].iter().any(|b| l.contains(b))
    });
    let connects = log_lines(&["connected"]);
    assert!(backfilled, "the restart backfills the downtime; its connects:\n{connects:#?}\n{}", log_tail(20));
    eprintln!("{} minutes checked during the runs; {:.1} s wall", w.verified.len(), t0.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archiver_killed_with_sigkill_loses_nothing_and_recovers_its_downtime() {
    let _g = serial().await;
    let t0 = Instant::now();
    let h = Arc::new(Harness::launch(Setup::new(52, RATE, SPEED)).await);
    let mut child = h.spawn_binary().await;
    let watch = Watch::start(&h, child.admin, &["decahose"], 1, 12);
    h.until_minute(12.0).await;
    until_full(&h, child.admin, "decahose", 1, 10, Duration::from_secs(60)).await;
    let before = full_now(&h, child.admin, 12).await;
    watch.finish().await;
    // SIGKILL, in the middle of whatever it was writing.
    let down = h.minutes_now();
    child.child.kill().unwrap();
    let status = child.child.wait().unwrap();
    assert!(!status.success());
    let first_logs = child.logs();
    drop(child);
    assert!(before.len() >= 9, "{before:?}");
    // Nothing that was reported covered is lost.
    still_covered(&h, &before);

    // Eight minutes down: more than Backfill reaches, so Recovery repairs it.
    h.until_minute(down + 8.0).await;
    let end = (down + 16.0).ceil() as i64;
    let mut child = h.spawn_binary().await;
    let watch = Watch::start(&h, child.admin, &["decahose"], 1, end);
    h.until_minute(end as f64).await;
    until_full(&h, child.admin, "decahose", 1, end, Duration::from_secs(15)).await;
    let w = watch.finish().await;
    // SIGTERM: commit, record coverage, exit 0.
    let pid = child.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gapless did not exit after SIGTERM:\n{}", child.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}\n{}", child.logs());
    let second_logs = child.logs();
    drop(child);
    h.assert_complete("decahose", 1, end);
    assert!(first_logs.contains("connected"), "{first_logs}");
    assert!(second_logs.contains("recovery completed"), "the downtime is recovered:\n{second_logs}");
    eprintln!("{} minutes checked during the second run; {:.1} s wall", w.verified.len(), t0.elapsed().as_secs_f64());
}
