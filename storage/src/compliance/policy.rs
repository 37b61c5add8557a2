//! Applying a ledger to stored records: what a compliant reader leaves out
//! or rewrites (the rules are in the module doc of [`super`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

use super::event::{Action, Event, Family};
use super::json::{closing_brace, fields};
use crate::ActivityKind;

/// What to do with withheld Posts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WithheldMode {
    /// Leave them out (the default: the archive cannot know where its
    /// reader is).
    #[default]
    Drop,
    /// Keep them, with `withheld_in_countries` set to every country that
    /// applies, for a reader that filters by country.
    Keep,
}

/// Why a record is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// It is, retweets or quotes a deleted Post.
    DeletedPost,
    /// It involves a user hidden by `user_delete`, `user_protect` or
    /// `user_suspend` (not undone).
    HiddenUser(Family),
    /// A like withdrawn by an unlike.
    Unliked,
    /// Withheld, and [`WithheldMode::Drop`].
    Withheld,
}

/// The verdict on one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Kept with other bytes: geo removed (`scrub_geo`) and/or
    /// `withheld_in_countries` set ([`WithheldMode::Keep`]).
    Rewrite {
        bytes: Vec<u8>,
        geo_scrubbed: bool,
        withheld: bool,
    },
    Drop(Reason),
}

/// Counts of what a reader applied, for manifests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub kept: u64,
    pub deleted_posts: u64,
    pub hidden_users: u64,
    pub unliked: u64,
    pub withheld_dropped: u64,
    pub withheld_marked: u64,
    pub geo_scrubbed: u64,
}

impl Applied {
    pub fn count(&mut self, v: &Verdict) {
        match v {
            Verdict::Keep => self.kept += 1,
            Verdict::Rewrite { geo_scrubbed, withheld, .. } => {
                self.kept += 1;
                self.geo_scrubbed += u64::from(*geo_scrubbed);
                self.withheld_marked += u64::from(*withheld);
            }
            Verdict::Drop(Reason::DeletedPost) => self.deleted_posts += 1,
            Verdict::Drop(Reason::HiddenUser(_)) => self.hidden_users += 1,
            Verdict::Drop(Reason::Unliked) => self.unliked += 1,
            Verdict::Drop(Reason::Withheld) => self.withheld_dropped += 1,
        }
    }

    /// Records left out.
    pub fn dropped(&self) -> u64 {
        self.deleted_posts + self.hidden_users + self.unliked + self.withheld_dropped
    }
}

/// What a [`Policy`] holds, counted: what readers apply now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicySummary {
    pub deleted_posts: u64,
    pub deleted_users: u64,
    pub protected_users: u64,
    pub suspended_users: u64,
    /// (Post, user) pairs unliked.
    pub unlikes: u64,
    pub scrub_geo_users: u64,
    pub withheld_posts: u64,
    pub withheld_users: u64,
}

/// The state a ledger's events leave: built in any order, with the same
/// result (see [`Policy::add`]).
#[derive(Clone, Debug, Default)]
pub struct Policy {
    deleted_posts: HashSet<u64>,
    /// Per user and family, the deciding event: (time, hides).
    users: HashMap<u64, [Option<(i64, bool)>; 3]>,
    /// Per (Post, user), the latest unlike.
    unlikes: HashMap<(u64, u64), i64>,
    /// Per user, the highest `up_to_status_id` to scrub.
    scrub_geo: HashMap<u64, u64>,
    withheld_posts: HashMap<u64, BTreeSet<String>>,
    withheld_users: HashMap<u64, BTreeSet<String>>,
    not_applied: u64,
    events: u64,
}

/// Embedded Posts a record may carry, searched to this depth.
const EMBEDDED: [&str; 3] = ["retweeted_status", "quoted_status", "favorited_status"];
const MAX_DEPTH: usize = 3;
const GEO_FIELDS: [&str; 3] = ["geo", "coordinates", "place"];

/// One Post object found in a record (the record itself or embedded).
#[derive(Default)]
struct PostObject {
    id: Option<u64>,
    user: Option<u64>,
    /// Spans of non-null geo values.
    geo: Vec<Range<usize>>,
}

impl Policy {
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Builds the state of `events`, in any order.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Policy {
        let mut p = Policy::new();
        for e in events {
            p.add(e);
        }
        p
    }

