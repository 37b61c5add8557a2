//! The deterministic activity generator.
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

use bytes::Bytes;

use crate::clock::{twitter_date, StreamMs};
use crate::json::Obj;
use crate::rng::{fnv1a64, hash_str, mix64, Rng};
use crate::stream::{StreamKind, StreamSpec};
use crate::words::{COLORS, DOMAINS, HASHTAGS, LANGS, PLACES, SOURCES, SYLLABLES};

/// 2010-11-04T01:42:54.657Z, the snowflake epoch.
pub const TWEPOCH_MS: i64 = 1_288_834_974_657;
/// Realtime delivery latency is in `[MIN_LATENCY_MS, MAX_LATENCY_MS)`.
pub const MIN_LATENCY_MS: i64 = 200;
pub const MAX_LATENCY_MS: i64 = 3_000;

/// A snowflake ID: ms since the epoch, 10 bits of machine, 12 of sequence.
pub fn snowflake(ms: i64, machine: u64, seq: u64) -> u64 {
    (((ms - TWEPOCH_MS).max(0) as u64) << 22) | ((machine & 0x3ff) << 12) | (seq & 0xfff)
}

/// The time of a snowflake ID.
pub fn snowflake_ms(id: u64) -> i64 {
    (id >> 22) as i64 + TWEPOCH_MS
}

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
}

/// The daily cycle: a factor averaging 1 over a UTC day, lowest around 04:00
/// UTC and highest around 16:00 UTC.
pub fn daily_factor(ms: StreamMs) -> f64 {
    let day_frac = (ms.rem_euclid(86_400_000)) as f64 / 86_400_000.0;
    1.0 + 0.3 * (2.0 * std::f64::consts::PI * (day_frac - 0.416)).sin()
}

struct Pending {
    ms: i64,
    idx: u64,
    rng: Rng,
}

