//! Everything on a stream that is not a Post: likes and unlikes (the Likes
//! stream), Post deletes and the other compliance messages.
//!
//! The generator decides what a message names (a real earlier Post, its
//! author, a real earlier like: see `generator::heads`); this module only
//! writes the bytes, in the shapes of the API documents.

use super::{user_index, Writer};
use crate::clock::twitter_date;
use crate::json::Obj;
use crate::rng::Rng;
use crate::snowflake::snowflake;

/// What a like likes, and who: its first draws, which the generator reads
/// back cheaply to name the like in an unlike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Liked {
    pub liked_id: u64,
    pub liked_ms: i64,
    pub liker_idx: u64,
}

/// Draw what a like of time `ms` likes (up to 2 days earlier) and who likes it.
pub(crate) fn draw_liked(r: &mut Rng, ms: i64) -> Liked {
    let liked_ms = ms - r.range(1_000, 2 * 86_400_000) as i64;
    let liked_id = snowflake(liked_ms, r.below(1024), r.below(4096));
    let liker_idx = user_index(r);
    Liked { liked_id, liked_ms, liker_idx }
}

/// The user-level compliance events: each family (delete, protect, suspend)
/// has an event that hides the user and one that undoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum UserEvent {
    Delete,
    Undelete,
    Protect,
    Unprotect,
    Suspend,
    Unsuspend,
}

impl UserEvent {
    /// The message's top-level key.
    pub fn name(self) -> &'static str {
        match self {
            UserEvent::Delete => "user_delete",
            UserEvent::Undelete => "user_undelete",
            UserEvent::Protect => "user_protect",
            UserEvent::Unprotect => "user_unprotect",
            UserEvent::Suspend => "user_suspend",
            UserEvent::Unsuspend => "user_unsuspend",
        }
    }

    /// For an undo event, the event of its family that it undoes.
    pub fn undoes(self) -> Option<UserEvent> {
        match self {
            UserEvent::Undelete => Some(UserEvent::Delete),
            UserEvent::Unprotect => Some(UserEvent::Protect),
            UserEvent::Unsuspend => Some(UserEvent::Suspend),
            _ => None,
        }
    }
}

/// A compliance message other than a Post delete, as the generator decided
/// it (the countries of the withheld ones are drawn while writing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compliance {
    ScrubGeo { user_id: u64, up_to: u64 },
    StatusWithheld { status_id: u64, user_id: u64 },
    UserWithheld { user_id: u64 },
    User { event: UserEvent, user_id: u64 },
}

/// Country codes of withheld messages.
const COUNTRIES: [&str; 8] = ["AR", "BR", "DE", "FR", "GB", "IN", "RU", "TR"];

/// One to three distinct countries, in drawn order.
fn countries(r: &mut Rng) -> Vec<&'static str> {
    let mut pool = COUNTRIES.to_vec();
    let n = r.range(1, 3) as usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let i = r.below(pool.len() as u64) as usize;
        out.push(pool.swap_remove(i));
    }
    out
}

impl Writer {
    /// A like: the liked Post (an original) and the user who liked it.
    pub(crate) fn write_like(&self, out: &mut String, id: u128, ms: i64, liked: &Liked) {
        let fav = self.original(liked.liked_id, liked.liked_ms);
        let mut user = String::with_capacity(1536);
        self.write_user(&mut user, liked.liker_idx);
        let mut o = Obj::new(out);
        o.str("id", &format!("{id:032x}"))
            .str("created_at", &twitter_date(ms))
            .num("timestamp_ms", ms)
            .raw("favorited_status", &fav.json)
            .raw("user", &user);
        o.end();
    }
}

/// A compliance message other than a Post delete.
pub(crate) fn write_compliance(out: &mut String, c: &Compliance, ms: i64, r: &mut Rng) {
    let ts = ms.to_string();
    let mut o = Obj::new(out);
    match *c {
        Compliance::ScrubGeo { user_id, up_to } => {
            o.obj("scrub_geo", |o| {
                o.num("user_id", user_id)
                    .str("user_id_str", &user_id.to_string())
                    .num("up_to_status_id", up_to)
                    .str("up_to_status_id_str", &up_to.to_string())
                    .str("timestamp_ms", &ts);
            });
        }
        Compliance::StatusWithheld { status_id, user_id } => {
            let cs = countries(r);
            o.obj("status_withheld", |o| {
                o.num("id", status_id)
                    .num("user_id", user_id)
                    .arr("withheld_in_countries", |a| {
                        for c in &cs {
                            a.str(c);
                        }
                    })
                    .str("timestamp_ms", &ts);
            });
        }
        Compliance::UserWithheld { user_id } => {
            let cs = countries(r);
            o.obj("user_withheld", |o| {
                o.num("id", user_id)
                    .arr("withheld_in_countries", |a| {
                        for c in &cs {
                            a.str(c);
                        }
                    })
                    .str("timestamp_ms", &ts);
            });
        }
        Compliance::User { event, user_id } => {
            o.obj(event.name(), |o| {
                o.num("id", user_id).str("id_str", &user_id.to_string()).str("timestamp_ms", &ts);
            });
        }
    }
    o.end();
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
