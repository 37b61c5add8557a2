//! The archive in a real S3-compatible server (moto, started by the test):
//! upload, manifests, reading back byte for byte, late data, two sites as
//! one archive, and a bucket that is away.

use std::ops::Range;
use std::path::Path;

use gapless_bucket::replica::{self, Want};
use gapless_bucket::test_server;
use gapless_bucket::upload::Uploader;
use gapless_bucket::Bucket;
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{Store, StoreConfig};
use gapless_storage::{Key, Minute};

/// 2026-03-01T12:00Z in ms.
const T0: i64 = 1_772_366_400_000;

fn post(id: u64, ms: i64) -> String {
    format!(
        r#"{{"created_at":"Sun Mar 01 12:00:00 +0000 2026","id":{id},"id_str":"{id}","text":"post {id} about coverage","user":{{"id":{u},"id_str":"{u}"}},"timestamp_ms":"{ms}"}}"#,
        u = 1000 + id % 97
    )
}

fn minute(i: i64) -> Minute {
    Minute::of_ms(T0 + i * 60_000)
}

/// A fresh bucket URL on the test server, or `None` (skipped).
fn fresh_bucket() -> Option<String> {
    Some(format!("s3://{}/archive", test_server::server()?.fresh_bucket()))
}

/// Stores posts `ids` (each at T0 + id * 100 ms) and covers `covered`
/// (Unix seconds) on both partitions.
fn archive(store: &Store, ids: Range<u64>, covered: Range<i64>) {
    let mut w = store.stream("d").unwrap();
    for id in ids {
        w.ingest(post(id, T0 + id as i64 * 100).as_bytes(), T0).unwrap();
    }
    let (proof, _) = w.commit().unwrap();
    store.coverage().set_partitions("d", 2).unwrap();
    for p in 1..=2 {
        store.coverage().cover(&proof, "d", p, covered.clone()).unwrap();
    }
}

/// Every record of stream `d` in the first 10 minutes: (time, key, bytes).
fn records(root: &Path) -> Vec<(i64, Key, Vec<u8>)> {
    RangeReader::new(root, "d", T0..T0 + 600_000)
        .flat_map(|b| b.unwrap().iter().map(|(e, b)| (e.time_ms, e.key, b.to_vec())).collect::<Vec<_>>())
        .collect()
}

fn covered(root: &Path, p: u32) -> Vec<Range<i64>> {
    let map = gapless_storage::coverage::CoverageMap::open(&gapless_storage::layout::coverage_dir(root)).unwrap();
    map.covered_ranges("d", p, T0 / 1000 - 3600..T0 / 1000 + 3600).unwrap()
}

