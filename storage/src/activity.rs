//! Classifying one line of a stream: its kind, its natural key and its
//! activity time, or the reason it must be quarantined.
//!
//! # Constraints first
//! - **Speed.** [`classify`] runs on every line the archiver receives, at
//!   ~100,000 lines/s per core on ~3 KB Posts. So a line is checked for UTF-8
//!   once (`std::str::from_utf8`, which is vectorised) and parsed once, by a
//!   hand-written visitor that keeps only the few top-level fields it needs,
//!   borrows strings from the line (an owned copy only for a string with
//!   escapes), and skips everything else (`user`, `entities`,
//!   `retweeted_status`, ...) with [`IgnoredAny`]. A Post costs no allocation.
//!   Never `serde_json::Value` here: it is ~6x slower.
//! - **Exact IDs.** Snowflake IDs exceed 2^53, so they are never read through
//!   `f64`: they come from the `_str` fields (`id_str`, `tweet_id_str`,
//!   `user_id_str`), the Activity Streams id tag, or, failing that, a JSON
//!   integer read as `u64` (serde_json reads integers exactly). A number with
//!   a fraction or exponent is not an ID.
//! - **Total.** No input panics. Every line is a [`Line`] or a [`Rejection`];
//!   a rejection's `Display` is the human reason the quarantine keeps next to
//!   the line's exact bytes, and [`Rejection::code`] a stable label for
//!   metrics.
//! - **Read only.** Classification never changes the bytes: the store keeps
//!   them exactly as received.
//!
//! # How a line is classified (first match wins)
//! | line | result |
//! |---|---|
//! | longer than [`Limits::max_line_bytes`] | [`Rejection::TooLong`] |
//! | empty or only ` `, `\t`, `\r`, `\n` | [`Line::Heartbeat`] |
//! | not UTF-8 / not JSON / JSON but not an object | rejection |
//! | has `delete` with `status` | [`ActivityKind::PostDelete`], [`Key::PostDelete`] (status id) |
//! | has `delete` with `favorite` | [`ActivityKind::Unlike`], [`Key::Unlike`] |
//! | has `delete` otherwise | [`ActivityKind::Compliance`], [`Key::Hashed`] |
//! | has `favorited_status` | [`ActivityKind::Like`], [`Key::Like`] (32 hex digit `id`) |
//! | has `verb`, and an `id` starting `tag:` or a `postedTime` | [`ActivityKind::AsActivity`]: [`Key::Post`] for verb `post`/`share`, else [`Key::Hashed`] |
//! | has `id_str` or `id`, and `created_at`, `user`, `text` or `timestamp_ms` | [`ActivityKind::Post`], [`Key::Post`] |
//! | has a key of [`COMPLIANCE_KEYS`] | [`ActivityKind::Compliance`], [`Key::Hashed`] |
//! | has `info`, `warn`, `error` (or the public API's `warning`, `disconnect`) | [`Line::System`] |
//! | any other object | [`Rejection::UnknownKind`] |
//!
//! [`Key::Hashed`] is [`content_hash`] of the whole line.
//!
//! # Activity time
//! The first usable one of: `timestamp_ms` (a string or an integer), then
//! `postedTime` (RFC 3339), then the snowflake time of the ID, then
//! `created_at` (`Tue Jul 18 23:25:04 +0000 2017`). A like's ID is not a
//! snowflake. Deletes, unlikes and other compliance messages use only their
//! `timestamp_ms` (inside the message's object, or at the top level): the
//! deleted Post's own time is not when the delete happened. No usable time
//! is [`Rejection::MissingTime`]. A time before 2006-03-21 or after 2100
//! (microseconds read as milliseconds), or more than a day ahead of when
//! the line was received ([`classify_at`], and the store on accept), is
//! [`Rejection::ImplausibleTime`]: filed under its minute, it would name a
//! segment that cannot exist and push watermarks into the future.
//!
//! Duplicate top-level keys: the last one wins. A duplicate key inside a
//! nested object this module reads (`delete`, `info`, ...) is
//! [`Rejection::Malformed`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::key::{content_hash, ActivityKind, Key};
use crate::time::{Minute, Snowflake};

/// The default longest line accepted: 1 MiB. Real Posts are a few KB; the
/// largest (long Posts quoting long Posts, with enrichments) stay far below.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// Top-level keys of compliance and notice messages that are stored as
/// [`ActivityKind::Compliance`] (`delete` is handled on its own). Generous on
/// purpose: a known message is stored, an unknown one quarantined.
pub const COMPLIANCE_KEYS: &[&str] = &[
    "scrub_geo",
    "status_withheld",
    "user_withheld",
    "user_delete",
    "user_undelete",
    "user_protect",
    "user_unprotect",
    "user_suspend",
    "user_unsuspend",
    "status_undelete",
    "status_delete",
    "tweet_delete",
    "tweet_undelete",
    "tweet_withheld",
    "status_edit",
    "tweet_edit",
    "user_scrub_geo",
    "limit",
];

/// Bounds on what one line may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Lines longer than this (without their terminator) are rejected
    /// unparsed.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_line_bytes: DEFAULT_MAX_LINE_BYTES }
    }
}

/// An activity to store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub kind: ActivityKind,
    pub key: Key,
    /// Activity time, milliseconds since the Unix epoch: decides the minute
    /// the activity is filed under.
    pub time_ms: i64,
}

impl Activity {
    /// The minute bucket the activity is filed under.
    pub fn minute(&self) -> Minute {
        Minute::of_ms(self.time_ms)
    }
}

/// The severity of a system message (`info`, `warn`, `error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemLevel {
    Info,
    Warn,
    Error,
}

/// A message from the service about the connection, not an activity:
/// `{"info":{"message":..,"sent":..}}` and its `warn`/`error` siblings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemMessage {
    pub level: SystemLevel,
    /// `message` (or `reason`, or the value itself when it is a string);
    /// empty when there is none.
    pub message: String,
    /// `sent`, as sent (RFC 3339 on the enterprise streams).
    pub sent: Option<String>,
    /// `activity_count`, sent with `Recovery Request Completed`.
    pub activity_count: Option<u64>,
}

impl SystemMessage {
    /// The message the server sends before closing a finished Recovery.
    pub const RECOVERY_COMPLETED: &'static str = "Recovery Request Completed";

