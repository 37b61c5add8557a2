//! Side-by-side figures for the README, in one run:
//! - NDJSON export against `zstd -dc` of the same Posts (the export's own
//!   output, compressed with `zstd -3` as one stream), from three archives
//!   of the same activities: written in bulk (import's config), written as
//!   the realtime archiver writes (a frame a second, with the stream's
//!   dictionary), and the realtime one sealed (a frame a minute). Every
//!   archive exports the same bytes (checked);
//! - Parquet export against DuckDB converting the same NDJSON to Parquet
//!   (auto-detected schema; and the same 13 columns as segment-export).
//!
//! `cargo bench -p segment-export --bench export` (release build). Needs
//! `zstd` on the PATH; the DuckDB rows need `python3 -m pip install duckdb`
//! and are left out without it. `EXPORT_BENCH_POSTS` sets the size
//! (default 72,000 activities of ~2.9 KB, 2 hours at 600 a minute;
//! the generator is the workspace's `benches/common`); `EXPORT_BENCH_KEEP=DIR`
//! keeps the archives in `DIR` (`data-0` bulk, `data-1` realtime, `data-2`
//! sealed) to profile the release binary on them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use gapless_storage::store::{Store, StoreConfig};
use gapless_storage::Minute;

// The benchmark input generator the storage figures use.
#[path = "../../../benches/common/mod.rs"]
mod gen;

const BASE_MS: i64 = 1_500_336_000_000;

fn best_of(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..n).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn time_cmd(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let st = cmd.status().expect("run");
    assert!(st.success(), "{cmd:?} failed");
    t.elapsed().as_secs_f64()
}

/// How an archive of the benchmark was written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    /// `StoreConfig::bulk()` (import's config), a commit every 100
    /// activities (10 s): plain frames of 100 records.
    Bulk,
    /// As the realtime archiver writes (`StoreConfig::default()`, as
    /// `src/archiver.rs` opens the store): a commit every second (10
    /// activities), a dictionary trained by the store after 8 MB of samples
    /// and used for every frame after it: ~60 small frames a minute.
    Realtime,
    /// Realtime, then every minute sealed (`StreamWriter::seal`, what the
    /// archiver's writer thread calls once a minute is quiet): one plain
    /// frame per minute here (a frame is cut at 16 MiB of raw bytes).
    Sealed,
}

impl Written {
    fn name(self) -> &'static str {
        match self {
            Written::Bulk => "bulk (`StoreConfig::bulk()`, frames of 100)",
            Written::Realtime => "realtime (a frame a second, dictionary)",
            Written::Sealed => "realtime, sealed (a frame a minute)",
        }
    }
}