impl Generator {
    pub fn new(seed: u64, spec: &StreamSpec) -> Self {
        Generator {
            seed,
            stream_word: hash_str(&spec.name()),
            kind: spec.kind,
            partitions: spec.partitions,
            rate: spec.rate,
            activity_streams: spec.format == crate::stream::Format::ActivityStreams,
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
        let n = self.count_in_second(sec);
        let mut pend: Vec<Pending> = (0..n)
            .map(|i| {
                let mut rng = Rng::from_words(&[self.seed, self.stream_word, sec as u64, i]);
                let ms = sec * 1000 + rng.below(1000) as i64;
                Pending { ms, idx: i, rng }
            })
            .collect();
        pend.sort_by_key(|p| (p.ms, p.idx));
        let mut out = Vec::with_capacity(pend.len());
        let mut seq_in_ms = 0u64;
        let mut last_ms = i64::MIN;
        for mut p in pend {
            if p.ms == last_ms {
                seq_in_ms += 1;
            } else {
                seq_in_ms = 0;
                last_ms = p.ms;
            }
            if let Some(a) = self.activity(p.ms, seq_in_ms, &mut p.rng, partition) {
                out.push(a);
            }
        }
        out
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

    /// Generate one activity; `None` when `keep` refuses its partition (the
    /// payload, the expensive part, is then never written). The draws that
    /// decide the key, partition and latency come first, so filtering does
    /// not change the activities that are kept.
    fn activity(&self, ms: i64, seq: u64, r: &mut Rng, keep: Option<u32>) -> Option<Activity> {
        enum Head {
            Unlike(u64, u64),
            Like(u128),
            Delete(u64, u64),
            Compliance,
            Post(u64),
        }
        let roll = r.unit();
        let (head, word) = if self.kind == StreamKind::Likes {
            if roll < 0.05 {
                let tweet_id = past_snowflake(r, ms, 60_000, 7 * 86_400_000);
                let user_id = self.user_id(r.below(USERS));
                (Head::Unlike(tweet_id, user_id), tweet_id)
            } else {
                let id = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
                (Head::Like(id), id as u64)
            }
        } else if roll < 0.02 {
            let status_id = past_snowflake(r, ms, 1_000, 2 * 86_400_000);
            let user_id = self.user_id(r.below(USERS));
            (Head::Delete(status_id, user_id), status_id)
        } else if roll < 0.023 {
            (Head::Compliance, r.next_u64())
        } else {
            let id = snowflake(ms, r.below(1024), seq);
            (Head::Post(id), id)
        };
        let partition = self.partition_of(word);
        if keep.is_some_and(|p| p != partition) {
            return None;
        }
        let mut s = String::with_capacity(4096);
        let key = match head {
            Head::Unlike(tweet_id, user_id) => {
                write_unlike(&mut s, tweet_id, user_id, ms);
                Key::Unlike { tweet_id, user_id, timestamp_ms: ms }
            }
            Head::Like(id) => {
                self.write_like(&mut s, id, ms, r);
                Key::Like(id)
            }
            Head::Delete(status_id, user_id) => {
                write_delete(&mut s, status_id, user_id, ms);
                Key::Delete(status_id)
            }
            Head::Compliance => {
                self.write_compliance(&mut s, ms, r);
                Key::Compliance(fnv1a64(s.as_bytes()))
            }
            Head::Post(id) => {
                self.write_post(&mut s, id, ms, r, true);
                Key::Post(id)
            }
        };
        if self.activity_streams && matches!(key, Key::Post(_) | Key::Delete(_)) {
            s = crate::activity_streams::convert(&s);
        }
        Some(Activity { time_ms: ms, deliver_ms: ms + self.latency(word), partition, key, line: Bytes::from(s) })
    }

    // ----- users -----

    fn user_id(&self, idx: u64) -> u64 {
        let mut r = Rng::from_words(&[self.seed, 0x05E5, idx]);
        if r.chance(0.45) {
            r.range(12, 3_000_000_000)
        } else {
            // Accounts created 2014..2025 have snowflake IDs.
            let ms = 1_400_000_000_000 + r.below(340_000_000_000) as i64;
            snowflake(ms, r.below(1024), r.below(4096))
        }
    }

    fn write_user(&self, out: &mut String, idx: u64) {
        let id = self.user_id(idx);
        let mut r = Rng::from_words(&[self.seed, 0x05E6, idx]);
        let lang = pick_lang(&mut r);
        let mut screen = String::new();
        for _ in 0..r.range(2, 4) {
            screen.push_str(r.pick_str(SYLLABLES));
        }
        if r.chance(0.5) {
            screen.push_str(&r.below(10_000).to_string());
        }
        screen.truncate(15);
        let name = words(&mut r, lang, 1, 3);
        let created_ms =
            if id > 10_000_000_000 { snowflake_ms(id) } else { 1_170_000_000_000 + (id as i64 % 230_000_000_000) };
        let place = if r.chance(0.6) { Some(r.pick(PLACES)) } else { None };
        let followers = (r.unit().powi(4) * 2_000_000.0) as u64;
        let verified = followers > 1_500_000 && r.chance(0.5);
        let desc = if r.chance(0.8) { Some(words(&mut r, lang, 4, 18)) } else { None };
        let img = r.next_u64() % 1_000_000_000_000_000_000;
        let mut o = Obj::new(out);
        o.num("id", id)
            .str("id_str", &id.to_string())
            .str("name", &name)
            .str("screen_name", &screen)
            .opt_str("location", place.map(|p| p.0))
            .opt_str("url", if r.chance(0.3) { Some("https://t.co/abcDEF1234") } else { None })
            .opt_str("description", desc.as_deref())
            .str("translator_type", "none")
            .bool("protected", false)
            .bool("verified", verified)
            .num("followers_count", followers)
            .num("friends_count", r.below(5000))
            .num("listed_count", r.below(200))
            .num("favourites_count", r.below(200_000))
            .num("statuses_count", r.range(1, 300_000))
            .str("created_at", &twitter_date(created_ms))
            .null("utc_offset")
            .null("time_zone")
            .bool("geo_enabled", r.chance(0.3))
            .str("lang", lang.code)
            .bool("contributors_enabled", false)
            .bool("is_translator", false)
            .str("profile_background_color", r.pick_str(COLORS))
            .str("profile_background_image_url", "")
            .str("profile_background_image_url_https", "")
            .bool("profile_background_tile", false)
            .str("profile_link_color", r.pick_str(COLORS))
            .str("profile_sidebar_border_color", r.pick_str(COLORS))
            .str("profile_sidebar_fill_color", r.pick_str(COLORS))
            .str("profile_text_color", r.pick_str(COLORS))
            .bool("profile_use_background_image", r.chance(0.7))
            .str(
                "profile_image_url",
                &format!("http://pbs.twimg.com/profile_images/{img}/a{:x}_normal.jpg", img % 9973),
            )
            .str(
                "profile_image_url_https",
                &format!("https://pbs.twimg.com/profile_images/{img}/a{:x}_normal.jpg", img % 9973),
            )
            .str(
                "profile_banner_url",
                &format!("https://pbs.twimg.com/profile_banners/{id}/{}", created_ms / 1000 + 86_400),
            )
            .bool("default_profile", r.chance(0.5))
            .bool("default_profile_image", false)
            .null("following")
            .null("follow_request_sent")
            .null("notifications");
        if let Some(p) = place {
            // Gnip Profile Geo enrichment.
            o.obj("derived", |o| {
                o.arr("locations", |a| {
                    a.obj(|o| {
                        o.str("country", p.2).str("country_code", p.3).str("locality", p.1).obj("geo", |o| {
                            o.arr("coordinates", |a| {
                                a.num(p.4).num(p.5);
                            })
                            .str("type", "point");
                        });
                    });
                });
            });
        }
        o.end();
    }

    fn screen_name(&self, idx: u64) -> String {
        // Must match write_user's derivation.
        let mut r = Rng::from_words(&[self.seed, 0x05E6, idx]);
        let _ = pick_lang(&mut r);
        let mut screen = String::new();
        for _ in 0..r.range(2, 4) {
            screen.push_str(r.pick_str(SYLLABLES));
        }
        if r.chance(0.5) {
            screen.push_str(&r.below(10_000).to_string());
        }
        screen.truncate(15);
        screen
    }

    // ----- posts -----

    /// Write a Post. `top` = a stream activity (may retweet/quote, carries
    /// `timestamp_ms`); otherwise an embedded original.
    fn write_post(&self, out: &mut String, id: u64, ms: i64, r: &mut Rng, top: bool) {
        let user_idx = user_index(r);
        let lang = pick_lang(r);
        let kind_roll = r.unit();
        let is_rt = top && kind_roll < 0.28;
        let is_quote = top && !is_rt && kind_roll < 0.36;
        let is_reply = !is_rt && r.chance(0.15);

        // Embedded original for retweets and quotes.
        let mut embedded = String::new();
        let mut orig: Option<(u64, u64, String)> = None; // (id, user idx, text)
        if is_rt || is_quote {
            let orig_ms = ms - r.range(30_000, 3 * 86_400_000) as i64;
            let orig_id = snowflake(orig_ms, r.below(1024), r.below(4096));
            let mut r2 = Rng::from_words(&[self.seed, 0x0816, orig_id]);
            let ouser = user_index(&mut r2);
            let mut r3 = Rng::from_words(&[self.seed, 0x0817, orig_id]);
            let otext = self.write_post_with_user(&mut embedded, orig_id, orig_ms, &mut r3, ouser);
            orig = Some((orig_id, ouser, otext));
        }

        let mut tb = TextBuilder::default();
        let mut reply_to: Option<(u64, u64, String)> = None;
        if is_rt {
            let (_, ouser, otext) = orig.as_ref().map(|o| (o.0, o.1, o.2.clone())).unwrap_or_default();
            let sn = self.screen_name(ouser);
            tb.push("RT ");
            tb.mention(&sn, self.user_id(ouser));
            tb.push(": ");
            tb.push(&otext);
        } else {
            if is_reply {
                let ruser = user_index(r);
                let sn = self.screen_name(ruser);
                let rid = past_snowflake(r, ms, 5_000, 86_400_000);
                tb.mention(&sn, self.user_id(ruser));
                tb.push(" ");
                reply_to = Some((rid, self.user_id(ruser), sn));
            }
            let long = r.chance(0.15);
            let body = if long { words(r, lang, 25, 60) } else { words(r, lang, 3, 22) };
            tb.push(&body);
            for _ in 0..r.below(3) {
                tb.push(" ");
                tb.hashtag(r.pick_str(HASHTAGS));
            }
            if is_quote {
                let (oid, ouser, _) = orig.as_ref().map(|o| (o.0, o.1, String::new())).unwrap_or_default();
                let sn = self.screen_name(ouser);
                tb.push(" ");
                tb.url(
                    &format!("https://twitter.com/{sn}/status/{oid}"),
                    &format!("twitter.com/{sn}/status/{}…", &oid.to_string()[..4]),
                    r,
                );
            } else if r.chance(0.3) {
                let d = r.pick(DOMAINS);
                tb.push(" ");
                tb.url(&format!("https://{}/{}", d.0, r.below(1_000_000_000)), &format!("{}/…", d.0), r);
            }
        }

        let full_chars = tb.chars;
        let extended = !is_rt && full_chars > 140;
        let (text, text_entities_end, web_url) = if extended {
            let cut: String = tb.s.chars().take(113).collect();
            let tco = tco(r);
            (format!("{cut}… {tco}"), 113usize, Some(tco))
        } else if is_rt && full_chars > 140 {
            let cut: String = tb.s.chars().take(139).collect();
            (format!("{cut}…"), 139usize, None)
        } else {
            (tb.s.clone(), usize::MAX, None)
        };

        let source = *r.pick(SOURCES);
        let place = if r.chance(0.03) { Some(*r.pick(PLACES)) } else { None };
        let is_edit = r.chance(0.03);
        let initial_id = if is_edit { past_snowflake(r, ms, 10_000, 1_700_000) } else { id };

        let mut o = Obj::new(out);
        o.str("created_at", &twitter_date(ms)).num("id", id).str("id_str", &id.to_string()).str("text", &text);
        if !is_rt {
            let shown = if extended { 140 } else { full_chars };
            o.arr("display_text_range", |a| {
                a.num(0).num(shown);
            });
        }
        o.str("source", source).bool("truncated", extended);
        match &reply_to {
            Some((rid, uid, sn)) => {
                o.num("in_reply_to_status_id", rid)
                    .str("in_reply_to_status_id_str", &rid.to_string())
                    .num("in_reply_to_user_id", uid)
                    .str("in_reply_to_user_id_str", &uid.to_string())
                    .str("in_reply_to_screen_name", sn);
            }
            None => {
                o.null("in_reply_to_status_id")
                    .null("in_reply_to_status_id_str")
                    .null("in_reply_to_user_id")
                    .null("in_reply_to_user_id_str")
                    .null("in_reply_to_screen_name");
            }
        }
        o.with("user", |out| self.write_user(out, user_idx));
        match place {
            Some(p) => {
                o.obj("geo", |o| {
                    o.str("type", "Point").arr("coordinates", |a| {
                        a.num(p.5).num(p.4);
                    });
                })
                .obj("coordinates", |o| {
                    o.str("type", "Point").arr("coordinates", |a| {
                        a.num(p.4).num(p.5);
                    });
                })
                .obj("place", |o| write_place(o, p));
            }
            None => {
                o.null("geo").null("coordinates").null("place");
            }
        }
        o.null("contributors");
        if is_rt {
            o.raw("retweeted_status", &embedded);
        }
        if is_quote {
            if let Some((oid, _, _)) = &orig {
                o.num("quoted_status_id", oid).str("quoted_status_id_str", &oid.to_string());
            }
            o.raw("quoted_status", &embedded);
        }
        o.bool("is_quote_status", is_quote);
        if extended {
            o.obj("extended_tweet", |o| {
                o.str("full_text", &tb.s)
                    .arr("display_text_range", |a| {
                        a.num(0).num(full_chars);
                    })
                    .obj("entities", |o| tb.write_entities(o, usize::MAX, None));
            });
        }
        o.num("quote_count", r.below(50))
            .num("reply_count", r.below(80))
            .num("retweet_count", r.below(5000))
            .num("favorite_count", r.below(20000))
            .obj("entities", |o| tb.write_entities(o, text_entities_end, web_url.as_deref().map(|u| (u, id))))
            .bool("favorited", false)
            .bool("retweeted", false);
        if tb.has_url {
            o.bool("possibly_sensitive", false);
        }
        o.str("filter_level", "low").str("lang", lang.code);
        o.obj("edit_history", |o| {
            o.str("initial_tweet_id", &initial_id.to_string()).arr("edit_tweet_ids", |a| {
                if is_edit {
                    a.str(&initial_id.to_string());
                }
                a.str(&id.to_string());
            });
        })
        .obj("edit_controls", |o| {
            o.num("edits_remaining", if is_edit { 4 } else { 5 })
                .bool("is_edit_eligible", !is_rt && reply_to.is_none())
                .num("editable_until_ms", snowflake_ms(initial_id) + 1_800_000);
        });
        if top {
            if self.kind == StreamKind::PowerTrack {
                o.arr("matching_rules", |a| {
                    let rule = 1_000_000_000_000_000_000 + (self.stream_word % 7) * 1_000_003;
                    a.obj(|o| {
                        o.str("tag", "brand").num("id", rule).str("id_str", &rule.to_string());
                    });
                });
            }
            o.str("timestamp_ms", &ms.to_string());
        }
        o.end();
    }

    /// An embedded original Post by a given user; returns its text.
    fn write_post_with_user(&self, out: &mut String, id: u64, ms: i64, r: &mut Rng, user_idx: u64) -> String {
        let lang = pick_lang(r);
        let mut tb = TextBuilder::default();
        tb.push(&words(r, lang, 3, 20));
        if r.chance(0.5) {
            tb.push(" ");
            tb.hashtag(r.pick_str(HASHTAGS));
        }
        let source = *r.pick(SOURCES);
        let mut o = Obj::new(out);
        o.str("created_at", &twitter_date(ms))
            .num("id", id)
            .str("id_str", &id.to_string())
            .str("text", &tb.s)
            .arr("display_text_range", |a| {
                a.num(0).num(tb.chars);
            })
            .str("source", source)
            .bool("truncated", false)
            .null("in_reply_to_status_id")
            .null("in_reply_to_status_id_str")
            .null("in_reply_to_user_id")
            .null("in_reply_to_user_id_str")
            .null("in_reply_to_screen_name");
        o.with("user", |out| self.write_user(out, user_idx));
        o.null("geo")
            .null("coordinates")
            .null("place")
            .null("contributors")
            .bool("is_quote_status", false)
            .num("quote_count", r.below(500))
            .num("reply_count", r.below(800))
            .num("retweet_count", r.below(50_000))
            .num("favorite_count", r.below(90_000))
            .obj("entities", |o| tb.write_entities(o, usize::MAX, None))
            .bool("favorited", false)
            .bool("retweeted", false)
            .str("filter_level", "low")
            .str("lang", lang.code)
            .obj("edit_history", |o| {
                o.str("initial_tweet_id", &id.to_string()).arr("edit_tweet_ids", |a| {
                    a.str(&id.to_string());
                });
            })
            .obj("edit_controls", |o| {
                o.num("edits_remaining", 5).bool("is_edit_eligible", true).num("editable_until_ms", ms + 1_800_000);
            });
        o.end();
        tb.s
    }

    // ----- likes -----

    fn write_like(&self, out: &mut String, id: u128, ms: i64, r: &mut Rng) {
        let liked_ms = ms - r.range(1_000, 2 * 86_400_000) as i64;
        let liked_id = snowflake(liked_ms, r.below(1024), r.below(4096));
        let liker = user_index(r);
        let mut r2 = Rng::from_words(&[self.seed, 0x0816, liked_id]);
        let author = user_index(&mut r2);
        let mut r3 = Rng::from_words(&[self.seed, 0x0817, liked_id]);
        let mut fav = String::with_capacity(2048);
        self.write_post_with_user(&mut fav, liked_id, liked_ms, &mut r3, author);
        let mut user = String::with_capacity(1536);
        self.write_user(&mut user, liker);
        let mut o = Obj::new(out);
        o.str("id", &format!("{id:032x}"))
            .str("created_at", &twitter_date(ms))
            .num("timestamp_ms", ms)
            .raw("favorited_status", &fav)
            .raw("user", &user);
        o.end();
    }

    // ----- compliance -----

    fn write_compliance(&self, out: &mut String, ms: i64, r: &mut Rng) {
        let uid = self.user_id(r.below(USERS));
        let ts = ms.to_string();
        let mut o = Obj::new(out);
        match r.below(5) {
            0 => {
                let up_to = past_snowflake(r, ms, 1_000, 30 * 86_400_000);
                o.obj("scrub_geo", |o| {
                    o.num("user_id", uid)
                        .str("user_id_str", &uid.to_string())
                        .num("up_to_status_id", up_to)
                        .str("up_to_status_id_str", &up_to.to_string())
                        .str("timestamp_ms", &ts);
                });
            }
            1 => {
                let sid = past_snowflake(r, ms, 1_000, 30 * 86_400_000);
                o.obj("status_withheld", |o| {
                    o.num("id", sid)
                        .num("user_id", uid)
                        .arr("withheld_in_countries", |a| {
                            a.str("DE").str("FR");
                        })
                        .str("timestamp_ms", &ts);
                });
            }
            2 => {
                o.obj("user_withheld", |o| {
                    o.num("id", uid)
                        .arr("withheld_in_countries", |a| {
                            a.str("TR");
                        })
                        .str("timestamp_ms", &ts);
                });
            }
            3 => {
                o.obj("user_protect", |o| {
                    o.num("id", uid).str("id_str", &uid.to_string()).str("timestamp_ms", &ts);
                });
            }
            _ => {
                o.obj("user_delete", |o| {
                    o.num("id", uid).str("id_str", &uid.to_string()).str("timestamp_ms", &ts);
                });
            }
        }
        o.end();
    }
}

/// Number of distinct users.
const USERS: u64 = 5_000_000;

/// A skewed user pick: a few users post a lot.
fn user_index(r: &mut Rng) -> u64 {
    let u = r.unit();
    (u * u * u * USERS as f64) as u64
}

fn pick_lang(r: &mut Rng) -> &'static crate::words::Lang {
    let total: u32 = LANGS.iter().map(|l| l.weight).sum();
    let mut x = r.below(u64::from(total)) as u32;
    for l in LANGS {
        if x < l.weight {
            return l;
        }
        x -= l.weight;
    }
    &LANGS[0]
}

fn words(r: &mut Rng, lang: &crate::words::Lang, min: u64, max: u64) -> String {
    let n = r.range(min, max);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 && lang.spaced {
            s.push(' ');
        }
        s.push_str(r.pick_str(lang.words));
    }
    s
}

