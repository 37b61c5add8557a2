//! Compliant truth: what a compliant export of a range must contain, byte
//! for byte, following the team's compliance policy (v1): the oracle an
//! archive's compliant export is tested against.
//!
//! It is an independent implementation of the policy's text: it reads the
//! compliance messages the generator wrote (as JSON, with serde_json), never
//! the generator's decisions, and shares nothing with the archiver.
//!
//! - The **ledger** ([`Ledger`]) is built from every compliance message of
//!   the stream (all partitions) whose activity time lies in the ledger
//!   range: Post deletes (native, and Activity Streams `verb: delete`),
//!   unlikes, the user events per family (delete, protect, suspend: the
//!   event with the greatest `timestamp_ms` decides, a hiding event wins a
//!   tie), `scrub_geo`, `status_withheld`, `user_withheld`. Only its final
//!   state matters, never the order of events.
//! - Each record of the export range (optionally one partition), in
//!   activity-time order, is then [`Ledger::apply`]-ed, rules in order:
//!   1. left out if it involves a deleted Post or a hidden user (a Post
//!      involves itself, `retweeted_status`, `quoted_status` and
//!      `retweeted_status.quoted_status`; a like its liker, its
//!      `favorited_status` and that Post's `quoted_status` /
//!      `retweeted_status`; an Activity Streams Post its `id` tag and
//!      `actor.id`, and its `object` when the verb is `share`);
//!   2. a like left out if an unlike of (its `favorited_status` ID, its
//!      liker) has `timestamp_ms` at or after the like's;
//!   3. if it involves a withheld Post or user: left out
//!      ([`Withheld::Drop`], the default), or kept with its top-level
//!      `withheld_in_countries` set to the sorted, de-duplicated union of
//!      the countries that apply ([`Withheld::Keep`]: the value replaced, or
//!      `,"withheld_in_countries":[..]` inserted before the top-level
//!      object's closing `}`);
//!   4. every Post object (the record or an embedded Post) by a `scrub_geo`
//!      user with an ID at most its `up_to_status_id` has the values of its
//!      `geo`, `coordinates` and `place` keys replaced by `null` (absent
//!      keys stay absent);
//!   5. compliance messages themselves are kept as received.
//!
//!   Edits are byte splices (`spans`): every other byte is as received.

mod spans;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde_json::Value;

use crate::clock::StreamMs;
use crate::generator::{Generator, Key};
use crate::truth::Fingerprint;

/// What a compliant export does with a withheld record (rule 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Withheld {
    /// Left out (the default).
    #[default]
    Drop,
    /// Kept, with `withheld_in_countries` set.
    Keep,
}

impl FromStr for Withheld {
    type Err = String;
    fn from_str(s: &str) -> Result<Withheld, String> {
        match s {
            "drop" => Ok(Withheld::Drop),
            "keep" => Ok(Withheld::Keep),
            _ => Err(format!("{s:?}: drop or keep expected")),
        }
    }
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Withheld::Drop => "drop",
            Withheld::Keep => "keep",
        })
    }
}

/// A compliant export to compute: the export range `[from_ms, to_ms)` of
/// activity time (optionally one partition), the ledger range
/// `[ledger_from_ms, ledger_to_ms)` (the activity times whose compliance
/// messages the archive holds, of every partition) and the withheld option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompliantQuery {
    pub from_ms: StreamMs,
    pub to_ms: StreamMs,
    pub ledger_from_ms: StreamMs,
    pub ledger_to_ms: StreamMs,
    pub partition: Option<u32>,
    pub withheld: Withheld,
}

impl CompliantQuery {
    /// The export of `[from_ms, to_ms)` with the ledger of the same range,
    /// every partition, withheld records dropped.
    pub fn new(from_ms: StreamMs, to_ms: StreamMs) -> CompliantQuery {
        CompliantQuery {
            from_ms,
            to_ms,
            ledger_from_ms: from_ms,
            ledger_to_ms: to_ms,
            partition: None,
            withheld: Withheld::Drop,
        }
    }
}

/// One record of a compliant export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompliantEntry {
    /// Activity time (ms since the Unix epoch).
    pub time_ms: StreamMs,
    pub key: Key,
    /// The compliant bytes (as received unless a rule rewrote them), without
    /// `\r\n`.
    pub line: Bytes,
    /// The fingerprint of `line`.
    pub fingerprint: Fingerprint,
}

impl CompliantEntry {
    /// `KIND KEY`, as `truth` prints it.
    pub fn truth_line(&self) -> String {
        self.key.truth_line()
    }
}

