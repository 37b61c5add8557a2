//! Sealing in the background (`store::seal`): commits go on while the
//! sealer works, a segment that changed meanwhile is never replaced, a
//! shutdown or crash mid-seal leaves the segment whole and no temporary
//! file, and a sealed minute reads back exactly.

use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gapless_storage::io::{FileHandle, Filesystem, Mode, StdFs};
use gapless_storage::layout::tmp_path;
use gapless_storage::reader::RangeReader;
use gapless_storage::segment::read_headers;
use gapless_storage::store::{segment_path, SealOutcome, Store, StoreConfig, StreamWriter};
use gapless_storage::{Key, Minute, Snowflake};

const T0: i64 = 1_764_000_000_000;

fn post(id: u64, ms: i64, i: usize) -> String {
    format!(
        r#"{{"created_at":"Mon Nov 24 16:00:00 +0000 2025","id":{id},"id_str":"{id}","text":"post number {i} about {}","user":{{"id":{u},"id_str":"{u}","screen_name":"user{u}","followers_count":{i}}},"lang":"en","timestamp_ms":"{ms}"}}"#,
        ["rust", "streams", "coverage", "archives"][i % 4],
        u = 1000 + i % 97
    )
}

fn keys(root: &Path) -> Vec<(i64, Key, Vec<u8>)> {
    RangeReader::new(root, "s", T0..T0 + 600_000)
        .flat_map(|b| b.unwrap().iter().map(|(e, b)| (e.time_ms, e.key, b.to_vec())).collect::<Vec<_>>())
        .collect()
}

/// The real filesystem, where opening a file for reading whose path
/// contains `pattern` waits while the gate is closed.
#[derive(Debug, Clone)]
struct GatedFs {
    pattern: Arc<Mutex<String>>,
    gate: Arc<(Mutex<(bool, usize)>, Condvar)>,
}

impl GatedFs {
    fn new() -> GatedFs {
        GatedFs {
            pattern: Arc::new(Mutex::new(String::new())),
            gate: Arc::new((Mutex::new((false, 0)), Condvar::new())),
        }
    }
    fn close(&self, pattern: &str) {
        *self.pattern.lock().unwrap() = pattern.to_string();
        self.gate.0.lock().unwrap().0 = true;
    }
    fn open_gate(&self) {
        self.gate.0.lock().unwrap().0 = false;
        self.gate.1.notify_all();
    }
    /// Waits (up to a minute) until someone waits at the gate.
    fn wait_for_a_reader(&self) {
        let (m, c) = &*self.gate;
        let (g, timeout) =
            c.wait_timeout_while(m.lock().unwrap(), Duration::from_secs(60), |(_, waiting)| *waiting == 0).unwrap();
        assert!(!timeout.timed_out() || g.1 > 0, "nobody read the gated segment");
    }
}

impl Filesystem for GatedFs {
    fn open(&self, path: &Path, mode: Mode) -> io::Result<Box<dyn FileHandle>> {
        let pattern = self.pattern.lock().unwrap().clone();
        if mode == Mode::Read && !pattern.is_empty() && path.to_string_lossy().ends_with(&pattern) {
            let (m, c) = &*self.gate;
            let mut g = m.lock().unwrap();
            g.1 += 1;
            c.notify_all();
            while g.0 {
                g = c.wait(g).unwrap();
            }
            g.1 -= 1;
        }
        StdFs.open(path, mode)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
}

/// Opens the gate when dropped (a failing test does not hang).
struct Opener(GatedFs);
impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open_gate();
    }
}

