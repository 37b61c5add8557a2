//! Segments: one append-only file per (stream, minute of activity time).
//!
//! # Design constraints
//! - Appends must be cheap and the file must stay readable after a crash at
//!   any byte: a frame is complete and checksummed, or it is cut off.
//! - Opening a segment *repairs* it: a torn tail (a crash in the middle of
//!   an append) is truncated, as Kafka truncates a log at its recovery
//!   point. Damage in the middle (a flipped bit) costs only the damaged
//!   frame: the scanner resynchronises on the next frame whose two
//!   checksums hold, moves the damaged bytes aside into a `.damaged` file
//!   (nothing is deleted), and rewrites the segment atomically.
//! - Reading never modifies: readers stop at the first frame that does not
//!   verify, so a tool can read while the archiver appends.
//! - Sealing rewrites a minute into one frame atomically: write a new file,
//!   fsync it, rename it over the old one, fsync the directory.
//!
//! # Layout
//! ```text
//! offset size field
//!      0    8 magic "GAPLSEG\0"
//!      8    1 version (1)
//!      9    3 reserved, 0
//!     12    4 minute: Unix minutes (u32)
//!     16      frames, back to back (see frame.rs / FORMAT.md)
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::frame::{self, Header, FIXED_LEN};
use crate::io::{FileHandle, Filesystem, Mode, StdFs};
use crate::{Error, Minute, Result};

pub const FILE_MAGIC: [u8; 8] = *b"GAPLSEG\0";
pub const FILE_VERSION: u8 = 1;
pub const FILE_HEADER_LEN: u64 = 16;

/// A frame found in a segment: where it starts and its verified header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRef {
    pub offset: u64,
    pub header: Header,
}

/// What opening a segment had to repair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// Bytes cut from the end: a torn append.
    pub truncated_tail: u64,
    /// Byte ranges (in the file as it was) that failed their checksums
    /// between valid frames, moved to the `.damaged` file.
    pub damaged: Vec<Range<u64>>,
    /// The file existed but was shorter than its header (cut to zero, or a
    /// crash while creating it): its header was written again.
    pub rewrote_header: bool,
}

impl Repair {
    pub fn is_clean(&self) -> bool {
        self.truncated_tail == 0 && self.damaged.is_empty() && !self.rewrote_header
    }
}

/// The 16 bytes that start the segment of `minute`.
pub fn file_header(minute: Minute) -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8] = FILE_VERSION;
    h[12..16].copy_from_slice(&(minute.0 as u32).to_le_bytes());
    h
}

fn check_file_header(path: &Path, h: &[u8]) -> Result<Minute> {
    if h[..8] != FILE_MAGIC {
        return Err(Error::NotASegment { path: path.into(), reason: "bad magic".into() });
    }
    if h[8] != FILE_VERSION {
        return Err(Error::UnsupportedVersion { path: path.into(), version: h[8] });
    }
    Ok(Minute(u32::from_le_bytes(h[12..16].try_into().expect("4 bytes")) as i64))
}

/// Fsyncs a directory so that a create or rename in it is durable.
pub fn sync_dir(fs: &dyn Filesystem, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).ctx("fsync directory", dir)
}

/// Tries to parse one complete, fully verified frame at the start of `buf`.
fn verified_frame_at(buf: &[u8]) -> Option<Header> {
    let fixed: &[u8; FIXED_LEN] = buf.get(..FIXED_LEN)?.try_into().ok()?;
    let f = frame::parse_fixed(fixed).ok()?;
    let table = buf.get(FIXED_LEN..FIXED_LEN + f.table_len as usize)?;
    let header = frame::parse_header(fixed, table).ok()?;
    let payload = buf.get(header.header_len..header.frame_len() as usize)?;
    frame::check_payload(&header, payload).ok()?;
    Some(header)
}

/// An open segment, positioned for appending.
///
/// Invariant: the file holds the file header followed by verified frames
/// only; `len` is its length. Appends are not durable until [`sync`].
///
/// [`sync`]: SegmentWriter::sync
pub struct SegmentWriter {
    file: Box<dyn FileHandle>,
    path: PathBuf,
    minute: Minute,
    len: u64,
    frames: usize,
    dirty: bool,
}

