//! Redundant connections: two per partition, each a full copy. The ID index
//! merges them (every activity stored once), coverage is their union, so a
//! stall of one connection leaves no hole.

mod common;

use std::time::Duration;

use common::*;
use gapless::archiver::{self, Options};
use gapless::config::Config;
use gapless::metrics::StreamMetrics;
use gapless_storage::coverage::Coverage;
use gapless_storage::Minute;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redundant_connections_merge_and_cover_for_each_other() {
    let h =
        Harness::launch(Setup::new(31, 30.0, 60.0).faults(&script(&[fault("stall", "+2m", "3m").connection(1)]))).await;
    let text = h.config_text.replace("kind = \"decahose\"", "kind = \"decahose\"\nconnections_per_partition = 2");
    let mut config = Config::parse(&text, h.dir.path()).unwrap();
    config.data = h.data();
    let running = archiver::start(Options { config, clock: h.clock(), since_secs: None, fs: None }).await.unwrap();
    h.until_minute(8.0).await;
    until_full(&h, running.admin.unwrap(), "decahose", 1, 7, Duration::from_secs(60)).await;
    let m = running.metrics.streams[0].clone();
    running.stop().await.unwrap();
    let sim_sent = h.sim_sent("decahose");

    let (from, to) = (Minute(Minute::of_ms(h.start_ms).0 + 1), Minute(Minute::of_ms(h.start_ms).0 + 7));
    let states = full_minutes(&h.data(), "decahose", from, to);
    assert!(states.iter().all(|(_, c)| *c == Coverage::Full), "{states:?}");
    // Every activity once, with the exact bytes stream-sim sent.
    let d = h.diff("decahose", from.0, to.0);
    assert!(d.is_exact(), "{d}");
    // Copies came from both connections and were stored once. How many
    // depends on how long each connection was up (a busy machine
    // reconnects), so the count is bounded by what stream-sim sent.
    let (stored, dups) = (StreamMetrics::get(&m.stored), StreamMetrics::get(&m.duplicates));
    assert!(dups > 0, "stored {stored}, duplicates {dups}");
    assert!(stored + dups <= sim_sent, "stored {stored} + dropped {dups} > {sim_sent} lines stream-sim sent");
    assert!(m.reconnects.lock().unwrap().values().sum::<u64>() >= 1, "the stalled connection was detected");
}
