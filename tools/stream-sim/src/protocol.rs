//! The request side of PROTOCOL.md: paths, query parameters, and the exact
//! status codes and bodies for refusals, plus the system lines sent on a
//! connection.
//!
//! Parsing is separate from the server so each rule is one small function
//! with its own error, and the error text a client sees is written once.

use crate::clock::{api_time, parse_api_time, StreamMs};
use crate::stream::{StreamKind, StreamSpec};

/// A parsed stream path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPath {
    pub kind: StreamKind,
    pub account: String,
    pub label: String,
}

/// `/stream/{type}/accounts/{account}/publishers/twitter/{label}.json`
pub fn parse_path(path: &str) -> Option<StreamPath> {
    let rest = path.strip_prefix("/stream/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() != 6 || parts[1] != "accounts" || parts[3] != "publishers" || parts[4] != "twitter" {
        return None;
    }
    let kind = StreamKind::parse(parts[0])?;
    let account = parts[2];
    let label = parts[5].strip_suffix(".json")?;
    if account.is_empty() || label.is_empty() {
        return None;
    }
    Some(StreamPath { kind, account: account.to_string(), label: label.to_string() })
}

/// What a valid request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Realtime, optionally starting `backfill_minutes` in the past.
    Realtime { partition: u32, backfill_minutes: u32 },
    /// Recovery of `[start, end)`; `partition` None = all partitions.
    Recovery { partition: Option<u32>, start_ms: StreamMs, end_ms: StreamMs },
}

/// A refusal: status code and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub body: String,
}

impl Refusal {
    pub fn new(status: u16, message: &str) -> Self {
        let mut body = String::new();
        let mut o = crate::json::Obj::new(&mut body);
        o.obj("error", |o| {
            o.str("message", message);
        });
        o.end();
        Refusal { status, body }
    }
}

pub const MSG_AUTH: &str = "Invalid credentials. Authentication is required (HTTP Basic).";
pub const MSG_GZIP: &str = "This connection requires compression. To enable compression, send an 'Accept-Encoding: gzip' header in your request and be ready to uncompress the stream as it is read on the client end.";
pub const MSG_RATE: &str = "Rate limited: too many connection requests (limit 10 per 60 seconds).";
pub const MSG_JOBS: &str = "Too many concurrent recovery requests: at most 2 recovery jobs per account.";
pub const MSG_503: &str = "Service Unavailable. Please reconnect with an exponential backoff.";

/// The query's `name=value` pairs, decoded as
/// `application/x-www-form-urlencoded` (`%XX` escapes, `+` for a space).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Validate the query of a request on `spec` at stream time `now`.
pub fn parse_query(spec: &StreamSpec, query: Option<&str>, now: StreamMs) -> Result<Request, Refusal> {
    let pairs = query_pairs(query.unwrap_or(""));
    let get = |names: &[&str]| -> Option<String> {
        pairs.iter().find(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.clone())
    };
    let bad = |m: &str| Refusal::new(400, m);

    let partition = match get(&["partition"]) {
        Some(v) => {
            if spec.partitions == 0 {
                return Err(bad(&format!(
                    "This stream ({}) is not partitioned: remove the partition parameter.",
                    spec.kind
                )));
            }
            match v.parse::<u32>() {
                Ok(p) if (1..=spec.partitions).contains(&p) => Some(p),
                _ => {
                    return Err(bad(&format!(
                        "Invalid partition {v:?}: must be a whole number in 1..={}.",
                        spec.partitions
                    )))
                }
            }
        }
        None => None,
    };

    let start = get(&["startTime", "start_time"]);
    let end = get(&["endTime", "end_time"]);
    if start.is_some() || end.is_some() {
        let Some(window) = spec.recovery_window_ms else {
            return Err(bad(&format!("Recovery is not available for {} streams.", spec.kind)));
        };
        let start_ms = start.as_deref().and_then(parse_api_time).ok_or_else(|| {
            bad("Recovery requires startTime in ISO 8601 / RFC 3339 UTC, e.g. 2023-07-05T17:09:12.070Z.")
        })?;
        let end_ms = match end.as_deref() {
            Some(e) => parse_api_time(e).ok_or_else(|| bad("Invalid endTime: ISO 8601 / RFC 3339 UTC expected."))?,
            None => now,
        };
        if end_ms <= start_ms {
            return Err(bad("endTime must be after startTime."));
        }
        if start_ms < now - window {
            return Err(bad(&format!(
                "startTime {} is outside the recovery window (oldest available: {}).",
                api_time(start_ms),
                api_time(now - window)
            )));
        }
        if end_ms > now {
            return Err(bad(&format!("endTime {} is in the future (now: {}).", api_time(end_ms), api_time(now))));
        }
        if get(&["backfillMinutes"]).is_some() {
            return Err(bad("backfillMinutes cannot be combined with a recovery request."));
        }
        return Ok(Request::Recovery { partition, start_ms, end_ms });
    }

    if spec.partitions > 0 && partition.is_none() {
        return Err(bad(&format!(
            "The partition parameter is required: partition=N with N in 1..={}.",
            spec.partitions
        )));
    }
    let backfill_minutes = match get(&["backfillMinutes"]) {
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=5).contains(&n) => n,
            _ => return Err(bad(&format!("Invalid backfillMinutes {v:?}: must be a whole number in 1..=5."))),
        },
        None => 0,
    };
    Ok(Request::Realtime { partition: partition.unwrap_or(0), backfill_minutes })
}

