//! Archives in a bucket for the tools' tests: a fresh bucket on a real
//! S3-compatible server (moto, started once per test process by
//! `gapless_bucket::test_server`, which points the `AWS_*` variables at
//! it, so the tools' binaries inherit them), and local data directories
//! uploaded to it as sites with the archiver's own uploader. Shared with
//! segment-export's tests.
#![allow(dead_code)]

use std::ops::Range;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use gapless_bucket::test_server;
use gapless_bucket::upload::Uploader;
use gapless_bucket::Bucket;
use gapless_storage::Minute;

use super::common::{fill_minute, reopen, BASE};

pub use test_server::SECRET_ACCESS_KEY;

/// A fresh bucket on the test server, as `s3://NAME/archive`; `None` when
/// moto is not installed (the test then skips, as it says on stderr).
pub fn fresh_bucket(tag: &str) -> Option<String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let server = test_server::server()?;
    let name = format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    server.create_bucket(&name);
    Some(format!("s3://{name}/archive"))
}

/// Stream `decahose`, 2 partitions: `per_minute` Posts in each minute of
/// `minutes` (minute numbers from BASE), and for every partition the
/// seconds of `covered` (seconds from BASE) that lie inside those minutes,
/// less the second half of minute 50 on partition 2 (a partial minute).
/// The same minute holds the same Posts in every archive built with it.
pub fn build_part(dir: &Path, minutes: Range<i64>, per_minute: u16, covered: &[Range<i64>]) {
    let store = gapless_storage::store::Store::open(dir, gapless_storage::store::StoreConfig::default()).unwrap();
    let mut w = store.stream("decahose").unwrap();
    store.coverage().set_partitions("decahose", 2).unwrap();
    for m in minutes.clone() {
        fill_minute(&mut w, BASE + m * 60, per_minute);
    }
    let (durable, _) = w.commit().unwrap();
    let (lo, hi) = (minutes.start * 60, minutes.end * 60);
    let hole = 50 * 60 + 30..51 * 60;
    for r in covered {
        let r = r.start.max(lo)..r.end.min(hi);
        if r.start >= r.end {
            continue;
        }
        store.coverage().cover(&durable, "decahose", 1, BASE + r.start..BASE + r.end).unwrap();
        for part in [r.start..r.end.min(hole.start), r.start.max(hole.end)..r.end] {
            if part.start < part.end {
                store.coverage().cover(&durable, "decahose", 2, BASE + part.start..BASE + part.end).unwrap();
            }
        }
    }
    store.coverage().flush().unwrap();
}

/// Adds stream `likes` (1 partition, no data), owing coverage from
/// `covered.start` and covering `covered` (Unix seconds): a stream with no
/// manifest on days after `covered`.
pub fn add_likes(dir: &Path, covered: Range<i64>) {
    let store = reopen(dir);
    let mut w = store.stream("likes").unwrap();
    let (durable, _) = w.commit().unwrap();
    let cov = store.coverage();
    cov.set_partitions("likes", 1).unwrap();
    cov.owe_from("likes", covered.start).unwrap();
    cov.cover(&durable, "likes", 1, covered).unwrap();
    cov.flush().unwrap();
}

/// Uploads every minute of stream `stream` of the data directory `dir` to
/// the bucket at `url` under `site`, as the archiver's uploader does.
pub fn upload(url: &str, site: &str, dir: &Path, stream: &str) {
    let store = reopen(dir);
    let bucket = Bucket::open(url).unwrap();
    let mut up = Uploader::new(bucket, site, dir, stream, store.coverage().clone());
    let span = Minute::of_secs(BASE - 86_400)..Minute::of_secs(BASE + 7 * 86_400);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let round = runtime.block_on(up.round(span.clone(), span.end)).unwrap();
    assert!(round.manifests > 0 && !round.restarted, "{site}: {round:?}");
}

/// Writes a manifest of `day` (`YYYY-MM-DD`) that does not parse under
/// `site`'s `stream`: reading it is an error, so a tool that succeeds did
/// not read it.
pub fn put_junk_manifest(url: &str, site: &str, stream: &str, day: &str) {
    let bucket = Bucket::open(url).unwrap();
    let key = gapless_bucket::keys::StreamKeys::new(bucket.prefix(), site, stream).manifest(day);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(bucket.put_verified(&key, b"not a manifest".to_vec().into())).unwrap();
}

/// The test server's secret is nowhere in what a tool printed.
pub fn assert_no_secret(out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(SECRET_ACCESS_KEY), "the secret access key is in the tool's {name}: {text}");
    }
}