fn past_snowflake(r: &mut Rng, ms: i64, min_ago: u64, max_ago: u64) -> u64 {
    let t = ms - r.range(min_ago, max_ago) as i64;
    snowflake(t, r.below(1024), r.below(4096))
}

fn tco(r: &mut Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from("https://t.co/");
    for _ in 0..10 {
        s.push(A[r.below(A.len() as u64) as usize] as char);
    }
    s
}

fn write_place(o: &mut Obj<'_>, p: (&str, &str, &str, &str, f64, f64)) {
    let id = format!("{:016x}", fnv1a64(p.0.as_bytes()));
    o.str("id", &id)
        .str("url", &format!("https://api.twitter.com/1.1/geo/id/{id}.json"))
        .str("place_type", "city")
        .str("name", p.1)
        .str("full_name", p.0)
        .str("country_code", p.3)
        .str("country", p.2)
        .obj("bounding_box", |o| {
            o.str("type", "Polygon").arr("coordinates", |a| {
                let (x, y) = (p.4, p.5);
                a.raw(&format!("[[{x},{y}],[{x},{}],[{},{}],[{},{y}]]", y + 0.1, x + 0.1, y + 0.1, x + 0.1));
            });
        })
        .obj("attributes", |_| {});
}

fn write_delete(out: &mut String, status_id: u64, user_id: u64, ms: i64) {
    let mut o = Obj::new(out);
    o.obj("delete", |o| {
        o.obj("status", |o| {
            o.num("id", status_id)
                .str("id_str", &status_id.to_string())
                .num("user_id", user_id)
                .str("user_id_str", &user_id.to_string());
        })
        .str("timestamp_ms", &ms.to_string());
    });
    o.end();
}

