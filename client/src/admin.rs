//! The admin API client: asking a running archiver for the coverage report
//! instead of opening its store (sled allows one process at a time).
//!
//! The archiver serves `GET /coverage?QUERY` (QUERY as in
//! [`gapless_report::query`]) with a [`Report`] in JSON, status 200; on a
//! bad query, status 400 with a one-line reason in the body. The client is
//! `ureq` without TLS (the admin API listens on loopback), without proxies
//! (a proxy from the environment has no business with loopback), with
//! bounded time and body size.

use std::time::Duration;

use gapless_report::query::Query;
use gapless_report::schema::{Report, SCHEMA};

use crate::Error;

/// How long a request may take in all (a week of coverage is built in
/// well under a second; a loaded machine gets a wide margin).
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The largest report read (a 7-day window of several streams is a few MB).
pub const MAX_BODY: u64 = 512 << 20;

/// Fetches the report for `q` from the admin API at `base` (for example
/// `http://127.0.0.1:9477`; a path ending in `/coverage` is used as is).
pub fn fetch_report(base: &str, q: &Query) -> Result<Report, Error> {
    fetch(base, &q.to_query_string())
}

/// The same, leaving the window to the server (`from` and `to` left out):
/// its clock may run scaled, as in the demo.
pub fn fetch_report_server_window(base: &str, q: &Query) -> Result<Report, Error> {
    fetch(base, &q.to_query_string_without_window())
}

/// The `/coverage` URL of `base` for `query`.
pub fn coverage_url(base: &str, query: &str) -> Result<String, Error> {
    if !base.starts_with("http://") {
        return Err(Error::BadUrl(base.to_string()));
    }
    let base = base.trim_end_matches('/');
    Ok(if base.ends_with("/coverage") { format!("{base}?{query}") } else { format!("{base}/coverage?{query}") })
}

fn fetch(base: &str, query: &str) -> Result<Report, Error> {
    let url = coverage_url(base, query)?;
    let body = get(&url)?;
    let report: Report = serde_json::from_slice(&body)
        .map_err(|e| Error::NotAReport { url: url.clone(), what: format!("not a {SCHEMA} document: {e}") })?;
    if report.schema != SCHEMA {
        return Err(Error::NotAReport {
            url,
            what: format!("schema {:?}, this build reads {SCHEMA:?}", report.schema),
        });
    }
    Ok(report)
}

/// A plain `GET`; the body of a 200 response.
pub fn get(url: &str) -> Result<Vec<u8>, Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .timeout_connect(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .user_agent(concat!("gapless-client/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let no_answer = |e: ureq::Error| Error::NoAnswer { url: url.to_string(), source: Box::new(e) };
    let mut resp = agent.get(url).header("Accept", "application/json").call().map_err(no_answer)?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(no_answer)?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        // The archiver says why in `{"error": ...}`; anything else as it came.
        let why = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(Error::Status { url: url.to_string(), status, body: why });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_urls() {
        let u = |b: &str| coverage_url(b, "x=1").ok();
        assert_eq!(u("http://127.0.0.1:9477").as_deref(), Some("http://127.0.0.1:9477/coverage?x=1"));
        assert_eq!(u("http://127.0.0.1:9477/").as_deref(), Some("http://127.0.0.1:9477/coverage?x=1"));
        assert_eq!(u("http://h:1/coverage").as_deref(), Some("http://h:1/coverage?x=1"));
        assert!(matches!(coverage_url("https://h:1", ""), Err(Error::BadUrl(_))));
        assert!(matches!(coverage_url("127.0.0.1:9477", ""), Err(Error::BadUrl(_))));
    }
}
