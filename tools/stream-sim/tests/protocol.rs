//! One test per protocol rule, against the real server on loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;
use stream_sim::StreamKind;

fn json_error(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON error body");
    v["error"]["message"].as_str().expect("error.message").to_string()
}

#[tokio::test]
async fn basic_auth_required_401() {
    let s = server(config(1.0, 5.0)).await;
    let u = url(&s, StreamKind::Sample10, "partition=1");
    let r = client().get(&u).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    json_error(&r.text().await.unwrap());
    let r = client().get(&u).basic_auth("u", Some("wrong")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client().get(&u).basic_auth("u", Some("p")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn gzip_required_406() {
    let s = server(config(1.0, 5.0)).await;
    let u = url(&s, StreamKind::Sample10, "partition=1");
    let plain = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = plain.get(&u).basic_auth("u", Some("p")).send().await.unwrap();
    assert_eq!(r.status(), 406);
    assert!(json_error(&r.text().await.unwrap()).contains("Accept-Encoding: gzip"));
    let r =
        plain.get(&u).basic_auth("u", Some("p")).header("accept-encoding", "gzip;q=0, identity").send().await.unwrap();
    assert_eq!(r.status(), 406);
    let r = get(&u).await;
    assert_eq!(r.status(), 200);
    // reqwest removes the header once it has decoded; check the raw one.
    let r = plain.get(&u).basic_auth("u", Some("p")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers().get("content-length").is_none(), "chunked, no length");
}

#[tokio::test]
async fn partition_required_and_validated_400() {
    let s = server(config(1.0, 5.0)).await;
    for q in ["", "partition=0", "partition=3", "partition=x", "partition=-1", "partition=1.0"] {
        let r = get(&url(&s, StreamKind::Sample10, q)).await;
        assert_eq!(r.status(), 400, "query {q:?}");
        json_error(&r.text().await.unwrap());
    }
    for q in ["partition=1", "partition=2"] {
        assert_eq!(get(&url(&s, StreamKind::Sample10, q)).await.status(), 200, "{q}");
    }
    // Firehose has 20 partitions, PowerTrack none, Likes 2.
    assert_eq!(get(&url(&s, StreamKind::Firehose, "partition=20")).await.status(), 200);
    assert_eq!(get(&url(&s, StreamKind::Firehose, "partition=21")).await.status(), 400);
    assert_eq!(get(&url(&s, StreamKind::PowerTrack, "")).await.status(), 200);
    assert_eq!(get(&url(&s, StreamKind::PowerTrack, "partition=1")).await.status(), 400);
    assert_eq!(get(&url(&s, StreamKind::Likes, "partition=2")).await.status(), 200);
    // Unknown paths.
    let r = get(&format!("http://{}/stream/nope/accounts/a/publishers/twitter/prod.json", s.addr())).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn backfill_minutes_bounds_400() {
    let mut cfg = config(1.0, 5.0);
    cfg.rate_limit = 100;
    let s = server(cfg).await;
    for n in ["0", "6", "1.5", "-1", "x", ""] {
        let r = get(&url(&s, StreamKind::Sample10, &format!("partition=1&backfillMinutes={n}"))).await;
        assert_eq!(r.status(), 400, "backfillMinutes={n}");
    }
    for n in 1..=5 {
        let r = get(&url(&s, StreamKind::Sample10, &format!("partition=2&backfillMinutes={n}"))).await;
        assert_eq!(r.status(), 200, "backfillMinutes={n}");
    }
}

#[tokio::test]
async fn backfill_starts_in_the_past() {
    let s = server(config(1.0, 20.0)).await;
    let now = s_now();
    let r = get(&url(&s, StreamKind::Sample10, "partition=1&backfillMinutes=2")).await;
    assert_eq!(r.status(), 200);
    let mut rd = Reader::new(r);
    let mut oldest = i64::MAX;
    let mut n = 0;
    while n < 200 {
        match rd.next(Duration::from_secs(10)).await {
            Item::Line(l, _) => {
                oldest = oldest.min(key_of(&l).1);
                n += 1;
            }
            Item::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    // Two minutes at ~10/s per partition arrive at once; the oldest is ~2 min old.
    assert!(oldest <= now - 115_000 && oldest >= now - 125_000, "oldest {} s ago", (now - oldest) / 1000);

    fn s_now() -> i64 {
        // The clock starts at START when the config is made; the server was
        // made just before.
        start_ms()
    }
}

#[tokio::test]
async fn heartbeat_after_ten_stream_seconds_of_silence() {
    // Rate 0: nothing but heartbeats. At speed 10, 10 s of stream = 1 s.
    let cfg = config(10.0, 0.0);
    let clock = cfg.clock;
    let s = server(cfg).await;
    let r = get(&url(&s, StreamKind::Sample10, "partition=1")).await;
    let mut rd = Reader::new(r);
    let mut beats = Vec::new();
    let begin = clock.now_ms();
    while beats.len() < 5 {
        match rd.next(Duration::from_secs(5)).await {
            Item::Heartbeat => beats.push(clock.now_ms()),
            other => panic!("expected heartbeats only, got {other:?}"),
        }
    }
    let mut prev = begin;
    for b in beats {
        let gap = b - prev;
        // Each heartbeat comes after 10 s of silence (a tick of slack, and
        // scheduling on a busy machine).
        assert!((9_000..=16_000).contains(&gap), "gap {gap} ms of stream time");
        prev = b;
    }
}

#[tokio::test]
async fn connection_rate_limit_429() {
    // Speed 30: the 60 s window is 2 s of wall time.
    let mut cfg = config(30.0, 1.0);
    cfg.streams.iter_mut().for_each(|s| s.max_connections = 100);
    let clock = cfg.clock;
    let s = server(cfg).await;
    let u = url(&s, StreamKind::Sample10, "partition=1");
    let t0 = clock.now_ms();
    let mut held = Vec::new();
    for i in 0..10 {
        let r = get(&u).await;
        assert_eq!(r.status(), 200, "request {i}");
        held.push(r);
    }
    let r = get(&u).await;
    let t1 = clock.now_ms();
    assert!(t1 - t0 < 60_000, "test too slow to check the window");
    assert_eq!(r.status(), 429);
    json_error(&r.text().await.unwrap());
    // Another account has its own budget, and so has another stream (label).
    let other_account = s.url(StreamKind::Sample10, "other", "prod") + "?partition=1";
    assert_eq!(get(&other_account).await.status(), 200);
    let other = s.url(StreamKind::Sample10, "acme", "dev") + "?partition=1";
    assert_eq!(get(&other).await.status(), 200);
    // Once the window has passed, connecting works again.
    clock.sleep_until(t0 + 61_000).await;
    assert_eq!(get(&u).await.status(), 200);
}

#[tokio::test]
async fn redundant_connections_oldest_forced_off() {
    let s = server(config(1.0, 2.0)).await;
    let u1 = url(&s, StreamKind::Sample10, "partition=1");
    let a = get(&u1).await;
    let b = get(&u1).await;
    let other = get(&url(&s, StreamKind::Sample10, "partition=2")).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let mut a = Reader::new(a);
    // Allow both to start, then a third connection to partition 1.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = get(&u1).await;
    assert_eq!(c.status(), 200);
    let (items, end) = a.collect(Duration::from_secs(10)).await;
    assert_eq!(end, Item::End, "the oldest is closed cleanly");
    let Some(Item::Line(last, bare_lf)) = items.last() else { panic!("no error line: {items:?}") };
    let v: serde_json::Value = serde_json::from_slice(last).unwrap();
    assert_eq!(
        v["error"]["message"].as_str().unwrap(),
        "Forced Disconnect: Too many connections. (Allowed Connections = 2)"
    );
    assert!(v["error"]["sent"].is_string());
    assert!(bare_lf, "error lines end with a bare \\n");
    // The others are still open.
    for r in [b, c, other] {
        let mut rd = Reader::new(r);
        assert!(matches!(rd.next(Duration::from_secs(1)).await, Item::Timeout | Item::Line(..) | Item::Heartbeat));
    }
}

#[tokio::test]
async fn activities_are_crlf_separated_and_flushed_at_once() {
    let cfg = config(1.0, 50.0);
    let clock = cfg.clock;
    let s = server(cfg).await;
    let r = get(&url(&s, StreamKind::Sample10, "partition=1")).await;
    let mut rd = Reader::new(r);
    let mut n = 0;
    let begin = Instant::now();
    while n < 20 {
        match rd.next(Duration::from_secs(10)).await {
            Item::Line(l, bare) => {
                assert!(!bare, "activities end with \\r\\n");
                let (key, t) = key_of(&l);
                assert!(key.starts_with("post ") || key.starts_with("delete ") || key.starts_with("compliance "));
                // Delivered within the bounded latency (plus a tick).
                let lag = clock.now_ms() - t;
                assert!((0..4_000).contains(&lag), "lag {lag} ms");
                n += 1;
            }
            Item::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    // 25/s per partition: 20 lines in about a second, not after a buffer fills.
    assert!(begin.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn curl_prints_posts_and_heartbeats() {
    let s = server(config(10.0, 0.3)).await;
    let u = url(&s, StreamKind::Sample10, "partition=1");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl").args(["-s", "--compressed", "-m", "3", "-u", "u:p", &u]).output()
    })
    .await
    .unwrap();
    let Ok(out) = out else {
        eprintln!("curl not installed; skipping");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"id_str\""), "a Post: {text:.200}");
    assert!(text.contains("\r\n\r\n") || text.starts_with("\r\n"), "a heartbeat");
}
