//! The compliance ledger as the store writes it: every stored compliance
//! event is in it, whatever the order lines arrive in and whatever the
//! disk does, and never behind the segments.

use gapless_storage::compliance::{self, Action, Event, Family, Policy, Source, Verdict, WithheldMode};
use gapless_storage::io::{Fault, FaultyFs, Op, Rule};
use gapless_storage::layout;
use gapless_storage::reader::RangeReader;
use gapless_storage::store::{Store, StoreConfig};
use gapless_storage::ActivityKind;

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

fn post(id: u64, user: u64, ms: i64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{"id_str":"{user}"}},"text":"secret {id}","timestamp_ms":"{ms}"}}"#
    )
}

fn delete(id: u64, user: u64, ms: i64) -> String {
    format!(
        r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":{user},"user_id_str":"{user}"}},"timestamp_ms":"{ms}"}}}}"#
    )
}

fn user_event(name: &str, user: u64, ms: i64) -> String {
    format!(r#"{{"{name}":{{"id":{user},"id_str":"{user}","timestamp_ms":"{ms}"}}}}"#)
}

/// The compliant view of the stream: every stored record's verdict.
fn compliant(dir: &std::path::Path) -> Vec<String> {
    let loaded = compliance::load(&layout::stream_dir(dir, "s")).unwrap();
    let policy = Policy::of(&loaded.events);
    let mut out = Vec::new();
    for batch in RangeReader::new(dir, "s", T0..T0 + 3_600_000) {
        for (e, b) in batch.unwrap().iter() {
            match policy.verdict(e.kind, e.time_ms, b, WithheldMode::Drop) {
                Verdict::Keep => out.push(String::from_utf8(b.to_vec()).unwrap()),
                Verdict::Rewrite { bytes, .. } => out.push(String::from_utf8(bytes).unwrap()),
                Verdict::Drop(_) => {}
            }
        }
    }
    out.retain(|l| l.contains("secret"));
    out.sort();
    out
}

#[test]
fn a_delete_that_arrives_before_its_post_is_still_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    // The delete (minute 5) first; the Post (minute 0) comes later, as
    // Recovery would bring it, in another commit.
    w.ingest(delete(100, 1, T0 + 300_000).as_bytes(), T0 + 300_000).unwrap();
    w.ingest(user_event("user_suspend", 2, T0 + 300_001).as_bytes(), T0 + 300_000).unwrap();
    w.commit().unwrap();
    for (id, user) in [(100, 1), (101, 1), (102, 2), (103, 3)] {
        w.ingest(post(id, user, T0 + id as i64).as_bytes(), T0 + 400_000).unwrap();
    }
    w.commit().unwrap();
    assert_eq!(compliant(dir.path()), vec![post(101, 1, T0 + 101), post(103, 3, T0 + 103)]);
    let loaded = compliance::load(w.dir()).unwrap();
    assert_eq!(loaded.source, Source::Ledger);
    assert_eq!(
        loaded.events,
        vec![
            Event { time_ms: T0 + 300_000, action: Action::DeletePost { post: 100, user: 1 } },
            Event { time_ms: T0 + 300_001, action: Action::User { user: 2, family: Family::Suspend, hide: true } },
        ]
    );
}

#[test]
fn a_duplicate_event_is_not_written_twice_and_an_undo_brings_posts_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    w.ingest(post(1, 7, T0).as_bytes(), T0).unwrap();
    w.ingest(user_event("user_delete", 7, T0 + 10).as_bytes(), T0).unwrap();
    w.ingest(user_event("user_delete", 7, T0 + 10).as_bytes(), T0).unwrap(); // Backfill's copy
    w.commit().unwrap();
    assert_eq!(compliance::load(w.dir()).unwrap().events.len(), 1);
    assert!(compliant(dir.path()).is_empty());
    w.ingest(user_event("user_undelete", 7, T0 + 20).as_bytes(), T0).unwrap();
    w.commit().unwrap();
    assert_eq!(compliant(dir.path()), vec![post(1, 7, T0)]);
}

/// A failed fsync of the ledger yields no proof, and the events are
/// written again: after the disk heals, the ledger holds every event once
/// more than nothing (repeats are harmless), and never lacks one.
#[test]
fn a_failed_ledger_fsync_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new();
    let store = Store::open_with(dir.path(), StoreConfig::default(), fs.shared()).unwrap();
    let mut w = store.stream("s").unwrap();
    w.ingest(delete(1, 1, T0).as_bytes(), T0).unwrap();
    w.commit().unwrap();
    fs.fail(Rule {
        op: Op::Fsync,
        path_contains: "compliance.ledger".into(),
        skip: 0,
        times: Some(1),
        fault: Fault::Io,
    });
    w.ingest(delete(2, 1, T0 + 1).as_bytes(), T0).unwrap();
    w.ingest(user_event("user_protect", 9, T0 + 2).as_bytes(), T0).unwrap();
    let err = w.commit().expect_err("no proof after a failed ledger fsync");
    assert!(err.to_string().contains("compliance ledger"), "{err}");
    fs.heal();
    w.commit().unwrap();
    drop(w);
    drop(store);
    let events = compliance::load(&layout::stream_dir(dir.path(), "s")).unwrap().events;
    let policy = Policy::of(&events);
    assert!(policy.is_deleted(1) && policy.is_deleted(2));
    assert_eq!(policy.hidden(9), Some(Family::Protect));
    let read = compliance::ledger::read(&layout::ledger_path(&layout::stream_dir(dir.path(), "s"))).unwrap().unwrap();
    assert_eq!(read.torn_bytes, 0);
}

/// An archive without a ledger (written before it existed, or a bucket's
/// union) is read from its segments, with the same result.
#[test]
fn without_a_ledger_the_segments_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("s").unwrap();
    for (id, user) in [(1, 1), (2, 2), (3, 3)] {
        w.ingest(post(id, user, T0 + id as i64).as_bytes(), T0).unwrap();
    }
    w.ingest(delete(1, 1, T0 + 100).as_bytes(), T0).unwrap();
    w.ingest(user_event("user_protect", 2, T0 + 100).as_bytes(), T0).unwrap();
    w.commit().unwrap();
    let with_ledger = compliant(dir.path());
    let ledger = layout::ledger_path(w.dir());
    std::fs::remove_file(&ledger).unwrap();
    let loaded = compliance::load(w.dir()).unwrap();
    assert_eq!(loaded.source, Source::Segments);
    assert_eq!(loaded.events.len(), 2);
    assert_eq!(compliant(dir.path()), with_ledger);
    assert_eq!(with_ledger, vec![post(3, 3, T0 + 3)]);
    let _ = ActivityKind::Post;
}
