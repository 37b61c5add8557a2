//! Server configuration: what `serve` flags and the optional config file set.

use serde::Deserialize;

use crate::clock::Clock;
use crate::faults::FaultPlan;
use crate::stream::{parse_stream_name, StreamKind, StreamSpec};

pub const DEFAULT_USER: &str = "sim";
pub const DEFAULT_PASSWORD: &str = "sim";

/// Everything a running simulator needs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub clock: Clock,
    pub user: String,
    pub password: String,
    /// Streams served; others are served too when `auto_streams` is set,
    /// with their kind's defaults.
    pub streams: Vec<StreamSpec>,
    pub auto_streams: bool,
    /// Heartbeat after this much silence (stream ms).
    pub heartbeat_ms: i64,
    /// Connection requests allowed per stream per window.
    pub rate_limit: u32,
    pub rate_window_ms: i64,
    /// Concurrent Recovery jobs per account.
    pub max_recovery_jobs: u32,
    /// Recovery pace: stream-ms of archive replayed per stream-ms of time
    /// (0.9 = a little slower than realtime; 0 = as fast as the client reads).
    pub recovery_pace: f64,
    pub faults: FaultPlan,
    /// Rate override applied to auto streams and to the defaults (None = per-kind default).
    pub rate_override: Option<f64>,
}

impl SimConfig {
    /// The defaults: a Decahose and a Likes stream labelled `prod`, wall-clock
    /// time, credentials `sim`/`sim` (the binary reads `STREAM_SIM_USER` and
    /// `STREAM_SIM_PASSWORD`).
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            clock: Clock::system(),
            user: DEFAULT_USER.to_string(),
            password: DEFAULT_PASSWORD.to_string(),
            streams: vec![StreamSpec::new(StreamKind::Sample10, "prod"), StreamSpec::new(StreamKind::Likes, "prod")],
            auto_streams: true,
            heartbeat_ms: 10_000,
            rate_limit: 10,
            rate_window_ms: 60_000,
            max_recovery_jobs: 2,
            recovery_pace: 0.9,
            faults: FaultPlan::default(),
            rate_override: None,
        }
    }

    /// Set every stream's rate (and that of streams created on demand).
    pub fn with_rate(mut self, rate: f64) -> Self {
        for s in &mut self.streams {
            s.rate = rate;
        }
        self.rate_override = Some(rate);
        self
    }

    /// The spec for a requested stream, if served.
    pub fn spec_for(&self, kind: StreamKind, label: &str) -> Option<StreamSpec> {
        if let Some(s) = self.streams.iter().find(|s| s.kind == kind && s.label == label) {
            return Some(s.clone());
        }
        if !self.auto_streams {
            return None;
        }
        let mut s = StreamSpec::new(kind, label);
        if let Some(r) = self.rate_override {
            s.rate = r;
        }
        Some(s)
    }

    /// Apply a TOML config file (see the README).
    pub fn apply_file(&mut self, text: &str) -> Result<(), ConfigError> {
        let f: FileConfig = toml::from_str(text)?;
        if let Some(v) = f.heartbeat_seconds {
            self.heartbeat_ms = (v * 1000.0) as i64;
        }
        if let Some(v) = f.rate_limit {
            self.rate_limit = v;
        }
        if let Some(v) = f.rate_window_seconds {
            self.rate_window_ms = (v * 1000.0) as i64;
        }
        if let Some(v) = f.max_recovery_jobs {
            self.max_recovery_jobs = v;
        }
        if let Some(v) = f.recovery_pace {
            self.recovery_pace = v;
        }
        if let Some(v) = f.auto_streams {
            self.auto_streams = v;
        }
        if !f.stream.is_empty() {
            self.streams.clear();
        }
        for s in f.stream {
            let (kind, label) = parse_stream_name(&s.name).ok_or_else(|| ConfigError::Stream(s.name.clone()))?;
            let mut spec = StreamSpec::new(kind, &label);
            if let Some(r) = s.rate.or(self.rate_override) {
                spec.rate = r;
            }
            if let Some(p) = s.partitions {
                spec.partitions = p;
            }
            if let Some(c) = s.max_connections {
                spec.max_connections = c;
            }
            match s.format.as_deref() {
                None | Some("native") => {}
                Some("activity_streams") => spec.format = crate::stream::Format::ActivityStreams,
                Some(other) => return Err(ConfigError::Format(other.to_string())),
            }
            if let Some(h) = s.recovery_window_hours {
                spec.recovery_window_ms = if h > 0.0 { Some((h * 3_600_000.0) as i64) } else { None };
            }
            self.streams.push(spec);
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("config file: unknown format {0:?} (native or activity_streams)")]
    Format(String),
    #[error("config file: bad stream name {0:?} (KIND/LABEL, KIND one of sample10, firehose, powertrack, likes)")]
    Stream(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    heartbeat_seconds: Option<f64>,
    rate_limit: Option<u32>,
    rate_window_seconds: Option<f64>,
    max_recovery_jobs: Option<u32>,
    recovery_pace: Option<f64>,
    auto_streams: Option<bool>,
    #[serde(default)]
    stream: Vec<FileStream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStream {
    name: String,
    rate: Option<f64>,
    partitions: Option<u32>,
    max_connections: Option<u32>,
    /// 0 = no Recovery.
    recovery_window_hours: Option<f64>,
    /// `native` (default) or `activity_streams`.
    format: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the README.
    #[test]
    fn readme_example_parses() {
        let text = r#"
heartbeat_seconds = 10       # heartbeat after this much silence
rate_limit = 10              # connection requests per window, per stream
rate_window_seconds = 60
max_recovery_jobs = 2        # per account
recovery_pace = 0.9
auto_streams = true

[[stream]]                   # listing streams replaces the defaults
name = "sample10/prod"
rate = 600
partitions = 2
max_connections = 2          # redundant connections per partition
recovery_window_hours = 120  # 0 = no Recovery
format = "native"            # or "activity_streams"

[[stream]]
name = "sample10/dev"
rate = 50
"#;
        let mut cfg = SimConfig::new(1);
        cfg.apply_file(text).unwrap();
        assert_eq!(cfg.streams.len(), 2);
        assert_eq!(cfg.streams[1].rate, 50.0);
        assert_eq!(cfg.streams[0].recovery_window_ms, Some(120 * 3_600_000));
        assert!(cfg.apply_file("[[stream]]\nname = \"nope/x\"").is_err());
        assert!(cfg.apply_file("bogus = 1").is_err());
    }
}