/// What the rules did to the records of the range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompliantCounts {
    /// Records in the export (compliance messages included).
    pub kept: u64,
    /// Compliance messages, kept as received (rule 5).
    pub messages: u64,
    /// Left out: a deleted Post or a hidden user (rule 1).
    pub deleted: u64,
    /// Left out: an unliked like (rule 2).
    pub unliked: u64,
    /// Left out: withheld, with [`Withheld::Drop`] (rule 3).
    pub withheld_dropped: u64,
    /// Kept with `withheld_in_countries` set, with [`Withheld::Keep`] (rule 3).
    pub withheld_marked: u64,
    /// Kept with geo values nulled: records whose bytes rule 4 changed.
    pub geo_scrubbed: u64,
}

/// A compliant export: its records in activity-time order, and the counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompliantTruth {
    pub entries: Vec<CompliantEntry>,
    pub counts: CompliantCounts,
}

/// What a compliant export must contain for `q`.
pub fn compliant_truth(gen: &Generator, q: &CompliantQuery) -> CompliantTruth {
    let mut truth = CompliantTruth::default();
    if q.to_ms <= q.from_ms {
        return truth;
    }
    let ledger = Ledger::of(gen, q.ledger_from_ms, q.ledger_to_ms);
    for a in gen.range(q.from_ms, q.to_ms, q.partition) {
        let c = &mut truth.counts;
        let line = match ledger.apply(&a.line, q.withheld) {
            Outcome::Message => {
                c.messages += 1;
                a.line
            }
            Outcome::Deleted => {
                c.deleted += 1;
                continue;
            }
            Outcome::Unliked => {
                c.unliked += 1;
                continue;
            }
            Outcome::WithheldDropped => {
                c.withheld_dropped += 1;
                continue;
            }
            Outcome::Kept { line, withheld_marked, geo_scrubbed } => {
                c.withheld_marked += u64::from(withheld_marked);
                c.geo_scrubbed += u64::from(geo_scrubbed);
                line.map(Bytes::from).unwrap_or(a.line)
            }
        };
        c.kept += 1;
        let fingerprint = Fingerprint::of(&line);
        truth.entries.push(CompliantEntry { time_ms: a.time_ms, key: a.key, line, fingerprint });
    }
    truth
}

/// The families of user events; each has a hiding event and its undo.
const FAMILIES: [(&str, &str); 3] =
    [("user_delete", "user_undelete"), ("user_protect", "user_unprotect"), ("user_suspend", "user_unsuspend")];

/// The final state of a stream's compliance messages.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    deleted: HashSet<u64>,
    /// Per user and family: the deciding event's time and whether it hides.
    users: HashMap<u64, [Option<(i64, bool)>; 3]>,
    /// Per (liked Post, liker): the latest unlike's time.
    unlikes: HashMap<(u64, u64), i64>,
    withheld_posts: HashMap<u64, BTreeSet<String>>,
    withheld_users: HashMap<u64, BTreeSet<String>>,
    /// Per user: the greatest `up_to_status_id`.
    scrub_geo: HashMap<u64, u64>,
}

/// What a record becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A compliance message (or anything that is not a Post or a like):
    /// kept as received.
    Message,
    Deleted,
    Unliked,
    WithheldDropped,
    /// Kept: `line` holds the rewritten bytes if a rule rewrote them.
    Kept {
        line: Option<Vec<u8>>,
        withheld_marked: bool,
        geo_scrubbed: bool,
    },
}

/// An ID from `obj[key_str]` (a decimal string) when present, else
/// `obj[key]` (an integer).
fn id_field(obj: &Value, key: &str) -> Option<u64> {
    match obj.get(format!("{key}_str")).and_then(Value::as_str) {
        Some(s) => s.parse().ok(),
        None => obj.get(key).and_then(Value::as_u64),
    }
}

fn ms_field(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        v => v.as_i64(),
    }
}

/// The number after `prefix` in an Activity Streams ID.
fn tagged_id(v: &Value, prefix: &str) -> Option<u64> {
    v.as_str()?.strip_prefix(prefix)?.parse().ok()
}

const AS_POST: &str = "tag:search.twitter.com,2005:";
const AS_USER: &str = "id:twitter.com:";

fn countries(v: &Value) -> impl Iterator<Item = String> + '_ {
    v["withheld_in_countries"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_string))
}

impl Ledger {
    /// The ledger of `gen`'s compliance messages with activity time in
    /// `[from_ms, to_ms)`, every partition.
    pub fn of(gen: &Generator, from_ms: StreamMs, to_ms: StreamMs) -> Ledger {
        let mut ledger = Ledger::default();
        if to_ms > from_ms {
            for a in gen.messages(from_ms, to_ms) {
                ledger.add(&a.line);
            }
        }
        ledger
    }

