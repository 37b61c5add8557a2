//! The filesystem the store writes through, so that tests can make the
//! disk fail.
//!
//! # Design constraints
//! - Every open, write, fsync, rename, directory fsync, read and remove of
//!   the store's own files (segments, the quarantine, dictionaries, the
//!   system log, `.damaged` and temporary files) goes through one
//!   [`Filesystem`]. The coverage map (sled) does its own I/O and is not
//!   covered; it is written only after the data it covers is durable.
//! - Production uses [`StdFs`]: plain `std::fs`, no cost beyond a virtual
//!   call per operation (operations are per frame, not per record).
//! - Tests use [`FaultyFs`]: the same files on the real disk, and chosen
//!   operations fail (by operation and path pattern, after a countdown,
//!   or at random from a seed) with `ENOSPC`, `EIO` or a short write. A
//!   failed fsync drops what was written since the last good one (the file
//!   is cut back), as Linux may drop dirty pages after a writeback error,
//!   and stays failed for that file.
//!
//! Modelled on Vector's disk buffer v2 `Filesystem` trait.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; created if missing, never truncated.
    ReadWrite,
    /// Write only, appending; created if missing.
    Append,
    /// Write only; created, or truncated if it exists.
    Create,
    /// Write only; created, failing with `AlreadyExists` if it exists.
    CreateNew,
}

/// An open file.
pub trait FileHandle: Read + Write + Seek + Send + fmt::Debug {
    fn sync_data(&mut self) -> io::Result<()>;
    fn sync_all(&mut self) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// What the store does with files and directories.
pub trait Filesystem: Send + Sync + fmt::Debug {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FileHandle>>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Fsyncs a directory, so that creates and renames in it are durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut f = self.open(path, Mode::Read)?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl StdFs {
    /// A shared handle, as the store takes it.
    pub fn shared() -> Arc<dyn Filesystem> {
        Arc::new(StdFs)
    }
}

impl FileHandle for File {
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn sync_all(&mut self) -> io::Result<()> {
        File::sync_all(self)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl Filesystem for StdFs {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FileHandle>> {
        let mut o = OpenOptions::new();
        match mode {
            Mode::Read => o.read(true),
            Mode::ReadWrite => o.read(true).write(true).create(true).truncate(false),
            Mode::Append => o.append(true).create(true),
            Mode::Create => o.write(true).create(true).truncate(true),
            Mode::CreateNew => o.write(true).create_new(true),
        };
        Ok(Box::new(o.open(path)?))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// An operation [`FaultyFs`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Open,
    Read,
    Write,
    Fsync,
    SetLen,
    Rename,
    Remove,
    SyncDir,
    CreateDir,
}

/// How an operation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `ENOSPC`: the disk is full.
    NoSpace,
    /// `EIO`: the device failed.
    Io,
    /// A write that writes only half of its bytes, then fails with
    /// `ENOSPC` (as a disk filling up mid-write does).
    ShortWrite,
}

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::NoSpace | Fault::ShortWrite => io::Error::from_raw_os_error(28), // ENOSPC
            Fault::Io => io::Error::from_raw_os_error(5),                           // EIO
        }
    }
}

/// One rule of a [`FaultyFs`]: operation `op` on a path containing
/// `path_contains` fails with `fault`, after `skip` matching operations
/// succeeded, `times` times (`None`: for ever).
#[derive(Clone, Debug)]
pub struct Rule {
    pub op: Op,
    pub path_contains: String,
    pub skip: u64,
    pub times: Option<u64>,
    pub fault: Fault,
}

impl Rule {
    /// `op` on paths containing `pattern` fails for ever with `fault`.
    pub fn always(op: Op, pattern: &str, fault: Fault) -> Rule {
        Rule { op, path_contains: pattern.to_string(), skip: 0, times: None, fault }
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<(Rule, u64)>,
    /// Random faults: (xorshift state, probability in 1/65536, ops).
    random: Option<(u64, u32, Vec<Op>)>,
    /// Files whose fsync failed: it keeps failing (the kernel may have
    /// dropped their dirty pages).
    poisoned: Vec<PathBuf>,
    injected: u64,
}

/// A [`StdFs`] that fails chosen operations. Cloning shares the rules, so
/// a test keeps a handle to change them while the store runs.
#[derive(Clone, Debug, Default)]
pub struct FaultyFs {
    state: Arc<Mutex<State>>,
}

impl FaultyFs {
    pub fn new() -> FaultyFs {
        FaultyFs::default()
    }

    pub fn shared(&self) -> Arc<dyn Filesystem> {
        Arc::new(self.clone())
    }

    /// Adds a rule.
    pub fn fail(&self, rule: Rule) {
        self.lock().rules.push((rule, 0));
    }

    /// Fails each of `ops` with probability `per_65536`/65536, from a seed
    /// (the same seed fails the same operations of the same run).
    pub fn fail_randomly(&self, seed: u64, per_65536: u32, ops: &[Op]) {
        self.lock().random = Some((seed | 1, per_65536, ops.to_vec()));
    }

