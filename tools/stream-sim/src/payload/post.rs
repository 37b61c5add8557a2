//! Posts. A stream Post is drawn in steps, each its own function, in this
//! order (the order of the draws is part of the output): its [`Shape`]
//! (author, language, retweet, quote, reply), the embedded [`Original`] of a
//! retweet or quote, its text, the text as shown ([`Shown`]: whole, or cut at
//! 140 characters), the [`Details`] (source, place, edit); then it is
//! written, key by key in the order of real payloads.

use super::text::TextBuilder;
use super::{geo_tagged, pick_lang, tco, user_index, words, Writer};
use crate::clock::twitter_date;
use crate::json::Obj;
use crate::rng::{fnv1a64, Rng};
use crate::snowflake::{past_snowflake, snowflake, snowflake_ms};
use crate::stream::StreamKind;
use crate::words::{Lang, DOMAINS, HASHTAGS, PLACES, SOURCES};

/// A place of [`PLACES`]: full name, name, country, country code, longitude,
/// latitude.
type Place = (&'static str, &'static str, &'static str, &'static str, f64, f64);

/// An original Post, embedded in a retweet, a quote or a like.
pub(super) struct Original {
    id: u64,
    user_idx: u64,
    text: String,
    /// The Post object.
    pub json: String,
}

/// What a stream Post is: drawn first.
struct Shape {
    user_idx: u64,
    lang: &'static Lang,
    retweet: bool,
    quote: bool,
    reply: bool,
}

impl Shape {
    fn draw(r: &mut Rng, user_idx: u64) -> Shape {
        let lang = pick_lang(r);
        let kind_roll = r.unit();
        let retweet = kind_roll < 0.28;
        let quote = !retweet && kind_roll < 0.36;
        let reply = !retweet && r.chance(0.15);
        Shape { user_idx, lang, retweet, quote, reply }
    }
}

/// The Post a reply answers.
struct ReplyTo {
    status_id: u64,
    user_id: u64,
    screen_name: String,
}

/// The text as the `text` field shows it: whole, or cut.
struct Shown {
    text: String,
    /// Entities that end past this are left out of `entities`.
    entities_end: usize,
    /// The t.co link a cut long Post ends with.
    web_url: Option<String>,
    /// A long Post, cut at 140 characters with the whole text in
    /// `extended_tweet` (retweets are cut without it).
    extended: bool,
}

impl Shown {
    fn of(tb: &TextBuilder, retweet: bool, r: &mut Rng) -> Shown {
        let extended = !retweet && tb.chars > 140;
        if extended {
            let cut: String = tb.s.chars().take(113).collect();
            let tco = tco(r);
            Shown { text: format!("{cut}… {tco}"), entities_end: 113, web_url: Some(tco), extended }
        } else if retweet && tb.chars > 140 {
            let cut: String = tb.s.chars().take(139).collect();
            Shown { text: format!("{cut}…"), entities_end: 139, web_url: None, extended }
        } else {
            Shown { text: tb.s.clone(), entities_end: usize::MAX, web_url: None, extended }
        }
    }
}

/// What a Post draws after its text.
struct Details {
    source: &'static str,
    place: Option<Place>,
    /// The earlier ID this Post is an edit of.
    edit_of: Option<u64>,
}

impl Details {
    fn draw(r: &mut Rng, ms: i64, geo_tagged: bool) -> Details {
        let source = *r.pick(SOURCES);
        let place = if geo_tagged { Some(*r.pick(PLACES)) } else { None };
        let edit_of = if r.chance(0.03) { Some(past_snowflake(r, ms, 10_000, 1_700_000)) } else { None };
        Details { source, place, edit_of }
    }
}

impl Writer {
    /// A Post of the stream by user `author_idx` (drawn by the generator):
    /// it may retweet or quote an original, and carries `timestamp_ms` (and
    /// `matching_rules` on PowerTrack); a place when [`geo_tagged`].
    pub(crate) fn write_post(&self, out: &mut String, id: u64, ms: i64, author_idx: u64, r: &mut Rng) {
        let shape = Shape::draw(r, author_idx);
        let original = if shape.retweet || shape.quote { Some(self.draw_original(ms, r)) } else { None };
        let (tb, reply_to) = match &original {
            Some(o) if shape.retweet => (self.retweet_text(o), None),
            quoted => self.own_text(&shape, quoted.as_ref(), ms, r),
        };
        let shown = Shown::of(&tb, shape.retweet, r);
        let details = Details::draw(r, ms, geo_tagged(self.seed, id));
        let post = Post { id, ms, shape, original, tb, reply_to, shown, details };
        self.write_post_json(out, &post, r);
    }

