//! The quarantine: where lines that cannot be stored as activities go (not
//! UTF-8, not JSON, too long, of no known kind; see
//! [`crate::activity::Rejection`]), each with its reason.
//!
//! # Constraints first
//! - **Nothing is lost.** A rejected line is kept byte for byte, even when it
//!   is not UTF-8 or contains newlines, so entries are length-prefixed, never
//!   delimited.
//! - **Readable without this code**, for years and from any language: a
//!   one-line ASCII header, then the raw bytes. `less` and `grep` work on it
//!   because the lines are JSON text in practice.
//! - **Durable with the data.** The archiver calls [`Quarantine::sync`] in
//!   the same commit that fsyncs the segment frames, so a line sent before a
//!   covered second is either stored or quarantined on disk.
//! - **Crash-safe append.** A crash mid-write leaves a torn last entry. Its
//!   line was never committed (coverage never claimed it), so Recovery will
//!   deliver it again: [`Quarantine::open`] cuts the torn tail off so that
//!   new entries follow a complete one. Even so the cut bytes are kept, in a
//!   file beside it (`<file name>.torn-<offset>`), because whatever is wrong
//!   with a file should be looked at, not erased.
//! - **Cheap.** Pushes are buffered in memory and written in batches (or at
//!   sync); a failed write is rolled back to the last complete entry and
//!   retried by the next flush.
//!
//! # File layout (version 1)
//! A quarantine file is a sequence of entries and nothing else (no file
//! header; an empty file is valid). Each entry is:
//! ```text
//! Q1 <received_ms> <len> <reason>\n
//! <exactly len bytes: the line as received, without its terminator>\n
//! ```
//! - `Q1` is the magic and the format version (ASCII `Q`, `1`).
//! - Fields are separated by one space (0x20).
//! - `<received_ms>`: when the line was received, in milliseconds since the
//!   Unix epoch, as decimal ASCII digits, with a leading `-` if negative
//!   (a signed 64-bit integer).
//! - `<len>`: the number of bytes of the line, as decimal ASCII digits.
//! - `<reason>`: why the line was rejected, UTF-8 text running to the end of
//!   the header line; possibly empty. It never contains LF or CR: the writer
//!   replaces every ASCII control character with a space and cuts the reason
//!   to at most 1024 bytes (at a character boundary).
//! - The header ends with LF (0x0A). It is then followed by exactly `<len>`
//!   bytes, which may be anything (LF, CR, invalid UTF-8, NUL), and one LF
//!   (0x0A) that is not part of the line.
//!
//! Example, a line `{"a":` received at 1500000000000 ms:
//! ```text
//! Q1 1500000000000 5 not JSON: EOF while parsing a value at line 1 column 5
//! {"a":
//! ```
//! To read: parse a header line, read `len` bytes, check that the next byte
//! is LF, repeat. An entry that ends before its final LF, or a header that
//! does not parse, is a torn tail: [`read_entries`] stops there (the writer
//! may be mid-append), and [`Quarantine::open`] moves it to
//! `<file name>.torn-<offset>`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, Result};
use crate::io::{FileHandle, Filesystem, Mode, StdFs};
use crate::layout::torn_path;

/// The magic and version that start every entry's header.
const MAGIC: &[u8] = b"Q1 ";

/// Longest part of a line kept (a line of a peer that never ends is cut
/// long before this, at the reader's cap).
pub const MAX_KEPT_LINE: usize = 64 << 10;
/// The default size cap of one stream's quarantine file.
pub const DEFAULT_CAP_BYTES: u64 = 256 << 20;

/// Longest reason written, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// Longest header a reader accepts: magic, two 20-digit numbers, three
/// spaces, the longest reason and LF, with room to spare.
const MAX_HEADER_BYTES: u64 = 4096;

/// Buffered bytes above which a push writes the buffer out.
const FLUSH_AT: usize = 64 * 1024;

/// One quarantined line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Why it was rejected (read lossily as UTF-8).
    pub reason: String,
    /// When it was received, milliseconds since the Unix epoch.
    pub received_ms: i64,
    /// The line exactly as received, without its terminator.
    pub line: Vec<u8>,
}

