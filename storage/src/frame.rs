//! Frames: the unit of appending to a segment.
//!
//! A frame is one group commit of records for one minute: a header that can
//! be read without touching the payload (so that the ID index of a minute
//! can be rebuilt from headers alone), then one zstd frame of the records'
//! raw bytes exactly as received, each followed by `\n`, so that
//! `zstd -d` of a payload is valid NDJSON.
//!
//! Two CRC32C checksums make a torn or corrupt frame detectable: one over
//! the header and record table, one over the payload. Reading headers only
//! checks the first; opening a segment for repair checks both.
//!
//! # Layout (all integers little-endian; see FORMAT.md)
//! ```text
//! offset size field
//!      0    4 magic "GLFR"
//!      4    1 version (1)
//!      5    1 flags: bit 0 = payload compressed with dictionary `dict_id`
//!      6    2 reserved, 0
//!      8    4 table_len: bytes of the record table
//!     12    4 payload_len: bytes of the zstd payload
//!     16    4 raw_len: bytes of the decompressed payload
//!     20    4 record_count
//!     24    8 min_time_ms (i64)
//!     32    8 max_time_ms (i64)
//!     40    4 dict_id (0 = none)
//!     44    4 payload_crc: CRC32C of the payload
//!     48    4 header_crc: CRC32C of bytes 0..48 and the record table
//!     52      record table: record_count entries of
//!               kind u8, key (tag u8 + 8/16/24 bytes), time_ms i64, len u32
//!             payload: payload_len bytes
//! ```

use crate::key::{ActivityKind, Key};
use crate::{Error, Result};

pub const MAGIC: [u8; 4] = *b"GLFR";
pub const VERSION: u8 = 1;
pub const FIXED_LEN: usize = 52;
/// Flag bit: the payload was compressed with the dictionary `dict_id`.
pub const FLAG_DICT: u8 = 1;
/// No frame may claim more than this, so a corrupt length cannot make a
/// reader allocate gigabytes.
pub const MAX_FRAME_BYTES: u64 = 1 << 30;
/// Nor decompress to more than this.
pub const MAX_RAW_BYTES: u64 = 1 << 30;
/// Writers cut frames at this many raw bytes (a frame holds at least one
/// record, and a record is at most a line, 1 MiB by default), far below
/// what readers accept, so that a frame is never too large to read and
/// memory stays bounded whatever the rate.
pub const TARGET_RAW_BYTES: usize = 16 << 20;

/// One record of a frame's table: everything about an activity except its
/// bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: ActivityKind,
    pub key: Key,
    pub time_ms: i64,
    pub len: u32,
}

/// A decoded frame header and record table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub flags: u8,
    pub payload_len: u32,
    pub raw_len: u32,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub dict_id: u32,
    pub payload_crc: u32,
    pub entries: Vec<Entry>,
    /// Bytes of header and table, i.e. where the payload starts.
    pub header_len: usize,
}

impl Header {
    /// Total bytes of the frame on disk.
    pub fn frame_len(&self) -> u64 {
        self.header_len as u64 + self.payload_len as u64
    }
}

