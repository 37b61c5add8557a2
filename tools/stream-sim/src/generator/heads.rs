//! Heads: what an activity is and what a compliance message names, decided
//! without writing any payload.
//!
//! The *head* of an activity is what its first draws decide: its class
//! (Post, like, Post delete, unlike, other compliance), and for a Post its ID
//! and author, for a like the liked Post and the liker. Heads are cheap (a
//! few draws of the activity's own random stream), so a compliance message
//! can name something real that the stream sent earlier by computing the
//! heads of an earlier second, and the generator stays stateless:
//!
//! - A **Post delete** names a real Post of an earlier second, seconds to
//!   minutes or half an hour to two days earlier ([`DELETE_AGES_S`]), and its
//!   author. No Post is deleted twice: the `k`-th delete of second `s`, at
//!   age index `a`, takes slot `a + |ages|·k` of the target second
//!   `s − age`, and a slot maps to a Post by a rotation fixed per target
//!   second (distinct slots, distinct Posts). A slot past the second's Posts
//!   finds nothing.
//! - An **unlike** names a real earlier like the same way
//!   ([`UNLIKE_AGES_S`]): its `favorited_status` ID and its liker.
//! - `status_withheld` names a real earlier Post and its author;
//!   `user_withheld`, `scrub_geo` and the hiding user events (`user_delete`,
//!   `user_protect`, `user_suspend`) the author of one (so users who post,
//!   heavy posters more often), at the same ages as deletes. `scrub_geo`
//!   prefers a geotagged Post and scrubs up to its ID or a later one.
//! - An **undo** (`user_undelete`, `user_unprotect`, `user_unsuspend`)
//!   looks back from a few seconds to minutes earlier, second by second
//!   (within [`UNDO_SCAN_ACTIVITIES`] activities' heads), for a hiding event
//!   of its family, and names that user.
//!
//! A message that finds nothing to name (a slot past the target's Posts, an
//! empty second at a very low rate, no hiding event within the scan) becomes
//! the stream's ordinary activity instead (a Post; a like on Likes), so
//! every message names something real. Searches look only at activities
//! whose *class* (their first draw) is Post or like, so they never recurse
//! beyond one level (an undo resolves the hiding event it finds, which only
//! looks for a Post). The heads of a second are computed once per generated
//! second ([`HeadCache`]), so a Firehose second, whose hundred deletes name
//! Posts of 16 seconds, costs 16 seconds' heads, not a hundred.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::Generator;
use crate::payload::{draw_liked, geo_tagged, user_index, Compliance, Liked, UserEvent};
use crate::rng::{hash_words, Rng};
use crate::snowflake::snowflake;
use crate::stream::StreamKind;

/// Share of Post deletes on a stream of Posts.
pub(super) const DELETE_SHARE: f64 = 0.02;
/// Share of the other compliance messages (nine kinds, equally likely).
pub(super) const COMPLIANCE_SHARE: f64 = 0.003;
/// Share of unlikes on the Likes stream.
pub(super) const UNLIKE_SHARE: f64 = 0.05;

/// Ages (seconds) at which a Post delete names a Post: half from seconds to
/// minutes, half from half an hour to two days.
pub const DELETE_AGES_S: [i64; 16] =
    [2, 5, 10, 20, 45, 90, 180, 420, 1_800, 3_600, 10_800, 21_600, 43_200, 72_000, 108_000, 158_400];
/// Ages (seconds) at which an unlike names a like.
pub const UNLIKE_AGES_S: [i64; 8] = [2, 5, 10, 20, 45, 90, 180, 420];
/// An undo scans at most this many activities' heads for its hiding event.
pub const UNDO_SCAN_ACTIVITIES: u64 = 16_384;
/// ... and at most this many seconds.
const UNDO_SCAN_SECONDS: i64 = 3_600;

/// Heads of earlier seconds, computed once per generated second: the
/// messages of a second name activities of few distinct seconds (one per
/// age), so on a Firehose the heads of each are computed once, not once per
/// message. Pure memoization: it never changes what is generated.
#[derive(Default)]
pub(super) struct HeadCache {
    posts: RefCell<HashMap<i64, Rc<Vec<PostHead>>>>,
    likes: RefCell<HashMap<i64, Rc<Vec<LikeHead>>>>,
}

