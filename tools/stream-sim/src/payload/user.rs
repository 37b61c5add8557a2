//! The user population: `USERS` users, each a pure function of the seed and
//! its index (its ID, screen name and profile), and the `user` object that
//! Posts and likes embed.

use super::{pick_lang, words, Writer};
use crate::clock::twitter_date;
use crate::json::Obj;
use crate::rng::Rng;
use crate::snowflake::{snowflake, snowflake_ms};
use crate::words::{COLORS, PLACES, SYLLABLES};

impl Writer {
    /// The ID of user `idx`.
    pub(crate) fn user_id(&self, idx: u64) -> u64 {
        let mut r = Rng::from_words(&[self.seed, 0x05E5, idx]);
        if r.chance(0.45) {
            r.range(12, 3_000_000_000)
        } else {
            // Accounts created 2014..2025 have snowflake IDs.
            let ms = 1_400_000_000_000 + r.below(340_000_000_000) as i64;
            snowflake(ms, r.below(1024), r.below(4096))
        }
    }

    /// The random stream of user `idx`'s profile.
    fn profile_rng(&self, idx: u64) -> Rng {
        Rng::from_words(&[self.seed, 0x05E6, idx])
    }

    /// The screen name of user `idx` (as its user object has it).
    pub(super) fn screen_name(&self, idx: u64) -> String {
        let mut r = self.profile_rng(idx);
        let _ = pick_lang(&mut r);
        draw_screen_name(&mut r)
    }

    /// The `user` object of user `idx`.
    pub(super) fn write_user(&self, out: &mut String, idx: u64) {
        let id = self.user_id(idx);
        let mut r = self.profile_rng(idx);
        let lang = pick_lang(&mut r);
        let screen = draw_screen_name(&mut r);
        let name = words(&mut r, lang, 1, 3);
        let created_ms =
            if id > 10_000_000_000 { snowflake_ms(id) } else { 1_170_000_000_000 + (id as i64 % 230_000_000_000) };
        let place = if r.chance(0.6) { Some(r.pick(PLACES)) } else { None };
        let followers = (r.unit().powi(4) * 2_000_000.0) as u64;
        let verified = followers > 1_500_000 && r.chance(0.5);
        let desc = if r.chance(0.8) { Some(words(&mut r, lang, 4, 18)) } else { None };
        let img = r.next_u64() % 1_000_000_000_000_000_000;
        let mut o = Obj::new(out);
        o.num("id", id)
            .str("id_str", &id.to_string())
            .str("name", &name)
            .str("screen_name", &screen)
            .opt_str("location", place.map(|p| p.0))
            .opt_str("url", if r.chance(0.3) { Some("https://t.co/abcDEF1234") } else { None })
            .opt_str("description", desc.as_deref())
            .str("translator_type", "none")
            .bool("protected", false)
            .bool("verified", verified)
            .num("followers_count", followers)
            .num("friends_count", r.below(5000))
            .num("listed_count", r.below(200))
            .num("favourites_count", r.below(200_000))
            .num("statuses_count", r.range(1, 300_000))
            .str("created_at", &twitter_date(created_ms))
            .null("utc_offset")
            .null("time_zone")
            .bool("geo_enabled", r.chance(0.3))
            .str("lang", lang.code)
            .bool("contributors_enabled", false)
            .bool("is_translator", false)
            .str("profile_background_color", r.pick_str(COLORS))
            .str("profile_background_image_url", "")
            .str("profile_background_image_url_https", "")
            .bool("profile_background_tile", false)
            .str("profile_link_color", r.pick_str(COLORS))
            .str("profile_sidebar_border_color", r.pick_str(COLORS))
            .str("profile_sidebar_fill_color", r.pick_str(COLORS))
            .str("profile_text_color", r.pick_str(COLORS))
            .bool("profile_use_background_image", r.chance(0.7))
            .str(
                "profile_image_url",
                &format!("http://pbs.twimg.com/profile_images/{img}/a{:x}_normal.jpg", img % 9973),
            )
            .str(
                "profile_image_url_https",
                &format!("https://pbs.twimg.com/profile_images/{img}/a{:x}_normal.jpg", img % 9973),
            )
            .str(
                "profile_banner_url",
                &format!("https://pbs.twimg.com/profile_banners/{id}/{}", created_ms / 1000 + 86_400),
            )
            .bool("default_profile", r.chance(0.5))
            .bool("default_profile_image", false)
            .null("following")
            .null("follow_request_sent")
            .null("notifications");
        if let Some(p) = place {
            // Gnip Profile Geo enrichment.
            o.obj("derived", |o| {
                o.arr("locations", |a| {
                    a.obj(|o| {
                        o.str("country", p.2).str("country_code", p.3).str("locality", p.1).obj("geo", |o| {
                            o.arr("coordinates", |a| {
                                a.num(p.4).num(p.5);
                            })
                            .str("type", "point");
                        });
                    });
                });
            });
        }
        o.end();
    }
}

/// A screen name from a profile's random stream (right after its language).
fn draw_screen_name(r: &mut Rng) -> String {
    let mut screen = String::new();
    for _ in 0..r.range(2, 4) {
        screen.push_str(r.pick_str(SYLLABLES));
    }
    if r.chance(0.5) {
        screen.push_str(&r.below(10_000).to_string());
    }
    screen.truncate(15);
    screen
}
