//! Realtime throughput: how fast the archiver takes a stream from the
//! network to durable segments and recorded coverage, beside a plain reader
//! of the same bytes.
//!
//! stream-sim's max-speed mode (`tools/stream-sim/src/maxspeed.rs`)
//! pre-generates `--seconds` of a stream at `--rate` Posts/s (gzip
//! compressed once, in this process) and serves each partition's bytes as
//! fast as a connection reads them. Then, in one run, alternating, best of
//! `--runs`:
//! - **plain reader**: `curl --compressed` (one process a partition, all at
//!   once) reads every partition to `/dev/null`: HTTP, gunzip and nothing
//!   else. Without `curl` on the PATH, the row is left out.
//! - **archiver**: the release `gapless archive` binary
//!   (`CARGO_BIN_EXE_gapless`) as a child process, with `--since` at the
//!   burst's start and its clock 50 s after it (all of the burst in the
//!   past, claimable at once), reads every partition and stores it. The time
//!   is from its start until its admin API says every activity is stored
//!   (`gapless_stored_total`) and the burst is covered (`/coverage`: no
//!   hole from 5 s after its start to 5 s before its end); then it is
//!   stopped with SIGTERM and the archive is compared with stream-sim's
//!   truth, activity by activity and byte by byte.
//!
//! ```sh
//! cargo bench --bench realtime -- [--rate 6000] [--seconds 20] [--kind decahose|firehose] [--runs 2] [--seed 1]
//! ```
//!
//! The issue's figure: the archiver's activities/s, at least 143,199 (the
//! Firehose's record peak), and at least 0.8 of the plain reader's.

mod child;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::{counters, cpu_secs, free_port, sigterm, unix_now};
use gapless::demo::verify;

const START: &str = "2026-03-01T10:00:00Z";
/// A run that has not stored its burst by then is stopped.
const TIMEOUT_SECS: f64 = 60.0;

struct Args {
    rate: f64,
    seconds: u32,
    kind: stream_sim::StreamKind,
    runs: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { rate: 6000.0, seconds: 20, kind: stream_sim::StreamKind::Sample10, runs: 2, seed: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--rate" => a.rate = value("--rate")?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => a.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--runs" => a.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--seed" => a.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--kind" => {
                a.kind = match value("--kind")?.as_str() {
                    "decahose" => stream_sim::StreamKind::Sample10,
                    "firehose" => stream_sim::StreamKind::Firehose,
                    other => return Err(format!("--kind {other}: decahose or firehose")),
                }
            }
            // cargo bench passes --bench; a filter or other flags mean nothing here.
            _ => {}
        }
    }
    // The archiver's clock starts 50 s into the burst and backfills one
    // minute; the latency allowance keeps its last 13 s unclaimed.
    if !(5..=35).contains(&a.seconds) || a.rate <= 0.0 || a.runs == 0 {
        return Err("--seconds must be 5 to 35, --rate and --runs positive".into());
    }
    Ok(a)
}

/// One measured read of the whole burst.
struct Measure {
    seconds: f64,
    cpu: f64,
    /// The archiver's storage thread: seconds accepting, compressing and
    /// appending, in fsync (its `/metrics`), and commits.
    storage: Option<[f64; 4]>,
}