    /// Add one line to the ledger; anything that is not a compliance message
    /// is ignored.
    pub fn add(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(line) else { return };
        if let Some(d) = v.get("delete") {
            if let Some(id) = d.get("status").and_then(|s| id_field(s, "id")) {
                self.deleted.insert(id);
            }
            if let Some(f) = d.get("favorite") {
                if let (Some(tweet), Some(user), Some(ts)) =
                    (id_field(f, "tweet_id"), id_field(f, "user_id"), d.get("timestamp_ms").and_then(ms_field))
                {
                    let at = self.unlikes.entry((tweet, user)).or_insert(ts);
                    *at = (*at).max(ts);
                }
            }
        } else if v["verb"] == "delete" {
            if let Some(id) = tagged_id(&v["object"]["id"], AS_POST) {
                self.deleted.insert(id);
            }
        } else if let Some(s) = v.get("scrub_geo") {
            if let (Some(user), Some(up_to)) = (id_field(s, "user_id"), id_field(s, "up_to_status_id")) {
                let at = self.scrub_geo.entry(user).or_insert(up_to);
                *at = (*at).max(up_to);
            }
        } else if let Some(w) = v.get("status_withheld") {
            if let Some(id) = id_field(w, "id") {
                self.withheld_posts.entry(id).or_default().extend(countries(w));
            }
        } else if let Some(w) = v.get("user_withheld") {
            if let Some(id) = id_field(w, "id") {
                self.withheld_users.entry(id).or_default().extend(countries(w));
            }
        } else {
            for (family, (hide, undo)) in FAMILIES.iter().enumerate() {
                for (name, hides) in [(hide, true), (undo, false)] {
                    let Some(e) = v.get(*name) else { continue };
                    let (Some(user), Some(ts)) = (id_field(e, "id"), e.get("timestamp_ms").and_then(ms_field)) else {
                        continue;
                    };
                    let slot = &mut self.users.entry(user).or_default()[family];
                    let decides = match *slot {
                        None => true,
                        Some((t, h)) => ts > t || (ts == t && hides && !h),
                    };
                    if decides {
                        *slot = Some((ts, hides));
                    }
                }
            }
        }
    }

    /// Whether `user` is hidden: a family's deciding event hides.
    pub fn hidden(&self, user: u64) -> bool {
        self.users.get(&user).is_some_and(|f| f.iter().flatten().any(|(_, hides)| *hides))
    }

    /// Whether Post `id` is deleted.
    pub fn deleted(&self, id: u64) -> bool {
        self.deleted.contains(&id)
    }

    /// What the policy makes of `line` (a record of the export).
    pub fn apply(&self, line: &[u8], withheld: Withheld) -> Outcome {
        let Ok(v) = serde_json::from_slice::<Value>(line) else { return Outcome::Message };
        let Some(rec) = Record::of(&v) else { return Outcome::Message };
        // Rule 1.
        if rec.posts.iter().any(|p| p.id.is_some_and(|id| self.deleted(id))) || rec.users().any(|u| self.hidden(u)) {
            return Outcome::Deleted;
        }
        // Rule 2.
        if let Some((liked, liker, ts)) = rec.like {
            if self.unlikes.get(&(liked, liker)).is_some_and(|u| *u >= ts) {
                return Outcome::Unliked;
            }
        }
        // Rule 3.
        let mut cs = BTreeSet::new();
        for p in &rec.posts {
            if let Some(w) = p.id.and_then(|id| self.withheld_posts.get(&id)) {
                cs.extend(w.iter().cloned());
            }
        }
        let involved_users: BTreeSet<u64> = rec.users().collect();
        let mut withheld_applies =
            rec.posts.iter().any(|p| p.id.is_some_and(|id| self.withheld_posts.contains_key(&id)));
        for u in involved_users {
            if let Some(w) = self.withheld_users.get(&u) {
                withheld_applies = true;
                cs.extend(w.iter().cloned());
            }
        }
        if withheld_applies && withheld == Withheld::Drop {
            return Outcome::WithheldDropped;
        }
        let scrub_applies = rec.posts.iter().any(
            |p| matches!((p.id, p.user.and_then(|u| self.scrub_geo.get(&u))), (Some(id), Some(up_to)) if id <= *up_to),
        );
        if !withheld_applies && !scrub_applies {
            return Outcome::Kept { line: None, withheld_marked: false, geo_scrubbed: false };
        }
        let mut edits = Vec::new();
        let top = spans::object_at(line, 0);
        if withheld_applies {
            let quoted: Vec<String> = cs.iter().filter_map(|c| serde_json::to_string(c).ok()).collect();
            let list = format!("[{}]", quoted.join(","));
            if let Some(top) = &top {
                match top.get("withheld_in_countries") {
                    Some(m) => edits.push((m.start, m.end, list.into_bytes())),
                    None => {
                        edits.push((top.close, top.close, format!(",\"withheld_in_countries\":{list}").into_bytes()))
                    }
                }
            }
        }
        // Rule 4.
        let mut scrub_edits = Vec::new();
        for p in &rec.posts {
            let (Some(id), Some(user)) = (p.id, p.user) else { continue };
            if self.scrub_geo.get(&user).is_none_or(|up_to| id > *up_to) {
                continue;
            }
            let Some(obj) = top.as_ref().and_then(|t| object_by_path(line, t, p.path)) else { continue };
            for key in ["geo", "coordinates", "place"] {
                if let Some(m) = obj.get(key) {
                    if &line[m.start..m.end] != b"null" {
                        scrub_edits.push((m.start, m.end, b"null".to_vec()));
                    }
                }
            }
        }
        let geo_scrubbed = !scrub_edits.is_empty();
        edits.extend(scrub_edits);
        let rewritten = (!edits.is_empty()).then(|| spans::splice(line, edits));
        Outcome::Kept { line: rewritten, withheld_marked: withheld_applies, geo_scrubbed }
    }
}