fn write_unlike(out: &mut String, tweet_id: u64, user_id: u64, ms: i64) {
    let mut o = Obj::new(out);
    o.obj("delete", |o| {
        o.obj("favorite", |o| {
            o.num("tweet_id", tweet_id)
                .str("tweet_id_str", &tweet_id.to_string())
                .num("user_id", user_id)
                .str("user_id_str", &user_id.to_string());
        })
        .str("timestamp_ms", &ms.to_string());
    });
    o.end();
}

/// Text with its entities and their indices (in code points, as Twitter
/// counts them).
#[derive(Default)]
struct TextBuilder {
    s: String,
    chars: usize,
    hashtags: Vec<(String, usize, usize)>,
    mentions: Vec<(String, u64, usize, usize)>,
    urls: Vec<(String, String, String, usize, usize)>,
    has_url: bool,
}

impl TextBuilder {
    fn push(&mut self, t: &str) {
        self.s.push_str(t);
        self.chars += t.chars().count();
    }

    fn hashtag(&mut self, tag: &str) {
        let start = self.chars;
        self.push("#");
        self.push(tag);
        self.hashtags.push((tag.to_string(), start, self.chars));
    }

    fn mention(&mut self, screen: &str, id: u64) {
        let start = self.chars;
        self.push("@");
        self.push(screen);
        self.mentions.push((screen.to_string(), id, start, self.chars));
    }

