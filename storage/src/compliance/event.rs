//! Reading a compliance event out of a stored line.
//!
//! Runs only on Post deletes, unlikes and compliance messages (a few per
//! cent of a stream), when they are stored: a full `serde_json::Value`
//! parse is affordable here, unlike on the Post path. IDs are read exactly:
//! the `_str` field first, then an integer read as `u64`, never `f64`.

use serde_json::{Map, Value};

use crate::key::content_hash;
use crate::ActivityKind;

/// A family of user events that hide a user until undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `user_delete` / `user_undelete`.
    Delete = 0,
    /// `user_protect` / `user_unprotect`.
    Protect = 1,
    /// `user_suspend` / `user_unsuspend`.
    Suspend = 2,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Delete, Family::Protect, Family::Suspend];

    /// `delete`, `protect`, `suspend`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Delete => "delete",
            Family::Protect => "protect",
            Family::Suspend => "suspend",
        }
    }
}

/// The user events: the message's key, its family, and whether it hides
/// (the undo events do not).
pub const USER_EVENTS: [(&str, Family, bool); 6] = [
    ("user_delete", Family::Delete, true),
    ("user_undelete", Family::Delete, false),
    ("user_protect", Family::Protect, true),
    ("user_unprotect", Family::Protect, false),
    ("user_suspend", Family::Suspend, true),
    ("user_unsuspend", Family::Suspend, false),
];

/// What a compliance event asks of the archive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `delete.status`: the Post is gone for good. `user` is 0 when the
    /// message does not name the author.
    DeletePost { post: u64, user: u64 },
    /// `delete.favorite`: the user's like of the Post is withdrawn.
    Unlike { post: u64, user: u64 },
    /// `user_delete`, `user_protect`, `user_suspend` (`hide`), and their
    /// undo events (`user_undelete`, ...: not `hide`).
    User { user: u64, family: Family, hide: bool },
    /// `scrub_geo`: geo fields of the user's Posts up to `up_to` (an ID)
    /// are removed.
    ScrubGeo { user: u64, up_to: u64 },
    /// `status_withheld`: the Post is withheld in `countries`.
    WithholdPost { post: u64, user: u64, countries: Vec<String> },
    /// `user_withheld`: the user's Posts are withheld in `countries`.
    WithholdUser { user: u64, countries: Vec<String> },
    /// A compliance message of a known kind that cannot be applied (an ID
    /// is missing or unreadable): kept for the report, by the line's
    /// content hash.
    NotApplied { line_hash: u64, reason: NotApplied },
}

/// Why a compliance message could not be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotApplied {
    /// The Post or user ID it names is missing or not a 64-bit integer.
    MissingId = 1,
    /// Its countries are missing or not a list of short strings.
    BadCountries = 2,
}

impl NotApplied {
    pub fn from_code(c: u64) -> NotApplied {
        match c {
            2 => NotApplied::BadCountries,
            _ => NotApplied::MissingId,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            NotApplied::MissingId => "a Post or user ID it names is missing or unreadable",
            NotApplied::BadCountries => "its withheld_in_countries is missing or unreadable",
        }
    }
}

/// One compliance event: when it happened (`timestamp_ms`, the activity
/// time it was stored under) and what it asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub time_ms: i64,
    pub action: Action,
}

/// Longest country code kept, and most codes kept per event.
pub const MAX_COUNTRY_BYTES: usize = 16;
pub const MAX_COUNTRIES: usize = 255;