    /// The original of a retweet or a quote, posted up to 3 days earlier.
    fn draw_original(&self, ms: i64, r: &mut Rng) -> Original {
        let orig_ms = ms - r.range(30_000, 3 * 86_400_000) as i64;
        let orig_id = snowflake(orig_ms, r.below(1024), r.below(4096));
        self.original(orig_id, orig_ms)
    }

    /// The original Post `id` of time `ms`: the same wherever it is
    /// embedded (its author and content derive from its ID).
    pub(super) fn original(&self, id: u64, ms: i64) -> Original {
        let mut r = Rng::from_words(&[self.seed, 0x0816, id]);
        let user_idx = user_index(&mut r);
        let mut r = Rng::from_words(&[self.seed, 0x0817, id]);
        let mut json = String::with_capacity(2048);
        let text = self.write_original(&mut json, id, ms, &mut r, user_idx);
        Original { id, user_idx, text, json }
    }

    /// `RT @author: text`.
    fn retweet_text(&self, o: &Original) -> TextBuilder {
        let mut tb = TextBuilder::default();
        let sn = self.screen_name(o.user_idx);
        tb.push("RT ");
        tb.mention(&sn, self.user_id(o.user_idx));
        tb.push(": ");
        tb.push(&o.text);
        tb
    }

    /// The text of a Post that is not a retweet: a mention if it replies,
    /// words, hashtags, and the link of the quoted Post or, sometimes, of a
    /// web page.
    fn own_text(
        &self,
        shape: &Shape,
        quoted: Option<&Original>,
        ms: i64,
        r: &mut Rng,
    ) -> (TextBuilder, Option<ReplyTo>) {
        let mut tb = TextBuilder::default();
        let mut reply_to = None;
        if shape.reply {
            let ruser = user_index(r);
            let screen_name = self.screen_name(ruser);
            let status_id = past_snowflake(r, ms, 5_000, 86_400_000);
            tb.mention(&screen_name, self.user_id(ruser));
            tb.push(" ");
            reply_to = Some(ReplyTo { status_id, user_id: self.user_id(ruser), screen_name });
        }
        let long = r.chance(0.15);
        let body = if long { words(r, shape.lang, 25, 60) } else { words(r, shape.lang, 3, 22) };
        tb.push(&body);
        for _ in 0..r.below(3) {
            tb.push(" ");
            tb.hashtag(r.pick_str(HASHTAGS));
        }
        if let Some(o) = quoted {
            let sn = self.screen_name(o.user_idx);
            tb.push(" ");
            tb.url(
                &format!("https://twitter.com/{sn}/status/{}", o.id),
                &format!("twitter.com/{sn}/status/{}…", &o.id.to_string()[..4]),
                r,
            );
        } else if r.chance(0.3) {
            let d = r.pick(DOMAINS);
            tb.push(" ");
            tb.url(&format!("https://{}/{}", d.0, r.below(1_000_000_000)), &format!("{}/…", d.0), r);
        }
        (tb, reply_to)
    }

