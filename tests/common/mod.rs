//! The harness of the archiver's end-to-end tests: stream-sim on loopback
//! with a scaled clock, the archiver in process against it (or as a child
//! process), and the comparison of the archive with stream-sim's ground
//! truth (`gapless::demo::verify`: every activity once, with the exact bytes
//! stream-sim sent): at the end, and during the run through the admin API.

#![allow(dead_code)]

pub mod proxy;
pub mod rawserver;

use std::collections::{BTreeMap, BTreeSet};

pub use gapless::demo::verify::{Archived, Diff, Truth};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gapless::archiver::{self, Options, Running};
use gapless::clock::Clock;
use gapless::config::Config;
use gapless_report::schema::{Report, State, StreamReport};
use gapless_storage::coverage::{Coverage, CoverageMap};
use gapless_storage::Minute;
use stream_sim::faults::FaultPlan;
use stream_sim::{Server, SimConfig, StreamKind, StreamSpec};

pub const START: &str = "2026-03-01T00:00:00Z";

/// Tests of one binary run one at a time: the machine has two slow cores,
/// and a test that shares them with another sees its connections stall.
/// (An async lock: it is held across the whole test, awaits included, and
/// a test that panics releases it.)
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// One scripted fault of stream-sim (a `[[fault]]` table of its fault
/// file; see `tools/stream-sim/README.md`), on the Decahose
/// (`sample10/prod`) unless [`Fault::on`] or [`Fault::everywhere`] says
/// otherwise.
pub struct Fault {
    kind: &'static str,
    at: &'static str,
    duration: &'static str,
    stream: Option<&'static str>,
    partition: Option<u32>,
    connection: Option<u64>,
}

/// A fault of `kind` from `at` (`+10m`: after START) for `duration`.
pub fn fault(kind: &'static str, at: &'static str, duration: &'static str) -> Fault {
    Fault { kind, at, duration, stream: Some("sample10/prod"), partition: None, connection: None }
}

impl Fault {
    /// On another stream (`likes/prod`).
    pub fn on(mut self, stream: &'static str) -> Fault {
        self.stream = Some(stream);
        self
    }

    /// On every stream.
    pub fn everywhere(mut self) -> Fault {
        self.stream = None;
        self
    }

    pub fn partition(mut self, p: u32) -> Fault {
        self.partition = Some(p);
        self
    }

    /// Only the n-th connection accepted on the stream (1-based).
    pub fn connection(mut self, n: u64) -> Fault {
        self.connection = Some(n);
        self
    }
}

/// The fault file (TOML) of `faults`.
pub fn script(faults: &[Fault]) -> String {
    let mut out = String::new();
    for f in faults {
        out.push_str(&format!("[[fault]]\nat = \"{}\"\nduration = \"{}\"\nkind = \"{}\"\n", f.at, f.duration, f.kind));
        if let Some(s) = f.stream {
            out.push_str(&format!("stream = \"{s}\"\n"));
        }
        if let Some(p) = f.partition {
            out.push_str(&format!("partition = {p}\n"));
        }
        if let Some(c) = f.connection {
            out.push_str(&format!("connection = {c}\n"));
        }
        out.push('\n');
    }
    out
}

/// What a test runs against.
#[derive(Clone, Debug)]
pub struct Setup {
    pub seed: u64,
    /// Activities per second of stream time, per stream.
    pub rate: f64,
    /// Stream seconds per wall second.
    pub speed: f64,
    /// The fault script (TOML, times relative to START).
    pub faults: String,
    pub likes: bool,
    /// Serve the admin API on 127.0.0.1, a free port.
    pub admin: bool,
    /// stream-sim's Recovery pace (0: as fast as the client reads).
    pub recovery_pace: f64,
}

impl Setup {
    pub fn new(seed: u64, rate: f64, speed: f64) -> Setup {
        Setup { seed, rate, speed, faults: String::new(), likes: false, admin: true, recovery_pace: 0.0 }
    }

    pub fn faults(mut self, faults: &str) -> Setup {
        self.faults = faults.to_string();
        self
    }

    pub fn likes(mut self) -> Setup {
        self.likes = true;
        self
    }

