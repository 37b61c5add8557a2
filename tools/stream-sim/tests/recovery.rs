//! Recovery: order, completion, window, job limit, pace; and ground truth.

mod common;

use std::time::{Duration, Instant};

use common::*;
use stream_sim::clock::api_time;
use stream_sim::generator::Generator;
use stream_sim::truth::truth_lines;
use stream_sim::{StreamKind, StreamSpec};

fn recovery_query(from: i64, to: i64) -> String {
    format!("startTime={}&endTime={}", api_time(from), api_time(to))
}

fn truth(kind: StreamKind, rate: f64, from: i64, to: i64, partition: Option<u32>) -> Vec<String> {
    let mut spec = StreamSpec::new(kind, "prod");
    spec.rate = rate;
    truth_lines(&Generator::new(42, &spec), from, to, partition)
}

/// Read a whole recovery: the activity lines and the final info line.
async fn recover(url: &str) -> (Vec<Vec<u8>>, serde_json::Value) {
    let r = get(url).await;
    assert_eq!(r.status(), 200, "{url}");
    let mut rd = Reader::new(r);
    let (items, end) = rd.collect(Duration::from_secs(30)).await;
    assert_eq!(end, Item::End, "a recovery ends with a clean close");
    let mut lines = lines_of(&items);
    let info = lines.pop().expect("info line");
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    (lines, info)
}

#[tokio::test]
async fn recovery_replays_in_order_then_completes() {
    let s = server(config(1.0, 20.0)).await;
    let now = start_ms();
    let (from, to) = (now - 3_600_000, now - 3_600_000 + 150_000);
    let (lines, info) = recover(&url(&s, StreamKind::Sample10, &recovery_query(from, to))).await;
    assert_eq!(info["info"]["message"], "Recovery Request Completed");
    assert!(info["info"]["sent"].is_string());
    assert_eq!(info["info"]["activity_count"].as_u64(), Some(lines.len() as u64));
    let keys: Vec<(String, i64)> = lines.iter().map(|l| key_of(l)).collect();
    // Oldest first, chronological, inside the range.
    assert!(keys.windows(2).all(|w| w[0].1 <= w[1].1), "chronological");
    assert!(keys.iter().all(|k| k.1 >= from && k.1 < to));
    // Exactly the truth of the range, all partitions, in order.
    let got: Vec<String> = keys.into_iter().map(|k| k.0).collect();
    assert_eq!(got, truth(StreamKind::Sample10, 20.0, from, to, None));
    assert!(got.len() > 2500);
}

#[tokio::test]
async fn recovery_accepts_snake_case_and_a_partition() {
    let s = server(config(1.0, 20.0)).await;
    let now = start_ms();
    let (from, to) = (now - 600_000, now - 540_000);
    let q = format!("start_time={}&end_time={}&partition=2", api_time(from), api_time(to));
    let (lines, info) = recover(&url(&s, StreamKind::Sample10, &q)).await;
    let got: Vec<String> = lines.iter().map(|l| key_of(l).0).collect();
    assert_eq!(got, truth(StreamKind::Sample10, 20.0, from, to, Some(2)));
    assert_eq!(info["info"]["activity_count"].as_u64(), Some(got.len() as u64));
}

