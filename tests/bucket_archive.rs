//! The archive in a bucket (`[archive]`), end to end against stream-sim and
//! a real S3-compatible server (moto, started by the test): the bucket
//! alone holds a complete archive that equals the truth, and two archivers
//! of one stream on two sites, each missing what the other has, make one
//! complete archive in the bucket.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gapless::archiver::{self, Options, Running};
use gapless::config::Config;
use gapless::metrics::StreamMetrics;
use gapless_bucket::replica::{self, Replica, Want};
use gapless_bucket::{test_server, Bucket};
use gapless_storage::coverage::Coverage;
use gapless_storage::Minute;

/// A fresh bucket on the test server, or `None` (the test is skipped).
fn fresh_bucket() -> Option<String> {
    Some(format!("s3://{}/gapless", test_server::server()?.fresh_bucket()))
}

/// The harness's config with `[archive]` and a site.
fn config_with_bucket(h: &Harness, url: &str, site: &str, data: &std::path::Path) -> Config {
    config_with(h, url, site, data, "")
}

/// ... and more lines of `[archive]`.
fn config_with(h: &Harness, url: &str, site: &str, data: &std::path::Path, archive: &str) -> Config {
    let text = format!(
        "site = \"{site}\"\n{}\n[archive]\nurl = \"{url}\"\nsettle = \"1m\"\ninterval = \"300ms\"\n{archive}\n",
        h.config_text
    );
    let mut config = Config::parse(&text, h.dir.path()).unwrap();
    config.data = data.to_path_buf();
    config
}

async fn start(h: &Harness, config: Config) -> Running {
    archiver::start(Options { config, clock: h.clock(), since_secs: None, fs: None }).await.unwrap()
}

/// Waits until the stream's uploader confirmed the bucket complete up to
/// `minute` (minutes after START).
async fn until_in_bucket(h: &Harness, m: &Arc<StreamMetrics>, minute: i64) {
    let want = h.minute(minute) * 60_000;
    wait_for("the bucket to hold the settled minutes", Duration::from_secs(180), || {
        m.bucket_synced_ms.load(Ordering::Relaxed) >= want
    })
    .await;
}

/// The archiver of site east, reaching the bucket through a proxy of its
/// own (the endpoint is read from the environment when it starts; the
/// tests of this binary run one at a time).
async fn start_behind_proxy(h: &Harness, url: &str) -> (Running, proxy::Proxy) {
    let server = test_server::server().unwrap();
    let proxy = proxy::Proxy::start(server.addr).await;
    std::env::set_var("AWS_ENDPOINT", format!("http://{}", proxy.addr));
    let running = start(h, config_with_bucket(h, url, "east", &h.data())).await;
    std::env::set_var("AWS_ENDPOINT", server.endpoint());
    (running, proxy)
}

async fn fetch(url: &str) -> Replica {
    replica::fetch(&Bucket::open(url).unwrap(), &Want { stream: None, minutes: None, segments: true }).await.unwrap()
}

fn not_full(data: &std::path::Path, h: &Harness, from: i64, to: i64) -> Vec<i64> {
    full_minutes(data, "decahose", Minute(h.minute(from)), Minute(h.minute(to)))
        .into_iter()
        .filter(|(_, c)| *c != Coverage::Full)
        .map(|(m, _)| m.0 - h.minute(0))
        .collect()
}

