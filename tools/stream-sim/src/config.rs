//! Server configuration: what `serve` flags and the optional config file set.
//!
//! Durations in the config file take the project's one grammar
//! ([`gapless_time::Dur`]: `"10s"`, `"1h30m"`, `"500ms"`, or a whole number
//! of seconds) and have no unit in their names (`heartbeat`, `rate_window`,
//! `recovery_window`). `heartbeat_seconds` and `rate_window_seconds` are
//! still read, as deprecated aliases (a whole number of seconds means what
//! it meant); `recovery_window_hours` is refused with a pointer to
//! `recovery_window`, since its numbers were hours and a bare number is now
//! seconds. In memory, durations are stream milliseconds.

use std::time::Duration;

use gapless_time::Dur;
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
        if let Some(v) = f.heartbeat {
            self.heartbeat_ms = stream_ms("heartbeat", v)?;
        }
        if let Some(v) = f.rate_limit {
            self.rate_limit = v;
        }
        if let Some(v) = f.rate_window {
            self.rate_window_ms = stream_ms("rate_window", v)?;
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
            if s.recovery_window_hours.is_some() {
                return Err(ConfigError::Renamed { old: "recovery_window_hours", new: "recovery_window" });
            }
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
            if let Some(w) = s.recovery_window {
                let ms = stream_ms("recovery_window", w)?;
                spec.recovery_window_ms = (ms > 0).then_some(ms);
            }
            self.streams.push(spec);
        }
        Ok(())
    }
}

/// A duration of the config file in stream milliseconds.
fn stream_ms(key: &'static str, d: Dur) -> Result<i64, ConfigError> {
    i64::try_from(d.as_duration().as_millis()).map_err(|_| ConfigError::TooLong { key, value: d.as_duration() })
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("config file: {key} = {value:?} is too long")]
    TooLong { key: &'static str, value: Duration },
    #[error("config file: {old} is now {new}, a duration (\"120h\", \"5d\"; a bare number is seconds; 0 = none)")]
    Renamed { old: &'static str, new: &'static str },
    #[error("config file: unknown format {0:?} (native or activity_streams)")]
    Format(String),
    #[error("config file: bad stream name {0:?} (KIND/LABEL, KIND one of sample10, firehose, powertrack, likes)")]
    Stream(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Heartbeat after this much silence.
    #[serde(alias = "heartbeat_seconds")]
    heartbeat: Option<Dur>,
    rate_limit: Option<u32>,
    #[serde(alias = "rate_window_seconds")]
    rate_window: Option<Dur>,
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
    recovery_window: Option<Dur>,
    /// Refused (its numbers were hours): see `ConfigError::Renamed`.
    recovery_window_hours: Option<toml::Value>,
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
heartbeat = "10s"            # heartbeat after this much silence
rate_limit = 10              # connection requests per window, per stream
rate_window = "1m"
max_recovery_jobs = 2        # per account
recovery_pace = 0.9
auto_streams = true

[[stream]]                   # listing streams replaces the defaults
name = "sample10/prod"
rate = 600
partitions = 2
max_connections = 2          # redundant connections per partition
recovery_window = "5d"       # 0 = no Recovery
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
        assert_eq!((cfg.heartbeat_ms, cfg.rate_window_ms), (10_000, 60_000));
        assert!(cfg.apply_file("[[stream]]\nname = \"nope/x\"").is_err());
        assert!(cfg.apply_file("bogus = 1").is_err());
    }

    #[test]
    fn durations_take_the_one_grammar() {
        let mut cfg = SimConfig::new(1);
        let text = "heartbeat = \"500ms\"\nrate_window = \"1h30m\"\n\
                    [[stream]]\nname = \"sample10/prod\"\nrecovery_window = 90\n\
                    [[stream]]\nname = \"likes/prod\"\nrecovery_window = \"0s\"\n";
        cfg.apply_file(text).expect("config");
        assert_eq!(cfg.heartbeat_ms, 500);
        assert_eq!(cfg.rate_window_ms, 5_400_000);
        assert_eq!(cfg.streams[0].recovery_window_ms, Some(90_000));
        assert_eq!(cfg.streams[1].recovery_window_ms, None);
    }

    #[test]
    fn old_seconds_keys_are_deprecated_aliases() {
        let mut cfg = SimConfig::new(1);
        cfg.apply_file("heartbeat_seconds = 5\nrate_window_seconds = 30").expect("config");
        assert_eq!((cfg.heartbeat_ms, cfg.rate_window_ms), (5_000, 30_000));
    }

    #[test]
    fn a_bad_duration_is_an_error_naming_the_key() {
        let cases = [
            ("heartbeat = \"5 parsecs\"", "heartbeat"),
            ("rate_window = \"-1m\"", "rate_window"),
            ("heartbeat = 2.5", "a whole number of seconds"),
            ("[[stream]]\nname = \"sample10/prod\"\nrecovery_window = \"soon\"", "recovery_window"),
            ("[[stream]]\nname = \"sample10/prod\"\nrecovery_window_hours = 120", "recovery_window"),
        ];
        for (text, key) in cases {
            let err = SimConfig::new(1).apply_file(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