async fn fetch(url: &str) -> replica::Replica {
    let bucket = Bucket::open(url).unwrap();
    replica::fetch(&bucket, &Want { stream: None, minutes: None, segments: true }).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_alone_reads_back_as_the_archive() {
    let Some(url) = fresh_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    // Minutes 0..3 with data; covered: minutes 0 and 1 whole, half of 2.
    let s0 = T0 / 1000;
    archive(&store, 0..1800, s0..s0 + 150);
    let bucket = Bucket::open(&url).unwrap();
    let mut up = Uploader::new(bucket.clone(), "east", dir.path(), "d", store.coverage().clone());
    let round = up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!((round.objects, round.manifests, round.restarted), (3, 1, false), "{round:?}");

    let r = fetch(&url).await;
    assert_eq!(r.sites, ["east"]);
    assert_eq!(records(r.root()), records(dir.path()), "the bucket's records equal the local archive's");
    assert_eq!(records(r.root()).len(), 1800);
    for p in 1..=2 {
        assert_eq!(covered(r.root(), p), vec![s0..s0 + 150]);
    }

    // Nothing changed: a round uploads nothing.
    let again = up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!((again.objects, again.manifests), (0, 0), "{again:?}");

    // Late data in minute 1 and more coverage: minute 1 is a new object,
    // the old one is gone, and the bucket covers the new seconds.
    archive(&store, 1800..1900, s0 + 150..s0 + 190);
    let late = up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!((late.objects, late.manifests), (1, 1), "{late:?}");
    drop(r);
    let r = fetch(&url).await;
    assert_eq!(records(r.root()), records(dir.path()));
    assert_eq!(covered(r.root(), 1), vec![s0..s0 + 190]);
    let objects = bucket.list(&object_store::path::Path::from("archive/sites/east/streams/d/segments")).await.unwrap();
    assert_eq!(objects.len(), 4, "one object per minute: {objects:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minutes_not_settled_wait() {
    let Some(url) = fresh_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let s0 = T0 / 1000;
    archive(&store, 0..1800, s0..s0 + 180);
    let mut up = Uploader::new(Bucket::open(&url).unwrap(), "east", dir.path(), "d", store.coverage().clone());
    let round = up.round(minute(0)..minute(10), minute(1)).await.unwrap();
    assert_eq!(round.objects, 1, "only minute 0 settled: {round:?}");
    let r = fetch(&url).await;
    assert_eq!(covered(r.root(), 1), vec![s0..s0 + 60], "the bucket covers only what it holds");
    assert_eq!(records(r.root()).len(), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_read_as_their_union() {
    let Some(url) = fresh_bucket() else { return };
    let s0 = T0 / 1000;
    // East holds posts 0..1200 and covers minute 0; west holds 600..1800
    // and covers minutes 1 and 2. Neither is complete; the union is.
    let (east, west) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let e = Store::open(east.path(), StoreConfig::default()).unwrap();
    let w = Store::open(west.path(), StoreConfig::default()).unwrap();
    archive(&e, 0..1200, s0..s0 + 60);
    archive(&w, 600..1800, s0 + 60..s0 + 180);
    let all = tempfile::tempdir().unwrap();
    let a = Store::open(all.path(), StoreConfig::default()).unwrap();
    archive(&a, 0..1800, s0..s0 + 180);
    for (site, dir, store) in [("east", east.path(), &e), ("west", west.path(), &w)] {
        let mut up = Uploader::new(Bucket::open(&url).unwrap(), site, dir, "d", store.coverage().clone());
        up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    }
    let r = fetch(&url).await;
    assert_eq!(r.sites, ["east", "west"]);
    assert_eq!(records(r.root()), records(all.path()), "each activity once, with its bytes");
    assert_eq!(covered(r.root(), 2), vec![s0..s0 + 180]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_away_publishes_nothing_and_loses_nothing() {
    let Some(url) = fresh_bucket() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let s0 = T0 / 1000;
    archive(&store, 0..600, s0..s0 + 60);
    // A bucket that does not exist: every request fails.
    let missing = Bucket::open(&url.replace("/archive", "-missing/archive")).unwrap();
    let mut up = Uploader::new(missing, "east", dir.path(), "d", store.coverage().clone());
    let err = up.round(minute(0)..minute(10), minute(10)).await.unwrap_err();
    assert!(matches!(err, gapless_bucket::Error::Request { .. }), "{err}");
    assert!(!err.to_string().contains(test_server::SECRET_ACCESS_KEY));
    // The right bucket later: everything arrives.
    let mut up = Uploader::new(Bucket::open(&url).unwrap(), "east", dir.path(), "d", store.coverage().clone());
    up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    let r = fetch(&url).await;
    assert_eq!(records(r.root()), records(dir.path()));
}

#[test]
fn bad_urls_are_refused_clearly() {
    for url in ["http://x/y", "s3://", "s3://user:secret@bucket/p", "s3://b/a/../c"] {
        let err = Bucket::open(url).unwrap_err();
        assert!(matches!(err, gapless_bucket::Error::BadUrl { .. }), "{url}: {err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_two_recovery_slots_are_shared_by_its_sites() {
    use gapless_bucket::lease::Slots;
    let Some(url) = fresh_bucket() else { return };
    let bucket = Bucket::open(&url).unwrap();
    let ttl = std::time::Duration::from_secs(60);
    let acme = Slots::new(bucket.clone(), "acme", 2, ttl);
    let now = 1_000_000;
    let a = acme.acquire("east", "d", "job-1", now).await.unwrap().expect("a free slot");
    let mut b = acme.acquire("west", "d", "job-2", now).await.unwrap().expect("the other slot");
    assert!(acme.acquire("east", "d", "job-3", now).await.unwrap().is_none(), "two slots per account");
    // Another account has its own.
    let other = Slots::new(bucket.clone(), "zeta", 2, ttl);
    assert!(other.acquire("east", "d", "job-4", now).await.unwrap().is_some());
    // A holder renews; one that died frees its slot when it expires.
    assert!(acme.renew(&mut b, now + 30_000).await.unwrap());
    let later = now + 70_000;
    let c = acme.acquire("east", "d", "job-5", later).await.unwrap().expect("a's slot expired");
    assert!(acme.acquire("east", "d", "job-6", later).await.unwrap().is_none(), "b renewed");
    // The lost lease learns it cannot renew.
    let mut a = a;
    assert!(!acme.renew(&mut a, later).await.unwrap(), "a's slot was taken");
    acme.release(c, later).await.unwrap();
    let holders = acme.holders(later).await.unwrap();
    assert_eq!(holders.iter().flatten().map(|h| h.job.as_str()).collect::<Vec<_>>(), ["job-2"]);
    assert!(acme.acquire("west", "d", "job-7", later).await.unwrap().is_some(), "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_sites_never_hold_more_than_the_slots() {
    use gapless_bucket::lease::Slots;
    let Some(url) = fresh_bucket() else { return };
    let slots = Slots::new(Bucket::open(&url).unwrap(), "acme", 2, std::time::Duration::from_secs(60));
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let s = slots.clone();
            tokio::spawn(async move { s.acquire(&format!("site{i}"), "d", "job", 5_000).await.unwrap().is_some() })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap() as usize;
    }
    assert_eq!(won, 2, "exactly two of twelve racing sites hold a slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_minutes_stay_in_the_bucket_and_late_data_joins_them() {
    let Some(url) = fresh_bucket() else { return };
    let s0 = T0 / 1000;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    archive(&store, 0..1800, s0..s0 + 180);
    // No local room at all: every settled minute copied is evicted.
    let mut up =
        Uploader::new(Bucket::open(&url).unwrap(), "east", dir.path(), "d", store.coverage().clone()).with_local_max(0);
    let round = up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!(round.evictions.len(), 3, "{round:?}");
    let mut w = store.stream("d").unwrap();
    for e in &round.evictions {
        assert!(w.evict(e.minute, e.ino, e.len, &e.marker).unwrap(), "evicted {}", e.minute);
    }
    let seg = |m: i64| {
        gapless_storage::layout::segment_path(&gapless_storage::layout::stream_dir(dir.path(), "d"), minute(m))
    };
    assert!(!seg(1).exists() && gapless_storage::layout::evicted_path(&seg(1)).exists());
    // The local archive says where the data went rather than reading as empty.
    let local: Result<Vec<_>, _> = RangeReader::new(dir.path(), "d", T0..T0 + 600_000).collect();
    assert!(matches!(local, Err(gapless_storage::Error::Evicted { .. })), "{local:?}");
    // The bucket has everything; nothing is copied again.
    let all = tempfile::tempdir().unwrap();
    let truth = Store::open(all.path(), StoreConfig::default()).unwrap();
    archive(&truth, 0..1800, s0..s0 + 180);
    assert_eq!(records(fetch(&url).await.root()), records(all.path()));
    let again = up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!((again.objects, again.manifests, again.evictions.len()), (0, 0, 0), "{again:?}");

    // Late data in evicted minute 1, one of it a copy of what the bucket
    // holds: one object holds both, each activity once.
    for id in (5000..5050).chain([700]) {
        let ms = if id == 700 { T0 + 70_000 } else { T0 + 60_000 + (id as i64 - 5000) * 100 };
        w.ingest(post(id, ms).as_bytes(), T0).unwrap();
        if id != 700 {
            let mut t = truth.stream("d").unwrap();
            t.ingest(post(id, ms).as_bytes(), T0).unwrap();
            t.commit().unwrap();
        }
    }
    w.commit().unwrap();
    assert!(seg(1).exists(), "late data starts a segment again");
    let late = up.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!(late.objects, 1, "{late:?}");
    assert_eq!(late.evictions.iter().map(|e| e.minute).collect::<Vec<_>>(), [minute(1)]);
    for e in &late.evictions {
        assert!(w.evict(e.minute, e.ino, e.len, &e.marker).unwrap());
    }
    assert_eq!(records(fetch(&url).await.root()), records(all.path()));
    let objects = Bucket::open(&url)
        .unwrap()
        .list(&object_store::path::Path::from("archive/sites/east/streams/d/segments"))
        .await
        .unwrap();
    assert_eq!(objects.len(), 3, "the merged object replaced minute 1's: {objects:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_archiver_under_the_same_site_is_refused() {
    let Some(url) = fresh_bucket() else { return };
    let s0 = T0 / 1000;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (sa, sb) = (
        Store::open(a.path(), StoreConfig::default()).unwrap(),
        Store::open(b.path(), StoreConfig::default()).unwrap(),
    );
    archive(&sa, 0..600, s0..s0 + 60);
    archive(&sb, 600..1200, s0 + 60..s0 + 120);
    let (ida, idb) = (sa.identity().unwrap(), sb.identity().unwrap());
    assert_ne!(ida, idb);
    assert_eq!(sa.identity().unwrap(), ida, "an identity is kept");
    let mut up_a =
        Uploader::new(Bucket::open(&url).unwrap(), "east", a.path(), "d", sa.coverage().clone()).with_writer(&ida);
    let mut up_b =
        Uploader::new(Bucket::open(&url).unwrap(), "east", b.path(), "d", sb.coverage().clone()).with_writer(&idb);
    up_a.round(minute(0)..minute(10), minute(10)).await.unwrap();
    // B, given the same site by mistake, publishes nothing over A's copy.
    let err = up_b.round(minute(0)..minute(10), minute(10)).await.unwrap_err();
    assert!(matches!(err, gapless_bucket::Error::SiteTaken { .. }), "{err}");
    assert_eq!(records(fetch(&url).await.root()), records(a.path()), "A's copy is intact");
    // A, restarted (same data directory), goes on.
    let mut again =
        Uploader::new(Bucket::open(&url).unwrap(), "east", a.path(), "d", sa.coverage().clone()).with_writer(&ida);
    archive(&sa, 1200..1300, s0 + 120..s0 + 130);
    again.round(minute(0)..minute(10), minute(10)).await.unwrap();
    assert_eq!(records(fetch(&url).await.root()), records(a.path()));
}
