//! Faults injected from a TOML script, observed by a real client.

mod common;

use std::time::Duration;

use common::*;
use stream_sim::clock::api_time;
use stream_sim::faults::FaultPlan;
use stream_sim::StreamKind;

fn with_faults(speed: f64, rate: f64, script: &str) -> stream_sim::SimConfig {
    let mut cfg = config(speed, rate);
    cfg.faults = FaultPlan::from_toml(script, start_ms(), 42).expect("fault script");
    cfg
}

#[tokio::test]
async fn stall_sends_nothing_not_even_heartbeats() {
    // Heartbeats only (rate 0); speed 10: a heartbeat every second of wall time.
    let cfg = with_faults(
        10.0,
        0.0,
        r#"
        [[fault]]
        at = "+15s"
        duration = "30s"
        kind = "stall"
        stream = "sample10/prod"
        partition = 1
        "#,
    );
    let clock = cfg.clock;
    let s = server(cfg).await;
    let mut p1 = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let mut p2 = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=2")).await);
    let c2 = clock;
    let t2 = tokio::spawn(async move {
        let mut max_gap = 0;
        let mut last = c2.now_ms();
        let mut beats = 0;
        while c2.now_ms() < start_ms() + 60_000 {
            assert_eq!(p2.next(Duration::from_secs(5)).await, Item::Heartbeat);
            beats += 1;
            let now = c2.now_ms();
            max_gap = max_gap.max(now - last);
            last = now;
        }
        assert!(beats >= 4, "{beats} heartbeats");
        max_gap
    });
    let mut gaps = Vec::new();
    let mut last = clock.now_ms();
    while clock.now_ms() < start_ms() + 60_000 {
        assert_eq!(p1.next(Duration::from_secs(8)).await, Item::Heartbeat);
        let now = clock.now_ms();
        gaps.push((last, now - last));
        last = now;
    }
    let (at, longest) = gaps.iter().copied().max_by_key(|g| g.1).unwrap();
    assert!(longest >= 30_000, "a silence of the stall's length, got {longest} ms at {}", api_time(at));
    assert!(t2.await.unwrap() < 15_000, "the other partition keeps its heartbeats");
}

#[tokio::test]
async fn drop_cuts_connections_for_its_window() {
    let cfg = with_faults(
        10.0,
        5.0,
        r#"
        [[fault]]
        at = "+5s"
        duration = "20s"
        kind = "drop"
        stream = "sample10/prod"
        "#,
    );
    let clock = cfg.clock;
    let s = server(cfg).await;
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let (_, end) = rd.collect(Duration::from_secs(10)).await;
    assert!(matches!(end, Item::Error(_)), "cut, not a clean end: {end:?}");
    let cut_at = clock.now_ms();
    assert!(cut_at >= start_ms() + 5_000, "not before the window");
    // Inside the window a new connection is cut at once.
    if clock.now_ms() < start_ms() + 20_000 {
        let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=2")).await);
        let (_, end) = rd.collect(Duration::from_secs(5)).await;
        assert!(matches!(end, Item::Error(_)), "{end:?}");
    }
    clock.sleep_until(start_ms() + 26_000).await;
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    assert_eq!(rd.collect(Duration::from_millis(1500)).await.1, Item::Timeout, "stays up after the window");
}

#[tokio::test]
async fn unavailable_503_and_rate_limit_storm_429() {
    let cfg = with_faults(
        10.0,
        1.0,
        r#"
        [[fault]]
        at = "+0s"
        duration = "10s"
        kind = "unavailable"
        stream = "sample10/prod"

        [[fault]]
        at = "+0s"
        duration = "10s"
        kind = "rate_limit"
        stream = "sample10/dev"
        "#,
    );
    let clock = cfg.clock;
    let s = server(cfg).await;
    let prod = url(&s, StreamKind::Sample10, "partition=1");
    let dev = s.url(StreamKind::Sample10, "acme", "dev") + "?partition=1";
    assert_eq!(get(&prod).await.status(), 503);
    assert_eq!(get(&dev).await.status(), 429);
    clock.sleep_until(start_ms() + 11_000).await;
    assert_eq!(get(&prod).await.status(), 200);
    assert_eq!(get(&dev).await.status(), 200);
}

