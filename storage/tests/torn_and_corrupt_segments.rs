//! A segment cut or corrupted at any byte reopens, keeps every frame the
//! damage did not touch, and keeps the damaged bytes aside.

use gapless_storage::frame::Encoder;
use gapless_storage::io::StdFs;
use gapless_storage::segment::{read_headers, SegmentWriter, FILE_HEADER_LEN};
use gapless_storage::{ActivityKind, Key, Minute};
use proptest::prelude::*;

const MINUTE: Minute = Minute(29_000_000);

/// Writes a segment with `sizes.len()` frames; returns each frame's byte
/// range and its first key.
fn build(dir: &std::path::Path, sizes: &[usize]) -> (std::path::PathBuf, Vec<(u64, u64, u64)>) {
    let path = dir.join("seg");
    let (mut w, frames, repair) = SegmentWriter::open(&StdFs, &path, MINUTE, |_| Ok(())).unwrap();
    assert!(frames.is_empty() && repair.is_clean());
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    let mut spans = Vec::new();
    let mut id = 1u64;
    for &n in sizes {
        let mut enc = Encoder::new();
        let first = id;
        for _ in 0..n {
            let line = format!("{{\"id_str\":\"{id}\",\"text\":\"{}\"}}", "x".repeat((id % 37) as usize));
            enc.push(ActivityKind::Post, Key::Post(id), MINUTE.start_ms() + id as i64, line.as_bytes());
            id += 1;
        }
        let mut out = Vec::new();
        enc.finish(&mut c, 0, &mut out).unwrap();
        let start = w.len();
        w.append(&out).unwrap();
        spans.push((start, w.len(), first));
    }
    w.sync().unwrap();
    (path, spans)
}

fn first_keys(path: &std::path::Path) -> Vec<u64> {
    let (_, frames) = read_headers(path).unwrap();
    frames
        .iter()
        .map(|f| match f.header.entries[0].key {
            Key::Post(id) => id,
            k => panic!("unexpected key {k:?}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn truncated_anywhere_keeps_every_earlier_frame(sizes in prop::collection::vec(1usize..6, 1..6), cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let (path, spans) = build(dir.path(), &sizes);
        let total = std::fs::metadata(&path).unwrap().len();
        let cut = cut.index(total as usize + 1) as u64;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(cut).unwrap();
        drop(f);

        let (_, frames, repair) = SegmentWriter::open(&StdFs, &path, MINUTE, |_| Ok(())).unwrap();
        let expect: Vec<u64> = spans.iter().filter(|s| s.1 <= cut.max(FILE_HEADER_LEN)).map(|s| s.2).collect();
        let got: Vec<u64> = frames.iter().map(|f| match f.header.entries[0].key { Key::Post(id) => id, _ => 0 }).collect();
        prop_assert_eq!(&got, &expect);
        prop_assert!(repair.damaged.is_empty());
        // The repaired file reads back the same, and accepts appends.
        prop_assert_eq!(first_keys(&path), expect);
    }

    #[test]
    fn a_flipped_byte_costs_only_its_frame(sizes in prop::collection::vec(1usize..6, 1..6), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let (path, spans) = build(dir.path(), &sizes);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        std::fs::write(&path, &bytes).unwrap();

        match SegmentWriter::open(&StdFs, &path, MINUTE, |_| Ok(())) {
            Ok((_, frames, repair)) => {
                let got: Vec<u64> = frames.iter().map(|f| match f.header.entries[0].key { Key::Post(id) => id, _ => 0 }).collect();
                let expect: Vec<u64> = spans.iter().filter(|s| !(s.0..s.1).contains(&(at as u64))).map(|s| s.2).collect();
                prop_assert_eq!(&got, &expect);
                if (at as u64) >= FILE_HEADER_LEN {
                    prop_assert!(!repair.is_clean());
                    // Nothing is deleted: the damaged bytes are kept aside.
                    let damaged = std::fs::read(dir.path().join("seg.damaged")).unwrap();
                    prop_assert!(damaged.len() as u64 >= spans.iter().find(|s| (s.0..s.1).contains(&(at as u64))).map(|s| s.1 - s.0).unwrap());
                }
                prop_assert_eq!(first_keys(&path), expect);
            }
            // A damaged file header is refused, and the file is left as it was.
            Err(_) => {
                prop_assert!((at as u64) < FILE_HEADER_LEN);
                prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
            }
        }
    }
}

#[test]
fn appends_after_a_repair_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (path, spans) = build(dir.path(), &[3, 3]);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(spans[1].1 - 5).unwrap();
    drop(f);
    let (mut w, frames, repair) = SegmentWriter::open(&StdFs, &path, MINUTE, |_| Ok(())).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(repair.truncated_tail, spans[1].1 - 5 - spans[1].0);
    let mut enc = Encoder::new();
    enc.push(ActivityKind::Post, Key::Post(99), MINUTE.start_ms(), b"{}");
    let mut out = Vec::new();
    enc.finish(&mut zstd::bulk::Compressor::new(3).unwrap(), 0, &mut out).unwrap();
    w.append(&out).unwrap();
    w.sync().unwrap();
    assert_eq!(first_keys(&path), vec![1, 99]);
}

#[test]
fn a_segment_of_another_minute_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = build(dir.path(), &[1]);
    let err = SegmentWriter::open(&StdFs, &path, Minute(MINUTE.0 + 1), |_| Ok(())).err().unwrap();
    assert!(err.to_string().contains("expected"), "{err}");
}