#[tokio::test]
async fn recovery_window_is_enforced_400() {
    let s = server(config(1.0, 5.0)).await;
    let now = start_ms();
    let day = 86_400_000;
    let cases = [
        (StreamKind::Sample10, now - 5 * day - 60_000, now - 5 * day + 60_000, 400),
        (StreamKind::Sample10, now - 5 * day + 60_000, now - 5 * day + 120_000, 200),
        (StreamKind::Sample10, now - 60_000, now + 60_000, 400),
        (StreamKind::Sample10, now - 60_000, now - 120_000, 400),
        (StreamKind::PowerTrack, now - day - 60_000, now - day + 60_000, 400),
        (StreamKind::PowerTrack, now - day + 60_000, now - day + 120_000, 200),
        (StreamKind::Likes, now - 120_000, now - 60_000, 400),
    ];
    for (kind, from, to, status) in cases {
        let r = get(&url(&s, kind, &recovery_query(from, to))).await;
        assert_eq!(r.status(), status, "{kind} {} .. {}", api_time(from), api_time(to));
        if status == 400 {
            let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            assert!(v["error"]["message"].is_string());
        }
    }
    let r = get(&url(&s, StreamKind::Sample10, "startTime=yesterday")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn at_most_two_recovery_jobs_per_account_429() {
    // Speed 20 (a heartbeat every 0.5 s of wall time lets the server notice
    // a client that left), pace 0.5: the jobs stay open for minutes.
    let mut cfg = config(20.0, 1.0);
    cfg.recovery_pace = 0.5;
    let s = server(cfg).await;
    let now = start_ms();
    let q = recovery_query(now - 3_600_000, now - 1_800_000);
    let a = get(&url(&s, StreamKind::Sample10, &q)).await;
    let b = get(&url(&s, StreamKind::Sample10, &q)).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let c = get(&url(&s, StreamKind::Sample10, &q)).await;
    assert_eq!(c.status(), 429);
    // Another account has its own jobs.
    let other = s.url(StreamKind::Sample10, "other", "prod") + "?" + &q;
    assert_eq!(get(&other).await.status(), 200);
    // Realtime is not a recovery job.
    assert_eq!(get(&url(&s, StreamKind::Sample10, "partition=1")).await.status(), 200);
    // Ending a job frees its slot.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(&url(&s, StreamKind::Sample10, &q)).await;
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn recovery_pace_is_in_stream_time() {
    // Speed 60, pace 2: two minutes of archive take one minute of stream
    // time, one second of wall time.
    let mut cfg = config(60.0, 2.0);
    cfg.recovery_pace = 2.0;
    let s = server(cfg).await;
    let now = start_ms();
    let begin = Instant::now();
    let (lines, info) = recover(&url(&s, StreamKind::Sample10, &recovery_query(now - 600_000, now - 480_000))).await;
    let took = begin.elapsed();
    assert!(took >= Duration::from_millis(900), "too fast: {took:?}");
    assert!(took < Duration::from_secs(6), "too slow: {took:?}");
    assert_eq!(info["info"]["activity_count"].as_u64(), Some(lines.len() as u64));
}

#[tokio::test]
async fn same_seed_same_bytes() {
    let a = server(config(1.0, 30.0)).await;
    let b = server(config(1.0, 30.0)).await;
    let now = start_ms();
    let q = recovery_query(now - 7_200_000, now - 7_200_000 + 30_000);
    let (la, _) = recover(&url(&a, StreamKind::Sample10, &q)).await;
    let (lb, _) = recover(&url(&b, StreamKind::Sample10, &q)).await;
    assert!(la.len() > 500);
    assert_eq!(la, lb);
    // A different seed gives different data.
    let mut cfg = config(1.0, 30.0);
    cfg.seed = 43;
    let c = server(cfg).await;
    let (lc, _) = recover(&url(&c, StreamKind::Sample10, &q)).await;
    assert_ne!(la, lc);
}

#[tokio::test]
async fn truth_equals_realtime_plus_recovery() {
    // A perfect client: both partitions in realtime for ~90 s of stream time,
    // then a Recovery of the two minutes before it connected. Realtime must
    // hold exactly the truth of its span, and with Recovery, the whole.
    let cfg = config(30.0, 10.0);
    let clock = cfg.clock;
    let s = server(cfg).await;
    let t_before = clock.now_ms();
    let mut responses = Vec::new();
    for p in 1..=2 {
        responses.push(get(&url(&s, StreamKind::Sample10, &format!("partition={p}"))).await);
    }
    // Both connections started by now: everything delivered after this is theirs.
    let t_conn = clock.now_ms();
    let stop = t_conn + 90_000;
    let mut tasks = Vec::new();
    for r in responses {
        let mut rd = Reader::new(r);
        tasks.push(tokio::spawn(async move {
            // Delivery is in delivery order, and delivery time is activity
            // time + [0.2 s, 3 s): once an activity of time >= stop arrives,
            // every activity of time < stop - 3 s has arrived before it.
            let mut got = Vec::new();
            loop {
                match rd.next(Duration::from_secs(20)).await {
                    Item::Line(l, _) => {
                        let k = key_of(&l);
                        let done = k.1 >= stop;
                        got.push(k);
                        if done {
                            return got;
                        }
                    }
                    Item::Heartbeat => {}
                    other => panic!("{other:?}"),
                }
            }
        }));
    }
    let mut realtime = Vec::new();
    for t in tasks {
        realtime.extend(t.await.unwrap());
    }
    let lat = stream_sim::generator::MAX_LATENCY_MS;
    let span_end = stop - lat;
    let mut got: Vec<String> =
        realtime.iter().filter(|k| k.1 >= t_conn && k.1 < span_end).map(|k| k.0.clone()).collect();
    got.sort();
    let mut want = truth(StreamKind::Sample10, 10.0, t_conn, span_end, None);
    want.sort();
    assert_same(&got, &want, "realtime span");
    assert!(realtime.iter().all(|k| k.1 >= t_before - lat), "nothing older than the connection");
    // Recovery of the two minutes before, then the union is the truth.
    let from = t_conn - 120_000;
    let (lines, _) = recover(&url(&s, StreamKind::Sample10, &recovery_query(from, t_conn))).await;
    let mut all: std::collections::BTreeSet<String> = lines.iter().map(|l| key_of(l).0).collect();
    all.extend(realtime.iter().filter(|k| k.1 >= from && k.1 < span_end).map(|k| k.0.clone()));
    let want: std::collections::BTreeSet<String> =
        truth(StreamKind::Sample10, 10.0, from, span_end, None).into_iter().collect();
    assert_same(&all.into_iter().collect::<Vec<_>>(), &want.into_iter().collect::<Vec<_>>(), "realtime + recovery");
}

/// Compare sorted key lists, printing only the differences.
fn assert_same(got: &[String], want: &[String], what: &str) {
    let g: std::collections::BTreeSet<&String> = got.iter().collect();
    let w: std::collections::BTreeSet<&String> = want.iter().collect();
    let missing: Vec<_> = w.difference(&g).take(5).collect();
    let extra: Vec<_> = g.difference(&w).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == want.len(),
        "{what}: got {} want {}; missing {missing:?}; extra {extra:?}",
        got.len(),
        want.len()
    );
}

#[tokio::test]
async fn likes_stream_and_truth_cli() {
    let s = server(config(1.0, 30.0)).await;
    let now = start_ms();
    // Likes have no Recovery: read realtime with backfill and check shapes.
    let mut rd = Reader::new(get(&url(&s, StreamKind::Likes, "partition=1&backfillMinutes=1")).await);
    let mut kinds = std::collections::BTreeSet::new();
    let mut n = 0;
    let mut keys = Vec::new();
    while n < 600 {
        match rd.next(Duration::from_secs(10)).await {
            Item::Line(l, _) => {
                let (k, t) = key_of(&l);
                kinds.insert(k.split(' ').next().unwrap().to_string());
                keys.push((t, k));
                n += 1;
            }
            Item::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(kinds.contains("like") && kinds.contains("unlike"), "{kinds:?}");
    // The truth command, run as a binary, lists them.
    let from = now - 60_000;
    let to = now - 40_000;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stream-sim"))
        .args(["truth", "--seed", "42", "--stream", "likes/prod", "--rate", "30", "--partition", "1"])
        .args(["--from", &api_time(from), "--to", &api_time(to)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    let mut want: Vec<String> = keys.iter().filter(|k| k.0 >= from && k.0 < to).map(|k| k.1.clone()).collect();
    want.sort();
    let mut cli_sorted = cli.clone();
    cli_sorted.sort();
    assert_eq!(cli_sorted, want);
    assert_eq!(cli, truth(StreamKind::Likes, 30.0, from, to, Some(1)));
}

#[tokio::test]
async fn activity_streams_format_carries_the_same_truth() {
    let mut cfg = config(1.0, 20.0);
    cfg.apply_file(
        r#"
        [[stream]]
        name = "sample10/as"
        rate = 20
        format = "activity_streams"
        "#,
    )
    .unwrap();
    let s = server(cfg).await;
    let now = start_ms();
    let (from, to) = (now - 300_000, now - 240_000);
    let u = s.url(StreamKind::Sample10, "acme", "as") + "?" + &recovery_query(from, to);
    let (lines, info) = recover(&u).await;
    assert_eq!(info["info"]["activity_count"].as_u64(), Some(lines.len() as u64));
    let activities = lines
        .iter()
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["objectType"] == "activity")
        .count();
    assert!(activities * 10 > lines.len() * 9, "{activities} of {}", lines.len());
    let got: Vec<String> = lines.iter().map(|l| key_of(l).0).collect();
    let mut spec = StreamSpec::new(StreamKind::Sample10, "as");
    spec.rate = 20.0;
    assert_eq!(got, truth_lines(&Generator::new(42, &spec), from, to, None));
}
