//! Memory of sealing: does sealing a minute stream, whatever the minute's
//! size?
//!
//! For each size (raw bytes of one minute), this writes one minute of
//! synthetic Posts (distinct IDs, ~2.3 KB each, words drawn at random so
//! that they compress like text, not like a repeated template) into a fresh
//! store in commits of 16 MiB (as realtime does, many frames), then resets
//! the process's peak RSS (`/proc/self/clear_refs`, `5`), seals the minute
//! and reads the peak during the seal (`VmHWM`). A seal that held the
//! minute in memory would peak at about its raw size; a streaming seal
//! stays at a few frames (16 MiB of raw bytes each) whatever the size.
//! After the seal it reads the minute back and checks every record.
//!
//! ```sh
//! cargo bench --bench seal -- [--sizes-mb 64,256,1024]
//! ```

use std::time::Instant;

use gapless_storage::dict::Dictionaries;
use gapless_storage::io::StdFs;
use gapless_storage::key::content_hash;
use gapless_storage::layout;
use gapless_storage::reader::for_each_record;
use gapless_storage::store::{Store, StoreConfig};
use gapless_storage::Minute;

/// 2026-03-01T10:00:00Z, in Unix minutes.
const MINUTE: i64 = 29_540_760;

const WORDS: &[&str] = &[
    "archive", "stream", "minute", "coverage", "gap", "post", "like", "river", "signal", "north", "quiet", "storm",
    "harbor", "lantern", "copper", "meadow", "violet", "engine", "window", "orbit", "cinder", "maple", "summit",
    "thread", "ember", "glacier", "pixel", "canyon", "falcon", "velvet", "tundra", "marble",
];

fn main() -> anyhow::Result<()> {
    let mut sizes: Vec<u64> = vec![64, 256, 1024];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes-mb" => {
                let v = args.next().ok_or_else(|| anyhow::anyhow!("--sizes-mb needs a value"))?;
                sizes = v.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
            }
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other:?} (--sizes-mb 64,256,1024)"),
        }
    }
    println!(
        "| minute, raw | records | frames before | sealed bytes | seal time | RSS before seal | peak RSS during seal |"
    );
    println!("|---|---|---|---|---|---|---|");
    for mb in sizes {
        let row = run(mb << 20)?;
        println!(
            "| {} MB | {} | {} | {:.0} MB | {:.1} s | {} MB | {} MB |",
            mb,
            row.records,
            row.frames_before,
            row.bytes_after as f64 / 1e6,
            row.seal_secs,
            row.rss_before >> 20,
            row.peak_during >> 20,
        );
    }
    Ok(())
}

struct Row {
    records: usize,
    frames_before: usize,
    bytes_after: u64,
    seal_secs: f64,
    rss_before: u64,
    peak_during: u64,
}

fn run(raw_target: u64) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let minute = Minute(MINUTE);
    let store = Store::open(dir.path(), StoreConfig { dict_train_bytes: 0, ..StoreConfig::default() })?;
    let mut w = store.stream("seal")?;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut written = 0u64;
    let mut n = 0u64;
    let received = chrono::Utc::now().timestamp_millis();
    while written < raw_target {
        let line = post(minute, n, &mut rng);
        written += line.len() as u64 + 1;
        w.ingest(line.as_bytes(), received)?;
        n += 1;
        if w.pending_bytes() >= 16 << 20 {
            w.commit()?;
        }
    }
    w.commit()?;
    let rss_before = status_kb("VmRSS")? << 10;
    std::fs::write("/proc/self/clear_refs", "5")?;
    let t = Instant::now();
    let stats = w.seal(minute)?.ok_or_else(|| anyhow::anyhow!("nothing to seal"))?;
    let seal_secs = t.elapsed().as_secs_f64();
    let peak_during = status_kb("VmHWM")? << 10;
    drop(w);
    drop(store);
    // Every record is there, once, with its bytes (read frame by frame,
    // compared by hash, so the check holds no minute in memory).
    let mut check = 0x9e37_79b9_7f4a_7c15u64;
    let mut expected: std::collections::HashMap<u64, u64> =
        (0..n).map(|i| (10_000_000 + i, content_hash(post(minute, i, &mut check).as_bytes()))).collect();
    let stream = layout::stream_dir(dir.path(), "seal");
    let mut dicts = Dictionaries::new(&stream.join("dict"));
    let mut bad = 0u64;
    let mut seen = 0u64;
    for_each_record(&StdFs, &layout::segment_path(&stream, minute), &mut dicts, |_, bytes| {
        seen += 1;
        match id_of(bytes).and_then(|id| expected.remove(&id)) {
            Some(h) if h == content_hash(bytes) => {}
            _ => bad += 1,
        }
    })?;
    anyhow::ensure!(bad == 0 && seen == n && expected.is_empty(), "{seen} of {n} records read back, {bad} wrong");
    Ok(Row {
        records: n as usize,
        frames_before: stats.frames_before,
        bytes_after: stats.bytes_after,
        seal_secs,
        rss_before,
        peak_during,
    })
}

/// A synthetic Post of the minute with ID index `n`: a snowflake-shaped ID
/// whose time is in the minute, and text of random words.
fn post(minute: Minute, n: u64, rng: &mut u64) -> String {
    let ms = minute.start_ms() + (n % 60_000) as i64;
    let id = 10_000_000 + n;
    let mut text = String::with_capacity(2048);
    while text.len() < 1900 {
        text.push_str(WORDS[(next(rng) % WORDS.len() as u64) as usize]);
        text.push(' ');
    }
    let user = next(rng) % 1_000_000;
    format!(
        r#"{{"created_at":"Sun Mar 01 10:00:00 +0000 2026","id":{id},"id_str":"{id}","text":"{text}","user":{{"id":{user},"id_str":"{user}","screen_name":"user{user}"}},"timestamp_ms":"{ms}"}}"#
    )
}

fn id_of(line: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(line).ok()?;
    let rest = s.split_once(r#""id_str":""#)?.1;
    rest.split('"').next()?.parse().ok()
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn status_kb(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| anyhow::anyhow!("{field} not in /proc/self/status"))?;
    Ok(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0))
}
