//! Criterion: the ingest path against zstd alone, on the same bytes.
//!
//! `cargo bench --bench ingest`. Throughput is reported both in elements
//! (activities) and bytes; compare the groups' lines side by side.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gapless_storage::store::{Store, StoreConfig};

const START_MS: i64 = 1_764_000_000_000;

fn ingest(c: &mut Criterion) {
    // Ten seconds of Decahose: 6,000 activities, ~17 MB.
    let lines = common::stream(7, START_MS, 10, 600);
    let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    for (name, throughput) in
        [("activities", Throughput::Elements(lines.len() as u64)), ("bytes", Throughput::Bytes(bytes))]
    {
        let mut g = c.benchmark_group(format!("ingest_vs_zstd/{name}"));
        g.throughput(throughput);
        g.sample_size(10);
        g.bench_function("zstd-3 alone, frames of 10 s", |b| {
            let mut z = zstd::bulk::Compressor::new(3).unwrap();
            let mut buf = Vec::with_capacity(bytes as usize);
            b.iter(|| {
                buf.clear();
                for l in &lines {
                    buf.extend_from_slice(l.as_bytes());
                    buf.push(b'\n');
                }
                z.compress(&buf).unwrap().len()
            })
        });
        g.bench_function("ingest + commit (one core)", |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = Store::open(dir.path(), StoreConfig::bulk()).unwrap();
                    (dir, store)
                },
                |(dir, store)| {
                    let mut w = store.stream("bench").unwrap();
                    for l in &lines {
                        w.ingest(l.as_bytes(), START_MS).unwrap();
                    }
                    let (_, stats) = w.commit().unwrap();
                    assert_eq!(stats.records, lines.len());
                    drop(dir);
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

fn realtime_commit(c: &mut Criterion) {
    // The archiver commits about once a second: 600 Posts, fsynced.
    let lines = common::stream(8, START_MS, 30, 600);
    let mut g = c.benchmark_group("realtime_commit");
    g.throughput(Throughput::Elements(600));
    g.sample_size(20);
    g.bench_function("600 activities + fsync", |b| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let mut w = store.stream("bench").unwrap();
        let mut chunks = lines.chunks(600).cycle();
        b.iter(|| {
            for l in chunks.next().unwrap() {
                w.ingest(l.as_bytes(), START_MS).unwrap();
            }
            w.commit().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, ingest, realtime_commit);
criterion_main!(benches);