/// Every minute of `[from, to)` is full in `data` and equals the truth.
fn assert_exact(data: &std::path::Path, h: &Harness, from: i64, to: i64) -> usize {
    assert_eq!(not_full(data, h, from, to), Vec::<i64>::new(), "minutes not full");
    let mut want = Truth::new();
    for m in h.minute(from)..h.minute(to) {
        want.extend(h.truth_minute("decahose", m).iter().map(|(k, f)| (k.clone(), *f)));
    }
    let d = gapless::demo::verify::compare(
        &want,
        &archive(data, "decahose", h.minute(from) * 60_000, h.minute(to) * 60_000),
    );
    assert!(d.is_exact(), "the bucket's archive is not the truth: {d}");
    d.archived
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_alone_is_a_complete_archive() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    let h = Harness::launch(Setup::new(71, 20.0, 30.0)).await;
    let running = start(&h, config_with_bucket(&h, &url, "east", &h.data())).await;
    let m = running.metrics.streams[0].clone();
    until_in_bucket(&h, &m, 5).await;
    // /status says where the bucket stands.
    let text = reqwest::get(format!("http://{}/status", running.admin.unwrap())).await.unwrap().text().await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bucket = &status["streams"][0]["bucket"];
    assert!(bucket["uploaded_objects"].as_u64().unwrap() >= 4, "{status}");
    assert!(bucket["error"].is_null(), "{status}");
    running.stop().await.unwrap();

    // The bucket, read with no archiver: minutes 1..5 full and exact.
    let r = fetch(&url).await;
    assert_eq!(r.sites, ["east"]);
    let n = assert_exact(r.root(), &h, 1, 5);
    assert!(n > 1000, "{n} activities");
    // Never more coverage in the bucket than in the local archive.
    let local = full_minutes(&h.data(), "decahose", Minute(h.minute(0)), Minute(h.minute(8)));
    let remote = full_minutes(r.root(), "decahose", Minute(h.minute(0)), Minute(h.minute(8)));
    for ((m, l), (_, b)) in local.iter().zip(&remote) {
        assert!(*b != Coverage::Full || *l == Coverage::Full, "minute {m}: full in the bucket only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_each_missing_minutes_make_one_complete_archive() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    let h = Harness::launch(Setup::new(72, 20.0, 30.0)).await;
    // East archives minutes 0 to ~6, west from ~4 on: each owes coverage
    // from its own start, so neither repairs the other's minutes.
    let west_data = h.dir.path().join("west");
    let east = start(&h, config_with_bucket(&h, &url, "east", &h.data())).await;
    h.until_minute(4.0).await;
    let west = start(&h, config_with_bucket(&h, &url, "west", &west_data)).await;
    until_in_bucket(&h, &east.metrics.streams[0].clone(), 6).await;
    east.stop().await.unwrap();
    until_in_bucket(&h, &west.metrics.streams[0].clone(), 10).await;
    west.stop().await.unwrap();

    // Neither site alone is complete over minutes 1..10...
    assert!(!not_full(&h.data(), &h, 1, 10).is_empty(), "east alone is complete");
    assert!(!not_full(&west_data, &h, 1, 10).is_empty(), "west alone is complete");
    // ...the bucket's union is, and equals the truth, each activity once.
    let r = fetch(&url).await;
    assert_eq!(r.sites, ["east", "west"]);
    assert_exact(r.root(), &h, 1, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_spends_no_recovery_on_what_another_site_holds() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    capture_logs();
    let h = Harness::launch(Setup::new(73, 20.0, 30.0)).await;
    let west_data = h.dir.path().join("west");
    let west = start(&h, config_with_bucket(&h, &url, "west", &west_data)).await;
    let east = start(&h, config_with_bucket(&h, &url, "east", &h.data())).await;
    // East is down from minute 3 to 11: Backfill (5 minutes) brings 6 to
    // 11 when it comes back, and 3 to 6 would be Recovery's, but west,
    // up all along, holds it in the bucket.
    h.until_minute(3.0).await;
    east.stop().await.unwrap();
    until_in_bucket(&h, &west.metrics.streams[0].clone(), 8).await;
    h.until_minute(11.0).await;
    let east = start(&h, config_with_bucket(&h, &url, "east", &h.data())).await;
    let m = east.metrics.streams[0].clone();
    until_in_bucket(&h, &m, 12).await;
    until_in_bucket(&h, &west.metrics.streams[0].clone(), 12).await;
    let jobs = StreamMetrics::get(&m.recovery_jobs_started);
    east.stop().await.unwrap();
    west.stop().await.unwrap();

    let east_holes = not_full(&h.data(), &h, 1, 12);
    assert!(east_holes.contains(&4), "east has the hole of its downtime: {east_holes:?}");
    // Recovery may still fetch what west had not copied yet (the last
    // minute before the restart, which Backfill brings anyway), never
    // what west holds: minutes 3 to 6 (only east recovers here; west has
    // no hole).
    let (w0, w1) = (h.minute(3) * 60_000 + 30_000, h.minute(6) * 60_000);
    assert!(!log_lines(&["stream{stream=decahose site=east}"]).is_empty(), "east's logs name its site");
    let over_west: Vec<String> = log_lines(&["recovery started", "site=east"])
        .into_iter()
        .filter(|l| {
            let from = field(l, "from").and_then(parse_ms).unwrap_or(0);
            let to = field(l, "to").and_then(parse_ms).unwrap_or(0);
            from < w1 && w0 < to
        })
        .collect();
    assert!(over_west.is_empty(), "east recovered what west holds ({jobs} jobs): {over_west:#?}");
    let r = fetch(&url).await;
    assert_exact(r.root(), &h, 1, 12);
}

/// Jobs running now in an archiver.
fn running_jobs(m: &Arc<StreamMetrics>) -> usize {
    m.jobs.lock().unwrap().values().filter(|j| j.state == gapless_storage::coverage::JobState::Running).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_of_one_account_share_its_two_recovery_jobs() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    // Recovery replays at stream pace, in 1-minute jobs: each site alone
    // would run two at once.
    let mut h = Harness::launch(Setup::new(74, 20.0, 30.0).recovery_pace(1.0)).await;
    h.config_text =
        h.config_text.replace("data_silence = \"5s\" }", "data_silence = \"5s\" }\nrecovery = { chunk = \"1m\" }");
    let west_data = h.dir.path().join("west");
    let sites =
        |h: &Harness| (config_with_bucket(h, &url, "east", &h.data()), config_with_bucket(h, &url, "west", &west_data));
    let (e, w) = sites(&h);
    let (east, west) = (start(&h, e).await, start(&h, w).await);
    // Both down from minute 2 to 10: Backfill brings 5 to 10; 2 to 5 is a
    // hole in both, so each recovers it.
    h.until_minute(2.0).await;
    east.stop().await.unwrap();
    west.stop().await.unwrap();
    h.until_minute(10.0).await;
    let (e, w) = sites(&h);
    let (east, west) = (start(&h, e).await, start(&h, w).await);
    let (me, mw) = (east.metrics.streams[0].clone(), west.metrics.streams[0].clone());
    // How many run at once, sampled until both archives are whole again.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (me, mw, done) = (me.clone(), mw.clone(), done.clone());
        tokio::spawn(async move {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                most = most.max(running_jobs(&me) + running_jobs(&mw));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            most
        })
    };
    // Until both sites are done recovering (a site leaves to Recovery
    // what the other already holds) and both copied minutes 1 to 9.
    wait_for("Recovery at both sites, and their copies", Duration::from_secs(180), || {
        let started = StreamMetrics::get(&me.recovery_jobs_started) + StreamMetrics::get(&mw.recovery_jobs_started);
        let idle = me.jobs.lock().unwrap().is_empty() && mw.jobs.lock().unwrap().is_empty();
        let synced = [&me, &mw].iter().all(|m| m.bucket_synced_ms.load(Ordering::Relaxed) >= h.minute(9) * 60_000);
        started >= 2 && idle && synced
    })
    .await;
    done.store(true, Ordering::Relaxed);
    let most = sampler.await.unwrap();
    let started = (StreamMetrics::get(&me.recovery_jobs_started), StreamMetrics::get(&mw.recovery_jobs_started));
    east.stop().await.unwrap();
    west.stop().await.unwrap();
    assert!(started.0 > 0 && started.1 > 0, "both sites recovered: {started:?}");
    assert!(most <= 2, "{most} Recovery jobs ran at once across the account's two sites");
    let r = fetch(&url).await;
    assert_exact(r.root(), &h, 1, 9);
}

/// The bytes of the stream's local segments, and the minutes evicted.
fn local_segments(data: &std::path::Path) -> (u64, Vec<Minute>) {
    let dir = gapless_storage::layout::stream_dir(data, "decahose");
    let all = gapless_storage::layout::minutes_with_segments(&dir, Minute(0), Minute(i64::from(u32::MAX))).unwrap();
    let bytes =
        all.iter().map(|m| std::fs::metadata(gapless_storage::layout::segment_path(&dir, *m)).unwrap().len()).sum();
    let evicted = gapless_storage::layout::evicted_minutes(&dir, Minute(0), Minute(i64::from(u32::MAX))).unwrap();
    (bytes, evicted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_disk_stays_bounded_and_the_bucket_keeps_everything() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    let h = Harness::launch(Setup::new(75, 20.0, 30.0)).await;
    let running = start(&h, config_with(&h, &url, "east", &h.data(), "local_max = \"1B\"")).await;
    let m = running.metrics.streams[0].clone();
    until_in_bucket(&h, &m, 8).await;
    wait_for("evictions", Duration::from_secs(60), || StreamMetrics::get(&m.evicted_minutes) >= 6).await;
    running.stop().await.unwrap();
    // Minutes 1 to 7 left the disk; what is local is only what is not
    // settled yet (settle = 1 minute) or not yet copied.
    let (bytes, evicted) = local_segments(&h.data());
    for i in 1..7 {
        assert!(evicted.contains(&Minute(h.minute(i))), "minute {i} is still local: evicted {evicted:?}");
    }
    eprintln!("local segments after eviction: {bytes} bytes; {} minutes evicted", evicted.len());
    // The local archive says so; the bucket has it all, exactly.
    let local: Result<Vec<_>, _> =
        gapless_storage::reader::RangeReader::new(&h.data(), "decahose", h.minute(1) * 60_000..h.minute(7) * 60_000)
            .collect();
    assert!(matches!(local, Err(gapless_storage::Error::Evicted { .. })), "{local:?}");
    let r = fetch(&url).await;
    assert_exact(r.root(), &h, 1, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_behind_their_own_faults_make_one_archive_that_equals_the_truth() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    let h = Harness::launch(Setup::new(76, 20.0, 30.0)).await;
    let sim = h.sim.as_ref().unwrap().addr();
    // Each archiver reaches stream-sim through its own proxy.
    let (pe, pw) = (proxy::Proxy::start(sim).await, proxy::Proxy::start(sim).await);
    let through = |p: &proxy::Proxy, site: &str, data: &std::path::Path| {
        let mut c = config_with_bucket(&h, &url, site, data);
        for s in &mut c.streams {
            s.url = s.url.replace(&sim.to_string(), &p.addr.to_string());
        }
        c
    };
    let west_data = h.dir.path().join("west");
    let east = start(&h, through(&pe, "east", &h.data())).await;
    let west = start(&h, through(&pw, "west", &west_data)).await;
    // East's network fails for minutes 2 to 9, west's for 9 to 16: longer
    // than Backfill reaches, so each would need Recovery for the first
    // minutes of its outage; the other site holds them, so neither spends
    // a job on them, and neither archive alone is complete.
    h.until_minute(2.0).await;
    pe.cut();
    h.until_minute(9.0).await;
    pe.mend();
    pw.cut();
    h.until_minute(16.0).await;
    pw.mend();
    let (me, mw) = (east.metrics.streams[0].clone(), west.metrics.streams[0].clone());
    until_in_bucket(&h, &me, 18).await;
    until_in_bucket(&h, &mw, 18).await;
    east.stop().await.unwrap();
    west.stop().await.unwrap();

    let (he, hw) = (not_full(&h.data(), &h, 1, 18), not_full(&west_data, &h, 1, 18));
    assert!(!he.is_empty() && !hw.is_empty(), "each site alone misses minutes: east {he:?}, west {hw:?}");
    let r = fetch(&url).await;
    assert_eq!(r.sites, ["east", "west"]);
    let n = assert_exact(r.root(), &h, 1, 18);
    eprintln!("east misses {he:?}, west misses {hw:?}; the bucket's union holds all {n} activities of minutes 1 to 18");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_away_delays_the_copy_and_loses_nothing() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    // The archiver reaches the bucket through a proxy that goes away.
    let h = Harness::launch(Setup::new(77, 20.0, 30.0)).await;
    let (running, proxy) = start_behind_proxy(&h, &url).await;
    let m = running.metrics.streams[0].clone();
    h.until_minute(2.0).await;
    proxy.cut();
    h.until_minute(8.0).await;
    // Away: rounds fail, and the status says how far behind the bucket is.
    assert!(StreamMetrics::get(&m.upload_errors) > 0, "no failed round while the bucket was away");
    let text = reqwest::get(format!("http://{}/status", running.admin.unwrap())).await.unwrap().text().await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bucket = &status["streams"][0]["bucket"];
    assert!(bucket["behind_seconds"].as_i64().unwrap() >= 180, "{bucket}");
    assert!(bucket["error"].is_string(), "{bucket}");
    assert!(!text.contains(test_server::SECRET_ACCESS_KEY));
    // Back: the copy catches up, and nothing is missing.
    proxy.mend();
    until_in_bucket(&h, &m, 10).await;
    running.stop().await.unwrap();
    let r = fetch(&url).await;
    assert_exact(r.root(), &h, 1, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_does_not_wait_for_a_bucket_that_is_away() {
    let _g = serial().await;
    let Some(url) = fresh_bucket() else { return };
    let h = Harness::launch(Setup::new(78, 20.0, 30.0)).await;
    let (running, proxy) = start_behind_proxy(&h, &url).await;
    // The bucket goes silent: requests hang (until object_store's timeout).
    proxy.hang();
    h.until_minute(3.0).await;
    // A round in flight against a bucket that does not answer is cut
    // short: the archiver stops as promptly as without a bucket.
    let t = std::time::Instant::now();
    running.stop().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(20), "stopping took {:?}", t.elapsed());
    assert_eq!(not_full(&h.data(), &h, 1, 2), Vec::<i64>::new(), "the local archive is whole");
}
