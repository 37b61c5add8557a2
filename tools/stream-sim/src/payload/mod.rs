//! Payload writing: the exact JSON bytes of each kind of activity, given
//! what the generator ([`crate::generator`]) decided (its kind, key and
//! time) and its random stream.
//!
//! The generator schedules (how many activities a second holds, their
//! times, keys, partitions and latencies); this module only writes. Every
//! payload is a pure function of the seed, the stream and the activity's own
//! random stream, drawn in a fixed order: reordering a draw changes every
//! byte after it, which the pinned hashes in the generator's tests catch.
//!
//! - [`post`]: Posts (retweets, quotes, replies, long Posts, embedded
//!   originals), [`text`]: a Post's text and its entities,
//! - [`user`]: the user population and user objects,
//! - [`messages`]: likes, unlikes, deletes and compliance messages.
//!
//! A Post's author and whether it is geotagged, and what a like likes, are
//! decided by the generator (its cheap *heads*), so that compliance
//! messages can name them without writing payloads.

mod messages;
mod post;
mod text;
mod user;

pub(crate) use messages::{draw_liked, write_compliance, write_delete, write_unlike, Compliance, Liked, UserEvent};

use crate::rng::{mix64, Rng};
use crate::stream::StreamKind;
use crate::words::{Lang, LANGS};

/// Number of distinct users.
pub(crate) const USERS: u64 = 5_000_000;

/// Writes the payloads of one stream.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    seed: u64,
    /// A hash of the stream's name (PowerTrack rule IDs derive from it).
    stream_word: u64,
    kind: StreamKind,
}

impl Writer {
    pub fn new(seed: u64, stream_word: u64, kind: StreamKind) -> Self {
        Writer { seed, stream_word, kind }
    }
}

/// A skewed user pick: a few users post a lot.
pub(crate) fn user_index(r: &mut Rng) -> u64 {
    let u = r.unit();
    (u * u * u * USERS as f64) as u64
}

/// Whether stream Post `id` carries a place (`geo`, `coordinates`,
/// `place`): about 3 % do. A function of the ID alone, so that the generator
/// can find geotagged Posts (for `scrub_geo`) without writing them.
pub(crate) fn geo_tagged(seed: u64, id: u64) -> bool {
    mix64(seed ^ mix64(id ^ 0x6E0_7A66)) % 1000 < 30
}

fn pick_lang(r: &mut Rng) -> &'static Lang {
    let total: u32 = LANGS.iter().map(|l| l.weight).sum();
    let mut x = r.below(u64::from(total)) as u32;
    for l in LANGS {
        if x < l.weight {
            return l;
        }
        x -= l.weight;
    }
    &LANGS[0]
}

fn words(r: &mut Rng, lang: &Lang, min: u64, max: u64) -> String {
    let n = r.range(min, max);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 && lang.spaced {
            s.push(' ');
        }
        s.push_str(r.pick_str(lang.words));
    }
    s
}

/// A `https://t.co/` short link.
fn tco(r: &mut Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from("https://t.co/");
    for _ in 0..10 {
        s.push(A[r.below(A.len() as u64) as usize] as char);
    }
    s
}
