//! The Activity Streams format (Gnip's older `original` format), optional per
//! stream (`format = "activity_streams"` in the config file).
//!
//! Posts and Post deletes are converted from the native payload the
//! generator writes, so both formats carry the same Posts with the same IDs,
//! times, partitions and latencies, and `truth` is the same. Shapes follow
//! `shared/fixtures/tweet_parser/activity_streams_examples.json`: IDs become
//! `tag:search.twitter.com,2005:{id}`, the user an `actor`, retweets the verb
//! `share` with the original activity as `object`. Likes streams have no
//! Activity Streams form and stay native; other compliance messages too.

use serde_json::{json, Map, Value};

use crate::clock::api_time;
use crate::snowflake::snowflake_ms;

fn s(v: &Value) -> Value {
    v.clone()
}

fn twitter_time_to_rfc3339(created_at: &Value, fallback_ms: i64) -> String {
    created_at
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_str(t, "%a %b %d %H:%M:%S %z %Y").ok())
        .map(|t| api_time(t.timestamp_millis()))
        .unwrap_or_else(|| api_time(fallback_ms))
}

fn actor(u: &Value) -> Value {
    let id = u["id_str"].as_str().unwrap_or("0");
    let screen = u["screen_name"].as_str().unwrap_or("");
    json!({
        "objectType": "person",
        "id": format!("id:twitter.com:{id}"),
        "link": format!("http://www.twitter.com/{screen}"),
        "displayName": s(&u["name"]),
        "postedTime": twitter_time_to_rfc3339(&u["created_at"], 0),
        "image": s(&u["profile_image_url_https"]),
        "summary": s(&u["description"]),
        "links": [{"href": s(&u["url"]), "rel": "me"}],
        "friendsCount": s(&u["friends_count"]),
        "followersCount": s(&u["followers_count"]),
        "listedCount": s(&u["listed_count"]),
        "statusesCount": s(&u["statuses_count"]),
        "favoritesCount": s(&u["favourites_count"]),
        "twitterTimeZone": s(&u["time_zone"]),
        "verified": s(&u["verified"]),
        "utcOffset": s(&u["utc_offset"]),
        "preferredUsername": screen,
        "languages": [s(&u["lang"])],
        "location": u["location"].as_str().map(|l| json!({"objectType": "place", "displayName": l})).unwrap_or(Value::Null),
    })
}

