//! Realistic Decahose-like input for the benchmarks: native-format Posts of
//! ~3 KB (user object, entities, multilingual text of varied length, some
//! retweets and replies), real snowflake IDs consistent with
//! `timestamp_ms` and `created_at`, at a given rate, and ~2% deletes.
//! Deterministic: a fixed seed gives the same bytes.

#![allow(dead_code)]

pub struct Rng(u64, std::collections::HashSet<u64>);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed, std::collections::HashSet::new())
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

const WORDS: &[&str] = &[
    "the",
    "stream",
    "archive",
    "minute",
    "coverage",
    "today",
    "news",
    "música",
    "fútbol",
    "mañana",
    "café",
    "données",
    "très",
    "aujourd'hui",
    "Zeitung",
    "schön",
    "über",
    "東京",
    "ニュース",
    "今日",
    "天气",
    "新闻",
    "спасибо",
    "новости",
    "مرحبا",
    "أخبار",
    "नमस्ते",
    "ข่าว",
    "😂",
    "🔥",
    "❤️",
    "#breaking",
    "@someone",
    "https://t.co/xYz12AbC",
    "great",
    "match",
    "election",
    "weather",
    "update",
    "live",
    "video",
    "photo",
    "thread",
    "1/",
    "lol",
    "gm",
];
const LANGS: &[&str] = &["en", "es", "ja", "pt", "ar", "fr", "de", "ru", "tr", "th", "hi", "und"];
const SOURCES: &[&str] = &[
    r#"<a href=\"http://twitter.com/download/iphone\" rel=\"nofollow\">Twitter for iPhone</a>"#,
    r#"<a href=\"http://twitter.com/download/android\" rel=\"nofollow\">Twitter for Android</a>"#,
    r#"<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>"#,
];

fn text(rng: &mut Rng, words: u64) -> String {
    let n = 3 + rng.below(words);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn created_at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%a %b %d %H:%M:%S +0000 %Y").to_string()
}

/// A snowflake of time `ms`: machines are 4 datacenters × 32 workers, the
/// sequence is almost always small (a 10% sample of the firehose). Unique
/// per generator, as real IDs are: a taken ID takes the next sequence.
pub fn snowflake(rng: &mut Rng, ms: i64) -> u64 {
    let machine = (rng.below(4) << 5) | rng.below(32);
    let mut seq = if rng.below(10) == 0 { rng.below(8) } else { 0 };
    loop {
        let id = (((ms - SNOWFLAKE_EPOCH_MS) as u64) << 22) | (machine << 12) | seq;
        if rng.1.insert(id) {
            return id;
        }
        seq += 1;
    }
}

fn user(rng: &mut Rng) -> String {
    let uid = 10_000_000 + rng.below(1_500_000_000_000);
    let name = format!("user{}", rng.below(100_000_000));
    format!(
        r#"{{"id":{uid},"id_str":"{uid}","name":"{name} {w}","screen_name":"{name}","location":"{loc}","url":null,"description":"{desc}","translator_type":"none","protected":false,"verified":{verified},"followers_count":{fo},"friends_count":{fr},"listed_count":{li},"favourites_count":{fa},"statuses_count":{st},"created_at":"{ca}","utc_offset":null,"time_zone":null,"geo_enabled":false,"lang":null,"contributors_enabled":false,"is_translator":false,"profile_background_color":"F5F8FA","profile_background_image_url":"","profile_background_image_url_https":"","profile_background_tile":false,"profile_link_color":"1DA1F2","profile_sidebar_border_color":"C0DEED","profile_sidebar_fill_color":"DDEEF6","profile_text_color":"333333","profile_use_background_image":true,"profile_image_url":"http://pbs.twimg.com/profile_images/{pi}/avatar_normal.jpg","profile_image_url_https":"https://pbs.twimg.com/profile_images/{pi}/avatar_normal.jpg","profile_banner_url":"https://pbs.twimg.com/profile_banners/{uid}/{pb}","default_profile":true,"default_profile_image":false,"following":null,"follow_request_sent":null,"notifications":null,"withheld_in_countries":[]}}"#,
        w = rng.pick(WORDS),
        loc = rng.pick(&["", "Tokyo", "São Paulo", "London, England", "Lagos", "New York, NY", "Jakarta"]),
        desc = text(rng, 20),
        verified = rng.below(50) == 0,
        fo = rng.below(100_000),
        fr = rng.below(5_000),
        li = rng.below(200),
        fa = rng.below(50_000),
        st = rng.below(200_000),
        ca = created_at(1_230_000_000_000 + rng.below(500_000_000_000) as i64),
        pi = rng.below(1 << 60),
        pb = rng.below(2_000_000_000),
    )
}

