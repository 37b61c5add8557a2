//! Purged content leaves the bucket too: after a purge pass rewrote the
//! local minutes, the next upload round replaces their objects and deletes
//! the old ones, and no object left in the bucket holds the purged text.
//! Against a real S3-compatible server (moto, started by the test).

use std::time::{Duration, Instant};

use gapless::purge::{PurgeConfig, Purger};
use gapless_bucket::keys::StreamKeys;
use gapless_bucket::upload::Uploader;
use gapless_bucket::{test_server, Bucket};
use gapless_storage::dict::Dictionaries;
use gapless_storage::io::StdFs;
use gapless_storage::reader::for_each_record;
use gapless_storage::store::{Store, StoreConfig, StreamWriter};
use gapless_storage::{layout, Minute};

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

fn post(id: u64, user: u64, ms: i64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{"id_str":"{user}"}},"text":"said by user{user}: {id}","timestamp_ms":"{ms}"}}"#
    )
}

/// A store with 40 Posts of users 1 and 2 (`gap_ms` apart) and a
/// `user_delete` of user 1, committed and covered.
fn archive(dir: &std::path::Path, gap_ms: i64) -> (Store, StreamWriter) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    store.coverage().set_partitions("d", 1).unwrap();
    let mut w = store.stream("d").unwrap();
    for i in 0..40u64 {
        w.ingest(post(100 + i, i % 2 + 1, T0 + i as i64 * gap_ms).as_bytes(), T0).unwrap();
    }
    let delete = format!(r#"{{"user_delete":{{"id":1,"id_str":"1","timestamp_ms":"{}"}}}}"#, T0 + 1000);
    w.ingest(delete.as_bytes(), T0).unwrap();
    let (proof, _) = w.commit().unwrap();
    store.coverage().cover(&proof, "d", 1, T0 / 1000..T0 / 1000 + 600).unwrap();
    (store, w)
}

