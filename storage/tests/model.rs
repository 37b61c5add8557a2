//! A model-based test of the store under injected disk faults, crashes,
//! torn tails, bit rot and sealing.
//!
//! The model keeps apart what a commit made durable (`committed`: it must
//! survive everything but bit rot, exactly once) from what was accepted
//! and not yet committed (`pending`: a crash may lose it), and from what a
//! failed commit or a crash may or may not have left on disk (`maybe`).
//! Coverage is recorded, as the archiver does, only with a commit's proof,
//! for the seconds of what that commit made durable. Invariants:
//! - nothing committed is lost or doubled (unless bit rot hit its minute,
//!   and then that minute's coverage is withdrawn);
//! - every second recorded as covered holds every activity committed for
//!   it;
//! - nothing is read back that was never accepted.

use std::collections::{BTreeMap, BTreeSet};

use gapless_storage::io::{Fault, FaultyFs, Op as FsOp, Rule};
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{segment_path, Depth, Outcome, Store, StoreConfig, StreamWriter};
use gapless_storage::{Key, Minute, Snowflake};
use proptest::prelude::*;

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z
const MINUTES: i64 = 3;

#[derive(Debug, Clone)]
enum Op {
    Post {
        ms: i64,
        machine: u16,
        seq: u16,
    },
    Commit,
    Seal {
        minute: i64,
    },
    Fault {
        op: u8,
        fault: u8,
    },
    Heal,
    /// A crash: the process ends with whatever was pending.
    Crash,
    /// A crash in the middle of an append: half a frame at a segment's end.
    Tear {
        minute: i64,
        len: u16,
    },
    /// Bit rot in a segment, found by `verify`.
    Rot {
        minute: i64,
        at: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..MINUTES * 60_000, 0u16..4, 0u16..40).prop_map(|(ms, machine, seq)| Op::Post { ms, machine, seq }),
        4 => Just(Op::Commit),
        1 => (0..MINUTES).prop_map(|minute| Op::Seal { minute }),
        2 => (0u8..6, 0u8..3).prop_map(|(op, fault)| Op::Fault { op, fault }),
        2 => Just(Op::Heal),
        1 => Just(Op::Crash),
        1 => (0..MINUTES, 1u16..200).prop_map(|(minute, len)| Op::Tear { minute, len }),
        1 => (0..MINUTES, any::<u16>()).prop_map(|(minute, at)| Op::Rot { minute, at }),
    ]
}

