//! The typed fields of an activity for the Parquet columns, read from its
//! raw JSON with a borrowed parse (native format and Activity Streams).
//! Nothing here ever changes the raw bytes; a line whose fields do not
//! parse keeps its kind, key, time and raw JSON, with the other columns null.

use std::borrow::Cow;

use gapless_storage::frame::Entry;
use gapless_storage::Key;
use serde::Deserialize;

/// The columns derived from one record.
#[derive(Debug, Default, PartialEq)]
pub struct Fields {
    pub id: Option<i64>,
    pub created_at_ms: Option<i64>,
    pub user_id: Option<i64>,
    pub screen_name: Option<String>,
    pub lang: Option<String>,
    pub text: Option<String>,
    pub retweeted_id: Option<i64>,
    pub quoted_id: Option<i64>,
    pub in_reply_to_id: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Raw<'a> {
    #[serde(borrow)]
    id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<IdValue<'a>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "postedTime")]
    posted_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    full_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    extended_tweet: Option<Extended<'a>>,
    #[serde(borrow)]
    long_object: Option<Extended<'a>>,
    #[serde(borrow)]
    user: Option<User<'a>>,
    #[serde(borrow)]
    actor: Option<Actor<'a>>,
    #[serde(borrow)]
    lang: Option<Cow<'a, str>>,
    #[serde(borrow)]
    twitter_lang: Option<Cow<'a, str>>,
    #[serde(borrow)]
    retweeted_status: Option<IdOnly<'a>>,
    #[serde(borrow)]
    quoted_status_id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_reply_to_status_id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    favorited_status: Option<IdOnly<'a>>,
    #[serde(borrow)]
    delete: Option<Delete<'a>>,
    #[serde(borrow)]
    object: Option<AsObject<'a>>,
    #[serde(borrow)]
    verb: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "inReplyTo")]
    in_reply_to: Option<AsLink<'a>>,
}

/// `id` is a number in the native format and a tag string in Activity Streams.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue<'a> {
    Num(u64),
    #[serde(borrow)]
    Str(Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Extended<'a> {
    #[serde(borrow)]
    full_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct User<'a> {
    #[serde(borrow)]
    id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    screen_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Actor<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "preferredUsername")]
    preferred_username: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<User<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Delete<'a> {
    #[serde(borrow)]
    status: Option<DeleteStatus<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteStatus<'a> {
    #[serde(borrow)]
    user_id_str: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AsObject<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AsLink<'a> {
    #[serde(borrow)]
    link: Option<Cow<'a, str>>,
}

fn int(s: &Option<Cow<'_, str>>) -> Option<i64> {
    s.as_deref().and_then(|s| s.trim().parse::<i64>().ok())
}

/// The number after the last `:` or `/` of an Activity Streams id or link
/// (`tag:search.twitter.com,2005:123`, `id:twitter.com:42`, `http://twitter.com/a/statuses/123`).
fn tail_id(s: &str) -> Option<i64> {
    s.rsplit([':', '/']).next().and_then(|t| t.parse().ok())
}

/// `Tue Jul 18 23:25:04 +0000 2017` or RFC 3339, in Unix milliseconds.
pub fn parse_created_at(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|d| d.timestamp_millis())
}

