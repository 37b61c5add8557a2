//! Reading the range's minutes on worker threads while the main thread
//! writes.
//!
//! # Design
//! - **Parallel, in order.** `W` workers (two) read the minutes of the
//!   range: worker `k` reads the minutes at positions `k, k + W, ...` and
//!   hands each one, whole, to the main thread over its own bounded queue;
//!   the main thread takes them from the queues in turn, so the minutes
//!   come out in order, and it writes one minute while the workers
//!   decompress the next ones.
//! - **Bounded memory.** A queue is a hand-over (it holds nothing): a
//!   worker that has read its minute waits until the main thread takes
//!   it, so at most `W + 1` minutes are in memory at once (one per worker,
//!   being read or waiting, and the one the main thread writes): three
//!   here, never the whole range (a sealed minute of Firehose is ~1 GB).
//!   Written minutes go back to a pool and their buffers are reused. The
//!   main thread is the faster side (it only writes), so a worker seldom
//!   waits.
//! - **No copy, no per-record allocation.** Each verified frame's payload is
//!   decompressed straight into a reused buffer; a record is an index into
//!   it (its table entry, its buffer, its offset). A minute is ordered by
//!   sorting those indices, never the bytes, and records that follow one
//!   another in a buffer are written as one run (a sealed minute, already
//!   in order, is written frame by frame).
//! - **One decompression context per dictionary.** A worker keeps a zstd
//!   context for plain frames and one per dictionary id, loaded once:
//!   realtime frames (a second of data, with the stream's dictionary) cost
//!   their decompression, not a context and a dictionary each.
//! - **The same records as the library's reader.** What a minute holds is
//!   exactly what `gapless_storage::reader::RangeReader::read_minute` gives
//!   (the test `parallel_export_is_byte_identical_to_a_sequential_reading`
//!   checks it): the verified frames up to the first one that does not
//!   verify (its bytes and the rest are reported as `unverified`), the
//!   records within the time range, sorted by `(time, key)` and then bytes,
//!   one per key (a hashed key: one per distinct bytes).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use anyhow::{anyhow, Result};
use gapless_storage::dict::Dictionaries;
use gapless_storage::frame::Entry;
use gapless_storage::segment::SegmentReader;
use gapless_storage::{layout, Key, Minute};

/// Worker threads that read minutes.
pub const WORKERS: usize = 2;
/// Minutes each worker may have read ahead of the main thread, besides the
/// one it holds: none (a hand-over; see the module doc).
const QUEUE: usize = 0;

/// What becomes of one record in the output.
pub enum Decision {
    Skip,
    Keep,
    /// Kept with these bytes instead (compliance rewrote it).
    Replace(Vec<u8>),
}

/// One record of a minute: where its bytes are.
#[derive(Clone, Copy, Debug)]
struct Rec {
    entry: Entry,
    /// Which of the minute's buffers.
    buf: u32,
    /// Where its bytes start in that buffer (its newline follows them).
    start: u32,
}

/// The records of one minute, in time order, each key once.
#[derive(Default)]
pub struct Batch {
    pub minute: Minute,
    /// Decompressed payloads of the minute's frames; the first `used` hold
    /// this minute's, the rest are spare capacity for the next.
    bufs: Vec<Vec<u8>>,
    used: usize,
    recs: Vec<Rec>,
    /// Bytes of the segment after its last verified frame, if any: damage or
    /// a frame still being written (only the frames before it were read).
    pub unverified: Option<Range<u64>>,
}

impl Batch {
    fn clear(&mut self, minute: Minute) {
        self.minute = minute;
        self.used = 0;
        self.recs.clear();
        self.unverified = None;
    }

    /// The index of a spare buffer for the next frame.
    fn next_buf(&mut self) -> usize {
        if self.used == self.bufs.len() {
            self.bufs.push(Vec::new());
        }
        self.used += 1;
        self.used - 1
    }

    fn bytes(&self, r: &Rec) -> &[u8] {
        let start = r.start as usize;
        &self.bufs[r.buf as usize][start..start + r.entry.len as usize]
    }