/// A per-stream, append-only quarantine file (layout in the module
/// documentation). Not shared between processes: one writer per file.
#[derive(Debug)]
pub struct Quarantine {
    path: PathBuf,
    file: Box<dyn FileHandle>,
    /// Bytes of complete entries written to the file (not necessarily
    /// fsynced); where the next write goes.
    written: u64,
    /// Length of the file known to be durable (fsynced).
    synced: u64,
    /// Entries written since the last fsync: written again if it fails.
    since_sync: Vec<u8>,
    fs: Arc<dyn Filesystem>,
    /// The file's size cap, and entries not kept because of it.
    cap: u64,
    not_kept: u64,
    /// Encoded entries not yet written.
    buf: Vec<u8>,
    /// Entries in the file when opened, plus entries pushed since.
    count: u64,
    /// Entries pushed since open.
    pushed: u64,
}

impl Quarantine {
    /// Opens (or creates, with its directories) the quarantine at `path`
    /// for appending. A torn tail is cut off and kept in
    /// `<file name>.torn-<offset>` beside it.
    pub fn open(path: &Path) -> Result<Quarantine> {
        Quarantine::open_in(StdFs::shared(), path)
    }

    /// [`Quarantine::open`] through `fs`.
    pub fn open_in(fs: Arc<dyn Filesystem>, path: &Path) -> Result<Quarantine> {
        let created = create_file(fs.as_ref(), path)?;
        let mut file = fs.open(path, Mode::ReadWrite).ctx("open quarantine", path)?;
        let file_len = file.len().ctx("stat quarantine", path)?;
        let (good_len, count) = {
            let mut scanner = Scanner::new(&mut file, file_len);
            scanner.skip_complete().ctx("read quarantine", path)?;
            (scanner.pos, scanner.entries)
        };
        if good_len < file_len {
            keep_torn_tail(fs.as_ref(), path, &mut file, good_len, file_len)?;
        }
        if created {
            sync_parent(fs.as_ref(), path)?;
        }
        Ok(Quarantine {
            path: path.to_path_buf(),
            file,
            written: good_len,
            synced: good_len,
            since_sync: Vec::new(),
            fs,
            cap: DEFAULT_CAP_BYTES,
            not_kept: 0,
            buf: Vec::new(),
            count,
            pushed: 0,
        })
    }

    /// Appends an entry (buffered: durable after the next [`sync`]).
    /// Control characters in `reason` become spaces, and it is cut to
    /// [`MAX_REASON_BYTES`].
    ///
    /// When the buffer is large, this writes it out, and may fail: the entry
    /// is then still buffered, and the next successful [`flush`] or
    /// [`sync`] writes it (do not push it again).
    ///
    /// [`sync`]: Quarantine::sync
    /// [`flush`]: Quarantine::flush
    ///
    /// Bounded: a line longer than [`MAX_KEPT_LINE`] keeps its first
    /// [`MAX_KEPT_LINE`] bytes (the reason says its true length), and once
    /// the file would pass its cap ([`Quarantine::set_cap`]) entries are
    /// counted ([`Quarantine::not_kept`]) but not written.
    pub fn push(&mut self, line: &[u8], reason: &str, received_ms: i64) -> Result<()> {
        let (kept, reason) = if line.len() > MAX_KEPT_LINE {
            (&line[..MAX_KEPT_LINE], format!("{reason} (kept the first {MAX_KEPT_LINE} of {} bytes)", line.len()))
        } else {
            (line, reason.to_string())
        };
        let size = self.written + self.buf.len() as u64;
        if size + kept.len() as u64 + 64 + reason.len() as u64 > self.cap {
            self.not_kept += 1;
            return Ok(());
        }
        encode_entry(&mut self.buf, kept, &reason, received_ms);
        self.count += 1;
        self.pushed += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered entries to the file (no fsync). On failure the file
    /// is cut back to its last complete entry and the entries stay buffered.
    pub fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.seek(SeekFrom::Start(self.written)).and_then(|_| self.file.write_all(&self.buf));
        if let Err(source) = result {
            // Leave no partial entry for the next write to follow.
            if let Err(e) = self.file.set_len(self.written) {
                tracing::error!(path = %self.path.display(), error = %e, "cannot cut a failed quarantine write");
            }
            return Err(source).ctx("write quarantine", &self.path);
        }
        self.written += self.buf.len() as u64;
        self.since_sync.extend_from_slice(&self.buf);
        self.buf.clear();
        Ok(())
    }

