//! The rules, one by one, and the ledger written by the ingest path.

use proptest::prelude::*;

use super::*;
use crate::ActivityKind::{self, Like, Post};

const T: i64 = 1_700_000_000_000;

fn post(id: u64, user: u64, extra: &str) -> String {
    format!(
        r#"{{"created_at":"x","id":{id},"id_str":"{id}","text":"hello from {user}","user":{{"id":{user},"id_str":"{user}","name":"n"}}{extra}}}"#
    )
}

fn at(time_ms: i64, action: Action) -> Event {
    Event { time_ms, action }
}

fn user(user: u64, family: Family, hide: bool) -> Action {
    Action::User { user, family, hide }
}

fn verdict(p: &Policy, line: &str) -> Verdict {
    p.verdict(Post, T, line.as_bytes(), WithheldMode::Drop)
}

#[test]
fn a_deleted_post_and_everything_embedding_it_are_left_out() {
    let p = Policy::of(&[at(T, Action::DeletePost { post: 10, user: 1 })]);
    assert_eq!(verdict(&p, &post(10, 1, "")), Verdict::Drop(Reason::DeletedPost));
    let retweet = post(11, 2, &format!(r#","retweeted_status":{}"#, post(10, 1, "")));
    assert_eq!(verdict(&p, &retweet), Verdict::Drop(Reason::DeletedPost));
    let quote = post(12, 3, &format!(r#","quoted_status":{}"#, post(10, 1, "")));
    assert_eq!(verdict(&p, &quote), Verdict::Drop(Reason::DeletedPost));
    assert_eq!(verdict(&p, &post(13, 1, "")), Verdict::Keep);
}

#[test]
fn user_events_hide_until_undone_whatever_the_order() {
    for family in Family::ALL {
        let hide = at(T, user(5, family, true));
        let undo = at(T + 1, user(5, family, false));
        for events in [vec![hide.clone()], vec![hide.clone(), undo.clone()], vec![undo.clone(), hide.clone()]] {
            let p = Policy::of(&events);
            let want = if events.len() == 1 { Verdict::Drop(Reason::HiddenUser(family)) } else { Verdict::Keep };
            assert_eq!(verdict(&p, &post(10, 5, "")), want, "{family:?} {events:?}");
        }
        // A tie: the hiding event wins.
        let p = Policy::of(&[at(T, user(5, family, false)), at(T, user(5, family, true))]);
        assert_eq!(p.hidden(5), Some(family));
        // An undo older than the hiding event does not undo it.
        let p = Policy::of(&[at(T, user(5, family, true)), at(T - 1, user(5, family, false))]);
        assert_eq!(p.hidden(5), Some(family));
    }
}

#[test]
fn an_unlike_removes_the_like_it_names_and_no_later_one() {
    let like = |liker: u64, liked: u64| {
        format!(
            r#"{{"id":"0123456789abcdef0123456789abcdef","timestamp_ms":{T},"favorited_status":{},"user":{{"id":{liker},"id_str":"{liker}"}}}}"#,
            post(liked, 9, "")
        )
    };
    let p = Policy::of(&[at(T, Action::Unlike { post: 20, user: 7 })]);
    let v = |line: &str, time| p.verdict(Like, time, line.as_bytes(), WithheldMode::Drop);
    assert_eq!(v(&like(7, 20), T), Verdict::Drop(Reason::Unliked));
    assert_eq!(v(&like(7, 20), T + 1), Verdict::Keep, "a like after the unlike stays");
    assert_eq!(v(&like(8, 20), T), Verdict::Keep);
    assert_eq!(v(&like(7, 21), T), Verdict::Keep);
}

#[test]
fn scrub_geo_nulls_geo_of_that_users_posts_up_to_the_id_and_nothing_else() {
    let geo = r#","geo":{"type":"Point","coordinates":[1.5,2.5]},"coordinates":{"type":"Point","coordinates":[2.5,1.5]},"place":{"id":"p","name":"Berlin"}"#;
    let p = Policy::of(&[at(T, Action::ScrubGeo { user: 3, up_to: 100 })]);
    let line = post(100, 3, geo);
    let want = post(100, 3, r#","geo":null,"coordinates":null,"place":null"#);
    assert_eq!(verdict(&p, &line), Verdict::Rewrite { bytes: want.into_bytes(), geo_scrubbed: true, withheld: false });
    assert_eq!(verdict(&p, &post(101, 3, geo)), Verdict::Keep, "a later Post keeps its geo");
    assert_eq!(verdict(&p, &post(99, 4, geo)), Verdict::Keep, "another user keeps theirs");
    // Embedded: only the scrubbed user's object changes.
    let retweet =
        post(200, 4, &format!(r#",{}{}"#, &geo[1..], format_args!(r#","retweeted_status":{}"#, post(50, 3, geo))));
    let Verdict::Rewrite { bytes, .. } = verdict(&p, &retweet) else { panic!("not rewritten") };
    let want = post(
        200,
        4,
        &format!(
            r#",{}{}"#,
            &geo[1..],
            format_args!(r#","retweeted_status":{}"#, post(50, 3, r#","geo":null,"coordinates":null,"place":null"#))
        ),
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), want);
}

#[test]
fn withheld_posts_are_dropped_or_marked() {
    let p = Policy::of(&[
        at(T, Action::WithholdPost { post: 30, user: 1, countries: vec!["FR".into(), "DE".into()] }),
        at(T, Action::WithholdUser { user: 1, countries: vec!["TR".into()] }),
    ]);
    assert_eq!(verdict(&p, &post(30, 2, "")), Verdict::Drop(Reason::Withheld));
    let keep = |line: &str| p.verdict(Post, T, line.as_bytes(), WithheldMode::Keep);
    let Verdict::Rewrite { bytes, withheld: true, .. } = keep(&post(31, 1, "")) else { panic!() };
    assert_eq!(String::from_utf8(bytes).unwrap(), post(31, 1, r#","withheld_in_countries":["TR"]"#));
    let Verdict::Rewrite { bytes, .. } = keep(&post(30, 1, r#","withheld_in_countries":[]"#)) else { panic!() };
    assert_eq!(String::from_utf8(bytes).unwrap(), post(30, 1, r#","withheld_in_countries":["DE","FR","TR"]"#));
}

#[test]
fn activity_streams_posts_are_read_by_their_tags() {
    let line = r#"{"id":"tag:search.twitter.com,2005:40","actor":{"id":"id:twitter.com:6","objectType":"person"},"verb":"post","postedTime":"x"}"#;
    let p = Policy::of(&[at(T, Action::DeletePost { post: 40, user: 6 })]);
    assert_eq!(
        p.verdict(ActivityKind::AsActivity, T, line.as_bytes(), WithheldMode::Drop),
        Verdict::Drop(Reason::DeletedPost)
    );
    let p = Policy::of(&[at(T, user(6, Family::Suspend, true))]);
    assert_eq!(
        p.verdict(ActivityKind::AsActivity, T, line.as_bytes(), WithheldMode::Drop),
        Verdict::Drop(Reason::HiddenUser(Family::Suspend))
    );
}

fn arb_event() -> impl Strategy<Value = Event> {
    let u = 1u64..6;
    let action = prop_oneof![
        (u.clone(), u.clone()).prop_map(|(post, user)| Action::DeletePost { post, user }),
        (u.clone(), 0usize..3, any::<bool>()).prop_map(|(user, f, hide)| Action::User {
            user,
            family: Family::ALL[f],
            hide
        }),
        (u.clone(), u.clone()).prop_map(|(user, up_to)| Action::ScrubGeo { user, up_to }),
        (u.clone(), u.clone()).prop_map(|(post, user)| Action::WithholdPost {
            post,
            user,
            countries: vec!["DE".into()]
        }),
    ];
    (T..T + 4, action).prop_map(|(time_ms, action)| Event { time_ms, action })
}

proptest! {
    /// The order events arrive in, and repeats, never change a verdict.
    #[test]
    fn verdicts_do_not_depend_on_order_or_repeats(events in prop::collection::vec(arb_event(), 0..12), seed in any::<u64>()) {
        let mut shuffled = events.clone();
        shuffled.extend(events.iter().take(3).cloned());
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(i as u64 + 7) >> 7) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let (a, b) = (Policy::of(&events), Policy::of(&shuffled));
        let geo = r#","place":{"id":"p"}"#;
        for id in 1..6 {
            for author in 1..6 {
                let line = post(id, author, geo);
                for mode in [WithheldMode::Drop, WithheldMode::Keep] {
                    prop_assert_eq!(a.verdict(Post, T, line.as_bytes(), mode), b.verdict(Post, T, line.as_bytes(), mode));
                }
            }
        }
    }
}