    /// Removes every rule and random fault (poisoned files stay poisoned
    /// until [`FaultyFs::heal`]).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.random = None;
    }

    /// Clears everything, poisoned files included: a new disk.
    pub fn heal(&self) {
        *self.lock() = State::default();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault to inject for `op` on `path`, if any.
    fn check(&self, op: Op, path: &Path) -> Option<Fault> {
        let mut s = self.lock();
        let text = path.to_string_lossy();
        if op == Op::Fsync && s.poisoned.iter().any(|p| p == path) {
            s.injected += 1;
            return Some(Fault::Io);
        }
        let mut hit = None;
        for (rule, seen) in s.rules.iter_mut() {
            if rule.op != op || !text.contains(rule.path_contains.as_str()) {
                continue;
            }
            *seen += 1;
            let n = *seen;
            if n > rule.skip && rule.times.is_none_or(|t| n <= rule.skip + t) {
                hit = Some(rule.fault);
                break;
            }
        }
        if hit.is_none() {
            if let Some((x, p, ops)) = s.random.as_mut() {
                if ops.contains(&op) {
                    *x ^= *x << 13;
                    *x ^= *x >> 7;
                    *x ^= *x << 17;
                    if ((*x >> 16) & 0xffff) < u64::from(*p) {
                        hit = Some(if op == Op::Write { Fault::ShortWrite } else { Fault::Io });
                    }
                }
            }
        }
        if hit.is_some() {
            s.injected += 1;
            if op == Op::Fsync {
                s.poisoned.push(path.to_path_buf());
            }
        }
        hit
    }

    fn guard(&self, op: Op, path: &Path) -> io::Result<()> {
        match self.check(op, path) {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }
}

impl Filesystem for FaultyFs {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FileHandle>> {
        self.guard(Op::Open, path)?;
        let inner = StdFs.open(path, mode)?;
        let durable_len = inner.len()?;
        Ok(Box::new(FaultyFile { inner, path: path.to_path_buf(), fs: self.clone(), durable_len }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.guard(Op::CreateDir, path)?;
        StdFs.create_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.guard(Op::Rename, to)?;
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.guard(Op::Remove, path)?;
        StdFs.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.guard(Op::SyncDir, path)?;
        StdFs.sync_dir(path)
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn FileHandle>,
    path: PathBuf,
    fs: FaultyFs,
    /// The length at the last fsync that succeeded (or at open).
    durable_len: u64,
}

impl FaultyFile {
    /// An fsync, failing as Linux's can: the dirty pages are dropped (the
    /// file is cut back to what the last good fsync made durable).
    fn sync_with(&mut self, sync: fn(&mut dyn FileHandle) -> io::Result<()>) -> io::Result<()> {
        if let Some(f) = self.fs.check(Op::Fsync, &self.path) {
            let _ = self.inner.set_len(self.durable_len);
            return Err(f.error());
        }
        sync(self.inner.as_mut())?;
        self.durable_len = self.inner.len()?;
        Ok(())
    }
}

impl Read for FaultyFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fs.guard(Op::Read, &self.path)?;
        self.inner.read(buf)
    }
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.fs.check(Op::Write, &self.path) {
            None => self.inner.write(buf),
            Some(Fault::ShortWrite) if buf.len() > 1 => {
                // Half of it reaches the file; the caller's write_all then
                // fails on the rest.
                let n = self.inner.write(&buf[..buf.len() / 2])?;
                self.fs.lock().rules.push((Rule::always(Op::Write, &self.path.to_string_lossy(), Fault::NoSpace), 0));
                Ok(n)
            }
            Some(f) => Err(f.error()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Seek for FaultyFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl FileHandle for FaultyFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.sync_with(|f| f.sync_data())
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_with(|f| f.sync_all())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.fs.guard(Op::SetLen, &self.path)?;
        self.inner.set_len(len)?;
        self.durable_len = self.durable_len.min(len);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fail_the_chosen_operations_after_their_countdown() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        fs.fail(Rule { op: Op::Fsync, path_contains: ".seg".into(), skip: 1, times: Some(1), fault: Fault::Io });
        let path = dir.path().join("a.seg");
        let mut f = fs.open(&path, Mode::ReadWrite).unwrap();
        f.write_all(b"x").unwrap();
        f.sync_data().unwrap();
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        // A failed fsync is sticky for that file.
        assert!(f.sync_data().is_err());
        let mut other = fs.open(&dir.path().join("b.log"), Mode::ReadWrite).unwrap();
        other.sync_data().unwrap();
        assert_eq!(fs.injected(), 2);
    }

    #[test]
    fn a_short_write_leaves_half_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new();
        fs.fail(Rule { op: Op::Write, path_contains: "q".into(), skip: 0, times: Some(1), fault: Fault::ShortWrite });
        let path = dir.path().join("q");
        let mut f = fs.open(&path, Mode::ReadWrite).unwrap();
        let err = f.write_all(b"0123456789").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        assert_eq!(std::fs::read(&path).unwrap(), b"01234");
    }
}