    /// Whether this is the end of a Recovery request (PROTOCOL.md).
    pub fn is_recovery_completed(&self) -> bool {
        self.level == SystemLevel::Info && self.message.trim() == SystemMessage::RECOVERY_COMPLETED
    }

    /// `sent` as milliseconds since the epoch, when it is RFC 3339.
    pub fn sent_ms(&self) -> Option<i64> {
        self.sent.as_deref().and_then(rfc3339_ms)
    }
}

/// What one line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A keep-alive: an empty line (the stream sends a bare `\r\n`).
    Heartbeat,
    Activity(Activity),
    System(SystemMessage),
}

/// Why a line cannot be stored as an activity. It is quarantined with this
/// reason (the `Display` text); [`Rejection::code`] labels it in metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not UTF-8: invalid byte at offset {valid_up_to}")]
    NotUtf8 { valid_up_to: usize },

    #[error("line too long: {len} bytes, limit {limit}")]
    TooLong { len: usize, limit: usize },

    #[error("not JSON: {0}")]
    NotJson(String),

    #[error("JSON, but not an object")]
    NotAnObject,

    /// Valid JSON, but a field this module reads has an impossible shape
    /// (for example a duplicate key inside `delete`).
    #[error("JSON object of unexpected shape: {0}")]
    Malformed(String),

    /// An object of no known kind; `keys` lists its first top-level keys so
    /// that a new kind from the service is recognisable in the quarantine.
    #[error("JSON object of no known kind (keys: {keys})")]
    UnknownKind { keys: String },

    /// A known kind whose natural key is missing or unparsable.
    #[error("{kind} without a usable {field}")]
    MissingKey { kind: &'static str, field: &'static str },

    /// A known kind with no usable activity time.
    #[error("{kind} without a usable activity time ({tried})")]
    MissingTime { kind: &'static str, tried: &'static str },

    /// An activity time no real activity can have: before the first Post,
    /// in another unit (microseconds read as milliseconds), or more than
    /// [`MAX_AHEAD_MS`] ahead of when the line was received. Stored, it
    /// would be filed under a minute that does not exist yet (or ever).
    #[error("implausible activity time {time_ms} ms: {why}")]
    ImplausibleTime { time_ms: i64, why: &'static str },
}

impl Rejection {
    /// A short stable label (`not_utf8`, `too_long`, `not_json`,
    /// `not_object`, `malformed`, `unknown_kind`, `missing_key`,
    /// `missing_time`, `implausible_time`) for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NotUtf8 { .. } => "not_utf8",
            Rejection::TooLong { .. } => "too_long",
            Rejection::NotJson(_) => "not_json",
            Rejection::NotAnObject => "not_object",
            Rejection::Malformed(_) => "malformed",
            Rejection::UnknownKind { .. } => "unknown_kind",
            Rejection::MissingKey { .. } => "missing_key",
            Rejection::MissingTime { .. } => "missing_time",
            Rejection::ImplausibleTime { .. } => "implausible_time",
        }
    }
}

/// The earliest plausible activity time: 2006-03-21T00:00:00Z, the day the
/// first Post was written.
pub const EARLIEST_MS: i64 = 1_142_899_200_000;
/// The latest activity time that can be read in milliseconds at all:
/// 2100-01-01T00:00:00Z. Past it, the number is in another unit.
pub const LATEST_MS: i64 = 4_102_444_800_000;
/// How far ahead of the time a line was received its activity time may be
/// (clocks disagree, but not by a day).
pub const MAX_AHEAD_MS: i64 = 86_400_000;

/// Checks an activity time against the fixed bounds ([`EARLIEST_MS`],
/// [`LATEST_MS`]) and, given the time the line was received, against
/// [`MAX_AHEAD_MS`].
pub fn check_time(time_ms: i64, received_ms: Option<i64>) -> Result<(), Rejection> {
    let why = if time_ms < EARLIEST_MS {
        "before 2006-03-21, the day of the first Post"
    } else if time_ms > LATEST_MS {
        if (EARLIEST_MS..=LATEST_MS).contains(&(time_ms / 1000)) {
            "after 2100: microseconds read as milliseconds?"
        } else {
            "after 2100: not milliseconds"
        }
    } else if received_ms.is_some_and(|r| time_ms > r.saturating_add(MAX_AHEAD_MS)) {
        "more than a day ahead of the time it was received"
    } else {
        return Ok(());
    };
    Err(Rejection::ImplausibleTime { time_ms, why })
}

/// [`classify`], and an activity time more than [`MAX_AHEAD_MS`] ahead of
/// `received_ms` is rejected too.
pub fn classify_at(line: &[u8], limits: &Limits, received_ms: i64) -> Result<Line, Rejection> {
    let line = classify(line, limits)?;
    if let Line::Activity(a) = &line {
        check_time(a.time_ms, Some(received_ms))?;
    }
    Ok(line)
}

/// Classifies one line. `line` has no terminator (the caller strips `\n` or
/// `\r\n`). See the module documentation for the rules. Activity times
/// outside [`EARLIEST_MS`]..=[`LATEST_MS`] are rejected
/// ([`Rejection::ImplausibleTime`]); [`classify_at`] also rejects times far
/// ahead of when the line was received.
pub fn classify(line: &[u8], limits: &Limits) -> Result<Line, Rejection> {
    if line.len() > limits.max_line_bytes {
        return Err(Rejection::TooLong { len: line.len(), limit: limits.max_line_bytes });
    }
    if line.iter().all(|&b| is_json_ws(b)) {
        return Ok(Line::Heartbeat);
    }
    let text = std::str::from_utf8(line).map_err(|e| Rejection::NotUtf8 { valid_up_to: e.valid_up_to() })?;
    let probe = parse(text)?;
    let classified = probe.classify(line, text)?;
    if let Line::Activity(a) = &classified {
        check_time(a.time_ms, None)?;
    }
    Ok(classified)
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Parses the top-level object into a [`Probe`]: the one pass over the line.
fn parse(text: &str) -> Result<Probe<'_>, Rejection> {
    if text.bytes().find(|&b| !is_json_ws(b)) != Some(b'{') {
        return Err(not_an_object(text));
    }
    serde_json::from_str::<Probe<'_>>(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Rejection::Malformed(e.to_string()),
        _ => Rejection::NotJson(e.to_string()),
    })
}

