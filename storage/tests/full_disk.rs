//! A disk that refuses writes (here: a file-size limit, which fails writes
//! with EFBIG as a full disk fails them with ENOSPC) fails the commit with
//! a clear error, yields no proof of durability (so coverage cannot
//! advance), leaves no partial frame behind, and loses nothing: the records
//! stay pending and the next commit, once there is room, writes them once.
//!
//! Alone in its own test binary because the limit is per process.

use gapless_storage::reader::RangeReader;
use gapless_storage::segment::read_headers;
use gapless_storage::store::{segment_path, Store, StoreConfig};
use gapless_storage::{Minute, Snowflake};

const T0: i64 = 1_764_000_000_000;

fn set_file_size_limit(bytes: Option<u64>) {
    let limit = bytes.unwrap_or(libc::RLIM_INFINITY) as libc::rlim_t;
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut current), 0);
        let new = libc::rlimit { rlim_cur: limit.min(current.rlim_max), rlim_max: current.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &new), 0);
    }
}

fn largest_file(dir: &std::path::Path) -> u64 {
    let mut max = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        max = max.max(if meta.is_dir() { largest_file(&entry.path()) } else { meta.len() });
    }
    max
}

/// A Post with ~64 KB of hex text: compresses only about 2x.
fn big_post(i: u64) -> (u64, String) {
    let ms = T0 + i as i64;
    let id = Snowflake { time_ms: ms, machine: 1, sequence: 0 }.to_id();
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let text: String = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x & 15) as u32, 16).unwrap()
        })
        .collect();
    (
        id,
        format!(
            r#"{{"id_str":"{id}","created_at":"x","text":"{text}","user":{{"id_str":"1"}},"timestamp_ms":"{ms}"}}"#
        ),
    )
}

#[test]
fn a_full_disk_fails_the_commit_and_loses_nothing() {
    // SAFETY: ignoring SIGXFSZ makes an over-limit write fail with EFBIG
    // instead of killing the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::bulk()).unwrap();
    let mut w = store.stream("s").unwrap();
    let (_, first) = big_post(0);
    w.ingest(first.as_bytes(), T0).unwrap();
    w.commit().unwrap();
    let path = segment_path(w.dir(), Minute::of_ms(T0));
    let good_len = std::fs::metadata(&path).unwrap().len();

    // 256 posts of 64 KB: a frame of ~8 MB compressed, far over the limit.
    let posts: Vec<(u64, String)> = (1..257).map(big_post).collect();
    for (_, p) in &posts {
        w.ingest(p.as_bytes(), T0).unwrap();
    }
    set_file_size_limit(Some(largest_file(dir.path()) + (4 << 20)));
    let failed = w.commit();
    set_file_size_limit(None);
    let err = failed.expect_err("the commit must fail: no proof of durability");
    assert!(err.to_string().contains("append frame"), "a clear error: {err}");
    // No partial frame: the segment was cut back to its last good length.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(w.pending_records(), posts.len(), "the records stay pending");

    // Room again: the next commit writes everything, once.
    let (_proof, stats) = w.commit().unwrap();
    assert_eq!(stats.records, posts.len());
    // The first frame, then the batch in frames of bounded size.
    let frames = read_headers(&path).unwrap().1;
    let raw: u64 = frames[1..].iter().map(|f| f.header.raw_len as u64).sum();
    assert_eq!(frames.len() as u64, 1 + raw.div_ceil(gapless_storage::frame::TARGET_RAW_BYTES as u64));
    drop(w);
    drop(store);
    let mut got: Vec<String> = Vec::new();
    for batch in RangeReader::new(dir.path(), "s", T0..T0 + 60_000) {
        for (_, b) in batch.unwrap().iter() {
            got.push(String::from_utf8(b.to_vec()).unwrap());
        }
    }
    let mut expect: Vec<String> = std::iter::once(first).chain(posts.into_iter().map(|p| p.1)).collect();
    expect.sort_by_key(|l| l.split("\"timestamp_ms\":\"").nth(1).map(|t| t.to_string()));
    assert_eq!(got.len(), 257);
    assert_eq!(got, expect);
}