    /// Each record's table entry and raw bytes (without newline), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Entry, &[u8])> {
        self.recs.iter().map(|r| (&r.entry, self.bytes(r)))
    }

    /// Like [`Batch::for_each_run`], where `decide` may also replace a
    /// record's bytes: a replaced record is its own call, its new bytes
    /// then a newline.
    pub fn for_each_decided<E>(
        &self,
        mut decide: impl FnMut(&Entry, &[u8]) -> Decision,
        mut run: impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut cur: Option<(u32, usize, usize)> = None;
        for r in &self.recs {
            let (start, end) = (r.start as usize, r.start as usize + r.entry.len as usize + 1);
            match decide(&r.entry, self.bytes(r)) {
                Decision::Skip => {}
                Decision::Keep => match &mut cur {
                    Some((buf, _, e)) if *buf == r.buf && *e == start => *e = end,
                    _ => {
                        if let Some((buf, s, e)) = cur {
                            run(&self.bufs[buf as usize][s..e])?;
                        }
                        cur = Some((r.buf, start, end));
                    }
                },
                Decision::Replace(bytes) => {
                    if let Some((buf, s, e)) = cur.take() {
                        run(&self.bufs[buf as usize][s..e])?;
                    }
                    run(&bytes)?;
                    run(b"\n")?;
                }
            }
        }
        if let Some((buf, s, e)) = cur {
            run(&self.bufs[buf as usize][s..e])?;
        }
        Ok(())
    }

    /// Calls `run` with the lines (bytes and newline) of the records that
    /// `keep` keeps, in order: records that follow one another in a buffer
    /// are one call.
    pub fn for_each_run<'a, E>(
        &'a self,
        mut keep: impl FnMut(&Entry, &[u8]) -> bool,
        mut run: impl FnMut(&'a [u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut cur: Option<(u32, usize, usize)> = None;
        for r in &self.recs {
            if !keep(&r.entry, self.bytes(r)) {
                continue;
            }
            let (start, end) = (r.start as usize, r.start as usize + r.entry.len as usize + 1);
            match &mut cur {
                Some((buf, _, e)) if *buf == r.buf && *e == start => *e = end,
                _ => {
                    if let Some((buf, s, e)) = cur {
                        run(&self.bufs[buf as usize][s..e])?;
                    }
                    cur = Some((r.buf, start, end));
                }
            }
        }
        if let Some((buf, s, e)) = cur {
            run(&self.bufs[buf as usize][s..e])?;
        }
        Ok(())
    }
}

/// A worker's decompression state: a context for plain frames and one per
/// dictionary, each made once.
struct Decompressors {
    dicts: Dictionaries,
    plain: zstd::bulk::Decompressor<'static>,
    with_dict: HashMap<u32, zstd::bulk::Decompressor<'static>>,
}

impl Decompressors {
    fn new(stream_dir: &Path) -> gapless_storage::Result<Decompressors> {
        Ok(Decompressors {
            dicts: Dictionaries::new(&layout::dict_dir(stream_dir)),
            plain: zstd::bulk::Decompressor::new().map_err(gapless_storage::Error::Compression)?,
            with_dict: HashMap::new(),
        })
    }

    fn get(&mut self, dict_id: u32) -> gapless_storage::Result<&mut zstd::bulk::Decompressor<'static>> {
        if dict_id == 0 {
            return Ok(&mut self.plain);
        }
        if !self.with_dict.contains_key(&dict_id) {
            let d = zstd::bulk::Decompressor::with_dictionary(self.dicts.get(dict_id)?)
                .map_err(gapless_storage::Error::Compression)?;
            self.with_dict.insert(dict_id, d);
        }
        Ok(self.with_dict.get_mut(&dict_id).expect("inserted above"))
    }
}

fn frame_error(what: &str) -> gapless_storage::Error {
    gapless_storage::Error::Frame(what.into())
}