/// Writes the activities into a new archive at `data`, as `how` says.
fn write_archive(data: &Path, lines: &[String], how: Written) {
    let config = if how == Written::Bulk { StoreConfig::bulk() } else { StoreConfig::default() };
    let every = if how == Written::Bulk { 100 } else { 10 };
    let store = Store::open(data, config).unwrap();
    let mut w = store.stream("decahose").unwrap();
    for (i, l) in lines.iter().enumerate() {
        w.ingest(l.as_bytes(), BASE_MS + (i as i64 / 10) * 1000).unwrap();
        if (i + 1) % every == 0 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    if how == Written::Sealed {
        let dir = gapless_storage::layout::stream_dir(data, "decahose");
        let first = Minute::of_ms(BASE_MS);
        for m in gapless_storage::layout::minutes_with_segments(&dir, first, Minute(first.0 + 1_000_000)).unwrap() {
            w.seal(m).unwrap();
        }
    }
}

/// Frames, frames with a dictionary, and bytes of the archive's segments.
fn frames_of(data: &Path) -> (usize, usize, u64) {
    let dir = gapless_storage::layout::stream_dir(data, "decahose");
    let first = Minute::of_ms(BASE_MS);
    let (mut frames, mut with_dict, mut bytes) = (0, 0, 0);
    for m in gapless_storage::layout::minutes_with_segments(&dir, first, Minute(first.0 + 1_000_000)).unwrap() {
        let path = gapless_storage::layout::segment_path(&dir, m);
        bytes += std::fs::metadata(&path).unwrap().len();
        let (_, fr) = gapless_storage::segment::read_headers(&path).unwrap();
        frames += fr.len();
        with_dict += fr.iter().filter(|f| f.header.dict_id != 0).count();
    }
    (frames, with_dict, bytes)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let posts: u64 = std::env::var("EXPORT_BENCH_POSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(72_000);
    let per_minute = 600u64;
    let seconds = (posts / 10) as i64;
    // EXPORT_BENCH_KEEP=DIR writes the archives there and keeps them (to
    // profile the release binary on them afterwards).
    let tmp = tempfile::tempdir().unwrap();
    let root = match std::env::var_os("EXPORT_BENCH_KEEP") {
        Some(d) => std::path::PathBuf::from(d),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&root).unwrap();
    // A Decahose-like stream at 10 activities/s (~2% deletes).
    let lines = gen::stream(7, BASE_MS, seconds, 10);
    let raw_bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    let variants = [Written::Bulk, Written::Realtime, Written::Sealed];
    let datas: Vec<std::path::PathBuf> = variants
        .iter()
        .enumerate()
        .map(|(i, &how)| {
            let data = root.join(format!("data-{i}"));
            let t = Instant::now();
            write_archive(&data, &lines, how);
            eprintln!("wrote the {} archive in {:.1} s", how.name(), t.elapsed().as_secs_f64());
            data
        })
        .collect();
    drop(lines);
    let minutes = posts.div_ceil(per_minute) as i64;
    let from = format!("@{}", BASE_MS / 1000);
    let to = format!("@{}", BASE_MS / 1000 + minutes * 60);
    let exe = env!("CARGO_BIN_EXE_segment-export");
    let ndjson = root.join("same.ndjson");
    let zst = root.join("same.ndjson.zst");
    let pq = root.join("out.parquet");
    let export = |data: &Path, extra: &[&str], out: Option<&Path>| {
        let mut c = Command::new(exe);
        c.args(["--data", data.to_str().unwrap(), "--stream", "decahose", "--from", &from, "--to", &to])
            .args(["--quiet", "--now", &to])
            .args(extra);
        match out {
            Some(p) => {
                c.args(["--out", p.to_str().unwrap()]);
            }
            None => {
                c.stdout(Stdio::null());
            }
        }
        c.stderr(Stdio::null());
        c
    };
    // The same bytes: the export itself, stored with zstd -3 (minute frames are
    // what the archive holds; one zstd stream is what zstd -dc reads fastest).
    time_cmd(&mut export(&datas[0], &[], Some(&ndjson)));
    assert_eq!(std::fs::metadata(&ndjson).unwrap().len(), raw_bytes);
    let same = std::fs::read(&ndjson).unwrap();
    for data in &datas[1..] {
        let other = root.join("other.ndjson");
        time_cmd(&mut export(data, &[], Some(&other)));
        assert!(std::fs::read(&other).unwrap() == same, "every archive exports the same bytes");
    }
    drop(same);
    assert!(Command::new("zstd")
        .args(["-q", "-3", "-f", "-o", zst.to_str().unwrap(), ndjson.to_str().unwrap()])
        .status()
        .unwrap()
        .success());

    // Side by side: each round times every NDJSON command once, best of
    // `ndjson_runs` (they take a tenth of a second: on a shared machine a
    // neighbour's burst can double one of them); Parquet and DuckDB best of
    // `runs`.
    let (runs, ndjson_runs) = (3, 7);
    let mut t_zstd = f64::INFINITY;
    let mut t_ndjson = vec![f64::INFINITY; datas.len()];
    let mut t_ndjson_zst = f64::INFINITY;
    for _ in 0..ndjson_runs {
        t_zstd = t_zstd.min(time_cmd(Command::new("zstd").args(["-dc", zst.to_str().unwrap()]).stdout(Stdio::null())));
        for (t, data) in t_ndjson.iter_mut().zip(&datas) {
            *t = t.min(time_cmd(&mut export(data, &[], None)));
        }
        t_ndjson_zst = t_ndjson_zst.min(time_cmd(&mut export(&datas[0], &["--compress", "zstd"], None)));
    }
    let t_parquet = best_of(runs, || time_cmd(&mut export(&datas[0], &["--format", "parquet"], Some(&pq))));
    let pq_bytes = std::fs::metadata(&pq).unwrap().len();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_convert.py");
    let duck = |mode: &str| -> Option<(f64, u64)> {
        let out_pq = root.join(format!("duck-{mode}.parquet"));
        let mut best = f64::INFINITY;
        for _ in 0..runs {
            let o = Command::new("python3")
                .args([script, mode, ndjson.to_str().unwrap(), out_pq.to_str().unwrap()])
                .output()
                .ok()?;
            if !o.status.success() {
                eprintln!("duckdb {mode}: {}", String::from_utf8_lossy(&o.stderr));
                return None;
            }
            best = best.min(String::from_utf8_lossy(&o.stdout).trim().parse().ok()?);
        }
        Some((best, std::fs::metadata(&out_pq).ok()?.len()))
    };
    let duck_auto = duck("auto");
    let duck_cols = duck("columns");

    let mb = raw_bytes as f64 / 1e6;
    let row = |name: &str, t: f64, extra: String| {
        println!("| {name} | {:.3} | {:.0} | {:.0} |{extra}", t, posts as f64 / t, mb / t);
    };
    println!(
        "#### NDJSON export vs `zstd -dc` of the same Posts ({posts} activities, {minutes} minutes, {:.0} MB NDJSON, best of {ndjson_runs}, side by side)",
        mb
    );
    println!("| command | seconds | activities/s | MB/s | / zstd -dc |");
    println!("|---|---|---|---|---|");
    row("`zstd -dc same.ndjson.zst > /dev/null`", t_zstd, " 1.00 |".into());
    for ((how, data), t) in variants.iter().zip(&datas).zip(&t_ndjson) {
        let (frames, with_dict, bytes) = frames_of(data);
        row(
            &format!(
                "`segment-export --format ndjson > /dev/null`, {}: {frames} frames ({with_dict} with the dictionary), {:.1} MB",
                how.name(),
                bytes as f64 / 1e6
            ),
            *t,
            format!(" **{:.2}** |", t_zstd / t),
        );
    }
    row(
        &format!("`segment-export --format ndjson --compress zstd > /dev/null`, {}", variants[0].name()),
        t_ndjson_zst,
        format!(" {:.2} |", t_zstd / t_ndjson_zst),
    );
    println!();
    println!("#### Parquet export vs DuckDB converting the same NDJSON to Parquet (best of {runs})");
    println!("| command | seconds | activities/s | MB/s | Parquet MB |");
    println!("|---|---|---|---|---|");
    row(
        "`segment-export --format parquet` (13 typed columns + raw), bulk archive",
        t_parquet,
        format!(" {:.1} |", pq_bytes as f64 / 1e6),
    );
    match duck_cols {
        Some((t, b)) => {
            row("DuckDB: same 13 columns from `read_json` → Parquet zstd", t, format!(" {:.1} |", b as f64 / 1e6))
        }
        None => println!("| DuckDB (same columns) | not run (python3 -m pip install duckdb) | | | |"),
    }
    match duck_auto {
        Some((t, b)) => row(
            "DuckDB: `read_json_auto` (all fields, inferred) → Parquet zstd",
            t,
            format!(" {:.1} |", b as f64 / 1e6),
        ),
        None => println!("| DuckDB (auto) | not run | | | |"),
    }
    if let Some((t, _)) = duck_cols {
        println!("segment-export parquet / DuckDB same columns = {:.2} (throughput)", t / t_parquet);
    }
}
