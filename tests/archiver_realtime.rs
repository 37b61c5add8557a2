//! The archiver against stream-sim with no faults: every minute after the
//! first is full, and the archive equals the ground truth exactly.

mod common;

use std::time::Duration;

use common::*;
use gapless_storage::coverage::Coverage;
use gapless_storage::Minute;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stream_is_archived_exactly() {
    let h = Harness::launch(Setup::new(11, 40.0, 60.0)).await;
    let running = h.archiver().await;
    h.until_minute(8.0).await;
    // Minutes 1..7 are owed by now; a busy machine may still be committing
    // the last of them, so wait for them (generously) rather than for a
    // fixed stream time.
    until_full(&h, running.admin.unwrap(), "decahose", 1, 7, Duration::from_secs(60)).await;
    running.stop().await.unwrap();

    let from = Minute::of_ms(h.start_ms).0 + 1;
    let to = Minute::of_ms(h.start_ms).0 + 7;
    let states = full_minutes(&h.data(), "decahose", Minute(from), Minute(to));
    assert!(states.iter().all(|(_, c)| *c == Coverage::Full), "{states:?}");
    // Every activity once, with the exact bytes stream-sim sent.
    let d = h.diff("decahose", from, to);
    assert!(d.is_exact(), "{d}");

    // inspect-coverage's report of the same archive agrees: complete, and
    // its audit balances.
    let map = gapless_storage::coverage::CoverageMap::open(&h.data().join("coverage")).unwrap();
    let mut q = gapless_report::query::Query::new(from * 60, to * 60);
    q.now_secs = Some(to * 60 + 600);
    let report = gapless_report::build::build(&map, &q, "test", "0").unwrap();
    assert_eq!(report.status, gapless_report::schema::Status::Complete, "{:?}", report.streams[0].holes);
    assert!(report.streams.iter().all(|s| s.audit.unbalanced.is_empty()));
}