#[tokio::test]
async fn cut_line_and_corrupt_gzip_fail_the_client() {
    let cfg = with_faults(
        10.0,
        20.0,
        r#"
        [[fault]]
        at = "+5s"
        duration = "60s"
        kind = "cut_line"
        stream = "sample10/prod"

        [[fault]]
        at = "+5s"
        duration = "60s"
        kind = "corrupt_gzip"
        stream = "sample10/dev"
        "#,
    );
    let s = server(cfg).await;
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let (items, end) = rd.collect(Duration::from_secs(10)).await;
    assert!(matches!(end, Item::Error(_)), "{end:?}");
    for l in lines_of(&items) {
        key_of(&l); // every complete line is whole JSON
    }
    let dev = s.url(StreamKind::Sample10, "acme", "dev") + "?partition=1";
    let mut rd = Reader::new(get(&dev).await);
    let (_, end) = rd.collect(Duration::from_secs(10)).await;
    assert!(matches!(end, Item::Error(_)), "{end:?}");
}

/// Reads a connection until stream time `until_ms`: the keys of its lines
/// and the stream times of its heartbeats. Anything else (an error, the
/// end) fails: the connection must stay up.
async fn read_until(rd: &mut Reader, clock: &stream_sim::Clock, until_ms: i64) -> (Vec<(String, i64)>, Vec<i64>) {
    let (mut keys, mut beats) = (Vec::new(), Vec::new());
    loop {
        match rd.next(clock.until(until_ms)).await {
            Item::Line(l, _) => keys.push(key_of(&l)),
            Item::Heartbeat => beats.push(clock.now_ms()),
            Item::Timeout => return (keys, beats),
            other => panic!("the connection stays up: {other:?}"),
        }
    }
}

/// Nothing of `[w0, w1)` was read, but what came before and after was.
fn assert_window_missing(keys: &[(String, i64)], w0: i64, w1: i64) {
    assert!(!keys.iter().any(|k| k.1 >= w0 && k.1 < w1), "nothing of the window on realtime");
    assert!(keys.iter().any(|k| k.1 < w0) && keys.iter().any(|k| k.1 >= w1));
}

#[tokio::test]
async fn drop_realtime_only_recovery_has_them_and_duplicates() {
    let cfg = with_faults(
        20.0,
        10.0,
        r#"
        [[fault]]
        at = "+10s"
        duration = "20s"
        kind = "drop_realtime"
        stream = "sample10/prod"

        [[fault]]
        at = "+40s"
        duration = "10s"
        kind = "duplicate"
        stream = "sample10/prod"
        "#,
    );
    let clock = cfg.clock;
    let s = server(cfg).await;
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let (keys, _) = read_until(&mut rd, &clock, start_ms() + 60_000).await;
    let (w0, w1) = (start_ms() + 10_000, start_ms() + 30_000);
    assert_window_missing(&keys, w0, w1);
    let mut uniq = keys.iter().map(|k| &k.0).collect::<Vec<_>>();
    uniq.sort();
    let before = uniq.len();
    uniq.dedup();
    assert!(before > uniq.len(), "a duplicate burst");
    // Recovery has the window.
    let q = format!("startTime={}&endTime={}&partition=1", api_time(w0), api_time(w1));
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, &q)).await);
    let (items, end) = rd.collect(Duration::from_secs(10)).await;
    assert_eq!(end, Item::End);
    let lines = lines_of(&items);
    assert!(lines.len() > 50);
    assert!(String::from_utf8_lossy(lines.last().unwrap()).contains("Recovery Request Completed"));
}

