//! Scheduling: which activities a stream holds, and when.
//!
//! Activities are a pure function of `(seed, stream, second of stream time)`:
//! the generator never keeps state, so Backfill and Recovery can serve any
//! time (also before the server started), two servers with the same seed
//! send the same bytes, and `truth` can list a range without a server.
//!
//! Every activity has an *activity time* (`timestamp_ms`, equal to the
//! snowflake time of a Post's ID), a partition (a hash of its natural key) and
//! a *delivery time* on the realtime stream: activity time plus a
//! deterministic latency below [`MAX_LATENCY_MS`]. Realtime connections send
//! by delivery time; Recovery and `truth` go by activity time.
//!
//! This module decides how many activities a second holds, their times, kinds,
//! keys, partitions and latencies; [`heads`] what each is and what a
//! compliance message names (a real Post, user or like the stream sent
//! earlier); `payload` writes their bytes.
//!
//! On a stream of Posts, ~2 % of activities are Post deletes and ~0.3 %
//! other compliance messages (`scrub_geo`, `status_withheld`,
//! `user_withheld`, `user_delete`/`user_undelete`,
//! `user_protect`/`user_unprotect`, `user_suspend`/`user_unsuspend`, equally
//! likely); on Likes, ~5 % are unlikes.

pub mod heads;

use bytes::Bytes;

use crate::clock::StreamMs;
use crate::payload::{write_compliance, write_delete, write_unlike, Writer};
use crate::rng::{fnv1a64, hash_str, mix64, Rng};
pub use crate::snowflake::{snowflake, snowflake_ms, TWEPOCH_MS};
use crate::stream::{Format, StreamKind, StreamSpec};
use heads::{like_head, post_head, Class};

/// Realtime delivery latency is in `[MIN_LATENCY_MS, MAX_LATENCY_MS)`.
pub const MIN_LATENCY_MS: i64 = 200;
pub const MAX_LATENCY_MS: i64 = 3_000;

/// The natural key of an activity, as the archiver dedups it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Post(u64),
    /// A Post delete: the deleted status ID.
    Delete(u64),
    /// A like: its 128-bit id (32 hex digits).
    Like(u128),
    Unlike {
        tweet_id: u64,
        user_id: u64,
        timestamp_ms: i64,
    },
    /// Any other message: FNV-1a 64 of the line's bytes.
    Compliance(u64),
}

impl Key {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Key::Post(_) => "post",
            Key::Delete(_) => "delete",
            Key::Like(_) => "like",
            Key::Unlike { .. } => "unlike",
            Key::Compliance(_) => "compliance",
        }
    }

    /// The key as `truth` prints it.
    pub fn key_string(&self) -> String {
        match self {
            Key::Post(id) | Key::Delete(id) => id.to_string(),
            Key::Like(id) => format!("{id:032x}"),
            Key::Unlike { tweet_id, user_id, timestamp_ms } => {
                format!("{tweet_id}:{user_id}:{timestamp_ms}")
            }
            Key::Compliance(h) => format!("{h:016x}"),
        }
    }

    /// `KIND KEY`, one line of `truth`.
    pub fn truth_line(&self) -> String {
        format!("{} {}", self.kind_name(), self.key_string())
    }
}

/// One generated activity.
#[derive(Clone, Debug)]
pub struct Activity {
    /// Activity time (ms since the Unix epoch).
    pub time_ms: StreamMs,
    /// When the realtime stream delivers it.
    pub deliver_ms: StreamMs,
    /// 1-based partition, or 0 on an unpartitioned stream.
    pub partition: u32,
    pub key: Key,
    /// The JSON line, without the `\r\n` separator.
    pub line: Bytes,
}

/// The generator of one stream.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    stream_word: u64,
    kind: StreamKind,
    partitions: u32,
    rate: f64,
    activity_streams: bool,
    payload: Writer,
}

/// The daily cycle: a factor averaging 1 over a UTC day, lowest around 04:00
/// UTC and highest around 16:00 UTC.
pub fn daily_factor(ms: StreamMs) -> f64 {
    let day_frac = (ms.rem_euclid(86_400_000)) as f64 / 86_400_000.0;
    1.0 + 0.3 * (2.0 * std::f64::consts::PI * (day_frac - 0.416)).sin()
}

