//! The archiver's purge pass (`gapless::purge`) and `gapless compliance`'s
//! report, on a real store: deleted content leaves the files once the
//! delay has passed, an undo inside the delay keeps it, and the report
//! says what was applied, what is pending and what was purged for good.

use std::time::{Duration, Instant};

use gapless::compliance::report;
use gapless::purge::{PurgeConfig, Purger};
use gapless_storage::dict::Dictionaries;
use gapless_storage::io::StdFs;
use gapless_storage::reader::for_each_record;
use gapless_storage::store::{segment_path, Store, StoreConfig, StreamWriter};
use gapless_storage::{layout, Minute};

const T0: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z
const DELAY: Duration = Duration::from_secs(3600);

fn post(id: u64, user: u64, ms: i64) -> String {
    format!(
        r#"{{"id_str":"{id}","created_at":"x","user":{{"id_str":"{user}"}},"text":"said by user{user}: {id}","timestamp_ms":"{ms}"}}"#
    )
}

fn user_event(name: &str, user: u64, ms: i64) -> String {
    format!(r#"{{"{name}":{{"id":{user},"id_str":"{user}","timestamp_ms":"{ms}"}}}}"#)
}

fn on_disk(w: &StreamWriter) -> String {
    let mut out = String::new();
    let mut dicts = Dictionaries::new(&layout::dict_dir(w.dir()));
    for m in
        layout::minutes_with_segments(w.dir(), Minute::of_ms(T0 - 3_600_000), Minute::of_ms(T0 + 86_400_000)).unwrap()
    {
        for_each_record(&StdFs, &segment_path(w.dir(), m), &mut dicts, |_, b| {
            out.push_str(std::str::from_utf8(b).unwrap());
            out.push('\n');
        })
        .unwrap();
    }
    out
}

/// Runs the purger at `now_ms` until it has no pass in progress.
fn run_purger(p: &mut Purger, w: &mut StreamWriter, now_ms: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        p.tick(w, now_ms);
        for (m, outcome) in w.finished_seals() {
            assert!(p.owns(m), "only purges run here");
            p.finished(m, outcome, now_ms);
        }
        if !p.busy() {
            return;
        }
        assert!(Instant::now() < deadline, "the purge pass did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn content_is_purged_after_the_delay_and_an_undo_inside_it_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut w = store.stream("decahose").unwrap();
    // Three users' Posts over ten minutes.
    for i in 0..60u64 {
        w.ingest(post(5000 + i, i % 3 + 1, T0 - 600_000 + i as i64 * 10_000).as_bytes(), T0).unwrap();
    }
    // User 1 deleted; user 2 deleted and undeleted inside the delay; one
    // Post of user 3 deleted.
    for e in [
        user_event("user_delete", 1, T0),
        user_event("user_delete", 2, T0),
        user_event("user_undelete", 2, T0 + 60_000),
        format!(
            r#"{{"delete":{{"status":{{"id":5002,"id_str":"5002","user_id":3,"user_id_str":"3"}},"timestamp_ms":"{T0}"}}}}"#
        ),
        r#"{"user_withheld":{"id":3,"withheld_in_countries":"DE","timestamp_ms":"1772366400000"}}"#.to_string(),
    ] {
        w.ingest(e.as_bytes(), T0).unwrap();
    }
    w.commit().unwrap();
    let mut purger = Purger::new(PurgeConfig { after: DELAY, interval: Duration::ZERO }, w.dir().to_path_buf());

    // Inside the delay: nothing purged, two events pending.
    run_purger(&mut purger, &mut w, T0 + 120_000);
    assert!(on_disk(&w).contains("said by user1: 5000"));
    let r = report(dir.path(), None, DELAY, T0 + 120_000).unwrap();
    let s = &r.streams[0];
    assert_eq!((s.pending.events, s.pending.due_now, s.purged.events), (2, 0, 0));
    assert_eq!(s.pending.next_due.as_deref(), Some("2026-03-01T13:00:00Z"));
    assert_eq!((s.applied.deleted_users, s.applied.deleted_posts), (1, 1));
    assert_eq!(s.not_applied.count, 1, "user_withheld without a list of countries");
    assert!(r.text().contains("could not be applied: 1 messages"), "{}", r.text());

    // Past the delay: user 1's Posts and Post 5002 are gone from the
    // files; user 2's (undeleted in time) and the rest of user 3's stay.
    let later = T0 + DELAY.as_millis() as i64;
    run_purger(&mut purger, &mut w, later);
    let disk = on_disk(&w);
    assert!(!disk.contains("said by user1:"), "user 1's text is in no segment");
    assert!(!disk.contains(": 5002\""));
    assert_eq!(disk.matches("said by user2:").count(), 20);
    assert_eq!(disk.matches("said by user3:").count(), 19);
    let r = report(dir.path(), Some("decahose"), DELAY, later).unwrap();
    let s = &r.streams[0];
    assert_eq!((s.pending.events, s.purged.events), (0, 2));
    assert_eq!(s.purged.by_kind.get("user_delete"), Some(&1));
    assert!(s.purged.last_pass.is_some());

    // A Post of user 1 that comes after the purge (late, or by Recovery,
    // never stored before) is removed by the next pass, though no new
    // event is due: it goes over the minutes written since.
    let late = post(9999, 1, T0 + 1_800_000);
    w.ingest(late.as_bytes(), later).unwrap();
    w.commit().unwrap();
    assert!(on_disk(&w).contains("said by user1: 9999"));
    purger.written(Minute::of_ms(T0 + 1_800_000));
    run_purger(&mut purger, &mut w, later + 500);
    assert!(!on_disk(&w).contains("said by user1: 9999"), "the late Post is purged too");

    // User 1 undeleted after the purge: readers would show their Posts
    // again, but they are gone, and the report says so.
    w.ingest(user_event("user_undelete", 1, later + 1000).as_bytes(), later).unwrap();
    w.commit().unwrap();
    run_purger(&mut purger, &mut w, later + 2000);
    let r = report(dir.path(), None, DELAY, later + 2000).unwrap();
    assert_eq!(r.streams[0].undeleted_after_purge, vec!["1".to_string()]);
    assert!(r.text().contains("gone for good): users 1"), "{}", r.text());
    assert_eq!(r.streams[0].evicted_minutes_not_purged, 0);
    // A minute evicted to the bucket is out of the purge's reach: said.
    let evicted = layout::evicted_path(&segment_path(w.dir(), Minute::of_ms(T0 + 7_200_000)));
    std::fs::create_dir_all(evicted.parent().unwrap()).unwrap();
    std::fs::write(&evicted, b"{}").unwrap();
    let r = report(dir.path(), None, DELAY, later + 2000).unwrap();
    assert_eq!(r.streams[0].evicted_minutes_not_purged, 1);
    assert!(r.text().contains("not purged yet: 1 minutes evicted"), "{}", r.text());
    // Once the uploader applied the logged events to them, no longer.
    let log = gapless_storage::compliance::PurgeLog::new(std::sync::Arc::new(StdFs), w.dir()).read().unwrap();
    gapless_storage::compliance::purge::set_bucket_mark(&StdFs, w.dir(), log.events.len() as u64).unwrap();
    let r = report(dir.path(), None, DELAY, later + 2000).unwrap();
    assert_eq!(r.streams[0].evicted_minutes_not_purged, 0);
    assert!(r.streams[0].kept_aside.files.is_empty());
    // A repair's damaged bytes are kept as they were, not purged: said.
    let damaged = layout::damaged_path(&segment_path(w.dir(), Minute::of_ms(T0)));
    std::fs::write(&damaged, b"damaged frame bytes").unwrap();
    let r = report(dir.path(), None, DELAY, later + 2000).unwrap();
    assert_eq!(r.streams[0].kept_aside.files, vec![damaged.display().to_string()]);
    assert!(r.text().contains("1 files kept aside (19 bytes)"), "{}", r.text());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["schema"], "gapless.compliance-report/1");
    assert_eq!(json["streams"][0]["purged"]["events"], 2);
}
