//! `gapless.toml`: what to archive and how.
//!
//! ```toml
//! data = "gapless-data"                  # the data directory (--data overrides)
//! admin = "127.0.0.1:9477"               # admin HTTP: /status /coverage /metrics
//! credentials = { file = "sim.credentials" }   # or { env = "GNIP_CREDENTIALS" }: "user:password"
//!
//! [[stream]]
//! label = "decahose"                     # the archive's name for it
//! kind = "decahose"                      # decahose | firehose | powertrack | likes
//! url = "http://127.0.0.1:8787/stream/sample10/accounts/{account}/publishers/twitter/{label}.json"
//! account = "acme"
//! remote_label = "prod"                  # {label} in the URL (default: label)
//! partitions = 2                         # default by kind: decahose 2, firehose 20, likes 2, powertrack none
//! connections_per_partition = 1          # redundancy
//! backfill = true
//! recovery = { enabled = true, window = "5d", chunk = "1h", concurrency = 2 }
//! liveness = { silence = "30s", data_silence = "5s", latency_allowance = "13s" }   # data_silence caps the gap bound
//! ```
//!
//! Durations are written `250ms`, `30s`, `5m`, `1h`, `5d`. Relative paths
//! are relative to the config file. Credentials are never in the file
//! itself: only where to find them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::continuity::DataBound;
use crate::credentials::CredentialSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Decahose,
    Firehose,
    Powertrack,
    Likes,
}

impl Kind {
    pub fn default_partitions(self) -> u32 {
        match self {
            Kind::Decahose | Kind::Likes => 2,
            Kind::Firehose => 20,
            Kind::Powertrack => 0,
        }
    }

    /// The service keeps this much for Recovery; Likes have none.
    pub fn default_window(self) -> Option<Duration> {
        match self {
            Kind::Decahose | Kind::Firehose => Some(Duration::from_secs(5 * 86_400)),
            Kind::Powertrack => Some(Duration::from_secs(86_400)),
            Kind::Likes => None,
        }
    }

    pub fn default_chunk(self) -> Duration {
        match self {
            Kind::Powertrack => Duration::from_secs(7200),
            _ => Duration::from_secs(3600),
        }
    }

    /// Decahose, Firehose and Likes deliver activities every few
    /// milliseconds, day and night; PowerTrack may be quiet for minutes.
    pub fn never_pauses(self) -> bool {
        self != Kind::Powertrack
    }

    /// The data-silence bound before any rate is observed (see
    /// `continuity.rs`): Likes come slower than Posts.
    pub fn default_data_bound(self) -> Duration {
        match self {
            Kind::Likes => Duration::from_secs(2),
            _ => Duration::from_secs(1),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Decahose => "decahose",
            Kind::Firehose => "firehose",
            Kind::Powertrack => "powertrack",
            Kind::Likes => "likes",
        }
    }
}

/// A duration in a config file: `250ms`, `30s`, `5m`, `1h`, `5d`.
/// Durations in the config use the project's one grammar ([`gapless_time`]).
pub use gapless_time::Dur;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub window: Option<Dur>,
    pub chunk: Option<Dur>,
    #[serde(default = "two")]
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessConfig {
    /// No byte at all (heartbeats included) for this long: the connection
    /// is dead, even if TCP says otherwise. Heartbeats come every 10 s.
    #[serde(default = "thirty_s")]
    pub silence: Dur,
    /// On streams that never pause (Decahose, Firehose, Likes): the most a
    /// gap between activities may last before it is a hole. The bound in
    /// force is derived from the observed rate and clamped to
    /// `[1 s, data_silence]` (unset: `[1 s, silence]`); see
    /// `continuity.rs`. A connection that gets bytes but no activity for
    /// `max(data_silence, silence)` reconnects. On PowerTrack (quiet rules)
    /// unset means no bound, set means this fixed bound.
    pub data_silence: Option<Dur>,
    /// Activities arrive up to this late; coverage trails the last sign of
    /// life by it (10 s stream delay + 3 s out of order).
    #[serde(default = "thirteen_s")]
    pub latency_allowance: Dur,
    /// A connection alive this long counts as stable: backoff starts over.
    #[serde(default = "one_min")]
    pub stable_after: Dur,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            silence: thirty_s(),
            data_silence: None,
            latency_allowance: thirteen_s(),
            stable_after: one_min(),
        }
    }
}

