//! The export reads minutes on worker threads (`src/read.rs`): what it
//! writes must be exactly what a sequential reading of the archive with the
//! library's reader gives, byte for byte, whatever the frames look like.

#[path = "../../../benches/common/mod.rs"]
mod gen;

use std::path::Path;
use std::process::Command;

use gapless_storage::reader::RangeReader;
use gapless_storage::segment::read_headers;
use gapless_storage::store::{segment_path, Store, StoreConfig};
use gapless_storage::Minute;

/// 2017-07-18T00:00:00Z.
const BASE_MS: i64 = 1_500_336_000_000;
const MINUTES: i64 = 12;

fn minute(i: i64) -> Minute {
    Minute::of_ms(BASE_MS + i * 60_000)
}

fn user_withheld(ms: i64, country: &str) -> String {
    format!(
        r#"{{"user_withheld":{{"user":{{"id":12,"id_str":"12"}},"withheld_in_countries":["{country}"],"timestamp_ms":"{ms}"}}}}"#
    )
}

/// Appends to the segment at `path` the bytes of frames `which` of the
/// segment at `from`.
fn append_frames(path: &Path, from: &Path, which: impl Fn(usize) -> bool) -> usize {
    let (_, frames) = read_headers(from).unwrap();
    let src = std::fs::read(from).unwrap();
    let mut dst = std::fs::read(path).unwrap();
    let mut n = 0;
    for (_, f) in frames.iter().enumerate().filter(|(i, _)| which(*i)) {
        dst.extend_from_slice(&src[f.offset as usize..(f.offset + f.header.frame_len()) as usize]);
        n += 1;
    }
    std::fs::write(path, dst).unwrap();
    n
}

/// What `RangeReader` reads, one line per record, minute after minute.
fn sequential(data: &Path, range: std::ops::Range<i64>) -> Vec<u8> {
    let mut out = Vec::new();
    for batch in RangeReader::new(data, "decahose", range) {
        for (_, b) in batch.unwrap().iter() {
            out.extend_from_slice(b);
            out.push(b'\n');
        }
    }
    out
}

/// 12 minutes of realistic Posts (~3 KB, 10 a second) written as the
/// realtime archiver writes them (a frame a second), with a dictionary
/// trained early so that most frames use it; two minutes sealed (frames cut
/// at 64 KiB, each in time order); duplicates across frames (a frame
/// appended twice; another archive's frames with the same Posts in other
/// bytes, and compliance messages, equal and not, at the same time); and a
/// damaged frame in the middle of a minute.
#[test]
fn parallel_export_is_byte_identical_to_a_sequential_reading() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let other = dir.path().join("other");
    let lines = gen::stream(11, BASE_MS, MINUTES * 60, 10);
    let config = StoreConfig {
        dict_train_bytes: 512 << 10,
        dict_size: 16 << 10,
        frame_raw_bytes: 64 << 10,
        ..StoreConfig::default()
    };
    let m7_ms = BASE_MS + 7 * 60_000 + 30_000;
    {
        let store = Store::open(&data, config).unwrap();
        let mut w = store.stream("decahose").unwrap();
        for (i, l) in lines.iter().enumerate() {
            w.ingest(l.as_bytes(), BASE_MS + (i as i64 / 10) * 1000).unwrap();
            if (i + 1) % 10 == 0 {
                w.commit().unwrap();
            }
        }
        w.ingest(user_withheld(m7_ms, "DE").as_bytes(), m7_ms).unwrap();
        w.commit().unwrap();
        for m in [2, 3] {
            assert!(w.seal(minute(m)).unwrap().is_some(), "minute {m} sealed");
        }
    }
    // Another archive with minute 7's Posts in other bytes (same keys and
    // times) and two compliance messages at one time, one equal to ours.
    {
        let store = Store::open(&other, StoreConfig::bulk()).unwrap();
        let mut w = store.stream("decahose").unwrap();
        let posts7 = lines.iter().enumerate().skip(7 * 600).take(600).filter(|(_, l)| l.contains("\"text\":\""));
        for (i, l) in posts7.step_by(3) {
            let edited = l.replacen("\"text\":\"", "\"text\":\"edited ", 1);
            w.ingest(edited.as_bytes(), BASE_MS + (i as i64 / 10) * 1000).unwrap();
        }
        w.ingest(user_withheld(m7_ms, "DE").as_bytes(), m7_ms).unwrap();
        w.ingest(user_withheld(m7_ms, "FR").as_bytes(), m7_ms).unwrap();
        w.commit().unwrap();
    }
    let stream = data.join("streams/decahose");
    let seg = |m: i64| segment_path(&stream, minute(m));
    assert!(append_frames(&seg(5), &seg(5), |i| i == 0) == 1, "minute 5: its first frame again");
    assert!(append_frames(&seg(7), &segment_path(&other.join("streams/decahose"), minute(7)), |_| true) >= 1);
    // Minute 9: a payload byte flipped in a frame in the middle.
    let (_, frames9) = read_headers(&seg(9)).unwrap();
    assert!(frames9.len() > 20, "realtime: a frame a second");
    let bad = &frames9[frames9.len() / 2];
    let lost9: usize = frames9[frames9.len() / 2..].iter().map(|f| f.header.entries.len()).sum();
    let mut bytes = std::fs::read(seg(9)).unwrap();
    bytes[bad.offset as usize + bad.header.header_len + 5] ^= 0x10;
    std::fs::write(seg(9), bytes).unwrap();

    // The archive is what the test says it is.
    let (mut frames, mut with_dict, mut records) = (0, 0, 0);
    for m in 0..MINUTES {
        let (_, fr) = read_headers(&seg(m)).unwrap();
        frames += fr.len();
        with_dict += fr.iter().filter(|f| f.header.dict_id != 0).count();
        records += fr.iter().map(|f| f.header.entries.len()).sum::<usize>();
    }
    assert!(with_dict > frames / 2, "most frames use the dictionary: {with_dict} of {frames}");
    let (_, sealed) = read_headers(&seg(2)).unwrap();
    assert!(sealed.len() >= 10 && sealed.iter().all(|f| f.header.dict_id == 0), "sealed: frames of 64 KiB");

    for (from, to) in [(BASE_MS, BASE_MS + MINUTES * 60_000), (BASE_MS + 90_000, BASE_MS + 9 * 60_000 + 31_000)] {
        let want = sequential(&data, from..to);
        let out = Command::new(env!("CARGO_BIN_EXE_segment-export"))
            .args(["--data", data.to_str().unwrap(), "--stream", "decahose"])
            .args(["--from", &format!("@{}", from / 1000), "--to", &format!("@{}", to / 1000)])
            .args(["--now", &format!("@{}", to / 1000 + 3600)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("minute {}", minute(9))) && stderr.contains("do not verify"), "{stderr}");
        assert!(out.stdout == want, "byte-identical to a sequential reading ({from}..{to})");
        if from == BASE_MS {
            let got = want.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            let text = String::from_utf8_lossy(&want);
            // Duplicates dropped, the damaged frame's records and those
            // after it in minute 9 not read, the second compliance message kept.
            assert!(got < records, "{got} of {records} records in the frames");
            // Each Post once (in one of its two versions), both compliance
            // messages, less what minute 9 holds from its damaged frame on.
            assert_eq!(got, lines.len() + 2 - lost9);
            assert_eq!(text.matches("\"withheld_in_countries\":[\"FR\"]").count(), 1);
            assert_eq!(text.matches("\"withheld_in_countries\":[\"DE\"]").count(), 1);
        }
    }
}