    pub fn recovery_pace(mut self, pace: f64) -> Setup {
        self.recovery_pace = pace;
        self
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sim: Option<Server>,
    pub seed: u64,
    pub rate: f64,
    pub speed: f64,
    pub origin: f64,
    pub start_ms: i64,
    pub config_text: String,
    /// Ground truth per (stream, Unix minute), computed once.
    truth_cache: Mutex<BTreeMap<(String, i64), Arc<Truth>>>,
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
        let mut setup = Setup::new(seed, rate, speed).faults(faults);
        setup.likes = likes;
        setup.admin = false;
        Harness::launch(setup).await
    }

    pub async fn launch(setup: Setup) -> Harness {
        let Setup { seed, rate, speed, faults, likes, admin, recovery_pace } = setup;
        // A little ahead, so that START is not already behind when the
        // archiver begins.
        let origin = unix_now();
        let start: chrono::DateTime<chrono::Utc> = START.parse().unwrap();
        let mut cfg = SimConfig::new(seed).with_rate(rate);
        cfg.clock = Clock::scaled(Some(start), speed, Some(origin)).unwrap();
        cfg.streams = vec![spec(StreamKind::Sample10, rate)];
        if likes {
            cfg.streams.push(spec(StreamKind::Likes, rate));
        }
        cfg.recovery_pace = recovery_pace;
        if !faults.is_empty() {
            cfg.faults = FaultPlan::from_toml(&faults, start.timestamp_millis(), seed).unwrap();
        }
        let sim = Server::start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = sim.addr();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("creds"), "sim:sim").unwrap();
        let mut config_text = String::new();
        if admin {
            config_text.push_str("admin = \"127.0.0.1:0\"\n");
        }
        config_text.push_str(&format!(
            r#"
credentials = {{ file = "creds" }}
[[stream]]
label = "decahose"
kind = "decahose"
url = "http://{addr}/stream/sample10/accounts/acme/publishers/twitter/prod.json"
liveness = {{ silence = "30s", data_silence = "5s" }}
"#
        ));
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
        Harness {
            dir,
            sim: Some(sim),
            seed,
            rate,
            speed,
            origin,
            start_ms: start.timestamp_millis(),
            config_text,
            truth_cache: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn clock(&self) -> Clock {
        Clock::scaled(
            Some(chrono::DateTime::from_timestamp_millis(self.start_ms).unwrap()),
            self.speed,
            Some(self.origin),
        )
        .unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn archiver(&self) -> Running {
        let mut config = Config::parse(&self.config_text, self.dir.path()).unwrap();
        config.data = self.data();
        archiver::start(Options { config, clock: self.clock(), since_secs: None, fs: None }).await.unwrap()
    }

    /// Waits until stream time reaches `START + minutes`.
    pub async fn until_minute(&self, minutes: f64) {
        let target = self.start_ms + (minutes * 60_000.0) as i64;
        loop {
            let now = self.clock().now_ms();
            if now >= target {
                return;
            }
            tokio::time::sleep(
                self.clock().wall(Duration::from_millis((target - now) as u64)).min(Duration::from_millis(200)),
            )
            .await;
        }
    }

    /// Activity lines stream-sim has sent on `stream` so far, every copy
    /// counted (its own record, whatever the machine's speed).
    pub fn sim_sent(&self, stream: &str) -> u64 {
        let kind = if stream == "likes" { StreamKind::Likes } else { StreamKind::Sample10 };
        self.sim.as_ref().map_or(0, |s| s.activities_sent(kind, "prod"))
    }

    /// Stream minutes since START, now.
    pub fn minutes_now(&self) -> f64 {
        (self.clock().now_ms() - self.start_ms) as f64 / 60_000.0
    }

    /// The Unix minute `START + m`.
    pub fn minute(&self, m: i64) -> i64 {
        self.start_ms / 60_000 + m
    }

    /// The ground truth of `[from_ms, to_ms)`: keys and fingerprints.
    pub fn truth(&self, stream: &str, from_ms: i64, to_ms: i64) -> Truth {
        let kind = if stream == "likes" { StreamKind::Likes } else { StreamKind::Sample10 };
        let gen = stream_sim::Generator::new(self.seed, &spec(kind, self.rate));
        gapless::demo::verify::truth(&gen, from_ms, to_ms)
    }

    /// The ground truth of one Unix minute, cached.
    pub fn truth_minute(&self, stream: &str, minute: i64) -> Arc<Truth> {
        let key = (stream.to_string(), minute);
        if let Some(t) = self.truth_cache.lock().unwrap().get(&key) {
            return t.clone();
        }
        let t = Arc::new(self.truth(stream, minute * 60_000, minute * 60_000 + 60_000));
        self.truth_cache.lock().unwrap().insert(key, t.clone());
        t
    }

    /// The archive of Unix minutes `[from, to)` against the truth, activity
    /// by activity and byte by byte.
    pub fn diff(&self, stream: &str, from: i64, to: i64) -> Diff {
        let mut want = Truth::new();
        for m in from..to {
            want.extend(self.truth_minute(stream, m).iter().map(|(k, f)| (k.clone(), *f)));
        }
        gapless::demo::verify::compare(&want, &archive(&self.data(), stream, from * 60_000, to * 60_000))
    }

    /// Compares the archive's minute with the truth: `Err` says what
    /// differs.
    pub fn compare_minute(&self, stream: &str, minute: i64) -> Result<usize, String> {
        let d = self.diff(stream, minute, minute + 1);
        if d.is_exact() {
            Ok(d.archived)
        } else {
            Err(format!("{stream} minute {}: {d}", rfc3339(minute * 60)))
        }
    }

    /// The end of a run: every minute of `[from, to)` (minutes after START)
    /// is full in the stopped archive's coverage map, and the archive there
    /// equals the truth exactly: every activity once, with the bytes
    /// stream-sim sent. Returns the activities compared.
    pub fn assert_complete(&self, stream: &str, from: i64, to: i64) -> usize {
        let states = full_minutes(&self.data(), stream, Minute(self.minute(from)), Minute(self.minute(to)));
        let bad: Vec<String> = states
            .iter()
            .filter(|(_, c)| *c != Coverage::Full)
            .map(|(m, c)| format!("{} {c:?}", rfc3339(m.0 * 60)))
            .collect();
        assert!(bad.is_empty(), "{stream}: minutes not full at the end: {bad:?}");
        assert_eq!(states.len() as i64, to - from);
        let d = self.diff(stream, self.minute(from), self.minute(to));
        assert!(d.is_exact(), "{stream}: the archive is not the truth: {d}");
        d.archived
    }
}

pub fn rfc3339(secs: i64) -> String {
    gapless_time::rfc3339(secs)
}

/// The archive's activities of `[from_ms, to_ms)`, read back through
/// gapless-storage's range reader: keys and the fingerprints of their bytes.
pub fn archive(data: &Path, stream: &str, from_ms: i64, to_ms: i64) -> Archived {
    gapless::demo::verify::read_archive(data, stream, from_ms, to_ms).unwrap()
}

/// Minutes of `[from, to)` and their coverage, read from a stopped archive.
pub fn full_minutes(data: &Path, stream: &str, from: Minute, to: Minute) -> Vec<(Minute, Coverage)> {
    let map = CoverageMap::open(&data.join("coverage")).unwrap();
    map.minute_states(stream, from..to, i64::MAX / 4, 0).unwrap().into_iter().map(|r| (r.minute, r.coverage)).collect()
}

/// `GET /coverage` of a running archiver, for `[from, to)` (Unix minutes).
pub async fn coverage(admin: SocketAddr, stream: &str, from_minute: i64, to_minute: i64) -> Report {
    let url = format!("http://{admin}/coverage?from={}&to={}&stream={stream}", from_minute * 60, to_minute * 60);
    let mut last = String::new();
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_secs(10), reqwest::get(&url)).await {
            Ok(Ok(r)) if r.status().is_success() => {
                let text = r.text().await.unwrap();
                let report: Report = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
                assert_eq!(report.schema, "gapless.coverage/1");
                return report;
            }
            Ok(Ok(r)) => last = format!("HTTP {}: {}", r.status(), r.text().await.unwrap_or_default()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timeout".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url}: {last}");
}

pub fn stream_report<'a>(report: &'a Report, stream: &str) -> &'a StreamReport {
    report.streams.iter().find(|s| s.stream == stream).unwrap_or_else(|| panic!("no stream {stream} in the report"))
}

