//! The storage figures of the README, side by side in one run.
//!
//! `cargo bench --bench figures` prints:
//! 1. bytes per Post ID of the ID index against a `RoaringTreemap` of raw
//!    IDs and a `HashSet<u64>`, for minutes of Decahose (600 Posts/s);
//! 2. compression ratio of frames of 10, 60 and 600 Posts, with and without
//!    a dictionary trained on other minutes of the same stream;
//! 3. the ingest path (classify + dedup + compress + append + commit) on one
//!    core against zstd alone compressing the same bytes at the same level
//!    in the same frames, interleaved, best of 5 each;
//! 4. `gapless import` of a gzip file against `gzip -dc FILE | zstd -3 >
//!    /dev/null`, interleaved, best of 3 each;
//! 5. the archive's size against `gzip -6` NDJSON of the same Posts (what
//!    other collectors keep): two minutes written as realtime writes them
//!    (a commit a second), then sealed at several levels, with each seal's
//!    pace on one core.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use gapless_storage::id_index::MinuteKeys;
use gapless_storage::store::{Store, StoreConfig};
use gapless_storage::{Key, Minute};

const START_MS: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z
const RATE: u64 = 600;

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    bytes_per_id();
    compression();
    ingest_vs_zstd();
    import_vs_pipeline();
    sealed_vs_gzip();
}

fn bytes_per_id() {
    let (mut compact, mut treemap, mut hashset, mut n) = (0usize, 0usize, 0usize, 0usize);
    for m in 0..10 {
        let minute = Minute::of_ms(START_MS).0 + m;
        let ids = common::minute_of_ids(m as u64, minute * 60_000, RATE);
        let mut keys = MinuteKeys::default();
        let mut tm = roaring::RoaringTreemap::new();
        let mut hs = HashSet::new();
        for &id in &ids {
            keys.insert(Minute(minute), Key::Post(id));
            tm.insert(id);
            hs.insert(id);
        }
        compact += keys.post_bytes();
        treemap += tm.serialized_size();
        // A HashSet<u64> holds 8 bytes per slot plus a control byte, at a
        // load factor of at most 7/8.
        hashset += hs.capacity() * 9;
        n += ids.len();
    }
    println!("## ID index: bytes per Post ID (10 minutes at {RATE} Posts/s, {} IDs)", n);
    println!("| structure | bytes/ID |\n|---|---|");
    println!("| per-minute compact 32-bit keys (gapless) | {:.2} |", compact as f64 / n as f64);
    println!("| RoaringTreemap of raw IDs | {:.2} |", treemap as f64 / n as f64);
    println!("| HashSet<u64> | {:.2} |", hashset as f64 / n as f64);
    println!();
}