/// One native Post created at `ms`.
pub fn post(rng: &mut Rng, ms: i64) -> (u64, String) {
    let id = snowflake(rng, ms);
    let body = text(rng, 40);
    let lang = rng.pick(LANGS);
    let reply = rng.below(4) == 0;
    let (rs, ru) =
        if reply { (snowflake(rng, ms - 60_000), rng.below(1 << 40).to_string()) } else { (0, String::new()) };
    let mut s = format!(
        r#"{{"created_at":"{ca}","id":{id},"id_str":"{id}","text":"{body}","display_text_range":[0,{len}],"source":"{src}","truncated":false,"in_reply_to_status_id":{irs},"in_reply_to_status_id_str":{irss},"in_reply_to_user_id":{iru},"in_reply_to_user_id_str":{irus},"in_reply_to_screen_name":null,"user":{user},"geo":null,"coordinates":null,"place":null,"contributors":null,"is_quote_status":false,"quote_count":0,"reply_count":0,"retweet_count":0,"favorite_count":0,"entities":{{"hashtags":[{{"text":"{tag}","indices":[3,12]}}],"urls":[{{"url":"https://t.co/{u}","expanded_url":"https://example.com/{u}","display_url":"example.com/{u}","indices":[20,43],"unwound":{{"url":"https://example.com/{u}","status":200,"title":"{title}","description":"{udesc}"}}}}],"user_mentions":[],"symbols":[]}},"favorited":false,"retweeted":false,"filter_level":"low","lang":"{lang}","edit_history":{{"initial_tweet_id":"{id}","edit_tweet_ids":["{id}"]}},"edit_controls":{{"editable_until_ms":{eu},"edits_remaining":5}},"editable":true,"matching_rules":[{{"tag":null,"id":{rule},"id_str":"{rule}"}}],"timestamp_ms":"{ms}"}}"#,
        ca = created_at(ms),
        len = body.chars().count(),
        src = rng.pick(SOURCES),
        irs = if reply { rs.to_string() } else { "null".into() },
        irss = if reply { format!("\"{rs}\"") } else { "null".into() },
        iru = if reply { ru.clone() } else { "null".into() },
        irus = if reply { format!("\"{ru}\"") } else { "null".into() },
        user = user(rng),
        tag = rng.pick(WORDS).trim_start_matches('#'),
        u = rng.below(1 << 40),
        title = text(rng, 8),
        udesc = text(rng, 16),
        eu = ms + 3_600_000,
        rule = rng.below(1 << 50),
    );
    s.shrink_to_fit();
    (id, s)
}

fn delete(rng: &mut Rng, ms: i64) -> String {
    let id = snowflake(rng, ms - 3_600_000);
    let uid = rng.below(1 << 40);
    format!(
        r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":{uid},"user_id_str":"{uid}"}},"timestamp_ms":"{ms}"}}}}"#
    )
}

/// `seconds` of a Decahose-like stream from `start_ms` at `rate` Posts/s:
/// lines in arrival order, ~2% of them Post deletes.
pub fn stream(seed: u64, start_ms: i64, seconds: i64, rate: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity((seconds as u64 * rate) as usize);
    for s in 0..seconds {
        for _ in 0..rate {
            let ms = start_ms + s * 1000 + rng.below(1000) as i64;
            if rng.below(50) == 0 {
                out.push(delete(&mut rng, ms));
            } else {
                out.push(post(&mut rng, ms).1);
            }
        }
    }
    out
}

/// Post IDs of one minute at `rate` Posts/s.
pub fn minute_of_ids(seed: u64, minute_start_ms: i64, rate: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..60 * rate)
        .map(|_| {
            let ms = minute_start_ms + rng.below(60_000) as i64;
            snowflake(&mut rng, ms)
        })
        .collect()
}