/// The full minutes (Unix minutes) of a report's stream.
pub fn full_in(report: &Report, stream: &str) -> Vec<i64> {
    stream_report(report, stream).minutes.iter().filter(|m| m.state == State::Full).map(|m| m.minute).collect()
}

/// Watches a running archiver: every few hundred milliseconds it reads
/// `/coverage`, and every minute newly reported `full` is compared with the
/// truth right then (the segments are read after the coverage, which is
/// recorded only after its data is durable). "No minute is ever reported
/// full while it misses an activity."
pub struct Watch {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<WatchResult>,
}

#[derive(Debug, Default, Clone)]
pub struct WatchResult {
    /// Minutes verified (each once, when first seen full).
    pub verified: BTreeSet<(String, i64)>,
    /// How many coverage reads had at least one newly full minute.
    pub rounds: usize,
    /// How many coverage reads.
    pub polls: usize,
    pub failures: Vec<String>,
    /// Minutes seen with state `lost`.
    pub lost: BTreeSet<(String, i64)>,
}

impl Watch {
    /// Watches `streams` over `[from, to)` (minutes after START).
    pub fn start(h: &Arc<Harness>, admin: SocketAddr, streams: &[&str], from: i64, to: i64) -> Watch {
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let h = h.clone();
        let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
        let task = tokio::spawn(async move {
            let mut res = WatchResult::default();
            loop {
                for s in &streams {
                    let report = coverage(admin, s, h.minute(from), h.minute(to)).await;
                    res.polls += 1;
                    for m in &stream_report(&report, s).minutes {
                        if m.state == State::Lost {
                            res.lost.insert((s.clone(), m.minute));
                        }
                    }
                    let fresh: Vec<i64> =
                        full_in(&report, s).into_iter().filter(|m| !res.verified.contains(&(s.clone(), *m))).collect();
                    if fresh.is_empty() {
                        continue;
                    }
                    res.rounds += 1;
                    let (h2, s2, fresh2) = (h.clone(), s.clone(), fresh.clone());
                    let errs = tokio::task::spawn_blocking(move || {
                        fresh2.iter().filter_map(|m| h2.compare_minute(&s2, *m).err()).collect::<Vec<_>>()
                    })
                    .await
                    .unwrap();
                    for e in errs {
                        eprintln!("WATCH: a minute reported full misses something: {e}");
                        res.failures.push(e);
                    }
                    res.verified.extend(fresh.into_iter().map(|m| (s.clone(), m)));
                }
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
            }
            res
        });
        Watch { stop, task }
    }