/// The storage thread's time from the archiver's `/metrics`.
fn storage_time(admin: SocketAddr) -> Option<[f64; 4]> {
    let text = child::get(admin, "/metrics")?;
    let value = |name: &str| -> Option<f64> {
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    Some([
        value("gapless_storage_accept_seconds_total{")?,
        value("gapless_storage_write_seconds_total{")?,
        value("gapless_storage_sync_seconds_total{")?,
        value("gapless_commits_total{")?,
    ])
}

/// The burst: where it is served and what it holds.
struct Burst {
    addr: SocketAddr,
    kind: stream_sim::StreamKind,
    partitions: u32,
    activities: u64,
    truth: verify::Truth,
    start_ms: i64,
    end_ms: i64,
}

impl Burst {
    fn url(&self) -> String {
        let path = match self.kind {
            stream_sim::StreamKind::Firehose => "firehose",
            _ => "sample10",
        };
        format!("http://{}/stream/{path}/accounts/bench/publishers/twitter/prod.json", self.addr)
    }
}

/// `curl --compressed` on every partition at once, to `/dev/null`.
fn plain_reader(b: &Burst) -> Option<Measure> {
    let t = Instant::now();
    let mut children = Vec::new();
    for p in 1..=b.partitions {
        let child = Command::new("curl")
            .args(["--compressed", "-s", "-S", "-o", "/dev/null", "--netrc-file", "/dev/null"])
            // The credentials go by a header read from stdin's config, never argv.
            .args(["-K", "-"])
            .arg(format!("{}?partition={p}", b.url()))
            .stdin(Stdio::piped())
            .spawn()
            .ok()?;
        children.push(child);
    }
    // Every curl waits for its config before it connects: all of them get
    // it first, then all of them are waited for.
    for c in &mut children {
        if let Some(mut stdin) = c.stdin.take() {
            use std::io::Write;
            let _ = writeln!(stdin, "user = \"sim:sim\"");
        }
    }
    let mut cpu = 0.0;
    for mut c in children {
        let pid = c.id().to_string();
        let status = c.wait().ok()?;
        cpu += cpu_secs(&pid);
        if !status.success() {
            eprintln!("curl failed: {status}");
            return None;
        }
    }
    Some(Measure { seconds: t.elapsed().as_secs_f64(), cpu, storage: None })
}

/// The archiver from its start until the burst is stored and covered.
fn archiver(b: &Burst) -> Result<Measure, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("creds"), "sim:sim")?;
    let config = dir.path().join("gapless.toml");
    let admin = free_port()?;
    let kind = match b.kind {
        stream_sim::StreamKind::Firehose => "firehose",
        _ => "decahose",
    };
    std::fs::write(
        &config,
        format!(
            r#"admin = "{admin}"
credentials = {{ file = "creds" }}
[[stream]]
label = "s"
kind = "{kind}"
partitions = {partitions}
url = "{url}"
liveness = {{ silence = "30s", data_silence = "5s" }}
recovery = {{ enabled = false }}
"#,
            partitions = b.partitions,
            url = b.url()
        ),
    )?;
    let start: chrono::DateTime<chrono::Utc> = START.parse()?;
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gapless"))
        .arg("archive")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .arg("--since")
        .arg(start.to_rfc3339())
        .arg("--clock-start")
        .arg((start + chrono::Duration::seconds(50)).to_rfc3339())
        .arg("--clock-origin")
        .arg(format!("{:.6}", unix_now()))
        .env("RUST_LOG", "gapless=error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id().to_string();
    // `GAPLESS_BENCH_PERF=FILE`: a `perf record` profile of the archiver
    // over the run, of the whole machine (every thread of the archiver,
    // including those it starts later; `perf report -i FILE --comm ...`).
    let mut perf = std::env::var_os("GAPLESS_BENCH_PERF").and_then(|out| {
        Command::new("perf")
            .args(["record", "-F", "999", "-g", "-a", "-o"])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    });
    // Covered: every second of the burst but its first and last few (the
    // first connection's data starts with the burst, and the tail of the
    // last run of activities is unsettled when the body ends).
    let covered = (b.start_ms / 1000 + 5, b.end_ms / 1000 - 5);
    let (mut done, mut stored_at) = (None, None);
    while t.elapsed().as_secs_f64() < TIMEOUT_SECS {
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("gapless exited early: {status}").into());
        }
        let all_stored = stored_at.is_some() || counters(admin).is_some_and(|c| c.stored >= b.activities);
        if all_stored && stored_at.is_none() {
            stored_at = Some(t.elapsed().as_secs_f64());
        }
        if all_stored && no_hole(admin, covered.0, covered.1) {
            done = Some(t.elapsed().as_secs_f64());
            break;
        }
    }
    let cpu = cpu_secs(&pid);
    let storage = storage_time(admin);
    if let Some(p) = perf.as_mut() {
        let _ = Command::new("kill").args(["-INT", &p.id().to_string()]).status();
        let _ = p.wait();
    }
    if done.is_none() {
        let stored = counters(admin).map_or(0, |c| c.stored);
        let holes = child::get(admin, &format!("/coverage?from={}&to={}", b.start_ms / 1000, b.end_ms / 1000 + 60))
            .and_then(|t| serde_json::from_str::<gapless_report::schema::Report>(&t).ok())
            .map(|r| {
                r.streams
                    .iter()
                    .flat_map(|s| s.holes.iter().map(|h| (h.start.clone(), h.end.clone())))
                    .collect::<Vec<_>>()
            });
        eprintln!("not done: {stored} of {} stored; holes {holes:?}", b.activities);
    }
    sigterm(&mut child);
    let seconds = done.ok_or("the burst was not stored and covered in time")?;
    eprintln!("  all stored after {:.2} s, covered after {seconds:.2} s", stored_at.unwrap_or(f64::NAN));
    let diff = verify::compare(&b.truth, &verify::read_archive(&data, "s", b.start_ms, b.end_ms)?);
    if !diff.is_exact() {
        return Err(format!("the archive differs from the truth: {diff}").into());
    }
    Ok(Measure { seconds, cpu, storage })
}

