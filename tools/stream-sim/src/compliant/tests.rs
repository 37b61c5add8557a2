//! The policy rule by rule, on what the generator really sends: each test
//! finds a real case in the stream (a delete and its Post, a hide and its
//! undo, a scrub_geo and a geotagged Post, ...) and checks the compliant
//! export's keys and exact bytes.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;
use crate::generator::{snowflake_ms, Activity};
use crate::stream::{StreamKind, StreamSpec};

const FROM: i64 = 1_772_323_200_000; // 2026-03-01T00:00:00Z

fn gen(kind: StreamKind, rate: f64) -> Generator {
    let mut spec = StreamSpec::new(kind, "prod");
    spec.rate = rate;
    Generator::new(11, &spec)
}

fn json(line: &[u8]) -> Value {
    serde_json::from_slice(line).expect("valid JSON")
}

fn id_of(v: &Value) -> u64 {
    v.as_str().map(|s| s.parse().unwrap()).or_else(|| v.as_u64()).expect("an ID")
}

fn query(from_ms: i64, to_ms: i64, ledger: (i64, i64), withheld: Withheld) -> CompliantQuery {
    CompliantQuery { from_ms, to_ms, ledger_from_ms: ledger.0, ledger_to_ms: ledger.1, partition: None, withheld }
}

fn entry(t: &CompliantTruth, key: &Key) -> Option<CompliantEntry> {
    t.entries.iter().find(|e| &e.key == key).cloned()
}

/// Messages of `[from, to)` that have `kind` at the top level.
fn messages_of(g: &Generator, from: i64, to: i64, kind: &str) -> Vec<(Activity, Value)> {
    g.messages(from, to)
        .filter_map(|a| {
            let v = json(&a.line);
            v.get(kind).cloned().map(|e| (a, e))
        })
        .collect()
}

#[test]
fn a_deleted_post_is_gone_and_messages_stay_as_received() {
    let g = gen(StreamKind::Sample10, 100.0);
    let (from, to) = (FROM, FROM + 60_000);
    let raw: Vec<Activity> = g.range(from, to, None).collect();
    let truth = compliant_truth(&g, &CompliantQuery::new(from, to));
    let deleted: HashSet<u64> =
        raw.iter().filter_map(|a| if let Key::Delete(id) = a.key { Some(id) } else { None }).collect();
    let kept: HashSet<&Key> = truth.entries.iter().map(|e| &e.key).collect();
    let mut gone = 0;
    for a in &raw {
        if let Key::Post(id) = a.key {
            if deleted.contains(&id) {
                assert!(!kept.contains(&a.key), "deleted Post {id} exported");
                gone += 1;
            }
        }
    }
    assert!(gone >= 10, "{gone} deleted Posts in the range");
    for e in truth.entries.iter().filter(|e| matches!(e.key, Key::Post(_))) {
        let v = json(&e.line);
        for path in POST_PATHS {
            if let Some(p) = at_path(&v, path) {
                assert!(!deleted.contains(&id_of(&p["id_str"])), "{} involves a deleted Post", e.truth_line());
            }
        }
    }
    let messages: Vec<&Activity> = raw.iter().filter(|a| !matches!(a.key, Key::Post(_))).collect();
    assert_eq!(truth.counts.messages, messages.len() as u64);
    for m in messages {
        assert_eq!(entry(&truth, &m.key).expect("a message is kept").line, m.line);
    }
    let c = truth.counts;
    assert_eq!(c.kept, truth.entries.len() as u64);
    assert_eq!(c.kept + c.deleted + c.unliked + c.withheld_dropped, raw.len() as u64);
    assert!(c.deleted >= gone);
    // In activity-time order, a subsequence of the raw export.
    let order: Vec<&Key> = raw.iter().map(|a| &a.key).filter(|k| kept.contains(k)).collect();
    assert_eq!(order, truth.entries.iter().map(|e| &e.key).collect::<Vec<_>>());
}