impl HeadCache {
    fn posts(&self, g: &Generator, sec: i64) -> Rc<Vec<PostHead>> {
        self.posts.borrow_mut().entry(sec).or_insert_with(|| Rc::new(g.posts_of(sec))).clone()
    }

    fn likes(&self, g: &Generator, sec: i64) -> Rc<Vec<LikeHead>> {
        self.likes.borrow_mut().entry(sec).or_insert_with(|| Rc::new(g.likes_of(sec))).clone()
    }
}

/// What an activity is, by its first draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Post,
    Delete,
    Compliance,
    Like,
    Unlike,
}

/// The head of a Post: its ID and author.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PostHead {
    pub ms: i64,
    pub id: u64,
    pub author_idx: u64,
}

/// The head of a like: its ID, what it likes and who.
#[derive(Clone, Copy, Debug)]
pub(super) struct LikeHead {
    pub id: u128,
    pub liked: Liked,
}

/// The nine kinds of compliance messages other than a Post delete, as drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ScrubGeo,
    StatusWithheld,
    UserWithheld,
    User(UserEvent),
}

const KINDS: [Kind; 9] = [
    Kind::ScrubGeo,
    Kind::StatusWithheld,
    Kind::UserWithheld,
    Kind::User(UserEvent::Protect),
    Kind::User(UserEvent::Delete),
    Kind::User(UserEvent::Suspend),
    Kind::User(UserEvent::Unprotect),
    Kind::User(UserEvent::Undelete),
    Kind::User(UserEvent::Unsuspend),
];

/// A Post's head: the draws right after its class.
pub(super) fn post_head(r: &mut Rng, ms: i64, seq: u64) -> PostHead {
    let id = snowflake(ms, r.below(1024), seq);
    let author_idx = user_index(r);
    PostHead { ms, id, author_idx }
}

/// A like's head: the draws right after its class.
pub(super) fn like_head(r: &mut Rng, ms: i64) -> LikeHead {
    let id = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
    LikeHead { id, liked: draw_liked(r, ms) }
}

impl Generator {
    /// The class of an activity whose first draw is `roll`.
    pub(super) fn class(&self, roll: f64) -> Class {
        if self.kind == StreamKind::Likes {
            if roll < UNLIKE_SHARE {
                Class::Unlike
            } else {
                Class::Like
            }
        } else if roll < DELETE_SHARE {
            Class::Delete
        } else if roll < DELETE_SHARE + COMPLIANCE_SHARE {
            Class::Compliance
        } else {
            Class::Post
        }
    }

    /// The heads of the Posts (by class) of second `sec`, in activity order.
    pub(crate) fn posts_of(&self, sec: i64) -> Vec<PostHead> {
        let mut pend = self.pending(sec);
        pend.retain(|p| self.class(p.roll) == Class::Post);
        pend.iter_mut().map(|p| post_head(&mut p.rng, p.ms, p.seq)).collect()
    }

    /// The user ID of a Post's author.
    #[cfg(test)]
    pub(crate) fn author_id(&self, p: &PostHead) -> u64 {
        self.payload.user_id(p.author_idx)
    }

    /// The heads of the likes (by class) of second `sec`, in activity order.
    pub(super) fn likes_of(&self, sec: i64) -> Vec<LikeHead> {
        let mut pend = self.pending(sec);
        pend.retain(|p| self.class(p.roll) == Class::Like);
        pend.iter_mut().map(|p| like_head(&mut p.rng, p.ms)).collect()
    }

    /// Slot `slot` of `items` (of second `t`): item `(slot + rotation(t)) mod
    /// len`, or nothing when the slot is past the items.
    fn slot_pick<T: Copy>(&self, items: &[T], t: i64, slot: usize, salt: u64) -> Option<T> {
        if slot >= items.len() {
            return None;
        }
        let rot = hash_words(&[self.seed, self.stream_word, t as u64, salt]) as usize % items.len();
        Some(items[(slot + rot) % items.len()])
    }