/// The rejection of a line that does not start with `{` (cold path).
fn not_an_object(text: &str) -> Rejection {
    match serde_json::from_str::<IgnoredAny>(text) {
        Ok(_) => Rejection::NotAnObject,
        Err(e) => Rejection::NotJson(e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// Classification of a parsed line.

const POST: &str = "Post";
const LIKE: &str = "like";
const AS_ACTIVITY: &str = "Activity Streams activity";
const POST_DELETE: &str = "Post delete";
const UNLIKE: &str = "unlike";
const COMPLIANCE: &str = "compliance message";
const TRIED_ALL: &str = "timestamp_ms, postedTime, snowflake ID, created_at";
const TRIED_LIKE: &str = "timestamp_ms, postedTime, created_at";
const TRIED_TIMESTAMP: &str = "timestamp_ms";

impl<'a> Probe<'a> {
    fn classify(self, line: &[u8], text: &str) -> Result<Line, Rejection> {
        if let Some(delete) = &self.delete {
            return self.delete_kind(delete, line);
        }
        if self.favorited_status {
            return self.like();
        }
        if self.is_activity_streams() {
            return self.as_activity(line);
        }
        if (self.id_str.is_some() || self.id.is_some()) && self.has_post_marker() {
            return self.post();
        }
        if let Some(body) = &self.compliance {
            let time_ms = body.timestamp_ms().or_else(|| ms_of(&self.timestamp_ms));
            let time_ms = time_ms.ok_or(Rejection::MissingTime { kind: COMPLIANCE, tried: TRIED_TIMESTAMP })?;
            return Ok(activity(ActivityKind::Compliance, Key::Hashed(content_hash(line)), time_ms));
        }
        if let Some((level, body)) = self.system {
            return Ok(Line::System(system_message(level, body)));
        }
        Err(Rejection::UnknownKind { keys: top_level_keys(text) })
    }

    fn has_post_marker(&self) -> bool {
        self.created_at.is_some() || self.user || self.text || self.timestamp_ms.is_some()
    }

    fn is_activity_streams(&self) -> bool {
        self.verb.is_some() && (as_id_tag(&self.id).is_some() || self.posted_time.is_some())
    }

    /// `timestamp_ms`, `postedTime`, the snowflake time of `id`, `created_at`.
    fn time_ms(&self, snowflake_id: Option<u64>) -> Option<i64> {
        ms_of(&self.timestamp_ms)
            .or_else(|| str_of(&self.posted_time).and_then(rfc3339_ms))
            .or_else(|| snowflake_id.and_then(Snowflake::parse).map(|s| s.time_ms))
            .or_else(|| str_of(&self.created_at).and_then(created_at_ms))
    }

    fn post(&self) -> Result<Line, Rejection> {
        let id = id_of(&self.id_str)
            .or_else(|| id_of(&self.id))
            .ok_or(Rejection::MissingKey { kind: POST, field: "id_str" })?;
        let time_ms = self.time_ms(Some(id)).ok_or(Rejection::MissingTime { kind: POST, tried: TRIED_ALL })?;
        Ok(activity(ActivityKind::Post, Key::Post(id), time_ms))
    }

    fn like(&self) -> Result<Line, Rejection> {
        let id = str_of(&self.id)
            .and_then(hex128)
            .ok_or(Rejection::MissingKey { kind: LIKE, field: "id (32 hex digits)" })?;
        let time_ms = self.time_ms(None).ok_or(Rejection::MissingTime { kind: LIKE, tried: TRIED_LIKE })?;
        Ok(activity(ActivityKind::Like, Key::Like(id), time_ms))
    }

    fn as_activity(&self, line: &[u8]) -> Result<Line, Rejection> {
        let id = as_id_tag(&self.id);
        let key = match str_of(&self.verb) {
            Some("post" | "share") => {
                Key::Post(id.ok_or(Rejection::MissingKey { kind: AS_ACTIVITY, field: "id (tag:...:<ID>)" })?)
            }
            _ => Key::Hashed(content_hash(line)),
        };
        let time_ms = self.time_ms(id).ok_or(Rejection::MissingTime { kind: AS_ACTIVITY, tried: TRIED_ALL })?;
        Ok(activity(ActivityKind::AsActivity, key, time_ms))
    }

    fn delete_kind(&self, delete: &Obj<'a, DeleteBody<'a>>, line: &[u8]) -> Result<Line, Rejection> {
        let body = match delete {
            Obj::Map(body) => Some(body),
            Obj::Scalar(_) => None,
        };
        let time_ms = body.and_then(|b| ms_of(&b.timestamp_ms)).or_else(|| ms_of(&self.timestamp_ms));
        let status = body.and_then(|b| b.status.as_ref());
        let favorite = body.and_then(|b| b.favorite.as_ref());
        if let Some(status) = status {
            let ids = status.map();
            let id = ids
                .and_then(|s| id_of(&s.id_str).or_else(|| id_of(&s.id)))
                .ok_or(Rejection::MissingKey { kind: POST_DELETE, field: "status id_str" })?;
            let time_ms = time_ms.ok_or(Rejection::MissingTime { kind: POST_DELETE, tried: TRIED_TIMESTAMP })?;
            return Ok(activity(ActivityKind::PostDelete, Key::PostDelete(id), time_ms));
        }
        if let Some(favorite) = favorite {
            let ids = favorite.map();
            let tweet_id = ids
                .and_then(|f| id_of(&f.tweet_id_str).or_else(|| id_of(&f.tweet_id)))
                .ok_or(Rejection::MissingKey { kind: UNLIKE, field: "tweet_id_str" })?;
            let user_id = ids
                .and_then(|f| id_of(&f.user_id_str).or_else(|| id_of(&f.user_id)))
                .ok_or(Rejection::MissingKey { kind: UNLIKE, field: "user_id_str" })?;
            let timestamp_ms = time_ms.ok_or(Rejection::MissingTime { kind: UNLIKE, tried: TRIED_TIMESTAMP })?;
            let key = Key::Unlike { tweet_id, user_id, timestamp_ms };
            return Ok(activity(ActivityKind::Unlike, key, timestamp_ms));
        }
        let time_ms = time_ms.ok_or(Rejection::MissingTime { kind: COMPLIANCE, tried: TRIED_TIMESTAMP })?;
        Ok(activity(ActivityKind::Compliance, Key::Hashed(content_hash(line)), time_ms))
    }
}

fn activity(kind: ActivityKind, key: Key, time_ms: i64) -> Line {
    Line::Activity(Activity { kind, key, time_ms })
}

fn system_message(level: SystemLevel, body: Obj<'_, SystemBody<'_>>) -> SystemMessage {
    let (message, sent, activity_count) = match &body {
        Obj::Map(b) => {
            (str_of(&b.message).or_else(|| str_of(&b.reason)).unwrap_or(""), str_of(&b.sent), id_of(&b.activity_count))
        }
        Obj::Scalar(Scalar::Str(s)) => (s.as_ref(), None, None),
        Obj::Scalar(_) => ("", None, None),
    };
    SystemMessage { level, message: message.to_string(), sent: sent.map(str::to_string), activity_count }
}

// ---------------------------------------------------------------------------
// Reading fields.

fn str_of<'s>(v: &'s Option<Scalar<'_>>) -> Option<&'s str> {
    match v {
        Some(Scalar::Str(s)) => Some(s.as_ref()),
        _ => None,
    }
}

/// An ID: a string of ASCII digits (no sign, no spaces) or a JSON integer.
fn id_of(v: &Option<Scalar<'_>>) -> Option<u64> {
    match v {
        Some(Scalar::U64(n)) => Some(*n),
        Some(Scalar::Str(s)) => decimal_u64(s),
        _ => None,
    }
}

fn decimal_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Milliseconds: a JSON integer or a string of digits, optionally negative.
fn ms_of(v: &Option<Scalar<'_>>) -> Option<i64> {
    match v {
        Some(Scalar::U64(n)) => i64::try_from(*n).ok(),
        Some(Scalar::I64(n)) => Some(*n),
        Some(Scalar::Str(s)) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            decimal_u64(digits)?;
            s.parse().ok()
        }
        _ => None,
    }
}

/// A 128-bit like id: exactly 32 hex digits.
fn hex128(s: &str) -> Option<u128> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// The Post ID of an Activity Streams id, `tag:search.twitter.com,2005:<ID>`.
fn as_id_tag(v: &Option<Scalar<'_>>) -> Option<u64> {
    let tag = str_of(v)?.strip_prefix("tag:")?;
    let (_, id) = tag.rsplit_once(':')?;
    decimal_u64(id)
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp_millis())
}

/// `created_at` of the native format: `Tue Jul 18 23:25:04 +0000 2017`.
fn created_at_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(s.trim(), "%a %b %d %H:%M:%S %z %Y").ok().map(|t| t.timestamp_millis())
}