    /// Adds an event. Commutative and idempotent: a user's state in each
    /// family is decided by the event with the greatest time, a hiding
    /// event winning a tie.
    pub fn add(&mut self, e: &Event) {
        self.events += 1;
        match &e.action {
            Action::DeletePost { post, .. } => {
                self.deleted_posts.insert(*post);
            }
            Action::Unlike { post, user } => {
                let t = self.unlikes.entry((*post, *user)).or_insert(e.time_ms);
                *t = (*t).max(e.time_ms);
            }
            Action::User { user, family, hide } => {
                let slot = &mut self.users.entry(*user).or_default()[*family as usize];
                let candidate = (e.time_ms, *hide);
                if slot.is_none_or(|s| candidate > s) {
                    *slot = Some(candidate);
                }
            }
            Action::ScrubGeo { user, up_to } => {
                let u = self.scrub_geo.entry(*user).or_insert(*up_to);
                *u = (*u).max(*up_to);
            }
            Action::WithholdPost { post, countries, .. } => {
                self.withheld_posts.entry(*post).or_default().extend(countries.iter().cloned());
            }
            Action::WithholdUser { user, countries } => {
                self.withheld_users.entry(*user).or_default().extend(countries.iter().cloned());
            }
            Action::NotApplied { .. } => self.not_applied += 1,
        }
    }

    /// What the state holds, counted.
    pub fn summary(&self) -> PolicySummary {
        let mut hidden = [0u64; 3];
        for states in self.users.values() {
            for f in Family::ALL {
                if states[f as usize].is_some_and(|(_, hide)| hide) {
                    hidden[f as usize] += 1;
                }
            }
        }
        PolicySummary {
            deleted_posts: self.deleted_posts.len() as u64,
            deleted_users: hidden[Family::Delete as usize],
            protected_users: hidden[Family::Protect as usize],
            suspended_users: hidden[Family::Suspend as usize],
            unlikes: self.unlikes.len() as u64,
            scrub_geo_users: self.scrub_geo.len() as u64,
            withheld_posts: self.withheld_posts.len() as u64,
            withheld_users: self.withheld_users.len() as u64,
        }
    }

    /// Events added, and how many of them could not be applied.
    pub fn events(&self) -> (u64, u64) {
        (self.events, self.not_applied)
    }

    /// Whether the Post is deleted.
    pub fn is_deleted(&self, post: u64) -> bool {
        self.deleted_posts.contains(&post)
    }

    /// The family that hides the user now, if one does.
    pub fn hidden(&self, user: u64) -> Option<Family> {
        let states = self.users.get(&user)?;
        Family::ALL.into_iter().find(|f| states[*f as usize].is_some_and(|(_, hide)| hide))
    }

    /// Whether nothing in the ledger can change a record.
    pub fn is_empty(&self) -> bool {
        self.deleted_posts.is_empty()
            && self.users.is_empty()
            && self.unlikes.is_empty()
            && self.scrub_geo.is_empty()
            && self.withheld_posts.is_empty()
            && self.withheld_users.is_empty()
    }

