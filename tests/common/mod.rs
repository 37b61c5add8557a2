//! The harness of the archiver's end-to-end tests: stream-sim on loopback
//! with a scaled clock, the archiver in process against it, and the
//! comparison of the archive with stream-sim's ground truth.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gapless::archiver::{self, Options, Running};
use gapless::clock::Clock;
use gapless::config::Config;
use gapless_storage::coverage::{CoverageMap, Coverage};
use gapless_storage::reader::RangeReader;
use gapless_storage::Minute;
use stream_sim::faults::FaultPlan;
use stream_sim::{Server, SimConfig, StreamKind, StreamSpec};

pub const START: &str = "2026-03-01T00:00:00Z";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sim: Option<Server>,
    pub seed: u64,
    pub rate: f64,
    pub speed: f64,
    pub origin: f64,
    pub start_ms: i64,
    pub config_text: String,
}

fn spec(kind: StreamKind, rate: f64) -> StreamSpec {
    let mut s = StreamSpec::new(kind, "prod");
    s.rate = rate;
    s
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

impl Harness {
    /// Starts stream-sim with `faults` (TOML, times relative to START).
    pub async fn start(seed: u64, rate: f64, speed: f64, faults: &str, likes: bool) -> Harness {
        let origin = unix_now();
        let start: chrono::DateTime<chrono::Utc> = START.parse().unwrap();
        let mut cfg = SimConfig::new(seed).with_rate(rate);
        cfg.clock = stream_sim::Clock::scaled(Some(start), speed, Some(origin));
        cfg.streams = vec![spec(StreamKind::Sample10, rate)];
        if likes {
            cfg.streams.push(spec(StreamKind::Likes, rate));
        }
        cfg.recovery_pace = 0.0;
        if !faults.is_empty() {
            cfg.faults = FaultPlan::from_toml(faults, start.timestamp_millis(), seed).unwrap();
        }
        let sim = Server::start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = sim.addr();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("creds"), "sim:sim").unwrap();
        let mut config_text = format!(
            r#"
credentials = {{ file = "creds" }}
[[stream]]
label = "decahose"
kind = "decahose"
url = "http://{addr}/stream/sample10/accounts/acme/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "5s" }}
"#
        );
        if likes {
            config_text.push_str(&format!(
                r#"
[[stream]]
label = "likes"
kind = "likes"
url = "http://{addr}/stream/likes/accounts/acme/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "5s" }}
"#
            ));
        }
        Harness { dir, sim: Some(sim), seed, rate, speed, origin, start_ms: start.timestamp_millis(), config_text }
    }

    pub fn clock(&self) -> Clock {
        Clock::scaled(Some(chrono::DateTime::from_timestamp_millis(self.start_ms).unwrap()), self.speed, Some(self.origin)).unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn archiver(&self) -> Running {
        let mut config = Config::parse(&self.config_text, self.dir.path()).unwrap();
        config.data = self.data();
        archiver::start(Options { config, clock: self.clock(), since_secs: None }).await.unwrap()
    }

    /// Waits until stream time reaches `START + minutes`.
    pub async fn until_minute(&self, minutes: f64) {
        let target = self.start_ms + (minutes * 60_000.0) as i64;
        loop {
            let now = self.clock().now_ms();
            if now >= target {
                return;
            }
            tokio::time::sleep(self.clock().wall(Duration::from_millis((target - now) as u64)).min(Duration::from_millis(200))).await;
        }
    }

    /// The ground truth of `[from, to)` (stream minutes after START).
    pub fn truth(&self, stream: &str, from_ms: i64, to_ms: i64) -> BTreeSet<String> {
        let kind = if stream == "likes" { StreamKind::Likes } else { StreamKind::Sample10 };
        let gen = stream_sim::Generator::new(self.seed, &spec(kind, self.rate));
        stream_sim::truth::truth_lines(&gen, from_ms, to_ms, None).into_iter().collect()
    }
}

/// The archive's activities of `[from_ms, to_ms)` as `KIND KEY` lines, and
/// how many times each appeared.
pub fn archive_keys(data: &Path, stream: &str, from_ms: i64, to_ms: i64) -> (BTreeSet<String>, usize) {
    let mut keys = BTreeSet::new();
    let mut n = 0;
    for batch in RangeReader::new(data, stream, from_ms..to_ms) {
        for (e, _) in batch.unwrap().iter() {
            n += 1;
            keys.insert(format!("{} {}", e.kind.name(), e.key.display()));
        }
    }
    (keys, n)
}

/// Minutes of `[from, to)` and their coverage, read from a stopped archive.
pub fn full_minutes(data: &Path, stream: &str, from: Minute, to: Minute) -> Vec<(Minute, Coverage)> {
    let map = CoverageMap::open(&data.join("coverage")).unwrap();
    map.minute_states(stream, from..to, i64::MAX / 4, 0).unwrap().into_iter().map(|r| (r.minute, r.coverage)).collect()
}
