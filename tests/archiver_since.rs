//! `--since`: a new archive owes coverage from a time before its first
//! start (inside the recovery window), and the planner recovers that
//! history until it is complete.

mod common;

use std::time::Duration;

use common::*;
use gapless::archiver::{self, Options};
use gapless::config::Config;
use gapless_storage::coverage::Coverage;
use gapless_storage::Minute;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_a_time_is_recovered() {
    let h = Harness::launch(Setup::new(23, 30.0, 60.0)).await;
    let mut config = Config::parse(&h.config_text, h.dir.path()).unwrap();
    config.data = h.data();
    let since = h.start_ms / 1000 - 20 * 60;
    let running =
        archiver::start(Options { config, clock: h.clock(), since_secs: Some(since), fs: None }).await.unwrap();
    h.until_minute(6.0).await;
    // The history is recovered as fast as this machine goes: wait for it
    // (generously) rather than for a fixed stream time.
    until_full(&h, running.admin.unwrap(), "decahose", -20, 4, Duration::from_secs(90)).await;
    running.stop().await.unwrap();

    let (from, to) = (Minute::of_secs(since), Minute(Minute::of_ms(h.start_ms).0 + 4));
    let states = full_minutes(&h.data(), "decahose", from, to);
    assert_eq!(states.len(), 24);
    let not_full: Vec<_> = states.iter().filter(|(_, c)| *c != Coverage::Full).collect();
    assert!(not_full.is_empty(), "{not_full:?}");
    // Every activity once, with the exact bytes stream-sim sent.
    let d = h.diff("decahose", from.0, to.0);
    assert!(d.is_exact(), "{d}");
}
