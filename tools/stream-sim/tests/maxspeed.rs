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
    let s = stream_sim::maxspeed::start(cfg, "127.0.0.1:0".parse().unwrap(), Duration::from_secs(20)).await.unwrap();
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

/// On the system clock (whose start is the epoch), max-speed content begins
/// at the stream time the server starts, not in 1970.
#[tokio::test]
async fn max_speed_on_the_system_clock_serves_the_present() {
    let mut cfg = stream_sim::SimConfig::new(42).with_rate(50.0);
    cfg.user = "u".into();
    cfg.password = "p".into();
    let before = chrono::Utc::now().timestamp_millis();
    let s = stream_sim::maxspeed::start(cfg, "127.0.0.1:0".parse().unwrap(), Duration::from_secs(5)).await.unwrap();
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let (items, end) = rd.collect(Duration::from_secs(20)).await;
    assert_eq!(end, Item::End);
    let times: Vec<i64> = lines_of(&items).iter().map(|l| key_of(l).1).collect();
    assert!(!times.is_empty());
    for t in times {
        assert!((before - 60_000..before + 60_000).contains(&t), "activity time {t}, server started at {before}");
    }
}

/// `stream-sim bench`: the discarding clients of the binary read the whole
/// max-speed body, compressed.
#[test]
fn bench_reports_a_throughput() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stream-sim"))
        .args(["bench", "--span", "5s", "--rate", "100", "--clock-start", "2026-01-01T12:00:00Z"])
        .env("RUST_LOG", "stream_sim=warn")
        .output()
        .expect("run stream-sim bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // "N activities, X MB raw, Y MB gzip on the wire, in T s: ..."
    let fields: Vec<&str> = text.split(", ").collect();
    let num = |i: usize| -> f64 {
        fields.get(i).and_then(|f| f.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{text}"))
    };
    let (activities, raw_mb, wire_mb) = (num(0), num(1), num(2));
    assert!(activities > 300.0, "{text}");
    assert!(wire_mb >= 0.1 && wire_mb < raw_mb, "{text}");
}

/// `bench --span` takes a duration of the one grammar (and `--seconds`, its
/// old name, a whole number of seconds): the content is exactly that span of
/// stream time; a bad one is a usage error naming the flag.
#[test]
fn bench_span_is_a_duration() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stream-sim"))
            .args(["bench", "--rate", "100", "--clock-start", START])
            .args(args)
            .env("RUST_LOG", "stream_sim=warn")
            .output()
            .expect("run stream-sim bench")
    };
    let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
    spec.rate = 100.0;
    let truth = |ms: i64| truth_lines(&Generator::new(1, &spec), start_ms(), start_ms() + ms, None).len();
    for (args, ms) in [(["--span", "1500ms"], 1500), (["--span", "0.05m"], 3000), (["--seconds", "2"], 2000)] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let n: usize = text.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(n, truth(ms), "{args:?}: {text}");
    }
    let out = run(&["--span", "5 parsecs"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--span") && err.contains("5 parsecs"), "{err}");
}
