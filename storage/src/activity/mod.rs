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

use serde::de::IgnoredAny;

use crate::key::{content_hash, ActivityKind, Key};

mod probe;
#[cfg(test)]
mod tests;

use crate::time::{Minute, Snowflake};
use probe::*;

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