fn compress_frames(lines: &[String], per_frame: usize, dict: Option<&[u8]>) -> (usize, usize) {
    let mut c = match dict {
        Some(d) => zstd::bulk::Compressor::with_dictionary(3, d).unwrap(),
        None => zstd::bulk::Compressor::new(3).unwrap(),
    };
    let (mut raw, mut out) = (0, 0);
    for chunk in lines.chunks(per_frame) {
        let mut buf = Vec::new();
        for l in chunk {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        raw += buf.len();
        out += c.compress(&buf).unwrap().len();
    }
    (raw, out)
}

fn compression() {
    let train = common::stream(1, START_MS, 5, RATE);
    let test = common::stream(2, START_MS + 3_600_000, 60, RATE);
    let sizes: Vec<usize> = train.iter().map(|l| l.len()).collect();
    let joined: Vec<u8> = train.concat().into_bytes();
    let dict = zstd::dict::from_continuous(&joined, &sizes, 112 << 10).unwrap();
    let avg = test.iter().map(|l| l.len()).sum::<usize>() / test.len();
    println!("## Compression ratio, zstd level 3 (Posts of {avg} bytes on average; dictionary of 112 KiB trained on another hour)");
    println!("| Posts per frame | no dictionary | dictionary |\n|---|---|---|");
    for per in [10, 60, 600, 36_000] {
        let (raw, plain) = compress_frames(&test, per, None);
        let (_, with) = compress_frames(&test, per, Some(&dict));
        println!("| {per} | {:.2} | {:.2} |", raw as f64 / plain as f64, raw as f64 / with as f64);
    }
    println!();
}

fn ingest_vs_zstd() {
    let lines = common::stream(3, START_MS, 60, RATE);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut best_zstd = f64::MAX;
    let mut best_ingest = f64::MAX;
    let mut best_classify = f64::MAX;
    let mut best_accept = f64::MAX;
    let mut best_pipe = f64::MAX;
    let limits = gapless_storage::activity::Limits::default();
    for round in 0..5 {
        let t = Instant::now();
        for l in &lines {
            std::hint::black_box(gapless_storage::activity::classify(l.as_bytes(), &limits).is_ok());
        }
        best_classify = best_classify.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let (_, out) = compress_frames(&lines, lines.len(), None);
        std::hint::black_box(out);
        best_zstd = best_zstd.min(t.elapsed().as_secs_f64());

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), level3()).unwrap();
        let mut w = store.stream("bench").unwrap();
        let t = Instant::now();
        for l in &lines {
            w.ingest(l.as_bytes(), START_MS).unwrap();
        }
        best_accept = best_accept.min(t.elapsed().as_secs_f64());
        let (_, stats) = w.commit().unwrap();
        best_ingest = best_ingest.min(t.elapsed().as_secs_f64());
        assert_eq!(stats.records, lines.len(), "round {round}: every line stored");

        let (summary, secs, _dir) = import_in_process(level3(), &lines);
        best_pipe = best_pipe.min(secs);
        assert_eq!(summary.stored as usize, lines.len());
    }
    let n = lines.len() as f64;
    println!(
        "## Ingest on one core vs zstd alone (one minute, {} activities, {:.1} MB, best of 5)",
        lines.len(),
        bytes as f64 / 1e6
    );
    println!("| path | activities/s | MB/s |\n|---|---|---|");
    println!(
        "| zstd -3 alone, same bytes, same frames | {:.0} | {:.0} |",
        n / best_zstd,
        bytes as f64 / 1e6 / best_zstd
    );
    println!(
        "| ingest: classify + dedup + compress + append + fsync | {:.0} | {:.0} |",
        n / best_ingest,
        bytes as f64 / 1e6 / best_ingest
    );
    println!("| of which classify alone | {:.0} | {:.0} |", n / best_classify, bytes as f64 / 1e6 / best_classify);
    println!(
        "| of which classify + dedup + buffer (no commit) | {:.0} | {:.0} |",
        n / best_accept,
        bytes as f64 / 1e6 / best_accept
    );
    println!(
        "| ingest pipelined on both cores (classify ‖ dedup ‖ compress + append + fsync) | {:.0} | {:.0} |",
        n / best_pipe,
        bytes as f64 / 1e6 / best_pipe
    );
    println!("ingest on one core / zstd alone = {:.2}", best_zstd / best_ingest);
    println!("ingest pipelined / zstd alone = {:.2}", best_zstd / best_pipe);
    println!();
}

fn import_vs_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decahose.ndjson.gz");
    let lines = common::stream(4, START_MS, 120, RATE);
    {
        let f = std::fs::File::create(&file).unwrap();
        let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::new(6));
        for l in &lines {
            gz.write_all(l.as_bytes()).unwrap();
            gz.write_all(b"\r\n").unwrap();
        }
        gz.finish().unwrap().flush().unwrap();
    }
    let raw: usize = lines.iter().map(|l| l.len() + 2).sum();
    let have_tools = Command::new("zstd").arg("--version").stdout(Stdio::null()).status().is_ok()
        && Command::new("gzip").arg("--version").stdout(Stdio::null()).status().is_ok();
    let gapless = env!("CARGO_BIN_EXE_gapless");
    let mut best_import = f64::MAX;
    let mut best_pipe = f64::MAX;
    for _ in 0..3 {
        if have_tools {
            let t = Instant::now();
            let ok = Command::new("sh")
                .arg("-c")
                .arg(format!("gzip -dc '{}' | zstd -q -3 > /dev/null", file.display()))
                .status()
                .unwrap()
                .success();
            assert!(ok);
            best_pipe = best_pipe.min(t.elapsed().as_secs_f64());
        }
        let data = dir.path().join(format!("data-{}", best_import.to_bits()));
        let t = Instant::now();
        let ok = Command::new(gapless)
            .args(["import", "--data"])
            .arg(&data)
            .args(["--stream", "decahose"])
            .arg(&file)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        best_import = best_import.min(t.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&data).unwrap();
    }
    let n = lines.len() as f64;
    println!(
        "## Import end to end vs the shell pipeline ({} activities, {:.0} MB NDJSON gzipped, best of 3)",
        lines.len(),
        raw as f64 / 1e6
    );
    println!("| command | activities/s | MB/s |\n|---|---|---|");
    if have_tools {
        println!(
            "| gzip -dc FILE \\| zstd -3 > /dev/null | {:.0} | {:.0} |",
            n / best_pipe,
            raw as f64 / 1e6 / best_pipe
        );
    }
    println!("| gapless import | {:.0} | {:.0} |", n / best_import, raw as f64 / 1e6 / best_import);
    if have_tools {
        println!("gapless import / pipeline = {:.2}", best_pipe / best_import);
    }
}