/// Writes `n` Posts of `minute` (from `first`), one commit per `per_frame`,
/// in reverse time order; returns them as (time, key, bytes).
fn write_posts(w: &mut StreamWriter, first: usize, n: usize, per_frame: usize) -> Vec<(i64, Key, Vec<u8>)> {
    let mut out = Vec::new();
    for i in (first..first + n).rev() {
        let ms = T0 + (i as i64 * 397) % 60_000;
        let id = Snowflake { time_ms: ms, machine: 3, sequence: i as u16 % 4096 }.to_id();
        let line = post(id, ms, i);
        w.ingest(line.as_bytes(), ms).unwrap();
        out.push((ms, Key::Post(id), line.into_bytes()));
        if i % per_frame == 0 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
    out
}

/// Waits (up to a minute) for the background seals to finish.
fn finished(w: &mut StreamWriter) -> Vec<(Minute, SealOutcome)> {
    let mut out = Vec::new();
    for _ in 0..6000 {
        out.extend(w.finished_seals());
        if w.seals_in_progress() == 0 {
            return out;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the background seal did not finish");
}

/// The sealed minute reads back byte-identical, in (time, key) order, as
/// few frames as its size needs (at the default seal level).
#[test]
fn a_minute_sealed_in_the_background_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    let minute = Minute::of_ms(T0);
    let mut expect = write_posts(&mut w, 0, 300, 40);
    let path = segment_path(w.dir(), minute);
    assert!(read_headers(&path).unwrap().1.len() > 1);
    assert!(w.seal_in_background(minute).unwrap());
    assert!(!w.seal_in_background(minute).unwrap(), "already in progress");
    let done = finished(&mut w);
    assert!(matches!(done.as_slice(), [(m, SealOutcome::Sealed(s))] if *m == minute && s.records == 300), "{done:?}");
    let (_, frames) = read_headers(&path).unwrap();
    assert_eq!(frames.len(), 1);
    assert!(!tmp_path(&path).exists());
    drop(w);
    drop(store);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);
}

/// While the sealer is held reading the minute, commits (to that minute
/// and others) go on; the frame appended meanwhile makes the install
/// refuse, and the segment keeps every record, the appended one byte for
/// byte. Sealed again once quiet, it reads back exactly.
#[test]
fn a_frame_appended_while_sealing_makes_the_install_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let fs = GatedFs::new();
    let _opener = Opener(fs.clone());
    let store = Store::open_with(dir.path(), StoreConfig::default(), Arc::new(fs.clone())).unwrap();
    let mut w = store.stream("s").unwrap();
    let minute = Minute::of_ms(T0);
    let mut expect = write_posts(&mut w, 0, 100, 25);
    let path = segment_path(w.dir(), minute);
    let before = std::fs::read(&path).unwrap();
    fs.close(&path.to_string_lossy());
    assert!(w.seal_in_background(minute).unwrap());
    fs.wait_for_a_reader();
    // The sealer is held: commits go on (this one appends to the minute).
    let late = write_posts(&mut w, 1000, 1, 1);
    expect.extend(late.iter().cloned());
    fs.open_gate();
    let done = finished(&mut w);
    assert!(matches!(done.as_slice(), [(m, SealOutcome::Refused)] if *m == minute), "{done:?}");
    assert!(!tmp_path(&path).exists(), "the refused replacement is removed");
    let after = std::fs::read(&path).unwrap();
    assert!(after.len() > before.len() && after.starts_with(&before), "the segment was not replaced");
    let (_, frames) = read_headers(&path).unwrap();
    assert_eq!(frames.len(), 4 + 1, "the frames written before and during the seal");
    let last = &late[0].2;
    assert!(keys(dir.path()).iter().any(|(_, k, b)| *k == late[0].1 && b == last), "the appended record, exactly");

    // Quiet now: sealed again, everything reads back.
    assert!(w.seal_in_background(minute).unwrap());
    let done = finished(&mut w);
    assert!(matches!(done.as_slice(), [(_, SealOutcome::Sealed(s))] if s.records == 101), "{done:?}");
    drop(w);
    drop(store);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);
}

/// Shutting down mid-seal (the writer dropped while the sealer is held)
/// leaves the segment as it was and no temporary file.
#[test]
fn a_shutdown_mid_seal_leaves_the_segment_whole_and_no_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let fs = GatedFs::new();
    let opener = Opener(fs.clone());
    let store = Store::open_with(dir.path(), StoreConfig::default(), Arc::new(fs.clone())).unwrap();
    let mut w = store.stream("s").unwrap();
    let minute = Minute::of_ms(T0);
    let mut expect = write_posts(&mut w, 0, 100, 25);
    let path = segment_path(w.dir(), minute);
    let before = std::fs::read(&path).unwrap();
    fs.close(&path.to_string_lossy());
    assert!(w.seal_in_background(minute).unwrap());
    fs.wait_for_a_reader();
    // The drop waits for the sealer, which waits for the gate.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(opener);
    });
    drop(w);
    release.join().unwrap();
    assert!(!tmp_path(&path).exists(), "no temporary file after the shutdown");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the segment is as it was");
    drop(store);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);
}

/// A temporary file left by a crash mid-seal (here: half a sealed copy) is
/// removed when the stream is next opened, and the segment is untouched.
#[test]
fn a_crash_mid_seal_leaves_a_tmp_that_the_next_open_removes() {
    let dir = tempfile::tempdir().unwrap();
    let minute = Minute::of_ms(T0);
    let (path, mut expect, before) = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let mut w = store.stream("s").unwrap();
        let expect = write_posts(&mut w, 0, 100, 25);
        let path = segment_path(w.dir(), minute);
        let before = std::fs::read(&path).unwrap();
        (path, expect, before)
    };
    std::fs::write(tmp_path(&path), &before[..before.len() / 2]).unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let w = store.stream("s").unwrap();
    assert!(!tmp_path(&path).exists(), "the stale temporary file is removed on open");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    drop(w);
    drop(store);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);
}

/// A minute whose segment is not open for writing (written by an earlier
/// run) is sealed in the background too, and reads back exactly.
#[test]
fn a_closed_segment_is_sealed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let minute = Minute::of_ms(T0);
    let mut expect = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let mut w = store.stream("s").unwrap();
        write_posts(&mut w, 0, 100, 25)
    };
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    assert!(w.seal_in_background(minute).unwrap());
    let done = finished(&mut w);
    assert!(matches!(done.as_slice(), [(_, SealOutcome::Sealed(s))] if s.records == 100), "{done:?}");
    assert_eq!(read_headers(&segment_path(w.dir(), minute)).unwrap().1.len(), 1);
    drop(w);
    drop(store);
    expect.sort();
    assert_eq!(keys(dir.path()), expect);
}

/// Bulk import writes the sealed layout at a fast level (its one sink
/// thread compresses everything it imports), not at the seal level.
#[test]
fn bulk_import_compresses_at_the_fast_bulk_level() {
    let bulk = StoreConfig::bulk();
    assert_eq!(bulk.level, gapless_storage::store::BULK_LEVEL);
    assert!(bulk.level < StoreConfig::default().seal_level);
    assert_eq!(bulk.frame_raw_bytes, StoreConfig::default().frame_raw_bytes);
}