/// No hole over `[from, to)` (Unix seconds), from the admin API.
fn no_hole(admin: SocketAddr, from: i64, to: i64) -> bool {
    let path = format!("/coverage?from={}&to={}", from - from.rem_euclid(60), to - to.rem_euclid(60) + 60);
    let Some(text) = child::get(admin, &path) else { return false };
    let Ok(report) = serde_json::from_str::<gapless_report::schema::Report>(&text) else { return false };
    report.streams.iter().all(|s| s.holes.iter().all(|h| h.end_secs <= from || h.start_secs >= to))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("realtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("realtime: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let start: chrono::DateTime<chrono::Utc> = START.parse()?;
    let mut cfg = stream_sim::SimConfig::new(args.seed).with_rate(args.rate);
    cfg.clock = stream_sim::Clock::scaled(Some(start), 1.0, Some(unix_now()))?;
    let mut spec = stream_sim::StreamSpec::new(args.kind, "prod");
    spec.rate = args.rate;
    cfg.streams = vec![spec.clone()];
    cfg.recovery_pace = 0.0;
    cfg.rate_limit = u32::MAX;
    eprintln!("pre-generating {} s of {} at {} Posts/s ...", args.seconds, spec.name(), args.rate);
    let prepared = stream_sim::maxspeed::Prepared::build(&cfg, Duration::from_secs(u64::from(args.seconds)))?;
    let (activities, raw_bytes, gzip_bytes) =
        prepared.bodies.values().fold((0, 0, 0), |(a, r, g), b| (a + b.activities, r + b.raw_bytes, g + b.gzip_bytes));
    let gen = stream_sim::Generator::new(args.seed, &spec);
    let (start_ms, end_ms) = (start.timestamp_millis(), start.timestamp_millis() + i64::from(args.seconds) * 1000);
    let truth = verify::truth(&gen, start_ms, end_ms);
    let sim = rt.block_on(stream_sim::maxspeed::start_prepared(cfg, "127.0.0.1:0".parse()?, prepared))?;
    let burst =
        Burst { addr: sim.addr(), kind: args.kind, partitions: spec.partitions, activities, truth, start_ms, end_ms };
    let have_curl = Command::new("curl").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    let (mut best_plain, mut best_archiver): (Option<Measure>, Option<Measure>) = (None, None);
    for run in 1..=args.runs {
        if have_curl {
            if let Some(m) = plain_reader(&burst) {
                eprintln!("run {run}: curl {:.2} s", m.seconds);
                if best_plain.as_ref().is_none_or(|b| m.seconds < b.seconds) {
                    best_plain = Some(m);
                }
            }
        }
        let m = archiver(&burst)?;
        eprintln!("run {run}: gapless {:.2} s", m.seconds);
        if best_archiver.as_ref().is_none_or(|b| m.seconds < b.seconds) {
            best_archiver = Some(m);
        }
    }
    rt.block_on(sim.shutdown());
    println!(
        "#### Realtime: {} s of {} at {} Posts/s ({} partitions, {} activities, {:.0} MB NDJSON, {:.0} MB gzip), best of {}",
        args.seconds,
        spec.name(),
        args.rate,
        burst.partitions,
        activities,
        raw_bytes as f64 / 1e6,
        gzip_bytes as f64 / 1e6,
        args.runs
    );
    println!("| reader | seconds | activities/s | MB/s (NDJSON) | CPU seconds |\n|---|---|---|---|---|");
    let row = |name: &str, m: &Measure| {
        println!(
            "| {name} | {:.2} | {:.0} | {:.0} | {:.1} |",
            m.seconds,
            activities as f64 / m.seconds,
            raw_bytes as f64 / 1e6 / m.seconds,
            m.cpu
        )
    };
    if let Some(m) = &best_plain {
        row("`curl --compressed`, every partition at once, to /dev/null", m);
    }
    if let Some(m) = &best_archiver {
        row("gapless archive: stored, durable and covered (exact against the truth)", m);
    }
    if let (Some(p), Some(a)) = (&best_plain, &best_archiver) {
        println!("gapless / curl = {:.2} (throughput)", p.seconds / a.seconds);
    }
    if let Some((a, [accept, write, sync, commits])) = best_archiver.as_ref().and_then(|a| Some((a, a.storage?))) {
        println!(
            "storage thread over the {:.2} s: accepting {accept:.2} s ({:.0}%), compressing and appending {write:.2} s ({:.0}%), \
             fsync {sync:.2} s ({:.0}%) in {commits:.0} commits ({:.1} ms each), waiting the rest",
            a.seconds,
            100.0 * accept / a.seconds,
            100.0 * write / a.seconds,
            100.0 * sync / a.seconds,
            1e3 * sync / commits.max(1.0),
        );
    }
    Ok(())
}
