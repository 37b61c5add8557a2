//! Everything on a stream that is not a Post: likes and unlikes (the Likes
//! stream), Post deletes and the other compliance messages.

use super::{user_index, Writer, USERS};
use crate::clock::twitter_date;
use crate::json::Obj;
use crate::rng::Rng;
use crate::snowflake::{past_snowflake, snowflake};

impl Writer {
    /// A like: the liked Post (an original) and the user who liked it.
    pub(crate) fn write_like(&self, out: &mut String, id: u128, ms: i64, r: &mut Rng) {
        let liked_ms = ms - r.range(1_000, 2 * 86_400_000) as i64;
        let liked_id = snowflake(liked_ms, r.below(1024), r.below(4096));
        let liker = user_index(r);
        let fav = self.original(liked_id, liked_ms);
        let mut user = String::with_capacity(1536);
        self.write_user(&mut user, liker);
        let mut o = Obj::new(out);
        o.str("id", &format!("{id:032x}"))
            .str("created_at", &twitter_date(ms))
            .num("timestamp_ms", ms)
            .raw("favorited_status", &fav.json)
            .raw("user", &user);
        o.end();
    }

    /// One of the five compliance messages other than a Post delete.
    pub(crate) fn write_compliance(&self, out: &mut String, ms: i64, r: &mut Rng) {
        let uid = self.user_id(r.below(USERS));
        let ts = ms.to_string();
        let mut o = Obj::new(out);
        match r.below(5) {
            0 => {
                let up_to = past_snowflake(r, ms, 1_000, 30 * 86_400_000);
                o.obj("scrub_geo", |o| {
                    o.num("user_id", uid)
                        .str("user_id_str", &uid.to_string())
                        .num("up_to_status_id", up_to)
                        .str("up_to_status_id_str", &up_to.to_string())
                        .str("timestamp_ms", &ts);
                });
            }
            1 => {
                let sid = past_snowflake(r, ms, 1_000, 30 * 86_400_000);
                o.obj("status_withheld", |o| {
                    o.num("id", sid)
                        .num("user_id", uid)
                        .arr("withheld_in_countries", |a| {
                            a.str("DE").str("FR");
                        })
                        .str("timestamp_ms", &ts);
                });
            }
            2 => {
                o.obj("user_withheld", |o| {
                    o.num("id", uid)
                        .arr("withheld_in_countries", |a| {
                            a.str("TR");
                        })
                        .str("timestamp_ms", &ts);
                });
            }
            3 => {
                o.obj("user_protect", |o| {
                    o.num("id", uid).str("id_str", &uid.to_string()).str("timestamp_ms", &ts);
                });
            }
            _ => {
                o.obj("user_delete", |o| {
                    o.num("id", uid).str("id_str", &uid.to_string()).str("timestamp_ms", &ts);
                });
            }
        }
        o.end();
    }
}

/// A Post delete.
pub(crate) fn write_delete(out: &mut String, status_id: u64, user_id: u64, ms: i64) {
    write_delete_of(out, "status", "id", status_id, user_id, ms);
}

/// An unlike (the delete of a like).
pub(crate) fn write_unlike(out: &mut String, tweet_id: u64, user_id: u64, ms: i64) {
    write_delete_of(out, "favorite", "tweet_id", tweet_id, user_id, ms);
}

/// `{"delete":{WHAT:{ID_KEY:..,ID_KEY_str:"..",user_id:..,user_id_str:".."},"timestamp_ms":".."}}`
fn write_delete_of(out: &mut String, what: &str, id_key: &str, id: u64, user_id: u64, ms: i64) {
    let mut o = Obj::new(out);
    o.obj("delete", |o| {
        o.obj(what, |o| {
            o.num(id_key, id)
                .str(&format!("{id_key}_str"), &id.to_string())
                .num("user_id", user_id)
                .str("user_id_str", &user_id.to_string());
        })
        .str("timestamp_ms", &ms.to_string());
    });
    o.end();
}
