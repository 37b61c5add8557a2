//! `--admin URL`: asking a running archiver for the report instead of
//! opening its store (sled allows one process at a time).
//!
//! The archiver serves `GET /coverage?QUERY` (QUERY as in [`crate::query`])
//! with a [`Report`] in JSON, `Content-Type: application/json`, status 200;
//! on a bad query, status 400 with a one-line reason in the body. This
//! client is a minimal HTTP/1.1 `GET` over plain TCP (the admin API listens
//! on loopback), with `Content-Length`, chunked or read-to-close bodies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::query::Query;
use crate::schema::{Report, SCHEMA};

/// Fetches the report for `q` from the admin API at `base` (for example
/// `http://127.0.0.1:8081`; a path ending in `/coverage` is used as is).
pub fn fetch_report(base: &str, q: &Query) -> Result<Report> {
    fetch(base, &q.to_query_string())
}

/// The same, leaving the window to the server (`from` and `to` left out).
pub fn fetch_report_server_window(base: &str, q: &Query) -> Result<Report> {
    fetch(base, &q.to_query_string_without_window())
}

fn fetch(base: &str, query: &str) -> Result<Report> {
    let base = base.trim_end_matches('/');
    let url = if base.ends_with("/coverage") { format!("{base}?{query}") } else { format!("{base}/coverage?{query}") };
    let body = get(&url).with_context(|| format!("asking the archiver at {base}"))?;
    let report: Report = serde_json::from_slice(&body).with_context(|| format!("{url}: not a {SCHEMA} document"))?;
    if report.schema != SCHEMA {
        bail!("{url}: schema {:?}, this build reads {SCHEMA:?}", report.schema);
    }
    Ok(report)
}

/// A plain `GET`; returns the body of a 200 response.
pub fn get(url: &str) -> Result<Vec<u8>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url}: only http:// URLs are supported (the admin API listens on loopback)"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr_text = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = addr_text
        .to_socket_addrs()
        .with_context(|| format!("resolve {hostport}"))?
        .next()
        .ok_or_else(|| anyhow!("{hostport}: no address"))?;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: inspect-coverage/{}\r\n\r\n", crate::VERSION);
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("read the response")?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow!("not an HTTP response"))?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut body = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(n) = length {
        if body.len() < n {
            bail!("response body cut short ({} of {n} bytes)", body.len());
        }
        body.truncate(n);
    }
    if code != 200 {
        let text = String::from_utf8_lossy(&body);
        bail!("{status_line}: {}", text.trim());
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("bad chunked body"))?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| anyhow!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("chunked body cut short");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(dechunk(b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n").unwrap(), b"Wikipedia");
        assert!(dechunk(b"9\r\nWiki\r\n").is_err());
    }
}