/// The `Recovery Request Completed` info line (without separator).
pub fn recovery_completed_line(now: StreamMs, count: u64) -> String {
    format!(
        "{{\"info\":{{\"message\":\"Recovery Request Completed\",\"sent\":\"{}\",\"activity_count\":{count}}}}}",
        api_time(now)
    )
}

/// The Forced Disconnect error line (without separator).
pub fn forced_disconnect_line(now: StreamMs, allowed: u32) -> String {
    format!(
        "{{\"error\":{{\"message\":\"Forced Disconnect: Too many connections. (Allowed Connections = {allowed})\",\"sent\":\"{}\"}}}}",
        api_time(now)
    )
}

/// Decode an HTTP Basic `Authorization` header value into (user, password).
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let b64 = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Whether an `Accept-Encoding` header value accepts gzip.
pub fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let q_zero = it.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f64>().map(|q| q == 0.0).unwrap_or(false))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && !q_zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_path("/stream/sample10/accounts/acme/publishers/twitter/prod.json").unwrap();
        assert_eq!(p.kind, StreamKind::Sample10);
        assert_eq!(p.account, "acme");
        assert_eq!(p.label, "prod");
        assert!(parse_path("/stream/nope/accounts/acme/publishers/twitter/prod.json").is_none());
        assert!(parse_path("/stream/sample10/accounts/acme/publishers/twitter/prod").is_none());
    }

    #[test]
    fn queries() {
        let s = StreamSpec::new(StreamKind::Sample10, "prod");
        let now = 1_700_000_000_000;
        assert!(parse_query(&s, None, now).is_err());
        assert_eq!(parse_query(&s, Some("partition=3"), now).unwrap_err().status, 400);
        assert_eq!(
            parse_query(&s, Some("partition=2&backfillMinutes=5"), now).unwrap(),
            Request::Realtime { partition: 2, backfill_minutes: 5 }
        );
        assert!(parse_query(&s, Some("partition=2&backfillMinutes=6"), now).is_err());
        assert!(parse_query(&s, Some("partition=2&backfillMinutes=0"), now).is_err());
        assert!(parse_query(&s, Some("partition=2&backfillMinutes=1.5"), now).is_err());
        let q = "start_time=2023-11-14T22:00:00Z&end_time=2023-11-14T22:10:00.000Z";
        assert!(matches!(parse_query(&s, Some(q), now).unwrap(), Request::Recovery { partition: None, .. }));
        assert!(parse_query(&s, Some("startTime=2023-11-01T00:00:00Z&endTime=2023-11-01T01:00:00Z"), now).is_err());
        assert!(accepts_gzip("deflate, gzip;q=1.0"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn query_escapes_decode_as_forms_do() {
        let pairs = query_pairs("a=x%2By&b=x+y&c=x%20y&t=2023-07-05T17%3A09%3A12.070Z&bad=%zz&flag&&e%3D=1");
        let want = [
            ("a", "x+y"),
            ("b", "x y"),
            ("c", "x y"),
            ("t", "2023-07-05T17:09:12.070Z"),
            ("bad", "%zz"),
            ("flag", ""),
            ("e=", "1"),
        ];
        assert_eq!(pairs, want.map(|(k, v)| (k.to_string(), v.to_string())));
        // An offset's `+` must be escaped (`%2B`): a bare `+` is a space.
        let s = StreamSpec::new(StreamKind::Sample10, "prod");
        let now = 1_700_000_000_000;
        let q = "startTime=2023-11-14T23:00:00%2B01:00&endTime=2023-11-14T22%3A10%3A00Z";
        let Ok(Request::Recovery { start_ms, .. }) = parse_query(&s, Some(q), now) else { panic!("{q}") };
        assert_eq!(start_ms, 1_699_999_200_000);
        let q = "startTime=2023-11-14T23:00:00+01:00&endTime=2023-11-14T22:10:00Z";
        assert_eq!(parse_query(&s, Some(q), now).unwrap_err().status, 400);
    }

    #[test]
    fn basic_credentials_decode() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let pair = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
        assert_eq!(basic_credentials(&format!("Basic {}", b64("alice:s3cret"))), pair("alice", "s3cret"));
        assert_eq!(basic_credentials(&format!("basic {} ", b64("bob:a:b"))), pair("bob", "a:b"));
        assert_eq!(basic_credentials(&format!("Basic {}", b64("carol:"))), pair("carol", ""));
        assert_eq!(basic_credentials(&format!("Basic {}", b64("no colon"))), None);
        assert_eq!(basic_credentials(&format!("Bearer {}", b64("alice:s3cret"))), None);
        assert_eq!(basic_credentials("Basic !!not base64!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode([0xff, b':']))),
            None
        );
    }
}
