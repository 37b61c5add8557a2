//! The ledger file: every compliance event a stream stored, append-only.
//!
//! # Constraints first
//! - **Never behind the data.** The sink appends an event when it writes
//!   the batch that stores its line, and fsyncs the ledger *before* the
//!   segments of that commit: after a crash the ledger may hold an event
//!   whose line was lost (Recovery brings the line again, and the event is
//!   real either way), never a stored line without its event. Once a
//!   line is in a durable segment its key is in the ID index, and a second
//!   delivery would be dropped as a duplicate before its event was read.
//! - **Order free.** Events are applied by their own times, never by
//!   their position (see [`super::Policy`]); an event written twice (a
//!   batch retried after a failed fsync) changes nothing.
//! - **Crash-safe append.** Records are length-prefixed and checksummed.
//!   A torn last record is cut off on open and its bytes kept beside the
//!   file (`compliance.ledger.torn-<offset>`), as the quarantine does.
//!
//! # Record layout (version 1)
//! The file starts with the 8 bytes `GLEDGER1`, then records:
//! ```text
//! u32 len       little-endian, bytes of body
//! u32 crc32c    of body
//! body:
//!   u8  action  1 delete Post, 2 unlike, 3 user_delete, 4 user_undelete,
//!               5 user_protect, 6 user_unprotect, 7 user_suspend,
//!               8 user_unsuspend, 9 scrub_geo, 10 status_withheld,
//!               11 user_withheld, 255 not applied
//!   i64 time_ms the event's timestamp_ms
//!   u64 a       Post ID (1, 2, 10), user ID (3..=9, 11), line hash (255)
//!   u64 b       user ID (1, 2, 10; 0 unknown), up_to_status_id (9),
//!               reason code (255: 1 missing ID, 2 bad countries), else 0
//!   u8  n       number of country codes (10, 11), else 0
//!   n × (u8 len, len bytes ASCII)
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::event::{Action, Event, Family, NotApplied};
use crate::error::{IoContext, Result};
use crate::io::{FileHandle, Filesystem, Mode, StdFs};

/// The first bytes of a ledger file.
pub const MAGIC: &[u8; 8] = b"GLEDGER1";
/// Largest body a reader accepts (the largest possible is 27 + 255 × 17).
const MAX_BODY: usize = 8 << 10;

/// Encodes a record of no event (`code`, a time, two numbers, no
/// countries): the purge log's pass-end records.
pub(crate) fn encode_raw(code: u8, time_ms: i64, a: u64, b: u64, out: &mut Vec<u8>) {
    encode_parts(code, time_ms, a, b, &[], out);
}

/// Encodes one record (length, checksum, body) onto `out`.
pub fn encode(e: &Event, out: &mut Vec<u8>) {
    let (code, a, b, countries): (u8, u64, u64, &[String]) = match &e.action {
        Action::DeletePost { post, user } => (1, *post, *user, &[]),
        Action::Unlike { post, user } => (2, *post, *user, &[]),
        Action::User { user, family, hide } => (3 + 2 * (*family as u8) + u8::from(!hide), *user, 0, &[]),
        Action::ScrubGeo { user, up_to } => (9, *user, *up_to, &[]),
        Action::WithholdPost { post, user, countries } => (10, *post, *user, countries),
        Action::WithholdUser { user, countries } => (11, *user, 0, countries),
        Action::NotApplied { line_hash, reason } => (255, *line_hash, *reason as u64, &[]),
    };
    encode_parts(code, e.time_ms, a, b, countries, out);
}

