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
use crate::io::Filesystem;
use crate::key::Key;
use crate::layout::{self, segment_path, stream_dir};
use crate::segment::SegmentReader;
use crate::{frame, Error};
use crate::{Minute, Result};

/// The records of one minute, in time order.
#[derive(Debug, Default)]
pub struct MinuteBatch {
    pub minute: Minute,
    entries: Vec<(Entry, Range<usize>)>,
    buf: Vec<u8>,
    /// Verified frames the minute's segment holds.
    pub frames: usize,
    /// Bytes of the segment after its last verified frame, if any: damage
    /// (`gapless verify` repairs it) or a frame still being written. The
    /// records read are those of the verified frames before them.
    pub unverified: Option<Range<u64>>,
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
///
/// It lists the segments that exist (day directory by day directory), so
/// a wide, sparse range costs what is stored, not what the range spans.
pub struct RangeReader {
    dir: PathBuf,
    dicts: Dictionaries,
    /// Day directories in the range not yet listed, latest first.
    days: Option<Vec<String>>,
    /// Minutes of the current day not yet read, latest first.
    minutes: Vec<Minute>,
    first: Minute,
    end: Minute,
    range: Range<i64>,
}

impl RangeReader {
    pub fn new(root: &Path, stream: &str, range: Range<i64>) -> RangeReader {
        let dir = stream_dir(root, stream);
        let dicts = Dictionaries::new(&layout::dict_dir(&dir));
        let first = Minute::of_ms(range.start);
        let end = if range.end <= range.start { first } else { Minute::of_ms(range.end - 1).next() };
        RangeReader { dir, dicts, days: None, minutes: Vec::new(), first, end, range }
    }

    fn list_days(&self) -> Result<Vec<String>> {
        let mut days = crate::layout::segment_days(&self.dir, self.first, Minute(self.end.0 - 1))?;
        days.reverse();
        Ok(days)
    }

    fn list_minutes(&self, day: &str) -> Result<Vec<Minute>> {
        let mut minutes = crate::layout::segment_minutes(&self.dir, day, self.first, self.end)?;
        // Evicted minutes are read too: their read says they are in the
        // bucket, rather than the range silently missing them.
        if let Ok(d) = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
            let start = Minute::of_secs(d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp()));
            let end = Minute(start.0 + 1440);
            let evicted = crate::layout::evicted_minutes(&self.dir, start.max(self.first), end.min(self.end))?;
            minutes.extend(evicted);
            minutes.sort_unstable();
        }
        minutes.reverse();
        Ok(minutes)
    }

    /// The next minute with a segment in the range.
    fn next_minute(&mut self) -> Result<Option<Minute>> {
        if self.days.is_none() {
            self.days = Some(self.list_days()?);
        }
        loop {
            if let Some(m) = self.minutes.pop() {
                return Ok(Some(m));
            }
            let Some(day) = self.days.as_mut().and_then(|d| d.pop()) else { return Ok(None) };
            self.minutes = self.list_minutes(&day)?;
        }
    }

    /// Reads one minute (whether or not it is inside the range).
    pub fn read_minute(&mut self, minute: Minute) -> Result<MinuteBatch> {
        let path = segment_path(&self.dir, minute);
        if !path.exists() {
            // Evicted to the bucket: not an empty minute.
            if layout::evicted_path(&path).exists() {
                return Err(Error::Evicted { path });
            }
            return Ok(MinuteBatch { minute, ..MinuteBatch::default() });
        }
        load_minute(&path, minute, &mut self.dicts, &self.range)
    }
}

/// Reads a segment's records with activity time in `range`, in time order,
/// each key once.
pub fn load_minute(path: &Path, minute: Minute, dicts: &mut Dictionaries, range: &Range<i64>) -> Result<MinuteBatch> {
    let mut entries = Vec::new();
    let mut buf = Vec::new();
    let mut frames = 0;
    let unverified = for_each_frame(&crate::io::StdFs, path, dicts, |records| {
        frames += 1;
        for &(e, b) in records {
            if range.contains(&e.time_ms) {
                let start = buf.len();
                buf.extend_from_slice(b);
                entries.push((*e, start..buf.len()));
            }
        }
    })?;
    entries.sort_by(|a, b| {
        (a.0.time_ms, a.0.key).cmp(&(b.0.time_ms, b.0.key)).then_with(|| buf[a.1.clone()].cmp(&buf[b.1.clone()]))
    });
    entries.dedup_by(|b, a| {
        a.0.key == b.0.key && (!matches!(a.0.key, Key::Hashed(_)) || buf[a.1.clone()] == buf[b.1.clone()])
    });
    if let Some(r) = &unverified {
        tracing::warn!(path = %path.display(), offset = r.start, bytes = r.end - r.start, "segment bytes that do not verify (damage, or a frame being written); `gapless verify` repairs damage");
    }
    Ok(MinuteBatch { minute, entries, buf, frames, unverified })
}

impl Iterator for RangeReader {
    type Item = Result<MinuteBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let minute = match self.next_minute() {
                Ok(Some(m)) => m,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            match self.read_minute(minute) {
                Ok(b) if b.is_empty() => continue,
                other => return Some(other),
            }
        }
    }
}

/// Calls `f` on every record of every verified frame of a segment.
pub fn for_each_record(
    fs: &dyn Filesystem,
    path: &Path,
    dicts: &mut Dictionaries,
    mut f: impl FnMut(&frame::Entry, &[u8]),
) -> Result<()> {
    for_each_frame(fs, path, dicts, |records| {
        for (e, b) in records {
            f(e, b);
        }
    })
    .map(|_| ())
}

/// Calls `f` with the records of each verified frame of a segment, in file
/// order, holding one frame in memory at a time. Returns the bytes after
/// the last verified frame, if the file does not end there: damage, or a
/// frame still being written (readers never stop there silently).
pub fn for_each_frame(
    fs: &dyn Filesystem,
    path: &Path,
    dicts: &mut Dictionaries,
    mut f: impl FnMut(&[(&frame::Entry, &[u8])]),
) -> Result<Option<std::ops::Range<u64>>> {
    let mut r = SegmentReader::open_in(fs, path)?;
    let mut payload = Vec::new();
    while let Some(fr) = r.next_header()? {
        if !r.read_payload(&fr, &mut payload)? {
            break;
        }
        let raw = decompress(&fr.header, &payload, dicts)?;
        f(&frame::split_records(&fr.header, &raw)?);
    }
    Ok(r.unverified())
}

/// Decompresses a verified payload, with its dictionary if it names one.
pub fn decompress(header: &frame::Header, payload: &[u8], dicts: &mut Dictionaries) -> Result<Vec<u8>> {
    let mut d = if header.dict_id != 0 {
        zstd::bulk::Decompressor::with_dictionary(dicts.get(header.dict_id)?)
    } else {
        zstd::bulk::Decompressor::new()
    }
    .map_err(Error::Compression)?;
    frame::decompress(header, payload, &mut d)
}
