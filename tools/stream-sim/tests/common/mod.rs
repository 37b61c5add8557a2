//! Test helpers: an in-process server on loopback with a fast clock, a real
//! HTTP client (reqwest, gzip), and a line reader that keeps heartbeats.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use stream_sim::{Clock, Server, SimConfig, StreamKind};

pub const START: &str = "2026-01-01T12:00:00Z";

pub fn start_ms() -> i64 {
    DateTime::parse_from_rfc3339(START).unwrap().timestamp_millis()
}

/// A config with a fast clock starting at START now, low rate, pace unlimited.
pub fn config(speed: f64, rate: f64) -> SimConfig {
    let mut cfg = SimConfig::new(42).with_rate(rate);
    let start = DateTime::parse_from_rfc3339(START).unwrap().with_timezone(&Utc);
    cfg.clock = Clock::scaled(Some(start), speed, None).expect("a positive speed");
    cfg.recovery_pace = 0.0;
    cfg.user = "u".into();
    cfg.password = "p".into();
    cfg
}

pub async fn server(cfg: SimConfig) -> Server {
    Server::start(cfg, "127.0.0.1:0".parse().unwrap()).await.expect("server starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn url(s: &Server, kind: StreamKind, query: &str) -> String {
    let base = s.url(kind, "acme", "prod");
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).basic_auth("u", Some("p")).send().await.expect("request")
}

/// One item read from a stream body.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// A line (without its terminator) and whether it ended with a bare `\n`.
    Line(Vec<u8>, bool),
    Heartbeat,
    /// Clean end of the body.
    End,
    /// The connection failed (cut, corrupt gzip...).
    Error(String),
    Timeout,
}

pub struct Reader {
    resp: reqwest::Response,
    buf: Vec<u8>,
    done: bool,
}

impl Reader {
    pub fn new(resp: reqwest::Response) -> Self {
        Reader { resp, buf: Vec::new(), done: false }
    }

    pub async fn next(&mut self, timeout: Duration) -> Item {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                let crlf = line.last() == Some(&b'\r');
                if crlf {
                    line.pop();
                }
                if line.is_empty() && crlf {
                    return Item::Heartbeat;
                }
                return Item::Line(line, !crlf);
            }
            if self.done {
                return Item::End;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Item::Timeout;
            }
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Err(_) => return Item::Timeout,
                Ok(Ok(Some(b))) => self.buf.extend_from_slice(&b),
                Ok(Ok(None)) => {
                    self.done = true;
                    if !self.buf.is_empty() {
                        return Item::Error(format!("{} bytes of an unfinished line at the end", self.buf.len()));
                    }
                }
                Ok(Err(e)) => return Item::Error(format!("{e:?}")),
            }
        }
    }

    /// Read until the body ends or fails, or `timeout` passes.
    pub async fn collect(&mut self, timeout: Duration) -> (Vec<Item>, Item) {
        let deadline = Instant::now() + timeout;
        let mut items = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                i @ (Item::End | Item::Error(_) | Item::Timeout) => return (items, i),
                i => items.push(i),
            }
        }
    }
}

/// The key of a line as `KIND KEY`, computed independently of the generator,
/// with its activity time.
pub fn key_of(line: &[u8]) -> (String, i64) {
    let v: serde_json::Value = serde_json::from_slice(line).expect("activity is JSON");
    let ts = |x: &serde_json::Value| -> i64 {
        match x {
            serde_json::Value::String(s) => s.parse().unwrap(),
            serde_json::Value::Number(n) => n.as_i64().unwrap(),
            _ => panic!("no timestamp_ms in {}", String::from_utf8_lossy(line)),
        }
    };
    // Activity Streams: IDs in `tag:search.twitter.com,2005:{id}`.
    const TAG: &str = "tag:search.twitter.com,2005:";
    if v.get("verb").is_some() {
        let t = ts(&v["timestamp_ms"]);
        let id = |x: &serde_json::Value| x.as_str().unwrap().strip_prefix(TAG).unwrap().to_string();
        return match v["verb"].as_str().unwrap() {
            "delete" => (format!("delete {}", id(&v["object"]["id"])), t),
            _ => (format!("post {}", id(&v["id"])), t),
        };
    }
    if let Some(d) = v.get("delete") {
        let t = ts(&d["timestamp_ms"]);
        if let Some(s) = d.get("status") {
            return (format!("delete {}", s["id_str"].as_str().unwrap()), t);
        }
        let f = &d["favorite"];
        return (
            format!("unlike {}:{}:{}", f["tweet_id_str"].as_str().unwrap(), f["user_id_str"].as_str().unwrap(), t),
            t,
        );
    }
    if v.get("favorited_status").is_some() {
        return (format!("like {}", v["id"].as_str().unwrap()), ts(&v["timestamp_ms"]));
    }
    if v.get("id_str").is_some() && v.get("user").is_some() {
        return (format!("post {}", v["id_str"].as_str().unwrap()), ts(&v["timestamp_ms"]));
    }
    // Compliance: FNV-1a 64 of the exact bytes.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in line {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let obj = v.as_object().unwrap();
    let inner = obj.values().next().unwrap();
    (format!("compliance {h:016x}"), ts(&inner["timestamp_ms"]))
}

pub fn lines_of(items: &[Item]) -> Vec<Vec<u8>> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Line(l, _) => Some(l.clone()),
            _ => None,
        })
        .collect()
}