fn encode_parts(code: u8, time_ms: i64, a: u64, b: u64, countries: &[String], out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(32);
    body.push(code);
    body.extend_from_slice(&time_ms.to_le_bytes());
    body.extend_from_slice(&a.to_le_bytes());
    body.extend_from_slice(&b.to_le_bytes());
    let countries = &countries[..countries.len().min(255)];
    body.push(countries.len() as u8);
    for c in countries {
        let c = &c.as_bytes()[..c.len().min(255)];
        body.push(c.len() as u8);
        body.extend_from_slice(c);
    }
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Decodes one body; `None` if it breaks the layout.
fn decode_body(body: &[u8]) -> Option<Event> {
    let code = *body.first()?;
    let u64_at = |i: usize| body.get(i..i + 8).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")));
    let time_ms = u64_at(1)? as i64;
    let (a, b) = (u64_at(9)?, u64_at(17)?);
    let n = *body.get(25)? as usize;
    let mut countries = Vec::with_capacity(n);
    let mut at = 26;
    for _ in 0..n {
        let len = *body.get(at)? as usize;
        let c = body.get(at + 1..at + 1 + len)?;
        countries.push(String::from_utf8(c.to_vec()).ok()?);
        at += 1 + len;
    }
    if at != body.len() {
        return None;
    }
    let action = match code {
        1 => Action::DeletePost { post: a, user: b },
        2 => Action::Unlike { post: a, user: b },
        3..=8 => Action::User { user: a, family: Family::ALL[usize::from((code - 3) / 2)], hide: (code - 3) % 2 == 0 },
        9 => Action::ScrubGeo { user: a, up_to: b },
        10 => Action::WithholdPost { post: a, user: b, countries },
        11 => Action::WithholdUser { user: a, countries },
        255 => Action::NotApplied { line_hash: a, reason: NotApplied::from_code(b) },
        _ => return None,
    };
    Some(Event { time_ms, action })
}

/// What a read of a ledger found.
#[derive(Debug, Default)]
pub struct LedgerRead {
    pub events: Vec<Event>,
    /// Bytes after the last whole record (a torn tail, or damage).
    pub torn_bytes: u64,
    /// Offset of the end of the last whole record.
    pub whole_len: u64,
    /// Records of no event (purge log: `(code, time_ms)`), when asked for.
    pub raw: Vec<(u8, i64)>,
}

/// Reads every whole record of the ledger at `path` (`Ok(None)` when there
/// is no ledger). Stops at the first record that is cut short or does not
/// verify: the writer cuts it off on open.
pub fn read(path: &Path) -> Result<Option<LedgerRead>> {
    read_in(&StdFs, path)
}

pub(crate) fn read_in(fs: &dyn Filesystem, path: &Path) -> Result<Option<LedgerRead>> {
    let mut f = match fs.open(path, Mode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx("open compliance ledger", path),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ctx("read compliance ledger", path)?;
    Ok(Some(parse(&bytes)))
}

fn parse(bytes: &[u8]) -> LedgerRead {
    parse_with(bytes, MAGIC, false)
}

/// Decodes a ledger's bytes (as [`read`] does a file's).
pub fn decode(bytes: &[u8]) -> LedgerRead {
    parse(bytes)
}

/// The ledger at `path` up to its last whole record (`Ok(None)` when there
/// is none): what a copy of it should hold.
pub fn whole_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx("read compliance ledger", path),
    };
    let whole = parse(&bytes).whole_len as usize;
    bytes.truncate(whole.max(MAGIC.len()));
    if !bytes.starts_with(MAGIC) {
        bytes = MAGIC.to_vec();
    }
    Ok(Some(bytes))
}

/// Writes a new ledger file holding `events` (a copy: a bucket's union).
pub fn write_copy(path: &Path, events: &[Event]) -> Result<()> {
    let mut bytes = MAGIC.to_vec();
    for e in events {
        encode(e, &mut bytes);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    std::fs::write(path, bytes).ctx("write compliance ledger", path)
}

/// Reads the whole records after `magic`; with `raw`, records of codes
/// that are no event (250..=254) are kept as `(code, time)`.
pub(crate) fn parse_with(bytes: &[u8], magic: &[u8; 8], raw: bool) -> LedgerRead {
    let mut out = LedgerRead::default();
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != magic {
        out.torn_bytes = bytes.len() as u64;
        return out;
    }
    let mut at = MAGIC.len();
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + 8..at + 8 + len).filter(|_| len <= MAX_BODY) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        match decode_body(body) {
            Some(e) => out.events.push(e),
            None if raw && (250..=254).contains(&body[0]) && body.len() >= 9 => {
                out.raw.push((body[0], i64::from_le_bytes(body[1..9].try_into().expect("8 bytes"))))
            }
            None => break,
        }
        at += 8 + len;
    }
    out.whole_len = at as u64;
    out.torn_bytes = (bytes.len() - at) as u64;
    out
}

