//! Compliance end to end: the archiver against stream-sim, whose compliance
//! messages name Posts and users the stream really sent (earlier minutes
//! and days), checked against stream-sim's compliant truth, an independent
//! implementation of the same rules.
//!
//! - Under faults and Recovery, the ledger holds exactly the stream's
//!   compliance events, and the compliant view of the archive equals the
//!   compliant truth byte for byte, including a delete that arrived before
//!   its Post (the Post came later, by Recovery).
//! - With a short purge delay: a deleted user's text is in no segment file;
//!   a user undeleted inside the delay keeps their Posts; one undeleted
//!   after the purge is reported as purged; and the purged archive's
//!   compliant view is still the compliant truth.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gapless_storage::activity::{classify, Limits, Line};
use gapless_storage::compliance::{self, Event, Policy, Verdict, WithheldMode};
use gapless_storage::dict::Dictionaries;
use gapless_storage::io::StdFs;
use gapless_storage::reader::{for_each_record, RangeReader};
use gapless_storage::{layout, Minute};
use stream_sim::compliant::{compliant_truth, CompliantQuery, Ledger, Outcome, Withheld};
use stream_sim::{Generator, StreamKind, StreamSpec};

const RATE: f64 = 10.0;
const SPEED: f64 = 200.0;

fn generator(seed: u64) -> Generator {
    generator_of(seed, StreamKind::Sample10)
}

fn generator_of(seed: u64, kind: StreamKind) -> Generator {
    let mut spec = StreamSpec::new(kind, "prod");
    spec.rate = RATE;
    Generator::new(seed, &spec)
}

fn start_ms() -> i64 {
    chrono::DateTime::parse_from_rfc3339(START).unwrap().timestamp_millis()
}

/// The archive's compliance events with a time in `[from_ms, to_ms)`.
fn ledger_events(data: &std::path::Path, from_ms: i64, to_ms: i64) -> Vec<Event> {
    ledger_events_of(data, "decahose", from_ms, to_ms)
}

fn ledger_events_of(data: &std::path::Path, stream: &str, from_ms: i64, to_ms: i64) -> Vec<Event> {
    let loaded = compliance::load(&layout::stream_dir(data, stream)).unwrap();
    assert_eq!(loaded.source, compliance::Source::Ledger);
    loaded.events.into_iter().filter(|e| (from_ms..to_ms).contains(&e.time_ms)).collect()
}

/// The events of stream-sim's compliance messages in `[from_ms, to_ms)`,
/// read as the archive reads a stored line.
fn truth_events(gen: &Generator, from_ms: i64, to_ms: i64) -> HashSet<Event> {
    gen.messages(from_ms, to_ms)
        .filter_map(|a| match classify(&a.line, &Limits::default()) {
            Ok(Line::Activity(act)) => compliance::event_of(act.kind, act.time_ms, &a.line),
            _ => None,
        })
        .collect()
}

/// The compliant view of the archive's `[from_ms, to_ms)` under `policy`:
/// (time, bytes), sorted.
fn compliant_archive(
    data: &std::path::Path,
    from_ms: i64,
    to_ms: i64,
    policy: &Policy,
    mode: WithheldMode,
) -> Vec<(i64, Vec<u8>)> {
    compliant_archive_of(data, "decahose", from_ms, to_ms, policy, mode)
}

fn compliant_archive_of(
    data: &std::path::Path,
    stream: &str,
    from_ms: i64,
    to_ms: i64,
    policy: &Policy,
    mode: WithheldMode,
) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for batch in RangeReader::new(data, stream, from_ms..to_ms) {
        for (e, b) in batch.unwrap().iter() {
            match policy.verdict(e.kind, e.time_ms, b, mode) {
                Verdict::Keep => out.push((e.time_ms, b.to_vec())),
                Verdict::Rewrite { bytes, .. } => out.push((e.time_ms, bytes)),
                Verdict::Drop(_) => {}
            }
        }
    }
    out.sort();
    out
}