    /// Write a stream Post; the counts are drawn as they are written.
    fn write_post_json(&self, out: &mut String, p: &Post, r: &mut Rng) {
        let Post { id, ms, shape, original, tb, reply_to, shown, details } = p;
        let mut o = Obj::new(out);
        o.str("created_at", &twitter_date(*ms)).num("id", id).str("id_str", &id.to_string()).str("text", &shown.text);
        if !shape.retweet {
            let chars = if shown.extended { 140 } else { tb.chars };
            o.arr("display_text_range", |a| {
                a.num(0).num(chars);
            });
        }
        o.str("source", details.source).bool("truncated", shown.extended);
        write_reply_fields(&mut o, reply_to.as_ref());
        o.with("user", |out| self.write_user(out, shape.user_idx));
        write_location(&mut o, details.place);
        o.null("contributors");
        if let Some(orig) = original {
            if shape.retweet {
                o.raw("retweeted_status", &orig.json);
            }
            if shape.quote {
                o.num("quoted_status_id", orig.id).str("quoted_status_id_str", &orig.id.to_string());
                o.raw("quoted_status", &orig.json);
            }
        }
        o.bool("is_quote_status", shape.quote);
        if shown.extended {
            o.obj("extended_tweet", |o| {
                o.str("full_text", &tb.s)
                    .arr("display_text_range", |a| {
                        a.num(0).num(tb.chars);
                    })
                    .obj("entities", |o| tb.write_entities(o, usize::MAX, None));
            });
        }
        let web = shown.web_url.as_deref().map(|u| (u, *id));
        o.num("quote_count", r.below(50))
            .num("reply_count", r.below(80))
            .num("retweet_count", r.below(5000))
            .num("favorite_count", r.below(20000))
            .obj("entities", |o| tb.write_entities(o, shown.entities_end, web))
            .bool("favorited", false)
            .bool("retweeted", false);
        if tb.has_url {
            o.bool("possibly_sensitive", false);
        }
        o.str("filter_level", "low").str("lang", shape.lang.code);
        let initial = details.edit_of.unwrap_or(*id);
        let eligible = !shape.retweet && reply_to.is_none();
        write_edit_fields(&mut o, *id, details.edit_of, eligible, snowflake_ms(initial) + 1_800_000);
        if self.kind == StreamKind::PowerTrack {
            o.arr("matching_rules", |a| {
                let rule = 1_000_000_000_000_000_000 + (self.stream_word % 7) * 1_000_003;
                a.obj(|o| {
                    o.str("tag", "brand").num("id", rule).str("id_str", &rule.to_string());
                });
            });
        }
        o.str("timestamp_ms", &ms.to_string());
        o.end();
    }

    /// Write an original Post by user `user_idx`; returns its text.
    fn write_original(&self, out: &mut String, id: u64, ms: i64, r: &mut Rng, user_idx: u64) -> String {
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
            .bool("truncated", false);
        write_reply_fields(&mut o, None);
        o.with("user", |out| self.write_user(out, user_idx));
        write_location(&mut o, None);
        o.null("contributors")
            .bool("is_quote_status", false)
            .num("quote_count", r.below(500))
            .num("reply_count", r.below(800))
            .num("retweet_count", r.below(50_000))
            .num("favorite_count", r.below(90_000))
            .obj("entities", |o| tb.write_entities(o, usize::MAX, None))
            .bool("favorited", false)
            .bool("retweeted", false)
            .str("filter_level", "low")
            .str("lang", lang.code);
        write_edit_fields(&mut o, id, None, true, ms + 1_800_000);
        o.end();
        tb.s
    }
}

/// Everything a stream Post is made of, as drawn.
struct Post {
    id: u64,
    ms: i64,
    shape: Shape,
    original: Option<Original>,
    tb: TextBuilder,
    reply_to: Option<ReplyTo>,
    shown: Shown,
    details: Details,
}

/// The `in_reply_to_*` fields (null when the Post is no reply).
fn write_reply_fields(o: &mut Obj<'_>, reply_to: Option<&ReplyTo>) {
    match reply_to {
        Some(ReplyTo { status_id, user_id, screen_name }) => {
            o.num("in_reply_to_status_id", status_id)
                .str("in_reply_to_status_id_str", &status_id.to_string())
                .num("in_reply_to_user_id", user_id)
                .str("in_reply_to_user_id_str", &user_id.to_string())
                .str("in_reply_to_screen_name", screen_name);
        }
        None => {
            o.null("in_reply_to_status_id")
                .null("in_reply_to_status_id_str")
                .null("in_reply_to_user_id")
                .null("in_reply_to_user_id_str")
                .null("in_reply_to_screen_name");
        }
    }
}

/// `geo`, `coordinates` and `place` (null without a place).
fn write_location(o: &mut Obj<'_>, place: Option<Place>) {
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
}

fn write_place(o: &mut Obj<'_>, p: Place) {
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

/// `edit_history` and `edit_controls`; `edit_of` is the earlier ID that
/// this Post edits.
fn write_edit_fields(o: &mut Obj<'_>, id: u64, edit_of: Option<u64>, eligible: bool, editable_until_ms: i64) {
    let initial = edit_of.unwrap_or(id);
    o.obj("edit_history", |o| {
        o.str("initial_tweet_id", &initial.to_string()).arr("edit_tweet_ids", |a| {
            if let Some(earlier) = edit_of {
                a.str(&earlier.to_string());
            }
            a.str(&id.to_string());
        });
    })
    .obj("edit_controls", |o| {
        o.num("edits_remaining", if edit_of.is_some() { 4 } else { 5 })
            .bool("is_edit_eligible", eligible)
            .num("editable_until_ms", editable_until_ms);
    });
}