/// An activity of a second before its head is drawn: its time, index,
/// sequence within its millisecond, its first draw (the class) and its
/// random stream after it.
struct Pending {
    ms: i64,
    idx: u64,
    seq: u64,
    roll: f64,
    rng: Rng,
}

/// Which activities of a second to generate.
#[derive(Clone, Copy)]
struct Filter {
    partition: Option<u32>,
    /// Only deletes, unlikes and other compliance messages.
    messages_only: bool,
}

impl Generator {
    pub fn new(seed: u64, spec: &StreamSpec) -> Self {
        let stream_word = hash_str(&spec.name());
        Generator {
            seed,
            stream_word,
            kind: spec.kind,
            partitions: spec.partitions,
            rate: spec.rate,
            activity_streams: spec.format == Format::ActivityStreams,
            payload: Writer::new(seed, stream_word, spec.kind),
        }
    }

    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// How many activities second `sec` holds.
    pub fn count_in_second(&self, sec: i64) -> u64 {
        let mean = self.rate * daily_factor(sec * 1000);
        let mut r = Rng::from_words(&[self.seed, self.stream_word, sec as u64, 0xC0FF_EE00]);
        // Mean-preserving jitter of ±10%, then stochastic rounding.
        let jittered = mean * (0.9 + 0.2 * r.unit());
        let base = jittered.floor();
        let extra = if r.unit() < jittered - base { 1.0 } else { 0.0 };
        (base + extra) as u64
    }

    /// All activities whose activity time lies in second `sec`
    /// (`[sec·1000, sec·1000+1000)`), in activity-time order.
    pub fn second(&self, sec: i64) -> Vec<Activity> {
        self.second_of(sec, None)
    }

    /// Like [`Generator::second`], only the activities of `partition` (if
    /// given); the others' payloads are not generated.
    pub fn second_of(&self, sec: i64, partition: Option<u32>) -> Vec<Activity> {
        self.second_filtered(sec, Filter { partition, messages_only: false })
    }

    fn second_filtered(&self, sec: i64, filter: Filter) -> Vec<Activity> {
        let mut out = Vec::new();
        let mut ranks = 0u64;
        let cache = heads::HeadCache::default();
        for mut p in self.pending(sec) {
            let class = self.class(p.roll);
            // Deletes and unlikes are ranked in their second (see `heads`).
            let rank = if matches!(class, Class::Delete | Class::Unlike) {
                ranks += 1;
                ranks - 1
            } else {
                0
            };
            if filter.messages_only && matches!(class, Class::Post | Class::Like) {
                continue;
            }
            if let Some(a) = self.activity(&mut p, class, rank, filter, &cache) {
                out.push(a);
            }
        }
        out
    }

    /// The activities of second `sec` before their heads, in activity-time
    /// order.
    fn pending(&self, sec: i64) -> Vec<Pending> {
        let n = self.count_in_second(sec);
        let mut pend: Vec<Pending> = (0..n)
            .map(|idx| {
                let (ms, roll, rng) = self.first_draws(sec, idx);
                Pending { ms, idx, seq: 0, roll, rng }
            })
            .collect();
        pend.sort_by_key(|p| (p.ms, p.idx));
        let mut last_ms = i64::MIN;
        let mut seq = 0;
        for p in &mut pend {
            if p.ms == last_ms {
                seq += 1;
            } else {
                seq = 0;
                last_ms = p.ms;
            }
            p.seq = seq;
        }
        pend
    }

    /// Activity `idx` of second `sec`: its time, its class draw and its
    /// random stream after them.
    fn first_draws(&self, sec: i64, idx: u64) -> (i64, f64, Rng) {
        let mut rng = Rng::from_words(&[self.seed, self.stream_word, sec as u64, idx]);
        let ms = sec * 1000 + rng.below(1000) as i64;
        let roll = rng.unit();
        (ms, roll, rng)
    }