/// Bulk frames at level 3: the ingest figures compare with zstd -3 alone.
fn level3() -> StoreConfig {
    StoreConfig { level: 3, ..StoreConfig::bulk() }
}

/// Bytes of the files under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    n
}

fn sealed_vs_gzip() {
    println!();
    let seconds = 120;
    let lines = common::stream(5, START_MS, seconds, RATE);
    let raw: usize = lines.iter().map(|l| l.len() + 1).sum();
    let t = Instant::now();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    for l in &lines {
        gz.write_all(l.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    let gz_bytes = gz.finish().unwrap().len() as f64;
    let gz_secs = t.elapsed().as_secs_f64();
    println!(
        "## Archive size vs gzip -6 NDJSON of the same Posts ({} activities, {:.0} MB NDJSON, 2 minutes written a commit a second, then sealed)",
        lines.len(),
        raw as f64 / 1e6
    );
    println!("| form | bytes | / gzip -6 | sealing, MB/s on one core |\n|---|---|---|---|");
    println!("| gzip -6 NDJSON (flate2) | {:.0} | 1.00 | {:.0} (gzip itself) |", gz_bytes, raw as f64 / 1e6 / gz_secs);
    let default_level = StoreConfig::default().seal_level;
    let mut rows: Vec<(String, Option<i32>)> =
        vec![("realtime frames, not sealed (level 1, a frame a second)".into(), None)];
    for level in [3, 6, 9, 10, 12] {
        let note = match level {
            3 => " (before)",
            l if l == default_level => " (the default now)",
            _ => "",
        };
        rows.push((format!("sealed at level {level}{note}"), Some(level)));
    }
    let mut sealed_default = 0.0;
    for (name, level) in rows {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { seal_level: level.unwrap_or(default_level), ..StoreConfig::default() };
        let store = Store::open(dir.path(), config).unwrap();
        let mut w = store.stream("s").unwrap();
        for second in lines.chunks(RATE as usize) {
            for l in second {
                w.ingest(l.as_bytes(), START_MS).unwrap();
            }
            w.commit().unwrap();
        }
        let mut pace = String::from("-");
        if level.is_some() {
            let t = Instant::now();
            for m in 0..=(seconds / 60) {
                w.seal(Minute(Minute::of_ms(START_MS).0 + m)).unwrap();
            }
            pace = format!("{:.0}", raw as f64 / 1e6 / t.elapsed().as_secs_f64());
        }
        drop(w);
        let bytes = du(&dir.path().join("streams/s/segments")) as f64;
        if level == Some(default_level) {
            sealed_default = bytes;
        }
        println!("| {name} | {bytes:.0} | {:.2} | {pace} |", bytes / gz_bytes);
    }
    println!("sealed archive bytes / gzip -6 NDJSON of the same Posts = {:.2}", sealed_default / gz_bytes);
    println!();

    // Why bulk import does not write at the seal level: the import
    // pipeline (in process, both cores) at its level and at the seal level.
    println!("## Import pipeline (in process) by zstd level, same {:.0} MB", raw as f64 / 1e6);
    println!("| level | MB/s | / gzip -6 |\n|---|---|---|");
    for level in [StoreConfig::bulk().level, default_level] {
        let (summary, secs, dir) = import_in_process(StoreConfig { level, ..StoreConfig::bulk() }, &lines);
        assert_eq!(summary.stored as usize, lines.len());
        let bytes = du(&dir.path().join("streams/s/segments")) as f64;
        println!("| {level} | {:.0} | {:.2} |", raw as f64 / 1e6 / secs, bytes / gz_bytes);
    }
}

/// `gapless import`'s pipeline in process over `lines` (batches of 1,400
/// lines, as its reader hands them on), into a fresh store with `config`:
/// what it did, the wall seconds it took, and the store's directory.
fn import_in_process(config: StoreConfig, lines: &[String]) -> (gapless::import::Summary, f64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config).unwrap();
    let w = store.stream("s").unwrap();
    let input = lines.to_vec();
    let t = Instant::now();
    let summary = gapless::import::run_pipeline(w, move |tx| {
        let limits = gapless_storage::activity::Limits::default();
        for chunk in input.chunks(1400) {
            let mut buf = Vec::with_capacity(4 << 20);
            for l in chunk {
                buf.extend_from_slice(l.as_bytes());
                buf.push(b'\n');
            }
            tx.send(gapless::lines::Batch::classify(buf, &limits)).unwrap();
        }
        Ok(0)
    })
    .unwrap();
    (summary, t.elapsed().as_secs_f64(), dir)
}