/// One native Post (already parsed) as an Activity Streams activity.
fn post(v: &Value) -> Value {
    let id = v["id_str"].as_str().unwrap_or("0").to_string();
    let ms = id.parse::<u64>().map(snowflake_ms).unwrap_or(0);
    let screen = v["user"]["screen_name"].as_str().unwrap_or("");
    let link = format!("http://twitter.com/{screen}/statuses/{id}");
    let posted = twitter_time_to_rfc3339(&v["created_at"], ms);
    let text = v.get("extended_tweet").map(|e| s(&e["full_text"])).unwrap_or_else(|| s(&v["text"]));
    let (verb, object) = match v.get("retweeted_status") {
        Some(rt) => ("share", post(rt)),
        None => (
            "post",
            json!({
                "objectType": "note",
                "id": format!("object:search.twitter.com,2005:{id}"),
                "summary": text,
                "link": link,
                "postedTime": posted,
            }),
        ),
    };
    let mut a = Map::new();
    a.insert("id".into(), json!(format!("tag:search.twitter.com,2005:{id}")));
    a.insert("objectType".into(), json!("activity"));
    a.insert("verb".into(), json!(verb));
    a.insert("postedTime".into(), json!(posted));
    a.insert(
        "generator".into(),
        json!({"displayName": v["source"].as_str().map(strip_tags).unwrap_or_default(), "link": "http://twitter.com"}),
    );
    a.insert(
        "provider".into(),
        json!({"objectType": "service", "displayName": "Twitter", "link": "http://www.twitter.com"}),
    );
    a.insert("link".into(), json!(link));
    a.insert("body".into(), text);
    a.insert("actor".into(), actor(&v["user"]));
    a.insert("object".into(), object);
    a.insert("favoritesCount".into(), s(&v["favorite_count"]));
    a.insert("retweetCount".into(), s(&v["retweet_count"]));
    a.insert("twitter_entities".into(), s(&v["entities"]));
    a.insert("twitter_lang".into(), s(&v["lang"]));
    a.insert("twitter_filter_level".into(), s(&v["filter_level"]));
    if let Some(e) = v.get("extended_tweet") {
        a.insert(
            "long_object".into(),
            json!({"body": s(&e["full_text"]), "display_text_range": s(&e["display_text_range"]), "twitter_entities": s(&e["entities"])}),
        );
    }
    if let Some(q) = v.get("quoted_status") {
        a.insert("twitter_quoted_status".into(), post(q));
    }
    if let Some(p) = v.get("place").filter(|p| !p.is_null()) {
        a.insert(
            "location".into(),
            json!({
                "objectType": "place",
                "displayName": s(&p["full_name"]),
                "name": s(&p["name"]),
                "country_code": s(&p["country"]),
                "twitter_country_code": s(&p["country_code"]),
                "twitter_place_type": s(&p["place_type"]),
                "link": s(&p["url"]),
                "geo": s(&p["bounding_box"]),
            }),
        );
    }
    if let Some(r) = v.get("in_reply_to_status_id_str").filter(|r| !r.is_null()) {
        let who = v["in_reply_to_screen_name"].as_str().unwrap_or("");
        a.insert(
            "inReplyTo".into(),
            json!({"link": format!("http://twitter.com/{who}/statuses/{}", r.as_str().unwrap_or(""))}),
        );
    }
    if let Some(e) = v.get("edit_history") {
        a.insert("edit_history".into(), s(e));
    }
    if let Some(m) = v.get("matching_rules") {
        a.insert("gnip".into(), json!({"matching_rules": s(m)}));
    }
    Value::Object(a)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Convert one native line. Posts and Post deletes change form; anything
/// else (likes, other compliance) is returned unchanged.
pub fn convert(native: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(native) else {
        return native.to_string();
    };
    if let Some(st) = v.get("delete").and_then(|d| d.get("status")) {
        let ms: i64 = v["delete"]["timestamp_ms"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let id = st["id_str"].as_str().unwrap_or("0");
        let uid = st["user_id_str"].as_str().unwrap_or("0");
        let out = json!({
            "verb": "delete",
            "objectType": "activity",
            "postedTime": api_time(ms),
            "timestamp_ms": ms.to_string(),
            "actor": {"objectType": "person", "id": format!("id:twitter.com:{uid}")},
            "object": {"objectType": "activity", "id": format!("tag:search.twitter.com,2005:{id}")},
        });
        return out.to_string();
    }
    if v.get("id_str").is_some() && v.get("user").is_some() && v.get("favorited_status").is_none() {
        let mut p = post(&v);
        if let Some(ts) = v.get("timestamp_ms") {
            if let Value::Object(m) = &mut p {
                m.insert("timestamp_ms".into(), ts.clone());
            }
        }
        return p.to_string();
    }
    native.to_string()
}

#[cfg(test)]
mod tests {
    use crate::generator::{Generator, Key};
    use crate::stream::{Format, StreamKind, StreamSpec};

    #[test]
    fn same_posts_in_activity_streams_form() {
        let mut native = StreamSpec::new(StreamKind::Sample10, "prod");
        native.rate = 300.0;
        let mut as_spec = native.clone();
        as_spec.format = Format::ActivityStreams;
        let sec = 1_767_225_600;
        let a = Generator::new(5, &native).second(sec);
        let b = Generator::new(5, &as_spec).second(sec);
        assert_eq!(a.len(), b.len());
        let mut shares = 0;
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.key, y.key);
            assert_eq!((x.time_ms, x.deliver_ms, x.partition), (y.time_ms, y.deliver_ms, y.partition));
            let v: serde_json::Value = serde_json::from_slice(&y.line).unwrap();
            match &x.key {
                Key::Post(id) => {
                    assert_eq!(v["id"].as_str().unwrap(), format!("tag:search.twitter.com,2005:{id}"));
                    assert_eq!(v["objectType"], "activity");
                    assert!(v["actor"]["id"].as_str().unwrap().starts_with("id:twitter.com:"));
                    if v["verb"] == "share" {
                        shares += 1;
                        assert!(v["object"]["id"].as_str().unwrap().starts_with("tag:search.twitter.com,2005:"));
                    } else {
                        assert_eq!(v["verb"], "post");
                    }
                }
                Key::Delete(id) => {
                    assert_eq!(v["verb"], "delete");
                    assert_eq!(v["object"]["id"].as_str().unwrap(), format!("tag:search.twitter.com,2005:{id}"));
                }
                _ => assert_eq!(x.line, y.line),
            }
        }
        assert!(shares > 10);
    }
}