/// The first top-level keys of an object, for [`Rejection::UnknownKind`]
/// (cold path: the line is parsed a second time).
fn top_level_keys(text: &str) -> String {
    const MAX_KEYS: usize = 8;
    const MAX_KEY_CHARS: usize = 40;
    let keys = serde_json::from_str::<KeyList>(text).map(|k| k.0).unwrap_or_default();
    if keys.is_empty() {
        return "none".to_string();
    }
    let mut out = keys
        .iter()
        .take(MAX_KEYS)
        .map(|k| k.chars().take(MAX_KEY_CHARS).collect::<String>())
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > MAX_KEYS {
        out.push_str(&format!(", ... ({} keys)", keys.len()));
    }
    out
}

// ---------------------------------------------------------------------------
// The borrowed parse: only what classification reads.

/// The top-level fields of a line. Filled by [`ProbeVisitor`]; every other
/// field is skipped unparsed.
#[derive(Default)]
struct Probe<'a> {
    id_str: Option<Scalar<'a>>,
    id: Option<Scalar<'a>>,
    created_at: Option<Scalar<'a>>,
    timestamp_ms: Option<Scalar<'a>>,
    posted_time: Option<Scalar<'a>>,
    verb: Option<Scalar<'a>>,
    user: bool,
    text: bool,
    favorited_status: bool,
    delete: Option<Obj<'a, DeleteBody<'a>>>,
    compliance: Option<Obj<'a, ComplianceBody<'a>>>,
    system: Option<(SystemLevel, Obj<'a, SystemBody<'a>>)>,
}

/// `delete`'s object: `{"status":{..}}` or `{"favorite":{..}}`, and
/// `timestamp_ms`.
#[derive(serde::Deserialize)]
struct DeleteBody<'a> {
    #[serde(borrow)]
    status: Option<Obj<'a, IdFields<'a>>>,
    #[serde(borrow)]
    favorite: Option<Obj<'a, IdFields<'a>>>,
    #[serde(borrow)]
    timestamp_ms: Option<Scalar<'a>>,
}

/// The IDs of a deleted status or an unliked favorite.
#[derive(serde::Deserialize)]
struct IdFields<'a> {
    #[serde(borrow)]
    id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(borrow)]
    tweet_id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    tweet_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    user_id_str: Option<Scalar<'a>>,
    #[serde(borrow)]
    user_id: Option<Scalar<'a>>,
}

/// The object of a compliance message: only its time matters here.
#[derive(serde::Deserialize)]
struct ComplianceBody<'a> {
    #[serde(borrow)]
    timestamp_ms: Option<Scalar<'a>>,
}

impl Obj<'_, ComplianceBody<'_>> {
    fn timestamp_ms(&self) -> Option<i64> {
        self.map().and_then(|b| ms_of(&b.timestamp_ms))
    }
}

/// The object of `info`, `warn`, `error`, `warning`, `disconnect`.
#[derive(serde::Deserialize)]
struct SystemBody<'a> {
    #[serde(borrow)]
    message: Option<Scalar<'a>>,
    #[serde(borrow)]
    reason: Option<Scalar<'a>>,
    #[serde(borrow)]
    sent: Option<Scalar<'a>>,
    #[serde(borrow)]
    activity_count: Option<Scalar<'a>>,
}

/// A JSON value read only as far as classification needs: scalars are kept
/// (strings borrowed when they have no escapes), arrays and objects are
/// skipped.
#[derive(Clone, Debug, PartialEq)]
enum Scalar<'a> {
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    /// An array or object, skipped.
    Composite,
}

/// A value expected to be an object of `T`; anything else is kept as a
/// [`Scalar`] instead of failing the parse.
enum Obj<'a, T> {
    Map(T),
    Scalar(Scalar<'a>),
}

impl<T> Obj<'_, T> {
    fn map(&self) -> Option<&T> {
        match self {
            Obj::Map(t) => Some(t),
            Obj::Scalar(_) => None,
        }
    }
}

