//! What a report is asked for, and its form as a URL query string: the
//! admin API's `GET /coverage?QUERY` takes exactly these parameters.
//!
//! | parameter | meaning | default |
//! |---|---|---|
//! | `from`, `to` | the window, Unix seconds (widened to whole minutes) | both or neither: the server's choice |
//! | `stream` | a stream label; repeat for several | every registered stream |
//! | `pending_secs` | minutes ending after `now - pending_secs` are pending | 120 |
//! | `recovery_window_secs` | holes older than this are lost | 432000 (5 days) |
//! | `suspect_ratio` | see the audit | 0.5 |
//! | `now` | Unix seconds to judge against | the server's clock |
//!
//! `inspect-coverage --admin` without `--from`/`--to` leaves `from` and
//! `to` out: the server picks the window (its clock may be scaled).
//!
//! Values are percent-encoded (the `percent-encoding` crate): every byte
//! but ASCII letters, digits and `-_.~`; a `+` reads as a space.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::Error;

/// What a query value keeps as it is: the unreserved characters of RFC 3986.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub const DEFAULT_PENDING_SECS: i64 = 120;
pub const DEFAULT_RECOVERY_WINDOW_SECS: i64 = 5 * 86_400;
pub const DEFAULT_SUSPECT_RATIO: f64 = 0.5;

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub from_secs: i64,
    pub to_secs: i64,
    /// Empty: every registered stream.
    pub streams: Vec<String>,
    pub pending_secs: i64,
    pub recovery_window_secs: i64,
    pub suspect_ratio: f64,
    /// `None`: the clock of whoever computes the report.
    pub now_secs: Option<i64>,
}

impl Query {
    pub fn new(from_secs: i64, to_secs: i64) -> Query {
        Query {
            from_secs,
            to_secs,
            streams: Vec::new(),
            pending_secs: DEFAULT_PENDING_SECS,
            recovery_window_secs: DEFAULT_RECOVERY_WINDOW_SECS,
            suspect_ratio: DEFAULT_SUSPECT_RATIO,
            now_secs: None,
        }
    }

    /// The window widened to whole minutes: `[floor(from), ceil(to))`.
    pub fn minute_window(&self) -> (i64, i64) {
        let from = self.from_secs.div_euclid(60) * 60;
        let to = (self.to_secs + 59).div_euclid(60) * 60;
        (from, to.max(from))
    }

    pub fn to_query_string(&self) -> String {
        let mut q = format!(
            "from={}&to={}&pending_secs={}&recovery_window_secs={}&suspect_ratio={}",
            self.from_secs, self.to_secs, self.pending_secs, self.recovery_window_secs, self.suspect_ratio
        );
        for s in &self.streams {
            q.push_str("&stream=");
            q.extend(utf8_percent_encode(s, VALUE));
        }
        if let Some(n) = self.now_secs {
            q.push_str(&format!("&now={n}"));
        }
        q
    }

    /// The query string without `from` and `to`: the server then picks the
    /// window (its own clock may run scaled, as in the demo).
    pub fn to_query_string_without_window(&self) -> String {
        self.to_query_string()
            .split('&')
            .filter(|p| !p.starts_with("from=") && !p.starts_with("to="))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Parses a query string (without the `?`); unknown parameters are
    /// ignored. Without `from` and `to` the window is left to the caller:
    /// `from_secs == to_secs == 0`.
    pub fn from_query_string(q: &str) -> Result<Query, Error> {
        let mut from = None;
        let mut to = None;
        let mut query = Query::new(0, 0);
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)?;
            let int = |v: &str| v.parse::<i64>().map_err(|_| Error::Query(format!("{k}={v}: an integer expected")));
            match k {
                "from" => from = Some(int(&v)?),
                "to" => to = Some(int(&v)?),
                "stream" => query.streams.push(v),
                "pending_secs" => query.pending_secs = int(&v)?,
                "recovery_window_secs" => query.recovery_window_secs = int(&v)?,
                "suspect_ratio" => {
                    query.suspect_ratio =
                        v.parse().map_err(|_| Error::Query(format!("suspect_ratio={v}: a number expected")))?
                }
                "now" => query.now_secs = Some(int(&v)?),
                _ => {}
            }
        }
        match (from, to) {
            (Some(f), Some(t)) => {
                query.from_secs = f;
                query.to_secs = t;
            }
            // Neither: the server picks the window (then from_secs == to_secs == 0).
            (None, None) => {}
            _ => return Err(Error::Query("give both from and to (Unix seconds), or neither".into())),
        }
        Ok(query)
    }
}

/// A query value: `+` is a space, then percent escapes (UTF-8).
fn percent_decode(s: &str) -> Result<String, Error> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| Error::Query(format!("{s:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_round_trip() {
        let mut q = Query::new(1_500_000_000, 1_500_086_400);
        q.streams = vec!["decahose".into(), "odd label+été/&=%".into()];
        q.now_secs = Some(1_500_090_000);
        q.suspect_ratio = 0.25;
        assert_eq!(Query::from_query_string(&q.to_query_string()).unwrap(), q);
        assert!(Query::from_query_string("from=1").is_err());
        assert!(!q.to_query_string_without_window().contains("from="));
        let w = Query::from_query_string(&q.to_query_string_without_window()).unwrap();
        assert_eq!((w.from_secs, w.to_secs, w.streams.clone()), (0, 0, q.streams.clone()));
        assert!(q.to_query_string_without_window().contains("stream=decahose"));
        assert!(
            q.to_query_string().contains("&stream=odd%20label%2B%C3%A9t%C3%A9%2F%26%3D%25"),
            "{}",
            q.to_query_string()
        );
        assert_eq!(Query::from_query_string("stream=a+b%2Bc").unwrap().streams, vec!["a b+c".to_string()]);
        assert!(Query::from_query_string("stream=%FF").is_err());
    }
}