    /// Stops watching; panics if a full minute missed an activity.
    pub async fn finish(self) -> WatchResult {
        let _ = self.stop.send(true);
        let res = self.task.await.expect("the watch task panicked");
        assert!(
            res.failures.is_empty(),
            "minutes reported full while missing activities:\n{}\nthe log's last lines:\n{}",
            res.failures.join("\n"),
            log_tail(60)
        );
        res
    }
}

/// Waits until `[from, to)` (minutes after START) is all full according to
/// the running archiver, or panics after `timeout` (wall) with the report.
pub async fn until_full(h: &Harness, admin: SocketAddr, stream: &str, from: i64, to: i64, timeout: Duration) -> Report {
    until_states(h, admin, stream, from, to, timeout, &[State::Full]).await
}

/// Waits until every minute of `[from, to)` (minutes after START) is in one
/// of `states`, or panics after `timeout` (wall) with the report.
pub async fn until_states(
    h: &Harness,
    admin: SocketAddr,
    stream: &str,
    from: i64,
    to: i64,
    timeout: Duration,
    states: &[State],
) -> Report {
    let what = format!("{states:?}");
    until_report(h, admin, stream, from, to, timeout, &what, |r| r.minutes.iter().all(|m| states.contains(&m.state)))
        .await
}

/// Waits until `cond` holds of the stream's report over `[from, to)`
/// (minutes after START), or panics after `timeout` (wall) with the report.
#[allow(clippy::too_many_arguments)]
pub async fn until_report(
    h: &Harness,
    admin: SocketAddr,
    stream: &str,
    from: i64,
    to: i64,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&StreamReport) -> bool,
) -> Report {
    let deadline = Instant::now() + timeout;
    loop {
        let report = coverage(admin, stream, h.minute(from), h.minute(to)).await;
        let r = stream_report(&report, stream);
        if r.minutes.len() as i64 == to - from && cond(r) {
            return report;
        }
        if Instant::now() > deadline {
            let not: Vec<String> = r
                .minutes
                .iter()
                .filter(|m| m.state != State::Full)
                .map(|m| format!("{} {:?} {:?}", m.t, m.state, m.partitions))
                .collect();
            panic!(
                "{stream}: minutes {from}..{to} not all {what} after {timeout:?} (stream minute now {:.1}): not full: {not:?}\nholes: {:?}\njobs: {:?}\n{}",
                h.minutes_now(),
                r.holes.iter().map(|h| (&h.start, &h.end, h.state)).collect::<Vec<_>>(),
                r.jobs,
                log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for `cond` (polled every 100 ms), or panics with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", log_tail(40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- Logs -----------------------------------------------------------------

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        if std::env::var_os("GAPLESS_TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the archiver's logs (and stream-sim's warnings) of this test
/// binary; `GAPLESS_TEST_LOG=1` echoes them to stderr.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = LogWriter(buf.clone());
        let filter = std::env::var("RUST_LOG")
            .unwrap_or_else(|_| "gapless=info,stream_sim=warn,stream_sim::recovery=info".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init();
        buf
    });
}

/// Everything logged so far.
pub fn logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap_or_else(|e| e.into_inner())).into_owned())
        .unwrap_or_default()
}

