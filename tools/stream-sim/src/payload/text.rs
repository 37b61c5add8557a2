//! A Post's text as it is built, with its entities (hashtags, links,
//! mentions) and their indices in code points, as Twitter counts them.

use super::tco;
use crate::json::Obj;
use crate::rng::Rng;

/// Text with its entities and their indices (in code points, as Twitter
/// counts them).
#[derive(Default)]
pub(super) struct TextBuilder {
    pub s: String,
    pub chars: usize,
    hashtags: Vec<(String, usize, usize)>,
    mentions: Vec<(String, u64, usize, usize)>,
    urls: Vec<(String, String, String, usize, usize)>,
    pub has_url: bool,
}

impl TextBuilder {
    pub fn push(&mut self, t: &str) {
        self.s.push_str(t);
        self.chars += t.chars().count();
    }

    pub fn hashtag(&mut self, tag: &str) {
        let start = self.chars;
        self.push("#");
        self.push(tag);
        self.hashtags.push((tag.to_string(), start, self.chars));
    }

    pub fn mention(&mut self, screen: &str, id: u64) {
        let start = self.chars;
        self.push("@");
        self.push(screen);
        self.mentions.push((screen.to_string(), id, start, self.chars));
    }

    pub fn url(&mut self, expanded: &str, display: &str, r: &mut Rng) {
        let t = tco(r);
        let start = self.chars;
        self.push(&t);
        self.urls.push((t, expanded.to_string(), display.to_string(), start, self.chars));
        self.has_url = true;
    }

    /// Entities whose end is at most `limit`; `web` adds the
    /// `twitter.com/i/web/status` link of a truncated Post.
    pub fn write_entities(&self, o: &mut Obj<'_>, limit: usize, web: Option<(&str, u64)>) {
        o.arr("hashtags", |a| {
            for (t, s, e) in self.hashtags.iter().filter(|h| h.2 <= limit) {
                a.obj(|o| {
                    o.str("text", t).arr("indices", |a| {
                        a.num(s).num(e);
                    });
                });
            }
        })
        .arr("urls", |a| {
            for (t, x, d, s, e) in self.urls.iter().filter(|u| u.4 <= limit) {
                a.obj(|o| {
                    o.str("url", t)
                        .str("expanded_url", x)
                        .str("display_url", d)
                        .arr("indices", |a| {
                            a.num(s).num(e);
                        })
                        .obj("unwound", |o| {
                            o.str("url", x).num("status", 200).str("title", d).str("description", d);
                        });
                });
            }
            if let Some((u, id)) = web {
                a.obj(|o| {
                    o.str("url", u)
                        .str("expanded_url", &format!("https://twitter.com/i/web/status/{id}"))
                        .str("display_url", &format!("twitter.com/i/web/status/{}…", &id.to_string()[..1]))
                        .arr("indices", |a| {
                            a.num(116).num(139);
                        });
                });
            }
        })
        .arr("user_mentions", |a| {
            for (sn, id, s, e) in self.mentions.iter().filter(|m| m.3 <= limit) {
                a.obj(|o| {
                    o.str("screen_name", sn).str("name", sn).num("id", id).str("id_str", &id.to_string()).arr(
                        "indices",
                        |a| {
                            a.num(s).num(e);
                        },
                    );
                });
            }
        })
        .arr("symbols", |_| {});
    }
}