fn yes() -> bool {
    true
}
fn two() -> usize {
    2
}
fn one() -> u32 {
    1
}
fn thirty_s() -> Dur {
    Dur(Duration::from_secs(30))
}
fn thirteen_s() -> Dur {
    Dur(Duration::from_secs(13))
}
fn one_min() -> Dur {
    Dur(Duration::from_secs(60))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub label: String,
    pub kind: Kind,
    pub url: String,
    #[serde(default)]
    pub account: String,
    pub remote_label: Option<String>,
    pub partitions: Option<u32>,
    #[serde(default = "one")]
    pub connections_per_partition: u32,
    #[serde(default = "yes")]
    pub backfill: bool,
    pub recovery: Option<RecoveryConfig>,
    #[serde(default)]
    pub liveness: Option<LivenessConfig>,
    pub credentials: Option<CredentialSource>,
}

/// A stream's settings with every default filled in.
#[derive(Debug, Clone)]
pub struct Stream {
    pub label: String,
    pub kind: Kind,
    /// The URL with account and label filled in, without query.
    pub url: String,
    /// The account the stream belongs to: `account`, or the name after
    /// `/accounts/` in the URL, or else the URL's host. Recovery's limit of
    /// two concurrent jobs is the account's.
    pub account: String,
    /// 0: not partitioned (PowerTrack).
    pub partitions: u32,
    pub connections_per_partition: u32,
    pub backfill: bool,
    pub recovery: Option<Recovery>,
    pub liveness: LivenessConfig,
    pub credentials: CredentialSource,
}

#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    pub window: Duration,
    pub chunk: Duration,
    pub concurrency: usize,
}

impl Stream {
    /// Partitions as coverage counts them: 1..=N, or just 1 when the stream
    /// is not partitioned.
    pub fn coverage_partitions(&self) -> u32 {
        self.partitions.max(1)
    }

    /// How long a gap between activities may be before it is a hole: on
    /// streams that never pause always (derived from the observed rate),
    /// on PowerTrack only when `data_silence` is configured.
    pub fn data_bound(&self) -> Option<DataBound> {
        let configured = self.liveness.data_silence.map(|d| d.0.as_millis() as i64);
        if self.kind.never_pauses() {
            Some(DataBound::Derived {
                default_ms: self.kind.default_data_bound().as_millis() as i64,
                cap_ms: configured.unwrap_or(self.liveness.silence.0.as_millis() as i64),
            })
        } else {
            configured.map(|ms| DataBound::Fixed { ms })
        }
    }

    /// Bytes (heartbeats) but no activity for this long ends a connection:
    /// `max(data_silence, silence)` where a bound applies.
    pub fn data_silence_end(&self) -> Option<Duration> {
        let silence = self.liveness.silence.0;
        match self.liveness.data_silence {
            Some(d) => Some(d.0.max(silence)),
            None => self.kind.never_pauses().then_some(silence),
        }
    }

    /// How far back coverage may be owed: the recovery window, or for a
    /// stream without Recovery, backfill's five minutes.
    pub fn reach(&self) -> Duration {
        match &self.recovery {
            Some(r) => r.window,
            None => Duration::from_secs(300),
        }
    }
}

/// `[archive]`: the archive kept in an S3-compatible bucket too. The
/// bucket's credentials, region and endpoint come from the `AWS_*`
/// environment variables, never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// `s3://BUCKET/PREFIX`.
    pub url: String,
    /// A minute is copied once it has had no new data for this long
    /// (stream time): a sealed minute is copied once, not every second.
    #[serde(default = "eleven_min")]
    pub settle: Dur,
    /// How often the uploader looks for settled minutes (wall time).
    #[serde(default = "thirty_s")]
    pub interval: Dur,
    /// Keep each stream's local segments under this size (`500MB`,
    /// `200GiB`, or bytes): the oldest settled minutes whose copy in the
    /// bucket is verified are evicted. Unset: nothing is evicted.
    pub local_max: Option<Size>,
}

