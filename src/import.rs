//! `gapless import`: existing NDJSON archives into the store.
//!
//! Files written by other collectors (plain, `.gz` or `.zst`; native or
//! Activity Streams format) go through the same ingest path as the stream:
//! classified, deduplicated, stored in minute segments. Import claims no
//! coverage: coverage is a statement about stream connections, and a file
//! says nothing about what it missed.
//!
//! Three threads share the work, so that both cores stay busy: a reader
//! decompresses, splits lines and classifies them (the borrowed parse);
//! the ingest front probes the ID index and buffers; the sink compresses,
//! appends and fsyncs. Batches pass between them through bounded
//! channels, so memory stays bounded whatever the file size.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context};
use gapless_storage::activity::Limits;
use gapless_storage::store::{Ingest, Outcome, Pending, Store, StoreConfig, StreamWriter};

use crate::lines::Batch;

/// Bytes of input per batch handed from the reader to the writer.
const BATCH_BYTES: usize = 4 << 20;
/// Hand the sink a batch once this many raw bytes are pending: frames of a
/// few thousand Posts, as large as a sealed minute compresses.
const TAKE_BYTES: usize = 8 << 20;
/// fsync once this many raw bytes were written (a group commit).
const SYNC_BYTES: u64 = 256 << 20;

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub heartbeats: u64,
    pub system: u64,
    pub seconds: f64,
}

impl Summary {
    pub fn activities_per_sec(&self) -> f64 {
        (self.stored + self.duplicates) as f64 / self.seconds.max(1e-9)
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "files        {}", self.files)?;
        writeln!(f, "lines        {}", self.lines)?;
        writeln!(f, "stored       {}", self.stored)?;
        writeln!(f, "duplicates   {}", self.duplicates)?;
        writeln!(f, "quarantined  {}", self.quarantined)?;
        writeln!(f, "system       {}", self.system)?;
        writeln!(f, "heartbeats   {}", self.heartbeats)?;
        write!(
            f,
            "throughput   {:.0} activities/s, {:.1} MB/s of NDJSON ({:.2} s)",
            self.activities_per_sec(),
            self.mb_per_sec(),
            self.seconds
        )
    }
}

/// Opens a file, decompressing by its magic bytes (gzip, zstd) or not.
pub fn open_ndjson(path: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let magic = r.fill_buf().with_context(|| format!("read {}", path.display()))?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(r).with_context(|| format!("zstd {}", path.display()))?)
    } else {
        Box::new(r)
    })
}

/// Reads `files` in order, sending classified batches. Lines end at `\n`;
/// a `\r` before it is part of the terminator.
fn read_and_classify(files: &[PathBuf], limits: &Limits, tx: &mpsc::SyncSender<Batch>) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for path in files {
        let mut input = open_ndjson(path)?;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut buf = std::mem::take(&mut carry);
            let start = buf.len();
            buf.resize(start + BATCH_BYTES, 0);
            let n = read_full(&mut input, &mut buf[start..]).with_context(|| format!("read {}", path.display()))?;
            buf.truncate(start + n);
            total += n as u64;
            let eof = n == 0;
            // Whole lines only; the rest waits for the next read.
            let end = if eof { buf.len() } else { buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) };
            if end == 0 && !eof {
                carry = buf; // a line longer than a batch: keep reading
                continue;
            }
            carry = buf[end..].to_vec();
            buf.truncate(end);
            if tx.send(Batch::classify(buf, limits)).is_err() {
                return Ok(total); // the writer stopped; it reports why
            }
            if eof {
                break;
            }
        }
    }
    Ok(total)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Imports `files` into stream `label` of the store at `data`.
pub fn import(data: &Path, label: &str, files: &[PathBuf]) -> anyhow::Result<Summary> {
    for f in files {
        if !f.is_file() {
            bail!("{}: no such file", f.display());
        }
    }
    let store = Store::open(data, StoreConfig::bulk()).with_context(|| format!("open store {}", data.display()))?;
    let writer = store.stream(label)?;
    let owned: Vec<PathBuf> = files.to_vec();
    let mut summary = run_pipeline(writer, move |tx| read_and_classify(&owned, &Limits::default(), tx))?;
    summary.files = files.len();
    Ok(summary)
}

/// Runs the three-stage ingest pipeline: `produce` (on its own thread)
/// sends classified batches; this thread accepts them; a sink thread
/// writes. Returns when everything produced is durable.
pub fn run_pipeline<F>(writer: StreamWriter, produce: F) -> anyhow::Result<Summary>
where
    F: FnOnce(&mpsc::SyncSender<Batch>) -> anyhow::Result<u64> + Send + 'static,
{
    let started = Instant::now();
    let (mut ingest, mut sink) = writer.into_parts();
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    let reader = std::thread::Builder::new()
        .name("ingest-read".into())
        .spawn(move || produce(&tx))
        .context("start reader thread")?;
    let (ptx, prx) = mpsc::sync_channel::<Pending>(2);
    let writer = std::thread::Builder::new()
        .name("ingest-sink".into())
        .spawn(move || -> anyhow::Result<()> {
            let mut unsynced = 0u64;
            for mut p in prx {
                unsynced += p.raw_bytes() as u64;
                sink.write(&mut p)?;
                if unsynced >= SYNC_BYTES {
                    sink.sync()?;
                    unsynced = 0;
                }
            }
            sink.sync()?;
            Ok(())
        })
        .context("start sink thread")?;
    let mut summary = Summary::default();
    let accepted = accept_batches(&mut ingest, rx, &ptx, &mut summary);
    drop(ptx);
    let written = writer.join().map_err(|_| anyhow::anyhow!("sink thread panicked"))?;
    let bytes = reader.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    accepted?;
    written?;
    summary.bytes = bytes;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn accept_batches(
    ingest: &mut Ingest,
    rx: mpsc::Receiver<Batch>,
    to_sink: &mpsc::SyncSender<Pending>,
    s: &mut Summary,
) -> anyhow::Result<()> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    for batch in rx {
        batch.each(|line, classified| -> anyhow::Result<()> {
            s.lines += 1;
            match ingest.accept(line, classified, now_ms)? {
                Outcome::Stored { .. } => s.stored += 1,
                Outcome::Duplicate { .. } => s.duplicates += 1,
                Outcome::Quarantined { .. } => s.quarantined += 1,
                Outcome::Heartbeat => s.heartbeats += 1,
                Outcome::System(_) => s.system += 1,
            }
            Ok(())
        })?;
        if ingest.pending_bytes() >= TAKE_BYTES && to_sink.send(ingest.take()).is_err() {
            return Ok(()); // the sink stopped; it reports why
        }
    }
    let _ = to_sink.send(ingest.take());
    Ok(())
}
