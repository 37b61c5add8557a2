//! The admin API: status and faults posted at run time.

mod common;

use common::*;
use stream_sim::StreamKind;

#[tokio::test]
async fn status_and_faults_posted_at_run_time() {
    let s = server(config(10.0, 5.0)).await;
    let base = format!("http://{}", s.addr());
    let c = client();
    assert_eq!(c.get(format!("{base}/sim/status")).send().await.unwrap().status(), 401);
    let _held = get(&url(&s, StreamKind::Sample10, "partition=2")).await;
    assert_eq!(get(&url(&s, StreamKind::Sample10, "partition=9")).await.status(), 400);

    let st = c.get(format!("{base}/sim/status")).basic_auth("u", Some("p")).send().await.unwrap().text().await.unwrap();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["seed"], 42);
    assert_eq!(st["clock"]["speed"], 10.0);
    let prod = st["streams"].as_array().unwrap().iter().find(|x| x["stream"] == "sample10/prod").unwrap();
    assert_eq!(prod["account"], "acme");
    assert_eq!(prod["realtime_connections"].as_array().unwrap().len(), 1);
    assert_eq!(prod["realtime_connections"][0]["partition"], 2);
    assert_eq!(st["refused"]["400"], 1);

    // Break the stream now: 503 for the next hour of stream time.
    let r = c
        .post(format!("{base}/sim/faults"))
        .basic_auth("u", Some("p"))
        .body("[[fault]]\nat = \"+0s\"\nduration = \"1h\"\nkind = \"unavailable\"\nstream = \"sample10/prod\"\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let added: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(added["added"].as_array().unwrap().len(), 1);
    assert_eq!(get(&url(&s, StreamKind::Sample10, "partition=1")).await.status(), 503);
    // Bad TOML is refused.
    let r = c.post(format!("{base}/sim/faults")).basic_auth("u", Some("p")).body("kind = 3").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

/// On the system clock (stream time is wall time, `SimConfig::new`'s
/// default), the status shows no start or origin, not the epoch, and the
/// stream time now is the wall time.
#[tokio::test]
async fn status_on_the_system_clock() {
    let mut cfg = stream_sim::SimConfig::new(42);
    cfg.user = "u".into();
    cfg.password = "p".into();
    let s = server(cfg).await;
    let st = client()
        .get(format!("http://{}/sim/status", s.addr()))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["clock"], serde_json::json!({"start": null, "speed": 1.0, "origin_unix": null}));
    let now = chrono::DateTime::parse_from_rfc3339(st["now"].as_str().unwrap()).unwrap();
    assert!((now.timestamp_millis() - chrono::Utc::now().timestamp_millis()).abs() < 60_000, "{now}");
}