/// A size in a config file: bytes, or a number with `B`, `kB`/`KB`,
/// `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Size(n)),
            Raw::Text(t) => parse_size(&t).map(Size).ok_or_else(|| {
                serde::de::Error::custom(format!("size {t:?}: a number with B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"))
            }),
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let scale: f64 = match unit {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024f64.powi(2),
        "GiB" => 1024f64.powi(3),
        "TiB" => 1024f64.powi(4),
        _ => return None,
    };
    let bytes = n * scale;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The bucket archive, resolved.
#[derive(Debug, Clone)]
pub struct Archive {
    pub url: String,
    /// This archiver's site (top-level `site`, default `default`).
    pub site: String,
    pub settle: Duration,
    pub interval: Duration,
    /// Keep each stream's local segments under this many bytes.
    pub local_max: Option<u64>,
}

fn eleven_min() -> Dur {
    Dur(Duration::from_secs(660))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data: Option<PathBuf>,
    admin: Option<SocketAddr>,
    /// This archiver's site name in the bucket: archivers of the same
    /// streams on different machines write under their own.
    site: Option<String>,
    archive: Option<ArchiveConfig>,
    #[serde(default)]
    compliance: ComplianceConfig,
    credentials: Option<CredentialSource>,
    #[serde(rename = "stream", default)]
    streams: Vec<StreamConfig>,
}

/// `[compliance]`: purging deleted content from the archive itself
/// (`crate::purge`). On by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Purge at all (`false`: readers still hide deleted content).
    #[serde(default = "yes")]
    pub purge: bool,
    /// How old a compliance event is (its time) before the content it
    /// deletes is removed from the segments: until then a
    /// `user_undelete` brings a user's Posts back.
    #[serde(default = "one_day")]
    pub purge_after: Dur,
    /// How often the ledger is looked at for events that became due.
    #[serde(default = "one_hour")]
    pub purge_interval: Dur,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig { purge: true, purge_after: one_day(), purge_interval: one_hour() }
    }
}

fn one_day() -> Dur {
    Dur(Duration::from_secs(86_400))
}
fn one_hour() -> Dur {
    Dur(Duration::from_secs(3_600))
}

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub admin: Option<SocketAddr>,
    pub streams: Vec<Stream>,
    /// The bucket the archive is copied to, if any.
    pub archive: Option<Archive>,
    /// Purging deleted content (`[compliance]`); `None`: off.
    pub purge: Option<crate::purge::PurgeConfig>,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("read config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).with_context(|| format!("config {}", path.display()))
    }

    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
        let file: File = toml::from_str(text)?;
        let data = base.join(file.data.unwrap_or_else(|| PathBuf::from("gapless-data")));
        let mut streams = Vec::new();
        for s in file.streams {
            let credentials = match s.credentials.or_else(|| file.credentials.clone()) {
                Some(c) => c.relative_to(base),
                None => bail!(
                    "stream {:?}: no credentials (set `credentials = {{ env = \"VAR\" }}` or `{{ file = \"path\" }}`)",
                    s.label
                ),
            };
            gapless_storage::store::check_label(&s.label)?;
            if streams.iter().any(|o: &Stream| o.label == s.label) {
                bail!("stream label {:?} appears twice", s.label);
            }
            let partitions = s.partitions.unwrap_or(s.kind.default_partitions());
            let remote = s.remote_label.clone().unwrap_or_else(|| s.label.clone());
            let url = s.url.replace("{account}", &s.account).replace("{label}", &remote);
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("stream {:?}: url must be http:// or https://, got {url:?}", s.label);
            }
            let recovery = match (s.recovery, s.kind.default_window()) {
                (Some(r), _) if !r.enabled => None,
                (Some(r), default) => {
                    let Some(window) = r.window.map(|d| d.0).or(default) else {
                        bail!(
                            "stream {:?}: {} streams have no Recovery; set recovery.window if yours does",
                            s.label,
                            s.kind.name()
                        )
                    };
                    Some(Recovery {
                        window,
                        chunk: r.chunk.map_or(s.kind.default_chunk(), |d| d.0),
                        concurrency: r.concurrency.clamp(1, 2),
                    })
                }
                (None, Some(window)) => Some(Recovery { window, chunk: s.kind.default_chunk(), concurrency: 2 }),
                (None, None) => None,
            };
            let account = if s.account.is_empty() { account_of(&url) } else { s.account.clone() };
            streams.push(Stream {
                label: s.label,
                kind: s.kind,
                url,
                account,
                partitions,
                connections_per_partition: s.connections_per_partition.max(1),
                backfill: s.backfill,
                recovery,
                liveness: s.liveness.unwrap_or_default(),
                credentials,
            });
        }
        if streams.is_empty() {
            bail!("no [[stream]] configured");
        }
        let site = file.site.unwrap_or_else(|| "default".to_string());
        if !gapless_bucket::keys::check_site(&site) {
            bail!("site {site:?}: letters, digits, `-`, `_`, `.`, not starting with `.`, at most 64 bytes");
        }
        let archive = match file.archive {
            Some(a) => {
                // Checked now (the URL's form only: nothing is contacted).
                gapless_bucket::Bucket::check_url(&a.url).context("[archive] url")?;
                Some(Archive {
                    url: a.url,
                    site,
                    settle: a.settle.0,
                    interval: a.interval.0,
                    local_max: a.local_max.map(|s| s.0),
                })
            }
            None => None,
        };
        let c = &file.compliance;
        let purge =
            c.purge.then_some(crate::purge::PurgeConfig { after: c.purge_after.0, interval: c.purge_interval.0 });
        Ok(Config { data, admin: file.admin, streams, archive, purge })
    }
}

