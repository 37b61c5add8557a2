//! Max-speed mode serves the same activities as the generator, at once.

mod common;

use std::time::Duration;

use common::*;
use stream_sim::generator::Generator;
use stream_sim::truth::truth_lines;
use stream_sim::{StreamKind, StreamSpec};

#[tokio::test]
async fn max_speed_serves_truth_and_ends() {
    let cfg = config(1.0, 50.0);
    let s = stream_sim::maxspeed::start(cfg, "127.0.0.1:0".parse().unwrap(), 20).await.unwrap();
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let (items, end) = rd.collect(Duration::from_secs(20)).await;
    assert_eq!(end, Item::End);
    let got: Vec<String> = lines_of(&items).iter().map(|l| key_of(l).0).collect();
    let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
    spec.rate = 50.0;
    let want = truth_lines(&Generator::new(42, &spec), start_ms(), start_ms() + 20_000, Some(1));
    assert!(want.len() > 300);
    assert_eq!(got, want);
}

#[tokio::test]
async fn bench_reports_a_throughput() {
    let r = stream_sim::maxspeed::bench(config(1.0, 100.0), 5).await.unwrap();
    assert!(r.activities > 300);
    assert!(r.wire_bytes > 100_000 && r.wire_bytes < r.raw_bytes);
}