fn post(id: u64, ms: i64) -> String {
    format!(r#"{{"id_str":"{id}","created_at":"x","user":{{}},"text":"model {id}","timestamp_ms":"{ms}"}}"#)
}

type K = (i64, Key); // (minute, key)
type Records = BTreeMap<K, (i64, String)>;

#[derive(Default)]
struct Model {
    committed: BTreeMap<K, (i64, String)>,
    pending: BTreeMap<K, (i64, String)>,
    maybe: BTreeMap<K, (i64, String)>,
    /// Minutes hit by bit rot: their committed records may be lost.
    rotted: BTreeSet<i64>,
    /// Activities a coverage claim vouched for: committed when their
    /// second was claimed.
    vouched: BTreeMap<K, i64>,
}

impl Model {
    /// A commit succeeded: what was pending is committed. Returns the
    /// seconds a connection could now claim, as the archiver's do: those
    /// with data in this commit whose every activity known to the model is
    /// committed (a second with an activity that may have been lost is
    /// not claimed until it is delivered again).
    /// `stuck`: minutes the store still holds pending after the commit (a
    /// minute that could not be written does not block the others).
    fn commit(&mut self, stuck: &[Minute]) -> BTreeSet<i64> {
        let stuck: BTreeSet<i64> = stuck.iter().map(|m| m.0).collect();
        let (waiting, done): (Records, Records) =
            std::mem::take(&mut self.pending).into_iter().partition(|(k, _)| stuck.contains(&k.0));
        self.pending = waiting;
        let secs: BTreeSet<i64> = done.values().map(|(ms, _)| ms.div_euclid(1000)).collect();
        self.committed.extend(done);
        let mut open: BTreeSet<i64> = self.maybe.values().map(|(ms, _)| ms.div_euclid(1000)).collect();
        open.extend(self.pending.values().map(|(ms, _)| ms.div_euclid(1000)));
        let claimed: BTreeSet<i64> = secs.difference(&open).copied().collect();
        for (k, (ms, _)) in &self.committed {
            if claimed.contains(&ms.div_euclid(1000)) {
                self.vouched.insert(*k, *ms);
            }
        }
        claimed
    }
}

struct Harness {
    dir: tempfile::TempDir,
    fs: FaultyFs,
    store: Option<Store>,
    w: Option<StreamWriter>,
}

impl Harness {
    fn open(&mut self) {
        self.w = None;
        self.store = None;
        self.fs.heal();
        let store = Store::open_with(self.dir.path(), StoreConfig::default(), self.fs.shared()).unwrap();
        store.coverage().set_partitions("s", 1).unwrap();
        let mut w = store.stream("s").unwrap();
        // As the archiver does on start: torn tails and damaged headers are
        // repaired (keeping every verified frame) before anything is read.
        let first = Minute::of_ms(T0 - 60_000);
        w.verify(first..Minute(first.0 + MINUTES + 2), Depth::Structure).unwrap();
        self.w = Some(w);
        self.store = Some(store);
    }

    fn w(&mut self) -> &mut StreamWriter {
        self.w.as_mut().unwrap()
    }

    fn segment(&self, minute: i64) -> std::path::PathBuf {
        segment_path(&self.dir.path().join("streams/s"), Minute::of_ms(T0 + minute * 60_000))
    }
}

fn read_all(root: &std::path::Path) -> Vec<(i64, Key, Vec<u8>)> {
    let mut out = Vec::new();
    for batch in RangeReader::new(root, "s", T0 - 60_000..T0 + (MINUTES + 1) * 60_000) {
        for (e, b) in batch.unwrap().iter() {
            out.push((e.time_ms, e.key, b.to_vec()));
        }
    }
    out
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness { dir: tempfile::tempdir().unwrap(), fs: FaultyFs::new(), store: None, w: None };
    h.open();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Post { ms, machine, seq } => {
                let ms = T0 + ms;
                let id = Snowflake { time_ms: ms, machine, sequence: seq }.to_id();
                let line = post(id, ms);
                let k = (ms.div_euclid(60_000), Key::Post(id));
                let outcome = h.w().ingest(line.as_bytes(), ms);
                let Ok(outcome) = outcome else {
                    // Reading a segment to deduplicate failed (a fault):
                    // nothing was accepted.
                    continue;
                };
                let stored = matches!(outcome, Outcome::Stored { .. });
                if m.committed.contains_key(&k) || m.pending.contains_key(&k) {
                    prop_assert!(!stored, "a known activity was stored again");
                } else if let Some(v) = m.maybe.remove(&k) {
                    // On disk or not: either answer is right, and says which.
                    if stored {
                        m.pending.insert(k, v);
                    } else {
                        m.committed.insert(k, v);
                    }
                } else {
                    prop_assert!(stored || m.rotted.contains(&k.0), "a new activity was dropped: {:?}", outcome);
                    if stored {
                        m.pending.insert(k, (ms, line));
                    }
                }
            }
            Op::Commit => match h.w().commit() {
                Ok((proof, _)) => {
                    let secs = m.commit(&h.w().pending_minutes());
                    let coverage = h.store.as_ref().unwrap().coverage().clone();
                    for s in secs {
                        coverage.cover(&proof, "s", 1, s..s + 1).unwrap();
                    }
                }
                Err(_) => {
                    // Kept pending by the store, and maybe partly on disk.
                }
            },
            Op::Seal { minute } => {
                let minute = Minute::of_ms(T0 + minute * 60_000);
                if h.w().seal(minute).is_ok() {
                    // Sealing commits first.
                    let coverage = h.store.as_ref().unwrap().coverage().clone();
                    let _ = coverage;
                }
                // A seal that failed may have committed or not: the next
                // commit tells. Move nothing.
            }
            Op::Fault { op, fault } => {
                let (op, pattern) = [
                    (FsOp::Write, ".seg"),
                    (FsOp::Fsync, ".seg"),
                    (FsOp::Write, "quarantine"),
                    (FsOp::Rename, ".seg"),
                    (FsOp::SyncDir, "segments"),
                    (FsOp::Read, ".seg"),
                ][op as usize];
                let fault = [Fault::NoSpace, Fault::Io, Fault::ShortWrite][fault as usize];
                h.fs.fail(Rule::always(op, pattern, fault));
            }
            Op::Heal => h.fs.heal(),
            Op::Crash => {
                h.w = None;
                h.store = None;
                m.maybe.append(&mut m.pending);
                h.open();
            }
            Op::Tear { minute, len } => {
                let path = h.segment(minute);
                if path.exists() {
                    h.w = None;
                    h.store = None;
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                    std::io::Write::write_all(
                        &mut f,
                        &b"GLFR\x01half a frame".repeat(len as usize / 16 + 1)[..len as usize],
                    )
                    .unwrap();
                    drop(f);
                    m.maybe.append(&mut m.pending);
                    h.open();
                }
            }
            Op::Rot { minute, at } => {
                let path = h.segment(minute);
                if path.exists() {
                    // Commit what is pending first (or lose it to a crash).
                    h.fs.heal();
                    if h.w().commit().is_ok() {
                        let (proof, _) = h.w().commit().unwrap();
                        let secs = m.commit(&h.w().pending_minutes());
                        let coverage = h.store.as_ref().unwrap().coverage().clone();
                        for s in secs {
                            coverage.cover(&proof, "s", 1, s..s + 1).unwrap();
                        }
                    }
                    let mut bytes = std::fs::read(&path).unwrap();
                    if bytes.len() > 16 {
                        let i = 16 + at as usize % (bytes.len() - 16);
                        bytes[i] ^= 0x10;
                        std::fs::write(&path, bytes).unwrap();
                        let minute = Minute::of_ms(T0 + minute * 60_000);
                        let found = h.w().verify(minute..minute.next(), Depth::Checksums).unwrap();
                        prop_assert_eq!(found.len(), 1, "bit rot is found");
                        m.rotted.insert(minute.0);
                        let lost: Vec<K> = m.committed.keys().filter(|k| k.0 == minute.0).copied().collect();
                        for k in lost {
                            let v = m.committed.remove(&k).unwrap();
                            m.maybe.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    // The disk works again: everything pending is committed.
    h.fs.heal();
    let (proof, _) = h.w().commit().unwrap();
    let secs = m.commit(&h.w().pending_minutes());
    let coverage = h.store.as_ref().unwrap().coverage().clone();
    for s in secs {
        coverage.cover(&proof, "s", 1, s..s + 1).unwrap();
    }
    let got = read_all(h.dir.path());
    let keys: Vec<K> = got.iter().map(|(ms, k, _)| (ms.div_euclid(60_000), *k)).collect();
    let unique: BTreeSet<K> = keys.iter().copied().collect();
    prop_assert_eq!(unique.len(), keys.len(), "nothing is read twice");
    let got_map: BTreeMap<K, Vec<u8>> = got.into_iter().map(|(ms, k, b)| ((ms.div_euclid(60_000), k), b)).collect();
    for (k, (_, line)) in &m.committed {
        prop_assert_eq!(got_map.get(k).map(|b| b.as_slice()), Some(line.as_bytes()), "committed {:?} is there", k);
    }
    for (k, b) in &got_map {
        let known = m.committed.get(k).or(m.maybe.get(k)).map(|(_, l)| l.as_bytes());
        prop_assert_eq!(known, Some(b.as_slice()), "{:?} was accepted, with these bytes", k);
    }
    // Every covered second holds every activity its claim vouched for.
    let covered = coverage.covered_ranges("s", 1, T0 / 1000..T0 / 1000 + MINUTES * 60).unwrap();
    for (k, ms) in &m.vouched {
        let s = ms.div_euclid(1000);
        if covered.iter().any(|r| r.contains(&s)) {
            prop_assert!(got_map.contains_key(k), "second {} is covered but {:?} is missing", s, k);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn nothing_committed_is_lost_or_doubled_and_coverage_never_lies(ops in prop::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}