    /// The Post that the `k`-th Post delete of its second names: (status ID,
    /// author's user ID).
    pub(super) fn delete_head(&self, r: &mut Rng, ms: i64, k: u64, cache: &HeadCache) -> Option<(u64, u64)> {
        let a = r.below(DELETE_AGES_S.len() as u64) as usize;
        let t = ms.div_euclid(1000) - DELETE_AGES_S[a];
        let slot = a + DELETE_AGES_S.len() * k as usize;
        if slot as u64 >= self.count_in_second(t) {
            return None;
        }
        let p = self.slot_pick(&cache.posts(self, t), t, slot, 0xDE1E7E)?;
        Some((p.id, self.payload.user_id(p.author_idx)))
    }

    /// The like that the `k`-th unlike of its second names: (liked Post ID,
    /// liker's user ID).
    pub(super) fn unlike_head(&self, r: &mut Rng, ms: i64, k: u64, cache: &HeadCache) -> Option<(u64, u64)> {
        let a = r.below(UNLIKE_AGES_S.len() as u64) as usize;
        let t = ms.div_euclid(1000) - UNLIKE_AGES_S[a];
        let slot = a + UNLIKE_AGES_S.len() * k as usize;
        if slot as u64 >= self.count_in_second(t) {
            return None;
        }
        let l = self.slot_pick(&cache.likes(self, t), t, slot, 0x0F1E)?;
        Some((l.liked.liked_id, self.payload.user_id(l.liked.liker_idx)))
    }

    /// A real Post of an earlier second (at one of [`DELETE_AGES_S`] before
    /// `ms`, so that the seconds' heads are shared with the deletes),
    /// geotagged if `prefer_geo` and the second has one; up to 7 seconds
    /// further back when a second has no Post.
    fn find_post(&self, r: &mut Rng, ms: i64, prefer_geo: bool, cache: &HeadCache) -> Option<PostHead> {
        let age = DELETE_AGES_S[r.below(DELETE_AGES_S.len() as u64) as usize];
        let pick = r.next_u64();
        let start = ms.div_euclid(1000) - age;
        for t in (start - 7..=start).rev() {
            let posts = cache.posts(self, t);
            if posts.is_empty() {
                continue;
            }
            if prefer_geo {
                let geo: Vec<&PostHead> = posts.iter().filter(|p| geo_tagged(self.seed, p.id)).collect();
                if !geo.is_empty() {
                    return Some(*geo[(pick % geo.len() as u64) as usize]);
                }
            }
            return Some(posts[(pick % posts.len() as u64) as usize]);
        }
        None
    }

    /// A compliance message other than a Post delete: its kind, then what it
    /// names.
    pub(super) fn compliance_head(&self, r: &mut Rng, ms: i64, cache: &HeadCache) -> Option<Compliance> {
        let kind = KINDS[r.below(KINDS.len() as u64) as usize];
        self.resolve(kind, r, ms, cache)
    }

    fn resolve(&self, kind: Kind, r: &mut Rng, ms: i64, cache: &HeadCache) -> Option<Compliance> {
        let uid = |p: &PostHead| self.payload.user_id(p.author_idx);
        Some(match kind {
            Kind::ScrubGeo => {
                let p = self.find_post(r, ms, true, cache)?;
                let later_ms = p.ms + r.below((ms - p.ms).max(1) as u64) as i64;
                let later = snowflake(later_ms, r.below(1024), r.below(4096));
                let up_to = if r.chance(0.5) { p.id } else { later.max(p.id) };
                Compliance::ScrubGeo { user_id: uid(&p), up_to }
            }
            Kind::StatusWithheld => {
                let p = self.find_post(r, ms, false, cache)?;
                Compliance::StatusWithheld { status_id: p.id, user_id: uid(&p) }
            }
            Kind::UserWithheld => Compliance::UserWithheld { user_id: uid(&self.find_post(r, ms, false, cache)?) },
            Kind::User(event) => match event.undoes() {
                None => Compliance::User { event, user_id: uid(&self.find_post(r, ms, false, cache)?) },
                Some(hide) => Compliance::User { event, user_id: self.find_hidden(r, ms, hide, cache)? },
            },
        })
    }