/// The appending side, owned by a stream's sink. Not shared between
/// processes (the store's lock).
#[derive(Debug)]
pub struct LedgerWriter {
    fs: Arc<dyn Filesystem>,
    path: PathBuf,
    file: Option<Box<dyn FileHandle>>,
    /// Length of the file known durable.
    synced: u64,
    /// Records encoded since the last good fsync, and how many of their
    /// bytes the open file has. A failed write or fsync closes the file:
    /// the next flush reopens it, cuts it back to `synced` and writes them
    /// all again.
    unsynced: Vec<u8>,
    written: usize,
    /// Events appended since open.
    appended: u64,
}

impl LedgerWriter {
    /// Opens the ledger at `path` lazily (on the first event): a stream
    /// without compliance events has no ledger file.
    pub fn new(fs: Arc<dyn Filesystem>, path: PathBuf) -> LedgerWriter {
        LedgerWriter { fs, path, file: None, synced: 0, unsynced: Vec::new(), written: 0, appended: 0 }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events appended since open.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Adds an event, written at the next [`LedgerWriter::flush`] or sync.
    pub fn push(&mut self, e: &Event) {
        encode(e, &mut self.unsynced);
        self.appended += 1;
    }

    fn open(&mut self) -> Result<&mut Box<dyn FileHandle>> {
        if self.file.is_none() {
            let fs = self.fs.as_ref();
            let existed = self.path.exists();
            if !existed {
                if let Some(dir) = self.path.parent() {
                    fs.create_dir_all(dir).ctx("create directory", dir)?;
                }
            }
            let mut f = fs.open(&self.path, Mode::ReadWrite).ctx("open compliance ledger", &self.path)?;
            let len = f.len().ctx("stat compliance ledger", &self.path)?;
            if len == 0 {
                f.write_all(MAGIC).ctx("write compliance ledger", &self.path)?;
                f.sync_all().ctx("fsync compliance ledger", &self.path)?;
                if let Some(dir) = self.path.parent() {
                    crate::segment::sync_dir(fs, dir)?;
                }
                self.synced = MAGIC.len() as u64;
            } else if self.synced == 0 {
                // First open of an existing ledger: cut a torn tail off.
                let mut bytes = Vec::new();
                f.seek(SeekFrom::Start(0)).ctx("seek compliance ledger", &self.path)?;
                f.read_to_end(&mut bytes).ctx("read compliance ledger", &self.path)?;
                let read = parse(&bytes);
                if read.whole_len < MAGIC.len() as u64 {
                    // Not a ledger at all: keep it aside, start a new one.
                    crate::quarantine::keep_torn_tail(fs, &self.path, &mut f, 0, len)?;
                    f.write_all(MAGIC).ctx("write compliance ledger", &self.path)?;
                    f.sync_all().ctx("fsync compliance ledger", &self.path)?;
                    self.synced = MAGIC.len() as u64;
                } else {
                    if read.torn_bytes > 0 {
                        crate::quarantine::keep_torn_tail(fs, &self.path, &mut f, read.whole_len, len)?;
                    }
                    self.synced = read.whole_len;
                }
            }
            f.set_len(self.synced).ctx("cut compliance ledger", &self.path)?;
            f.seek(SeekFrom::Start(self.synced)).ctx("seek compliance ledger", &self.path)?;
            self.written = 0;
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Closes the file after a failure: the next flush reopens it, cuts it
    /// back to what is durable and writes the rest again.
    fn close(&mut self) {
        self.file = None;
        self.written = 0;
    }

    /// Writes what was pushed (not yet durable).
    pub fn flush(&mut self) -> Result<()> {
        if self.unsynced.is_empty() || (self.file.is_some() && self.written == self.unsynced.len()) {
            return Ok(());
        }
        let r = self.write_out();
        if r.is_err() {
            self.close();
        }
        r
    }

    fn write_out(&mut self) -> Result<()> {
        self.open()?;
        let LedgerWriter { file, unsynced, written, path, .. } = self;
        let f = file.as_mut().expect("opened above");
        f.write_all(&unsynced[*written..]).ctx("write compliance ledger", path.as_path())?;
        *written = unsynced.len();
        Ok(())
    }

    /// Makes everything pushed durable. On failure the file is closed, and
    /// the next flush writes every record since the last good fsync again.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        self.flush()?;
        let path = self.path.clone();
        let synced = match self.file.as_mut() {
            Some(f) => f.sync_data().ctx("fsync compliance ledger", &path),
            None => Ok(()),
        };
        match synced {
            Ok(()) => {
                self.synced += self.unsynced.len() as u64;
                self.unsynced.clear();
                self.written = 0;
                Ok(())
            }
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Event> {
        let at = |time_ms, action| Event { time_ms, action };
        vec![
            at(1, Action::DeletePost { post: u64::MAX, user: 3 }),
            at(-5, Action::Unlike { post: 4, user: 5 }),
            at(2, Action::User { user: 6, family: Family::Delete, hide: true }),
            at(3, Action::User { user: 6, family: Family::Delete, hide: false }),
            at(4, Action::User { user: 7, family: Family::Protect, hide: true }),
            at(5, Action::User { user: 7, family: Family::Protect, hide: false }),
            at(6, Action::User { user: 8, family: Family::Suspend, hide: true }),
            at(7, Action::User { user: 8, family: Family::Suspend, hide: false }),
            at(8, Action::ScrubGeo { user: 9, up_to: 10 }),
            at(9, Action::WithholdPost { post: 11, user: 12, countries: vec!["DE".into(), "FR".into()] }),
            at(10, Action::WithholdUser { user: 13, countries: vec!["TR".into()] }),
            at(11, Action::NotApplied { line_hash: 14, reason: NotApplied::BadCountries }),
        ]
    }

    #[test]
    fn every_action_round_trips_and_a_torn_tail_is_cut_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s").join("compliance.ledger");
        let mut w = LedgerWriter::new(Arc::new(StdFs), path.clone());
        for e in samples() {
            w.push(&e);
        }
        w.sync().unwrap();
        assert_eq!(read(&path).unwrap().unwrap().events, samples());
        // A torn record: half of one more.
        let mut more = Vec::new();
        encode(&samples()[0], &mut more);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&more[..more.len() / 2]).unwrap();
        drop(f);
        let r = read(&path).unwrap().unwrap();
        assert_eq!((r.events.len(), r.torn_bytes), (samples().len(), (more.len() / 2) as u64));
        // A new writer cuts it off (keeping it aside) and appends after the last whole record.
        let mut w = LedgerWriter::new(Arc::new(StdFs), path.clone());
        w.push(&samples()[1]);
        w.sync().unwrap();
        let r = read(&path).unwrap().unwrap();
        assert_eq!(r.torn_bytes, 0);
        assert_eq!(r.events.len(), samples().len() + 1);
        assert_eq!(r.events.last(), Some(&samples()[1]));
        let kept = crate::layout::torn_path(&path, whole);
        assert_eq!(std::fs::read(kept).unwrap(), &more[..more.len() / 2]);
    }

    #[test]
    fn a_damaged_record_ends_the_read() {
        let mut bytes = MAGIC.to_vec();
        for e in samples() {
            encode(&e, &mut bytes);
        }
        let mut first = Vec::new();
        encode(&samples()[0], &mut first);
        let flip = MAGIC.len() + first.len() + 12;
        bytes[flip] ^= 1;
        let r = parse(&bytes);
        assert_eq!(r.events, samples()[..1]);
        assert!(r.torn_bytes > 0);
        assert_eq!(parse(b"not a ledger").events, vec![]);
    }
}