/// The compliance event a stored line carries, if it carries one.
/// `kind` and `time_ms` are the line's classification. Lines of other
/// kinds, and compliance messages that ask nothing of stored Posts
/// (`limit`, `status_edit`, ...), give `None`.
pub fn event_of(kind: ActivityKind, time_ms: i64, line: &[u8]) -> Option<Event> {
    if !matches!(
        kind,
        ActivityKind::PostDelete | ActivityKind::Unlike | ActivityKind::Compliance | ActivityKind::AsActivity
    ) {
        return None;
    }
    // Activity Streams: only a `delete` is an event (a cheap look first:
    // Posts in that format come by here too).
    if kind == ActivityKind::AsActivity && !contains(line, b"\"delete\"") {
        return None;
    }
    let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(line) else { return None };
    let action = match action_of(&top)? {
        Ok(action) => action,
        Err(reason) => Action::NotApplied { line_hash: content_hash(line), reason },
    };
    Some(Event { time_ms, action })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `None`: not a compliance event. `Some(Err)`: one that cannot be applied.
fn action_of(top: &Map<String, Value>) -> Option<Result<Action, NotApplied>> {
    if top.get("verb").and_then(Value::as_str) == Some("delete") {
        // Activity Streams: `object.id` is `tag:search.twitter.com,2005:ID`,
        // `actor.id` is `id:twitter.com:ID`.
        let tagged = |v: Option<&Value>| {
            v.and_then(|o| o.get("id")).and_then(Value::as_str).and_then(|t| t.rsplit(':').next()?.parse::<u64>().ok())
        };
        return Some(
            tagged(top.get("object"))
                .map(|post| Action::DeletePost { post, user: tagged(top.get("actor")).unwrap_or(0) })
                .ok_or(NotApplied::MissingId),
        );
    }
    if let Some(Value::Object(delete)) = top.get("delete") {
        if let Some(Value::Object(s)) = delete.get("status") {
            return Some(id(s, "id").map(|post| Action::DeletePost { post, user: id(s, "user_id").unwrap_or(0) }));
        }
        if let Some(Value::Object(f)) = delete.get("favorite") {
            return Some(id(f, "tweet_id").and_then(|post| id(f, "user_id").map(|user| Action::Unlike { post, user })));
        }
        return None;
    }
    for (name, family, hide) in USER_EVENTS {
        if let Some(body) = top.get(name) {
            let user = body.as_object().ok_or(NotApplied::MissingId).and_then(|b| id(b, "id"));
            return Some(user.map(|user| Action::User { user, family, hide }));
        }
    }
    if let Some(body) = top.get("scrub_geo") {
        let Some(b) = body.as_object() else { return Some(Err(NotApplied::MissingId)) };
        return Some(
            id(b, "user_id").and_then(|user| id(b, "up_to_status_id").map(|up_to| Action::ScrubGeo { user, up_to })),
        );
    }
    if let Some(body) = top.get("status_withheld") {
        let Some(b) = body.as_object() else { return Some(Err(NotApplied::MissingId)) };
        return Some(id(b, "id").and_then(|post| {
            let user = id(b, "user_id").unwrap_or(0);
            countries(b).map(|countries| Action::WithholdPost { post, user, countries })
        }));
    }
    if let Some(body) = top.get("user_withheld") {
        let Some(b) = body.as_object() else { return Some(Err(NotApplied::MissingId)) };
        return Some(
            id(b, "id").and_then(|user| countries(b).map(|countries| Action::WithholdUser { user, countries })),
        );
    }
    None
}

/// `<field>_str`, else `<field>` as an integer or a string of digits.
fn id(obj: &Map<String, Value>, field: &str) -> Result<u64, NotApplied> {
    let exact = |v: &Value| match v {
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    obj.get(&format!("{field}_str"))
        .and_then(exact)
        .or_else(|| obj.get(field).and_then(exact))
        .ok_or(NotApplied::MissingId)
}

/// `withheld_in_countries`: sorted, without repeats.
fn countries(obj: &Map<String, Value>) -> Result<Vec<String>, NotApplied> {
    let Some(Value::Array(list)) = obj.get("withheld_in_countries") else { return Err(NotApplied::BadCountries) };
    if list.len() > MAX_COUNTRIES {
        return Err(NotApplied::BadCountries);
    }
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        match c.as_str() {
            Some(s)
                if !s.is_empty()
                    && s.len() <= MAX_COUNTRY_BYTES
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                out.push(s.to_string())
            }
            _ => return Err(NotApplied::BadCountries),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: ActivityKind, line: &str) -> Option<Action> {
        event_of(kind, 1_500_000_000_000, line.as_bytes()).map(|e| e.action)
    }

    #[test]
    fn every_kind_of_message() {
        use ActivityKind::{Compliance as C, PostDelete, Unlike};
        let big = 9_223_372_036_854_775_809u64;
        assert_eq!(
            ev(
                PostDelete,
                &format!(
                    r#"{{"delete":{{"status":{{"id":1,"id_str":"{big}","user_id":7,"user_id_str":"7"}},"timestamp_ms":"1"}}}}"#
                )
            ),
            Some(Action::DeletePost { post: big, user: 7 })
        );
        assert_eq!(
            ev(
                Unlike,
                r#"{"delete":{"favorite":{"tweet_id":5,"tweet_id_str":"5","user_id":8,"user_id_str":"8"},"timestamp_ms":"1"}}"#
            ),
            Some(Action::Unlike { post: 5, user: 8 })
        );
        for (name, family, hide) in USER_EVENTS {
            let line = format!(r#"{{"{name}":{{"id":12,"id_str":"12","timestamp_ms":"1"}}}}"#);
            assert_eq!(ev(C, &line), Some(Action::User { user: 12, family, hide }), "{name}");
        }
        assert_eq!(
            ev(
                C,
                r#"{"scrub_geo":{"user_id":14090452,"user_id_str":"14090452","up_to_status_id":23260136625,"up_to_status_id_str":"23260136625","timestamp_ms":"1"}}"#
            ),
            Some(Action::ScrubGeo { user: 14_090_452, up_to: 23_260_136_625 })
        );
        assert_eq!(
            ev(
                C,
                r#"{"status_withheld":{"id":1234567890,"user_id":123456,"withheld_in_countries":["DE","AR","DE"],"timestamp_ms":1}}"#
            ),
            Some(Action::WithholdPost {
                post: 1_234_567_890,
                user: 123_456,
                countries: vec!["AR".into(), "DE".into()]
            })
        );
        assert_eq!(
            ev(C, r#"{"user_withheld":{"id":123456,"withheld_in_countries":["TR"]},"timestamp_ms":"1"}"#),
            Some(Action::WithholdUser { user: 123_456, countries: vec!["TR".into()] })
        );
    }

    #[test]
    fn an_activity_streams_delete() {
        let line = r#"{"verb":"delete","objectType":"activity","postedTime":"2026-01-01T00:00:00.000Z","actor":{"objectType":"person","id":"id:twitter.com:42"},"object":{"objectType":"activity","id":"tag:search.twitter.com,2005:9223372036854775809"}}"#;
        assert_eq!(
            ev(ActivityKind::AsActivity, line),
            Some(Action::DeletePost { post: 9_223_372_036_854_775_809, user: 42 })
        );
        let post = r#"{"verb":"post","id":"tag:search.twitter.com,2005:1","body":"delete this"}"#;
        assert_eq!(ev(ActivityKind::AsActivity, post), None);
    }

    #[test]
    fn messages_that_ask_nothing_or_cannot_be_applied() {
        assert_eq!(ev(ActivityKind::Compliance, r#"{"limit":{"track":5,"timestamp_ms":"1"}}"#), None);
        assert_eq!(ev(ActivityKind::Post, r#"{"user_delete":{"id":1}}"#), None, "only compliance kinds are read");
        let line = r#"{"user_delete":{"id":1.5,"timestamp_ms":"1"}}"#;
        assert_eq!(
            ev(ActivityKind::Compliance, line),
            Some(Action::NotApplied { line_hash: content_hash(line.as_bytes()), reason: NotApplied::MissingId })
        );
        let line = r#"{"user_withheld":{"id":1,"withheld_in_countries":"DE","timestamp_ms":"1"}}"#;
        assert!(matches!(
            ev(ActivityKind::Compliance, line),
            Some(Action::NotApplied { reason: NotApplied::BadCountries, .. })
        ));
    }
}
