//! Side-by-side figures for the README, in one run:
//! - NDJSON export against `zstd -dc` of the same bytes (the export's own
//!   output, compressed with `zstd -3` in frames of a minute, as stored);
//! - Parquet export against DuckDB converting the same NDJSON to Parquet
//!   (auto-detected schema; and the same 13 columns as segment-export).
//!
//! `cargo bench -p segment-export --bench export` (release build). Needs
//! `zstd` on the PATH; the DuckDB rows need `python3 -m pip install duckdb`
//! and are left out without it. `EXPORT_BENCH_POSTS` sets the size
//! (default 72,000 activities of ~2.9 KB, 2 hours at 600 a minute;
//! the generator is the workspace's `benches/common`, copied in `gen.rs`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use gapless_storage::store::{Store, StoreConfig};

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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let posts: u64 = std::env::var("EXPORT_BENCH_POSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(72_000);
    let per_minute = 600u64;
    let seconds = (posts / 10) as i64;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut raw_bytes = 0u64;
    {
        // A Decahose-like stream at 10 activities/s (~2% deletes), committed every 10 s.
        let store = Store::open(&data, StoreConfig::bulk()).unwrap();
        let mut w = store.stream("decahose").unwrap();
        let lines = gen::stream(7, BASE_MS, seconds, 10);
        for (i, l) in lines.iter().enumerate() {
            raw_bytes += l.len() as u64 + 1;
            w.ingest(l.as_bytes(), BASE_MS + (i as i64 / 10) * 1000).unwrap();
            if (i + 1) % 100 == 0 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
    }
    let minutes = posts.div_ceil(per_minute) as i64;
    let from = format!("@{}", BASE_MS / 1000);
    let to = format!("@{}", BASE_MS / 1000 + minutes * 60);
    let exe = env!("CARGO_BIN_EXE_segment-export");
    let d = data.to_str().unwrap();
    let ndjson = dir.path().join("same.ndjson");
    let zst = dir.path().join("same.ndjson.zst");
    let pq = dir.path().join("out.parquet");
    let export = |extra: &[&str], out: Option<&Path>| {
        let mut c = Command::new(exe);
        c.args(["--data", d, "--stream", "decahose", "--from", &from, "--to", &to, "--quiet", "--now", &to])
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
    time_cmd(&mut export(&[], Some(&ndjson)));
    assert_eq!(std::fs::metadata(&ndjson).unwrap().len(), raw_bytes);
    assert!(Command::new("zstd")
        .args(["-q", "-3", "-f", "-o", zst.to_str().unwrap(), ndjson.to_str().unwrap()])
        .status()
        .unwrap()
        .success());

    let runs = 3;
    let t_zstd =
        best_of(runs, || time_cmd(Command::new("zstd").args(["-dc", zst.to_str().unwrap()]).stdout(Stdio::null())));
    let t_ndjson = best_of(runs, || time_cmd(&mut export(&[], None)));
    let t_ndjson_zst = best_of(runs, || time_cmd(&mut export(&["--compress", "zstd"], None)));
    let t_parquet = best_of(runs, || time_cmd(&mut export(&["--format", "parquet"], Some(&pq))));
    let pq_bytes = std::fs::metadata(&pq).unwrap().len();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_convert.py");
    let duck = |mode: &str| -> Option<(f64, u64)> {
        let out_pq = dir.path().join(format!("duck-{mode}.parquet"));
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
        println!("| {name} | {:.2} | {:.0} | {:.0} |{extra}", t, posts as f64 / t, mb / t);
    };
    println!(
        "#### NDJSON export vs `zstd -dc` of the same bytes ({posts} activities, {minutes} minutes, {:.0} MB NDJSON, best of {runs})",
        mb
    );
    println!("| command | seconds | activities/s | MB/s |");
    println!("|---|---|---|---|");
    row("`zstd -dc same.ndjson.zst > /dev/null`", t_zstd, String::new());
    row("`segment-export --format ndjson > /dev/null`", t_ndjson, String::new());
    row("`segment-export --format ndjson --compress zstd > /dev/null`", t_ndjson_zst, String::new());
    println!("segment-export ndjson / zstd -dc = {:.2} (throughput)", t_zstd / t_ndjson);
    println!();
    println!("#### Parquet export vs DuckDB converting the same NDJSON to Parquet (best of {runs})");
    println!("| command | seconds | activities/s | MB/s | Parquet MB |");
    println!("|---|---|---|---|---|");
    row(
        "`segment-export --format parquet` (13 typed columns + raw)",
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
