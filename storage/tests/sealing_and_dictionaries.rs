//! Small frames with a trained dictionary read back exactly, and sealing a
//! minute rewrites it into one frame without losing or duplicating
//! anything, even with late data appended after a seal.

use gapless_storage::reader::RangeReader;
use gapless_storage::segment::read_headers;
use gapless_storage::store::{segment_path, Store, StoreConfig};
use gapless_storage::{Key, Minute, Snowflake};

const T0: i64 = 1_764_000_000_000;

fn post(id: u64, ms: i64, i: usize) -> String {
    format!(
        r#"{{"created_at":"Mon Nov 24 16:00:00 +0000 2025","id":{id},"id_str":"{id}","text":"post number {i} about {}","user":{{"id":{u},"id_str":"{u}","screen_name":"user{u}","followers_count":{i}}},"lang":"en","timestamp_ms":"{ms}"}}"#,
        ["rust", "streams", "coverage", "archives"][i % 4],
        u = 1000 + i % 97
    )
}

fn keys(root: &std::path::Path) -> Vec<(i64, Key, Vec<u8>)> {
    RangeReader::new(root, "s", T0..T0 + 600_000)
        .flat_map(|b| b.unwrap().iter().map(|(e, b)| (e.time_ms, e.key, b.to_vec())).collect::<Vec<_>>())
        .collect()
}

#[test]
fn small_frames_use_the_trained_dictionary_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { dict_train_bytes: 64 << 10, dict_size: 16 << 10, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config.clone()).unwrap();
    let mut w = store.stream("s").unwrap();
    let mut expect = Vec::new();
    for i in 0..3000usize {
        let ms = T0 + (i as i64) * 20;
        let id = Snowflake { time_ms: ms, machine: (i % 7) as u16, sequence: 0 }.to_id();
        let line = post(id, ms, i);
        w.ingest(line.as_bytes(), ms).unwrap();
        expect.push((ms, Key::Post(id), line.into_bytes()));
        if i % 10 == 9 {
            w.commit().unwrap(); // frames of 10 records, like a second of Decahose
        }
    }
    w.commit().unwrap();
    let dicts: Vec<_> = std::fs::read_dir(w.dir().join("dict")).unwrap().collect();
    assert_eq!(dicts.len(), 1, "one dictionary trained");
    let (_, frames) = read_headers(&segment_path(w.dir(), Minute::of_ms(T0 + 59_000))).unwrap();
    // Frames before training are plain; every later one names the dictionary.
    let first_dict = frames.iter().position(|f| f.header.dict_id != 0).expect("some frame uses the dictionary");
    assert!(first_dict < frames.len() / 5, "trained after {first_dict} of {} frames", frames.len());
    assert!(frames[first_dict..].iter().all(|f| f.header.dict_id != 0));
    drop(w);
    drop(store);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);

    // A reopened store keeps using the dictionary it trained.
    let store = Store::open(dir.path(), config).unwrap();
    let mut w = store.stream("s").unwrap();
    let ms = T0 + 61_000;
    let id = Snowflake { time_ms: ms, machine: 1, sequence: 1 }.to_id();
    w.ingest(post(id, ms, 1).as_bytes(), ms).unwrap();
    w.commit().unwrap();
    let (_, frames) = read_headers(&segment_path(w.dir(), Minute::of_ms(ms))).unwrap();
    assert_ne!(frames.last().unwrap().header.dict_id, 0);
}

#[test]
fn sealing_rewrites_a_minute_into_one_frame_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let minute = Minute::of_ms(T0);
    let mut expect = Vec::new();
    // Realtime in reverse time order, in several frames.
    for i in (0..100usize).rev() {
        let ms = T0 + i as i64 * 500;
        let id = Snowflake { time_ms: ms, machine: 3, sequence: 0 }.to_id();
        let line = post(id, ms, i);
        w.ingest(line.as_bytes(), ms).unwrap();
        expect.push((ms, Key::Post(id), line.into_bytes()));
        if i % 25 == 0 {
            w.commit().unwrap();
        }
    }
    let path = segment_path(w.dir(), minute);
    assert_eq!(read_headers(&path).unwrap().1.len(), 4);
    let stats = w.seal(minute).unwrap().expect("four frames to seal");
    assert_eq!((stats.frames_before, stats.records), (4, 100));
    let (_, frames) = read_headers(&path).unwrap();
    assert_eq!(frames.len(), 1);
    let times: Vec<i64> = frames[0].header.entries.iter().map(|e| e.time_ms).collect();
    assert!(times.windows(2).all(|p| p[0] <= p[1]), "sealed frame is in time order");
    assert_eq!(w.seal(minute).unwrap(), None, "already sealed");

    // Late data after a seal is a new frame; duplicates are still caught.
    let ms = T0 + 59_999;
    let id = Snowflake { time_ms: ms, machine: 9, sequence: 0 }.to_id();
    let late = post(id, ms, 7);
    w.ingest(late.as_bytes(), ms).unwrap();
    for (_, _, b) in &expect[..5] {
        assert!(matches!(w.ingest(b, ms).unwrap(), gapless_storage::store::Outcome::Duplicate { .. }));
    }
    w.commit().unwrap();
    expect.push((ms, Key::Post(id), late.into_bytes()));
    expect.sort();
    assert_eq!(read_headers(&path).unwrap().1.len(), 2);
    drop(w);
    drop(store);
    assert_eq!(keys(dir.path()), expect);
}

/// Frames are bounded whatever the size of a minute: a commit and a seal
/// both cut frames at `frame_raw_bytes` (a minute of Firehose is ~1 GB raw;
/// here the bound is small so that a small minute shows it), and a sealed
/// minute reads back exactly.
#[test]
fn commits_and_seals_write_bounded_frames() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 16 << 10;
    let config = StoreConfig { frame_raw_bytes: bound, dict_train_bytes: 0, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    let mut w = store.stream("s").unwrap();
    let minute = Minute::of_ms(T0);
    let mut expect = Vec::new();
    let mut biggest = 0;
    for i in 0..2000usize {
        let ms = T0 + ((i * 7919) % 60_000) as i64; // out of time order
        let id = Snowflake { time_ms: ms, machine: (i % 1000) as u16, sequence: 0 }.to_id();
        let line = post(id, ms, i);
        biggest = biggest.max(line.len() + 1);
        w.ingest(line.as_bytes(), ms).unwrap();
        expect.push((ms, Key::Post(id), line.into_bytes()));
        if i % 500 == 499 {
            w.commit().unwrap(); // ~100 KB per commit: several frames each
        }
    }
    let path = segment_path(w.dir(), minute);
    let bounded = |what: &str| {
        let (_, frames) = read_headers(&path).unwrap();
        for f in &frames {
            assert!(f.header.raw_len as usize <= bound, "{what}: a frame of {} raw bytes", f.header.raw_len);
        }
        frames
    };
    let committed = bounded("commit");
    assert!(committed.len() > 4, "commits cut their frames: {}", committed.len());
    let raw: usize = committed.iter().map(|f| f.header.raw_len as usize).sum();
    let stats = w.seal(minute).unwrap().expect("many small frames to seal");
    assert_eq!(stats.records, 2000);
    let sealed = bounded("seal");
    assert!(sealed.len() <= raw.div_ceil(bound - biggest), "sealed into few frames: {}", sealed.len());
    for f in &sealed {
        let times: Vec<i64> = f.header.entries.iter().map(|e| e.time_ms).collect();
        assert!(times.windows(2).all(|p| p[0] <= p[1]), "each sealed frame is in time order");
    }
    drop(w);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);
}