    fn url(&mut self, expanded: &str, display: &str, r: &mut Rng) {
        let t = tco(r);
        let start = self.chars;
        self.push(&t);
        self.urls.push((t, expanded.to_string(), display.to_string(), start, self.chars));
        self.has_url = true;
    }

    /// Entities whose end is at most `limit`; `web` adds the
    /// `twitter.com/i/web/status` link of a truncated Post.
    fn write_entities(&self, o: &mut Obj<'_>, limit: usize, web: Option<(&str, u64)>) {
        o.arr("hashtags", |a| {
            for (t, s, e) in self.hashtags.iter().filter(|h| h.2 <= limit) {
                a.obj(|o| {
                    o.str("text", t).arr("indices", |a| {
                        a.num(s).num(e);
                    });
                });
            }
        })
        .arr("urls", |a| {
            for (t, x, d, s, e) in self.urls.iter().filter(|u| u.4 <= limit) {
                a.obj(|o| {
                    o.str("url", t)
                        .str("expanded_url", x)
                        .str("display_url", d)
                        .arr("indices", |a| {
                            a.num(s).num(e);
                        })
                        .obj("unwound", |o| {
                            o.str("url", x).num("status", 200).str("title", d).str("description", d);
                        });
                });
            }
            if let Some((u, id)) = web {
                a.obj(|o| {
                    o.str("url", u)
                        .str("expanded_url", &format!("https://twitter.com/i/web/status/{id}"))
                        .str("display_url", &format!("twitter.com/i/web/status/{}…", &id.to_string()[..1]))
                        .arr("indices", |a| {
                            a.num(116).num(139);
                        });
                });
            }
        })
        .arr("user_mentions", |a| {
            for (sn, id, s, e) in self.mentions.iter().filter(|m| m.3 <= limit) {
                a.obj(|o| {
                    o.str("screen_name", sn).str("name", sn).num("id", id).str("id_str", &id.to_string()).arr(
                        "indices",
                        |a| {
                            a.num(s).num(e);
                        },
                    );
                });
            }
        })
        .arr("symbols", |_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(h, 0xbbd2_de64_11f4_51c9, "generator output changed: {h:#018x}");
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
        as_spec.format = crate::stream::Format::ActivityStreams;
        streams.push(as_spec);
        for mut spec in streams {
            spec.rate = 50.0;
            let activity_streams = spec.format == crate::stream::Format::ActivityStreams;
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
            "as:share",
            "as:post",
        ] {
            assert!(seen.get(kind).copied().unwrap_or(0) > 0, "no {kind} in the pinned minute: {seen:?}");
        }
        assert_eq!(h, 0xf00f_4e55_3875_0522, "generator output changed: {h:#018x}");
    }
}