fn to_i64(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// Reads the fields of one record.
pub fn extract(entry: &Entry, raw: &[u8]) -> Fields {
    let mut f = Fields::default();
    // From the key, which the format guarantees.
    match entry.key {
        Key::Post(id) | Key::PostDelete(id) => f.id = to_i64(id),
        Key::Unlike { tweet_id, user_id, .. } => {
            f.id = to_i64(tweet_id);
            f.user_id = to_i64(user_id);
        }
        Key::Like(_) | Key::Hashed(_) => {}
    }
    let Ok(r) = serde_json::from_slice::<Raw>(raw) else { return f };
    if f.id.is_none() {
        f.id = r.favorited_status.as_ref().and_then(|s| int(&s.id_str)).or_else(|| int(&r.id_str)).or_else(|| match &r
            .id
        {
            Some(IdValue::Num(n)) => to_i64(*n),
            Some(IdValue::Str(s)) => tail_id(s),
            _ => None,
        });
    }
    f.created_at_ms = r
        .created_at
        .as_deref()
        .and_then(parse_created_at)
        .or_else(|| r.posted_time.as_deref().and_then(parse_created_at));
    let user = r.user.as_ref();
    if f.user_id.is_none() {
        f.user_id = user
            .and_then(|u| int(&u.id_str))
            .or_else(|| r.actor.as_ref().and_then(|a| a.id.as_deref()).and_then(tail_id))
            .or_else(|| r.delete.as_ref().and_then(|d| d.status.as_ref()).and_then(|s| int(&s.user_id_str)));
    }
    f.screen_name = user
        .and_then(|u| u.screen_name.as_deref())
        .or_else(|| r.actor.as_ref().and_then(|a| a.preferred_username.as_deref()))
        .map(str::to_string);
    f.lang = r.lang.as_deref().or(r.twitter_lang.as_deref()).map(str::to_string);
    f.text = r
        .extended_tweet
        .as_ref()
        .and_then(|e| e.full_text.as_deref())
        .or(r.full_text.as_deref())
        .or(r.text.as_deref())
        .or_else(|| r.long_object.as_ref().and_then(|l| l.body.as_deref()))
        .or(r.body.as_deref())
        .map(str::to_string);
    f.retweeted_id = r.retweeted_status.as_ref().and_then(|s| int(&s.id_str)).or_else(|| {
        // Activity Streams: a share's object is the shared Post.
        r.object.as_ref().filter(|_| r.verb.as_deref() == Some("share")).and_then(|o| o.id.as_deref()).and_then(tail_id)
    });
    f.quoted_id = int(&r.quoted_status_id_str);
    f.in_reply_to_id = int(&r.in_reply_to_status_id_str)
        .or_else(|| r.in_reply_to.as_ref().and_then(|l| l.link.as_deref()).and_then(tail_id));
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use gapless_storage::ActivityKind;

    fn entry(kind: ActivityKind, key: Key) -> Entry {
        Entry { kind, key, time_ms: 0, len: 0 }
    }

    #[test]
    fn native_post_fields() {
        let raw = br#"{"created_at":"Tue Jul 18 23:25:04 +0000 2017","id":887453193294282752,"id_str":"887453193294282752","text":"RT short","extended_tweet":{"full_text":"long text"},"in_reply_to_status_id_str":"5","quoted_status_id_str":"6","retweeted_status":{"id_str":"7","user":{"id_str":"1"}},"user":{"id":42,"id_str":"42","screen_name":"bob"},"lang":"en"}"#;
        let f = extract(&entry(ActivityKind::Post, Key::Post(887453193294282752)), raw);
        assert_eq!(f.id, Some(887453193294282752));
        assert_eq!(f.created_at_ms, Some(1_500_420_304_000));
        assert_eq!(f.user_id, Some(42));
        assert_eq!(f.screen_name.as_deref(), Some("bob"));
        assert_eq!(f.text.as_deref(), Some("long text"));
        assert_eq!((f.retweeted_id, f.quoted_id, f.in_reply_to_id), (Some(7), Some(6), Some(5)));
        assert_eq!(f.lang.as_deref(), Some("en"));
    }

    #[test]
    fn activity_streams_and_deletes_and_junk() {
        let raw = br#"{"id":"tag:search.twitter.com,2005:123","verb":"post","postedTime":"2017-07-18T23:25:04.000Z","body":"hi","actor":{"id":"id:twitter.com:99","preferredUsername":"al"},"twitter_lang":"de","inReplyTo":{"link":"http://twitter.com/x/statuses/77"}}"#;
        let f = extract(&entry(ActivityKind::AsActivity, Key::Post(123)), raw);
        assert_eq!((f.id, f.user_id, f.in_reply_to_id), (Some(123), Some(99), Some(77)));
        assert_eq!(f.screen_name.as_deref(), Some("al"));
        assert_eq!(f.lang.as_deref(), Some("de"));
        assert_eq!(f.text.as_deref(), Some("hi"));
        assert_eq!(f.created_at_ms, Some(1_500_420_304_000));
        let raw = br#"{"delete":{"status":{"id":5,"id_str":"5","user_id":8,"user_id_str":"8"},"timestamp_ms":"1500420304000"}}"#;
        let f = extract(&entry(ActivityKind::PostDelete, Key::PostDelete(5)), raw);
        assert_eq!((f.id, f.user_id), (Some(5), Some(8)));
        // Duplicate keys or odd types: the key-derived columns stay.
        let f = extract(&entry(ActivityKind::Post, Key::Post(9)), br#"{"id_str":"9","id_str":"9","user":3}"#);
        assert_eq!(f, Fields { id: Some(9), ..Fields::default() });
    }
}