/// A top-level key this module reads.
enum Field {
    IdStr,
    Id,
    CreatedAt,
    TimestampMs,
    PostedTime,
    Verb,
    User,
    Text,
    FavoritedStatus,
    Delete,
    Compliance,
    System(SystemLevel),
    Other,
}

impl Field {
    fn of(name: &str) -> Field {
        match name {
            "id_str" => Field::IdStr,
            "id" => Field::Id,
            "created_at" => Field::CreatedAt,
            "timestamp_ms" => Field::TimestampMs,
            "postedTime" => Field::PostedTime,
            "verb" => Field::Verb,
            "user" => Field::User,
            "text" | "full_text" => Field::Text,
            "favorited_status" => Field::FavoritedStatus,
            "delete" => Field::Delete,
            "info" => Field::System(SystemLevel::Info),
            "warn" | "warning" => Field::System(SystemLevel::Warn),
            "error" | "disconnect" => Field::System(SystemLevel::Error),
            // COMPLIANCE_KEYS, spelled out so that the compiler can dispatch
            // on length instead of scanning a list for each of a Post's
            // ~30 keys (a test keeps the two in step).
            "scrub_geo" | "status_withheld" | "user_withheld" | "user_delete" | "user_undelete" | "user_protect"
            | "user_unprotect" | "user_suspend" | "user_unsuspend" | "status_undelete" | "status_delete"
            | "tweet_delete" | "tweet_undelete" | "tweet_withheld" | "status_edit" | "tweet_edit"
            | "user_scrub_geo" | "limit" => Field::Compliance,
            _ => Field::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::of(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Field, E> {
        Ok(Field::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Probe<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Probe<'a>, D::Error> {
        d.deserialize_map(ProbeVisitor(PhantomData))
    }
}

struct ProbeVisitor<'a>(PhantomData<Probe<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ProbeVisitor<'a> {
    type Value = Probe<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe<'a>, A::Error> {
        let mut p = Probe::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::IdStr => p.id_str = map.next_value()?,
                Field::Id => p.id = map.next_value()?,
                Field::CreatedAt => p.created_at = map.next_value()?,
                Field::TimestampMs => p.timestamp_ms = map.next_value()?,
                Field::PostedTime => p.posted_time = map.next_value()?,
                Field::Verb => p.verb = map.next_value()?,
                Field::User => p.user = present(map.next_value::<Option<IgnoredAny>>()?),
                Field::Text => p.text = present(map.next_value::<Option<IgnoredAny>>()?),
                Field::FavoritedStatus => p.favorited_status = present(map.next_value::<Option<IgnoredAny>>()?),
                Field::Delete => p.delete = map.next_value()?,
                Field::Compliance => p.compliance = map.next_value()?,
                Field::System(level) => p.system = map.next_value::<Option<_>>()?.map(|body| (level, body)),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }
}

/// A field counts as present unless it is `null`.
fn present(v: Option<IgnoredAny>) -> bool {
    v.is_some()
}

/// The scalar cases shared by [`ScalarVisitor`] and [`ObjVisitor`]; `$wrap`
/// turns a [`Scalar`] into the visitor's value.
macro_rules! visit_scalars {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::I64(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::U64(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::F64(v)))
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Str(Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Str(Cow::Owned(v.to_string()))))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Str(Cow::Owned(v))))
        }
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Composite))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Scalar::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($wrap(Scalar::Composite))
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar<'a>, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<Scalar<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    visit_scalars!(std::convert::identity);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Composite)
    }
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for Obj<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Obj<'a, T>, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ObjVisitor<'a, T>(PhantomData<(Scalar<'a>, fn() -> T)>);

impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<'a, T> {
    type Value = Obj<'a, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    visit_scalars!(Obj::Scalar);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<'a, T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Map)
    }
}

/// The top-level keys of an object, in order (for [`top_level_keys`]).
struct KeyList(Vec<String>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyList, D::Error> {
        d.deserialize_map(KeyListVisitor)
    }
}

struct KeyListVisitor;

impl<'de> Visitor<'de> for KeyListVisitor {
    type Value = KeyList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyList, A::Error> {
        let mut keys = Vec::new();
        while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
            keys.push(k);
        }
        Ok(KeyList(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NATIVE: &str = include_str!("../tests/fixtures/tweet_parser/original_format_examples.json");
    const ACTIVITY_STREAMS: &str = include_str!("../tests/fixtures/tweet_parser/activity_streams_examples.json");

    /// The like payload of the Likes API document (seed 004), as printed.
    const LIKE: &str = r#"{
   "id":"43560406e0ad9f68374445f5f30c33fc",
   "created_at":"Thu Dec 01 22:27:39 +0000 2016",
   "timestamp_ms":1480631259353,
   "favorited_status":{
      "created_at":"Thu Dec 01 22:27:16 +0000 2016",
      "id":804451830033948672,
      "id_str":"804451830033948672",
      "text":"@kafammheppduman",
      "source":"\u003ca href=\"http:\/\/twitter.com\/download\/android\" rel=\"nofollow\"\u003eTwitter for Android\u003c\/a\u003e",
      "user":{
         "id":2855759795,
         "id_str":"2855759795",
         "description":"Manit @GalatasaraySk \ud83d\udc9e",
         "Profile_image_url": "http:\/\/pbs.twimg.com\/profile_images\/804421763945861121\/v3bp9pnq_normal.jpg"
      },
      "entities":{"hashtags":[],"urls":[],"user_mentions":[{"screen_name":"kafammheppduman","id":2855759795,"id_str":"2855759795","indices":[0,16]}],"symbols":[]},
      "lang":"und"
   },
   "user":{
      "id":774146932365070336,
      "id_str":"774146932365070336",
      "name":"Uyuyan Adam",
      "location":"Tarsus, T\u00fcrkiye"
   }
}"#;

    /// The unlike payload of the same document.
    const UNLIKE: &str = r#"{
   "delete":{
      "favorite":{
         "tweet_id":696615514970279937,
         "tweet_id_str":"696615514970279937",
         "user_id":2510287578,
         "user_id_str":"2510287578"
      },
      "timestamp_ms":"1480437031205"
   }
}"#;

    fn one_line(pretty: &str) -> String {
        pretty.replace(['\n', '\r'], "")
    }

    fn classify_str(s: &str) -> Result<Line, Rejection> {
        classify(s.as_bytes(), &Limits::default())
    }

    fn activity_of(s: &str) -> Activity {
        match classify_str(s) {
            Ok(Line::Activity(a)) => a,
            other => panic!("not an activity: {other:?} for {s}"),
        }
    }

