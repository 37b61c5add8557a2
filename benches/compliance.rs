//! What applying compliance costs a reader, and what a purge pass costs:
//! side by side in one run, on one archive.
//!
//! It stores `--minutes` minutes of stream-sim's Decahose (its Posts and
//! its compliance messages, which name Posts and users the stream really
//! sent) into a fresh store, then reads every minute back three ways: the
//! records only (what `segment-export --raw` reads), with an empty ledger
//! (nothing to apply: the fast path), and with the archive's own ledger
//! (every Post parsed for the IDs it involves). Then it purges every minute
//! with the ledger's purgeable events (`purge_copy`, the rewrite a pass
//! does). Times are wall time on this machine; the ratios are the point.
//!
//! ```sh
//! cargo bench --bench compliance -- [--minutes 3] [--rate 600]
//! ```

use std::time::Instant;

use gapless_storage::compliance::{self, purge, Policy, Verdict, WithheldMode};
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{Store, StoreConfig};
use gapless_storage::{layout, Minute};
use stream_sim::{Generator, StreamKind, StreamSpec};

/// 2026-03-01T10:00:00Z.
const T0: i64 = 1_772_359_200_000;

fn main() -> anyhow::Result<()> {
    let (mut minutes, mut rate) = (3i64, 600.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => minutes = args.next().ok_or_else(|| anyhow::anyhow!("--minutes N"))?.parse()?,
            "--rate" => rate = args.next().ok_or_else(|| anyhow::anyhow!("--rate N"))?.parse()?,
            "--bench" => {}
            other => anyhow::bail!("unknown argument {other:?} (--minutes N --rate N)"),
        }
    }
    let dir = tempfile::tempdir()?;
    let mut spec = StreamSpec::new(StreamKind::Sample10, "prod");
    spec.rate = rate;
    let gen = Generator::new(7, &spec);
    let (from, to) = (T0, T0 + minutes * 60_000);
    let store = Store::open(dir.path(), StoreConfig::default())?;
    let mut w = store.stream("decahose")?;
    let mut raw_bytes = 0u64;
    for a in gen.range(from, to, None) {
        raw_bytes += a.line.len() as u64 + 1;
        w.ingest(&a.line, to)?;
        if w.pending_bytes() > 16 << 20 {
            w.commit()?;
        }
    }
    w.commit()?;
    for m in layout::minutes_with_segments(w.dir(), Minute::of_ms(from), Minute::of_ms(to))? {
        w.seal(m)?;
    }
    let events = compliance::load(w.dir())?.events;
    let full = Policy::of(&events);
    let empty = Policy::new();
    let mb = raw_bytes as f64 / 1e6;
    println!(
        "{minutes} minutes of a Decahose at {rate}/s: {mb:.0} MB raw, {} compliance events in the ledger\n",
        events.len()
    );
    println!("| reading every record | time | MB/s | vs records only | left out | rewritten |");
    println!("|---|---|---|---|---|---|");
    let mut base = 0.0;
    for (name, policy) in
        [("records only (`--raw`)", None), ("empty ledger", Some(&empty)), ("the archive's ledger", Some(&full))]
    {
        let t = Instant::now();
        let (mut dropped, mut rewritten, mut n) = (0u64, 0u64, 0u64);
        for batch in RangeReader::new(dir.path(), "decahose", from..to) {
            for (e, b) in batch?.iter() {
                n += 1;
                match policy.map(|p| p.verdict(e.kind, e.time_ms, b, WithheldMode::Drop)) {
                    Some(Verdict::Drop(_)) => dropped += 1,
                    Some(Verdict::Rewrite { .. }) => rewritten += 1,
                    _ => {}
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        if base == 0.0 {
            base = secs;
        }
        std::hint::black_box(n);
        println!("| {name} | {secs:.2} s | {:.0} | {:.2}x | {dropped} | {rewritten} |", mb / secs, secs / base);
    }
    // A purge pass over every minute: each read once, rewritten when the
    // policy changes something.
    let due = purge::due(&events, &full, &Default::default(), i64::MAX / 2, 0);
    let policy = Policy::of(&due);
    let t = Instant::now();
    let (mut rewritten, mut purged) = (0usize, 0usize);
    let dict_dir = layout::dict_dir(w.dir());
    for m in layout::minutes_with_segments(w.dir(), Minute::of_ms(from), Minute::of_ms(to))? {
        let bytes = std::fs::read(layout::segment_path(w.dir(), m))?;
        if let Some(c) = purge::purge_copy(&bytes, m, &dict_dir, &policy)? {
            rewritten += 1;
            purged += c.purged;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "\npurge of every minute with {} due events: {secs:.2} s ({:.0} MB/s raw, {:.2}x the records-only read); {rewritten} of {minutes} minutes rewritten, {purged} records removed",
        due.len(),
        mb / secs,
        secs / base
    );
    Ok(())
}