/// Every record of every segment object in the bucket, decompressed.
async fn bucket_text(bucket: &Bucket, dict_dir: &std::path::Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut out = String::new();
    let prefix = StreamKeys::new(bucket.prefix(), "east", "d").segments();
    let mut dicts = Dictionaries::new(dict_dir);
    for (i, meta) in bucket.list(&prefix).await.unwrap().into_iter().enumerate() {
        let bytes = bucket.get(&meta.location).await.unwrap().unwrap();
        let path = tmp.path().join(format!("{i}.seg"));
        std::fs::write(&path, &bytes).unwrap();
        for_each_record(&StdFs, &path, &mut dicts, |_, b| {
            out.push_str(std::str::from_utf8(b).unwrap());
            out.push('\n');
        })
        .unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_content_leaves_the_bucket() {
    let Some(server) = test_server::server() else { return };
    let url = format!("s3://{}/archive", server.fresh_bucket());
    let dir = tempfile::tempdir().unwrap();
    let (store, mut w) = archive(dir.path(), 7_000);

    let bucket = Bucket::open(&url).unwrap();
    let mut up = Uploader::new(bucket.clone(), "east", dir.path(), "d", store.coverage().clone());
    let span = Minute::of_ms(T0)..Minute::of_ms(T0 + 600_000);
    up.round(span.clone(), span.end).await.unwrap();
    let dicts = layout::dict_dir(w.dir());
    let before = bucket_text(&bucket, &dicts).await;
    assert_eq!(before.matches("said by user1:").count(), 20, "uploaded before the purge");

    // The purge pass, its delay long past.
    let mut purger =
        Purger::new(PurgeConfig { after: Duration::from_secs(60), interval: Duration::ZERO }, w.dir().to_path_buf());
    let deadline = Instant::now() + Duration::from_secs(60);
    let now = T0 + 3_600_000;
    loop {
        purger.tick(&mut w, now);
        for (m, outcome) in w.finished_seals() {
            purger.finished(m, outcome, now);
        }
        if !purger.busy() {
            break;
        }
        assert!(Instant::now() < deadline, "the purge did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let round = up.round(span.clone(), span.end).await.unwrap();
    assert!(round.objects > 0, "the rewritten minutes are uploaded again");
    let after = bucket_text(&bucket, &dicts).await;
    assert!(!after.contains("said by user1:"), "no object in the bucket holds user 1's text");
    assert_eq!(after.matches("said by user2:").count(), 20);
    // The bucket's ledger copy holds the event.
    let ledger = bucket.get(&StreamKeys::new(bucket.prefix(), "east", "d").ledger()).await.unwrap().unwrap();
    assert_eq!(gapless_storage::compliance::ledger::decode(&ledger).events.len(), 1);
}

/// Minutes evicted to the bucket (`local_max`) are out of a local pass's
/// reach: the uploader applies the pass to their objects in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_reaches_the_minutes_evicted_to_the_bucket() {
    let Some(server) = test_server::server() else { return };
    let url = format!("s3://{}/archive", server.fresh_bucket());
    let dir = tempfile::tempdir().unwrap();
    let (store, mut w) = archive(dir.path(), 4_000);

    // No local room: every minute copied is evicted.
    let bucket = Bucket::open(&url).unwrap();
    let mut up = Uploader::new(bucket.clone(), "east", dir.path(), "d", store.coverage().clone()).with_local_max(0);
    let span = Minute::of_ms(T0)..Minute::of_ms(T0 + 600_000);
    let round = up.round(span.clone(), span.end).await.unwrap();
    assert!(!round.evictions.is_empty());
    for e in &round.evictions {
        assert!(w.evict(e.minute, e.ino, e.len, &e.marker).unwrap());
    }
    assert!(layout::minutes_with_segments(w.dir(), span.start, span.end).unwrap().is_empty(), "all evicted");

    // The local pass has nothing to rewrite; the uploader mirrors it.
    let mut purger =
        Purger::new(PurgeConfig { after: Duration::from_secs(60), interval: Duration::ZERO }, w.dir().to_path_buf());
    purger.tick(&mut w, T0 + 3_600_000);
    assert!(!purger.busy(), "a pass over no local minute ends at once");
    let report = gapless::compliance::report(dir.path(), None, Duration::from_secs(60), T0 + 3_600_000).unwrap();
    assert_eq!(report.streams[0].evicted_minutes_not_purged, 3, "{}", report.text());
    let done = gapless::upload::mirror_purge(&mut up, w.dir()).await.unwrap().expect("a pass to mirror");
    assert_eq!((done.minutes, done.purged), (3, 20), "{done:?}");
    assert!(gapless::upload::mirror_purge(&mut up, w.dir()).await.unwrap().is_none(), "once per pass");
    let report = gapless::compliance::report(dir.path(), None, Duration::from_secs(60), T0 + 3_600_000).unwrap();
    assert_eq!(report.streams[0].evicted_minutes_not_purged, 0);

    let dicts = layout::dict_dir(w.dir());
    let text = bucket_text(&bucket, &dicts).await;
    assert!(!text.contains("said by user1:"), "no object in the bucket holds user 1's text");
    assert_eq!(text.matches("said by user2:").count(), 20);
    // The bucket reads back as an archive: the manifests name the new
    // objects, and the markers too (a round changes nothing).
    let replica = gapless_bucket::replica::fetch(
        &bucket,
        &gapless_bucket::replica::Want { stream: None, minutes: None, segments: true },
    )
    .await
    .unwrap();
    let n: usize = gapless_storage::reader::RangeReader::new(replica.root(), "d", T0..T0 + 600_000)
        .map(|b| b.unwrap().len())
        .sum();
    assert_eq!(n, 20 + 1);
    let again = up.round(span.clone(), span.end).await.unwrap();
    assert_eq!((again.objects, again.manifests), (0, 0), "{again:?}");
}