fn assert_same(what: &str, got: &[(i64, Vec<u8>)], want: &[(i64, Vec<u8>)]) {
    if got == want {
        return;
    }
    let (g, w): (BTreeSet<_>, BTreeSet<_>) = (got.iter().collect(), want.iter().collect());
    let extra: Vec<String> =
        g.difference(&w).take(3).map(|(t, b)| format!("{t} {}", String::from_utf8_lossy(b))).collect();
    let missing: Vec<String> =
        w.difference(&g).take(3).map(|(t, b)| format!("{t} {}", String::from_utf8_lossy(b))).collect();
    panic!(
        "{what}: the archive's compliant view ({} records) is not the compliant truth ({}): {} extra, e.g. {extra:#?}; {} missing, e.g. {missing:#?}",
        got.len(),
        want.len(),
        g.difference(&w).count(),
        w.difference(&g).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compliant_view_equals_the_compliant_truth_after_faults_and_recovery() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    const SEED: u64 = 61;
    const END: i64 = 16;
    // Realtime withholds minutes 6 and 7 (Recovery brings them), and the
    // connection drops at minute 11 (Backfill).
    let faults = script(&[fault("drop_realtime", "+6m", "2m"), fault("drop", "+11m", "30s")]);
    let h = Arc::new(Harness::launch(Setup::new(SEED, RATE, SPEED).faults(&faults).likes()).await);
    let running = h.archiver().await;
    let admin = running.admin.expect("admin API");
    h.until_minute(END as f64).await;
    until_full(&h, admin, "decahose", 1, END, Duration::from_secs(30)).await;
    until_full(&h, admin, "likes", 1, END, Duration::from_secs(30)).await;
    running.stop().await.unwrap();
    assert!(!log_lines(&["recovery completed"]).is_empty(), "the withheld minutes came by Recovery:\n{}", log_tail(30));

    let (from, to) = (start_ms() + 60_000, start_ms() + END * 60_000);
    let gen = generator(SEED);
    // The ledger holds every compliance event of the range, none other.
    let ledger = ledger_events(&h.data(), from, to);
    let got: HashSet<Event> = ledger.iter().cloned().collect();
    let want = truth_events(&gen, from, to);
    assert!(want.len() > 100, "stream-sim sent {} compliance events", want.len());
    assert_eq!(got.len(), want.len(), "the ledger's events of the range are the stream's");
    assert!(got == want, "the ledger's events of the range are the stream's");

    let policy = Policy::of(&ledger);
    for (mode, withheld) in [(WithheldMode::Drop, Withheld::Drop), (WithheldMode::Keep, Withheld::Keep)] {
        let mut q = CompliantQuery::new(from, to);
        q.withheld = withheld;
        let truth = compliant_truth(&gen, &q);
        assert!(truth.counts.deleted > 20, "compliance left out {} records", truth.counts.deleted);
        let want: Vec<(i64, Vec<u8>)> = {
            let mut v: Vec<_> = truth.entries.iter().map(|e| (e.time_ms, e.line.to_vec())).collect();
            v.sort();
            v
        };
        assert_same(&format!("withheld {withheld}"), &compliant_archive(&h.data(), from, to, &policy, mode), &want);
    }

    // The Likes stream (no faults: it has no Recovery): unlikes remove the
    // likes they name.
    let likes = generator_of(SEED, StreamKind::Likes);
    let ledger_likes = ledger_events_of(&h.data(), "likes", from, to);
    let got: HashSet<Event> = ledger_likes.iter().cloned().collect();
    assert!(got == truth_events(&likes, from, to), "the likes ledger's events of the range are the stream's");
    let truth = compliant_truth(&likes, &CompliantQuery::new(from, to));
    assert!(truth.counts.unliked > 0, "no like of the range was unliked in it");
    let mut want: Vec<(i64, Vec<u8>)> = truth.entries.iter().map(|e| (e.time_ms, e.line.to_vec())).collect();
    want.sort();
    let got = compliant_archive_of(&h.data(), "likes", from, to, &Policy::of(&ledger_likes), WithheldMode::Drop);
    assert_same("likes", &got, &want);

    // Deletes that arrived before their Post: the Post's minute was
    // withheld from realtime (6..8) and came by Recovery after the hole
    // was seen; its delete, at minute 8 or later, came by realtime.
    let (w0, w1) = (start_ms() + 6 * 60_000, start_ms() + 8 * 60_000);
    let early: Vec<u64> = ledger
        .iter()
        .filter_map(|e| match e.action {
            compliance::Action::DeletePost { post, .. } if e.time_ms >= w1 => Some(post),
            _ => None,
        })
        .filter(|post| gen.range(w0, w1, None).any(|a| a.key == stream_sim::Key::Post(*post)))
        .collect();
    assert!(!early.is_empty(), "no delete named a Post of the withheld minutes");
    let raw: HashSet<u64> = RangeReader::new(&h.data(), "decahose", w0..w1)
        .flat_map(|b| {
            b.unwrap()
                .iter()
                .filter_map(|(e, _)| match e.key {
                    gapless_storage::Key::Post(id) => Some(id),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for post in &early {
        assert!(raw.contains(post), "Post {post} is in the archive (it came by Recovery)");
    }
}

/// Users deleted by `user_delete` in `[from_ms, to_ms)`, each with when,
/// and when (if ever, in the range) an undelete followed.
fn user_deletes(gen: &Generator, from_ms: i64, to_ms: i64) -> Vec<(u64, i64, Option<i64>)> {
    let events = truth_events(gen, from_ms, to_ms);
    let mut out = Vec::new();
    for e in &events {
        if let compliance::Action::User { user, family: compliance::Family::Delete, hide: true } = e.action {
            let undo = events
                .iter()
                .filter_map(|u| match u.action {
                    compliance::Action::User { user: v, family: compliance::Family::Delete, hide: false }
                        if v == user && u.time_ms > e.time_ms =>
                    {
                        Some(u.time_ms)
                    }
                    _ => None,
                })
                .min();
            out.push((user, e.time_ms, undo));
        }
    }
    out.sort();
    out
}

/// The text of every Post of `user` in the truth of `[from_ms, to_ms)`,
/// as its line holds it (the JSON string, quotes and escapes included), so
/// that a search of the stored bytes finds it wherever it was copied.
fn texts_of(gen: &Generator, user: u64, from_ms: i64, to_ms: i64) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        text: Box<serde_json::value::RawValue>,
        user: Option<serde_json::Value>,
    }
    gen.range(from_ms, to_ms, None)
        .filter_map(|a| {
            let r: Raw = serde_json::from_slice(&a.line).ok()?;
            (r.user?["id_str"].as_str()? == user.to_string()).then(|| r.text.get().to_string())
        })
        .filter(|t| t.len() > 20)
        .collect()
}

/// Every record's bytes in the stream's segment files, decompressed.
fn segment_text(data: &std::path::Path) -> String {
    let dir = layout::stream_dir(data, "decahose");
    let mut dicts = Dictionaries::new(&layout::dict_dir(&dir));
    let mut out = String::new();
    for m in layout::minutes_with_segments(&dir, Minute(0), Minute::of_ms(i64::MAX / 4)).unwrap() {
        for_each_record(&StdFs, &layout::segment_path(&dir, m), &mut dicts, |_, b| {
            out.push_str(&String::from_utf8_lossy(b));
            out.push('\n');
        })
        .unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_users_are_purged_after_the_delay_and_an_undo_inside_it_keeps_them() {
    let _g = serial().await;
    capture_logs();
    clear_logs();
    const END: i64 = 24;
    const DELAY_MIN: i64 = 5;
    let delay = DELAY_MIN * 60_000;
    let (from, to) = (start_ms() + 60_000, start_ms() + END * 60_000);
    // A seed whose stream, in minutes 1..END, deletes a user who posts
    // there and is not undeleted (purged), and deletes and undeletes one
    // inside the delay (kept). Deterministic: the same seed every run.
    let mut chosen = None;
    for seed in 300..340u64 {
        let gen = generator(seed);
        let dels = user_deletes(&gen, from, to);
        let purged = dels.iter().find(|(u, t, undo)| {
            undo.is_none() && *t + delay + 120_000 < to && !texts_of(&gen, *u, from, to).is_empty()
        });
        let kept = dels.iter().find(|(u, t, undo)| {
            // Stored well before the delete is due: a pass reads the ledger
            // as last committed (every 0.5 s wall: 100 s of stream time).
            undo.is_some_and(|x| x - t < delay - 150_000) && !texts_of(&gen, *u, from, to).is_empty()
        });
        if let (Some(p), Some(k)) = (purged, kept) {
            chosen = Some((seed, p.0, k.0));
            break;
        }
    }
    let (seed, purged_user, kept_user) = chosen.expect("a seed with both cases in 300..340");
    let gen = generator(seed);

    let mut setup = Setup::new(seed, RATE, SPEED);
    setup.admin = true;
    let mut h = Harness::launch(setup).await;
    h.config_text.push_str("\n[compliance]\npurge_after = \"5m\"\npurge_interval = \"100ms\"\n");
    let running = h.archiver().await;
    let admin = running.admin.expect("admin API");
    h.until_minute(END as f64).await;
    until_full(&h, admin, "decahose", 1, END, Duration::from_secs(30)).await;
    // Every event of the range that purge takes is in the purge log: a
    // pass that started after they were all due has finished. (The stream
    // goes on meanwhile, and passes with it.)
    h.until_minute((END + DELAY_MIN + 1) as f64).await;
    let data = h.data();
    let stream_dir = layout::stream_dir(&data, "decahose");
    let log = compliance::PurgeLog::new(Arc::new(StdFs), &stream_dir);
    wait_for("a purge pass over every due event of the range", Duration::from_secs(90), || {
        let all = compliance::load(&stream_dir).unwrap().events;
        let in_range: Vec<Event> = all.iter().filter(|e| (from..to).contains(&e.time_ms)).cloned().collect();
        let due = compliance::purge::due(&in_range, &Policy::of(&all), &HashSet::new(), i64::MAX / 2, 0);
        let done: HashSet<Event> = log.read().unwrap().events.into_iter().collect();
        !due.is_empty() && due.iter().all(|e| done.contains(e))
    })
    .await;
    let clock = h.clock();
    let stop_ms = clock.now_ms();
    running.stop().await.unwrap();
    assert!(!log_lines(&["compliance purge: a pass finished"]).is_empty());

    // The purged user's text is in no segment file; the kept user's is.
    let disk = segment_text(&data);
    let gone = texts_of(&gen, purged_user, from, to);
    for t in &gone {
        assert!(!disk.contains(t.as_str()), "user {purged_user}'s text is still on disk: {t:?}");
    }
    let kept = texts_of(&gen, kept_user, from, to);
    assert!(kept.iter().any(|t| disk.contains(t.as_str())), "user {kept_user}, undeleted in time, keeps their Posts");

    // The purged archive's compliant view is the compliant truth of the
    // range's events and every event purged (later ones too: a purge of a
    // later user_delete took their Posts of the range), users undeleted
    // after their purge hidden (they are gone for good, and the report
    // says so).
    let report = gapless::compliance::report(&data, None, Duration::from_millis(delay as u64), stop_ms).unwrap();
    let s = &report.streams[0];
    let purged: HashSet<Event> = log.read().unwrap().events.into_iter().collect();
    let mut truth_ledger = Ledger::of(&gen, from, to);
    for a in gen.messages(start_ms() - 600_000, stop_ms + 60_000) {
        if (from..to).contains(&a.time_ms) {
            continue;
        }
        if let Ok(Line::Activity(act)) = classify(&a.line, &Limits::default()) {
            if compliance::event_of(act.kind, act.time_ms, &a.line).is_some_and(|e| purged.contains(&e)) {
                truth_ledger.add(&a.line);
            }
        }
    }
    for u in &s.undeleted_after_purge {
        truth_ledger
            .add(format!(r#"{{"user_delete":{{"id_str":"{u}","timestamp_ms":"{}"}}}}"#, i64::MAX / 2).as_bytes());
    }
    let mut want: Vec<(i64, Vec<u8>)> = gen
        .range(from, to, None)
        .filter_map(|a| match truth_ledger.apply(&a.line, Withheld::Drop) {
            Outcome::Message => Some((a.time_ms, a.line.to_vec())),
            Outcome::Kept { line, .. } => Some((a.time_ms, line.unwrap_or_else(|| a.line.to_vec()))),
            _ => None,
        })
        .collect();
    want.sort();
    let mut events = ledger_events(&data, from, to);
    events.extend(purged.iter().cloned());
    let got = compliant_archive(&data, from, to, &Policy::of(&events), WithheldMode::Drop);
    assert_same("after the purge", &got, &want);
    for u in &s.undeleted_after_purge {
        let u: u64 = u.parse().unwrap();
        for t in texts_of(&gen, u, from, to) {
            assert!(!disk.contains(t.as_str()), "user {u}, undeleted after the purge, stays purged");
        }
    }
    // Recovery does not bring purged Posts back: a minute holding Posts of
    // the purged user is damaged, repaired (its coverage withdrawn) and
    // recovered by an archiver that purges nothing, so that only the ID
    // index (the purged keys beside the segment) can keep them out.
    let minute = gen
        .range(from, to, None)
        .find(|a| {
            serde_json::from_slice::<serde_json::Value>(&a.line)
                .is_ok_and(|v| v["user"]["id_str"].as_str() == Some(purged_user.to_string().as_str()))
        })
        .map(|a| Minute::of_ms(a.time_ms))
        .unwrap();
    let path = layout::segment_path(&stream_dir, minute);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 50;
    bytes[at] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(gapless::verify::verify(&data, Some("decahose")).unwrap().exit_code(), 1, "the damage is repaired");
    h.config_text = h.config_text.replace("purge_after = \"5m\"", "purge = false");
    clear_logs();
    let running = h.archiver().await;
    let admin = running.admin.expect("admin API");
    until_full(&h, admin, "decahose", 1, END, Duration::from_secs(60)).await;
    running.stop().await.unwrap();
    assert!(!log_lines(&["recovery completed"]).is_empty(), "the minute came back by Recovery:\n{}", log_tail(30));
    assert!(log_lines(&["compliance purge: a pass"]).is_empty(), "this archiver purges nothing");
    let disk = segment_text(&data);
    for t in &gone {
        assert!(!disk.contains(t.as_str()), "Recovery brought user {purged_user}'s Post back: {t:?}");
    }

    eprintln!(
        "seed {seed}: purged user {purged_user} ({} Posts), kept user {kept_user} ({} Posts); report: {} purged, undeleted after purge {:?}",
        gone.len(),
        kept.len(),
        s.purged.events,
        s.undeleted_after_purge
    );
}