    /// The verdict on one stored record (`kind`, activity time, bytes).
    /// Only Posts (native or Activity Streams) and likes can change;
    /// compliance messages themselves are kept as received.
    pub fn verdict(&self, kind: ActivityKind, time_ms: i64, line: &[u8], mode: WithheldMode) -> Verdict {
        if !matches!(kind, ActivityKind::Post | ActivityKind::AsActivity | ActivityKind::Like) || self.is_empty() {
            return Verdict::Keep;
        }
        let Ok(text) = std::str::from_utf8(line) else { return Verdict::Keep };
        let mut posts = Vec::new();
        let mut liker = None;
        let mut liked = None;
        if kind == ActivityKind::Like {
            // A like is not a Post: its liker, and the liked Post.
            let Some(top) = fields(text) else { return Verdict::Keep };
            for f in &top {
                match f.key.as_ref() {
                    "user" => liker = user_id(f.value),
                    "favorited_status" => {
                        let before = posts.len();
                        visit(f.value, f.span.start, 1, &mut posts);
                        liked = posts.get(before).and_then(|p: &PostObject| p.id);
                    }
                    _ => {}
                }
            }
        } else {
            visit(text, 0, 0, &mut posts);
        }
        let ids = posts.iter().filter_map(|p| p.id);
        if ids.clone().any(|id| self.deleted_posts.contains(&id)) {
            return Verdict::Drop(Reason::DeletedPost);
        }
        let users = posts.iter().filter_map(|p| p.user).chain(liker);
        if let Some(f) = users.clone().find_map(|u| self.hidden(u)) {
            return Verdict::Drop(Reason::HiddenUser(f));
        }
        if let (Some(post), Some(user)) = (liked, liker) {
            if self.unlikes.get(&(post, user)).is_some_and(|t| *t >= time_ms) {
                return Verdict::Drop(Reason::Unliked);
            }
        }
        let mut countries = BTreeSet::new();
        for id in ids {
            countries.extend(self.withheld_posts.get(&id).into_iter().flatten().cloned());
        }
        for u in users {
            countries.extend(self.withheld_users.get(&u).into_iter().flatten().cloned());
        }
        if !countries.is_empty() && mode == WithheldMode::Drop {
            return Verdict::Drop(Reason::Withheld);
        }
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for p in &posts {
            let (Some(id), Some(user)) = (p.id, p.user) else { continue };
            if self.scrub_geo.get(&user).is_some_and(|up_to| id <= *up_to) {
                edits.extend(p.geo.iter().map(|s| (s.clone(), "null".to_string())));
            }
        }
        let geo_scrubbed = !edits.is_empty();
        let withheld = !countries.is_empty();
        if withheld {
            let list = format!("[{}]", countries.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(","));
            let existing =
                fields(text).and_then(|top| top.into_iter().find(|f| f.key == "withheld_in_countries").map(|f| f.span));
            match (existing, closing_brace(text)) {
                (Some(span), _) => edits.push((span, list)),
                (None, Some(at)) => edits.push((at..at, format!(",\"withheld_in_countries\":{list}"))),
                (None, None) => {}
            }
        }
        if edits.is_empty() {
            return Verdict::Keep;
        }
        edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
        let mut bytes = line.to_vec();
        for (span, with) in edits {
            bytes.splice(span, with.into_bytes());
        }
        Verdict::Rewrite { bytes, geo_scrubbed, withheld }
    }
}

/// Collects the Post object at `text` (offset `base` in the record) and
/// the Posts it embeds.
fn visit(text: &str, base: usize, depth: usize, out: &mut Vec<PostObject>) {
    let Some(fs) = fields(text) else { return };
    let mut post = PostObject::default();
    let mut id_str = None;
    let mut embedded = Vec::new();
    for f in &fs {
        match f.key.as_ref() {
            "id_str" => id_str = id_value(f.value),
            "id" => post.id = post.id.or(id_value(f.value)),
            "user" => post.user = user_id(f.value),
            // Activity Streams: the author, and a share's original.
            "actor" => post.user = post.user.or(user_id(f.value)),
            "object" if f.value.trim_start().starts_with('{') && f.value.contains("\"objectType\":\"activity\"") => {
                embedded.push((f.value, f.span.start))
            }
            k if GEO_FIELDS.contains(&k) && f.value.trim() != "null" => {
                post.geo.push(base + f.span.start..base + f.span.end)
            }
            k if EMBEDDED.contains(&k) && f.value.trim_start().starts_with('{') => {
                embedded.push((f.value, f.span.start))
            }
            _ => {}
        }
    }
    post.id = id_str.or(post.id);
    out.push(post);
    if depth < MAX_DEPTH {
        for (value, start) in embedded {
            visit(value, base + start, depth + 1, out);
        }
    }
}

/// An ID: an integer, a string of digits, or an Activity Streams tag
/// (`tag:search.twitter.com,2005:<ID>`, `id:twitter.com:<ID>`).
fn id_value(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    let s: String = serde_json::from_str(v).ok()?;
    let tail = s.rsplit(':').next().unwrap_or(&s);
    tail.parse().ok()
}

/// The `id_str` (else `id`) of a user object.
fn user_id(v: &str) -> Option<u64> {
    let fs = fields(v)?;
    let find = |k: &str| fs.iter().find(|f| f.key == k).and_then(|f| id_value(f.value));
    find("id_str").or_else(|| find("id"))
}