#[tokio::test]
async fn skip_keeps_the_connection_up_and_backfill_has_the_window() {
    let cfg = with_faults(
        20.0,
        10.0,
        r#"
        [[fault]]
        at = "+10s"
        duration = "20s"
        kind = "skip"
        stream = "sample10/prod"
        "#,
    );
    let clock = cfg.clock;
    let s = server(cfg).await;
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1")).await);
    let (w0, w1) = (start_ms() + 10_000, start_ms() + 30_000);
    let (keys, beats) = read_until(&mut rd, &clock, start_ms() + 45_000).await;
    assert!(beats.iter().any(|t| (w0 + 2_000..w1).contains(t)), "heartbeats go on during the window");
    assert_window_missing(&keys, w0, w1);
    // A connection made after the window backfills it.
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, "partition=1&backfillMinutes=1")).await);
    let mut window = 0;
    loop {
        match rd.next(Duration::from_secs(3)).await {
            Item::Line(l, _) => {
                let k = key_of(&l);
                window += usize::from(k.1 >= w0 && k.1 < w1);
                if k.1 >= w1 {
                    break;
                }
            }
            Item::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(window > 50, "the backfill has the window: {window}");
}

#[tokio::test]
async fn break_recovery_cuts_without_completion() {
    let mut cfg = with_faults(
        10.0,
        10.0,
        r#"
        [[fault]]
        at = "+2s"
        duration = "1h"
        kind = "break_recovery"
        "#,
    );
    cfg.recovery_pace = 1.0;
    let clock = cfg.clock;
    let s = server(cfg).await;
    let now = clock.now_ms();
    let q = format!("startTime={}&endTime={}", api_time(now - 600_000), api_time(now - 300_000));
    let mut rd = Reader::new(get(&url(&s, StreamKind::Sample10, &q)).await);
    let (items, end) = rd.collect(Duration::from_secs(10)).await;
    assert!(matches!(end, Item::Error(_)), "{end:?}");
    assert!(!lines_of(&items).iter().any(|l| String::from_utf8_lossy(l).contains("Recovery Request Completed")));
}

#[tokio::test]
async fn slow_drip_sends_small_pieces() {
    let cfg = with_faults(
        1.0,
        50.0,
        r#"
        [[fault]]
        at = "+0s"
        duration = "1h"
        kind = "slow_drip"
        stream = "sample10/prod"
        "#,
    );
    let s = server(cfg).await;
    // Read the raw (compressed) body to see the pieces as sent.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut r = raw
        .get(url(&s, StreamKind::Sample10, "partition=1"))
        .basic_auth("u", Some("p"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut total = 0;
    let mut pieces = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), r.chunk()).await {
            Ok(Ok(Some(b))) => {
                assert!(b.len() <= 64, "a piece of {} bytes", b.len());
                total += b.len();
                pieces += 1;
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
    }
    // 25 ms apart: at most ~80 pieces in 2 s, however much is due.
    assert!(pieces > 10 && pieces <= 90, "{pieces} pieces");
    assert!(total > 500);
}

#[tokio::test]
async fn a_fault_can_target_one_connection() {
    // Two redundant connections; only the first accepted one is dropped.
    let cfg = with_faults(
        10.0,
        5.0,
        r#"
        [[fault]]
        at = "+3s"
        duration = "1h"
        kind = "drop"
        stream = "sample10/prod"
        connection = 1
        "#,
    );
    let s = server(cfg).await;
    let u = url(&s, StreamKind::Sample10, "partition=1");
    let mut first = Reader::new(get(&u).await);
    let mut second = Reader::new(get(&u).await);
    let (_, end) = first.collect(Duration::from_secs(10)).await;
    assert!(matches!(end, Item::Error(_)), "{end:?}");
    let (items, end) = second.collect(Duration::from_secs(2)).await;
    assert_eq!(end, Item::Timeout, "the redundant connection stays up");
    assert!(!lines_of(&items).is_empty());
}