/// Reads one minute's segment into `batch` (as `RangeReader::read_minute`
/// does; see the module doc). `payload` is a reused buffer.
fn read_minute(
    dir: &Path,
    minute: Minute,
    range: &Range<i64>,
    dec: &mut Decompressors,
    payload: &mut Vec<u8>,
    batch: &mut Batch,
) -> gapless_storage::Result<()> {
    batch.clear(minute);
    let path = layout::segment_path(dir, minute);
    if !path.exists() {
        return Ok(());
    }
    let mut r = SegmentReader::open(&path)?;
    while let Some(fr) = r.next_header()? {
        if !r.read_payload(&fr, payload)? {
            break;
        }
        let h = &fr.header;
        let d = dec.get(h.dict_id)?;
        let buf_index = batch.next_buf();
        let Batch { bufs, recs, .. } = &mut *batch;
        let buf = &mut bufs[buf_index];
        buf.clear();
        let need = h.raw_len as usize;
        if buf.capacity() < need {
            // A new allocation (growing would copy what the buffer held),
            // with room for the next minutes' frames, which vary in size:
            // fresh memory costs a page fault per page on first use.
            *buf = Vec::with_capacity(need + need / 4);
        }
        let n = d.decompress_to_buffer(payload.as_slice(), buf).map_err(gapless_storage::Error::Compression)?;
        if n != h.raw_len as usize || buf.len() != n {
            return Err(frame_error("decompressed length mismatch"));
        }
        let mut at = 0usize;
        for e in &h.entries {
            let end = at + e.len as usize;
            if buf.get(end) != Some(&b'\n') {
                return Err(frame_error("record not followed by newline"));
            }
            if range.contains(&e.time_ms) {
                recs.push(Rec { entry: *e, buf: buf_index as u32, start: at as u32 });
            }
            at = end + 1;
        }
    }
    batch.unverified = r.unverified();
    let Batch { bufs, recs, .. } = batch;
    let bytes = |r: &Rec| &bufs[r.buf as usize][r.start as usize..r.start as usize + r.entry.len as usize];
    recs.sort_unstable_by(|a, b| {
        (a.entry.time_ms, a.entry.key).cmp(&(b.entry.time_ms, b.entry.key)).then_with(|| bytes(a).cmp(bytes(b)))
    });
    recs.dedup_by(|b, a| {
        a.entry.key == b.entry.key && (!matches!(a.entry.key, Key::Hashed(_)) || bytes(a) == bytes(b))
    });
    Ok(())
}

type Item = (Minute, gapless_storage::Result<Batch>);

/// Written batches, to be reused; and how many were ever made (the test of
/// the memory bound counts them).
#[derive(Default)]
struct Pool(Mutex<(Vec<Batch>, usize)>);

impl Pool {
    fn take(&self) -> Batch {
        let Ok(mut p) = self.0.lock() else { return Batch::default() };
        p.0.pop().unwrap_or_else(|| {
            p.1 += 1;
            Batch::default()
        })
    }

    fn give(&self, b: Batch) {
        if let Ok(mut p) = self.0.lock() {
            p.0.push(b);
        }
    }

    fn made(&self) -> usize {
        self.0.lock().map(|p| p.1).unwrap_or(0)
    }
}

/// A worker: reads `minutes[k], minutes[k + W], ...` into batches from the
/// pool and sends them in order; stops when the main thread hangs up.
fn worker(dir: PathBuf, range: Range<i64>, minutes: Vec<Minute>, pool: &Pool, tx: SyncSender<Item>) {
    let mut dec = match Decompressors::new(&dir) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send((minutes.first().copied().unwrap_or_default(), Err(e)));
            return;
        }
    };
    let mut payload = Vec::new();
    for m in minutes {
        let mut batch = pool.take();
        let item = match read_minute(&dir, m, &range, &mut dec, &mut payload, &mut batch) {
            Ok(()) => (m, Ok(batch)),
            Err(e) => (m, Err(e)),
        };
        if tx.send(item).is_err() {
            return;
        }
    }
}

/// Reads `minutes` (in order, each with a segment file or gone since it was
/// listed) of the stream at `stream_dir`, keeping the records in `range`, on
/// [`WORKERS`] threads, and calls `write` on the calling thread with each
/// minute in order: its batch, or the error reading it. Stops at the first
/// error `write` returns.
pub fn read_minutes(
    stream_dir: &Path,
    minutes: &[Minute],
    range: Range<i64>,
    write: impl FnMut(Minute, gapless_storage::Result<&Batch>) -> Result<()>,
) -> Result<()> {
    read_minutes_counted(stream_dir, minutes, range, write).map(|_made| ())
}