/// The fixed part of a header, before the table is read.
#[derive(Clone, Copy, Debug)]
pub struct Fixed {
    pub table_len: u32,
    pub payload_len: u32,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks the magic, version and lengths of a fixed header.
pub fn parse_fixed(b: &[u8; FIXED_LEN]) -> Result<Fixed> {
    if b[0..4] != MAGIC {
        return Err(Error::Frame("bad magic".into()));
    }
    if b[4] != VERSION {
        return Err(Error::Frame(format!("unknown frame version {}", b[4])));
    }
    let fixed = Fixed { table_len: le_u32(b, 8), payload_len: le_u32(b, 12) };
    if FIXED_LEN as u64 + fixed.table_len as u64 + fixed.payload_len as u64 > MAX_FRAME_BYTES {
        return Err(Error::Frame("frame length out of bounds".into()));
    }
    Ok(fixed)
}

/// Decodes and verifies a header from its fixed part and record table.
pub fn parse_header(fixed: &[u8; FIXED_LEN], table: &[u8]) -> Result<Header> {
    let f = parse_fixed(fixed)?;
    if table.len() != f.table_len as usize {
        return Err(Error::Frame("record table length mismatch".into()));
    }
    let mut crc = crc32c::crc32c(&fixed[..48]);
    crc = crc32c::crc32c_append(crc, table);
    if crc != le_u32(fixed, 48) {
        return Err(Error::Frame("header checksum mismatch".into()));
    }
    let count = le_u32(fixed, 20) as usize;
    let mut entries = Vec::with_capacity(count.min(table.len() / 14));
    let mut at = 0;
    for _ in 0..count {
        let bad = || Error::Frame("record table truncated".into());
        let kind = ActivityKind::from_byte(*table.get(at).ok_or_else(bad)?)
            .ok_or_else(|| Error::Frame("unknown activity kind".into()))?;
        let (key, used) = Key::decode(&table[at + 1..]).ok_or_else(bad)?;
        at += 1 + used;
        let rest = table.get(at..at + 12).ok_or_else(bad)?;
        entries.push(Entry { kind, key, time_ms: le_i64(rest, 0), len: le_u32(rest, 8) });
        at += 12;
    }
    if at != table.len() {
        return Err(Error::Frame("record table has trailing bytes".into()));
    }
    let header = Header {
        flags: fixed[5],
        payload_len: f.payload_len,
        raw_len: le_u32(fixed, 16),
        min_time_ms: le_i64(fixed, 24),
        max_time_ms: le_i64(fixed, 32),
        dict_id: le_u32(fixed, 40),
        payload_crc: le_u32(fixed, 44),
        entries,
        header_len: FIXED_LEN + table.len(),
    };
    let sum: u64 = header.entries.iter().map(|e| e.len as u64 + 1).sum();
    if sum != header.raw_len as u64 {
        return Err(Error::Frame("record lengths do not add up to raw_len".into()));
    }
    if header.raw_len as u64 > MAX_RAW_BYTES {
        return Err(Error::Frame("raw length out of bounds".into()));
    }
    Ok(header)
}

/// Verifies a payload against its header.
pub fn check_payload(header: &Header, payload: &[u8]) -> Result<()> {
    if payload.len() != header.payload_len as usize {
        return Err(Error::Frame("payload truncated".into()));
    }
    if crc32c::crc32c(payload) != header.payload_crc {
        return Err(Error::Frame("payload checksum mismatch".into()));
    }
    Ok(())
}

/// Builds frames. Reused across frames so that its buffers are allocated
/// once.
#[derive(Clone)]
pub struct Encoder {
    raw: Vec<u8>,
    entries: Vec<Entry>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { raw: Vec::new(), entries: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Adds a record. `bytes` must not contain `\n` (the line splitter
    /// guarantees it); it is stored exactly as given.
    pub fn push(&mut self, kind: ActivityKind, key: Key, time_ms: i64, bytes: &[u8]) {
        debug_assert!(!bytes.contains(&b'\n'));
        self.raw.extend_from_slice(bytes);
        self.raw.push(b'\n');
        self.entries.push(Entry { kind, key, time_ms, len: bytes.len() as u32 });
    }

    /// The records pushed so far, in order, with their bytes.
    pub fn records(&self) -> impl Iterator<Item = (&Entry, &[u8])> {
        let mut at = 0;
        self.entries.iter().map(move |e| {
            let b = &self.raw[at..at + e.len as usize];
            at += e.len as usize + 1;
            (e, b)
        })
    }

    /// Forgets the pushed records (after their frame is safely appended).
    pub fn clear(&mut self) {
        self.raw.clear();
        self.entries.clear();
    }

    /// Compresses the pushed records into one frame appended to `out`, and
    /// clears the encoder. `compressor` carries the level and dictionary.
    pub fn finish(
        &mut self,
        compressor: &mut zstd::bulk::Compressor<'_>,
        dict_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.encode(compressor, dict_id, out)?;
        self.clear();
        Ok(())
    }

    /// Compresses the pushed records into one frame appended to `out`,
    /// keeping them (so that a failed append can be retried).
    pub fn encode(&self, compressor: &mut zstd::bulk::Compressor<'_>, dict_id: u32, out: &mut Vec<u8>) -> Result<()> {
        self.encode_part(0..self.entries.len(), compressor, dict_id, out)
    }

    /// The records cut into runs of at most `max_raw` raw bytes each (a
    /// run holds at least one record), as index ranges: one frame each.
    pub fn parts(&self, max_raw: usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let (mut start, mut raw) = (0, 0usize);
        for (i, e) in self.entries.iter().enumerate() {
            let n = e.len as usize + 1;
            if i > start && raw + n > max_raw {
                out.push(start..i);
                start = i;
                raw = 0;
            }
            raw += n;
        }
        if start < self.entries.len() {
            out.push(start..self.entries.len());
        }
        out
    }

    /// Orders the records by `(time_ms, key)` (a sealed frame is in time
    /// order, so that a minute that fits one frame reads in order).
    pub fn sort_by_time(&mut self) {
        let mut spans: Vec<(Entry, usize)> = Vec::with_capacity(self.entries.len());
        let mut at = 0;
        for e in &self.entries {
            spans.push((*e, at));
            at += e.len as usize + 1;
        }
        spans.sort_by_key(|(e, _)| (e.time_ms, e.key));
        let mut raw = Vec::with_capacity(self.raw.len());
        for (e, from) in &spans {
            raw.extend_from_slice(&self.raw[*from..*from + e.len as usize + 1]);
        }
        self.raw = raw;
        self.entries = spans.into_iter().map(|(e, _)| e).collect();
    }

    /// Forgets the first `n` records (their frame was appended).
    pub fn drain_front(&mut self, n: usize) {
        let bytes: usize = self.entries[..n].iter().map(|e| e.len as usize + 1).sum();
        self.raw.drain(..bytes);
        self.entries.drain(..n);
    }

    /// Compresses the records `part` (an index range, see [`parts`]) into
    /// one frame appended to `out`.
    ///
    /// [`parts`]: Encoder::parts
    pub fn encode_part(
        &self,
        part: std::ops::Range<usize>,
        compressor: &mut zstd::bulk::Compressor<'_>,
        dict_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let entries = &self.entries[part.clone()];
        let from: usize = self.entries[..part.start].iter().map(|e| e.len as usize + 1).sum();
        let raw = &self.raw[from..from + entries.iter().map(|e| e.len as usize + 1).sum::<usize>()];
        let payload = compressor.compress(raw).map_err(Error::Compression)?;
        let start = out.len();
        let mut table = Vec::with_capacity(entries.len() * 22);
        for e in entries {
            table.push(e.kind as u8);
            e.key.encode(&mut table);
            table.extend_from_slice(&e.time_ms.to_le_bytes());
            table.extend_from_slice(&e.len.to_le_bytes());
        }
        let min = entries.iter().map(|e| e.time_ms).min().unwrap_or(0);
        let max = entries.iter().map(|e| e.time_ms).max().unwrap_or(0);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(if dict_id != 0 { FLAG_DICT } else { 0 });
        out.extend_from_slice(&[0, 0]);
        for v in [table.len() as u32, payload.len() as u32, raw.len() as u32, entries.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        out.extend_from_slice(&dict_id.to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..start + 48]), &table);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&table);
        out.extend_from_slice(&payload);
        Ok(())
    }
}

/// Splits a decompressed payload into records using the header's lengths.
pub fn split_records<'a>(header: &'a Header, raw: &'a [u8]) -> Result<Vec<(&'a Entry, &'a [u8])>> {
    if raw.len() != header.raw_len as usize {
        return Err(Error::Frame("decompressed length mismatch".into()));
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(header.entries.len());
    for e in &header.entries {
        let end = at + e.len as usize;
        if raw.get(end) != Some(&b'\n') {
            return Err(Error::Frame("record not followed by newline".into()));
        }
        out.push((e, &raw[at..end]));
        at = end + 1;
    }
    Ok(out)
}

/// Decodes one whole frame from a buffer: header, checks, records. For
/// tests and small tools; segments read frames piecewise.
pub fn decode(buf: &[u8], decompressor: &mut zstd::bulk::Decompressor<'_>) -> Result<(Header, Vec<u8>)> {
    let fixed: &[u8; FIXED_LEN] =
        buf.get(..FIXED_LEN).and_then(|b| b.try_into().ok()).ok_or_else(|| Error::Frame("short frame".into()))?;
    let f = parse_fixed(fixed)?;
    let table = buf
        .get(FIXED_LEN..FIXED_LEN + f.table_len as usize)
        .ok_or_else(|| Error::Frame("short record table".into()))?;
    let header = parse_header(fixed, table)?;
    let payload = buf
        .get(header.header_len..header.frame_len() as usize)
        .ok_or_else(|| Error::Frame("payload truncated".into()))?;
    check_payload(&header, payload)?;
    let raw = decompress(&header, payload, decompressor)?;
    Ok((header, raw))
}

/// Decompresses a checked payload.
pub fn decompress(header: &Header, payload: &[u8], decompressor: &mut zstd::bulk::Decompressor<'_>) -> Result<Vec<u8>> {
    let raw = decompressor.decompress(payload, header.raw_len as usize).map_err(Error::Compression)?;
    if raw.len() != header.raw_len as usize {
        return Err(Error::Frame("decompressed length mismatch".into()));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = (i64, u64, Vec<u8>)> {
        (
            any::<i64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..200),
        )
    }

    proptest! {
        #[test]
        fn frames_round_trip(records in proptest::collection::vec(record(), 0..40)) {
            let mut enc = Encoder::new();
            for (t, id, bytes) in &records {
                enc.push(ActivityKind::Post, Key::Post(*id), *t, bytes);
            }
            let mut out = Vec::new();
            let mut c = zstd::bulk::Compressor::new(3).unwrap();
            enc.finish(&mut c, 0, &mut out).unwrap();
            prop_assert!(enc.is_empty());
            let mut d = zstd::bulk::Decompressor::new().unwrap();
            let (h, raw) = decode(&out, &mut d).unwrap();
            prop_assert_eq!(h.frame_len() as usize, out.len());
            let got = split_records(&h, &raw).unwrap();
            prop_assert_eq!(got.len(), records.len());
            for ((e, b), (t, id, bytes)) in got.iter().zip(&records) {
                prop_assert_eq!(e.time_ms, *t);
                prop_assert_eq!(e.key, Key::Post(*id));
                prop_assert_eq!(*b, &bytes[..]);
            }
        }

        #[test]
        fn any_flipped_byte_is_detected(idx in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut enc = Encoder::new();
            enc.push(ActivityKind::Post, Key::Post(7), 1, br#"{"id_str":"7"}"#);
            enc.push(ActivityKind::Like, Key::Like(9), 2, br#"{"id":"9"}"#);
            let mut out = Vec::new();
            enc.finish(&mut zstd::bulk::Compressor::new(3).unwrap(), 0, &mut out).unwrap();
            let i = idx.index(out.len());
            out[i] ^= 1 << bit;
            let mut d = zstd::bulk::Decompressor::new().unwrap();
            prop_assert!(decode(&out, &mut d).is_err());
        }
    }

    #[test]
    fn payload_is_ndjson() {
        let mut enc = Encoder::new();
        enc.push(ActivityKind::Post, Key::Post(1), 5, b"{\"a\":1}");
        enc.push(ActivityKind::Post, Key::Post(2), 6, b"{\"b\":2}");
        let mut out = Vec::new();
        enc.finish(&mut zstd::bulk::Compressor::new(3).unwrap(), 0, &mut out).unwrap();
        let mut d = zstd::bulk::Decompressor::new().unwrap();
        let (h, raw) = decode(&out, &mut d).unwrap();
        assert_eq!(raw, b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!((h.min_time_ms, h.max_time_ms), (5, 6));
        assert_eq!(h.dict_id, 0);
    }
}