#[test]
fn a_user_delete_hides_the_users_posts_and_a_user_undelete_brings_them_back() {
    let g = gen(StreamKind::Sample10, 600.0);
    let msgs: Vec<(Activity, Value)> = g.messages(FROM, FROM + 900_000).map(|a| (a.clone(), json(&a.line))).collect();
    let mut shown = 0;
    // (An undo looks back at most minutes for its user_delete.)
    let undos = msgs.iter().filter(|(a, v)| v.get("user_undelete").is_some() && a.time_ms >= FROM + 600_000);
    for (undo_a, undo) in undos {
        let user = id_of(&undo["user_undelete"]["id_str"]);
        let t1 = undo_a.time_ms;
        let Some((hide_a, _)) = msgs
            .iter()
            .filter(|(a, v)| a.time_ms < t1 && v.get("user_delete").is_some_and(|e| id_of(&e["id_str"]) == user))
            .last()
        else {
            panic!("user_undelete of {user}: no earlier user_delete");
        };
        let t0 = hide_a.time_ms;
        // Nothing else between them names the user.
        let others = msgs
            .iter()
            .filter(|(a, _)| a.time_ms >= t0 && a.time_ms <= t1 && a.key != hide_a.key && a.key != undo_a.key);
        if others.clone().any(|(a, _)| std::str::from_utf8(&a.line).unwrap().contains(&user.to_string())) {
            continue;
        }
        // A Post of the user in the ten minutes before the user_delete.
        let sec0 = t0.div_euclid(1000);
        let Some(p) = (sec0 - 600..sec0).rev().find_map(|s| g.posts_of(s).into_iter().find(|p| g.author_id(p) == user))
        else {
            continue;
        };
        let key = Key::Post(p.id);
        let raw = g.range(p.ms, p.ms + 1, None).find(|a| a.key == key).expect("the Post");
        assert_eq!(id_of(&json(&raw.line)["user"]["id_str"]), user);
        let hidden = compliant_truth(&g, &query(p.ms, p.ms + 1, (t0, t0 + 1), Withheld::Drop));
        assert!(entry(&hidden, &key).is_none(), "Post {} of deleted user {user} exported", p.id);
        assert!(hidden.counts.deleted >= 1);
        let back = compliant_truth(&g, &query(p.ms, p.ms + 1, (t0, t1 + 1), Withheld::Drop));
        assert_eq!(entry(&back, &key).expect("undeleted Post exported").line, raw.line);
        shown += 1;
        if shown == 3 {
            return;
        }
    }
    panic!("only {shown} user_delete / user_undelete pairs with a Post found");
}

#[test]
fn scrub_geo_nulls_geo_of_exactly_that_users_posts_up_to_the_id() {
    let g = gen(StreamKind::Sample10, 600.0);
    let mut shown = 0;
    for (a, s) in messages_of(&g, FROM, FROM + 300_000, "scrub_geo") {
        if shown == 3 {
            break;
        }
        let (user, up_to) = (id_of(&s["user_id_str"]), id_of(&s["up_to_status_id_str"]));
        let sec = snowflake_ms(up_to).div_euclid(1000);
        let raw: Vec<Activity> = g.second(sec);
        let Some(p) = raw.iter().find(|r| r.key == Key::Post(up_to) && json(&r.line)["place"].is_object()) else {
            continue;
        };
        let truth =
            compliant_truth(&g, &query(sec * 1000, sec * 1000 + 1000, (a.time_ms, a.time_ms + 1), Withheld::Drop));
        // The Post: its three values, and nothing else, are null.
        let text = std::str::from_utf8(&p.line).unwrap();
        let i = text.find("\"geo\":{\"type\":\"Point\"").expect("a geotagged Post");
        let j = i + text[i..].find(",\"contributors\":").unwrap();
        let want = format!("{}\"geo\":null,\"coordinates\":null,\"place\":null{}", &text[..i], &text[j..]);
        let got = entry(&truth, &p.key).expect("kept");
        assert_eq!(std::str::from_utf8(&got.line).unwrap(), want);
        assert_eq!(got.fingerprint, Fingerprint::of(want.as_bytes()));
        // Every other record of the second is as received, unless it is the user's up to the ID.
        for r in raw.iter().filter(|r| r.key != p.key) {
            let v = json(&r.line);
            let mine = v["user"]["id_str"].as_str().is_some_and(|u| u.parse::<u64>().unwrap() == user)
                && v["id_str"].as_str().is_some_and(|i| i.parse::<u64>().unwrap() <= up_to);
            if !mine && !matches!(r.key, Key::Delete(_) | Key::Compliance(_)) {
                if let Some(e) = entry(&truth, &r.key) {
                    assert_eq!(e.line, r.line, "{} changed", r.key.truth_line());
                }
            }
        }
        assert!(truth.counts.geo_scrubbed >= 1);
        // One below the ID: the Post is not scrubbed.
        let below = std::str::from_utf8(&a.line).unwrap().replace(&up_to.to_string(), &(up_to - 1).to_string());
        let mut ledger = Ledger::default();
        ledger.add(below.as_bytes());
        assert_eq!(
            ledger.apply(&p.line, Withheld::Drop),
            Outcome::Kept { line: None, withheld_marked: false, geo_scrubbed: false }
        );
        shown += 1;
    }
    assert_eq!(shown, 3, "scrub_geo up to a geotagged Post");
}

