//! Tests of classification: kinds, keys, times, rejections, hostile input.

use super::*;
use proptest::prelude::*;

const NATIVE: &str = include_str!("../../tests/fixtures/tweet_parser/original_format_examples.json");
const ACTIVITY_STREAMS: &str = include_str!("../../tests/fixtures/tweet_parser/activity_streams_examples.json");

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
    let key = Key::Unlike { tweet_id: 9_223_372_036_854_775_809, user_id: u64::MAX, timestamp_ms: 1_480_437_031_205 };
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
    let done =
        r#"{"info":{"message":"Recovery Request Completed","sent":"2023-07-05T17:09:12.070Z","activity_count":1234}}"#;
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