    fn rejection_of(s: &[u8]) -> Rejection {
        match classify(s, &Limits::default()) {
            Err(r) => r,
            other => panic!("not rejected: {other:?}"),
        }
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    fn fixture_lines(all: &str) -> Vec<&str> {
        all.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    #[test]
    fn implausible_activity_times_are_rejected_with_a_reason() {
        let post =
            |ts: &str| format!(r#"{{"id_str":"887453193294282752","created_at":"x","user":{{}},"timestamp_ms":{ts}}}"#);
        let now = ms("2026-03-01T12:00:00Z");
        // Microseconds read as milliseconds: the year 58643.
        let micro = now * 1000;
        match rejection_of(post(&format!("\"{micro}\"")).as_bytes()) {
            Rejection::ImplausibleTime { time_ms, why } => {
                assert_eq!(time_ms, micro);
                assert!(why.contains("microseconds"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // Before the first Post.
        assert_eq!(rejection_of(post("1000").as_bytes()).code(), "implausible_time");
        assert_eq!(rejection_of(post("-5").as_bytes()).code(), "implausible_time");
        // More than a day ahead of when it was received.
        let ahead = now + MAX_AHEAD_MS + 1;
        assert!(classify(post(&ahead.to_string()).as_bytes(), &Limits::default()).is_ok());
        let r = classify_at(post(&ahead.to_string()).as_bytes(), &Limits::default(), now).unwrap_err();
        assert!(r.to_string().contains("a day ahead"), "{r}");
        // A delete's own timestamp is checked too.
        let del = format!(r#"{{"delete":{{"status":{{"id_str":"1"}},"timestamp_ms":"{micro}"}}}}"#);
        assert_eq!(rejection_of(del.as_bytes()).code(), "implausible_time");
        // Within a day ahead, and anything since 2006, is fine.
        assert!(classify_at(post(&(now + 3_600_000).to_string()).as_bytes(), &Limits::default(), now).is_ok());
        assert!(classify_at(post(&EARLIEST_MS.to_string()).as_bytes(), &Limits::default(), now).is_ok());
    }

    #[test]
    fn every_native_fixture_is_a_post_with_its_id_and_snowflake_time() {
        let lines = fixture_lines(NATIVE);
        assert_eq!(lines.len(), 25);
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id: u64 = v["id_str"].as_str().unwrap().parse().unwrap();
            let a = activity_of(line);
            assert_eq!(a.kind, ActivityKind::Post);
            assert_eq!(a.key, Key::Post(id));
            assert_eq!(a.time_ms, Snowflake::parse(id).unwrap().time_ms);
            // The snowflake agrees with created_at to the second.
            let created = created_at_ms(v["created_at"].as_str().unwrap()).unwrap();
            assert_eq!(a.time_ms.div_euclid(1000) * 1000, created, "{id}");
        }
    }

    #[test]
    fn the_first_native_fixture_is_filed_at_its_snowflake_second() {
        let a = activity_of(fixture_lines(NATIVE)[0]);
        assert_eq!(a.minute().file_stem(), "20170718T2325Z");
        assert_eq!(a.key, Key::Post(887_453_193_294_282_752));
        assert_eq!(a.time_ms.div_euclid(1000) * 1000, ms("2017-07-18T23:25:04Z"));
    }

    #[test]
    fn every_activity_streams_fixture_is_a_post_with_its_id_and_posted_time() {
        let lines = fixture_lines(ACTIVITY_STREAMS);
        assert_eq!(lines.len(), 25);
        let mut verbs = std::collections::BTreeSet::new();
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let tag = v["id"].as_str().unwrap();
            let id: u64 = tag.strip_prefix("tag:search.twitter.com,2005:").unwrap().parse().unwrap();
            verbs.insert(v["verb"].as_str().unwrap().to_string());
            let a = activity_of(line);
            assert_eq!(a.kind, ActivityKind::AsActivity);
            assert_eq!(a.key, Key::Post(id));
            assert_eq!(a.time_ms, ms(v["postedTime"].as_str().unwrap()));
        }
        assert_eq!(verbs.into_iter().collect::<Vec<_>>(), ["post", "share"]);
    }

    #[test]
    fn fixtures_classify_the_same_with_crlf_stripped_and_padding() {
        let line = fixture_lines(NATIVE)[3];
        let padded = format!("  {line}\t ");
        assert_eq!(classify_str(&padded), classify_str(line));
    }

    #[test]
    fn a_like_from_the_likes_document() {
        let a = activity_of(&one_line(LIKE));
        assert_eq!(a.kind, ActivityKind::Like);
        assert_eq!(a.key, Key::Like(0x4356_0406_e0ad_9f68_3744_45f5_f30c_33fc));
        assert_eq!(a.key.display(), "43560406e0ad9f68374445f5f30c33fc");
        assert_eq!(a.time_ms, 1_480_631_259_353);
    }

    #[test]
    fn a_like_without_timestamp_uses_created_at() {
        let line = r#"{"id":"43560406E0AD9F68374445F5F30C33FC","created_at":"Thu Dec 01 22:27:39 +0000 2016","favorited_status":{"id_str":"1"}}"#;
        let a = activity_of(line);
        assert_eq!(a.key, Key::Like(0x4356_0406_e0ad_9f68_3744_45f5_f30c_33fc));
        assert_eq!(a.time_ms, ms("2016-12-01T22:27:39Z"));
    }

    #[test]
    fn an_unlike_from_the_likes_document() {
        let a = activity_of(&one_line(UNLIKE));
        assert_eq!(a.kind, ActivityKind::Unlike);
        let key =
            Key::Unlike { tweet_id: 696_615_514_970_279_937, user_id: 2_510_287_578, timestamp_ms: 1_480_437_031_205 };
        assert_eq!(a.key, key);
        assert_eq!(a.time_ms, 1_480_437_031_205);
    }

    #[test]
    fn an_unlike_with_only_numeric_ids_is_exact() {
        // 2^63 + 1 is not representable in f64.
        let line = r#"{"delete":{"favorite":{"tweet_id":9223372036854775809,"user_id":18446744073709551615},"timestamp_ms":1480437031205}}"#;
        let a = activity_of(line);
        let key =
            Key::Unlike { tweet_id: 9_223_372_036_854_775_809, user_id: u64::MAX, timestamp_ms: 1_480_437_031_205 };
        assert_eq!(a.key, key);
    }

    #[test]
    fn a_post_delete_is_keyed_by_the_status_and_timed_by_the_delete() {
        let line = r#"{"delete":{"status":{"id":1234567890123456789,"id_str":"1234567890123456789","user_id":3,"user_id_str":"3"},"timestamp_ms":"1500000000123"}}"#;
        let a = activity_of(line);
        assert_eq!(a.kind, ActivityKind::PostDelete);
        assert_eq!(a.key, Key::PostDelete(1_234_567_890_123_456_789));
        assert_eq!(a.time_ms, 1_500_000_000_123);
    }

    #[test]
    fn a_post_delete_with_a_numeric_id_above_2_pow_53_is_exact() {
        let line = r#"{"delete":{"status":{"id":9007199254740993},"timestamp_ms":"1500000000123"}}"#;
        assert_eq!(activity_of(line).key, Key::PostDelete(9_007_199_254_740_993));
    }

    #[test]
    fn a_post_prefers_id_str_and_timestamp_ms() {
        // `id` deliberately differs, as it would after an f64 round trip.
        let line = r#"{"id":887453193294282800,"id_str":"887453193294282752","created_at":"Tue Jul 18 23:25:04 +0000 2017","timestamp_ms":"1500420304999","text":"x"}"#;
        let a = activity_of(line);
        assert_eq!(a.key, Key::Post(887_453_193_294_282_752));
        assert_eq!(a.time_ms, 1_500_420_304_999);
        let numeric = line.replace(r#""1500420304999""#, "1500420304998");
        assert_eq!(activity_of(&numeric).time_ms, 1_500_420_304_998);
    }

    #[test]
    fn a_post_with_only_a_numeric_id_is_exact() {
        let line = r#"{"id":9007199254740993,"created_at":"Tue Jul 18 23:25:04 +0000 2017"}"#;
        assert_eq!(activity_of(line).key, Key::Post(9_007_199_254_740_993));
    }

    #[test]
    fn a_pre_snowflake_post_is_timed_by_created_at() {
        let line = r#"{"id":20,"id_str":"20","created_at":"Tue Mar 21 20:50:14 +0000 2006","user":{}}"#;
        let a = activity_of(line);
        assert_eq!(a.key, Key::Post(20));
        assert_eq!(a.time_ms, ms("2006-03-21T20:50:14Z"));
    }

    #[test]
    fn escaped_strings_are_read() {
        let line = r#"{"id_str":"\u0038\u0038\u0037453193294282752","created_at":"Tue Jul 18 23:25:04 \u002b0000 2017","text":"\"hi\"\n"}"#;
        let a = activity_of(line);
        assert_eq!(a.key, Key::Post(887_453_193_294_282_752));
    }

    #[test]
    fn compliance_messages_are_stored_by_hash() {
        let lines = [
            r#"{"scrub_geo":{"user_id":14090452,"user_id_str":"14090452","up_to_status_id":23260136625,"up_to_status_id_str":"23260136625","timestamp_ms":"1500000000000"}}"#,
            r#"{"status_withheld":{"id":1234567890,"user_id":123456,"withheld_in_countries":["DE","AR"],"timestamp_ms":1500000000000}}"#,
            r#"{"user_withheld":{"id":123456,"withheld_in_countries":["DE","AR"]},"timestamp_ms":"1500000000000"}"#,
            r#"{"user_delete":{"id":"123456","timestamp_ms":"1500000000000"}}"#,
            r#"{"user_suspend":{"id":"123456","timestamp_ms":"1500000000000"}}"#,
            r#"{"limit":{"track":1234,"timestamp_ms":"1500000000000"}}"#,
            r#"{"delete":{"direct_message":{"id":"1"},"timestamp_ms":"1500000000000"}}"#,
        ];
        for line in lines {
            let a = activity_of(line);
            assert_eq!(a.kind, ActivityKind::Compliance, "{line}");
            assert_eq!(a.key, Key::Hashed(content_hash(line.as_bytes())));
            assert_eq!(a.time_ms, 1_500_000_000_000);
        }
    }

    #[test]
    fn other_activity_streams_verbs_are_stored_by_hash() {
        let line = r#"{"id":"tag:search.twitter.com,2005:887453193294282752","verb":"delete","object":{"id":"tag:search.twitter.com,2005:1"},"postedTime":"2017-07-18T23:25:05.000Z"}"#;
        let a = activity_of(line);
        assert_eq!(a.kind, ActivityKind::AsActivity);
        assert_eq!(a.key, Key::Hashed(content_hash(line.as_bytes())));
        assert_eq!(a.time_ms, ms("2017-07-18T23:25:05Z"));
    }

    #[test]
    fn system_messages() {
        let done = r#"{"info":{"message":"Recovery Request Completed","sent":"2023-07-05T17:09:12.070Z","activity_count":1234}}"#;
        let Ok(Line::System(m)) = classify_str(done) else { panic!() };
        assert_eq!(m.level, SystemLevel::Info);
        assert!(m.is_recovery_completed());
        assert_eq!(m.activity_count, Some(1234));
        assert_eq!(m.sent_ms(), Some(ms("2023-07-05T17:09:12.070Z")));

        let forced = r#"{"error":{"message":"Forced Disconnect: Too many connections. (Allowed Connections = 2)","sent":"2023-07-05T17:09:12+00:00"}}"#;
        let Ok(Line::System(m)) = classify_str(forced) else { panic!() };
        assert_eq!(m.level, SystemLevel::Error);
        assert!(m.message.starts_with("Forced Disconnect"));
        assert!(!m.is_recovery_completed());

        let Ok(Line::System(m)) = classify_str(r#"{"warn":"slow down"}"#) else { panic!() };
        assert_eq!((m.level, m.message.as_str(), m.sent), (SystemLevel::Warn, "slow down", None));

        let Ok(Line::System(m)) = classify_str(r#"{"disconnect":{"code":4,"reason":"duplicate stream"}}"#) else {
            panic!()
        };
        assert_eq!((m.level, m.message.as_str()), (SystemLevel::Error, "duplicate stream"));
    }

    #[test]
    fn every_compliance_key_is_recognised() {
        for key in COMPLIANCE_KEYS {
            assert!(matches!(Field::of(key), Field::Compliance), "{key}");
        }
        let recognised = ["scrub_geo", "limit", "user_edit", "status", "delete"]
            .into_iter()
            .filter(|k| matches!(Field::of(k), Field::Compliance))
            .count();
        assert_eq!(recognised, 2);
    }

    #[test]
    fn heartbeats() {
        for hb in ["", "\r", " ", " \t\r", "\n"] {
            assert_eq!(classify_str(hb), Ok(Line::Heartbeat), "{hb:?}");
        }
    }

    #[test]
    fn rejections() {
        let r = rejection_of(b"{\"id_str\":\"1\xff\"}");
        assert_eq!(r, Rejection::NotUtf8 { valid_up_to: 12 });
        assert_eq!(r.code(), "not_utf8");

        let r = classify(br#"{"id_str":"1"}"#, &Limits { max_line_bytes: 5 }).unwrap_err();
        assert_eq!(r, Rejection::TooLong { len: 14, limit: 5 });
        assert_eq!(r.to_string(), "line too long: 14 bytes, limit 5");

        for not_json in [&b"{"[..], b"{\"a\":1} x", b"{\"a\":01}", b"{'a':1}", b"nope", b"{\"a\":\"\x01\"}"] {
            assert!(matches!(rejection_of(not_json), Rejection::NotJson(_)), "{not_json:?}");
        }
        for not_object in [&b"[1,2]"[..], b"42", b" \"x\"", b"null"] {
            assert_eq!(rejection_of(not_object), Rejection::NotAnObject);
        }

        let dup = br#"{"delete":{"timestamp_ms":"1","timestamp_ms":"2"}}"#;
        assert!(matches!(rejection_of(dup), Rejection::Malformed(_)));

        let r = rejection_of(br#"{"brand_new_kind":{"x":1},"b":2}"#);
        assert_eq!(r, Rejection::UnknownKind { keys: "brand_new_kind, b".to_string() });
        assert_eq!(r.to_string(), "JSON object of no known kind (keys: brand_new_kind, b)");
        assert_eq!(rejection_of(b"{}"), Rejection::UnknownKind { keys: "none".to_string() });
        // An ID alone is not a Post.
        assert!(matches!(rejection_of(br#"{"id_str":"1"}"#), Rejection::UnknownKind { .. }));

        let bad_ids: [&[u8]; 6] = [
            br#"{"id_str":"12a","created_at":"Tue Jul 18 23:25:04 +0000 2017"}"#,
            br#"{"id_str":"+12","created_at":"Tue Jul 18 23:25:04 +0000 2017"}"#,
            br#"{"id":1.5e18,"created_at":"Tue Jul 18 23:25:04 +0000 2017"}"#,
            br#"{"id":"4356","favorited_status":{},"timestamp_ms":1}"#,
            br#"{"delete":{"status":{"user_id_str":"1"},"timestamp_ms":"1"}}"#,
            br#"{"delete":{"favorite":{"tweet_id_str":"1"},"timestamp_ms":"1"}}"#,
        ];
        for line in bad_ids {
            let r = rejection_of(line);
            assert_eq!(r.code(), "missing_key", "{r}");
        }
        assert_eq!(rejection_of(bad_ids[4]).to_string(), "Post delete without a usable status id_str");

        let no_times: [&[u8]; 5] = [
            br#"{"id_str":"20","user":{}}"#,
            br#"{"id_str":"20","created_at":"yesterday","timestamp_ms":"soon","postedTime":"now","user":{}}"#,
            br#"{"delete":{"favorite":{"tweet_id_str":"1","user_id_str":"2"}}}"#,
            br#"{"delete":{"status":{"id_str":"887453193294282752"}}}"#,
            br#"{"scrub_geo":{"user_id":1}}"#,
        ];
        for line in no_times {
            let r = rejection_of(line);
            assert_eq!(r.code(), "missing_time", "{r}");
        }
    }

    #[test]
    fn a_bad_timestamp_falls_back_to_the_snowflake() {
        let line = r#"{"id_str":"887453193294282752","timestamp_ms":"soon","user":{}}"#;
        assert_eq!(activity_of(line).time_ms, Snowflake::parse(887_453_193_294_282_752).unwrap().time_ms);
    }

    #[test]
    fn null_fields_are_absent() {
        let line = r#"{"id_str":null,"id":887453193294282752,"timestamp_ms":null,"user":{},"delete":null,"info":null}"#;
        assert_eq!(activity_of(line).key, Key::Post(887_453_193_294_282_752));
    }

    fn json_fragment() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("id".to_string()),
            Just("id_str".to_string()),
            Just("created_at".to_string()),
            Just("timestamp_ms".to_string()),
            Just("postedTime".to_string()),
            Just("verb".to_string()),
            Just("user".to_string()),
            Just("delete".to_string()),
            Just("status".to_string()),
            Just("favorite".to_string()),
            Just("favorited_status".to_string()),
            Just("info".to_string()),
            Just("scrub_geo".to_string()),
            "[a-z_]{1,8}",
        ];
        let leaf = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| format!("{n:?}")),
            "[0-9a-f]{0,40}".prop_map(|s| format!("\"{s}\"")),
            "[ -~]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("null".to_string()),
            Just("true".to_string()),
            Just("\"tag:search.twitter.com,2005:887453193294282752\"".to_string()),
            Just("\"Tue Jul 18 23:25:04 +0000 2017\"".to_string()),
        ];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec((key.clone(), inner.clone()), 0..5).prop_map(|kv| {
                    let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", body.join(","))
                }),
                prop::collection::vec(inner, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            ]
        })
    }

    fn check_total(line: &[u8]) {
        match classify(line, &Limits { max_line_bytes: 4096 }) {
            Ok(_) => {}
            Err(r) => assert!(!r.to_string().is_empty()),
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..600)) {
            check_total(&line);
        }

        #[test]
        fn arbitrary_json_never_panics(json in json_fragment()) {
            check_total(json.as_bytes());
        }

        #[test]
        fn damaged_fixtures_never_panic(i in 0usize..50, cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
            let lines: Vec<&str> = fixture_lines(NATIVE).into_iter().chain(fixture_lines(ACTIVITY_STREAMS)).collect();
            let line = lines[i % lines.len()].as_bytes();
            check_total(&line[..cut.index(line.len() + 1)]);
            let mut flipped = line.to_vec();
            let at = flip.0.index(flipped.len());
            flipped[at] ^= flip.1;
            check_total(&flipped);
        }
    }
}