    /// Writes buffered entries and fsyncs the file: every entry pushed so
    /// far is durable when this returns `Ok`. Called at commit.
    ///
    /// A failed fsync is not retried as if the entries were there (the
    /// kernel may have dropped them): the file is reopened and cut back to
    /// what was durable, and the entries written since are queued again.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        match self.file.sync_data() {
            Ok(()) => {
                self.synced = self.written;
                self.since_sync.clear();
                Ok(())
            }
            Err(source) => {
                let mut again = std::mem::take(&mut self.since_sync);
                again.append(&mut self.buf);
                self.buf = again;
                self.written = self.synced;
                match self.fs.open(&self.path, Mode::ReadWrite).and_then(|mut f| f.set_len(self.synced).map(|()| f)) {
                    Ok(f) => self.file = f,
                    Err(e) => tracing::error!(path = %self.path.display(), error = %e, "cannot reopen the quarantine"),
                }
                Err(source).ctx("fsync quarantine", &self.path)
            }
        }
    }

    /// Entries in the file: those found on open plus those pushed since
    /// (including any still buffered). Torn entries cut off on open are not
    /// counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Entries pushed by this process since [`Quarantine::open`].
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Sets the size cap of the file (see [`Quarantine::push`]).
    pub fn set_cap(&mut self, bytes: u64) {
        self.cap = bytes;
    }

    /// Entries this process did not write because the file was at its cap
    /// (they are still counted as quarantined in the coverage counters).
    pub fn not_kept(&self) -> u64 {
        self.not_kept
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Quarantine {
    /// Writes (without fsync) what is still buffered: a clean shutdown
    /// should [`Quarantine::sync`] first; this only narrows the loss when it
    /// did not.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, bytes = self.buf.len(), "quarantine entries not written at close");
        }
    }
}

