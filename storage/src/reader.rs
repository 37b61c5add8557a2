//! Reading a time range of a stream, in time order, minute by minute.
//!
//! Memory holds one minute at a time (its decompressed records), never a
//! whole file set: a minute of Decahose is ~2 MB raw. Within a minute,
//! records from several frames (realtime, then Backfill or Recovery) are
//! merged into time order, ties broken by key, and any repeated key is
//! dropped (a hashed key only when the bytes are equal too), so a reader
//! sees each activity once even if two writers ever raced.
//!
//! Read-only and safe while the archiver appends: a frame is read only if
//! both its checksums hold, so a frame being written is simply not there
//! yet.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::dict::Dictionaries;
use crate::frame::Entry;
use crate::key::Key;
use crate::store::{for_each_record, segment_path, stream_dir};
use crate::{Minute, Result};

/// The records of one minute, in time order.
#[derive(Debug, Default)]
pub struct MinuteBatch {
    pub minute: Minute,
    entries: Vec<(Entry, Range<usize>)>,
    buf: Vec<u8>,
}

impl MinuteBatch {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Each record's table entry and raw bytes, in time order.
    pub fn iter(&self) -> impl Iterator<Item = (&Entry, &[u8])> {
        self.entries.iter().map(|(e, r)| (e, &self.buf[r.clone()]))
    }
}

/// Iterates the minutes of `[from_ms, to_ms)` of one stream that hold
/// records. Each item is one minute's records within the range.
pub struct RangeReader {
    dir: PathBuf,
    dicts: Dictionaries,
    next: Minute,
    end: Minute,
    range: Range<i64>,
}

impl RangeReader {
    pub fn new(root: &Path, stream: &str, range: Range<i64>) -> RangeReader {
        let dir = stream_dir(root, stream);
        let dicts = Dictionaries::new(&dir.join("dict"));
        let end = if range.end <= range.start { Minute::of_ms(range.start) } else { Minute::of_ms(range.end - 1).next() };
        RangeReader { dir, dicts, next: Minute::of_ms(range.start), end, range }
    }

    /// Reads one minute (whether or not it is inside the range).
    pub fn read_minute(&mut self, minute: Minute) -> Result<MinuteBatch> {
        let mut batch = MinuteBatch { minute, ..MinuteBatch::default() };
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            return Ok(batch);
        }
        let range = self.range.clone();
        let mut entries = Vec::new();
        let mut buf = Vec::new();
        for_each_record(&path, &mut self.dicts, |e, b| {
            if range.contains(&e.time_ms) {
                let start = buf.len();
                buf.extend_from_slice(b);
                entries.push((*e, start..buf.len()));
            }
        })?;
        entries.sort_by(|a, b| (a.0.time_ms, a.0.key).cmp(&(b.0.time_ms, b.0.key)).then_with(|| buf[a.1.clone()].cmp(&buf[b.1.clone()])));
        entries.dedup_by(|b, a| a.0.key == b.0.key && (!matches!(a.0.key, Key::Hashed(_)) || buf[a.1.clone()] == buf[b.1.clone()]));
        batch.entries = entries;
        batch.buf = buf;
        Ok(batch)
    }
}

impl Iterator for RangeReader {
    type Item = Result<MinuteBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.end {
            let minute = self.next;
            self.next = minute.next();
            match self.read_minute(minute) {
                Ok(b) if b.is_empty() => continue,
                other => return Some(other),
            }
        }
        None
    }
}