/// The account a stream URL names (`.../accounts/NAME/...`), or its host.
fn account_of(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut parts = path.split('/');
    let host = parts.next().unwrap_or_default().to_string();
    while let Some(p) = parts.next() {
        if p == "accounts" {
            if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
                return name.to_string();
            }
        }
    }
    host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../examples/sim.toml");
        let c = Config::parse(text, Path::new("/etc/gapless")).unwrap();
        assert_eq!(c.streams.len(), 2);
        let d = &c.streams[0];
        assert_eq!((d.label.as_str(), d.kind, d.partitions), ("decahose", Kind::Decahose, 2));
        assert!(d.url.ends_with("/stream/sample10/accounts/acme/publishers/twitter/prod.json"), "{}", d.url);
        assert_eq!(d.recovery.unwrap().window, Duration::from_secs(5 * 86_400));
        let l = &c.streams[1];
        assert_eq!(l.kind, Kind::Likes);
        assert!(l.recovery.is_none(), "likes have no Recovery");
        assert!(l.backfill);
    }

    #[test]
    fn compliance_purges_after_a_day_unless_told_otherwise() {
        let parse = |extra: &str| {
            let text =
                format!("credentials={{env='X'}}\n[[stream]]\nlabel='a'\nkind='decahose'\nurl='http://h/x'\n{extra}");
            Config::parse(&text, Path::new(".")).map(|c| c.purge)
        };
        let p = parse("").unwrap().expect("on by default");
        assert_eq!((p.after, p.interval), (Duration::from_secs(86_400), Duration::from_secs(3_600)));
        let p = parse("[compliance]\npurge_after = '2h'\npurge_interval = '10m'").unwrap().unwrap();
        assert_eq!((p.after, p.interval), (Duration::from_secs(7_200), Duration::from_secs(600)));
        assert!(parse("[compliance]\npurge = false").unwrap().is_none());
        assert!(parse("[compliance]\npurge_afer = '2h'").is_err(), "a misspelt key is refused");
    }

    #[test]
    fn a_streams_account_is_given_or_read_from_its_url() {
        let parse = |extra: &str, url: &str| {
            let text = format!("credentials={{env='X'}}\n[[stream]]\nlabel='a'\nkind='decahose'\nurl='{url}'\n{extra}");
            Config::parse(&text, Path::new(".")).unwrap().streams.remove(0).account
        };
        assert_eq!(
            parse("account='acme'", "http://h/stream/sample10/accounts/{account}/publishers/twitter/prod.json"),
            "acme"
        );
        assert_eq!(
            parse("", "https://gnip-stream.x.com/stream/firehose/accounts/zeta/publishers/twitter/prod.json"),
            "zeta"
        );
        assert_eq!(parse("", "http://127.0.0.1:9000/stream"), "127.0.0.1:9000");
    }

    #[test]
    fn the_archive_bucket_and_site_are_checked() {
        let stream = "credentials={env='X'}\n[[stream]]\nlabel='a'\nkind='decahose'\nurl='http://x/'\n";
        let c = Config::parse(stream, Path::new(".")).unwrap();
        assert!(c.archive.is_none());
        let text = format!("site='east'\n{stream}[archive]\nurl='s3://b/p'\nsettle='2m'\n");
        let a = Config::parse(&text, Path::new(".")).unwrap().archive.unwrap();
        assert_eq!((a.url.as_str(), a.site.as_str(), a.settle), ("s3://b/p", "east", Duration::from_secs(120)));
        assert_eq!(a.interval, Duration::from_secs(30));
        assert_eq!(a.local_max, None);
        for (size, bytes) in [("'500MB'", 500_000_000), ("'2GiB'", 2 << 30), ("1234", 1234), ("'1.5 kB'", 1500)] {
            let text = format!("{stream}[archive]\nurl='s3://b'\nlocal_max={size}\n");
            assert_eq!(Config::parse(&text, Path::new(".")).unwrap().archive.unwrap().local_max, Some(bytes), "{size}");
        }
        for bad in ["'5 parsecs'", "'-1MB'", "'MB'"] {
            let text = format!("{stream}[archive]\nurl='s3://b'\nlocal_max={bad}\n");
            assert!(Config::parse(&text, Path::new(".")).is_err(), "{bad}");
        }
        let site = Config::parse(&format!("{stream}[archive]\nurl='s3://b'\n"), Path::new(".")).unwrap();
        assert_eq!(site.archive.unwrap().site, "default");
        for bad in [
            format!("site='../x'\n{stream}[archive]\nurl='s3://b/p'\n"),
            format!("{stream}[archive]\nurl='http://b/p'\n"),
            format!("{stream}[archive]\nurl='s3://key:secret@b/p'\n"),
            format!("{stream}[archive]\nurl='s3://b/p'\nsecret_access_key='x'\n"),
        ] {
            let err = format!("{:#}", Config::parse(&bad, Path::new(".")).unwrap_err());
            assert!(!err.contains("secret@"), "{err}");
        }
    }

    #[test]
    fn streams_that_never_pause_have_a_data_bound_by_default() {
        let parse = |kind: &str, liveness: &str| {
            let text =
                format!("credentials={{env='X'}}\n[[stream]]\nlabel='a'\nkind='{kind}'\nurl='http://x/'\n{liveness}\n");
            Config::parse(&text, Path::new(".")).unwrap().streams.remove(0)
        };
        let d = parse("decahose", "");
        assert_eq!(d.data_bound(), Some(DataBound::Derived { default_ms: 1000, cap_ms: 30_000 }));
        assert_eq!(d.data_silence_end(), Some(Duration::from_secs(30)));
        let l = parse("likes", "liveness = { data_silence = '5s' }");
        assert_eq!(l.data_bound(), Some(DataBound::Derived { default_ms: 2000, cap_ms: 5000 }));
        assert_eq!(l.data_silence_end(), Some(Duration::from_secs(30)));
        let p = parse("powertrack", "");
        assert_eq!((p.data_bound(), p.data_silence_end()), (None, None), "PowerTrack may be quiet for minutes");
        let p = parse("powertrack", "liveness = { data_silence = '2m' }");
        assert_eq!(p.data_bound(), Some(DataBound::Fixed { ms: 120_000 }));
    }

    #[test]
    fn durations_parse() {
        let parse = |s: &str| gapless_time::parse_duration(s).ok();
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("5d"), Some(Duration::from_secs(432_000)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("5 parsecs"), None);
    }

    #[test]
    fn a_stream_without_credentials_or_with_a_bad_label_is_refused() {
        let e = Config::parse("[[stream]]\nlabel='a'\nkind='decahose'\nurl='http://x/'\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("no credentials"), "{e}");
        let e = Config::parse(
            "credentials={env='X'}\n[[stream]]\nlabel='../a'\nkind='decahose'\nurl='http://x/'\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("label"), "{e:#}");
    }
}