/// Reads every complete entry of the quarantine at `path` (for tools and
/// tests). A torn tail is not an error: the writer may be mid-append; it is
/// skipped with a warning.
pub fn read_entries(path: &Path) -> Result<Vec<QuarantineEntry>> {
    let mut file = File::open(path).ctx("open quarantine", path)?;
    let file_len = file.metadata().ctx("stat quarantine", path)?.len();
    let mut scanner = Scanner::new(&mut file, file_len);
    let mut entries = Vec::new();
    while let Some(entry) = scanner.next_entry(true).ctx("read quarantine", path)? {
        entries.push(entry);
    }
    if scanner.pos < file_len {
        tracing::warn!(
            path = %path.display(),
            offset = scanner.pos,
            bytes = file_len - scanner.pos,
            "quarantine ends with an incomplete entry; skipped"
        );
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------
// Encoding.

fn encode_entry(buf: &mut Vec<u8>, line: &[u8], reason: &str, received_ms: i64) {
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(format!("{received_ms} {} ", line.len()).as_bytes());
    buf.extend_from_slice(sanitize_reason(reason).as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(line);
    buf.push(b'\n');
}

/// The reason as written: control characters (LF, CR, tab, ...) become
/// spaces, and it is cut to [`MAX_REASON_BYTES`] at a character boundary.
fn sanitize_reason(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_BYTES));
    for c in reason.chars() {
        let c = if c.is_ascii_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// Decoding.

/// A parsed header line (without its LF).
struct Header {
    received_ms: i64,
    len: u64,
    reason: String,
}

fn parse_header(line: &[u8]) -> Option<Header> {
    let rest = line.strip_prefix(MAGIC)?;
    let (ms, rest) = split_field(rest);
    let (len, reason) = split_field(rest);
    let received_ms = match ms.strip_prefix(b"-") {
        Some(digits) => parse_decimal(digits).and_then(|n| 0i64.checked_sub_unsigned(n))?,
        None => i64::try_from(parse_decimal(ms)?).ok()?,
    };
    let len = parse_decimal(len)?;
    Some(Header { received_ms, len, reason: String::from_utf8_lossy(reason).into_owned() })
}

/// Splits at the first space: (before, after); after is empty without one.
fn split_field(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Walks the entries of a file from its start. `pos` is the end of the
/// last complete entry read; `entries` how many were read.
struct Scanner<R> {
    reader: BufReader<R>,
    file_len: u64,
    pos: u64,
    entries: u64,
}

impl<R: Read + Seek> Scanner<R> {
    fn new(inner: R, file_len: u64) -> Scanner<R> {
        Scanner { reader: BufReader::new(inner), file_len, pos: 0, entries: 0 }
    }

    /// Skips over every complete entry without reading the lines into
    /// memory.
    fn skip_complete(&mut self) -> io::Result<()> {
        while self.next_entry(false)?.is_some() {}
        Ok(())
    }

    /// The next complete entry (with its line only if `keep_line`), or
    /// `None` at the end of the file or at a torn or unreadable entry
    /// (then `pos < file_len`).
    fn next_entry(&mut self, keep_line: bool) -> io::Result<Option<QuarantineEntry>> {
        if self.pos >= self.file_len {
            return Ok(None);
        }
        let mut raw = Vec::new();
        (&mut self.reader).take(MAX_HEADER_BYTES).read_until(b'\n', &mut raw)?;
        let Some(header) = raw.strip_suffix(b"\n").and_then(parse_header) else {
            return Ok(None);
        };
        let body_start = self.pos + raw.len() as u64;
        let remaining = self.file_len - body_start.min(self.file_len);
        // The line and its final LF must fit in the file.
        if header.len >= remaining {
            return Ok(None);
        }
        let (Ok(len), Ok(skip)) = (usize::try_from(header.len), i64::try_from(header.len)) else {
            return Ok(None);
        };
        let line = if keep_line {
            let mut line = vec![0; len];
            if !read_all(&mut self.reader, &mut line)? {
                return Ok(None);
            }
            line
        } else {
            self.reader.seek_relative(skip)?;
            Vec::new()
        };
        let mut end = [0u8; 1];
        if !read_all(&mut self.reader, &mut end)? || end != *b"\n" {
            return Ok(None);
        }
        self.pos = body_start + header.len + 1;
        self.entries += 1;
        Ok(Some(QuarantineEntry { reason: header.reason, received_ms: header.received_ms, line }))
    }
}

/// `read_exact`, but an early end of file (the file shrank under a reader)
/// is `false` rather than an error.
fn read_all(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// Files and directories.

/// Creates `path` (and its directories) if missing; true if it did.
fn create_file(fs: &dyn Filesystem, path: &Path) -> Result<bool> {
    if let Some(dir) = parent_dir(path) {
        create_dirs(fs, dir)?;
    }
    match fs.open(path, Mode::CreateNew) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).ctx("create quarantine", path),
    }
}

/// Creates `dir` and its missing ancestors, and fsyncs the directory that
/// holds each new one, so that the new entries survive a crash.
fn create_dirs(fs: &dyn Filesystem, dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs.create_dir_all(dir).ctx("create directory", dir)?;
    for created in missing.iter().rev() {
        sync_parent(fs, created)?;
    }
    Ok(())
}

fn parent_dir(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

/// Fsyncs the directory holding `path` (a no-op where directories cannot be
/// opened, as on Windows).
fn sync_parent(fs: &dyn Filesystem, path: &Path) -> Result<()> {
    let dir = parent_dir(path).unwrap_or(Path::new("."));
    crate::segment::sync_dir(fs, dir)
}

/// Copies `[from, to)` of the file to `<file name>.torn-<from>` (fsynced),
/// then cuts the file at `from` (fsynced).
pub(crate) fn keep_torn_tail(
    fs: &dyn Filesystem,
    path: &Path,
    file: &mut Box<dyn FileHandle>,
    from: u64,
    to: u64,
) -> Result<()> {
    let (kept, mut out) = create_torn_file(fs, path, from)?;
    file.seek(SeekFrom::Start(from)).ctx("seek", path)?;
    io::copy(&mut Read::by_ref(file).take(to - from), &mut out).ctx("copy torn tail to", &kept)?;
    out.sync_all().ctx("fsync", &kept)?;
    sync_parent(fs, &kept)?;
    file.set_len(from).ctx("cut torn tail of", path)?;
    file.sync_all().ctx("fsync", path)?;
    tracing::warn!(
        path = %path.display(),
        offset = from,
        bytes = to - from,
        kept = %kept.display(),
        "a torn tail was cut off and its bytes kept"
    );
    Ok(())
}

/// A new file for a torn tail at `offset`: `<file name>.torn-<offset>`, or
/// with `.2`, `.3`, ... appended if a crash tore the same offset before
/// (never overwrite what an earlier repair kept).
fn create_torn_file(fs: &dyn Filesystem, path: &Path, offset: u64) -> Result<(PathBuf, Box<dyn FileHandle>)> {
    const MAX_TRIES: u32 = 10_000;
    let first = torn_path(path, offset);
    let mut candidate = first.clone();
    let mut n = 1;
    loop {
        match fs.open(&candidate, Mode::CreateNew) {
            Ok(file) => return Ok((candidate, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < MAX_TRIES => {
                n += 1;
                let mut name = first.clone().into_os_string();
                name.push(format!(".{n}"));
                candidate = PathBuf::from(name);
            }
            Err(e) => return Err(e).ctx("create", &candidate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(line: &[u8], reason: &str, received_ms: i64) -> QuarantineEntry {
        QuarantineEntry { reason: reason.to_string(), received_ms, line: line.to_vec() }
    }

    fn samples() -> Vec<QuarantineEntry> {
        vec![
            entry(b"{\"a\":", "not JSON: EOF", 1_500_000_000_000),
            entry(b"\xff\xfe{\"x\":1}", "not UTF-8: invalid byte at offset 0", 1),
            entry(b"two\nlines\r\nand a CR\r", "", -5),
            entry(b"", "empty", i64::MAX),
            entry(b"Q1 1 1 fake header\n", "a line that looks like a header", i64::MIN),
            entry(&[0u8; 300], "NULs", 0),
        ]
    }

    fn push_all(q: &mut Quarantine, entries: &[QuarantineEntry]) {
        for e in entries {
            q.push(&e.line, &e.reason, e.received_ms).unwrap();
        }
    }

    #[test]
    fn the_layout_is_as_documented() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        let mut q = Quarantine::open(&path).unwrap();
        q.push(b"{\"a\":", "not JSON", 1_500_000_000_000).unwrap();
        q.push(b"x\ny", "", -7).unwrap();
        q.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes, b"Q1 1500000000000 5 not JSON\n{\"a\":\nQ1 -7 3 \nx\ny\n");
    }

    #[test]
    fn entries_round_trip_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/stream.quarantine");
        let mut q = Quarantine::open(&path).unwrap();
        assert_eq!(q.count(), 0);
        push_all(&mut q, &samples());
        assert_eq!((q.count(), q.pushed()), (6, 6));
        q.sync().unwrap();
        assert_eq!(read_entries(&path).unwrap(), samples());
    }

    #[test]
    fn reopening_appends_and_counts_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        let mut q = Quarantine::open(&path).unwrap();
        push_all(&mut q, &samples()[..2]);
        q.sync().unwrap();
        drop(q);
        let mut q = Quarantine::open(&path).unwrap();
        assert_eq!((q.count(), q.pushed()), (2, 0));
        push_all(&mut q, &samples()[2..]);
        assert_eq!((q.count(), q.pushed()), (6, 4));
        q.sync().unwrap();
        assert_eq!(read_entries(&path).unwrap(), samples());
    }

    #[test]
    fn dropping_writes_what_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        let mut q = Quarantine::open(&path).unwrap();
        push_all(&mut q, &samples());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "buffered until sync");
        drop(q);
        assert_eq!(read_entries(&path).unwrap(), samples());
    }

    #[test]
    fn a_large_buffer_is_written_before_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        let mut q = Quarantine::open(&path).unwrap();
        let big = vec![b'x'; FLUSH_AT];
        q.push(&big, "too long", 1).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > FLUSH_AT as u64);
    }

    #[test]
    fn reasons_are_sanitized_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        let mut q = Quarantine::open(&path).unwrap();
        q.push(b"l", "bad\nreason\r\twith\u{7f}controls", 1).unwrap();
        let long = "é".repeat(MAX_REASON_BYTES); // 2 bytes each
        q.push(b"m", &long, 2).unwrap();
        q.sync().unwrap();
        let got = read_entries(&path).unwrap();
        assert_eq!(got[0].reason, "bad reason  with controls");
        assert_eq!(got[0].line, b"l");
        assert_eq!(got[1].reason, "é".repeat(MAX_REASON_BYTES / 2));
        assert_eq!(got[1].line, b"m");
    }

    /// Every way a crash can tear the last entry, and a corrupt middle.
    #[test]
    fn a_torn_tail_is_cut_on_open_and_kept_aside() {
        let tails: [&[u8]; 8] = [
            b"Q",
            b"Q1 12",
            b"Q1 12 5 reason",
            b"Q1 12 5 reason\n",
            b"Q1 12 5 reason\nabc",
            b"Q1 12 5 reason\nabcde",
            b"Q1 12 5 reason\nabcdeX",
            b"\0\0\0\0\0\0\0\0\0\0\0\0",
        ];
        for tail in tails {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("q");
            let mut q = Quarantine::open(&path).unwrap();
            push_all(&mut q, &samples());
            q.sync().unwrap();
            drop(q);
            let good_len = std::fs::metadata(&path).unwrap().len();
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(tail).unwrap();
            drop(f);

            // A reader skips the tail and leaves the file alone.
            assert_eq!(read_entries(&path).unwrap(), samples(), "{tail:?}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len + tail.len() as u64);

            let mut q = Quarantine::open(&path).unwrap();
            assert_eq!(q.count(), 6);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len, "{tail:?}");
            assert_eq!(std::fs::read(torn_path(&path, good_len)).unwrap(), tail);
            q.push(b"after", "after the crash", 9).unwrap();
            q.sync().unwrap();
            let mut want = samples();
            want.push(entry(b"after", "after the crash", 9));
            assert_eq!(read_entries(&path).unwrap(), want, "{tail:?}");
        }
    }

    #[test]
    fn a_second_tear_at_the_same_offset_keeps_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        drop(Quarantine::open(&path).unwrap());
        for tail in [&b"Q1 1"[..], b"Q1 2 9 x\n"] {
            std::fs::write(&path, tail).unwrap();
            assert_eq!(Quarantine::open(&path).unwrap().count(), 0);
        }
        assert_eq!(std::fs::read(dir.path().join("q.torn-0")).unwrap(), b"Q1 1");
        assert_eq!(std::fs::read(dir.path().join("q.torn-0.2")).unwrap(), b"Q1 2 9 x\n");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_clean_file_leaves_no_torn_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q");
        let mut q = Quarantine::open(&path).unwrap();
        push_all(&mut q, &samples());
        drop(q);
        drop(Quarantine::open(&path).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["q"]);
    }

    #[test]
    fn reading_a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_entries(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, crate::Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn headers_parse_strictly() {
        assert!(parse_header(b"Q1 1 2 r").is_some());
        assert!(parse_header(b"Q1 -1 2").is_some());
        assert_eq!(parse_header(b"Q1 -9223372036854775808 0 ").map(|h| h.received_ms), Some(i64::MIN));
        for bad in [&b"Q2 1 2 r"[..], b"Q1 +1 2 r", b"Q1 1 -2 r", b"Q1  2 r", b"Q1 9223372036854775808 0 r", b"q1 1 2"]
        {
            assert!(parse_header(bad).is_none(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_entries_round_trip(entries in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..200), "\\PC{0,40}|[\\x00-\\x7f]{0,40}", any::<i64>()), 0..12)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("q");
            let mut q = Quarantine::open(&path).unwrap();
            for (line, reason, ms) in &entries {
                q.push(line, reason, *ms).unwrap();
            }
            q.sync().unwrap();
            let got = read_entries(&path).unwrap();
            prop_assert_eq!(got.len(), entries.len());
            for (g, (line, reason, ms)) in got.iter().zip(&entries) {
                prop_assert_eq!(&g.line, line);
                prop_assert_eq!(g.received_ms, *ms);
                prop_assert_eq!(&g.reason, &sanitize_reason(reason));
            }
        }

        #[test]
        fn any_cut_keeps_the_complete_entries(cut in any::<prop::sample::Index>()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("q");
            let mut q = Quarantine::open(&path).unwrap();
            push_all(&mut q, &samples());
            drop(q);
            let bytes = std::fs::read(&path).unwrap();
            let at = cut.index(bytes.len() + 1);
            std::fs::write(&path, &bytes[..at]).unwrap();
            let complete = read_entries(&path).unwrap();
            prop_assert!(samples().starts_with(&complete));
            let q = Quarantine::open(&path).unwrap();
            prop_assert_eq!(q.count(), complete.len() as u64);
            drop(q);
            prop_assert_eq!(read_entries(&path).unwrap(), complete);
        }
    }
}