/// Forgets the logs so far (at the start of a test).
pub fn clear_logs() {
    if let Some(b) = LOGS.get() {
        b.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

pub fn log_tail(n: usize) -> String {
    let l = logs();
    let lines: Vec<&str> = l.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// --- The archiver as a child process -------------------------------------

/// `gapless archive` run as its own process against the harness's sim.
pub struct Child {
    pub child: std::process::Child,
    pub admin: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Harness {
    /// Starts the real binary on this harness's config, data and clock;
    /// waits for its admin API.
    pub async fn spawn_binary(&self) -> Child {
        let config = self.dir.path().join("gapless.toml");
        std::fs::write(&config, &self.config_text).unwrap();
        let start = chrono::DateTime::from_timestamp_millis(self.start_ms).unwrap().to_rfc3339();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gapless"))
            .arg("archive")
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(self.data())
            .arg("--clock-start")
            .arg(start)
            .arg("--clock-speed")
            .arg(self.speed.to_string())
            .arg("--clock-origin")
            .arg(format!("{:.6}", self.origin))
            .env("RUST_LOG", "gapless=info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start gapless archive");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let l2 = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("GAPLESS_TEST_LOG").is_some() {
                    eprintln!("[child] {line}");
                }
                if line.contains("admin API") {
                    if let Some(addr) = line
                        .split("address=")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|s| s.parse::<SocketAddr>().ok())
                    {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                }
                l2.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let admin = loop {
            if let Ok(a) = rx.try_recv() {
                break a;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("gapless archive exited with {status}: {}", logs.lock().unwrap().join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "gapless archive did not announce its admin API: {}",
                logs.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Child { child, admin, logs }
    }
}

impl Child {
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RFC 3339 time in a log line, as Unix ms.
pub fn parse_ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp_millis())
}

/// The value of `key=` in a log line: an event's field, or a span's
/// (`recovery{job=3}`).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let value = [format!(" {key}="), format!("{{{key}=")].into_iter().find_map(|k| line.split(&k).nth(1));
    value.and_then(|s| s.split(|c: char| c.is_whitespace() || c == '}').next())
}

/// The lines logged so far that contain every one of `words`.
pub fn log_lines(words: &[&str]) -> Vec<String> {
    logs().lines().filter(|l| words.iter().all(|w| l.contains(w))).map(str::to_string).collect()
}