#[test]
fn a_withheld_post_is_dropped_or_kept_with_its_countries() {
    let g = gen(StreamKind::Sample10, 600.0);
    let mut shown = 0;
    for (a, w) in messages_of(&g, FROM, FROM + 300_000, "status_withheld").into_iter().take(5) {
        let id = id_of(&w["id"]);
        let ms = snowflake_ms(id);
        let key = Key::Post(id);
        let raw = g.range(ms, ms + 1, None).find(|r| r.key == key).expect("a real Post");
        let ledger = (a.time_ms, a.time_ms + 1);
        let dropped = compliant_truth(&g, &query(ms, ms + 1, ledger, Withheld::Drop));
        assert!(entry(&dropped, &key).is_none());
        assert!(dropped.counts.withheld_dropped >= 1);
        let kept = compliant_truth(&g, &query(ms, ms + 1, ledger, Withheld::Keep));
        let mut cs: Vec<&str> =
            w["withheld_in_countries"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        cs.sort();
        let list = cs.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(",");
        let text = std::str::from_utf8(&raw.line).unwrap();
        let want = format!("{},\"withheld_in_countries\":[{list}]}}", &text[..text.len() - 1]);
        assert_eq!(std::str::from_utf8(&entry(&kept, &key).expect("kept").line).unwrap(), want);
        assert!(kept.counts.withheld_marked >= 1);
        // A user_withheld of the author adds its countries: sorted, once each.
        let author = id_of(&w["user_id"]);
        let mut l = Ledger::default();
        l.add(&a.line);
        l.add(
            format!(
                r#"{{"user_withheld":{{"id":{author},"withheld_in_countries":["TR","{}","AA"],"timestamp_ms":"1"}}}}"#,
                cs[0]
            )
            .as_bytes(),
        );
        let mut all: Vec<&str> = cs.iter().copied().chain(["TR", "AA"]).collect();
        all.sort();
        all.dedup();
        let list = all.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(",");
        let want = format!("{},\"withheld_in_countries\":[{list}]}}", &text[..text.len() - 1]);
        let Outcome::Kept { line: Some(line), withheld_marked: true, .. } = l.apply(&raw.line, Withheld::Keep) else {
            panic!("not marked")
        };
        assert_eq!(std::str::from_utf8(&line).unwrap(), want);
        shown += 1;
    }
    assert_eq!(shown, 5);
    // An existing top-level value is replaced.
    let mut l = Ledger::default();
    l.add(br#"{"status_withheld":{"id":5,"user_id":7,"withheld_in_countries":["FR","DE"],"timestamp_ms":"1"}}"#);
    let post =
        br#"{"id_str":"5","user":{"id_str":"7","withheld_in_countries":[]},"withheld_in_countries":["XX"],"text":"a"}"#;
    let Outcome::Kept { line: Some(line), .. } = l.apply(post, Withheld::Keep) else { panic!("not kept") };
    assert_eq!(line, br#"{"id_str":"5","user":{"id_str":"7","withheld_in_countries":[]},"withheld_in_countries":["DE","FR"],"text":"a"}"#);
}

#[test]
fn an_unlike_removes_its_like() {
    let g = gen(StreamKind::Likes, 20.0);
    let (from, to) = (FROM, FROM + 120_000);
    let raw: Vec<Activity> = g.range(from, to, None).collect();
    let mut unliked_at = HashMap::new();
    for a in &raw {
        if let Key::Unlike { tweet_id, user_id, timestamp_ms } = a.key {
            unliked_at.insert((tweet_id, user_id), timestamp_ms);
        }
    }
    let truth = compliant_truth(&g, &CompliantQuery::new(from, to));
    let kept: HashSet<&Key> = truth.entries.iter().map(|e| &e.key).collect();
    let mut removed = 0;
    for a in raw.iter().filter(|a| matches!(a.key, Key::Like(_))) {
        let v = json(&a.line);
        let pair = (id_of(&v["favorited_status"]["id_str"]), id_of(&v["user"]["id_str"]));
        let gone = unliked_at.get(&pair).is_some_and(|t| *t >= a.time_ms);
        assert_eq!(!kept.contains(&a.key), gone, "{}", a.key.truth_line());
        removed += u64::from(gone);
        // An unlike before the like does not remove it; one at the same time does.
        for (delta, outcome) in [(-1, None), (0, Some(Outcome::Unliked))] {
            let mut l = Ledger::default();
            l.add(
                format!(
                    r#"{{"delete":{{"favorite":{{"tweet_id":{},"user_id":{}}},"timestamp_ms":"{}"}}}}"#,
                    pair.0,
                    pair.1,
                    a.time_ms + delta
                )
                .as_bytes(),
            );
            let want = outcome.unwrap_or(Outcome::Kept { line: None, withheld_marked: false, geo_scrubbed: false });
            assert_eq!(l.apply(&a.line, Withheld::Drop), want);
        }
    }
    assert!(removed >= 5, "{removed}");
    assert_eq!(truth.counts.unliked, removed);
    assert_eq!(truth.counts.deleted, 0);
}

#[test]
fn the_user_state_is_the_latest_event_of_each_family_and_a_hide_wins_a_tie() {
    let ev = |kind: &str, t: i64| format!(r#"{{"{kind}":{{"id":42,"id_str":"42","timestamp_ms":"{t}"}}}}"#);
    let cases: &[(&[(&str, i64)], bool)] = &[
        (&[("user_delete", 5), ("user_undelete", 6)], false),
        (&[("user_delete", 5), ("user_undelete", 5)], true),
        (&[("user_delete", 7), ("user_undelete", 6)], true),
        (&[("user_protect", 5), ("user_unprotect", 6), ("user_suspend", 1)], true),
        (&[("user_suspend", 1), ("user_unsuspend", 2), ("user_protect", 3), ("user_unprotect", 3)], true),
        (&[("user_undelete", 1)], false),
    ];
    for (events, hidden) in cases {
        for reversed in [false, true] {
            let mut l = Ledger::default();
            let mut order: Vec<_> = events.to_vec();
            if reversed {
                order.reverse();
            }
            for (k, t) in order {
                l.add(ev(k, t).as_bytes());
            }
            assert_eq!(l.hidden(42), *hidden, "{events:?}");
        }
    }
}

#[test]
fn one_partition_is_the_whole_export_restricted_to_it() {
    let g = gen(StreamKind::Sample10, 100.0);
    let (from, to) = (FROM, FROM + 30_000);
    let all = compliant_truth(&g, &CompliantQuery::new(from, to));
    let mut q = CompliantQuery::new(from, to);
    q.partition = Some(1);
    let one = compliant_truth(&g, &q);
    let in_one: HashSet<Key> = g.range(from, to, Some(1)).map(|a| a.key).collect();
    let want: Vec<&CompliantEntry> = all.entries.iter().filter(|e| in_one.contains(&e.key)).collect();
    assert!(!one.entries.is_empty() && one.entries.len() < all.entries.len());
    assert_eq!(one.entries.iter().collect::<Vec<_>>(), want);
}

#[test]
fn activity_streams_deletes_leave_their_posts_out() {
    let mut spec = StreamSpec::new(StreamKind::Sample10, "as");
    spec.rate = 100.0;
    spec.format = crate::stream::Format::ActivityStreams;
    let g = Generator::new(11, &spec);
    let (from, to) = (FROM, FROM + 60_000);
    let raw: Vec<Activity> = g.range(from, to, None).collect();
    let truth = compliant_truth(&g, &CompliantQuery::new(from, to));
    let kept: HashSet<&Key> = truth.entries.iter().map(|e| &e.key).collect();
    let deleted: HashSet<u64> =
        raw.iter().filter_map(|a| if let Key::Delete(id) = a.key { Some(id) } else { None }).collect();
    let mut gone = 0;
    for a in &raw {
        if let Key::Post(id) = a.key {
            assert_eq!(json(&a.line)["verb"].as_str().map(|v| v == "post" || v == "share"), Some(true));
            if deleted.contains(&id) {
                assert!(!kept.contains(&a.key), "deleted Post {id} exported");
                gone += 1;
            }
        }
    }
    assert!(gone >= 10, "{gone}");
    assert!(truth.counts.deleted >= gone);
}