    /// Deletes, unlikes and the other compliance messages (no Posts, no
    /// likes) of every partition with activity time in `[from_ms, to_ms)`,
    /// in activity-time order: what a ledger of the range is made of,
    /// without writing a Post.
    pub fn messages(&self, from_ms: StreamMs, to_ms: StreamMs) -> impl Iterator<Item = Activity> + '_ {
        let first = from_ms.div_euclid(1000);
        let last = (to_ms - 1).div_euclid(1000);
        let filter = Filter { partition: None, messages_only: true };
        (first..=last).flat_map(move |sec| {
            self.second_filtered(sec, filter).into_iter().filter(move |a| a.time_ms >= from_ms && a.time_ms < to_ms)
        })
    }

    /// Activities with activity time in `[from_ms, to_ms)`, optionally of one
    /// partition, in activity-time order.
    pub fn range(
        &self,
        from_ms: StreamMs,
        to_ms: StreamMs,
        partition: Option<u32>,
    ) -> impl Iterator<Item = Activity> + '_ {
        let first = from_ms.div_euclid(1000);
        let last = (to_ms - 1).div_euclid(1000);
        (first..=last).flat_map(move |sec| {
            self.second_of(sec, partition).into_iter().filter(move |a| a.time_ms >= from_ms && a.time_ms < to_ms)
        })
    }

    fn partition_of(&self, word: u64) -> u32 {
        if self.partitions == 0 {
            0
        } else {
            (mix64(word ^ self.stream_word) % u64::from(self.partitions)) as u32 + 1
        }
    }

    fn latency(&self, word: u64) -> i64 {
        MIN_LATENCY_MS
            + (mix64(word ^ self.stream_word ^ 0x01A7_E4C7) % (MAX_LATENCY_MS - MIN_LATENCY_MS) as u64) as i64
    }

    /// Generate one activity; `None` when the filter refuses it (the
    /// payload, the expensive part, is then never written). The draws that
    /// decide the head, partition and latency come first, so filtering does
    /// not change the activities that are kept. `rank` is a delete's or an
    /// unlike's rank among those of its second.
    fn activity(
        &self,
        p: &mut Pending,
        class: Class,
        rank: u64,
        filter: Filter,
        cache: &heads::HeadCache,
    ) -> Option<Activity> {
        enum Head {
            Unlike(u64, u64),
            Like(heads::LikeHead),
            Delete(u64, u64),
            Compliance(crate::payload::Compliance),
            Post(heads::PostHead),
        }
        let (ms, r) = (p.ms, &mut p.rng);
        let head = match class {
            Class::Unlike => self.unlike_head(r, ms, rank, cache).map(|(t, u)| Head::Unlike(t, u)),
            Class::Delete => self.delete_head(r, ms, rank, cache).map(|(s, u)| Head::Delete(s, u)),
            Class::Compliance => self.compliance_head(r, ms, cache).map(Head::Compliance),
            Class::Like | Class::Post => None,
        };
        // A message that names nothing real is the stream's ordinary activity.
        let head = match head {
            Some(h) => h,
            None if self.kind == StreamKind::Likes => Head::Like(like_head(r, ms)),
            None => Head::Post(post_head(r, ms, p.seq)),
        };
        if filter.messages_only && matches!(head, Head::Like(_) | Head::Post(_)) {
            return None;
        }
        let word = match &head {
            Head::Unlike(tweet_id, _) => *tweet_id,
            Head::Like(l) => l.id as u64,
            Head::Delete(status_id, _) => *status_id,
            Head::Compliance(_) => r.next_u64(),
            Head::Post(h) => h.id,
        };
        let partition = self.partition_of(word);
        if filter.partition.is_some_and(|p| p != partition) {
            return None;
        }
        let mut s = String::with_capacity(4096);
        let key = match head {
            Head::Unlike(tweet_id, user_id) => {
                write_unlike(&mut s, tweet_id, user_id, ms);
                Key::Unlike { tweet_id, user_id, timestamp_ms: ms }
            }
            Head::Like(l) => {
                self.payload.write_like(&mut s, l.id, ms, &l.liked);
                Key::Like(l.id)
            }
            Head::Delete(status_id, user_id) => {
                write_delete(&mut s, status_id, user_id, ms);
                Key::Delete(status_id)
            }
            Head::Compliance(c) => {
                write_compliance(&mut s, &c, ms, r);
                Key::Compliance(fnv1a64(s.as_bytes()))
            }
            Head::Post(h) => {
                self.payload.write_post(&mut s, h.id, ms, h.author_idx, r);
                Key::Post(h.id)
            }
        };
        if self.activity_streams && matches!(key, Key::Post(_) | Key::Delete(_)) {
            s = crate::activity_streams::convert(&s);
        }
        Some(Activity { time_ms: ms, deliver_ms: ms + self.latency(word), partition, key, line: Bytes::from(s) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::twitter_date;

    fn gen(kind: StreamKind, rate: f64) -> Generator {
        let mut spec = StreamSpec::new(kind, "prod");
        spec.rate = rate;
        Generator::new(7, &spec)
    }

    #[test]
    fn posts_are_valid_and_consistent() {
        let g = gen(StreamKind::Sample10, 600.0);
        let sec = 1_767_225_600; // 2026-01-01T00:00:00Z
        let acts = g.second(sec);
        assert!(acts.len() > 300 && acts.len() < 1000, "{}", acts.len());
        let mut total = 0usize;
        let mut posts = 0usize;
        let mut ids = std::collections::HashSet::new();
        for a in &acts {
            let v: serde_json::Value = serde_json::from_slice(&a.line).expect("valid JSON");
            assert!(a.deliver_ms - a.time_ms >= MIN_LATENCY_MS && a.deliver_ms - a.time_ms < MAX_LATENCY_MS);
            assert!(a.partition == 1 || a.partition == 2);
            assert!(!a.line.contains(&b'\n'));
            total += a.line.len();
            match &a.key {
                Key::Post(id) => {
                    posts += 1;
                    assert!(ids.insert(*id));
                    assert_eq!(v["id"].as_u64(), Some(*id));
                    assert_eq!(v["id_str"].as_str(), Some(id.to_string().as_str()));
                    let ts: i64 = v["timestamp_ms"].as_str().unwrap().parse().unwrap();
                    assert_eq!(ts, a.time_ms);
                    assert_eq!(snowflake_ms(*id), a.time_ms);
                    assert_eq!(v["created_at"].as_str().unwrap(), twitter_date(a.time_ms));
                    assert!(v["user"]["id_str"].is_string());
                }
                Key::Delete(id) => {
                    assert_eq!(v["delete"]["status"]["id"].as_u64(), Some(*id));
                }
                Key::Compliance(h) => assert_eq!(*h, fnv1a64(&a.line)),
                _ => panic!("no likes on sample10"),
            }
        }
        let avg = total / acts.len();
        assert!(avg > 1500 && avg < 6000, "average line {avg}");
        assert!(posts > acts.len() * 9 / 10);
        // Determinism.
        let again = g.second(sec);
        assert!(acts.iter().zip(&again).all(|(a, b)| a.line == b.line));
    }

    #[test]
    fn partition_filter_keeps_the_same_activities() {
        for kind in [StreamKind::Sample10, StreamKind::Firehose, StreamKind::Likes] {
            let g = gen(kind, 300.0);
            let sec = 1_767_225_601;
            let all = g.second(sec);
            for p in 1..=kind.default_partitions() {
                let only = g.second_of(sec, Some(p));
                let want: Vec<&Activity> = all.iter().filter(|a| a.partition == p).collect();
                assert_eq!(only.len(), want.len());
                assert!(only.iter().zip(want).all(|(a, b)| a.line == b.line && a.key == b.key));
            }
        }
    }

    #[test]
    fn post_ids_unique_over_a_minute() {
        let g = gen(StreamKind::Sample10, 600.0);
        let mut ids = std::collections::HashSet::new();
        for a in g.range(1_767_225_600_000, 1_767_225_660_000, None) {
            if let Key::Post(id) = a.key {
                assert!(ids.insert(id), "duplicate {id}");
            }
        }
        assert!(ids.len() > 25_000);
    }

    #[test]
    fn likes_shapes() {
        let g = gen(StreamKind::Likes, 200.0);
        for a in g.second(1_767_225_600) {
            let v: serde_json::Value = serde_json::from_slice(&a.line).unwrap();
            match a.key {
                Key::Like(id) => {
                    assert_eq!(v["id"].as_str().unwrap(), format!("{id:032x}"));
                    assert!(v["favorited_status"]["id"].is_u64());
                    assert_eq!(v["timestamp_ms"].as_i64(), Some(a.time_ms));
                }
                Key::Unlike { tweet_id, .. } => {
                    assert_eq!(v["delete"]["favorite"]["tweet_id"].as_u64(), Some(tweet_id));
                }
                _ => panic!("unexpected kind"),
            }
        }
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// The generator's output is part of the contract: archives and test
    /// expectations made with one version must match the next. If a change
    /// to the payloads is intended, update these values and say so.
    #[test]
    fn output_is_pinned() {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for kind in [StreamKind::Sample10, StreamKind::Likes, StreamKind::PowerTrack] {
            let mut spec = StreamSpec::new(kind, "prod");
            spec.rate = 50.0;
            for a in Generator::new(1, &spec).range(1_767_225_600_000, 1_767_225_605_000, None) {
                h ^= fnv1a64(&a.line) ^ (a.deliver_ms as u64) ^ u64::from(a.partition);
                h = mix64(h);
            }
        }
        assert_eq!(h, 0xc197_e47b_6352_a6a8, "generator output changed: {h:#018x}");
    }

    /// A minute of every stream kind (and of Activity Streams), hashed
    /// line by line with each activity's time, delivery time, partition and
    /// key, so that a change of any byte of any kind of payload shows. The
    /// minute holds every kind of activity and every shape of Post (checked
    /// below), so the pin covers them all.
    #[test]
    fn every_kind_of_activity_is_pinned() {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut seen = std::collections::BTreeMap::<&str, u64>::new();
        let mut streams: Vec<StreamSpec> = StreamKind::ALL.iter().map(|k| StreamSpec::new(*k, "prod")).collect();
        let mut as_spec = StreamSpec::new(StreamKind::Sample10, "as");
        as_spec.format = Format::ActivityStreams;
        streams.push(as_spec);
        for mut spec in streams {
            spec.rate = 50.0;
            let activity_streams = spec.format == Format::ActivityStreams;
            for a in Generator::new(3, &spec).range(1_767_268_800_000, 1_767_268_860_000, None) {
                h ^= fnv1a64(&a.line) ^ fnv1a64(a.key.truth_line().as_bytes());
                h = mix64(h ^ (a.time_ms as u64)) ^ (a.deliver_ms as u64) ^ u64::from(a.partition);
                h = mix64(h);
                *seen.entry(a.key.kind_name()).or_default() += 1;
                let line = std::str::from_utf8(&a.line).expect("UTF-8");
                let shapes: &[(&str, &str)] = if activity_streams {
                    &[("as:share", "\"verb\":\"share\""), ("as:post", "\"verb\":\"post\"")]
                } else {
                    &[
                        ("retweet", "\"retweeted_status\":{"),
                        ("quote", "\"quoted_status\":{"),
                        ("reply", "\"in_reply_to_screen_name\":\""),
                        ("extended", "\"extended_tweet\":{"),
                        ("place", "\"place\":{"),
                        ("profile geo", "\"derived\":{"),
                        ("edit", "\"edits_remaining\":4"),
                        ("matching rules", "\"matching_rules\":["),
                        ("scrub_geo", "{\"scrub_geo\":"),
                        ("status_withheld", "{\"status_withheld\":"),
                        ("user_withheld", "{\"user_withheld\":"),
                        ("user_protect", "{\"user_protect\":"),
                        ("user_delete", "{\"user_delete\":"),
                        ("user_undelete", "{\"user_undelete\":"),
                        ("user_unprotect", "{\"user_unprotect\":"),
                        ("user_suspend", "{\"user_suspend\":"),
                        ("user_unsuspend", "{\"user_unsuspend\":"),
                        ("post delete", "{\"delete\":{\"status\":"),
                        ("favorite delete", "{\"delete\":{\"favorite\":"),
                        ("geo", "\"coordinates\":{\"type\":\"Point\""),
                    ]
                };
                for (name, needle) in shapes {
                    if line.contains(needle) {
                        *seen.entry(name).or_default() += 1;
                    }
                }
            }
        }
        for kind in [
            "post",
            "delete",
            "like",
            "unlike",
            "compliance",
            "retweet",
            "quote",
            "reply",
            "extended",
            "place",
            "profile geo",
            "edit",
            "matching rules",
            "scrub_geo",
            "status_withheld",
            "user_withheld",
            "user_protect",
            "user_delete",
            "user_undelete",
            "user_unprotect",
            "user_suspend",
            "user_unsuspend",
            "post delete",
            "favorite delete",
            "geo",
            "as:share",
            "as:post",
        ] {
            assert!(seen.get(kind).copied().unwrap_or(0) > 0, "no {kind} in the pinned minute: {seen:?}");
        }
        assert_eq!(h, 0x63c2_4f50_ce2b_0983, "generator output changed: {h:#018x}");
    }
}