/// [`read_minutes`]; returns how many batches were made (each holds a
/// minute): the most minutes ever in memory at once.
fn read_minutes_counted(
    stream_dir: &Path,
    minutes: &[Minute],
    range: Range<i64>,
    mut write: impl FnMut(Minute, gapless_storage::Result<&Batch>) -> Result<()>,
) -> Result<usize> {
    let workers = WORKERS.min(minutes.len()).max(1);
    let pool = Pool::default();
    std::thread::scope(|s| {
        let mut queues: Vec<Receiver<Item>> = Vec::with_capacity(workers);
        for k in 0..workers {
            let (tx, rx) = sync_channel(QUEUE);
            let mine: Vec<Minute> = minutes.iter().skip(k).step_by(workers).copied().collect();
            let (dir, range, pool) = (stream_dir.to_path_buf(), range.clone(), &pool);
            std::thread::Builder::new()
                .name(format!("read-{k}"))
                .spawn_scoped(s, move || worker(dir, range, mine, pool, tx))
                .map_err(|e| anyhow!("start a reader thread: {e}"))?;
            queues.push(rx);
        }
        // Returning drops the queues: workers still reading stop at their
        // next send, and the scope waits for them.
        for (i, &m) in minutes.iter().enumerate() {
            let (got, item) =
                queues[i % workers].recv().map_err(|_| anyhow!("a reader thread stopped before minute {m}"))?;
            debug_assert_eq!(got, m);
            match item {
                Ok(batch) => {
                    write(m, Ok(&batch))?;
                    pool.give(batch);
                }
                Err(e) => write(m, Err(e))?,
            }
        }
        Ok(pool.made())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gapless_storage::store::{Store, StoreConfig};

    const BASE_MS: i64 = 1_500_336_000_000;

    /// However far ahead the workers could read, at most `WORKERS + 1`
    /// minutes are ever held at once (batches are made only when none is
    /// free), and the minutes come out in order, each with its records.
    #[test]
    fn minutes_come_in_order_with_a_bounded_number_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let minutes = 40;
        {
            let store = Store::open(dir.path(), StoreConfig::bulk()).unwrap();
            let mut w = store.stream("s").unwrap();
            for m in 0..minutes {
                for i in 0..=m {
                    let ms = BASE_MS + m * 60_000 + i * 100;
                    let id = ((ms - 1_288_834_974_657) as u64) << 22 | i as u64;
                    let line = format!(r#"{{"id_str":"{id}","text":"m{m} i{i}","timestamp_ms":"{ms}"}}"#);
                    w.ingest(line.as_bytes(), ms).unwrap();
                }
                w.commit().unwrap();
            }
        }
        let stream = layout::stream_dir(dir.path(), "s");
        let list: Vec<Minute> = (0..minutes).map(|m| Minute::of_ms(BASE_MS + m * 60_000)).collect();
        let mut seen = Vec::new();
        let made = read_minutes_counted(&stream, &list, BASE_MS..BASE_MS + minutes * 60_000, |m, batch| {
            let batch = batch.map_err(|e| anyhow!("{e}"))?;
            assert_eq!(batch.minute, m);
            let texts: Vec<String> = batch.iter().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).collect();
            let k = seen.len() as i64;
            assert_eq!(texts.len() as i64, k + 1, "minute {k}");
            assert!(texts.iter().all(|t| t.contains(&format!("\"m{k} i"))));
            seen.push(m);
            // A slow writer: the workers fill their queues.
            std::thread::sleep(std::time::Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, list);
        assert!(made <= WORKERS + 1, "{made} minutes held at once");
    }

    /// An error from `write` stops the reading: the workers hang up and
    /// the call returns it.
    #[test]
    fn an_error_while_writing_stops_the_workers() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreConfig::bulk()).unwrap();
            let mut w = store.stream("s").unwrap();
            for m in 0..10 {
                let ms = BASE_MS + m * 60_000;
                let id = ((ms - 1_288_834_974_657) as u64) << 22;
                w.ingest(format!(r#"{{"id_str":"{id}","timestamp_ms":"{ms}"}}"#).as_bytes(), ms).unwrap();
            }
            w.commit().unwrap();
        }
        let stream = layout::stream_dir(dir.path(), "s");
        let list: Vec<Minute> = (0..10).map(|m| Minute::of_ms(BASE_MS + m * 60_000)).collect();
        let mut calls = 0;
        let err = read_minutes(&stream, &list, BASE_MS..BASE_MS + 600_000, |_, _| {
            calls += 1;
            if calls == 3 {
                return Err(anyhow!("disk full"));
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(calls, 3);
    }
}