    /// The user of a `hide` event found looking back from 1 s to 5 min
    /// before `ms`, latest first.
    fn find_hidden(&self, r: &mut Rng, ms: i64, hide: UserEvent, cache: &HeadCache) -> Option<u64> {
        let start = ms.div_euclid(1000) - r.range(1, 300) as i64;
        let mut examined = 0;
        for t in (start - UNDO_SCAN_SECONDS..=start).rev() {
            let n = self.count_in_second(t);
            for i in (0..n).rev() {
                let (hide_ms, roll, mut rng) = self.first_draws(t, i);
                if self.class(roll) != Class::Compliance {
                    continue;
                }
                let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
                if kind == Kind::User(hide) {
                    if let Some(Compliance::User { user_id, .. }) = self.resolve(kind, &mut rng, hide_ms, cache) {
                        return Some(user_id);
                    }
                }
            }
            examined += n;
            if examined >= UNDO_SCAN_ACTIVITIES {
                break;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use serde_json::Value;

    use super::*;
    use crate::generator::{snowflake_ms, Activity, Key};
    use crate::stream::StreamSpec;

    const FROM: i64 = 1_772_323_200_000; // 2026-03-01T00:00:00Z

    fn gen(kind: StreamKind) -> Generator {
        Generator::new(11, &StreamSpec::new(kind, "prod"))
    }

    fn json(a: &Activity) -> Value {
        serde_json::from_slice(&a.line).expect("valid JSON")
    }

    /// The top-level key of a message (`delete` split into Post deletes and
    /// unlikes).
    fn message_kind(v: &Value) -> String {
        let k = v.as_object().and_then(|o| o.keys().next()).cloned().unwrap_or_default();
        match (k.as_str(), v["delete"].get("favorite")) {
            ("delete", Some(_)) => "unlike".into(),
            ("delete", None) => "post delete".into(),
            _ => k,
        }
    }

    fn id_of(v: &Value) -> u64 {
        v.as_str().map(|s| s.parse().unwrap()).or_else(|| v.as_u64()).expect("an ID")
    }

    /// The Post `id` as the stream sent it, regenerated from its second.
    fn regenerate_post(g: &Generator, id: u64) -> Option<Value> {
        let sec = snowflake_ms(id).div_euclid(1000);
        g.second(sec).iter().find(|a| a.key == Key::Post(id)).map(json)
    }

    #[test]
    fn every_kind_appears_in_three_minutes_of_a_decahose_at_realistic_rates() {
        let g = gen(StreamKind::Sample10);
        let total: u64 = (0..180).map(|s| g.count_in_second(FROM / 1000 + s)).sum();
        let mut seen = BTreeMap::<String, u64>::new();
        for a in g.messages(FROM, FROM + 180_000) {
            *seen.entry(message_kind(&json(&a))).or_default() += 1;
        }
        for kind in [
            "post delete",
            "scrub_geo",
            "status_withheld",
            "user_withheld",
            "user_delete",
            "user_undelete",
            "user_protect",
            "user_unprotect",
            "user_suspend",
            "user_unsuspend",
        ] {
            assert!(seen.get(kind).copied().unwrap_or(0) >= 5, "few {kind}: {seen:?}");
        }
        let deletes = seen["post delete"] as f64 / total as f64;
        assert!((0.017..0.021).contains(&deletes), "Post deletes {deletes}");
        let others = (seen.values().sum::<u64>() - seen["post delete"]) as f64 / total as f64;
        assert!((0.001..0.005).contains(&others), "other compliance {others}");
        assert!(!seen.contains_key("unlike"));
    }

    #[test]
    fn a_post_delete_names_a_real_post_of_an_earlier_second_once() {
        let g = gen(StreamKind::Sample10);
        let mut named = HashSet::new();
        let (mut recent, mut old, mut checked) = (0, 0, 0);
        for a in g.messages(FROM, FROM + 120_000) {
            let Key::Delete(id) = a.key else { continue };
            assert!(named.insert(id), "Post {id} deleted twice");
            let age = a.time_ms - snowflake_ms(id);
            assert!(age >= 1, "a delete names a Post of an earlier second: {age}");
            if age < 600_000 {
                recent += 1;
            } else if age > 3_600_000 {
                old += 1;
            }
            if checked < 30 {
                let v = json(&a);
                let post = regenerate_post(&g, id).expect("the deleted Post is a real Post");
                assert_eq!(post["user"]["id_str"].as_str(), v["delete"]["status"]["user_id_str"].as_str());
                assert_eq!(id_of(&v["delete"]["status"]["id_str"]), id);
                checked += 1;
            }
        }
        assert_eq!(checked, 30);
        assert!(recent > 400 && old > 400, "ages: {recent} within 10 min, {old} over an hour");
    }

    #[test]
    fn status_withheld_and_scrub_geo_name_real_posts_and_their_authors() {
        let g = gen(StreamKind::Sample10);
        let (mut withheld, mut scrub_on_geo) = (0, 0);
        for a in g.messages(FROM, FROM + 300_000) {
            let v = json(&a);
            if let Some(w) = v.get("status_withheld") {
                let post = regenerate_post(&g, id_of(&w["id"])).expect("a real Post");
                assert_eq!(id_of(&post["user"]["id_str"]), id_of(&w["user_id"]));
                assert!(snowflake_ms(id_of(&w["id"])) < a.time_ms);
                withheld += 1;
            }
            if let Some(s) = v.get("scrub_geo") {
                let up_to = id_of(&s["up_to_status_id_str"]);
                assert!(snowflake_ms(up_to) <= a.time_ms);
                if let Some(post) = regenerate_post(&g, up_to) {
                    assert_eq!(id_of(&post["user"]["id_str"]), id_of(&s["user_id_str"]));
                    if post["place"].is_object() && post["geo"].is_object() {
                        scrub_on_geo += 1;
                    }
                }
            }
        }
        assert!(
            withheld >= 5 && scrub_on_geo >= 3,
            "{withheld} withheld, {scrub_on_geo} scrub_geo up to a geotagged Post"
        );
    }

    #[test]
    fn an_undo_names_a_user_that_an_earlier_event_of_its_family_hid() {
        let g = gen(StreamKind::Sample10);
        let from = FROM + 600_000;
        let msgs: Vec<Value> = g.messages(FROM, from + 180_000).map(|a| json(&a)).collect();
        let ts = |v: &Value| -> i64 { v["timestamp_ms"].as_str().unwrap().parse().unwrap() };
        let mut undos = 0;
        for (undo, hide) in
            [("user_undelete", "user_delete"), ("user_unprotect", "user_protect"), ("user_unsuspend", "user_suspend")]
        {
            for v in msgs.iter().filter_map(|v| v.get(undo)).filter(|v| ts(v) >= from) {
                let user = id_of(&v["id_str"]);
                let hidden =
                    msgs.iter().filter_map(|h| h.get(hide)).any(|h| id_of(&h["id_str"]) == user && ts(h) < ts(v));
                assert!(hidden, "{undo} of {user} at {}: no earlier {hide}", ts(v));
                undos += 1;
            }
        }
        assert!(undos >= 15, "{undos}");
    }

    #[test]
    fn an_unlike_names_a_real_earlier_like_once() {
        let g = gen(StreamKind::Likes);
        let mut named = HashSet::new();
        let mut checked = 0;
        for a in g.messages(FROM, FROM + 60_000) {
            let Key::Unlike { tweet_id, user_id, timestamp_ms } = a.key else { panic!("{:?}", a.key) };
            assert!(named.insert((tweet_id, user_id)), "like ({tweet_id}, {user_id}) unliked twice");
            if checked < 12 {
                let found = UNLIKE_AGES_S.iter().any(|age| {
                    g.second(timestamp_ms.div_euclid(1000) - age).iter().any(|l| {
                        let v = json(l);
                        matches!(l.key, Key::Like(_))
                            && l.time_ms < timestamp_ms
                            && v["favorited_status"]["id"].as_u64() == Some(tweet_id)
                            && id_of(&v["user"]["id_str"]) == user_id
                    })
                });
                assert!(found, "unlike of ({tweet_id}, {user_id}) at {timestamp_ms}: no such like");
                checked += 1;
            }
        }
        assert_eq!(checked, 12);
    }
}