/// The object at `path` (member keys from the top-level object).
fn object_by_path(line: &[u8], top: &spans::ObjectSpans, path: &[&str]) -> Option<spans::ObjectSpans> {
    let mut cur: Option<spans::ObjectSpans> = None;
    for key in path {
        let m = cur.as_ref().unwrap_or(top).get(key)?;
        cur = Some(spans::object_at(line, m.start)?);
    }
    match cur {
        Some(o) => Some(o),
        None => spans::object_at(line, 0),
    }
}

/// A Post object a record involves: where it is, its ID and author.
struct PostRef {
    path: &'static [&'static str],
    id: Option<u64>,
    user: Option<u64>,
}

/// What a record involves.
struct Record {
    posts: Vec<PostRef>,
    /// A like's liker.
    liker: Option<u64>,
    /// A like: (favorited Post ID, liker, `timestamp_ms`).
    like: Option<(u64, u64, i64)>,
}

/// The embedded Posts of a native Post, by path.
const POST_PATHS: [&[&str]; 4] =
    [&[], &["retweeted_status"], &["quoted_status"], &["retweeted_status", "quoted_status"]];
/// The Posts a like involves, by path.
const LIKE_PATHS: [&[&str]; 3] =
    [&["favorited_status"], &["favorited_status", "quoted_status"], &["favorited_status", "retweeted_status"]];

fn at_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k)).filter(|v| v.is_object())
}

impl Record {
    /// The Posts and users `v` involves; `None` for anything but a Post or
    /// a like.
    fn of(v: &Value) -> Option<Record> {
        let native = |paths: &[&'static [&'static str]]| -> Vec<PostRef> {
            paths
                .iter()
                .filter_map(|path| {
                    let p = at_path(v, path)?;
                    Some(PostRef { path, id: id_field(p, "id"), user: p.get("user").and_then(|u| id_field(u, "id")) })
                })
                .collect()
        };
        if v.get("favorited_status").is_some() {
            let posts = native(&LIKE_PATHS);
            let liker = v.get("user").and_then(|u| id_field(u, "id"));
            let like = match (posts.first().and_then(|p| p.id), liker, v.get("timestamp_ms").and_then(ms_field)) {
                (Some(liked), Some(liker), Some(ts)) => Some((liked, liker, ts)),
                _ => None,
            };
            return Some(Record { posts, liker, like });
        }
        if v.get("id_str").is_some() && v.get("user").is_some() {
            return Some(Record { posts: native(&POST_PATHS), liker: None, like: None });
        }
        if matches!(v["verb"].as_str(), Some("post" | "share")) {
            let as_post = |path: &'static [&'static str], p: &Value| PostRef {
                path,
                id: tagged_id(&p["id"], AS_POST),
                user: tagged_id(&p["actor"]["id"], AS_USER),
            };
            let mut posts = vec![as_post(&[], v)];
            if v["verb"] == "share" {
                if let Some(o) = v.get("object").filter(|o| o.is_object()) {
                    posts.push(as_post(&["object"], o));
                }
            }
            return Some(Record { posts, liker: None, like: None });
        }
        None
    }

    fn users(&self) -> impl Iterator<Item = u64> + '_ {
        self.posts.iter().filter_map(|p| p.user).chain(self.liker)
    }
}