impl SegmentWriter {
    /// Opens (creating it if needed) and repairs the segment of `minute` at
    /// `path`. Returns the writer, the frames it holds and what was
    /// repaired.
    ///
    /// When the file needs a repair, `before_repair` is called with what
    /// will be repaired *before any byte is changed*, so that the caller
    /// can withdraw the minute's coverage durably first: a crash in between
    /// then leaves a hole, never a clean-looking file with coverage that
    /// its lost frames no longer back. If it fails, nothing is changed.
    pub fn open(
        fs: &dyn Filesystem,
        path: &Path,
        minute: Minute,
        before_repair: impl FnOnce(&Repair) -> Result<()>,
    ) -> Result<(SegmentWriter, Vec<FrameRef>, Repair)> {
        let existed = path.exists();
        // A temporary file left by a crash during a seal or a repair: the
        // segment itself is complete (old or new), the copy is not needed.
        let tmp = crate::layout::tmp_path(path);
        if tmp.exists() {
            fs.remove_file(&tmp).ctx("remove stale temporary file", &tmp)?;
        }
        if existed {
            // The common case, in bounded memory: every frame verifies.
            if let Some(frames) = clean_frames(fs, path, Some(minute))? {
                let file = fs.open(path, Mode::ReadWrite).ctx("open segment", path)?;
                let len = file.len().ctx("stat segment", path)?;
                let w = SegmentWriter { file, path: path.into(), minute, len, frames: frames.len(), dirty: false };
                return Ok((w, frames, Repair::default()));
            }
        }
        // A new file, or one to repair: read whole (rare).
        let mut file = fs.open(path, Mode::ReadWrite).ctx("open segment", path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ctx("read segment", path)?;
        let mut repair = Repair::default();
        if bytes.len() < FILE_HEADER_LEN as usize {
            // A new file, or one cut short: whatever it held is gone, and
            // rewriting its header loses nothing more.
            repair.truncated_tail = bytes.len() as u64;
            repair.rewrote_header = existed;
            if !repair.is_clean() {
                before_repair(&repair)?;
                tracing::warn!(path = %path.display(), bytes = bytes.len(), "a segment was shorter than its header; it starts again empty");
            }
            file.set_len(0).ctx("truncate segment", path)?;
            file.seek(SeekFrom::Start(0)).ctx("seek segment", path)?;
            file.write_all(&file_header(minute)).ctx("write segment header", path)?;
            file.sync_all().ctx("fsync segment", path)?;
            if let Some(dir) = path.parent() {
                sync_dir(fs, dir)?;
            }
            let w = SegmentWriter { file, path: path.into(), minute, len: FILE_HEADER_LEN, frames: 0, dirty: false };
            return Ok((w, Vec::new(), repair));
        }
        let found = match check_file_header(path, &bytes) {
            // A damaged magic (a flipped bit, an overwritten start): the
            // header is rewritten, and the frames after it are kept.
            Err(Error::NotASegment { .. }) => {
                repair.rewrote_header = true;
                minute
            }
            other => other?,
        };
        // Another minute in the header: a misplaced file if its frames hold
        // that minute's records (refused: it is not ours to repair), else
        // a damaged header (rewritten, and the frames kept).
        let misplaced = found != minute && {
            let (frames, _, _) = scan(&bytes);
            !frames.is_empty()
                && frames.iter().all(|f| {
                    Minute::of_ms(f.header.min_time_ms) == found && Minute::of_ms(f.header.max_time_ms) == found
                })
        };
        if found != minute && !misplaced {
            repair.rewrote_header = true;
        }
        if misplaced {
            return Err(Error::NotASegment {
                path: path.into(),
                reason: format!("holds minute {found}, expected {minute}"),
            });
        }
        let (frames, mut damaged, good_end) = scan(&bytes);
        if repair.rewrote_header {
            damaged.insert(0, 0..FILE_HEADER_LEN);
        }
        repair.truncated_tail = bytes.len() as u64 - good_end;
        repair.damaged = damaged;
        if !repair.is_clean() {
            before_repair(&repair)?;
        }
        let mut len = good_end;
        if !repair.damaged.is_empty() {
            keep_damaged(fs, path, &bytes, &repair.damaged)?;
            let mut clean = file_header(minute).to_vec();
            let mut moved = Vec::with_capacity(frames.len());
            for f in &frames {
                let start = f.offset as usize;
                let new_offset = clean.len() as u64;
                clean.extend_from_slice(&bytes[start..start + f.header.frame_len() as usize]);
                moved.push(FrameRef { offset: new_offset, header: f.header.clone() });
            }
            replace_atomically(fs, path, &clean)?;
            file = fs.open(path, Mode::ReadWrite).ctx("reopen segment", path)?;
            len = clean.len() as u64;
            let w = SegmentWriter { file, path: path.into(), minute, len, frames: moved.len(), dirty: false };
            return Ok((w, moved, repair));
        }
        if repair.truncated_tail > 0 {
            tracing::warn!(path = %path.display(), bytes = repair.truncated_tail, "cut a torn tail off a segment");
            keep_damaged(fs, path, &bytes, std::slice::from_ref(&(len..bytes.len() as u64)))?;
            file.set_len(len).ctx("truncate torn tail", path)?;
            file.sync_all().ctx("fsync segment", path)?;
        }
        len = len.max(FILE_HEADER_LEN);
        let w = SegmentWriter { file, path: path.into(), minute, len, frames: frames.len(), dirty: false };
        Ok((w, frames, repair))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn minute(&self) -> Minute {
        self.minute
    }

    /// Bytes in the file, all of them verified frames (or appended since).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Appends encoded frames. Not durable until [`SegmentWriter::sync`].
    /// On a write error the file is cut back to its last good length, so a
    /// failed append (a full disk) leaves no partial frame behind.
    pub fn append(&mut self, frame_bytes: &[u8]) -> Result<()> {
        let res = self.file.seek(SeekFrom::Start(self.len)).and_then(|_| self.file.write_all(frame_bytes));
        if let Err(e) = res {
            let _ = self.file.set_len(self.len);
            return Err(Error::Io { op: "append frame", path: self.path.clone(), source: e });
        }
        self.len += frame_bytes.len() as u64;
        self.frames += 1;
        self.dirty = true;
        Ok(())
    }

    /// Makes every append so far durable (fdatasync).
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.file.sync_data().ctx("fsync segment", &self.path)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Scans a whole segment image. Returns the verified frames, the damaged
/// ranges between them, and where the verified data ends.
fn scan(bytes: &[u8]) -> (Vec<FrameRef>, Vec<Range<u64>>, u64) {
    let mut frames = Vec::new();
    let mut damaged = Vec::new();
    let mut pos = FILE_HEADER_LEN as usize;
    while pos < bytes.len() {
        if let Some(header) = verified_frame_at(&bytes[pos..]) {
            let len = header.frame_len() as usize;
            frames.push(FrameRef { offset: pos as u64, header });
            pos += len;
            continue;
        }
        // Resynchronise: the next verified frame after `pos`, if any.
        let next = (pos + 1..bytes.len())
            .filter(|&at| bytes[at..].starts_with(&frame::MAGIC))
            .find(|&at| verified_frame_at(&bytes[at..]).is_some());
        match next {
            Some(at) => {
                damaged.push(pos as u64..at as u64);
                pos = at;
            }
            None => return (frames, damaged, pos as u64),
        }
    }
    (frames, damaged, pos as u64)
}

/// Saves damaged byte ranges beside the segment, so that nothing is
/// deleted by a repair.
fn keep_damaged(fs: &dyn Filesystem, path: &Path, bytes: &[u8], damaged: &[Range<u64>]) -> Result<()> {
    let out = crate::layout::damaged_path(path);
    let created = !out.exists();
    let mut f = fs.open(&out, Mode::Append).ctx("open damaged file", &out)?;
    for r in damaged {
        writeln!(f, "# offset {} length {}", r.start, r.end - r.start).ctx("write damaged file", &out)?;
        f.write_all(&bytes[r.start as usize..r.end as usize]).ctx("write damaged file", &out)?;
        f.write_all(b"\n").ctx("write damaged file", &out)?;
    }
    f.sync_all().ctx("fsync damaged file", &out)?;
    if created {
        if let Some(dir) = path.parent() {
            sync_dir(fs, dir)?;
        }
    }
    tracing::warn!(path = %path.display(), ranges = ?damaged, "moved damaged segment bytes aside");
    Ok(())
}

/// Replaces `path` with what `write` writes, as [`replace_atomically`]
/// does, streaming (the new contents are never all in memory). If `write`
/// fails, the temporary file is removed and `path` is untouched.
pub fn replace_with(fs: &dyn Filesystem, path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let tmp = write_tmp(fs, path, write)?;
    install_tmp(fs, &tmp, path)
}

/// Writes `path`'s replacement to its temporary path ([`crate::layout::tmp_path`])
/// with what `write` writes, streaming, and fsyncs it; returns the
/// temporary path. If `write` fails, the temporary file is removed.
pub fn write_tmp(
    fs: &dyn Filesystem,
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<PathBuf> {
    let tmp = crate::layout::tmp_path(path);
    let written = (|| {
        let f = fs.open(&tmp, Mode::Create).ctx("create", &tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        write(&mut out)?;
        let mut f =
            out.into_inner().map_err(|e| Error::Io { op: "write", path: tmp.clone(), source: e.into_error() })?;
        f.sync_all().ctx("fsync", &tmp)
    })();
    if let Err(e) = written {
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Renames a complete, fsynced replacement `tmp` over `path` and fsyncs
/// the directory. If the rename fails, `tmp` is removed.
pub fn install_tmp(fs: &dyn Filesystem, tmp: &Path, path: &Path) -> Result<()> {
    if let Err(e) = fs.rename(tmp, path) {
        let _ = fs.remove_file(tmp);
        return Err(Error::Io { op: "rename", path: path.to_path_buf(), source: e });
    }
    if let Some(dir) = path.parent() {
        sync_dir(fs, dir)?;
    }
    Ok(())
}

/// Replaces `path` with `contents`: write a temporary file, fsync it,
/// rename it over `path`, fsync the directory. A crash at any point leaves
/// either the old file or the new one.
pub fn replace_atomically(fs: &dyn Filesystem, path: &Path, contents: &[u8]) -> Result<()> {
    replace_with(fs, path, |out| out.write_all(contents).ctx("write", crate::layout::tmp_path(path)))
}

/// The frames of a segment whose header *and payload* verify, wherever they
/// are (past damage too, as a repair would keep them), and whether any
/// byte after the file header failed to verify. Never modifies the file.
/// Reads the whole file.
pub fn verified_frames(fs: &dyn Filesystem, path: &Path) -> Result<(Vec<FrameRef>, bool)> {
    if let Some(frames) = clean_frames(fs, path, None)? {
        return Ok((frames, false));
    }
    let bytes = fs.read(path).ctx("read segment", path)?;
    if bytes.len() < FILE_HEADER_LEN as usize {
        return Ok((Vec::new(), true));
    }
    let header_ok = check_file_header(path, &bytes).is_ok();
    let (frames, damaged, good_end) = scan(&bytes);
    Ok((frames, !header_ok || !damaged.is_empty() || good_end != bytes.len() as u64))
}

/// Walks a segment frame by frame, one frame in memory at a time: its
/// frames if every byte verifies (and the header names `minute`, if
/// given); `None` if anything does not, and the caller scans the whole
/// file to find what to keep.
fn clean_frames(fs: &dyn Filesystem, path: &Path, minute: Option<Minute>) -> Result<Option<Vec<FrameRef>>> {
    let mut r = match SegmentReader::open_in(fs, path) {
        Ok(r) => r,
        Err(Error::NotASegment { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if r.end < FILE_HEADER_LEN || minute.is_some_and(|m| m != r.minute) {
        return Ok(None);
    }
    let mut frames = Vec::new();
    let mut payload = Vec::new();
    while let Some(f) = r.next_header()? {
        if !r.read_payload(&f, &mut payload)? {
            return Ok(None);
        }
        frames.push(f);
    }
    Ok((r.pos == r.end).then_some(frames))
}

/// Whether a segment fails the structural check: shorter than its header,
/// a bad magic, a frame header that does not verify, or frames that do not
/// end exactly where the file ends. Reads the headers only.
pub fn check_structure(fs: &dyn Filesystem, path: &Path) -> Result<bool> {
    let mut r = match SegmentReader::open_in(fs, path) {
        Ok(r) => r,
        Err(Error::NotASegment { .. }) => return Ok(true),
        Err(e) => return Err(e),
    };
    while let Some(f) = r.next_header()? {
        r.skip_payload(&f)?;
    }
    Ok(r.pos != r.end)
}

/// Reads the verified frame headers of a segment without reading payloads
/// (seeking past them). Never modifies the file; stops at the first frame
/// that does not verify, or whose payload is not all there yet.
pub fn read_headers(path: &Path) -> Result<(Minute, Vec<FrameRef>)> {
    let mut r = SegmentReader::open(path)?;
    let mut out = Vec::new();
    while let Some(f) = r.next_header()? {
        r.skip_payload(&f)?;
        out.push(f);
    }
    Ok((r.minute, out))
}

/// Reads a segment frame by frame, holding one frame in memory at a time.
/// Read-only: safe while a writer appends.
pub struct SegmentReader {
    file: std::io::BufReader<Box<dyn FileHandle>>,
    path: PathBuf,
    pub minute: Minute,
    pos: u64,
    end: u64,
}

impl SegmentReader {
    pub fn open(path: &Path) -> Result<SegmentReader> {
        SegmentReader::open_in(&StdFs, path)
    }

    /// [`SegmentReader::open`] through `fs`.
    pub fn open_in(fs: &dyn Filesystem, path: &Path) -> Result<SegmentReader> {
        let file = fs.open(path, Mode::Read).ctx("open segment", path)?;
        let end = file.len().ctx("stat segment", path)?;
        let mut file = std::io::BufReader::with_capacity(64 * 1024, file);
        if end < FILE_HEADER_LEN {
            // A segment whose creation failed (a full disk) or was cut to
            // nothing: it holds no frame (the writer repairs it).
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let minute = crate::layout::segment_minute(name).unwrap_or(Minute(0));
            return Ok(SegmentReader { file, path: path.into(), minute, pos: FILE_HEADER_LEN, end });
        }
        let mut h = [0u8; FILE_HEADER_LEN as usize];
        file.read_exact(&mut h).ctx("read segment header", path)?;
        let minute = check_file_header(path, &h)?;
        Ok(SegmentReader { file, path: path.into(), minute, pos: FILE_HEADER_LEN, end })
    }

    /// The next frame's verified header, or `None` at the end of the
    /// verified frames.
    pub fn next_header(&mut self) -> Result<Option<FrameRef>> {
        if self.pos + FIXED_LEN as u64 > self.end {
            return Ok(None);
        }
        let mut fixed = [0u8; FIXED_LEN];
        self.file.read_exact(&mut fixed).ctx("read frame header", &self.path)?;
        let Ok(f) = frame::parse_fixed(&fixed) else { return Ok(None) };
        let total = FIXED_LEN as u64 + f.table_len as u64 + f.payload_len as u64;
        if self.pos + total > self.end {
            return Ok(None);
        }
        let mut table = vec![0u8; f.table_len as usize];
        self.file.read_exact(&mut table).ctx("read record table", &self.path)?;
        let Ok(header) = frame::parse_header(&fixed, &table) else { return Ok(None) };
        let offset = self.pos;
        self.pos += header.header_len as u64;
        Ok(Some(FrameRef { offset, header }))
    }

    /// Reads and verifies the payload of the frame just returned by
    /// [`next_header`](Self::next_header); `None` if it does not verify.
    pub fn read_payload(&mut self, f: &FrameRef, buf: &mut Vec<u8>) -> Result<bool> {
        buf.resize(f.header.payload_len as usize, 0);
        self.file.read_exact(buf).ctx("read frame payload", &self.path)?;
        if frame::check_payload(&f.header, buf).is_err() {
            // Verified data ends where this frame starts.
            self.pos = f.offset;
            return Ok(false);
        }
        self.pos += f.header.payload_len as u64;
        Ok(true)
    }

    /// The bytes from where the verified frames end to the end of the file
    /// (as it was when opened), if any: damage, or a frame still being
    /// written. Meaningful once [`next_header`](Self::next_header) returned
    /// `None` or a payload did not verify.
    pub fn unverified(&self) -> Option<Range<u64>> {
        (self.pos < self.end).then_some(self.pos..self.end)
    }

    /// Reads no further than `end` bytes into the file (a prefix known to
    /// be whole while later frames may be appended).
    pub fn limit(&mut self, end: u64) {
        self.end = self.end.min(end);
    }

    pub fn skip_payload(&mut self, f: &FrameRef) -> Result<()> {
        self.file.seek_relative(f.header.payload_len as i64).ctx("seek segment", &self.path)?;
        self.pos += f.header.payload_len as u64;
        Ok(())
    }
}
